/*
 * bench/ysb_job.c - the Yahoo Streaming Benchmark as a weir job (bench/ysb.h
 * says what it computes):
 *
 *   generator (a source of splits: checkpointed, rescalable) -> filter views
 *   -> join ad to campaign -> keyBy campaign -> 10 s tumbling event-time
 *   window: count and newest ts -> sink (one subtask)
 *
 *   weir local build/jobs/ysb.so -q -p P -- COUNT RATE CLOCK OUTPUT
 *
 * COUNT events in all (event v for v < COUNT, in YSB_SPLITS splits);
 * RATE events per second in all (0: as fast as it goes); CLOCK "wall" or
 * E, a synthetic clock of E events per second of event time (exact,
 * reproducible results: the tests; RATE still paces them); OUTPUT "print"
 * (a line per result: campaign, window start ms, count, newest ts),
 * "dir:FOLDER" (the same lines through the file sink: exactly once with
 * checkpoints) or "stats" (at the end one
 * line: "ysb results N checksum HEX latency_ns p50 P p99 P p99.9 P p99.99
 * P max M"; latency is the wall clock at the sink minus the newest event's
 * ts, with CLOCK wall only).
 */
#include <weir/connector.h>

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "splits.h"
#include "ysb.h"

struct ysb_args {
	uint64_t count;
	uint64_t rate; /* events/s, 0: unpaced */
	uint64_t eps;  /* synthetic clock: events per second of event time; 0: wall */
	int print;
	const char *dir; /* results as text lines into a file sink there */
};

/* weir_job builds the same graph each time, so a static is fine */
static struct ysb_args args;
static weir_window_spec window;

/* ---- the generator ---- */

static int gen_discover(weir_ctx *ctx)
{
	return gsplits_discover(ctx, "ysb", YSB_SPLITS);
}

static int gen_add(weir_ctx *ctx, weir_split *s, const void *pos, uint32_t len)
{
	return gsplits_add(ctx, s, pos, len, YSB_SPLITS);
}

static int gen_one(weir_ctx *ctx, weir_split *s, const struct gsplit *p, uint64_t v, uint64_t off, void *arg)
{
	/* when it was due (waiting counts), or unpaced the poll's one clock reading */
	uint64_t ts = args.rate ? p->wall0 + off : *(const uint64_t *)arg;
	if (args.eps)
		ts = ysb_synthetic_ts(v, args.eps);
	struct ysb_event e;
	ysb_make(v, ts, &e);
	return weir_emit_split(ctx, s, &e, sizeof(e), (int64_t)(ts / 1000000u));
}

static int gen_poll(weir_ctx *ctx)
{
	uint64_t now_wall = !args.eps && !args.rate ? ysb_wall_ns() : 0;
	return gsplits_poll(ctx, YSB_SPLITS, args.count, args.rate, gen_one, &now_wall);
}

/* ---- filter, join ---- */

static int is_view(weir_ctx *ctx, const weir_rec *in)
{
	(void)ctx;
	const struct ysb_event *e = (const struct ysb_event *)in->data;
	return in->len == sizeof(*e) && e->event_type == 0;
}

static int join_open(weir_ctx *ctx)
{
	struct ysb_table *t = malloc(sizeof(*t));
	if (!t)
		return weir_fail(ctx, "out of memory");
	ysb_table_load(t);
	weir_ctx_set_state(ctx, t);
	return 0;
}

static int join_close(weir_ctx *ctx)
{
	free(weir_ctx_state(ctx));
	weir_ctx_set_state(ctx, NULL);
	return 0;
}

static int join(weir_ctx *ctx, const weir_rec *in)
{
	struct ysb_event e;
	memcpy(&e, in->data, sizeof(e));
	int64_t c = ysb_table_find(weir_ctx_state(ctx), e.ad_id);
	if (c < 0)
		return 0;
	struct ysb_joined j = { .campaign = (uint64_t)c, .ts = e.ts };
	return weir_emit(ctx, &j, sizeof(j));
}

static int campaign_of(weir_ctx *ctx, const weir_rec *in, weir_key *key)
{
	(void)ctx;
	key->data = in->data; /* the first 8 bytes */
	key->len = sizeof(uint64_t);
	return 0;
}

/* ---- the window: count and newest ts ---- */

struct ysb_acc {
	uint64_t count;
	uint64_t newest;
};

static int acc_create(weir_ctx *ctx, void *acc)
{
	(void)ctx;
	memset(acc, 0, sizeof(struct ysb_acc));
	return 0;
}

static int acc_add(weir_ctx *ctx, void *acc, const weir_rec *in)
{
	(void)ctx;
	struct ysb_acc a;
	struct ysb_joined j;
	memcpy(&a, acc, sizeof(a));
	memcpy(&j, in->data, sizeof(j));
	a.count++;
	if (j.ts > a.newest)
		a.newest = j.ts;
	memcpy(acc, &a, sizeof(a));
	return 0;
}

static int acc_merge(weir_ctx *ctx, void *acc, const void *other)
{
	(void)ctx;
	struct ysb_acc a, b;
	memcpy(&a, acc, sizeof(a));
	memcpy(&b, other, sizeof(b));
	a.count += b.count;
	if (b.newest > a.newest)
		a.newest = b.newest;
	memcpy(acc, &a, sizeof(a));
	return 0;
}

