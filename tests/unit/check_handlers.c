/* SPDX-License-Identifier: ISC */
/*
 * check_handlers.c - every compiled-in handler driven through fake
 * requests (no daemon, no bind), checked byte for byte against its RFC;
 * and the loader that finds handlers by name.
 */
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <regex.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <check.h>

#include "fake_request.h"
#include "suites.h"

#define CHARGEN_LINE	72
#define CHARGEN_CYCLE	95
/* RFC 868: seconds from 1900-01-01 to 1970-01-01. */
#define TIME_OFFSET	2208988800U

static const char *const handlers_expected[] = {
	"echo", "discard", "daytime", "time", "chargen",
};

static const struct ssd_handler *
handlers_find(const char *name)
{
	const struct ssd_handler *h;

	for (size_t i = 0; (h = loader_builtin(i)) != NULL; i++)
		if (strcmp(h->name, name) == 0)
			return h;
	ck_abort_msg("no compiled-in handler \"%s\"", name);
	return NULL;
}

static size_t
handlers_count(void)
{
	size_t n = 0;

	while (loader_builtin(n) != NULL)
		n++;
	return n;
}

START_TEST(builtins_are_well_formed)
{
	const struct ssd_handler *h;

	ck_assert_uint_ge(handlers_count(),
	    sizeof(handlers_expected) / sizeof(handlers_expected[0]));
	for (size_t i = 0; (h = loader_builtin(i)) != NULL; i++) {
		ck_assert_uint_eq(h->abi, SSD_ABI_VERSION);
		ck_assert_ptr_nonnull(h->name);
		ck_assert_msg(loader_name_is_valid(h->name), "name \"%s\"",
		    h->name);
		ck_assert_ptr_nonnull(h->handle);
		ck_assert_msg(h->description != NULL &&
		    h->description[0] != '\0', "%s: no description", h->name);
		for (size_t j = 0; j < i; j++)
			ck_assert_str_ne(loader_builtin(j)->name, h->name);
	}
	ck_assert_ptr_null(loader_builtin(handlers_count() + 1));
	ck_assert_ptr_null(loader_builtin((size_t)-1));
	for (size_t i = 0; i < sizeof(handlers_expected) /
	    sizeof(handlers_expected[0]); i++)
		handlers_find(handlers_expected[i]);
}
END_TEST

START_TEST(every_builtin_answers_a_datagram)
{
	const struct ssd_handler	*h = loader_builtin((size_t)_i);
	struct ssd_request		*rq;

	ck_assert_ptr_nonnull(h);
	/* Handlers that need options (exec) are tested by the integration
	 * suite, with a daemon that runs their init. */
	if (h->init != NULL)
		return;
	rq = fake_request_dgram(h->name, "x\r\n", 3);
	ck_assert_msg(fake_request_run(h, rq) == 0, "%s failed", h->name);
	ck_assert_msg(rq->rq_outlen <= 512, "%s: reply of %zu bytes",
	    h->name, rq->rq_outlen);
	fake_request_free(rq);
}
END_TEST

START_TEST(every_builtin_ends_when_the_client_has_gone)
{
	const struct ssd_handler	*h = loader_builtin((size_t)_i);
	struct ssd_request		*rq;
	int				 peer, rc;
	double				 t0;

	ck_assert_ptr_nonnull(h);
	if (h->init != NULL)
		return;
	rq = fake_request_stream(h->name, 2.0, &peer);
	ck_assert_int_eq(shutdown(peer, SHUT_RDWR), 0);
	t0 = fake_now();
	rc = fake_request_run(h, rq);
	ck_assert_msg(rc == 0 || rc == -1, "%s returned %d", h->name, rc);
	ck_assert_msg(fake_now() - t0 < 1.0, "%s waited for a client that "
	    "had gone", h->name);
	fake_request_free(rq);
}
END_TEST

/* echo (RFC 862) */

