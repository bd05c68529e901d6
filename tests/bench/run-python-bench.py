#!/usr/bin/env python3
# SPDX-License-Identifier: ISC
"""run-python-bench.py - the python plugin against CPython's socketserver
serving the same class (issue 13), what `make bench-python` runs.

Targets, in one run, each a separate process on 127.0.0.1, port 0:
  ssd-thread   sockserverd, concurrency "thread", handler "python"
  ssd-fork     sockserverd, concurrency "fork", handler "python"
  py-thread    CPython's socketserver.ThreadingTCPServer
  py-fork      CPython's socketserver.ForkingTCPServer
CPython's servers run under the python3 that the plugin embeds (the
interpreter of `pkg-config python3-embed`: /usr/bin/python3.X on Debian),
with request_queue_size = 4096 as sockserverd's listeners (queue_size),
daemon_threads, and ForkingMixIn's own max_children (40).  sockserverd's
listeners have timeout = 0 and queue_size = 4096.

Measures, with build/bench/loadgen:
  ping-pong  100 connections x 64 bytes, the tutorial's handler looped
             over the connection (recv(1024), upper, sendall): msg/s;
  connrate   new connections/s, 50 at a time, the tutorial's handler
             (one recv, upper, sendall, return).
Beside them, ssd-thread-c: the same daemon's thread model serving the
compiled-in C echo, no Python at all, in ping-pong: the most that any
handler, Python or not, gets from a thread per connection here, against
which the ping-pong target is to be read.
Each run lasts BENCH_SECS (2) seconds; BENCH_ROUNDS (3) rounds visit the
targets in alternating order; the best figure is kept.  Prints a table and
the targets of the issue with PASS or MISS (exit 0 either way, 1 when a
run failed).  Environment: SSD_BIN, BENCH_BIN, PYTHON (the interpreter of
CPython's servers), SSD_PLUGIN_DIR.
"""

import os
import re
import signal
import socket
import subprocess
import sys
import sysconfig
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
SSD = os.path.abspath(os.environ.get("SSD_BIN") or
                      os.path.join(ROOT, "sockserverd"))
BIN = os.environ.get("BENCH_BIN") or os.path.join(ROOT, "build", "bench")
LG = os.path.join(BIN, "loadgen")
PLUGINS = os.path.abspath(os.environ.get("SSD_PLUGIN_DIR") or
                          os.path.join(ROOT, "build", "plugins"))
SECS = float(os.environ.get("BENCH_SECS") or 2)
ROUNDS = int(os.environ.get("BENCH_ROUNDS") or 3)
READY = 15.0

HANDLERS = '''
import socketserver

class MyTCPHandler(socketserver.BaseRequestHandler):
    """The socketserver tutorial's handler."""
    def handle(self):
        self.data = self.request.recv(1024).strip()
        self.request.sendall(self.data.upper())

class Looped(socketserver.BaseRequestHandler):
    """The same, looped over the connection."""
    def handle(self):
        while True:
            self.data = self.request.recv(1024)
            if not self.data:
                break
            self.request.sendall(self.data.upper())
'''

CPYTHON = '''
import socketserver, sys
sys.path.insert(0, sys.argv[1])
import handlers
kind = getattr(socketserver, sys.argv[2])
kind.allow_reuse_address = True
kind.request_queue_size = 4096
kind.daemon_threads = True
srv = kind(("127.0.0.1", 0), getattr(handlers, sys.argv[3]))
print("port", srv.server_address[1], flush=True)
srv.serve_forever()
'''


def embedded_python():
    """The interpreter the plugin embeds: python3-embed's version."""
    if os.environ.get("PYTHON"):
        return os.environ["PYTHON"]
    try:
        v = subprocess.run(["pkg-config", "--modversion", "python3-embed"],
                           capture_output=True, text=True,
                           timeout=10).stdout.strip()
    except OSError:
        v = ""
    for p in ("/usr/bin/python%s" % v, "/usr/bin/python3"):
        if v and os.path.exists(p):
            return p
    return sys.executable


class Procs:
    def __init__(self):
        self.procs = []

    def add(self, p):
        self.procs.append(p)
        return p

    def stop(self, p):
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()

    def stop_all(self):
        for p in self.procs:
            self.stop(p)


def start_cpython(procs, py, tmp, kind, cls):
    p = procs.add(subprocess.Popen([py, "-c", CPYTHON, tmp, kind, cls],
                                   stdout=subprocess.PIPE,
                                   stderr=subprocess.DEVNULL, text=True))
    line = p.stdout.readline()
    m = re.match(r"port (\d+)", line)
    if not m:
        raise SystemExit("run-python-bench: %s did not start" % kind)
    return int(m.group(1))


