/* SPDX-License-Identifier: ISC */
/*
 * conc_event.c - the "event" model: every request runs as a coroutine on
 * the libev loop.  Handlers keep socketserver's blocking style; when
 * ssd_read/ssd_write would block, the request parks on an ev_io (plus an
 * ev_timer for the listener's timeout) and switches back to the loop,
 * which resumes it when the socket is ready.  A request costs a small
 * struct and the pages of its stack that it touches, not a thread.
 * The one rule for handlers: block only inside ssd_* calls.
 */
#include <sys/queue.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "coro.h"
#include "server.h"

/* Virtual size; only touched pages become resident. */
#define CONC_EVENT_STACK	(256 * 1024)
/* Finished coroutines kept for reuse, to spare mmap/munmap per request. */
#define CONC_EVENT_POOL		256

struct econn {
	struct coro		 e_coro;
	ev_io			 e_io;
	ev_timer		 e_timer;
	struct ssd_request	*e_rq;
	bool			 e_parked;
	bool			 e_timedout;
	bool			 e_done;
	SLIST_ENTRY(econn)	 e_next;	/* in the pool */
};

static struct coro		conc_event_loop;	/* the loop's context */
static SLIST_HEAD(, econn)	conc_event_pool =
    SLIST_HEAD_INITIALIZER(conc_event_pool);
static size_t			conc_event_npool;

static void conc_event_io_cb(struct ev_loop *, ev_io *, int);
static void conc_event_timer_cb(struct ev_loop *, ev_timer *, int);

static struct econn *
conc_event_get(void)
{
	struct econn *e;

	if ((e = SLIST_FIRST(&conc_event_pool)) != NULL) {
		SLIST_REMOVE_HEAD(&conc_event_pool, e_next);
		conc_event_npool--;
		return e;
	}
	e = xcalloc(1, sizeof(*e));
	if (coro_create(&e->e_coro, CONC_EVENT_STACK) == -1) {
		free(e);
		return NULL;
	}
	ev_init(&e->e_io, conc_event_io_cb);
	ev_init(&e->e_timer, conc_event_timer_cb);
	return e;
}

static void
conc_event_put(struct econn *e)
{
	e->e_rq = NULL;
	if (conc_event_npool < CONC_EVENT_POOL) {
		SLIST_INSERT_HEAD(&conc_event_pool, e, e_next);
		conc_event_npool++;
		return;
	}
	coro_destroy(&e->e_coro);
	free(e);
}

static void __attribute__((noreturn))
conc_event_main(void *arg)
{
	struct econn *e = arg;

	request_run(e->e_rq);
	e->e_done = true;
	coro_exit(&e->e_coro, &conc_event_loop);
}

/* Runs e until it parks or ends; on the loop's context only. */
static void
conc_event_resume(struct econn *e)
{
	struct ssd_request *rq;

	coro_switch(&conc_event_loop, &e->e_coro);
	if (!e->e_done)
		return;
	rq = e->e_rq;
	rq->rq_conc = NULL;
	conc_event_put(e);
	server_request_done(rq);
}

static int
conc_event_wait(struct ssd_request *rq, short events)
{
	struct econn *e = rq->rq_conc;

	if (atomic_load(&rq->rq_cut)) {
		errno = ECONNABORTED;
		return -1;
	}
	ev_io_set(&e->e_io, rq->rq_fd, ((events & POLLIN) ? EV_READ : 0) |
	    ((events & POLLOUT) ? EV_WRITE : 0));
	ev_io_start(server.s_loop, &e->e_io);
	if (rq->rq_timeout > 0) {
		ev_timer_set(&e->e_timer, rq->rq_timeout, 0.);
		ev_timer_start(server.s_loop, &e->e_timer);
	}
	e->e_timedout = false;
	e->e_parked = true;
	coro_switch(&e->e_coro, &conc_event_loop);
	e->e_parked = false;
	/* Stopping also clears a pending event: no second resume. */
	ev_io_stop(server.s_loop, &e->e_io);
	ev_timer_stop(server.s_loop, &e->e_timer);
	if (atomic_load(&rq->rq_cut)) {
		errno = ECONNABORTED;
		return -1;
	}
	if (e->e_timedout) {
		rq->rq_timedout = true;
		errno = ETIMEDOUT;
		return -1;
	}
	return 0;
}

static void
conc_event_io_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	(void)loop;
	(void)revents;
	conc_event_resume(container_of(w, struct econn, e_io));
}

static void
conc_event_timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct econn *e = container_of(w, struct econn, e_timer);

	(void)loop;
	(void)revents;
	e->e_timedout = true;
	conc_event_resume(e);
}

static int
conc_event_start(struct listener *l)
{
	(void)l;
	coro_init_self(&conc_event_loop);
	return 0;
}

static bool
conc_event_can_accept(const struct listener *l)
{
	(void)l;
	return true;
}

static void
conc_event_dispatch(struct listener *l, struct ssd_request *rq)
{
	struct econn *e;

	if ((e = conc_event_get()) == NULL) {
		ssd_log(rq, LOG_WARNING, "cannot allocate a coroutine stack: "
		    "%s; connection closed", strerror(errno));
		listener_pause(l, errno);
		server_request_done(rq);
		return;
	}
	e->e_rq = rq;
	e->e_done = false;
	rq->rq_conc = e;
	rq->rq_wait = conc_event_wait;
	coro_start(&e->e_coro, conc_event_main, e);
	conc_event_resume(e);
}

static void
conc_event_cut(struct ssd_request *rq)
{
	struct econn *e = rq->rq_conc;

	atomic_store(&rq->rq_cut, true);
	/* Resumed from the loop, never from here: the caller may be
	 * walking the request list. */
	if (e != NULL && e->e_parked)
		ev_feed_event(server.s_loop, &e->e_io, EV_CUSTOM);
}

static void
conc_event_stop(struct listener *l)
{
	struct econn *e;

	(void)l;
	while ((e = SLIST_FIRST(&conc_event_pool)) != NULL) {
		SLIST_REMOVE_HEAD(&conc_event_pool, e_next);
		coro_destroy(&e->e_coro);
		free(e);
	}
	conc_event_npool = 0;
}

const struct conc_ops conc_event_ops = {
	.name = "event",
	.start = conc_event_start,
	.can_accept = conc_event_can_accept,
	.dispatch = conc_event_dispatch,
	.cut = conc_event_cut,
	.stop = conc_event_stop,
};
