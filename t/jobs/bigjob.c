/* A job whose object is over 3 MiB (a table in .rodata), so that it is
 * uploaded and fetched in chunks: file source -> map that checks the
 * table's ends (the bytes arrived whole) -> file sink. */
#include <weir/weir.h>

#define TABLE (3u << 20)
static const unsigned char table[TABLE] = { [0] = 'w', [TABLE / 2] = 'e', [TABLE - 1] = 'r' };

static int check(weir_ctx *ctx, const weir_rec *in)
{
	const volatile unsigned char *t = table; /* read at run time, not folded */
	if (t[0] != 'w' || t[TABLE / 2] != 'e' || t[TABLE - 1] != 'r')
		return weir_fail(ctx, "the object's table is damaged");
	return weir_emit(ctx, in->data, in->len);
}

int weir_job(weir_env *env, int argc, char **argv)
{
	if (argc != 3)
		return weir_env_fail(env, "usage: bigjob.so -- INPUT OUTDIR");
	weir_sink_file(weir_map(weir_source_file(env, argv[1]), "check", check, NULL), argv[2]);
	return 0;
}
