/* t2100-windows: event-time windows against reference implementations
 * written here (no engine code).
 *
 * A custom source emits records {key, value, ts} in an order that is out
 * of order by at most B ms (every record's ts >= the largest ts before it
 * - B), weir_assign_timestamps with bound B makes the watermark, the
 * stream is keyed by key, and a window operator (reduce, aggregate or
 * full-window process) emits one {key, start, end, sum, count, x} per
 * firing. Since no record is late, every (key, window) must fire exactly
 * once with exactly its records, whatever the parallelism: tumbling (with
 * an offset), sliding and session windows, at parallelism 1/1, 2/3, 3/2
 * (source/window). Allowed lateness runs a scripted input where the source
 * waits (idle) until the sink has seen a window fire, so that the
 * watermark at the window operator is known exactly when a late record
 * comes; the expected output comes from a small model of Flink's window
 * operator with a per-record watermark W = max_ts - B - 1.
 *
 * Randomized parts print their seed; WEIR_SEED=N replays. */
#include "tap.h"
#include "jobtest.h"
#include "runtime/run.h"
#include "base/clock.h"
#include "base/err.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* ---- records ------------------------------------------------------------ */

/* Input record. cnt is 1 in the input; reduce sums it. */
typedef struct in_rec {
	uint64_t key;
	int64_t val;
	int64_t ts;	/* event time (also the record's timestamp); reduce keeps the max */
	int64_t cnt;
} in_rec;

/* One window result. x depends on the operator (see each test). */
typedef struct out_rec {
	int64_t key, start, end, sum, count, x;
} out_rec;

/* ---- input: generated or scripted --------------------------------------- */

#define WAIT_KEY UINT64_MAX	/* a script step: wait for a result (see src_poll) */
#define W(key, start, n) { WAIT_KEY, key, start, n }

static in_rec *input;
static int ninput;
static int src_next[16];	/* per source subtask: the next index (stride P) */
static int64_t bound;		/* out-of-orderness B */

/* Scripted runs: a step with key WAIT_KEY waits until the sink has seen
 * `cnt` results of the window of key `val` starting at `ts`. */
static pthread_mutex_t res_lock = PTHREAD_MUTEX_INITIALIZER;
static int wait_timeouts;
static uint64_t wait_since;
static int results_of(uint64_t key, int64_t start);

static int src_poll(weir_ctx *ctx)
{
	int me = weir_ctx_subtask(ctx), p = weir_ctx_parallelism(ctx);
	uint32_t batch = weir_ctx_batch(ctx), n = 0;
	while (src_next[me] < ninput && n < batch) {
		in_rec *r = &input[src_next[me]];
		if (r->key == WAIT_KEY) {
			if (results_of((uint64_t)r->val, r->ts) >= r->cnt) {
				wait_since = 0;
				src_next[me] += p;
				continue;
			}
			uint64_t now = weir_ctx_now_ns(ctx);
			if (!wait_since)
				wait_since = now;
			if (now - wait_since > 5000000000ull) {
				diag("waited 5 s for result %d of window [%lld, ...) of key %llu: giving up", (int)r->cnt,
				     (long long)r->ts, (unsigned long long)r->val);
				wait_timeouts++;
				wait_since = 0;
				src_next[me] += p;
				continue;
			}
			if (n)
				return WEIR_SOURCE_MORE;
			weir_ctx_idle_until(ctx, now + 1000000);
			return WEIR_SOURCE_IDLE;
		}
		if (weir_emit_ts(ctx, r, sizeof(*r), r->ts) < 0)
			return -1;
		src_next[me] += p;
		n++;
	}
	return src_next[me] < ninput ? WEIR_SOURCE_MORE : WEIR_SOURCE_END;
}

/* Random input: a clock that moves by 0..2 ms per record (sometimes
 * jumping), each record's ts = clock - rand(0..B'), so that ts >= (largest
 * ts so far) - B'. even: every ts doubled (B = 2B'), so differences between
 * timestamps are even. */
/* Every generated ts is lowered by this (even) amount: a third of the runs
 * have negative timestamps, where windows still start at offset + k*slide
 * (k negative: floor, not truncation). */
static int64_t ts_shift;

static void gen_input(uint64_t *rnd, int n, int nkeys, int64_t b, bool even)
{
	ts_shift = tap_rand(rnd) % 3 == 0 ? 2 * (int64_t)(tap_rand(rnd) % 3000) : 0;
	free(input);
	input = calloc((size_t)n, sizeof(*input));
	ninput = n;
	int64_t bb = even ? b / 2 : b;
	int64_t clock = bb + 1;
	for (int i = 0; i < n; i++) {
		clock += (int64_t)(tap_rand(rnd) % 3);
		if (tap_rand(rnd) % 200 == 0)
			clock += 50 + (int64_t)(tap_rand(rnd) % 200);
		int64_t ts = clock - (int64_t)(tap_rand(rnd) % (uint64_t)(bb + 1));
		input[i] = (in_rec){ .key = tap_rand(rnd) % (uint64_t)nkeys, .val = i + 1, .ts = (even ? 2 * ts : ts) - ts_shift,
				     .cnt = 1 };
	}
	bound = even ? 2 * bb : bb;
	/* the property the watermark relies on */
	int64_t max = INT64_MIN;
	for (int i = 0; i < n; i++) {
		if (max != INT64_MIN && input[i].ts < max - bound)
			bail("generator: record %d is late", i);
		if (input[i].ts > max)
			max = input[i].ts;
	}
}

static void set_script(const in_rec *s, int n)
{
	free(input);
	input = malloc(sizeof(*input) * (size_t)n);
	memcpy(input, s, sizeof(*input) * (size_t)n);
	ninput = n;
}

/* ---- results ------------------------------------------------------------ */

typedef struct got_rec {
	out_rec o;
	int64_t ts;	/* the result's record timestamp */
} got_rec;

static got_rec *got;
static int ngot, got_cap, got_overflow;
static in_rec late[1024];
static int nlate;
static uint64_t bad_ts, bad_iter;	/* checks made inside callbacks */

static void reset_results(void)
{
	free(got);
	got_cap = 4 * ninput + 1024;
	got = calloc((size_t)got_cap, sizeof(*got));
	ngot = got_overflow = nlate = 0;
	bad_ts = bad_key = bad_iter = 0;
	wait_timeouts = 0;
	wait_since = 0;
	memset(src_next, 0, sizeof(src_next));
	for (int i = 0; i < 16; i++)
		src_next[i] = i;
}

static void add_result(const out_rec *o, int64_t ts)
{
	pthread_mutex_lock(&res_lock);
	if (ngot < got_cap)
		got[ngot++] = (got_rec){ *o, ts };
	else
		got_overflow++;
	pthread_mutex_unlock(&res_lock);
}

static int results_of(uint64_t key, int64_t start)
{
	int n = 0;
	pthread_mutex_lock(&res_lock);
	for (int i = 0; i < ngot; i++)
		n += got[i].o.key == (int64_t)key && got[i].o.start == start;
	pthread_mutex_unlock(&res_lock);
	return n;
}

/* sink of out_rec results */
static int out_sink(weir_ctx *ctx, const weir_rec *r)
{
	out_rec o;
	if (r->len != sizeof(o))
		return weir_fail(ctx, "result of %u bytes", r->len);
	memcpy(&o, r->data, sizeof(o));
	add_result(&o, r->ts);
	return 0;
}

/* tumbling only: the accumulated in_rec itself (result fn NULL); the
 * window comes from the timestamp end - 1 */
static int64_t nores_size;
static int acc_sink(weir_ctx *ctx, const weir_rec *r)
{
	in_rec a;
	if (r->len != sizeof(a))
		return weir_fail(ctx, "accumulator of %u bytes", r->len);
	memcpy(&a, r->data, sizeof(a));
	out_rec o = { (int64_t)a.key, r->ts + 1 - nores_size, r->ts + 1, a.val, a.cnt, a.ts };
	add_result(&o, r->ts);
	return 0;
}

static int late_sink(weir_ctx *ctx, const weir_rec *r)
{
	pthread_mutex_lock(&res_lock);
	if (r->len == sizeof(in_rec) && nlate < 1024)
		memcpy(&late[nlate], r->data, sizeof(in_rec));
	if (r->len != sizeof(in_rec) || i64at(r->data, 2) != r->ts)
		bad_iter++;	/* a late record comes back as it was, timestamp included */
	nlate++;
	pthread_mutex_unlock(&res_lock);
	return 0;
}

/* ---- the window functions under test ------------------------------------- */

static bool order_mode;	/* process: x = hash of values in arrival order (else max value) */

static bool pt_mode;		/* processing-time windows: count firings inside the window's last ms */
static uint64_t pt_in_last_ms;
static int64_t pt_added;	/* processing-time windows: records the window operator took in */

static int emit_out(weir_ctx *ctx, int64_t key, int64_t sum, int64_t count, int64_t x)
{
	out_rec o = { key, 0, 0, sum, count, x };
	if (weir_ctx_window(ctx, &o.start, &o.end) < 0)
		return weir_fail(ctx, "weir_ctx_window failed in a window callback");
	if (pt_mode && weir_ctx_processing_time(ctx) < o.end)
		__atomic_fetch_add(&pt_in_last_ms, 1, __ATOMIC_RELAXED);
	if (weir_ctx_timestamp(ctx) != o.end - 1)
		__atomic_fetch_add(&bad_ts, 1, __ATOMIC_RELAXED);
	return weir_emit(ctx, &o, sizeof(o));
}

