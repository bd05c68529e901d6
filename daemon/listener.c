/* SPDX-License-Identifier: ISC */
/*
 * listener.c - one listening socket: create, set options, bind (replacing
 * a stale unix socket file only after a connect() probe is refused),
 * listen; the socket's life (struct lsock, shared by the generations that
 * keep it: see gen.c); then the loop callback that accepts connections or
 * receives datagrams and hands each new request to the server.
 */
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "server.h"

#define LISTENER_ACCEPT_BATCH	64
#define LISTENER_BACKOFF	0.5	/* seconds, after EMFILE and such */

/* What is at a unix path: 0 nothing, 1 a stale socket, -1 (err set;
 * *live_r if a live socket holds it). */
static int
listener_unix_probe(const struct listener *l, bool *live_r, char *err,
    size_t errlen)
{
	const struct sockaddr_un	*sun = (const void *)&l->l_addr;
	struct stat			 st;
	int				 fd, rc;

	if (lstat(sun->sun_path, &st) == -1) {
		if (errno == ENOENT)
			return 0;
		snprintf(err, errlen, "%s: %s", sun->sun_path,
		    strerror(errno));
		return -1;
	}
	if (!S_ISSOCK(st.st_mode)) {
		snprintf(err, errlen, "%s exists and is not a socket; "
		    "left alone", sun->sun_path);
		return -1;
	}
	if ((fd = socket(AF_UNIX, l->l_type | SOCK_CLOEXEC, 0)) == -1) {
		snprintf(err, errlen, "socket: %s", strerror(errno));
		return -1;
	}
	rc = connect(fd, (const struct sockaddr *)&l->l_addr, l->l_addrlen);
	if (rc == -1 && errno == EPROTOTYPE) {
		/* A socket of the other type: probe with that type. */
		close(fd);
		fd = socket(AF_UNIX, (l->l_type == SOCK_STREAM ? SOCK_DGRAM :
		    SOCK_STREAM) | SOCK_CLOEXEC, 0);
		rc = fd == -1 ? -1 : connect(fd,
		    (const struct sockaddr *)&l->l_addr, l->l_addrlen);
	}
	if (rc == 0) {
		close(fd);
		*live_r = true;
		snprintf(err, errlen, "%s is in use by a live listener; "
		    "left alone", sun->sun_path);
		return -1;
	}
	rc = errno;
	if (fd != -1)
		close(fd);
	if (rc != ECONNREFUSED) {
		snprintf(err, errlen, "%s: cannot tell whether the socket is "
		    "in use (%s); left alone", sun->sun_path, strerror(rc));
		return -1;
	}
	return 1;
}

static int
listener_setopt(int fd, int level, int name, int value, const char *what,
    char *err, size_t errlen)
{
	if (setsockopt(fd, level, name, &value, sizeof(value)) == 0)
		return 0;
	snprintf(err, errlen, "setsockopt(%s): %s", what, strerror(errno));
	return -1;
}

/* Per-source settings for k's table: l's, applied at once. */
static void
lsock_source_configure(struct lsock *k, const struct listener *l)
{
	struct source_rule rule;

	rule.sr_max = l->l_max_per_source;
	rule.sr_rate = l->l_rate_per_source;
	rule.sr_burst = l->l_burst_per_source;
	source_table_configure(k->k_sources, &rule, l->l_source_prefix_v4,
	    l->l_source_prefix_v6);
}

void
lsock_share_sources(struct lsock *k, const struct listener *l)
{
	struct source_table *t;

	if (source_table_is_shared(k->k_sources) ||
	    (l->l_max_per_source == 0 && l->l_rate_per_source <= 0))
		return;
	/* The supervisor never counts: the table it replaces is empty, and
	 * the workers running with it had no per-source rule. */
	if ((t = source_table_new_shared(0)) == NULL) {
		log_about(LOG_WARNING, l->l_name, NULL, "cannot map the "
		    "per-source table (%s): max_per_source and "
		    "rate_per_source count per worker", strerror(errno));
		return;
	}
	source_table_free(k->k_sources);
	k->k_sources = t;
	lsock_source_configure(k, l);
}

/* A socket object around fd, for l's address. */
static struct lsock *
lsock_new(const struct listener *l, int fd)
{
	struct lsock *k = xcalloc(1, sizeof(*k));

	atomic_init(&k->k_refs, 1);
	k->k_fd = fd;
	k->k_family = l->l_family;
	k->k_type = l->l_type;
	memcpy(&k->k_addr, &l->l_addr, l->l_addrlen);
	k->k_addrlen = l->l_addrlen;
	k->k_v6only = l->l_v6only;
	k->k_reuse_port = l->l_reuse_port;
	k->k_queue_size = l->l_queue_size;
	k->k_unix_mode = l->l_unix_mode;
	atomic_init(&k->k_active, 0);
	k->k_sources = source_table_new(0);
	lsock_source_configure(k, l);
	return k;
}

