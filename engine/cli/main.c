/*
 * engine/main.c - the `weir` command.
 *
 *   weir local JOB.so [options] [-- JOB ARGS...]   run a job in this process
 *   weir version
 *   weir help
 *
 * Exit status: 0 success; 1 the job failed (the line on stderr says why);
 * 2 bad usage; 130 cancelled by SIGINT or SIGTERM.
 */
#include "base/err.h"
#include "base/num.h"
#include "base/failpoint.h"
#include "cluster/config.h"
#include "graph/load.h"
#include "runtime/run.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define EXIT_JOB 1
#define EXIT_USAGE 2
#define EXIT_CANCEL 130

int weir_cluster_main(int argc, char **argv);
int weir_jobmanager_main(int argc, char **argv);
int weir_taskmanager_main(int argc, char **argv);
int weir_run_main(int argc, char **argv);
int weir_list_main(int argc, char **argv);
int weir_cancel_main(int argc, char **argv);
int weir_savepoint_main(int argc, char **argv);
int weir_stop_main(int argc, char **argv);

static const char usage[] =
	"usage: weir local JOB.so [options] [-- JOB ARGS...]\n"
	"       weir run JOB.so [-p N] [--spread] [--detached] [--run-dir D]\n"
	"                [checkpoint options as for weir local] [--from-savepoint DIR] [-- JOB ARGS...]\n"
	"       weir list [--run-dir D]\n"
	"       weir cancel JOBID [--run-dir D]\n"
	"       weir savepoint JOBID [DIR] [--run-dir D]     (DIR: ./savepoints)\n"
	"       weir stop JOBID --savepoint DIR [--run-dir D]\n"
	"       weir cluster start [--config FILE] [--taskmanagers N] [--slots S] [--port P] [--run-dir D]\n"
	"                          [--slot-wait MS] [--log-level L]\n"
	"       weir cluster status [--wait N] [--run-dir D]\n"
	"       weir cluster stop [--run-dir D]\n"
	"       weir jobmanager ... / weir taskmanager ...   (started by weir cluster start)\n"
	"       weir version\n"
	"       weir help\n"
	"\n"
	"options of weir local:\n"
	"  -p, --parallelism N     default operator parallelism (1)\n"
	"  --workers N             worker threads; default: one per CPU we may use\n"
	"  --no-pin                do not pin worker threads to cores\n"
	"  --segment-size BYTES    segment size, a power of two (32768; K and M suffixes)\n"
	"  --credits N             exclusive segments per channel (4)\n"
	"  --floating N            pool segments beyond the credits (64)\n"
	"  --buffer-timeout MS     longest a partly filled segment waits (100)\n"
	"  --spin-us N             busy-poll this long before a worker sleeps (50)\n"
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
	"  -q, --quiet             no job summary on stderr\n";

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

static int usage_error(const char *fmt, const char *a, const char *b)
{
	fprintf(stderr, "weir: ");
	fprintf(stderr, fmt, a, b);
	fprintf(stderr, "\n(weir help shows the usage)\n");
	return EXIT_USAGE;
}

/* A whole number in [lo, hi] (base/num.h), or a message naming the option. */
static int parse_num(const char *opt, const char *s, long long lo, long long hi, bool sized, long long *out)
{
	if (weir_parse_num(s, lo, hi, sized, out) == 0)
		return 0;
	fprintf(stderr, "weir: %s: %s\n", opt, weir_err_msg());
	return -1;
}

