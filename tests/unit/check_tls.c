/* SPDX-License-Identifier: ISC */
/*
 * check_tls.c - the tls group of a listener: tls_sni_match (the pure
 * name matching of sni entries), and config_load with tls groups: the
 * settings as parsed, and each file problem at the FILE:LINE of its key.
 * The certificate and keys are fixed PEM texts (the certificate valid
 * until 2126; a server never checks its own certificate's dates).
 */
#include <sys/stat.h>

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <check.h>

#include "daemon.h"
#include "suites.h"

static const char tls_cert[] =
"-----BEGIN CERTIFICATE-----\n"
"MIIBfjCCASWgAwIBAgIUUs5PiGi6Amy2PwaBRZfXl5JV/90wCgYIKoZIzj0EAwIw\n"
"FDESMBAGA1UEAwwJdW5pdC50ZXN0MCAXDTI2MTIwMTE0MTUxOFoYDzIxMjYxMTA3\n"
"MTQxNTE4WjAUMRIwEAYDVQQDDAl1bml0LnRlc3QwWTATBgcqhkjOPQIBBggqhkjO\n"
"PQMBBwNCAATULdFweeJcOvlY1uSXMHuoNtTgOG+FYLdwo0EXhIA7PakZC+KQagBA\n"
"ySO+dS8IDkVPh0iCL/8nctgkM3q8kZqEo1MwUTAdBgNVHQ4EFgQUcQuNdFqCcVdF\n"
"oipH1ZEIwqUpyK4wHwYDVR0jBBgwFoAUcQuNdFqCcVdFoipH1ZEIwqUpyK4wDwYD\n"
"VR0TAQH/BAUwAwEB/zAKBggqhkjOPQQDAgNHADBEAiAWi//31Ad7fI+/9was1umc\n"
"HRSBkCjydo0XTbjMYL7fiwIgaTl5X4f1jJF5YHdiKr/50iWY6acj0QaZIzeTwqXN\n"
"o3Q=\n"
"-----END CERTIFICATE-----\n";

static const char tls_key[] =
"-----BEGIN PRIVATE KEY-----\n"
"MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgxveMZQsSKOIH1aTC\n"
"V3xnOT8uK3ooGaC+Qgc4ZK7p/CShRANCAATULdFweeJcOvlY1uSXMHuoNtTgOG+F\n"
"YLdwo0EXhIA7PakZC+KQagBAySO+dS8IDkVPh0iCL/8nctgkM3q8kZqE\n"
"-----END PRIVATE KEY-----\n";

/* Another key, which does not match tls_cert. */
static const char tls_other_key[] =
"-----BEGIN PRIVATE KEY-----\n"
"MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgZmPgAu9nMI8BwdTW\n"
"LZ9V5s/H8hhOCitEXrJ3VtwLsn2hRANCAAQ9ikVhvaXY9FjQDuC0IBDvlndJhjS1\n"
"qAajUYgQU6AfTFaApMBP47EW3vQSVuhVMfSeoe80VTEVka9iXfqDNSA/\n"
"-----END PRIVATE KEY-----\n";

START_TEST(tls_sni_exact_names_ignore_case)
{
	ck_assert(tls_sni_match("example.org", "example.org"));
	ck_assert(tls_sni_match("example.org", "EXAMPLE.Org"));
	ck_assert(!tls_sni_match("example.org", "www.example.org"));
	ck_assert(!tls_sni_match("example.org", "example.org.evil"));
	ck_assert(!tls_sni_match("www.example.org", "example.org"));
}
END_TEST

START_TEST(tls_sni_wildcard_is_exactly_one_label)
{
	ck_assert(tls_sni_match("*.example.org", "a.example.org"));
	ck_assert(tls_sni_match("*.example.org", "A-1.EXAMPLE.org"));
	ck_assert(!tls_sni_match("*.example.org", "example.org"));
	ck_assert(!tls_sni_match("*.example.org", ".example.org"));
	ck_assert(!tls_sni_match("*.example.org", "a.b.example.org"));
	ck_assert(!tls_sni_match("*.example.org", "aexample.org"));
	ck_assert(!tls_sni_match("*.example.org", "a.example.org.x"));
}
END_TEST

