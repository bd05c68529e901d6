#!/usr/bin/env bash
# SPDX-License-Identifier: ISC
# run-tls-bench.sh - sockserverd's TLS benchmark (issue 10): what `make
# bench` runs after run-bench.sh, and `make bench-tls` alone.
#
# Generates an ECDSA P-256 certificate with the openssl command, then in
# one run measures sockserverd's echo over TLS (event model; tls listener
# key, port 0) against:
#   tlsref (tests/bench/tlsref.c), a minimal epoll + OpenSSL echo server:
#     ping-pong, 100 connections x 64 bytes (msg/s, p50/p99);
#     one connection streaming 256 MiB through the echo (MiB/s);
#     memory per idle TLS connection, 5,000 held open after the handshake
#     and one round trip (VmRSS growth / connections), beside sockserverd's
#     plaintext figure;
#   nginx's stream module terminating TLS with the same certificate (one
#     worker, generated config, `return "x";`): full TLS 1.3 handshakes
#     from several `openssl s_time -new` clients at once; on 2 cores the
#     clients are the bottleneck, so the figure compared is the server's
#     CPU time per handshake (utime+stime of its processes, from
#     /proc/PID/stat, over the handshakes completed); handshakes/s beside.
# then prints one table with ratios, and the targets of issue 10 with PASS
# or MISS.  A target that cannot run (a sockserverd without TLS, no nginx)
# shows n/a and the run goes on.
#
# Ping-pong and stream go in rounds, each visiting the targets in the
# reverse order of the one before; the best figure is kept.  Handshake
# rounds alternate the same way and are summed (CPU over handshakes).
# Idle memory is measured on a freshly started server per target.
#
# Every process it starts is stopped by PID on exit, whatever happens.
# Environment: BENCH_SECS (2) seconds per ping-pong run; BENCH_ROUNDS (3);
# BENCH_TLS_HS_SECS (2) seconds per handshake run; BENCH_TLS_HS_ROUNDS
# (6); BENCH_TLS_CLIENTS (4) s_time clients at once; BENCH_TLS_IDLE (5000)
# idle connections; BENCH_TLS_IDLE_SECS (20) bound on opening them;
# BENCH_TLS_MIB (256) streamed; NGINX (/usr/sbin/nginx), NGINX_MODULES
# (/usr/lib/nginx/modules); SSD_BIN, BENCH_BIN (build/bench).
set -u

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
SSD=${SSD_BIN:-$ROOT/sockserverd}
BIN=${BENCH_BIN:-$ROOT/build/bench}
TL=$BIN/tlsload
TREF=$BIN/tlsref
LG=$BIN/loadgen
SECS=${BENCH_SECS:-2}
ROUNDS=${BENCH_ROUNDS:-3}
HS_SECS=${BENCH_TLS_HS_SECS:-2}
HS_ROUNDS=${BENCH_TLS_HS_ROUNDS:-6}
CLIENTS=${BENCH_TLS_CLIENTS:-4}
IDLE=${BENCH_TLS_IDLE:-5000}
IDLE_SECS=${BENCH_TLS_IDLE_SECS:-20}
MIB=${BENCH_TLS_MIB:-256}
NGINX=${NGINX:-/usr/sbin/nginx}
NGINX_MODULES=${NGINX_MODULES:-/usr/lib/nginx/modules}
WARMUP=2		# seconds: every connection's handshake and round trip
STREAM_SECS=15		# bound on one stream run
READY_SECS=10		# bound on a server's start
STOP_SECS=10		# bound on a server's stop, then SIGKILL

for f in "$SSD" "$TL" "$TREF" "$LG"; do
	if [ ! -x "$f" ]; then
		echo "run-tls-bench: $f is missing: run 'make bench-tls'" >&2
		exit 1
	fi
done
if ! command -v openssl >/dev/null; then
	echo "run-tls-bench: the openssl command is missing" \
	    "(scripts/deps.sh bench)" >&2
	exit 1
fi
if ! [[ $SECS =~ ^[0-9]+([.][0-9]+)?$ && $ROUNDS =~ ^[1-9][0-9]*$ &&
    $HS_SECS =~ ^[1-9][0-9]*$ && $HS_ROUNDS =~ ^[1-9][0-9]*$ &&
    $CLIENTS =~ ^[1-9][0-9]*$ && $IDLE =~ ^[1-9][0-9]*$ &&
    $IDLE_SECS =~ ^[1-9][0-9]*$ && $MIB =~ ^[1-9][0-9]*$ ]]; then
	echo "run-tls-bench: bad BENCH_* setting" >&2
	exit 2
