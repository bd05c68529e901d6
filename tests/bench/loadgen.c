/* SPDX-License-Identifier: ISC */
/*
 * loadgen.c - the benchmark's load generator: one thread, one epoll set,
 * non-blocking sockets, and every run bounded in time (it stops by itself).
 * Three modes, each printing one line of key=value results on stdout:
 *
 *   pingpong  N connections; each sends SIZE bytes, waits for the whole
 *             echo, and repeats.  A warm-up (at most -w seconds) first
 *             gives every connection one round trip, then -d seconds are
 *             timed: messages/s and p50/p99 round-trip latency (from a
 *             fixed-size log-linear histogram, 1.6% resolution).
 *             "served" says how many connections completed a round trip
 *             in the timed part (a sync server serves one).  With -R, a
 *             connection that dies is opened again at once (a client
 *             that reconnects), and each death with a message sent and
 *             not yet echoed counts as a lost message ("lost"; deaths
 *             while connecting are "connect_err" and lose none).
 *   connrate  keeps N connect-send-receive-close cycles in flight for -d
 *             seconds: new connections/s and errors.
 *   idle      opens N connections, at most 256 being set up at once, each
 *             completing one echo round trip (so the server has accepted
 *             and set it up), within -d seconds; then holds them, reads
 *             the memory of process -P before and after, and closes.
 *   dgram     N UDP sockets (default 50), each connected to the server;
 *             each sends a SIZE-byte datagram, waits for the reply, and
 *             repeats.  A datagram unanswered after 100 ms is counted lost
 *             and sent again.  Warm-up and timing as pingpong:
 *             replies/s and p50/p99.
 *   bulk      one connection streams -b MiB (default 1024) through the
 *             echo in 64 KiB writes while reading it back on the same
 *             non-blocking socket; every byte is checked; MiB/s from the
 *             connect to the last byte back, bounded by -d seconds (an
 *             unfinished stream says complete=0).
 *
 * Closing: -k rst sets SO_LINGER {1, 0}, so close() sends a RST and leaves
 * no TIME_WAIT behind on our side (ephemeral ports stay free through tens
 * of thousands of cycles); -k fin is an ordinary close.  Defaults: rst for
 * connrate and idle, fin for pingpong.  A server then sees ECONNRESET
 * instead of EOF at the end of a connection.
 *
 * The fd limit is raised to the hard limit.  127.0.0.1 by default.
 */
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>

#include <netinet/in.h>
#include <arpa/inet.h>

#include <ctype.h>
#include <dirent.h>
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

#define LG_MAXEVENTS	512
#define LG_MAXSIZE	16384
#define LG_IDLE_INFLIGHT 256
#define LG_HOLD_NS	500000000ull	/* idle: settle before measuring */

/* Log-linear histogram of nanoseconds: 64 sub-buckets per power of 2. */
#define HIST_SUB_BITS	6
#define HIST_SUB	(1u << HIST_SUB_BITS)
#define HIST_NBUCKETS	((64 - HIST_SUB_BITS) * HIST_SUB + 2 * HIST_SUB)

enum lg_mode { MODE_PINGPONG, MODE_CONNRATE, MODE_IDLE, MODE_DGRAM,
    MODE_BULK };

enum lg_state {
	ST_FREE,
	ST_CONNECTING,	/* waiting for EPOLLOUT */
	ST_SENDING,	/* part of the message still to send */
	ST_RECEIVING,	/* waiting for the rest of the echo */
	ST_IDLE		/* idle mode: round trip done, held open */
};

struct lg_conn {
	int		 fd;
	enum lg_state	 state;
	uint32_t	 off;		/* bytes sent, then bytes received */
	uint64_t	 t0;		/* when the message was sent */
	bool		 served;	/* a round trip completed (timed) */
	bool		 warmed;	/* a round trip completed (any time) */
};

