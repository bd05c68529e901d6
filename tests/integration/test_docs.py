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
