/* engine/state/kv.c - see kv.h. */
#include "state/kv.h"
#include "graph/keygroup.h"
#include "state/snapshot.h"

#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#define SHARD_MIN 16u		/* slots of a table's first shard */
#define SHARD_MAX 32768u	/* 2 MiB of slots: a fuller shard splits in two instead of growing */
#define DEPTH_MAX 17u		/* directory bits; with SHARD_MAX's 15 they use the high half's 32 */

/* Extendible hashing: the directory has 2^kv->depth entries, indexed by the
 * top bits of a hash's high half; a shard of local depth d holds every
 * hash whose top d bits are its own, and 2^(kv->depth - d) consecutive
 * entries point at it. Within a shard the low bits of the high half pick
 * the home slot. Growing touches one shard only: a resize or a split moves
 * at most SHARD_MAX entries, a bounded pause however big the table. */
struct kv_shard {
	struct kv_slot *slots;
	uint32_t cap;		/* power of two */
	uint32_t count;
	uint32_t depth;
	uint32_t cow_base;	/* its first chunk in the snapshot in progress, when in_cow */
	bool in_cow;		/* its slots are as they were at the snapshot point, or saved */
};

/* The low bit set keeps a hash non-zero (0 marks an empty slot). */
static inline uint64_t fix_hash(uint64_t h) { return h | 1; }
static inline uint32_t hi_of(uint64_t h) { return (uint32_t)(h >> 32); }
static inline uint32_t home(uint64_t h, uint32_t cap) { return hi_of(h) & (cap - 1); }
static inline uint32_t dir_index(uint32_t depth, uint32_t hi) { return depth ? hi >> (32 - depth) : 0; }
static inline struct kv_shard *shard_of(const struct weir_kv *kv, uint64_t h)
{
	return kv->dir[dir_index(kv->depth, hi_of(h))];
}

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

/* Each shard once, in directory order (s must stay valid through its body). */
#define FOR_EACH_SHARD(kv, s)                                                                                  \
	for (uint32_t _d = 0, _n = (kv)->dir ? 1u << (kv)->depth : 0; _d < _n;                                \
	     _d += 1u << ((kv)->depth - (kv)->dir[_d]->depth))                                                  \
		for (struct kv_shard *s = (kv)->dir[_d]; s; s = NULL)

/* ---- copy-on-write snapshots (the rest is at the end) ---------------------- */

/* A snapshot in progress. Its chunks (WEIR_KV_CHUNK slots of a shard) are
 * serialized by background steps, a chunk at a time; before that, a write
 * into a pending chunk first serializes the one slot it changes (saved:
 * a bit per slot, so no entry goes twice), so a write costs one entry's
 * copy, never a chunk's. A shard that must grow or split first serializes
 * its pending chunks (at most SHARD_MAX slots). */
