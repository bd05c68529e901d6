# SPDX-License-Identifier: ISC
"""The concurrency models side by side (issue 3): sync, thread, fork, event
and event with workers = 2 each get a class of their own, so that a run
names the model that failed.  Under every model: 20 simultaneous clients
(all served at once; sync serves them one by one), datagrams, the
listener's timeout (an idle client cut, a talking one not), the SIGTERM
drain, and the example plugin lower.so, one binary for all models.  Under
fork: a crashing handler leaves the daemon serving, logged, and without
zombies."""

import os
import re
import resource
import select
import signal
import socket
import subprocess
import threading
import time
import unittest

from ssdtest import (QUIET, VALGRIND, DaemonTestCase, Deadline, children_of,
                     closed_by_peer, conf, fixture_plugin, model_conf,
                     nothing_arrives, plugin_dir, recv_exactly,
                     recv_until_eof, recv_within, send_all,
                     session_members, wait_for)


def exchange(s, payload):
    """Sends payload and reads the same number of bytes back."""
    send_all(s, payload)
    return recv_exactly(s, len(payload))


def finish(s):
    """Ends a client cleanly: EOF to the server, then the server's EOF;
    returns what came before it (b"" for an echo whose replies were
    read)."""
    s.shutdown(socket.SHUT_WR)
    rest = recv_until_eof(s)
    s.close()
    return rest


def refused(addr):
    """True if a new TCP connection to addr is refused."""
    try:
        socket.create_connection(addr, timeout=5).close()
    except ConnectionRefusedError:
        return True
    return False


def local_port(s):
    return s.getsockname()[1]


def recv_through(s, end):
    """What s receives up to and including the end marker (bytes); the
    crash fixture ends its "sigs" answer with ".\n", "maps" with "\n"."""
    out = b""
    while not out.endswith(end):
        chunk = recv_within(s)
        if not chunk:
            raise AssertionError("EOF before %r: %r" % (end, out))
        out += chunk
    return out


