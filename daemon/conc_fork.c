/* SPDX-License-Identifier: ISC */
/*
 * conc_fork.c - the "fork" model (socketserver's ForkingMixIn): a process
 * per request.  The child keeps only its connection (and, for a datagram,
 * the socket its reply leaves by), with default signal dispositions, an
 * empty signal mask and PR_SET_PDEATHSIG, runs the request and exits.  The
 * parent watches each child with ev_child (libev reaps every child with
 * waitpid(-1, WNOHANG)), so there are never zombies; a child killed by a
 * signal is logged with its listener and peer.
 */
#include <sys/prctl.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

#include "server.h"

struct conc_fork_child {
	ev_child		 f_child;
	struct ssd_request	*f_rq;
	bool			 f_termed;	/* SIGTERM sent already */
};

static void
conc_fork_child_main(struct ssd_request *rq)
{
	struct sigaction	 sa;
	sigset_t		 none;
	int			 keep = rq->rq_fd;

	/* No child outlives the daemon, whatever the handler does. */
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() == 1)
		_exit(1);	/* the parent is already gone */
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = SIG_DFL;
	for (int sig = 1; sig < NSIG; sig++)
		sigaction(sig, &sa, NULL);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	/* syslog's socket may sit where the connection is about to go;
	 * syslog(3) opens a new one when the child logs. */
	closelog();
	/* Keep stdio and the request's socket; close everything else: the
	 * listening sockets, the loop's descriptors. */
	if (keep > STDERR_FILENO + 1) {
		if (dup2(keep, STDERR_FILENO + 1) == -1)
			_exit(1);
		keep = STDERR_FILENO + 1;
	}
	if (keep != STDERR_FILENO + 1) {
		/* keep is stdio (a daemon with closed stdio): leave it */
		keep = STDERR_FILENO;
	}
	close_range((unsigned)keep + 1, ~0U, 0);
	rq->rq_fd = keep;
	request_run(rq);
	_exit(0);
}

static void
conc_fork_child_cb(struct ev_loop *loop, ev_child *w, int revents)
{
	struct conc_fork_child	*c = container_of(w, struct conc_fork_child,
	    f_child);
	struct ssd_request	*rq = c->f_rq;
	int			 st = w->rstatus;

	(void)revents;
	ev_child_stop(loop, w);
	if (WIFSIGNALED(st) && c->f_termed)
		ssd_log(rq, LOG_NOTICE, "handler process %d cut: "
		    "shutdown_timeout passed", w->rpid);
	else if (WIFSIGNALED(st))
		ssd_log(rq, LOG_ERR, "handler process %d killed by signal %d "
		    "(%s)%s", w->rpid, WTERMSIG(st), strsignal(WTERMSIG(st)),
		    WCOREDUMP(st) ? ", core dumped" : "");
	else if (WIFEXITED(st) && WEXITSTATUS(st) != 0)
		ssd_log(rq, LOG_ERR, "handler process %d exited with status "
		    "%d", w->rpid, WEXITSTATUS(st));
	rq->rq_conc = NULL;
	free(c);
	server_request_done(rq);
}

static int
conc_fork_start(struct listener *l)
{
	(void)l;
	return 0;
}

static bool
conc_fork_can_accept(const struct listener *l)
{
	(void)l;
	return true;
}

static void
conc_fork_dispatch(struct listener *l, struct ssd_request *rq)
{
	struct conc_fork_child	*c;
	pid_t			 pid;

	(void)l;
	pid = fork();
	if (pid == -1) {
		ssd_log(rq, LOG_WARNING, "cannot fork: %s; connection closed",
		    strerror(errno));
		listener_pause(rq->rq_watch, errno);
		server_request_done(rq);
		return;
	}
	if (pid == 0)
		conc_fork_child_main(rq);
	c = xcalloc(1, sizeof(*c));
	c->f_rq = rq;
	rq->rq_conc = c;
	ev_child_init(&c->f_child, conc_fork_child_cb, pid, 0);
	ev_child_start(server.s_loop, &c->f_child);
	/* The child has the connection now; the parent's copy goes. */
	if (rq->rq_type == SOCK_STREAM) {
		close(rq->rq_fd);
		rq->rq_fd = -1;
	}
}

static void
conc_fork_cut(struct ssd_request *rq)
{
	struct conc_fork_child *c = rq->rq_conc;

	/* SIGTERM at the drain deadline, SIGKILL if it is still there. */
	if (c != NULL) {
		kill(c->f_child.pid, c->f_termed ? SIGKILL : SIGTERM);
		c->f_termed = true;
	}
}

static void
conc_fork_stop(struct listener *l)
{
	(void)l;
}

const struct conc_ops conc_fork_ops = {
	.name = "fork",
	.start = conc_fork_start,
	.can_accept = conc_fork_can_accept,
	.dispatch = conc_fork_dispatch,
	.cut = conc_fork_cut,
	.stop = conc_fork_stop,
};
