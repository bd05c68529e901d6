/* SPDX-License-Identifier: ISC */
/*
 * priv.c - the process side of a daemon: detaching (-D), the pid file, and
 * dropping root privileges after the listeners are bound.  Each function
 * reports its failure to the caller (as a message), which decides to stop.
 */
#include <sys/stat.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "daemon.h"

int
priv_daemonize(char *err, size_t errlen)
{
	int	 p[2], fd;
	pid_t	 pid;
	char	 c;

	if (pipe2(p, O_CLOEXEC) == -1) {
		snprintf(err, errlen, "pipe: %s", strerror(errno));
		return -1;
	}
	if ((pid = fork()) == -1) {
		snprintf(err, errlen, "fork: %s", strerror(errno));
		return -1;
	}
	if (pid > 0) {
		/* The original process exits with the daemon's start-up
		 * result: 0 once it reported ready, 1 if it died first. */
		close(p[1]);
		c = '1';
		while (read(p[0], &c, 1) == -1 && errno == EINTR)
			continue;
		_exit(c == '0' ? EXIT_OK : EXIT_CONFIG);
	}
	close(p[0]);
	if (setsid() == -1)
		_exit(EXIT_CONFIG);
	if ((pid = fork()) == -1)
		_exit(EXIT_CONFIG);
	if (pid > 0)
		_exit(EXIT_OK);		/* the session leader goes */
	if (chdir("/") == -1) {
		/* ignored: "/" always exists */
	}
	/* stderr stays until start-up is over, so that a failure says why
	 * where the user ran us; priv_daemonize_done closes it. */
	if ((fd = open("/dev/null", O_RDWR)) != -1) {
		dup2(fd, STDIN_FILENO);
		dup2(fd, STDOUT_FILENO);
		if (fd > STDERR_FILENO)
			close(fd);
	}
	return p[1];
}

void
priv_daemonize_done(int fd)
{
	int null;

	if (fd == -1)
		return;
	if ((null = open("/dev/null", O_RDWR)) != -1) {
		dup2(null, STDERR_FILENO);
		if (null > STDERR_FILENO)
			close(null);
	}
	while (write(fd, "0", 1) == -1 && errno == EINTR)
		continue;
	close(fd);
}

int
priv_pidfile_write(const char *path, char *err, size_t errlen)
{
	char	 buf[32];
	int	 fd, n;

	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW,
	    0644);
	if (fd == -1) {
		snprintf(err, errlen, "pid file %s: %s", path,
		    strerror(errno));
		return -1;
	}
	n = snprintf(buf, sizeof(buf), "%ld\n", (long)getpid());
	if (write(fd, buf, (size_t)n) != n) {
		snprintf(err, errlen, "pid file %s: %s", path,
		    strerror(errno));
		close(fd);
		unlink(path);
		return -1;
	}
	close(fd);
	return 0;
}

void
priv_pidfile_remove(const char *path)
{
	char	 buf[32], want[32];
	ssize_t	 n;
	int	 fd;

	/* Only our own pid file: another instance may have taken over. */
	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) == -1)
		return;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	snprintf(want, sizeof(want), "%ld\n", (long)getpid());
	if (n > 0 && (buf[n] = '\0', strcmp(buf, want) == 0) &&
	    unlink(path) == -1)
		log_warning("cannot remove pid file %s", path);
}

int
priv_drop(const char *user, const char *group, char *err, size_t errlen)
{
	struct passwd	*pw = NULL;
	struct group	*gr;
	uid_t		 uid;
	gid_t		 gid;

	if (user == NULL && group == NULL) {
		if (geteuid() == 0)
			log_warningx("running handlers as root: set \"user\" "
			    "and \"group\" to drop privileges");
		return 0;
	}
	uid = geteuid();
	gid = getegid();
	if (user != NULL) {
		errno = 0;
		if ((pw = getpwnam(user)) == NULL) {
			snprintf(err, errlen, "user \"%s\": %s", user,
			    errno != 0 ? strerror(errno) : "no such user");
			return -1;
		}
		uid = pw->pw_uid;
		gid = pw->pw_gid;
	}
	if (group != NULL) {
		errno = 0;
		if ((gr = getgrnam(group)) == NULL) {
			snprintf(err, errlen, "group \"%s\": %s", group,
			    errno != 0 ? strerror(errno) : "no such group");
			return -1;
		}
		gid = gr->gr_gid;
	}
	if (geteuid() != 0) {
		if (uid == geteuid() && gid == getegid())
			return 0;
		snprintf(err, errlen, "cannot switch to user %s group %s: "
		    "not started as root", user != NULL ? user : "(same)",
		    group != NULL ? group : "(same)");
		return -1;
	}
	if ((pw != NULL ? initgroups(pw->pw_name, gid) :
	    setgroups(1, &gid)) == -1) {
		snprintf(err, errlen, "setgroups: %s", strerror(errno));
		return -1;
	}
	if (setresgid(gid, gid, gid) == -1) {
		snprintf(err, errlen, "setgid(%ld): %s", (long)gid,
		    strerror(errno));
		return -1;
	}
	if (setresuid(uid, uid, uid) == -1) {
		snprintf(err, errlen, "setuid(%ld): %s", (long)uid,
		    strerror(errno));
		return -1;
	}
	/* Make sure root cannot be regained. */
	if (uid != 0 && (setuid(0) != -1 || seteuid(0) != -1)) {
		snprintf(err, errlen, "privileges could be regained after "
		    "dropping them");
		return -1;
	}
	log_infox("running as uid %ld gid %ld", (long)uid, (long)gid);
	if (uid == 0)
		log_warningx("running handlers as root: \"user\" is root");
	return 0;
}

void
priv_closefrom(int lowfd)
{
	if (close_range((unsigned)lowfd, ~0U, 0) == -1) {
		/* Kernels before 5.9: the long way. */
		long max = sysconf(_SC_OPEN_MAX);

		for (int fd = lowfd; fd < (max > 0 ? max : 65536); fd++)
			close(fd);
	}
}
