/*
 * engine/operators/windows.c - tumbling, sliding and session windows, and the window
 * join, as keyed operators (engine/operators/keyed.h).
 *
 * Flink's window semantics:
 *  - a window is [start, end); its results carry timestamp end - 1 and it
 *    fires when the watermark (or, in processing time, the clock) reaches
 *    end - 1: one timer per (key, window), registered with the window as
 *    the timer's namespace;
 *  - a record is late for a window when end - 1 + allowed lateness <= the
 *    watermark. A record late for every window it belongs to goes to the
 *    operator's late side output, never dropped in silence. A record that
 *    arrives after the window fired but within the lateness updates the
 *    window's state and fires it again at once; a cleanup timer at
 *    end - 1 + lateness drops the state;
 *  - session windows start as [ts, ts + gap) and merge with every window of
 *    the key they intersect (touching counts, as in Flink). As in Flink's
 *    MergingWindowSet, a session's state stays under the namespace of the
 *    window it started as (its "state window"): a record that extends a
 *    session moves no state, it only rewrites the key's session entry and
 *    registers the timer of the new span. Timers of spans that grew since
 *    are left in the heap and skipped when they fire (their span is no
 *    longer in the key's sessions). Only a record that bridges two
 *    sessions merges state.
 *
 * State per (key, window): the accumulated record (reduce), the fixed-size
 * accumulator (aggregate), or the list of records (process, and join with
 * one list per side). Session windows also keep, per key, the array of the
 * key's live sessions.
 */
#include "operators/keyed.h"
#include "operators/chain.h"
#include "base/clock.h"

#include <stdlib.h>
#include <string.h>

enum wkind { W_REDUCE, W_AGGREGATE, W_PROCESS, W_JOIN };
enum { T_FIRE = 0, T_CLEANUP = 1 };

struct window_op {
	weir_window_spec w;
	enum wkind kind;
	weir_reduce_fn reduce;
	weir_window_result_fn result;
	weir_aggregate agg;
	weir_window_process_fn process;
	weir_join_fn join;
	int s_acc;		/* accumulator, aggregate, or list (join: side 0) */
	int s_right;		/* join: the list of side 1 */
	int s_sessions;		/* session windows: the key's live sessions */
};

struct win {
	int64_t start;
	int64_t end;
};

static int64_t floor_mod(int64_t a, int64_t b)
{
	int64_t m = a % b;
	return m < 0 ? m + b : m;
}

/* A window's namespace in state keys and timers: its start. Tumbling and
 * sliding windows of one operator share their size; a session's state
 * lives under the start of the window it began as (its state window,
 * struct sess), which no other live session of the key shares: their spans
 * are disjoint and each holds its state start. 8 bytes keep a count with
 * an 8-byte key inline in its slot. */
#define NS_LEN 8
static uint32_t ns_of(int64_t start, uint8_t ns[NS_LEN])
{
	memcpy(ns, &start, NS_LEN);
	return NS_LEN;
}

static bool is_late(const struct window_op *wo, const struct opinst *op, struct win w)
{
	return wo->w.domain == WEIR_EVENT_TIME && sat_add(w.end - 1, wo->w.allowed_lateness_ms) <= op->wm;
}

/* ---- window state -------------------------------------------------------- */

/* Fold a record into the reduce accumulator of slot s. */
static int reduce_into(weir_ctx *ctx, struct window_op *wo, struct kv_slot *s, const void *data, uint32_t len,
		       int64_t ts)
{
	struct opinst *op = ctx->op;
	weir_rec acc = { .data = weir_kv_val(s), .len = s->vlen, .ts = s->aux };
	weir_rec in = { .data = data, .len = len, .ts = ts };
	ctx->capturing = true;
	ctx->rslot = s;
	ctx->capture_kv = &op->keyed.kv;
	ctx->emitted = 0;
	int rc = wo->reduce(ctx, &acc, &in);
	ctx->capturing = false;
	ctx->capture_kv = NULL;
	if (rc < 0 || ctx->st->failed)
		return -1;
	if (ctx->emitted != 1)
		return weir_fail(ctx, "window reduce must emit exactly one record, emitted %u", ctx->emitted);
	return 0;
}

