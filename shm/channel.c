/* shm/channel.c - see channel.h. */
#include "shm/channel.h"
#include "base/err.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint32_t pow2_at_least(uint32_t n)
{
	uint32_t r = 1;
	while (r < n)
		r <<= 1;
	return r;
}

static size_t region_size(uint32_t data_size, uint32_t ret_size)
{
	return sizeof(struct weir_chan_region) + data_size * sizeof(struct weir_chan_msg) +
	       ret_size * sizeof(struct weir_seg_slot);
}

static void bind_region(struct weir_chan *c, struct weir_chan_region *r, uint32_t data_size)
{
	c->r = r;
	c->data_buf = (struct weir_chan_msg *)(r + 1);
	c->ret_buf = (struct weir_seg_slot *)(c->data_buf + data_size);
}

/* The producer's side: sizes, a formatted region, the exclusive segments. */
static int setup(struct weir_chan *c, struct weir_chan_region *r, struct weir_pool *pool, uint32_t credits,
		 uint32_t max_floating, uint32_t data_size, uint32_t ret_size)
{
	memset(r, 0, sizeof(*r));
	r->version = WEIR_CHAN_VERSION;
	r->credits = credits;
	r->max_floating = max_floating;
	r->data_size = data_size;
	r->ret_size = ret_size;
	r->pool_id = pool->id;
	weir_doorbell_init(&r->db[0]);
	weir_doorbell_init(&r->db[1]);
	weir_ring_init(&r->data, data_size);
	weir_ring_init(&r->ret, ret_size);
	bind_region(c, r, data_size);
	c->pool = pool;
	c->credits = credits;
	c->max_owned = credits + max_floating;
	c->spare = malloc(sizeof(weir_seg) * credits);
	c->out = malloc(sizeof(weir_seg) * c->max_owned);
	if (!c->spare || !c->out)
		return weir_err_set("channel: out of memory"), -ENOMEM;
	for (uint32_t i = 0; i < credits; i++) {
		if (weir_pool_get(pool, &c->spare[i]) < 0) {
			c->nspare = i;
			c->owned = i;
			weir_err_set("channel: segment pool exhausted (%u free, %u credits wanted)",
				     weir_pool_free_count(pool), credits);
			return -ENOBUFS;
		}
	}
	c->nspare = credits;
	c->owned = credits;
	/* the magic last: an attaching consumer that sees it sees the rest
	 * (pairs with the acquire load in weir_chan_attach_shm) */
	__atomic_store_n(&r->magic, WEIR_CHAN_MAGIC, __ATOMIC_RELEASE);
	return 0;
}

/* Check the sizes and choose the rings': the channel holds at most
 * credits + max_floating segments, each in at most one slot, so neither
 * ring can overflow. */
static int ring_sizes(uint32_t credits, uint32_t max_floating, uint32_t *data_size, uint32_t *ret_size)
{
	if (credits == 0 || credits > (1u << 20) || max_floating > (1u << 20))
		return weir_err_set("channel: credits %u / floating %u out of range", credits, max_floating), -EINVAL;
	*data_size = pow2_at_least(credits + max_floating + WEIR_CHAN_EVENTS + 1);
	*ret_size = pow2_at_least(credits + max_floating + 1);
	return 0;
}

int weir_chan_init(struct weir_chan *c, struct weir_pool *pool, uint32_t credits, uint32_t max_floating,
		   struct weir_doorbell *consumer_db, struct weir_doorbell *producer_db)
{
	memset(c, 0, sizeof(*c));
	c->shm.fd = -1;
	uint32_t data_size, ret_size;
	int e = ring_sizes(credits, max_floating, &data_size, &ret_size);
	if (e < 0)
		return e;
	size_t len = region_size(data_size, ret_size);
	struct weir_chan_region *r = aligned_alloc(64, (len + 63) & ~(size_t)63);
	if (!r)
		return weir_err_set("channel: out of memory"), -ENOMEM;
	c->consumer_db = consumer_db;
	c->producer_db = producer_db;
	if ((e = setup(c, r, pool, credits, max_floating, data_size, ret_size)) < 0) {
		char msg[WEIR_ERR_MAX];
		snprintf(msg, sizeof(msg), "%s", weir_err_msg());
		weir_chan_release(c);
		weir_err_set("%s", msg);
		return e;
	}
	return 0;
}

