# SPDX-License-Identifier: ISC
"""The plugin python (issue 13): unchanged socketserver handler classes,
written to a temporary directory, served by sockserverd.

- The tutorial's MyTCPHandler, a StreamRequestHandler (rfile/wfile,
  readline), a UDP handler in the (data, socket) form, a
  DatagramRequestHandler and one reading self.server.settings give the
  same bytes under sockserverd as under CPython's own ThreadingTCPServer /
  UDPServer with the same client.
- sync, thread and fork; the thread model releases the GIL while a request
  waits (a silent client holds up nobody; two slow clients are served at
  once); fork serves each request in a child of its own.
- An exception is logged with its traceback and ends that request only;
  the listener's timeout raises socket.timeout in the handler; SIGHUP
  imports the module afresh while a request in progress finishes on the
  old code; SIGTERM cuts a request that outlives shutdown_timeout.
- Import errors, a syntax error, a missing class, a class that is not a
  BaseRequestHandler, an unknown option and the event model: FILE:LINE of
  the options (or of concurrency) for -t, at start and on reload (where
  the old code keeps serving).
- A TLS listener: the handler reads and writes plaintext.

Needs the plugin (build/plugins/python.so): skipped without it.
"""

import importlib.util
import os
import re
import shutil
import signal
import socket
import socketserver
import ssl
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
import unittest

from ssdtest import (IO_TIMEOUT, DaemonTestCase, Deadline, conf, exchange,
                     finish, plugin_dir, recv_exactly, recv_until_eof,
                     recv_within, run_binary, self_signed_cert, send_all,
                     wait_for)

PLUGIN = os.path.join(plugin_dir(), "python.so")

HANDLERS = '''
import os, socket, socketserver, threading, time

class MyTCPHandler(socketserver.BaseRequestHandler):
    """The socketserver tutorial's handler."""
    def handle(self):
        # self.request is the TCP socket connected to the client
        self.data = self.request.recv(1024).strip()
        # just send back the same data, but upper-cased
        self.request.sendall(self.data.upper())

class Lines(socketserver.StreamRequestHandler):
    """rfile/wfile: every line back upper-cased, numbered."""
    def handle(self):
        n = 0
        while True:
            line = self.rfile.readline()
            if not line:
                break
            n += 1
            self.wfile.write(b"%d %s" % (n, line.upper()))

class Text(socketserver.StreamRequestHandler):
    """makefile in text mode, as user code writes it."""
    def handle(self):
        r = self.connection.makefile("r", encoding="utf-8")
        w = self.connection.makefile("w", encoding="utf-8")
        for line in r:
            w.write("<%s>\\n" % line.strip()[::-1])
            w.flush()
        r.close()
        w.close()

class Loop(socketserver.BaseRequestHandler):
    """The tutorial's handler looped over the connection."""
    def handle(self):
        while True:
            data = self.request.recv(1024)
            if not data:
                return
            self.request.sendall(data.upper())

class RecvInto(socketserver.BaseRequestHandler):
    def handle(self):
        buf = bytearray(8)
        n = self.request.recv_into(buf)
        self.request.send(bytes(buf[:n]) + b"|" +
                          repr(self.request.getpeername() ==
                               self.client_address).encode() + b"|" +
                          repr(self.request.getsockname()[1] ==
                               self.server.server_address[1]).encode())

class MyUDPHandler(socketserver.BaseRequestHandler):
    """The tutorial's UDP handler: (data, socket)."""
    def handle(self):
        data = self.request[0].strip()
        socket = self.request[1]
        socket.sendto(data.upper(), self.client_address)

class Datagrams(socketserver.DatagramRequestHandler):
    def handle(self):
        self.wfile.write(b"got " + self.rfile.read()[::-1])

class Settings(socketserver.StreamRequestHandler):
    def handle(self):
        s = self.server.settings
        self.wfile.write(("%s %s %r %r %r\\n" % (
            s["greeting"], self.rfile.readline().decode().strip(),
            s.get("n"), s.get("ratio"), s.get("flags"))).encode())

class Boom(socketserver.BaseRequestHandler):
    def handle(self):
        if self.request.recv(100).startswith(b"boom"):
            raise ValueError("boom requested by the client")
        self.request.sendall(b"fine")

class Waits(socketserver.BaseRequestHandler):
    """Reports a timeout instead of ending with it."""
    def handle(self):
        try:
            self.request.recv(10)
        except socket.timeout as e:
            self.request.sendall(b"timeout: %r %r\\n" % (
                type(e).__name__, self.request.gettimeout()))

class Sleeper(socketserver.BaseRequestHandler):
    def handle(self):
        self.request.recv(10)
        time.sleep(0.5)
        self.request.sendall(b"%d" % threading.get_ident())

class Pid(socketserver.BaseRequestHandler):
    count = 0
    def handle(self):
        Pid.count += 1
        self.request.recv(10)
        self.request.sendall(b"%d %d" % (os.getpid(), Pid.count))

class Server(socketserver.BaseRequestHandler):
    def handle(self):
        srv = self.server
        self.request.sendall(repr((srv.listener, srv.socket_type,
                                   srv.timeout, srv.server_address[0],
                                   srv.server_address[1] > 0)).encode())

class NotAHandler:
    pass
'''

