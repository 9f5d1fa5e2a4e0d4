/*
 * engine/connectors/two_phase.c - sinks with two phases (weir/connector.h):
 * the engine's side of weir_sink_two_phase, on the operator hooks of
 * graph.h.
 *
 * Each subtask keeps its committables not yet committed, oldest first,
 * each with the checkpoint it belongs to:
 *
 *   snapshot(id)   prepare(id) adds id's committables; the snapshot holds
 *                  every one still pending (those of older checkpoints whose
 *                  completion was not heard yet too). The final snapshot at
 *                  the end of input (id 0) prepares as ck_last + 1.
 *   notify(id)     commits, in order, every pending one of a checkpoint <= id
 *   restore(p, id) commits every one p holds (checkpoint id completed, and p
 *                  holds nothing newer), then recover(id, old subtask)
 *   commit         the job succeeded: without checkpoints prepare(0) now,
 *                  then commit everything pending
 *   abort          the job failed: with checkpoints, commit what a complete
 *                  checkpoint covers (its announcement may have just come)
 *                  and leave the rest to the next attempt's recover (it may
 *                  belong to a checkpoint completed meanwhile); without,
 *                  prepare(0) if it was not, and abort everything, committed
 *                  or not (another sink's commit failed after ours)
 *
 * Snapshot bytes: [u32 "WSC1"][u32 n] then n x [u64 id][u32 len][len bytes].
 */
#include "operators/chain.h"
#include "state/snapshot.h"
#include "base/err.h"
#include "base/failpoint.h"
#include "base/log.h"

#include <weir/connector.h>

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TP_MAGIC 0x31435357u /* "WSC1" */

struct tp_item {
	uint64_t id;
	uint32_t len;
	uint8_t *data;
};

/* per subtask (ctx->engine) */
struct tp_sub {
	struct tp_item *v;
	int n, cap;
	bool preparing;		/* inside prepare: weir_committable_add takes them */
	uint64_t prep_id;
	bool prepared_end;	/* without checkpoints: prepare(0) done */
	bool committed;		/* the job's final commit went through (without
				 * checkpoints its committables stay: an abort may undo them) */
};

/* The node's arg is the user's; the impl hangs off the node (graph.h). */
static const weir_sink_impl *impl_of(weir_ctx *ctx) { return ctx->op->node->sink2; }

static void tp_free_items(struct tp_sub *t, int from)
{
	for (int i = from; i < t->n; i++)
		free(t->v[i].data);
}

int weir_committable_add(weir_ctx *ctx, const void *data, uint32_t len)
{
	struct tp_sub *t = ctx->engine;
	if (!t || !t->preparing)
		return weir_fail(ctx, "weir_committable_add outside the sink's prepare");
	if (len > WEIR_COMMITTABLE_MAX)
		return weir_fail(ctx, "a committable of %u bytes (at most %u)", len, WEIR_COMMITTABLE_MAX);
	if (t->n == t->cap) {
		int cap = t->cap ? 2 * t->cap : 8;
		struct tp_item *v = realloc(t->v, sizeof(*v) * (size_t)cap);
		if (!v)
			return weir_fail(ctx, "out of memory");
		t->v = v;
		t->cap = cap;
	}
	uint8_t *d = malloc(len ? len : 1);
	if (!d)
		return weir_fail(ctx, "out of memory");
	if (len)
		memcpy(d, data, len);
	t->v[t->n++] = (struct tp_item){ .id = t->prep_id, .len = len, .data = d };
	return 0;
}

bool weir_ctx_checkpointing(const weir_ctx *ctx) { return ctx->st->job->ck_on; }
const char *weir_ctx_checkpoint_dir(const weir_ctx *ctx) { return ctx->st->job->ck_folder; }
bool weir_ctx_failing(const weir_ctx *ctx) { return ctx->st->discarding || ctx->st->failed; }

static char check_msg[1024];

