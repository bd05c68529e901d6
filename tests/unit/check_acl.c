/* SPDX-License-Identifier: ISC */
/*
 * check_acl.c - acl_parse and acl_match: the CIDR syntax of allow/deny and
 * which peers a list of blocks matches.  Pure functions: no sockets.
 */
#include <arpa/inet.h>
#include <string.h>

#include <check.h>

#include "daemon.h"
#include "suites.h"

/* A sockaddr_storage holding an IPv4 or IPv6 literal, port 1234. */
static struct sockaddr *
acl_sa(struct sockaddr_storage *ss, const char *literal)
{
	struct sockaddr_in	*sin = (struct sockaddr_in *)(void *)ss;
	struct sockaddr_in6	*sin6 = (struct sockaddr_in6 *)(void *)ss;

	memset(ss, 0, sizeof(*ss));
	if (inet_pton(AF_INET, literal, &sin->sin_addr) == 1) {
		sin->sin_family = AF_INET;
		sin->sin_port = htons(1234);
	} else {
		ck_assert_msg(inet_pton(AF_INET6, literal,
		    &sin6->sin6_addr) == 1, "bad literal %s", literal);
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons(1234);
	}
	return (struct sockaddr *)ss;
}

/* Whether the single block cidr matches the peer literal. */
static bool
acl_one(const char *cidr, const char *peer)
{
	struct sockaddr_storage	 ss;
	struct cidr		 c;

	ck_assert_msg(acl_parse(cidr, &c) == 0, "\"%s\" did not parse", cidr);
	return acl_match(&c, 1, acl_sa(&ss, peer));
}

START_TEST(acl_parses_v4_prefix)
{
	struct cidr	c;
	const uint8_t	net[4] = { 10, 0, 0, 0 };

	ck_assert_int_eq(acl_parse("10.0.0.0/8", &c), 0);
	ck_assert_int_eq(c.c_family, AF_INET);
	ck_assert_int_eq(c.c_bits, 8);
	ck_assert_mem_eq(c.c_addr, net, 4);
}
END_TEST

START_TEST(acl_parses_v6_prefix)
{
	struct cidr	c;
	uint8_t		net[16];

	inet_pton(AF_INET6, "2001:db8::", net);
	ck_assert_int_eq(acl_parse("2001:db8::/32", &c), 0);
	ck_assert_int_eq(c.c_family, AF_INET6);
	ck_assert_int_eq(c.c_bits, 32);
	ck_assert_mem_eq(c.c_addr, net, 16);
}
END_TEST

START_TEST(acl_bare_address_is_a_host_block)
{
	struct cidr c;

	ck_assert_int_eq(acl_parse("192.0.2.7", &c), 0);
	ck_assert_int_eq(c.c_family, AF_INET);
	ck_assert_int_eq(c.c_bits, 32);
	ck_assert_int_eq(acl_parse("::1", &c), 0);
	ck_assert_int_eq(c.c_family, AF_INET6);
	ck_assert_int_eq(c.c_bits, 128);
	ck_assert(acl_one("192.0.2.7", "192.0.2.7"));
	ck_assert(!acl_one("192.0.2.7", "192.0.2.8"));
	ck_assert(acl_one("::1", "::1"));
	ck_assert(!acl_one("::1", "::2"));
}
END_TEST

START_TEST(acl_host_bits_are_masked)
{
	struct cidr	c;
	const uint8_t	net[4] = { 10, 0, 0, 0 };
	const uint8_t	net12[4] = { 172, 16, 0, 0 };

	ck_assert_int_eq(acl_parse("10.1.2.3/8", &c), 0);
	ck_assert_mem_eq(c.c_addr, net, 4);
	ck_assert(acl_one("10.1.2.3/8", "10.200.0.1"));
	ck_assert_int_eq(acl_parse("172.31.255.255/12", &c), 0);
	ck_assert_mem_eq(c.c_addr, net12, 4);
	ck_assert(acl_one("2001:db8:1:2:3:4:5:6/64", "2001:db8:1:2::99"));
	ck_assert(!acl_one("2001:db8:1:2:3:4:5:6/64", "2001:db8:1:3::"));
}
END_TEST

