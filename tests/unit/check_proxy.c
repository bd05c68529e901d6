/* SPDX-License-Identifier: ISC */
/*
 * check_proxy.c - the PROXY protocol: proxy_parse, the pure parser of
 * versions 1 and 2 (what the protocol text allows and nothing else), and
 * proxy_read on a fake socketpair request (the header taken off the
 * connection, not one byte more, within the listener's timeout in all).
 */
#include <sys/socket.h>

#include <arpa/inet.h>
#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <unistd.h>

#include <check.h>

#include "fake_request.h"
#include "proxy.h"
#include "suites.h"

#define V2_SIG	"\r\n\r\n\0\r\nQUIT\n"

/* proxy_parse on a C string. */
static ssize_t
parse_str(const char *s, struct proxy_hdr *ph)
{
	char err[256];

	return proxy_parse(s, strlen(s), ph, err, sizeof(err));
}

/* Asserts that s is refused, and that no prefix of it is complete. */
static void
assert_invalid(const char *s, size_t len)
{
	struct proxy_hdr	ph;
	char			err[256] = "";

	ck_assert_msg(proxy_parse(s, len, &ph, err, sizeof(err)) == -1,
	    "accepted: \"%.*s\"", (int)len, s);
	ck_assert_msg(err[0] != '\0', "no reason given");
	for (size_t k = 0; k < len; k++)
		ck_assert_msg(proxy_parse(s, k, &ph, NULL, 0) <= 0,
		    "prefix of %zu bytes complete", k);
}

static void
assert_invalid_str(const char *s)
{
	assert_invalid(s, strlen(s));
}

/* Asserts that every proper prefix of s[0..len) asks for more bytes. */
static void
assert_prefixes_need_more(const void *s, size_t len)
{
	struct proxy_hdr ph;

	for (size_t k = 0; k < len; k++)
		ck_assert_msg(proxy_parse(s, k, &ph, NULL, 0) == 0,
		    "prefix of %zu bytes not \"need more\"", k);
}

/* A v2 header: command, family, then body[0..n). */
static size_t
v2(uint8_t *buf, int cmd, int fam, const void *body, size_t n)
{
	memcpy(buf, V2_SIG, 12);
	buf[12] = (uint8_t)(0x20 | cmd);
	buf[13] = (uint8_t)fam;
	buf[14] = (uint8_t)(n >> 8);
	buf[15] = (uint8_t)n;
	memcpy(buf + 16, body, n);
	return 16 + n;
}

/* The address block of TCP over IPv4: 192.0.2.7:5555 -> 10.0.0.1:80. */
static const uint8_t v2_inet[12] = {
	192, 0, 2, 7, 10, 0, 0, 1, 0x15, 0xb3, 0, 80
};

START_TEST(proxy_v1_tcp4_line_names_the_client)
{
	const char		*s = "PROXY TCP4 192.0.2.7 10.0.0.1 5555 80\r\n"
	    "GET / HTTP/1.0\r\n";
	const uint8_t		 src[4] = { 192, 0, 2, 7 };
	const uint8_t		 dst[4] = { 10, 0, 0, 1 };
	struct proxy_hdr	 ph;

	ck_assert_int_eq(parse_str(s, &ph), 39);
	ck_assert_int_eq(ph.ph_version, 1);
	ck_assert_int_eq(ph.ph_family, AF_INET);
	ck_assert_mem_eq(ph.ph_src, src, 4);
	ck_assert_mem_eq(ph.ph_dst, dst, 4);
	ck_assert_uint_eq(ph.ph_sport, 5555);
	ck_assert_uint_eq(ph.ph_dport, 80);
	assert_prefixes_need_more(s, 39);
}
END_TEST

START_TEST(proxy_v1_tcp6_line_names_the_client)
{
	const char		*s = "PROXY TCP6 2001:DB8::5 ::1 65535 0\r\n";
	uint8_t			 src[16], dst[16];
	struct proxy_hdr	 ph;

	inet_pton(AF_INET6, "2001:db8::5", src);
	inet_pton(AF_INET6, "::1", dst);
	ck_assert_int_eq(parse_str(s, &ph), (ssize_t)strlen(s));
	ck_assert_int_eq(ph.ph_family, AF_INET6);
	ck_assert_mem_eq(ph.ph_src, src, 16);
	ck_assert_mem_eq(ph.ph_dst, dst, 16);
	ck_assert_uint_eq(ph.ph_sport, 65535);
	ck_assert_uint_eq(ph.ph_dport, 0);
	assert_prefixes_need_more(s, strlen(s));
}
END_TEST

