# SPDX-License-Identifier: ISC
"""The sync model and the limits around it: one request at a time per
listener in arrival order, a busy listener never delaying another,
max_connections (per listener and global), and the per-request timeout."""

import socket
import threading
import time
import unittest

from ssdtest import (QUIET, DaemonTestCase, closed_by_peer, conf,
                     nothing_arrives, recv_exactly, recv_until_eof,
                     recv_within, send_all)
from ssdtest import listener_conf as any_model_conf


def sync_conf(*args, **kw):
    kw["concurrency"] = "sync"
    return any_model_conf(*args, **kw)


def exchange(s, payload):
    """Sends payload and reads the same number of bytes back."""
    send_all(s, payload)
    return recv_exactly(s, len(payload))


def finish(s):
    """Ends a client cleanly: EOF to the server, then its EOF back."""
    s.shutdown(socket.SHUT_WR)
    rest = recv_until_eof(s)
    s.close()
    return rest


class SyncTests(DaemonTestCase):

    def test_one_client_at_a_time_others_stay_responsive(self):
        d = self.daemon(conf(sync_conf("busy"),
                             sync_conf("other"),
                             sync_conf("dt", handler="daytime"),
                             sync_conf("udp", type="dgram")))
        a = d.connect("busy")
        self.assertEqual(exchange(a, b"A"), b"A")   # A is being served
        b = d.connect("busy")                       # waits in the backlog
        send_all(b, b"B")
        self.assertTrue(nothing_arrives(b, QUIET),
                        "B was served while A was open")
        # Other listeners do not wait for the busy one.
        self.assertEqual(d.echo_once("other", b"O"), b"O")
        self.assertTrue(recv_until_eof(d.connect("dt")).endswith(b"\r\n"))
        self.assertEqual(d.echo_once("udp", b"U"), b"U")
        # A is still served...
        self.assertEqual(exchange(a, b"A2"), b"A2")
        self.assertTrue(nothing_arrives(b, 0.1))
        # ...and B right after A leaves.
        self.assertEqual(finish(a), b"")
        self.assertEqual(recv_within(b), b"B")
        self.assertEqual(finish(b), b"")

    def test_arrival_order(self):
        d = self.daemon(conf(sync_conf("busy")))
        a = d.connect("busy")
        self.assertEqual(exchange(a, b"A"), b"A")
        b = d.connect("busy")
        send_all(b, b"B")
        # Wait until B's connection is surely queued before C's: the
        # server does not see it yet, so make B's data reach the kernel.
        self.assertTrue(nothing_arrives(b, 0.1))
        c = d.connect("busy")
        send_all(c, b"C")
        self.assertTrue(nothing_arrives(c, 0.1))
        finish(a)
        self.assertEqual(recv_within(b), b"B")
        self.assertTrue(nothing_arrives(c, QUIET),
                        "C was served while B was open")
        finish(b)
        self.assertEqual(recv_within(c), b"C")
        finish(c)

    def test_many_waiting_clients_all_served(self):
        d = self.daemon(conf(sync_conf("e")))
        results = {}

        def client(i):
            try:
                results[i] = d.echo_once("e", b"client %d" % i, timeout=30)
            except Exception as e:
                results[i] = e

        threads = [threading.Thread(target=client, args=(i,), daemon=True)
                   for i in range(100)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(40)
        self.assertFalse(any(t.is_alive() for t in threads))
        bad = {i: r for i, r in results.items() if r != b"client %d" % i}
        self.assertEqual(len(results), 100)
        self.assertEqual(bad, {})

    def test_stream_client_does_not_block_dgram_listener(self):
        # The same port number for stream and dgram is two listeners.
        d = self.daemon(conf(sync_conf("tcp"),
                             sync_conf("udp", type="dgram")))
        a = d.connect("tcp")
        self.assertEqual(exchange(a, b"hold"), b"hold")
        for i in range(5):
            self.assertEqual(d.echo_once("udp", b"%d" % i), b"%d" % i)
        finish(a)


class MaxConnectionsTests(DaemonTestCase):

    def test_listener_max_connections_1(self):
        d = self.daemon(conf(any_model_conf("e",
                                           extra="max_connections = 1;"),
                             any_model_conf("free")))
        a = d.connect("e")
        self.assertEqual(exchange(a, b"first"), b"first")
        b = d.connect("e")          # connect succeeds: the backlog
        send_all(b, b"second")
        self.assertTrue(nothing_arrives(b, QUIET),
                        "second client served while the first was open")
        self.assertEqual(d.echo_once("free", b"f"), b"f")
        finish(a)
        self.assertEqual(recv_exactly(b, 6), b"second")
        finish(b)

    def test_global_max_connections_spans_listeners(self):
        d = self.daemon(conf(any_model_conf("one"), any_model_conf("two"),
                             globals_="max_connections = 1;"))
        a = d.connect("one")
        self.assertEqual(exchange(a, b"1"), b"1")
        b = d.connect("two")
        send_all(b, b"2")
        self.assertTrue(nothing_arrives(b, QUIET),
                        "global max_connections = 1 let two requests run")
        finish(a)
        self.assertEqual(recv_within(b), b"2")
        finish(b)
        self.assertEqual(d.echo_once("one", b"again"), b"again")


class TimeoutTests(DaemonTestCase):

    def test_idle_client_is_cut(self):
        d = self.daemon(conf(any_model_conf("e", extra="timeout = 0.5;")))
        s = d.connect("e")
        self.assertEqual(exchange(s, b"x"), b"x")
        t0 = time.monotonic()
        self.assertTrue(closed_by_peer(s, timeout=5.0),
                        "idle client not cut")
        self.assertGreaterEqual(time.monotonic() - t0, 0.4)
        d.wait_log(r"listener=e peer=127\.0\.0\.1:\d+: timed out after "
                   r"0\.5s without I/O")
        # The listener serves the next client.
        self.assertEqual(d.echo_once("e", b"next"), b"next")

    def test_timeout_counts_idle_time_not_total(self):
        d = self.daemon(conf(any_model_conf("e", extra="timeout = 0.5;")))
        s = d.connect("e")
        t0 = time.monotonic()
        for i in range(6):          # ~1.2 s in all, 0.2 s idle at most
            self.assertEqual(exchange(s, b"%d" % i), b"%d" % i)
            self.assertTrue(nothing_arrives(s, 0.2), "cut while active")
        self.assertGreater(time.monotonic() - t0, 0.9)
        self.assertEqual(finish(s), b"")
        self.assertFalse(d.log_has("timed out"))

    def test_integer_timeout_accepted(self):
        d = self.daemon(conf(any_model_conf("e", extra="timeout = 1;")))
        self.assertEqual(d.echo_once("e", b"int"), b"int")

    def test_client_that_does_not_read_is_cut(self):
        d = self.daemon(conf(any_model_conf("cg", handler="chargen",
                                           extra="timeout = 0.5;")))
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.addCleanup(s.close)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.settimeout(5)
        s.connect(d.listener("cg").addr)
        # Never read: the server's writes block, then time out.
        d.wait_log(r"listener=cg peer=\S+: timed out after 0\.5s", 10)
        self.assertTrue(d.running())
        self.assertEqual(recv_exactly(d.connect("cg"), 74)[:3], b" !\"")


if __name__ == "__main__":
    unittest.main()
