/* SPDX-License-Identifier: ISC */
/*
 * fuzz_proxy_v1.c - libFuzzer harness of proxy_parse (daemon/proxy.c) on
 * raw bytes, seeded with version 1 lines.  Beyond the sanitizers it
 * checks the parser's contract: a complete header is never longer than
 * the input nor than the v1 limit, every shorter prefix of it asks for
 * more, a refused input has no accepted prefix, and an accepted TCP4
 * line is exactly the canonical text of what it was parsed into (no
 * leniency: no extra spaces, signs, leading zeros or fields).
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proxy.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

#define FUZZ_CHECK(x) do {						\
	if (!(x)) {							\
		fprintf(stderr, "fuzz_proxy_v1: %s:%d: %s\n",		\
		    __FILE__, __LINE__, #x);				\
		abort();						\
	}								\
} while (0)

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct proxy_hdr	 ph, ph2;
	char			 err[256], line[128], src[INET6_ADDRSTRLEN],
				 dst[INET6_ADDRSTRLEN];
	ssize_t			 n, m;
	uint8_t			*copy;

	/* A copy of exactly size bytes, so that ASan sees any overread. */
	copy = malloc(size > 0 ? size : 1);
	FUZZ_CHECK(copy != NULL);
	memcpy(copy, data, size);
	err[0] = '\0';
	n = proxy_parse(copy, size, &ph, err, sizeof(err));
	FUZZ_CHECK(n >= -1 && n <= (ssize_t)size);
	if (n == -1)
		FUZZ_CHECK(err[0] != '\0');
	if (n > 0) {
		FUZZ_CHECK(ph.ph_version == 1 || ph.ph_version == 2);
		FUZZ_CHECK(ph.ph_family == AF_INET ||
		    ph.ph_family == AF_INET6 || ph.ph_family == AF_UNSPEC);
		if (ph.ph_version == 1) {
			FUZZ_CHECK(n <= PROXY_V1_MAX);
			FUZZ_CHECK(copy[n - 2] == '\r' && copy[n - 1] == '\n');
		}
		/* The same header, cut just short: more is needed. */
		FUZZ_CHECK(proxy_parse(copy, (size_t)n - 1, &ph2, NULL, 0) ==
		    0);
		/* Extra bytes after it change nothing. */
		if ((size_t)n < size)
			FUZZ_CHECK(proxy_parse(copy, (size_t)n, &ph2, NULL,
			    0) == n && memcmp(&ph, &ph2, sizeof(ph)) == 0);
	}
	/* A prefix is never complete when the whole was not, and never
	 * refused when the whole was not refused. */
	if (size > 0) {
		m = proxy_parse(copy, size / 2, &ph2, NULL, 0);
		if (n <= 0)
			FUZZ_CHECK(m <= 0);
		if (n >= 0)
			FUZZ_CHECK(m == 0 || (n > 0 && m == n));
	}
	/* TCP4: what was accepted is the one canonical spelling. */
	if (n > 0 && ph.ph_version == 1 && ph.ph_family == AF_INET) {
		inet_ntop(AF_INET, ph.ph_src, src, sizeof(src));
		inet_ntop(AF_INET, ph.ph_dst, dst, sizeof(dst));
		snprintf(line, sizeof(line), "PROXY TCP4 %s %s %u %u\r\n", src,
		    dst, ph.ph_sport, ph.ph_dport);
		FUZZ_CHECK(strlen(line) == (size_t)n &&
		    memcmp(line, copy, (size_t)n) == 0);
	}
	/* TCP6: the fields parse back to the same addresses and ports. */
	if (n > 0 && ph.ph_version == 1 && ph.ph_family == AF_INET6) {
		inet_ntop(AF_INET6, ph.ph_src, src, sizeof(src));
		inet_ntop(AF_INET6, ph.ph_dst, dst, sizeof(dst));
		snprintf(line, sizeof(line), "PROXY TCP6 %s %s %u %u\r\n", src,
		    dst, ph.ph_sport, ph.ph_dport);
		/* (inet_ntop may write a dotted tail the parser refuses.) */
		if (strchr(line, '.') == NULL) {
			FUZZ_CHECK(proxy_parse(line, strlen(line), &ph2, NULL,
			    0) == (ssize_t)strlen(line));
			FUZZ_CHECK(memcmp(ph.ph_src, ph2.ph_src, 16) == 0 &&
			    memcmp(ph.ph_dst, ph2.ph_dst, 16) == 0 &&
			    ph.ph_sport == ph2.ph_sport &&
			    ph.ph_dport == ph2.ph_dport);
		}
	}
	free(copy);
	return 0;
}
