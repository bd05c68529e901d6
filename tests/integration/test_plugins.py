# SPDX-License-Identifier: ISC
"""Handler plugins (issue 4), end to end with the real binary.

- `sockserverd -t` gives each fixture plugin's exact outcome as
  "FILE:LINE: message" (exit 1): wrong ABI, no symbol, no handle, init
  failing through ssd_option_error (at the option's line, or at the
  handler setting's), a constructor that aborts, a missing plugin, a name
  with "../"; every plugin problem of one configuration in one run; and
  the daemon started on any of them exits 1 before binding.
- `sockserverd -L` on a handler_dir holding every fixture: one line per
  plugin, the refused ones with the reason, exit 0, never a crash.
- An out-of-tree plugin built with `cc -shared -fPIC $(pkg-config
  --cflags sockserverd)` against the header and .pc that `make install
  DESTDIR=...` installed, served under every concurrency model, over
  stream and datagram listeners.
- Hot replacement: a .so installed by rename, then SIGHUP: new requests
  get the new code, a request in progress keeps the old one, which is
  unmapped after its last request; an unchanged plugin is not loaded twice.
- A reload whose plugin crashes while loading, or whose init fails (or
  crashes), keeps the daemon and the old code serving.
- The examples lower.so and greet.so.
- The binary exports only ssd_* to plugins.

Known daemon bugs are marked expectedFailure (counted as passed by run.py,
reported as a failure once fixed, so that the marker goes): -t does not
check plugins when the file has other errors (an unknown handler name,
"../"), and a reload whose replaced plugin crashes while loading leaves
its private name behind in $TMPDIR.

Needs $SSD_TEST_PLUGINS (the fixture plugins; `make integration` sets it)
and the example plugins (ssdtest.plugin_dir()); tests that lack them are
skipped.  The out-of-tree build needs make, cc and pkg-config.
"""

import os
import re
import resource
import shlex
import shutil
import signal
import socket
import subprocess
import tempfile
import unittest

from ssdtest import (IO_TIMEOUT, MAX_ITER, READY_TIMEOUT, ROOT, SD_VARS,
                     DaemonTestCase, Deadline, binary,
                     closed_by_peer, conf, fixture_plugin, log_tail,
                     model_conf, plugin_dir, recv_until_eof,
                     recv_within, sanitizer_report, send_all,
                     skip_under_valgrind, wait_for)

CONF = "sockserverd.conf"       # -t runs name their file like this
NO_CORE = {resource.RLIMIT_CORE: (0, 0)}

FIXTURES = ("badabi", "nosym", "nohandle", "initfail", "ctorabort",
            "hotv1", "hotv2", "crash")

# What a refused fixture's -t line and -L line say (after "DIR/NAME.so: ";
# ctorabort's says something else, checked on its own).
REFUSALS = {
    "badabi": "handler ABI version 2, sockserverd supports 1",
    "nosym": "no sockserverd_handler symbol",
    "nohandle": 'handler "nohandle" has no handle function',
}
SIZE_MSG = 'option "size" must be an integer from 1 to 10'


# ---------------------------------------------------------------------------
# Helpers.


def line_of(text, needle):
    """The 1-based number of the one line of text that contains needle."""
    found = [i + 1 for i, ln in enumerate(text.splitlines())
             if needle in ln]
    if len(found) != 1:
        raise AssertionError("%r is on lines %r of:\n%s"
                             % (needle, found, text))
    return found[0]


def fixture(test, name):
    """The fixture plugin name.so, or skips test."""
    so = fixture_plugin(name)
    if so is None:
        test.skipTest("SSD_TEST_PLUGINS is not set: fixture plugins are "
                      "needed (make integration builds them)")
    test.assertTrue(os.path.exists(so), "%s is missing" % so)
    return so


def example(test, name):
    """The example plugin name.so (lower, greet), or skips test."""
    so = os.path.join(plugin_dir(), name + ".so")
    if not os.path.exists(so):
        test.skipTest("%s not built (make integration builds it; or set "
                      "SSD_PLUGIN_DIR)" % so)
    return so


def sd_env():
    """This environment without the service manager's variables."""
    env = dict(os.environ)
    for k in SD_VARS:
        env.pop(k, None)
    return env


def run_ssd(args, cwd, timeout=READY_TIMEOUT):
    """sockserverd ARGS to completion in cwd, without core files (a
    plugin's crash in a probe child must not leave one): (status, stdout,
    stderr); fails on a sanitizer report."""
    def no_core():
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    r = subprocess.run([binary()] + list(args), stdin=subprocess.DEVNULL,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=timeout, env=sd_env(), cwd=cwd,
                       preexec_fn=no_core)
    out = r.stdout.decode("utf-8", "replace")
    err = r.stderr.decode("utf-8", "replace")
    report = sanitizer_report(err)
    if report is not None:
        raise AssertionError("sanitizer report (%s) from sockserverd %s:\n%s"
                             % (report, " ".join(args), log_tail(err, 200)))
    return r.returncode, out, err


def install_plugin(src, dst):
    """Installs src as dst the safe way: a copy under a temporary name in
    dst's directory, then rename(2) over dst (a loaded file is never
    written to)."""
    tmp = os.path.join(os.path.dirname(dst),
                       ".%s.new" % os.path.basename(dst))
    shutil.copyfile(src, tmp)
    os.chmod(tmp, 0o755)
    os.rename(tmp, dst)


def loads_of(pid, ino):
    """How many times the file with inode ino is loaded in process pid:
    its mappings at file offset 0 in /proc/PID/maps (each dlopen'd copy
    maps its ELF header once)."""
    n = 0
    with open("/proc/%d/maps" % pid) as f:
        for ln in f:
            fields = ln.split(None, 5)
            if len(fields) >= 5 and fields[4] == str(ino) and \
                    int(fields[2], 16) == 0:
                n += 1
    return n


def hup(d, timeout=READY_TIMEOUT):
    """SIGHUP to daemon d, then waits for the READY=1 that ends the reload;
    returns the STATUS= text sent with it ("" without one)."""
    st = [ln[len("STATUS="):] for ln in d.reload(timeout=timeout)
          if ln.startswith("STATUS=")]
    return st[-1] if st else ""


