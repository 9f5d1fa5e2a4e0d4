/*
 * engine/checkpoint/take.h - checkpoints on a subtask's side: the snapshot
 * at a barrier (copy-on-write, finished in slices by the worker), the
 * in-flight data of an unaligned checkpoint, the restore at start, and the
 * notification that a checkpoint completed. All on the subtask's worker.
 */
#ifndef WEIR_ENGINE_CHECKPOINT_TAKE_H
#define WEIR_ENGINE_CHECKPOINT_TAKE_H

#include "task/task.h"

/* Snapshot st's chain for checkpoint id (final: at its end, for the
 * checkpoints that come after it) and hand it to the coordinator. 0, or -1
 * (the subtask failed). */
int ck_snapshot(struct subtask *st, uint64_t id, bool final);
/* The snapshot point is O(1): keyed state and timers are serialized
 * afterwards, by slices of at most about budget_ns between batches (the
 * worker's step), and handed to the coordinator when complete (and, when
 * unaligned, every input's barrier came). 1 while chunks are left, 0 when
 * none (handed over, or waiting for barriers), -1 (the subtask failed). */
#define COW_SLICE_NS 100000u
int ck_cow_step(struct subtask *st, uint64_t budget_ns);
/* Unaligned: a record read from input in while it records in-flight data
 * for the snapshot in progress. 0 or -1 (out of memory: the subtask failed). */
int ck_record_inflight(struct subtask *st, const struct input *in, const weir_rec *rec);
/* Drop a snapshot in progress (teardown). */
void ck_cow_free(struct subtask *st);
/* After the chain opened: restore it from st->restore (or clean up after
 * an earlier attempt when there is none). 0 or -1. */
int ck_restore(struct subtask *st);
/* Tell the chain's operators that checkpoint id completed. 0 or -1. */
int ck_notify(struct subtask *st, uint64_t id);
/* Whether every source of the job's graph can be checkpointed; -1 with
 * the trail naming one that cannot. */
int ck_check_sources(struct job *job);

#endif
