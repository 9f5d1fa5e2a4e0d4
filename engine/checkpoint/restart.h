/*
 * engine/checkpoint/restart.h - the restart strategy of a job with
 * checkpoints, in local mode and on a cluster alike: after a failed
 * attempt, whether another one runs and after how long. Fixed delay, or
 * exponential backoff (the delay doubles up to max_delay_ms; from 0, 1
 * ms), for at most `attempts` restarts. The attempt restores the newest
 * good checkpoint, else what the job started from (the caller's part).
 *
 * Threads: one at a time.
 */
#ifndef WEIR_ENGINE_CHECKPOINT_RESTART_H
#define WEIR_ENGINE_CHECKPOINT_RESTART_H

#include <stdbool.h>
#include <stdint.h>

struct ck_restart {
	uint32_t attempts;	/* restarts allowed */
	uint32_t delay_ms;	/* before the first */
	uint32_t max_delay_ms;	/* 0: fixed delay */
	uint32_t made;		/* restarts so far */
	uint32_t next_delay_ms;
};

void ck_restart_init(struct ck_restart *r, uint32_t attempts, uint32_t delay_ms, uint32_t max_delay_ms);
/* An attempt failed (for a reason a restart may cure): true and the delay
 * before the next attempt, which is counted; false when none is left. */
bool ck_restart_next(struct ck_restart *r, uint32_t *delay_ms);

#endif
