/* SPDX-License-Identifier: ISC */
/*
 * log.c - formatting and delivery of log lines.  One write(2) per line so
 * lines from several threads never interleave; to the journal, one
 * datagram per message, sent without blocking (a full journal drops it and
 * counts).  Must not depend on the configuration or the event loop: it is
 * used before both exist.
 */
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/un.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
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
static _Atomic int	log_fallback = LOG_TARGET_STDERR;
static bool		log_syslog_open;
static pthread_mutex_t	log_syslog_mtx = PTHREAD_MUTEX_INITIALIZER;

/*
 * The journal.  Its address is set once, before any thread starts.  The
 * socket is opened when first needed and then never closed (a thread may
 * be sending on it at any time), only forgotten in a fork child that
 * closed it.  It is not connected: each datagram names the address, so a
 * restarted journald is found again.
 */
static struct sockaddr_un log_jaddr;
static socklen_t	log_jaddrlen;
static _Atomic int	log_jfd = -1;
static atomic_bool	log_jdown;	/* unreachable, and said so */
static atomic_ulong	log_jdropped;	/* since the start */
static atomic_ulong	log_junreported; /* dropped, not yet said */

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
log_once(void)
{
	const char *path = getenv("SSD_JOURNAL_SOCKET");

	pthread_atfork(log_atfork_prepare, log_atfork_release,
	    log_atfork_release);
	/* Only tests set it: a fake journal of their own. */
	if (path == NULL || path[0] == '\0')
		path = LOG_JOURNAL_SOCKET;
	log_jaddr.sun_family = AF_UNIX;
	if (strlen(path) < sizeof(log_jaddr.sun_path)) {
		memcpy(log_jaddr.sun_path, path, strlen(path) + 1);
		log_jaddrlen = (socklen_t)(offsetof(struct sockaddr_un,
		    sun_path) + strlen(path) + 1);
	}
}

static const char *const log_names[] = {
	[LOG_ERR] = "error",
	[LOG_WARNING] = "warning",
	[LOG_NOTICE] = "notice",
	[LOG_INFO] = "info",
	[LOG_DEBUG] = "debug",
};

static void
log_syslog_init(void)
{
	if (!log_syslog_open) {
		openlog("sockserverd", LOG_PID | LOG_NDELAY, LOG_DAEMON);
		log_syslog_open = true;
	}
}

/* The journal's socket, opened on first use (-1 with errno if it cannot
 * be).  Two threads may race to open it: one socket wins. */
static int
log_journal_fd(void)
{
	int fd = atomic_load(&log_jfd), other = -1;

	if (fd != -1)
		return fd;
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd == -1)
		return -1;
	if (!atomic_compare_exchange_strong(&log_jfd, &other, fd)) {
		close(fd);
		fd = other;
	}
	return fd;
}

/* 0 if something listens on the journal's socket, else -1 with errno;
 * sends nothing (a connect on a socket of its own). */
static int
log_journal_probe(void)
{
	int fd, rc = -1, saved;

	if (log_jaddrlen == 0) {
		errno = ENAMETOOLONG;
		return -1;
	}
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd == -1)
		return -1;
	rc = connect(fd, (struct sockaddr *)&log_jaddr, log_jaddrlen);
	saved = errno;
	close(fd);
	errno = saved;
	return rc;
}

static void	log_journal_unreachable(int err);

void
log_init(int level, enum log_target target)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;

	pthread_once(&once, log_once);
	log_level = level;
	log_journal = getenv("JOURNAL_STREAM") != NULL;
	if (target == LOG_TARGET_SYSLOG)
		log_syslog_init();
	if (target != LOG_TARGET_JOURNAL)
		atomic_store(&log_jdown, false);	/* say it again */
	else if (log_journal_probe() == -1)
		log_journal_unreachable(errno);
	else
		atomic_store(&log_jdown, false);
	log_target = target;
}

void
log_set_fallback(enum log_target target)
{
	if (target == LOG_TARGET_SYSLOG)
		log_syslog_init();
	log_fallback = target == LOG_TARGET_SYSLOG ? LOG_TARGET_SYSLOG :
	    LOG_TARGET_STDERR;
}

void
log_reset_fds(void)
{
	atomic_store(&log_jfd, -1);
}

