/* SPDX-License-Identifier: ISC */
/*
 * tls.c - TLS on stream listeners, with OpenSSL 3.
 *
 * Contexts: a listener's tls group becomes an SSL_CTX for its own
 * certificate and one per sni entry, all with the same settings, built
 * when the configuration is loaded (start, -t, each reload: certificates
 * renewed on disk are read again by a SIGHUP) and freed with it.  A
 * request holds its generation and so its configuration: the contexts
 * outlive every handshake made with them.  Only the handshake calls back
 * into them (SNI, ALPN); renegotiation is off.
 *
 * Connections: the socket stays non-blocking under every model.  Each
 * SSL call that would block waits through rq_wait for what OpenSSL wants
 * (readable or writable), bounded by the listener's timeout: under the
 * event model the coroutine parks, under the others poll(2) waits.  The
 * handshake as a whole, each read and each write as a whole are bounded
 * by the timeout, so that a client trickling a record a byte at a time
 * cannot hold a request longer.
 */
#include <sys/socket.h>

#include <pthread.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "server.h"

struct tls_sni {
	const char	*n_name;	/* "host.example" or "*.example" */
	SSL_CTX		*n_ctx;
};

struct tls_ctx {
	SSL_CTX			*x_main;
	struct tls_sni		*x_sni;
	size_t			 x_nsni;
	const struct tls_settings *x_set;
};

/* One connection's TLS state. */
struct tls_conn {
	SSL		*c_ssl;
	bool		 c_done;	/* handshake complete */
	bool		 c_broken;	/* fatal error: no close_notify */
	bool		 c_shut;	/* close_notify sent */
	bool		 c_rdeof;	/* the client's end was read */
	bool		 c_drained;	/* nothing buffered after a read */
	char		*c_s_dn, *c_i_dn;	/* cached for ssd_env */
	const char	*c_why;		/* a protocol error to log */
};

/*
 * fork(2) while another thread is inside OpenSSL would hand the child a
 * lock that nobody there will release (OpenSSL 3 has no fork handlers of
 * its own): a fork-model child that then does its handshake would hang.
 * So every call into OpenSSL is made inside the gate (tls_lock/unlock:
 * a count of callers, never held across a wait), and fork closes it and
 * waits for the count to drop to 0 (pthread_atfork, registered by
 * tls_init at start: before any plugin's handlers, whose prepare - the
 * python plugin's takes its GIL - must run first, as the prepare
 * handlers run in the reverse order of their registration).  Nothing
 * inside the gate takes another lock of the daemon (no logging there):
 * their prepare handlers run before this one, and a caller inside would
 * wait for a fork that waits for it.
 */
static struct {
	pthread_mutex_t	 mtx;
	pthread_cond_t	 cond;
	unsigned	 inside;	/* callers in OpenSSL */
	bool		 forking;	/* the gate is closed */
} tls_gate = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0,
    false };
static pthread_once_t	tls_once = PTHREAD_ONCE_INIT;

/* Closes the gate and keeps its mutex across the fork. */
static void
tls_atfork_prepare(void)
{
	pthread_mutex_lock(&tls_gate.mtx);
	tls_gate.forking = true;
	while (tls_gate.inside > 0)
		pthread_cond_wait(&tls_gate.cond, &tls_gate.mtx);
}

static void
tls_atfork_parent(void)
{
	tls_gate.forking = false;
	pthread_cond_broadcast(&tls_gate.cond);
	pthread_mutex_unlock(&tls_gate.mtx);
}

/* The child's only thread is the forking one: nobody else is inside. */
static void
tls_atfork_child(void)
{
	tls_gate.forking = false;
	tls_gate.inside = 0;
	pthread_mutex_unlock(&tls_gate.mtx);
}

static void
tls_init_once(void)
{
	pthread_atfork(tls_atfork_prepare, tls_atfork_parent,
	    tls_atfork_child);
}

void
tls_init(void)
{
	pthread_once(&tls_once, tls_init_once);
}

/* This thread called into OpenSSL (and may have state there to free). */
static _Thread_local bool tls_used;

static void
tls_lock(void)
{
	tls_used = true;
	tls_init();
	pthread_mutex_lock(&tls_gate.mtx);
	while (tls_gate.forking)
		pthread_cond_wait(&tls_gate.cond, &tls_gate.mtx);
	tls_gate.inside++;
	pthread_mutex_unlock(&tls_gate.mtx);
}

