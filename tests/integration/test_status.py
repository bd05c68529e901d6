# SPDX-License-Identifier: ISC
"""The status handler: a plain-text summary naming every listener, or on
GET /metrics an HTTP/1.0 200 with the Prometheus text exposition format,
checked by a parser of that format (and by promtool when installed); the
counters move with traffic, fork children's included."""

import re
import shutil
import subprocess
import unittest

from ssdtest import (DaemonTestCase, closed_by_peer, conf, fd_count,
                     listener_conf, recv_until_eof, send_all, wait_for)

METRIC = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)'
                    r'(\{([a-zA-Z_][a-zA-Z0-9_]*="[^"\\\n]*"'
                    r'(,[a-zA-Z_][a-zA-Z0-9_]*="[^"\\\n]*")*)?\})?'
                    r' (-?[0-9.eE+-]+|\+Inf|NaN)$')


def parse_exposition(text):
    """Parses the Prometheus text format strictly enough for this daemon:
    every sample belongs to a family announced by HELP and TYPE before
    it.  Returns {(name, frozenset(labels)): value} and {family: type}."""
    samples, types, helps = {}, {}, set()
    for line in text.splitlines():
        if line.startswith("# HELP "):
            helps.add(line.split()[2])
            continue
        if line.startswith("# TYPE "):
            _, _, fam, typ = line.split(" ", 3)
            assert typ in ("counter", "gauge", "histogram"), line
            assert fam in helps, "TYPE before HELP: " + line
            types[fam] = typ
            continue
        assert line and not line.startswith("#"), repr(line)
        m = METRIC.match(line)
        assert m, "not a sample: %r" % line
        name = m.group(1)
        fam = re.sub(r"_(bucket|sum|count)$", "", name) \
            if name not in types else name
        assert fam in types, "sample without TYPE: " + line
        labels = frozenset(re.findall(r'([a-zA-Z_]\w*)="([^"]*)"',
                                      m.group(3) or ""))
        key = (name, labels)
        assert key not in samples, "duplicate sample: " + line
        samples[key] = float(m.group(5))
    return samples, types


def value(samples, name, **labels):
    return samples[(name, frozenset(labels.items()))]


class StatusTests(DaemonTestCase):

    def setUp(self):
        super().setUp()
        self.d = self.daemon(conf(
            listener_conf("st", handler="status", extra="timeout = 2;"),
            listener_conf("e", concurrency="event"),
            listener_conf("f", concurrency="fork"),
            listener_conf("deny", extra='deny = [ "127.0.0.1" ];')))

    def metrics(self):
        s = self.d.connect("st")
        send_all(s, b"GET /metrics HTTP/1.0\r\nHost: localhost\r\n\r\n")
        data = recv_until_eof(s).decode()
        s.close()
        head, _, body = data.partition("\r\n\r\n")
        self.assertTrue(head.startswith("HTTP/1.0 200 OK\r\n"), head)
        self.assertIn("Content-Type: text/plain; version=0.0.4", head)
        return body

    def test_plain_summary_names_every_listener(self):
        s = self.d.connect("st")
        send_all(s, b"\n")
        text = recv_until_eof(s).decode()
        for name in ("st", "e", "f", "deny"):
            self.assertRegex(text, r"(?m)^listener %s: " % name)

    def test_metrics_parse_and_move_with_traffic(self):
        before, types = parse_exposition(self.metrics())
        self.assertEqual(types["sockserverd_requests_total"], "counter")
        self.assertEqual(types["sockserverd_request_duration_seconds"],
                         "histogram")
        for name in ("e", "f"):
            for _ in range(3):
                self.assertEqual(self.d.echo_once(name, b"x" * 10),
                                 b"x" * 10)
        s = self.d.connect("deny")
        self.assertTrue(closed_by_peer(s))
        s.close()

        def moved():
            after, _ = parse_exposition(self.metrics())
            return value(after, "sockserverd_requests_total",
                         listener="f") >= 3 and \
                value(after, "sockserverd_requests_in_progress",
                      listener="f") == 0
        wait_for(moved, 10, what="the fork requests to be counted")
        after, _ = parse_exposition(self.metrics())
        for name in ("e", "f"):
            self.assertEqual(value(after, "sockserverd_requests_total",
                                   listener=name) -
                             before.get(("sockserverd_requests_total",
                                         frozenset({("listener", name)})),
                                        0), 3)
            # Bytes counted in the handler, in fork children too.
            self.assertGreaterEqual(value(
                after, "sockserverd_received_bytes_total",
                listener=name), 30)
            self.assertGreaterEqual(value(
                after, "sockserverd_sent_bytes_total", listener=name), 30)
            count = value(after, "sockserverd_request_duration_seconds_count",
                          listener=name)
            inf = value(after, "sockserverd_request_duration_seconds_bucket",
                        listener=name, le="+Inf")
            self.assertEqual(count, inf)
            self.assertEqual(count, 3)
            buckets = sorted(
                (float(dict(k[1])["le"]), v) for k, v in after.items()
                if k[0] == "sockserverd_request_duration_seconds_bucket"
                and dict(k[1])["listener"] == name
                and dict(k[1])["le"] != "+Inf")
            self.assertEqual([v for _, v in buckets],
                             sorted(v for _, v in buckets),
                             "histogram buckets are not cumulative")
        self.assertEqual(value(after, "sockserverd_refused_total",
                               listener="deny", reason="acl"), 1)
        self.assertGreater(value(after, "sockserverd_open_fds"), 0)
        self.assertGreaterEqual(value(after, "sockserverd_uptime_seconds"),
                                0)

    def test_promtool_accepts_the_metrics(self):
        promtool = shutil.which("promtool")
        if promtool is None:
            self.skipTest("promtool (Debian package prometheus) not "
                          "installed")
        r = subprocess.run([promtool, "check", "metrics"],
                           input=self.metrics().encode(),
                           capture_output=True, timeout=30)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)

    def test_reload_counts_and_keeps_counters(self):
        self.assertEqual(self.d.echo_once("e", b"y"), b"y")
        self.d.reload()
        after, _ = parse_exposition(self.metrics())
        self.assertEqual(value(after, "sockserverd_reloads_total"), 1)
        self.assertGreaterEqual(value(after, "sockserverd_requests_total",
                                      listener="e"), 1)


class StatusForkTests(DaemonTestCase):
    """Under fork the status handler runs in a child, which must report
    the daemon's open descriptors, not its own four."""

    def test_fork_reports_the_daemons_descriptors(self):
        d = self.daemon(conf(
            listener_conf("st", handler="status", concurrency="fork"),
            *[listener_conf("e%d" % i) for i in range(8)]))
        for query in (b"GET /metrics HTTP/1.0\r\n\r\n", b"\n"):
            s = d.connect("st")
            send_all(s, query)
            text = recv_until_eof(s).decode()
            s.close()
            m = re.search(r"(?m)^sockserverd_open_fds (\d+)$", text) or \
                re.search(r"(\d+) open descriptors", text)
            self.assertIsNotNone(m, text)
            # The parent may still hold the connection: one either way.
            want = fd_count(d.pid)
            self.assertGreater(want, 9)
            self.assertLessEqual(abs(int(m.group(1)) - want), 1, text)


if __name__ == "__main__":
    unittest.main()
