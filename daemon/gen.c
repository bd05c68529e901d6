/* SPDX-License-Identifier: ISC */
/*
 * gen.c - generations: the runtime of one configuration, and the one
 * ownership model of the daemon across reloads (nginx's cycle: a new
 * generation is built beside the old, and the old is freed when its last
 * request ends).  Nothing here binds, accepts or reads a request.
 *
 *   struct config      parsed settings; immutable; owned by its gen
 *   struct gen         one configuration's runtime: an lrun per listener
 *                      (handler instance, plugin reference, model state,
 *                      loops and threads, counters), refcounted (g_refs):
 *                        +1 server.s_gen while it is the current one
 *                        +1 reload while it prepares or applies it
 *                        +1 each request in progress (server_reserve)
 *                        +1 each event-worker loop while it accepts
 *                      The last gen_unref, from any thread, retires it
 *                      on the main thread, exactly once: models stopped
 *                      (threads joined), handlers' fini, plugins closed,
 *                      sockets unreferenced, config freed.
 *   struct lsock       a listening socket (listener.c), shared by the
 *                      gens that keep it; refcounted (k_refs, atomic):
 *                        +1 each lrun serving it, until listener_stop
 *                        +1 each event-worker loop watching it
 *                        +1 each request that came from it
 *                      The last lsock_unref, any thread, closes it: a
 *                      datagram reply always has its socket, and a
 *                      socket no listener serves closes with its last
 *                      request.  lsock_shut (main, when no current gen
 *                      serves it) removes the unix file and lets go of
 *                      a stream socket at once.
 *   struct source_table per-source counts and rate buckets (source.c),
 *                      owned by its lsock (k_sources) and freed with it:
 *                      kept across a reload with the socket, while the
 *                      new settings are applied to it (lsock_adjust);
 *                      its own mutex, since any accepting loop or
 *                      request thread takes and any thread gives back.
 *                      With worker_processes it is in shared memory once
 *                      a listener of the socket has per-source rules:
 *                      each process unmaps its own mapping with its lsock
 *                      (source.c), and each worker's ledger of what it
 *                      holds belongs to its struct wproc (worker.c).
 *                      With worker_processes, the supervisor's gens
 *                      have no handler instance (g_prepared false:
 *                      each worker prepares its copy after the fork),
 *                      and hold +1 per worker process running them, until
 *                      that process is reaped (worker.c).
 *   struct ssd_request holds a reference on its gen (and so on its
 *                      lrun) and on its lsock until server_request_done's
 *                      work on the main thread.
 *   TLS contexts       (struct tls_ctx, tls.c) belong to the listener's
 *                      settings in the config, built by config_load and
 *                      freed by config_free; a request's SSL object
 *                      (rq_tls) is its own, freed by request_close on
 *                      its thread, and its gen keeps the contexts (and
 *                      their SNI and ALPN callbacks' data) alive as long.
 *   thread stacks      (struct conc_thread_stack, conc_thread.c) belong to
 *                      the thread model, not to a gen: a request's thread
 *                      runs on one and hands it back (ct_ended) as its
 *                      request ends; the main loop joins the thread, then
 *                      keeps the stack for a later thread (16 at most) or
 *                      unmaps it; conc_thread_fini joins and unmaps all.
 *
 * Worker threads read only what a reference keeps alive and what is
 * immutable (the config) or atomic (counters, r_closing, s_stopping).
 */
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "server.h"

/* g's runtime before its handlers: one lrun per listener, no instance. */
static struct gen *
gen_alloc(struct config *cf)
{
	struct gen		*g = xcalloc(1, sizeof(*g));
	const struct listener	*l;

	g->g_cfg = cf;
	g->g_nruns = cf->cf_nlisteners;
	g->g_runs = xcalloc(g->g_nruns, sizeof(*g->g_runs));
	atomic_init(&g->g_refs, 1);
	TAILQ_FOREACH(l, &cf->cf_listeners, l_entry) {
		struct lrun *r = &g->g_runs[l->l_index];

		r->r_gen = g;
		r->r_listener = l;
		atomic_init(&r->r_closing, false);
		atomic_init(&r->r_epoch, 0);
		switch (l->l_model) {
		case CONC_SYNC:
			r->r_ops = &conc_sync_ops;
			break;
		case CONC_THREAD:
			r->r_ops = &conc_thread_ops;
			break;
		case CONC_FORK:
			r->r_ops = &conc_fork_ops;
			break;
		case CONC_EVENT:
			r->r_ops = l->l_workers > 1 ?
			    &conc_event_workers_ops : &conc_event_ops;
			break;
		}
	}
	return g;
}

