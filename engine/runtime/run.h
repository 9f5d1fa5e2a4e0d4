/*
 * engine/runtime/run.h - running a job: in this process (local mode), or
 * this TaskManager's part of it on a cluster.
 */
#ifndef WEIR_ENGINE_RUNTIME_RUN_H
#define WEIR_ENGINE_RUNTIME_RUN_H

#include "checkpoint/writer.h"
#include "task/task.h"
#include "metrics/metrics.h"

/*
 * Run env's graph in this process with cfg (local mode: with checkpoints,
 * restarted by the restart strategy from its latest checkpoint). Returns 0
 * when every subtask finished and every sink committed; -1 with the trail
 * set otherwise (failure or cancellation: weir_local_cancel, from any
 * thread or a signal handler, stops it). print_summary: a line per
 * operator on stderr at the end.
 */
int weir_run_local(weir_env *env, const struct weir_config *cfg, bool print_summary);
/* Run this TaskManager's part of a job; -1 with the trail when the job
 * failed here (or was aborted). */
int weir_run_dist(weir_env *env, const struct weir_config *cfg, struct weir_dist *d);
/* Any thread: stop the job running d now (its sinks abort). */
void weir_run_dist_cancel(const struct weir_dist *d);
/* Any thread: the JobManager's step for checkpoint id of the job running
 * d (checkpoint/coordinator.h; dir: where a trigger's files go). 0, or -1 when that job
 * is not running here (or runs without checkpoints). */
int weir_run_dist_checkpoint(const struct weir_dist *d, enum ck_step step, uint64_t id, const char *dir);
/* Any thread: a sample of each subtask of d's job that runs here (at most
 * max); the count (0 while the job is not running here). lat: NULL, or
 * room for max latency histograms (runtime/internal.h, weir_job_sample). */
int weir_run_dist_sample(const struct weir_dist *d, struct weir_task_sample *out, int max, uint64_t *lat);
/* Async-signal-safe: cancel the job weir_run_local is running. */
void weir_local_cancel(void);

/*
 * A job's code that misbehaves (runtime/crash.c, and the watchdog in
 * run.c). weir_guard_start, once a process is about to run a job's code
 * (weir local before weir_job, a TaskManager at its start), arranges that
 *  - a crash of any thread (SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT)
 *    writes one line, "killed by signal 11 (SIGSEGV) in operator 'NAME'
 *    (subtask i/P)" (or "outside any operator"), then the process dies of
 *    that signal as it would have;
 *  - exit() called before weir_guard_end writes "the job's code called
 *    exit(S) in operator ..." and ends the process with WEIR_EXIT_EXIT
 *    instead (a job that did not finish never exits 0);
 *  - a subtask that does not stop within cfg.cancel_timeout_ms of the
 *    job's stop (a cancel, a failure, an abort) gets a line naming its
 *    operator, and the process ends: weir local with the status of a
 *    cancelled job (130) or a failed one (1), a TaskManager with
 *    WEIR_EXIT_STUCK, so that its supervisor starts it again.
 * Each line goes to stderr after who (as_log_line: who is a daemon's role
 * and the line a log line with its time stamp), and, when note_path is
 * given, into that file as "PID MESSAGE" for the JobManager to quote. 0,
 * or -1 with the trail set.
 */
#define WEIR_EXIT_EXIT 3	/* the job's code called exit() while the job ran */
#define WEIR_EXIT_STUCK 4	/* a TaskManager: a subtask did not stop within the cancellation timeout */
int weir_guard_start(const char *who, bool as_log_line, const char *note_path);
/* From here on exit() ends the process as it always does. */
void weir_guard_end(void);

#endif
