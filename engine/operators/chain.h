/*
 * engine/operators/chain.h - a subtask's chain at run time: opening and
 * closing its operators, handing a record to an operator (and through its
 * emits to everything after it), and the tail's output into the
 * partitioned writers. Nothing on the record path allocates or locks.
 */
#ifndef WEIR_ENGINE_OPERATORS_CHAIN_H
#define WEIR_ENGINE_OPERATORS_CHAIN_H

#include "task/task.h"

int weir_op_open(struct subtask *st, struct opinst *op);
int weir_op_close(struct subtask *st, struct opinst *op);
/* Hand a record to op (and, through emits, to everything after it). */
int weir_op_deliver(struct opinst *op, const weir_rec *rec, struct input *in);
/* Run a key function on rec and check its key: at most limit bytes, and
 * data unless empty (max_record; a keyed operator's KEYED_MAX_KEY). 0, or
 * -1 with the subtask failed, naming op. The one place keys are checked. */
int weir_op_key(struct subtask *st, struct opinst *op, weir_key_fn fn, const weir_ctx *kctx, const weir_rec *rec,
		weir_key *key, uint32_t limit);
/* A subtask's tail emits: partition into its outputs of tag 0 (main) or a
 * side output tag. */
int weir_op_output(struct subtask *st, int tag, const weir_rec *rec);
/* rd reads a keyed input of head: let it prefetch head's state for the
 * records ahead (a reduce's or a keyed operator's table) while that table
 * holds WEIR_PREFETCH_MIN entries or more (4 MiB of slots: beyond the
 * caches). Called once a step. */
#define WEIR_PREFETCH_MIN 65536u
void weir_op_input_prefetch(struct opinst *head, struct weir_reader *rd);
/* A watermark reaches chain position k: operators from k on fire their
 * event-time timers, then it goes out on every output. */
int weir_op_watermark(struct subtask *st, int k, int64_t wm);
/* The subtask's stream went idle (its inputs, or an assigner of its chain
 * saw no record for its idle timeout): tell every output, downstream
 * subtasks then leave this input out of their watermark. */
int weir_op_idle(struct subtask *st);

#endif
