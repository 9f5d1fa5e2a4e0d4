/*
 * engine/cli/main.c - the `weir` command: its subcommands (local here, the
 * client commands in client.c, `weir cert` in cert.c, the daemons in
 * cluster/), `weir version` and `weir help`.
 *
 *   weir local JOB.so [options] [-- JOB ARGS...]   run a job in this process
 *   weir CMD --help (or -h)                        CMD's usage, on stdout
 *   weir help [CMD]                                every command's usage, or CMD's
 *
 * Exit status: 0 success; 1 the job failed (the line on stderr says why);
 * 2 bad usage; 3 the job's code called exit() (WEIR_EXIT_EXIT); 130
 * cancelled by SIGINT or SIGTERM (also when a subtask did not stop within
 * --cancel-timeout of the cancel); 128 + N the job's code crashed with
 * signal N (the line on stderr names it and the operator).
 */
#include "base/err.h"
#include "base/num.h"
#include "base/failpoint.h"
#include "base/log.h"
#include "cli/cli.h"
#include "cli/remote.h"
#include "cluster/config.h"
#include "cluster/daemons.h"
#include "graph/load.h"
#include "runtime/run.h"

#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define EXIT_JOB 1
#define EXIT_USAGE 2
#define EXIT_CANCEL 130

static const char local_usage[] = "usage: weir local JOB.so [options] [-- JOB ARGS...]\n";
static const char local_options[] =
	"options of weir local:\n"
	"  -p, --parallelism N     default operator parallelism (1)\n"
	"  --workers N             worker threads; default: one per CPU we may use\n"
	"  --no-pin                do not pin worker threads to cores\n"
	"  --segment-size BYTES    segment size, a power of two (32768; K and M suffixes)\n"
	"  --credits N             exclusive segments per channel (4)\n"
	"  --floating N            pool segments beyond the credits (64)\n"
	"  --buffer-timeout MS     longest a partly filled segment waits (100)\n"
	"  --latency-interval MS   latency tracking: each source subtask sends a marker\n"
	"                          this often, the sinks keep a histogram of how long\n"
	"                          markers took to reach them (0: off, the default)\n"
	"  --debloat-us N          buffer debloating: size segments so that a channel's\n"
	"                          credits hold about N us of its consumer's work (lower\n"
	"                          latency under load, a little less throughput; 0: off,\n"
	"                          the default)\n"
	"  --idle MODE             how a worker with nothing to do waits: sleep (spin,\n"
	"                          then sleep until work comes; the default), busy (never\n"
	"                          sleeps: lowest latency, a core per worker), yield, backoff\n"
	"  --spin-us N             busy-poll this long before sleeping or yielding (50)\n"
	"  --batch N               records per step (256)\n"
	"  --max-parallelism N     key groups (128)\n"
	"  --shm                   pool and channels in /dev/shm, as between processes\n"
	"                          (also WEIR_CHANNELS=shm)\n"
	"  --huge-pages            with --shm: transparent huge pages for the pool, when\n"
	"                          /dev/shm allows them (else a warning, normal pages)\n"
	"  --checkpoint-interval MS  take a checkpoint this often (none by default);\n"
	"                          file sinks then commit per checkpoint (exactly once)\n"
	"  --checkpoint-dir D      where the job's checkpoint folder goes (./checkpoints)\n"
	"  --checkpoint-timeout MS abort a checkpoint not complete by then (60000)\n"
	"  --checkpoint-min-pause MS  least time from one checkpoint's end to the next's start (0)\n"
	"  --checkpoint-retain N   complete checkpoints kept (3)\n"
	"  --at-least-once         barriers do not align inputs (records may repeat after a restore)\n"
	"  --unaligned             unaligned checkpoints: barriers overtake the records in\n"
	"                          flight, which go into the checkpoint (exactly once, and\n"
	"                          checkpoints complete under backpressure)\n"
	"  --from-checkpoint P     start from the newest good checkpoint in P (a job's\n"
	"                          checkpoint folder, or one chk-N folder in it)\n"
	"  --restart-attempts N    after a failure, restart from the latest checkpoint\n"
	"                          up to N times (3; with checkpoints only)\n"
	"  --restart-delay MS      wait before the first restart (100)\n"
	"  --restart-max-delay MS  exponential backoff: the delay doubles after each\n"
	"                          restart, up to this (0: a fixed delay)\n"
	"  --cancel-timeout MS     a subtask still running this long after a cancel or\n"
	"                          a failure ends the process, naming its operator\n"
	"                          (30000; 0: never)\n"
	"  --rest-port P           serve the job's REST API on 127.0.0.1:P while it runs\n"
	"  --metrics on|off        off: no busy/backpressured time nor gauges (measures their cost)\n"
	"                          (0: a free port; the address is printed on stderr)\n"
	"  -q, --quiet             no progress line and no job summary on stderr\n";
