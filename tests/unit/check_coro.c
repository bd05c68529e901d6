/* SPDX-License-Identifier: ISC */
/*
 * check_coro.c - the coroutine switch under the event model: control goes
 * back and forth with the callee-saved state intact, a finished coroutine
 * can be started again, the top of the stack can be reserved, and the
 * guard below the stack turns an overflow, by deep recursion or by one
 * large frame, into SIGSEGV at an address inside the guard.
 */
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

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

/*
 * Overflows.  A SIGSEGV handler on an alternate stack (the coroutine's is
 * used up) exits with CORO_IN_GUARD when the faulting address lies in the
 * guard below the stack, else CORO_OUTSIDE: an overflow must fault, and
 * fault there, not in whatever is mapped below.  A handler of our own also
 * takes the signal before a sanitizer's would.
 */
#define CORO_IN_GUARD	42
#define CORO_OUTSIDE	43

static char	coro_altstack[64 * 1024];

static void
coro_segv(int sig, siginfo_t *si, void *uc)
{
	uintptr_t	 a = (uintptr_t)si->si_addr;
	uintptr_t	 lo = (uintptr_t)coro_co.c_map;
	uintptr_t	 hi = (uintptr_t)coro_co.c_stack;

	(void)sig;
	(void)uc;
	_exit(a >= lo && a < hi ? CORO_IN_GUARD : CORO_OUTSIDE);
}

static void
coro_catch_segv(void)
{
	stack_t			 ss;
	struct sigaction	 sa;

	memset(&ss, 0, sizeof(ss));
	ss.ss_sp = coro_altstack;
	ss.ss_size = sizeof(coro_altstack);
	ck_assert_int_eq(sigaltstack(&ss, NULL), 0);
	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = coro_segv;
	sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
	sigemptyset(&sa.sa_mask);
	ck_assert_int_eq(sigaction(SIGSEGV, &sa, NULL), 0);
	ck_assert_int_eq(sigaction(SIGBUS, &sa, NULL), 0);
}

START_TEST(coro_guard_is_below_the_stack_and_large)
{
	ck_assert_ptr_nonnull(coro_co.c_map);
	ck_assert_uint_ge((uintptr_t)coro_co.c_stack -
	    (uintptr_t)coro_co.c_map, CORO_GUARD);
	ck_assert_uint_ge(CORO_GUARD, 64 * 1024);
	ck_assert_uint_ge(coro_co.c_stacksize, 64 * 1024);
}
END_TEST

static void __attribute__((noreturn))
coro_touch(void *arg)
{
	volatile char *p = arg;

	*p = 1;
	coro_exit(&coro_co, &coro_self);
}

static void
coro_run_touch(volatile char *p)
{
	coro_catch_segv();
	ck_assert_int_eq(coro_start(&coro_co, coro_touch,
	    (void *)(uintptr_t)p), 0);
	coro_switch(&coro_self, &coro_co);
	ck_abort_msg("writing at %p did not fault", (void *)(uintptr_t)p);
}

START_TEST(coro_guard_faults_just_below_the_stack)
{
	coro_run_touch((volatile char *)(uintptr_t)coro_co.c_stack - 1);
}
END_TEST

START_TEST(coro_guard_faults_at_its_lowest_byte)
{
	coro_run_touch((volatile char *)coro_co.c_map);
}
END_TEST

/* Recursion with real frames until the stack runs out. */
static int __attribute__((noinline))
coro_recurse(int depth)
{
	volatile char	 frame[3000];

	memset((char *)(uintptr_t)frame, depth & 0x7f, sizeof(frame));
	if (depth > 1000000)
		return frame[0];
	return coro_recurse(depth + 1) + frame[depth % sizeof(frame)];
}

static void __attribute__((noreturn))
coro_overflow_recursion(void *arg)
{
	*(volatile int *)arg = coro_recurse(0);
	coro_exit(&coro_co, &coro_self);
}

START_TEST(coro_deep_recursion_faults_in_the_guard)
{
	int out = 0;

	coro_catch_segv();
	ck_assert_int_eq(coro_start(&coro_co, coro_overflow_recursion, &out),
	    0);
	coro_switch(&coro_self, &coro_co);
	ck_abort_msg("the recursion did not overflow the stack");
}
END_TEST

/* One frame much larger than a page, from a stack nearly used up: it
 * lands in the guard (probed page by page with -fstack-clash-protection),
 * never beyond it. */
static int __attribute__((noinline))
coro_big_frame(int seed)
{
	volatile char	 frame[32 * 1024];

	frame[sizeof(frame) - 1] = (char)seed;
	frame[0] = (char)seed;
	return frame[seed & 1] + frame[sizeof(frame) - 1];
}

static int __attribute__((noinline))
coro_fill_then_big_frame(size_t left)
{
	volatile char	 frame[2048];

	memset((char *)(uintptr_t)frame, 1, sizeof(frame));
	if ((uintptr_t)frame - (uintptr_t)coro_co.c_stack > left)
		return coro_fill_then_big_frame(left) + frame[7];
	return coro_big_frame(frame[3]) + frame[9];
}

static void __attribute__((noreturn))
coro_overflow_big_frame(void *arg)
{
	*(volatile int *)arg = coro_fill_then_big_frame(8 * 1024);
	coro_exit(&coro_co, &coro_self);
}

START_TEST(coro_large_frame_faults_in_the_guard)
{
	int out = 0;

	coro_catch_segv();
	ck_assert_int_eq(coro_start(&coro_co, coro_overflow_big_frame, &out),
	    0);
	coro_switch(&coro_self, &coro_co);
	ck_abort_msg("a frame past the end of the stack did not fault");
}
END_TEST

Suite *
coro_suite(void)
{
	Suite	*s = suite_create("coro");
	TCase	*tc = tcase_create("switch");

	tcase_add_checked_fixture(tc, coro_setup, coro_teardown);
	tcase_add_test(tc, coro_switches_back_and_forth_in_order);
	tcase_add_test(tc, coro_finished_coroutine_starts_again);
	tcase_add_test(tc, coro_reserved_top_is_not_overwritten);
	tcase_add_test(tc, coro_guard_is_below_the_stack_and_large);
	/* These end the (forked) test process with an exit status. */
	tcase_add_exit_test(tc, coro_guard_faults_just_below_the_stack,
	    CORO_IN_GUARD);
	tcase_add_exit_test(tc, coro_guard_faults_at_its_lowest_byte,
	    CORO_IN_GUARD);
	tcase_add_exit_test(tc, coro_deep_recursion_faults_in_the_guard,
	    CORO_IN_GUARD);
	tcase_add_exit_test(tc, coro_large_frame_faults_in_the_guard,
	    CORO_IN_GUARD);
	suite_add_tcase(s, tc);
	return s;
}
