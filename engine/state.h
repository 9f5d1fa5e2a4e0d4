/*
 * engine/state.h - keyed state of one operator instance: key bytes to a
 * value (bytes plus timestamp).
 *
 * Open addressing with linear probing on the key's hash (the same hash
 * that picked the key group). A slot is one 64-byte cache line; a key and
 * value that fit in its 32 inline bytes live there, so a lookup touches
 * one line. Larger ones live side by side in a bump arena. An update that
 * fits the value's room is written in place, so steady-state access
 * allocates nothing. Values are 8-byte aligned.
 *
 * Pointers from weir_kv_key/weir_kv_val stay valid until the next insert
 * (which may move slots) or until a set that makes the value outgrow its
 * room. Threads: one instance belongs to one subtask; no locking.
 */
#ifndef WEIR_ENGINE_STATE_H
#define WEIR_ENGINE_STATE_H

#include <weir/weir.h>
#include <stdint.h>

#define WEIR_KV_INLINE 32

struct kv_slot {
	uint64_t hash;		/* 0: empty (real hashes are forced non-zero) */
	int64_t ts;
	uint32_t klen;
	uint32_t vlen;
	uint32_t vcap;		/* room for the value */
	uint32_t external;	/* 1: key and value in the arena */
	union {
		_Alignas(8) uint8_t inl[WEIR_KV_INLINE];	/* [key][pad to 8][value] */
		struct {
			uint8_t *key;
			uint8_t *val;
		} ext;
	} u;
};
_Static_assert(sizeof(struct kv_slot) == 64, "a slot is one cache line");

struct kv_chunk;

struct weir_kv {
	struct kv_slot *slots;
	uint32_t cap;		/* power of two */
	uint32_t count;
	struct kv_chunk *chunks;
};

static inline const uint8_t *weir_kv_key(const struct kv_slot *s)
{
	return s->external ? s->u.ext.key : s->u.inl;
}
static inline const uint8_t *weir_kv_val(const struct kv_slot *s)
{
	return s->external ? s->u.ext.val : s->u.inl + ((s->klen + 7u) & ~7u);
}

void weir_kv_init(struct weir_kv *kv);
void weir_kv_release(struct weir_kv *kv);
/* The slot of key, or NULL. */
const struct kv_slot *weir_kv_get(const struct weir_kv *kv, uint64_t hash, const void *key, uint32_t klen);
/* Overwrite the value of a slot weir_kv_get returned (no second search).
 * 0, or -1 (out of memory). `data` may point into the current value. */
int weir_kv_set(struct weir_kv *kv, const struct kv_slot *slot, const void *data, uint32_t len, int64_t ts);
/* Insert or overwrite. 0, or -1 (out of memory). */
int weir_kv_put(struct weir_kv *kv, uint64_t hash, const void *key, uint32_t klen, const void *data,
		uint32_t len, int64_t ts);

#endif
