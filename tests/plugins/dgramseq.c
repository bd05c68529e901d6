/* SPDX-License-Identifier: ISC */
/*
 * dgramseq.c - a test fixture for datagrams served in batches: setup reads
 * the datagram into per-request data (ssd_set_data) and refuses one that
 * starts with "no"; handle sleeps 0.3 s on one that starts with "sleep"
 * (so that what follows queues up in the socket), and answers
 * "PAYLOAD setups=S finishes=F", the listener's counts so far; finish
 * frees the data (a missing finish leaks under the sanitizers) and counts.
 */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sockserverd.h>

struct dgramseq {
	atomic_uint	setups, finishes;
};

struct dgramseq_data {
	char	buf[512];
	size_t	len;
};

static int
dgramseq_init(void **instance, const config_setting_t *options)
{
	struct dgramseq *s;

	(void)options;
	if ((s = calloc(1, sizeof(*s))) == NULL)
		return -1;
	*instance = s;
	return 0;
}

static void
dgramseq_fini(void *instance)
{
	free(instance);
}

static int
dgramseq_setup(struct ssd_request *rq)
{
	struct dgramseq		*s = ssd_instance(rq);
	struct dgramseq_data	*d;
	ssize_t			 n;

	if ((d = calloc(1, sizeof(*d))) == NULL)
		return -1;
	if ((n = ssd_read(rq, d->buf, sizeof(d->buf))) < 0) {
		free(d);
		return -1;
	}
	d->len = (size_t)n;
	if (d->len >= 2 && memcmp(d->buf, "no", 2) == 0) {
		free(d);
		return 1;
	}
	atomic_fetch_add(&s->setups, 1);
	ssd_set_data(rq, d);
	return 0;
}

static int
dgramseq_handle(struct ssd_request *rq)
{
	struct dgramseq		*s = ssd_instance(rq);
	struct dgramseq_data	*d = ssd_data(rq);
	struct timespec		 ts = { 0, 300000000 };

	if (d->len >= 5 && memcmp(d->buf, "sleep", 5) == 0)
		while (nanosleep(&ts, &ts) == -1)
			continue;
	if (ssd_write(rq, d->buf, d->len) == -1)
		return -1;
	return ssd_printf(rq, " setups=%u finishes=%u",
	    atomic_load(&s->setups), atomic_load(&s->finishes));
}

static void
dgramseq_finish(struct ssd_request *rq)
{
	struct dgramseq *s = ssd_instance(rq);

	free(ssd_data(rq));
	ssd_set_data(rq, NULL);
	atomic_fetch_add(&s->finishes, 1);
}

SSD_HANDLER(dgramseq) = {
	.abi = SSD_ABI_VERSION,
	.name = "dgramseq",
	.description = "test fixture: per-datagram setup/handle/finish",
	.init = dgramseq_init,
	.fini = dgramseq_fini,
	.setup = dgramseq_setup,
	.handle = dgramseq_handle,
	.finish = dgramseq_finish,
};
