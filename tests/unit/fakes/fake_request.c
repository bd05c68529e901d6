/* SPDX-License-Identifier: ISC */
/*
 * fake_request.c - socketpair-backed requests for the unit tests (see
 * fake_request.h).  Everything the request touches is real request.c code;
 * only the listener is a stand-in, filled with the fields request.c reads.
 * Lives in tests/unit/ until the Makefile builds tests/unit/fakes/.
 */
#include <sys/socket.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <check.h>

#include "fake_request.h"

#define FAKE_WAIT_MS	5000

struct fake {
	struct listener		 f_listener;
	struct lrun		 f_run;
	struct lsock		 f_sock;	/* dgram: k_fd is read */
	char			 f_name[64];
	int			 f_fd;		/* the request's end */
	int			 f_peer;	/* the client's end */
};

static struct fake *
fake_new(const char *name, int type, double timeout)
{
	struct fake	*f = xcalloc(1, sizeof(*f));
	int		 sv[2];

	ck_assert_int_eq(socketpair(AF_UNIX, type | SOCK_CLOEXEC, 0, sv), 0);
	ck_assert_int_ne(fcntl(sv[0], F_SETFL,
	    fcntl(sv[0], F_GETFL) | O_NONBLOCK), -1);
	f->f_fd = sv[0];
	f->f_peer = sv[1];
	snprintf(f->f_name, sizeof(f->f_name), "%s", name);
	f->f_listener.l_name = f->f_name;
	f->f_listener.l_family = AF_UNIX;
	f->f_listener.l_type = type;
	f->f_listener.l_timeout = timeout;
	f->f_listener.l_max_packet_size = 8192;
	f->f_run.r_listener = &f->f_listener;
	f->f_run.r_sock = &f->f_sock;
	f->f_sock.k_fd = f->f_fd;
	return f;
}

static struct fake *
fake_of(const struct ssd_request *rq)
{
	return container_of(rq->rq_run, struct fake, f_run);
}

struct ssd_request *
fake_request_stream(const char *name, double timeout, int *peer_r)
{
	struct fake		*f = fake_new(name, SOCK_STREAM, timeout);
	struct sockaddr_un	 peer;

	/* What accept() reports for an unnamed unix client. */
	memset(&peer, 0, sizeof(peer));
	peer.sun_family = AF_UNIX;
	*peer_r = f->f_peer;
	return request_new_stream(&f->f_run, f->f_fd,
	    (struct sockaddr *)&peer, sizeof(sa_family_t));
}

struct ssd_request *
fake_request_dgram(const char *name, const void *data, size_t len)
{
	struct fake		*f = fake_new(name, SOCK_DGRAM, 1.0);
	struct sockaddr_un	 peer;

	memset(&peer, 0, sizeof(peer));
	peer.sun_family = AF_UNIX;
	return request_new_dgram(&f->f_run, data, len,
	    (struct sockaddr *)&peer, sizeof(sa_family_t));
}

void
fake_request_free(struct ssd_request *rq)
{
	struct fake	*f = fake_of(rq);
	bool		 stream = rq->rq_type == SOCK_STREAM;

	/* request_free closes a stream's fd, never the listener's. */
	request_free(rq);
	if (!stream)
		close(f->f_fd);
	close(f->f_peer);
	free(f);
}

struct lrun *
fake_request_lrun(struct ssd_request *rq)
{
	return &fake_of(rq)->f_run;
}

int
fake_request_peer(const struct ssd_request *rq)
{
	return fake_of(rq)->f_peer;
}

int
fake_request_run(const struct ssd_handler *h, struct ssd_request *rq)
{
	int rc;

	if (h->setup != NULL && (rc = h->setup(rq)) != 0)
		return rc;
	rc = h->handle(rq);
	if (h->finish != NULL)
		h->finish(rq);
	return rc;
}

/* Waits for fd to be readable; fails the test after FAKE_WAIT_MS. */
static void
fake_wait_readable(int fd)
{
	struct pollfd	pfd = { .fd = fd, .events = POLLIN };
	int		rc;

	do
		rc = poll(&pfd, 1, FAKE_WAIT_MS);
	while (rc == -1 && errno == EINTR);
	ck_assert_msg(rc == 1, "peer: nothing to read for %d ms",
	    FAKE_WAIT_MS);
}

size_t
fake_request_drain(struct ssd_request *rq, void *buf, size_t cap)
{
	int	 peer = fake_request_peer(rq);
	size_t	 got = 0;
	ssize_t	 n;
	char	 sink[4096];

	ck_assert_int_eq(rq->rq_type, SOCK_STREAM);
	ck_assert_int_eq(shutdown(rq->rq_fd, SHUT_WR), 0);
	for (;;) {
		fake_wait_readable(peer);
		if (got < cap)
			n = read(peer, (char *)buf + got, cap - got);
		else
			n = read(peer, sink, sizeof(sink));
		ck_assert_msg(n >= 0, "peer read: %s", strerror(errno));
		if (n == 0)
			break;
		if (got < cap)
			got += (size_t)n;
	}
	return got;
}

void
fake_write_all(int fd, const void *buf, size_t len)
{
	const char	*p = buf;
	ssize_t		 n;

	while (len > 0) {
		n = send(fd, p, len, MSG_NOSIGNAL);
		if (n == -1 && errno == EINTR)
			continue;
		ck_assert_msg(n > 0, "peer write: %s", strerror(errno));
		p += n;
		len -= (size_t)n;
	}
}

void
fake_read_exactly(int fd, void *buf, size_t len)
{
	char	*p = buf;
	ssize_t	 n;

	while (len > 0) {
		fake_wait_readable(fd);
		n = read(fd, p, len);
		if (n == -1 && errno == EINTR)
			continue;
		ck_assert_msg(n > 0, "peer read: %s", n == 0 ? "EOF" :
		    strerror(errno));
		p += n;
		len -= (size_t)n;
	}
}

int
fake_dgram_socket(const char *tag, struct sockaddr_un *sun,
    socklen_t *len_r)
{
	static unsigned	 seq;	/* unique under CK_FORK=no too */
	int		 fd, n;

	memset(sun, 0, sizeof(*sun));
	sun->sun_family = AF_UNIX;
	n = snprintf(sun->sun_path + 1, sizeof(sun->sun_path) - 1,
	    "sockserverd-check-%ld-%u-%s", (long)getpid(), seq++, tag);
	*len_r = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 +
	    (size_t)n);
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	ck_assert_int_ne(fd, -1);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)sun, *len_r), 0);
	return fd;
}

double
fake_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}
