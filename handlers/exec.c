/* SPDX-License-Identifier: ISC */
/*
 * exec.c - inetd / ucspi-tcp style: runs options.program with
 * options.args as its whole argv (argv[0] included; default: just the
 * program), the connection on its stdin and stdout, the daemon's
 * environment plus options.env and the ucspi-tcp variables PROTO,
 * TCPREMOTEIP, TCPREMOTEPORT, TCPLOCALIP, TCPLOCALPORT.  The program's
 * stderr is the daemon's; it inherits no other descriptor.  It is waited for with ssd_waitpid, so under
 * the event model other requests go on meanwhile, and a program whose
 * connection stays silent for the listener's timeout is ended.  Its exit
 * status is logged.  Stream listeners only.
 */
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

#include <sockserverd.h>

extern char **environ;

struct exec_conf {
	char	*program;
	char	**argv;		/* NULL-terminated */
	char	**env;		/* "NAME=value", NULL-terminated */
	size_t	 nenv;
};

static void
exec_conf_free(struct exec_conf *x)
{
	if (x == NULL)
		return;
	free(x->program);
	for (size_t i = 0; x->argv != NULL && x->argv[i] != NULL; i++)
		free(x->argv[i]);
	free(x->argv);
	for (size_t i = 0; i < x->nenv; i++)
		free(x->env[i]);
	free(x->env);
	free(x);
}

static int
exec_init(void **instance, const config_setting_t *options)
{
	const config_setting_t	*s;
	struct exec_conf	*x;
	struct stat		 st;
	int			 n;

	errno = 0;
	s = options != NULL ? config_setting_get_member(options, "program") :
	    NULL;
	if (s == NULL || config_setting_type(s) != CONFIG_TYPE_STRING ||
	    config_setting_get_string(s)[0] != '/') {
		ssd_option_error(s != NULL ? s : options, "exec needs "
		    "options.program, the absolute path of a program");
		return -1;
	}
	if (access(config_setting_get_string(s), X_OK) == -1 ||
	    stat(config_setting_get_string(s), &st) == -1 ||
	    !S_ISREG(st.st_mode)) {
		ssd_option_error(s, "program %s: %s",
		    config_setting_get_string(s), errno != 0 ?
		    strerror(errno) : "not a regular file");
		return -1;
	}
	if ((x = calloc(1, sizeof(*x))) == NULL ||
	    (x->program = strdup(config_setting_get_string(s))) == NULL)
		goto nomem;

	if ((s = config_setting_get_member(options, "args")) != NULL) {
		if ((config_setting_type(s) != CONFIG_TYPE_ARRAY &&
		    config_setting_type(s) != CONFIG_TYPE_LIST) ||
		    (n = config_setting_length(s)) == 0) {
			ssd_option_error(s, "\"args\" must be a non-empty "
			    "array of strings (argv[0] first)");
			goto fail;
		}
		if ((x->argv = calloc((size_t)n + 1, sizeof(char *))) == NULL)
			goto nomem;
		for (int i = 0; i < n; i++) {
			const config_setting_t *e =
			    config_setting_get_elem(s, (unsigned)i);

			if (config_setting_type(e) != CONFIG_TYPE_STRING) {
				ssd_option_error(e, "\"args\" must be an array "
				    "of strings");
				goto fail;
			}
			if ((x->argv[i] = strdup(
			    config_setting_get_string(e))) == NULL)
				goto nomem;
		}
	} else {
		if ((x->argv = calloc(2, sizeof(char *))) == NULL ||
		    (x->argv[0] = strdup(x->program)) == NULL)
			goto nomem;
	}

	if ((s = config_setting_get_member(options, "env")) != NULL) {
		if (config_setting_type(s) != CONFIG_TYPE_GROUP) {
			ssd_option_error(s, "\"env\" must be a group of "
			    "strings: env = { NAME = \"value\"; };");
			goto fail;
		}
		n = config_setting_length(s);
		if ((x->env = calloc((size_t)n + 1, sizeof(char *))) == NULL)
			goto nomem;
		for (int i = 0; i < n; i++) {
			const config_setting_t *e =
			    config_setting_get_elem(s, (unsigned)i);

			if (config_setting_type(e) != CONFIG_TYPE_STRING) {
				ssd_option_error(e, "env \"%s\" must be a "
				    "string", config_setting_name(e));
				goto fail;
			}
			if (asprintf(&x->env[x->nenv], "%s=%s",
			    config_setting_name(e),
			    config_setting_get_string(e)) == -1)
				goto nomem;
			x->nenv++;
		}
	}
	for (int i = 0; options != NULL && i < config_setting_length(options);
	    i++) {
		const char *name = config_setting_name(
		    config_setting_get_elem(options, (unsigned)i));

		if (strcmp(name, "program") != 0 && strcmp(name, "args") != 0 &&
		    strcmp(name, "env") != 0) {
			ssd_option_error(config_setting_get_elem(options,
			    (unsigned)i), "exec: unknown option \"%s\" (program, "
			    "args, env)", name);
			goto fail;
		}
	}
	*instance = x;
	return 0;
nomem:
	ssd_option_error(options, "exec: out of memory");
fail:
	exec_conf_free(x);
	return -1;
}

