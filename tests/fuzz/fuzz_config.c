/* SPDX-License-Identifier: ISC */
/*
 * fuzz_config.c - libFuzzer harness of the configuration: the input is
 * written to a file in a private directory under /dev/shm (or $TMPDIR)
 * and loaded with config_load, all of its validation included; when it
 * loads and names only compiled-in handlers, handler_prepare runs their
 * init on its options too (and handler_release).  Checks the contract:
 * config_load fails exactly when it reported something, and every report
 * is a "FILE:LINE: message".
 *
 * Kept off the network: host names are not resolved (getaddrinfo is
 * numeric-only here).
 */
#include <dlfcn.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "daemon.h"

int	LLVMFuzzerInitialize(int *, char ***);
int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);
int	getaddrinfo(const char *, const char *, const struct addrinfo *,
	    struct addrinfo **);

#define FUZZ_CHECK(x) do {						\
	if (!(x)) {							\
		fprintf(stderr, "fuzz_config: %s:%d: %s\n",		\
		    __FILE__, __LINE__, #x);				\
		abort();						\
	}								\
} while (0)

static char	fuzz_dir[256];
static char	fuzz_path[300];

static void
fuzz_cleanup(void)
{
	unlink(fuzz_path);
	rmdir(fuzz_dir);
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	const char *tmp = access("/dev/shm", W_OK) == 0 ? "/dev/shm" :
	    getenv("TMPDIR") != NULL ? getenv("TMPDIR") : "/tmp";

	(void)argc;
	(void)argv;
	snprintf(fuzz_dir, sizeof(fuzz_dir), "%s/ssd-fuzz-config-XXXXXX",
	    tmp);
	FUZZ_CHECK(mkdtemp(fuzz_dir) != NULL);
	snprintf(fuzz_path, sizeof(fuzz_path), "%s/fuzz.conf", fuzz_dir);
	atexit(fuzz_cleanup);
	log_init(LOG_ERR, LOG_TARGET_STDERR);
	return 0;
}

/* Numeric addresses only: a host name in the input never becomes a DNS
 * query.  Defined here, it takes the place of libc's for the daemon's
 * objects. */
int
getaddrinfo(const char *node, const char *service,
    const struct addrinfo *hints, struct addrinfo **res)
{
	static int	(*real)(const char *, const char *,
			    const struct addrinfo *, struct addrinfo **);
	struct addrinfo	 h;

	if (real == NULL)
		*(void **)&real = dlsym(RTLD_NEXT, "getaddrinfo");
	FUZZ_CHECK(real != NULL);
	if (hints != NULL)
		h = *hints;
	else {
		memset(&h, 0, sizeof(h));
		h.ai_family = AF_UNSPEC;
	}
	h.ai_flags |= AI_NUMERICHOST;
	return real(node, service, &h, res);
}

/* "FILE:LINE: message", or "FILE: message" about a file as a whole:
 * FILE is the one written, one it includes, or "?" when libconfig gives
 * none. */
static bool
fuzz_is_diag(const char *m)
{
	size_t n = strlen(fuzz_dir);

	if (strncmp(m, fuzz_dir, n) != 0 && strncmp(m, "?:", 2) != 0)
		return false;
	return strstr(m, ": ") != NULL;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct config		*cf = NULL;
	struct listener		*l;
	struct diag		 d;
	FILE			*fp;
	bool			 builtin = true;
	int			 rc;

	FUZZ_CHECK((fp = fopen(fuzz_path, "w")) != NULL);
	FUZZ_CHECK(fwrite(data, 1, size, fp) == size);
	FUZZ_CHECK(fclose(fp) == 0);

	diag_init(&d);
	rc = config_load(fuzz_path, &cf, &d);
	FUZZ_CHECK(rc == 0 || rc == -1);
	FUZZ_CHECK((rc == 0) == (d.d_count == 0));
	FUZZ_CHECK((rc == 0) == (cf != NULL));
	for (size_t i = 0; i < d.d_count; i++)
		FUZZ_CHECK(fuzz_is_diag(d.d_msgs[i]));
	if (rc == 0) {
		FUZZ_CHECK(cf->cf_nlisteners > 0);
		TAILQ_FOREACH(l, &cf->cf_listeners, l_entry) {
			FUZZ_CHECK(l->l_name != NULL &&
			    l->l_handler_spec != NULL);
			if (!loader_is_builtin(l->l_handler_spec))
				builtin = false;
		}
		if (builtin) {
			struct hinst *hi = xcalloc(cf->cf_nlisteners,
			    sizeof(*hi));

			rc = handler_prepare(cf, hi, &d);
			FUZZ_CHECK((rc == 0) == (d.d_count == 0));
			for (size_t i = 0; i < d.d_count; i++)
				FUZZ_CHECK(fuzz_is_diag(d.d_msgs[i]));
			if (rc == 0)
				handler_release(cf, hi);
			free(hi);
		}
		config_free(cf);
	}
	diag_fini(&d);
	return 0;
}
