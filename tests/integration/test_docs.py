# SPDX-License-Identifier: ISC
"""The documentation agrees with the code.

- The SYNOPSIS of sockserverd(8), rendered, is the usage line that
  `sockserverd -h` prints (STYLE R11), and every option in it has an entry.
- The three man pages are lint-clean (mandoc -Tlint -W warning; groff -ww).
- conf/sockserverd.conf, conf/demo.conf, the examples of
  sockserverd.conf(5) and the README's configuration pass `sockserverd -t`;
  the page's and the README's haproxy.cfg examples pass `haproxy -c` (where
  HAProxy is installed), their Prometheus scrape configurations are valid
  YAML that scrape a `status` listener of the same text.
- Every compiled-in handler (`sockserverd -L`) has its entry under
  COMPILED-IN HANDLERS of sockserverd.conf(5), is in the README and has a
  listener in conf/sockserverd.conf; so do exec's options and variables
  (from handlers/exec.c).  The Metrics subsection lists exactly the
  families that daemon/stats.c renders, with every refusal reason and
  histogram bound, and the status handler's Content-Type.
- The README's "Behind a load balancer" has a complete haproxy.cfg with
  2-3 `send-proxy-v2` servers, the matching `proxy_protocol = true`
  listener, and the Prometheus scrape of the status listeners.
- Every key of daemon/config.c's key tables has its `.It Ic KEY` entry in
  the right section of sockserverd.conf(5) and appears in the annotated
  conf/sockserverd.conf; and the page documents no key the code lacks.
- Every function of include/sockserverd.h is in sockserverd-handler(3)'s
  NAME and SYNOPSIS, and the page names no function the header lacks.
- The README's Quick start is exactly two commands.
- sockserverd(8) documents SIGHUP and every systemd variable, and says
  nothing is "not yet" there, nor is any setting "not implemented" in
  sockserverd.conf(5) or conf/sockserverd.conf; STANDARDS cite the PROXY
  protocol and the Prometheus text format 0.0.4; sockserverd.conf(5) has its RELOADING AND
  PRIVILEGES section; the README has its "Running under systemd" section
  and does not list reload, socket activation, the watchdog, exec, status
  or the PROXY protocol as coming.
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

from ssdtest import self_signed_cert

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


def _example_certificates(text, d):
    """An example's certificate and key paths, made real: a certificate
    and key generated into d stand for the files it names."""
    if not re.search(r"\bcertificate\s*=", text):
        return text
    crt, key = self_signed_cert(d)
    text = re.sub(r'(\b(?:certificate|client_ca)\s*=\s*)"[^"]*"',
                  lambda m: '%s"%s"' % (m.group(1), crt), text)
    return re.sub(r'(\bkey\s*=\s*)"[^"]*"',
                  lambda m: '%s"%s"' % (m.group(1), key), text)


def check_config(text):
    """`sockserverd -t` on text, as (status, stdout, stderr)."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("NOTIFY_SOCKET", "JOURNAL_STREAM")}
    with tempfile.TemporaryDirectory() as d:
        text = _example_certificates(text, d)
        path = os.path.join(d, "example.conf")
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
        r = run([binary(), "-t", "-c", path], env=env)
    return (r.returncode, r.stdout, r.stderr.replace(path, "FILE"))


def block_kind(text):
    """What a literal example is: "script" (#!), "haproxy" (a haproxy.cfg),
    "prometheus" (a prometheus.yml) or "sockserverd" (libconfig)."""
    first = next((line for line in text.splitlines() if line.strip()), "")
    if first.startswith("#!"):
        return "script"
    if re.match(r"(global|defaults|frontend|backend|listen)\b", first):
        return "haproxy"
    if re.match(r"scrape_configs\s*:", first):
        return "prometheus"
    return "sockserverd"


def check_haproxy(test, text):
    """text is a haproxy.cfg that HAProxy takes without a warning."""
    test.assertRegex(text, r"(?m)^\s*server\s+\S+\s+\S+:\d+\s.*"
                     r"\bsend-proxy(-v2)?\b", text)
    if not shutil.which("haproxy"):
        return
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "haproxy.cfg")
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
        r = run(["haproxy", "-c", "-f", path])
    out = r.stdout + r.stderr
    test.assertEqual(r.returncode, 0, out)
    test.assertNotIn("WARNING", out)
    test.assertNotIn("ALERT", out)


