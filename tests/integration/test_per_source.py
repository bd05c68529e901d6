# SPDX-License-Identifier: ISC
"""Per-source rules.  max_per_source (xinetd's per_source): requests in
progress from one client address; beyond it a new one is refused at once,
while other addresses and the same address after a request ends are
served.  rate_per_source/burst_per_source: a token bucket per source,
refused with reason "rate"; source_prefix_v4/_v6 make a prefix one
source; behind a PROXY header the client it names is judged; proxy_from
lets only the listed proxies connect."""

import re
import socket
import struct
import threading
import time
import unittest

from ssdtest import (HAVE_127_0_0_2, TIME_SCALE, DaemonTestCase,
                     closed_by_peer, conf, listener_conf, model_conf,
                     nothing_arrives, recv_until_eof, recv_within,
                     run_binary, send_all, wait_for)

skip_unless_127_0_0_2 = unittest.skipUnless(HAVE_127_0_0_2,
                                            "cannot bind 127.0.0.2")


class PerSourceTests(DaemonTestCase):

    def held(self, d, name, bind=None):
        s = d.connect(name, bind=bind)
        send_all(s, b"hold")
        self.assertEqual(recv_within(s), b"hold")
        return s

    def check_model(self, model):
        d = self.daemon(conf(model_conf("e", model,
                                        extra="max_per_source = 2;")))
        a, b = self.held(d, "e"), self.held(d, "e")
        third = d.connect("e")
        self.assertTrue(closed_by_peer(third), "third client was served")
        d.wait_log(r"listener=e peer=127\.0\.0\.1:\d+: refused: "
                   r"max_per_source reached")
        if HAVE_127_0_0_2:
            other = self.held(d, "e", bind=("127.0.0.2", 0))
            other.close()
        a.close()

        # The slot comes back once the daemon has seen the first client
        # leave (under fork: once it has reaped its process).
        def served_again():
            s = d.connect("e")
            try:
                send_all(s, b"again")
                return recv_within(s) == b"again"
            except OSError:
                return False
            finally:
                s.close()
        wait_for(served_again, 10, what="a slot to come back")
        b.close()

    def test_thread(self):
        self.check_model("thread")

    def test_fork(self):
        self.check_model("fork")

    def test_event(self):
        self.check_model("event")

    def test_event_workers(self):
        self.check_model("event-workers")

    def test_unix_listener_is_a_config_error(self):
        d = self.daemon(conf(model_conf("u", "event", address="@DIR@/u.sock",
                                        extra="max_per_source = 1;")),
                        start=False)
        r = run_binary(["-t", "-c", d.conf_path])
        self.assertEqual(r.returncode, 1)
        self.assertRegex(r.stderr.decode(), r"%s:\d+: \"max_per_source\" "
                         r"does not apply to unix listeners"
                         % re.escape(d.conf_path))


# ---------------------------------------------------------------------------
# rate_per_source, burst_per_source, source_prefix_v4/_v6, proxy_from

V2_SIG = b"\r\n\r\n\x00\r\nQUIT\n"


def v2_header(src, sport=5555):
    """A PROXY v2 header naming client src (IPv4 or IPv6)."""
    if ":" in src:
        body = (socket.inet_pton(socket.AF_INET6, src) +
                socket.inet_pton(socket.AF_INET6, "2001:db8::1") +
                struct.pack("!HH", sport, 80))
        return V2_SIG + bytes([0x21, 0x21]) + struct.pack("!H", len(body)) \
            + body
    body = (socket.inet_aton(src) + socket.inet_aton("10.0.0.1") +
            struct.pack("!HH", sport, 80))
    return V2_SIG + bytes([0x21, 0x11]) + struct.pack("!H", len(body)) + body