static const char daemons_usage[] =
	"usage: weir jobmanager ... / weir taskmanager ...   (run by weir cluster start; see their --help)\n";
static const char version_usage[] = "usage: weir version\n";
static const char help_usage[] = "usage: weir help [COMMAND]\n";

/* weir help: every command's usage texts, one under the other, then the
 * options of weir local. */
static void print_usage(FILE *f)
{
	static const char *const texts[] = {
		local_usage, weir_run_usage, weir_list_usage, weir_cancel_usage, weir_savepoint_usage,
		weir_stop_usage, weir_cluster_start_usage, weir_cluster_status_usage, weir_cluster_stop_usage,
		weir_cluster_dashboard_usage, weir_top_usage,
		weir_cluster_join_usage, weir_cluster_leave_usage, weir_cert_ca_usage, weir_cert_host_usage, daemons_usage, version_usage, help_usage,
	};
	weir_usage_print(f, texts, (int)(sizeof(texts) / sizeof(texts[0])));
	fprintf(f, "\n%s", local_options);
}

static volatile sig_atomic_t cancelled;

/* The first SIGINT/SIGTERM cancels the job cleanly (sinks abort, exit
 * 130); a second one, for a user function that never returns, exits at
 * once. */
static void on_signal(int sig)
{
	(void)sig;
	if (cancelled)
		_exit(EXIT_CANCEL);
	cancelled = 1;
	weir_local_cancel();
}

/* A usage error: one line naming it, and where the usage is. */
static int __attribute__((format(printf, 2, 3))) usage_error(const char *where, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fprintf(stderr, "weir: ");
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, "\n(%s shows the usage)\n", where);
	va_end(ap);
	return EXIT_USAGE;
}
#define LOCAL_HELP "weir local --help"

/* A whole number in [lo, hi] (base/num.h), or a message naming the option. */
static int parse_num(const char *opt, const char *s, long long lo, long long hi, bool sized, long long *out)
{
	if (weir_parse_num(s, lo, hi, sized, out) == 0)
		return 0;
	fprintf(stderr, "weir: %s: %s\n", opt, weir_err_msg());
	return -1;
}

/* weir local's command line: the job, its arguments and the engine's settings */
struct local_args {
	struct weir_config cfg;
	const char *job_path;
	int jargc;
	char **jargv;
};

/* Parse weir local's flags into *o. -1 to go on, else the exit status (0
 * after --help, 2 for bad usage, named on stderr). */
