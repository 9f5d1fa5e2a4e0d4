/*
 * engine/runtime/run.h - running a job: in this process (local mode), or
 * this TaskManager's part of it on a cluster.
 */
#ifndef WEIR_ENGINE_RUNTIME_RUN_H
#define WEIR_ENGINE_RUNTIME_RUN_H

#include "checkpoint/writer.h"
#include "task/task.h"

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
/* Async-signal-safe: cancel the job weir_run_local is running. */
void weir_local_cancel(void);

#endif
