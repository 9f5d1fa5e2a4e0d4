/*
 * engine/state/snapshot.h - the bytes of a snapshot: a growable buffer to write
 * them, a bounds-checked reader, and the seal every checkpoint file ends
 * with.
 *
 * A sealed buffer ends in a 24-byte footer:
 *     [u64 XXH3-64 of every byte before the footer][u64 length of those bytes]["WEIRSEAL"]
 * so a flipped bit anywhere, a truncation or an appended tail is caught
 * before a byte of it is used (weir_snap_unseal). Integers are written in
 * the machine's byte order: checkpoints are read back on the same kind of
 * host (the header's magic word also tells a foreign byte order apart).
 *
 * Threads: a buffer or reader belongs to one thread.
 */
#ifndef WEIR_ENGINE_SNAPSHOT_H
#define WEIR_ENGINE_SNAPSHOT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* A buffer that outgrows SNAP_BIG moves once into a mapping of its own
 * that reserves SNAP_RESERVE bytes of address space (not memory) and is
 * made writable as it grows: a big snapshot piece, written on a worker
 * between records, then grows without being copied or moved (a realloc of
 * a 100 MB buffer stood a worker still for tens of milliseconds). Freed,
 * the mapping is kept with its pages for the next big buffer (up to 1 GiB
 * in a process: snapshot.c), so steady checkpoints fault no page in.
 * Threads: any (the pool of kept mappings has a lock, taken only when a
 * buffer goes big or is freed). */
#define SNAP_BIG ((size_t)256 << 10)
#define SNAP_RESERVE ((size_t)64 << 30)
struct snapbuf {
	uint8_t *p;
	size_t len, cap;
	bool oom;		/* a write failed: the buffer is incomplete */
	size_t reserved;	/* 0: p is malloc's; else the mapping's size */
};

void snap_put(struct snapbuf *b, const void *p, size_t n);
static inline void snap_u32(struct snapbuf *b, uint32_t v) { snap_put(b, &v, 4); }
static inline void snap_u64(struct snapbuf *b, uint64_t v) { snap_put(b, &v, 8); }
static inline void snap_i64(struct snapbuf *b, int64_t v) { snap_put(b, &v, 8); }
/* Reserve n bytes at the end; their address (NULL when out of memory).
 * Valid until the next write. */
void *snap_room(struct snapbuf *b, size_t n);
void snap_free(struct snapbuf *b);

/* Append the footer. 0, or -1 when the buffer is incomplete (oom). */
int weir_snap_seal(struct snapbuf *b);
/* Check a sealed buffer; the length of what precedes the footer, or -1
 * with *why saying what is wrong (truncated, checksum, trailing bytes). */
long weir_snap_unseal(const uint8_t *p, size_t len, const char **why);
/* The XXH3-64 of n bytes (what the metadata records per file). */
uint64_t weir_snap_sum(const void *p, size_t n);

/* A snapshot in pieces, meant one after another: a subtask's snapshot is
 * serialized piece by piece (the copy-on-write tables fill theirs after
 * the snapshot point), and written without joining them. */
struct snapvec {
	struct snapbuf *v;
	int n;			/* pieces in use; v has room for one more (the footer) */
};
/* Seal the concatenation: the footer goes in as piece n. 0, or -1 when a
 * piece is incomplete (oom). */
int weir_snapvec_seal(struct snapvec *sv);
/* The concatenation's length, and its XXH3-64. */
size_t weir_snapvec_len(const struct snapvec *sv);
uint64_t weir_snapvec_sum(const struct snapvec *sv);
void weir_snapvec_free(struct snapvec *sv);

/* A tagged record in a buffer: in-flight data of an unaligned checkpoint,
 * the records a restored subtask replays, those pulled out of a channel
 * ahead of processing (engine/runtime/):
 *     [u32 len][u32 tag][i64 ts][len bytes, pad 8]
 * Records stay 8-byte aligned when the buffer's start is (malloc's is). */
struct snaprec {
	uint32_t len, tag;
	int64_t ts;
	const uint8_t *data;
};
static inline size_t snaprec_size(uint32_t len) { return 16 + (((size_t)len + 7u) & ~(size_t)7u); }
/* Append one. 0, or -1 when out of memory (b->oom). */
int snaprec_put(struct snapbuf *b, uint32_t tag, int64_t ts, const void *data, uint32_t len);
/* The record at p, which the caller knows holds one (its header, and
 * snaprec_size(len) bytes in all); returns that size. */
static inline size_t snaprec_get(const uint8_t *p, struct snaprec *r)
{
	memcpy(&r->len, p, 4);
	memcpy(&r->tag, p + 4, 4);
	memcpy(&r->ts, p + 8, 8);
	r->data = p + 16;
	return snaprec_size(r->len);
}

/* Copy-on-write marks (engine/state/kv.h): which chunks of a table a
 * snapshot has not serialized yet. todo points at (nchunks + 63) / 64
 * words the owner allocates (cow_marks_words) right after its struct. */
struct cow_marks {
	uint32_t nchunks, left, next;	/* next: where cow_marks_next resumes */
	uint64_t *todo;			/* bit c: chunk c pending */
};
static inline size_t cow_marks_words(uint32_t nchunks) { return (nchunks + 63u) / 64u; }
void cow_marks_init(struct cow_marks *m, uint64_t *todo, uint32_t nchunks);
static inline bool cow_marks_pending(const struct cow_marks *m, uint32_t c)
{
	return (m->todo[c / 64] >> (c % 64)) & 1;
}
/* Take pending chunk c off; true when it was the last one. */
static inline bool cow_marks_take(struct cow_marks *m, uint32_t c)
{
	m->todo[c / 64] &= ~(1ull << (c % 64));
	return --m->left == 0;
}
/* A pending chunk (left > 0), round robin. */
uint32_t cow_marks_next(struct cow_marks *m);

struct snapreader {
	const uint8_t *p;
	size_t len, off;
	bool bad;		/* a read went past the end: everything read is suspect */
};

static inline void snapreader_init(struct snapreader *r, const void *p, size_t len)
{
	r->p = p;
	r->len = len;
	r->off = 0;
	r->bad = false;
}
/* The next n bytes (in place), or NULL (and r->bad) when fewer are left. */
static inline const void *snap_take(struct snapreader *r, size_t n)
{
	if (r->bad || n > r->len - r->off) {
		r->bad = true;
		return NULL;
	}
	const void *q = r->p + r->off;
	r->off += n;
	return q;
}
static inline uint32_t snap_get_u32(struct snapreader *r)
{
	uint32_t v = 0;
	const void *q = snap_take(r, 4);
	if (q)
		memcpy(&v, q, 4);
	return v;
}
static inline uint64_t snap_get_u64(struct snapreader *r)
{
	uint64_t v = 0;
	const void *q = snap_take(r, 8);
	if (q)
		memcpy(&v, q, 8);
	return v;
}

#endif
