/* SPDX-License-Identifier: ISC */
/*
 * server.h - the loop side of the daemon: listeners' runtime state, the
 * request object behind the public struct ssd_request, and the ops struct
 * that each concurrency model implements.  Only loop-side files include it.
 */
#ifndef SERVER_H
#define SERVER_H

#include <ev.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>

#include "daemon.h"

struct ssd_request;
struct lrun;
struct gen;

/*
 * A concurrency model.  Callbacks run on the main loop thread, except
 * can_accept and dispatch, which run on the loop that accepted.
 *   start:      after the socket is bound; 0 or -1 (logged by the model)
 *   can_accept: whether the model takes another request now
 *   dispatch:   run rq (setup/handle/finish) and call server_request_done
 *               from whichever thread ran it
 *   cut:        make rq's blocked I/O fail now (drain deadline passed);
 *               called again at the final deadline to end it by force
 *   stop:       at the generation's retirement, after its last request:
 *               join threads, free the model's state
 *   resume:     optional: the model watches the socket on loops of its
 *               own (event workers); start or resume accepting there
 *   close:      optional, with resume: wake those loops to stop accepting
 *               (r_closing) or to watch the socket afresh (r_epoch)
 *   serial:     the model runs one request at a time (sync)
 */
struct conc_ops {
	const char	*name;
	int		(*start)(struct lrun *);
	bool		(*can_accept)(const struct lrun *);
	void		(*dispatch)(struct lrun *, struct ssd_request *);
	void		(*cut)(struct ssd_request *);
	void		(*stop)(struct lrun *);
	void		(*resume)(struct lrun *);
	void		(*close)(struct lrun *);
	/* one request at a time: a batch of datagrams is served under the
	 * one slot of its first (listener_dgram_next) */
	bool		  serial;
};

/*
 * Datagrams taken from the socket by one recvmmsg and not yet made
 * requests (listener.c).  Only the holder of the socket's receive turn
 * touches it: the loop that watches the socket, or (sync) the thread
 * that holds the listener's one request slot.
 */
struct dgram_batch {
	struct mmsghdr		*d_msgs;
	struct iovec		*d_iov;
	struct sockaddr_storage	*d_addrs;
	unsigned char		*d_bufs;	/* d_max slots of d_slot bytes */
	size_t			 d_slot;	/* max_packet_size + 1 */
	unsigned		 d_max;		/* datagrams per recvmmsg */
	unsigned		 d_n, d_next;	/* received, consumed */
	/* event, main loop: the replies of the batch's requests, gathered
	 * while listener_recv runs them and sent by one sendmmsg */
	struct mmsghdr		*d_out;
	struct iovec		*d_oiov;
	struct sockaddr_storage	*d_oaddrs;
	unsigned char		*d_obufs;	/* d_max slots */
	unsigned		 d_nout;
	bool			 d_gather;	/* inside listener_recv */
};

/* A listener's accept (or datagram) watcher on one loop. */
struct lwatch {
	struct lrun		*w_run;
	struct ev_loop		*w_loop;
	ev_io			 w_io;
	ev_timer		 w_backoff;	/* accept failed: EMFILE... */
	bool			 w_backoff_logged;
	struct dgram_batch	 w_batch;	/* dgram: receive buffers */
};

extern const struct conc_ops conc_sync_ops;	/* conc_sync.c */
extern const struct conc_ops conc_thread_ops;	/* conc_thread.c */
extern const struct conc_ops conc_fork_ops;	/* conc_fork.c */
extern const struct conc_ops conc_event_ops;	/* conc_event.c */
extern const struct conc_ops conc_event_workers_ops;
/* Frees the main loop's share of the event model, once no request is
 * left (conc_event.c). */
void	conc_event_fini(void);
/* Joins the thread model's ended threads, keeping or unmapping their
 * stacks (the loop thread). */
void	conc_thread_reap(void);
void	conc_thread_fini(void);	/* at exit, no request left */

/*
 * A listening socket (listener.c), shared by every generation whose
 * listener has the same family, type and address.  Counted references
 * (see gen.c): each listener run that serves it, until it stops
 * accepting; each event-worker loop watching it; each request that came
 * from it.  The last lsock_unref, on any thread, closes the descriptor
 * and frees the object: a datagram reply always leaves by the socket its
 * datagram came in on.
 */
