# SPDX-License-Identifier: ISC
"""The exec handler (inetd / ucspi-tcp style): the program gets the
connection on stdin/stdout, its argv from options.args, options.env and
the ucspi-tcp variables; under every model; a silent program is ended at
the listener's timeout; its exit status is logged; no zombies."""

import os
import re
import socket
import stat
import sys
import time

from ssdtest import (DaemonTestCase, children_of, conf, listener_conf,
                     model_conf,
                     recv_until_eof, run_binary, send_all, wait_for)

SCRIPT = """#!/bin/sh
echo "proto=$PROTO remote=$TCPREMOTEIP:$TCPREMOTEPORT local=$TCPLOCALIP:$TCPLOCALPORT extra=$EXTRA arg1=$1"
exit 3
"""


class ExecTests(DaemonTestCase):

    def script(self, d):
        path = os.path.join(d.dir, "vars.sh")
        with open(path, "w") as f:
            f.write(SCRIPT)
        os.chmod(path, stat.S_IRWXU)
        return path

    def no_zombies(self, d):
        wait_for(lambda: not children_of(d.pid), 10,
                 what="the daemon's children to be reaped")

    def check_model(self, model):
        d = self.daemon(conf(
            model_conf("cat", model,
                       handler="exec",
                       extra='options = { program = "/bin/cat"; };'),
            model_conf("sh", model, handler="exec",
                       extra='options = { program = "@DIR@/vars.sh"; '
                             'args = [ "vars", "A1" ]; '
                             'env = { EXTRA = "yes"; }; };')),
            start=False)
        self.script(d)
        d.start()
        s = d.connect("cat")
        send_all(s, b"meow\n" * 100)
        s.shutdown(socket.SHUT_WR)
        self.assertEqual(recv_until_eof(s), b"meow\n" * 100)
        s.close()
        s = d.connect("sh")
        me = s.getsockname()
        out = recv_until_eof(s).decode()
        s.close()
        port = d.listener("sh").port
        self.assertEqual(out, "proto=TCP remote=127.0.0.1:%d local="
                         "127.0.0.1:%d extra=yes arg1=A1\n" % (me[1], port))
        d.wait_log(r"listener=sh peer=127\.0\.0\.1:%d: \S+vars\.sh exited "
                   r"with status 3" % me[1])
        self.no_zombies(d)

    def test_sync(self):
        self.check_model("sync")

    def test_thread(self):
        self.check_model("thread")

    def test_fork(self):
        self.check_model("fork")

    def test_event(self):
        self.check_model("event")

    def check_only_stdio(self, model):
        # The program gets 0, 1 and 2 and nothing else: under fork the
        # handler process keeps the connection at 3, which must not leak.
        d = self.daemon(conf(model_conf(
            "fds", model, handler="exec",
            extra='options = { program = "/bin/sh"; args = [ "sh", "-c", '
                  '"ls /proc/$$/fd" ]; };')))
        s = d.connect("fds")
        out = recv_until_eof(s).decode()
        s.close()
        self.assertEqual(out.split(), ["0", "1", "2"], out)
        self.no_zombies(d)

    def test_a_failure_exec_explains_is_logged_once(self):
        # exec said why at error, then the generic "handler exec failed"
        # followed: two error lines for one failure (issue 9, 15).
        d = self.daemon(conf(listener_conf(
            "u", handler="exec", type="dgram",
            extra='options = { program = "/bin/cat"; };')))
        c = d.dgram("u")
        c.send(b"x\n")
        d.wait_log(r"listener=u peer=\S+: exec serves stream listeners")
        self.assertStopsCleanly(d)
        errors = [ln for ln in d.log().splitlines() if ": error: " in ln]
        self.assertEqual(len(errors), 1, errors)

    def test_only_stdio_sync(self):
        self.check_only_stdio("sync")

    def test_only_stdio_thread(self):
        self.check_only_stdio("thread")

    def test_only_stdio_fork(self):
        self.check_only_stdio("fork")

    def test_only_stdio_event(self):
        self.check_only_stdio("event")

    def test_silent_program_is_ended_at_the_timeout(self):
        d = self.daemon(conf(model_conf(
            "slp", "event", handler="exec",
            extra='timeout = 0.5; options = { program = "/bin/sleep"; '
                  'args = [ "sleep", "30" ]; };'),
            model_conf("cat", "event", handler="exec",
                       extra='timeout = 0.5; '
                             'options = { program = "/bin/cat"; };')))
        t = time.monotonic()
        s = d.connect("slp")
        self.assertEqual(recv_until_eof(s, timeout=10), b"")
        self.assertLess(time.monotonic() - t, 5)
        s.close()
        d.wait_log(r"/bin/sleep killed by signal 15")
        # A talking program is not: cat for 1.5 s with a line each 0.1 s.
        s = d.connect("cat")
        for _ in range(15):
            send_all(s, b"tick\n")
            time.sleep(0.1)
        s.shutdown(socket.SHUT_WR)
        self.assertEqual(recv_until_eof(s), b"tick\n" * 15)
        s.close()
        self.no_zombies(d)

    def test_other_requests_go_on_while_a_program_runs(self):
        d = self.daemon(conf(model_conf(
            "slp", "event", handler="exec",
            extra='timeout = 0; options = { program = "/bin/sleep"; '
                  'args = [ "sleep", "30" ]; };'),
            model_conf("e", "event"), globals_="shutdown_timeout = 0.5;"))
        s = d.connect("slp")
        for _ in range(3):
            self.assertEqual(d.echo_once("e", b"still here"),
                             b"still here")
        s.close()

    def check_stop_ends_the_program(self, model):
        d = self.daemon(conf(model_conf(
            "slp", model, handler="exec",
            extra='timeout = 0; options = { program = "/bin/sleep"; '
                  'args = [ "sleep", "60" ]; };'),
            globals_="shutdown_timeout = 0.3;"))
        s = d.connect("slp")
        wait_for(lambda: self.sleepers(d) > 0, 10, what="sleep to run")
        self.assertEqual(d.stop(), 0)
        s.close()
        wait_for(lambda: self.sleepers(d) == 0, 10,
                 what="the program to be gone after the stop")

    def sleepers(self, d):
        """Live processes running /bin/sleep 60 in the daemon's session."""
        n = 0
        for pid in os.listdir("/proc"):
            if not pid.isdigit():
                continue
            try:
                with open("/proc/%s/cmdline" % pid, "rb") as f:
                    cmd = f.read()
                with open("/proc/%s/stat" % pid) as f:
                    st = f.read()
            except OSError:
                continue
            if cmd == b"sleep\x0060\x00" and \
                    st[st.rfind(")") + 2] != "Z" and \
                    st[st.rfind(")") + 2:].split()[3] == str(d.pid):
                n += 1
        return n

    def test_stop_ends_the_program_sync(self):
        self.check_stop_ends_the_program("sync")

    def test_stop_ends_the_program_thread(self):
        self.check_stop_ends_the_program("thread")

    def test_stop_ends_the_program_fork(self):
        self.check_stop_ends_the_program("fork")

    def test_stop_ends_the_program_event(self):
        self.check_stop_ends_the_program("event")

    def check_program_signals(self, model):
        # As from inetd: nothing blocked, SIGPIPE not ignored, whatever
        # the daemon's worker threads block or ignore.
        d = self.daemon(conf(model_conf(
            "st", model, handler="exec",
            extra='options = { program = "/bin/grep"; args = [ "grep", '
                  '"-E", "^Sig(Blk|Ign)", "/proc/self/status" ]; };')))
        s = d.connect("st")
        out = recv_until_eof(s).decode()
        s.close()
        blk = int(re.search(r"SigBlk:\s*([0-9a-f]+)", out).group(1), 16)
        ign = int(re.search(r"SigIgn:\s*([0-9a-f]+)", out).group(1), 16)
        self.assertEqual(blk, 0, out)
        self.assertFalse(ign >> (13 - 1) & 1, "SIGPIPE ignored: " + out)

    def test_program_signals_thread(self):
        self.check_program_signals("thread")

    def test_program_signals_event(self):
        self.check_program_signals("event")

    def test_timeout_ends_what_the_program_started(self):
        d = self.daemon(conf(model_conf(
            "bg", "thread", handler="exec",
            extra='timeout = 0.5; options = { program = "/bin/sh"; '
                  'args = [ "sh", "-c", "sleep 60 & wait" ]; };')))
        s = d.connect("bg")
        wait_for(lambda: self.sleepers(d) > 0, 10, what="sleep to run")
        self.assertEqual(recv_until_eof(s, timeout=10), b"")
        s.close()
        wait_for(lambda: self.sleepers(d) == 0, 10,
                 what="the program's own child to be gone too")

    def test_bad_options_are_config_errors(self):
        for opts, msg in (
                ("", r"exec needs options\.program"),
                ('options = { program = "cat"; };',
                 r"exec needs options\.program"),
                ('options = { program = "/nonexistent/x"; };',
                 r"program /nonexistent/x: No such file"),
                ('options = { program = "/bin/cat"; argz = [ "a" ]; };',
                 r'exec: unknown option "argz"'),
                ('options = { program = "/bin/cat"; args = [ ]; };',
                 r'"args" must be a non-empty array')):
            d = self.daemon(conf(model_conf("x", "event", handler="exec",
                                            extra=opts)), start=False)
            r = run_binary(["-t", "-c", d.conf_path])
            self.assertEqual(r.returncode, 1, opts)
            self.assertRegex(r.stderr.decode(), r"%s:\d+: %s"
                             % (re.escape(d.conf_path), msg))


