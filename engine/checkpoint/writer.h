/*
 * engine/checkpoint/writer.h - the snapshot writer of a job's subtasks in
 * this process: a thread that writes the snapshots they hand over into the
 * checkpoint being taken and acknowledges them.
 */
#ifndef WEIR_ENGINE_CHECKPOINT_WRITER_H
#define WEIR_ENGINE_CHECKPOINT_WRITER_H

#include "task/task.h"

/* Local mode: start the coordinator (job->ck) for a job about to run,
 * writing under base; restored: the id it starts after. 0 or -1. */
int ck_coord_start(struct job *job, const char *base, uint64_t restored);
/* Stop and free it (after the workers stopped). */
void ck_coord_stop(struct job *job);
/* A cluster's TaskManager: a step of the JobManager's for checkpoint id
 * (any thread). Trigger: snapshot the subtasks here into dir/chk-<id>/;
 * complete: sinks publish; abort: alignments for it end. 0 or -1. */
enum { CK_CMD_TRIGGER = 1, CK_CMD_COMPLETE = 2, CK_CMD_ABORT = 3 };
int ck_coord_command(struct job *job, int action, uint64_t id, const char *dir);

#endif
