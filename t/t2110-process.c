/* t2110-process: keyed process functions against references written here.
 *
 *  - value, list, map and reducing state per key: after every record the
 *    function reports a digest of its key's state, which must equal what a
 *    per-key replay of the input gives (no key sees another's state),
 *    with weir_state_clear and weir_map_remove mixed in;
 *  - event-time timers: registered (several times) at times derived from
 *    the records, some deleted by later records; exactly the registered and
 *    not deleted (key, time) pairs fire, once each, in time order per
 *    subtask, only once the watermark has reached them, with the timer's
 *    key current (state of that key visible);
 *  - processing-time timers, on the manual clock (base/clock.h): nothing
 *    fires before the clock is past a timer's time, everything due fires
 *    once it is;
 *  - side outputs: exactly the records emitted to each tag arrive there;
 *  - state TTL, on the manual clock: an entry is present until its TTL
 *    ends and absent from then on, to the millisecond; writes refresh it,
 *    reads do not.
 *
 * Randomized parts print their seed; WEIR_SEED=N replays. */
#include "tap.h"
#include "jobtest.h"
#include "runtime/run.h"
#include "base/clock.h"
#include "base/err.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

typedef struct in_rec {
	uint64_t key;
	int64_t val;	/* unique, >= 1 */
	int64_t ts;
} in_rec;

/* ---- source: input[] split over its subtasks (stride P), in order -------- */

static in_rec *input;
static int ninput;
static int src_next[16];
static int64_t bound;

static void reset_source(void)
{
	for (int i = 0; i < 16; i++)
		src_next[i] = i;
}

static int src_poll(weir_ctx *ctx)
{
	int me = weir_ctx_subtask(ctx), p = weir_ctx_parallelism(ctx);
	uint32_t batch = weir_ctx_batch(ctx), n = 0;
	while (src_next[me] < ninput && n < batch) {
		in_rec *r = &input[src_next[me]];
		if (weir_emit_ts(ctx, r, sizeof(*r), r->ts) < 0)
			return -1;
		src_next[me] += p;
		n++;
	}
	return src_next[me] < ninput ? WEIR_SOURCE_MORE : WEIR_SOURCE_END;
}

/* bounded out-of-order input: ts >= (largest ts before) - B */
static void gen_input(uint64_t *rnd, int n, int nkeys, int64_t b)
{
	free(input);
	input = calloc((size_t)n, sizeof(*input));
	ninput = n;
	bound = b;
	int64_t clock = b + 1;
	for (int i = 0; i < n; i++) {
		clock += (int64_t)(tap_rand(rnd) % 3);
		int64_t ts = clock - (int64_t)(tap_rand(rnd) % (uint64_t)(b + 1));
		input[i] = (in_rec){ tap_rand(rnd) % (uint64_t)nkeys, i + 1, ts };
	}
}

static uint64_t bad_misc, late_seen;	/* counted in callbacks */
static char bad_what[256];			/* the first misc failure */

static void bad(const char *fmt, long long a, long long b)
{
	if (__atomic_fetch_add(&bad_misc, 1, __ATOMIC_RELAXED) == 0)
		snprintf(bad_what, sizeof(bad_what), fmt, a, b);
}

/* ---- collected output (any sink subtask) ----------------------------------- */

#define OUTW 10
typedef struct out_rec {
	int64_t f[OUTW];
	int64_t ts;
} out_rec;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
struct coll {
	out_rec *v;
	int n, cap;
};
static struct coll main_out, side1, side2;

static void coll_reset(struct coll *c, int cap)
{
	free(c->v);
	c->v = calloc((size_t)cap, sizeof(out_rec));
	c->n = 0;
	c->cap = cap;
}

static int coll_sink(weir_ctx *ctx, const weir_rec *r)
{
	struct coll *c = weir_ctx_arg(ctx);
	out_rec o = { { 0 }, r->ts };
	memcpy(o.f, r->data, r->len < sizeof(o.f) ? r->len : sizeof(o.f));
	pthread_mutex_lock(&lock);
	if (c->n < c->cap)
		c->v[c->n] = o;
	c->n++;
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

static void diag_out(const char *what, const out_rec *o, int nf)
{
	char buf[512];
	int len = snprintf(buf, sizeof(buf), "    %s {", what);
	for (int i = 0; i < nf; i++)
		len += snprintf(buf + len, sizeof(buf) - (size_t)len, "%s%lld", i ? ", " : "", (long long)o->f[i]);
	snprintf(buf + len, sizeof(buf) - (size_t)len, "} ts %lld", (long long)o->ts);
	diag("%s", buf);
}

/* Exact multiset comparison of c against want[0..nwant) (nf fields shown). */
static bool same(struct coll *c, out_rec *want, int nwant, int nf, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));
static bool same(struct coll *c, out_rec *want, int nwant, int nf, const char *fmt, ...)
{
	char what[256];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	int ngot = c->n < c->cap ? c->n : c->cap;
	qsort(c->v, (size_t)ngot, sizeof(out_rec), cmp_out);
	qsort(want, (size_t)nwant, sizeof(out_rec), cmp_out);
	int i = 0, j = 0, missing = 0, extra = 0, shown = 0;
	while (i < nwant || j < ngot) {
		int k = i == nwant ? 1 : j == ngot ? -1 : cmp_out(&want[i], &c->v[j]);
		if (k == 0) {
			i++, j++;
		} else if (k < 0) {
			if (shown++ < 6)
				diag_out("missing", &want[i], nf);
			missing++, i++;
		} else {
			if (shown++ < 6)
				diag_out("unexpected", &c->v[j], nf);
			extra++, j++;
		}
	}
	return ok(!missing && !extra && c->n <= c->cap, "%s: %d records, exactly as the reference (%d missing, %d "
		  "unexpected)", what, c->n, missing, extra);
}

/* ==== 1. state per key ========================================================= */

/*
 * Per record (arrival order per key = input order, source parallelism 1):
 *   count (value state) += 1, never cleared;
 *   val % 23 == 0: clear list, map and sum, and check they read as absent;
 *   else list += val, sum (reducing) += val, map[val % 4] += 1, and
 *        val % 7 == 0 also removes map[(val + 1) % 4];
 * then emit {key, count, list length, list hash, sum (0 if absent),
 *            map[0..3] (-1 if absent), map size}.
 */
static int s_count, s_list, s_map, s_sum;

static int sum_reduce(weir_ctx *ctx, const weir_rec *acc, const weir_rec *in)
{
	int64_t s = i64at(acc->data, 0) + i64at(in->data, 0);
	if (acc->len != 8 || in->len != 8)
		bad("reducing state: reduce got %lld and %lld bytes", acc->len, in->len);
	return weir_emit(ctx, &s, 8);
}

