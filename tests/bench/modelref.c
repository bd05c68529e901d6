/* SPDX-License-Identifier: ISC */
/*
 * modelref.c - the thread and fork models' own yardsticks: the least a
 * thread (-m thread, "threadref") or a process (-m fork, "forkref") per
 * connection can do.  One blocking accept loop; each connection is echoed
 * with blocking read() into a 2 KiB buffer on the stack (so that an idle
 * connection touches as little of it as it can) and write() of what was
 * read, until EOF or an error, by a detached thread (64 KiB stack) or by
 * a fork(2)ed child that then _exits (the parent closes its copy and
 * reaps whatever has exited, waitpid WNOHANG, before the next accept).
 * No timeouts, no limits, no logging, no libraries but libc: what is left
 * is the price of the thread (a wake-up and a context switch per message)
 * or of the process per connection itself.
 *
 * usage: modelref -m thread|fork [-a ADDR] [-p PORT] [-q BACKLOG]
 * Prints "port N" on stdout once listening; exits 0 on SIGTERM or SIGINT.
 */
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include <netinet/in.h>
#include <arpa/inet.h>

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MR_BUFSIZE	2048
#define MR_STACK	(64 * 1024)

/* Echoes fd until EOF or an error; 0, or -1 after a failed write. */
static int
mr_echo(int fd)
{
	char	 buf[MR_BUFSIZE];
	ssize_t	 n;

	while ((n = read(fd, buf, sizeof(buf))) > 0) {
		ssize_t off = 0;

		while (off < n) {
			ssize_t w = write(fd, buf + off, (size_t)(n - off));

			if (w <= 0)
				return -1;
			off += w;
		}
	}
	return 0;
}

static void *
mr_thread(void *arg)
{
	int fd = (int)(intptr_t)arg;

	mr_echo(fd);
	close(fd);
	return NULL;
}

static void
mr_on_signal(int sig)
{
	(void)sig;
	_exit(0);
}

static int
mr_usage(void)
{
	fprintf(stderr, "usage: modelref -m thread|fork [-a ADDR] [-p PORT] "
	    "[-q BACKLOG]\n");
	return 2;
}

int
main(int argc, char **argv)
{
	struct sockaddr_in	 sin;
	socklen_t		 len = sizeof(sin);
	pthread_attr_t		 attr;
	const char		*addr = "127.0.0.1", *model = NULL;
	int			 port = 0, backlog = 4096, ch, fd, on = 1;
	int			 forking;
	struct rlimit		 rl;

	while ((ch = getopt(argc, argv, "a:m:p:q:")) != -1) {
		switch (ch) {
		case 'a': addr = optarg; break;
		case 'm': model = optarg; break;
		case 'p': port = atoi(optarg); break;
		case 'q': backlog = atoi(optarg); break;
		default: return mr_usage();
		}
	}
	if (model == NULL || (strcmp(model, "thread") != 0 &&
	    strcmp(model, "fork") != 0))
		return mr_usage();
	forking = strcmp(model, "fork") == 0;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	signal(SIGTERM, mr_on_signal);
	signal(SIGINT, mr_on_signal);
	signal(SIGPIPE, SIG_IGN);
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons((uint16_t)port);
	if (inet_pton(AF_INET, addr, &sin.sin_addr) != 1) {
		fprintf(stderr, "modelref: bad address %s\n", addr);
		return 2;
	}
	if ((fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1 ||
	    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on)) == -1 ||
	    bind(fd, (struct sockaddr *)&sin, sizeof(sin)) == -1 ||
	    listen(fd, backlog) == -1 ||
	    getsockname(fd, (struct sockaddr *)&sin, &len) == -1) {
		perror("modelref");
		return 1;
	}
	printf("port %d\n", ntohs(sin.sin_port));
	fflush(stdout);
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	pthread_attr_setstacksize(&attr, MR_STACK);
	for (;;) {
		pthread_t	 t;
		int		 c = accept4(fd, NULL, NULL, SOCK_CLOEXEC);

		while (forking && waitpid(-1, NULL, WNOHANG) > 0)
			continue;
		if (c == -1) {
			if (errno == EINTR || errno == ECONNABORTED ||
			    errno == EMFILE || errno == ENFILE)
				continue;
			perror("modelref: accept");
			return 1;
		}
		if (forking) {
			if (fork() == 0) {
				close(fd);
				_exit(mr_echo(c) == 0 ? 0 : 1);
			}
			close(c);
		} else if (pthread_create(&t, &attr, mr_thread,
		    (void *)(intptr_t)c) != 0)
			close(c);
	}
}
