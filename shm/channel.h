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
 * of descriptors, so it can live in memory both ends map: in private
 * memory between threads (weir_chan_init), or in a named shared-memory
 * file between processes (weir_chan_create_shm by the producer, whose pool
 * the segments come from; weir_chan_attach_shm by the consumer, which maps
 * that pool). Between processes the region also carries the two ends'
 * doorbells, and the file's lock bytes say whether each end lives: byte 0
 * the producer's, byte 1 the consumer's, held by the kernel for as long
 * as the process lives.
 *
 * The producer remembers which segments it sent and has not had back, so
 * a segment handed back twice, or one it never sent, is refused, and when
 * the consumer dies every segment of the channel goes home to the pool.
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


#define WEIR_CHAN_MAGIC 0x5745495243484e4cull /* "WEIRCHNL" */
#define WEIR_CHAN_VERSION 1

struct weir_chan_region {
	uint64_t magic;			/* written last (release) */
	uint32_t version;
	uint32_t credits;
	uint32_t max_floating;
	uint32_t data_size;		/* slots in the data ring */
	uint32_t ret_size;
	uint32_t pool_id;		/* the producer's pool */
	uint32_t consumer_attached;	/* set once a consumer holds lock byte 1 */
	uint32_t sealed;		/* the producer let go: no consumer may attach (weir_chan_seal) */
	uint64_t announced;		/* atomic: the producer's announcement (weir_chan_announce) */
	uint32_t fill_hint;		/* atomic: the consumer's wish for segment fill (weir_chan_fill_hint) */
	uint32_t pad[3];
	struct weir_doorbell db[2];	/* consumer's, producer's (between processes) */
	struct ck_ring data;		/* producer -> consumer */
	struct ck_ring ret;		/* consumer -> producer: emptied segments */
	/* struct weir_chan_msg data_buf[data_size]; then
	 * struct weir_seg_slot ret_buf[ret_size]; */
};

struct weir_chan_stats {
	uint64_t segs_sent;
	uint64_t bytes_sent;
	uint64_t events_sent;
	uint64_t floating_taken;	/* segments taken beyond the credit */
	uint64_t bad_returns;		/* handed back but not ours to take */
};

/* A consumer in the producer's process that would rather be called than
 * rung (see weir_chan.kick). */
struct weir_chan_kick {
	void (*fn)(struct weir_chan_kick *k);
};

struct weir_chan {
	struct weir_chan_region *r;
	struct weir_chan_msg *data_buf;
	struct weir_seg_slot *ret_buf;
	struct weir_pool *pool;
	struct weir_doorbell *consumer_db;	/* rung after send */
	struct weir_doorbell *producer_db;	/* rung after give */
	/* Called on the producer's thread instead of ringing consumer_db after
	 * a send, an event or an announcement, when set (NULL: rung): the
	 * exchange (net/exchange.h) then writes the segment to its socket on
	 * that thread. Its consumer sets it (release) while the producer may
	 * run, and keeps it valid until the producer is done with the channel. */
	struct weir_chan_kick *kick;
	/* Likewise on the consumer's thread instead of ringing producer_db
	 * after a give (the exchange rings itself only when it has credit to
	 * grant). Its producer sets it, with the same rules. */
	struct weir_chan_kick *give_kick;
	/* producer side only */
	weir_seg *spare;	/* empty segments ready to fill */
	uint32_t nspare;
	weir_seg *out;		/* sent and not yet handed back */
	uint32_t nout;
	uint32_t owned;		/* segments charged to this channel */
	uint32_t credits;
	uint32_t max_owned;	/* credits + max_floating */
	bool consumer;		/* this handle is the consumer's (attached) */
	bool producer_stays;	/* its producer goes on after END (an exchange that still grants
				 * credit): weir_chan_settle leaves the producer's side alone */
	struct weir_shm shm;	/* the region's file, between processes */
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
/* Producer, between processes: a channel in the shared-memory file `name`
 * whose segments come from pool (a shared pool of this process); its pages
 * are reserved (weir_shm_reserve). The doorbells are the region's own. 0
 * or -errno with the trail set. */
int weir_chan_create_shm(struct weir_chan *c, const char *name, struct weir_pool *pool, uint32_t credits,
			 uint32_t max_floating);
/* Consumer, between processes: attach to the channel in `name`, whose
 * segments are in producer_pool (mapped with weir_pool_attach). Refuses a
 * region that is truncated, of another version, not ready, inconsistent,
 * of another pool, or that already has a live consumer. */
int weir_chan_attach_shm(struct weir_chan *c, const char *name, struct weir_pool *producer_pool);
/* Does the other end live? (Always true between threads.) */
bool weir_chan_peer_alive(const struct weir_chan *c);
/* Producer, between processes: from now on no consumer may attach (one
 * that tries is refused). After it, weir_chan_consumer_holds false means
 * that no consumer reads the channel's segments, now or later. */
void weir_chan_seal(struct weir_chan *c);
/* Producer, between processes: does a consumer hold the channel open now
 * (its lock byte)? False once it released the channel or died, after which
 * it reads none of the channel's segments again. */
bool weir_chan_consumer_holds(const struct weir_chan *c);
/* Producer: return every segment the channel holds (spare, sent and not
 * handed back, whatever the rings say) to the pool, and free it; the
 * creator of a shared region removes its file. Consumer: unmap. Both
 * ends must be stopped, or the other end dead. */
void weir_chan_release(struct weir_chan *c);

/* Producer: true when a send would stay within the credit. */
bool weir_chan_can_send(struct weir_chan *c);
/* Producer: an empty segment. 0: within credit; 1: floating (over credit);
 * -ENOBUFS: the pool has none left, or this channel holds max_floating. */
int weir_chan_acquire(struct weir_chan *c, weir_seg *seg);
/* Producer: take back what the consumer handed back; the exclusive
 * segments ready to fill now (an acquire of that many returns 0 each). */
uint32_t weir_chan_spare(struct weir_chan *c);
/* Producer: take back a segment acquired but not sent. */
void weir_chan_recycle(struct weir_chan *c, weir_seg seg);
/* Producer: publish a filled segment / an event. 0, or -EAGAIN when the
 * data ring is full (the engine sizes rings so that it is not). */
int weir_chan_send(struct weir_chan *c, weir_seg seg, uint32_t len);
int weir_chan_send_event(struct weir_chan *c, uint32_t code, uint64_t val);
/* Producer: publish v ahead of the data (outside the rings, so it needs no
 * room in them and overtakes every message in flight), and ring the
 * consumer. Values only grow; the meaning is the layer above's (the engine:
 * the newest checkpoint barrier sent, for unaligned checkpoints). */
void weir_chan_announce(struct weir_chan *c, uint64_t v);
/* Buffer debloating: the consumer says how many bytes a segment should
 * hold before it is sent (0: full segments), so that what its credits hold
 * in flight stays near a time it chose; the producer reads it when it
 * starts a segment. A hint: relaxed, either side may be another process. */
static inline void weir_chan_set_fill_hint(struct weir_chan *c, uint32_t bytes)
{
	__atomic_store_n(&c->r->fill_hint, bytes, __ATOMIC_RELAXED);
}
static inline uint32_t weir_chan_fill_hint(const struct weir_chan *c)
{
	return __atomic_load_n(&c->r->fill_hint, __ATOMIC_RELAXED);
}
/* Consumer: the newest value announced (0: none). */
static inline uint64_t weir_chan_announced(const struct weir_chan *c)
{
	return __atomic_load_n(&c->r->announced, __ATOMIC_ACQUIRE);
}

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
