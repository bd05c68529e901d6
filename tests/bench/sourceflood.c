/* SPDX-License-Identifier: ISC */
/*
 * sourceflood.c - many distinct client sources against one listener, for
 * the memory bound of the per-source table (make bench-sources).  One
 * thread, one epoll set, -c connections in flight; each connection is one
 * request from a source never seen before:
 *
 *   -m proxy  from 127.0.0.1-style loopback addresses (a pool of 4096 in
 *             127.1.0.0/20, so ephemeral ports never run out), each
 *             connection starting with a PROXY v2 header that names
 *             source number i: 10.0.0.0/8 + i for IPv4, or with -6
 *             2001:db8:(i)::1 (each in a /64 of its own);
 *   -m bind   no header: the connection itself comes from 127.x.y.z, a
 *             distinct loopback address per source (127.0.0.0/8 is all
 *             loopback), for listeners without proxy_protocol.
 *
 * Each sends "x", waits for the echo (so the daemon has judged the source
 * and run the handler), then closes with a RST (SO_LINGER 0: no
 * TIME_WAIT).  Connections the daemon closes without an echo are counted
 * as refused.  Stops after -n sources or -d seconds; prints one line of
 * key=value results.  Bounded in time, loopback only.
 */
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>

#include <netinet/in.h>
#include <arpa/inet.h>

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#ifndef IP_BIND_ADDRESS_NO_PORT
#define IP_BIND_ADDRESS_NO_PORT 24
#endif

#define MAXCONNS 1024

struct conn {
	int		fd;
	unsigned	src;
	size_t		sent;
	size_t		len;
	unsigned char	out[64];
};

static double
now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static size_t
v2_header(unsigned char *p, unsigned i, int v6)
{
	static const unsigned char sig[12] = {
		0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49,
		0x54, 0x0a
	};
	size_t n = 0;

	memcpy(p, sig, 12);
	p[12] = 0x21;	/* v2, PROXY */
	if (!v6) {
		uint32_t src = htonl(0x0a000000u + i), dst = htonl(0x0a000001u);

		p[13] = 0x11;
		p[14] = 0;
		p[15] = 12;
		memcpy(p + 16, &src, 4);
		memcpy(p + 20, &dst, 4);
		p[24] = 0x13, p[25] = 0x88;	/* 5000 */
		p[26] = 0, p[27] = 80;
		n = 28;
	} else {
		unsigned char src[16] = { 0x20, 0x01, 0x0d, 0xb8 };

		src[4] = (unsigned char)(i >> 24);
		src[5] = (unsigned char)(i >> 16);
		src[6] = (unsigned char)(i >> 8);
		src[7] = (unsigned char)i;
		src[15] = 1;
		p[13] = 0x21;
		p[14] = 0;
		p[15] = 36;
		memcpy(p + 16, src, 16);
		memcpy(p + 32, src, 16);
		p[48] = 0x13, p[49] = 0x88;
		p[50] = 0, p[51] = 80;
		n = 52;
	}
	return n;
}