static int state_fn(weir_ctx *ctx, const weir_rec *in)
{
	in_rec r;
	memcpy(&r, in->data, sizeof(r));
	int64_t key = cur_key(ctx);
	if (key != (int64_t)r.key)
		__atomic_fetch_add(&bad_key, 1, __ATOMIC_RELAXED);
	weir_rec v;
	int64_t count = 0;
	int rc = weir_value_get(ctx, s_count, &v);
	if (rc < 0)
		return weir_fail(ctx, "value_get failed");
	if (rc == 1)
		count = i64at(v.data, 0);
	count++;
	if (weir_value_set(ctx, s_count, &count, 8) < 0)
		return weir_fail(ctx, "value_set failed");

	if (r.val % 23 == 0) {
		if (weir_state_clear(ctx, s_list) < 0 || weir_state_clear(ctx, s_map) < 0 ||
		    weir_state_clear(ctx, s_sum) < 0)
			return weir_fail(ctx, "state_clear failed");
		weir_iter it;
		weir_rec kk;
		if (weir_value_get(ctx, s_sum, &v) != 0)
			bad("reducing state present right after clear (key %lld, val %lld)", key, r.val);
		if (weir_list_iter(ctx, s_list, &it) < 0 || weir_iter_next(&it, &v) != 0)
			bad("list state not empty right after clear (key %lld, val %lld)", key, r.val);
		if (weir_map_iter(ctx, s_map, &it) < 0 || weir_map_iter_next(&it, &kk, &v) != 0)
			bad("map state not empty right after clear (key %lld, val %lld)", key, r.val);
	} else {
		if (weir_list_add(ctx, s_list, &r.val, 8) < 0 || weir_reducing_add(ctx, s_sum, &r.val, 8) < 0)
			return weir_fail(ctx, "list_add/reducing_add failed");
		int64_t b = r.val % 4, c = 0;
		rc = weir_map_get(ctx, s_map, &b, 8, &v);
		if (rc < 0)
			return weir_fail(ctx, "map_get failed");
		if (rc == 1)
			c = i64at(v.data, 0);
		c++;
		if (weir_map_put(ctx, s_map, &b, 8, &c, 8) < 0)
			return weir_fail(ctx, "map_put failed");
		if (r.val % 7 == 0) {
			int64_t rb = (r.val + 1) % 4;
			if (weir_map_remove(ctx, s_map, &rb, 8) < 0)
				return weir_fail(ctx, "map_remove failed");
			if (weir_map_get(ctx, s_map, &rb, 8, &v) != 0)
				bad("map entry %lld present right after map_remove (val %lld)", rb, r.val);
		}
	}

	int64_t out[OUTW] = { key, count, 0, (int64_t)HASH0, 0, -1, -1, -1, -1, 0 };
	weir_iter it;
	if (weir_list_iter(ctx, s_list, &it) < 0)
		return weir_fail(ctx, "list_iter failed");
	while (weir_iter_next(&it, &v) == 1) {
		out[2]++;
		out[3] = (int64_t)fold_hash((uint64_t)out[3], i64at(v.data, 0));
		if (v.len != 8)
			bad("list item of %lld bytes (val %lld)", v.len, r.val);
		/* docs: an item keeps the timestamp of the record that added it */
		else if (i64at(v.data, 0) >= 1 && i64at(v.data, 0) <= ninput && v.ts != input[i64at(v.data, 0) - 1].ts)
			bad("list item %lld has timestamp %lld", i64at(v.data, 0), v.ts);
	}
	rc = weir_value_get(ctx, s_sum, &v);
	if (rc < 0)
		return weir_fail(ctx, "reducing get failed");
	if (rc == 1 && v.ts != WEIR_TS_NONE)
		bad("a value read has timestamp %lld, not WEIR_TS_NONE (val %lld)", v.ts, r.val);
	if (rc == 1)
		out[4] = i64at(v.data, 0);
	if (weir_map_iter(ctx, s_map, &it) < 0)
		return weir_fail(ctx, "map_iter failed");
	weir_rec mk;
	while (weir_map_iter_next(&it, &mk, &v) == 1) {
		int64_t b = i64at(mk.data, 0);
		if (mk.len != 8 || b < 0 || b > 3 || out[5 + b] != -1) {
			bad("bad map entry %lld of key %lld", b, key);
			continue;
		}
		out[5 + b] = i64at(v.data, 0);
		out[9]++;
	}
	return weir_emit(ctx, out, sizeof(out));
}

static int ref_state(out_rec *want)
{
	/* replay per key, in input order */
	int64_t *cnt = calloc(64, 8), *sum = calloc(64, 8), *len = calloc(64, 8);
	uint64_t *hash = malloc(64 * 8);
	int64_t(*map)[4] = malloc(64 * sizeof(*map));
	for (int k = 0; k < 64; k++) {
		hash[k] = HASH0;
		for (int b = 0; b < 4; b++)
			map[k][b] = -1;
	}
	for (int i = 0; i < ninput; i++) {
		const in_rec *r = &input[i];
		int k = (int)r->key;
		cnt[k]++;
		if (r->val % 23 == 0) {
			len[k] = 0, hash[k] = HASH0, sum[k] = 0;
			for (int b = 0; b < 4; b++)
				map[k][b] = -1;
		} else {
			len[k]++;
			hash[k] = fold_hash(hash[k], r->val);
			sum[k] += r->val;
			int b = (int)(r->val % 4);
			map[k][b] = map[k][b] < 0 ? 1 : map[k][b] + 1;
			if (r->val % 7 == 0)
				map[k][(r->val + 1) % 4] = -1;
		}
		int64_t msize = 0;
		for (int b = 0; b < 4; b++)
			msize += map[k][b] >= 0;
		want[i] = (out_rec){ { k, cnt[k], len[k], (int64_t)hash[k], sum[k], map[k][0], map[k][1], map[k][2],
				       map[k][3], msize },
				     r->ts };
	}
	free(cnt), free(sum), free(len), free(hash), free(map);
	return ninput;
}

static void test_state(uint64_t *rnd, int pproc)
{
	gen_input(rnd, 3000, 1 + (int)(tap_rand(rnd) % 40), 10);
	reset_source();
	coll_reset(&main_out, ninput + 16);
	bad_key = bad_misc = 0;
	weir_env *env = weir_env_create(1);
	weir_stream *s = weir_source(env, "src", src_poll, NULL);
	weir_stream *p = weir_process(weir_key_by(s, key_of, NULL), "state", state_fn, NULL, NULL);
	BUILT(env, p);
	weir_set_parallelism(p, pproc);
	s_count = weir_declare_state(p, &(weir_state_desc){ .name = "count", .kind = WEIR_VALUE_STATE });
	s_list = weir_declare_state(p, &(weir_state_desc){ .name = "list", .kind = WEIR_LIST_STATE });
	s_map = weir_declare_state(p, &(weir_state_desc){ .name = "map", .kind = WEIR_MAP_STATE });
	s_sum = weir_declare_state(p, &(weir_state_desc){ .name = "sum", .kind = WEIR_REDUCING_STATE,
							  .reduce = sum_reduce });
	ok(s_count >= 0 && s_list >= 0 && s_map >= 0 && s_sum >= 0 && s_count != s_list && s_list != s_map &&
	   s_map != s_sum && s_count != s_sum, "four states declared with distinct ids (%d %d %d %d)", s_count, s_list,
	   s_map, s_sum);
	weir_set_parallelism(weir_sink(p, "sink", coll_sink, &main_out), pproc);
	BUILT(env, p);
	int rc = run(env);
	is_int(rc, 0, "state job (process p=%d) runs: %s", pproc, rc ? weir_err_msg() : "");
	out_rec *want = malloc(sizeof(*want) * (size_t)ninput);
	int nwant = ref_state(want);
	same(&main_out, want, nwant, OUTW, "value/list/map/reducing state per key after every record (p=%d)", pproc);
	ok(!bad_key && !bad_misc, "weir_ctx_key is the record's key (%llu wrong); clear/remove read back absent (%llu: "
	   "%s)", (unsigned long long)bad_key, (unsigned long long)bad_misc, bad_misc ? bad_what : "");
	free(want);
}

