/*
 * engine/runtime/step.c - a subtask's step: what its worker does each time
 * it runs it (sched/worker.h).
 *
 * A step reads a bounded batch from the subtask's inputs (a source: one
 * poll), pushes records through its chain and into its writers, and
 * stops early when an output runs out of credit. When its inputs are
 * drained it flushes partly filled segments at once (flush-on-idle: a
 * lone record leaves immediately); under load segments leave full, or
 * after buffer_timeout at the latest, and one holding a watermark soon
 * after it when the consumer has caught up (flush_due). Between records it keeps time
 * (watermarks, idleness, processing-time timers), aligns barriers (or,
 * unaligned, drains inputs up to them and records the in-flight data),
 * serializes a copy-on-write snapshot in slices, and tells sinks which
 * checkpoints completed. End of input travels in-band (WEIR_EV_END after
 * the last segment on every channel).
 */
#include "runtime/internal.h"
#include "base/histo.h"
#include "checkpoint/take.h"
#include "operators/chain.h"
#include "operators/keyed.h"
#include "base/clock.h"
#include "base/err.h"
#include "base/failpoint.h"
#include "base/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- the step of a subtask ------------------------------------------- */

/* May the subtask take input? Only when every output channel is within
 * its credit: a spare segment, or room left in the one being filled that
 * is not a floating one. Floating segments finish the record in hand;
 * they never let a producer run ahead of its consumer. */
static bool outputs_ready(struct subtask *st)
{
	for (int i = 0; i < st->nout; i++)
		for (int k = 0; k < st->out[i].nw; k++) {
			struct weir_writer *w = &st->out[i].w[k];
			if (w->seg != WEIR_SEG_NONE && w->cap - w->used >= WEIR_REC_HDR &&
			    w->ch->owned <= w->ch->credits)
				continue;
			if (!weir_chan_can_send(w->ch))
				return false;
		}
	st->overdraft = false;
	return true;
}

static int flush_all(struct subtask *st)
{
	for (int i = 0; i < st->nout; i++)
		for (int k = 0; k < st->out[i].nw; k++)
			if (weir_writer_flush(&st->out[i].w[k]) < 0)
				return weir_op_fail(st, NULL, "%s", weir_err_msg());
	return 0;
}

/* A segment holding a watermark leaves this long after the watermark went
 * in, if the consumer has read everything before it: window results then
 * leave when their watermark passes, not when a segment fills (at a rate
 * the job keeps up with, a 32 KiB segment of a keyBy edge took a few
 * hundred us to fill). A consumer still reading gains nothing from a
 * partial segment, and the credit it takes is dearer under load. */
#define MARK_WAIT_NS 50000u

static int flush_due(struct subtask *st)
{
	uint64_t now = weir_now_ns(), timeout = st->job->cfg.buffer_timeout_ns;
	for (int i = 0; i < st->nout; i++)
		for (int k = 0; k < st->out[i].nw; k++) {
			struct weir_writer *w = &st->out[i].w[k];
			if (w->seg != WEIR_SEG_NONE && w->used &&
			    (now - w->first_ns >= timeout ||
			     (w->mark_ns && now - w->mark_ns >= MARK_WAIT_NS && !weir_chan_pending(w->ch))) &&
			    weir_writer_flush(w) < 0)
				return weir_op_fail(st, NULL, "%s", weir_err_msg());
		}
	return 0;
}

/* The subtask's inputs are drained: push out what waits, and let the
 * operators that buffer (stdout) do the same. */
static int go_idle(struct subtask *st)
{
	for (int i = 0; i < st->nops; i++) {
		struct opinst *op = &st->ops[i];
		if (op->node->hooks.idle && op->node->hooks.idle(&op->ctx) < 0)
			return weir_op_fail(st, op, "%s", weir_err_msg());
	}
	return flush_all(st);
}

/* ---- time ------------------------------------------------------------------ */

/* The watermark over the inputs: the minimum over live inputs that are not
 * idle. Advances the chain when it moved; tells downstream when every live
 * input went idle. */
