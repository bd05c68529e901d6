#!/usr/bin/python3
# SPDX-License-Identifier: ISC
"""The half of check-systemd that runs inside the container, as root, from
a oneshot unit (ssd-test.service) once the container's systemd is up.

It drives the installed sockserverd.service with systemctl and talks to it
over loopback: start (Type=notify), echo, reload (good, bad, a plugin
dropped in), stop with fork and exec requests in progress, socket
activation with the example sockserverd.socket, no restart after exit
status 1, and log_target "journal" (journalctl SSD_LISTENER=NAME finds a
request's messages).  One line per check, "PASS: name" or "FAIL: name: why", goes to
stdout and to RESULTS/log; RESULTS/done is written last, with the counts.

Every wait polls a condition with a deadline; every command has a
timeout.  Usage: inside.py RESULTS-DIR [TEST...]"""

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import traceback

CONF = "/etc/sockserverd.conf"
HANDLERDIR = "/usr/lib/sockserverd/handlers"
SHARE = "/usr/local/share/ssd-test"     # what the host put in for us
UNIT = "sockserverd.service"
SOCKET_UNIT = "sockserverd.socket"
CMD_TIMEOUT = 60        # any systemctl call
IO_TIMEOUT = 10         # any socket operation
WAIT = 15               # any condition we poll for

RESULTS = sys.argv[1] if len(sys.argv) > 1 else "/results"
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
    try:
        r = subprocess.run(argv, stdin=subprocess.DEVNULL,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           timeout=timeout)
    except subprocess.TimeoutExpired:
        raise Fail("%s: no answer in %ds" % (" ".join(argv), timeout))
    return r.returncode, r.stdout.decode("utf-8", "replace")


def systemctl(*args, timeout=CMD_TIMEOUT):
    return run("systemctl", "--no-pager", *args, timeout=timeout)


def prop(name, unit=UNIT):
    rc, out = systemctl("show", "-p", name, "--value", unit)
    check(rc == 0, "systemctl show %s: %s" % (name, out))
    return out.strip()


def wait_for(pred, what, timeout=WAIT):
    """Polls pred() until it is true; its last value, or Fail."""
    deadline = time.monotonic() + timeout
    delay = 0.02
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() >= deadline:
            raise Fail("timed out after %gs waiting for %s" % (timeout, what))
        time.sleep(delay)
        delay = min(delay * 2, 0.25)


def journal_cursor():
    rc, out = run("journalctl", "--no-pager", "-n", "0", "--show-cursor")
    for ln in out.splitlines():
        if ln.startswith("-- cursor: "):
            return ln[len("-- cursor: "):]
    return None


def journal_since(cursor, unit=UNIT):
    args = ["journalctl", "--no-pager", "-o", "cat", "-u", unit]
    if cursor:
        args += ["--after-cursor", cursor]
    run("journalctl", "--sync")
    return run(*args)[1]


def wait_journal(cursor, text, what, unit=UNIT):
    """Waits for text in the unit's journal; the journal since cursor."""
    return wait_for(lambda: (lambda j: j if text in j else None)(
        journal_since(cursor, unit)), what)


# -- clients ------------------------------------------------------------------

def connect(port, host="127.0.0.1"):
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    s = socket.socket(fam, socket.SOCK_STREAM)
    s.settimeout(IO_TIMEOUT)
    s.connect((host, port))
    return s


def read_until(s, want):
    """Reads until the data received ends with want; all of it."""
    data = b""
    while not data.endswith(want):
        b = s.recv(4096)
        if not b:
            break
        data += b
    return data


def read_to_eof(s):
    data = b""
    while True:
        try:
            b = s.recv(4096)
        except ConnectionResetError:
            return data + b"<reset>"
        if not b:
            return data
        data += b


def finish_request(s, payload):
    """Sends the rest of a request, half-closes, reads the rest of the
    reply; what came, with what went wrong (a cut request) after it."""
    try:
        s.sendall(payload)
        s.shutdown(socket.SHUT_WR)
    except OSError as e:
        return b"<%s>" % e.strerror.encode()
    return read_to_eof(s)


def exchange(port, payload=b"hello\n", host="127.0.0.1"):
    """Sends payload, half-closes, returns all that came back."""
    s = connect(port, host)
    try:
        s.sendall(payload)
        s.shutdown(socket.SHUT_WR)
        return read_to_eof(s)
    finally:
        s.close()


