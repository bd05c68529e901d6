/* SPDX-License-Identifier: ISC */
/*
 * check_config.c - config_load: the golden tests/conf/bad-*.conf files
 * against their .expected diagnostics (what "sockserverd -t" prints), the
 * good-*.conf files, and targeted checks of defaults, types, ranges,
 * @include and libconfig's silent integer wrap-around.  Run from the
 * repository root, where the Makefile runs the unit binary.
 */
#include <sys/stat.h>

#include <ftw.h>
#include <glob.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <check.h>

#include "daemon.h"
#include "suites.h"

#define CONFIG_BAD_GLOB		"tests/conf/bad-*.conf"
#define CONFIG_GOOD_GLOB	"tests/conf/good-*.conf"
#define CONFIG_SHIPPED_GLOB	"conf/*.conf"
#define CONFIG_MIN_BAD		20

/* The bad files, found once when the suite is built (one test each). */
static glob_t config_bad;

/* Lines of a text, for comparing diagnostics. */
struct config_lines {
	char	**l_line;
	size_t	  l_count;
};

static void
config_lines_add(struct config_lines *ls, const char *s, size_t len)
{
	ls->l_line = xreallocarray(ls->l_line, ls->l_count + 1,
	    sizeof(*ls->l_line));
	ls->l_line[ls->l_count] = xmalloc(len + 1);
	memcpy(ls->l_line[ls->l_count], s, len);
	ls->l_line[ls->l_count][len] = '\0';
	ls->l_count++;
}

static void
config_lines_free(struct config_lines *ls)
{
	for (size_t i = 0; i < ls->l_count; i++)
		free(ls->l_line[i]);
	free(ls->l_line);
	ls->l_line = NULL;
	ls->l_count = 0;
}

/* Reads path into lines; false if it cannot be read. */
static bool
config_lines_read(struct config_lines *ls, const char *path)
{
	FILE	*fp;
	char	*line = NULL;
	size_t	 cap = 0;
	ssize_t	 n;

	if ((fp = fopen(path, "r")) == NULL)
		return false;
	while ((n = getline(&line, &cap, fp)) != -1) {
		if (n > 0 && line[n - 1] == '\n')
			n--;
		config_lines_add(ls, line, (size_t)n);
	}
	free(line);
	fclose(fp);
	return true;
}

/*
 * A unified-style diff of want and got (longest common subsequence: the
 * lists are a few lines long), as a malloc'ed string.
 */
static char *
config_diff(const struct config_lines *want, const struct config_lines *got,
    const char *wname)
{
	size_t	 n = want->l_count, m = got->l_count, i, j;
	size_t	*lcs = xcalloc((n + 1) * (m + 1), sizeof(*lcs));
	char	*out = NULL;
	size_t	 len = 0;
	FILE	*fp = open_memstream(&out, &len);

#define LCS(a, b)	lcs[(a) * (m + 1) + (b)]
	for (i = n; i-- > 0;)
		for (j = m; j-- > 0;)
			LCS(i, j) = strcmp(want->l_line[i],
			    got->l_line[j]) == 0 ? LCS(i + 1, j + 1) + 1 :
			    LCS(i + 1, j) > LCS(i, j + 1) ? LCS(i + 1, j) :
			    LCS(i, j + 1);
	fprintf(fp, "\n--- %s\n+++ config_load + handler_prepare\n", wname);
	for (i = 0, j = 0; i < n || j < m;) {
		if (i < n && j < m &&
		    strcmp(want->l_line[i], got->l_line[j]) == 0) {
			fprintf(fp, " %s\n", want->l_line[i]);
			i++;
			j++;
		} else if (i < n && (j == m || LCS(i + 1, j) >= LCS(i, j + 1)))
			fprintf(fp, "-%s\n", want->l_line[i++]);
		else
			fprintf(fp, "+%s\n", got->l_line[j++]);
	}
#undef LCS
	fclose(fp);
	free(lcs);
	return out;
}

/* What "sockserverd -t -c path" does, collecting the diagnostics. */
static void
config_check_file(const char *path, struct diag *d)
{
	struct config	*cf;
	struct hinst	*hi;

	diag_init(d);
	if (config_load(path, &cf, d) == 0) {
		hi = xcalloc(cf->cf_nlisteners, sizeof(*hi));
		if (handler_prepare(cf, hi, d) == 0)
			handler_release(cf, hi);
		free(hi);
		config_free(cf);
	}
}