/* Declaring state on something that is not a keyed operator is refused. */
static int pass(weir_ctx *ctx, const weir_rec *in)
{
	return weir_emit(ctx, in->data, in->len);
}

static void test_state_errors(void)
{
	weir_env *env = weir_env_create(1);
	weir_stream *m = weir_map(weir_source_sequence(env, 10, 0), "m", pass, NULL);
	int id = weir_declare_state(m, &(weir_state_desc){ .name = "x", .kind = WEIR_VALUE_STATE });
	ok(id < 0 && env->error[0], "declare_state on a map is refused: %d (%s)", id, env->error);
	weir_env_destroy(env);

	env = weir_env_create(1);
	weir_stream *p = weir_process(weir_key_by(weir_source_sequence(env, 10, 0), key_of, NULL), "p", pass, NULL,
				      NULL);
	id = p ? weir_declare_state(p, &(weir_state_desc){ .name = "r", .kind = WEIR_REDUCING_STATE }) : 0;
	ok(p && id < 0 && env->error[0], "reducing state without a reduce function is refused: %d (%s)", id,
	   env->error);
	weir_env_destroy(env);
}

/* A failure in on_timer fails the job with the operator's name and the
 * message, like any user function. */
static int fail_timer_fn(weir_ctx *ctx, const weir_rec *in)
{
	return weir_timer_register(ctx, WEIR_EVENT_TIME, 5);
}

static int fail_on_timer(weir_ctx *ctx, int64_t time, enum weir_time_domain domain)
{
	return weir_fail(ctx, "timer %lld is cursed", (long long)time);
}

static void test_timer_failure(void)
{
	weir_env *env = weir_env_create(1);
	weir_stream *s = weir_assign_timestamps(weir_source_sequence(env, 100, 0), NULL, 0, 0);
	weir_stream *p = s ? weir_process(weir_key_by(s, key_of, NULL), "doomed", fail_timer_fn, fail_on_timer, NULL)
			   : NULL;
	BUILT(env, p);
	weir_sink_discard(p);
	int rc = run(env);
	ok(rc < 0 && strstr(weir_err_msg(), "'doomed'") && strstr(weir_err_msg(), "timer 5 is cursed"),
	   "a failing on_timer fails the job, naming the operator: %s", weir_err_msg());
}

/* A timer that re-registers itself from on_timer (the repeating-timer
 * pattern), in either domain: at end of input the job fails with a message
 * saying so, instead of hanging (each firing registered one more timer
 * under the final watermark). The processing-time one is far in the
 * future (INT64_MAX / 2 ms): the worker's wake-up time must not wrap. */
static int64_t repeat_fired[2];

static int repeat_fn(weir_ctx *ctx, const weir_rec *in)
{
	enum weir_time_domain d = (enum weir_time_domain)(uintptr_t)weir_ctx_arg(ctx);
	return weir_timer_register(ctx, d, d == WEIR_EVENT_TIME ? weir_ctx_timestamp(ctx) + 1 : INT64_MAX / 2);
}

static int repeat_on_timer(weir_ctx *ctx, int64_t time, enum weir_time_domain domain)
{
	__atomic_fetch_add(&repeat_fired[domain], 1, __ATOMIC_RELAXED);
	return weir_timer_register(ctx, domain, time + 1);
}

static void test_repeating_timers(void)
{
	for (int d = 0; d < 2; d++) {
		weir_env *env = weir_env_create(1);
		weir_stream *s = weir_assign_timestamps(weir_source_sequence(env, 100, 0), NULL, 0, 0);
		weir_stream *p = s ? weir_process(weir_key_by(s, key_of, NULL), "repeat", repeat_fn, repeat_on_timer,
						  (void *)(uintptr_t)d)
				   : NULL;
		BUILT(env, p);
		weir_sink_discard(p);
		repeat_fired[d] = 0;
		int rc = run(env);
		ok(rc < 0 && strstr(weir_err_msg(), "'repeat'") && strstr(weir_err_msg(), "keep registering timers"),
		   "%s: a self-re-registering timer ends the job with a message (rc %d, %lld fired): %s",
		   d == WEIR_EVENT_TIME ? "event time" : "processing time", rc, (long long)repeat_fired[d],
		   weir_err_msg());
	}
}

/* ==== 2. event-time timers ======================================================== */

/*
 * Per record r (key k, ts t):
 *   - t must be above the operator's watermark (no input record is late);
 *   - value state "key" := k (on_timer checks it sees its own key's state);
 *   - register (k, t + 7*(val%5)) twice, and (k, 50*(t/50) + 53), shared by
 *     many records of k;
 *   - val % 4 == 0 (with deletes on): delete the timer this key's previous
 *     such record registered (value state "pending") and register
 *     (k, 10^7 + val) instead: of each chain only the last fires;
 *   - delete (k, 3*10^7 + val), never registered: a no-op.
 * Every registration is at a time >= t > watermark, so nothing has fired
 * yet when it is registered again. on_timer emits {key, time} and checks
 * the domain, weir_ctx_timestamp, the watermark (>= time), weir_ctx_key
 * against state "key", and that times never go down within a subtask.
 */
static int s_tkey, s_pending;
static bool use_delete;
static int64_t last_fired[16];

static int timers_fn(weir_ctx *ctx, const weir_rec *in)
{
	in_rec r;
	memcpy(&r, in->data, sizeof(r));
	int64_t k = cur_key(ctx);
	if (k != (int64_t)r.key)
		__atomic_fetch_add(&bad_key, 1, __ATOMIC_RELAXED);
	if (r.ts <= weir_ctx_watermark(ctx) || weir_ctx_timestamp(ctx) != r.ts)
		__atomic_fetch_add(&late_seen, 1, __ATOMIC_RELAXED);
	if (weir_value_set(ctx, s_tkey, &k, 8) < 0)
		return weir_fail(ctx, "value_set failed");
	int64_t t1 = r.ts + 7 * (r.val % 5), t2 = 50 * (r.ts / 50) + 53;
	if (weir_timer_register(ctx, WEIR_EVENT_TIME, t1) < 0 || weir_timer_register(ctx, WEIR_EVENT_TIME, t1) < 0 ||
	    weir_timer_register(ctx, WEIR_EVENT_TIME, t2) < 0)
		return weir_fail(ctx, "timer_register failed");
	if (use_delete && r.val % 4 == 0) {
		weir_rec v;
		int rc = weir_value_get(ctx, s_pending, &v);
		if (rc < 0)
			return weir_fail(ctx, "value_get failed");
		if (rc == 1 && weir_timer_delete(ctx, WEIR_EVENT_TIME, i64at(v.data, 0)) < 0)
			return weir_fail(ctx, "timer_delete failed");
		int64_t t = 10000000 + r.val;
		if (weir_timer_register(ctx, WEIR_EVENT_TIME, t) < 0 || weir_value_set(ctx, s_pending, &t, 8) < 0)
			return weir_fail(ctx, "register/value_set failed");
	}
	weir_timer_delete(ctx, WEIR_EVENT_TIME, 30000000 + r.val);	/* never registered */
	return 0;
}

