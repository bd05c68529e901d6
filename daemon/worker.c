/* SPDX-License-Identifier: ISC */
/*
 * worker.c - worker_processes: the supervisor and the start of a worker.
 * The supervisor (the daemon's own process) binds every listener, holds
 * the pid file, the privileges, systemd's notifications and the signals,
 * and forks the workers; it never runs handler code (handlers are checked
 * in a probe child: handler_check) and never starts a thread, so that it
 * can always fork.  Its loop is poll(2) on a signalfd, no libev: a worker
 * starts its own loop from nothing (server_init) after the fork.
 *
 * Ownership (see also gen.c):
 *   struct wproc   one worker process, supervisor only: holds +1 on the
 *                  gen it runs until waitpid reaps it; its shared slot
 *                  (struct wslot) is given back then.
 *   struct wshm    MAP_SHARED|MAP_ANONYMOUS, mapped once before the first
 *                  fork and never unmapped: each worker's heartbeat, loop
 *                  lag and requests in progress; the count of requests in
 *                  progress of the whole daemon (max_connections); one
 *                  struct lshare per listening socket (its listener's
 *                  max_connections), given out by the supervisor when it
 *                  binds the socket and taken back once no process can
 *                  use it (the socket is gone from the supervisor and
 *                  every worker that ran with it has been reaped).
 *   struct source_ledger  one per wproc (source.c), mapped in
 *                  worker_spawn before the fork, released in worker_forget
 *                  once the worker is reaped: what it held counted in the
 *                  per-source tables, which the sockets' lsocks own (in
 *                  shared memory as soon as a listener of theirs has
 *                  per-source rules: worker_share_socks).
 *   A worker's counts are its own (ls_by, ws_active, its ledger): when it
 *   dies, the supervisor takes them back from the totals, so that a crash
 *   does not leave slots taken for ever.
 */
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/wait.h>

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "server.h"

/* Worker processes alive at once (N new and the old ones draining). */
#define WORKER_SLOTS		256
/* Listening sockets with a shared count at once. */
#define WORKER_LSHARES		1024
/* How often a worker's loop beats (and looks again at shared caps). */
#define WORKER_BEAT		0.1
/* A worker that dies sooner than this after its start is restarted
 * after a growing pause. */
#define WORKER_QUICK_DEATH	1.0
#define WORKER_BACKOFF_MIN	0.05
#define WORKER_BACKOFF_MAX	2.0
/* How long the old workers keep accepting while the new ones start. */
#define WORKER_READY_WAIT	5.0
/* After shutdown_timeout, how long a draining worker gets to exit (it
 * cuts its requests itself) before SIGKILL. */
#define WORKER_KILL_GRACE	5.0
/* The exit status of a worker whose handlers would not initialise. */
#define WORKER_EXIT_INIT	3

struct wslot {
	atomic_ullong	 ws_beat_us;	/* CLOCK_MONOTONIC of the last beat */
	atomic_ullong	 ws_lag_us;	/* how late the last beat was */
	atomic_uint	 ws_active;	/* requests in progress */
	atomic_ulong	 ws_served;	/* requests started */
	atomic_bool	 ws_ready;	/* serving */
	atomic_int	 ws_pid;
	atomic_uint	 ws_gen;	/* the reload it serves (g_id) */
};

struct lshare {
	atomic_uint	 ls_active;	/* requests in progress, all workers */
	atomic_uint	 ls_by[WORKER_SLOTS];
};

struct wshm {
	atomic_uint	 sh_active;	/* requests in progress, all workers */
	atomic_ulong	 sh_restarts;
	atomic_uint	 sh_workers;	/* alive */
	struct wslot	 sh_slots[WORKER_SLOTS];
	struct lshare	 sh_socks[WORKER_LSHARES];
};

struct wproc {
	pid_t			 p_pid;
	unsigned		 p_slot;
	int			 p_index;	/* in the current gen, or -1 */
	struct gen		*p_gen;		/* a reference */
	struct source_ledger	*p_ledger;	/* or NULL */
	double			 p_started;
	double			 p_kill_at;	/* draining: SIGKILL then */
	bool			 p_draining;
	bool			 p_killed;
	TAILQ_ENTRY(wproc)	 p_entry;
};
TAILQ_HEAD(wproc_list, wproc);