def metric(d, name, listener, reason):
    """sockserverd_refused_total{listener,reason} from the status
    listener "st" of d."""
    s = d.connect("st")
    send_all(s, b"GET /metrics HTTP/1.0\r\n\r\n")
    body = recv_until_eof(s).decode()
    s.close()
    m = re.search(r'^%s\{listener="%s",reason="%s"\} (\d+)$'
                  % (name, re.escape(listener), reason), body, re.M)
    return int(m.group(1)) if m else None


STATUS = listener_conf("st", handler="status", concurrency="event",
                       extra="timeout = 5;")

# A bucket that takes 10 s to gain a token: what a test does between two
# requests that must meet an empty bucket is far quicker than that even
# on a loaded machine (or under a sanitizer).
SLOW = "rate_per_source = 0.1; "


class RateTests(DaemonTestCase):

    held = PerSourceTests.held

    def served(self, d, name, bind=None, header=b"", payload=b"ping"):
        """True if one echo exchange succeeds; False if the daemon closes
        the connection without answering (refused)."""
        s = d.connect(name, bind=bind)
        try:
            send_all(s, header + payload)
            got = recv_within(s)
            if got == b"":
                return False
            self.assertEqual(got, payload)
            return True
        except (ConnectionResetError, BrokenPipeError):
            return False
        finally:
            s.close()

    def check_burst_then_refused(self, model):
        d = self.daemon(conf(model_conf(
            "e", model, extra=SLOW + "burst_per_source = 3;"), STATUS))
        for i in range(3):
            self.assertTrue(self.served(d, "e"), "request %d refused" % i)
        self.assertFalse(self.served(d, "e"), "4th request served")
        d.wait_log(r"listener=e peer=127\.0\.0\.1:\d+: refused: "
                   r"rate_per_source exceeded")
        self.assertEqual(metric(d, "sockserverd_refused_total", "e",
                                "rate"), 1)
        self.assertEqual(metric(d, "sockserverd_refused_total", "e",
                                "per_source"), 0)
        if HAVE_127_0_0_2:
            self.assertTrue(self.served(d, "e", bind=("127.0.0.2", 0)))

    def test_burst_then_refused_sync(self):
        self.check_burst_then_refused("sync")

    def test_burst_then_refused_thread(self):
        self.check_burst_then_refused("thread")

    def test_burst_then_refused_fork(self):
        self.check_burst_then_refused("fork")

    def test_burst_then_refused_event(self):
        self.check_burst_then_refused("event")

    def test_burst_then_refused_event_workers(self):
        self.check_burst_then_refused("event-workers")

    def test_bucket_refills(self):
        # 0.5 token a second, bucket of 1: refused at once, served again
        # about 2 s later.
        d = self.daemon(conf(model_conf("e", "event",
                                        extra="rate_per_source = 0.5;")))
        # t0 before the first request: its token is taken after t0, so
        # less than 1.5 s from t0 to the end of the second request is
        # less than the 2 s a token takes to come back (a stall after
        # the first request's token was taken counts too).
        t0 = time.monotonic()
        self.assertTrue(self.served(d, "e"))
        refused = not self.served(d, "e")
        if time.monotonic() - t0 < 1.5:
            self.assertTrue(refused, "second request served at once")
        wait_for(lambda: self.served(d, "e"), 15 * TIME_SCALE,
                 interval=0.25, what="the bucket to refill")
        self.assertGreater(time.monotonic() - t0, 1.0)

    def test_shared_across_threads(self):
        # Concurrent clients of one source on a listener whose requests
        # are accepted on two loops (event workers) or run on threads:
        # exactly the burst is served.
        for model in ("event-workers", "thread"):
            with self.subTest(model=model):
                d = self.daemon(conf(model_conf(
                    "e", model, extra=SLOW + "burst_per_source = 5;")))
                results = []
                lock = threading.Lock()

                def client():
                    ok = self.served(d, "e")
                    with lock:
                        results.append(ok)
                threads = [threading.Thread(target=client)
                           for _ in range(12)]
                for t in threads:
                    t.start()
                for t in threads:
                    t.join(30)
                self.assertEqual(len(results), 12)
                self.assertEqual(results.count(True), 5, results)
                self._close_daemon(d)

    def test_datagrams_are_rated(self):
        d = self.daemon(conf(model_conf(
            "u", "event", type="dgram",
            extra=SLOW + "burst_per_source = 2;")))
        s = d.dgram("u")
        for i in range(2):
            s.send(b"d%d" % i)
            self.assertEqual(recv_within(s), b"d%d" % i)
        s.send(b"late")
        self.assertTrue(nothing_arrives(s, 0.5))
        d.wait_log(r"listener=u peer=127\.0\.0\.1:\d+: refused: "
                   r"rate_per_source exceeded")
        s.close()

    @skip_unless_127_0_0_2
    def test_prefix_v4_groups_for_max_per_source(self):
        d = self.daemon(conf(model_conf(
            "e", "event", extra="max_per_source = 1; source_prefix_v4 = 24;")))
        held = self.held(d, "e", bind=("127.0.0.2", 0))
        self.assertFalse(self.served(d, "e", bind=("127.0.0.3", 0)),
                         "127.0.0.3 served beside 127.0.0.2 in one /24")
        d.wait_log(r"listener=e peer=127\.0\.0\.3:\d+: refused: "
                   r"max_per_source reached")
        held.close()
        wait_for(lambda: self.served(d, "e", bind=("127.0.0.3", 0)), 10,
                 what="the /24's slot to come back")

    @skip_unless_127_0_0_2
    def test_prefix_v4_groups_for_rate(self):
        d = self.daemon(conf(model_conf(
            "e", "thread", extra=SLOW + "source_prefix_v4 = 24;"),
            model_conf("f", "thread", extra=SLOW)))
        self.assertTrue(self.served(d, "e", bind=("127.0.0.2", 0)))
        self.assertFalse(self.served(d, "e", bind=("127.0.0.3", 0)))
        # Without the prefix, two addresses have two buckets.
        self.assertTrue(self.served(d, "f", bind=("127.0.0.2", 0)))
        self.assertTrue(self.served(d, "f", bind=("127.0.0.3", 0)))

    def test_proxy_header_client_is_rated(self):
        for model in ("event", "event-workers", "thread", "sync"):
            with self.subTest(model=model):
                d = self.daemon(conf(model_conf(
                    "p", model, extra="proxy_protocol = true; " + SLOW +
                    "source_prefix_v6 = 64;"), STATUS))
                self.assertTrue(self.served(d, "p", header=v2_header(
                    "192.0.2.7")))
                self.assertFalse(self.served(d, "p", header=v2_header(
                    "192.0.2.7", 6000)))
                d.wait_log(r"listener=p peer=192\.0\.2\.7:6000: refused: "
                           r"rate_per_source exceeded")
                # Another client behind the same proxy has its own.
                self.assertTrue(self.served(d, "p", header=v2_header(
                    "192.0.2.8")))
                # One /64 is one source.
                self.assertTrue(self.served(d, "p", header=v2_header(
                    "2001:db8:1:2::1")))
                self.assertFalse(self.served(d, "p", header=v2_header(
                    "2001:db8:1:2::99")))
                self.assertEqual(metric(d, "sockserverd_refused_total", "p",
                                        "rate"), 2)
                self._close_daemon(d)

    def test_proxy_header_client_counts_for_max_per_source(self):
        d = self.daemon(conf(model_conf(
            "p", "event", extra="proxy_protocol = true; max_per_source = 1; "
            "source_prefix_v4 = 24;")))
        held = d.connect("p")
        send_all(held, v2_header("198.51.100.1") + b"hold")
        self.assertEqual(recv_within(held), b"hold")
        self.assertFalse(self.served(d, "p", header=v2_header(
            "198.51.100.200")))
        self.assertTrue(self.served(d, "p", header=v2_header("198.51.101.1")))
        held.close()

    def test_reload_keeps_buckets_and_applies_settings(self):
        text = conf(model_conf("e", "event", extra=SLOW))
        d = self.daemon(text)
        self.assertTrue(self.served(d, "e"))
        self.assertFalse(self.served(d, "e"))
        # The socket is kept, and its buckets with it: still refused
        # under a configuration that changes something else.
        d.reload(conf(model_conf("e", "event", extra=SLOW + "timeout = 30;")))
        self.assertFalse(self.served(d, "e"), "a reload refilled the bucket")
        # A bigger bucket refills from what is left: no free tokens.
        d.reload(conf(model_conf("e", "event", extra=SLOW +
                                 "burst_per_source = 4;")))
        self.assertFalse(self.served(d, "e"))
        # Without a rate, the same client is served at once.
        d.reload(conf(model_conf("e", "event")))
        self.assertTrue(self.served(d, "e"))
        self.assertTrue(self.served(d, "e"))
        # A new rate takes effect on the kept socket.
        d.reload(conf(model_conf("e", "event", extra=SLOW)))
        self.assertTrue(self.served(d, "e"))
        self.assertFalse(self.served(d, "e"))

    def test_config_errors_name_the_line(self):
        d = self.daemon(conf(model_conf(
            "e", "event", extra="rate_per_source = -2; "
            "source_prefix_v6 = 129;"),
            model_conf("p", "fork", extra="proxy_from = [ \"127.0.0.1\" ];")),
            start=False)
        r = run_binary(["-t", "-c", d.conf_path])
        self.assertEqual(r.returncode, 1)
        err = r.stderr.decode()
        path = re.escape(d.conf_path)
        self.assertRegex(err, r"%s:\d+: \"rate_per_source\" must be between "
                         r"0 and 1000000, not -2" % path)
        self.assertRegex(err, r"%s:\d+: \"source_prefix_v6\" must be "
                         r"between 0 and 128, not 129" % path)
        self.assertRegex(err, r"%s:\d+: \"proxy_from\" needs "
                         r"\"proxy_protocol = true\"" % path)


