# SPDX-License-Identifier: ISC
"""Echo (RFC 862) on every socket family and type, byte for byte."""

import os
import socket
import unittest

from ssdtest import (DEFAULT_CONCURRENCY, DaemonTestCase, Exchanger, conf,
                     listener_conf, nothing_arrives, recv_until_eof,
                     recv_within, send_all, skip_unless_ipv6)

BINARY = bytes(range(256)) * 4 + b"\0\r\n\0\xff"


class EchoStreamTests(DaemonTestCase):

    def check_stream(self, d, name):
        for payload in (b"hello, world\n", BINARY, b"x"):
            with self.subTest(payload=payload[:16]):
                self.assertEqual(d.echo_once(name, payload), payload)

    def test_inet_stream(self):
        d = self.daemon(conf(listener_conf("e4")))
        self.assertEqual(d.listener("e4").family, socket.AF_INET)
        self.check_stream(d, "e4")

    @skip_unless_ipv6
    def test_inet6_stream(self):
        d = self.daemon(conf(listener_conf("e6", address="::1")))
        self.assertEqual(d.listener("e6").family, socket.AF_INET6)
        self.check_stream(d, "e6")

    def test_unix_stream_path(self):
        d = self.daemon(conf(listener_conf("eu", address="@DIR@/echo.sock")))
        self.assertEqual(d.listener("eu").addr, d.path("echo.sock"))
        self.check_stream(d, "eu")

    def test_abstract_stream(self):
        d = self.daemon(conf(listener_conf("ea", address="@@UNIQ@-echo")))
        self.assertEqual(d.listener("ea").addr, "\0%s-echo" % d.uniq)
        self.check_stream(d, "ea")
        # An abstract socket leaves no file behind.
        self.assertFalse(os.path.exists("@%s-echo" % d.uniq))

    def test_several_exchanges_on_one_connection(self):
        d = self.daemon(conf(listener_conf("e")))
        s = d.connect("e")
        for i in range(20):
            msg = b"line %d\n" % i
            send_all(s, msg)
            got = b""
            for _ in range(len(msg)):
                if len(got) >= len(msg):
                    break
                got += recv_within(s)
            self.assertEqual(got, msg)
        s.shutdown(socket.SHUT_WR)
        self.assertEqual(recv_until_eof(s), b"")

    def test_empty_connection_closes(self):
        d = self.daemon(conf(listener_conf("e")))
        s = d.connect("e")
        s.shutdown(socket.SHUT_WR)
        self.assertEqual(recv_until_eof(s), b"")

    def large(self, d, name):
        payload = os.urandom(1 << 20)
        s = d.connect(name, timeout=30)
        got = Exchanger(s, payload, timeout=30).run(len(payload))
        self.assertEqual(len(got), len(payload))
        self.assertTrue(got == payload, "1 MiB payload came back altered")
        self.assertEqual(recv_until_eof(s, timeout=10), b"")

    def test_large_payload_inet(self):
        d = self.daemon(conf(listener_conf("e")))
        self.large(d, "e")

    def test_large_payload_unix(self):
        d = self.daemon(conf(listener_conf("e", address="@DIR@/big.sock")))
        self.large(d, "e")


class EchoDgramTests(DaemonTestCase):

    def check_dgram(self, d, name, **kw):
        s = d.dgram(name, **kw)
        for payload in (b"hello, world\n", BINARY, b"\0", b"x" * 8192):
            with self.subTest(payload=payload[:16], n=len(payload)):
                s.send(payload)
                self.assertEqual(recv_within(s, size=70000), payload)
        return s

    def test_inet_dgram(self):
        d = self.daemon(conf(listener_conf("u4", type="dgram")))
        self.assertEqual(d.listener("u4").type, socket.SOCK_DGRAM)
        self.check_dgram(d, "u4")

    @skip_unless_ipv6
    def test_inet6_dgram(self):
        d = self.daemon(conf(listener_conf("u6", address="::1",
                                           type="dgram")))
        self.check_dgram(d, "u6")

    def test_unix_dgram_path(self):
        d = self.daemon(conf(listener_conf("uu", address="@DIR@/u.sock",
                                           type="dgram")))
        self.check_dgram(d, "uu")

    def test_unix_dgram_autobound_client(self):
        # A client autobound in the abstract namespace gets its reply too.
        d = self.daemon(conf(listener_conf("uu", address="@DIR@/u.sock",
                                           type="dgram")))
        self.check_dgram(d, "uu", bind="")

    def test_abstract_dgram(self):
        d = self.daemon(conf(listener_conf("ua", address="@@UNIQ@-u",
                                           type="dgram")))
        self.check_dgram(d, "ua")

    def test_unbound_unix_client_gets_no_reply_and_daemon_lives(self):
        d = self.daemon(conf(listener_conf("uu", address="@DIR@/u.sock",
                                           type="dgram")))
        s = d.dgram("uu", unbound=True)
        s.send(b"nobody to answer")
        d.wait_log(r"reply dropped")
        self.assertTrue(d.running())
        self.check_dgram(d, "uu")

    def test_each_datagram_answered_separately(self):
        d = self.daemon(conf(listener_conf("u", type="dgram")))
        s = d.dgram("u")
        for i in range(10):
            s.send(b"datagram %d" % i)
        got = [recv_within(s) for _ in range(10)]
        want = [b"datagram %d" % i for i in range(10)]
        if DEFAULT_CONCURRENCY == "sync":     # one at a time, in order
            self.assertEqual(got, want)
        else:
            self.assertEqual(sorted(got), want)

    def test_empty_datagram_echoed(self):
        # RFC 862 answers every datagram with its data, an empty one too.
        d = self.daemon(conf(listener_conf("u", type="dgram")))
        s = d.dgram("u")
        s.send(b"")
        self.assertEqual(recv_within(s, 1), b"")

    def test_oversized_datagram_dropped(self):
        d = self.daemon(conf(listener_conf("u", type="dgram",
                                           extra="max_packet_size = 100;")))
        s = d.dgram("u")
        s.send(b"y" * 101)
        d.wait_log(r"datagram of 101 bytes dropped")
        self.assertTrue(nothing_arrives(s))
        s.send(b"y" * 100)
        self.assertEqual(recv_within(s), b"y" * 100)


if __name__ == "__main__":
    unittest.main()