START_TEST(acl_zero_prefix_matches_its_whole_family)
{
	ck_assert(acl_one("0.0.0.0/0", "1.2.3.4"));
	ck_assert(acl_one("0.0.0.0/0", "255.255.255.255"));
	ck_assert(!acl_one("0.0.0.0/0", "2001:db8::1"));
	ck_assert(acl_one("::/0", "2001:db8::1"));
	ck_assert(acl_one("::/0", "::"));
	ck_assert(!acl_one("::/0", "1.2.3.4"));
}
END_TEST

START_TEST(acl_full_prefix_matches_one_address)
{
	ck_assert(acl_one("198.51.100.1/32", "198.51.100.1"));
	ck_assert(!acl_one("198.51.100.1/32", "198.51.100.0"));
	ck_assert(acl_one("2001:db8::1/128", "2001:db8::1"));
	ck_assert(!acl_one("2001:db8::1/128", "2001:db8::"));
}
END_TEST

START_TEST(acl_prefix_off_byte_boundary)
{
	ck_assert(acl_one("172.16.0.0/12", "172.16.0.0"));
	ck_assert(acl_one("172.16.0.0/12", "172.31.255.255"));
	ck_assert(!acl_one("172.16.0.0/12", "172.32.0.0"));
	ck_assert(!acl_one("172.16.0.0/12", "172.15.255.255"));
	ck_assert(acl_one("fe80::/10", "febf::1"));
	ck_assert(!acl_one("fe80::/10", "fec0::1"));
}
END_TEST

START_TEST(acl_rejects_invalid_blocks)
{
	static const char *const bad[] = {
		"10.0.0.0/33", "1.2.3", "::1/129", "10.0.0.0/", "/8",
		"10.0.0.0/8x", "", "10.0.0.0/-1", "10.0.0.0/+8",
		"10.0.0.0/ 8", " 10.0.0.0", "10.0.0.0/8/8", "256.0.0.0",
		"localhost", "10.0.0.0/99999999999999999999", "::1/12a",
		"1:2:3:4:5:6:7:8:9", "10.0.0.0:80",
		"1111:2222:3333:4444:5555:6666:7777:8888/128/128/128/128",
	};
	struct cidr c;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ck_assert_msg(acl_parse(bad[i], &c) == -1,
		    "\"%s\" was accepted", bad[i]);
}
END_TEST

START_TEST(acl_v6_mapped_matches_v4_rule)
{
	ck_assert(acl_one("10.0.0.0/8", "::ffff:10.1.2.3"));
	ck_assert(!acl_one("10.0.0.0/8", "::ffff:11.1.2.3"));
	ck_assert(acl_one("127.0.0.1", "::ffff:127.0.0.1"));
}
END_TEST

START_TEST(acl_v4_mapped_rule_is_the_v4_rule)
{
	struct cidr	c;
	const uint8_t	lo[4] = { 127, 0, 0, 1 };
	const uint8_t	ten[4] = { 10, 0, 0, 0 };

	/* The form the log prints for a v4 client of a dual-stack
	 * listener: it must hold that client, mapped or not. */
	ck_assert_int_eq(acl_parse("::ffff:127.0.0.1", &c), 0);
	ck_assert_int_eq(c.c_family, AF_INET);
	ck_assert_int_eq(c.c_bits, 32);
	ck_assert_mem_eq(c.c_addr, lo, 4);
	ck_assert(acl_one("::ffff:127.0.0.1", "::ffff:127.0.0.1"));
	ck_assert(acl_one("::ffff:127.0.0.1", "127.0.0.1"));
	ck_assert(!acl_one("::ffff:127.0.0.1", "127.0.0.2"));
	ck_assert(!acl_one("::ffff:127.0.0.1", "::1"));
	ck_assert_int_eq(acl_parse("::ffff:10.1.2.3/104", &c), 0);
	ck_assert_int_eq(c.c_family, AF_INET);
	ck_assert_int_eq(c.c_bits, 8);
	ck_assert_mem_eq(c.c_addr, ten, 4);
	ck_assert(acl_one("::ffff:10.1.2.3/104", "::ffff:10.200.0.1"));
	ck_assert(acl_one("::FFFF:a01:203/104", "10.9.9.9"));
	/* /96: every IPv4 client. */
	ck_assert_int_eq(acl_parse("::ffff:0.0.0.0/96", &c), 0);
	ck_assert_int_eq(c.c_family, AF_INET);
	ck_assert_int_eq(c.c_bits, 0);
	ck_assert(acl_one("::ffff:0:0/96", "192.0.2.1"));
	/* Shorter prefixes reach beyond the mapped range: IPv6 rules. */
	ck_assert_int_eq(acl_parse("::ffff:10.1.2.3/95", &c), 0);
	ck_assert_int_eq(c.c_family, AF_INET6);
	ck_assert(!acl_one("::ffff:10.1.2.3/95", "10.1.2.3"));
	/* Neither mapped nor the IPv4-compatible form. */
	ck_assert_int_eq(acl_parse("::10.1.2.3", &c), 0);
	ck_assert_int_eq(c.c_family, AF_INET6);
	ck_assert_int_eq(acl_parse("::fffe:10.1.2.3", &c), 0);
	ck_assert_int_eq(c.c_family, AF_INET6);
}
END_TEST

