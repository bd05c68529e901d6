/* SPDX-License-Identifier: ISC */
/*
 * fuzz_proxy_v2.c - libFuzzer harness of proxy_parse (daemon/proxy.c) on
 * version 2 headers: the input follows the 12-byte signature, so that
 * every run explores what comes after it (version and command, family,
 * length, addresses, TLVs).  Checks the contract as fuzz_proxy_v1 does,
 * plus: a complete header is exactly 16 + its length field, and what it
 * names is what the address block holds.
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proxy.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

#define FUZZ_CHECK(x) do {						\
	if (!(x)) {							\
		fprintf(stderr, "fuzz_proxy_v2: %s:%d: %s\n",		\
		    __FILE__, __LINE__, #x);				\
		abort();						\
	}								\
} while (0)

static const uint8_t fuzz_sig[12] = {
	0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a
};

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct proxy_hdr	 ph, ph2;
	char			 err[256];
	size_t			 len = sizeof(fuzz_sig) + size, alen;
	ssize_t			 n, m;
	uint8_t			*b;

	/* Exactly len bytes, so that ASan sees any overread. */
	b = malloc(len);
	FUZZ_CHECK(b != NULL);
	memcpy(b, fuzz_sig, sizeof(fuzz_sig));
	memcpy(b + sizeof(fuzz_sig), data, size);
	err[0] = '\0';
	n = proxy_parse(b, len, &ph, err, sizeof(err));
	FUZZ_CHECK(n >= -1 && n <= (ssize_t)len);
	if (n == -1)
		FUZZ_CHECK(err[0] != '\0');
	if (n == 0 && len >= 16)
		FUZZ_CHECK(ph.ph_need == 16 + ((size_t)b[14] << 8 | b[15]) &&
		    ph.ph_need > len);
	if (n > 0) {
		FUZZ_CHECK(ph.ph_version == 2);
		FUZZ_CHECK((size_t)n == 16 + ((size_t)b[14] << 8 | b[15]));
		FUZZ_CHECK(b[12] == 0x20 || b[12] == 0x21);
		FUZZ_CHECK(proxy_parse(b, (size_t)n - 1, &ph2, NULL, 0) == 0);
		if (ph.ph_family != AF_UNSPEC) {
			/* PROXY, TCP over IPv4 or IPv6: the block's bytes. */
			FUZZ_CHECK(b[12] == 0x21);
			FUZZ_CHECK((ph.ph_family == AF_INET && b[13] == 0x11) ||
			    (ph.ph_family == AF_INET6 && b[13] == 0x21));
			alen = ph.ph_family == AF_INET ? 4 : 16;
			FUZZ_CHECK((size_t)n >= 16 + 4 + 2 * alen);
			FUZZ_CHECK(memcmp(ph.ph_src, b + 16, alen) == 0);
			FUZZ_CHECK(memcmp(ph.ph_dst, b + 16 + alen, alen) == 0);
			FUZZ_CHECK(ph.ph_sport == (b[16 + 2 * alen] << 8 |
			    b[17 + 2 * alen]));
			FUZZ_CHECK(ph.ph_dport == (b[18 + 2 * alen] << 8 |
			    b[19 + 2 * alen]));
		} else
			FUZZ_CHECK(b[12] == 0x20 || b[13] == 0x00);
	}
	/* Prefixes: never complete or refused unless the whole is. */
	m = proxy_parse(b, len / 2, &ph2, NULL, 0);
	if (n <= 0)
		FUZZ_CHECK(m <= 0);
	if (n >= 0)
		FUZZ_CHECK(m == 0 || (n > 0 && m == n));
	free(b);
	return 0;
}