/* Add one record to the window of the current key whose state is under
 * start. 1 when this created the window's state (its timers are then due),
 * 0 when it existed, -1. */
static int add(weir_ctx *ctx, struct window_op *wo, int64_t start, const weir_rec *rec, int side)
{
	struct opinst *op = ctx->op;
	int state = side ? wo->s_right : wo->s_acc;
	uint8_t ns[NS_LEN];
	uint32_t nl = ns_of(start, ns);
	struct kv_slot *s = keyed_get(op, state, ns, nl);
	int created = !s && (wo->kind != W_JOIN || !keyed_get(op, side ? wo->s_acc : wo->s_right, ns, nl));
	int rc = -1;
	switch (wo->kind) {
	case W_REDUCE:
		if (!s)
			rc = keyed_put(op, state, ns, nl, rec->data, rec->len) ? 0 : weir_fail(ctx, "out of memory");
		else
			rc = reduce_into(ctx, wo, s, rec->data, rec->len, rec->ts);
		break;
	case W_AGGREGATE:
		if (!s) {
			if (!(s = keyed_put(op, state, ns, nl, NULL, 0)) || !weir_kv_reserve(s, wo->agg.acc_size))
				return weir_fail(ctx, "out of memory");
			s->vlen = wo->agg.acc_size;
			memset(weir_kv_val(s), 0, wo->agg.acc_size);
			if (wo->agg.create && wo->agg.create(ctx, weir_kv_val(s)) < 0)
				return -1;
		}
		rc = wo->agg.add(ctx, weir_kv_val(s), rec) < 0 ? -1 : 0;
		break;
	case W_PROCESS:
	case W_JOIN:
		if (!s && !(s = keyed_put(op, state, ns, nl, NULL, 0)))
			return weir_fail(ctx, "out of memory");
		rc = keyed_list_append(s, rec->data, rec->len, rec->ts) < 0 ? weir_fail(ctx, "out of memory") : 0;
		break;
	}
	return rc < 0 ? -1 : created;
}

static void iter_of(struct kv_slot *s, weir_iter *it)
{
	memset(it, 0, sizeof(*it));
	if (s) {
		it->p = weir_kv_val(s);
		it->end = it->p + s->vlen;
	}
}

/* Emit window w's result for the current key (if it has state); `state`
 * is the start of the window whose namespace holds it (w's but for
 * sessions). */
static int emit(weir_ctx *ctx, struct window_op *wo, struct win w, int64_t state)
{
	struct opinst *op = ctx->op;
	uint8_t ns[NS_LEN];
	uint32_t nl = ns_of(state, ns);
	struct kv_slot *s = keyed_get(op, wo->s_acc, ns, nl);
	struct kv_slot *r = wo->kind == W_JOIN ? keyed_get(op, wo->s_right, ns, nl) : NULL;
	if (!s && !r)
		return 0;
	op->keyed.in_window = true;
	op->keyed.win_start = w.start;
	op->keyed.win_end = w.end;
	ctx->cur_ts = w.end - 1;
	int rc = 0;
	switch (wo->kind) {
	case W_REDUCE: {
		weir_rec acc = { .data = weir_kv_val(s), .len = s->vlen, .ts = w.end - 1 };
		rc = wo->result ? wo->result(ctx, &acc) : weir_emit_ts(ctx, acc.data, acc.len, acc.ts);
		break;
	}
	case W_AGGREGATE:
		rc = wo->agg.result(ctx, weir_kv_val(s));
		break;
	case W_PROCESS: {
		weir_iter it;
		iter_of(s, &it);
		rc = wo->process(ctx, &it);
		break;
	}
	case W_JOIN: {
		/* every pair, left-major: the nested loop the API promises */
		weir_iter li, ri;
		weir_rec l, rr;
		iter_of(s, &li);
		while (rc >= 0 && s && r && weir_iter_next(&li, &l)) {
			iter_of(r, &ri);
			while (rc >= 0 && weir_iter_next(&ri, &rr))
				rc = wo->join(ctx, &l, &rr);
		}
		break;
	}
	}
	op->keyed.in_window = false;
	return rc < 0 || ctx->st->failed ? -1 : 0;
}

