/*
 * base/histo.h - log-linear histogram buckets for durations in
 * nanoseconds: four buckets per power of two (a value's bucket says it
 * to within 12.5 %), 192 buckets up to 2^48 ns (78 hours). Recording is
 * a count in an array: no allocation, no lock; latency tracking keeps one
 * per sink subtask (engine/runtime/step.c).
 */
#ifndef WEIR_BASE_HISTO_H
#define WEIR_BASE_HISTO_H

#include <stdint.h>

#define WEIR_HISTO_BUCKETS 192

/* The bucket of ns: values below 4 have their own; above, the power of
 * two and the two bits after the highest set one. */
static inline unsigned weir_histo_bucket(uint64_t ns)
{
	if (ns < 4)
		return (unsigned)ns;
	unsigned msb = 63u - (unsigned)__builtin_clzll(ns);
	unsigned b = (msb - 1u) * 4u + (unsigned)((ns >> (msb - 2u)) & 3u);
	return b < WEIR_HISTO_BUCKETS ? b : WEIR_HISTO_BUCKETS - 1;
}

/* The middle of bucket b's range, ns. */
static inline double weir_histo_value(unsigned b)
{
	if (b < 4)
		return (double)b;
	unsigned msb = b / 4u + 1u, sub = b % 4u;
	double lo = (double)(1ull << msb) + (double)sub * (double)(1ull << (msb - 2u));
	return lo + (double)(1ull << (msb - 2u)) / 2.0;
}

#endif
