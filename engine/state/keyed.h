/*
 * engine/state/keyed.h - the keyed state backend of one operator instance:
 * one table (kv.h) whose keys are composites
 *     [u8 state id][u8 namespace length][u16 key length][key][namespace]
 * so that every state of every key (and, for windows, of every window: the
 * namespace) is one entry, reached in one lookup; and two timer heaps
 * (event time, processing time) ordered by (time, seq): 24-byte entries
 * pointing into a slab where each timer stays put while it is pending, so
 * a sift moves small entries and a snapshot can follow the timers by slot
 * (keyed.c). A timer may also
 * be an entry of the table (state id KEYED_TIMER_STATE), which makes
 * registration idempotent and deletion a table delete (operators/keyed.h
 * says who uses which).
 *
 * Snapshots are copy-on-write, as the table's (kv.h): keyed_cow_begin
 * marks, keyed_cow_step serializes, every write saves its chunk first.
 *
 * Threads: one operator instance's, the subtask's worker.
 */
#ifndef WEIR_ENGINE_STATE_KEYED_H
#define WEIR_ENGINE_STATE_KEYED_H

#include "graph/keygroup.h"
#include "state/kv.h"
#include "state/snapshot.h"

#include <weir/weir.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#define KEYED_TIMER_STATE 0xffu
#define KEYED_MAX_KEY 0xffffu	/* keys of keyed operators: at most 64 KiB - 1 */
#define KEYED_TIMER_INLINE 40

struct keyed_timer {
	int64_t time;
	uint64_t seq;
	uint32_t cklen;
	bool dedup;		/* has a table entry (keyed_timer), or not (keyed_timer_once) */
	bool live;		/* in the slab: pending (else a free slot) */
	union {			/* the timer's composite key: inline when short */
		uint8_t inl[KEYED_TIMER_INLINE];
		uint8_t *ptr;
	} ck;
};

/* A heap entry: what orders it, where its timer is in the slab, and the
 * high half of its key's hash (in the padding: the next timer's state is
 * prefetched with it, and firing need not hash the key again). The heap
 * moves 24 bytes a step, never the timer (64). */
struct heap_ent {
	int64_t time;
	uint64_t seq;
	uint32_t slot;
	uint32_t key_hi;
};

struct heap_cow;

struct keyed_heap {
	struct heap_ent *v;	/* the 4-ary min-heap by (time, seq) (keyed.c) */
	uint32_t n;
	uint32_t cap;
	struct keyed_timer *slab;	/* timers by slot; a slot stays put while its timer lives */
	uint32_t nslab;			/* slots in use or freed (the high-water mark) */
	uint32_t slab_cap;
	uint32_t *free;			/* freed slots, reused first */
	uint32_t nfree;
	uint32_t free_cap;
	struct heap_cow *cow;	/* a snapshot in progress, or NULL (as in state.h) */
};

struct keyed {
	struct weir_kv kv;
	struct keyed_heap heap[2];	/* by enum weir_time_domain */
	uint64_t seq;
	uint8_t *ck;			/* scratch for composite keys */
	uint32_t ckcap;
	/* the current key while a callback runs, and the high half of its
	 * hash (weir_key_hash) */
	const uint8_t *key;
	uint32_t klen;
	uint32_t key_hi;
	/* windows: the window a callback is about */
	bool in_window;
	int64_t win_start;
	int64_t win_end;
};

void keyed_init(struct keyed *k);
void keyed_release(struct keyed *k);

/* The composite key of (state, the current key k->key, ns) in k's scratch
 * buffer; its length in *len, or NULL when out of memory. */
const uint8_t *keyed_composite(struct keyed *k, unsigned state, const void *ns, uint32_t nslen, uint32_t *len);
/* The table's hash of composite key ck (kv.h): the high half is key_hi,
 * that of the user key inside it, so that a key's entries sit together;
 * the low half tells them apart (state id and namespace). */
static inline uint64_t keyed_ck_hash_with(uint32_t key_hi, const uint8_t *ck, uint32_t n)
{
	uint16_t klen;
	memcpy(&klen, ck + 2, 2);
	uint64_t seed = (uint64_t)ck[0] | (uint64_t)ck[1] << 8;
	return (uint64_t)key_hi << 32 | (uint32_t)XXH3_64bits_withSeed(ck + 4 + klen, n - 4u - klen, seed);
}
/* The same, from ck alone (a timer's, a restored entry's); a malformed ck
 * (shorter than its key) gets a hash of all its bytes. */
uint64_t keyed_ck_hash(const void *ck, uint32_t n);
/* The high half of a user key's hash. */
static inline uint32_t keyed_key_hi(const void *key, uint32_t klen)
{
	return (uint32_t)(weir_key_hash(key, klen) >> 32);
}
/* Push a timer for composite key ck (dedup: it has a table entry). 0 or -1. */
int keyed_push_timer(struct keyed *k, enum weir_time_domain d, int64_t time, const uint8_t *ck, uint32_t n, bool dedup);
/* Pop the earliest timer of h (h->n > 0); the caller frees a long key. */
struct keyed_timer keyed_heap_pop(struct keyed_heap *h);
/* Start loading what firing the earliest timer of h will read: its slab
 * slot and its key's home slot in the table. */
void keyed_heap_prefetch(const struct keyed *k, const struct keyed_heap *h);
static inline const uint8_t *keyed_timer_key(const struct keyed_timer *t)
{
	return t->cklen <= KEYED_TIMER_INLINE ? t->ck.inl : t->ck.ptr;
}
/* Append one list item ([u32 len][u32 0][i64 ts][bytes, pad 8]) to the
 * value of slot; 0 or -1. */
int keyed_list_append(struct kv_slot *s, const void *data, uint32_t len, int64_t ts);

/* Snapshot, copy-on-write (engine/state/kv.h): the table's entries, then
 * every pending timer, each tagged with its key group, as they are now.
 * The counts go to kv_head and t_head at once; the entries to kv and t
 * (which must stay where they are) by keyed_cow_step, or before the
 * first write that would change them. */
void keyed_cow_begin(struct keyed *k, struct snapbuf *kv_head, struct snapbuf *kv, struct snapbuf *t_head,
		     struct snapbuf *t, const struct weir_kg_map *m);
/* Serialize up to `chunks` pending chunks of each; true when done. */
bool keyed_cow_step(struct keyed *k, uint32_t chunks);
/* Forget a snapshot in progress. */
void keyed_cow_drop(struct keyed *k);
/* Restore what keyed_snapshot wrote, keeping only key groups in
 * [kg_lo, kg_hi) (a subtask's share after rescaling). 0, or -1 when the
 * bytes are malformed or memory ran out. */
int keyed_restore(struct keyed *k, struct snapreader *r, const struct weir_kg_map *m, uint32_t kg_lo, uint32_t kg_hi);


#endif