/* Whether inherited socket fd is bound to l's address. */
static bool
listener_inherited_matches(const struct listener *l, int fd)
{
	struct sockaddr_storage	 ss;
	socklen_t		 len = sizeof(ss);
	const struct sockaddr_in *a4 = (const void *)&ss, *b4 =
	    (const void *)&l->l_addr;
	const struct sockaddr_in6 *a6 = (const void *)&ss, *b6 =
	    (const void *)&l->l_addr;

	int			 type = 0;
	socklen_t		 tlen = sizeof(type);

	if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &tlen) == -1 ||
	    type != l->l_type ||
	    getsockname(fd, (struct sockaddr *)&ss, &len) == -1 ||
	    ss.ss_family != l->l_family)
		return false;
	switch (l->l_family) {
	case AF_INET:
		return (l->l_port == 0 || a4->sin_port == b4->sin_port) &&
		    a4->sin_addr.s_addr == b4->sin_addr.s_addr;
	case AF_INET6:
		return (l->l_port == 0 || a6->sin6_port == b6->sin6_port) &&
		    memcmp(&a6->sin6_addr, &b6->sin6_addr, 16) == 0;
	default:
		return len == l->l_addrlen &&
		    memcmp(&ss, &l->l_addr, len) == 0;
	}
}

static bool
listener_name_taken(const struct config *cf, const char *name)
{
	const struct listener *l;

	TAILQ_FOREACH(l, &cf->cf_listeners, l_entry)
		if (strcmp(l->l_name, name) == 0)
			return true;
	return false;
}

/*
 * Socket activation: takes the inherited socket named like l, or else
 * bound to l's address.  1 if *k_r now has it, 0 if none is l's, -1
 * (err) if the one named for l does not fit it.
 */
static int
listener_inherit(const struct listener *l, struct lsock **k_r, char *err,
    size_t errlen)
{
	struct sd_fd		*fds = server.s_inherited, *f = NULL;
	struct lsock		*k;
	struct sockaddr_storage	 ss;
	socklen_t		 len = sizeof(ss);
	int			 type = 0, family = 0, fl;
	socklen_t		 olen = sizeof(int);

	for (size_t i = 0; i < server.s_ninherited && f == NULL; i++)
		if (!fds[i].used && strcmp(fds[i].name, l->l_name) == 0)
			f = &fds[i];
	/* By address only a socket that is not named for another listener. */
	for (size_t i = 0; i < server.s_ninherited && f == NULL; i++)
		if (!fds[i].used && !listener_name_taken(l->l_config,
		    fds[i].name) && listener_inherited_matches(l, fds[i].fd))
			f = &fds[i];
	if (f == NULL)
		return 0;
	if (getsockopt(f->fd, SOL_SOCKET, SO_TYPE, &type, &olen) == -1 ||
	    getsockopt(f->fd, SOL_SOCKET, SO_DOMAIN, &family, &olen) == -1 ||
	    type != l->l_type || family != l->l_family) {
		snprintf(err, errlen, "the inherited socket %d (\"%s\") is not "
		    "%s %s socket", f->fd, f->name, l->l_family == AF_UNIX ?
		    "a unix" : l->l_family == AF_INET ? "an inet" : "an inet6",
		    l->l_type == SOCK_STREAM ? "stream" : "dgram");
		f->used = true;		/* reported: not "matches nothing" */
		return -1;
	}
	f->used = true;
	if ((fl = fcntl(f->fd, F_GETFL)) != -1)
		fcntl(f->fd, F_SETFL, fl | O_NONBLOCK);
	k = lsock_new(l, f->fd);
	if (getsockname(f->fd, (struct sockaddr *)&ss, &len) == 0)
		addr_format_local((struct sockaddr *)&ss, len, k->k_local,
		    sizeof(k->k_local));
	snprintf(k->k_inherited, sizeof(k->k_inherited), "%s", f->name);
	*k_r = k;
	return 1;
}

void
listener_inherited_release(void)
{
	for (size_t i = 0; i < server.s_ninherited; i++) {
		if (!server.s_inherited[i].used) {
			log_warningx("inherited socket %d (\"%s\") matches no "
			    "listener: closed", server.s_inherited[i].fd,
			    server.s_inherited[i].name);
			close(server.s_inherited[i].fd);
		}
		free(server.s_inherited[i].name);
	}
	free(server.s_inherited);
	server.s_inherited = NULL;
	server.s_ninherited = 0;
}

/* The unix path of k, or NULL (abstract or inet). */
static const char *
lsock_path(const struct lsock *k)
{
	const struct sockaddr_un *sun = (const void *)&k->k_addr;

	if (k->k_family != AF_UNIX || sun->sun_path[0] == '\0')
		return NULL;
	return sun->sun_path;
}

