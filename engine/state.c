/* engine/state.c - see state.h. */
#include "engine/state.h"

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

const struct kv_slot *weir_kv_get(const struct weir_kv *kv, uint64_t hash, const void *key, uint32_t klen)
{
	if (!kv->cap)
		return NULL;
	hash = fix_hash(hash);
	for (uint32_t i = home(hash, kv->cap);; i = (i + 1) & (kv->cap - 1)) {
		const struct kv_slot *s = &kv->slots[i];
		if (!s->hash)
			return NULL;
		if (s->hash == hash && s->klen == klen && !memcmp(s->key, key, klen))
			return s;
	}
}

static int grow(struct weir_kv *kv)
{
	uint32_t cap = kv->cap ? kv->cap * 2 : 1024;
	struct kv_slot *n = calloc(cap, sizeof(*n));
	if (!n)
		return -1;
	for (uint32_t i = 0; i < kv->cap; i++) {
		struct kv_slot *s = &kv->slots[i];
		if (!s->hash)
			continue;
		uint32_t j = home(s->hash, cap);
		while (n[j].hash)
			j = (j + 1) & (cap - 1);
		n[j] = *s;
	}
	free(kv->slots);
	kv->slots = n;
	kv->cap = cap;
	return 0;
}

int weir_kv_put(struct weir_kv *kv, uint64_t hash, const void *key, uint32_t klen, const void *data,
		uint32_t len, int64_t ts)
{
	hash = fix_hash(hash);
	struct kv_slot *s = (struct kv_slot *)weir_kv_get(kv, hash, key, klen);
	if (!s) {
		/* Grow only on insert: an update must not move the slot whose
		 * value the caller may be reading from. */
		if ((uint64_t)(kv->count + 1) * 10 > (uint64_t)kv->cap * 7 && grow(kv) < 0)
			return -1;
		uint32_t i = home(hash, kv->cap);
		while (kv->slots[i].hash)
			i = (i + 1) & (kv->cap - 1);
		s = &kv->slots[i];
		uint8_t *k = arena_alloc(kv, klen ? klen : 1);
		if (!k)
			return -1;
		memcpy(k, key, klen);
		s->key = k;
		s->klen = klen;
		s->val = NULL;
		s->vcap = 0;
		s->hash = hash;
		kv->count++;
	}
	if (len > s->vcap || !s->val) {
		uint32_t cap = len < 8 ? 8 : len;
		uint8_t *v = arena_alloc(kv, cap);
		if (!v)
			return -1;
		memcpy(v, data, len); /* data may be the old value: copy before switching */
		s->val = v;
		s->vcap = cap;
	} else {
		memmove(s->val, data, len);
	}
	s->vlen = len;
	s->ts = ts;
	return 0;
}
