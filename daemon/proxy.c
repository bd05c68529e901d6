/* SPDX-License-Identifier: ISC */
/*
 * proxy.c - the HAProxy PROXY protocol, versions 1 (text) and 2 (binary),
 * at the start of a stream connection: the header names the client the
 * load balancer accepted, which then stands for the peer (ssd_peer,
 * allow/deny, max_per_source).  Bytes after the header stay on the
 * connection for the handler.
 *
 * Two halves: proxy_parse, a pure function of the bytes (strict: what the
 * protocol text allows and nothing else), and proxy_read, which takes
 * exactly the header's bytes off the connection, through the request's
 * rq_wait so that the concurrency model's waiting applies, the whole
 * header within the listener's timeout.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <string.h>
#include <time.h>

#include "server.h"
#include "proxy.h"

#define PROXY_V2_SIG	"\r\n\r\n\0\r\nQUIT\n"
#define PROXY_V2_SIGLEN	12
#define PROXY_V2_HDRLEN	16

/* The longest header taken: v2 with TLVs up to this size. */
#define PROXY_MAX	1024

static ssize_t proxy_fail(char *, size_t, const char *, ...)
	    __attribute__((format(printf, 3, 4)));

static ssize_t
proxy_fail(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err != NULL && errlen > 0) {
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return -1;
}

/* A decimal number of 1 to 5 digits, no sign, no leading zero, at most
 * max: the ports and the IPv4 octets of a v1 line. */
static bool
proxy_v1_number(const char *s, size_t n, unsigned max, unsigned *v)
{
	unsigned x = 0;

	if (n == 0 || n > 5 || (n > 1 && s[0] == '0'))
		return false;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		x = x * 10 + (unsigned)(s[i] - '0');
	}
	if (x > max)
		return false;
	*v = x;
	return true;
}

/* Exactly four decimal numbers 0-255, no leading zero, one dot between. */
static bool
proxy_v1_ipv4(const char *s, size_t n, uint8_t *a)
{
	size_t		 i = 0, start;
	unsigned	 v;

	for (int part = 0; part < 4; part++) {
		for (start = i; i < n && s[i] != '.'; i++)
			continue;
		if (!proxy_v1_number(s + start, i - start, 255, &v))
			return false;
		a[part] = (uint8_t)v;
		if (part < 3 && (i == n || s[i] != '.'))
			return false;
		i++;		/* the dot */
	}
	return i == n + 1;
}

/* Groups of hexadecimal digits between colons, one "::" at most, 128
 * bits in all (inet_pton checks the shape); no dotted IPv4 tail, no
 * scope: the protocol text allows neither. */
static bool
proxy_v1_ipv6(const char *s, size_t n, uint8_t *a)
{
	char buf[INET6_ADDRSTRLEN];

	if (n == 0 || n >= sizeof(buf))
		return false;
	for (size_t i = 0; i < n; i++)
		if (!isxdigit((unsigned char)s[i]) && s[i] != ':')
			return false;
	memcpy(buf, s, n);
	buf[n] = '\0';
	return inet_pton(AF_INET6, buf, a) == 1;
}

/*
 * The protocol after "PROXY ", from the n bytes at p: "TCP4 " (AF_INET),
 * "TCP6 " (AF_INET6), or "UNKNOWN" then a space or CR LF (AF_UNSPEC).
 * Returns 1 with *family, 0 if n is too short to tell, -1 if it is none.
 */
static int
proxy_v1_proto(const char *p, size_t n, int *family)
{
	static const struct {
		const char	*name;
		int		 family;
	} protos[] = {
		{ "TCP4 ", AF_INET }, { "TCP6 ", AF_INET6 },
		{ "UNKNOWN", AF_UNSPEC },
	};

	for (size_t i = 0; i < sizeof(protos) / sizeof(protos[0]); i++) {
		size_t len = strlen(protos[i].name);

		if (memcmp(p, protos[i].name, n < len ? n : len) != 0)
			continue;
		*family = protos[i].family;
		if (*family != AF_UNSPEC)
			return n < len ? 0 : 1;
		/* UNKNOWN: the rest of the line, if any, after a space. */
		if (n <= len || (p[len] == '\r' && n == len + 1))
			return 0;
		return p[len] == ' ' || (p[len] == '\r' &&
		    p[len + 1] == '\n') ? 1 : -1;
	}
	return -1;
}

