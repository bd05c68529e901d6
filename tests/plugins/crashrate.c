/* SPDX-License-Identifier: ISC */
/*
 * crashrate.c - a benchmark fixture: an echo (each chunk read is written
 * back) that crashes its process with SIGSEGV on one request in
 * options.every (100 by default), chosen at random as each message (a
 * chunk read) comes, before it is echoed: the crash storm of
 * worker_processes (make bench).  A client that sends one message per
 * connection has one draw per connection; a ping-pong client, one per
 * ping.
 */
#include <signal.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include <sockserverd.h>

struct crashrate {
	int		every;
	unsigned	seed;
};

static int
crashrate_init(void **instance, const config_setting_t *options)
{
	struct crashrate	*c = calloc(1, sizeof(*c));
	int			 every = 100;

	if (c == NULL)
		return -1;
	if (options != NULL)
		config_setting_lookup_int(options, "every", &every);
	if (every < 1) {
		ssd_option_error(options, "\"every\" must be at least 1");
		free(c);
		return -1;
	}
	c->every = every;
	*instance = c;
	return 0;
}

static void
crashrate_fini(void *instance)
{
	free(instance);
}

static int
crashrate_handle(struct ssd_request *rq)
{
	struct crashrate	*c = ssd_instance(rq);
	static unsigned		 seed;
	char			 buf[4096];
	ssize_t			 n;

	/* Per process: each worker draws its own numbers. */
	if (seed == 0)
		seed = (unsigned)getpid() ^ (unsigned)time(NULL);
	while ((n = ssd_read(rq, buf, sizeof(buf))) > 0) {
		if (rand_r(&seed) % c->every == 0)
			raise(SIGSEGV);
		if (ssd_write(rq, buf, (size_t)n) == -1)
			return -1;
	}
	return n == 0 ? 0 : -1;
}

SSD_HANDLER(crashrate) = {
	.abi = SSD_ABI_VERSION,
	.name = "crashrate",
	.description = "bench fixture: echo that crashes on 1 message in N",
	.init = crashrate_init,
	.fini = crashrate_fini,
	.handle = crashrate_handle,
};