struct lg_errors {
	unsigned long	 connect, reset, eof, other;
	int		 first;		/* errno of the first one, or 0 */
	int		 last;		/* errno of the latest one */
};

static struct {
	enum lg_mode		 mode;
	struct sockaddr_in	 addr;
	unsigned		 nconns;
	double			 duration;
	double			 warmup;
	size_t			 size;
	bool			 rst;
	pid_t			 pid;
	bool			 tree;
	bool			 reconnect;
	unsigned long		 bulk_mib;
} opt;

static int			 ep;
static struct lg_conn		*conns;
static char			 msg[LG_MAXSIZE];
static char			 rbuf[LG_MAXSIZE];
static uint64_t			 hist[HIST_NBUCKETS];
static uint64_t			 nsamples;
static struct lg_errors		 errs;
static volatile sig_atomic_t	 lg_quit;

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

static void
err_count(unsigned long *counter, int e)
{
	(*counter)++;
	errs.last = e;
	if (errs.first == 0)
		errs.first = e;
}

static unsigned long
err_total(void)
{
	return errs.connect + errs.reset + errs.eof + errs.other;
}

static const char *
err_name(int e)
{
	const char *s;

	if (e == 0)
		return "none";
	if (e == -1)
		return "EOF";
	if (e == -2)
		return "TIMEOUT";
	s = strerrorname_np(e);
	return s != NULL ? s : "unknown";
}

static void
conn_close(struct lg_conn *c)
{
	if (c->fd != -1)
		close(c->fd);	/* also leaves the epoll set */
	c->fd = -1;
	c->state = ST_FREE;
}

/* Starts a non-blocking connect for c; -1 (counted) on failure. */
static int
conn_open(struct lg_conn *c)
{
	struct epoll_event	 ev;
	struct linger		 lin = { .l_onoff = 1, .l_linger = 0 };
	int			 fd;

	c->fd = -1;
	c->state = ST_FREE;
	c->off = 0;
	fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd == -1) {
		err_count(&errs.connect, errno);
		return -1;
	}
	if (opt.rst && setsockopt(fd, SOL_SOCKET, SO_LINGER, &lin,
	    sizeof(lin)) == -1) {
		err_count(&errs.other, errno);
		close(fd);
		return -1;
	}
	if (connect(fd, (struct sockaddr *)&opt.addr, sizeof(opt.addr)) ==
	    -1 && errno != EINPROGRESS) {
		err_count(&errs.connect, errno);
		close(fd);
		return -1;
	}
	/* Edge-triggered: one registration serves the whole cycle. */
	ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
	ev.data.u32 = (uint32_t)(c - conns);
	if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) == -1) {
		err_count(&errs.other, errno);
		close(fd);
		return -1;
	}
	c->fd = fd;
	c->state = ST_CONNECTING;
	return 0;
}

/* Sends (the rest of) the message; -1 (counted) if the connection died. */
static int
conn_send(struct lg_conn *c)
{
	ssize_t n;

	if (c->state != ST_SENDING) {
		c->state = ST_SENDING;
		c->off = 0;
		c->t0 = now_ns();
	}
	while (c->off < opt.size) {
		n = send(c->fd, msg + c->off, opt.size - c->off,
		    MSG_NOSIGNAL);
		if (n > 0) {
			c->off += (uint32_t)n;
			continue;
		}
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return 0;	/* EPOLLOUT (edge) resumes */
		err_count(errno == ECONNRESET || errno == EPIPE ?
		    &errs.reset : &errs.other, errno);
		return -1;
	}
	c->state = ST_RECEIVING;
	c->off = 0;
	return 0;
}

/*
 * Reads what is there of the echo.  1: the echo is complete; 0: more to
 * come; -1 (counted): the connection died.  Edge-triggered, so it reads
 * until EAGAIN unless the echo is complete (nothing more can arrive).
 */
