/*
 * engine/checkpoint/take.c - what a subtask does at a barrier: its
 * snapshot (copy-on-write), in-flight data, and the commit notification.
 *
 * The protocol (asynchronous barrier snapshotting, Carbone et al. 2015):
 * the coordinator picks checkpoint n and raises job->ck_trigger; every
 * source subtask, at its next step, snapshots its chain and emits barrier
 * n (a marker, engine/io/record.h) on every output. A subtask with inputs
 * stops reading each input that delivered barrier n (aligned mode) until
 * every input has delivered it or ended, then snapshots, forwards the
 * barrier and reads on; in at-least-once mode it never stops reading, so
 * records after the barrier may be in its snapshot (and replayed after a
 * restore). A finished subtask's last snapshot stands in for it in every
 * later checkpoint: a barrier that can never come does not hold one up.
 *
 * The snapshot's synchronous part is a copy-on-write point: operators'
 * private state (small: positions, pending files) is serialized at once,
 * keyed state and timers only marked (engine/state/kv.h); the worker goes on
 * with records and serializes the marked chunks between them (ck_cow_step,
 * a bounded slice per step) or just before it would change one. Complete,
 * the pieces go to the coordinator thread, which
 * writes, fsyncs and records them (engine/checkpoint/store.h), and once every
 * subtask's file is durable writes the metadata, which makes the
 * checkpoint complete, and raises job->ck_complete: sinks then publish
 * what the checkpoint covers (two-phase commit).
 *
 * A subtask's snapshot, sealed (engine/state/snapshot.h):
 *   ["WEIRSUB2"][u32 vertex][u32 index][u32 parallelism][u32 max parallelism]
 *   [u32 operators][u32 final][u64 checkpoint id][u64 XXH3 of the chain's
 *   operator names: a restore into another job of the same shape is refused]
 *   per operator of the chain: [u32 position][u64 n][n bytes of its own
 *   (op_hooks.snapshot)][reduce state (weir_kv_snapshot)][keyed state and
 *   timers (keyed_cow_begin)]
 *   then the in-flight data (unaligned; else none): [u64 n] and n bytes of
 *   records [u32 len][u32 head input (edge)][i64 ts][bytes, pad 8]
 *
 * Unaligned checkpoints (--unaligned): a producer announces barrier n on
 * its channels ahead of the data (weir_chan_announce), so a consumer
 * takes its snapshot as soon as any input announces n, however many
 * segments are queued before the barrier, and forwards n at once. The
 * records it then reads on each input until that input's barrier n were
 * sent before n and are not in its snapshot's state: they are the
 * channel's state, recorded into the snapshot (ck_record_inflight) and
 * processed as usual. The snapshot is handed over once every input's
 * barrier came (or the input ended). A restore delivers those records to
 * the chain before reading any input (runtime.c, replay_step); after a
 * rescale, records of a keyed edge go to the subtask owning their key
 * group, the others with the old subtask's private state.
 */
#include "checkpoint/take.h"
#include "checkpoint/format.h"
#include "operators/chain.h"
#include "state/keyed.h"
#include "base/clock.h"
#include "base/err.h"
#include "base/failpoint.h"

#include <stdlib.h>
#include <string.h>

/* ---- the subtask's side ------------------------------------------------- */

/* A fingerprint of the chain: its operators' names, in order. */
uint64_t ck_chain_print(const struct subtask *st)
{
	struct snapbuf b = { 0 };
	for (int k = 0; k < st->nops; k++) {
		const struct node *n = st->ops[k].node;
		snap_put(&b, n->name, strlen(n->name) + 1);
		if (n->state_layout)
			snap_put(&b, n->state_layout, strlen(n->state_layout) + 1);
	}
	uint64_t h = b.oom ? 0 : weir_snap_sum(b.p, b.len);
	snap_free(&b);
	return h;
}

