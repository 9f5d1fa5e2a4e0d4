/*
 * bench/baseline.c - the benchmark's baseline: the per-record work of
 * bench/pipeline_job.c in one plain loop, without the engine.
 *
 *   weir-bench-baseline COUNT KEYS
 *
 * For n in 0..COUNT-1: mix n into {key, value}, hash the 8 key bytes with
 * XXH3-64 (as the engine does to pick key groups and state slots), and add
 * value to the key's sum in an open-addressing table. Prints
 * "ns records checksum" on stdout; the checksum keeps the work observable.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#define XXH_INLINE_ALL
#include <xxhash.h>

#include "common.h"

struct slot {
	uint64_t hash;	/* 0: empty */
	uint64_t key;
	uint64_t sum;
};

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

int main(int argc, char **argv)
{
	int64_t count;
	uint64_t keys;
	if (bench_args(argc, argv, &count, &keys) < 0) {
		fprintf(stderr, "usage: weir-bench-baseline COUNT KEYS\n");
		return 2;
	}
	uint64_t cap = 1024;
	while (cap < keys * 2)
		cap *= 2;
	struct slot *t = calloc(cap, sizeof(*t));
	if (!t) {
		fprintf(stderr, "weir-bench-baseline: out of memory\n");
		return 1;
	}

	uint64_t start = now_ns();
	for (uint64_t n = 0; n < (uint64_t)count; n++) {
		struct kv_rec r = { .key = bench_mix(n) % keys, .value = n };
		uint64_t h = XXH3_64bits(&r.key, sizeof(r.key));
		h = h ? h : 1;
		uint64_t i = (h >> 32) & (cap - 1);
		while (t[i].hash && (t[i].hash != h || t[i].key != r.key))
			i = (i + 1) & (cap - 1);
		if (!t[i].hash) {
			t[i].hash = h;
			t[i].key = r.key;
		}
		t[i].sum += r.value;
	}
	uint64_t ns = now_ns() - start;

	uint64_t check = 0;
	for (uint64_t i = 0; i < cap; i++)
		check ^= bench_mix(t[i].key ^ t[i].sum);
	printf("%llu %lld %016llx\n", (unsigned long long)ns, (long long)count, (unsigned long long)check);
	free(t);
	return 0;
}
