/* SPDX-License-Identifier: ISC */
/*
 * threadref.c - the thread model's own yardstick: the least a thread per
 * connection can do.  One blocking accept loop; each connection gets a
 * detached thread (64 KiB stack) that does blocking read() into a 2 KiB
 * buffer on its stack (so that an idle connection touches as little of
 * the stack as it can) and write() of what it read, until EOF or an
 * error.  No
 * timeouts, no limits, no logging: what is left is the price of a thread
 * per connection itself (a wake-up and a context switch per message).
 *
 * usage: threadref [-a ADDR] [-p PORT] [-q BACKLOG]
 * Prints "port N" on stdout once listening; exits 0 on SIGTERM or SIGINT.
 */
#include <sys/resource.h>
#include <sys/socket.h>

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

#define TR_BUFSIZE	2048
#define TR_STACK	(64 * 1024)

static void *
tr_conn(void *arg)
{
	int	 fd = (int)(intptr_t)arg;
	char	 buf[TR_BUFSIZE];
	ssize_t	 n;

	while ((n = read(fd, buf, sizeof(buf))) > 0) {
		ssize_t off = 0;

		while (off < n) {
			ssize_t w = write(fd, buf + off, (size_t)(n - off));

			if (w <= 0)
				goto out;
			off += w;
		}
	}
out:
	close(fd);
	return NULL;
}

static void
tr_on_signal(int sig)
{
	(void)sig;
	_exit(0);
}

int
main(int argc, char **argv)
{
	struct sockaddr_in	 sin;
	socklen_t		 len = sizeof(sin);
	pthread_attr_t		 attr;
	const char		*addr = "127.0.0.1";
	int			 port = 0, backlog = 4096, ch, fd, on = 1;
	struct rlimit		 rl;

	while ((ch = getopt(argc, argv, "a:p:q:")) != -1) {
		switch (ch) {
		case 'a': addr = optarg; break;
		case 'p': port = atoi(optarg); break;
		case 'q': backlog = atoi(optarg); break;
		default:
			fprintf(stderr, "usage: threadref [-a ADDR] [-p PORT] "
			    "[-q BACKLOG]\n");
			return 2;
		}
	}
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	signal(SIGTERM, tr_on_signal);
	signal(SIGINT, tr_on_signal);
	signal(SIGPIPE, SIG_IGN);
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons((uint16_t)port);
	if (inet_pton(AF_INET, addr, &sin.sin_addr) != 1) {
		fprintf(stderr, "threadref: bad address %s\n", addr);
		return 2;
	}
	if ((fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1 ||
	    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on)) == -1 ||
	    bind(fd, (struct sockaddr *)&sin, sizeof(sin)) == -1 ||
	    listen(fd, backlog) == -1 ||
	    getsockname(fd, (struct sockaddr *)&sin, &len) == -1) {
		perror("threadref");
		return 1;
	}
	printf("port %d\n", ntohs(sin.sin_port));
	fflush(stdout);
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	pthread_attr_setstacksize(&attr, TR_STACK);
	for (;;) {
		pthread_t	 t;
		int		 c = accept4(fd, NULL, NULL, SOCK_CLOEXEC);

		if (c == -1) {
			if (errno == EINTR || errno == ECONNABORTED ||
			    errno == EMFILE || errno == ENFILE)
				continue;
			perror("threadref: accept");
			return 1;
		}
		if (pthread_create(&t, &attr, tr_conn, (void *)(intptr_t)c))
			close(c);
	}
}
