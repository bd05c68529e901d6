/* SPDX-License-Identifier: ISC */
/*
 * conc_thread.c - the "thread" model (socketserver's ThreadingMixIn): a
 * thread per request.  When a thread cannot be created, that one
 * connection is closed and the listener pauses with a back-off; the daemon
 * keeps serving.
 *
 * The stacks are the daemon's own, not glibc's: glibc keeps up to 40 MiB
 * of the stacks of ended threads mapped (160 of ours, 320 mappings), and
 * every later fork(2) - the fork model's, a worker's - copies them.  A
 * request's thread, once its request is done, goes on a list; the loop
 * joins it (pthread_tryjoin_np: it never waits) at the next request or
 * done-callback, or a moment later, and keeps its stack for the next
 * thread, up to CONC_THREAD_CACHE stacks, unmapping the rest.  A kept
 * stack is marked MADV_DONTFORK while no thread runs on it: a child
 * never sees it.  Stacks in use stay ordinary memory, so a handler may
 * fork(2).
 */
#include <sys/mman.h>
#include <sys/queue.h>

#include <errno.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include "server.h"

#ifdef __SANITIZE_THREAD__
/* ThreadSanitizer's static TLS alone takes 900 KiB of a thread's stack. */
#define CONC_THREAD_STACK	(2 * 1024 * 1024)
#else
#define CONC_THREAD_STACK	(256 * 1024)
#endif
#define CONC_THREAD_CACHE	16	/* stacks kept for the next threads */
#define CONC_THREAD_RETRY	0.005	/* s: to join threads still exiting */

struct conc_thread_stack {
	SLIST_ENTRY(conc_thread_stack) s_entry;
	char			*s_map;		/* guard page, then the stack */
	size_t			 s_maplen;
	pthread_t		 s_thread;
	struct ssd_request	*s_rq;
};
SLIST_HEAD(conc_thread_stacks, conc_thread_stack);

/* Threads whose request is done, not yet joined (any thread adds). */
static pthread_mutex_t		 ct_mtx = PTHREAD_MUTEX_INITIALIZER;
static struct conc_thread_stacks ct_ended = SLIST_HEAD_INITIALIZER(ct_ended);
/* The loop's alone: taken from ct_ended, still exiting; kept stacks. */
static struct conc_thread_stacks ct_exiting =
    SLIST_HEAD_INITIALIZER(ct_exiting);
static struct conc_thread_stacks ct_free = SLIST_HEAD_INITIALIZER(ct_free);
static unsigned			 ct_nfree;
static ev_timer			 ct_retry;
static struct ev_loop		*ct_loop;

static void
conc_thread_unmap(struct conc_thread_stack *s)
{
	munmap(s->s_map, s->s_maplen);
	free(s);
}

/* A joined thread's stack: kept (out of every fork's copy) or unmapped. */
static void
conc_thread_recycle(struct conc_thread_stack *s)
{
	if (ct_nfree < CONC_THREAD_CACHE &&
	    madvise(s->s_map, s->s_maplen, MADV_DONTFORK) == 0) {
		SLIST_INSERT_HEAD(&ct_free, s, s_entry);
		ct_nfree++;
	} else
		conc_thread_unmap(s);
}

/* Moves the threads that ended their requests to ct_exiting (the loop's). */
static void
conc_thread_take_ended(void)
{
	struct conc_thread_stack *s;

	pthread_mutex_lock(&ct_mtx);
	while ((s = SLIST_FIRST(&ct_ended)) != NULL) {
		SLIST_REMOVE_HEAD(&ct_ended, s_entry);
		SLIST_INSERT_HEAD(&ct_exiting, s, s_entry);
	}
	pthread_mutex_unlock(&ct_mtx);
}

/* Stops the retry timer, which was unref'd when started. */
static void
conc_thread_retry_stop(void)
{
	if (ev_is_active(&ct_retry)) {
		ev_ref(ct_loop);
		ev_timer_stop(ct_loop, &ct_retry);
	}
}

void
conc_thread_reap(void)
{
	struct conc_thread_stacks	 still = SLIST_HEAD_INITIALIZER(still);
	struct conc_thread_stack	*s;

	if (ct_loop == NULL)	/* no thread-model request yet */
		return;
	conc_thread_take_ended();
	while ((s = SLIST_FIRST(&ct_exiting)) != NULL) {
		SLIST_REMOVE_HEAD(&ct_exiting, s_entry);
		if (pthread_tryjoin_np(s->s_thread, NULL) == 0)
			conc_thread_recycle(s);
		else
			SLIST_INSERT_HEAD(&still, s, s_entry);
	}
	ct_exiting = still;
	if (SLIST_EMPTY(&ct_exiting))
		conc_thread_retry_stop();
	else if (!ev_is_active(&ct_retry)) {
		ev_timer_set(&ct_retry, CONC_THREAD_RETRY, 0);
		ev_timer_start(ct_loop, &ct_retry);
		ev_unref(ct_loop);	/* never what keeps the loop running */
	}
}

