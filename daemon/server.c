/* SPDX-License-Identifier: ISC */
/*
 * server.c - the main event loop: signals, request accounting and limits,
 * readiness and status notifications, and the orderly stop (close every
 * listener at once, drain up to shutdown_timeout, then cut).
 */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "server.h"

/* After the drain deadline, how long cut requests get to notice. */
#define SERVER_CUT_GRACE	2.0

struct server server;

static void
server_syserr(const char *msg)
{
	log_error("libev: %s", msg);
	abort();
}

static void
server_status(void)
{
	if (!sd_is_notify_enabled())
		return;
	if (server.s_stopping)
		sd_notifyf("STATUS=stopping: %u requests in progress",
		    server.s_nactive);
	else
		sd_notifyf("STATUS=serving %zu listeners",
		    server.s_cfg->cf_nlisteners);
}

bool
server_can_accept(const struct listener *l)
{
	const struct lrun	*r = l->l_run;
	long			 gmax = server.s_cfg->cf_max_connections;

	if (atomic_load(&server.s_stopping) || atomic_load(&r->r_closing))
		return false;
	if (l->l_max_connections > 0 &&
	    atomic_load(&r->r_share->s_active) >= l->l_max_connections)
		return false;
	if (gmax > 0 && atomic_load(&server.s_nactive) >= gmax)
		return false;
	return r->r_ops->can_accept(l);
}

/* Adds one to *n unless that would pass max (0: no cap). */
static bool
server_take(atomic_uint *n, long max)
{
	unsigned v = atomic_load(n);

	do {
		if (max > 0 && v >= (unsigned long)max)
			return false;
	} while (!atomic_compare_exchange_weak(n, &v, v + 1));
	return true;
}

bool
server_reserve(struct listener *l)
{
	if (!server_take(&l->l_run->r_share->s_active,
	    l->l_max_connections))
		return false;
	if (!server_take(&server.s_nactive,
	    server.s_cfg->cf_max_connections)) {
		atomic_fetch_sub(&l->l_run->r_share->s_active, 1);
		return false;
	}
	atomic_fetch_add(&l->l_run->r_active, 1);
	/* Counted first, then checked: server_stop sets s_stopping, then
	 * reads s_nactive, and a reload sets r_closing, then reads r_active
	 * to retire the listener; so one of the two sees the other. */
	if (atomic_load(&server.s_stopping) ||
	    atomic_load(&l->l_run->r_closing)) {
		server_unreserve(l);
		return false;
	}
	return true;
}

void
server_unreserve(struct listener *l)
{
	atomic_fetch_sub(&l->l_run->r_active, 1);
	atomic_fetch_sub(&l->l_run->r_share->s_active, 1);
	/* The stop may be waiting for this very slot. */
	if (atomic_fetch_sub(&server.s_nactive, 1) == 1 &&
	    atomic_load(&server.s_stopping))
		ev_async_send(server.s_loop, &server.s_done_async);
}

void
server_request_begin(struct ssd_request *rq, struct lwatch *w)
{
	struct listener *l = rq->rq_listener;

	rq->rq_watch = w;
	rq->rq_started = ev_now(w->w_loop);
	stats_add(&l->l_stats->s_requests, 1);
	stats_add(&l->l_stats->s_in_progress, 1);
	pthread_mutex_lock(&server.s_done_mtx);
	TAILQ_INSERT_TAIL(&server.s_active, rq, rq_entry);
	pthread_mutex_unlock(&server.s_done_mtx);
	ssd_log(rq, LOG_DEBUG, "start");
	l->l_run->r_ops->dispatch(l, rq);
}

/* Frees a retired configuration once none of its requests is left. */
static void
server_retire(struct config *cf)
{
	struct listener *l;

	TAILQ_FOREACH(l, &cf->cf_listeners, l_entry)
		if (l->l_run != NULL && atomic_load(&l->l_run->r_active) != 0)
			return;
	TAILQ_REMOVE(&server.s_retired, cf, cf_entry);
	TAILQ_FOREACH(l, &cf->cf_listeners, l_entry) {
		if (l->l_run == NULL)
			continue;
		listener_close(l);
		l->l_run->r_ops->stop(l);
		listener_free_run(l);
	}
	handler_release(cf);
	log_debug("%s: the configuration before reload %p is released",
	    __func__, (void *)cf);
	config_free(cf);
}

void
server_swap(struct config *cf)
{
	struct config *old = server.s_cfg;

	server.s_cfg = cf;
	stats_reloaded();
	TAILQ_INSERT_TAIL(&server.s_retired, old, cf_entry);
	server_retire(old);
}

