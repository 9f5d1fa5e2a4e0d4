/*
 * bench/ysb_baseline.c - the Yahoo Streaming Benchmark's per-event work in
 * one plain loop, without an engine: the ceiling bench/run compares
 * bench/ysb_job.c against (bench/ysb.h says what both compute).
 *
 *   weir-bench-ysb COUNT wall|EVENTS_PER_S
 *
 * Events 0 .. COUNT-1 in order, so windows close in order and one array of
 * counts per campaign holds the open window. Prints the job's "stats" line:
 * "ysb results N checksum HEX latency_ns p50 ..." (latency with wall only).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ysb.h"

static struct ysb_table table;
static struct bench_hist lat;

int main(int argc, char **argv)
{
	char *e1, *e2 = NULL;
	uint64_t count = argc == 3 ? strtoull(argv[1], &e1, 10) : 0, eps = 0;
	if (argc == 3 && strcmp(argv[2], "wall"))
		eps = strtoull(argv[2], &e2, 10);
	if (argc != 3 || *e1 || argv[1][0] == '-' || (e2 && (*e2 || !eps))) {
		fprintf(stderr, "usage: weir-bench-ysb COUNT wall|EVENTS_PER_S\n");
		return 2;
	}
	ysb_table_load(&table);
	uint64_t counts[YSB_CAMPAIGNS] = { 0 }, newest[YSB_CAMPAIGNS] = { 0 };
	int64_t win = INT64_MIN; /* the open window's start, ms */
	uint64_t results = 0, x = 0, now_wall = 0;
	struct ysb_result r;
	/* the window [win, win + 10 s) closes when an event of a later one
	 * comes (or at the end): its results go */
#define CLOSE_WINDOW() \
	do { \
		uint64_t at = eps ? 0 : ysb_wall_ns(); \
		for (int c = 0; c < YSB_CAMPAIGNS; c++) { \
			if (!counts[c]) \
				continue; \
			r = (struct ysb_result){ .campaign = (uint64_t)c, .start = win, .count = counts[c], .newest = newest[c] }; \
			x ^= ysb_result_hash(&r, eps != 0); \
			results++; \
			if (!eps) \
				bench_hist_add(&lat, at > r.newest ? at - r.newest : 0); \
			counts[c] = newest[c] = 0; \
		} \
		win = INT64_MIN; \
	} while (0)
	for (uint64_t v = 0; v < count; v++) {
		struct ysb_event e;
		if (eps)
			now_wall = ysb_synthetic_ts(v, eps);
		else if ((v & 1023) == 0) /* the job reads the clock once per batch */
			now_wall = ysb_wall_ns();
		ysb_make(v, now_wall, &e);
		int64_t ms = (int64_t)(e.ts / 1000000u);
		if (win != INT64_MIN && ms >= win + YSB_WINDOW_MS)
			CLOSE_WINDOW();
		if (e.event_type != 0)
			continue;
		int64_t c = ysb_table_find(&table, e.ad_id);
		if (c < 0)
			continue;
		if (win == INT64_MIN)
			win = ms - ms % YSB_WINDOW_MS;
		counts[c]++;
		if (e.ts > newest[c])
			newest[c] = e.ts;
	}
	if (win != INT64_MIN)
		CLOSE_WINDOW();
	printf("ysb results %" PRIu64 " checksum %016" PRIx64 " latency_ns p50 %" PRIu64 " p99 %" PRIu64
	       " p99.9 %" PRIu64 " p99.99 %" PRIu64 " max %" PRIu64 "\n",
	       results, x, bench_hist_at(&lat, 0.5), bench_hist_at(&lat, 0.99), bench_hist_at(&lat, 0.999),
	       bench_hist_at(&lat, 0.9999), lat.max);
	return 0;
}
