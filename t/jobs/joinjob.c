/* joinjob: two keyed streams joined, for the tests that compare a cluster's
 * output with local mode's (t3520: across hosts). Arguments: N OUT MODE.
 * Both inputs are the sequence 0..N-1 with event time n ms, keyed by
 * n % 7; MODE "interval" joins records of one key within 10 ms of each
 * other, "window" those in the same 20 ms tumbling window. Each pair is a
 * line "left right" in OUT (file sink). */
#include <weir/weir.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct ev {
	uint64_t key, n;
};

static int to_ev(weir_ctx *ctx, const weir_rec *in)
{
	struct ev e;
	memcpy(&e.n, in->data, 8);
	e.key = e.n % 7;
	return weir_emit(ctx, &e, sizeof(e));
}

static int by_key(weir_ctx *ctx, const weir_rec *in, weir_key *key)
{
	(void)ctx;
	key->data = in->data;
	key->len = 8;
	return 0;
}

static int pair(weir_ctx *ctx, const weir_rec *l, const weir_rec *r)
{
	char line[64];
	int n = snprintf(line, sizeof(line), "%lld %lld", (long long)l->ts, (long long)r->ts);
	return weir_emit(ctx, line, (uint32_t)n);
}

int weir_job(weir_env *env, int argc, char **argv)
{
	if (argc != 4)
		return weir_env_fail(env, "usage: joinjob.so N OUT interval|window");
	long long n = strtoll(argv[1], NULL, 10);
	weir_stream *a = weir_assign_timestamps(weir_source_sequence(env, n, 0), NULL, 0, 0);
	weir_stream *b = weir_assign_timestamps(weir_source_sequence(env, n, 0), NULL, 0, 0);
	a = weir_key_by(weir_map(a, "left", to_ev, NULL), by_key, NULL);
	b = weir_key_by(weir_map(b, "right", to_ev, NULL), by_key, NULL);
	weir_stream *j;
	if (!strcmp(argv[3], "interval")) {
		j = weir_interval_join(a, b, "near", -10, 10, pair, NULL);
	} else {
		weir_window_spec w = weir_tumbling(WEIR_EVENT_TIME, 20);
		j = weir_window_join(a, b, "same-window", &w, pair, NULL);
	}
	weir_sink_file(j, argv[2]);
	return 0;
}