def answers(port, payload=b"hello\n", want=None, host="127.0.0.1"):
    try:
        return exchange(port, payload, host) == (want or payload)
    except OSError:
        return False


def refused(port, host="127.0.0.1"):
    try:
        connect(port, host).close()
    except ConnectionRefusedError:
        return True
    except OSError:
        return False
    return False


# -- configurations -----------------------------------------------------------

ECHO, ECHO2, FORK, EXEC, PLUGIN = 7007, 7008, 7010, 7011, 7012
# The exec program answers two lines, one at a time: a request that a stop
# cut would never send its second answer.
EXEC_SH = 'read a; echo "first $a"; read b; echo "second $b"'


def listener(name, port, handler="echo", extra=""):
    return ('{ name = "%s"; address = "127.0.0.1"; port = %d; '
            'handler = "%s"; %s }' % (name, port, handler, extra))


BASE = [
    listener("echo", ECHO),
    listener("fork", FORK, extra='concurrency = "fork";'),
    listener("exec", EXEC, "exec",
             'concurrency = "event"; options = { program = "/bin/sh"; '
             'args = [ "sh", "-c", "%s" ]; };'
             % EXEC_SH.replace('"', '\\"')),
]


def write_conf(listeners, globals_="shutdown_timeout = 10.0;"):
    text = "%s\nlisteners = (\n  %s\n);\n" % (globals_,
                                              ",\n  ".join(listeners))
    tmp = CONF + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.chmod(tmp, 0o644)
    os.replace(tmp, CONF)
    return text


def where(text, needle):
    """"FILE:LINE" of the first line of text holding needle."""
    n = [i for i, ln in enumerate(text.splitlines(), 1) if needle in ln][0]
    return "%s:%d:" % (CONF, n)


def reset():
    """Back to nothing running, nothing failed, the base configuration."""
    systemctl("stop", SOCKET_UNIT, UNIT)
    systemctl("reset-failed", UNIT, SOCKET_UNIT)
    write_conf(BASE)


def start():
    rc, out = systemctl("start", UNIT)
    check(rc == 0, "systemctl start: rc %d: %s\n%s" % (rc, out, status()))


def status():
    return systemctl("status", "-l", "-n", "30", UNIT)[1]


# -- the checks ---------------------------------------------------------------

def test_start_notify():
    """systemctl start returns once READY=1 came: active, running."""
    reset()
    check(prop("Type") == "notify", "Type=%s" % prop("Type"))
    start()
    check(prop("ActiveState") == "active" and
          prop("SubState") == "running",
          "state %s/%s" % (prop("ActiveState"), prop("SubState")))
    st = prop("StatusText")
    check(st.startswith("serving"), "StatusText=%r" % st)
    pid = int(prop("MainPID"))
    with open("/proc/%d/comm" % pid) as f:
        check(f.read().strip() == "sockserverd", "MainPID is not the daemon")
    # DynamicUser: not root.
    with open("/proc/%d/status" % pid) as f:
        uid = [ln.split()[1] for ln in f if ln.startswith("Uid:")][0]
    check(uid != "0", "the daemon runs as root")


def test_echo():
    reset()
    start()
    got = exchange(ECHO, b"hello systemd\n")
    check(got == b"hello systemd\n", "echo gave %r" % got)


def test_reload_applies():
    reset()
    start()
    pid = prop("MainPID")
    write_conf(BASE + [listener("echo2", ECHO2)])
    rc, out = systemctl("reload", UNIT)
    check(rc == 0, "systemctl reload: rc %d: %s" % (rc, out))
    wait_for(lambda: answers(ECHO2), "the new listener to answer")
    check(answers(ECHO), "the old listener stopped answering")
    check(prop("MainPID") == pid, "MainPID changed: a restart, not a reload")
    wait_for(lambda: prop("StatusText").startswith("reloaded"),
             "StatusText reloaded")


