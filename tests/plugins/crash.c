/* SPDX-License-Identifier: ISC */
/*
 * crash.c - a test fixture: echoes lines, but "segv" makes it crash with
 * SIGSEGV and "abort" with abort(3), to show that under fork a crashing
 * handler takes down only its own process (or, with worker_processes,
 * only its own worker); "spin" makes it loop for ever without yielding,
 * as a stuck handler under event would (the per-worker watchdog); "sigs"
 * answers with the SigBlk, SigIgn and SigCgt lines of /proc/self/status
 * (what the process running the request blocks, ignores and catches);
 * "maps" answers the number of lines of /proc/self/maps (the mappings of
 * the process running the request) and a newline.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sockserverd.h>

static int
crash_handle(struct ssd_request *rq)
{
	char	 line[256];
	ssize_t	 n;

	while ((n = ssd_readline(rq, line, sizeof(line))) > 0) {
		if (strncmp(line, "segv", 4) == 0)
			raise(SIGSEGV);
		if (strncmp(line, "abort", 5) == 0)
			abort();
		if (strncmp(line, "spin", 4) == 0) {
			volatile unsigned long spins = 0;

			for (;;)
				spins++;
		}
		if (strncmp(line, "maps", 4) == 0) {
			FILE	*f = fopen("/proc/self/maps", "r");
			char	 m[512];
			int	 lines = 0;

			while (f != NULL && fgets(m, sizeof(m), f) != NULL)
				if (strchr(m, '\n') != NULL)
					lines++;
			if (f != NULL)
				fclose(f);
			if (ssd_printf(rq, "%d\n", lines) == -1)
				return -1;
			continue;
		}
		if (strncmp(line, "sigs", 4) == 0) {
			FILE	*f = fopen("/proc/self/status", "r");
			char	 st[256];

			while (f != NULL && fgets(st, sizeof(st), f) != NULL)
				if ((strncmp(st, "SigBlk:", 7) == 0 ||
				    strncmp(st, "SigIgn:", 7) == 0 ||
				    strncmp(st, "SigCgt:", 7) == 0) &&
				    ssd_write(rq, st, strlen(st)) == -1)
					break;
			if (f != NULL)
				fclose(f);
			if (ssd_write(rq, ".\n", 2) == -1)
				return -1;
			continue;
		}
		if (ssd_write(rq, line, (size_t)n) == -1)
			return -1;
	}
	return n == 0 ? 0 : -1;
}

SSD_HANDLER(crash) = {
	.abi = SSD_ABI_VERSION,
	.name = "crash",
	.description = "test fixture: crashes on request",
	.handle = crash_handle,
};