static int inputs_watermark(struct subtask *st)
{
	int64_t wm = WEIR_WATERMARK_MAX;
	int active = 0, live = 0;
	for (int i = 0; i < st->nin; i++) {
		struct input *in = &st->in[i];
		if (in->ended)
			continue;
		live++;
		if (in->idle)
			continue;
		active++;
		if (in->wm < wm)
			wm = in->wm;
	}
	if (live && !active) {
		/* all idle: hold the watermark where it is, say so once */
		if (!st->in_idle) {
			st->in_idle = true;
			return weir_op_idle(st);
		}
		return 0;
	}
	st->in_idle = false;
	if (wm > st->in_wm) {
		st->in_wm = wm;
		return weir_op_watermark(st, 0, wm);
	}
	return 0;
}

/* After a step: timestamp assigners publish the watermark their records
 * allow (once per step, not per record), and go idle after idle_ms without
 * records. Returns the monotonic time at which an idle check is due
 * (UINT64_MAX: none). */
static uint64_t assigners(struct subtask *st, uint64_t now)
{
	uint64_t due = UINT64_MAX;
	for (int i = 0; i < st->nops && !st->failed; i++) {
		struct opinst *op = &st->ops[i];
		if (op->node->kind != OP_ASSIGN)
			continue;
		if (op->max_ts != INT64_MIN) {
			int64_t bound = op->node->out_of_order_ms;
			int64_t wm = op->max_ts - bound - 1;
			if (op->max_ts < INT64_MIN + bound + 1)
				wm = INT64_MIN + 1;
			if (wm > op->emitted_wm) {
				op->emitted_wm = wm;
				weir_op_watermark(st, i + 1, wm);
			}
		}
		if (op->node->idle_ms > 0) {
			uint64_t idle_ns = (uint64_t)op->node->idle_ms * 1000000u;
			if (op->saw_records || !op->last_active_ns) {
				op->saw_records = false;
				op->last_active_ns = now;
			} else if (!op->idle && now - op->last_active_ns >= idle_ns) {
				op->idle = true;
				weir_op_idle(st);
			}
			if (!op->idle && op->last_active_ns + idle_ns < due)
				due = op->last_active_ns + idle_ns;
		}
	}
	return due;
}

/* Processing-time timers due now fire; returns when the next one is due
 * (monotonic ns, UINT64_MAX: none). A timer for time T fires once the
 * clock is past T (wall > T), so every record stamped T by a
 * processing-time window is in before its window fires. */
static uint64_t processing_timers(struct subtask *st, uint64_t now)
{
	uint64_t due = UINT64_MAX;
	int64_t wall = 0;
	for (int i = 0; i < st->nops && !st->failed; i++) {
		struct opinst *op = &st->ops[i];
		if (op->node->kind != OP_KEYED)
			continue;
		int64_t next = keyed_next_processing(op);
		if (next == INT64_MAX)
			continue;
		if (!wall)
			wall = weir_wall_ms();
		if (next < wall) {
			struct opinst *was = weir_mark_op(st, op);
			keyed_fire_processing(op, wall - 1);
			weir_mark_op(st, was);
			next = keyed_next_processing(op);
			if (next == INT64_MAX)
				continue;
		}
		/* a timer centuries away must not wrap the wake-up time */
		uint64_t dms = (uint64_t)(next - wall) + 1;
		uint64_t at = dms > (UINT64_MAX - now) / 1000000u - 1 ? UINT64_MAX - 1 : now + dms * 1000000u;
		if (at < due)
			due = at;
	}
	return due;
}

/* Time work after a step; lowers the task's wake-up time to what is due. */
static void after_step(struct subtask *st)
{
	uint64_t now = weir_now_ns();
	uint64_t a = assigners(st, now), p = processing_timers(st, now);
	uint64_t due = a < p ? a : p;
	if (due != UINT64_MAX && (st->task.wake_at == 0 || due < st->task.wake_at))
		st->task.wake_at = due;
}

static enum weir_step finish(struct subtask *st)
{
	/* End of input: the watermark goes to +infinity through the chain, so
	 * every timer and window fires once, before anything closes. */
	if (weir_op_watermark(st, 0, WEIR_WATERMARK_MAX) < 0)
		return WEIR_STEP_DONE;
	for (int i = 0; i < st->nops && !st->failed; i++)
		weir_op_close(st, &st->ops[i]);
	/* its state at its end stands in for it in later checkpoints */
	if (st->failed || (st->job->ck_on && ck_snapshot(st, 0, true) < 0) || go_idle(st) < 0)
		return WEIR_STEP_DONE;
	for (int i = 0; i < st->nout; i++)
		for (int k = 0; k < st->out[i].nw; k++)
			if (weir_chan_send_event(st->out[i].w[k].ch, WEIR_EV_END, 0) < 0) {
				weir_op_fail(st, NULL, "channel data ring full at end of input");
				return WEIR_STEP_DONE;
			}
	st->state = ST_DONE;
	return WEIR_STEP_DONE;
}

