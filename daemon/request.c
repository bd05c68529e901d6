/* SPDX-License-Identifier: ISC */
/*
 * request.c - the request life cycle (setup; try handle finally finish) and
 * the public ssd_* functions handlers call.  I/O is non-blocking underneath:
 * on EAGAIN the request waits through rq_wait, which each concurrency model
 * provides (poll(2) for the blocking models), bounded by the listener's
 * timeout.  Nothing here decides which thread runs a request.
 */
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <netinet/in.h>
/* linux/tcp.h, not netinet/tcp.h: its struct tcp_info has the byte
 * counts (tcpi_bytes_received, tcpi_bytes_acked). */
#include <linux/tcp.h>
#include <linux/sockios.h>
#include <arpa/inet.h>
#include <signal.h>

#include <errno.h>
#include <fcntl.h>
#include <sys/time.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "server.h"

/* Largest reply a datagram can carry (IPv4 UDP payload limit). */
#define REQUEST_DGRAM_MAX 65507

/* For requests of a listener without counters (the unit tests' fakes). */
static struct lstats request_nostats;

static void
request_set_peer(struct ssd_request *rq, const struct sockaddr *sa,
    socklen_t len)
{
	if (len > sizeof(rq->rq_peer))
		len = sizeof(rq->rq_peer);
	memcpy(&rq->rq_peer, sa, len);
	rq->rq_peerlen = len;
	if (len < sizeof(sa_family_t))
		rq->rq_peer.ss_family = (sa_family_t)rq->rq_listener->l_family;
	addr_format((const struct sockaddr *)&rq->rq_peer, len,
	    rq->rq_peerstr, sizeof(rq->rq_peerstr));
}

/*
 * Datagram requests kept for reuse, with their buffers, so that a busy
 * datagram listener allocates nothing per datagram.  The main thread's
 * only: request_free puts (there, always), request_new_dgram takes (there
 * for the main loop's listeners).
 */
#define REQUEST_DGRAM_CACHE	64
/* Buffers kept with a cached request: no bigger than this. */
#define REQUEST_DGRAM_KEEP	4096
static struct ssd_request	*request_cache[REQUEST_DGRAM_CACHE];
static unsigned			 request_ncache;

static bool
request_cache_is_ours(void)
{
	return server.s_loop != NULL &&
	    pthread_equal(pthread_self(), server.s_thread);
}

/* rq: zeroed but for the datagram buffers it may keep. */
static struct ssd_request *
request_new(struct lrun *r, const struct sockaddr *sa, socklen_t len,
    struct ssd_request *rq)
{
	const struct listener	*l = r->r_listener;

	rq->rq_run = r;
	rq->rq_sock = r->r_sock;	/* the reference server_reserve took */
	rq->rq_listener = l;
	rq->rq_stats = r->r_stats != NULL ? r->r_stats : &request_nostats;
	rq->rq_type = l->l_type;
	rq->rq_timeout = l->l_timeout;
	rq->rq_wait = request_wait_poll;
	atomic_init(&rq->rq_cut, false);
	request_set_peer(rq, sa, len);
	return rq;
}

struct ssd_request *
request_new_stream(struct lrun *r, int fd, const struct sockaddr *sa,
    socklen_t len)
{
	struct ssd_request *rq = request_new(r, sa, len,
	    xcalloc(1, sizeof(*rq)));

	rq->rq_fd = fd;
	return rq;
}

struct ssd_request *
request_new_dgram(struct lrun *r, const void *data, size_t n,
    const struct sockaddr *sa, socklen_t len)
{
	struct ssd_request	*rq;
	char			*buf = NULL, *out = NULL;
	size_t			 cap = 0, outcap = 0;

	/* The thread first: the cache is the main thread's alone. */
	if (request_cache_is_ours() && request_ncache > 0) {
		rq = request_cache[--request_ncache];
		buf = rq->rq_buf;
		cap = rq->rq_cap;
		out = rq->rq_out;
		outcap = rq->rq_outcap;
		memset(rq, 0, sizeof(*rq));
	} else
		rq = xcalloc(1, sizeof(*rq));
	request_new(r, sa, len, rq);
	/* The socket stays open while rq holds its generation. */
	rq->rq_fd = rq->rq_sock->k_fd;
	if (n > cap || buf == NULL) {
		free(buf);
		buf = xmalloc(n > 0 ? n : 1);
		cap = n;
	}
	if (n > 0)
		memcpy(buf, data, n);
	rq->rq_buf = buf;
	rq->rq_len = n;
	rq->rq_cap = cap;
	rq->rq_out = out;
	rq->rq_outcap = outcap;
	return rq;
}

void
request_reuse_dgram(struct ssd_request *rq, const void *data, size_t n,
    const struct sockaddr *sa, socklen_t len)
{
	SSD_ASSERT(rq->rq_type == SOCK_DGRAM);
	/* What setup/handle/finish and the reply left: finish freed the
	 * handler's data, if it had any. */
	rq->rq_data = NULL;
	free(rq->rq_env);
	rq->rq_env = NULL;
	rq->rq_timedout = false;
	rq->rq_peer_gone = false;
	rq->rq_drained = false;
	rq->rq_error_logged = false;
	rq->rq_has_reply = false;
	rq->rq_outlen = 0;
	rq->rq_bytes_in = 0;
	rq->rq_bytes_out = 0;
	rq->rq_refused = NULL;
	request_set_peer(rq, sa, len);
	if (n > rq->rq_cap) {
		rq->rq_buf = xreallocarray(rq->rq_buf, n, 1);
		rq->rq_cap = n;
	}
	if (n > 0)
		memcpy(rq->rq_buf, data, n);
	rq->rq_len = n;
	rq->rq_off = 0;
}

void
request_close(struct ssd_request *rq)
{
	tls_close(rq);
	if (rq->rq_type == SOCK_STREAM && rq->rq_fd != -1) {
		close(rq->rq_fd);
		rq->rq_fd = -1;
	}
}

void
request_free(struct ssd_request *rq)
{
	if (rq == NULL)
		return;
	tls_close(rq);
	if (rq->rq_type == SOCK_STREAM && rq->rq_fd != -1)
		close(rq->rq_fd);
	free(rq->rq_env);
	rq->rq_env = NULL;
	if (rq->rq_type == SOCK_DGRAM && request_cache_is_ours() &&
	    request_ncache < REQUEST_DGRAM_CACHE) {
		if (rq->rq_cap > REQUEST_DGRAM_KEEP) {
			free(rq->rq_buf);
			rq->rq_buf = NULL;
			rq->rq_cap = 0;
		}
		if (rq->rq_outcap > REQUEST_DGRAM_KEEP) {
			free(rq->rq_out);
			rq->rq_out = NULL;
			rq->rq_outcap = 0;
		}
		request_cache[request_ncache++] = rq;
		return;
	}
	free(rq->rq_buf);
	free(rq->rq_out);
	free(rq);
}

