/* SPDX-License-Identifier: ISC */
/*
 * check_source.c - source.c: the grouping of clients by prefix (v4,
 * v6, v4-mapped), the token bucket of rate_per_source (burst, refill,
 * cap), max_per_source counting, and the bound on the table's memory
 * (idle entries dropped, buckets forgotten at the cap, refusal only when
 * every place is busy), also in a table shared with worker processes
 * (and a worker's counts given back by its ledger).  The clock is
 * passed in: no sleeping.
 */
#include <sys/wait.h>

#include <arpa/inet.h>
#include <string.h>

#include <check.h>

#include "daemon.h"
#include "suites.h"

static struct sockaddr *
src_sa(struct sockaddr_storage *ss, const char *literal)
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

static struct source_key
src_key(const char *literal, int p4, int p6)
{
	struct sockaddr_storage	 ss;
	struct source_key	 k;

	ck_assert(source_key(src_sa(&ss, literal), p4, p6, &k));
	return k;
}

static bool
src_same(const char *a, const char *b, int p4, int p6)
{
	struct source_key ka = src_key(a, p4, p6), kb = src_key(b, p4, p6);

	return ka.sk_bits == kb.sk_bits &&
	    memcmp(ka.sk_addr, kb.sk_addr, 16) == 0;
}

START_TEST(source_full_prefix_is_one_address)
{
	ck_assert(src_same("192.0.2.1", "192.0.2.1", 32, 128));
	ck_assert(!src_same("192.0.2.1", "192.0.2.2", 32, 128));
	ck_assert(!src_same("2001:db8::1", "2001:db8::2", 32, 128));
}
END_TEST

START_TEST(source_v4_prefix_groups_clients)
{
	ck_assert(src_same("192.0.2.1", "192.0.2.254", 24, 128));
	ck_assert(!src_same("192.0.2.1", "192.0.3.1", 24, 128));
	ck_assert(src_same("10.1.2.3", "10.1.3.4", 22, 128));
	ck_assert(!src_same("10.1.2.3", "10.1.4.4", 22, 128));
	ck_assert(src_same("10.1.2.3", "203.0.113.9", 0, 128));
}
END_TEST

START_TEST(source_v6_prefix_groups_clients)
{
	ck_assert(src_same("2001:db8:1:2::1", "2001:db8:1:2:ffff::9", 32,
	    64));
	ck_assert(!src_same("2001:db8:1:2::1", "2001:db8:1:3::1", 32, 64));
	ck_assert(src_same("2001:db8::1", "2001:db8:0:0:0:0:0:7", 32, 125));
	ck_assert(!src_same("2001:db8::1", "2001:db8::9", 32, 125));
	ck_assert(src_same("2001:db8::1", "fe80::1", 32, 0));
}
END_TEST

START_TEST(source_v4_mapped_is_its_v4_address)
{
	ck_assert(src_same("::ffff:192.0.2.1", "192.0.2.1", 32, 128));
	/* The IPv4 prefix applies to it, not the IPv6 one. */
	ck_assert(src_same("::ffff:192.0.2.1", "192.0.2.77", 24, 128));
	ck_assert(!src_same("::ffff:192.0.2.1", "192.0.3.1", 24, 0));
	/* And a v6 prefix of 0 does not lump IPv4 with IPv6. */
	ck_assert(!src_same("192.0.2.1", "2001:db8::1", 32, 0));
	ck_assert(!src_same("0.0.0.0", "::", 0, 0));
}
END_TEST

START_TEST(source_unix_peer_has_no_key)
{
	struct sockaddr_un	 sun;
	struct source_key	 k;
	struct source_table	*t = source_table_new(0);
	struct source_rule	 rule = { 1, 1, 1 };

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	ck_assert(!source_key((struct sockaddr *)&sun, 32, 128, &k));
	ck_assert(!k.sk_valid);
	for (int i = 0; i < 5; i++)
		ck_assert_int_eq(source_take(t, &k, &rule, 0), SOURCE_OK);
	source_table_free(t);
}
END_TEST