/* A new socket of k's kind bound to k's address, listening; -1 (err). */
static int
lsock_socket(const struct lsock *k, bool reuse_address, char *err,
    size_t errlen)
{
	int fd;

	fd = socket(k->k_family, k->k_type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd == -1) {
		snprintf(err, errlen, "socket: %s", strerror(errno));
		return -1;
	}
	if (k->k_family != AF_UNIX) {
		if (listener_setopt(fd, SOL_SOCKET, SO_REUSEADDR,
		    reuse_address, "SO_REUSEADDR", err, errlen) ||
		    (k->k_reuse_port && listener_setopt(fd, SOL_SOCKET,
		    SO_REUSEPORT, 1, "SO_REUSEPORT", err, errlen)))
			goto fail;
	}
	if (k->k_family == AF_INET6 && listener_setopt(fd, IPPROTO_IPV6,
	    IPV6_V6ONLY, k->k_v6only, "IPV6_V6ONLY", err, errlen))
		goto fail;
	if (bind(fd, (const struct sockaddr *)&k->k_addr,
	    k->k_addrlen) == -1) {
		int e = errno;

		char a[sizeof(k->k_local)];

		addr_format_local((const struct sockaddr *)&k->k_addr,
		    k->k_addrlen, a, sizeof(a));
		snprintf(err, errlen, "cannot bind %s: %s", a, strerror(e));
		errno = e;
		goto fail;
	}
	if (k->k_type == SOCK_STREAM && listen(fd, k->k_queue_size) == -1) {
		snprintf(err, errlen, "listen: %s", strerror(errno));
		if (lsock_path(k) != NULL)
			unlink(lsock_path(k));
		goto fail;
	}
	return fd;
fail:
	{
		int e = errno;

		close(fd);
		errno = e;
	}
	return -1;
}

struct lsock *
lsock_open(const struct listener *l, bool *in_use_r, char *err,
    size_t errlen)
{
	struct lsock		*k = NULL;
	struct sockaddr_storage	 bound;
	socklen_t		 blen = sizeof(bound);
	struct stat		 st;
	const char		*path;
	int			 fd = -1;

	*in_use_r = false;
	switch (listener_inherit(l, &k, err, errlen)) {
	case 1:
		return k;
	case -1:
		return NULL;
	}
	k = lsock_new(l, -1);
	if ((path = lsock_path(k)) != NULL) {
		switch (listener_unix_probe(l, in_use_r, err, errlen)) {
		case -1:
			goto fail;
		case 1:
			if (unlink(path) == -1 && errno != ENOENT) {
				snprintf(err, errlen, "cannot remove stale "
				    "socket %s: %s", path, strerror(errno));
				goto fail;
			}
			log_about(LOG_INFO, l->l_name, NULL,
			    "removed stale socket %s", path);
			break;
		}
	}
	if ((fd = lsock_socket(k, l->l_reuse_address, err, errlen)) == -1) {
		*in_use_r = errno == EADDRINUSE;
		goto fail;
	}
	if (path != NULL && chmod(path, l->l_unix_mode) == -1) {
		snprintf(err, errlen, "chmod %s: %s", path, strerror(errno));
		unlink(path);
		goto fail;
	}
	k->k_fd = fd;
	if (path != NULL && stat(path, &st) == 0) {
		k->k_unlink = true;
		k->k_dev = st.st_dev;
		k->k_ino = st.st_ino;
	}
	if (l->l_family == AF_UNIX ||
	    getsockname(fd, (struct sockaddr *)&bound, &blen) == -1)
		addr_format_local((const struct sockaddr *)&l->l_addr, l->l_addrlen,
		    k->k_local, sizeof(k->k_local));
	else
		addr_format_local((struct sockaddr *)&bound, blen, k->k_local,
		    sizeof(k->k_local));
	return k;
fail:
	if (fd != -1)
		close(fd);
	source_table_free(k->k_sources);
	free(k);
	return NULL;
}

void
lsock_ref(struct lsock *k)
{
	SSD_ASSERT(atomic_fetch_add(&k->k_refs, 1) > 0);
}

/* A socket that holds no address and can send nothing to k's clients
 * (another family), to take k's descriptor number. */
