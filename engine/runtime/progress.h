/*
 * engine/runtime/progress.h - a running job's progress line on a terminal.
 *
 * While a job runs in this process (weir local), a thread redraws one line
 * on stderr about once a second, in place:
 *
 *   weir: 12 s | in 1,234,567 (102,345/s) | out 1,234 (98/s) | busy 87%, backpressured 2% | checkpoint 5, 0.4 s ago
 *
 * in: records the sources emitted; out: records the sinks took; rates over
 * the last interval; busy and backpressured: the subtasks' share of the
 * wall clock over it (sched/worker.h); the newest complete checkpoint.
 * Only when both stdout and stderr are terminals, the run is not quiet and
 * the job prints nothing to stdout itself (weir_sink_stdout): a pipe or a
 * file never sees it. It reads the workers' counters with
 * relaxed loads and costs them nothing.
 */
#ifndef WEIR_ENGINE_RUNTIME_PROGRESS_H
#define WEIR_ENGINE_RUNTIME_PROGRESS_H

#include <stdbool.h>

struct job;
struct progress;

/* Start the line for job (deployed, about to run), or NULL when it is not
 * wanted (quiet, not a terminal) or cannot start (no thread: no line). */
struct progress *weir_progress_start(struct job *job, bool quiet);
/* Stop and erase the line: before job's checkpoints stop. NULL is fine. */
void weir_progress_stop(struct progress *p);

#endif
