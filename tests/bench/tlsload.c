/* SPDX-License-Identifier: ISC */
/*
 * tlsload.c - the TLS benchmark's load generator: loadgen.c over OpenSSL 3.
 * One thread, one epoll set (edge-triggered), non-blocking sockets, every
 * run bounded in time.  Each connection connects, runs a full TLS
 * handshake (no session reuse, no certificate verification: the cost
 * measured is the server's), then:
 *
 *   pingpong  N connections; each sends SIZE bytes, waits for the whole
 *             echo and repeats.  A warm-up (at most -w seconds) gives every
 *             connection its handshake and one round trip, then -d seconds
 *             are timed: messages/s, p50/p99 round trip (log-linear
 *             histogram, 1.6% resolution).  Same result line as loadgen.
 *   stream    one connection writes -b MiB through the echo while reading
 *             it back (writer and reader interleaved on the same
 *             non-blocking connection, 16 KiB records), checking every
 *             byte; MiB/s from the first write to the last byte back.  -d
 *             bounds the run; an unfinished stream is reported, not timed.
 *   idle      opens N connections, at most 256 being set up at once, each
 *             completing its handshake and one round trip, within -d
 *             seconds; holds them, reads VmRSS of process -P before and
 *             after, and closes.  Same result line as loadgen's idle.
 *
 * Closing: -k rst (the default for idle) sets SO_LINGER {1, 0} and closes
 * without close_notify, leaving no TIME_WAIT; -k fin (the default
 * otherwise) sends close_notify, then closes.
 *
 * usage: tlsload -m pingpong|stream|idle -p PORT [-a ADDR] [-c CONNS]
 *                [-d SECS] [-w SECS] [-s SIZE] [-b MIB] [-k fin|rst]
 *                [-P PID]
 */
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#define TL_MAXEVENTS	512
#define TL_MAXSIZE	16384
#define TL_RECORD	16384		/* stream: one full record a write */
#define TL_PATTERN	251		/* stream: prime period of the bytes */
#define TL_IDLE_INFLIGHT 256
#define TL_HOLD_NS	500000000ull	/* idle: settle before measuring */

/* Log-linear histogram of nanoseconds: 64 sub-buckets per power of 2. */
#define HIST_SUB_BITS	6
#define HIST_SUB	(1u << HIST_SUB_BITS)
#define HIST_NBUCKETS	((64 - HIST_SUB_BITS) * HIST_SUB + 2 * HIST_SUB)

enum tl_mode { MODE_PINGPONG, MODE_STREAM, MODE_IDLE };

enum tl_state {
	ST_FREE,
	ST_CONNECTING,	/* TCP: waiting for EPOLLOUT */
	ST_HANDSHAKE,	/* SSL_connect until done */
	ST_SENDING,	/* part of the message still to send */
	ST_RECEIVING,	/* waiting for the rest of the echo */
	ST_IDLE,	/* idle mode: round trip done, held open */
	ST_STREAM	/* stream mode: writing and reading */
};

struct tl_conn {
	int		 fd;
	SSL		*ssl;
	enum tl_state	 state;
	uint32_t	 off;		/* bytes sent, then bytes received */
	uint64_t	 t0;		/* when the message was sent */
	bool		 served;	/* a round trip completed (timed) */
	bool		 warmed;	/* a round trip completed (any time) */
};

struct tl_errors {
	unsigned long	 connect, tls, reset, eof, other;
	const char	*first;		/* name of the first one, or NULL */
	int		 last;		/* errno of the latest one, or 0 */
};

static struct {
	enum tl_mode		 mode;
	struct sockaddr_in	 addr;
	unsigned		 nconns;
	double			 duration;
	double			 warmup;
	size_t			 size;
	uint64_t		 stream_bytes;
	bool			 rst;
	pid_t			 pid;
} opt;

static SSL_CTX			*ctx;
static int			 ep;
static struct tl_conn		*conns;
static char			 msg[TL_MAXSIZE];
static char			 rbuf[TL_MAXSIZE];
static uint64_t			 hist[HIST_NBUCKETS];
static uint64_t			 nsamples;
static struct tl_errors		 errs;
static volatile sig_atomic_t	 tl_quit;

