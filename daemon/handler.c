/* SPDX-License-Identifier: ISC */
/*
 * handler.c - handler instances: resolve each listener's handler, call its
 * init with the listener's options, and fini again.  ssd_option_error lives
 * here because it only means something during init.  Never exits.
 */
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "daemon.h"

/* The diag that ssd_option_error reports to, set during init only. */
static __thread struct diag *handler_diag;
/* Where a problem without a setting of its own is reported: the
 * listener's handler setting. */
static __thread const config_setting_t *handler_where;
static __thread bool handler_init_failed_reported;

void
ssd_option_error(const config_setting_t *s, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	if (s == NULL)
		s = handler_where;
	if (handler_diag != NULL && s != NULL)
		diag_vsetting(handler_diag, s, fmt, ap);
	else
		log_vlog(LOG_ERR, false, fmt, ap);
	va_end(ap);
	handler_init_failed_reported = true;
}

/* Seconds a plugin may take to load and initialise in the probe. */
#define HANDLER_PROBE_TIMEOUT	10

/* Child: load, init and fini l's plugin; report to fd; exit. */
static void __attribute__((noreturn))
handler_probe_child(const struct listener *l, const struct diag *pd, int fd,
    bool whole)
{
	const struct ssd_handler	*h;
	const config_setting_t		*where = l->l_handler_setting != NULL ?
	    l->l_handler_setting : l->l_setting;
	struct diag			 d;
	void				*dl, *instance = NULL;
	char				 err[1024];
	int				 rc;
	sigset_t			 none;

	/* Forked by the reload thread, which blocks every signal: a
	 * crash or the alarm must end the probe. */
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	/* Nothing of the daemon's but the pipe: a client connection held
	 * here would stay open (no EOF) until the probe ends. */
	if (fd != STDERR_FILENO + 1) {
		if (dup2(fd, STDERR_FILENO + 1) == -1)
			_exit(2);
		fd = STDERR_FILENO + 1;
	}
	priv_closefrom(fd + 1);
	log_reset_fds();
	alarm(HANDLER_PROBE_TIMEOUT);
	diag_init(&d);
	d.d_incdir = pd->d_incdir != NULL ? xstrdup(pd->d_incdir) : NULL;
	d.d_main = pd->d_main != NULL ? xstrdup(pd->d_main) : NULL;
	h = loader_open(l->l_handler_spec, l->l_config->cf_handler_dir, &dl,
	    err, sizeof(err));
	if (h == NULL)
		diag_setting(&d, where, "%s", err);
	else if (h->init == NULL && whole && l->l_options != NULL)
		diag_setting(&d, l->l_options, "handler \"%s\" takes no "
		    "options", h->name);
	else if (h->init != NULL) {
		handler_where = where;
		handler_diag = &d;
		handler_init_failed_reported = false;
		rc = h->init(&instance, l->l_options);
		handler_diag = NULL;
		if (rc != 0 && !handler_init_failed_reported)
			diag_setting(&d, where, "handler \"%s\" failed to "
			    "initialise (init returned %d)", h->name, rc);
		if (rc == 0 && h->fini != NULL)
			h->fini(instance);
	}
	for (size_t i = 0; i < d.d_count; i++) {
		size_t n = strlen(d.d_msgs[i]);

		if (write(fd, d.d_msgs[i], n) != (ssize_t)n ||
		    write(fd, "\n", 1) != 1)
			_exit(2);
	}
	_exit(d.d_count > 0 ? 1 : 0);
}

/*
 * Loads and initialises a plugin in a short-lived child first, so that a
 * plugin whose constructor or init crashes or hangs is reported at its
 * FILE:LINE instead of taking the daemon (or a reload) down.  0 if the
 * probe passed, -1 with the problems added to d.
 */
