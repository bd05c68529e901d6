#!/usr/bin/env bash
# SPDX-License-Identifier: ISC
# run-bench.sh - sockserverd's benchmark (what `make bench` runs after
# building ./sockserverd, build/bench/loadgen and build/bench/refserver).
#
# Starts the reference epoll echo server and one sockserverd with an echo
# listener per concurrency model (event, thread, fork, sync; port 0), and
# measures each against the same load generator in one run:
#   ping-pong at 1 and at 100 connections x 64 bytes (msg/s, p50/p99),
#   new connections/s (connect-send-receive-close, 50 at a time),
#   memory per idle connection (10,000 held open, each after one echo),
# and (issue 11) against the datagram reference (dgramref: recvmmsg and
# sendmmsg) a UDP echo of 64-byte datagrams from 50 senders (a dgram echo
# listener per model), one connection streaming BENCH_BULK_MIB through
# the echo (MiB/s), and fork(2) alone (forkrate) for the fork model's
# connection rate; then prints the tables, every figure with its ratio to
# its reference, and the targets of issues 3 and 11 with PASS or MISS.
# Beside thread and fork it runs their own ceilings (modelref): threadref
# (a bare blocking thread per connection: ping-pong at 100 and idle
# memory) and forkref (a bare process per connection: connections/s), so
# that what a model costs by itself is told apart from what the daemon
# adds.
#
# Throughput runs go in rounds; each round visits the targets in the
# opposite order of the one before, and the best figure of the rounds is
# kept, so that noise from a shared machine and drift over the run do not
# favour one target.  Idle memory is measured on a freshly started server
# per target, so heap left by an earlier run cannot hide or add cost.
#
# Every process it starts is stopped by PID on exit, whatever happens.
# Environment: BENCH_SECS (2) seconds per run; BENCH_ROUNDS (3);
# BENCH_IDLE (10000) idle connections; BENCH_IDLE_SECS (15) bound on
# opening them; BENCH_CLOSE (rst) how connection-rate clients close: rst
# (SO_LINGER 0, no TIME_WAIT) or fin; BENCH_BULK_MIB (1024) MiB per bulk
# stream (each bounded by 20 s); SSD_BIN, BENCH_BIN (build/bench).
set -u

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
SSD=${SSD_BIN:-$ROOT/sockserverd}
BIN=${BENCH_BIN:-$ROOT/build/bench}
LG=$BIN/loadgen
REF=$BIN/refserver
DREF=$BIN/dgramref
SECS=${BENCH_SECS:-2}
ROUNDS=${BENCH_ROUNDS:-3}
IDLE=${BENCH_IDLE:-10000}
IDLE_SECS=${BENCH_IDLE_SECS:-15}
BULK_MIB=${BENCH_BULK_MIB:-1024}
BULK_SECS=20		# bound on one bulk stream
CLOSE=${BENCH_CLOSE:-rst}
WARMUP=1		# seconds: every connection's first round trip
READY_SECS=10		# bound on a server's start
STOP_SECS=10		# bound on a server's stop, then SIGKILL

MODELS="event thread fork sync"
TARGETS="reference $MODELS"

for f in "$SSD" "$LG" "$REF" "$DREF" "$BIN/forkrate" "$BIN/modelref"; do
	if [ ! -x "$f" ]; then
		echo "run-bench: $f is missing: run 'make bench'" >&2
		exit 1
	fi
done
if ! [[ $SECS =~ ^[0-9]+([.][0-9]+)?$ && $ROUNDS =~ ^[1-9][0-9]*$ &&
    $IDLE =~ ^[1-9][0-9]*$ && $IDLE_SECS =~ ^[1-9][0-9]*$ &&
    $BULK_MIB =~ ^[1-9][0-9]*$ &&
    $CLOSE =~ ^(rst|fin)$ ]]; then
	echo "run-bench: bad BENCH_* setting" >&2
	exit 2
fi

TMP=$(mktemp -d /tmp/ssd-bench.XXXXXX) || exit 1
PIDS=()

# Stops pid: SIGTERM, up to STOP_SECS for it to exit, then SIGKILL.
stop_pid() {
	local pid=$1 i
	kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null; return; }
	kill -TERM "$pid" 2>/dev/null
	for ((i = 0; i < STOP_SECS * 20; i++)); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.05
	done
	if kill -0 "$pid" 2>/dev/null; then
		echo "run-bench: pid $pid did not stop; killing it" >&2
		kill -KILL "$pid" 2>/dev/null
	fi
	wait "$pid" 2>/dev/null
}

