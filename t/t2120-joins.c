/* t2120-joins: two-input operators against nested loops written here.
 *
 * Two custom sources a and b emit records {key, value, ts}, each out of
 * order by at most B ms, through weir_assign_timestamps and weir_key_by.
 *  - weir_window_join (tumbling, sliding): exactly the pairs (l, r) with
 *    the same key in the same window, one per common window, timestamp
 *    end - 1;
 *  - weir_interval_join: exactly the pairs with the same key and
 *    l.ts + lower <= r.ts <= l.ts + upper, timestamp max(l.ts, r.ts);
 *  - weir_co_process: keyed state shared by both inputs (a count both
 *    sides add to, values of one side read by timers of the other), and a
 *    timer registered by side b at its record's time sees every record of
 *    side a at or before that time (the watermark is the minimum of both).
 * Parallelism 1 and 2 (and mixed) for sources and the operator. Nothing is
 * late by construction. Randomized; WEIR_SEED=N replays. */
#include "tap.h"
#include "jobtest.h"
#include "runtime/run.h"
#include "base/err.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct in_rec {
	uint64_t key;
	int64_t val;	/* unique within a side, >= 1 */
	int64_t ts;
} in_rec;

/* ---- two sources ---------------------------------------------------------------- */

struct side {
	in_rec *v;
	int n;
	int next[16];	/* per subtask, stride P */
	int64_t bound;
};
static struct side A, B;

static int src_poll(weir_ctx *ctx)
{
	struct side *s = weir_ctx_arg(ctx);
	int me = weir_ctx_subtask(ctx), p = weir_ctx_parallelism(ctx);
	uint32_t batch = weir_ctx_batch(ctx), n = 0;
	while (s->next[me] < s->n && n < batch) {
		in_rec *r = &s->v[s->next[me]];
		if (weir_emit_ts(ctx, r, sizeof(*r), r->ts) < 0)
			return -1;
		s->next[me] += p;
		n++;
	}
	return s->next[me] < s->n ? WEIR_SOURCE_MORE : WEIR_SOURCE_END;
}

static void gen_side(struct side *s, uint64_t *rnd, int n, int nkeys, int64_t b, int64_t start)
{
	free(s->v);
	s->v = calloc((size_t)n, sizeof(in_rec));
	s->n = n;
	s->bound = b;
	int64_t clock = start + b + 1;
	for (int i = 0; i < n; i++) {
		clock += (int64_t)(tap_rand(rnd) % 3);
		if (tap_rand(rnd) % 150 == 0)
			clock += 30 + (int64_t)(tap_rand(rnd) % 100);
		int64_t ts = clock - (int64_t)(tap_rand(rnd) % (uint64_t)(b + 1));
		s->v[i] = (in_rec){ tap_rand(rnd) % (uint64_t)nkeys, i + 1, ts };
	}
}

static void reset_sides(void)
{
	for (int i = 0; i < 16; i++)
		A.next[i] = B.next[i] = i;
}

/* source -> assign -> key_by, parallelism p. The assigner's parallelism
 * is set too: it must run chained to the source, on each subtask's own
 * bounded out-of-order stream (see test_assigner_chained). */
static weir_stream *keyed_side(weir_env *env, const char *name, struct side *s, int p)
{
	weir_stream *x = weir_set_parallelism(weir_source(env, name, src_poll, s), p);
	x = x ? weir_set_parallelism(weir_assign_timestamps(x, p == 1 ? ts_of : NULL, s->bound, 0), p) : NULL;
	return x ? weir_key_by(x, key_of, NULL) : NULL;
}

/* ---- collected output --------------------------------------------------------------- */

#define OUTW 6
typedef struct out_rec {
	int64_t f[OUTW];
	int64_t ts;
} out_rec;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static out_rec *got;
static int ngot, got_cap;
static in_rec late_v[16];
static int nlate;

static void reset_got(int cap)
{
	free(got);
	got = calloc((size_t)cap, sizeof(out_rec));
	got_cap = cap;
	ngot = 0;
	nlate = 0;
	bad_key = 0;
}

static int sink(weir_ctx *ctx, const weir_rec *r)
{
	out_rec o = { { 0 }, r->ts };
	memcpy(o.f, r->data, r->len < sizeof(o.f) ? r->len : sizeof(o.f));
	pthread_mutex_lock(&lock);
	if (ngot < got_cap)
		got[ngot] = o;
	ngot++;
	pthread_mutex_unlock(&lock);
	return 0;
}

static int late_sink(weir_ctx *ctx, const weir_rec *r)
{
	pthread_mutex_lock(&lock);
	if (nlate < 16 && r->len == sizeof(in_rec))
		memcpy(&late_v[nlate], r->data, sizeof(in_rec));
	nlate++;
	pthread_mutex_unlock(&lock);
	return 0;
}