/* ---- session bookkeeping ---------------------------------------------------- */

/* A key's live sessions, in the order of their spans: the span [start,
 * end) and the start of the state window holding their state. 24 bytes, so
 * that a key's one session sits inline in its slot, beside its count. */
struct sess {
	int64_t start;
	int64_t end;
	int64_t state;
};

static int sessions_store(struct opinst *op, struct window_op *wo, const struct sess *v, uint32_t n)
{
	if (!n) {
		keyed_del(op, wo->s_sessions, NULL, 0);
		return 0;
	}
	return keyed_put(op, wo->s_sessions, NULL, 0, v, n * (uint32_t)sizeof(struct sess)) ? 0 : -1;
}

/* The live session whose state window starts at state, or NULL (a timer of
 * a session merged into another since). */
static const struct sess *session_of(struct opinst *op, struct window_op *wo, int64_t state)
{
	struct kv_slot *s = keyed_get(op, wo->s_sessions, NULL, 0);
	const struct sess *v = s ? (const struct sess *)weir_kv_val(s) : NULL;
	for (uint32_t i = 0; v && i < s->vlen / (uint32_t)sizeof(struct sess); i++)
		if (v[i].state == state)
			return &v[i];
	return NULL;
}

/* Drop the state of a window (state: the start of the window that holds
 * it) and, for a session, its entry. */
static int clear_window(struct opinst *op, struct window_op *wo, int64_t state)
{
	uint8_t ns[NS_LEN];
	uint32_t nl = ns_of(state, ns);
	keyed_del(op, wo->s_acc, ns, nl);
	if (wo->kind == W_JOIN)
		keyed_del(op, wo->s_right, ns, nl);
	if (wo->w.kind != WEIR_SESSION)
		return 0;
	struct kv_slot *s = keyed_get(op, wo->s_sessions, NULL, 0);
	if (!s)
		return 0;
	struct sess *v = (struct sess *)weir_kv_val(s);
	uint32_t n = s->vlen / (uint32_t)sizeof(struct sess), k = 0;
	for (uint32_t i = 0; i < n; i++)
		if (v[i].state != state)
			v[k++] = v[i];
	if (!k)
		keyed_del(op, wo->s_sessions, NULL, 0);
	else
		s->vlen = k * (uint32_t)sizeof(struct sess); /* shrinks in place */
	return 0;
}

/* Register the timers of a window ending at end, under namespace ns_start
 * (its start; a session's state start): the firing one if `fire`, the
 * cleanup one if `cleanup` and there is lateness. Windows never register a
 * timer twice nor delete one (a session's timer that finds its session
 * grown registers again for the new end, one that finds it merged away does
 * nothing), so no table entry is needed: keyed_timer_once. */
static int timers(struct opinst *op, struct window_op *wo, int64_t ns_start, int64_t end, bool fire, bool cleanup)
{
	uint8_t ns[NS_LEN + 1]; /* [namespace][type] */
	uint32_t nl = ns_of(ns_start, ns);
	ns[nl] = T_FIRE;
	if (fire && keyed_timer_once(op, wo->w.domain, end - 1, ns, nl + 1) < 0)
		return -1;
	if (cleanup && wo->w.domain == WEIR_EVENT_TIME && wo->w.allowed_lateness_ms > 0) {
		ns[nl] = T_CLEANUP;
		if (keyed_timer_once(op, WEIR_EVENT_TIME, sat_add(end - 1, wo->w.allowed_lateness_ms), ns, nl + 1) < 0)
			return -1;
	}
	return 0;
}

/* Move the state of the window starting at from into the one starting at to
 * (session merging). */
