/* SPDX-License-Identifier: ISC */
/*
 * tlsref.c - the TLS benchmark's yardstick: refserver.c's echo server with
 * OpenSSL 3 in front.  One thread, one level-triggered epoll set,
 * non-blocking sockets; accept4() until EAGAIN, then per connection:
 * SSL_accept until done (parking on WANT_READ/WANT_WRITE), and once
 * established one SSL_read into a shared 16 KiB buffer (a whole record's
 * plaintext) and one SSL_write back per readable event.  A write that does
 * not complete parks the rest in a per-connection buffer and waits for
 * what OpenSSL asked for (EPOLLOUT, or EPOLLIN on WANT_READ); reading stops
 * meanwhile, so it is correct, not merely fast.  SSL_MODE_RELEASE_BUFFERS
 * gives the record buffers back while a connection is idle.
 *
 * usage: tlsref -c CERT -k KEY [-a ADDR] [-p PORT] [-q BACKLOG]
 * Prints "port N" on stdout once listening; exits 0 on SIGTERM or SIGINT.
 */
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>

#include <netinet/in.h>
#include <arpa/inet.h>

#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#define TREF_BUFSIZE	16384
#define TREF_MAXEVENTS	256

/* Per fd: the TLS session, and plaintext not yet taken by SSL_write. */
struct tref_conn {
	SSL	*c_ssl;
	char	*c_pend;
	size_t	 c_len;
	bool	 c_established;
};

static volatile sig_atomic_t	 tref_quit;
static struct tref_conn		*tref_conns;
static size_t			 tref_nconns;

static void
tref_on_signal(int sig)
{
	(void)sig;
	tref_quit = 1;
}

static void
tref_close(int fd)
{
	struct tref_conn *c = &tref_conns[fd];

	if (c->c_ssl != NULL) {
		/* close_notify once, without waiting for the peer's. */
		if (c->c_established)
			(void)SSL_shutdown(c->c_ssl);
		SSL_free(c->c_ssl);
	}
	free(c->c_pend);
	memset(c, 0, sizeof(*c));
	close(fd);	/* also leaves the epoll set: the fd has no dup */
}

/* Waits for events (EPOLLIN or EPOLLOUT) on fd; -1: close. */
static int
tref_want(int ep, int fd, uint32_t events)
{
	struct epoll_event ev;

	ev.events = events;
	ev.data.fd = fd;
	return epoll_ctl(ep, EPOLL_CTL_MOD, fd, &ev);
}

/*
 * What an SSL_* call that returned rc <= 0 asks for: EPOLLIN or EPOLLOUT
 * to retry, 0 to close (an error, or the peer's close_notify).
 */
static uint32_t
tref_wait_for(SSL *ssl, int rc)
{
	switch (SSL_get_error(ssl, rc)) {
	case SSL_ERROR_WANT_READ:
		return EPOLLIN;
	case SSL_ERROR_WANT_WRITE:
		return EPOLLOUT;
	default:
		ERR_clear_error();
		return 0;
	}
}

/*
 * Writes p[0..n) with SSL_write (partial writes allowed); parks what was
 * not taken and waits for what OpenSSL asked for.  -1: close.
 */
static int
tref_send(int ep, int fd, const char *p, size_t n)
{
	struct tref_conn	*c = &tref_conns[fd];
	uint32_t		 want;
	int			 w;

	while (n > 0) {
		w = SSL_write(c->c_ssl, p, n > INT32_MAX ? INT32_MAX : (int)n);
		if (w > 0) {
			p += w;
			n -= (size_t)w;
			continue;
		}
		if ((want = tref_wait_for(c->c_ssl, w)) == 0)
			return -1;
		/* SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER: the retry may pass
		 * a copy of the same bytes. */
		if ((c->c_pend = malloc(n)) == NULL)
			return -1;
		memcpy(c->c_pend, p, n);
		c->c_len = n;
		return tref_want(ep, fd, want);
	}
	return 0;
}

static void
tref_flush(int ep, int fd)
{
	struct tref_conn	*c = &tref_conns[fd];
	char			*p = c->c_pend;
	size_t			 n = c->c_len;

	c->c_pend = NULL;
	c->c_len = 0;
	if (tref_send(ep, fd, p, n) == -1) {
		free(p);
		tref_close(fd);
		return;
	}
	free(p);
	if (c->c_pend == NULL && tref_want(ep, fd, EPOLLIN) == -1)
		tref_close(fd);
}

static void
tref_handshake(int ep, int fd)
{
	struct tref_conn	*c = &tref_conns[fd];
	uint32_t		 want;
	int			 rc;

	rc = SSL_accept(c->c_ssl);
	if (rc == 1) {
		c->c_established = true;
		if (tref_want(ep, fd, EPOLLIN) == -1)
			tref_close(fd);
		return;
	}
	if ((want = tref_wait_for(c->c_ssl, rc)) == 0 ||
	    tref_want(ep, fd, want) == -1)
		tref_close(fd);
}

static void
tref_echo(int ep, int fd, char *buf, size_t size)
{
	struct tref_conn	*c = &tref_conns[fd];
	uint32_t		 want;
	int			 r;

	r = SSL_read(c->c_ssl, buf, (int)size);
	if (r > 0) {
		if (tref_send(ep, fd, buf, (size_t)r) == -1)
			tref_close(fd);
		return;
	}
	want = tref_wait_for(c->c_ssl, r);
	if (want == 0)
		tref_close(fd);
	else if (want == EPOLLOUT && tref_want(ep, fd, EPOLLOUT) == -1)
		tref_close(fd);
}