int weir_chan_create_shm(struct weir_chan *c, const char *name, struct weir_pool *pool, uint32_t credits,
			 uint32_t max_floating)
{
	memset(c, 0, sizeof(*c));
	c->shm.fd = -1;
	uint32_t data_size, ret_size;
	int e = ring_sizes(credits, max_floating, &data_size, &ret_size);
	if (e < 0)
		return e;
	if ((e = weir_shm_create(&c->shm, name, region_size(data_size, ret_size), NULL)) < 0)
		return e;
	if ((e = weir_shm_reserve(&c->shm)) < 0) {
		weir_shm_close(&c->shm);
		return e;
	}
	struct weir_chan_region *r = c->shm.map;
	c->consumer_db = &r->db[0];
	c->producer_db = &r->db[1];
	if ((e = setup(c, r, pool, credits, max_floating, data_size, ret_size)) < 0) {
		char msg[WEIR_ERR_MAX];
		snprintf(msg, sizeof(msg), "%s", weir_err_msg());
		weir_chan_release(c);
		weir_err_set("%s", msg);
		return e;
	}
	return 0;
}

int weir_chan_attach_shm(struct weir_chan *c, const char *name, struct weir_pool *producer_pool)
{
	memset(c, 0, sizeof(*c));
	c->shm.fd = -1;
	int e = weir_shm_open(&c->shm, name, sizeof(struct weir_chan_region));
	if (e < 0)
		return e;
	struct weir_chan_region *r = c->shm.map;
	/* Every field once, into locals, after the magic (acquire: pairs
	 * with the release store in setup). */
	uint64_t magic = __atomic_load_n(&r->magic, __ATOMIC_ACQUIRE);
	struct weir_chan_region h;
	memcpy(&h, r, sizeof(h));
	const char *why = NULL;
	char buf[160];
	uint32_t want_data, want_ret;
	if (magic == 0)
		why = "not ready (its producer has not finished creating it)";
	else if (magic != WEIR_CHAN_MAGIC)
		why = "not a weir channel (bad magic)";
	else if (h.version != WEIR_CHAN_VERSION)
		why = "of another layout version";
	else if (ring_sizes(h.credits, h.max_floating, &want_data, &want_ret) < 0 || h.data_size != want_data ||
		 h.ret_size != want_ret || region_size(h.data_size, h.ret_size) != c->shm.len)
		why = "its sizes do not add up (truncated or corrupt)";
	else if (h.pool_id != producer_pool->id) {
		snprintf(buf, sizeof(buf), "its segments are in pool %u, not in pool %u", h.pool_id, producer_pool->id);
		why = buf;
	} else if (weir_shm_lock_byte(&c->shm, 1) < 0) {
		why = "it already has a live consumer";
	} else {
		/* S2: we look at sealed only after our lock byte is taken (the
		 * kernel's lock table, which the producer's F_OFD_GETLK reads under
		 * the same kernel lock); pairs with S1 in weir_chan_seal: either
		 * the producer sees our lock (and waits for us) or we see its seal
		 * (and go) */
		if (__atomic_load_n(&r->sealed, __ATOMIC_SEQ_CST))
			why = "it is closed (its producer let go: the job has ended)";
	}
	if (why) {
		weir_shm_close(&c->shm);
		return weir_err_set("channel '%s': %s", name, why), -EPROTO;
	}
	bind_region(c, r, h.data_size);
	c->pool = producer_pool;
	c->consumer = true;
	c->credits = h.credits;
	c->max_owned = h.credits + h.max_floating;
	c->consumer_db = &r->db[0];
	c->producer_db = &r->db[1];
	__atomic_store_n(&r->consumer_attached, 1, __ATOMIC_RELEASE);
	return 0;
}

bool weir_chan_peer_alive(const struct weir_chan *c)
{
	if (!c->shm.map)
		return true;
	if (c->consumer)
		return weir_shm_byte_held(&c->shm, 0);
	/* a consumer that has not attached yet is not dead */
	return !__atomic_load_n(&c->r->consumer_attached, __ATOMIC_ACQUIRE) || weir_shm_byte_held(&c->shm, 1);
}

