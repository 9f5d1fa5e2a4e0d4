/*
 * engine/operators/chain.c - what a subtask does with a record: the run-time side
 * of the public API (weir_emit, weir_fail, the ctx accessors) and the
 * per-kind behaviour of operators.
 *
 * The record path is plain calls: a chained operator's emit is the next
 * operator's deliver; the tail's emit partitions into writers, which copy
 * the bytes into segments. Nothing here allocates or locks per record.
 */
#include "operators/chain.h"
#include "operators/keyed.h"
#include "graph/keygroup.h"
#include "base/clock.h"
#include "base/err.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A user function's return value: negative fails the operator. */
static inline int check(struct subtask *st, struct opinst *op, int rc)
{
	if (__builtin_expect(rc < 0, 0)) {
		if (!st->failed)
			weir_op_fail(st, op, "failed (returned %d without a message)", rc);
		return -1;
	}
	return st->failed ? -1 : 0;
}

int weir_op_key(struct subtask *st, struct opinst *op, weir_key_fn fn, const weir_ctx *kctx, const weir_rec *rec,
		weir_key *key, uint32_t limit)
{
	*key = (weir_key){ 0 };
	if (check(st, op, fn((weir_ctx *)kctx, rec, key)) < 0)
		return -1;
	if (__builtin_expect(key->len > limit || (key->len && !key->data), 0))
		return weir_op_fail(st, op, "the key function returned a key of %u bytes at %p (at most %u here)",
				    key->len, key->data, limit);
	return 0;
}

static int emit_one(struct opinst *op, const weir_rec *rec, uint32_t got)
{
	if (op->ctx.emitted != 1)
		return weir_op_fail(op->ctx.st, op, "must emit exactly one record per input, emitted %u", got);
	return 0;
}

static inline int deliver(struct opinst *op, const weir_rec *rec, struct input *in)
{
	struct subtask *st = op->ctx.st;
	weir_ctx *ctx = &op->ctx;
	struct node *n = op->node;
	stat_add(&op->records_in, 1);
	ctx->cur_ts = rec->ts;
	switch (n->kind) {
	case OP_MAP:
		ctx->emitted = 0;
		if (check(st, op, n->fn.map(ctx, rec)) < 0)
			return -1;
		return emit_one(op, rec, ctx->emitted);
	case OP_FILTER: {
		int keep = n->fn.filter(ctx, rec);
		if (check(st, op, keep) < 0)
			return -1;
		return keep ? weir_emit_ts(ctx, rec->data, rec->len, rec->ts) : 0;
	}
	case OP_FLAT_MAP:
		return check(st, op, n->fn.flat_map(ctx, rec));
	case OP_SINK:
		return check(st, op, n->fn.sink(ctx, rec));
	case OP_REDUCE: {
		weir_key key;
		if (!in || !in->key_fn)
			return weir_op_fail(st, op, "reduce needs a keyed input");
		if (weir_op_key(st, op, in->key_fn, &in->keyctx, rec, &key, st->max_record) < 0)
			return -1;
		/* the producer's hash of the same key, when it came along */
		uint64_t h = in->khash ? (uint64_t)in->khash << 32 : weir_kv_key_hash(key.data, key.len);
		struct kv_slot *acc = weir_kv_get(&op->kv, h, key.data, key.len);
		if (!acc) {
			if (weir_kv_put(&op->kv, h, key.data, key.len, rec->data, rec->len, rec->ts) < 0)
				return weir_op_fail(st, op, "out of memory for keyed state");
			return weir_emit_ts(ctx, rec->data, rec->len, rec->ts);
		}
		weir_rec a = { .data = weir_kv_val(acc), .len = acc->vlen, .ts = acc->aux };
		ctx->capturing = true;
		ctx->rslot = acc;
		ctx->emitted = 0;
		int rc = n->fn.reduce(ctx, &a, rec);
		ctx->capturing = false;
		if (check(st, op, rc) < 0)
			return -1;
		return emit_one(op, rec, ctx->emitted);
	}
	case OP_ASSIGN: {
		int64_t ts = n->ts_fn ? n->ts_fn(ctx, rec) : rec->ts;
		if (st->failed)
			return -1;
		if (ts == WEIR_TS_NONE)
			return weir_op_fail(st, op, "a record has no timestamp (give weir_assign_timestamps a "
					    "timestamp function)");
		if (ts > op->max_ts)
			op->max_ts = ts;
		op->saw_records = true;
		op->idle = false;
		return weir_emit_ts(ctx, rec->data, rec->len, ts);
	}
	case OP_KEYED:
		return keyed_deliver(op, rec, in);
	case OP_SOURCE:
		break;
	}
	return weir_op_fail(st, op, "internal error: a source cannot receive records");
}

/* The operator is marked as running (st->cur_op: one store, no load), and
 * an emit that went down the chain marks its operator again when it
 * returns (weir_emit_ts): a crash or a stuck cancel names the operator
 * whose code was running. */
