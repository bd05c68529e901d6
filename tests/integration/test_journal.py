# SPDX-License-Identifier: ISC
"""log_target = "journal" (issue 12): the journal's native protocol, read
by a fake journal the test owns (a unix datagram socket named to the
daemon by $SSD_JOURNAL_SOCKET): the fields of request and listener
messages under every model, the binary form of multi-line values, an
entry too large for a datagram passed as a sealed memfd, the fallback to
stderr (said once) when the socket is missing and the return to the
journal when it appears, switching on reload, and a full journal: messages
dropped and counted, the daemon serving on."""

import fcntl
import os
import re
import socket
import struct
import threading
import unittest

from ssdtest import (IO_TIMEOUT, MODELS, DaemonTestCase, Deadline, conf,
                     exchange, listener_conf, log_tail, model_conf,
                     parse_listeners, recv_until_eof, send_all, wait_for)
from test_ownership import preload_env

JOURNAL_TARGET = 'log_target = "journal";'


def parse_entry(data):
    """One entry of the native protocol: {NAME: value (str)}.  Checks the
    framing strictly: every field ends in a newline, a binary field's
    length is exact, no field comes twice."""
    fields, i = {}, 0
    while i < len(data):
        nl = data.index(b"\n", i)
        line = data[i:nl]
        if b"=" in line:
            name, value = line.split(b"=", 1)
            i = nl + 1
        else:
            name = line
            (n,) = struct.unpack("<Q", data[nl + 1:nl + 9])
            value = data[nl + 9:nl + 9 + n]
            if len(value) != n or data[nl + 9 + n:nl + 10 + n] != b"\n":
                raise AssertionError("bad binary field %r in %r"
                                     % (name, data))
            i = nl + 10 + n
        name = name.decode()
        if not re.fullmatch(r"[A-Z0-9][A-Z0-9_]*", name):
            raise AssertionError("bad field name %r in %r" % (name, data))
        if name in fields:
            raise AssertionError("field %s twice in %r" % (name, data))
        fields[name] = value.decode("utf-8", "replace")
    return fields


