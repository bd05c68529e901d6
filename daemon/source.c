/* SPDX-License-Identifier: ISC */
/*
 * source.c - per-source state of one listening socket: requests in
 * progress (max_per_source, xinetd's per_source) and a token bucket
 * (rate_per_source), by client prefix (source_prefix_v4/_v6).  Only the
 * address counts, not the port; a v4-mapped IPv6 client is its IPv4
 * address.  No sockets and no loop: the callers (listener.c at accept,
 * request.c behind a PROXY header) decide, count and log.
 *
 * Memory is bounded: an open-addressing table (linear probing, a keyed
 * hash so that clients cannot choose collisions) that grows by doubling
 * up to t_max slots and no further.  An entry with nothing in progress
 * and a full bucket says nothing a fresh entry would not say: it is idle
 * and dropped at the next sweep (a sweep runs when the table is 3/4 full,
 * at most once per cap/8 insertions, so its cost is amortised).  When the
 * table is at its cap and crowded with entries that are not idle, a new
 * source takes the place of the entry on its probe path whose bucket is
 * nearest to full among those with nothing in progress: that source's
 * partly spent bucket is forgotten, which can only let it start more, and
 * this is counted and logged.  Only when every entry on the path has a
 * request in progress (hundreds of thousands of connections at once) is
 * the new client refused (SOURCE_FULL), which the caller counts and logs.
 *
 * With worker_processes, a table whose listener has per-source rules is
 * shared by every worker (source_table_new_shared): the supervisor maps
 * it (MAP_SHARED|MAP_ANONYMOUS, its full size at once, pages touched as
 * sources come) before it forks the workers that use it; its mutex is
 * process-shared and robust.  Ownership:
 *   shared table   one mapping per process that has it: the supervisor's
 *                  (made with the socket's lsock, or when a reload gives
 *                  a kept socket per-source rules) and every worker's
 *                  copy, inherited at the fork; each process unmaps its
 *                  own when its lsock goes (source_table_free), and the
 *                  memory goes with the last.  Only the supervisor's
 *                  list (source_shared) knows them all.
 *   ledger         one per worker process (struct source_ledger): one
 *                  record per request it holds counted in a shared table
 *                  (table id, key), written under that table's lock, so
 *                  that the ledgers of the living workers always sum up
 *                  to each table's counts.  Mapped by the supervisor
 *                  before the fork (source_ledger_new), owned by its
 *                  struct wproc, unmapped by source_ledger_release once
 *                  the worker is reaped, after giving back what it held.
 *   A worker that dies holding a table's lock leaves it half changed: the
 *   next to lock it (EOWNERDEAD) empties it and marks it lost, and the
 *   supervisor, when it reaps the dead worker, counts it again from the
 *   ledgers of the living (rate buckets start full again: logged).
 */
#include <sys/mman.h>
#include <sys/queue.h>
#include <sys/random.h>
#include <netinet/in.h>

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "daemon.h"

#define SOURCE_MIN_SLOTS	64
/* 2^18 slots of 40 bytes: 10 MiB per listening socket at most (twice
 * that for a moment while the table is rebuilt). */
#define SOURCE_MAX_SLOTS	(1u << 18)
/* How far along its probe path a new source looks for a place. */
#define SOURCE_PROBE_MAX	32
/* How many slots the clock hand passes to find one that may go. */
#define SOURCE_HAND_MAX		1024
/* Seconds between two reports of forgotten buckets. */
#define SOURCE_REPORT_EVERY	10
/* Requests counted in shared tables that one worker holds at once. */
#define SOURCE_HOLDS		(1u << 18)

struct source_entry {
	uint8_t			 e_addr[16];	/* masked */
	uint32_t		 e_count;	/* requests in progress */
	uint8_t			 e_bits;
	bool			 e_used;
	double			 e_tokens;	/* at e_stamp */
	double			 e_stamp;	/* source_now() */
};

