/* SPDX-License-Identifier: ISC */
/*
 * loader.c - turns a listener's "handler" setting into a struct ssd_handler:
 * a compiled-in handler from handlers/builtin.def, or a plugin .so opened
 * with dlopen(RTLD_NOW | RTLD_LOCAL) whose ABI version is checked before
 * anything else is read.  Never logs: errors go back to the caller.
 */
#include <sys/queue.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <ctype.h>
#include <errno.h>
#include <dirent.h>
#include <dlfcn.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <signal.h>
#include <unistd.h>
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

/*
 * Loaded plugins, by file identity.  dlopen(3) hands back the object it
 * already has for a path it has seen, even when the file was replaced
 * since; so a plugin replaced on disk is opened under a unique name of
 * its own (a symbolic link in a private directory) and gets loaded
 * afresh, while the old code stays mapped for the requests still using
 * it.  An unchanged file is shared: one more reference, no second load.
 */
struct plugin {
	LIST_ENTRY(plugin)		 p_entry;
	char				*p_path;
	dev_t				 p_dev;
	ino_t				 p_ino;
	off_t				 p_size;
	struct timespec			 p_mtime;
	void				*p_dl;
	const struct ssd_handler	*p_h;
	unsigned			 p_refs;
};
static LIST_HEAD(, plugin) loader_plugins = LIST_HEAD_INITIALIZER(loader_plugins);
static atomic_ulong loader_generation;
/* A reload prepares handlers on a thread of its own while the loop
 * releases a retired generation's: the list and counts under a lock. */
static pthread_mutex_t loader_mtx = PTHREAD_MUTEX_INITIALIZER;

/* A probe child is forked by the reload thread: the lock must not be
 * held by the main thread (loader_close) at that moment. */
static void
loader_atfork_prepare(void)
{
	pthread_mutex_lock(&loader_mtx);
}

static void
loader_atfork_release(void)
{
	pthread_mutex_unlock(&loader_mtx);
}

__attribute__((constructor)) static void
loader_atfork_register(void)
{
	pthread_atfork(loader_atfork_prepare, loader_atfork_release,
	    loader_atfork_release);
}

static const struct ssd_handler *
loader_check(void *dl, const char *path, char *err, size_t errlen)
{
	const struct ssd_handler *h;

	dlerror();
	h = dlsym(dl, "sockserverd_handler");
	if (h == NULL) {
		snprintf(err, errlen, "%s: no sockserverd_handler symbol",
		    path);
		return NULL;
	}
	/* Read abi first, and nothing else until it matches. */
	if (h->abi != SSD_ABI_VERSION) {
		snprintf(err, errlen, "%s: handler ABI version %u, sockserverd "
		    "supports %u", path, h->abi, (unsigned)SSD_ABI_VERSION);
		return NULL;
	}
	if (h->name == NULL || !loader_name_is_valid(h->name)) {
		snprintf(err, errlen, "%s: handler name missing or not "
		    "[A-Za-z0-9_-]+", path);
		return NULL;
	}
	if (h->handle == NULL) {
		snprintf(err, errlen, "%s: handler \"%s\" has no handle "
		    "function", path, h->name);
		return NULL;
	}
	return h;
}

/* dlopen under a name no loaded object has: a fresh load of path. */
static void *
loader_dlopen_fresh(const char *path, char *err, size_t errlen)
{
	const char	*tmp = getenv("TMPDIR");
	char		 dir[PATH_MAX], link[PATH_MAX + 64], *abs;
	void		*dl = NULL;

	/* Named after this process, so that what a loading crash leaves
	 * behind can be found and removed (loader_private_cleanup). */
	snprintf(dir, sizeof(dir), "%s/sockserverd-plugin.%ld.XXXXXX",
	    tmp != NULL && tmp[0] == '/' ? tmp : "/tmp", (long)getpid());
	if ((abs = realpath(path, NULL)) == NULL || mkdtemp(dir) == NULL) {
		snprintf(err, errlen, "%s: cannot load a new copy: %s", path,
		    strerror(errno));
		free(abs);
		return NULL;
	}
	snprintf(link, sizeof(link), "%s/%lu.so", dir,
	    atomic_fetch_add(&loader_generation, 1) + 1);
	if (symlink(abs, link) == -1)
		snprintf(err, errlen, "%s: cannot load a new copy: %s", path,
		    strerror(errno));
	else {
		if ((dl = dlopen(link, RTLD_NOW | RTLD_LOCAL)) == NULL)
			snprintf(err, errlen, "%s", dlerror());
		unlink(link);
	}
	rmdir(dir);
	free(abs);
	return dl;
}

/* A plugin's last reference went while a load was in progress: closed
 * by that load when it ends (see loader_close). */
static LIST_HEAD(, plugin) loader_doomed = LIST_HEAD_INITIALIZER(loader_doomed);
static unsigned loader_loading;		/* loads in progress */

static void
loader_unload(struct plugin *p)
{
	dlclose(p->p_dl);
	free(p->p_path);
	free(p);
}

/* Ends a load: closes what was doomed meanwhile.  Takes loader_mtx held,
 * releases it. */
static void
loader_load_done(void)
{
	LIST_HEAD(, plugin)	 doomed;
	struct plugin		*p;

	LIST_INIT(&doomed);
	if (--loader_loading == 0)
		while ((p = LIST_FIRST(&loader_doomed)) != NULL) {
			LIST_REMOVE(p, p_entry);
			LIST_INSERT_HEAD(&doomed, p, p_entry);
		}
	pthread_mutex_unlock(&loader_mtx);
	while ((p = LIST_FIRST(&doomed)) != NULL) {
		LIST_REMOVE(p, p_entry);
		loader_unload(p);
	}
}

