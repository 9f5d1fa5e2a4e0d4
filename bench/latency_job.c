/*
 * bench/latency_job.c - end-to-end latency: a paced source -> map -> keyBy
 * -> map -> sink that measures each record's time since it was due.
 *
 *   weir run build/jobs/latency.so -p P [--spread] [--idle MODE] -- COUNT RATE
 *
 * Each source subtask emits COUNT / P records of 32 bytes at RATE / P per
 * second. A record is stamped with the CLOCK_MONOTONIC time it was due in
 * the schedule (not when it was sent: a record that waits behind a stall
 * counts the wait), and the sink adds now - stamp to one of two log-linear
 * histograms: records that came from a source subtask of another index
 * ("cross": on a cluster with --spread, from another TaskManager) and the
 * others ("same"). RATE 0: as fast as it goes (throughput; latency then
 * measures queueing). At the end each sink subtask prints
 *
 *   latency cross N p50 P p99 P p99.9 P p99.99 P max M same N p50 ...
 *
 * in ns; bench/run merges them by taking the subtask with more records.
 * Then two lines for its plots: "latency-hist cross LOW:N ..." (the
 * crossing records' histogram: each non-empty bucket's lower bound in ns
 * and its count) and "latency-rate MS R1 R2 ..." (records per MS ms of
 * wall clock from the first one: throughput over time).
 */
#include <weir/weir.h>

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common.h"
#include "hist.h"

struct lrec {
	uint64_t key;
	uint64_t due_ns; /* CLOCK_MONOTONIC */
	uint32_t src;	 /* the source subtask */
	uint32_t pad;
	uint64_t seq;
};
_Static_assert(sizeof(struct lrec) == 32, "32-byte records");

static uint64_t count, rate; /* weir_job builds the same graph each time */

static uint64_t mono_ns(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

struct src {
	uint64_t next, end, t0, period;
};

static int src_open(weir_ctx *ctx)
{
	struct src *s = calloc(1, sizeof(*s));
	if (!s)
		return weir_fail(ctx, "out of memory");
	uint64_t p = (uint64_t)weir_ctx_parallelism(ctx), i = (uint64_t)weir_ctx_subtask(ctx);
	s->next = count * i / p;
	s->end = count * (i + 1) / p;
	s->period = rate ? 1000000000ull * p / rate : 0;
	s->t0 = mono_ns();
	weir_ctx_set_state(ctx, s);
	return 0;
}

static int src_close(weir_ctx *ctx)
{
	free(weir_ctx_state(ctx));
	weir_ctx_set_state(ctx, NULL);
	return 0;
}

static int src_poll(weir_ctx *ctx)
{
	struct src *s = weir_ctx_state(ctx);
	uint64_t now = mono_ns(), first = count * (uint64_t)weir_ctx_subtask(ctx) / (uint64_t)weir_ctx_parallelism(ctx);
	for (uint32_t k = 0, b = weir_ctx_batch(ctx); k < b && s->next < s->end; k++) {
		uint64_t due = s->period ? s->t0 + (s->next - first) * s->period : now;
		if (due > now) {
			/* the monotonic clock is the engine's too (weir_ctx_now_ns) */
			weir_ctx_idle_until(ctx, due);
			return WEIR_SOURCE_IDLE;
		}
		struct lrec r = { .key = bench_mix(s->next), .due_ns = due, .src = (uint32_t)weir_ctx_subtask(ctx),
				  .seq = s->next };
		if (weir_emit(ctx, &r, sizeof(r)) < 0)
			return -1;
		s->next++;
	}
	return s->next < s->end ? WEIR_SOURCE_MORE : WEIR_SOURCE_END;
}

static int pass(weir_ctx *ctx, const weir_rec *in)
{
	return weir_emit(ctx, in->data, in->len);
}

static int key_of(weir_ctx *ctx, const weir_rec *in, weir_key *key)
{
	(void)ctx;
	key->data = in->data; /* the first 8 bytes */
	key->len = sizeof(uint64_t);
	return 0;
}

#define RATE_MS 100
#define RATE_SLOTS 600 /* a minute of throughput over time; later records count in the last */

struct sink {
	struct bench_hist cross, same;
	uint64_t first_ns;
	uint32_t rate[RATE_SLOTS];
};

static int sink_open(weir_ctx *ctx)
{
	struct sink *k = calloc(1, sizeof(*k));
	if (!k)
		return weir_fail(ctx, "out of memory");
	weir_ctx_set_state(ctx, k);
	return 0;
}

static int sink_add(weir_ctx *ctx, const weir_rec *in)
{
	struct sink *k = weir_ctx_state(ctx);
	struct lrec r;
	memcpy(&r, in->data, sizeof(r));
	uint64_t now = mono_ns();
	bench_hist_add(r.src == (uint32_t)weir_ctx_subtask(ctx) ? &k->same : &k->cross,
		       now > r.due_ns ? now - r.due_ns : 0);
	if (!k->first_ns)
		k->first_ns = now;
	uint64_t slot = (now - k->first_ns) / (RATE_MS * 1000000ull);
	k->rate[slot < RATE_SLOTS ? slot : RATE_SLOTS - 1]++;
	return 0;
}

static void say(const char *name, const struct bench_hist *h)
{
	printf(" %s %" PRIu64 " p50 %" PRIu64 " p99 %" PRIu64 " p99.9 %" PRIu64 " p99.99 %" PRIu64 " max %" PRIu64, name,
	       h->n, bench_hist_at(h, 0.5), bench_hist_at(h, 0.99), bench_hist_at(h, 0.999), bench_hist_at(h, 0.9999),
	       h->max);
}

static int sink_close(weir_ctx *ctx)
{
	struct sink *k = weir_ctx_state(ctx);
	if (!k)
		return 0;
	printf("latency");
	say("cross", &k->cross);
	say("same", &k->same);
	printf("\nlatency-hist cross");
	for (unsigned i = 0; i < BENCH_HIST_N; i++)
		if (k->cross.b[i])
			printf(" %" PRIu64 ":%" PRIu64, bench_hist_low(i), k->cross.b[i]);
	int last = RATE_SLOTS - 1;
	while (last > 0 && !k->rate[last])
		last--;
	printf("\nlatency-rate %d", RATE_MS);
	for (int i = 0; i <= last; i++)
		printf(" %u", k->rate[i]);
	printf("\n");
	fflush(stdout);
	free(k);
	weir_ctx_set_state(ctx, NULL);
	return 0;
}

int weir_job(weir_env *env, int argc, char **argv)
{
	char *e1, *e2;
	if (argc != 3 || !*argv[1] || !*argv[2] || argv[1][0] == '-' || argv[2][0] == '-')
		return weir_env_fail(env, "usage: latency.so -- COUNT RATE (RATE 0: as fast as it goes)");
	count = strtoull(argv[1], &e1, 10);
	rate = strtoull(argv[2], &e2, 10);
	if (*e1 || *e2)
		return weir_env_fail(env, "usage: latency.so -- COUNT RATE (RATE 0: as fast as it goes)");
	weir_stream *src = weir_source(env, "paced", src_poll, NULL);
	weir_on_open(src, src_open);
	weir_on_close(src, src_close);
	weir_stream *m1 = weir_map(src, "map-1", pass, NULL);
	weir_stream *m2 = weir_map(weir_key_by(m1, key_of, NULL), "map-2", pass, NULL);
	weir_stream *sink = weir_sink(m2, "latency", sink_add, NULL);
	weir_on_open(sink, sink_open);
	weir_on_close(sink, sink_close);
	return 0;
}