/* At exit, every request done: joins the threads (each has left its
 * request and is returning) and unmaps every stack. */
void
conc_thread_fini(void)
{
	struct conc_thread_stack *s;

	if (ct_loop == NULL)	/* the thread model never ran */
		return;
	conc_thread_retry_stop();
	ct_loop = NULL;
	conc_thread_take_ended();
	while ((s = SLIST_FIRST(&ct_exiting)) != NULL) {
		SLIST_REMOVE_HEAD(&ct_exiting, s_entry);
		pthread_join(s->s_thread, NULL);
		conc_thread_unmap(s);
	}
	while ((s = SLIST_FIRST(&ct_free)) != NULL) {
		SLIST_REMOVE_HEAD(&ct_free, s_entry);
		conc_thread_unmap(s);
	}
	ct_nfree = 0;
}

static void
conc_thread_retry_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)w;
	(void)revents;
	ev_ref(loop);	/* it was unref'd when started; it has stopped */
	conc_thread_reap();
}

/* A stack for a new thread: a kept one, or a new mapping; NULL (errno). */
static struct conc_thread_stack *
conc_thread_stack_get(void)
{
	struct conc_thread_stack	*s;
	size_t				 guard = (size_t)sysconf(_SC_PAGESIZE);

	if ((s = SLIST_FIRST(&ct_free)) != NULL) {
		SLIST_REMOVE_HEAD(&ct_free, s_entry);
		ct_nfree--;
		if (madvise(s->s_map, s->s_maplen, MADV_DOFORK) == 0)
			return s;
		conc_thread_unmap(s);
	}
	s = xcalloc(1, sizeof(*s));
	s->s_maplen = guard + CONC_THREAD_STACK;
	s->s_map = mmap(NULL, s->s_maplen, PROT_READ | PROT_WRITE,
	    MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK | MAP_NORESERVE, -1, 0);
	if (s->s_map == MAP_FAILED) {
		free(s);
		return NULL;
	}
	/* The guard below the stack: an overflow faults, nothing is hit. */
	if (mprotect(s->s_map, guard, PROT_NONE) == -1) {
		int e = errno;

		conc_thread_unmap(s);
		errno = e;
		return NULL;
	}
	return s;
}

static void *
conc_thread_main(void *arg)
{
	struct conc_thread_stack	*s = arg;
	struct ssd_request		*rq = s->s_rq;

	request_set_blocking(rq);
	request_run(rq);
	/* OpenSSL's state of this thread (its error queue) goes now: the
	 * daemon may exit as soon as the request is done, before the
	 * thread's destructors have run. */
	tls_thread_stop();
	/* Joined (by the loop) only once this function has returned. */
	pthread_mutex_lock(&ct_mtx);
	SLIST_INSERT_HEAD(&ct_ended, s, s_entry);
	pthread_mutex_unlock(&ct_mtx);
	server_request_done(rq);
	return NULL;
}

static int
conc_thread_start(struct lrun *r)
{
	(void)r;
	return 0;
}

static bool
conc_thread_can_accept(const struct lrun *r)
{
	(void)r;
	return true;
}

static void
conc_thread_dispatch(struct lrun *r, struct ssd_request *rq)
{
	struct conc_thread_stack	*s;
	pthread_attr_t			 attr;
	size_t				 guard = (size_t)sysconf(_SC_PAGESIZE);
	sigset_t			 all, old;
	int				 rc;

	(void)r;
	if (ct_loop == NULL) {
		ct_loop = server.s_loop;
		ev_timer_init(&ct_retry, conc_thread_retry_cb, 0, 0);
	}
	conc_thread_reap();
	if ((s = conc_thread_stack_get()) == NULL) {
		rc = errno;
		goto fail;
	}
	s->s_rq = rq;
	pthread_attr_init(&attr);
	pthread_attr_setstack(&attr, s->s_map + guard, CONC_THREAD_STACK);
	/* Signals belong to the loop thread: new threads block them all. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	rc = pthread_create(&s->s_thread, &attr, conc_thread_main, s);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	pthread_attr_destroy(&attr);
	if (rc == 0)
		return;
	conc_thread_recycle(s);
fail:
	ssd_log(rq, LOG_WARNING, "cannot create a thread: %s; "
	    "connection closed", strerror(rc));
	listener_pause(rq->rq_watch, rc);
	server_request_done(rq);
}

static void
conc_thread_stop(struct lrun *r)
{
	(void)r;
}

const struct conc_ops conc_thread_ops = {
	.name = "thread",
	.start = conc_thread_start,
	.can_accept = conc_thread_can_accept,
	.dispatch = conc_thread_dispatch,
	.cut = request_cut,
	.stop = conc_thread_stop,
};
