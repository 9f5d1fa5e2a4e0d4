/*
 * engine/operators/joins.c - the interval join, a keyed operator (engine/operators/keyed.h).
 *
 * Per key it buffers both sides as lists of (timestamp, bytes). A record of
 * side a (left, l) joins every buffered b record (right, r) with
 * l.ts + lower <= r.ts <= l.ts + upper, and symmetrically, so every pair
 * is emitted once: by whichever of its two records came second. Results
 * carry max(l.ts, r.ts).
 *
 * Cleanup by event time, as in Flink: once the watermark reaches
 * l.ts + upper no future right record can match l; once it reaches
 * r.ts - lower no future left record can match r. A timer at that time
 * compacts the key's buffers. Records older than the watermark on arrival
 * are late and go to the late side output.
 */
#include "operators/keyed.h"
#include "operators/chain.h"

#include <stdlib.h>
#include <string.h>

struct interval_join {
	int64_t lower;
	int64_t upper;
	weir_join_fn fn;
	int s_side[2];
};

static int ij_element(weir_ctx *ctx, const weir_rec *rec, int side)
{
	struct opinst *op = ctx->op;
	struct interval_join *j = op->node->impl_arg;
	int64_t ts = rec->ts;
	if (ts == WEIR_TS_NONE)
		return weir_fail(ctx, "an interval join needs timestamps (use weir_assign_timestamps)");
	if (op->wm != WEIR_WATERMARK_MIN && ts < op->wm)
		return weir_emit_side_ts(ctx, op->node->late_tag, rec->data, rec->len, ts);

	/* join with the other side's buffer */
	struct kv_slot *other = keyed_get(op, j->s_side[!side], NULL, 0);
	if (other) {
		/* the callback may emit but touches no state of ours, so the
		 * buffer stays where it is */
		weir_iter it = { .p = weir_kv_val(other), .end = weir_kv_val(other) + other->vlen };
		weir_rec o;
		while (weir_iter_next(&it, &o)) {
			const weir_rec *l = side ? &o : rec, *r = side ? rec : &o;
			if (r->ts < sat_add(l->ts, j->lower) || r->ts > sat_add(l->ts, j->upper))
				continue;
			ctx->cur_ts = l->ts > r->ts ? l->ts : r->ts;
			if (j->fn(ctx, l, r) < 0 || ctx->st->failed)
				return -1;
		}
	}
	/* then keep it for the other side's future records */
	struct kv_slot *mine = keyed_get(op, j->s_side[side], NULL, 0);
	if (!mine && !(mine = keyed_put(op, j->s_side[side], NULL, 0, NULL, 0)))
		return weir_fail(ctx, "out of memory");
	if (keyed_list_append(mine, rec->data, rec->len, ts) < 0)
		return weir_fail(ctx, "out of memory");
	int64_t useless = side ? sat_add(ts, -j->lower) : sat_add(ts, j->upper);
	if (keyed_timer(op, WEIR_EVENT_TIME, useless, NULL, 0, true) < 0)
		return weir_fail(ctx, "out of memory");
	return 0;
}

/* Drop the buffered records of one side that can no longer match. */
static void compact(struct opinst *op, int state, int64_t wm, int64_t shift)
{
	struct kv_slot *s = keyed_get(op, state, NULL, 0);
	if (!s)
		return;
	uint8_t *base = weir_kv_val(s), *w = base;
	weir_iter it = { .p = base, .end = base + s->vlen };
	weir_rec r;
	const uint8_t *item = it.p;
	while (weir_iter_next(&it, &r)) {
		uint32_t sz = (uint32_t)(it.p - item);
		if (sat_add(r.ts, shift) > wm) { /* may still match: keep */
			memmove(w, item, sz);
			w += sz;
		}
		item = it.p;
	}
	s->vlen = (uint32_t)(w - base);
	if (!s->vlen)
		keyed_del(op, state, NULL, 0);
}

static int ij_timer(weir_ctx *ctx, int64_t time, enum weir_time_domain d, const uint8_t *ns, uint32_t nslen)
{
	(void)time, (void)d, (void)ns, (void)nslen;
	struct opinst *op = ctx->op;
	struct interval_join *j = op->node->impl_arg;
	compact(op, j->s_side[0], op->wm, j->upper);
	compact(op, j->s_side[1], op->wm, -j->lower);
	return 0;
}

static const struct keyed_impl interval_impl = { ij_element, ij_timer };

weir_stream *weir_interval_join(weir_stream *a, weir_stream *b, const char *name, int64_t lower_ms,
				int64_t upper_ms, weir_join_fn fn, void *arg)
{
	if (!a || !b)
		return NULL;
	if (!fn || lower_ms > upper_ms || lower_ms < -(INT64_C(1) << 62) || upper_ms > (INT64_C(1) << 62))
		return weir_env_error(a->env, "interval join '%s': needs a join function and lower <= upper "
				      "(within +-2^62 ms)",
				      name ? name : "?"), NULL;
	struct interval_join *j = calloc(1, sizeof(*j));
	if (!j)
		return weir_env_error(a->env, "out of memory"), NULL;
	struct node *n = weir_keyed_node(a, b, name, &interval_impl);
	if (!n) {
		free(j);
		return NULL;
	}
	j->lower = lower_ms;
	j->upper = upper_ms;
	j->fn = fn;
	n->impl_arg = j;
	n->hooks.free_arg = free;
	n->arg = arg;
	j->s_side[0] = weir_node_state(a->env, n, "left", WEIR_LIST_STATE);
	j->s_side[1] = weir_node_state(a->env, n, "right", WEIR_LIST_STATE);
	n->late_tag = weir_node_tag(a->env, n, "late");
	if (j->s_side[0] < 0 || j->s_side[1] < 0 || n->late_tag < 0)
		return NULL;
	return weir_env_stream(a->env, n);
}