stop_all() {
	local pid
	for pid in "${PIDS[@]}"; do
		stop_pid "$pid"
	done
	PIDS=()
}

# shellcheck disable=SC2317  # invoked by the EXIT trap
cleanup() {
	trap - EXIT INT TERM
	stop_all
	rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

forget_pid() {
	local pid=$1 p keep=()
	for p in "${PIDS[@]}"; do
		[ "$p" = "$pid" ] || keep+=("$p")
	done
	PIDS=("${keep[@]}")
}

# Servers get the hard fd limit (the daemon holds 10,000 idle connections).
ulimit -n "$(ulimit -Hn)" 2>/dev/null
NOFILE=$(ulimit -n)
IDLE_NOTE=""
if [ "$NOFILE" != unlimited ] && [ "$NOFILE" -lt $((IDLE + 200)) ]; then
	IDLE_NOTE="fd limit $NOFILE: $((NOFILE - 200)) idle connections, not $IDLE"
	IDLE=$((NOFILE - 200))
fi

# start_ref NAME [dgram|threadref|forkref]: starts a reference server
# (the stream one, the datagram one, or a model's ceiling: modelref -m
# thread or fork); sets REF_PID, REF_PORT (or DREF_PORT, or CEIL_PID and
# CEIL_PORT_threadref/forkref).
start_ref() {
	local out=$TMP/$1.out i pid port=
	if [ "${2:-}" = dgram ]; then
		"$DREF" >"$out" 2>&1 &
	elif [ -n "${2:-}" ]; then
		"$BIN/modelref" -m "${2%ref}" -q 4096 >"$out" 2>&1 &
	else
		"$REF" -q 4096 >"$out" 2>&1 &
	fi
	pid=$!
	PIDS+=("$pid")
	for ((i = 0; i < READY_SECS * 20; i++)); do
		port=$(sed -n 's/^port \([0-9]*\)$/\1/p' "$out")
		[ -n "$port" ] && break
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.05
	done
	if [ -z "$port" ]; then
		echo "run-bench: the reference server did not start:" >&2
		cat "$out" >&2
		exit 1
	fi
	if [ "${2:-}" = dgram ]; then
		DREF_PORT=$port
	elif [ -n "${2:-}" ]; then
		CEIL_PID=$pid
		printf -v "CEIL_PORT_$2" '%s' "$port"
	else
		REF_PID=$pid
		REF_PORT=$port
	fi
}

# start_ssd NAME: starts sockserverd with one echo listener per model and
# waits for READY=1 on a NOTIFY_SOCKET of its own (or, without socat, for
# every listener in the log); sets SSD_PID and PORT_<model>.
start_ssd() {
	local conf=$TMP/$1.conf log=$TMP/$1.log
	local sock=$TMP/$1.notify nout=$TMP/$1.notify.out npid='' m i ok=''
	{
		echo 'log_level = "info";'
		echo 'shutdown_timeout = 2.0;'
		echo 'listeners = ('
		for m in $MODELS; do
			[ "$m" = event ] || echo ','
			echo "{ name = \"$m\"; address = \"127.0.0.1\"; port = 0;"
			echo "  handler = \"echo\"; concurrency = \"$m\";"
			echo "  timeout = 0; queue_size = 4096; max_connections = 0; }"
		done
		for m in $MODELS; do
			echo ", { name = \"d-$m\"; address = \"127.0.0.1\"; port = 0;"
			echo "  type = \"dgram\"; handler = \"echo\";"
			echo "  concurrency = \"$m\"; timeout = 0; max_connections = 0; }"
		done
		echo ');'
	} >"$conf"
	: >"$nout"
	if command -v socat >/dev/null; then
		socat -u "UNIX-RECV:$sock" - >"$nout" 2>&1 &
		npid=$!
		PIDS+=("$npid")
		for ((i = 0; i < READY_SECS * 20; i++)); do
			[ -S "$sock" ] && break
			sleep 0.05
		done
	fi
	(
		# The daemon's own fd limit: 20,000 where allowed.
		ulimit -n 20000 2>/dev/null
		if [ -S "$sock" ]; then
			export NOTIFY_SOCKET=$sock
		else
			unset NOTIFY_SOCKET
		fi
		unset JOURNAL_STREAM LISTEN_FDS LISTEN_PID LISTEN_FDNAMES
		exec "$SSD" -c "$conf"
	) 2>"$log" &
	SSD_PID=$!
	PIDS+=("$SSD_PID")
	for ((i = 0; i < READY_SECS * 20; i++)); do
		if [ -n "$npid" ]; then
			grep -q 'READY=1' "$nout" && ok=1
		elif [ "$(grep -c 'listening on' "$log")" -ge 8 ]; then
			ok=1
		fi
		[ -n "$ok" ] && break
		kill -0 "$SSD_PID" 2>/dev/null || break
		sleep 0.05
	done
	if [ -n "$npid" ]; then
		stop_pid "$npid"
		forget_pid "$npid"
	fi
	if [ -z "$ok" ]; then
		echo "run-bench: sockserverd did not become ready:" >&2
		cat "$log" >&2
		exit 1
	fi
	for m in $MODELS; do
		printf -v "PORT_$m" '%s' "$(sed -n \
		    "s/.*listener=$m: listening on 127\.0\.0\.1:\([0-9]*\) .*/\1/p" \
		    "$log")"
		printf -v "DPORT_$m" '%s' "$(sed -n \
		    "s/.*listener=d-$m: listening on 127\.0\.0\.1:\([0-9]*\) .*/\1/p" \
		    "$log")"
		if [ -z "$(port_of "$m")" ] || [ -z "$(dport_of "$m")" ]; then
			echo "run-bench: no port for listener $m or d-$m in $log" >&2
			exit 1
		fi
	done
}

# dport_of TARGET: the datagram port of a target.
dport_of() {
	if [ "$1" = reference ]; then
		echo "$DREF_PORT"
	else
		local v="DPORT_$1"
		echo "${!v}"
	fi
}

port_of() {
	local c="CEIL_PORT_$1"
	if [ "$1" = reference ]; then
		echo "$REF_PORT"
	elif [ -n "${!c:-}" ]; then
		echo "${!c}"
	else
		local v="PORT_$1"
		echo "${!v}"
	fi
}

# kv KEY LINE: the value of KEY=value in a loadgen result line.
kv() {
	local re="(^| )$1=([^ ]*)"
	[[ $2 =~ $re ]] && echo "${BASH_REMATCH[2]}"
	return 0
}

# lg TIMEOUT ARGS...: one bounded loadgen run; prints its result line, or
# "error=REASON".
lg() {
	local limit=$1 out rc
	shift
	out=$(timeout -k 2 "$limit" "$LG" "$@" 2>"$TMP/lg.err")
	rc=$?
	if [ $rc -ne 0 ] || [ -z "$out" ]; then
		if [ $rc -eq 124 ] || [ $rc -eq 137 ]; then
			echo "error=timed-out"
		else
			echo "error=exit-$rc:$(head -c 60 "$TMP/lg.err" | tr ' \n' '__')"
		fi
		return
	fi
	echo "$out"
}

declare -A RES		# RES[measure.target] = loadgen line (best round)

# keep_best KEY LINE: keeps LINE if its rate beats the stored one.
keep_best() {
	local old=${RES[$1]:-} new_rate old_rate
	new_rate=$(kv rate "$2")
	old_rate=$(kv rate "$old")
	if [ -z "$old" ] || { [ -n "$new_rate" ] &&
	    { [ -z "$old_rate" ] || [ "$new_rate" -gt "$old_rate" ]; }; }; then
		RES[$1]=$2
	fi
}

# progress WHAT LINE: one line on stderr per run, to judge the noise.
progress() {
	local e
	e=$(kv error "$2")
	if [ -n "$e" ]; then
		printf '  %-18s %s\n' "$1" "error: $e" >&2
	elif [ "$(kv mode "$2")" = bulk ]; then
		printf '  %-18s %s MiB/s%s\n' "$1" "$(kv rate "$2")" \
		    "$( [ "$(kv complete "$2")" = 1 ] || echo ' (unfinished)')" >&2
	elif [ -n "$(kv forks_per_s "$2")" ]; then
		printf '  %-18s %s forks/s\n' "$1" "$(kv forks_per_s "$2")" >&2
	elif [ -n "$(kv kib_per_conn "$2")" ]; then
		printf '  %-18s %s KiB/conn, %s open in %ss\n' "$1" \
		    "$(kv kib_per_conn "$2")" "$(kv open "$2")" \
		    "$(kv secs_to_open "$2")" >&2
	else
		printf '  %-18s %s/s\n' "$1" "$(kv rate "$2")" >&2
	fi
}

run_throughput() {
	local t port order=$TARGETS round line rev
	for ((round = 1; round <= ROUNDS; round++)); do
		echo "round $round/$ROUNDS: $order" >&2
		for t in $order; do
			port=$(port_of "$t")
			line=$(lg $((${SECS%.*} + WARMUP + 10)) -m pingpong -p "$port" \
			    -c 1 -d "$SECS" -w "$WARMUP")
			progress "pp1 $t" "$line"
			keep_best "pp1.$t" "$line"
			sleep 0.2
		done
		# threadref: the thread model's ceiling, in the same round.
		for t in $order threadref; do
			port=$(port_of "$t")
			line=$(lg $((${SECS%.*} + WARMUP + 10)) -m pingpong -p "$port" \
			    -c 100 -d "$SECS" -w "$WARMUP")
			progress "pp100 $t" "$line"
			keep_best "pp100.$t" "$line"
			# sync still has 99 queued clients to go through.
			sleep 0.5
		done
		# forkref: the fork model's ceiling, in the same round.
		for t in $order forkref; do
			port=$(port_of "$t")
			line=$(lg $((${SECS%.*} + 10)) -m connrate -p "$port" -c 50 \
			    -d "$SECS" -k "$CLOSE")
			progress "connrate $t" "$line"
			keep_best "cr.$t" "$line"
			sleep 0.5
		done
		# fork(2) alone, in the same round: the fork model's yardstick.
		line=$(timeout 10 "$BIN/forkrate" "$SECS" 2>/dev/null |
		    sed 's/^forks_per_s=\([0-9]*\)$/forks_per_s=\1 rate=\1/')
		progress "bare fork loop" "${line:-error=forkrate}"
		keep_best "forkrate" "${line:-error=forkrate}"
		for t in $order; do
			port=$(dport_of "$t")
			line=$(lg $((${SECS%.*} + WARMUP + 10)) -m dgram -p "$port" \
			    -c 50 -d "$SECS" -w "$WARMUP")
			progress "dgram $t" "$line"
			keep_best "dg.$t" "$line"
			sleep 0.2
		done
		for t in $order; do
			port=$(port_of "$t")
			line=$(lg $((BULK_SECS + 5)) -m bulk -p "$port" -b "$BULK_MIB" \
			    -d "$BULK_SECS")
			[ "$(kv complete "$line")" = 0 ] &&
			    line="error=unfinished:$(kv received "$line")_bytes_back"
			progress "bulk $t" "$line"
			keep_best "bulk.$t" "$line"
			sleep 0.2
		done
		rev=
		for t in $order; do
			rev="$t $rev"
		done
		order=$rev
	done
}

run_idle() {
	local t line port extra pid
	for t in $TARGETS; do
		if [ "$t" = sync ]; then
			RES[idle.$t]="error=n/a:_sync_serves_one_connection_at_a_time"
			continue
		fi
		extra=()
		if [ "$t" = reference ]; then
			start_ref "idle-ref"
			extra=(-P "$REF_PID")
			pid=$REF_PID
		else
			start_ssd "idle-$t"
			pid=$SSD_PID
			extra=(-P "$SSD_PID")
			# fork: the parent's Pss plus every child's.
			[ "$t" = fork ] && extra+=(-T)
		fi
		port=$(port_of "$t")
		line=$(lg $((IDLE_SECS + 20)) -m idle -p "$port" -c "$IDLE" \
		    -d "$IDLE_SECS" "${extra[@]}")
		RES[idle.$t]=$line
		progress "idle $t" "$line"
		if [ "$t" != reference ] &&
		    grep -q 'cannot create a thread\|cannot fork\|cannot allocate' \
		    "$TMP/idle-$t.log"; then
			RES[idle.$t]="$line daemon_said=$(grep -m1 -o \
			    'cannot [a-z ]*: [^;]*' "$TMP/idle-$t.log" | tr ' ' '_')"
		fi
		stop_pid "$pid"
		forget_pid "$pid"
	done
	# A bare thread per connection: what a thread costs by itself.
	start_ref "idle-threadref" threadref
	line=$(lg $((IDLE_SECS + 20)) -m idle -p "$CEIL_PORT_threadref" \
	    -c "$IDLE" -d "$IDLE_SECS" -P "$CEIL_PID")
	RES[idle.threadref]=$line
	progress "idle threadref" "$line"
	stop_pid "$CEIL_PID"
	forget_pid "$CEIL_PID"
}

# ---- run ----

LOAD0=$(cut -d' ' -f1-3 /proc/loadavg)
START=$(date +%s)
start_ref "ref"
start_ref "dref" dgram
start_ref "threadref" threadref
start_ref "forkref" forkref
start_ssd "ssd"
run_throughput
stop_all
run_idle
ELAPSED=$(($(date +%s) - START))

# ---- report ----

# ratio A B: A/B with two decimals, or "-".
ratio() {
	awk -v a="$1" -v b="$2" 'BEGIN {
		if (a == "" || b == "" || b + 0 <= 0 || a + 0 < 0) print "-";
		else printf "%.2f", a / b }'
}

