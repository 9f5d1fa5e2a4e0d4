/*
 * engine/state/kv.h - the in-memory table under all keyed state: byte keys to
 * byte values, one table per operator instance.
 *
 * The table is a set of shards found by extendible hashing: a directory
 * indexed by the top bits of a hash's high half points at the shards, and
 * a shard that fills up doubles until it holds SHARD_MAX (32768) slots,
 * then splits in two (kv.c); a full shard's slots are one transparent huge
 * page when the kernel has one. Growing moves one shard's entries, never the
 * whole table's: with 10 million keys the longest such pause is that of
 * 32768 slots, where one table doubling from 8 to 16 million slots stood
 * still for about 2 s.
 *
 * Within a shard: open addressing with linear probing on 64-bit hashes of
 * the owner's choosing: the high 32 bits pick the shard and the home
 * slot, all 64 are compared before the key is. Owners make the high half
 * the user key's hash (its low bits picked the key group; only the high
 * half travels with a record across a keyBy edge), so that a reduce finds
 * a key by the bits its record carried, and a keyed operator's entries of
 * one key (its states, windows, timers: composite keys, state/keyed.h)
 * start probing at the same slot and sit side by side, one or two cache
 * lines. Deletion shifts the following entries back, so there are no
 * tombstones and lookups stay short. A slot is one 64-byte cache line: a
 * key and value that fit in its 36 inline bytes live there, so a lookup
 * touches one line; larger ones live in one malloc'd block [key][pad to
 * 8][value] that grows by doubling and is freed on delete. Steady-state
 * updates of an existing entry write in place and allocate nothing.
 * Values are 8-byte aligned.
 *
 * Each entry carries a 64-bit word for its owner (a record timestamp for
 * rolling reduce, an expiry time for state with a TTL).
 *
 * Pointers to keys and values stay valid until the next insert or delete
 * (which may move slots) or until a write that outgrows the value's room.
 *
 * Snapshots are copy-on-write (weir_kv_cow_begin): the snapshot point
 * costs O(1) and the entries are serialized later, a chunk of slots at a
 * time, by background steps (weir_kv_cow_step). Every call that may write
 * a slot (get, which hands out writable slots, insert, delete) first
 * serializes that slot's entry if its chunk is still pending and the
 * entry was not saved yet: one entry's copy per write, so a write never
 * waits for a chunk. A shard about to grow or split first serializes its
 * own pending chunks (a rehash moves its entries).
 *
 * Threads: one table belongs to one subtask; no locking. The snapshot's
 * bytes are made on the same thread (the worker's), between records.
 */
#ifndef WEIR_ENGINE_STATE_H
#define WEIR_ENGINE_STATE_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#define WEIR_KV_INLINE 36
#define WEIR_KV_VMAX ((1u << 31) - 8)	/* the largest value (vcap's bits) */

/* Inline, the key starts at byte 28 of the slot and the value at the next
 * multiple of 8 after it: an 8-byte key leaves 24 bytes of value, a 28-byte
 * one (a keyed operator's composite key of an 8-byte key and a session's
 * window) 8. External, inl[4..12) holds the block's address (8-aligned:
 * byte 32 of the slot). */
struct kv_slot {
	uint64_t hash;		/* 0: empty (real hashes are forced non-zero) */
	int64_t aux;		/* the owner's word: timestamp, expiry */
	uint32_t klen;
	uint32_t vlen;
	uint32_t vcap : 31;	/* room for the value */
	uint32_t external : 1;	/* 1: key and value in the block [key][pad to 8][value] */
	uint8_t inl[WEIR_KV_INLINE];
};
_Static_assert(sizeof(struct kv_slot) == 64, "a slot is one cache line");

struct kv_cow;
struct kv_shard;

struct weir_kv {
	struct kv_shard **dir;	/* 2^depth entries (kv.c); NULL: empty, nothing allocated */
	uint32_t depth;
	uint32_t count;
	uint32_t nshards;	/* besides the first */
	uint32_t resizes;	/* shards doubled or split so far */
	struct kv_cow *cow;	/* a snapshot in progress, or NULL */
};

#define WEIR_KV_CHUNK 2048u	/* slots per copy-on-write chunk of a shard (128 KiB) */