static int parse_local(int argc, char **argv, struct local_args *o)
{
	struct weir_config *c = &o->cfg;
	weir_config_defaults(c);
	o->job_path = NULL;
	o->jargc = 0;
	o->jargv = NULL;
	long long v;
	int r;
	for (int i = 0; i < argc; i++) {
		const char *a = argv[i];
		const char *val = i + 1 < argc ? argv[i + 1] : NULL;
#define NUM(lo, hi, sized) \
	do { \
		if (!val) \
			return usage_error(LOCAL_HELP, "%s needs a value", a); \
		if (parse_num(a, val, lo, hi, sized, &v) < 0) \
			return EXIT_USAGE; \
		i++; \
	} while (0)
		if (weir_help_flag(a)) {
			fputs(local_usage, stdout);
			fprintf(stdout, "\n%s", local_options);
			return 0;
		} else if (!strcmp(a, "--")) {
			o->jargc = argc - i - 1;
			o->jargv = argv + i + 1;
			break;
		} else if (!strcmp(a, "-p") || !strcmp(a, "--parallelism")) {
			NUM(1, 1024, false);
			c->parallelism = (int)v;
		} else if (!strcmp(a, "--workers")) {
			NUM(1, 1024, false);
			c->workers = (int)v;
		} else if (!strcmp(a, "--no-pin")) {
			c->pin = false;
		} else if (!strcmp(a, "--segment-size")) {
			NUM(4096, 64 << 20, true);
			if (v & (v - 1)) {
				fprintf(stderr, "weir: --segment-size: %lld is not a power of two\n", v);
				return EXIT_USAGE;
			}
			c->segment_size = (uint32_t)v;
		} else if (!strcmp(a, "--credits")) {
			NUM(1, 1024, false);
			c->credits = (uint32_t)v;
		} else if (!strcmp(a, "--floating")) {
			NUM(0, 1 << 20, false);
			c->floating = (uint32_t)v;
		} else if (!strcmp(a, "--buffer-timeout")) {
			NUM(0, 3600 * 1000, false);
			c->buffer_timeout_ns = (uint64_t)v * 1000000u;
		} else if ((r = weir_config_idle_option(c, argc, argv, &i)) != 0) {
			if (r < 0)
				return EXIT_USAGE;
		} else if (!strcmp(a, "--batch")) {
			NUM(1, 1 << 20, false);
			c->batch = (uint32_t)v;
		} else if (!strcmp(a, "--cancel-timeout")) {
			NUM(0, 24 * 3600 * 1000, false);
			c->cancel_timeout_ms = (uint32_t)v;
		} else if (!strcmp(a, "--max-parallelism")) {
			NUM(1, 32768, false);
			c->max_parallelism = (uint32_t)v;
		} else if ((r = weir_config_ck_option(c, argc, argv, &i, 1)) != 0) {
			if (r < 0)
				return EXIT_USAGE;
		} else if (!strcmp(a, "--shm")) {
			c->shm = true;
		} else if (!strcmp(a, "--huge-pages")) {
			c->huge_pages = true;
		} else if (!strcmp(a, "-q") || !strcmp(a, "--quiet")) {
			c->quiet = true;
		} else if (!strcmp(a, "--rest-port")) {
			NUM(0, 65535, false);
			c->rest_port = (int)v;
		} else if (!strcmp(a, "--metrics")) {
			const char *v2 = i + 1 < argc ? argv[++i] : "";
			if (strcmp(v2, "on") && strcmp(v2, "off"))
				return usage_error(LOCAL_HELP, "local: --metrics takes on or off, not '%s'", v2);
			c->no_metrics = !strcmp(v2, "off");
		} else if (a[0] == '-' && a[1]) {
			return usage_error(LOCAL_HELP, "local: unknown option '%s'", a);
		} else if (!o->job_path) {
			o->job_path = a;
		} else {
			return usage_error(LOCAL_HELP, "local: unexpected argument '%s' (job arguments go after --)", a);
		}
#undef NUM
	}
	if (!o->job_path)
		return usage_error(LOCAL_HELP, "local: no job given");
	if ((uint32_t)c->parallelism > c->max_parallelism) {
		fprintf(stderr, "weir: --parallelism %d exceeds --max-parallelism %u\n", c->parallelism,
			c->max_parallelism);
		return EXIT_USAGE;
	}
	return -1;
}