/* reduce: sum values and counts, keep the largest ts field */
static int rd_sum(weir_ctx *ctx, const weir_rec *acc, const weir_rec *in)
{
	in_rec a, b;
	memcpy(&a, acc->data, sizeof(a));
	memcpy(&b, in->data, sizeof(b));
	if (a.key != b.key)
		__atomic_fetch_add(&bad_key, 1, __ATOMIC_RELAXED);
	a.val += b.val;
	a.cnt += b.cnt;
	if (b.ts > a.ts)
		a.ts = b.ts;
	int64_t ws, we;
	if (weir_ctx_window(ctx, &ws, &we) != -1)
		__atomic_fetch_add(&bad_iter, 1, __ATOMIC_RELAXED);	/* docs: -1 outside result/fn */
	return weir_emit(ctx, &a, sizeof(a));
}

static int rd_result(weir_ctx *ctx, const weir_rec *acc)
{
	in_rec a;
	memcpy(&a, acc->data, sizeof(a));
	int64_t k = cur_key(ctx);
	if (k != (int64_t)a.key)
		__atomic_fetch_add(&bad_key, 1, __ATOMIC_RELAXED);
	return emit_out(ctx, (int64_t)a.key, a.val, a.cnt, a.ts);
}

/* aggregate: {key, sum, count, min ts} */
typedef struct agg_acc {
	int64_t key, sum, count, min_ts;
} agg_acc;

static int ag_create(weir_ctx *ctx, void *acc)
{
	agg_acc a = { -1, 0, 0, INT64_MAX };
	memcpy(acc, &a, sizeof(a));
	return 0;
}

static int ag_add(weir_ctx *ctx, void *acc, const weir_rec *in)
{
	agg_acc a;
	in_rec r;
	memcpy(&a, acc, sizeof(a));
	memcpy(&r, in->data, sizeof(r));
	if (a.count && a.key != (int64_t)r.key)
		__atomic_fetch_add(&bad_key, 1, __ATOMIC_RELAXED);
	a.key = (int64_t)r.key;
	a.sum += r.val;
	a.count++;
	if (pt_mode)
		__atomic_fetch_add(&pt_added, 1, __ATOMIC_RELAXED);
	if (r.ts < a.min_ts)
		a.min_ts = r.ts;
	int64_t ws, we;
	if (in->ts != r.ts || weir_ctx_window(ctx, &ws, &we) != -1)
		__atomic_fetch_add(&bad_iter, 1, __ATOMIC_RELAXED);
	memcpy(acc, &a, sizeof(a));
	return 0;
}

static int ag_merge(weir_ctx *ctx, void *acc, const void *other)
{
	agg_acc a, b;
	memcpy(&a, acc, sizeof(a));
	memcpy(&b, other, sizeof(b));
	if (a.count && b.count && a.key != b.key)
		__atomic_fetch_add(&bad_key, 1, __ATOMIC_RELAXED);
	if (!a.count)
		a.key = b.key;
	a.sum += b.sum;
	a.count += b.count;
	if (b.min_ts < a.min_ts)
		a.min_ts = b.min_ts;
	memcpy(acc, &a, sizeof(a));
	return 0;
}

static int ag_result(weir_ctx *ctx, const void *acc)
{
	agg_acc a;
	memcpy(&a, acc, sizeof(a));
	int64_t k = cur_key(ctx);
	if (a.count && k != a.key)
		__atomic_fetch_add(&bad_key, 1, __ATOMIC_RELAXED);
	return emit_out(ctx, k, a.sum, a.count, a.min_ts);
}

static const weir_aggregate agg = {
	.acc_size = sizeof(agg_acc),
	.create = ag_create,
	.add = ag_add,
	.merge = ag_merge,
	.result = ag_result,
};

/* full window: count, sum, and the max value or the arrival-order hash */
static int pr_window(weir_ctx *ctx, weir_iter *it)
{
	int64_t k = cur_key(ctx), sum = 0, count = 0, max = INT64_MIN;
	uint64_t h = HASH0;
	weir_rec r;
	while (weir_iter_next(it, &r) == 1) {
		in_rec x;
		if (r.len != sizeof(x))
			return weir_fail(ctx, "window record of %u bytes", r.len);
		memcpy(&x, r.data, sizeof(x));
		if ((int64_t)x.key != k)
			__atomic_fetch_add(&bad_key, 1, __ATOMIC_RELAXED);
		if (r.ts != x.ts)
			__atomic_fetch_add(&bad_iter, 1, __ATOMIC_RELAXED);
		sum += x.val;
		count++;
		if (x.val > max)
			max = x.val;
		h = fold_hash(h, x.val);
	}
	return emit_out(ctx, k, sum, count, order_mode ? (int64_t)h : max);
}

/* ---- references ----------------------------------------------------------- */

enum mode { M_REDUCE, M_REDUCE_NORES, M_AGG, M_PROC };
static const char *mode_name[] = { "reduce", "reduce (no result fn)", "aggregate", "process" };

/* One (key, window, record) assignment; arrival = index in the input. */
typedef struct assign {
	int64_t key, start, end;
	int arrival;
} assign;

static int cmp_assign(const void *pa, const void *pb)
{
	const assign *a = pa, *b = pb;
	if (a->key != b->key)
		return a->key < b->key ? -1 : 1;
	if (a->start != b->start)
		return a->start < b->start ? -1 : 1;
	if (a->end != b->end)
		return a->end < b->end ? -1 : 1;
	return a->arrival < b->arrival ? -1 : a->arrival > b->arrival;
}

/* The x of a result of `mode` over records in[idx[0..n)] (arrival order). */
static int64_t ref_x(enum mode m, const int *idx, int n)
{
	int64_t x = m == M_AGG ? INT64_MAX : INT64_MIN;
	uint64_t h = HASH0;
	for (int i = 0; i < n; i++) {
		const in_rec *r = &input[idx[i]];
		switch (m) {
		case M_REDUCE:
		case M_REDUCE_NORES:
			x = r->ts > x ? r->ts : x;
			break;
		case M_AGG:
			x = r->ts < x ? r->ts : x;
			break;
		case M_PROC:
			x = r->val > x ? r->val : x;
			h = fold_hash(h, r->val);
			break;
		}
	}
	return m == M_PROC && order_mode ? (int64_t)h : x;
}

/* Group sorted assignments into results. */
static int group(assign *as, int na, enum mode m, out_rec *out)
{
	int nout = 0;
	int *idx = malloc(sizeof(int) * (size_t)(na + 1));
	for (int i = 0; i < na;) {
		int j = i, n = 0;
		int64_t sum = 0;
		while (j < na && as[j].key == as[i].key && as[j].start == as[i].start && as[j].end == as[i].end) {
			idx[n++] = as[j].arrival;
			sum += input[as[j].arrival].val;
			j++;
		}
		out[nout++] = (out_rec){ as[i].key, as[i].start, as[i].end, sum, n, ref_x(m, idx, n) };
		i = j;
	}
	free(idx);
	return nout;
}

/* Tumbling and sliding: each record belongs to the windows
 * [s, s + size) with s = offset + k*slide and s <= ts < s + size. */
static int ref_sliding(int64_t size, int64_t slide, int64_t offset, enum mode m, out_rec *out)
{
	int cap = ninput * (int)(size / slide + 2), na = 0;
	assign *as = malloc(sizeof(*as) * (size_t)cap);
	for (int i = 0; i < ninput; i++) {
		int64_t ts = input[i].ts;
		int64_t last = ts - mod_pos(ts - offset, slide);
		for (int64_t s = last; s > ts - size; s -= slide) {
			if (na == cap)
				bail("reference: too many windows");
			as[na++] = (assign){ (int64_t)input[i].key, s, s + size, i };
		}
	}
	qsort(as, (size_t)na, sizeof(*as), cmp_assign);
	int n = group(as, na, m, out);
	free(as);
	return n;
}

/* Sessions: per key, sorted by ts, a record starts a new session unless
 * its window [ts, ts + gap) intersects or touches the current one (as in
 * Flink; docs/api.md), that is unless ts > the current session's end. */
static int cmp_i64(const void *pa, const void *pb)
{
	int64_t a = *(const int64_t *)pa, b = *(const int64_t *)pb;
	return a < b ? -1 : a > b;
}

static int cmp_key_ts(const void *pa, const void *pb)
{
	const assign *a = pa, *b = pb;
	if (a->key != b->key)
		return a->key < b->key ? -1 : 1;
	/* start holds the ts here */
	if (a->start != b->start)
		return a->start < b->start ? -1 : 1;
	return a->arrival < b->arrival ? -1 : a->arrival > b->arrival;
}

static int ref_session(int64_t gap, enum mode m, out_rec *out)
{
	assign *as = malloc(sizeof(*as) * (size_t)ninput);
	for (int i = 0; i < ninput; i++)
		as[i] = (assign){ (int64_t)input[i].key, input[i].ts, 0, i };
	qsort(as, (size_t)ninput, sizeof(*as), cmp_key_ts);
	/* give every record its session's [start, end) */
	for (int i = 0; i < ninput;) {
		int j = i + 1;
		int64_t end = as[i].start + gap;
		while (j < ninput && as[j].key == as[i].key && as[j].start <= end) {
			if (as[j].start + gap > end)
				end = as[j].start + gap;
			j++;
		}
		int64_t start = as[i].start;
		for (int k = i; k < j; k++) {
			as[k].start = start;
			as[k].end = end;
		}
		i = j;
	}
	qsort(as, (size_t)ninput, sizeof(*as), cmp_assign);	/* arrival order within a session */
	int n = group(as, ninput, m, out);
	free(as);
	return n;
}

/* ---- comparing ----------------------------------------------------------- */

static int cmp_out(const void *pa, const void *pb)
{
	const int64_t *a = pa, *b = pb;
	for (int i = 0; i < 6; i++)
		if (a[i] != b[i])
			return a[i] < b[i] ? -1 : 1;
	return 0;
}

static void diag_out(const char *what, const out_rec *o)
{
	diag("    %s key %lld [%lld, %lld) sum %lld count %lld x %lld", what, (long long)o->key, (long long)o->start,
	     (long long)o->end, (long long)o->sum, (long long)o->count, (long long)o->x);
}

