/* SPDX-License-Identifier: ISC */
/*
 * greet.c - an example plugin that reads options in init and keeps
 * per-request data: it greets the client with options.greeting (default
 * "hello"), then answers each line with its number in the conversation,
 * and says how many lines it saw when the client leaves.
 *
 *   { name = "greet"; address = "127.0.0.1"; port = 7070;
 *     handler = "greet"; options = { greeting = "welcome"; }; }
 */
#include <stdlib.h>
#include <string.h>
#include <syslog.h>

#include <sockserverd.h>

struct greet {			/* the instance: one per listener */
	char	*greeting;
};

struct greet_conn {		/* per request */
	unsigned long lines;
};

static int
greet_init(void **instance, const config_setting_t *options)
{
	struct greet		*g;
	const char		*text = "hello";
	const config_setting_t	*s = NULL;

	if (options != NULL &&
	    (s = config_setting_get_member(options, "greeting")) != NULL) {
		if (config_setting_type(s) != CONFIG_TYPE_STRING) {
			ssd_option_error(s, "\"greeting\" must be a string");
			return -1;
		}
		text = config_setting_get_string(s);
	}
	/* options is only valid during init: keep a copy. */
	if ((g = calloc(1, sizeof(*g))) == NULL ||
	    (g->greeting = strdup(text)) == NULL) {
		free(g);
		return -1;
	}
	*instance = g;
	return 0;
}

static void
greet_fini(void *instance)
{
	struct greet *g = instance;

	free(g->greeting);
	free(g);
}

static int
greet_setup(struct ssd_request *rq)
{
	struct greet_conn *c = calloc(1, sizeof(*c));

	if (c == NULL)
		return -1;
	ssd_set_data(rq, c);
	return 0;
}

static int
greet_handle(struct ssd_request *rq)
{
	struct greet		*g = ssd_instance(rq);
	struct greet_conn	*c = ssd_data(rq);
	char			 line[512];
	ssize_t			 n;

	if (ssd_printf(rq, "%s, %s\n", g->greeting, ssd_peer(rq)) == -1)
		return -1;
	while ((n = ssd_readline(rq, line, sizeof(line))) > 0)
		if (ssd_printf(rq, "%lu: %s", ++c->lines, line) == -1)
			return -1;
	return n == 0 ? 0 : -1;
}

static void
greet_finish(struct ssd_request *rq)
{
	struct greet_conn *c = ssd_data(rq);

	ssd_log(rq, LOG_INFO, "%lu lines", c->lines);
	free(c);
}

SSD_HANDLER(greet) = {
	.abi = SSD_ABI_VERSION,
	.name = "greet",
	.description = "example: greets with options.greeting, numbers lines",
	.init = greet_init,
	.fini = greet_fini,
	.setup = greet_setup,
	.handle = greet_handle,
	.finish = greet_finish,
};
