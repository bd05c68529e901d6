/* SPDX-License-Identifier: ISC */
/*
 * check_addr.c - addr_format, addr_format_local, addr_guess_family and
 * addr_resolve.  Only literals, "*", unix paths and "localhost" (from
 * /etc/hosts; skipped where it has none) are resolved: these tests never
 * query DNS.
 */
#include <arpa/inet.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include <check.h>

#include "daemon.h"
#include "suites.h"

START_TEST(addr_formats_inet_peer)
{
	struct sockaddr_in	sin;
	char			buf[ADDR_STRLEN];

	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons(5555);
	inet_pton(AF_INET, "127.0.0.1", &sin.sin_addr);
	addr_format((struct sockaddr *)&sin, sizeof(sin), buf, sizeof(buf));
	ck_assert_str_eq(buf, "127.0.0.1:5555");
}
END_TEST

START_TEST(addr_formats_inet_as_inet_ntop_and_printf_would)
{
	static const char *const addrs[] = { "0.0.0.0", "255.255.255.255",
	    "10.0.0.1", "192.168.100.9", "1.22.133.4" };
	static const unsigned ports[] = { 0, 9, 10, 99, 100, 65535 };
	struct sockaddr_in	 sin;
	char			 buf[ADDR_STRLEN], want[ADDR_STRLEN];

	for (size_t i = 0; i < sizeof(addrs) / sizeof(addrs[0]); i++)
		for (size_t j = 0; j < sizeof(ports) / sizeof(ports[0]); j++) {
			memset(&sin, 0, sizeof(sin));
			sin.sin_family = AF_INET;
			sin.sin_port = htons((uint16_t)ports[j]);
			inet_pton(AF_INET, addrs[i], &sin.sin_addr);
			snprintf(want, sizeof(want), "%s:%u", addrs[i],
			    ports[j]);
			addr_format((struct sockaddr *)&sin, sizeof(sin), buf,
			    sizeof(buf));
			ck_assert_str_eq(buf, want);
			/* A buffer too small for any: truncated as snprintf
			 * does. */
			addr_format((struct sockaddr *)&sin, sizeof(sin), buf,
			    8);
			want[7] = '\0';
			ck_assert_str_eq(buf, want);
		}
}
END_TEST

START_TEST(addr_formats_inet6_peer_in_brackets)
{
	struct sockaddr_in6	sin6;
	char			buf[ADDR_STRLEN];

	memset(&sin6, 0, sizeof(sin6));
	sin6.sin6_family = AF_INET6;
	sin6.sin6_port = htons(5555);
	inet_pton(AF_INET6, "::1", &sin6.sin6_addr);
	addr_format((struct sockaddr *)&sin6, sizeof(sin6), buf, sizeof(buf));
	ck_assert_str_eq(buf, "[::1]:5555");
	inet_pton(AF_INET6, "ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255",
	    &sin6.sin6_addr);
	sin6.sin6_port = htons(65535);
	addr_format((struct sockaddr *)&sin6, sizeof(sin6), buf, sizeof(buf));
	ck_assert_str_eq(buf,
	    "[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:65535");
}
END_TEST

START_TEST(addr_formats_unix_peer_as_unix)
{
	struct sockaddr_un	sun;
	char			buf[ADDR_STRLEN];

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	strcpy(sun.sun_path, "/run/client.sock");
	addr_format((struct sockaddr *)&sun, sizeof(sun), buf, sizeof(buf));
	ck_assert_str_eq(buf, "unix");
	addr_format((struct sockaddr *)&sun, sizeof(sa_family_t), buf,
	    sizeof(buf));
	ck_assert_str_eq(buf, "unix");
}
END_TEST

START_TEST(addr_format_truncates_to_the_buffer)
{
	struct sockaddr_in	sin;
	char			buf[8];

	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons(5555);
	inet_pton(AF_INET, "127.0.0.1", &sin.sin_addr);
	addr_format((struct sockaddr *)&sin, sizeof(sin), buf, sizeof(buf));
	ck_assert_str_eq(buf, "127.0.0");
}
END_TEST

START_TEST(addr_format_local_shows_unix_path)
{
	struct sockaddr_un	sun;
	char			buf[ADDR_STRLEN + 110];
	const char		*path = "/run/sockserverd/echo.sock";

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	strcpy(sun.sun_path, path);
	addr_format_local((struct sockaddr *)&sun, (socklen_t)(offsetof(
	    struct sockaddr_un, sun_path) + strlen(path) + 1), buf,
	    sizeof(buf));
	ck_assert_str_eq(buf, path);
	/* Some kernels report the whole structure: the NUL still ends it. */
	addr_format_local((struct sockaddr *)&sun, sizeof(sun), buf,
	    sizeof(buf));
	ck_assert_str_eq(buf, path);
}
END_TEST