# verdict VALUE OP LIMIT: PASS or MISS (MISS when VALUE is missing).
verdict() {
	awk -v v="$1" -v op="$2" -v l="$3" 'BEGIN {
		if (v == "" || v == "-") { print "MISS (no figure)"; exit }
		ok = op == ">=" ? v + 0 >= l + 0 : v + 0 <= l + 0
		print ok ? "PASS" : "MISS" }'
}

rate_of() { kv rate "${RES[$1]:-}"; }

NOTES=()

# pp_cells KEY TARGET: "rate ratio p50/p99" for a ping-pong column.
pp_cells() {
	local line=${RES[$1.$2]:-error=missing} ref=${RES[$1.reference]:-}
	local r mark=""
	if [ -n "$(kv error "$line")" ]; then
		printf '%9s %5s %11s' fail - -
		return
	fi
	r=$(kv rate "$line")
	[ "$(kv served "$line")" != "$(kv conns "$line")" ] && mark="*"
	[ "$(kv errors "$line")" != 0 ] && mark="$mark!"
	printf '%9s %5s %11s' "$r$mark" "$(ratio "$r" "$(kv rate "$ref")")" \
	    "$(printf '%.0f/%.0f' "$(kv p50_us "$line")" "$(kv p99_us "$line")")"
}

