/* SPDX-License-Identifier: ISC */
/*
 * coro.c - the context switch behind the event model.  On x86-64 and
 * AArch64 it is a few instructions that save the callee-saved registers
 * and swap stack pointers (no system call, unlike swapcontext(3), which
 * saves the signal mask each time); elsewhere it falls back to ucontext.
 * ASan and TSan are told about every stack switch, and valgrind about
 * every stack, so that they keep working; none of it costs anything in a
 * plain build outside valgrind.
 */
#include <sys/mman.h>

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "coro.h"
#include "log.h"

#if defined(__SANITIZE_ADDRESS__)
#define CORO_ASAN 1
#elif defined(__SANITIZE_THREAD__)
#define CORO_TSAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define CORO_ASAN 1
#elif __has_feature(thread_sanitizer)
#define CORO_TSAN 1
#endif
#endif

#ifdef CORO_ASAN
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#endif
#ifdef CORO_TSAN
#include <sanitizer/tsan_interface.h>

#include <pthread.h>
#include <signal.h>
#endif

/* Client requests are a few no-op instructions outside valgrind; without
 * the header (the valgrind package) the build simply goes without. */
#if defined(__has_include) && !defined(SSD_NO_VALGRIND)
#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#define CORO_VALGRIND 1
#endif
#endif

#if defined(__x86_64__) || defined(__aarch64__)
#define CORO_ASM 1
/* void coro_transfer(void **save_sp, void *load_sp) */
void	coro_transfer(void **, void *);
#if defined(__x86_64__)
__asm__(
	".text\n"
	".globl coro_transfer\n"
	".type coro_transfer, @function\n"
	".hidden coro_transfer\n"
	"coro_transfer:\n"
	"	pushq %rbp\n"
	"	pushq %rbx\n"
	"	pushq %r12\n"
	"	pushq %r13\n"
	"	pushq %r14\n"
	"	pushq %r15\n"
	"	movq %rsp, (%rdi)\n"
	"	movq %rsi, %rsp\n"
	"	popq %r15\n"
	"	popq %r14\n"
	"	popq %r13\n"
	"	popq %r12\n"
	"	popq %rbx\n"
	"	popq %rbp\n"
	"	ret\n"
	".size coro_transfer, .-coro_transfer\n"
	".section .note.GNU-stack,\"\",@progbits\n"
	".text\n");
#define CORO_NREGS 6
#else /* __aarch64__ */
__asm__(
	".text\n"
	".globl coro_transfer\n"
	".type coro_transfer, %function\n"
	".hidden coro_transfer\n"
	"coro_transfer:\n"
	"	sub sp, sp, #176\n"
	"	stp x19, x20, [sp, #0]\n"
	"	stp x21, x22, [sp, #16]\n"
	"	stp x23, x24, [sp, #32]\n"
	"	stp x25, x26, [sp, #48]\n"
	"	stp x27, x28, [sp, #64]\n"
	"	stp x29, x30, [sp, #80]\n"
	"	stp d8, d9, [sp, #96]\n"
	"	stp d10, d11, [sp, #112]\n"
	"	stp d12, d13, [sp, #128]\n"
	"	stp d14, d15, [sp, #144]\n"
	"	mov x2, sp\n"
	"	str x2, [x0]\n"
	"	mov sp, x1\n"
	"	ldp x19, x20, [sp, #0]\n"
	"	ldp x21, x22, [sp, #16]\n"
	"	ldp x23, x24, [sp, #32]\n"
	"	ldp x25, x26, [sp, #48]\n"
	"	ldp x27, x28, [sp, #64]\n"
	"	ldp x29, x30, [sp, #80]\n"
	"	ldp d8, d9, [sp, #96]\n"
	"	ldp d10, d11, [sp, #112]\n"
	"	ldp d12, d13, [sp, #128]\n"
	"	ldp d14, d15, [sp, #144]\n"
	"	add sp, sp, #176\n"
	"	ret\n"
	".size coro_transfer, .-coro_transfer\n"
	".section .note.GNU-stack,\"\",%progbits\n"
	".text\n");
#endif
#else
#include <ucontext.h>
#endif

/* The coroutine being started, for coro_entry (one per thread). */
static __thread struct coro *coro_starting;
static __thread struct coro *coro_starting_from;

/*
 * Coroutine stacks are left out of fork(2)'s copy (MADV_DONTFORK): the
 * event model keeps up to 256 finished ones per loop, and every fork of
 * the daemon (the fork model's, a worker's) would copy their mappings
 * and page tables.  A child continues only the context that forked, so
 * when a handler forks from a coroutine (exec under event), a fork
 * handler makes that one stack copied for the duration of the fork.
 * Not under ThreadSanitizer, whose state of each context lives on its
 * stack and which walks it in the child.
 */
