/* SPDX-License-Identifier: ISC */
/*
 * check_log.c - log_journal_encode: entries of the journal's native
 * protocol, the plain "NAME=value" form and the binary form of values that
 * hold a newline, and its snprintf-like truncation.  Pure: no socket.
 */
#include <string.h>

#include <check.h>

#include "daemon.h"
#include "suites.h"

START_TEST(log_plain_fields_are_name_equals_value_lines)
{
	struct log_field f[] = {
		{ "MESSAGE", "hello world" },
		{ "PRIORITY", "6" },
		{ "SSD_LISTENER", "echo" },
	};
	const char	*want = "MESSAGE=hello world\nPRIORITY=6\n"
			    "SSD_LISTENER=echo\n";
	char		 buf[128];
	size_t		 n;

	n = log_journal_encode(buf, sizeof(buf), f, 3);
	ck_assert_uint_eq(n, strlen(want));
	ck_assert(memcmp(buf, want, n) == 0);
}
END_TEST

START_TEST(log_multiline_value_uses_the_binary_form)
{
	struct log_field f[] = {
		{ "MESSAGE", "two\nlines" },
		{ "PRIORITY", "3" },
	};
	const char	 want[] = "MESSAGE\n\x09\0\0\0\0\0\0\0two\nlines\n"
			    "PRIORITY=3\n";
	char		 buf[128];
	size_t		 n;

	n = log_journal_encode(buf, sizeof(buf), f, 2);
	ck_assert_uint_eq(n, sizeof(want) - 1);
	ck_assert(memcmp(buf, want, n) == 0);
}
END_TEST

START_TEST(log_binary_length_is_64_bit_little_endian)
{
	static char	 value[300];
	struct log_field f[] = { { "MESSAGE", value } };
	static char	 buf[400];
	size_t		 n;

	memset(value, 'x', sizeof(value) - 1);
	value[0] = '\n';
	n = log_journal_encode(buf, sizeof(buf), f, 1);
	ck_assert_uint_eq(n, 8 + 8 + 299 + 1);
	ck_assert(memcmp(buf, "MESSAGE\n\x2b\x01\0\0\0\0\0\0", 16) == 0);
	ck_assert_int_eq(buf[16], '\n');
	ck_assert_int_eq(buf[n - 1], '\n');
}
END_TEST

START_TEST(log_empty_value_is_kept)
{
	struct log_field f[] = { { "SSD_PEER", "" } };
	char		 buf[32];

	ck_assert_uint_eq(log_journal_encode(buf, sizeof(buf), f, 1), 10);
	ck_assert(memcmp(buf, "SSD_PEER=\n", 10) == 0);
}
END_TEST

START_TEST(log_encode_returns_the_whole_length_and_never_overruns)
{
	struct log_field f[] = {
		{ "MESSAGE", "0123456789" },
		{ "PRIORITY", "2\n" },
	};
	char		 full[64], buf[16];
	size_t		 n, m;

	n = log_journal_encode(full, sizeof(full), f, 2);
	memset(buf, '#', sizeof(buf));
	m = log_journal_encode(buf, 12, f, 2);
	ck_assert_uint_eq(m, n);
	ck_assert(memcmp(buf, full, 12) == 0);
	for (size_t i = 12; i < sizeof(buf); i++)
		ck_assert_int_eq(buf[i], '#');
	ck_assert_uint_eq(log_journal_encode(NULL, 0, f, 2), n);
}
END_TEST

Suite *
log_suite(void)
{
	Suite	*s = suite_create("log");
	TCase	*tc;

	tc = tcase_create("journal_encode");
	tcase_add_test(tc, log_plain_fields_are_name_equals_value_lines);
	tcase_add_test(tc, log_multiline_value_uses_the_binary_form);
	tcase_add_test(tc, log_binary_length_is_64_bit_little_endian);
	tcase_add_test(tc, log_empty_value_is_kept);
	tcase_add_test(tc,
	    log_encode_returns_the_whole_length_and_never_overruns);
	suite_add_tcase(s, tc);
	return s;
}
