/* t2000-engine: jobs run in-process through the local runtime: every
 * partitioning, chaining, union, user errors, graph errors, backpressure
 * with a tiny pool, records larger than a segment, and a randomized
 * topology compared against a reference computed in the test.
 * Randomized parts print their seed; WEIR_SEED=N replays. */
#include "tap.h"
#include "runtime/run.h"
#include "base/err.h"

#include <stdlib.h>
#include <string.h>

#define MAXK 4096

static struct weir_config cfg;

static int run(weir_env *env)
{
	int rc = weir_run_local(env, &cfg, false);
	weir_env_destroy(env);
	return rc;
}

static uint64_t u64(const weir_rec *r)
{
	uint64_t v;
	memcpy(&v, r->data, 8);
	return v;
}

/* ---- results shared by sinks on worker threads --------------------------- */
static uint64_t got_sum[MAXK];		/* per key: the largest running sum seen */
static int got_owner[MAXK];		/* per key: sink subtask + 1 that saw it */
static uint64_t owner_conflicts;
static uint64_t per_subtask[16];
static uint64_t seen_values[1 << 16];	/* per value: times seen */
static uint64_t records;

static void reset(void)
{
	memset(got_sum, 0, sizeof(got_sum));
	memset(got_owner, 0, sizeof(got_owner));
	memset(per_subtask, 0, sizeof(per_subtask));
	memset(seen_values, 0, sizeof(seen_values));
	owner_conflicts = 0;
	records = 0;
}

static uint64_t nkeys = 10;

/* record {key, value} */
static int to_kv(weir_ctx *ctx, const weir_rec *in)
{
	uint64_t kv[2] = { u64(in) % nkeys, u64(in) };
	return weir_emit(ctx, kv, sizeof(kv));
}

static int kv_key(weir_ctx *ctx, const weir_rec *r, weir_key *k)
{
	k->data = r->data;
	k->len = 8;
	return 0;
}

static int kv_sum(weir_ctx *ctx, const weir_rec *acc, const weir_rec *in)
{
	uint64_t a[2], b[2];
	memcpy(a, acc->data, 16);
	memcpy(b, in->data, 16);
	a[1] += b[1];
	return weir_emit(ctx, a, sizeof(a));
}

static int sum_sink(weir_ctx *ctx, const weir_rec *r)
{
	uint64_t kv[2];
	memcpy(kv, r->data, 16);
	int me = weir_ctx_subtask(ctx) + 1;
	int prev = 0;
	if (!__atomic_compare_exchange_n(&got_owner[kv[0]], &prev, me, false, __ATOMIC_RELAXED, __ATOMIC_RELAXED) &&
	    prev != me)
		__atomic_fetch_add(&owner_conflicts, 1, __ATOMIC_RELAXED);
	/* sums only grow, so the largest is the final one */
	uint64_t old = __atomic_load_n(&got_sum[kv[0]], __ATOMIC_RELAXED);
	while (kv[1] > old &&
	       !__atomic_compare_exchange_n(&got_sum[kv[0]], &old, kv[1], false, __ATOMIC_RELAXED, __ATOMIC_RELAXED))
		;
	return 0;
}

static int count_sink(weir_ctx *ctx, const weir_rec *r)
{
	__atomic_fetch_add(&per_subtask[weir_ctx_subtask(ctx)], 1, __ATOMIC_RELAXED);
	__atomic_fetch_add(&seen_values[u64(r) & 0xffff], 1, __ATOMIC_RELAXED);
	__atomic_fetch_add(&records, 1, __ATOMIC_RELAXED);
	return 0;
}

static void test_hash_reduce(int psrc, int pred, uint64_t n)
{
	reset();
	weir_env *env = weir_env_create(psrc);
	weir_stream *s = weir_map(weir_source_sequence(env, (int64_t)n, 0), "kv", to_kv, NULL);
	weir_stream *r = weir_set_parallelism(weir_reduce(weir_key_by(s, kv_key, NULL), "sum", kv_sum, NULL), pred);
	weir_set_parallelism(weir_sink(r, "sink", sum_sink, NULL), pred);
	is_int(run(env), 0, "hash/reduce p=%d->%d runs: %s", psrc, pred, weir_err_msg());
	int wrong = 0;
	for (uint64_t k = 0; k < nkeys; k++) {
		uint64_t want = 0;
		for (uint64_t v = k; v < n; v += nkeys)
			want += v;
		wrong += got_sum[k] != want;
	}
	is_int(wrong, 0, "every key's final sum is exact (p=%d->%d)", psrc, pred);
	is_int(owner_conflicts, 0, "every key lives in exactly one subtask");
}

