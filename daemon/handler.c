/* SPDX-License-Identifier: ISC */
/*
 * handler.c - handler instances: resolve each listener's handler, call its
 * init with the listener's options, and fini again.  ssd_option_error lives
 * here because it only means something during init.  Never exits.
 */
#include <stdlib.h>

#include "daemon.h"

/* The diag that ssd_option_error reports to, set during init only. */
static __thread struct diag *handler_diag;
static __thread bool handler_init_failed_reported;

void
ssd_option_error(const config_setting_t *s, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	if (handler_diag != NULL && s != NULL)
		diag_vsetting(handler_diag, s, fmt, ap);
	else
		log_vlog(LOG_ERR, false, fmt, ap);
	va_end(ap);
	handler_init_failed_reported = true;
}

int
handler_prepare(struct config *cf, struct diag *d)
{
	struct listener	*l;
	char		 err[1024];
	size_t		 before = d->d_count;

	TAILQ_FOREACH(l, &cf->cf_listeners, l_entry) {
		const config_setting_t *where = l->l_handler_setting != NULL ?
		    l->l_handler_setting : l->l_setting;
		int rc = 0;

		l->l_handler = loader_open(l->l_handler_spec,
		    cf->cf_handler_dir, &l->l_dl, err, sizeof(err));
		if (l->l_handler == NULL) {
			diag_setting(d, where, "%s", err);
			continue;
		}
		if (l->l_handler->init == NULL) {
			if (l->l_options != NULL)
				diag_setting(d, l->l_options, "handler \"%s\" "
				    "takes no options", l->l_handler->name);
			l->l_inited = true;
			continue;
		}
		handler_diag = d;
		handler_init_failed_reported = false;
		rc = l->l_handler->init(&l->l_instance, l->l_options);
		handler_diag = NULL;
		if (rc != 0) {
			if (!handler_init_failed_reported)
				diag_setting(d, where, "handler \"%s\" failed to "
				    "initialise (init returned %d)",
				    l->l_handler->name, rc);
			l->l_instance = NULL;
			continue;
		}
		l->l_inited = true;
	}
	if (d->d_count == before)
		return 0;
	handler_release(cf);
	return -1;
}

void
handler_release(struct config *cf)
{
	struct listener *l;

	TAILQ_FOREACH(l, &cf->cf_listeners, l_entry) {
		if (l->l_inited && l->l_handler->fini != NULL)
			l->l_handler->fini(l->l_instance);
		l->l_inited = false;
		l->l_instance = NULL;
		l->l_handler = NULL;
		loader_close(l->l_dl);
		l->l_dl = NULL;
	}
}
