/* SPDX-License-Identifier: ISC */
/*
 * config.c - libconfig file -> struct config, with complete validation.
 * Every problem is collected as "FILE:LINE: message" in a struct diag; this
 * file never logs, never exits and never touches a socket, so that -t can
 * list every problem and a reload can reject a bad file harmlessly.
 */
#include <sys/stat.h>

#include <ctype.h>
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <libgen.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "daemon.h"

/* One source file's lines, to re-read integer literals (see below). */
struct config_src {
	char		*s_name;
	char		*s_text;	/* the whole file, NUL-terminated */
	size_t		*s_lines;	/* offset of each line */
	size_t		 s_nlines;
};

struct config_ctx {
	struct config		*c_cfg;
	struct diag		*c_diag;
	struct config_src	*c_srcs;
	size_t			 c_nsrcs;
};

static const char *const config_model_names[] = {
	[CONC_SYNC] = "sync",
	[CONC_THREAD] = "thread",
	[CONC_FORK] = "fork",
	[CONC_EVENT] = "event",
};

static const char *const config_global_keys[] = {
	"handler_dir", "user", "group", "pid_file", "log_level", "log_target",
	"shutdown_timeout", "max_connections", "worker_processes",
	"listeners", NULL
};

static const char *const config_listener_keys[] = {
	"name", "family", "type", "address", "port", "queue_size",
	"reuse_address", "reuse_port", "v6only", "timeout", "concurrency",
	"max_connections", "max_packet_size", "handler", "options", "allow",
	"deny", "unix_mode", "max_per_source", "workers", "proxy_protocol",
	"rate_per_source", "burst_per_source", "source_prefix_v4",
	"source_prefix_v6", "proxy_from", "tls", "access_log", NULL
};

static const char *const config_tls_keys[] = {
	"certificate", "key", "sni", "client_ca", "verify_client",
	"min_version", "ciphers", "ciphersuites", "alpn", "session_tickets",
	NULL
};
static const char *const config_sni_keys[] = {
	"server_name", "certificate", "key", NULL
};

static bool
config_key_is_known(const char *const *keys, const char *name)
{
	for (; *keys != NULL; keys++)
		if (strcmp(*keys, name) == 0)
			return true;
	return false;
}

static void
config_check_keys(struct config_ctx *c, const config_setting_t *group,
    const char *const *keys, const char *what)
{
	int n = config_setting_length(group);

	for (int i = 0; i < n; i++) {
		config_setting_t *s = config_setting_get_elem(group, (unsigned)i);
		const char *name = config_setting_name(s);

		if (name != NULL && !config_key_is_known(keys, name))
			diag_setting(c->c_diag, s, "unknown %ssetting \"%s\"",
			    what, name);
	}
}

/*
 * libconfig 1.5 parses integer literals with 32-bit arithmetic and wraps
 * silently (4294967297 reads back as 1, 99999999999999999999 as -1).  So
 * the literal is read again from the source line and parsed as 64 bits;
 * when it is there and disagrees with libconfig, the literal wins.
 */
static struct config_src *
config_src_get(struct config_ctx *c, const char *name)
{
	struct config_src	*src;
	FILE			*fp;
	size_t			 cap = 0, len = 0, n;
	char			 buf[4096];

	for (size_t i = 0; i < c->c_nsrcs; i++)
		if (strcmp(c->c_srcs[i].s_name, name) == 0)
			return &c->c_srcs[i];
	c->c_srcs = xreallocarray(c->c_srcs, c->c_nsrcs + 1,
	    sizeof(*c->c_srcs));
	src = &c->c_srcs[c->c_nsrcs++];
	memset(src, 0, sizeof(*src));
	src->s_name = xstrdup(name);
	if ((fp = fopen(name, "r")) == NULL)
		return src;
	src->s_text = NULL;
	while ((n = fread(buf, 1, sizeof(buf), fp)) > 0) {
		if (len + n + 1 > cap) {
			cap = (len + n + 1) * 2;
			src->s_text = xreallocarray(src->s_text, cap, 1);
		}
		memcpy(src->s_text + len, buf, n);
		len += n;
	}
	fclose(fp);
	if (src->s_text == NULL)
		return src;
	src->s_text[len] = '\0';
	for (char *p = src->s_text, *nl; p != NULL; p = nl) {
		nl = strchr(p, '\n');
		if (nl != NULL)
			nl++;
		src->s_lines = xreallocarray(src->s_lines, src->s_nlines + 1,
		    sizeof(*src->s_lines));
		src->s_lines[src->s_nlines++] = (size_t)(p - src->s_text);
	}
	return src;
}

static void
config_src_free(struct config_ctx *c)
{
	for (size_t i = 0; i < c->c_nsrcs; i++) {
		free(c->c_srcs[i].s_name);
		free(c->c_srcs[i].s_text);
		free(c->c_srcs[i].s_lines);
	}
	free(c->c_srcs);
}

/* Counts the settings called name on file:line that come before target in
 * document order; true once target is reached. */
static bool
config_count_before(const config_setting_t *node,
    const config_setting_t *target, const char *name, const char *file,
    unsigned line, int *count)
{
	const char *n = config_setting_name(node);
	const char *f = config_setting_source_file(node);

	if (node == target)
		return true;
	if (n != NULL && strcmp(n, name) == 0 && f != NULL &&
	    strcmp(f, file) == 0 && config_setting_source_line(node) == line)
		(*count)++;
	if (config_setting_is_aggregate(node))
		for (int i = 0; i < config_setting_length(node); i++)
			if (config_count_before(config_setting_get_elem(node,
			    (unsigned)i), target, name, file, line, count))
				return true;
	return false;
}