static void test_rebalance_broadcast(void)
{
	reset();
	weir_env *env = weir_env_create(1);
	weir_stream *s = weir_rebalance(weir_source_sequence(env, 9000, 0));
	weir_set_parallelism(weir_sink(s, "sink", count_sink, NULL), 3);
	is_int(run(env), 0, "rebalance job runs");
	ok(per_subtask[0] == 3000 && per_subtask[1] == 3000 && per_subtask[2] == 3000,
	   "rebalance deals 9000 records round robin: %llu %llu %llu", (unsigned long long)per_subtask[0],
	   (unsigned long long)per_subtask[1], (unsigned long long)per_subtask[2]);

	reset();
	env = weir_env_create(1);
	s = weir_broadcast(weir_source_sequence(env, 1000, 0));
	weir_set_parallelism(weir_sink(s, "sink", count_sink, NULL), 3);
	is_int(run(env), 0, "broadcast job runs");
	int thrice = 0;
	for (int v = 0; v < 1000; v++)
		thrice += seen_values[v] == 3;
	ok(per_subtask[0] == 1000 && per_subtask[1] == 1000 && per_subtask[2] == 1000 && thrice == 1000,
	   "broadcast gives each of 3 subtasks every record once");
}

static void test_union(void)
{
	reset();
	weir_env *env = weir_env_create(2);
	weir_stream *a = weir_source_sequence(env, 5000, 0);
	weir_stream *b = weir_set_parallelism(weir_source_sequence(env, 5000, 0), 3);
	weir_sink(weir_union(a, b), "sink", count_sink, NULL);
	is_int(run(env), 0, "union of p=2 and p=3 sources runs: %s", weir_err_msg());
	int twice = 0;
	for (int v = 0; v < 5000; v++)
		twice += seen_values[v] == 2;
	ok(records == 10000 && twice == 5000, "union delivers each value of both sources once: %llu records",
	   (unsigned long long)records);
}

static int emit_twice(weir_ctx *ctx, const weir_rec *in)
{
	weir_emit(ctx, in->data, in->len);
	return weir_emit(ctx, in->data, in->len);
}

static int fail_at_500(weir_ctx *ctx, const weir_rec *in)
{
	if (u64(in) == 500)
		return weir_fail(ctx, "value %llu is cursed", (unsigned long long)u64(in));
	return weir_emit(ctx, in->data, in->len);
}

static int fail_silently(weir_ctx *ctx, const weir_rec *in)
{
	return -3;
}

/* a key of 8 bytes at NULL: the one check of keys (weir_op_key) refuses it
 * on whichever side runs the key function first */
static int null_key(weir_ctx *ctx, const weir_rec *r, weir_key *k)
{
	(void)ctx, (void)r;
	k->data = NULL;
	k->len = 8;
	return 0;
}

/* a key longer than a keyed operator's composite keys can say (65535) */
static int long_key(weir_ctx *ctx, const weir_rec *r, weir_key *k)
{
	static uint8_t big[70000];
	(void)ctx, (void)r;
	k->data = big;
	k->len = sizeof(big);
	return 0;
}

static int noop_process(weir_ctx *ctx, const weir_rec *in)
{
	(void)ctx, (void)in;
	return 0;
}

static void test_user_errors(void)
{
	weir_env *k1 = weir_env_create(2);
	weir_sink_discard(weir_reduce(weir_key_by(weir_source_sequence(k1, 100, 0), null_key, NULL), "sum", kv_sum, NULL));
	ok(run(k1) < 0 && strstr(weir_err_msg(), "the key function returned a key of 8 bytes at"),
	   "a key function's key of 8 bytes without data fails the job, named: %s", weir_err_msg());
	k1 = weir_env_create(2);
	weir_sink_discard(weir_process(weir_key_by(weir_source_sequence(k1, 100, 0), null_key, NULL), "proc",
				       noop_process, NULL, NULL));
	ok(run(k1) < 0 && strstr(weir_err_msg(), "the key function returned a key of 8 bytes at"),
	   "and so before a keyed operator: %s", weir_err_msg());
	k1 = weir_env_create(2);
	weir_sink_discard(weir_process(weir_key_by(weir_source_sequence(k1, 100, 0), long_key, NULL), "proc",
				       noop_process, NULL, NULL));
	ok(run(k1) < 0 && strstr(weir_err_msg(), "'proc'") && strstr(weir_err_msg(), "a key of 70000 bytes") &&
	   strstr(weir_err_msg(), "at most 65535"),
	   "a key of 70000 bytes passes the sender but not the keyed operator: %s", weir_err_msg());

	weir_env *env = weir_env_create(2);
	weir_sink_discard(weir_map(weir_source_sequence(env, 100, 0), "twice", emit_twice, NULL));
	ok(run(env) < 0 && strstr(weir_err_msg(), "'twice'") && strstr(weir_err_msg(), "exactly one"),
	   "a map emitting two records fails the job: %s", weir_err_msg());

	env = weir_env_create(2);
	weir_sink_discard(weir_map(weir_source_sequence(env, 100000, 0), "cursed", fail_at_500, NULL));
	ok(run(env) < 0 && strstr(weir_err_msg(), "operator 'cursed' (subtask 1/2): value 500 is cursed"),
	   "weir_fail's message names operator and subtask: %s", weir_err_msg());

	env = weir_env_create(1);
	weir_sink(weir_source_sequence(env, 10, 0), "quiet-sink", fail_silently, NULL);
	ok(run(env) < 0 && strstr(weir_err_msg(), "'quiet-sink'") && strstr(weir_err_msg(), "-3"),
	   "an error without a message still names the operator: %s", weir_err_msg());
}

