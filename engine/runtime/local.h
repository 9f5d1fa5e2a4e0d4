/*
 * engine/runtime/local.h - private to runtime/: local mode's JobManager
 * role. A thread drives the job's checkpoint coordinator
 * (checkpoint/coordinator.h), the very one the JobManager drives on a
 * cluster, and the job's snapshot writer is its one part.
 */
#ifndef WEIR_ENGINE_RUNTIME_LOCAL_H
#define WEIR_ENGINE_RUNTIME_LOCAL_H

#include "task/task.h"

/* Start the writer and the coordinator's thread for a job about to run,
 * checkpointing into base; ids go on after restored. 0, or -1 with the
 * trail set. */
int weir_local_ck_start(struct job *job, const char *base, uint64_t restored);
/* Stop both (after the workers stopped); a checkpoint still in flight is
 * discarded. */
void weir_local_ck_stop(struct job *job);
/* The newest complete checkpoint of job (0: none or no checkpoints), when
 * it completed (weir_now_ns) and its size: any thread. */
uint64_t weir_local_ck_latest(struct job *job, uint64_t *when_ns, uint64_t *bytes);
/* Any thread: the job's checkpoint history as the REST API shows it
 * (runtime/ckjson.h; cid NULL: the history, else that checkpoint's
 * detail, NULL when it has none), read under the coordinator's lock; a
 * job without checkpoints has an empty history. */
typedef struct json_t json_t;
struct weir_series;
json_t *weir_local_ck_json(struct job *job, const char *cid, const struct weir_series *s);

#endif