# Runs argv[1:] with pidfd_open(2) failing with ENOSYS, as on kernels
# before 5.3 or under a seccomp policy that predates it: a filter that
# no_new_privs lets an unprivileged process install, kept across execve.
NO_PIDFD = r"""
import ctypes, os, struct, sys
PR_SET_NO_NEW_PRIVS, PR_SET_SECCOMP, SECCOMP_MODE_FILTER = 38, 22, 2
NR_PIDFD_OPEN, ENOSYS = 434, 38     # 434 on every architecture but alpha
def insn(code, jt, jf, k):
    return struct.pack("HBBI", code, jt, jf, k)
prog = (insn(0x20, 0, 0, 0) +                       # ld [nr]
        insn(0x15, 0, 1, NR_PIDFD_OPEN) +           # jeq pidfd_open
        insn(0x06, 0, 0, 0x00050000 | ENOSYS) +     # ret ERRNO(ENOSYS)
        insn(0x06, 0, 0, 0x7fff0000))               # ret ALLOW
buf = ctypes.create_string_buffer(prog)
fprog = struct.pack("HxxxxxxP", len(prog) // 8, ctypes.addressof(buf))
libc = ctypes.CDLL(None, use_errno=True)
if libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 or \
        libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER,
                   ctypes.c_char_p(fprog), 0, 0) != 0:
    sys.exit("seccomp: " + os.strerror(ctypes.get_errno()))
os.execv(sys.argv[1], sys.argv[1:])
"""