/* Load, build and run the job in this process. The exit status. */
static int run_local(struct local_args *o)
{
	const char *job_path = o->job_path;
	int jargc = o->jargc;
	char **jargv = o->jargv;
	struct weir_job_object obj;
	if (weir_job_load(&obj, job_path) < 0) {
		fprintf(stderr, "weir: %s\n", weir_err_msg());
		return EXIT_JOB;
	}
	/* The job sees its own path as argv[0], like a program. */
	char **args = calloc((size_t)jargc + 2, sizeof(char *));
	if (!args) {
		weir_job_unload(&obj);
		fprintf(stderr, "weir: out of memory\n");
		return EXIT_JOB;
	}
	args[0] = (char *)job_path;
	for (int i = 0; i < jargc; i++)
		args[i + 1] = jargv[i];
	/* from here until the job ended, a crash or an exit() in the job's
	 * code names its operator, and exit() does not end the process with
	 * the job's status (runtime/run.h) */
	char who[PATH_MAX + 32], esc[PATH_MAX];
	snprintf(who, sizeof(who), "weir: job '%s': ", weir_escape(esc, sizeof(esc), job_path));
	if (weir_guard_start(who, false, NULL) < 0)
		fprintf(stderr, "weir: %s (going on without)\n", weir_err_msg());
	weir_env *env = weir_job_build(&obj, o->cfg.parallelism, jargc + 1, args);
	int rc = 0;
	if (!env) {
		fprintf(stderr, "weir: job '%s': %s\n", job_path, weir_err_msg());
		rc = EXIT_JOB;
		goto out;
	}
	struct sigaction sa = { .sa_handler = on_signal };
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	if (weir_run_local(env, &o->cfg, true) < 0) {
		fprintf(stderr, "weir: job '%s': %s\n", job_path, weir_err_msg());
		rc = cancelled ? EXIT_CANCEL : EXIT_JOB;
	}
	weir_env_destroy(env);
out:
	weir_guard_end();
	free(args);
	weir_job_unload(&obj);
	return rc;
}

static int cmd_local(int argc, char **argv)
{
	static struct local_args o; /* one per process */
	int rc = parse_local(argc, argv, &o);
	return rc >= 0 ? rc : run_local(&o);
}

static int cmd_version(int argc, char **argv)
{
	if (argc > 0 && weir_help_flag(argv[0])) {
		fputs(version_usage, stdout);
		return 0;
	}
	if (argc > 0)
		return usage_error("weir help", "version: %s '%s'", argv[0][0] == '-' ? "unknown option" : "unexpected argument",
				   argv[0]);
	printf("weir 0.1.0 (API %d)\n", WEIR_API_VERSION);
	return 0;
}

static int cmd_help(int argc, char **argv);

static const struct {
	const char *name;
	int (*main)(int argc, char **argv);
} commands[] = {
	{ "local", cmd_local },
	{ "run", weir_run_main },
	{ "list", weir_list_main },
	{ "cancel", weir_cancel_main },
	{ "savepoint", weir_savepoint_main },
	{ "stop", weir_stop_main },
	{ "top", weir_top_main },
	{ "cluster", weir_cluster_main },
	{ "cert", weir_cert_main },
	{ "jobmanager", weir_jobmanager_main },
	{ "taskmanager", weir_taskmanager_main },
	{ "version", cmd_version },
	{ "--version", cmd_version },
	{ "help", cmd_help },
	{ "--help", cmd_help },
	{ "-h", cmd_help },
};

/* weir CMD ARGS...: CMD's main, or a usage error naming it */
static int dispatch(const char *cmd, int argc, char **argv)
{
	for (size_t k = 0; k < sizeof(commands) / sizeof(commands[0]); k++)
		if (!strcmp(cmd, commands[k].name))
			return commands[k].main(argc, argv);
	return usage_error("weir help", "unknown command '%s'", cmd);
}

/* weir help: the whole usage; weir help CMD [SUB]: weir CMD [SUB] --help */
static int cmd_help(int argc, char **argv)
{
	if (argc == 0) {
		print_usage(stdout);
		return 0;
	}
	if (weir_help_flag(argv[0])) {
		fputs(help_usage, stdout);
		return 0;
	}
	if (argc > 2)
		return usage_error("weir help", "help: unexpected argument '%s'", argv[2]);
	char *args[3] = { argc > 1 ? argv[1] : "--help", "--help", NULL };
	return dispatch(argv[0], argc, args);
}

__attribute__((visibility("default"))) int weir_cli_main(int argc, char **argv);

int weir_cli_main(int argc, char **argv)
{
	if (weir_failpoint_init() < 0) {
		fprintf(stderr, "weir: %s\n", weir_err_msg());
		return EXIT_USAGE;
	}
	if (argc < 2) {
		print_usage(stderr);
		return EXIT_USAGE;
	}
	return dispatch(argv[1], argc - 2, argv + 2);
}