/* Exact multiset comparison; diags the first few differences. */
static bool same_results(const out_rec *want, int nwant, const char *what)
{
	out_rec *g = malloc(sizeof(*g) * (size_t)(ngot + 1));
	out_rec *w = malloc(sizeof(*w) * (size_t)(nwant + 1));
	for (int i = 0; i < ngot; i++)
		g[i] = got[i].o;
	memcpy(w, want, sizeof(*w) * (size_t)nwant);
	qsort(g, (size_t)ngot, sizeof(*g), cmp_out);
	qsort(w, (size_t)nwant, sizeof(*w), cmp_out);
	int i = 0, j = 0, missing = 0, extra = 0, shown = 0;
	while (i < nwant || j < ngot) {
		int c = i == nwant ? 1 : j == ngot ? -1 : cmp_out(&w[i], &g[j]);
		if (c == 0) {
			i++;
			j++;
		} else if (c < 0) {
			if (shown++ < 6)
				diag_out("missing", &w[i]);
			missing++;
			i++;
		} else {
			if (shown++ < 6)
				diag_out("unexpected", &g[j]);
			extra++;
			j++;
		}
	}
	bool ok = !missing && !extra && !got_overflow;
	ok(ok, "%s: %d results, exactly as the reference (%d missing, %d unexpected)", what, ngot, missing, extra);
	free(g);
	free(w);
	return ok;
}

/* ---- one run --------------------------------------------------------------- */

/* Build source -> assign -> key_by -> window(mode) -> sink (+ late sink).
 * NULL (and a failed test) when the builder refused. */
static int env_default;	/* > 0: the env's default parallelism (else psrc) */

static weir_env *build(const weir_window_spec *w, enum mode m, int psrc, int pwin, bool ts_fn)
{
	weir_env *env = weir_env_create(env_default > 0 ? env_default : psrc);
	weir_stream *s = weir_set_parallelism(weir_source(env, "src", src_poll, NULL), psrc);
	s = weir_assign_timestamps(s, ts_fn ? ts_of : NULL, bound, 0);
	weir_stream *k = s ? weir_key_by(s, key_of, NULL) : NULL;
	weir_stream *win = NULL;
	if (k) {
		switch (m) {
		case M_REDUCE:
			win = weir_window_reduce(k, "win", w, rd_sum, rd_result, NULL);
			break;
		case M_REDUCE_NORES:
			win = weir_window_reduce(k, "win", w, rd_sum, NULL, NULL);
			break;
		case M_AGG:
			win = weir_window_aggregate(k, "win", w, &agg, NULL);
			break;
		case M_PROC:
			win = weir_window_process(k, "win", w, pr_window, NULL);
			break;
		}
	}
	weir_stream *lt = win ? weir_late_records(win) : NULL;
	if (!win || !lt) {
		ok(0, "building the %s window job: %s", mode_name[m], env->error);
		weir_env_destroy(env);
		return NULL;
	}
	weir_set_parallelism(win, pwin);
	weir_set_parallelism(weir_sink(win, "sink", m == M_REDUCE_NORES ? acc_sink : out_sink, NULL), pwin);
	weir_set_parallelism(weir_sink(lt, "late", late_sink, NULL), pwin);
	if (env->error[0]) {
		ok(0, "building the %s window job: %s", mode_name[m], env->error);
		weir_env_destroy(env);
		return NULL;
	}
	return env;
}

/* Whether ts falls in some window [offset + k*slide, ... + size). */
static bool in_some_window(int64_t ts, int64_t size, int64_t slide, int64_t offset)
{
	return ts - (ts - mod_pos(ts - offset, slide)) < size;
}

static bool run_and_check(const char *what, const weir_window_spec *w, enum mode m, int psrc, int pwin, bool ts_fn,
			  const out_rec *want, int nwant)
{
	reset_results();
	weir_env *env = build(w, m, psrc, pwin, ts_fn);
	if (!env)
		return false;
	int rc = run(env);
	bool good = is_int(rc, 0, "%s: %s, p=%d/%d, runs: %s", what, mode_name[m], psrc, pwin, rc ? weir_err_msg() : "");
	good &= same_results(want, nwant, what);
	uint64_t bts = 0;
	for (int i = 0; i < ngot; i++)
		bts += got[i].ts != got[i].o.end - 1;
	good &= ok(!bts && !bad_ts && !bad_key && !bad_iter,
		   "%s: results carry end-1 (%llu+%llu wrong), callbacks see their key (%llu wrong) and record "
		   "timestamps (%llu wrong)",
		   what, (unsigned long long)bts, (unsigned long long)bad_ts, (unsigned long long)bad_key,
		   (unsigned long long)bad_iter);
	good &= is_int(nlate, 0, "%s: no record is late, so weir_late_records is empty", what);
	for (int i = 0; i < nlate && i < 4; i++)
		diag("    on the late output: key %llu value %lld ts %lld (%s)", (unsigned long long)late[i].key,
		     (long long)late[i].val, (long long)late[i].ts,
		     w->kind == WEIR_SESSION ? "session"
		     : in_some_window(late[i].ts, w->size_ms, w->kind == WEIR_SLIDING ? w->slide_ms : w->size_ms,
				      w->offset_ms)
			     ? "in a window"
			     : "in no window: a gap between sliding windows");
	return good;
}

static const int pcombo[3][2] = { { 1, 1 }, { 2, 3 }, { 3, 2 } };

static void test_tumbling(uint64_t *rnd)
{
	int64_t b = 1 + (int64_t)(tap_rand(rnd) % 30);
	gen_input(rnd, 6000, 1 + (int)(tap_rand(rnd) % 17), b, false);
	int64_t size = 5 + (int64_t)(tap_rand(rnd) % 40);
	int64_t offset = (int64_t)(tap_rand(rnd) % (uint64_t)size);
	weir_window_spec w = weir_tumbling(WEIR_EVENT_TIME, size);
	w.offset_ms = offset;
	out_rec *want = malloc(sizeof(*want) * (size_t)ninput);
	char what[128];
	for (int m = M_REDUCE; m <= M_PROC; m++) {
		for (int pc = 0; pc < 3; pc++) {
			int psrc = pcombo[pc][0], pwin = pcombo[pc][1];
			order_mode = psrc == 1;
			nores_size = size;
			int nwant = ref_sliding(size, size, offset, (enum mode)m, want);
			snprintf(what, sizeof(what), "tumbling size %lld offset %lld (B=%lld, ts from %lld)",
				 (long long)size, (long long)offset, (long long)bound, (long long)input[0].ts);
			run_and_check(what, &w, (enum mode)m, psrc, pwin, pc != 1, want, nwant);
		}
	}
	free(want);
}

static void test_sliding(uint64_t *rnd)
{
	int64_t b = 1 + (int64_t)(tap_rand(rnd) % 30);
	gen_input(rnd, 5000, 1 + (int)(tap_rand(rnd) % 17), b, false);
	int64_t size = 10 + (int64_t)(tap_rand(rnd) % 40);
	int64_t slide = size / 5 + 1 + (int64_t)(tap_rand(rnd) % (uint64_t)size);	/* may exceed size: gaps */
	int64_t offset = (int64_t)(tap_rand(rnd) % (uint64_t)slide);
	weir_window_spec w = weir_sliding(WEIR_EVENT_TIME, size, slide);
	w.offset_ms = offset;
	out_rec *want = malloc(sizeof(*want) * (size_t)ninput * (size_t)(size / slide + 2));
	char what[128];
	for (int m = M_REDUCE; m <= M_PROC; m++) {
		if (m == M_REDUCE_NORES)
			continue;
		for (int pc = 0; pc < 3; pc++) {
			int psrc = pcombo[pc][0], pwin = pcombo[pc][1];
			order_mode = psrc == 1;
			int nwant = ref_sliding(size, slide, offset, (enum mode)m, want);
			snprintf(what, sizeof(what), "sliding size %lld slide %lld offset %lld (B=%lld, ts from %lld)",
				 (long long)size, (long long)slide, (long long)offset, (long long)bound,
				 (long long)input[0].ts);
			run_and_check(what, &w, (enum mode)m, psrc, pwin, pc != 1, want, nwant);
		}
	}
	free(want);
}

/* touching: timestamps of a key may be exactly `gap` apart (their windows
 * touch and merge); else timestamps are even and the gap odd, so they never
 * are, and only overlaps merge. */