int weir_check_fail(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(check_msg, sizeof(check_msg), fmt, ap);
	va_end(ap);
	return -1;
}

static int prepare(weir_ctx *ctx, uint64_t id)
{
	struct tp_sub *t = ctx->engine;
	t->preparing = true;
	t->prep_id = id;
	int rc = impl_of(ctx)->prepare(ctx, id);
	t->preparing = false;
	return rc;
}

/* commit t->v[0..k) in order, then drop them */
static int commit_first(weir_ctx *ctx, int k)
{
	struct tp_sub *t = ctx->engine;
	if (k == 0)
		return 0; /* t->v may be NULL: nothing ever prepared */
	for (int i = 0; i < k; i++)
		if (impl_of(ctx)->commit(ctx, t->v[i].data, t->v[i].len) < 0)
			return -1;
	for (int i = 0; i < k; i++)
		free(t->v[i].data);
	memmove(t->v, t->v + k, sizeof(*t->v) * (size_t)(t->n - k));
	t->n -= k;
	return 0;
}

static int tp_open(weir_ctx *ctx)
{
	struct tp_sub *t = calloc(1, sizeof(*t));
	if (!t)
		return weir_fail(ctx, "out of memory");
	ctx->engine = t;
	return impl_of(ctx)->open ? impl_of(ctx)->open(ctx) : 0;
}

static int tp_write(weir_ctx *ctx, const weir_rec *in) { return impl_of(ctx)->write(ctx, in); }

static int tp_close(weir_ctx *ctx) { return impl_of(ctx)->close ? impl_of(ctx)->close(ctx) : 0; }

static int tp_snapshot(weir_ctx *ctx, struct snapbuf *b, uint64_t id)
{
	struct tp_sub *t = ctx->engine;
	if (weir_failpoint("sink.precommit") < 0)
		return weir_fail(ctx, "%s", weir_err_msg());
	if (prepare(ctx, id ? id : ctx->st->ck_last + 1) < 0)
		return -1;
	snap_u32(b, TP_MAGIC);
	snap_u32(b, (uint32_t)t->n);
	for (int i = 0; i < t->n; i++) {
		snap_u64(b, t->v[i].id);
		snap_u32(b, t->v[i].len);
		snap_put(b, t->v[i].data, t->v[i].len);
	}
	return 0;
}

static int tp_notify(weir_ctx *ctx, uint64_t id)
{
	struct tp_sub *t = ctx->engine;
	int k = 0;
	while (k < t->n && t->v[k].id <= id)
		k++;
	if (!k)
		return 0;
	if (weir_failpoint("sink.commit") < 0)
		return -1;
	if (commit_first(ctx, k) < 0)
		return -1;
	if (weir_failpoint("sink.committed") < 0) /* published; a crash here makes a restore commit again */
		return -1;
	return 0;
}

static int tp_restore(weir_ctx *ctx, const void *p, size_t n, uint64_t id)
{
	const weir_sink_impl *im = impl_of(ctx);
	const struct node *nd = ctx->op->node;
	if (p) {
		struct snapreader r;
		snapreader_init(&r, p, n);
		uint32_t magic = snap_get_u32(&r);
		if (magic != TP_MAGIC) {
			/* the built-in file sink's snapshots from before this API */
			if (!nd->sink2_legacy)
				return weir_err_set("sink '%s': a malformed snapshot", nd->name);
			if (nd->sink2_legacy(ctx, p, n) < 0)
				return -1;
		} else {
			uint32_t cnt = snap_get_u32(&r);
			for (uint32_t i = 0; i < cnt && !r.bad; i++) {
				snap_get_u64(&r);
				uint32_t len = snap_get_u32(&r);
				const void *d = len <= WEIR_COMMITTABLE_MAX ? snap_take(&r, len) : NULL;
				if (!d)
					r.bad = true;
				else if (im->commit(ctx, d, len) < 0)
					return -1;
			}
			if (r.bad || r.off != n)
				return weir_err_set("sink '%s': a malformed snapshot", nd->name);
		}
	}
	return im->recover ? im->recover(ctx, id, (int)ctx->st->restore_index) : 0;
}