struct lsock {
	atomic_uint		 k_refs;
	int			 k_fd;
	int			 k_family, k_type;
	struct sockaddr_storage	 k_addr;	/* the configured address */
	socklen_t		 k_addrlen;
	bool			 k_v6only, k_reuse_port;
	bool			 k_shut;	/* served by no generation now */
	bool			 k_dead;	/* lost its address: never kept */
	bool			 k_unlink;	/* unix path we created */
	dev_t			 k_dev;
	ino_t			 k_ino;
	int			 k_queue_size;
	mode_t			 k_unix_mode;
	char			 k_local[ADDR_STRLEN + 110];
	char			 k_inherited[64];	/* its LISTEN_FDNAMES */
	/* Requests in progress on the socket, whatever their generation:
	 * what max_connections (and sync's one at a time) limit. */
	atomic_uint		 k_active;
	/* Per-source state (max_per_source, rate_per_source): kept with
	 * the socket across reloads, judged by the current settings. */
	struct source_table	*k_sources;
	/* With worker_processes: the count of requests in progress that all
	 * workers share (worker.c), or NULL. */
	struct lshare		*k_share;
};

/* A listener's runtime in one generation (gen.c). */
struct lrun {
	struct gen		*r_gen;
	const struct listener	*r_listener;	/* settings, immutable */
	struct hinst		 r_hi;		/* handler instance */
	struct lsock		*r_sock;	/* a reference until r_closing */
	struct lstats		*r_stats;
	const struct conc_ops	*r_ops;
	void			*r_conc;	/* the model's state */
	struct lwatch		 r_watch;	/* on the main loop */
	atomic_bool		 r_closing;	/* accepts no more */
	atomic_uint		 r_epoch;	/* socket replaced under its fd */
	bool			 r_started;
	struct lshare		*r_share;	/* supervisor: its socket's */
};

/*
 * A generation (gen.c): the runtime of one configuration.  See the
 * picture at the top of gen.c.
 */
struct gen {
	atomic_uint		 g_refs;
	unsigned		 g_id;
	struct config		*g_cfg;		/* owned, immutable */
	struct lrun		*g_runs;	/* one per listener, in order */
	size_t			 g_nruns;
	bool			 g_prepared;	/* handlers initialised */
	TAILQ_ENTRY(gen)	 g_entry;	/* server.s_gens */
	TAILQ_ENTRY(gen)	 g_dead;	/* server.s_dead */
};
TAILQ_HEAD(gen_list, gen);

/* gen.c */
/* A generation for cf (taken over: freed with the generation), with every
 * handler resolved and initialised; problems go to d.  Any thread.
 * Returns NULL (and frees cf) on failure.  One reference, the caller's. */
struct gen *gen_new(struct config *cf, struct diag *d);
/* A generation for cf (taken over) whose handlers were only checked, in
 * a child process each (handler_check), never initialised here: what the
 * supervisor of worker processes holds.  NULL (cf freed) on failure. */
struct gen *gen_new_checked(struct config *cf, struct diag *d);
/* Resolves and initialises g's handlers (a worker, after the fork); 0, or
 * -1 with the problems in d (g unchanged). */
int	gen_prepare(struct gen *, struct diag *d);
/* One more reference on g; the caller must already hold one. */
void	gen_ref(struct gen *);
/* Drops a reference from any thread; the last one retires g (stops its
 * models, finalises handlers, releases sockets and plugins, frees the
 * configuration), always on the main thread. */
void	gen_unref(struct gen *);
/* true if a listener of g (NULL: none) has socket k */
bool	gen_uses(const struct gen *, const struct lsock *k);
/* Stops accepting on every listener of g (main thread). */
void	gen_stop_accepting(struct gen *);
/* Retires the generations whose last reference went on another thread;
 * main thread. */
void	gen_reap(void);

