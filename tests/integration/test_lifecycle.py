# SPDX-License-Identifier: ISC
"""Start-up, readiness and stop: NOTIFY_SOCKET messages, unix socket files
(created, replaced when stale, refused when live or not a socket, removed
at stop), the SIGTERM drain, SIGINT, SIGHUP and JOURNAL_STREAM logging."""

import os
import re
import signal
import socket
import stat
import subprocess
import time
import unittest

from ssdtest import (HAVE_IPV6, QUIET, DaemonTestCase, closed_by_peer, conf,
                     listener_conf, nothing_arrives, recv_exactly,
                     recv_until_eof, recv_within, send_all, wait_for)


def refused(addr):
    """True if a new TCP connection to addr is refused."""
    try:
        socket.create_connection(addr, timeout=5).close()
    except ConnectionRefusedError:
        return True
    return False


def exchange(s, payload):
    send_all(s, payload)
    return recv_exactly(s, len(payload))


class ReadinessTests(DaemonTestCase):

    def test_ready_after_every_listener_is_bound(self):
        ls = [listener_conf("tcp4"),
              listener_conf("udp4", type="dgram"),
              listener_conf("unix", address="@DIR@/s.sock"),
              listener_conf("unixd", address="@DIR@/d.sock", type="dgram"),
              listener_conf("abstract", address="@@UNIQ@-r"),
              listener_conf("time", handler="time"),
              listener_conf("daytime", handler="daytime", type="dgram")]
        if HAVE_IPV6:
            ls += [listener_conf("tcp6", address="::1"),
                   listener_conf("udp6", address="::1", type="dgram")]
        d = self.daemon(conf(*ls))
        # Straight after READY=1, without any retry, every one answers.
        for name in d.listeners:
            if name in ("time", "daytime"):
                continue
            with self.subTest(listener=name):
                self.assertEqual(d.echo_once(name, b"ready?"), b"ready?")
        self.assertEqual(len(recv_until_eof(d.connect("time"))), 4)
        s = d.dgram("daytime")
        s.send(b"?")
        self.assertTrue(recv_within(s).endswith(b"\r\n"))
        self.assertEqual(sorted(d.listeners),
                         sorted(re.match(r'\{ name = "([^"]+)"', x).group(1)
                                for x in ls))

    def test_notify_messages(self):
        d = self.daemon(conf(listener_conf("e")))
        self.assertIn("READY=1", d.notify_lines())
        d.wait_notify("STATUS=", 5)
        lines = d.notify_lines()
        status = [ln for ln in lines if ln.startswith("STATUS=")]
        self.assertTrue(all("\n" not in s and len(s) > 7 for s in status))
        for ln in lines:
            if ln.startswith("MAINPID="):
                self.assertEqual(ln, "MAINPID=%d" % d.pid)
        self.assertFalse(d.has_notify("STOPPING=1"))
        self.assertEqual(d.stop(), 0)
        self.assertTrue(d.has_notify("STOPPING=1"), d.notify_lines())
        # STOPPING comes after READY.
        lines = d.notify_lines()
        self.assertLess(lines.index("READY=1"), lines.index("STOPPING=1"))

    def test_port_zero_logs_the_chosen_port(self):
        d = self.daemon(conf(listener_conf("tcp"),
                             listener_conf("udp", type="dgram")))
        for name in ("tcp", "udp"):
            port = d.listener(name).port
            self.assertNotEqual(port, 0)
            self.assertTrue(re.search(r"info: listener=%s: listening on "
                                      r"127\.0\.0\.1:%d \(" % (name, port),
                                      d.log()))
        s = socket.create_connection(("127.0.0.1", d.listener("tcp").port),
                                     timeout=5)
        self.addCleanup(s.close)
        self.assertEqual(exchange(s, b"port"), b"port")

    def test_without_notify_socket(self):
        # No NOTIFY_SOCKET: the daemon runs all the same.
        d = self.daemon(conf(listener_conf("e", address="@DIR@/e.sock")),
                        ready=False, env={"NOTIFY_SOCKET": None})
        wait_for(lambda: os.path.exists(d.path("e.sock")) and
                 d.log_has("started"), 15, what="start-up")
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.addCleanup(s.close)
        s.settimeout(5)
        s.connect(d.path("e.sock"))
        self.assertEqual(exchange(s, b"quiet"), b"quiet")
        s.close()
        self.assertEqual(d.stop(), 0)