int weir_op_deliver(struct opinst *op, const weir_rec *rec, struct input *in)
{
	__atomic_store_n(&op->ctx.st->cur_op, op, __ATOMIC_RELAXED);
	return deliver(op, rec, in);
}

/* The API promises 8-byte aligned records to user functions; bytes
 * emitted from an unaligned address (a line of a file) are copied into
 * op's scratch buffer before the next user function sees them. NULL (the
 * subtask failed) when out of memory. */
static const void *aligned_copy(struct subtask *st, struct opinst *op, const void *data, uint32_t len)
{
	if (len > op->scratch_cap || !op->scratch) {
		uint32_t cap = len < 256 ? 256 : len;
		void *p = NULL;
		if (posix_memalign(&p, 8, cap)) {
			weir_op_fail(st, op, "out of memory for a %u-byte record", len);
			return NULL;
		}
		free(op->scratch);
		op->scratch = p;
		op->scratch_cap = cap;
	}
	memcpy(op->scratch, data, len);
	return op->scratch;
}

int weir_emit(weir_ctx *ctx, const void *data, uint32_t len)
{
	return weir_emit_ts(ctx, data, len, ctx->cur_ts);
}

int weir_emit_ts(weir_ctx *ctx, const void *data, uint32_t len, int64_t ts)
{
	struct subtask *st = ctx->st;
	struct opinst *op = ctx->op;
	if (__builtin_expect(st->failed, 0))
		return -1;
	if (__builtin_expect(len > st->max_record, 0))
		return weir_op_fail(st, op, "emitted a record of %u bytes, more than the maximum of %u", len,
				    st->max_record);
	ctx->emitted++;
	stat_add(&op->records_out, 1);
	if (ctx->capturing) {
		/* reduce: the emitted record is the key's new accumulator. */
		if (ctx->emitted > 1)
			return weir_op_fail(st, op, "must emit exactly one record per input, emitted %u",
					    ctx->emitted);
		struct weir_kv *kv = ctx->capture_kv ? ctx->capture_kv : &op->kv;
		if (weir_kv_set(kv, ctx->rslot, data, len, ctx->capture_kv ? ctx->rslot->aux : ts) < 0)
			return weir_op_fail(st, op, "out of memory for keyed state");
		if (ctx->capture_kv) { /* reducing state: stored, not sent */
			ctx->emitted = 1;
			stat_add(&op->records_out, (uint64_t)-1);
			return 0;
		}
	}
	if (__builtin_expect(st->discarding, 0))
		return 0;
	weir_rec r = { .data = data, .len = len, .ts = ts };
	if (!op->next)
		return weir_op_output(st, 0, &r);
	if (__builtin_expect(((uintptr_t)data & 7) != 0, 0) && !(r.data = aligned_copy(st, op, data, len)))
		return -1;
	int rc = weir_op_deliver(op->next, &r, NULL);
	__atomic_store_n(&st->cur_op, op, __ATOMIC_RELAXED); /* back in op's code */
	return rc;
}

int weir_op_output(struct subtask *st, int tag, const weir_rec *rec)
{
	struct opinst *tail = st->ops + st->nops - 1;
	for (int i = 0; i < st->nout; i++) {
		struct output *o = &st->out[i];
		struct weir_writer *w;
		uint32_t khash = 0; /* the key hash's high half a keyed edge carries */
		if (o->tag != tag)
			continue;
		switch (o->part) {
		case PART_HASH: {
			weir_key key;
			/* the key function is user code: aligned too. rec is passed
			 * as it is when aligned (a copy of it would be a 16-byte load
			 * of two fresh narrower stores: no store forwarding) */
			const weir_rec *kp = rec;
			weir_rec kr;
			if (__builtin_expect(((uintptr_t)rec->data & 7) != 0, 0)) {
				kr.data = aligned_copy(st, tail, rec->data, rec->len);
				if (!kr.data)
					return -1;
				kr.len = rec->len;
				kr.ts = rec->ts;
				kp = &kr;
			}
			if (weir_op_key(st, tail, o->key_fn, &o->keyctx, kp, &key, st->max_record) < 0)
				return -1;
			/* key group, then the subtask that owns the group; the
			 * hash's high half goes along for the consumer's state */
			uint64_t h = weir_key_hash(key.data, key.len);
			uint32_t kg = weir_key_group(&o->kgmap, h);
			w = &o->w[weir_kg_subtask(&o->kgmap, kg, (uint32_t)o->nw)];
			khash = (uint32_t)(h >> 32);
			break;
		}
		case PART_REBALANCE:
			w = &o->w[o->rr];
			if (++o->rr == (uint32_t)o->nw)
				o->rr = 0;
			break;
		case PART_BROADCAST:
			for (int k = 0; k < o->nw; k++)
				if (weir_writer_put(&o->w[k], rec->data, rec->len, rec->ts) < 0)
					return weir_op_fail(st, tail, "%s", weir_err_msg());
			continue;
		default:
			w = &o->w[0];
			break;
		}
		if (weir_writer_put_hash(w, rec->data, rec->len, rec->ts, khash) < 0)
			return weir_op_fail(st, tail, "%s", weir_err_msg());
	}
	return 0;
}

