#!/usr/bin/env bash
# SPDX-License-Identifier: ISC
# run-workers-bench.sh - worker_processes benchmarks of issue 11 (what
# `make bench` runs after run-bench.sh):
#   pp100    event echo ping-pong at 100 connections x 64 bytes, against
#            sockserverd with worker_processes = 2 and the reference epoll
#            server, in alternating rounds (best of BENCH_ROUNDS); target
#            >= 0.9x the reference;
#   restart  time from a worker's death (SIGKILL, by PID, found among the
#            daemon's children in /proc) to its replacement serving (its
#            "worker N (pid P) serving" line, logged once it accepts, read
#            by polling the log every millisecond): BENCH_RESTARTS (10)
#            times, 1.1 s apart, always the worker that has lived longer
#            (one killed within a second of its start before serving
#            anyone is replaced after a pause, on purpose); median and
#            max; target <= 50 ms;
#   storm    a crash storm: the crashrate fixture, which kills its worker
#            with SIGSEGV on 1 message in 100 (drawn as each message is
#            read), under pp100 load: 100 connections in ping-pong, each
#            opened again at once when it dies (loadgen -R), for
#            BENCH_STORM_SECS (5); served = messages echoed / (echoed +
#            lost), a message being lost when its connection died with it
#            sent and not echoed (what a client sees).  Run with
#            worker_processes = each of BENCH_STORM_WORKERS ("2 4"), the
#            event model; and, for comparison, the same with one
#            connection per message (100 connect-send-receive-close
#            cycles in flight, loadgen connrate: served = done / (done +
#            failed)), and with concurrency = "fork" (2 workers), where a
#            crash takes only its own connection.  Target >= 95%.  With
#            event workers each crash takes every connection its worker
#            holds, about 100/N: the report says so.
# Every process it starts is stopped by PID on exit.
set -u

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
SSD=${SSD_BIN:-$ROOT/sockserverd}
BIN=${BENCH_BIN:-$ROOT/build/bench}
PLUGIN=${BENCH_CRASHRATE:-$ROOT/build/tests/plugins/crashrate.so}
LG=$BIN/loadgen
REF=$BIN/refserver
SECS=${BENCH_SECS:-2}
ROUNDS=${BENCH_ROUNDS:-3}
RESTARTS=${BENCH_RESTARTS:-10}
STORM_WORKERS=${BENCH_STORM_WORKERS:-2 4}
STORM_SECS=${BENCH_STORM_SECS:-5}
READY_SECS=10

for f in "$SSD" "$LG" "$REF" "$PLUGIN"; do
	if [ ! -e "$f" ]; then
		echo "run-workers-bench: $f is missing: run 'make bench'" >&2
		exit 1
	fi
done

TMP=$(mktemp -d /tmp/ssd-wbench.XXXXXX) || exit 1
PIDS=()

stop_pid() {
	local pid=$1 i
	kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null; return; }
	kill -TERM "$pid" 2>/dev/null
	for ((i = 0; i < 200; i++)); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.05
	done
	kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
}