static int cmp_out(const void *pa, const void *pb)
{
	const int64_t *a = pa, *b = pb;
	for (int i = 0; i < OUTW + 1; i++)
		if (a[i] != b[i])
			return a[i] < b[i] ? -1 : 1;
	return 0;
}

static bool same(out_rec *g, int ng, out_rec *want, int nwant, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));
static bool same(out_rec *g, int ng, out_rec *want, int nwant, const char *fmt, ...)
{
	char what[256];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	int n = ng < got_cap ? ng : got_cap;
	qsort(g, (size_t)n, sizeof(out_rec), cmp_out);
	qsort(want, (size_t)nwant, sizeof(out_rec), cmp_out);
	int i = 0, j = 0, missing = 0, extra = 0, shown = 0;
	while (i < nwant || j < n) {
		int k = i == nwant ? 1 : j == n ? -1 : cmp_out(&want[i], &g[j]);
		const out_rec *o = k < 0 ? &want[i] : &g[j];
		if (k && shown++ < 6)
			diag("    %s {%lld, %lld, %lld, %lld, %lld, %lld} ts %lld", k < 0 ? "missing" : "unexpected",
			     (long long)o->f[0], (long long)o->f[1], (long long)o->f[2], (long long)o->f[3],
			     (long long)o->f[4], (long long)o->f[5], (long long)o->ts);
		if (k == 0)
			i++, j++;
		else if (k < 0)
			missing++, i++;
		else
			extra++, j++;
	}
	return ok(!missing && !extra && ng <= got_cap,
		  "%s: %d records, exactly as the reference (%d missing, %d unexpected)", what, ng, missing, extra);
}

/* ---- joins --------------------------------------------------------------------------------- */

/* a pair: {l.key, l.val, l.ts, r.key, r.val, r.ts} */
static int join_fn(weir_ctx *ctx, const weir_rec *l, const weir_rec *r)
{
	in_rec a, b;
	memcpy(&a, l->data, sizeof(a));
	memcpy(&b, r->data, sizeof(b));
	if (l->ts != a.ts || r->ts != b.ts || cur_key(ctx) != (int64_t)a.key)
		__atomic_fetch_add(&bad_key, 1, __ATOMIC_RELAXED);
	int64_t out[OUTW] = { (int64_t)a.key, a.val, a.ts, (int64_t)b.key, b.val, b.ts };
	return weir_emit(ctx, out, sizeof(out));
}

/* nested loop: for every (l, r) of the same key, one pair per window
 * [s, s+size), s = offset + k*slide, holding both */
static int ref_window_join(int64_t size, int64_t slide, int64_t offset, out_rec *want, int cap)
{
	int n = 0;
	for (int i = 0; i < A.n; i++)
		for (int j = 0; j < B.n; j++) {
			const in_rec *l = &A.v[i], *r = &B.v[j];
			if (l->key != r->key)
				continue;
			int64_t last = l->ts - mod_pos(l->ts - offset, slide);
			for (int64_t s = last; s > l->ts - size; s -= slide)
				if (s <= r->ts && r->ts < s + size) {
					if (n == cap)
						bail("reference: more than %d pairs", cap);
					want[n++] = (out_rec){ { (int64_t)l->key, l->val, l->ts, (int64_t)r->key, r->val, r->ts },
							       s + size - 1 };
				}
		}
	return n;
}

static int ref_interval_join(int64_t lower, int64_t upper, out_rec *want, int cap)
{
	int n = 0;
	for (int i = 0; i < A.n; i++)
		for (int j = 0; j < B.n; j++) {
			const in_rec *l = &A.v[i], *r = &B.v[j];
			if (l->key == r->key && l->ts + lower <= r->ts && r->ts <= l->ts + upper) {
				if (n == cap)
					bail("reference: more than %d pairs", cap);
				want[n++] = (out_rec){ { (int64_t)l->key, l->val, l->ts, (int64_t)r->key, r->val, r->ts },
						       l->ts > r->ts ? l->ts : r->ts };
			}
		}
	return n;
}

#define PAIRS_CAP 300000