def scrape_targets(test, text):
    """The host:port targets of a prometheus.yml text, checked."""
    try:
        import yaml
    except ImportError:
        yaml = None
    if yaml is None:
        targets = re.findall(r'"([^"\s]+:\d+)"', text)
        test.assertRegex(text, r"(?m)^\s*- job_name:")
    else:
        doc = yaml.safe_load(text)
        test.assertIsInstance(doc, dict, text)
        targets = []
        for job in doc["scrape_configs"]:
            test.assertIn("job_name", job)
            test.assertEqual(job.get("metrics_path", "/metrics"),
                             "/metrics")
            for sc in job["static_configs"]:
                targets += sc["targets"]
    test.assertTrue(targets, text)
    for t in targets:
        test.assertRegex(t, r"^[^:]+:\d+$")
    return targets


def status_ports(text):
    """Ports of the listeners with handler "status" in libconfig text."""
    ports = set()
    for m in re.finditer(r"\{[^{}]*\}", text):
        g = m.group(0)
        if re.search(r'handler\s*=\s*"status"', g):
            p = re.search(r"port\s*=\s*(\d+)", g)
            if p:
                ports.add(p.group(1))
    return ports


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
        texts = [b.replace("\\e", "\\") for b in blocks]
        kinds = [block_kind(t) for t in texts]
        for kind in ("haproxy", "prometheus"):
            self.assertIn(kind, kinds, "sockserverd.conf(5): no %s "
                          "example" % kind)
        configs = "\n".join(t for t, k in zip(texts, kinds)
                            if k == "sockserverd")
        for i, (text, kind) in enumerate(zip(texts, kinds)):
            if kind == "haproxy":
                with self.subTest(example=i + 1, kind=kind):
                    check_haproxy(self, text)
                continue
            if kind == "prometheus":
                with self.subTest(example=i + 1, kind=kind):
                    for t in scrape_targets(self, text):
                        self.assertIn(t.rsplit(":", 1)[1],
                                      status_ports(configs))
                continue
            if kind == "script":
                with self.subTest(example=i + 1, kind=kind):
                    r = run(["sh", "-n"], input=text)
                    self.assertEqual(r.returncode, 0, r.stderr)
                continue
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


    def test_readme_listener_blocks_pass_t(self):
        blocks = [b for b in re.findall(r"(?ms)^```\w*\n(.*?)^```$",
                                        read("README.md"))
                  if re.search(r"(?m)^\s*listeners\s*=\s*\(", b)]
        self.assertGreaterEqual(len(blocks), 3)
        for i, block in enumerate(blocks):
            with self.subTest(block=i + 1):
                self.assertEqual(check_config(block), self.ok, block)


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
        # the keys of a listener's tls group, documented with it
        cls.tls_keys = key_table(src, "config_tls_keys")
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
        self.check_page(self.listener_keys + self.tls_keys, "LISTENERS")

    def test_keys_in_annotated_config(self):
        for key in self.global_keys + self.listener_keys:
            with self.subTest(key=key):
                self.assertRegex(self.conf,
                                 r"(?m)^\s*#?\s*%s\s*[=:]" % re.escape(key),
                                 "conf/sockserverd.conf lacks " + key)


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
        missing = ("not yet", "later version", "not implemented",
                   "does not implement", "refused by this version",
                   "this version refuses")
        phrases = {
            ("man", "sockserverd.8.in"): missing,
            ("man", "sockserverd.conf.5.in"): missing,
            ("conf", "sockserverd.conf"): missing,
        }
        for page, these in phrases.items():
            text = " ".join(read(*page).split()).lower()
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
        status = re.search(r"(?ms)^## Status\n(.*?)(?=^## |\Z)", readme)
        self.assertIsNotNone(status, "README.md: no Status")
        for word in ("SIGHUP", "LISTEN_FDS", "WATCHDOG_USEC", "`exec`",
                     "`status`", "Prometheus", "proxy_protocol",
                     "max_per_source", "allow"):
            with self.subTest(word=word):
                self.assertIn(word, status.group(1))
        # Nothing that works may be announced as coming.
        coming = re.search(r"(?ms)^What is coming:\n(.*?)(?=^## |^\S|\Z)",
                           readme)
        if coming is not None:
            for word in ("SIGHUP", "LISTEN_FDS", "WATCHDOG", "watchdog",
                         "Socket activation", "Reloading", "exec",
                         "status", "Prometheus", "PROXY", "proxy_protocol",
                         "max_per_source"):
                with self.subTest(word=word):
                    self.assertNotIn(word, coming.group(1))
        self.assertNotIn("refused for now", readme)


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
        # Issue 9: the -t check moved from ExecStartPre= (whose failure
        # systemd restarts) to ExecReload=; KillMode=mixed; no restart
        # after exit status 1.
        self.assertNotIn("ExecStartPre", k)
        self.assertEqual(k.get("ExecStart"), [
            "@SBINDIR@/sockserverd -c @SYSCONFDIR@/sockserverd.conf"])
        self.assertEqual(k.get("ExecReload"), [
            "@SBINDIR@/sockserverd -t -c @SYSCONFDIR@/sockserverd.conf",
            "/bin/kill -HUP $MAINPID"])
        self.assertEqual(k.get("Restart"), ["on-failure"])
        self.assertEqual(k.get("RestartPreventExitStatus"), ["1"])
        self.assertEqual(k.get("KillMode"), ["mixed"])
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