def test_reload_bad_file_fails():
    reset()
    write_conf(BASE + [listener("echo2", ECHO2)])
    start()
    pid = prop("MainPID")
    cur = journal_cursor()
    text = write_conf(BASE + [listener("echo2", ECHO2),
                              listener("bad", 7020, extra="bogus = 1;")])
    rc, out = systemctl("reload", UNIT)
    check(rc != 0, "systemctl reload of a bad file returned 0")
    # The check said where, and the daemon never saw a SIGHUP.
    log = wait_journal(cur, '%s unknown listener setting "bogus"'
                       % where(text, "bogus"), "FILE:LINE of the bad key")
    check("SIGHUP" not in log, "the daemon got a SIGHUP:\n" + log)
    check(prop("ActiveState") == "active", "state %s after the bad reload"
          % prop("ActiveState"))
    check(prop("MainPID") == pid, "MainPID changed")
    check(answers(ECHO) and answers(ECHO2), "the old configuration stopped "
          "serving")
    check(refused(7020), "the bad file's listener was bound")


def journal_entries(cursor, unit=UNIT):
    run("journalctl", "--sync")
    args = ["journalctl", "--no-pager", "-o", "json", "-u", unit]
    if cursor:
        args += ["--after-cursor", cursor]
    return [json.loads(ln) for ln in run(*args)[1].splitlines()
            if ln.startswith("{")]


def test_reload_check_is_quiet():
    """ExecReload's -t runs as the service's user and says one line,
    "configuration OK"."""
    reset()
    start()
    pid = prop("MainPID")
    with open("/proc/%s/status" % pid) as f:
        uid = [ln.split()[1] for ln in f if ln.startswith("Uid:")][0]
    cur = journal_cursor()
    rc, out = systemctl("reload", UNIT)
    check(rc == 0, "systemctl reload: rc %d: %s" % (rc, out))
    wait_for(lambda: prop("StatusText").startswith("reloaded"),
             "StatusText reloaded")
    # What processes other than the daemon (the check) logged.
    other = [e for e in journal_entries(cur)
             if e.get("SYSLOG_IDENTIFIER") == "sockserverd" and
             e.get("_PID") != pid]
    said = [e.get("MESSAGE") for e in other]
    check(said == ["configuration OK"], "the check said %r" % said)
    check(other[0].get("_UID") == uid, "the check ran as uid %s, the "
          "daemon as %s" % (other[0].get("_UID"), uid))


def test_reload_unreadable_file_fails():
    """A file the service's user cannot read fails the reload (the check
    runs with the daemon's credentials, not root's)."""
    reset()
    start()
    os.chmod(CONF, 0o600)
    try:
        rc, out = systemctl("reload", UNIT)
        check(rc != 0, "systemctl reload of an unreadable file returned 0")
        check(prop("ActiveState") == "active", "state %s"
              % prop("ActiveState"))
        check(answers(ECHO), "the old configuration stopped serving")
    finally:
        os.chmod(CONF, 0o644)


def test_plugin_dropped_in():
    reset()
    start()
    shutil.copy(os.path.join(SHARE, "hotv1.so"),
                os.path.join(HANDLERDIR, "hot.so"))
    write_conf(BASE + [listener("hot", PLUGIN, "hot")])
    rc, out = systemctl("reload", UNIT)
    check(rc == 0, "systemctl reload: rc %d: %s\n%s" % (rc, out, status()))
    wait_for(lambda: answers(PLUGIN, b"plug\n", b"v1 plug\n"),
             "the plugin's listener to answer")
    check(answers(ECHO), "echo stopped answering")