class ModelCases:
    """The tests every model passes; MODEL is one of ssdtest.MODELS."""

    MODEL = None

    def lconf(self, name, **kw):
        return model_conf(name, self.MODEL, **kw)

    # -- simultaneous clients ---------------------------------------------

    def test_20_simultaneous_clients(self):
        d = self.daemon(conf(self.lconf("e")))
        clients = [d.connect("e") for _ in range(20)]
        payloads = [b"client %d\n" % i for i in range(20)]
        for s, p in zip(clients, payloads):
            send_all(s, p)
        if self.MODEL == "sync":
            self.one_by_one(clients, payloads)
            return
        # Every reply arrives while all 20 connections are open.
        for i, (s, p) in enumerate(zip(clients, payloads)):
            self.assertEqual(recv_exactly(s, len(p)), p, "client %d" % i)
        # And each can go on talking: none of them was queued.
        for i, s in enumerate(clients):
            self.assertEqual(exchange(s, b"again %d\n" % i),
                             b"again %d\n" % i)
        for s in clients:
            self.assertEqual(finish(s), b"")

    def one_by_one(self, clients, payloads):
        """sync: the first client is served, the second gets nothing
        until the first leaves; then each is served in turn."""
        self.assertEqual(recv_exactly(clients[0], len(payloads[0])),
                         payloads[0])
        self.assertTrue(nothing_arrives(clients[1], QUIET),
                        "the second client was served while the first "
                        "was still connected")
        for i, (s, p) in enumerate(zip(clients, payloads)):
            if i > 0:
                self.assertEqual(recv_within(s), p, "client %d" % i)
            if i + 1 < len(clients):
                self.assertTrue(nothing_arrives(clients[i + 1], 0.02),
                                "client %d served while client %d was "
                                "connected" % (i + 1, i))
            self.assertEqual(finish(s), b"")

    # -- datagrams ----------------------------------------------------------

    def test_50_datagrams_all_answered(self):
        d = self.daemon(conf(self.lconf("u", type="dgram")))
        socks = [d.dgram("u") for _ in range(5)]
        want = {c: [b"datagram %d from client %d" % (k, c)
                    for k in range(10)] for c in range(5)}
        for k in range(10):
            for c, s in enumerate(socks):
                s.send(want[c][k])
        for c, s in enumerate(socks):
            got = [recv_within(s) for _ in range(10)]
            # Concurrent models may answer out of order; each exactly once.
            self.assertEqual(sorted(got), sorted(want[c]),
                             "client %d" % c)
            self.assertTrue(nothing_arrives(s, 0.05),
                            "client %d got more than 10 replies" % c)

    # -- timeout ----------------------------------------------------------

    def test_idle_client_cut_talking_client_not(self):
        # sync serves one request per listener: give each client its own.
        names = ("idle", "talk") if self.MODEL == "sync" else ("e", "e")
        d = self.daemon(conf(*[self.lconf(n, extra="timeout = 0.5;")
                               for n in sorted(set(names))]))
        idle, talk = d.connect(names[0]), d.connect(names[1])
        self.assertEqual(exchange(idle, b"i"), b"i")
        self.assertEqual(exchange(talk, b"t"), b"t")
        t0 = time.monotonic()
        cut_at = None
        # Talk every 0.1 s for 1.5 s; between the sends, watch both.
        for i in range(15):
            tick = t0 + 0.1 * (i + 1)
            for _ in range(3):      # at most: idle's EOF, then the tick
                left = tick - time.monotonic()
                if left <= 0:
                    break
                watch = [talk] if cut_at is not None else [talk, idle]
                r, _, _ = select.select(watch, [], [], left)
                self.assertNotIn(talk, r, "the talking client got data or "
                                 "EOF between its requests (cut?)")
                if idle in r:
                    cut_at = time.monotonic() - t0
                    self.assertTrue(closed_by_peer(idle, 1),
                                    "idle client got data")
            self.assertEqual(exchange(talk, b"talk %d" % i),
                             b"talk %d" % i)
        self.assertGreaterEqual(time.monotonic() - t0, 1.5)
        self.assertIsNotNone(cut_at, "idle client not cut in 1.5 s")
        self.assertGreaterEqual(cut_at, 0.4)
        self.assertLess(cut_at, 1.2)
        d.wait_log(r"listener=%s peer=127\.0\.0\.1:%d: timed out after "
                   r"0\.5s without I/O" % (names[0], local_port(idle)))
        port = local_port(talk)
        self.assertEqual(finish(talk), b"")
        self.assertFalse(d.log_has(r"peer=127\.0\.0\.1:%d: timed out"
                                   % port), "the talking client timed out")

    # -- SIGTERM ----------------------------------------------------------

    def test_sigterm_drains_request_in_progress(self):
        d = self.daemon(conf(self.lconf("e")))
        addr = d.listener("e").addr
        a = d.connect("e")
        self.assertEqual(exchange(a, b"before\n"), b"before\n")
        d.signal(signal.SIGTERM)
        d.wait_notify("STOPPING=1")
        wait_for(lambda: refused(addr), 2,
                 what="new connections refused after SIGTERM")
        # The request in progress goes on being served...
        for i in range(3):
            self.assertEqual(exchange(a, b"during %d\n" % i),
                             b"during %d\n" % i)
        with self.assertRaises(subprocess.TimeoutExpired):
            d.proc.wait(QUIET)
        # ...and once it leaves, the daemon exits 0.
        self.assertEqual(finish(a), b"")
        self.assertEqual(d.wait_exit(5), 0)
        self.assertNoSessionLeft(d)

    def test_shutdown_timeout_cuts_idle_client(self):
        d = self.daemon(conf(self.lconf("e"),
                             globals_="shutdown_timeout = 0.5;"))
        a = d.connect("e")
        self.assertEqual(exchange(a, b"x"), b"x")
        if self.MODEL == "fork":
            wait_for(lambda: len(children_of(d.pid)) == 1,
                     what="the request's child process")
        t0 = time.monotonic()
        d.signal(signal.SIGTERM)
        self.assertEqual(d.wait_exit(10), 0)
        elapsed = time.monotonic() - t0
        self.assertGreaterEqual(elapsed, 0.4)
        self.assertLess(elapsed, 4.0, "took %.1fs" % elapsed)
        self.assertTrue(closed_by_peer(a), "idle client not cut")
        self.assertTrue(d.log_has(r"shutdown_timeout"))
        self.assertNoSessionLeft(d)

    def assertNoSessionLeft(self, d):
        """No process of the daemon's session (its fork children) is
        left, not even a zombie."""
        try:
            wait_for(lambda: not session_members(d.pid), 5,
                     what="the daemon's session to be empty")
        except AssertionError:
            self.fail("processes of the daemon's session remain: %r"
                      % session_members(d.pid))

    # -- one handler binary under every model -----------------------------

    def test_lower_plugin_runs_unchanged(self):
        so = os.path.join(plugin_dir(), "lower.so")
        if not os.path.exists(so):
            self.skipTest("%s not built (make integration builds it; "
                          "or set SSD_PLUGIN_DIR)" % so)
        d = self.daemon(conf(self.lconf("l", handler=so)))
        s = d.connect("l")
        for line in (b"Hello WORLD\n", b"MiXeD 123 CaSe\r\n", b"EXIT\n"):
            self.assertEqual(exchange(s, line), line.lower())
        send_all(s, b"exit\n")
        self.assertTrue(closed_by_peer(s), "\"exit\" did not end it")
        d.wait_log(r"listener=l peer=127\.0\.0\.1:%d: done"
                   % local_port(s))
        # The listener serves the next client.
        s1 = d.connect("l")
        self.assertEqual(exchange(s1, b"ONE\n"), b"one\n")
        s1.close()


