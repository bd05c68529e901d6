/* SPDX-License-Identifier: ISC */
/*
 * refserver.c - the benchmark's yardstick: a minimal, honest echo server.
 * One thread, one level-triggered epoll set, accept4() until EAGAIN, one
 * read() into a shared 16 KiB buffer and one write() back per readable
 * event.  A short write parks the rest in a per-connection buffer and
 * waits for EPOLLOUT, so it is correct, not merely fast.  An idle
 * connection costs no user-space memory beyond a 16-byte slot.
 *
 * usage: refserver [-a ADDR] [-p PORT] [-q BACKLOG]
 * Prints "port N" on stdout once listening; exits 0 on SIGTERM or SIGINT.
 */
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>

#include <netinet/in.h>
#include <arpa/inet.h>

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define REF_BUFSIZE	16384
#define REF_MAXEVENTS	256

/* Bytes read but not yet written back (a short write), per fd. */
struct ref_conn {
	char	*c_pend;
	size_t	 c_len;
};

static volatile sig_atomic_t	 ref_quit;
static struct ref_conn		*ref_conns;
static size_t			 ref_nconns;

static void
ref_on_signal(int sig)
{
	(void)sig;
	ref_quit = 1;
}

static void
ref_close(int ep, int fd)
{
	(void)ep;
	close(fd);	/* also leaves the epoll set: the fd has no dup */
	if ((size_t)fd < ref_nconns) {
		free(ref_conns[fd].c_pend);
		ref_conns[fd].c_pend = NULL;
		ref_conns[fd].c_len = 0;
	}
}

/* Writes p[0..n); keeps what the socket did not take.  -1: close. */
static int
ref_send(int ep, int fd, const char *p, size_t n)
{
	struct ref_conn		*c = &ref_conns[fd];
	struct epoll_event	 ev;
	ssize_t			 w;

	while (n > 0) {
		w = send(fd, p, n, MSG_NOSIGNAL);
		if (w > 0) {
			p += w;
			n -= (size_t)w;
			continue;
		}
		if (w == -1 && errno == EINTR)
			continue;
		if (w == -1 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		return -1;
	}
	if (n == 0)
		return 0;
	/* Stop reading until the backlog is written: EPOLLOUT only. */
	if ((c->c_pend = malloc(n)) == NULL)
		return -1;
	memcpy(c->c_pend, p, n);
	c->c_len = n;
	ev.events = EPOLLOUT;
	ev.data.fd = fd;
	return epoll_ctl(ep, EPOLL_CTL_MOD, fd, &ev);
}

static void
ref_flush(int ep, int fd)
{
	struct ref_conn		*c = &ref_conns[fd];
	struct epoll_event	 ev;
	char			*p = c->c_pend;
	size_t			 n = c->c_len;

	c->c_pend = NULL;
	c->c_len = 0;
	if (ref_send(ep, fd, p, n) == -1) {
		free(p);
		ref_close(ep, fd);
		return;
	}
	free(p);
	if (c->c_pend == NULL) {
		ev.events = EPOLLIN;
		ev.data.fd = fd;
		if (epoll_ctl(ep, EPOLL_CTL_MOD, fd, &ev) == -1)
			ref_close(ep, fd);
	}
}

static void
ref_accept(int ep, int lfd)
{
	struct epoll_event	 ev;
	int			 fd;

	for (;;) {
		fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd == -1) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			if (errno != EAGAIN && errno != EWOULDBLOCK)
				perror("refserver: accept4");
			return;
		}
		if ((size_t)fd >= ref_nconns) {
			close(fd);
			continue;
		}
		ev.events = EPOLLIN;
		ev.data.fd = fd;
		if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) == -1)
			close(fd);
	}
}

int
main(int argc, char *argv[])
{
	static char		 buf[REF_BUFSIZE];
	struct epoll_event	 evs[REF_MAXEVENTS], ev;
	struct sockaddr_in	 sin;
	struct sigaction	 sa;
	struct rlimit		 rl;
	socklen_t		 slen;
	const char		*addr = "127.0.0.1";
	int			 port = 0, backlog = 4096, lfd, ep, n, ch;
	int			 one = 1;

	while ((ch = getopt(argc, argv, "a:p:q:")) != -1) {
		switch (ch) {
		case 'a':
			addr = optarg;
			break;
		case 'p':
			port = atoi(optarg);
			break;
		case 'q':
			backlog = atoi(optarg);
			break;
		default:
			fprintf(stderr, "usage: refserver [-a ADDR] [-p PORT] "
			    "[-q BACKLOG]\n");
			return 2;
		}
	}

	/* As many connections as the fd limit allows. */
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	if (getrlimit(RLIMIT_NOFILE, &rl) == -1 ||
	    rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur > (1u << 20))
		rl.rlim_cur = 1u << 20;
	ref_nconns = rl.rlim_cur;
	/* calloc of this size is mmap'd: pages become resident as used. */
	if ((ref_conns = calloc(ref_nconns, sizeof(*ref_conns))) == NULL) {
		perror("refserver: calloc");
		return 1;
	}

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = ref_on_signal;	/* no SA_RESTART: epoll_wait EINTR */
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons((unsigned short)port);
	if (inet_pton(AF_INET, addr, &sin.sin_addr) != 1) {
		fprintf(stderr, "refserver: bad address %s\n", addr);
		return 2;
	}
	lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (lfd == -1 ||
	    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
	    bind(lfd, (struct sockaddr *)&sin, sizeof(sin)) == -1 ||
	    listen(lfd, backlog) == -1) {
		perror("refserver: listen");
		return 1;
	}
	slen = sizeof(sin);
	if (getsockname(lfd, (struct sockaddr *)&sin, &slen) == -1) {
		perror("refserver: getsockname");
		return 1;
	}
	if ((ep = epoll_create1(EPOLL_CLOEXEC)) == -1) {
		perror("refserver: epoll_create1");
		return 1;
	}
	ev.events = EPOLLIN;
	ev.data.fd = lfd;
	if (epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev) == -1) {
		perror("refserver: epoll_ctl");
		return 1;
	}
	printf("port %d\n", ntohs(sin.sin_port));
	fflush(stdout);

	while (!ref_quit) {
		n = epoll_wait(ep, evs, REF_MAXEVENTS, -1);
		if (n == -1) {
			if (errno == EINTR)
				continue;
			perror("refserver: epoll_wait");
			return 1;
		}
		for (int i = 0; i < n; i++) {
			int	fd = evs[i].data.fd;
			ssize_t	r;

			if (fd == lfd) {
				ref_accept(ep, lfd);
				continue;
			}
			if (ref_conns[fd].c_pend != NULL) {
				ref_flush(ep, fd);
				continue;
			}
			r = read(fd, buf, sizeof(buf));
			if (r > 0) {
				if (ref_send(ep, fd, buf, (size_t)r) == -1)
					ref_close(ep, fd);
			} else if (r == 0 || (errno != EAGAIN &&
			    errno != EWOULDBLOCK && errno != EINTR)) {
				ref_close(ep, fd);
			}
		}
	}
	return 0;
}
