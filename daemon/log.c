/* SPDX-License-Identifier: ISC */
/*
 * log.c - formatting and delivery of log lines.  One write(2) per line so
 * lines from several threads never interleave.  Must not depend on the
 * configuration or the event loop: it is used before both exist.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

/* A reload changes these while other threads log: atomics (relaxed: a
 * line logged at the old level during a reload is fine). */
static _Atomic int	log_level = LOG_INFO;
static _Atomic int	log_target = LOG_TARGET_STDERR;
static atomic_bool	log_journal;	/* "<N>" prefixes for journald */
static bool		log_syslog_open;
static pthread_mutex_t	log_syslog_mtx = PTHREAD_MUTEX_INITIALIZER;

static void
log_atfork_prepare(void)
{
	pthread_mutex_lock(&log_syslog_mtx);
}

static void
log_atfork_release(void)
{
	pthread_mutex_unlock(&log_syslog_mtx);
}

static void
log_atfork_register(void)
{
	pthread_atfork(log_atfork_prepare, log_atfork_release,
	    log_atfork_release);
}

static const char *const log_names[] = {
	[LOG_ERR] = "error",
	[LOG_WARNING] = "warning",
	[LOG_NOTICE] = "notice",
	[LOG_INFO] = "info",
	[LOG_DEBUG] = "debug",
};

void
log_init(int level, enum log_target target)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;

	pthread_once(&once, log_atfork_register);
	log_level = level;
	log_target = target;
	log_journal = getenv("JOURNAL_STREAM") != NULL;
	if (target == LOG_TARGET_SYSLOG && !log_syslog_open) {
		openlog("sockserverd", LOG_PID | LOG_NDELAY, LOG_DAEMON);
		log_syslog_open = true;
	}
}

void
log_setlevel(int level)
{
	log_level = level;
}

int
log_getlevel(void)
{
	return log_level;
}

int
log_level_parse(const char *name)
{
	for (size_t i = 0; i < sizeof(log_names) / sizeof(log_names[0]); i++)
		if (log_names[i] != NULL && strcmp(name, log_names[i]) == 0)
			return (int)i;
	return -1;
}

const char *
log_level_name(int level)
{
	if (level < 0 || level > LOG_DEBUG || log_names[level] == NULL)
		return "error";
	return log_names[level];
}

bool
log_is_enabled(int level)
{
	return level <= log_level;
}

void
log_vlog(int level, bool with_errno, const char *fmt, va_list ap)
{
	char		 msg[2048], line[2200];
	int		 saved = errno, n;
	size_t		 len;

	if (level < LOG_ERR)
		level = LOG_ERR;
	if (level > log_level)
		return;
	vsnprintf(msg, sizeof(msg), fmt, ap);
	if (with_errno) {
		len = strlen(msg);
		snprintf(msg + len, sizeof(msg) - len, ": %s",
		    strerror(saved));
	}
	if (log_target == LOG_TARGET_SYSLOG) {
		/* syslog(3) holds a lock of the C library: all our calls go
		 * under ours, which fork(2) takes (log_atfork_*), so that no
		 * fork child inherits it held by another thread. */
		pthread_mutex_lock(&log_syslog_mtx);
		syslog(level, "%s", msg);
		pthread_mutex_unlock(&log_syslog_mtx);
		errno = saved;
		return;
	}
	if (log_journal)
		n = snprintf(line, sizeof(line), "<%d>%s\n", level, msg);
	else
		n = snprintf(line, sizeof(line), "sockserverd[%ld]: %s: %s\n",
		    (long)getpid(), log_level_name(level), msg);
	if (n < 0)
		n = 0;
	len = (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1;
	if (len > 0 && line[len - 1] != '\n')
		line[len - 1] = '\n';
	/* Best effort: a logger has nowhere to report its own failure. */
	if (write(STDERR_FILENO, line, len) < 0) {
		/* ignored */
	}
	errno = saved;
}

#define LOG_FN(fn, level, with_errno)				\
void								\
fn(const char *fmt, ...)					\
{								\
	va_list ap;						\
	va_start(ap, fmt);					\
	log_vlog(level, with_errno, fmt, ap);			\
	va_end(ap);						\
}

LOG_FN(log_error, LOG_ERR, true)
LOG_FN(log_errorx, LOG_ERR, false)
LOG_FN(log_warning, LOG_WARNING, true)
LOG_FN(log_warningx, LOG_WARNING, false)
LOG_FN(log_notice, LOG_NOTICE, true)
LOG_FN(log_noticex, LOG_NOTICE, false)
LOG_FN(log_info, LOG_INFO, true)
LOG_FN(log_infox, LOG_INFO, false)
LOG_FN(log_debug, LOG_DEBUG, false)

void
log_msg(int level, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vlog(level, false, fmt, ap);
	va_end(ap);
}

void
fatal(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vlog(LOG_ERR, true, fmt, ap);
	va_end(ap);
	exit(1);
}

void
fatalx(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vlog(LOG_ERR, false, fmt, ap);
	va_end(ap);
	exit(1);
}