VERSIONED = '''
import socketserver

class Versioned(socketserver.BaseRequestHandler):
    def handle(self):
        self.request.sendall(b"%s start\\n" % VERSION)
        self.request.recv(100)
        self.request.sendall(b"%s end\\n" % VERSION)

VERSION = b"@VERSION@"
'''


def py_listener(name, cls, model="thread", type="stream", extra="",
                options=""):
    return ('{ name = "%s"; address = "127.0.0.1"; port = 0; type = "%s";\n'
            '  concurrency = "%s"; handler = "python"; %s\n'
            '  options = { path = "@DIR@/py"; module = "handlers";\n'
            '              class = "%s"; %s }; }'
            % (name, type, model, extra, cls, options))


def py_conf(*listeners, globals_=""):
    return conf(*listeners, globals_='handler_dir = "%s"; %s'
                % (plugin_dir(), globals_))


def line_of(text, needle, after=0):
    for i, ln in enumerate(text.splitlines(), 1):
        if i > after and needle in ln:
            return i
    raise AssertionError("%r not in %r" % (needle, text))


@unittest.skipUnless(os.path.exists(PLUGIN), "no %s" % PLUGIN)
class PythonTestCase(DaemonTestCase):

    def pydaemon(self, conf_text, module=HANDLERS, **kw):
        d = self.daemon(conf_text, start=False, **kw)
        os.mkdir(d.path("py"))
        self.write(d, "handlers", module)
        d.start()
        return d

    def write(self, d, name, text):
        path = d.path("py/%s.py" % name)
        with open(path + ".tmp", "w") as f:
            f.write(text)
        os.replace(path + ".tmp", path)