START_TEST(addr_format_local_shows_abstract_name)
{
	struct sockaddr_un	sun;
	char			buf[ADDR_STRLEN + 110];

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	memcpy(sun.sun_path, "\0demo", 5);
	addr_format_local((struct sockaddr *)&sun, (socklen_t)(offsetof(
	    struct sockaddr_un, sun_path) + 5), buf, sizeof(buf));
	ck_assert_str_eq(buf, "@demo");
}
END_TEST

START_TEST(addr_format_local_unnamed_unix_socket)
{
	struct sockaddr_un	sun;
	char			buf[ADDR_STRLEN + 110];

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	addr_format_local((struct sockaddr *)&sun, sizeof(sa_family_t), buf,
	    sizeof(buf));
	ck_assert_str_eq(buf, "unix");
}
END_TEST

START_TEST(addr_format_local_inet_is_ip_and_port)
{
	struct sockaddr_in	sin;
	char			buf[ADDR_STRLEN + 110];

	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons(7);
	inet_pton(AF_INET, "192.0.2.1", &sin.sin_addr);
	addr_format_local((struct sockaddr *)&sin, sizeof(sin), buf,
	    sizeof(buf));
	ck_assert_str_eq(buf, "192.0.2.1:7");
}
END_TEST

START_TEST(addr_guesses_family_from_the_address)
{
	ck_assert_int_eq(addr_guess_family("127.0.0.1"), AF_INET);
	ck_assert_int_eq(addr_guess_family("0.0.0.0"), AF_INET);
	ck_assert_int_eq(addr_guess_family("::1"), AF_INET6);
	ck_assert_int_eq(addr_guess_family("::ffff:10.0.0.1"), AF_INET6);
	ck_assert_int_eq(addr_guess_family("/run/x.sock"), AF_UNIX);
	ck_assert_int_eq(addr_guess_family("@abstract"), AF_UNIX);
	ck_assert_int_eq(addr_guess_family("localhost"), AF_UNSPEC);
	ck_assert_int_eq(addr_guess_family("*"), AF_UNSPEC);
	ck_assert_int_eq(addr_guess_family("1.2.3"), AF_UNSPEC);
	ck_assert_int_eq(addr_guess_family("relative.sock"), AF_UNSPEC);
}
END_TEST

/* Resolves and checks for success; returns the family. */
static int
addr_ok(int family, const char *address, int port,
    struct sockaddr_storage *ss, socklen_t *len)
{
	char err[256] = "";

	ck_assert_msg(addr_resolve(family, address, port, ss, len, err,
	    sizeof(err)) == 0, "\"%s\" failed: %s", address, err);
	return ss->ss_family;
}

START_TEST(addr_resolves_inet_literal)
{
	struct sockaddr_storage	 ss;
	struct sockaddr_in	*sin = (struct sockaddr_in *)(void *)&ss;
	socklen_t		 len;
	char			 buf[ADDR_STRLEN];

	ck_assert_int_eq(addr_ok(AF_UNSPEC, "192.0.2.1", 7, &ss, &len),
	    AF_INET);
	ck_assert_uint_eq(len, sizeof(struct sockaddr_in));
	ck_assert_uint_eq(ntohs(sin->sin_port), 7);
	addr_format((struct sockaddr *)&ss, len, buf, sizeof(buf));
	ck_assert_str_eq(buf, "192.0.2.1:7");
	ck_assert_int_eq(addr_ok(AF_INET, "127.0.0.1", 0, &ss, &len),
	    AF_INET);
	ck_assert_uint_eq(ntohs(sin->sin_port), 0);
}
END_TEST

START_TEST(addr_resolves_inet6_literal)
{
	struct sockaddr_storage	 ss;
	socklen_t		 len;
	char			 buf[ADDR_STRLEN];

	ck_assert_int_eq(addr_ok(AF_UNSPEC, "::1", 65535, &ss, &len),
	    AF_INET6);
	ck_assert_uint_eq(len, sizeof(struct sockaddr_in6));
	addr_format((struct sockaddr *)&ss, len, buf, sizeof(buf));
	ck_assert_str_eq(buf, "[::1]:65535");
	ck_assert_int_eq(addr_ok(AF_INET6, "2001:db8::1", 80, &ss, &len),
	    AF_INET6);
	addr_format((struct sockaddr *)&ss, len, buf, sizeof(buf));
	ck_assert_str_eq(buf, "[2001:db8::1]:80");
}
END_TEST

