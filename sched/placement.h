/*
 * sched/placement.h - where the subtasks of a job run.
 *
 * Slot sharing, as in Flink: subtask i of every vertex goes to global slot
 * i, so a pipeline's neighbours share a slot (and a TaskManager) and a job
 * needs as many slots as its largest parallelism. Global slots come from
 * the TaskManagers' offers in id order: packed (all of one TaskManager's
 * slots, then the next one's) or spread (slot 0 of every TaskManager,
 * then slot 1, ...), which puts neighbouring subtasks on different
 * TaskManagers so that channels cross processes.
 *
 * Knows nothing of operators: vertices are parallelisms, TaskManagers are
 * (id, slots).
 */
#ifndef WEIR_SCHED_PLACEMENT_H
#define WEIR_SCHED_PLACEMENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct weir_slot_offer {
	uint32_t tm;
	uint32_t slots;
};

struct weir_place {
	uint32_t tm;
	uint32_t slot;
};

/*
 * Place the subtasks of vertices with parallelisms par[0..nv-1] on the
 * offers (any order), vertex by vertex, index ascending, into out (room
 * for the sum of par). Returns the number of global slots the job needs,
 * or -1 with *total set to the slots there are when they are too few.
 */
long weir_place_job(const uint32_t *par, size_t nv, const struct weir_slot_offer *offers, size_t noffers,
		    bool spread, struct weir_place *out, uint32_t *total);

#endif
