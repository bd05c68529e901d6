/* SPDX-License-Identifier: ISC */
/*
 * dgramref.c - the datagram benchmark's yardstick: a minimal UDP echo
 * server.  One thread, one socket: recvmmsg(MSG_WAITFORONE) takes up to 64
 * datagrams a call (blocking for the first), sendmmsg sends their copies
 * back in one call.  No per-datagram state.
 *
 * usage: dgramref [-a ADDR] [-p PORT]
 * Prints "port N" on stdout once bound; exits 0 on SIGTERM or SIGINT.
 */
#include <sys/socket.h>

#include <netinet/in.h>
#include <arpa/inet.h>

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define REF_BATCH	64
#define REF_DGRAM	2048

static volatile sig_atomic_t ref_quit;

static void
ref_on_signal(int sig)
{
	(void)sig;
	ref_quit = 1;
}

int
main(int argc, char *argv[])
{
	static char		 bufs[REF_BATCH][REF_DGRAM];
	struct mmsghdr		 in[REF_BATCH], out[REF_BATCH];
	struct iovec		 iov[REF_BATCH], oiov[REF_BATCH];
	struct sockaddr_in	 peers[REF_BATCH], sin;
	struct sigaction	 sa;
	socklen_t		 slen;
	const char		*addr = "127.0.0.1";
	int			 port = 0, fd, n, ch, sent;

	while ((ch = getopt(argc, argv, "a:p:")) != -1) {
		switch (ch) {
		case 'a':
			addr = optarg;
			break;
		case 'p':
			port = atoi(optarg);
			break;
		default:
			fprintf(stderr, "usage: dgramref [-a ADDR] [-p PORT]\n");
			return 2;
		}
	}
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = ref_on_signal;	/* no SA_RESTART: recvmmsg EINTR */
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);

	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons((unsigned short)port);
	if (inet_pton(AF_INET, addr, &sin.sin_addr) != 1) {
		fprintf(stderr, "dgramref: bad address %s\n", addr);
		return 2;
	}
	fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd == -1 || bind(fd, (struct sockaddr *)&sin, sizeof(sin)) == -1) {
		perror("dgramref: bind");
		return 1;
	}
	slen = sizeof(sin);
	if (getsockname(fd, (struct sockaddr *)&sin, &slen) == -1) {
		perror("dgramref: getsockname");
		return 1;
	}
	printf("port %d\n", ntohs(sin.sin_port));
	fflush(stdout);

	while (!ref_quit) {
		for (int i = 0; i < REF_BATCH; i++) {
			iov[i].iov_base = bufs[i];
			iov[i].iov_len = REF_DGRAM;
			memset(&in[i], 0, sizeof(in[i]));
			in[i].msg_hdr.msg_iov = &iov[i];
			in[i].msg_hdr.msg_iovlen = 1;
			in[i].msg_hdr.msg_name = &peers[i];
			in[i].msg_hdr.msg_namelen = sizeof(peers[i]);
		}
		n = recvmmsg(fd, in, REF_BATCH, MSG_WAITFORONE, NULL);
		if (n == -1) {
			if (errno == EINTR)
				continue;
			perror("dgramref: recvmmsg");
			return 1;
		}
		for (int i = 0; i < n; i++) {
			oiov[i].iov_base = bufs[i];
			oiov[i].iov_len = in[i].msg_len;
			memset(&out[i], 0, sizeof(out[i]));
			out[i].msg_hdr.msg_iov = &oiov[i];
			out[i].msg_hdr.msg_iovlen = 1;
			out[i].msg_hdr.msg_name = &peers[i];
			out[i].msg_hdr.msg_namelen = in[i].msg_hdr.msg_namelen;
		}
		/* A datagram the socket cannot take is lost, as UDP may. */
		for (sent = 0; sent < n; ) {
			int k = sendmmsg(fd, out + sent, (unsigned)(n - sent),
			    0);

			if (k == -1 && errno == EINTR)
				continue;
			if (k <= 0) {
				sent++;
				continue;
			}
			sent += k;
		}
	}
	return 0;
}
