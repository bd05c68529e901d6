# SPDX-License-Identifier: ISC
"""worker_processes (issue 11): the supervisor forks N workers that all
serve every listener; a worker that crashes (the crash plugin), is killed
with SIGKILL or whose loop is stuck (the watchdog) is replaced while the
others keep serving; 50 SIGHUPs under load lose no client; SIGTERM drains
every worker; counters are summed over the workers and max_connections
holds across them (and comes back when a worker dies with slots taken),
and so do max_per_source and rate_per_source (one table in shared memory,
kept across reloads, its counts given back when a worker dies).

Worker PIDs are found as the daemon's children in /proc; which worker
serves a connection is read from the debug log ("sockserverd[PID]: ...
peer=127.0.0.1:PORT: start")."""

import os
import re
import resource
import signal
import socket
import unittest

from ssdtest import (IO_TIMEOUT, MAX_ITER, QUIET, TIME_SCALE, Deadline,
                     DaemonTestCase,
                     children_of, closed_by_peer, conf, connect_to, exchange,
                     fixture_plugin, listener_conf, nothing_arrives,
                     recv_until_eof, send_all, wait_for)
from test_reload import ClientLoop

RELOADS = 50
LOOPS = 3


def workers_conf(n, *listeners, extra="", shutdown=1.0):
    # A connection a test leaves open holds its worker's drain this long.
    return conf(*listeners, globals_="worker_processes = %d;\n"
                "shutdown_timeout = %g;\n%s" % (n, shutdown, extra))


def ev(name, handler="echo", extra=""):
    return listener_conf(name, handler=handler, concurrency="event",
                         extra=extra)


def live_children(pid):
    return sorted(p for p, st in children_of(pid).items() if st != "Z")


class WorkerTestCase(DaemonTestCase):

    def workers(self, d, n):
        """Waits for n live workers serving (each logged that it serves);
        returns their PIDs."""
        wait_for(lambda: len(live_children(d.pid)) == n, 10,
                 what="%d workers" % n)
        pids = live_children(d.pid)
        for p in pids:
            d.wait_log(r"sockserverd\[%d\]: info: worker \d+ \(pid %d\) "
                       r"serving" % (p, p), 10)
        return pids

    def served_by(self, d, sock):
        """The PID of the worker that started sock's request."""
        port = sock.getsockname()[1]
        pat = re.compile(r"sockserverd\[(\d+)\]: debug: listener=\S+ "
                         r"peer=127\.0\.0\.1:%d: start" % port)
        found = []

        def seen():
            m = pat.search(d.log())
            if m:
                found.append(int(m.group(1)))
            return bool(m)
        wait_for(seen, IO_TIMEOUT, what="the start of %d" % port)
        return found[0]

    def one_per_worker(self, d, name, pids):
        """A connection (one echo) served by each worker of pids.  The
        kernel wakes the workers in an order of its own, often the same
        one first every time, so each worker, once it has its connection,
        is stopped (SIGSTOP) while the next one connects: only a worker
        still running can accept it.  Then all continue."""
        by = {}
        try:
            for i in range(len(pids)):
                s = d.connect(name)
                self.assertEqual(exchange(s, b"hi %d\n" % i),
                                 b"hi %d\n" % i)
                w = self.served_by(d, s)
                self.assertNotIn(w, by, "served by a stopped worker")
                by[w] = s
                if i + 1 < len(pids):
                    os.kill(w, signal.SIGSTOP)
                    wait_for(lambda: children_of(d.pid).get(w) == "T", 10,
                             what="worker %d stopped" % w)
        finally:
            for w in by:
                resume(w)
        self.assertEqual(sorted(by), sorted(pids), "a connection per worker")
        return by

    def metric(self, d, name):
        s = d.connect("st")
        send_all(s, b"GET /metrics HTTP/1.0\r\n\r\n")
        text = recv_until_eof(s).decode()
        s.close()
        m = re.search(r"^%s (\d+)$" % re.escape(name), text, re.M)
        return int(m.group(1)) if m else None, text


