# SPDX-License-Identifier: ISC
"""allow / deny (socketserver's verify_request): refused clients get no
data and never reach the handler; allowed ones are served."""

import re
import socket
import unittest

from ssdtest import (HAVE_127_0_0_2, QUIET, DaemonTestCase, closed_by_peer,
                     conf, exchange, listener_conf, nothing_arrives,
                     recv_until_eof, recv_within, run_binary, send_all,
                     skip_unless_ipv6)

skip_unless_127_0_0_2 = unittest.skipUnless(HAVE_127_0_0_2,
                                            "cannot bind 127.0.0.2")

REFUSED = r"listener=%s peer=%s:\d+: refused by allow/deny"


class AclStreamTests(DaemonTestCase):

    def assertRefused(self, d, name, bind=None):
        s = d.connect(name, bind=bind)
        self.assertTrue(closed_by_peer(s), "refused client got data")
        s.close()

    def assertServed(self, d, name, bind=None, payload=b"let me in"):
        s = d.connect(name, bind=bind)
        send_all(s, payload)
        s.shutdown(socket.SHUT_WR)
        self.assertEqual(recv_until_eof(s), payload)
        s.close()

    def test_deny_refuses(self):
        d = self.daemon(conf(listener_conf(
            "e", extra='deny = [ "127.0.0.1" ];')))
        self.assertRefused(d, "e")
        d.wait_log(REFUSED % ("e", r"127\.0\.0\.1"))
        # Refused before setup: the handler never started a request.
        self.assertFalse(d.log_has(r"listener=e peer=\S+: start"))
        # A refused client that sent data is closed too (EOF or reset).
        s = d.connect("e")
        try:
            send_all(s, b"data")
        except ConnectionResetError:
            pass
        self.assertTrue(closed_by_peer(s))
        self.assertTrue(d.running())

    @skip_unless_127_0_0_2
    def test_allow_other_address_refuses_and_accepts(self):
        d = self.daemon(conf(listener_conf(
            "e", extra='allow = [ "127.0.0.2" ];')))
        self.assertRefused(d, "e")
        d.wait_log(REFUSED % ("e", r"127\.0\.0\.1"))
        self.assertServed(d, "e", bind=("127.0.0.2", 0))

    @skip_unless_127_0_0_2
    def test_deny_wins_over_allow_and_cidr(self):
        d = self.daemon(conf(listener_conf(
            "e", extra='allow = [ "127.0.0.0/8" ]; '
                       'deny = [ "127.0.0.2/32" ];')))
        self.assertServed(d, "e")
        self.assertRefused(d, "e", bind=("127.0.0.2", 0))
        d.wait_log(REFUSED % ("e", r"127\.0\.0\.2"))

    def test_allow_cidr_admits(self):
        d = self.daemon(conf(listener_conf(
            "e", extra='allow = [ "10.0.0.0/8", "127.0.0.0/30" ];')))
        self.assertServed(d, "e")

    @skip_unless_ipv6
    def test_inet6(self):
        d = self.daemon(conf(
            listener_conf("deny6", address="::1", extra='deny = [ "::1" ];'),
            listener_conf("allow6", address="::1",
                          extra='allow = [ "::1/128" ];'),
            listener_conf("other6", address="::1",
                          extra='allow = [ "fe80::/10", "127.0.0.1" ];')))
        self.assertRefused(d, "deny6")
        d.wait_log(REFUSED % ("deny6", r"\[::1\]"))
        self.assertServed(d, "allow6")
        self.assertRefused(d, "other6")

    @skip_unless_ipv6
    def test_v4_mapped_client_matches_ipv4_rules(self):
        # A dual-stack listener sees 127.0.0.1 as ::ffff:127.0.0.1.
        d = self.daemon(conf(
            '{ name = "dual"; family = "inet6"; address = "::"; port = 0; '
            'v6only = false; handler = "echo"; deny = [ "127.0.0.0/8" ]; }'))
        port = d.listener("dual").port
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
        self.assertTrue(closed_by_peer(s), "a v4-mapped client got in")
        s.close()
        d.wait_log(REFUSED % ("dual", r"\[::ffff:127\.0\.0\.1\]"))
        self.assertServed(d, "dual")    # over ::1: not in the rule

    @skip_unless_ipv6
    def test_v4_mapped_rule_holds_the_v4_client(self):
        # The log names a v4 client of a dual-stack listener
        # [::ffff:127.0.0.1]: a rule copied from it must hold that client.
        d = self.daemon(conf(
            '{ name = "dual"; family = "inet6"; address = "::"; port = 0; '
            'v6only = false; handler = "echo"; '
            'deny = [ "::ffff:127.0.0.1" ]; }',
            '{ name = "only"; family = "inet6"; address = "::"; port = 0; '
            'v6only = false; handler = "echo"; '
            'allow = [ "::ffff:127.0.0.0/104" ]; }'))
        s = socket.create_connection(("127.0.0.1", d.listener("dual").port),
                                     timeout=5)
        self.assertTrue(closed_by_peer(s), "a denied v4-mapped client got in")
        s.close()
        d.wait_log(REFUSED % ("dual", r"\[::ffff:127\.0\.0\.1\]"))
        self.assertServed(d, "dual")    # over ::1: not in the rule
        s = socket.create_connection(("127.0.0.1", d.listener("only").port),
                                     timeout=5)
        self.assertEqual(exchange(s, b"in"), b"in")
        s.close()
        self.assertRefused(d, "only")   # over ::1
        d.wait_log(REFUSED % ("only", r"\[::1\]"))

    def test_refusals_do_not_block_the_listener(self):
        d = self.daemon(conf(listener_conf(
            "e", extra='deny = [ "127.0.0.1" ];'), listener_conf("ok")))
        for _ in range(20):
            self.assertRefused(d, "e")
        self.assertServed(d, "ok")


class AclDgramTests(DaemonTestCase):

    def test_deny_no_reply(self):
        d = self.daemon(conf(listener_conf(
            "u", type="dgram", extra='deny = [ "127.0.0.1" ];')))
        s = d.dgram("u")
        s.send(b"hello?")
        self.assertTrue(nothing_arrives(s, QUIET), "refused client answered")
        d.wait_log(REFUSED % ("u", r"127\.0\.0\.1"))
        self.assertFalse(d.log_has(r"listener=u peer=\S+: start"))

    @skip_unless_127_0_0_2
    def test_allow_other_address(self):
        d = self.daemon(conf(listener_conf(
            "u", type="dgram", extra='allow = [ "127.0.0.2" ];')))
        s = d.dgram("u")
        s.send(b"from .1")
        self.assertTrue(nothing_arrives(s, QUIET), "refused client answered")
        d.wait_log(REFUSED % ("u", r"127\.0\.0\.1"))
        s2 = d.dgram("u", bind=("127.0.0.2", 0))
        s2.send(b"from .2")
        self.assertEqual(recv_within(s2), b"from .2")
        # The refused one still gets nothing.
        self.assertTrue(nothing_arrives(s, 0.1))


class AclConfigTests(DaemonTestCase):

    def test_acl_on_unix_listener_is_a_config_error(self):
        # A unix client has no address to match: the rule cannot hold.
        d = self.daemon(conf(listener_conf(
            "x", address="@DIR@/x.sock", extra='allow = [ "10.0.0.1" ];')),
            start=False)
        r = run_binary(["-t", "-c", d.conf_path])
        self.assertEqual(r.returncode, 1)
        self.assertRegex(r.stderr.decode(), r"%s:\d+: .*allow"
                         % re.escape(d.conf_path))


if __name__ == "__main__":
    unittest.main()
