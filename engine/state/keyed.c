/*
 * engine/state/keyed.c - the keyed state backend: composite keys in one table,
 * the timer heaps, and their copy-on-write snapshots (see keyed.h).
 */
#include "state/keyed.h"
#include "graph/keygroup.h"

#include <stdlib.h>
#include <string.h>

void keyed_init(struct keyed *k)
{
	memset(k, 0, sizeof(*k));
	weir_kv_init(&k->kv);
}

void keyed_release(struct keyed *k)
{
	keyed_cow_drop(k);
	for (int d = 0; d < 2; d++) {
		struct keyed_heap *h = &k->heap[d];
		for (uint32_t i = 0; i < h->nslab; i++)
			if (h->slab[i].live && h->slab[i].cklen > KEYED_TIMER_INLINE)
				free(h->slab[i].ck.ptr);
		free(h->v);
		free(h->slab);
		free(h->free);
	}
	weir_kv_release(&k->kv);
	free(k->ck);
	memset(k, 0, sizeof(*k));
}

/* ---- composite keys ------------------------------------------------------ */

/* The composite key of (state, current key, ns) in the scratch buffer;
 * its length in *len, or NULL when out of memory. */
const uint8_t *keyed_composite(struct keyed *k, unsigned state, const void *ns, uint32_t nslen, uint32_t *len)
{
	uint32_t n = 4 + k->klen + nslen;
	if (n > k->ckcap) {
		uint32_t cap = n < 256 ? 256 : n * 2;
		uint8_t *b = realloc(k->ck, cap);
		if (!b)
			return NULL;
		k->ck = b;
		k->ckcap = cap;
	}
	/* the sizes were checked on the way in: state <= 255, namespace
	 * <= 255 bytes, key <= KEYED_MAX_KEY */
	uint16_t k16 = (uint16_t)k->klen;
	k->ck[0] = (uint8_t)state;
	k->ck[1] = (uint8_t)nslen;
	memcpy(k->ck + 2, &k16, 2);
	if (k->klen)
		memcpy(k->ck + 4, k->key, k->klen);
	if (nslen)
		memcpy(k->ck + 4 + k->klen, ns, nslen);
	*len = n;
	return k->ck;
}

int keyed_list_append(struct kv_slot *s, const void *data, uint32_t len, int64_t ts)
{
	uint32_t item = 16 + weir_kv_pad8(len);
	if (s->vlen > UINT32_MAX - item)
		return -1;
	uint8_t *v = weir_kv_reserve(s, s->vlen + item);
	if (!v)
		return -1;
	uint8_t *p = v + s->vlen;
	uint32_t zero = 0;
	memcpy(p, &len, 4);
	memcpy(p + 4, &zero, 4);
	memcpy(p + 8, &ts, 8);
	if (len)
		memcpy(p + 16, data, len);
	s->vlen += item;
	return 0;
}

/* ---- timers -------------------------------------------------------------- */

/* Timers of a copy-on-write snapshot: the timers pending at the snapshot
 * point are the live slots of the slab then, and a slot changes only when
 * its timer is popped (freed) or a freed slot is taken again. So, as for
 * the state table (kv.h): before either, the slot's timer is serialized if
 * its chunk of SLAB_CHUNK slots is still pending and it was not saved yet
 * (a bit per slot); background steps serialize the chunks. The heap's own
 * order is not part of a snapshot (a restore pushes the timers again). */
#define SLAB_CHUNK 2048u

struct heap_cow {
	struct snapbuf *out;
	struct weir_kg_map m;
	uint32_t d;		/* the heap's time domain */
	uint32_t n;		/* slab slots at the snapshot point */
	uint64_t *saved;	/* per slot below n */
	struct cow_marks marks;	/* its words follow the struct */
};

static uint32_t ck_group(const uint8_t *ck, uint32_t n, const struct weir_kg_map *m);