unsigned long
log_dropped(void)
{
	return atomic_load(&log_jdropped);
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

static void
log_put(char *buf, size_t size, size_t *off, const void *p, size_t n)
{
	if (*off < size)
		memcpy(buf + *off, p, n < size - *off ? n : size - *off);
	*off += n;
}

size_t
log_journal_encode(char *buf, size_t size, const struct log_field *f,
    size_t nf)
{
	size_t		 off = 0, nlen, vlen;
	unsigned char	 le[8];

	for (size_t i = 0; i < nf; i++) {
		nlen = strlen(f[i].lf_name);
		vlen = strlen(f[i].lf_value);
		log_put(buf, size, &off, f[i].lf_name, nlen);
		if (memchr(f[i].lf_value, '\n', vlen) == NULL) {
			log_put(buf, size, &off, "=", 1);
		} else {
			for (int b = 0; b < 8; b++)
				le[b] = (unsigned char)((uint64_t)vlen >>
				    (8 * b));
			log_put(buf, size, &off, "\n", 1);
			log_put(buf, size, &off, le, sizeof(le));
		}
		log_put(buf, size, &off, f[i].lf_value, vlen);
		log_put(buf, size, &off, "\n", 1);
	}
	return off;
}

/* A datagram too large for the socket goes in a sealed memfd whose
 * descriptor is passed instead, as journald's protocol says (systemd's
 * journal-send.c does the same). */
static int
log_journal_send_memfd(int fd, const char *buf, size_t len)
{
	union {
		struct cmsghdr	 hdr;
		char		 space[CMSG_SPACE(sizeof(int))];
	} cm;
	struct msghdr	 mh;
	struct cmsghdr	*c;
	ssize_t		 n;
	size_t		 off = 0;
	int		 mfd, rc = -1, saved;

	mfd = memfd_create("sockserverd-journal", MFD_CLOEXEC |
	    MFD_ALLOW_SEALING);
	if (mfd == -1)
		return -1;
	while (off < len) {
		if ((n = write(mfd, buf + off, len - off)) == -1) {
			if (errno == EINTR)
				continue;
			goto fail;
		}
		off += (size_t)n;
	}
	if (fcntl(mfd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW |
	    F_SEAL_WRITE | F_SEAL_SEAL) == -1)
		goto fail;
	memset(&cm, 0, sizeof(cm));
	memset(&mh, 0, sizeof(mh));
	mh.msg_name = &log_jaddr;
	mh.msg_namelen = log_jaddrlen;
	mh.msg_control = cm.space;
	mh.msg_controllen = sizeof(cm.space);
	c = CMSG_FIRSTHDR(&mh);
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(c), &mfd, sizeof(int));
	while ((rc = (int)sendmsg(fd, &mh, MSG_DONTWAIT | MSG_NOSIGNAL)) ==
	    -1 && errno == EINTR)
		continue;
	if (rc == -1)
		goto fail;
	rc = 0;
fail:
	saved = errno;
	close(mfd);
	errno = saved;
	return rc;
}

/* Sends one entry: 0, or -1 with errno (EAGAIN: the journal is full). */
static int
log_journal_send(const char *buf, size_t len)
{
	struct iovec	 iov = { .iov_base = (void *)(uintptr_t)buf,
			    .iov_len = len };
	struct msghdr	 mh;
	int		 fd;

	if (log_jaddrlen == 0) {
		errno = ENAMETOOLONG;
		return -1;
	}
	if ((fd = log_journal_fd()) == -1)
		return -1;
	memset(&mh, 0, sizeof(mh));
	mh.msg_name = &log_jaddr;
	mh.msg_namelen = log_jaddrlen;
	mh.msg_iov = &iov;
	mh.msg_iovlen = 1;
	while (sendmsg(fd, &mh, MSG_DONTWAIT | MSG_NOSIGNAL) == -1)
		if (errno != EINTR)
			goto fail;
	return 0;
fail:
	if (errno != EMSGSIZE && errno != ENOBUFS)
		return -1;
	return log_journal_send_memfd(fd, buf, len);
}

/* Encodes and sends one message: 0, or -1 with errno. */
static int
log_journal_entry(int level, const char *listener, const char *peer,
    const struct log_field *xf, size_t nx, const char *msg)
{
	char			 stackbuf[4096], *buf = stackbuf;
	char			 prio[2] = { (char)('0' + level), '\0' };
	struct log_field	 f[6 + LOG_FIELDS_MAX] = {
		{ "MESSAGE", msg },
		{ "PRIORITY", prio },
		{ "SYSLOG_FACILITY", "3" },	/* daemon, as for syslog */
		{ "SYSLOG_IDENTIFIER", "sockserverd" },
	};
	size_t			 nf = 4, len;
	int			 rc, saved;

	if (listener != NULL)
		f[nf++] = (struct log_field){ "SSD_LISTENER", listener };
	if (peer != NULL)
		f[nf++] = (struct log_field){ "SSD_PEER", peer };
	for (size_t i = 0; i < nx && i < LOG_FIELDS_MAX; i++)
		f[nf++] = xf[i];
	len = log_journal_encode(buf, sizeof(stackbuf), f, nf);
	if (len > sizeof(stackbuf)) {
		if ((buf = malloc(len)) == NULL)
			return -1;
		log_journal_encode(buf, len, f, nf);
	}
	rc = log_journal_send(buf, len);
	saved = errno;
	if (buf != stackbuf)
		free(buf);
	errno = saved;
	return rc;
}

