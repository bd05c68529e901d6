/* SPDX-License-Identifier: ISC */
/*
 * reload.c - SIGHUP.  The new configuration is read, validated and given
 * its handlers (plugin probes, init) on a thread of its own, so the loop
 * keeps serving and pinging the watchdog however long that takes.  Then,
 * on the loop, its sockets: a listener whose socket is unchanged (family,
 * type, address) keeps it, so its queued clients are never refused; new
 * ones are bound while the old still serve; one whose address an old
 * socket holds (127.0.0.1:P becoming *:P, a unix path changing type) is
 * rebound: the old socket lets go of the address first, and gets it back
 * if the bind fails.  Then the swap, in one step (server_swap).  On any
 * failure the running generation stays as it was, every problem logged
 * once, as FILE:LINE.  A SIGHUP during a reload runs another after it.
 */
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <time.h>

#include "server.h"

/* The reload thread: everything that may take long, off the loop. */
static void *
reload_thread_main(void *arg)
{
	char		*path = arg;
	struct config	*cf = NULL;

	if (config_load(path, &cf, &server.s_reload_diag) == 0)
		server.s_reload_gen = gen_new(cf, &server.s_reload_diag);
	free(path);
	/* Detached: the lock hands the result over, and the loop is not
	 * destroyed while this thread may still be in ev_async_send. */
	pthread_mutex_lock(&server.s_done_mtx);
	ev_async_send(server.s_loop, &server.s_reload_async);
	pthread_mutex_unlock(&server.s_done_mtx);
	return NULL;
}

static void
reload_notify_ready(bool ok, unsigned broken)
{
	if (ok && broken > 0)
		sd_notifyf("READY=1\nSTATUS=reloaded, but %u listeners are "
		    "not serving (see the log)", broken);
	else
		sd_notifyf("READY=1\nSTATUS=%s: serving %zu listeners",
		    ok ? "reloaded" :
		    "reload failed, previous configuration kept",
		    server.s_gen->g_cfg->cf_nlisteners);
}

/* The old socket that nl can keep: the same name first, then any one
 * not kept yet on that address ("port 0" is any free port: by name). */
static struct lsock *
reload_match(struct gen *old, struct gen *g, const struct listener *nl)
{
	for (int pass = 0; pass < 2; pass++) {
		if (pass == 1 && nl->l_family != AF_UNIX && nl->l_port == 0)
			break;
		for (size_t i = 0; i < old->g_nruns; i++) {
			struct lrun *o = &old->g_runs[i];

			if (o->r_sock != NULL && lsock_fits(o->r_sock, nl) &&
			    (pass == 1 || strcmp(o->r_listener->l_name,
			    nl->l_name) == 0) && !gen_uses(g, o->r_sock))
				return o->r_sock;
		}
	}
	return NULL;
}

/* The old socket, kept by no new listener, that holds nl's address
 * and can let go of it. */
static struct lsock *
reload_holder(struct gen *old, struct gen *g, const struct listener *nl)
{
	for (size_t i = 0; i < old->g_nruns; i++) {
		struct lsock *k = old->g_runs[i].r_sock;

		if (k == NULL || gen_uses(g, k) || k->k_shut || k->k_dead ||
		    !lsock_conflicts(k, nl))
			continue;
		/* A socket systemd passed keeps its address in systemd's
		 * copy: it cannot be rebound, only restarted.  A fork child
		 * answering a datagram holds the socket too. */
		if (k->k_inherited[0] != '\0' || (k->k_type == SOCK_DGRAM &&
		    old->g_runs[i].r_listener->l_model == CONC_FORK &&
		    atomic_load(&k->k_active) > 0))
			continue;
		return k;
	}
	return NULL;
}

static void
reload_error(const struct listener *l, const char *msg)
{
	log_errorx("%s:%d: listener %s: %s", l->l_config->cf_path,
	    config_setting_source_line(l->l_setting), l->l_name, msg);
}

/* Gives released socket k of old its address back after a failed
 * rebind; if even that fails, its listeners stop (logged) and no later
 * reload keeps the socket. */
static void
reload_restore(struct gen *old, struct lsock *k)
{
	char err[512];

	k->k_shut = false;
	if (lsock_restore_address(k, err, sizeof(err)) == 0) {
		for (size_t j = 0; j < old->g_nruns; j++)
			if (old->g_runs[j].r_sock == k)
				listener_refresh(&old->g_runs[j]);
		return;
	}
	log_errorx("%s cannot be bound again: %s; its listener is not "
	    "serving until a reload binds it", k->k_local, err);
	k->k_shut = k->k_dead = true;
	for (size_t j = 0; j < old->g_nruns; j++)
		if (old->g_runs[j].r_sock == k)
			listener_stop(&old->g_runs[j]);
}

