/* SPDX-License-Identifier: ISC */
/*
 * fake_request.h - a struct ssd_request on one end of a socketpair, with
 * no daemon, no loop and no bind: the test holds the other end (the
 * "peer") and plays the client.  Stream requests are made by
 * request_new_stream(); datagram requests by request_new_dgram() over a
 * socketpair standing in for the listener's socket.  Blocking I/O waits
 * through request_wait_poll, bounded by the fake listener's timeout.
 */
#ifndef FAKE_REQUEST_H
#define FAKE_REQUEST_H

#include "server.h"

/*
 * A stream request on listener "name" with the given timeout (seconds,
 * 0 = never).  *peer_r is the client's end, blocking; the request's end
 * is non-blocking.  Free with fake_request_free().
 */
struct ssd_request *fake_request_stream(const char *name, double timeout,
	    int *peer_r);
/*
 * A datagram request carrying data[0..len).  The reply, if any, is in
 * rq_out/rq_outlen after the handler ran (fake_request_run() does not
 * send it).  Free with fake_request_free().
 */
struct ssd_request *fake_request_dgram(const char *name, const void *data,
	    size_t len);
/* Frees rq and closes both ends of its socketpair. */
void	fake_request_free(struct ssd_request *);
/* The fake listener's run behind rq, to set r_hi (handler, instance). */
struct lrun *fake_request_lrun(struct ssd_request *);
/* The client's end of rq's socketpair. */
int	fake_request_peer(const struct ssd_request *);

/* setup; handle; finish (if setup succeeded), as request_run does,
 * without the datagram reply or the logging.  Returns handle's value,
 * or setup's when it refused. */
int	fake_request_run(const struct ssd_handler *, struct ssd_request *);
/*
 * Ends the request's output (shutdown SHUT_WR of its end) and reads what
 * the peer received, until EOF, into buf (at most cap bytes).  Returns
 * the count; fails the test if nothing arrives for 5 seconds.
 */
size_t	fake_request_drain(struct ssd_request *, void *buf, size_t cap);
/* Writes all of buf to fd (a blocking peer), failing the test if not. */
void	fake_write_all(int fd, const void *buf, size_t len);
/* Reads exactly len bytes from fd, failing the test on EOF or 5 s. */
void	fake_read_exactly(int fd, void *buf, size_t len);
/* A unix datagram socket bound to a fresh abstract name containing
 * tag, its address in *sun and *len_r.  No file, no port. */
int	fake_dgram_socket(const char *tag, struct sockaddr_un *sun,
	    socklen_t *len_r);
/* Seconds on the monotonic clock. */
double	fake_now(void);

#endif /* FAKE_REQUEST_H */
