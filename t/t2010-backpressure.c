/* t2010-backpressure: pipelines whose writers run out of credit and of
 * pool segments in the middle of a record, on one worker and on several:
 * every record arrives and nothing hangs (the alarm turns a deadlock into
 * a failure). Regression for nested help stepping an upstream task, which
 * then waited under a task that had to consume its output. */
#include "tap.h"
#include "jobtest.h"
#include "runtime/run.h"
#include "base/err.h"

#include <string.h>
#include <unistd.h>

static uint64_t received, nrec = 20000, recsize = 1024, fanout = 20;
static uint64_t next_of[64];

static int src(weir_ctx *ctx)
{
	static _Alignas(8) uint8_t buf[1 << 16];
	uint64_t *next = &next_of[weir_ctx_subtask(ctx)];
	for (uint32_t b = weir_ctx_batch(ctx); b; b--) {
		if (*next >= nrec)
			return WEIR_SOURCE_END;
		(*next)++;
		if (weir_emit(ctx, buf, (uint32_t)recsize) < 0)
			return -1;
	}
	return WEIR_SOURCE_MORE;
}

static int copies(weir_ctx *ctx, const weir_rec *in)
{
	for (uint64_t k = 0; k < fanout; k++)
		if (weir_emit(ctx, in->data, in->len) < 0)
			return -1;
	return 0;
}

static int identity(weir_ctx *ctx, const weir_rec *in)
{
	return weir_emit(ctx, in->data, in->len);
}

static int count(weir_ctx *ctx, const weir_rec *in)
{
	__atomic_fetch_add(&received, 1, __ATOMIC_RELAXED);
	return 0;
}

/* Each source subtask sends n records of size bytes, the map copies each k times. */
static void reset(uint64_t n, uint64_t size, uint64_t k)
{
	nrec = n;
	recsize = size;
	fanout = k;
	received = 0;
	memset(next_of, 0, sizeof(next_of));
}

/* source(p) -> rebalance -> fan-out map -> rebalance -> sink */
static void run_fanout(const char *what, int p, uint64_t n, uint64_t size, uint64_t k)
{
	reset(n, size, k);
	weir_env *env = weir_env_create(p);
	weir_stream *s = weir_source(env, "P", src, NULL);
	s = k == 1 ? weir_map(weir_rebalance(s), "T", identity, NULL)
		   : weir_flat_map(weir_rebalance(s), "T", copies, NULL);
	weir_sink(weir_rebalance(s), "C", count, NULL);
	int rc = run(env);
	ok(rc == 0 && received == n * (uint64_t)p * k, "%s: %llu of %llu records (%s)", what,
	   (unsigned long long)received, (unsigned long long)(n * (uint64_t)p * k), rc ? weir_err_msg() : "ok");
}

int main(void)
{
	uint64_t seed = tap_seed(), rnd = seed;
	alarm(300);
	jobtest_config();

	cfg.workers = 1;
	run_fanout("one worker, 4 KiB records x20", 1, 2000, 4096, 20);
	run_fanout("one worker, p=3, 1 KiB records x50", 3, 500, 1024, 50);
	cfg.workers = 0;
	run_fanout("p=4, 64-byte records 1:1", 4, 200000, 64, 1);
	run_fanout("p=2, 4 KiB records x20", 2, 2000, 4096, 20);

	/* starved: 1 credit, almost no floating reserve, small segments */
	cfg.segment_size = 4096;
	cfg.credits = 1;
	cfg.floating = 2;
	run_fanout("starved pool, one worker, records of 3 segments", 1, 300, 10000, 5);
	cfg.workers = 2;
	run_fanout("starved pool, p=3 on 2 workers", 3, 3000, 700, 7);

	/* random shapes */
	int bad = 0;
	for (int i = 0; i < 20; i++) {
		jobtest_config();
		cfg.workers = 1 + (int)(tap_rand(&rnd) % 3);
		cfg.segment_size = 4096u << (tap_rand(&rnd) % 4);
		cfg.credits = 1 + (uint32_t)(tap_rand(&rnd) % 4);
		cfg.floating = (uint32_t)(tap_rand(&rnd) % 8);
		cfg.batch = 1 + (uint32_t)(tap_rand(&rnd) % 300);
		int p = 1 + (int)(tap_rand(&rnd) % 4);
		uint64_t size = 1 + tap_rand(&rnd) % 9000, k = 1 + tap_rand(&rnd) % 10, n = 1 + tap_rand(&rnd) % 3000;
		reset(n, size, k);
		weir_env *env = weir_env_create(p);
		weir_stream *s = weir_flat_map(weir_rebalance(weir_source(env, "P", src, NULL)), "T", copies, NULL);
		weir_sink(weir_set_parallelism(weir_rebalance(s), 1 + (int)(tap_rand(&rnd) % 3)), "C", count, NULL);
		int rc = run(env);
		if (rc != 0 || received != n * (uint64_t)p * k) {
			bad++;
			diag("shape %d: workers %d seg %u credits %u floating %u batch %u p %d size %llu k %llu n %llu: "
			     "%llu received, rc %d %s", i, cfg.workers, cfg.segment_size, cfg.credits, cfg.floating,
			     cfg.batch, p, (unsigned long long)size, (unsigned long long)k, (unsigned long long)n,
			     (unsigned long long)received, rc, rc ? weir_err_msg() : "");
		}
	}
	is_int(bad, 0, "20 random starved shapes deliver every record");
	done_testing();
}