static int merge_state(weir_ctx *ctx, struct window_op *wo, int64_t from, int64_t to)
{
	struct opinst *op = ctx->op;
	uint8_t fns[NS_LEN], tns[NS_LEN];
	uint32_t fl = ns_of(from, fns), tl = ns_of(to, tns);
	for (int side = 0; side < (wo->kind == W_JOIN ? 2 : 1); side++) {
		int state = side ? wo->s_right : wo->s_acc;
		struct kv_slot *f = keyed_get(op, state, fns, fl);
		if (!f)
			continue;
		/* copy out: inserting the target may move slots */
		uint32_t len = f->vlen;
		int64_t aux = f->aux;
		uint8_t *copy = malloc(len ? len : 1);
		if (!copy)
			return weir_fail(ctx, "out of memory");
		memcpy(copy, weir_kv_val(f), len);
		keyed_del(op, state, fns, fl);
		struct kv_slot *t = keyed_get(op, state, tns, tl);
		int rc = 0;
		if (!t) {
			t = keyed_put(op, state, tns, tl, copy, len);
			if (t)
				t->aux = aux;
			rc = t ? 0 : weir_fail(ctx, "out of memory");
		} else if (wo->kind == W_REDUCE) {
			rc = reduce_into(ctx, wo, t, copy, len, aux);
		} else if (wo->kind == W_AGGREGATE) {
			rc = wo->agg.merge(ctx, weir_kv_val(t), copy) < 0 ? -1 : 0;
		} else {
			uint8_t *d = weir_kv_reserve(t, t->vlen + len);
			if (!d)
				rc = weir_fail(ctx, "out of memory");
			else {
				memcpy(d + t->vlen, copy, len); /* list items concatenate */
				t->vlen += len;
			}
		}
		free(copy);
		if (rc < 0)
			return -1;
	}
	return 0;
}

static bool intersects(const struct sess *a, struct win b)
{
	return a->start <= b.end && a->end >= b.start;
}

/*
 * A record at ts opens the session [ts, ts + gap) of its key, which merges
 * with every live session of the key it touches, transitively.
 *
 * Timers: a live session has one pending firing timer while its end - 1 is
 * ahead of the watermark (in processing time, always), registered when the
 * session opened or came back after firing within the lateness, under its
 * state start, at an end it had then. A record that extends the session
 * registers nothing: the timer, when it fires, finds the session's end
 * moved on and registers again for the new end (window_timer). The
 * sessions a record bridges keep their timers; finding no session of
 * their state start, they do nothing. Likewise the cleanup timer: one per
 * session, from its opening.
 */
static int session_element(weir_ctx *ctx, struct window_op *wo, const weir_rec *rec, int side, int64_t ts)
{
	struct opinst *op = ctx->op;
	struct win w = { ts, sat_add(ts, wo->w.gap_ms) };
	/* The key's live sessions, copied out (merging moves state, which may
	 * move slots). A key has few sessions: the stack holds them unless it
	 * has more than 32. */
	struct sess stackv[33], *v = stackv;
	bool stackin[32], *in = stackin;
	struct kv_slot *ss = keyed_get(op, wo->s_sessions, NULL, 0);
	uint32_t n = ss ? ss->vlen / (uint32_t)sizeof(struct sess) : 0;
	if (n > 32 && (!(v = malloc(sizeof(struct sess) * (n + 1))) || !(in = malloc(n)))) {
		if (v != stackv)
			free(v);
		return weir_fail(ctx, "out of memory");
	}
	if (n)
		memcpy(v, weir_kv_val(ss), sizeof(struct sess) * n);
	memset(in, 0, n);
	/* the span of everything w merges with, transitively */
	struct win m = w;
	int first = -1;
	uint32_t merged = 0;
	for (bool grew = true; grew;) {
		grew = false;
		for (uint32_t i = 0; i < n; i++)
			if (!in[i] && intersects(&v[i], m)) {
				in[i] = true;
				merged++;
				if (first < 0 || v[i].start < v[first].start)
					first = (int)i;
				grew = true;
				if (v[i].start < m.start)
					m.start = v[i].start;
				if (v[i].end > m.end)
					m.end = v[i].end;
			}
	}
	int rc = 0;
	if (is_late(wo, op, m)) {
		rc = weir_emit_side_ts(ctx, op->node->late_tag, rec->data, rec->len, rec->ts);
		goto out;
	}
	bool event = wo->w.domain == WEIR_EVENT_TIME;
	bool fired = event && m.end - 1 <= op->wm;
	/* the merged session keeps the state window of the earliest one; the
	 * state of any other session it bridges to is folded into it */
	struct sess nv = { m.start, m.end, first < 0 ? m.start : v[first].state };
	bool timer_pending = first >= 0 && !(event && v[first].end - 1 <= op->wm);
	if (first >= 0 && merged == 1 && v[first].start == m.start && v[first].end == m.end) {
		/* a record inside a session changes nothing but its state */
	} else if (first >= 0 && merged == 1) {
		/* extended, nothing bridged and no slot moved: in place (the
		 * order of spans holds; the get saved the entry for a snapshot) */
		((struct sess *)weir_kv_val(ss))[first] = nv;
	} else {
		/* opened or bridged: the spans in order, the merged one in the
		 * place of the earliest it took in */
		uint32_t k = 0;
		for (uint32_t i = 0; i < n && rc >= 0; i++) {
			if (!in[i])
				v[k++] = v[i];
			else if ((int)i != first && merge_state(ctx, wo, v[i].state, nv.state) < 0)
				rc = -1;
		}
		if (rc < 0)
			goto out;
		uint32_t at = 0;
		while (at < k && v[at].start < nv.start)
			at++;
		memmove(v + at + 1, v + at, (k - at) * sizeof(*v)); /* v has room for n + 1 */
		v[at] = nv;
		k++;
		if (sessions_store(op, wo, v, k) < 0) {
			rc = weir_fail(ctx, "out of memory");
			goto out;
		}
	}
	if (add(ctx, wo, nv.state, rec, side) < 0 ||
	    timers(op, wo, nv.state, m.end, !fired && !timer_pending, first < 0) < 0) {
		rc = ctx->st->failed ? -1 : weir_fail(ctx, "out of memory");
		goto out;
	}
	/* fired already, within lateness: fire again with the update */
	if (fired)
		rc = emit(ctx, wo, m, nv.state);
out:
	if (v != stackv)
		free(v);
	if (in != stackin)
		free(in);
	return rc;
}