static void test_window_join(uint64_t *rnd, bool sliding, int pa, int pb, int pj)
{
	int nkeys = 1 + (int)(tap_rand(rnd) % 8);
	gen_side(&A, rnd, 1000, nkeys, 1 + (int64_t)(tap_rand(rnd) % 25), 0);
	gen_side(&B, rnd, 1000, nkeys, 1 + (int64_t)(tap_rand(rnd) % 25), (int64_t)(tap_rand(rnd) % 40));
	int64_t size = 5 + (int64_t)(tap_rand(rnd) % 30);
	/* up to 3 windows per record; slide may exceed size (gaps) */
	int64_t slide = sliding ? size / 3 + 1 + (int64_t)(tap_rand(rnd) % (uint64_t)(size - size / 3 + 1)) : size;
	int64_t offset = (int64_t)(tap_rand(rnd) % (uint64_t)slide);
	weir_window_spec w = sliding ? weir_sliding(WEIR_EVENT_TIME, size, slide) : weir_tumbling(WEIR_EVENT_TIME, size);
	w.offset_ms = offset;
	reset_sides();
	reset_got(PAIRS_CAP);
	weir_env *env = weir_env_create(pj);
	weir_stream *a = keyed_side(env, "a", &A, pa), *b = keyed_side(env, "b", &B, pb);
	BUILT(env, a && b);
	weir_stream *j = weir_window_join(a, b, "wjoin", &w, join_fn, NULL);
	BUILT(env, j);
	weir_stream *late = weir_late_records(j);
	BUILT(env, late);
	weir_sink(j, "sink", sink, NULL);
	weir_sink(late, "late", late_sink, NULL);
	BUILT(env, j);
	int rc = run(env);
	char what[160];
	snprintf(what, sizeof(what), "window join, %s size %lld slide %lld offset %lld, %d keys, p=%d+%d/%d",
		 sliding ? "sliding" : "tumbling", (long long)size, (long long)slide, (long long)offset, nkeys, pa, pb, pj);
	is_int(rc, 0, "%s: runs: %s", what, rc ? weir_err_msg() : "");
	out_rec *want = malloc(sizeof(out_rec) * PAIRS_CAP);
	int nwant = ref_window_join(size, slide, offset, want, PAIRS_CAP);
	/* docs/api.md: for each left record in arrival order, for each right
	 * record in arrival order. With one subtask everywhere the sink sees
	 * the pairs as emitted, and arrival order is value order. */
	int disorder = 0;
	if (pa == 1 && pb == 1 && pj == 1)
		for (int i = 1; i < ngot && i < got_cap; i++) {
			const int64_t *x = got[i - 1].f, *y = got[i].f;
			if (got[i].ts == got[i - 1].ts && x[0] == y[0] &&
			    (y[1] < x[1] || (y[1] == x[1] && y[4] <= x[4])) && disorder++ < 3)
				diag("    pair (%lld, %lld) came after (%lld, %lld) in window ending %lld", (long long)y[1],
				     (long long)y[4], (long long)x[1], (long long)x[4], (long long)got[i].ts + 1);
		}
	same(got, ngot, want, nwant, "%s: the nested loop's pairs", what);
	if (pa == 1 && pb == 1 && pj == 1)
		is_int(disorder, 0, "%s: each window's pairs in nested-loop order (left, then right, by arrival)", what);
	is_int(bad_key, 0, "%s: join function sees the key and the timestamps", what);
	is_int(nlate, 0, "%s: nothing is late, so weir_late_records is empty", what);
	for (int i = 0; i < nlate && i < 4; i++)
		diag("    on the late output: key %llu value %lld ts %lld (%s)", (unsigned long long)late_v[i].key,
		     (long long)late_v[i].val, (long long)late_v[i].ts,
		     late_v[i].ts - (late_v[i].ts - mod_pos(late_v[i].ts - offset, slide)) < size
			     ? "in a window"
			     : "in no window: a gap between sliding windows");
	free(want);
}

static void test_interval_join(uint64_t *rnd, int pa, int pb, int pj)
{
	int nkeys = 1 + (int)(tap_rand(rnd) % 8);
	gen_side(&A, rnd, 1500, nkeys, 1 + (int64_t)(tap_rand(rnd) % 25), 0);
	gen_side(&B, rnd, 1500, nkeys, 1 + (int64_t)(tap_rand(rnd) % 25), (int64_t)(tap_rand(rnd) % 40));
	int64_t lower = -40 + (int64_t)(tap_rand(rnd) % 61);
	int64_t upper = lower + (int64_t)(tap_rand(rnd) % 41);
	reset_sides();
	reset_got(PAIRS_CAP);
	weir_env *env = weir_env_create(pj);
	weir_stream *a = keyed_side(env, "a", &A, pa), *b = keyed_side(env, "b", &B, pb);
	BUILT(env, a && b);
	weir_stream *j = weir_interval_join(a, b, "ijoin", lower, upper, join_fn, NULL);
	BUILT(env, j);
	weir_stream *late = weir_late_records(j);
	BUILT(env, late);
	weir_sink(j, "sink", sink, NULL);
	weir_sink(late, "late", late_sink, NULL);
	BUILT(env, j);
	int rc = run(env);
	char what[160];
	snprintf(what, sizeof(what), "interval join [%lld, %lld], %d keys, B=%lld/%lld, p=%d+%d/%d", (long long)lower,
		 (long long)upper, nkeys, (long long)A.bound, (long long)B.bound, pa, pb, pj);
	is_int(rc, 0, "%s: runs: %s", what, rc ? weir_err_msg() : "");
	out_rec *want = malloc(sizeof(out_rec) * PAIRS_CAP);
	int nwant = ref_interval_join(lower, upper, want, PAIRS_CAP);
	same(got, ngot, want, nwant, "%s: the nested loop's pairs, timestamp max(l.ts, r.ts)", what);
	is_int(bad_key, 0, "%s: join function sees the key and the timestamps", what);
	is_int(nlate, 0, "%s: nothing is below the watermark, so weir_late_records is empty", what);
	free(want);
}