/* What the supervisor keeps about position i of the current workers. */
struct wpos {
	struct wproc	*w_proc;	/* NULL: waiting to be started */
	double		 w_start_at;	/* when to start it again */
	unsigned	 w_quick;	/* quick deaths in a row */
};

static struct wshm	*worker_shm;
static struct wslot	*worker_self;	/* in a worker */
static unsigned		 worker_self_slot;

static struct {
	int			 sv_sigfd;
	int			 sv_level_cli;
	struct wproc_list	 sv_procs;
	struct wpos		*sv_pos;
	size_t			 sv_npos;
	bool			 sv_slot_used[WORKER_SLOTS];
	unsigned		 sv_ls_holders[WORKER_LSHARES];
	bool			 sv_stopping;
	double			 sv_stop_deadline;
	/* old workers to stop once the new ones serve */
	double			 sv_handover_at;
	bool			 sv_handover;
	double			 sv_next_ping;
	/* death reports, at most one a second */
	double			 sv_logged_at;
	unsigned		 sv_unlogged;
	pid_t			 sv_pid;
} sv;

static double
worker_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

bool
worker_is_worker(void)
{
	return worker_self != NULL;
}

int
worker_shm_init(void)
{
	void *p;

	if (worker_shm != NULL)
		return 0;
	p = mmap(NULL, sizeof(struct wshm), PROT_READ | PROT_WRITE,
	    MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return -1;
	worker_shm = p;
	return 0;
}

/* ---- shared counts: any process ---- */

/* Adds one to *n unless that would pass max (0: no cap). */
static bool
worker_take_one(atomic_uint *n, long max)
{
	unsigned v = atomic_load(n);

	do {
		if (max > 0 && v >= (unsigned long)max)
			return false;
	} while (!atomic_compare_exchange_weak(n, &v, v + 1));
	return true;
}

bool
worker_take(struct lsock *k, long lmax, long gmax)
{
	struct lshare *ls = k->k_share;

	if (ls != NULL && !worker_take_one(&ls->ls_active, lmax))
		return false;
	if (!worker_take_one(&worker_shm->sh_active, gmax)) {
		if (ls != NULL)
			atomic_fetch_sub(&ls->ls_active, 1);
		return false;
	}
	if (ls != NULL)
		atomic_fetch_add(&ls->ls_by[worker_self_slot], 1);
	atomic_fetch_add(&worker_self->ws_active, 1);
	atomic_fetch_add_explicit(&worker_self->ws_served, 1,
	    memory_order_relaxed);
	return true;
}

void
worker_give(struct lsock *k)
{
	struct lshare *ls = k->k_share;

	atomic_fetch_sub(&worker_self->ws_active, 1);
	if (ls != NULL) {
		atomic_fetch_sub(&ls->ls_by[worker_self_slot], 1);
		atomic_fetch_sub(&ls->ls_active, 1);
	}
	atomic_fetch_sub(&worker_shm->sh_active, 1);
}

bool
worker_is_capped(const struct lsock *k, long lmax, long gmax)
{
	if (lmax > 0 && k->k_share != NULL &&
	    atomic_load(&k->k_share->ls_active) >= lmax)
		return true;
	return gmax > 0 && atomic_load(&worker_shm->sh_active) >= gmax;
}

void
worker_render(struct stats_buf *b, bool prometheus)
{
	struct wshm *sh = worker_shm;

	if (sh == NULL)
		return;
	if (!prometheus) {
		stats_cat(b, "workers: %u running, %lu restarts\n",
		    atomic_load(&sh->sh_workers),
		    atomic_load(&sh->sh_restarts));
		for (unsigned i = 0; i < WORKER_SLOTS; i++)
			if (atomic_load(&sh->sh_slots[i].ws_pid) != 0)
				stats_cat(b, "worker %u: pid %d, reload #%u, %u in "
				    "progress, loop lag %.3fs\n", i,
				    atomic_load(&sh->sh_slots[i].ws_pid),
				    atomic_load(&sh->sh_slots[i].ws_gen) - 1,
				    atomic_load(&sh->sh_slots[i].ws_active),
				    atomic_load(&sh->sh_slots[i].ws_lag_us) /
				    1e6);
		return;
	}
	stats_cat(b, "# HELP sockserverd_worker_restarts_total Worker processes "
	    "that died and were replaced.\n# TYPE "
	    "sockserverd_worker_restarts_total counter\n"
	    "sockserverd_worker_restarts_total %lu\n"
	    "# HELP sockserverd_workers Worker processes running (old ones "
	    "draining after a reload included).\n# TYPE sockserverd_workers "
	    "gauge\nsockserverd_workers %u\n",
	    atomic_load(&sh->sh_restarts), atomic_load(&sh->sh_workers));
	stats_cat(b, "# HELP sockserverd_worker_requests_in_progress Requests in "
	    "progress, by worker process.\n# TYPE "
	    "sockserverd_worker_requests_in_progress gauge\n");
	for (unsigned i = 0; i < WORKER_SLOTS; i++)
		if (atomic_load(&sh->sh_slots[i].ws_pid) != 0)
			stats_cat(b, "sockserverd_worker_requests_in_progress"
			    "{worker=\"%u\"} %u\n", i,
			    atomic_load(&sh->sh_slots[i].ws_active));
	stats_cat(b, "# HELP sockserverd_worker_loop_lag_seconds How late the "
	    "worker's event loop ran its last heartbeat.\n# TYPE "
	    "sockserverd_worker_loop_lag_seconds gauge\n");
	for (unsigned i = 0; i < WORKER_SLOTS; i++)
		if (atomic_load(&sh->sh_slots[i].ws_pid) != 0)
			stats_cat(b, "sockserverd_worker_loop_lag_seconds"
			    "{worker=\"%u\"} %.6f\n", i,
			    atomic_load(&sh->sh_slots[i].ws_lag_us) / 1e6);
}

/* ---- the worker side ---- */

static ev_timer worker_beat_timer;

static unsigned long long
worker_now_us(void)
{
	return (unsigned long long)(worker_now() * 1e6);
}

static void
worker_beat_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	unsigned long long now = worker_now_us();
	unsigned long long last = atomic_load(&worker_self->ws_beat_us);
	unsigned long long due = last + (unsigned long long)(WORKER_BEAT * 1e6);

	(void)loop;
	(void)w;
	(void)revents;
	atomic_store(&worker_self->ws_lag_us, now > due ? now - due : 0);
	atomic_store(&worker_self->ws_beat_us, now);
	/* Another worker may have let go of a slot under a shared cap. */
	if (server.s_gen != NULL && !atomic_load(&server.s_stopping))
		for (size_t i = 0; i < server.s_gen->g_nruns; i++)
			listener_resume(&server.s_gen->g_runs[i]);
}

