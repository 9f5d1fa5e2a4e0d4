/*
 * engine/operators/keyed.c - keyed state, timers and process functions; see keyed.h
 * for the layout of composite keys and the timer heaps.
 *
 * List state is one value holding items [u32 len][u32 0][i64 ts][bytes,
 * pad 8], appended in place (the value's room doubles). Map state is one
 * value holding entries [u32 klen][u32 vlen][key, pad 8][value, pad 8],
 * searched linearly: right for the small maps process functions keep per
 * key, wrong for big ones (documented in the API).
 */
#include "operators/keyed.h"
#include "graph/keygroup.h"
#include "operators/chain.h"
#include "base/clock.h"

#include <stdlib.h>
#include <string.h>

struct kv_slot *keyed_get(struct opinst *op, int state, const void *ns, uint32_t nslen)
{
	uint32_t n;
	const uint8_t *ck = keyed_composite(&op->keyed, (unsigned)state, ns, nslen, &n);
	return ck ? weir_kv_get(&op->keyed.kv, keyed_ck_hash_with(op->keyed.key_hi, ck, n), ck, n) : NULL;
}

struct kv_slot *keyed_put(struct opinst *op, int state, const void *ns, uint32_t nslen, const void *data,
			  uint32_t len)
{
	uint32_t n;
	const uint8_t *ck = keyed_composite(&op->keyed, (unsigned)state, ns, nslen, &n);
	if (!ck)
		return NULL;
	uint64_t h = keyed_ck_hash_with(op->keyed.key_hi, ck, n);
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

/* A timer's composite key: state KEYED_TIMER_STATE, namespace
 * [u8 domain][i64 time][the caller's namespace, at most 64 bytes]. NULL
 * when the namespace is too long or memory ran out. */
static const uint8_t *timer_key(struct keyed *k, enum weir_time_domain d, int64_t time, const void *ns,
				uint32_t nslen, uint32_t *n)
{
	uint8_t tns[9 + 64];
	if (nslen > 64)
		return NULL;
	tns[0] = (uint8_t)d;
	memcpy(tns + 1, &time, 8);
	if (nslen)
		memcpy(tns + 9, ns, nslen);
	return keyed_composite(k, KEYED_TIMER_STATE, tns, 9 + nslen, n);
}

int keyed_timer_once(struct opinst *op, enum weir_time_domain d, int64_t time, const void *ns, uint32_t nslen)
{
	uint32_t n;
	const uint8_t *ck = timer_key(&op->keyed, d, time, ns, nslen, &n);
	return ck ? keyed_push_timer(&op->keyed, d, time, ck, n, false) : -1;
}

int keyed_timer(struct opinst *op, enum weir_time_domain d, int64_t time, const void *ns, uint32_t nslen, bool add)
{
	struct keyed *k = &op->keyed;
	uint32_t n;
	const uint8_t *ck = timer_key(k, d, time, ns, nslen, &n);
	if (!ck)
		return -1;
	uint64_t h = keyed_ck_hash_with(k->key_hi, ck, n);
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
	if (keyed_push_timer(k, d, time, ck, n, true) < 0) {
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
		uint32_t key_hi = h->v[0].key_hi;
		struct keyed_timer t = keyed_heap_pop(h);
		/* the next one fires in this loop or at a later watermark, a
		 * record or two from now: its lines are on their way by then */
		keyed_heap_prefetch(k, h);
		const uint8_t *ck = keyed_timer_key(&t);
		uint16_t klen;
		memcpy(&klen, ck + 2, 2); /* a timer's ck is well formed (keyed_restore checks) */
		if (t.dedup) {
			struct kv_slot *s = weir_kv_get(&k->kv, keyed_ck_hash_with(key_hi, ck, t.cklen), ck, t.cklen);
			if (!s) { /* deleted since */
				if (t.cklen > KEYED_TIMER_INLINE)
					free(t.ck.ptr);
				continue;
			}
			weir_kv_del(&k->kv, s);
		}
		uint32_t nslen = ck[1];
		k->key = ck + 4;
		k->klen = klen;
		k->key_hi = key_hi;
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
	weir_key key;
	if (!in || !in->key_fn)
		return weir_op_fail(st, op, "a keyed operator needs keyed inputs");
	/* keyed operators' composite keys hold a key's length in 16 bits */
	if (weir_op_key(st, op, in->key_fn, &in->keyctx, rec, &key, KEYED_MAX_KEY) < 0)
		return -1;
	op->keyed.key = key.data;
	op->keyed.klen = key.len;
	/* the producer's hash of the same key, when it came along */
	op->keyed.key_hi = in->khash ? in->khash : keyed_key_hi(key.data, key.len);
	op->ctx.cur_ts = rec->ts;
	int rc = op->node->impl->element(&op->ctx, rec, in->side);
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

