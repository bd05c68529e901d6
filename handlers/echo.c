/* SPDX-License-Identifier: ISC */
/*
 * echo.c - the Echo Protocol (RFC 862): every byte received is sent back.
 * Over a datagram listener, the datagram comes back as one datagram.
 */
#include <sockserverd.h>

static int
echo_handle(struct ssd_request *rq)
{
	char	 buf[16384];
	ssize_t	 n;

	/* A datagram, even an empty one, is answered with its copy. */
	if (ssd_socktype(rq) == SOCK_DGRAM) {
		if ((n = ssd_read(rq, buf, sizeof(buf))) < 0)
			return -1;
		return ssd_write(rq, buf, (size_t)n);
	}
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