static int timers_on_timer(weir_ctx *ctx, int64_t time, enum weir_time_domain domain)
{
	int64_t k = cur_key(ctx);
	if (domain != WEIR_EVENT_TIME)
		bad("an event-time timer fired as domain %lld (time %lld)", domain, time);
	if (weir_ctx_timestamp(ctx) != time)
		bad("weir_ctx_timestamp %lld in a timer of time %lld", weir_ctx_timestamp(ctx), time);
	if (weir_ctx_watermark(ctx) < time)
		bad("a timer fired at watermark %lld before its time %lld", weir_ctx_watermark(ctx), time);
	weir_rec v;
	if (weir_value_get(ctx, s_tkey, &v) != 1 || i64at(v.data, 0) != k)
		__atomic_fetch_add(&bad_key, 1, __ATOMIC_RELAXED);
	int me = weir_ctx_subtask(ctx);
	if (time < last_fired[me])
		bad("timer %lld fired after timer %lld (out of order)", time, last_fired[me]);
	last_fired[me] = time;
	int64_t out[2] = { k, time };
	return weir_emit(ctx, out, sizeof(out));
}

static int cmp_pair(const void *pa, const void *pb)
{
	const int64_t *a = pa, *b = pb;
	if (a[0] != b[0])
		return a[0] < b[0] ? -1 : 1;
	return a[1] < b[1] ? -1 : a[1] > b[1];
}

static int ref_timers(out_rec *want)
{
	int64_t(*pairs)[2] = malloc(sizeof(*pairs) * (size_t)(3 * ninput + 64));
	int64_t pending[64];
	for (int k = 0; k < 64; k++)
		pending[k] = -1;
	int n = 0;
	for (int i = 0; i < ninput; i++) {
		const in_rec *r = &input[i];
		pairs[n][0] = (int64_t)r->key, pairs[n++][1] = r->ts + 7 * (r->val % 5);
		pairs[n][0] = (int64_t)r->key, pairs[n++][1] = 50 * (r->ts / 50) + 53;
		if (use_delete && r->val % 4 == 0)
			pending[r->key] = 10000000 + r->val;
	}
	for (int k = 0; k < 64; k++)
		if (pending[k] >= 0)
			pairs[n][0] = k, pairs[n++][1] = pending[k];
	qsort(pairs, (size_t)n, sizeof(*pairs), cmp_pair);
	int m = 0;
	for (int i = 0; i < n; i++)
		if (!m || cmp_pair(pairs[i], &want[m - 1].f[0]) != 0)
			want[m++] = (out_rec){ { pairs[i][0], pairs[i][1] }, pairs[i][1] };
	free(pairs);
	return m;
}

static void test_timers(uint64_t *rnd, int psrc, int pproc, bool deletes)
{
	gen_input(rnd, 6000, 1 + (int)(tap_rand(rnd) % 30), 1 + (int64_t)(tap_rand(rnd) % 40));
	use_delete = deletes;
	reset_source();
	coll_reset(&main_out, 3 * ninput + 64);
	bad_key = bad_misc = late_seen = 0;
	for (int i = 0; i < 16; i++)
		last_fired[i] = INT64_MIN;
	weir_env *env = weir_env_create(psrc);
	weir_stream *s = weir_assign_timestamps(weir_source(env, "src", src_poll, NULL), psrc == 1 ? ts_of : NULL,
						bound, 0);
	BUILT(env, s);
	weir_stream *p = weir_process(weir_key_by(s, key_of, NULL), "timers", timers_fn, timers_on_timer, NULL);
	BUILT(env, p);
	weir_set_parallelism(p, pproc);
	s_tkey = weir_declare_state(p, &(weir_state_desc){ .name = "key", .kind = WEIR_VALUE_STATE });
	s_pending = weir_declare_state(p, &(weir_state_desc){ .name = "pending", .kind = WEIR_VALUE_STATE });
	weir_set_parallelism(weir_sink(p, "sink", coll_sink, &main_out), pproc);
	BUILT(env, p);
	int rc = run(env);
	is_int(rc, 0, "timer job (source p=%d, process p=%d, B=%lld) runs: %s", psrc, pproc, (long long)bound,
	       rc ? weir_err_msg() : "");
	out_rec *want = malloc(sizeof(*want) * (size_t)(3 * ninput + 64));
	int nwant = ref_timers(want);
	same(&main_out, want, nwant, 2, "event-time timers%s: each registered (key, time) fires once, with timestamp "
	     "time (p=%d/%d)", deletes ? " (some deleted)" : "", psrc, pproc);
	ok(!bad_key && !bad_misc && !late_seen, "timers see their key's state (%llu wrong), fire in time order once "
	   "the watermark reached them (%llu: %s); records are above the watermark (%llu not)",
	   (unsigned long long)bad_key, (unsigned long long)bad_misc, bad_misc ? bad_what : "",
	   (unsigned long long)late_seen);
	free(want);
}

/*
 * Timer edge cases. Per record (key k, value v, ts t, B = 0): register
 * (k, -10^6 - v), far below the watermark (it must still fire, once; v is
 * unique, so it is never registered again after it fired), and (k, t + 5); the first record of a key registers (k, 10^9). on_timer at
 * 10^9 + d (d < 2) registers 10^9 + d + 1 from inside the timer: timers
 * registered while the final watermark (+infinity) fires them must fire
 * too. Expected: exactly the set of registered (key, time) pairs, once.
 */
#define CHAIN0 1000000000ll
static int s_started;

static int edge_fn(weir_ctx *ctx, const weir_rec *in)
{
	in_rec r;
	memcpy(&r, in->data, sizeof(r));
	weir_rec v;
	if (weir_timer_register(ctx, WEIR_EVENT_TIME, -1000000 - r.val) < 0 ||
	    weir_timer_register(ctx, WEIR_EVENT_TIME, r.ts + 5) < 0)
		return weir_fail(ctx, "timer_register failed");
	if (weir_value_get(ctx, s_started, &v) == 0) {
		int64_t one = 1;
		if (weir_timer_register(ctx, WEIR_EVENT_TIME, CHAIN0) < 0 || weir_value_set(ctx, s_started, &one, 8) < 0)
			return weir_fail(ctx, "timer_register/value_set failed");
	}
	return 0;
}

static int edge_on_timer(weir_ctx *ctx, int64_t time, enum weir_time_domain domain)
{
	if (weir_ctx_watermark(ctx) < time)
		bad("timer %lld fired at watermark %lld", time, weir_ctx_watermark(ctx));
	if (time >= CHAIN0 && time < CHAIN0 + 2 && weir_timer_register(ctx, WEIR_EVENT_TIME, time + 1) < 0)
		return weir_fail(ctx, "timer_register in on_timer failed");
	int64_t out[2] = { cur_key(ctx), time };
	return weir_emit(ctx, out, sizeof(out));
}