static void
request_dgram_reply(struct ssd_request *rq)
{
	if (!rq->rq_has_reply)
		return;
	if (rq->rq_peerlen <= sizeof(sa_family_t)) {
		ssd_log(rq, LOG_DEBUG, "reply dropped: the client's socket "
		    "has no address");
		return;
	}
	if (listener_dgram_reply(rq))
		return;
	if (sendto(rq->rq_fd, rq->rq_out, rq->rq_outlen, MSG_DONTWAIT,
	    (struct sockaddr *)&rq->rq_peer, rq->rq_peerlen) == -1)
		ssd_log(rq, LOG_INFO, "reply of %zu bytes not sent: %s",
		    rq->rq_outlen, strerror(errno));
}

void
request_count_in(struct ssd_request *rq, unsigned long n)
{
	rq->rq_bytes_in += n;
	stats_add(&rq->rq_stats->s_bytes_in, n);
}

void
request_count_out(struct ssd_request *rq, unsigned long n)
{
	rq->rq_bytes_out += n;
	stats_add(&rq->rq_stats->s_bytes_out, n);
}

/* What the access log says of rq so far (result: ok, error...). */
static void
request_access_rec(const struct ssd_request *rq, struct access_rec *a,
    const char *result)
{
	a->a_listener = rq->rq_listener->l_name;
	a->a_peer = rq->rq_peerstr;
	a->a_seconds = ev_time() - rq->rq_started;
	a->a_received = rq->rq_bytes_in;
	a->a_sent = rq->rq_bytes_out;
	a->a_result = result;
}

/* Turned away after the PROXY header: counted, logged once a second. */
static void
request_refuse(struct ssd_request *rq, _Atomic unsigned long *counter,
    const char *why)
{
	struct access_rec a;

	request_access_rec(rq, &a, NULL);
	stats_refusal(rq->rq_stats, counter, rq->rq_peerstr, why,
	    rq->rq_listener->l_access_log ? &a : NULL);
}

/* proxy_protocol: the header, then allow/deny, max_per_source and
 * rate_per_source for the client it names.  false: the request ends
 * here. */
static bool
request_proxied(struct ssd_request *rq)
{
	const struct listener *l = rq->rq_listener;
	const struct sockaddr *sa = (const struct sockaddr *)&rq->rq_peer;
	char		 err[256];

	if (proxy_read(rq, err, sizeof(err)) == -1) {
		request_refuse(rq, &rq->rq_stats->s_refused_proxy, err);
		return false;
	}
	if (acl_refuses(l, sa)) {
		request_refuse(rq, &rq->rq_stats->s_refused_acl,
		    "refused by allow/deny");
		return false;
	}
	if (!listener_source_admit(l, rq->rq_sock, rq->rq_stats, sa,
	    rq->rq_peerlen, &rq->rq_source_key))
		return false;
	return true;
}

void
request_run(struct ssd_request *rq)
{
	const struct ssd_handler	*h = rq->rq_run->r_hi.i_handler;
	const char			*result;
	struct access_rec		 a;
	int				 rc;

	if (rq->rq_listener->l_proxy_protocol && !request_proxied(rq))
		return;
	/* After the PROXY header, which comes in clear. */
	if (rq->rq_listener->l_tls != NULL) {
		char why[256];

		if (tls_accept(rq, why, sizeof(why)) == -1) {
			request_refuse(rq, &rq->rq_stats->s_refused_tls, why);
			return;
		}
	}
	if (h->setup != NULL && (rc = h->setup(rq)) != 0) {
		ssd_log(rq, LOG_INFO, "refused by setup (%d)", rc);
		result = "refused:setup";
		goto done;
	}
	rc = h->handle(rq);
	if (h->finish != NULL)
		h->finish(rq);
	tls_shutdown(rq);
	if (rq->rq_type == SOCK_DGRAM)
		request_dgram_reply(rq);
	result = "ok";
	if (atomic_load(&rq->rq_cut)) {
		ssd_log(rq, LOG_NOTICE, "cut: shutdown_timeout passed");
		result = "cut";
	} else if (rq->rq_timedout) {
		stats_add(&rq->rq_stats->s_timeouts, 1);
		ssd_log(rq, LOG_INFO, "timed out after %gs without I/O",
		    rq->rq_timeout);
		result = "timeout";
	} else if (rc < 0 && rq->rq_peer_gone) {
		ssd_log(rq, LOG_DEBUG, "the client went away (reset)");
		result = "error";
	} else if (rc < 0) {
		stats_add(&rq->rq_stats->s_errors, 1);
		/* A handler that said why (at notice or more urgent) is not
		 * logged twice. */
		ssd_log(rq, rq->rq_error_logged ? LOG_DEBUG : LOG_ERR,
		    "handler %s failed (%d)", h->name, rc);
		result = "error";
	} else
		ssd_log(rq, LOG_DEBUG, "done");
done:
	if (rq->rq_listener->l_access_log) {
		request_access_rec(rq, &a, result);
		stats_access(&a, NULL);
	}
}

/* t seconds (> 0) as a timeval, never zero (which means "no timeout"). */
static struct timeval
request_timeval(double t)
{
	struct timeval tv;

	tv.tv_sec = (time_t)t;
	tv.tv_usec = (suseconds_t)((t - (double)tv.tv_sec) * 1e6);
	if (tv.tv_sec == 0 && tv.tv_usec == 0)
		tv.tv_usec = 1;
	return tv;
}

void
request_set_blocking(struct ssd_request *rq)
{
	struct timeval	 tv;
	int		 fl;

	/* TLS waits for what OpenSSL wants, on a non-blocking socket. */
	if (rq->rq_type != SOCK_STREAM || rq->rq_listener->l_tls != NULL ||
	    (fl = fcntl(rq->rq_fd, F_GETFL)) == -1 ||
	    fcntl(rq->rq_fd, F_SETFL, fl & ~O_NONBLOCK) == -1)
		return;
	if (rq->rq_timeout > 0) {
		tv = request_timeval(rq->rq_timeout);
		if (setsockopt(rq->rq_fd, SOL_SOCKET, SO_RCVTIMEO, &tv,
		    sizeof(tv)) == -1 || setsockopt(rq->rq_fd, SOL_SOCKET,
		    SO_SNDTIMEO, &tv, sizeof(tv)) == -1) {
			/* Without the timeouts, stay non-blocking. */
			fcntl(rq->rq_fd, F_SETFL, fl);
			return;
		}
	}
	rq->rq_blocking = true;
}