class HandlersAndMetricsDocumented(unittest.TestCase):
    """sockserverd.conf(5), the README and the annotated configuration
    against the handlers and counters of the code."""

    @classmethod
    def setUpClass(cls):
        cls.page = read("man", "sockserverd.conf.5.in")
        cls.handlers_sh = mdoc_section(cls.page, "COMPILED-IN HANDLERS")
        m = re.search(r"(?ms)^\.Ss Metrics\n(.*?)(?=^\.S[sh] |\Z)",
                      cls.handlers_sh)
        cls.metrics = m.group(1) if m else ""
        # C source with adjacent string literals joined.
        # The worker processes' families are rendered by worker.c.
        cls.stats = re.sub(r'"\s*\n\s*"', "", read("daemon", "stats.c") +
                           read("daemon", "worker.c"))
        cls.exec_c = read("handlers", "exec.c")

    def builtins(self):
        r = run([binary(), "-L"])
        self.assertEqual(r.returncode, 0, r.stderr)
        names = re.findall(r"(?m)^(\S+)\s+builtin\b", r.stdout)
        self.assertTrue(names, r.stdout)
        return names

    def test_every_builtin_is_documented(self):
        self.assertTrue(self.handlers_sh, "sockserverd.conf(5): no "
                        "COMPILED-IN HANDLERS section")
        items = set(re.findall(r"(?m)^\.It Ic (\w+)$", self.handlers_sh))
        readme = read("README.md")
        conf = read("conf", "sockserverd.conf")
        for name in self.builtins():
            with self.subTest(handler=name):
                self.assertIn(name, items)
                self.assertIn("`%s`" % name, readme)
                self.assertRegex(conf, r'(?m)^\s*(\{.*)?handler = "%s";'
                                 % re.escape(name))

    def test_exec_options_and_variables(self):
        options = re.findall(r'strcmp\(name, "(\w+)"\)', self.exec_c)
        self.assertEqual(sorted(options), ["args", "env", "program"])
        variables = key_table(self.exec_c, "exec_env_names")
        self.assertIn("TCPREMOTEIP", variables)
        items = set(re.findall(r"(?m)^\.It Ic (\w+)", self.handlers_sh))
        evs = set(re.findall(r"(?m)^\.It Ev (\w+)", self.handlers_sh))
        conf = read("conf", "sockserverd.conf")
        for opt in options:
            with self.subTest(option=opt):
                self.assertIn(opt, items)
                self.assertRegex(conf, r"(?m)^\s*#?\s*%s\s*[=(]" % opt)
        for var in variables:
            with self.subTest(variable=var):
                self.assertIn(var, evs)
                self.assertIn(var, conf)

    def test_metrics_lists_every_family(self):
        self.assertTrue(self.metrics, "sockserverd.conf(5): no .Ss Metrics")
        families = set(re.findall(r'stats_family\(b, "(\w+)"', self.stats))
        families |= set(re.findall(r"# TYPE sockserverd_(\w+)", self.stats))
        families.discard("%s")
        self.assertIn("request_duration_seconds", families)
        self.assertIn("refused_total", families)
        documented = set(re.findall(r"(?m)^\.It Li sockserverd_(\w+)",
                                    self.metrics))
        self.assertEqual(sorted(documented), sorted(families))
        readme = read("README.md")
        for fam in ("requests_total", "refused_total",
                    "request_duration_seconds"):
            self.assertIn("sockserverd_" + fam, readme)

    def test_metrics_reasons_and_buckets(self):
        reasons = re.findall(r'reason=\\"(\w+)\\"', self.stats)
        self.assertEqual(len(reasons), 6, reasons)
        for reason in reasons:
            with self.subTest(reason=reason):
                self.assertRegex(self.metrics, r"(?m)^\.It Ql %s$" % reason)
                self.assertIn("`%s`" % reason, read("README.md"))
        m = re.search(r"stats_bounds\[[A-Z_]*\]\s*=\s*\{([^}]*)\}",
                      self.stats)
        self.assertIsNotNone(m, "daemon/stats.c: no stats_bounds")
        for bound in [b.strip() for b in m.group(1).split(",")] + ["+Inf"]:
            label = bound if bound == "+Inf" else "%g" % float(bound)
            with self.subTest(le=label):
                self.assertIn("\\(dq%s\\(dq" % label, self.metrics)

    def test_status_content_type(self):
        m = re.search(r'Content-Type: ([^\\"]+)\\r\\n',
                      re.sub(r'"\s*\n\s*"', "", read("handlers",
                                                     "status.c")))
        self.assertIsNotNone(m, "handlers/status.c: no Content-Type")
        self.assertIn("Content-Type: " + m.group(1), self.handlers_sh)
        self.assertIn("HTTP/1.0 200 OK", self.handlers_sh)

    def test_standards(self):
        for page in ("sockserverd.8.in", "sockserverd.conf.5.in"):
            body = mdoc_section(read("man", page), "STANDARDS")
            with self.subTest(page=page):
                self.assertIn("The PROXY protocol", body)
                self.assertIn("version 0.0.4", body)