fi

TMP=$(mktemp -d /tmp/ssd-tls-bench.XXXXXX) || exit 1
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
		echo "run-tls-bench: pid $pid did not stop; killing it" >&2
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

ulimit -n "$(ulimit -Hn)" 2>/dev/null
NOFILE=$(ulimit -n)
IDLE_NOTE=""
if [ "$NOFILE" != unlimited ] && [ "$NOFILE" -lt $((IDLE + 200)) ]; then
	IDLE_NOTE="fd limit $NOFILE: $((NOFILE - 200)) idle connections, not $IDLE"
	IDLE=$((NOFILE - 200))
fi
HZ=$(getconf CLK_TCK)

# ---- the certificate ----

CERT=$TMP/cert.pem
KEY=$TMP/key.pem
if ! openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 \
    -nodes -keyout "$KEY" -out "$CERT" -days 2 -subj /CN=localhost \
    >"$TMP/req.log" 2>&1; then
	echo "run-tls-bench: openssl req failed:" >&2
	cat "$TMP/req.log" >&2
	exit 1
fi
chmod 644 "$KEY" "$CERT"

# ---- servers ----

# start_tlsref NAME: starts tlsref; sets TREF_PID, TREF_PORT.
start_tlsref() {
	local out=$TMP/$1.out i
	: >"$out"
	"$TREF" -c "$CERT" -k "$KEY" -q 4096 >"$out" 2>&1 &
	TREF_PID=$!
	PIDS+=("$TREF_PID")
	TREF_PORT=
	for ((i = 0; i < READY_SECS * 20; i++)); do
		TREF_PORT=$(sed -n 's/^port \([0-9]*\)$/\1/p' "$out")
		[ -n "$TREF_PORT" ] && return 0
		kill -0 "$TREF_PID" 2>/dev/null || break
		sleep 0.05
	done
	echo "run-tls-bench: tlsref did not start:" >&2
	cat "$out" >&2
	exit 1
}

# start_ssd NAME tls|plain: starts sockserverd with one event-model echo
# listener, over TLS or not, and waits for READY=1 on a NOTIFY_SOCKET of
# its own (or, without socat, for "listening on" in the log).  Sets
# SSD_PID and SSD_PORT and returns 0; or returns 1 with the reason in
# SSD_WHY, the daemon stopped (a sockserverd without TLS refuses the
# configuration).
start_ssd() {
	local conf=$TMP/$1.conf log=$TMP/$1.log kind=$2
	local sock=$TMP/$1.notify nout=$TMP/$1.notify.out npid='' i ok=''
	{
		echo 'log_level = "info";'
		echo 'shutdown_timeout = 2.0;'
		echo 'listeners = ('
		echo "{ name = \"$kind\"; address = \"127.0.0.1\"; port = 0;"
		echo '  handler = "echo"; concurrency = "event";'
		echo '  timeout = 0; queue_size = 4096; max_connections = 0;'
		if [ "$kind" = tls ]; then
			echo "  tls = { certificate = \"$CERT\"; key = \"$KEY\"; };"
		fi
		echo '}'
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
		elif grep -q 'listening on' "$log"; then
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
	SSD_PORT=$(sed -n "s/.*listener=$kind: listening on 127\.0\.0\.1:\([0-9][0-9]*\).*/\1/p" \
	    "$log" | head -n1)
	if [ -n "$ok" ] && [ -n "$SSD_PORT" ]; then
		return 0
	fi
	stop_pid "$SSD_PID"
	forget_pid "$SSD_PID"
	SSD_WHY=$(grep -m1 -i 'error\|unknown\|invalid\|cannot' "$log")
	[ -z "$SSD_WHY" ] && SSD_WHY=$(head -n1 "$log")
	[ -z "$SSD_WHY" ] && SSD_WHY="not ready in ${READY_SECS}s"
	[ -n "$ok" ] && SSD_WHY="no port for listener $kind in its log"
	echo "run-tls-bench: sockserverd ($kind) did not start: $SSD_WHY" >&2
	return 1
}

# free_port: a port the kernel would give now on 127.0.0.1 (nginx cannot
# listen on port 0); the race with other programs is retried by the caller.
free_port() {
	python3 -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])' 2>/dev/null
}

