/*
 * engine/checkpoint/restore.c - a subtask starts from a checkpoint: its
 * chain's private state, keyed state and timers (only its key groups
 * after a rescale) and the in-flight data to replay (take.c has the
 * format).
 */
#include "checkpoint/take.h"
#include "checkpoint/format.h"
#include "operators/chain.h"
#include "state/keyed.h"
#include "base/err.h"
#include "base/failpoint.h"
#include "base/log.h"

#include <stdlib.h>
#include <string.h>

/* The operators' private state has its own hook; an operator without one
 * must have written nothing. With own false the bytes are skipped: after
 * a rescale, the private state of an old subtask goes to one new one, but
 * for an operator that takes every one (restore_all: split sources). */
static int restore_private(struct subtask *st, struct opinst *op, const void *priv, uint64_t plen, bool own)
{
	if (!own && !op->node->restore_all)
		return 0;
	if (!op->node->hooks.restore)
		return plen ? 1 : 0;
	if (op->node->hooks.restore(&op->ctx, priv, (size_t)plen, st->job->ck_restored) < 0)
		return st->failed ? -1 : weir_op_fail(st, op, "restore: %s", weir_err_msg());
	return 0;
}

/* In-flight data of an unaligned checkpoint: the records st replays
 * before reading its inputs (st->replay). At another parallelism a
 * record of a keyed edge is kept by the subtask owning its key group, one
 * of another edge by the subtask that takes the old one's private state.
 * 0, or -1 when malformed (or out of memory, or a key function failed). */
static int restore_inflight(struct subtask *st, const struct restore_piece *pc, uint32_t par, const uint8_t *p,
			    uint64_t n, const struct weir_kg_map *m, uint32_t lo, uint32_t hi)
{
	struct snapbuf *b = &st->replay;
	struct snaprec e; /* tag: the head input (edge) it came on */
	for (uint64_t off = 0; off < n; off += snaprec_size(e.len)) {
		if (n - off < 16)
			return -1;
		snaprec_get(p + off, &e); /* the header only, until its size is checked (in 64 bits) */
		if (e.len > st->job->cfg.max_record || snaprec_size(e.len) > n - off)
			return -1;
		uint32_t edge = e.tag;
		int input = -1;
		for (int i = 0; i < st->nin && input < 0; i++)
			if (st->in[i].edge == (int)edge)
				input = i;
		if (input < 0)
			return -1;
		struct input *in = &st->in[input];
		/* every old subtask had its own copies of a broadcast stream, at
		 * its own progress: none of them is the new subtasks' */
		if (in->broadcast && par != (uint32_t)st->v->parallelism)
			return weir_op_fail(st, NULL, "restore: the checkpoint holds in-flight data of a broadcast "
					    "stream, which cannot be restored at another parallelism (%u, now %d): "
					    "restore it at %u, or rescale from an aligned checkpoint or savepoint",
					    par, st->v->parallelism, par);
		if (!in->keyed && !pc->own)
			continue;
		/* a copy first: the buffer keeps records 8-byte aligned, as key
		 * functions and operators may expect */
		size_t at = b->len;
		if (snaprec_put(b, (uint32_t)input, e.ts, e.data, e.len) < 0)
			return -1;
		if (in->keyed) {
			weir_rec rec = { .data = b->p + at + 16, .len = e.len, .ts = e.ts };
			weir_key key = { 0 };
			if (in->key_fn((weir_ctx *)&in->keyctx, &rec, &key) < 0 || (key.len && !key.data))
				return weir_op_fail(st, NULL, "restore: the key function failed on an in-flight record");
			uint32_t kg = weir_key_group(m, weir_key_hash(key.data, key.len));
			if (kg < lo || kg >= hi)
				b->len = at; /* another subtask's */
		}
	}
	return 0;
}

/* One snapshot of the checkpoint into st: its header must be of st's
 * vertex and chain (another job's, or another graph's, is refused); keyed
 * state outside st's key groups [lo, hi) is left to the subtask owning it. */