static void test_session(uint64_t *rnd, bool touching)
{
	int nkeys = 1 + (int)(tap_rand(rnd) % 9);
	/* per key, records come every ~2*nkeys ms (~nkeys when touching): pick
	 * gaps around that so that sessions both split and get bridged by
	 * out-of-order records */
	int64_t gap = touching ? nkeys / 2 + 1 + (int64_t)(tap_rand(rnd) % (uint64_t)(nkeys + 1))
			       : 2 * (nkeys + (int64_t)(tap_rand(rnd) % (uint64_t)(2 * nkeys + 1))) + 1;
	int64_t b = gap + (int64_t)(tap_rand(rnd) % (uint64_t)(2 * gap));
	gen_input(rnd, 5000, nkeys, b, !touching);
	if (touching) {
		/* A session [s, e) fires at W = e - 1, and a record at e is not
		 * late then: if it came after that watermark it would start a new
		 * session (documented, as in Flink) instead of extending the
		 * fired one. Keep every record strictly inside the bound (the
		 * data is out of order by at most b, the assigner allows b + 1),
		 * so that W < t - 1 whenever a record at t arrives and nothing it
		 * touches has fired yet: then the result is the batch one. */
		bound++;
		/* how often a key's consecutive timestamps are exactly gap apart */
		int touches = 0;
		for (int k = 0; k < nkeys; k++) {
			int64_t prev = INT64_MIN;
			int64_t *ts = malloc(sizeof(int64_t) * (size_t)ninput);
			int n = 0;
			for (int i = 0; i < ninput; i++)
				if ((int)input[i].key == k)
					ts[n++] = input[i].ts;
			qsort(ts, (size_t)n, sizeof(int64_t), cmp_i64);
			for (int i = 0; i < n; prev = ts[i++])
				touches += prev != INT64_MIN && ts[i] - prev == gap;
			free(ts);
		}
		printf("# session gap %lld: %d pairs of a key's consecutive timestamps exactly gap apart (touching)\n",
		       (long long)gap, touches);
	}
	weir_window_spec w = weir_session(WEIR_EVENT_TIME, gap);
	out_rec *want = malloc(sizeof(*want) * (size_t)ninput);
	char what[128];
	/* how many sessions the out-of-order arrival had to merge, for the log */
	for (int m = M_REDUCE; m <= M_PROC; m++) {
		if (m == M_REDUCE_NORES)
			continue;
		for (int pc = 0; pc < 3; pc++) {
			int psrc = pcombo[pc][0], pwin = pcombo[pc][1];
			order_mode = false;	/* merged sessions have no defined arrival order */
			int nwant = ref_session(gap, (enum mode)m, want);
			snprintf(what, sizeof(what), "session gap %lld, %d keys (B=%lld, ts from %lld%s)", (long long)gap,
				 nkeys, (long long)bound, (long long)input[0].ts, touching ? ", touching" : "");
			run_and_check(what, &w, (enum mode)m, psrc, pwin, pc != 1, want, nwant);
		}
	}
	free(want);
}

/* Sessions merging, deterministic: key 1 gets 0, 100, then 50 bridges
 * them (gap 60: [0,60) [100,160) [50,110) -> [0,160)); key 2 gets 0 and
 * 100, never bridged; key 3 gets 0 and 60: [0,60) and [60,120) touch and
 * merge into [0,120). B = 200 so that nothing is late. */
static void test_session_bridge(void)
{
	static in_rec script[] = {
		{ 1, 1, 0, 1 }, { 2, 10, 0, 1 }, { 1, 2, 100, 1 }, { 2, 20, 100, 1 }, { 1, 4, 50, 1 },
		{ 3, 100, 0, 1 }, { 3, 200, 60, 1 },
	};
	free(input);
	ninput = (int)(sizeof(script) / sizeof(script[0]));
	input = malloc(sizeof(script));
	memcpy(input, script, sizeof(script));
	bound = 200;
	weir_window_spec w = weir_session(WEIR_EVENT_TIME, 60);
	const out_rec want_agg[] = {
		{ 1, 0, 160, 7, 3, 0 }, { 2, 0, 60, 10, 1, 0 }, { 2, 100, 160, 20, 1, 100 }, { 3, 0, 120, 300, 2, 0 },
	};
	out_rec want[4];
	out_rec ref[8];
	int nref = ref_session(60, M_AGG, ref);
	ok(nref == 4 && !memcmp(ref, want_agg, sizeof(want_agg)), "reference sessionizer: a bridging record merges two "
	   "sessions, touching windows merge");
	for (int m = M_REDUCE; m <= M_PROC; m++) {
		if (m == M_REDUCE_NORES)
			continue;
		memcpy(want, want_agg, sizeof(want));
		if (m == M_REDUCE) {
			want[0].x = 100, want[1].x = 0, want[2].x = 100, want[3].x = 60;	/* max ts */
		} else if (m == M_PROC) {
			want[0].x = 4, want[1].x = 10, want[2].x = 20, want[3].x = 200;	/* max value */
		}
		order_mode = false;
		run_and_check("session bridge and touch", &w, (enum mode)m, 1, 1, true, want, 4);
	}
}

/* A fired session is not extended by a touching record (docs/api.md, as
 * in Flink): gap 10, B = 0. (1,1,0): session [0,10); (9,100,10): W=9, it
 * fires; wait for it; (1,2,10) is not late (10 > 9) but its window
 * [10,20) touches only a session whose state is gone: a new session. */
static void test_session_after_fire(void)
{
	static const in_rec script[] = { { 1, 1, 0, 1 }, { 9, 100, 10, 1 }, W(1, 0, 1), { 1, 2, 10, 1 } };
	set_script(script, 4);
	bound = 0;
	weir_window_spec w = weir_session(WEIR_EVENT_TIME, 10);
	const out_rec want[] = { { 1, 0, 10, 1, 1, 0 }, { 9, 10, 20, 100, 1, 10 }, { 1, 10, 20, 2, 1, 10 } };
	order_mode = false;
	reset_results();
	weir_env *env = build(&w, M_AGG, 1, 1, true);
	if (!env)
		return;
	int rc = run(env);
	is_int(rc, 0, "session after fire: runs: %s", rc ? weir_err_msg() : "");
	is_int(wait_timeouts, 0, "session after fire: the first session fired while the source waited");
	same_results(want, 3, "a record touching a fired session starts a new one");
	is_int(nlate, 0, "session after fire: nothing is late");
}

/* Sliding windows with slide > size leave gaps: size 10, slide 20 gives
 * [0,10), [20,30), ... A record at 15 belongs to no window. It is not late
 * (the watermark is far below it), so it is in no result and not on the
 * late output either (Flink drops it: its windows are not late, there are
 * none). */
static void test_sliding_gap(void)
{
	static const in_rec script[] = { { 1, 1, 15, 1 }, { 1, 2, 5, 1 }, { 1, 4, 25, 1 } };
	set_script(script, 3);
	bound = 100;
	weir_window_spec w = weir_sliding(WEIR_EVENT_TIME, 10, 20);
	const out_rec want[] = { { 1, 0, 10, 2, 1, 5 }, { 1, 20, 30, 4, 1, 25 } };
	order_mode = false;
	run_and_check("sliding size 10 slide 20, a record at 15 in the gap", &w, M_AGG, 1, 1, true, want, 2);
}

/* ---- allowed lateness --------------------------------------------------------- */

/* A model of Flink's event-time window operator (tumbling or sliding) with
 * the watermark advancing after every record: W = max ts so far - B - 1.
 * For each record, for each of its windows: if end-1+L <= W the window is
 * gone (the record is late for it); else the record joins the window,
 * which fires at once if end-1 <= W (a late firing) or else when the
 * watermark reaches end-1. A record late for every window goes to the late
 * output. Windows are dropped once W >= end-1+L; at the end every pending
 * window fires. */
struct mwin {
	int64_t key, start, end, sum, count, max_ts, min_ts;
	int *idx;	/* its records, in arrival order */
	bool pending;	/* fires when the watermark reaches end-1 */
	bool alive;
};

static int model(int64_t size, int64_t slide, int64_t lateness, enum mode m, out_rec *out, in_rec *mlate, int *nmlate,
		 int *partly_late)
{
	struct mwin *w = calloc((size_t)ninput * (size_t)(size / slide + 2), sizeof(*w));
	int nw = 0, nout = 0;
	int64_t max = INT64_MIN, wm = INT64_MIN;
	*nmlate = 0;
	*partly_late = 0;
#define FIRE(x)                                                                                         \
	(out[nout++] = (out_rec){ (x)->key, (x)->start, (x)->end, (x)->sum, (x)->count,                    \
				  ref_x(m, (x)->idx, (int)(x)->count) })
	for (int i = 0; i < ninput; i++) {
		const in_rec *r = &input[i];
		if (r->key == WAIT_KEY)
			continue;
		int64_t last = r->ts - mod_pos(r->ts, slide);
		int nlatewin = 0, nwin = 0;
		for (int64_t s = last; s > r->ts - size; s -= slide) {
			nwin++;
			if (s + size - 1 + lateness <= wm) {
				nlatewin++;
				continue;
			}
			struct mwin *x = NULL;
			for (int j = 0; j < nw; j++)
				if (w[j].alive && w[j].key == (int64_t)r->key && w[j].start == s)
					x = &w[j];
			if (!x) {
				x = &w[nw++];
				*x = (struct mwin){ (int64_t)r->key, s, s + size, 0, 0, INT64_MIN, INT64_MAX,
						    calloc((size_t)ninput, sizeof(int)), false, true };
			}
			x->idx[x->count++] = i;
			x->sum += r->val;
			if (r->ts > x->max_ts)
				x->max_ts = r->ts;
			if (r->ts < x->min_ts)
				x->min_ts = r->ts;
			if (x->end - 1 <= wm)
				FIRE(x);
			else
				x->pending = true;
		}
		if (nlatewin == nwin)
			mlate[(*nmlate)++] = *r;
		else if (nlatewin)
			(*partly_late)++;
		if (r->ts > max)
			max = r->ts;
		if (max - bound - 1 > wm) {
			wm = max - bound - 1;
			/* timers in time order (the order does not matter to the multiset) */
			for (int j = 0; j < nw; j++)
				if (w[j].alive && w[j].pending && w[j].end - 1 <= wm) {
					FIRE(&w[j]);
					w[j].pending = false;
				}
			for (int j = 0; j < nw; j++)
				if (w[j].alive && w[j].end - 1 + lateness <= wm)
					w[j].alive = false;
		}
	}
	for (int j = 0; j < nw; j++) {
		if (w[j].alive && w[j].pending)
			FIRE(&w[j]);
		free(w[j].idx);
	}
#undef FIRE
	free(w);
	return nout;
}


static int cmp_in(const void *pa, const void *pb)
{
	const in_rec *a = pa, *b = pb;
	if (a->key != b->key)
		return a->key < b->key ? -1 : 1;
	return a->val < b->val ? -1 : a->val > b->val;
}