/* A blocking socket's SO_RCVTIMEO/SO_SNDTIMEO ran out. */
static int
request_timed_out(struct ssd_request *rq)
{
	rq->rq_timedout = true;
	errno = ETIMEDOUT;
	return -1;
}

/* Remembers that the client went away, for the end-of-request log. */
static void
request_io_failed(struct ssd_request *rq)
{
	if (errno == ECONNRESET || errno == EPIPE)
		rq->rq_peer_gone = true;
}

void
request_cut(struct ssd_request *rq)
{
	atomic_store(&rq->rq_cut, true);
	/* Wakes a poll() on the connection; the fd stays open (and its
	 * number unused) until the request is freed. */
	if (rq->rq_type == SOCK_STREAM)
		shutdown(rq->rq_fd, SHUT_RDWR);
}

int
request_wait_poll(struct ssd_request *rq, int fd, short events)
{
	struct pollfd	 pfd;
	struct timespec	 now;
	double		 deadline = 0, left;
	int		 ms, rc;

	if (atomic_load(&rq->rq_cut)) {
		errno = ECONNABORTED;
		return -1;
	}
	if (rq->rq_timeout > 0) {
		clock_gettime(CLOCK_MONOTONIC, &now);
		deadline = now.tv_sec + now.tv_nsec / 1e9 + rq->rq_timeout;
	}
	pfd.fd = fd;
	pfd.events = events;
	for (;;) {
		ms = -1;
		if (rq->rq_timeout > 0) {
			clock_gettime(CLOCK_MONOTONIC, &now);
			left = deadline - (now.tv_sec + now.tv_nsec / 1e9);
			if (left <= 0) {
				rq->rq_timedout = true;
				errno = ETIMEDOUT;
				return -1;
			}
			/* Long timeouts are waited for in slices poll takes. */
			ms = left > 86400 ? 86400000 : (int)ceil(left * 1000);
		}
		/* A cut shuts the connection down, which wakes a poll on it;
		 * waiting on another descriptor, look at the flag now and
		 * then instead. */
		if (fd != rq->rq_fd && (ms == -1 || ms > 200))
			ms = 200;
		rc = poll(&pfd, 1, ms);
		if (atomic_load(&rq->rq_cut)) {
			errno = ECONNABORTED;
			return -1;
		}
		if (rc > 0)
			return 0;
		if (rc == -1 && errno != EINTR)
			return -1;
	}
}

/* One read(2) into buf, waiting as needed.  Stream only. */
ssize_t
request_read_raw(struct ssd_request *rq, void *buf, size_t len)
{
	ssize_t n;

	if (rq->rq_tls != NULL)
		return tls_read(rq, buf, len);
	/* The last read drained the socket: the next would say EAGAIN. */
	if (rq->rq_drained && !rq->rq_blocking &&
	    rq->rq_wait(rq, rq->rq_fd, POLLIN) == -1)
		return -1;
	for (;;) {
		if (atomic_load(&rq->rq_cut)) {
			errno = ECONNABORTED;
			return -1;
		}
		n = read(rq->rq_fd, buf, len);
		if (n >= 0) {
			rq->rq_drained = n > 0 && (size_t)n < len;
			request_count_in(rq, (unsigned long)n);
			return n;
		}
		if (errno == EINTR)
			continue;
		if (rq->rq_blocking && (errno == EAGAIN ||
		    errno == EWOULDBLOCK))
			return request_timed_out(rq);
		if (errno != EAGAIN && errno != EWOULDBLOCK) {
			request_io_failed(rq);
			return -1;
		}
		if (rq->rq_wait(rq, rq->rq_fd, POLLIN) == -1)
			return -1;
	}
}

ssize_t
ssd_read(struct ssd_request *rq, void *buf, size_t len)
{
	size_t n;

	if (len == 0)
		return 0;
	if (rq->rq_off < rq->rq_len) {
		n = rq->rq_len - rq->rq_off;
		if (n > len)
			n = len;
		memcpy(buf, rq->rq_buf + rq->rq_off, n);
		rq->rq_off += n;
		if (rq->rq_type == SOCK_DGRAM)
			request_count_in(rq, n);
		return (ssize_t)n;
	}
	if (rq->rq_type == SOCK_DGRAM)
		return 0;
	return request_read_raw(rq, buf, len);
}

ssize_t
ssd_readline(struct ssd_request *rq, char *buf, size_t size)
{
	size_t	 got = 0;
	ssize_t	 n;

	if (size == 0) {
		errno = EINVAL;
		return -1;
	}
	while (got < size - 1) {
		char *nl;
		size_t take;

		if (rq->rq_off == rq->rq_len) {
			if (rq->rq_type == SOCK_DGRAM)
				break;
			if (rq->rq_cap == 0) {
				rq->rq_buf = xmalloc(REQUEST_BUFSIZE);
				rq->rq_cap = REQUEST_BUFSIZE;
			}
			rq->rq_off = rq->rq_len = 0;
			n = request_read_raw(rq, rq->rq_buf, rq->rq_cap);
			if (n < 0)
				return -1;
			if (n == 0)
				break;
			rq->rq_len = (size_t)n;
		}
		take = rq->rq_len - rq->rq_off;
		if (take > size - 1 - got)
			take = size - 1 - got;
		nl = memchr(rq->rq_buf + rq->rq_off, '\n', take);
		if (nl != NULL)
			take = (size_t)(nl - (rq->rq_buf + rq->rq_off)) + 1;
		memcpy(buf + got, rq->rq_buf + rq->rq_off, take);
		rq->rq_off += take;
		got += take;
		if (rq->rq_type == SOCK_DGRAM)
			request_count_in(rq, take);
		if (nl != NULL)
			break;
	}
	buf[got] = '\0';
	return (ssize_t)got;
}

/* CLOCK_MONOTONIC, in seconds. */
static double
request_now(void)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (double)now.tv_sec + now.tv_nsec / 1e9;
}