/* Checkpoint id: snapshot the chain, then barrier id on every output
 * (flushed, so it does not wait for the segment to fill). Unaligned, the
 * barrier is also announced on each channel, ahead of the segments in
 * flight: the consumer sees it at once, backpressure or not. */
static int barrier(struct subtask *st, uint64_t id)
{
	if (ck_snapshot(st, id, false) < 0)
		return -1;
	for (int i = 0; i < st->nout; i++)
		for (int k = 0; k < st->out[i].nw; k++) {
			if (st->job->cfg.unaligned)
				weir_chan_announce(st->out[i].w[k].ch, id);
			if (weir_writer_marker(&st->out[i].w[k], WEIR_KIND_BARRIER, (int64_t)id) < 0)
				return weir_op_fail(st, NULL, "%s", weir_err_msg());
		}
	if (flush_all(st) < 0)
		return -1;
	if (st->is_source && weir_failpoint("checkpoint.barrier") < 0)
		return weir_op_fail(st, NULL, "checkpoint %llu: %s", (unsigned long long)id, weir_err_msg());
	return 0;
}

/* Unaligned: an input stops recording (its barrier came, or it ended). */
static void stop_recording(struct subtask *st, struct input *in)
{
	if (in->recording) {
		in->recording = false;
		st->ck_recording--;
	}
}

/* Unaligned: records pulled out of in's channel earlier (for an older
 * checkpoint) and not processed yet came before barrier id too: they are
 * in flight for it as well. When pend holds barrier id itself (or END),
 * that is all of them: the input is done recording. */
static int record_pend(struct subtask *st, struct input *in, uint64_t id)
{
	const struct snapbuf *b = &in->pend;
	struct snaprec e;
	for (size_t off = in->pend_off; off < b->len; off += snaprec_get(b->p + off, &e)) {
		snaprec_get(b->p + off, &e);
		bool barrier = e.tag == WEIR_EV_MARKER + WEIR_KIND_BARRIER;
		if (e.tag == WEIR_EV_END || (barrier && (uint64_t)e.ts == id)) {
			if (barrier)
				in->barrier = id;
			stop_recording(st, in);
			break;
		}
		if (barrier && (uint64_t)e.ts > id)
			break; /* a newer one: it starts its checkpoint when processed */
		weir_rec rec = { .data = e.data, .len = e.len, .ts = e.ts };
		if (!e.tag && ck_record_inflight(st, in, &rec) < 0)
			return -1;
	}
	return 0;
}

/* Unaligned: checkpoint id starts here at once, wherever its barriers
 * are. Snapshot, forward, and from now on every input whose barrier id has
 * not come records what it delivers, up to that barrier: the records in
 * flight, which belong to the checkpoint (engine/checkpoint/take.c). */
static int unaligned_start(struct subtask *st, uint64_t id)
{
	if (barrier(st, id) < 0)
		return -1;
	st->ck_recording = 0;
	for (int i = 0; i < st->nin; i++) {
		struct input *in = &st->in[i];
		in->recording = !in->ended && in->barrier < id;
		st->ck_recording += in->recording;
		if (in->recording && record_pend(st, in, id) < 0)
			return -1;
	}
	return 0;
}

/* The next record or event of input in: first what drain pulled out,
 * then the channel. *pulled says which. */
static int input_next(struct input *in, weir_rec *rec, uint32_t *code, uint64_t *val, bool *pulled)
{
	struct snapbuf *b = &in->pend;
	*pulled = b->len != 0;
	if (!*pulled)
		return weir_reader_next(&in->rd, rec, code, val);
	struct snaprec e; /* tag: 0 a record, else the event's code (ts: its value) */
	in->pend_off += snaprec_get(b->p + in->pend_off, &e);
	if (in->pend_off >= b->len) { /* the last: its bytes stay valid until the next checkpoint drains */
		b->len = 0;
		in->pend_off = 0;
		in->pend_barrier = 0;
		in->pend_end = false;
	}
	if (e.tag) {
		*code = e.tag;
		*val = (uint64_t)e.ts;
		return WEIR_READ_EVENT;
	}
	rec->data = e.data;
	rec->len = e.len;
	rec->ts = e.ts;
	return WEIR_READ_RECORD;
}

