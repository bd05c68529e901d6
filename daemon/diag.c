/* SPDX-License-Identifier: ISC */
/*
 * diag.c - a list of "FILE:LINE: message" diagnostics.  Config loading and
 * handler init add to it instead of logging or exiting, so that -t can print
 * every problem and a reload can reject a config without side effects.
 */
#include <stdlib.h>
#include <string.h>

#include "daemon.h"

void
diag_init(struct diag *d)
{
	memset(d, 0, sizeof(*d));
}

void
diag_fini(struct diag *d)
{
	for (size_t i = 0; i < d->d_count; i++)
		free(d->d_msgs[i]);
	free(d->d_msgs);
	free(d->d_incdir);
	free(d->d_main);
	diag_init(d);
}

char *
diag_source_path(const struct diag *d, const char *file)
{
	if (file == NULL)
		return xstrdup("?");
	if (file[0] == '/' || d->d_incdir == NULL ||
	    (d->d_main != NULL && strcmp(file, d->d_main) == 0) ||
	    strcmp(d->d_incdir, ".") == 0)
		return xstrdup(file);
	return xasprintf("%s/%s", d->d_incdir, file);
}

static void diag_vadd(struct diag *, const char *, int, const char *,
	    va_list) __attribute__((format(printf, 4, 0)));

static void
diag_vadd(struct diag *d, const char *file, int line, const char *fmt,
    va_list ap)
{
	char	 msg[1024];

	vsnprintf(msg, sizeof(msg), fmt, ap);
	d->d_msgs = xreallocarray(d->d_msgs, d->d_count + 1,
	    sizeof(*d->d_msgs));
	/* Line 0: about the file as a whole (it cannot be read). */
	if (line > 0)
		d->d_msgs[d->d_count++] = xasprintf("%s:%d: %s",
		    file != NULL ? file : "?", line, msg);
	else
		d->d_msgs[d->d_count++] = xasprintf("%s: %s",
		    file != NULL ? file : "?", msg);
}

void
diag_raw(struct diag *d, const char *msg)
{
	d->d_msgs = xreallocarray(d->d_msgs, d->d_count + 1,
	    sizeof(*d->d_msgs));
	d->d_msgs[d->d_count++] = xstrdup(msg);
}

void
diag_add(struct diag *d, const char *file, int line, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	diag_vadd(d, file, line, fmt, ap);
	va_end(ap);
}

void
diag_vsetting(struct diag *d, const config_setting_t *s, const char *fmt,
    va_list ap)
{
	char *file = diag_source_path(d, config_setting_source_file(s));

	diag_vadd(d, file, config_setting_source_line(s), fmt, ap);
	free(file);
}

void
diag_setting(struct diag *d, const config_setting_t *s, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	diag_vsetting(d, s, fmt, ap);
	va_end(ap);
}

void
diag_print(const struct diag *d, FILE *fp)
{
	for (size_t i = 0; i < d->d_count; i++)
		fprintf(fp, "%s\n", d->d_msgs[i]);
}

void
diag_log(const struct diag *d)
{
	for (size_t i = 0; i < d->d_count; i++)
		log_errorx("%s", d->d_msgs[i]);
}
