/* An unbounded sequence at 2000 records/s, as text lines, to stdout and to
 * a file sink (argv[1]): a job that only ends when cancelled. */
#include <weir/weir.h>
#include <stdio.h>
#include <string.h>

static int text(weir_ctx *ctx, const weir_rec *in)
{
	uint64_t v;
	memcpy(&v, in->data, 8);
	char line[32];
	int n = snprintf(line, sizeof(line), "tick %llu", (unsigned long long)v);
	return weir_emit(ctx, line, (uint32_t)n);
}

int weir_job(weir_env *env, int argc, char **argv)
{
	if (argc != 2)
		return weir_env_fail(env, "usage: ticker.so -- OUTDIR");
	weir_stream *s = weir_map(weir_source_sequence(env, -1, 2000), "text", text, NULL);
	weir_sink_stdout(s);
	weir_sink_file(s, argv[1]);
	return 0;
}