class SameBytesAsCPython(PythonTestCase):
    """Each class under CPython's socketserver and under sockserverd,
    with the same client: the same bytes."""

    SETTINGS = {"greeting": "hi", "n": 3, "ratio": 0.5,
                "flags": [True, False]}

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="ssd-py-")
        path = os.path.join(cls.tmp, "handlers.py")
        with open(path, "w") as f:
            f.write(HANDLERS)
        spec = importlib.util.spec_from_file_location("ssd_py_handlers",
                                                      path)
        cls.mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(cls.mod)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def cpython(self, cls, dgram=False):
        """The address of CPython's own server for cls (stopped at
        cleanup)."""
        kind = socketserver.UDPServer if dgram else \
            socketserver.ThreadingTCPServer
        kind.allow_reuse_address = True
        srv = kind(("127.0.0.1", 0), getattr(self.mod, cls))
        srv.daemon_threads = True
        srv.settings = self.SETTINGS
        t = threading.Thread(target=srv.serve_forever, kwargs={
            "poll_interval": 0.05}, daemon=True)
        t.start()

        def stop():
            srv.shutdown()
            srv.server_close()
            t.join(IO_TIMEOUT)
        self.addCleanup(stop)
        return srv.server_address

    def talk(self, addr, payload, dgram=False):
        if dgram:
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.settimeout(IO_TIMEOUT)
            s.connect(addr)
            s.send(payload)
            r = recv_within(s)
            s.close()
            return r
        s = socket.create_connection(addr, timeout=IO_TIMEOUT)
        send_all(s, payload)
        s.shutdown(socket.SHUT_WR)
        r = recv_until_eof(s)
        s.close()
        return r

    def test_same_bytes(self):
        cases = [
            ("MyTCPHandler", False, b"hello, world\n"),
            ("Lines", False, b"one\ntwo\nthree without newline"),
            ("Text", False, "d\u00e9j\u00e0 vu\nabc\n".encode()),
            ("Settings", False, b"there\n"),
            ("RecvInto", False, b"12345"),
            ("MyUDPHandler", True, b"a datagram \n"),
            ("Datagrams", True, b"reversed"),
        ]
        settings = ('settings = { greeting = "hi"; n = 3; ratio = 0.5; '
                    'flags = [ true, false ]; };')
        for model in ("thread", "sync", "fork"):
            ls = [py_listener("%s-%s" % (c, model), c, model,
                              type="dgram" if dg else "stream",
                              options=settings)
                  for c, dg, _ in cases]
            d = self.pydaemon(py_conf(*ls))
            for c, dg, payload in cases:
                with self.subTest(handler=c, model=model):
                    want = self.talk(self.cpython(c, dg), payload, dg)
                    got = self.talk(d.listener("%s-%s" % (c, model)).addr,
                                    payload, dg)
                    self.assertEqual(got, want)
                    self.assertTrue(got)
            self.assertStopsCleanly(d)
            self.assertNotRegex(d.log(), r"error:")

    def test_server_attributes(self):
        d = self.pydaemon(py_conf(py_listener("srv", "Server",
                                              extra="timeout = 7;")))
        s = d.connect("srv")
        self.assertEqual(recv_until_eof(s),
                         repr(("srv", socket.SOCK_STREAM, 7.0,
                               "127.0.0.1", True)).encode())


class Models(PythonTestCase):

    def test_thread_releases_the_gil_while_waiting(self):
        d = self.pydaemon(py_conf(py_listener("loop", "Loop"),
                                  py_listener("slow", "Sleeper")))
        # A client that says nothing holds a thread in recv...
        idle = d.connect("loop")
        self.assertEqual(exchange(idle, b"first"), b"FIRST")
        # ...and another is served meanwhile.
        s = d.connect("loop")
        for i in range(20):
            self.assertEqual(exchange(s, b"x%d" % i), b"X%d" % i)
        finish(s)
        # Two slow requests (0.5 s each) at once take about 0.5 s.
        a, b = d.connect("slow"), d.connect("slow")
        t0 = time.monotonic()
        a.sendall(b"go")
        b.sendall(b"go")
        ra, rb = recv_until_eof(a), recv_until_eof(b)
        took = time.monotonic() - t0
        self.assertNotEqual(ra, rb)     # two threads
        self.assertLess(took, 0.95, "not concurrent: %.2fs" % took)
        self.assertEqual(exchange(idle, b"still"), b"STILL")
        finish(idle)

    def test_fork_serves_each_request_in_a_child(self):
        d = self.pydaemon(py_conf(py_listener("pid", "Pid", "fork"),
                                  py_listener("thr", "Loop", "thread")))
        idle = d.connect("thr")     # a thread with a Python state
        self.assertEqual(exchange(idle, b"a"), b"A")
        seen = set()
        for _ in range(3):
            s = d.connect("pid")
            s.sendall(b"x")
            pid, count = recv_until_eof(s).split()
            self.assertNotEqual(int(pid), d.pid)
            self.assertEqual(count, b"1")   # the child's copy only
            seen.add(pid)
        self.assertEqual(len(seen), 3)
        finish(idle)
        self.assertStopsCleanly(d)

    def test_sync_one_at_a_time(self):
        d = self.pydaemon(py_conf(py_listener("s", "Loop", "sync")))
        a = d.connect("s")
        self.assertEqual(exchange(a, b"a"), b"A")
        b = d.connect("s")
        b.sendall(b"b")
        b.settimeout(0.3)
        self.assertRaises(socket.timeout, b.recv, 10)
        finish(a)
        self.assertEqual(recv_exactly(b, 1), b"B")
        finish(b)


