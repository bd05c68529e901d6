/* SPDX-License-Identifier: ISC */
/*
 * source.c - requests in progress per client address, for max_per_source
 * (xinetd's per_source).  A small chained hash table under a mutex: the
 * accepting loop takes, the main loop gives back.  Only the address
 * counts, not the port; a v4-mapped IPv6 client counts as its IPv4
 * address.
 */
#include <sys/queue.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "daemon.h"

#define SOURCE_BUCKETS	256

struct source_entry {
	struct source_entry	*e_next;
	uint8_t			 e_addr[16];
	unsigned		 e_count;
};

struct source_table {
	pthread_mutex_t		 t_mtx;
	struct source_entry	*t_buckets[SOURCE_BUCKETS];
	LIST_ENTRY(source_table) t_entry;	/* source_tables */
};

/* Every table, so that fork(2) can hold all their locks: a fork child
 * (behind a PROXY header) counts its client too, and must not find a
 * lock that another thread held at the fork. */
static LIST_HEAD(, source_table) source_tables =
    LIST_HEAD_INITIALIZER(source_tables);
static pthread_mutex_t source_tables_mtx = PTHREAD_MUTEX_INITIALIZER;

static void
source_atfork_prepare(void)
{
	struct source_table *t;

	pthread_mutex_lock(&source_tables_mtx);
	LIST_FOREACH(t, &source_tables, t_entry)
		pthread_mutex_lock(&t->t_mtx);
}

static void
source_atfork_release(void)
{
	struct source_table *t;

	LIST_FOREACH(t, &source_tables, t_entry)
		pthread_mutex_unlock(&t->t_mtx);
	pthread_mutex_unlock(&source_tables_mtx);
}

static void
source_atfork_register(void)
{
	pthread_atfork(source_atfork_prepare, source_atfork_release,
	    source_atfork_release);
}

struct source_table *
source_table_new(void)
{
	static pthread_once_t	 once = PTHREAD_ONCE_INIT;
	struct source_table	*t = xcalloc(1, sizeof(*t));

	pthread_once(&once, source_atfork_register);
	pthread_mutex_init(&t->t_mtx, NULL);
	pthread_mutex_lock(&source_tables_mtx);
	LIST_INSERT_HEAD(&source_tables, t, t_entry);
	pthread_mutex_unlock(&source_tables_mtx);
	return t;
}

void
source_table_free(struct source_table *t)
{
	if (t == NULL)
		return;
	pthread_mutex_lock(&source_tables_mtx);
	LIST_REMOVE(t, t_entry);
	pthread_mutex_unlock(&source_tables_mtx);
	for (size_t i = 0; i < SOURCE_BUCKETS; i++)
		while (t->t_buckets[i] != NULL) {
			struct source_entry *e = t->t_buckets[i];

			t->t_buckets[i] = e->e_next;
			free(e);
		}
	pthread_mutex_destroy(&t->t_mtx);
	free(t);
}

/* The address as 16 bytes (IPv4 as v4-mapped); false if it has none. */
static bool
source_key(const struct sockaddr *sa, uint8_t key[16])
{
	memset(key, 0, 16);
	if (sa->sa_family == AF_INET) {
		key[10] = key[11] = 0xff;
		memcpy(key + 12, &((const struct sockaddr_in *)(const void *)
		    sa)->sin_addr, 4);
		return true;
	}
	if (sa->sa_family == AF_INET6) {
		memcpy(key, &((const struct sockaddr_in6 *)(const void *)sa)->
		    sin6_addr, 16);
		return true;
	}
	return false;
}

static struct source_entry **
source_find(struct source_table *t, const uint8_t key[16])
{
	unsigned		 h = 2166136261u;
	struct source_entry	**ep;

	for (int i = 0; i < 16; i++)
		h = (h ^ key[i]) * 16777619u;
	for (ep = &t->t_buckets[h % SOURCE_BUCKETS]; *ep != NULL;
	    ep = &(*ep)->e_next)
		if (memcmp((*ep)->e_addr, key, 16) == 0)
			break;
	return ep;
}

bool
source_take(struct source_table *t, const struct sockaddr *sa, long max)
{
	struct source_entry	**ep;
	uint8_t			 key[16];
	bool			 ok = true;

	if (!source_key(sa, key))
		return true;	/* unix clients have no address */
	pthread_mutex_lock(&t->t_mtx);
	ep = source_find(t, key);
	if (*ep == NULL) {
		*ep = xcalloc(1, sizeof(**ep));
		memcpy((*ep)->e_addr, key, 16);
	}
	if ((*ep)->e_count >= (unsigned long)max)
		ok = false;
	else
		(*ep)->e_count++;
	if ((*ep)->e_count == 0) {
		struct source_entry *e = *ep;

		*ep = e->e_next;
		free(e);
	}
	pthread_mutex_unlock(&t->t_mtx);
	return ok;
}

void
source_put(struct source_table *t, const struct sockaddr *sa)
{
	struct source_entry	**ep;
	uint8_t			 key[16];

	if (!source_key(sa, key))
		return;
	pthread_mutex_lock(&t->t_mtx);
	ep = source_find(t, key);
	if (*ep != NULL && --(*ep)->e_count == 0) {
		struct source_entry *e = *ep;

		*ep = e->e_next;
		free(e);
	}
	pthread_mutex_unlock(&t->t_mtx);
}
