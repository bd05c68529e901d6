# SPDX-License-Identifier: ISC
"""SIGHUP reload (issue 5): the RELOADING=1 / MONOTONIC_USEC= / READY=1 /
STATUS= notifications; 50 reloads under a client loop on an unchanged
listener (no connection refused or dropped, the port kept, a connection
opened before them still talking, a client queued in the backlog served)
under every model and on a unix socket; invalid reloads (bad syntax, an
unknown handler, a port taken, v6only changed) that leave the old
configuration serving and log FILE:LINE; and listeners added, removed,
moved and given another handler."""

import os
import re
import signal
import socket
import stat
import threading
import time
import unittest

from ssdtest import (HAVE_127_0_0_2, IO_TIMEOUT, MAX_ITER, MODELS, QUIET,
                     Deadline, DaemonTestCase, conf, connect_to, exchange,
                     finish,
                     listener_conf, model_conf, nothing_arrives, proc_stat,
                     recv_exactly, recv_until_eof, send_all,
                     skip_unless_ipv6, wait_for)

RELOADS = 50
LOOPS = 3               # client threads connecting during the reloads


def refused(family, addr):
    """True if a new stream connection to addr is refused (a unix path
    that is gone counts as refused)."""
    s = socket.socket(family, socket.SOCK_STREAM)
    try:
        s.settimeout(IO_TIMEOUT)
        s.connect(addr)
    except (ConnectionRefusedError, FileNotFoundError):
        return True
    finally:
        s.close()
    return False


def status_lines(lines):
    return [ln for ln in lines if ln.startswith("STATUS=")]


def conf_line(text, needle):
    """The 1-based line of text holding needle (for FILE:LINE checks)."""
    for i, ln in enumerate(text.splitlines(), 1):
        if needle in ln:
            return i
    raise AssertionError("%r not in the configuration" % needle)


class ClientLoop:
    """A thread connecting to one stream listener over and over (a new
    connection each time: send, EOF, read the echo) until stopped;
    counts the good exchanges and records every failure."""

    def __init__(self, family, addr, deadline=100):
        self.family, self.addr = family, addr
        self.ok = 0
        self.failures = []
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.dl = Deadline(deadline)
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self):
        for i in range(MAX_ITER):
            if self.stop.is_set() or self.dl.expired():
                return
            payload = b"loop %d\n" % i
            s = None
            try:
                s = connect_to(self.family, self.addr, IO_TIMEOUT)
                send_all(s, payload)
                s.shutdown(socket.SHUT_WR)
                got = recv_until_eof(s)
                if got != payload:
                    raise AssertionError("echo %r for %r" % (got, payload))
                with self.lock:
                    self.ok += 1
            except Exception as e:
                with self.lock:
                    self.failures.append("connection %d: %r" % (i, e))
            finally:
                if s is not None:
                    s.close()

    def count(self):
        with self.lock:
            return self.ok + len(self.failures)

    def start(self):
        self.thread.start()

    def end(self):
        """Stops the loop and waits for its last connection."""
        self.stop.set()
        self.thread.join(2 * IO_TIMEOUT + 5)


# ---------------------------------------------------------------------------
# 1. Notifications.


