/* SPDX-License-Identifier: ISC */
/*
 * echo.c - the Echo Protocol (RFC 862): every byte received is sent back.
 * Over a datagram listener, the datagram comes back as one datagram.
 */
#include <sockserverd.h>

static int
echo_handle(struct ssd_request *rq)
{
	/* Small enough that an idle request's stack under the event model
	 * stays within one page. */
	char	 buf[2048];
	ssize_t	 n;

	/* A datagram, even an empty one, is answered with its copy. */
	if (ssd_socktype(rq) == SOCK_DGRAM && ssd_write(rq, "", 0) == -1)
		return -1;
	while ((n = ssd_read(rq, buf, sizeof(buf))) > 0)
		if (ssd_write(rq, buf, (size_t)n) == -1)
			return -1;
	return n == 0 ? 0 : -1;
}

SSD_HANDLER(echo) = {
	.abi = SSD_ABI_VERSION,
	.name = "echo",
	.description = "Echo Protocol (RFC 862): sends back what it receives",
	.handle = echo_handle,
};