def recv_line(s, timeout=IO_TIMEOUT):
    """Bytes through the next newline (the peer sends nothing after it
    until we talk again)."""
    dl = Deadline(timeout)
    buf = b""
    for _ in range(MAX_ITER):
        if buf.endswith(b"\n"):
            return buf
        r = dl.remaining()
        if r <= 0:
            break
        s.settimeout(r)
        b = s.recv(4096)
        if not b:
            raise AssertionError("EOF after %r" % buf)
        buf += b
    raise AssertionError("no complete line within %gs: %r" % (timeout, buf))


def exchange(s, line):
    send_all(s, line)
    return recv_line(s)


def have_cc():
    return shutil.which("cc") is not None


def compile_plugin(test, src_text, so, extra=()):
    """Builds a plugin from C source text with the tree's header (as the
    Makefile builds plugins), or skips test without a compiler."""
    if not have_cc():
        test.skipTest("no C compiler (cc)")
    src = so[:-3] + ".c"
    with open(src, "w") as f:
        f.write(src_text)
    cflags = []
    if shutil.which("pkg-config"):
        r = subprocess.run(["pkg-config", "--cflags", "libconfig"],
                           stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                           universal_newlines=True, timeout=60)
        cflags = shlex.split(r.stdout)
    r = subprocess.run(["cc", "-shared", "-fPIC", "-fvisibility=hidden",
                        "-I", os.path.join(ROOT, "include")] + cflags +
                       list(extra) + ["-o", so, src],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       universal_newlines=True, timeout=120)
    test.assertEqual(r.returncode, 0, "cc %s:\n%s" % (src, r.stdout))
    return so


# ---------------------------------------------------------------------------
# sockserverd -t and start-up on every kind of broken plugin.


def one_listener(handler, extra=""):
    """A configuration of one listener whose handler line stands alone."""
    return ('handler_dir = "@H@";\n'
            'listeners = (\n'
            '  { name = "p"; address = "127.0.0.1"; port = 0;\n'
            '    handler = "%s";\n'
            '%s'
            '  }\n'
            ');\n' % (handler, extra))