static void test_timer_edges(uint64_t *rnd, int pproc)
{
	gen_input(rnd, 3000, 1 + (int)(tap_rand(rnd) % 20), 0);
	reset_source();
	coll_reset(&main_out, 3 * ninput + 64);
	bad_key = bad_misc = 0;
	weir_env *env = weir_env_create(1);
	weir_stream *s = weir_assign_timestamps(weir_source(env, "src", src_poll, NULL), ts_of, 0, 0);
	BUILT(env, s);
	weir_stream *p = weir_process(weir_key_by(s, key_of, NULL), "edges", edge_fn, edge_on_timer, NULL);
	BUILT(env, p);
	weir_set_parallelism(p, pproc);
	s_started = weir_declare_state(p, &(weir_state_desc){ .name = "started", .kind = WEIR_VALUE_STATE });
	weir_set_parallelism(weir_sink(p, "sink", coll_sink, &main_out), pproc);
	BUILT(env, p);
	int rc = run(env);
	is_int(rc, 0, "timer edge job (process p=%d) runs: %s", pproc, rc ? weir_err_msg() : "");
	int64_t(*pairs)[2] = malloc(sizeof(*pairs) * (size_t)(2 * ninput + 200));
	int n = 0;
	bool seen[64] = { false };
	for (int i = 0; i < ninput; i++) {
		const in_rec *r = &input[i];
		pairs[n][0] = (int64_t)r->key, pairs[n++][1] = -1000000 - r->val;
		pairs[n][0] = (int64_t)r->key, pairs[n++][1] = r->ts + 5;
		if (!seen[r->key]) {
			seen[r->key] = true;
			for (int d = 0; d < 3; d++)
				pairs[n][0] = (int64_t)r->key, pairs[n++][1] = CHAIN0 + d;
		}
	}
	qsort(pairs, (size_t)n, sizeof(*pairs), cmp_pair);
	out_rec *want = malloc(sizeof(*want) * (size_t)(n + 1));
	int m = 0;
	for (int i = 0; i < n; i++)
		if (!m || cmp_pair(pairs[i], &want[m - 1].f[0]) != 0)
			want[m++] = (out_rec){ { pairs[i][0], pairs[i][1] }, pairs[i][1] };
	same(&main_out, want, m, 2, "timers registered below the watermark and from on_timer during the final "
	     "watermark fire, once each (p=%d)", pproc);
	ok(!bad_misc && !bad_key, "no timer fires before the watermark reaches it (%llu: %s)",
	   (unsigned long long)bad_misc, bad_misc ? bad_what : "");
	free(pairs);
	free(want);
}

/*
 * Many keys: 60000 records over up to 20000 keys (the state table and the
 * timer heap grow and rehash while callbacks run). Per record: count
 * (value) += 1, list += value, and a timer at END; per key at END: emit
 * {key, count, list length, list sum}, read back after all the growth.
 */
#define END_TIME 1000000000000ll
static int s_mcount, s_mlist;

static int many_fn(weir_ctx *ctx, const weir_rec *in)
{
	in_rec r;
	memcpy(&r, in->data, sizeof(r));
	weir_rec v;
	int64_t c = weir_value_get(ctx, s_mcount, &v) == 1 ? i64at(v.data, 0) + 1 : 1;
	if (weir_value_set(ctx, s_mcount, &c, 8) < 0 || weir_list_add(ctx, s_mlist, &r.val, 8) < 0 ||
	    weir_timer_register(ctx, WEIR_EVENT_TIME, END_TIME) < 0)
		return weir_fail(ctx, "state or timer failed");
	return 0;
}

static int many_on_timer(weir_ctx *ctx, int64_t time, enum weir_time_domain domain)
{
	weir_rec v;
	int64_t out[4] = { cur_key(ctx), 0, 0, 0 };
	if (weir_value_get(ctx, s_mcount, &v) == 1)
		out[1] = i64at(v.data, 0);
	weir_iter it;
	if (weir_list_iter(ctx, s_mlist, &it) < 0)
		return weir_fail(ctx, "list_iter failed");
	while (weir_iter_next(&it, &v) == 1)
		out[2]++, out[3] += i64at(v.data, 0);
	return weir_emit(ctx, out, sizeof(out));
}

static void test_many_keys(uint64_t *rnd, int pproc)
{
	int nkeys = 5000 + (int)(tap_rand(rnd) % 15000);
	gen_input(rnd, 60000, nkeys, 10);
	reset_source();
	coll_reset(&main_out, nkeys + 16);
	bad_key = 0;
	weir_env *env = weir_env_create(1);
	weir_stream *s = weir_assign_timestamps(weir_source(env, "src", src_poll, NULL), ts_of, bound, 0);
	BUILT(env, s);
	weir_stream *p = weir_process(weir_key_by(s, key_of, NULL), "many", many_fn, many_on_timer, NULL);
	BUILT(env, p);
	weir_set_parallelism(p, pproc);
	s_mcount = weir_declare_state(p, &(weir_state_desc){ .name = "count", .kind = WEIR_VALUE_STATE });
	s_mlist = weir_declare_state(p, &(weir_state_desc){ .name = "list", .kind = WEIR_LIST_STATE });
	weir_set_parallelism(weir_sink(p, "sink", coll_sink, &main_out), pproc);
	BUILT(env, p);
	int rc = run(env);
	is_int(rc, 0, "many keys (%d, process p=%d) runs: %s", nkeys, pproc, rc ? weir_err_msg() : "");
	out_rec *want = calloc((size_t)nkeys, sizeof(out_rec));
	for (int k = 0; k < nkeys; k++)
		want[k] = (out_rec){ { k }, END_TIME };
	for (int i = 0; i < ninput; i++) {
		out_rec *w = &want[input[i].key];
		w->f[1]++, w->f[2]++, w->f[3] += input[i].val;
	}
	int m = 0;
	for (int k = 0; k < nkeys; k++)
		if (want[k].f[1])
			want[m++] = want[k];
	same(&main_out, want, m, 4, "many keys: each key's count and list, read at the end (p=%d)", pproc);
	is_int(bad_key, 0, "many keys: weir_ctx_key works in every timer");
	free(want);
}

/* ==== 3. processing-time timers ====================================================== */

/* On the manual clock (base/clock.h), one worker thread. The clock reads
 * T; keys 1..5 register a processing-time timer at T + 1 (twice) and keep
 * its time in state; key 6 registers one and deletes it; key 7 registers
 * one an hour ahead, which fires at the end of input (documented). The
 * source (parallelism 1, its own scripted poll) then moves the clock and
 * looks at what fired, each time after every other subtask took a step
 * (one worker steps every task once a round): once the process function
 * saw all 7 records, at T nothing has fired; it moves the clock to T + 1
 * (the timers' time: not past it), nothing fires; to T + 2, exactly the 5
 * fire, without any further input. Checked too: each of keys 1..5 fires
 * exactly once, with the clock past its time, with its own state, in
 * domain processing time; key 6 never fires; key 7 once, at the end. */
#define PT_T 1700000000000ll
static int s_ptime;
static int pt_seen, pt_fired;
static int pt_count[8];
static int pt_phase, pt_fired_at[3];	/* pt_fired_at[i]: fired with the clock at T + i, a round later */
static uint64_t pt_deadline;
static int pt_hold_timeouts;

