/* SPDX-License-Identifier: ISC */
/*
 * main.c - command line, start-up order and exit status.  Nothing else:
 * every other daemon object links into the unit tests without this file.
 */
#include <errno.h>
#include <getopt.h>
#include <malloc.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "server.h"

static void __attribute__((noreturn))
usage(FILE *fp, int status)
{
	fprintf(fp, "usage: sockserverd [-c FILE] [-t] [-L] [-D] [-p FILE] "
	    "[-l LEVEL] [-V] [-h]\n");
	if (status == EXIT_OK)
		fprintf(fp,
		    "  -c, --config FILE      configuration file "
		    "(default %s)\n"
		    "  -t, --test             check the configuration and "
		    "exit\n"
		    "  -L, --list-handlers    list the available handlers\n"
		    "  -D, --daemonize        detach from the terminal\n"
		    "  -p, --pid-file FILE    write the pid to FILE\n"
		    "  -l, --log-level LEVEL  error, warning, notice, info "
		    "or debug\n"
		    "  -V, --version          print the version\n"
		    "  -h, --help             print this help\n",
		    SSD_DEFAULT_CONFIG);
	exit(status);
}

/*
 * glibc gives each new thread that allocates an arena of its own, up to 8
 * per CPU: 16 here, after one burst of thread-model requests.  Every
 * fork(2) afterwards (the fork model's, a worker's) copies them, and its
 * handlers lock and unlock each one: a copy-on-write fault per arena in
 * the parent and in the child, for every request.  One arena per CPU
 * serves threads that mostly wait for I/O as well.  MALLOC_ARENA_MAX or
 * glibc.malloc.arena_max in GLIBC_TUNABLES still decides.
 */
static void
main_limit_arenas(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);

	const char *t = getenv("GLIBC_TUNABLES");

	if (getenv("MALLOC_ARENA_MAX") == NULL &&
	    (t == NULL || strstr(t, "glibc.malloc.arena_max") == NULL))
		mallopt(M_ARENA_MAX, n < 2 ? 2 : (int)n);
}