/* Unaligned: pull what input in has in flight before its barrier out of
 * the channel, at once: into the snapshot (ck_record_inflight), and into
 * in->pend, from where it is processed as usual. Its segments go back to
 * the producer now, so the checkpoint waits neither for those records to
 * be processed nor for room downstream; under backpressure that is the
 * point of unaligned checkpoints. At most about 1 MiB a step, and never
 * beyond PEND_MAX bytes waiting in pend: drained segments are credit the
 * producer gets back early, and a consumer slower than its producer that
 * checkpoints often must not buffer without bound. Past it, the input
 * records what it reads until its barrier comes, as if not drained. */
#define PEND_MAX (4u << 20)
static int drain(struct subtask *st, struct input *in)
{
	size_t budget = 1u << 20;
	struct snapbuf *b = &in->pend;
	if (b->len - in->pend_off > PEND_MAX)
		return 0;
	if (in->pend_off > b->len / 2) { /* the processed front goes (no record of it is in use between steps) */
		memmove(b->p, b->p + in->pend_off, b->len - in->pend_off);
		b->len -= in->pend_off;
		in->pend_off = 0;
	}
	/* what pend holds ends with this checkpoint's barrier (or a newer
	 * one, or END): the channel has nothing before it */
	if (in->pend_end || in->pend_barrier >= st->ck_last)
		return 0;
	while (in->recording && budget) {
		weir_rec rec;
		uint32_t code;
		uint64_t val;
		int r = weir_reader_next(&in->rd, &rec, &code, &val);
		if (r == WEIR_READ_EMPTY)
			break;
		if (r < 0)
			return weir_op_fail(st, NULL, "input channel: %s", weir_err_msg());
		if (r == WEIR_READ_RECORD) {
			if (ck_record_inflight(st, in, &rec) < 0)
				return -1;
			if (snaprec_put(&in->pend, 0, rec.ts, rec.data, rec.len) < 0)
				return weir_op_fail(st, NULL, "out of memory for in-flight data");
			budget -= budget < 16 + (size_t)rec.len ? budget : 16 + (size_t)rec.len;
			continue;
		}
		if (snaprec_put(&in->pend, code, (int64_t)val, NULL, 0) < 0)
			return weir_op_fail(st, NULL, "out of memory for in-flight data");
		if (code == WEIR_EV_MARKER + WEIR_KIND_BARRIER && val > in->pend_barrier)
			in->pend_barrier = val;
		/* nothing more before the barrier (or ever): the rest stays in
		 * the channel, and the snapshot has every record before it (the
		 * records pulled but not processed yet go into the next
		 * checkpoint's too: record_pend). A newer barrier is left to
		 * on_barrier, which starts its checkpoint. */
		if (code == WEIR_EV_END)
			in->pend_end = true;
		/* (a watermark's value may equal the id: only a barrier counts) */
		if (in->pend_end || (code == WEIR_EV_MARKER + WEIR_KIND_BARRIER && val == st->ck_last)) {
			if (!in->pend_end)
				in->barrier = val;
			stop_recording(st, in);
		}
		if (in->pend_end || in->pend_barrier >= st->ck_last)
			break;
	}
	return 0;
}

/* Unaligned: has a producer announced a checkpoint this subtask has not
 * taken? One atomic load per input and step. */
static int unaligned_check(struct subtask *st)
{
	uint64_t newest = 0;
	for (int i = 0; i < st->nin; i++)
		if (!st->in[i].ended) {
			uint64_t a = weir_chan_announced(st->in[i].ch);
			newest = a > newest ? a : newest;
		}
	if (newest > st->ck_last && newest > __atomic_load_n(&st->job->ck_aborted, __ATOMIC_ACQUIRE))
		return unaligned_start(st, newest);
	return 0;
}

/* Alignment: has every input delivered barrier st->ck_aligning, or ended?
 * Then snapshot, forward it and read every input again. */
static int align_check(struct subtask *st)
{
	uint64_t id = st->ck_aligning;
	if (!id)
		return 0;
	for (int i = 0; i < st->nin; i++)
		if (!st->in[i].ended && st->in[i].barrier != id)
			return 0;
	st->ck_aligning = 0;
	for (int i = 0; i < st->nin; i++)
		st->in[i].blocked = false;
	/* metrics: how long the alignment took, first barrier to last (one
	 * clock read a checkpoint) */
	__atomic_store_n(&st->m_align_ns, weir_real_now_ns() - st->align_start_ns, __ATOMIC_RELAXED);
	return barrier(st, id);
}