START_TEST(proxy_v1_unknown_keeps_the_socket_peer)
{
	struct proxy_hdr ph;

	ck_assert_int_eq(parse_str("PROXY UNKNOWN\r\nrest", &ph), 15);
	ck_assert_int_eq(ph.ph_family, AF_UNSPEC);
	/* Anything after a space up to CR LF is ignored, even a lone LF. */
	ck_assert_int_eq(parse_str("PROXY UNKNOWN what\never\r\n", &ph), 25);
	ck_assert_int_eq(ph.ph_family, AF_UNSPEC);
	assert_prefixes_need_more("PROXY UNKNOWN\r\n", 15);
	assert_invalid_str("PROXY UNKNOWNX\r\n");
	assert_invalid_str("PROXY UNKNOWN\rX\r\n");
}
END_TEST

START_TEST(proxy_v1_is_at_most_107_bytes)
{
	char			 line[200];
	struct proxy_hdr	 ph;

	/* The worst case of the text: 107 bytes, CR LF included. */
	snprintf(line, sizeof(line), "PROXY UNKNOWN %s %s 65535 65535\r\n",
	    "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
	    "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff");
	ck_assert_uint_eq(strlen(line), 107);
	ck_assert_int_eq(parse_str(line, &ph), 107);
	snprintf(line, sizeof(line), "PROXY UNKNOWN %s %s 65535 655350\r\n",
	    "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
	    "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff");
	assert_invalid_str(line);
	memset(line, '1', sizeof(line));
	memcpy(line, "PROXY TCP4 ", 11);
	assert_invalid(line, 107);
	ck_assert_int_eq(proxy_parse(line, 106, &ph, NULL, 0), 0);
}
END_TEST

START_TEST(proxy_v1_separators_are_single_spaces)
{
	static const char *const bad[] = {
		"PROXY  TCP4 1.2.3.4 5.6.7.8 1 2\r\n",
		"PROXY TCP4  1.2.3.4 5.6.7.8 1 2\r\n",
		"PROXY TCP4 1.2.3.4  5.6.7.8 1 2\r\n",
		"PROXY TCP4 1.2.3.4 5.6.7.8 1  2\r\n",
		"PROXY TCP4 1.2.3.4 5.6.7.8 1 2 \r\n",
		"PROXY\tTCP4 1.2.3.4 5.6.7.8 1 2\r\n",
		"PROXY TCP4\t1.2.3.4 5.6.7.8 1 2\r\n",
		"PROXYTCP4 1.2.3.4 5.6.7.8 1 2\r\n",
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_invalid_str(bad[i]);
}
END_TEST

START_TEST(proxy_v1_has_exactly_four_fields)
{
	assert_invalid_str("PROXY TCP4 1.2.3.4 5.6.7.8 1 2 3\r\n");
	assert_invalid_str("PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n");
	assert_invalid_str("PROXY TCP4 1.2.3.4\r\n");
	assert_invalid_str("PROXY TCP4 \r\n");
	assert_invalid_str("PROXY TCP4\r\n");
	assert_invalid_str("PROXY \r\n");
	assert_invalid_str("PROXY\r\n");
}
END_TEST

START_TEST(proxy_v1_ports_are_plain_decimal_0_to_65535)
{
	static const char *const bad[] = {
		"65536", "99999", "080", "00", "+80", "-1", "0x50", "8 0",
		"123456", "1e3", " 80",
	};
	char			 line[128];
	struct proxy_hdr	 ph;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(line, sizeof(line), "PROXY TCP4 1.2.3.4 5.6.7.8 %s "
		    "80\r\n", bad[i]);
		assert_invalid_str(line);
		snprintf(line, sizeof(line), "PROXY TCP4 1.2.3.4 5.6.7.8 80 "
		    "%s\r\n", bad[i]);
		assert_invalid_str(line);
	}
	ck_assert_int_gt(parse_str("PROXY TCP4 1.2.3.4 5.6.7.8 0 65535\r\n",
	    &ph), 0);
	ck_assert_uint_eq(ph.ph_sport, 0);
	ck_assert_uint_eq(ph.ph_dport, 65535);
}
END_TEST