def start_ssd(procs, tmp):
    conf = os.path.join(tmp, "ssd.conf")
    ls = []
    for model in ("thread", "fork"):
        for cls in ("MyTCPHandler", "Looped"):
            ls.append('{ name = "%s-%s"; address = "127.0.0.1"; port = 0; '
                      'concurrency = "%s"; handler = "python"; timeout = 0;'
                      ' queue_size = 4096; options = { path = "%s"; '
                      'module = "handlers"; class = "%s"; }; }'
                      % (model, cls, model, tmp, cls))
    ls.append('{ name = "thread-c"; address = "127.0.0.1"; port = 0; '
              'concurrency = "thread"; handler = "echo"; timeout = 0; '
              'queue_size = 4096; }')
    with open(conf, "w") as f:
        f.write('handler_dir = "%s"; log_level = "info"; '
                'shutdown_timeout = 2.0;\nlisteners = (\n%s\n);\n'
                % (PLUGINS, ",\n".join(ls)))
    nsock = os.path.join(tmp, "notify")
    n = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    n.bind(nsock)
    n.settimeout(READY)
    env = dict(os.environ, NOTIFY_SOCKET=nsock)
    for k in ("JOURNAL_STREAM", "LISTEN_FDS", "LISTEN_PID"):
        env.pop(k, None)
    log = open(os.path.join(tmp, "ssd.log"), "w")
    procs.add(subprocess.Popen([SSD, "-c", conf], stderr=log, env=env))
    dl = time.monotonic() + READY
    while time.monotonic() < dl:
        if b"READY=1" in n.recv(4096):
            break
    n.close()
    ports = {}
    with open(os.path.join(tmp, "ssd.log")) as f:
        for m in re.finditer(r"listener=(\S+): listening on "
                             r"127\.0\.0\.1:(\d+)", f.read()):
            ports[m.group(1)] = int(m.group(2))
    if len(ports) != 5:
        raise SystemExit("run-python-bench: sockserverd did not start; "
                         "see its log")
    return ports


def loadgen(mode, port, conns):
    args = [LG, "-m", mode, "-p", str(port), "-c", str(conns), "-d",
            str(SECS)]
    try:
        out = subprocess.run(args, capture_output=True, text=True,
                             timeout=SECS + 30).stdout
    except subprocess.TimeoutExpired:
        return None
    m = re.search(r"\brate=(\d+)", out)
    return int(m.group(1)) if m else None


def main():
    if not os.access(LG, os.X_OK):
        raise SystemExit("run-python-bench: %s is missing" % LG)
    if not os.path.exists(os.path.join(PLUGINS, "python.so")):
        raise SystemExit("run-python-bench: no python.so in %s" % PLUGINS)
    py = embedded_python()
    procs = Procs()
    tmp = tempfile.mkdtemp(prefix="ssd-pybench-")
    try:
        with open(os.path.join(tmp, "handlers.py"), "w") as f:
            f.write(HANDLERS)
        ssd = start_ssd(procs, tmp)
        targets = {
            ("pingpong", "ssd-thread"): ssd["thread-Looped"],
            ("pingpong", "ssd-thread-c"): ssd["thread-c"],
            ("pingpong", "py-thread"): start_cpython(
                procs, py, tmp, "ThreadingTCPServer", "Looped"),
            ("connrate", "ssd-thread"): ssd["thread-MyTCPHandler"],
            ("connrate", "ssd-fork"): ssd["fork-MyTCPHandler"],
            ("connrate", "py-thread"): start_cpython(
                procs, py, tmp, "ThreadingTCPServer", "MyTCPHandler"),
            ("connrate", "py-fork"): start_cpython(
                procs, py, tmp, "ForkingTCPServer", "MyTCPHandler"),
        }
        best = {}
        order = list(targets)
        for r in range(ROUNDS):
            for key in (order if r % 2 == 0 else reversed(order)):
                mode, _ = key
                rate = loadgen(mode, targets[key],
                               100 if mode == "pingpong" else 50)
                print("  round %d %-9s %-10s %s/s" % (r + 1, key[0], key[1],
                                                     rate), file=sys.stderr)
                if rate is not None and rate > best.get(key, -1):
                    best[key] = rate
    finally:
        procs.stop_all()
        subprocess.run(["rm", "-rf", tmp])
    print("python plugin vs CPython socketserver (%s, %s s x %d rounds)"
          % (os.path.basename(py), SECS, ROUNDS))
    print("%-34s %12s %12s %7s  %s" % ("measure", "sockserverd", "CPython",
                                       "ratio", "target"))
    failed = False
    for what, mode, ours, theirs, want in (
            ("ping-pong 100 conns, msg/s", "pingpong", "ssd-thread",
             "py-thread", 1.5),
            ("new conns/s, 50 at a time", "connrate", "ssd-thread",
             "py-thread", 2.0),
            ("new conns/s, 50 at a time", "connrate", "ssd-fork",
             "py-fork", 3.0)):
        a, b = best.get((mode, ours)), best.get((mode, theirs))
        if not a or not b:
            failed = True
            print("%-34s %12s %12s %7s  error" % (what, a, b, "-"))
            continue
        ratio = a / b
        print("%-34s %12d %12d %6.2fx  >= %.1fx %s  (%s vs %s)"
              % (what, a, b, ratio, want, "PASS" if ratio >= want
                 else "MISS", ours, theirs))
    a, b = best.get(("pingpong", "ssd-thread-c")), best.get(("pingpong",
                                                              "py-thread"))
    if a and b:
        print("ceiling: ping-pong under the thread model with the C echo "
              "(no Python): %d msg/s, %.2fx py-thread" % (a, a / b))
    else:
        failed = True
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