static void
exec_fini(void *instance)
{
	exec_conf_free(instance);
}

#define EXEC_OWNED	5

static void
exec_environ_free(char **env, size_t n)
{
	/* asprintf leaves a failed entry undefined: calloc made it NULL
	 * only if it was never reached, so free what was set. */
	for (size_t i = n - EXEC_OWNED; i < n; i++)
		free(env[i]);
	free(env);
}

/* "IP" and "PORT" of a socket address, as ucspi-tcp writes them. */
static void
exec_addr(const struct sockaddr *sa, char *ip, size_t iplen, char *port,
    size_t portlen)
{
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *sin = (const void *)sa;

		inet_ntop(AF_INET, &sin->sin_addr, ip, (socklen_t)iplen);
		snprintf(port, portlen, "%u", ntohs(sin->sin_port));
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *sin6 = (const void *)sa;

		inet_ntop(AF_INET6, &sin6->sin6_addr, ip, (socklen_t)iplen);
		snprintf(port, portlen, "%u", ntohs(sin6->sin6_port));
	} else {
		snprintf(ip, iplen, "0.0.0.0");
		snprintf(port, portlen, "0");
	}
}

/* The child's environment: ours, options.env, the ucspi variables; the
 * last EXEC_OWNED entries are the caller's to free, with the array. */
static char **
exec_environ(const struct exec_conf *x, struct ssd_request *rq,
    size_t *n_r)
{
	struct sockaddr_storage	 local;
	socklen_t		 len = sizeof(local), plen;
	const struct sockaddr	*peer = ssd_peer_addr(rq, &plen);
	char			 ip[64], port[16], lip[64], lport[16];
	char			**env;
	size_t			 n = 0, k = 0;

	while (environ[n] != NULL)
		n++;
	if ((env = calloc(n + x->nenv + 6, sizeof(char *))) == NULL)
		return NULL;
	for (size_t i = 0; i < n; i++)
		if (strncmp(environ[i], "PROTO=", 6) != 0 &&
		    strncmp(environ[i], "TCP", 3) != 0)
			env[k++] = environ[i];
	for (size_t i = 0; i < x->nenv; i++)
		env[k++] = x->env[i];
	exec_addr(peer, ip, sizeof(ip), port, sizeof(port));
	if (getsockname(ssd_fd(rq), (struct sockaddr *)&local, &len) == -1)
		local.ss_family = AF_UNSPEC;
	exec_addr((struct sockaddr *)&local, lip, sizeof(lip), lport,
	    sizeof(lport));
	*n_r = k + EXEC_OWNED;
	if (asprintf(&env[k], "PROTO=%s", peer->sa_family == AF_INET6 ?
	    "TCP6" : peer->sa_family == AF_INET ? "TCP" : "UNIX") == -1 ||
	    asprintf(&env[k + 1], "TCPREMOTEIP=%s", ip) == -1 ||
	    asprintf(&env[k + 2], "TCPREMOTEPORT=%s", port) == -1 ||
	    asprintf(&env[k + 3], "TCPLOCALIP=%s", lip) == -1 ||
	    asprintf(&env[k + 4], "TCPLOCALPORT=%s", lport) == -1) {
		exec_environ_free(env, *n_r);
		return NULL;
	}
	env[k + EXEC_OWNED] = NULL;
	return env;
}