#ifndef __SANITIZE_THREAD__
#define CORO_DONTFORK
static __thread struct coro *coro_forking;
static pthread_once_t coro_atfork_once = PTHREAD_ONCE_INIT;

static void
coro_fork_prepare(void)
{
	struct coro *co = coro_starting;

	if (co != NULL && co->c_map != NULL &&
	    madvise(co->c_map, co->c_mapsize, MADV_DOFORK) == 0)
		coro_forking = co;
}

static void
coro_fork_parent(void)
{
	if (coro_forking != NULL)
		madvise(coro_forking->c_map, coro_forking->c_mapsize,
		    MADV_DONTFORK);
	coro_forking = NULL;
}

static void
coro_fork_child(void)
{
	coro_forking = NULL;
}

static void
coro_atfork(void)
{
	pthread_atfork(coro_fork_prepare, coro_fork_parent, coro_fork_child);
}
#endif

/* No cache: loops on several threads create coroutines, and glibc
 * answers from memory anyway. */
static size_t
coro_pagesize(void)
{
	return (size_t)sysconf(_SC_PAGESIZE);
}

void
coro_init_self(struct coro *co)
{
	memset(co, 0, sizeof(*co));
}

static void
coro_asan_start(struct coro *from, const struct coro *to, bool exiting)
{
#ifdef CORO_ASAN
	__sanitizer_start_switch_fiber(exiting ? NULL : &from->c_asan_fake,
	    to->c_stack, to->c_stacksize);
#else
	(void)from;
	(void)to;
	(void)exiting;
#endif
}

static void
coro_asan_finish(struct coro *self, struct coro *from)
{
#ifdef CORO_ASAN
	const void	*bottom;
	size_t		 size;

	__sanitizer_finish_switch_fiber(self->c_asan_fake, &bottom, &size);
	/* Learn the stack we came from (the loop's, the first time). */
	if (from != NULL && from->c_map == NULL) {
		from->c_stack = bottom;
		from->c_stacksize = size;
	}
#else
	(void)self;
	(void)from;
#endif
}

/*
 * TSan keeps a shadow call stack and a clock per fiber.  A coroutine gets
 * a fresh fiber at each start (its previous run ended in coro_exit, whose
 * frames never returned); a thread's own context is whatever fiber runs
 * there when it first switches away (coro_init_self may run on another
 * thread than the loop).  Switches synchronise: the coroutines of a
 * thread run one after another, never at the same time.  The switch is
 * a macro, not a function: returning from a function after it would pop
 * the new fiber's shadow stack.  Nothing instrumented may run from there
 * to the switch itself.
 *
 * TSan defers an asynchronous signal to the next interceptor of the fiber
 * that was current when it arrived: one that came just before a switch
 * would wait for that coroutine to run again, or be lost with its fiber
 * (a SIGHUP never acted on).  So signals are blocked across the switch
 * (pthread_sigmask flushes the current fiber's pending ones on its way
 * out) and unblocked on the other side, where they go to the new fiber.
 */
#ifdef CORO_TSAN
static __thread sigset_t coro_tsan_mask;

#define CORO_TSAN_SWITCH(from, to) do {					\
	sigset_t all;							\
									\
	sigfillset(&all);						\
	pthread_sigmask(SIG_BLOCK, &all, &coro_tsan_mask);		\
	if ((from)->c_map == NULL)					\
		(from)->c_tsan_fiber = __tsan_get_current_fiber();	\
	__tsan_switch_to_fiber((to)->c_tsan_fiber, 0);			\
} while (0)
#define CORO_TSAN_SWITCHED() \
	pthread_sigmask(SIG_SETMASK, &coro_tsan_mask, NULL)
#else
#define CORO_TSAN_SWITCH(from, to) do { } while (0)
#define CORO_TSAN_SWITCHED() do { } while (0)
#endif

static void
coro_tsan_renew(struct coro *co)
{
#ifdef CORO_TSAN
	if (co->c_tsan_fiber != NULL)
		__tsan_destroy_fiber(co->c_tsan_fiber);
	co->c_tsan_fiber = __tsan_create_fiber(0);
#else
	(void)co;
#endif
}

static void __attribute__((noreturn))
coro_entry(void)
{
	struct coro *co = coro_starting, *from = coro_starting_from;

	CORO_TSAN_SWITCHED();
	coro_asan_finish(co, from);
	co->c_fn(co->c_arg);
	log_errorx("coroutine function returned");
	abort();
}

#ifndef CORO_ASM
static void
coro_entry_uc(void)
{
	coro_entry();
}
#endif