/* Session window join (gap odd, timestamps even: never exactly a gap
 * apart, so no two windows just touch). Per key, the sessions are those of
 * both sides' records together (sorted by ts, a new session where ts > the
 * current end); every a x b pair within one session, timestamp end - 1. */
static int cmp_ts(const void *pa, const void *pb)
{
	const in_rec *a = pa, *b = pb;
	if (a->key != b->key)
		return a->key < b->key ? -1 : 1;
	if (a->ts != b->ts)
		return a->ts < b->ts ? -1 : 1;
	return a->val < b->val ? -1 : a->val > b->val;
}

static int ref_session_join(int64_t gap, out_rec *want, int cap)
{
	/* val > 0: side a; val < 0: side b (-val) */
	int n = A.n + B.n, nw = 0;
	in_rec *u = malloc(sizeof(in_rec) * (size_t)n);
	for (int i = 0; i < A.n; i++)
		u[i] = A.v[i];
	for (int i = 0; i < B.n; i++)
		u[A.n + i] = (in_rec){ B.v[i].key, -B.v[i].val, B.v[i].ts };
	qsort(u, (size_t)n, sizeof(in_rec), cmp_ts);
	for (int i = 0; i < n;) {
		int j = i + 1;
		int64_t end = u[i].ts + gap;
		while (j < n && u[j].key == u[i].key && u[j].ts <= end) {
			if (u[j].ts + gap > end)
				end = u[j].ts + gap;
			j++;
		}
		for (int x = i; x < j; x++)
			for (int y = i; y < j; y++)
				if (u[x].val > 0 && u[y].val < 0) {
					if (nw == cap)
						bail("reference: more than %d pairs", cap);
					want[nw++] = (out_rec){ { (int64_t)u[x].key, u[x].val, u[x].ts, (int64_t)u[y].key,
								  -u[y].val, u[y].ts },
								end - 1 };
				}
		i = j;
	}
	free(u);
	return nw;
}

static void test_session_join(uint64_t *rnd, int pa, int pb, int pj)
{
	int nkeys = 2 + (int)(tap_rand(rnd) % 10);
	gen_side(&A, rnd, 400, nkeys, 1 + (int64_t)(tap_rand(rnd) % 10), 0);
	gen_side(&B, rnd, 400, nkeys, 1 + (int64_t)(tap_rand(rnd) % 10), (int64_t)(tap_rand(rnd) % 40));
	for (int i = 0; i < A.n; i++)
		A.v[i].ts *= 2;
	for (int i = 0; i < B.n; i++)
		B.v[i].ts *= 2;
	A.bound *= 2;
	B.bound *= 2;
	int64_t gap = 2 * (int64_t)(tap_rand(rnd) % (uint64_t)(2 * nkeys)) + 1;
	weir_window_spec w = weir_session(WEIR_EVENT_TIME, gap);
	reset_sides();
	reset_got(PAIRS_CAP);
	weir_env *env = weir_env_create(pj);
	weir_stream *a = keyed_side(env, "a", &A, pa), *b = keyed_side(env, "b", &B, pb);
	BUILT(env, a && b);
	weir_stream *j = weir_window_join(a, b, "sjoin", &w, join_fn, NULL);
	BUILT(env, j);
	weir_stream *late = weir_late_records(j);
	BUILT(env, late);
	weir_sink(j, "sink", sink, NULL);
	weir_sink(late, "late", late_sink, NULL);
	BUILT(env, j);
	int rc = run(env);
	char what[160];
	snprintf(what, sizeof(what), "window join, session gap %lld, %d keys, p=%d+%d/%d", (long long)gap, nkeys, pa, pb, pj);
	is_int(rc, 0, "%s: runs: %s", what, rc ? weir_err_msg() : "");
	out_rec *want = malloc(sizeof(out_rec) * PAIRS_CAP);
	int nwant = ref_session_join(gap, want, PAIRS_CAP);
	same(got, ngot, want, nwant, "%s: the pairs of each session of both sides together", what);
	is_int(bad_key, 0, "%s: join function sees the key and the timestamps", what);
	is_int(nlate, 0, "%s: nothing is late, so weir_late_records is empty", what);
	free(want);
}

