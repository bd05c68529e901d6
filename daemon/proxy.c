/* SPDX-License-Identifier: ISC */
/*
 * proxy.c - the HAProxy PROXY protocol, versions 1 (text) and 2 (binary),
 * at the start of a stream connection: the header names the client the
 * load balancer accepted, which then stands for the peer (ssd_peer,
 * allow/deny, max_per_source).  Bytes after the header stay buffered for
 * the handler.  Reads only through the request, so the listener's
 * timeout and the concurrency model's waiting apply.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <string.h>

#include "server.h"

#define PROXY_V1_MAX	107	/* the longest v1 line, CRLF included */
#define PROXY_V2_SIG	"\r\n\r\n\0\r\nQUIT\n"
#define PROXY_V2_SIGLEN	12

/* The longest header taken: v2 with TLVs up to this size. */
#define PROXY_MAX	1024

/*
 * Takes the header off the connection and nothing more: the bytes after
 * it belong to the handler, which may be a program reading the socket
 * itself (exec).  Peeks at what has arrived, consumes only what is known
 * to be header, and waits for the rest.  Returns its length, or -1 with
 * err set.
 */
static ssize_t
proxy_take(struct ssd_request *rq, unsigned char *hdr, char *err,
    size_t errlen)
{
	unsigned char	 peek[PROXY_MAX];
	size_t		 have = 0, end = 0;
	ssize_t		 n;

	while (end == 0 || have < end) {
		size_t want = (end != 0 ? end : PROXY_MAX) - have, take, i;

		n = recv(rq->rq_fd, peek, want, MSG_PEEK | MSG_DONTWAIT);
		if (n == 0) {
			snprintf(err, errlen, have == 0 ? "no PROXY header: "
			    "the connection ended" : "connection ended "
			    "inside the PROXY header");
			return -1;
		}
		if (n == -1) {
			if (errno == EINTR)
				continue;
			if ((errno == EAGAIN || errno == EWOULDBLOCK) &&
			    rq->rq_wait(rq, rq->rq_fd, POLLIN) == 0)
				continue;
			snprintf(err, errlen, "%s PROXY header: %s",
			    have == 0 ? "no" : "incomplete",
			    errno == ETIMEDOUT ? "timed out" : strerror(errno));
			return -1;
		}
		take = (size_t)n;
		memcpy(hdr + have, peek, take);
		/* Which kind, and where it ends, as soon as that shows. */
		if (have + take >= 5 && memcmp(hdr, "PROXY", 5) == 0) {
			for (i = have > 0 ? have - 1 : 0; i + 1 < have + take;
			    i++)
				if (hdr[i] == '\r' && hdr[i + 1] == '\n') {
					end = i + 2;
					break;
				}
			if (end > PROXY_V1_MAX ||
			    (end == 0 && have + take >= PROXY_V1_MAX)) {
				snprintf(err, errlen, "PROXY v1 header longer "
				    "than %d bytes", PROXY_V1_MAX);
				return -1;
			}
		} else if (have + take >= PROXY_V2_SIGLEN &&
		    memcmp(hdr, PROXY_V2_SIG, PROXY_V2_SIGLEN) == 0) {
			if (have + take >= 16) {
				end = 16 + ((size_t)hdr[14] << 8 | hdr[15]);
				if (end > PROXY_MAX) {
					snprintf(err, errlen, "PROXY v2 header "
					    "of %zu bytes is too long", end);
					return -1;
				}
			}
		} else if (memcmp(hdr, "PROXY", have + take < 5 ?
		    have + take : 5) != 0 && memcmp(hdr, PROXY_V2_SIG,
		    have + take < PROXY_V2_SIGLEN ? have + take :
		    PROXY_V2_SIGLEN) != 0) {
			snprintf(err, errlen, "no PROXY header");
			return -1;
		}
		if (end != 0 && have + take > end)
			take = end - have;
		/* Consume exactly what is header: it has arrived already. */
		if (recv(rq->rq_fd, peek, take, MSG_DONTWAIT) != (ssize_t)take) {
			snprintf(err, errlen, "reading the PROXY header: %s",
			    strerror(errno));
			return -1;
		}
		stats_add(&rq->rq_stats->s_bytes_in, take);
		have += take;
	}
	return (ssize_t)have;
}

