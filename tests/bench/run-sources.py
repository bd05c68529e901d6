#!/usr/bin/env python3
# SPDX-License-Identifier: ISC
"""The memory bound of per-source state (what `make bench-sources` runs).

Starts sockserverd (through tests/integration/ssdtest.py: its own
NOTIFY_SOCKET, stopped by PID whatever happens) with an echo listener
under rate_per_source, and sends it BENCH_SOURCES (1,000,000) requests,
each from a source it has never seen, with build/bench/sourceflood:

  proxy   PROXY v2 headers naming 10.0.0.0/8 + i, from a pool of
          loopback addresses that proxy_from trusts (the client the header
          names is the source);
  proxy6  the same with a /64 of its own per source (2001:db8:i::1,
          source_prefix_v6 = 64);
  bind    no header: each connection from its own 127.x.y.z.

The rate is 0.001 per second (a spent bucket takes 1000 s to fill again),
so no entry ever becomes idle during the run: the worst case for the
table, which must stop at its cap and forget the fullest buckets rather
than grow.  Prints, per mode, the daemon's peak RSS (VmHWM) and its RSS
at the end, the refusals it counted, and PASS if the peak is within
BENCH_RSS_MIB (64).  Exits 1 on a miss.  Loopback only; every run is
bounded by BENCH_SECS (240) seconds.

Environment: SSD_BIN (./sockserverd), BENCH_BIN (build/bench),
BENCH_SOURCES, BENCH_MODES ("proxy bind"), BENCH_CONNS (64).
"""

import os
import re
import resource
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))

from ssdtest import Daemon, conf, listener_conf, recv_until_eof, send_all  # noqa: E402

SOURCES = int(os.environ.get("BENCH_SOURCES") or 1000000)
MODES = (os.environ.get("BENCH_MODES") or "proxy bind").split()
CONNS = int(os.environ.get("BENCH_CONNS") or 64)
SECS = float(os.environ.get("BENCH_SECS") or 240)
LIMIT_MIB = float(os.environ.get("BENCH_RSS_MIB") or 64)
BIN = os.environ.get("BENCH_BIN") or os.path.join(ROOT, "build", "bench")


def status_kib(pid, field):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return -1


def refused(d, reason):
    s = d.connect("st")
    send_all(s, b"GET /metrics HTTP/1.0\r\n\r\n")
    body = recv_until_eof(s, 10).decode()
    s.close()
    m = re.search(r'^sockserverd_refused_total\{listener="flood",'
                  r'reason="%s"\} (\d+)$' % reason, body, re.M)
    return int(m.group(1)) if m else -1


def run(mode):
    extra = ("rate_per_source = 0.001; timeout = 10; queue_size = 4096; "
             "max_connections = 0; ")
    if mode.startswith("proxy"):
        extra += 'proxy_protocol = true; proxy_from = [ "127.0.0.0/8" ]; '
    if mode == "proxy6":
        extra += "source_prefix_v6 = 64; "
    text = conf(listener_conf("flood", concurrency="event", extra=extra),
                listener_conf("st", handler="status", concurrency="event",
                              extra="timeout = 10;"))
    nofile = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    nofile = 4096 if nofile == resource.RLIM_INFINITY else min(nofile, 4096)
    with Daemon(text, log_level="info",
                rlimits={resource.RLIMIT_NOFILE: (nofile, nofile)}) as d:
        start = status_kib(d.pid, "VmRSS")
        cmd = [os.path.join(BIN, "sourceflood"), "-p",
               str(d.listener("flood").port), "-n", str(SOURCES), "-c",
               str(CONNS), "-d", str(SECS),
               "-m", "bind" if mode == "bind" else "proxy"]
        if mode == "proxy6":
            cmd.append("-6")
        out = subprocess.run(cmd, stdout=subprocess.PIPE, text=True,
                             timeout=SECS + 30).stdout.strip()
        peak = status_kib(d.pid, "VmHWM")
        end = status_kib(d.pid, "VmRSS")
        rate, per_source = refused(d, "rate"), refused(d, "per_source")
        notes = [l for l in d.log().splitlines() if "per-source" in l]
        rc = d.stop()
    ok = peak <= LIMIT_MIB * 1024 and rc == 0
    print("%-7s %s" % (mode, out))
    print("        daemon RSS: start %.1f MiB, peak %.1f MiB, end %.1f MiB; "
          "refused rate=%d per_source=%d; %s (limit %g MiB)"
          % (start / 1024, peak / 1024, end / 1024, rate, per_source,
             "PASS" if ok else "MISS", LIMIT_MIB))
    for n in notes[:3]:
        print("        log: " + n)
    sys.stdout.flush()
    return ok


def main():
    tool = os.path.join(BIN, "sourceflood")
    if not os.access(tool, os.X_OK):
        print("run-sources: %s is missing: run 'make bench-sources'" % tool,
              file=sys.stderr)
        return 1
    print("per-source memory: %d distinct sources per mode, "
          "rate_per_source = 0.001, %d connections in flight"
          % (SOURCES, CONNS))
    ok = True
    for mode in MODES:
        ok = run(mode) and ok
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
