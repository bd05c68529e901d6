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
		    atomic_load(&server.s_nactive));
	else
		sd_notifyf("STATUS=serving %zu listeners",
		    server.s_gen->g_cfg->cf_nlisteners);
}

bool
server_can_accept(const struct lrun *r)
{
	long gmax = r->r_gen->g_cfg->cf_max_connections;
	long lmax = r->r_listener->l_max_connections;

	if (atomic_load(&server.s_stopping) || atomic_load(&r->r_closing))
		return false;
	if (server.s_worker != 0)
		return !worker_is_capped(r->r_sock, lmax, gmax) &&
		    r->r_ops->can_accept(r);
	if (lmax > 0 && atomic_load(&r->r_sock->k_active) >= lmax)
		return false;
	if (gmax > 0 && atomic_load(&server.s_nactive) >= gmax)
		return false;
	return r->r_ops->can_accept(r);
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
server_reserve(struct lrun *r)
{
	long lmax = r->r_listener->l_max_connections;
	long gmax = r->r_gen->g_cfg->cf_max_connections;

	/* A worker process: the caps hold across all workers. */
	if (server.s_worker != 0) {
		if (!worker_take(r->r_sock, lmax, gmax))
			return false;
		lmax = gmax = 0;
	}
	if (!server_take(&r->r_sock->k_active, lmax)) {
		if (server.s_worker != 0)
			worker_give(r->r_sock);
		return false;
	}
	if (!server_take(&server.s_nactive, gmax)) {
		atomic_fetch_sub(&r->r_sock->k_active, 1);
		if (server.s_worker != 0)
			worker_give(r->r_sock);
		return false;
	}
	gen_ref(r->r_gen);
	lsock_ref(r->r_sock);
	/* Counted first, then checked: server_stop sets s_stopping, then
	 * reads s_nactive; so one of the two sees the other. */
	if (atomic_load(&server.s_stopping) ||
	    atomic_load(&r->r_closing)) {
		server_unreserve(r);
		return false;
	}
	return true;
}

void
server_unreserve(struct lrun *r)
{
	if (server.s_worker != 0)
		worker_give(r->r_sock);
	atomic_fetch_sub(&r->r_sock->k_active, 1);
	/* The stop may be waiting for this very slot. */
	if (atomic_fetch_sub(&server.s_nactive, 1) == 1 &&
	    atomic_load(&server.s_stopping))
		ev_async_send(server.s_loop, &server.s_done_async);
	lsock_unref(r->r_sock);		/* the caller still holds one */
	gen_unref(r->r_gen);
}

void
server_request_begin(struct ssd_request *rq, struct lwatch *w)
{
	struct lrun *r = rq->rq_run;

	rq->rq_watch = w;
	rq->rq_started = ev_now(w->w_loop);
	stats_add(&r->r_stats->s_requests, 1);
	stats_add(&r->r_stats->s_in_progress, 1);
	pthread_mutex_lock(&server.s_done_mtx);
	TAILQ_INSERT_TAIL(&server.s_active, rq, rq_entry);
	pthread_mutex_unlock(&server.s_done_mtx);
	ssd_log(rq, LOG_DEBUG, "start");
	r->r_ops->dispatch(r, rq);
}

void
server_check_done(void)
{
	if (server.s_loop == NULL)	/* the supervisor: no loop */
		return;
	if (atomic_load(&server.s_stopping) &&
	    atomic_load(&server.s_nactive) == 0 &&
	    TAILQ_EMPTY(&server.s_gens) && !server.s_reloading)
		ev_break(server.s_loop, EVBREAK_ALL);
}

/* Starts every current listener that may accept again. */
static void
server_resume_all(void)
{
	if (server.s_gen == NULL)
		return;
	for (size_t i = 0; i < server.s_gen->g_nruns; i++)
		listener_resume(&server.s_gen->g_runs[i]);
}

/* On the loop thread: account for a finished request and free it. */
static void
server_request_finish(struct ssd_request *rq)
{
	struct lrun	*r = rq->rq_run;
	struct gen	*g = r->r_gen;
	bool		 current = g == server.s_gen;

	stats_request_end(r->r_stats, ev_time() - rq->rq_started);
	source_put(rq->rq_sock->k_sources, &rq->rq_source_key);
	if (server.s_worker != 0)
		worker_give(rq->rq_sock);
	atomic_fetch_sub(&rq->rq_sock->k_active, 1);
	atomic_fetch_sub(&server.s_nactive, 1);
	lsock_unref(rq->rq_sock);
	request_free(rq);
	if (server.s_stopping) {
		gen_unref(g);
		server_check_done();
		return;
	}
	/* A global cap, or a request of an older generation whose socket a
	 * current listener shares: any listener may have been waiting. */
	if (current && g->g_cfg->cf_max_connections == 0)
		listener_resume(r);
	else
		server_resume_all();
	gen_unref(g);		/* may retire g, and r with it */
}

void
server_request_done(struct ssd_request *rq)
{
	/* Out of the cut's reach first, then the connection is closed by
	 * the thread that served it: no other thread ever touches its
	 * descriptor once its number may be reused. */
	pthread_mutex_lock(&server.s_done_mtx);
	TAILQ_REMOVE(&server.s_active, rq, rq_entry);
	pthread_mutex_unlock(&server.s_done_mtx);
	request_close(rq);
	if (pthread_equal(pthread_self(), server.s_thread)) {
		server_request_finish(rq);
		return;
	}
	/* Under the lock: the loop is destroyed only after taking it, so
	 * no thread is still inside ev_async_send then. */
	pthread_mutex_lock(&server.s_done_mtx);
	TAILQ_INSERT_TAIL(&server.s_done, rq, rq_entry2);
	ev_async_send(server.s_loop, &server.s_done_async);
	pthread_mutex_unlock(&server.s_done_mtx);
}

/* Runs on the loop: requests other threads finished, generations other
 * threads let go of. */
static void
server_done_cb(struct ev_loop *loop, ev_async *w, int revents)
{
	struct request_list	 done;
	struct ssd_request	*rq, *tmp;

	(void)loop;
	(void)w;
	(void)revents;
	TAILQ_INIT(&done);
	pthread_mutex_lock(&server.s_done_mtx);
	TAILQ_CONCAT(&done, &server.s_done, rq_entry2);
	pthread_mutex_unlock(&server.s_done_mtx);
	TAILQ_FOREACH_SAFE(rq, &done, rq_entry2, tmp)
		server_request_finish(rq);
	conc_thread_reap();
	gen_reap();
	server_check_done();
}

static void
server_cut_all(void)
{
	struct ssd_request *rq;

	pthread_mutex_lock(&server.s_done_mtx);
	TAILQ_FOREACH(rq, &server.s_active, rq_entry)
		rq->rq_run->r_ops->cut(rq);
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

void
server_let_go(struct gen *old, const struct gen *g)
{
	for (size_t i = 0; i < old->g_nruns; i++) {
		struct lsock *k = old->g_runs[i].r_sock;

		if (k != NULL && !gen_uses(g, k) &&
		    !atomic_load(&old->g_runs[i].r_closing))
			lsock_shut(k);
	}
	gen_stop_accepting(old);	/* drops old's socket references */
}

static void
server_stop(struct ev_loop *loop, const char *why)
{
	struct gen	*g = server.s_gen;
	double		 timeout;

	/* A second SIGTERM (a worker told to drain, then to stop). */
	if (server.s_stopping)
		return;
	timeout = g->g_cfg->cf_shutdown_timeout;
	atomic_store(&server.s_stopping, true);
	server_let_go(g, NULL);
	sd_notifyf("STOPPING=1");
	log_msg(server.s_worker != 0 ? LOG_INFO : LOG_NOTICE,
	    "%s: stopping; %u requests in progress", why,
	    atomic_load(&server.s_nactive));
	server_status();
	server.s_gen = NULL;
	gen_unref(g);
	ev_timer_set(&server.s_drain, timeout, 0.);
	ev_timer_start(loop, &server.s_drain);
	server_check_done();
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
			reload_start();
		return;
	}
	server_stop(loop, w->signum == SIGTERM ? "SIGTERM" : "SIGINT");
}

/* fork(2) with other threads running: no lock of ours may be held by
 * another thread in the child (see also log.c and source.c). */
static void
server_atfork_prepare(void)
{
	pthread_mutex_lock(&server.s_done_mtx);
}

static void
server_atfork_release(void)
{
	pthread_mutex_unlock(&server.s_done_mtx);
}

void
server_init_state(int cli_level)
{
	memset(&server, 0, sizeof(server));
	server.s_cli_level = cli_level;
	TAILQ_INIT(&server.s_gens);
	TAILQ_INIT(&server.s_dead);
	server.s_thread = pthread_self();
	TAILQ_INIT(&server.s_done);
	TAILQ_INIT(&server.s_active);
	pthread_mutex_init(&server.s_done_mtx, NULL);
}

int
server_init(int cli_level)
{
	static bool atfork_done;

	server_init_state(cli_level);
	if (!atfork_done) {
		pthread_atfork(server_atfork_prepare, server_atfork_release,
		    server_atfork_release);
		atfork_done = true;
	}
	ev_set_syserr_cb(server_syserr);
	/* Not the default loop: that one reaps every child with
	 * waitpid(-1), including those a handler waits for itself. */
	server.s_loop = ev_loop_new(EVFLAG_AUTO | EVFLAG_SIGNALFD);
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
	reload_init();
	return 0;
}

void
server_apply_logging(const struct config *cf)
{
	enum log_target target = cf->cf_log_target;

	/* Detached (-D) with stderr: syslog, as at start. */
	if (server.s_detached && target == LOG_TARGET_STDERR)
		target = LOG_TARGET_SYSLOG;
	log_init(server.s_cli_level != -1 ? server.s_cli_level :
	    cf->cf_log_level, target);
}

void
server_link(struct gen *g)
{
	g->g_id = ++server.s_ngen;
	TAILQ_INSERT_TAIL(&server.s_gens, g, g_entry);
	server.s_gen = g;
}

void
server_adopt(struct gen *g)
{
	TAILQ_INSERT_TAIL(&server.s_gens, g, g_entry);
	server.s_gen = g;
}

int
server_bind(struct gen *g)
{
	int rc = 0;

	server.s_ninherited = sd_listen_fds(&server.s_inherited);
	for (size_t i = 0; i < g->g_nruns && rc == 0; i++)
		rc = server_open_run(&g->g_runs[i], NULL, NULL);
	listener_inherited_release();
	server_link(g);
	return rc;
}

int
server_open_run(struct lrun *r, struct lsock *kept, bool *in_use_r)
{
	const struct listener	*l = r->r_listener;
	/* The supervisor of worker processes loads no handler. */
	const char		*hname = r->r_hi.i_handler != NULL ?
	    r->r_hi.i_handler->name : l->l_handler_spec;
	char			 err[512];
	bool			 in_use;

	r->r_stats = stats_get(l->l_name);
	if (kept != NULL) {
		lsock_ref(kept);
		r->r_sock = kept;
		log_about(LOG_INFO, l->l_name, NULL, "keeps its socket %s (%s, %s, "
		    "handler %s)", kept->k_local, l->l_type == SOCK_STREAM ?
		    "stream" : "dgram", r->r_ops->name, hname);
		return 0;
	}
	if ((r->r_sock = lsock_open(l, &in_use, err, sizeof(err))) == NULL) {
		if (in_use_r != NULL && in_use)
			*in_use_r = true;
		else
			log_errorx("%s:%d: listener %s: %s",
			    l->l_config->cf_path,
			    config_setting_source_line(l->l_setting),
			    l->l_name, err);
		return -1;
	}
	log_about(LOG_INFO, l->l_name, NULL, "listening on %s (%s, %s, handler "
	    "%s%s%s%s)", r->r_sock->k_local, l->l_type == SOCK_STREAM ?
	    "stream" : "dgram", r->r_ops->name, hname,
	    r->r_sock->k_inherited[0] != '\0' ? ", inherited socket \"" : "",
	    r->r_sock->k_inherited, r->r_sock->k_inherited[0] != '\0' ?
	    "\"" : "");
	return 0;
}

int
server_start_listener(struct lrun *r)
{
	if (r->r_ops->start(r) == -1)
		return -1;
	r->r_started = true;
	listener_start(r);
	return 0;
}

int
server_start(void)
{
	struct gen *g = server.s_gen;

	for (size_t i = 0; i < g->g_nruns; i++)
		if (server_start_listener(&g->g_runs[i]) == -1)
			return -1;
	return 0;
}

void
server_swap(struct gen *g)
{
	struct gen *old = server.s_gen;

	server_link(g);
	stats_reloaded();
	server_apply_logging(g->g_cfg);
	server_let_go(old, g);
	gen_unref(old);
}

static void
server_abort_timeout_cb(int revents, void *arg)
{
	(void)revents;
	*(bool *)arg = true;
}

void
server_abort(void)
{
	struct gen	*g = server.s_gen;
	bool		 late = false;

	if (g == NULL)
		return;
	server_let_go(g, NULL);
	server.s_gen = NULL;
	gen_unref(g);
	/* Event workers let go on their own threads, and the loop retires
	 * the generation then: run it until that happened (or 5 s). */
	ev_once(server.s_loop, -1, 0, 5.0, server_abort_timeout_cb, &late);
	while (!TAILQ_EMPTY(&server.s_gens) && !late)
		ev_run(server.s_loop, EVRUN_ONCE);
}

int
server_run(void)
{
	if (server.s_worker != 0)
		log_infox("worker %d (pid %ld) serving %zu listeners",
		    server.s_worker - 1, (long)getpid(),
		    server.s_gen->g_cfg->cf_nlisteners);
	else
		log_noticex("sockserverd %s started: %zu listeners",
		    SSD_VERSION, server.s_gen->g_cfg->cf_nlisteners);
	sd_notifyf("READY=1\nMAINPID=%ld", (long)getpid());
	server_status();
	server_watchdog_start();
	ev_run(server.s_loop, 0);

	if (atomic_load(&server.s_nactive) != 0 ||
	    !TAILQ_EMPTY(&server.s_gens) || server.s_reloading) {
		/* Threads still run handler code: do not free under them. */
		log_warningx("exiting with %u requests unfinished",
		    atomic_load(&server.s_nactive));
		return EXIT_OK;
	}
	conc_event_fini();
	conc_thread_fini();
	/* The last thread to post a finished request has left the lock
	 * (and ev_async_send) once we hold it. */
	pthread_mutex_lock(&server.s_done_mtx);
	pthread_mutex_unlock(&server.s_done_mtx);
	ev_loop_destroy(server.s_loop);
	server.s_loop = NULL;
	if (server.s_worker == 0)
		log_noticex("stopped");
	return EXIT_OK;
}
