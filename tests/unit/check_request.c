/* SPDX-License-Identifier: ISC */
/*
 * check_request.c - the public I/O of a request (ssd_read, ssd_readline,
 * ssd_write, ssd_printf) and its life cycle (request_run), on fake
 * socketpair requests: no daemon, no loop, no bind except abstract unix
 * names unique to the test process.
 */
#include <sys/socket.h>

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <check.h>

#include "fake_request.h"
#include "suites.h"

/* Every test's request, freed by the fixture even when a test fails. */
static struct ssd_request	*rq;
static int			 peer;

static void
request_setup(void)
{
	rq = fake_request_stream("test", 2.0, &peer);
}

static void
request_teardown(void)
{
	if (rq != NULL)
		fake_request_free(rq);
	rq = NULL;
}

/* A peer that writes chunks with pauses between them, in a thread. */
struct request_writer {
	int		 w_fd;
	const char	*const *w_chunks;
	useconds_t	 w_pause;
	bool		 w_close;	/* shutdown(SHUT_WR) at the end */
};

static void *
request_writer_main(void *arg)
{
	struct request_writer *w = arg;

	for (size_t i = 0; w->w_chunks[i] != NULL; i++) {
		usleep(w->w_pause);
		if (send(w->w_fd, w->w_chunks[i], strlen(w->w_chunks[i]),
		    MSG_NOSIGNAL) == -1)
			break;
	}
	if (w->w_close)
		shutdown(w->w_fd, SHUT_WR);
	return NULL;
}

START_TEST(readline_joins_a_line_across_several_reads)
{
	static const char *const chunks[] = {
		"hel", "lo, wor", "ld\nsec", "ond\n", NULL
	};
	struct request_writer	 w = { peer, chunks, 20000, true };
	pthread_t		 t;
	char			 buf[64];

	ck_assert_int_eq(pthread_create(&t, NULL, request_writer_main, &w),
	    0);
	ck_assert_int_eq(ssd_readline(rq, buf, sizeof(buf)), 13);
	ck_assert_str_eq(buf, "hello, world\n");
	ck_assert_int_eq(ssd_readline(rq, buf, sizeof(buf)), 7);
	ck_assert_str_eq(buf, "second\n");
	ck_assert_int_eq(ssd_readline(rq, buf, sizeof(buf)), 0);
	ck_assert_str_eq(buf, "");
	pthread_join(t, NULL);
}
END_TEST

START_TEST(readline_returns_each_buffered_line_in_turn)
{
	char buf[64];

	fake_write_all(peer, "one\ntwo\r\nthree\n", 15);
	ck_assert_int_eq(ssd_readline(rq, buf, sizeof(buf)), 4);
	ck_assert_str_eq(buf, "one\n");
	ck_assert_int_eq(ssd_readline(rq, buf, sizeof(buf)), 5);
	ck_assert_str_eq(buf, "two\r\n");
	ck_assert_int_eq(ssd_readline(rq, buf, sizeof(buf)), 6);
	ck_assert_str_eq(buf, "three\n");
}
END_TEST

START_TEST(readline_splits_a_line_longer_than_the_buffer)
{
	char buf[8];

	fake_write_all(peer, "abcdefghijkl\nz\n", 15);
	ck_assert_int_eq(ssd_readline(rq, buf, sizeof(buf)), 7);
	ck_assert_str_eq(buf, "abcdefg");
	ck_assert_int_eq(ssd_readline(rq, buf, sizeof(buf)), 6);
	ck_assert_str_eq(buf, "hijkl\n");
	ck_assert_int_eq(ssd_readline(rq, buf, sizeof(buf)), 2);
	ck_assert_str_eq(buf, "z\n");
}
END_TEST