class ExecWithoutPidfdTests(DaemonTestCase):
    """Where pidfd_open is missing, programs still run to completion and
    are reaped (waitpid polled), without blocking the event loop, with
    the timeout as with a pidfd."""

    def nopidfd_daemon(self, text, **kw):
        d = self.daemon(text, start=False, **kw)
        cmd = d.command
        d.command = lambda: [sys.executable, "-I", "-S", "-c",
                             NO_PIDFD] + cmd()
        d.start()
        return d

    def no_zombies(self, d):
        wait_for(lambda: not children_of(d.pid), 10,
                 what="the daemon's children to be reaped")

    def check_model(self, model):
        d = self.nopidfd_daemon(conf(
            model_conf("cat", model, handler="exec",
                       extra='options = { program = "/bin/cat"; };'),
            model_conf("sh", model, handler="exec",
                       extra='options = { program = "/bin/sh"; args = '
                             '[ "sh", "-c", "sleep 0.3; echo done; '
                             'exit 3" ]; };'),
            model_conf("e", "event")))
        s = d.connect("cat")
        send_all(s, b"meow\n" * 1000)
        s.shutdown(socket.SHUT_WR)
        self.assertEqual(recv_until_eof(s), b"meow\n" * 1000)
        s.close()
        d.wait_log(r"/bin/cat exited with status 0")
        s = d.connect("sh")
        # Served meanwhile: the wait for the program blocks nothing.
        self.assertEqual(d.echo_once("e", b"here"), b"here")
        self.assertEqual(recv_until_eof(s), b"done\n")
        s.close()
        d.wait_log(r"/bin/sh exited with status 3")
        self.assertTrue(d.log_has(r"pidfd_open: Function not implemented"),
                        "pidfd_open did not fail: the test tests nothing")
        self.no_zombies(d)

    def test_event(self):
        self.check_model("event")

    def test_thread(self):
        self.check_model("thread")

    def test_silent_program_is_ended_at_the_timeout(self):
        d = self.nopidfd_daemon(conf(model_conf(
            "slp", "event", handler="exec",
            extra='timeout = 0.5; options = { program = "/bin/sleep"; '
                  'args = [ "sleep", "30" ]; };')))
        t = time.monotonic()
        s = d.connect("slp")
        self.assertEqual(recv_until_eof(s, timeout=10), b"")
        self.assertLess(time.monotonic() - t, 5)
        s.close()
        d.wait_log(r"/bin/sleep killed by signal 15")
        self.no_zombies(d)

    def test_stop_ends_the_program(self):
        d = self.nopidfd_daemon(conf(model_conf(
            "slp", "thread", handler="exec",
            extra='timeout = 0; options = { program = "/bin/sleep"; '
                  'args = [ "sleep", "60" ]; };'),
            globals_="shutdown_timeout = 0.3;"))
        s = d.connect("slp")
        wait_for(lambda: ExecTests.sleepers(self, d) > 0, 10,
                 what="sleep to run")
        self.assertEqual(d.stop(), 0)
        s.close()
        wait_for(lambda: ExecTests.sleepers(self, d) == 0, 10,
                 what="the program to be gone after the stop")
