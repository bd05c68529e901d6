/* SPDX-License-Identifier: ISC */
/*
 * coro.h - stackful coroutines for the event model: each request runs on
 * its own mmap'd stack (with a PROT_NONE guard region below it) and
 * switches to and from the loop's context.  Only conc_event.c uses it.
 */
#ifndef CORO_H
#define CORO_H

#include <stdbool.h>
#include <stddef.h>

/* PROT_NONE below every stack: more than the largest frame the daemon or a
 * handler puts on it, so that an overflow always lands here.  It is never
 * touched, so it costs address space only, no memory. */
#define CORO_GUARD	(64 * 1024)

struct coro {
	void		*c_sp;		/* saved stack pointer */
	void		*c_map;		/* guard + stack; NULL: a thread's own stack */
	size_t		 c_mapsize;
	void		(*c_fn)(void *);
	void		*c_arg;
	const void	*c_stack;	/* lowest byte of the usable stack */
	size_t		 c_stacksize;	/* up to the reserved top */
	void		*c_asan_fake;	/* ASan's fake stack while switched out */
	void		*c_tsan_fiber;	/* TSan's fiber for this context */
	unsigned	 c_vg_id;	/* valgrind's id of the stack */
};

/* The context of the calling thread itself (a loop), to switch back to.
 * It may be initialised on one thread and used on another. */
void	coro_init_self(struct coro *);
/* Maps a stack of stack_size bytes (rounded to pages) with CORO_GUARD
 * bytes of PROT_NONE below it.  Returns 0, or -1 with errno set; on
 * success coro_destroy releases it. */
int	coro_create(struct coro *, size_t stack_size);
/* Prepares the coroutine (new, or finished and reused) to run fn(arg) at
 * its next coro_switch.  fn must not return: it ends with coro_exit. */
int	coro_start(struct coro *, void (*fn)(void *), void *arg);
/* Carves size bytes (aligned) off the top of the stack for the caller's
 * use, before coro_start; they go with the stack in coro_destroy. */
void	*coro_reserve_top(struct coro *, size_t size);
/* Unmaps the stack of a coroutine that is not running. */
void	coro_destroy(struct coro *);
/* Saves the current context in from and resumes to. */
void	coro_switch(struct coro *from, struct coro *to);
/* Switches from a finishing coroutine to `to` for good. */
void	coro_exit(struct coro *from, struct coro *to)
	    __attribute__((noreturn));

#endif /* CORO_H */
