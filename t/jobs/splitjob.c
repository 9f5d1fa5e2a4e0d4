/* A source of the test's own on the connector API (weir/connector.h):
 * NPART partitions as splits, each the numbers j = 0 .. COUNT-1, read at
 * RATE records per second per subtask, the position of a split being its
 * next j. Event time j * (k + 1) for partition k, so the partitions move
 * through event time at different speeds: a watermark over all of them
 * would rush the slow ones (their records late), per split it does not.
 *
 *   splitjob NPART COUNT RATE OUTDIR [EXTRA_AT [GLOBAL_WM]]
 *
 *   partitions -> "p K J"                        -> OUTDIR/records
 *              -> keyBy K -> tumbling 50 (event)  -> "w K START COUNT" -> OUTDIR/windows
 *                         late records            -> "late K J"        -> OUTDIR/late
 *
 * EXTRA_AT > 0: one more split, "extra" (partition NPART), is found from a
 * subtask's EXTRA_AT-th discovery on (every 5 ms): a split that appears
 * while the job runs. Its event time starts at 100000, ahead of the
 * others: the watermark never goes back, so a split found later whose
 * records are older than it would have them late (as in Flink). GLOBAL_WM 1: watermarks from weir_assign_timestamps
 * over the whole stream instead of per split (the contrast: late records).
 *
 * Without faults the records are every (K, J) once, the windows the batch
 * counts, and nothing is late. */
#include <weir/connector.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct conf {
	int npart;
	int64_t count;
	double rate;
	int extra_at;
};

struct reader {		/* per subtask */
	uint64_t start_ns, emitted;
	int discoveries;
	int next;		/* round robin over the splits held */
};

struct part {		/* per split */
	int k;
	int64_t j;		/* next */
};

static int src_open(weir_ctx *ctx)
{
	struct reader *r = calloc(1, sizeof(*r));
	if (!r)
		return weir_fail(ctx, "out of memory");
	r->start_ns = weir_ctx_now_ns(ctx);
	weir_ctx_set_state(ctx, r);
	return 0;
}

static void src_release(weir_ctx *ctx)
{
	weir_split **v;
	int n = weir_splits_held(ctx, &v);
	for (int i = 0; i < n; i++)
		free(weir_split_data(v[i]));
	free(weir_ctx_state(ctx));
	weir_ctx_set_state(ctx, NULL);
}

static int src_discover(weir_ctx *ctx)
{
	const struct conf *c = weir_ctx_arg(ctx);
	struct reader *r = weir_ctx_state(ctx);
	r->discoveries++;
	char id[32];
	for (int k = 0; k < c->npart; k++) {
		snprintf(id, sizeof(id), "p%d", k);
		if (weir_split_found(ctx, id, k, &k, sizeof(k)) < 0)
			return -1;
	}
	int k = c->npart;
	if (c->extra_at > 0 && r->discoveries >= c->extra_at && weir_split_found(ctx, "extra", k, &k, sizeof(k)) < 0)
		return -1;
	return 0;
}

static int src_add(weir_ctx *ctx, weir_split *s, const void *pos, uint32_t len)
{
	struct part *p = calloc(1, sizeof(*p));
	if (!p)
		return weir_fail(ctx, "out of memory");
	uint32_t dl;
	memcpy(&p->k, weir_split_desc(s, &dl), sizeof(p->k));
	if (pos) {
		if (len != 8)
			return weir_fail(ctx, "split %s: a position of %u bytes", weir_split_id(s), len);
		memcpy(&p->j, pos, 8);
	}
	weir_split_set_data(s, p);
	return 0;
}

static int src_position(weir_ctx *ctx, weir_split *s, void *pos, uint32_t cap)
{
	(void)ctx, (void)cap;
	const struct part *p = weir_split_data(s);
	memcpy(pos, &p->j, 8);
	return 8;
}

/* event time of record j of partition k */
static int64_t ts_of(const struct conf *c, int k, int64_t j) { return j * (k + 1) + (k == c->npart ? 100000 : 0); }

static int src_poll(weir_ctx *ctx)
{
	const struct conf *c = weir_ctx_arg(ctx);
	struct reader *r = weir_ctx_state(ctx);
	weir_split **v;
	int n = weir_splits_held(ctx, &v);
	if (c->extra_at && r->discoveries >= c->extra_at) {
		/* every split there will be was found: done once ours are */
		bool all = true;
		for (int i = 0; i < n; i++) {
			const struct part *p = weir_split_data(v[i]);
			all &= !p || p->j >= c->count;
		}
		if (all)
			return WEIR_SOURCE_END;
	}
	uint64_t budget = weir_ctx_batch(ctx);
	double per_ns = c->rate / 1e9;
	uint64_t now = weir_ctx_now_ns(ctx);
	uint64_t due = (uint64_t)((double)(now - r->start_ns) * per_ns) + 1;
	if (r->emitted >= due) {
		weir_ctx_idle_until(ctx, r->start_ns + (uint64_t)((double)r->emitted / per_ns));
		return WEIR_SOURCE_IDLE;
	}
	if (due - r->emitted < budget)
		budget = due - r->emitted;
	for (int tries = 0; budget && tries < n; tries++) {
		weir_split *s = v[r->next++ % n];
		struct part *p = weir_split_data(s);
		if (!p || p->j >= c->count) {
			if (p)
				weir_split_finished(ctx, s);
			continue;
		}
		tries = -1; /* it had one: go round again */
		int64_t rec[3] = { p->k, p->j, ts_of(c, p->k, p->j) };
		if (weir_emit_split(ctx, s, rec, sizeof(rec), rec[2]) < 0)
			return -1;
		p->j++;
		r->emitted++;
		budget--;
	}
	return WEIR_SOURCE_MORE;
}

