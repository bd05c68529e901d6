/* SPDX-License-Identifier: ISC */
/*
 * initfail.c - a test fixture: init insists on an integer option "size"
 * between 1 and 10 and reports anything else with ssd_option_error.
 */
#include <stdlib.h>

#include <sockserverd.h>

static int
initfail_init(void **instance, const config_setting_t *options)
{
	const config_setting_t	*s;
	int			*size;

	s = options != NULL ? config_setting_get_member(options, "size") :
	    NULL;
	if (s == NULL || config_setting_type(s) != CONFIG_TYPE_INT ||
	    config_setting_get_int(s) < 1 || config_setting_get_int(s) > 10) {
		ssd_option_error(s != NULL ? s : options,
		    "option \"size\" must be an integer from 1 to 10");
		return -1;
	}
	if ((size = malloc(sizeof(*size))) == NULL)
		return -1;
	*size = config_setting_get_int(s);
	*instance = size;
	return 0;
}

static void
initfail_fini(void *instance)
{
	free(instance);
}

static int
initfail_handle(struct ssd_request *rq)
{
	return ssd_printf(rq, "size %d\n", *(int *)ssd_instance(rq));
}

SSD_HANDLER(initfail) = {
	.abi = SSD_ABI_VERSION,
	.name = "initfail",
	.description = "test fixture: checks its options",
	.init = initfail_init,
	.fini = initfail_fini,
	.handle = initfail_handle,
};