static int
lsock_placeholder(const struct lsock *k)
{
	return socket(k->k_family == AF_UNIX ? AF_INET : AF_UNIX,
	    k->k_type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
}

/* Puts a placeholder under k's descriptor number: k's socket is let go
 * of (by us: a copy elsewhere stays), the number stays ours.  -1 (err). */
static int
lsock_swap_placeholder(struct lsock *k, char *err, size_t errlen)
{
	int fd;

	if ((fd = lsock_placeholder(k)) == -1 ||
	    dup3(fd, k->k_fd, O_CLOEXEC) == -1) {
		snprintf(err, errlen, "cannot release %s: %s", k->k_local,
		    strerror(errno));
		if (fd != -1)
			close(fd);
		return -1;
	}
	close(fd);
	return 0;
}

/* Removes the unix socket file if it is still the one we created. */
static void
lsock_unlink(struct lsock *k)
{
	const char	*path = lsock_path(k);
	struct stat	 st;

	if (k->k_unlink && path != NULL && stat(path, &st) == 0 &&
	    st.st_dev == k->k_dev && st.st_ino == k->k_ino &&
	    unlink(path) == -1)
		log_warning("cannot remove %s", path);
	k->k_unlink = false;
}

void
lsock_shut(struct lsock *k)
{
	char err[256];

	if (k->k_shut)
		return;
	k->k_shut = true;
	lsock_unlink(k);
	/* Not shutdown(2): that would also stop the copy systemd keeps
	 * for socket activation. */
	if (k->k_type == SOCK_STREAM && k->k_fd != -1 &&
	    lsock_swap_placeholder(k, err, sizeof(err)) == -1)
		log_warningx("%s", err);
}

void
lsock_unref(struct lsock *k)
{
	unsigned was = atomic_fetch_sub(&k->k_refs, 1);

	SSD_ASSERT(was > 0);
	if (was > 1)
		return;
	lsock_unlink(k);
	if (k->k_fd != -1)
		close(k->k_fd);
	worker_lsock_gone(k);
	source_table_free(k->k_sources);
	free(k);
}

bool
lsock_fits(const struct lsock *k, const struct listener *l)
{
	return !k->k_dead && k->k_family == l->l_family && k->k_type == l->l_type &&
	    k->k_addrlen == l->l_addrlen &&
	    memcmp(&k->k_addr, &l->l_addr, k->k_addrlen) == 0;
}

static int
lsock_port(const struct sockaddr_storage *ss)
{
	if (ss->ss_family == AF_INET)
		return ntohs(((const struct sockaddr_in *)(const void *)ss)->
		    sin_port);
	if (ss->ss_family == AF_INET6)
		return ntohs(((const struct sockaddr_in6 *)(const void *)ss)->
		    sin6_port);
	return 0;
}

bool
lsock_conflicts(const struct lsock *k, const struct listener *l)
{
	const struct sockaddr_un *a = (const void *)&k->k_addr,
	    *b = (const void *)&l->l_addr;

	if (k->k_family == AF_UNIX || l->l_family == AF_UNIX)
		return k->k_family == l->l_family &&
		    k->k_addrlen == l->l_addrlen &&
		    memcmp(a->sun_path, b->sun_path, k->k_addrlen -
		    offsetof(struct sockaddr_un, sun_path)) == 0;
	return k->k_type == l->l_type && l->l_port != 0 &&
	    lsock_port(&k->k_addr) == l->l_port;
}

int
lsock_release_address(struct lsock *k, char *err, size_t errlen)
{
	/* A placeholder takes the number over: the address is free, and
	 * whoever still holds the number holds a socket that neither
	 * accepts nor answers from another address. */
	if (lsock_swap_placeholder(k, err, errlen) == -1)
		return -1;
	lsock_unlink(k);
	return 0;
}

int
lsock_restore_address(struct lsock *k, char *err, size_t errlen)
{
	const char	*path = lsock_path(k);
	struct stat	 st;
	int		 fd;

	if ((fd = lsock_socket(k, true, err, errlen)) == -1)
		return -1;
	if (path != NULL) {
		chmod(path, k->k_unix_mode);
		if (stat(path, &st) == 0) {
			k->k_unlink = true;
			k->k_dev = st.st_dev;
			k->k_ino = st.st_ino;
		}
	}
	if (dup3(fd, k->k_fd, O_CLOEXEC) == -1) {
		snprintf(err, errlen, "dup3: %s", strerror(errno));
		close(fd);
		return -1;
	}
	close(fd);
	return 0;
}

void
lsock_adjust(struct lsock *k, const struct listener *l)
{
	const char *path = lsock_path(k);

	if (k->k_type == SOCK_STREAM && l->l_queue_size != k->k_queue_size &&
	    listen(k->k_fd, l->l_queue_size) == -1)
		log_about(LOG_WARNING, l->l_name, NULL, "listen(%d): %s",
		    l->l_queue_size, strerror(errno));
	k->k_queue_size = l->l_queue_size;
	if (k->k_unlink && path != NULL && l->l_unix_mode != k->k_unix_mode &&
	    chmod(path, l->l_unix_mode) == -1)
		log_about(LOG_WARNING, l->l_name, NULL, "chmod %s: %s", path,
		    strerror(errno));
	k->k_unix_mode = l->l_unix_mode;
	if (k->k_family != AF_UNIX && l->l_reuse_port != k->k_reuse_port) {
		int on = l->l_reuse_port;

		setsockopt(k->k_fd, SOL_SOCKET, SO_REUSEPORT, &on, sizeof(on));
	}
	k->k_reuse_port = l->l_reuse_port;
	lsock_source_configure(k, l);
}

/* Counts and reports a refusal (as an access-log entry with access_log);
 * at accept, no time has passed and no byte was read. */
static void
listener_refusal(const struct listener *l, struct lstats *stats,
    _Atomic unsigned long *counter, const char *peer, const char *why)
{
	struct access_rec a = { l->l_name, peer, 0, 0, 0, NULL };

	stats_refusal(stats, counter, peer, why, l->l_access_log ? &a : NULL);
}

/* A client turned away before it became a request. */
static void
listener_refused(struct lwatch *w, const struct sockaddr *sa, socklen_t len,
    _Atomic unsigned long *counter, const char *why)
{
	char peer[ADDR_STRLEN];

	addr_format(sa, len, peer, sizeof(peer));
	listener_refusal(w->w_run->r_listener, w->w_run->r_stats, counter,
	    peer, why);
}

/* Refused by allow/deny. */
static bool
listener_acl_refuses(struct lwatch *w, const struct sockaddr *sa,
    socklen_t len)
{
	const struct listener *l = w->w_run->r_listener;

	/* Behind a proxy the socket's peer is the proxy: the client comes
	 * with the PROXY header, and is checked then. */
	if (l->l_proxy_protocol || !acl_refuses(l, sa))
		return false;
	listener_refused(w, sa, len, &w->w_run->r_stats->s_refused_acl,
	    "refused by allow/deny");
	return true;
}

bool
listener_source_admit(const struct listener *l, struct lsock *k,
    struct lstats *stats, const struct sockaddr *sa, socklen_t len,
    struct source_key *key_r)
{
	struct source_rule	 rule;
	_Atomic unsigned long	*counter;
	const char		*why;
	char			 peer[ADDR_STRLEN];

	memset(key_r, 0, sizeof(*key_r));
	if (l->l_max_per_source == 0 && l->l_rate_per_source <= 0)
		return true;
	rule.sr_max = l->l_max_per_source;
	rule.sr_rate = l->l_rate_per_source;
	rule.sr_burst = l->l_burst_per_source;
	if (!source_key(sa, l->l_source_prefix_v4, l->l_source_prefix_v6,
	    key_r))
		return true;
	switch (source_take(k->k_sources, key_r, &rule,
	    source_now())) {
	case SOURCE_OK:
		return true;
	case SOURCE_MAX:
		counter = &stats->s_refused_per_source;
		why = "refused: max_per_source reached";
		break;
	case SOURCE_RATE:
		counter = &stats->s_refused_rate;
		why = "refused: rate_per_source exceeded";
		break;
	default:
		/* Counted under the rule that needs the table. */
		counter = l->l_rate_per_source > 0 ? &stats->s_refused_rate :
		    &stats->s_refused_per_source;
		why = "refused: per-source table full of sources with "
		    "requests in progress";
		break;
	}
	memset(key_r, 0, sizeof(*key_r));
	addr_format(sa, len, peer, sizeof(peer));
	listener_refusal(l, stats, counter, peer, why);
	return false;
}

/* proxy_from: the connection comes from a trusted proxy, or is refused
 * before a byte of it is read. */
static bool
listener_proxy_refuses(struct lwatch *w, const struct sockaddr *sa,
    socklen_t len)
{
	const struct listener *l = w->w_run->r_listener;

	if (l->l_nproxy_from == 0 ||
	    acl_match(l->l_proxy_from, l->l_nproxy_from, sa))
		return false;
	listener_refused(w, sa, len, &w->w_run->r_stats->s_refused_proxy,
	    "refused: not a trusted proxy (proxy_from)");
	return true;
}

/* Per-source rules at accept; behind a PROXY header they judge the
 * client it names, later (request.c). */
static bool
listener_source_take(struct lwatch *w, const struct sockaddr *sa,
    socklen_t len, struct source_key *key_r)
{
	memset(key_r, 0, sizeof(*key_r));
	if (w->w_run->r_listener->l_proxy_protocol)
		return true;
	return listener_source_admit(w->w_run->r_listener, w->w_run->r_sock,
	    w->w_run->r_stats, sa, len, key_r);
}

static void
listener_begin(struct lwatch *w, struct ssd_request *rq,
    const struct source_key *key)
{
	rq->rq_source_key = *key;
	server_request_begin(rq, w);
}

void
listener_pause(struct lwatch *w, int err)
{
	ev_io_stop(w->w_loop, &w->w_io);
	if (!w->w_backoff_logged)
		log_about(LOG_WARNING, w->w_run->r_listener->l_name, NULL,
		    "%s: pausing for %gs", strerror(err), LISTENER_BACKOFF);
	w->w_backoff_logged = true;
	ev_timer_set(&w->w_backoff, LISTENER_BACKOFF, 0.);
	ev_timer_start(w->w_loop, &w->w_backoff);
}

/* The model may take one more request and a slot is reserved for it;
 * not while paused (a model may pause w from its dispatch). */
static bool
listener_take(struct lwatch *w)
{
	struct lrun *r = w->w_run;

	if (atomic_load(&r->r_closing) || ev_is_active(&w->w_backoff) ||
	    !r->r_ops->can_accept(r))
		return false;
	if (server_reserve(r))
		return true;
	stats_add(&r->r_stats->s_capped, 1);
	return false;
}

static void
listener_accept(struct lwatch *w)
{
	struct lrun		*r = w->w_run;
	struct sockaddr_storage	 ss;
	struct source_key	 key;
	socklen_t		 len;
	int			 fd;

	for (int i = 0; i < LISTENER_ACCEPT_BATCH && listener_take(w); i++) {
		len = sizeof(ss);
		fd = accept4(w->w_io.fd, (struct sockaddr *)&ss, &len,
		    SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd == -1) {
			int err = errno;

			server_unreserve(r);
			/* accept(2) passes on errors of the connection it
			 * would have returned: skip that one. */
			if (err == EINTR || err == ECONNABORTED ||
			    err == EPROTO || err == ENETDOWN ||
			    err == ENOPROTOOPT || err == EHOSTDOWN ||
			    err == ENONET || err == EHOSTUNREACH ||
			    err == EOPNOTSUPP || err == ENETUNREACH)
				continue;
			if (err == EAGAIN || err == EWOULDBLOCK)
				break;
			/* A socket that stopped listening (shut). */
			if (err == EINVAL)
				break;
			if (err == EMFILE || err == ENFILE ||
			    err == ENOBUFS || err == ENOMEM) {
				listener_pause(w, err);
				return;
			}
			errno = err;
			log_about(LOG_WARNING, r->r_listener->l_name, NULL,
			    "accept: %s", strerror(errno));
			break;
		}
		w->w_backoff_logged = false;
		if (listener_proxy_refuses(w, (struct sockaddr *)&ss, len) ||
		    listener_acl_refuses(w, (struct sockaddr *)&ss, len) ||
		    !listener_source_take(w, (struct sockaddr *)&ss, len,
		    &key)) {
			server_unreserve(r);
			close(fd);
			continue;
		}
		listener_begin(w, request_new_stream(r, fd,
		    (struct sockaddr *)&ss, len), &key);
	}
}

/*
 * Datagrams come in batches: one recvmmsg takes what the socket holds, up
 * to d_max, and each becomes a request in turn.  A batch of more than one
 * is received only where every datagram of it is sure to find its slot:
 * under a model that serves one request at a time (sync: the whole batch
 * is served under the one slot taken for its first datagram, see
 * listener_dgram_next), or on the main loop of a listener with no
 * max_connections (global or its own), where only a stop could refuse a
 * slot, and a stop never comes in the middle of this callback.  Elsewhere
 * (event workers, caps) a slot is reserved before each datagram is
 * received, one at a time, so that a datagram that cannot be served now
 * waits in the socket, as it always did.
 */
#define LISTENER_DGRAM_BATCH	32
/* Bound on a batch's buffers: fewer datagrams for a large max_packet_size. */
#define LISTENER_DGRAM_BYTES	(256 * 1024)

/* The largest reply gathered for sendmmsg; a bigger one goes alone. */
#define LISTENER_REPLY_SLOT	2048

/* One datagram taken from a batch. */
struct listener_dgram {
	const void		*g_data;
	size_t			 g_len;
	const struct sockaddr	*g_sa;
	socklen_t		 g_salen;
	struct source_key	 g_key;
};

static void
listener_batch_init(struct dgram_batch *b, size_t max_packet_size,
    unsigned max, bool gather)
{
	memset(b, 0, sizeof(*b));
	b->d_slot = max_packet_size + 1;
	if (max > LISTENER_DGRAM_BYTES / b->d_slot)
		max = LISTENER_DGRAM_BYTES / b->d_slot;
	if (max < 1)
		max = 1;
	b->d_max = max;
	b->d_msgs = xcalloc(max, sizeof(*b->d_msgs));
	b->d_iov = xcalloc(max, sizeof(*b->d_iov));
	b->d_addrs = xcalloc(max, sizeof(*b->d_addrs));
	/* Only the pages datagrams are received into become resident. */
	b->d_bufs = xreallocarray(NULL, max, b->d_slot);
	if (gather && max > 1) {
		b->d_out = xcalloc(max, sizeof(*b->d_out));
		b->d_oiov = xcalloc(max, sizeof(*b->d_oiov));
		b->d_oaddrs = xcalloc(max, sizeof(*b->d_oaddrs));
		b->d_obufs = xreallocarray(NULL, max, LISTENER_REPLY_SLOT);
	}
}

static void
listener_batch_fini(struct dgram_batch *b)
{
	free(b->d_msgs);
	free(b->d_iov);
	free(b->d_addrs);
	free(b->d_bufs);
	free(b->d_out);
	free(b->d_oiov);
	free(b->d_oaddrs);
	free(b->d_obufs);
	memset(b, 0, sizeof(*b));
}

/* Receives what fd holds, up to b's size, without waiting: the number
 * received, or -1 (errno; EAGAIN: nothing there). */
static int
listener_batch_fill(struct dgram_batch *b, int fd)
{
	int n;

	for (unsigned i = 0; i < b->d_max; i++) {
		struct msghdr *h = &b->d_msgs[i].msg_hdr;

		b->d_iov[i].iov_base = b->d_bufs + i * b->d_slot;
		b->d_iov[i].iov_len = b->d_slot;
		memset(h, 0, sizeof(*h));
		h->msg_name = &b->d_addrs[i];
		h->msg_namelen = sizeof(b->d_addrs[i]);
		h->msg_iov = &b->d_iov[i];
		h->msg_iovlen = 1;
		/* An unbound unix client has no address: no family either. */
		memset(&b->d_addrs[i], 0, sizeof(sa_family_t));
	}
	b->d_n = b->d_next = 0;
	/* MSG_TRUNC: each msg_len is the datagram's real length. */
	while ((n = recvmmsg(fd, b->d_msgs, b->d_max,
	    MSG_DONTWAIT | MSG_TRUNC, NULL)) == -1 && errno == EINTR)
		continue;
	if (n > 0)
		b->d_n = (unsigned)n;
	return n;
}

/*
 * The next datagram of w's batch that passes the listener's checks
 * (max_packet_size, allow/deny, per-source rules: counted in *g if it
 * does); with refill, a batch used up is received anew from fd (w's
 * socket), once.  Refusals are counted and logged.  false: none (the
 * socket is empty, or failed: logged).
 */
static bool
listener_dgram_get(struct lwatch *w, int fd, bool refill,
    struct listener_dgram *g)
{
	struct lrun		*r = w->w_run;
	const struct listener	*l = r->r_listener;
	struct dgram_batch	*b = &w->w_batch;
	const struct sockaddr	*sa;
	socklen_t		 len;
	size_t			 n;
	unsigned		 i;

	for (;;) {
		if (b->d_next == b->d_n) {
			if (!refill)
				return false;
			refill = false;
			if (listener_batch_fill(b, fd) == -1) {
				if (errno != EAGAIN && errno != EWOULDBLOCK)
					log_about(LOG_WARNING, l->l_name, NULL,
					    "recvmmsg: %s", strerror(errno));
				return false;
			}
		}
		i = b->d_next++;
		n = b->d_msgs[i].msg_len;
		sa = (const struct sockaddr *)&b->d_addrs[i];
		len = b->d_msgs[i].msg_hdr.msg_namelen;
		if (n > l->l_max_packet_size) {
			char why[96];

			snprintf(why, sizeof(why), "datagram of %zu bytes "
			    "dropped: max_packet_size is %zu", n,
			    l->l_max_packet_size);
			listener_refused(w, sa, len,
			    &r->r_stats->s_refused_size, why);
			continue;
		}
		if (listener_acl_refuses(w, sa, len) ||
		    !listener_source_take(w, sa, len, &g->g_key))
			continue;
		g->g_data = b->d_iov[i].iov_base;
		g->g_len = n;
		g->g_sa = sa;
		g->g_salen = len;
		return true;
	}
}

/* Sends the replies gathered in w's batch, in order; one that cannot be
 * sent is logged and skipped, as sendto's would be. */
static void
listener_dgram_flush(struct lwatch *w)
{
	struct dgram_batch	*b = &w->w_batch;
	unsigned		 sent = 0;
	int			 n;
	char			 peer[ADDR_STRLEN];

	while (sent < b->d_nout) {
		n = sendmmsg(w->w_io.fd, b->d_out + sent, b->d_nout - sent,
		    MSG_DONTWAIT);
		if (n > 0) {
			sent += (unsigned)n;
			continue;
		}
		if (n == -1 && errno == EINTR)
			continue;
		if (log_is_enabled(LOG_INFO)) {
			struct msghdr *h = &b->d_out[sent].msg_hdr;

			addr_format(h->msg_name, h->msg_namelen, peer,
			    sizeof(peer));
			log_about(LOG_INFO, w->w_run->r_listener->l_name, peer,
			    "reply of %zu bytes not sent: %s",
			    h->msg_iov->iov_len, strerror(errno));
		}
		sent++;
	}
	b->d_nout = 0;
}

bool
listener_dgram_reply(struct ssd_request *rq)
{
	struct lwatch		*w = rq->rq_watch;
	struct dgram_batch	*b;
	struct msghdr		*h;
	unsigned		 i;

	/* d_out is set before any request runs (event listeners of the
	 * main loop only); d_gather is the main loop's own. */
	if (w == NULL || (b = &w->w_batch)->d_out == NULL ||
	    !pthread_equal(pthread_self(), server.s_thread) || !b->d_gather)
		return false;
	if (b->d_nout == b->d_max || rq->rq_outlen > LISTENER_REPLY_SLOT) {
		/* In order: what was gathered goes first. */
		listener_dgram_flush(w);
		if (rq->rq_outlen > LISTENER_REPLY_SLOT)
			return false;
	}
	i = b->d_nout++;
	if (rq->rq_outlen > 0)
		memcpy(b->d_obufs + (size_t)i * LISTENER_REPLY_SLOT,
		    rq->rq_out, rq->rq_outlen);
	memcpy(&b->d_oaddrs[i], &rq->rq_peer, rq->rq_peerlen);
	b->d_oiov[i].iov_base = b->d_obufs + (size_t)i * LISTENER_REPLY_SLOT;
	b->d_oiov[i].iov_len = rq->rq_outlen;
	h = &b->d_out[i].msg_hdr;
	memset(h, 0, sizeof(*h));
	h->msg_name = &b->d_oaddrs[i];
	h->msg_namelen = rq->rq_peerlen;
	h->msg_iov = &b->d_oiov[i];
	h->msg_iovlen = 1;
	return true;
}

static void
listener_recv(struct lwatch *w)
{
	struct lrun		*r = w->w_run;
	struct listener_dgram	 g;

	/* An event request runs here, until it ends or waits: its reply
	 * joins the others'.  Up to LISTENER_ACCEPT_BATCH received a
	 * wake-up, as accept; but what a batch holds is served now: the
	 * socket may stay quiet. */
	if (w->w_batch.d_out != NULL)
		w->w_batch.d_gather = true;
	for (int i = 0; (i < LISTENER_ACCEPT_BATCH ||
	    w->w_batch.d_next < w->w_batch.d_n) && listener_take(w); i++) {
		if (!listener_dgram_get(w, w->w_io.fd,
		    i < LISTENER_ACCEPT_BATCH, &g)) {
			server_unreserve(r);
			break;
		}
		listener_begin(w, request_new_dgram(r, g.g_data, g.g_len,
		    g.g_sa, g.g_salen), &g.g_key);
	}
	if (w->w_batch.d_out != NULL) {
		w->w_batch.d_gather = false;
		if (w->w_batch.d_nout > 0)
			listener_dgram_flush(w);
	}
}

bool
listener_dgram_next(struct ssd_request *rq)
{
	struct lrun		*r = rq->rq_run;
	struct lwatch		*w = rq->rq_watch;
	struct listener_dgram	 g;
	bool			 refill;
	double			 now;

	if (atomic_load(&rq->rq_cut))
		return false;
	/* Its share of max_per_source first: the next datagram may well
	 * come from the same client.  The rest of its accounting waits
	 * until another request takes its place. */
	source_put(r->r_sock->k_sources, &rq->rq_source_key);
	memset(&rq->rq_source_key, 0, sizeof(rq->rq_source_key));
	/* What was received is served; nothing more is taken from the
	 * socket once the listener closes or the daemon stops. */
	refill = !atomic_load(&r->r_closing) &&
	    !atomic_load(&server.s_stopping);
	/* Not w's watcher: the loop may set it anew meanwhile (same fd). */
	if (!listener_dgram_get(w, rq->rq_sock->k_fd, refill, &g))
		return false;
	now = ev_time();
	stats_request_end(r->r_stats, now - rq->rq_started);
	request_reuse_dgram(rq, g.g_data, g.g_len, g.g_sa, g.g_salen);
	rq->rq_source_key = g.g_key;
	rq->rq_started = now;
	stats_add(&r->r_stats->s_requests, 1);
	stats_add(&r->r_stats->s_in_progress, 1);
	ssd_log(rq, LOG_DEBUG, "start");
	return true;
}

static void
listener_io_cb(struct ev_loop *loop, ev_io *io, int revents)
{
	struct lwatch	*w = container_of(io, struct lwatch, w_io);

	(void)loop;
	(void)revents;
	if (w->w_run->r_listener->l_type == SOCK_STREAM)
		listener_accept(w);
	else
		listener_recv(w);
	if (!server_can_accept(w->w_run))
		ev_io_stop(w->w_loop, &w->w_io);
}

static void
listener_backoff_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	(void)loop;
	(void)revents;
	listener_watch_resume(container_of(t, struct lwatch, w_backoff));
}

