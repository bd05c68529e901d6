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

	r = xcalloc(1, sizeof(*r));
	r->r_listener = l;
	r->r_fd = fd;
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
	if (l->l_type == SOCK_DGRAM)
		r->r_dgram = xmalloc(l->l_max_packet_size + 1);
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
		r->r_ops = &conc_event_ops;
		break;
	}
	l->l_run = r;
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

void
listener_close(struct listener *l)
{
	struct lrun		*r = l->l_run;
	struct sockaddr_un	*sun = (void *)&l->l_addr;
	struct stat		 st;

	if (r == NULL || r->r_closing)
		return;
	r->r_closing = true;
	ev_io_stop(server.s_loop, &r->r_io);
	ev_timer_stop(server.s_loop, &r->r_backoff);
	/* Remove the file only if it is still the one we created. */
	if (r->r_unlink && stat(sun->sun_path, &st) == 0 &&
	    st.st_dev == r->r_dev && st.st_ino == r->r_ino)
		unlink(sun->sun_path);
	r->r_unlink = false;
	/* Datagram requests reply through this socket: keep it until idle. */
	if (r->r_fd != -1 && (l->l_type == SOCK_STREAM || r->r_active == 0)) {
		close(r->r_fd);
		r->r_fd = -1;
	}
}

void
listener_free_run(struct listener *l)
{
	struct lrun *r = l->l_run;

	if (r == NULL)
		return;
	if (r->r_fd != -1)
		close(r->r_fd);
	free(r->r_dgram);
	free(r);
	l->l_run = NULL;
}

/* Refused by allow/deny: count, and log at most once a second. */
static bool
listener_acl_refuses(struct listener *l, const struct sockaddr *sa,
    socklen_t len)
{
	struct lrun	*r = l->l_run;
	char		 peer[ADDR_STRLEN];
	ev_tstamp	 now;

	if (sa->sa_family != AF_INET && sa->sa_family != AF_INET6)
		return false;
	if (!acl_match(l->l_deny, l->l_ndeny, sa) &&
	    (l->l_nallow == 0 || acl_match(l->l_allow, l->l_nallow, sa)))
		return false;
	r->r_refused++;
	now = ev_now(server.s_loop);
	if (now - r->r_refused_logged >= 1.0) {
		addr_format(sa, len, peer, sizeof(peer));
		log_infox("listener=%s peer=%s: refused by allow/deny (%lu "
		    "refused since the last report)", l->l_name, peer,
		    r->r_refused);
		r->r_refused = 0;
		r->r_refused_logged = now;
	}
	return true;
}

void
listener_pause(struct listener *l, int err)
{
	struct lrun *r = l->l_run;

	ev_io_stop(server.s_loop, &r->r_io);
	if (!r->r_backoff_logged)
		log_warningx("listener=%s: %s: pausing for %gs",
		    l->l_name, strerror(err), LISTENER_BACKOFF);
	r->r_backoff_logged = true;
	ev_timer_set(&r->r_backoff, LISTENER_BACKOFF, 0.);
	ev_timer_start(server.s_loop, &r->r_backoff);
}

static void
listener_accept(struct listener *l)
{
	struct lrun		*r = l->l_run;
	struct sockaddr_storage	 ss;
	socklen_t		 len;
	int			 fd;

	for (int i = 0; i < LISTENER_ACCEPT_BATCH && server_can_accept(l);
	    i++) {
		len = sizeof(ss);
		fd = accept4(r->r_fd, (struct sockaddr *)&ss, &len,
		    SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd == -1) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				break;
			if (errno == EMFILE || errno == ENFILE ||
			    errno == ENOBUFS || errno == ENOMEM) {
				listener_pause(l, errno);
				return;
			}
			log_warning("listener=%s: accept", l->l_name);
			break;
		}
		r->r_backoff_logged = false;
		if (listener_acl_refuses(l, (struct sockaddr *)&ss, len)) {
			close(fd);
			continue;
		}
		server_request_begin(request_new_stream(l, fd,
		    (struct sockaddr *)&ss, len));
	}
}

static void
listener_recv(struct listener *l)
{
	struct lrun		*r = l->l_run;
	struct sockaddr_storage	 ss;
	socklen_t		 len;
	ssize_t			 n;
	char			 peer[ADDR_STRLEN];

	for (int i = 0; i < LISTENER_ACCEPT_BATCH && server_can_accept(l);
	    i++) {
		len = sizeof(ss);
		memset(&ss, 0, sizeof(sa_family_t));
		n = recvfrom(r->r_fd, r->r_dgram, l->l_max_packet_size + 1,
		    MSG_DONTWAIT | MSG_TRUNC, (struct sockaddr *)&ss, &len);
		if (n == -1) {
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN && errno != EWOULDBLOCK)
				log_warning("listener=%s: recvfrom",
				    l->l_name);
			break;
		}
		if ((size_t)n > l->l_max_packet_size) {
			addr_format((struct sockaddr *)&ss, len, peer,
			    sizeof(peer));
			log_infox("listener=%s peer=%s: datagram of %zd bytes "
			    "dropped: max_packet_size is %zu", l->l_name,
			    peer, n, l->l_max_packet_size);
			continue;
		}
		if (listener_acl_refuses(l, (struct sockaddr *)&ss, len))
			continue;
		server_request_begin(request_new_dgram(l, r->r_dgram,
		    (size_t)n, (struct sockaddr *)&ss, len));
	}
}

static void
listener_io_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct lrun	*r = container_of(w, struct lrun, r_io);
	struct listener	*l = r->r_listener;

	(void)loop;
	(void)revents;
	if (l->l_type == SOCK_STREAM)
		listener_accept(l);
	else
		listener_recv(l);
	if (!server_can_accept(l))
		ev_io_stop(server.s_loop, &r->r_io);
}

static void
listener_backoff_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct lrun *r = container_of(w, struct lrun, r_backoff);

	(void)loop;
	(void)revents;
	listener_resume(r->r_listener);
}

void
listener_start(struct listener *l)
{
	struct lrun *r = l->l_run;

	ev_io_init(&r->r_io, listener_io_cb, r->r_fd, EV_READ);
	ev_init(&r->r_backoff, listener_backoff_cb);
	listener_resume(l);
}

void
listener_resume(struct listener *l)
{
	struct lrun *r = l->l_run;

	if (r == NULL || r->r_closing || ev_is_active(&r->r_io) ||
	    ev_is_active(&r->r_backoff) || !server_can_accept(l))
		return;
	ev_io_start(server.s_loop, &r->r_io);
}
