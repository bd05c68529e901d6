/* SPDX-License-Identifier: ISC */
/*
 * lower.c - the handler of Python's socketserver tutorial, as a plugin:
 * each chunk received comes back in lower case; a chunk that is "exit"
 * (a trailing newline ignored) ends the connection.
 *
 *   cc -shared -fPIC $(pkg-config --cflags sockserverd) -o lower.so lower.c
 */
#include <ctype.h>
#include <string.h>

#include <sockserverd.h>

static int
lower_handle(struct ssd_request *rq)
{
	char	 buf[4096];
	ssize_t	 n;

	while ((n = ssd_read(rq, buf, sizeof(buf))) > 0) {
		size_t len = (size_t)n;

		if (len > 0 && buf[len - 1] == '\n')
			len--;
		if (len > 0 && buf[len - 1] == '\r')
			len--;
		if (len == 4 && memcmp(buf, "exit", 4) == 0)
			return 0;
		for (ssize_t i = 0; i < n; i++)
			buf[i] = (char)tolower((unsigned char)buf[i]);
		if (ssd_write(rq, buf, (size_t)n) == -1)
			return -1;
	}
	return n == 0 ? 0 : -1;
}

SSD_HANDLER(lower) = {
	.abi = SSD_ABI_VERSION,
	.name = "lower",
	.description = "socketserver tutorial: replies in lower case",
	.handle = lower_handle,
};
