/* SPDX-License-Identifier: ISC */
/*
 * failpthread.c - a test fixture, preloaded into the daemon: the Nth call
 * of pthread_create (FAIL_PTHREAD_N) fails with EAGAIN, after
 * FAIL_DELAY_MS milliseconds, as when a system is out of threads.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>

typedef int (*failpthread_create_fn)(pthread_t *, const pthread_attr_t *,
    void *(*)(void *), void *);

int	pthread_create(pthread_t *, const pthread_attr_t *, void *(*)(void *),
	    void *);

int
pthread_create(pthread_t *t, const pthread_attr_t *a, void *(*f)(void *),
    void *arg)
{
	static atomic_int		 calls;
	static failpthread_create_fn	 real;
	const char			*n = getenv("FAIL_PTHREAD_N");
	const char			*ms = getenv("FAIL_DELAY_MS");

	if (real == NULL)
		*(void **)&real = dlsym(RTLD_NEXT, "pthread_create");
	if (n != NULL && atomic_fetch_add(&calls, 1) + 1 == atoi(n)) {
		if (ms != NULL) {
			long d = atol(ms);
			struct timespec ts = { d / 1000, (d % 1000) * 1000000L };

			nanosleep(&ts, NULL);
		}
		return EAGAIN;
	}
	return real(t, a, f, arg);
}