/* A request: one connection or one datagram (public: opaque). */
struct ssd_request {
	const struct listener	*rq_listener;	/* = rq_run->r_listener */
	struct lrun		*rq_run;	/* holds a ref on its gen */
	struct lsock		*rq_sock;	/* and on its socket */
	int			 rq_fd;		/* connection, or listener's */
	int			 rq_type;
	struct sockaddr_storage	 rq_peer;
	socklen_t		 rq_peerlen;
	char			 rq_peerstr[ADDR_STRLEN];
	void			*rq_data;
	double			 rq_timeout;
	atomic_bool		 rq_cut;	/* set by the drain deadline */
	bool			 rq_timedout;
	bool			 rq_peer_gone;	/* ECONNRESET or EPIPE seen */
	bool			 rq_drained;	/* last read was short */
	bool			 rq_blocking;	/* blocking socket, SO_*TIMEO */
	/* What source_take counted for the client (sk_valid: given
	 * back by server_request_finish). */
	struct source_key	 rq_source_key;
	bool			 rq_error_logged;	/* ssd_log at notice+ */
	unsigned long		 rq_bytes_in, rq_bytes_out;	/* the request's */
	const char		*rq_refused;	/* reason label, if refused */
	struct tls_conn		*rq_tls;	/* TLS listener: tls.c */
	struct request_env	*rq_env;	/* ssd_env's values */
	/* stream: buffered input of ssd_readline; dgram: the datagram */
	char			*rq_buf;
	size_t			 rq_off, rq_len, rq_cap;
	/* dgram: the reply, sent after handle returns */
	char			*rq_out;
	size_t			 rq_outlen, rq_outcap;
	bool			 rq_has_reply;	/* ssd_write was called */
	/* wait until fd is ready for events, or -1/ETIMEDOUT */
	/* wait until fd (the connection, or another the request waits
	 * on) is ready for events, or -1/ETIMEDOUT after the timeout */
	int			(*rq_wait)(struct ssd_request *, int fd,
				    short events);
	ev_tstamp		 rq_started;
	void			*rq_conc;	/* the model's per-request state */
	struct lwatch		*rq_watch;	/* the watcher that accepted it */
	struct lstats		*rq_stats;	/* the listener's counters */
	TAILQ_ENTRY(ssd_request) rq_entry;	/* server.s_active */
	TAILQ_ENTRY(ssd_request) rq_entry2;	/* server.s_done */
};
TAILQ_HEAD(request_list, ssd_request);

/* request.c */
/* Bytes the request read or wrote (plaintext): its own count and the
 * listener's counters.  The request's thread only. */
void	request_count_in(struct ssd_request *, unsigned long);
void	request_count_out(struct ssd_request *, unsigned long);
/* Takes ownership of fd (closed by request_free). */
struct ssd_request *request_new_stream(struct lrun *, int fd,
	    const struct sockaddr *, socklen_t);
/* Copies the datagram; replies go out through the listener's socket. */
struct ssd_request *request_new_dgram(struct lrun *,
	    const void *data, size_t len, const struct sockaddr *, socklen_t);
/* Makes rq, a datagram request that has run, the request of the next
 * datagram: its per-request state is cleared, the datagram copied. */
void	request_reuse_dgram(struct ssd_request *, const void *data,
	    size_t len, const struct sockaddr *, socklen_t);
/* setup; try handle finally finish; then the datagram reply.  Logs. */
void	request_run(struct ssd_request *);
void	request_free(struct ssd_request *);
/* Closes a stream request's connection (its thread does, when done). */
void	request_close(struct ssd_request *);
/* Size of a request's input buffer (ssd_readline, PROXY header). */
#define REQUEST_BUFSIZE	4096
/* One read of the connection into buf, waiting as the model does:
 * >0, 0 at EOF, -1 (errno ETIMEDOUT after the timeout). */
ssize_t	request_read_raw(struct ssd_request *, void *buf, size_t len);

/* tls.c: a TLS connection, on rq's non-blocking socket */
/* The handshake, bounded by the listener's timeout; 0, or -1 with the
 * reason in why (rq->rq_tls is set either way: tls_close frees it). */
int	tls_accept(struct ssd_request *, char *why, size_t whylen);
/* One read of plaintext, waiting as the model does: >0, 0 at EOF
 * (close_notify, or a close without it), -1 with errno. */