START_TEST(proxy_v1_addresses_are_canonical_for_the_family)
{
	static const char *const bad[] = {
		"PROXY TCP4 ::1 5.6.7.8 1 2\r\n",
		"PROXY TCP4 1.2.3.4 ::1 1 2\r\n",
		"PROXY TCP6 1.2.3.4 ::1 1 2\r\n",
		"PROXY TCP6 ::1 1.2.3.4 1 2\r\n",
		"PROXY TCP4 01.2.3.4 5.6.7.8 1 2\r\n",
		"PROXY TCP4 1.2.3.004 5.6.7.8 1 2\r\n",
		"PROXY TCP4 256.2.3.4 5.6.7.8 1 2\r\n",
		"PROXY TCP4 1.2.3 5.6.7.8 1 2\r\n",
		"PROXY TCP4 1.2.3.4.5 5.6.7.8 1 2\r\n",
		"PROXY TCP4 1..3.4 5.6.7.8 1 2\r\n",
		"PROXY TCP4 1.2.3.4. 5.6.7.8 1 2\r\n",
		"PROXY TCP4 .1.2.3.4 5.6.7.8 1 2\r\n",
		"PROXY TCP6 ::ffff:1.2.3.4 ::1 1 2\r\n",
		"PROXY TCP6 fe80::1%eth0 ::1 1 2\r\n",
		"PROXY TCP6 1:2:3:4:5:6:7:8:9 ::1 1 2\r\n",
		"PROXY TCP6 1::2::3 ::1 1 2\r\n",
		"PROXY TCP6 12345::1 ::1 1 2\r\n",
		"PROXY TCP6 g::1 ::1 1 2\r\n",
		"PROXY TCP5 1.2.3.4 5.6.7.8 1 2\r\n",
		"PROXY tcp4 1.2.3.4 5.6.7.8 1 2\r\n",
		"PROXY UDP4 1.2.3.4 5.6.7.8 1 2\r\n",
	};
	struct proxy_hdr ph;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_invalid_str(bad[i]);
	ck_assert_int_gt(parse_str("PROXY TCP4 0.0.0.0 255.255.255.255 1 2"
	    "\r\n", &ph), 0);
	ck_assert_int_gt(parse_str("PROXY TCP6 :: "
	    "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 1 2\r\n", &ph), 0);
}
END_TEST

START_TEST(proxy_v1_ends_with_cr_lf_only)
{
	const char bad[] = "PROXY TCP4 1.2.3.4 5.6.7.8 1 2\0\r\n";

	assert_invalid_str("PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n");
	assert_invalid_str("PROXY TCP4 1.2.3.4 5.6.7.8 1 2\rX");
	assert_invalid_str("PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n\r\n");
	assert_invalid_str("PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\r\n");
	assert_invalid(bad, sizeof(bad) - 1);
}
END_TEST

START_TEST(proxy_v1_garbage_is_refused_before_the_line_ends)
{
	struct proxy_hdr ph;

	/* Early, without waiting for a CR LF that may never come. */
	ck_assert_int_eq(parse_str("GET / HTTP/1.0", &ph), -1);
	ck_assert_int_eq(parse_str("P", &ph), 0);
	ck_assert_int_eq(parse_str("PROXX", &ph), -1);
	ck_assert_int_eq(parse_str("PROXY X", &ph), -1);
	ck_assert_int_eq(parse_str("PROXY TCP4 1.2.3.4 x", &ph), -1);
	ck_assert_int_eq(parse_str("PROXY TCP6 ::1 1.2", &ph), -1);
	ck_assert_int_eq(parse_str("PROXY TCP4 1.2.3.4\r", &ph), 0);
	ck_assert_int_eq(parse_str("PROXY TCP4 1.2.3.4\r5", &ph), -1);
	ck_assert_int_eq(parse_str("PROXY UNKNOWN", &ph), 0);
}
END_TEST