struct source_table {
	pthread_mutex_t		 t_mtx;
	struct source_entry	*t_slots;	/* NULL until the first */
	size_t			 t_cap, t_max;	/* slots; a power of 2 */
	size_t			 t_used;
	size_t			 t_since_sweep;	/* insertions */
	size_t			 t_hand;	/* clock hand: next to look at */
	uint64_t		 t_seed;
	/* The rule of the last source_take: what makes an entry idle. */
	double			 t_rate, t_burst;
	int			 t_prefix4, t_prefix6;	/* + 1; 0: unknown */
	unsigned long		 t_forgotten, t_forgotten_reported;
	double			 t_reported;	/* source_now() */
	LIST_ENTRY(source_table) t_entry;	/* source_tables; not shared */
	/* Shared tables (worker processes): the struct and its slots are
	 * one mapping of t_maplen bytes. */
	bool			 t_shared;
	bool			 t_lost;	/* emptied after a death */
	uint32_t		 t_id;		/* in ledgers; 0: not shared */
	size_t			 t_maplen;
};

/* One request that a worker holds counted in a shared table. */
struct source_hold {
	atomic_uint		 h_table;	/* its t_id; 0: free */
	uint8_t			 h_bits;
	uint8_t			 h_addr[16];
};

struct source_ledger {
	atomic_uint		 lg_high;	/* records ever used */
	struct source_hold	 lg_holds[SOURCE_HOLDS];
};

/* The supervisor's: every shared table it has, every worker's ledger. */
static struct source_table	**source_shared;
static size_t			  source_nshared;
static struct source_ledger	**source_ledgers;
static size_t			  source_nledgers;
static uint32_t			  source_next_id = 1;

/* A worker's: its ledger, the records it may use again. */
static struct source_ledger	*source_self;
static pthread_mutex_t		 source_self_mtx = PTHREAD_MUTEX_INITIALIZER;
static uint32_t			*source_free;
static size_t			 source_nfree, source_free_cap;

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

/* The slots a table of at most max_slots (0: the default) may have. */
static size_t
source_max_slots(size_t max_slots)
{
	size_t max = SOURCE_MAX_SLOTS;

	if (max_slots != 0) {
		for (max = SOURCE_MIN_SLOTS; max < max_slots;)
			max *= 2;
	}
	return max;
}

static void
source_seed(struct source_table *t)
{
	if (getrandom(&t->t_seed, sizeof(t->t_seed), GRND_NONBLOCK) !=
	    (ssize_t)sizeof(t->t_seed))
		t->t_seed = (uint64_t)time(NULL) * 0x9e3779b97f4a7c15ull ^
		    (uint64_t)getpid() ^ (uint64_t)(uintptr_t)t;
}

struct source_table *
source_table_new(size_t max_slots)
{
	static pthread_once_t	 once = PTHREAD_ONCE_INIT;
	struct source_table	*t = xcalloc(1, sizeof(*t));

	pthread_once(&once, source_atfork_register);
	pthread_mutex_init(&t->t_mtx, NULL);
	t->t_max = source_max_slots(max_slots);
	source_seed(t);
	pthread_mutex_lock(&source_tables_mtx);
	LIST_INSERT_HEAD(&source_tables, t, t_entry);
	pthread_mutex_unlock(&source_tables_mtx);
	return t;
}

/* The slots of a shared table start here in its mapping. */
static size_t
source_header_len(void)
{
	return (sizeof(struct source_table) + 63) & ~(size_t)63;
}

