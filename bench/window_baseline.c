/*
 * bench/window_baseline.c - the window benchmarks' baseline: the per-record
 * work of bench/window_job.c in one plain loop, without the engine.
 *
 *   weir-bench-windows tumbling COUNT KEYS SIZE_MS
 *   weir-bench-windows session COUNT KEYS GAP_MS
 *
 * For n in 0..COUNT-1 (event time n ms, in order): mix n into {key, value},
 * hash the 8 key bytes with XXH3-64 (as the engine does), and then
 *
 *   tumbling: add one to the count of (key, window n / SIZE) in an
 *     open-addressing table; when n enters the next window (the watermark
 *     passes the end of the current one), emit every (key, window) of the
 *     window that ended, from a list of the slots it used, and clear them;
 *   session: look the key's open session {start, last, count} up in an
 *     open-addressing table; if n - last <= GAP (windows [t, t + GAP) that
 *     touch merge, as in Flink) extend it, else emit it as [start, last +
 *     GAP) and open a new one; at the end emit every open session.
 *
 * "Emit" folds the result {key, start, end, count} into an XOR checksum
 * (bench_result_hash), as the job's sink does. Prints "ns records checksum
 * results" on stdout.
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
	int64_t start;	/* session: first event time */
	int64_t last;	/* session: last event time */
	uint64_t count;
};

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static uint64_t check, results;

static void emit(uint64_t key, int64_t start, int64_t end, uint64_t count)
{
	struct win_result r = { .key = key, .start = start, .end = end, .count = count };
	check ^= bench_result_hash(&r);
	results++;
}

/* the slot of (key, h) in t, empty if absent */
static inline uint64_t find(struct slot *t, uint64_t mask, uint64_t h, uint64_t key)
{
	uint64_t i = (h >> 32) & mask;
	while (t[i].hash && (t[i].hash != h || t[i].key != key))
		i = (i + 1) & mask;
	return i;
}

int main(int argc, char **argv)
{
	enum bench_window_mode mode;
	int64_t count, ms;
	uint64_t keys;
	if (bench_window_args(argc, argv, &mode, &count, &keys, &ms) < 0) {
		fprintf(stderr, "usage: weir-bench-windows tumbling|session COUNT KEYS MS\n");
		return 2;
	}
	/* at most min(KEYS, SIZE) entries live at a time when tumbling */
	uint64_t live = mode == BENCH_TUMBLING && (uint64_t)ms < keys ? (uint64_t)ms : keys;
	uint64_t cap = 1024;
	while (cap < live * 2)
		cap *= 2;
	struct slot *t = calloc(cap, sizeof(*t));
	uint64_t *used = mode == BENCH_TUMBLING ? malloc(live * sizeof(*used)) : NULL;
	if (!t || (mode == BENCH_TUMBLING && !used)) {
		fprintf(stderr, "weir-bench-windows: out of memory\n");
		return 1;
	}
	uint64_t mask = cap - 1, nused = 0;

	uint64_t start = now_ns();
	if (mode == BENCH_TUMBLING) {
		int64_t wstart = 0, wend = ms;
		for (int64_t n = 0; n < count; n++) {
			if (n >= wend) { /* the watermark passed wend - 1: fire */
				for (uint64_t u = 0; u < nused; u++) {
					struct slot *s = &t[used[u]];
					emit(s->key, wstart, wend, s->count);
					memset(s, 0, sizeof(*s));
				}
				nused = 0;
				wstart = n / ms * ms;
				wend = wstart + ms;
			}
			struct kv_rec r = { .key = bench_mix((uint64_t)n) % keys, .value = (uint64_t)n };
			uint64_t h = XXH3_64bits(&r.key, sizeof(r.key));
			h = h ? h : 1;
			uint64_t i = find(t, mask, h, r.key);
			if (!t[i].hash) {
				t[i].hash = h;
				t[i].key = r.key;
				used[nused++] = i;
			}
			t[i].count++;
		}
		for (uint64_t u = 0; u < nused; u++)
			emit(t[used[u]].key, wstart, wend, t[used[u]].count);
	} else {
		for (int64_t n = 0; n < count; n++) {
			struct kv_rec r = { .key = bench_mix((uint64_t)n) % keys, .value = (uint64_t)n };
			uint64_t h = XXH3_64bits(&r.key, sizeof(r.key));
			h = h ? h : 1;
			uint64_t i = find(t, mask, h, r.key);
			struct slot *s = &t[i];
			if (s->hash && n - s->last <= ms) {
				s->last = n;
				s->count++;
				continue;
			}
			if (s->hash)
				emit(s->key, s->start, s->last + ms, s->count);
			s->hash = h;
			s->key = r.key;
			s->start = s->last = n;
			s->count = 1;
		}
		for (uint64_t i = 0; i < cap; i++)
			if (t[i].hash)
				emit(t[i].key, t[i].start, t[i].last + ms, t[i].count);
	}
	uint64_t ns = now_ns() - start;

	printf("%llu %lld %016llx %llu\n", (unsigned long long)ns, (long long)count, (unsigned long long)check,
	       (unsigned long long)results);
	free(t);
	free(used);
	return 0;
}