ssize_t	tls_read(struct ssd_request *, void *buf, size_t len);
/* All of buf, or -1 with errno; the timeout bounds the whole write. */
int	tls_write(struct ssd_request *, const void *buf, size_t len);
/* Without waiting: >0, 0 at EOF, or -1 with errno (EAGAIN: *want tells
 * POLLIN or POLLOUT on rq's socket). */
ssize_t	tls_read_try(struct ssd_request *, void *buf, size_t len,
	    short *want);
ssize_t	tls_write_try(struct ssd_request *, const void *buf, size_t len,
	    short *want);
/* Sends close_notify (once), unless the connection broke or was cut;
 * waits up to a second for room.  0 or -1. */
int	tls_close_notify(struct ssd_request *);
/* Sends close_notify (the handler is done), unless the connection broke
 * or was cut; ends our side of the TCP connection. */
void	tls_shutdown(struct ssd_request *);
/* Frees rq's TLS state (before its socket closes). */
void	tls_close(struct ssd_request *);
/* Frees OpenSSL's state of the calling thread, which ends soon. */
void	tls_thread_stop(void);
/* HTTPS and the SSL_* variables of exec (mod_ssl's names), or NULL */
const char *tls_env(const struct ssd_request *, const char *name);

/* proxy.c */
/* Reads a PROXY v1 or v2 header from rq's connection and makes the client
 * it names rq's peer; 0, or -1 with the reason in err. */
int	proxy_read(struct ssd_request *, char *err, size_t errlen);

/* blocking models' rq_wait: poll(2) bounded by the listener's timeout */
int	request_wait_poll(struct ssd_request *, int fd, short events);
/* For the models that give a request a thread or a process of its own:
 * a blocking connection whose SO_RCVTIMEO/SO_SNDTIMEO is the listener's
 * timeout, so that each read or write is one system call, no poll. */
void	request_set_blocking(struct ssd_request *);
/* marks rq cut and shuts its connection down, so blocked I/O fails */
void	request_cut(struct ssd_request *);

/* listener.c */
/*
 * A socket for l: an inherited one (socket activation) or a new one,
 * bound and listening.  Returns it with one reference, or NULL with the
 * reason in err; *in_use_r tells whether the address was taken (by a
 * live socket: perhaps one of ours that a reload rebinds).
 */
struct lsock *lsock_open(const struct listener *l, bool *in_use_r,
	    char *err, size_t errlen);
/* One more reference; the caller holds one.  Any thread. */
void	lsock_ref(struct lsock *);
/* Drops a reference, any thread; the last closes and frees. */
void	lsock_unref(struct lsock *);
/* No generation serves k any more (main thread): the unix socket file
 * we made is removed; a stream socket lets go of its listening socket at
 * once (our clients are refused, not queued; a copy that systemd holds
 * keeps listening) and keeps its descriptor's number.  A datagram
 * socket stays bound while its requests may still answer. */
void	lsock_shut(struct lsock *);
/* true if k can serve l unchanged (same family, type, address) */
bool	lsock_fits(const struct lsock *k, const struct listener *l);
/* true if binding l needs k's address (same port or unix path) */
bool	lsock_conflicts(const struct lsock *k, const struct listener *l);
/* Lets go of k's address now (a reload rebinds it): the descriptor keeps
 * its number but no longer holds the address.  0 or -1. */
int	lsock_release_address(struct lsock *k, char *err, size_t errlen);
/* Undoes lsock_release_address: binds k's address again; 0 or -1. */
int	lsock_restore_address(struct lsock *k, char *err, size_t errlen);
/* Applies what may change on a kept socket (backlog, unix mode,
 * SO_REUSEPORT) for l. */
void	lsock_adjust(struct lsock *k, const struct listener *l);
/* The supervisor of worker processes, before it forks workers that serve
 * l on k: k's per-source table moves to shared memory if l has
 * per-source rules (kept with k from then on). */
void	lsock_share_sources(struct lsock *k, const struct listener *l);
/* Closes the inherited sockets no listener took (logged) and forgets the
 * rest, which belong to their listeners now. */
void	listener_inherited_release(void);
/* Starts accepting on the main loop (or the model's loops). */
void	listener_start(struct lrun *);
void	listener_resume(struct lrun *);
/* Stops accepting on every loop that watches r's socket, and drops r's
 * reference on it (main thread; once). */