static int cmd_local(int argc, char **argv)
{
	struct weir_config cfg;
	weir_config_defaults(&cfg);
	const char *job_path = NULL;
	int jargc = 0;
	char **jargv = NULL;
	long long v;
	int r;
	for (int i = 0; i < argc; i++) {
		const char *a = argv[i];
		const char *val = i + 1 < argc ? argv[i + 1] : NULL;
#define NUM(lo, hi, sized) \
	do { \
		if (!val) \
			return usage_error("%s needs a value%s", a, ""); \
		if (parse_num(a, val, lo, hi, sized, &v) < 0) \
			return EXIT_USAGE; \
		i++; \
	} while (0)
		if (!strcmp(a, "--")) {
			jargc = argc - i - 1;
			jargv = argv + i + 1;
			break;
		} else if (!strcmp(a, "-p") || !strcmp(a, "--parallelism")) {
			NUM(1, 1024, false);
			cfg.parallelism = (int)v;
		} else if (!strcmp(a, "--workers")) {
			NUM(1, 1024, false);
			cfg.workers = (int)v;
		} else if (!strcmp(a, "--no-pin")) {
			cfg.pin = false;
		} else if (!strcmp(a, "--segment-size")) {
			NUM(4096, 64 << 20, true);
			if (v & (v - 1)) {
				fprintf(stderr, "weir: --segment-size: %lld is not a power of two\n", v);
				return EXIT_USAGE;
			}
			cfg.segment_size = (uint32_t)v;
		} else if (!strcmp(a, "--credits")) {
			NUM(1, 1024, false);
			cfg.credits = (uint32_t)v;
		} else if (!strcmp(a, "--floating")) {
			NUM(0, 1 << 20, false);
			cfg.floating = (uint32_t)v;
		} else if (!strcmp(a, "--buffer-timeout")) {
			NUM(0, 3600 * 1000, false);
			cfg.buffer_timeout_ns = (uint64_t)v * 1000000u;
		} else if (!strcmp(a, "--spin-us")) {
			NUM(0, 10 * 1000 * 1000, false);
			cfg.spin_ns = (uint64_t)v * 1000u;
		} else if (!strcmp(a, "--batch")) {
			NUM(1, 1 << 20, false);
			cfg.batch = (uint32_t)v;
		} else if (!strcmp(a, "--max-parallelism")) {
			NUM(1, 32768, false);
			cfg.max_parallelism = (uint32_t)v;
		} else if ((r = weir_config_ck_option(&cfg, argc, argv, &i, 1)) != 0) {
			if (r < 0)
				return EXIT_USAGE;
		} else if (!strcmp(a, "--shm")) {
			cfg.shm = true;
		} else if (!strcmp(a, "--huge-pages")) {
			cfg.huge_pages = true;
		} else if (!strcmp(a, "-q") || !strcmp(a, "--quiet")) {
			cfg.quiet = true;
		} else if (a[0] == '-' && a[1]) {
			return usage_error("local: unknown option '%s'%s", a, "");
		} else if (!job_path) {
			job_path = a;
		} else {
			return usage_error("local: unexpected argument '%s' (job arguments go after --)%s", a, "");
		}
#undef NUM
	}
	if (!job_path)
		return usage_error("local: no job given%s%s", "", "");
	if ((uint32_t)cfg.parallelism > cfg.max_parallelism) {
		fprintf(stderr, "weir: --parallelism %d exceeds --max-parallelism %u\n", cfg.parallelism,
			cfg.max_parallelism);
		return EXIT_USAGE;
	}

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
	weir_env *env = weir_job_build(&obj, cfg.parallelism, jargc + 1, args);
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
	if (weir_run_local(env, &cfg, true) < 0) {
		fprintf(stderr, "weir: job '%s': %s\n", job_path, weir_err_msg());
		rc = cancelled ? EXIT_CANCEL : EXIT_JOB;
	}
	weir_env_destroy(env);
out:
	free(args);
	weir_job_unload(&obj);
	return rc;
}

__attribute__((visibility("default"))) int weir_cli_main(int argc, char **argv);

int weir_cli_main(int argc, char **argv)
{
	if (weir_failpoint_init() < 0) {
		fprintf(stderr, "weir: %s\n", weir_err_msg());
		return EXIT_USAGE;
	}
	if (argc < 2) {
		fputs(usage, stderr);
		return EXIT_USAGE;
	}
	const char *cmd = argv[1];
	if (!strcmp(cmd, "local"))
		return cmd_local(argc - 2, argv + 2);
	if (!strcmp(cmd, "cluster"))
		return weir_cluster_main(argc - 2, argv + 2);
	if (!strcmp(cmd, "run"))
		return weir_run_main(argc - 2, argv + 2);
	if (!strcmp(cmd, "list"))
		return weir_list_main(argc - 2, argv + 2);
	if (!strcmp(cmd, "savepoint"))
		return weir_savepoint_main(argc - 2, argv + 2);
	if (!strcmp(cmd, "stop"))
		return weir_stop_main(argc - 2, argv + 2);
	if (!strcmp(cmd, "cancel"))
		return weir_cancel_main(argc - 2, argv + 2);
	if (!strcmp(cmd, "jobmanager"))
		return weir_jobmanager_main(argc - 2, argv + 2);
	if (!strcmp(cmd, "taskmanager"))
		return weir_taskmanager_main(argc - 2, argv + 2);
	if (!strcmp(cmd, "version") || !strcmp(cmd, "--version")) {
		printf("weir 0.1.0 (API %d)\n", WEIR_API_VERSION);
		return 0;
	}
	if (!strcmp(cmd, "help") || !strcmp(cmd, "--help") || !strcmp(cmd, "-h")) {
		fputs(usage, stdout);
		return 0;
	}
	return usage_error("unknown command '%s'%s", cmd, "");
}