static uint64_t
now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static unsigned
hist_index(uint64_t v)
{
	unsigned e;

	if (v < 2 * HIST_SUB)
		return (unsigned)v;
	e = 63u - (unsigned)__builtin_clzll(v);	/* >= HIST_SUB_BITS + 1 */
	return ((e - HIST_SUB_BITS) << HIST_SUB_BITS) +
	    (unsigned)(v >> (e - HIST_SUB_BITS));
}

/* Middle of a bucket, in ns. */
static double
hist_value(unsigned i)
{
	unsigned	e, sub;
	uint64_t	lo, width;

	if (i < 2 * HIST_SUB)
		return i;
	e = (i >> HIST_SUB_BITS) + HIST_SUB_BITS - 1;
	sub = i & (HIST_SUB - 1);
	lo = (uint64_t)(HIST_SUB + sub) << (e - HIST_SUB_BITS);
	width = 1ull << (e - HIST_SUB_BITS);
	return (double)lo + (double)width / 2;
}

static void
hist_add(uint64_t ns)
{
	unsigned i = hist_index(ns);

	if (i >= HIST_NBUCKETS)
		i = HIST_NBUCKETS - 1;
	hist[i]++;
	nsamples++;
}

/* The q-quantile (0 < q <= 1) in microseconds; 0 without samples. */
static double
hist_quantile_us(double q)
{
	uint64_t rank, seen = 0;

	if (nsamples == 0)
		return 0;
	rank = (uint64_t)(q * (double)nsamples + 0.5);
	if (rank < 1)
		rank = 1;
	for (unsigned i = 0; i < HIST_NBUCKETS; i++) {
		seen += hist[i];
		if (seen >= rank)
			return hist_value(i) / 1000.0;
	}
	return 0;
}

/* Counts an error; name is kept if it is the first. */
static void
err_count(unsigned long *counter, int e, const char *name)
{
	(*counter)++;
	errs.last = e;
	if (errs.first == NULL)
		errs.first = name;
}

static void
err_errno(unsigned long *counter, int e)
{
	const char *s = strerrorname_np(e);

	err_count(counter, e, s != NULL ? s : "unknown");
}

static unsigned long
err_total(void)
{
	return errs.connect + errs.tls + errs.reset + errs.eof + errs.other;
}

static void
conn_close(struct tl_conn *c)
{
	if (c->ssl != NULL) {
		/* fin: close_notify, best effort (non-blocking). */
		if (!opt.rst && c->state != ST_CONNECTING &&
		    c->state != ST_HANDSHAKE)
			(void)SSL_shutdown(c->ssl);
		SSL_free(c->ssl);
		c->ssl = NULL;
	}
	if (c->fd != -1)
		close(c->fd);	/* also leaves the epoll set */
	c->fd = -1;
	c->state = ST_FREE;
	ERR_clear_error();
}

/*
 * After an SSL_* call returned rc <= 0: 0 if it only has to wait (the
 * edge-triggered registration brings the next event), -1 (counted) if the
 * connection failed.
 */
static int
conn_ssl_wait(struct tl_conn *c, int rc)
{
	int e = SSL_get_error(c->ssl, rc);

	switch (e) {
	case SSL_ERROR_WANT_READ:
	case SSL_ERROR_WANT_WRITE:
		return 0;
	case SSL_ERROR_ZERO_RETURN:
		err_count(&errs.eof, 0, "close_notify");
		break;
	case SSL_ERROR_SYSCALL:
		if (errno == 0)
			err_count(&errs.eof, 0, "EOF");
		else
			err_errno(errno == ECONNRESET || errno == EPIPE ?
			    &errs.reset : &errs.other, errno);
		break;
	default:
		err_count(&errs.tls, 0, c->state == ST_HANDSHAKE ?
		    "TLS_HANDSHAKE" : "TLS");
		break;
	}
	return -1;
}