class Errors(PythonTestCase):

    def test_exception_logged_with_traceback_others_served(self):
        d = self.pydaemon(py_conf(py_listener("b", "Boom")))
        s = d.connect("b")
        s.sendall(b"boom")
        self.assertEqual(recv_until_eof(s), b"")
        d.wait_log(r"ValueError: boom requested by the client")
        log = d.log()
        self.assertRegex(log, r"error: listener=b peer=127\.0\.0\.1:\d+: "
                         r"python: exception in handlers\.Boom")
        self.assertRegex(log, r"error: listener=b peer=\S+ Traceback "
                         r"\(most recent call last\):")
        self.assertRegex(log, r'File ".*/py/handlers\.py", line \d+, in '
                         r'handle')
        s = d.connect("b")
        s.sendall(b"ok")
        self.assertEqual(recv_until_eof(s), b"fine")
        self.assertStopsCleanly(d)

    def test_timeout_raises_socket_timeout(self):
        d = self.pydaemon(py_conf(
            py_listener("w", "Waits", extra="timeout = 0.3;"),
            py_listener("l", "Loop", extra="timeout = 0.3;")))
        s = d.connect("w")
        self.assertEqual(recv_until_eof(s),
                         b"timeout: 'TimeoutError' 0.3\n")
        s = d.connect("l")
        t0 = time.monotonic()
        self.assertEqual(recv_until_eof(s), b"")
        self.assertLess(time.monotonic() - t0, 3)
        d.wait_log(r"listener=l .*timed out after 0\.3s")
        self.assertRegex(d.log(), r"listener=l .*python: handlers\.Loop: "
                         r"TimeoutError: timed out")
        self.assertNotRegex(d.log(), r"error:")

    def test_stop_cuts_a_request_past_shutdown_timeout(self):
        d = self.pydaemon(py_conf(py_listener("l", "Loop"),
                                  globals_="shutdown_timeout = 0.3;"))
        s = d.connect("l")
        self.assertEqual(exchange(s, b"a"), b"A")
        self.assertStopsCleanly(d)
        self.assertRegex(d.log(), r"listener=l .*cut")

    BAD = [
        ("nomodule", "module = \"nosuchmodule\";",
         r'python: cannot import module "nosuchmodule": '
         r"ModuleNotFoundError: No module named 'nosuchmodule'"),
        ("syntax", "module = \"broken\";",
         r'python: cannot import module "broken": SyntaxError: .*'
         r'broken\.py, line 2\)'),
        ("raises", "module = \"raises\";",
         r'python: cannot import module "raises": ZeroDivisionError: '
         r'division by zero \(.*raises\.py, line 3\)'),
        ("noclass", "module = \"handlers\"; class = \"Nope\";",
         r"python: module 'handlers' has no class 'Nope'"),
        ("notahandler", "module = \"handlers\"; class = \"NotAHandler\";",
         r"python: handlers\.NotAHandler is not a "
         r"socketserver\.BaseRequestHandler subclass"),
    ]

    def bad_conf(self, key, opts):
        cls = "" if "class" in opts else 'class = "Loop";'
        return py_conf(
            '{ name = "%s"; address = "127.0.0.1"; port = 0;\n'
            '  concurrency = "thread"; handler = "python";\n'
            '  options = { path = "@DIR@/py"; %s %s }; }' % (key, opts, cls))

    def prepare(self, d):
        os.mkdir(d.path("py"))
        self.write(d, "handlers", HANDLERS)
        self.write(d, "broken", "import os\ndef f(:\n    pass\n")
        self.write(d, "raises", "import os\n\nx = 1 / 0\n")

    def test_bad_options_at_file_line(self):
        for key, opts, msg in self.BAD:
            with self.subTest(case=key):
                d = self.daemon(self.bad_conf(key, opts), start=False)
                self.prepare(d)
                text = open(d.conf_path).read()
                where = "%s:%d: " % (d.conf_path,
                                     line_of(text, "options = "))
                r = run_binary(["-t", "-c", d.conf_path])
                err = r.stderr.decode()
                self.assertEqual(r.returncode, 1, err)
                self.assertRegex(err, "(?m)^" + re.escape(where) + msg)
                # At start: the same message, exit 1.
                d.start(ready=False)
                self.assertEqual(d.wait_exit(), 1)
                self.assertRegex(d.log(), re.escape(where) + msg)

    def test_event_model_and_options_at_file_line(self):
        text = py_conf(
            '{ name = "e"; address = "127.0.0.1"; port = 0;\n'
            '  concurrency = "event"; handler = "python";\n'
            '  options = { module = "handlers"; class = "Loop"; }; }',
            '{ name = "dflt"; address = "127.0.0.1"; port = 0;\n'
            '  handler = "python";\n'
            '  options = { module = "handlers"; class = "Loop"; }; }',
            '{ name = "o"; address = "127.0.0.1"; port = 0;\n'
            '  concurrency = "sync"; handler = "python";\n'
            '  options = { module = "handlers"; class = "Loop";\n'
            '    colour = "blue";\n'
            '    path = "relative"; }; }',
            '{ name = "n"; address = "127.0.0.1"; port = 0;\n'
            '  concurrency = "fork"; handler = "python"; }')
        d = self.daemon(text, start=False)
        self.prepare(d)
        r = run_binary(["-t", "-c", d.conf_path])
        err = r.stderr.decode()
        self.assertEqual(r.returncode, 1, err)
        p = d.conf_path
        conc = line_of(text, 'concurrency = "event"')
        dflt = line_of(text, "options = ", line_of(text, '"dflt"'))
        colour = line_of(text, "colour")
        rel = line_of(text, "relative")
        none = line_of(text, 'concurrency = "fork"; handler')
        for ln, msg in ((conc, r'python: concurrency "event" cannot run '
                         r'Python handlers'),
                        (dflt, r'python: concurrency "event"'),
                        (colour, r'python: unknown option "colour"'),
                        (rel, r"python: options.path must be an absolute "
                         r"directory"),
                        (none, r"python: needs options")):
            self.assertRegex(err, "(?m)^%s:%d: %s" % (re.escape(p), ln,
                                                      msg))

    def test_bad_reload_keeps_the_old_code(self):
        d = self.pydaemon(py_conf(py_listener("l", "Loop")))
        self.write(d, "handlers", HANDLERS + "\ndef oops(:\n")
        d.reload()
        d.wait_log(r"cannot import module \"handlers\": SyntaxError")
        self.assertRegex(d.log(), r"%s:\d+: python: cannot import module"
                         % re.escape(d.conf_path))
        s = d.connect("l")
        self.assertEqual(exchange(s, b"old"), b"OLD")
        finish(s)


