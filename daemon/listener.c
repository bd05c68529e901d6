/* SPDX-License-Identifier: ISC */
/*
 * listener.c - one listening socket: create, set options, bind (replacing
 * a stale unix socket file only after a connect() probe is refused),
 * listen; then the loop callback that accepts connections or receives
 * datagrams and hands each new request to the server.
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

/* What is at a unix path: 0 nothing, 1 a stale socket, -1 (err set). */
static int
listener_unix_probe(const struct listener *l, char *err, size_t errlen)
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

/* The runtime state of l around socket fd, with l's model. */
static struct lrun *
listener_run_new(struct listener *l, int fd)
{
	struct lrun *r = xcalloc(1, sizeof(*r));

	l->l_stats = stats_get(l->l_name);
	r->r_listener = l;
	r->r_fd = fd;
	atomic_init(&r->r_active, 0);
	atomic_init(&r->r_closing, false);
	r->r_share = xcalloc(1, sizeof(*r->r_share));
	atomic_init(&r->r_share->s_active, 0);
	r->r_share->s_refs = 1;
	r->r_share->s_sources = source_table_new();
	r->r_share->s_owner = r;
	switch (l->l_model) {
	case CONC_SYNC:
		r->r_ops = &conc_sync_ops;
		break;
	case CONC_THREAD:
		r->r_ops = &conc_thread_ops;
		break;
	case CONC_FORK:
		r->r_ops = &conc_fork_ops;
		break;
	case CONC_EVENT:
		r->r_ops = l->l_workers > 1 ? &conc_event_workers_ops :
		    &conc_event_ops;
		break;
	}
	l->l_run = r;
	return r;
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
 * bound to l's address.  1 if l now has it, 0 if none is l's, -1 (logged)
 * if the one named for l does not fit it.
 */
static int
listener_inherit(struct listener *l)
{
	struct sd_fd		*fds = server.s_inherited, *f = NULL;
	struct lrun		*r;
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
		log_errorx("%s:%d: listener %s: the inherited socket %d "
		    "(\"%s\") is not %s %s socket", l->l_config->cf_path,
		    config_setting_source_line(l->l_setting), l->l_name,
		    f->fd, f->name, l->l_family == AF_UNIX ? "a unix" :
		    l->l_family == AF_INET ? "an inet" : "an inet6",
		    l->l_type == SOCK_STREAM ? "stream" : "dgram");
		f->used = true;		/* reported: not "matches nothing" */
		return -1;
	}
	f->used = true;
	if ((fl = fcntl(f->fd, F_GETFL)) != -1)
		fcntl(f->fd, F_SETFL, fl | O_NONBLOCK);
	r = listener_run_new(l, f->fd);
	if (getsockname(f->fd, (struct sockaddr *)&ss, &len) == 0)
		addr_format_local((struct sockaddr *)&ss, len, r->r_local,
		    sizeof(r->r_local));
	log_infox("listener=%s: listening on %s (%s, %s, handler %s, "
	    "inherited socket \"%s\")", l->l_name, r->r_local,
	    l->l_type == SOCK_STREAM ? "stream" : "dgram", r->r_ops->name,
	    l->l_handler->name, f->name);
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

int
listener_bind(struct listener *l)
{
	struct lrun		*r;
	struct sockaddr_un	*sun = (void *)&l->l_addr;
	struct sockaddr_storage	 bound;
	socklen_t		 blen = sizeof(bound);
	struct stat		 st;
	char			 err[512];
	bool			 is_path;
	int			 fd = -1;

	switch (listener_inherit(l)) {
	case 1:
		return 0;
	case -1:
		return -1;
	}
	err[0] = '\0';
	is_path = l->l_family == AF_UNIX && sun->sun_path[0] != '\0';
	if (is_path) {
		switch (listener_unix_probe(l, err, sizeof(err))) {
		case -1:
			goto fail;
		case 1:
			if (unlink(sun->sun_path) == -1 && errno != ENOENT) {
				snprintf(err, sizeof(err), "cannot remove "
				    "stale socket %s: %s", sun->sun_path,
				    strerror(errno));
				goto fail;
			}
			log_infox("listener=%s: removed stale socket %s",
			    l->l_name, sun->sun_path);
			break;
		}
	}

	fd = socket(l->l_family, l->l_type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd == -1) {
		snprintf(err, sizeof(err), "socket: %s", strerror(errno));
		goto fail;
	}
	if (l->l_family != AF_UNIX) {
		if (listener_setopt(fd, SOL_SOCKET, SO_REUSEADDR,
		    l->l_reuse_address, "SO_REUSEADDR", err, sizeof(err)) ||
		    (l->l_reuse_port && listener_setopt(fd, SOL_SOCKET,
		    SO_REUSEPORT, 1, "SO_REUSEPORT", err, sizeof(err))))
			goto fail;
	}
	if (l->l_family == AF_INET6 && listener_setopt(fd, IPPROTO_IPV6,
	    IPV6_V6ONLY, l->l_v6only, "IPV6_V6ONLY", err, sizeof(err)))
		goto fail;
	if (bind(fd, (struct sockaddr *)&l->l_addr, l->l_addrlen) == -1) {
		char a[sizeof(((struct lrun *)0)->r_local)];

		addr_format_local((struct sockaddr *)&l->l_addr, l->l_addrlen,
		    a, sizeof(a));
		snprintf(err, sizeof(err), "cannot bind %s: %s", a,
		    strerror(errno));
		goto fail;
	}
	if (is_path && chmod(sun->sun_path, l->l_unix_mode) == -1) {
		snprintf(err, sizeof(err), "chmod %s: %s", sun->sun_path,
		    strerror(errno));
		unlink(sun->sun_path);
		goto fail;
	}
	if (l->l_type == SOCK_STREAM && listen(fd, l->l_queue_size) == -1) {
		snprintf(err, sizeof(err), "listen: %s", strerror(errno));
		if (is_path)
			unlink(sun->sun_path);
		goto fail;
	}

	r = listener_run_new(l, fd);
	if (is_path && stat(sun->sun_path, &st) == 0) {
		r->r_unlink = true;
		r->r_dev = st.st_dev;
		r->r_ino = st.st_ino;
	}
	if (getsockname(fd, (struct sockaddr *)&bound, &blen) == -1 ||
	    l->l_family == AF_UNIX)
		addr_format_local((struct sockaddr *)&l->l_addr, l->l_addrlen,
		    r->r_local, sizeof(r->r_local));
	else
		addr_format_local((struct sockaddr *)&bound, blen, r->r_local,
		    sizeof(r->r_local));
	log_infox("listener=%s: listening on %s (%s, %s, handler %s)",
	    l->l_name, r->r_local, l->l_type == SOCK_STREAM ? "stream" :
	    "dgram", r->r_ops->name, l->l_handler->name);
	return 0;
fail:
	if (fd != -1)
		close(fd);
	log_errorx("%s:%d: listener %s: %s", l->l_config->cf_path,
	    config_setting_source_line(l->l_setting), l->l_name, err);
	return -1;
}

/* Stops accepting on every loop that watches l; keep: leave the socket. */
static void
listener_stop_accepting(struct listener *l, bool keep)
{
	struct lrun *r = l->l_run;

	atomic_store(&r->r_closing, true);
	if (r->r_ops->close != NULL)
		r->r_ops->close(l, keep);
	else
		listener_watch_stop(&r->r_watch);
}

void
listener_close(struct listener *l)
{
	struct lrun		*r = l->l_run;
	struct sockaddr_un	*sun = (void *)&l->l_addr;
	struct stat		 st;

	if (r == NULL || atomic_load(&r->r_closing))
		return;
	listener_stop_accepting(l, false);
	/* Remove the file only if it is still the one we created. */
	if (r->r_unlink && stat(sun->sun_path, &st) == 0 &&
	    st.st_dev == r->r_dev && st.st_ino == r->r_ino &&
	    unlink(sun->sun_path) == -1)
		log_warning("listener=%s: cannot remove %s", l->l_name,
		    sun->sun_path);
	r->r_unlink = false;
	/* A model with loops of its own closes the socket once they let go
	 * of it; datagram requests reply through it: keep it until idle. */
	if (r->r_ops->close == NULL && r->r_fd != -1 &&
	    (l->l_type == SOCK_STREAM ||
	    atomic_load(&r->r_share->s_active) == 0)) {
		close(r->r_fd);
		r->r_fd = -1;
	}
}

void
listener_detach(struct listener *l)
{
	struct lrun *r = l->l_run;

	if (r == NULL || atomic_load(&r->r_closing))
		return;
	listener_stop_accepting(l, true);
}

bool
listener_same_socket(const struct listener *l, const struct listener *nl)
{
	return l->l_family == nl->l_family && l->l_type == nl->l_type &&
	    l->l_addrlen == nl->l_addrlen &&
	    memcmp(&l->l_addr, &nl->l_addr, l->l_addrlen) == 0;
}

void
listener_adopt(struct listener *l, struct listener *from)
{
	struct lrun		*r, *fr = from->l_run;
	struct sockaddr_un	*sun = (void *)&l->l_addr;

	r = listener_run_new(l, fr->r_fd);
	/* The old listener's requests still count against the socket. */
	source_table_free(r->r_share->s_sources);
	free(r->r_share);
	r->r_share = fr->r_share;
	r->r_share->s_refs++;
	r->r_share->s_owner = r;
	/* The old listener's workers may still be letting go of the fd:
	 * it is closed by whoever owns it last, which is now l. */
	fr->r_fd = -1;
	r->r_unlink = fr->r_unlink;
	r->r_dev = fr->r_dev;
	r->r_ino = fr->r_ino;
	fr->r_unlink = false;
	memcpy(r->r_local, fr->r_local, sizeof(r->r_local));
	/* What can change on a bound socket is applied; the rest (v6only)
	 * was refused by the reload. */
	if (l->l_type == SOCK_STREAM && l->l_queue_size != from->l_queue_size &&
	    listen(r->r_fd, l->l_queue_size) == -1)
		log_warning("listener=%s: listen(%d)", l->l_name,
		    l->l_queue_size);
	if (r->r_unlink && l->l_unix_mode != from->l_unix_mode &&
	    chmod(sun->sun_path, l->l_unix_mode) == -1)
		log_warning("listener=%s: chmod %s", l->l_name, sun->sun_path);
	if (l->l_family != AF_UNIX && l->l_reuse_port != from->l_reuse_port) {
		int on = l->l_reuse_port;

		setsockopt(r->r_fd, SOL_SOCKET, SO_REUSEPORT, &on, sizeof(on));
	}
	log_infox("listener=%s: keeps its socket %s (%s, %s, handler %s)",
	    l->l_name, r->r_local, l->l_type == SOCK_STREAM ? "stream" :
	    "dgram", r->r_ops->name, l->l_handler->name);
}

void
listener_free_run(struct listener *l)
{
	struct lrun *r = l->l_run;

	if (r == NULL)
		return;
	listener_watch_fini(&r->r_watch);
	if (r->r_fd != -1)
		close(r->r_fd);
	if (r->r_share->s_owner == r)
		r->r_share->s_owner = NULL;
	if (--r->r_share->s_refs == 0) {
		source_table_free(r->r_share->s_sources);
		free(r->r_share);
	}
	free(r);
	l->l_run = NULL;
}

/* A client turned away: counted, and logged at most once a second, so
 * that a flood cannot fill the disk. */
static void
listener_refused(struct lwatch *w, const struct sockaddr *sa, socklen_t len,
    _Atomic unsigned long *counter, const char *why)
{
	char		 peer[ADDR_STRLEN];
	ev_tstamp	 now = ev_now(w->w_loop);

	stats_add(counter, 1);
	w->w_refused++;
	if (now - w->w_refused_logged < 1.0)
		return;
	addr_format(sa, len, peer, sizeof(peer));
	log_infox("listener=%s peer=%s: %s (%lu turned away since the last "
	    "report)", w->w_listener->l_name, peer, why, w->w_refused);
	w->w_refused = 0;
	w->w_refused_logged = now;
}

/* Refused by allow/deny. */
static bool
listener_acl_refuses(struct lwatch *w, const struct sockaddr *sa,
    socklen_t len)
{
	struct listener	*l = w->w_listener;

	/* Behind a proxy the socket's peer is the proxy: the client comes
	 * with the PROXY header, and is checked then. */
	if (l->l_proxy_protocol || !acl_refuses(l, sa))
		return false;
	listener_refused(w, sa, len, &l->l_stats->s_refused_acl,
	    "refused by allow/deny");
	return true;
}

/* max_per_source: one more request from this client, or refused. */
static bool
listener_source_take(struct lwatch *w, const struct sockaddr *sa,
    socklen_t len)
{
	struct listener *l = w->w_listener;

	if (l->l_max_per_source == 0 || l->l_proxy_protocol ||
	    source_take(l->l_run->r_share->s_sources, sa, l->l_max_per_source))
		return true;
	listener_refused(w, sa, len, &l->l_stats->s_refused_per_source,
	    "refused: max_per_source reached");
	return false;
}

static void
listener_begin(struct lwatch *w, struct ssd_request *rq)
{
	rq->rq_source_counted = w->w_listener->l_max_per_source > 0 &&
	    !w->w_listener->l_proxy_protocol;
	server_request_begin(rq, w);
}

void
listener_pause(struct lwatch *w, int err)
{
	ev_io_stop(w->w_loop, &w->w_io);
	if (!w->w_backoff_logged)
		log_warningx("listener=%s: %s: pausing for %gs",
		    w->w_listener->l_name, strerror(err), LISTENER_BACKOFF);
	w->w_backoff_logged = true;
	ev_timer_set(&w->w_backoff, LISTENER_BACKOFF, 0.);
	ev_timer_start(w->w_loop, &w->w_backoff);
}

/* The model may take one more request and a slot is reserved for it;
 * not while paused (a model may pause w from its dispatch). */
static bool
listener_take(struct lwatch *w)
{
	struct listener *l = w->w_listener;

	if (atomic_load(&l->l_run->r_closing) || ev_is_active(&w->w_backoff) ||
	    !l->l_run->r_ops->can_accept(l))
		return false;
	if (server_reserve(l))
		return true;
	stats_add(&l->l_stats->s_capped, 1);
	return false;
}

static void
listener_accept(struct lwatch *w)
{
	struct listener		*l = w->w_listener;
	struct sockaddr_storage	 ss;
	socklen_t		 len;
	int			 fd;

	for (int i = 0; i < LISTENER_ACCEPT_BATCH && listener_take(w); i++) {
		len = sizeof(ss);
		fd = accept4(w->w_io.fd, (struct sockaddr *)&ss, &len,
		    SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd == -1) {
			int err = errno;

			server_unreserve(l);
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
			if (err == EMFILE || err == ENFILE ||
			    err == ENOBUFS || err == ENOMEM) {
				listener_pause(w, err);
				return;
			}
			errno = err;
			log_warning("listener=%s: accept", l->l_name);
			break;
		}
		w->w_backoff_logged = false;
		if (listener_acl_refuses(w, (struct sockaddr *)&ss, len) ||
		    !listener_source_take(w, (struct sockaddr *)&ss, len)) {
			server_unreserve(l);
			close(fd);
			continue;
		}
		listener_begin(w, request_new_stream(l, fd,
		    (struct sockaddr *)&ss, len));
	}
}

static void
listener_recv(struct lwatch *w)
{
	struct listener		*l = w->w_listener;
	struct sockaddr_storage	 ss;
	socklen_t		 len;
	ssize_t			 n;

	for (int i = 0; i < LISTENER_ACCEPT_BATCH && listener_take(w); i++) {
		len = sizeof(ss);
		memset(&ss, 0, sizeof(sa_family_t));
		n = recvfrom(w->w_io.fd, w->w_dgram, l->l_max_packet_size + 1,
		    MSG_DONTWAIT | MSG_TRUNC, (struct sockaddr *)&ss, &len);
		if (n == -1) {
			int err = errno;

			server_unreserve(l);
			if (err == EINTR)
				continue;
			if (err != EAGAIN && err != EWOULDBLOCK) {
				errno = err;
				log_warning("listener=%s: recvfrom",
				    l->l_name);
			}
			break;
		}
		if ((size_t)n > l->l_max_packet_size) {
			char why[96];

			server_unreserve(l);
			snprintf(why, sizeof(why), "datagram of %zd bytes "
			    "dropped: max_packet_size is %zu", n,
			    l->l_max_packet_size);
			listener_refused(w, (struct sockaddr *)&ss, len,
			    &l->l_stats->s_refused_size, why);
			continue;
		}
		if (listener_acl_refuses(w, (struct sockaddr *)&ss, len) ||
		    !listener_source_take(w, (struct sockaddr *)&ss, len)) {
			server_unreserve(l);
			continue;
		}
		listener_begin(w, request_new_dgram(l, w->w_dgram,
		    (size_t)n, (struct sockaddr *)&ss, len));
	}
}

static void
listener_io_cb(struct ev_loop *loop, ev_io *io, int revents)
{
	struct lwatch	*w = container_of(io, struct lwatch, w_io);

	(void)loop;
	(void)revents;
	if (w->w_listener->l_type == SOCK_STREAM)
		listener_accept(w);
	else
		listener_recv(w);
	if (!server_can_accept(w->w_listener))
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
listener_watch_init(struct lwatch *w, struct listener *l,
    struct ev_loop *loop)
{
	memset(w, 0, sizeof(*w));
	w->w_listener = l;
	w->w_loop = loop;
	ev_io_init(&w->w_io, listener_io_cb, l->l_run->r_fd, EV_READ);
	ev_init(&w->w_backoff, listener_backoff_cb);
	if (l->l_type == SOCK_DGRAM)
		w->w_dgram = xmalloc(l->l_max_packet_size + 1);
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
	free(w->w_dgram);
	w->w_dgram = NULL;
	w->w_loop = NULL;
}

void
listener_watch_resume(struct lwatch *w)
{
	if (w->w_loop == NULL || ev_is_active(&w->w_io) ||
	    ev_is_active(&w->w_backoff) || !server_can_accept(w->w_listener))
		return;
	ev_io_start(w->w_loop, &w->w_io);
}

void
listener_start(struct listener *l)
{
	struct lrun *r = l->l_run;

	if (r->r_ops->resume != NULL) {
		r->r_ops->resume(l);
		return;
	}
	listener_watch_init(&r->r_watch, l, server.s_loop);
	listener_watch_resume(&r->r_watch);
}

void
listener_resume(struct listener *l)
{
	struct lrun *r = l->l_run;

	if (r == NULL || atomic_load(&r->r_closing))
		return;
	if (r->r_ops->resume != NULL)
		r->r_ops->resume(l);
	else
		listener_watch_resume(&r->r_watch);
}