void ck_cow_free(struct subtask *st)
{
	struct ck_cow *w = st->cow;
	for (int i = 0; i < st->nin; i++)
		st->in[i].recording = false;
	st->ck_recording = 0;
	if (!w)
		return;
	for (int k = 0; k < st->nops; k++) { /* the tables stop writing into its pieces */
		weir_kv_cow_drop(&st->ops[k].kv);
		keyed_cow_drop(&st->ops[k].keyed);
	}
	weir_snapvec_free(&w->sv);
	free(w);
	st->cow = NULL;
}

/* The snapshot is complete: seal it and hand it to the snapshot writer. */
static int hand_over(struct subtask *st)
{
	struct job *job = st->job;
	struct ck_cow *w = st->cow;
	uint64_t nfl = inflight(w)->len;
	snap_u64(inflight(w) - 1, nfl);
	if (weir_snapvec_seal(&w->sv) < 0) {
		uint64_t id = w->id;
		ck_cow_free(st);
		return weir_op_fail(st, NULL, "checkpoint %llu: snapshot: out of memory", (unsigned long long)id);
	}
	struct ck_handover a = { w->id, (int)(st - job->subtasks), w->final, w->sv, w->pause_max, nfl };
	int rc = ck_writer_take(job, &a);
	if (rc < 0) {
		uint64_t id = w->id;
		bool oom = job->ck != NULL;	/* without a writer (restored, no periodic checkpoints): nobody wants it */
		ck_cow_free(st);
		return oom ? weir_op_fail(st, NULL, "checkpoint %llu: %s", (unsigned long long)id, weir_err_msg()) : 0;
	}
	/* the pieces are the writer's now */
	free(w);
	st->cow = NULL;
	return 0;
}

int ck_cow_step(struct subtask *st, uint64_t budget_ns)
{
	struct ck_cow *w = st->cow;
	if (!w->final && w->id <= __atomic_load_n(&st->job->ck_aborted, __ATOMIC_ACQUIRE)) {
		ck_cow_free(st); /* aborted meanwhile: nobody wants the rest */
		return 0;
	}
	uint64_t t0 = weir_now_ns(), t;
	bool done;
	do { /* a chunk of each table at a time, until done or the slice is spent */
		done = true;
		for (int k = 0; k < st->nops; k++) {
			done &= weir_kv_cow_step(&st->ops[k].kv, 1);
			done &= keyed_cow_step(&st->ops[k].keyed, 1);
		}
		t = weir_now_ns();
	} while (!done && t - t0 < budget_ns);
	if (t - t0 > w->pause_max)
		w->pause_max = t - t0;
	if (!done)
		return 1;
	/* unaligned: complete once every input's barrier came */
	return st->ck_recording ? 0 : hand_over(st);
}

int ck_record_inflight(struct subtask *st, const struct input *in, const weir_rec *rec)
{
	struct ck_cow *w = st->cow;
	if (!w) { /* dropped (its checkpoint was aborted): nothing to record for */
		ck_cow_free(st);
		return 0;
	}
	if (snaprec_put(inflight(w), (uint32_t)in->edge, rec->ts, rec->data, rec->len) < 0) {
		uint64_t id = w->id;
		ck_cow_free(st);
		return weir_op_fail(st, NULL, "checkpoint %llu: out of memory for in-flight data", (unsigned long long)id);
	}
	return 0;
}

