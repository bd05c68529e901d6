/* SPDX-License-Identifier: ISC */
/*
 * sd.c - systemd's notification protocol (NOTIFY_SOCKET), spoken directly
 * over an AF_UNIX datagram socket so that libsystemd is not needed.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "server.h"

/* Taken from the environment once, before anything forks, and removed
 * from it so that no handler process inherits them. */
static char		*sd_notify_path;
static double		 sd_watchdog;		/* seconds, 0: none */
static struct sd_fd	*sd_fds;
static size_t		 sd_nfds;

static size_t	sd_listen_fds_env(struct sd_fd **);

void
sd_init(void)
{
	const char	*p = getenv("NOTIFY_SOCKET");
	const char	*usec = getenv("WATCHDOG_USEC");
	const char	*wpid = getenv("WATCHDOG_PID");
	char		*end;
	double		 us;

	free(sd_notify_path);
	sd_notify_path = p != NULL && p[0] != '\0' ? xstrdup(p) : NULL;
	sd_watchdog = 0;
	if (usec != NULL && (wpid == NULL ||
	    strtol(wpid, &end, 10) == (long)getpid())) {
		us = strtod(usec, &end);
		if (*end != '\0' || !(us > 0))
			log_warningx("WATCHDOG_USEC=%s is not a period; "
			    "ignored", usec);
		else
			sd_watchdog = us / 1e6;
	}
	sd_nfds = sd_listen_fds_env(&sd_fds);
	unsetenv("NOTIFY_SOCKET");
	unsetenv("WATCHDOG_USEC");
	unsetenv("WATCHDOG_PID");
}

void
sd_forget(void)
{
	free(sd_notify_path);
	sd_notify_path = NULL;
	sd_watchdog = 0;
}

double
sd_watchdog_period(void)
{
	return sd_watchdog;
}

size_t
sd_listen_fds(struct sd_fd **fds_r)
{
	size_t n = sd_nfds;

	*fds_r = sd_fds;
	sd_fds = NULL;
	sd_nfds = 0;
	return n;
}

bool
sd_is_notify_enabled(void)
{
	return sd_notify_path != NULL;
}

int
sd_notifyf(const char *fmt, ...)
{
	struct sockaddr_un	 sun;
	const char		*path = sd_notify_path;
	char			 msg[1024];
	size_t			 n;
	socklen_t		 len;
	va_list			 ap;
	int			 fd, rc = -1;

	if (path == NULL || path[0] == '\0')
		return 0;
	n = strlen(path);
	if ((path[0] != '/' && path[0] != '@') || n >= sizeof(sun.sun_path)) {
		log_debug("%s: NOTIFY_SOCKET %s is not usable", __func__,
		    path);
		return -1;
	}
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	memcpy(sun.sun_path, path, n);
	if (path[0] == '@')
		sun.sun_path[0] = '\0';
	len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n +
	    (path[0] == '@' ? 0 : 1));
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	/* Never block the loop on a full notification queue. */
	if ((fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK,
	    0)) == -1)
		goto done;
	if (sendto(fd, msg, strlen(msg), MSG_NOSIGNAL | MSG_DONTWAIT,
	    (struct sockaddr *)&sun, len) >= 0)
		rc = 0;
	close(fd);
done:
	if (rc == -1)
		log_debug("%s: %s: %s", __func__, path, strerror(errno));
	return rc;
}

/*
 * Socket activation (sd_listen_fds(3)): LISTEN_PID must be ours; the
 * descriptors are 3 .. 3 + LISTEN_FDS - 1, named by LISTEN_FDNAMES.  The
 * variables are removed so that no child inherits them.
 */
static size_t
sd_listen_fds_env(struct sd_fd **fds_r)
{
	const char	*pid = getenv("LISTEN_PID");
	const char	*n = getenv("LISTEN_FDS");
	const char	*names = getenv("LISTEN_FDNAMES");
	struct sd_fd	*fds;
	char		*end, *copy = NULL, *p;
	long		 count;

	*fds_r = NULL;
	if (pid == NULL || n == NULL)
		goto done;
	if (strtol(pid, &end, 10) != (long)getpid() || *end != '\0') {
		log_debug("%s: LISTEN_PID %s is not ours", __func__, pid);
		count = 0;
		goto done;
	}
	count = strtol(n, &end, 10);
	if (*end != '\0' || count < 0 || count > 4096) {
		log_warningx("LISTEN_FDS=%s is not a count of descriptors; "
		    "ignored", n);
		count = 0;
		goto done;
	}
	fds = xcalloc((size_t)count + 1, sizeof(*fds));
	if (names != NULL)
		copy = xstrdup(names);
	p = copy;
	for (long i = 0; i < count; i++) {
		char *name = p != NULL ? strsep(&p, ":") : NULL;

		fds[i].fd = SD_LISTEN_FDS_START + (int)i;
		fds[i].name = xstrdup(name != NULL && *name != '\0' ? name :
		    "unknown");
		fcntl(fds[i].fd, F_SETFD, FD_CLOEXEC);
	}
	free(copy);
	*fds_r = fds;
	unsetenv("LISTEN_PID");
	unsetenv("LISTEN_FDS");
	unsetenv("LISTEN_FDNAMES");
	return (size_t)count;
done:
	unsetenv("LISTEN_PID");
	unsetenv("LISTEN_FDS");
	unsetenv("LISTEN_FDNAMES");
	return 0;
}