/* On the loop thread: account for a finished request and free it. */
static void
server_request_finish(struct ssd_request *rq)
{
	struct listener	*l = rq->rq_listener;
	struct lrun	*r = l->l_run;

	pthread_mutex_lock(&server.s_done_mtx);
	TAILQ_REMOVE(&server.s_active, rq, rq_entry);
	pthread_mutex_unlock(&server.s_done_mtx);
	stats_request_end(l->l_stats, ev_time() - rq->rq_started);
	if (rq->rq_source_counted)
		source_put(r->r_share->s_sources,
		    (struct sockaddr *)&rq->rq_peer);
	atomic_fetch_sub(&r->r_active, 1);
	atomic_fetch_sub(&r->r_share->s_active, 1);
	atomic_fetch_sub(&server.s_nactive, 1);
	/* A closed datagram socket waited for its last reply, from this
	 * configuration or an older one that shared the socket. */
	if (r->r_share->s_owner != NULL) {
		struct lrun *o = r->r_share->s_owner;

		if (o->r_closing && atomic_load(&r->r_share->s_active) == 0 &&
		    o->r_fd != -1 && o->r_ops->close == NULL) {
			close(o->r_fd);
			o->r_fd = -1;
		}
	}
	request_free(rq);
	if (l->l_config != server.s_cfg) {
		server_retire(l->l_config);	/* may free l */
		l = NULL;
	}
	if (server.s_stopping) {
		if (server.s_nactive == 0)
			ev_break(server.s_loop, EVBREAK_ALL);
		return;
	}
	if (server.s_cfg->cf_max_connections == 0 && l != NULL) {
		listener_resume(l);
		return;
	}
	/* A global cap, or a request of an older configuration whose
	 * socket a current listener shares: any listener may have been
	 * waiting for this. */
	TAILQ_FOREACH(l, &server.s_cfg->cf_listeners, l_entry)
		listener_resume(l);
}

void
server_request_done(struct ssd_request *rq)
{
	if (pthread_equal(pthread_self(), server.s_thread)) {
		server_request_finish(rq);
		return;
	}
	pthread_mutex_lock(&server.s_done_mtx);
	TAILQ_INSERT_TAIL(&server.s_done, rq, rq_entry2);
	pthread_mutex_unlock(&server.s_done_mtx);
	ev_async_send(server.s_loop, &server.s_done_async);
}

/* Runs on the loop: requests other threads finished. */
static void
server_done_cb(struct ev_loop *loop, ev_async *w, int revents)
{
	struct request_list	 done;
	struct ssd_request	*rq, *tmp;

	(void)w;
	(void)revents;
	TAILQ_INIT(&done);
	pthread_mutex_lock(&server.s_done_mtx);
	TAILQ_CONCAT(&done, &server.s_done, rq_entry2);
	pthread_mutex_unlock(&server.s_done_mtx);
	TAILQ_FOREACH_SAFE(rq, &done, rq_entry2, tmp)
		server_request_finish(rq);
	if (atomic_load(&server.s_stopping) &&
	    atomic_load(&server.s_nactive) == 0)
		ev_break(loop, EVBREAK_ALL);
}

static void
server_cut_all(void)
{
	struct ssd_request *rq;

	pthread_mutex_lock(&server.s_done_mtx);
	TAILQ_FOREACH(rq, &server.s_active, rq_entry)
		rq->rq_listener->l_run->r_ops->cut(rq);
	pthread_mutex_unlock(&server.s_done_mtx);
}

static void
server_drain_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)revents;
	if (server.s_cut) {
		log_warningx("%u requests did not end after being cut; "
		    "exiting anyway", atomic_load(&server.s_nactive));
		server_cut_all();	/* the second time is final */
		ev_break(loop, EVBREAK_ALL);
		return;
	}
	log_noticex("shutdown_timeout reached: cutting %u requests in "
	    "progress", atomic_load(&server.s_nactive));
	server.s_cut = true;
	server_cut_all();
	ev_timer_set(w, SERVER_CUT_GRACE, 0.);
	ev_timer_start(loop, w);
}

static void
server_stop(struct ev_loop *loop, const char *why)
{
	struct listener *l;

	if (server.s_stopping)
		return;
	server.s_stopping = true;
	TAILQ_FOREACH(l, &server.s_cfg->cf_listeners, l_entry)
		listener_close(l);
	sd_notifyf("STOPPING=1");
	log_noticex("%s: stopping; %u requests in progress", why,
	    atomic_load(&server.s_nactive));
	server_status();
	if (server.s_nactive == 0) {
		ev_break(loop, EVBREAK_ALL);
		return;
	}
	ev_timer_set(&server.s_drain, server.s_cfg->cf_shutdown_timeout, 0.);
	ev_timer_start(loop, &server.s_drain);
}

/* From the loop itself: a stuck loop stops the pings. */
static void
server_watchdog_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop;
	(void)w;
	(void)revents;
	sd_notifyf("WATCHDOG=1");
}

