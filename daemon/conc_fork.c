/* SPDX-License-Identifier: ISC */
/*
 * conc_fork.c - the "fork" model (socketserver's ForkingMixIn): a process
 * per request.  The child keeps only its connection (and, for a datagram,
 * the socket its reply leaves by), with default signal dispositions, an
 * empty signal mask, a process group of its own (a Ctrl-C or a signal to
 * the daemon's group does not cut it short: the drain decides) and
 * PR_SET_PDEATHSIG, runs the request and exits.
 *
 * Resetting the dispositions costs one sigaction(2) per signal the
 * daemon or a plugin had set when the last listener started (read then,
 * in the parent), not 64: a signal handler a plugin installs later, from
 * a request, stays installed in the children of the fork model.
 *
 * The parent reaps its own children only: on SIGCHLD it waits for each
 * child it started with waitpid(pid, WNOHANG), never waitpid(-1), so a
 * handler that starts and waits for processes of its own (system(3),
 * popen(3)) under another model keeps its exit statuses.  No zombies: a
 * child that ended is reaped at the next SIGCHLD.  A child killed by a
 * signal is logged with its listener and peer.
 */
#include <sys/prctl.h>
#include <sys/queue.h>
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
	TAILQ_ENTRY(conc_fork_child) f_entry;
	pid_t			 f_pid;
	struct ssd_request	*f_rq;
	bool			 f_termed;	/* SIGTERM sent already */
};

static TAILQ_HEAD(, conc_fork_child) conc_fork_children =
    TAILQ_HEAD_INITIALIZER(conc_fork_children);
static ev_signal	conc_fork_sigchld;
static unsigned		conc_fork_users;	/* fork listeners started */
/* The signals whose disposition is not the default: what a child resets
 * (one sigaction each, not 64).  Read again after every listener start
 * (so after every reload and every plugin's init). */
static sigset_t		conc_fork_handled;
static bool		conc_fork_handled_known;

static void
conc_fork_read_handled(void)
{
	struct sigaction sa;

	sigemptyset(&conc_fork_handled);
	for (int sig = 1; sig < NSIG; sig++)
		if (sigaction(sig, NULL, &sa) == 0 &&
		    sa.sa_handler != SIG_DFL)
			sigaddset(&conc_fork_handled, sig);
	conc_fork_handled_known = true;
}

static void __attribute__((noreturn))
conc_fork_child_main(struct ssd_request *rq, pid_t parent)
{
	struct sigaction	 sa;
	sigset_t		 none;
	int			 keep = rq->rq_fd;

	/* No child outlives the daemon, whatever the handler does. */
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != parent)
		_exit(1);	/* the parent is already gone */
	setpgid(0, 0);
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = SIG_DFL;
	for (int sig = 1; sig < NSIG; sig++)
		if (sigismember(&conc_fork_handled, sig) == 1)
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
	if (keep != STDERR_FILENO + 1)
		keep = STDERR_FILENO;	/* the daemon's stdio was closed */
	priv_closefrom(keep + 1);
	log_reset_fds();	/* the journal's socket was among them */
	rq->rq_fd = keep;
	request_set_blocking(rq);
	request_run(rq);
	_exit(0);
}

static void
conc_fork_reaped(struct conc_fork_child *c, int st)
{
	struct ssd_request *rq = c->f_rq;

	if (WIFSIGNALED(st) && c->f_termed)
		ssd_log(rq, LOG_NOTICE, "handler process %d cut: "
		    "shutdown_timeout passed", (int)c->f_pid);
	else if (WIFSIGNALED(st))
		ssd_log(rq, LOG_ERR, "handler process %d killed by signal %d "
		    "(%s)%s", (int)c->f_pid, WTERMSIG(st),
		    strsignal(WTERMSIG(st)), WCOREDUMP(st) ? ", core dumped" :
		    "");
	else if (WIFEXITED(st) && WEXITSTATUS(st) != 0)
		ssd_log(rq, LOG_ERR, "handler process %d exited with status "
		    "%d", (int)c->f_pid, WEXITSTATUS(st));
	TAILQ_REMOVE(&conc_fork_children, c, f_entry);
	rq->rq_conc = NULL;
	free(c);
	server_request_done(rq);
}

static void
conc_fork_sigchld_cb(struct ev_loop *loop, ev_signal *w, int revents)
{
	struct conc_fork_child	*c, *next;
	pid_t			 pid;
	int			 st;

	(void)loop;
	(void)w;
	(void)revents;
	/* Signals coalesce: look at every child we have. */
	for (c = TAILQ_FIRST(&conc_fork_children); c != NULL; c = next) {
		next = TAILQ_NEXT(c, f_entry);
		while ((pid = waitpid(c->f_pid, &st, WNOHANG)) == -1 &&
		    errno == EINTR)
			continue;
		if (pid == c->f_pid)
			conc_fork_reaped(c, st);
		else if (pid == -1 && errno == ECHILD)
			conc_fork_reaped(c, 0);	/* not ours any more */
	}
}

static int
conc_fork_start(struct lrun *r)
{
	(void)r;
	conc_fork_handled_known = false;
	if (conc_fork_users++ == 0) {
		ev_signal_init(&conc_fork_sigchld, conc_fork_sigchld_cb,
		    SIGCHLD);
		ev_signal_start(server.s_loop, &conc_fork_sigchld);
		ev_unref(server.s_loop);
	}
	return 0;
}

static bool
conc_fork_can_accept(const struct lrun *r)
{
	(void)r;
	return true;
}

static void
conc_fork_dispatch(struct lrun *r, struct ssd_request *rq)
{
	struct conc_fork_child	*c;
	pid_t			 pid, parent = getpid();

	(void)r;
	if (!conc_fork_handled_known)
		conc_fork_read_handled();
	pid = fork();
	if (pid == -1) {
		ssd_log(rq, LOG_WARNING, "cannot fork: %s; connection closed",
		    strerror(errno));
		listener_pause(rq->rq_watch, errno);
		server_request_done(rq);
		return;
	}
	if (pid == 0)
		conc_fork_child_main(rq, parent);
	c = xcalloc(1, sizeof(*c));
	c->f_pid = pid;
	c->f_rq = rq;
	rq->rq_conc = c;
	TAILQ_INSERT_TAIL(&conc_fork_children, c, f_entry);
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
		kill(c->f_pid, c->f_termed ? SIGKILL : SIGTERM);
		c->f_termed = true;
	}
}

static void
conc_fork_stop(struct lrun *r)
{
	(void)r;
	if (conc_fork_users > 0 && --conc_fork_users == 0) {
		ev_ref(server.s_loop);
		ev_signal_stop(server.s_loop, &conc_fork_sigchld);
	}
}

const struct conc_ops conc_fork_ops = {
	.name = "fork",
	.start = conc_fork_start,
	.can_accept = conc_fork_can_accept,
	.dispatch = conc_fork_dispatch,
	.cut = conc_fork_cut,
	.stop = conc_fork_stop,
};