/* Barrier id arrived on input in. */
static int on_barrier(struct subtask *st, struct input *in, uint64_t id)
{
	if (st->job->cfg.unaligned) {
		if (id < in->barrier)
			return 0;
		in->barrier = id;
		if (id > st->ck_last && id > __atomic_load_n(&st->job->ck_aborted, __ATOMIC_ACQUIRE))
			return unaligned_start(st, id); /* before its announcement was seen */
		if (id == st->ck_last)
			stop_recording(st, in); /* what came before it on this input is recorded */
		return 0;
	}
	if (id <= st->ck_last || id < st->ck_aligning || id <= __atomic_load_n(&st->job->ck_aborted, __ATOMIC_ACQUIRE))
		return 0; /* an old one (from before a restore, overtaken, or aborted) */
	if (id > st->ck_aligning) {
		/* a newer checkpoint started before this one aligned here: the
		 * older one cannot complete any more; align the newer one */
		for (int i = 0; i < st->nin; i++)
			st->in[i].blocked = false;
		st->ck_aligning = id;
		st->align_start_ns = weir_real_now_ns();
	}
	in->barrier = id;
	in->blocked = !st->job->cfg.at_least_once;
	return align_check(st);
}

/* Restored in-flight data goes to the chain before any input is read. */
static enum weir_step replay_step(struct subtask *st)
{
	uint32_t budget = st->job->cfg.batch;
	struct snapbuf *b = &st->replay;
	while (budget-- && st->replay_off < b->len) {
		struct snaprec e; /* tag: the input (checked by the restore) */
		st->replay_off += snaprec_get(b->p + st->replay_off, &e);
		weir_rec rec = { .data = e.data, .len = e.len, .ts = e.ts };
		st->in[e.tag].khash = 0; /* in-flight data keeps no key hashes */
		if (weir_op_deliver(&st->ops[0], &rec, &st->in[e.tag]) < 0)
			return WEIR_STEP_DONE;
		if (st->overdraft)
			break;
	}
	if (st->replay_off >= b->len) {
		snap_free(b);
		st->replay_off = 0;
	}
	after_step(st);
	if (st->failed || flush_due(st) < 0)
		return WEIR_STEP_DONE;
	return WEIR_STEP_BUSY;
}

/* Latency tracking (Flink's latency markers). A marker passes the chain's
 * operators by (no user code sees it) and goes on to one channel of each
 * output, in turn, so it waits where records wait; a subtask with no
 * output (its chain ends in a sink) counts how long it took. */
static int latency_out(struct subtask *st, int64_t made_ns)
{
	for (int i = 0; i < st->nout; i++) {
		struct output *o = &st->out[i];
		if (weir_writer_marker(&o->w[st->lat_rr % (uint32_t)o->nw], WEIR_KIND_LATENCY, made_ns) < 0)
			return weir_op_fail(st, NULL, "%s", weir_err_msg());
	}
	st->lat_rr++;
	return 0;
}

static int latency_arrived(struct subtask *st, int64_t made_ns)
{
	if (st->nout)
		return latency_out(st, made_ns);
	if (st->lat_hist) {
		int64_t d = weir_wall_ns() - made_ns; /* another host's clock may be ahead: 0 then */
		uint64_t *c = &st->lat_hist[weir_histo_bucket(d > 0 ? (uint64_t)d : 0)];
		__atomic_store_n(c, *c + 1, __ATOMIC_RELAXED);
	}
	return 0;
}

/* A source's marker, when one is due (one clock read a step, only with
 * latency tracking on). */
static int latency_due(struct subtask *st)
{
	uint64_t now = weir_real_now_ns();
	if (now < st->lat_next_ns)
		return 0;
	st->lat_next_ns = now + (uint64_t)st->job->cfg.latency_interval_ms * 1000000u;
	return latency_arrived(st, weir_wall_ns()); /* a source chained to its sink counts it at once */
}

