/* SPDX-License-Identifier: ISC */
/*
 * log.h - the daemon's logger: stderr (plain, or with "<N>" priority
 * prefixes for the journal), syslog, or the journal's native protocol
 * (fields; never blocks: a full journal drops and counts).  Self-contained:
 * needs no config, no loop.  Thread-safe: each message is one write(2) or
 * one datagram.
 */
#ifndef LOG_H
#define LOG_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <syslog.h>

enum log_target {
	LOG_TARGET_STDERR,
	LOG_TARGET_SYSLOG,
	LOG_TARGET_JOURNAL,
};

/* The journal's socket; $SSD_JOURNAL_SOCKET replaces it (for tests),
 * read once, at the first log_init. */
#define LOG_JOURNAL_SOCKET	"/run/systemd/journal/socket"

/* Starts logging at level (LOG_ERR..LOG_DEBUG) to target.  When target is
 * stderr and JOURNAL_STREAM is set, lines get "<N>" prefixes.  When target
 * is the journal and its socket cannot be reached, messages go to the
 * fallback (log_set_fallback) and a warning says so, once (again after a
 * switch away from the journal and back). */
void	log_init(int level, enum log_target target);
/* Where messages go when the journal cannot be reached: stderr (the
 * default) or syslog (once detached, -D). */
void	log_set_fallback(enum log_target target);
/* In a child that closed the descriptors it inherited (a fork-model
 * child): forgets the journal's socket; the next message opens another. */
void	log_reset_fds(void);
/* Messages the journal dropped (its socket was full) since the start. */
unsigned long log_dropped(void);
void	log_setlevel(int level);
int	log_getlevel(void);
/* "error" -> LOG_ERR, ...; -1 for an unknown name. */
int	log_level_parse(const char *name);
const char *log_level_name(int level);
/* true if a message at level would be written (cheap: for hot paths) */
bool	log_is_enabled(int level);

void	log_vlog(int level, bool with_errno, const char *fmt, va_list ap)
	    __attribute__((format(printf, 3, 0)));
/* A message about a listener (peer NULL) or a request: the text reads
 * "listener=NAME peer=ADDR: message" ("listener=NAME: message"); the
 * journal also gets them as the fields SSD_LISTENER and SSD_PEER.  No
 * errno.  The strings are only read during the call. */
void	log_vlog_about(int level, const char *listener, const char *peer,
	    const char *fmt, va_list ap) __attribute__((format(printf, 4, 0)));
void	log_about(int level, const char *listener, const char *peer,
	    const char *fmt, ...) __attribute__((format(printf, 4, 5)));
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

/* One field of a journal entry: NAME (upper case, digits, '_') = value. */
struct log_field {
	const char	*lf_name;
	const char	*lf_value;
};

/* A message whose text is fmt alone, with up to LOG_FIELDS_MAX more
 * journal fields (the access log).  The strings are only read during
 * the call. */
#define LOG_FIELDS_MAX	8
void	log_fields(int level, const struct log_field *, size_t,
	    const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* Encodes fields as one entry of the journal's native protocol into buf
 * (at most size bytes): "NAME=value\n", or, for a value holding a newline,
 * "NAME\n", its length as 64-bit little endian, the value and "\n".
 * Returns the length of the whole entry, like snprintf: larger than size
 * means buf holds only its beginning.  Pure. */
size_t	log_journal_encode(char *buf, size_t size, const struct log_field *f,
	    size_t nf);

#endif /* LOG_H */
