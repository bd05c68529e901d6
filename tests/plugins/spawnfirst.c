/* SPDX-License-Identifier: ISC */
/*
 * spawnfirst.c - a test fixture: a handler that hands its connection to a
 * child process which reads a line from it, answers "hello\n" and exits
 * with status 3, and calls ssd_waitpid only once the child has read
 * (the child says so on a pipe): a program quicker than its handler, so
 * that ssd_waitpid's byte count must include what the program moved
 * before the call.  For the blocking models (the pipe read blocks).
 */
#include <sys/wait.h>

#include <errno.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

#include <sockserverd.h>

static int
spawnfirst_handle(struct ssd_request *rq)
{
	int	 fd = ssd_fd(rq), p[2], st;
	pid_t	 pid;
	char	 c;

	if (pipe(p) == -1)
		return -1;
	if ((pid = fork()) == 0) {
		char	 line[256];
		size_t	 got = 0;
		ssize_t	 n;

		close(p[0]);
		while (got < sizeof(line) && (n = read(fd, line + got, 1)) > 0)
			if (line[got++] == '\n')
				break;
		if (write(p[1], "r", 1) != 1 || write(fd, "hello\n", 6) != 6)
			_exit(1);
		_exit(3);
	}
	close(p[1]);
	if (pid == -1) {
		close(p[0]);
		return -1;
	}
	while (read(p[0], &c, 1) == -1 && errno == EINTR)
		continue;
	close(p[0]);
	if (ssd_waitpid(rq, pid, &st) == -1)
		return -1;
	ssd_log(rq, LOG_INFO, "program status %d", WEXITSTATUS(st));
	return 0;
}

SSD_HANDLER(spawnfirst) = {
	.abi = SSD_ABI_VERSION,
	.name = "spawnfirst",
	.description = "test fixture: a program that reads before ssd_waitpid",
	.handle = spawnfirst_handle,
};