int weir_emit_side(weir_ctx *ctx, int tag, const void *data, uint32_t len)
{
	return weir_emit_side_ts(ctx, tag, data, len, ctx->cur_ts);
}

int weir_emit_side_ts(weir_ctx *ctx, int tag, const void *data, uint32_t len, int64_t ts)
{
	struct subtask *st = ctx->st;
	struct opinst *op = ctx->op;
	if (__builtin_expect(st->failed, 0))
		return -1;
	if (tag < 1 || tag > op->node->ntags)
		return weir_op_fail(st, op, "emit_side: no side output %d", tag);
	if (len > st->job->cfg.max_record)
		return weir_op_fail(st, op, "emitted a record of %u bytes, more than the maximum of %u", len,
				    st->job->cfg.max_record);
	/* An operator chained to a successor has no other consumer, so no
	 * one reads its side outputs. */
	if (op->next || st->discarding)
		return 0;
	weir_rec r = { .data = data, .len = len, .ts = ts };
	return weir_op_output(st, tag, &r);
}

int64_t weir_ctx_watermark(const weir_ctx *ctx) { return ctx->op->wm; }
int64_t weir_ctx_processing_time(const weir_ctx *ctx) { (void)ctx; return weir_wall_ms(); }
int64_t weir_ctx_timestamp(const weir_ctx *ctx) { return ctx->cur_ts; }

/* Markers go to every output, main and side, on every channel. */
static int all_outputs_marker(struct subtask *st, enum weir_rec_kind kind, int64_t ts)
{
	for (int i = 0; i < st->nout; i++)
		for (int k = 0; k < st->out[i].nw; k++)
			if (weir_writer_marker(&st->out[i].w[k], kind, ts) < 0)
				return weir_op_fail(st, NULL, "%s", weir_err_msg());
	return 0;
}

int weir_op_watermark(struct subtask *st, int k, int64_t wm)
{
	for (int i = k; i < st->nops; i++) {
		struct opinst *op = &st->ops[i];
		/* A timestamp assigner makes its own watermarks: upstream ones
		 * stop at it, except the final one. */
		if (op->node->kind == OP_ASSIGN && wm != WEIR_WATERMARK_MAX)
			return 0;
		if (wm <= op->wm)
			return 0;
		op->wm = wm;
		/* Timers fire before the watermark moves on, so what they emit
		 * reaches the operators after this one ahead of it. */
		if (op->node->kind == OP_KEYED) {
			struct opinst *was = weir_mark_op(st, op);
			int rc = keyed_advance(op, wm);
			weir_mark_op(st, was);
			if (rc < 0)
				return -1;
		}
	}
	return all_outputs_marker(st, WEIR_KIND_WATERMARK, wm);
}

int weir_op_idle(struct subtask *st)
{
	return all_outputs_marker(st, WEIR_KIND_IDLE, 0);
}

/* A user's open or close function, marked as running on this thread (a
 * close may run on the job's thread, after the workers). */
static int call_marked(struct subtask *st, struct opinst *op, int (*fn)(weir_ctx *))
{
	struct subtask *was_st = weir_cur_st;
	weir_cur_st = st;
	struct opinst *was = weir_mark_op(st, op);
	int rc = fn(&op->ctx);
	weir_mark_op(st, was);
	weir_cur_st = was_st;
	return check(st, op, rc);
}

static void kv_prefetch(void *kv, uint32_t khash)
{
	weir_kv_prefetch(kv, khash);
}

void weir_op_input_prefetch(struct opinst *head, struct weir_reader *rd)
{
	struct weir_kv *kv = head->node->kind == OP_REDUCE ? &head->kv
			     : head->node->kind == OP_KEYED ? &head->keyed.kv /* where the key's entries start */
							    : NULL;
	/* a table that fits in the caches gains nothing from the look-ahead
	 * but its cost (YSB's 100 campaigns) */
	rd->prefetch = kv && kv->count >= WEIR_PREFETCH_MIN ? kv_prefetch : NULL;
	rd->prefetch_arg = kv;
}

int weir_op_open(struct subtask *st, struct opinst *op)
{
	op->opened = true;
	if (op->node->open)
		return call_marked(st, op, op->node->open);
	return 0;
}

int weir_op_close(struct subtask *st, struct opinst *op)
{
	if (!op->opened || op->closed)
		return 0;
	op->closed = true;
	if (op->node->close)
		return call_marked(st, op, op->node->close);
	return 0;
}