START_TEST(echo_stream_returns_bytes_exactly)
{
	enum { LEN = 20000 };
	const struct ssd_handler	*h = handlers_find("echo");
	struct ssd_request		*rq;
	unsigned char			*in = malloc(LEN);
	unsigned char			*out = malloc(LEN + 1);
	int				 peer;

	ck_assert_ptr_nonnull(in);
	ck_assert_ptr_nonnull(out);
	for (size_t i = 0; i < LEN; i++)
		in[i] = (unsigned char)(i * 7 + i / 256);
	rq = fake_request_stream("echo", 2.0, &peer);
	fake_write_all(peer, in, LEN);
	shutdown(peer, SHUT_WR);
	ck_assert_int_eq(fake_request_run(h, rq), 0);
	ck_assert_uint_eq(fake_request_drain(rq, out, LEN + 1), LEN);
	ck_assert_mem_eq(out, in, LEN);
	fake_request_free(rq);
	free(in);
	free(out);
}
END_TEST

START_TEST(echo_stream_of_nothing_sends_nothing)
{
	const struct ssd_handler	*h = handlers_find("echo");
	struct ssd_request		*rq;
	char				 out[16];
	int				 peer;

	rq = fake_request_stream("echo", 2.0, &peer);
	shutdown(peer, SHUT_WR);
	ck_assert_int_eq(fake_request_run(h, rq), 0);
	ck_assert_uint_eq(fake_request_drain(rq, out, sizeof(out)), 0);
	fake_request_free(rq);
}
END_TEST

START_TEST(echo_dgram_returns_the_datagram_exactly)
{
	const struct ssd_handler	*h = handlers_find("echo");
	struct ssd_request		*rq;
	unsigned char			 in[1400];

	for (size_t i = 0; i < sizeof(in); i++)
		in[i] = (unsigned char)(255 - i % 256);
	rq = fake_request_dgram("echo", in, sizeof(in));
	ck_assert_int_eq(fake_request_run(h, rq), 0);
	ck_assert_uint_eq(rq->rq_outlen, sizeof(in));
	ck_assert_mem_eq(rq->rq_out, in, sizeof(in));
	fake_request_free(rq);
}
END_TEST

START_TEST(echo_dgram_answers_an_empty_datagram)
{
	/* RFC 862: every datagram gets an answering datagram. */
	struct listener		 l;
	struct lrun		 run;
	struct lsock		 sock;
	struct sockaddr_un	 srv, cli;
	socklen_t		 srvlen, clilen;
	struct ssd_request	*rq;
	char			 buf[16];
	int			 sfd, cfd;

	sfd = fake_dgram_socket("server", &srv, &srvlen);
	cfd = fake_dgram_socket("client", &cli, &clilen);
	memset(&l, 0, sizeof(l));
	memset(&run, 0, sizeof(run));
	l.l_name = "echo";
	l.l_family = AF_UNIX;
	l.l_type = SOCK_DGRAM;
	memset(&sock, 0, sizeof(sock));
	run.r_listener = &l;
	run.r_sock = &sock;
	run.r_hi.i_handler = handlers_find("echo");
	sock.k_fd = sfd;
	rq = request_new_dgram(&run, "", 0, (struct sockaddr *)&cli, clilen);
	request_run(rq);
	errno = 0;
	ck_assert_msg(recv(cfd, buf, sizeof(buf), MSG_DONTWAIT) == 0,
	    "no empty answering datagram (%s)", strerror(errno));
	request_free(rq);
	close(sfd);
	close(cfd);
}
END_TEST

/* discard (RFC 863) */

START_TEST(discard_stream_reads_everything_and_writes_nothing)
{
	enum { LEN = 50000 };
	const struct ssd_handler	*h = handlers_find("discard");
	struct ssd_request		*rq;
	char				*in = calloc(1, LEN), out[16];
	int				 peer;

	ck_assert_ptr_nonnull(in);
	rq = fake_request_stream("discard", 2.0, &peer);
	fake_write_all(peer, in, LEN);
	shutdown(peer, SHUT_WR);
	ck_assert_int_eq(fake_request_run(h, rq), 0);
	ck_assert_uint_eq(fake_request_drain(rq, out, sizeof(out)), 0);
	/* Everything was consumed. */
	ck_assert_int_eq(recv(rq->rq_fd, out, sizeof(out), MSG_DONTWAIT), 0);
	fake_request_free(rq);
	free(in);
}
END_TEST