void
listener_watch_init(struct lwatch *w, struct lrun *r, struct ev_loop *loop)
{
	memset(w, 0, sizeof(*w));
	w->w_run = r;
	w->w_loop = loop;
	ev_io_init(&w->w_io, listener_io_cb, r->r_sock->k_fd, EV_READ);
	ev_init(&w->w_backoff, listener_backoff_cb);
	if (r->r_listener->l_type == SOCK_DGRAM)
		listener_batch_init(&w->w_batch,
		    r->r_listener->l_max_packet_size,
		    r->r_ops->serial || (loop == server.s_loop &&
		    r->r_listener->l_max_connections == 0 &&
		    r->r_gen->g_cfg->cf_max_connections == 0) ?
		    LISTENER_DGRAM_BATCH : 1,
		    /* Its requests run on this loop, in listener_recv. */
		    r->r_ops == &conc_event_ops && loop == server.s_loop);
}

void
listener_watch_stop(struct lwatch *w)
{
	if (w->w_loop == NULL)
		return;
	ev_io_stop(w->w_loop, &w->w_io);
	ev_timer_stop(w->w_loop, &w->w_backoff);
}

void
listener_watch_fini(struct lwatch *w)
{
	listener_watch_stop(w);
	listener_batch_fini(&w->w_batch);
	w->w_loop = NULL;
}