/*
 * "PROXY" has been seen.  The line is "PROXY" SP proto SP src SP dst SP
 * sport SP dport CR LF, or "PROXY UNKNOWN" and anything up to CR LF; at
 * most PROXY_V1_MAX bytes.  Fails as soon as the bytes seen cannot begin
 * such a line.
 */
static ssize_t
proxy_v1(const char *b, size_t len, struct proxy_hdr *ph, char *err,
    size_t errlen)
{
	const char	*f[4], *p, *lineend;
	size_t		 fl[4], end = 0, scan, n;
	unsigned	 sport, dport;
	int		 family, nf, rc;

	if (len > 5 && b[5] != ' ')
		return proxy_fail(err, errlen, "malformed PROXY v1 header: "
		    "no space after PROXY");
	if (len <= 6)
		return 0;
	if ((rc = proxy_v1_proto(b + 6, len - 6, &family)) == -1)
		return proxy_fail(err, errlen, "malformed PROXY v1 header: "
		    "the protocol is not TCP4, TCP6 or UNKNOWN");
	if (rc == 0)
		return 0;	/* (no CR LF can have come yet) */
	/* Where the line ends, if it does within the limit. */
	scan = len < PROXY_V1_MAX ? len : PROXY_V1_MAX;
	for (size_t i = 0; i + 1 < scan; i++)
		if (b[i] == '\r' && b[i + 1] == '\n') {
			end = i + 2;
			break;
		}
	/* TCP4/TCP6: no other character, and CR only in the CR LF. */
	n = end != 0 ? end - 2 : len;
	for (size_t i = 11; family != AF_UNSPEC && i < n; i++)
		if (strchr(family == AF_INET ? "0123456789. " :
		    "0123456789abcdefABCDEF: ", b[i]) == NULL ||
		    b[i] == '\0') {
			if (end == 0 && i + 1 == len && b[i] == '\r')
				break;
			return proxy_fail(err, errlen, "malformed PROXY v1 "
			    "header: character 0x%02x", (unsigned char)b[i]);
		}
	if (end == 0)
		return len >= PROXY_V1_MAX ? proxy_fail(err, errlen,
		    "PROXY v1 header longer than %d bytes", PROXY_V1_MAX) : 0;
	ph->ph_version = 1;
	ph->ph_family = family;
	if (family == AF_UNSPEC)
		return (ssize_t)end;	/* the rest is ignored */

	/* Exactly four fields, one space between each. */
	lineend = b + end - 2;
	p = b + 11;
	for (nf = 0; nf < 4; nf++) {
		const char *sp = memchr(p, ' ', (size_t)(lineend - p));

		f[nf] = p;
		fl[nf] = (size_t)((sp != NULL ? sp : lineend) - p);
		if (sp == NULL) {
			nf++;
			break;
		}
		p = sp + 1;
	}
	if (nf != 4 || f[3] + fl[3] != lineend)
		return proxy_fail(err, errlen, "malformed PROXY v1 header: "
		    "not four fields after the protocol");
	if (family == AF_INET ? !proxy_v1_ipv4(f[0], fl[0], ph->ph_src) ||
	    !proxy_v1_ipv4(f[1], fl[1], ph->ph_dst) :
	    !proxy_v1_ipv6(f[0], fl[0], ph->ph_src) ||
	    !proxy_v1_ipv6(f[1], fl[1], ph->ph_dst))
		return proxy_fail(err, errlen, "malformed PROXY v1 header: "
		    "an address that is not %s", family == AF_INET ?
		    "IPv4" : "IPv6");
	if (!proxy_v1_number(f[2], fl[2], 65535, &sport) ||
	    !proxy_v1_number(f[3], fl[3], 65535, &dport))
		return proxy_fail(err, errlen, "malformed PROXY v1 header: "
		    "a port that is not 0-65535");
	ph->ph_sport = (uint16_t)sport;
	ph->ph_dport = (uint16_t)dport;
	return (ssize_t)end;
}

/*
 * The signature's first byte has been seen.  16 bytes: signature,
 * version and command, family and transport, the length of what follows
 * (addresses, then TLVs).
 */