static int
exec_handle(struct ssd_request *rq)
{
	const struct exec_conf	*x = ssd_instance(rq);
	char			**env;
	size_t			 nenv;
	struct timeval		 rcv, snd, none = { 0, 0 };
	struct sigaction	 dfl;
	sigset_t		 none_set;
	pid_t			 parent;
	long			 maxfd;
	socklen_t		 tvlen;
	int			 fd = ssd_fd(rq), fl, st, rc;
	pid_t			 pid;

	if (ssd_socktype(rq) != SOCK_STREAM) {
		ssd_log(rq, LOG_ERR, "exec serves stream listeners only");
		return -1;
	}
	/* Built before fork: the child calls only async-signal-safe
	 * functions before execve (the daemon may have threads). */
	if ((env = exec_environ(x, rq, &nenv)) == NULL)
		return -1;
	/* The program gets a blocking socket without I/O timeouts, as from
	 * inetd: its silence is watched from here (ssd_waitpid). */
	if ((fl = fcntl(fd, F_GETFL)) == -1 ||
	    fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) == -1) {
		exec_environ_free(env, nenv);
		return -1;
	}
	tvlen = sizeof(rcv);
	if (getsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &rcv, &tvlen) == -1 ||
	    getsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &snd, &tvlen) == -1) {
		memset(&rcv, 0, sizeof(rcv));
		memset(&snd, 0, sizeof(snd));
	}
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &none, sizeof(none));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &none, sizeof(none));
	sigemptyset(&none_set);
	memset(&dfl, 0, sizeof(dfl));
	dfl.sa_handler = SIG_DFL;
	/* For kernels before 5.9, without close_range. */
	maxfd = sysconf(_SC_OPEN_MAX);
	if (maxfd <= 0)
		maxfd = 65536;
	parent = getpid();
	pid = fork();
	if (pid == 0) {
		/* Async-signal-safe calls only until execve. */
		/* Not outliving the process that waits for it: a daemon
		 * stopped by force takes its programs along. */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(127);
		/* A group of its own: signals reach what it starts too. */
		setpgid(0, 0);
		/* As from inetd: no signal blocked (worker threads block
		 * them all), SIGPIPE not ignored (the daemon ignores it). */
		sigaction(SIGPIPE, &dfl, NULL);
		sigprocmask(SIG_SETMASK, &none_set, NULL);
		if (dup2(fd, STDIN_FILENO) == -1 ||
		    dup2(fd, STDOUT_FILENO) == -1)
			_exit(127);
		/* Only stdio, as from inetd: under fork the handler process
		 * holds the connection at 3, without close-on-exec. */
		if (close_range(STDERR_FILENO + 1, ~0U, 0) == -1)
			for (long i = STDERR_FILENO + 1; i < maxfd; i++)
				close((int)i);
		execve(x->program, x->argv, env);
		_exit(127);
	}
	exec_environ_free(env, nenv);
	if (pid == -1) {
		ssd_log(rq, LOG_ERR, "fork: %s", strerror(errno));
		fcntl(fd, F_SETFL, fl);
		setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &rcv, sizeof(rcv));
		setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &snd, sizeof(snd));
		return -1;
	}
	/* The flag belongs to the connection, which the program shares:
	 * back to non-blocking only once it is gone. */
	rc = ssd_waitpid(rq, pid, &st);
	fcntl(fd, F_SETFL, fl);
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &rcv, sizeof(rcv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &snd, sizeof(snd));
	if (rc == -1)
		return -1;	/* ssd_waitpid said why */
	if (WIFSIGNALED(st))
		ssd_log(rq, LOG_NOTICE, "%s killed by signal %d",
		    x->program, WTERMSIG(st));
	else
		ssd_log(rq, WEXITSTATUS(st) == 0 ? LOG_INFO : LOG_NOTICE,
		    "%s exited with status %d", x->program,
		    WEXITSTATUS(st));
	return 0;
}

SSD_HANDLER(exec) = {
	.abi = SSD_ABI_VERSION,
	.name = "exec",
	.description = "inetd / ucspi-tcp style: runs a program on the "
	    "connection",
	.init = exec_init,
	.fini = exec_fini,
	.handle = exec_handle,
};
