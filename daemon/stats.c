/* SPDX-License-Identifier: ISC */
/*
 * stats.c - per-listener counters for the status handler and /metrics.
 * Kept by listener name for the life of the process, so that a reload
 * does not reset them (Prometheus counters only go up).  Updated with
 * relaxed atomics on the hot path: no lock per byte or per request.
 */
#include <sys/mman.h>
#include <sys/types.h>

#include <dirent.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "daemon.h"

static const double stats_bounds[STATS_NBUCKETS] = {
	0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 60
};

/* Counters live in memory shared with fork-model children, so that what
 * a handler process counts (bytes, errors) reaches the parent. */
#define STATS_ARENA	(256 * 1024)
static char		*stats_arena;
static size_t		 stats_arena_used;

static pthread_mutex_t	 stats_mtx = PTHREAD_MUTEX_INITIALIZER;

/* A status request in a fork child renders the counters: the lock must
 * not be held by another thread at the fork. */
static void
stats_atfork_prepare(void)
{
	pthread_mutex_lock(&stats_mtx);
}

static void
stats_atfork_release(void)
{
	pthread_mutex_unlock(&stats_mtx);
}

static void
stats_atfork_register(void)
{
	pthread_atfork(stats_atfork_prepare, stats_atfork_release,
	    stats_atfork_release);
}
static struct lstats	*stats_list;
static struct timespec	 stats_started;
/* The daemon's: a fork-model handler process reports the daemon's
 * descriptors, not its own. */
static pid_t		 stats_pid;
static atomic_ulong	 stats_reloads;

