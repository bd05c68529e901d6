/* SPDX-License-Identifier: ISC */
/* badabi.c - a test fixture: a plugin built for a future ABI. */
#include <sockserverd.h>

static int
badabi_handle(struct ssd_request *rq)
{
	(void)rq;
	return 0;
}

SSD_HANDLER(badabi) = {
	.abi = SSD_ABI_VERSION + 1,
	.name = "badabi",
	.handle = badabi_handle,
};
