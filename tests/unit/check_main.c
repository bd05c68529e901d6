/* SPDX-License-Identifier: ISC */
/*
 * check_main.c - the unit test runner: every suite of suites.h, in Check's
 * fork mode (a crash fails one test, not the run).  CK_FORK=no for gdb;
 * CK_RUN_SUITE, CK_RUN_CASE and CK_TAP_LOG_FILE_NAME work as Check
 * documents.  Run from the repository root: the config tests find
 * tests/conf relative to it.  Exits nonzero if any test failed.
 */
#include <stdlib.h>

#include "daemon.h"
#include "suites.h"

static Suite *(*const check_suites[])(void) = {
	acl_suite,
	addr_suite,
	config_suite,
	request_suite,
	handlers_suite,
	coro_suite,
	proxy_suite,
	tls_suite,
};

int
main(void)
{
	SRunner	*sr;
	int	 nfailed;

	/* Tests that exercise error paths must not flood the output. */
	log_init(LOG_ERR, LOG_TARGET_STDERR);
	sr = srunner_create(check_suites[0]());
	for (size_t i = 1; i < sizeof(check_suites) / sizeof(check_suites[0]);
	    i++)
		srunner_add_suite(sr, check_suites[i]());
	srunner_run_all(sr, CK_NORMAL);
	nfailed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return nfailed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
