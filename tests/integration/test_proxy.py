# SPDX-License-Identifier: ISC
"""proxy_protocol: a PROXY v1 or v2 header names the client, which then
is the peer for the handler (ssd_peer), allow/deny and max_per_source; a
connection without a valid header is closed and counted.  Then a real
HAProxy (Debian package haproxy, started by the test on loopback) in
front of sockserverd with send-proxy and send-proxy-v2."""

import os
import select
import shutil
import signal
import socket
import struct
import subprocess
import time
import unittest

from ssdtest import (HAVE_127_0_0_2, DaemonTestCase, closed_by_peer, conf,
                     connect_to, free_port, model_conf,
                     plugin_dir, recv_until_eof, recv_within, send_all,
                     wait_for)

V2_SIG = b"\r\n\r\n\x00\r\nQUIT\n"


def v2_header(src, sport, dst="10.0.0.1", dport=80, cmd=0x21):
    if ":" in src:
        body = (socket.inet_pton(socket.AF_INET6, src) +
                socket.inet_pton(socket.AF_INET6, "2001:db8::1") +
                struct.pack("!HH", sport, dport))
        return V2_SIG + bytes([cmd, 0x21]) + struct.pack("!H", len(body)) \
            + body
    body = (socket.inet_aton(src) + socket.inet_aton(dst) +
            struct.pack("!HH", sport, dport))
    return V2_SIG + bytes([cmd, 0x11]) + struct.pack("!H", len(body)) + body


def greet_conf(name, extra="", model="event"):
    return model_conf(name, model, handler="greet",
                      extra="proxy_protocol = true; timeout = 2; " + extra)


def globals_():
    return 'handler_dir = "%s";' % plugin_dir()


class ProxyHeaderTests(DaemonTestCase):

    def greeting(self, d, name, data):
        s = d.connect(name)
        send_all(s, data + b"line\n")
        out = b""
        deadline = time.monotonic() + 5
        while b"1: line" not in out and time.monotonic() < deadline:
            chunk = recv_within(s, 2)
            if not chunk:
                break
            out += chunk
        s.close()
        return out.decode(errors="replace")

    def check_model(self, model):
        d = self.daemon(conf(greet_conf("p", model=model),
                             globals_=globals_()))
        self.assertIn("hello, 192.0.2.7:5555\n1: line",
                      self.greeting(d, "p", b"PROXY TCP4 192.0.2.7 "
                                    b"10.0.0.1 5555 80\r\n"))
        self.assertIn("hello, [2001:db8::5]:6666\n",
                      self.greeting(d, "p", b"PROXY TCP6 2001:db8::5 "
                                    b"2001:db8::1 6666 80\r\n"))
        self.assertIn("hello, 198.51.100.9:4444\n",
                      self.greeting(d, "p", v2_header("198.51.100.9", 4444)))
        self.assertIn("hello, [2001:db8::9]:4445\n",
                      self.greeting(d, "p", v2_header("2001:db8::9", 4445)))
        # UNKNOWN (v1) and LOCAL (v2): the socket's own peer stands.
        self.assertRegex(self.greeting(d, "p", b"PROXY UNKNOWN\r\n"),
                         r"hello, 127\.0\.0\.1:\d+\n")
        self.assertRegex(self.greeting(d, "p", v2_header(
            "192.0.2.1", 1, cmd=0x20)), r"hello, 127\.0\.0\.1:\d+\n")

    def test_sync(self):
        self.check_model("sync")

    def test_thread(self):
        self.check_model("thread")

    def test_fork(self):
        self.check_model("fork")

    def test_event(self):
        self.check_model("event")

    def test_missing_or_malformed_header_closes(self):
        d = self.daemon(conf(greet_conf("p"), globals_=globals_()))
        for bad in (b"GET / HTTP/1.0\r\n\r\n",
                    b"PROXY TCP4 300.1.1.1 10.0.0.1 1 2\r\n",
                    b"PROXY TCP4 1.2.3.4 10.0.0.1 99999 2\r\n",
                    b"PROXY " + b"x" * 120 + b"\r\n",
                    V2_SIG + bytes([0x31, 0x11, 0, 12]) + b"\0" * 12):
            s = d.connect("p")
            send_all(s, bad)
            self.assertTrue(closed_by_peer(s), "served after %r" % bad)
            s.close()
        d.wait_log(r"listener=p peer=\S+: (no PROXY header|malformed "
                   r"PROXY|PROXY v1 header longer|PROXY v2 header of)")
        # Silence is no header either: cut at the timeout.
        s = d.connect("p")
        self.assertTrue(closed_by_peer(s, timeout=5))
        s.close()
        self.assertTrue(d.running())

    def test_header_must_be_complete_within_the_timeout(self):
        # A byte every 0.3 s keeps each wait shorter than timeout = 1,
        # but the header as a whole must arrive within it: the connection
        # is closed after about 1 s, not after a timeout per byte.
        hdr = b"PROXY TCP4 192.0.2.7 10.0.0.1 5555 80\r\n"
        for model in ("event", "thread", "fork"):
            with self.subTest(model=model):
                d = self.daemon(conf(model_conf(
                    "p", model, extra="proxy_protocol = true; timeout = 1;")))
                s = d.connect("p")
                start = time.monotonic()
                closed = False
                for i in range(len(hdr)):
                    if time.monotonic() - start > 4:
                        break
                    try:
                        s.send(hdr[i:i + 1])
                    except OSError:
                        closed = True
                        break
                    if select.select([s], [], [], 0.3)[0]:
                        self.assertTrue(closed_by_peer(s, 1),
                                        "served a trickled header")
                        closed = True
                        break
                took = time.monotonic() - start
                s.close()
                self.assertTrue(closed, "still open after %.1fs" % took)
                self.assertLess(took, 2.5)
                d.wait_log(r"listener=p peer=\S+: incomplete PROXY "
                           r"header: timed out")
                d.stop()

    def test_acl_and_per_source_use_the_named_client(self):
        d = self.daemon(conf(greet_conf(
            "p", extra='deny = [ "192.0.2.0/24" ]; max_per_source = 1;'),
            globals_=globals_()))
        s = d.connect("p")
        send_all(s, b"PROXY TCP4 192.0.2.7 10.0.0.1 5555 80\r\nx\n")
        self.assertTrue(closed_by_peer(s))
        s.close()
        d.wait_log(r"listener=p peer=192\.0\.2\.7:5555: refused by "
                   r"allow/deny")
        # One request per named client: a second from 198.51.100.1 is
        # refused while the first is open, another client is served.
        a = d.connect("p")
        send_all(a, b"PROXY TCP4 198.51.100.1 10.0.0.1 1000 80\r\n")
        self.assertIn(b"hello, 198.51.100.1:1000", recv_within(a))
        b = d.connect("p")
        send_all(b, b"PROXY TCP4 198.51.100.1 10.0.0.1 1001 80\r\n")
        self.assertTrue(closed_by_peer(b))
        b.close()
        self.assertIn("hello, 198.51.100.2:1002",
                      self.greeting(d, "p", b"PROXY TCP4 198.51.100.2 "
                                    b"10.0.0.1 1002 80\r\n"))
        a.close()

    def test_bytes_after_the_header_reach_a_program(self):
        # exec's program reads the socket itself: the daemon must take
        # the header and not one byte more, even when they come together.
        d = self.daemon(conf(model_conf(
            "c", "event", handler="exec",
            extra='proxy_protocol = true; '
                  'options = { program = "/bin/cat"; };')))
        for hdr in (b"PROXY TCP4 192.0.2.7 10.0.0.1 5555 80\r\n",
                    v2_header("198.51.100.9", 4444)):
            for _ in range(10):
                s = d.connect("c")
                send_all(s, hdr + b"first bytes\n")
                s.shutdown(socket.SHUT_WR)
                self.assertEqual(recv_until_eof(s), b"first bytes\n")
                s.close()

    def test_per_source_with_proxy_under_fork_is_a_config_error(self):
        from ssdtest import run_binary
        d = self.daemon(conf(greet_conf("p", model="fork",
                                        extra="max_per_source = 1;"),
                             globals_=globals_()), start=False)
        r = run_binary(["-t", "-c", d.conf_path])
        self.assertEqual(r.returncode, 1)
        self.assertIn("needs a concurrency other than fork",
                      r.stderr.decode())