START_TEST(readline_handles_a_line_longer_than_its_own_buffer)
{
	/* Longer than request.c's 4096-byte read buffer. */
	enum { LEN = 10000 };
	char	*line = malloc(LEN + 1), *buf = malloc(LEN + 16);

	ck_assert_ptr_nonnull(line);
	ck_assert_ptr_nonnull(buf);
	for (size_t i = 0; i < LEN - 1; i++)
		line[i] = (char)('a' + i % 26);
	line[LEN - 1] = '\n';
	line[LEN] = '\0';
	fake_write_all(peer, line, LEN);
	shutdown(peer, SHUT_WR);
	ck_assert_int_eq(ssd_readline(rq, buf, LEN + 16), LEN);
	ck_assert_str_eq(buf, line);
	ck_assert_int_eq(ssd_readline(rq, buf, LEN + 16), 0);
	free(line);
	free(buf);
}
END_TEST

START_TEST(readline_returns_last_line_without_newline_at_eof)
{
	char buf[64];

	fake_write_all(peer, "line\ntail", 9);
	shutdown(peer, SHUT_WR);
	ck_assert_int_eq(ssd_readline(rq, buf, sizeof(buf)), 5);
	ck_assert_str_eq(buf, "line\n");
	ck_assert_int_eq(ssd_readline(rq, buf, sizeof(buf)), 4);
	ck_assert_str_eq(buf, "tail");
	ck_assert_int_eq(ssd_readline(rq, buf, sizeof(buf)), 0);
	ck_assert_str_eq(buf, "");
}
END_TEST

START_TEST(readline_returns_zero_at_eof)
{
	char buf[16] = "junk";

	shutdown(peer, SHUT_WR);
	ck_assert_int_eq(ssd_readline(rq, buf, sizeof(buf)), 0);
	ck_assert_str_eq(buf, "");
	ck_assert_int_eq(ssd_readline(rq, buf, sizeof(buf)), 0);
}
END_TEST

START_TEST(readline_rejects_a_zero_size_buffer)
{
	char buf[1];

	errno = 0;
	ck_assert_int_eq(ssd_readline(rq, buf, 0), -1);
	ck_assert_int_eq(errno, EINVAL);
}
END_TEST

START_TEST(read_after_readline_returns_buffered_bytes_first)
{
	char	buf[64];
	ssize_t	n;

	fake_write_all(peer, "HELO x\r\nbinary\0data", 19);
	ck_assert_int_eq(ssd_readline(rq, buf, sizeof(buf)), 8);
	ck_assert_str_eq(buf, "HELO x\r\n");
	/* Less than is buffered, then the rest, then the socket. */
	ck_assert_int_eq(ssd_read(rq, buf, 3), 3);
	ck_assert_mem_eq(buf, "bin", 3);
	n = ssd_read(rq, buf, sizeof(buf));
	ck_assert_int_eq(n, 8);
	ck_assert_mem_eq(buf, "ary\0data", 8);
	fake_write_all(peer, "more", 4);
	shutdown(peer, SHUT_WR);
	ck_assert_int_eq(ssd_read(rq, buf, sizeof(buf)), 4);
	ck_assert_mem_eq(buf, "more", 4);
	ck_assert_int_eq(ssd_read(rq, buf, sizeof(buf)), 0);
}
END_TEST

START_TEST(read_of_zero_bytes_returns_zero)
{
	char buf[1];

	ck_assert_int_eq(ssd_read(rq, buf, 0), 0);
}
END_TEST

/* A request on a listener whose timeout is 0.2 s. */
static void
request_short_timeout(void)
{
	fake_request_free(rq);
	rq = fake_request_stream("slow", 0.2, &peer);
}

START_TEST(readline_times_out_after_the_listener_timeout)
{
	char	buf[16];
	double	t0, elapsed;

	request_short_timeout();
	t0 = fake_now();
	errno = 0;
	ck_assert_int_eq(ssd_readline(rq, buf, sizeof(buf)), -1);
	elapsed = fake_now() - t0;
	ck_assert_int_eq(errno, ETIMEDOUT);
	ck_assert(rq->rq_timedout);
	ck_assert_msg(elapsed >= 0.15 && elapsed < 1.5,
	    "timed out after %.3f s, not about 0.2 s", elapsed);
}
END_TEST