/* Sets a blocking socket's SO_SNDTIMEO to t seconds (> 0). */
static int
request_sndtimeo(struct ssd_request *rq, double t)
{
	struct timeval tv = request_timeval(t);

	return setsockopt(rq->rq_fd, SOL_SOCKET, SO_SNDTIMEO, &tv,
	    sizeof(tv));
}

/*
 * The timeout bounds the whole write, not each partial send: a client
 * that reads a byte now and then would otherwise hold the request for
 * ever.  What is left of it goes to SO_SNDTIMEO (blocking models) or to
 * rq_wait (the others) before each send after the first.
 */
int
ssd_write(struct ssd_request *rq, const void *buf, size_t len)
{
	const char	*p = buf;
	double		 saved = rq->rq_timeout, end = 0, left = 0;
	bool		 shrunk = false;
	ssize_t		 n;
	int		 rc = -1;

	if (rq->rq_type == SOCK_DGRAM) {
		rq->rq_has_reply = true;	/* even an empty one */
		if (len > REQUEST_DGRAM_MAX - rq->rq_outlen) {
			errno = EMSGSIZE;
			return -1;
		}
		if (rq->rq_outlen + len > rq->rq_outcap) {
			size_t cap = rq->rq_outcap == 0 ? 512 : rq->rq_outcap;

			while (cap < rq->rq_outlen + len)
				cap *= 2;
			rq->rq_out = xreallocarray(rq->rq_out, cap, 1);
			rq->rq_outcap = cap;
		}
		if (len > 0)
			memcpy(rq->rq_out + rq->rq_outlen, buf, len);
		rq->rq_outlen += len;
		request_count_out(rq, len);
		return 0;
	}
	if (len == 0)
		return 0;
	if (rq->rq_tls != NULL)
		return tls_write(rq, buf, len);
	/* A blocking send may wait (up to SO_SNDTIMEO) before it says how
	 * much it took: the whole write's time starts before it. */
	if (rq->rq_blocking && saved > 0)
		end = request_now() + saved;
	for (;;) {
		if (atomic_load(&rq->rq_cut)) {
			errno = ECONNABORTED;
			break;
		}
		n = send(rq->rq_fd, p, len, MSG_NOSIGNAL);
		if (n >= 0) {
			request_count_out(rq, (unsigned long)n);
			p += n;
			if ((len -= (size_t)n) == 0) {
				rc = 0;
				break;
			}
		} else if (errno == EINTR)
			continue;
		else if (rq->rq_blocking && (errno == EAGAIN ||
		    errno == EWOULDBLOCK)) {
			request_timed_out(rq);
			break;
		} else if (errno != EAGAIN && errno != EWOULDBLOCK) {
			request_io_failed(rq);
			break;
		}
		/* Otherwise only a write that must wait reads the clock. */
		if (saved > 0 && end == 0)
			end = request_now() + saved;
		if (saved > 0 && (left = end - request_now()) <= 0) {
			request_timed_out(rq);
			break;
		}
		if (rq->rq_blocking) {
			if (saved > 0) {
				if (request_sndtimeo(rq, left) == -1)
					break;
				shrunk = true;
			}
			continue;
		}
		if (saved > 0)
			rq->rq_timeout = left;
		n = rq->rq_wait(rq, rq->rq_fd, POLLOUT);
		rq->rq_timeout = saved;
		if (n == -1)
			break;
	}
	if (shrunk) {
		int saved_errno = errno;

		request_sndtimeo(rq, saved);
		errno = saved_errno;
	}
	return rc;
}

int
ssd_printf(struct ssd_request *rq, const char *fmt, ...)
{
	va_list	 ap;
	char	 small[512], *p = small;
	int	 n, rc;

	va_start(ap, fmt);
	n = vsnprintf(small, sizeof(small), fmt, ap);
	va_end(ap);
	if (n < 0)
		return -1;
	if ((size_t)n >= sizeof(small)) {
		if ((p = malloc((size_t)n + 1)) == NULL)
			return -1;
		va_start(ap, fmt);
		vsnprintf(p, (size_t)n + 1, fmt, ap);
		va_end(ap);
	}
	rc = ssd_write(rq, p, (size_t)n);
	if (p != small)
		free(p);
	return rc;
}

const char *
ssd_peer(const struct ssd_request *rq)
{
	return rq->rq_peerstr;
}

const struct sockaddr *
ssd_peer_addr(const struct ssd_request *rq, socklen_t *len)
{
	if (len != NULL)
		*len = rq->rq_peerlen;
	return (const struct sockaddr *)&rq->rq_peer;
}

const char *
ssd_listener_name(const struct ssd_request *rq)
{
	return rq->rq_listener->l_name;
}

void *
ssd_instance(const struct ssd_request *rq)
{
	return rq->rq_run->r_hi.i_instance;
}

void *
ssd_data(const struct ssd_request *rq)
{
	return rq->rq_data;
}

void
ssd_set_data(struct ssd_request *rq, void *data)
{
	rq->rq_data = data;
}

int
ssd_fd(const struct ssd_request *rq)
{
	return rq->rq_fd;
}

/* What ssd_env returns for the ucspi-tcp names, made on first use. */
struct request_env {
	char	e_proto[8];
	char	e_rip[INET6_ADDRSTRLEN], e_rport[8];
	char	e_lip[INET6_ADDRSTRLEN], e_lport[8];
};

/* "IP" and "PORT" of a socket address, as ucspi-tcp writes them. */
static void
request_env_addr(const struct sockaddr *sa, char *ip, size_t iplen,
    char *port, size_t portlen)
{
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *sin = (const void *)sa;

		inet_ntop(AF_INET, &sin->sin_addr, ip, (socklen_t)iplen);
		snprintf(port, portlen, "%u", ntohs(sin->sin_port));
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *sin6 = (const void *)sa;

		inet_ntop(AF_INET6, &sin6->sin6_addr, ip, (socklen_t)iplen);
		snprintf(port, portlen, "%u", ntohs(sin6->sin6_port));
	} else {
		snprintf(ip, iplen, "0.0.0.0");
		snprintf(port, portlen, "0");
	}
}