class ReloadNotifyTests(DaemonTestCase):

    def reload_datagrams(self, d):
        """SIGHUP; (the datagrams that came, the CLOCK_MONOTONIC window in
        microseconds around the reload)."""
        d.read_notify()
        mark = len(d.messages)
        before = time.monotonic_ns() // 1000
        d.reload()
        after = time.monotonic_ns() // 1000
        return d.messages[mark:], before, after

    def test_reloading_monotonic_ready_status(self):
        d = self.daemon(conf(listener_conf("e")))
        msgs, before, after = self.reload_datagrams(d)
        # RELOADING=1 and MONOTONIC_USEC= travel in one datagram
        # (sd_notify(3): systemd ignores a RELOADING=1 without it).
        rel = [i for i, m in enumerate(msgs) if "RELOADING=1" in
               m.split("\n")]
        self.assertEqual(len(rel), 1, msgs)
        fields = msgs[rel[0]].split("\n")
        mono = [f for f in fields if f.startswith("MONOTONIC_USEC=")]
        self.assertEqual(len(mono), 1, msgs[rel[0]])
        self.assertRegex(mono[0], r"^MONOTONIC_USEC=[0-9]+$")
        usec = int(mono[0].split("=", 1)[1])
        # CLOCK_MONOTONIC, taken between the signal and READY=1.
        self.assertLessEqual(before, usec, "MONOTONIC_USEC before SIGHUP")
        self.assertLessEqual(usec, after, "MONOTONIC_USEC after READY=1")
        # Then READY=1, with a STATUS= that says the reload took.
        ready = [i for i, m in enumerate(msgs) if "READY=1" in
                 m.split("\n")]
        self.assertEqual(len(ready), 1, msgs)
        self.assertGreater(ready[0], rel[0])
        status = [f for m in msgs[ready[0]:] for f in m.split("\n")
                  if f.startswith("STATUS=")]
        self.assertTrue(status, msgs)
        self.assertIn("reloaded", status[0])
        self.assertNotIn("fail", status[0])
        self.assertEqual(d.echo_once("e"), b"ping\n")

    def test_failed_reload_says_so(self):
        text = conf(listener_conf("e"))
        d = self.daemon(text)
        lines = d.reload(text + "listeners = ( garbage\n")
        self.assertIn("RELOADING=1", lines)
        self.assertLess(lines.index("RELOADING=1"), lines.index("READY=1"))
        st = status_lines(lines[lines.index("READY=1"):])
        self.assertTrue(st, lines)
        self.assertRegex(st[0], r"reload failed")
        self.assertRegex(st[0], r"(previous|old) configuration kept")
        self.assertEqual(d.echo_once("e"), b"ping\n")
        # A good reload afterwards says "reloaded" again.
        lines = d.reload(text)
        st = status_lines(lines[lines.index("READY=1"):])
        self.assertIn("reloaded", st[0])
        self.assertNotIn("fail", st[0])

    def test_reload_time_is_monotonic_across_reloads(self):
        d = self.daemon(conf(listener_conf("e")))
        seen = []
        for _ in range(3):
            msgs, before, after = self.reload_datagrams(d)
            for m in msgs:
                for f in m.split("\n"):
                    if f.startswith("MONOTONIC_USEC="):
                        seen.append(int(f.split("=", 1)[1]))
        self.assertEqual(len(seen), 3)
        self.assertEqual(seen, sorted(seen))
        self.assertEqual(len(set(seen)), 3)


# ---------------------------------------------------------------------------
# 2 and 4. Under each model: 50 reloads under load; listeners added,
# removed, moved, given another handler.


