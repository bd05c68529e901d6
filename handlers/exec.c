/* SPDX-License-Identifier: ISC */
/*
 * exec.c - inetd / ucspi-tcp style: runs options.program with
 * options.args as its whole argv (argv[0] included; default: just the
 * program), the connection on its stdin and stdout, the daemon's
 * environment plus options.env and the ucspi-tcp variables PROTO,
 * TCPREMOTEIP, TCPREMOTEPORT, TCPLOCALIP, TCPLOCALPORT (ssd_env), and under
 * TLS mod_ssl's HTTPS and SSL_* with the plaintext relayed through pipes
 * (ssd_relay).  The program's stderr is the daemon's; it inherits no other descriptor.  It is waited for with ssd_waitpid, so under
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

/* The variables of ssd_env that a program gets, when set. */
static const char *const exec_env_names[] = {
	"PROTO", "TCPREMOTEIP", "TCPREMOTEPORT", "TCPLOCALIP", "TCPLOCALPORT",
	"HTTPS", "SSL_PROTOCOL", "SSL_CIPHER", "SSL_TLS_SNI",
	"SSL_CLIENT_VERIFY", "SSL_CLIENT_S_DN", "SSL_CLIENT_I_DN",
};
#define EXEC_NENV	(sizeof(exec_env_names) / sizeof(exec_env_names[0]))

/* Ours to set: never passed on from the daemon's own environment (the
 * names above, and ucspi-tcp's TCP* as before); other SSL_* variables,
 * such as OpenSSL's SSL_CERT_FILE and SSL_CERT_DIR, are the operator's
 * and reach the program. */
static int
exec_env_is_ours(const char *entry)
{
	size_t n;

	if (strncmp(entry, "TCP", 3) == 0)
		return 1;
	for (size_t i = 0; i < EXEC_NENV; i++) {
		n = strlen(exec_env_names[i]);
		if (strncmp(entry, exec_env_names[i], n) == 0 &&
		    entry[n] == '=')
			return 1;
	}
	return 0;
}

/* Frees env and its entries from owned on. */
static void
exec_environ_free(char **env, size_t owned)
{
	for (size_t i = owned; env[i] != NULL; i++)
		free(env[i]);
	free(env);
}

/* The child's environment: ours, options.env, then the connection's
 * (ssd_env: ucspi-tcp's names, and mod_ssl's under TLS); the entries
 * from *owned_r on are the caller's to free, with the array. */
static char **
exec_environ(const struct exec_conf *x, struct ssd_request *rq,
    size_t *owned_r)
{
	char		**env;
	const char	*v;
	size_t		 n = 0, k = 0;

	while (environ[n] != NULL)
		n++;
	if ((env = calloc(n + x->nenv + EXEC_NENV + 1, sizeof(char *))) ==
	    NULL)
		return NULL;
	for (size_t i = 0; i < n; i++)
		if (!exec_env_is_ours(environ[i]))
			env[k++] = environ[i];
	for (size_t i = 0; i < x->nenv; i++)
		env[k++] = x->env[i];
	*owned_r = k;
	for (size_t i = 0; i < EXEC_NENV; i++) {
		if ((v = ssd_env(rq, exec_env_names[i])) == NULL)
			continue;
		if (asprintf(&env[k], "%s=%s", exec_env_names[i], v) == -1) {
			env[k] = NULL;
			exec_environ_free(env, *owned_r);
			return NULL;
		}
		k++;
	}
	env[k] = NULL;
	return env;
}

/*
 * The child, after fork: stdin and stdout from in and out, nothing else
 * but stderr, then the program.  Async-signal-safe calls only (the
 * daemon may have threads).
 */