static void check_lateness_run(const char *what, const weir_window_spec *w, enum mode m, const out_rec *want, int nwant,
			       in_rec *mlate, int nmlate)
{
	reset_results();
	weir_env *env = build(w, m, 1, 1, true);
	if (!env)
		return;
	int rc = run(env);
	is_int(rc, 0, "%s: %s runs: %s", what, mode_name[m], rc ? weir_err_msg() : "");
	is_int(wait_timeouts, 0, "%s: %s: every awaited window fired while the source waited (the watermark "
	       "reaches the window operator without more records)", what, mode_name[m]);
	same_results(want, nwant, what);
	uint64_t bts = 0;
	for (int i = 0; i < ngot; i++)
		bts += got[i].ts != got[i].o.end - 1;
	ok(!bts && !bad_ts && !bad_key && !bad_iter, "%s: results carry end-1, callbacks see their key", what);
	qsort(late, (size_t)(nlate < 1024 ? nlate : 1024), sizeof(in_rec), cmp_in);
	qsort(mlate, (size_t)nmlate, sizeof(in_rec), cmp_in);
	bool same = nlate == nmlate && !memcmp(late, mlate, sizeof(in_rec) * (size_t)nmlate);
	ok(same, "%s: %s: exactly the %d records beyond the allowed lateness come out of weir_late_records (got %d)",
	   what, mode_name[m], nmlate, nlate);
	if (!same) {
		for (int i = 0; i < nmlate && i < 6; i++)
			diag("    expected late: key %llu value %lld ts %lld", (unsigned long long)mlate[i].key,
			     (long long)mlate[i].val, (long long)mlate[i].ts);
		for (int i = 0; i < nlate && i < 6; i++)
			diag("    got late: key %llu value %lld ts %lld", (unsigned long long)late[i].key,
			     (long long)late[i].val, (long long)late[i].ts);
	}
}

/*
 * Tumbling windows of 10 ms, B = 5, allowed lateness 20 (so window [s, s+10)
 * fires at W >= s+9 and is gone at W >= s+29). Steps, with the model's W
 * after each record:
 *   (1,1,2) (1,2,7) (0,1000,15)      W=9: key 1 [0,10) fires {3, 2 records}
 *   wait for that result
 *   (1,4,3)                          late but within lateness: fires again {7, 3}
 *   wait for the second result
 *   (5,100,35) (0,2000,45)           W=39: [10,20) of key 0, [30,40) of key 5 fire;
 *                                    [0,10) is gone (9+20 <= 39)
 *   wait for key 5's [30,40): the window operator's watermark is now exactly 39
 *   (1,8,4) (2,32,1)                 beyond lateness: the late output, in no result
 *   (1,16,36)                        window [30,40) of key 1 is new, already due: fires once {16}
 *   (1,64,41) (3,128,60)             W=54: [40,50) of keys 0 and 1 fire
 *   end                              [60,70) of key 3 fires
 */
static void test_lateness(void)
{
	static const in_rec script[] = {
		{ 1, 1, 2, 1 },	     { 1, 2, 7, 1 },	     { 0, 1000, 15, 1 },   W(1, 0, 1),
		{ 1, 4, 3, 1 },	     W(1, 0, 2),	     { 5, 100, 35, 1 },	   { 0, 2000, 45, 1 },
		W(5, 30, 1),	     { 1, 8, 4, 1 },	     { 2, 32, 1, 1 },	   { 1, 16, 36, 1 },
		{ 1, 64, 41, 1 },    { 3, 128, 60, 1 },
	};
	/* what the model must say, worked out by hand (x: the max value) */
	static const out_rec hand[] = {
		{ 1, 0, 10, 3, 2, 2 },	   { 1, 0, 10, 7, 3, 4 },     { 0, 10, 20, 1000, 1, 1000 },
		{ 0, 40, 50, 2000, 1, 2000 }, { 5, 30, 40, 100, 1, 100 }, { 1, 30, 40, 16, 1, 16 },
		{ 1, 40, 50, 64, 1, 64 },   { 3, 60, 70, 128, 1, 128 },
	};
	set_script(script, (int)(sizeof(script) / sizeof(script[0])));
	bound = 5;
	out_rec want[32];
	in_rec mlate[32];
	int nmlate, partly;
	order_mode = false;
	int nwant = model(10, 10, 20, M_PROC, want, mlate, &nmlate, &partly);
	qsort(want, (size_t)nwant, sizeof(out_rec), cmp_out);
	out_rec h[8];
	memcpy(h, hand, sizeof(h));
	qsort(h, 8, sizeof(out_rec), cmp_out);
	ok(nwant == 8 && !memcmp(want, h, sizeof(h)) && nmlate == 2 && mlate[0].val == 8 && mlate[1].val == 32 && !partly,
	   "the lateness model agrees with the hand-worked example");

	weir_window_spec w = weir_tumbling(WEIR_EVENT_TIME, 10);
	w.allowed_lateness_ms = 20;
	for (int m = M_REDUCE; m <= M_PROC; m++) {
		if (m == M_REDUCE_NORES)
			continue;
		order_mode = true;
		nwant = model(10, 10, 20, (enum mode)m, want, mlate, &nmlate, &partly);
		check_lateness_run("tumbling, allowed lateness 20", &w, (enum mode)m, want, nwant, mlate, nmlate);
	}
}

/*
 * Sliding windows (size 20, slide 10, B = 0, allowed lateness 15): a record
 * at ts belongs to [s, s+20) for the two s = 10k in (ts-20, ts]. Records at
 * 21, 35, 45 (key 1) and 45 (key 2), then one at 60 (key 9): W=59, so the
 * windows of keys 1 and 2 ending at 50 and 60 have fired but stay (gone at
 * W >= 64 and 74); those ending at 30 and 40 are gone (44, 54). Once key 1's
 * [40,60) fired, a record at 41 updates [30,50) and [40,60) (each fires
 * again, at once); records at 25 (key 2) and 12 (key 1) are late for both
 * their windows: the late output. Waits pin the watermark as before.
 */
static void test_lateness_sliding(void)
{
	static const in_rec script[] = {
		{ 1, 1, 21, 1 }, { 1, 2, 35, 1 },  { 1, 4, 45, 1 },  { 2, 8, 45, 1 },  { 9, 1000, 60, 1 },
		W(1, 40, 1),	 { 1, 16, 41, 1 }, W(1, 40, 2),	     { 2, 32, 25, 1 }, { 1, 64, 12, 1 },
		{ 9, 2000, 90, 1 },
	};
	set_script(script, (int)(sizeof(script) / sizeof(script[0])));
	bound = 0;
	out_rec want[64];
	in_rec mlate[32];
	int nmlate, partly;
	weir_window_spec w = weir_sliding(WEIR_EVENT_TIME, 20, 10);
	w.allowed_lateness_ms = 15;
	for (int m = M_REDUCE; m <= M_PROC; m++) {
		if (m == M_REDUCE_NORES)
			continue;
		order_mode = true;
		int nwant = model(20, 10, 15, (enum mode)m, want, mlate, &nmlate, &partly);
		if (m == M_REDUCE)
			ok(nmlate == 2 && !partly && mlate[0].val == 32 && mlate[1].val == 64,
			   "sliding lateness model: values 32 and 64 are late for all their windows, none partly late");
		check_lateness_run("sliding, allowed lateness 15", &w, (enum mode)m, want, nwant, mlate, nmlate);
	}
}

/*
 * Session windows (gap 10, B = 0, allowed lateness 50). Worked by hand:
 *   0 (1,1,0)  1 (9,1000,30)           W=29: key 1 [0,10) fires {1}
 *   2 wait for it
 *   3 (1,2,5)                          late, within lateness: [5,15) merges
 *                                      with the fired [0,10) into [0,15),
 *                                      which fires at once {1,2}
 *   4 wait for that
 *   5 (7,10000,60) 6 (8,100,80)        W=79: [30,40) of 9, [60,70) of 7 fire;
 *                                      key 1's [0,15) is gone (14+50 <= 79)
 *   7 wait for key 7's [60,70): the watermark is in [69, 79]
 *   8 (1,4,3)                          [3,13) would be gone (12+50 < 69): late
 *   9 (1,8,70)                         a new session [70,80), fires once
 *  10 (9,2000,200)                     W=199; at the end [200,210) fires
 */
/* A scripted session run with allowed lateness 50 and B = 0, in every
 * mode: the windows expected (records by index into the script) and the
 * records beyond the lateness (late_idx). */
struct script_win {
	int64_t key, start, end;
	int idx[3];
	int n;
};

static void session_lateness_runs(const char *what, const in_rec *script, int nscript, const struct script_win *wins,
				  int nw, const int *late_idx, int nlates)
{
	set_script(script, nscript);
	bound = 0;
	weir_window_spec w = weir_session(WEIR_EVENT_TIME, 10);
	w.allowed_lateness_ms = 50;
	for (int m = M_REDUCE; m <= M_PROC; m++) {
		if (m == M_REDUCE_NORES)
			continue;
		order_mode = false;
		out_rec want[8];
		for (int i = 0; i < nw && i < 8; i++) {
			int64_t sum = 0;
			for (int j = 0; j < wins[i].n; j++)
				sum += input[wins[i].idx[j]].val;
			want[i] = (out_rec){ wins[i].key, wins[i].start, wins[i].end, sum, wins[i].n,
					     ref_x((enum mode)m, wins[i].idx, wins[i].n) };
		}
		in_rec mlate[4] = { { 0 } }; /* an array even for none: qsort's argument is never NULL */
		for (int i = 0; i < nlates && i < 4; i++)
			mlate[i] = input[late_idx[i]];
		check_lateness_run(what, &w, (enum mode)m, want, nw, mlate, nlates);
	}
}