# start_nginx: nginx, master and one worker, stream module terminating TLS
# with the same certificate, `return "x";`.  Sets NGX_PID (the master) and
# NGX_PORT and returns 0, or returns 1 with the reason in NGX_WHY.
start_nginx() {
	local dir=$TMP/nginx i
	NGX_WHY=
	if [ ! -x "$NGINX" ] || [ ! -e "$NGINX_MODULES/ngx_stream_module.so" ]; then
		NGX_WHY="nginx or its stream module is not installed (scripts/deps.sh bench)"
		return 1
	fi
	if ! command -v python3 >/dev/null; then
		NGX_WHY="python3 is needed to pick a free port for nginx"
		return 1
	fi
	mkdir -p "$dir"
	for _ in 1 2 3; do
		NGX_PORT=$(free_port)
		cat >"$dir/nginx.conf" <<-EOF
		load_module $NGINX_MODULES/ngx_stream_module.so;
		daemon off;
		master_process on;
		worker_processes 1;
		worker_rlimit_nofile 20000;
		pid $dir/nginx.pid;
		error_log $dir/error.log warn;
		events { worker_connections 16384; }
		stream {
		    server {
		        listen 127.0.0.1:$NGX_PORT ssl backlog=4096;
		        ssl_certificate $CERT;
		        ssl_certificate_key $KEY;
		        ssl_protocols TLSv1.2 TLSv1.3;
		        return "x";
		    }
		}
		EOF
		: >"$dir/error.log"
		"$NGINX" -p "$dir" -c "$dir/nginx.conf" -e "$dir/error.log" \
		    >"$dir/stderr" 2>&1 &
		NGX_PID=$!
		PIDS+=("$NGX_PID")
		for ((i = 0; i < READY_SECS * 20; i++)); do
			kill -0 "$NGX_PID" 2>/dev/null || break
			if [ -n "$(children "$NGX_PID")" ] &&
			    (exec 3<>"/dev/tcp/127.0.0.1/$NGX_PORT") 2>/dev/null; then
				return 0
			fi
			sleep 0.05
		done
		stop_pid "$NGX_PID"
		forget_pid "$NGX_PID"
		NGX_WHY=$(cat "$dir/stderr" "$dir/error.log" | grep -m1 .)
		grep -q 'in use' <<<"$NGX_WHY" || break
	done
	[ -z "$NGX_WHY" ] && NGX_WHY="nginx not ready in ${READY_SECS}s"
	echo "run-tls-bench: nginx did not start: $NGX_WHY" >&2
	return 1
}

# children PID: the pids whose parent is PID.
children() {
	local f s rest pp
	for f in /proc/[0-9]*/stat; do
		{ read -r s <"$f"; } 2>/dev/null || continue
		rest=${s##*) }
		read -r _ pp _ <<<"$rest"
		[ "$pp" = "$1" ] && { s=${f#/proc/}; echo "${s%/stat}"; }
	done
}

# cpu_ticks PID: CPU time in clock ticks of PID (utime+stime, and
# cutime+cstime for the children it reaped) plus utime+stime of each of
# its live children (nginx's worker, a daemon's worker processes).
cpu_ticks() {
	local root=$1 total=0 f s
	local -a v
	for f in /proc/[0-9]*/stat; do
		{ read -r s <"$f"; } 2>/dev/null || continue
		# Fields from the 3rd (state) on; comm may hold anything.
		read -r -a v <<<"${s##*) }"
		if [ "${f#/proc/}" = "$root/stat" ]; then
			total=$((total + v[11] + v[12] + v[13] + v[14]))
		elif [ "${v[1]}" = "$root" ]; then
			total=$((total + v[11] + v[12]))
		fi
	done
	echo "$total"
}

port_of() {
	case $1 in
	tlsref) echo "$TREF_PORT" ;;
	sockserverd) echo "${SSD_PORT:-}" ;;
	nginx) echo "${NGX_PORT:-}" ;;
	esac
}

pid_of() {
	case $1 in
	tlsref) echo "$TREF_PID" ;;
	sockserverd) echo "${SSD_PID:-}" ;;
	nginx) echo "${NGX_PID:-}" ;;
	esac
}

