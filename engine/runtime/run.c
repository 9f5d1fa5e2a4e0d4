/*
 * engine/runtime.c - run a plan in this process.
 *
 * Deploy: size one segment pool for every channel's credits plus a
 * floating reserve; place subtasks on workers (round robin over all
 * subtasks in vertex order: with parallelism >= workers this is Flink's
 * slot sharing, subtask i of each vertex in slot i mod workers; with less,
 * pipeline stages spread over the cores); connect producer and consumer
 * subtasks with channels whose doorbells are their workers'.
 *
 * Run: each subtask is a sched task. Its step reads a bounded batch from
 * its inputs (a source: one poll), pushes records through its chain and
 * into its writers, and stops early when an output runs out of credit.
 * When its inputs are drained it flushes partly filled segments at once
 * (flush-on-idle: a lone record leaves immediately); under load segments
 * leave full, or after buffer_timeout at the latest. End of input travels
 * in-band (WEIR_EV_END after the last segment on every channel), so a bounded
 * job winds down by itself in channel order.
 *
 * Finish: on success every sink commits (file sinks rename their part
 * files into place); on failure or cancel every sink aborts, so a failed
 * job leaves nothing that looks like complete output. Teardown returns
 * every segment to the pool and checks that none is missing.
 */
#include "runtime/run.h"
#include "runtime/local.h"
#include "checkpoint/restart.h"
#include "checkpoint/take.h"
#include "checkpoint/writer.h"
#include "operators/chain.h"
#include "operators/keyed.h"
#include "checkpoint/store.h"
#include "base/clock.h"
#include "base/err.h"
#include "base/log.h"
#include "base/failpoint.h"
#include "sched/cpu.h"

#include <limits.h>
#include <signal.h>
#include <time.h>
#include <unistd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>


static struct job *volatile running_job;
/* Set by a cancel that came before the job started running (during plan or
 * deploy); checked once the job is visible to the signal handler. */
static volatile sig_atomic_t cancel_pending;

void weir_job_fail(struct job *job, const char *msg)
{
	pthread_mutex_lock(&job->lock);
	/* A cancelled job reports "cancelled", not the errors of the subtasks
	 * it stopped. */
	if (!job->failed && !__atomic_load_n(&job->cancelled, __ATOMIC_ACQUIRE)) {
		job->failed = true;
		snprintf(job->error, sizeof(job->error), "%s", msg);
	}
	pthread_mutex_unlock(&job->lock);
	weir_sched_stop(&job->sched);
}

void weir_local_cancel(void)
{
	cancel_pending = 1;
	struct job *job = running_job;
	if (job) {
		__atomic_store_n(&job->cancelled, 1, __ATOMIC_RELEASE);
		weir_sched_stop(&job->sched);
	}
}

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

