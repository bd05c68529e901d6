/* SPDX-License-Identifier: ISC */
/*
 * reload.c - SIGHUP: read, validate and prepare the whole new configuration
 * (handlers initialised, new sockets bound) before anything changes, then
 * swap in one step.  A listener whose socket is unchanged (family, type,
 * address, port) keeps it, so its queued clients are never refused; new
 * ones are bound before removed ones close; removed ones finish their
 * requests.  On any failure the running configuration stays as it was and
 * every problem is logged as FILE:LINE.
 */
#include <errno.h>
#include <string.h>
#include <time.h>

#include "server.h"

/* The old listener whose socket nl can keep, claimed in claimed[]. */
static struct listener *
reload_match(struct config *old, const struct listener *nl,
    struct listener **claimed, size_t nold)
{
	struct listener	*l;
	size_t		 i;

	/* The same name first, then any unclaimed one on that address; but
	 * "port 0" is any free port, not an address: by name only. */
	for (int pass = 0; pass < 2; pass++) {
		if (pass == 1 && nl->l_family != AF_UNIX && nl->l_port == 0)
			break;
		i = 0;
		TAILQ_FOREACH(l, &old->cf_listeners, l_entry) {
			if (claimed[i] == NULL && listener_same_socket(l, nl) &&
			    (pass == 1 || strcmp(l->l_name, nl->l_name) == 0))
				return l;
			if (++i == nold)
				break;
		}
	}
	return NULL;
}

static size_t
reload_index(struct config *cf, const struct listener *want)
{
	struct listener	*l;
	size_t		 i = 0;

	TAILQ_FOREACH(l, &cf->cf_listeners, l_entry) {
		if (l == want)
			return i;
		i++;
	}
	SSD_ASSERT(0);
	return 0;
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
		    server.s_cfg->cf_nlisteners);
}

void
reload_run(void)
{
	struct config	*old = server.s_cfg, *cf = NULL;
	struct listener	*l, *o, **from = NULL, **claimed = NULL;
	struct diag	 d;
	struct timespec	 ts;
	size_t		 i, nold = old->cf_nlisteners;
	unsigned	 broken = 0;
	bool		 ok = false;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	sd_notifyf("RELOADING=1\nMONOTONIC_USEC=%llu\nSTATUS=reloading %s",
	    (unsigned long long)ts.tv_sec * 1000000ULL +
	    (unsigned long long)ts.tv_nsec / 1000, old->cf_path);
	log_noticex("SIGHUP: reloading %s", old->cf_path);

	diag_init(&d);
	if (config_load(old->cf_path, &cf, &d) == -1 ||
	    handler_prepare(cf, &d) == -1) {
		diag_log(&d);
		goto fail;
	}
	/* Which new listener keeps which old socket; refuse what a bound
	 * socket cannot become. */
	from = xcalloc(cf->cf_nlisteners, sizeof(*from));
	claimed = xcalloc(nold + 1, sizeof(*claimed));
	i = 0;
	TAILQ_FOREACH(l, &cf->cf_listeners, l_entry) {
		o = reload_match(old, l, claimed, nold);
		if (o != NULL && o->l_family == AF_INET6 &&
		    o->l_v6only != l->l_v6only) {
			log_errorx("%s:%d: listener %s: v6only of a bound "
			    "address cannot change on reload; restart "
			    "sockserverd", cf->cf_path,
			    config_setting_source_line(l->l_setting),
			    l->l_name);
			goto fail;
		}
		if (o != NULL)
			claimed[reload_index(old, o)] = l;
		from[i++] = o;
	}
	/* Bind what is new while the old listeners still serve. */
	i = 0;
	TAILQ_FOREACH(l, &cf->cf_listeners, l_entry)
		if (from[i++] == NULL && listener_bind(l) == -1)
			goto fail;

	/* Nothing below can fail: the swap. */
	i = 0;
	TAILQ_FOREACH(o, &old->cf_listeners, l_entry) {
		if (claimed[i++] != NULL)
			listener_detach(o);
		else
			listener_close(o);
	}
	i = 0;
	TAILQ_FOREACH(l, &cf->cf_listeners, l_entry) {
		if (from[i] != NULL)
			listener_adopt(l, from[i]);
		i++;
	}
	server_swap(cf);
	server_warn_fork_threads(cf);
	TAILQ_FOREACH(l, &cf->cf_listeners, l_entry)
		if (server_start_listener(l) == -1) {
			log_errorx("listener=%s: not serving: its concurrency "
			    "model could not start", l->l_name);
			broken++;
		}
	log_noticex("reloaded %s: %zu listeners", cf->cf_path,
	    cf->cf_nlisteners);
	cf = NULL;
	ok = true;
fail:
	if (cf != NULL) {
		TAILQ_FOREACH(l, &cf->cf_listeners, l_entry)
			if (l->l_run != NULL) {
				listener_close(l);
				listener_free_run(l);
			}
		handler_release(cf);
		config_free(cf);
	}
	if (!ok)
		log_errorx("reload failed: the previous configuration keeps "
		    "running");
	free(from);
	free(claimed);
	diag_fini(&d);
	reload_notify_ready(ok, broken);
}
