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

/* Buffers at least need bytes of the connection (more may come: they
 * stay buffered for the handler); -1 at EOF or error. */
static int
proxy_fill(struct ssd_request *rq, size_t need)
{
	size_t	 cap = need > REQUEST_BUFSIZE ? need : REQUEST_BUFSIZE;
	ssize_t	 n;

	if (rq->rq_cap < cap) {
		rq->rq_buf = xreallocarray(rq->rq_buf, cap, 1);
		rq->rq_cap = cap;
	}
	while (rq->rq_len - rq->rq_off < need) {
		if (rq->rq_off > 0) {
			memmove(rq->rq_buf, rq->rq_buf + rq->rq_off,
			    rq->rq_len - rq->rq_off);
			rq->rq_len -= rq->rq_off;
			rq->rq_off = 0;
		}
		n = request_read_raw(rq, rq->rq_buf + rq->rq_len,
		    rq->rq_cap - rq->rq_len);
		if (n <= 0) {
			if (n == 0)
				errno = ECONNRESET;
			return -1;
		}
		rq->rq_len += (size_t)n;
	}
	return 0;
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
proxy_v1(struct ssd_request *rq, char *err, size_t errlen)
{
	char		 line[PROXY_V1_MAX + 1], *f[6], *save, *end;
	const char	*eol = NULL;
	unsigned char	 a[16];
	unsigned long	 port;
	size_t		 len;
	int		 n = 0, family;

	for (len = 0; eol == NULL; ) {
		const char *b = rq->rq_buf + rq->rq_off;
		size_t have = rq->rq_len - rq->rq_off;

		for (; len + 1 < have && len + 2 <= PROXY_V1_MAX; len++)
			if (b[len] == '\r' && b[len + 1] == '\n') {
				eol = b + len + 2;
				break;
			}
		if (eol != NULL)
			break;
		if (len + 2 > PROXY_V1_MAX) {
			snprintf(err, errlen, "PROXY v1 header longer than %d "
			    "bytes", PROXY_V1_MAX);
			return -1;
		}
		if (proxy_fill(rq, have + 1) == -1) {
			snprintf(err, errlen, "connection ended inside the "
			    "PROXY header: %s", strerror(errno));
			return -1;
		}
	}
	len += 2;
	memcpy(line, rq->rq_buf + rq->rq_off, len - 2);
	line[len - 2] = '\0';
	rq->rq_off += len;
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
proxy_v2(struct ssd_request *rq, char *err, size_t errlen)
{
	const unsigned char	*h;
	size_t			 len;
	uint16_t		 port;
	int			 cmd, fam;

	if (proxy_fill(rq, 16) == -1)
		goto short_read;
	h = (const unsigned char *)rq->rq_buf + rq->rq_off;
	len = (size_t)h[14] << 8 | h[15];
	if ((h[12] & 0xf0) != 0x20) {
		snprintf(err, errlen, "PROXY v2 header of version %d",
		    h[12] >> 4);
		return -1;
	}
	if (proxy_fill(rq, 16 + len) == -1)
		goto short_read;
	h = (const unsigned char *)rq->rq_buf + rq->rq_off;
	cmd = h[12] & 0x0f;
	fam = h[13];
	rq->rq_off += 16 + len;
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
short_read:
	snprintf(err, errlen, "connection ended inside the PROXY header: %s",
	    strerror(errno));
	return -1;
}

int
proxy_read(struct ssd_request *rq, char *err, size_t errlen)
{
	if (proxy_fill(rq, 5) == -1) {
		snprintf(err, errlen, "no PROXY header: %s",
		    errno == ETIMEDOUT ? "timed out" : strerror(errno));
		return -1;
	}
	if (memcmp(rq->rq_buf + rq->rq_off, "PROXY", 5) == 0)
		return proxy_v1(rq, err, errlen);
	if (proxy_fill(rq, PROXY_V2_SIGLEN) == 0 &&
	    memcmp(rq->rq_buf + rq->rq_off, PROXY_V2_SIG, PROXY_V2_SIGLEN) == 0)
		return proxy_v2(rq, err, errlen);
	snprintf(err, errlen, "no PROXY header");
	return -1;
}
