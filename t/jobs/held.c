/* A bounded job that holds itself open once its records are out: its
 * source emits 0 .. COUNT-1 (argv[1]; 1000 a poll), to a sink that counts
 * them, then waits (idle, polled every 10 ms) until the file argv[2]
 * exists, and ends. With argv[3], the sink writes "ready" into that file
 * once it has taken all COUNT. For tests that look at a job while it runs
 * (t3730's progress line, t3810's REST API), without sleeps. */
#include <weir/weir.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static const char *gate, *ready;
static long count;

static int src(weir_ctx *ctx)
{
	static long next; /* one source subtask (parallelism 1) */
	if (next < count) {
		for (int k = 0; k < 1000 && next < count; k++, next++) {
			int64_t v = next;
			if (weir_emit(ctx, &v, sizeof(v)) < 0)
				return -1;
		}
		return WEIR_SOURCE_MORE;
	}
	if (access(gate, F_OK) == 0)
		return WEIR_SOURCE_END;
	weir_ctx_idle_until(ctx, weir_ctx_now_ns(ctx) + 10000000);
	return WEIR_SOURCE_IDLE;
}

static int take(weir_ctx *ctx, const weir_rec *in)
{
	(void)in;
	static long taken; /* one sink subtask */
	if (++taken == count && ready) {
		FILE *f = fopen(ready, "w");
		if (!f || fputs("ready\n", f) < 0 || fclose(f) != 0)
			return weir_fail(ctx, "cannot write %s", ready);
	}
	return 0;
}

int weir_job(weir_env *env, int argc, char **argv)
{
	if (argc != 3 && argc != 4)
		return weir_env_fail(env, "usage: held.so -- COUNT GATEFILE [READYFILE]");
	count = strtol(argv[1], NULL, 10);
	gate = argv[2];
	ready = argc == 4 ? argv[3] : NULL;
	weir_stream *s = weir_source(env, "held", src, NULL);
	weir_set_parallelism(s, 1);
	weir_set_parallelism(weir_sink(weir_rebalance(s), "taken", take, NULL), 1);
	return 0;
}