static void test_lateness_session(void)
{
	static const in_rec script[] = {
		{ 1, 1, 0, 1 },	   { 9, 1000, 30, 1 }, W(1, 0, 1),	   { 1, 2, 5, 1 },    W(1, 0, 2), { 7, 10000, 60, 1 },
		{ 8, 100, 80, 1 }, W(7, 60, 1),	       { 1, 4, 3, 1 },	   { 1, 8, 70, 1 },   { 9, 2000, 200, 1 },
	};
	static const struct script_win wins[] = {
		{ 1, 0, 10, { 0 }, 1 },	    { 1, 0, 15, { 0, 3 }, 2 }, { 9, 30, 40, { 1 }, 1 },	  { 7, 60, 70, { 5 }, 1 },
		{ 8, 80, 90, { 6 }, 1 },    { 1, 70, 80, { 9 }, 1 },   { 9, 200, 210, { 10 }, 1 },
	};
	static const int beyond[] = { 8 };
	session_lateness_runs("session, allowed lateness 50", script, (int)(sizeof(script) / sizeof(script[0])), wins,
			      (int)(sizeof(wins) / sizeof(wins[0])), beyond, 1);
}

/*
 * A late record bridging a fired session with one still pending (gap 10,
 * B = 0, allowed lateness 50):
 *   0 (1,1,0)  1 (9,1000,12)           W=11: key 1 [0,10) fires {1}
 *   2 wait for it
 *   3 (1,2,15)                         key 1 [15,25), pending
 *   4 (1,4,10)                         [10,20) bridges the fired [0,10) and
 *                                      [15,25) into [0,25), due at W=24
 *   5 (9,2000,100)                     W=99: [0,25) fires {1,2,4}, once;
 *                                      at the end key 9's [100,110)
 * The merged session keeps [0,10)'s state, whose timer fired already: it
 * needs a new one (the one of [15,25) must not fire it, nor fire alone).
 */
static void test_lateness_session_bridge(void)
{
	static const in_rec script[] = {
		{ 1, 1, 0, 1 }, { 9, 1000, 12, 1 }, W(1, 0, 1), { 1, 2, 15, 1 }, { 1, 4, 10, 1 }, { 9, 2000, 100, 1 },
	};
	static const struct script_win wins[] = {
		{ 1, 0, 10, { 0 }, 1 }, { 1, 0, 25, { 0, 3, 4 }, 3 }, { 9, 12, 22, { 1 }, 1 }, { 9, 100, 110, { 5 }, 1 },
	};
	session_lateness_runs("session bridged after firing, allowed lateness 50", script,
			      (int)(sizeof(script) / sizeof(script[0])), wins, (int)(sizeof(wins) / sizeof(wins[0])), NULL,
			      0);
}

/*
 * Idleness. Source subtask 1 emits one record (key 1, ts 0) and then stays
 * idle (alive, no records) until subtask 0 is done. Subtask 0 emits key 1
 * at ts 1..9 and then ts 100 (B = 5: its watermark 94), and waits for the
 * result of key 1's window [0,10), emitting a heartbeat (key 99, ts 100)
 * every millisecond meanwhile. With idle_timeout 20 ms, subtask 1 is
 * marked idle and stops holding the watermark back: the window fires while
 * subtask 1 is still running. With idle_timeout 0 (no idleness) it must not
 * fire before subtask 1 ends (subtask 0 gives up after 300 ms). Either way
 * the window fires exactly once, with all 10 records.
 */
static int idle_done, idle_fired_early;
static uint64_t idle_t0;
static int idle_limit_ms;

static int idle_poll(weir_ctx *ctx)
{
	static const in_rec one = { 1, 1000, 0, 1 };
	if (weir_ctx_subtask(ctx) == 1) {
		if (src_next[1] == 1) {
			src_next[1] = 2;
			return weir_emit_ts(ctx, &one, sizeof(one), 0) < 0 ? -1 : WEIR_SOURCE_MORE;
		}
		if (__atomic_load_n(&idle_done, __ATOMIC_ACQUIRE))
			return WEIR_SOURCE_END;
		weir_ctx_idle_until(ctx, weir_ctx_now_ns(ctx) + 1000000);
		return WEIR_SOURCE_IDLE;
	}
	if (src_next[0] == 0) {
		for (int64_t t = 1; t <= 10; t++) {
			in_rec r = { 1, t, t == 10 ? 100 : t, 1 };
			if (weir_emit_ts(ctx, &r, sizeof(r), r.ts) < 0)
				return -1;
		}
		src_next[0] = 1;
		idle_t0 = weir_ctx_now_ns(ctx);
		return WEIR_SOURCE_MORE;
	}
	if (src_next[0] == 2)
		return WEIR_SOURCE_END;
	if (results_of(1, 0) >= 1 || weir_ctx_now_ns(ctx) - idle_t0 > (uint64_t)idle_limit_ms * 1000000) {
		idle_fired_early = results_of(1, 0) >= 1;
		__atomic_store_n(&idle_done, 1, __ATOMIC_RELEASE);
		src_next[0] = 2;
		return WEIR_SOURCE_MORE;
	}
	in_rec hb = { 99, 0, 100, 1 };
	if (weir_emit_ts(ctx, &hb, sizeof(hb), hb.ts) < 0)
		return -1;
	weir_ctx_idle_until(ctx, weir_ctx_now_ns(ctx) + 1000000);
	return WEIR_SOURCE_IDLE;
}

static void test_idleness(void)
{
	for (int timeout = 0; timeout <= 20; timeout += 20) {
		ninput = 0;
		reset_results();
		idle_done = idle_fired_early = 0;
		idle_limit_ms = timeout ? 3000 : 300;
		weir_env *env = weir_env_create(2);
		weir_stream *s = weir_assign_timestamps(weir_source(env, "src", idle_poll, NULL), ts_of, 5, timeout);
		weir_stream *win = s ? weir_window_aggregate(weir_key_by(s, key_of, NULL), "win",
							     &(weir_window_spec){ .kind = WEIR_TUMBLING, .domain = WEIR_EVENT_TIME,
										  .size_ms = 10 },
							     &agg, NULL)
				     : NULL;
		if (!win || env->error[0]) {
			ok(0, "building the idleness job: %s", env->error);
			weir_env_destroy(env);
			continue;
		}
		weir_set_parallelism(win, 1);
		weir_set_parallelism(weir_sink(win, "sink", out_sink, NULL), 1);
		int rc = run(env);
		is_int(rc, 0, "idleness (timeout %d ms) job runs: %s", timeout, rc ? weir_err_msg() : "");
		if (timeout)
			ok(idle_fired_early, "idle timeout 20 ms: an idle source subtask stops holding the watermark back "
			   "(the window fired while it was still running)");
		else
			ok(!idle_fired_early, "idle timeout 0: a source subtask without records holds the watermark "
			   "back until it ends");
		int n = 0, right = 0;
		for (int i = 0; i < ngot; i++)
			if (got[i].o.key == 1) {
				n++;
				right += got[i].o.start == 0 && got[i].o.end == 10 && got[i].o.count == 10 &&
					 got[i].o.sum == 1000 + 45;
			}
		ok(n == 2 && right == 1, "idleness (timeout %d ms): key 1's windows [0,10) and [100,110) fire once "
		   "each, the first with all 10 records (%d results, %d right)", timeout, n, right);
	}
}

/*
 * A watermark does not wait for its segment to fill (step.c, MARK_WAIT_NS).
 * The source never idles: its first poll emits key 1 at ts 0..9 and key 2
 * at ts 20 (B = 5: watermark 14, which closes [0,10)); later polls emit
 * nothing and return MORE, so no flush-on-idle. The buffer timeout is an
 * hour and nothing fills the segment: it leaves only because a watermark
 * is in it and the window's side has read everything before it. The
 * source waits for key 1's result at most 10 s, then ends (the end of
 * input fires the window too, but too late for the check).
 */
static int mf_state, mf_fired;
static uint64_t mf_t0;

static int mark_flush_poll(weir_ctx *ctx)
{
	if (mf_state == 0) {
		for (int64_t t = 0; t < 10; t++) {
			in_rec r = { 1, t, t, 1 };
			if (weir_emit_ts(ctx, &r, sizeof(r), r.ts) < 0)
				return -1;
		}
		in_rec r2 = { 2, 100, 20, 1 };
		if (weir_emit_ts(ctx, &r2, sizeof(r2), r2.ts) < 0)
			return -1;
		mf_state = 1;
		mf_t0 = weir_ctx_now_ns(ctx);
		return WEIR_SOURCE_MORE;
	}
	if (mf_state == 2)
		return WEIR_SOURCE_END;
	if (results_of(1, 0) >= 1 || weir_ctx_now_ns(ctx) - mf_t0 > 10000000000ull) {
		mf_fired = results_of(1, 0) >= 1;
		mf_state = 2;
	}
	return WEIR_SOURCE_MORE;
}

static void test_watermark_flush(void)
{
	ninput = 0;
	reset_results();
	mf_state = mf_fired = 0;
	weir_env *env = weir_env_create(1);
	weir_stream *s = weir_assign_timestamps(weir_source(env, "src", mark_flush_poll, NULL), ts_of, 5, 0);
	weir_window_spec w = weir_tumbling(WEIR_EVENT_TIME, 10);
	weir_stream *win = s ? weir_window_aggregate(weir_key_by(s, key_of, NULL), "win", &w, &agg, NULL) : NULL;
	if (!win || env->error[0]) {
		ok(0, "building the watermark-flush job: %s", env->error);
		weir_env_destroy(env);
		return;
	}
	weir_sink(win, "sink", out_sink, NULL);
	uint64_t timeout = cfg.buffer_timeout_ns;
	cfg.buffer_timeout_ns = 3600000000000ull;
	int rc = run(env);
	cfg.buffer_timeout_ns = timeout;
	is_int(rc, 0, "watermark flush: the job runs: %s", rc ? weir_err_msg() : "");
	ok(mf_fired, "a segment holding a watermark leaves without filling, with no idle step and an hour's buffer "
	   "timeout: key 1's window [0,10) fired while the source ran");
	int right = 0;
	for (int i = 0; i < ngot; i++)
		right += got[i].o.key == 1 && got[i].o.start == 0 && got[i].o.count == 10 && got[i].o.sum == 45;
	ok(ngot == 2 && right == 1, "watermark flush: [0,10) of key 1 with its 10 records and [20,30) of key 2, once "
	   "each (%d results)", ngot);
}

