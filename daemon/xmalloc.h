/* SPDX-License-Identifier: ISC */
/*
 * xmalloc.h - allocation wrappers for the core: they never return NULL,
 * they log and exit on exhaustion.  Handlers use plain malloc instead.
 */
#ifndef XMALLOC_H
#define XMALLOC_H

#include <stddef.h>

void	*xmalloc(size_t);
void	*xcalloc(size_t, size_t);
void	*xreallocarray(void *, size_t, size_t);
/* returns a copy the caller frees */
char	*xstrdup(const char *);
/* returns a formatted string the caller frees */
char	*xasprintf(const char *, ...) __attribute__((format(printf, 1, 2)));

#endif /* XMALLOC_H */
