# SPDX-License-Identifier: ISC
"""Limits under the concurrency models (issue 3): max_connections per
listener and across listeners, many silent connections, abrupt resets
(the descriptor count goes back to its baseline), 2,000 concurrent
connections under event, and accept() at EMFILE (a low RLIMIT_NOFILE):
paused and logged once, little CPU, and serving again afterwards."""

import os
import re
import resource
import socket
import subprocess
import time
import unittest

from ssdtest import (QUIET, DaemonTestCase, Deadline, conf, cpu_seconds,
                     fd_count, model_conf, socket_count, nothing_arrives, raise_nofile,
                     recv_exactly, recv_until_eof, reset_close, send_all,
                     wait_for)


def exchange(s, payload):
    send_all(s, payload)
    return recv_exactly(s, len(payload))


def finish(s):
    s.shutdown(socket.SHUT_WR)
    rest = recv_until_eof(s)
    s.close()
    return rest


def started(d, name):
    """How many requests listener name has started (logged at debug)."""
    return len(re.findall(r"listener=%s peer=\S+: start$" % name, d.log(),
                          re.M))


def wait_fd_count(d, want, timeout=10):
    """Polls until the daemon has exactly want descriptors open."""
    try:
        wait_for(lambda: fd_count(d.pid) == want, timeout,
                 what="the daemon's descriptor count back at %d" % want)
    except AssertionError as e:
        raise AssertionError("%s: it has %d open: %s" % (
            e, fd_count(d.pid), describe_fds(d.pid))) from None


def describe_fds(pid):
    """The last 20 descriptors of pid and what they are (for failures)."""
    out = {}
    for fd in sorted(os.listdir("/proc/%d/fd" % pid), key=int)[-20:]:
        try:
            out[fd] = os.readlink("/proc/%d/fd/%s" % (pid, fd))
        except OSError:
            pass
    return out


class EveryModelLimits:
    """Limits every model honours; MODEL is one of ssdtest.MODELS."""

    MODEL = None

    def lconf(self, name, **kw):
        return model_conf(name, self.MODEL, **kw)

    def test_500_resets_leave_fd_count_at_baseline(self):
        d = self.daemon(conf(self.lconf("e", extra="queue_size = 1024;")))
        # Baseline once a first request has come and gone (what a model
        # sets up lazily is then set up).
        self.assertEqual(d.echo_once("e", b"warm up"), b"warm up")
        d.wait_log(r"listener=e peer=\S+: done")
        # The connection closes just after "done" (on the loop that
        # served it): the baseline is taken once only the listening
        # socket is left.
        wait_for(lambda: socket_count(d.pid) == 1,
                 what="the warm-up connection closed")
        base = fd_count(d.pid)
        dl = Deadline(60)
        for i in range(500):
            self.assertFalse(dl.expired(), "500 resets took over 60 s")
            s = d.connect("e")
            s.send(b"x")
            reset_close(s)
        # Every one of them was accepted (its descriptor was opened)...
        wait_for(lambda: started(d, "e") >= 501, 20,
                 what="501 requests started")
        # ...and is closed again.
        wait_fd_count(d, base, 20)
        self.assertTrue(d.running())
        self.assertEqual(d.echo_once("e", b"after resets"), b"after resets")
        wait_fd_count(d, base)


class ConcurrentLimits:
    """Limits of the models that serve many requests at once."""

    def test_listener_max_connections_2_holds_the_third(self):
        d = self.daemon(conf(self.lconf("e", extra="max_connections = 2;"),
                             self.lconf("free")))
        a, b = d.connect("e"), d.connect("e")
        self.assertEqual(exchange(a, b"first"), b"first")
        self.assertEqual(exchange(b, b"second"), b"second")
        c = d.connect("e")          # connect succeeds: the backlog
        send_all(c, b"third")
        self.assertTrue(nothing_arrives(c, QUIET),
                        "third client served while two were connected")
        # The cap is the listener's: another listener is not held.
        self.assertEqual(d.echo_once("free", b"f"), b"f")
        self.assertEqual(exchange(b, b"b again"), b"b again")
        self.assertTrue(nothing_arrives(c, 0.05))
        self.assertEqual(finish(a), b"")
        self.assertEqual(recv_exactly(c, 5), b"third")
        self.assertEqual(exchange(b, b"b still"), b"b still")
        self.assertEqual(finish(b), b"")
        self.assertEqual(finish(c), b"")

    def test_global_max_connections_2_spans_listeners(self):
        d = self.daemon(conf(self.lconf("one"), self.lconf("two"),
                             globals_="max_connections = 2;"))
        a, b = d.connect("one"), d.connect("two")
        self.assertEqual(exchange(a, b"a"), b"a")
        self.assertEqual(exchange(b, b"b"), b"b")
        c = d.connect("two")
        send_all(c, b"c")
        self.assertTrue(nothing_arrives(c, QUIET),
                        "global max_connections = 2 let three run")
        # A slot freed on listener one lets listener two's client in.
        self.assertEqual(finish(a), b"")
        self.assertEqual(recv_exactly(c, 1), b"c")
        e = d.connect("one")
        send_all(e, b"e")
        self.assertTrue(nothing_arrives(e, QUIET),
                        "global max_connections = 2 let three run")
        self.assertEqual(finish(b), b"")
        self.assertEqual(recv_exactly(e, 1), b"e")
        self.assertEqual(finish(c), b"")
        self.assertEqual(finish(e), b"")

    def test_200_silent_connections_do_not_delay_a_client(self):
        d = self.daemon(conf(self.lconf("e", extra="queue_size = 512;")))
        silent = [d.connect("e") for _ in range(200)]
        wait_for(lambda: started(d, "e") >= 200, 30,
                 what="200 silent connections accepted")
        t0 = time.monotonic()
        s = d.connect("e")
        self.assertEqual(exchange(s, b"not delayed\n"), b"not delayed\n")
        elapsed = time.monotonic() - t0
        self.assertLess(elapsed, 1.0, "echo round trip took %.2fs with 200 "
                        "silent connections" % elapsed)
        self.assertEqual(finish(s), b"")
        for c in silent:
            c.close()


