/* SPDX-License-Identifier: ISC */
/*
 * slow.c - a test fixture: init sleeps options.init_delay seconds (a slow
 * plugin at reload), handle sleeps options.delay seconds after reading the
 * request (a slow request in flight), then echoes what it read.  Meant for
 * the blocking models: the sleep does not yield under event.
 */
#include <stdlib.h>
#include <time.h>

#include <sockserverd.h>

struct slow {
	double	init_delay, delay;
};

static void
slow_sleep(double s)
{
	struct timespec ts;

	ts.tv_sec = (time_t)s;
	ts.tv_nsec = (long)((s - (double)ts.tv_sec) * 1e9);
	while (nanosleep(&ts, &ts) == -1)
		continue;
}

static double
slow_option(const config_setting_t *options, const char *name)
{
	const config_setting_t *s = options != NULL ?
	    config_setting_get_member(options, name) : NULL;

	if (s == NULL)
		return 0;
	return config_setting_type(s) == CONFIG_TYPE_INT ?
	    config_setting_get_int(s) : config_setting_get_float(s);
}

static int
slow_init(void **instance, const config_setting_t *options)
{
	struct slow *s;

	if ((s = malloc(sizeof(*s))) == NULL)
		return -1;
	s->init_delay = slow_option(options, "init_delay");
	s->delay = slow_option(options, "delay");
	slow_sleep(s->init_delay);
	*instance = s;
	return 0;
}

static void
slow_fini(void *instance)
{
	free(instance);
}

static int
slow_handle(struct ssd_request *rq)
{
	struct slow	*s = ssd_instance(rq);
	char		 buf[512];
	ssize_t		 n;

	if ((n = ssd_read(rq, buf, sizeof(buf))) < 0)
		return -1;
	slow_sleep(s->delay);
	return ssd_write(rq, buf, (size_t)n);
}

SSD_HANDLER(slow) = {
	.abi = SSD_ABI_VERSION,
	.name = "slow",
	.description = "test fixture: slow init and slow requests",
	.init = slow_init,
	.fini = slow_fini,
	.handle = slow_handle,
};