static void
server_watchdog_start(void)
{
	double period = sd_watchdog_period();

	if (period <= 0)
		return;
	ev_timer_init(&server.s_watchdog, server_watchdog_cb, 0., period / 2);
	ev_timer_again(server.s_loop, &server.s_watchdog);
	ev_unref(server.s_loop);
	log_infox("systemd watchdog: pinging every %gs", period / 2);
	sd_notifyf("WATCHDOG=1");
}

static void
server_signal_cb(struct ev_loop *loop, ev_signal *w, int revents)
{
	(void)revents;
	if (w->signum == SIGHUP) {
		if (!atomic_load(&server.s_stopping))
			reload_run();
		return;
	}
	server_stop(loop, w->signum == SIGTERM ? "SIGTERM" : "SIGINT");
}

int
server_init(struct config *cf)
{
	memset(&server, 0, sizeof(server));
	server.s_cfg = cf;
	TAILQ_INIT(&server.s_retired);
	server.s_thread = pthread_self();
	TAILQ_INIT(&server.s_done);
	TAILQ_INIT(&server.s_active);
	pthread_mutex_init(&server.s_done_mtx, NULL);
	ev_set_syserr_cb(server_syserr);
	/* Not the default loop: that one reaps every child with
	 * waitpid(-1), including those a handler waits for itself. */
	server.s_loop = ev_loop_new(EVFLAG_AUTO);
	if (server.s_loop == NULL) {
		log_errorx("cannot initialise the event loop (libev)");
		return -1;
	}
	signal(SIGPIPE, SIG_IGN);
	ev_signal_init(&server.s_sigterm, server_signal_cb, SIGTERM);
	ev_signal_init(&server.s_sigint, server_signal_cb, SIGINT);
	ev_signal_init(&server.s_sighup, server_signal_cb, SIGHUP);
	ev_signal_start(server.s_loop, &server.s_sigterm);
	ev_signal_start(server.s_loop, &server.s_sigint);
	ev_signal_start(server.s_loop, &server.s_sighup);
	ev_async_init(&server.s_done_async, server_done_cb);
	ev_async_start(server.s_loop, &server.s_done_async);
	ev_init(&server.s_drain, server_drain_cb);
	return 0;
}

int
server_bind(void)
{
	struct listener *l;

	server.s_ninherited = sd_listen_fds(&server.s_inherited);
	TAILQ_FOREACH(l, &server.s_cfg->cf_listeners, l_entry)
		if (listener_bind(l) == -1) {
			listener_inherited_release();
			return -1;
		}
	listener_inherited_release();
	return 0;
}

int
server_start_listener(struct listener *l)
{
	if (l->l_run->r_ops->start(l) == -1)
		return -1;
	listener_start(l);
	return 0;
}

void
server_warn_fork_threads(const struct config *cf)
{
	const struct listener	*l;
	bool			 fork = false, threads = false;

	TAILQ_FOREACH(l, &cf->cf_listeners, l_entry) {
		if (l->l_model == CONC_FORK)
			fork = true;
		else if (l->l_model != CONC_EVENT || l->l_workers > 1)
			threads = true;
	}
	if (fork && threads)
		log_warningx("fork listeners share this process with threads "
		    "(sync, thread, or workers > 1): a handler process forked "
		    "while another thread holds a C library lock (time zone, "
		    "syslog) can hang on it; run fork listeners in a "
		    "sockserverd of their own to rule that out");
}

int
server_start(void)
{
	struct listener *l;

	server_warn_fork_threads(server.s_cfg);
	TAILQ_FOREACH(l, &server.s_cfg->cf_listeners, l_entry)
		if (server_start_listener(l) == -1)
			return -1;
	return 0;
}

void
server_abort(void)
{
	struct listener *l;

	TAILQ_FOREACH(l, &server.s_cfg->cf_listeners, l_entry) {
		if (l->l_run == NULL)
			continue;
		listener_close(l);
		l->l_run->r_ops->stop(l);
		listener_free_run(l);
	}
}

int
server_run(void)
{
	struct listener *l;

	log_noticex("sockserverd %s started: %zu listeners", SSD_VERSION,
	    server.s_cfg->cf_nlisteners);
	sd_notifyf("READY=1\nMAINPID=%ld", (long)getpid());
	server_status();
	server_watchdog_start();
	ev_run(server.s_loop, 0);

	if (server.s_nactive != 0) {
		/* Threads still run handler code: do not free under them. */
		log_warningx("exiting with %u requests unfinished",
		    server.s_nactive);
		return EXIT_OK;
	}
	TAILQ_FOREACH(l, &server.s_cfg->cf_listeners, l_entry) {
		listener_close(l);
		l->l_run->r_ops->stop(l);
		listener_free_run(l);
	}
	while (!TAILQ_EMPTY(&server.s_retired))
		server_retire(TAILQ_FIRST(&server.s_retired));
	ev_loop_destroy(server.s_loop);
	server.s_loop = NULL;
	log_noticex("stopped");
	return EXIT_OK;
}
