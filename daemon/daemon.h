/* SPDX-License-Identifier: ISC */
/*
 * daemon.h - internal types and prototypes of sockserverd, grouped by the
 * file that defines them.  Nothing here needs the event loop: the loop-side
 * types live in server.h, so the pure modules (diag, addr, acl, config,
 * loader) and their unit tests stay loop-free.
 */
#ifndef DAEMON_H
#define DAEMON_H

#include <sys/types.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <sys/un.h>

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <libconfig.h>
#include <sockserverd.h>

#include "log.h"
#include "xmalloc.h"

#ifndef TAILQ_FOREACH_SAFE
#define TAILQ_FOREACH_SAFE(var, head, field, tvar)			\
	for ((var) = TAILQ_FIRST(head);					\
	    (var) != NULL && ((tvar) = TAILQ_NEXT(var, field), 1);	\
	    (var) = (tvar))
#endif

#define container_of(ptr, type, member)					\
	((type *)(void *)((char *)(ptr) - offsetof(type, member)))

#define SSD_ASSERT(x) do {						\
	if (!(x)) {							\
		log_errorx("assertion failed at %s:%d: %s",		\
		    __FILE__, __LINE__, #x);				\
		abort();						\
	}								\
} while (0)

enum { EXIT_OK = 0, EXIT_CONFIG = 1, EXIT_USAGE = 2 };
/* The most worker processes (worker_processes) one configuration runs. */
#define WORKER_MAX	64

#ifndef SSD_VERSION
#define SSD_VERSION "0.1.0"
#endif
#ifndef SSD_SYSCONFDIR
#define SSD_SYSCONFDIR "/usr/local/etc"
#endif
#ifndef SSD_HANDLERDIR
#define SSD_HANDLERDIR "/usr/local/lib/sockserverd/handlers"
#endif
#define SSD_DEFAULT_CONFIG SSD_SYSCONFDIR "/sockserverd.conf"

/* Longest "[v6addr%scope]:port" or "unix" that addr_format writes. */
#define ADDR_STRLEN 80

/* diag.c: diagnostics collected as "FILE:LINE: message" */
struct diag {
	char	**d_msgs;
	size_t	  d_count;
	/* libconfig names an @include'd file as written: relative to this */
	char	 *d_incdir;
	char	 *d_main;	/* the main file, as given */
};
void	diag_init(struct diag *);
/* frees every message */
void	diag_fini(struct diag *);
void	diag_add(struct diag *, const char *file, int line, const char *fmt,
	    ...) __attribute__((format(printf, 4, 5)));
/* the path of a file libconfig names (an @include as written); freed
 * by the caller */