void
stats_init(void)
{
	static pthread_once_t	 once = PTHREAD_ONCE_INIT;
	void			*p;

	pthread_once(&once, stats_atfork_register);
	clock_gettime(CLOCK_MONOTONIC, &stats_started);
	stats_pid = getpid();
	p = mmap(NULL, STATS_ARENA, PROT_READ | PROT_WRITE,
	    MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	stats_arena = p == MAP_FAILED ? NULL : p;
}

static struct lstats *
stats_alloc(void)
{
	size_t size = (sizeof(struct lstats) + 63) & ~(size_t)63;
	struct lstats *s;

	if (stats_arena == NULL || stats_arena_used + size > STATS_ARENA) {
		log_debug("%s: shared counters full: fork children's counts "
		    "are lost", __func__);
		return xcalloc(1, sizeof(struct lstats));
	}
	s = (struct lstats *)(void *)(stats_arena + stats_arena_used);
	stats_arena_used += size;
	return s;
}

struct lstats *
stats_get(const char *name)
{
	struct lstats *s;

	pthread_mutex_lock(&stats_mtx);
	for (s = stats_list; s != NULL; s = s->s_next)
		if (strcmp(s->s_name, name) == 0)
			break;
	if (s == NULL) {
		s = stats_alloc();
		s->s_name = xstrdup(name);
		s->s_next = stats_list;
		stats_list = s;
	}
	pthread_mutex_unlock(&stats_mtx);
	return s;
}

void
stats_reloaded(void)
{
	atomic_fetch_add_explicit(&stats_reloads, 1, memory_order_relaxed);
}

void
stats_add(atomic_ulong *counter, unsigned long n)
{
	atomic_fetch_add_explicit(counter, n, memory_order_relaxed);
}

/* The reason label of sockserverd_refused_total that counter counts. */
static const char *
stats_reason(const struct lstats *s, const _Atomic unsigned long *counter)
{
	if (counter == &s->s_refused_acl)
		return "acl";
	if (counter == &s->s_refused_per_source)
		return "per_source";
	if (counter == &s->s_refused_size)
		return "datagram_size";
	if (counter == &s->s_refused_proxy)
		return "proxy_header";
	if (counter == &s->s_refused_tls)
		return "tls_handshake";
	if (counter == &s->s_refused_rate)
		return "rate";
	return "other";
}

void
stats_access(const struct access_rec *a, const char *note)
{
	char			 usec[24], in[24], out[24];
	struct log_field	 f[6];

	if (!log_is_enabled(LOG_INFO))
		return;
	snprintf(usec, sizeof(usec), "%.0f", a->a_seconds > 0 ?
	    a->a_seconds * 1e6 : 0.0);
	snprintf(in, sizeof(in), "%lu", a->a_received);
	snprintf(out, sizeof(out), "%lu", a->a_sent);
	f[0] = (struct log_field){ "SSD_LISTENER", a->a_listener };
	f[1] = (struct log_field){ "SSD_PEER", a->a_peer };
	f[2] = (struct log_field){ "SSD_DURATION_USEC", usec };
	f[3] = (struct log_field){ "SSD_RECEIVED", in };
	f[4] = (struct log_field){ "SSD_SENT", out };
	f[5] = (struct log_field){ "SSD_RESULT", a->a_result };
	log_fields(LOG_INFO, f, 6, "listener=%s peer=%s duration_usec=%s "
	    "received=%s sent=%s result=%s%s%s", a->a_listener, a->a_peer,
	    usec, in, out, a->a_result, note != NULL ? " " : "",
	    note != NULL ? note : "");
}

void
stats_refusal(struct lstats *s, _Atomic unsigned long *counter,
    const char *peer, const char *why, const struct access_rec *access)
{
	long		 now = (long)time(NULL), last;
	unsigned long	 n;
	struct access_rec a;
	char		 result[40], note[320];

	stats_add(counter, 1);
	atomic_fetch_add_explicit(&s->s_refused_unlogged, 1,
	    memory_order_relaxed);
	last = atomic_load(&s->s_refusal_logged);
	if (now == last || !atomic_compare_exchange_strong(
	    &s->s_refusal_logged, &last, now))
		return;
	n = atomic_exchange(&s->s_refused_unlogged, 0);
	if (access == NULL) {
		log_about(LOG_INFO, s->s_name, peer, "%s (%lu turned away "
		    "since the last report)", why, n);
		return;
	}
	/* The access log's entry for a refusal: as rare as the line
	 * above, with the same count. */
	a = *access;
	snprintf(result, sizeof(result), "refused:%s",
	    stats_reason(s, counter));
	a.a_result = result;
	snprintf(note, sizeof(note), "refused_since_last=%lu why=\"%s\"", n,
	    why);
	stats_access(&a, note);
}

void
stats_request_end(struct lstats *s, double seconds)
{
	size_t i;

	for (i = 0; i < STATS_NBUCKETS && seconds > stats_bounds[i]; i++)
		continue;
	/* Buckets are stored per interval; the exposition adds them up. */
	stats_add(&s->s_hist[i], 1);
	stats_add(&s->s_duration_us,
	    (unsigned long)(seconds * 1e6 + 0.5));
	atomic_fetch_sub_explicit(&s->s_in_progress, 1, memory_order_relaxed);
}

static unsigned long
stats_load(atomic_ulong *c)
{
	return atomic_load_explicit(c, memory_order_relaxed);
}

/* The daemon's open descriptors, or -1 when /proc cannot tell (a fork
 * child after a privilege drop may not read its parent's). */
static int
stats_open_fds(void)
{
	char		 path[64];
	DIR		*d;
	struct dirent	*de;
	bool		 self = getpid() == stats_pid;
	int		 n = 0;

	if (self)
		snprintf(path, sizeof(path), "/proc/self/fd");
	else
		snprintf(path, sizeof(path), "/proc/%ld/fd", (long)stats_pid);
	if ((d = opendir(path)) == NULL)
		return -1;
	while ((de = readdir(d)) != NULL)
		if (de->d_name[0] != '.')
			n++;
	closedir(d);
	return self ? n - 1 : n;	/* the directory's own descriptor */
}

void
stats_cat(struct stats_buf *b, const char *fmt, ...)
{
	va_list	 ap;
	int	 n;

	for (;;) {
		va_start(ap, fmt);
		n = vsnprintf(b->b_text + b->b_len, b->b_cap - b->b_len, fmt,
		    ap);
		va_end(ap);
		if (n < 0)
			return;
		if (b->b_len + (size_t)n < b->b_cap) {
			b->b_len += (size_t)n;
			return;
		}
		b->b_cap = (b->b_len + (size_t)n + 1) * 2;
		b->b_text = xreallocarray(b->b_text, b->b_cap, 1);
	}
}

static double
stats_uptime(void)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (now.tv_sec - stats_started.tv_sec) +
	    (now.tv_nsec - stats_started.tv_nsec) / 1e9;
}