START_TEST(acl_v6_rule_does_not_match_mapped_peer)
{
	/* A mapped peer is an IPv4 client: only IPv4 rules apply. */
	ck_assert(!acl_one("::/0", "::ffff:10.1.2.3"));
}
END_TEST

START_TEST(acl_match_scans_the_whole_list)
{
	struct sockaddr_storage	 ss;
	struct cidr		 list[3];

	ck_assert_int_eq(acl_parse("192.0.2.0/24", &list[0]), 0);
	ck_assert_int_eq(acl_parse("2001:db8::/32", &list[1]), 0);
	ck_assert_int_eq(acl_parse("10.0.0.0/8", &list[2]), 0);
	ck_assert(acl_match(list, 3, acl_sa(&ss, "10.9.9.9")));
	ck_assert(acl_match(list, 3, acl_sa(&ss, "2001:db8::5")));
	ck_assert(!acl_match(list, 3, acl_sa(&ss, "198.51.100.1")));
	ck_assert(!acl_match(list, 0, acl_sa(&ss, "10.9.9.9")));
}
END_TEST

START_TEST(acl_unix_peer_matches_nothing)
{
	struct sockaddr_un	sun;
	struct cidr		c;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	ck_assert_int_eq(acl_parse("0.0.0.0/0", &c), 0);
	ck_assert(!acl_match(&c, 1, (struct sockaddr *)&sun));
	ck_assert_int_eq(acl_parse("::/0", &c), 0);
	ck_assert(!acl_match(&c, 1, (struct sockaddr *)&sun));
}
END_TEST

Suite *
acl_suite(void)
{
	Suite	*s = suite_create("acl");
	TCase	*tc;

	tc = tcase_create("parse");
	tcase_add_test(tc, acl_parses_v4_prefix);
	tcase_add_test(tc, acl_parses_v6_prefix);
	tcase_add_test(tc, acl_bare_address_is_a_host_block);
	tcase_add_test(tc, acl_host_bits_are_masked);
	tcase_add_test(tc, acl_rejects_invalid_blocks);
	suite_add_tcase(s, tc);

	tc = tcase_create("match");
	tcase_add_test(tc, acl_zero_prefix_matches_its_whole_family);
	tcase_add_test(tc, acl_full_prefix_matches_one_address);
	tcase_add_test(tc, acl_prefix_off_byte_boundary);
	tcase_add_test(tc, acl_v6_mapped_matches_v4_rule);
	tcase_add_test(tc, acl_v4_mapped_rule_is_the_v4_rule);
	tcase_add_test(tc, acl_v6_rule_does_not_match_mapped_peer);
	tcase_add_test(tc, acl_match_scans_the_whole_list);
	tcase_add_test(tc, acl_unix_peer_matches_nothing);
	suite_add_tcase(s, tc);
	return s;
}
