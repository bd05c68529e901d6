/* SPDX-License-Identifier: ISC */
/*
 * proxy.h - the PROXY protocol header parser of proxy.c: a pure function
 * from bytes to a result (no socket, no global, no allocation), so that
 * the unit tests and the fuzzer run exactly what the daemon runs.  A leaf
 * header: it needs nothing of the loop or of the daemon's types.
 */
#ifndef PROXY_H
#define PROXY_H

#include <sys/types.h>
#include <stddef.h>
#include <stdint.h>

/* The longest version 1 line, CR LF included (the protocol's limit). */
#define PROXY_V1_MAX	107

/* What a header says. */
struct proxy_hdr {
	int		ph_version;	/* 1 or 2 */
	/* AF_INET or AF_INET6: the connection the header names.
	 * AF_UNSPEC: the socket's own peer stands (v1 UNKNOWN, v2 LOCAL,
	 * v2 PROXY with the unspecified family). */
	int		ph_family;
	uint8_t		ph_src[16];	/* network order; 4 bytes for v4 */
	uint8_t		ph_dst[16];
	uint16_t	ph_sport;	/* host order */
	uint16_t	ph_dport;
	/* When proxy_parse returns 0: the whole header's length, once the
	 * bytes seen tell it (v2 after 16 bytes), else 0. */
	size_t		ph_need;
};

/*
 * Parses the PROXY protocol header (version 1 or 2, as the HAProxy
 * protocol text specifies them, and nothing else) at the start of
 * buf[0..len).  Returns:
 *   > 0  the header is complete and valid: its length, *ph_r filled; the
 *        bytes after it are not the header's;
 *   0    buf is a valid beginning of a header that needs more bytes;
 *        every byte of buf belongs to the header;
 *   -1   buf cannot begin a valid header: the reason is in err (may be
 *        NULL), and no extension of buf is valid either.
 * Reads only buf[0..len); nothing to free.
 */
ssize_t	proxy_parse(const void *buf, size_t len, struct proxy_hdr *ph_r,
	    char *err, size_t errlen);

#endif /* PROXY_H */