/* An interval join emits a pair as soon as its second record arrives,
 * without waiting for a watermark (docs/api.md): a and b each emit one
 * record (key 1, ts 100; B = 0, so both watermarks stay at 99) and then
 * stay idle; b waits (at most 3 s) for the pair to reach the sink before
 * either source ends. */
static int imm_done, imm_seen;
static uint64_t imm_t0[2];	/* per side: each source touches its own */

static int imm_poll(weir_ctx *ctx)
{
	struct side *s = weir_ctx_arg(ctx);
	static const in_rec r = { 1, 1, 100 };
	if (s->next[0] == 0) {
		s->next[0] = 1;
		imm_t0[s == &B] = weir_ctx_now_ns(ctx);
		return weir_emit_ts(ctx, &r, sizeof(r), r.ts) < 0 ? -1 : WEIR_SOURCE_MORE;
	}
	if (s == &B && !__atomic_load_n(&imm_done, __ATOMIC_ACQUIRE)) {
		pthread_mutex_lock(&lock);
		int n = ngot;
		pthread_mutex_unlock(&lock);
		if (n || weir_ctx_now_ns(ctx) - imm_t0[1] > 3000000000ull) {
			imm_seen = n;
			__atomic_store_n(&imm_done, 1, __ATOMIC_RELEASE);
		}
	}
	if (__atomic_load_n(&imm_done, __ATOMIC_ACQUIRE))
		return WEIR_SOURCE_END;
	weir_ctx_idle_until(ctx, weir_ctx_now_ns(ctx) + 1000000);
	return WEIR_SOURCE_IDLE;
}

static void test_interval_join_immediate(void)
{
	reset_sides();
	A.next[0] = B.next[0] = 0;
	reset_got(16);
	imm_done = imm_seen = 0;
	weir_env *env = weir_env_create(1);
	weir_stream *a = weir_assign_timestamps(weir_source(env, "a", imm_poll, &A), ts_of, 0, 0);
	weir_stream *b = weir_assign_timestamps(weir_source(env, "b", imm_poll, &B), ts_of, 0, 0);
	BUILT(env, a && b);
	weir_stream *j = weir_interval_join(weir_key_by(a, key_of, NULL), weir_key_by(b, key_of, NULL), "ijoin", 0, 0,
					    join_fn, NULL);
	BUILT(env, j);
	weir_sink(j, "sink", sink, NULL);
	BUILT(env, j);
	int rc = run(env);
	is_int(rc, 0, "interval join, one record a side: runs: %s", rc ? weir_err_msg() : "");
	ok(imm_seen == 1 && ngot == 1, "the pair is emitted when its second record arrives, while the watermark is still "
	   "below it (seen while waiting: %d; in all: %d)", imm_seen, ngot);
}

/* ---- union of two watermarked streams into one window -------------------------- */

/*
 * Sides a and b, each with its own assigner (and bound), unioned, keyed,
 * tumbling windows of S (reduce: sum of values, largest ts). b has half
 * as many records over the same event time (twice the spacing), so the
 * two inputs advance at different speeds per record: the union's
 * watermark is the minimum of both, and nothing may fire before the slower
 * one has caught up. b's values are offset by 10^6. Reference: per (key,
 * window) over a and b together.
 */
static int u_reduce(weir_ctx *ctx, const weir_rec *acc, const weir_rec *in)
{
	in_rec x, y;
	memcpy(&x, acc->data, sizeof(x));
	memcpy(&y, in->data, sizeof(y));
	if (x.key != y.key)
		__atomic_fetch_add(&bad_key, 1, __ATOMIC_RELAXED);
	x.val += y.val;
	if (y.ts > x.ts)
		x.ts = y.ts;
	return weir_emit(ctx, &x, sizeof(x));
}

static int u_result(weir_ctx *ctx, const weir_rec *acc)
{
	in_rec x;
	memcpy(&x, acc->data, sizeof(x));
	int64_t out[OUTW] = { (int64_t)x.key, 0, 0, x.val, x.ts, 0 };
	if (weir_ctx_window(ctx, &out[1], &out[2]) < 0)
		return weir_fail(ctx, "weir_ctx_window failed");
	return weir_emit(ctx, out, sizeof(out));
}