/* records: {k, j, event time} */
static int64_t rec_ts(weir_ctx *ctx, const weir_rec *in)
{
	(void)ctx;
	int64_t rec[3];
	memcpy(rec, in->data, sizeof(rec));
	return rec[2];
}

static int fmt_record(weir_ctx *ctx, const weir_rec *in)
{
	int64_t rec[2];
	memcpy(rec, in->data, sizeof(rec));
	char line[64];
	int n = snprintf(line, sizeof(line), "p %lld %lld", (long long)rec[0], (long long)rec[1]);
	return weir_emit(ctx, line, (uint32_t)n);
}

static int fmt_late(weir_ctx *ctx, const weir_rec *in)
{
	int64_t rec[2];
	memcpy(rec, in->data, sizeof(rec));
	char line[64];
	int n = snprintf(line, sizeof(line), "late %lld %lld", (long long)rec[0], (long long)rec[1]);
	return weir_emit(ctx, line, (uint32_t)n);
}

static __thread int64_t keybuf;

static int key_part(weir_ctx *ctx, const weir_rec *in, weir_key *key)
{
	(void)ctx;
	memcpy(&keybuf, in->data, 8);
	key->data = &keybuf;
	key->len = 8;
	return 0;
}

static int count_create(weir_ctx *ctx, void *acc)
{
	(void)ctx;
	memset(acc, 0, 8);
	return 0;
}

static int count_add(weir_ctx *ctx, void *acc, const weir_rec *in)
{
	(void)ctx, (void)in;
	int64_t c;
	memcpy(&c, acc, 8);
	c++;
	memcpy(acc, &c, 8);
	return 0;
}

static int count_result(weir_ctx *ctx, const void *acc)
{
	int64_t start, end, c;
	weir_key key;
	weir_ctx_window(ctx, &start, &end);
	weir_ctx_key(ctx, &key);
	int64_t k;
	memcpy(&k, key.data, 8);
	memcpy(&c, acc, 8);
	char line[96];
	int n = snprintf(line, sizeof(line), "w %lld %lld %lld", (long long)k, (long long)start, (long long)c);
	return weir_emit(ctx, line, (uint32_t)n);
}

static const weir_source_impl parts_impl = {
	.open = src_open,
	.discover = src_discover,
	.add_split = src_add,
	.poll = src_poll,
	.position = src_position,
	.release = src_release,
	.free_arg = free,
	.discover_ms = 5,
};

int weir_job(weir_env *env, int argc, char **argv)
{
	if (argc < 5)
		return weir_env_fail(env, "usage: splitjob NPART COUNT RATE OUTDIR [EXTRA_AT [GLOBAL_WM]]");
	struct conf *c = calloc(1, sizeof(*c));
	if (!c)
		return weir_env_fail(env, "out of memory");
	c->npart = atoi(argv[1]);
	c->count = atoll(argv[2]);
	c->rate = atof(argv[3]);
	c->extra_at = argc > 5 ? atoi(argv[5]) : 0;
	bool global = argc > 6 && atoi(argv[6]) == 1;
	if (c->npart < 1 || c->count < 1 || c->rate <= 0) {
		free(c);
		return weir_env_fail(env, "splitjob: NPART, COUNT and RATE must be positive");
	}
	weir_source_impl impl = parts_impl;
	if (!c->extra_at)
		impl.discover_ms = 0; /* a fixed set: the source ends with its splits */
	weir_stream *src = weir_source_splits(env, "partitions", &impl, c);
	if (global)
		src = weir_assign_timestamps(src, rec_ts, 0, 0);
	else
		src = weir_source_watermarks(src, 0, 0);
	char dir[4096];
	snprintf(dir, sizeof(dir), "%s/records", argv[4]);
	weir_sink_file(weir_map(src, "fmt-record", fmt_record, NULL), dir);
	weir_window_spec w = weir_tumbling(WEIR_EVENT_TIME, 50);
	static const weir_aggregate count = { .acc_size = 8, .create = count_create, .add = count_add,
					      .result = count_result };
	weir_stream *win = weir_window_aggregate(weir_key_by(src, key_part, NULL), "count", &w, &count, NULL);
	snprintf(dir, sizeof(dir), "%s/windows", argv[4]);
	weir_sink_file(win, dir);
	snprintf(dir, sizeof(dir), "%s/late", argv[4]);
	weir_sink_file(weir_map(weir_late_records(win), "fmt-late", fmt_late, NULL), dir);
	return 0;
}
