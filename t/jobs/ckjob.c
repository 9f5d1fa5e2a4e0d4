/* The checkpoint tests' job: numbered records at a fixed rate (so that a
 * run spans many checkpoints on any machine), through two keyed branches:
 *
 *   sequence(COUNT, RATE) -> timestamps (ts = n) --+-> keyBy n % 97 -> tumbling 1000 ms count
 *                                                  |     -> "w KEY END COUNT" -> OUTDIR/windows
 *                                                  +-> keyBy n % 89 -> "r N" -> OUTDIR/records
 *   sequence(100) -> "s N" -> OUTDIR/short   (finishes at once: its last
 *                                            snapshot stands in for it)
 *
 * With KEYS (after SOURCE_PARALLELISM, 0 for none) a third branch keeps a
 * count per key n % KEYS in value state and writes "c KEY COUNT" for
 * every record to OUTDIR/counts: with many keys, state big enough that a
 * copy-on-write snapshot takes many worker steps, and any state update
 * lost or repeated by a restore changes a line.
 *
 * With SLOW_US (after KEYS) the records branch spends that long on each
 * record: its inputs fill up, and the job runs under backpressure.
 *
 * With SOURCE_PARALLELISM the sources (with their timestamp assigners, and
 * the whole short branch) keep that parallelism whatever -p says, so a
 * savepoint can be restored at another parallelism (sources do not
 * rescale, and chains must stay the same: docs/operations.md).
 *
 * Without faults the windows' lines are the batch result and the records'
 * lines are 0 .. COUNT-1 once each: a restore that loses or repeats
 * anything shows as a missing, doubled or changed line. */
#include <weir/weir.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static __thread uint64_t keybuf;

static int64_t n_of(const weir_rec *in)
{
	uint64_t n;
	memcpy(&n, in->data, 8);
	return (int64_t)n; /* little-endian hosts only, as the sequence writes */
}

static int64_t ts_of(weir_ctx *ctx, const weir_rec *in)
{
	(void)ctx;
	return n_of(in);
}

/* keyBy n % m, m given as the key function's argument */
static const uint64_t m97 = 97, m89 = 89;

static int key_mod(weir_ctx *ctx, const weir_rec *in, weir_key *key)
{
	keybuf = (uint64_t)n_of(in) % *(const uint64_t *)weir_ctx_arg(ctx);
	key->data = &keybuf;
	key->len = 8;
	return 0;
}

static int count_create(weir_ctx *ctx, void *acc)
{
	(void)ctx;
	memset(acc, 0, 8);
	return 0;
}

static int count_add(weir_ctx *ctx, void *acc, const weir_rec *in)
{
	(void)ctx, (void)in;
	uint64_t c;
	memcpy(&c, acc, 8);
	c++;
	memcpy(acc, &c, 8);
	return 0;
}

static int count_result(weir_ctx *ctx, const void *acc)
{
	int64_t start, end;
	weir_key key;
	uint64_t c, k;
	memcpy(&c, acc, 8);
	if (weir_ctx_window(ctx, &start, &end) < 0 || weir_ctx_key(ctx, &key) < 0 || key.len != 8)
		return weir_fail(ctx, "no window or key in the result function");
	memcpy(&k, key.data, 8);
	char line[96];
	int n = snprintf(line, sizeof(line), "w %llu %lld %llu", (unsigned long long)k, (long long)end,
			 (unsigned long long)c);
	return weir_emit(ctx, line, (uint32_t)n);
}

static const weir_aggregate counter = {
	.acc_size = 8, .create = count_create, .add = count_add, .result = count_result,
};

static int fmt_short(weir_ctx *ctx, const weir_rec *in)
{
	char line[32];
	int n = snprintf(line, sizeof(line), "s %lld", (long long)n_of(in));
	return weir_emit(ctx, line, (uint32_t)n);
}

static int64_t slow_ns;

static int fmt_record(weir_ctx *ctx, const weir_rec *in)
{
	if (slow_ns) { /* busy, as a costly operator is: the worker does not sleep */
		struct timespec a, b;
		clock_gettime(CLOCK_MONOTONIC, &a);
		do
			clock_gettime(CLOCK_MONOTONIC, &b);
		while ((b.tv_sec - a.tv_sec) * 1000000000 + (b.tv_nsec - a.tv_nsec) < slow_ns);
	}
	char line[32];
	int n = snprintf(line, sizeof(line), "r %lld", (long long)n_of(in));
	return weir_emit(ctx, line, (uint32_t)n);
}

static uint64_t nkeys;

static int count_key(weir_ctx *ctx, const weir_rec *in)
{
	weir_rec v;
	uint64_t c = 0, k = (uint64_t)n_of(in) % nkeys;
	int r = weir_value_get(ctx, 0, &v);
	if (r < 0)
		return -1;
	if (r == 1 && v.len == 8)
		memcpy(&c, v.data, 8);
	c++;
	if (weir_value_set(ctx, 0, &c, 8) < 0)
		return -1;
	char line[64];
	int n = snprintf(line, sizeof(line), "c %llu %llu", (unsigned long long)k, (unsigned long long)c);
	return weir_emit(ctx, line, (uint32_t)n);
}

int weir_job(weir_env *env, int argc, char **argv)
{
	if (argc < 4 || argc > 7)
		return weir_env_fail(env, "usage: ckjob.so -- COUNT RATE OUTDIR [SOURCE_PARALLELISM [KEYS [SLOW_US]]]");
	slow_ns = argc == 7 ? atoll(argv[6]) * 1000 : 0;
	char path[4096];
	/* a fixed source parallelism lets a savepoint be restored at another -p */
	int sp = argc == 5 ? atoi(argv[4]) : 0;
	weir_stream *seq = weir_source_sequence(env, atoll(argv[1]), atof(argv[2]));
	if (sp > 0)
		seq = weir_set_parallelism(seq, sp);
	weir_stream *src = weir_assign_timestamps(seq, ts_of, 0, 0);
	if (sp > 0)
		src = weir_set_parallelism(src, sp);
	weir_window_spec w = weir_tumbling(WEIR_EVENT_TIME, 1000);
	snprintf(path, sizeof(path), "%s/windows", argv[3]);
	weir_sink_file(weir_window_aggregate(weir_key_by(src, key_mod, (void *)&m97), "count", &w, &counter, NULL), path);
	snprintf(path, sizeof(path), "%s/records", argv[3]);
	weir_sink_file(weir_map(weir_key_by(src, key_mod, (void *)&m89), "format", fmt_record, NULL), path);
	snprintf(path, sizeof(path), "%s/short", argv[3]);
	weir_stream *shortsrc = weir_source_sequence(env, 100, 0);
	if (sp > 0) /* the whole branch: its chain stays the same at any -p */
		shortsrc = weir_set_parallelism(shortsrc, sp);
	weir_stream *sh = weir_map(shortsrc, "short", fmt_short, NULL);
	if (sp > 0)
		sh = weir_set_parallelism(sh, sp);
	sh = weir_sink_file(sh, path);
	if (sp > 0)
		weir_set_parallelism(sh, sp);
	if (argc >= 6 && (nkeys = strtoull(argv[5], NULL, 10)) > 0) {
		weir_stream *c = weir_process(weir_key_by(src, key_mod, &nkeys), "count-keys", count_key, NULL, NULL);
		static const weir_state_desc count = { .name = "count", .kind = WEIR_VALUE_STATE };
		if (weir_declare_state(c, &count) != 0)
			return -1;
		snprintf(path, sizeof(path), "%s/counts", argv[3]);
		weir_sink_file(c, path);
	}
	return 0;
}
