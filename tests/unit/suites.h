/* SPDX-License-Identifier: ISC */
/*
 * suites.h - the Check suites of the unit test binary, one per daemon
 * module, each defined in check_<module>.c.  check_main.c runs them all;
 * add a suite here and to its table when adding a check_<module>.c.
 */
#ifndef SUITES_H
#define SUITES_H

#include <check.h>

Suite	*acl_suite(void);
Suite	*addr_suite(void);
Suite	*config_suite(void);
Suite	*request_suite(void);
Suite	*handlers_suite(void);
Suite	*coro_suite(void);
Suite	*proxy_suite(void);
Suite	*tls_suite(void);

#endif /* SUITES_H */
