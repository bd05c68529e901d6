/* SPDX-License-Identifier: ISC */
/* ctorabort.c - a test fixture: a plugin whose constructor aborts. */
#include <stdlib.h>

#include <sockserverd.h>

__attribute__((constructor)) static void
ctorabort_boom(void)
{
	abort();
}

static int
ctorabort_handle(struct ssd_request *rq)
{
	(void)rq;
	return 0;
}

SSD_HANDLER(ctorabort) = {
	.abi = SSD_ABI_VERSION,
	.name = "ctorabort",
	.handle = ctorabort_handle,
};
