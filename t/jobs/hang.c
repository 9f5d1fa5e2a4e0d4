/* A map that announces itself on stdout and then never returns: for the
 * second-signal test. */
#include <weir/weir.h>
#include <stdio.h>
#include <unistd.h>

static int hang(weir_ctx *ctx, const weir_rec *in)
{
	printf("blocked\n");
	fflush(stdout);
	for (;;)
		pause();
	return 0;
}

int weir_job(weir_env *env, int argc, char **argv)
{
	weir_sink_discard(weir_map(weir_source_sequence(env, 1, 0), "hang", hang, NULL));
	return 0;
}