static struct request_env *
request_env(const struct ssd_request *crq)
{
	struct ssd_request	*rq = (struct ssd_request *)(uintptr_t)crq;
	struct request_env	*e;
	struct sockaddr_storage	 local;
	socklen_t		 len = sizeof(local);
	const struct sockaddr	*peer = (const struct sockaddr *)&rq->rq_peer;

	if (rq->rq_env != NULL)
		return rq->rq_env;
	e = rq->rq_env = xcalloc(1, sizeof(*e));
	/* ucspi-tcp's names; a datagram's (exec serves streams only) by
	 * analogy, UDP and UDP6. */
	snprintf(e->e_proto, sizeof(e->e_proto), "%s%s",
	    peer->sa_family == AF_INET6 || peer->sa_family == AF_INET ?
	    (rq->rq_type == SOCK_DGRAM ? "UDP" : "TCP") : "UNIX",
	    peer->sa_family == AF_INET6 ? "6" : "");
	request_env_addr(peer, e->e_rip, sizeof(e->e_rip), e->e_rport,
	    sizeof(e->e_rport));
	/* The address the client reached (behind a PROXY header too: the
	 * socket's own, as ucspi-tcp would see it). */
	if (getsockname(rq->rq_fd, (struct sockaddr *)&local, &len) == -1)
		local.ss_family = AF_UNSPEC;
	request_env_addr((struct sockaddr *)&local, e->e_lip,
	    sizeof(e->e_lip), e->e_lport, sizeof(e->e_lport));
	return e;
}

const char *
ssd_env(const struct ssd_request *rq, const char *name)
{
	struct request_env *e;

	if (name == NULL)
		return NULL;
	if (strncmp(name, "SSL_", 4) == 0 || strcmp(name, "HTTPS") == 0)
		return tls_env(rq, name);
	if (strcmp(name, "PROTO") != 0 && strncmp(name, "TCP", 3) != 0)
		return NULL;
	e = request_env(rq);
	if (strcmp(name, "PROTO") == 0)
		return e->e_proto;
	if (strcmp(name, "TCPREMOTEIP") == 0)
		return e->e_rip;
	if (strcmp(name, "TCPREMOTEPORT") == 0)
		return e->e_rport;
	if (strcmp(name, "TCPLOCALIP") == 0)
		return e->e_lip;
	if (strcmp(name, "TCPLOCALPORT") == 0)
		return e->e_lport;
	return NULL;
}

/* Seconds since the connection last carried data either way (TCP), or
 * -1 when the kernel cannot tell (not TCP). */
static double
request_idle_seconds(const struct ssd_request *rq)
{
	struct tcp_info	 ti;
	socklen_t	 len = sizeof(ti);

	if (rq->rq_type != SOCK_STREAM ||
	    (rq->rq_peer.ss_family != AF_INET &&
	    rq->rq_peer.ss_family != AF_INET6) ||
	    getsockopt(rq->rq_fd, IPPROTO_TCP, TCP_INFO, &ti, &len) == -1)
		return -1;
	return (ti.tcpi_last_data_recv < ti.tcpi_last_data_sent ?
	    ti.tcpi_last_data_recv : ti.tcpi_last_data_sent) / 1000.0;
}

/* Signals pid, and its process group when it leads one (exec's programs
 * do), so that what it started goes too. */
static void
request_kill(pid_t pid, int sig)
{
	if (getpgid(pid) == pid)
		kill(-pid, sig);
	else
		kill(pid, sig);
}

/* No way to wait without blocking: end the process and reap it now, so
 * that it is neither left unsupervised nor a zombie. */
static int
request_reap_now(struct ssd_request *rq, pid_t pid, int *status)
{
	int	 saved = errno;
	pid_t	 r;

	ssd_log(rq, LOG_ERR, "cannot wait for process %d: %s; sending "
	    "SIGKILL", (int)pid, strerror(saved));
	request_kill(pid, SIGKILL);
	while ((r = waitpid(pid, status, 0)) == -1 && errno == EINTR)
		continue;
	errno = saved;
	return r == pid ? 0 : -1;
}

/* The waitpid poll without a pidfd: first pause, and the longest. */
#define REQUEST_REAP_POLL_MIN	0.02
#define REQUEST_REAP_POLL_MAX	0.25

/*
 * Without a pidfd: waits up to rq_timeout seconds (0: no limit) for pid to
 * end by polling waitpid(WNOHANG), pausing in between through rq_wait on
 * efd, an eventfd nobody writes, so that the event loop serves meanwhile;
 * each pause is twice the last (*pause), from 20 ms up to 250 ms.  No
 * SIGCHLD: the fork model's parent owns its handler.  0: pid is reaped,
 * *status set; else -1 with rq_wait's errno (ETIMEDOUT, ECONNABORTED), or
 * ECHILD.
 */
static int
request_poll_child(struct ssd_request *rq, int efd, pid_t pid, int *status,
    double *pause)
{
	double	 wait = rq->rq_timeout, end = request_now() + wait, left;
	pid_t	 r;
	int	 rc;

	for (;;) {
		while ((r = waitpid(pid, status, WNOHANG)) == -1 &&
		    errno == EINTR)
			continue;
		if (r == pid)
			return 0;
		if (r == -1)
			return -1;
		left = *pause;
		if (wait > 0 && (left = end - request_now()) > *pause)
			left = *pause;
		if (left <= 0) {
			errno = ETIMEDOUT;
			return -1;
		}
		rq->rq_timeout = left;
		rc = rq->rq_wait(rq, efd, POLLIN);
		rq->rq_timeout = wait;
		rq->rq_timedout = false;
		if (rc == -1 && errno != ETIMEDOUT)
			return -1;
		if ((*pause *= 2) > REQUEST_REAP_POLL_MAX)
			*pause = REQUEST_REAP_POLL_MAX;
	}
}

static int	request_waitpid(struct ssd_request *, pid_t, int *);

/* The bytes the processes holding a TCP connection have read from it
 * and written to it so far, as the kernel counts them; false when it
 * cannot tell (not TCP). */
