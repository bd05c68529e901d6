/* SPDX-License-Identifier: ISC */
/*
 * forkrate.c - this machine's bare fork(2) rate, for scale beside the fork
 * model's connection rate: fork, _exit in the child, waitpid, for a
 * bounded time.  Prints "forks_per_s=N".
 */
#include <sys/wait.h>

#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

int
main(int argc, char *argv[])
{
	struct timespec	 a, b;
	double		 secs = argc > 1 ? atof(argv[1]) : 2.0, t = 0;
	long		 n = 0;

	clock_gettime(CLOCK_MONOTONIC, &a);
	while (t < secs) {
		pid_t pid = fork();

		if (pid == 0)
			_exit(0);
		if (pid == -1 || waitpid(pid, NULL, 0) == -1)
			return 1;
		n++;
		clock_gettime(CLOCK_MONOTONIC, &b);
		t = (b.tv_sec - a.tv_sec) + (b.tv_nsec - a.tv_nsec) / 1e9;
	}
	printf("forks_per_s=%.0f\n", n / t);
	return 0;
}