/* Starts a non-blocking connect for c; -1 (counted) on failure. */
static int
conn_open(struct tl_conn *c)
{
	struct epoll_event	 ev;
	struct linger		 lin = { .l_onoff = 1, .l_linger = 0 };
	int			 fd, one = 1;

	c->fd = -1;
	c->ssl = NULL;
	c->state = ST_FREE;
	c->off = 0;
	fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd == -1) {
		err_errno(&errs.connect, errno);
		return -1;
	}
	if ((opt.rst && setsockopt(fd, SOL_SOCKET, SO_LINGER, &lin,
	    sizeof(lin)) == -1) ||
	    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) == -1) {
		err_errno(&errs.other, errno);
		close(fd);
		return -1;
	}
	if (connect(fd, (struct sockaddr *)&opt.addr, sizeof(opt.addr)) ==
	    -1 && errno != EINPROGRESS) {
		err_errno(&errs.connect, errno);
		close(fd);
		return -1;
	}
	if ((c->ssl = SSL_new(ctx)) == NULL || SSL_set_fd(c->ssl, fd) != 1) {
		err_count(&errs.other, 0, "SSL_new");
		SSL_free(c->ssl);
		c->ssl = NULL;
		close(fd);
		return -1;
	}
	SSL_set_connect_state(c->ssl);
	/* Edge-triggered: one registration serves the whole life. */
	ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
	ev.data.u32 = (uint32_t)(c - conns);
	if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) == -1) {
		err_errno(&errs.other, errno);
		SSL_free(c->ssl);
		c->ssl = NULL;
		close(fd);
		return -1;
	}
	c->fd = fd;
	c->state = ST_CONNECTING;
	return 0;
}

/* Sends (the rest of) the message; -1 (counted) if the connection died. */
static int
conn_send(struct tl_conn *c)
{
	int n;

	if (c->state != ST_SENDING) {
		c->state = ST_SENDING;
		c->off = 0;
		c->t0 = now_ns();
	}
	while (c->off < opt.size) {
		/* A retry after WANT_* passes the same bytes, as it must. */
		n = SSL_write(c->ssl, msg + c->off, (int)(opt.size - c->off));
		if (n > 0) {
			c->off += (uint32_t)n;
			continue;
		}
		return conn_ssl_wait(c, n);
	}
	c->state = ST_RECEIVING;
	c->off = 0;
	return 0;
}

/*
 * Reads what is there of the echo.  1: the echo is complete; 0: more to
 * come; -1 (counted): the connection died.
 */
static int
conn_recv(struct tl_conn *c)
{
	int n;

	while (c->off < opt.size) {
		n = SSL_read(c->ssl, rbuf, (int)(opt.size - c->off));
		if (n > 0) {
			c->off += (uint32_t)n;
			continue;
		}
		return conn_ssl_wait(c, n);
	}
	return 1;
}

/* Runs the handshake as far as it goes; then the first message. */
static int
conn_handshake(struct tl_conn *c)
{
	int rc;

	c->state = ST_HANDSHAKE;
	if ((rc = SSL_connect(c->ssl)) != 1)
		return conn_ssl_wait(c, rc);
	if (opt.mode == MODE_STREAM) {
		c->state = ST_STREAM;
		return 1;
	}
	return conn_send(c);
}

/* The socket became writable while connecting: did it connect? */
static int
conn_connected(struct tl_conn *c)
{
	socklen_t	len = sizeof(int);
	int		e = 0;

	if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &e, &len) == -1)
		e = errno;
	if (e != 0) {
		err_errno(&errs.connect, e);
		return -1;
	}
	return conn_handshake(c);
}

/*
 * Advances c on an event.  1: a round trip completed (or, in stream mode,
 * the handshake); 0: in progress; -1: the connection failed (counted).
 */