static void test_graph_errors(void)
{
	weir_env *env = weir_env_create(2);
	weir_stream *s = weir_source_sequence(env, 10, 0);
	weir_set_parallelism(weir_sink_discard(weir_forward(s)), 3);
	ok(run(env) < 0 && strstr(weir_err_msg(), "forward partitioning") && strstr(weir_err_msg(), "equal"),
	   "forward between unequal parallelism is refused: %s", weir_err_msg());

	env = weir_env_create(1);
	weir_map(weir_source_sequence(env, 10, 0), "m", to_kv, NULL);
	ok(run(env) < 0 && strstr(weir_err_msg(), "no sink"), "a job without a sink is refused: %s", weir_err_msg());

	env = weir_env_create(1);
	ok(weir_reduce(weir_source_sequence(env, 10, 0), "r", kv_sum, NULL) == NULL &&
	   strstr(env->error, "not keyed"), "reduce on an unkeyed stream is refused: %s", env->error);
	weir_env_destroy(env);

	env = weir_env_create(1);
	weir_stream *src = weir_source_sequence(env, 10, 0);
	weir_map(src, "same", to_kv, NULL);
	ok(weir_map(src, "same", to_kv, NULL) == NULL && strstr(env->error, "named 'same'"),
	   "duplicate operator names are refused: %s", env->error);
	weir_env_destroy(env);

	env = weir_env_create(1);
	ok(weir_set_parallelism(weir_source_sequence(env, 10, 0), 0) == NULL && strstr(env->error, "parallelism 0"),
	   "parallelism 0 is refused: %s", env->error);
	weir_env_destroy(env);
}

static void test_chaining(void)
{
	weir_env *env = weir_env_create(2);
	weir_stream *s = weir_source_sequence(env, 10, 0);
	s = weir_map(s, "a", to_kv, NULL);
	s = weir_map(s, "b", to_kv, NULL);
	s = weir_reduce(weir_key_by(s, kv_key, NULL), "r", kv_sum, NULL);
	weir_stream *sink = weir_sink_discard(s);
	(void)sink;
	struct plan p;
	is_int(weir_plan_build(&p, env, &cfg), 0, "plan builds");
	ok(p.nv == 2 && p.v[0].nnodes == 3 && p.v[1].nnodes == 2,
	   "source+a+b chain into one vertex, reduce+sink into another (%d vertices)", p.nv);
	weir_plan_release(&p);
	weir_env_destroy(env);

	/* a producer with two consumers cannot chain */
	env = weir_env_create(1);
	s = weir_source_sequence(env, 10, 0);
	weir_sink_discard(s);
	weir_sink_discard(s);
	is_int(weir_plan_build(&p, env, &cfg), 0, "fan-out plan builds");
	is_int(p.nv, 3, "a source with two sinks makes three vertices");
	weir_plan_release(&p);
	weir_env_destroy(env);
}

/* each input record fans out to 64 records of 1 KiB */
static int fan_out(weir_ctx *ctx, const weir_rec *in)
{
	static _Thread_local uint8_t buf[1024];
	for (int i = 0; i < 64; i++) {
		uint64_t v = u64(in) * 64 + (uint64_t)i;
		memcpy(buf, &v, 8);
		if (weir_emit(ctx, buf, sizeof(buf)) < 0)
			return -1;
	}
	return 0;
}

