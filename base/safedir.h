/*
 * base/safedir.h - folders that only this user can change.
 *
 * weir keeps its secret, its logs and a job's state in folders; on a host
 * shared with other users, each such folder must be one nobody else can
 * swap, plant things in or read. The rules (as OpenSSH's StrictModes):
 *  - the folder itself is never reached through a symbolic link, is owned
 *    by this user and writable by nobody else; read and search bits for
 *    others are taken away (mode 0700);
 *  - every folder above it belongs to root or this user, and when others
 *    may write in one it has the sticky bit (as /tmp), which keeps them
 *    from renaming or removing what is not theirs.
 * Links above the folder are resolved once and the result is used from
 * then on, so a link cannot be turned elsewhere later.
 */
#ifndef WEIR_BASE_SAFEDIR_H
#define WEIR_BASE_SAFEDIR_H

#include <stdbool.h>
#include <stddef.h>

enum {
	WEIR_SAFEDIR_CREATE = 1,	/* make it (and missing folders above it) when absent */
	WEIR_SAFEDIR_PRIVATE = 2,	/* made 0700, and others' read/search bits taken away;
					 * without it, made 0755 less the umask (output others may read) */
};

/* Check the folder `path` (a buffer of n bytes: rewritten with links
 * above the folder resolved). `what` names it in messages ("run folder",
 * "checkpoint folder"). 0 when it passes; 1 when it does not exist (and
 * WEIR_SAFEDIR_CREATE is not set); -2 when it exists but is refused (a
 * link or a file, another user's, writable by others: someone else may
 * have put it there), -1 for any other failure (a folder above it unsafe,
 * a system call failing), both with the trail naming the path and the
 * reason. */
int weir_safedir_check(char *path, size_t n, unsigned flags, const char *what);

/* "NAME (uid N)", or "uid N" for a uid without a name. */
const char *weir_user_name(unsigned uid, char *buf, size_t n);

#endif