START_TEST(read_times_out_after_the_listener_timeout)
{
	char	buf[16];
	double	t0, elapsed;

	request_short_timeout();
	t0 = fake_now();
	errno = 0;
	ck_assert_int_eq(ssd_read(rq, buf, sizeof(buf)), -1);
	elapsed = fake_now() - t0;
	ck_assert_int_eq(errno, ETIMEDOUT);
	ck_assert_msg(elapsed >= 0.15 && elapsed < 1.5,
	    "timed out after %.3f s, not about 0.2 s", elapsed);
}
END_TEST

START_TEST(timeout_counts_from_the_last_byte)
{
	/* A byte every 0.15 s for 0.9 s: more than the 0.6 s timeout in
	 * all, but never 0.6 s without a byte. */
	static const char *const chunks[] = {
		"a", "b", "c", "d", "e", "f\n", NULL
	};
	struct request_writer	 w = { 0, chunks, 150000, false };
	pthread_t		 t;
	char			 buf[16];
	double			 t0;

	fake_request_free(rq);
	rq = fake_request_stream("slow", 0.6, &peer);
	w.w_fd = peer;
	t0 = fake_now();
	ck_assert_int_eq(pthread_create(&t, NULL, request_writer_main, &w),
	    0);
	ck_assert_int_eq(ssd_readline(rq, buf, sizeof(buf)), 7);
	ck_assert_str_eq(buf, "abcdef\n");
	ck_assert_double_gt(fake_now() - t0, 0.6);
	pthread_join(t, NULL);
}
END_TEST

START_TEST(write_times_out_when_the_peer_never_reads)
{
	char	*big = calloc(1, 8 << 20);
	double	 t0, elapsed;

	ck_assert_ptr_nonnull(big);
	request_short_timeout();
	t0 = fake_now();
	errno = 0;
	ck_assert_int_eq(ssd_write(rq, big, 8 << 20), -1);
	elapsed = fake_now() - t0;
	ck_assert_int_eq(errno, ETIMEDOUT);
	ck_assert_msg(elapsed >= 0.15 && elapsed < 1.5,
	    "timed out after %.3f s, not about 0.2 s", elapsed);
	free(big);
}
END_TEST

START_TEST(cut_request_fails_its_io_at_once)
{
	char buf[16];

	atomic_store(&rq->rq_cut, true);
	errno = 0;
	ck_assert_int_eq(ssd_read(rq, buf, sizeof(buf)), -1);
	ck_assert_int_eq(errno, ECONNABORTED);
	errno = 0;
	ck_assert_int_eq(ssd_write(rq, "x", 1), -1);
	ck_assert_int_eq(errno, ECONNABORTED);
}
END_TEST

/* A slow client: reads 4 KiB at a time with pauses, checks the bytes. */
struct request_reader {
	int	 r_fd;
	size_t	 r_got;
	size_t	 r_bad;		/* offset of the first wrong byte + 1 */
};

static void *
request_reader_main(void *arg)
{
	struct request_reader	*r = arg;
	unsigned char		 buf[4096];
	ssize_t			 n;

	while ((n = read(r->r_fd, buf, sizeof(buf))) > 0) {
		for (ssize_t i = 0; i < n; i++)
			if (r->r_bad == 0 && buf[i] !=
			    (unsigned char)((r->r_got + (size_t)i) % 251))
				r->r_bad = r->r_got + (size_t)i + 1;
		r->r_got += (size_t)n;
		if (r->r_got % (64 * 1024) < sizeof(buf))
			usleep(2000);
	}
	return NULL;
}

