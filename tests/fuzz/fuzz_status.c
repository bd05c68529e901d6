/* SPDX-License-Identifier: ISC */
/*
 * fuzz_status.c - libFuzzer harness of the status handler's request line:
 * status_is_metrics (handlers/status.c, a static helper, reached by
 * including the handler's source as STYLE R9 allows for handlers) on the
 * first line as ssd_readline would hand it over: through the first
 * newline, at most 1023 bytes, NUL-terminated.  Checks the answer
 * against the rule: "GET /metrics" followed by a space, '?', CR, LF or
 * the end of the line.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../handlers/status.c"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

#define FUZZ_CHECK(x) do {						\
	if (!(x)) {							\
		fprintf(stderr, "fuzz_status: %s:%d: %s\n",		\
		    __FILE__, __LINE__, #x);				\
		abort();						\
	}								\
} while (0)

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t	*nl = memchr(data, '\n', size);
	size_t		 n = nl != NULL ? (size_t)(nl - data) + 1 : size;
	char		*line;
	size_t		 len;
	bool		 want;

	if (n > 1023)
		n = 1023;
	/* Exactly the line's bytes and its NUL: ASan sees an overread. */
	line = malloc(n + 1);
	FUZZ_CHECK(line != NULL);
	memcpy(line, data, n);
	line[n] = '\0';
	len = strlen(line);
	want = len >= 12 && memcmp(line, "GET /metrics", 12) == 0 &&
	    (len == 12 || line[12] == ' ' || line[12] == '?' ||
	    line[12] == '\r' || line[12] == '\n');
	FUZZ_CHECK((status_is_metrics(line) != 0) == want);
	free(line);
	return 0;
}