char	*diag_source_path(const struct diag *, const char *file);
/* adds a message already formatted as "FILE:LINE: message" */
void	diag_raw(struct diag *, const char *msg);
/* FILE:LINE taken from the setting; file "?" when libconfig has none */
void	diag_setting(struct diag *, const config_setting_t *,
	    const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void	diag_vsetting(struct diag *, const config_setting_t *,
	    const char *fmt, va_list) __attribute__((format(printf, 3, 0)));
/* writes every message, one per line */
void	diag_print(const struct diag *, FILE *);
/* logs every message at error */
void	diag_log(const struct diag *);

/* addr.c: socket addresses, no I/O but name resolution */
/* Formats sa as "1.2.3.4:5", "[::1]:5" or "unix" into buf (ADDR_STRLEN). */
void	addr_format(const struct sockaddr *, socklen_t, char *buf, size_t);
/* Formats a listener's local address: ip:port, a unix path or @name. */
void	addr_format_local(const struct sockaddr *, socklen_t, char *buf,
	    size_t);
/* AF_INET/AF_INET6 for an IP literal, AF_UNIX for "/..." or "@...",
 * AF_UNSPEC for anything else (a host name). */
int	addr_guess_family(const char *address);
/*
 * Resolves address (IP literal, host name, "*", unix path, "@abstract")
 * for family (AF_UNSPEC: from the address) into ss/len.  On failure returns
 * -1 with a message in err.
 */
int	addr_resolve(int family, const char *address, int port,
	    struct sockaddr_storage *ss, socklen_t *len_r, char *err,
	    size_t errlen);

/* acl.c: CIDR parsing and matching, pure functions */
struct cidr {
	int	c_family;		/* AF_INET or AF_INET6 */
	uint8_t	c_addr[16];		/* masked network address */
	int	c_bits;
};
/* Parses "10.0.0.0/8", "::1/128" or a bare address; a v4-mapped IPv6
 * rule of prefix >= 96 becomes the IPv4 rule it maps.  0 ok, -1 invalid. */
int	acl_parse(const char *, struct cidr *);
/* true if sa (v4-mapped v6 treated as v4) lies in any of the n cidrs */
bool	acl_match(const struct cidr *, size_t n, const struct sockaddr *);
struct listener;
/* true if l's allow/deny turn away client sa (inet and inet6 only) */
bool	acl_refuses(const struct listener *, const struct sockaddr *);

/* stats.c: per-listener counters, by name, for the process's life */
#define STATS_NBUCKETS	10
struct lstats {
	struct lstats	*s_next;
	char		*s_name;
	_Atomic unsigned long s_requests, s_in_progress, s_refused_acl,
			 s_refused_per_source, s_refused_size, s_capped,
			 s_bytes_in, s_bytes_out, s_errors, s_timeouts,
			 s_duration_us, s_refused_proxy,
			 s_refused_tls, s_refused_rate;
	_Atomic long	 s_refusal_logged;	/* second of the last log */
	_Atomic unsigned long s_refused_unlogged;	/* since that log */
	_Atomic unsigned long s_hist[STATS_NBUCKETS + 1];
};
struct stats_buf {
	char	*b_text;
	size_t	 b_len, b_cap;
};
void	stats_init(void);
/* the counters of listener name (made on first use; never freed) */
struct lstats *stats_get(const char *name);
void	stats_add(_Atomic unsigned long *, unsigned long);
/* One entry of a listener's access log (access_log = true). */
struct access_rec {
	const char	*a_listener, *a_peer;
	double		 a_seconds;	/* from the accept */
	unsigned long	 a_received, a_sent;	/* bytes, plaintext */
	const char	*a_result;	/* ok, error, timeout, cut */
};
/* Writes it at info: "listener=... peer=... duration_usec=... received=...
 * sent=... result=..." and more (note), and as journal fields. */
void	stats_access(const struct access_rec *, const char *note);
/* A client turned away: *counter counted, and logged at most once a
 * second per listener with the number turned away since the last log, so
 * that a flood cannot fill the disk; with access (access_log), as an
 * access-log entry whose result is refused:REASON.  Any thread. */
void	stats_refusal(struct lstats *, _Atomic unsigned long *counter,
	    const char *peer, const char *why, const struct access_rec *access);
/* a request ended after seconds: histogram, sum, in progress */
void	stats_request_end(struct lstats *, double seconds);
void	stats_reloaded(void);
/* Renders every counter: a plain summary, or the Prometheus text
 * format.  b is reused; its text is freed by the caller. */
void	stats_render(struct stats_buf *, bool prometheus);
/* Appends printf output to b (growing it). */
void	stats_cat(struct stats_buf *b, const char *fmt, ...)
	    __attribute__((format(printf, 2, 3)));
/* worker.c: the worker processes' figures (nothing without them). */
void	worker_render(struct stats_buf *, bool prometheus);
void	stats_cleanup(void);

/* source.c: per-source state of a listening socket, by client prefix:
 * requests in progress (max_per_source) and a token bucket
 * (rate_per_source), in a table of bounded size (see source.c) */
struct source_table;
/* What identifies a source: its address masked to the listener's
 * prefix (IPv4 as v4-mapped, with 96 + source_prefix_v4 bits). */
struct source_key {
	uint8_t	sk_addr[16];
	uint8_t	sk_bits;
	bool	sk_valid;	/* false: no address (unix), never counted */
	uint32_t sk_hold;	/* its record in the worker's ledger + 1 */
};
/* The listener's per-source settings at the time of a source_take. */
struct source_rule {
	long	sr_max;		/* max_per_source; 0 = none */
	double	sr_rate;	/* tokens per second; 0 = none */
	double	sr_burst;	/* the bucket's size, >= 1 with a rate */
};
enum source_verdict {
	SOURCE_OK,	/* counted: give it back with source_put */
	SOURCE_MAX,	/* max_per_source requests in progress already */
	SOURCE_RATE,	/* the bucket is empty */
	SOURCE_FULL,	/* no room: every entry it could replace is busy */
};
/* A table of at most max_slots entries (0: the default, 2^18); freed
 * with source_table_free.  Any thread. */
struct source_table *source_table_new(size_t max_slots);
/* The same, in memory shared with the processes forked after it, with
 * all its max_slots at once (pages are touched as sources come) and a
 * robust process-shared lock; NULL (errno) if it cannot be mapped.  The
 * supervisor of worker processes only. */
struct source_table *source_table_new_shared(size_t max_slots);
bool	source_table_is_shared(const struct source_table *);
/* Frees a table (a shared one: this process's mapping of it). */
void	source_table_free(struct source_table *);
/* The clock of the buckets (monotonic seconds). */
double	source_now(void);
/* The source of sa with prefixes prefix4 (0-32) and prefix6 (0-128);
 * a v4-mapped IPv6 address is its IPv4 address.  false (and sk_valid
 * false) for addresses other than inet/inet6.  Pure. */
bool	source_key(const struct sockaddr *sa, int prefix4, int prefix6,
	    struct source_key *key_r);
/* One more request from key under rule, at now: SOURCE_OK (counted, and
 * a token spent; in a worker, a shared table's count is written in the
 * worker's ledger too, key->sk_hold) or why not (nothing counted or
 * spent).  The table adopts rule's rate and burst for every entry.  A
 * key without an address always passes.  Any thread. */
enum source_verdict source_take(struct source_table *,
	    struct source_key *key, const struct source_rule *rule,
	    double now);
/* A reload's settings for a kept table: rule's rate and burst apply to
 * every bucket at once (without a rate, the buckets go); a change of
 * prefix drops every entry with nothing in progress (they were counted
 * under the old grouping).  Requests in progress stay counted. */
void	source_table_configure(struct source_table *,
	    const struct source_rule *rule, int prefix4, int prefix6);
/* Gives back what source_take counted for key.  Any thread. */
void	source_put(struct source_table *, const struct source_key *key);
/* A worker's record of what it holds counted in shared tables, so that
 * its counts go back when it dies.  source_ledger_new (supervisor,
 * before the fork; NULL if it cannot be mapped) and source_ledger_release
 * (supervisor, once the worker is reaped: gives back what the worker
 * held, counts a table again if the worker died holding its lock, and
 * unmaps it; returns the requests given back).  source_ledger_attach: the
 * worker, after the fork, takes lg as its own. */
struct source_ledger;
struct source_ledger *source_ledger_new(void);
void	source_ledger_attach(struct source_ledger *lg);
unsigned long source_ledger_release(struct source_ledger *lg);
/* Entries in use, slots, buckets forgotten at the cap (for tests). */
void	source_table_stats(struct source_table *, size_t *used_r,
	    size_t *cap_r, unsigned long *forgotten_r);

/* loader.c: handler resolution */
/* true for [A-Za-z0-9_-]+ */
bool	loader_name_is_valid(const char *);
/*
 * Resolves a listener's handler setting: a compiled-in name, a plugin
 * name in handler_dir, or an absolute path to a .so.  Returns the handler
 * and sets *dl_r to a reference on the loaded plugin (NULL for builtins),
 * which the caller releases with loader_close(); on failure NULL with err
 * set.  A file replaced on disk since it was loaded is loaded afresh; the
 * old code stays until its last reference goes.
 */
const struct ssd_handler *loader_open(const char *spec,
	    const char *handler_dir, void **dl_r, char *err, size_t errlen);
void	loader_close(void *dl);
/* Removes the private names a loading process pid left behind (it died
 * inside dlopen). */
void	loader_private_cleanup(pid_t pid);
/* true if spec names a builtin or an existing plugin file; else err */
bool	loader_exists(const char *spec, const char *handler_dir, char *err,
	    size_t errlen);
/* true if spec names a compiled-in handler */
bool	loader_is_builtin(const char *spec);
/* iterates the compiled-in handlers: NULL after the last */
const struct ssd_handler *loader_builtin(size_t i);
/* prints the -L listing to fp */
void	loader_list(const char *handler_dir, FILE *fp);

/* tls.c: the TLS settings of a listener and the contexts built from them */
enum tls_verify { TLS_VERIFY_NONE, TLS_VERIFY_OPTIONAL, TLS_VERIFY_REQUIRE };
struct tls_cert {
	const char		*c_name;	/* sni server_name; NULL: default */
	const char		*c_cert, *c_key;
	const config_setting_t	*c_group;	/* where it was given */
};
struct tls_ctx;
struct tls_settings {
	const config_setting_t	*t_setting;	/* the tls group */
	struct tls_cert		 t_main;
	struct tls_cert		*t_sni;
	size_t			 t_nsni;
	const char		*t_client_ca;	/* NULL: none */
	enum tls_verify		 t_verify;
	int			 t_min_version;	/* 12 or 13 */
	const char		*t_ciphers;	/* NULL: OpenSSL's default */
	const char		*t_ciphersuites;
	unsigned char		*t_alpn;	/* wire format; NULL: none */
	size_t			 t_alpn_len;
	bool			 t_tickets;
	struct tls_ctx		*t_ctx;		/* what tls_build made */
};
/* Makes fork(2) wait for calls into OpenSSL in progress on other threads
 * (a child must not inherit its locks held); call at start, before any
 * plugin is loaded.  Any number of times. */
void	tls_init(void);
/* Loads the certificates, keys and CAs of t and builds its contexts;
 * problems go to d as FILE:LINE of the setting concerned.  0 or -1. */
int	tls_build(struct tls_settings *, const char *listener_name,
	    struct diag *);
/* frees t's contexts and lists (not t) */
void	tls_settings_free(struct tls_settings *);
/* true if an sni server_name (exact, or "*.example": one label) matches
 * the name a client sent; case-insensitive */
bool	tls_sni_match(const char *pattern, const char *name);

/* config.c */

enum conc_model {
	CONC_SYNC,
	CONC_THREAD,
	CONC_FORK,
	CONC_EVENT,
};

struct listener {
	TAILQ_ENTRY(listener)	 l_entry;
	struct config		*l_config;
	const config_setting_t	*l_setting;	/* the listener's group */
	char			*l_name;
	int			 l_family;	/* AF_INET, AF_INET6, AF_UNIX */
	int			 l_type;	/* SOCK_STREAM, SOCK_DGRAM */
	char			*l_address;
	int			 l_port;
	int			 l_queue_size;
	bool			 l_reuse_address;
	bool			 l_reuse_port;
	bool			 l_v6only;
	double			 l_timeout;	/* seconds; 0 = never */
	enum conc_model		 l_model;
	long			 l_max_connections;	/* 0 = none */
	size_t			 l_max_packet_size;
	char			*l_handler_spec;
	const config_setting_t	*l_handler_setting;
	const config_setting_t	*l_options;	/* NULL if none */
	struct cidr		*l_allow;
	size_t			 l_nallow;
	struct cidr		*l_deny;
	size_t			 l_ndeny;
	mode_t			 l_unix_mode;
	long			 l_max_per_source;
	double			 l_rate_per_source;	/* 0 = none */
	double			 l_burst_per_source;
	int			 l_source_prefix_v4;	/* 0-32 */
	int			 l_source_prefix_v6;	/* 0-128 */
	struct cidr		*l_proxy_from;	/* trusted proxies */
	size_t			 l_nproxy_from;
	long			 l_workers;
	bool			 l_proxy_protocol;
	bool			 l_access_log;
	struct tls_settings	*l_tls;		/* NULL: plaintext */
	struct sockaddr_storage	 l_addr;	/* resolved */
	socklen_t		 l_addrlen;

	size_t			 l_index;	/* position in the file */
};
TAILQ_HEAD(listener_list, listener);

/* A loaded configuration: settings only, never changed after
 * config_load (runtime state lives in a generation, server.h). */
struct config {
	char			*cf_path;	/* as given */
	config_t		 cf_lc;		/* kept: options point into it */
	char			*cf_handler_dir;
	char			*cf_user;
	char			*cf_group;
	char			*cf_pid_file;
	int			 cf_log_level;
	enum log_target		 cf_log_target;
	double			 cf_shutdown_timeout;
	long			 cf_max_connections;
	int			 cf_worker_processes;	/* 0: none */
	const config_setting_t	*cf_worker_processes_setting;	/* or NULL */
	struct listener_list	 cf_listeners;
	size_t			 cf_nlisteners;
};

/*
 * Reads and validates path.  Every problem is added to d as FILE:LINE:
 * message.  Returns 0 and a config the caller frees with config_free(), or
 * -1 (and *cfg_r NULL).  Never exits, never binds.
 */
int	config_load(const char *path, struct config **cfg_r, struct diag *);
void	config_free(struct config *);

/* handler.c: handler instances (init/fini) and ssd_option_error */
struct hinst {
	const struct ssd_handler *i_handler;
	void			*i_dl;		/* plugin handle or NULL */
	void			*i_instance;
	bool			 i_inited;
};
/*
 * Resolves and initialises the handler of every listener of cf into
 * hi[0..cf_nlisteners), in the listeners' order (a plugin is first
 * probed in a child).  Problems go to d.  Returns 0 or -1; on -1
 * everything already initialised has been finalised again.  Any thread.
 */
int	handler_prepare(const struct config *, struct hinst *, struct diag *);
/* Checks the handler of every listener of cf (loaded, options given to
 * init, fini) in a child process per listener, so that no handler code
 * runs in the caller (the supervisor of worker processes).  0, or -1 with
 * the problems in d. */
int	handler_check(const struct config *, struct diag *);
/* calls fini for every initialised instance and releases plugins */
void	handler_release(const struct config *, struct hinst *);

/* priv.c: process-level start-up steps; failures come back in err */
/* Detaches (double fork, setsid, stdio to /dev/null).  Returns, in the
 * daemon, a descriptor to pass to priv_daemonize_done once started; the
 * original process exits 0 then, or 1 if the daemon dies first. */
int	priv_daemonize(char *err, size_t errlen);
/* Closes every descriptor from lowfd up (in a child, before it runs). */
void	priv_closefrom(int lowfd);
void	priv_daemonize_done(int fd);
int	priv_pidfile_write(const char *path, char *err, size_t errlen);
/* removes path if it still holds our pid */
void	priv_pidfile_remove(const char *path);
/* Switches to user/group (either may be NULL) when root; verifies that
 * root cannot be regained.  Warns when handlers would run as root. */
int	priv_drop(const char *user, const char *group, char *err,
	    size_t errlen);

#endif /* DAEMON_H */