static int
conn_event(struct tl_conn *c, uint32_t events)
{
	int n;

	switch (c->state) {
	case ST_CONNECTING:
		if ((events & (EPOLLOUT | EPOLLERR | EPOLLHUP)) == 0)
			return 0;
		return conn_connected(c);
	case ST_HANDSHAKE:
		return conn_handshake(c);
	case ST_SENDING:
		return conn_send(c);
	case ST_RECEIVING:
		/* A write-space edge alone (an ACK) is no reason to read. */
		if ((events & (EPOLLIN | EPOLLRDHUP | EPOLLERR |
		    EPOLLHUP)) == 0)
			return 0;
		return conn_recv(c);
	case ST_IDLE:
		/* Held connection: tickets are read; EOF ends it. */
		if ((events & (EPOLLIN | EPOLLRDHUP | EPOLLERR |
		    EPOLLHUP)) == 0)
			return 0;
		while ((n = SSL_read(c->ssl, rbuf, sizeof(rbuf))) > 0)
			;
		return conn_ssl_wait(c, n);
	case ST_STREAM:
	case ST_FREE:
		break;
	}
	return 0;
}

static int
wait_ms(uint64_t now, uint64_t deadline)
{
	uint64_t left;

	if (deadline <= now)
		return 0;
	left = (deadline - now + 999999) / 1000000;
	return left > 1000 ? 1000 : (int)left;
}

/* One epoll_wait round; calls fn for every event.  -1 on a hard error. */
static int
poll_round(uint64_t deadline, void (*fn)(struct tl_conn *, uint32_t))
{
	struct epoll_event	evs[TL_MAXEVENTS];
	int			n;

	n = epoll_wait(ep, evs, TL_MAXEVENTS, wait_ms(now_ns(), deadline));
	if (n == -1) {
		if (errno == EINTR)
			return 0;
		perror("tlsload: epoll_wait");
		return -1;
	}
	for (int i = 0; i < n; i++) {
		struct tl_conn *c = &conns[evs[i].data.u32];

		if (c->state != ST_FREE)
			fn(c, evs[i].events);
	}
	return 0;
}

static const char *
first_error(void)
{
	return errs.first != NULL ? errs.first : "none";
}

/* ---- pingpong ---- */

static bool		 pp_timed;
static uint64_t		 pp_done;
static unsigned		 pp_warmed;
static unsigned		 pp_alive;	/* connected, not yet failed */

static void
pp_event(struct tl_conn *c, uint32_t events)
{
	uint64_t now;

	switch (conn_event(c, events)) {
	case 1:
		now = now_ns();
		if (pp_timed) {
			hist_add(now - c->t0);
			pp_done++;
			c->served = true;
		}
		if (!c->warmed) {
			c->warmed = true;
			pp_warmed++;
		}
		c->state = ST_FREE;	/* conn_send starts a new message */
		if (conn_send(c) == 0)
			break;
		/* FALLTHROUGH */
	case -1:
		conn_close(c);
		pp_alive--;
		break;
	}
}

static int
run_pingpong(void)
{
	uint64_t	start, end, deadline, t;
	unsigned	served = 0;

	for (unsigned i = 0; i < opt.nconns; i++)
		if (conn_open(&conns[i]) == 0)
			pp_alive++;
	/* Warm-up: every connection's handshake and one round trip. */
	deadline = now_ns() + (uint64_t)(opt.warmup * 1e9);
	while (!tl_quit && pp_warmed < pp_alive && now_ns() < deadline)
		if (poll_round(deadline, pp_event) == -1)
			return -1;

	pp_timed = true;
	start = now_ns();
	end = start + (uint64_t)(opt.duration * 1e9);
	while (!tl_quit && now_ns() < end)
		if (poll_round(end, pp_event) == -1)
			return -1;
	t = now_ns();
	for (unsigned i = 0; i < opt.nconns; i++) {
		if (conns[i].served)
			served++;
		conn_close(&conns[i]);
	}
	printf("mode=pingpong tls=1 conns=%u size=%zu served=%u warmed=%u "
	    "secs=%.3f msgs=%" PRIu64 " rate=%.0f p50_us=%.1f p99_us=%.1f "
	    "errors=%lu first_error=%s\n", opt.nconns, opt.size, served,
	    pp_warmed, (double)(t - start) / 1e9, pp_done,
	    (double)pp_done / ((double)(t - start) / 1e9),
	    hist_quantile_us(0.50), hist_quantile_us(0.99), err_total(),
	    first_error());
	return 0;
}

/* ---- stream ---- */

