/* SPDX-License-Identifier: ISC */
/*
 * ssd-api-stub.c - the ssd_* API as a throwaway shared object, for one
 * purpose: linking each plugin with -Wl,-z,defs against it, so that a
 * plugin that uses any symbol the daemon does not export fails at build
 * time instead of at dlopen.  Never installed, never loaded.  Adding a
 * function to sockserverd.h without adding it here breaks that check.
 */
#include <stdlib.h>

#include <sockserverd.h>

ssize_t ssd_read(struct ssd_request *r, void *b, size_t n)
{ (void)r; (void)b; (void)n; abort(); }
ssize_t ssd_readline(struct ssd_request *r, char *b, size_t n)
{ (void)r; (void)b; (void)n; abort(); }
int ssd_write(struct ssd_request *r, const void *b, size_t n)
{ (void)r; (void)b; (void)n; abort(); }
int ssd_printf(struct ssd_request *r, const char *f, ...)
{ (void)r; (void)f; abort(); }
const char *ssd_peer(const struct ssd_request *r)
{ (void)r; abort(); }
const struct sockaddr *ssd_peer_addr(const struct ssd_request *r, socklen_t *l)
{ (void)r; (void)l; abort(); }
const char *ssd_listener_name(const struct ssd_request *r)
{ (void)r; abort(); }
void *ssd_instance(const struct ssd_request *r)
{ (void)r; abort(); }
void *ssd_data(const struct ssd_request *r)
{ (void)r; abort(); }
void ssd_set_data(struct ssd_request *r, void *d)
{ (void)r; (void)d; abort(); }
int ssd_fd(const struct ssd_request *r)
{ (void)r; abort(); }
int ssd_socktype(const struct ssd_request *r)
{ (void)r; abort(); }
int ssd_waitpid(struct ssd_request *r, pid_t p, int *s)
{ (void)r; (void)p; (void)s; abort(); }
int ssd_write_stats(struct ssd_request *r, int f)
{ (void)r; (void)f; abort(); }
void ssd_log(const struct ssd_request *r, int l, const char *f, ...)
{ (void)r; (void)l; (void)f; abort(); }
void ssd_option_error(const config_setting_t *s, const char *f, ...)
{ (void)s; (void)f; abort(); }
const char *ssd_env(const struct ssd_request *r, const char *n)
{ (void)r; (void)n; abort(); }
int ssd_relay(struct ssd_request *r, int t, int f, pid_t p, int *s)
{ (void)r; (void)t; (void)f; (void)p; (void)s; abort(); }