int
coro_create(struct coro *co, size_t stack_size)
{
	size_t		 ps = coro_pagesize();
	size_t		 size = (stack_size + ps - 1) / ps * ps;
	size_t		 guard = (CORO_GUARD + ps - 1) / ps * ps;
	char		*map;

	memset(co, 0, sizeof(*co));
	/* MAP_NORESERVE: only the pages a request touches cost memory; the
	 * guard, never touched, costs none. */
	map = mmap(NULL, guard + size, PROT_READ | PROT_WRITE,
	    MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK, -1, 0);
	if (map == MAP_FAILED)
		return -1;
	/* The guard: an overflow faults instead of corrupting what lies
	 * below, even from a frame larger than a page. */
	if (mprotect(map, guard, PROT_NONE) == -1) {
		int saved = errno;

		munmap(map, guard + size);
		errno = saved;
		return -1;
	}
#ifdef CORO_DONTFORK
	pthread_once(&coro_atfork_once, coro_atfork);
	/* Should it fail, forks only copy more. */
	madvise(map, guard + size, MADV_DONTFORK);
#endif
	co->c_map = map;
	co->c_mapsize = guard + size;
	co->c_stack = map + guard;
	co->c_stacksize = size;
#ifdef CORO_VALGRIND
	co->c_vg_id = VALGRIND_STACK_REGISTER(map + guard, map + guard + size);
#endif
	return 0;
}

void *
coro_reserve_top(struct coro *co, size_t size)
{
	size = (size + 63) & ~(size_t)63;
	co->c_stacksize -= size;
	return (char *)co->c_map + (co->c_mapsize - size);
}

int
coro_start(struct coro *co, void (*fn)(void *), void *arg)
{
	char *bottom = (char *)(uintptr_t)co->c_stack;

	co->c_fn = fn;
	co->c_arg = arg;
	co->c_asan_fake = NULL;
#ifdef CORO_ASAN
	/* Frames of the previous run never returned: clear their poison. */
	__asan_unpoison_memory_region(bottom, co->c_stacksize);
#endif
	coro_tsan_renew(co);
#ifdef CORO_ASM
	{
		uintptr_t	 top = ((uintptr_t)(bottom + co->c_stacksize)) &
		    ~(uintptr_t)15;
		void		**sp = (void **)top;

#if defined(__x86_64__)
		*--sp = NULL;			/* coro_entry's return address */
		*--sp = (void *)(uintptr_t)coro_entry;	/* where ret goes */
		for (int i = 0; i < CORO_NREGS; i++)
			*--sp = NULL;
#else
		/* The frame coro_transfer pops: x30 (lr) = coro_entry. */
		sp -= 176 / sizeof(void *);
		memset(sp, 0, 176);
		sp[11] = (void *)(uintptr_t)coro_entry;
#endif
		co->c_sp = sp;
	}
#else
	{
		ucontext_t *uc = co->c_sp;

		if (uc == NULL && (uc = calloc(1, sizeof(*uc))) == NULL)
			return -1;
		if (getcontext(uc) == -1)
			return -1;
		uc->uc_stack.ss_sp = bottom;
		uc->uc_stack.ss_size = co->c_stacksize;
		uc->uc_link = NULL;
		makecontext(uc, coro_entry_uc, 0);
		co->c_sp = uc;
	}
#endif
	return 0;
}

void
coro_destroy(struct coro *co)
{
#ifndef CORO_ASM
	free(co->c_sp);
#endif
#ifdef CORO_TSAN
	if (co->c_map != NULL && co->c_tsan_fiber != NULL)
		__tsan_destroy_fiber(co->c_tsan_fiber);
	co->c_tsan_fiber = NULL;
#endif
	if (co->c_map != NULL) {
#ifdef CORO_VALGRIND
		VALGRIND_STACK_DEREGISTER(co->c_vg_id);
#endif
		munmap(co->c_map, co->c_mapsize);
	}
	co->c_map = NULL;
	co->c_sp = NULL;
}

static void
coro_do_switch(struct coro *from, struct coro *to)
{
	coro_starting = to;
	coro_starting_from = from;
#ifdef CORO_ASM
	CORO_TSAN_SWITCH(from, to);
	coro_transfer(&from->c_sp, to->c_sp);
	CORO_TSAN_SWITCHED();
#else
	if (from->c_sp == NULL)
		from->c_sp = calloc(1, sizeof(ucontext_t));
	CORO_TSAN_SWITCH(from, to);
	swapcontext(from->c_sp, to->c_sp);
	CORO_TSAN_SWITCHED();
#endif
}

void
coro_switch(struct coro *from, struct coro *to)
{
	coro_asan_start(from, to, false);
	coro_do_switch(from, to);
	/* Back in from: whoever switched here came from coro_starting_from. */
	coro_asan_finish(from, coro_starting_from);
}

void
coro_exit(struct coro *from, struct coro *to)
{
	coro_asan_start(from, to, true);
	coro_do_switch(from, to);
	abort();
}