void	listener_stop(struct lrun *);
/* Every loop that watches r's socket registers it again: another socket
 * took its descriptor's number (lsock_restore_address). */
void	listener_refresh(struct lrun *);
/* The per-source rules of l (max_per_source, rate_per_source, by source
 * prefix) for client sa, in the table of k: true if it may go on, with
 * *key_r what was counted (sk_valid false if nothing), to give back with
 * source_put; false after counting the refusal in stats and logging it
 * (at most once a second).  Any thread. */
bool	listener_source_admit(const struct listener *l, struct lsock *k,
	    struct lstats *stats, const struct sockaddr *sa, socklen_t len,
	    struct source_key *key_r);
/*
 * Sync datagrams: rq (a datagram request of a sync listener, which holds
 * the listener's one slot) has run.  Ends its accounting as a request
 * (counters, per-source share) and loads the next datagram that passes
 * the listener's checks into rq, from the batch already received or from
 * the socket (recvmmsg, without waiting), so that a busy socket is served
 * without a trip through the loop per datagram.  true: rq holds a new
 * request, to run; false: nothing more now (or the listener is closing,
 * the daemon stopping, rq cut), rq is as it was: the caller ends it with
 * server_request_done.  On the thread that runs rq.
 */
bool	listener_dgram_next(struct ssd_request *rq);
/* A datagram reply (rq's, of rq_outlen bytes) taken to be sent with the
 * other replies of its batch, at the end of the batch, in order: true;
 * false if the caller sends it now (not an event request of the main
 * loop, or too big, or no batch being run).  Logs a reply not sent. */
bool	listener_dgram_reply(struct ssd_request *rq);
/* stops accepting for a back-off period after err (EMFILE, EAGAIN...) */
void	listener_pause(struct lwatch *, int err);
/* a watcher of r's socket on loop (the model's own loops use these) */
void	listener_watch_init(struct lwatch *, struct lrun *,
	    struct ev_loop *);
void	listener_watch_resume(struct lwatch *);
void	listener_watch_stop(struct lwatch *);
void	listener_watch_fini(struct lwatch *);

/* sd.c: systemd's notify protocol, without libsystemd */
/* Takes NOTIFY_SOCKET, WATCHDOG_USEC/PID and LISTEN_* from the
 * environment (and removes them); call before anything forks. */
void	sd_init(void);
/* the watchdog period in seconds, 0 if none */
double	sd_watchdog_period(void);
/* true if NOTIFY_SOCKET is set */
bool	sd_is_notify_enabled(void);
/* sends "fmt..." to NOTIFY_SOCKET if set; 0 or -1 (logged at debug) */
int	sd_notifyf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
#define SD_LISTEN_FDS_START 3
struct sd_fd {
	int	 fd;
	char	*name;		/* from LISTEN_FDNAMES, or "unknown" */
	bool	 used;
};
/* The sockets systemd passed (LISTEN_FDS for our LISTEN_PID, as read by
 * sd_init), made close-on-exec.  Returns the count; the caller owns and
 * frees the array and the names. */
size_t	sd_listen_fds(struct sd_fd **);

/* server.c */
struct server {
	struct ev_loop		*s_loop;
	pthread_t		 s_thread;	/* the loop's */
	struct gen		*s_gen;		/* current; main thread only */
	struct gen_list		 s_gens;	/* every live generation */
	unsigned		 s_ngen;	/* ids */
	ev_signal		 s_sigterm, s_sigint, s_sighup;
	ev_async		 s_done_async;
	ev_timer		 s_drain;
	pthread_mutex_t		 s_done_mtx;
	struct request_list	 s_done;	/* finished, from any thread */
	struct request_list	 s_active;	/* under s_done_mtx */
	struct gen_list		 s_dead;	/* under s_done_mtx: to retire */
	atomic_uint		 s_nactive;
	atomic_bool		 s_stopping;
	bool			 s_cut;
	int			 s_cli_level;	/* -l, or -1 */
	bool			 s_detached;	/* -D: stderr means syslog */
	/* reload.c: the configuration being prepared off the loop */
	ev_async		 s_reload_async;
	bool			 s_reloading, s_reload_again;
	struct gen		*s_reload_gen;	/* its result */
	struct diag		 s_reload_diag;
	struct sd_fd		*s_inherited;	/* socket activation */
	size_t			 s_ninherited;
	ev_timer		 s_watchdog;
	int			 s_worker;	/* worker slot + 1, or 0 */
};
extern struct server server;