START_TEST(proxy_v2_tcp4_names_the_client)
{
	uint8_t			 buf[64];
	const uint8_t		 src[4] = { 192, 0, 2, 7 };
	struct proxy_hdr	 ph;
	size_t			 n = v2(buf, 1, 0x11, v2_inet, 12);

	memcpy(buf + n, "data", 4);
	ck_assert_int_eq(proxy_parse(buf, n + 4, &ph, NULL, 0), 28);
	ck_assert_int_eq(ph.ph_version, 2);
	ck_assert_int_eq(ph.ph_family, AF_INET);
	ck_assert_mem_eq(ph.ph_src, src, 4);
	ck_assert_uint_eq(ph.ph_sport, 5555);
	ck_assert_uint_eq(ph.ph_dport, 80);
	assert_prefixes_need_more(buf, n);
}
END_TEST

START_TEST(proxy_v2_tcp6_names_the_client)
{
	uint8_t			 buf[64], body[36];
	struct proxy_hdr	 ph;
	size_t			 n;

	inet_pton(AF_INET6, "2001:db8::9", body);
	inet_pton(AF_INET6, "2001:db8::1", body + 16);
	body[32] = 0x11;
	body[33] = 0x5d;
	body[34] = 0x01;
	body[35] = 0xbb;
	n = v2(buf, 1, 0x21, body, 36);
	ck_assert_int_eq(proxy_parse(buf, n, &ph, NULL, 0), 52);
	ck_assert_int_eq(ph.ph_family, AF_INET6);
	ck_assert_mem_eq(ph.ph_src, body, 16);
	ck_assert_mem_eq(ph.ph_dst, body + 16, 16);
	ck_assert_uint_eq(ph.ph_sport, 4445);
	ck_assert_uint_eq(ph.ph_dport, 443);
	/* A TCP4 block is too short for TCP6. */
	n = v2(buf, 1, 0x21, v2_inet, 12);
	assert_invalid((char *)buf, n);
}
END_TEST

START_TEST(proxy_v2_tlvs_are_skipped_within_bounds)
{
	uint8_t			 buf[128], body[64];
	struct proxy_hdr	 ph;
	size_t			 n;

	memcpy(body, v2_inet, 12);
	/* NOOP with 2 bytes, AUTHORITY "a.b", an empty custom one. */
	memcpy(body + 12, "\x04\x00\x02xx" "\x02\x00\x03" "a.b" "\xe0\x00\x00",
	    14);
	n = v2(buf, 1, 0x11, body, 26);
	ck_assert_int_eq(proxy_parse(buf, n, &ph, NULL, 0), 42);
	ck_assert_int_eq(ph.ph_family, AF_INET);
	/* A TLV whose value runs past the header. */
	memcpy(body + 12, "\x04\x00\x03xx", 5);
	n = v2(buf, 1, 0x11, body, 17);
	assert_invalid((char *)buf, n);
	/* A TLV cut inside its type and length. */
	memcpy(body + 12, "\x04\x00", 2);
	n = v2(buf, 1, 0x11, body, 14);
	assert_invalid((char *)buf, n);
}
END_TEST

START_TEST(proxy_v2_local_ignores_the_block)
{
	uint8_t			 buf[64];
	struct proxy_hdr	 ph;
	size_t			 n;

	/* LOCAL: any family, any block, its length skipped. */
	n = v2(buf, 0, 0x11, v2_inet, 12);
	ck_assert_int_eq(proxy_parse(buf, n, &ph, NULL, 0), 28);
	ck_assert_int_eq(ph.ph_family, AF_UNSPEC);
	n = v2(buf, 0, 0x00, "", 0);
	ck_assert_int_eq(proxy_parse(buf, n, &ph, NULL, 0), 16);
	ck_assert_int_eq(ph.ph_family, AF_UNSPEC);
	n = v2(buf, 0, 0x77, "\x04\x00", 2);
	ck_assert_int_eq(proxy_parse(buf, n, &ph, NULL, 0), 18);
	/* PROXY with the unspecified family: the socket's peer too. */
	n = v2(buf, 1, 0x00, v2_inet, 12);
	ck_assert_int_eq(proxy_parse(buf, n, &ph, NULL, 0), 28);
	ck_assert_int_eq(ph.ph_family, AF_UNSPEC);
}
END_TEST

