/* engine/state/kv.c - see state.h. */
#include "state/kv.h"
#include "graph/keygroup.h"
#include "state/snapshot.h"

#include <stdlib.h>
#include <string.h>

/* The low bit set keeps a hash non-zero (0 marks an empty slot). */
static inline uint64_t fix_hash(uint64_t h) { return h | 1; }
/* The high half picks the slot: the low bits already picked the key group,
 * so within one subtask they are far from uniform. */
static inline uint32_t home(uint64_t h, uint32_t cap) { return (uint32_t)(h >> 32) & (cap - 1); }

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

/* ---- copy-on-write snapshots (the rest is at the end) ---------------------- */

struct kv_cow {
	struct snapbuf *out;
	struct weir_kg_map m;
	bool composite;
	struct cow_marks marks;		/* its words follow the struct */
};

static void put_entry(struct snapbuf *b, const struct kv_slot *s, const struct weir_kg_map *m, bool composite)
{
	const uint8_t *key = weir_kv_key(s);
	uint32_t ulen = s->klen;
	const uint8_t *ukey = key;
	if (composite) { /* [state][nslen][u16 klen][key][ns] */
		uint16_t k16 = 0;
		if (s->klen >= 4)
			memcpy(&k16, key + 2, 2);
		ukey = key + 4;
		ulen = (uint32_t)k16 + 4 <= s->klen ? k16 : 0;
	}
	uint8_t *h = snap_room(b, 24 + (size_t)s->klen + s->vlen);
	if (!h)
		return;
	uint32_t hdr[4] = { weir_key_group(m, weir_key_hash(ukey, ulen)), s->klen, s->vlen, 0 };
	memcpy(h, hdr, 16);
	memcpy(h + 16, &s->aux, 8);
	memcpy(h + 24, key, s->klen);
	memcpy(h + 24 + s->klen, weir_kv_val((struct kv_slot *)s), s->vlen);
}

/* Serialize chunk c as it is (untouched since the snapshot point). */
static void cow_save(struct weir_kv *kv, uint32_t c)
{
	struct kv_cow *w = kv->cow;
	uint32_t end = (c + 1) * WEIR_KV_CHUNK < kv->cap ? (c + 1) * WEIR_KV_CHUNK : kv->cap;
	for (uint32_t i = c * WEIR_KV_CHUNK; i < end; i++)
		if (kv->slots[i].hash)
			put_entry(w->out, &kv->slots[i], &w->m, w->composite);
	if (cow_marks_take(&w->marks, c)) {
		free(w);
		kv->cow = NULL;
	}
}

/* Slot i is about to be written (or handed out writable): if a snapshot
 * still wants its chunk as it was, serialize the chunk first. */
static inline void cow_touch(struct weir_kv *kv, uint32_t i)
{
	struct kv_cow *w = kv->cow;
	if (__builtin_expect(w != NULL, 0)) {
		uint32_t c = i / WEIR_KV_CHUNK;
		if (cow_marks_pending(&w->marks, c))
			cow_save(kv, c);
	}
}

/* ---- the table ------------------------------------------------------------- */

void weir_kv_init(struct weir_kv *kv)
{
	memset(kv, 0, sizeof(*kv));
}

void weir_kv_release(struct weir_kv *kv)
{
	weir_kv_cow_drop(kv);
	for (uint32_t i = 0; i < kv->cap; i++)
		if (kv->slots[i].hash && kv->slots[i].external)
			free(kv->slots[i].u.blk);
	free(kv->slots);
	memset(kv, 0, sizeof(*kv));
}

struct kv_slot *weir_kv_get(struct weir_kv *kv, uint64_t hash, const void *key, uint32_t klen)
{
	if (!kv->cap)
		return NULL;
	hash = fix_hash(hash);
	for (uint32_t i = home(hash, kv->cap);; i = (i + 1) & (kv->cap - 1)) {
		struct kv_slot *s = &kv->slots[i];
		if (!s->hash)
			return NULL;
		if (s->hash == hash && s->klen == klen && key_eq(weir_kv_key(s), key, klen)) {
			cow_touch(kv, i); /* the caller may write it */
			return s;
		}
	}
}