/*
 * Cascaded windows: tumbling S1 per key (aggregate), then its results, keyed
 * again, in tumbling windows of S2 = m * S1. A window operator emits the
 * results of a watermark before passing the watermark on, so a result
 * (timestamp end - 1) is never late downstream. Stage 2 sums the sums and
 * counts and counts the stage-1 windows; reference: per (key, S2 window),
 * the records' sum and count, and the number of distinct S1 windows.
 */
typedef struct agg2_acc {
	int64_t key, sum, count, nwin;
} agg2_acc;

static int ag2_create(weir_ctx *ctx, void *acc)
{
	memset(acc, 0, sizeof(agg2_acc));
	return 0;
}

static int ag2_add(weir_ctx *ctx, void *acc, const weir_rec *in)
{
	agg2_acc a;
	out_rec o;
	memcpy(&a, acc, sizeof(a));
	memcpy(&o, in->data, sizeof(o));
	a.key = o.key;
	a.sum += o.sum;
	a.count += o.count;
	a.nwin++;
	if (in->ts != o.end - 1)
		__atomic_fetch_add(&bad_iter, 1, __ATOMIC_RELAXED);
	memcpy(acc, &a, sizeof(a));
	return 0;
}

static int ag2_result(weir_ctx *ctx, const void *acc)
{
	agg2_acc a;
	memcpy(&a, acc, sizeof(a));
	if (cur_key(ctx) != a.key)
		__atomic_fetch_add(&bad_key, 1, __ATOMIC_RELAXED);
	return emit_out(ctx, a.key, a.sum, a.count, a.nwin);
}

static const weir_aggregate agg2 = {
	.acc_size = sizeof(agg2_acc), .create = ag2_create, .add = ag2_add, .result = ag2_result,
};

static int cmp_cascade(const void *pa, const void *pb)
{
	const int64_t *a = pa, *b = pb;	/* key, w2 start, w1 start, arrival */
	for (int i = 0; i < 4; i++)
		if (a[i] != b[i])
			return a[i] < b[i] ? -1 : 1;
	return 0;
}

static void test_cascade(uint64_t *rnd, int p1, int p2)
{
	int64_t b = 1 + (int64_t)(tap_rand(rnd) % 30);
	gen_input(rnd, 5000, 1 + (int)(tap_rand(rnd) % 12), b, false);
	int64_t s1 = 3 + (int64_t)(tap_rand(rnd) % 15), s2 = s1 * (2 + (int64_t)(tap_rand(rnd) % 5));
	/* reference */
	int64_t(*t)[4] = malloc(sizeof(*t) * (size_t)ninput);
	for (int i = 0; i < ninput; i++) {
		int64_t ts = input[i].ts;
		t[i][0] = (int64_t)input[i].key, t[i][1] = ts - mod_pos(ts, s2), t[i][2] = ts - mod_pos(ts, s1), t[i][3] = i;
	}
	qsort(t, (size_t)ninput, sizeof(*t), cmp_cascade);
	out_rec *want = malloc(sizeof(*want) * (size_t)ninput);
	int nwant = 0;
	for (int i = 0; i < ninput;) {
		int j = i;
		int64_t sum = 0, count = 0, nwin = 0;
		for (; j < ninput && t[j][0] == t[i][0] && t[j][1] == t[i][1]; j++) {
			sum += input[t[j][3]].val, count++;
			nwin += j == i || t[j][2] != t[j - 1][2];
		}
		want[nwant++] = (out_rec){ t[i][0], t[i][1], t[i][1] + s2, sum, count, nwin };
		i = j;
	}
	free(t);

	reset_results();
	weir_env *env = weir_env_create(p1);
	weir_stream *s = weir_assign_timestamps(weir_source(env, "src", src_poll, NULL), ts_of, bound, 0);
	weir_window_spec w1 = weir_tumbling(WEIR_EVENT_TIME, s1), w2 = weir_tumbling(WEIR_EVENT_TIME, s2);
	weir_stream *st1 = s ? weir_window_aggregate(weir_key_by(s, key_of, NULL), "w1", &w1, &agg, NULL) : NULL;
	weir_stream *st2 = st1 ? weir_window_aggregate(weir_key_by(st1, key_of, NULL), "w2", &w2, &agg2, NULL) : NULL;
	weir_stream *l1 = st1 ? weir_late_records(st1) : NULL, *l2 = st2 ? weir_late_records(st2) : NULL;
	if (!st2 || !l1 || !l2 || env->error[0]) {
		ok(0, "building the cascade: %s", env->error);
		weir_env_destroy(env);
		free(want);
		return;
	}
	weir_set_parallelism(st2, p2);
	weir_set_parallelism(weir_sink(st2, "sink", out_sink, NULL), p2);
	weir_sink(l1, "late1", late_sink, NULL);
	weir_set_parallelism(weir_sink(l2, "late2", late_sink, NULL), p2);
	int rc = run(env);
	char what[128];
	snprintf(what, sizeof(what), "cascade: tumbling %lld then %lld (B=%lld), p=%d/%d", (long long)s1, (long long)s2,
		 (long long)bound, p1, p2);
	is_int(rc, 0, "%s: runs: %s", what, rc ? weir_err_msg() : "");
	same_results(want, nwant, what);
	is_int(nlate, 0, "%s: stage-1 results are not late for stage 2 (nor anything for stage 1)", what);
	ok(!bad_iter && !bad_key && !bad_ts, "%s: stage 2 sees stage-1 results with timestamp end-1", what);
	free(want);
}

/*
 * Processing-time tumbling windows of 5 ms, on the manual clock
 * (base/clock.h) and one worker thread, so that which window a record
 * lands in is known exactly. The clock starts at T0, a multiple of 5, and
 * moves only when the source moves it: the two source subtasks take every
 * other record, record i goes out while the clock reads T0 + i / 50, and
 * the clock moves on by 1 ms only once both have sent their records of
 * the current millisecond and the window operator has taken in every
 * record sent so far (its add function counts them). A subtask stamps
 * the records of a step with the clock read when the step began
 * (docs/api.md), so record i falls in the window [T0 + 5k, T0 + 5k + 5)
 * with k = i / 250. After the last record the clock moves 1 ms on, past
 * the last window's end - 1, and the source waits until every result is
 * in: each window fires by the clock, none by the end of input. Checked:
 * the results equal that reference exactly (key, window, sum, count, min
 * ts), every record counted in exactly one, windows [5k, 5k+5) with
 * timestamp end - 1, none twice, none fired while the clock was still in
 * the window (at end - 1, when records can still join it), nothing late.
 */
#define PT_PER_MS 50
#define PT_T0 1700000000000ll
static int64_t pt_tick;			/* the clock reads PT_T0 + pt_tick */
static int64_t pt_sent_tick[16];	/* per source subtask: the last tick whose records it sent */
static int64_t pt_sent;			/* records sent (pt_added: records the window operator took in) */
static int pt_want_results;
static bool pt_final;			/* the clock moved past the last window */
static int pt_hold_timeouts;
static uint64_t pt_deadline;		/* real monotonic ns: a hang becomes a failure */

static int pt_poll(weir_ctx *ctx)
{
	int me = weir_ctx_subtask(ctx), p = weir_ctx_parallelism(ctx);
	for (;;) {
		if (pt_sent_tick[me] < pt_tick) {
			while (src_next[me] < ninput && src_next[me] / PT_PER_MS == pt_tick) {
				in_rec *r = &input[src_next[me]];
				if (weir_emit_ts(ctx, r, sizeof(*r), r->ts) < 0)
					return -1;
				src_next[me] += p;
				pt_sent++;
			}
			pt_sent_tick[me] = pt_tick;
			/* idle: what was sent goes out now (flush on idle) */
			weir_ctx_idle_until(ctx, weir_ctx_now_ns(ctx) + 1000000);
			return WEIR_SOURCE_IDLE;
		}
		bool all_sent = true, all_done = true;
		for (int s = 0; s < p; s++) {
			all_sent &= pt_sent_tick[s] >= pt_tick || src_next[s] >= ninput;
			all_done &= src_next[s] >= ninput;
		}
		bool taken = all_sent && __atomic_load_n(&pt_added, __ATOMIC_RELAXED) == pt_sent;
		if (taken && all_done && !pt_final) {
			pt_final = true;
			weir_clock_advance_ms(1);
		}
		if (pt_final) {
			pthread_mutex_lock(&res_lock);
			int n = ngot;
			pthread_mutex_unlock(&res_lock);
			if (n >= pt_want_results)
				return WEIR_SOURCE_END;
		} else if (taken) {
			pt_tick++;
			weir_clock_advance_ms(1);
			continue;
		}
		if (weir_real_now_ns() > pt_deadline) {
			pt_hold_timeouts++;
			return WEIR_SOURCE_END;
		}
		weir_ctx_idle_until(ctx, weir_ctx_now_ns(ctx) + 1000000);
		return WEIR_SOURCE_IDLE;
	}
}

static int cmp_got_window(const void *pa, const void *pb)
{
	const got_rec *a = pa, *b = pb;
	if (a->o.key != b->o.key)
		return a->o.key < b->o.key ? -1 : 1;
	return a->o.start < b->o.start ? -1 : a->o.start > b->o.start;
}