static int cmp_kwt(const void *pa, const void *pb)
{
	const int64_t *a = pa, *b = pb;	/* key, window start, val, ts */
	for (int i = 0; i < 2; i++)
		if (a[i] != b[i])
			return a[i] < b[i] ? -1 : 1;
	return 0;
}

static void test_union_window(uint64_t *rnd, int pa, int pb, int pw)
{
	int nkeys = 1 + (int)(tap_rand(rnd) % 10);
	gen_side(&A, rnd, 3000, nkeys, 1 + (int64_t)(tap_rand(rnd) % 25), 0);
	gen_side(&B, rnd, 1500, nkeys, 1 + (int64_t)(tap_rand(rnd) % 12), 0);
	for (int i = 0; i < B.n; i++)
		B.v[i].ts *= 2, B.v[i].val += 1000000;
	B.bound *= 2;
	int64_t size = 5 + (int64_t)(tap_rand(rnd) % 40);
	int n = A.n + B.n;
	int64_t(*t)[4] = malloc(sizeof(*t) * (size_t)n);
	for (int i = 0; i < n; i++) {
		const in_rec *r = i < A.n ? &A.v[i] : &B.v[i - A.n];
		t[i][0] = (int64_t)r->key, t[i][1] = r->ts - mod_pos(r->ts, size), t[i][2] = r->val, t[i][3] = r->ts;
	}
	qsort(t, (size_t)n, sizeof(*t), cmp_kwt);
	out_rec *want = calloc((size_t)n, sizeof(out_rec));
	int nw = 0;
	for (int i = 0; i < n;) {
		int j = i;
		int64_t sum = 0, max = INT64_MIN;
		for (; j < n && !cmp_kwt(t[i], t[j]); j++)
			sum += t[j][2], max = t[j][3] > max ? t[j][3] : max;
		want[nw++] = (out_rec){ { t[i][0], t[i][1], t[i][1] + size, sum, max }, t[i][1] + size - 1 };
		i = j;
	}
	free(t);
	reset_sides();
	reset_got(n + 64);
	weir_env *env = weir_env_create(pw);
	weir_stream *a = weir_set_parallelism(weir_source(env, "a", src_poll, &A), pa);
	weir_stream *b = weir_set_parallelism(weir_source(env, "b", src_poll, &B), pb);
	a = a ? weir_assign_timestamps(a, ts_of, A.bound, 0) : NULL;
	b = b ? weir_assign_timestamps(b, NULL, B.bound, 0) : NULL;
	weir_stream *u = a && b ? weir_union(a, b) : NULL;
	weir_window_spec w = weir_tumbling(WEIR_EVENT_TIME, size);
	weir_stream *win = u ? weir_window_reduce(weir_key_by(u, key_of, NULL), "win", &w, u_reduce, u_result, NULL) : NULL;
	BUILT(env, win);
	weir_stream *late = weir_late_records(win);
	BUILT(env, late);
	weir_sink(win, "sink", sink, NULL);
	weir_sink(late, "late", late_sink, NULL);
	BUILT(env, win);
	int rc = run(env);
	char what[160];
	snprintf(what, sizeof(what), "union of two assigners, tumbling %lld, %d keys, p=%d+%d/%d",
		 (long long)size, nkeys, pa, pb, pw);
	is_int(rc, 0, "%s: runs: %s", what, rc ? weir_err_msg() : "");
	same(got, ngot, want, nw, "%s: one result per (key, window) over both inputs", what);
	is_int(nlate, 0, "%s: the watermark is the minimum of both: nothing is late", what);
	is_int(bad_key, 0, "%s: reduce sees one key", what);
	free(want);
}

/* ---- co_process ---------------------------------------------------------------------------- */

/*
 * Shared keyed state: "cnt" (reducing, +1 per record from either side),
 * "alist" (list of a's values), "amax" (value: largest a.ts so far),
 * "bsum" (reducing, b's values).
 *   a record:  cnt += 1, alist += val, amax = max(amax, ts), timer at END;
 *              emit {0, key, cnt}
 *   b record:  cnt += 1, bsum += val, timer at END and at b.ts;
 *              emit {0, key, cnt}
 *   timer END: emit {1, key, cnt, len(alist), sum(alist), bsum}
 *   timer t:   emit {2, key, t, amax}: every a record of the key with
 *              ts <= t has come (the watermark is the min of both inputs),
 *              so amax >= the largest such ts.
 * Per key the {0, key, cnt} records are exactly 1..(records of the key).
 */
#define END_TIME 1000000000000ll
static int s_cnt, s_alist, s_amax, s_bsum;