static void test_tiny_pool(void)
{
	reset();
	struct weir_config saved = cfg;
	cfg.segment_size = 4096;
	cfg.credits = 1;
	cfg.floating = 0;
	weir_env *env = weir_env_create(2);
	weir_stream *s = weir_flat_map(weir_source_sequence(env, 1000, 0), "fan", fan_out, NULL);
	weir_sink(weir_rebalance(s), "sink", count_sink, NULL);
	is_int(run(env), 0, "64x fan-out through 1 credit per channel and no floating reserve: %s", weir_err_msg());
	is_int(records, 64000, "every fanned-out record arrives");
	cfg = saved;
}

static int big_record(weir_ctx *ctx, const weir_rec *in)
{
	uint32_t len = 100000 + (uint32_t)(u64(in) % 7) * 5000;
	uint8_t *b = malloc(len);
	for (uint32_t i = 0; i < len; i++)
		b[i] = (uint8_t)(u64(in) + i);
	memcpy(b, in->data, 8);
	int rc = weir_emit(ctx, b, len);
	free(b);
	return rc;
}

static uint64_t big_bad;
static int big_sink(weir_ctx *ctx, const weir_rec *r)
{
	uint64_t v = u64(r);
	bool good = r->len == 100000 + (v % 7) * 5000;
	for (uint32_t i = 8; good && i < r->len; i++)
		good = ((const uint8_t *)r->data)[i] == (uint8_t)(v + i);
	if (!good)
		__atomic_fetch_add(&big_bad, 1, __ATOMIC_RELAXED);
	__atomic_fetch_add(&records, 1, __ATOMIC_RELAXED);
	return 0;
}

static void test_big_records(void)
{
	reset();
	weir_env *env = weir_env_create(2);
	weir_stream *s = weir_map(weir_source_sequence(env, 300, 0), "big", big_record, NULL);
	weir_sink(weir_rebalance(s), "sink", big_sink, NULL);
	is_int(run(env), 0, "records of ~100 KiB cross 32 KiB segments: %s", weir_err_msg());
	ok(records == 300 && big_bad == 0, "all 300 arrive intact (%llu bad)", (unsigned long long)big_bad);
}

/* Random pipelines: source(p1) -> kv -> [rebalance|forward] map(p2) ->
 * key_by -> sum(p3) -> sink(p3); sums must match the reference. */
static int identity(weir_ctx *ctx, const weir_rec *in)
{
	return weir_emit(ctx, in->data, in->len);
}

static void test_random_topologies(uint64_t seed)
{
	uint64_t rnd = seed;
	int bad = 0;
	for (int round = 0; round < 40; round++) {
		int p1 = 1 + (int)(tap_rand(&rnd) % 4), p2 = 1 + (int)(tap_rand(&rnd) % 4), p3 = 1 + (int)(tap_rand(&rnd) % 4);
		uint64_t n = 1000 + tap_rand(&rnd) % 50000;
		nkeys = 1 + tap_rand(&rnd) % MAXK;
		bool rebalance = tap_rand(&rnd) & 1;
		cfg.batch = 1 + (uint32_t)(tap_rand(&rnd) % 512);
		reset();
		weir_env *env = weir_env_create(p1);
		weir_stream *s = weir_map(weir_source_sequence(env, (int64_t)n, 0), "kv", to_kv, NULL);
		if (rebalance)
			s = weir_rebalance(s);
		s = weir_set_parallelism(weir_map(s, "mid", identity, NULL), rebalance ? p2 : p1);
		s = weir_set_parallelism(weir_reduce(weir_key_by(s, kv_key, NULL), "sum", kv_sum, NULL), p3);
		weir_set_parallelism(weir_sink(s, "sink", sum_sink, NULL), p3);
		int rc = run(env);
		int wrong = 0;
		for (uint64_t k = 0; k < nkeys && k < n; k++) {
			uint64_t want = 0;
			for (uint64_t v = k; v < n; v += nkeys)
				want += v;
			wrong += got_sum[k] != want;
		}
		if (rc != 0 || wrong || owner_conflicts) {
			bad++;
			diag("round %d: p=%d/%d/%d n=%llu keys=%llu batch=%u rebalance=%d: rc=%d wrong=%d (%s)", round,
			     p1, p2, p3, (unsigned long long)n, (unsigned long long)nkeys, cfg.batch, rebalance, rc,
			     wrong, weir_err_msg());
		}
	}
	is_int(bad, 0, "40 random pipelines give exact per-key sums");
	nkeys = 10;
	cfg.batch = 256;
}

/* A source emitting from odd addresses, every other poll IDLE without a
 * wake-up time; a map after it checks what it receives is aligned. */
