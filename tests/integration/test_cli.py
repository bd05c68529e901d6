# SPDX-License-Identifier: ISC
"""The command line: -t on good and broken configurations, start-up with a
broken one (exit 1 before binding anything), usage errors (exit 2), -V, -h,
and -l overriding log_level."""

import os
import re
import socket
import unittest

from ssdtest import (ROOT, DaemonTestCase, conf, free_port, listener_conf,
                     run_binary)

GOOD = conf(listener_conf("e"), listener_conf("u", address="@DIR@/u.sock"))

# Three mistakes, on known lines (1-based): every one must be reported.
BROKEN = """log_level = "info";
no_such_key = 1;
listeners = (
  { name = "ok"; address = "127.0.0.1"; port = 0; handler = "echo";
    concurrency = "sync"; },
  { name = "bad"; address = "127.0.0.1"; port = 70000; handler = "echo";
    concurrency = "sync"; },
  { name = "bad2"; address = "127.0.0.1"; port = 0; handler = "echo";
    concurrency = "sync"; timeout = -1; }
);
"""
BROKEN_LINES = {2: "no_such_key", 6: "port", 9: "timeout"}


def makefile_version():
    with open(os.path.join(ROOT, "Makefile")) as f:
        m = re.search(r"(?m)^VERSION\s*\??=\s*(\S+)", f.read())
    return m.group(1) if m else None


class TestFlagTests(DaemonTestCase):

    def test_t_on_broken_config(self):
        d = self.daemon(BROKEN, start=False, conf_name="broken.conf")
        # FILE is reported as given: a relative path stays relative.
        r = run_binary(["-t", "-c", "broken.conf"], cwd=d.dir)
        self.assertEqual(r.returncode, 1, r.stderr)
        err = r.stderr.decode()
        lines = [ln for ln in err.splitlines() if ln]
        self.assertTrue(lines)
        for ln in lines:
            self.assertRegex(ln, r"^broken\.conf:\d+: \S")
        for line, word in BROKEN_LINES.items():
            self.assertRegex(err, r"(?m)^broken\.conf:%d: .*%s"
                             % (line, word))
        self.assertNotIn(b"configuration OK", r.stdout)

    def test_t_on_absolute_path(self):
        d = self.daemon(BROKEN, start=False)
        r = run_binary(["-t", "-c", d.conf_path])
        self.assertEqual(r.returncode, 1)
        self.assertRegex(r.stderr.decode(), r"(?m)^%s:2: "
                         % re.escape(d.conf_path))

    def test_t_on_syntax_error(self):
        d = self.daemon('listeners = (\n  { name = "x"; ;\n);\n',
                        start=False)
        r = run_binary(["-t", "-c", d.conf_path])
        self.assertEqual(r.returncode, 1)
        self.assertRegex(r.stderr.decode(), r"(?m)^%s:2: "
                         % re.escape(d.conf_path))

    def test_t_on_good_config(self):
        d = self.daemon(GOOD, start=False)
        r = run_binary(["-t", "-c", d.conf_path])
        self.assertEqual((r.returncode, r.stdout), (0, b"configuration OK\n"),
                         r.stderr)
        # -t binds nothing.
        self.assertFalse(os.path.lexists(d.path("u.sock")))

    def test_t_on_demo_conf(self):
        r = run_binary(["-t", "-c", "conf/demo.conf"], cwd=ROOT)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn(b"configuration OK", r.stdout)

    def test_missing_config_file(self):
        d = self.daemon(GOOD, start=False)
        missing = d.path("missing.conf")
        r = run_binary(["-t", "-c", missing])
        self.assertEqual(r.returncode, 1)
        self.assertIn(missing, r.stderr.decode())


class BadConfigStartTests(DaemonTestCase):

    def test_start_with_broken_config_exits_before_binding(self):
        port = free_port()
        text = BROKEN.replace(
            'name = "ok"; address = "127.0.0.1"; port = 0;',
            'name = "ok"; address = "127.0.0.1"; port = %d;' % port)
        text = text.replace("listeners = (", 'listeners = (\n  %s,' %
                            listener_conf("u", address="@DIR@/u.sock"))
        d = self.daemon(text, ready=False)
        self.assertEqual(d.wait_exit(), 1)
        log = d.log()
        self.assertRegex(log, r"%s:\d+: " % re.escape(d.conf_path))
        self.assertNotIn("listening on", log)
        self.assertFalse(d.has_notify("READY=1"))
        self.assertFalse(os.path.lexists(d.path("u.sock")))
        # The port of the valid listener was never taken.
        s = socket.socket()
        self.addCleanup(s.close)
        s.bind(("127.0.0.1", port))


class UsageTests(DaemonTestCase):

    def test_unknown_option(self):
        r = run_binary(["--no-such-option"])
        self.assertEqual(r.returncode, 2)
        self.assertIn(b"usage:", r.stderr)

    def test_unknown_short_option(self):
        r = run_binary(["-Z"])
        self.assertEqual(r.returncode, 2)

    def test_bad_log_level(self):
        r = run_binary(["-l", "bogus", "-t", "-c", "conf/demo.conf"])
        self.assertEqual(r.returncode, 2)
        self.assertIn(b"bogus", r.stderr)

    def test_missing_option_argument(self):
        r = run_binary(["-c"])
        self.assertEqual(r.returncode, 2)

    def test_stray_argument(self):
        r = run_binary(["-t", "-c", "conf/demo.conf", "extra"])
        self.assertEqual(r.returncode, 2)

    def test_version(self):
        for flag in ("-V", "--version"):
            r = run_binary([flag])
            self.assertEqual(r.returncode, 0)
            out = r.stdout.decode()
            self.assertRegex(out, r"^sockserverd \d+\.\d+\.\d+")
            v = makefile_version()
            if v:
                self.assertIn("sockserverd %s" % v, out)

    def test_help(self):
        r = run_binary(["-h"])
        self.assertEqual(r.returncode, 0)
        self.assertTrue(r.stdout.startswith(b"usage: sockserverd"))


class LogLevelTests(DaemonTestCase):

    def test_l_overrides_log_level(self):
        text = 'log_level = "debug";\n' + conf(
            listener_conf("u", address="@DIR@/u.sock"))
        d = self.daemon(text, log_level="warning", ready=True)
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.addCleanup(s.close)
        s.settimeout(5)
        s.connect(d.path("u.sock"))
        s.close()
        self.assertEqual(d.stop(), 0)
        for ln in d.log().splitlines():
            self.assertNotRegex(ln, r": (info|debug|notice): ")

    def test_log_level_from_config(self):
        text = 'log_level = "notice";\n' + conf(listener_conf("e"))
        d = self.daemon(text, log_level=None, ready=True)
        self.assertEqual(d.stop(), 0)
        log = d.log()
        self.assertRegex(log, r"notice: ")
        self.assertNotRegex(log, r": (info|debug): ")


if __name__ == "__main__":
    unittest.main()
