#!/usr/bin/python3
# SPDX-License-Identifier: ISC
"""The half of check-deb that runs inside the booted container, as root,
from a oneshot unit (ssd-deb-test.service) once the container's systemd is
up.  The host put the packages in /usr/local/share/ssd-deb-test.

It installs sockserverd_*.deb with dpkg, as an operator would, and checks
that the files land, that the configuration passes `sockserverd -t`, that
the unit is enabled and started by the package's postinst, that it serves
and reloads with the shipped configuration, that an edited conffile
survives a reinstall, and that remove stops the service and purge removes
the conffile; then installs sockserverd-dev_*.deb and checks its files.
One line per check, "PASS: name" or "FAIL: name: why", goes to stdout and
to RESULTS/log; RESULTS/done is written last, with the counts.  After a
failed check the rest still run (each says what it found).

Every wait polls a condition with a deadline; every command has a
timeout.  Usage: inside-deb.py RESULTS-DIR PLUGIN..."""

import glob
import os
import socket
import subprocess
import sys
import time
import traceback

DEBS = "/usr/local/share/ssd-deb-test"    # the host put them there
CONF = "/etc/sockserverd.conf"
HANDLERDIR = "/usr/lib/sockserverd/handlers"
UNIT = "sockserverd.service"
WANTS = "/etc/systemd/system/multi-user.target.wants/" + UNIT
ECHO_PORT = 10007       # the shipped configuration's echo listener
CMD_TIMEOUT = 120       # dpkg, systemctl
IO_TIMEOUT = 10
WAIT = 20

RESULTS = sys.argv[1] if len(sys.argv) > 1 else "/results"
PLUGINS = sys.argv[2:]
LOG = None


def say(line):
    print(line, flush=True)
    LOG.write(line + "\n")
    LOG.flush()


class Fail(Exception):
    pass


def check(cond, why):
    if not cond:
        raise Fail(why)


def run(*argv, timeout=CMD_TIMEOUT):
    """(returncode, stdout+stderr as text)."""
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    try:
        r = subprocess.run(argv, stdin=subprocess.DEVNULL, env=env,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           timeout=timeout)
    except subprocess.TimeoutExpired:
        raise Fail("%s: no answer in %ds" % (" ".join(argv), timeout))
    return r.returncode, r.stdout.decode("utf-8", "replace")


def must(*argv, timeout=CMD_TIMEOUT):
    rc, out = run(*argv, timeout=timeout)
    check(rc == 0, "%s: exit %d:\n%s" % (" ".join(argv), rc, out))
    return out


def wait_for(pred, what, timeout=WAIT):
    deadline = time.monotonic() + timeout
    delay = 0.05
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() >= deadline:
            raise Fail("timed out after %gs waiting for %s" % (timeout, what))
        time.sleep(delay)
        delay = min(delay * 2, 0.5)


def state(verb):
    """systemctl is-active / is-enabled: the word it prints."""
    return run("systemctl", verb, UNIT)[1].strip()


def deb(name):
    found = glob.glob(os.path.join(DEBS, name + "_*.deb"))
    check(len(found) == 1,
          "%s/%s_*.deb: %d files" % (DEBS, name, len(found)))
    return found[0]


def echo(text):
    with socket.create_connection(("127.0.0.1", ECHO_PORT),
                                  timeout=IO_TIMEOUT) as s:
        s.sendall(text)
        s.shutdown(socket.SHUT_WR)
        data = b""
        while True:
            b = s.recv(4096)
            if not b:
                return data
            data += b


# -- the checks, in order ----------------------------------------------------

def test_install():
    must("dpkg", "-i", deb("sockserverd"))
    rc, out = run("dpkg-query", "-W", "-f=${Status}", "sockserverd")
    check(out == "install ok installed", "dpkg-query: %r" % out)


def test_files():
    want = {"/usr/sbin/sockserverd": os.X_OK,
            "/lib/systemd/system/" + UNIT: os.R_OK,
            CONF: os.R_OK,
            "/usr/share/man/man8/sockserverd.8.gz": os.R_OK,
            "/usr/share/man/man5/sockserverd.conf.5.gz": os.R_OK,
            "/usr/share/doc/sockserverd/copyright": os.R_OK}
    for p in PLUGINS:
        want[os.path.join(HANDLERDIR, p + ".so")] = os.R_OK
    missing = [p for p, mode in want.items() if not os.access(p, mode)]
    check(not missing, "missing: " + " ".join(missing))
    check(os.path.isdir(HANDLERDIR), HANDLERDIR + " is not a directory")


