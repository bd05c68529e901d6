/* SPDX-License-Identifier: ISC */
/*
 * loader.c - turns a listener's "handler" setting into a struct ssd_handler:
 * a compiled-in handler from handlers/builtin.def, or a plugin .so opened
 * with dlopen(RTLD_NOW | RTLD_LOCAL) whose ABI version is checked before
 * anything else is read.  Never logs: errors go back to the caller.
 */
#include <sys/stat.h>

#include <ctype.h>
#include <errno.h>
#include <dirent.h>
#include <dlfcn.h>
#include <stdlib.h>
#include <string.h>

#include "daemon.h"

#define BUILTIN(id) extern const struct ssd_handler ssd_builtin_##id;
#include "../handlers/builtin.def"
#undef BUILTIN

static const struct ssd_handler *const loader_builtins[] = {
#define BUILTIN(id) &ssd_builtin_##id,
#include "../handlers/builtin.def"
#undef BUILTIN
	NULL
};

bool
loader_name_is_valid(const char *s)
{
	if (*s == '\0')
		return false;
	for (; *s != '\0'; s++)
		if (!isalnum((unsigned char)*s) && *s != '_' && *s != '-')
			return false;
	return true;
}

const struct ssd_handler *
loader_builtin(size_t i)
{
	if (i >= sizeof(loader_builtins) / sizeof(loader_builtins[0]))
		return NULL;
	return loader_builtins[i];
}

static const struct ssd_handler *
loader_dlopen(const char *path, void **dl_r, char *err, size_t errlen)
{
	const struct ssd_handler	*h;
	void				*dl;
	const char			*e;

	*dl_r = NULL;
	if ((dl = dlopen(path, RTLD_NOW | RTLD_LOCAL)) == NULL) {
		e = dlerror();
		snprintf(err, errlen, "%s", e != NULL ? e : path);
		return NULL;
	}
	dlerror();
	h = dlsym(dl, "sockserverd_handler");
	if (h == NULL) {
		snprintf(err, errlen, "%s: no sockserverd_handler symbol",
		    path);
		goto fail;
	}
	/* Read abi first, and nothing else until it matches. */
	if (h->abi != SSD_ABI_VERSION) {
		snprintf(err, errlen, "%s: handler ABI version %u, sockserverd "
		    "supports %u", path, h->abi, (unsigned)SSD_ABI_VERSION);
		goto fail;
	}
	if (h->name == NULL || !loader_name_is_valid(h->name)) {
		snprintf(err, errlen, "%s: handler name missing or not "
		    "[A-Za-z0-9_-]+", path);
		goto fail;
	}
	if (h->handle == NULL) {
		snprintf(err, errlen, "%s: handler \"%s\" has no handle "
		    "function", path, h->name);
		goto fail;
	}
	*dl_r = dl;
	return h;
fail:
	dlclose(dl);
	return NULL;
}

static const struct ssd_handler *
loader_find_builtin(const char *name)
{
	for (size_t i = 0; loader_builtins[i] != NULL; i++)
		if (strcmp(loader_builtins[i]->name, name) == 0)
			return loader_builtins[i];
	return NULL;
}

/* The file a plugin spec names (caller frees), or NULL for a builtin. */
static char *
loader_path(const char *spec, const char *handler_dir)
{
	if (spec[0] == '/')
		return xstrdup(spec);
	if (loader_find_builtin(spec) != NULL)
		return NULL;
	return xasprintf("%s/%s.so", handler_dir, spec);
}

bool
loader_exists(const char *spec, const char *handler_dir, char *err,
    size_t errlen)
{
	struct stat	 st;
	char		*path;
	bool		 ok = true;

	if (spec[0] != '/' && !loader_name_is_valid(spec)) {
		snprintf(err, errlen, "handler \"%s\" must be a name "
		    "(A-Z a-z 0-9 _ -) or an absolute path", spec);
		return false;
	}
	if ((path = loader_path(spec, handler_dir)) == NULL)
		return true;
	if (stat(path, &st) == -1) {
		if (spec[0] == '/')
			snprintf(err, errlen, "handler %s: %s", path,
			    strerror(errno));
		else
			snprintf(err, errlen, "unknown handler \"%s\": not "
			    "compiled in, and no %s", spec, path);
		ok = false;
	}
	free(path);
	return ok;
}

const struct ssd_handler *
loader_open(const char *spec, const char *handler_dir, void **dl_r,
    char *err, size_t errlen)
{
	const struct ssd_handler	*h;
	char				*path;

	*dl_r = NULL;
	if (!loader_exists(spec, handler_dir, err, errlen))
		return NULL;
	if ((path = loader_path(spec, handler_dir)) == NULL)
		return loader_find_builtin(spec);
	h = loader_dlopen(path, dl_r, err, errlen);
	free(path);
	return h;
}

void
loader_close(void *dl)
{
	if (dl != NULL)
		dlclose(dl);
}

static int
loader_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

void
loader_list(const char *handler_dir, FILE *fp)
{
	DIR		*dir;
	struct dirent	*de;
	char		**names = NULL, err[512];
	size_t		 n = 0;

	for (size_t i = 0; loader_builtins[i] != NULL; i++)
		fprintf(fp, "%-12s %-9s %s\n", loader_builtins[i]->name,
		    "builtin", loader_builtins[i]->description != NULL ?
		    loader_builtins[i]->description : "");
	if ((dir = opendir(handler_dir)) == NULL)
		return;
	while ((de = readdir(dir)) != NULL) {
		size_t len = strlen(de->d_name);

		if (len > 3 && strcmp(de->d_name + len - 3, ".so") == 0) {
			names = xreallocarray(names, n + 1, sizeof(*names));
			names[n++] = xstrdup(de->d_name);
		}
	}
	closedir(dir);
	if (n > 0)
		qsort(names, n, sizeof(*names), loader_cmp);
	for (size_t i = 0; i < n; i++) {
		const struct ssd_handler	*h;
		void				*dl;
		char				*path;

		path = xasprintf("%s/%s", handler_dir, names[i]);
		names[i][strlen(names[i]) - 3] = '\0';
		if ((h = loader_dlopen(path, &dl, err, sizeof(err))) == NULL)
			fprintf(fp, "%-12s %-9s refused: %s\n", names[i],
			    "plugin", err);
		else {
			fprintf(fp, "%-12s %-9s %s\n", names[i], "plugin",
			    h->description != NULL ? h->description : "");
			loader_close(dl);
		}
		free(path);
		free(names[i]);
	}
	free(names);
}