static int flush_due(struct subtask *st)
{
	uint64_t now = weir_now_ns(), timeout = st->job->cfg.buffer_timeout_ns;
	for (int i = 0; i < st->nout; i++)
		for (int k = 0; k < st->out[i].nw; k++) {
			struct weir_writer *w = &st->out[i].w[k];
			if (w->seg != WEIR_SEG_NONE && w->used && now - w->first_ns >= timeout &&
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
			return weir_op_idle(st, 0);
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
				weir_op_idle(st, i + 1);
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
			keyed_fire_processing(op, wall - 1);
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
 * flight, which belong to the checkpoint (engine/ckrun.c). */
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
		flush_all(st);
		return st->failed ? WEIR_STEP_DONE : WEIR_STEP_IDLE;
	}
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

static enum weir_step step_inputs(struct subtask *st)
{
	if (__builtin_expect(st->replay.len != 0, 0)) {
		if (!outputs_ready(st)) {
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
				if (code == WEIR_EV_MARKER + WEIR_KIND_WATERMARK) {
					in->idle = false;
					if ((int64_t)val > in->wm)
						in->wm = (int64_t)val;
				} else if (code == WEIR_EV_MARKER + WEIR_KIND_IDLE) {
					in->idle = true;
				} else if (code == WEIR_EV_MARKER + WEIR_KIND_BARRIER) {
					if (on_barrier(st, in, val) < 0)
						return WEIR_STEP_DONE;
					if (in->blocked)
						break;
					continue;
				} else if (code == WEIR_EV_END) {
					in->ended = true;
					in->blocked = false;
					stop_recording(st, in);
					st->nin_open--;
					/* The producer is done with the channel: its
					 * floating segments go home to the pool now. */
					weir_chan_settle(in->ch);
					/* an ended input's barrier never comes: it counts as arrived */
					if (align_check(st) < 0)
						return WEIR_STEP_DONE;
				} else {
					weir_op_fail(st, NULL, "input channel: unknown event %u", code);
					return WEIR_STEP_DONE;
				}
				if (inputs_watermark(st) < 0)
					return WEIR_STEP_DONE;
				if (in->ended)
					break;
				continue;
			}
			in->idle = false; /* a record makes an idle input active again */
			budget--;
			if (__builtin_expect(in->recording, 0) && !pulled && ck_record_inflight(st, in, &rec) < 0)
				return WEIR_STEP_DONE;
			if (weir_op_deliver(&st->ops[0], &rec, in) < 0)
				return WEIR_STEP_DONE;
			/* unaligned: a batch of slow records must not delay a
			 * checkpoint (a snapshot between two records is as good
			 * as between two steps) */
			if (st->job->cfg.unaligned && (budget & 31) == 0 && unaligned_between(st) < 0)
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
	if (st->nin_open == 0)
		return finish(st);
	after_step(st);
	if (st->failed || (drained ? go_idle(st) : flush_due(st)) < 0)
		return WEIR_STEP_DONE;
	return progress ? WEIR_STEP_BUSY : WEIR_STEP_IDLE;
}

static enum weir_step step(struct weir_task *t)
{
	struct subtask *st = (struct subtask *)t;
	if (st->state == ST_DONE || st->failed)
		return WEIR_STEP_DONE;
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

/* A writer found neither credit nor a free pool segment in the middle of a
 * record. Run the downstream tasks of this worker (the consumer may be one
 * of them); if none moves, sleep until a consumer hands a segment back
 * (its give rings our doorbell) or 1 ms passes (segments coming home to
 * the pool from other channels ring nobody). */
static int wait_for_segment(struct weir_writer *w, void *arg)
{
	struct subtask *st = arg;
	struct weir_sched *s = &st->job->sched;
	if (__atomic_load_n(&s->stop, __ATOMIC_ACQUIRE))
		return -1;
	if (!weir_worker_help(s, st->task.worker, st->task.rank + 1))
		weir_worker_wait(s, st->task.worker, segment_ready, w, 1000000u);
	return 0;
}

/* ---- deploy ------------------------------------------------------------ */

/* Where a channel's ends are, in a cluster. */
enum chan_side {
	CS_NONE = 0,		/* neither end here */
	CS_LOCAL,		/* both ends here (in /dev/shm all the same: the pool is) */
	CS_OUT,			/* producer here: created in /dev/shm */
	CS_IN,			/* consumer here: attached after `prepared` */
};

struct link {
	int producer;	/* vertex */
	int consumer;	/* vertex */
	int input;	/* index among the consumer head's inputs */
	enum part_kind part;
	int base;	/* first channel */
};

static int chan_index(const struct link *l, int pc, int i, int j)
{
	return l->base + (l->part == PART_FORWARD ? j : i * pc + j);
}

static struct subtask *subtask_of(struct job *job, int vertex, int index)
{
	int off = 0;
	for (int v = 0; v < vertex; v++)
		off += job->plan.v[v].parallelism;
	return &job->subtasks[off + index];
}

static void ctx_init(struct weir_ctx *c, struct subtask *st, struct opinst *op, void *arg)
{
	memset(c, 0, sizeof(*c));
	c->st = st;
	c->op = op;
	c->arg = arg;
	c->cur_ts = WEIR_TS_NONE;
}

static int deploy(struct job *job, struct link **links_out, int *nlinks_out)
{
	weir_env *env = job->env;
	struct plan *p = &job->plan;
	const struct weir_config *cfg = &job->cfg;

	/* links and channel count */
	int nlinks = 0, nchans = 0;
	for (int v = 0; v < p->nv; v++)
		nlinks += env->nodes[p->v[v].nodes[0]]->nin;
	struct link *links = calloc((size_t)nlinks + 1, sizeof(*links));
	if (!links)
		return weir_err_set("out of memory");
	*links_out = links;
	int li = 0;
	for (int v = 0; v < p->nv; v++) {
		struct node *head = env->nodes[p->v[v].nodes[0]];
		for (int k = 0; k < head->nin; k++) {
			struct link *l = &links[li++];
			l->consumer = v;
			l->producer = p->node_vertex[head->in[k].src];
			l->input = k;
			l->part = p->edge_part[p->edge_base[head->id] + k];
			l->base = nchans;
			nchans += l->part == PART_FORWARD ? p->v[v].parallelism
							  : p->v[v].parallelism * p->v[l->producer].parallelism;
		}
	}
	*nlinks_out = nlinks;

	/* workers and placement */
	int nsub = 0, maxpar = 1;
	for (int v = 0; v < p->nv; v++) {
		nsub += p->v[v].parallelism;
		if (p->v[v].parallelism > maxpar)
			maxpar = p->v[v].parallelism;
	}
	const struct weir_dist *d = job->dist;
	if (d && d->nsubtasks != (uint32_t)nsub)
		return weir_err_set("the job built %d subtasks here, but the placement has %u: its graph differs "
				    "between processes (does weir_job depend on more than its arguments?)", nsub,
				    d->nsubtasks);
	int cpus[1024];
	int ncpus = weir_cpu_allowed(cpus, 1024);
	int nworkers = d ? (int)d->nslots : cfg->workers > 0 ? cfg->workers : ncpus;
	if (!d && nworkers > nsub)
		nworkers = nsub;
	if (weir_sched_init(&job->sched, nworkers, cfg->pin, d ? (int)d->first_cpu : 0, cfg->spin_ns) < 0)
		return -1;
	if (d) {
		/* our workers' doorbells, where other TaskManagers can ring them */
		char name[160];
		snprintf(name, sizeof(name), "%s-tm%u-db", d->prefix, d->tm);
		if (weir_shm_create(&job->dbs, name, sizeof(struct weir_doorbell) * (size_t)nworkers, NULL) < 0)
			return -1;
		weir_sched_share(&job->sched, job->dbs.map);
	}

	/* the pool: every channel's credits plus the floating reserve */
	uint64_t nsegs = (uint64_t)nchans * cfg->credits + cfg->floating;
	if (nsegs > WEIR_SEG_MAX_INDEX)
		return weir_err_set("the job needs %llu segments, more than a pool holds",
				    (unsigned long long)nsegs);
	/* Local mode: the pool lives on the node of our first core. */
	int node = weir_cpu_node(cpus[0]);
	char shm_prefix[64];
	snprintf(shm_prefix, sizeof(shm_prefix), "weir-local-%d", (int)getpid());
	if (d) {
		char name[160];
		snprintf(name, sizeof(name), "%s-tm%u-pool", d->prefix, d->tm);
		if (weir_pool_create_shm(&job->pool, name, d->tm, (uint32_t)nsegs, cfg->segment_size, node,
					 cfg->huge_pages) < 0)
			return weir_err_wrap("segment pool");
	} else if (cfg->shm) {
		/* what crashed local runs left behind: files whose owner died */
		weir_shm_sweep("weir-local-");
		char name[96];
		snprintf(name, sizeof(name), "%s-pool", shm_prefix);
		if (weir_pool_create_shm(&job->pool, name, 0, (uint32_t)nsegs, cfg->segment_size, node,
					 cfg->huge_pages) < 0)
			return weir_err_wrap("segment pool");
	} else if (weir_pool_init(&job->pool, 0, (uint32_t)nsegs, cfg->segment_size, node) < 0) {
		return weir_err_wrap("segment pool");
	}

	job->subtasks = calloc((size_t)nsub, sizeof(struct subtask));
	job->chans = calloc((size_t)nchans + 1, sizeof(struct weir_chan));
	job->chan_side = calloc((size_t)nchans + 1, 1);
	if (!job->subtasks || !job->chans || !job->chan_side)
		return weir_err_set("out of memory");
	job->nsub = nsub;

	/* subtasks, their operator chains, and their workers */
	int s = 0;
	for (int v = 0; v < p->nv; v++) {
		struct vertex *vx = &p->v[v];
		for (int i = 0; i < vx->parallelism; i++, s++) {
			struct subtask *st = &job->subtasks[s];
			st->v = vx;
			st->index = i;
			if (d && d->sub_tm[s] != d->tm)
				continue; /* runs on another TaskManager */
			if (d && d->sub_slot[s] >= (uint32_t)nworkers)
				return weir_err_set("subtask %d is placed on slot %u of %d", s, d->sub_slot[s], nworkers);
			st->task.step = step;
			st->task.rank = v; /* vertex ids are a topological order */
			st->job = job;
			st->v = vx;
			st->index = i;
			st->nops = vx->nnodes;
			st->ops = calloc((size_t)vx->nnodes, sizeof(struct opinst));
			if (!st->ops)
				return weir_err_set("out of memory");
			for (int k = 0; k < vx->nnodes; k++) {
				struct opinst *op = &st->ops[k];
				op->node = env->nodes[vx->nodes[k]];
				op->next = k + 1 < vx->nnodes ? &st->ops[k + 1] : NULL;
				op->index = k;
				ctx_init(&op->ctx, st, op, op->node->arg);
				weir_kv_init(&op->kv);
				keyed_init(&op->keyed);
				op->wm = WEIR_WATERMARK_MIN;
				op->max_ts = INT64_MIN;
				op->emitted_wm = WEIR_WATERMARK_MIN;
			}
			st->is_source = st->ops[0].node->kind == OP_SOURCE;
			st->in_wm = WEIR_WATERMARK_MIN;
			if (weir_sched_add(&job->sched, d ? (int)d->sub_slot[s] : s % nworkers, &st->task) < 0)
				return -1;
		}
	}

	/* channels */
	for (int l = 0; l < nlinks; l++) {
		struct link *lk = &links[l];
		int pp = p->v[lk->producer].parallelism, pc = p->v[lk->consumer].parallelism;
		for (int i = 0; i < pp; i++)
			for (int j = 0; j < pc; j++) {
				if (lk->part == PART_FORWARD && i != j)
					continue;
				struct subtask *prod = subtask_of(job, lk->producer, i);
				struct subtask *cons = subtask_of(job, lk->consumer, j);
				int c = chan_index(lk, pc, i, j);
				struct weir_chan *ch = &job->chans[c];
				job->nchans = c + 1 > job->nchans ? c + 1 : job->nchans;
				if (d) {
					uint32_t ptm = d->sub_tm[prod - job->subtasks], ctm = d->sub_tm[cons - job->subtasks];
					if (ptm != d->tm && ctm != d->tm)
						continue;
					if (ptm != ctm) {
						job->chan_side[c] = ptm == d->tm ? CS_OUT : CS_IN;
						if (ptm != d->tm)
							continue; /* attached once its producer made it */
						char name[160];
						snprintf(name, sizeof(name), "%s-ch%d", d->prefix, c);
						if (weir_chan_create_shm(ch, name, &job->pool, cfg->credits, cfg->floating) < 0)
							return -1;
						ch->producer_db = weir_sched_doorbell(&job->sched, prod->task.worker);
						continue; /* the consumer's doorbell: after `prepared` */
					}
				}
				job->chan_side[c] = CS_LOCAL;
				if (cfg->shm) {
					/* both ends in this process: one handle, our workers' doorbells */
					char name[160];
					/* in a cluster, under the job's prefix, so that a sweep of the
					 * cluster's files finds them after a TaskManager's crash */
					if (d)
						snprintf(name, sizeof(name), "%s-ch%d", d->prefix, c);
					else
						snprintf(name, sizeof(name), "%s-ch-%d", shm_prefix, c);
					if (weir_chan_create_shm(ch, name, &job->pool, cfg->credits, cfg->floating) < 0)
						return -1;
					ch->consumer_db = weir_sched_doorbell(&job->sched, cons->task.worker);
					ch->producer_db = weir_sched_doorbell(&job->sched, prod->task.worker);
				} else if (weir_chan_init(ch, &job->pool, cfg->credits, cfg->floating,
							  weir_sched_doorbell(&job->sched, cons->task.worker),
							  weir_sched_doorbell(&job->sched, prod->task.worker)) < 0) {
					return -1;
				}
				job->nchans = c + 1 > job->nchans ? c + 1 : job->nchans;
			}
	}

	/* inputs and outputs of every subtask */
	for (s = 0; s < nsub; s++) {
		struct subtask *st = &job->subtasks[s];
		if (!st->ops)
			continue; /* another TaskManager's */
		int v = st->v->id;
		struct node *head = st->ops[0].node;
		int nin = 0, nout = 0;
		for (int l = 0; l < nlinks; l++) {
			if (links[l].consumer == v)
				nin += links[l].part == PART_FORWARD ? 1 : p->v[links[l].producer].parallelism;
			if (links[l].producer == v)
				nout++;
		}
		st->in = calloc((size_t)nin + 1, sizeof(struct input));
		st->out = calloc((size_t)nout + 1, sizeof(struct output));
		if (!st->in || !st->out)
			return weir_err_set("out of memory");
		for (int l = 0; l < nlinks; l++) {
			struct link *lk = &links[l];
			int pp = p->v[lk->producer].parallelism, pc = p->v[lk->consumer].parallelism;
			if (lk->consumer == v) {
				struct edge *e = &head->in[lk->input];
				for (int i = 0; i < pp; i++) {
					if (lk->part == PART_FORWARD && i != st->index)
						continue;
					struct input *in = &st->in[st->nin++];
					in->ch = &job->chans[chan_index(lk, pc, i, st->index)];
					weir_reader_init(&in->rd, in->ch, cfg->max_record);
					in->key_fn = e->key_fn;
					in->side = e->side;
					in->edge = lk->input;
					in->keyed = lk->part == PART_HASH;
					in->broadcast = lk->part == PART_BROADCAST;
					in->wm = WEIR_WATERMARK_MIN;
					ctx_init(&in->keyctx, st, &st->ops[0], e->key_arg);
				}
			}
			if (lk->producer == v) {
				struct output *o = &st->out[st->nout];
				struct edge *e = &env->nodes[p->v[lk->consumer].nodes[0]]->in[lk->input];
				o->tag = e->tag;
				o->part = lk->part;
				o->key_fn = e->key_fn;
				ctx_init(&o->keyctx, st, &st->ops[st->nops - 1], e->key_arg);
				weir_kg_map_init(&o->kgmap, cfg->max_parallelism);
				o->nw = lk->part == PART_FORWARD ? 1 : pc;
				o->rr = (uint32_t)(st->index % o->nw);
				o->w = calloc((size_t)o->nw, sizeof(struct weir_writer));
				if (!o->w)
					return weir_err_set("out of memory");
				st->nout++; /* only now: teardown walks o->w */
				for (int j = 0; j < o->nw; j++) {
					int c = chan_index(lk, pc, st->index, lk->part == PART_FORWARD ? st->index : j);
					weir_writer_init(&o->w[j], &job->chans[c]);
					o->w[j].overdraft = &st->overdraft;
					o->w[j].wait_for_segment = wait_for_segment;
					o->w[j].wait_arg = st;
				}
			}
		}
		st->nin_open = st->nin;
	}
	return 0;
}

/* dist: map TaskManager tm's job pool and doorbells (once). */
static int map_remote(struct job *job, uint32_t tm)
{
	const struct weir_dist *d = job->dist;
	if (job->rpools[tm].hdr)
		return 0;
	char name[160];
	snprintf(name, sizeof(name), "%s-tm%u-pool", d->prefix, tm);
	if (weir_pool_attach(&job->rpools[tm], name, tm) < 0)
		return -1;
	snprintf(name, sizeof(name), "%s-tm%u-db", d->prefix, tm);
	return weir_shm_open(&job->rdbs[tm], name, sizeof(struct weir_doorbell));
}

static struct weir_doorbell *remote_db(struct job *job, uint32_t tm, uint32_t slot)
{
	struct weir_shm *m = &job->rdbs[tm];
	if ((size_t)(slot + 1) * sizeof(struct weir_doorbell) > m->len)
		return NULL;
	return (struct weir_doorbell *)m->map + slot;
}

/* dist, after `prepared`: every TaskManager has created its outgoing
 * channels. Attach the incoming ones, and point every cross-process
 * channel at the other side's worker doorbell. */
static int attach_remote(struct job *job, const struct link *links, int nlinks)
{
	const struct weir_dist *d = job->dist;
	struct plan *p = &job->plan;
	job->rpools = calloc(256, sizeof(struct weir_pool));
	job->rdbs = calloc(256, sizeof(struct weir_shm));
	if (!job->rpools || !job->rdbs)
		return weir_err_set("out of memory");
	for (int i = 0; i < 256; i++)
		job->rdbs[i].fd = -1;
	for (int l = 0; l < nlinks; l++) {
		const struct link *lk = &links[l];
		int pp = p->v[lk->producer].parallelism, pc = p->v[lk->consumer].parallelism;
		for (int i = 0; i < pp; i++)
			for (int j = 0; j < pc; j++) {
				if (lk->part == PART_FORWARD && i != j)
					continue;
				int c = chan_index(lk, pc, i, j);
				if (job->chan_side[c] != CS_IN && job->chan_side[c] != CS_OUT)
					continue;
				size_t ps = (size_t)(subtask_of(job, lk->producer, i) - job->subtasks);
				size_t cs = (size_t)(subtask_of(job, lk->consumer, j) - job->subtasks);
				uint32_t other = job->chan_side[c] == CS_IN ? d->sub_tm[ps] : d->sub_tm[cs];
				if (map_remote(job, other) < 0)
					return weir_err_wrap("taskmanager %u", other);
				struct weir_chan *ch = &job->chans[c];
				struct weir_doorbell *db;
				if (job->chan_side[c] == CS_IN) {
					char name[160];
					snprintf(name, sizeof(name), "%s-ch%d", d->prefix, c);
					if (weir_chan_attach_shm(ch, name, &job->rpools[other]) < 0)
						return -1;
					ch->consumer_db = weir_sched_doorbell(&job->sched, job->subtasks[cs].task.worker);
					db = remote_db(job, other, d->sub_slot[ps]);
					if (!db)
						return weir_err_set("taskmanager %u: no doorbell for slot %u", other, d->sub_slot[ps]);
					ch->producer_db = db;
				} else {
					db = remote_db(job, other, d->sub_slot[cs]);
					if (!db)
						return weir_err_set("taskmanager %u: no doorbell for slot %u", other, d->sub_slot[cs]);
					ch->consumer_db = db;
				}
			}
	}
	return 0;
}

/* ---- teardown ----------------------------------------------------------- */

/* Close what never finished, with its output going nowhere, so that user
 * code can free what it holds. */
static void close_all(struct job *job)
{
	for (int s = 0; s < job->nsub; s++) {
		struct subtask *st = &job->subtasks[s];
		st->discarding = true;
		for (int k = 0; st->ops && k < st->nops; k++)
			weir_op_close(st, &st->ops[k]);
	}
}

/* Give every segment back to the pool: readers, writers, channels. Returns
 * how many are missing, which is a bug in ownership. */
static int release_data(struct job *job)
{
	for (int s = 0; s < job->nsub; s++) {
		struct subtask *st = &job->subtasks[s];
		for (int i = 0; i < st->nin; i++)
			weir_reader_release(&st->in[i].rd);
		for (int i = 0; i < st->nout; i++)
			for (int k = 0; k < st->out[i].nw; k++)
				weir_writer_discard(&st->out[i].w[k]);
	}
	for (int c = 0; c < job->nchans; c++)
		weir_chan_release(&job->chans[c]);
	if (!job->pool.hdr)
		return 0;
	return (int)job->pool.nsegs - (int)weir_pool_free_count(&job->pool);
}

/* Commit every sink; if one fails, abort all of them, the committed ones
 * included (abort takes back a commit), so that a failed job never leaves
 * output that looks complete. Returns whether the job succeeded. */
static bool finish_sinks(struct job *job, bool success)
{
	for (int s = 0; s < job->nsub && success; s++) {
		struct subtask *st = &job->subtasks[s];
		for (int k = 0; st->ops && k < st->nops && success; k++) {
			struct opinst *op = &st->ops[k];
			if (!op->opened || !op->node->hooks.commit)
				continue;
			if (weir_failpoint("job.commit") < 0 || op->node->hooks.commit(&op->ctx) < 0) {
				char msg[1024];
				snprintf(msg, sizeof(msg), "operator '%s' (subtask %d/%d): commit: %s", op->node->name,
					 st->index + 1, st->v->parallelism, weir_err_msg());
				weir_job_fail(job, msg);
				success = false;
			}
		}
	}
	for (int s = 0; s < job->nsub && !success; s++) {
		struct subtask *st = &job->subtasks[s];
		for (int k = 0; st->ops && k < st->nops; k++) {
			struct opinst *op = &st->ops[k];
			if (op->opened && op->node->hooks.abort)
				op->node->hooks.abort(&op->ctx);
		}
	}
	return success;
}

static void release_rest(struct job *job)
{
	for (int s = 0; s < job->nsub; s++) {
		struct subtask *st = &job->subtasks[s];
		for (int i = 0; i < st->nout; i++)
			free(st->out[i].w);
		ck_cow_free(st); /* a snapshot the subtask never finished */
		snap_free(&st->replay);
		for (int i = 0; st->in && i < st->nin; i++)
			snap_free(&st->in[i].pend);
		for (int k = 0; st->ops && k < st->nops; k++) {
			struct opinst *op = &st->ops[k];
			if (op->opened && op->node->hooks.release)
				op->node->hooks.release(&op->ctx);
			weir_kv_release(&op->kv);
			keyed_release(&op->keyed);
			free(op->scratch);
		}
		free(st->ops);
		free(st->in);
		free(st->out);
		free(st->restore);
	}
	weir_pool_release(&job->pool);
	for (int i = 0; job->rpools && i < 256; i++) {
		if (job->rpools[i].hdr)
			weir_pool_release(&job->rpools[i]);
		if (job->rdbs[i].map)
			weir_shm_close(&job->rdbs[i]);
	}
	free(job->rpools);
	free(job->rdbs);
	if (job->dbs.map)
		weir_shm_close(&job->dbs);
	free(job->chan_side);
	free(job->subtasks);
	free(job->chans);
	weir_sched_release(&job->sched);
	weir_plan_release(&job->plan);
	pthread_mutex_destroy(&job->lock);
}

static void print_summary(struct job *job, bool ok)
{
	double ms = (double)(job->end_ns - job->start_ns) / 1e6;
	fprintf(stderr, "weir: job %s in %.1f ms\n", ok ? "finished" : "failed", ms);
	for (int n = 0; n < job->env->nnodes; n++) {
		struct node *nd = job->env->nodes[n];
		uint64_t in = 0, out = 0;
		int par = 0;
		for (int s = 0; s < job->nsub; s++) {
			struct subtask *st = &job->subtasks[s];
			for (int k = 0; st->ops && k < st->nops; k++)
				if (st->ops[k].node == nd) {
					in += st->ops[k].records_in;
					out += st->ops[k].records_out;
					par++;
				}
		}
		fprintf(stderr, "  %-24s parallelism %-3d in %-12llu out %llu\n", nd->name, par,
			(unsigned long long)in, (unsigned long long)out);
	}
	for (int w = 0; w < job->sched.nworkers; w++) {
		struct weir_worker *wk = &job->sched.workers[w];
		fprintf(stderr, "  worker %d (cpu %d): %d tasks, %llu rounds, %llu sleeps, %llu wake-ups sent to it\n",
			w, wk->cpu, wk->ntasks, (unsigned long long)wk->stats.rounds,
			(unsigned long long)wk->stats.sleeps, (unsigned long long)wk->db->wakeups);
	}
}

/* Give each subtask its snapshots from checkpoint m: its own at the same
 * parallelism; after a rescale, every snapshot of its vertex (keyed state
 * moves by key group, each subtask keeping the groups it owns now), with
 * the private state of old subtask i going to new subtask i mod the new
 * parallelism. Sources keep their parallelism: their positions do not
 * split or merge. 0, or -1 when one is missing or cannot be rescaled. */
static int assign_restore(struct job *job, const struct weir_ckpt_meta *m)
{
	for (int s = 0; s < job->nsub; s++) {
		struct subtask *st = &job->subtasks[s];
		if (job->dist && !st->ops)
			continue; /* runs elsewhere */
		const char *name = job->env->nodes[st->v->nodes[0]]->name;
		uint32_t oldp = 0, n = 0;
		for (uint32_t i = 0; i < m->nfiles; i++)
			if (m->files[i].vertex == (uint32_t)st->v->id) {
				if (oldp && m->files[i].parallelism != oldp)
					return weir_err_set("checkpoint %llu is malformed: '%s' has snapshots at two "
							    "parallelisms", (unsigned long long)m->id, name);
				oldp = m->files[i].parallelism;
				n++;
			}
		if (!oldp || n != oldp)
			return weir_err_set("checkpoint %llu holds no complete snapshot of '%s' (was the job's graph "
					    "different, or does its chaining change with the parallelism? An operator "
					    "chained to a neighbour of fixed parallelism at one parallelism and not at "
					    "another cannot be restored)", (unsigned long long)m->id, name);
		bool same = oldp == (uint32_t)st->v->parallelism;
		if (!same && job->env->nodes[st->v->nodes[0]]->kind == OP_SOURCE)
			return weir_err_set("source '%s' had parallelism %u in checkpoint %llu and has %d now: a source "
					    "keeps its parallelism across a restore (set it with weir_set_parallelism)",
					    name, oldp, (unsigned long long)m->id, st->v->parallelism);
		st->restore = calloc(same ? 1 : oldp, sizeof(*st->restore));
		if (!st->restore)
			return weir_err_set("out of memory");
		for (uint32_t i = 0; i < m->nfiles; i++) {
			const struct weir_ckpt_file *f = &m->files[i];
			if (f->vertex != (uint32_t)st->v->id || (same && f->index != (uint32_t)st->index))
				continue;
			st->restore[st->nrestore++] = (struct restore_piece){
				f->data, (size_t)f->size, f->index, f->index % (uint32_t)st->v->parallelism == (uint32_t)st->index
			};
		}
		if (!st->nrestore)
			return weir_err_set("checkpoint %llu holds no snapshot of '%s' subtask %d/%d",
					    (unsigned long long)m->id, name, st->index + 1, st->v->parallelism);
	}
	job->ck_restored = m->id;
	job->ck_trigger = job->ck_complete = m->id;
	return 0;
}

static int check_nodes(struct job *job, bool restoring)
{
	for (int n = 0; n < job->env->nnodes; n++) {
		struct node *nd = job->env->nodes[n];
		if (nd->hooks.check && nd->hooks.check(nd->arg, restoring) < 0)
			return -1;
	}
	return 0;
}

/* One run of the job; with base, checkpoints go there, and from (when not
 * NULL) is the checkpoint it starts from. */
static int run_once(weir_env *env, const struct weir_config *cfg, bool print, const char *base,
		    const struct weir_ckpt_meta *from, bool restart, bool *refused)
{
	struct job job;
	memset(&job, 0, sizeof(job));
	job.env = env;
	job.cfg = *cfg;
	job.ck_on = base != NULL;
	pthread_mutex_init(&job.lock, NULL);
	struct link *links = NULL;
	int nlinks = 0;

	if (weir_plan_build(&job.plan, env, cfg) < 0) {
		pthread_mutex_destroy(&job.lock);
		return -1;
	}
	int bad = 0;
	/* a restart finds what earlier attempts published; restores sort it out */
	if (check_nodes(&job, from != NULL || cfg->restore_from || restart) < 0 ||
	    (job.ck_on && ck_check_sources(&job) < 0))
		bad = *refused = true; /* the same again on a restart: none */
	else if (deploy(&job, &links, &nlinks) < 0)
		bad = 1;
	else if (from && assign_restore(&job, from) < 0)
		bad = *refused = true; /* not this job's checkpoint */
	else if (job.ck_on && cfg->checkpoint_interval_ms && weir_local_ck_start(&job, base, from ? from->id : 0) < 0)
		bad = 1;
	if (bad) {
		weir_err_wrap("deploy");
		char msg[WEIR_ERR_MAX];
		snprintf(msg, sizeof(msg), "%s", weir_err_msg());
		close_all(&job);
		release_data(&job);
		finish_sinks(&job, false);
		release_rest(&job);
		free(links);
		return weir_err_set("%s", msg);
	}
	free(links);
	job.start_ns = weir_now_ns();
	running_job = &job;
	if (cancel_pending) /* a cancel came during plan or deploy */
		weir_local_cancel();
	if (weir_sched_start(&job.sched) < 0)
		weir_job_fail(&job, weir_err_msg());
	weir_sched_join(&job.sched);
	running_job = NULL;
	job.end_ns = weir_now_ns();
	weir_local_ck_stop(&job);

	bool all_done = true;
	for (int s = 0; s < job.nsub; s++)
		all_done &= job.subtasks[s].state == ST_DONE;
	bool cancelled = __atomic_load_n(&job.cancelled, __ATOMIC_ACQUIRE);
	bool success = !job.failed && !cancelled && all_done;
	close_all(&job);
	/* Count segments before anything commits: a leak is a bug, and a
	 * job with a bug must not publish output. */
	int leaked = release_data(&job);
	if (success && leaked) {
		char msg[128];
		snprintf(msg, sizeof(msg), "internal error: %d segments were not returned to the pool", leaked);
		weir_job_fail(&job, msg);
		success = false;
	}
	success = finish_sinks(&job, success);
	if (print && !cfg->quiet)
		print_summary(&job, success);
	char err[1024] = "";
	if (job.failed)
		snprintf(err, sizeof(err), "%s", job.error);
	else if (cancelled)
		snprintf(err, sizeof(err), "cancelled");
	else if (!success)
		snprintf(err, sizeof(err), "internal error: the job stopped before every subtask finished");
	release_rest(&job);
	if (success)
		return 0;
	return weir_err_set("%s", err);
}

int weir_run_local(weir_env *env, const struct weir_config *cfg, bool print)
{
	if (!cfg->checkpoint_interval_ms && !cfg->restore_from) {
		bool refused = false;
		int rc = run_once(env, cfg, print, NULL, NULL, false, &refused);
		cancel_pending = 0;
		return rc;
	}
	/* this run's checkpoints: a folder of its own, so that a new run never
	 * restores an old one's by accident (--from-checkpoint does, asked) */
	char base[PATH_MAX];
	time_t now = time(NULL);
	struct tm tmv;
	localtime_r(&now, &tmv);
	snprintf(base, sizeof(base), "%s/job-%04d%02d%02d-%02d%02d%02d-%d", cfg->checkpoint_dir, tmv.tm_year + 1900,
		 tmv.tm_mon + 1, tmv.tm_mday, tmv.tm_hour, tmv.tm_min, tmv.tm_sec, (int)getpid());
	if (cfg->checkpoint_interval_ms)
		fprintf(stderr, "weir: checkpoints every %u ms in %s\n", cfg->checkpoint_interval_ms, base);
	struct weir_ckpt_meta m;
	char report[2048];
	memset(&m, 0, sizeof(m));
	if (cfg->restore_from) {
		int r = weir_ckpt_latest(cfg->restore_from, &m, report, sizeof(report));
		if (r <= 0)
			return r == 0 ? weir_err_set("no complete checkpoint in '%s'", cfg->restore_from)
				      : weir_err_wrap("refusing to start");
		fprintf(stderr, "weir: restoring checkpoint %llu from %s\n", (unsigned long long)m.id, cfg->restore_from);
	}
	struct ck_restart strategy;
	ck_restart_init(&strategy, cfg->restart_attempts, cfg->restart_delay_ms, cfg->restart_max_delay_ms);
	for (uint32_t attempt = 0;; attempt++) {
		bool refused = false;
		int rc = run_once(env, cfg, print, base, m.id ? &m : NULL, attempt > 0, &refused);
		weir_ckpt_meta_free(&m);
		bool cancelled = cancel_pending;
		uint32_t delay_ms;
		if (rc == 0 || cancelled || refused || !ck_restart_next(&strategy, &delay_ms)) {
			cancel_pending = 0;
			return rc;
		}
		char why[WEIR_ERR_MAX];
		snprintf(why, sizeof(why), "%s", weir_err_msg());
		if (delay_ms) {
			struct timespec ts = { delay_ms / 1000, (long)(delay_ms % 1000) * 1000000 };
			nanosleep(&ts, NULL); /* the restart strategy's delay */
		}
		/* the newest good checkpoint of this run, else the one it started from */
		int r = weir_ckpt_latest(base, &m, report, sizeof(report));
		if (r == 0 && cfg->restore_from)
			r = weir_ckpt_latest(cfg->restore_from, &m, report, sizeof(report));
		if (r < 0)
			return weir_err_wrap("the job failed (%s), and cannot restart", why);
		fprintf(stderr, "weir: job failed: %s; restart %u of %u from %s\n", why, attempt + 1,
			cfg->restart_attempts, r ? "its latest checkpoint" : "the beginning (no checkpoint completed)");
		if (r)
			fprintf(stderr, "weir: restoring checkpoint %llu\n", (unsigned long long)m.id);
	}
}

/* The jobs weir_run_dist runs now, so that weir_run_dist_cancel can reach
 * them from the control thread. */
static pthread_mutex_t dist_lock = PTHREAD_MUTEX_INITIALIZER;
static struct {
	const struct weir_dist *d;
	struct job *job;
} dist_jobs[16];

static void dist_register(const struct weir_dist *d, struct job *job)
{
	pthread_mutex_lock(&dist_lock);
	for (int i = 0; i < 16; i++) {
		if (job && !dist_jobs[i].d) { /* register in a free entry */
			dist_jobs[i].d = d;
			dist_jobs[i].job = job;
			break;
		}
		if (!job && dist_jobs[i].d == d) { /* unregister */
			dist_jobs[i].d = NULL;
			dist_jobs[i].job = NULL;
			break;
		}
	}
	pthread_mutex_unlock(&dist_lock);
}

int weir_run_dist_checkpoint(const struct weir_dist *d, enum ck_step step, uint64_t id, const char *dir)
{
	int rc = weir_err_set("the job is not running here");
	pthread_mutex_lock(&dist_lock); /* the job stays registered (and its coordinator up) meanwhile */
	for (int i = 0; i < 16; i++)
		if (dist_jobs[i].d == d)
			rc = ck_writer_step(dist_jobs[i].job, step, id, dir);
	pthread_mutex_unlock(&dist_lock);
	return rc;
}

void weir_run_dist_cancel(const struct weir_dist *d)
{
	pthread_mutex_lock(&dist_lock);
	for (int i = 0; i < 16; i++)
		if (dist_jobs[i].d == d) {
			__atomic_store_n(&dist_jobs[i].job->cancelled, 1, __ATOMIC_RELEASE);
			weir_sched_stop(&dist_jobs[i].job->sched);
		}
	pthread_mutex_unlock(&dist_lock);
}

int weir_run_dist(weir_env *env, const struct weir_config *cfg, struct weir_dist *d)
{
	struct job job;
	memset(&job, 0, sizeof(job));
	job.env = env;
	job.cfg = *cfg;
	job.cfg.shm = true;
	job.dist = d;
	job.dbs.fd = -1;
	pthread_mutex_init(&job.lock, NULL);
	struct link *links = NULL;
	int nlinks = 0;
	char err[1024] = "";
	bool success = false;

	if (weir_plan_build(&job.plan, env, cfg) < 0) {
		pthread_mutex_destroy(&job.lock);
		d->prepared(d->arg);
		d->done(d->arg, false, weir_err_msg());
		return -1;
	}
	struct weir_ckpt_meta from;
	memset(&from, 0, sizeof(from));
	job.ck_on = d->ck_on;
	if (check_nodes(&job, d->ck_restore || d->restarted) < 0 || (job.ck_on && ck_check_sources(&job) < 0)) {
		snprintf(err, sizeof(err), "deploy: %s", weir_err_msg());
		d->refused = true; /* the same again on a restart */
		d->prepared(d->arg);
		goto out;
	}
	if (deploy(&job, &links, &nlinks) < 0) {
		snprintf(err, sizeof(err), "deploy: %s", weir_err_msg());
		d->prepared(d->arg); /* the others wait for us: say we are there, then fail */
		goto out;
	}
	if (d->ck_restore) { /* the JobManager checked it; every byte is checked again here */
		char report[2048] = "";
		int r = weir_ckpt_latest(d->ck_restore, &from, report, sizeof(report));
		if (r <= 0 || assign_restore(&job, &from) < 0) {
			snprintf(err, sizeof(err), "restore from '%s': %s", d->ck_restore,
				 r == 0 ? "no complete checkpoint there" : weir_err_msg());
			d->refused = r > 0; /* read and sound, but not this job's: the same again */
			d->prepared(d->arg);
			goto out;
		}
	}
	if (job.ck_on && ck_writer_start(&job, from.id, d->ck_acked, d->arg) < 0) {
		snprintf(err, sizeof(err), "deploy: %s", weir_err_msg());
		d->prepared(d->arg);
		goto out;
	}
	dist_register(d, &job);
	if (d->prepared(d->arg) < 0) {
		snprintf(err, sizeof(err), "aborted before it started");
		goto out;
	}
	if (attach_remote(&job, links, nlinks) < 0) {
		snprintf(err, sizeof(err), "connect to the other taskmanagers: %s", weir_err_msg());
		goto out;
	}
	job.start_ns = weir_now_ns();
	if (weir_sched_start(&job.sched) < 0)
		weir_job_fail(&job, weir_err_msg());
	weir_sched_join(&job.sched);
	job.end_ns = weir_now_ns();
	bool all_done = true;
	for (int s = 0; s < job.nsub; s++)
		if (job.subtasks[s].ops)
			all_done &= job.subtasks[s].state == ST_DONE;
	success = !job.failed && all_done;
	if (job.failed)
		snprintf(err, sizeof(err), "%s", job.error);
	else if (!all_done || __atomic_load_n(&job.cancelled, __ATOMIC_ACQUIRE))
		snprintf(err, sizeof(err), "cancelled");
out:
	free(links);
	close_all(&job);
	/* every local subtask is over, but other TaskManagers may still read
	 * segments of ours: the decision waits for all of them */
	int decision = d->done(d->arg, success, err);
	dist_register(d, NULL);
	ck_writer_stop(&job);
	weir_ckpt_meta_free(&from);
	int leaked = release_data(&job);
	if (decision == 1 && leaked) {
		snprintf(err, sizeof(err), "internal error: %d segments were not returned to the pool", leaked);
		decision = 0;
	}
	success = finish_sinks(&job, decision == 1 && success);
	release_rest(&job);
	if (success)
		return 0;
	return weir_err_set("%s", err[0] ? err : "aborted");
}