static uint64_t		 st_sent, st_recvd, st_bad;
static bool		 st_ready, st_failed;
static uint64_t		 st_start, st_end;

/* The pattern, so that any offset can be checked. */
static char		 st_pat[TL_RECORD + TL_PATTERN];

/* Writes and reads until both would block; false if the stream failed. */
static bool
st_pump(struct tl_conn *c)
{
	bool	progress;
	int	n;

	do {
		progress = false;
		if (st_sent < opt.stream_bytes) {
			uint64_t left = opt.stream_bytes - st_sent;
			int want = left > TL_RECORD ? TL_RECORD : (int)left;

			/* Same bytes on a retry: the offset has not moved. */
			n = SSL_write(c->ssl, st_pat + st_sent % TL_PATTERN,
			    want);
			if (n > 0) {
				st_sent += (uint64_t)n;
				progress = true;
			} else if (conn_ssl_wait(c, n) == -1) {
				return false;
			}
		}
		n = SSL_read(c->ssl, rbuf, sizeof(rbuf));
		if (n > 0) {
			if (memcmp(rbuf, st_pat + st_recvd % TL_PATTERN,
			    (size_t)n) != 0)
				st_bad++;
			st_recvd += (uint64_t)n;
			progress = true;
		} else if (conn_ssl_wait(c, n) == -1) {
			return false;
		}
	} while (progress && st_recvd < opt.stream_bytes);
	return true;
}

static void
st_event(struct tl_conn *c, uint32_t events)
{
	int rc;

	if (c->state != ST_STREAM) {
		if ((rc = conn_event(c, events)) == -1) {
			st_failed = true;
			conn_close(c);
			return;
		}
		if (rc == 0)
			return;
		st_ready = true;
		st_start = now_ns();
	}
	if (!st_pump(c)) {
		st_failed = true;
		conn_close(c);
		return;
	}
	if (st_recvd >= opt.stream_bytes)
		st_end = now_ns();
}

static int
run_stream(void)
{
	uint64_t	start, deadline;
	double		secs;
	bool		done;
	const char	*why = "none";

	for (size_t i = 0; i < sizeof(st_pat); i++)
		st_pat[i] = (char)(i % TL_PATTERN);
	start = now_ns();
	deadline = start + (uint64_t)(opt.duration * 1e9);
	if (conn_open(&conns[0]) == -1)
		st_failed = true;
	while (!tl_quit && !st_failed && st_end == 0 && now_ns() < deadline)
		if (poll_round(deadline, st_event) == -1)
			return -1;
	done = st_end != 0 && st_bad == 0;
	secs = st_ready ? (double)((st_end != 0 ? st_end : now_ns()) -
	    st_start) / 1e9 : 0;
	conn_close(&conns[0]);
	if (st_bad != 0)
		why = "CORRUPT";
	else if (st_failed)
		why = first_error();
	else if (!done)
		why = "TIMEOUT";
	printf("mode=stream tls=1 bytes=%" PRIu64 " sent=%" PRIu64
	    " received=%" PRIu64 " corrupt_reads=%" PRIu64 " complete=%d "
	    "secs=%.3f rate=%.1f errors=%lu first_error=%s\n",
	    opt.stream_bytes, st_sent, st_recvd, st_bad, done ? 1 : 0, secs,
	    done && secs > 0 ? (double)st_recvd / 1048576.0 / secs : 0.0,
	    err_total(), why);
	return 0;
}

/* ---- idle ---- */

/* One /proc/PID/status field, in KiB; -1 if absent. */
static long
proc_kib(pid_t pid, const char *key)
{
	char	 path[64], line[256];
	size_t	 klen = strlen(key);
	long	 v = -1;
	FILE	*f;

	snprintf(path, sizeof(path), "/proc/%ld/status", (long)pid);
	if ((f = fopen(path, "re")) == NULL)
		return -1;
	while (fgets(line, sizeof(line), f) != NULL)
		if (strncmp(line, key, klen) == 0 && line[klen] == ':') {
			v = strtol(line + klen + 1, NULL, 10);
			break;
		}
	fclose(f);
	return v;
}

