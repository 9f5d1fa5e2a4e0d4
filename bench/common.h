/*
 * bench/common.h - the per-record work shared by the pipeline job and the
 * plain-loop baseline, so that both do exactly the same computation.
 */
#ifndef WEIR_BENCH_COMMON_H
#define WEIR_BENCH_COMMON_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* The record after the map: 16 bytes, the key first. */
struct kv_rec {
	uint64_t key;	/* mix(n) % keys */
	uint64_t value;	/* n */
};

/* splitmix64's finalizer: cheap, and scatters consecutive n over the keys. */
static inline uint64_t bench_mix(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ull;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

/* COUNT and KEYS from argv[1], argv[2]; 0 on success. */
static inline int bench_args(int argc, char **argv, int64_t *count, uint64_t *keys)
{
	if (argc != 3)
		return -1;
	char *e1, *e2;
	long long c = strtoll(argv[1], &e1, 10);
	long long k = strtoll(argv[2], &e2, 10);
	if (*e1 || *e2 || e1 == argv[1] || e2 == argv[2] || c < 0 || k < 1)
		return -1;
	*count = c;
	*keys = (uint64_t)k;
	return 0;
}

/* The window benchmarks (window_job.c, window_baseline.c): the record with
 * number n has event time n ms and key mix(n) % KEYS, and goes to a
 * tumbling window of MS ms or to a session window with a gap of MS ms. */
enum bench_window_mode { BENCH_TUMBLING, BENCH_SESSION };

/* tumbling|session COUNT KEYS MS from argv[1..4]; 0 on success. */
static inline int bench_window_args(int argc, char **argv, enum bench_window_mode *mode, int64_t *count,
				    uint64_t *keys, int64_t *ms)
{
	if (argc != 5 || bench_args(3, argv + 1, count, keys) < 0)
		return -1;
	if (!strcmp(argv[1], "tumbling"))
		*mode = BENCH_TUMBLING;
	else if (!strcmp(argv[1], "session"))
		*mode = BENCH_SESSION;
	else
		return -1;
	char *e;
	long long v = strtoll(argv[4], &e, 10);
	if (*e || e == argv[4] || v < 1 || v > (1ll << 40))
		return -1;
	*ms = v;
	return 0;
}

/* What a window emits: the key, the window [start, end) and its count. */
struct win_result {
	uint64_t key;
	int64_t start;
	int64_t end;
	uint64_t count;
};

/* A result folded to 64 bits; results are combined with XOR, so the order
 * in which they arrive does not change the checksum. */
static inline uint64_t bench_result_hash(const struct win_result *r)
{
	uint64_t h = bench_mix(r->key);
	h = bench_mix(h ^ (uint64_t)r->start);
	h = bench_mix(h ^ (uint64_t)r->end);
	return bench_mix(h ^ r->count);
}

#endif