/* ---- the keyed_impl ------------------------------------------------------------ */

static int window_element(weir_ctx *ctx, const weir_rec *rec, int side)
{
	struct opinst *op = ctx->op;
	struct window_op *wo = op->node->impl_arg;
	int64_t ts = wo->w.domain == WEIR_EVENT_TIME ? rec->ts : ctx->st->proc_ms;
	if (ts == WEIR_TS_NONE)
		return weir_fail(ctx, "event-time windows need timestamps (use weir_assign_timestamps)");
	if (ts > INT64_MAX / 2 || ts < INT64_MIN / 2)
		return weir_fail(ctx, "timestamp %lld is out of the range windows handle", (long long)ts);
	if (wo->w.kind == WEIR_SESSION)
		return session_element(ctx, wo, rec, side, ts);

	int64_t size = wo->w.size_ms, slide = wo->w.kind == WEIR_TUMBLING ? size : wo->w.slide_ms;
	int64_t last = ts - floor_mod(ts - wo->w.offset_ms, slide);
	bool taken = false, any = false;
	for (int64_t start = last; start > ts - size; start -= slide) {
		struct win w = { start, start + size };
		any = true;
		if (is_late(wo, op, w))
			continue;
		taken = true;
		int created = add(ctx, wo, w.start, rec, side);
		if (created < 0)
			return -1;
		bool fired = wo->w.domain == WEIR_EVENT_TIME && w.end - 1 <= op->wm;
		/* timers come with the state: one lookup per record, not three */
		if (created && timers(op, wo, w.start, w.end, !fired, true) < 0)
			return weir_fail(ctx, "out of memory");
		/* fired already, within lateness: fire again with the update */
		if (fired && emit(ctx, wo, w, w.start) < 0)
			return -1;
	}
	/* Late for every window it belongs to: to the late output. In no
	 * window at all (a gap between sliding windows whose slide exceeds
	 * their size): only if late itself, as Flink does; else dropped. */
	if (!taken && (any || (wo->w.domain == WEIR_EVENT_TIME && sat_add(ts, wo->w.allowed_lateness_ms) <= op->wm)))
		return weir_emit_side_ts(ctx, op->node->late_tag, rec->data, rec->len, rec->ts);
	return 0;
}