START_TEST(proxy_v2_version_command_and_family_are_checked)
{
	uint8_t			 buf[64];
	struct proxy_hdr	 ph;
	size_t			 n;
	static const int	 bad_fam[] = {
		0x01, 0x10, 0x13, 0x20, 0x23, 0x30, 0x40, 0x41, 0xff,
		0x12, 0x22, 0x31, 0x32,		/* valid, not supported */
	};

	n = v2(buf, 1, 0x11, v2_inet, 12);
	buf[12] = 0x11;		/* version 1 */
	assert_invalid((char *)buf, n);
	ck_assert_int_eq(proxy_parse(buf, 13, &ph, NULL, 0), -1);
	buf[12] = 0x31;		/* version 3 */
	assert_invalid((char *)buf, n);
	buf[12] = 0x22;		/* command 2 */
	assert_invalid((char *)buf, n);
	buf[12] = 0x2f;
	assert_invalid((char *)buf, n);
	for (size_t i = 0; i < sizeof(bad_fam) / sizeof(bad_fam[0]); i++) {
		n = v2(buf, 1, bad_fam[i], v2_inet, 12);
		assert_invalid((char *)buf, n);
		/* Refused as soon as the family byte arrives. */
		ck_assert_int_eq(proxy_parse(buf, 14, &ph, NULL, 0), -1);
	}
	/* A signature that is not quite it. */
	n = v2(buf, 1, 0x11, v2_inet, 12);
	buf[11] = 'X';
	assert_invalid((char *)buf, n);
	ck_assert_int_eq(proxy_parse("\r\n\r\n\0\r\nQ", 8, &ph, NULL, 0), 0);
	ck_assert_int_eq(proxy_parse("\r\n\r\n\r", 5, &ph, NULL, 0), -1);
}
END_TEST

START_TEST(proxy_v2_length_is_known_after_16_bytes)
{
	uint8_t			 buf[64];
	struct proxy_hdr	 ph;

	v2(buf, 1, 0x11, v2_inet, 12);
	buf[14] = 0x01;		/* 256 + 12 bytes follow */
	ck_assert_int_eq(proxy_parse(buf, 16, &ph, NULL, 0), 0);
	ck_assert_uint_eq(ph.ph_need, 16 + 268);
	ck_assert_int_eq(proxy_parse(buf, 15, &ph, NULL, 0), 0);
	ck_assert_uint_eq(ph.ph_need, 0);
}
END_TEST

/* proxy_read on a fake request: header, then the handler's bytes. */

/* A peer that writes s one byte at a time, pause microseconds apart. */
struct trickle {
	int		 t_fd;
	const char	*t_s;
	useconds_t	 t_pause;
};

static void *
trickle_main(void *arg)
{
	struct trickle *t = arg;

	for (const char *p = t->t_s; *p != '\0'; p++) {
		usleep(t->t_pause);
		if (send(t->t_fd, p, 1, MSG_NOSIGNAL) != 1)
			break;
	}
	return NULL;
}

START_TEST(proxy_read_takes_the_header_and_no_more)
{
	static const char	*const hdrs[] = {
		"PROXY TCP4 192.0.2.7 10.0.0.1 5555 80\r\n",
		"PROXY UNKNOWN\r\n",
	};
	struct ssd_request	*rq;
	char			 err[256], buf[64];
	int			 peer;

	for (size_t i = 0; i < 2; i++) {
		rq = fake_request_stream("p", 2.0, &peer);
		fake_write_all(peer, hdrs[i], strlen(hdrs[i]));
		fake_write_all(peer, "after\n", 6);
		ck_assert_msg(proxy_read(rq, err, sizeof(err)) == 0, "%s",
		    err);
		ck_assert_str_eq(ssd_peer(rq), i == 0 ? "192.0.2.7:5555" :
		    "unix");
		ck_assert_int_eq(ssd_readline(rq, buf, sizeof(buf)), 6);
		ck_assert_str_eq(buf, "after\n");
		fake_request_free(rq);
	}
}
END_TEST

