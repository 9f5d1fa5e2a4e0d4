/* shm/doorbell.c - see doorbell.h for the protocol. */
#include "shm/doorbell.h"

#include <ck_pr.h>
#include <linux/futex.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

void weir_doorbell_init(struct weir_doorbell *db)
{
	db->seq = 0;
	db->sleeping = 0;
	db->wakeups = 0;
}

void weir_doorbell_ring(struct weir_doorbell *db)
{
	/* R1: orders the caller's publication (ring enqueue) before the load of
	 * `sleeping`; pairs with O1 in prepare. */
	ck_pr_fence_memory();
	if (ck_pr_load_32(&db->sleeping)) {
		ck_pr_inc_32(&db->seq);
		ck_pr_inc_64(&db->wakeups);
		syscall(SYS_futex, &db->seq, FUTEX_WAKE, 1, NULL, NULL, 0);
	}
}

uint32_t weir_doorbell_prepare(struct weir_doorbell *db)
{
	uint32_t s = ck_pr_load_32(&db->seq);
	ck_pr_store_32(&db->sleeping, 1);
	/* O1: the store of `sleeping` is visible before the owner re-checks its
	 * queues; pairs with R1. */
	ck_pr_fence_memory();
	return s;
}

void weir_doorbell_cancel(struct weir_doorbell *db)
{
	ck_pr_store_32(&db->sleeping, 0);
}

void weir_doorbell_wait(struct weir_doorbell *db, uint32_t seq, uint64_t timeout_ns)
{
	struct timespec ts, *tp = NULL;
	if (timeout_ns) {
		ts.tv_sec = (time_t)(timeout_ns / 1000000000u);
		ts.tv_nsec = (long)(timeout_ns % 1000000000u);
		tp = &ts;
	}
	/* Returns at once with EAGAIN if a ringer bumped seq since prepare. */
	syscall(SYS_futex, &db->seq, FUTEX_WAIT, seq, tp, NULL, 0);
	ck_pr_store_32(&db->sleeping, 0);
}
