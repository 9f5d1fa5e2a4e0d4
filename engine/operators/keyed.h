/*
 * engine/operators/keyed.h - keyed operators: state scoped to the current key, and
 * timers.
 *
 * A keyed operator (OP_KEYED) is a process function, a window or a join.
 * Its behaviour is a keyed_impl: what to do with a record of input side 0
 * or 1, and what to do when a timer fires. Around it the engine keeps, per
 * operator instance:
 *
 *  - one state table (engine/state/kv.h) whose keys are composites
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
#ifndef WEIR_ENGINE_OPERATORS_KEYED_H
#define WEIR_ENGINE_OPERATORS_KEYED_H

#include "state/keyed.h"

#include <weir/weir.h>
#include <stdbool.h>
#include <stdint.h>


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

/* a + b, saturated at the int64 ends (times plus lateness, gaps, bounds) */
static inline int64_t sat_add(int64_t a, int64_t b)
{
	int64_t r;
	return __builtin_add_overflow(a, b, &r) ? (b > 0 ? INT64_MAX : INT64_MIN) : r;
}

#endif