class UnixSocketFileTests(DaemonTestCase):

    def test_files_created_then_removed_at_stop(self):
        d = self.daemon(conf(
            listener_conf("s", address="@DIR@/s.sock"),
            listener_conf("dg", address="@DIR@/d.sock", type="dgram"),
            listener_conf("m", address="@DIR@/m.sock",
                          extra='unix_mode = "0600";')))
        for f, mode in (("s.sock", 0o666), ("d.sock", 0o666),
                        ("m.sock", 0o600)):
            st = os.lstat(d.path(f))
            self.assertTrue(stat.S_ISSOCK(st.st_mode), f)
            self.assertEqual(stat.S_IMODE(st.st_mode), mode, f)
        self.assertEqual(d.stop(), 0)
        for f in ("s.sock", "d.sock", "m.sock"):
            self.assertFalse(os.path.lexists(d.path(f)),
                             "%s left behind" % f)

    def test_regular_file_at_path_is_an_error_and_left_alone(self):
        d = self.daemon(conf(listener_conf("e", address="@DIR@/taken")),
                        start=False)
        path = d.path("taken")
        with open(path, "wb") as f:
            f.write(b"precious data\n")
        before = os.lstat(path)
        d.start(ready=False)
        self.assertEqual(d.wait_exit(), 1)
        self.assertIn(path, d.log())
        self.assertRegex(d.log(), r"%s:\d+: listener e: .*%s" % (
            re.escape(d.conf_path), re.escape(path)))
        after = os.lstat(path)
        self.assertTrue(stat.S_ISREG(after.st_mode))
        self.assertEqual((before.st_ino, before.st_size, before.st_mtime_ns),
                         (after.st_ino, after.st_size, after.st_mtime_ns))
        with open(path, "rb") as f:
            self.assertEqual(f.read(), b"precious data\n")
        self.assertFalse(d.has_notify("READY=1"))

    def stale(self, path, type_):
        s = socket.socket(socket.AF_UNIX, type_)
        s.bind(path)
        s.close()               # no unlink: a stale socket file
        self.assertTrue(stat.S_ISSOCK(os.lstat(path).st_mode))

    def test_stale_socket_is_replaced(self):
        d = self.daemon(conf(
            listener_conf("s", address="@DIR@/s.sock"),
            listener_conf("dg", address="@DIR@/d.sock", type="dgram")),
            start=False)
        self.stale(d.path("s.sock"), socket.SOCK_STREAM)
        self.stale(d.path("d.sock"), socket.SOCK_DGRAM)
        d.start()
        self.assertEqual(d.echo_once("s", b"fresh"), b"fresh")
        self.assertEqual(d.echo_once("dg", b"fresh"), b"fresh")
        d.wait_log(r"removed stale socket %s" % re.escape(d.path("s.sock")))
        d.wait_log(r"removed stale socket %s" % re.escape(d.path("d.sock")))
        self.assertEqual(d.stop(), 0)
        self.assertFalse(os.path.lexists(d.path("s.sock")))

    def test_stale_socket_of_the_other_type_is_replaced(self):
        d = self.daemon(conf(listener_conf("s", address="@DIR@/s.sock")),
                        start=False)
        self.stale(d.path("s.sock"), socket.SOCK_DGRAM)
        d.start()
        self.assertEqual(d.echo_once("s", b"fresh"), b"fresh")

    def test_file_replaced_by_someone_else_is_not_removed(self):
        d = self.daemon(conf(listener_conf("s", address="@DIR@/s.sock")))
        path = d.path("s.sock")
        os.unlink(path)
        other = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.addCleanup(other.close)
        other.bind(path)
        ino = os.lstat(path).st_ino
        self.assertEqual(d.stop(), 0)
        self.assertTrue(os.path.lexists(path), "removed a file not its own")
        self.assertEqual(os.lstat(path).st_ino, ino)

    def test_missing_directory_is_an_error(self):
        d = self.daemon(conf(listener_conf("s", address="@DIR@/no/s.sock")),
                        ready=False)
        self.assertEqual(d.wait_exit(), 1)
        self.assertIn(d.path("no/s.sock"), d.log())
        self.assertFalse(d.has_notify("READY=1"))

    def test_abstract_name_in_use_is_an_error(self):
        d = self.daemon(conf(listener_conf("a", address="@@UNIQ@-busy")),
                        start=False)
        holder = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.addCleanup(holder.close)
        holder.bind("\0%s-busy" % d.uniq)
        holder.listen(1)
        d.start(ready=False)
        self.assertEqual(d.wait_exit(), 1)
        self.assertIn("@%s-busy" % d.uniq, d.log())

    def live(self, path, type_):
        s = socket.socket(socket.AF_UNIX, type_)
        self.addCleanup(s.close)
        s.bind(path)
        if type_ == socket.SOCK_STREAM:
            s.listen(5)
        return s

    def test_live_listener_at_path_is_an_error_and_left_alone(self):
        d = self.daemon(conf(listener_conf("e", address="@DIR@/live")),
                        start=False)
        path = d.path("live")
        owner = self.live(path, socket.SOCK_STREAM)
        ino = os.lstat(path).st_ino
        d.start(ready=False)
        self.assertEqual(d.wait_exit(), 1)
        self.assertIn(path, d.log())
        self.assertEqual(os.lstat(path).st_ino, ino)
        # Still ours: a client reaches our listening socket.
        c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.addCleanup(c.close)
        c.settimeout(5)
        c.connect(path)
        owner.settimeout(5)
        conn, _ = owner.accept()
        conn.close()

    def test_live_socket_of_the_other_type_is_left_alone(self):
        d = self.daemon(conf(listener_conf("e", address="@DIR@/live")),
                        start=False)
        path = d.path("live")
        self.live(path, socket.SOCK_DGRAM)
        ino = os.lstat(path).st_ino
        d.start(ready=False)
        self.assertEqual(d.wait_exit(), 1)
        self.assertIn(path, d.log())
        self.assertEqual(os.lstat(path).st_ino, ino)

    def test_failed_start_removes_files_it_created(self):
        # The second listener cannot bind: the first one's file goes too.
        blocker = socket.socket()
        self.addCleanup(blocker.close)
        blocker.bind(("127.0.0.1", 0))
        blocker.listen(1)
        port = blocker.getsockname()[1]
        d = self.daemon(conf(
            listener_conf("first", address="@DIR@/first.sock"),
            listener_conf("second", port=port,
                          extra="reuse_address = false;")), ready=False)
        self.assertEqual(d.wait_exit(), 1)
        self.assertRegex(d.log(), r"%s:\d+: listener second: cannot bind "
                         r"127\.0\.0\.1:%d" % (re.escape(d.conf_path), port))
        self.assertFalse(os.path.lexists(d.path("first.sock")))
        self.assertFalse(d.has_notify("READY=1"))


