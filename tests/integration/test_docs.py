# SPDX-License-Identifier: ISC
"""The documentation agrees with the code.

- The SYNOPSIS of sockserverd(8), rendered, is the usage line that
  `sockserverd -h` prints (STYLE R11), and every option in it has an entry.
- The three man pages are lint-clean (mandoc -Tlint -W warning; groff -ww).
- conf/sockserverd.conf, conf/demo.conf, the examples of
  sockserverd.conf(5) and the README's configuration pass `sockserverd -t`.
- Every key of daemon/config.c's key tables has its `.It Ic KEY` entry in
  the right section of sockserverd.conf(5) and appears in the annotated
  conf/sockserverd.conf; and the page documents no key the code lacks.
- Every function of include/sockserverd.h is in sockserverd-handler(3)'s
  NAME and SYNOPSIS, and the page names no function the header lacks.
- The README's Quick start is exactly two commands.
- sockserverd(8) documents SIGHUP and every systemd variable, and says
  nothing is "not yet" there; sockserverd.conf(5) has its RELOADING AND
  PRIVILEGES section; the README has its "Running under systemd" section
  and does not list reload, socket activation or the watchdog as coming.
- systemd/sockserverd.service.in has what STYLE R12 and issue 5 ask for;
  where systemd-analyze exists, it passes `systemd-analyze verify` (with
  the tree's binary and config in its paths), and `systemd-analyze
  security --offline=true` rates it 2.0 or less.
- systemd/sockserverd.socket names (FileDescriptorName=) a listener of
  the snippets in sockserverd(8), sockserverd.conf(5) and the README,
  which pass `sockserverd -t`; it passes `systemd-analyze verify` too.

Runs alone from the repository root:
    python3 -m unittest tests/integration/test_docs.py
Environment: SSD_BIN, the binary (default ./sockserverd of the tree); its
man pages are looked for next to it (build/.../man/), then in build/man/,
and the man/*.in sources stand in when neither is up to date.
"""

import os
import re
import shutil
import subprocess
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))


def binary():
    b = os.environ.get("SSD_BIN")
    if not b:
        return os.path.join(ROOT, "sockserverd")
    if os.path.isabs(b) or os.path.exists(b):
        return os.path.abspath(b)
    return os.path.join(ROOT, b)


def man_page(name):
    """The generated page `name` (e.g. "sockserverd.8"), or its .in source
    when no generated copy is at least as new as the source; a page that
    is not generated (sockserverd-handler.3) is its source."""
    if os.path.exists(os.path.join(ROOT, "man", name)):
        return os.path.join(ROOT, "man", name)
    src = os.path.join(ROOT, "man", name + ".in")
    dirs = []
    if os.environ.get("SSD_BIN"):
        dirs.append(os.path.join(os.path.dirname(binary()), "man"))
    dirs.append(os.path.join(ROOT, "build", "man"))
    for d in dirs:
        p = os.path.join(d, name)
        if os.path.exists(p) and (not os.path.exists(src) or
                                  os.path.getmtime(p) >=
                                  os.path.getmtime(src)):
            return p
    return src


def read(*parts):
    with open(os.path.join(ROOT, *parts), encoding="utf-8") as f:
        return f.read()


def run(argv, **kw):
    return subprocess.run(argv, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, universal_newlines=True,
                          timeout=60, cwd=ROOT, **kw)


def render(page):
    """page as plain text, or None when neither mandoc nor groff is here."""
    if shutil.which("mandoc"):
        argv = ["mandoc", "-Tascii", "-O", "width=200", page]
    elif shutil.which("groff"):
        argv = ["groff", "-mdoc", "-Tascii", "-P-c", "-rLL=200n", page]
    else:
        return None
    r = run(argv, env=dict(os.environ, GROFF_NO_SGR="1"))
    if r.returncode != 0:
        raise AssertionError("%s failed: %s" % (argv[0], r.stderr))
    text = re.sub(r".\x08", "", r.stdout)           # overstrike
    return re.sub(r"\x1b\[[0-9;]*m", "", text)      # SGR, just in case


def section(text, title):
    """The body of the rendered section `title`, up to the next one."""
    m = re.search(r"^%s\n(.*?)(?=^[A-Z][A-Z ]*$|\Z)" % re.escape(title),
                  text, re.M | re.S)
    return m.group(1) if m else None