/* In the child, after the fork: becomes a worker of g and never returns. */
static void __attribute__((noreturn))
worker_child(struct gen *g, unsigned slot, struct source_ledger *ledger)
{
	struct diag	 d;
	sigset_t	 none;
	int		 status;

	/* The supervisor gone, the worker drains and ends. */
	prctl(PR_SET_PDEATHSIG, SIGTERM);
	if (getppid() != sv.sv_pid)
		_exit(EXIT_OK);
	close(sv.sv_sigfd);
	signal(SIGCHLD, SIG_DFL);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	log_reset_fds();
	sd_forget();
	worker_self = &worker_shm->sh_slots[slot];
	worker_self_slot = slot;
	source_ledger_attach(ledger);
	/* Only this generation lives here: one reference, the server's;
	 * each socket, one per listener of g serving it.  The unix socket
	 * files are the supervisor's to remove. */
	atomic_store(&g->g_refs, 1);
	for (size_t i = 0; i < g->g_nruns; i++)
		if (g->g_runs[i].r_sock != NULL)
			atomic_store(&g->g_runs[i].r_sock->k_refs, 0);
	for (size_t i = 0; i < g->g_nruns; i++) {
		struct lsock *k = g->g_runs[i].r_sock;

		if (k != NULL) {
			atomic_fetch_add(&k->k_refs, 1);
			k->k_unlink = false;
		}
	}
	if (server_init(sv.sv_level_cli) == -1)
		_exit(WORKER_EXIT_INIT);
	ev_signal_stop(server.s_loop, &server.s_sighup);
	signal(SIGHUP, SIG_IGN);
	server.s_worker = (int)slot + 1;
	diag_init(&d);
	if (gen_prepare(g, &d) == -1) {
		diag_log(&d);
		_exit(WORKER_EXIT_INIT);
	}
	diag_fini(&d);
	server_adopt(g);
	if (server_start() == -1)
		_exit(WORKER_EXIT_INIT);
	atomic_store(&worker_self->ws_beat_us, worker_now_us());
	ev_timer_init(&worker_beat_timer, worker_beat_cb, WORKER_BEAT,
	    WORKER_BEAT);
	ev_timer_start(server.s_loop, &worker_beat_timer);
	ev_unref(server.s_loop);
	atomic_store(&worker_self->ws_ready, true);
	status = server_run();	/* the loop is gone, and the timer */
	fflush(NULL);
	/* Not exit(): the supervisor's state copied into this process
	 * (other generations, its pid file) is not ours to tear down. */
	_exit(status);
}

