/*
 * engine/state.h - keyed state of one operator instance: key bytes to a
 * value (bytes plus timestamp).
 *
 * Open addressing with linear probing on the key's xxhash64 (the same hash
 * that picked the key group), keys and values in a bump arena: an update
 * that fits the value's slot is written in place, so steady-state access
 * allocates nothing. Values are 8-byte aligned.
 *
 * Threads: one instance belongs to one subtask; no locking.
 */
#ifndef WEIR_ENGINE_STATE_H
#define WEIR_ENGINE_STATE_H

#include <weir/weir.h>
#include <stdint.h>

struct kv_slot {
	uint64_t hash;		/* 0: empty (real hashes are forced non-zero) */
	uint8_t *key;
	uint8_t *val;
	uint32_t klen;
	uint32_t vlen;
	uint32_t vcap;
	int64_t ts;
};

struct kv_chunk;

struct weir_kv {
	struct kv_slot *slots;
	uint32_t cap;		/* power of two */
	uint32_t count;
	struct kv_chunk *chunks;
};

void weir_kv_init(struct weir_kv *kv);
void weir_kv_release(struct weir_kv *kv);
/* The value of key, or NULL. */
const struct kv_slot *weir_kv_get(const struct weir_kv *kv, uint64_t hash, const void *key, uint32_t klen);
/* Insert or overwrite. 0, or -1 (out of memory). `data` may point into the
 * current value itself. */
int weir_kv_put(struct weir_kv *kv, uint64_t hash, const void *key, uint32_t klen, const void *data,
		uint32_t len, int64_t ts);

#endif
