/* shm/channel.c - see channel.h. */
#include "shm/channel.h"
#include "base/err.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static uint32_t pow2_at_least(uint32_t n)
{
	uint32_t r = 1;
	while (r < n)
		r <<= 1;
	return r;
}

int weir_chan_init(struct weir_chan *c, struct weir_pool *pool, uint32_t credits, uint32_t max_floating,
		   struct weir_doorbell *consumer_db, struct weir_doorbell *producer_db)
{
	memset(c, 0, sizeof(*c));
	if (credits == 0 || credits > (1u << 20) || max_floating > (1u << 20))
		return weir_err_set("channel: credits %u / floating %u out of range", credits, max_floating), -EINVAL;
	/* The channel holds at most credits + max_floating segments, each in
	 * at most one slot, so neither ring can overflow with these sizes. */
	uint32_t data_size = pow2_at_least(credits + max_floating + WEIR_CHAN_EVENTS + 1);
	uint32_t ret_size = pow2_at_least(credits + max_floating + 1);
	size_t len = sizeof(struct weir_chan_region) + data_size * sizeof(struct weir_chan_msg) +
		     ret_size * sizeof(struct weir_seg_slot);
	struct weir_chan_region *r = aligned_alloc(64, (len + 63) & ~(size_t)63);
	weir_seg *spare = malloc(sizeof(weir_seg) * credits);
	if (!r || !spare) {
		free(r);
		free(spare);
		return weir_err_set("channel: out of memory"), -ENOMEM;
	}
	memset(r, 0, sizeof(*r));
	weir_ring_init(&r->data, data_size);
	weir_ring_init(&r->ret, ret_size);
	r->credits = credits;
	r->data_size = data_size;
	r->ret_size = ret_size;
	c->r = r;
	c->data_buf = (struct weir_chan_msg *)(r + 1);
	c->ret_buf = (struct weir_seg_slot *)(c->data_buf + data_size);
	c->pool = pool;
	c->consumer_db = consumer_db;
	c->producer_db = producer_db;
	c->spare = spare;
	c->credits = credits;
	c->max_owned = credits + max_floating;
	for (uint32_t i = 0; i < credits; i++) {
		if (weir_pool_get(pool, &spare[i]) < 0) {
			c->nspare = i;
			c->owned = i;
			weir_chan_release(c);
			weir_err_set("channel: segment pool exhausted (%u free, %u credits wanted)",
				     weir_pool_free_count(pool), credits);
			return -ENOBUFS;
		}
	}
	c->nspare = credits;
	c->owned = credits;
	return 0;
}

void weir_chan_release(struct weir_chan *c)
{
	if (!c->r)
		return;
	struct weir_chan_msg m;
	while (weir_ring_msg_get(&c->r->data, c->data_buf, &m))
		if (m.kind == WEIR_MSG_DATA)
			weir_pool_put(c->pool, m.seg);
	weir_seg s;
	while (weir_ring_seg_get_sc(&c->r->ret, c->ret_buf, &s))
		weir_pool_put(c->pool, s);
	for (uint32_t i = 0; i < c->nspare; i++)
		weir_pool_put(c->pool, c->spare[i]);
	free(c->spare);
	free(c->r);
	memset(c, 0, sizeof(*c));
}

/* Producer: move handed-back segments to the spare stack; segments beyond
 * the credit (floating ones) go back to the pool. */
static void reclaim(struct weir_chan *c)
{
	weir_seg s;
	while (weir_ring_seg_get_sc(&c->r->ret, c->ret_buf, &s)) {
		if (c->owned > c->credits) {
			weir_pool_put(c->pool, s);
			c->owned--;
		} else {
			c->spare[c->nspare++] = s;
		}
	}
}

void weir_chan_settle(struct weir_chan *c)
{
	reclaim(c);
}

bool weir_chan_can_send(struct weir_chan *c)
{
	if (c->nspare == 0)
		reclaim(c);
	return c->nspare > 0;
}

int weir_chan_acquire(struct weir_chan *c, weir_seg *seg)
{
	if (c->nspare == 0)
		reclaim(c);
	if (c->nspare > 0) {
		*seg = c->spare[--c->nspare];
		return 0;
	}
	if (c->owned >= c->max_owned || weir_pool_get(c->pool, seg) < 0)
		return -ENOBUFS;
	c->owned++;
	c->stats.floating_taken++;
	return 1;
}

void weir_chan_recycle(struct weir_chan *c, weir_seg seg)
{
	if (c->owned > c->credits) {
		weir_pool_put(c->pool, seg);
		c->owned--;
	} else {
		c->spare[c->nspare++] = seg;
	}
}

int weir_chan_send(struct weir_chan *c, weir_seg seg, uint32_t len)
{
	struct weir_chan_msg m = { .kind = WEIR_MSG_DATA, .seg = seg, .val = len };
	/* The enqueue is a release: the segment's bytes are visible before the
	 * descriptor is. */
	if (!weir_ring_msg_put(&c->r->data, c->data_buf, &m))
		return -EAGAIN;
	c->stats.segs_sent++;
	c->stats.bytes_sent += len;
	weir_doorbell_ring(c->consumer_db);
	return 0;
}

int weir_chan_send_event(struct weir_chan *c, uint32_t code, uint64_t val)
{
	struct weir_chan_msg m = { .kind = WEIR_MSG_EVENT, .seg = code, .val = val };
	if (!weir_ring_msg_put(&c->r->data, c->data_buf, &m))
		return -EAGAIN;
	c->stats.events_sent++;
	weir_doorbell_ring(c->consumer_db);
	return 0;
}

int weir_chan_recv(struct weir_chan *c, struct weir_chan_msg *m)
{
	/* The dequeue copies the slot into *m once; everything below checks
	 * that copy, never the shared slot (no double fetch). */
	if (!weir_ring_msg_get(&c->r->data, c->data_buf, m))
		return 0;
	switch (m->kind) {
	case WEIR_MSG_DATA:
		if (!weir_pool_owns(c->pool, m->seg))
			return weir_err_set("channel: descriptor %#x is outside pool %u (%u segments)",
					    m->seg, c->pool->id, c->pool->nsegs), -EPROTO;
		if (m->val > c->pool->seg_size) {
			weir_chan_give(c, m->seg); /* the descriptor is ours: hand it back */
			return weir_err_set("channel: segment length %llu exceeds segment size %u",
					    (unsigned long long)m->val, c->pool->seg_size), -EPROTO;
		}
		return 1;
	case WEIR_MSG_EVENT:
		return 1;
	default:
		return weir_err_set("channel: unknown message kind %u", m->kind), -EPROTO;
	}
}

void weir_chan_give(struct weir_chan *c, weir_seg seg)
{
	bool ok = weir_ring_seg_put_sp(&c->r->ret, c->ret_buf, seg);
	(void)ok; /* cannot fail: the ring is larger than the pool */
	weir_doorbell_ring(c->producer_db);
}
