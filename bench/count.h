/*
 * bench/count.h - counts per key and window, the benchmark jobs' most
 * common aggregate: an 8-byte count, and a result that emits a struct
 * win_result (bench/common.h) for an 8-byte key. bench_counter is the
 * whole aggregate.
 */
#ifndef WEIR_BENCH_COUNT_H
#define WEIR_BENCH_COUNT_H

#include <weir/weir.h>

#include <stdint.h>
#include <string.h>

#include "common.h"

static inline int bench_count_create(weir_ctx *ctx, void *acc)
{
	(void)ctx;
	memset(acc, 0, sizeof(uint64_t));
	return 0;
}

static inline int bench_count_add(weir_ctx *ctx, void *acc, const weir_rec *in)
{
	(void)ctx, (void)in;
	uint64_t c;
	memcpy(&c, acc, sizeof(c)); /* accumulators need not be aligned */
	c++;
	memcpy(acc, &c, sizeof(c));
	return 0;
}

static inline int bench_count_merge(weir_ctx *ctx, void *acc, const void *other)
{
	(void)ctx;
	uint64_t a, b;
	memcpy(&a, acc, sizeof(a));
	memcpy(&b, other, sizeof(b));
	a += b;
	memcpy(acc, &a, sizeof(a));
	return 0;
}

static inline int bench_count_result(weir_ctx *ctx, const void *acc)
{
	struct win_result r;
	weir_key k;
	if (weir_ctx_key(ctx, &k) < 0 || k.len != sizeof(r.key))
		return weir_fail(ctx, "no 8-byte key in the result function");
	if (weir_ctx_window(ctx, &r.start, &r.end) < 0)
		return weir_fail(ctx, "no window in the result function");
	memcpy(&r.key, k.data, sizeof(r.key));
	memcpy(&r.count, acc, sizeof(r.count));
	return weir_emit(ctx, &r, sizeof(r));
}

static const weir_aggregate bench_counter = {
	.acc_size = sizeof(uint64_t),
	.create = bench_count_create,
	.add = bench_count_add,
	.merge = bench_count_merge,
	.result = bench_count_result,
};

#endif
