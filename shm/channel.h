/*
 * shm/channel.h - a one-producer, one-consumer channel of segments.
 *
 * A channel carries filled segments, in order with small in-band events,
 * from one producing subtask to one consuming subtask, and carries the
 * emptied segments back. It knows nothing of records or operators: a DATA
 * message is a descriptor plus the bytes used; an EVENT message is a code
 * plus a 64-bit value whose meaning belongs to the layer above.
 *
 *   producer                                consumer
 *   acquire() -> fill -> send()  --data-->  recv() -> read -> give()
 *        ^                                                   |
 *        +-------------------- ret (credit) <----------------+
 *
 * Credit-based flow control: the channel owns `credits` exclusive
 * segments. A segment handed back on the return ring *is* the credit
 * announcement. When every exclusive segment is in flight the producer has
 * no credit; the engine then stops feeding it input. acquire() may still
 * hand out up to `max_floating` segments from the pool, so that a record
 * already being processed can finish; floating segments go back to the
 * pool as soon as they return. A channel therefore never holds more than
 * credits + max_floating segments, which also bounds its rings, and one
 * hot channel cannot drain the whole pool.
 *
 * The shared part (struct weir_chan_region) holds no pointers, only rings
 * of descriptors, so it can live in memory both ends map.
 *
 * Threads: the producer functions (can_send, acquire, recycle, send,
 * send_event) are called by one thread at a time, the consumer functions
 * (recv, give, pending) by one other; init/release by neither concurrently.
 */
#ifndef WEIR_SHM_CHANNEL_H
#define WEIR_SHM_CHANNEL_H

#include "shm/doorbell.h"
#include "shm/pool.h"

#include <ck_ring.h>
#include <stdbool.h>
#include <stdint.h>

enum weir_msg_kind {
	WEIR_MSG_DATA = 1,	/* seg: descriptor; val: bytes used */
	WEIR_MSG_EVENT = 2,	/* seg: event code; val: payload */
};


struct weir_chan_region {
	struct ck_ring data;		/* producer -> consumer */
	struct ck_ring ret;		/* consumer -> producer: emptied segments */
	uint32_t credits;
	uint32_t data_size;		/* slots in the data ring */
	uint32_t ret_size;
	uint32_t pad;
	/* struct weir_chan_msg data_buf[data_size]; then
	 * struct weir_seg_slot ret_buf[ret_size]; */
};

struct weir_chan_stats {
	uint64_t segs_sent;
	uint64_t bytes_sent;
	uint64_t events_sent;
	uint64_t floating_taken;	/* segments taken beyond the credit */
};

struct weir_chan {
	struct weir_chan_region *r;
	struct weir_chan_msg *data_buf;
	struct weir_seg_slot *ret_buf;
	struct weir_pool *pool;
	struct weir_doorbell *consumer_db;	/* rung after send */
	struct weir_doorbell *producer_db;	/* rung after give */
	/* producer side only */
	weir_seg *spare;	/* empty segments ready to fill */
	uint32_t nspare;
	uint32_t owned;		/* segments charged to this channel */
	uint32_t credits;
	uint32_t max_owned;	/* credits + max_floating */
	struct weir_chan_stats stats;
};

/* Events a channel holds at most besides its segments (the data ring's
 * headroom): a producer sends at most this many before the consumer must
 * have read some. */
#define WEIR_CHAN_EVENTS 16

/*
 * Fill *c: a channel with `credits` exclusive segments taken from pool,
 * allowed up to `max_floating` more from the pool's shared reserve. The
 * doorbells are those of the consumer's and the producer's workers.
 * Returns 0 or -errno (-ENOBUFS: the pool is short) with the trail set.
 */
int weir_chan_init(struct weir_chan *c, struct weir_pool *pool, uint32_t credits, uint32_t max_floating,
		   struct weir_doorbell *consumer_db, struct weir_doorbell *producer_db);
/* Return every segment the channel holds to the pool and free it. Both
 * ends must be stopped and must have recycled or given back what they
 * held. */
void weir_chan_release(struct weir_chan *c);

/* Producer: true when a send would stay within the credit. */
bool weir_chan_can_send(struct weir_chan *c);
/* Producer: an empty segment. 0: within credit; 1: floating (over credit);
 * -ENOBUFS: the pool has none left, or this channel holds max_floating. */
int weir_chan_acquire(struct weir_chan *c, weir_seg *seg);
/* Producer: take back a segment acquired but not sent. */
void weir_chan_recycle(struct weir_chan *c, weir_seg seg);
/* Producer: publish a filled segment / an event. 0, or -EAGAIN when the
 * data ring is full (the engine sizes rings so that it is not). */
int weir_chan_send(struct weir_chan *c, weir_seg seg, uint32_t len);
int weir_chan_send_event(struct weir_chan *c, uint32_t code, uint64_t val);

/* Consumer, after the producer's last message (it will never touch the
 * channel again): take over the producer's side and send its floating
 * segments home to the pool. */
void weir_chan_settle(struct weir_chan *c);
/* Consumer: 1 and *m filled, 0 when empty, -EPROTO when the message is
 * malformed (unknown kind, a descriptor outside the pool, a length beyond
 * the segment): the slot is read once and validated before use. */
int weir_chan_recv(struct weir_chan *c, struct weir_chan_msg *m);
/* Consumer: hand a read segment back to the producer. */
void weir_chan_give(struct weir_chan *c, weir_seg seg);
/* Consumer: messages waiting. */
static inline uint32_t weir_chan_pending(const struct weir_chan *c)
{
	return weir_ring_count(&c->r->data);
}

#endif