void weir_kv_prefetch(const struct weir_kv *kv, uint32_t hash_hi)
{
	if (kv->cap)
		__builtin_prefetch(&kv->slots[hash_hi & (kv->cap - 1)], 1);
}

static int grow(struct weir_kv *kv)
{
	/* a rehash moves every entry: a pending snapshot takes the rest now */
	weir_kv_cow_step(kv, UINT32_MAX);
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

uint8_t *weir_kv_reserve(struct kv_slot *s, uint32_t len)
{
	if (len <= s->vcap)
		return weir_kv_val(s);
	uint32_t koff = weir_kv_pad8(s->klen);
	uint64_t want = (uint64_t)s->vcap * 2 > len ? (uint64_t)s->vcap * 2 : len;
	if (want > UINT32_MAX - 8)
		want = len;
	uint32_t vcap = weir_kv_pad8((uint32_t)want);
	uint8_t *b;
	if (s->external) {
		b = realloc(s->u.blk, (size_t)koff + vcap);
		if (!b)
			return NULL;
	} else {
		b = malloc((size_t)koff + vcap);
		if (!b)
			return NULL;
		memcpy(b, s->u.inl, (size_t)koff + s->vlen);
		s->external = 1;
	}
	s->u.blk = b;
	s->vcap = vcap;
	return b + koff;
}

int weir_kv_set(struct weir_kv *kv, struct kv_slot *s, const void *data, uint32_t len, int64_t aux)
{
	(void)kv;
	if (len > s->vcap) {
		/* Outgrown: copy through a fresh block, since data may point into
		 * the current value. */
		uint32_t koff = weir_kv_pad8(s->klen), vcap = weir_kv_pad8(len);
		uint8_t *b = malloc((size_t)koff + vcap);
		if (!b)
			return -1;
		memcpy(b, weir_kv_key(s), s->klen);
		memcpy(b + koff, data, len);
		if (s->external)
			free(s->u.blk);
		s->u.blk = b;
		s->external = 1;
		s->vcap = vcap;
	} else if (len) {
		memmove(weir_kv_val(s), data, len);
	}
	s->vlen = len;
	s->aux = aux;
	return 0;
}

struct kv_slot *weir_kv_insert(struct weir_kv *kv, uint64_t hash, const void *key, uint32_t klen,
			       const void *data, uint32_t len, int64_t aux)
{
	hash = fix_hash(hash);
	if ((uint64_t)(kv->count + 1) * 10 > (uint64_t)kv->cap * 7 && grow(kv) < 0)
		return NULL;
	uint32_t i = home(hash, kv->cap);
	while (kv->slots[i].hash)
		i = (i + 1) & (kv->cap - 1);
	cow_touch(kv, i);
	struct kv_slot *s = &kv->slots[i];
	uint32_t koff = weir_kv_pad8(klen);
	if (koff + weir_kv_pad8(len) <= WEIR_KV_INLINE) {
		memcpy(s->u.inl, key, klen);
		if (len)
			memcpy(s->u.inl + koff, data, len);
		s->external = 0;
		s->vcap = WEIR_KV_INLINE - koff;
	} else {
		uint32_t vcap = len < 8 ? 8 : weir_kv_pad8(len);
		uint8_t *b = malloc((size_t)koff + vcap);
		if (!b)
			return NULL;
		memcpy(b, key, klen);
		if (len)
			memcpy(b + koff, data, len);
		s->u.blk = b;
		s->external = 1;
		s->vcap = vcap;
	}
	s->klen = klen;
	s->vlen = len;
	s->aux = aux;
	s->hash = hash;
	kv->count++;
	return s;
}

int weir_kv_put(struct weir_kv *kv, uint64_t hash, const void *key, uint32_t klen, const void *data,
		uint32_t len, int64_t aux)
{
	struct kv_slot *found = weir_kv_get(kv, hash, key, klen);
	if (found)
		return weir_kv_set(kv, found, data, len, aux);
	return weir_kv_insert(kv, hash, key, klen, data, len, aux) ? 0 : -1;
}

void weir_kv_del(struct weir_kv *kv, struct kv_slot *s)
{
	uint32_t mask = kv->cap - 1, i = (uint32_t)(s - kv->slots);
	/* every slot written below is touched first: a pending chunk is saved
	 * before this entry's block goes or a shifted entry lands in it */
	cow_touch(kv, i);
	if (s->external)
		free(s->u.blk);
	/* Backward-shift deletion: move later entries of the probe run into
	 * the hole when their home does not lie between the hole and them. */
	for (uint32_t j = (i + 1) & mask;; j = (j + 1) & mask) {
		struct kv_slot *n = &kv->slots[j];
		if (!n->hash)
			break;
		uint32_t h = home(n->hash, kv->cap);
		bool stays = i <= j ? (i < h && h <= j) : (i < h || h <= j);
		if (stays)
			continue;
		cow_touch(kv, i);
		kv->slots[i] = *n;
		i = j;
	}
	cow_touch(kv, i);
	memset(&kv->slots[i], 0, sizeof(kv->slots[i]));
	kv->count--;
}

/* ---- snapshots ------------------------------------------------------------ */

int weir_kv_cow_begin(struct weir_kv *kv, struct snapbuf *out, const struct weir_kg_map *m, bool composite)
{
	if (kv->cow)
		return -1; /* one at a time: the caller finishes the last first */
	if (!kv->count)
		return 0;
	uint32_t n = (kv->cap + WEIR_KV_CHUNK - 1) / WEIR_KV_CHUNK;
	struct kv_cow *w = malloc(sizeof(*w) + sizeof(uint64_t) * cow_marks_words(n));
	if (!w) { /* no room to defer: serialize now */
		for (uint32_t i = 0; i < kv->cap; i++)
			if (kv->slots[i].hash)
				put_entry(out, &kv->slots[i], m, composite);
		return 0;
	}
	w->out = out;
	w->m = *m;
	w->composite = composite;
	cow_marks_init(&w->marks, (uint64_t *)(w + 1), n);
	kv->cow = w;
	return 0;
}

bool weir_kv_cow_step(struct weir_kv *kv, uint32_t chunks)
{
	for (; kv->cow && chunks; chunks--)
		cow_save(kv, cow_marks_next(&kv->cow->marks));
	return kv->cow == NULL;
}

void weir_kv_cow_drop(struct weir_kv *kv)
{
	free(kv->cow);
	kv->cow = NULL;
}

void weir_kv_snapshot(struct weir_kv *kv, struct snapbuf *b, const struct weir_kg_map *m, bool composite)
{
	snap_u64(b, kv->count);
	if (weir_kv_cow_begin(kv, b, m, composite) == 0)
		weir_kv_cow_step(kv, UINT32_MAX);
}

uint64_t weir_kv_key_hash(const void *key, uint32_t klen)
{
	return weir_key_hash(key, klen) & 0xffffffff00000000u;
}

int weir_kv_restore(struct weir_kv *kv, struct snapreader *r, uint32_t kg_lo, uint32_t kg_hi, weir_kv_hash_fn hash)
{
	uint64_t n = snap_get_u64(r);
	for (uint64_t i = 0; i < n && !r->bad; i++) {
		uint32_t kg = snap_get_u32(r), klen = snap_get_u32(r), vlen = snap_get_u32(r);
		snap_get_u32(r);
		int64_t aux = (int64_t)snap_get_u64(r);
		const void *key = snap_take(r, klen), *val = snap_take(r, vlen);
		if (!key || !val)
			return -1;
		if (kg < kg_lo || kg >= kg_hi)
			continue;
		if (weir_kv_put(kv, hash(key, klen), key, klen, val, vlen, aux) < 0)
			return -1;
	}
	return r->bad ? -1 : 0;
}