class SupervisorTests(WorkerTestCase):

    def test_n_workers_serve_and_stop(self):
        d = self.daemon(workers_conf(3, ev("e"), ev("st", "status")))
        pids = self.workers(d, 3)
        self.assertNotIn(d.pid, pids)
        for i in range(10):
            self.assertEcho(d, "e", b"x%d\n" % i)
        self.assertTrue(d.log_has(r"started: 2 listeners, 3 worker "
                                  r"processes"))
        # Only the supervisor talks to systemd.
        self.assertEqual(sum(m.split("\n").count("READY=1")
                             for m in d.messages), 1)
        self.assertStopsCleanly(d)
        self.assertEqual(live_children(d.pid), [])

    def test_counters_summed_over_workers(self):
        d = self.daemon(workers_conf(2, ev("e"), ev("st", "status")))
        pids = self.workers(d, 2)
        by = self.one_per_worker(d, "e", pids)
        for s in by.values():
            s.close()
        wait_for(lambda: re.search(r'sockserverd_requests_in_progress'
                                   r'\{listener="e"\} 0\n',
                                   self.metric(d, "x")[1]) is not None,
                 what="requests ended")
        n, text = self.metric(d, "x")
        m = re.search(r'^sockserverd_requests_total\{listener="e"\} (\d+)$',
                      text, re.M)
        started = len(re.findall(r"listener=e peer=\S+: start", d.log()))
        self.assertEqual(int(m.group(1)), started, text)
        self.assertGreaterEqual(started, 2)
        self.assertRegex(text, r"sockserverd_worker_restarts_total 0\n")
        self.assertRegex(text, r"sockserverd_workers 2\n")
        self.assertEqual(len(re.findall(
            r'^sockserverd_worker_requests_in_progress\{worker="\d+"\} \d+$',
            text, re.M)), 2, text)
        self.assertEqual(len(re.findall(
            r'^sockserverd_worker_loop_lag_seconds\{worker="\d+"\} \S+$',
            text, re.M)), 2, text)
        s = d.connect("st")
        s.shutdown(socket.SHUT_WR)
        plain = recv_until_eof(s).decode()
        self.assertIn("workers: 2 running, 0 restarts", plain)

    def test_kill_9_worker_is_replaced(self):
        d = self.daemon(workers_conf(2, ev("e"), ev("st", "status")))
        pids = self.workers(d, 2)
        by = self.one_per_worker(d, "e", pids)
        victim, other = pids
        os.kill(victim, signal.SIGKILL)
        d.wait_log(r"worker \d+ \(pid %d\) killed by signal 9 \(Killed\); "
                   r"replaced" % victim, 10)
        # The other worker's client never noticed.
        self.assertEqual(exchange(by[other], b"still\n"), b"still\n")
        now = self.workers(d, 2)
        self.assertIn(other, now)
        self.assertNotIn(victim, now)
        for i in range(10):
            self.assertEcho(d, "e", b"after %d\n" % i)
        self.assertEqual(self.metric(d, "sockserverd_worker_restarts_total")
                         [0], 1)
        self.assertStopsCleanly(d)