# kv KEY LINE: the value of KEY=value in a result line.
kv() {
	local re="(^| )$1=([^ ]*)"
	[[ $2 =~ $re ]] && echo "${BASH_REMATCH[2]}"
	return 0
}

# run TOOL TIMEOUT ARGS...: one bounded tlsload or loadgen run; prints its
# result line, or "error=REASON".
run() {
	local tool=$1 limit=$2 out rc
	shift 2
	out=$(timeout -k 2 "$limit" "$tool" "$@" 2>"$TMP/run.err")
	rc=$?
	if [ $rc -ne 0 ] || [ -z "$out" ]; then
		if [ $rc -eq 124 ] || [ $rc -eq 137 ]; then
			echo "error=timed-out"
		else
			echo "error=exit-$rc:$(head -c 60 "$TMP/run.err" | tr ' \n' '__')"
		fi
		return
	fi
	echo "$out"
}

declare -A RES		# RES[measure.target] = result line (best round)
declare -A HS_N HS_TICKS HS_WALL HS_ERR HS_BROKEN

# keep_best KEY LINE: keeps LINE if its rate beats the stored one.
keep_best() {
	local old=${RES[$1]:-}
	if [ -z "$old" ] || awk -v n="$(kv rate "$2")" -v o="$(kv rate "$old")" \
	    'BEGIN { exit !(n != "" && (o == "" || n + 0 > o + 0)) }'; then
		RES[$1]=$2
	fi
}

progress() {
	local e
	e=$(kv error "$2")
	if [ -n "$e" ]; then
		printf '  %-22s %s\n' "$1" "error: $e" >&2
	elif [ -n "$(kv kib_per_conn "$2")" ]; then
		printf '  %-22s %s KiB/conn, %s open in %ss\n' "$1" \
		    "$(kv kib_per_conn "$2")" "$(kv open "$2")" \
		    "$(kv secs_to_open "$2")" >&2
	elif [ "$(kv mode "$2")" = stream ]; then
		printf '  %-22s %s MiB/s (%s)\n' "$1" "$(kv rate "$2")" \
		    "$(kv first_error "$2")" >&2
	else
		printf '  %-22s %s/s\n' "$1" "$(kv rate "$2")" >&2
	fi
}

reverse() {
	local t rev=
	for t in $1; do
		rev="$t $rev"
	done
	echo "$rev"
}

# hs_run TARGET: CLIENTS `openssl s_time -new` at once for HS_SECS against
# TARGET; adds the handshakes, the server's CPU ticks and the wall time.
hs_run() {
	local t=$1 port pid c0 c1 w0 w1 i n sum=0 bad='' spids=()
	port=$(port_of "$t")
	pid=$(pid_of "$t")
	c0=$(cpu_ticks "$pid")
	w0=$EPOCHREALTIME
	for ((i = 0; i < CLIENTS; i++)); do
		timeout -k 2 $((HS_SECS + 10)) openssl s_time \
		    -connect "127.0.0.1:$port" -new -tls1_3 -time "$HS_SECS" \
		    >"$TMP/stime.$i" 2>&1 </dev/null &
		spids+=("$!")
		PIDS+=("$!")
	done
	for i in "${spids[@]}"; do
		wait "$i"
		forget_pid "$i"
	done
	w1=$EPOCHREALTIME
	c1=$(cpu_ticks "$pid")
	for ((i = 0; i < CLIENTS; i++)); do
		n=$(sed -n 's/^\([0-9][0-9]*\) connections in .* real seconds.*/\1/p' \
		    "$TMP/stime.$i")
		if [ -z "$n" ]; then
			bad=$(grep -m1 -v '^\*\|^Collecting' "$TMP/stime.$i" |
			    head -c 80)
			n=0
		fi
		sum=$((sum + n))
	done
	[ -n "$bad" ] && HS_ERR[$t]="s_time: ${bad:-no result}"
	# A server that died mid-run has no CPU figure to give.
	if ! kill -0 "$pid" 2>/dev/null || [ "$c1" -lt "$c0" ]; then
		HS_ERR[$t]="the server exited during the run"
		HS_BROKEN[$t]=1
	fi
	HS_N[$t]=$((${HS_N[$t]:-0} + sum))
	HS_TICKS[$t]=$((${HS_TICKS[$t]:-0} + c1 - c0))
	HS_WALL[$t]=$(awk -v a="${HS_WALL[$t]:-0}" -v b="$w0" -v c="$w1" \
	    'BEGIN { printf "%.3f", a + c - b }')
	printf '  %-22s %s handshakes in %.1fs, %s CPU ticks (%s us each)\n' \
	    "hs $t" "$sum" "$(awk -v b="$w0" -v c="$w1" 'BEGIN { print c - b }')" \
	    $((c1 - c0)) "$(awk -v t=$((c1 - c0)) -v hz="$HZ" -v n="$sum" \
	    'BEGIN { if (n > 0) printf "%.0f", t * 1e6 / hz / n; else print "-" }')" >&2
}

