# SPDX-License-Identifier: ISC
"""access_log: one entry per finished request at info, in key=value text
and as journal fields: duration, plaintext bytes received and sent (also
for exec, relayed under TLS or counted by the kernel), and the result:
ok, error, timeout, cut or refused:REASON (refusals at most once a second
with the count)."""

import os
import re
import shutil
import signal
import socket
import ssl
import stat
import subprocess
import tempfile
import time
import unittest

from ssdtest import (MODELS, DaemonTestCase, conf, exchange, fixture_plugin,
                     listener_conf, model_conf, recv_until_eof,
                     self_signed_cert, send_all, wait_for)
from test_journal import JournalTestCase

ENTRY = re.compile(r"listener=(?P<listener>\S+) peer=(?P<peer>\S+) "
                   r"duration_usec=(?P<usec>\d+) received=(?P<rx>\d+) "
                   r"sent=(?P<tx>\d+) result=(?P<result>\S+)(?P<rest>.*)$",
                   re.M)


def entries(d, listener=None):
    return [m.groupdict() for m in ENTRY.finditer(d.log())
            if listener is None or m.group("listener") == listener]


def wait_entries(d, n, listener=None, timeout=10):
    wait_for(lambda: len(entries(d, listener)) >= n, timeout,
             what="%d access-log entries" % n)
    return entries(d, listener)


def script(test, body):
    tmp = tempfile.mkdtemp(prefix="ssd-acc-")
    test.addCleanup(shutil.rmtree, tmp, True)
    path = os.path.join(tmp, "prog.sh")
    with open(path, "w") as f:
        f.write("#!/bin/sh\n" + body)
    os.chmod(path, stat.S_IRWXU)
    return path


