/* SPDX-License-Identifier: ISC */
/*
 * conc_event.c - the "event" model: every request runs as a coroutine on
 * a libev loop.  Handlers keep socketserver's blocking style; when
 * ssd_read/ssd_write would block, the request parks on an ev_io (plus an
 * ev_timer for the listener's timeout) and switches back to the loop,
 * which resumes it when the socket is ready.  A request costs a small
 * struct and the pages of its stack that it touches, not a thread.
 * The one rule for handlers: block only inside ssd_* calls.
 *
 * With workers = N > 1 the listener is served by N threads, each running
 * its own loop that accepts from the shared socket.  Requests are still
 * accounted for on the main loop (server_request_done hands them over).
 * Each worker holds a reference on its generation while it accepts, and
 * drops it on its own thread once told to stop (gen.c); the generation's
 * retirement joins it.  The main loop's share lives as long as the loop.
 */
#include <sys/queue.h>

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "coro.h"
#include "server.h"

/* Virtual size; only touched pages become resident. */
#define CONC_EVENT_STACK	(256 * 1024)
/* Finished coroutines kept for reuse, to spare mmap/munmap per request. */
#define CONC_EVENT_POOL		256

struct econn {
	struct coro		 e_coro;
	struct eloop		*e_eloop;
	ev_io			 e_io;
	ev_timer		 e_timer;
	struct ssd_request	*e_rq;
	bool			 e_parked;
	bool			 e_timedout;
	bool			 e_done;
	LIST_ENTRY(econn)	 e_entry;	/* live list, or the pool */
};

/* What the model keeps per loop (ev_userdata of the loop). */
struct eloop {
	struct ev_loop		*t_loop;
	struct coro		 t_ctx;		/* the loop's own context */
	ev_async		 t_kick;	/* cut requests, resume, quit */
	LIST_HEAD(, econn)	 t_live;
	LIST_HEAD(, econn)	 t_pool;
	size_t			 t_npool;
	atomic_bool		 t_quit;
	/* workers only: */
	struct lwatch		 t_watch;
	pthread_t		 t_thread;
	bool			 t_accepting;	/* holds gen and socket refs */
	struct lsock		*t_sock;	/* the socket it watches */
	unsigned		 t_epoch;	/* of the socket watched */
};

struct eworkers {
	struct eloop		*k_loops;
	size_t			 k_n;
};

/* The main loop's share, from the first event listener to the end. */
static struct eloop		*conc_event_main_loop;

static void conc_event_io_cb(struct ev_loop *, ev_io *, int);
static void conc_event_timer_cb(struct ev_loop *, ev_timer *, int);
static void conc_event_kick_cb(struct ev_loop *, ev_async *, int);
static void conc_event_free(struct econn *);

static void
conc_event_eloop_init(struct eloop *t, struct ev_loop *loop)
{
	memset(t, 0, sizeof(*t));
	t->t_loop = loop;
	coro_init_self(&t->t_ctx);
	LIST_INIT(&t->t_live);
	LIST_INIT(&t->t_pool);
	atomic_init(&t->t_quit, false);
	ev_async_init(&t->t_kick, conc_event_kick_cb);
	ev_async_start(loop, &t->t_kick);
	ev_unref(loop);		/* the kick alone keeps no loop running */
	ev_set_userdata(loop, t);
}

static void
conc_event_eloop_fini(struct eloop *t)
{
	struct econn *e;

	ev_ref(t->t_loop);
	ev_async_stop(t->t_loop, &t->t_kick);
	while ((e = LIST_FIRST(&t->t_pool)) != NULL) {
		LIST_REMOVE(e, e_entry);
		conc_event_free(e);
	}
	t->t_npool = 0;
}

/* Unmaps e's stack, and e with it. */
static void
conc_event_free(struct econn *e)
{
	struct coro co = e->e_coro;

	coro_destroy(&co);
}

