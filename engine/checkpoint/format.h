/*
 * engine/checkpoint/format.h - private to checkpoint/: a subtask's
 * snapshot while it is made (the copy-on-write pieces) and when handed to
 * the snapshot writer. The file format is described in take.c.
 */
#ifndef WEIR_ENGINE_CHECKPOINT_FORMAT_H
#define WEIR_ENGINE_CHECKPOINT_FORMAT_H

#include "state/snapshot.h"

#include <stdbool.h>
#include <stdint.h>

static const char ck_sub_magic[8] = { 'W', 'E', 'I', 'R', 'S', 'U', 'B', '2' };

struct ck_handover {
	uint64_t id;
	int sub;
	bool final;
	struct snapvec sv;
	uint64_t sync_ns;	/* the longest the subtask stopped for it at once */
	uint64_t inflight;	/* bytes of in-flight data in it (unaligned) */
};

/* A subtask's snapshot being made (st->cow). Pieces: [0] the header, then
 * per operator k, from 1 + 6k: [position][n][private][u64 reduce entries],
 * reduce entries, [u64 keyed entries], keyed entries, [u64 timers], timers;
 * the copy-on-write tables fill their pieces later. */
#define COW_PIECES 6
#define COW_PIECES_END 2	/* [u64 in-flight bytes], the in-flight records */
struct ck_cow {
	uint64_t id;
	bool final;
	uint64_t pause_max;
	struct snapvec sv;
};

/* Its in-flight records (tag: the head input, the edge), the last piece;
 * the one before it takes their length when it is handed over. */
static inline struct snapbuf *inflight(struct ck_cow *w)
{
	return &w->sv.v[w->sv.n - 1];
}


/* A fingerprint of st's chain: its operators' names, in order (take.c). */
struct subtask;
uint64_t ck_chain_print(const struct subtask *st);

/* Hand a sealed snapshot to the job's snapshot writer (writer.c), which
 * owns a->sv from then on. 0; -1 when there is no writer (nobody wants
 * it: a->sv is left to the caller) or memory ran out (the trail says). */
struct job;
int ck_writer_take(struct job *job, const struct ck_handover *a);

#endif
