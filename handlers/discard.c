/* SPDX-License-Identifier: ISC */
/*
 * discard.c - the Discard Protocol (RFC 863): reads and throws away
 * everything until the client closes; answers nothing.
 */
#include <sockserverd.h>

static int
discard_handle(struct ssd_request *rq)
{
	char	 buf[16384];
	ssize_t	 n;

	while ((n = ssd_read(rq, buf, sizeof(buf))) > 0)
		continue;
	return n == 0 ? 0 : -1;
}

SSD_HANDLER(discard) = {
	.abi = SSD_ABI_VERSION,
	.name = "discard",
	.description = "Discard Protocol (RFC 863): reads and ignores input",
	.handle = discard_handle,
};
