/* A job whose user code misbehaves, as its first argument says, for the
 * tests of what the engine does then (t3500-misbehave):
 *
 *   misbehave.so -- MODE [FIFO]
 *
 * sequence (never ends) -> map "misbehave" -> discard. The map's last
 * subtask (subtask P/P), at its first record, first writes "MODE\n" into
 * FIFO when one is given (the test's sign that the job runs), then
 *   spin    loops forever (a cancel cannot stop it)
 *   failspin  creates the file FIFO instead of writing into it, then
 *           spins; subtask 1/P fails the job once the file exists (P >= 2):
 *           the job's stop cannot stop the spinner either
 *   exit    calls exit(0)
 *   segv    writes through a null pointer (SIGSEGV)
 *   abort   calls abort() (SIGABRT)
 * and the other subtasks pass their records on. MODE differ [ID]
 * builds another graph in TaskManager ID (default 1) than anywhere else
 * (the map gets parallelism 3 there), with a source of 1000 numbers
 * rebalanced to the map (channels between the TaskManagers): a job that depends
 * on more than its arguments. */
#include <weir/weir.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static const char *mode = "";
static const char *fifo;

static void announce(void)
{
	if (!fifo)
		return;
	int fd = open(fifo, O_WRONLY);
	if (fd < 0)
		return;
	char line[32];
	int n = snprintf(line, sizeof(line), "%s\n", mode);
	if (write(fd, line, (size_t)n) != n)
		n = -1;
	close(fd);
}

static int misbehave(weir_ctx *ctx, const weir_rec *in)
{
	static int done;
	/* failspin: the spinner's FIFO line is a file here, seen from any process */
	if (!strcmp(mode, "failspin") && weir_ctx_subtask(ctx) == 0 && fifo && access(fifo, F_OK) == 0)
		return weir_fail(ctx, "fails while subtask %d spins", weir_ctx_parallelism(ctx));
	if (weir_ctx_subtask(ctx) == weir_ctx_parallelism(ctx) - 1 && !done) {
		done = 1;
		if (!strcmp(mode, "failspin") && fifo)
			close(open(fifo, O_WRONLY | O_CREAT | O_CLOEXEC, 0600));
		else
			announce();
		if (!strcmp(mode, "spin") || !strcmp(mode, "failspin")) {
			for (volatile unsigned long n = 0;; n++)
				;
		} else if (!strcmp(mode, "exit")) {
			exit(0);
		} else if (!strcmp(mode, "segv")) {
			/* a page no one may touch: a real fault, which no
			 * sanitizer's check (a null pointer's) comes before */
			volatile int *nowhere = mmap(NULL, 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
			*nowhere = 1;
		} else if (!strcmp(mode, "abort")) {
			abort();
		}
	}
	return weir_emit(ctx, in->data, in->len);
}

/* Is this process TaskManager id? Its command line says "--id ID". */
static int taskmanager_is(const char *id)
{
	char buf[4096];
	int fd = open("/proc/self/cmdline", O_RDONLY);
	if (fd < 0)
		return 0;
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	int tm = 0;
	for (char *a = buf; a < buf + n; a += strlen(a) + 1) {
		if (!strcmp(a, "taskmanager"))
			tm = 1;
		if (tm && !strcmp(a, "--id") && a + 3 < buf + n && !strcmp(a + 5, id))
			return 1;
	}
	return 0;
}

int weir_job(weir_env *env, int argc, char **argv)
{
	if (argc < 2 || argc > 3)
		return weir_env_fail(env, "usage: misbehave.so -- spin|failspin|exit|segv|abort [FIFO], or differ [ID]");
	mode = argv[1];
	fifo = argc > 2 ? argv[2] : NULL;
	int differ = !strcmp(mode, "differ");
	weir_stream *s = weir_source_sequence(env, differ ? 1000 : -1, 0);
	if (differ) /* channels between the TaskManagers: each attaches the other's */
		s = weir_rebalance(s);
	s = weir_map(s, "misbehave", misbehave, NULL);
	if (differ && taskmanager_is(fifo ? fifo : "1"))
		s = weir_set_parallelism(s, 3);
	weir_sink_discard(s);
	return 0;
}
