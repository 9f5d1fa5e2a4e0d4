/*
 * bench/common.h - the per-record work shared by the pipeline job and the
 * plain-loop baseline, so that both do exactly the same computation.
 */
#ifndef WEIR_BENCH_COMMON_H
#define WEIR_BENCH_COMMON_H

#include <stdint.h>
#include <stdlib.h>

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

#endif
