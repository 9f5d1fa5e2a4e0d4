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

/* Create `name` (no slash) of len bytes, mapped read-write, owner lock
 * held. *stale_removed (may be NULL) says a dead owner's file was
 * replaced. 0 or -errno with the trail set. */
int weir_shm_create(struct weir_shm *m, const char *name, size_t len, bool *stale_removed);
/* Map an existing file whole. Fails when it is shorter than min_len.
 * 0 or -errno with the trail set. */
int weir_shm_open(struct weir_shm *m, const char *name, size_t min_len);
/* Unmap and close; the owner also unlinks. */
void weir_shm_close(struct weir_shm *m);
/* Does the file's owner live? (An owner asking about itself: true.) */
bool weir_shm_owner_alive(const struct weir_shm *m);
/* More liveness bytes for other parties of the file (a channel's
 * consumer holds byte 1): take byte `off` for this process's lifetime
 * (0, or -EAGAIN when a live process holds it), or ask whether someone
 * else holds it. */
int weir_shm_lock_byte(struct weir_shm *m, int off);
bool weir_shm_byte_held(const struct weir_shm *m, int off);
/* Remove every file whose name starts with prefix and whose owner is dead;
 * returns how many (or -errno). */
int weir_shm_sweep(const char *prefix);
/* Count the files whose name starts with prefix (tests, operations). */
int weir_shm_count(const char *prefix);

#endif
