/*
 * bench/pipeline_job.c - the benchmark job: sequence -> map -> keyBy ->
 * rolling reduce -> discard.
 *
 *   weir local build/jobs/pipeline.so -q -p P -- COUNT KEYS
 *
 * The map turns n into {key = mix(n) % KEYS, value = n}; the reduce keeps a
 * running sum of the values per key. bench/baseline.c does the same work
 * in one plain loop; bench/run compares the two.
 */
#include <weir/weir.h>

#include <string.h>

#include "common.h"

static int mix_map(weir_ctx *ctx, const weir_rec *in)
{
	uint64_t n;
	memcpy(&n, in->data, sizeof(n)); /* little-endian: we run on x86/arm64 */
	const uint64_t *keys = weir_ctx_arg(ctx);
	struct kv_rec r = { .key = bench_mix(n) % *keys, .value = n };
	return weir_emit(ctx, &r, sizeof(r));
}

static int key_of(weir_ctx *ctx, const weir_rec *in, weir_key *key)
{
	key->data = in->data; /* the first 8 bytes */
	key->len = sizeof(uint64_t);
	return 0;
}

static int sum(weir_ctx *ctx, const weir_rec *acc, const weir_rec *in)
{
	struct kv_rec a, b;
	if (acc->len != sizeof(a) || in->len != sizeof(b))
		return weir_fail(ctx, "record of %u/%u bytes, expected %zu", acc->len, in->len, sizeof(a));
	memcpy(&a, acc->data, sizeof(a));
	memcpy(&b, in->data, sizeof(b));
	a.value += b.value;
	return weir_emit(ctx, &a, sizeof(a));
}

static uint64_t nkeys; /* weir_job builds the same graph each time, so one static is fine */

int weir_job(weir_env *env, int argc, char **argv)
{
	int64_t count;
	if (bench_args(argc, argv, &count, &nkeys) < 0)
		return weir_env_fail(env, "usage: pipeline.so -- COUNT KEYS (COUNT >= 0, KEYS >= 1)");
	weir_stream *seq = weir_source_sequence(env, count, 0);
	weir_stream *mixed = weir_map(seq, "mix", mix_map, &nkeys);
	weir_stream *sums = weir_reduce(weir_key_by(mixed, key_of, NULL), "sum", sum, NULL);
	weir_sink_discard(sums);
	return 0;
}