static int
conn_recv(struct lg_conn *c)
{
	ssize_t n;

	while (c->off < opt.size) {
		n = read(c->fd, rbuf, opt.size - c->off);
		if (n > 0) {
			c->off += (uint32_t)n;
			continue;
		}
		if (n == 0) {
			err_count(&errs.eof, -1);
			return -1;
		}
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN || errno == EWOULDBLOCK)
			return 0;
		err_count(errno == ECONNRESET ? &errs.reset : &errs.other,
		    errno);
		return -1;
	}
	return 1;
}

/* The socket became writable while connecting: did it connect? */
static int
conn_connected(struct lg_conn *c)
{
	socklen_t	len = sizeof(int);
	int		e = 0;

	if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &e, &len) == -1)
		e = errno;
	if (e != 0) {
		err_count(&errs.connect, e);
		return -1;
	}
	return conn_send(c);
}

/*
 * Advances c on an event.  1: a round trip completed (the caller decides
 * what comes next); 0: in progress; -1: the connection failed (counted).
 */
static int
conn_event(struct lg_conn *c, uint32_t events)
{
	ssize_t n;

	switch (c->state) {
	case ST_CONNECTING:
		if ((events & (EPOLLOUT | EPOLLERR | EPOLLHUP)) == 0)
			return 0;
		/* The echo raises its own EPOLLIN edge: no read yet. */
		return conn_connected(c);
	case ST_SENDING:
		if ((events & (EPOLLOUT | EPOLLERR | EPOLLHUP)) == 0)
			return 0;
		return conn_send(c);
	case ST_RECEIVING:
		/* A write-space edge alone (an ACK) is no reason to read. */
		if ((events & (EPOLLIN | EPOLLRDHUP | EPOLLERR |
		    EPOLLHUP)) == 0)
			return 0;
		return conn_recv(c);
	case ST_IDLE:
		/* Held connection: data or EOF means the server ended it. */
		if ((events & (EPOLLIN | EPOLLRDHUP | EPOLLERR |
		    EPOLLHUP)) == 0)
			return 0;
		n = read(c->fd, rbuf, sizeof(rbuf));
		if (n > 0 || (n == -1 && (errno == EAGAIN || errno == EINTR)))
			return 0;
		if (n == 0)
			err_count(&errs.eof, -1);
		else
			err_count(errno == ECONNRESET ? &errs.reset :
			    &errs.other, errno);
		return -1;
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
poll_round(uint64_t deadline, void (*fn)(struct lg_conn *, uint32_t))
{
	struct epoll_event	evs[LG_MAXEVENTS];
	int			n;

	n = epoll_wait(ep, evs, LG_MAXEVENTS, wait_ms(now_ns(), deadline));
	if (n == -1) {
		if (errno == EINTR)
			return 0;
		perror("loadgen: epoll_wait");
		return -1;
	}
	for (int i = 0; i < n; i++) {
		struct lg_conn *c = &conns[evs[i].data.u32];

		if (c->state != ST_FREE)
			fn(c, evs[i].events);
	}
	return 0;
}

/* ---- pingpong ---- */

static bool		 pp_timed;
static uint64_t		 pp_done;
static unsigned		 pp_warmed;
static unsigned		 pp_alive;	/* connected, not yet failed */
static uint64_t		 pp_lost, pp_reconnects;	/* timed, with -R */

static void
pp_event(struct lg_conn *c, uint32_t events)
{
	uint64_t	 now;
	bool		 outstanding;

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
		outstanding = c->state == ST_SENDING ||
		    c->state == ST_RECEIVING;
		conn_close(c);
		pp_alive--;
		if (!opt.reconnect)
			break;
		if (pp_timed && outstanding)
			pp_lost++;
		if (pp_timed)
			pp_reconnects++;
		if (conn_open(c) == 0)
			pp_alive++;
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
	/* Warm-up: every connection does one round trip, or time is up. */
	deadline = now_ns() + (uint64_t)(opt.warmup * 1e9);
	while (!lg_quit && pp_warmed < pp_alive && now_ns() < deadline)
		if (poll_round(deadline, pp_event) == -1)
			return -1;

	pp_timed = true;
	start = now_ns();
	end = start + (uint64_t)(opt.duration * 1e9);
	while (!lg_quit && (t = now_ns()) < end) {
		if (poll_round(end, pp_event) == -1)
			return -1;
		/* Slots whose open failed: retry at most once a round. */
		for (unsigned i = 0; opt.reconnect && i < opt.nconns; i++)
			if (conns[i].state == ST_FREE &&
			    conn_open(&conns[i]) == 0)
				pp_alive++;
	}
	t = now_ns();
	for (unsigned i = 0; i < opt.nconns; i++) {
		if (conns[i].served)
			served++;
		conn_close(&conns[i]);
	}
	printf("mode=pingpong conns=%u size=%zu served=%u warmed=%u "
	    "secs=%.3f msgs=%" PRIu64 " rate=%.0f p50_us=%.1f p99_us=%.1f "
	    "errors=%lu first_error=%s", opt.nconns, opt.size, served,
	    pp_warmed, (double)(t - start) / 1e9, pp_done,
	    (double)pp_done / ((double)(t - start) / 1e9),
	    hist_quantile_us(0.50), hist_quantile_us(0.99), err_total(),
	    err_name(errs.first));
	if (opt.reconnect)
		printf(" lost=%" PRIu64 " reconnects=%" PRIu64
		    " connect_err=%lu", pp_lost, pp_reconnects, errs.connect);
	printf("\n");
	return 0;
}

/* ---- connrate ---- */

static uint64_t		 cr_done;
static bool		 cr_refill = true;

static void
cr_event(struct lg_conn *c, uint32_t events)
{
	int rc = conn_event(c, events);

	if (rc == 0)
		return;
	if (rc == 1)
		cr_done++;
	conn_close(c);
	/* A failed connect is retried at once, like a client would. */
	if (cr_refill)
		conn_open(c);
}

static int
run_connrate(void)
{
	uint64_t	start, end, t;

	start = now_ns();
	end = start + (uint64_t)(opt.duration * 1e9);
	for (unsigned i = 0; i < opt.nconns; i++)
		conn_open(&conns[i]);
	while (!lg_quit && now_ns() < end) {
		if (poll_round(end, cr_event) == -1)
			return -1;
		/* Slots whose open failed (EMFILE, EADDRNOTAVAIL...): retry
		 * at most once a round, so a hard failure cannot spin. */
		for (unsigned i = 0; i < opt.nconns; i++)
			if (conns[i].state == ST_FREE)
				conn_open(&conns[i]);
	}
	t = now_ns();
	cr_refill = false;
	for (unsigned i = 0; i < opt.nconns; i++)
		conn_close(&conns[i]);
	printf("mode=connrate conns=%u size=%zu close=%s secs=%.3f "
	    "done=%" PRIu64 " rate=%.0f errors=%lu connect_err=%lu "
	    "reset=%lu eof=%lu other=%lu first_error=%s\n", opt.nconns,
	    opt.size, opt.rst ? "rst" : "fin", (double)(t - start) / 1e9,
	    cr_done, (double)cr_done / ((double)(t - start) / 1e9),
	    err_total(), errs.connect, errs.reset, errs.eof, errs.other,
	    err_name(errs.first));
	return 0;
}

/* ---- idle ---- */

/* One /proc/PID/status or smaps_rollup field, in KiB; -1 if absent. */
static long
proc_kib(pid_t pid, const char *file, const char *key)
{
	char	 path[64], line[256];
	size_t	 klen = strlen(key);
	long	 v = -1;
	FILE	*f;

	snprintf(path, sizeof(path), "/proc/%ld/%s", (long)pid, file);
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

static pid_t
proc_ppid(pid_t pid)
{
	char	 path[64], buf[512], *p;
	ssize_t	 n;
	FILE	*f;

	snprintf(path, sizeof(path), "/proc/%ld/stat", (long)pid);
	if ((f = fopen(path, "re")) == NULL)
		return -1;
	n = (ssize_t)fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	if (n <= 0)
		return -1;
	buf[n] = '\0';
	/* "pid (comm) state ppid": comm may hold anything, even ") ". */
	if ((p = strrchr(buf, ')')) == NULL)
		return -1;
	return (pid_t)strtol(p + 3, NULL, 10);
}

/*
 * The memory of pid in KiB: its VmRSS, or with tree its Pss plus the Pss
 * of each of its children (Pss shares every page among the processes that
 * map it, so the sum counts each page once).
 */
static long
mem_kib(pid_t pid, bool tree, unsigned *nprocs)
{
	struct dirent	*de;
	DIR		*d;
	long		 sum, v;

	*nprocs = 1;
	if (!tree)
		return proc_kib(pid, "status", "VmRSS");
	if ((sum = proc_kib(pid, "smaps_rollup", "Pss")) == -1)
		return -1;
	if ((d = opendir("/proc")) == NULL)
		return -1;
	while ((de = readdir(d)) != NULL) {
		pid_t child;

		if (!isdigit((unsigned char)de->d_name[0]))
			continue;
		child = (pid_t)strtol(de->d_name, NULL, 10);
		if (proc_ppid(child) != pid)
			continue;
		if ((v = proc_kib(child, "smaps_rollup", "Pss")) > 0) {
			sum += v;
			(*nprocs)++;
		}
	}
	closedir(d);
	return sum;
}

static unsigned		 id_established, id_inflight, id_dropped;

static void
id_event(struct lg_conn *c, uint32_t events)
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
	unsigned	next = 0, np_before = 0, np_after = 0, timedout = 0;
	long		before = -1, after = -1;

	if (opt.pid > 0)
		before = mem_kib(opt.pid, opt.tree, &np_before);
	start = now_ns();
	deadline = start + (uint64_t)(opt.duration * 1e9);
	while (!lg_quit && now_ns() < deadline &&
	    (next < opt.nconns || id_inflight > 0)) {
		while (next < opt.nconns && id_inflight < LG_IDLE_INFLIGHT) {
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
			if (errs.first == 0)
				errs.first = -2;
		}
	/* Hold them a moment (the server settles; drops show up). */
	t = now_ns() + LG_HOLD_NS;
	while (!lg_quit && now_ns() < t)
		if (poll_round(t, id_event) == -1)
			return -1;
	if (opt.pid > 0)
		after = mem_kib(opt.pid, opt.tree, &np_after);
	for (unsigned i = 0; i < opt.nconns; i++)
		conn_close(&conns[i]);
	printf("mode=idle want=%u open=%u failed=%lu timedout=%u "
	    "dropped=%u secs_to_open=%.3f measure=%s before_kib=%ld "
	    "after_kib=%ld procs_before=%u procs_after=%u kib_per_conn=%.2f "
	    "first_error=%s\n", opt.nconns, id_established, err_total(),
	    timedout, id_dropped, (double)(opened_at - start) / 1e9,
	    opt.pid <= 0 ? "none" : opt.tree ? "pss-tree" : "vmrss",
	    before, after, np_before, np_after,
	    before >= 0 && after >= 0 && id_established > 0 ?
	    (double)(after - before) / id_established : -1.0,
	    err_name(errs.first));
	return 0;
}

/* ---- dgram ---- */

#define DG_RESEND_NS	100000000ull	/* a datagram is lost after 100 ms */

static uint64_t		 dg_lost;

/* Sends c's datagram (again); -1 (counted) on a hard error. */
static int
dg_send(struct lg_conn *c, uint64_t now)
{
	c->t0 = now;
	c->state = ST_RECEIVING;
	if (send(c->fd, msg, opt.size, 0) == -1 && errno != EAGAIN &&
	    errno != ENOBUFS && errno != ECONNREFUSED && errno != EINTR) {
		err_count(&errs.other, errno);
		return -1;
	}
	return 0;
}

static void
dg_event(struct lg_conn *c, uint32_t events)
{
	uint64_t	now;
	ssize_t		n;

	(void)events;
	for (;;) {
		n = recv(c->fd, rbuf, sizeof(rbuf), MSG_DONTWAIT);
		if (n == -1) {
			if (errno == EINTR)
				continue;
			/* ICMP port unreachable: the resend covers it. */
			if (errno != EAGAIN && errno != ECONNREFUSED)
				err_count(&errs.other, errno);
			return;
		}
		if ((size_t)n != opt.size || memcmp(rbuf, msg, opt.size) != 0) {
			err_count(&errs.other, EBADMSG);
			continue;
		}
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
		if (dg_send(c, now) == -1)
			return;
	}
}

/* Sends again what has waited too long for its reply. */
static void
dg_resend(void)
{
	uint64_t now = now_ns();

	for (unsigned i = 0; i < opt.nconns; i++)
		if (conns[i].fd != -1 && now - conns[i].t0 > DG_RESEND_NS) {
			if (pp_timed)
				dg_lost++;
			dg_send(&conns[i], now);
		}
}

static int
run_dgram(void)
{
	struct epoll_event	 ev;
	uint64_t		 start, end, deadline, t, step;
	unsigned		 served = 0, open = 0;
	int			 fd;

	for (unsigned i = 0; i < opt.nconns; i++) {
		fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
		    0);
		if (fd == -1 || connect(fd, (struct sockaddr *)&opt.addr,
		    sizeof(opt.addr)) == -1) {
			err_count(&errs.connect, errno);
			if (fd != -1)
				close(fd);
			continue;
		}
		ev.events = EPOLLIN;
		ev.data.u32 = i;
		if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) == -1) {
			err_count(&errs.other, errno);
			close(fd);
			continue;
		}
		conns[i].fd = fd;
		open++;
		dg_send(&conns[i], now_ns());
	}
	deadline = now_ns() + (uint64_t)(opt.warmup * 1e9);
	while (!lg_quit && pp_warmed < open && (t = now_ns()) < deadline) {
		step = t + 10000000ull < deadline ? t + 10000000ull : deadline;
		if (poll_round(step, dg_event) == -1)
			return -1;
		dg_resend();
	}
	pp_timed = true;
	start = now_ns();
	end = start + (uint64_t)(opt.duration * 1e9);
	while (!lg_quit && (t = now_ns()) < end) {
		step = t + 10000000ull < end ? t + 10000000ull : end;
		if (poll_round(step, dg_event) == -1)
			return -1;
		dg_resend();
	}
	t = now_ns();
	for (unsigned i = 0; i < opt.nconns; i++) {
		if (conns[i].served)
			served++;
		conn_close(&conns[i]);
	}
	printf("mode=dgram conns=%u size=%zu served=%u warmed=%u secs=%.3f "
	    "msgs=%" PRIu64 " rate=%.0f lost=%" PRIu64 " p50_us=%.1f "
	    "p99_us=%.1f errors=%lu first_error=%s\n", opt.nconns, opt.size,
	    served, pp_warmed, (double)(t - start) / 1e9, pp_done,
	    (double)pp_done / ((double)(t - start) / 1e9), dg_lost,
	    hist_quantile_us(0.50), hist_quantile_us(0.99), err_total(),
	    err_name(errs.first));
	return 0;
}

