/* A file source that pauses part way: source_file(argv[1]) -> a map that,
 * at its first record, writes "running" into the FIFO argv[2] and waits
 * for a line from the FIFO argv[3] (the gate) -> a file sink in argv[4].
 * The map runs in the source's chain, so the source has read at most a
 * buffer (1 MiB) of a larger file when the test, told "running", changes
 * the file and opens the gate. For the truncated-input tests (no sleeps). */
#include <weir/weir.h>
#include <fcntl.h>
#include <unistd.h>

static const char *fifo, *gate;
static int waited;

static int pass(weir_ctx *ctx, const weir_rec *in)
{
	if (!waited) {
		waited = 1;
		char c;
		int fd = open(fifo, O_WRONLY);
		if (fd < 0 || write(fd, "running\n", 8) != 8)
			return weir_fail(ctx, "cannot write to %s", fifo);
		close(fd);
		fd = open(gate, O_RDONLY);
		if (fd < 0 || read(fd, &c, 1) != 1)
			return weir_fail(ctx, "cannot read the gate %s", gate);
		close(fd);
	}
	return weir_emit(ctx, in->data, in->len);
}

int weir_job(weir_env *env, int argc, char **argv)
{
	if (argc != 5)
		return weir_env_fail(env, "usage: trunc_gate.so -- INPUT FIFO GATE OUTDIR");
	fifo = argv[2];
	gate = argv[3];
	weir_sink_file(weir_map(weir_source_file(env, argv[1]), "gate", pass, NULL), argv[4]);
	return 0;
}