@unittest.skipIf(fixture_plugin("crash") is None, "SSD_TEST_PLUGINS unset")
class CrashTests(WorkerTestCase):

    def test_crashing_handler_takes_down_one_worker(self):
        text = workers_conf(2, ev("c", fixture_plugin("crash")),
                            ev("st", "status"))
        d = self.daemon(text, rlimits={resource.RLIMIT_CORE: (0, 0)})
        pids = self.workers(d, 2)
        by = self.one_per_worker(d, "c", pids)
        victim, other = pids
        # abort(3): a crash that the sanitizers let through unreported.
        send_all(by[victim], b"abort\n")
        d.wait_log(r"worker \d+ \(pid %d\) killed by signal 6 "
                   r"\(Aborted\)" % victim, 10)
        self.assertEqual(exchange(by[other], b"alive\n"), b"alive\n")
        now = self.workers(d, 2)
        self.assertNotIn(victim, now)
        # Every listener keeps accepting, the replacement included.
        by2 = self.one_per_worker(d, "c", now)
        for w, s in by2.items():
            self.assertEqual(exchange(s, b"w%d\n" % w), b"w%d\n" % w)
        self.assertEqual(self.metric(d, "sockserverd_worker_restarts_total")
                         [0], 1)
        self.assertStopsCleanly(d)

    def test_dead_worker_gives_back_its_slots(self):
        # max_connections = 2 across both workers: a crash with a slot
        # taken must not leave it taken.
        text = workers_conf(2, ev("c", fixture_plugin("crash")),
                            ev("st", "status"),
                            extra="max_connections = 3;")
        d = self.daemon(text, rlimits={resource.RLIMIT_CORE: (0, 0)})
        pids = self.workers(d, 2)
        by = self.one_per_worker(d, "c", pids)    # 2 slots taken
        # The cap holds across the workers: a third one is served, a
        # fourth waits in the backlog.
        third = d.connect("c")
        self.assertEqual(exchange(third, b"3\n"), b"3\n")
        fourth = d.connect("c")
        send_all(fourth, b"4\n")
        self.assertTrue(nothing_arrives(fourth), "served beyond the cap")
        victim = self.served_by(d, third)
        send_all(third, b"abort\n")
        d.wait_log(r"\(pid %d\) killed by signal 6" % victim, 10)
        # Its slots are back: the waiting client is served.
        self.assertEqual(recv_exactly_line(fourth), b"4\n")
        for s in list(by.values()) + [fourth]:
            s.close()
        self.assertStopsCleanly(d)


def recv_exactly_line(sock):
    sock.settimeout(IO_TIMEOUT)
    buf = b""
    for _ in range(MAX_ITER):
        if buf.endswith(b"\n"):
            break
        chunk = sock.recv(4096)
        if not chunk:
            break
        buf += chunk
    return buf


class LimitTests(WorkerTestCase):

    def test_listener_max_connections_across_workers(self):
        text = workers_conf(3, ev("e", extra="max_connections = 2;"),
                            ev("st", "status"))
        d = self.daemon(text)
        self.workers(d, 3)
        a, b = d.connect("e"), d.connect("e")
        self.assertEqual(exchange(a, b"a\n"), b"a\n")
        self.assertEqual(exchange(b, b"b\n"), b"b\n")
        c = d.connect("e")
        send_all(c, b"c\n")
        self.assertTrue(nothing_arrives(c), "a third served beyond 2")
        a.close()
        self.assertEqual(recv_exactly_line(c), b"c\n")
        # Across a reload too: the socket and its count are kept.
        d.reload()
        e = d.connect("e")
        send_all(e, b"e\n")
        self.assertTrue(nothing_arrives(e), "served beyond 2 after reload")
        b.close()
        self.assertEqual(recv_exactly_line(e), b"e\n")
        self.assertStopsCleanly(d)


def served_now(d, name):
    """Whether a new connection is served (not refused at once)."""
    s = d.connect(name)
    try:
        return exchange(s, b"again\n") == b"again\n"
    except (OSError, AssertionError):     # refused: reset, or EOF
        return False
    finally:
        s.close()


def resume(pid):
    try:
        os.kill(pid, signal.SIGCONT)
    except ProcessLookupError:
        pass


