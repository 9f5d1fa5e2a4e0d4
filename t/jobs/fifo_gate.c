/* A bounded job that holds itself open: its source (subtask 0) writes
 * "running" into the FIFO argv[1], then waits until a line can be read from
 * the FIFO argv[2] (the gate); then every source subtask emits its share of
 * 0 .. COUNT-1 (argv[3]) as "n N" lines, rebalanced to a file sink in argv[4].
 * For tests that need two jobs running at once (no sleeps). */
#include <weir/weir.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static const char *fifo, *gate;
static long count;
static long next[64];
static int opened[64];

static int src(weir_ctx *ctx)
{
	int me = weir_ctx_subtask(ctx), par = weir_ctx_parallelism(ctx);
	if (me >= 64)
		return weir_fail(ctx, "at most 64 subtasks");
	if (!opened[me]) {
		opened[me] = 1;
		next[me] = me;
		if (me == 0) {
			int fd = open(fifo, O_WRONLY);
			if (fd < 0 || write(fd, "running\n", 8) != 8)
				return weir_fail(ctx, "cannot write to %s", fifo);
			close(fd);
			char c;
			fd = open(gate, O_RDONLY);
			if (fd < 0 || read(fd, &c, 1) != 1)
				return weir_fail(ctx, "cannot read the gate %s", gate);
			close(fd);
		}
	}
	for (int k = 0; k < 64 && next[me] < count; k++, next[me] += par) {
		char line[32];
		int n = snprintf(line, sizeof(line), "n %ld", next[me]);
		if (weir_emit(ctx, line, (uint32_t)n) < 0)
			return -1;
	}
	return next[me] < count ? WEIR_SOURCE_MORE : WEIR_SOURCE_END;
}

int weir_job(weir_env *env, int argc, char **argv)
{
	if (argc != 5)
		return weir_env_fail(env, "usage: fifo_gate.so -- FIFO GATE COUNT OUTDIR");
	fifo = argv[1];
	gate = argv[2];
	count = strtol(argv[3], NULL, 10);
	weir_sink_file(weir_rebalance(weir_source(env, "gated", src, NULL)), argv[4]);
	return 0;
}
