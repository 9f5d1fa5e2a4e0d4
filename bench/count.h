/*
 * bench/count.h - the count accumulator (8 bytes) of the benchmark jobs'
 * window aggregates: create, add and merge of a weir_aggregate; each job
 * writes its own result function.
 */
#ifndef WEIR_BENCH_COUNT_H
#define WEIR_BENCH_COUNT_H

#include <weir/weir.h>

#include <stdint.h>
#include <string.h>

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

#endif