static int odd_polls[16];
static uint64_t odd_next[16];
static int odd_source(weir_ctx *ctx)
{
	int me = weir_ctx_subtask(ctx); /* each subtask only touches its own counters */
	_Alignas(8) uint8_t buf[17];
	if (odd_next[me] >= 2000)
		return WEIR_SOURCE_END;
	if (odd_polls[me]++ & 1)
		return WEIR_SOURCE_IDLE;
	for (int i = 0; i < 100; i++, odd_next[me]++) {
		memcpy(buf + 1, &odd_next[me], 8);
		if (weir_emit(ctx, buf + 1, 8) < 0)
			return -1;
	}
	return WEIR_SOURCE_MORE;
}

static uint64_t misaligned;
static int check_aligned(weir_ctx *ctx, const weir_rec *in)
{
	if ((uintptr_t)in->data & 7)
		__atomic_fetch_add(&misaligned, 1, __ATOMIC_RELAXED);
	return weir_emit(ctx, in->data, in->len);
}

static int aligned_key(weir_ctx *ctx, const weir_rec *r, weir_key *k)
{
	if ((uintptr_t)r->data & 7)
		__atomic_fetch_add(&misaligned, 1, __ATOMIC_RELAXED);
	k->data = r->data;
	k->len = r->len;
	return 0;
}

static void test_alignment_and_idle(void)
{
	reset();
	memset(odd_polls, 0, sizeof(odd_polls));
	memset(odd_next, 0, sizeof(odd_next));
	weir_env *env = weir_env_create(1);
	weir_stream *s = weir_map(weir_source(env, "odd", odd_source, NULL), "aligned", check_aligned, NULL);
	weir_sink(s, "sink", count_sink, NULL);
	is_int(run(env), 0, "a source that idles without a wake-up time still finishes: %s", weir_err_msg());
	ok(records == 2000 && misaligned == 0, "a chained operator gets 8-byte aligned records from odd addresses "
	   "(%llu records, %llu misaligned)", (unsigned long long)records, (unsigned long long)misaligned);

	reset();
	misaligned = 0;
	memset(odd_polls, 0, sizeof(odd_polls));
	memset(odd_next, 0, sizeof(odd_next));
	env = weir_env_create(2);
	weir_sink(weir_key_by(weir_source(env, "odd", odd_source, NULL), aligned_key, NULL), "sink", count_sink, NULL);
	is_int(run(env), 0, "odd source straight into key_by runs");
	ok(records == 4000 && misaligned == 0, "the sending side's key function gets aligned records too "
	   "(%llu records, %llu misaligned)", (unsigned long long)records, (unsigned long long)misaligned);

	env = weir_env_create(1);
	ok(weir_on_open(weir_sink_discard(weir_source_sequence(env, 1, 0)), NULL) == NULL &&
	   strstr(env->error, "built-in connector"), "hooks on a built-in connector are refused: %s", env->error);
	weir_env_destroy(env);
}

/* weir_quote: what a bad record looks like in a message */
static void test_quote(void)
{
	char q[128], small[8];
	is_string(weir_quote(q, sizeof(q), "a \"b\"\\", 6), "a \\\"b\\\"\\\\", "quotes and backslashes are escaped");
	is_string(weir_quote(q, sizeof(q), "x\n\xff", 3), "x\\x0a\\xff", "control and high bytes as \\xNN");
	char long_[100];
	memset(long_, 'z', sizeof(long_));
	weir_quote(q, sizeof(q), long_, sizeof(long_));
	ok(strlen(q) == 63 && !strcmp(q + 60, "..."), "cut at 60 bytes with ... (%zu: %s)", strlen(q), q + 55);
	weir_quote(small, sizeof(small), long_, sizeof(long_));
	ok(strlen(small) < sizeof(small), "a small buffer stays terminated (%zu)", strlen(small));
	is_string(weir_quote(q, sizeof(q), "", 0), "", "empty data, empty quote");
}

int main(void)
{
	uint64_t seed = tap_seed();
	weir_config_defaults(&cfg);
	cfg.quiet = true;
	cfg.pin = false;
	test_hash_reduce(1, 1, 10000);
	test_hash_reduce(2, 3, 20000);
	test_hash_reduce(4, 2, 20000);
	test_rebalance_broadcast();
	test_union();
	test_user_errors();
	test_graph_errors();
	test_chaining();
	test_tiny_pool();
	test_big_records();
	test_random_topologies(seed);
	test_alignment_and_idle();
	test_quote();
	done_testing();
}