void
listener_watch_resume(struct lwatch *w)
{
	if (w->w_loop == NULL || ev_is_active(&w->w_io) ||
	    ev_is_active(&w->w_backoff) || !server_can_accept(w->w_run))
		return;
	ev_io_start(w->w_loop, &w->w_io);
}

void
listener_start(struct lrun *r)
{
	if (r->r_ops->resume != NULL) {
		r->r_ops->resume(r);
		return;
	}
	listener_watch_init(&r->r_watch, r, server.s_loop);
	listener_watch_resume(&r->r_watch);
}

void
listener_resume(struct lrun *r)
{
	if (r->r_sock == NULL || atomic_load(&r->r_closing))
		return;
	if (r->r_ops->resume != NULL)
		r->r_ops->resume(r);
	else
		listener_watch_resume(&r->r_watch);
}

void
listener_stop(struct lrun *r)
{
	if (atomic_exchange(&r->r_closing, true))
		return;
	if (r->r_ops->close != NULL)
		r->r_ops->close(r);
	else
		listener_watch_stop(&r->r_watch);
	lsock_unref(r->r_sock);
}

void
listener_refresh(struct lrun *r)
{
	atomic_fetch_add(&r->r_epoch, 1);
	if (r->r_ops->close != NULL) {
		r->r_ops->close(r);
		return;
	}
	if (r->r_watch.w_loop == NULL)
		return;
	/* ev_io_set makes libev register the descriptor anew. */
	listener_watch_stop(&r->r_watch);
	ev_io_set(&r->r_watch.w_io, r->r_sock->k_fd, EV_READ);
	listener_watch_resume(&r->r_watch);
}