static enum weir_step step_source(struct subtask *st)
{
	struct opinst *src = &st->ops[0];
	bool ready = outputs_ready(st);
	/* unaligned: the barrier goes out without waiting for credit (its
	 * announcement needs none; its marker may take a floating segment) */
	if (st->job->ck_on && (ready || st->job->cfg.unaligned)) {
		uint64_t trig = __atomic_load_n(&st->job->ck_trigger, __ATOMIC_ACQUIRE);
		if (trig > st->ck_last && barrier(st, trig) < 0)
			return WEIR_STEP_DONE;
	}
	if (!ready) {
		st->task.blocked = true; /* backpressured, for metrics (sched/worker.h) */
		flush_all(st);
		return st->failed ? WEIR_STEP_DONE : WEIR_STEP_IDLE;
	}
	if (__builtin_expect(st->job->cfg.latency_interval_ms != 0, 0) && latency_due(st) < 0)
		return WEIR_STEP_DONE;
	src->ctx.idle_until = 0;
	src->ctx.cur_ts = WEIR_TS_NONE;
	uint64_t before = src->records_out;
	int r = src->node->fn.source(&src->ctx);
	if (__builtin_expect(st->job->ck_restored && !before && src->records_out, 0) &&
	    !__atomic_exchange_n(&st->job->first_logged, true, __ATOMIC_ACQ_REL))
		/* the moment recovery ends, for operators (and bench/'s recovery figure) */
		weir_log(WEIR_LOG_INFO, "first record after restoring checkpoint %llu",
			 (unsigned long long)st->job->ck_restored);
	if (r < 0 || st->failed) {
		check_failed:
		if (!st->failed)
			weir_op_fail(st, src, "failed (returned %d without a message)", r);
		return WEIR_STEP_DONE;
	}
	switch (r) {
	case WEIR_SOURCE_END:
		return finish(st);
	case WEIR_SOURCE_MORE:
		after_step(st);
		if (st->failed || flush_due(st) < 0)
			goto check_failed;
		return WEIR_STEP_BUSY;
	case WEIR_SOURCE_IDLE:
		/* A source that names no time is polled again in a millisecond. */
		st->task.wake_at = src->ctx.idle_until ? src->ctx.idle_until : weir_now_ns() + 1000000u;
		after_step(st);
		if (st->failed || go_idle(st) < 0)
			goto check_failed;
		return src->records_out != before ? WEIR_STEP_BUSY : WEIR_STEP_IDLE;
	default:
		weir_op_fail(st, src, "poll returned %d, which is not a weir_source_status", r);
		return WEIR_STEP_DONE;
	}
}

/* Unaligned, at a step's start and every 32 records of a batch: start an
 * announced checkpoint, drain what inputs hold before its barriers, and
 * complete a snapshot whose barriers all came. */
static int unaligned_between(struct subtask *st)
{
	if (unaligned_check(st) < 0)
		return -1;
	for (int i = 0; i < st->nin; i++)
		if (st->in[i].recording && drain(st, &st->in[i]) < 0)
			return -1;
	return st->cow && !st->ck_recording && ck_cow_step(st, COW_SLICE_NS) < 0 ? -1 : 0;
}

/* An event read from input in (a marker, or the end of input): 0 read on,
 * 1 stop reading this input (it is blocked by a barrier, or ended), -1
 * the subtask failed. Events are rare: the records' path stays short. */
static int on_event(struct subtask *st, struct input *in, uint32_t code, uint64_t val)
{
	if (code == WEIR_EV_MARKER + WEIR_KIND_LATENCY)
		return latency_arrived(st, (int64_t)val);
	if (code == WEIR_EV_MARKER + WEIR_KIND_WATERMARK) {
		in->idle = false;
		if ((int64_t)val > in->wm)
			in->wm = (int64_t)val;
	} else if (code == WEIR_EV_MARKER + WEIR_KIND_IDLE) {
		in->idle = true;
	} else if (code == WEIR_EV_MARKER + WEIR_KIND_BARRIER) {
		if (on_barrier(st, in, val) < 0)
			return -1;
		return in->blocked ? 1 : 0;
	} else if (code == WEIR_EV_END) {
		in->ended = true;
		in->blocked = false;
		stop_recording(st, in);
		st->nin_open--;
		/* The producer is done with the channel: its floating segments
		 * go home to the pool now. */
		weir_chan_settle(in->ch);
		/* an ended input's barrier never comes: it counts as arrived */
		if (align_check(st) < 0)
			return -1;
	} else {
		weir_op_fail(st, NULL, "input channel: unknown event %u", code);
		return -1;
	}
	if (inputs_watermark(st) < 0)
		return -1;
	return in->ended ? 1 : 0;
}