class PerSourceTests(WorkerTestCase):
    """One per-source table for all the workers.  To be sure that the
    worker that did not count a client is the one that judges the next,
    the other worker is stopped (SIGSTOP): only the running one accepts."""

    def refused(self, d, name):
        """A connection refused at once (the refusal lines in the log are
        once a second: not evidence)."""
        s = d.connect(name)
        self.assertTrue(closed_by_peer(s), "served beyond the rule")
        s.close()

    def served(self, d, name, payload=b"x\n"):
        """A connection served, and the worker that served it."""
        s = d.connect(name)
        self.assertEqual(exchange(s, payload), payload)
        return s, self.served_by(d, s)

    def stopped(self, pid):
        os.kill(pid, signal.SIGSTOP)
        self.addCleanup(resume, pid)
        wait_for(lambda: children_of(self.supervisor).get(pid) == "T", 10,
                 what="worker %d stopped" % pid)

    def test_max_per_source_across_workers(self):
        d = self.daemon(workers_conf(2, ev("e", extra="max_per_source = 1;")))
        self.supervisor = d.pid
        pids = self.workers(d, 2)
        self.assertEqual(len(pids), 2)
        a, first = self.served(d, "e")
        self.stopped(first)
        # The other worker never saw a: it refuses the second all the same.
        self.refused(d, "e")
        self.refused(d, "e")
        a.close()
        os.kill(first, signal.SIGCONT)

        wait_for(lambda: served_now(d, "e"), 10, what="the slot back")
        self.assertStopsCleanly(d)

    def test_rate_per_source_across_workers(self):
        d = self.daemon(workers_conf(2, ev(
            "e", extra="rate_per_source = 0.01; burst_per_source = 2;")))
        self.supervisor = d.pid
        pids = self.workers(d, 2)
        a, first = self.served(d, "e")
        a.close()
        other = [p for p in pids if p != first][0]
        self.stopped(first)
        b, by = self.served(d, "e")
        self.assertEqual(by, other)
        b.close()
        # Two tokens in all, whichever worker spent them.
        self.refused(d, "e")
        os.kill(first, signal.SIGCONT)
        self.assertStopsCleanly(d)

    def test_killed_worker_gives_back_its_counts(self):
        d = self.daemon(workers_conf(2, ev("e", extra="max_per_source = 1;")))
        self.supervisor = d.pid
        self.workers(d, 2)
        a, victim = self.served(d, "e")
        s = d.connect("e")
        self.assertTrue(closed_by_peer(s), "a second one served")
        s.close()
        os.kill(victim, signal.SIGKILL)
        d.wait_log(r"\(pid %d\) killed by signal 9" % victim, 10)
        d.wait_log(r"worker pid %d: 1 per-source counts given back"
                   % victim, 10)
        a.close()
        b, _ = self.served(d, "e", b"after\n")
        # And the count is 1 again, not 0: a second one is still refused.
        s = d.connect("e")
        self.assertTrue(closed_by_peer(s), "a second one served")
        b.close()
        self.workers(d, 2)
        self.assertStopsCleanly(d)

    def test_reload_keeps_counts_and_buckets(self):
        text = workers_conf(2, ev("e", extra="max_per_source = 1;"),
                            ev("r", extra="rate_per_source = 0.01; "
                               "burst_per_source = 2;"), shutdown=30)
        d = self.daemon(text)
        self.supervisor = d.pid
        old = self.workers(d, 2)
        for _ in range(2):
            s, _w = self.served(d, "r")
            s.close()
        a, _w = self.served(d, "e")
        d.reload(text.replace("shutdown_timeout = 30",
                              "shutdown_timeout = 29"))
        # The old workers drain (one holds a); the new ones judge.
        wait_for(lambda: len([p for p in live_children(d.pid)
                              if p not in old]) == 2, 10, what="new workers")
        new = [p for p in live_children(d.pid) if p not in old]
        for p in new:
            d.wait_log(r"sockserverd\[%d\]: info: worker \d+ \(pid %d\) "
                       r"serving" % (p, p), 10)
        # Only the new workers accept now (they have fresh state of
        # their own, but for the table).
        for p in old:
            d.wait_log(r"sockserverd\[%d\]: info: SIGTERM: stopping" % p, 10)
        self.refused(d, "r")    # the bucket was not refilled
        self.refused(d, "e")    # a is still counted
        a.close()

        wait_for(lambda: served_now(d, "e"), 10, what="the slot back")
        self.workers(d, 2)
        self.assertStopsCleanly(d)