cr_cells() {
	local line=${RES[cr.$1]:-error=missing} ref=${RES[cr.reference]:-} r
	if [ -n "$(kv error "$line")" ]; then
		printf '%7s %5s %6s' fail - -
		return
	fi
	r=$(kv rate "$line")
	printf '%7s %5s %6s' "$r" "$(ratio "$r" "$(kv rate "$ref")")" \
	    "$(kv errors "$line")"
}

dg_cells() {
	local line=${RES[dg.$1]:-error=missing} ref=${RES[dg.reference]:-}
	local r mark=""
	if [ -n "$(kv error "$line")" ]; then
		printf '%9s %5s %11s %6s' fail - - -
		return
	fi
	r=$(kv rate "$line")
	[ "$(kv served "$line")" != "$(kv conns "$line")" ] && mark="*"
	printf '%9s %5s %11s %6s' "$r$mark" "$(ratio "$r" "$(kv rate "$ref")")" \
	    "$(printf '%.0f/%.0f' "$(kv p50_us "$line")" "$(kv p99_us "$line")")" \
	    "$(kv lost "$line")"
}

bulk_cells() {
	local line=${RES[bulk.$1]:-error=missing} ref=${RES[bulk.reference]:-} r
	if [ -n "$(kv error "$line")" ]; then
		printf '%7s %5s %6s' fail - -
		return
	fi
	r=$(kv rate "$line")
	printf '%7s %5s %6s' "$r" "$(ratio "$r" "$(kv rate "$ref")")" \
	    "$(kv secs "$line")"
}