def key_table(source, table):
    m = re.search(r"\b%s\[\]\s*=\s*\{(.*?)\};" % re.escape(table), source,
                  re.S)
    if m is None:
        raise AssertionError("daemon/config.c: no %s table" % table)
    return re.findall(r'"([^"]+)"', m.group(1))


def mdoc_section(source, title):
    """The mdoc source of `.Sh title`, up to the next .Sh."""
    m = re.search(r"^\.Sh %s\n(.*?)(?=^\.Sh |\Z)" % re.escape(title),
                  source, re.M | re.S)
    return m.group(1) if m else ""


class UsageMatchesSynopsis(unittest.TestCase):

    def usage(self):
        r = run([binary(), "-h"])
        self.assertEqual(r.returncode, 0, r.stderr)
        first = r.stdout.splitlines()[0]
        self.assertTrue(first.startswith("usage: "), first)
        return first[len("usage: "):]

    def test_synopsis_is_the_usage_line(self):
        text = render(man_page("sockserverd.8"))
        if text is None:
            self.skipTest("neither mandoc nor groff is installed")
        synopsis = section(text, "SYNOPSIS")
        self.assertIsNotNone(synopsis, "no SYNOPSIS in the rendered page")
        self.assertEqual(" ".join(synopsis.split()),
                         " ".join(self.usage().split()))

    def test_every_option_has_an_entry(self):
        page = read("man", "sockserverd.8.in")
        for opt in re.findall(r"\[-(\w)", self.usage()):
            self.assertRegex(page, r"(?m)^\.It Fl %s\b" % opt,
                             "-%s has no .It Fl %s entry" % (opt, opt))
        helptext = run([binary(), "-h"]).stdout
        for long in re.findall(r"--([a-z][a-z-]*)", helptext):
            self.assertIn("Fl \\-" + long.replace("-", "\\-"), page,
                          "--%s is not in sockserverd.8" % long)


class PagesAreLintClean(unittest.TestCase):
    pages = ("sockserverd.8", "sockserverd.conf.5", "sockserverd-handler.3")

    def test_mandoc_lint(self):
        if not shutil.which("mandoc"):
            self.skipTest("mandoc is not installed")
        for name in self.pages:
            with self.subTest(page=name):
                r = run(["mandoc", "-Tlint", "-W", "warning",
                         man_page(name)])
                self.assertEqual(r.stdout + r.stderr, "")

    def test_groff_warnings(self):
        if not shutil.which("groff"):
            self.skipTest("groff is not installed")
        for name in self.pages:
            with self.subTest(page=name):
                r = run(["groff", "-mdoc", "-ww", "-z", man_page(name)])
                self.assertEqual(r.stdout + r.stderr, "")