class AccessLogTests(DaemonTestCase):

    def test_one_entry_per_request_under_every_model(self):
        d = self.daemon(conf(*[model_conf("m-" + m, m,
                                          extra="access_log = true;")
                               for m in MODELS]))
        for m in MODELS:
            with self.subTest(model=m):
                s = d.connect("m-" + m)
                me = "%s:%d" % s.getsockname()[:2]
                self.assertEqual(exchange(s, b"x" * 1000), b"x" * 1000)
                s.shutdown(socket.SHUT_WR)
                recv_until_eof(s)
                s.close()
                e = wait_entries(d, 1, "m-" + m)[0]
                self.assertEqual(e["peer"], me)
                self.assertEqual((e["rx"], e["tx"], e["result"]),
                                 ("1000", "1000", "ok"))
                self.assertGreater(int(e["usec"]), 0)
                self.assertEqual(e["rest"], "")

    def test_off_by_default(self):
        d = self.daemon(conf(listener_conf("e")))
        self.assertEqual(d.echo_once("e", b"hi\n"), b"hi\n")
        self.assertStopsCleanly(d)
        self.assertEqual(entries(d), [])

    def test_datagram(self):
        d = self.daemon(conf(listener_conf("u", type="dgram",
                                           extra="access_log = true;")))
        self.assertEqual(d.echo_once("u", b"12345"), b"12345")
        e = wait_entries(d, 1, "u")[0]
        self.assertEqual((e["rx"], e["tx"], e["result"]), ("5", "5", "ok"))

    def test_timeout_and_cut(self):
        d = self.daemon(conf(
            listener_conf("slow", concurrency="thread",
                          extra="access_log = true; timeout = 0.3;"),
            listener_conf("idle", concurrency="event",
                          extra="access_log = true; timeout = 0;"),
            globals_="shutdown_timeout = 0.3;"))
        s = d.connect("slow")
        s.settimeout(10)
        self.assertEqual(s.recv(10), b"")   # ended by the timeout
        self.assertEqual(wait_entries(d, 1, "slow")[0]["result"],
                         "timeout")
        idle = d.connect("idle")
        send_all(idle, b"abc")
        self.assertEqual(idle.recv(3), b"abc")
        wait_for(lambda: d.log_has(r"listener=idle peer=\S+: start"),
                 what="the request started")
        self.assertStopsCleanly(d)
        e = entries(d, "idle")[0]
        self.assertEqual((e["rx"], e["tx"], e["result"]),
                         ("3", "3", "cut"))

    def test_refusals_once_a_second_with_the_count(self):
        d = self.daemon(conf(listener_conf(
            "acl", concurrency="event",
            extra='access_log = true; deny = [ "127.0.0.1" ];')))
        # The daemon logs at most one refusal per second of time(2):
        # count the seconds of the wall clock the burst spans (time(2)
        # may read a coarse clock, a tick behind time.time()).
        w0 = time.time() - 0.05
        for _ in range(20):
            s = d.connect("acl")
            s.settimeout(5)
            try:
                s.recv(1)
            except ConnectionError:
                pass
            s.close()
        e = wait_entries(d, 1, "acl")[0]
        self.assertEqual(e["result"], "refused:acl")
        self.assertRegex(e["rest"], r'^ refused_since_last=1 why="refused '
                         r'by allow/deny"$')
        seconds = int(time.time()) - int(w0) + 1
        # twenty refusals: a line for each second they span at most (one
        # or two, not twenty), and the counts add up once the next
        # second's refusal reports
        self.assertLessEqual(len(entries(d, "acl")), seconds)
        time.sleep(1.05)    # the limit is by the second: pass to the next
        s = d.connect("acl")
        s.close()
        wait_for(lambda: sum(int(re.search(r"refused_since_last=(\d+)",
                                           x["rest"]).group(1))
                             for x in entries(d, "acl")) == 21,
                 what="21 refusals reported")

    @unittest.skipIf(fixture_plugin("spawnfirst") is None,
                     "SSD_TEST_PLUGINS unset")
    def test_program_bytes_before_ssd_waitpid_count(self):
        # A program quick enough to read its input (and answer) before
        # its handler calls ssd_waitpid: those bytes are the program's
        # too.  (The count began at the call: received=0, sent=0; seen
        # under ThreadSanitizer with exec, which slows the daemon.)
        d = self.daemon(conf(listener_conf(
            "x", handler=fixture_plugin("spawnfirst"), concurrency="thread",
            extra="access_log = true;")))
        s = d.connect("x")
        send_all(s, b"1234567\n")
        self.assertEqual(recv_until_eof(s), b"hello\n")
        s.close()
        e = wait_entries(d, 1, "x")[0]
        self.assertEqual((e["rx"], e["tx"], e["result"]), ("8", "6", "ok"))
        self.assertTrue(d.log_has(r"program status 3"))

    def test_exec_bytes_after_a_closing_handshake(self):
        # The program ends its side (shutdown) and waits for the client
        # to end its own: both FINs are exchanged before it exits, and
        # the connection, still open in the daemon, is in CLOSE (the
        # kernel moves it there from FIN_WAIT2 as it enters TIME_WAIT).
        # Each FIN takes a sequence number the kernel's byte counts
        # include: counted, they made received=9 sent=7.
        prog = script(self, "exec python3 -c '\n"
                      "import socket\n"
                      "s = socket.socket(fileno=0)\n"
                      "d = b\"\"\n"
                      "while not d.endswith(b\"\\n\"):\n"
                      "    d += s.recv(100)\n"
                      "s.sendall(b\"hello\\n\")\n"
                      "s.shutdown(socket.SHUT_WR)\n"
                      "while s.recv(100):\n"
                      "    pass\n"
                      "s.detach()\n"
                      "'\n")
        d = self.daemon(conf(
            listener_conf("x", handler="exec", concurrency="thread",
                          extra='access_log = true; options = { program = '
                          '"%s"; };' % prog)))
        s = d.connect("x")
        send_all(s, b"1234567\n")
        self.assertEqual(recv_until_eof(s), b"hello\n")
        s.close()
        e = wait_entries(d, 1, "x")[0]
        self.assertEqual((e["rx"], e["tx"], e["result"]), ("8", "6", "ok"))

    def test_exec_bytes_and_status(self):
        prog = script(self, "wc -c >/dev/null; echo hello; exit 3\n")
        d = self.daemon(conf(
            listener_conf("x", handler="exec", concurrency="thread",
                          extra='access_log = true; options = { program = '
                          '"%s"; };' % prog), listener_conf(
                "st", handler="status", concurrency="event")))
        s = d.connect("x")
        send_all(s, b"12345678")
        s.shutdown(socket.SHUT_WR)
        self.assertEqual(recv_until_eof(s), b"hello\n")
        s.close()
        e = wait_entries(d, 1, "x")[0]
        # the kernel's count of what the program's connection carried
        self.assertEqual((e["rx"], e["tx"], e["result"]),
                         ("8", "6", "error"))
        # counted as a handler error, logged once (the exit status)
        self.assertEqual(len(re.findall(r"exited with status 3", d.log())),
                         1)
        self.assertNotRegex(d.log(), r"error: .*handler exec failed")
        s = d.connect("st")
        send_all(s, b"GET /metrics HTTP/1.0\r\n\r\n")
        s.shutdown(socket.SHUT_WR)
        m = recv_until_eof(s).decode()
        self.assertRegex(m, r'sockserverd_handler_errors_total\{listener='
                         r'"x"\} 1\n')
        self.assertRegex(m, r'sockserverd_received_bytes_total\{listener='
                         r'"x"\} 8\n')