class CheckTests(unittest.TestCase):
    """sockserverd -t: the exact FILE:LINE: message of each problem."""

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="ssd-plugins-")
        self.addCleanup(shutil.rmtree, self.dir, True)
        self.h = os.path.join(self.dir, "h")
        os.mkdir(self.h)

    def put(self, name, src=None):
        """Copies fixture name (or src) into the handler_dir as name.so."""
        shutil.copyfile(src or fixture(self, name),
                        os.path.join(self.h, name + ".so"))

    def so(self, name):
        return os.path.join(self.h, name + ".so")

    def check(self, text):
        """Writes text (@H@ = the handler_dir) and runs -t on it: (status,
        stdout, stderr lines, the expanded text)."""
        text = text.replace("@H@", self.h).replace("@DIR@", self.dir)
        with open(os.path.join(self.dir, CONF), "w") as f:
            f.write(text)
        rc, out, err = run_ssd(["-t", "-c", CONF], cwd=self.dir)
        return rc, out, err.splitlines(), text

    def assertRefused(self, text, want):
        """-t on text exits 1, prints nothing on stdout and exactly the
        lines want (each "LINE: message" or (LINE, regex)) on stderr."""
        rc, out, err, text = self.check(text)
        self.assertEqual(rc, 1, "exit status; stderr:\n%s" % "\n".join(err))
        self.assertEqual(out, "", "stdout of a failed -t")
        self.assertEqual(len(err), len(want), "\n".join(err))
        for got, w in zip(err, want):
            if isinstance(w, tuple):
                self.assertRegex(got, r"^%s:%d: %s" % (re.escape(CONF),
                                                      w[0], w[1]))
            else:
                self.assertEqual(got, "%s:%s" % (CONF, w))

    # -- one problem at a time --------------------------------------------

    def test_badabi_names_file_and_both_versions(self):
        self.put("badabi")
        text = one_listener("badabi")
        self.assertRefused(text, ["%d: %s: %s" % (
            line_of(text, 'handler = "badabi"'), self.so("badabi"),
            REFUSALS["badabi"])])

    def test_badabi_by_absolute_path(self):
        self.put("badabi")
        text = one_listener(self.so("badabi"))
        self.assertRefused(text, ["%d: %s: %s" % (
            line_of(text, "handler ="), self.so("badabi"),
            REFUSALS["badabi"])])

    def test_nosym(self):
        self.put("nosym")
        text = one_listener("nosym")
        self.assertRefused(text, ["%d: %s: %s" % (
            line_of(text, "handler ="), self.so("nosym"),
            REFUSALS["nosym"])])

    def test_nohandle(self):
        self.put("nohandle")
        text = one_listener("nohandle")
        self.assertRefused(text, ["%d: %s: %s" % (
            line_of(text, "handler ="), self.so("nohandle"),
            REFUSALS["nohandle"])])

    def test_initfail_at_the_option_line(self):
        self.put("initfail")
        text = one_listener("initfail", "    options = {\n"
                                        "      name = \"x\";\n"
                                        "      size = 11;\n"
                                        "    };\n")
        self.assertRefused(text, ["%d: %s" % (line_of(text, "size = 11"),
                                              SIZE_MSG)])

    def test_initfail_without_options_at_the_handler_line(self):
        self.put("initfail")
        text = one_listener("initfail")
        self.assertRefused(text, ["%d: %s" % (line_of(text, "handler ="),
                                              SIZE_MSG)])

    def test_initfail_good_options_pass(self):
        self.put("initfail")
        rc, out, err, _ = self.check(one_listener(
            "initfail", "    options = { size = 10; };\n"))
        self.assertEqual((rc, out, err), (0, "configuration OK\n", []))

    def test_ctorabort_crashed_while_loading(self):
        self.put("ctorabort")
        text = one_listener("ctorabort")
        self.assertRefused(text, [(line_of(text, "handler ="),
                                   r'handler "ctorabort" crashed while '
                                   r'loading \(signal 6\b')])
        self.assertEqual([f for f in os.listdir(self.dir)
                          if f.startswith("core")], [])

    def test_missing_plugin(self):
        text = one_listener("missing")
        self.assertRefused(text, ['%d: unknown handler "missing": not '
                                  'compiled in, and no %s'
                                  % (line_of(text, "handler ="),
                                     self.so("missing"))])

    def test_dotdot_name_refused(self):
        # ../lower.so exists beside the handler_dir: a name with "../"
        # would reach it, so it must be refused, not resolved.
        shutil.copyfile(example(self, "lower"),
                        os.path.join(self.dir, "lower.so"))
        for spec in ("../lower", "h/../../lower", "./lower"):
            with self.subTest(handler=spec):
                text = one_listener(spec)
                self.assertRefused(text, [(line_of(text, "handler ="),
                                           r'handler "%s" must be a name'
                                           % re.escape(spec))])

    def test_missing_absolute_path(self):
        text = one_listener(self.so("nothere"))
        self.assertRefused(text, [(line_of(text, "handler ="),
                                   r"handler %s: No such file"
                                   % re.escape(self.so("nothere")))])

    def test_plugin_using_internal_symbol_refused(self):
        # Only ssd_* is exported: a plugin calling a daemon-internal
        # function does not load (RTLD_NOW: at load time, not at its
        # first request).
        so = compile_plugin(self, INTERNAL_SRC, self.so("peek"))
        text = one_listener("peek")
        self.assertRefused(text, [(line_of(text, "handler ="),
                                   r"%s: undefined symbol: xmalloc"
                                   % re.escape(so))])

    # -- all at once --------------------------------------------------------

    def all_plugins_text(self):
        for name in ("badabi", "nosym", "nohandle", "initfail", "ctorabort"):
            self.put(name)
        shutil.copyfile(example(self, "greet"), self.so("greet"))
        ls = []
        for i, (h, extra) in enumerate((
                ("badabi", ""), ("nosym", ""), ("nohandle", ""),
                ("initfail", "options = {\n      size = 11; };"),
                ("initfail", ""), ("ctorabort", ""),
                ("greet", "options = {\n      greeting = 5; };"),
                ("echo", ""))):
            ls.append('{ name = "l%d"; address = "127.0.0.1"; port = 0;\n'
                      '    handler = "%s"; %s }' % (i, h, extra))
        return ls

    def plugin_problems(self, text):
        lines = [i + 1 for i, ln in enumerate(text.splitlines())
                 if "handler =" in ln]
        return [
            "%d: %s: %s" % (lines[0], self.so("badabi"), REFUSALS["badabi"]),
            "%d: %s: %s" % (lines[1], self.so("nosym"), REFUSALS["nosym"]),
            "%d: %s: %s" % (lines[2], self.so("nohandle"),
                            REFUSALS["nohandle"]),
            "%d: %s" % (line_of(text, "size = 11"), SIZE_MSG),
            "%d: %s" % (lines[4], SIZE_MSG),
            (lines[5], r'handler "ctorabort" crashed while loading '
                       r'\(signal 6\b'),
            '%d: "greeting" must be a string' % line_of(text,
                                                        "greeting = 5"),
        ]

    def test_every_plugin_problem_in_one_run(self):
        ls = self.all_plugins_text()
        text = conf(*ls, globals_='handler_dir = "@H@";')
        text = text.replace("@H@", self.h)
        self.assertRefused(text, self.plugin_problems(text))

    @unittest.expectedFailure
    def test_config_errors_reported_with_plugin_problems(self):
        # Daemon bug: a handler problem found by config_load (unknown
        # name, "../") makes main() skip handler_prepare(), so the
        # plugins' own problems go unreported in that -t run.
        ls = self.all_plugins_text()
        ls.insert(0, '{ name = "m"; address = "127.0.0.1"; port = 0;\n'
                     '    handler = "missing"; }')
        ls.insert(1, '{ name = "u"; address = "127.0.0.1"; port = 0;\n'
                     '    handler = "../h/lower"; }')
        text = conf(*ls, globals_='handler_dir = "@H@";')
        text = text.replace("@H@", self.h)
        want = ['%d: unknown handler "missing": not compiled in, and no %s'
                % (line_of(text, '"missing"'), self.so("missing")),
                (line_of(text, '"../h/lower"'),
                 r'handler "\.\./h/lower" must be a name')]
        self.assertRefused(text, want + self.plugin_problems(text))


class StartRefusedTests(DaemonTestCase):
    """The daemon started on a broken plugin exits 1 before binding."""

    CASES = (
        ("badabi", "", lambda so: re.escape("%s: %s" % (
            so, REFUSALS["badabi"]))),
        ("nosym", "", lambda so: re.escape("%s: %s" % (
            so, REFUSALS["nosym"]))),
        ("nohandle", "", lambda so: re.escape("%s: %s" % (
            so, REFUSALS["nohandle"]))),
        ("initfail", "options = { size = 11; };",
         lambda so: re.escape(SIZE_MSG)),
        ("initfail", "", lambda so: re.escape(SIZE_MSG)),
        ("ctorabort", "", lambda so: r'handler "ctorabort" crashed while '
                                     r'loading \(signal 6\b'),
        ("missing", "", lambda so: re.escape('unknown handler "missing": '
                                             'not compiled in, and no %s'
                                             % so)),
        ("../h/hotv1", "", lambda so: r'handler "\.\./h/hotv1" must be a '
                                      r'name'),
    )

    def test_exit_1_before_binding(self):
        for spec, extra, msg in self.CASES:
            with self.subTest(handler=spec, options=extra):
                name = spec.rsplit("/", 1)[-1]
                text = ('handler_dir = "@DIR@/h";\n'
                        'listeners = (\n'
                        '  { name = "ok"; address = "@DIR@/ok.sock";\n'
                        '    handler = "echo"; },\n'
                        '  { name = "p"; address = "127.0.0.1"; port = 0;\n'
                        '    handler = "%s"; %s }\n'
                        ');\n' % (spec, extra))
                d = self.daemon(text, start=False, ready=False,
                                rlimits=NO_CORE)
                os.mkdir(d.path("h"))
                if name != "missing":
                    shutil.copyfile(fixture(self, name),
                                    d.path("h/%s.so" % name))
                d.start()
                self.assertEqual(d.wait_exit(), 1, log_tail(d.log()))
                where = line_of(text, 'handler = "%s"' % spec)
                if "size" in extra:
                    where = line_of(text, "size = 11")
                self.assertRegex(d.log(), r"%s:%d: %s" % (
                    re.escape(d.conf_path), where,
                    msg(d.path("h/%s.so" % name))))
                self.assertFalse(d.has_notify("READY=1"))
                self.assertNotIn("listening on", d.log())
                self.assertFalse(os.path.exists(d.path("ok.sock")),
                                 "a listener was bound")
                d.close()