static enum weir_step step_inputs(struct subtask *st)
{
	if (__builtin_expect(st->replay.len != 0, 0)) {
		if (!outputs_ready(st)) {
			st->task.blocked = true;
			flush_all(st);
			return st->failed ? WEIR_STEP_DONE : WEIR_STEP_IDLE;
		}
		return replay_step(st);
	}
	/* unaligned: before the output check, since under backpressure is
	 * when a checkpoint must not wait */
	if (st->job->cfg.unaligned && unaligned_between(st) < 0)
		return WEIR_STEP_DONE;
	if (!outputs_ready(st)) {
		st->task.blocked = true;
		flush_all(st);
		return st->failed ? WEIR_STEP_DONE : WEIR_STEP_IDLE;
	}
	if (st->ck_aligning && st->ck_aligning <= __atomic_load_n(&st->job->ck_aborted, __ATOMIC_ACQUIRE)) {
		/* the checkpoint being aligned was aborted (timed out): its
		 * missing barriers may never come, so read every input again */
		for (int i = 0; i < st->nin; i++)
			st->in[i].blocked = false;
		st->ck_aligning = 0;
	}
	uint32_t budget = st->job->cfg.batch;
	bool progress = false, drained = true;
	for (int k = 0; k < st->nin && budget; k++) {
		struct input *in = &st->in[(st->rr_in + k) % st->nin];
		if (in->ended || in->blocked)
			continue;
		while (budget) {
			weir_rec rec;
			uint32_t code;
			uint64_t val;
			bool pulled;
			int r = input_next(in, &rec, &code, &val, &pulled);
			if (r == WEIR_READ_EMPTY)
				break;
			progress = true;
			if (r < 0) {
				weir_op_fail(st, NULL, "input channel: %s", weir_err_msg());
				return WEIR_STEP_DONE;
			}
			if (r == WEIR_READ_EVENT) {
				int e = on_event(st, in, code, val);
				if (e < 0)
					return WEIR_STEP_DONE;
				if (e > 0)
					break;
				continue;
			}
			in->idle = false; /* a record makes an idle input active again */
			budget--;
			if (__builtin_expect(in->recording, 0) && !pulled && ck_record_inflight(st, in, &rec) < 0)
				return WEIR_STEP_DONE;
			in->khash = pulled ? 0 : in->rd.khash;
			if (weir_op_deliver(&st->ops[0], &rec, in) < 0)
				return WEIR_STEP_DONE;
			/* unaligned: a batch of slow records must not delay a
			 * checkpoint (a snapshot between two records is as good
			 * as between two steps) */
			if (st->unaligned && (budget & 31) == 0 && unaligned_between(st) < 0)
				return WEIR_STEP_DONE;
			if (st->overdraft) {
				budget = 0;
				break;
			}
		}
		if (!budget)
			drained = false;
	}
	st->rr_in = (st->rr_in + 1) % st->nin;
	if (st->job->cfg.debloat_ns) {
		uint64_t now = weir_now_ns();
		for (int k = 0; k < st->nin; k++)
			weir_reader_debloat(&st->in[k].rd, now, st->job->cfg.debloat_ns);
	}
	for (int k = 0; k < st->nin; k++) /* the state may have grown past the caches */
		if (st->in[k].keyed)
			weir_op_input_prefetch(&st->ops[0], &st->in[k].rd);
	if (st->nin_open == 0)
		return finish(st);
	after_step(st);
	if (st->failed || (drained ? go_idle(st) : flush_due(st)) < 0)
		return WEIR_STEP_DONE;
	return progress ? WEIR_STEP_BUSY : WEIR_STEP_IDLE;
}

static enum weir_step step(struct subtask *st);

/* The gauges other threads read (task.h): a few plain stores a step. */
static void publish_gauges(struct subtask *st)
{
	uint64_t state = 0, timers = 0;
	for (int i = 0; i < st->nops; i++) {
		const struct opinst *op = &st->ops[i];
		state += op->kv.count + op->keyed.kv.count;
		timers += op->keyed.heap[0].n + op->keyed.heap[1].n;
	}
	__atomic_store_n(&st->m_wm_in, st->is_source ? WEIR_WATERMARK_MIN : st->in_wm, __ATOMIC_RELAXED);
	const struct opinst *tail = &st->ops[st->nops - 1]; /* an assigner's is what it emitted */
	__atomic_store_n(&st->m_wm_out, tail->wm > tail->emitted_wm ? tail->wm : tail->emitted_wm, __ATOMIC_RELAXED);
	__atomic_store_n(&st->m_state, state, __ATOMIC_RELAXED);
	__atomic_store_n(&st->m_timers, timers, __ATOMIC_RELAXED);
}