static int
proxy_set_peer(struct ssd_request *rq, int family, const void *addr,
    uint16_t port)
{
	struct sockaddr_in	 sin;
	struct sockaddr_in6	 sin6;

	if (family == AF_INET) {
		memset(&sin, 0, sizeof(sin));
		sin.sin_family = AF_INET;
		memcpy(&sin.sin_addr, addr, 4);
		sin.sin_port = port;
		memcpy(&rq->rq_peer, &sin, sizeof(sin));
		rq->rq_peerlen = sizeof(sin);
	} else {
		memset(&sin6, 0, sizeof(sin6));
		sin6.sin6_family = AF_INET6;
		memcpy(&sin6.sin6_addr, addr, 16);
		sin6.sin6_port = port;
		memcpy(&rq->rq_peer, &sin6, sizeof(sin6));
		rq->rq_peerlen = sizeof(sin6);
	}
	addr_format((struct sockaddr *)&rq->rq_peer, rq->rq_peerlen,
	    rq->rq_peerstr, sizeof(rq->rq_peerstr));
	return 0;
}

static int
proxy_v1(struct ssd_request *rq, const unsigned char *hdr, size_t len,
    char *err, size_t errlen)
{
	char		 line[PROXY_V1_MAX + 1], *f[6], *save, *end;
	unsigned char	 a[16];
	unsigned long	 port;
	int		 n = 0, family;

	memcpy(line, hdr, len - 2);
	line[len - 2] = '\0';
	for (char *p = strtok_r(line, " ", &save); p != NULL && n < 6;
	    p = strtok_r(NULL, " ", &save))
		f[n++] = p;
	if (n >= 2 && strcmp(f[0], "PROXY") == 0 &&
	    strcmp(f[1], "UNKNOWN") == 0)
		return 0;	/* the socket's peer stands */
	if (n != 6 || strcmp(f[0], "PROXY") != 0 ||
	    (strcmp(f[1], "TCP4") != 0 && strcmp(f[1], "TCP6") != 0)) {
		snprintf(err, errlen, "malformed PROXY v1 header");
		return -1;
	}
	family = strcmp(f[1], "TCP4") == 0 ? AF_INET : AF_INET6;
	errno = 0;
	port = strtoul(f[4], &end, 10);
	if (inet_pton(family, f[2], a) != 1 || *end != '\0' || port > 65535 ||
	    errno != 0 || f[4][0] < '0' || f[4][0] > '9') {
		snprintf(err, errlen, "malformed PROXY v1 header");
		return -1;
	}
	return proxy_set_peer(rq, family, a, htons((uint16_t)port));
}

static int
proxy_v2(struct ssd_request *rq, const unsigned char *h, size_t len,
    char *err, size_t errlen)
{
	uint16_t	 port;
	int		 cmd = h[12] & 0x0f, fam = h[13];

	len -= 16;
	if ((h[12] & 0xf0) != 0x20) {
		snprintf(err, errlen, "PROXY v2 header of version %d",
		    h[12] >> 4);
		return -1;
	}
	if (cmd == 0x0)
		return 0;	/* LOCAL: a health check of the proxy's own */
	if (cmd != 0x1) {
		snprintf(err, errlen, "PROXY v2 command %d", cmd);
		return -1;
	}
	if (fam == 0x11 && len >= 12) {		/* TCP over IPv4 */
		memcpy(&port, h + 24, 2);	/* network order, as is */
		return proxy_set_peer(rq, AF_INET, h + 16, port);
	}
	if (fam == 0x21 && len >= 36) {		/* TCP over IPv6 */
		memcpy(&port, h + 48, 2);
		return proxy_set_peer(rq, AF_INET6, h + 16, port);
	}
	if (fam == 0x00)
		return 0;	/* UNSPEC: the socket's peer stands */
	snprintf(err, errlen, "PROXY v2 address family 0x%02x not supported",
	    fam);
	return -1;
}

int
proxy_read(struct ssd_request *rq, char *err, size_t errlen)
{
	unsigned char	 hdr[PROXY_MAX];
	ssize_t		 len;

	if ((len = proxy_take(rq, hdr, err, errlen)) == -1)
		return -1;
	if (memcmp(hdr, "PROXY", 5) == 0)
		return proxy_v1(rq, hdr, (size_t)len, err, errlen);
	return proxy_v2(rq, hdr, (size_t)len, err, errlen);
}
