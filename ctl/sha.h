/*
 * ctl/sha.h - SHA-256 of job objects, and hex.
 *
 * A job's shared object is named by its SHA-256 everywhere in the control
 * plane (SubmitJob, Deploy, FetchObject): the JobManager stores it under
 * that name and a TaskManager loads nothing whose digest differs from the
 * one in its Deploy. OpenSSL's libcrypto computes it.
 *
 * Threads: any; nothing is shared.
 */
#ifndef WEIR_CTL_SHA_H
#define WEIR_CTL_SHA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define WEIR_SHA256_LEN 32
#define WEIR_SHA256_HEX_LEN 64	/* without the NUL */

/* SHA-256 of len bytes at p. 0, or -EIO if libcrypto fails (trail set). */
int weir_sha256_buf(const void *p, size_t len, uint8_t out[WEIR_SHA256_LEN]);

/*
 * SHA-256 of the file at path, read to its end; *size gets its length
 * when size is not NULL. 0, or -errno with the trail naming the file.
 */
int weir_sha256_file(const char *path, uint8_t out[WEIR_SHA256_LEN], uint64_t *size);

/* Same for an open descriptor, read from its current offset. */
int weir_sha256_fd(int fd, uint8_t out[WEIR_SHA256_LEN], uint64_t *size);

/* Lower-case hex of n bytes into out (2n + 1 bytes with the NUL). */
void weir_hex_encode(const uint8_t *p, size_t n, char *out);

/*
 * Exactly 2n hex digits (either case) at s into n bytes. 0, or -EINVAL
 * when s is shorter, longer (before a NUL) or holds a non-hex character.
 */
int weir_hex_decode(const char *s, uint8_t *out, size_t n);

/* Constant-time equality of two n-byte strings (CRYPTO_memcmp). */
bool weir_digest_equal(const uint8_t *a, const uint8_t *b, size_t n);

#endif
