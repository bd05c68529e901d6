/* SPDX-License-Identifier: ISC */
/*
 * conc_thread.c - the "thread" model (socketserver's ThreadingMixIn): a
 * detached thread per request.  When a thread cannot be created, that one
 * connection is closed and the listener pauses with a back-off; the daemon
 * keeps serving.
 */
#include <signal.h>
#include <string.h>

#include "server.h"

#define CONC_THREAD_STACK	(256 * 1024)

static void *
conc_thread_main(void *arg)
{
	struct ssd_request *rq = arg;

	request_set_blocking(rq);
	request_run(rq);
	/* OpenSSL's state of this thread (its error queue) goes now: the
	 * daemon may exit as soon as the request is done, before a detached
	 * thread's destructors have run. */
	tls_thread_stop();
	server_request_done(rq);
	return NULL;
}

static int
conc_thread_start(struct lrun *r)
{
	(void)r;
	return 0;
}

static bool
conc_thread_can_accept(const struct lrun *r)
{
	(void)r;
	return true;
}

static void
conc_thread_dispatch(struct lrun *r, struct ssd_request *rq)
{
	static pthread_attr_t	 attr;
	static bool		 attr_ready;
	pthread_t		 t;
	sigset_t		 all, old;
	int			 rc;

	(void)r;
	if (!attr_ready) {
		pthread_attr_init(&attr);
		pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
		/* As the event model's stacks: glibc caches only 40 MiB of
		 * thread stacks, so 8 MiB ones are mapped and unmapped for
		 * nearly every request. */
		pthread_attr_setstacksize(&attr, CONC_THREAD_STACK);
		attr_ready = true;
	}
	/* Signals belong to the loop thread: new threads block them all. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	rc = pthread_create(&t, &attr, conc_thread_main, rq);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc != 0) {
		ssd_log(rq, LOG_WARNING, "cannot create a thread: %s; "
		    "connection closed", strerror(rc));
		listener_pause(rq->rq_watch, rc);
		server_request_done(rq);
	}
}

static void
conc_thread_stop(struct lrun *r)
{
	(void)r;
}

const struct conc_ops conc_thread_ops = {
	.name = "thread",
	.start = conc_thread_start,
	.can_accept = conc_thread_can_accept,
	.dispatch = conc_thread_dispatch,
	.cut = request_cut,
	.stop = conc_thread_stop,
};
