/*
 * shm/shmfile.h - named shared-memory files whose owner's liveness the
 * kernel vouches for.
 *
 * A file under /dev/shm (mode 0600), created by one owner process and
 * mapped by others. The owner holds an OFD write lock on its first byte
 * for as long as it lives; the kernel drops the lock when the process dies
 * however it dies (kill -9 included). Whether a file's owner lives is
 * therefore a lock query, which PID reuse cannot fool (SQLite's "dead man
 * switch").
 *
 * Creating a name that exists: if its owner lives, refuse (EEXIST); if not,
 * the file is stale (a crashed run): remove it and create afresh. So a
 * crash never leaves anything that breaks the next start, and a file that
 * is in use is never taken over.
 *
 * Names are NAME (a file in /dev/shm itself) or FOLDER/NAME (a file in a
 * private folder, /dev/shm/FOLDER). /dev/shm is world-writable, so any
 * local user can create a NAME first and hold its lock; nobody else can
 * create anything in a private folder. A private folder is made on the
 * first create (mkdir 0700) and checked at every create and open: a
 * directory, not a link, owned by this user, mode 0700; anything else is
 * refused with its path and the reason (-EPERM), never used. /dev/shm is
 * sticky, so no other non-root user can remove or replace a folder of
 * ours. A file is opened without following links and mapped only when it
 * is a regular file of this user. The owner removes the folder with its
 * last file (and sweeping removes empty folders of ours); a create that
 * finds its folder or temporary file gone under it (another process swept
 * it as empty or stale) starts again.
 *
 * Room: a create refuses (-ENOSPC, naming the bytes asked and the bytes
 * free) a file larger than what /dev/shm has free. tmpfs sizes a file
 * without reserving its pages, and touching a page past the room is a
 * SIGBUS: weir_shm_reserve allocates them all up front (fallocate), so a
 * full /dev/shm is an error at creation, not a crash later.
 */
#ifndef WEIR_SHM_SHMFILE_H
#define WEIR_SHM_SHMFILE_H

#include <stdbool.h>
#include <stddef.h>

#define WEIR_SHM_NAME_MAX 128

struct weir_shm {
	int fd;
	void *map;
	size_t len;
	bool owner;
	char name[WEIR_SHM_NAME_MAX];	/* without the leading slash */
};

/* Create `name` (NAME or FOLDER/NAME, above) of len bytes, mapped
 * read-write, owner lock held. *stale_removed (may be NULL) says a dead
 * owner's file was replaced. 0 or -errno with the trail set: -EEXIST a
 * live owner's (or another user's) file is there, -EPERM the folder is not
 * ours, -ENOSPC len is more than /dev/shm has free. */
int weir_shm_create(struct weir_shm *m, const char *name, size_t len, bool *stale_removed);
/* Allocate every page of the owner's file now (fallocate), so that
 * touching it never faults for want of room: 0, or -ENOSPC naming the
 * bytes asked and free (or -errno), trail set. Call it after anything
 * that places the pages (a NUMA binding of the mapping). */
int weir_shm_reserve(struct weir_shm *m);
/* Map an existing file whole: a regular file of this user, in a folder of
 * ours (above), not through a link. Fails when it is shorter than min_len.
 * 0 or -errno with the trail set. */
int weir_shm_open(struct weir_shm *m, const char *name, size_t min_len);
/* Unmap and close; the owner also unlinks, and removes its folder when
 * that was its last file. */
void weir_shm_close(struct weir_shm *m);
/* Does the file's owner live? (An owner asking about itself: true.) */
bool weir_shm_owner_alive(const struct weir_shm *m);
/* More liveness bytes for other parties of the file (a channel's
 * consumer holds byte 1): take byte `off` for this process's lifetime
 * (0, or -EAGAIN when a live process holds it), or ask whether someone
 * else holds it. */
int weir_shm_lock_byte(struct weir_shm *m, int off);
bool weir_shm_byte_held(const struct weir_shm *m, int off);
/* Remove every file of ours whose name starts with prefix and whose owner
 * is dead; returns how many (or -errno). prefix "P": files in /dev/shm
 * starting with P, and every file in folders of ours starting with P,
 * which are removed too once empty. "FOLDER/P": the files starting with P
 * in that folder; "FOLDER/" also removes the folder once empty. Another
 * user's files and folders, links and anything else are left alone. */
int weir_shm_sweep(const char *prefix);
/* Count the files of ours that a sweep of prefix would look at (tests,
 * operations). */
int weir_shm_count(const char *prefix);

#endif