def check_config(text):
    """`sockserverd -t` on text, as (status, stdout, stderr)."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("NOTIFY_SOCKET", "JOURNAL_STREAM")}
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "example.conf")
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
        r = run([binary(), "-t", "-c", path], env=env)
    return (r.returncode, r.stdout, r.stderr.replace(path, "FILE"))


class ShippedConfigsPass(unittest.TestCase):
    ok = (0, "configuration OK\n", "")

    def test_configs_pass_t(self):
        env = {k: v for k, v in os.environ.items()
               if k not in ("NOTIFY_SOCKET", "JOURNAL_STREAM")}
        for conf in ("conf/sockserverd.conf", "conf/demo.conf"):
            with self.subTest(conf=conf):
                r = run([binary(), "-t", "-c", conf], env=env)
                self.assertEqual((r.returncode, r.stdout, r.stderr),
                                 self.ok)

    def test_page_examples_pass_t(self):
        body = mdoc_section(read("man", "sockserverd.conf.5.in"),
                            "EXAMPLES")
        blocks = re.findall(r"(?ms)^\.Bd -literal[^\n]*\n(.*?)^\.Ed$",
                            body)
        self.assertTrue(blocks, "sockserverd.conf(5) has no examples")
        for i, block in enumerate(blocks):
            text = block.replace("\\e", "\\")
            if not re.search(r"(?m)^\s*listeners\s*=", text):
                # A fragment of global settings: give it a listener.
                text += ('\nlisteners = ( { name = "x"; address = '
                         '"127.0.0.1"; port = 9; handler = "echo"; } );\n')
            with self.subTest(example=i + 1):
                self.assertEqual(check_config(text), self.ok, text)

    def test_readme_example_passes_t(self):
        readme = read("README.md")
        m = re.search(r"(?ms)^## Configuration\n.*?^```\n(.*?)^```$",
                      readme)
        self.assertIsNotNone(m, "README.md: no example under Configuration")
        self.assertEqual(check_config(m.group(1)), self.ok, m.group(1))


class ReadmeQuickStart(unittest.TestCase):

    def test_exactly_two_commands(self):
        m = re.search(r"(?ms)^## Quick start\n.*?^```sh\n(.*?)^```$",
                      read("README.md"))
        self.assertIsNotNone(m, "README.md: no Quick start commands")
        commands = [line for line in m.group(1).splitlines()
                    if line.strip() and not line.lstrip().startswith("#")]
        self.assertEqual(len(commands), 2, commands)


class HandlerPageMatchesHeader(unittest.TestCase):

    def test_every_function_is_documented(self):
        header = read("include", "sockserverd.h")
        declared = set(re.findall(r"\b(ssd_[a-z_]+)\s*\(", header))
        page = read("man", "sockserverd-handler.3")
        names = set(re.findall(r"(?m)^\.Nm (ssd_[a-z_]+)", page))
        synopsis = set(re.findall(r"(?m)^\.Fn (ssd_[a-z_]+)",
                                  mdoc_section(page, "SYNOPSIS")))
        self.assertTrue(declared, "no ssd_* function in sockserverd.h")
        self.assertEqual(sorted(names), sorted(declared), "NAME")
        self.assertEqual(sorted(synopsis), sorted(declared), "SYNOPSIS")


class EveryKeyIsDocumented(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        src = read("daemon", "config.c")
        cls.global_keys = key_table(src, "config_global_keys")
        cls.listener_keys = key_table(src, "config_listener_keys")
        cls.page = read("man", "sockserverd.conf.5.in")
        cls.conf = read("conf", "sockserverd.conf")

    def test_tables_were_parsed(self):
        self.assertIn("listeners", self.global_keys)
        self.assertIn("handler", self.listener_keys)

    def check_page(self, keys, title):
        body = mdoc_section(self.page, title)
        self.assertTrue(body, "sockserverd.conf.5.in has no .Sh " + title)
        documented = set(re.findall(r"(?m)^\.It Ic (\w+)", body))
        for key in keys:
            with self.subTest(key=key):
                self.assertIn(key, documented,
                              "no '.It Ic %s' under .Sh %s" % (key, title))
        self.assertEqual(sorted(documented - set(keys)), [],
                         "documented under .Sh %s but not in config.c"
                         % title)

    def test_global_keys_in_page(self):
        self.check_page(self.global_keys, "GLOBAL SETTINGS")

    def test_listener_keys_in_page(self):
        self.check_page(self.listener_keys, "LISTENERS")

    def test_keys_in_annotated_config(self):
        for key in self.global_keys + self.listener_keys:
            with self.subTest(key=key):
                self.assertRegex(self.conf,
                                 r"(?m)^\s*#?\s*%s\s*[=:]" % re.escape(key),
                                 "conf/sockserverd.conf lacks " + key)


if __name__ == "__main__":
    unittest.main()


def ev_entries(source, title):
    return set(re.findall(r"(?m)^\.It Ev (\w+)", mdoc_section(source, title)))


class SystemdInPages(unittest.TestCase):
    """What sockserverd(8), sockserverd.conf(5) and the README say about
    reloading and systemd."""

    variables = ("NOTIFY_SOCKET", "LISTEN_FDS", "LISTEN_FDNAMES",
                 "LISTEN_PID", "JOURNAL_STREAM", "WATCHDOG_USEC",
                 "WATCHDOG_PID")

    def test_environment_has_every_variable(self):
        page = read("man", "sockserverd.8.in")
        documented = ev_entries(page, "ENVIRONMENT")
        for var in self.variables:
            with self.subTest(variable=var):
                self.assertIn(var, documented)

    def test_nothing_is_announced_as_missing(self):
        # proxy_protocol is still refused, and sockserverd.conf(5) says so.
        phrases = {
            "sockserverd.8.in": ("not yet", "later version",
                                 "not implemented", "does not implement"),
            "sockserverd.conf.5.in": ("not yet", "later version"),
        }
        for page, these in phrases.items():
            text = " ".join(read("man", page).split()).lower()
            for phrase in these:
                with self.subTest(page=page, phrase=phrase):
                    self.assertFalse(phrase in text, "%s says %r" %
                                     (page, phrase))

    def test_signals(self):
        page = read("man", "sockserverd.8.in")
        m = re.search(r"(?ms)^\.Ss Signals\n(.*?)(?=^\.S[sh] )", page)
        self.assertIsNotNone(m, "sockserverd(8): no .Ss Signals")
        items = re.findall(r"(?m)^\.It Dv (\w+)", m.group(1))
        for sig in ("SIGHUP", "SIGTERM", "SIGPIPE"):
            self.assertIn(sig, items)
        hup = m.group(1).split(".It Dv SIGHUP", 1)[1].split(".It Dv", 1)[0]
        for word in ("RELOADING=1", "MONOTONIC_USEC=", "READY=1",
                     "STATUS=", "v6only", "queue_size", "unix_mode",
                     "reuse_port", "Fn fini", "FILE:LINE"):
            with self.subTest(word=word):
                self.assertIn(word, hup)

    def test_conf_page_reload_and_privileges(self):
        body = mdoc_section(read("man", "sockserverd.conf.5.in"),
                            "RELOADING AND PRIVILEGES")
        self.assertTrue(body, "sockserverd.conf(5): no RELOADING AND "
                        "PRIVILEGES section")
        for word in ("1024", "CAP_NET_BIND_SERVICE", "AmbientCapabilities",
                     "RuntimeDirectory", "Socket activation"):
            with self.subTest(word=word):
                self.assertIn(word, body)

    def test_readme(self):
        readme = read("README.md")
        m = re.search(r"(?ms)^## Running under systemd\n(.*?)(?=^## |\Z)",
                      readme)
        self.assertIsNotNone(m, "README.md: no Running under systemd")
        for word in ("systemctl reload", "systemctl status",
                     "sockserverd.socket", "1024"):
            with self.subTest(word=word):
                self.assertIn(word, m.group(1))
        coming = re.search(r"(?ms)^What is coming:\n(.*?)(?=^## |\Z)",
                           readme)
        self.assertIsNotNone(coming, "README.md: no 'What is coming:'")
        for word in ("SIGHUP", "LISTEN_FDS", "WATCHDOG", "watchdog",
                     "Socket activation", "Reloading"):
            with self.subTest(word=word):
                self.assertNotIn(word, coming.group(1))


def unit_settings(text):
    """{key: [values]} of a unit file (comments and sections ignored)."""
    out = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line[0] in "#;[" or "=" not in line:
            continue
        k, v = line.split("=", 1)
        out.setdefault(k.strip(), []).append(v.strip())
    return out


def unit_for_this_tree(text):
    """The unit text with @SBINDIR@/sockserverd and the config pointing
    at this tree's files."""
    text = text.replace("@SBINDIR@/sockserverd", binary())
    text = text.replace("@SYSCONFDIR@/sockserverd.conf",
                        os.path.join(ROOT, "conf", "sockserverd.conf"))
    for var in ("SBINDIR", "SYSCONFDIR", "LIBDIR", "HANDLERDIR",
                "INCLUDEDIR", "PREFIX"):
        text = text.replace("@%s@" % var, "/usr/local")
    return text.replace("@VERSION@", "0")