class ReloadModelCases:
    """MODEL is one of ssdtest.MODELS; UNIX puts the loaded listener on a
    unix socket."""

    MODEL = None
    UNIX = False

    def lconf(self, name, **kw):
        return model_conf(name, self.MODEL, **kw)

    def test_50_sighups_under_client_load(self):
        main_addr = "@DIR@/e.sock" if self.UNIX else "127.0.0.1"
        text = conf(self.lconf("e", address=main_addr),
                    self.lconf("held", extra="max_connections = 1;"))
        d = self.daemon(text)
        e = d.listener("e")
        ino = os.lstat(e.addr).st_ino if self.UNIX else None
        # A connection opened before the reloads...
        held = d.connect("held")
        self.assertEqual(exchange(held, b"held 0\n"), b"held 0\n")
        loops = [ClientLoop(e.family, e.addr) for _ in range(LOOPS)]
        for lp in loops:
            lp.start()
        try:
            wait_for(lambda: all(lp.count() > 0 for lp in loops), 10,
                     what="client loops")
            for k in range(1, RELOADS + 1):
                n = sum(lp.count() for lp in loops)
                lines = d.reload()
                st = status_lines(lines)
                self.assertTrue(st and "reloaded" in st[-1],
                                "reload %d: %r" % (k, lines))
                # Connections go on between two reloads.
                wait_for(lambda: sum(lp.count() for lp in loops) > n + 1,
                         10, what="connections after reload %d" % k)
                if k % 10 == 0:
                    # ...keeps talking after them.
                    p = b"held %d\n" % k
                    self.assertEqual(exchange(held, p), p)
        finally:
            for lp in loops:
                lp.end()
        for lp in loops:
            self.assertFalse(lp.thread.is_alive(), "client loop still runs")
        failures = [f for lp in loops for f in lp.failures]
        ok = sum(lp.ok for lp in loops)
        self.assertEqual(failures, [], "%d good, %d failed"
                         % (ok, len(failures)))
        self.assertGreaterEqual(ok, 2 * RELOADS)

        # Clients queued in the backlog while the daemon cannot accept
        # (stopped), with a SIGHUP pending: all served across the swap.
        self.addCleanup(d.signal, signal.SIGCONT)
        d.signal(signal.SIGSTOP)
        wait_for(lambda: (proc_stat(d.pid) or ["?"])[0] == "T", 5,
                 what="daemon stopped")
        burst = []
        for i in range(10):
            s = d.connect("e")
            send_all(s, b"burst %d\n" % i)
            s.shutdown(socket.SHUT_WR)
            burst.append(s)
        mark = len(d.notify_lines())
        d.signal(signal.SIGHUP)
        d.signal(signal.SIGCONT)
        d.wait_reloaded(mark)
        for i, s in enumerate(burst):
            self.assertEqual(recv_until_eof(s), b"burst %d\n" % i,
                             "queued client %d" % i)
            s.close()

        # A client queued in the backlog while the one slot of "held" is
        # taken, across a reload: served, and the old connection too.
        queued = d.connect("held")
        send_all(queued, b"queued\n")
        d.reload()
        self.assertEqual(exchange(held, b"held end\n"), b"held end\n")
        self.assertEqual(finish(held), b"")
        self.assertEqual(recv_exactly(queued, 7), b"queued\n")
        self.assertEqual(finish(queued), b"")

        # The socket was never rebound: one "listening on", then kept.
        log = d.log()
        self.assertEqual(len(re.findall(r"listener=e: listening on ", log)),
                         1)
        kept = re.findall(r"listener=e: keeps its socket (\S+) ", log)
        self.assertEqual(len(kept), RELOADS + 2)
        self.assertEqual(set(kept), {e.text})
        if self.UNIX:
            self.assertEqual(os.lstat(e.addr).st_ino, ino)
        self.assertEqual(d.echo_once("e", b"last\n"), b"last\n")
        self.assertStopsCleanly(d)
        if self.UNIX:
            self.assertFalse(os.path.lexists(e.addr))

    def test_add_remove_move_and_change_handler(self):
        move_to = "127.0.0.2" if HAVE_127_0_0_2 else "@DIR@/moved.sock"
        old = conf(self.lconf("keep"),
                   self.lconf("gone"),
                   self.lconf("move"),
                   self.lconf("hand"),
                   self.lconf("ukeep", address="@DIR@/keep.sock"),
                   self.lconf("ugone", address="@DIR@/gone.sock"))
        new = conf(self.lconf("keep"),
                   self.lconf("move", address=move_to),
                   self.lconf("hand", handler="daytime"),
                   self.lconf("ukeep", address="@DIR@/keep.sock"),
                   # Of another type than "gone": a new listener on the
                   # address of a removed one would take its socket over
                   # (reload.c matches by name, then by address, and with
                   # port = 0 every 127.0.0.1 listener has one address).
                   self.lconf("added", type="dgram"),
                   self.lconf("uadded", address="@DIR@/added.sock"))
        d = self.daemon(old)
        keep, gone, move, hand = (d.listener(n) for n in
                                  ("keep", "gone", "move", "hand"))
        keep_sock, gone_sock = d.path("keep.sock"), d.path("gone.sock")
        keep_ino = os.lstat(keep_sock).st_ino
        # Requests in progress on the listener to remove and on the one
        # whose handler changes.
        g = d.connect("gone")
        self.assertEqual(exchange(g, b"gone 1\n"), b"gone 1\n")
        h = d.connect("hand")
        self.assertEqual(exchange(h, b"hand 1\n"), b"hand 1\n")

        lines = d.reload(new)
        self.assertTrue(any("reloaded" in s for s in status_lines(lines)),
                        lines)

        # Added: bound and answering.
        self.assertEqual(d.echo_once("added", b"new\n"), b"new\n")
        self.assertEqual(d.echo_once("uadded", b"new u\n"), b"new u\n")
        # Removed: refuses new connections...
        wait_for(lambda: refused(gone.family, gone.addr), 5,
                 what="removed listener refusing")
        # ...while its request in progress goes on until it closes.
        for i in range(2, 5):
            p = b"gone %d\n" % i
            self.assertEqual(exchange(g, p), p)
        self.assertEqual(finish(g), b"")
        # Moved: the new address answers, the old one refuses.
        moved = d.listener("move")
        self.assertNotEqual(moved.addr, move.addr)
        self.assertEqual(d.echo_once("move", b"moved\n"), b"moved\n")
        wait_for(lambda: refused(move.family, move.addr), 5,
                 what="old address of the moved listener refusing")
        # Another handler on the same socket: new connections get it,
        # while the old connection keeps the old one (under sync, one
        # request at a time, the new one waits for the old one to end).
        s = d.connect("hand")
        self.assertEqual(exchange(h, b"hand 2\n"), b"hand 2\n")
        if self.MODEL != "sync":
            line = recv_until_eof(s)
            self.assertEqual(exchange(h, b"hand 3\n"), b"hand 3\n")
            self.assertEqual(finish(h), b"")
        else:
            self.assertEqual(finish(h), b"")
            line = recv_until_eof(s)
        s.close()
        self.assertRegex(line, rb"^[^\r\n]+\r\n$", "not a daytime line")
        self.assertEqual(d.listener("hand").addr, hand.addr)
        # Kept: the same port, the same unix socket file.
        self.assertEqual(d.listener("keep").addr, keep.addr)
        self.assertEqual(d.echo_once("keep", b"kept\n"), b"kept\n")
        self.assertEqual(os.lstat(keep_sock).st_ino, keep_ino)
        self.assertEqual(d.echo_once("ukeep", b"kept u\n"), b"kept u\n")
        # The removed unix listener's file is gone.
        wait_for(lambda: not os.path.lexists(gone_sock), 5,
                 what="removed listener's socket file removed")
        # Once its last request ended, the old configuration is freed.
        d.wait_log(r"configuration before reload \S+ is released")

        # A second reload that keeps everything keeps the files too.
        d.reload()
        self.assertEqual(os.lstat(keep_sock).st_ino, keep_ino)
        self.assertEqual(d.echo_once("ukeep", b"again\n"), b"again\n")
        self.assertStopsCleanly(d)
        for f in ("keep.sock", "added.sock", "moved.sock"):
            self.assertFalse(os.path.lexists(d.path(f)), f)

    def test_handler_changed_keeps_the_port(self):
        d = self.daemon(conf(self.lconf("hand")))
        port = d.listener("hand").port
        d.reload(conf(self.lconf("hand", handler="daytime")))
        self.assertEqual(d.listener("hand").port, port)
        self.assertTrue(d.log_has(r"listener=hand: keeps its socket "
                                  r"127\.0\.0\.1:%d \(.*handler daytime\)"
                                  % port))
        s = d.connect("hand")
        self.assertTrue(recv_until_eof(s).endswith(b"\r\n"))
        s.close()


