/* base/safedir.c - see safedir.h. */
#include "base/safedir.h"
#include "base/err.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Why a folder above a checked one is unsafe, or NULL: another
 * (non-root) user owns it, or others may write in it without the sticky
 * bit that keeps them from renaming what they do not own. */
static const char *unsafe_ancestor(const struct stat *st)
{
	if (st->st_uid != 0 && st->st_uid != geteuid())
		return "is owned by another user";
	if ((st->st_mode & (S_IWGRP | S_IWOTH)) && !(st->st_mode & S_ISVTX))
		return "is writable by other users (and not sticky)";
	return NULL;
}

/* The folder itself is there but not acceptable: the trail says why. -2. */
__attribute__((format(printf, 1, 2))) static int refused(const char *fmt, ...)
{
	char msg[WEIR_ERR_MAX];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	weir_err_set("%s", msg);
	return -2;
}

const char *weir_user_name(unsigned uid, char *buf, size_t n)
{
	struct passwd pw, *r = NULL;
	char tmp[1024];
	if (getpwuid_r(uid, &pw, tmp, sizeof(tmp), &r) == 0 && r)
		snprintf(buf, n, "%s (uid %u)", r->pw_name, (unsigned)uid);
	else
		snprintf(buf, n, "uid %u", (unsigned)uid);
	return buf;
}

int weir_safedir_check(char *path, size_t n, unsigned flags, const char *what)
{
	bool create = flags & WEIR_SAFEDIR_CREATE, private = flags & WEIR_SAFEDIR_PRIVATE;
	mode_t mode = private ? 0700 : 0755;
	char dir[PATH_MAX], parent[PATH_MAX], real[PATH_MAX];
	snprintf(dir, sizeof(dir), "%s", path);
	snprintf(parent, sizeof(parent), "%s", dir);
	size_t len = strlen(parent);
	while (len > 1 && parent[len - 1] == '/')
		parent[--len] = '\0';
	char *slash = strrchr(parent, '/');
	const char *base = slash ? slash + 1 : parent;
	if (!*base || !strcmp(base, ".") || !strcmp(base, ".."))
		return weir_err_set("%s '%s': name a folder of its own (not '/', '.' or '..')", what, dir);
	if (create && slash && slash != parent) { /* the folders above, as mkdir -p (0700) */
		for (char *p = parent + 1; p <= slash; p++)
			if (*p == '/') {
				char c = *p;
				*p = '\0';
				if (mkdir(parent, mode) < 0 && errno != EEXIST)
					return weir_err_errno(errno, "create %s '%s': create '%s'", what, dir, parent);
				*p = c;
			}
	}
	if (slash == parent)
		snprintf(real, sizeof(real), "/");
	else if (!slash ? !getcwd(real, sizeof(real)) : (*slash = '\0', !realpath(parent, real)))
		return weir_err_errno(errno, "%s '%s': its parent folder", what, dir);
	/* every folder from / down to the parent: nobody else may swap the
	 * folder for another (a sticky /tmp protects what it holds) */
	for (size_t i = 0, rl = strlen(real); i <= rl; i++) {
		if (i > 0 && real[i] != '/' && real[i] != '\0')
			continue;
		char at[PATH_MAX];
		snprintf(at, sizeof(at), "%.*s", i ? (int)i : 1, real); /* "/", "/tmp", ... */
		struct stat st;
		const char *why;
		if (stat(at, &st) < 0)
			return weir_err_errno(errno, "%s '%s': stat '%s'", what, dir, at);
		if ((why = unsafe_ancestor(&st)))
			return weir_err_set("%s '%s' is not safe: '%s' on its way %s", what, dir, at, why);
	}
	/* from here on the folder is named through the checked parent: a link
	 * above it cannot be turned elsewhere later */
	if (snprintf(path, n, "%s/%s", strcmp(real, "/") ? real : "", base) >= (int)n)
		return weir_err_set("%s '%s': path too long", what, dir);
	snprintf(dir, sizeof(dir), "%s", path);
	if (create && mkdir(dir, mode) < 0 && errno != EEXIST)
		return weir_err_errno(errno, "create %s '%s'", what, dir);
	/* the folder itself, never through a link */
	char who[300], me[300];
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		int e = errno;
		struct stat st;
		if (e == ENOENT)
			return 1;
		if ((e == ELOOP || e == ENOTDIR) && lstat(dir, &st) == 0)
			return refused("%s '%s' is refused: it is a %s, not a folder (someone else may "
					    "have planted it; remove it)",
					    what, dir, S_ISLNK(st.st_mode) ? "symbolic link" : "file");
		if (e == EACCES && lstat(dir, &st) == 0 && st.st_uid != geteuid())
			return refused("%s '%s' belongs to %s, not to you, %s: it is not yours to use", what,
					    dir, weir_user_name(st.st_uid, who, sizeof(who)),
					    weir_user_name(geteuid(), me, sizeof(me)));
		return weir_err_errno(e, "%s '%s'", what, dir);
	}
	struct stat st;
	int rc = 0;
	if (fstat(fd, &st) < 0)
		rc = weir_err_errno(errno, "%s '%s'", what, dir);
	else if (st.st_uid != geteuid())
		rc = refused("%s '%s' is refused: it belongs to %s, not to you, %s", what, dir,
				  weir_user_name(st.st_uid, who, sizeof(who)), weir_user_name(geteuid(), me, sizeof(me)));
	else if (st.st_mode & (S_IWGRP | S_IWOTH))
		rc = refused("%s '%s' is refused: its mode %04o lets other users write in it (it must "
				  "be yours alone)", what, dir, (unsigned)(st.st_mode & 07777));
	else if (private && (st.st_mode & 077) && fchmod(fd, 0700) < 0) /* ours, closed to writers: now private */
		rc = weir_err_errno(errno, "%s '%s': chmod 0700", what, dir);
	close(fd);
	return rc;
}