def test_stop_drains_fork_and_exec():
    """systemctl stop: fork and exec requests in progress get their whole
    reply (KillMode=mixed: SIGTERM to the daemon only, which drains)."""
    reset()
    start()
    fork = connect(FORK)
    execc = connect(EXEC)
    stop = None
    try:
        fork.sendall(b"one\n")
        check(read_until(fork, b"one\n") == b"one\n", "fork: no echo")
        execc.sendall(b"one\n")
        check(read_until(execc, b"first one\n") == b"first one\n",
              "exec: no first line")
        cur = journal_cursor()
        t0 = time.monotonic()
        stop = subprocess.Popen(["systemctl", "stop", UNIT],
                                stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT)
        # The stop is under way: systemd sent its SIGTERM, and the daemon
        # closed its listeners.
        wait_for(lambda: prop("ActiveState") in ("deactivating",
                                                 "inactive"),
                 "ActiveState deactivating")
        wait_for(lambda: refused(ECHO), "the listeners to close")
        wait_journal(cur, "SIGTERM: stopping; 2 requests in progress",
                     "the daemon to log the stop")
        got_fork = finish_request(fork, b"two\n")
        got_exec = finish_request(execc, b"two\n")
        cut = ["%s request cut by the stop: got %r, not %r" % (what, got, want)
               for what, got, want in (("fork", got_fork, b"two\n"),
                                       ("exec", got_exec, b"second two\n"))
               if got != want]
        check(not cut, "; ".join(cut))
        try:
            out = stop.communicate(timeout=CMD_TIMEOUT)[0]
        except subprocess.TimeoutExpired:
            raise Fail("systemctl stop did not return in %ds" % CMD_TIMEOUT)
        check(stop.returncode == 0, "systemctl stop: rc %d: %s"
              % (stop.returncode, out.decode()))
        took = time.monotonic() - t0
        check(took < 10, "the stop took %.1fs: it waited for the "
              "shutdown_timeout instead of the requests" % took)
        check(prop("Result") == "success", "Result=%s" % prop("Result"))
        check(prop("ActiveState") == "inactive", "state %s"
              % prop("ActiveState"))
    finally:
        fork.close()
        execc.close()
        if stop is not None and stop.poll() is None:
            stop.kill()
            stop.wait()


def test_socket_activation():
    reset()
    shutil.copy(os.path.join(SHARE, SOCKET_UNIT),
                os.path.join("/etc/systemd/system", SOCKET_UNIT))
    write_conf(['{ name = "echo-public"; family = "inet6"; address = "*"; '
                'port = 7; v6only = false; handler = "echo"; }'])
    rc, out = systemctl("daemon-reload")
    check(rc == 0, "daemon-reload: %s" % out)
    cur = journal_cursor()
    rc, out = systemctl("start", SOCKET_UNIT)
    check(rc == 0, "systemctl start %s: %s" % (SOCKET_UNIT, out))
    check(prop("ActiveState") == "inactive",
          "the service runs before any connection")
    # The first connection starts the service, which serves it.
    got = exchange(7, b"activated\n")
    check(got == b"activated\n", "echo through the socket unit gave %r" % got)
    check(prop("ActiveState") == "active", "service state %s"
          % prop("ActiveState"))
    wait_journal(cur, 'inherited socket "echo-public"',
                 "the listener to log the inherited socket")
    check(answers(7, b"six\n", host="::1"), "no echo on [::1]:7")
    # A reload keeps the socket.
    rc, out = systemctl("reload", UNIT)
    check(rc == 0, "systemctl reload: %s" % out)
    wait_journal(cur, "keeps its socket", "the reload to keep the socket")
    check(answers(7, b"after reload\n"), "no echo after the reload")
    # Stopped, the socket unit still holds the port; the next connection
    # starts the service again.
    rc, out = systemctl("stop", UNIT)
    check(rc == 0, "systemctl stop: %s" % out)
    check(prop("ActiveState") == "inactive", "the service did not stop")
    check(answers(7, b"again\n"), "no echo from the restarted service")
    check(prop("ActiveState") == "active", "not started again")
    systemctl("stop", SOCKET_UNIT, UNIT)
    os.unlink(os.path.join("/etc/systemd/system", SOCKET_UNIT))
    systemctl("daemon-reload")


def failed_with_no_restart(why):
    # Poll until the unit settles in "failed"; a restarting unit passes
    # through "activating" (auto-restart) until the start limit.
    wait_for(lambda: prop("ActiveState") == "failed",
             "ActiveState failed (%s)" % why, timeout=30)
    n = prop("NRestarts")
    check(n == "0", "%s: restarted %s times\n%s" % (why, n, status()))


def test_exit_1_not_restarted():
    """A start-up error (exit status 1: a port already taken) is final."""
    reset()
    hog = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        hog.bind(("127.0.0.1", ECHO))
        hog.listen(1)
        rc, out = systemctl("start", UNIT)
        check(rc != 0, "started although the port is taken")
        failed_with_no_restart("exit status 1")
        check(prop("ExecMainStatus") == "1", "ExecMainStatus=%s"
              % prop("ExecMainStatus"))
    finally:
        hog.close()