static unsigned		 id_established, id_inflight, id_dropped;

static void
id_event(struct tl_conn *c, uint32_t events)
{
	bool was_idle = c->state == ST_IDLE;

	switch (conn_event(c, events)) {
	case 1:
		c->state = ST_IDLE;
		id_established++;
		id_inflight--;
		break;
	case -1:
		if (was_idle) {
			id_established--;
			id_dropped++;
		} else {
			id_inflight--;
		}
		conn_close(c);
		break;
	}
}

static int
run_idle(void)
{
	uint64_t	start, deadline, opened_at, t;
	unsigned	next = 0, timedout = 0;
	long		before = -1, after = -1;

	if (opt.pid > 0)
		before = proc_kib(opt.pid, "VmRSS");
	start = now_ns();
	deadline = start + (uint64_t)(opt.duration * 1e9);
	while (!tl_quit && now_ns() < deadline &&
	    (next < opt.nconns || id_inflight > 0)) {
		while (next < opt.nconns && id_inflight < TL_IDLE_INFLIGHT) {
			if (conn_open(&conns[next++]) == 0) {
				id_inflight++;
			} else if (errs.last == EMFILE ||
			    errs.last == ENFILE) {
				next = opt.nconns;	/* no point going on */
			}
		}
		if (poll_round(deadline, id_event) == -1)
			return -1;
	}
	opened_at = now_ns();
	/* Whatever is still being set up at the deadline is a failure. */
	for (unsigned i = 0; i < next; i++)
		if (conns[i].state != ST_FREE && conns[i].state != ST_IDLE) {
			conn_close(&conns[i]);
			timedout++;
			if (errs.first == NULL)
				errs.first = "TIMEOUT";
		}
	/* Hold them a moment (the server settles; drops show up). */
	t = now_ns() + TL_HOLD_NS;
	while (!tl_quit && now_ns() < t)
		if (poll_round(t, id_event) == -1)
			return -1;
	if (opt.pid > 0)
		after = proc_kib(opt.pid, "VmRSS");
	for (unsigned i = 0; i < opt.nconns; i++)
		conn_close(&conns[i]);
	printf("mode=idle tls=1 want=%u open=%u failed=%lu timedout=%u "
	    "dropped=%u secs_to_open=%.3f measure=%s before_kib=%ld "
	    "after_kib=%ld kib_per_conn=%.2f first_error=%s\n", opt.nconns,
	    id_established, err_total(), timedout, id_dropped,
	    (double)(opened_at - start) / 1e9,
	    opt.pid <= 0 ? "none" : "vmrss", before, after,
	    before >= 0 && after >= 0 && id_established > 0 ?
	    (double)(after - before) / id_established : -1.0,
	    first_error());
	return 0;
}

static void
on_signal(int sig)
{
	(void)sig;
	tl_quit = 1;
}

static void __attribute__((noreturn))
usage(void)
{
	fprintf(stderr,
	    "usage: tlsload -m pingpong|stream|idle -p PORT [-a ADDR] "
	    "[-c CONNS] [-d SECS]\n"
	    "               [-w SECS] [-s SIZE] [-b MIB] [-k fin|rst] "
	    "[-P PID]\n");
	exit(2);
}

static SSL_CTX *
client_ctx(void)
{
	SSL_CTX *c;

	if ((c = SSL_CTX_new(TLS_client_method())) == NULL)
		return NULL;
	/* The server's cost is measured: no verification, no resumption. */
	SSL_CTX_set_verify(c, SSL_VERIFY_NONE, NULL);
	SSL_CTX_set_session_cache_mode(c, SSL_SESS_CACHE_OFF);
	SSL_CTX_set_mode(c, SSL_MODE_RELEASE_BUFFERS);
	if (SSL_CTX_set_min_proto_version(c, TLS1_2_VERSION) != 1) {
		SSL_CTX_free(c);
		return NULL;
	}
	return c;
}