static void put_timer(struct snapbuf *b, const struct keyed_timer *t, uint32_t d, const struct weir_kg_map *m)
{
	const uint8_t *ck = keyed_timer_key(t);
	snap_u32(b, ck_group(ck, t->cklen, m));
	snap_u32(b, d | (t->dedup ? 0x100u : 0));
	snap_u32(b, t->cklen);
	snap_u32(b, 0);
	snap_i64(b, t->time);
	snap_u64(b, t->seq);
	snap_put(b, ck, t->cklen);
}

static void heap_cow_free(struct keyed_heap *h)
{
	if (h->cow) {
		free(h->cow->saved);
		free(h->cow);
		h->cow = NULL;
	}
}

static inline bool saved_bit(const uint64_t *b, uint32_t i) { return (b[i / 64] >> (i % 64)) & 1; }

static void heap_save(struct keyed_heap *h, uint32_t c)
{
	struct heap_cow *w = h->cow;
	uint32_t end = (c + 1) * SLAB_CHUNK < w->n ? (c + 1) * SLAB_CHUNK : w->n;
	for (uint32_t i = c * SLAB_CHUNK; i < end; i++)
		if (h->slab[i].live && !saved_bit(w->saved, i))
			put_timer(w->out, &h->slab[i], w->d, &w->m);
	if (cow_marks_take(&w->marks, c))
		heap_cow_free(h);
}

/* Slot i is about to be freed or taken: if a snapshot wants its timer as
 * it was, serialize that timer first. */
static inline void slot_touch(struct keyed_heap *h, uint32_t i)
{
	struct heap_cow *w = h->cow;
	if (__builtin_expect(w != NULL, 0) && i < w->n && cow_marks_pending(&w->marks, i / SLAB_CHUNK) &&
	    !saved_bit(w->saved, i)) {
		w->saved[i / 64] |= 1ull << (i % 64);
		if (h->slab[i].live)
			put_timer(w->out, &h->slab[i], w->d, &w->m);
	}
}

static void heap_cow_begin(struct keyed_heap *h, uint32_t d, struct snapbuf *out, const struct weir_kg_map *m)
{
	if (h->cow) { /* never: take.c finishes one snapshot before the next */
		out->oom = true;
		return;
	}
	if (!h->n)
		return;
	uint32_t n = (h->nslab + SLAB_CHUNK - 1) / SLAB_CHUNK;
	struct heap_cow *w = malloc(sizeof(*w) + sizeof(uint64_t) * cow_marks_words(n));
	uint64_t *saved = calloc((h->nslab + 63) / 64, sizeof(uint64_t));
	if (!w || !saved) { /* no room to defer: serialize now */
		free(w);
		free(saved);
		for (uint32_t i = 0; i < h->nslab; i++)
			if (h->slab[i].live)
				put_timer(out, &h->slab[i], d, m);
		return;
	}
	*w = (struct heap_cow){ .out = out, .m = *m, .d = d, .n = h->nslab, .saved = saved };
	cow_marks_init(&w->marks, (uint64_t *)(w + 1), n);
	h->cow = w;
}

static bool heap_cow_step(struct keyed_heap *h, uint32_t chunks)
{
	for (; h->cow && chunks; chunks--)
		heap_save(h, cow_marks_next(&h->cow->marks));
	return h->cow == NULL;
}

/* A 4-ary heap: half the levels of a binary one, and a pop (which sinks
 * the last entry to the bottom, as most pops do) misses the cache about
 * once a level: 96 bytes of siblings are two lines. */
#define HEAP_D 4

static inline bool ent_before(const struct heap_ent *a, const struct heap_ent *b)
{
	return a->time < b->time || (a->time == b->time && a->seq < b->seq);
}

/* A slot for a new timer: a freed one, or the next. UINT32_MAX when out
 * of memory. */
