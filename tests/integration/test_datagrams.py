# SPDX-License-Identifier: ISC
"""Datagrams received in batches (issue 11): one recvmmsg takes what the
socket holds.  Under sync the listener's thread serves the batch, one
datagram after the other, under the listener's one request slot; under
event (main loop, no max_connections) each datagram of a batch becomes a
request of its own.  Whatever the batch, every datagram is its own
request: setup/handle/finish each, allow/deny, max_packet_size,
max_per_source and rate_per_source each, counted each, answered from the
socket it came in on."""

import os
import re
import socket
import time
import unittest

from ssdtest import (HAVE_127_0_0_2, DaemonTestCase, conf, fixture_plugin,
                     listener_conf, model_conf, nothing_arrives, recv_until_eof,
                     recv_within, send_all, wait_for)


def needs_dgramseq(test):
    p = fixture_plugin("dgramseq")
    return unittest.skipUnless(p is not None and os.path.exists(p),
                               "the fixture plugins are not built "
                               "(make integration builds them)")(test)


STATUS = listener_conf("st", handler="status", concurrency="event",
                       extra="timeout = 5;")


def metrics(d):
    s = d.connect("st")
    send_all(s, b"GET /metrics HTTP/1.0\r\n\r\n")
    body = recv_until_eof(s).decode()
    s.close()
    return body


def metric(d, name, listener, reason=None):
    if reason is None:
        pat = r'^%s\{listener="%s"\} (\d+)$' % (name, re.escape(listener))
    else:
        pat = r'^%s\{listener="%s",reason="%s"\} (\d+)$' % (
            name, re.escape(listener), reason)
    m = re.search(pat, metrics(d), re.M)
    return int(m.group(1)) if m else None


def replies(sock, n, timeout=10):
    """n datagrams from sock (fewer if none comes for timeout seconds)."""
    got = []
    for _ in range(n):
        try:
            got.append(recv_within(sock, timeout))
        except socket.timeout:
            break
    return got


