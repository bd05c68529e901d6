#!/usr/bin/env python3
# SPDX-License-Identifier: ISC
"""make check-systemd: sockserverd as installed, under a real systemd.

Boots Debian bookworm's systemd (252) in a container with systemd-nspawn
and checks the installed sockserverd.service there (inside.py: start,
reload, a bad reload, a plugin, stop with requests in progress, socket
activation, no restart after exit status 1, the journal's fields with
log_target "journal").

  1. debootstrap and systemd-nspawn (installed with apt-get if missing);
  2. a minimal bookworm root, made once and kept in build/systemd-root/
     (remove that directory to make it again);
  3. a copy of it, build/systemd-check/root, into which goes
     make install DESTDIR=... PREFIX=/usr SYSCONFDIR=/etc
     (built in build/systemd-check/b, apart from the usual build);
  4. systemd-nspawn --boot --private-network on it; a oneshot unit inside
     runs inside.py, which writes its results to a bind-mounted
     directory, then powers the container off;
  5. the results are printed; the container and the copy are removed.

Not root, no systemd-nspawn, or no bookworm root to be had (offline):
"SKIP: why" and exit 0.  Exit 1 if a check failed.

Environment: SSD_SYSTEMD_ROOT where the bookworm root is kept (default
build/systemd-root); DEBIAN_MIRROR (default http://deb.debian.org/debian).

Options: --unit FILE.in   install this unit template instead of
                          systemd/sockserverd.service.in (to see an older
                          unit fail);
         --keep           keep build/systemd-check/root afterwards;
         TEST...          run only these checks (inside.py's names)."""

import os
import shutil
import signal
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
BUILD = os.path.join(ROOT, "build")
CACHE = os.environ.get("SSD_SYSTEMD_ROOT",
                       os.path.join(BUILD, "systemd-root"))
WORK = os.path.join(BUILD, "systemd-check")
B = os.path.join(WORK, "b")
SUITE = "bookworm"
MIRROR = os.environ.get("DEBIAN_MIRROR", "http://deb.debian.org/debian")
# What the daemon needs at run time, what the unit runs (/bin/kill is
# procps's, which a minbase root lacks) and what inside.py needs.
PACKAGES = ["systemd", "systemd-sysv", "libconfig9", "libev4", "procps",
            "python3"]
PATHS = ["PREFIX=/usr", "SYSCONFDIR=/etc"]
SUBST = {"@SBINDIR@": "/usr/sbin", "@SYSCONFDIR@": "/etc",
         "@LIBDIR@": "/usr/lib", "@HANDLERDIR@": "/usr/lib/sockserverd/"
         "handlers", "@PREFIX@": "/usr", "@UNITDIR@": "/usr/lib/systemd/"
         "system", "@INCLUDEDIR@": "/usr/include"}
SHARE = "usr/local/share/ssd-test"      # in the container

DEBOOTSTRAP_TIMEOUT = 1200
APT_TIMEOUT = 900
BUILD_TIMEOUT = 900
RUN_TIMEOUT = 600       # boot, every check, poweroff
STOP_TIMEOUT = 30       # for the container to go after we ask it to

TEST_UNIT = """\
[Unit]
Description=sockserverd check-systemd
After=basic.target

[Service]
Type=oneshot
ExecStart=/usr/bin/python3 /%(share)s/inside.py /results %(tests)s
ExecStopPost=/bin/systemctl --no-block poweroff
TimeoutStartSec=%(timeout)d
StandardOutput=journal+console
StandardError=journal+console
"""


def log(msg):
    print("check-systemd: " + msg, flush=True)


def skip(why):
    print("SKIP: check-systemd: " + why, flush=True)
    sys.exit(0)


def run(argv, timeout, **kw):
    kw.setdefault("stdin", subprocess.DEVNULL)
    return subprocess.run(argv, timeout=timeout, **kw)


def quiet(argv, timeout, **kw):
    """Runs argv with its output in a string; (rc, output)."""
    try:
        r = run(argv, timeout, stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT, **kw)
    except subprocess.TimeoutExpired:
        return -1, "%s: timed out after %ds" % (argv[0], timeout)
    except OSError as e:
        return -1, "%s: %s" % (argv[0], e)
    return r.returncode, r.stdout.decode("utf-8", "replace")