@unittest.skipUnless(shutil.which("openssl"), "the openssl command is missing")
class AccessLogTlsTests(DaemonTestCase):

    def setUp(self):
        super().setUp()
        self.tmp = tempfile.mkdtemp(prefix="ssd-acc-tls-")
        self.addCleanup(shutil.rmtree, self.tmp, True)
        pem, key = self_signed_cert(self.tmp)
        self.tls = 'tls = { certificate = "%s"; key = "%s"; };' % (pem, key)
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        self.ctx.check_hostname = False
        self.ctx.verify_mode = ssl.CERT_NONE

    def test_plaintext_bytes_and_handshake_refusals(self):
        prog = script(self, "head -c 4 >/dev/null; echo relayed\n")
        d = self.daemon(conf(
            listener_conf("e", concurrency="event",
                          extra="access_log = true; " + self.tls),
            listener_conf("x", handler="exec", concurrency="fork",
                          extra='access_log = true; options = { program = '
                          '"%s"; }; %s' % (prog, self.tls))))
        s = self.ctx.wrap_socket(d.connect("e"))
        s.sendall(b"y" * 100)
        got = b""
        while len(got) < 100:
            got += s.recv(100)
        s.unwrap().close()
        e = wait_entries(d, 1, "e")[0]
        self.assertEqual((e["rx"], e["tx"], e["result"]), ("100", "100", "ok"))
        s = self.ctx.wrap_socket(d.connect("x"))
        s.sendall(b"abcd")
        out = b""
        while True:
            b = s.recv(100)
            if not b:
                break
            out += b
        self.assertEqual(out, b"relayed\n")
        e = wait_entries(d, 1, "x")[0]
        self.assertEqual((e["rx"], e["tx"], e["result"]), ("4", "8", "ok"))
        raw = d.connect("e")
        send_all(raw, b"this is not TLS\r\n" * 20)
        raw.settimeout(5)
        try:
            while raw.recv(100):
                pass
        except ConnectionError:
            pass
        e = wait_entries(d, 2, "e")[1]
        self.assertEqual(e["result"], "refused:tls_handshake")
        self.assertRegex(e["rest"], r'refused_since_last=1 why="TLS '
                         r'handshake failed: ')


class AccessLogJournalTests(JournalTestCase):

    def test_fields(self):
        d, j, _ = self.journal_daemon(conf(
            listener_conf("e", concurrency="event",
                          extra="access_log = true;"),
            globals_='log_target = "journal";'))
        self.use_journal_listeners(d, j)
        me = self.echo(d, "e", b"four")
        e = j.find(SSD_PEER=me, SSD_RESULT="ok")
        self.assertEqual(e["SSD_LISTENER"], "e")
        self.assertEqual(e["SSD_RECEIVED"], "4")
        self.assertEqual(e["SSD_SENT"], "4")
        self.assertRegex(e["SSD_DURATION_USEC"], r"^\d+$")
        self.assertEqual(e["PRIORITY"], "6")
        self.assertRegex(e["MESSAGE"], r"^listener=e peer=%s duration_usec="
                         r"\d+ received=4 sent=4 result=ok$" % re.escape(me))


if __name__ == "__main__":
    unittest.main()