static bool
request_tcp_bytes(const struct ssd_request *rq, unsigned long long *in,
    unsigned long long *out)
{
	struct tcp_info	 ti;
	socklen_t	 len = sizeof(ti);
	struct pollfd	 pfd;
	int		 inq = 0, outq = 0;
	bool		 fins = false;

	memset(&ti, 0, sizeof(ti));
	if (rq->rq_type != SOCK_STREAM ||
	    (rq->rq_peer.ss_family != AF_INET &&
	    rq->rq_peer.ss_family != AF_INET6) ||
	    getsockopt(rq->rq_fd, IPPROTO_TCP, TCP_INFO, &ti, &len) == -1 ||
	    len < offsetof(struct tcp_info, tcpi_bytes_received) +
	    sizeof(ti.tcpi_bytes_received) ||
	    ioctl(rq->rq_fd, SIOCINQ, &inq) == -1 ||
	    ioctl(rq->rq_fd, SIOCOUTQ, &outq) == -1)
		return false;
	/* Received, less what waits unread; written: acknowledged, plus
	 * what is still in flight or queued. */
	*in = ti.tcpi_bytes_received - (unsigned long long)inq;
	*out = ti.tcpi_bytes_acked + (unsigned long long)outq;
	/* A connection still open here that both ends closed in turn is
	 * in CLOSE (7): the kernel moves it there from FIN_WAIT2 or
	 * CLOSING as the end enters TIME_WAIT, and from LAST_ACK once our
	 * FIN is acknowledged.  A reset or a time-out ends there too: it
	 * was such a close if our FIN went out (what was acknowledged or
	 * is queued exceeds the data sent, once each, and the data not
	 * sent yet) and no error is pending (POLLERR does not take it).
	 * (Left: a reset after our FIN whose error the program read, where
	 * the client's FIN is taken for one that came: received is one
	 * short.) */
	if (ti.tcpi_state == 7 && len >= offsetof(struct tcp_info,
	    tcpi_bytes_retrans) + sizeof(ti.tcpi_bytes_retrans) &&
	    ti.tcpi_bytes_sent >= ti.tcpi_bytes_retrans &&
	    *out == ti.tcpi_bytes_sent - ti.tcpi_bytes_retrans +
	    ti.tcpi_notsent_bytes + 1) {
		pfd.fd = rq->rq_fd;
		pfd.events = POLLIN;
		pfd.revents = 0;
		fins = poll(&pfd, 1, 0) == 1 && (pfd.revents & POLLERR) == 0;
	}
	/* A FIN takes a sequence number, which these include: the
	 * client's once received (CLOSE_WAIT 8, LAST_ACK 9, CLOSING 11,
	 * TIME_WAIT 6, CLOSE after both FINs); ours once sent (FIN_WAIT1
	 * 4, FIN_WAIT2 5, CLOSING, LAST_ACK, TIME_WAIT, CLOSE after both
	 * FINs). */
	if (*in > 0 && (ti.tcpi_state == 8 || ti.tcpi_state == 9 ||
	    ti.tcpi_state == 11 || ti.tcpi_state == 6 || fins))
		(*in)--;
	if (*out > 0 && (ti.tcpi_state == 4 || ti.tcpi_state == 5 ||
	    ti.tcpi_state == 11 || ti.tcpi_state == 9 || ti.tcpi_state == 6 ||
	    fins))
		(*out)--;
	return true;
}

int
ssd_waitpid(struct ssd_request *rq, pid_t pid, int *status)
{
	unsigned long long	 in, out;
	int			 rc = request_waitpid(rq, pid, status);

	/* The program had the connection: what it carried is the
	 * request's (the access log, the byte counters).  The kernel counts
	 * every byte since the connection began, and the daemon counted
	 * every byte it read or wrote itself (PROXY header and read-ahead
	 * included): the rest is the program's, from the moment it
	 * started, before this call too.  Not under TLS, where the
	 * kernel's bytes are ciphertext. */
	if (rq->rq_tls == NULL && request_tcp_bytes(rq, &in, &out)) {
		if (in > rq->rq_bytes_in)
			request_count_in(rq,
			    (unsigned long)(in - rq->rq_bytes_in));
		if (out > rq->rq_bytes_out)
			request_count_out(rq,
			    (unsigned long)(out - rq->rq_bytes_out));
	}
	return rc;
}

/* ssd_waitpid, less the byte count. */
static int
request_waitpid(struct ssd_request *rq, pid_t pid, int *status)
{
	double	 saved = rq->rq_timeout, idle, pause = REQUEST_REAP_POLL_MIN;
	int	 pfd, efd = -1, rc = -1, sig = 0, err;
	bool	 reaped = false;
	pid_t	 r;

	if ((pfd = (int)syscall(SYS_pidfd_open, pid, 0)) == -1) {
		/* Old kernels, seccomp filters, valgrind: poll instead. */
		ssd_log(rq, LOG_DEBUG, "pidfd_open: %s; polling for process "
		    "%d", strerror(errno), (int)pid);
		if ((efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) == -1)
			return request_reap_now(rq, pid, status);
	}
	for (;;) {
		/* The process ended: pidfd readable.  Otherwise wait no
		 * longer than the connection may stay silent. */
		idle = saved > 0 ? request_idle_seconds(rq) : -1;
		rq->rq_timeout = saved <= 0 || sig != 0 ? (sig ? 1.0 : 0) :
		    idle < 0 ? saved : saved - idle > 0.05 ? saved - idle : 0.05;
		if (pfd != -1)
			rc = rq->rq_wait(rq, pfd, POLLIN);
		else
			reaped = (rc = request_poll_child(rq, efd, pid,
			    status, &pause)) == 0;
		rq->rq_timedout = false;
		if (rc == 0)
			break;
		if (errno == ECONNABORTED) {
			/* The stop's deadline passed: the program goes now,
			 * it must not outlive the daemon. */
			ssd_log(rq, LOG_NOTICE, "process %d cut: sending "
			    "SIGKILL", (int)pid);
			request_kill(pid, SIGKILL);
			break;
		}
		if (errno == ECHILD)
			goto fail;	/* not ours to wait for, nor to kill */
		if (errno != ETIMEDOUT) {
			rc = request_reap_now(rq, pid, status);
			goto done;
		}
		if (sig == 0 && (idle = request_idle_seconds(rq)) >= 0 &&
		    idle < saved)
			continue;	/* there was traffic meanwhile */
		sig = sig == 0 ? SIGTERM : SIGKILL;
		ssd_log(rq, LOG_INFO, "process %d %s: sending %s", (int)pid,
		    sig == SIGTERM ? "silent for the timeout" :
		    "still running", sig == SIGTERM ? "SIGTERM" : "SIGKILL");
		request_kill(pid, sig);
	}
	if (!reaped) {
		while ((r = waitpid(pid, status, 0)) == -1 && errno == EINTR)
			continue;
		if (r != pid)
			goto fail;
	}
	rc = 0;
	goto done;
fail:
	/* Logged here, as request_reap_now does: the caller need not. */
	err = errno;
	ssd_log(rq, LOG_ERR, "cannot wait for process %d: %s", (int)pid,
	    strerror(err));
	errno = err;
	rc = -1;
done:
	rq->rq_timedout = sig != 0;	/* logged as a timeout */
	rq->rq_timeout = saved;
	if (pfd != -1)
		close(pfd);
	if (efd != -1)
		close(efd);
	return rc;
}