void weir_chan_seal(struct weir_chan *c)
{
	if (!c->shm.map || c->consumer)
		return;
	/* S1: a full barrier (a sequentially consistent exchange): the seal is
	 * visible before we look at the consumer's lock byte
	 * (weir_chan_consumer_holds); pairs with S2 in weir_chan_attach_shm */
	__atomic_exchange_n(&c->r->sealed, 1, __ATOMIC_SEQ_CST);
}

bool weir_chan_consumer_holds(const struct weir_chan *c)
{
	return c->shm.map && !c->consumer && weir_shm_byte_held(&c->shm, 1);
}

void weir_chan_release(struct weir_chan *c)
{
	if (!c->r && !c->shm.map) {
		free(c->spare);
		free(c->out);
		return;
	}
	if (!c->consumer) {
		/* Everything the channel owns is spare or sent and not handed
		 * back, wherever the rings say it is: all of it goes home. */
		for (uint32_t i = 0; i < c->nout; i++)
			weir_pool_put(c->pool, c->out[i]);
		for (uint32_t i = 0; i < c->nspare; i++)
			weir_pool_put(c->pool, c->spare[i]);
	}
	free(c->spare);
	free(c->out);
	if (c->shm.map)
		weir_shm_close(&c->shm);
	else
		free(c->r);
	memset(c, 0, sizeof(*c));
	c->shm.fd = -1;
}

/* Producer: a segment came back; it must be one we sent. */
static bool take_back(struct weir_chan *c, weir_seg s)
{
	for (uint32_t i = 0; i < c->nout; i++)
		if (c->out[i] == s) {
			c->out[i] = c->out[--c->nout];
			return true;
		}
	c->stats.bad_returns++;
	return false;
}

/* Producer: move handed-back segments to the spare stack; segments beyond
 * the credit (floating ones) go back to the pool. */
static void reclaim(struct weir_chan *c)
{
	weir_seg s;
	while (weir_ring_seg_get_sc(&c->r->ret, c->ret_buf, &s)) {
		if (!take_back(c, s))
			continue;
		if (c->owned > c->credits) {
			weir_pool_put(c->pool, s);
			c->owned--;
		} else {
			c->spare[c->nspare++] = s;
		}
	}
}

uint32_t weir_chan_spare(struct weir_chan *c)
{
	reclaim(c);
	return c->nspare;
}

void weir_chan_settle(struct weir_chan *c)
{
	/* between processes the producer's side is the producer's: it takes
	 * back what is returned when it releases the channel */
	if (!c->consumer && !c->producer_stays)
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

/* Tell the consumer: its kick, or its doorbell. */
static void notify(struct weir_chan *c)
{
	struct weir_chan_kick *k = __atomic_load_n(&c->kick, __ATOMIC_ACQUIRE);
	if (k)
		k->fn(k);
	else
		weir_doorbell_ring(c->consumer_db);
}

int weir_chan_send(struct weir_chan *c, weir_seg seg, uint32_t len)
{
	struct weir_chan_msg m = { .kind = WEIR_MSG_DATA, .seg = seg, .val = len };
	if (c->nout == c->max_owned)
		return -EAGAIN; /* cannot happen: the channel never owns more */
	/* The enqueue is a release: the segment's bytes are visible before the
	 * descriptor is. */
	if (!weir_ring_msg_put(&c->r->data, c->data_buf, &m))
		return -EAGAIN;
	c->out[c->nout++] = seg;
	c->stats.segs_sent++;
	c->stats.bytes_sent += len;
	notify(c);
	return 0;
}

int weir_chan_send_event(struct weir_chan *c, uint32_t code, uint64_t val)
{
	struct weir_chan_msg m = { .kind = WEIR_MSG_EVENT, .seg = code, .val = val };
	if (!weir_ring_msg_put(&c->r->data, c->data_buf, &m))
		return -EAGAIN;
	c->stats.events_sent++;
	notify(c);
	return 0;
}

void weir_chan_announce(struct weir_chan *c, uint64_t v)
{
	/* release: what the producer did before announcing is visible to a
	 * consumer that sees the value */
	__atomic_store_n(&c->r->announced, v, __ATOMIC_RELEASE);
	notify(c);
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
	struct weir_chan_kick *k = __atomic_load_n(&c->give_kick, __ATOMIC_ACQUIRE);
	if (k)
		k->fn(k);
	else
		weir_doorbell_ring(c->producer_db);
}