int
gen_prepare(struct gen *g, struct diag *d)
{
	struct hinst *hi = xcalloc(g->g_nruns, sizeof(*hi));

	if (handler_prepare(g->g_cfg, hi, d) == -1) {
		free(hi);
		return -1;
	}
	for (size_t i = 0; i < g->g_nruns; i++)
		g->g_runs[i].r_hi = hi[i];
	free(hi);
	g->g_prepared = true;
	return 0;
}

struct gen *
gen_new(struct config *cf, struct diag *d)
{
	struct gen *g = gen_alloc(cf);

	if (gen_prepare(g, d) == -1) {
		free(g->g_runs);
		free(g);
		config_free(cf);
		return NULL;
	}
	return g;
}

struct gen *
gen_new_checked(struct config *cf, struct diag *d)
{
	if (handler_check(cf, d) == -1) {
		config_free(cf);
		return NULL;
	}
	return gen_alloc(cf);
}

void
gen_ref(struct gen *g)
{
	SSD_ASSERT(atomic_fetch_add(&g->g_refs, 1) > 0);
}

bool
gen_uses(const struct gen *g, const struct lsock *k)
{
	for (size_t i = 0; g != NULL && i < g->g_nruns; i++)
		if (g->g_runs[i].r_sock == k)
			return true;
	return false;
}

void
gen_stop_accepting(struct gen *g)
{
	for (size_t i = 0; i < g->g_nruns; i++)
		if (g->g_runs[i].r_sock != NULL)
			listener_stop(&g->g_runs[i]);
}

/* The last reference is gone: on the main thread, exactly once. */
static void
gen_retire(struct gen *g)
{
	struct hinst	*hi = xcalloc(g->g_nruns, sizeof(*hi));
	bool		 linked = g->g_id != 0;

	for (size_t i = 0; i < g->g_nruns; i++) {
		struct lrun *r = &g->g_runs[i];

		if (r->r_sock != NULL)
			listener_stop(r);
		if (r->r_started)
			r->r_ops->stop(r);
		listener_watch_fini(&r->r_watch);
		hi[i] = r->r_hi;
	}
	if (g->g_prepared)
		handler_release(g->g_cfg, hi);
	free(hi);
	if (linked)
		TAILQ_REMOVE(&server.s_gens, g, g_entry);
	log_debug("%s: the configuration before reload #%u is released",
	    __func__, g->g_id);
	config_free(g->g_cfg);
	free(g->g_runs);
	free(g);
	if (linked)
		server_check_done();
}

void
gen_unref(struct gen *g)
{
	unsigned was = atomic_fetch_sub(&g->g_refs, 1);

	SSD_ASSERT(was > 0);
	if (was != 1)
		return;
	if (server.s_loop == NULL ||
	    pthread_equal(pthread_self(), server.s_thread)) {
		gen_retire(g);
		return;
	}
	/* An event worker let go last: the main thread retires g. */
	pthread_mutex_lock(&server.s_done_mtx);
	TAILQ_INSERT_TAIL(&server.s_dead, g, g_dead);
	ev_async_send(server.s_loop, &server.s_done_async);
	pthread_mutex_unlock(&server.s_done_mtx);
}

void
gen_reap(void)
{
	struct gen_list	 dead;
	struct gen	*g;

	TAILQ_INIT(&dead);
	pthread_mutex_lock(&server.s_done_mtx);
	TAILQ_CONCAT(&dead, &server.s_dead, g_dead);
	pthread_mutex_unlock(&server.s_done_mtx);
	while ((g = TAILQ_FIRST(&dead)) != NULL) {
		TAILQ_REMOVE(&dead, g, g_dead);
		gen_retire(g);
	}
}