class SyncReloadTests(ReloadModelCases, DaemonTestCase):
    MODEL = "sync"


class ThreadReloadTests(ReloadModelCases, DaemonTestCase):
    MODEL = "thread"


class ForkReloadTests(ReloadModelCases, DaemonTestCase):
    MODEL = "fork"


class EventReloadTests(ReloadModelCases, DaemonTestCase):
    MODEL = "event"


class EventWorkersReloadTests(ReloadModelCases, DaemonTestCase):
    MODEL = "event-workers"


class UnixReloadTests(DaemonTestCase):
    """The 50 reloads with the loaded listener on a unix socket."""

    MODEL = "event"
    UNIX = True
    lconf = ReloadModelCases.lconf
    test_50_sighups_under_client_load = \
        ReloadModelCases.test_50_sighups_under_client_load

    def test_unix_mode_change_keeps_the_file(self):
        d = self.daemon(conf(self.lconf("u", address="@DIR@/u.sock")))
        path = d.path("u.sock")
        ino = os.lstat(path).st_ino
        self.assertEqual(stat.S_IMODE(os.lstat(path).st_mode), 0o666)
        d.reload(conf(self.lconf("u", address="@DIR@/u.sock",
                                 extra='unix_mode = "0600";')))
        st = os.lstat(path)
        self.assertEqual(st.st_ino, ino)
        self.assertEqual(stat.S_IMODE(st.st_mode), 0o600)
        self.assertEqual(d.echo_once("u", b"mode\n"), b"mode\n")
        self.assertStopsCleanly(d)
        self.assertFalse(os.path.lexists(path))