@skip_unless_127_0_0_2
class ProxyFromTests(DaemonTestCase):
    """proxy_from: only the listed load balancers may connect; any other
    address is refused before a byte is read.  The proxy is 127.0.0.2,
    the stranger 127.0.0.3."""

    def check_model(self, model):
        d = self.daemon(conf(model_conf(
            "p", model, extra='proxy_protocol = true; timeout = 30; '
            'proxy_from = [ "127.0.0.2/32", "::1" ];'), STATUS))
        s = d.connect("p", bind=("127.0.0.2", 0))
        send_all(s, v2_header("192.0.2.7") + b"ping")
        self.assertEqual(recv_within(s), b"ping")
        s.close()
        # The stranger sends nothing: it is closed at once all the same,
        # not after the 30 s the header may take.
        t0 = time.monotonic()
        s = d.connect("p", bind=("127.0.0.3", 0))
        self.assertTrue(closed_by_peer(s, timeout=10))
        self.assertLess(time.monotonic() - t0, 10)
        s.close()
        d.wait_log(r"listener=p peer=127\.0\.0\.3:\d+: refused: not a "
                   r"trusted proxy \(proxy_from\)")
        # And a stranger with a valid header is refused too.
        s = d.connect("p", bind=("127.0.0.3", 0))
        try:
            send_all(s, v2_header("192.0.2.9") + b"ping")
        except (ConnectionResetError, BrokenPipeError):
            pass
        self.assertTrue(closed_by_peer(s))
        s.close()
        self.assertEqual(metric(d, "sockserverd_refused_total", "p",
                                "proxy_header"), 2)

    def test_event(self):
        self.check_model("event")

    def test_event_workers(self):
        self.check_model("event-workers")

    def test_thread(self):
        self.check_model("thread")

    def test_fork(self):
        self.check_model("fork")

    def test_sync(self):
        self.check_model("sync")