static int acc_result(weir_ctx *ctx, const void *acc)
{
	struct ysb_acc a;
	struct ysb_result r;
	weir_key k;
	int64_t end;
	memcpy(&a, acc, sizeof(a));
	if (weir_ctx_key(ctx, &k) < 0 || k.len != sizeof(r.campaign) || weir_ctx_window(ctx, &r.start, &end) < 0)
		return weir_fail(ctx, "no key or window in the result function");
	memcpy(&r.campaign, k.data, sizeof(r.campaign));
	r.count = a.count;
	r.newest = a.newest;
	return weir_emit(ctx, &r, sizeof(r));
}

static const weir_aggregate counter = {
	.acc_size = sizeof(struct ysb_acc),
	.create = acc_create,
	.add = acc_add,
	.merge = acc_merge,
	.result = acc_result,
};

/* ---- the sink ---- */

struct stats {
	uint64_t results, x;
	struct bench_hist lat;
};

static int sink_open(weir_ctx *ctx)
{
	struct stats *s = calloc(1, sizeof(*s));
	if (!s)
		return weir_fail(ctx, "out of memory");
	weir_ctx_set_state(ctx, s);
	return 0;
}

static int sink_add(weir_ctx *ctx, const weir_rec *in)
{
	struct stats *s = weir_ctx_state(ctx);
	struct ysb_result r;
	if (in->len != sizeof(r))
		return weir_fail(ctx, "a result of %u bytes, expected %zu", in->len, sizeof(r));
	memcpy(&r, in->data, sizeof(r));
	if (!args.eps) {
		uint64_t now = ysb_wall_ns();
		bench_hist_add(&s->lat, now > r.newest ? now - r.newest : 0);
	}
	s->results++;
	s->x ^= ysb_result_hash(&r, args.eps != 0);
	if (args.print)
		printf("%" PRIu64 " %" PRId64 " %" PRIu64 " %" PRIu64 "\n", r.campaign, r.start, r.count, r.newest);
	return 0;
}

static int sink_close(weir_ctx *ctx)
{
	struct stats *s = weir_ctx_state(ctx);
	if (!s)
		return 0;
	if (!args.print && !weir_ctx_failing(ctx))
		printf("ysb results %" PRIu64 " checksum %016" PRIx64 " latency_ns p50 %" PRIu64 " p99 %" PRIu64
		       " p99.9 %" PRIu64 " p99.99 %" PRIu64 " max %" PRIu64 "\n",
		       s->results, s->x, bench_hist_at(&s->lat, 0.5), bench_hist_at(&s->lat, 0.99),
		       bench_hist_at(&s->lat, 0.999), bench_hist_at(&s->lat, 0.9999), s->lat.max);
	fflush(stdout);
	free(s);
	weir_ctx_set_state(ctx, NULL);
	return 0;
}

/* for the file sink: a result as a text line */
static int result_text(weir_ctx *ctx, const weir_rec *in)
{
	struct ysb_result r;
	if (in->len != sizeof(r))
		return weir_fail(ctx, "a result of %u bytes, expected %zu", in->len, sizeof(r));
	memcpy(&r, in->data, sizeof(r));
	char line[96];
	int n = snprintf(line, sizeof(line), "%" PRIu64 " %" PRId64 " %" PRIu64 " %" PRIu64, r.campaign, r.start,
			 r.count, r.newest);
	return weir_emit(ctx, line, (uint32_t)n);
}

static int num(const char *s, uint64_t *out)
{
	char *e;
	unsigned long long v = strtoull(s, &e, 10);
	if (!*s || *e || *s == '-')
		return -1;
	*out = v;
	return 0;
}

int weir_job(weir_env *env, int argc, char **argv)
{
	memset(&args, 0, sizeof(args));
	if (argc != 5 || num(argv[1], &args.count) < 0 || num(argv[2], &args.rate) < 0 ||
	    (strcmp(argv[3], "wall") && (num(argv[3], &args.eps) < 0 || !args.eps)) ||
	    (strcmp(argv[4], "print") && strcmp(argv[4], "stats") && strncmp(argv[4], "dir:", 4)))
		return weir_env_fail(env, "usage: ysb.so -- COUNT RATE wall|EVENTS_PER_S print|stats|dir:FOLDER "
				     "(RATE 0: unpaced; EVENTS_PER_S >= 1: a synthetic clock)");
	args.print = !strcmp(argv[4], "print");
	args.dir = !strncmp(argv[4], "dir:", 4) ? argv[4] + 4 : NULL;
	static const weir_source_impl gen = {
		.discover = gen_discover,
		.add_split = gen_add,
		.poll = gen_poll,
		.position = gsplits_position,
		.release = gsplits_release,
	};
	window = weir_tumbling(WEIR_EVENT_TIME, YSB_WINDOW_MS);
	weir_stream *events = weir_source_watermarks(weir_source_splits(env, "ysb-generator", &gen, NULL), 0, 0);
	weir_stream *views = weir_filter(events, "views", is_view, NULL);
	weir_stream *joined = weir_on_close(weir_on_open(weir_map(views, "join", join, NULL), join_open), join_close);
	weir_stream *counts =
		weir_window_aggregate(weir_key_by(joined, campaign_of, NULL), "campaign-counts", &window, &counter, NULL);
	if (args.dir) { /* exactly once with checkpoints (the tests' crashes) */
		weir_sink_file(weir_map(counts, "text", result_text, NULL), args.dir);
		return 0;
	}
	weir_stream *sink = weir_set_parallelism(weir_sink(counts, "ysb-sink", sink_add, NULL), 1);
	weir_on_open(sink, sink_open);
	weir_on_close(sink, sink_close);
	return 0;
}
