/* SPDX-License-Identifier: ISC */
/*
 * log.h - the daemon's logger: stderr (plain, or with "<N>" priority
 * prefixes for the journal) or syslog.  Self-contained: needs no config,
 * no loop.  Thread-safe: each message is one write(2).
 */
#ifndef LOG_H
#define LOG_H

#include <stdarg.h>
#include <stdbool.h>
#include <syslog.h>

enum log_target {
	LOG_TARGET_STDERR,
	LOG_TARGET_SYSLOG,
};

/* Starts logging at level (LOG_ERR..LOG_DEBUG) to target.  When target is
 * stderr and JOURNAL_STREAM is set, lines get "<N>" prefixes. */
void	log_init(int level, enum log_target target);
void	log_setlevel(int level);
int	log_getlevel(void);
/* "error" -> LOG_ERR, ...; -1 for an unknown name. */
int	log_level_parse(const char *name);
const char *log_level_name(int level);
/* true if a message at level would be written (cheap: for hot paths) */
bool	log_is_enabled(int level);

void	log_vlog(int level, bool with_errno, const char *fmt, va_list ap)
	    __attribute__((format(printf, 3, 0)));
/* level as given (LOG_ERR..LOG_DEBUG), no errno */
void	log_msg(int level, const char *, ...)
	    __attribute__((format(printf, 2, 3)));
/* the plain forms append ": strerror(errno)"; the x forms do not */
void	log_error(const char *, ...) __attribute__((format(printf, 1, 2)));
void	log_errorx(const char *, ...) __attribute__((format(printf, 1, 2)));
void	log_warning(const char *, ...) __attribute__((format(printf, 1, 2)));
void	log_warningx(const char *, ...) __attribute__((format(printf, 1, 2)));
void	log_notice(const char *, ...) __attribute__((format(printf, 1, 2)));
void	log_noticex(const char *, ...) __attribute__((format(printf, 1, 2)));
void	log_info(const char *, ...) __attribute__((format(printf, 1, 2)));
void	log_infox(const char *, ...) __attribute__((format(printf, 1, 2)));
void	log_debug(const char *, ...) __attribute__((format(printf, 1, 2)));
/* log at error, then exit(1): only in main.c and start-up code */
void	fatal(const char *, ...)
	    __attribute__((format(printf, 1, 2), noreturn));
void	fatalx(const char *, ...)
	    __attribute__((format(printf, 1, 2), noreturn));

#endif /* LOG_H */
