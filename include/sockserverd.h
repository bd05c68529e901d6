/* SPDX-License-Identifier: ISC */
/*
 * sockserverd.h - the one public header for sockserverd handler authors.
 *
 * A handler is a struct ssd_handler: init/fini once per listener, and
 * setup/handle/finish per request, as in Python's socketserver.  All I/O goes
 * through ssd_read/ssd_readline/ssd_write/ssd_printf, which honour the
 * listener's timeout under every concurrency model.  See sockserverd-handler(3).
 */
#ifndef SOCKSERVERD_H
#define SOCKSERVERD_H

#include <stddef.h>
#include <sys/types.h>
#include <sys/socket.h>
#include <libconfig.h>

#ifdef __cplusplus
extern "C" {
#endif

#define SSD_ABI_VERSION 1

struct ssd_request;			/* opaque: one connection or one datagram */

struct ssd_handler {
	unsigned	 abi;		/* SSD_ABI_VERSION */
	const char	*name;
	const char	*description;
	/* once per listener, at start and on reload; options may be NULL */
	int	(*init)(void **instance, const config_setting_t *options);
	void	(*fini)(void *instance);
	/* per request: setup(); try handle() finally finish() */
	int	(*setup)(struct ssd_request *req);	/* nonzero: refuse */
	int	(*handle)(struct ssd_request *req);	/* <0: error, logged */
	void	(*finish)(struct ssd_request *req);	/* if setup succeeded */
};

#define SSD_EXPORT __attribute__((visibility("default")))

/*
 * One source form for compiled-in handlers and plugins:
 *   SSD_HANDLER(echo) = { .abi = SSD_ABI_VERSION, .name = "echo", ... };
 * Built with -DSSD_BUILTIN it defines ssd_builtin_echo for the daemon's
 * table; built without it, the plugin's exported sockserverd_handler.
 */
#ifdef SSD_BUILTIN
# define SSD_HANDLER(id)	const struct ssd_handler ssd_builtin_##id
#else
# define SSD_HANDLER(id)	SSD_EXPORT const struct ssd_handler sockserverd_handler
#endif

/* a plugin exports exactly this symbol */
extern const struct ssd_handler sockserverd_handler;

/* >0 bytes read, 0 at EOF, -1 on error or timeout (errno ETIMEDOUT) */
ssize_t	ssd_read(struct ssd_request *, void *buf, size_t len);
/* reads through '\n' (or size-1 bytes), NUL-terminates; returns as ssd_read */
ssize_t	ssd_readline(struct ssd_request *, char *buf, size_t size);
/* writes all of buf, or returns -1 */
int	ssd_write(struct ssd_request *, const void *buf, size_t len);
int	ssd_printf(struct ssd_request *, const char *fmt, ...)
	    __attribute__((format(printf, 2, 3)));
/* "127.0.0.1:5555", "[::1]:5555", "unix"; valid until finish returns */
const char *ssd_peer(const struct ssd_request *);
const struct sockaddr *ssd_peer_addr(const struct ssd_request *,
	    socklen_t *len);
const char *ssd_listener_name(const struct ssd_request *);
void	*ssd_instance(const struct ssd_request *);	/* what init stored */
void	*ssd_data(const struct ssd_request *);	/* per-request slot */
void	 ssd_set_data(struct ssd_request *, void *);
int	 ssd_fd(const struct ssd_request *);
/* level is LOG_ERR..LOG_DEBUG of <syslog.h> */
void	 ssd_log(const struct ssd_request *, int level, const char *fmt, ...)
	    __attribute__((format(printf, 3, 4)));
/* only from init: reported as FILE:LINE of the setting */
void	 ssd_option_error(const config_setting_t *, const char *fmt, ...)
	    __attribute__((format(printf, 2, 3)));

/* The value a program run by exec would get in its environment for
 * name: PROTO, TCPREMOTEIP, TCPREMOTEPORT, TCPLOCALIP, TCPLOCALPORT, and on
 * a TLS listener HTTPS, SSL_PROTOCOL, SSL_CIPHER, SSL_TLS_SNI,
 * SSL_CLIENT_VERIFY, SSL_CLIENT_S_DN, SSL_CLIENT_I_DN; NULL when unset.
 * Valid until the request ends. */
const char *ssd_env(const struct ssd_request *, const char *name);

/* Extensions beyond SPEC (ABI 1). */
/* SOCK_STREAM or SOCK_DGRAM: the listener's socket type */
int	 ssd_socktype(const struct ssd_request *);
/* Waits for child process pid to end, without holding up other requests
 * (under the event model too), and stores its wait status.  If the
 * connection stays silent in both directions for the listener's timeout
 * (TCP), the process gets SIGTERM, then SIGKILL.  0, or -1 with errno,
 * having logged why (the caller need not). */
int	 ssd_waitpid(struct ssd_request *, pid_t pid, int *status);
/* Relays the connection (plaintext, under TLS too) to to_program and
 * from_program back to it, with bounded buffers and half-closes carried
 * across (the client's EOF closes to_program; EOF on from_program ends
 * the client's side: close_notify under TLS), until child process pid
 * ends; then stores its wait status as ssd_waitpid does (silence for the
 * timeout: SIGTERM, then SIGKILL).  Closes both descriptors.  0, or -1
 * with errno, having logged why. */
int	 ssd_relay(struct ssd_request *, int to_program, int from_program,
	    pid_t pid, int *status);
/* Writes the daemon's counters to the request: a plain-text summary
 * naming every listener, or the Prometheus text exposition format.
 * Returns as ssd_write.  For the status handler. */
#define SSD_STATS_TEXT		0
#define SSD_STATS_PROMETHEUS	1
int	 ssd_write_stats(struct ssd_request *, int format);

#ifdef __cplusplus
}
#endif

#endif /* SOCKSERVERD_H */