def analyze(argv, d):
    """systemd-analyze ARGV in directory d, with man pages found there."""
    mandir = os.path.join(d, "man")
    for name in ("sockserverd.8", "sockserverd.conf.5"):
        sub = os.path.join(mandir, "man" + name[-1])
        os.makedirs(sub, exist_ok=True)
        shutil.copy(man_page(name), os.path.join(sub, name))
    env = dict(os.environ, MANPATH=mandir, SYSTEMD_LOG_COLOR="0")
    return subprocess.run(["systemd-analyze"] + argv, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, universal_newlines=True,
                          timeout=120, cwd=d, env=env)


class ServiceUnit(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.text = read("systemd", "sockserverd.service.in")
        cls.keys = unit_settings(cls.text)

    def test_r12_settings(self):
        k = self.keys
        self.assertEqual(k.get("Type"), ["notify"])
        self.assertEqual(k.get("ExecStartPre"), [
            "@SBINDIR@/sockserverd -t -c @SYSCONFDIR@/sockserverd.conf"])
        self.assertEqual(k.get("ExecStart"), [
            "@SBINDIR@/sockserverd -c @SYSCONFDIR@/sockserverd.conf"])
        self.assertEqual(k.get("ExecReload"), ["/bin/kill -HUP $MAINPID"])
        self.assertEqual(k.get("Restart"), ["on-failure"])
        for key in ("LimitNOFILE", "WatchdogSec", "RuntimeDirectory",
                    "NoNewPrivileges", "ProtectSystem", "PrivateTmp",
                    "RestrictAddressFamilies", "SystemCallFilter"):
            with self.subTest(key=key):
                self.assertIn(key, k)
        self.assertEqual(sorted(k["RestrictAddressFamilies"][0].split()),
                         ["AF_INET", "AF_INET6", "AF_UNIX"])
        self.assertIn("CAP_NET_BIND_SERVICE",
                      " ".join(k.get("AmbientCapabilities", [])))
        # systemd drops the privileges: setuid is filtered out.
        self.assertTrue("User" in k or k.get("DynamicUser") == ["yes"])
        self.assertTrue(any("@privileged" in v and v.startswith("~")
                            for v in k["SystemCallFilter"]))

    def test_systemd_analyze_verify(self):
        if not shutil.which("systemd-analyze"):
            self.skipTest("systemd-analyze is not installed")
        with tempfile.TemporaryDirectory() as d:
            for name in ("sockserverd.service", "sockserverd.socket"):
                src = ("sockserverd.service.in" if name.endswith("service")
                       else name)
                with open(os.path.join(d, name), "w") as f:
                    f.write(unit_for_this_tree(read("systemd", src)))
            r = analyze(["verify", "./sockserverd.service",
                         "./sockserverd.socket"], d)
        self.assertEqual((r.returncode, r.stdout + r.stderr), (0, ""))

    def test_exposure_at_most_2(self):
        if not shutil.which("systemd-analyze"):
            self.skipTest("systemd-analyze is not installed")
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "sockserverd.service")
            with open(path, "w") as f:
                f.write(unit_for_this_tree(self.text))
            r = analyze(["security", "--offline=true", "--no-pager", path], d)
        m = re.search(r"Overall exposure level for \S+: (\d+\.\d+)",
                      r.stdout + r.stderr)
        self.assertIsNotNone(m, r.stdout + r.stderr)
        self.assertLessEqual(float(m.group(1)), 2.0, r.stdout)


