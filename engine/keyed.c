/*
 * engine/keyed.c - keyed state, timers and process functions; see keyed.h
 * for the layout of composite keys and the timer heaps.
 *
 * List state is one value holding items [u32 len][u32 0][i64 ts][bytes,
 * pad 8], appended in place (the value's room doubles). Map state is one
 * value holding entries [u32 klen][u32 vlen][key, pad 8][value, pad 8],
 * searched linearly: right for the small maps process functions keep per
 * key, wrong for big ones (documented in the API).
 */
#include "engine/keyed.h"
#include "engine/keygroup.h"
#include "engine/runtime.h"
#include "base/clock.h"

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
		for (uint32_t i = 0; i < k->heap[d].n; i++)
			if (k->heap[d].v[i].cklen > KEYED_TIMER_INLINE)
				free(k->heap[d].v[i].ck.ptr);
		free(k->heap[d].v);
	}
	weir_kv_release(&k->kv);
	free(k->ck);
	memset(k, 0, sizeof(*k));
}

/* ---- composite keys ------------------------------------------------------ */

/* The composite key of (state, current key, ns) in the scratch buffer;
 * its length in *len, or NULL when out of memory. */
static const uint8_t *composite(struct keyed *k, unsigned state, const void *ns, uint32_t nslen, uint32_t *len)
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

struct kv_slot *keyed_get(struct opinst *op, int state, const void *ns, uint32_t nslen)
{
	uint32_t n;
	const uint8_t *ck = composite(&op->keyed, (unsigned)state, ns, nslen, &n);
	return ck ? weir_kv_get(&op->keyed.kv, weir_key_hash(ck, n), ck, n) : NULL;
}

struct kv_slot *keyed_put(struct opinst *op, int state, const void *ns, uint32_t nslen, const void *data,
			  uint32_t len)
{
	uint32_t n;
	const uint8_t *ck = composite(&op->keyed, (unsigned)state, ns, nslen, &n);
	if (!ck)
		return NULL;
	uint64_t h = weir_key_hash(ck, n);
	struct kv_slot *s = weir_kv_get(&op->keyed.kv, h, ck, n);
	if (s)
		return weir_kv_set(&op->keyed.kv, s, data, len, s->aux) < 0 ? NULL : s;
	return weir_kv_insert(&op->keyed.kv, h, ck, n, data, len, 0);
}