idle_kib() {
	local line=${RES[idle.$1]:-}
	[ -z "$(kv error "$line")" ] && kv kib_per_conn "$line"
}

idle_cells() {
	local line=${RES[idle.$1]:-error=missing} k ref mark=""
	if [ -n "$(kv error "$line")" ]; then
		printf '%8s %5s' n/a -
		return
	fi
	k=$(kv kib_per_conn "$line")
	ref=$(idle_kib reference)
	[ "$(kv open "$line")" != "$(kv want "$line")" ] && mark="+"
	# The reference keeps no user-space state per connection (~0 KiB):
	# a ratio to it means nothing below 1 KiB.
	if awk -v r="$ref" 'BEGIN { exit !(r != "" && r + 0 >= 1) }'; then
		printf '%8s %5s' "$k$mark" "$(ratio "$k" "$ref")"
	else
		printf '%8s %5s' "$k$mark" -
	fi
}

# Footnotes for whatever is unusual in a target's results.
for t in $TARGETS; do
	for m in pp1 pp100 cr; do
		line=${RES[$m.$t]:-error=missing}
		if [ -n "$(kv error "$line")" ]; then
			NOTES+=("$t $m: failed: $(kv error "$line")")
			continue
		fi
		[ "$(kv errors "$line")" != 0 ] &&
		    NOTES+=("$t $m: $(kv errors "$line") errors, first $(kv first_error "$line")")
		[ "$m" != cr ] && [ "$(kv served "$line")" != "$(kv conns "$line")" ] &&
		    NOTES+=("* $t $m: $(kv served "$line") of $(kv conns "$line") connections served in the timed run")
	done
	for m in dg bulk; do
		line=${RES[$m.$t]:-error=missing}
		if [ -n "$(kv error "$line")" ]; then
			NOTES+=("$t $m: failed: $(kv error "$line" | tr '_' ' ')")
		elif [ "$(kv errors "$line")" != 0 ]; then
			NOTES+=("$t $m: $(kv errors "$line") errors, first $(kv first_error "$line")")
		fi
	done
	line=${RES[idle.$t]:-error=missing}
	if [ -n "$(kv error "$line")" ]; then
		NOTES+=("$t idle: $(kv error "$line" | tr '_' ' ')")
		continue
	fi
	if [ "$(kv open "$line")" != "$(kv want "$line")" ]; then
		n="+ $t idle: $(kv open "$line") of $(kv want "$line") connections open"
		[ "$(kv timedout "$line")" != 0 ] && n="$n when the ${IDLE_SECS}s cap ended the opening"
		[ "$(kv first_error "$line")" != none ] && [ "$(kv first_error "$line")" != TIMEOUT ] &&
		    n="$n; first error $(kv first_error "$line")"
		[ -n "$(kv daemon_said "$line")" ] &&
		    n="$n; the daemon said: $(kv daemon_said "$line" | tr '_' ' ')"
		NOTES+=("$n; the figure is per open connection")
	fi
	[ "$(kv measure "$line")" = pss-tree ] &&
	    NOTES+=("$t idle: Pss of the daemon and its $(($(kv procs_after "$line") - 1)) children (each page counted once), not VmRSS")
