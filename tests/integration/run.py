#!/usr/bin/env python3
# SPDX-License-Identifier: ISC
"""Runs sockserverd's integration tests (what `make integration` does).

usage: python3 tests/integration/run.py [-v] [-x] [FILTER ...]

Discovers tests/integration/test_*.py, runs them (only the tests whose id
contains a FILTER, or matches it as a shell pattern, when filters are
given), prints one line per test, the details of every failure, and ends
with the line "N passed, N failed" (", N skipped" when some were).  Exits 1
if any test failed or errored, else 0.

Environment: SSD_BIN the binary (default ./sockserverd of the tree);
SSD_KEEP=1 keeps each test's temporary directory; SSD_TEST_TIMEOUT bounds
one test (seconds, default 120 times SSD_TIME_SCALE; past it, daemons are
killed and the run stops); SSD_VALGRIND=1 runs the daemon under valgrind's
memcheck (a test fails on any error or definite leak) and multiplies every
wait by SSD_TIME_SCALE (default 10 then, else 1); SSD_TEST_PLUGINS the
fixture plugins (crash.so; tests needing them are skipped without it);
SSD_PLUGIN_DIR the example plugins (lower.so; default:
$SSD_TEST_PLUGINS/../../plugins, else plugins/ beside the binary, else
build/plugins).
"""

import fnmatch
import os
import sys
import threading
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))


def usage(status):
    out = sys.stdout if status == 0 else sys.stderr
    out.write("usage: python3 tests/integration/run.py [-v] [-x] "
              "[FILTER ...]\n")
    sys.exit(status)


def iter_tests(suite):
    for t in suite:
        if isinstance(t, unittest.TestSuite):
            yield from iter_tests(t)
        else:
            yield t


def matches(test, filters):
    tid = test.id()
    for f in filters:
        if any(c in f for c in "*?["):
            if fnmatch.fnmatchcase(tid, f) or \
                    fnmatch.fnmatchcase(tid, "*" + f + "*"):
                return True
        elif f in tid:
            return True
    return False


def filtered(suite, filters):
    """A copy of suite keeping its structure (class and module fixtures
    still run once) but only the tests that match."""
    out = unittest.TestSuite()
    for t in suite:
        if isinstance(t, unittest.TestSuite):
            sub = filtered(t, filters)
            if sub.countTestCases():
                out.addTest(sub)
        elif matches(t, filters):
            out.addTest(t)
    return out


def short_id(test):
    tid = test.id()
    if tid.startswith("unittest.loader._FailedTest."):
        return "import " + tid.rsplit(".", 1)[1]
    return tid


class Result(unittest.TestResult):
    """Counts per test (a test with a failed subtest is failed) and prints
    one line per test as it ends."""

    def __init__(self):
        super().__init__()
        self.status = {}        # id -> "pass" | "fail" | "skip" | "xfail"
        self.order = []
        self.details = []       # dicts: id, kind, text, test, logs
        self.skip_reason = {}
        self.started = {}
        self.current = None
        self.current_start = None

    def _set(self, test, status):
        tid = short_id(test)
        if tid not in self.order:
            self.order.append(tid)
        if self.status.get(tid) != "fail":
            self.status[tid] = status

    def _detail(self, test, kind, text):
        self.details.append({"id": short_id(test), "kind": kind,
                             "text": text, "test": test, "logs": []})

    def counts(self):
        c = {"pass": 0, "fail": 0, "skip": 0}
        for tid in self.order:
            st = self.status[tid]
            c["pass" if st == "xfail" else st] += 1
        return c

    def startTest(self, test):
        super().startTest(test)
        self.current_start = time.monotonic()
        self.current = test
        self.started[short_id(test)] = self.current_start

    def stopTest(self, test):
        super().stopTest(test)
        tid = short_id(test)
        if tid not in self.status:
            self._set(test, "pass")
        status = self.status[tid]
        dt = time.monotonic() - self.started.get(tid, time.monotonic())
        word = {"pass": "ok  ", "fail": "FAIL", "skip": "skip",
                "xfail": "xfail"}[status]
        note = ""
        if status == "skip":
            note = "  (skipped: %s)" % self.skip_reason.get(tid, "")
        print("%s %-64s %6.2fs%s" % (word, tid, dt, note), flush=True)
        # Cleanups (which stop the daemons and keep their logs) run after
        # addFailure/addError: collect the logs now.
        for d in self.details:
            if d["id"] == tid and not d["logs"]:
                d["logs"] = list(getattr(test, "ssd_logs", []))
        self.current = None

    def addSuccess(self, test):
        super().addSuccess(test)
        self._set(test, "pass")

    def addFailure(self, test, err):
        super().addFailure(test, err)
        self._set(test, "fail")
        self._detail(test, "FAIL", self._exc_info_to_string(err, test))

    def addError(self, test, err):
        super().addError(test, err)
        self._set(test, "fail")
        self._detail(test, "ERROR", self._exc_info_to_string(err, test))
        # A class or module fixture's error comes with a stand-in that
        # never starts nor stops: print its line here.
        if not isinstance(test, unittest.TestCase):
            print("FAIL %-64s" % short_id(test), flush=True)

    def addSkip(self, test, reason):
        super().addSkip(test, reason)
        self.skip_reason[short_id(test)] = reason
        self._set(test, "skip")

    def addExpectedFailure(self, test, err):
        # A known daemon bug, marked in the test: counted as passed.
        super().addExpectedFailure(test, err)
        self._set(test, "xfail")

    def addUnexpectedSuccess(self, test):
        super().addUnexpectedSuccess(test)
        self._set(test, "fail")
        self._detail(test, "UNEXPECTED SUCCESS", "marked expectedFailure "
                     "but passed: remove the marker")

    def addSubTest(self, test, subtest, err):
        super().addSubTest(test, subtest, err)
        if err is not None:
            kind = "FAIL" if issubclass(err[0], test.failureException) \
                else "ERROR"
            self._set(test, "fail")
            self._detail(test, "%s %s" % (kind, subtest._subDescription()),
                         self._exc_info_to_string(err, test))


