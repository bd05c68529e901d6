# SPDX-License-Identifier: ISC
"""The RFC handlers, byte-exact, over stream and dgram: discard (RFC 863),
daytime (RFC 867), time (RFC 868) and chargen (RFC 864)."""

import re
import socket
import struct
import time
import unittest

from ssdtest import (DaemonTestCase, conf, listener_conf, nothing_arrives,
                     recv_exactly, recv_until_eof, recv_within, reset_close,
                     send_all, skip_unless_ipv6)

RFC868_OFFSET = 2208988800      # seconds from 1900-01-01 to 1970-01-01
SLACK = 5                       # seconds of clock tolerance

# handlers/daytime.c: "Weekday Mon DD HH:MM:SS YYYY" then CRLF, local time.
DAYTIME_RE = re.compile(rb"\A[A-Z][a-z]{2} [A-Z][a-z]{2} \d\d "
                        rb"\d\d:\d\d:\d\d \d{4}\r\n\Z")

# RFC 864: the 95 printing characters (codes 32-126) as a ring; line N
# holds characters N .. N+71 (mod 95), then CRLF.
RING = bytes(range(32, 127))


def chargen_line(n):
    return bytes(RING[(n + j) % 95] for j in range(72)) + b"\r\n"


def all_handlers(type_, address="127.0.0.1"):
    return conf(*(listener_conf(h, handler=h, address=address, type=type_)
                  for h in ("discard", "daytime", "time", "chargen")))


class HandlerStreamTests(DaemonTestCase):

    def setUp(self):
        self.d = self.daemon(all_handlers("stream"))

    def test_discard_answers_nothing(self):
        s = self.d.connect("discard")
        send_all(s, b"throw this away\r\n" * 100)
        self.assertTrue(nothing_arrives(s), "discard sent something back")
        s.close()
        # The server saw the close as the normal end of the request.
        self.d.wait_log(r"listener=discard peer=127\.0\.0\.1:\d+: done")
        s = self.d.connect("discard")
        send_all(s, b"x" * 100000)
        s.shutdown(socket.SHUT_WR)
        self.assertEqual(recv_until_eof(s), b"")

    def check_daytime_line(self, line):
        self.assertRegex(line, DAYTIME_RE)
        when = time.mktime(time.strptime(line[:-2].decode("ascii"),
                                         "%a %b %d %H:%M:%S %Y"))
        self.assertLess(abs(when - time.time()), SLACK,
                        "daytime %r is not now" % line)

    def test_daytime_one_line_then_close(self):
        s = self.d.connect("daytime")
        line = recv_until_eof(s)
        self.assertEqual(line.count(b"\r\n"), 1)
        self.assertTrue(line.endswith(b"\r\n"))
        self.check_daytime_line(line)

    def check_time(self, data):
        self.assertEqual(len(data), 4, "time is exactly 4 bytes: %r" % data)
        (t,) = struct.unpack(">I", data)
        now = (int(time.time()) + RFC868_OFFSET) & 0xffffffff
        diff = (t - now + (1 << 31)) % (1 << 32) - (1 << 31)
        self.assertLessEqual(abs(diff), SLACK, "time %d is not now" % t)

    def test_time_four_bytes_big_endian(self):
        s = self.d.connect("time")
        self.check_time(recv_until_eof(s))

    def test_chargen_lines(self):
        s = self.d.connect("chargen")
        first = recv_exactly(s, 3 * 74)
        self.assertEqual(first[:74], b" !\"#$%&'()*+,-./0123456789:;<=>?@"
                         b"ABCDEFGHIJKLMNOPQRSTUVWXYZ[\\]^_`abcdefg\r\n")
        self.assertEqual(first, chargen_line(0) + chargen_line(1) +
                         chargen_line(2))
        # Past one whole cycle of the ring: the pattern goes on rotating.
        rest = recv_exactly(s, 200 * 74)
        expect = b"".join(chargen_line(n) for n in range(3, 203))
        self.assertTrue(rest == expect, "chargen lines 3-202 differ")
        s.close()
        self.d.wait_log(r"listener=chargen peer=\S+: done")

    def test_chargen_ignores_input(self):
        s = self.d.connect("chargen")
        send_all(s, b"ignored\r\n" * 10)
        self.assertEqual(recv_exactly(s, 74), chargen_line(0))
        reset_close(s)


class HandlerDgramTests(DaemonTestCase):

    def setUp(self):
        self.d = self.daemon(all_handlers("dgram"))

    def test_discard_no_reply(self):
        s = self.d.dgram("discard")
        s.send(b"throw this away")
        self.assertTrue(nothing_arrives(s), "discard replied")
        self.d.wait_log(r"listener=discard peer=127\.0\.0\.1:\d+: done")
        self.assertTrue(self.d.running())

    def test_daytime_one_datagram(self):
        s = self.d.dgram("daytime")
        s.send(b"?")
        line = recv_within(s)
        HandlerStreamTests.check_daytime_line(self, line)
        self.assertTrue(nothing_arrives(s), "more than one datagram")

    def test_time_one_datagram(self):
        s = self.d.dgram("time")
        s.send(b"")
        HandlerStreamTests.check_time(self, recv_within(s))
        s.send(b"anything")
        HandlerStreamTests.check_time(self, recv_within(s))

    def check_chargen_datagram(self, data):
        self.assertLessEqual(len(data), 512)
        self.assertGreater(len(data), 0)
        self.assertEqual(len(data) % 74, 0, "whole lines only")
        start = RING.index(data[0])
        for k in range(len(data) // 74):
            self.assertEqual(data[k * 74:(k + 1) * 74],
                             chargen_line(start + k), "line %d" % k)

    def test_chargen_whole_lines(self):
        s = self.d.dgram("chargen")
        for _ in range(20):     # more than a cycle of the ring
            s.send(b"x")
            self.check_chargen_datagram(recv_within(s))


@skip_unless_ipv6
class HandlerInet6Tests(DaemonTestCase):

    def test_all_over_inet6(self):
        d = self.daemon(all_handlers("stream", "::1"))
        HandlerStreamTests.check_time(self, recv_until_eof(d.connect("time")))
        s = d.connect("chargen")
        self.assertEqual(recv_exactly(s, 74), chargen_line(0))
        s.close()
        line = recv_until_eof(d.connect("daytime"))
        HandlerStreamTests.check_daytime_line(self, line)


class HandlerUnixTests(DaemonTestCase):

    def test_all_over_unix_dgram(self):
        d = self.daemon(conf(*(listener_conf(
            h, handler=h, address="@DIR@/%s.sock" % h, type="dgram")
            for h in ("discard", "daytime", "time", "chargen"))))
        s = d.dgram("time")
        s.send(b"t")
        HandlerStreamTests.check_time(self, recv_within(s))
        s = d.dgram("chargen")
        s.send(b"c")
        HandlerDgramTests.check_chargen_datagram(self, recv_within(s))
        s = d.dgram("daytime")
        s.send(b"d")
        HandlerStreamTests.check_daytime_line(self, recv_within(s))
        s = d.dgram("discard")
        s.send(b"d")
        self.assertTrue(nothing_arrives(s))


if __name__ == "__main__":
    unittest.main()
