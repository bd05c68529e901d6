/* SPDX-License-Identifier: ISC */
/*
 * dgrammax.c - a test fixture, preloaded into the daemon: sendmsg of more
 * than DGRAM_MAX bytes to the address $SSD_JOURNAL_SOCKET fails with
 * EMSGSIZE, as when the datagram is larger than the socket's send buffer
 * allows.
 * What the journal's native protocol then wants (the entry in a memfd,
 * passed with SCM_RIGHTS) can so be tested with messages of any size.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <sys/socket.h>
#include <sys/types.h>

#include <sys/un.h>

#include <dlfcn.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

typedef ssize_t (*dgrammax_sendmsg_fn)(int, const struct msghdr *, int);

ssize_t	sendmsg(int, const struct msghdr *, int);

ssize_t
sendmsg(int fd, const struct msghdr *mh, int flags)
{
	static dgrammax_sendmsg_fn	 real;
	const char			*max = getenv("DGRAM_MAX");
	const char			*path = getenv("SSD_JOURNAL_SOCKET");
	const struct sockaddr_un	*sun = mh->msg_name;
	size_t				 len = 0;

	if (real == NULL)
		*(void **)&real = dlsym(RTLD_NEXT, "sendmsg");
	for (size_t i = 0; i < (size_t)mh->msg_iovlen; i++)
		len += mh->msg_iov[i].iov_len;
	if (max != NULL && path != NULL && len > (size_t)atol(max) &&
	    sun != NULL && sun->sun_family == AF_UNIX &&
	    strncmp(sun->sun_path, path, sizeof(sun->sun_path)) == 0) {
		errno = EMSGSIZE;
		return -1;
	}
	return real(fd, mh, flags);
}
