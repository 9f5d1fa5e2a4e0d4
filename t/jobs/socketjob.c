/* socketjob HOST PORT MAX_RETRY_S OUTDIR: lines from a TCP server
 * (weir_source_socket) into a file sink, as they came. */
#include <weir/weir.h>

#include <stdlib.h>

int weir_job(weir_env *env, int argc, char **argv)
{
	if (argc != 5)
		return weir_env_fail(env, "usage: socketjob HOST PORT MAX_RETRY_S OUTDIR");
	weir_sink_file(weir_source_socket(env, argv[1], (uint16_t)atoi(argv[2]), atoll(argv[3])), argv[4]);
	return 0;
}
