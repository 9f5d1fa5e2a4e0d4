/*
 * engine/checkpoint/writer.h - the snapshot writer: the part of a job in
 * this process (a TaskManager's subtasks, or all of a local job's), as
 * the coordinator (coordinator.h) sees it. It decides nothing.
 *
 * On a trigger for checkpoint id it raises job->ck_trigger (sources
 * snapshot at their next step, barriers do the rest), writes each
 * snapshot its subtasks hand over (take.c) into <dir>/chk-<id>/ durably
 * (store.h), stands a finished subtask's last snapshot in for it, and once
 * every subtask here is written acknowledges id with the files, or
 * declines it (a write failed). A complete step raises job->ck_complete
 * (sinks publish on their next step); an abort raises job->ck_aborted
 * (alignments waiting for it end) and drops the snapshots still coming.
 *
 * Threads: its own thread writes; ck_writer_step may be called from any
 * thread; the acknowledgement is called on the writer's thread, holding
 * no lock of the writer's (it may call ck_writer_step).
 */
#ifndef WEIR_ENGINE_CHECKPOINT_WRITER_H
#define WEIR_ENGINE_CHECKPOINT_WRITER_H

#include "checkpoint/coordinator.h"
#include "task/task.h"

/* The writer's acknowledgement of checkpoint id: the files written here
 * (nfiles of them; their bytes, the longest synchronous pause and the
 * bytes of in-flight data among them), or err when it failed here. */
typedef void (*ck_ack_fn)(void *arg, uint64_t id, const struct weir_ckpt_file *files, int nfiles, uint64_t bytes,
			  uint64_t sync_max_ns, uint64_t inflight, const char *err);

/* Start the writer (job->ck) of a job about to run; ids start after
 * restored. 0, or -1 with the trail set. */
int ck_writer_start(struct job *job, uint64_t restored, ck_ack_fn ack, void *arg);
/* Stop and free it (after the workers stopped). */
void ck_writer_stop(struct job *job);
/* A coordinator's step for checkpoint id (dir: a trigger's folder). 0, or
 * -1 when the job has no writer. */
int ck_writer_step(struct job *job, enum ck_step step, uint64_t id, const char *dir);

#endif
