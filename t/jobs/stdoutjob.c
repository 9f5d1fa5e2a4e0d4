/* sequence(COUNT) -> "line N xxx..." (N % 300 x's, so lines of many sizes)
 * -> stdout, for the test that parallel subtasks never break a line. */
#include <weir/weir.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int fmt(weir_ctx *ctx, const weir_rec *in)
{
	uint64_t n;
	memcpy(&n, in->data, 8);
	char line[400];
	int k = snprintf(line, sizeof(line), "line %llu ", (unsigned long long)n);
	memset(line + k, 'x', n % 300);
	return weir_emit(ctx, line, (uint32_t)(k + (int)(n % 300)));
}

int weir_job(weir_env *env, int argc, char **argv)
{
	if (argc != 2)
		return weir_env_fail(env, "usage: stdoutjob.so -- COUNT");
	weir_sink_stdout(weir_map(weir_rebalance(weir_source_sequence(env, atoll(argv[1]), 0)), "fmt", fmt, NULL));
	return 0;
}
