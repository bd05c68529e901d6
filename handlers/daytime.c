/* SPDX-License-Identifier: ISC */
/*
 * daytime.c - the Daytime Protocol (RFC 867): one line with the current
 * date and time, ending in CRLF, then close.  The RFC leaves the syntax
 * free; this is the classic inetd form, "Weekday Mon DD HH:MM:SS YYYY",
 * in the daemon's local time zone.
 */
#include <time.h>

#include <sockserverd.h>

static int
daytime_handle(struct ssd_request *rq)
{
	char		 line[64];
	struct tm	 tm;
	time_t		 now = time(NULL);

	if (localtime_r(&now, &tm) == NULL ||
	    strftime(line, sizeof(line), "%a %b %d %H:%M:%S %Y\r\n",
	    &tm) == 0)
		return -1;
	return ssd_printf(rq, "%s", line);
}

SSD_HANDLER(daytime) = {
	.abi = SSD_ABI_VERSION,
	.name = "daytime",
	.description = "Daytime Protocol (RFC 867): the date and time as text",
	.handle = daytime_handle,
};