static struct econn *
conc_event_get(struct eloop *t)
{
	struct econn	*e;
	struct coro	 co;

	if ((e = LIST_FIRST(&t->t_pool)) != NULL) {
		LIST_REMOVE(e, e_entry);
		t->t_npool--;
	} else {
		/* The econn lives at the top of its own stack mapping, in
		 * the page the coroutine's first frames use anyway: an idle
		 * request costs one page fewer. */
		if (coro_create(&co, CONC_EVENT_STACK) == -1)
			return NULL;
		e = coro_reserve_top(&co, sizeof(*e));
		memset(e, 0, sizeof(*e));
		e->e_coro = co;
		e->e_eloop = t;
		ev_init(&e->e_io, conc_event_io_cb);
		ev_init(&e->e_timer, conc_event_timer_cb);
	}
	LIST_INSERT_HEAD(&t->t_live, e, e_entry);
	return e;
}

static void
conc_event_put(struct econn *e)
{
	struct eloop *t = e->e_eloop;

	LIST_REMOVE(e, e_entry);
	e->e_rq = NULL;
	if (t->t_npool < CONC_EVENT_POOL) {
		LIST_INSERT_HEAD(&t->t_pool, e, e_entry);
		t->t_npool++;
		return;
	}
	conc_event_free(e);
}

static void __attribute__((noreturn))
conc_event_main(void *arg)
{
	struct econn *e = arg;

	request_run(e->e_rq);
	e->e_done = true;
	coro_exit(&e->e_coro, &e->e_eloop->t_ctx);
}

/* Runs e until it parks or ends; on its loop's context only. */
static void
conc_event_resume(struct econn *e)
{
	struct ssd_request *rq;

	coro_switch(&e->e_eloop->t_ctx, &e->e_coro);
	if (!e->e_done)
		return;
	rq = e->e_rq;
	rq->rq_conc = NULL;
	conc_event_put(e);
	server_request_done(rq);
}