static void
tref_accept(int ep, int lfd, SSL_CTX *ctx)
{
	struct epoll_event	 ev;
	int			 fd;

	for (;;) {
		fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd == -1) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			if (errno != EAGAIN && errno != EWOULDBLOCK)
				perror("tlsref: accept4");
			return;
		}
		if ((size_t)fd >= tref_nconns ||
		    (tref_conns[fd].c_ssl = SSL_new(ctx)) == NULL ||
		    SSL_set_fd(tref_conns[fd].c_ssl, fd) != 1) {
			tref_close(fd);
			continue;
		}
		SSL_set_accept_state(tref_conns[fd].c_ssl);
		ev.events = EPOLLIN;
		ev.data.fd = fd;
		if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) == -1)
			tref_close(fd);
	}
}

static SSL_CTX *
tref_ctx(const char *cert, const char *key)
{
	SSL_CTX *ctx;

	if ((ctx = SSL_CTX_new(TLS_server_method())) == NULL)
		return NULL;
	if (SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1 ||
	    SSL_CTX_use_certificate_chain_file(ctx, cert) != 1 ||
	    SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1 ||
	    SSL_CTX_check_private_key(ctx) != 1) {
		SSL_CTX_free(ctx);
		return NULL;
	}
	SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS |
	    SSL_MODE_ENABLE_PARTIAL_WRITE |
	    SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION);
	return ctx;
}

static void __attribute__((noreturn))
tref_usage(void)
{
	fprintf(stderr, "usage: tlsref -c CERT -k KEY [-a ADDR] [-p PORT] "
	    "[-q BACKLOG]\n");
	exit(2);
}

int
main(int argc, char *argv[])
{
	static char		 buf[TREF_BUFSIZE];
	struct epoll_event	 evs[TREF_MAXEVENTS], ev;
	struct sockaddr_in	 sin;
	struct sigaction	 sa;
	struct rlimit		 rl;
	socklen_t		 slen;
	SSL_CTX			*ctx;
	const char		*addr = "127.0.0.1", *cert = NULL, *key = NULL;
	int			 port = 0, backlog = 4096, lfd, ep, n, ch;
	int			 one = 1;

	while ((ch = getopt(argc, argv, "a:c:k:p:q:")) != -1) {
		switch (ch) {
		case 'a':
			addr = optarg;
			break;
		case 'c':
			cert = optarg;
			break;
		case 'k':
			key = optarg;
			break;
		case 'p':
			port = atoi(optarg);
			break;
		case 'q':
			backlog = atoi(optarg);
			break;
		default:
			tref_usage();
		}
	}
	if (cert == NULL || key == NULL)
		tref_usage();
	if ((ctx = tref_ctx(cert, key)) == NULL) {
		fprintf(stderr, "tlsref: cannot load %s and %s:\n", cert, key);
		ERR_print_errors_fp(stderr);
		return 1;
	}

	/* As many connections as the fd limit allows. */
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	if (getrlimit(RLIMIT_NOFILE, &rl) == -1 ||
	    rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur > (1u << 20))
		rl.rlim_cur = 1u << 20;
	tref_nconns = rl.rlim_cur;
	/* calloc of this size is mmap'd: pages become resident as used. */
	if ((tref_conns = calloc(tref_nconns, sizeof(*tref_conns))) == NULL) {
		perror("tlsref: calloc");
		return 1;
	}

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = tref_on_signal;	/* no SA_RESTART: epoll_wait EINTR */
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons((unsigned short)port);
	if (inet_pton(AF_INET, addr, &sin.sin_addr) != 1) {
		fprintf(stderr, "tlsref: bad address %s\n", addr);
		return 2;
	}
	lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (lfd == -1 ||
	    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
	    bind(lfd, (struct sockaddr *)&sin, sizeof(sin)) == -1 ||
	    listen(lfd, backlog) == -1) {
		perror("tlsref: listen");
		return 1;
	}
	slen = sizeof(sin);
	if (getsockname(lfd, (struct sockaddr *)&sin, &slen) == -1) {
		perror("tlsref: getsockname");
		return 1;
	}
	if ((ep = epoll_create1(EPOLL_CLOEXEC)) == -1) {
		perror("tlsref: epoll_create1");
		return 1;
	}
	ev.events = EPOLLIN;
	ev.data.fd = lfd;
	if (epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev) == -1) {
		perror("tlsref: epoll_ctl");
		return 1;
	}
	printf("port %d\n", ntohs(sin.sin_port));
	fflush(stdout);

	while (!tref_quit) {
		n = epoll_wait(ep, evs, TREF_MAXEVENTS, -1);
		if (n == -1) {
			if (errno == EINTR)
				continue;
			perror("tlsref: epoll_wait");
			return 1;
		}
		for (int i = 0; i < n; i++) {
			int fd = evs[i].data.fd;

			if (fd == lfd)
				tref_accept(ep, lfd, ctx);
			else if (tref_conns[fd].c_ssl == NULL)
				continue;	/* closed earlier in this batch */
			else if (!tref_conns[fd].c_established)
				tref_handshake(ep, fd);
			else if (tref_conns[fd].c_pend != NULL)
				tref_flush(ep, fd);
			else
				tref_echo(ep, fd, buf, sizeof(buf));
		}
	}
	for (size_t fd = 0; fd < tref_nconns; fd++)
		if (tref_conns[fd].c_ssl != NULL)
			tref_close((int)fd);
	SSL_CTX_free(ctx);
	return 0;
}
