/* Builds its graph in the client but refuses to on a TaskManager (whose
 * copy of the object lives in the run folder's objects-tm<N>/). */
#include <weir/weir.h>
#include <string.h>

static int id(weir_ctx *ctx, const weir_rec *in) { return weir_emit(ctx, in->data, in->len); }

int weir_job(weir_env *env, int argc, char **argv)
{
	if (strstr(argv[0], "/objects-tm"))
		return weir_env_fail(env, "this job refuses to run on a taskmanager");
	weir_sink_discard(weir_map(weir_source_sequence(env, 10, 0), "id", id, NULL));
	return 0;
}