static int
conc_event_wait(struct ssd_request *rq, int fd, short events)
{
	struct econn	*e = rq->rq_conc;
	struct ev_loop	*loop = e->e_eloop->t_loop;

	int		 mask = ((events & POLLIN) ? EV_READ : 0) |
	    ((events & POLLOUT) ? EV_WRITE : 0);

	if (atomic_load(&rq->rq_cut)) {
		errno = ECONNABORTED;
		return -1;
	}
	/* ev_io_set would make libev register the fd again each time. */
	if (e->e_io.fd != fd)
		ev_io_set(&e->e_io, fd, mask);
	else if ((e->e_io.events & (EV_READ | EV_WRITE)) != mask)
		ev_io_modify(&e->e_io, mask);
	ev_io_start(loop, &e->e_io);
	if (rq->rq_timeout > 0) {
		ev_timer_set(&e->e_timer, rq->rq_timeout, 0.);
		ev_timer_start(loop, &e->e_timer);
	}
	e->e_timedout = false;
	e->e_parked = true;
	coro_switch(&e->e_coro, &e->e_eloop->t_ctx);
	e->e_parked = false;
	/* Stopping also clears a pending event: no second resume. */
	ev_io_stop(loop, &e->e_io);
	ev_timer_stop(loop, &e->e_timer);
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

/* Another thread asked: resume cut requests, accept again, or quit. */
/* A worker stops accepting for good and drops its references (on its
 * own thread, or after it was joined). */
static void
conc_event_worker_let_go(struct eloop *t)
{
	struct gen *g = t->t_watch.w_run->r_gen;

	if (!t->t_accepting)
		return;
	listener_watch_stop(&t->t_watch);
	t->t_accepting = false;
	lsock_unref(t->t_sock);
	gen_unref(g);		/* may be the last */
}

static void
conc_event_kick_cb(struct ev_loop *loop, ev_async *w, int revents)
{
	struct eloop	*t = container_of(w, struct eloop, t_kick);
	struct econn	*e, *next;

	(void)revents;
	for (e = LIST_FIRST(&t->t_live); e != NULL; e = next) {
		next = LIST_NEXT(e, e_entry);
		if (e->e_parked && atomic_load(&e->e_rq->rq_cut))
			conc_event_resume(e);
	}
	if (t->t_watch.w_loop == NULL)
		return;
	if (atomic_load(&t->t_quit) ||
	    atomic_load(&t->t_watch.w_run->r_closing)) {
		conc_event_worker_let_go(t);
		if (atomic_load(&t->t_quit))
			ev_break(loop, EVBREAK_ALL);
		return;
	}
	if (t->t_epoch != atomic_load(&t->t_watch.w_run->r_epoch)) {
		t->t_epoch = atomic_load(&t->t_watch.w_run->r_epoch);
		listener_watch_stop(&t->t_watch);
		ev_io_set(&t->t_watch.w_io, t->t_sock->k_fd, EV_READ);
	}
	listener_watch_resume(&t->t_watch);
}

static int
conc_event_start(struct lrun *r)
{
	(void)r;
	if (conc_event_main_loop == NULL) {
		conc_event_main_loop = xcalloc(1,
		    sizeof(*conc_event_main_loop));
		conc_event_eloop_init(conc_event_main_loop, server.s_loop);
	}
	return 0;
}

static bool
conc_event_can_accept(const struct lrun *r)
{
	(void)r;
	return true;
}

static void
conc_event_dispatch(struct lrun *r, struct ssd_request *rq)
{
	struct eloop	*t = ev_userdata(rq->rq_watch->w_loop);
	struct econn	*e;

	(void)r;
	if ((e = conc_event_get(t)) == NULL) {
		ssd_log(rq, LOG_WARNING, "cannot allocate a coroutine stack: "
		    "%s; connection closed", strerror(errno));
		listener_pause(rq->rq_watch, errno);
		server_request_done(rq);
		return;
	}
	e->e_rq = rq;
	e->e_done = false;
	ev_io_set(&e->e_io, rq->rq_fd, EV_READ);
	rq->rq_conc = e;
	rq->rq_wait = conc_event_wait;
	coro_start(&e->e_coro, conc_event_main, e);
	conc_event_resume(e);
}

static void
conc_event_cut(struct ssd_request *rq)
{
	struct ev_loop *loop = rq->rq_watch->w_loop;

	atomic_store(&rq->rq_cut, true);
	/* The client sees the end now, even if the handler is busy outside
	 * ssd_* calls; the fd stays open until the request is freed. */
	if (rq->rq_type == SOCK_STREAM)
		shutdown(rq->rq_fd, SHUT_RDWR);
	/* Resumed by its own loop, never from here: the caller may be on
	 * another thread, or walking the request list. */
	ev_async_send(loop, &((struct eloop *)ev_userdata(loop))->t_kick);
}

static void
conc_event_stop(struct lrun *r)
{
	(void)r;
}

void
conc_event_fini(void)
{
	if (conc_event_main_loop == NULL)
		return;
	SSD_ASSERT(LIST_EMPTY(&conc_event_main_loop->t_live));
	conc_event_eloop_fini(conc_event_main_loop);
	free(conc_event_main_loop);
	conc_event_main_loop = NULL;
}

const struct conc_ops conc_event_ops = {
	.name = "event",
	.start = conc_event_start,
	.can_accept = conc_event_can_accept,
	.dispatch = conc_event_dispatch,
	.cut = conc_event_cut,
	.stop = conc_event_stop,
};

/*
 * workers = N: the same model on N loops of their own.
 */
static void *
conc_event_worker_main(void *arg)
{
	struct eloop *t = arg;

	ev_run(t->t_loop, 0);
	listener_watch_fini(&t->t_watch);
	return NULL;
}

static void
conc_event_workers_stop(struct lrun *r)
{
	struct eworkers *k = r->r_conc;

	if (k == NULL)
		return;
	for (size_t i = 0; i < k->k_n; i++) {
		struct eloop *t = &k->k_loops[i];

		if (t->t_loop == NULL)
			continue;
		if (t->t_thread != 0) {
			atomic_store(&t->t_quit, true);
			ev_async_send(t->t_loop, &t->t_kick);
			pthread_join(t->t_thread, NULL);
		}
		/* Only when starting failed: a retired generation's
		 * workers have all let go already. */
		conc_event_worker_let_go(t);
		conc_event_eloop_fini(t);
		ev_loop_destroy(t->t_loop);
	}
	free(k->k_loops);
	free(k);
	r->r_conc = NULL;
}

static int
conc_event_workers_start(struct lrun *r)
{
	struct eworkers	*k = xcalloc(1, sizeof(*k));
	sigset_t	 all, old;
	int		 rc;

	k->k_n = (size_t)r->r_listener->l_workers;
	k->k_loops = xcalloc(k->k_n, sizeof(*k->k_loops));
	r->r_conc = k;
	for (size_t i = 0; i < k->k_n; i++) {
		struct eloop	*t = &k->k_loops[i];
		struct ev_loop	*loop = ev_loop_new(EVFLAG_AUTO);

		if (loop == NULL) {
			log_about(LOG_ERR, r->r_listener->l_name, NULL,
			    "cannot create event loop %zu", i);
			goto short_of_workers;
		}
		conc_event_eloop_init(t, loop);
		/* A worker runs while its listener watcher is active. */
		ev_ref(loop);
		listener_watch_init(&t->t_watch, r, loop);
		listener_watch_resume(&t->t_watch);
		gen_ref(r->r_gen);
		lsock_ref(r->r_sock);
		t->t_sock = r->r_sock;
		t->t_accepting = true;
		sigfillset(&all);
		pthread_sigmask(SIG_SETMASK, &all, &old);
		rc = pthread_create(&t->t_thread, NULL,
		    conc_event_worker_main, t);
		pthread_sigmask(SIG_SETMASK, &old, NULL);
		if (rc != 0) {
			t->t_thread = 0;
			conc_event_worker_let_go(t);
			listener_watch_fini(&t->t_watch);
			conc_event_eloop_fini(t);
			ev_loop_destroy(loop);
			t->t_loop = NULL;
			log_about(LOG_ERR, r->r_listener->l_name, NULL,
			    "cannot start worker %zu: %s", i, strerror(rc));
			goto short_of_workers;
		}
	}
	return 0;
short_of_workers:
	/* The workers already started may be serving requests: keep them
	 * rather than tear their loops down under those. */
	for (size_t i = 0; i < k->k_n; i++)
		if (k->k_loops[i].t_thread != 0) {
			log_about(LOG_WARNING, r->r_listener->l_name, NULL,
			    "serving with fewer workers than configured");
			return 0;
		}
	conc_event_workers_stop(r);
	return -1;
}

/* Wakes every worker to accept again, or to let go of a closed socket. */
static void
conc_event_workers_kick(struct lrun *r)
{
	struct eworkers *k = r->r_conc;

	if (k == NULL)
		return;
	for (size_t i = 0; i < k->k_n; i++)
		if (k->k_loops[i].t_thread != 0)
			ev_async_send(k->k_loops[i].t_loop,
			    &k->k_loops[i].t_kick);
}

static void
conc_event_workers_resume(struct lrun *r)
{
	/* Workers only pause at a max_connections cap. */
	if (r->r_listener->l_max_connections > 0 ||
	    r->r_gen->g_cfg->cf_max_connections > 0)
		conc_event_workers_kick(r);
}

/* The workers stop watching when kicked (and let go of the generation). */
static void
conc_event_workers_close(struct lrun *r)
{
	conc_event_workers_kick(r);
}

const struct conc_ops conc_event_workers_ops = {
	.name = "event",
	.start = conc_event_workers_start,
	.can_accept = conc_event_can_accept,
	.dispatch = conc_event_dispatch,
	.cut = conc_event_cut,
	.stop = conc_event_workers_stop,
	.resume = conc_event_workers_resume,
	.close = conc_event_workers_close,
};