static void test_processing_time(uint64_t *rnd)
{
	int nkeys = 1 + (int)(tap_rand(rnd) % 10);
	gen_input(rnd, 5000, nkeys, 5, false);
	reset_results();
	/* the reference: record i in window k = i / (5 * PT_PER_MS) */
	int nwin = (ninput + 5 * PT_PER_MS - 1) / (5 * PT_PER_MS);
	out_rec *want = calloc((size_t)(nwin * nkeys), sizeof(*want));
	for (int i = 0; i < ninput; i++) {
		int k = i / (5 * PT_PER_MS);
		out_rec *o = &want[k * nkeys + (int)input[i].key];
		if (!o->count)
			*o = (out_rec){ (int64_t)input[i].key, PT_T0 + 5 * k, PT_T0 + 5 * k + 5, 0, 0, INT64_MAX };
		o->sum += input[i].val;
		o->count++;
		if (input[i].ts < o->x)
			o->x = input[i].ts;
	}
	int nwant = 0;
	for (int i = 0; i < nwin * nkeys; i++)
		if (want[i].count)
			want[nwant++] = want[i];
	pt_want_results = nwant;
	pt_tick = pt_sent = pt_added = 0;
	for (int i = 0; i < 16; i++)
		pt_sent_tick[i] = -1;
	pt_final = false;
	pt_hold_timeouts = 0;
	pt_deadline = weir_real_now_ns() + 60000000000ull;

	weir_env *env = weir_env_create(2);
	weir_stream *s = weir_source(env, "src", pt_poll, NULL);
	weir_window_spec w = weir_tumbling(WEIR_PROCESSING_TIME, 5);
	weir_stream *win = weir_window_aggregate(weir_key_by(s, key_of, NULL), "win", &w, &agg, NULL);
	weir_stream *lt = win ? weir_late_records(win) : NULL;
	if (!win || !lt || env->error[0]) {
		ok(0, "building the processing-time window job: %s", env->error);
		weir_env_destroy(env);
		free(want);
		return;
	}
	weir_sink(win, "sink", out_sink, NULL);
	weir_sink(lt, "late", late_sink, NULL);
	pt_mode = true;
	pt_in_last_ms = 0;
	int workers = cfg.workers;
	cfg.workers = 1; /* clock.h: everything in the order the source sets */
	weir_clock_set_manual(true);
	weir_clock_set_wall_ms(PT_T0);
	int rc = run(env);
	weir_clock_set_manual(false);
	cfg.workers = workers;
	pt_mode = false;
	is_int(rc, 0, "processing-time tumbling windows: job runs: %s", rc ? weir_err_msg() : "");
	is_int(pt_hold_timeouts, 0, "processing-time windows: every result came while the job ran (the source waits "
	       "for them, at most 60 s)");
	int64_t want_cnt[32] = { 0 }, want_sum[32] = { 0 }, got_cnt[32] = { 0 }, got_sum[32] = { 0 };
	for (int i = 0; i < ninput; i++)
		want_cnt[input[i].key]++, want_sum[input[i].key] += input[i].val;
	int shape = 0, twice = 0;
	qsort(got, (size_t)ngot, sizeof(*got), cmp_got_window);
	for (int i = 0; i < ngot; i++) {
		const out_rec *o = &got[i].o;
		if (o->key < 0 || o->key >= 32 || o->end - o->start != 5 || mod_pos(o->start, 5) || got[i].ts != o->end - 1) {
			if (shape++ < 4)
				diag_out("odd window", o);
			continue;
		}
		got_cnt[o->key] += o->count;
		got_sum[o->key] += o->sum;
		if (i && o->key == got[i - 1].o.key && o->start == got[i - 1].o.start && twice++ < 3) {
			diag_out("fired twice: once as", &got[i - 1].o);
			diag_out("and again as", o);
		}
	}
	int wrong = 0;
	for (int k = 0; k < 32; k++)
		wrong += got_cnt[k] != want_cnt[k] || got_sum[k] != want_sum[k];
	ok(!shape && !twice && !wrong && !nlate && !bad_ts && !bad_key,
	   "processing-time windows: %d results over %d keys, each record in exactly one (%d keys wrong), windows "
	   "[5k, 5k+5) with timestamp end-1 (%d not), none twice (%d), nothing late (%d)",
	   ngot, nkeys, wrong, shape, twice, nlate);
	same_results(want, nwant, "processing-time windows on the manual clock: each record in the window of the "
		     "clock when it came");
	is_int(pt_in_last_ms, 0, "processing-time windows: none fired while the clock was still in it (at end - 1)");
	free(want);
}

/*
 * The assigner is "chained to its input": it runs in each source subtask on
 * that subtask's own stream, which is what bounds the out-of-orderness.
 * A source of parallelism 2 in an env whose default is 1, assigner left at
 * the default: the plan must chain source and assigner, and a tumbling
 * window job must still be exact (if the assigner ran apart, on the two
 * subtasks' records interleaved, the bound would not hold and records
 * would be late).
 */
static void test_assigner_chained(uint64_t *rnd)
{
	weir_env *env = weir_env_create(1);
	weir_stream *s = weir_set_parallelism(weir_source(env, "src", src_poll, NULL), 2);
	s = weir_assign_timestamps(s, ts_of, 5, 0);
	weir_sink_discard(weir_key_by(s, key_of, NULL));
	struct plan p;
	if (weir_plan_build(&p, env, &cfg) == 0) {
		ok(p.nv == 2 && p.v[0].nnodes == 2 && p.v[0].parallelism == 2,
		   "an assigner after a p=2 source (env default 1) chains to it: %d vertices, the first of %d "
		   "nodes at p=%d", p.nv, p.v[0].nnodes, p.v[0].parallelism);
		weir_plan_release(&p);
	} else {
		ok(0, "plan of source(p=2) -> assign -> key_by -> sink builds: %s", weir_err_msg());
	}
	weir_env_destroy(env);

	int64_t b = 1 + (int64_t)(tap_rand(rnd) % 20);
	gen_input(rnd, 2000, 1 + (int)(tap_rand(rnd) % 10), b, false);
	weir_window_spec w = weir_tumbling(WEIR_EVENT_TIME, 10);
	out_rec *want = malloc(sizeof(*want) * (size_t)ninput);
	int nwant = ref_sliding(10, 10, 0, M_AGG, want);
	env_default = 1;
	char what[96];
	snprintf(what, sizeof(what), "tumbling 10, source p=2 in an env of default 1 (B=%lld)", (long long)bound);
	run_and_check(what, &w, M_AGG, 2, 1, true, want, nwant);
	env_default = 0;
	free(want);
}

/* Builder refusals: a session aggregate needs merge; bad window specs;
 * weir_late_records of something that is not a window. */
static int pass_fn(weir_ctx *ctx, const weir_rec *in)
{
	return weir_emit(ctx, in->data, in->len);
}

static void test_build_errors(void)
{
	weir_aggregate nomerge = agg;
	nomerge.merge = NULL;
	weir_window_spec sess = weir_session(WEIR_EVENT_TIME, 10), zero = weir_tumbling(WEIR_EVENT_TIME, 0);
	weir_window_spec neg = weir_tumbling(WEIR_EVENT_TIME, 10);
	neg.allowed_lateness_ms = -1;
	/* a day sliding by 1 ms: 86.4M windows per record; sizes and offsets
	 * that would overflow start + size or ts - offset */
	weir_window_spec dense = weir_sliding(WEIR_EVENT_TIME, 86400000, 1), huge = weir_tumbling(WEIR_EVENT_TIME, INT64_MAX);
	weir_window_spec off = weir_tumbling(WEIR_EVENT_TIME, 10);
	off.offset_ms = INT64_MIN;
	struct {
		const char *what;
		int kind;
	} cases[] = { { "a session aggregate without merge", 0 }, { "a tumbling window of size 0", 1 },
		      { "a negative allowed lateness", 2 }, { "late records of a map", 3 }, { "a window on an unkeyed stream", 4 },
		      { "a sliding window of a day by 1 ms", 5 }, { "a tumbling window of INT64_MAX ms", 6 },
		      { "an offset of INT64_MIN", 7 } };
	for (int i = 0; i < 8; i++) {
		weir_env *env = weir_env_create(1);
		weir_stream *s = weir_assign_timestamps(weir_source_sequence(env, 10, 0), NULL, 0, 0);
		weir_stream *k = weir_key_by(s, key_of, NULL), *r = NULL;
		switch (cases[i].kind) {
		case 0:
			r = weir_window_aggregate(k, "w", &sess, &nomerge, NULL);
			break;
		case 1:
			r = weir_window_aggregate(k, "w", &zero, &agg, NULL);
			break;
		case 2:
			r = weir_window_aggregate(k, "w", &neg, &agg, NULL);
			break;
		case 3:
			r = weir_late_records(weir_map(s, "m", pass_fn, NULL));
			break;
		case 4:
			r = weir_window_aggregate(s, "w", &sess, &agg, NULL);
			break;
		case 5:
			r = weir_window_aggregate(k, "w", &dense, &agg, NULL);
			break;
		case 6:
			r = weir_window_aggregate(k, "w", &huge, &agg, NULL);
			break;
		case 7:
			r = weir_window_aggregate(k, "w", &off, &agg, NULL);
			break;
		}
		ok(!r && env->error[0], "%s is refused: %s", cases[i].what, env->error);
		weir_env_destroy(env);
	}
}

int main(void)
{
	uint64_t rnd = jobtest_start();
	test_tumbling(&rnd);
	test_sliding(&rnd);
	test_session(&rnd, false);
	test_session(&rnd, true);
	test_session_bridge();
	test_sliding_gap();
	test_assigner_chained(&rnd);
	test_lateness();
	test_lateness_sliding();
	test_lateness_session();
	test_lateness_session_bridge();
	test_session_after_fire();
	test_idleness();
	test_watermark_flush();
	test_processing_time(&rnd);
	test_cascade(&rnd, 1, 1);
	test_cascade(&rnd, 2, 3);
	test_build_errors();
	free(input);
	free(got);
	done_testing();
}