run_handshakes() {
	local order=$1 round t
	for ((round = 1; round <= HS_ROUNDS; round++)); do
		echo "handshakes, round $round/$HS_ROUNDS: $order" >&2
		for t in $order; do
			hs_run "$t"
			sleep 0.5
		done
		order=$(reverse "$order")
	done
}

run_throughput() {
	local order=$1 round t line
	for ((round = 1; round <= ROUNDS; round++)); do
		echo "round $round/$ROUNDS: $order" >&2
		for t in $order; do
			line=$(run "$TL" $((${SECS%.*} + WARMUP + 10)) \
			    -m pingpong -p "$(port_of "$t")" -c 100 \
			    -d "$SECS" -w "$WARMUP")
			progress "tls pp100 $t" "$line"
			keep_best "pp100.$t" "$line"
			sleep 0.2
		done
		for t in $order; do
			# A stream that could not finish once is not retried.
			if [ "$round" -gt 1 ] &&
			    [ "$(kv complete "${RES[stream.$t]:-}")" != 1 ]; then
				continue
			fi
			line=$(run "$TL" $((STREAM_SECS + 10)) -m stream \
			    -p "$(port_of "$t")" -b "$MIB" -d "$STREAM_SECS")
			progress "tls stream $t" "$line"
			if [ "$(kv complete "$line")" = 1 ]; then
				keep_best "stream.$t" "$line"
			elif [ -z "${RES[stream.$t]:-}" ]; then
				RES[stream.$t]=$line
			fi
			sleep 0.2
		done
		order=$(reverse "$order")
	done
}

# idle_one KEY TOOL PID PORT: one idle measure into RES[idle.KEY].
idle_one() {
	local line
	line=$(run "$2" $((IDLE_SECS + 20)) -m idle -p "$4" -c "$IDLE" \
	    -d "$IDLE_SECS" -P "$3")
	RES[idle.$1]=$line
	progress "idle $1" "$line"
}

run_idle() {
	start_tlsref "idle-tlsref"
	idle_one tlsref "$TL" "$TREF_PID" "$TREF_PORT"
	stop_pid "$TREF_PID"
	forget_pid "$TREF_PID"
	if start_ssd "idle-tls" tls; then
		idle_one sockserverd "$TL" "$SSD_PID" "$SSD_PORT"
		stop_pid "$SSD_PID"
		forget_pid "$SSD_PID"
	else
		RES[idle.sockserverd]="error=n/a"
	fi
	if start_ssd "idle-plain" plain; then
		idle_one plain "$LG" "$SSD_PID" "$SSD_PORT"
		stop_pid "$SSD_PID"
		forget_pid "$SSD_PID"
	else
		RES[idle.plain]="error=n/a"
	fi
}

# ---- run ----

LOAD0=$(cut -d' ' -f1-3 /proc/loadavg)
START=$(date +%s)
SSD_OK=''
SSD_WHY=''
NGX_OK=''
start_tlsref "tlsref"
start_ssd "ssd" tls && SSD_OK=1
SSD_TLS_WHY=$SSD_WHY
start_nginx && NGX_OK=1
HS_TARGETS="tlsref${SSD_OK:+ sockserverd}${NGX_OK:+ nginx}"
TP_TARGETS="tlsref${SSD_OK:+ sockserverd}"
run_handshakes "$HS_TARGETS"
run_throughput "$TP_TARGETS"
stop_all
run_idle
ELAPSED=$(($(date +%s) - START))

# ---- report ----

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

# Microseconds of server CPU per handshake, or nothing.
hs_us() {
	local n=${HS_N[$1]:-0}
	[ -z "${HS_BROKEN[$1]:-}" ] && [ "$n" -gt 0 ] && awk -v t="${HS_TICKS[$1]}" -v hz="$HZ" -v n="$n" \
	    'BEGIN { printf "%.0f", t * 1e6 / hz / n }'
}