/* ---- the supervisor ---- */

static int
worker_slot_get(void)
{
	for (unsigned i = 0; i < WORKER_SLOTS; i++)
		if (!sv.sv_slot_used[i]) {
			sv.sv_slot_used[i] = true;
			return (int)i;
		}
	return -1;
}

/* The sockets of g get a shared count each, if they have none, and a
 * shared per-source table if their listener has per-source rules. */
static void
worker_share_socks(struct gen *g)
{
	for (size_t i = 0; i < g->g_nruns; i++) {
		struct lsock *k = g->g_runs[i].r_sock;

		if (k != NULL)
			lsock_share_sources(k, g->g_runs[i].r_listener);
		if (k == NULL || k->k_share != NULL)
			continue;
		for (unsigned j = 0; j < WORKER_LSHARES; j++)
			if (sv.sv_ls_holders[j] == 0) {
				sv.sv_ls_holders[j] = 1;	/* k's */
				memset(&worker_shm->sh_socks[j], 0,
				    sizeof(worker_shm->sh_socks[j]));
				k->k_share = &worker_shm->sh_socks[j];
				break;
			}
		if (k->k_share == NULL)
			log_warningx("%s: too many sockets: max_connections "
			    "of its listener counts per worker", k->k_local);
	}
}

static size_t
worker_lshare_index(const struct lshare *ls)
{
	return (size_t)(ls - worker_shm->sh_socks);
}

/* The shares of g's sockets: one more (+1) or one fewer (-1) holder. */
static void
worker_hold_socks(struct gen *g, int delta)
{
	for (size_t i = 0; i < g->g_nruns; i++) {
		struct lrun *r = &g->g_runs[i];

		if (r->r_share != NULL)
			sv.sv_ls_holders[worker_lshare_index(r->r_share)] +=
			    (unsigned)delta;
	}
}

void
worker_lsock_gone(struct lsock *k)
{
	if (k->k_share == NULL || worker_self != NULL || worker_shm == NULL)
		return;
	sv.sv_ls_holders[worker_lshare_index(k->k_share)]--;
	k->k_share = NULL;
}

