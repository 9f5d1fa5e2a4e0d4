/* weir_job that refuses to build: with a message, or ("silent") without. */
#include <weir/weir.h>
#include <string.h>

int weir_job(weir_env *env, int argc, char **argv)
{
	if (argc > 1 && !strcmp(argv[1], "silent"))
		return -5;
	return weir_env_fail(env, "refusing to build: argument count %d", argc);
}