static uint32_t slot_take(struct keyed_heap *h)
{
	uint32_t i;
	if (h->nfree) {
		i = h->free[--h->nfree];
	} else {
		if (h->nslab == h->slab_cap) {
			uint32_t cap = h->slab_cap ? h->slab_cap * 2 : 64;
			struct keyed_timer *v = realloc(h->slab, sizeof(*v) * cap);
			if (!v)
				return UINT32_MAX;
			h->slab = v; /* slots keep their numbers: a snapshot reads by number */
			h->slab_cap = cap;
		}
		i = h->nslab++;
		h->slab[i].live = false;
	}
	slot_touch(h, i);
	return i;
}

static int heap_push(struct keyed_heap *h, const struct keyed_timer *t, uint32_t key_hi)
{
	if (h->n == h->cap) {
		uint32_t cap = h->cap ? h->cap * 2 : 64;
		struct heap_ent *v = realloc(h->v, sizeof(*v) * cap);
		if (!v)
			return -1;
		h->v = v;
		h->cap = cap;
	}
	if (h->free_cap < h->nslab + 1) { /* room to free every slot later: a pop never allocates */
		uint32_t cap = h->free_cap ? h->free_cap * 2 : 64;
		uint32_t *f = realloc(h->free, sizeof(*f) * cap);
		if (!f)
			return -1;
		h->free = f;
		h->free_cap = cap;
	}
	uint32_t slot = slot_take(h);
	if (slot == UINT32_MAX)
		return -1;
	h->slab[slot] = *t;
	h->slab[slot].live = true;
	struct heap_ent e = { t->time, t->seq, slot, key_hi };
	uint32_t i = h->n++;
	while (i > 0) {
		uint32_t parent = (i - 1) / HEAP_D;
		if (!ent_before(&e, &h->v[parent]))
			break;
		h->v[i] = h->v[parent];
		i = parent;
	}
	h->v[i] = e;
	return 0;
}

struct keyed_timer keyed_heap_pop(struct keyed_heap *h)
{
	uint32_t slot = h->v[0].slot;
	struct heap_ent last = h->v[--h->n];
	uint32_t i = 0;
	for (;;) {
		uint32_t c = HEAP_D * i + 1;
		if (c >= h->n)
			break;
		uint32_t end = c + HEAP_D < h->n ? c + HEAP_D : h->n;
		for (uint32_t j = c + 1; j < end; j++)
			if (ent_before(&h->v[j], &h->v[c]))
				c = j;
		if (!ent_before(&h->v[c], &last))
			break;
		h->v[i] = h->v[c];
		i = c;
	}
	if (h->n)
		h->v[i] = last;
	slot_touch(h, slot); /* the timer's key is freed once it fired */
	struct keyed_timer top = h->slab[slot];
	h->slab[slot].live = false;
	h->free[h->nfree++] = slot; /* free_cap >= the slots ever pushed */
	return top;
}

void keyed_heap_prefetch(const struct keyed *k, const struct keyed_heap *h)
{
	if (h->n) {
		const char *t = (const char *)&h->slab[h->v[0].slot];
		__builtin_prefetch(t);
		__builtin_prefetch(t + sizeof(struct keyed_timer) - 1); /* the slab is not line-aligned */
		weir_kv_prefetch(&k->kv, h->v[0].key_hi);
	}
}

/* A timer's table entry: state KEYED_TIMER_STATE, namespace
 * [u8 domain][i64 time][the caller's namespace]. */
int keyed_push_timer(struct keyed *k, enum weir_time_domain d, int64_t time, const uint8_t *ck, uint32_t n, bool dedup)
{
	struct keyed_timer t = { .time = time, .seq = k->seq++, .cklen = n, .dedup = dedup };
	if (n <= KEYED_TIMER_INLINE) {
		memcpy(t.ck.inl, ck, n);
	} else {
		if (!(t.ck.ptr = malloc(n)))
			return -1;
		memcpy(t.ck.ptr, ck, n);
	}
	uint16_t klen = 0;
	if (n >= 4)
		memcpy(&klen, ck + 2, 2); /* n >= 4 + klen: keyed_composite made it, or keyed_restore checked it */
	if (heap_push(&k->heap[d], &t, keyed_key_hi(ck + 4, klen)) < 0) {
		if (n > KEYED_TIMER_INLINE)
			free(t.ck.ptr);
		return -1;
	}
	return 0;
}

