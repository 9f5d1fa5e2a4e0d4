/*
 * engine/keyed.h - keyed operators: state scoped to the current key, and
 * timers.
 *
 * A keyed operator (OP_KEYED) is a process function, a window or a join.
 * Its behaviour is a keyed_impl: what to do with a record of input side 0
 * or 1, and what to do when a timer fires. Around it the engine keeps, per
 * operator instance:
 *
 *  - one state table (engine/state.h) whose keys are composites
 *        [u8 state id][u8 namespace length][u16 key length][key][namespace]
 *    so that every state of every key (and, for windows, of every window:
 *    the namespace) is one entry, reached in one lookup; short, so that a
 *    window's count with an 8-byte key fits a slot's inline bytes;
 *  - two timer heaps (event time, processing time) ordered by (time, seq);
 *    a timer is also an entry in the table (state id KEYED_TIMER_STATE),
 *    which makes registration idempotent and deletion a table delete: a
 *    popped timer whose entry is gone is skipped. Engine code that never
 *    registers a timer twice nor deletes one (tumbling and sliding windows)
 *    skips the entry: keyed_timer_once.
 *
 * Event-time timers fire as the operator's watermark passes them; at the
 * end of input the watermark is +infinity and every remaining timer fires,
 * processing-time ones included (so no window of a bounded job is lost).
 */
#ifndef WEIR_ENGINE_KEYED_H
#define WEIR_ENGINE_KEYED_H

#include "engine/keygroup.h"
#include "engine/snapshot.h"
#include "engine/state.h"

#include <weir/weir.h>
#include <stdbool.h>
#include <stdint.h>

#define KEYED_TIMER_STATE 0xffu
#define KEYED_MAX_KEY 0xffffu	/* keys of keyed operators: at most 64 KiB - 1 */
#define KEYED_TIMER_INLINE 40

struct opinst;
struct subtask;
struct input;
struct node;

struct keyed_impl {
	/* A record from input side 0 or 1; the current key is set. */
	int (*element)(weir_ctx *ctx, const weir_rec *in, int side);
	/* A timer of the current key; ns is the namespace it was registered
	 * with (empty for user timers). */
	int (*timer)(weir_ctx *ctx, int64_t time, enum weir_time_domain domain, const uint8_t *ns, uint32_t nslen);
};

struct keyed_timer {
	int64_t time;
	uint64_t seq;
	uint32_t cklen;
	bool dedup;		/* has a table entry (keyed_timer), or not (keyed_timer_once) */
	union {			/* the timer's composite key: inline when short */
		uint8_t inl[KEYED_TIMER_INLINE];
		uint8_t *ptr;
	} ck;
};

struct heap_cow;

struct keyed_heap {
	struct keyed_timer *v;
	uint32_t n;
	uint32_t cap;
	struct heap_cow *cow;	/* a snapshot in progress, or NULL (as in state.h) */
};

struct keyed {
	struct weir_kv kv;
	struct keyed_heap heap[2];	/* by enum weir_time_domain */
	uint64_t seq;
	uint8_t *ck;			/* scratch for composite keys */
	uint32_t ckcap;
	/* the current key while a callback runs */
	const uint8_t *key;
	uint32_t klen;
	/* windows: the window a callback is about */
	bool in_window;
	int64_t win_start;
	int64_t win_end;
};

void keyed_init(struct keyed *k);
void keyed_release(struct keyed *k);

/* Deliver a record of input `in` to a keyed operator. */
int keyed_deliver(struct opinst *op, const weir_rec *rec, const struct input *in);
/* Fire event-time timers up to wm (all of them for WEIR_WATERMARK_MAX). */
int keyed_advance(struct opinst *op, int64_t wm);
/* Fire processing-time timers up to now_ms (all for INT64_MAX). */
int keyed_fire_processing(struct opinst *op, int64_t now_ms);
/* The earliest pending processing-time timer, or INT64_MAX. */
int64_t keyed_next_processing(const struct opinst *op);

/* For windows and joins (engine code): state and timers of the current key
 * in a namespace. */
struct kv_slot *keyed_get(struct opinst *op, int state, const void *ns, uint32_t nslen);
struct kv_slot *keyed_put(struct opinst *op, int state, const void *ns, uint32_t nslen, const void *data,
			  uint32_t len);
void keyed_del(struct opinst *op, int state, const void *ns, uint32_t nslen);
int keyed_timer(struct opinst *op, enum weir_time_domain d, int64_t time, const void *ns, uint32_t nslen,
		bool add);
/* A timer its caller guarantees to register once and never delete: no
 * table entry, so one heap push instead of two table operations. */
int keyed_timer_once(struct opinst *op, enum weir_time_domain d, int64_t time, const void *ns, uint32_t nslen);
/* Append one list item ([u32 len][u32 0][i64 ts][bytes, pad 8]) to the
 * value of slot; 0 or -1. */
int keyed_list_append(struct kv_slot *s, const void *data, uint32_t len, int64_t ts);

/* Build a keyed operator node on one or two keyed streams (env.c). */
struct node *weir_keyed_node(weir_stream *a, weir_stream *b, const char *name, const struct keyed_impl *impl);

/* Snapshot, copy-on-write (engine/state.h): the table's entries, then
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

/* a + b, saturated at the int64 ends (times plus lateness, gaps, bounds) */
static inline int64_t sat_add(int64_t a, int64_t b)
{
	int64_t r;
	return __builtin_add_overflow(a, b, &r) ? (b > 0 ? INT64_MAX : INT64_MIN) : r;
}

#endif