static char tls_dir[64];
static struct diag tls_diag;
static struct config *tls_cf;

static int
tls_rm(const char *path, const struct stat *st, int flag, struct FTW *f)
{
	(void)st;
	(void)flag;
	(void)f;
	return remove(path);
}

/* Writes text to tls_dir/name; returns the path (malloc'd). */
static char *
tls_put(const char *name, const char *text)
{
	char	*path = xasprintf("%s/%s", tls_dir, name);
	FILE	*fp;

	ck_assert_ptr_nonnull(fp = fopen(path, "w"));
	ck_assert_int_ge(fputs(text, fp), 0);
	ck_assert_int_eq(fclose(fp), 0);
	return path;
}

static char *tls_cert_path, *tls_key_path, *tls_other_path;

static void
tls_setup(void)
{
	snprintf(tls_dir, sizeof(tls_dir), "/tmp/ssd-check-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(tls_dir));
	diag_init(&tls_diag);
	tls_cf = NULL;
	tls_cert_path = tls_put("cert.pem", tls_cert);
	tls_key_path = tls_put("key.pem", tls_key);
	tls_other_path = tls_put("other.key", tls_other_key);
}

static void
tls_teardown(void)
{
	config_free(tls_cf);
	tls_cf = NULL;
	diag_fini(&tls_diag);
	free(tls_cert_path);
	free(tls_key_path);
	free(tls_other_path);
	nftw(tls_dir, tls_rm, 8, FTW_DEPTH | FTW_PHYS);
}

/* A configuration whose listener has the tls group body (from line 3). */
static int
tls_load(const char *body, const char *listener_extra)
{
	char	*text = xasprintf("listeners = ( { name = \"t\"; address = "
	    "\"127.0.0.1\"; port = 0; handler = \"echo\"; %s\n"
	    "tls = {\n%s\n}; } );\n", listener_extra, body);
	char	*path = tls_put("test.conf", text);
	int	 rc = config_load(path, &tls_cf, &tls_diag);

	free(text);
	free(path);
	return rc;
}

static char *
tls_files(const char *cert, const char *key, const char *more)
{
	return xasprintf("certificate = \"%s\";\nkey = \"%s\";\n%s", cert, key,
	    more);
}

#define ck_assert_has(msg, want)					\
	ck_assert_msg(strstr((msg), (want)) != NULL,			\
	    "\"%s\" does not contain \"%s\"", (msg), (want))

START_TEST(tls_group_defaults_and_settings)
{
	char			*body;
	const struct tls_settings *t;
	static const unsigned char wire[] = "\x02h2\x08http/1.1";

	body = tls_files(tls_cert_path, tls_key_path, "");
	ck_assert_int_eq(tls_load(body, ""), 0);
	free(body);
	t = TAILQ_FIRST(&tls_cf->cf_listeners)->l_tls;
	ck_assert_ptr_nonnull(t);
	ck_assert_ptr_nonnull(t->t_ctx);
	ck_assert_int_eq(t->t_min_version, 12);
	ck_assert_int_eq(t->t_verify, TLS_VERIFY_NONE);
	ck_assert(t->t_tickets);
	ck_assert_ptr_null(t->t_alpn);
	ck_assert_ptr_null(t->t_ciphers);
	config_free(tls_cf);
	tls_cf = NULL;

	body = tls_files(tls_cert_path, tls_key_path, "min_version = \"1.3\";\n"
	    "alpn = [ \"h2\", \"http/1.1\" ];\nciphers = \"\";\n"
	    "session_tickets = false;\n"
	    "sni = ( { server_name = \"*.unit.test\"; certificate = \"");
	{
		char *all = xasprintf("%s%s\"; key = \"%s\"; } );", body,
		    tls_cert_path, tls_key_path);

		ck_assert_msg(tls_load(all, "") == 0, "%s",
		    tls_diag.d_count ? tls_diag.d_msgs[0] : "");
		free(all);
	}
	free(body);
	t = TAILQ_FIRST(&tls_cf->cf_listeners)->l_tls;
	ck_assert_int_eq(t->t_min_version, 13);
	ck_assert(!t->t_tickets);
	ck_assert_ptr_null(t->t_ciphers);	/* "" = OpenSSL's default */
	ck_assert_uint_eq(t->t_alpn_len, sizeof(wire) - 1);
	ck_assert_mem_eq(t->t_alpn, wire, sizeof(wire) - 1);
	ck_assert_uint_eq(t->t_nsni, 1);
	ck_assert_str_eq(t->t_sni[0].c_name, "*.unit.test");
}
END_TEST

START_TEST(tls_file_problems_at_their_line)
{
	char *body;

	/* line 2 is "tls = {", so certificate is on 3 and key on 4 */
	body = tls_files("/nonexistent/cert.pem", tls_key_path, "");
	ck_assert_int_eq(tls_load(body, ""), -1);
	free(body);
	ck_assert_uint_eq(tls_diag.d_count, 1);
	ck_assert_has(tls_diag.d_msgs[0], "test.conf:3: certificate "
	    "/nonexistent/cert.pem: No such file or directory");
	diag_fini(&tls_diag);
	diag_init(&tls_diag);

	body = tls_files(tls_cert_path, tls_other_path, "");
	ck_assert_int_eq(tls_load(body, ""), -1);
	free(body);
	ck_assert_uint_eq(tls_diag.d_count, 1);
	ck_assert_has(tls_diag.d_msgs[0], "test.conf:4: key ");
	ck_assert_has(tls_diag.d_msgs[0], "does not match the certificate");
	diag_fini(&tls_diag);
	diag_init(&tls_diag);

	/* the key file given as the certificate: no certificate in it */
	body = tls_files(tls_key_path, tls_key_path, "");
	ck_assert_int_eq(tls_load(body, ""), -1);
	free(body);
	ck_assert_has(tls_diag.d_msgs[0], "test.conf:3: certificate ");
}
END_TEST

START_TEST(tls_setting_problems)
{
	char *body;

	body = tls_files(tls_cert_path, tls_key_path,
	    "verify_client = \"require\";");
	ck_assert_int_eq(tls_load(body, ""), -1);
	ck_assert_has(tls_diag.d_msgs[0], "test.conf:5: \"verify_client\" = "
	    "\"require\" needs \"client_ca\"");
	diag_fini(&tls_diag);
	diag_init(&tls_diag);
	ck_assert_int_eq(tls_load(body, "type = \"dgram\";"), -1);
	ck_assert_uint_eq(tls_diag.d_count, 1);
	ck_assert_has(tls_diag.d_msgs[0], "test.conf:2: \"tls\" applies to "
	    "stream listeners only");
	free(body);
	diag_fini(&tls_diag);
	diag_init(&tls_diag);
	ck_assert_int_eq(tls_load("key = \"/x\";", ""), -1);
	ck_assert_has(tls_diag.d_msgs[0], "test.conf:2: \"tls\" has no "
	    "\"certificate\"");
}
END_TEST

Suite *
tls_suite(void)
{
	Suite	*s = suite_create("tls");
	TCase	*tc = tcase_create("sni");

	tcase_add_test(tc, tls_sni_exact_names_ignore_case);
	tcase_add_test(tc, tls_sni_wildcard_is_exactly_one_label);
	suite_add_tcase(s, tc);
	tc = tcase_create("config");
	tcase_add_checked_fixture(tc, tls_setup, tls_teardown);
	tcase_add_test(tc, tls_group_defaults_and_settings);
	tcase_add_test(tc, tls_file_problems_at_their_line);
	tcase_add_test(tc, tls_setting_problems);
	suite_add_tcase(s, tc);
	return s;
}
