/*
 * bench/hist.h - a log-linear latency histogram for the benchmarks: 16
 * buckets per power of two, so a percentile is within 1/16 of the true
 * value; fixed size, no allocation, adding is a few instructions.
 */
#ifndef WEIR_BENCH_HIST_H
#define WEIR_BENCH_HIST_H

#include <stdint.h>

#define BENCH_HIST_SUB 16
#define BENCH_HIST_N (64 * BENCH_HIST_SUB)
struct bench_hist {
	uint64_t n, max;
	uint64_t b[BENCH_HIST_N];
};

static inline void bench_hist_add(struct bench_hist *h, uint64_t v)
{
	unsigned i;
	if (v < BENCH_HIST_SUB) {
		i = (unsigned)v;
	} else {
		unsigned e = 63u - (unsigned)__builtin_clzll(v); /* >= 4 */
		i = (e - 3) * BENCH_HIST_SUB + (unsigned)((v >> (e - 4)) & (BENCH_HIST_SUB - 1));
	}
	h->b[i < BENCH_HIST_N ? i : BENCH_HIST_N - 1]++;
	h->n++;
	if (v > h->max)
		h->max = v;
}

/* the lower bound of bucket i */
static inline uint64_t bench_hist_low(unsigned i)
{
	if (i < BENCH_HIST_SUB)
		return i;
	unsigned e = i / BENCH_HIST_SUB + 3, sub = i % BENCH_HIST_SUB;
	return (1ull << e) | ((uint64_t)sub << (e - 4));
}

/* the value at quantile q (0..1): the middle of its bucket */
static inline uint64_t bench_hist_at(const struct bench_hist *h, double q)
{
	if (!h->n)
		return 0;
	uint64_t want = (uint64_t)(q * (double)h->n), seen = 0;
	if (want >= h->n)
		want = h->n - 1;
	for (unsigned i = 0; i < BENCH_HIST_N; i++) {
		seen += h->b[i];
		if (seen > want) {
			uint64_t lo = bench_hist_low(i), hi = i + 1 < BENCH_HIST_N ? bench_hist_low(i + 1) : lo;
			uint64_t mid = lo + (hi - lo) / 2;
			return mid > h->max ? h->max : mid;
		}
	}
	return h->max;
}

#endif
