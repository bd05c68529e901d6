/* SPDX-License-Identifier: ISC */
/*
 * acl.c - CIDR parsing and matching for allow/deny (socketserver's
 * verify_request).  Pure functions: no I/O, no allocation.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "daemon.h"

static void
acl_mask(uint8_t *addr, int bits, int nbytes)
{
	for (int i = 0; i < nbytes; i++) {
		int keep = bits - i * 8;

		if (keep >= 8)
			continue;
		addr[i] &= keep <= 0 ? 0 : (uint8_t)(0xff << (8 - keep));
	}
}

/*
 * A v4-mapped block (::ffff:a.b.c.d/96 and longer) is the IPv4 block it
 * maps: acl_match judges a v4-mapped peer as IPv4, and the log shows a v4
 * client of a dual-stack listener as [::ffff:a.b.c.d], the form an
 * operator will copy into a rule.
 */
static void
acl_unmap(struct cidr *c)
{
	static const uint8_t mapped[12] = {
		0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff
	};

	if (c->c_family != AF_INET6 || c->c_bits < 96 ||
	    memcmp(c->c_addr, mapped, sizeof(mapped)) != 0)
		return;
	memmove(c->c_addr, c->c_addr + 12, 4);
	memset(c->c_addr + 4, 0, 12);
	c->c_family = AF_INET;
	c->c_bits -= 96;
}

int
acl_parse(const char *s, struct cidr *c)
{
	char		 buf[INET6_ADDRSTRLEN + 8], *slash, *end;
	long		 bits;
	int		 maxbits;

	if (strlen(s) >= sizeof(buf))
		return -1;
	strcpy(buf, s);
	slash = strchr(buf, '/');
	if (slash != NULL)
		*slash++ = '\0';
	memset(c, 0, sizeof(*c));
	if (inet_pton(AF_INET, buf, c->c_addr) == 1) {
		c->c_family = AF_INET;
		maxbits = 32;
	} else if (inet_pton(AF_INET6, buf, c->c_addr) == 1) {
		c->c_family = AF_INET6;
		maxbits = 128;
	} else
		return -1;
	if (slash == NULL) {
		c->c_bits = maxbits;
		acl_unmap(c);
		return 0;
	}
	if (*slash < '0' || *slash > '9')
		return -1;
	errno = 0;
	bits = strtol(slash, &end, 10);
	if (errno != 0 || *end != '\0' || bits < 0 || bits > maxbits)
		return -1;
	c->c_bits = (int)bits;
	acl_mask(c->c_addr, c->c_bits, maxbits / 8);
	acl_unmap(c);
	return 0;
}

bool
acl_match(const struct cidr *list, size_t n, const struct sockaddr *sa)
{
	uint8_t		 addr[16];
	int		 family;

	if (sa->sa_family == AF_INET) {
		memcpy(addr, &((const struct sockaddr_in *)(const void *)sa)->
		    sin_addr, 4);
		family = AF_INET;
	} else if (sa->sa_family == AF_INET6) {
		const struct in6_addr *a6 =
		    &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr;

		if (IN6_IS_ADDR_V4MAPPED(a6)) {
			memcpy(addr, &a6->s6_addr[12], 4);
			family = AF_INET;
		} else {
			memcpy(addr, a6->s6_addr, 16);
			family = AF_INET6;
		}
	} else
		return false;

	for (size_t i = 0; i < n; i++) {
		uint8_t	 masked[16];
		int	 nbytes = family == AF_INET ? 4 : 16;

		if (list[i].c_family != family)
			continue;
		memcpy(masked, addr, (size_t)nbytes);
		acl_mask(masked, list[i].c_bits, nbytes);
		if (memcmp(masked, list[i].c_addr, (size_t)nbytes) == 0)
			return true;
	}
	return false;
}

bool
acl_refuses(const struct listener *l, const struct sockaddr *sa)
{
	if (sa->sa_family != AF_INET && sa->sa_family != AF_INET6)
		return false;
	return acl_match(l->l_deny, l->l_ndeny, sa) ||
	    (l->l_nallow > 0 && !acl_match(l->l_allow, l->l_nallow, sa));
}
