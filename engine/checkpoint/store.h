/*
 * engine/checkpoint/store.h - checkpoint storage: where snapshots go, how a
 * checkpoint becomes complete, and how the latest good one is found.
 *
 * A job's checkpoints live in one folder (its "base"), one subfolder per
 * checkpoint:
 *     <base>/chk-<id>/v<vertex>-s<index>.snap   one per subtask (sealed, snapshot.h)
 *     <base>/chk-<id>/_metadata                 written last
 * Every file is written under a temporary name, fsync'ed and renamed; the
 * metadata, which lists every snapshot file with its size and XXH3-64, is
 * written only when every subtask's file is durable, then the folder is
 * fsync'ed. So a checkpoint is complete exactly when its _metadata exists,
 * and a crash at any point leaves either a complete checkpoint or one that
 * is ignored (and removed later). A failed write or fsync fails that
 * checkpoint; it never completes.
 *
 * Files are 0600 in 0700 folders: a job's state is its owner's alone.
 * The base is prepared once (weir_ckpt_prepare) and is then a folder only
 * this user can change (base/safedir.h), so nothing in it can be planted
 * by another user; retention and discarding still never follow a link
 * and only remove folders this user owns.
 *
 * Restoring reads the newest complete checkpoint and checks every byte
 * (the metadata's seal, each file's seal, size and sum). One that fails
 * is skipped with a loud log line and the one before it is tried; when
 * every complete checkpoint is bad the caller is told why, checkpoint by
 * checkpoint, and must refuse to start rather than start from nothing.
 *
 * Failpoints: checkpoint.write (before a snapshot file's fsync: "error"
 * makes it fail as an fsync would), checkpoint.metadata (after the
 * metadata's temporary file is durable, before its rename).
 *
 * Threads: any; a base folder is written by one coordinator.
 */
#ifndef WEIR_ENGINE_CHECKPOINT_H
#define WEIR_ENGINE_CHECKPOINT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct weir_ckpt_file {
	uint32_t vertex, index, parallelism;
	char name[48];
	uint64_t size, sum;
	uint8_t *data;		/* after weir_ckpt_latest: the verified bytes (sealed) */
};

struct weir_ckpt_meta {
	uint64_t id;
	uint64_t time_ms;	/* Unix time it completed */
	uint32_t nfiles;
	struct weir_ckpt_file *files;
};

/* Make base (a buffer of n bytes) a folder for a job's checkpoints: create
 * it and the folders above it (0700) and check it (base/safedir.h). When
 * the name is taken by something that is not this user's own folder (a
 * planted link, another user's folder), that is never used: base becomes
 * "<base>-<8 hex digits>" (random) instead, with a WARN line saying why.
 * 0, or -1 with the trail naming the path and the reason (a folder above
 * it is not safe, a system call failed). */
int weir_ckpt_prepare(char *base, size_t n);

struct snapvec;
/* Write one subtask's sealed snapshot (its pieces, one after another) as
 * <base>/chk-<id>/<name>, durably; fill *out (name, size, sum). 0, or -1
 * with the trail naming the file. */
int weir_ckpt_write(const char *base, uint64_t id, const char *name, const struct snapvec *sv,
		    struct weir_ckpt_file *out);

/* Complete checkpoint m->id: fsync its folder (the snapshot files'
 * names), write its metadata (temp, fsync, rename), fsync the folders
 * again. 0, or -1 with the trail set: then it is not complete. */
int weir_ckpt_commit(const char *base, const struct weir_ckpt_meta *m);
/* Keep only the newest `retain` complete checkpoints, and remove
 * incomplete ones older than `newest` (aborted ones). Call it once
 * `newest` is complete and announced. */
void weir_ckpt_retain(const char *base, uint64_t newest, int retain);

/* Remove checkpoint id's folder (an aborted checkpoint). */
void weir_ckpt_discard(const char *base, uint64_t id);

/*
 * The newest complete checkpoint whose every file checks out, in *m with
 * each file's bytes. 1 when found; 0 when base holds no complete
 * checkpoint at all; -1 when it holds some but every one is bad: report
 * (may be NULL) then lists each and why. Skipped ones are logged at WARN.
 * path may also name one checkpoint's folder (<base>/chk-<id>): then only
 * that one is tried.
 */
int weir_ckpt_latest(const char *path, struct weir_ckpt_meta *m, char *report, size_t n);
void weir_ckpt_meta_free(struct weir_ckpt_meta *m);

#endif