struct kv_cow {
	struct snapbuf *out;
	struct weir_kg_map m;
	bool composite;
	struct kv_shard **chunk_shard;	/* per chunk: its shard */
	uint64_t *saved;		/* per slot of the snapshot (cow_base * CHUNK + i) */
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

static inline bool bit_get(const uint64_t *b, uint64_t i) { return (b[i / 64] >> (i % 64)) & 1; }
static inline void bit_set(uint64_t *b, uint64_t i) { b[i / 64] |= 1ull << (i % 64); }

static void cow_free(struct weir_kv *kv)
{
	struct kv_cow *w = kv->cow;
	if (!w)
		return;
	free(w->chunk_shard);
	free(w->saved);
	free(w);
	kv->cow = NULL;
}

/* Serialize chunk c (untouched since the snapshot point but for the slots
 * saved one by one). */
static void cow_save(struct weir_kv *kv, uint32_t c)
{
	struct kv_cow *w = kv->cow;
	struct kv_shard *s = w->chunk_shard[c];
	uint32_t first = (c - s->cow_base) * WEIR_KV_CHUNK;
	uint32_t end = first + WEIR_KV_CHUNK < s->cap ? first + WEIR_KV_CHUNK : s->cap;
	uint64_t g = (uint64_t)s->cow_base * WEIR_KV_CHUNK;
	for (uint32_t i = first; i < end; i++)
		if (s->slots[i].hash && !bit_get(w->saved, g + i))
			put_entry(w->out, &s->slots[i], &w->m, w->composite);
	if (cow_marks_take(&w->marks, c))
		cow_free(kv);
}

/* Slot i of shard s is about to be written (or handed out writable): if a
 * snapshot still wants it as it was, serialize that entry first. */
static inline void cow_touch(struct weir_kv *kv, struct kv_shard *s, uint32_t i)
{
	struct kv_cow *w = kv->cow;
	if (__builtin_expect(w != NULL, 0) && s->in_cow) {
		uint64_t g = (uint64_t)s->cow_base * WEIR_KV_CHUNK + i;
		if (cow_marks_pending(&w->marks, s->cow_base + i / WEIR_KV_CHUNK) && !bit_get(w->saved, g)) {
			bit_set(w->saved, g);
			if (s->slots[i].hash)
				put_entry(w->out, &s->slots[i], &w->m, w->composite);
		}
	}
}

/* Shard s is about to move its entries (resize, split): a snapshot in
 * progress takes its pending chunks now. */
static void cow_finish_shard(struct weir_kv *kv, struct kv_shard *s)
{
	if (!kv->cow || !s->in_cow)
		return;
	uint32_t n = (s->cap + WEIR_KV_CHUNK - 1) / WEIR_KV_CHUNK;
	for (uint32_t c = s->cow_base; c < s->cow_base + n && kv->cow; c++)
		if (cow_marks_pending(&kv->cow->marks, c))
			cow_save(kv, c);
	s->in_cow = false;
}

/* ---- the table ------------------------------------------------------------- */

void weir_kv_init(struct weir_kv *kv)
{
	memset(kv, 0, sizeof(*kv));
}

/* A shard's slots, zeroed. A full shard (2 MiB) is one huge page where the
 * kernel has them to give (transparent huge pages in madvise mode): lookups
 * in a table of millions of keys miss the TLB about as often as the cache,
 * and a page walk costs more than the miss on a virtual machine. */
#define HUGE_PAGE (2u << 20)
static struct kv_slot *new_slots(uint32_t cap)
{
	size_t len = (size_t)cap * sizeof(struct kv_slot);
	struct kv_slot *n = aligned_alloc(len >= HUGE_PAGE ? HUGE_PAGE : 64, len);
	if (!n)
		return NULL;
	if (len >= HUGE_PAGE)
		(void)madvise(n, len, MADV_HUGEPAGE); /* advice: without it, 4 KiB pages */
	memset(n, 0, len);
	return n;
}

void weir_kv_release(struct weir_kv *kv)
{
	cow_free(kv);
	for (uint32_t d = 0, n = kv->dir ? 1u << kv->depth : 0; d < n;) {
		struct kv_shard *s = kv->dir[d];
		d += 1u << (kv->depth - s->depth); /* read before s goes */
		for (uint32_t i = 0; i < s->cap; i++)
			if (s->slots[i].hash && s->slots[i].external)
				free(weir_kv_blk(&s->slots[i]));
		free(s->slots);
		free(s);
	}
	free(kv->dir);
	memset(kv, 0, sizeof(*kv));
}

struct kv_slot *weir_kv_get(struct weir_kv *kv, uint64_t hash, const void *key, uint32_t klen)
{
	if (!kv->dir)
		return NULL;
	hash = fix_hash(hash);
	struct kv_shard *sh = shard_of(kv, hash);
	for (uint32_t i = home(hash, sh->cap);; i = (i + 1) & (sh->cap - 1)) {
		struct kv_slot *s = &sh->slots[i];
		if (!s->hash)
			return NULL;
		if (s->hash == hash && s->klen == klen && key_eq(weir_kv_key(s), key, klen)) {
			cow_touch(kv, sh, i); /* the caller may write it */
			return s;
		}
	}
}

void weir_kv_prefetch(const struct weir_kv *kv, uint32_t hash_hi)
{
	if (kv->dir) {
		const struct kv_shard *s = kv->dir[dir_index(kv->depth, hash_hi)];
		__builtin_prefetch(&s->slots[hash_hi & (s->cap - 1)], 1);
	}
}

/* Put every entry of from[0..cap) into the right one of to[] (by the bit
 * below the top `depth - 1` bits when two; else all into to[0]). */
static void rehash(const struct kv_slot *from, uint32_t cap, struct kv_slot *const *to, uint32_t tocap,
		   uint32_t split_depth)
{
	for (uint32_t i = 0; i < cap; i++) {
		const struct kv_slot *s = &from[i];
		if (!s->hash)
			continue;
		struct kv_slot *t = to[split_depth ? (hi_of(s->hash) >> (32 - split_depth)) & 1 : 0];
		uint32_t j = home(s->hash, tocap);
		while (t[j].hash)
			j = (j + 1) & (tocap - 1);
		t[j] = *s; /* inline bytes move with the slot; nothing points into it */
	}
}

/* Make room in the shard that hash goes to: double it, or split it. */
static int grow(struct weir_kv *kv, uint64_t hash)
{
	if (!kv->dir) {
		struct kv_shard *s = calloc(1, sizeof(*s));
		kv->dir = malloc(sizeof(*kv->dir));
		if (!s || !kv->dir || !(s->slots = new_slots(SHARD_MIN))) {
			free(s);
			free(kv->dir);
			kv->dir = NULL;
			return -1;
		}
		s->cap = SHARD_MIN;
		kv->dir[0] = s;
		kv->depth = 0;
		return 0;
	}
	uint32_t d = dir_index(kv->depth, hi_of(hash));
	struct kv_shard *s = kv->dir[d];
	kv->resizes++;
	if (s->cap < SHARD_MAX || s->depth == DEPTH_MAX) { /* double it */
		struct kv_slot *n = new_slots(s->cap * 2);
		if (!n)
			return -1;
		cow_finish_shard(kv, s);
		rehash(s->slots, s->cap, &n, s->cap * 2, 0);
		free(s->slots);
		s->slots = n;
		s->cap *= 2;
		return 0;
	}
	/* split: the entries whose next bit is 1 go to a new shard */
	if (s->depth == kv->depth) { /* the directory doubles first (pointers only) */
		struct kv_shard **nd = malloc(sizeof(*nd) << (kv->depth + 1));
		if (!nd)
			return -1;
		for (uint32_t i = 0; i < 1u << kv->depth; i++)
			nd[2 * i] = nd[2 * i + 1] = kv->dir[i];
		free(kv->dir);
		kv->dir = nd;
		kv->depth++;
		d = dir_index(kv->depth, hi_of(hash));
	}
	struct kv_shard *t = calloc(1, sizeof(*t));
	struct kv_slot *halves[2] = { new_slots(s->cap), new_slots(s->cap) };
	if (!t || !halves[0] || !halves[1]) {
		free(t);
		free(halves[0]);
		free(halves[1]);
		return -1;
	}
	cow_finish_shard(kv, s);
	uint32_t depth = s->depth + 1;
	rehash(s->slots, s->cap, halves, s->cap, depth);
	free(s->slots);
	s->slots = halves[0];
	s->depth = depth;
	t->slots = halves[1];
	t->cap = s->cap;
	t->depth = depth;
	s->count = t->count = 0;
	for (uint32_t i = 0; i < s->cap; i++) {
		s->count += s->slots[i].hash != 0;
		t->count += t->slots[i].hash != 0;
	}
	/* of the 2^(kv->depth - depth + 1) entries that pointed at s, the upper half now point at t */
	uint32_t span = 1u << (kv->depth - depth), first = d & ~(2 * span - 1);
	for (uint32_t i = first + span; i < first + 2 * span; i++)
		kv->dir[i] = t;
	kv->nshards++;
	return 0;
}

uint8_t *weir_kv_reserve(struct kv_slot *s, uint32_t len)
{
	if (len <= s->vcap)
		return weir_kv_val(s);
	if (len > WEIR_KV_VMAX)
		return NULL;
	uint32_t koff = weir_kv_pad8(s->klen);
	uint64_t want = (uint64_t)s->vcap * 2 > len ? (uint64_t)s->vcap * 2 : len;
	if (want > WEIR_KV_VMAX)
		want = len;
	uint32_t vcap = weir_kv_pad8((uint32_t)want);
	uint8_t *b;
	if (s->external) {
		b = realloc(weir_kv_blk(s), (size_t)koff + vcap);
		if (!b)
			return NULL;
	} else { /* the inline layout differs from the block's: key, then value */
		b = malloc((size_t)koff + vcap);
		if (!b)
			return NULL;
		memcpy(b, s->inl, s->klen);
		memcpy(b + koff, s->inl + weir_kv_inl_voff(s->klen), s->vlen);
		s->external = 1;
	}
	weir_kv_set_blk(s, b);
	s->vcap = vcap;
	return b + koff;
}

int weir_kv_set(struct weir_kv *kv, struct kv_slot *s, const void *data, uint32_t len, int64_t aux)
{
	(void)kv;
	if (len > s->vcap) {
		/* Outgrown: copy through a fresh block, since data may point into
		 * the current value (both copies before the block's address
		 * overwrites inline bytes). */
		if (len > WEIR_KV_VMAX)
			return -1;
		uint32_t koff = weir_kv_pad8(s->klen), vcap = weir_kv_pad8(len);
		uint8_t *b = malloc((size_t)koff + vcap);
		if (!b)
			return -1;
		memcpy(b, weir_kv_key(s), s->klen);
		memcpy(b + koff, data, len);
		if (s->external)
			free(weir_kv_blk(s));
		weir_kv_set_blk(s, b);
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
	struct kv_shard *sh;
	for (;;) {
		if (kv->dir) {
			sh = shard_of(kv, hash);
			if ((uint64_t)(sh->count + 1) * 10 <= (uint64_t)sh->cap * 7)
				break;
		}
		if (grow(kv, hash) < 0)
			return NULL;
	}
	uint32_t i = home(hash, sh->cap);
	while (sh->slots[i].hash)
		i = (i + 1) & (sh->cap - 1);
	cow_touch(kv, sh, i);
	struct kv_slot *s = &sh->slots[i];
	uint32_t voff = weir_kv_inl_voff(klen);
	if (len > WEIR_KV_VMAX)
		return NULL;
	if (klen <= WEIR_KV_INLINE && voff + len <= WEIR_KV_INLINE) {
		memcpy(s->inl, key, klen);
		if (len)
			memcpy(s->inl + voff, data, len);
		s->external = 0;
		s->vcap = WEIR_KV_INLINE - voff;
	} else {
		uint32_t koff = weir_kv_pad8(klen), vcap = len < 8 ? 8 : weir_kv_pad8(len);
		uint8_t *b = malloc((size_t)koff + vcap);
		if (!b)
			return NULL;
		memcpy(b, key, klen);
		if (len)
			memcpy(b + koff, data, len);
		weir_kv_set_blk(s, b);
		s->external = 1;
		s->vcap = vcap;
	}
	s->klen = klen;
	s->vlen = len;
	s->aux = aux;
	s->hash = hash;
	sh->count++;
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
	struct kv_shard *sh = shard_of(kv, s->hash);
	uint32_t mask = sh->cap - 1, i = (uint32_t)(s - sh->slots);
	/* every slot written below is touched first: a pending entry is saved
	 * before this entry's block goes or a shifted entry lands on it */
	cow_touch(kv, sh, i);
	if (s->external)
		free(weir_kv_blk(s));
	/* Backward-shift deletion: move later entries of the probe run into
	 * the hole when their home does not lie between the hole and them. */
	for (uint32_t j = (i + 1) & mask;; j = (j + 1) & mask) {
		struct kv_slot *n = &sh->slots[j];
		if (!n->hash)
			break;
		uint32_t h = home(n->hash, sh->cap);
		bool stays = i <= j ? (i < h && h <= j) : (i < h || h <= j);
		if (stays)
			continue;
		cow_touch(kv, sh, i);
		sh->slots[i] = *n;
		i = j;
	}
	cow_touch(kv, sh, i);
	memset(&sh->slots[i], 0, sizeof(sh->slots[i]));
	sh->count--;
	kv->count--;
}

/* ---- snapshots ------------------------------------------------------------ */

int weir_kv_cow_begin(struct weir_kv *kv, struct snapbuf *out, const struct weir_kg_map *m, bool composite)
{
	if (kv->cow)
		return -1; /* one at a time: the caller finishes the last first */
	if (!kv->count)
		return 0;
	uint32_t n = 0;
	FOR_EACH_SHARD(kv, s) {
		s->cow_base = n;
		s->in_cow = true;
		n += (s->cap + WEIR_KV_CHUNK - 1) / WEIR_KV_CHUNK;
	}
	struct kv_cow *w = malloc(sizeof(*w) + sizeof(uint64_t) * cow_marks_words(n));
	struct kv_shard **cs = malloc(sizeof(*cs) * n);
	uint64_t *saved = calloc(((size_t)n * WEIR_KV_CHUNK + 63) / 64, sizeof(uint64_t));
	if (!w || !cs || !saved) { /* no room to defer: serialize now */
		free(w);
		free(cs);
		free(saved);
		FOR_EACH_SHARD(kv, s)
			for (uint32_t i = 0; i < s->cap; i++)
				if (s->slots[i].hash)
					put_entry(out, &s->slots[i], m, composite);
		return 0;
	}
	FOR_EACH_SHARD(kv, s)
		for (uint32_t c = 0; c < (s->cap + WEIR_KV_CHUNK - 1) / WEIR_KV_CHUNK; c++)
			cs[s->cow_base + c] = s;
	w->out = out;
	w->m = *m;
	w->composite = composite;
	w->chunk_shard = cs;
	w->saved = saved;
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
	cow_free(kv);
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