static int pt_poll(weir_ctx *ctx)
{
	if (src_next[0] < ninput) { /* the 7 records */
		while (src_next[0] < ninput) {
			in_rec *r = &input[src_next[0]++];
			if (weir_emit_ts(ctx, r, sizeof(*r), r->ts) < 0)
				return -1;
		}
		weir_ctx_idle_until(ctx, weir_ctx_now_ns(ctx) + 1000000);
		return WEIR_SOURCE_IDLE; /* sent on idle */
	}
	if (__atomic_load_n(&pt_seen, __ATOMIC_ACQUIRE) < ninput) {
		if (weir_real_now_ns() > pt_deadline) {
			pt_hold_timeouts++;
			return WEIR_SOURCE_END;
		}
		weir_ctx_idle_until(ctx, weir_ctx_now_ns(ctx) + 1000000);
		return WEIR_SOURCE_IDLE;
	}
	/* every process subtask stepped since the last move of the clock */
	pt_fired_at[pt_phase] = __atomic_load_n(&pt_fired, __ATOMIC_ACQUIRE);
	if (++pt_phase == 3)
		return WEIR_SOURCE_END;
	weir_clock_advance_ms(1);
	weir_ctx_idle_until(ctx, weir_ctx_now_ns(ctx) + 1000000);
	return WEIR_SOURCE_IDLE;
}

static int pt_fn(weir_ctx *ctx, const weir_rec *in)
{
	in_rec r;
	memcpy(&r, in->data, sizeof(r));
	/* key 7: an hour ahead, fires only at the end of input */
	int64_t t = weir_ctx_processing_time(ctx) + (r.key == 7 ? 3600000 : 1);
	if (weir_ctx_processing_time(ctx) != PT_T)
		bad("a record met the clock at %lld, not T = %lld", weir_ctx_processing_time(ctx), PT_T);
	if (weir_timer_register(ctx, WEIR_PROCESSING_TIME, t) < 0 || weir_timer_register(ctx, WEIR_PROCESSING_TIME, t) < 0)
		return weir_fail(ctx, "timer_register failed");
	if (r.key == 6 && weir_timer_delete(ctx, WEIR_PROCESSING_TIME, t) < 0)
		return weir_fail(ctx, "timer_delete failed");
	__atomic_fetch_add(&pt_seen, 1, __ATOMIC_RELEASE);
	return weir_value_set(ctx, s_ptime, &t, 8);
}

static int pt_on_timer(weir_ctx *ctx, int64_t time, enum weir_time_domain domain)
{
	int64_t k = cur_key(ctx);
	weir_rec v;
	if (domain != WEIR_PROCESSING_TIME)
		bad("a processing-time timer fired as domain %lld (time %lld)", domain, time);
	if (weir_value_get(ctx, s_ptime, &v) != 1 || i64at(v.data, 0) != time)
		bad("processing-time timer %lld of key %lld does not see its key's state", time, k);
	if (weir_ctx_timestamp(ctx) != time)
		bad("weir_ctx_timestamp %lld in a processing-time timer of time %lld", weir_ctx_timestamp(ctx), time);
	if (k != 7 && weir_ctx_processing_time(ctx) <= time)
		bad("processing-time timer %lld fired at %lld, not past its time", time, weir_ctx_processing_time(ctx));
	if (k >= 0 && k < 8)
		__atomic_fetch_add(&pt_count[k], 1, __ATOMIC_RELAXED);
	__atomic_fetch_add(&pt_fired, 1, __ATOMIC_RELEASE);
	return 0;
}

static void test_processing_timers(void)
{
	static in_rec script[7];
	for (int i = 0; i < 7; i++)
		script[i] = (in_rec){ (uint64_t)i + 1, i + 1, i };
	free(input);
	input = malloc(sizeof(script));
	memcpy(input, script, sizeof(script));
	ninput = 7;
	reset_source();
	pt_seen = pt_fired = pt_phase = 0;
	memset(pt_count, 0, sizeof(pt_count));
	memset(pt_fired_at, 0xff, sizeof(pt_fired_at));
	pt_hold_timeouts = 0;
	pt_deadline = weir_real_now_ns() + 60000000000ull;
	bad_key = bad_misc = 0;
	coll_reset(&main_out, 16);
	weir_env *env = weir_env_create(1);
	weir_stream *p = weir_process(weir_key_by(weir_source(env, "src", pt_poll, NULL), key_of, NULL), "ptimers",
				      pt_fn, pt_on_timer, NULL);
	BUILT(env, p);
	weir_set_parallelism(p, 2);
	s_ptime = weir_declare_state(p, &(weir_state_desc){ .name = "t", .kind = WEIR_VALUE_STATE });
	weir_set_parallelism(weir_sink(p, "sink", coll_sink, &main_out), 2);
	BUILT(env, p);
	int workers = cfg.workers;
	cfg.workers = 1; /* clock.h: every step in the order the source sets */
	weir_clock_set_manual(true);
	weir_clock_set_wall_ms(PT_T);
	int rc = run(env);
	weir_clock_set_manual(false);
	cfg.workers = workers;
	is_int(rc, 0, "processing-time timer job runs: %s", rc ? weir_err_msg() : "");
	is_int(pt_hold_timeouts, 0, "the process function saw every record (the source waits for it, at most 60 s)");
	ok(pt_fired_at[0] == 0 && pt_fired_at[1] == 0,
	   "no timer fires before the clock is past its time (fired at T: %d, at T + 1: %d)", pt_fired_at[0],
	   pt_fired_at[1]);
	is_int(pt_fired_at[2], 5, "processing-time timers at now+1 fire while the job runs, once the clock moved past "
	       "them, without further input");
	ok(pt_count[1] == 1 && pt_count[2] == 1 && pt_count[3] == 1 && pt_count[4] == 1 && pt_count[5] == 1 &&
	   pt_count[6] == 0 && !bad_key && !bad_misc,
	   "each fires once (%d %d %d %d %d), the deleted one never (%d), with the key's state (%llu: %s)", pt_count[1],
	   pt_count[2], pt_count[3], pt_count[4], pt_count[5], pt_count[6], (unsigned long long)bad_misc,
	   bad_misc ? bad_what : "");
	is_int(pt_count[7], 1, "a processing-time timer an hour ahead still fires, once, at the end of input "
	       "(docs/api.md: a departure from Flink)");
}

/* ==== 4. side outputs ================================================================ */

/* Odd values go to side "odd" (ts kept), even ones to the main output; each
 * record registers an event-time timer at ts+1 whose firing goes to side
 * "timer" as {key, time} with timestamp time + 1000. */
static int tag_odd, tag_timer;

static int side_fn(weir_ctx *ctx, const weir_rec *in)
{
	in_rec r;
	memcpy(&r, in->data, sizeof(r));
	if (weir_timer_register(ctx, WEIR_EVENT_TIME, r.ts + 1) < 0)
		return weir_fail(ctx, "timer_register failed");
	int64_t out[3] = { (int64_t)r.key, r.val, r.ts };
	if (r.val & 1)
		return weir_emit_side(ctx, tag_odd, out, sizeof(out));
	return weir_emit(ctx, out, sizeof(out));
}