# ---------------------------------------------------------------------------
# sockserverd -L.


class ListTests(unittest.TestCase):

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="ssd-plugins-")
        self.addCleanup(shutil.rmtree, self.dir, True)
        self.h = os.path.join(self.dir, "h")
        os.mkdir(self.h)

    def listing(self, handler="echo"):
        with open(os.path.join(self.dir, CONF), "w") as f:
            f.write('handler_dir = "%s";\nlisteners = ( { name = "e"; '
                    'address = "127.0.0.1"; port = 0; handler = "%s"; } );'
                    '\n' % (self.h, handler))
        rc, out, err = run_ssd(["-L", "-c", CONF], cwd=self.dir)
        self.assertEqual(rc, 0, "-L exit status; stderr:\n%s" % err)
        rows = {}
        for ln in out.splitlines():
            name, origin, rest = (ln.split(None, 2) + ["", ""])[:3]
            self.assertNotIn(name, rows, "%s listed twice:\n%s"
                             % (name, out))
            rows[name] = (origin, rest)
        return rows, out, err

    def test_every_fixture_listed_with_its_outcome(self):
        for name in FIXTURES:
            shutil.copyfile(fixture(self, name), os.path.join(
                self.h, name + ".so"))
        for name in ("lower", "greet"):
            shutil.copyfile(example(self, name), os.path.join(
                self.h, name + ".so"))
        # Not plugins at all: a text file and an empty one.
        with open(os.path.join(self.h, "junk.so"), "w") as f:
            f.write("this is not an ELF object\n")
        open(os.path.join(self.h, "empty.so"), "w").close()
        with open(os.path.join(self.h, "README"), "w") as f:
            f.write("not listed: no .so\n")
        rows, out, err = self.listing()
        self.assertEqual(err, "")
        so = lambda n: os.path.join(self.h, n + ".so")   # noqa: E731
        want = {
            "badabi": "refused: %s: %s" % (so("badabi"), REFUSALS["badabi"]),
            "nosym": "refused: %s: %s" % (so("nosym"), REFUSALS["nosym"]),
            "nohandle": "refused: %s: %s" % (so("nohandle"),
                                             REFUSALS["nohandle"]),
            "initfail": "test fixture: checks its options",
            "hotv1": "test fixture: version 1",
            "hotv2": "test fixture: version 2",
            "crash": "test fixture: crashes on request",
            "lower": "socketserver tutorial: replies in lower case",
            "greet": "example: greets with options.greeting, numbers lines",
        }
        for name, text in want.items():
            with self.subTest(plugin=name):
                self.assertEqual(rows.get(name), ("plugin", text), out)
        with self.subTest(plugin="ctorabort"):
            origin, text = rows.get("ctorabort", (None, ""))
            self.assertEqual(origin, "plugin", out)
            self.assertRegex(text, r"^refused: %s crashed while loading "
                             r"\(signal 6\b" % re.escape(so("ctorabort")))
        for name in ("junk", "empty"):
            with self.subTest(plugin=name):
                origin, text = rows.get(name, (None, ""))
                self.assertEqual(origin, "plugin", out)
                self.assertTrue(text.startswith("refused: "), text)
        # Builtins first, then one line per .so, nothing else.
        self.assertEqual(rows.get("echo", ("",))[0], "builtin")
        plugins = [n for n, (o, _) in rows.items() if o == "plugin"]
        self.assertEqual(sorted(plugins), sorted(
            list(FIXTURES) + ["lower", "greet", "junk", "empty"]))
        self.assertEqual([o for o, _ in rows.values()],
                         sorted((o for o, _ in rows.values()),
                                key=lambda o: o != "builtin"),
                         "builtins are not listed first:\n" + out)
        self.assertEqual([f for f in os.listdir(self.dir)
                          if f.startswith("core")], [])

    def test_list_survives_a_config_using_a_crashing_plugin(self):
        shutil.copyfile(fixture(self, "ctorabort"),
                        os.path.join(self.h, "ctorabort.so"))
        rows, out, _ = self.listing(handler="ctorabort")
        self.assertIn("echo", rows)
        self.assertIn("crashed while loading", rows["ctorabort"][1])


# ---------------------------------------------------------------------------
# The author's kit: header and .pc as installed, a plugin built outside.


UP_SRC = r"""
#include <ctype.h>
#include <sockserverd.h>

static int
up_handle(struct ssd_request *rq)
{
	char	 buf[4096];
	ssize_t	 n;

	while ((n = ssd_read(rq, buf, sizeof(buf))) > 0) {
		for (ssize_t i = 0; i < n; i++)
			buf[i] = (char)toupper((unsigned char)buf[i]);
		if (ssd_write(rq, buf, (size_t)n) == -1)
			return -1;
	}
	return n == 0 ? 0 : -1;
}

SSD_HANDLER(up) = {
	.abi = SSD_ABI_VERSION,
	.name = "up",
	.description = "out of tree: upper-case echo",
	.handle = up_handle,
};
"""

INTERNAL_SRC = r"""
#include <sockserverd.h>

void *xmalloc(size_t);		/* the daemon's, not exported */

static int
peek_handle(struct ssd_request *rq)
{
	return ssd_write(rq, xmalloc(1), 1);
}

SSD_HANDLER(peek) = {
	.abi = SSD_ABI_VERSION,
	.name = "peek",
	.handle = peek_handle,
};
"""