static int add_reduce(weir_ctx *ctx, const weir_rec *acc, const weir_rec *in)
{
	int64_t s = i64at(acc->data, 0) + i64at(in->data, 0);
	return weir_emit(ctx, &s, 8);
}

static int co_common(weir_ctx *ctx, const in_rec *r)
{
	if (cur_key(ctx) != (int64_t)r->key)
		__atomic_fetch_add(&bad_key, 1, __ATOMIC_RELAXED);
	int64_t one = 1;
	weir_rec v;
	if (weir_reducing_add(ctx, s_cnt, &one, 8) < 0 || weir_value_get(ctx, s_cnt, &v) != 1)
		return weir_fail(ctx, "cnt state");
	int64_t cnt = i64at(v.data, 0); /* v is valid until the next state or timer call */
	if (weir_timer_register(ctx, WEIR_EVENT_TIME, END_TIME) < 0)
		return weir_fail(ctx, "timer_register");
	int64_t out[3] = { 0, (int64_t)r->key, cnt };
	return weir_emit(ctx, out, sizeof(out));
}

static int co_a(weir_ctx *ctx, const weir_rec *in)
{
	in_rec r;
	memcpy(&r, in->data, sizeof(r));
	weir_rec v;
	if (weir_list_add(ctx, s_alist, &r.val, 8) < 0)
		return weir_fail(ctx, "list_add");
	int rc = weir_value_get(ctx, s_amax, &v);
	if (rc < 0)
		return weir_fail(ctx, "value_get");
	if (rc == 0 || i64at(v.data, 0) < r.ts)
		if (weir_value_set(ctx, s_amax, &r.ts, 8) < 0)
			return weir_fail(ctx, "value_set");
	return co_common(ctx, &r);
}

static int co_b(weir_ctx *ctx, const weir_rec *in)
{
	in_rec r;
	memcpy(&r, in->data, sizeof(r));
	if (weir_reducing_add(ctx, s_bsum, &r.val, 8) < 0)
		return weir_fail(ctx, "reducing_add");
	if (weir_timer_register(ctx, WEIR_EVENT_TIME, r.ts) < 0)
		return weir_fail(ctx, "timer_register");
	return co_common(ctx, &r);
}

static int co_timer(weir_ctx *ctx, int64_t time, enum weir_time_domain d)
{
	int64_t k = cur_key(ctx);
	weir_rec v;
	if (time == END_TIME) {
		int64_t out[6] = { 1, k, 0, 0, 0, 0 };
		if (weir_value_get(ctx, s_cnt, &v) == 1)
			out[2] = i64at(v.data, 0);
		weir_iter it;
		if (weir_list_iter(ctx, s_alist, &it) < 0)
			return weir_fail(ctx, "list_iter");
		while (weir_iter_next(&it, &v) == 1)
			out[3]++, out[4] += i64at(v.data, 0);
		if (weir_value_get(ctx, s_bsum, &v) == 1)
			out[5] = i64at(v.data, 0);
		return weir_emit(ctx, out, sizeof(out));
	}
	int64_t out[4] = { 2, k, time, INT64_MIN };
	if (weir_value_get(ctx, s_amax, &v) == 1)
		out[3] = i64at(v.data, 0);
	return weir_emit(ctx, out, sizeof(out));
}