/* Without waiting, on the connection, TLS or not: >0, 0 at EOF, or -1
 * with errno (EAGAIN: *want says POLLIN or POLLOUT). */
static ssize_t
request_read_try(struct ssd_request *rq, void *buf, size_t len, short *want)
{
	ssize_t n;

	if (rq->rq_tls != NULL)
		return tls_read_try(rq, buf, len, want);
	while ((n = recv(rq->rq_fd, buf, len, MSG_DONTWAIT)) == -1 &&
	    errno == EINTR)
		continue;
	if (n > 0)
		request_count_in(rq, (unsigned long)n);
	*want = POLLIN;
	return n;
}

static ssize_t
request_write_try(struct ssd_request *rq, const void *buf, size_t len,
    short *want)
{
	ssize_t n;

	if (rq->rq_tls != NULL)
		return tls_write_try(rq, buf, len, want);
	while ((n = send(rq->rq_fd, buf, len, MSG_DONTWAIT | MSG_NOSIGNAL)) ==
	    -1 && errno == EINTR)
		continue;
	if (n > 0)
		request_count_out(rq, (unsigned long)n);
	*want = POLLOUT;
	return n;
}

/* Each direction's buffer in ssd_relay. */
#define RELAY_BUFSIZE	(16 * 1024)

/* One descriptor of the relay's epoll set, registered for *cur. */
static void
request_relay_watch(int ep, int fd, uint32_t want, uint32_t *cur)
{
	struct epoll_event ev;

	if (fd == -1 || want == *cur)
		return;
	memset(&ev, 0, sizeof(ev));
	ev.events = want;
	ev.data.fd = fd;
	/* Not watched at all rather than for nothing: a hung-up pipe or
	 * socket would otherwise wake the wait again and again. */
	if (want == 0)
		epoll_ctl(ep, EPOLL_CTL_DEL, fd, NULL);
	else if (*cur == 0)
		epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
	else
		epoll_ctl(ep, EPOLL_CTL_MOD, fd, &ev);
	*cur = want;
}

/*
 * write(2) to the program's stdin, a pipe, without SIGPIPE: the process
 * running the relay may have SIGPIPE's default action (a fork model
 * child, a plugin's own process), and a program that closed its stdin
 * early must not end it.  SIGPIPE is blocked for this thread around the
 * write, and the one the write raised (EPIPE) taken back unless one was
 * pending already.
 */
static ssize_t
request_write_pipe(int fd, const void *buf, size_t len)
{
	static const struct timespec	 zero = { 0, 0 };
	sigset_t			 pipe_set, old, pending;
	ssize_t				 n;
	int				 err;
	bool				 was_pending;

	sigemptyset(&pipe_set);
	sigaddset(&pipe_set, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &pipe_set, &old);
	sigpending(&pending);
	was_pending = sigismember(&pending, SIGPIPE);
	n = write(fd, buf, len);
	err = errno;
	if (n == -1 && err == EPIPE && !was_pending)
		while (sigtimedwait(&pipe_set, NULL, &zero) == -1 &&
		    errno == EINTR)
			continue;
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	errno = err;
	return n;
}

static void
request_close_fd(int *fd)
{
	if (*fd != -1) {
		close(*fd);
		*fd = -1;
	}
}

