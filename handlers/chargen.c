/* SPDX-License-Identifier: ISC */
/*
 * chargen.c - the Character Generator Protocol (RFC 864): lines of 72
 * printable ASCII characters (codes 32-126), each line starting one
 * character further along the 95-character cycle, ended by CRLF.  Over a
 * stream, lines flow until the client closes; over datagrams, each
 * datagram received is answered with one datagram of whole lines (the
 * RFC allows 0 to 512 characters: 6 lines, 444 bytes), whose first line
 * continues the cycle from the previous answer of this process (under
 * fork each answer is a new process's first, and starts the cycle).
 */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include <sockserverd.h>

#define CHARGEN_LINE	72
#define CHARGEN_CYCLE	95
#define CHARGEN_DGRAM_LINES 6

static atomic_uint chargen_dgram_next;

/* Writes n lines starting at cycle position *pos into buf. */
static size_t
chargen_fill(char *buf, size_t n, unsigned *pos)
{
	char *p = buf;

	for (size_t i = 0; i < n; i++) {
		for (unsigned j = 0; j < CHARGEN_LINE; j++)
			*p++ = (char)(' ' + (*pos + j) % CHARGEN_CYCLE);
		*p++ = '\r';
		*p++ = '\n';
		*pos = (*pos + 1) % CHARGEN_CYCLE;
	}
	return (size_t)(p - buf);
}

static int
chargen_handle(struct ssd_request *rq)
{
	/* One full cycle of lines: the pattern repeats after it. */
	char		 buf[CHARGEN_CYCLE * (CHARGEN_LINE + 2)];
	unsigned	 pos = 0;
	size_t		 len;

	if (ssd_socktype(rq) == SOCK_DGRAM) {
		/* Kept below CHARGEN_CYCLE, so it never wraps mid-cycle. */
		pos = atomic_load(&chargen_dgram_next);
		while (!atomic_compare_exchange_weak(&chargen_dgram_next, &pos,
		    (pos + CHARGEN_DGRAM_LINES) % CHARGEN_CYCLE))
			continue;
		len = chargen_fill(buf, CHARGEN_DGRAM_LINES, &pos);
		return ssd_write(rq, buf, len);
	}
	len = chargen_fill(buf, CHARGEN_CYCLE, &pos);
	for (;;)
		if (ssd_write(rq, buf, len) == -1)
			return 0;	/* the client closed: the normal end */
}

SSD_HANDLER(chargen) = {
	.abi = SSD_ABI_VERSION,
	.name = "chargen",
	.description = "Character Generator Protocol (RFC 864)",
	.handle = chargen_handle,
};