static int side_on_timer(weir_ctx *ctx, int64_t time, enum weir_time_domain domain)
{
	int64_t out[2] = { cur_key(ctx), time };
	return weir_emit_side_ts(ctx, tag_timer, out, sizeof(out), time + 1000);
}

static void test_side_outputs(uint64_t *rnd, int p)
{
	gen_input(rnd, 2000, 1 + (int)(tap_rand(rnd) % 20), 1 + (int64_t)(tap_rand(rnd) % 20));
	reset_source();
	coll_reset(&main_out, ninput + 16);
	coll_reset(&side1, ninput + 16);
	coll_reset(&side2, ninput + 16);
	bad_key = 0;
	weir_env *env = weir_env_create(p);
	weir_stream *s = weir_assign_timestamps(weir_source(env, "src", src_poll, NULL), ts_of, bound, 0);
	BUILT(env, s);
	weir_stream *proc = weir_process(weir_key_by(s, key_of, NULL), "split", side_fn, side_on_timer, NULL);
	BUILT(env, proc);
	tag_odd = weir_declare_side_output(proc, "odd");
	tag_timer = weir_declare_side_output(proc, "timer");
	ok(tag_odd >= 1 && tag_timer >= 1 && tag_odd != tag_timer, "side output tags are distinct ids >= 1 (%d, %d)",
	   tag_odd, tag_timer);
	weir_stream *odd = weir_side_output(proc, tag_odd), *tim = weir_side_output(proc, tag_timer);
	BUILT(env, odd && tim);
	weir_sink(proc, "main", coll_sink, &main_out);
	weir_set_parallelism(weir_sink(weir_rebalance(odd), "odd", coll_sink, &side1), 2);
	weir_sink(tim, "timer", coll_sink, &side2);
	BUILT(env, proc);
	int rc = run(env);
	is_int(rc, 0, "side output job (p=%d) runs: %s", p, rc ? weir_err_msg() : "");
	out_rec *want_main = calloc((size_t)ninput, sizeof(out_rec)), *want_odd = calloc((size_t)ninput, sizeof(out_rec));
	out_rec *want_t = calloc((size_t)ninput, sizeof(out_rec));
	int nm = 0, no = 0, nt = 0;
	for (int i = 0; i < ninput; i++) {
		const in_rec *r = &input[i];
		out_rec o = { { (int64_t)r->key, r->val, r->ts }, r->ts };
		if (r->val & 1)
			want_odd[no++] = o;
		else
			want_main[nm++] = o;
		want_t[nt++] = (out_rec){ { (int64_t)r->key, r->ts + 1 }, r->ts + 1001 };
	}
	/* timers: unique (key, time) */
	qsort(want_t, (size_t)nt, sizeof(out_rec), cmp_out);
	int u = 0;
	for (int i = 0; i < nt; i++)
		if (!u || cmp_out(&want_t[i], &want_t[u - 1]))
			want_t[u++] = want_t[i];
	same(&main_out, want_main, nm, 3, "main output: exactly the even values, timestamps kept (p=%d)", p);
	same(&side1, want_odd, no, 3, "side output 'odd': exactly the odd values, timestamps kept (p=%d)", p);
	same(&side2, want_t, u, 2, "side output 'timer' from on_timer: one per (key, time), timestamp as given (p=%d)", p);
	is_int(bad_key, 0, "timers know their key");
	free(want_main), free(want_odd), free(want_t);
}

/* Side outputs of a map (docs: any operator but sinks and connectors):
 * sequence 0..9999, even numbers to the main output, odd ones to side
 * "odd" with timestamp n + 10^6. A window's first declared tag is 2 (its
 * late output is 1). */
static int tag_map_odd;

static int split_map(weir_ctx *ctx, const weir_rec *in)
{
	int64_t n = i64at(in->data, 0);
	if (n & 1) {
		/* a map emits exactly one main record per input: side emits come on
		 * top, so the main output gets a marker (-1) the sink skips */
		if (weir_emit_side_ts(ctx, tag_map_odd, in->data, 8, n + 1000000) < 0)
			return -1;
		int64_t m = -1;
		return weir_emit(ctx, &m, 8);
	}
	return weir_emit(ctx, in->data, 8);
}

static int64_t map_main_sum, map_main_n, map_side_sum, map_side_n, map_side_badts;

static int map_main_sink(weir_ctx *ctx, const weir_rec *r)
{
	int64_t n = i64at(r->data, 0);
	if (n >= 0) {
		__atomic_fetch_add(&map_main_sum, n, __ATOMIC_RELAXED);
		__atomic_fetch_add(&map_main_n, 1, __ATOMIC_RELAXED);
	}
	return 0;
}

static int map_side_sink(weir_ctx *ctx, const weir_rec *r)
{
	int64_t n = i64at(r->data, 0);
	__atomic_fetch_add(&map_side_sum, n, __ATOMIC_RELAXED);
	__atomic_fetch_add(&map_side_n, 1, __ATOMIC_RELAXED);
	if (r->ts != n + 1000000 || !(n & 1))
		__atomic_fetch_add(&map_side_badts, 1, __ATOMIC_RELAXED);
	return 0;
}

static int agg_noop(weir_ctx *ctx, void *acc, const weir_rec *in)
{
	return 0;
}

static int agg_none(weir_ctx *ctx, const void *acc)
{
	return 0;
}

static void test_side_output_map(void)
{
	map_main_sum = map_main_n = map_side_sum = map_side_n = map_side_badts = 0;
	weir_env *env = weir_env_create(2);
	weir_stream *m = weir_map(weir_source_sequence(env, 10000, 0), "split", split_map, NULL);
	BUILT(env, m);
	tag_map_odd = weir_declare_side_output(m, "odd");
	weir_stream *side = weir_side_output(m, tag_map_odd);
	BUILT(env, side);
	weir_sink(m, "main", map_main_sink, NULL);
	weir_set_parallelism(weir_sink(side, "side", map_side_sink, NULL), 3);
	BUILT(env, m);
	int rc = run(env);
	is_int(rc, 0, "map with a side output runs: %s", rc ? weir_err_msg() : "");
	ok(map_main_n == 5000 && map_main_sum == 24995000 && map_side_n == 5000 && map_side_sum == 25000000 &&
	   !map_side_badts, "a map's side output gets exactly the odd numbers with their timestamps, the main output "
	   "the even ones (main %lld/%lld, side %lld/%lld, %lld bad)", (long long)map_main_n, (long long)map_main_sum,
	   (long long)map_side_n, (long long)map_side_sum, (long long)map_side_badts);

	env = weir_env_create(1);
	weir_stream *s = weir_assign_timestamps(weir_source_sequence(env, 10, 0), NULL, 0, 0);
	static const weir_aggregate a = { .acc_size = 8, .add = agg_noop, .result = agg_none };
	weir_window_spec w = weir_tumbling(WEIR_EVENT_TIME, 10);
	weir_stream *win = weir_window_aggregate(weir_key_by(s, key_of, NULL), "w", &w, &a, NULL);
	int t = win ? weir_declare_side_output(win, "mine") : -1;
	is_int(t, 2, "a window's first declared side output is 2 (1 is its late output)");
	weir_env_destroy(env);
}

/* ==== 5. TTL ============================================================================ */