hs_rate() {
	local n=${HS_N[$1]:-0}
	[ "$n" -gt 0 ] && awk -v w="${HS_WALL[$1]}" -v n="$n" \
	    'BEGIN { if (w > 0) printf "%.0f", n / w }'
}

hs_cells() {
	local us
	us=$(hs_us "$1")
	if [ -z "$us" ]; then
		printf '%7s %8s %7s' n/a - -
		return
	fi
	printf '%7s %8s %7s' "$(hs_rate "$1")" "$us" \
	    "$(ratio "$us" "$(hs_us nginx)")"
}

ok_line() {
	local line=${RES[$1]:-error=missing}
	[ -z "$(kv error "$line")" ] && [ "$(kv errors "$line")" = 0 ] &&
	    echo "$line"
}

pp_cells() {
	local line=${RES[pp100.$1]:-} ref=${RES[pp100.tlsref]:-} r mark=''
	if [ -z "$line" ] || [ -n "$(kv error "$line")" ]; then
		printf '%8s %5s %11s' n/a - -
		return
	fi
	r=$(kv rate "$line")
	[ "$(kv served "$line")" != "$(kv conns "$line")" ] && mark="*"
	[ "$(kv errors "$line")" != 0 ] && mark="$mark!"
	printf '%8s %5s %11s' "$r$mark" "$(ratio "$r" "$(kv rate "$ref")")" \
	    "$(printf '%.0f/%.0f' "$(kv p50_us "$line")" "$(kv p99_us "$line")")"
}

stream_cells() {
	local line=${RES[stream.$1]:-} ref r
	if [ -z "$line" ] || [ -n "$(kv error "$line")" ]; then
		printf '%7s %5s' n/a -
		return
	fi
	if [ "$(kv complete "$line")" != 1 ]; then
		printf '%7s %5s' fail -
		return
	fi
	r=$(kv rate "$line")
	ref=${RES[stream.tlsref]:-}
	[ "$(kv complete "$ref")" = 1 ] || ref=
	printf '%7s %5s' "$r" "$(ratio "$r" "$(kv rate "$ref")")"
}

idle_kib() {
	local line=${RES[idle.$1]:-}
	[ -n "$line" ] && [ -z "$(kv error "$line")" ] &&
	    kv kib_per_conn "$line"
}

idle_cells() {
	local k p='' mark=''
	k=$(idle_kib "$1")
	[ "$1" = sockserverd ] && p=$(idle_kib plain)
	[ -n "$k" ] && [ "$(kv open "${RES[idle.$1]}")" != \
	    "$(kv want "${RES[idle.$1]}")" ] && mark="+"
	printf '%8s %9s' "${k:-n/a}$mark" "${p:--}"
}

NOTES=()
[ -z "$SSD_OK" ] && NOTES+=("sockserverd (tls listener) did not start: $SSD_TLS_WHY")
[ -z "$NGX_OK" ] && NOTES+=("nginx: $NGX_WHY")
for t in tlsref sockserverd nginx; do
	[ -n "${HS_ERR[$t]:-}" ] && NOTES+=("$t handshakes: ${HS_ERR[$t]}")
	for m in pp100 stream; do
		line=${RES[$m.$t]:-}
		[ -z "$line" ] && continue
		if [ -n "$(kv error "$line")" ]; then
			NOTES+=("$t $m: failed: $(kv error "$line")")
			continue
		fi
		[ "$(kv errors "$line")" != 0 ] &&
		    NOTES+=("$t $m: $(kv errors "$line") errors, first $(kv first_error "$line")")
		[ "$m" = stream ] && [ "$(kv complete "$line")" != 1 ] &&
		    NOTES+=("$t stream: not complete: $(kv received "$line") of $(kv bytes "$line") bytes back ($(kv first_error "$line"))")
		[ "$m" = pp100 ] && [ "$(kv served "$line")" != "$(kv conns "$line")" ] &&
		    NOTES+=("* $t pp100: $(kv served "$line") of $(kv conns "$line") connections served")
	done