class Reload(PythonTestCase):

    def test_sighup_imports_afresh_old_request_on_old_code(self):
        for model in ("thread", "fork", "sync"):
            with self.subTest(model=model):
                self.reload_under(model)

    def reload_under(self, model):
        d = self.daemon(py_conf(py_listener("v", "Versioned", model)),
                        start=False)
        os.mkdir(d.path("py"))
        # Sizes differ too: a .pyc is checked by mtime and size.
        self.write(d, "handlers", VERSIONED.replace("@VERSION@", "one"))
        d.start()
        old = d.connect("v")
        self.assertEqual(recv_exactly(old, 10), b"one start\n")
        self.write(d, "handlers", VERSIONED.replace("@VERSION@", "second"))
        d.reload()
        if model != "sync":     # sync: the new one waits for the old
            new = d.connect("v")
            self.assertEqual(recv_exactly(new, 13), b"second start\n")
        old.sendall(b"done")
        self.assertEqual(recv_until_eof(old), b"one end\n")
        if model == "sync":
            new = d.connect("v")
            self.assertEqual(recv_exactly(new, 13), b"second start\n")
        new.sendall(b"done")
        self.assertEqual(recv_until_eof(new), b"second end\n")
        self.assertStopsCleanly(d)


@unittest.skipUnless(shutil.which("openssl"), "no openssl command")
class Tls(PythonTestCase):

    def test_handler_sees_plaintext(self):
        tmp = tempfile.mkdtemp(prefix="ssd-pytls-")
        self.addCleanup(shutil.rmtree, tmp, True)
        pem, key = self_signed_cert(tmp)
        tls = 'tls = { certificate = "%s"; key = "%s"; };' % (pem, key)
        d = self.pydaemon(py_conf(
            py_listener("t", "Lines", "thread", extra=tls),
            py_listener("f", "MyTCPHandler", "fork", extra=tls)))
        ctx = ssl.create_default_context(cafile=pem)
        for name, payload, want in (("t", b"one\ntwo\n",
                                     b"1 ONE\n2 TWO\n"),
                                    ("f", b"hello", b"HELLO")):
            with self.subTest(listener=name):
                raw = d.connect(name)
                s = ctx.wrap_socket(raw, server_hostname="localhost")
                s.sendall(payload)
                got = b""
                dl = Deadline(IO_TIMEOUT)
                while len(got) < len(want) and not dl.expired():
                    b = s.recv(100)
                    if not b:
                        break
                    got += b
                self.assertEqual(got, want)
                s.close()
        self.assertNotRegex(d.log(), r"error:")