class ReloadTests(WorkerTestCase):

    def test_50_sighups_under_load(self):
        d = self.daemon(workers_conf(2, ev("e"), ev("t", extra=""),
                                     ev("st", "status"), shutdown=60))
        self.workers(d, 2)
        e = d.listener("e")
        held = d.connect("e")
        self.assertEqual(exchange(held, b"held\n"), b"held\n")
        loops = [ClientLoop(e.family, e.addr) for _ in range(LOOPS)]
        for lp in loops:
            lp.start()
        try:
            wait_for(lambda: all(lp.count() > 0 for lp in loops), 10,
                     what="client loops")
            for k in range(1, RELOADS + 1):
                n = sum(lp.count() for lp in loops)
                lines = d.reload()
                st = [ln for ln in lines if ln.startswith("STATUS=")]
                self.assertTrue(st and "serving" in st[-1] and
                                "failed" not in st[-1],
                                "reload %d: %r" % (k, lines))
                wait_for(lambda: sum(lp.count() for lp in loops) > n + 1,
                         10, what="connections after reload %d" % k)
        finally:
            for lp in loops:
                lp.end()
        failures = [f for lp in loops for f in lp.failures]
        ok = sum(lp.ok for lp in loops)
        self.assertEqual(failures, [], "%d good, %d failed"
                         % (ok, len(failures)))
        self.assertGreaterEqual(ok, 2 * RELOADS)
        # The connection opened before the reloads was served to its end
        # by its old worker, which drains.
        self.assertEqual(exchange(held, b"end\n"), b"end\n")
        held.close()
        # The old generations' workers all end (the last had waited for
        # held); N remain.
        self.workers(d, 2)
        self.assertStopsCleanly(d)

    def test_bad_reload_keeps_workers(self):
        good = workers_conf(2, ev("e"))
        d = self.daemon(good)
        pids = self.workers(d, 2)
        lines = d.reload(good.replace("listeners", "listeners_oops"))
        self.assertTrue(any("reload failed" in ln for ln in lines), lines)
        self.assertEqual(live_children(d.pid), pids)
        self.assertEcho(d, "e")
        lines = d.reload(workers_conf(0, ev("e")))
        self.assertTrue(any("reload failed" in ln for ln in lines), lines)
        self.assertTrue(d.log_has(r"worker_processes cannot change from 2 "
                                  r"to 0 on reload"))
        self.assertEqual(live_children(d.pid), pids)
        # A bigger N on reload: N new workers.
        d.reload(workers_conf(3, ev("e")))
        self.workers(d, 3)
        self.assertEcho(d, "e")
        self.assertStopsCleanly(d)


@unittest.skipIf(fixture_plugin("crash") is None, "SSD_TEST_PLUGINS unset")
class WatchdogTests(WorkerTestCase):

    def test_stuck_worker_is_replaced_and_pings_resume(self):
        text = workers_conf(2, ev("c", fixture_plugin("crash")))
        # 2 s (a worker stopped for one_per_worker must not look stuck),
        # longer under valgrind.
        d = self.daemon(text, env={"WATCHDOG_USEC": "%d" % (2000000 *
                                                            TIME_SCALE)},
                        start=False, pid_env=("WATCHDOG_PID",))
        d.start()
        pids = self.workers(d, 2)
        by = self.one_per_worker(d, "c", pids)
        victim, other = pids
        send_all(by[victim], b"spin\n")
        d.wait_log(r"worker \d+ \(pid %d\): its loop has not run for "
                   r"[0-9.]+s \(a handler stuck\?\); killing it" % victim,
                   10 * TIME_SCALE)
        d.wait_log(r"\(pid %d\) killed by signal 9" % victim, 10 * TIME_SCALE)
        self.assertEqual(exchange(by[other], b"ok\n"), b"ok\n")
        self.workers(d, 2)
        # The pings go on once every worker beats again.
        d.read_notify()
        mark = len(d.notify_lines())
        wait_for(lambda: "WATCHDOG=1" in d.notify_lines()[mark:],
                 5 * TIME_SCALE, what="WATCHDOG=1 after the replacement")
        self.assertStopsCleanly(d)


if __name__ == "__main__":
    unittest.main()