done
for t in tlsref sockserverd plain; do
	line=${RES[idle.$t]:-}
	[ -z "$line" ] && continue
	if [ -n "$(kv error "$line")" ]; then
		[ "$line" != error=n/a ] &&
		    NOTES+=("$t idle: $(kv error "$line" | tr '_' ' ')")
		continue
	fi
	if [ "$(kv open "$line")" != "$(kv want "$line")" ]; then
		NOTES+=("+ $t idle: $(kv open "$line") of $(kv want "$line") connections open (first error $(kv first_error "$line")); the figure is per open connection")
	fi
done

ngx_ver=$("$NGINX" -v 2>&1 | sed -n 's|.*nginx/||p')
echo
echo "$("$SSD" -V 2>/dev/null | head -n1) -- TLS benchmark: echo over" \
    "TLS 1.3, ECDSA P-256 certificate, 127.0.0.1"
echo "$(nproc) CPUs, Linux $(uname -r), $(openssl version | cut -d' ' -f1-2)," \
    "nginx ${ngx_ver:-absent}; load average at start $LOAD0; ${ELAPSED}s in all"
echo "reproduce: make bench-tls   (BENCH_SECS, BENCH_ROUNDS, BENCH_TLS_*:" \
    "see tests/bench/run-tls-bench.sh)"
echo
printf '%-11s | %-25s | %-26s | %-13s | %s\n' "" \
    "handshakes, ${CLIENTS} x s_time" "ping-pong, 100 conns" \
    "stream $MIB MiB" "idle ($IDLE conns)"
printf '%-11s | %7s %8s %7s | %8s %5s %11s | %7s %5s | %8s %9s\n' \
    target hs/s "CPU us" "x nginx" msg/s "x ref" "p50/p99 us" MiB/s \
    "x ref" "KiB/conn" "plaintext"
for t in tlsref sockserverd nginx; do
	if [ "$t" = nginx ]; then
		printf '%-11s | %s | %26s | %13s | %s\n' "$t" "$(hs_cells "$t")" \
		    - - "      -         -"
		continue
	fi
	printf '%-11s | %s | %s | %s | %s\n' "$t" "$(hs_cells "$t")" \
	    "$(pp_cells "$t")" "$(stream_cells "$t")" "$(idle_cells "$t")"
done
echo
for n in "${NOTES[@]}"; do
	echo "$n"
done
echo "Handshakes: full TLS 1.3 handshakes (openssl s_time -new, $CLIENTS clients"
echo "at once, ${HS_SECS}s x $HS_ROUNDS rounds, summed); CPU us = the server's"
echo "utime+stime (its processes: nginx master + worker) per handshake."
echo "Idle: growth of VmRSS with the connections held open, each after its"
echo "handshake and one echo, on a freshly started server; 'plaintext' is the"
echo "same sockserverd listener without tls."
[ -n "$IDLE_NOTE" ] && echo "Note: $IDLE_NOTE."

hs_ssd=$(hs_us sockserverd)
hs_ngx=$(hs_us nginx)
hsr=$(ratio "$hs_ssd" "$hs_ngx")
hs_fig=n/a
[ "$hsr" != - ] && hs_fig="${hsr}x ($hs_ssd/$hs_ngx us)"

pp=$(ratio "$(kv rate "$(ok_line pp100.sockserverd)")" \
    "$(kv rate "${RES[pp100.tlsref]:-}")")
st=$(ratio "$(kv rate "${RES[stream.sockserverd]:-}")" \
    "$(kv rate "${RES[stream.tlsref]:-}")")
[ "$(kv complete "${RES[stream.sockserverd]:-}")" = 1 ] || st=-
idle=$(idle_kib sockserverd)
echo
echo "targets (issue 10, 2-core machine):"
# fig VALUE [SUFFIX]: the figure as printed, or n/a.
fig() {
	if [ -z "$1" ] || [ "$1" = - ]; then echo n/a; else echo "$1${2:-}"; fi
}
printf '  %-46s %18s  %s\n' \
    "handshake CPU/handshake: sockserverd <= nginx" "$hs_fig" \
    "$(verdict "$hsr" '<=' 1.00)" \
    "TLS ping-pong @100 >= 0.90x tlsref" "$(fig "$pp" x)" \
    "$(verdict "$pp" '>=' 0.90)" \
    "TLS stream $MIB MiB >= 0.80x tlsref" "$(fig "$st" x)" \
    "$(verdict "$st" '>=' 0.80)" \
    "idle TLS memory <= 32 KiB per connection" "$(fig "$idle" " KiB")" \
    "$(verdict "$idle" '<=' 32)"
exit 0