done

echo
echo "$("$SSD" -V 2>/dev/null | head -n1) -- benchmark: echo handler," \
    "64-byte messages, 127.0.0.1"
echo "$(nproc) CPUs, Linux $(uname -r); load average at start $LOAD0;" \
    "${SECS}s per run, best of $ROUNDS rounds; ${ELAPSED}s in all"
echo "reproduce: make bench   (BENCH_SECS, BENCH_ROUNDS, BENCH_IDLE," \
    "BENCH_CLOSE: see tests/bench/run-bench.sh)"
echo
printf '%-9s | %-27s | %-27s | %-20s | %s\n' "" "ping-pong, 1 conn" \
    "ping-pong, 100 conns" "new conns/s (50)" "idle ($IDLE conns)"
printf '%-9s | %9s %5s %11s | %9s %5s %11s | %7s %5s %6s | %8s %5s\n' \
    target msg/s "x ref" "p50/p99 us" msg/s "x ref" "p50/p99 us" \
    conn/s "x ref" errors KiB/conn "x ref"
for t in $TARGETS; do
	printf '%-9s | %s | %s | %s | %s\n' "$t" "$(pp_cells pp1 "$t")" \
	    "$(pp_cells pp100 "$t")" "$(cr_cells "$t")" "$(idle_cells "$t")"
done
echo
printf '%-9s | %-34s | %-20s\n' "" "UDP echo, 64 B, 50 senders" \
    "bulk, $BULK_MIB MiB, 1 conn"
printf '%-9s | %9s %5s %11s %6s | %7s %5s %6s\n' \
    target msg/s "x ref" "p50/p99 us" lost MiB/s "x ref" secs
for t in $TARGETS; do
	printf '%-9s | %s | %s\n' "$t" "$(dg_cells "$t")" "$(bulk_cells "$t")"