class StopTests(DaemonTestCase):

    def test_sigterm_exit_0_and_stopping(self):
        d = self.daemon(conf(listener_conf("e")))
        self.assertEqual(d.echo_once("e"), b"ping\n")
        self.assertEqual(d.stop(), 0)
        self.assertTrue(d.has_notify("STOPPING=1"))
        self.assertTrue(d.log_has(r"SIGTERM"))

    def test_sigint_exit_0(self):
        d = self.daemon(conf(listener_conf("e")))
        d.signal(signal.SIGINT)
        self.assertEqual(d.wait_exit(), 0)
        self.assertTrue(d.has_notify("STOPPING=1"))

    def test_drain_waits_for_request_in_progress(self):
        d = self.daemon(conf(listener_conf("e"),
                             listener_conf("u", address="@DIR@/u.sock")))
        port = d.listener("e").port
        a = d.connect("e")
        self.assertEqual(exchange(a, b"before"), b"before")
        d.signal(signal.SIGTERM)
        d.wait_notify("STOPPING=1")
        # The listening sockets are closed at once (STOPPING=1 may come
        # just before they are)...
        wait_for(lambda: refused(("127.0.0.1", port)), 2,
                 what="connections refused after SIGTERM")
        wait_for(lambda: not os.path.lexists(d.path("u.sock")),
                 what="unix socket file removed at SIGTERM")
        # ...while the request in progress goes on.
        self.assertTrue(d.running())
        self.assertEqual(exchange(a, b"during"), b"during")
        with self.assertRaises(subprocess.TimeoutExpired):
            d.proc.wait(QUIET)
        # It leaves: the daemon exits 0 right after.
        t0 = time.monotonic()
        a.shutdown(socket.SHUT_WR)
        self.assertEqual(recv_until_eof(a), b"")
        a.close()
        self.assertEqual(d.wait_exit(5), 0)
        self.assertLess(time.monotonic() - t0, 4)

    def test_shutdown_timeout_cuts_idle_client(self):
        d = self.daemon(conf(listener_conf("e"),
                             globals_="shutdown_timeout = 0.5;"))
        a = d.connect("e")
        self.assertEqual(exchange(a, b"x"), b"x")
        t0 = time.monotonic()
        d.signal(signal.SIGTERM)
        self.assertEqual(d.wait_exit(10), 0)
        elapsed = time.monotonic() - t0
        self.assertGreaterEqual(elapsed, 0.4)
        self.assertLess(elapsed, 5.0, "took %.1fs" % elapsed)
        self.assertTrue(closed_by_peer(a))
        self.assertTrue(d.log_has(r"shutdown_timeout"))

    def test_integer_shutdown_timeout(self):
        d = self.daemon(conf(listener_conf("e"),
                             globals_="shutdown_timeout = 0;"))
        a = d.connect("e")
        self.assertEqual(exchange(a, b"x"), b"x")
        d.signal(signal.SIGTERM)
        self.assertEqual(d.wait_exit(10), 0)
        self.assertTrue(closed_by_peer(a))

    def test_backlog_client_dropped_at_sigterm(self):
        d = self.daemon(conf(listener_conf("e", concurrency="sync")))
        a = d.connect("e")
        self.assertEqual(exchange(a, b"A"), b"A")
        b = d.connect("e")                  # queued behind A
        send_all(b, b"B")
        self.assertTrue(nothing_arrives(b, 0.1))
        d.signal(signal.SIGTERM)
        d.wait_notify("STOPPING=1")
        # The queued connection dies with the listening socket.
        self.assertTrue(closed_by_peer(b), "queued client was served")
        self.assertEqual(exchange(a, b"A2"), b"A2")
        a.close()
        self.assertEqual(d.wait_exit(5), 0)

    def test_stop_while_dgram_listener_idle(self):
        d = self.daemon(conf(listener_conf("u", type="dgram"),
                             listener_conf("ud", address="@DIR@/ud.sock",
                                           type="dgram")))
        self.assertEqual(d.echo_once("u", b"1"), b"1")
        self.assertEqual(d.echo_once("ud", b"2"), b"2")
        self.assertEqual(d.stop(), 0)
        self.assertFalse(os.path.lexists(d.path("ud.sock")))