int
main(int argc, char **argv)
{
	const char	*mode = "proxy";
	unsigned	 total = 1000000, conc = 64, port = 0, next = 0;
	unsigned long	 served = 0, refused = 0, errors = 0;
	double		 secs = 300, t0, end;
	int		 v6 = 0, ch, ep;
	struct conn	*conns;
	struct epoll_event ev, evs[MAXCONNS];
	struct sockaddr_in dst;
	struct rlimit	 rl;

	while ((ch = getopt(argc, argv, "m:n:c:p:d:6")) != -1) {
		switch (ch) {
		case 'm': mode = optarg; break;
		case 'n': total = (unsigned)strtoul(optarg, NULL, 10); break;
		case 'c': conc = (unsigned)strtoul(optarg, NULL, 10); break;
		case 'p': port = (unsigned)strtoul(optarg, NULL, 10); break;
		case 'd': secs = strtod(optarg, NULL); break;
		case '6': v6 = 1; break;
		default:
			fprintf(stderr, "usage: sourceflood -p PORT [-m proxy|"
			    "bind] [-n SOURCES] [-c CONNS] [-d SECS] [-6]\n");
			return 2;
		}
	}
	if (port == 0 || port > 65535 || conc == 0 || conc > MAXCONNS ||
	    (strcmp(mode, "proxy") != 0 && strcmp(mode, "bind") != 0) ||
	    (strcmp(mode, "bind") == 0 && total > 0xfffffd)) {
		fprintf(stderr, "sourceflood: bad arguments\n");
		return 2;
	}
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	memset(&dst, 0, sizeof(dst));
	dst.sin_family = AF_INET;
	dst.sin_port = htons((uint16_t)port);
	dst.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	conns = calloc(conc, sizeof(*conns));
	if (conns == NULL || (ep = epoll_create1(0)) == -1) {
		perror("sourceflood");
		return 1;
	}
	t0 = now();
	end = t0 + secs;
	for (unsigned active = 0;;) {
		int n;

		/* Open until conc are in flight. */
		while (active < conc && next < total) {
			struct conn		*c = NULL;
			struct sockaddr_in	 src;
			int			 on = 1;

			for (unsigned k = 0; k < conc; k++)
				if (conns[k].fd <= 0) {
					c = &conns[k];
					break;
				}
			memset(c, 0, sizeof(*c));
			c->src = next++;
			c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
			if (c->fd == -1) {
				perror("socket");
				return 1;
			}
			setsockopt(c->fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT,
			    &on, sizeof(on));
			memset(&src, 0, sizeof(src));
			src.sin_family = AF_INET;
			if (strcmp(mode, "bind") == 0)
				/* 127.0.0.2 up: every source an address. */
				src.sin_addr.s_addr = htonl(0x7f000002u + c->src);
			else
				src.sin_addr.s_addr = htonl(0x7f010000u +
				    (c->src & 0xfff));
			if (bind(c->fd, (struct sockaddr *)&src,
			    sizeof(src)) == -1) {
				perror("bind");
				return 1;
			}
			c->len = 0;
			if (strcmp(mode, "proxy") == 0)
				c->len = v2_header(c->out, c->src, v6);
			c->out[c->len++] = 'x';
			if (connect(c->fd, (struct sockaddr *)&dst,
			    sizeof(dst)) == -1 && errno != EINPROGRESS) {
				errors++;
				close(c->fd);
				c->fd = 0;
				continue;
			}
			ev.events = EPOLLOUT | EPOLLIN;
			ev.data.ptr = c;
			epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev);
			active++;
		}
		if (active == 0 || now() > end)
			break;
		n = epoll_wait(ep, evs, MAXCONNS, 100);
		for (int k = 0; k < n; k++) {
			struct conn	*c = evs[k].data.ptr;
			unsigned char	 buf[64];
			ssize_t		 r;
			int		 done = 0;

			if (c->sent < c->len && (evs[k].events & EPOLLOUT)) {
				r = write(c->fd, c->out + c->sent,
				    c->len - c->sent);
				if (r > 0)
					c->sent += (size_t)r;
				else if (errno != EAGAIN) {
					refused++;
					done = 1;
				}
				if (!done && c->sent == c->len) {
					ev.events = EPOLLIN;
					ev.data.ptr = c;
					epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
				}
			}
			if (!done && (evs[k].events & (EPOLLIN | EPOLLERR |
			    EPOLLHUP))) {
				r = read(c->fd, buf, sizeof(buf));
				if (r > 0) {
					served++;
					done = 1;
				} else if (r == 0 || errno != EAGAIN) {
					refused++;
					done = 1;
				}
			}
			if (done) {
				struct linger lg = { 1, 0 };

				setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &lg,
				    sizeof(lg));
				close(c->fd);
				c->fd = 0;
				active--;
			}
		}
	}
	printf("sources=%u served=%lu refused=%lu errors=%lu secs=%.1f "
	    "rate=%.0f/s\n", next, served, refused, errors, now() - t0,
	    (served + refused) / (now() - t0));
	return 0;
}