static int restore_piece(struct subtask *st, const struct restore_piece *pc, uint32_t lo, uint32_t hi)
{
	struct job *job = st->job;
	const char *why = "malformed";
	long n = weir_snap_unseal(pc->p, pc->len, &why);
	struct snapreader r;
	snapreader_init(&r, pc->p, n < 0 ? 0 : (size_t)n);
	const void *magic = snap_take(&r, 8);
	uint32_t v = snap_get_u32(&r), idx = snap_get_u32(&r), par = snap_get_u32(&r), maxp = snap_get_u32(&r);
	uint32_t nops = snap_get_u32(&r);
	snap_get_u32(&r);
	uint64_t id = snap_get_u64(&r), print = snap_get_u64(&r);
	if (n < 0 || !magic || memcmp(magic, ck_sub_magic, 8) || v != (uint32_t)st->v->id || print != ck_chain_print(st) ||
	    idx != pc->index || idx >= par || maxp != job->cfg.max_parallelism || nops != (uint32_t)st->nops)
		return weir_op_fail(st, NULL, "restore: the snapshot is not this subtask's (the job's graph, operator "
				    "names, their state layouts or max parallelism differ from the checkpoint's)%s%s", n < 0 ? ": " : "",
				    n < 0 ? why : "");
	struct weir_kg_map m;
	weir_kg_map_init(&m, maxp);
	st->restore_index = idx;
	for (int k = 0; k < st->nops; k++) {
		struct opinst *op = &st->ops[k];
		uint32_t pos = snap_get_u32(&r);
		uint64_t plen = snap_get_u64(&r);
		const void *priv = plen <= r.len - r.off ? snap_take(&r, (size_t)plen) : NULL;
		if (r.bad || !priv || pos != (uint32_t)k)
			break;
		int rc = restore_private(st, op, priv, plen, pc->own);
		if (rc < 0)
			return -1;
		if (rc > 0 || weir_kv_restore(&op->kv, &r, lo, hi, weir_kv_key_hash) < 0 || keyed_restore(&op->keyed, &r, &m, lo, hi) < 0) {
			r.bad = true;
			break;
		}
	}
	st->restore_index = (uint32_t)st->index;
	uint64_t nfl = r.bad ? 0 : snap_get_u64(&r);
	const uint8_t *fl = !r.bad && nfl <= r.len - r.off ? snap_take(&r, (size_t)nfl) : NULL;
	if (r.bad || !fl || r.off != r.len || restore_inflight(st, pc, par, fl, nfl, &m, lo, hi) < 0)
		return st->failed ? -1
				  : weir_op_fail(st, NULL, "restore: the snapshot of checkpoint %llu is malformed (or "
						 "memory ran out)", (unsigned long long)id);
	return 0;
}

int ck_restore(struct subtask *st)
{
	struct job *job = st->job;
	st->restore_index = (uint32_t)st->index;
	bool own = false;
	for (int i = 0; i < st->nrestore; i++)
		own |= st->restore[i].own;
	/* No private state of ours: hooks get none, with the checkpoint's id.
	 * Fresh (id 0), sinks remove what an earlier attempt left; restored
	 * (a new subtask of a rescale), only what came after the checkpoint. */
	for (int k = 0; !own && k < st->nops; k++) {
		struct opinst *op = &st->ops[k];
		if (op->node->hooks.restore && op->node->hooks.restore(&op->ctx, NULL, 0, job->ck_restored) < 0)
			return st->failed ? -1 : weir_op_fail(st, op, "restore: %s", weir_err_msg());
	}
	if (!st->nrestore)
		return 0;
	if (weir_failpoint("recovery.restore") < 0)
		return weir_op_fail(st, NULL, "restore: %s", weir_err_msg());
	/* our key groups: those kg with kg * parallelism / max == index */
	uint64_t maxp = job->cfg.max_parallelism, p = (uint64_t)st->v->parallelism, i = (uint64_t)st->index;
	uint32_t lo = (uint32_t)((i * maxp + p - 1) / p), hi = (uint32_t)(((i + 1) * maxp + p - 1) / p);
	for (int k = 0; k < st->nrestore; k++)
		if (restore_piece(st, &st->restore[k], lo, hi) < 0)
			return -1;
	if (st->replay.len)
		weir_log(WEIR_LOG_INFO, "%s %d/%d: %zu bytes of in-flight data to replay", st->ops[0].node->name,
			 st->index, st->v->parallelism, st->replay.len);
	/* the checkpoint restored, not the snapshot's own id: a finished
	 * subtask's snapshot (id 0) stands in for every later checkpoint */
	st->ck_last = job->ck_restored;
	st->ck_committed = job->ck_restored;
	return 0;
}