static void
tls_unlock(void)
{
	pthread_mutex_lock(&tls_gate.mtx);
	if (--tls_gate.inside == 0 && tls_gate.forking)
		pthread_cond_broadcast(&tls_gate.cond);
	pthread_mutex_unlock(&tls_gate.mtx);
}

/* The reason of the oldest error OpenSSL queued, or what. */
static const char *
tls_reason(const char *what)
{
	unsigned long	 e = ERR_peek_error();
	const char	*r;

	if (e == 0 || (r = ERR_reason_error_string(e)) == NULL)
		return what;
	return r;
}

static double
tls_now(void)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (double)now.tv_sec + now.tv_nsec / 1e9;
}

/* A file the daemon can open: else a diagnostic at the key. */
static bool
tls_readable(const config_setting_t *g, const char *key, const char *path,
    struct diag *d)
{
	int fd;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1) {
		diag_setting(d, config_setting_get_member(g, key), "%s %s: %s",
		    key, path, strerror(errno));
		return false;
	}
	close(fd);
	return true;
}

/* Refuses to prompt on the terminal for an encrypted key; notes that
 * one was asked for in *arg. */
static int
tls_no_passphrase(char *buf, int size, int rw, void *arg)
{
	(void)buf;
	(void)size;
	(void)rw;
	*(bool *)arg = true;
	return -1;
}

/* SSL_select_next_proto in the server's order of preference; a client
 * that offers ALPN but none of ours is refused. */
static int
tls_alpn_cb(SSL *ssl, const unsigned char **out, unsigned char *outlen,
    const unsigned char *in, unsigned int inlen, void *arg)
{
	const struct tls_settings *t = arg;

	(void)ssl;
	if (SSL_select_next_proto((unsigned char **)(uintptr_t)out, outlen,
	    t->t_alpn, (unsigned int)t->t_alpn_len, in, inlen) !=
	    OPENSSL_NPN_NEGOTIATED)
		return SSL_TLSEXT_ERR_ALERT_FATAL;
	return SSL_TLSEXT_ERR_OK;
}

bool
tls_sni_match(const char *pattern, const char *name)
{
	const char *dot;

	if (pattern[0] != '*')
		return strcasecmp(pattern, name) == 0;
	/* "*.example" matches exactly one label before ".example". */
	if ((dot = strchr(name, '.')) == NULL || dot == name)
		return false;
	return strcasecmp(pattern + 1, dot) == 0;
}

/* The client's server name picks a certificate: an exact entry first,
 * then a wildcard; none (or no SNI) keeps the listener's own. */
static int
tls_sni_cb(SSL *ssl, int *alert, void *arg)
{
	const struct tls_ctx	*x = arg;
	const char		*name;
	SSL_CTX			*pick = NULL;

	(void)alert;
	if ((name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name)) ==
	    NULL)
		return SSL_TLSEXT_ERR_OK;
	for (size_t i = 0; i < x->x_nsni && pick == NULL; i++)
		if (x->x_sni[i].n_name[0] != '*' &&
		    strcasecmp(x->x_sni[i].n_name, name) == 0)
			pick = x->x_sni[i].n_ctx;
	for (size_t i = 0; i < x->x_nsni && pick == NULL; i++)
		if (x->x_sni[i].n_name[0] == '*' &&
		    tls_sni_match(x->x_sni[i].n_name, name))
			pick = x->x_sni[i].n_ctx;
	if (pick != NULL && SSL_set_SSL_CTX(ssl, pick) == NULL)
		return SSL_TLSEXT_ERR_ALERT_FATAL;
	return SSL_TLSEXT_ERR_OK;
}

static int	tls_build_locked(struct tls_settings *, const char *, struct diag *);