/* Value and list state with a TTL of 100 ms, on the manual clock
 * (base/clock.h), which the process function (parallelism 1) advances
 * itself: every read happens at a known age of the entry. An entry
 * written at w expires at w + TTL: present at w + TTL - 1, absent at
 * w + TTL (Flink's "expired when expiry <= now").
 *  - key 1: "set" (val 1) writes it at w; val 2 reads at w (present), then
 *    at w + TTL - 1 (present); val 3 reads at w + TTL (absent);
 *  - key 2 writes and reads in the same callback: present;
 *  - key 3 (val 4): written at w1 and again at w1 + 60 = w2: present at
 *    w1 + TTL + 5 (a write refreshes the TTL) and at w2 + TTL - 1 (reads do
 *    not), absent at w2 + TTL;
 *  - key 4 (val 5): a list gets 1 at w1, then 2 at w1 + TTL: the expired
 *    list is gone, the add starts a new one (items: 2). */
static int s_ttl;
static int64_t ttl_set_ms;
static int ttl_present_early = -1, ttl_present_edge = -1, ttl_present_late = -1, ttl_same_call = -1;
#define TTL_MS 100

static int s_ttl_list;
static int ttl_refreshed = -1, ttl_refresh_edge = -1, ttl_refresh_expired = -1;
static int64_t ttl_list_items = -1;

/* move the manual clock on to `at` (wall ms) */
static void clock_to(weir_ctx *ctx, int64_t at)
{
	weir_clock_advance_ms(at - weir_ctx_processing_time(ctx));
	if (weir_ctx_processing_time(ctx) != at)
		bad("the manual clock reads %lld, not %lld", weir_ctx_processing_time(ctx), at);
}

static int ttl_fn(weir_ctx *ctx, const weir_rec *in)
{
	in_rec r;
	memcpy(&r, in->data, sizeof(r));
	weir_rec v;
	int64_t x = 42;
	if (r.key == 2) {
		if (weir_value_set(ctx, s_ttl, &x, 8) < 0)
			return -1;
		ttl_same_call = weir_value_get(ctx, s_ttl, &v);
		return 0;
	}
	switch (r.val) {
	case 1:
		ttl_set_ms = weir_ctx_processing_time(ctx);
		return weir_value_set(ctx, s_ttl, &x, 8);
	case 2:
		ttl_present_early = weir_value_get(ctx, s_ttl, &v);
		clock_to(ctx, ttl_set_ms + TTL_MS - 1);
		ttl_present_edge = weir_value_get(ctx, s_ttl, &v);
		return 0;
	case 3:
		clock_to(ctx, ttl_set_ms + TTL_MS);
		ttl_present_late = weir_value_get(ctx, s_ttl, &v);
		return 0;
	case 4: {
		/* a write refreshes the entry, a read does not */
		int64_t w1 = weir_ctx_processing_time(ctx), w2 = w1 + 60;
		if (weir_value_set(ctx, s_ttl, &x, 8) < 0)
			return -1;
		clock_to(ctx, w2);
		if (weir_value_set(ctx, s_ttl, &x, 8) < 0)
			return -1;
		clock_to(ctx, w1 + TTL_MS + 5);
		ttl_refreshed = weir_value_get(ctx, s_ttl, &v);
		clock_to(ctx, w2 + TTL_MS - 1);
		ttl_refresh_edge = weir_value_get(ctx, s_ttl, &v);
		clock_to(ctx, w2 + TTL_MS);
		ttl_refresh_expired = weir_value_get(ctx, s_ttl, &v);
		return 0;
	}
	case 5: {
		/* list state: an expired list is gone, the next add starts afresh */
		int64_t w1 = weir_ctx_processing_time(ctx);
		int64_t one = 1, two = 2;
		if (weir_list_add(ctx, s_ttl_list, &one, 8) < 0)
			return -1;
		clock_to(ctx, w1 + TTL_MS);
		if (weir_list_add(ctx, s_ttl_list, &two, 8) < 0)
			return -1;
		weir_iter it;
		if (weir_list_iter(ctx, s_ttl_list, &it) < 0)
			return -1;
		ttl_list_items = 0;
		while (weir_iter_next(&it, &v) == 1)
			ttl_list_items = ttl_list_items * 10 + i64at(v.data, 0);
		return 0;
	}
	}
	return 0;
}

static void test_ttl(void)
{
	static const in_rec script[] = { { 1, 1, 0 }, { 1, 2, 1 }, { 2, 7, 1 }, { 1, 3, 2 }, { 3, 4, 3 }, { 4, 5, 4 } };
	free(input);
	input = malloc(sizeof(script));
	memcpy(input, script, sizeof(script));
	ninput = 6;
	reset_source();
	bad_misc = 0;
	weir_env *env = weir_env_create(1);
	weir_stream *p = weir_process(weir_key_by(weir_source(env, "src", src_poll, NULL), key_of, NULL), "ttl", ttl_fn,
				      NULL, NULL);
	BUILT(env, p);
	s_ttl = weir_declare_state(p, &(weir_state_desc){ .name = "v", .kind = WEIR_VALUE_STATE, .ttl_ms = TTL_MS });
	s_ttl_list = weir_declare_state(p, &(weir_state_desc){ .name = "l", .kind = WEIR_LIST_STATE, .ttl_ms = TTL_MS });
	weir_sink_discard(p);
	BUILT(env, p);
	weir_clock_set_manual(true);
	int rc = run(env);
	weir_clock_set_manual(false);
	is_int(rc, 0, "TTL job runs: %s", rc ? weir_err_msg() : "");
	is_int(ttl_present_early, 1, "a value read before its TTL is present");
	is_int(ttl_present_edge, 1, "a value read 1 ms before its TTL ends is present");
	is_int(ttl_same_call, 1, "a value read right after writing is present");
	is_int(ttl_present_late, 0, "a value read after its TTL (100 ms) is absent");
	is_int(ttl_refreshed, 1, "a write refreshes the TTL: present 105 ms after the first write, 45 after the second");
	is_int(ttl_refresh_edge, 1, "reads do not refresh it: present 99 ms after the last write, after two reads");
	is_int(ttl_refresh_expired, 0, "absent once the TTL passed after the last write");
	is_int(ttl_list_items, 2, "list state: after its TTL the list is gone, an add starts a new one (items: 1 then 2 "
	       "reads as 12)");
	ok(!bad_misc, "the manual clock moved as the test moved it (%s)", bad_misc ? bad_what : "");
}

int main(void)
{
	uint64_t rnd = jobtest_start();
	test_state(&rnd, 1);
	test_state(&rnd, 3);
	test_state_errors();
	test_timer_failure();
	test_repeating_timers();
	test_timers(&rnd, 1, 2, true);
	test_timers(&rnd, 1, 1, true);
	test_timers(&rnd, 2, 3, false);
	test_timers(&rnd, 3, 2, false);
	test_timer_edges(&rnd, 1);
	test_timer_edges(&rnd, 2);
	test_many_keys(&rnd, 1);
	test_many_keys(&rnd, 3);
	test_processing_timers();
	test_side_outputs(&rnd, 1);
	test_side_outputs(&rnd, 2);
	test_side_output_map();
	test_ttl();
	free(input);
	done_testing();
}