static inline uint32_t weir_kv_pad8(uint32_t n) { return (n + 7u) & ~7u; }
/* Where an inline value starts in inl, after a key of klen bytes. */
static inline uint32_t weir_kv_inl_voff(uint32_t klen) { return weir_kv_pad8(28u + klen) - 28u; }
static inline uint8_t *weir_kv_blk(const struct kv_slot *s)
{
	uint8_t *b;
	memcpy(&b, s->inl + 4, sizeof(b));
	return b;
}
static inline void weir_kv_set_blk(struct kv_slot *s, uint8_t *b) { memcpy(s->inl + 4, &b, sizeof(b)); }
static inline const uint8_t *weir_kv_key(const struct kv_slot *s)
{
	return s->external ? weir_kv_blk(s) : s->inl;
}
static inline uint8_t *weir_kv_val(struct kv_slot *s)
{
	return s->external ? weir_kv_blk(s) + weir_kv_pad8(s->klen) : s->inl + weir_kv_inl_voff(s->klen);
}

void weir_kv_init(struct weir_kv *kv);
void weir_kv_release(struct weir_kv *kv);
/* The hash of a plain key as a table of plain keys (a reduce's) uses it:
 * the high half of weir_key_hash, the low half 0. */
uint64_t weir_kv_key_hash(const void *key, uint32_t klen);
typedef uint64_t (*weir_kv_hash_fn)(const void *key, uint32_t klen);
/* The slot of key (writable until the next insert or delete), or NULL. */
struct kv_slot *weir_kv_get(struct weir_kv *kv, uint64_t hash, const void *key, uint32_t klen);
/* Start loading the home slot of hashes whose high half is hash_hi (a
 * lookup soon will not wait for memory). */
void weir_kv_prefetch(const struct weir_kv *kv, uint32_t hash_hi);
/* Overwrite the value of a slot weir_kv_get returned (no second search).
 * 0, or -1 (out of memory). `data` may point into the current value. */
int weir_kv_set(struct weir_kv *kv, struct kv_slot *slot, const void *data, uint32_t len, int64_t aux);
/* Make room for len bytes of value in slot, keeping the current bytes;
 * returns the value's address or NULL (out of memory). vlen is unchanged. */
uint8_t *weir_kv_reserve(struct kv_slot *slot, uint32_t len);
/* Insert a key that is absent; the new slot, or NULL (out of memory). */
struct kv_slot *weir_kv_insert(struct weir_kv *kv, uint64_t hash, const void *key, uint32_t klen,
			       const void *data, uint32_t len, int64_t aux);
/* Insert or overwrite. 0, or -1 (out of memory). */
int weir_kv_put(struct weir_kv *kv, uint64_t hash, const void *key, uint32_t klen, const void *data,
		uint32_t len, int64_t aux);
/* Remove a slot weir_kv_get returned. */
void weir_kv_del(struct weir_kv *kv, struct kv_slot *slot);

/*
 * Snapshot: [u64 count] then per entry
 *     [u32 key group][u32 klen][u32 vlen][u32 0][i64 aux][key][value]
 * The key group is that of the key itself, or (composite) of the user key
 * inside a keyed operator's composite key (engine/operators/keyed.h).
 */
struct snapbuf;
struct snapreader;
struct weir_kg_map;
void weir_kv_snapshot(struct weir_kv *kv, struct snapbuf *b, const struct weir_kg_map *m, bool composite);
/* Copy-on-write: the entries as they are now go to *out (the [u64 count]
 * is the caller's to write: kv->count now), serialized by later steps.
 * *out must stay where it is until the snapshot is done. 0, or -1 (out of
 * memory: nothing started). */
int weir_kv_cow_begin(struct weir_kv *kv, struct snapbuf *out, const struct weir_kg_map *m, bool composite);
/* Serialize up to `chunks` pending chunks; true when the snapshot is
 * done (and kv->cow is NULL again). */
bool weir_kv_cow_step(struct weir_kv *kv, uint32_t chunks);
/* Forget a snapshot in progress (its bytes so far stay in *out). */
void weir_kv_cow_drop(struct weir_kv *kv);
/* Put back the entries of key groups [kg_lo, kg_hi), each under hash(its
 * key) (the owner's hash, as in its lookups). 0, or -1 when the bytes are
 * malformed or memory ran out. */
int weir_kv_restore(struct weir_kv *kv, struct snapreader *r, uint32_t kg_lo, uint32_t kg_hi, weir_kv_hash_fn hash);

#endif