# Variables of the Makefile that choose the flavour or the paths: the
# install below sets its own, whatever `make integration` was given.
MAKE_VARS = ("MAKEFLAGS", "MFLAGS", "MAKEOVERRIDES", "MAKELEVEL",
             "GNUMAKEFLAGS", "B", "SSD", "SANITIZER", "DEBUG", "PREFIX",
             "DESTDIR", "SBINDIR", "LIBDIR", "INCLUDEDIR", "SYSCONFDIR",
             "MANDIR", "UNITDIR", "HANDLERDIR", "PKG_CONFIG_PATH",
             "PKG_CONFIG_LIBDIR", "PKG_CONFIG_SYSROOT_DIR")


class OutOfTreeTests(DaemonTestCase):
    """`make install DESTDIR=... PREFIX=/usr`, then a plugin built the way
    an author outside the tree builds it, from the installed .pc."""

    HANDLERDIR = "/usr/lib/sockserverd/handlers"

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.tmp = None
        cls.skip = None
        missing = [t for t in ("make", "cc", "pkg-config")
                   if shutil.which(t) is None]
        if missing:
            cls.skip = "not installed: %s" % " ".join(missing)
            return
        env = {k: v for k, v in os.environ.items() if k not in MAKE_VARS}
        r = subprocess.run(["pkg-config", "--exists", "libconfig"], env=env,
                           timeout=60)
        if r.returncode != 0:
            cls.skip = "pkg-config does not find libconfig"
            return
        cls.tmp = tempfile.mkdtemp(prefix="ssd-install-")
        cls.root = os.path.join(cls.tmp, "root")
        # The install uses a build directory of its own: PREFIX=/usr
        # changes the paths compiled in, so installing from the binary's
        # own $(B) would rebuild the binary under test (make rebuilds
        # what embeds a path when the paths change).
        b = os.path.join(cls.tmp, "build")
        # The tree was built, so its dependencies are here: the stamp
        # keeps make from running scripts/deps.sh (which may install
        # packages) for this build directory.
        os.mkdir(b)
        open(os.path.join(b, ".deps-build"), "w").close()
        cmd = ["make", "-C", ROOT, "-j2", "install", "B=" + b,
               "SSD=" + os.path.join(b, "sockserverd"),
               "DESTDIR=" + cls.root, "PREFIX=/usr"]
        r = subprocess.run(cmd, env=env, stdin=subprocess.DEVNULL,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           universal_newlines=True, timeout=600)
        if r.returncode != 0:
            shutil.rmtree(cls.tmp, ignore_errors=True)
            cls.tmp = None
            raise AssertionError("%s failed (status %d):\n%s"
                                 % (" ".join(cmd), r.returncode,
                                    log_tail(r.stdout, 80)))
        cls.pcdir = os.path.join(cls.root, "usr", "lib", "pkgconfig")
        cls.env = dict(env, PKG_CONFIG_PATH=cls.pcdir,
                       PKG_CONFIG_SYSROOT_DIR=cls.root)

    @classmethod
    def tearDownClass(cls):
        if cls.tmp is not None:
            shutil.rmtree(cls.tmp, ignore_errors=True)
        super().tearDownClass()

    def setUp(self):
        if self.skip is not None:
            self.skipTest(self.skip)

    def pkg_config(self, *args, sysroot=True):
        env = dict(self.env)
        if not sysroot:
            del env["PKG_CONFIG_SYSROOT_DIR"]
        r = subprocess.run(["pkg-config"] + list(args) + ["sockserverd"],
                           env=env, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, universal_newlines=True,
                           timeout=60)
        self.assertEqual(r.returncode, 0, "pkg-config %s: %s"
                         % (" ".join(args), r.stderr))
        return r.stdout.strip()

    def build_up(self):
        """up.so, built from the installed kit, dropped into the installed
        handler directory: its path."""
        d = tempfile.mkdtemp(prefix="ssd-up-", dir=self.tmp)
        with open(os.path.join(d, "up.c"), "w") as f:
            f.write(UP_SRC)
        cflags = self.pkg_config("--cflags")
        r = subprocess.run("cc -shared -fPIC %s -o up.so up.c" % cflags,
                           shell=True, cwd=d, env=self.env,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           universal_newlines=True, timeout=120)
        self.assertEqual(r.returncode, 0, "cc %s:\n%s" % (cflags, r.stdout))
        hd = self.root + self.HANDLERDIR
        dst = os.path.join(hd, "up.so")
        if not os.path.exists(dst):
            install_plugin(os.path.join(d, "up.so"), dst)
        return dst

    def test_kit_is_installed(self):
        self.assertEqual(self.pkg_config("--variable=handlerdir",
                                         sysroot=False), self.HANDLERDIR)
        # pkgconf puts the sysroot in front of variables, pkg-config does
        # not: either way it names the same directory.
        self.assertIn(self.pkg_config("--variable=handlerdir"),
                      (self.HANDLERDIR, self.root + self.HANDLERDIR))
        cflags = shlex.split(self.pkg_config("--cflags"))
        self.assertIn("-I" + os.path.join(self.root, "usr", "include"),
                      cflags)
        with open(os.path.join(self.root, "usr/include/sockserverd.h"),
                  "rb") as a, \
                open(os.path.join(ROOT, "include/sockserverd.h"), "rb") as b:
            self.assertEqual(a.read(), b.read())
        for name in ("lower", "greet"):
            self.assertTrue(os.path.exists(os.path.join(
                self.root + self.HANDLERDIR, name + ".so")), name)

    def test_served_under_every_model_stream_and_dgram(self):
        up = self.build_up()
        models = ("sync", "thread", "fork", "event", "event-workers")
        ls = []
        for m in models:
            ls.append(model_conf("s-" + m, m, handler="up"))
            ls.append(model_conf("d-" + m, m, handler="up", type="dgram"))
        d = self.daemon(conf(*ls, globals_='handler_dir = "%s";'
                             % os.path.dirname(up)))
        for m in models:
            with self.subTest(model=m, type="stream"):
                s = d.connect("s-" + m)
                self.assertEqual(exchange(s, b"Hello, World 1\n"),
                                 b"HELLO, WORLD 1\n")
                self.assertEqual(exchange(s, b"again\n"), b"AGAIN\n")
                s.shutdown(socket.SHUT_WR)
                self.assertEqual(recv_until_eof(s), b"")
                s.close()
            with self.subTest(model=m, type="dgram"):
                u = d.dgram("d-" + m)
                u.send(b"datagram MiXeD")
                self.assertEqual(recv_within(u), b"DATAGRAM MIXED")
                u.close()
        self.assertRegex(d.log(), r"listener=s-sync: listening on .*"
                         r"handler up")
        # -L names it beside the installed examples.
        rc, out, err = run_ssd(["-L", "-c", d.conf_path], cwd=d.dir)
        self.assertEqual(rc, 0, err)
        self.assertRegex(out, r"(?m)^up +plugin +out of tree: upper-case "
                         r"echo$")
        self.assertRegex(out, r"(?m)^lower +plugin +socketserver")


