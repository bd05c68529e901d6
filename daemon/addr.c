/* SPDX-License-Identifier: ISC */
/*
 * addr.c - socket address parsing, resolution and formatting.  No sockets
 * are opened here; the only I/O is getaddrinfo() for host names.
 */
#include <arpa/inet.h>
#include <netdb.h>
#include <string.h>

#include "daemon.h"

/* Writes v in decimal at p; returns the end. */
static char *
addr_decimal(char *p, unsigned v)
{
	char	 tmp[10];
	size_t	 n = 0;

	do
		tmp[n++] = (char)('0' + v % 10);
	while ((v /= 10) != 0);
	while (n > 0)
		*p++ = tmp[--n];
	return p;
}

void
addr_format(const struct sockaddr *sa, socklen_t len, char *buf,
    size_t size)
{
	char	 host[INET6_ADDRSTRLEN];

	(void)len;
	switch (sa->sa_family) {
	case AF_INET: {
		const struct sockaddr_in *sin = (const void *)sa;
		const unsigned char *a = (const void *)&sin->sin_addr;
		char full[sizeof("255.255.255.255:65535")], *p = full;
		size_t n;

		/* What inet_ntop and "%s:%u" write (truncated as snprintf
		 * would), without two printfs: this runs for every
		 * datagram. */
		for (int i = 0; i < 4; i++) {
			p = addr_decimal(p, a[i]);
			*p++ = i < 3 ? '.' : ':';
		}
		p = addr_decimal(p, ntohs(sin->sin_port));
		if (size == 0)
			break;
		n = (size_t)(p - full);
		if (n >= size)
			n = size - 1;
		memcpy(buf, full, n);
		buf[n] = '\0';
		break;
	}
	case AF_INET6: {
		const struct sockaddr_in6 *sin6 = (const void *)sa;

		inet_ntop(AF_INET6, &sin6->sin6_addr, host, sizeof(host));
		snprintf(buf, size, "[%s]:%u", host, ntohs(sin6->sin6_port));
		break;
	}
	case AF_UNIX:
		snprintf(buf, size, "unix");
		break;
	default:
		snprintf(buf, size, "unknown");
		break;
	}
}

void
addr_format_local(const struct sockaddr *sa, socklen_t len, char *buf,
    size_t size)
{
	const struct sockaddr_un *sun = (const void *)sa;
	size_t	 n;

	if (sa->sa_family != AF_UNIX) {
		addr_format(sa, len, buf, size);
		return;
	}
	if (len <= offsetof(struct sockaddr_un, sun_path)) {
		snprintf(buf, size, "unix");
		return;
	}
	n = len - offsetof(struct sockaddr_un, sun_path);
	if (sun->sun_path[0] == '\0')
		snprintf(buf, size, "@%.*s", (int)n - 1, sun->sun_path + 1);
	else
		snprintf(buf, size, "%.*s", (int)strnlen(sun->sun_path, n),
		    sun->sun_path);
}

int
addr_guess_family(const char *address)
{
	struct in_addr	 a4;
	struct in6_addr	 a6;

	if (address[0] == '/' || address[0] == '@')
		return AF_UNIX;
	if (inet_pton(AF_INET, address, &a4) == 1)
		return AF_INET;
	if (inet_pton(AF_INET6, address, &a6) == 1)
		return AF_INET6;
	return AF_UNSPEC;
}

static int
addr_resolve_unix(const char *address, struct sockaddr_storage *ss,
    socklen_t *len_r, char *err, size_t errlen)
{
	struct sockaddr_un	*sun = (void *)ss;
	size_t			 n = strlen(address);

	if (address[0] != '/' && address[0] != '@') {
		snprintf(err, errlen, "unix address \"%s\" must be an "
		    "absolute path or @name", address);
		return -1;
	}
	if (n >= sizeof(sun->sun_path) || n < 2) {
		snprintf(err, errlen, "unix address \"%s\" is %zu characters "
		    "long; it must be 2 to %zu", address, n,
		    sizeof(sun->sun_path) - 1);
		return -1;
	}
	memset(ss, 0, sizeof(*ss));
	sun->sun_family = AF_UNIX;
	memcpy(sun->sun_path, address, n);
	if (address[0] == '@') {
		/* Abstract namespace: leading NUL, length without a NUL. */
		sun->sun_path[0] = '\0';
		*len_r = (socklen_t)(offsetof(struct sockaddr_un, sun_path) +
		    n);
	} else
		*len_r = (socklen_t)(offsetof(struct sockaddr_un, sun_path) +
		    n + 1);
	return 0;
}

int
addr_resolve(int family, const char *address, int port,
    struct sockaddr_storage *ss, socklen_t *len_r, char *err, size_t errlen)
{
	struct addrinfo	 hints, *res = NULL;
	char		 portstr[16];
	int		 guessed, rc;

	guessed = addr_guess_family(address);
	if (family == AF_UNIX || (family == AF_UNSPEC && guessed == AF_UNIX))
		return addr_resolve_unix(address, ss, len_r, err, errlen);
	if (guessed == AF_UNIX) {
		snprintf(err, errlen, "address \"%s\" is a unix address but "
		    "family is not unix", address);
		return -1;
	}
	if (family != AF_UNSPEC && guessed != AF_UNSPEC && guessed != family) {
		snprintf(err, errlen, "address \"%s\" is not an %s address "
		    "(family = \"%s\")", address,
		    family == AF_INET ? "IPv4" : "IPv6",
		    family == AF_INET ? "inet" : "inet6");
		return -1;
	}
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = family;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICSERV;
	snprintf(portstr, sizeof(portstr), "%d", port);
	if (strcmp(address, "*") == 0) {
		/* Any address: "*" alone means inet unless told inet6. */
		if (hints.ai_family == AF_UNSPEC)
			hints.ai_family = AF_INET;
		hints.ai_flags |= AI_PASSIVE;
		address = NULL;
	} else if (guessed != AF_UNSPEC)
		hints.ai_flags |= AI_NUMERICHOST;
	rc = getaddrinfo(address, portstr, &hints, &res);
	if (rc != 0) {
		snprintf(err, errlen, "cannot resolve \"%s\": %s",
		    address != NULL ? address : "*", gai_strerror(rc));
		return -1;
	}
	memset(ss, 0, sizeof(*ss));
	memcpy(ss, res->ai_addr, res->ai_addrlen);
	*len_r = res->ai_addrlen;
	freeaddrinfo(res);
	return 0;
}