class ReloadLimitTests(DaemonTestCase):

    def test_listener_limit_holds_across_reload(self):
        # A sync listener serves one request at a time, and max_connections
        # caps a listener's requests in progress: a request begun before
        # a reload still counts after it, so a new client waits.
        for model in MODELS:
            with self.subTest(model=model):
                extra = "" if model == "sync" else "max_connections = 1;"
                d = self.daemon(conf(model_conf("lim", model, extra=extra)))
                a = d.connect("lim")
                self.assertEqual(exchange(a, b"a\n"), b"a\n")
                d.reload()
                b = d.connect("lim")
                send_all(b, b"b\n")
                early = not nothing_arrives(b, QUIET)
                self.assertEqual(exchange(a, b"a2\n"), b"a2\n")
                self.assertEqual(finish(a), b"")
                self.assertEqual(recv_exactly(b, 2), b"b\n")
                self.assertEqual(finish(b), b"")
                self.assertFalse(early, "a second request ran beside the "
                                 "one begun before the reload")
                d.close()


# ---------------------------------------------------------------------------
# 3. Invalid reloads.


class InvalidReloadTests(DaemonTestCase):
    """Each invalid configuration is refused as a whole: the old listeners
    answer, a connection in progress goes on, what the new configuration
    had bound is closed again, the log names FILE:LINE, and a valid
    reload afterwards works."""

    def base(self, *extra):
        # "hold" carries the connection in progress (a sync listener
        # serves one at a time: a and u stay free for new clients).
        return conf(listener_conf("a"),
                    listener_conf("u", address="@DIR@/u.sock"),
                    listener_conf("hold"), *extra)

    def start(self, *extra):
        d = self.daemon(self.base(*extra))
        c = d.connect("hold")
        self.assertEqual(exchange(c, b"before\n"), b"before\n")
        return d, c

    def refused_reload(self, d, text, pattern):
        """Reloads text, which must fail: STATUS= says so and the log
        matches pattern (FILE:LINE: ...)."""
        lines = d.reload(text)
        st = status_lines(lines[lines.index("READY=1"):])
        self.assertTrue(st and "reload failed" in st[0], lines)
        d.wait_log(pattern)

    def still_serving(self, d, c, tag):
        self.assertEqual(d.echo_once("a", tag + b"\n"), tag + b"\n")
        self.assertEqual(d.echo_once("u", tag + b"\n"), tag + b"\n")
        self.assertEqual(exchange(c, tag + b"\n"), tag + b"\n")
        self.assertTrue(os.path.exists(d.path("u.sock")))

    def valid_reload_works(self, d, c):
        lines = d.reload(self.base(listener_conf("later")))
        st = status_lines(lines[lines.index("READY=1"):])
        self.assertTrue(st and "reloaded" in st[0], lines)
        self.assertEqual(d.echo_once("later", b"later\n"), b"later\n")
        self.still_serving(d, c, b"after")
        self.assertEqual(finish(c), b"")
        self.assertStopsCleanly(d)

    def test_syntax_error(self):
        d, c = self.start()
        text = d.expand(self.base()) + "oops = { ;\n"
        line = conf_line(text, "oops")
        self.refused_reload(d, text, r"%s:%d: " % (re.escape(d.conf_path),
                                                   line))
        self.still_serving(d, c, b"syntax")
        self.valid_reload_works(d, c)

    def test_include_of_a_directory(self):
        # libconfig's scanner exits the process on a directory: the
        # daemon must check first, and keep serving.
        d, c = self.start()
        text = "@include \"\"\n" + d.expand(self.base())
        self.refused_reload(d, text, r"%s:1: @include \"\": cannot read "
                            r".*: Is a directory" % re.escape(d.conf_path))
        self.still_serving(d, c, b"include")
        self.valid_reload_works(d, c)

    def test_unknown_handler(self):
        d, c = self.start()
        text = d.expand(self.base(listener_conf("bad",
                                                handler="nosuchhandler")))
        line = conf_line(text, '"bad"')
        self.refused_reload(d, text, r"%s:%d: .*nosuchhandler"
                            % (re.escape(d.conf_path), line))
        self.assertFalse(d.log_has(r"listener=bad: listening"))
        self.still_serving(d, c, b"handler")
        self.valid_reload_works(d, c)

    def test_port_taken_by_another_process(self):
        d, c = self.start()
        blocker = socket.socket()
        self.addCleanup(blocker.close)
        blocker.bind(("127.0.0.1", 0))
        blocker.listen(1)
        port = blocker.getsockname()[1]
        # Two new listeners bound before the one that fails: both must be
        # closed again (and the unix file removed) by the rollback.
        text = d.expand(self.base(
            listener_conf("new_u", address="@DIR@/new.sock"),
            listener_conf("new_t"),
            listener_conf("taken", port=port,
                          extra="reuse_address = false;")))
        line = conf_line(text, '"taken"')
        self.refused_reload(d, text, r"%s:%d: listener taken: cannot bind "
                            r"127\.0\.0\.1:%d" % (re.escape(d.conf_path),
                                                  line, port))
        self.still_serving(d, c, b"port")
        self.assertFalse(os.path.lexists(d.path("new.sock")),
                         "a rolled-back listener's socket file remains")
        m = re.search(r"listener=new_t: listening on 127\.0\.0\.1:(\d+) ",
                      d.log())
        if m is not None:
            self.assertTrue(refused(socket.AF_INET,
                                    ("127.0.0.1", int(m.group(1)))),
                            "a rolled-back listener still accepts")
        self.valid_reload_works(d, c)

    def test_every_failed_reload_is_logged_as_failed(self):
        # The journal, not only STATUS=, tells the operator that the
        # reload did not take, whatever stage refused it.
        d, c = self.start()
        blocker = socket.socket()
        self.addCleanup(blocker.close)
        blocker.bind(("127.0.0.1", 0))
        blocker.listen(1)
        port = blocker.getsockname()[1]
        cases = (("syntax", self.base() + "oops = { ;\n"),
                 ("handler", self.base(listener_conf(
                     "bad", handler="nosuchhandler"))),
                 ("bind", self.base(listener_conf(
                     "taken", port=port, extra="reuse_address = false;"))))
        failed = []
        for what, text in cases:
            n = len(re.findall(r"reload failed", d.log()))
            d.reload(text)
            if len(re.findall(r"reload failed", d.log())) == n:
                failed.append(what)
        self.still_serving(d, c, b"logged")
        self.assertEqual(failed, [], "no \"reload failed\" log line after "
                         "these failed reloads; log:\n%s" % d.log())

    @skip_unless_ipv6
    def test_v6only_change_needs_a_restart(self):
        six = listener_conf("six", address="::1")
        d, c = self.start(six)
        self.assertEqual(d.echo_once("six", b"v6\n"), b"v6\n")
        text = d.expand(self.base(listener_conf(
            "six", address="::1", extra="v6only = false;")))
        line = conf_line(text, '"six"')
        self.refused_reload(d, text, r"%s:%d: listener six: .*v6only.*"
                            r"restart" % (re.escape(d.conf_path), line))
        self.still_serving(d, c, b"v6only")
        self.assertEqual(d.echo_once("six", b"v6 still\n"), b"v6 still\n")
        lines = d.reload(self.base(six, listener_conf("later")))
        st = status_lines(lines[lines.index("READY=1"):])
        self.assertTrue(st and "reloaded" in st[0], lines)
        self.assertEqual(d.echo_once("later", b"later\n"), b"later\n")
        self.assertEqual(d.echo_once("six", b"v6 after\n"), b"v6 after\n")
        self.assertEqual(finish(c), b"")
        self.assertStopsCleanly(d)


if __name__ == "__main__":
    unittest.main()
