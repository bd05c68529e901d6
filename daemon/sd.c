/* SPDX-License-Identifier: ISC */
/*
 * sd.c - systemd's notification protocol (NOTIFY_SOCKET), spoken directly
 * over an AF_UNIX datagram socket so that libsystemd is not needed.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "server.h"

bool
sd_is_notify_enabled(void)
{
	const char *p = getenv("NOTIFY_SOCKET");

	return p != NULL && p[0] != '\0';
}

int
sd_notifyf(const char *fmt, ...)
{
	struct sockaddr_un	 sun;
	const char		*path = getenv("NOTIFY_SOCKET");
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
	if ((fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0)) == -1)
		goto done;
	if (sendto(fd, msg, strlen(msg), MSG_NOSIGNAL,
	    (struct sockaddr *)&sun, len) >= 0)
		rc = 0;
	close(fd);
done:
	if (rc == -1)
		log_debug("%s: %s: %s", __func__, path, strerror(errno));
	return rc;
}