/* One counter family, one line per listener. */
static void
stats_family(struct stats_buf *b, const char *name, const char *type,
    const char *help, size_t off)
{
	stats_cat(b, "# HELP sockserverd_%s %s\n# TYPE sockserverd_%s %s\n",
	    name, help, name, type);
	for (struct lstats *s = stats_list; s != NULL; s = s->s_next)
		stats_cat(b, "sockserverd_%s{listener=\"%s\"} %lu\n", name,
		    s->s_name, stats_load((atomic_ulong *)(void *)
		    ((char *)s + off)));
}

void
stats_render(struct stats_buf *b, bool prometheus)
{
	struct lstats *s;

	b->b_len = 0;
	if (b->b_cap == 0) {
		b->b_cap = 4096;
		b->b_text = xmalloc(b->b_cap);
	}
	b->b_text[0] = '\0';
	pthread_mutex_lock(&stats_mtx);
	if (!prometheus) {
		stats_cat(b, "sockserverd %s: up %.0fs, %lu reloads, %d open "
		    "descriptors\n", SSD_VERSION, stats_uptime(),
		    stats_load(&stats_reloads), stats_open_fds());
		for (s = stats_list; s != NULL; s = s->s_next)
			stats_cat(b, "listener %s: %lu in progress, %lu "
			    "requests, %lu refused, %lu errors, %lu timeouts, "
			    "%lu bytes in, %lu bytes out\n", s->s_name,
			    stats_load(&s->s_in_progress),
			    stats_load(&s->s_requests),
			    stats_load(&s->s_refused_acl) +
			    stats_load(&s->s_refused_per_source) +
			    stats_load(&s->s_refused_size) +
			    stats_load(&s->s_refused_proxy) +
			    stats_load(&s->s_refused_tls) +
			    stats_load(&s->s_refused_rate),
			    stats_load(&s->s_errors), stats_load(&s->s_timeouts),
			    stats_load(&s->s_bytes_in),
			    stats_load(&s->s_bytes_out));
		worker_render(b, false);
		pthread_mutex_unlock(&stats_mtx);
		return;
	}
	stats_family(b, "requests_total", "counter", "Requests started.",
	    offsetof(struct lstats, s_requests));
	stats_family(b, "requests_in_progress", "gauge",
	    "Requests in progress.", offsetof(struct lstats, s_in_progress));
	stats_cat(b, "# HELP sockserverd_refused_total Clients turned away, "
	    "by reason.\n# TYPE sockserverd_refused_total counter\n");
	for (s = stats_list; s != NULL; s = s->s_next)
		stats_cat(b, "sockserverd_refused_total{listener=\"%s\","
		    "reason=\"acl\"} %lu\nsockserverd_refused_total{listener="
		    "\"%s\",reason=\"per_source\"} %lu\n"
		    "sockserverd_refused_total{listener=\"%s\",reason="
		    "\"datagram_size\"} %lu\n"
		    "sockserverd_refused_total{listener=\"%s\",reason="
		    "\"proxy_header\"} %lu\n"
		    "sockserverd_refused_total{listener=\"%s\",reason="
		    "\"tls_handshake\"} %lu\n"
		    "sockserverd_refused_total{listener=\"%s\",reason="
		    "\"rate\"} %lu\n", s->s_name,
		    stats_load(&s->s_refused_acl), s->s_name,
		    stats_load(&s->s_refused_per_source), s->s_name,
		    stats_load(&s->s_refused_size), s->s_name,
		    stats_load(&s->s_refused_proxy), s->s_name,
		    stats_load(&s->s_refused_tls), s->s_name,
		    stats_load(&s->s_refused_rate));
	stats_family(b, "capped_total", "counter", "Times accepting paused "
	    "at max_connections (clients wait in the backlog).",
	    offsetof(struct lstats, s_capped));
	stats_family(b, "received_bytes_total", "counter",
	    "Bytes read by handlers.", offsetof(struct lstats, s_bytes_in));
	stats_family(b, "sent_bytes_total", "counter",
	    "Bytes written by handlers.", offsetof(struct lstats, s_bytes_out));
	stats_family(b, "handler_errors_total", "counter",
	    "Requests whose handler failed.", offsetof(struct lstats, s_errors));
	stats_family(b, "timeouts_total", "counter",
	    "Requests ended by the listener's timeout.",
	    offsetof(struct lstats, s_timeouts));
	stats_cat(b, "# HELP sockserverd_request_duration_seconds Time from "
	    "accept to the end of the request.\n# TYPE "
	    "sockserverd_request_duration_seconds histogram\n");
	for (s = stats_list; s != NULL; s = s->s_next) {
		unsigned long cum = 0;

		for (size_t i = 0; i < STATS_NBUCKETS; i++) {
			cum += stats_load(&s->s_hist[i]);
			stats_cat(b, "sockserverd_request_duration_seconds_bucket"
			    "{listener=\"%s\",le=\"%g\"} %lu\n", s->s_name,
			    stats_bounds[i], cum);
		}
		cum += stats_load(&s->s_hist[STATS_NBUCKETS]);
		stats_cat(b, "sockserverd_request_duration_seconds_bucket"
		    "{listener=\"%s\",le=\"+Inf\"} %lu\n"
		    "sockserverd_request_duration_seconds_sum{listener=\"%s\"} "
		    "%.6f\nsockserverd_request_duration_seconds_count{listener="
		    "\"%s\"} %lu\n", s->s_name, cum, s->s_name,
		    stats_load(&s->s_duration_us) / 1e6, s->s_name, cum);
	}
	stats_cat(b, "# HELP sockserverd_uptime_seconds Seconds since "
	    "start.\n# TYPE sockserverd_uptime_seconds gauge\n"
	    "sockserverd_uptime_seconds %.3f\n", stats_uptime());
	stats_cat(b, "# HELP sockserverd_open_fds Open file descriptors.\n"
	    "# TYPE sockserverd_open_fds gauge\nsockserverd_open_fds %d\n",
	    stats_open_fds());
	stats_cat(b, "# HELP sockserverd_reloads_total Configuration "
	    "reloads that took.\n# TYPE sockserverd_reloads_total counter\n"
	    "sockserverd_reloads_total %lu\n", stats_load(&stats_reloads));
	stats_cat(b, "# HELP sockserverd_log_dropped_total Log messages the "
	    "journal dropped (its socket was full).\n# TYPE "
	    "sockserverd_log_dropped_total counter\n"
	    "sockserverd_log_dropped_total %lu\n", log_dropped());
	worker_render(b, true);
	pthread_mutex_unlock(&stats_mtx);
}

void
stats_cleanup(void)
{
	while (stats_list != NULL) {
		struct lstats *s = stats_list;

		stats_list = s->s_next;
		free(s->s_name);
		if (stats_arena == NULL || (char *)s < stats_arena ||
		    (char *)s >= stats_arena + STATS_ARENA)
			free(s);
	}
	if (stats_arena != NULL)
		munmap(stats_arena, STATS_ARENA);
	stats_arena = NULL;
	stats_arena_used = 0;
}
