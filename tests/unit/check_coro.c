/* SPDX-License-Identifier: ISC */
/*
 * check_coro.c - the coroutine switch under the event model: control goes
 * back and forth with the callee-saved state intact, a finished coroutine
 * can be started again, the top of the stack can be reserved, and the
 * guard page below the stack turns an overflow into SIGSEGV.
 */
#include <signal.h>
#include <stdint.h>
#include <string.h>

#include <check.h>

#include "coro.h"
#include "suites.h"

static struct coro	coro_self, coro_co;
static int		coro_trace[16];
static int		coro_ntrace;

static void
coro_record(int v)
{
	if (coro_ntrace < 16)
		coro_trace[coro_ntrace++] = v;
}

static void __attribute__((noreturn))
coro_pingpong(void *arg)
{
	int base = *(int *)arg;

	for (int i = 0; i < 3; i++) {
		coro_record(base + i);
		coro_switch(&coro_co, &coro_self);
	}
	coro_record(base + 100);
	coro_exit(&coro_co, &coro_self);
}

static void
coro_setup(void)
{
	coro_init_self(&coro_self);
	ck_assert_int_eq(coro_create(&coro_co, 64 * 1024), 0);
	coro_ntrace = 0;
}

static void
coro_teardown(void)
{
	coro_destroy(&coro_co);
}

START_TEST(coro_switches_back_and_forth_in_order)
{
	int		 base = 10;
	volatile int	 local = 42;	/* must survive the switches */

	ck_assert_int_eq(coro_start(&coro_co, coro_pingpong, &base), 0);
	for (int i = 0; i < 4; i++) {
		coro_record(i);
		coro_switch(&coro_self, &coro_co);
	}
	ck_assert_int_eq(local, 42);
	ck_assert_int_eq(coro_ntrace, 8);
	ck_assert_int_eq(coro_trace[0], 0);
	ck_assert_int_eq(coro_trace[1], 10);
	ck_assert_int_eq(coro_trace[2], 1);
	ck_assert_int_eq(coro_trace[3], 11);
	ck_assert_int_eq(coro_trace[4], 2);
	ck_assert_int_eq(coro_trace[5], 12);
	ck_assert_int_eq(coro_trace[6], 3);
	ck_assert_int_eq(coro_trace[7], 110);
}
END_TEST

START_TEST(coro_finished_coroutine_starts_again)
{
	int base = 20;

	for (int run = 0; run < 3; run++) {
		coro_ntrace = 0;
		ck_assert_int_eq(coro_start(&coro_co, coro_pingpong, &base), 0);
		for (int i = 0; i < 4; i++)
			coro_switch(&coro_self, &coro_co);
		ck_assert_int_eq(coro_ntrace, 4);
		ck_assert_int_eq(coro_trace[3], 120);
	}
}
END_TEST

static void __attribute__((noreturn))
coro_use_stack(void *arg)
{
	volatile char big[16384];

	memset((char *)(uintptr_t)big, 0x5a, sizeof(big));
	*(int *)arg = big[100] + big[16000];
	coro_exit(&coro_co, &coro_self);
}

START_TEST(coro_reserved_top_is_not_overwritten)
{
	unsigned char	*top;
	int		 out = 0;

	top = coro_reserve_top(&coro_co, 256);
	memset(top, 0xa5, 256);
	ck_assert_int_eq(coro_start(&coro_co, coro_use_stack, &out), 0);
	coro_switch(&coro_self, &coro_co);
	ck_assert_int_eq(out, 0x5a * 2);
	for (int i = 0; i < 256; i++)
		ck_assert_int_eq(top[i], 0xa5);
}
END_TEST

#ifndef __SANITIZE_ADDRESS__
static void __attribute__((noreturn))
coro_touch_guard(void *arg)
{
	/* The byte just below the stack: the guard page. */
	volatile char *below = (volatile char *)(uintptr_t)
	    coro_co.c_asan_bottom - 1;

	(void)arg;
	*below = 1;
	coro_exit(&coro_co, &coro_self);
}

START_TEST(coro_guard_page_faults)
{
	ck_assert_int_eq(coro_start(&coro_co, coro_touch_guard, NULL), 0);
	coro_switch(&coro_self, &coro_co);
	ck_abort_msg("writing below the stack did not fault");
}
END_TEST
#endif

Suite *
coro_suite(void)
{
	Suite	*s = suite_create("coro");
	TCase	*tc = tcase_create("switch");

	tcase_add_checked_fixture(tc, coro_setup, coro_teardown);
	tcase_add_test(tc, coro_switches_back_and_forth_in_order);
	tcase_add_test(tc, coro_finished_coroutine_starts_again);
	tcase_add_test(tc, coro_reserved_top_is_not_overwritten);
#ifndef __SANITIZE_ADDRESS__
	/* ASan turns the fault into its own report and exit status. */
	tcase_add_test_raise_signal(tc, coro_guard_page_faults, SIGSEGV);
#endif
	suite_add_tcase(s, tc);
	return s;
}
