/* SPDX-License-Identifier: ISC */
/*
 * env.c - a test fixture: answers with what ssd_env says, one
 * "NAME=value" line per name that is set, for stream and dgram alike (the
 * same list exec uses, and two names that are never set).
 */
#include <sockserverd.h>

static const char *const env_names[] = {
	"PROTO", "TCPREMOTEIP", "TCPREMOTEPORT", "TCPLOCALIP", "TCPLOCALPORT",
	"HTTPS", "SSL_PROTOCOL", "SSL_CIPHER", "SSL_TLS_SNI",
	"SSL_CLIENT_VERIFY", "SSL_CLIENT_S_DN", "SSL_CLIENT_I_DN",
	"PATH", "SSL_NONSENSE",
};

static int
env_handle(struct ssd_request *rq)
{
	const char	*v;
	char		 buf[64];

	/* a stream client says when it is ready (after its handshake) */
	if (ssd_socktype(rq) == SOCK_STREAM && ssd_readline(rq, buf,
	    sizeof(buf)) <= 0)
		return -1;
	for (size_t i = 0; i < sizeof(env_names) / sizeof(env_names[0]); i++)
		if ((v = ssd_env(rq, env_names[i])) != NULL &&
		    ssd_printf(rq, "%s=%s\n", env_names[i], v) == -1)
			return -1;
	return 0;
}

SSD_HANDLER(env) = {
	.abi = SSD_ABI_VERSION,
	.name = "env",
	.description = "test fixture: the values of ssd_env",
	.handle = env_handle,
};
