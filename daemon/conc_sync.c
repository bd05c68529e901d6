/* SPDX-License-Identifier: ISC */
/*
 * conc_sync.c - the "sync" model (socketserver's TCPServer/UDPServer): one
 * request at a time per listener, in arrival order.  Each sync listener
 * has its own worker thread, so a busy sync listener never delays the
 * loop or another listener; the loop stops accepting on the listener while
 * its one request runs, so later clients wait in the backlog.
 * Datagrams: the thread serves what the socket holds, one datagram after
 * the other, under the listener's one slot (listener_dgram_next), and
 * hands the slot back to the loop once the socket is empty.
 */
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "server.h"

struct conc_sync {
	pthread_t		 s_thread;
	pthread_mutex_t		 s_mtx;
	pthread_cond_t		 s_cond;
	struct ssd_request	*s_next;	/* handed over by the loop */
	bool			 s_quit;
};

static void *
conc_sync_main(void *arg)
{
	struct conc_sync	*s = arg;
	struct ssd_request	*rq;

	pthread_mutex_lock(&s->s_mtx);
	for (;;) {
		while (s->s_next == NULL && !s->s_quit)
			pthread_cond_wait(&s->s_cond, &s->s_mtx);
		if (s->s_next == NULL)
			break;
		rq = s->s_next;
		s->s_next = NULL;
		pthread_mutex_unlock(&s->s_mtx);
		request_set_blocking(rq);
		/* A busy datagram socket is served here, datagram after
		 * datagram, without a trip through the loop for each. */
		do
			request_run(rq);
		while (rq->rq_type == SOCK_DGRAM && listener_dgram_next(rq));
		server_request_done(rq);
		pthread_mutex_lock(&s->s_mtx);
	}
	pthread_mutex_unlock(&s->s_mtx);
	return NULL;
}

static int
conc_sync_start(struct lrun *r)
{
	struct conc_sync	*s = xcalloc(1, sizeof(*s));
	sigset_t		 all, old;
	int			 rc;

	pthread_mutex_init(&s->s_mtx, NULL);
	pthread_cond_init(&s->s_cond, NULL);
	/* Signals belong to the loop thread: the worker blocks them all. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	rc = pthread_create(&s->s_thread, NULL, conc_sync_main, s);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc != 0) {
		log_about(LOG_ERR, r->r_listener->l_name, NULL,
		    "cannot start its thread: %s", strerror(rc));
		pthread_cond_destroy(&s->s_cond);
		pthread_mutex_destroy(&s->s_mtx);
		free(s);
		return -1;
	}
	r->r_conc = s;
	return 0;
}

static bool
conc_sync_can_accept(const struct lrun *r)
{
	/* Across a reload too: the old listener's request counts. */
	return atomic_load(&r->r_sock->k_active) == 0;
}

static void
conc_sync_dispatch(struct lrun *r, struct ssd_request *rq)
{
	struct conc_sync *s = r->r_conc;

	pthread_mutex_lock(&s->s_mtx);
	SSD_ASSERT(s->s_next == NULL);
	s->s_next = rq;
	pthread_cond_signal(&s->s_cond);
	pthread_mutex_unlock(&s->s_mtx);
}

static void
conc_sync_stop(struct lrun *r)
{
	struct conc_sync *s = r->r_conc;

	if (s == NULL)
		return;
	pthread_mutex_lock(&s->s_mtx);
	s->s_quit = true;
	pthread_cond_signal(&s->s_cond);
	pthread_mutex_unlock(&s->s_mtx);
	pthread_join(s->s_thread, NULL);
	pthread_cond_destroy(&s->s_cond);
	pthread_mutex_destroy(&s->s_mtx);
	free(s);
	r->r_conc = NULL;
}

const struct conc_ops conc_sync_ops = {
	.name = "sync",
	.start = conc_sync_start,
	.can_accept = conc_sync_can_accept,
	.dispatch = conc_sync_dispatch,
	.cut = request_cut,
	.stop = conc_sync_stop,
	.serial = true,
};