/* A context with t's settings and the certificate and key of tc. */
static SSL_CTX *
tls_ctx_new(const struct tls_settings *t, const struct tls_cert *tc,
    const char *name, struct diag *d)
{
	const config_setting_t	*g = t->t_setting;
	SSL_CTX			*ctx;
	STACK_OF(X509_NAME)	*cas;
	size_t			 before = d->d_count;
	unsigned int		 sidlen;
	bool			 asked = false;

	if (!tls_readable(tc->c_group, "certificate", tc->c_cert, d) ||
	    !tls_readable(tc->c_group, "key", tc->c_key, d))
		return NULL;
	if (t->t_client_ca != NULL &&
	    !tls_readable(g, "client_ca", t->t_client_ca, d))
		return NULL;
	ERR_clear_error();
	if ((ctx = SSL_CTX_new(TLS_server_method())) == NULL) {
		diag_setting(d, g, "TLS: %s", tls_reason("cannot make a "
		    "context"));
		return NULL;
	}
	SSL_CTX_set_default_passwd_cb(ctx, tls_no_passphrase);
	SSL_CTX_set_default_passwd_cb_userdata(ctx, &asked);
	SSL_CTX_set_min_proto_version(ctx, t->t_min_version == 13 ?
	    TLS1_3_VERSION : TLS1_2_VERSION);
	SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION |
	    SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_NO_COMPRESSION);
	/* One read(2) takes what the socket has, not a record header
	 * and then its body: fewer system calls, and tls_read can tell
	 * when the socket is drained. */
	SSL_CTX_set_read_ahead(ctx, 1);
	SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS |
	    SSL_MODE_ENABLE_PARTIAL_WRITE |
	    SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	/* Resumption by tickets only (stateless: also across fork
	 * children); no server-side cache to grow. */
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_SERVER |
	    SSL_SESS_CACHE_NO_INTERNAL);
	if (!t->t_tickets) {
		SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
		SSL_CTX_set_num_tickets(ctx, 0);
		SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	}
	sidlen = (unsigned int)strlen(name);
	if (sidlen > SSL_MAX_SID_CTX_LENGTH)
		sidlen = SSL_MAX_SID_CTX_LENGTH;
	SSL_CTX_set_session_id_context(ctx, (const unsigned char *)name,
	    sidlen);

	ERR_clear_error();
	if (SSL_CTX_use_certificate_chain_file(ctx, tc->c_cert) != 1) {
		diag_setting(d, config_setting_get_member(tc->c_group,
		    "certificate"), "certificate %s: %s", tc->c_cert,
		    tls_reason("not a PEM certificate"));
		goto fail;
	}
	ERR_clear_error();
	if (SSL_CTX_use_PrivateKey_file(ctx, tc->c_key, SSL_FILETYPE_PEM) !=
	    1) {
		unsigned long e = ERR_peek_last_error();

		diag_setting(d, config_setting_get_member(tc->c_group, "key"),
		    "key %s: %s", tc->c_key,
		    ERR_GET_REASON(e) == X509_R_KEY_VALUES_MISMATCH ?
		    "does not match the certificate" :
		    asked ? "is encrypted (a passphrase is not supported: "
		    "decrypt it, and keep it readable by root only)" :
		    tls_reason("not a PEM private key"));
		goto fail;
	}
	ERR_clear_error();
	if (SSL_CTX_check_private_key(ctx) != 1) {
		diag_setting(d, config_setting_get_member(tc->c_group, "key"),
		    "key %s does not match the certificate %s", tc->c_key,
		    tc->c_cert);
		goto fail;
	}
	if (t->t_client_ca != NULL) {
		ERR_clear_error();
		if (SSL_CTX_load_verify_file(ctx, t->t_client_ca) != 1 ||
		    (cas = SSL_load_client_CA_file(t->t_client_ca)) == NULL) {
			diag_setting(d, config_setting_get_member(g,
			    "client_ca"), "client_ca %s: %s", t->t_client_ca,
			    tls_reason("no PEM certificate in it"));
			goto fail;
		}
		SSL_CTX_set_client_CA_list(ctx, cas);
	}
	SSL_CTX_set_verify(ctx, t->t_verify == TLS_VERIFY_NONE ?
	    SSL_VERIFY_NONE : t->t_verify == TLS_VERIFY_OPTIONAL ?
	    SSL_VERIFY_PEER : SSL_VERIFY_PEER |
	    SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
	ERR_clear_error();
	if (t->t_ciphers != NULL &&
	    SSL_CTX_set_cipher_list(ctx, t->t_ciphers) != 1)
		diag_setting(d, config_setting_get_member(g, "ciphers"),
		    "\"ciphers\": no cipher of \"%s\" is known to OpenSSL "
		    "(%s)", t->t_ciphers, tls_reason("no match"));
	ERR_clear_error();
	if (t->t_ciphersuites != NULL &&
	    SSL_CTX_set_ciphersuites(ctx, t->t_ciphersuites) != 1)
		diag_setting(d, config_setting_get_member(g, "ciphersuites"),
		    "\"ciphersuites\": \"%s\" is not a list of TLS 1.3 "
		    "suites known to OpenSSL (%s)", t->t_ciphersuites,
		    tls_reason("no match"));
	if (t->t_alpn != NULL)
		SSL_CTX_set_alpn_select_cb(ctx, tls_alpn_cb,
		    (void *)(uintptr_t)t);
	if (d->d_count != before)
		goto fail;
	SSL_CTX_set_default_passwd_cb_userdata(ctx, NULL);
	return ctx;
fail:
	SSL_CTX_set_default_passwd_cb_userdata(ctx, NULL);
	SSL_CTX_free(ctx);
	ERR_clear_error();
	return NULL;
}

