/*
 * engine/connectors/split_source.c - sources with splits (weir/connector.h):
 * the engine's side of weir_source_splits.
 *
 * Which subtask reads a split is a function of the split alone: its index
 * modulo the parallelism, or a hash of its id when it has none. So every
 * subtask discovers every split and keeps its own, no coordinator assigns
 * them, a split found later lands where it always would, and after a
 * rescale each new subtask takes, from every old subtask's snapshot, the
 * splits it owns now (the node's restore_all: restore.c hands every old
 * piece to every new subtask).
 *
 * Per subtask (ctx->engine): the splits it holds, each with its reader's
 * data, its position as of the last snapshot (or the end), its largest
 * event time and whether it finished or went idle. Snapshot bytes:
 *
 *   [u32 "WSP1"][u32 n] then n x
 *   [u16 id length][id][i64 index][u32 desc length][desc][u32 pos length][pos]
 *   [i64 max ts][u8 finished]
 *
 * Watermarks (weir_source_watermarks): after every poll, the smallest of
 * (largest event time - bound - 1) over the splits neither finished nor
 * idle, as an assigner's but per split, so an idle or slow split neither
 * holds back nor rushes the others; all of them idle (or none held): the
 * stream is marked idle until a record comes.
 */
#define XXH_INLINE_ALL
#include "connectors/internal.h"
#include "operators/chain.h"
#include "state/snapshot.h"
#include "base/err.h"

#include <weir/connector.h>

#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#define SP_MAGIC 0x31505357u /* "WSP1" */

struct weir_split {
	char id[WEIR_SPLIT_ID_MAX + 1];
	uint16_t idlen;
	int64_t index;
	uint8_t *desc;
	uint32_t desclen;
	void *data;			/* the reader's (weir_split_set_data) */
	uint8_t pos[WEIR_SPLIT_POS_MAX];	/* as of the last snapshot, or the end */
	uint32_t poslen;
	bool has_pos;
	int64_t max_ts;
	bool finished, idle;
	bool asked_finished;		/* position asked since it finished */
	uint64_t last_ns;		/* its last record (or when it came) */
};

struct sp_sub {
	struct weir_split **v;
	int n, cap;
	bool discovering;
	bool discovered;		/* discover ran once */
	uint64_t next_discover_ns;
	bool closed;
	int64_t wm;			/* published */
	bool idle_said;
};

static const weir_source_impl *impl_of(weir_ctx *ctx) { return ctx->op->node->src2; }

static uint32_t owner(const char *id, uint16_t idlen, int64_t index, int p)
{
	if (index >= 0)
		return (uint32_t)(index % p);
	return (uint32_t)(XXH3_64bits(id, idlen) % (uint64_t)p);
}

static struct weir_split *find(struct sp_sub *t, const char *id, uint16_t idlen)
{
	for (int i = 0; i < t->n; i++)
		if (t->v[i]->idlen == idlen && !memcmp(t->v[i]->id, id, idlen))
			return t->v[i];
	return NULL;
}

/* A split of ours: kept, and given to the reader (pos NULL: from its
 * beginning) unless it finished before. */
static int hold(weir_ctx *ctx, const char *id, uint16_t idlen, int64_t index, const void *desc, uint32_t desclen,
		const void *pos, uint32_t poslen, int64_t max_ts, bool finished)
{
	struct sp_sub *t = ctx->engine;
	if (t->n == t->cap) {
		int cap = t->cap ? 2 * t->cap : 8;
		struct weir_split **v = realloc(t->v, sizeof(*v) * (size_t)cap);
		if (!v)
			return weir_fail(ctx, "out of memory");
		t->v = v;
		t->cap = cap;
	}
	struct weir_split *s = calloc(1, sizeof(*s));
	if (!s || !(s->desc = malloc(desclen ? desclen : 1))) {
		free(s);
		return weir_fail(ctx, "out of memory");
	}
	memcpy(s->id, id, idlen);
	s->id[idlen] = '\0';
	s->idlen = idlen;
	s->index = index;
	if (desclen)
		memcpy(s->desc, desc, desclen);
	s->desclen = desclen;
	if (pos) {
		if (poslen)
			memcpy(s->pos, pos, poslen);
		s->poslen = poslen;
		s->has_pos = true;
	}
	s->max_ts = max_ts;
	s->finished = s->asked_finished = finished;
	s->last_ns = weir_ctx_now_ns(ctx);
	t->v[t->n++] = s;
	if (finished)
		return 0;
	return impl_of(ctx)->add_split(ctx, s, pos, pos ? poslen : 0);
}