def tools():
    missing = [pkg for tool, pkg in (("debootstrap", "debootstrap"),
                                     ("systemd-nspawn", "systemd-container"))
               if shutil.which(tool) is None]
    if not missing:
        return
    if shutil.which("apt-get") is None:
        skip("no %s and no apt-get to install it" % " ".join(missing))
    log("installing " + " ".join(missing))
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    rc, out = quiet(["apt-get", "install", "-y", "-q",
                     "--no-install-recommends"] + missing, APT_TIMEOUT,
                    env=env)
    if rc != 0:
        rc, out = quiet(["sh", "-c", "apt-get update -q && apt-get install "
                         "-y -q --no-install-recommends " + " ".join(missing)],
                        APT_TIMEOUT, env=env)
    if rc != 0 or shutil.which("systemd-nspawn") is None or \
            shutil.which("debootstrap") is None:
        skip("cannot install %s:\n%s" % (" ".join(missing), out[-2000:]))


def base_root():
    """The cached bookworm root, made if missing or made for other
    packages."""
    stamp = os.path.join(CACHE, "stamp")
    want = "%s %s\n" % (SUITE, ",".join(PACKAGES))
    root = os.path.join(CACHE, "root")
    try:
        with open(stamp) as f:
            if f.read() == want and os.path.isdir(root):
                return root
    except OSError:
        pass
    shutil.rmtree(CACHE, ignore_errors=True)
    tmp = os.path.join(CACHE, "tmp")
    os.makedirs(tmp)
    log("debootstrap %s into %s (once; takes a minute)" % (SUITE, CACHE))
    t0 = time.monotonic()
    rc, out = quiet(["debootstrap", "--variant=minbase",
                     "--include=" + ",".join(PACKAGES), SUITE, tmp, MIRROR],
                    DEBOOTSTRAP_TIMEOUT)
    if rc != 0:
        shutil.rmtree(CACHE, ignore_errors=True)
        skip("debootstrap %s from %s failed (offline?):\n%s"
             % (SUITE, MIRROR, out[-2000:]))
    # No login prompt on the console; no clock sync in a container.
    for unit in ("console-getty.service", "getty@.service",
                 "systemd-timesyncd.service"):
        link = os.path.join(tmp, "etc/systemd/system", unit)
        if not os.path.lexists(link):
            os.symlink("/dev/null", link)
    os.rename(tmp, root)
    with open(stamp, "w") as f:
        f.write(want)
    log("debootstrap took %.0fs" % (time.monotonic() - t0))
    return root


def make(*args):
    env = {k: v for k, v in os.environ.items()
           if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "DESTDIR")}
    argv = ["make", "-s", "-C", ROOT, "B=" + B,
            "SSD=" + os.path.join(B, "sockserverd")] + PATHS + list(args)
    rc, out = quiet(argv, BUILD_TIMEOUT, env=env)
    if rc != 0:
        print(out)
        log("FAIL: " + " ".join(argv))
        sys.exit(1)


def prepare(base, unit_in, tests):
    root = os.path.join(WORK, "root")
    results = os.path.join(WORK, "results")
    for d in (root, results):
        if os.path.lexists(d):
            shutil.rmtree(d)
    os.makedirs(results)
    rc, out = quiet(["cp", "-a", "--reflink=auto", base, root], 300)
    if rc != 0:
        log("FAIL: copying the root: " + out)
        sys.exit(1)
    make("all", os.path.join(B, "tests/plugins/hotv1.so"))
    make("DESTDIR=" + root, "install")
    if unit_in is not None:
        with open(unit_in) as f:
            text = f.read()
        for k, v in SUBST.items():
            text = text.replace(k, v)
        with open(os.path.join(root, "usr/lib/systemd/system/"
                               "sockserverd.service"), "w") as f:
            f.write(text)
    share = os.path.join(root, SHARE)
    os.makedirs(share, exist_ok=True)
    for src in (os.path.join(HERE, "inside.py"),
                os.path.join(B, "tests/plugins/hotv1.so"),
                os.path.join(ROOT, "systemd/sockserverd.socket")):
        shutil.copy(src, share)
    unit = os.path.join(root, "etc/systemd/system/ssd-test.service")
    with open(unit, "w") as f:
        f.write(TEST_UNIT % {"share": SHARE, "tests": " ".join(tests),
                             "timeout": RUN_TIMEOUT - 60})
    wants = os.path.join(root, "etc/systemd/system/multi-user.target.wants")
    os.makedirs(wants, exist_ok=True)
    os.symlink("/etc/systemd/system/ssd-test.service",
               os.path.join(wants, "ssd-test.service"))
    return root, results