int
tls_build(struct tls_settings *t, const char *name, struct diag *d)
{
	int rc;

	tls_lock();
	rc = tls_build_locked(t, name, d);
	tls_unlock();
	return rc;
}

static int
tls_build_locked(struct tls_settings *t, const char *name, struct diag *d)
{
	struct tls_ctx	*x = xcalloc(1, sizeof(*x));
	int		 rc = 0;

	x->x_set = t;
	t->t_ctx = x;
	if ((x->x_main = tls_ctx_new(t, &t->t_main, name, d)) == NULL)
		rc = -1;
	if (t->t_nsni > 0)
		x->x_sni = xcalloc(t->t_nsni, sizeof(*x->x_sni));
	for (size_t i = 0; i < t->t_nsni; i++) {
		struct tls_sni *n = &x->x_sni[x->x_nsni];

		n->n_name = t->t_sni[i].c_name;
		if ((n->n_ctx = tls_ctx_new(t, &t->t_sni[i], name, d)) == NULL)
			rc = -1;
		else
			x->x_nsni++;
	}
	if (x->x_main != NULL && x->x_nsni > 0) {
		SSL_CTX_set_tlsext_servername_callback(x->x_main, tls_sni_cb);
		SSL_CTX_set_tlsext_servername_arg(x->x_main, x);
	}
	return rc;
}

void
tls_settings_free(struct tls_settings *t)
{
	struct tls_ctx *x = t->t_ctx;

	if (x != NULL) {
		tls_lock();
		SSL_CTX_free(x->x_main);
		for (size_t i = 0; i < x->x_nsni; i++)
			SSL_CTX_free(x->x_sni[i].n_ctx);
		tls_unlock();
		free(x->x_sni);
		free(x);
		t->t_ctx = NULL;
	}
	free(t->t_sni);
	free(t->t_alpn);
}

/*
 * Waits for what the last SSL call wants (err: SSL_ERROR_WANT_READ or
 * _WRITE), until end (CLOCK_MONOTONIC; 0: no limit).  0, or -1 with
 * rq_wait's errno (ETIMEDOUT and rq_timedout set, ECONNABORTED).
 */
static int
tls_wait(struct ssd_request *rq, int err, double end)
{
	double	 saved = rq->rq_timeout, left;
	int	 rc;

	if (end > 0) {
		if ((left = end - tls_now()) <= 0) {
			rq->rq_timedout = true;
			errno = ETIMEDOUT;
			return -1;
		}
		rq->rq_timeout = left;
	}
	rc = rq->rq_wait(rq, rq->rq_fd, err == SSL_ERROR_WANT_WRITE ?
	    POLLOUT : POLLIN);
	rq->rq_timeout = saved;
	return rc;
}

static void
tls_conn_free(struct tls_conn *c)
{
	if (c == NULL)
		return;
	tls_lock();
	SSL_free(c->c_ssl);
	tls_unlock();
	free(c->c_s_dn);
	free(c->c_i_dn);
	free(c);
}

