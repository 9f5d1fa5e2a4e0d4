/*
 * engine/ckrun.c - checkpoints while a job runs: what a subtask does at a
 * barrier, and local mode's coordinator.
 *
 * The protocol (asynchronous barrier snapshotting, Carbone et al. 2015):
 * the coordinator picks checkpoint n and raises job->ck_trigger; every
 * source subtask, at its next step, snapshots its chain and emits barrier
 * n (a marker, engine/record.h) on every output. A subtask with inputs
 * stops reading each input that delivered barrier n (aligned mode) until
 * every input has delivered it or ended, then snapshots, forwards the
 * barrier and reads on; in at-least-once mode it never stops reading, so
 * records after the barrier may be in its snapshot (and replayed after a
 * restore). A finished subtask's last snapshot stands in for it in every
 * later checkpoint: a barrier that can never come does not hold one up.
 *
 * The snapshot's synchronous part is a copy-on-write point: operators'
 * private state (small: positions, pending files) is serialized at once,
 * keyed state and timers only marked (engine/state.h); the worker goes on
 * with records and serializes the marked chunks between them (ck_cow_step,
 * a bounded slice per step) or just before it would change one. Complete,
 * the pieces go to the coordinator thread, which
 * writes, fsyncs and records them (engine/checkpoint.h), and once every
 * subtask's file is durable writes the metadata, which makes the
 * checkpoint complete, and raises job->ck_complete: sinks then publish
 * what the checkpoint covers (two-phase commit).
 *
 * A subtask's snapshot, sealed (engine/snapshot.h):
 *   ["WEIRSUB1"][u32 vertex][u32 index][u32 parallelism][u32 max parallelism]
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
#include "engine/checkpoint.h"
#include "engine/runtime.h"
#include "engine/snapshot.h"
#include "base/clock.h"
#include "base/err.h"
#include "base/failpoint.h"
#include "base/log.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char sub_magic[8] = { 'W', 'E', 'I', 'R', 'S', 'U', 'B', '2' };

struct ck_ack {
	uint64_t id;
	int sub;
	bool final;
	struct snapvec sv;
	uint64_t sync_ns;	/* the longest the subtask stopped for it at once */
	uint64_t inflight;	/* bytes of in-flight data in it (unaligned) */
};

/* A subtask's snapshot being made (st->cow). Pieces: [0] the header, then
 * per operator k, from 1 + 6k: [position][n][private][u64 reduce entries],
 * reduce entries, [u64 keyed entries], keyed entries, [u64 timers], timers;
 * the copy-on-write tables fill their pieces later. */
#define COW_PIECES 6
#define COW_PIECES_END 2	/* [u64 in-flight bytes], the in-flight records */
struct ck_cow {
	uint64_t id;
	bool final;
	uint64_t pause_max;
	struct snapvec sv;
};

/* Its in-flight records (tag: the head input, the edge), the last piece;
 * the one before it takes their length when it is handed over. */
static struct snapbuf *inflight(struct ck_cow *w)
{
	return &w->sv.v[w->sv.n - 1];
}

struct ckcoord {
	struct job *job;
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool stop;
	struct ck_ack *q;	/* snapshots handed over, not yet written */
	int nq, capq;
	/* a cluster's TaskManager (job->dist): the JobManager decides; these
	 * are its steps not yet taken by the thread (under lock) */
	bool dist;
	uint64_t cmd_trigger, cmd_abort;
	char cmd_dir[PATH_MAX];
	char base[PATH_MAX];	/* where pending's files go */
	uint64_t last_id;	/* the last checkpoint started */
	uint64_t pending;	/* the one in flight (0: none) */
	uint64_t pending_ns;
	uint64_t next_ns;	/* when the next may start */
	bool *acked;		/* per subtask, for pending */
	struct weir_ckpt_file *files;
	struct snapvec *final;	/* per subtask: its snapshot at its end */
	bool *finished;
	uint64_t completed, aborted;
	uint64_t bytes, sync_max_ns;	/* of pending: written, longest synchronous part */
	uint64_t inflight;		/* of pending: bytes of in-flight data */
};

/* ---- the subtask's side ------------------------------------------------- */