# shellcheck disable=SC2317  # invoked by the EXIT trap
cleanup() {
	local pid
	trap - EXIT INT TERM
	for pid in "${PIDS[@]}"; do
		stop_pid "$pid"
	done
	rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

ulimit -n "$(ulimit -Hn)" 2>/dev/null

kv() {
	local re="(^| )$1=([^ ]*)"
	[[ $2 =~ $re ]] && echo "${BASH_REMATCH[2]}"
	return 0
}

start_ref() {
	local out=$TMP/ref.out i
	"$REF" -q 4096 >"$out" 2>&1 &
	REF_PID=$!
	PIDS+=("$REF_PID")
	for ((i = 0; i < READY_SECS * 20; i++)); do
		REF_PORT=$(sed -n 's/^port \([0-9]*\)$/\1/p' "$out")
		[ -n "$REF_PORT" ] && return 0
		sleep 0.05
	done
	echo "run-workers-bench: the reference server did not start" >&2
	exit 1
}

# start_ssd NAME HANDLER [OPTIONS [WORKERS [MODEL [MORE]]]]: sockserverd,
# worker_processes = WORKERS (2), one listener of concurrency MODEL
# (event), then the listeners MORE; waits until every worker serves; sets
# SSD_PID, SSD_PORT.
start_ssd() {
	local conf=$TMP/$1.conf log=$TMP/$1.log i
	cat >"$conf" <<EOF
log_level = "info";
shutdown_timeout = 2.0;
worker_processes = ${4:-2};
listeners = ( { name = "w"; address = "127.0.0.1"; port = 0;
  handler = "$2"; concurrency = "${5:-event}"; timeout = 0; queue_size = 4096;
  max_connections = 0; ${3:-} }${6:-} );
EOF
	(
		ulimit -n 20000 2>/dev/null
		unset NOTIFY_SOCKET JOURNAL_STREAM LISTEN_FDS LISTEN_PID \
		    LISTEN_FDNAMES WATCHDOG_USEC
		exec "$SSD" -c "$conf"
	) 2>"$log" &
	SSD_PID=$!
	PIDS+=("$SSD_PID")
	SSD_LOG=$log
	for ((i = 0; i < READY_SECS * 20; i++)); do
		[ "$(grep -c ') serving ' "$log")" -ge "${4:-2}" ] && break
		kill -0 "$SSD_PID" 2>/dev/null || break
		sleep 0.05
	done
	SSD_PORT=$(sed -n 's/.*listener=w: listening on 127\.0\.0\.1:\([0-9]*\) .*/\1/p' "$log")
	if [ -z "$SSD_PORT" ] ||
	    [ "$(grep -c ') serving ' "$log")" -lt "${4:-2}" ]; then
		echo "run-workers-bench: sockserverd did not start:" >&2
		cat "$log" >&2
		exit 1
	fi
}

lg() {
	local limit=$1
	shift
	timeout -k 2 "$limit" "$LG" "$@" 2>/dev/null || echo "error=loadgen"
}

# ---- pp100, worker_processes = 2 ----
start_ref
start_ssd pp echo
best_ref=0
best_ssd=0
order="ref ssd"
for ((r = 1; r <= ROUNDS; r++)); do
	for t in $order; do
		port=$REF_PORT
		[ "$t" = ssd ] && port=$SSD_PORT
		line=$(lg $((${SECS%.*} + 12)) -m pingpong -p "$port" -c 100 \
		    -d "$SECS" -w 1)
		rate=$(kv rate "$line")
		echo "  round $r pp100 $t: ${rate:-error} msg/s" >&2
		if [ "$t" = ref ]; then
			[ "${rate:-0}" -gt "$best_ref" ] && best_ref=$rate
		else
			[ "${rate:-0}" -gt "$best_ssd" ] && best_ssd=$rate
		fi
		sleep 0.3
	done
	[ "$order" = "ref ssd" ] && order="ssd ref" || order="ref ssd"
done

# ---- restart latency ----
lat=$(python3 - "$SSD_PID" "$SSD_LOG" "$RESTARTS" <<'PY'
import os, re, signal, sys, time
pid, log, n = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])

def children():
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                st = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if st[1] == str(pid) and st[0] != "Z":
            out.append(int(d))
    return sorted(out)

def serving(text):
    return set(int(p) for p in re.findall(r"\(pid (\d+)\) serving", text))

res = []
last = set()
for i in range(n):
    deadline = time.monotonic() + 10
    while len(children()) != 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    with open(log) as f:
        before = serving(f.read())
    # The worker that has lived longer: one that dies within a second of
    # its start before serving anyone would be replaced after a pause.
    kids = children()
    victim = kids[0] if kids[0] not in last else kids[-1]
    t0 = time.monotonic()
    os.kill(victim, signal.SIGKILL)
    new = None
    with open(log) as f:
        f.seek(0, 2)
        buf = ""
        while time.monotonic() < t0 + 5:
            buf += f.read()
            got = serving(buf) - before
            if got:
                new = got.pop()
                break
            time.sleep(0.001)
    if new is None:
        continue            # counted as a miss below
    res.append((time.monotonic() - t0) * 1000)
    last = {new}
    # The next victim (the other worker) will have lived over a second.
    time.sleep(1.1)
res.sort()
if not res:
    print("error=no-replacement-seen")
else:
    print("median=%.1f max=%.1f n=%d misses=%d" % (res[len(res) // 2],
          res[-1], len(res), n - len(res)))
PY
)
stop_pid "$SSD_PID"
stop_pid "$REF_PID"