START_TEST(write_sends_one_mebibyte_to_a_slow_reader)
{
	enum { LEN = 1 << 20 };
	struct request_reader	 r = { peer, 0, 0 };
	unsigned char		*big = malloc(LEN);
	pthread_t		 t;

	ck_assert_ptr_nonnull(big);
	for (size_t i = 0; i < LEN; i++)
		big[i] = (unsigned char)(i % 251);
	ck_assert_int_eq(pthread_create(&t, NULL, request_reader_main, &r),
	    0);
	ck_assert_int_eq(ssd_write(rq, big, LEN), 0);
	shutdown(rq->rq_fd, SHUT_WR);
	pthread_join(t, NULL);
	ck_assert_uint_eq(r.r_got, LEN);
	ck_assert_msg(r.r_bad == 0, "byte %zu is wrong", r.r_bad - 1);
	free(big);
}
END_TEST

START_TEST(write_to_a_closed_peer_fails_without_sigpipe)
{
	char buf[8192];

	memset(buf, 'x', sizeof(buf));
	/* The client is gone: a write fails with EPIPE, and no SIGPIPE
	 * (which would kill this test process) is raised. */
	ck_assert_int_eq(shutdown(peer, SHUT_RDWR), 0);
	errno = 0;
	ck_assert_int_eq(ssd_write(rq, buf, sizeof(buf)), -1);
	ck_assert_int_eq(errno, EPIPE);
}
END_TEST

START_TEST(printf_longer_than_512_bytes_is_sent_whole)
{
	char	pad[2001], got[2100], want[2100];
	size_t	n;
	int	wn;

	memset(pad, '=', sizeof(pad) - 1);
	pad[sizeof(pad) - 1] = '\0';
	wn = snprintf(want, sizeof(want), "<%s|%d|%s>\r\n", pad, 42, "end");
	ck_assert_int_eq(ssd_printf(rq, "<%s|%d|%s>\r\n", pad, 42, "end"), 0);
	ck_assert_int_eq(ssd_printf(rq, "%s", ""), 0);
	ck_assert_int_eq(ssd_printf(rq, "short %d\n", 7), 0);
	n = fake_request_drain(rq, got, sizeof(got));
	ck_assert_uint_eq(n, (size_t)wn + 8);
	ck_assert_mem_eq(got, want, (size_t)wn);
	ck_assert_mem_eq(got + wn, "short 7\n", 8);
}
END_TEST

START_TEST(request_accessors_report_the_request)
{
	socklen_t	len = 99;
	int		x;

	ck_assert_str_eq(ssd_peer(rq), "unix");
	ck_assert_str_eq(ssd_listener_name(rq), "test");
	ck_assert_int_eq(ssd_fd(rq), rq->rq_fd);
	ck_assert_int_eq(ssd_socktype(rq), SOCK_STREAM);
	ck_assert_int_eq(ssd_peer_addr(rq, &len)->sa_family, AF_UNIX);
	ck_assert_uint_eq(len, sizeof(sa_family_t));
	ck_assert_ptr_null(ssd_data(rq));
	ssd_set_data(rq, &x);
	ck_assert_ptr_eq(ssd_data(rq), &x);
	fake_request_lrun(rq)->r_hi.i_instance = &len;
	ck_assert_ptr_eq(ssd_instance(rq), &len);
}
END_TEST

/* Datagram requests. */

START_TEST(dgram_read_returns_the_datagram_then_zero)
{
	struct ssd_request	*d = fake_request_dgram("udp", "ping\0pong", 9);
	char			 buf[64];

	ck_assert_int_eq(ssd_socktype(d), SOCK_DGRAM);
	ck_assert_int_eq(ssd_read(d, buf, sizeof(buf)), 9);
	ck_assert_mem_eq(buf, "ping\0pong", 9);
	ck_assert_int_eq(ssd_read(d, buf, sizeof(buf)), 0);
	ck_assert_int_eq(ssd_read(d, buf, sizeof(buf)), 0);
	fake_request_free(d);
}
END_TEST

