/* An unbounded job that says it runs: its source writes "running" into the
 * FIFO argv[1] once (from subtask 0), then emits a sequence at 2000/s to a
 * file sink in argv[2]. For cancel and kill tests (no sleeps). */
#include <weir/weir.h>
#include <fcntl.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

static const char *fifo;
static int said[64];

static int src(weir_ctx *ctx)
{
	int me = weir_ctx_subtask(ctx);
	if (!said[me]) {
		said[me] = 1;
		if (me == 0) {
			int fd = open(fifo, O_WRONLY);
			if (fd >= 0) {
				if (write(fd, "running\n", 8) != 8)
					return weir_fail(ctx, "cannot write to %s", fifo);
				close(fd);
			}
		}
	}
	uint64_t now = weir_ctx_now_ns(ctx);
	weir_ctx_idle_until(ctx, now + 500000);
	return weir_emit(ctx, "tick", 4) < 0 ? -1 : WEIR_SOURCE_IDLE;
}

int weir_job(weir_env *env, int argc, char **argv)
{
	if (argc != 3)
		return weir_env_fail(env, "usage: fifo_ticker.so -- FIFO OUTDIR");
	fifo = argv[1];
	weir_sink_file(weir_rebalance(weir_source(env, "ticker", src, NULL)), argv[2]);
	return 0;
}