static void test_co_process(uint64_t *rnd, int pa, int pb, int pc)
{
	int nkeys = 1 + (int)(tap_rand(rnd) % 12);
	gen_side(&A, rnd, 3000, nkeys, 1 + (int64_t)(tap_rand(rnd) % 25), 0);
	gen_side(&B, rnd, 2000, nkeys, 1 + (int64_t)(tap_rand(rnd) % 25), (int64_t)(tap_rand(rnd) % 40));
	reset_sides();
	reset_got(A.n + 2 * B.n + 64);
	weir_env *env = weir_env_create(pc);
	weir_stream *a = keyed_side(env, "a", &A, pa), *b = keyed_side(env, "b", &B, pb);
	BUILT(env, a && b);
	weir_stream *c = weir_co_process(a, b, "co", co_a, co_b, co_timer, NULL);
	BUILT(env, c);
	s_cnt = weir_declare_state(c, &(weir_state_desc){ .name = "cnt", .kind = WEIR_REDUCING_STATE, .reduce = add_reduce });
	s_alist = weir_declare_state(c, &(weir_state_desc){ .name = "alist", .kind = WEIR_LIST_STATE });
	s_amax = weir_declare_state(c, &(weir_state_desc){ .name = "amax", .kind = WEIR_VALUE_STATE });
	s_bsum = weir_declare_state(c, &(weir_state_desc){ .name = "bsum", .kind = WEIR_REDUCING_STATE, .reduce = add_reduce });
	weir_sink(c, "sink", sink, NULL);
	BUILT(env, c);
	int rc = run(env);
	char what[128];
	snprintf(what, sizeof(what), "co_process, %d keys, p=%d+%d/%d", nkeys, pa, pb, pc);
	is_int(rc, 0, "%s: runs: %s", what, rc ? weir_err_msg() : "");
	int n = ngot < got_cap ? ngot : got_cap;

	/* type 0 and 1: exact */
	out_rec *want = calloc((size_t)got_cap + 64, sizeof(out_rec));
	out_rec *g01 = calloc((size_t)got_cap + 64, sizeof(out_rec));
	int nw = 0, ng01 = 0;
	for (int k = 0; k < nkeys; k++) {
		int64_t cnt = 0, alen = 0, asum = 0, bsum = 0;
		for (int i = 0; i < A.n; i++)
			if ((int)A.v[i].key == k)
				cnt++, alen++, asum += A.v[i].val;
		for (int i = 0; i < B.n; i++)
			if ((int)B.v[i].key == k)
				cnt++, bsum += B.v[i].val;
		for (int64_t c1 = 1; c1 <= cnt; c1++)
			want[nw++] = (out_rec){ { 0, k, c1 }, 0 };
		if (cnt)
			want[nw++] = (out_rec){ { 1, k, cnt, alen, asum, bsum }, END_TIME };
	}
	/* the running counts carry the record's timestamp: compare without it */
	for (int i = 0; i < n; i++)
		if (got[i].f[0] != 2) {
			g01[ng01] = got[i];
			if (got[i].f[0] == 0)
				g01[ng01].ts = 0;
			ng01++;
		}
	same(g01, ng01, want, nw, "%s: shared count per key runs 1..n over both inputs; final state per key", what);

	/* type 2: one per distinct (key, b.ts), amax >= the latest a.ts <= t */
	int nt = 0, stale = 0, shown = 0;
	for (int i = 0; i < B.n; i++) {
		bool dup = false;
		for (int j = 0; j < i && !dup; j++)
			dup = B.v[j].key == B.v[i].key && B.v[j].ts == B.v[i].ts;
		if (!dup)
			want[nt++] = (out_rec){ { 2, (int64_t)B.v[i].key, B.v[i].ts }, B.v[i].ts };
	}
	out_rec *g2 = calloc((size_t)got_cap + 64, sizeof(out_rec));
	int ng2 = 0;
	for (int i = 0; i < n; i++) {
		if (got[i].f[0] != 2)
			continue;
		int64_t k = got[i].f[1], t = got[i].f[2], need = INT64_MIN;
		for (int j = 0; j < A.n; j++)
			if ((int64_t)A.v[j].key == k && A.v[j].ts <= t && A.v[j].ts > need)
				need = A.v[j].ts;
		if (got[i].f[3] < need) {
			stale++;
			if (shown++ < 5)
				diag("    timer %lld of key %lld saw a's latest ts %lld, but a has a record at %lld <= %lld",
				     (long long)t, (long long)k, (long long)got[i].f[3], (long long)need, (long long)t);
		}
		g2[ng2] = got[i];
		g2[ng2].f[3] = 0;
		ng2++;
	}
	same(g2, ng2, want, nt, "%s: side b's timers fire once per (key, time), timestamp time", what);
	is_int(stale, 0, "%s: a timer at t sees every record of the other input at or before t", what);
	is_int(bad_key, 0, "%s: both functions see their record's key", what);
	free(want);
	free(g01);
	free(g2);
}

int main(void)
{
	uint64_t rnd = jobtest_start();
	test_window_join(&rnd, false, 1, 1, 1);
	test_window_join(&rnd, false, 2, 1, 2);
	test_window_join(&rnd, true, 1, 1, 1);
	test_window_join(&rnd, true, 1, 2, 2);
	test_session_join(&rnd, 1, 1, 1);
	test_session_join(&rnd, 2, 1, 2);
	test_interval_join(&rnd, 1, 1, 1);
	test_interval_join(&rnd, 2, 2, 2);
	test_interval_join(&rnd, 1, 2, 2);
	test_interval_join(&rnd, 2, 1, 1);
	test_interval_join_immediate();
	test_union_window(&rnd, 1, 1, 1);
	test_union_window(&rnd, 2, 1, 3);
	test_co_process(&rnd, 1, 1, 1);
	test_co_process(&rnd, 2, 1, 2);
	test_co_process(&rnd, 1, 2, 3);
	free(A.v);
	free(B.v);
	free(got);
	done_testing();
}