START_TEST(discard_dgram_sends_no_reply)
{
	const struct ssd_handler	*h = handlers_find("discard");
	struct ssd_request		*rq;

	rq = fake_request_dgram("discard", "throw me away", 13);
	ck_assert_int_eq(fake_request_run(h, rq), 0);
	ck_assert_uint_eq(rq->rq_outlen, 0);
	ck_assert_ptr_null(rq->rq_out);
	fake_request_free(rq);
}
END_TEST

/* daytime (RFC 867): handlers/daytime.c writes "%a %b %d %H:%M:%S %Y\r\n". */

static void
daytime_check(const char *line, size_t len, time_t before, time_t after)
{
	static const char	*re =
	    "^[A-Z][a-z]{2} [A-Z][a-z]{2} [ 0-9][0-9] "
	    "[0-9]{2}:[0-9]{2}:[0-9]{2} [0-9]{4}\r\n$";
	regex_t			 rx;
	struct tm		 tm;
	char			 copy[64];
	time_t			 t;

	ck_assert_uint_lt(len, sizeof(copy));
	memcpy(copy, line, len);
	copy[len] = '\0';
	ck_assert_int_eq(regcomp(&rx, re, REG_EXTENDED | REG_NOSUB), 0);
	ck_assert_msg(regexec(&rx, copy, 0, NULL, 0) == 0,
	    "daytime line \"%s\" is not \"Www Mmm DD HH:MM:SS YYYY\\r\\n\"",
	    copy);
	regfree(&rx);
	memset(&tm, 0, sizeof(tm));
	ck_assert_ptr_nonnull(strptime(copy, "%a %b %d %H:%M:%S %Y", &tm));
	tm.tm_isdst = -1;
	t = mktime(&tm);
	ck_assert_msg(t >= before - 1 && t <= after + 1,
	    "daytime says %ld, the clock said %ld..%ld", (long)t,
	    (long)before, (long)after);
}

START_TEST(daytime_stream_sends_one_crlf_line_without_reading)
{
	const struct ssd_handler	*h = handlers_find("daytime");
	struct ssd_request		*rq;
	char				 out[128];
	size_t				 n;
	time_t				 before, after;
	int				 peer;

	/* No input at all and no timeout: daytime must not wait for any. */
	rq = fake_request_stream("daytime", 0, &peer);
	before = time(NULL);
	ck_assert_int_eq(fake_request_run(h, rq), 0);
	after = time(NULL);
	n = fake_request_drain(rq, out, sizeof(out));
	daytime_check(out, n, before, after);
	fake_request_free(rq);
}
END_TEST

START_TEST(daytime_dgram_sends_one_crlf_line)
{
	const struct ssd_handler	*h = handlers_find("daytime");
	struct ssd_request		*rq;
	time_t				 before, after;

	rq = fake_request_dgram("daytime", "", 0);
	before = time(NULL);
	ck_assert_int_eq(fake_request_run(h, rq), 0);
	after = time(NULL);
	daytime_check(rq->rq_out, rq->rq_outlen, before, after);
	fake_request_free(rq);
}
END_TEST

/* time (RFC 868) */