START_TEST(proxy_read_takes_a_trickled_header)
{
	struct ssd_request	*rq;
	struct trickle		 t;
	pthread_t		 th;
	char			 err[256];

	rq = fake_request_stream("p", 2.0, &t.t_fd);
	t.t_s = "PROXY TCP6 2001:db8::5 2001:db8::1 6666 80\r\nx";
	t.t_pause = 1000;
	ck_assert_int_eq(pthread_create(&th, NULL, trickle_main, &t), 0);
	ck_assert_msg(proxy_read(rq, err, sizeof(err)) == 0, "%s", err);
	ck_assert_str_eq(ssd_peer(rq), "[2001:db8::5]:6666");
	pthread_join(th, NULL);
	fake_request_free(rq);
}
END_TEST

START_TEST(proxy_read_bounds_the_whole_header_by_the_timeout)
{
	struct ssd_request	*rq;
	struct trickle		 t;
	pthread_t		 th;
	char			 err[256];
	double			 t0, took;

	/* A byte every 0.1 s never lets a 0.5 s wait run out: the header
	 * as a whole must. */
	rq = fake_request_stream("p", 0.5, &t.t_fd);
	t.t_s = "PROXY TCP4 192.0.2.7 10.0.0.1 5555 80\r\n";
	t.t_pause = 100000;
	ck_assert_int_eq(pthread_create(&th, NULL, trickle_main, &t), 0);
	t0 = fake_now();
	ck_assert_int_eq(proxy_read(rq, err, sizeof(err)), -1);
	took = fake_now() - t0;
	ck_assert_msg(took >= 0.45 && took < 1.5, "took %.2fs", took);
	ck_assert_msg(strstr(err, "timed out") != NULL, "%s", err);
	/* The writer sees the end. */
	shutdown(rq->rq_fd, SHUT_RDWR);
	pthread_join(th, NULL);
	fake_request_free(rq);
}
END_TEST

START_TEST(proxy_read_refuses_a_malformed_header)
{
	struct ssd_request	*rq;
	char			 err[256];
	int			 peer;

	rq = fake_request_stream("p", 2.0, &peer);
	fake_write_all(peer, "PROXY TCP4 1.2.3.4 5.6.7.8 080 80\r\n", 35);
	ck_assert_int_eq(proxy_read(rq, err, sizeof(err)), -1);
	ck_assert_msg(strstr(err, "malformed PROXY v1") != NULL, "%s", err);
	ck_assert_str_eq(ssd_peer(rq), "unix");
	fake_request_free(rq);
}
END_TEST

Suite *
proxy_suite(void)
{
	Suite	*s = suite_create("proxy");
	TCase	*tc;

	tc = tcase_create("v1");
	tcase_add_test(tc, proxy_v1_tcp4_line_names_the_client);
	tcase_add_test(tc, proxy_v1_tcp6_line_names_the_client);
	tcase_add_test(tc, proxy_v1_unknown_keeps_the_socket_peer);
	tcase_add_test(tc, proxy_v1_is_at_most_107_bytes);
	tcase_add_test(tc, proxy_v1_separators_are_single_spaces);
	tcase_add_test(tc, proxy_v1_has_exactly_four_fields);
	tcase_add_test(tc, proxy_v1_ports_are_plain_decimal_0_to_65535);
	tcase_add_test(tc, proxy_v1_addresses_are_canonical_for_the_family);
	tcase_add_test(tc, proxy_v1_ends_with_cr_lf_only);
	tcase_add_test(tc, proxy_v1_garbage_is_refused_before_the_line_ends);
	suite_add_tcase(s, tc);

	tc = tcase_create("v2");
	tcase_add_test(tc, proxy_v2_tcp4_names_the_client);
	tcase_add_test(tc, proxy_v2_tcp6_names_the_client);
	tcase_add_test(tc, proxy_v2_tlvs_are_skipped_within_bounds);
	tcase_add_test(tc, proxy_v2_local_ignores_the_block);
	tcase_add_test(tc, proxy_v2_version_command_and_family_are_checked);
	tcase_add_test(tc, proxy_v2_length_is_known_after_16_bytes);
	suite_add_tcase(s, tc);

	tc = tcase_create("read");
	tcase_set_timeout(tc, 10);
	tcase_add_test(tc, proxy_read_takes_the_header_and_no_more);
	tcase_add_test(tc, proxy_read_takes_a_trickled_header);
	tcase_add_test(tc, proxy_read_bounds_the_whole_header_by_the_timeout);
	tcase_add_test(tc, proxy_read_refuses_a_malformed_header);
	suite_add_tcase(s, tc);
	return s;
}