class ReadmeLoadBalancer(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        m = re.search(r"(?ms)^## Behind a load balancer\n(.*?)(?=^## |\Z)",
                      read("README.md"))
        cls.text = m.group(1) if m else ""
        cls.blocks = re.findall(r"(?ms)^```\w*\n(.*?)^```$", cls.text)

    def kind(self, kind):
        found = [b for b in self.blocks if block_kind(b) == kind]
        self.assertTrue(found, "Behind a load balancer: no %s block" % kind)
        return found

    def test_section(self):
        self.assertTrue(self.text, "README.md: no Behind a load balancer")
        for word in ("send-proxy-v2", "proxy_protocol = true", "allow",
                     "deny", "max_per_source", "/metrics", "LOCAL",
                     "firewall"):
            with self.subTest(word=word):
                self.assertIn(word, self.text)

    def test_haproxy_and_listener_match(self):
        cfg, = self.kind("haproxy")
        check_haproxy(self, cfg)
        servers = re.findall(r"(?m)^\s*server\s+\S+\s+(\S+):(\d+)\s+(.*)$",
                             cfg)
        self.assertIn(len(servers), (2, 3), servers)
        for host, port, rest in servers:
            self.assertIn("send-proxy-v2", rest.split())
        confs = [b for b in self.kind("sockserverd")
                 if re.search(r"(?m)^\s*listeners\s*=", b)]
        self.assertEqual(len(confs), 1, confs)
        self.assertEqual(check_config(confs[0]), ShippedConfigsPass.ok,
                         confs[0])
        lb = [g for g in re.findall(r"\{[^{}]*\}", confs[0])
              if re.search(r"proxy_protocol\s*=\s*true", g)]
        self.assertEqual(len(lb), 1, confs[0])
        addr = re.search(r'address\s*=\s*"([^"]+)"', lb[0]).group(1)
        port = re.search(r"port\s*=\s*(\d+)", lb[0]).group(1)
        self.assertIn((addr, port), [(h, p) for h, p, _ in servers])
        targets = scrape_targets(self, self.kind("prometheus")[0])
        self.assertEqual(len(targets), len(servers))
        for t in targets:
            self.assertIn(t.rsplit(":", 1)[1], status_ports(confs[0]))
            self.assertIn(t.rsplit(":", 1)[0], [h for h, _, _ in servers])


if __name__ == "__main__":
    unittest.main()