/* A line to stderr or syslog (target), as log_target says. */
static void
log_line(enum log_target target, int level, const char *msg)
{
	char		 line[2200];
	int		 n;
	size_t		 len;

	if (target == LOG_TARGET_SYSLOG) {
		/* syslog(3) holds a lock of the C library: all our calls go
		 * under ours, which fork(2) takes (log_atfork_*), so that no
		 * fork child inherits it held by another thread. */
		pthread_mutex_lock(&log_syslog_mtx);
		syslog(level, "%s", msg);
		pthread_mutex_unlock(&log_syslog_mtx);
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
}

/* The journal cannot be reached (err): the fallback says so, once until
 * the journal is back or the target changes. */
static void
log_journal_unreachable(int err)
{
	char msg[512];

	if (atomic_exchange(&log_jdown, true))
		return;
	snprintf(msg, sizeof(msg), "log_target journal: cannot reach %s: %s; "
	    "logging to %s instead", log_jaddr.sun_path, strerror(err),
	    log_fallback == LOG_TARGET_SYSLOG ? "syslog" : "stderr");
	if (LOG_WARNING <= log_level)
		log_line(log_fallback, LOG_WARNING, msg);
}

/* One message to the journal: true if it is taken care of (sent, or
 * dropped and counted because the journal is full); false if it must go
 * to the fallback. */
static bool
log_journal_write(int level, const char *listener, const char *peer,
    const struct log_field *xf, size_t nx, const char *msg)
{
	unsigned long	 n;
	char		 note[128];

	if (log_journal_entry(level, listener, peer, xf, nx, msg) == -1) {
		if (errno == EAGAIN) {
			atomic_fetch_add(&log_jdropped, 1);
			atomic_fetch_add(&log_junreported, 1);
			return true;
		}
		log_journal_unreachable(errno);
		return false;
	}
	if (atomic_load(&log_jdown) && atomic_exchange(&log_jdown, false) &&
	    LOG_NOTICE <= log_level)
		log_journal_entry(LOG_NOTICE, NULL, NULL, NULL, 0, "log_target journal: "
		    "the journal is back (messages in between went to the "
		    "fallback)");
	if (atomic_load(&log_junreported) == 0 ||
	    (n = atomic_exchange(&log_junreported, 0)) == 0)
		return true;
	/* The journal takes messages again: say how many it missed. */
	snprintf(note, sizeof(note), "log_target journal: %lu message%s "
	    "dropped: the journal's socket was full", n, n == 1 ? "" : "s");
	if (LOG_WARNING <= log_level &&
	    log_journal_entry(LOG_WARNING, NULL, NULL, NULL, 0, note) == -1)
		atomic_fetch_add(&log_junreported, n);	/* next time */
	return true;
}

static void	log_deliver(int, bool, const char *, const char *,
		    const struct log_field *, size_t, const char *, va_list)
		    __attribute__((format(printf, 7, 0)));

static void
log_deliver(int level, bool with_errno, const char *listener,
    const char *peer, const struct log_field *xf, size_t nx, const char *fmt,
    va_list ap)
{
	char		 msg[2048];
	int		 saved = errno, n = 0;
	size_t		 len;
	enum log_target	 target;

	if (level < LOG_ERR)
		level = LOG_ERR;
	if (level > log_level)
		return;
	if (listener != NULL && peer != NULL)
		n = snprintf(msg, sizeof(msg), "listener=%s peer=%s: ",
		    listener, peer);
	else if (listener != NULL)
		n = snprintf(msg, sizeof(msg), "listener=%s: ", listener);
	if (n < 0)
		n = 0;
	if ((size_t)n >= sizeof(msg))
		n = sizeof(msg) - 1;
	vsnprintf(msg + n, sizeof(msg) - (size_t)n, fmt, ap);
	if (with_errno) {
		len = strlen(msg);
		snprintf(msg + len, sizeof(msg) - len, ": %s",
		    strerror(saved));
	}
	target = log_target;
	if (target == LOG_TARGET_JOURNAL) {
		if (log_journal_write(level, listener, peer, xf, nx, msg)) {
			errno = saved;
			return;
		}
		target = log_fallback;
	}
	log_line(target, level, msg);
	errno = saved;
}

void
log_vlog(int level, bool with_errno, const char *fmt, va_list ap)
{
	log_deliver(level, with_errno, NULL, NULL, NULL, 0, fmt, ap);
}

void
log_vlog_about(int level, const char *listener, const char *peer,
    const char *fmt, va_list ap)
{
	log_deliver(level, false, listener, peer, NULL, 0, fmt, ap);
}

void
log_fields(int level, const struct log_field *f, size_t nf,
    const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_deliver(level, false, NULL, NULL, f, nf, fmt, ap);
	va_end(ap);
}

void
log_about(int level, const char *listener, const char *peer,
    const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_deliver(level, false, listener, peer, NULL, 0, fmt, ap);
	va_end(ap);
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