# ---------------------------------------------------------------------------
# Hot replacement and reload.


class HotCases:
    """Replacing a plugin under a running daemon; MODEL is the listener's
    concurrency model (not sync: it serves one request at a time)."""

    MODEL = None

    def plugin_daemon(self, *listeners):
        """A daemon, not started, whose handler_dir is its own h/, and whose
        $TMPDIR (where replaced plugins get their private names) is its own
        tmp/, so that nothing it leaves there goes unnoticed."""
        d = self.daemon(conf(*listeners, globals_='handler_dir = "@DIR@/h";'),
                        start=False, rlimits=NO_CORE)
        os.mkdir(d.path("h"))
        os.mkdir(d.path("tmp"))
        d.extra_env["TMPDIR"] = d.path("tmp")
        return d

    def start_hot(self):
        """A daemon whose listener "hot" serves handler_dir/hot.so, a copy
        of hotv1.so: (daemon, hot.so path)."""
        d = self.plugin_daemon(model_conf("hot", self.MODEL, handler="hot"))
        hot = d.path("h/hot.so")
        install_plugin(fixture(self, "hotv1"), hot)
        d.start()
        return d, hot

    def assertReloaded(self, status):
        """The STATUS= of a reload that took (it does not say "failed")."""
        self.assertTrue(status and "fail" not in status, "STATUS=%s" % status)

    def assertReloadFailed(self, status):
        self.assertRegex(status, r"reload.* failed|failed.* reload",
                         "STATUS= of a failed reload")

    def assertMapped(self, d, ino, times, what):
        try:
            wait_for(lambda: loads_of(d.pid, ino) == times, 5,
                     what="%s loaded %d time(s)" % (what, times))
        except AssertionError:
            self.fail("%s (inode %d) is loaded %d times, not %d"
                      % (what, ino, loads_of(d.pid, ino), times))

    def test_new_code_for_new_requests_old_for_old(self):
        d, hot = self.start_hot()
        old_ino = os.stat(hot).st_ino
        a = d.connect("hot")
        self.assertEqual(exchange(a, b"a1\n"), b"v1 a1\n")
        if loads_of(d.pid, old_ino) != 1:
            self.skipTest("/proc/PID/maps does not show the plugin's inode"
                          " (%d) once" % old_ino)
        install_plugin(fixture(self, "hotv2"), hot)
        new_ino = os.stat(hot).st_ino
        self.assertNotEqual(new_ino, old_ino)
        status = hup(d)
        self.assertReloaded(status)
        self.assertEqual(os.listdir(d.path("tmp")), [],
                         "the private name of the new hot.so is left")
        b = d.connect("hot")
        self.assertEqual(exchange(b, b"b1\n"), b"v2 b1\n")
        self.assertEqual(exchange(a, b"a2\n"), b"v1 a2\n")
        self.assertEqual(exchange(b, b"b2\n"), b"v2 b2\n")
        # Both versions are loaded while A lasts.
        self.assertMapped(d, old_ino, 1, "the old hot.so")
        self.assertMapped(d, new_ino, 1, "the new hot.so")
        for s in (a, b):
            s.shutdown(socket.SHUT_WR)
            self.assertEqual(recv_until_eof(s), b"")
            s.close()
        # The old code goes once its last request is over; the new stays.
        try:
            wait_for(lambda: loads_of(d.pid, old_ino) == 0, 10,
                     what="the old hot.so unloaded")
        except AssertionError:
            self.fail("the old hot.so (inode %d) is still mapped after its "
                      "last request ended:\n%s"
                      % (old_ino, open("/proc/%d/maps" % d.pid).read()))
        self.assertMapped(d, new_ino, 1, "the new hot.so")
        c = d.connect("hot")
        self.assertEqual(exchange(c, b"c\n"), b"v2 c\n")
        c.close()
        self.assertStopsCleanly(d)

    def test_unchanged_plugin_is_not_loaded_twice(self):
        lower = example(self, "lower")
        d = self.plugin_daemon(
            model_conf("l1", self.MODEL, handler="lower"),
            model_conf("l2", self.MODEL, handler="lower"))
        install_plugin(lower, d.path("h/lower.so"))
        ino = os.stat(d.path("h/lower.so")).st_ino
        d.start()
        a = d.connect("l1")
        self.assertEqual(exchange(a, b"BEFORE\n"), b"before\n")
        if loads_of(d.pid, ino) != 1:
            self.fail("lower.so (inode %d), used by two listeners, is "
                      "loaded %d times" % (ino, loads_of(d.pid, ino)))
        for i in range(2):
            status = hup(d)
            self.assertReloaded(status)
            self.assertEqual(loads_of(d.pid, ino), 1,
                             "lower.so loaded again by reload %d" % (i + 1))
        self.assertEqual(exchange(a, b"OLD\n"), b"old\n")
        for name in ("l1", "l2"):
            b = d.connect(name)
            self.assertEqual(exchange(b, b"NEW\n"), b"new\n")
            b.close()
        a.close()
        self.assertEqual(loads_of(d.pid, ino), 1)
        self.assertStopsCleanly(d)

    def test_constructor_crash_on_reload_keeps_old_code(self):
        d, hot = self.start_hot()
        a = d.connect("hot")
        self.assertEqual(exchange(a, b"a\n"), b"v1 a\n")
        install_plugin(fixture(self, "ctorabort"), hot)
        status = hup(d)
        self.assertTrue(d.running(), "the daemon died")
        self.assertReloadFailed(status)
        d.wait_log(r"%s:%d: handler \"hot\" crashed while loading "
                   r"\(signal 6\b" % (re.escape(d.conf_path),
                                      line_of(open(d.conf_path).read(),
                                              'handler = "hot"')))
        d.wait_log(r"reload failed")
        # The old code goes on serving, old and new connections alike.
        self.assertEqual(exchange(a, b"a2\n"), b"v1 a2\n")
        b = d.connect("hot")
        self.assertEqual(exchange(b, b"b\n"), b"v1 b\n")
        b.close()
        # A good file and another SIGHUP: the new code takes over.
        install_plugin(fixture(self, "hotv2"), hot)
        status = hup(d)
        self.assertReloaded(status)
        c = d.connect("hot")
        self.assertEqual(exchange(c, b"c\n"), b"v2 c\n")
        self.assertEqual(exchange(a, b"a3\n"), b"v1 a3\n")
        for s in (a, c):
            s.close()
        self.assertEqual([f for f in os.listdir(d.dir)
                          if f.startswith("core")], [])
        self.assertStopsCleanly(d)

    def test_init_failing_on_reload_keeps_old_config(self):
        d = self.plugin_daemon(model_conf(
            "i", self.MODEL, handler="initfail",
            extra="options = {\n    size = 5;\n  };"))
        text = open(d.conf_path).read()
        install_plugin(fixture(self, "initfail"), d.path("h/initfail.so"))
        d.start()
        self.assertEqual(d.echo_once("i", b""), b"size 5\n")
        bad = text.replace("size = 5;", "size = 0;")
        with open(d.conf_path, "w") as f:
            f.write(d.expand(bad))
        status = hup(d)
        self.assertTrue(d.running())
        self.assertReloadFailed(status)
        d.wait_log(r"%s:%d: %s" % (re.escape(d.conf_path),
                                   line_of(bad, "size = 0"),
                                   re.escape(SIZE_MSG)))
        self.assertEqual(d.echo_once("i", b""), b"size 5\n")
        self.assertStopsCleanly(d)

    def test_init_crash_on_reload_keeps_old_config(self):
        d, hot = self.start_hot()
        so = compile_plugin(self, INITCRASH_SRC, d.path("initcrash.so"))
        self.assertEqual(d.echo_once("hot", b"x\n"), b"v1 x\n")
        install_plugin(so, hot)
        status = hup(d)
        self.assertTrue(d.running(), "the daemon died")
        self.assertReloadFailed(status)
        d.wait_log(r"%s:%d: handler \"hot\" crashed while loading "
                   r"\(signal %d\b" % (re.escape(d.conf_path),
                                       line_of(open(d.conf_path).read(),
                                               'handler = "hot"'),
                                       signal.SIGILL))
        self.assertEqual(d.echo_once("hot", b"y\n"), b"v1 y\n")
        self.assertStopsCleanly(d)