@unittest.skipUnless(shutil.which("haproxy"), "haproxy is not installed")
@unittest.skipUnless(HAVE_127_0_0_2, "cannot bind 127.0.0.2")
class HaproxyTests(DaemonTestCase):
    """Several sockserverd hosts behind HAProxy, as README describes,
    scaled down to one host: the handler sees the original client."""

    def haproxy(self, d, backend_port, send):
        front = free_port()
        cfg = os.path.join(d.dir, "haproxy.cfg")
        with open(cfg, "w") as f:
            f.write("""global
    maxconn 100
defaults
    mode tcp
    timeout connect 5s
    timeout client 10s
    timeout server 10s
frontend fe
    bind 127.0.0.1:%d
    default_backend be
backend be
    server s1 127.0.0.1:%d %s
""" % (front, backend_port, send))
        p = subprocess.Popen(["haproxy", "-db", "-f", cfg],
                             stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
        self.addCleanup(self.stop_haproxy, p)

        def up():
            try:
                connect_to(socket.AF_INET, ("127.0.0.1", front),
                           timeout=1).close()
                return True
            except OSError:
                return False
        wait_for(up, 10, what="haproxy to listen")
        return front

    @staticmethod
    def stop_haproxy(p):
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()

    def check(self, send):
        d = self.daemon(conf(greet_conf("p"), globals_=globals_()))
        front = self.haproxy(d, d.listener("p").port, send)
        s = connect_to(socket.AF_INET, ("127.0.0.1", front),
                       bind=("127.0.0.2", 0))
        me = s.getsockname()
        send_all(s, b"via haproxy\n")
        out = b""
        deadline = time.monotonic() + 5
        while b"1: via haproxy" not in out and time.monotonic() < deadline:
            chunk = recv_within(s, 2)
            if not chunk:
                break
            out += chunk
        s.close()
        self.assertIn("hello, 127.0.0.2:%d\n1: via haproxy" % me[1],
                      out.decode())

    def test_send_proxy(self):
        self.check("send-proxy")

    def test_send_proxy_v2(self):
        self.check("send-proxy-v2")


if __name__ == "__main__":
    unittest.main()