class SocketUnit(unittest.TestCase):

    def names(self, text):
        """Listener names of the libconfig snippets in text."""
        return set(re.findall(r'name\s*=\s*"([^"]+)"', text))

    def snippet(self, text, name):
        """The listeners = (...) block that has the listener name."""
        for m in re.finditer(r"(?ms)^\s*#?\s*listeners = \(.*?^\s*#?\s*\);",
                             text):
            if '"%s"' % name in m.group(0):
                return m.group(0)
        return None

    def test_names_a_documented_listener(self):
        unit = unit_settings(read("systemd", "sockserverd.socket"))
        self.assertIn("ListenStream", unit)
        self.assertEqual(len(unit.get("FileDescriptorName", [])), 1)
        name = unit["FileDescriptorName"][0]
        self.assertNotIn("yes", unit.get("Accept", []))
        for where, text in (
                ("sockserverd(8) EXAMPLES",
                 mdoc_section(read("man", "sockserverd.8.in"), "EXAMPLES")),
                ("sockserverd.conf(5) EXAMPLES",
                 mdoc_section(read("man", "sockserverd.conf.5.in"),
                              "EXAMPLES")),
                ("README.md", read("README.md")),
                ("sockserverd.socket", read("systemd", "sockserverd.socket"))):
            with self.subTest(where=where):
                block = self.snippet(text, name)
                self.assertIsNotNone(block, "%s: no listeners block with "
                                     "%r" % (where, name))
                conf = "\n".join(re.sub(r"^\s*# ?", "", line)
                                 for line in block.splitlines())
                self.assertEqual(check_config(conf),
                                 ShippedConfigsPass.ok, conf)
                if re.fullmatch(r"\d+", unit["ListenStream"][0]):
                    # A bare port: systemd makes an inet6 socket.
                    self.assertRegex(conf, r'family\s*=\s*"inet6"')