/* ---- bulk ---- */

#define BULK_CHUNK	65536
#define BULK_PERIOD	26

static int
run_bulk(void)
{
	static char		 pat[BULK_CHUNK + BULK_PERIOD];
	static char		 in[BULK_CHUNK];
	struct epoll_event	 ev;
	struct lg_conn		*c = &conns[0];
	uint64_t		 total, sent = 0, got = 0, start, end, t;
	size_t			 len;
	ssize_t			 n;
	bool			 bad = false, dead = false;

	total = (uint64_t)opt.bulk_mib << 20;
	for (size_t i = 0; i < sizeof(pat); i++)
		pat[i] = (char)('a' + i % BULK_PERIOD);
	start = now_ns();
	end = start + (uint64_t)(opt.duration * 1e9);
	if (conn_open(c) == -1)
		goto out;
	/* Connected when writable; conn_open registered EPOLLET. */
	while (!lg_quit && !dead && got < total && (t = now_ns()) < end) {
		if (epoll_wait(ep, &ev, 1, wait_ms(t, end)) == -1 &&
		    errno != EINTR)
			break;
		if (c->state == ST_CONNECTING) {
			socklen_t	elen = sizeof(int);
			int		e = 0;

			if ((ev.events & (EPOLLOUT | EPOLLERR | EPOLLHUP)) == 0)
				continue;
			getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &e, &elen);
			if (e != 0) {
				err_count(&errs.connect, e);
				break;
			}
			c->state = ST_SENDING;
		}
		/* Edge-triggered: both directions until EAGAIN. */
		while (sent < total) {
			len = total - sent < BULK_CHUNK ? (size_t)(total - sent) :
			    BULK_CHUNK;
			n = send(c->fd, pat + sent % BULK_PERIOD, len,
			    MSG_NOSIGNAL);
			if (n > 0) {
				sent += (uint64_t)n;
				continue;
			}
			if (n == -1 && errno == EINTR)
				continue;
			if (n == -1 && errno != EAGAIN) {
				err_count(&errs.reset, errno);
				dead = true;
			}
			break;
		}
		while (!dead && got < total) {
			n = read(c->fd, in, sizeof(in));
			if (n > 0) {
				if (!bad && memcmp(in, pat + got % BULK_PERIOD,
				    (size_t)n) != 0) {
					bad = true;
					err_count(&errs.other, EBADMSG);
				}
				got += (uint64_t)n;
				continue;
			}
			if (n == -1 && errno == EINTR)
				continue;
			if (n == 0) {
				err_count(&errs.eof, -1);
				dead = true;
			} else if (errno != EAGAIN) {
				err_count(&errs.reset, errno);
				dead = true;
			}
			break;
		}
	}