int
main(int argc, char *argv[])
{
	static const struct option longopts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "test", no_argument, NULL, 't' },
		{ "list-handlers", no_argument, NULL, 'L' },
		{ "daemonize", no_argument, NULL, 'D' },
		{ "pid-file", required_argument, NULL, 'p' },
		{ "log-level", required_argument, NULL, 'l' },
		{ "version", no_argument, NULL, 'V' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	const char	*path = SSD_DEFAULT_CONFIG, *pid_file = NULL;
	char		*abs_pid_file = NULL, *cwd, err[512];
	enum log_target	 target;
	int		 dfd = -1;
	struct config	*cf = NULL;
	struct gen	*g = NULL;
	struct diag	 d;
	bool		 test = false, list = false, daemonize = false;
	int		 ch, level = -1, level_cli, status;

	log_init(LOG_INFO, LOG_TARGET_STDERR);
	main_limit_arenas();
	while ((ch = getopt_long(argc, argv, "c:tLDp:l:Vh", longopts,
	    NULL)) != -1) {
		switch (ch) {
		case 'c':
			path = optarg;
			break;
		case 't':
			test = true;
			break;
		case 'L':
			list = true;
			break;
		case 'D':
			daemonize = true;
			break;
		case 'p':
			pid_file = optarg;
			break;
		case 'l':
			if ((level = log_level_parse(optarg)) == -1) {
				fprintf(stderr, "sockserverd: -l: unknown log "
				    "level \"%s\" (error, warning, notice, "
				    "info, debug)\n", optarg);
				usage(stderr, EXIT_USAGE);
			}
			break;
		case 'V':
			printf("sockserverd %s (handler ABI %d)\n",
			    SSD_VERSION, SSD_ABI_VERSION);
			return EXIT_OK;
		case 'h':
			usage(stdout, EXIT_OK);
		default:
			usage(stderr, EXIT_USAGE);
		}
	}
	if (optind != argc) {
		fprintf(stderr, "sockserverd: unexpected argument \"%s\"\n",
		    argv[optind]);
		usage(stderr, EXIT_USAGE);
	}
	if (level != -1)
		log_setlevel(level);
	level_cli = level;

	/* Before any plugin registers fork handlers of its own. */
	tls_init();
	diag_init(&d);
	if (list) {
		/* The listing needs the handler directory only. */
		config_load(path, &cf, &d);
		loader_list(cf != NULL ? cf->cf_handler_dir : SSD_HANDLERDIR,
		    stdout);
		config_free(cf);
		diag_fini(&d);
		return EXIT_OK;
	}
	/* With worker processes, handler code runs in the workers only:
	 * here it is checked in a child (-t initialises as always). */
	if (config_load(path, &cf, &d) == 0)
		g = cf->cf_worker_processes > 0 && !test ?
		    gen_new_checked(cf, &d) : gen_new(cf, &d); /* takes cf */
	if (d.d_count > 0) {
		if (test)
			diag_print(&d, stderr);
		else
			diag_log(&d);
		diag_fini(&d);
		if (g != NULL)
			gen_unref(g);
		return EXIT_CONFIG;
	}
	diag_fini(&d);
	if (test) {
		printf("configuration OK\n");
		gen_unref(g);
		return EXIT_OK;
	}
	cf = g->g_cfg;

	/* Our own copy: the config is freed before the file is removed. */
	if (pid_file == NULL && cf->cf_pid_file != NULL)
		pid_file = abs_pid_file = xstrdup(cf->cf_pid_file);
	else if (pid_file != NULL && pid_file[0] != '/' &&
	    (cwd = getcwd(NULL, 0)) != NULL) {
		pid_file = abs_pid_file = xasprintf("%s/%s", cwd, pid_file);
		free(cwd);
	}
	target = cf->cf_log_target;
	if (level == -1)
		level = cf->cf_log_level;
	/* With -D, start-up still logs to stderr (problems say why where
	 * the user ran us); syslog once the daemon is serving. */
	log_init(level, target);
	/* Before -D forks: LISTEN_PID names this process. */
	sd_init();
	if (daemonize && (dfd = priv_daemonize(err, sizeof(err))) == -1)
		fatalx("-D: %s", err);

	status = EXIT_CONFIG;
	stats_init();
	if (cf->cf_worker_processes > 0) {
		if (worker_shm_init() == -1) {
			log_error("worker_processes: shared memory");
			gen_unref(g);
			goto done;
		}
		server_init_state(level_cli);
	} else if (server_init(level_cli) == -1) {
		gen_unref(g);
		goto done;
	}
	server.s_detached = daemonize;
	if (server_bind(g) == -1)
		goto abort;
	if (pid_file != NULL &&
	    priv_pidfile_write(pid_file, err, sizeof(err)) == -1) {
		log_errorx("%s", err);
		pid_file = NULL;
		goto abort;
	}
	if (priv_drop(cf->cf_user, cf->cf_group, err, sizeof(err)) == -1) {
		log_errorx("%s: %s", path, err);
		goto abort;
	}
	if (cf->cf_worker_processes == 0 && server_start() == -1)
		goto abort;
	if (daemonize && target == LOG_TARGET_STDERR) {
		log_noticex("detached: logging to syslog from now on");
		log_init(level, LOG_TARGET_SYSLOG);
	}
	/* Detached, stderr goes nowhere: when the journal cannot be
	 * reached, syslog is where an operator would look. */
	if (daemonize)
		log_set_fallback(LOG_TARGET_SYSLOG);
	priv_daemonize_done(dfd);
	if (cf->cf_worker_processes > 0)
		status = worker_supervise(level_cli);
	else
		status = server_run();
	goto done;
abort:
	server_abort();
done:
	if (pid_file != NULL)
		priv_pidfile_remove(pid_file);
	free(abs_pid_file);
	if (atomic_load(&server.s_nactive) == 0)
		stats_cleanup();	/* no thread counts any more */
	return status;
}