START_TEST(config_bad_file_prints_exactly_its_expected_diagnostics)
{
	const char		*conf = config_bad.gl_pathv[_i];
	struct config_lines	 want = { NULL, 0 }, got = { NULL, 0 };
	struct diag		 d;
	char			*expected, *diff;
	bool			 same;

	expected = xasprintf("%.*s.expected", (int)(strlen(conf) - 5), conf);
	ck_assert_msg(config_lines_read(&want, expected),
	    "%s has no %s: generate it with "
	    "\"./sockserverd -t -c %s 2>&1 >/dev/null\" and read it", conf,
	    expected, conf);
	ck_assert_msg(want.l_count > 0, "%s is empty: a bad-*.conf must "
	    "produce a diagnostic", expected);
	config_check_file(conf, &d);
	for (size_t i = 0; i < d.d_count; i++)
		config_lines_add(&got, d.d_msgs[i], strlen(d.d_msgs[i]));
	same = want.l_count == got.l_count;
	for (size_t i = 0; same && i < want.l_count; i++)
		same = strcmp(want.l_line[i], got.l_line[i]) == 0;
	if (!same) {
		diff = config_diff(&want, &got, expected);
		ck_abort_msg("%s: diagnostics differ:%s", conf, diff);
	}
	diag_fini(&d);
	config_lines_free(&want);
	config_lines_free(&got);
	free(expected);
}
END_TEST

START_TEST(config_has_at_least_20_bad_files)
{
	ck_assert_msg(config_bad.gl_pathc >= CONFIG_MIN_BAD,
	    "%zu files match %s, want at least %d (is the current directory "
	    "the repository root?)", config_bad.gl_pathc, CONFIG_BAD_GLOB,
	    CONFIG_MIN_BAD);
}
END_TEST

/* Every file matching pattern passes -t; returns how many there were. */
static size_t
config_all_load_cleanly(const char *pattern)
{
	glob_t		 g;
	struct diag	 d;
	size_t		 n;

	memset(&g, 0, sizeof(g));
	if (glob(pattern, 0, NULL, &g) != 0)
		return 0;
	for (size_t i = 0; i < g.gl_pathc; i++) {
		config_check_file(g.gl_pathv[i], &d);
		ck_assert_msg(d.d_count == 0, "%s: %zu problem(s), the first: "
		    "%s", g.gl_pathv[i], d.d_count, d.d_msgs[0]);
		diag_fini(&d);
	}
	n = g.gl_pathc;
	globfree(&g);
	return n;
}

START_TEST(config_good_files_load_cleanly)
{
	ck_assert_uint_ge(config_all_load_cleanly(CONFIG_GOOD_GLOB), 3);
}
END_TEST

START_TEST(config_shipped_configs_load_cleanly)
{
	ck_assert_uint_ge(config_all_load_cleanly(CONFIG_SHIPPED_GLOB), 1);
}
END_TEST

START_TEST(config_good_file_keeps_listeners_in_order)
{
	static const struct {
		const char	*name;
		int		 family, type;
	} want[] = {
		{ "tcp4", AF_INET, SOCK_STREAM },
		{ "udp4", AF_INET, SOCK_DGRAM },
		{ "tcp6", AF_INET6, SOCK_STREAM },
		{ "any4", AF_INET, SOCK_STREAM },
		{ "any6", AF_INET6, SOCK_STREAM },
		{ "path", AF_UNIX, SOCK_STREAM },
		{ "abstract", AF_UNIX, SOCK_DGRAM },
	};
	struct config	*cf;
	struct listener	*l;
	struct diag	 d;
	size_t		 i = 0;

	diag_init(&d);
	ck_assert_int_eq(config_load("tests/conf/good-families.conf", &cf,
	    &d), 0);
	ck_assert_uint_eq(d.d_count, 0);
	ck_assert_uint_eq(cf->cf_nlisteners, sizeof(want) / sizeof(want[0]));
	TAILQ_FOREACH(l, &cf->cf_listeners, l_entry) {
		ck_assert_uint_lt(i, sizeof(want) / sizeof(want[0]));
		ck_assert_str_eq(l->l_name, want[i].name);
		ck_assert_int_eq(l->l_family, want[i].family);
		ck_assert_int_eq(l->l_addr.ss_family, want[i].family);
		ck_assert_int_eq(l->l_type, want[i].type);
		ck_assert_ptr_eq(l->l_config, cf);
		i++;
	}
	ck_assert_uint_eq(i, sizeof(want) / sizeof(want[0]));
	config_free(cf);
	diag_fini(&d);
}
END_TEST

/* Targeted tests write their configs into a fresh directory. */
static char config_dir[64];
static struct diag config_diag;
static struct config *config_cf;