START_TEST(dgram_read_in_pieces)
{
	struct ssd_request	*d = fake_request_dgram("udp", "abcdef", 6);
	char			 buf[4];

	ck_assert_int_eq(ssd_read(d, buf, 4), 4);
	ck_assert_mem_eq(buf, "abcd", 4);
	ck_assert_int_eq(ssd_read(d, buf, 4), 2);
	ck_assert_mem_eq(buf, "ef", 2);
	ck_assert_int_eq(ssd_read(d, buf, 4), 0);
	fake_request_free(d);
}
END_TEST

START_TEST(dgram_readline_reads_lines_of_the_datagram)
{
	struct ssd_request	*d = fake_request_dgram("udp", "a\nbc\nd", 6);
	char			 buf[16];

	ck_assert_int_eq(ssd_readline(d, buf, sizeof(buf)), 2);
	ck_assert_str_eq(buf, "a\n");
	ck_assert_int_eq(ssd_readline(d, buf, sizeof(buf)), 3);
	ck_assert_str_eq(buf, "bc\n");
	ck_assert_int_eq(ssd_readline(d, buf, sizeof(buf)), 1);
	ck_assert_str_eq(buf, "d");
	ck_assert_int_eq(ssd_readline(d, buf, sizeof(buf)), 0);
	fake_request_free(d);
}
END_TEST

START_TEST(dgram_empty_datagram_reads_as_eof)
{
	struct ssd_request	*d = fake_request_dgram("udp", "", 0);
	char			 buf[16];

	ck_assert_int_eq(ssd_read(d, buf, sizeof(buf)), 0);
	ck_assert_int_eq(ssd_readline(d, buf, sizeof(buf)), 0);
	fake_request_free(d);
}
END_TEST

START_TEST(dgram_write_accumulates_the_reply)
{
	struct ssd_request	*d = fake_request_dgram("udp", "x", 1);
	char			 pad[1000];

	memset(pad, 'p', sizeof(pad));
	ck_assert_int_eq(ssd_write(d, "one ", 4), 0);
	ck_assert_int_eq(ssd_printf(d, "%s %d", "two", 2), 0);
	ck_assert_int_eq(ssd_write(d, pad, sizeof(pad)), 0);
	ck_assert_int_eq(ssd_write(d, "", 0), 0);
	ck_assert_uint_eq(d->rq_outlen, 9 + sizeof(pad));
	ck_assert_mem_eq(d->rq_out, "one two 2", 9);
	ck_assert_mem_eq(d->rq_out + 9, pad, sizeof(pad));
	fake_request_free(d);
}
END_TEST

START_TEST(dgram_write_refuses_a_reply_too_big_for_one_datagram)
{
	struct ssd_request	*d = fake_request_dgram("udp", "x", 1);
	char			*big = calloc(1, 65508);

	ck_assert_ptr_nonnull(big);
	ck_assert_int_eq(ssd_write(d, big, 65507), 0);
	errno = 0;
	ck_assert_int_eq(ssd_write(d, big, 1), -1);
	ck_assert_int_eq(errno, EMSGSIZE);
	ck_assert_uint_eq(d->rq_outlen, 65507);
	free(big);
	fake_request_free(d);
}
END_TEST

/* request_run: the life cycle, with a handler that records its calls. */
static char request_calls[64];
static int request_setup_rc, request_handle_rc;

static int
request_h_setup(struct ssd_request *r)
{
	(void)r;
	strcat(request_calls, "S");
	return request_setup_rc;
}

static int
request_h_handle(struct ssd_request *r)
{
	strcat(request_calls, "H");
	ssd_write(r, "reply", 5);
	return request_handle_rc;
}

static void
request_h_finish(struct ssd_request *r)
{
	(void)r;
	strcat(request_calls, "F");
}

static const struct ssd_handler request_recorder = {
	.abi = SSD_ABI_VERSION,
	.name = "recorder",
	.setup = request_h_setup,
	.handle = request_h_handle,
	.finish = request_h_finish,
};

START_TEST(request_run_calls_setup_handle_finish_in_order)
{
	char buf[16];

	fake_request_lrun(rq)->r_hi.i_handler = &request_recorder;
	request_run(rq);
	ck_assert_str_eq(request_calls, "SHF");
	ck_assert_uint_eq(fake_request_drain(rq, buf, sizeof(buf)), 5);
}
END_TEST