static int
handler_probe(const struct listener *l, struct diag *d, bool whole)
{
	const config_setting_t	*where = l->l_handler_setting != NULL ?
	    l->l_handler_setting : l->l_setting;
	char			 buf[8192];
	size_t			 len = 0, before = d->d_count;
	ssize_t			 n;
	pid_t			 pid;
	int			 p[2], st = 0;

	if (pipe2(p, O_CLOEXEC) == -1) {
		diag_setting(d, where, "cannot check handler \"%s\": pipe: %s",
		    l->l_handler_spec, strerror(errno));
		return -1;
	}
	fflush(NULL);
	if ((pid = fork()) == -1) {
		diag_setting(d, where, "cannot check handler \"%s\": fork: %s",
		    l->l_handler_spec, strerror(errno));
		close(p[0]);
		close(p[1]);
		return -1;
	}
	if (pid == 0) {
		close(p[0]);
		handler_probe_child(l, d, p[1], whole);
	}
	close(p[1]);
	while (len < sizeof(buf) - 1 &&
	    ((n = read(p[0], buf + len, sizeof(buf) - 1 - len)) > 0 ||
	    (n == -1 && errno == EINTR)))
		if (n > 0)
			len += (size_t)n;
	close(p[0]);
	buf[len] = '\0';
	while (waitpid(pid, &st, 0) == -1 && errno == EINTR)
		continue;
	if (WIFSIGNALED(st))
		loader_private_cleanup(pid);
	for (char *line = buf, *nl; *line != '\0'; line = nl) {
		if ((nl = strchr(line, '\n')) != NULL)
			*nl++ = '\0';
		else
			nl = line + strlen(line);
		diag_raw(d, line);
	}
	if (WIFSIGNALED(st))
		diag_setting(d, where, "handler \"%s\" %s while loading "
		    "(signal %d, %s); not loaded", l->l_handler_spec,
		    WTERMSIG(st) == SIGALRM ? "did not finish" : "crashed",
		    WTERMSIG(st), strsignal(WTERMSIG(st)));
	else if (WEXITSTATUS(st) != 0 && d->d_count == before)
		diag_setting(d, where, "handler \"%s\" could not be checked "
		    "(status %d)", l->l_handler_spec, WEXITSTATUS(st));
	return d->d_count == before ? 0 : -1;
}

int
handler_prepare(const struct config *cf, struct hinst *insts, struct diag *d)
{
	const struct listener	*l;
	char			 err[1024];
	size_t			 before = d->d_count;

	TAILQ_FOREACH(l, &cf->cf_listeners, l_entry) {
		const config_setting_t *where = l->l_handler_setting != NULL ?
		    l->l_handler_setting : l->l_setting;
		struct hinst *hi = &insts[l->l_index];
		int rc = 0;

		memset(hi, 0, sizeof(*hi));
		if (!loader_is_builtin(l->l_handler_spec) &&
		    handler_probe(l, d, false) == -1)
			continue;
		hi->i_handler = loader_open(l->l_handler_spec,
		    cf->cf_handler_dir, &hi->i_dl, err, sizeof(err));
		if (hi->i_handler == NULL) {
			diag_setting(d, where, "%s", err);
			continue;
		}
		if (hi->i_handler->init == NULL) {
			if (l->l_options != NULL)
				diag_setting(d, l->l_options, "handler \"%s\" "
				    "takes no options", hi->i_handler->name);
			hi->i_inited = true;
			continue;
		}
		handler_diag = d;
		handler_where = where;
		handler_init_failed_reported = false;
		rc = hi->i_handler->init(&hi->i_instance, l->l_options);
		handler_diag = NULL;
		if (rc != 0) {
			if (!handler_init_failed_reported)
				diag_setting(d, where, "handler \"%s\" failed to "
				    "initialise (init returned %d)",
				    hi->i_handler->name, rc);
			hi->i_instance = NULL;
			continue;
		}
		hi->i_inited = true;
	}
	if (d->d_count == before)
		return 0;
	handler_release(cf, insts);
	return -1;
}

int
handler_check(const struct config *cf, struct diag *d)
{
	const struct listener	*l;
	size_t			 before = d->d_count;

	TAILQ_FOREACH(l, &cf->cf_listeners, l_entry)
		handler_probe(l, d, true);
	return d->d_count == before ? 0 : -1;
}

void
handler_release(const struct config *cf, struct hinst *insts)
{
	for (size_t i = 0; i < cf->cf_nlisteners; i++) {
		struct hinst *hi = &insts[i];

		if (hi->i_inited && hi->i_handler->fini != NULL)
			hi->i_handler->fini(hi->i_instance);
		loader_close(hi->i_dl);
		memset(hi, 0, sizeof(*hi));
	}
}