class BatchTests(DaemonTestCase):

    def seq_daemon(self, model="sync", extra=""):
        return self.daemon(conf(model_conf(
            "u", model, type="dgram", handler=fixture_plugin("dgramseq"),
            extra="timeout = 10; " + extra), STATUS))

    def burst(self, d, clients, per_client, first=b"sleep"):
        """A datagram that holds the handler 0.3 s, then per_client
        datagrams from each client at once: they queue in the socket and
        come out of it in batches."""
        lead = d.dgram("u")
        lead.send(first)
        time.sleep(0.05)
        want = {}
        for c, s in enumerate(clients):
            want[c] = [b"c%d-%03d" % (c, k) for k in range(per_client)]
        for k in range(per_client):
            for c, s in enumerate(clients):
                s.send(want[c][k])
        return lead, want

    @needs_dgramseq
    def test_sync_batch_each_datagram_its_own_request_in_order(self):
        d = self.seq_daemon("sync")
        clients = [d.dgram("u") for _ in range(3)]
        lead, want = self.burst(d, clients, 40)
        self.assertEqual(recv_within(lead), b"sleep setups=1 finishes=0")
        seen = 1
        for c, s in enumerate(clients):
            got = replies(s, 40)
            self.assertEqual([g.split(b" ")[0] for g in got], want[c],
                             "client %d: every datagram answered once, "
                             "in the order sent" % c)
            for g in got:
                m = re.match(rb"\S+ setups=(\d+) finishes=(\d+)$", g)
                self.assertIsNotNone(m, g)
                # One at a time: each one's finish ran before the next
                # one's setup.
                self.assertEqual(int(m.group(2)), int(m.group(1)) - 1, g)
            self.assertTrue(nothing_arrives(s, 0.05))
            seen += len(got)
        self.assertEqual(seen, 121)
        self.assertEqual(metric(d, "sockserverd_requests_total", "u"), 121)
        wait_for(lambda: metric(d, "sockserverd_requests_in_progress",
                                "u") == 0, 5, what="no request in progress")

    @needs_dgramseq
    def test_setup_refusal_is_per_datagram(self):
        for model in ("sync", "event"):
            with self.subTest(model=model):
                d = self.seq_daemon(model)
                s = d.dgram("u")
                lead = d.dgram("u")
                lead.send(b"sleep")
                time.sleep(0.05)
                for k in range(30):
                    s.send(b"no-%02d" % k if k % 3 == 0 else b"ok-%02d" % k)
                got = [g.split(b" ")[0] for g in replies(s, 20)]
                self.assertEqual(got, [b"ok-%02d" % k for k in range(30)
                                       if k % 3 != 0])
                self.assertTrue(nothing_arrives(s, 0.1))
                self.assertEqual(metric(d, "sockserverd_requests_total",
                                        "u"), 31)
                self._close_daemon(d)

    @unittest.skipUnless(HAVE_127_0_0_2, "cannot bind 127.0.0.2")
    def test_allow_deny_is_per_datagram(self):
        for model in ("sync", "event"):
            with self.subTest(model=model):
                d = self.daemon(conf(model_conf(
                    "u", model, type="dgram",
                    extra='allow = [ "127.0.0.2" ];'), STATUS))
                bad = d.dgram("u")
                good = d.dgram("u", bind=("127.0.0.2", 0))
                for k in range(50):
                    bad.send(b"bad %d" % k)
                    good.send(b"good %d" % k)
                self.assertEqual(replies(good, 50),
                                 [b"good %d" % k for k in range(50)])
                self.assertTrue(nothing_arrives(bad, 0.2))
                self.assertEqual(metric(d, "sockserverd_refused_total", "u",
                                        "acl"), 50)
                self.assertEqual(metric(d, "sockserverd_requests_total",
                                        "u"), 50)
                self._close_daemon(d)

    def test_max_packet_size_is_per_datagram(self):
        for model in ("sync", "event", "thread"):
            with self.subTest(model=model):
                d = self.daemon(conf(model_conf(
                    "u", model, type="dgram",
                    extra="max_packet_size = 100;"), STATUS))
                s = d.dgram("u")
                for k in range(40):
                    s.send(b"x" * 101 if k % 2 else b"small %d" % k)
                got = replies(s, 20)
                self.assertEqual(sorted(got), sorted(
                    b"small %d" % k for k in range(0, 40, 2)))
                self.assertTrue(nothing_arrives(s, 0.2))
                self.assertEqual(metric(d, "sockserverd_refused_total", "u",
                                        "datagram_size"), 20)
                self._close_daemon(d)

    @needs_dgramseq
    def test_sync_max_per_source_one_serves_a_whole_batch(self):
        # The share of each datagram comes back before the next one of
        # the same client is judged.
        d = self.seq_daemon("sync", extra="max_per_source = 1;")
        s = d.dgram("u")
        lead, want = self.burst(d, [s], 30)
        self.assertRegex(recv_within(lead), rb"^sleep ")
        self.assertEqual([g.split(b" ")[0] for g in replies(s, 30)], want[0])
        self.assertEqual(metric(d, "sockserverd_refused_total", "u",
                                "per_source"), 0)

    @needs_dgramseq
    def test_sync_rate_per_source_within_a_batch(self):
        d = self.seq_daemon("sync", extra="rate_per_source = 0.1; "
                            "burst_per_source = 5;")
        s = d.dgram("u")
        # lead is another client of the same address: the bucket is the
        # address's, so it takes one token.
        lead, want = self.burst(d, [s], 12)
        self.assertRegex(recv_within(lead), rb"^sleep ")
        got = [g.split(b" ")[0] for g in replies(s, 12, timeout=2)]
        self.assertEqual(got, want[0][:4])
        self.assertEqual(metric(d, "sockserverd_refused_total", "u",
                                "rate"), 8)

    @needs_dgramseq
    def test_sync_batch_access_log_entry_per_datagram(self):
        d = self.seq_daemon("sync", extra="access_log = true;")
        a, b = d.dgram("u"), d.dgram("u")
        lead, want = self.burst(d, [a, b], 10)
        self.assertRegex(recv_within(lead), rb"^sleep ")
        for s in (a, b):
            self.assertEqual(len(replies(s, 10)), 10)
        entry = re.compile(r"listener=u peer=(\S+) duration_usec=\d+ "
                           r"received=(\d+) sent=(\d+) result=(\S+)")

        def found():
            return [m.groups() for m in entry.finditer(d.log())]
        wait_for(lambda: len(found()) >= 21, 10, what="21 entries")
        got = found()
        self.assertEqual(len(got), 21)
        for s in (a, b):
            me = "%s:%d" % s.getsockname()[:2]
            mine = [g for g in got if g[0] == me]
            self.assertEqual(len(mine), 10, me)
            for g in mine:
                # "cK-NNN" (6 bytes) in; back with " setups=S finishes=F".
                self.assertEqual(g[1], "6")
                self.assertEqual(g[3], "ok")
                self.assertGreater(int(g[2]), 6)

    def test_event_burst_all_answered_with_and_without_cap(self):
        for extra in ("", "max_connections = 1;"):
            with self.subTest(extra=extra):
                d = self.daemon(conf(model_conf(
                    "u", "event", type="dgram", extra=extra), STATUS))
                socks = [d.dgram("u") for _ in range(4)]
                for k in range(50):
                    for c, s in enumerate(socks):
                        s.send(b"%d:%d" % (c, k))
                for c, s in enumerate(socks):
                    self.assertEqual(replies(s, 50),
                                     [b"%d:%d" % (c, k) for k in range(50)])
                self.assertEqual(metric(d, "sockserverd_requests_total",
                                        "u"), 200)
                self._close_daemon(d)

    def test_event_replies_of_a_batch_in_order_whatever_their_size(self):
        # Under event the replies of a batch go out together (sendmmsg);
        # one too big for that goes alone, after those before it.
        d = self.daemon(conf(model_conf("u", "event", type="dgram"), STATUS))
        s = d.dgram("u")
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        sent = []
        for k in range(60):
            p = (b"%02d" % k) * (1500 if k % 7 == 3 else 4)
            sent.append(p)
            s.send(p)
        self.assertEqual(replies(s, 60), sent)
        self.assertEqual(metric(d, "sockserverd_sent_bytes_total", "u"),
                         sum(len(p) for p in sent))

    @needs_dgramseq
    def test_reload_during_a_sync_batch_loses_nothing(self):
        d = self.seq_daemon("sync")
        s = d.dgram("u")
        lead, want = self.burst(d, [s], 30)
        # The old generation serves what it has received and lets go of
        # the socket; the new one serves the rest.
        d.reload(conf(model_conf(
            "u", "sync", type="dgram", handler=fixture_plugin("dgramseq"),
            extra="timeout = 11;"), STATUS))
        self.assertRegex(recv_within(lead), rb"^sleep ")
        got = [g.split(b" ")[0] for g in replies(s, 30)]
        self.assertEqual(got, want[0])
        for k in range(5):
            s.send(b"after %d" % k)
        self.assertEqual([g.split(b" ")[0] for g in replies(s, 5)],
                         [b"after"] * 5)

    @needs_dgramseq
    def test_stop_during_a_sync_batch(self):
        d = self.seq_daemon("sync")
        s = d.dgram("u")
        for _ in range(3):
            lead, want = self.burst(d, [s], 20)
        time.sleep(0.1)
        d.stop()
        self.assertFalse(d.running())


if __name__ == "__main__":
    unittest.main()
