/*
 * bench/ysb.h - the Yahoo Streaming Benchmark in the form its C++
 * implementations use (WindFlow's), shared by the job (bench/ysb_job.c) and
 * the plain-loop baseline (bench/ysb_baseline.c) so that both do exactly
 * the same per-event work:
 *
 *   generate event v -> keep views -> join ad to campaign (a hash table
 *   loaded at open) -> count per campaign in 10 s tumbling event-time
 *   windows, keeping the newest event's timestamp -> result
 *
 * Event v: ad_id = (v % 100000) % 1000, event_type = (v % 100000) % 3 (0 is
 * a view), ad_type = (v % 100000) % 5; 100 campaigns of 10 ads (campaign of
 * ad a: a / 10, found through the table, as a join would).
 *
 * Time: an event's ts is nanoseconds. With a synthetic clock of E events
 * per second (tests, exact results), event v has ts = v * 1e9 / E. With the
 * wall clock, ts is CLOCK_REALTIME when the event is due: its slot in the
 * paced schedule, or the time its batch was generated when unpaced, so a
 * result's latency (now - newest ts) counts any time the event waited.
 */
#ifndef WEIR_BENCH_YSB_H
#define WEIR_BENCH_YSB_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common.h"
#include "hist.h"

#define YSB_CAMPAIGNS 100
#define YSB_ADS_PER_CAMPAIGN 10
#define YSB_ADS (YSB_CAMPAIGNS * YSB_ADS_PER_CAMPAIGN)
#define YSB_WINDOW_MS 10000
#define YSB_SPLITS 8 /* event v belongs to split v % YSB_SPLITS */

/* 48 bytes, as the benchmark's C++ implementations */
struct ysb_event {
	uint64_t user_id;
	uint64_t page_id;
	uint64_t ad_id;
	uint32_t ad_type;
	uint32_t event_type;
	uint32_t ip;
	uint32_t pad;
	uint64_t ts;
};
_Static_assert(sizeof(struct ysb_event) == 48, "a YSB event is 48 bytes");

/* after the join: what the window needs */
struct ysb_joined {
	uint64_t campaign;
	uint64_t ts;
};

/* a window's result */
struct ysb_result {
	uint64_t campaign;
	int64_t start; /* ms */
	uint64_t count;
	uint64_t newest; /* the newest event's ts */
};

static inline void ysb_make(uint64_t v, uint64_t ts, struct ysb_event *e)
{
	uint64_t m = v % 100000;
	e->user_id = v * 0x9e3779b97f4a7c15ull;
	e->page_id = v ^ 0x5bd1e995u;
	e->ad_id = m % YSB_ADS;
	e->ad_type = (uint32_t)(m % 5);
	e->event_type = (uint32_t)(m % 3);
	e->ip = (uint32_t)v;
	e->pad = 0;
	e->ts = ts;
}

/* The synthetic clock: event v's ts at E events per second. */
static inline uint64_t ysb_synthetic_ts(uint64_t v, uint64_t eps)
{
	return (uint64_t)((unsigned __int128)v * 1000000000u / eps);
}

static inline uint64_t ysb_wall_ns(void)
{
	struct timespec t;
	clock_gettime(CLOCK_REALTIME, &t);
	return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

/* The ad -> campaign table, open addressing over the ads' ids as a join
 * against a table of ads loaded at start would be. */
#define YSB_TABLE 2048 /* a power of two, at most half full */
struct ysb_table {
	uint64_t ad[YSB_TABLE];
	uint64_t campaign[YSB_TABLE];
	uint8_t used[YSB_TABLE];
};

static inline void ysb_table_load(struct ysb_table *t)
{
	memset(t, 0, sizeof(*t));
	for (uint64_t a = 0; a < YSB_ADS; a++) {
		uint64_t i = bench_mix(a) & (YSB_TABLE - 1);
		while (t->used[i])
			i = (i + 1) & (YSB_TABLE - 1);
		t->used[i] = 1;
		t->ad[i] = a;
		t->campaign[i] = a / YSB_ADS_PER_CAMPAIGN;
	}
}

/* the campaign of ad a, or -1 (an ad nobody knows: dropped, as a join) */
static inline int64_t ysb_table_find(const struct ysb_table *t, uint64_t a)
{
	for (uint64_t i = bench_mix(a) & (YSB_TABLE - 1); t->used[i]; i = (i + 1) & (YSB_TABLE - 1))
		if (t->ad[i] == a)
			return (int64_t)t->campaign[i];
	return -1;
}

/* A result folded to 64 bits (XOR over results: order does not matter);
 * the newest ts only with the synthetic clock (it is exact then). */
static inline uint64_t ysb_result_hash(const struct ysb_result *r, int exact_ts)
{
	uint64_t h = bench_mix(r->campaign);
	h = bench_mix(h ^ (uint64_t)r->start);
	h = bench_mix(h ^ r->count);
	return exact_ts ? bench_mix(h ^ r->newest) : h;
}

#endif
