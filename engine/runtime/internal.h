/*
 * engine/runtime/internal.h - private to runtime/: what its files share.
 * step.c runs subtasks, deploy.c makes and unmakes them, run.c and
 * local.c run jobs.
 */
#ifndef WEIR_ENGINE_RUNTIME_INTERNAL_H
#define WEIR_ENGINE_RUNTIME_INTERNAL_H

#include "task/task.h"
#include "metrics/metrics.h"

/* Where a channel's ends are, in a cluster. */
enum chan_side {
	CS_NONE = 0,		/* neither end here */
	CS_LOCAL,		/* both ends here (in /dev/shm all the same: the pool is) */
	CS_OUT,			/* producer here: created in /dev/shm */
	CS_IN,			/* consumer here: attached after `prepared` */
	CS_NET_OUT,		/* producer here, consumer on another host: its half goes to the exchange */
	CS_NET_IN,		/* consumer here, producer on another host: the exchange fills its half */
};

struct link {
	int producer;	/* vertex */
	int consumer;	/* vertex */
	int input;	/* index among the consumer head's inputs */
	enum part_kind part;
	int base;	/* first channel */
};

static inline int chan_index(const struct link *l, int pc, int i, int j)
{
	return l->base + (l->part == PART_FORWARD ? j : i * pc + j);
}

static inline struct subtask *subtask_of(struct job *job, int vertex, int index)
{
	int off = 0;
	for (int v = 0; v < vertex; v++)
		off += job->plan.v[v].parallelism;
	return &job->subtasks[off + index];
}

/* step.c: a subtask's step (its sched task), and what its writers do
 * when they run out of credit (help other tasks of the worker, or wait). */
enum weir_step weir_subtask_step(struct weir_task *t);
int weir_subtask_wait_segment(struct weir_writer *w, void *arg);
void weir_subtask_waited(struct weir_writer *w, void *arg);

/* deploy.c. Make the job's subtasks, channels and pool; links: the edges
 * between vertices (the caller frees them, also on failure). 0 or -1. */
int weir_deploy(struct job *job, struct link **links_out, int *nlinks_out);
/* dist: attach the channels other TaskManagers made (after `prepared`). */
int weir_attach_remote(struct job *job, const struct link *links, int nlinks);
/* Teardown, in this order: close the chains, return every segment (the
 * count of missing ones), commit (success) or abort the sinks (false when
 * a commit failed), free the rest. */
void weir_close_all(struct job *job);
/* dist, after the decision: let go of the channels this TaskManager reads
 * from others, then wait (at most timeout_ns) until the consumers of ours
 * on other TaskManagers let go of theirs: until then they may read
 * segments of our share, which must not go back to the TaskManager's pool
 * (another job would reuse them). false when one did not let go in time:
 * then weir_release_rest abandons the share (job->keep_share). */
bool weir_release_remote(struct job *job, uint64_t timeout_ns);
int weir_release_data(struct job *job);
bool weir_finish_sinks(struct job *job, bool success);
void weir_release_rest(struct job *job);

/* sample.c: a sample of each of the job's subtasks that run here (at most
 * max), tm their TaskManager; the count. Any thread, while the job's
 * subtasks exist. lat: NULL, or room for max latency histograms
 * (WEIR_HISTO_BUCKETS each) that the samples of sinks point into. */
int weir_job_sample(const struct job *job, uint32_t tm, struct weir_task_sample *out, int max, uint64_t *lat);

/* crash.c: give this thread an alternate signal stack unless it has
 * one (once per thread; worker threads at their first step). */
void weir_crash_thread_init(void);
/* Write text as the crash handlers write their lines (stderr, the note
 * file). */
void weir_crash_note(const char *text);
/* "operator 'NAME' (subtask i/P)" of what st's thread runs now. */
void weir_crash_describe(struct subtask *st, char *buf, size_t n);

#endif