/*
 * dlopen runs the plugin's constructors under the C library's loader
 * lock, on the reload thread: the lists are locked around it, not during
 * it, and the main thread never calls dlclose meanwhile (it would wait
 * for that lock): the last close is left to the load in progress.
 */
static const struct ssd_handler *
loader_dlopen(const char *path, void **dl_r, char *err, size_t errlen)
{
	const struct ssd_handler	*h;
	struct plugin			*p;
	struct stat			 st;
	bool				 stale = false;
	void				*dl;

	*dl_r = NULL;
	if (stat(path, &st) == -1) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return NULL;
	}
	pthread_mutex_lock(&loader_mtx);
	LIST_FOREACH(p, &loader_plugins, p_entry) {
		if (p->p_dev == st.st_dev && p->p_ino == st.st_ino &&
		    p->p_size == st.st_size &&
		    p->p_mtime.tv_sec == st.st_mtim.tv_sec &&
		    p->p_mtime.tv_nsec == st.st_mtim.tv_nsec) {
			p->p_refs++;
			pthread_mutex_unlock(&loader_mtx);
			*dl_r = p;
			return p->p_h;
		}
		if (strcmp(p->p_path, path) == 0)
			stale = true;
	}
	loader_loading++;
	pthread_mutex_unlock(&loader_mtx);
	dl = stale ? loader_dlopen_fresh(path, err, errlen) :
	    dlopen(path, RTLD_NOW | RTLD_LOCAL);
	h = NULL;
	if (dl == NULL) {
		if (!stale) {
			const char *e = dlerror();

			snprintf(err, errlen, "%s", e != NULL ? e : path);
		}
	} else if ((h = loader_check(dl, path, err, errlen)) == NULL)
		dlclose(dl);
	pthread_mutex_lock(&loader_mtx);
	if (h != NULL) {
		p = xcalloc(1, sizeof(*p));
		p->p_path = xstrdup(path);
		p->p_dev = st.st_dev;
		p->p_ino = st.st_ino;
		p->p_size = st.st_size;
		p->p_mtime = st.st_mtim;
		p->p_dl = dl;
		p->p_h = h;
		p->p_refs = 1;
		LIST_INSERT_HEAD(&loader_plugins, p, p_entry);
		*dl_r = p;
	}
	loader_load_done();
	return h;
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
loader_private_cleanup(pid_t pid)
{
	const char	*tmp = getenv("TMPDIR");
	char		 prefix[64];
	struct dirent	*de, *fe;
	struct stat	 st;
	DIR		*d, *sub;
	int		 dfd, sfd;

	if (tmp == NULL || tmp[0] != '/')
		tmp = "/tmp";
	snprintf(prefix, sizeof(prefix), "sockserverd-plugin.%ld.",
	    (long)pid);
	if ((d = opendir(tmp)) == NULL)
		return;
	dfd = dirfd(d);
	while ((de = readdir(d)) != NULL) {
		if (strncmp(de->d_name, prefix, strlen(prefix)) != 0)
			continue;
		/* Ours only, and never through a symbolic link: /tmp is
		 * everybody's. */
		sfd = openat(dfd, de->d_name, O_RDONLY | O_DIRECTORY |
		    O_NOFOLLOW | O_CLOEXEC);
		if (sfd == -1)
			continue;
		if (fstat(sfd, &st) == -1 || st.st_uid != geteuid() ||
		    (sub = fdopendir(sfd)) == NULL) {
			close(sfd);
			continue;
		}
		while ((fe = readdir(sub)) != NULL)
			if (fe->d_name[0] != '.')
				unlinkat(sfd, fe->d_name, 0);
		closedir(sub);
		unlinkat(dfd, de->d_name, AT_REMOVEDIR);
	}
	closedir(d);
}

void
loader_close(void *dl)
{
	struct plugin *p = dl;

	if (p == NULL)
		return;
	pthread_mutex_lock(&loader_mtx);
	if (--p->p_refs > 0) {
		pthread_mutex_unlock(&loader_mtx);
		return;
	}
	LIST_REMOVE(p, p_entry);
	if (loader_loading > 0) {
		LIST_INSERT_HEAD(&loader_doomed, p, p_entry);
		pthread_mutex_unlock(&loader_mtx);
		return;
	}
	pthread_mutex_unlock(&loader_mtx);
	loader_unload(p);
}

bool
loader_is_builtin(const char *spec)
{
	return spec[0] != '/' && loader_find_builtin(spec) != NULL;
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
		char	*path = xasprintf("%s/%s", handler_dir, names[i]);
		pid_t	 pid;
		int	 st;

		names[i][strlen(names[i]) - 3] = '\0';
		/* Loaded in a child: a plugin that crashes while loading is
		 * reported, not fatal. */
		fflush(fp);
		if ((pid = fork()) == 0) {
			const struct ssd_handler	*h;
			void				*dl;

			if ((h = loader_dlopen(path, &dl, err,
			    sizeof(err))) == NULL)
				fprintf(fp, "%-12s %-9s refused: %s\n",
				    names[i], "plugin", err);
			else
				fprintf(fp, "%-12s %-9s %s\n", names[i],
				    "plugin", h->description != NULL ?
				    h->description : "");
			fflush(fp);
			_exit(0);
		}
		if (pid == -1)
			fprintf(fp, "%-12s %-9s not checked: fork: %s\n",
			    names[i], "plugin", strerror(errno));
		else if (waitpid(pid, &st, 0) == pid && WIFSIGNALED(st))
			fprintf(fp, "%-12s %-9s refused: %s crashed while "
			    "loading (signal %d, %s)\n", names[i], "plugin",
			    path, WTERMSIG(st), strsignal(WTERMSIG(st)));
		free(path);
		free(names[i]);
	}
	free(names);
}