static ssize_t
proxy_v2(const uint8_t *b, size_t len, struct proxy_hdr *ph, char *err,
    size_t errlen)
{
	size_t		 total, alen, p;
	int		 cmd;

	if (memcmp(b, PROXY_V2_SIG, len < PROXY_V2_SIGLEN ? len :
	    PROXY_V2_SIGLEN) != 0)
		return proxy_fail(err, errlen, "no PROXY header");
	if (len <= PROXY_V2_SIGLEN)
		return 0;
	if (b[12] >> 4 != 2)
		return proxy_fail(err, errlen, "PROXY v2 header of version %d",
		    b[12] >> 4);
	cmd = b[12] & 0x0f;
	if (cmd != 0x0 && cmd != 0x1)
		return proxy_fail(err, errlen, "PROXY v2 command %d", cmd);
	/* LOCAL ignores the family; PROXY takes TCP over IPv4 or IPv6, or
	 * the unspecified family.  UDP and unix are refused, as the text
	 * lets a receiver refuse the unspecified family. */
	if (len > 13 && cmd == 0x1 && b[13] != 0x00 && b[13] != 0x11 &&
	    b[13] != 0x21)
		return proxy_fail(err, errlen, "PROXY v2 address family "
		    "0x%02x %s", b[13], b[13] == 0x12 || b[13] == 0x22 ||
		    b[13] == 0x31 || b[13] == 0x32 ? "not supported" :
		    "invalid");
	if (len < PROXY_V2_HDRLEN)
		return 0;
	total = PROXY_V2_HDRLEN + ((size_t)b[14] << 8 | b[15]);
	if (len < total) {
		ph->ph_need = total;
		return 0;
	}
	ph->ph_version = 2;
	ph->ph_family = AF_UNSPEC;
	/* LOCAL (a health check of the proxy's own) and the unspecified
	 * family: the block's content is ignored, its length skipped. */
	if (cmd == 0x0 || b[13] == 0x00)
		return (ssize_t)total;
	alen = b[13] == 0x11 ? 12 : 36;
	if (total - PROXY_V2_HDRLEN < alen)
		return proxy_fail(err, errlen, "PROXY v2 address block of %zu "
		    "bytes, %zu needed", total - PROXY_V2_HDRLEN, alen);
	/* TLVs: type, 16-bit length, value; each within the header. */
	for (p = PROXY_V2_HDRLEN + alen; p < total;) {
		size_t vlen;

		if (total - p < 3)
			return proxy_fail(err, errlen, "PROXY v2 TLV cut "
			    "short at byte %zu", p);
		vlen = (size_t)b[p + 1] << 8 | b[p + 2];
		if (vlen > total - p - 3)
			return proxy_fail(err, errlen, "PROXY v2 TLV at byte "
			    "%zu longer than the header", p);
		p += 3 + vlen;
	}
	ph->ph_family = b[13] == 0x11 ? AF_INET : AF_INET6;
	alen = ph->ph_family == AF_INET ? 4 : 16;
	memcpy(ph->ph_src, b + 16, alen);
	memcpy(ph->ph_dst, b + 16 + alen, alen);
	ph->ph_sport = (uint16_t)(b[16 + 2 * alen] << 8 | b[17 + 2 * alen]);
	ph->ph_dport = (uint16_t)(b[18 + 2 * alen] << 8 | b[19 + 2 * alen]);
	return (ssize_t)total;
}

ssize_t
proxy_parse(const void *buf, size_t len, struct proxy_hdr *ph_r, char *err,
    size_t errlen)
{
	const uint8_t *b = buf;

	memset(ph_r, 0, sizeof(*ph_r));
	if (len == 0)
		return 0;
	if (b[0] == '\r')
		return proxy_v2(b, len, ph_r, err, errlen);
	if (memcmp(b, "PROXY", len < 5 ? len : 5) != 0)
		return proxy_fail(err, errlen, "no PROXY header");
	if (len < 5)
		return 0;
	return proxy_v1(buf, len, ph_r, err, errlen);
}

/* Seconds on the monotonic clock. */
static double
proxy_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/*
 * Waits for more of the header until deadline (0: none).  rq_wait bounds
 * each wait by rq_timeout, which is lent the time left for this one wait:
 * a header trickled a byte at a time still has timeout in all.
 */