static int window_timer(weir_ctx *ctx, int64_t time, enum weir_time_domain d, const uint8_t *ns, uint32_t nslen)
{
	struct opinst *op = ctx->op;
	struct window_op *wo = op->node->impl_arg;
	(void)d;
	int64_t start;
	if (nslen != NS_LEN + 1)
		return weir_fail(ctx, "internal error: window timer with a %u-byte namespace", nslen);
	memcpy(&start, ns, NS_LEN);
	bool cleanup = ns[NS_LEN] == T_CLEANUP;
	struct win w = { start, start + wo->w.size_ms };
	if (wo->w.kind == WEIR_SESSION) {
		const struct sess *se = session_of(op, wo, start);
		if (!se)
			return 0; /* merged into another session since: its timers are that one's */
		w = (struct win){ se->start, se->end }; /* copied: emitting may move slots */
		int64_t due = cleanup ? sat_add(w.end - 1, wo->w.allowed_lateness_ms) : w.end - 1;
		if (time < due) /* the session grew since: due later */
			return timers(op, wo, start, w.end, !cleanup, cleanup) < 0 ? weir_fail(ctx, "out of memory") : 0;
		if (time > due)
			return 0; /* not this session's (never registered past its end) */
	}
	if (cleanup)
		return clear_window(op, wo, start);
	if (emit(ctx, wo, w, start) < 0)
		return -1;
	/* without lateness (or in processing time) the window is done */
	if (wo->w.domain != WEIR_EVENT_TIME || wo->w.allowed_lateness_ms == 0)
		return clear_window(op, wo, start);
	return 0;
}

static const struct keyed_impl window_impl = { window_element, window_timer };

/* ---- building ------------------------------------------------------------------- */

weir_window_spec weir_tumbling(enum weir_time_domain domain, int64_t size_ms)
{
	weir_window_spec w = { .kind = WEIR_TUMBLING, .domain = domain, .size_ms = size_ms, .slide_ms = size_ms };
	return w;
}

weir_window_spec weir_sliding(enum weir_time_domain domain, int64_t size_ms, int64_t slide_ms)
{
	weir_window_spec w = { .kind = WEIR_SLIDING, .domain = domain, .size_ms = size_ms, .slide_ms = slide_ms };
	return w;
}

weir_window_spec weir_session(enum weir_time_domain domain, int64_t gap_ms)
{
	weir_window_spec w = { .kind = WEIR_SESSION, .domain = domain, .gap_ms = gap_ms };
	return w;
}

static const char *spec_error(const weir_window_spec *w)
{
	if (!w)
		return "no window given";
	if (w->domain != WEIR_EVENT_TIME && w->domain != WEIR_PROCESSING_TIME)
		return "unknown time domain";
	/* bounds keep start + size, ts - offset and end + lateness far from
	 * overflow (timestamps are within +-2^62), and a record's sliding
	 * windows few enough to assign per record */
	const int64_t big = INT64_MAX / 4;
	if (w->allowed_lateness_ms < 0 || w->allowed_lateness_ms > big)
		return "allowed lateness must be from 0 to 2^61 ms";
	if (w->offset_ms < -big || w->offset_ms > big || w->size_ms > big || w->slide_ms > big || w->gap_ms > big)
		return "a window's size, slide, gap and offset must be within +-2^61 ms";
	switch (w->kind) {
	case WEIR_TUMBLING:
		return w->size_ms > 0 ? NULL : "a tumbling window needs a size > 0";
	case WEIR_SLIDING:
		if (!(w->size_ms > 0 && w->slide_ms > 0))
			return "a sliding window needs a size and a slide > 0";
		return w->size_ms / w->slide_ms <= 100000 ? NULL
							  : "a sliding window may overlap at most 100000 others (size / slide)";
	case WEIR_SESSION:
		return w->gap_ms > 0 ? NULL : "a session window needs a gap > 0";
	}
	return "unknown window kind";
}