int
ssd_relay(struct ssd_request *rq, int to_prog, int from_prog, pid_t pid,
    int *status)
{
	char		*cbuf = NULL, *pbuf = NULL;
	size_t		 coff = 0, clen = 0, poff = 0, plen = 0;
	bool		 c_eof = false, c_dead = false, p_eof = false;
	bool		 exited = false, notified = false, moved;
	double		 saved = rq->rq_timeout, last, left, killed_at = 0;
	uint32_t	 w_conn = 0, w_to = 0, w_from = 0, w_pid = 0;
	uint32_t	 want_conn, want_to, want_from;
	short		 want;
	int		 ep, pfd = -1, sig = 0, rc, err;
	ssize_t		 n;
	pid_t		 r;

	if (rq->rq_type != SOCK_STREAM) {
		errno = EINVAL;
		return -1;
	}
	if ((ep = epoll_create1(EPOLL_CLOEXEC)) == -1) {
		err = errno;
		close(to_prog);
		close(from_prog);
		errno = err;
		return request_reap_now(rq, pid, status);
	}
	fcntl(to_prog, F_SETFL, fcntl(to_prog, F_GETFL) | O_NONBLOCK);
	fcntl(from_prog, F_SETFL, fcntl(from_prog, F_GETFL) | O_NONBLOCK);
	/* Without a pidfd (valgrind, seccomp), waitpid is asked at least
	 * every 100 ms. */
	if ((pfd = (int)syscall(SYS_pidfd_open, pid, 0)) != -1)
		request_relay_watch(ep, pfd, EPOLLIN, &w_pid);
	cbuf = xmalloc(RELAY_BUFSIZE);
	pbuf = xmalloc(RELAY_BUFSIZE);
	/* What ssd_readline read ahead goes first. */
	if (rq->rq_off < rq->rq_len) {
		clen = rq->rq_len - rq->rq_off;
		if (clen > RELAY_BUFSIZE)
			clen = RELAY_BUFSIZE;
		memcpy(cbuf, rq->rq_buf + rq->rq_off, clen);
		rq->rq_off += clen;
	}
	last = request_now();
	for (;;) {
		want_conn = want_to = want_from = 0;
		do {
			moved = false;
			/* the client -> cbuf (not once the program ended) */
			if (!c_eof && clen == 0 && !exited && to_prog != -1) {
				n = request_read_try(rq, cbuf, RELAY_BUFSIZE,
				    &want);
				if (n > 0) {
					coff = 0;
					clen = (size_t)n;
				} else if (n == -1 && errno == EAGAIN)
					want_conn |= want == POLLOUT ?
					    EPOLLOUT : EPOLLIN;
				else {
					c_eof = true;
					c_dead = n == -1;
				}
				moved |= n != -1 || errno != EAGAIN;
			}
			/* cbuf -> the program's stdin */
			if (clen > 0 && to_prog != -1 && !exited) {
				n = request_write_pipe(to_prog, cbuf + coff,
				    clen);
				if (n > 0) {
					coff += (size_t)n;
					clen -= (size_t)n;
					moved = true;
				} else if (errno == EAGAIN)
					want_to = EPOLLOUT;
				else if (errno != EINTR) {
					/* It closed its stdin: the rest of
					 * the input has nowhere to go. */
					clen = 0;
					request_close_fd(&to_prog);
					moved = true;
				}
			} else if (clen > 0)
				clen = 0;
			if ((c_eof || exited) && clen == 0 && to_prog != -1) {
				/* the client's EOF is the program's */
				request_close_fd(&to_prog);
				w_to = 0;
				moved = true;
			}
			/* the program's stdout -> pbuf */
			if (!p_eof && plen == 0) {
				n = read(from_prog, pbuf, RELAY_BUFSIZE);
				if (n > 0) {
					poff = 0;
					plen = (size_t)n;
					moved = true;
				} else if (n == -1 && errno == EAGAIN &&
				    !exited)
					want_from = EPOLLIN;
				else if (n == 0 || errno != EINTR) {
					/* EOF; or the program ended and
					 * what is left keeps stdout open */
					p_eof = true;
					moved = true;
				}
			}
			/* pbuf -> the client */
			if (plen > 0 && !c_dead) {
				n = request_write_try(rq, pbuf + poff, plen,
				    &want);
				if (n > 0) {
					poff += (size_t)n;
					plen -= (size_t)n;
					moved = true;
				} else if (n == -1 && errno == EAGAIN)
					want_conn |= want == POLLOUT ?
					    EPOLLOUT : EPOLLIN;
				else {
					c_dead = c_eof = true;
					moved = true;
				}
			}
			if (c_dead) {
				/* the program gets EPIPE, as on a socket */
				plen = 0;
				if (from_prog != -1) {
					request_close_fd(&from_prog);
					w_from = 0;
					p_eof = true;
				}
			}
			/* its stdout's EOF is the client's */
			if (p_eof && plen == 0 && !notified && !c_dead) {
				notified = true;
				if (rq->rq_tls != NULL)
					tls_close_notify(rq);
				else
					shutdown(rq->rq_fd, SHUT_WR);
			}
			if (moved)
				last = request_now();
		} while (moved);
		if (!exited) {
			while ((r = waitpid(pid, status, WNOHANG)) == -1 &&
			    errno == EINTR)
				continue;
			if (r == pid) {
				exited = true;
				continue;	/* what it left in the pipe */
			}
			if (r == -1) {
				rc = -1;
				goto fail;
			}
		}
		if (exited && p_eof && plen == 0)
			break;
		/* Silent for the timeout: SIGTERM, then SIGKILL a second
		 * later, as ssd_waitpid does. */
		left = 0;
		if (!exited && saved > 0 && (left = last + saved -
		    request_now()) <= 0 && sig == 0) {
			sig = SIGTERM;
			ssd_log(rq, LOG_INFO, "process %d silent for the "
			    "timeout: sending SIGTERM", (int)pid);
			request_kill(pid, sig);
			killed_at = request_now();
		}
		if (sig != 0 && !exited) {
			left = killed_at + 1.0 - request_now();
			if (left <= 0 && sig == SIGTERM) {
				sig = SIGKILL;
				ssd_log(rq, LOG_INFO, "process %d still "
				    "running: sending SIGKILL", (int)pid);
				request_kill(pid, sig);
				left = 1.0;
			}
		}
		if (exited && saved > 0 &&
		    (left = last + saved - request_now()) <= 0) {
			/* it ended, but the client takes nothing more */
			rq->rq_timedout = true;
			break;
		}
		if (pfd == -1 && !exited && (left <= 0 || left > 0.1))
			left = 0.1;
		request_relay_watch(ep, rq->rq_fd, want_conn, &w_conn);
		request_relay_watch(ep, to_prog, want_to, &w_to);
		request_relay_watch(ep, from_prog, want_from, &w_from);
		if (exited && w_pid != 0)
			request_relay_watch(ep, pfd, 0, &w_pid);
		rq->rq_timeout = left > 0 ? left : 0;
		rc = rq->rq_wait(rq, ep, POLLIN);
		rq->rq_timeout = saved;
		rq->rq_timedout = false;
		if (rc == -1 && errno == ECONNABORTED) {
			/* The stop's deadline passed: the program goes now. */
			if (!exited) {
				ssd_log(rq, LOG_NOTICE, "process %d cut: sending "
				    "SIGKILL", (int)pid);
				request_kill(pid, SIGKILL);
			}
			break;
		}
		if (rc == -1 && errno != ETIMEDOUT && errno != EINTR) {
			err = errno;
			ssd_log(rq, LOG_ERR, "relay: %s", strerror(err));
			if (!exited)
				request_kill(pid, SIGKILL);
			break;
		}
	}
	rc = 0;
	if (!exited) {
		while ((r = waitpid(pid, status, 0)) == -1 && errno == EINTR)
			continue;
		if (r != pid)
			rc = -1;
	}
fail:
	if (rc == -1) {
		err = errno;
		ssd_log(rq, LOG_ERR, "cannot wait for process %d: %s",
		    (int)pid, strerror(err));
		errno = err;
	}
	if (sig != 0)
		rq->rq_timedout = true;	/* logged as a timeout */
	request_close_fd(&to_prog);
	request_close_fd(&from_prog);
	if (pfd != -1)
		close(pfd);
	close(ep);
	free(cbuf);
	free(pbuf);
	return rc;
}

int
ssd_write_stats(struct ssd_request *rq, int format)
{
	struct stats_buf	 b = { NULL, 0, 0 };
	int			 rc;

	stats_render(&b, format == SSD_STATS_PROMETHEUS);
	rc = ssd_write(rq, b.b_text, b.b_len);
	free(b.b_text);
	return rc;
}

int
ssd_socktype(const struct ssd_request *rq)
{
	return rq->rq_type;
}

void
ssd_log(const struct ssd_request *rq, int level, const char *fmt, ...)
{
	va_list	 ap;

	/* Said why: request_run need not say it failed.  Only ever the
	 * request's own thread. */
	if (level <= LOG_NOTICE)
		((struct ssd_request *)(uintptr_t)rq)->rq_error_logged = true;
	if (!log_is_enabled(level))
		return;
	va_start(ap, fmt);
	log_vlog_about(level, rq->rq_listener->l_name, rq->rq_peerstr, fmt,
	    ap);
	va_end(ap);
}
