/*
 * bench/window_job.c - the window benchmark jobs: sequence -> timestamps
 * (monotonous, watermark = max - 1) -> map -> keyBy -> event-time window
 * count -> checksum sink.
 *
 *   weir local build/jobs/windows.so -q -p P -- tumbling COUNT KEYS SIZE_MS
 *   weir local build/jobs/windows.so -q -p P -- session COUNT KEYS GAP_MS
 *
 * Record n (event time n ms, from the sequence source) becomes {key =
 * mix(n) % KEYS, value = n}; a window aggregate counts the records per key
 * in tumbling windows of SIZE_MS, or in session windows with gap GAP_MS.
 * Each fired window emits {key, start, end, count}, and the sink folds the
 * results into an XOR checksum that each sink subtask prints at close as
 * "checksum HEX RESULTS" on stdout; bench/run checks that the XOR over the
 * subtasks equals bench/window_baseline.c's. Subtask i of the sequence
 * emits i, i+P, ...: each input is in order, so nothing is late, and the
 * results do not depend on how the inputs interleave.
 */
#include <weir/weir.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "count.h"

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

/* the checksum sink */
struct checksum {
	uint64_t x;
	uint64_t n;
};

static int sum_open(weir_ctx *ctx)
{
	struct checksum *c = calloc(1, sizeof(*c));
	if (!c)
		return weir_fail(ctx, "out of memory");
	weir_ctx_set_state(ctx, c);
	return 0;
}

static int sum_add(weir_ctx *ctx, const weir_rec *in)
{
	struct checksum *c = weir_ctx_state(ctx);
	struct win_result r;
	if (in->len != sizeof(r))
		return weir_fail(ctx, "result of %u bytes, expected %zu", in->len, sizeof(r));
	memcpy(&r, in->data, sizeof(r));
	c->x ^= bench_result_hash(&r);
	c->n++;
	return 0;
}

static int sum_close(weir_ctx *ctx)
{
	struct checksum *c = weir_ctx_state(ctx);
	if (!c)
		return 0;
	printf("checksum %016llx %llu\n", (unsigned long long)c->x, (unsigned long long)c->n);
	fflush(stdout);
	free(c);
	weir_ctx_set_state(ctx, NULL);
	return 0;
}

/* weir_job builds the same graph each time, so statics are fine */
static uint64_t nkeys;
static weir_window_spec window;

int weir_job(weir_env *env, int argc, char **argv)
{
	enum bench_window_mode mode;
	int64_t count, ms;
	if (bench_window_args(argc, argv, &mode, &count, &nkeys, &ms) < 0)
		return weir_env_fail(env, "usage: windows.so -- tumbling|session COUNT KEYS MS "
				     "(COUNT >= 0, KEYS >= 1, 1 <= MS <= 2^40)");
	window = mode == BENCH_TUMBLING ? weir_tumbling(WEIR_EVENT_TIME, ms) : weir_session(WEIR_EVENT_TIME, ms);
	weir_stream *seq = weir_source_sequence(env, count, 0);
	weir_stream *timed = weir_assign_timestamps(seq, NULL, 0, 0);
	weir_stream *mixed = weir_map(timed, "mix", mix_map, &nkeys);
	weir_stream *wins = weir_window_aggregate(weir_key_by(mixed, key_of, NULL),
						  mode == BENCH_TUMBLING ? "tumbling" : "session", &window, &bench_counter, NULL);
	weir_stream *sink = weir_sink(wins, "checksum", sum_add, NULL);
	weir_on_open(sink, sum_open);
	weir_on_close(sink, sum_close);
	return 0;
}