static int tp_commit(weir_ctx *ctx)
{
	struct tp_sub *t = ctx->engine;
	if (!t || t->committed)
		return 0;
	if (!ctx->st->job->ck_on && !t->prepared_end) {
		t->prepared_end = true;
		if (prepare(ctx, 0) < 0)
			return -1;
	}
	if (ctx->st->job->ck_on) {
		if (commit_first(ctx, t->n) < 0)
			return -1;
	} else {
		for (int i = 0; i < t->n; i++)
			if (impl_of(ctx)->commit(ctx, t->v[i].data, t->v[i].len) < 0)
				return -1;
	}
	t->committed = true;
	return 0;
}

static void tp_abort(weir_ctx *ctx)
{
	struct tp_sub *t = ctx->engine;
	const weir_sink_impl *im = impl_of(ctx);
	if (!t)
		return;
	if (ctx->st->job->ck_on) {
		uint64_t done = __atomic_load_n(&ctx->st->job->ck_complete, __ATOMIC_ACQUIRE);
		if (done > ctx->st->ck_committed && tp_notify(ctx, done) < 0)
			weir_log(WEIR_LOG_WARN, "sink '%s': %s (a restore commits it)", ctx->op->node->name, weir_err_msg());
		return;
	}
	if (!t->prepared_end && !t->committed) {
		t->prepared_end = true;
		if (prepare(ctx, 0) < 0)
			return;
	}
	if (!im->abort)
		return;
	/* committed ones too: another sink's commit failed after ours */
	for (int i = 0; i < t->n; i++)
		im->abort(ctx, t->v[i].data, t->v[i].len);
}

static void tp_release(weir_ctx *ctx)
{
	struct tp_sub *t = ctx->engine;
	if (impl_of(ctx)->release)
		impl_of(ctx)->release(ctx);
	if (!t)
		return;
	tp_free_items(t, 0);
	free(t->v);
	free(t);
	ctx->engine = NULL;
}

static int tp_check(const struct node *nd, bool restoring)
{
	check_msg[0] = '\0';
	if (nd->sink2->check && nd->sink2->check(nd->sink2_arg, restoring) < 0)
		return weir_err_set("%s", check_msg[0] ? check_msg : "a sink refused to run");
	return 0;
}

weir_stream *weir_sink_two_phase(weir_stream *in, const char *name, const weir_sink_impl *impl, void *arg)
{
	if (!in)
		return NULL;
	weir_env *env = in->env;
	if (!impl || !impl->write || !impl->prepare || !impl->commit)
		return weir_env_error(env, "sink '%s': write, prepare and commit are required", name ? name : "?"), NULL;
	weir_sink_impl *copy = malloc(sizeof(*copy));
	if (!copy)
		return weir_env_error(env, "out of memory"), NULL;
	*copy = *impl;
	struct node *n = weir_env_add(env, OP_SINK, name, in);
	if (!n) {
		free(copy);
		if (impl->free_arg)
			impl->free_arg(arg);
		return NULL;
	}
	n->sink2 = copy;
	n->sink2_arg = arg;
	n->fn.sink = tp_write;
	n->builtin = true;
	n->arg = arg;
	n->open = tp_open;
	n->close = tp_close;
	n->hooks.snapshot = tp_snapshot;
	n->hooks.restore = tp_restore;
	n->hooks.notify = tp_notify;
	n->hooks.commit = tp_commit;
	n->hooks.abort = tp_abort;
	n->hooks.release = tp_release;
	n->hooks.check = tp_check;
	n->hooks.free_arg = impl->free_arg;
	return weir_env_stream(env, n);
}