class Documented(unittest.TestCase):
    """Every option the plugin reads has its entry under PYTHON HANDLERS
    of sockserverd.conf(5), and the page names no other; the README has
    its section."""

    def test_options_in_page(self):
        root = os.path.dirname(os.path.dirname(os.path.dirname(
            os.path.abspath(__file__))))
        with open(os.path.join(root, "handlers/python/python.c")) as f:
            code = set(re.findall(r'strcmp\(k, "(\w+)"\)', f.read()))
        with open(os.path.join(root, "man/sockserverd.conf.5.in")) as f:
            page = f.read()
        m = re.search(r"(?ms)^\.Sh PYTHON HANDLERS\n(.*?)^\.Sh ", page)
        self.assertIsNotNone(m, "no PYTHON HANDLERS section")
        items = set(re.findall(r"(?m)^\.It Ic (\w+)", m.group(1)))
        self.assertEqual(code, {"path", "module", "class", "settings"})
        self.assertEqual(items, code)
        with open(os.path.join(root, "README.md")) as f:
            self.assertIn("## Serve a socketserver handler", f.read())


@unittest.skipUnless(os.path.exists(PLUGIN), "no %s" % PLUGIN)
class Listed(unittest.TestCase):

    def test_list_handlers_names_it(self):
        with tempfile.TemporaryDirectory() as tmp:
            c = os.path.join(tmp, "c.conf")
            with open(c, "w") as f:
                f.write(py_conf('{ name = "x"; address = "127.0.0.1"; '
                                'port = 0; handler = "echo"; }'))
            r = run_binary(["-L", "-c", c])
        self.assertRegex(r.stdout.decode(), r"(?m)^python +plugin +a "
                         r"socketserver request handler class")


if __name__ == "__main__":
    unittest.main()