START_TEST(request_run_calls_finish_when_handle_fails)
{
	int level;

	fake_request_lrun(rq)->r_hi.i_handler = &request_recorder;
	request_handle_rc = -1;
	level = log_getlevel();
	log_setlevel(LOG_CRIT);	/* the failure is logged at error */
	request_run(rq);
	log_setlevel(level);
	ck_assert_str_eq(request_calls, "SHF");
}
END_TEST

START_TEST(request_run_skips_handle_and_finish_when_setup_refuses)
{
	char buf[16];

	fake_request_lrun(rq)->r_hi.i_handler = &request_recorder;
	request_setup_rc = 1;
	request_run(rq);
	ck_assert_str_eq(request_calls, "S");
	ck_assert_uint_eq(fake_request_drain(rq, buf, sizeof(buf)), 0);
}
END_TEST

START_TEST(request_run_works_without_setup_and_finish)
{
	static const struct ssd_handler bare = {
		.abi = SSD_ABI_VERSION,
		.name = "bare",
		.handle = request_h_handle,
	};

	fake_request_lrun(rq)->r_hi.i_handler = &bare;
	request_run(rq);
	ck_assert_str_eq(request_calls, "H");
}
END_TEST

START_TEST(request_run_sends_the_dgram_reply_as_one_datagram)
{
	struct listener		 l;
	struct lrun		 run;
	struct lsock		 sock;
	struct sockaddr_un	 srv, cli;
	socklen_t		 srvlen, clilen;
	struct ssd_request	*d;
	char			 buf[64];
	int			 sfd, cfd;

	sfd = fake_dgram_socket("server", &srv, &srvlen);
	cfd = fake_dgram_socket("client", &cli, &clilen);
	memset(&l, 0, sizeof(l));
	memset(&run, 0, sizeof(run));
	l.l_name = "udp";
	l.l_family = AF_UNIX;
	l.l_type = SOCK_DGRAM;
	l.l_timeout = 1;
	memset(&sock, 0, sizeof(sock));
	run.r_listener = &l;
	run.r_sock = &sock;
	run.r_hi.i_handler = &request_recorder;
	sock.k_fd = sfd;
	d = request_new_dgram(&run, "in", 2, (struct sockaddr *)&cli, clilen);
	request_run(d);
	ck_assert_str_eq(request_calls, "SHF");
	ck_assert_int_eq(recv(cfd, buf, sizeof(buf), MSG_DONTWAIT), 5);
	ck_assert_mem_eq(buf, "reply", 5);
	/* One datagram: nothing else is queued. */
	ck_assert_int_eq(recv(cfd, buf, sizeof(buf), MSG_DONTWAIT), -1);
	request_free(d);
	close(sfd);
	close(cfd);
}
END_TEST

START_TEST(request_run_sends_no_dgram_reply_when_nothing_was_written)
{
	static const struct ssd_handler quiet = {
		.abi = SSD_ABI_VERSION,
		.name = "quiet",
		.setup = request_h_setup,
		.finish = request_h_finish,
	};
	struct ssd_handler	 h = quiet;
	struct listener		 l;
	struct lrun		 run;
	struct lsock		 sock;
	struct sockaddr_un	 srv, cli;
	socklen_t		 srvlen, clilen;
	struct ssd_request	*d;
	char			 buf[64];
	int			 sfd, cfd;

	h.handle = request_h_setup;	/* records, writes nothing */
	sfd = fake_dgram_socket("server", &srv, &srvlen);
	cfd = fake_dgram_socket("client", &cli, &clilen);
	memset(&l, 0, sizeof(l));
	memset(&run, 0, sizeof(run));
	l.l_name = "udp";
	l.l_family = AF_UNIX;
	l.l_type = SOCK_DGRAM;
	memset(&sock, 0, sizeof(sock));
	run.r_listener = &l;
	run.r_sock = &sock;
	run.r_hi.i_handler = &h;
	sock.k_fd = sfd;
	d = request_new_dgram(&run, "in", 2, (struct sockaddr *)&cli, clilen);
	request_run(d);
	ck_assert_str_eq(request_calls, "SSF");
	ck_assert_int_eq(recv(cfd, buf, sizeof(buf), MSG_DONTWAIT), -1);
	request_free(d);
	close(sfd);
	close(cfd);
}
END_TEST