static void
worker_spawn(size_t index, struct gen *g)
{
	struct wproc		*p;
	struct source_ledger	*ledger;
	int			 slot;
	pid_t			 pid;

	if ((slot = worker_slot_get()) == -1) {
		log_errorx("cannot start worker %zu: %d worker processes are "
		    "alive already", index, WORKER_SLOTS);
		sv.sv_pos[index].w_start_at = worker_now() + 1.0;
		return;
	}
	memset(&worker_shm->sh_slots[slot], 0, sizeof(struct wslot));
	atomic_store(&worker_shm->sh_slots[slot].ws_gen, g->g_id);
	/* Remember which shares g's processes use: r_share outlives the
	 * socket in this process. */
	for (size_t i = 0; i < g->g_nruns; i++)
		if (g->g_runs[i].r_sock != NULL &&
		    !atomic_load(&g->g_runs[i].r_closing))
			g->g_runs[i].r_share = g->g_runs[i].r_sock->k_share;
	if ((ledger = source_ledger_new()) == NULL)
		log_warning("worker %zu: no ledger for its per-source counts "
		    "(they stay taken if it dies)", index);
	fflush(NULL);
	if ((pid = fork()) == -1) {
		log_error("cannot start worker %zu: fork", index);
		source_ledger_release(ledger);
		sv.sv_slot_used[slot] = false;
		sv.sv_pos[index].w_start_at = worker_now() + 1.0;
		return;
	}
	if (pid == 0)
		worker_child(g, (unsigned)slot, ledger);
	atomic_store(&worker_shm->sh_slots[slot].ws_pid, pid);
	atomic_fetch_add(&worker_shm->sh_workers, 1);
	p = xcalloc(1, sizeof(*p));
	p->p_pid = pid;
	p->p_slot = (unsigned)slot;
	p->p_index = (int)index;
	p->p_gen = g;
	p->p_ledger = ledger;
	p->p_started = worker_now();
	gen_ref(g);
	worker_hold_socks(g, 1);
	TAILQ_INSERT_TAIL(&sv.sv_procs, p, p_entry);
	sv.sv_pos[index].w_proc = p;
	log_debug("worker %zu started: pid %ld, slot %d, reload #%u", index,
	    (long)pid, slot, g->g_id - 1);
}

/* What p's death leaves: its counts go back, its slot is free. */
static void
worker_forget(struct wproc *p)
{
	struct wslot	*s = &worker_shm->sh_slots[p->p_slot];
	unsigned long	 given;

	atomic_fetch_sub(&worker_shm->sh_active, atomic_load(&s->ws_active));
	if ((given = source_ledger_release(p->p_ledger)) > 0)
		log_debug("worker pid %ld: %lu per-source counts given back",
		    (long)p->p_pid, given);
	for (unsigned j = 0; j < WORKER_LSHARES; j++) {
		struct lshare *ls = &worker_shm->sh_socks[j];
		unsigned n;

		if (sv.sv_ls_holders[j] == 0)
			continue;
		if ((n = atomic_exchange(&ls->ls_by[p->p_slot], 0)) != 0)
			atomic_fetch_sub(&ls->ls_active, n);
	}
	memset(s, 0, sizeof(*s));
	sv.sv_slot_used[p->p_slot] = false;
	atomic_fetch_sub(&worker_shm->sh_workers, 1);
	TAILQ_REMOVE(&sv.sv_procs, p, p_entry);
	worker_hold_socks(p->p_gen, -1);
	gen_unref(p->p_gen);
	free(p);
}

static void
worker_describe(int st, char *buf, size_t len)
{
	if (WIFSIGNALED(st))
		snprintf(buf, len, "killed by signal %d (%s)%s", WTERMSIG(st),
		    strsignal(WTERMSIG(st)), WCOREDUMP(st) ? ", core dumped" :
		    "");
	else if (WEXITSTATUS(st) == WORKER_EXIT_INIT)
		snprintf(buf, len, "could not start (status %d: see above)",
		    WEXITSTATUS(st));
	else
		snprintf(buf, len, "exited with status %d", WEXITSTATUS(st));
}

static void
worker_died(struct wproc *p, int st)
{
	double		 now = worker_now(), lived = now - p->p_started;
	int		 index = p->p_index;
	struct wpos	*w;
	char		 how[128];

	worker_describe(st, how, sizeof(how));
	if (p->p_draining || sv.sv_stopping || index < 0) {
		log_msg(WIFSIGNALED(st) || WEXITSTATUS(st) != 0 ? LOG_WARNING :
		    LOG_DEBUG, "worker pid %ld (reload #%u) %s",
		    (long)p->p_pid, p->p_gen->g_id - 1, how);
		worker_forget(p);
		return;
	}
	atomic_fetch_add(&worker_shm->sh_restarts, 1);
	w = &sv.sv_pos[index];
	w->w_proc = NULL;
	/* A worker that could not start, or died before it served anyone,
	 * again and again: a crash loop, spaced out.  One that a request
	 * killed is replaced at once however often (nginx does the same),
	 * so that a handler crashing under load costs its requests only. */
	if (lived < WORKER_QUICK_DEATH && atomic_load(
	    &worker_shm->sh_slots[p->p_slot].ws_served) == 0) {
		double pause = WORKER_BACKOFF_MIN;

		for (unsigned i = 0; i < w->w_quick && pause <
		    WORKER_BACKOFF_MAX; i++)
			pause *= 2;
		w->w_quick++;
		w->w_start_at = now + (w->w_quick > 1 ? (pause >
		    WORKER_BACKOFF_MAX ? WORKER_BACKOFF_MAX : pause) : 0);
	} else {
		w->w_quick = 0;
		w->w_start_at = now;
	}
	if (now - sv.sv_logged_at >= 1.0) {
		if (sv.sv_unlogged > 0)
			log_warningx("worker %d (pid %ld) %s; replaced (%u "
			    "more workers died since the last report)",
			    index, (long)p->p_pid, how, sv.sv_unlogged);
		else
			log_warningx("worker %d (pid %ld) %s; replaced%s",
			    index, (long)p->p_pid, how, w->w_start_at > now ?
			    " after a pause (it died within a second of its "
			    "start)" : "");
		sv.sv_logged_at = now;
		sv.sv_unlogged = 0;
	} else
		sv.sv_unlogged++;
	worker_forget(p);
}