void keyed_del(struct opinst *op, int state, const void *ns, uint32_t nslen)
{
	struct kv_slot *s = keyed_get(op, state, ns, nslen);
	if (s)
		weir_kv_del(&op->keyed.kv, s);
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

/* Timers of a copy-on-write snapshot, as in state.c: the heap is saved
 * by chunks of HEAP_CHUNK entries, each before its first write after the
 * snapshot point. A popped timer's key is freed once it fired, so pop
 * saves the chunks of the top and of the last entry before it starts. */
#define HEAP_CHUNK 2048u

struct heap_cow {
	struct snapbuf *out;
	struct weir_kg_map m;
	uint32_t d;		/* the heap's time domain */
	uint32_t n;		/* entries at the snapshot point */
	struct cow_marks marks;	/* its words follow the struct */
};

static const uint8_t *timer_ck(const struct keyed_timer *t);
static uint32_t ck_group(const uint8_t *ck, uint32_t n, const struct weir_kg_map *m);

static void put_timer(struct snapbuf *b, const struct keyed_timer *t, uint32_t d, const struct weir_kg_map *m)
{
	const uint8_t *ck = timer_ck(t);
	snap_u32(b, ck_group(ck, t->cklen, m));
	snap_u32(b, d | (t->dedup ? 0x100u : 0));
	snap_u32(b, t->cklen);
	snap_u32(b, 0);
	snap_i64(b, t->time);
	snap_u64(b, t->seq);
	snap_put(b, ck, t->cklen);
}

static void heap_save(struct keyed_heap *h, uint32_t c)
{
	struct heap_cow *w = h->cow;
	uint32_t end = (c + 1) * HEAP_CHUNK < w->n ? (c + 1) * HEAP_CHUNK : w->n;
	for (uint32_t i = c * HEAP_CHUNK; i < end; i++)
		put_timer(w->out, &h->v[i], w->d, &w->m);
	if (cow_marks_take(&w->marks, c)) {
		free(w);
		h->cow = NULL;
	}
}

/* Entry i is about to be written: save its chunk if a snapshot wants it. */
static inline void heap_touch(struct keyed_heap *h, uint32_t i)
{
	struct heap_cow *w = h->cow;
	if (__builtin_expect(w != NULL, 0) && i < w->n) {
		uint32_t c = i / HEAP_CHUNK;
		if (cow_marks_pending(&w->marks, c))
			heap_save(h, c);
	}
}

static void heap_cow_begin(struct keyed_heap *h, uint32_t d, struct snapbuf *out, const struct weir_kg_map *m)
{
	if (h->cow) { /* never: ckrun finishes one snapshot before the next */
		out->oom = true;
		return;
	}
	if (!h->n)
		return;
	uint32_t n = (h->n + HEAP_CHUNK - 1) / HEAP_CHUNK;
	struct heap_cow *w = malloc(sizeof(*w) + sizeof(uint64_t) * cow_marks_words(n));
	if (!w) { /* no room to defer: serialize now */
		for (uint32_t i = 0; i < h->n; i++)
			put_timer(out, &h->v[i], d, m);
		return;
	}
	*w = (struct heap_cow){ .out = out, .m = *m, .d = d, .n = h->n };
	cow_marks_init(&w->marks, (uint64_t *)(w + 1), n);
	h->cow = w;
}

static bool heap_cow_step(struct keyed_heap *h, uint32_t chunks)
{
	for (; h->cow && chunks; chunks--)
		heap_save(h, cow_marks_next(&h->cow->marks));
	return h->cow == NULL;
}

static bool timer_before(const struct keyed_timer *a, const struct keyed_timer *b)
{
	return a->time < b->time || (a->time == b->time && a->seq < b->seq);
}

static int heap_push(struct keyed_heap *h, struct keyed_timer t)
{
	if (h->n == h->cap) {
		uint32_t cap = h->cap ? h->cap * 2 : 64;
		struct keyed_timer *v = realloc(h->v, sizeof(*v) * cap);
		if (!v)
			return -1;
		h->v = v;
		h->cap = cap;
	}
	uint32_t i = h->n++;
	while (i > 0) {
		uint32_t parent = (i - 1) / 2;
		if (!timer_before(&t, &h->v[parent]))
			break;
		heap_touch(h, i);
		h->v[i] = h->v[parent];
		i = parent;
	}
	heap_touch(h, i);
	h->v[i] = t;
	return 0;
}

static struct keyed_timer heap_pop(struct keyed_heap *h)
{
	heap_touch(h, 0);	/* the top's key is freed once it fired */
	heap_touch(h, h->n - 1);
	struct keyed_timer top = h->v[0], last = h->v[--h->n];
	uint32_t i = 0;
	for (;;) {
		uint32_t c = 2 * i + 1;
		if (c >= h->n)
			break;
		if (c + 1 < h->n && timer_before(&h->v[c + 1], &h->v[c]))
			c++;
		if (!timer_before(&h->v[c], &last))
			break;
		heap_touch(h, i);
		h->v[i] = h->v[c];
		i = c;
	}
	if (h->n) {
		heap_touch(h, i);
		h->v[i] = last;
	}
	return top;
}

/* A timer's table entry: state KEYED_TIMER_STATE, namespace
 * [u8 domain][i64 time][the caller's namespace]. */
static int push(struct keyed *k, enum weir_time_domain d, int64_t time, const uint8_t *ck, uint32_t n, bool dedup)
{
	struct keyed_timer t = { .time = time, .seq = k->seq++, .cklen = n, .dedup = dedup };
	if (n <= KEYED_TIMER_INLINE) {
		memcpy(t.ck.inl, ck, n);
	} else {
		if (!(t.ck.ptr = malloc(n)))
			return -1;
		memcpy(t.ck.ptr, ck, n);
	}
	if (heap_push(&k->heap[d], t) < 0) {
		if (n > KEYED_TIMER_INLINE)
			free(t.ck.ptr);
		return -1;
	}
	return 0;
}

static const uint8_t *timer_ck(const struct keyed_timer *t)
{
	return t->cklen <= KEYED_TIMER_INLINE ? t->ck.inl : t->ck.ptr;
}

int keyed_timer_once(struct opinst *op, enum weir_time_domain d, int64_t time, const void *ns, uint32_t nslen)
{
	uint8_t tns[9 + 64];
	if (nslen > 64)
		return -1;
	tns[0] = (uint8_t)d;
	memcpy(tns + 1, &time, 8);
	if (nslen)
		memcpy(tns + 9, ns, nslen);
	uint32_t n;
	const uint8_t *ck = composite(&op->keyed, KEYED_TIMER_STATE, tns, 9 + nslen, &n);
	return ck ? push(&op->keyed, d, time, ck, n, false) : -1;
}

int keyed_timer(struct opinst *op, enum weir_time_domain d, int64_t time, const void *ns, uint32_t nslen, bool add)
{
	uint8_t tns[9 + 64];
	if (nslen > 64)
		return -1;
	tns[0] = (uint8_t)d;
	memcpy(tns + 1, &time, 8);
	if (nslen)
		memcpy(tns + 9, ns, nslen);
	struct keyed *k = &op->keyed;
	uint32_t n;
	const uint8_t *ck = composite(k, KEYED_TIMER_STATE, tns, 9 + nslen, &n);
	if (!ck)
		return -1;
	uint64_t h = weir_key_hash(ck, n);
	struct kv_slot *s = weir_kv_get(&k->kv, h, ck, n);
	if (!add) {
		if (s)
			weir_kv_del(&k->kv, s);
		return 0;
	}
	if (s)
		return 0; /* registered already: fires once */
	if (!weir_kv_insert(&k->kv, h, ck, n, NULL, 0, 0))
		return -1;
	if (push(k, d, time, ck, n, true) < 0) {
		keyed_timer(op, d, time, ns, nslen, false);
		return -1;
	}
	return 0;
}

/* Fire the timers of domain d up to `upto`, in order. Each callback runs
 * with its timer's key current and its time as the timestamp. */
static int fire(struct opinst *op, enum weir_time_domain d, int64_t upto, bool final)
{
	struct keyed *k = &op->keyed;
	struct keyed_heap *h = &k->heap[d];
	/* final (end of input): timers registered while these fire fire too
	 * (a chain of follow-ups is legitimate), but a callback that always
	 * re-registers (a repeating timer) would never let the job end. So
	 * follow-ups get a budget: 16 per timer pending now, plus 100000. */
	uint64_t first_new = k->seq, budget = final ? 16 * (uint64_t)h->n + 100000 : UINT64_MAX;
	while (h->n && h->v[0].time <= upto) {
		if (h->v[0].seq >= first_new && budget-- == 0)
			return weir_op_fail(op->ctx.st, op,
					    "its timers keep registering timers at the end of input (a repeating "
					    "timer?): stop re-registering once weir_ctx_watermark() is "
					    "WEIR_WATERMARK_MAX");
		struct keyed_timer t = heap_pop(h);
		const uint8_t *ck = timer_ck(&t);
		if (t.dedup) {
			struct kv_slot *s = weir_kv_get(&k->kv, weir_key_hash(ck, t.cklen), ck, t.cklen);
			if (!s) { /* deleted since */
				if (t.cklen > KEYED_TIMER_INLINE)
					free(t.ck.ptr);
				continue;
			}
			weir_kv_del(&k->kv, s);
		}
		uint16_t klen;
		uint32_t nslen = ck[1];
		memcpy(&klen, ck + 2, 2);
		k->key = ck + 4;
		k->klen = klen;
		const uint8_t *tns = ck + 4 + klen;
		op->ctx.cur_ts = t.time;
		int rc = op->node->impl->timer(&op->ctx, t.time, d, tns + 9, nslen - 9);
		k->key = NULL;
		k->klen = 0;
		if (t.cklen > KEYED_TIMER_INLINE)
			free(t.ck.ptr);
		if (rc < 0 || op->ctx.st->failed) {
			if (!op->ctx.st->failed)
				weir_op_fail(op->ctx.st, op, "timer callback failed (returned %d without a message)", rc);
			return -1;
		}
	}
	return 0;
}

int keyed_advance(struct opinst *op, int64_t wm)
{
	bool final = wm == WEIR_WATERMARK_MAX;
	if (fire(op, WEIR_EVENT_TIME, wm, final) < 0)
		return -1;
	/* At the end of input nothing more will come: processing-time timers
	 * fire too, so that no window of a bounded job is lost. */
	return final ? fire(op, WEIR_PROCESSING_TIME, INT64_MAX, true) : 0;
}

int keyed_fire_processing(struct opinst *op, int64_t now_ms)
{
	return fire(op, WEIR_PROCESSING_TIME, now_ms, false);
}

int64_t keyed_next_processing(const struct opinst *op)
{
	const struct keyed_heap *h = &op->keyed.heap[WEIR_PROCESSING_TIME];
	return h->n ? h->v[0].time : INT64_MAX;
}

int keyed_deliver(struct opinst *op, const weir_rec *rec, const struct input *in)
{
	struct subtask *st = op->ctx.st;
	weir_key key = { 0 };
	if (!in || !in->key_fn)
		return weir_op_fail(st, op, "a keyed operator needs keyed inputs");
	int rc = in->key_fn((weir_ctx *)&in->keyctx, rec, &key);
	if (rc < 0 || st->failed)
		return st->failed ? -1 : weir_op_fail(st, op, "key function failed (returned %d)", rc);
	if (key.len > KEYED_MAX_KEY || (key.len && !key.data))
		return weir_op_fail(st, op, "the key function returned a key of %u bytes at %p (keyed operators "
				    "take keys of at most %u bytes)", key.len, key.data, KEYED_MAX_KEY);
	op->keyed.key = key.data;
	op->keyed.klen = key.len;
	op->ctx.cur_ts = rec->ts;
	rc = op->node->impl->element(&op->ctx, rec, in->side);
	op->keyed.key = NULL;
	op->keyed.klen = 0;
	if (rc < 0 || st->failed)
		return st->failed ? -1 : weir_op_fail(st, op, "failed (returned %d without a message)", rc);
	return 0;
}

/* ---- the public state API -------------------------------------------------- */

/* The operator of ctx if it may use state `state` of `kind` now. */
static struct opinst *state_op(weir_ctx *ctx, int state, int kind, const char *what)
{
	struct opinst *op = ctx->op;
	struct node *n = op->node;
	if (n->kind != OP_KEYED || state < 0 || state >= n->nuser_states) {
		weir_fail(ctx, "%s: no state %d on this operator", what, state);
		return NULL;
	}
	if (kind >= 0 && (int)n->states[state].kind != kind &&
	    !(kind == WEIR_VALUE_STATE && n->states[state].kind == WEIR_REDUCING_STATE)) {
		weir_fail(ctx, "%s: state '%s' is of another kind", what, n->states[state].name);
		return NULL;
	}
	return op;
}

/* The entry of state for the current key, honouring its TTL. */
static struct kv_slot *live(struct opinst *op, int state)
{
	struct kv_slot *s = keyed_get(op, state, NULL, 0);
	int64_t ttl = op->node->states[state].ttl_ms;
	if (s && ttl > 0 && s->aux <= weir_wall_ms()) {
		weir_kv_del(&op->keyed.kv, s);
		return NULL;
	}
	return s;
}

static void touch(struct opinst *op, int state, struct kv_slot *s)
{
	int64_t ttl = op->node->states[state].ttl_ms;
	if (ttl > 0)
		s->aux = weir_wall_ms() + ttl;
}

static int oom(weir_ctx *ctx)
{
	return weir_fail(ctx, "out of memory for keyed state");
}

int weir_value_get(weir_ctx *ctx, int state, weir_rec *out)
{
	struct opinst *op = state_op(ctx, state, WEIR_VALUE_STATE, "value_get");
	if (!op)
		return -1;
	struct kv_slot *s = live(op, state);
	if (!s)
		return 0;
	out->data = weir_kv_val(s);
	out->len = s->vlen;
	out->ts = WEIR_TS_NONE;
	return 1;
}

int weir_value_set(weir_ctx *ctx, int state, const void *data, uint32_t len)
{
	struct opinst *op = state_op(ctx, state, WEIR_VALUE_STATE, "value_set");
	if (!op)
		return -1;
	struct kv_slot *s = keyed_put(op, state, NULL, 0, data, len);
	if (!s)
		return oom(ctx);
	touch(op, state, s);
	return 0;
}

int weir_reducing_add(weir_ctx *ctx, int state, const void *data, uint32_t len)
{
	struct opinst *op = state_op(ctx, state, WEIR_REDUCING_STATE, "reducing_add");
	if (!op)
		return -1;
	struct kv_slot *s = live(op, state);
	if (!s) {
		if (!(s = keyed_put(op, state, NULL, 0, data, len)))
			return oom(ctx);
		touch(op, state, s);
		return 0;
	}
	/* reduce emits the new value: capture it into the slot instead of
	 * sending it downstream */
	weir_rec acc = { .data = weir_kv_val(s), .len = s->vlen, .ts = WEIR_TS_NONE };
	weir_rec in = { .data = data, .len = len, .ts = ctx->cur_ts };
	ctx->capturing = true;
	ctx->rslot = s;
	ctx->emitted = 0;
	ctx->capture_kv = &op->keyed.kv;
	int rc = op->node->states[state].reduce(ctx, &acc, &in);
	ctx->capturing = false;
	ctx->capture_kv = NULL;
	if (rc < 0 || ctx->st->failed)
		return -1;
	if (ctx->emitted != 1)
		return weir_fail(ctx, "reducing state '%s': reduce must emit exactly one record, emitted %u",
				 op->node->states[state].name, ctx->emitted);
	touch(op, state, s);
	return 0;
}

int weir_list_add(weir_ctx *ctx, int state, const void *data, uint32_t len)
{
	struct opinst *op = state_op(ctx, state, WEIR_LIST_STATE, "list_add");
	if (!op)
		return -1;
	struct kv_slot *s = live(op, state);
	if (!s && !(s = keyed_put(op, state, NULL, 0, NULL, 0)))
		return oom(ctx);
	if (keyed_list_append(s, data, len, ctx->cur_ts) < 0)
		return oom(ctx);
	touch(op, state, s);
	return 0;
}

/* An iterator over the items of list or map state (empty when unset). */
static int state_iter(weir_ctx *ctx, int state, enum weir_state_kind kind, const char *what, weir_iter *it)
{
	memset(it, 0, sizeof(*it));
	struct opinst *op = state_op(ctx, state, kind, what);
	if (!op)
		return -1;
	struct kv_slot *s = live(op, state);
	if (s) {
		it->p = weir_kv_val(s);
		it->end = it->p + s->vlen;
	}
	return 0;
}

int weir_list_iter(weir_ctx *ctx, int state, weir_iter *it)
{
	return state_iter(ctx, state, WEIR_LIST_STATE, "list_iter", it);
}

int weir_iter_next(weir_iter *it, weir_rec *out)
{
	if (!it->p || it->p + 16 > it->end)
		return 0;
	uint32_t len;
	memcpy(&len, it->p, 4);
	memcpy(&out->ts, it->p + 8, 8);
	out->data = it->p + 16;
	out->len = len;
	it->p += 16 + weir_kv_pad8(len);
	return 1;
}

/* Map entries: [u32 klen][u32 vlen][key, pad 8][value, pad 8]. */
static uint32_t map_entry_size(const uint8_t *p)
{
	uint32_t kl, vl;
	memcpy(&kl, p, 4);
	memcpy(&vl, p + 4, 4);
	return 8 + weir_kv_pad8(kl) + weir_kv_pad8(vl);
}

static uint8_t *map_find(struct kv_slot *s, const void *key, uint32_t klen)
{
	uint8_t *p = weir_kv_val(s), *end = p + s->vlen;
	while (p + 8 <= end) {
		uint32_t kl;
		memcpy(&kl, p, 4);
		if (kl == klen && !memcmp(p + 8, key, klen))
			return p;
		p += map_entry_size(p);
	}
	return NULL;
}

static void map_cut(struct kv_slot *s, uint8_t *e)
{
	uint32_t sz = map_entry_size(e);
	uint8_t *end = weir_kv_val(s) + s->vlen;
	memmove(e, e + sz, (size_t)(end - (e + sz)));
	s->vlen -= sz;
}

int weir_map_get(weir_ctx *ctx, int state, const void *key, uint32_t klen, weir_rec *out)
{
	struct opinst *op = state_op(ctx, state, WEIR_MAP_STATE, "map_get");
	if (!op)
		return -1;
	struct kv_slot *s = live(op, state);
	uint8_t *e = s ? map_find(s, key, klen) : NULL;
	if (!e)
		return 0;
	uint32_t vl;
	memcpy(&vl, e + 4, 4);
	out->data = e + 8 + weir_kv_pad8(klen);
	out->len = vl;
	out->ts = WEIR_TS_NONE;
	return 1;
}

int weir_map_put(weir_ctx *ctx, int state, const void *key, uint32_t klen, const void *data, uint32_t len)
{
	struct opinst *op = state_op(ctx, state, WEIR_MAP_STATE, "map_put");
	if (!op)
		return -1;
	struct kv_slot *s = live(op, state);
	if (!s && !(s = keyed_put(op, state, NULL, 0, NULL, 0)))
		return oom(ctx);
	uint8_t *e = map_find(s, key, klen);
	if (e) {
		uint32_t vl;
		memcpy(&vl, e + 4, 4);
		if (weir_kv_pad8(vl) == weir_kv_pad8(len)) { /* same room: in place */
			memcpy(e + 4, &len, 4);
			memmove(e + 8 + weir_kv_pad8(klen), data, len);
			touch(op, state, s);
			return 0;
		}
		map_cut(s, e);
	}
	uint32_t sz = 8 + weir_kv_pad8(klen) + weir_kv_pad8(len);
	uint8_t *v = weir_kv_reserve(s, s->vlen + sz);
	if (!v)
		return oom(ctx);
	uint8_t *p = v + s->vlen;
	memcpy(p, &klen, 4);
	memcpy(p + 4, &len, 4);
	memcpy(p + 8, key, klen);
	memcpy(p + 8 + weir_kv_pad8(klen), data, len);
	s->vlen += sz;
	touch(op, state, s);
	return 0;
}

int weir_map_remove(weir_ctx *ctx, int state, const void *key, uint32_t klen)
{
	struct opinst *op = state_op(ctx, state, WEIR_MAP_STATE, "map_remove");
	if (!op)
		return -1;
	struct kv_slot *s = live(op, state);
	uint8_t *e = s ? map_find(s, key, klen) : NULL;
	if (e)
		map_cut(s, e);
	return 0;
}

int weir_map_iter(weir_ctx *ctx, int state, weir_iter *it)
{
	return state_iter(ctx, state, WEIR_MAP_STATE, "map_iter", it);
}

int weir_map_iter_next(weir_iter *it, weir_rec *key, weir_rec *value)
{
	if (!it->p || it->p + 8 > it->end)
		return 0;
	uint32_t kl, vl;
	memcpy(&kl, it->p, 4);
	memcpy(&vl, it->p + 4, 4);
	key->data = it->p + 8;
	key->len = kl;
	key->ts = WEIR_TS_NONE;
	value->data = it->p + 8 + weir_kv_pad8(kl);
	value->len = vl;
	value->ts = WEIR_TS_NONE;
	it->p += map_entry_size(it->p);
	return 1;
}

int weir_state_clear(weir_ctx *ctx, int state)
{
	struct opinst *op = state_op(ctx, state, -1, "state_clear");
	if (!op)
		return -1;
	keyed_del(op, state, NULL, 0);
	return 0;
}

int weir_ctx_key(const weir_ctx *ctx, weir_key *key)
{
	const struct keyed *k = &ctx->op->keyed;
	if (ctx->op->node->kind != OP_KEYED)
		return -1;
	key->data = k->key;
	key->len = k->klen;
	return 0;
}

int weir_timer_register(weir_ctx *ctx, enum weir_time_domain domain, int64_t time)
{
	if (ctx->op->node->kind != OP_KEYED || (domain != WEIR_EVENT_TIME && domain != WEIR_PROCESSING_TIME))
		return weir_fail(ctx, "timer_register: timers need a keyed operator and a time domain");
	if (keyed_timer(ctx->op, domain, time, NULL, 0, true) < 0)
		return oom(ctx);
	return 0;
}

int weir_timer_delete(weir_ctx *ctx, enum weir_time_domain domain, int64_t time)
{
	if (ctx->op->node->kind != OP_KEYED || (domain != WEIR_EVENT_TIME && domain != WEIR_PROCESSING_TIME))
		return weir_fail(ctx, "timer_delete: timers need a keyed operator and a time domain");
	keyed_timer(ctx->op, domain, time, NULL, 0, false);
	return 0;
}

int weir_ctx_window(const weir_ctx *ctx, int64_t *start, int64_t *end)
{
	const struct keyed *k = &ctx->op->keyed;
	if (!k->in_window)
		return -1;
	*start = k->win_start;
	*end = k->win_end;
	return 0;
}

/* ---- process functions ----------------------------------------------------- */

static int process_element(weir_ctx *ctx, const weir_rec *in, int side)
{
	return ctx->op->node->process[side](ctx, in);
}

static int process_timer(weir_ctx *ctx, int64_t time, enum weir_time_domain d, const uint8_t *ns, uint32_t nslen)
{
	(void)ns;
	(void)nslen;
	weir_timer_fn fn = ctx->op->node->on_timer;
	return fn ? fn(ctx, time, d) : 0;
}

static const struct keyed_impl process_impl = { process_element, process_timer };

weir_stream *weir_process(weir_stream *keyed, const char *name, weir_process_fn fn, weir_timer_fn on_timer,
			  void *arg)
{
	if (!keyed)
		return NULL;
	if (!fn)
		return weir_env_error(keyed->env, "process '%s': function is NULL", name ? name : "?"), NULL;
	struct node *n = weir_keyed_node(keyed, NULL, name, &process_impl);
	if (!n)
		return NULL;
	n->process[0] = fn;
	n->on_timer = on_timer;
	n->arg = arg;
	return weir_env_stream(keyed->env, n);
}

weir_stream *weir_co_process(weir_stream *a, weir_stream *b, const char *name, weir_process_fn fn1,
			     weir_process_fn fn2, weir_timer_fn on_timer, void *arg)
{
	if (!a || !b)
		return NULL;
	if (!fn1 || !fn2)
		return weir_env_error(a->env, "co_process '%s': both functions are needed", name ? name : "?"), NULL;
	struct node *n = weir_keyed_node(a, b, name, &process_impl);
	if (!n)
		return NULL;
	n->process[0] = fn1;
	n->process[1] = fn2;
	n->on_timer = on_timer;
	n->arg = arg;
	return weir_env_stream(a->env, n);
}

/* ---- snapshots (engine/runtime.c's subtask format) ------------------------ */

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
	if (weir_kv_cow_begin(&k->kv, kv, m, true) < 0) /* one in progress: never, ckrun finishes it first */
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
		free(k->heap[d].cow);
		k->heap[d].cow = NULL;
	}
}

int keyed_restore(struct keyed *k, struct snapreader *r, const struct weir_kg_map *m, uint32_t kg_lo, uint32_t kg_hi)
{
	if (weir_kv_restore(&k->kv, r, kg_lo, kg_hi) < 0)
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
		int rc = push(k, (enum weir_time_domain)(flags & 0xffu), time, ck, cklen, (flags & 0x100u) != 0);
		k->seq = seq + 1 > saved ? seq + 1 : saved;
		if (rc < 0)
			return -1;
	}
	return r->bad ? -1 : 0;
}