START_TEST(addr_star_is_inet_any)
{
	struct sockaddr_storage	 ss;
	struct sockaddr_in	*sin = (struct sockaddr_in *)(void *)&ss;
	socklen_t		 len;

	ck_assert_int_eq(addr_ok(AF_UNSPEC, "*", 7007, &ss, &len), AF_INET);
	ck_assert_uint_eq(sin->sin_addr.s_addr, htonl(INADDR_ANY));
	ck_assert_uint_eq(ntohs(sin->sin_port), 7007);
	ck_assert_int_eq(addr_ok(AF_INET, "*", 7007, &ss, &len), AF_INET);
	ck_assert_uint_eq(sin->sin_addr.s_addr, htonl(INADDR_ANY));
}
END_TEST

START_TEST(addr_star_is_inet6_any_when_family_is_inet6)
{
	struct sockaddr_storage	 ss;
	struct sockaddr_in6	*sin6 = (struct sockaddr_in6 *)(void *)&ss;
	socklen_t		 len;

	ck_assert_int_eq(addr_ok(AF_INET6, "*", 7007, &ss, &len), AF_INET6);
	ck_assert(IN6_IS_ADDR_UNSPECIFIED(&sin6->sin6_addr));
	ck_assert_uint_eq(ntohs(sin6->sin6_port), 7007);
}
END_TEST

/* True if /etc/hosts names "localhost" for an IPv4 address: without it,
 * resolving "localhost" would ask DNS, or fail. */
static bool
hosts_has_localhost(void)
{
	FILE	*fp = fopen("/etc/hosts", "r");
	char	 line[1024], *tok, *save;
	bool	 found = false;
	struct in_addr a;

	if (fp == NULL)
		return false;
	while (!found && fgets(line, sizeof(line), fp) != NULL) {
		line[strcspn(line, "#")] = '\0';
		if ((tok = strtok_r(line, " \t\n", &save)) == NULL ||
		    inet_pton(AF_INET, tok, &a) != 1)
			continue;
		while ((tok = strtok_r(NULL, " \t\n", &save)) != NULL)
			if (strcmp(tok, "localhost") == 0)
				found = true;
	}
	fclose(fp);
	return found;
}

START_TEST(addr_resolves_localhost_from_hosts_file)
{
	struct sockaddr_storage	 ss;
	struct sockaddr_in	*sin = (struct sockaddr_in *)(void *)&ss;
	socklen_t		 len;

	/* AF_INET only: every /etc/hosts has 127.0.0.1, not every ::1. */
	ck_assert_int_eq(addr_ok(AF_INET, "localhost", 7, &ss, &len),
	    AF_INET);
	ck_assert_uint_eq(ntohl(sin->sin_addr.s_addr) >> 24, 127);
	ck_assert_uint_eq(ntohs(sin->sin_port), 7);
}
END_TEST

START_TEST(addr_resolves_unix_path)
{
	struct sockaddr_storage	 ss;
	struct sockaddr_un	*sun = (struct sockaddr_un *)(void *)&ss;
	socklen_t		 len;
	const char		*path = "/tmp/sockserverd-test.sock";

	ck_assert_int_eq(addr_ok(AF_UNSPEC, path, -1, &ss, &len), AF_UNIX);
	ck_assert_str_eq(sun->sun_path, path);
	ck_assert_uint_eq(len, offsetof(struct sockaddr_un, sun_path) +
	    strlen(path) + 1);
	ck_assert_int_eq(addr_ok(AF_UNIX, path, 0, &ss, &len), AF_UNIX);
	ck_assert_str_eq(sun->sun_path, path);
}
END_TEST

START_TEST(addr_resolves_abstract_name_without_nul)
{
	struct sockaddr_storage	 ss;
	struct sockaddr_un	*sun = (struct sockaddr_un *)(void *)&ss;
	socklen_t		 len;
	char			 buf[ADDR_STRLEN + 110];

	ck_assert_int_eq(addr_ok(AF_UNSPEC, "@demo", -1, &ss, &len), AF_UNIX);
	ck_assert_uint_eq(len, offsetof(struct sockaddr_un, sun_path) + 5);
	ck_assert_int_eq(sun->sun_path[0], '\0');
	ck_assert_mem_eq(sun->sun_path + 1, "demo", 4);
	addr_format_local((struct sockaddr *)&ss, len, buf, sizeof(buf));
	ck_assert_str_eq(buf, "@demo");
}
END_TEST