static void
worker_reap(void)
{
	struct wproc	*p;
	pid_t		 pid;
	int		 st;

	while ((pid = waitpid(-1, &st, WNOHANG)) > 0) {
		TAILQ_FOREACH(p, &sv.sv_procs, p_entry)
			if (p->p_pid == pid)
				break;
		if (p != NULL)
			worker_died(p, st);
	}
}

/* Starts the current workers that are due. */
static void
worker_start_due(void)
{
	double now = worker_now();

	if (sv.sv_stopping)
		return;
	for (size_t i = 0; i < sv.sv_npos; i++)
		if (sv.sv_pos[i].w_proc == NULL &&
		    sv.sv_pos[i].w_start_at <= now)
			worker_spawn(i, server.s_gen);
}

/* The current generation runs n workers (positions 0..n-1). */
static void
worker_set_positions(size_t n)
{
	free(sv.sv_pos);
	sv.sv_pos = xcalloc(n, sizeof(*sv.sv_pos));
	sv.sv_npos = n;
}

static void
worker_drain(struct wproc *p, double timeout)
{
	if (p->p_draining)
		return;
	p->p_draining = true;
	p->p_index = -1;
	p->p_kill_at = worker_now() + timeout + WORKER_KILL_GRACE;
	kill(p->p_pid, SIGTERM);
}

/* Once every current worker serves (or after a while): the workers of
 * older generations stop accepting and drain. */
static void
worker_handover(bool force)
{
	struct wproc	*p;
	bool		 ready = true;

	if (!sv.sv_handover)
		return;
	for (size_t i = 0; i < sv.sv_npos; i++) {
		p = sv.sv_pos[i].w_proc;
		if (p == NULL || !atomic_load(
		    &worker_shm->sh_slots[p->p_slot].ws_ready))
			ready = false;
	}
	if (!ready && !force && worker_now() < sv.sv_handover_at)
		return;
	sv.sv_handover = false;
	TAILQ_FOREACH(p, &sv.sv_procs, p_entry)
		if (p->p_gen != server.s_gen)
			worker_drain(p, p->p_gen->g_cfg->cf_shutdown_timeout);
}

static void
worker_stop(const char *why)
{
	struct gen	*g = server.s_gen;
	struct wproc	*p;
	double		 timeout = g->g_cfg->cf_shutdown_timeout;

	if (sv.sv_stopping)
		return;
	sv.sv_stopping = true;
	sd_notifyf("STOPPING=1");
	log_noticex("%s: stopping %u workers", why,
	    atomic_load(&worker_shm->sh_workers));
	sd_notifyf("STATUS=stopping: %u workers draining",
	    atomic_load(&worker_shm->sh_workers));
	/* Our copies of the listening sockets go now; the workers let go
	 * of theirs at once too. */
	server_let_go(g, NULL);
	server.s_gen = NULL;
	gen_unref(g);
	TAILQ_FOREACH(p, &sv.sv_procs, p_entry) {
		p->p_draining = false;
		worker_drain(p, timeout);
	}
	sv.sv_stop_deadline = worker_now() + timeout + WORKER_KILL_GRACE;
}