int
tls_accept(struct ssd_request *rq, char *why, size_t whylen)
{
	const struct tls_settings *t = rq->rq_listener->l_tls;
	struct tls_conn	*c;
	double		 end = 0;
	int		 rc, e;

	c = xcalloc(1, sizeof(*c));
	tls_lock();
	ERR_clear_error();
	if ((c->c_ssl = SSL_new(t->t_ctx->x_main)) == NULL ||
	    SSL_set_fd(c->c_ssl, rq->rq_fd) != 1) {
		snprintf(why, whylen, "TLS: %s", tls_reason("out of memory"));
		ERR_clear_error();
		tls_unlock();
		tls_conn_free(c);
		return -1;
	}
	tls_unlock();
	rq->rq_tls = c;
	if (rq->rq_timeout > 0)
		end = tls_now() + rq->rq_timeout;
	for (;;) {
		tls_lock();
		ERR_clear_error();
		if ((rc = SSL_accept(c->c_ssl)) == 1) {
			tls_unlock();
			break;
		}
		e = SSL_get_error(c->c_ssl, rc);
		if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
			tls_unlock();
			if (tls_wait(rq, e, end) == 0)
				continue;
			snprintf(why, whylen, "TLS handshake %s",
			    errno == ETIMEDOUT ? "timed out" :
			    errno == ECONNABORTED ? "cut by the stop" :
			    strerror(errno));
			rq->rq_timedout = false;	/* refused, not timed out */
			tls_lock();
		} else if (e == SSL_ERROR_SYSCALL)
			snprintf(why, whylen, "TLS handshake failed: %s",
			    errno == 0 ? "the client closed the connection" :
			    strerror(errno));
		else
			snprintf(why, whylen, "TLS handshake failed: %s",
			    tls_reason("protocol error"));
		c->c_broken = true;
		ERR_clear_error();
		tls_unlock();
		return -1;
	}
	c->c_done = true;
	return 0;
}

/* Turns a failed SSL call into errno; true if the caller should wait
 * for *want (SSL_ERROR_WANT_*), false on EOF (*eof) or error (-1). */
static bool
tls_failed(struct ssd_request *rq, struct tls_conn *c, int rc, int *want,
    bool *eof)
{
	int e = SSL_get_error(c->c_ssl, rc);

	*eof = false;
	switch (e) {
	case SSL_ERROR_WANT_READ:
	case SSL_ERROR_WANT_WRITE:
		*want = e;
		return true;
	case SSL_ERROR_ZERO_RETURN:	/* close_notify */
		*eof = true;
		break;
	case SSL_ERROR_SYSCALL:
		c->c_broken = true;
		if (errno == 0)
			errno = ECONNRESET;
		if (errno == ECONNRESET || errno == EPIPE)
			rq->rq_peer_gone = true;
		break;
	default:
		c->c_broken = true;
		/* A close without close_notify reads as the end: the handler
		 * cannot tell truncation from EOF on plaintext either. */
		if (ERR_GET_REASON(ERR_peek_error()) ==
		    SSL_R_UNEXPECTED_EOF_WHILE_READING) {
			/* Nothing can be written after it either: a write
			 * that fails now is the client gone, not an error. */
			rq->rq_peer_gone = true;
			*eof = true;
			break;
		}
		/* The client broke the protocol (a bad record, an alert):
		 * it went away, as after a reset; not the handler's failure,
		 * and not worth more than a debug line per connection. */
		/* logged once out of the gate (tls_read_try...) */
		c->c_why = tls_reason("protocol error");
		rq->rq_peer_gone = true;
		errno = EPROTO;
		break;
	}
	ERR_clear_error();
	return false;
}

static ssize_t
tls_read_try_locked(struct ssd_request *rq, void *buf, size_t len,
    short *want)
{
	struct tls_conn	*c = rq->rq_tls;
	size_t		 n;
	int		 rc, w;
	bool		 eof;

	/* EOF stays EOF, as read(2)'s: a ragged close broke the session,
	 * but the next read says 0 again, not EPIPE. */
	if (c->c_rdeof)
		return 0;
	if (c->c_broken) {
		errno = EPIPE;
		return -1;
	}
	ERR_clear_error();
	if ((rc = SSL_read_ex(c->c_ssl, buf, len, &n)) == 1) {
		request_count_in(rq, n);
		return (ssize_t)n;
	}
	if (tls_failed(rq, c, rc, &w, &eof)) {
		*want = w == SSL_ERROR_WANT_WRITE ? POLLOUT : POLLIN;
		errno = EAGAIN;
		return -1;
	}
	if (eof) {
		c->c_rdeof = true;
		return 0;
	}
	return -1;
}

static ssize_t
tls_write_try_locked(struct ssd_request *rq, const void *buf, size_t len,
    short *want)
{
	struct tls_conn	*c = rq->rq_tls;
	size_t		 n;
	int		 rc, w;
	bool		 eof;

	if (c->c_broken || c->c_shut) {
		errno = EPIPE;
		return -1;
	}
	ERR_clear_error();
	if ((rc = SSL_write_ex(c->c_ssl, buf, len, &n)) == 1) {
		request_count_out(rq, n);
		return (ssize_t)n;
	}
	if (tls_failed(rq, c, rc, &w, &eof)) {
		*want = w == SSL_ERROR_WANT_WRITE ? POLLOUT : POLLIN;
		errno = EAGAIN;
		return -1;
	}
	if (eof)
		errno = EPIPE;
	return -1;
}