int ck_snapshot(struct subtask *st, uint64_t id, bool final)
{
	struct job *job = st->job;
	/* one at a time: the tables hold one snapshot's marks. One still
	 * recording in-flight data waits for barriers a newer checkpoint
	 * overtook (its own was aborted): dropped */
	if (st->cow && st->ck_recording)
		ck_cow_free(st);
	/* the last one's rest, if any, is part of this one's pause */
	uint64_t t0 = weir_now_ns();
	if (st->cow && ck_cow_step(st, UINT64_MAX) < 0)
		return -1;
	struct ck_cow *w = calloc(1, sizeof(*w));
	int npieces = 1 + COW_PIECES * st->nops + COW_PIECES_END;
	if (!w || !(w->sv.v = calloc((size_t)npieces + 1, sizeof(struct snapbuf)))) { /* + 1: the footer */
		free(w);
		return weir_op_fail(st, NULL, "checkpoint %llu: snapshot: out of memory", (unsigned long long)id);
	}
	w->sv.n = npieces;
	w->id = id;
	w->final = final;
	st->cow = w;
	struct weir_kg_map m;
	weir_kg_map_init(&m, job->cfg.max_parallelism);
	struct snapbuf *b = &w->sv.v[0];
	snap_put(b, ck_sub_magic, 8);
	snap_u32(b, (uint32_t)st->v->id);
	snap_u32(b, (uint32_t)st->index);
	snap_u32(b, (uint32_t)st->v->parallelism);
	snap_u32(b, job->cfg.max_parallelism);
	snap_u32(b, (uint32_t)st->nops);
	snap_u32(b, final);
	snap_u64(b, id);
	snap_u64(b, ck_chain_print(st));
	for (int k = 0; k < st->nops; k++) {
		struct opinst *op = &st->ops[k];
		struct snapbuf *p = &w->sv.v[1 + COW_PIECES * k];
		snap_u32(p, (uint32_t)k);
		size_t at = p->len;
		snap_u64(p, 0);
		if (op->node->hooks.snapshot && op->opened && op->node->hooks.snapshot(&op->ctx, p, id) < 0) {
			ck_cow_free(st);
			if (!st->failed)
				weir_op_fail(st, op, "snapshot: %s", weir_err_msg());
			return -1;
		}
		if (!p->oom) {
			uint64_t n = p->len - at - 8;
			memcpy(p->p + at, &n, 8);
		}
		snap_u64(p, op->kv.count);
		if (weir_kv_cow_begin(&op->kv, p + 1, &m, false) < 0)
			p[1].oom = true; /* one in progress: never (finished above) */
		keyed_cow_begin(&op->keyed, p + 2, p + 3, p + 4, p + 5, &m);
	}
	if (weir_failpoint("checkpoint.snapshot") < 0) {
		ck_cow_free(st);
		return weir_op_fail(st, NULL, "checkpoint %llu: snapshot: %s", (unsigned long long)id, weir_err_msg());
	}
	if (!final)
		st->ck_last = id;
	w->pause_max = weir_now_ns() - t0;
	/* a final snapshot is taken as the subtask ends: nothing to overlap */
	return final ? ck_cow_step(st, UINT64_MAX) : 0;
}

int ck_notify(struct subtask *st, uint64_t id)
{
	for (int k = 0; k < st->nops; k++) {
		struct opinst *op = &st->ops[k];
		if (op->node->hooks.notify && op->opened && op->node->hooks.notify(&op->ctx, id) < 0)
			return st->failed ? -1 : weir_op_fail(st, op, "commit of checkpoint %llu: %s", (unsigned long long)id,
							       weir_err_msg());
	}
	st->ck_committed = id;
	return 0;
}

int ck_check_sources(struct job *job)
{
	for (int n = 0; n < job->env->nnodes; n++) {
		struct node *nd = job->env->nodes[n];
		if (nd->kind == OP_SOURCE && !nd->hooks.snapshot && nd->no_ck_why)
			return weir_err_set("source '%s' cannot be checkpointed (%s); run without --checkpoint-interval",
					    nd->name, nd->no_ck_why);
		if (nd->kind == OP_SOURCE && !nd->hooks.snapshot)
			return weir_err_set("source '%s' cannot be checkpointed (it keeps its position itself); "
					    "run without --checkpoint-interval, read through a built-in source, or write it "
					    "with weir_source_splits (weir/connector.h)",
					    nd->name);
	}
	return 0;
}