INITCRASH_SRC = r"""
#include <signal.h>
#include <sockserverd.h>

static int
initcrash_init(void **instance, const config_setting_t *options)
{
	(void)instance;
	(void)options;
	raise(SIGILL);	/* not SIGSEGV, which ASan would catch and report */
	return 0;
}

static int
initcrash_handle(struct ssd_request *rq)
{
	(void)rq;
	return 0;
}

SSD_HANDLER(hot) = {
	.abi = SSD_ABI_VERSION,
	.name = "hot",
	.init = initcrash_init,
	.handle = initcrash_handle,
};
"""


class HotThreadTests(HotCases, DaemonTestCase):
    MODEL = "thread"

    def test_crash_while_loading_leaves_no_private_name(self):
        # The probe child makes the replaced plugin's private name
        # ($TMPDIR/sockserverd-plugin.PID.XXXXXX/N.so) and dies in dlopen
        # before it can remove it: the daemon cleans up after it.
        d, hot = self.start_hot()
        install_plugin(fixture(self, "ctorabort"), hot)
        self.assertReloadFailed(hup(d))
        self.assertTrue(d.running())
        self.assertEqual(os.listdir(d.path("tmp")), [],
                         "left in $TMPDIR by a failed reload")

    @skip_under_valgrind("valgrind itself needs a writable $TMPDIR")
    def test_replacement_needs_a_writable_tmpdir(self):
        # A replaced file is loaded under a private name made in $TMPDIR:
        # without one, the reload fails and the old code keeps serving.
        v1 = fixture(self, "hotv1")
        d = self.daemon(conf(model_conf("hot", self.MODEL, handler="hot"),
                             globals_='handler_dir = "@DIR@/h";'),
                        start=False, env={"TMPDIR": "/nonexistent/ssd"})
        os.mkdir(d.path("h"))
        hot = d.path("h/hot.so")
        install_plugin(v1, hot)
        d.start()
        self.assertEqual(d.echo_once("hot", b"x\n"), b"v1 x\n")
        install_plugin(fixture(self, "hotv2"), hot)
        status = hup(d)
        self.assertReloadFailed(status)
        d.wait_log(r"%s:\d+: %s: cannot load a new copy: "
                   % (re.escape(d.conf_path), re.escape(hot)))
        self.assertEqual(d.echo_once("hot", b"y\n"), b"v1 y\n")
        self.assertStopsCleanly(d)


class HotForkTests(HotCases, DaemonTestCase):
    MODEL = "fork"


class HotEventTests(HotCases, DaemonTestCase):
    MODEL = "event"


# ---------------------------------------------------------------------------
# The example plugins.


