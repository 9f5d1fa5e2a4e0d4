/*
 * shm/doorbell.h - a futex eventcount: how a sleeping worker is woken.
 *
 * One doorbell per worker. The worker spins for a while when it finds no
 * work, then sleeps on its doorbell; anyone who publishes work for it
 * (a producer enqueuing a segment, a consumer handing credit back) rings it.
 * Ringing costs a fence and a load while the owner is awake; the futex wake
 * syscall happens only when the owner announced that it sleeps.
 *
 * The protocol (Dekker-style; both sides need the full fence):
 *   owner:   s = prepare(db)        sleeping = 1; fence
 *            if (work found) cancel(db) else wait(db, s)
 *   ringer:  publish work; ring(db) fence; if sleeping: seq++, futex_wake
 * Either the owner's re-check sees the work, or the ringer sees sleeping=1
 * and bumps seq, so the futex wait returns at once. No lost wake-ups.
 *
 * The struct holds no pointers and uses a shared (not private) futex, so a
 * doorbell may live in shared memory and be rung from another process.
 */
#ifndef WEIR_SHM_DOORBELL_H
#define WEIR_SHM_DOORBELL_H

#include <stdint.h>

struct weir_doorbell {
	uint32_t seq;		/* futex word; bumped by ringers */
	uint32_t sleeping;	/* 1 while the owner is (about to be) asleep */
	uint64_t wakeups;	/* futex wakes issued (statistics) */
	char pad[48];
} __attribute__((aligned(64)));

void weir_doorbell_init(struct weir_doorbell *db);
/* Any thread or process: after publishing work for the owner. */
void weir_doorbell_ring(struct weir_doorbell *db);
/* Owner only: announce sleep; returns the sequence to wait on. */
uint32_t weir_doorbell_prepare(struct weir_doorbell *db);
/* Owner only: found work after prepare; stay awake. */
void weir_doorbell_cancel(struct weir_doorbell *db);
/* Owner only: sleep until rung or timeout_ns passes (0: no timeout). */
void weir_doorbell_wait(struct weir_doorbell *db, uint32_t seq, uint64_t timeout_ns);

#endif
