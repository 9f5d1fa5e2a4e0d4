/* shm/ring.c - see ring.h (and why a TSan build compiles this file
 * without instrumentation). */
#include "shm/ring.h"

#if defined(__SANITIZE_THREAD__) || defined(WEIR_TSAN)
#include <sanitizer/tsan_interface.h>
#define HB_RELEASE(r) __tsan_release(r)
#define HB_ACQUIRE(r) __tsan_acquire(r)
#else
#define HB_RELEASE(r) ((void)(r))
#define HB_ACQUIRE(r) ((void)(r))
#endif

CK_RING_PROTOTYPE(weir_msg, weir_chan_msg)
CK_RING_PROTOTYPE(weir_seg, weir_seg_slot)

void weir_ring_init(struct ck_ring *r, unsigned int size)
{
	ck_ring_init(r, size);
}

unsigned int weir_ring_count(const struct ck_ring *r)
{
	return ck_ring_size(r);
}

bool weir_ring_msg_put(struct ck_ring *r, struct weir_chan_msg *buf, const struct weir_chan_msg *m)
{
	HB_RELEASE(r);
	return ck_ring_enqueue_spsc_weir_msg(r, buf, (struct weir_chan_msg *)m);
}

bool weir_ring_msg_get(struct ck_ring *r, struct weir_chan_msg *buf, struct weir_chan_msg *m)
{
	if (!ck_ring_dequeue_spsc_weir_msg(r, buf, m))
		return false;
	HB_ACQUIRE(r);
	return true;
}

bool weir_ring_seg_put_sp(struct ck_ring *r, struct weir_seg_slot *buf, uint32_t seg)
{
	struct weir_seg_slot s = { seg };
	HB_RELEASE(r);
	return ck_ring_enqueue_spsc_weir_seg(r, buf, &s);
}

bool weir_ring_seg_get_sc(struct ck_ring *r, struct weir_seg_slot *buf, uint32_t *seg)
{
	struct weir_seg_slot s;
	if (!ck_ring_dequeue_spsc_weir_seg(r, buf, &s))
		return false;
	HB_ACQUIRE(r);
	*seg = s.seg;
	return true;
}

bool weir_ring_seg_put_mp(struct ck_ring *r, struct weir_seg_slot *buf, uint32_t seg)
{
	struct weir_seg_slot s = { seg };
	HB_RELEASE(r);
	return ck_ring_enqueue_mpmc_weir_seg(r, buf, &s);
}

bool weir_ring_seg_get_mc(struct ck_ring *r, struct weir_seg_slot *buf, uint32_t *seg)
{
	struct weir_seg_slot s;
	if (!ck_ring_dequeue_mpmc_weir_seg(r, buf, &s))
		return false;
	HB_ACQUIRE(r);
	*seg = s.seg;
	return true;
}