/* A step, marked: this thread steps st (weir_cur_st, for the crash
 * handlers) in its head operator unless a call further down marks
 * another (st->cur_op, for them and the watchdog); unmarked after. Nested
 * steps (weir_worker_help) put the outer mark back. */
enum weir_step weir_subtask_step(struct weir_task *t)
{
	struct subtask *st = (struct subtask *)t;
	if (st->state == ST_DONE || st->failed)
		return WEIR_STEP_DONE;
	weir_crash_thread_init();
	struct subtask *was = weir_cur_st;
	weir_cur_st = st;
	weir_mark_op(st, &st->ops[0]);
	enum weir_step r = step(st);
	/* the gauges every 16 busy steps, and whenever the task goes idle (a
	 * sampler reads them once a second: they are never older than that) */
	if (!st->job->cfg.no_metrics && (r != WEIR_STEP_BUSY || ++st->m_steps >= 16)) {
		st->m_steps = 0;
		publish_gauges(st);
	}
	weir_mark_op(st, NULL);
	weir_cur_st = was;
	return r;
}

static enum weir_step step(struct subtask *st)
{
	if (st->state == ST_NEW) {
		st->state = ST_RUNNING;
		for (int i = 0; i < st->nops; i++)
			if (weir_op_open(st, &st->ops[i]) < 0)
				return WEIR_STEP_DONE;
		if (st->job->ck_on && ck_restore(st) < 0)
			return WEIR_STEP_DONE;
	}
	if (st->job->ck_on) { /* a checkpoint completed: sinks publish what it covers */
		uint64_t done = __atomic_load_n(&st->job->ck_complete, __ATOMIC_ACQUIRE);
		if (done > st->ck_committed && ck_notify(st, done) < 0)
			return WEIR_STEP_DONE;
	}
	/* steps only move it forward, and processing-time timers fire after a
	 * step for times below a later reading: a record stamped with it is
	 * never behind a window that already fired */
	st->proc_ms = weir_wall_ms();
	enum weir_step r = st->is_source ? step_source(st) : step_inputs(st);
	if (r == WEIR_STEP_IDLE && (st->task.wake_at == 0 || st->task.wake_at > weir_now_ns()))
		after_step(st); /* timers and idleness are due even without input */
	if (st->cow && !st->failed) {
		/* a copy-on-write snapshot in progress: a slice of it between
		 * batches, and come back soon even with no input while chunks
		 * are left (waiting for barriers, input wakes us) */
		int left = ck_cow_step(st, COW_SLICE_NS);
		if (left < 0)
			return WEIR_STEP_DONE;
		if (left && r == WEIR_STEP_IDLE)
			r = WEIR_STEP_BUSY;
	}
	return st->failed ? WEIR_STEP_DONE : r;
}

static bool segment_ready(void *arg)
{
	struct weir_writer *w = arg;
	return weir_chan_can_send(w->ch) ||
	       (w->ch->owned < w->ch->max_owned && weir_pool_free_count(w->ch->pool) > 0);
}

void weir_subtask_waited(struct weir_writer *w, void *arg)
{
	(void)w;
	struct subtask *st = arg;
	if (!st->job->sched.no_times)
		weir_task_block_close(&st->task);
}

/* A writer found neither credit nor a free pool segment in the middle of a
 * record. Run the downstream tasks of this worker (the consumer may be one
 * of them); if none moves, sleep until a consumer hands a segment back
 * (its give rings our doorbell) or 1 ms passes (segments coming home to
 * the pool from other channels ring nobody). */
int weir_subtask_wait_segment(struct weir_writer *w, void *arg)
{
	struct subtask *st = arg;
	struct weir_sched *s = &st->job->sched;
	if (__atomic_load_n(&s->stop, __ATOMIC_ACQUIRE))
		return -1;
	if (!s->no_times) /* backpressured until a segment comes (weir_subtask_waited) */
		weir_task_block_open(&st->task);
	if (!weir_worker_help(s, st->task.worker, st->task.rank + 1))
		weir_worker_wait(s, st->task.worker, segment_ready, w, 1000000u);
	return 0;
}