/* READY=1 with the status line, in one datagram. */
static void
worker_ready(void)
{
	sd_notifyf("READY=1\nSTATUS=serving %zu listeners with %zu worker "
	    "processes", server.s_gen->g_cfg->cf_nlisteners, sv.sv_npos);
}

static void
worker_reload(void)
{
	const char	*path = server.s_gen->g_cfg->cf_path;
	struct gen	*old = server.s_gen, *g = NULL;
	struct config	*cf = NULL;
	struct wproc	*p;
	struct diag	 d;
	struct timespec	 ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	sd_notifyf("RELOADING=1\nMONOTONIC_USEC=%llu\nSTATUS=reloading %s",
	    (unsigned long long)ts.tv_sec * 1000000ULL +
	    (unsigned long long)ts.tv_nsec / 1000, path);
	log_noticex("SIGHUP: reloading %s", path);
	diag_init(&d);
	if (config_load(path, &cf, &d) == 0) {
		if (cf->cf_worker_processes == 0) {
			diag_setting(&d, cf->cf_worker_processes_setting != NULL ?
			    cf->cf_worker_processes_setting :
			    config_root_setting(&cf->cf_lc), "worker_processes "
			    "cannot change from %zu to 0 on reload: restart "
			    "sockserverd", sv.sv_npos);
			config_free(cf);
		} else
			g = gen_new_checked(cf, &d);
	}
	if (g == NULL) {
		diag_log(&d);
		goto fail;
	}
	if (reload_bind(old, g) == -1) {
		gen_unref(g);
		goto fail;
	}
	server_link(g);
	stats_reloaded();
	server_apply_logging(g->g_cfg);
	worker_share_socks(g);
	/* The old workers keep serving until the new ones do. */
	TAILQ_FOREACH(p, &sv.sv_procs, p_entry)
		p->p_index = -1;
	worker_set_positions((size_t)g->g_cfg->cf_worker_processes);
	for (size_t i = 0; i < sv.sv_npos; i++)
		worker_spawn(i, g);
	sv.sv_handover = true;
	sv.sv_handover_at = worker_now() + WORKER_READY_WAIT;
	/* Sockets no new listener keeps: our copy goes now (the old workers
	 * let go of theirs when they drain). */
	server_let_go(old, g);
	gen_unref(old);
	log_noticex("reloaded %s: %zu listeners, %zu worker processes",
	    g->g_cfg->cf_path, g->g_cfg->cf_nlisteners, sv.sv_npos);
	diag_fini(&d);
	worker_ready();
	return;
fail:
	diag_fini(&d);
	log_errorx("reload failed: the previous configuration keeps running");
	sd_notifyf("READY=1\nSTATUS=reload failed, previous configuration "
	    "kept: serving %zu listeners", server.s_gen->g_cfg->cf_nlisteners);
}

/* The systemd watchdog: pinged only while every current worker beats;
 * a worker whose loop has not beaten for half the period is replaced. */
static void
worker_watchdog(void)
{
	double		 period = sd_watchdog_period(), now = worker_now();
	unsigned long long now_us = worker_now_us(), limit;
	struct wproc	*p;
	bool		 all = true;

	if (period <= 0 || sv.sv_stopping)
		return;
	limit = (unsigned long long)(period / 2 * 1e6);
	TAILQ_FOREACH(p, &sv.sv_procs, p_entry) {
		struct wslot	*s = &worker_shm->sh_slots[p->p_slot];
		unsigned long long beat = atomic_load(&s->ws_beat_us);

		if (!atomic_load(&s->ws_ready) || p->p_killed) {
			if (p->p_index >= 0)
				all = false;
			continue;
		}
		if (now_us > beat && now_us - beat > limit) {
			log_warningx("worker %d (pid %ld): its loop has not run "
			    "for %.1fs (a handler stuck?); killing it",
			    p->p_index, (long)p->p_pid, (now_us - beat) / 1e6);
			kill(p->p_pid, SIGKILL);
			p->p_killed = true;
			if (p->p_index >= 0)
				all = false;
		}
	}
	for (size_t i = 0; i < sv.sv_npos; i++)
		if (sv.sv_pos[i].w_proc == NULL)
			all = false;
	if (all && now >= sv.sv_next_ping) {
		sd_notifyf("WATCHDOG=1");
		sv.sv_next_ping = now + period / 4;
	}
}