out:
	t = now_ns();
	conn_close(c);
	printf("mode=bulk mib=%lu complete=%d secs=%.3f sent=%" PRIu64
	    " received=%" PRIu64 " rate=%.0f errors=%lu first_error=%s\n",
	    opt.bulk_mib, got == total && !bad, (double)(t - start) / 1e9,
	    sent, got, (double)got / 1048576.0 / ((double)(t - start) / 1e9),
	    err_total(), err_name(errs.first));
	return 0;
}

static void
on_signal(int sig)
{
	(void)sig;
	lg_quit = 1;
}

static void __attribute__((noreturn))
usage(void)
{
	fprintf(stderr,
	    "usage: loadgen -m pingpong|connrate|idle|dgram|bulk -p PORT "
	    "[-a ADDR]\n"
	    "               [-c CONNS] [-d SECONDS] [-w SECONDS] [-s SIZE] "
	    "[-b MIB]\n"
	    "               [-k fin|rst] [-R] [-P PID [-T]]\n");
	exit(2);
}

int
main(int argc, char *argv[])
{
	struct sigaction	 sa;
	struct rlimit		 rl;
	const char		*addr = "127.0.0.1";
	const char		*close_mode = NULL;
	int			 ch, port = -1, rc;
	bool			 have_mode = false, have_conns = false;
	bool			 have_dur = false;

	opt.size = 64;
	opt.warmup = 1.0;
	opt.bulk_mib = 1024;
	while ((ch = getopt(argc, argv, "a:b:c:d:k:m:p:P:Rs:Tw:")) != -1) {
		switch (ch) {
		case 'a':
			addr = optarg;
			break;
		case 'b':
			opt.bulk_mib = strtoul(optarg, NULL, 10);
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
			else if (strcmp(optarg, "connrate") == 0)
				opt.mode = MODE_CONNRATE;
			else if (strcmp(optarg, "idle") == 0)
				opt.mode = MODE_IDLE;
			else if (strcmp(optarg, "dgram") == 0)
				opt.mode = MODE_DGRAM;
			else if (strcmp(optarg, "bulk") == 0)
				opt.mode = MODE_BULK;
			else
				usage();
			break;
		case 'p':
			port = atoi(optarg);
			break;
		case 'P':
			opt.pid = (pid_t)atol(optarg);
			break;
		case 'R':
			opt.reconnect = true;
			break;
		case 's':
			opt.size = strtoul(optarg, NULL, 10);
			break;
		case 'T':
			opt.tree = true;
			break;
		case 'w':
			opt.warmup = strtod(optarg, NULL);
			break;
		default:
			usage();
		}
	}
	if (!have_mode || port <= 0 || port > 65535 || opt.size == 0 ||
	    opt.size > LG_MAXSIZE || (have_dur && !(opt.duration > 0)) ||
	    (have_conns && opt.nconns == 0) || !(opt.warmup >= 0) ||
	    opt.bulk_mib == 0 || (opt.mode == MODE_DGRAM && opt.size > 2048))
		usage();
	if (!have_conns)
		opt.nconns = opt.mode == MODE_PINGPONG ? 1 :
		    opt.mode == MODE_CONNRATE || opt.mode == MODE_DGRAM ? 50 :
		    opt.mode == MODE_BULK ? 1 : 10000;
	if (opt.mode == MODE_BULK)
		opt.nconns = 1;
	if (!have_dur)
		opt.duration = opt.mode == MODE_IDLE ? 30 :
		    opt.mode == MODE_BULK ? 60 : 3;
	if (close_mode == NULL)
		opt.rst = opt.mode != MODE_PINGPONG;
	else if (strcmp(close_mode, "rst") == 0)
		opt.rst = true;
	else if (strcmp(close_mode, "fin") == 0)
		opt.rst = false;
	else
		usage();
	opt.addr.sin_family = AF_INET;
	opt.addr.sin_port = htons((unsigned short)port);
	if (inet_pton(AF_INET, addr, &opt.addr.sin_addr) != 1) {
		fprintf(stderr, "loadgen: bad address %s\n", addr);
		return 2;
	}

	/* 10,000 idle connections need more than the usual 1024 fds. */
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
	    opt.nconns + 16 > rl.rlim_cur)
		fprintf(stderr, "loadgen: warning: fd limit %lu < %u "
		    "connections\n", (unsigned long)rl.rlim_cur, opt.nconns);

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	for (size_t i = 0; i < opt.size; i++)
		msg[i] = (char)('a' + i % 26);
	if ((conns = calloc(opt.nconns, sizeof(*conns))) == NULL) {
		perror("loadgen: calloc");
		return 1;
	}
	for (unsigned i = 0; i < opt.nconns; i++)
		conns[i].fd = -1;
	if ((ep = epoll_create1(EPOLL_CLOEXEC)) == -1) {
		perror("loadgen: epoll_create1");
		return 1;
	}
	switch (opt.mode) {
	case MODE_PINGPONG:
		rc = run_pingpong();
		break;
	case MODE_CONNRATE:
		rc = run_connrate();
		break;
	case MODE_DGRAM:
		rc = run_dgram();
		break;
	case MODE_BULK:
		rc = run_bulk();
		break;
	default:
		rc = run_idle();
		break;
	}
	fflush(stdout);
	return rc == 0 ? 0 : 1;
}