START_TEST(source_bucket_allows_burst_then_refuses)
{
	struct source_table	*t = source_table_new(0);
	struct source_rule	 rule = { 0, 2, 3 };
	struct source_key	 k = src_key("192.0.2.1", 32, 128);
	struct source_key	 other = src_key("192.0.2.2", 32, 128);

	for (int i = 0; i < 3; i++) {
		ck_assert_int_eq(source_take(t, &k, &rule, 100), SOURCE_OK);
		source_put(t, &k);
	}
	ck_assert_int_eq(source_take(t, &k, &rule, 100), SOURCE_RATE);
	/* Another source has a bucket of its own. */
	ck_assert_int_eq(source_take(t, &other, &rule, 100), SOURCE_OK);
	source_table_free(t);
}
END_TEST

START_TEST(source_bucket_refills_at_the_rate)
{
	struct source_table	*t = source_table_new(0);
	struct source_rule	 rule = { 0, 2, 2 };
	struct source_key	 k = src_key("2001:db8::1", 32, 128);

	ck_assert_int_eq(source_take(t, &k, &rule, 10), SOURCE_OK);
	ck_assert_int_eq(source_take(t, &k, &rule, 10), SOURCE_OK);
	ck_assert_int_eq(source_take(t, &k, &rule, 10), SOURCE_RATE);
	/* 0.25 s at 2/s: half a token, not enough. */
	ck_assert_int_eq(source_take(t, &k, &rule, 10.25), SOURCE_RATE);
	/* 0.5 s: one token. */
	ck_assert_int_eq(source_take(t, &k, &rule, 10.5), SOURCE_OK);
	ck_assert_int_eq(source_take(t, &k, &rule, 10.5), SOURCE_RATE);
	/* A long pause fills the bucket to its size, no more. */
	for (int i = 0; i < 2; i++)
		ck_assert_int_eq(source_take(t, &k, &rule, 1000), SOURCE_OK);
	ck_assert_int_eq(source_take(t, &k, &rule, 1000), SOURCE_RATE);
	/* A clock that goes back adds nothing. */
	ck_assert_int_eq(source_take(t, &k, &rule, 999), SOURCE_RATE);
	source_table_free(t);
}
END_TEST

START_TEST(source_fractional_rate_refills_slowly)
{
	struct source_table	*t = source_table_new(0);
	struct source_rule	 rule = { 0, 0.1, 1 };
	struct source_key	 k = src_key("192.0.2.1", 32, 128);

	ck_assert_int_eq(source_take(t, &k, &rule, 0), SOURCE_OK);
	ck_assert_int_eq(source_take(t, &k, &rule, 9.9), SOURCE_RATE);
	ck_assert_int_eq(source_take(t, &k, &rule, 20), SOURCE_OK);
	source_table_free(t);
}
END_TEST

START_TEST(source_prefix_shares_one_bucket)
{
	struct source_table	*t = source_table_new(0);
	struct source_rule	 rule = { 0, 1, 2 };
	struct source_key	 a = src_key("2001:db8:1:2::1", 32, 64);
	struct source_key	 b = src_key("2001:db8:1:2::99", 32, 64);

	ck_assert_int_eq(source_take(t, &a, &rule, 5), SOURCE_OK);
	ck_assert_int_eq(source_take(t, &b, &rule, 5), SOURCE_OK);
	ck_assert_int_eq(source_take(t, &a, &rule, 5), SOURCE_RATE);
	ck_assert_int_eq(source_take(t, &b, &rule, 5), SOURCE_RATE);
	source_table_free(t);
}
END_TEST

START_TEST(source_max_counts_requests_in_progress)
{
	struct source_table	*t = source_table_new(0);
	struct source_rule	 rule = { 2, 0, 0 };
	struct source_key	 a = src_key("192.0.2.1", 24, 128);
	struct source_key	 b = src_key("192.0.2.9", 24, 128);
	size_t			 used, cap;
	unsigned long		 forgotten;

	ck_assert_int_eq(source_take(t, &a, &rule, 0), SOURCE_OK);
	ck_assert_int_eq(source_take(t, &b, &rule, 0), SOURCE_OK);
	ck_assert_int_eq(source_take(t, &a, &rule, 0), SOURCE_MAX);
	source_put(t, &b);
	ck_assert_int_eq(source_take(t, &a, &rule, 0), SOURCE_OK);
	source_put(t, &a);
	source_put(t, &a);
	/* Without a rate, an entry lives only while it counts requests. */
	source_table_stats(t, &used, &cap, &forgotten);
	ck_assert_uint_eq(used, 0);
	source_table_free(t);
}
END_TEST