int
main(int argc, char *argv[])
{
	struct sigaction	 sa;
	struct rlimit		 rl;
	const char		*addr = "127.0.0.1";
	const char		*close_mode = NULL;
	int			 ch, port = -1, rc;
	unsigned long		 mib = 256;
	bool			 have_mode = false, have_conns = false;
	bool			 have_dur = false;

	opt.size = 64;
	opt.warmup = 2.0;
	while ((ch = getopt(argc, argv, "a:b:c:d:k:m:p:P:s:w:")) != -1) {
		switch (ch) {
		case 'a':
			addr = optarg;
			break;
		case 'b':
			mib = strtoul(optarg, NULL, 10);
			break;
		case 'c':
			opt.nconns = (unsigned)strtoul(optarg, NULL, 10);
			have_conns = true;
			break;
		case 'd':
			opt.duration = strtod(optarg, NULL);
			have_dur = true;
			break;
		case 'k':
			close_mode = optarg;
			break;
		case 'm':
			have_mode = true;
			if (strcmp(optarg, "pingpong") == 0)
				opt.mode = MODE_PINGPONG;
			else if (strcmp(optarg, "stream") == 0)
				opt.mode = MODE_STREAM;
			else if (strcmp(optarg, "idle") == 0)
				opt.mode = MODE_IDLE;
			else
				usage();
			break;
		case 'p':
			port = atoi(optarg);
			break;
		case 'P':
			opt.pid = (pid_t)atol(optarg);
			break;
		case 's':
			opt.size = strtoul(optarg, NULL, 10);
			break;
		case 'w':
			opt.warmup = strtod(optarg, NULL);
			break;
		default:
			usage();
		}
	}
	if (!have_mode || port <= 0 || port > 65535 || opt.size == 0 ||
	    opt.size > TL_MAXSIZE || (have_dur && !(opt.duration > 0)) ||
	    (have_conns && opt.nconns == 0) || !(opt.warmup >= 0) ||
	    mib == 0 || mib > 1u << 20)
		usage();
	opt.stream_bytes = (uint64_t)mib << 20;
	if (opt.mode == MODE_STREAM)
		opt.nconns = 1;
	else if (!have_conns)
		opt.nconns = opt.mode == MODE_PINGPONG ? 100 : 5000;
	if (!have_dur)
		opt.duration = opt.mode == MODE_IDLE ? 30 :
		    opt.mode == MODE_STREAM ? 30 : 3;
	if (close_mode == NULL)
		opt.rst = opt.mode == MODE_IDLE;
	else if (strcmp(close_mode, "rst") == 0)
		opt.rst = true;
	else if (strcmp(close_mode, "fin") == 0)
		opt.rst = false;
	else
		usage();
	opt.addr.sin_family = AF_INET;
	opt.addr.sin_port = htons((unsigned short)port);
	if (inet_pton(AF_INET, addr, &opt.addr.sin_addr) != 1) {
		fprintf(stderr, "tlsload: bad address %s\n", addr);
		return 2;
	}

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
	    opt.nconns + 16 > rl.rlim_cur)
		fprintf(stderr, "tlsload: warning: fd limit %lu < %u "
		    "connections\n", (unsigned long)rl.rlim_cur, opt.nconns);

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	if ((ctx = client_ctx()) == NULL) {
		fprintf(stderr, "tlsload: SSL_CTX_new failed\n");
		ERR_print_errors_fp(stderr);
		return 1;
	}
	for (size_t i = 0; i < opt.size; i++)
		msg[i] = (char)('a' + i % 26);
	if ((conns = calloc(opt.nconns, sizeof(*conns))) == NULL) {
		perror("tlsload: calloc");
		return 1;
	}
	for (unsigned i = 0; i < opt.nconns; i++)
		conns[i].fd = -1;
	if ((ep = epoll_create1(EPOLL_CLOEXEC)) == -1) {
		perror("tlsload: epoll_create1");
		return 1;
	}
	switch (opt.mode) {
	case MODE_PINGPONG:
		rc = run_pingpong();
		break;
	case MODE_STREAM:
		rc = run_stream();
		break;
	default:
		rc = run_idle();
		break;
	}
	SSL_CTX_free(ctx);
	fflush(stdout);
	return rc == 0 ? 0 : 1;
}