static void
request_recorder_reset(void)
{
	request_calls[0] = '\0';
	request_setup_rc = 0;
	request_handle_rc = 0;
}

Suite *
request_suite(void)
{
	Suite	*s = suite_create("request");
	TCase	*tc;

	tc = tcase_create("readline");
	tcase_add_checked_fixture(tc, request_setup, request_teardown);
	tcase_add_test(tc, readline_joins_a_line_across_several_reads);
	tcase_add_test(tc, readline_returns_each_buffered_line_in_turn);
	tcase_add_test(tc, readline_splits_a_line_longer_than_the_buffer);
	tcase_add_test(tc, readline_handles_a_line_longer_than_its_own_buffer);
	tcase_add_test(tc, readline_returns_last_line_without_newline_at_eof);
	tcase_add_test(tc, readline_returns_zero_at_eof);
	tcase_add_test(tc, readline_rejects_a_zero_size_buffer);
	tcase_add_test(tc, read_after_readline_returns_buffered_bytes_first);
	tcase_add_test(tc, read_of_zero_bytes_returns_zero);
	suite_add_tcase(s, tc);

	tc = tcase_create("timeout");
	tcase_add_checked_fixture(tc, request_setup, request_teardown);
	tcase_add_test(tc, readline_times_out_after_the_listener_timeout);
	tcase_add_test(tc, read_times_out_after_the_listener_timeout);
	tcase_add_test(tc, timeout_counts_from_the_last_byte);
	tcase_add_test(tc, write_times_out_when_the_peer_never_reads);
	tcase_add_test(tc, cut_request_fails_its_io_at_once);
	suite_add_tcase(s, tc);

	tc = tcase_create("write");
	tcase_add_checked_fixture(tc, request_setup, request_teardown);
	tcase_add_test(tc, write_sends_one_mebibyte_to_a_slow_reader);
	tcase_add_test(tc, write_to_a_closed_peer_fails_without_sigpipe);
	tcase_add_test(tc, printf_longer_than_512_bytes_is_sent_whole);
	tcase_add_test(tc, request_accessors_report_the_request);
	suite_add_tcase(s, tc);

	tc = tcase_create("dgram");
	tcase_add_test(tc, dgram_read_returns_the_datagram_then_zero);
	tcase_add_test(tc, dgram_read_in_pieces);
	tcase_add_test(tc, dgram_readline_reads_lines_of_the_datagram);
	tcase_add_test(tc, dgram_empty_datagram_reads_as_eof);
	tcase_add_test(tc, dgram_write_accumulates_the_reply);
	tcase_add_test(tc,
	    dgram_write_refuses_a_reply_too_big_for_one_datagram);
	suite_add_tcase(s, tc);

	tc = tcase_create("run");
	tcase_add_checked_fixture(tc, request_setup, request_teardown);
	tcase_add_checked_fixture(tc, request_recorder_reset, NULL);
	tcase_add_test(tc, request_run_calls_setup_handle_finish_in_order);
	tcase_add_test(tc, request_run_calls_finish_when_handle_fails);
	tcase_add_test(tc,
	    request_run_skips_handle_and_finish_when_setup_refuses);
	tcase_add_test(tc, request_run_works_without_setup_and_finish);
	tcase_add_test(tc, request_run_sends_the_dgram_reply_as_one_datagram);
	tcase_add_test(tc,
	    request_run_sends_no_dgram_reply_when_nothing_was_written);
	suite_add_tcase(s, tc);
	return s;
}