static void
config_setup(void)
{
	snprintf(config_dir, sizeof(config_dir), "/tmp/ssd-check-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(config_dir));
	diag_init(&config_diag);
	config_cf = NULL;
}

static int
config_rm(const char *path, const struct stat *st, int flag, struct FTW *f)
{
	(void)st;
	(void)flag;
	(void)f;
	return remove(path);
}

static void
config_teardown(void)
{
	config_free(config_cf);
	config_cf = NULL;
	diag_fini(&config_diag);
	nftw(config_dir, config_rm, 8, FTW_DEPTH | FTW_PHYS);
}

/* Writes text to config_dir/name; returns the path (static buffer). */
static const char *
config_put(const char *name, const char *text)
{
	static char	 path[128];
	FILE		*fp;

	snprintf(path, sizeof(path), "%s/%s", config_dir, name);
	ck_assert_ptr_nonnull(fp = fopen(path, "w"));
	ck_assert_int_ge(fputs(text, fp), 0);
	ck_assert_int_eq(fclose(fp), 0);
	return path;
}

/* Loads text, asserting it is valid; returns the config (freed by the
 * fixture). */
static struct config *
config_load_ok(const char *text)
{
	const char *path = config_put("test.conf", text);

	if (config_load(path, &config_cf, &config_diag) != 0)
		ck_abort_msg("config rejected: %s (and %zu more)",
		    config_diag.d_msgs[0], config_diag.d_count - 1);
	ck_assert_ptr_nonnull(config_cf);
	return config_cf;
}

/* Loads text, asserting exactly n diagnostics; returns the first. */
static const char *
config_load_bad(const char *text, size_t n)
{
	const char *path = config_put("test.conf", text);

	ck_assert_msg(config_load(path, &config_cf, &config_diag) == -1,
	    "the config was accepted; want %zu diagnostic(s)", n);
	ck_assert_ptr_null(config_cf);
	ck_assert_msg(config_diag.d_count == n, "%zu diagnostics, want %zu; "
	    "the first: %s", config_diag.d_count, n, config_diag.d_count > 0 ?
	    config_diag.d_msgs[0] : "(none)");
	return config_diag.d_msgs[0];
}

/* Asserts that the message contains want. */
#define ck_assert_has(msg, want)					\
	ck_assert_msg(strstr((msg), (want)) != NULL,			\
	    "\"%s\" does not contain \"%s\"", (msg), (want))

#define CONFIG_ONE(extra)						\
	"listeners = ( { name = \"a\"; address = \"127.0.0.1\"; "	\
	"port = 7007; handler = \"echo\"; concurrency = \"sync\"; "	\
	extra " } );\n"

START_TEST(config_global_defaults)
{
	struct config	*cf = config_load_ok(CONFIG_ONE(""));
	size_t		 dl;

	ck_assert_str_eq(cf->cf_path, config_put("test.conf", ""));
	ck_assert_int_eq(cf->cf_handler_dir[0], '/');
	dl = strlen(cf->cf_handler_dir);
	ck_assert_msg(dl > 21 && strcmp(cf->cf_handler_dir + dl - 21,
	    "/sockserverd/handlers") == 0, "handler_dir %s",
	    cf->cf_handler_dir);
	ck_assert_ptr_null(cf->cf_user);
	ck_assert_ptr_null(cf->cf_group);
	ck_assert_ptr_null(cf->cf_pid_file);
	ck_assert_int_eq(cf->cf_log_level, LOG_INFO);
	ck_assert_int_eq(cf->cf_log_target, LOG_TARGET_STDERR);
	ck_assert_double_eq(cf->cf_shutdown_timeout, 10.0);
	ck_assert_int_eq(cf->cf_max_connections, 0);
	ck_assert_uint_eq(cf->cf_nlisteners, 1);
}
END_TEST

START_TEST(config_listener_defaults)
{
	struct config		*cf = config_load_ok(CONFIG_ONE(""));
	struct listener		*l = TAILQ_FIRST(&cf->cf_listeners);
	struct sockaddr_in	*sin = (struct sockaddr_in *)(void *)&l->l_addr;

	ck_assert_str_eq(l->l_name, "a");
	ck_assert_int_eq(l->l_family, AF_INET);
	ck_assert_int_eq(l->l_type, SOCK_STREAM);
	ck_assert_str_eq(l->l_address, "127.0.0.1");
	ck_assert_int_eq(l->l_port, 7007);
	ck_assert_int_eq(l->l_queue_size, 128);
	ck_assert(l->l_reuse_address);
	ck_assert(!l->l_reuse_port);
	ck_assert(l->l_v6only);
	ck_assert_double_eq(l->l_timeout, 60.0);
	ck_assert_int_eq(l->l_model, CONC_SYNC);
	ck_assert_int_eq(l->l_max_connections, 0);
	ck_assert_uint_eq(l->l_max_packet_size, 8192);
	ck_assert_str_eq(l->l_handler_spec, "echo");
	ck_assert_ptr_nonnull(l->l_handler_setting);
	ck_assert_ptr_null(l->l_options);
	ck_assert_uint_eq(l->l_nallow, 0);
	ck_assert_uint_eq(l->l_ndeny, 0);
	ck_assert_uint_eq(l->l_unix_mode, 0666);
	ck_assert_int_eq(l->l_max_per_source, 0);
	ck_assert_int_eq(l->l_workers, 1);
	ck_assert(!l->l_proxy_protocol);
	ck_assert_double_eq(l->l_rate_per_source, 0);
	ck_assert_int_eq(l->l_source_prefix_v4, 32);
	ck_assert_int_eq(l->l_source_prefix_v6, 128);
	ck_assert_uint_eq(l->l_nproxy_from, 0);
	ck_assert_int_eq(sin->sin_family, AF_INET);
	ck_assert_uint_eq(ntohs(sin->sin_port), 7007);
	ck_assert_uint_eq(ntohl(sin->sin_addr.s_addr), 0x7f000001);
	ck_assert_uint_eq(l->l_index, 0);
}
END_TEST

START_TEST(config_unix_listener_defaults)
{
	struct config	*cf = config_load_ok("listeners = ( { name = \"u\"; "
	    "address = \"/tmp/x.sock\"; handler = \"echo\"; "
	    "concurrency = \"sync\"; type = \"dgram\"; } );\n");
	struct listener	*l = TAILQ_FIRST(&cf->cf_listeners);

	ck_assert_int_eq(l->l_family, AF_UNIX);
	ck_assert_int_eq(l->l_type, SOCK_DGRAM);
	ck_assert_uint_eq(l->l_unix_mode, 0666);
	ck_assert_uint_eq(l->l_max_packet_size, 8192);
	ck_assert_int_eq(l->l_addr.ss_family, AF_UNIX);
}
END_TEST

START_TEST(config_default_concurrency_is_event)
{
	struct config	*cf = config_load_ok("listeners = ( { name = \"a\"; "
	    "address = \"127.0.0.1\"; port = 1; handler = \"echo\"; } );\n");
	struct listener	*l = TAILQ_FIRST(&cf->cf_listeners);

	ck_assert_int_eq(l->l_model, CONC_EVENT);
	ck_assert_int_eq(l->l_workers, 1);
}
END_TEST

START_TEST(config_sets_every_key)
{
	struct config	*cf;
	struct listener	*l;

	config_cf = NULL;
	ck_assert_int_eq(config_load("tests/conf/good-every-key.conf",
	    &config_cf, &config_diag), 0);
	cf = config_cf;
	ck_assert_str_eq(cf->cf_handler_dir,
	    "/nonexistent/sockserverd/handlers");
	ck_assert_int_eq(cf->cf_log_level, LOG_DEBUG);
	ck_assert_int_eq(cf->cf_log_target, LOG_TARGET_SYSLOG);
	ck_assert_str_eq(cf->cf_user, "root");
	ck_assert_str_eq(cf->cf_group, "root");
	ck_assert_str_eq(cf->cf_pid_file, "/run/sockserverd-check.pid");
	ck_assert_double_eq(cf->cf_shutdown_timeout, 2.5);
	ck_assert_int_eq(cf->cf_max_connections, 100);
	l = TAILQ_FIRST(&cf->cf_listeners);
	ck_assert_str_eq(l->l_name, "every.key_1");
	ck_assert_int_eq(l->l_family, AF_INET6);
	ck_assert_int_eq(l->l_port, 65535);
	ck_assert_int_eq(l->l_queue_size, 65535);
	ck_assert(!l->l_reuse_address);
	ck_assert(l->l_reuse_port);
	ck_assert(l->l_v6only);
	ck_assert_double_eq(l->l_timeout, 0);
	ck_assert_int_eq(l->l_max_connections, 10);
	ck_assert_uint_eq(l->l_nallow, 3);
	ck_assert_uint_eq(l->l_ndeny, 1);
	ck_assert_int_eq(l->l_allow[2].c_family, AF_INET);
	ck_assert_int_eq(l->l_allow[2].c_bits, 8);
	l = TAILQ_NEXT(l, l_entry);
	ck_assert_int_eq(l->l_type, SOCK_DGRAM);
	ck_assert_int_eq(l->l_port, 0x1F90);
	ck_assert_uint_eq(l->l_max_packet_size, 65535);
	ck_assert_double_eq(l->l_timeout, 0.5);
	l = TAILQ_NEXT(l, l_entry);
	ck_assert_int_eq(l->l_family, AF_UNIX);
	ck_assert_uint_eq(l->l_unix_mode, 0660);
	l = TAILQ_NEXT(l, l_entry);
	ck_assert_int_eq(l->l_model, CONC_EVENT);
	ck_assert_int_eq(l->l_workers, 2);
	ck_assert_int_eq(l->l_max_per_source, 3);
	ck_assert_double_eq(l->l_rate_per_source, 2.5);
	ck_assert_double_eq(l->l_burst_per_source, 5);
	ck_assert_int_eq(l->l_source_prefix_v4, 24);
	ck_assert_int_eq(l->l_source_prefix_v6, 64);
	ck_assert(l->l_proxy_protocol);
	ck_assert_uint_eq(l->l_nproxy_from, 2);
	ck_assert_int_eq(l->l_proxy_from[0].c_bits, 8);
	ck_assert_int_eq(l->l_proxy_from[1].c_family, AF_INET6);
	ck_assert_ptr_null(TAILQ_NEXT(l, l_entry));
}
END_TEST

START_TEST(config_burst_defaults_to_the_rate_rounded_up)
{
	struct config	*cf = config_load_ok(CONFIG_ONE("rate_per_source = "
	    "2.2;"));

	ck_assert_double_eq(TAILQ_FIRST(&cf->cf_listeners)->
	    l_burst_per_source, 3);
	config_free(cf);
	config_cf = NULL;
	cf = config_load_ok(CONFIG_ONE("rate_per_source = 0.1;"));
	ck_assert_double_eq(TAILQ_FIRST(&cf->cf_listeners)->
	    l_burst_per_source, 1);
}
END_TEST

START_TEST(config_float_key_accepts_an_integer)
{
	struct config	*cf = config_load_ok("shutdown_timeout = 3;\n"
	    CONFIG_ONE("timeout = 5;"));
	struct listener	*l = TAILQ_FIRST(&cf->cf_listeners);

	ck_assert_double_eq(cf->cf_shutdown_timeout, 3.0);
	ck_assert_double_eq(l->l_timeout, 5.0);
}
END_TEST

START_TEST(config_float_key_accepts_a_fraction)
{
	struct config	*cf = config_load_ok(CONFIG_ONE("timeout = 0.25;"));

	ck_assert_double_eq(TAILQ_FIRST(&cf->cf_listeners)->l_timeout, 0.25);
}
END_TEST

START_TEST(config_integer_key_refuses_a_float)
{
	const char *msg = config_load_bad(CONFIG_ONE("queue_size = 5.0;"), 1);

	ck_assert_has(msg, "\"queue_size\" must be an integer");
}
END_TEST

START_TEST(config_accepts_64_bit_integer_literals)
{
	struct config *cf = config_load_ok(CONFIG_ONE("queue_size = 64L;"));

	ck_assert_int_eq(TAILQ_FIRST(&cf->cf_listeners)->l_queue_size, 64);
}
END_TEST

START_TEST(config_include_is_relative_to_the_config_directory)
{
	struct config	*cf;
	const char	*path;

	config_put("listeners.inc", "listeners = ( { name = \"inc\"; "
	    "address = \"127.0.0.1\"; port = 7; handler = \"echo\"; "
	    "concurrency = \"sync\"; } );\n");
	path = config_put("main.conf", "log_level = \"debug\";\n"
	    "@include \"listeners.inc\"\n");
	/* The current directory is the repository root, not config_dir. */
	ck_assert_int_eq(access("listeners.inc", F_OK), -1);
	ck_assert_int_eq(config_load(path, &config_cf, &config_diag), 0);
	cf = config_cf;
	ck_assert_int_eq(cf->cf_log_level, LOG_DEBUG);
	ck_assert_uint_eq(cf->cf_nlisteners, 1);
	ck_assert_str_eq(TAILQ_FIRST(&cf->cf_listeners)->l_name, "inc");
}
END_TEST

START_TEST(config_reports_every_problem)
{
	config_load_bad("log_level = \"loud\";\n"
	    "listeners = (\n"
	    "  { name = \"a\"; address = \"127.0.0.1\"; port = 70000;\n"
	    "    handler = \"echo\"; concurrency = \"sync\"; },\n"
	    "  { name = \"b\"; address = \"127.0.0.1\"; port = 7;\n"
	    "    handler = \"echo\"; concurrency = \"sync\";\n"
	    "    allow = [ \"10.0.0.0/33\" ]; }\n"
	    ");\n", 3);
	ck_assert_has(config_diag.d_msgs[0], "test.conf:1: \"log_level\"");
	ck_assert_has(config_diag.d_msgs[1], "test.conf:3: \"port\"");
	ck_assert_has(config_diag.d_msgs[2], "test.conf:7: \"allow\"");
}
END_TEST

START_TEST(config_reports_a_missing_file)
{
	char path[128];

	snprintf(path, sizeof(path), "%s/absent.conf", config_dir);
	ck_assert_int_eq(config_load(path, &config_cf, &config_diag), -1);
	ck_assert_ptr_null(config_cf);
	ck_assert_uint_eq(config_diag.d_count, 1);
	ck_assert_has(config_diag.d_msgs[0], path);
	ck_assert_has(config_diag.d_msgs[0],
	    "cannot open: No such file or directory");
}
END_TEST

START_TEST(config_reports_what_libconfig_cannot_read)
{
	static const char nul[] = "# a\0b\n/* \0 */ s = \"\0\";\n"
	    "// \0\n@include \"sub\"\n";
	char	 path[256];
	FILE	*fp;

	/* libconfig's scanner would exit the process on a directory (and
	 * block on a FIFO): each is a diagnostic at the @include. */
	snprintf(path, sizeof(path), "%s/sub", config_dir);
	ck_assert_int_eq(mkdir(path, 0755), 0);
	snprintf(path, sizeof(path), "%s/fifo", config_dir);
	ck_assert_int_eq(mkfifo(path, 0600), 0);
	config_put("nested.inc", "# nested\n"
	    "/* @include \"sub\" in a comment is no @include */\n"
	    "  @include \"sub\"\n");
	snprintf(path, sizeof(path), "%s", config_put("main.conf",
	    "s = \"a string\n@include \\\"sub\\\" is no @include\";\n"
	    "@include \"nested.inc\"\n"
	    "@include \"fifo\"\n"
	    "\t@include \"s\\ub\"\n"));
	ck_assert_int_eq(config_load(path, &config_cf, &config_diag), -1);
	ck_assert_uint_eq(config_diag.d_count, 3);
	ck_assert_has(config_diag.d_msgs[0], "/nested.inc:3: @include \"sub\": "
	    "cannot read ");
	ck_assert_has(config_diag.d_msgs[0], "Is a directory");
	ck_assert_has(config_diag.d_msgs[1], "/main.conf:4: @include "
	    "\"fifo\": cannot read ");
	ck_assert_has(config_diag.d_msgs[1], "not a regular file");
	ck_assert_has(config_diag.d_msgs[2], "/main.conf:5: @include \"sub\"");
	/* NUL bytes are characters to libconfig: the scan goes on. */
	diag_fini(&config_diag);
	snprintf(path, sizeof(path), "%s/nul.conf", config_dir);
	ck_assert_ptr_nonnull(fp = fopen(path, "w"));
	ck_assert_uint_eq(fwrite(nul, 1, sizeof(nul) - 1, fp), sizeof(nul) - 1);
	ck_assert_int_eq(fclose(fp), 0);
	ck_assert_int_eq(config_load(path, &config_cf, &config_diag), -1);
	ck_assert_uint_eq(config_diag.d_count, 1);
	ck_assert_has(config_diag.d_msgs[0], "/nul.conf:4: @include \"sub\"");
	/* The configuration itself. */
	diag_fini(&config_diag);
	ck_assert_int_eq(config_load(config_dir, &config_cf, &config_diag),
	    -1);
	ck_assert_uint_eq(config_diag.d_count, 1);
	ck_assert_has(config_diag.d_msgs[0], "cannot read: Is a directory");
}
END_TEST

START_TEST(config_names_the_file_as_given)
{
	const char	*msg;
	char		 want[160];

	msg = config_load_bad("colour = 1;\n" CONFIG_ONE(""), 1);
	snprintf(want, sizeof(want), "%s/test.conf:1: unknown setting "
	    "\"colour\"", config_dir);
	ck_assert_str_eq(msg, want);
}
END_TEST

START_TEST(config_detects_a_port_wrapped_to_1)
{
	const char *msg = config_load_bad("listeners = ( { name = \"a\"; "
	    "address = \"127.0.0.1\"; port = 4294967297; handler = \"echo\"; "
	    "concurrency = \"sync\"; } );\n", 1);

	ck_assert_has(msg, "\"port\" must be between 0 and 65535, not "
	    "4294967297");
}
END_TEST

START_TEST(config_detects_a_port_too_big_for_64_bits)
{
	const char *msg = config_load_bad("listeners = ( { name = \"a\"; "
	    "address = \"127.0.0.1\"; port = 99999999999999999999; "
	    "handler = \"echo\"; concurrency = \"sync\"; } );\n", 1);

	ck_assert_has(msg, "\"port\" must be between 0 and 65535 (the value "
	    "does not fit in 64 bits)");
}
END_TEST

START_TEST(config_refuses_a_negative_port)
{
	const char *msg = config_load_bad("listeners = ( { name = \"a\"; "
	    "address = \"127.0.0.1\"; port = -1; handler = \"echo\"; "
	    "concurrency = \"sync\"; } );\n", 1);

	ck_assert_has(msg, "\"port\" must be between 0 and 65535, not -1");
}
END_TEST

START_TEST(config_detects_wrap_of_other_integer_keys)
{
	/* 4294967296 wraps to 0, which max_connections would accept. */
	const char *msg = config_load_bad("max_connections = 4294967296;\n"
	    CONFIG_ONE("queue_size = 4294967297;"), 2);

	ck_assert_has(msg, "\"max_connections\" must be between 0 and "
	    "2147483647, not 4294967296");
	ck_assert_has(config_diag.d_msgs[1], "\"queue_size\" must be between "
	    "1 and 65535, not 4294967297");
}
END_TEST

START_TEST(config_detects_wrap_of_a_hex_literal)
{
	const char *msg = config_load_bad(CONFIG_ONE("queue_size = "
	    "0x100000050;"), 1);

	ck_assert_has(msg, "\"queue_size\" must be between 1 and 65535");
}
END_TEST

START_TEST(config_detects_wrap_of_an_integer_given_to_a_float_key)
{
	const char *msg = config_load_bad(CONFIG_ONE("timeout = 4294967297;"),
	    1);

	ck_assert_has(msg, "\"timeout\" must be between 0 and");
}
END_TEST

/*
 * libconfig reads 08080 as decimal 8080 (it has no octal literals); the
 * wrap-around check must read the literal the same way.
 */
START_TEST(config_reads_leading_zero_integers_as_decimal)
{
	struct config	*cf = config_load_ok("listeners = ( { name = \"a\"; "
	    "address = \"127.0.0.1\"; port = 08080; queue_size = 010; "
	    "handler = \"echo\"; concurrency = \"sync\"; } );\n");
	struct listener	*l = TAILQ_FIRST(&cf->cf_listeners);

	ck_assert_int_eq(l->l_port, 8080);
	ck_assert_int_eq(l->l_queue_size, 10);
}
END_TEST

START_TEST(config_detects_wrap_in_second_setting_on_the_same_line)
{
	const char *msg = config_load_bad("listeners = (\n"
	    "  { name = \"a\"; address = \"127.0.0.1\"; port = 7007; "
	    "handler = \"echo\"; concurrency = \"sync\"; }, { name = \"b\"; "
	    "address = \"127.0.0.1\"; port = 4294967297; handler = \"echo\"; "
	    "concurrency = \"sync\"; }\n);\n", 1);

	ck_assert_has(msg, "not 4294967297");
}
END_TEST

START_TEST(config_detects_wrap_in_an_included_file)
{
	const char *path;

	config_put("listeners.inc", "listeners = ( { name = \"inc\"; "
	    "address = \"127.0.0.1\"; port = 4294967297; handler = \"echo\"; "
	    "concurrency = \"sync\"; } );\n");
	path = config_put("main.conf", "@include \"listeners.inc\"\n");
	ck_assert_int_eq(config_load(path, &config_cf, &config_diag), -1);
	ck_assert_uint_eq(config_diag.d_count, 1);
	ck_assert_has(config_diag.d_msgs[0], "not 4294967297");
}
END_TEST

/*
 * The literal is found by reading the source again: text that merely
 * looks like "port = N" inside a comment or a string is not it.
 */
START_TEST(config_detects_wrap_despite_key_text_in_a_comment)
{
	const char *msg = config_load_bad("listeners = ( { name = \"a\"; "
	    "address = \"127.0.0.1\"; /* port = 7 */ port = 4294967297; "
	    "handler = \"echo\"; concurrency = \"sync\"; } );\n", 1);

	ck_assert_has(msg, "not 4294967297");
}
END_TEST

START_TEST(config_detects_wrap_despite_key_text_in_a_string)
{
	const char *msg = config_load_bad("handler_dir = \"/x/port = 7\"; "
	    "listeners = ( { name = \"a\"; address = \"127.0.0.1\"; "
	    "port = 4294967297; handler = \"echo\"; "
	    "concurrency = \"sync\"; } );\n", 1);

	ck_assert_has(msg, "not 4294967297");
}
END_TEST

START_TEST(config_detects_wrap_when_the_value_is_on_the_next_line)
{
	const char *msg = config_load_bad("listeners = ( { name = \"a\";\n"
	    "  address = \"127.0.0.1\"; port\n"
	    "  = 4294967297; handler = \"echo\"; concurrency = \"sync\"; } "
	    ");\n", 1);

	ck_assert_has(msg, "not 4294967297");
}
END_TEST

START_TEST(config_refuses_a_non_absolute_handler_path)
{
	const char *msg = config_load_bad("listeners = ( { name = \"a\"; "
	    "address = \"127.0.0.1\"; port = 1; handler = \"lib/x.so\"; "
	    "concurrency = \"sync\"; } );\n", 1);

	ck_assert_has(msg, "handler \"lib/x.so\" must be a name");
}
END_TEST

Suite *
config_suite(void)
{
	Suite	*s = suite_create("config");
	TCase	*tc;

	memset(&config_bad, 0, sizeof(config_bad));
	if (glob(CONFIG_BAD_GLOB, 0, NULL, &config_bad) != 0)
		config_bad.gl_pathc = 0;

	tc = tcase_create("golden");
	tcase_add_test(tc, config_has_at_least_20_bad_files);
	tcase_add_loop_test(tc,
	    config_bad_file_prints_exactly_its_expected_diagnostics, 0,
	    (int)config_bad.gl_pathc);
	tcase_add_test(tc, config_good_files_load_cleanly);
	tcase_add_test(tc, config_shipped_configs_load_cleanly);
	tcase_add_test(tc, config_good_file_keeps_listeners_in_order);
	suite_add_tcase(s, tc);

	tc = tcase_create("keys");
	tcase_add_checked_fixture(tc, config_setup, config_teardown);
	tcase_add_test(tc, config_global_defaults);
	tcase_add_test(tc, config_listener_defaults);
	tcase_add_test(tc, config_unix_listener_defaults);
	tcase_add_test(tc, config_default_concurrency_is_event);
	tcase_add_test(tc, config_sets_every_key);
	tcase_add_test(tc, config_float_key_accepts_an_integer);
	tcase_add_test(tc, config_burst_defaults_to_the_rate_rounded_up);
	tcase_add_test(tc, config_float_key_accepts_a_fraction);
	tcase_add_test(tc, config_integer_key_refuses_a_float);
	tcase_add_test(tc, config_accepts_64_bit_integer_literals);
	tcase_add_test(tc, config_include_is_relative_to_the_config_directory);
	tcase_add_test(tc, config_reports_every_problem);
	tcase_add_test(tc, config_reports_a_missing_file);
	tcase_add_test(tc, config_reports_what_libconfig_cannot_read);
	tcase_add_test(tc, config_names_the_file_as_given);
	tcase_add_test(tc, config_refuses_a_non_absolute_handler_path);
	suite_add_tcase(s, tc);

	tc = tcase_create("integers");
	tcase_add_checked_fixture(tc, config_setup, config_teardown);
	tcase_add_test(tc, config_detects_a_port_wrapped_to_1);
	tcase_add_test(tc, config_detects_a_port_too_big_for_64_bits);
	tcase_add_test(tc, config_refuses_a_negative_port);
	tcase_add_test(tc, config_detects_wrap_of_other_integer_keys);
	tcase_add_test(tc, config_detects_wrap_of_a_hex_literal);
	tcase_add_test(tc,
	    config_detects_wrap_of_an_integer_given_to_a_float_key);
	tcase_add_test(tc, config_reads_leading_zero_integers_as_decimal);
	tcase_add_test(tc,
	    config_detects_wrap_in_second_setting_on_the_same_line);
	tcase_add_test(tc, config_detects_wrap_in_an_included_file);
	tcase_add_test(tc, config_detects_wrap_despite_key_text_in_a_comment);
	tcase_add_test(tc, config_detects_wrap_despite_key_text_in_a_string);
	tcase_add_test(tc,
	    config_detects_wrap_when_the_value_is_on_the_next_line);
	suite_add_tcase(s, tc);
	return s;
}
