/* SPDX-License-Identifier: ISC */
/*
 * echo.c - the Echo Protocol (RFC 862): every byte received is sent back.
 * Over a datagram listener, the datagram comes back as one datagram.
 */
#include <stdlib.h>

#include <sockserverd.h>

/* A full TLS record's payload: a bulk stream goes back in records, and
 * system calls, of that size. */
#define ECHO_BULK	16384

static int
echo_handle(struct ssd_request *rq)
{
	/* Small enough that an idle request's stack under the event model
	 * stays within one page; a client that fills it is sending in bulk,
	 * and gets a buffer of ECHO_BULK bytes for the rest. */
	char	 small[2048], *buf = small, *big = NULL;
	size_t	 size = sizeof(small);
	ssize_t	 n;
	int	 rc = -1;

	/* A datagram, even an empty one, is answered with its copy. */
	if (ssd_socktype(rq) == SOCK_DGRAM && ssd_write(rq, "", 0) == -1)
		return -1;
	while ((n = ssd_read(rq, buf, size)) > 0) {
		if (ssd_write(rq, buf, (size_t)n) == -1)
			goto done;
		if ((size_t)n == size && big == NULL &&
		    ssd_socktype(rq) == SOCK_STREAM &&
		    (big = malloc(ECHO_BULK)) != NULL) {
			buf = big;
			size = ECHO_BULK;
		}
	}
	rc = n == 0 ? 0 : -1;
done:
	free(big);
	return rc;
}

SSD_HANDLER(echo) = {
	.abi = SSD_ABI_VERSION,
	.name = "echo",
	.description = "Echo Protocol (RFC 862): sends back what it receives",
	.handle = echo_handle,
};