class Watchdog:
    """Ends a run stuck in one test: kills the daemons, dumps the stacks
    and exits 1.  Tests bound their own waits; this is the last resort."""

    def __init__(self, result, limit):
        self.result, self.limit = result, limit
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self):
        while not self.stop.wait(1.0):
            start = self.result.current_start
            if self.result.current is None or start is None:
                continue
            if time.monotonic() - start > self.limit:
                import faulthandler
                sys.stderr.write("\nrun.py: %s ran for more than %gs; "
                                 "giving up\n" % (
                                     short_id(self.result.current),
                                     self.limit))
                faulthandler.dump_traceback(all_threads=True)
                try:
                    import ssdtest
                    ssdtest.kill_all()
                finally:
                    c = self.result.counts()
                    print("%d passed, %d failed" % (c["pass"],
                                                     c["fail"] + 1),
                          flush=True)
                    os._exit(1)


def main(argv):
    verbose, failfast, filters = False, False, []
    for a in argv:
        if a in ("-h", "--help"):
            usage(0)
        elif a == "-v":
            verbose = True
        elif a == "-x":
            failfast = True
        elif a.startswith("-") and a != "-":
            usage(2)
        else:
            filters.append(a)

    # The binary is resolved against the caller's directory, then the run
    # happens from the root of the tree (as `make integration` does).
    if os.environ.get("SSD_BIN"):
        os.environ["SSD_BIN"] = os.path.abspath(os.environ["SSD_BIN"])
    else:
        os.environ["SSD_BIN"] = os.path.join(ROOT, "sockserverd")
    if os.environ.get("SSD_TEST_PLUGINS"):
        os.environ["SSD_TEST_PLUGINS"] = os.path.abspath(
            os.environ["SSD_TEST_PLUGINS"])
    # The example plugins (lower.so): $(B)/plugins, found from the fixture
    # plugins' $(B)/tests/plugins or from the binary.
    sys.path.insert(0, HERE)
    import ssdtest
    os.environ["SSD_PLUGIN_DIR"] = os.path.abspath(ssdtest.plugin_dir())
    os.chdir(ROOT)
    if not os.access(os.environ["SSD_BIN"], os.X_OK):
        sys.stderr.write("run.py: %s: not an executable (run make first, "
                         "or set SSD_BIN)\n" % os.environ["SSD_BIN"])

    loader = unittest.TestLoader()
    suite = loader.discover(HERE, pattern="test_*.py", top_level_dir=HERE)
    if filters:
        suite = filtered(suite, filters)
    ntests = suite.countTestCases()
    print("sockserverd integration tests: %d tests, binary %s%s"
          % (ntests, os.environ["SSD_BIN"],
             " under valgrind" if ssdtest.VALGRIND else ""), flush=True)

    if ntests == 0 and filters:
        sys.stderr.write("run.py: no test matches %s\n" % " ".join(filters))
        print("0 passed, 0 failed")
        return 2
    result = Result()
    result.failfast = failfast
    limit = float(os.environ.get("SSD_TEST_TIMEOUT") or
                  120 * ssdtest.TIME_SCALE)
    wd = Watchdog(result, limit)
    wd.thread.start()
    t0 = time.monotonic()
    try:
        suite.run(result)
    except KeyboardInterrupt:
        sys.stderr.write("\ninterrupted\n")
        result.shouldStop = True
    finally:
        wd.stop.set()
    elapsed = time.monotonic() - t0

    for d in result.details:
        tid, kind, text, logs = d["id"], d["kind"], d["text"], d["logs"]
        print("\n" + "=" * 78)
        print("%s: %s" % (kind, tid))
        print("-" * 78)
        print(text.rstrip())
        for conf_path, log in logs:
            if not log.strip():
                continue
            lines = log.splitlines()
            if not verbose and len(lines) > 40:
                lines = ["... (%d earlier lines)" % (len(lines) - 40)] + \
                    lines[-40:]
            print("--- daemon log (%s):" % conf_path)
            print("\n".join(lines))

    counts = result.counts()
    print("\n(%.1fs)" % elapsed)
    line = "%d passed, %d failed" % (counts["pass"], counts["fail"])
    if counts["skip"]:
        line += ", %d skipped" % counts["skip"]
    print(line, flush=True)
    return 1 if counts["fail"] else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