done
echo "(the datagram reference is tests/bench/dgramref: recvmmsg/sendmmsg, 64"
echo "datagrams a call; lost: datagrams resent after 100 ms without a reply)"
echo
for n in "${NOTES[@]}"; do
	echo "$n"
done
echo "sync serves one connection at a time by design: at 100 connections the"
echo "other 99 wait in the backlog for the whole (time-bounded) run."
echo "Idle: growth of VmRSS with the connections held open, each after one"
echo "echo, on a freshly started server; the reference keeps no per-connection"
echo "state in user space, so ratios to it are not shown."
echo "Connection-rate clients close with $CLOSE$( [ "$CLOSE" = rst ] &&
    echo ' (SO_LINGER 0: no TIME_WAIT on the client)')."
[ -n "$IDLE_NOTE" ] && echo "Note: $IDLE_NOTE."

ev100=$(ratio "$(rate_of pp100.event)" "$(rate_of pp100.reference)")
evdg=$(ratio "$(rate_of dg.event)" "$(rate_of dg.reference)")
sydg=$(ratio "$(rate_of dg.sync)" "$(rate_of dg.reference)")
evbulk=$(ratio "$(rate_of bulk.event)" "$(rate_of bulk.reference)")
thidle=$(idle_kib thread)
fkratio=$(ratio "$(rate_of cr.fork)" "$(rate_of forkrate)")
evcr=$(ratio "$(rate_of cr.event)" "$(rate_of cr.reference)")
th100=$(ratio "$(rate_of pp100.thread)" "$(rate_of pp100.reference)")
fkcr=$(rate_of cr.fork)
thref100=$(ratio "$(rate_of pp100.threadref)" "$(rate_of pp100.reference)")
thvsref=$(ratio "$(rate_of pp100.thread)" "$(rate_of pp100.threadref)")
threfidle=$(idle_kib threadref)
fkref=$(ratio "$(rate_of cr.forkref)" "$(rate_of forkrate)")
fkvsref=$(ratio "$(rate_of cr.fork)" "$(rate_of cr.forkref)")
evidle=$(idle_kib event)
# For scale: what fork(2) alone manages on this machine, in this run.
bare=$(rate_of forkrate)
echo
echo "targets (issue 3, 2-core machine):"
printf '  %-44s %8s  %s\n' \
    "event ping-pong @100 >= 0.90x reference" "${ev100}x" \
    "$(verdict "$ev100" '>=' 0.90)" \
    "event new conns/s >= 0.85x reference" "${evcr}x" \
    "$(verdict "$evcr" '>=' 0.85)" \
    "thread ping-pong @100 >= 0.50x reference" "${th100}x" \
    "$(verdict "$th100" '>=' 0.50)" \
    "fork new conns/s >= 1500" "${fkcr:--}" \
    "$(verdict "$fkcr" '>=' 1500)" \
    "  (a bare fork+_exit+waitpid loop here: ${bare:-?}/s)" "" "" \
    "event idle memory <= 8 KiB per connection" "${evidle:--}" \
    "$(verdict "$evidle" '<=' 8)"
echo
echo "targets (issue 11, 2-core machine; ratios within this run):"
printf '  %-44s %8s  %s\n' \
    "event UDP echo >= 0.90x dgramref" "${evdg}x" \
    "$(verdict "$evdg" '>=' 0.90)" \
    "sync UDP echo >= 0.60x dgramref" "${sydg}x" \
    "$(verdict "$sydg" '>=' 0.60)" \
    "event bulk stream >= 0.90x reference" "${evbulk}x" \
    "$(verdict "$evbulk" '>=' 0.90)" \
    "  (with event idle memory <= 8 KiB, above)" "" "" \
    "thread ping-pong @100 >= 0.80x reference" "${th100}x" \
    "$(verdict "$th100" '>=' 0.80)" \
    "  (threadref, a bare thread per connection:" "${thref100}x" "" \
    "   thread model = ${thvsref}x threadref)" "" "" \
    "thread idle memory <= 8 KiB per connection" "${thidle:--}" \
    "$(verdict "$thidle" '<=' 8)" \
    "  (threadref: KiB per idle connection)" "${threfidle:--}" "" \
    "fork new conns/s >= 0.60x bare fork loop" "${fkratio}x" \
    "$(verdict "$fkratio" '>=' 0.60)" \
    "  (forkref, a bare process per connection:" "${fkref}x" "" \
    "   fork model = ${fkvsref}x forkref)" "" ""
exit 0
