/* SPDX-License-Identifier: ISC */
/*
 * status.c - the daemon's live counters.  A client whose first line is an
 * HTTP request for /metrics gets them in the Prometheus text exposition
 * format, as an HTTP/1.0 response; any other client (any other first
 * line, or none before the listener's timeout) gets a plain-text summary
 * naming every listener.  Over datagrams: a datagram "GET /metrics" gets
 * the exposition, any other the summary, in one datagram.
 */
#include <string.h>

#include <sockserverd.h>

/* Headers of an HTTP request read before answering, at most. */
#define STATUS_MAX_HEADERS	100

static int
status_is_metrics(const char *line)
{
	return strncmp(line, "GET /metrics", 12) == 0 &&
	    (line[12] == ' ' || line[12] == '?' || line[12] == '\r' ||
	    line[12] == '\n' || line[12] == '\0');
}

static int
status_handle(struct ssd_request *rq)
{
	char	 line[1024];
	ssize_t	 n;

	n = ssd_readline(rq, line, sizeof(line));
	if (n > 0 && status_is_metrics(line)) {
		if (ssd_socktype(rq) == SOCK_DGRAM)
			return ssd_write_stats(rq, SSD_STATS_PROMETHEUS);
		/* The rest of the request: headers up to a blank line. */
		for (int i = 0; i < STATUS_MAX_HEADERS; i++) {
			if ((n = ssd_readline(rq, line, sizeof(line))) <= 0 ||
			    line[0] == '\n' || strcmp(line, "\r\n") == 0)
				break;
		}
		if (ssd_printf(rq, "HTTP/1.0 200 OK\r\nContent-Type: "
		    "text/plain; version=0.0.4; charset=utf-8\r\n"
		    "Connection: close\r\n\r\n") == -1)
			return -1;
		return ssd_write_stats(rq, SSD_STATS_PROMETHEUS);
	}
	return ssd_write_stats(rq, SSD_STATS_TEXT);
}

SSD_HANDLER(status) = {
	.abi = SSD_ABI_VERSION,
	.name = "status",
	.description = "live counters: a summary, or Prometheus on GET /metrics",
	.handle = status_handle,
};