/* What tls_failed found, said out of the gate. */
static void
tls_log_why(struct ssd_request *rq)
{
	struct tls_conn *c = rq->rq_tls;

	if (c != NULL && c->c_why != NULL) {
		ssd_log(rq, LOG_DEBUG, "TLS: %s", c->c_why);
		c->c_why = NULL;
	}
}

ssize_t
tls_read_try(struct ssd_request *rq, void *buf, size_t len, short *want)
{
	ssize_t	 n;
	int	 err;

	tls_lock();
	n = tls_read_try_locked(rq, buf, len, want);
	err = errno;
	tls_unlock();
	tls_log_why(rq);
	errno = err;
	return n;
}

ssize_t
tls_write_try(struct ssd_request *rq, const void *buf, size_t len,
    short *want)
{
	ssize_t	 n;
	int	 err;

	tls_lock();
	n = tls_write_try_locked(rq, buf, len, want);
	err = errno;
	tls_unlock();
	tls_log_why(rq);
	errno = err;
	return n;
}

ssize_t
tls_read(struct ssd_request *rq, void *buf, size_t len)
{
	double	 end = 0;
	ssize_t	 n;
	short	 want;

	/* The last read took all there was (OpenSSL reads ahead): the
	 * next would say EAGAIN, so wait first, as request_read_raw does
	 * on plaintext.  At worst readiness is reported at once. */
	if (rq->rq_tls->c_drained) {
		rq->rq_tls->c_drained = false;
		if (rq->rq_timeout > 0)
			end = tls_now() + rq->rq_timeout;
		if (tls_wait(rq, SSL_ERROR_WANT_READ, end) == -1)
			return -1;
	}
	for (;;) {
		if (atomic_load(&rq->rq_cut)) {
			errno = ECONNABORTED;
			return -1;
		}
		if ((n = tls_read_try(rq, buf, len, &want)) > 0) {
			tls_lock();
			rq->rq_tls->c_drained = !SSL_has_pending(
			    rq->rq_tls->c_ssl) && (size_t)n < len;
			tls_unlock();
			return n;
		}
		if (n == 0 || errno != EAGAIN)
			return n;
		/* One read as a whole waits no longer than the timeout. */
		if (rq->rq_timeout > 0 && end == 0)
			end = tls_now() + rq->rq_timeout;
		if (tls_wait(rq, want == POLLOUT ? SSL_ERROR_WANT_WRITE :
		    SSL_ERROR_WANT_READ, end) == -1)
			return -1;
	}
}

int
tls_write(struct ssd_request *rq, const void *buf, size_t len)
{
	const char	*p = buf;
	double		 end = 0;
	ssize_t		 n;
	short		 want;

	while (len > 0) {
		if (atomic_load(&rq->rq_cut)) {
			errno = ECONNABORTED;
			return -1;
		}
		if ((n = tls_write_try(rq, p, len, &want)) > 0) {
			p += n;
			len -= (size_t)n;
			continue;
		}
		if (n == -1 && errno != EAGAIN)
			return -1;
		/* The timeout bounds the whole write, as on plaintext. */
		if (rq->rq_timeout > 0 && end == 0)
			end = tls_now() + rq->rq_timeout;
		if (tls_wait(rq, want == POLLOUT ? SSL_ERROR_WANT_WRITE :
		    SSL_ERROR_WANT_READ, end) == -1)
			return -1;
	}
	return 0;
}

/* Longest wait for the close_notify to leave (the socket is full). */
#define TLS_SHUTDOWN_WAIT	1.0
/* Unread input discarded before the close, so that it sends no RST. */
#define TLS_DRAIN_MAX		(64 * 1024)