def test_bad_file_not_restarted():
    """A bad file at start: the ExecStartPre= check fails, once."""
    reset()
    text = write_conf(BASE + [listener("bad", 7020, extra="bogus = 1;")])
    cur = journal_cursor()
    rc, out = systemctl("start", UNIT)
    check(rc != 0, "started with a bad file")
    failed_with_no_restart("a bad file")
    wait_journal(cur, '%s unknown listener setting "bogus"'
                 % where(text, "bogus"), "FILE:LINE of the bad key")


def journal_match(*matches, unit=UNIT):
    """The entries of the journal with these FIELD=value matches
    (journalctl [-u UNIT] FIELD=value ...), as dicts."""
    run("journalctl", "--sync")
    rc, out = run("journalctl", "--no-pager", "-o", "json",
                  *(["-u", unit] if unit else []), *matches)
    return [json.loads(ln) for ln in out.splitlines() if ln.startswith("{")]


def test_journal_fields():
    """log_target "journal": a request's messages reach the journal by
    its native protocol with SSD_LISTENER and SSD_PEER, so that
    "journalctl -u sockserverd SSD_LISTENER=echo" finds them, and
    "journalctl SSD_LISTENER=fork" those a fork listener's request
    process logs."""
    reset()
    write_conf(BASE, globals_='shutdown_timeout = 10.0; '
               'log_target = "journal"; log_level = "debug";')
    start()
    pid = prop("MainPID")
    for name, port in (("echo", ECHO), ("fork", FORK)):
        s = connect(port)
        me = "%s:%d" % s.getsockname()[:2]
        got = finish_request(s, b"hi\n")
        s.close()
        check(got == b"hi\n", "%s gave %r" % (name, got))
        done = "listener=%s peer=%s: done" % (name, me)
        # A fork child's last message comes from a process that has
        # exited by the time journald looks up its unit in /proc: the
        # entry has no _SYSTEMD_UNIT, and "journalctl -u" misses it.
        unit = UNIT if name == "echo" else None
        es = wait_for(lambda: [e for e in journal_match(
            "SSD_LISTENER=" + name, "SSD_PEER=" + me, unit=unit)
            if e.get("MESSAGE") == done],
            "journalctl %sSSD_LISTENER=%s SSD_PEER=%s: %r"
            % ("-u %s " % unit if unit else "", name, me, done))
        e = es[0]
        check(e.get("_TRANSPORT") == "journal", "_TRANSPORT=%r"
              % e.get("_TRANSPORT"))
        check(e.get("PRIORITY") == "7" and
              e.get("SYSLOG_IDENTIFIER") == "sockserverd",
              "PRIORITY=%r SYSLOG_IDENTIFIER=%r" % (
                  e.get("PRIORITY"), e.get("SYSLOG_IDENTIFIER")))
        if name == "echo":
            check(e.get("_PID") == pid, "_PID=%r, MainPID=%s"
                  % (e.get("_PID"), pid))
    # Nothing fell back to stderr (journald's stream from the unit).
    stream = [e.get("MESSAGE") for e in journal_match("_TRANSPORT=stdout")
              if e.get("_PID") == pid]
    check(not any("cannot reach" in str(m) for m in stream),
          "fell back to stderr: %r" % stream)


TESTS = [test_start_notify, test_echo, test_reload_applies,
         test_reload_bad_file_fails, test_reload_check_is_quiet,
         test_reload_unreadable_file_fails,
         test_plugin_dropped_in, test_stop_drains_fork_and_exec,
         test_socket_activation, test_exit_1_not_restarted,
         test_bad_file_not_restarted, test_journal_fields]


def main():
    global LOG
    os.makedirs(RESULTS, exist_ok=True)
    LOG = open(os.path.join(RESULTS, "log"), "w")
    want = sys.argv[2:]
    passed = failed = 0
    rc, out = run("systemctl", "--version")
    say("# " + out.splitlines()[0])
    for t in TESTS:
        name = t.__name__[len("test_"):]
        if want and name not in want:
            continue
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
        reset()
    except Fail:
        pass
    run("journalctl", "--sync")
    with open(os.path.join(RESULTS, "journal"), "w") as f:
        f.write(run("journalctl", "--no-pager", "-u", UNIT, "-u",
                    SOCKET_UNIT, timeout=30)[1])
    with open(os.path.join(RESULTS, "done.tmp"), "w") as f:
        f.write("%d %d\n" % (passed, failed))
    os.rename(os.path.join(RESULTS, "done.tmp"),
              os.path.join(RESULTS, "done"))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