struct source_table *
source_table_new_shared(size_t max_slots)
{
	struct source_table	*t;
	pthread_mutexattr_t	 attr;
	size_t			 max = source_max_slots(max_slots);
	size_t			 len = source_header_len() +
	    max * sizeof(struct source_entry);
	void			*p;

	/* Untouched pages cost nothing: reserve no swap for them. */
	p = mmap(NULL, len, PROT_READ | PROT_WRITE,
	    MAP_SHARED | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (p == MAP_FAILED)
		return NULL;
	t = p;
	pthread_mutexattr_init(&attr);
	pthread_mutexattr_setpshared(&attr, PTHREAD_PROCESS_SHARED);
	pthread_mutexattr_setrobust(&attr, PTHREAD_MUTEX_ROBUST);
	pthread_mutex_init(&t->t_mtx, &attr);
	pthread_mutexattr_destroy(&attr);
	t->t_slots = (struct source_entry *)(void *)((char *)p +
	    source_header_len());
	t->t_cap = t->t_max = max;
	t->t_shared = true;
	t->t_maplen = len;
	t->t_id = source_next_id++;
	source_seed(t);
	source_shared = xreallocarray(source_shared, source_nshared + 1,
	    sizeof(*source_shared));
	source_shared[source_nshared++] = t;
	return t;
}

bool
source_table_is_shared(const struct source_table *t)
{
	return t->t_shared;
}

void
source_table_free(struct source_table *t)
{
	if (t == NULL)
		return;
	if (t->t_shared) {
		/* Our mapping only: other processes keep theirs, and the
		 * mutex with them. */
		for (size_t i = 0; i < source_nshared; i++)
			if (source_shared[i] == t) {
				source_shared[i] = source_shared[
				    --source_nshared];
				break;
			}
		munmap(t, t->t_maplen);
		return;
	}
	pthread_mutex_lock(&source_tables_mtx);
	LIST_REMOVE(t, t_entry);
	pthread_mutex_unlock(&source_tables_mtx);
	free(t->t_slots);
	pthread_mutex_destroy(&t->t_mtx);
	free(t);
}

/* Empties t's slots (a shared table's pages are given back). */
static void
source_clear(struct source_table *t)
{
	size_t len = t->t_cap * sizeof(*t->t_slots);

	if (t->t_slots != NULL && (!t->t_shared ||
	    madvise(t->t_slots, len, MADV_REMOVE) == -1))
		memset(t->t_slots, 0, len);
	t->t_used = 0;
	t->t_since_sweep = 0;
}

/* Locks t; a shared table whose last holder died with it locked is
 * emptied (it may be half changed) and marked lost, for the supervisor
 * to count again (source_ledger_release). */
static void
source_lock(struct source_table *t)
{
	int rc = pthread_mutex_lock(&t->t_mtx);

	if (rc == EOWNERDEAD) {
		source_clear(t);
		t->t_lost = true;
		rc = pthread_mutex_consistent(&t->t_mtx);
	}
	SSD_ASSERT(rc == 0);
}

static void
source_unlock(struct source_table *t)
{
	pthread_mutex_unlock(&t->t_mtx);
}

double
source_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void
source_mask(uint8_t *addr, int bits)
{
	for (int i = 0; i < 16; i++) {
		int keep = bits - i * 8;

		if (keep >= 8)
			continue;
		addr[i] &= keep <= 0 ? 0 : (uint8_t)(0xff << (8 - keep));
	}
}

bool
source_key(const struct sockaddr *sa, int prefix4, int prefix6,
    struct source_key *key)
{
	static const uint8_t mapped[12] = {
		0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff
	};

	memset(key, 0, sizeof(*key));
	if (sa->sa_family == AF_INET) {
		key->sk_addr[10] = key->sk_addr[11] = 0xff;
		memcpy(key->sk_addr + 12, &((const struct sockaddr_in *)
		    (const void *)sa)->sin_addr, 4);
	} else if (sa->sa_family == AF_INET6)
		memcpy(key->sk_addr, &((const struct sockaddr_in6 *)
		    (const void *)sa)->sin6_addr, 16);
	else
		return false;
	/* IPv4, or v4-mapped IPv6: the IPv4 prefix, on the mapped form
	 * (compared bytewise: the key need not be aligned as in6_addr). */
	if (memcmp(key->sk_addr, mapped, sizeof(mapped)) == 0)
		key->sk_bits = (uint8_t)(96 + prefix4);
	else
		key->sk_bits = (uint8_t)prefix6;
	source_mask(key->sk_addr, key->sk_bits);
	key->sk_valid = true;
	return true;
}

/* A keyed mix of the key (murmur3's finaliser over seed-xored words). */
static size_t
source_hash(const struct source_table *t, const uint8_t addr[16],
    uint8_t bits)
{
	uint64_t w[2], h = t->t_seed ^ bits;

	memcpy(w, addr, 16);
	for (int i = 0; i < 2; i++) {
		h ^= w[i];
		h ^= h >> 33;
		h *= 0xff51afd7ed558ccdull;
		h ^= h >> 33;
		h *= 0xc4ceb9fe1a85ec53ull;
		h ^= h >> 33;
	}
	return (size_t)h;
}

/* The bucket's tokens at now, at most the burst. */
static double
source_tokens(const struct source_table *t, const struct source_entry *e,
    double now)
{
	double tokens = e->e_tokens;

	if (now > e->e_stamp)
		tokens += (now - e->e_stamp) * t->t_rate;
	return tokens < t->t_burst ? tokens : t->t_burst;
}

/* Nothing in progress and nothing spent: a fresh entry would be the same. */
static bool
source_is_idle(const struct source_table *t, const struct source_entry *e,
    double now)
{
	return e->e_count == 0 &&
	    (t->t_rate <= 0 || source_tokens(t, e, now) >= t->t_burst);
}

/* The slot of key, or of the empty slot that ends its probe path. */
static struct source_entry *
source_find(struct source_table *t, const struct source_key *key)
{
	size_t			 mask = t->t_cap - 1;
	size_t			 i = source_hash(t, key->sk_addr, key->sk_bits);
	struct source_entry	*e;

	for (;; i++) {
		e = &t->t_slots[i & mask];
		if (!e->e_used || (e->e_bits == key->sk_bits &&
		    memcmp(e->e_addr, key->sk_addr, 16) == 0))
			return e;
	}
}

/* Rebuilds a private table with cap slots, without its idle entries. */
static void
source_rebuild(struct source_table *t, size_t cap, double now)
{
	struct source_entry	*old = t->t_slots;
	size_t			 oldcap = t->t_cap;

	SSD_ASSERT(!t->t_shared);
	t->t_slots = xcalloc(cap, sizeof(*t->t_slots));
	t->t_cap = cap;
	t->t_used = 0;
	t->t_since_sweep = 0;
	for (size_t i = 0; i < oldcap; i++) {
		struct source_entry	*e = &old[i], *n;
		struct source_key	 k;

		if (!e->e_used || source_is_idle(t, e, now))
			continue;
		memcpy(k.sk_addr, e->e_addr, 16);
		k.sk_bits = e->e_bits;
		n = source_find(t, &k);
		*n = *e;
		t->t_used++;
	}
	free(old);
}

/* Deletes e, shifting back the entries after it that its slot kept on
 * their probe paths (no tombstones). */
static void
source_delete(struct source_table *t, struct source_entry *e)
{
	size_t mask = t->t_cap - 1;
	size_t hole = (size_t)(e - t->t_slots), j = hole;

	for (;;) {
		struct source_entry *n;
		size_t home;

		j = (j + 1) & mask;
		n = &t->t_slots[j];
		if (!n->e_used)
			break;
		home = source_hash(t, n->e_addr, n->e_bits) & mask;
		/* n may move to the hole if its home is not in (hole, j]. */
		if (((j - home) & mask) >= ((j - hole) & mask)) {
			t->t_slots[hole] = *n;
			hole = j;
		}
	}
	memset(&t->t_slots[hole], 0, sizeof(t->t_slots[hole]));
	t->t_used--;
}

/* Drops t's idle entries (with all, every entry with nothing in
 * progress) in place: a shared table cannot be reallocated.  An entry
 * that a deletion shifts back into slot i is looked at again; one that
 * wraps round to the end was kept already and is kept again. */
static void
source_sweep(struct source_table *t, double now, bool all)
{
	for (size_t i = 0; t->t_slots != NULL && i < t->t_cap; i++) {
		struct source_entry *e = &t->t_slots[i];

		while (e->e_used && (source_is_idle(t, e, now) ||
		    (all && e->e_count == 0)))
			source_delete(t, e);
	}
	t->t_since_sweep = 0;
}

/* How full c's bucket is (1: idle), or -1 if it has requests in
 * progress and must stay. */
static double
source_fill(const struct source_table *t, const struct source_entry *c,
    double now)
{
	if (!c->e_used || c->e_count > 0)
		return -1;
	return t->t_rate > 0 ? source_tokens(t, c, now) / t->t_burst : 1;
}

/*
 * A slot for a new key: grows or sweeps the table as needed.  At the cap
 * and crowded, the entry nearest to idle gives way: on the key's probe
 * path (its place is taken over), else among the next slots of a clock
 * hand that goes round the table (deleted).  NULL if every entry looked
 * at has requests in progress and the table is nearly full.
 */
static struct source_entry *
source_place(struct source_table *t, const struct source_key *key,
    double now)
{
	struct source_entry	*e, *best = NULL;
	double			 best_fill = -1, fill;
	bool			 on_path = true;
	size_t			 mask, i;

	if (t->t_slots == NULL)
		source_rebuild(t, SOURCE_MIN_SLOTS, now);
	if (t->t_used + 1 > t->t_cap / 4 * 3) {
		size_t cap = t->t_cap;

		/* Sweep; grow if it leaves the table over half full. */
		if (t->t_since_sweep >= t->t_cap / 8 || t->t_cap < t->t_max)
			source_sweep(t, now, false);
		if (t->t_used + 1 > cap / 2 && cap < t->t_max)
			source_rebuild(t, cap * 2, now);
	}
	t->t_since_sweep++;
	e = source_find(t, key);
	if (t->t_used + 1 <= t->t_cap / 4 * 3)
		return e;
	mask = t->t_cap - 1;
	i = source_hash(t, key->sk_addr, key->sk_bits);
	for (size_t n = 0; n < SOURCE_PROBE_MAX; n++, i++) {
		struct source_entry *c = &t->t_slots[i & mask];

		if (!c->e_used)
			break;
		if ((fill = source_fill(t, c, now)) > best_fill) {
			best = c;
			best_fill = fill;
		}
	}
	for (size_t n = 0; best == NULL && n < SOURCE_HAND_MAX; n++) {
		struct source_entry *c = &t->t_slots[t->t_hand++ & mask];

		if ((fill = source_fill(t, c, now)) >= 0) {
			best = c;
			best_fill = fill;
			on_path = false;
		}
	}
	/* The hand keeps looking a little for a fuller bucket. */
	for (size_t n = 0; !on_path && best_fill < 1 && n < SOURCE_PROBE_MAX;
	    n++) {
		struct source_entry *c = &t->t_slots[t->t_hand++ & mask];

		if ((fill = source_fill(t, c, now)) > best_fill) {
			best = c;
			best_fill = fill;
		}
	}
	if (best == NULL)
		return t->t_used + 1 <= t->t_cap / 8 * 7 ? e : NULL;
	if (best_fill < 1)
		t->t_forgotten++;
	if (!on_path) {
		source_delete(t, best);
		return source_find(t, key);
	}
	memset(best, 0, sizeof(*best));
	t->t_used--;
	return best;
}

/* A record of this worker's ledger for one more request, or -1 if it
 * has none left. */
static long
source_hold_new(void)
{
	long		 i = -1;
	unsigned	 high;

	pthread_mutex_lock(&source_self_mtx);
	if (source_nfree > 0)
		i = source_free[--source_nfree];
	else if ((high = atomic_load(&source_self->lg_high)) < SOURCE_HOLDS) {
		i = high;
		atomic_store(&source_self->lg_high, high + 1);
	}
	pthread_mutex_unlock(&source_self_mtx);
	return i;
}

static void
source_hold_free(uint32_t i)
{
	pthread_mutex_lock(&source_self_mtx);
	if (source_nfree == source_free_cap) {
		source_free_cap = source_free_cap == 0 ? 64 :
		    source_free_cap * 2;
		source_free = xreallocarray(source_free, source_free_cap,
		    sizeof(*source_free));
	}
	source_free[source_nfree++] = i;
	pthread_mutex_unlock(&source_self_mtx);
}

/* In a worker, under t's lock: key's request is written in the ledger
 * (the table's id last: a record half written is a free one). */
static bool
source_hold(struct source_table *t, struct source_key *key)
{
	struct source_hold	*h;
	long			 i;

	if (!t->t_shared || source_self == NULL)
		return true;
	if ((i = source_hold_new()) == -1)
		return false;
	h = &source_self->lg_holds[i];
	memcpy(h->h_addr, key->sk_addr, 16);
	h->h_bits = key->sk_bits;
	atomic_store(&h->h_table, t->t_id);
	key->sk_hold = (uint32_t)i + 1;
	return true;
}

enum source_verdict
source_take(struct source_table *t, struct source_key *key,
    const struct source_rule *rule, double now)
{
	struct source_entry	*e;
	enum source_verdict	 v = SOURCE_OK;
	unsigned long		 forgotten = 0;
	size_t			 used = 0;

	key->sk_hold = 0;
	if (!key->sk_valid)
		return SOURCE_OK;	/* unix clients have no address */
	source_lock(t);
	t->t_rate = rule->sr_rate;
	t->t_burst = rule->sr_burst;
	e = t->t_slots != NULL ? source_find(t, key) : NULL;
	if (e == NULL || !e->e_used) {
		if ((e = source_place(t, key, now)) == NULL) {
			v = SOURCE_FULL;
			goto out;
		}
		memcpy(e->e_addr, key->sk_addr, 16);
		e->e_bits = key->sk_bits;
		e->e_used = true;
		e->e_count = 0;
		e->e_tokens = rule->sr_burst;
		e->e_stamp = now;
		t->t_used++;
	}
	if (rule->sr_max > 0 && e->e_count >= (unsigned long)rule->sr_max)
		v = SOURCE_MAX;
	else if (rule->sr_rate > 0) {
		e->e_tokens = source_tokens(t, e, now);
		e->e_stamp = now > e->e_stamp ? now : e->e_stamp;
		if (e->e_tokens < 1)
			v = SOURCE_RATE;
		else
			e->e_tokens -= 1;
	}
	if (v == SOURCE_OK && !source_hold(t, key)) {
		/* The worker's ledger is full: as if the table were. */
		v = SOURCE_FULL;
		if (rule->sr_rate > 0)
			e->e_tokens += 1;
	}
	if (v == SOURCE_OK)
		e->e_count++;
	else if (source_is_idle(t, e, now) && rule->sr_rate <= 0)
		source_delete(t, e);
out:
	if (t->t_forgotten != t->t_forgotten_reported &&
	    now - t->t_reported >= SOURCE_REPORT_EVERY) {
		forgotten = t->t_forgotten - t->t_forgotten_reported;
		t->t_forgotten_reported = t->t_forgotten;
		t->t_reported = now;
		used = t->t_used;
	}
	source_unlock(t);
	if (forgotten > 0)
		log_noticex("per-source table full (%zu sources): the partly "
		    "spent rate buckets of %lu sources with nothing in "
		    "progress were forgotten", used, forgotten);
	return v;
}

void
source_table_configure(struct source_table *t, const struct source_rule *rule,
    int prefix4, int prefix6)
{
	bool regroup;

	source_lock(t);
	regroup = (t->t_prefix4 != 0 && t->t_prefix4 != prefix4 + 1) ||
	    (t->t_prefix6 != 0 && t->t_prefix6 != prefix6 + 1);
	t->t_prefix4 = prefix4 + 1;
	t->t_prefix6 = prefix6 + 1;
	t->t_rate = rule->sr_rate;
	t->t_burst = rule->sr_burst;
	source_sweep(t, source_now(), regroup);
	source_unlock(t);
}

void
source_put(struct source_table *t, const struct source_key *key)
{
	struct source_entry *e;

	if (!key->sk_valid)
		return;
	source_lock(t);
	e = t->t_slots != NULL ? source_find(t, key) : NULL;
	if (e != NULL && e->e_used && e->e_count > 0 &&
	    --e->e_count == 0 && t->t_rate <= 0)
		source_delete(t, e);
	if (key->sk_hold != 0 && source_self != NULL)
		atomic_store(&source_self->lg_holds[key->sk_hold - 1].h_table,
		    0);
	source_unlock(t);
	if (key->sk_hold != 0 && source_self != NULL)
		source_hold_free(key->sk_hold - 1);
}

void
source_table_stats(struct source_table *t, size_t *used_r, size_t *cap_r,
    unsigned long *forgotten_r)
{
	source_lock(t);
	*used_r = t->t_used;
	*cap_r = t->t_cap;
	*forgotten_r = t->t_forgotten;
	source_unlock(t);
}

/* ---- ledgers: the supervisor, and a worker's start ---- */

struct source_ledger *
source_ledger_new(void)
{
	void *p;

	p = mmap(NULL, sizeof(struct source_ledger), PROT_READ | PROT_WRITE,
	    MAP_SHARED | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (p == MAP_FAILED)
		return NULL;
	source_ledgers = xreallocarray(source_ledgers, source_nledgers + 1,
	    sizeof(*source_ledgers));
	source_ledgers[source_nledgers++] = p;
	return p;
}

void
source_ledger_attach(struct source_ledger *lg)
{
	/* The other workers' ledgers are the supervisor's to read. */
	for (size_t i = 0; i < source_nledgers; i++)
		if (source_ledgers[i] != lg)
			munmap(source_ledgers[i], sizeof(struct source_ledger));
	free(source_ledgers);
	source_ledgers = NULL;
	source_nledgers = 0;
	free(source_free);
	source_free = NULL;
	source_nfree = source_free_cap = 0;
	source_self = lg;
}

/* Counts t again (emptied: t_lost) from the ledgers of the living
 * workers; the buckets start full. */
static unsigned long
source_recount(struct source_table *t, double now)
{
	unsigned long n = 0;

	source_clear(t);
	for (size_t j = 0; j < source_nledgers; j++) {
		struct source_ledger	*lg = source_ledgers[j];
		unsigned		 high = atomic_load(&lg->lg_high);

		for (unsigned i = 0; i < high && i < SOURCE_HOLDS; i++) {
			struct source_hold	*h = &lg->lg_holds[i];
			struct source_entry	*e;
			struct source_key	 k;

			if (atomic_load(&h->h_table) != t->t_id)
				continue;
			memcpy(k.sk_addr, h->h_addr, 16);
			k.sk_bits = h->h_bits;
			e = source_find(t, &k);
			if (!e->e_used) {
				if (t->t_used + 1 > t->t_cap / 8 * 7)
					continue;
				memcpy(e->e_addr, k.sk_addr, 16);
				e->e_bits = k.sk_bits;
				e->e_used = true;
				e->e_tokens = t->t_burst;
				e->e_stamp = now;
				t->t_used++;
			}
			e->e_count++;
			n++;
		}
	}
	t->t_lost = false;
	return n;
}

unsigned long
source_ledger_release(struct source_ledger *lg)
{
	double		 now = source_now();
	unsigned long	 given = 0;
	unsigned	 high;

	if (lg == NULL)
		return 0;
	for (size_t j = 0; j < source_nledgers; j++)
		if (source_ledgers[j] == lg) {
			source_ledgers[j] = source_ledgers[--source_nledgers];
			break;
		}
	high = atomic_load(&lg->lg_high);
	for (size_t j = 0; j < source_nshared; j++) {
		struct source_table *t = source_shared[j];

		source_lock(t);
		if (t->t_lost) {
			unsigned long n = source_recount(t, now);

			source_unlock(t);
			log_warningx("a worker died while it changed per-source "
			    "counts: counted again from the other workers (%lu "
			    "requests in progress); rate buckets start full", n);
			continue;
		}
		for (unsigned i = 0; i < high && i < SOURCE_HOLDS; i++) {
			struct source_hold	*h = &lg->lg_holds[i];
			struct source_entry	*e;
			struct source_key	 k;

			if (atomic_load(&h->h_table) != t->t_id)
				continue;
			memcpy(k.sk_addr, h->h_addr, 16);
			k.sk_bits = h->h_bits;
			e = source_find(t, &k);
			if (e->e_used && e->e_count > 0) {
				given++;
				if (--e->e_count == 0 && t->t_rate <= 0)
					source_delete(t, e);
			}
		}
		source_unlock(t);
	}
	munmap(lg, sizeof(*lg));
	return given;
}
