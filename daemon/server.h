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

/*
 * A concurrency model.  Callbacks run on the main loop thread, except
 * can_accept and dispatch, which run on the loop that accepted.
 *   start:      after the listener is bound; 0 or -1 (logged by the model)
 *   can_accept: whether the model takes another request now
 *   dispatch:   run rq (setup/handle/finish) and call server_request_done
 *               from whichever thread ran it
 *   cut:        make rq's blocked I/O fail now (drain deadline passed);
 *               called again at the final deadline to end it by force
 *   stop:       after the last request: release threads, children, ...
 *   resume:     optional: the model watches the socket on loops of its
 *               own (event workers); start or resume accepting there
 *   close:      optional, with resume: stop watching; and close the socket
 *               unless keep (it goes on to the next configuration)
 */
struct conc_ops {
	const char	*name;
	int		(*start)(struct listener *);
	bool		(*can_accept)(const struct listener *);
	void		(*dispatch)(struct listener *, struct ssd_request *);
	void		(*cut)(struct ssd_request *);
	void		(*stop)(struct listener *);
	void		(*resume)(struct listener *);
	void		(*close)(struct listener *, bool keep);
};

/* A listener's accept (or datagram) watcher on one loop. */
struct lwatch {
	struct listener		*w_listener;
	struct ev_loop		*w_loop;
	ev_io			 w_io;
	ev_timer		 w_backoff;	/* accept failed: EMFILE... */
	bool			 w_backoff_logged;
	unsigned long		 w_refused;	/* refused, not yet logged */
	ev_tstamp		 w_refused_logged;
	unsigned char		*w_dgram;	/* receive buffer */
};

extern const struct conc_ops conc_sync_ops;	/* conc_sync.c */
extern const struct conc_ops conc_thread_ops;	/* conc_thread.c */
extern const struct conc_ops conc_fork_ops;	/* conc_fork.c */
extern const struct conc_ops conc_event_ops;	/* conc_event.c */
extern const struct conc_ops conc_event_workers_ops;

/* Runtime state of a bound listener (struct listener's l_run). */
struct lrun {
	struct listener		*r_listener;
	int			 r_fd;
	struct lwatch		 r_watch;	/* on the main loop */
	atomic_bool		 r_closing;	/* socket closed or closing */
	bool			 r_unlink;	/* unix path we created */
	dev_t			 r_dev;
	ino_t			 r_ino;
	char			 r_local[ADDR_STRLEN + 110];
	atomic_uint		 r_active;	/* requests in progress */
	/* Requests in progress on the socket, across reloads: what the
	 * listener's max_connections (and sync's one at a time) limit.
	 * Shared with the listeners of older configurations that had the
	 * socket; freed with the last of them. */
	struct lshare {
		atomic_uint	 s_active;
		unsigned	 s_refs;	/* main thread only */
		struct source_table *s_sources;	/* max_per_source */
		struct lrun	*s_owner;	/* the one holding the fd */
	}			*r_share;
	const struct conc_ops	*r_ops;
	void			*r_conc;	/* the model's state */
};

/* A request: one connection or one datagram (public: opaque). */
struct ssd_request {
	struct listener		*rq_listener;
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
	bool			 rq_source_counted;	/* max_per_source */
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
/* Takes ownership of fd (closed by request_free). */
struct ssd_request *request_new_stream(struct listener *, int fd,
	    const struct sockaddr *, socklen_t);
/* Copies the datagram; replies go out through the listener's socket. */
struct ssd_request *request_new_dgram(struct listener *,
	    const void *data, size_t len, const struct sockaddr *, socklen_t);
/* setup; try handle finally finish; then the datagram reply.  Logs. */
void	request_run(struct ssd_request *);
void	request_free(struct ssd_request *);
/* Size of a request's input buffer (ssd_readline, PROXY header). */
#define REQUEST_BUFSIZE	4096
/* One read of the connection into buf, waiting as the model does:
 * >0, 0 at EOF, -1 (errno ETIMEDOUT after the timeout). */
ssize_t	request_read_raw(struct ssd_request *, void *buf, size_t len);

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
/* Creates, binds and listens; 0, or -1 after logging what and where. */
int	listener_bind(struct listener *);
/* Closes the inherited sockets no listener took (logged) and forgets the
 * rest, which belong to their listeners now. */
void	listener_inherited_release(void);
/* Stops accepting; closes the socket (dgram: once idle); removes the
 * unix socket file it created. */
void	listener_close(struct listener *);
/* Stops accepting but leaves the socket open for a listener of the next
 * configuration, which takes it with listener_adopt. */
void	listener_detach(struct listener *);
/* true if l's socket can serve nl unchanged (same family, type, address) */
bool	listener_same_socket(const struct listener *l,
	    const struct listener *nl);
/* Takes over from's socket (detached) for l; adjusts the backlog and the
 * unix file mode to l's settings.  Cannot fail. */
void	listener_adopt(struct listener *l, struct listener *from);
/* Releases what listener_bind allocated (after listener_close). */
void	listener_free_run(struct listener *);
/* accept()/recv callback and its helpers */
void	listener_start(struct listener *);
void	listener_resume(struct listener *);
/* stops accepting for a back-off period after err (EMFILE, EAGAIN...) */
void	listener_pause(struct lwatch *, int err);
/* a watcher of l's socket on loop (the model's own loops use these) */
void	listener_watch_init(struct lwatch *, struct listener *,
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
	struct config		*s_cfg;
	ev_signal		 s_sigterm, s_sigint, s_sighup;
	ev_async		 s_done_async;
	ev_timer		 s_drain;
	pthread_mutex_t		 s_done_mtx;
	struct request_list	 s_done;	/* finished, from any thread */
	struct request_list	 s_active;	/* under s_done_mtx */
	atomic_uint		 s_nactive;
	atomic_bool		 s_stopping;
	bool			 s_cut;
	TAILQ_HEAD(, config)	 s_retired;	/* replaced by a reload */
	struct sd_fd		*s_inherited;	/* socket activation */
	size_t			 s_ninherited;
	ev_timer		 s_watchdog;
};
extern struct server server;

/* The loop and its signal watchers; 0 or -1 (logged). */
int	server_init(struct config *);
/* Binds every listener; 0 or -1 (logged; call server_abort). */
int	server_bind(void);
/* Starts the models and the accept watchers; 0 or -1 (logged). */
int	server_start(void);
/* Closes and releases every bound listener after a failed start. */
void	server_abort(void);
/* Runs the loop until stopped; returns the exit status. */
int	server_run(void);
/* true if l may take another request now (model, limits, stopping) */
bool	server_can_accept(const struct listener *);
/* Reserves a request slot on l within max_connections (listener and
 * global); false at a cap.  Any thread. */
bool	server_reserve(struct listener *);
void	server_unreserve(struct listener *);
/* starts rq, which holds a reserved slot, from the loop of w */
void	server_request_begin(struct ssd_request *, struct lwatch *w);
/* called by a model when rq is over, from any thread */
void	server_request_done(struct ssd_request *);
/* Makes cf (bound, started) the running configuration; the old one is
 * retired and freed once its last request ends. */
void	server_swap(struct config *cf);
/* Warns when fork listeners share the process with threads. */
void	server_warn_fork_threads(const struct config *);
/* Starts the model and accepting of one bound listener; 0 or -1. */
int	server_start_listener(struct listener *);

/* reload.c */
/* SIGHUP: reads, validates and prepares the configuration again, binds
 * what is new, then swaps; on any failure the running one stays. */
void	reload_run(void);

#endif /* SERVER_H */