def test_conffile():
    rc, out = run("dpkg-query", "-W", "-f=${Conffiles}", "sockserverd")
    check(any(ln.split()[:1] == [CONF] for ln in out.splitlines()),
          "%s is not a conffile: %r" % (CONF, out))


def test_config_test():
    # The compiled-in default path is /etc/sockserverd.conf.
    out = must("sockserverd", "-t")
    check(out.strip() == "configuration OK", "sockserverd -t: %r" % out)


def test_plugins_listed():
    out = must("sockserverd", "-L")
    for p in PLUGINS:
        ok = [ln for ln in out.splitlines()
              if ln.split()[:2] == [p, "plugin"] and "refused" not in ln
              and "not checked" not in ln]
        check(ok, "sockserverd -L does not load %s from %s:\n%s"
              % (p, HANDLERDIR, out))


def test_enabled_and_started():
    check(state("is-enabled") == "enabled",
          "is-enabled: %s" % state("is-enabled"))
    check(os.path.islink(WANTS), WANTS + " missing")
    # The postinst starts it (deb-systemd-invoke); Type=notify, so
    # active means READY=1 came.
    wait_for(lambda: state("is-active") == "active", "the unit active")


def test_serves():
    def try_echo():
        try:
            return echo(b"hello deb\n")
        except OSError:
            return None
    got = wait_for(try_echo, "an echo on 127.0.0.1:%d" % ECHO_PORT)
    check(got == b"hello deb\n", "echo: %r" % got)


def test_reload():
    must("systemctl", "reload", UNIT)       # sockserverd -t, then kill -HUP
    check(state("is-active") == "active", "after reload: %s"
          % state("is-active"))
    check(echo(b"again\n") == b"again\n", "no echo after the reload")


def test_conffile_kept_on_reinstall():
    with open(CONF, "a") as f:
        f.write("# edited by check-deb\n")
    must("dpkg", "-i", "--force-confold", deb("sockserverd"))
    with open(CONF) as f:
        check("# edited by check-deb" in f.read(), "the edit is gone")
    wait_for(lambda: state("is-active") == "active",
             "the unit active after the reinstall")


def test_dev():
    must("dpkg", "-i", deb("sockserverd-dev"))
    for p in ("/usr/include/sockserverd.h",
              "/usr/share/man/man3/sockserverd-handler.3.gz"):
        check(os.access(p, os.R_OK), p + " missing")
    pc = "/usr/share/pkgconfig/sockserverd.pc"
    with open(pc) as f:
        text = f.read()
    check("handlerdir=%s\n" % HANDLERDIR in text,
          "%s: no handlerdir=%s:\n%s" % (pc, HANDLERDIR, text))


def test_remove_stops():
    must("dpkg", "-r", "sockserverd-dev", "sockserverd")
    wait_for(lambda: state("is-active") in ("inactive", "unknown"),
             "the unit stopped (is %s)" % state("is-active"))
    check(os.path.exists(CONF), "remove (not purge) took " + CONF)
    check(not os.path.exists("/usr/sbin/sockserverd"), "binary still there")


def test_purge():
    must("dpkg", "-P", "sockserverd")
    check(not os.path.exists(CONF), "purge left " + CONF)
    check(not os.path.lexists(WANTS), "purge left " + WANTS)


TESTS = [test_install, test_files, test_conffile, test_config_test,
         test_plugins_listed, test_enabled_and_started, test_serves,
         test_reload, test_conffile_kept_on_reinstall, test_dev,
         test_remove_stops, test_purge]


def main():
    global LOG
    os.makedirs(RESULTS, exist_ok=True)
    LOG = open(os.path.join(RESULTS, "log"), "w")
    passed = failed = 0
    for t in TESTS:
        name = t.__name__[len("test_"):]
        t0 = time.monotonic()
        try:
            t()
        except Fail as e:
            failed += 1
            say("FAIL: %s: %s" % (name, e))
        except Exception:
            failed += 1
            say("FAIL: %s: %s" % (name, traceback.format_exc()))
        else:
            passed += 1
            say("PASS: %s (%.1fs)" % (name, time.monotonic() - t0))
    try:
        run("journalctl", "--sync", timeout=30)
        with open(os.path.join(RESULTS, "journal"), "w") as f:
            f.write(run("journalctl", "--no-pager", "-u", UNIT,
                        timeout=30)[1])
    except Fail:
        pass
    with open(os.path.join(RESULTS, "done.tmp"), "w") as f:
        f.write("%d %d\n" % (passed, failed))
    os.rename(os.path.join(RESULTS, "done.tmp"),
              os.path.join(RESULTS, "done"))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