class SyncModelTests(ModelCases, DaemonTestCase):
    MODEL = "sync"


def stack_guards(pid):
    """The daemon's one-page inaccessible anonymous mappings: the guard
    page below each thread stack, glibc's or the thread model's (the
    stack's own size varies: 256 KiB, or 2 MiB under ThreadSanitizer,
    whose runtime maps other 2 MiB blocks too)."""
    n = 0
    with open("/proc/%d/maps" % pid) as f:
        for line in f:
            fields = line.split()
            lo, hi = (int(x, 16) for x in fields[0].split("-"))
            if hi - lo == 4096 and fields[1] == "---p" and len(fields) == 5:
                n += 1
    return n


def malloc_arenas(pid):
    """glibc's malloc arenas besides the main one, in the daemon: each a
    64 MiB reservation, the unused part of it inaccessible."""
    n = 0
    with open("/proc/%d/maps" % pid) as f:
        for line in f:
            fields = line.split()
            lo, hi = (int(x, 16) for x in fields[0].split("-"))
            if (32 << 20 <= hi - lo <= 64 << 20 and fields[1] == "---p" and
                    len(fields) == 5):
                n += 1
    return n


class ThreadModelTests(ModelCases, DaemonTestCase):
    MODEL = "thread"

    def test_malloc_arenas_one_per_cpu(self):
        # Each thread that allocates gets an arena of its own, up to 8
        # per CPU by glibc's default; every later fork copies them all.
        so = fixture_plugin("crash")
        if so is None:
            self.skipTest("SSD_TEST_PLUGINS is not set")
        if "/san-" in os.environ.get("SSD_BIN", ""):
            self.skipTest("a sanitizer's malloc has no glibc arenas")
        d = self.daemon(conf(self.lconf("c", handler=so)))
        before = malloc_arenas(d.pid)
        clients = [d.connect("c") for _ in range(30)]
        for s in clients:       # fopen(3) in 30 threads at once: malloc
            send_all(s, b"sigs\n")
        for s in clients:
            recv_through(s, b".\n")
        self.assertLessEqual(malloc_arenas(d.pid) - before,
                             max(2, os.cpu_count()) - 1)
        for s in clients:
            s.close()

    def test_ended_threads_stacks_are_not_kept(self):
        # glibc keeps up to 40 MiB of ended threads' stacks mapped (160
        # of these), and every later fork(2) copies their mappings; the
        # daemon keeps 16 for the next threads and unmaps the others.
        d = self.daemon(conf(self.lconf("e", handler="echo")))
        before = stack_guards(d.pid)
        clients = [d.connect("e") for _ in range(60)]
        for i, s in enumerate(clients):
            self.assertEqual(exchange(s, b"%d\n" % i), b"%d\n" % i)
        wait_for(lambda: stack_guards(d.pid) >= before + 60, 10,
                 what="60 threads running")
        for s in clients:
            self.assertEqual(finish(s), b"")
        # 16, and a sanitizer's own thread or two.
        wait_for(lambda: stack_guards(d.pid) <= before + 18, 10,
                 what="at most 16 stacks kept")
        # And they serve the next threads.
        s = d.connect("e")
        self.assertEqual(exchange(s, b"again\n"), b"again\n")
        self.assertEqual(finish(s), b"")