class FakeJournal:
    """A unix datagram socket at path, read the way journald reads its
    native socket: a datagram is an entry, or (no bytes, one descriptor)
    a sealed memfd holding one."""

    def __init__(self, path):
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(path)
        self.sock.setblocking(False)
        self.entries = []
        self.raw = []               # (payload, via_memfd)

    def close(self):
        self.sock.close()

    def _read_memfd(self, fd):
        try:
            seals = fcntl.fcntl(fd, fcntl.F_GET_SEALS)
            want = (fcntl.F_SEAL_SHRINK | fcntl.F_SEAL_GROW |
                    fcntl.F_SEAL_WRITE)
            if seals & want != want:
                raise AssertionError("memfd not sealed: seals %#x" % seals)
            size = os.fstat(fd).st_size
            return os.pread(fd, size, 0)
        finally:
            os.close(fd)

    def poll(self):
        """Reads every datagram waiting; returns how many."""
        n = 0
        for _ in range(100000):
            try:
                data, anc, flags, _ = self.sock.recvmsg(
                    1 << 17, socket.CMSG_SPACE(16 * 4))
            except (BlockingIOError, InterruptedError):
                return n
            fds = []
            for level, typ, cdata in anc:
                if level == socket.SOL_SOCKET and typ == socket.SCM_RIGHTS:
                    fds += list(struct.unpack(
                        "%di" % (len(cdata) // 4),
                        cdata[:len(cdata) - len(cdata) % 4]))
            if flags & (socket.MSG_TRUNC | socket.MSG_CTRUNC):
                raise AssertionError("truncated datagram")
            if fds:
                if data or len(fds) != 1:
                    for f in fds:
                        os.close(f)
                    raise AssertionError("%d bytes with %d descriptors"
                                         % (len(data), len(fds)))
                data, memfd = self._read_memfd(fds[0]), True
            else:
                memfd = False
            self.raw.append((data, memfd))
            self.entries.append(parse_entry(data))
            n += 1
        return n

    def find(self, timeout=IO_TIMEOUT, **want):
        """Waits for an entry whose fields include want (a value that is
        a compiled regular expression is searched for): the entry."""
        def match(e):
            for k, v in want.items():
                if k not in e:
                    return False
                if hasattr(v, "search"):
                    if not v.search(e[k]):
                        return False
                elif e[k] != v:
                    return False
            return True

        def found():
            self.poll()
            return next((e for e in self.entries if match(e)), None)
        try:
            return wait_for(found, timeout, what="journal entry %r" % want)
        except AssertionError:
            raise AssertionError("no journal entry with %r; got:\n%s"
                                 % (want, "\n".join(
                                     repr(e) for e in self.entries[-30:])))

    def messages(self):
        self.poll()
        return [e.get("MESSAGE", "") for e in self.entries]

    def listeners(self):
        return parse_listeners("\n".join(self.messages()))


class JournalTestCase(DaemonTestCase):

    def journal_daemon(self, text, bind=True, env=None, start=True, **kw):
        """A daemon (not started) whose $SSD_JOURNAL_SOCKET is a fake
        journal in its directory (bound unless bind is false)."""
        e = dict(env or {})
        d = self.daemon(text, start=False, env=e, **kw)
        path = d.path("journal.sock")
        d.extra_env["SSD_JOURNAL_SOCKET"] = path
        j = None
        if bind:
            j = FakeJournal(path)
            self.addCleanup(j.close)
        if start:
            d.start()
        return d, j, path

    def use_journal_listeners(self, d, j):
        """The listeners' addresses, from the journal's "listening on"."""
        wait_for(lambda: j.listeners(), what="listening on")
        d.listeners = j.listeners()

    def echo(self, d, name, payload=b"hi\n"):
        s = d.connect(name)
        me = "%s:%d" % s.getsockname()[:2]
        self.assertEqual(exchange(s, payload), payload)
        s.shutdown(socket.SHUT_WR)
        recv_until_eof(s)
        s.close()
        return me


class FieldTests(JournalTestCase):

    def test_request_messages_carry_listener_and_peer(self):
        for model in MODELS:
            with self.subTest(model=model):
                d, j, _ = self.journal_daemon(conf(
                    model_conf("echo", model), globals_=JOURNAL_TARGET))
                self.use_journal_listeners(d, j)
                ln = j.find(MESSAGE=re.compile(r"^listener=echo: listening"
                                               r" on "))
                self.assertEqual(ln["SSD_LISTENER"], "echo")
                self.assertNotIn("SSD_PEER", ln)
                self.assertEqual(ln["PRIORITY"], "6")
                me = self.echo(d, "echo")
                e = j.find(SSD_PEER=me, MESSAGE=re.compile(r": done$"))
                self.assertEqual(e["MESSAGE"],
                                 "listener=echo peer=%s: done" % me)
                self.assertEqual(e["SSD_LISTENER"], "echo")
                self.assertEqual(e["PRIORITY"], "7")
                self.assertEqual(e["SYSLOG_IDENTIFIER"], "sockserverd")
                j.find(SSD_PEER=me, MESSAGE=re.compile(r": start$"))
                self.assertStopsCleanly(d)
                # Nothing went to stderr: not a request line, no
                # warning that the journal could not be reached (a
                # fork child that lost the socket would say so).
                self.assertNotRegex(d.log(), r"peer=|cannot reach")

    def test_every_message_has_identifier_and_priority(self):
        d, j, _ = self.journal_daemon(conf(listener_conf("echo"),
                                           globals_=JOURNAL_TARGET))
        self.use_journal_listeners(d, j)
        self.echo(d, "echo")
        self.assertStopsCleanly(d)
        j.find(MESSAGE="stopped")
        self.assertGreater(len(j.entries), 3)
        for e in j.entries:
            self.assertEqual(e["SYSLOG_IDENTIFIER"], "sockserverd", e)
            self.assertRegex(e["PRIORITY"], r"^[3-7]$", e)
            self.assertIn("MESSAGE", e)
        self.assertTrue(all(not via for _, via in j.raw))

    def test_multiline_value_uses_the_binary_form(self):
        d, j, _ = self.journal_daemon(conf(listener_conf("echo"),
                                           globals_=JOURNAL_TARGET))
        # A reload that fails says why, quoting the bad value: here
        # with a newline in it.
        d.reload(conf(listener_conf("echo"),
                      globals_='log_target = "two\\nlines";'))
        e = j.find(MESSAGE=re.compile(r'not "two\nlines"'))
        self.assertEqual(e["PRIORITY"], "3")
        raw = next(r for r, _ in j.raw if b"two\nlines" in r)
        self.assertRegex(raw, rb"(^|\n)MESSAGE\n[\s\S]{8}")
        self.assertStopsCleanly(d)


class MemfdTests(JournalTestCase):

    def test_entry_too_large_for_a_datagram_goes_in_a_sealed_memfd(self):
        env = preload_env("dgrammax", DGRAM_MAX="120")
        if env is None:
            self.skipTest("the preload fixtures are not built")
        d, j, _ = self.journal_daemon(conf(listener_conf("echo"),
                                           globals_=JOURNAL_TARGET),
                                      env=env)
        self.use_journal_listeners(d, j)
        me = self.echo(d, "echo")
        e = j.find(SSD_PEER=me, MESSAGE=re.compile(r": done$"))
        self.assertEqual(e["SSD_LISTENER"], "echo")
        raws = [(r, via) for r, via in j.raw]
        self.assertTrue(any(via for _, via in raws), "no memfd at all")
        for r, via in raws:
            self.assertEqual(via, len(r) > 120, r)
        self.assertStopsCleanly(d)
        self.assertNotIn("cannot reach", d.log())


class FallbackTests(JournalTestCase):

    def test_missing_socket_falls_back_to_stderr_said_once(self):
        d, _, path = self.journal_daemon(
            conf(listener_conf("echo"), globals_=JOURNAL_TARGET),
            bind=False)
        me = self.echo(d, "echo")
        d.wait_log(r"listener=echo peer=%s: done" % re.escape(me))
        d.reload()
        self.echo(d, "echo")
        log = d.log()
        warnings = re.findall(r"(?m)^.*cannot reach.*$", log)
        self.assertEqual(len(warnings), 1, log_tail(log))
        self.assertIn("warning: log_target journal: cannot reach %s: "
                      % path, warnings[0])
        self.assertIn("logging to stderr instead", warnings[0])
        # The journal appears: messages go there again, and it is said.
        j = FakeJournal(path)
        self.addCleanup(j.close)
        me = self.echo(d, "echo")
        j.find(SSD_PEER=me, MESSAGE=re.compile(r": done$"))
        j.find(MESSAGE=re.compile(r"journal is back"), PRIORITY="5")
        self.assertNotIn("peer=%s" % me, d.log())
        self.assertStopsCleanly(d)

    def test_switching_target_on_reload(self):
        d, j, path = self.journal_daemon(conf(listener_conf("echo")))
        me = self.echo(d, "echo")
        d.wait_log(r"peer=%s: done" % re.escape(me))
        self.assertEqual(j.messages(), [])
        d.reload(conf(listener_conf("echo"), globals_=JOURNAL_TARGET))
        me = self.echo(d, "echo")
        j.find(SSD_PEER=me, MESSAGE=re.compile(r": done$"))
        self.assertNotIn("peer=%s" % me, d.log())
        d.reload(conf(listener_conf("echo")))
        me = self.echo(d, "echo")
        d.wait_log(r"peer=%s: done" % re.escape(me))
        self.assertFalse(any(e.get("SSD_PEER") == me for e in j.entries))
        # Switching to a journal that is gone: said (once) again.
        j.close()
        os.unlink(path)
        d.reload(conf(listener_conf("echo"), globals_=JOURNAL_TARGET))
        me = self.echo(d, "echo")
        d.wait_log(r"peer=%s: done" % re.escape(me))
        self.assertEqual(len(re.findall("cannot reach", d.log())), 1)
        self.assertStopsCleanly(d)


class FullJournalTests(JournalTestCase):

    def metrics(self, d):
        s = d.connect("st")
        send_all(s, b"GET /metrics HTTP/1.0\r\n\r\n")
        body = recv_until_eof(s).decode().partition("\r\n\r\n")[2]
        s.close()
        m = re.search(r"(?m)^sockserverd_log_dropped_total (\d+)$", body)
        self.assertIsNotNone(m, body)
        return int(m.group(1))

    def test_full_journal_drops_counts_and_keeps_serving(self):
        d, j, _ = self.journal_daemon(conf(
            listener_conf("echo", concurrency="event"),
            listener_conf("t", concurrency="thread"),
            listener_conf("st", handler="status"),
            globals_=JOURNAL_TARGET))
        self.use_journal_listeners(d, j)
        # Nobody reads the journal now: its queue fills after a few
        # datagrams (net.unix.max_dgram_qlen), and every request logs
        # two messages at debug.  A daemon that waited for room would
        # miss these deadlines.
        # Four clients at once on a thread listener too: threads that
        # log (and drop) concurrently.
        errors = []

        def client(name, n):
            try:
                for i in range(n):
                    s = d.connect(name, timeout=IO_TIMEOUT)
                    self.assertEqual(exchange(s, b"x%d\n" % i),
                                     b"x%d\n" % i)
                    s.close()
            except BaseException as e:      # reported below
                errors.append(e)
        dl = Deadline(60)
        ts = [threading.Thread(target=client, args=("t", 50), daemon=True)
              for _ in range(4)]
        for t in ts:
            t.start()
        client("echo", 300)
        for t in ts:
            t.join(dl.remaining())
        self.assertFalse(any(t.is_alive() for t in ts), "clients stuck")
        self.assertEqual(errors, [])
        self.assertFalse(dl.expired(), "500 requests took over 60s")
        dropped = self.metrics(d)
        self.assertGreater(dropped, 0)
        # Room again: the next message through is followed by a warning
        # with the count.
        j.poll()
        me = self.echo(d, "echo")
        j.find(SSD_PEER=me, MESSAGE=re.compile(r": start$"))
        e = j.find(MESSAGE=re.compile(r"messages? dropped"))
        self.assertEqual(e["PRIORITY"], "4")
        n = int(re.search(r"(\d+) messages? dropped", e["MESSAGE"]).group(1))
        self.assertGreaterEqual(n, dropped)
        self.assertEqual(self.metrics(d), n)
        self.assertStopsCleanly(d)
        self.assertNotIn("cannot reach", d.log())


if __name__ == "__main__":
    unittest.main()