/* Skips blanks, newlines and comments (#, //, and C style). */
static const char *
config_skip_space(const char *p)
{
	for (;;) {
		if (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n')
			p++;
		else if (*p == '#' || (p[0] == '/' && p[1] == '/'))
			p += strcspn(p, "\n");
		else if (p[0] == '/' && p[1] == '*') {
			const char *e = strstr(p + 2, "*/");

			p = e != NULL ? e + 2 : p + strlen(p);
		} else
			return p;
	}
}

static bool
config_is_name_char(char ch)
{
	return isalnum((unsigned char)ch) || ch == '_' || ch == '-' ||
	    ch == '*';
}

/*
 * Finds the setting's "name = literal" (or "name : literal") in its
 * source, from the setting's line on, skipping comments and strings and
 * the settings of the same name that come before it on that line, and
 * parses the literal as 64 bits: decimal, or hexadecimal after 0x, as
 * libconfig reads it.  Returns 0 with *v, 1 if the literal overflows 64
 * bits, -1 if it cannot be found or does not agree with libconfig's
 * (32-bit) reading of it; then libconfig's value stands.
 */
static int
config_int_literal(struct config_ctx *c, const config_setting_t *s,
    long long *v)
{
	const char		*file = config_setting_source_file(s);
	const char		*name = config_setting_name(s);
	unsigned		 line = config_setting_source_line(s);
	struct config_src	*src;
	const char		*p, *q;
	char			*path, *end;
	size_t			 nlen;
	int			 skip = 0, base;
	bool			 neg;
	unsigned long long	 u;
	long long		 ll;

	if (file == NULL || name == NULL || line == 0)
		return -1;
	path = diag_source_path(c->c_diag, file);
	src = config_src_get(c, path);
	free(path);
	if (src->s_text == NULL || line > src->s_nlines)
		return -1;
	config_count_before(config_root_setting(&c->c_cfg->cf_lc), s, name,
	    file, line, &skip);
	nlen = strlen(name);
	for (p = src->s_text + src->s_lines[line - 1]; *p != '\0';) {
		q = config_skip_space(p);
		if (q != p) {
			p = q;
			continue;
		}
		if (*p == '"') {
			for (p++; *p != '\0' && *p != '"'; p++)
				if (*p == '\\' && p[1] != '\0')
					p++;
			if (*p == '"')
				p++;
			continue;
		}
		if (!isalpha((unsigned char)*p) && *p != '*') {
			p++;
			continue;
		}
		for (q = p; config_is_name_char(*q); q++)
			continue;
		if ((size_t)(q - p) != nlen || strncmp(p, name, nlen) != 0) {
			p = q;
			continue;
		}
		q = config_skip_space(q);
		if (*q != '=' && *q != ':') {
			p = q;
			continue;
		}
		if (skip-- > 0) {
			p = q + 1;
			continue;
		}
		q = config_skip_space(q + 1);
		neg = false;
		if (*q == '-' || *q == '+')
			neg = *q++ == '-';
		if (!isdigit((unsigned char)*q))
			return -1;
		base = q[0] == '0' && (q[1] == 'x' || q[1] == 'X') ? 16 : 10;
		errno = 0;
		u = strtoull(q, &end, base);
		if (errno == ERANGE ||
		    u > (neg ? (unsigned long long)LLONG_MAX + 1 :
		    (unsigned long long)LLONG_MAX))
			return 1;
		ll = neg ? (long long)(0 - u) : (long long)u;
		/* A safety net: this must be the literal libconfig read. */
		if (config_setting_type(s) == CONFIG_TYPE_INT &&
		    (int32_t)(uint32_t)(unsigned long long)ll !=
		    config_setting_get_int(s))
			return -1;
		*v = ll;
		return 0;
	}
	return -1;
}

static const char *
config_type_name(int type)
{
	switch (type) {
	case CONFIG_TYPE_INT:
	case CONFIG_TYPE_INT64:
		return "an integer";
	case CONFIG_TYPE_FLOAT:
		return "a number";
	case CONFIG_TYPE_STRING:
		return "a string";
	case CONFIG_TYPE_BOOL:
		return "a boolean (true or false)";
	case CONFIG_TYPE_GROUP:
		return "a group";
	case CONFIG_TYPE_ARRAY:
		return "an array";
	case CONFIG_TYPE_LIST:
		return "a list";
	}
	return "a setting";
}

static bool
config_expect(struct config_ctx *c, const config_setting_t *s, int type)
{
	int t = config_setting_type(s);

	if (t == type || (type == CONFIG_TYPE_INT && t == CONFIG_TYPE_INT64) ||
	    (type == CONFIG_TYPE_FLOAT && (t == CONFIG_TYPE_INT ||
	    t == CONFIG_TYPE_INT64)))
		return true;
	diag_setting(c->c_diag, s, "\"%s\" must be %s, not %s",
	    config_setting_name(s), config_type_name(type),
	    t == CONFIG_TYPE_FLOAT ? "a floating-point number" :
	    config_type_name(t));
	return false;
}

/* The helpers below return true when the key is present and valid. */
static bool
config_get_string(struct config_ctx *c, const config_setting_t *g,
    const char *key, const config_setting_t **s_r, const char **v)
{
	const config_setting_t *s = config_setting_get_member(g, key);

	if (s_r != NULL)
		*s_r = s;
	if (s == NULL || !config_expect(c, s, CONFIG_TYPE_STRING))
		return false;
	*v = config_setting_get_string(s);
	if (**v == '\0') {
		diag_setting(c->c_diag, s, "\"%s\" must not be empty", key);
		return false;
	}
	return true;
}

static bool
config_get_int(struct config_ctx *c, const config_setting_t *g,
    const char *key, long long min, long long max, long *v)
{
	const config_setting_t	*s = config_setting_get_member(g, key);
	long long		 ll;
	int			 rc;

	if (s == NULL || !config_expect(c, s, CONFIG_TYPE_INT))
		return false;
	ll = config_setting_get_int64(s);
	rc = config_int_literal(c, s, &ll);
	if (rc == 1) {
		diag_setting(c->c_diag, s, "\"%s\" must be between %lld and "
		    "%lld (the value does not fit in 64 bits)", key, min, max);
		return false;
	}
	if (ll < min || ll > max) {
		diag_setting(c->c_diag, s, "\"%s\" must be between %lld and "
		    "%lld, not %lld", key, min, max, ll);
		return false;
	}
	*v = (long)ll;
	return true;
}

static bool
config_get_float(struct config_ctx *c, const config_setting_t *g,
    const char *key, double min, double max, double *v)
{
	const config_setting_t	*s = config_setting_get_member(g, key);
	double			 d;
	long long		 ll;

	if (s == NULL || !config_expect(c, s, CONFIG_TYPE_FLOAT))
		return false;
	if (config_setting_type(s) == CONFIG_TYPE_FLOAT)
		d = config_setting_get_float(s);
	else {
		ll = config_setting_get_int64(s);
		if (config_int_literal(c, s, &ll) == 1)
			ll = LLONG_MAX;
		d = (double)ll;
	}
	if (!(d >= min && d <= max)) {
		diag_setting(c->c_diag, s, "\"%s\" must be between %.10g and "
		    "%.10g, not %.10g", key, min, max, d);
		return false;
	}
	*v = d;
	return true;
}

static bool
config_get_bool(struct config_ctx *c, const config_setting_t *g,
    const char *key, bool *v)
{
	const config_setting_t *s = config_setting_get_member(g, key);

	if (s == NULL || !config_expect(c, s, CONFIG_TYPE_BOOL))
		return false;
	*v = config_setting_get_bool(s) != 0;
	return true;
}

/* Returns the index of s in names[], or -1 after a diagnostic. */
static int
config_get_enum(struct config_ctx *c, const config_setting_t *g,
    const char *key, const char *const *names, size_t n, const char *list)
{
	const config_setting_t	*s;
	const char		*v;

	if (!config_get_string(c, g, key, &s, &v))
		return -1;
	for (size_t i = 0; i < n; i++)
		if (names[i] != NULL && strcmp(names[i], v) == 0)
			return (int)i;
	diag_setting(c->c_diag, s, "\"%s\" must be %s, not \"%s\"", key, list,
	    v);
	return -1;
}

static bool
config_listener_name_is_valid(const char *s)
{
	if (*s == '\0')
		return false;
	for (; *s != '\0'; s++)
		if (!isalnum((unsigned char)*s) && *s != '_' && *s != '.' &&
		    *s != '-')
			return false;
	return true;
}

static void
config_cidrs(struct config_ctx *c, const config_setting_t *g, const char *key,
    struct cidr **list_r, size_t *n_r)
{
	const config_setting_t	*s = config_setting_get_member(g, key);
	int			 n;

	*list_r = NULL;
	*n_r = 0;
	if (s == NULL)
		return;
	if (config_setting_type(s) != CONFIG_TYPE_ARRAY &&
	    config_setting_type(s) != CONFIG_TYPE_LIST) {
		diag_setting(c->c_diag, s, "\"%s\" must be an array of "
		    "strings, such as [\"10.0.0.0/8\", \"::1\"]", key);
		return;
	}
	n = config_setting_length(s);
	*list_r = xcalloc((size_t)n, sizeof(struct cidr));
	for (int i = 0; i < n; i++) {
		const config_setting_t *e = config_setting_get_elem(s,
		    (unsigned)i);

		if (config_setting_type(e) != CONFIG_TYPE_STRING) {
			diag_setting(c->c_diag, e, "\"%s\" must be an array of "
			    "strings, such as [\"10.0.0.0/8\", \"::1\"]", key);
			continue;
		}
		if (acl_parse(config_setting_get_string(e),
		    &(*list_r)[*n_r]) == -1) {
			diag_setting(c->c_diag, e, "\"%s\" entry \"%s\" is not "
			    "an IP address or CIDR block", key,
			    config_setting_get_string(e));
			continue;
		}
		(*n_r)++;
	}
}

/* A string key that may be empty (""): true when present and a string. */
static bool
config_get_string_or_empty(struct config_ctx *c, const config_setting_t *g,
    const char *key, const char **v)
{
	const config_setting_t *s = config_setting_get_member(g, key);

	if (s == NULL || !config_expect(c, s, CONFIG_TYPE_STRING))
		return false;
	*v = config_setting_get_string(s);
	return true;
}

/* An absolute path: true when present and valid. */
static bool
config_get_path(struct config_ctx *c, const config_setting_t *g,
    const char *key, const char **v)
{
	const config_setting_t *s;

	if (!config_get_string(c, g, key, &s, v))
		return false;
	if ((*v)[0] != '/') {
		diag_setting(c->c_diag, s, "\"%s\" must be an absolute path, "
		    "not \"%s\"", key, *v);
		return false;
	}
	return true;
}

/* certificate and key of a tls or sni group: both required */
static void
config_tls_cert(struct config_ctx *c, const config_setting_t *g,
    struct tls_cert *tc, const char *what)
{
	tc->c_group = g;
	if (!config_get_path(c, g, "certificate", &tc->c_cert) &&
	    config_setting_get_member(g, "certificate") == NULL)
		diag_setting(c->c_diag, g, "%s has no \"certificate\"", what);
	if (!config_get_path(c, g, "key", &tc->c_key) &&
	    config_setting_get_member(g, "key") == NULL)
		diag_setting(c->c_diag, g, "%s has no \"key\"", what);
}

/* "example.org" or "*.example.org": labels of [A-Za-z0-9-], a wildcard
 * only as the whole first label. */
static bool
config_server_name_is_valid(const char *s)
{
	size_t label = 0, len = strlen(s);

	if (len == 0 || len > 253)
		return false;
	if (s[0] == '*') {
		if (s[1] != '.' || s[2] == '\0')
			return false;
		s += 2;
	}
	for (; *s != '\0'; s++) {
		if (*s == '.') {
			if (label == 0)
				return false;
			label = 0;
		} else if (isalnum((unsigned char)*s) || *s == '-') {
			if (++label > 63)
				return false;
		} else
			return false;
	}
	return label > 0;
}

static void
config_tls_alpn(struct config_ctx *c, const config_setting_t *s,
    struct tls_settings *t)
{
	int	 n;
	size_t	 len = 0;

	if (config_setting_type(s) != CONFIG_TYPE_ARRAY &&
	    config_setting_type(s) != CONFIG_TYPE_LIST) {
		diag_setting(c->c_diag, s, "\"alpn\" must be an array of "
		    "strings, such as [\"h2\", \"http/1.1\"]");
		return;
	}
	if ((n = config_setting_length(s)) == 0)
		return;
	t->t_alpn = xmalloc((size_t)n * 256);
	for (int i = 0; i < n; i++) {
		const config_setting_t *e = config_setting_get_elem(s,
		    (unsigned)i);
		const char *v;
		size_t vl;

		if (config_setting_type(e) != CONFIG_TYPE_STRING) {
			diag_setting(c->c_diag, e, "\"alpn\" must be an array "
			    "of strings, such as [\"h2\", \"http/1.1\"]");
			continue;
		}
		v = config_setting_get_string(e);
		if ((vl = strlen(v)) == 0 || vl > 255) {
			diag_setting(c->c_diag, e, "\"alpn\" protocol names "
			    "are 1 to 255 bytes long");
			continue;
		}
		t->t_alpn[len++] = (unsigned char)vl;
		memcpy(t->t_alpn + len, v, vl);
		len += vl;
	}
	t->t_alpn_len = len;
}

static const char *const config_verify_names[] = {
	[TLS_VERIFY_NONE] = "none", [TLS_VERIFY_OPTIONAL] = "optional",
	[TLS_VERIFY_REQUIRE] = "require",
};
static const char *const config_tls_version_names[] = { "1.2", "1.3" };

/* The tls group of listener l, then its files (tls.c). */
static void
config_tls(struct config_ctx *c, const config_setting_t *g,
    struct listener *l)
{
	struct tls_settings	*t;
	const config_setting_t	*s, *e;
	size_t			 before = c->c_diag->d_count;
	int			 i, n;

	if (!config_expect(c, g, CONFIG_TYPE_GROUP))
		return;
	t = l->l_tls = xcalloc(1, sizeof(*t));
	t->t_setting = g;
	t->t_min_version = 12;
	t->t_tickets = true;
	config_check_keys(c, g, config_tls_keys, "tls ");
	config_tls_cert(c, g, &t->t_main, "\"tls\"");
	if ((s = config_setting_get_member(g, "sni")) != NULL) {
		if (config_setting_type(s) != CONFIG_TYPE_LIST &&
		    config_setting_type(s) != CONFIG_TYPE_ARRAY)
			diag_setting(c->c_diag, s, "\"sni\" must be a list of "
			    "groups: ( { server_name = ...; certificate = "
			    "...; key = ...; } )");
		else if ((n = config_setting_length(s)) > 0) {
			t->t_sni = xcalloc((size_t)n, sizeof(*t->t_sni));
			for (i = 0; i < n; i++) {
				struct tls_cert *tc = &t->t_sni[t->t_nsni];
				const char *v;

				e = config_setting_get_elem(s, (unsigned)i);
				/* (An element has no name for config_expect
				 * to print.) */
				if (config_setting_type(e) != CONFIG_TYPE_GROUP) {
					diag_setting(c->c_diag, e, "each sni "
					    "entry must be a group: { server_name "
					    "= ...; certificate = ...; key = ...; }");
					continue;
				}
				config_check_keys(c, e, config_sni_keys,
				    "sni ");
				if (config_get_string(c, e, "server_name",
				    NULL, &v)) {
					if (!config_server_name_is_valid(v))
						diag_setting(c->c_diag,
						    config_setting_get_member(e,
						    "server_name"), "\"server_name\" "
						    "\"%s\" is not a host name or "
						    "\"*.\" and a domain", v);
					tc->c_name = v;
				} else if (config_setting_get_member(e,
				    "server_name") == NULL)
					diag_setting(c->c_diag, e, "sni entry "
					    "has no \"server_name\"");
				config_tls_cert(c, e, tc, "sni entry");
				for (size_t k = 0; tc->c_name != NULL &&
				    k < t->t_nsni; k++)
					if (t->t_sni[k].c_name != NULL &&
					    strcasecmp(t->t_sni[k].c_name,
					    tc->c_name) == 0)
						diag_setting(c->c_diag, e,
						    "sni server_name \"%s\" is "
						    "given twice", tc->c_name);
				t->t_nsni++;
			}
		}
	}
	if (config_get_path(c, g, "client_ca", &t->t_client_ca) == false)
		t->t_client_ca = NULL;
	if ((i = config_get_enum(c, g, "verify_client", config_verify_names, 3,
	    "none, optional or require")) >= 0)
		t->t_verify = (enum tls_verify)i;
	if (t->t_verify != TLS_VERIFY_NONE && t->t_client_ca == NULL &&
	    config_setting_get_member(g, "client_ca") == NULL)
		diag_setting(c->c_diag, config_setting_get_member(g,
		    "verify_client"), "\"verify_client\" = \"%s\" needs "
		    "\"client_ca\", the CAs that sign client certificates",
		    config_verify_names[t->t_verify]);
	if ((i = config_get_enum(c, g, "min_version",
	    config_tls_version_names, 2, "\"1.2\" or \"1.3\"")) >= 0)
		t->t_min_version = i == 0 ? 12 : 13;
	if (config_get_string_or_empty(c, g, "ciphers", &t->t_ciphers) &&
	    t->t_ciphers[0] == '\0')
		t->t_ciphers = NULL;
	if (config_get_string_or_empty(c, g, "ciphersuites",
	    &t->t_ciphersuites) && t->t_ciphersuites[0] == '\0')
		t->t_ciphersuites = NULL;
	if ((s = config_setting_get_member(g, "alpn")) != NULL)
		config_tls_alpn(c, s, t);
	config_get_bool(c, g, "session_tickets", &t->t_tickets);
	/* The files, once the settings are right. */
	if (c->c_diag->d_count == before)
		tls_build(t, l->l_name != NULL ? l->l_name : "?", c->c_diag);
}

static const char *const config_family_names[] = { "inet", "inet6", "unix" };
static const int config_family_values[] = { AF_INET, AF_INET6, AF_UNIX };
static const char *const config_type_names[] = { "stream", "dgram" };

/* A key that only makes sense for some listeners. */
static void
config_not_for(struct config_ctx *c, const config_setting_t *g,
    const char *key, const char *why)
{
	const config_setting_t *s = config_setting_get_member(g, key);

	if (s != NULL)
		diag_setting(c->c_diag, s, "\"%s\" %s", key, why);
}

static struct listener *
config_listener(struct config_ctx *c, const config_setting_t *g)
{
	struct listener		*l;
	const config_setting_t	*s;
	const char		*v;
	size_t			 before = c->c_diag->d_count;
	long			 n;
	int			 i;
	char			 err[256];

	l = xcalloc(1, sizeof(*l));
	l->l_config = c->c_cfg;
	l->l_setting = g;
	l->l_family = AF_UNSPEC;
	l->l_type = SOCK_STREAM;
	l->l_port = -1;
	l->l_queue_size = 128;
	l->l_reuse_address = true;
	l->l_v6only = true;
	l->l_timeout = 60.0;
	l->l_model = CONC_EVENT;
	l->l_max_packet_size = 8192;
	l->l_unix_mode = 0666;
	l->l_workers = 1;
	l->l_source_prefix_v4 = 32;
	l->l_source_prefix_v6 = 128;

	if (config_setting_type(g) != CONFIG_TYPE_GROUP) {
		diag_setting(c->c_diag, g, "each listener must be a group "
		    "{ ... }, not %s", config_type_name(config_setting_type(g)));
		return l;
	}
	config_check_keys(c, g, config_listener_keys, "listener ");

	if (config_get_string(c, g, "name", &s, &v)) {
		if (!config_listener_name_is_valid(v))
			diag_setting(c->c_diag, s, "listener name \"%s\" may "
			    "contain only A-Z a-z 0-9 _ . -", v);
		else
			l->l_name = xstrdup(v);
	} else if (s == NULL)
		diag_setting(c->c_diag, g, "listener has no \"name\"");

	if ((i = config_get_enum(c, g, "family", config_family_names, 3,
	    "inet, inet6 or unix")) >= 0)
		l->l_family = config_family_values[i];
	if ((i = config_get_enum(c, g, "type", config_type_names, 2,
	    "stream or dgram")) >= 0)
		l->l_type = i == 0 ? SOCK_STREAM : SOCK_DGRAM;
	if (config_get_string(c, g, "address", &s, &v))
		l->l_address = xstrdup(v);
	else if (s == NULL)
		diag_setting(c->c_diag, g, "listener%s%s has no \"address\"",
		    l->l_name != NULL ? " " : "",
		    l->l_name != NULL ? l->l_name : "");
	if (config_get_int(c, g, "port", 0, 65535, &n))
		l->l_port = (int)n;
	if (config_get_int(c, g, "queue_size", 1, 65535, &n))
		l->l_queue_size = (int)n;
	config_get_bool(c, g, "reuse_address", &l->l_reuse_address);
	config_get_bool(c, g, "reuse_port", &l->l_reuse_port);
	config_get_bool(c, g, "v6only", &l->l_v6only);
	config_get_float(c, g, "timeout", 0, 31536000, &l->l_timeout);
	if ((i = config_get_enum(c, g, "concurrency", config_model_names, 4,
	    "sync, thread, fork or event")) >= 0) {
		l->l_model = (enum conc_model)i;
	}
	if (config_get_int(c, g, "max_connections", 0, INT_MAX, &n))
		l->l_max_connections = n;
	if (config_get_int(c, g, "max_packet_size", 1, 65535, &n))
		l->l_max_packet_size = (size_t)n;
	if (config_get_string(c, g, "handler", &s, &v)) {
		l->l_handler_setting = s;
		if (v[0] != '/' && !loader_name_is_valid(v))
			diag_setting(c->c_diag, s, "handler \"%s\" must be a "
			    "name (A-Z a-z 0-9 _ -) or an absolute path to a "
			    ".so file", v);
		else if (!loader_exists(v, c->c_cfg->cf_handler_dir, err,
		    sizeof(err)))
			diag_setting(c->c_diag, s, "%s", err);
		else
			l->l_handler_spec = xstrdup(v);
	} else if (s == NULL)
		diag_setting(c->c_diag, g, "listener%s%s has no \"handler\"",
		    l->l_name != NULL ? " " : "",
		    l->l_name != NULL ? l->l_name : "");
	if ((s = config_setting_get_member(g, "options")) != NULL &&
	    config_expect(c, s, CONFIG_TYPE_GROUP))
		l->l_options = s;
	config_cidrs(c, g, "allow", &l->l_allow, &l->l_nallow);
	config_cidrs(c, g, "deny", &l->l_deny, &l->l_ndeny);
	if (config_get_string(c, g, "unix_mode", &s, &v)) {
		char		*end;
		unsigned long	 mode;

		errno = 0;
		mode = strtoul(v, &end, 8);
		if (errno != 0 || *end != '\0' || mode > 07777 ||
		    !isdigit((unsigned char)v[0]))
			diag_setting(c->c_diag, s, "\"unix_mode\" must be an "
			    "octal mode such as \"0660\", not \"%s\"", v);
		else
			l->l_unix_mode = (mode_t)mode;
	}
	if (config_get_int(c, g, "max_per_source", 0, INT_MAX, &n))
		l->l_max_per_source = n;
	if (config_get_int(c, g, "workers", 1, 1024, &n))
		l->l_workers = n;
	config_get_bool(c, g, "proxy_protocol", &l->l_proxy_protocol);
	config_get_bool(c, g, "access_log", &l->l_access_log);
	config_get_float(c, g, "rate_per_source", 0, 1000000,
	    &l->l_rate_per_source);
	/* A bucket holds what one second brings, and at least one. */
	l->l_burst_per_source = ceil(l->l_rate_per_source);
	if (config_get_int(c, g, "burst_per_source", 1, 1000000, &n)) {
		l->l_burst_per_source = (double)n;
		if (l->l_rate_per_source <= 0)
			config_not_for(c, g, "burst_per_source", "needs "
			    "\"rate_per_source\" (the bucket refills at that "
			    "rate)");
	}
	if (config_get_int(c, g, "source_prefix_v4", 0, 32, &n))
		l->l_source_prefix_v4 = (int)n;
	if (config_get_int(c, g, "source_prefix_v6", 0, 128, &n))
		l->l_source_prefix_v6 = (int)n;
	config_cidrs(c, g, "proxy_from", &l->l_proxy_from,
	    &l->l_nproxy_from);
	if ((s = config_setting_get_member(g, "tls")) != NULL &&
	    l->l_type == SOCK_STREAM)
		config_tls(c, s, l);

	/* Keys that the rest of the listener rules out. */
	if (l->l_type == SOCK_STREAM)
		config_not_for(c, g, "max_packet_size", "applies to dgram "
		    "listeners only");
	if (l->l_type == SOCK_DGRAM) {
		config_not_for(c, g, "proxy_protocol", "applies to stream "
		    "listeners only");
		config_not_for(c, g, "tls", "applies to stream listeners "
		    "only (DTLS is not supported)");
		config_not_for(c, g, "queue_size", "applies to stream "
		    "listeners only");
	}
	if (l->l_model != CONC_EVENT)
		config_not_for(c, g, "workers", "applies to concurrency "
		    "\"event\" only");
	/* The header is read in the handler's process: a fork child's
	 * count of a client would never reach the daemon. */
	if (l->l_proxy_protocol && l->l_max_per_source > 0 &&
	    l->l_model == CONC_FORK)
		diag_setting(c->c_diag, config_setting_get_member(g,
		    "max_per_source"), "\"max_per_source\" with "
		    "\"proxy_protocol\" needs a concurrency other than fork");
	if (l->l_proxy_protocol && l->l_rate_per_source > 0 &&
	    l->l_model == CONC_FORK)
		diag_setting(c->c_diag, config_setting_get_member(g,
		    "rate_per_source"), "\"rate_per_source\" with "
		    "\"proxy_protocol\" needs a concurrency other than fork");
	if (!l->l_proxy_protocol)
		config_not_for(c, g, "proxy_from", "needs \"proxy_protocol = "
		    "true\" (it lists the proxies that may send the header)");

	/* Address, family and port together, once each is valid. */
	if (l->l_address == NULL || c->c_diag->d_count != before)
		return l;
	if (l->l_family == AF_UNSPEC)
		l->l_family = addr_guess_family(l->l_address);
	if (l->l_family == AF_UNIX) {
		config_not_for(c, g, "port", "does not apply to unix "
		    "listeners");
		config_not_for(c, g, "allow", "does not apply to unix "
		    "listeners (they have no client address)");
		config_not_for(c, g, "deny", "does not apply to unix "
		    "listeners (they have no client address)");
		config_not_for(c, g, "reuse_address", "does not apply to "
		    "unix listeners");
		config_not_for(c, g, "max_per_source", "does not apply to "
		    "unix listeners (they have no client address)");
		config_not_for(c, g, "rate_per_source", "does not apply to "
		    "unix listeners (they have no client address)");
		config_not_for(c, g, "burst_per_source", "does not apply to "
		    "unix listeners (they have no client address)");
		config_not_for(c, g, "source_prefix_v4", "does not apply to "
		    "unix listeners (they have no client address)");
		config_not_for(c, g, "source_prefix_v6", "does not apply to "
		    "unix listeners (they have no client address)");
		if (l->l_address[0] == '@')
			config_not_for(c, g, "unix_mode", "does not apply to "
			    "abstract (@) unix sockets, which have no file");
		config_not_for(c, g, "v6only", "applies to inet6 listeners "
		    "only");
		config_not_for(c, g, "reuse_port", "does not apply to unix "
		    "listeners");
	} else {
		config_not_for(c, g, "unix_mode", "applies to unix listeners "
		    "only");
		if (l->l_port < 0) {
			diag_setting(c->c_diag, g, "listener %s has no "
			    "\"port\" (required for inet and inet6)",
			    l->l_name);
			return l;
		}
	}
	if (c->c_diag->d_count != before)
		return l;
	if (addr_resolve(l->l_family, l->l_address, l->l_port, &l->l_addr,
	    &l->l_addrlen, err, sizeof(err)) == -1) {
		diag_setting(c->c_diag, config_setting_get_member(g,
		    "address"), "%s", err);
		return l;
	}
	l->l_family = l->l_addr.ss_family;
	if (l->l_family != AF_INET6)
		config_not_for(c, g, "v6only", "applies to inet6 listeners "
		    "only");
	return l;
}

static void
config_listener_free(struct listener *l)
{
	free(l->l_name);
	free(l->l_address);
	free(l->l_handler_spec);
	free(l->l_allow);
	free(l->l_deny);
	free(l->l_proxy_from);
	if (l->l_tls != NULL) {
		tls_settings_free(l->l_tls);
		free(l->l_tls);
	}
	free(l);
}

static void
config_globals(struct config_ctx *c, const config_setting_t *root)
{
	struct config		*cf = c->c_cfg;
	const config_setting_t	*s;
	const char		*v;
	long			 n;

	config_check_keys(c, root, config_global_keys, "");
	if (config_get_string(c, root, "handler_dir", &s, &v)) {
		if (v[0] != '/')
			diag_setting(c->c_diag, s, "\"handler_dir\" must be an "
			    "absolute path, not \"%s\"", v);
		else {
			free(cf->cf_handler_dir);
			cf->cf_handler_dir = xstrdup(v);
		}
	}
	if (config_get_string(c, root, "user", &s, &v)) {
		if (getpwnam(v) == NULL)
			diag_setting(c->c_diag, s, "\"user\": no such user "
			    "\"%s\"", v);
		else
			cf->cf_user = xstrdup(v);
	}
	if (config_get_string(c, root, "group", &s, &v)) {
		if (getgrnam(v) == NULL)
			diag_setting(c->c_diag, s, "\"group\": no such group "
			    "\"%s\"", v);
		else
			cf->cf_group = xstrdup(v);
	}
	if (config_get_string(c, root, "pid_file", &s, &v)) {
		if (v[0] != '/')
			diag_setting(c->c_diag, s, "\"pid_file\" must be an "
			    "absolute path, not \"%s\"", v);
		else
			cf->cf_pid_file = xstrdup(v);
	}
	if (config_get_string(c, root, "log_level", &s, &v)) {
		int level = log_level_parse(v);

		if (level == -1)
			diag_setting(c->c_diag, s, "\"log_level\" must be "
			    "error, warning, notice, info or debug, not "
			    "\"%s\"", v);
		else
			cf->cf_log_level = level;
	}
	if (config_get_string(c, root, "log_target", &s, &v)) {
		if (strcmp(v, "stderr") == 0)
			cf->cf_log_target = LOG_TARGET_STDERR;
		else if (strcmp(v, "syslog") == 0)
			cf->cf_log_target = LOG_TARGET_SYSLOG;
		else if (strcmp(v, "journal") == 0)
			cf->cf_log_target = LOG_TARGET_JOURNAL;
		else
			diag_setting(c->c_diag, s, "\"log_target\" must be "
			    "stderr, syslog or journal, not \"%s\"", v);
	}
	config_get_float(c, root, "shutdown_timeout", 0, 86400,
	    &cf->cf_shutdown_timeout);
	if (config_get_int(c, root, "max_connections", 0, INT_MAX, &n))
		cf->cf_max_connections = n;
	if (config_get_int(c, root, "worker_processes", 0, WORKER_MAX, &n)) {
		cf->cf_worker_processes = (int)n;
		cf->cf_worker_processes_setting = config_setting_get_member(
		    root, "worker_processes");
	}
}

static void
config_listeners(struct config_ctx *c, const config_setting_t *root,
    const char *path)
{
	struct config		*cf = c->c_cfg;
	const config_setting_t	*list;
	struct listener		*l, *o;
	int			 n;

	list = config_setting_get_member(root, "listeners");
	if (list == NULL) {
		diag_add(c->c_diag, path, 1, "no \"listeners\" list: "
		    "nothing to serve");
		return;
	}
	if (config_setting_type(list) != CONFIG_TYPE_LIST) {
		diag_setting(c->c_diag, list, "\"listeners\" must be a list "
		    "of groups: listeners = ( { ... }, { ... } );");
		return;
	}
	n = config_setting_length(list);
	if (n == 0) {
		diag_setting(c->c_diag, list, "\"listeners\" is empty: "
		    "nothing to serve");
		return;
	}
	for (int i = 0; i < n; i++) {
		l = config_listener(c, config_setting_get_elem(list,
		    (unsigned)i));
		if (l->l_name != NULL) {
			TAILQ_FOREACH(o, &cf->cf_listeners, l_entry) {
				if (o->l_name == NULL ||
				    strcmp(o->l_name, l->l_name) != 0)
					continue;
				diag_setting(c->c_diag, l->l_setting,
				    "duplicate listener name \"%s\" (first "
				    "defined at line %d)", l->l_name,
				    config_setting_source_line(o->l_setting));
				break;
			}
		}
		TAILQ_INSERT_TAIL(&cf->cf_listeners, l, l_entry);
		l->l_index = cf->cf_nlisteners++;
	}
}

/*
 * libconfig 1.5's flex scanner exits the process ("input in flex scanner
 * failed", status 2) when a file it reads fails to read, a directory
 * for one, and a FIFO blocks it.  So before libconfig reads anything,
 * the file and every file it includes must be regular files that read
 * to their end; a missing one is left to libconfig to report.
 */
#define CONFIG_INCLUDE_DEPTH	10	/* libconfig's own limit */

/*
 * The whole text of path, NUL-terminated (the caller frees it), its
 * length (NUL bytes included) in *len_r; or NULL: with why[0] != '\0'
 * when path exists but cannot be read as a file, with why empty when it
 * cannot be opened (libconfig says why).
 */
static char *
config_slurp(const char *path, size_t *len_r, char *why, size_t whylen)
{
	struct stat	 st;
	FILE		*fp;
	char		*text = NULL, buf[4096];
	size_t		 cap = 0, len = 0, n;

	why[0] = '\0';
	if (stat(path, &st) == -1)
		return NULL;
	if (!S_ISREG(st.st_mode)) {
		snprintf(why, whylen, "%s", S_ISDIR(st.st_mode) ?
		    strerror(EISDIR) : "not a regular file");
		return NULL;
	}
	if ((fp = fopen(path, "r")) == NULL)
		return NULL;
	do {
		if (len + sizeof(buf) + 1 > cap) {
			cap = (len + sizeof(buf) + 1) * 2;
			text = xreallocarray(text, cap, 1);
		}
		n = fread(text + len, 1, sizeof(buf), fp);
		len += n;
	} while (n > 0);
	if (ferror(fp)) {
		snprintf(why, whylen, "%s", strerror(errno));
		fclose(fp);
		free(text);
		return NULL;
	}
	fclose(fp);
	text[len] = '\0';
	*len_r = len;
	return text;
}

/*
 * Checks the files text[0..len) includes, as libconfig would follow them
 * (NUL bytes are characters like any other to its scanner): an
 * "@include" opening a line (after blanks), outside strings and
 * comments, names include_dir/NAME; in NAME, backslash-backslash and
 * backslash-quote stand for themselves and any other backslash is
 * dropped.  text[len] is a NUL.  Each problem is reported at shown:LINE;
 * 0 or -1.
 */
static int
config_includes_check(struct diag *d, const char *incdir, const char *text,
    size_t len, const char *shown, int depth)
{
	const char	*p = text, *end = text + len;
	char		*name, *full, *sub, *shown_sub, why[256];
	size_t		 n, sublen;
	int		 line = 1, at, rc = 0;
	bool		 bol = true;

	while (p < end) {
		const char *q = p + strspn(p, " \t");

		if (bol && strncmp(q, "@include", 8) == 0 &&
		    (q[8] == ' ' || q[8] == '\t') &&
		    q[8 + strspn(q + 8, " \t")] == '"') {
			q += 8 + strspn(q + 8, " \t") + 1;
			at = line;
			name = xmalloc((size_t)(end - q) + 1);
			for (n = 0; q < end && *q != '"'; q++) {
				if (*q == '\n')
					line++;
				if (*q == '\\' && (q[1] == '\\' || q[1] == '"'))
					name[n++] = *++q;
				else if (*q != '\\')
					name[n++] = *q;
			}
			name[n] = '\0';
			full = xasprintf("%s/%s", incdir, name);
			if ((sub = config_slurp(full, &sublen, why,
			    sizeof(why))) == NULL && why[0] != '\0') {
				diag_add(d, shown, at, "@include \"%s\": cannot "
				    "read %s: %s", name, full, why);
				rc = -1;
			} else if (sub != NULL && depth < CONFIG_INCLUDE_DEPTH) {
				shown_sub = diag_source_path(d, name);
				if (config_includes_check(d, incdir, sub,
				    sublen, shown_sub, depth + 1) == -1)
					rc = -1;
				free(shown_sub);
			}
			free(sub);
			free(full);
			free(name);
			p = q < end ? q + 1 : q;
			bol = false;
			continue;
		}
		bol = false;
		if (*p == '\n') {
			line++;
			bol = true;
			p++;
		} else if (*p == '"') {
			/* A string, which may span lines. */
			for (p++; p < end && *p != '"'; p++) {
				if (*p == '\\' && p + 1 < end)
					p++;
				if (*p == '\n')
					line++;
			}
			p = p < end ? p + 1 : p;
		} else if (*p == '#' || (p[0] == '/' && p[1] == '/')) {
			const char *nl = memchr(p, '\n', (size_t)(end - p));

			p = nl != NULL ? nl : end;
		} else if (p[0] == '/' && p[1] == '*') {
			const char *e = memmem(p + 2, (size_t)(end - p) - 2,
			    "*/", 2);

			for (; p < (e != NULL ? e : end); p++)
				if (*p == '\n')
					line++;
			p = e != NULL ? e + 2 : end;
		} else
			p++;
	}
	return rc;
}

int
config_load(const char *path, struct config **cfg_r, struct diag *d)
{
	struct config		*cf;
	struct config_ctx	 ctx;
	size_t			 before = d->d_count, len;
	char			*dir, *text = NULL, why[256];

	*cfg_r = NULL;
	cf = xcalloc(1, sizeof(*cf));
	cf->cf_path = xstrdup(path);
	cf->cf_handler_dir = xstrdup(SSD_HANDLERDIR);
	cf->cf_log_level = LOG_INFO;
	cf->cf_log_target = LOG_TARGET_STDERR;
	cf->cf_shutdown_timeout = 10.0;
	TAILQ_INIT(&cf->cf_listeners);
	config_init(&cf->cf_lc);

	/* libconfig reports a missing file as a bare I/O error: say why. */
	if ((text = config_slurp(path, &len, why, sizeof(why))) == NULL) {
		if (why[0] != '\0')
			diag_add(d, path, 0, "cannot read: %s", why);
		else
			diag_add(d, path, 0, "cannot open: %s",
			    strerror(errno));
		goto fail;
	}
	dir = xstrdup(path);
	free(d->d_incdir);
	free(d->d_main);
	d->d_incdir = xstrdup(dirname(dir));
	d->d_main = xstrdup(path);
	config_set_include_dir(&cf->cf_lc, d->d_incdir);
	free(dir);
	if (config_includes_check(d, d->d_incdir, text, len, path, 0) == -1)
		goto fail;
	free(text);
	text = NULL;
	if (config_read_file(&cf->cf_lc, path) == CONFIG_FALSE) {
		char *file = diag_source_path(d,
		    config_error_file(&cf->cf_lc) != NULL ?
		    config_error_file(&cf->cf_lc) : path);

		diag_add(d, file, config_error_line(&cf->cf_lc), "%s",
		    config_error_text(&cf->cf_lc));
		free(file);
		goto fail;
	}

	memset(&ctx, 0, sizeof(ctx));
	ctx.c_cfg = cf;
	ctx.c_diag = d;
	config_globals(&ctx, config_root_setting(&cf->cf_lc));
	config_listeners(&ctx, config_root_setting(&cf->cf_lc), path);
	config_src_free(&ctx);
	if (d->d_count != before)
		goto fail;
	*cfg_r = cf;
	return 0;
fail:
	free(text);
	config_free(cf);
	return -1;
}

void
config_free(struct config *cf)
{
	struct listener *l, *tmp;

	if (cf == NULL)
		return;
	TAILQ_FOREACH_SAFE(l, &cf->cf_listeners, l_entry, tmp) {
		TAILQ_REMOVE(&cf->cf_listeners, l, l_entry);
		config_listener_free(l);
	}
	config_destroy(&cf->cf_lc);
	free(cf->cf_path);
	free(cf->cf_handler_dir);
	free(cf->cf_user);
	free(cf->cf_group);
	free(cf->cf_pid_file);
	free(cf);
}