class SyncLimitTests(EveryModelLimits, DaemonTestCase):
    MODEL = "sync"


class ThreadLimitTests(EveryModelLimits, ConcurrentLimits, DaemonTestCase):
    MODEL = "thread"


class ForkLimitTests(EveryModelLimits, ConcurrentLimits, DaemonTestCase):
    MODEL = "fork"


class EventWorkersLimitTests(EveryModelLimits, ConcurrentLimits,
                             DaemonTestCase):
    MODEL = "event-workers"


class EventLimitTests(EveryModelLimits, ConcurrentLimits, DaemonTestCase):
    MODEL = "event"

    def test_2000_concurrent_connections(self):
        n = 2000
        old = raise_nofile(n + 200)
        if old is None:
            self.skipTest("the hard RLIMIT_NOFILE is below %d" % (n + 200))
        self.addCleanup(resource.setrlimit, resource.RLIMIT_NOFILE, old)
        hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
        d = self.daemon(conf(self.lconf("e", extra="queue_size = 4096;")),
                        rlimits={resource.RLIMIT_NOFILE: (hard, hard)})
        self.assertEqual(d.echo_once("e", b"warm up"), b"warm up")
        d.wait_log(r"listener=e peer=\S+: done")
        # The connection closes just after "done" (on the loop that
        # served it): the baseline is taken once only the listening
        # socket is left.
        wait_for(lambda: socket_count(d.pid) == 1,
                 what="the warm-up connection closed")
        base = fd_count(d.pid)
        dl = Deadline(60)
        clients = []
        for i in range(n):
            self.assertFalse(dl.expired(), "connecting took over 60 s")
            clients.append(d.connect("e"))
        for i, s in enumerate(clients):
            send_all(s, b"%d\n" % i)
        for i, s in enumerate(clients):
            p = b"%d\n" % i
            self.assertEqual(recv_exactly(s, len(p)), p, "client %d" % i)
        # All of them are open at the same time, on both sides.
        self.assertGreaterEqual(fd_count(d.pid), base + n)
        self.assertEqual(started(d, "e"), n + 1)
        for s in clients:
            s.close()
        wait_fd_count(d, base, 20)
        self.assertEqual(d.echo_once("e", b"after"), b"after")

    def test_emfile_pauses_accepting_without_spinning(self):
        d = self.daemon(conf(self.lconf("e", extra="queue_size = 256;")),
                        rlimits={resource.RLIMIT_NOFILE: (64, 64)})
        dl = Deadline(30)
        clients = []
        for i in range(150):
            self.assertFalse(dl.expired(), "connecting took over 30 s")
            clients.append(d.connect("e"))
        pausing = r"listener=e: Too many open files: pausing"
        d.wait_log(pausing)
        # While the clients hold on, the daemon waits, cheaply.
        c0 = cpu_seconds(d.pid)
        with self.assertRaises(subprocess.TimeoutExpired):
            d.proc.wait(2.0)
        used = cpu_seconds(d.pid) - c0
        self.assertLess(started(d, "e"), 150)
        self.assertLess(used, 0.3, "%.2fs of CPU in 2 s at EMFILE" % used)
        self.assertEqual(len(re.findall(pausing, d.log())), 1,
                         "EMFILE logged more than once")
        # Once they leave it serves again.
        for s in clients:
            s.close()
        self.assertEqual(d.echo_once("e", b"again", timeout=10), b"again")
        self.assertEqual(d.stop(), 0)


if __name__ == "__main__":
    unittest.main()