uint64_t keyed_ck_hash(const void *p, uint32_t n)
{
	const uint8_t *ck = p;
	uint16_t klen = 0;
	if (n >= 4)
		memcpy(&klen, ck + 2, 2);
	if (n < 4 || 4u + klen > n)
		return weir_key_hash(ck, n);
	return keyed_ck_hash_with(keyed_key_hi(ck + 4, klen), ck, n);
}

/* ---- snapshots (engine/runtime/'s subtask format) ------------------------ */

/* The key group of a composite key: that of the user key inside it. */
static uint32_t ck_group(const uint8_t *ck, uint32_t n, const struct weir_kg_map *m)
{
	uint16_t klen = 0;
	if (n >= 4)
		memcpy(&klen, ck + 2, 2);
	if ((uint32_t)klen + 4 > n)
		klen = 0;
	return weir_key_group(m, weir_key_hash(ck + 4, klen));
}

void keyed_cow_begin(struct keyed *k, struct snapbuf *kv_head, struct snapbuf *kv, struct snapbuf *t_head,
		     struct snapbuf *t, const struct weir_kg_map *m)
{
	snap_u64(kv_head, k->kv.count);
	if (weir_kv_cow_begin(&k->kv, kv, m, true) < 0) /* one in progress: never, take.c finishes it first */
		kv->oom = true;
	snap_u64(t_head, (uint64_t)k->heap[0].n + k->heap[1].n);
	for (uint32_t d = 0; d < 2; d++)
		heap_cow_begin(&k->heap[d], d, t, m);
}

bool keyed_cow_step(struct keyed *k, uint32_t chunks)
{
	bool done = weir_kv_cow_step(&k->kv, chunks);
	for (int d = 0; d < 2; d++)
		done &= heap_cow_step(&k->heap[d], chunks);
	return done;
}

void keyed_cow_drop(struct keyed *k)
{
	weir_kv_cow_drop(&k->kv);
	for (int d = 0; d < 2; d++) {
		heap_cow_free(&k->heap[d]);
	}
}

int keyed_restore(struct keyed *k, struct snapreader *r, const struct weir_kg_map *m, uint32_t kg_lo, uint32_t kg_hi)
{
	if (weir_kv_restore(&k->kv, r, kg_lo, kg_hi, keyed_ck_hash) < 0)
		return -1;
	uint64_t n = snap_get_u64(r);
	for (uint64_t i = 0; i < n && !r->bad; i++) {
		uint32_t kg = snap_get_u32(r), flags = snap_get_u32(r), cklen = snap_get_u32(r);
		snap_get_u32(r);
		int64_t time = (int64_t)snap_get_u64(r);
		uint64_t seq = snap_get_u64(r);
		const uint8_t *ck = snap_take(r, cklen);
		if (!ck || (flags & 0xffu) > 1)
			return -1;
		if (kg < kg_lo || kg >= kg_hi)
			continue;
		uint16_t klen = 0;
		if (cklen >= 4)
			memcpy(&klen, ck + 2, 2);
		/* [0xff][nslen][klen][key][u8 domain][i64 time][ns]: fire() trusts it */
		if (cklen < 4u + klen + 9u || ck[0] != KEYED_TIMER_STATE || ck[1] != cklen - 4u - klen ||
		    ck_group(ck, cklen, m) != kg)
			return -1;
		uint64_t saved = k->seq;
		k->seq = seq; /* the same order among timers of one time */
		int rc = keyed_push_timer(k, (enum weir_time_domain)(flags & 0xffu), time, ck, cklen, (flags & 0x100u) != 0);
		k->seq = seq + 1 > saved ? seq + 1 : saved;
		if (rc < 0)
			return -1;
	}
	return r->bad ? -1 : 0;
}

