/* SPDX-License-Identifier: ISC */
/*
 * fuzz_cidr.c - libFuzzer harness of acl_parse and acl_match
 * (daemon/acl.c), the allow/deny rules an operator writes.  The input is
 * a rule, then optionally a NUL and the bytes of a client address (4 for
 * IPv4, 16 for IPv6).  Checks: a parsed block is in range and masked,
 * never a v4-mapped IPv6 block of prefix 96 or more, reads back the same
 * from its own text, contains its own network address, and acl_match
 * agrees with a plain bit-by-bit comparison for the client.
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

#define FUZZ_CHECK(x) do {						\
	if (!(x)) {							\
		fprintf(stderr, "fuzz_cidr: %s:%d: %s\n",		\
		    __FILE__, __LINE__, #x);				\
		abort();						\
	}								\
} while (0)

static const uint8_t fuzz_mapped[12] = {
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff
};

/* Bit i (from the most significant) of a. */
static int
fuzz_bit(const uint8_t *a, int i)
{
	return a[i / 8] >> (7 - i % 8) & 1;
}

/* A socket address for family and the address bytes a. */
static const struct sockaddr *
fuzz_sa(struct sockaddr_storage *ss, int family, const uint8_t *a)
{
	memset(ss, 0, sizeof(*ss));
	if (family == AF_INET) {
		struct sockaddr_in *sin = (struct sockaddr_in *)(void *)ss;

		sin->sin_family = AF_INET;
		memcpy(&sin->sin_addr, a, 4);
	} else {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)(void *)ss;

		sin6->sin6_family = AF_INET6;
		memcpy(&sin6->sin6_addr, a, 16);
	}
	return (const struct sockaddr *)ss;
}

/* What acl_match must say for one block and a client (family, a). */
static bool
fuzz_expect(const struct cidr *c, int family, const uint8_t *a)
{
	if (family == AF_INET6 && memcmp(a, fuzz_mapped, 12) == 0) {
		family = AF_INET;	/* a v4-mapped client is IPv4 */
		a += 12;
	}
	if (c->c_family != family)
		return false;
	for (int i = 0; i < c->c_bits; i++)
		if (fuzz_bit(a, i) != fuzz_bit(c->c_addr, i))
			return false;
	return true;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sockaddr_storage	 ss;
	struct cidr		 c, c2;
	const uint8_t		*nul, *addr = NULL;
	char			*rule, text[INET6_ADDRSTRLEN + 8];
	uint8_t			 mapped[16];
	size_t			 rlen, alen = 0, nbytes;
	int			 afamily = 0;

	nul = memchr(data, '\0', size);
	rlen = nul != NULL ? (size_t)(nul - data) : size;
	if (nul != NULL) {
		addr = nul + 1;
		alen = size - rlen - 1;
		afamily = alen >= 16 ? AF_INET6 : alen >= 4 ? AF_INET : 0;
	}
	/* The rule, exactly as long as it is, so ASan sees an overread. */
	rule = malloc(rlen + 1);
	FUZZ_CHECK(rule != NULL);
	memcpy(rule, data, rlen);
	rule[rlen] = '\0';
	memset(&c, 0xa5, sizeof(c));
	if (acl_parse(rule, &c) == -1) {
		free(rule);
		return 0;
	}
	FUZZ_CHECK(c.c_family == AF_INET || c.c_family == AF_INET6);
	nbytes = c.c_family == AF_INET ? 4 : 16;
	FUZZ_CHECK(c.c_bits >= 0 && c.c_bits <= (int)nbytes * 8);
	for (int i = c.c_bits; i < 128; i++)
		FUZZ_CHECK(fuzz_bit(c.c_addr, i) == 0);
	if (c.c_family == AF_INET6)
		FUZZ_CHECK(c.c_bits < 96 ||
		    memcmp(c.c_addr, fuzz_mapped, 12) != 0);
	/* Its own text reads back the same. */
	FUZZ_CHECK(inet_ntop(c.c_family, c.c_addr, text, sizeof(text)) !=
	    NULL);
	snprintf(text + strlen(text), sizeof(text) - strlen(text), "/%d",
	    c.c_bits);
	FUZZ_CHECK(acl_parse(text, &c2) == 0);
	FUZZ_CHECK(c2.c_family == c.c_family && c2.c_bits == c.c_bits &&
	    memcmp(c2.c_addr, c.c_addr, 16) == 0);
	/* Its network address is in it, v4-mapped too. */
	FUZZ_CHECK(acl_match(&c, 1, fuzz_sa(&ss, c.c_family, c.c_addr)));
	if (c.c_family == AF_INET) {
		memcpy(mapped, fuzz_mapped, 12);
		memcpy(mapped + 12, c.c_addr, 4);
		FUZZ_CHECK(acl_match(&c, 1, fuzz_sa(&ss, AF_INET6, mapped)));
	}
	/* The client of the input, against a plain comparison. */
	if (afamily != 0)
		FUZZ_CHECK(acl_match(&c, 1, fuzz_sa(&ss, afamily, addr)) ==
		    fuzz_expect(&c, afamily, addr));
	free(rule);
	return 0;
}