START_TEST(source_max_refusal_spends_no_token)
{
	struct source_table	*t = source_table_new(0);
	struct source_rule	 rule = { 1, 1, 2 };
	struct source_key	 k = src_key("192.0.2.1", 32, 128);

	ck_assert_int_eq(source_take(t, &k, &rule, 0), SOURCE_OK);
	ck_assert_int_eq(source_take(t, &k, &rule, 0), SOURCE_MAX);
	ck_assert_int_eq(source_take(t, &k, &rule, 0), SOURCE_MAX);
	source_put(t, &k);
	/* The second token is still there. */
	ck_assert_int_eq(source_take(t, &k, &rule, 0), SOURCE_OK);
	source_put(t, &k);
	ck_assert_int_eq(source_take(t, &k, &rule, 0), SOURCE_RATE);
	source_table_free(t);
}
END_TEST

START_TEST(source_new_rule_applies_to_kept_buckets)
{
	struct source_table	*t = source_table_new(0);
	struct source_rule	 big = { 0, 1, 10 }, small = { 0, 1, 2 };
	struct source_key	 k = src_key("192.0.2.1", 32, 128);

	ck_assert_int_eq(source_take(t, &k, &big, 0), SOURCE_OK);
	/* A reload shrinks the bucket: 9 tokens left become 2. */
	ck_assert_int_eq(source_take(t, &k, &small, 0), SOURCE_OK);
	ck_assert_int_eq(source_take(t, &k, &small, 0), SOURCE_OK);
	ck_assert_int_eq(source_take(t, &k, &small, 0), SOURCE_RATE);
	source_table_free(t);
}
END_TEST

START_TEST(source_configure_applies_a_reload)
{
	struct source_table	*t = source_table_new(0);
	struct source_rule	 rate = { 1, 0.01, 1 }, none = { 1, 0, 0 };
	struct source_key	 a = src_key("192.0.2.1", 32, 128);
	struct source_key	 b = src_key("192.0.2.2", 32, 128);
	struct source_key	 a24 = src_key("192.0.2.1", 24, 128);
	size_t			 used, cap;
	unsigned long		 forgotten;

	source_table_configure(t, &rate, 32, 128);
	ck_assert_int_eq(source_take(t, &a, &rate, 0), SOURCE_OK);
	source_put(t, &a);
	ck_assert_int_eq(source_take(t, &b, &rate, 0), SOURCE_OK);
	ck_assert_int_eq(source_take(t, &a, &rate, 0), SOURCE_RATE);
	/* Without a rate the buckets go; b's request stays counted. */
	source_table_configure(t, &none, 32, 128);
	source_table_stats(t, &used, &cap, &forgotten);
	ck_assert_uint_eq(used, 1);
	ck_assert_int_eq(source_take(t, &b, &none, 0), SOURCE_MAX);
	/* With a rate again, a starts with a full bucket. */
	source_table_configure(t, &rate, 32, 128);
	ck_assert_int_eq(source_take(t, &a, &rate, 0), SOURCE_OK);
	source_put(t, &a);
	/* A new prefix: entries of the old grouping with nothing in
	 * progress go, even with a spent bucket. */
	source_table_configure(t, &rate, 24, 128);
	source_table_stats(t, &used, &cap, &forgotten);
	ck_assert_uint_eq(used, 1);
	ck_assert_int_eq(source_take(t, &a24, &rate, 0), SOURCE_OK);
	source_put(t, &b);
	source_table_free(t);
}
END_TEST

/* A key for the n-th of many distinct sources. */
static struct source_key
src_nth(unsigned n)
{
	struct sockaddr_in	 sin;
	struct source_key	 k;

	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(0x0a000000u + n);
	ck_assert(source_key((struct sockaddr *)&sin, 32, 128, &k));
	return k;
}

