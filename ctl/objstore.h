/*
 * ctl/objstore.h - job objects stored by SHA-256, whole or arriving in
 * chunks.
 *
 * The JobManager keeps every object a client uploads in
 * <run-dir>/objects/<sha256>.so; a TaskManager fetches an object it lacks,
 * chunk by chunk, into <run-dir>/objects-tm<N>/<sha256>.so. The two sides
 * use the same code: an object is written under a temporary name, its
 * digest checked against the one it is named by, and only then renamed to
 * its final name, so a file named <sha256>.so always holds exactly those
 * bytes (a crash mid-upload leaves a .part file, never a wrong object).
 *
 * Nothing here knows jobs: these are files named by their digest.
 * Threads: any; an upload is used by one thread.
 */
#ifndef WEIR_CTL_OBJSTORE_H
#define WEIR_CTL_OBJSTORE_H

#include "ctl/sha.h"

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define WEIR_OBJ_MAX (256ull << 20)	/* the largest object accepted */

/* <dir>/<hex>.so into out. */
void weir_obj_path(const char *dir, const uint8_t sha[WEIR_SHA256_LEN], char *out, size_t n);

/* Whether <dir>/<hex>.so exists with exactly size bytes. */
bool weir_obj_have(const char *dir, const uint8_t sha[WEIR_SHA256_LEN], uint64_t size);

/* An object arriving in chunks, offsets contiguous from 0. */
struct weir_obj_in {
	int fd;			/* -1: not begun */
	uint64_t got;		/* bytes written so far */
	uint8_t sha[WEIR_SHA256_LEN];
	char tmp[PATH_MAX];
	char path[PATH_MAX];
};

/* Create dir (0700) if needed and a temporary file for the object named
 * sha; tag makes the temporary name unique among concurrent uploads.
 * 0, or -1 with the trail set. */
int weir_obj_in_begin(struct weir_obj_in *in, const char *dir, const uint8_t sha[WEIR_SHA256_LEN], const char *tag);

/* Append n bytes that belong at offset (which must equal in->got; the
 * total may not pass WEIR_OBJ_MAX). 0, or -1 with the trail set. */
int weir_obj_in_write(struct weir_obj_in *in, uint64_t offset, const void *p, size_t n);

/* The last chunk arrived: check the digest of what was written, then
 * rename it to <dir>/<hex>.so. 0, or -1 with the trail set (the
 * temporary file is removed either way). */
int weir_obj_in_finish(struct weir_obj_in *in);

/* Give up: remove the temporary file. Safe on one not begun or finished. */
void weir_obj_in_abort(struct weir_obj_in *in);

/* Store a whole object that is in memory (the upload steps in one go);
 * nothing is written when the store has it already. 0 or -1. */
int weir_obj_put(const char *dir, const uint8_t sha[WEIR_SHA256_LEN], const void *p, size_t n, const char *tag);

/* Read up to cap bytes of <dir>/<hex>.so from offset into buf; *size gets
 * the object's length. Bytes read (0 at or past the end), or -1 with the
 * trail set (no such object). */
long weir_obj_read(const char *dir, const uint8_t sha[WEIR_SHA256_LEN], uint64_t offset, void *buf, size_t cap,
		   uint64_t *size);

/* Copy src to dst (through dst.tmp and a rename, mode 0700) and check
 * that the copy's digest is sha: what a TaskManager loads is what was
 * named. 0, or -1 with the trail set (dst not created). */
int weir_obj_copy_checked(const char *src, const char *dst, const uint8_t sha[WEIR_SHA256_LEN]);

/* Remove the .so and .part files of a store folder, then the folder if
 * it is empty. Returns how many files went. */
int weir_obj_remove_all(const char *dir);

#endif