/* Milliseconds until the next thing to do (poll's timeout). */
static int
worker_next_timeout(void)
{
	double		 now = worker_now(), next = now + 1.0;
	double		 period = sd_watchdog_period();
	struct wproc	*p;

	if (period > 0 && now + period / 8 < next)
		next = now + period / 8;
	if (sv.sv_handover)
		next = now + 0.005;
	for (size_t i = 0; !sv.sv_stopping && i < sv.sv_npos; i++)
		if (sv.sv_pos[i].w_proc == NULL &&
		    sv.sv_pos[i].w_start_at < next)
			next = sv.sv_pos[i].w_start_at;
	TAILQ_FOREACH(p, &sv.sv_procs, p_entry)
		if (p->p_draining && !p->p_killed && p->p_kill_at < next)
			next = p->p_kill_at;
	if (next <= now)
		return 0;
	return (int)((next - now) * 1000) + 1;
}

static void
worker_kill_late(void)
{
	double		 now = worker_now();
	struct wproc	*p;

	TAILQ_FOREACH(p, &sv.sv_procs, p_entry)
		if (p->p_draining && !p->p_killed && now >= p->p_kill_at) {
			log_warningx("worker pid %ld did not finish draining "
			    "in time; killing it", (long)p->p_pid);
			kill(p->p_pid, SIGKILL);
			p->p_killed = true;
		}
}

int
worker_supervise(int level_cli)
{
	struct gen		*g = server.s_gen;
	struct signalfd_siginfo	 si;
	struct pollfd		 pfd;
	sigset_t		 set;

	sv.sv_pid = getpid();
	sv.sv_level_cli = level_cli;
	TAILQ_INIT(&sv.sv_procs);
	sigemptyset(&set);
	sigaddset(&set, SIGCHLD);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigprocmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);
	if ((sv.sv_sigfd = signalfd(-1, &set, SFD_CLOEXEC |
	    SFD_NONBLOCK)) == -1) {
		log_error("signalfd");
		return EXIT_CONFIG;
	}
	worker_share_socks(g);
	worker_set_positions((size_t)g->g_cfg->cf_worker_processes);
	for (size_t i = 0; i < sv.sv_npos; i++)
		worker_spawn(i, g);
	log_noticex("sockserverd %s started: %zu listeners, %zu worker "
	    "processes", SSD_VERSION, g->g_cfg->cf_nlisteners, sv.sv_npos);
	sd_notifyf("MAINPID=%ld", (long)getpid());
	worker_ready();
	if (sd_watchdog_period() > 0) {
		log_infox("systemd watchdog: pinging every %gs while every "
		    "worker beats", sd_watchdog_period() / 4);
		sd_notifyf("WATCHDOG=1");
		sv.sv_next_ping = worker_now() + sd_watchdog_period() / 4;
	}
	for (;;) {
		pfd.fd = sv.sv_sigfd;
		pfd.events = POLLIN;
		if (poll(&pfd, 1, worker_next_timeout()) == -1 &&
		    errno != EINTR) {
			log_error("poll");
			break;
		}
		while (read(sv.sv_sigfd, &si, sizeof(si)) == sizeof(si)) {
			switch (si.ssi_signo) {
			case SIGHUP:
				if (!sv.sv_stopping)
					worker_reload();
				break;
			case SIGTERM:
				worker_stop("SIGTERM");
				break;
			case SIGINT:
				worker_stop("SIGINT");
				break;
			default:
				break;
			}
		}
		worker_reap();
		if (sv.sv_stopping && TAILQ_EMPTY(&sv.sv_procs))
			break;
		if (sv.sv_stopping && worker_now() >= sv.sv_stop_deadline) {
			struct wproc *p;

			TAILQ_FOREACH(p, &sv.sv_procs, p_entry)
				if (!p->p_killed) {
					kill(p->p_pid, SIGKILL);
					p->p_killed = true;
				}
		}
		worker_handover(false);
		worker_start_due();
		worker_kill_late();
		worker_watchdog();
	}
	close(sv.sv_sigfd);
	free(sv.sv_pos);
	log_noticex("stopped");
	return EXIT_OK;
}