def alive(p):
    return p.poll() is None


def wait_for(pred, timeout):
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.2)
    return True


def boot(root, results):
    """Boots the container; returns once inside.py is done and the
    container is gone, or the deadline passed (then it is stopped)."""
    console = open(os.path.join(WORK, "console.log"), "w")
    name = "ssd-check-%d" % os.getpid()
    argv = ["systemd-nspawn", "--boot", "--register=no", "--keep-unit",
            "--private-network", "--machine=" + name, "-D", root,
            "--bind=%s:/results" % results]
    log("booting: " + " ".join(argv))
    p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=console,
                         stderr=subprocess.STDOUT)
    done = os.path.join(results, "done")
    try:
        ok = wait_for(lambda: os.path.exists(done) or not alive(p),
                      RUN_TIMEOUT)
        if not ok:
            log("FAIL: no results after %ds" % RUN_TIMEOUT)
        # inside.py's unit powers the container off when it ends.
        if not wait_for(lambda: not alive(p), STOP_TIMEOUT):
            log("the container is still up: SIGTERM to nspawn %d" % p.pid)
    finally:
        # SIGTERM asks systemd-nspawn for a clean poweroff; SIGKILL if
        # that does not come.  Only the process we started.
        if alive(p):
            p.send_signal(signal.SIGTERM)
            if not wait_for(lambda: not alive(p), STOP_TIMEOUT):
                log("still up: SIGKILL to nspawn %d" % p.pid)
                p.kill()
        p.wait()
        console.close()
    return p.returncode


def terminated(signum, frame):
    # Killed (make interrupted): stop the container on the way out.
    raise SystemExit("check-systemd: signal %d" % signum)


def main():
    signal.signal(signal.SIGTERM, terminated)
    signal.signal(signal.SIGHUP, terminated)
    args = sys.argv[1:]
    keep = "--keep" in args
    unit_in = None
    if "--unit" in args:
        i = args.index("--unit")
        unit_in = os.path.abspath(args[i + 1])
        del args[i:i + 2]
    tests = [a for a in args if not a.startswith("--")]
    if os.geteuid() != 0:
        skip("needs root (debootstrap, systemd-nspawn)")
    t0 = time.monotonic()
    tools()
    base = base_root()
    root, results = prepare(base, unit_in, tests)
    rc = None
    try:
        rc = boot(root, results)
    finally:
        # Only once the container is gone (boot() waited for it).
        if rc is not None and not keep:
            shutil.rmtree(root, ignore_errors=True)
    log("the container exited with status %s" % rc)
    lines = []
    try:
        with open(os.path.join(results, "log")) as f:
            lines = f.read().splitlines()
    except OSError:
        pass
    for ln in lines:
        print(ln)
    failed = [ln for ln in lines if ln.startswith("FAIL")]
    complete = os.path.exists(os.path.join(results, "done"))
    if failed or not complete:
        for p in [os.path.join(results, "journal")] + \
                ([] if complete else [os.path.join(WORK, "console.log")]):
            if os.path.exists(p):
                with open(p, errors="replace") as f:
                    tail = f.read().replace("\r", "").splitlines()[-80:]
                print("---- %s (last 80 lines) ----" % p)
                print("\n".join(tail))
    passed = len([ln for ln in lines if ln.startswith("PASS")])
    log("%d passed, %d failed%s, %.0fs" % (
        passed, len(failed), "" if complete else ", INCOMPLETE",
        time.monotonic() - t0))
    return 0 if complete and not failed else 1


if __name__ == "__main__":
    sys.exit(main())
