/* file source -> map that fails on the line "poison" -> file sink. */
#include <weir/weir.h>
#include <string.h>

static int check(weir_ctx *ctx, const weir_rec *in)
{
	if (in->len == 6 && !memcmp(in->data, "poison", 6))
		return weir_fail(ctx, "found poison");
	return weir_emit(ctx, in->data, in->len);
}

int weir_job(weir_env *env, int argc, char **argv)
{
	if (argc != 3)
		return weir_env_fail(env, "usage: userfail.so -- INPUT OUTDIR");
	weir_sink_file(weir_map(weir_source_file(env, argv[1]), "check", check, NULL), argv[2]);
	return 0;
}