START_TEST(addr_accepts_longest_unix_path)
{
	struct sockaddr_storage	 ss;
	struct sockaddr_un	*sun = (struct sockaddr_un *)(void *)&ss;
	socklen_t		 len;
	char			 path[sizeof(sun->sun_path)];

	memset(path, 'x', sizeof(path) - 1);
	path[0] = '/';
	path[sizeof(path) - 1] = '\0';
	ck_assert_int_eq(addr_ok(AF_UNIX, path, 0, &ss, &len), AF_UNIX);
	ck_assert_uint_eq(len, sizeof(struct sockaddr_un));
	ck_assert_str_eq(sun->sun_path, path);
}
END_TEST

/* Resolves and checks for failure with a message containing want. */
static void
addr_fails(int family, const char *address, const char *want)
{
	struct sockaddr_storage	ss;
	socklen_t		len;
	char			err[256] = "";

	ck_assert_msg(addr_resolve(family, address, 7, &ss, &len, err,
	    sizeof(err)) == -1, "\"%s\" was accepted", address);
	ck_assert_msg(strstr(err, want) != NULL,
	    "\"%s\": error \"%s\" does not mention \"%s\"", address, err,
	    want);
}

START_TEST(addr_rejects_unix_path_too_long)
{
	char path[sizeof(((struct sockaddr_un *)NULL)->sun_path) + 1];

	memset(path, 'x', sizeof(path) - 1);
	path[0] = '/';
	path[sizeof(path) - 1] = '\0';
	addr_fails(AF_UNIX, path, "107");
	addr_fails(AF_UNSPEC, path, "107");
	addr_fails(AF_UNIX, "@", "characters long");
}
END_TEST

START_TEST(addr_rejects_relative_unix_path)
{
	addr_fails(AF_UNIX, "relative.sock", "absolute path or @name");
	addr_fails(AF_UNIX, "run/x.sock", "absolute path or @name");
}
END_TEST

START_TEST(addr_rejects_family_mismatch)
{
	addr_fails(AF_INET, "::1", "is not an IPv4 address");
	addr_fails(AF_INET6, "127.0.0.1", "is not an IPv6 address");
	addr_fails(AF_INET, "/tmp/x.sock", "family is not unix");
	addr_fails(AF_INET6, "@abstract", "family is not unix");
}
END_TEST

Suite *
addr_suite(void)
{
	Suite	*s = suite_create("addr");
	TCase	*tc;

	tc = tcase_create("format");
	tcase_add_test(tc, addr_formats_inet_peer);
	tcase_add_test(tc, addr_formats_inet_as_inet_ntop_and_printf_would);
	tcase_add_test(tc, addr_formats_inet6_peer_in_brackets);
	tcase_add_test(tc, addr_formats_unix_peer_as_unix);
	tcase_add_test(tc, addr_format_truncates_to_the_buffer);
	tcase_add_test(tc, addr_format_local_shows_unix_path);
	tcase_add_test(tc, addr_format_local_shows_abstract_name);
	tcase_add_test(tc, addr_format_local_unnamed_unix_socket);
	tcase_add_test(tc, addr_format_local_inet_is_ip_and_port);
	suite_add_tcase(s, tc);

	tc = tcase_create("resolve");
	tcase_add_test(tc, addr_guesses_family_from_the_address);
	tcase_add_test(tc, addr_resolves_inet_literal);
	tcase_add_test(tc, addr_resolves_inet6_literal);
	tcase_add_test(tc, addr_star_is_inet_any);
	tcase_add_test(tc, addr_star_is_inet6_any_when_family_is_inet6);
	if (hosts_has_localhost())
		tcase_add_test(tc, addr_resolves_localhost_from_hosts_file);
	else
		fprintf(stderr, "addr_resolves_localhost_from_hosts_file: "
		    "skipped: no IPv4 localhost in /etc/hosts\n");
	tcase_add_test(tc, addr_resolves_unix_path);
	tcase_add_test(tc, addr_resolves_abstract_name_without_nul);
	tcase_add_test(tc, addr_accepts_longest_unix_path);
	tcase_add_test(tc, addr_rejects_unix_path_too_long);
	tcase_add_test(tc, addr_rejects_relative_unix_path);
	tcase_add_test(tc, addr_rejects_family_mismatch);
	suite_add_tcase(s, tc);
	return s;
}
