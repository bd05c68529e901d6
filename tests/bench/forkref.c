/* SPDX-License-Identifier: ISC */
/*
 * forkref.c - the fork model's own yardstick: the least a process per
 * connection can do.  One blocking accept loop; each connection is
 * handed to a fork(2)ed child that echoes with blocking read()/write()
 * until EOF and _exits; the parent closes its copy and reaps whatever
 * has exited (waitpid WNOHANG) before the next accept.  No timeouts, no
 * limits, no logging, no libraries but libc: what is left is the price
 * of a process per connection itself.
 *
 * usage: forkref [-a ADDR] [-p PORT] [-q BACKLOG]
 * Prints "port N" on stdout once listening; exits 0 on SIGTERM or SIGINT.
 */
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include <netinet/in.h>
#include <arpa/inet.h>

#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define FR_BUFSIZE	16384

static void
fr_child(int fd)
{
	char	 buf[FR_BUFSIZE];
	ssize_t	 n;

	while ((n = read(fd, buf, sizeof(buf))) > 0) {
		ssize_t off = 0;

		while (off < n) {
			ssize_t w = write(fd, buf + off, (size_t)(n - off));

			if (w <= 0)
				_exit(1);
			off += w;
		}
	}
	_exit(0);
}

static void
fr_on_signal(int sig)
{
	(void)sig;
	_exit(0);
}

int
main(int argc, char **argv)
{
	struct sockaddr_in	 sin;
	socklen_t		 len = sizeof(sin);
	const char		*addr = "127.0.0.1";
	int			 port = 0, backlog = 4096, ch, fd, on = 1;
	struct rlimit		 rl;

	while ((ch = getopt(argc, argv, "a:p:q:")) != -1) {
		switch (ch) {
		case 'a': addr = optarg; break;
		case 'p': port = atoi(optarg); break;
		case 'q': backlog = atoi(optarg); break;
		default:
			fprintf(stderr, "usage: forkref [-a ADDR] [-p PORT] "
			    "[-q BACKLOG]\n");
			return 2;
		}
	}
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	signal(SIGTERM, fr_on_signal);
	signal(SIGINT, fr_on_signal);
	signal(SIGPIPE, SIG_IGN);
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons((uint16_t)port);
	if (inet_pton(AF_INET, addr, &sin.sin_addr) != 1) {
		fprintf(stderr, "forkref: bad address %s\n", addr);
		return 2;
	}
	if ((fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1 ||
	    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on)) == -1 ||
	    bind(fd, (struct sockaddr *)&sin, sizeof(sin)) == -1 ||
	    listen(fd, backlog) == -1 ||
	    getsockname(fd, (struct sockaddr *)&sin, &len) == -1) {
		perror("forkref");
		return 1;
	}
	printf("port %d\n", ntohs(sin.sin_port));
	fflush(stdout);
	for (;;) {
		pid_t	 pid;
		int	 c = accept4(fd, NULL, NULL, SOCK_CLOEXEC);

		while (waitpid(-1, NULL, WNOHANG) > 0)
			continue;
		if (c == -1) {
			if (errno == EINTR || errno == ECONNABORTED ||
			    errno == EMFILE || errno == ENFILE)
				continue;
			perror("forkref: accept");
			return 1;
		}
		if ((pid = fork()) == 0) {
			close(fd);
			fr_child(c);
		}
		close(c);
	}
}
