/*
 * shm/ring.h - rings of descriptors: the one place that touches ck_ring.
 *
 * Every ring weir has is a ck_ring whose header and slot buffer hold no
 * pointers: a channel's data ring (struct weir_chan_msg, one producer and
 * one consumer), its return ring and a pool's free list (struct
 * weir_seg_slot, spsc and mpmc). An enqueue is a release and a dequeue an
 * acquire: whatever the producer wrote before the enqueue (the segment's
 * bytes) is visible to the consumer after its dequeue.
 *
 * ThreadSanitizer cannot see CK's x86 fences (inline assembly), so in a
 * TSan build this file is compiled uninstrumented and declares the same
 * edge explicitly: __tsan_release on the ring before an enqueue,
 * __tsan_acquire after a dequeue. Real races on segment bytes stay visible.
 *
 * The calls are out of line (one call per segment, never per record).
 */
#ifndef WEIR_SHM_RING_H
#define WEIR_SHM_RING_H

#include <ck_ring.h>
#include <stdbool.h>
#include <stdint.h>

struct weir_seg_slot {
	uint32_t seg;
};

struct weir_chan_msg {
	uint32_t kind;
	uint32_t seg;
	uint64_t val;
};

/* size: a power of two >= 2; the ring holds size - 1 entries */
void weir_ring_init(struct ck_ring *r, unsigned int size);
unsigned int weir_ring_count(const struct ck_ring *r);

bool weir_ring_msg_put(struct ck_ring *r, struct weir_chan_msg *buf, const struct weir_chan_msg *m);
bool weir_ring_msg_get(struct ck_ring *r, struct weir_chan_msg *buf, struct weir_chan_msg *m);
bool weir_ring_seg_put_sp(struct ck_ring *r, struct weir_seg_slot *buf, uint32_t seg);
bool weir_ring_seg_get_sc(struct ck_ring *r, struct weir_seg_slot *buf, uint32_t *seg);
bool weir_ring_seg_put_mp(struct ck_ring *r, struct weir_seg_slot *buf, uint32_t seg);
bool weir_ring_seg_get_mc(struct ck_ring *r, struct weir_seg_slot *buf, uint32_t *seg);

#endif