int weir_split_found(weir_ctx *ctx, const char *id, int64_t index, const void *desc, uint32_t len)
{
	struct sp_sub *t = ctx->engine;
	if (!t || !t->discovering)
		return weir_fail(ctx, "weir_split_found outside the source's discover");
	size_t idlen = id ? strlen(id) : 0;
	if (idlen == 0 || idlen > WEIR_SPLIT_ID_MAX)
		return weir_fail(ctx, "a split id of %zu bytes (1 to %d)", idlen, WEIR_SPLIT_ID_MAX);
	if (len > WEIR_SPLIT_DESC_MAX)
		return weir_fail(ctx, "split '%s': a description of %u bytes (at most %u)", id, len, WEIR_SPLIT_DESC_MAX);
	if (owner(id, (uint16_t)idlen, index, weir_ctx_parallelism(ctx)) != (uint32_t)weir_ctx_subtask(ctx) ||
	    find(t, id, (uint16_t)idlen))
		return 0; /* another subtask's, or held already (restored, or found before) */
	return hold(ctx, id, (uint16_t)idlen, index, desc, len, NULL, 0, INT64_MIN, false);
}

const char *weir_split_id(const weir_split *s) { return s->id; }
const void *weir_split_desc(const weir_split *s, uint32_t *len)
{
	if (len)
		*len = s->desclen;
	return s->desc;
}
void *weir_split_data(const weir_split *s) { return s->data; }
void weir_split_set_data(weir_split *s, void *data) { s->data = data; }

int weir_emit_split(weir_ctx *ctx, weir_split *s, const void *data, uint32_t len, int64_t ts)
{
	if (ts != WEIR_TS_NONE && ts > s->max_ts)
		s->max_ts = ts;
	s->idle = false;
	s->last_ns = 0; /* "a record since the last look": after_poll stamps it */
	return weir_emit_ts(ctx, data, len, ts);
}

void weir_split_finished(weir_ctx *ctx, weir_split *s)
{
	(void)ctx;
	s->finished = true;
}

void weir_split_idle(weir_ctx *ctx, weir_split *s)
{
	(void)ctx;
	s->idle = true;
}

int weir_splits_held(const weir_ctx *ctx, weir_split ***out)
{
	struct sp_sub *t = ctx->engine;
	if (out)
		*out = t ? t->v : NULL;
	return t ? t->n : 0;
}

/* ---- the operator ---- */

static int discover(weir_ctx *ctx)
{
	struct sp_sub *t = ctx->engine;
	const weir_source_impl *im = impl_of(ctx);
	t->discovering = true;
	int rc = im->discover(ctx);
	t->discovering = false;
	t->discovered = true;
	if (im->discover_ms)
		t->next_discover_ns = weir_ctx_now_ns(ctx) + (uint64_t)im->discover_ms * 1000000u;
	return rc;
}

/* Where each split resumes, kept for snapshots after close. A finished
 * split is asked once more at most (restored finished, never: its reader
 * never had it), then its last position stands. */
static int take_positions(weir_ctx *ctx)
{
	struct sp_sub *t = ctx->engine;
	for (int i = 0; i < t->n; i++) {
		struct weir_split *s = t->v[i];
		if (s->finished && s->has_pos && s->asked_finished)
			continue;
		s->asked_finished = s->finished;
		int n = impl_of(ctx)->position(ctx, s, s->pos, WEIR_SPLIT_POS_MAX);
		if (n < 0)
			return -1;
		if (n > WEIR_SPLIT_POS_MAX)
			return weir_fail(ctx, "split '%s': a position of %d bytes (at most %d)", s->id, n,
					 WEIR_SPLIT_POS_MAX);
		s->poslen = (uint32_t)n;
		s->has_pos = true;
	}
	return 0;
}