int
tls_close_notify(struct ssd_request *rq)
{
	struct tls_conn	*c = rq->rq_tls;
	double		 end;
	bool		 saved;
	int		 rc, e;

	if (c == NULL || !c->c_done || c->c_broken ||
	    atomic_load(&rq->rq_cut))
		return -1;
	if (c->c_shut)
		return 0;
	c->c_shut = true;
	end = tls_now() + TLS_SHUTDOWN_WAIT;
	saved = rq->rq_timedout;
	for (;;) {
		tls_lock();
		ERR_clear_error();
		if ((rc = SSL_shutdown(c->c_ssl)) >= 0) {
			ERR_clear_error();
			tls_unlock();
			break;
		}
		e = SSL_get_error(c->c_ssl, rc);
		ERR_clear_error();
		tls_unlock();
		if ((e != SSL_ERROR_WANT_WRITE && e != SSL_ERROR_WANT_READ) ||
		    tls_wait(rq, e, end) == -1)
			break;
	}
	rq->rq_timedout = saved;
	return rc >= 0 ? 0 : -1;
}

void
tls_shutdown(struct ssd_request *rq)
{
	char	 junk[4096];
	size_t	 drained = 0;
	ssize_t	 n;

	if (tls_close_notify(rq) == -1)
		return;
	/* The client's end was read: nothing unread is left to turn the
	 * close into a reset. */
	if (rq->rq_tls->c_rdeof)
		return;
	/* Our side is done; what the client still sends (its own
	 * close_notify) is read away, so that the close sends no RST
	 * that could overtake our close_notify. */
	shutdown(rq->rq_fd, SHUT_WR);
	while (drained < TLS_DRAIN_MAX &&
	    (n = recv(rq->rq_fd, junk, sizeof(junk), MSG_DONTWAIT)) > 0)
		drained += (size_t)n;
}

void
tls_close(struct ssd_request *rq)
{
	tls_conn_free(rq->rq_tls);
	rq->rq_tls = NULL;
}

/* An X509_NAME in RFC 2253 form; NULL on failure. */
static char *
tls_dn(const X509_NAME *name)
{
	BIO	*b = BIO_new(BIO_s_mem());
	char	*p, *s = NULL;
	long	 n;

	if (b == NULL)
		return NULL;
	if (X509_NAME_print_ex(b, name, 0, XN_FLAG_RFC2253) >= 0 &&
	    (n = BIO_get_mem_data(b, &p)) >= 0) {
		s = xmalloc((size_t)n + 1);
		memcpy(s, p, (size_t)n);
		s[n] = '\0';
	}
	BIO_free(b);
	return s;
}

static const char *tls_env_locked(const struct ssd_request *, const char *);

const char *
tls_env(const struct ssd_request *rq, const char *name)
{
	const char *v;

	tls_lock();
	v = tls_env_locked(rq, name);
	tls_unlock();
	return v;
}

static const char *
tls_env_locked(const struct ssd_request *rq, const char *name)
{
	struct tls_conn	*c = rq->rq_tls;
	X509		*peer;

	if (c == NULL || !c->c_done)
		return NULL;
	if (strcmp(name, "HTTPS") == 0)
		return "on";
	if (strcmp(name, "SSL_PROTOCOL") == 0)
		return SSL_get_version(c->c_ssl);
	if (strcmp(name, "SSL_CIPHER") == 0)
		return SSL_get_cipher_name(c->c_ssl);
	if (strcmp(name, "SSL_TLS_SNI") == 0)
		return SSL_get_servername(c->c_ssl, TLSEXT_NAMETYPE_host_name);
	peer = SSL_get0_peer_certificate(c->c_ssl);
	if (strcmp(name, "SSL_CLIENT_VERIFY") == 0)
		return peer == NULL ? "NONE" :
		    SSL_get_verify_result(c->c_ssl) == X509_V_OK ? "SUCCESS" :
		    "FAILED";
	if (peer == NULL || SSL_get_verify_result(c->c_ssl) != X509_V_OK)
		return NULL;
	if (strcmp(name, "SSL_CLIENT_S_DN") == 0) {
		if (c->c_s_dn == NULL)
			c->c_s_dn = tls_dn(X509_get_subject_name(peer));
		return c->c_s_dn;
	}
	if (strcmp(name, "SSL_CLIENT_I_DN") == 0) {
		if (c->c_i_dn == NULL)
			c->c_i_dn = tls_dn(X509_get_issuer_name(peer));
		return c->c_i_dn;
	}
	return NULL;
}

void
tls_thread_stop(void)
{
	/* A thread that never used OpenSSL has nothing there to free (and
	 * freeing costs: under ASan, each free may take the quarantine's
	 * lock, which a fork child can inherit held - an ASan limit). */
	if (!tls_used)
		return;
	tls_used = false;
	tls_lock();
	OPENSSL_thread_stop();
	tls_unlock();
}
