# SPDX-License-Identifier: ISC
"""Misbehaving clients never stop the daemon: resets (SO_LINGER 0) while
other traffic goes on, handler errors, writes to a closed peer (SIGPIPE
must be ignored), and a burst of short connections."""

import os
import re
import socket
import threading
import time
import unittest

from ssdtest import (IO_TIMEOUT, DaemonTestCase, Deadline, conf,
                     listener_conf, model_conf, recv_exactly, recv_within,
                     reset_close, send_all, wait_for)


class ResetTests(DaemonTestCase):

    def test_resets_while_echo_traffic_continues(self):
        d = self.daemon(conf(listener_conf("e"), listener_conf("e2")))
        errors, done = [], threading.Event()

        def traffic():
            # Echo round trips on the other listener, until told to stop.
            dl = Deadline(30)
            try:
                for i in range(10000):
                    if done.is_set() or dl.expired():
                        break
                    p = b"traffic %d\n" % i
                    got = d.echo_once("e2", p)
                    if got != p:
                        errors.append("echo %d: %r" % (i, got))
                        break
            except Exception as e:
                errors.append(repr(e))

        t = threading.Thread(target=traffic, daemon=True)
        t.start()
        try:
            for i in range(50):
                s = d.connect("e")
                if i % 2:
                    send_all(s, b"about to reset %d" % i)
                    if i % 4 == 1:
                        # Wait for the echo: the request is surely in
                        # handle() when the reset arrives.
                        recv_within(s, 5, 64)
                reset_close(s)
        finally:
            done.set()
            t.join(30)
        self.assertFalse(t.is_alive())
        self.assertEqual(errors, [])
        self.assertTrue(d.running())
        self.assertEqual(d.echo_once("e", b"still here"), b"still here")
        self.assertEqual(d.echo_once("e2", b"me too"), b"me too")

    def test_handler_error_is_logged_and_daemon_lives(self):
        # The client sends a lot and resets without reading: echo's write
        # fails, handle() returns an error; a client that went away is
        # logged at debug, not as a handler error.
        d = self.daemon(conf(listener_conf("e")))
        for _ in range(3):
            s = d.connect("e")
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            try:
                send_all(s, os.urandom(1 << 20), timeout=2)
            except (socket.timeout, ConnectionError):
                pass        # the daemon's buffers are full: fine
            reset_close(s)
        d.wait_log(r"listener=e peer=127\.0\.0\.1:\d+: the client went away")
        self.assertNotIn("handler echo failed", d.log())
        self.assertTrue(d.running())
        self.assertEqual(d.echo_once("e", b"alive"), b"alive")

    def test_burst_of_short_connections(self):
        d = self.daemon(conf(listener_conf("e"),
                             listener_conf("u", address="@DIR@/b.sock")))
        for i in range(200):
            name = "e" if i % 2 else "u"
            s = d.connect(name)
            s.close()
        for name in ("e", "u"):
            self.assertEqual(d.echo_once(name, b"x"), b"x")


class SlowReaderTests(DaemonTestCase):
    """A client that reads a little now and then holds a request no longer
    than its timeout: the timeout bounds a whole ssd_write, not each
    partial send of it."""

    def check_model(self, model):
        d = self.daemon(conf(model_conf("cg", model, handler="chargen",
                                        extra="timeout = 1;")))
        ln = d.listener("cg")
        s = socket.socket(ln.family, socket.SOCK_STREAM)
        self.addCleanup(s.close)
        # A tiny window and small segments: the daemon's send buffer
        # drains a little at a time, and each 7 KB write of chargen,
        # read at 3 KB/s, takes over 2 s in many partial sends.
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_MAXSEG, 88)
        s.settimeout(IO_TIMEOUT)
        s.connect(ln.addr)
        t = time.monotonic()
        dl = Deadline(6)
        timed_out = r"listener=cg peer=\S+: timed out after 1s"
        while not dl.expired() and not d.log_has(timed_out):
            try:
                if not s.recv(300):
                    break
            except (ConnectionResetError, socket.timeout):
                break
            time.sleep(0.1)
        d.wait_log(timed_out, timeout=0.5)
        # The send buffer fills (under a second at this pace), then one
        # write waits 1 s: about 1.8 s for every model here.  The
        # blocking models (thread, fork) took 4.9 s while the first
        # send's own wait (SO_SNDTIMEO) came on top of the write's
        # timeout instead of within it.
        self.assertLess(time.monotonic() - t, 3.5)

    def test_thread(self):
        self.check_model("thread")

    def test_fork(self):
        self.check_model("fork")

    def test_event(self):
        self.check_model("event")


class SigpipeTests(DaemonTestCase):

    def test_chargen_client_closes_abruptly(self):
        d = self.daemon(conf(listener_conf("cg", handler="chargen"),
                             listener_conf("cgu", handler="chargen",
                                           address="@DIR@/cg.sock"),
                             listener_conf("e")))
        for name in ("cg", "cgu"):
            ended = re.compile(r"listener=%s peer=\S+: (done|handler "
                               r"chargen failed)" % name)
            for n, how in enumerate(("close", "reset", "close", "reset")):
                s = d.connect(name)
                self.assertEqual(len(recv_exactly(s, 74 * 10)), 740)
                if how == "close":
                    s.close()       # unread data: the kernel resets
                else:
                    reset_close(s)
                # The server notices on its next write, and goes on.
                wait_for(lambda: len(ended.findall(d.log())) > n, 10,
                         what="request %d on %s to end" % (n, name))
                self.assertTrue(d.running(), "daemon died (SIGPIPE?)")
        self.assertEqual(d.echo_once("e", b"after"), b"after")
        status = "/proc/%d/status" % d.pid
        if os.path.exists(status):
            with open(status) as f:
                m = re.search(r"(?m)^SigIgn:\s*([0-9a-f]+)", f.read())
            if m:
                self.assertTrue(int(m.group(1), 16) >> (13 - 1) & 1,
                                "SIGPIPE is not ignored")
        s = d.connect("cg")
        self.assertEqual(recv_exactly(s, 74)[:3], b" !\"")
        s.close()
        self.assertEqual(d.stop(), 0)

    def test_echo_peer_gone_before_reply(self):
        # Each client sends and closes at once: the reply is written to a
        # peer that is gone (EPIPE, or a reset), which must not kill us.
        d = self.daemon(conf(listener_conf("e", address="@DIR@/e.sock"),
                             listener_conf("t")))
        for name in ("e", "t"):
            for _ in range(20):
                s = d.connect(name)
                s.send(b"y" * 1000)
                s.close()
            ended = re.compile(r"listener=%s peer=\S+: (done|the client "
                               r"went away)" % name)
            wait_for(lambda: len(ended.findall(d.log())) >= 20, 10,
                     what="20 requests ended on %s" % name)
        self.assertTrue(d.running())
        self.assertEqual(d.echo_once("e", b"ok"), b"ok")
        self.assertEqual(d.echo_once("t", b"ok"), b"ok")


if __name__ == "__main__":
    unittest.main()
