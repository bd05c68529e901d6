/* SPDX-License-Identifier: ISC */
/*
 * fuzz_readline.c - libFuzzer harness of ssd_readline (and ssd_read beside
 * it), the real request.c code, over a real socketpair whose other end
 * delivers the data in chunks of sizes the input chooses: the request's
 * rq_wait, called whenever a read would block, writes the next chunk (or,
 * after the last, ends the stream; or, when the input says so, times
 * out).  Datagram requests read their datagram from memory.
 *
 * Input: 8 control bytes (mode, line buffer size, a seed for chunk and
 * operation sizes, when to time out), then the client's bytes.  Checks
 * that every line and read returns exactly the next bytes of the stream,
 * NUL-terminated, at most size - 1 of them, a newline only at the end,
 * and short only at the end of the stream.
 */
#include <sys/socket.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "server.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

#define FUZZ_CHECK(x) do {						\
	if (!(x)) {							\
		fprintf(stderr, "fuzz_readline: %s:%d: %s\n",		\
		    __FILE__, __LINE__, #x);				\
		abort();						\
	}								\
} while (0)

#define FUZZ_CTL	8
#define FUZZ_MAXDATA	(64 * 1024)	/* well within a socket's buffer */

/* The client's side of the current stream request. */
static struct {
	int		 peer;
	const uint8_t	*data;
	size_t		 len, sent;
	uint32_t	 rng;
	int		 waits_left;	/* -1: never time out */
	bool		 ended;
} fz;

static uint32_t
fuzz_rand(void)
{
	/* xorshift32: the input's seed decides, reproducibly. */
	fz.rng ^= fz.rng << 13;
	fz.rng ^= fz.rng >> 17;
	fz.rng ^= fz.rng << 5;
	return fz.rng;
}

/* rq_wait: the request would block; the client sends what comes next. */
static int
fuzz_wait(struct ssd_request *rq, int fd, short events)
{
	size_t	 chunk;
	ssize_t	 n;

	FUZZ_CHECK(fd == rq->rq_fd && events == POLLIN);
	if (fz.waits_left == 0) {
		rq->rq_timedout = true;
		errno = ETIMEDOUT;
		return -1;
	}
	if (fz.waits_left > 0)
		fz.waits_left--;
	if (fz.sent == fz.len) {
		if (!fz.ended)
			FUZZ_CHECK(shutdown(fz.peer, SHUT_WR) == 0);
		fz.ended = true;
		return 0;
	}
	/* Mostly small chunks, now and then a big one. */
	chunk = fuzz_rand() % 8 == 0 ? 1 + fuzz_rand() % 8192 :
	    1 + fuzz_rand() % 16;
	if (chunk > fz.len - fz.sent)
		chunk = fz.len - fz.sent;
	n = write(fz.peer, fz.data + fz.sent, chunk);
	FUZZ_CHECK(n == (ssize_t)chunk);
	fz.sent += chunk;
	return 0;
}

static struct listener	fuzz_listener;
static struct lrun	fuzz_run;
static struct lsock	fuzz_sock;
static char		fuzz_name[] = "fuzz";

/*
 * Reads rq to its end with readlines of size (and, as the seed says, a
 * few ssd_reads between them), checking each result against data.
 * stream: the end may also be a timeout.
 */
static void
fuzz_consume(struct ssd_request *rq, const uint8_t *data, size_t len,
    size_t size, bool stream)
{
	static char	 buf[8192 + 1];
	size_t		 off = 0;
	ssize_t		 n;

	for (;;) {
		bool readline = fuzz_rand() % 5 != 0;
		size_t want = readline ? size : 1 + fuzz_rand() % 64;

		memset(buf, 0x5a, want + 1);
		n = readline ? ssd_readline(rq, buf, want) :
		    ssd_read(rq, buf, want);
		if (n == -1) {
			/* Only the transport's timeout fails a read. */
			FUZZ_CHECK(stream && errno == ETIMEDOUT &&
			    rq->rq_timedout);
			return;
		}
		FUZZ_CHECK(n >= 0 && off + (size_t)n <= len);
		FUZZ_CHECK(memcmp(buf, data + off, (size_t)n) == 0);
		if (readline) {
			char *nl = memchr(buf, '\n', (size_t)n);

			FUZZ_CHECK((size_t)n <= size - 1 && buf[n] == '\0');
			FUZZ_CHECK(nl == NULL || nl == buf + n - 1);
			/* Short without a newline: the data ended. */
			if ((size_t)n < size - 1 && nl == NULL)
				FUZZ_CHECK(off + (size_t)n == len);
		} else
			FUZZ_CHECK((size_t)n <= want);
		off += (size_t)n;
		if (n == 0 && (!readline || size > 1)) {
			FUZZ_CHECK(off == len);
			return;
		}
		if (stream)
			FUZZ_CHECK(fz.sent >= off);
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *input, size_t size)
{
	struct sockaddr_un	 sun;
	struct ssd_request	*rq;
	uint8_t			 ctl[FUZZ_CTL] = { 0 };
	const uint8_t		*data;
	size_t			 len, linesize;
	int			 sv[2];
	bool			 stream;

	memcpy(ctl, input, size < FUZZ_CTL ? size : FUZZ_CTL);
	data = size > FUZZ_CTL ? input + FUZZ_CTL : input + size;
	len = size > FUZZ_CTL ? size - FUZZ_CTL : 0;
	if (len > FUZZ_MAXDATA)
		return -1;
	stream = (ctl[0] & 1) == 0;
	/* 1..64 bytes (readline's edge cases), or around REQUEST_BUFSIZE. */
	linesize = ctl[1] < 0xe0 ? 1 + ctl[1] % 64 :
	    REQUEST_BUFSIZE - 16 + (size_t)(ctl[1] - 0xe0);
	memset(&fz, 0, sizeof(fz));
	fz.rng = (uint32_t)ctl[2] | (uint32_t)ctl[3] << 8 |
	    (uint32_t)ctl[4] << 16 | (uint32_t)ctl[5] << 24 | 1;
	fz.waits_left = (ctl[0] & 2) != 0 ? ctl[6] % 32 : -1;

	memset(&fuzz_listener, 0, sizeof(fuzz_listener));
	fuzz_listener.l_name = fuzz_name;
	fuzz_listener.l_family = AF_UNIX;
	fuzz_listener.l_type = stream ? SOCK_STREAM : SOCK_DGRAM;
	fuzz_listener.l_timeout = 1.0;
	fuzz_run.r_listener = &fuzz_listener;
	fuzz_run.r_sock = &fuzz_sock;
	fuzz_sock.k_fd = -1;
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;

	if (!stream) {
		rq = request_new_dgram(&fuzz_run, data, len,
		    (struct sockaddr *)&sun, sizeof(sa_family_t));
		fuzz_consume(rq, data, len, linesize, false);
		request_free(rq);
		return 0;
	}
	FUZZ_CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0,
	    sv) == 0);
	FUZZ_CHECK(fcntl(sv[0], F_SETFL, O_NONBLOCK) == 0);
	fz.peer = sv[1];
	fz.data = data;
	fz.len = len;
	rq = request_new_stream(&fuzz_run, sv[0],
	    (struct sockaddr *)&sun, sizeof(sa_family_t));
	rq->rq_wait = fuzz_wait;
	fuzz_consume(rq, data, len, linesize, true);
	request_free(rq);	/* closes sv[0] */
	close(sv[1]);
	return 0;
}