/* The loop and its signal watchers; 0 or -1 (logged). */
int	server_init(int cli_level);
/* The state without a loop (the supervisor of worker processes). */
void	server_init_state(int cli_level);
/* Binds every listener of g and makes it current; 0 or -1 (logged). */
int	server_bind(struct gen *);
/* Starts the models and the accept watchers; 0 or -1 (logged). */
int	server_start(void);
/* Releases everything after a failed start. */
void	server_abort(void);
/* Runs the loop until stopped; returns the exit status. */
int	server_run(void);
/* Ends the loop if it may: stopping, and nothing left alive. */
void	server_check_done(void);
/* true if r may take another request now (model, limits, stopping) */
bool	server_can_accept(const struct lrun *);
/* Reserves a request slot on r within max_connections (listener and
 * global) and a reference on its generation; false at a cap.  Called on
 * the loop that watches r (which holds a reference on r's gen). */
bool	server_reserve(struct lrun *);
void	server_unreserve(struct lrun *);
/* starts rq, which holds a reserved slot, from the loop of w */
void	server_request_begin(struct ssd_request *, struct lwatch *w);
/* called by a model when rq is over, from any thread */
void	server_request_done(struct ssd_request *);
/* Gives r its socket: kept (another generation's, shared: the caller
 * applies r's settings with lsock_adjust once the reload holds) or a new
 * one; logged.  0, or -1: logged as FILE:LINE, except when the address is in
 * use and in_use_r is not NULL (*in_use_r set: the caller may rebind). */
int	server_open_run(struct lrun *r, struct lsock *kept, bool *in_use_r);
/* Starts the model and accepting of one bound listener; 0 or -1. */
int	server_start_listener(struct lrun *);
/* Makes g (bound) the current generation; the old one stops accepting
 * and is retired with its last request. */
void	server_swap(struct gen *g);
/* Links g among the live generations, with a new id, and makes it the
 * current one. */
void	server_link(struct gen *g);
/* A worker: g, as forked, is the current and only generation. */
void	server_adopt(struct gen *g);
/* Stops accepting on every listener of old; the sockets that no listener
 * of g (NULL: none) keeps stop listening. */
void	server_let_go(struct gen *old, const struct gen *g);
/* The effective log level and target of cf (-l wins). */
void	server_apply_logging(const struct config *cf);

/* reload.c */
/* SIGHUP: reads, validates and prepares the configuration again on a
 * thread of its own, then binds what is new and swaps, on the loop; on
 * any failure the running one stays. */
void	reload_start(void);
/* Called once the loop is set up. */
void	reload_init(void);
/* Gives every listener of g its socket: kept from old, or bound (see the
 * top of reload.c); 0 or -1 (logged, old unchanged). */
int	reload_bind(struct gen *old, struct gen *g);

/* worker.c: worker_processes (the supervisor, and a worker's start) */
struct lshare;
/* Maps the memory the workers share; before the first fork.  0 or -1. */
int	worker_shm_init(void);
/* The supervisor's life: forks the workers of server.s_gen (bound), keeps
 * them running, reloads, stops; returns the exit status.  Never returns in
 * a worker (which exits when its loop ends). */
int	worker_supervise(int level_cli);
/* true in a worker process */
bool	worker_is_worker(void);
/* A worker takes a request slot of socket k within its listener's cap
 * lmax and the daemon's gmax (0: none), shared by all workers; false at a
 * cap.  worker_give gives it back. */
bool	worker_take(struct lsock *k, long lmax, long gmax);
void	worker_give(struct lsock *k);
/* true if a shared cap is reached */
bool	worker_is_capped(const struct lsock *k, long lmax, long gmax);
/* The supervisor frees k: its share goes once no worker uses it. */
void	worker_lsock_gone(struct lsock *k);

/* sd.c (worker processes) */
/* Forgets NOTIFY_SOCKET and the watchdog: only the supervisor talks to
 * systemd (NotifyAccess=main). */
void	sd_forget(void);

#endif /* SERVER_H */