/* Loop tests run on a private table (_i 0) and on a shared one (_i 1),
 * which has all its slots from the start and sweeps in place. */
static struct source_table *
src_table(int shared, size_t max_slots)
{
	struct source_table *t;

	if (!shared)
		return source_table_new(max_slots);
	t = source_table_new_shared(max_slots);
	ck_assert_ptr_nonnull(t);
	return t;
}

START_TEST(source_idle_entries_are_dropped)
{
	struct source_table	*t = src_table(_i, _i ? 65536 : 0);
	struct source_rule	 rule = { 0, 10, 1 };
	size_t			 used, cap;
	unsigned long		 forgotten;

	/* A million sources, one request each, 10 us apart: each bucket
	 * is full again 0.1 s later, so the table stays small. */
	for (unsigned i = 0; i < 1000000; i++) {
		struct source_key k = src_nth(i);

		ck_assert_int_eq(source_take(t, &k, &rule, i * 1e-5),
		    SOURCE_OK);
		source_put(t, &k);
	}
	source_table_stats(t, &used, &cap, &forgotten);
	ck_assert_uint_le(cap, 65536);
	ck_assert_uint_eq(forgotten, 0);
	source_table_free(t);
}
END_TEST

START_TEST(source_table_is_bounded_when_nothing_is_idle)
{
	struct source_table	*t = src_table(_i, 1024);
	struct source_rule	 rule = { 0, 0.001, 1 };
	struct source_key	 first = src_nth(0);
	size_t			 used, cap;
	unsigned long		 forgotten;

	/* Buckets that take 1000 s to refill: none is idle, and the
	 * table stops growing at its cap, forgetting the oldest-looking. */
	for (unsigned i = 0; i < 100000; i++) {
		struct source_key k = src_nth(i);

		ck_assert_int_eq(source_take(t, &k, &rule, 1 + i * 1e-3),
		    SOURCE_OK);
		source_put(t, &k);
	}
	source_table_stats(t, &used, &cap, &forgotten);
	ck_assert_uint_eq(cap, 1024);
	ck_assert_uint_le(used, 768);
	ck_assert_uint_gt(forgotten, 90000);
	/* A forgotten source starts again with a full bucket. */
	ck_assert_int_eq(source_take(t, &first, &rule, 200), SOURCE_OK);
	source_table_free(t);
}
END_TEST

START_TEST(source_busy_sources_are_never_forgotten)
{
	struct source_table	*t = src_table(_i, 64);
	struct source_rule	 rule = { 1, 0.001, 1 };
	unsigned		 ok = 0, full = 0;

	/* Every source keeps a request in progress: nothing may go, and
	 * beyond the room the table has, new sources are refused. */
	for (unsigned i = 0; i < 200; i++) {
		struct source_key k = src_nth(i);

		switch (source_take(t, &k, &rule, 1)) {
		case SOURCE_OK:
			ok++;
			break;
		case SOURCE_FULL:
			full++;
			break;
		default:
			ck_abort_msg("source %u: unexpected verdict", i);
		}
	}
	ck_assert_uint_le(ok, 56);
	ck_assert_uint_ge(ok, 48);
	ck_assert_uint_eq(ok + full, 200);
	/* Each of those admitted is still counted. */
	for (unsigned i = 0; i < ok; i++) {
		struct source_key k = src_nth(i);

		ck_assert_int_eq(source_take(t, &k, &rule, 1), SOURCE_MAX);
	}
	/* One ends: its place may go to someone else. */
	{
		struct source_key k = src_nth(0), n = src_nth(1000);

		source_put(t, &k);
		ck_assert_int_eq(source_take(t, &n, &rule, 1), SOURCE_OK);
	}
	source_table_free(t);
}
END_TEST