static void __attribute__((noreturn))
exec_child(const struct exec_conf *x, char **env, pid_t parent, int in,
    int out, long maxfd)
{
	struct sigaction	 dfl;
	sigset_t		 none_set;

	sigemptyset(&none_set);
	memset(&dfl, 0, sizeof(dfl));
	dfl.sa_handler = SIG_DFL;
	/* Not outliving the process that waits for it: a daemon stopped
	 * by force takes its programs along. */
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != parent)
		_exit(127);
	/* A group of its own: signals reach what it starts too. */
	setpgid(0, 0);
	/* As from inetd: no signal blocked (worker threads block them
	 * all), SIGPIPE not ignored (the daemon ignores it). */
	sigaction(SIGPIPE, &dfl, NULL);
	sigprocmask(SIG_SETMASK, &none_set, NULL);
	if (dup2(in, STDIN_FILENO) == -1 || dup2(out, STDOUT_FILENO) == -1)
		_exit(127);
	/* Only stdio, as from inetd: under fork the handler process holds
	 * the connection at 3, without close-on-exec. */
	if (close_range(STDERR_FILENO + 1, ~0U, 0) == -1)
		for (long i = STDERR_FILENO + 1; i < maxfd; i++)
			close((int)i);
	execve(x->program, x->argv, env);
	_exit(127);
}

/* Logs how the program ended; 0 if it exited 0, else -1 (the request
 * failed: an error in the access log and the counters). */
static int
exec_status(struct ssd_request *rq, const struct exec_conf *x, int st)
{
	if (WIFSIGNALED(st)) {
		ssd_log(rq, LOG_NOTICE, "%s killed by signal %d",
		    x->program, WTERMSIG(st));
		return -1;
	}
	ssd_log(rq, WEXITSTATUS(st) == 0 ? LOG_INFO : LOG_NOTICE,
	    "%s exited with status %d", x->program, WEXITSTATUS(st));
	return WEXITSTATUS(st) == 0 ? 0 : -1;
}

/* Under TLS the program gets pipes, and the daemon relays plaintext. */
static int
exec_relayed(struct ssd_request *rq, const struct exec_conf *x, char **env,
    size_t owned, long maxfd)
{
	int	 in[2], out[2], st, err;
	pid_t	 pid, parent = getpid();

	if (pipe2(in, O_CLOEXEC) == -1) {
		ssd_log(rq, LOG_ERR, "pipe: %s", strerror(errno));
		exec_environ_free(env, owned);
		return -1;
	}
	if (pipe2(out, O_CLOEXEC) == -1) {
		err = errno;
		close(in[0]);
		close(in[1]);
		ssd_log(rq, LOG_ERR, "pipe: %s", strerror(err));
		exec_environ_free(env, owned);
		return -1;
	}
	if ((pid = fork()) == 0)
		exec_child(x, env, parent, in[0], out[1], maxfd);
	err = errno;
	exec_environ_free(env, owned);
	close(in[0]);
	close(out[1]);
	if (pid == -1) {
		close(in[1]);
		close(out[0]);
		ssd_log(rq, LOG_ERR, "fork: %s", strerror(err));
		return -1;
	}
	if (ssd_relay(rq, in[1], out[0], pid, &st) == -1)
		return -1;	/* ssd_relay said why */
	return exec_status(rq, x, st);
}

static int
exec_handle(struct ssd_request *rq)
{
	const struct exec_conf	*x = ssd_instance(rq);
	char			**env;
	size_t			 owned;
	struct timeval		 rcv, snd, none = { 0, 0 };
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
	if ((env = exec_environ(x, rq, &owned)) == NULL)
		return -1;
	/* For kernels before 5.9, without close_range. */
	maxfd = sysconf(_SC_OPEN_MAX);
	if (maxfd <= 0)
		maxfd = 65536;
	if (ssd_env(rq, "HTTPS") != NULL)
		return exec_relayed(rq, x, env, owned, maxfd);
	/* The program gets a blocking socket without I/O timeouts, as from
	 * inetd: its silence is watched from here (ssd_waitpid). */
	if ((fl = fcntl(fd, F_GETFL)) == -1 ||
	    fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) == -1) {
		exec_environ_free(env, owned);
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
	parent = getpid();
	if ((pid = fork()) == 0)
		exec_child(x, env, parent, fd, fd, maxfd);
	exec_environ_free(env, owned);
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
	return exec_status(rq, x, st);
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