static int
proxy_wait(struct ssd_request *rq, double deadline)
{
	double	 timeout = rq->rq_timeout, left;
	int	 rc;

	if (deadline > 0) {
		if ((left = deadline - proxy_now()) <= 0) {
			rq->rq_timedout = true;
			errno = ETIMEDOUT;
			return -1;
		}
		rq->rq_timeout = left;
	}
	rc = rq->rq_wait(rq, rq->rq_fd, POLLIN);
	rq->rq_timeout = timeout;
	return rc;
}

/*
 * Takes the header off the connection and nothing more: the bytes after
 * it belong to the handler, which may be a program reading the socket
 * itself (exec).  Peeks at what has arrived, consumes only what the
 * parser says is header, and waits for the rest.  0 with *ph filled, or
 * -1 with err set.
 */
static int
proxy_take(struct ssd_request *rq, struct proxy_hdr *ph, char *err,
    size_t errlen)
{
	unsigned char	 hdr[PROXY_MAX];
	size_t		 have = 0, take;
	double		 deadline = 0;
	ssize_t		 n, end;

	if (rq->rq_timeout > 0)
		deadline = proxy_now() + rq->rq_timeout;
	for (;;) {
		n = recv(rq->rq_fd, hdr + have, sizeof(hdr) - have,
		    MSG_PEEK | MSG_DONTWAIT);
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
			    proxy_wait(rq, deadline) == 0)
				continue;
			snprintf(err, errlen, "%s PROXY header: %s",
			    have == 0 ? "no" : "incomplete",
			    errno == ETIMEDOUT ? "timed out" : strerror(errno));
			return -1;
		}
		if ((end = proxy_parse(hdr, have + (size_t)n, ph, err,
		    errlen)) == -1)
			return -1;
		if (end == 0 && (ph->ph_need > sizeof(hdr) ||
		    have + (size_t)n == sizeof(hdr))) {
			snprintf(err, errlen, "PROXY v2 header of %zu bytes is "
			    "too long (at most %d)", ph->ph_need, PROXY_MAX);
			return -1;
		}
		/* Consume exactly what is header: it has arrived already.
		 * (What was header in fewer bytes still is in more.) */
		SSD_ASSERT(end == 0 || (size_t)end >= have);
		take = end == 0 ? (size_t)n : (size_t)end - have;
		if (recv(rq->rq_fd, hdr + have, take, MSG_DONTWAIT) !=
		    (ssize_t)take) {
			snprintf(err, errlen, "reading the PROXY header: %s",
			    strerror(errno));
			return -1;
		}
		request_count_in(rq, take);
		have += take;
		if (end > 0)
			return 0;
	}
}

static void
proxy_set_peer(struct ssd_request *rq, const struct proxy_hdr *ph)
{
	struct sockaddr_in	 sin;
	struct sockaddr_in6	 sin6;

	if (ph->ph_family == AF_INET) {
		memset(&sin, 0, sizeof(sin));
		sin.sin_family = AF_INET;
		memcpy(&sin.sin_addr, ph->ph_src, 4);
		sin.sin_port = htons(ph->ph_sport);
		memcpy(&rq->rq_peer, &sin, sizeof(sin));
		rq->rq_peerlen = sizeof(sin);
	} else {
		memset(&sin6, 0, sizeof(sin6));
		sin6.sin6_family = AF_INET6;
		memcpy(&sin6.sin6_addr, ph->ph_src, 16);
		sin6.sin6_port = htons(ph->ph_sport);
		memcpy(&rq->rq_peer, &sin6, sizeof(sin6));
		rq->rq_peerlen = sizeof(sin6);
	}
	addr_format((struct sockaddr *)&rq->rq_peer, rq->rq_peerlen,
	    rq->rq_peerstr, sizeof(rq->rq_peerstr));
}

int
proxy_read(struct ssd_request *rq, char *err, size_t errlen)
{
	struct proxy_hdr ph;

	if (proxy_take(rq, &ph, err, errlen) == -1)
		return -1;
	/* AF_UNSPEC (v1 UNKNOWN, v2 LOCAL...): the socket's peer stands. */
	if (ph.ph_family != AF_UNSPEC)
		proxy_set_peer(rq, &ph);
	return 0;
}