START_TEST(source_deletion_keeps_other_keys_findable)
{
	struct source_table	*t = src_table(_i, 64);
	struct source_rule	 rule = { 1, 0, 0 };

	/* Only max_per_source: entries come and go with their requests,
	 * and deleting must not lose any other. */
	for (unsigned i = 0; i < 40; i++) {
		struct source_key k = src_nth(i);

		ck_assert_int_eq(source_take(t, &k, &rule, 0), SOURCE_OK);
	}
	for (unsigned i = 0; i < 40; i += 2) {
		struct source_key k = src_nth(i);

		source_put(t, &k);
	}
	for (unsigned i = 0; i < 40; i++) {
		struct source_key k = src_nth(i);

		ck_assert_int_eq(source_take(t, &k, &rule, 0),
		    i % 2 == 0 ? SOURCE_OK : SOURCE_MAX);
	}
	source_table_free(t);
}
END_TEST

/* A worker (a fork child with a ledger) counts in a shared table; the
 * parent sees its count, and gives it back once the child is gone. */
START_TEST(source_shared_counts_cross_processes_and_come_back)
{
	struct source_table	*t = source_table_new_shared(1024);
	struct source_rule	 rule = { 1, 1, 2 };
	struct source_key	 k = src_key("192.0.2.1", 32, 128);
	struct source_key	 other = src_key("192.0.2.2", 32, 128);
	struct source_ledger	*lg = source_ledger_new();
	pid_t			 pid;
	int			 st;

	ck_assert_ptr_nonnull(t);
	ck_assert_ptr_nonnull(lg);
	if ((pid = fork()) == 0) {
		struct source_key o = other;

		source_ledger_attach(lg);
		/* One request kept (k), one ended (other): only k is owed. */
		if (source_take(t, &k, &rule, 0) != SOURCE_OK ||
		    k.sk_hold == 0 || source_take(t, &o, &rule, 0) !=
		    SOURCE_OK)
			_exit(1);
		source_put(t, &o);
		_exit(0);
	}
	ck_assert_int_ne(pid, -1);
	ck_assert_int_eq(waitpid(pid, &st, 0), pid);
	ck_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	ck_assert_int_eq(source_take(t, &k, &rule, 0), SOURCE_MAX);
	ck_assert_uint_eq(source_ledger_release(lg), 1);
	/* The count is back; the token the child spent is not. */
	ck_assert_int_eq(source_take(t, &k, &rule, 0), SOURCE_OK);
	source_put(t, &k);
	ck_assert_int_eq(source_take(t, &k, &rule, 0), SOURCE_RATE);
	source_table_free(t);
}
END_TEST

Suite *
source_suite(void)
{
	Suite	*s = suite_create("source");
	TCase	*tc;

	tc = tcase_create("prefix");
	tcase_add_test(tc, source_full_prefix_is_one_address);
	tcase_add_test(tc, source_v4_prefix_groups_clients);
	tcase_add_test(tc, source_v6_prefix_groups_clients);
	tcase_add_test(tc, source_v4_mapped_is_its_v4_address);
	tcase_add_test(tc, source_unix_peer_has_no_key);
	suite_add_tcase(s, tc);

	tc = tcase_create("bucket");
	tcase_add_test(tc, source_bucket_allows_burst_then_refuses);
	tcase_add_test(tc, source_bucket_refills_at_the_rate);
	tcase_add_test(tc, source_fractional_rate_refills_slowly);
	tcase_add_test(tc, source_prefix_shares_one_bucket);
	tcase_add_test(tc, source_max_counts_requests_in_progress);
	tcase_add_test(tc, source_max_refusal_spends_no_token);
	tcase_add_test(tc, source_new_rule_applies_to_kept_buckets);
	tcase_add_test(tc, source_configure_applies_a_reload);
	suite_add_tcase(s, tc);

	tc = tcase_create("bound");
	tcase_set_timeout(tc, 60);
	tcase_add_loop_test(tc, source_idle_entries_are_dropped, 0, 2);
	tcase_add_loop_test(tc, source_table_is_bounded_when_nothing_is_idle,
	    0, 2);
	tcase_add_loop_test(tc, source_busy_sources_are_never_forgotten, 0, 2);
	tcase_add_loop_test(tc, source_deletion_keeps_other_keys_findable,
	    0, 2);
	suite_add_tcase(s, tc);

	tc = tcase_create("shared");
	tcase_add_test(tc, source_shared_counts_cross_processes_and_come_back);
	suite_add_tcase(s, tc);
	return s;
}
