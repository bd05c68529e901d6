/* SPDX-License-Identifier: ISC */
/*
 * time.c - the Time Protocol (RFC 868): the time as a 32-bit big-endian
 * count of seconds since 1900-01-01 00:00 UTC, then close.  The count
 * wraps in 2036, as the RFC's 32 bits imply.
 */
#include <stdint.h>
#include <time.h>

#include <sockserverd.h>

/* Seconds from 1900-01-01 to 1970-01-01. */
#define TIME_EPOCH_OFFSET 2208988800ULL

static int
time_handle(struct ssd_request *rq)
{
	uint32_t	 t = (uint32_t)((uint64_t)time(NULL) +
	    TIME_EPOCH_OFFSET);
	unsigned char	 b[4];

	b[0] = (unsigned char)(t >> 24);
	b[1] = (unsigned char)(t >> 16);
	b[2] = (unsigned char)(t >> 8);
	b[3] = (unsigned char)t;
	return ssd_write(rq, b, sizeof(b));
}

SSD_HANDLER(time) = {
	.abi = SSD_ABI_VERSION,
	.name = "time",
	.description = "Time Protocol (RFC 868): seconds since 1900, binary",
	.handle = time_handle,
};