/* The source's watermark after a poll (see the top). */
static int publish_watermark(weir_ctx *ctx)
{
	struct sp_sub *t = ctx->engine;
	const struct node *nd = ctx->op->node;
	if (!nd->src2_wm)
		return 0;
	uint64_t now = weir_ctx_now_ns(ctx);
	uint64_t idle_ns = nd->src2_idle_ms > 0 ? (uint64_t)nd->src2_idle_ms * 1000000u : 0;
	int64_t wm = INT64_MAX;
	int active = 0;
	for (int i = 0; i < t->n; i++) {
		struct weir_split *s = t->v[i];
		if (!s->last_ns)
			s->last_ns = now;
		else if (idle_ns && !s->idle && now - s->last_ns >= idle_ns)
			s->idle = true;
		if (s->finished || s->idle)
			continue;
		active++;
		int64_t bound = nd->src2_ooo_ms;
		int64_t w = s->max_ts < INT64_MIN + bound + 1 ? INT64_MIN + 1 : s->max_ts - bound - 1;
		if (w < wm)
			wm = w;
	}
	if (!active) {
		if (!t->idle_said) {
			t->idle_said = true;
			return weir_op_idle(ctx->st);
		}
		return 0;
	}
	t->idle_said = false;
	if (wm > t->wm) {
		t->wm = wm;
		return weir_op_watermark(ctx->st, ctx->op->index + 1, wm);
	}
	return 0;
}

static int sp_open(weir_ctx *ctx)
{
	struct sp_sub *t = calloc(1, sizeof(*t));
	if (!t)
		return weir_fail(ctx, "out of memory");
	t->wm = INT64_MIN;
	ctx->engine = t;
	return impl_of(ctx)->open ? impl_of(ctx)->open(ctx) : 0;
}

static int sp_poll(weir_ctx *ctx)
{
	struct sp_sub *t = ctx->engine;
	const weir_source_impl *im = impl_of(ctx);
	/* after restore (open, then the snapshot's splits), so that a split
	 * found again is not read from its beginning */
	if ((!t->discovered || (im->discover_ms && weir_ctx_now_ns(ctx) >= t->next_discover_ns)) && discover(ctx) < 0)
		return -1;
	int r = im->poll(ctx);
	if (r < 0)
		return r;
	if (publish_watermark(ctx) < 0)
		return -1;
	bool all_done = true;
	for (int i = 0; i < t->n; i++)
		all_done &= t->v[i]->finished;
	if (r == WEIR_SOURCE_END || (!im->discover_ms && all_done)) {
		if (take_positions(ctx) < 0)
			return -1;
		return WEIR_SOURCE_END;
	}
	if (r == WEIR_SOURCE_IDLE && im->discover_ms) {
		/* polled again no later than the next discovery */
		uint64_t until = ctx->idle_until;
		if (!until || until > t->next_discover_ns)
			weir_ctx_idle_until(ctx, t->next_discover_ns);
	}
	return r;
}

static int sp_close(weir_ctx *ctx)
{
	struct sp_sub *t = ctx->engine;
	if (t)
		t->closed = true;
	return impl_of(ctx)->close ? impl_of(ctx)->close(ctx) : 0;
}

static int sp_snapshot(weir_ctx *ctx, struct snapbuf *b, uint64_t id)
{
	(void)id;
	struct sp_sub *t = ctx->engine;
	if (!t->closed && take_positions(ctx) < 0)
		return -1;
	snap_u32(b, SP_MAGIC);
	snap_u32(b, (uint32_t)t->n);
	for (int i = 0; i < t->n; i++) {
		const struct weir_split *s = t->v[i];
		uint16_t l = s->idlen;
		snap_put(b, &l, 2);
		snap_put(b, s->id, s->idlen);
		snap_u64(b, (uint64_t)s->index);
		snap_u32(b, s->desclen);
		snap_put(b, s->desc, s->desclen);
		snap_u32(b, s->has_pos ? s->poslen : 0);
		snap_put(b, s->pos, s->has_pos ? s->poslen : 0);
		snap_u64(b, (uint64_t)s->max_ts);
		uint8_t f = s->finished;
		snap_put(b, &f, 1);
	}
	return 0;
}

/* One old subtask's snapshot (all of them after a rescale): the splits in
 * it that are ours now. */
