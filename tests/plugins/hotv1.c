/* SPDX-License-Identifier: ISC */
/*
 * hotv1.c - a test fixture for hot replacement: answers every line with
 * "v1 LINE", so a test can tell which code serves a connection.
 */
#include <sockserverd.h>

static int
hot_handle(struct ssd_request *rq)
{
	char	 line[256];
	ssize_t	 n;

	while ((n = ssd_readline(rq, line, sizeof(line))) > 0)
		if (ssd_printf(rq, "v1 %s", line) == -1)
			return -1;
	return n == 0 ? 0 : -1;
}

SSD_HANDLER(hot) = {
	.abi = SSD_ABI_VERSION,
	.name = "hot",
	.description = "test fixture: version 1",
	.handle = hot_handle,
};