static void
time_check(const unsigned char *b, time_t before, time_t after)
{
	uint32_t	t = (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 |
			    (uint32_t)b[2] << 8 | b[3];
	uint32_t	lo = (uint32_t)((uint64_t)before + TIME_OFFSET);

	/* Modulo 2^32: the RFC's count wraps in 2036. */
	ck_assert_msg((uint32_t)(t - lo) <= (uint32_t)(after - before) + 2,
	    "time says %u, the clock said %u..%u", t, lo,
	    (uint32_t)((uint64_t)after + TIME_OFFSET));
}

START_TEST(time_stream_sends_four_bytes_big_endian)
{
	const struct ssd_handler	*h = handlers_find("time");
	struct ssd_request		*rq;
	unsigned char			 out[8];
	time_t				 before, after;
	int				 peer;

	rq = fake_request_stream("time", 0, &peer);
	before = time(NULL);
	ck_assert_int_eq(fake_request_run(h, rq), 0);
	after = time(NULL);
	ck_assert_uint_eq(fake_request_drain(rq, out, sizeof(out)), 4);
	time_check(out, before, after);
	fake_request_free(rq);
}
END_TEST

START_TEST(time_dgram_sends_four_bytes_big_endian)
{
	const struct ssd_handler	*h = handlers_find("time");
	struct ssd_request		*rq;
	time_t				 before, after;

	rq = fake_request_dgram("time", "", 0);
	before = time(NULL);
	ck_assert_int_eq(fake_request_run(h, rq), 0);
	after = time(NULL);
	ck_assert_uint_eq(rq->rq_outlen, 4);
	time_check((unsigned char *)rq->rq_out, before, after);
	fake_request_free(rq);
}
END_TEST

/* chargen (RFC 864) */

/* Checks that line is a 72-character window of the ring plus CRLF, and
 * returns where in the ring it starts. */
static unsigned
chargen_line_start(const char *line)
{
	unsigned start = (unsigned)(line[0] - ' ');

	ck_assert_msg(line[0] >= ' ' && line[0] <= '~', "line starts with "
	    "byte %d", line[0]);
	for (unsigned j = 0; j < CHARGEN_LINE; j++)
		ck_assert_msg(line[j] ==
		    (char)(' ' + (start + j) % CHARGEN_CYCLE),
		    "column %u of \"%.72s\"", j, line);
	ck_assert_msg(line[CHARGEN_LINE] == '\r' &&
	    line[CHARGEN_LINE + 1] == '\n', "line does not end in CRLF");
	return start;
}

struct chargen_run {
	const struct ssd_handler	*c_h;
	struct ssd_request		*c_rq;
	int				 c_rc;
};

static void *
chargen_main(void *arg)
{
	struct chargen_run *c = arg;

	c->c_rc = fake_request_run(c->c_h, c->c_rq);
	return NULL;
}

START_TEST(chargen_stream_sends_rotating_72_character_lines)
{
	static const char first[] =
	    " !\"#$%&'()*+,-./0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ"
	    "[\\]^_`abcdefg\r\n"
	    "!\"#$%&'()*+,-./0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ"
	    "[\\]^_`abcdefgh\r\n"
	    "\"#$%&'()*+,-./0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ"
	    "[\\]^_`abcdefghi\r\n";
	/* Two whole cycles and a bit: the ring wraps around. */
	enum { NLINES = 2 * CHARGEN_CYCLE + 3, LEN = CHARGEN_LINE + 2 };
	struct chargen_run	 c;
	pthread_t		 t;
	char			*out = malloc(NLINES * LEN);
	int			 peer;

	ck_assert_ptr_nonnull(out);
	ck_assert_uint_eq(sizeof(first) - 1, 3 * LEN);
	c.c_h = handlers_find("chargen");
	c.c_rq = fake_request_stream("chargen", 2.0, &peer);
	c.c_rc = 99;
	ck_assert_int_eq(pthread_create(&t, NULL, chargen_main, &c), 0);
	fake_read_exactly(peer, out, NLINES * LEN);
	/* The client leaves: chargen's normal end. */
	shutdown(peer, SHUT_RDWR);
	pthread_join(t, NULL);
	ck_assert_int_eq(c.c_rc, 0);
	ck_assert_mem_eq(out, first, sizeof(first) - 1);
	for (unsigned i = 0; i < NLINES; i++)
		ck_assert_uint_eq(chargen_line_start(out + i * LEN),
		    i % CHARGEN_CYCLE);
	fake_request_free(c.c_rq);
	free(out);
}
END_TEST

/* One chargen datagram: whole lines, at most 512 bytes; returns the
 * ring position of its first line. */
static unsigned
chargen_dgram(void)
{
	const struct ssd_handler	*h = handlers_find("chargen");
	struct ssd_request		*rq;
	unsigned			 first = 0, start;
	size_t				 nlines;

	rq = fake_request_dgram("chargen", "?", 1);
	ck_assert_int_eq(fake_request_run(h, rq), 0);
	ck_assert_uint_gt(rq->rq_outlen, 0);
	ck_assert_uint_le(rq->rq_outlen, 512);
	ck_assert_uint_eq(rq->rq_outlen % (CHARGEN_LINE + 2), 0);
	nlines = rq->rq_outlen / (CHARGEN_LINE + 2);
	for (size_t i = 0; i < nlines; i++) {
		start = chargen_line_start(rq->rq_out +
		    i * (CHARGEN_LINE + 2));
		if (i == 0)
			first = start;
		else
			ck_assert_uint_eq(start,
			    (first + i) % CHARGEN_CYCLE);
	}
	fake_request_free(rq);
	return first;
}

START_TEST(chargen_dgram_sends_whole_lines_of_at_most_512_bytes)
{
	unsigned a, b;

	a = chargen_dgram();
	b = chargen_dgram();
	/* The next datagram carries on with the pattern. */
	ck_assert_uint_ne(a, b);
	for (int i = 0; i < 2 * CHARGEN_CYCLE; i++)
		chargen_dgram();
}
END_TEST

/* The loader: builtins by name, refused names, unknown names. */

static char loader_dir[64];

static void
loader_setup(void)
{
	snprintf(loader_dir, sizeof(loader_dir), "/tmp/ssd-check-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(loader_dir));
}

static int
loader_rm(const char *path, const struct stat *st, int flag, struct FTW *f)
{
	(void)st;
	(void)flag;
	(void)f;
	return remove(path);
}

static void
loader_teardown(void)
{
	nftw(loader_dir, loader_rm, 8, FTW_DEPTH | FTW_PHYS);
}

START_TEST(loader_opens_every_builtin_by_name)
{
	const struct ssd_handler	*h, *got;
	void				*dl = &dl;
	char				 err[256];

	for (size_t i = 0; (h = loader_builtin(i)) != NULL; i++) {
		got = loader_open(h->name, loader_dir, &dl, err, sizeof(err));
		ck_assert_ptr_eq(got, h);
		ck_assert_ptr_null(dl);
		loader_close(dl);
	}
}
END_TEST

START_TEST(loader_refuses_an_invalid_name)
{
	static const char *const bad[] = {
		"../evil", "", "a.b", "a b", "echo/", "ech\no", "evil.so",
	};
	void	*dl = &dl;
	char	 err[256];

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = '\0';
		ck_assert_ptr_null(loader_open(bad[i], loader_dir, &dl, err,
		    sizeof(err)));
		ck_assert_ptr_null(dl);
		ck_assert_msg(strstr(err, "must be a name") != NULL,
		    "\"%s\": %s", bad[i], err);
	}
}
END_TEST

START_TEST(loader_names_the_path_it_tried_for_an_unknown_handler)
{
	void	*dl = &dl;
	char	 err[512], want[512];

	ck_assert_ptr_null(loader_open("nosuch", loader_dir, &dl, err,
	    sizeof(err)));
	ck_assert_ptr_null(dl);
	snprintf(want, sizeof(want), "unknown handler \"nosuch\": not "
	    "compiled in, and no %s/nosuch.so", loader_dir);
	ck_assert_str_eq(err, want);
}
END_TEST

START_TEST(loader_refuses_a_file_that_is_not_a_plugin)
{
	void	*dl = &dl;
	char	 err[512], path[128];
	int	 fd;

	snprintf(path, sizeof(path), "%s/bogus.so", loader_dir);
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	ck_assert_int_ne(fd, -1);
	ck_assert_int_eq(write(fd, "not ELF\n", 8), 8);
	close(fd);
	ck_assert_ptr_null(loader_open("bogus", loader_dir, &dl, err,
	    sizeof(err)));
	ck_assert_ptr_null(dl);
	ck_assert_msg(strstr(err, path) != NULL, "error \"%s\" does not "
	    "name %s", err, path);
	ck_assert_ptr_null(loader_open(path, "/nonexistent", &dl, err,
	    sizeof(err)));
	ck_assert_msg(strstr(err, path) != NULL, "error \"%s\" does not "
	    "name %s", err, path);
}
END_TEST

START_TEST(loader_refuses_a_missing_absolute_path)
{
	void	*dl = &dl;
	char	 err[512];

	ck_assert_ptr_null(loader_open("/nonexistent/sockserverd/x.so",
	    loader_dir, &dl, err, sizeof(err)));
	ck_assert_ptr_null(dl);
	ck_assert_msg(strstr(err, "/nonexistent/sockserverd/x.so") != NULL,
	    "error \"%s\" does not name the file", err);
}
END_TEST

START_TEST(loader_name_is_valid_allows_letters_digits_dash_underscore)
{
	ck_assert(loader_name_is_valid("echo"));
	ck_assert(loader_name_is_valid("Echo_2-x"));
	ck_assert(loader_name_is_valid("0"));
	ck_assert(!loader_name_is_valid(""));
	ck_assert(!loader_name_is_valid("../evil"));
	ck_assert(!loader_name_is_valid("a/b"));
	ck_assert(!loader_name_is_valid("a.so"));
	ck_assert(!loader_name_is_valid("a b"));
	ck_assert(!loader_name_is_valid("caf\xc3\xa9"));
}
END_TEST

START_TEST(loader_list_shows_every_builtin)
{
	const struct ssd_handler	*h;
	char				*text = NULL;
	size_t				 len = 0;
	FILE				*fp = open_memstream(&text, &len);

	ck_assert_ptr_nonnull(fp);
	loader_list(loader_dir, fp);
	fclose(fp);
	for (size_t i = 0; (h = loader_builtin(i)) != NULL; i++) {
		char want[128];

		snprintf(want, sizeof(want), "%-12s %-9s %s\n", h->name,
		    "builtin", h->description);
		ck_assert_msg(strstr(text, want) != NULL, "no line \"%s\" in "
		    "\"%s\"", want, text);
	}
	free(text);
}
END_TEST

Suite *
handlers_suite(void)
{
	Suite	*s = suite_create("handlers");
	TCase	*tc;
	int	 n = (int)handlers_count();

	tc = tcase_create("builtin");
	tcase_add_test(tc, builtins_are_well_formed);
	tcase_add_loop_test(tc, every_builtin_answers_a_datagram, 0, n);
	tcase_add_loop_test(tc, every_builtin_ends_when_the_client_has_gone,
	    0, n);
	suite_add_tcase(s, tc);

	tc = tcase_create("rfc");
	tcase_add_test(tc, echo_stream_returns_bytes_exactly);
	tcase_add_test(tc, echo_stream_of_nothing_sends_nothing);
	tcase_add_test(tc, echo_dgram_returns_the_datagram_exactly);
	tcase_add_test(tc, echo_dgram_answers_an_empty_datagram);
	tcase_add_test(tc, discard_stream_reads_everything_and_writes_nothing);
	tcase_add_test(tc, discard_dgram_sends_no_reply);
	tcase_add_test(tc, daytime_stream_sends_one_crlf_line_without_reading);
	tcase_add_test(tc, daytime_dgram_sends_one_crlf_line);
	tcase_add_test(tc, time_stream_sends_four_bytes_big_endian);
	tcase_add_test(tc, time_dgram_sends_four_bytes_big_endian);
	tcase_add_test(tc, chargen_stream_sends_rotating_72_character_lines);
	tcase_add_test(tc,
	    chargen_dgram_sends_whole_lines_of_at_most_512_bytes);
	suite_add_tcase(s, tc);

	tc = tcase_create("loader");
	tcase_add_checked_fixture(tc, loader_setup, loader_teardown);
	tcase_add_test(tc, loader_opens_every_builtin_by_name);
	tcase_add_test(tc, loader_refuses_an_invalid_name);
	tcase_add_test(tc,
	    loader_names_the_path_it_tried_for_an_unknown_handler);
	tcase_add_test(tc, loader_refuses_a_file_that_is_not_a_plugin);
	tcase_add_test(tc, loader_refuses_a_missing_absolute_path);
	tcase_add_test(tc,
	    loader_name_is_valid_allows_letters_digits_dash_underscore);
	tcase_add_test(tc, loader_list_shows_every_builtin);
	suite_add_tcase(s, tc);
	return s;
}