# ---- crash storm ----
# metric PORT NAME: the value of NAME in the status listener's /metrics.
metric() {
	timeout 5 python3 - "$1" "$2" <<'PY' 2>/dev/null
import re, socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), 5)
s.sendall(b"GET /metrics HTTP/1.0\r\n\r\n")
buf = b""
while True:
    b = s.recv(65536)
    if not b:
        break
    buf += b
m = re.search(r"^%s (\d+)$" % re.escape(sys.argv[2]), buf.decode(), re.M)
print(m.group(1) if m else "")
PY
}

# storm TAG WORKERS MODEL SHAPE: one run; prints "served% served lost
# crashes".
storm() {
	local line d e crashes
	start_ssd "storm-$1" "$PLUGIN" 'options = { every = 100; };' "$2" "$3" \
	    ', { name = "st"; address = "127.0.0.1"; port = 0;
	    handler = "status"; concurrency = "sync"; }'
	if [ "$4" = pp ]; then
		line=$(lg $((STORM_SECS + 14)) -m pingpong -p "$SSD_PORT" \
		    -c 100 -d "$STORM_SECS" -w 1 -R)
		d=$(kv msgs "$line")
		e=$(kv lost "$line")
	else
		line=$(lg $((STORM_SECS + 12)) -m connrate -p "$SSD_PORT" \
		    -c 100 -d "$STORM_SECS" -k fin)
		d=$(kv "done" "$line")
		e=$(kv errors "$line")
	fi
	# Worker deaths from the restart counter (the log reports them once
	# a second), fork children's from their log lines.
	if [ "$3" = fork ]; then
		crashes=$(grep -c 'handler process [0-9]* killed by signal 11' \
		    "$SSD_LOG")
	else
		crashes=$(metric "$(sed -n 's/.*listener=st: listening on 127\.0\.0\.1:\([0-9]*\) .*/\1/p' "$SSD_LOG")" \
		    sockserverd_worker_restarts_total)
	fi
	stop_pid "$SSD_PID"
	echo "  storm $1: $line" >&2
	awk -v d="${d:-0}" -v e="${e:-0}" -v c="${crashes:-0}" 'BEGIN {
		if (d + e == 0) printf "- 0 0 %d\n", c
		else printf "%.1f %d %d %d\n", 100 * d / (d + e), d, e, c }'
}
STORM_ROWS=()
for n in $STORM_WORKERS; do
	STORM_ROWS+=("pp100, $n event workers|$(storm "pp$n" "$n" event pp)")
done
for n in $STORM_WORKERS; do
	STORM_ROWS+=("1 msg/connection, $n event workers|$(storm "cr$n" "$n" \
	    event cr)")
done
STORM_ROWS+=("pp100, 2 workers, concurrency fork|$(storm fork 2 fork pp)")

# ---- report ----
ratio=$(awk -v a="$best_ssd" -v b="$best_ref" 'BEGIN {
	if (b <= 0) print "-"; else printf "%.2f", a / b }')
med=$(kv median "$lat")
max=$(kv max "$lat")
verdict() {
	awk -v v="$1" -v op="$2" -v l="$3" 'BEGIN {
		if (v == "" || v == "-") { print "MISS (no figure)"; exit }
		ok = op == ">=" ? v + 0 >= l + 0 : v + 0 <= l + 0
		print ok ? "PASS" : "MISS" }'
}
echo
echo "worker_processes (issue 11), $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
printf '  %-44s %s\n' "pp100 reference (msg/s)" "$best_ref"
printf '  %-44s %s  %sx  %s\n' "pp100 worker_processes=2 event (msg/s)" \
    "$best_ssd" "$ratio" "$(verdict "$ratio" '>=' 0.9)"
printf '  %-44s median %s ms, max %s ms (%s kills)  %s\n' \
    "restart: death to replacement serving" "${med:--}" "${max:--}" \
    "$(kv n "$lat"), $(kv misses "$lat") not seen in 5 s" \
    "$(verdict "$med" '<=' 50)"
for row in "${STORM_ROWS[@]}"; do
	read -r pct ok lost crashes <<<"${row#*|}"
	printf '  %-44s %s%% (%s served, %s lost, %s crashes)  %s\n' \
	    "storm: ${row%%|*}" "$pct" "$ok" "$lost" "$crashes" \
	    "$(verdict "$pct" '>=' 95)"
done
echo "  (a crash takes every request in progress in its worker: with event"
echo "  workers at least 100/N pp100 connections, each with a message in"
echo "  flight, per crash; fork loses only the crashing one: see README)"