class EventModelTests(ModelCases, DaemonTestCase):
    MODEL = "event"


class EventWorkersModelTests(ModelCases, DaemonTestCase):
    MODEL = "event-workers"


CRASH_RE = re.compile(r"listener=c peer=127\.0\.0\.1:(\d+): handler process "
                      r"\d+ killed by signal (\d+) \(([^)]*)\)(.*)")


class ForkModelTests(ModelCases, DaemonTestCase):
    MODEL = "fork"

    @unittest.skipIf(VALGRIND, "valgrind catches every signal itself: "
                     "/proc shows its dispositions, not the daemon's")
    def test_child_has_default_signal_dispositions(self):
        # The daemon blocks SIGTERM, SIGHUP, SIGINT, SIGCHLD (libev reads
        # them from a signalfd) and ignores SIGPIPE; the child that runs
        # a request does none of that.
        so = fixture_plugin("crash")
        if so is None:
            self.skipTest("SSD_TEST_PLUGINS is not set")
        d = self.daemon(conf(self.lconf("c", handler=so)))
        status = "/proc/%d/status" % d.pid
        with open(status) as f:
            mine = f.read()
        self.assertNotRegex(mine, r"SigIgn:\s*0+\n", "the daemon ignores "
                            "nothing: the test proves little")
        self.assertNotRegex(mine, r"SigBlk:\s*0+\n", "the daemon blocks "
                            "nothing: the test proves little")
        s = d.connect("c")
        send_all(s, b"sigs\n")
        text = recv_through(s, b".\n").decode()
        s.close()
        # glibc keeps signals 32 and 33 to itself (sigaction(2) refuses
        # them); ThreadSanitizer's runtime catches 33.
        libc = (1 << 31) | (1 << 32)
        for field in ("SigBlk", "SigIgn", "SigCgt"):
            m = re.search(r"%s:\s*([0-9a-f]+)" % field, text)
            self.assertIsNotNone(m, text)
            self.assertEqual(int(m.group(1), 16) & ~libc, 0, text)

    def test_child_copies_no_other_request_stacks(self):
        # Beside 60 requests parked under event, a fork child gets
        # neither their coroutine stacks nor those the model keeps for
        # later (each 2 mappings: stack and guard).  (A running thread's
        # stack cannot be left out: glibc's fork handler in the child
        # unlinks the other threads' descriptors, which live on their
        # stacks; only the thread model's unused ones are.)
        so = fixture_plugin("crash")
        if so is None:
            self.skipTest("SSD_TEST_PLUGINS is not set")
        if "san-thread" in os.environ.get("SSD_BIN", ""):
            self.skipTest("stacks are copied under ThreadSanitizer")
        d = self.daemon(conf(self.lconf("c", handler=so),
                             model_conf("ev", "event", handler=so),
                             model_conf("th", "thread", handler=so)))
        held = []
        for name in ("ev",):
            for i in range(60):
                s = d.connect(name)
                self.assertEqual(exchange(s, b"%d\n" % i), b"%d\n" % i)
                held.append(s)
        with open("/proc/%d/maps" % d.pid) as f:
            parent = len(f.readlines())
        s = d.connect("c")
        send_all(s, b"maps\n")
        child = int(recv_through(s, b"\n"))
        s.close()
        self.assertLess(child, parent - 100, "the child has %d mappings, "
                        "its parent %d" % (child, parent))
        # And a request's thread or coroutine that forks still has its
        # own stack in the child: exec under both.
        for model in ("event", "thread"):
            d2 = self.daemon(conf(model_conf(
                "x", model, handler="exec",
                extra='options = { program = "/bin/echo"; '
                      'args = [ "echo", "forked" ]; };')))
            s = d2.connect("x")
            self.assertEqual(recv_until_eof(s), b"forked\n", model)
            s.close()
        for s in held:
            s.close()

    def test_crashing_handler_500_requests(self):
        so = fixture_plugin("crash")
        if so is None:
            self.skipTest("SSD_TEST_PLUGINS is not set: the crash.so "
                          "fixture is needed (make integration builds it)")
        self.assertTrue(os.path.exists(so), "%s is missing" % so)
        # No core files: RLIMIT_CORE 0 for the daemon and its children.
        d = self.daemon(conf(self.lconf("c", handler=so)),
                        rlimits={resource.RLIMIT_CORE: (0, 0)})
        crashes = {}            # client port -> expected signal
        errors = []
        lock = threading.Lock()

        def client(i):
            s = d.connect("c")
            try:
                port = local_port(s)
                if i % 10 == 9:     # every 10th: segv and abort in turn
                    kind = "segv" if i // 10 % 2 == 0 else "abort"
                    with lock:
                        crashes[port] = (signal.SIGSEGV if kind == "segv"
                                         else signal.SIGABRT)
                    send_all(s, kind.encode() + b"\n")
                    if not closed_by_peer(s, 10):
                        raise AssertionError("request %d (%s) answered"
                                             % (i, kind))
                else:
                    p = b"request %d\n" % i
                    if exchange(s, p) != p:
                        raise AssertionError("request %d: bad echo" % i)
                    if finish(s) != b"":
                        raise AssertionError("request %d: extra data" % i)
            finally:
                s.close()

        def worker(w):
            dl = Deadline(60)
            try:
                for i in range(w * 50, w * 50 + 50):
                    if dl.expired():
                        raise AssertionError("worker %d out of time" % w)
                    client(i)
            except Exception as e:
                with lock:
                    errors.append("worker %d: %r" % (w, e))

        threads = [threading.Thread(target=worker, args=(w,), daemon=True)
                   for w in range(10)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(90)
        self.assertFalse(any(t.is_alive() for t in threads),
                         "clients still running")
        self.assertEqual(errors, [])
        self.assertEqual(len(crashes), 50)
        # The daemon goes on serving...
        self.assertTrue(d.running())
        s = d.connect("c")
        self.assertEqual(exchange(s, b"still here\n"), b"still here\n")
        self.assertEqual(finish(s), b"")

        # ...logged each crash with its signal, listener and peer...
        def logged():
            found = {int(m.group(1)): m for m in
                     (CRASH_RE.search(ln) for ln in d.log().splitlines())
                     if m is not None}
            return found if len(found) >= len(crashes) else None
        found = wait_for(logged, 10, what="50 crashes logged")
        self.assertEqual(set(found), set(crashes))
        for port, sig in crashes.items():
            m = found[port]
            self.assertEqual(int(m.group(2)), sig, m.group(0))
            self.assertNotIn("core dumped", m.group(4))
        # ...wrote no core file, and reaped every child: no zombie, and
        # no child at all once the requests are over.
        self.assertEqual([f for f in os.listdir(d.dir)
                          if f.startswith("core")], [])
        try:
            wait_for(lambda: not children_of(d.pid), 10,
                     what="every child of the daemon reaped")
        except AssertionError:
            self.fail("children of the daemon remain: %r"
                      % children_of(d.pid))
        self.assertEqual(d.stop(), 0)


if __name__ == "__main__":
    unittest.main()