int
reload_bind(struct gen *old, struct gen *g)
{
	struct lsock	**held = xcalloc(g->g_nruns, sizeof(*held));
	struct lsock	**released = xcalloc(g->g_nruns, sizeof(*released));
	size_t		 nreleased = 0;
	char		 err[512];
	int		 rc = -1;

	/* Kept sockets first, so that no new one is bound in their way. */
	for (size_t i = 0; i < g->g_nruns; i++) {
		struct lrun	*r = &g->g_runs[i];
		struct lsock	*k = reload_match(old, g, r->r_listener);

		if (k == NULL)
			continue;
		if (k->k_family == AF_INET6 &&
		    k->k_v6only != r->r_listener->l_v6only) {
			reload_error(r->r_listener, "v6only of a bound address "
			    "cannot change on reload; restart sockserverd");
			goto done;
		}
		server_open_run(r, k, NULL);
	}
	/* New ones while the old still serve; those whose address an old
	 * socket holds wait. */
	for (size_t i = 0; i < g->g_nruns; i++) {
		struct lrun	*r = &g->g_runs[i];
		bool		 in_use = false;

		if (r->r_sock != NULL)
			continue;
		if (server_open_run(r, NULL, &in_use) == 0)
			continue;
		if (in_use && (held[i] = reload_holder(old, g,
		    r->r_listener)) != NULL)
			continue;
		/* Someone else's: try again to report why. */
		if (!in_use || server_open_run(r, NULL, NULL) == -1)
			goto done;
	}
	/* Rebind: the old socket lets go of the address, the new one takes
	 * it; if it cannot, the old one gets it back. */
	for (size_t i = 0; i < g->g_nruns; i++) {
		struct lrun *r = &g->g_runs[i];

		if (held[i] == NULL)
			continue;
		if (!held[i]->k_shut) {
			if (lsock_release_address(held[i], err,
			    sizeof(err)) == -1) {
				reload_error(r->r_listener, err);
				goto done;
			}
			released[nreleased++] = held[i];
			held[i]->k_shut = true;
		}
		log_about(LOG_INFO, r->r_listener->l_name, NULL, "rebinding %s",
		    held[i]->k_local);
		if (server_open_run(r, NULL, NULL) == -1)
			goto done;
	}
	/* What can change on a kept socket, now that nothing can fail. */
	for (size_t i = 0; i < g->g_nruns; i++)
		if (gen_uses(old, g->g_runs[i].r_sock))
			lsock_adjust(g->g_runs[i].r_sock,
			    g->g_runs[i].r_listener);
	rc = 0;
done:
	if (rc == -1 && nreleased > 0) {
		/* The new sockets go first: one may hold an address that an
		 * old one needs back. */
		for (size_t i = 0; i < g->g_nruns; i++)
			if (g->g_runs[i].r_sock != NULL &&
			    !gen_uses(old, g->g_runs[i].r_sock))
				listener_stop(&g->g_runs[i]);
		for (size_t i = 0; i < nreleased; i++)
			reload_restore(old, released[i]);
	}
	free(held);
	free(released);
	return rc;
}

/* On the loop: the reload thread is done. */
static void
reload_done_cb(struct ev_loop *loop, ev_async *w, int revents)
{
	struct gen	*g;
	unsigned	 broken = 0;
	bool		 ok = false;

	(void)loop;
	(void)w;
	(void)revents;
	if (!server.s_reloading)
		return;
	pthread_mutex_lock(&server.s_done_mtx);	/* the thread's result */
	pthread_mutex_unlock(&server.s_done_mtx);
	server.s_reloading = false;
	g = server.s_reload_gen;
	server.s_reload_gen = NULL;
	if (atomic_load(&server.s_stopping)) {
		if (g != NULL)
			gen_unref(g);
		diag_fini(&server.s_reload_diag);
		server_check_done();
		return;
	}
	if (g == NULL) {
		diag_log(&server.s_reload_diag);
	} else if (reload_bind(server.s_gen, g) == -1) {
		gen_unref(g);		/* closes what it bound */
	} else {
		server_swap(g);
		for (size_t i = 0; i < g->g_nruns; i++)
			if (server_start_listener(&g->g_runs[i]) == -1) {
				log_about(LOG_ERR,
				    g->g_runs[i].r_listener->l_name, NULL,
				    "not serving: its concurrency model "
				    "could not start");
				broken++;
			}
		log_noticex("reloaded %s: %zu listeners", g->g_cfg->cf_path,
		    g->g_cfg->cf_nlisteners);
		ok = true;
	}
	if (!ok)
		log_errorx("reload failed: the previous configuration keeps "
		    "running");
	diag_fini(&server.s_reload_diag);
	reload_notify_ready(ok, broken);
	if (server.s_reload_again) {
		server.s_reload_again = false;
		reload_start();
	}
}

void
reload_init(void)
{
	ev_async_init(&server.s_reload_async, reload_done_cb);
	ev_async_start(server.s_loop, &server.s_reload_async);
	ev_unref(server.s_loop);
}

void
reload_start(void)
{
	const char	*path = server.s_gen->g_cfg->cf_path;
	char		*copy;
	pthread_attr_t	 attr;
	pthread_t	 thread;
	struct timespec	 ts;
	sigset_t	 all, old;
	int		 rc;

	if (server.s_reloading) {
		server.s_reload_again = true;
		log_noticex("SIGHUP: a reload is in progress; another follows");
		return;
	}
	clock_gettime(CLOCK_MONOTONIC, &ts);
	sd_notifyf("RELOADING=1\nMONOTONIC_USEC=%llu\nSTATUS=reloading %s",
	    (unsigned long long)ts.tv_sec * 1000000ULL +
	    (unsigned long long)ts.tv_nsec / 1000, path);
	log_noticex("SIGHUP: reloading %s", path);
	diag_init(&server.s_reload_diag);
	server.s_reload_gen = NULL;
	/* Signals belong to the loop thread. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	copy = xstrdup(path);
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	rc = pthread_create(&thread, &attr, reload_thread_main,
	    copy);
	pthread_attr_destroy(&attr);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc != 0) {
		free(copy);
		log_errorx("reload failed: cannot start a thread: %s",
		    strerror(rc));
		diag_fini(&server.s_reload_diag);
		reload_notify_ready(false, 0);
		return;
	}
	server.s_reloading = true;
}