class ExampleTests(DaemonTestCase):

    def test_lower_by_name_from_handler_dir(self):
        example(self, "lower")
        d = self.daemon(conf(model_conf("l", "event", handler="lower"),
                             globals_='handler_dir = "%s";' % plugin_dir()))
        s = d.connect("l")
        self.assertEqual(exchange(s, b"Hello WORLD\n"), b"hello world\n")
        self.assertEqual(exchange(s, b"EXIT please\n"), b"exit please\n")
        send_all(s, b"exit\n")
        self.assertTrue(closed_by_peer(s), "\"exit\" did not end it")

    def test_greet(self):
        example(self, "greet")
        d = self.daemon(conf(
            model_conf("g", "event", handler="greet",
                       extra='options = { greeting = "welcome"; };'),
            model_conf("h", "thread", handler="greet"),
            model_conf("u", "sync", handler="greet", type="dgram",
                       extra='options = { greeting = "hi"; };'),
            globals_='handler_dir = "%s";' % plugin_dir()))
        s = d.connect("g")
        port = s.getsockname()[1]
        self.assertEqual(recv_line(s), b"welcome, 127.0.0.1:%d\n" % port)
        self.assertEqual(exchange(s, b"first\n"), b"1: first\n")
        self.assertEqual(exchange(s, b"second\n"), b"2: second\n")
        # Per-request data: another client counts from 1 again.
        t = d.connect("g")
        self.assertEqual(recv_line(t), b"welcome, 127.0.0.1:%d\n"
                         % t.getsockname()[1])
        self.assertEqual(exchange(t, b"other\n"), b"1: other\n")
        self.assertEqual(exchange(s, b"third\n"), b"3: third\n")
        s.shutdown(socket.SHUT_WR)
        self.assertEqual(recv_until_eof(s), b"")
        # finish logs the line count with the listener and the peer.
        d.wait_log(r"listener=g peer=127\.0\.0\.1:%d: 3 lines" % port)
        t.close()
        # Without options: the default greeting.
        h = d.connect("h")
        self.assertEqual(recv_line(h), b"hello, 127.0.0.1:%d\n"
                         % h.getsockname()[1])
        h.close()
        # A datagram is one request: the greeting and its one line.
        u = d.dgram("u")
        u.send(b"only\n")
        self.assertEqual(recv_within(u), b"hi, 127.0.0.1:%d\n1: only\n"
                         % u.getsockname()[1])
        d.wait_log(r"listener=u peer=127\.0\.0\.1:%d: 1 lines"
                   % u.getsockname()[1])
        self.assertStopsCleanly(d)

    def test_handler_page_examples_build_and_load(self):
        # The C examples of sockserverd-handler(3) are complete plugins.
        with open(os.path.join(ROOT, "man", "sockserverd-handler.3")) as f:
            page = f.read()
        blocks = [b.replace("\\e", "\\") for b in re.findall(
            r"(?ms)^\.Bd -literal[^\n]*\n(.*?)^\.Ed$", page)
            if "SSD_HANDLER(" in b]
        self.assertGreaterEqual(len(blocks), 2, "no C examples in the page")
        tmp = tempfile.mkdtemp(prefix="ssd-plugins-")
        self.addCleanup(shutil.rmtree, tmp, True)
        ls = []
        for i, src in enumerate(blocks):
            name = re.search(r"SSD_HANDLER\((\w+)\)", src).group(1)
            so = compile_plugin(self, src, os.path.join(
                tmp, "ex%d-%s.so" % (i, name)), extra=("-Werror", "-Wall"))
            ls.append('{ name = "ex%d"; address = "127.0.0.1"; port = 0; '
                      'handler = "%s"; }' % (i, so))
        with open(os.path.join(tmp, CONF), "w") as f:
            f.write(conf(*ls))
        self.assertEqual(run_ssd(["-t", "-c", CONF], cwd=tmp),
                         (0, "configuration OK\n", ""))

    def test_greet_wrong_type_is_a_t_error(self):
        example(self, "greet")
        with tempfile.TemporaryDirectory(prefix="ssd-plugins-") as tmp:
            for value in ("5", "true", '[ "a" ]'):
                with self.subTest(greeting=value):
                    text = ('handler_dir = "%s";\nlisteners = (\n'
                            '  { name = "g"; address = "127.0.0.1"; '
                            'port = 0; handler = "greet";\n'
                            '    options = {\n'
                            '      greeting = %s;\n'
                            '    }; }\n);\n' % (plugin_dir(), value))
                    with open(os.path.join(tmp, CONF), "w") as f:
                        f.write(text)
                    rc, out, err = run_ssd(["-t", "-c", CONF], cwd=tmp)
                    self.assertEqual((rc, out, err), (
                        1, "", '%s:%d: "greeting" must be a string\n'
                        % (CONF, line_of(text, "greeting ="))))


# ---------------------------------------------------------------------------
# What the daemon exports to plugins.


class ExportsTests(unittest.TestCase):

    # Symbols every ELF executable defines, and what sanitizer runtimes
    # linked into the binary add (interceptors, hooks).
    LINKER = {"__bss_start", "_edata", "_end", "_IO_stdin_used",
              "__data_start", "data_start", "__dso_handle"}
    SAN_PREFIXES = ("__asan", "__ubsan", "__lsan", "__tsan", "__sanitizer",
                    "__interceptor", "___interceptor", "__interception")

    def symbols(self):
        if shutil.which("nm") is None:
            self.skipTest("nm is not installed")
        r = subprocess.run(["nm", "-D", "--defined-only", binary()],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           universal_newlines=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        syms = []
        for ln in r.stdout.splitlines():
            f = ln.split()
            if len(f) >= 2:
                syms.append((f[-2], f[-1]))
        return syms

    def api(self):
        with open(os.path.join(ROOT, "include", "sockserverd.h")) as f:
            return set(re.findall(r"\b(ssd_[a-z_]+)\s*\(", f.read()))

    def test_only_ssd_functions_are_exported(self):
        syms = self.symbols()
        sanitized = any(n.startswith(self.SAN_PREFIXES) for _, n in syms) \
            or "/san-" in binary()
        funcs = {n for t, n in syms if t in "TWi"}
        api = self.api()
        self.assertTrue(api)
        self.assertEqual(sorted(api - funcs), [],
                         "API functions not exported")
        if sanitized:
            return      # interceptors: checked the API only
        self.assertEqual(sorted(n for n in funcs
                                if not n.startswith("ssd_")), [],
                         "functions other than ssd_* exported")
        # Data: ssd_* and what libc's copy relocations (name@VERSION)
        # and the linker put there; nothing of the daemon's own.
        data = sorted(n for t, n in syms
                      if t not in "TWi" and not n.startswith("ssd_")
                      and "@" not in n and n not in self.LINKER)
        self.assertEqual(data, [], "data symbols other than ssd_* exported")


if __name__ == "__main__":
    unittest.main()
