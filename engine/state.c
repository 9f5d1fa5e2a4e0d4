/* engine/state.c - see state.h. */
#include "engine/state.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#define CHUNK_MIN (1u << 20)

struct kv_chunk {
	struct kv_chunk *next;
	size_t used, cap;
	_Alignas(8) uint8_t data[];
};

static void *arena_alloc(struct weir_kv *kv, size_t n)
{
	n = (n + 7) & ~(size_t)7;
	struct kv_chunk *c = kv->chunks;
	if (!c || c->cap - c->used < n) {
		size_t cap = n > CHUNK_MIN ? n : CHUNK_MIN;
		c = malloc(sizeof(*c) + cap);
		if (!c)
			return NULL;
		c->used = 0;
		c->cap = cap;
		c->next = kv->chunks;
		kv->chunks = c;
	}
	void *p = c->data + c->used;
	c->used += n;
	return p;
}

void weir_kv_init(struct weir_kv *kv)
{
	memset(kv, 0, sizeof(*kv));
}

void weir_kv_release(struct weir_kv *kv)
{
	free(kv->slots);
	while (kv->chunks) {
		struct kv_chunk *c = kv->chunks;
		kv->chunks = c->next;
		free(c);
	}
	memset(kv, 0, sizeof(*kv));
}

static inline uint64_t fix_hash(uint64_t h) { return h ? h : 1; }
/* The high half picks the slot: the low bits already picked the key group,
 * so within one subtask they are far from uniform. */
static inline uint32_t home(uint64_t h, uint32_t cap) { return (uint32_t)(h >> 32) & (cap - 1); }
static inline uint32_t pad8(uint32_t n) { return (n + 7u) & ~7u; }

static inline bool key_eq(const uint8_t *a, const void *b, uint32_t len)
{
	if (len == 8) { /* the common fixed-size key: one compare, no call */
		uint64_t x, y;
		memcpy(&x, a, 8);
		memcpy(&y, b, 8);
		return x == y;
	}
	return memcmp(a, b, len) == 0;
}

const struct kv_slot *weir_kv_get(const struct weir_kv *kv, uint64_t hash, const void *key, uint32_t klen)
{
	if (!kv->cap)
		return NULL;
	hash = fix_hash(hash);
	for (uint32_t i = home(hash, kv->cap);; i = (i + 1) & (kv->cap - 1)) {
		const struct kv_slot *s = &kv->slots[i];
		if (!s->hash)
			return NULL;
		if (s->hash == hash && s->klen == klen && key_eq(weir_kv_key(s), key, klen))
			return s;
	}
}

static int grow(struct weir_kv *kv)
{
	uint32_t cap = kv->cap ? kv->cap * 2 : 1024;
	struct kv_slot *n = aligned_alloc(64, (size_t)cap * sizeof(*n));
	if (!n)
		return -1;
	memset(n, 0, (size_t)cap * sizeof(*n));
	for (uint32_t i = 0; i < kv->cap; i++) {
		struct kv_slot *s = &kv->slots[i];
		if (!s->hash)
			continue;
		uint32_t j = home(s->hash, cap);
		while (n[j].hash)
			j = (j + 1) & (cap - 1);
		n[j] = *s; /* inline bytes move with the slot; nothing points into it */
	}
	free(kv->slots);
	kv->slots = n;
	kv->cap = cap;
	return 0;
}

int weir_kv_set(struct weir_kv *kv, const struct kv_slot *slot, const void *data, uint32_t len, int64_t ts)
{
	struct kv_slot *s = (struct kv_slot *)slot;
	if (len > s->vcap) {
		/* Outgrown: key and value move to the arena together. */
		uint32_t koff = pad8(s->klen), vcap = pad8(len);
		uint8_t *b = arena_alloc(kv, (size_t)koff + vcap);
		if (!b)
			return -1;
		memcpy(b, weir_kv_key(s), s->klen);
		memcpy(b + koff, data, len); /* data may be the old value: copy before switching */
		s->u.ext.key = b;
		s->u.ext.val = b + koff;
		s->external = 1;
		s->vcap = vcap;
	} else if (len) {
		memmove((uint8_t *)weir_kv_val(s), data, len);
	}
	s->vlen = len;
	s->ts = ts;
	return 0;
}

int weir_kv_put(struct weir_kv *kv, uint64_t hash, const void *key, uint32_t klen, const void *data,
		uint32_t len, int64_t ts)
{
	hash = fix_hash(hash);
	const struct kv_slot *found = weir_kv_get(kv, hash, key, klen);
	if (found)
		return weir_kv_set(kv, found, data, len, ts);
	/* Grow only on insert: an update must not move the slot whose value
	 * the caller may be reading from. */
	if ((uint64_t)(kv->count + 1) * 10 > (uint64_t)kv->cap * 7 && grow(kv) < 0)
		return -1;
	uint32_t i = home(hash, kv->cap);
	while (kv->slots[i].hash)
		i = (i + 1) & (kv->cap - 1);
	struct kv_slot *s = &kv->slots[i];
	uint32_t koff = pad8(klen);
	if (koff + pad8(len) <= WEIR_KV_INLINE) {
		memcpy(s->u.inl, key, klen);
		memcpy(s->u.inl + koff, data, len);
		s->external = 0;
		s->vcap = WEIR_KV_INLINE - koff;
	} else {
		uint32_t vcap = len < 8 ? 8 : pad8(len);
		uint8_t *b = arena_alloc(kv, (size_t)koff + vcap);
		if (!b)
			return -1;
		memcpy(b, key, klen);
		memcpy(b + koff, data, len);
		s->u.ext.key = b;
		s->u.ext.val = b + koff;
		s->external = 1;
		s->vcap = vcap;
	}
	s->klen = klen;
	s->vlen = len;
	s->ts = ts;
	s->hash = hash;
	kv->count++;
	return 0;
}
