/*
 * engine/checkpoint/restart.c - the restart strategy (see restart.h).
 */
#include "checkpoint/restart.h"

void ck_restart_init(struct ck_restart *r, uint32_t attempts, uint32_t delay_ms, uint32_t max_delay_ms)
{
	*r = (struct ck_restart){ attempts, delay_ms, max_delay_ms, 0, delay_ms };
}

bool ck_restart_next(struct ck_restart *r, uint32_t *delay_ms)
{
	if (r->made >= r->attempts)
		return false;
	r->made++;
	*delay_ms = r->next_delay_ms;
	if (r->max_delay_ms) {
		uint64_t next = r->next_delay_ms ? (uint64_t)r->next_delay_ms * 2 : 1;
		r->next_delay_ms = (uint32_t)(next > r->max_delay_ms ? r->max_delay_ms : next);
	}
	return true;
}