/* A fingerprint of the chain: its operators' names, in order. */
static uint64_t chain_print(const struct subtask *st)
{
	struct snapbuf b = { 0 };
	for (int k = 0; k < st->nops; k++)
		snap_put(&b, st->ops[k].node->name, strlen(st->ops[k].node->name) + 1);
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

/* The snapshot is complete: seal it and hand it to the coordinator. */
static int hand_over(struct subtask *st)
{
	struct job *job = st->job;
	struct ck_cow *w = st->cow;
	struct ckcoord *c = job->ck;
	uint64_t nfl = inflight(w)->len;
	snap_u64(inflight(w) - 1, nfl);
	if (weir_snapvec_seal(&w->sv) < 0) {
		uint64_t id = w->id;
		ck_cow_free(st);
		return weir_op_fail(st, NULL, "checkpoint %llu: snapshot: out of memory", (unsigned long long)id);
	}
	if (!c) { /* restored, without periodic checkpoints: nobody wants it */
		ck_cow_free(st);
		return 0;
	}
	pthread_mutex_lock(&c->lock);
	if (c->nq == c->capq) {
		int cap = c->capq ? c->capq * 2 : 16;
		struct ck_ack *q = realloc(c->q, sizeof(*q) * (size_t)cap);
		if (!q) {
			pthread_mutex_unlock(&c->lock);
			uint64_t id = w->id;
			ck_cow_free(st);
			return weir_op_fail(st, NULL, "checkpoint %llu: out of memory", (unsigned long long)id);
		}
		c->q = q;
		c->capq = cap;
	}
	/* the pieces are the coordinator's now */
	c->q[c->nq++] = (struct ck_ack){ w->id, (int)(st - job->subtasks), w->final, w->sv, w->pause_max, nfl };
	pthread_cond_signal(&c->cond);
	pthread_mutex_unlock(&c->lock);
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
	if (st->cow && ck_cow_step(st, UINT64_MAX) < 0)
		return -1;
	uint64_t t0 = weir_now_ns();
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
	snap_put(b, sub_magic, 8);
	snap_u32(b, (uint32_t)st->v->id);
	snap_u32(b, (uint32_t)st->index);
	snap_u32(b, (uint32_t)st->v->parallelism);
	snap_u32(b, job->cfg.max_parallelism);
	snap_u32(b, (uint32_t)st->nops);
	snap_u32(b, final);
	snap_u64(b, id);
	snap_u64(b, chain_print(st));
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

/* The operators' private state has its own hook; an operator without one
 * must have written nothing. With own false the bytes are skipped: after
 * a rescale, the private state of an old subtask goes to one new one. */
static int restore_private(struct subtask *st, struct opinst *op, const void *priv, uint64_t plen, bool own)
{
	if (!own)
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
	if (n < 0 || !magic || memcmp(magic, sub_magic, 8) || v != (uint32_t)st->v->id || print != chain_print(st) ||
	    idx != pc->index || idx >= par || maxp != job->cfg.max_parallelism || nops != (uint32_t)st->nops)
		return weir_op_fail(st, NULL, "restore: the snapshot is not this subtask's (the job's graph, operator "
				    "names or max parallelism differ from the checkpoint's)%s%s", n < 0 ? ": " : "",
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
		if (rc > 0 || weir_kv_restore(&op->kv, &r, lo, hi) < 0 || keyed_restore(&op->keyed, &r, &m, lo, hi) < 0) {
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
		if (nd->kind == OP_SOURCE && !nd->hooks.snapshot)
			return weir_err_set("source '%s' cannot be checkpointed (it keeps its position itself); "
					    "run without --checkpoint-interval, or read through a built-in source",
					    nd->name);
	}
	return 0;
}

/* ---- the coordinator ------------------------------------------------------
 *
 * Local mode: it decides when a checkpoint starts, writes every
 * subtask's snapshot, completes it and announces it. In a cluster's
 * TaskManager (dist) it writes the snapshots of the subtasks that run
 * here when the JobManager triggers one, and reports them (d->ck_acked);
 * the JobManager completes the checkpoint and announces it back
 * (weir_run_dist_checkpoint).
 */

/* A subtask that runs in this process (in a cluster, the others are
 * placeholders without operators). */
static bool here(const struct subtask *st)
{
	return st->ops != NULL;
}

static void ring_all(struct job *job)
{
	for (int w = 0; w < job->sched.nworkers; w++)
		weir_doorbell_ring(weir_sched_doorbell(&job->sched, w));
}

static void abort_pending(struct ckcoord *c, const char *why)
{
	if (c->dist) { /* the JobManager aborts it everywhere */
		const struct weir_dist *d = c->job->dist;
		d->ck_acked(d->arg, c->pending, NULL, 0, 0, 0, why);
		c->pending = 0;
		return;
	}
	weir_log(WEIR_LOG_WARN, "checkpoint %llu aborted: %s", (unsigned long long)c->pending, why);
	fprintf(stderr, "weir: checkpoint %llu aborted: %s\n", (unsigned long long)c->pending, why);
	weir_ckpt_discard(c->base, c->pending);
	/* subtasks still aligning it release their inputs (ids only grow) */
	__atomic_store_n(&c->job->ck_aborted, c->pending, __ATOMIC_RELEASE);
	ring_all(c->job);
	c->pending = 0;
	c->aborted++;
	c->next_ns = weir_now_ns() + (uint64_t)c->job->cfg.checkpoint_min_pause_ms * 1000000u;
}

static void write_one(struct ckcoord *c, int s, const struct snapvec *sv)
{
	struct subtask *st = &c->job->subtasks[s];
	char name[48];
	snprintf(name, sizeof(name), "v%d-s%d.snap", st->v->id, st->index);
	if (weir_ckpt_write(c->base, c->pending, name, sv, &c->files[s]) < 0) {
		abort_pending(c, weir_err_msg());
		return;
	}
	c->bytes += c->files[s].size;
	c->files[s].vertex = (uint32_t)st->v->id;
	c->files[s].index = (uint32_t)st->index;
	c->files[s].parallelism = (uint32_t)st->v->parallelism;
	c->acked[s] = true;
}

static void try_complete(struct ckcoord *c)
{
	struct job *job = c->job;
	for (int s = 0; c->pending && s < job->nsub; s++)
		if (!c->acked[s] && c->finished[s])
			write_one(c, s, &c->final[s]);
	if (!c->pending)
		return;
	for (int s = 0; s < job->nsub; s++)
		if (!c->acked[s] && here(&job->subtasks[s]))
			return;
	if (c->dist) { /* every subtask here is durable: tell the JobManager */
		struct weir_ckpt_file *mine = c->files;
		int n = 0;
		for (int s = 0; s < job->nsub; s++)
			if (here(&job->subtasks[s]))
				mine[n++] = c->files[s]; /* n <= s: compacts in place */
		job->dist->ck_acked(job->dist->arg, c->pending, mine, n, c->bytes, c->sync_max_ns, NULL);
		c->pending = 0;
		return;
	}
	struct weir_ckpt_meta m = { c->pending, (uint64_t)time(NULL) * 1000u, (uint32_t)job->nsub, c->files };
	if (weir_ckpt_commit(c->base, &m) < 0) {
		abort_pending(c, weir_err_msg());
		return;
	}
	if (weir_failpoint("checkpoint.complete") < 0) {
		/* complete on disk, never announced: it stays (a restore may use
		 * it, and then commits what it covers); sinks commit its files
		 * with the next one's */
		weir_log(WEIR_LOG_WARN, "checkpoint %llu complete but not announced: failpoint checkpoint.complete",
			 (unsigned long long)c->pending);
		c->pending = 0;
		c->aborted++;
		c->next_ns = weir_now_ns() + (uint64_t)job->cfg.checkpoint_min_pause_ms * 1000000u;
		return;
	}
	c->completed++;
	weir_log(WEIR_LOG_INFO, "checkpoint %llu complete (%.1f ms, %llu bytes, longest synchronous pause %.3f ms, "
		 "%llu bytes in flight)", (unsigned long long)c->pending, (double)(weir_now_ns() - c->pending_ns) / 1e6,
		 (unsigned long long)c->bytes, (double)c->sync_max_ns / 1e6, (unsigned long long)c->inflight);
	__atomic_store_n(&job->ck_complete, c->pending, __ATOMIC_RELEASE);
	ring_all(job); /* sinks commit on their next step */
	weir_ckpt_retain(c->base, c->pending, (int)job->cfg.checkpoint_retain);
	c->pending = 0;
	c->next_ns = weir_now_ns() + (uint64_t)(job->cfg.checkpoint_min_pause_ms > job->cfg.checkpoint_interval_ms
						       ? job->cfg.checkpoint_min_pause_ms
						       : job->cfg.checkpoint_interval_ms) * 1000000u;
}

static void trigger(struct ckcoord *c, uint64_t id)
{
	struct job *job = c->job;
	c->pending = c->last_id = id;
	c->pending_ns = weir_now_ns();
	c->bytes = c->sync_max_ns = c->inflight = 0;
	memset(c->acked, 0, sizeof(bool) * (size_t)job->nsub);
	__atomic_store_n(&job->ck_trigger, c->pending, __ATOMIC_RELEASE);
	for (int s = 0; s < job->nsub; s++)
		if (job->subtasks[s].is_source && here(&job->subtasks[s]))
			weir_doorbell_ring(weir_sched_doorbell(&job->sched, job->subtasks[s].task.worker));
}

/* dist: take the JobManager's steps (under c->lock). An abort drops the
 * pending checkpoint it names (the JobManager removes its files); a
 * trigger starts one, writing under the folder it names. */
static void take_commands(struct ckcoord *c)
{
	if (c->cmd_abort && c->pending && c->pending <= c->cmd_abort)
		c->pending = 0;
	if (c->cmd_trigger > c->last_id && c->cmd_trigger > c->cmd_abort) {
		snprintf(c->base, sizeof(c->base), "%s", c->cmd_dir);
		trigger(c, c->cmd_trigger);
	} else if (c->cmd_trigger > c->last_id) {
		c->last_id = c->cmd_trigger; /* aborted before it began here: never starts */
	}
	c->cmd_abort = c->cmd_trigger = 0;
}

int ck_coord_command(struct job *job, int action, uint64_t id, const char *dir)
{
	struct ckcoord *c = job->ck;
	if (!c)
		return weir_err_set("the job runs without checkpoints");
	switch (action) {
	case CK_CMD_TRIGGER:
		pthread_mutex_lock(&c->lock);
		if (id > c->cmd_trigger) {
			c->cmd_trigger = id;
			snprintf(c->cmd_dir, sizeof(c->cmd_dir), "%s", dir);
		}
		pthread_cond_signal(&c->cond);
		pthread_mutex_unlock(&c->lock);
		return 0;
	case CK_CMD_ABORT:
		pthread_mutex_lock(&c->lock);
		if (id > c->cmd_abort)
			c->cmd_abort = id;
		pthread_cond_signal(&c->cond);
		pthread_mutex_unlock(&c->lock);
		/* alignments waiting for it end (ids only grow) */
		if (id > __atomic_load_n(&job->ck_aborted, __ATOMIC_ACQUIRE))
			__atomic_store_n(&job->ck_aborted, id, __ATOMIC_RELEASE);
		ring_all(job);
		return 0;
	case CK_CMD_COMPLETE:
		/* sinks publish on their next step; only this thread stores it */
		if (id > __atomic_load_n(&job->ck_complete, __ATOMIC_ACQUIRE))
			__atomic_store_n(&job->ck_complete, id, __ATOMIC_RELEASE);
		ring_all(job);
		return 0;
	}
	return weir_err_set("unknown checkpoint step %d", action);
}

static void *coord_main(void *arg)
{
	struct ckcoord *c = arg;
	struct job *job = c->job;
	pthread_mutex_lock(&c->lock);
	while (!c->stop) {
		if (c->dist)
			take_commands(c);
		struct ck_ack *q = c->q;
		int nq = c->nq;
		c->q = NULL;
		c->nq = c->capq = 0;
		pthread_mutex_unlock(&c->lock);
		for (int i = 0; i < nq; i++) {
			struct ck_ack *a = &q[i];
			if (a->final) { /* kept for every checkpoint from now on */
				weir_snapvec_free(&c->final[a->sub]);
				c->final[a->sub] = a->sv;
				c->finished[a->sub] = true;
				continue;
			}
			if (c->pending && a->id == c->pending && !c->acked[a->sub]) {
				if (a->sync_ns > c->sync_max_ns)
					c->sync_max_ns = a->sync_ns;
				c->inflight += a->inflight;
				write_one(c, a->sub, &a->sv);
			}
			weir_snapvec_free(&a->sv);
		}
		free(q);
		uint64_t now = weir_now_ns();
		if (c->pending)
			try_complete(c);
		if (!c->dist && c->pending && now - c->pending_ns > (uint64_t)job->cfg.checkpoint_timeout_ms * 1000000u)
			abort_pending(c, "timed out");
		if (!c->dist && !c->pending && now >= c->next_ns)
			trigger(c, c->last_id + 1);
		pthread_mutex_lock(&c->lock);
		if (c->stop || c->nq || c->cmd_trigger || c->cmd_abort)
			continue;
		/* at least every 100 ms (finished subtasks); local mode also at its
		 * timeout or next trigger; dist: commands signal the condition */
		uint64_t wait = 100000000u;
		if (!c->dist) {
			uint64_t wake = c->pending ? c->pending_ns + (uint64_t)job->cfg.checkpoint_timeout_ms * 1000000u
						   : c->next_ns;
			uint64_t until = wake > now ? wake - now : 0;
			wait = until < wait ? until : wait;
		}
		struct timespec ts;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		uint64_t abs = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec + wait;
		ts.tv_sec = (time_t)(abs / 1000000000u);
		ts.tv_nsec = (long)(abs % 1000000000u);
		pthread_cond_timedwait(&c->cond, &c->lock, &ts);
	}
	pthread_mutex_unlock(&c->lock);
	return NULL;
}

int ck_coord_start(struct job *job, const char *base, uint64_t restored)
{
	struct ckcoord *c = calloc(1, sizeof(*c));
	if (!c)
		return weir_err_set("out of memory");
	c->job = job;
	c->dist = job->dist != NULL;
	snprintf(c->base, sizeof(c->base), "%s", base ? base : "");
	c->last_id = restored;
	c->next_ns = weir_now_ns() + (uint64_t)job->cfg.checkpoint_interval_ms * 1000000u;
	c->acked = calloc((size_t)job->nsub + 1, sizeof(bool));
	c->finished = calloc((size_t)job->nsub + 1, sizeof(bool));
	c->files = calloc((size_t)job->nsub + 1, sizeof(*c->files));
	c->final = calloc((size_t)job->nsub + 1, sizeof(*c->final));
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&c->cond, &ca);
	pthread_condattr_destroy(&ca);
	pthread_mutex_init(&c->lock, NULL);
	if (!c->acked || !c->finished || !c->files || !c->final) {
		job->ck = c;
		ck_coord_stop(job);
		return weir_err_set("out of memory");
	}
	job->ck = c;
	if (pthread_create(&c->thread, NULL, coord_main, c) != 0) {
		ck_coord_stop(job);
		return weir_err_set("cannot start the checkpoint coordinator");
	}
	return 0;
}

void ck_coord_stop(struct job *job)
{
	struct ckcoord *c = job->ck;
	if (!c)
		return;
	pthread_mutex_lock(&c->lock);
	bool running = !c->stop;
	c->stop = true;
	pthread_cond_signal(&c->cond);
	pthread_mutex_unlock(&c->lock);
	if (running && c->thread)
		pthread_join(c->thread, NULL);
	for (int i = 0; i < c->nq; i++)
		weir_snapvec_free(&c->q[i].sv);
	free(c->q);
	for (int s = 0; c->final && s < job->nsub; s++)
		weir_snapvec_free(&c->final[s]);
	if (c->pending && !c->dist) /* never completed: not a checkpoint */
		weir_ckpt_discard(c->base, c->pending);
	free(c->final);
	free(c->finished);
	free(c->files);
	free(c->acked);
	pthread_mutex_destroy(&c->lock);
	pthread_cond_destroy(&c->cond);
	free(c);
	job->ck = NULL;
}