static struct node *window_node(weir_stream *a, weir_stream *b, const char *name, const weir_window_spec *w,
				enum wkind kind, void *arg, struct window_op **out)
{
	if (!a)
		return NULL;
	const char *why = spec_error(w);
	if (why)
		return weir_env_error(a->env, "window '%s': %s", name ? name : "?", why), NULL;
	struct window_op *wo = calloc(1, sizeof(*wo));
	if (!wo)
		return weir_env_error(a->env, "out of memory"), NULL;
	struct node *n = weir_keyed_node(a, b, name, &window_impl);
	if (!n) {
		free(wo);
		return NULL;
	}
	wo->w = *w;
	wo->kind = kind;
	n->impl_arg = wo;
	/* 2: sessions of 24 bytes under their state window's start (were 32,
	 * under start and end) */
	n->state_layout = w->kind == WEIR_SESSION ? "sessions 2" : NULL;
	n->hooks.free_arg = free;
	n->arg = arg;
	enum weir_state_kind sk = kind == W_PROCESS || kind == W_JOIN ? WEIR_LIST_STATE : WEIR_VALUE_STATE;
	wo->s_acc = weir_node_state(a->env, n, "window", sk);
	wo->s_right = kind == W_JOIN ? weir_node_state(a->env, n, "window-right", WEIR_LIST_STATE) : -1;
	wo->s_sessions = weir_node_state(a->env, n, "sessions", WEIR_VALUE_STATE);
	n->late_tag = weir_node_tag(a->env, n, "late");
	if (wo->s_acc < 0 || wo->s_sessions < 0 || n->late_tag < 0 || (kind == W_JOIN && wo->s_right < 0))
		return NULL;
	*out = wo;
	return n;
}

weir_stream *weir_window_reduce(weir_stream *keyed, const char *name, const weir_window_spec *w,
				weir_reduce_fn reduce, weir_window_result_fn result, void *arg)
{
	if (keyed && !reduce)
		return weir_env_error(keyed->env, "window '%s': reduce function is NULL", name ? name : "?"), NULL;
	struct window_op *wo;
	struct node *n = window_node(keyed, NULL, name, w, W_REDUCE, arg, &wo);
	if (!n)
		return NULL;
	wo->reduce = reduce;
	wo->result = result;
	return weir_env_stream(keyed->env, n);
}

weir_stream *weir_window_aggregate(weir_stream *keyed, const char *name, const weir_window_spec *w,
				   const weir_aggregate *agg, void *arg)
{
	if (keyed && (!agg || !agg->add || !agg->result || agg->acc_size == 0 || agg->acc_size > (1u << 20) ||
		      (w && w->kind == WEIR_SESSION && !agg->merge)))
		return weir_env_error(keyed->env, "window '%s': an aggregate needs add, result, an accumulator "
				      "size (1 byte to 1 MiB) and, for sessions, merge", name ? name : "?"), NULL;
	struct window_op *wo;
	struct node *n = window_node(keyed, NULL, name, w, W_AGGREGATE, arg, &wo);
	if (!n)
		return NULL;
	wo->agg = *agg;
	return weir_env_stream(keyed->env, n);
}

weir_stream *weir_window_process(weir_stream *keyed, const char *name, const weir_window_spec *w,
				 weir_window_process_fn fn, void *arg)
{
	if (keyed && !fn)
		return weir_env_error(keyed->env, "window '%s': process function is NULL", name ? name : "?"), NULL;
	struct window_op *wo;
	struct node *n = window_node(keyed, NULL, name, w, W_PROCESS, arg, &wo);
	if (!n)
		return NULL;
	wo->process = fn;
	return weir_env_stream(keyed->env, n);
}

weir_stream *weir_window_join(weir_stream *a, weir_stream *b, const char *name, const weir_window_spec *w,
			      weir_join_fn fn, void *arg)
{
	if (!a || !b)
		return NULL;
	if (!fn)
		return weir_env_error(a->env, "window join '%s': join function is NULL", name ? name : "?"), NULL;
	struct window_op *wo;
	struct node *n = window_node(a, b, name, w, W_JOIN, arg, &wo);
	if (!n)
		return NULL;
	wo->join = fn;
	return weir_env_stream(a->env, n);
}

weir_stream *weir_late_records(weir_stream *s)
{
	if (!s)
		return NULL;
	if (s->nparts != 1 || !s->env->nodes[s->parts[0].node]->late_tag)
		return weir_env_error(s->env, "late_records: not a window or join operator"), NULL;
	return weir_side_output(s, s->env->nodes[s->parts[0].node]->late_tag);
}