class SighupTests(DaemonTestCase):

    def test_sighup_keeps_serving(self):
        d = self.daemon(conf(listener_conf("e")))
        a = d.connect("e")
        self.assertEqual(exchange(a, b"before"), b"before")
        d.signal(signal.SIGHUP)
        d.wait_log(r"SIGHUP|reload")
        self.assertTrue(d.running())
        # The connection in progress survives; new ones are served.
        self.assertEqual(exchange(a, b"after"), b"after")
        a.shutdown(socket.SHUT_WR)
        self.assertEqual(recv_until_eof(a), b"")
        a.close()
        self.assertEqual(d.echo_once("e", b"new"), b"new")
        self.assertEqual(d.stop(), 0)


class JournalTests(DaemonTestCase):

    def test_journal_stream_priority_prefixes(self):
        d = self.daemon(conf(listener_conf("e")), journal=True)
        self.assertEqual(d.echo_once("e"), b"ping\n")
        self.assertEqual(d.stop(), 0)
        lines = [ln for ln in d.log().splitlines() if ln]
        self.assertTrue(lines)
        for ln in lines:
            self.assertRegex(ln, r"^<[0-7]>", "line without a priority")
        self.assertRegex(d.log(), r"(?m)^<6>listener=e: listening on ")
        self.assertRegex(d.log(), r"(?m)^<7>listener=e peer=\S+: start")
        self.assertNotIn("sockserverd[", d.log())

    def test_plain_stderr_without_journal_stream(self):
        d = self.daemon(conf(listener_conf("e")))
        self.assertEqual(d.stop(), 0)
        for ln in d.log().splitlines():
            if ln:
                self.assertRegex(ln, r"^sockserverd\[%d\]: "
                                 r"(error|warning|notice|info|debug): "
                                 % d.pid)


if __name__ == "__main__":
    unittest.main()