static int sp_restore(weir_ctx *ctx, const void *p, size_t n, uint64_t id)
{
	(void)id;
	if (!p)
		return 0;
	struct snapreader r;
	snapreader_init(&r, p, n);
	if (snap_get_u32(&r) != SP_MAGIC)
		return weir_err_set("source '%s': a malformed snapshot", ctx->op->node->name);
	uint32_t cnt = snap_get_u32(&r);
	struct sp_sub *t = ctx->engine;
	for (uint32_t k = 0; k < cnt && !r.bad; k++) {
		const void *lp = snap_take(&r, 2);
		uint16_t idlen = 0;
		if (lp)
			memcpy(&idlen, lp, 2);
		const char *sid = idlen && idlen <= WEIR_SPLIT_ID_MAX ? snap_take(&r, idlen) : NULL;
		int64_t index = (int64_t)snap_get_u64(&r);
		uint32_t dl = snap_get_u32(&r);
		const void *desc = dl <= WEIR_SPLIT_DESC_MAX ? snap_take(&r, dl) : NULL;
		uint32_t pl = snap_get_u32(&r);
		const void *pos = pl <= WEIR_SPLIT_POS_MAX ? snap_take(&r, pl) : NULL;
		int64_t max_ts = (int64_t)snap_get_u64(&r);
		const uint8_t *f = snap_take(&r, 1);
		if (!sid || !desc || (pl && !pos) || !f || r.bad) {
			r.bad = true;
			break;
		}
		if (owner(sid, idlen, index, weir_ctx_parallelism(ctx)) != (uint32_t)weir_ctx_subtask(ctx) ||
		    find(t, sid, idlen))
			continue;
		char idbuf[WEIR_SPLIT_ID_MAX + 1];
		memcpy(idbuf, sid, idlen);
		idbuf[idlen] = '\0';
		if (strlen(idbuf) != idlen) {
			r.bad = true;
			break;
		}
		/* restored: never NULL, even for a position of 0 bytes */
		if (hold(ctx, idbuf, idlen, index, desc, dl, pl ? pos : "", pl, max_ts, *f) < 0)
			return -1;
	}
	if (r.bad || r.off != n)
		return weir_err_set("source '%s': a malformed snapshot", ctx->op->node->name);
	return 0;
}

static void sp_release(weir_ctx *ctx)
{
	struct sp_sub *t = ctx->engine;
	if (impl_of(ctx)->release)
		impl_of(ctx)->release(ctx);
	if (!t)
		return;
	for (int i = 0; i < t->n; i++) {
		free(t->v[i]->desc);
		free(t->v[i]);
	}
	free(t->v);
	free(t);
	ctx->engine = NULL;
}

weir_stream *weir_source_splits(weir_env *env, const char *name, const weir_source_impl *impl, void *arg)
{
	if (!env)
		return NULL;
	if (!impl || !impl->discover || !impl->add_split || !impl->poll || !impl->position)
		return weir_env_error(env, "source '%s': discover, add_split, poll and position are required",
				      name ? name : "?"), NULL;
	weir_source_impl *copy = malloc(sizeof(*copy));
	if (!copy)
		return weir_env_error(env, "out of memory"), NULL;
	*copy = *impl;
	struct node *n = weir_env_add(env, OP_SOURCE, name, NULL);
	if (!n) {
		free(copy);
		if (impl->free_arg)
			impl->free_arg(arg);
		return NULL;
	}
	n->src2 = copy;
	n->restore_all = true;
	n->fn.source = sp_poll;
	n->builtin = true;
	n->arg = arg;
	n->open = sp_open;
	n->close = sp_close;
	n->hooks.snapshot = sp_snapshot;
	n->hooks.restore = sp_restore;
	n->hooks.release = sp_release;
	n->hooks.free_arg = impl->free_arg;
	return weir_env_stream(env, n);
}

weir_stream *weir_source_watermarks(weir_stream *s, int64_t max_out_of_orderness_ms, int64_t idle_timeout_ms)
{
	if (!s)
		return NULL;
	weir_env *env = s->env;
	struct node *n = s->nparts == 1 ? env->nodes[s->parts[0].node] : NULL;
	if (!n || !n->src2)
		return weir_env_error(env, "weir_source_watermarks: not a stream of weir_source_splits"), NULL;
	if (max_out_of_orderness_ms < 0 || idle_timeout_ms < 0)
		return weir_env_error(env, "weir_source_watermarks: negative bound or timeout"), NULL;
	n->src2_wm = true;
	n->src2_ooo_ms = max_out_of_orderness_ms;
	n->src2_idle_ms = idle_timeout_ms;
	return s;
}
