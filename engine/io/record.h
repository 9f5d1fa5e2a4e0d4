/*
 * engine/io/record.h - records serialized into segments.
 *
 * A record in a segment is a 16-byte header, then its bytes, padded to a
 * multiple of 8 so that the next header and every payload are 8-byte
 * aligned (jobs may cast record data to their structs):
 *
 *     [u32 len | kind << 28][u32 key hash][i64 timestamp][len bytes][pad to 8]
 *
 * The key hash is the high half of the record's key hash (weir_key_hash)
 * on an edge partitioned by key, or 0: the producer hashed the key to pick
 * the consumer, and the consumer's keyed state finds its slot by the same
 * bits, so it neither hashes again nor waits for the slot's cache line (it
 * prefetches the slots of the records ahead; weir_reader.ahead). 0 also
 * means "not carried": the consumer hashes the key itself, which gives the
 * same bits.
 *
 * kind 0 is a record. Other kinds are markers, events that must stay in
 * order with the records around them and are too frequent to cost a ring
 * slot each: a watermark (len 0, timestamp = the watermark) and an idle
 * status. They ride in the segment like a record with no bytes, so a
 * watermark after every batch costs 16 bytes and no extra hand-off.
 *
 * A header never straddles two segments: with fewer than 16 bytes left the
 * writer sends the segment. A record that does not fit in what is left of
 * the segment starts a fresh one; only a record larger than a whole
 * segment spans several: its bytes continue at offset 0 of the following
 * segments of the same channel. The reader hands records that sit in one
 * segment to operators in place (no copy) and assembles spanning ones in
 * a scratch buffer.
 *
 * Threads: a writer belongs to the producing subtask, a reader to the
 * consuming one.
 */
#ifndef WEIR_ENGINE_RECORD_H
#define WEIR_ENGINE_RECORD_H

#include "shm/channel.h"

#include <weir/weir.h>
#include <stdbool.h>
#include <stdint.h>

#define WEIR_REC_HDR 16u
#define WEIR_REC_LEN_MAX ((1u << 28) - 1)	/* the length's bits in the header */

static inline uint32_t weir_rec_pad(uint32_t len) { return (len + 7u) & ~7u; }

enum weir_rec_kind {
	WEIR_KIND_RECORD = 0,
	WEIR_KIND_WATERMARK = 1,	/* ts: the watermark */
	WEIR_KIND_IDLE = 2,		/* the producer's stream is idle until its next record */
	WEIR_KIND_BARRIER = 3,		/* ts: a checkpoint id (engine/checkpoint/take.c) */
	WEIR_KIND_LATENCY = 4,		/* ts: when a source made it (CLOCK_REALTIME ns): latency tracking */
};

struct weir_writer {
	struct weir_chan *ch;
	weir_seg seg;		/* WEIR_SEG_NONE: none being filled */
	uint8_t *buf;
	uint32_t used;
	uint32_t cap;
	uint32_t fill;		/* send the segment once this full: cap, or the consumer's hint */
	uint64_t first_ns;	/* when the first record went into seg */
	uint64_t mark_ns;	/* when the first watermark went into seg (0: none) */
	uint64_t records;
	/* metrics: bytes of the segments sent (relaxed stores by the writer's
	 * thread, once a segment; any thread may read them) */
	uint64_t bytes;
	/* Points at a flag set when a segment had to come from beyond the
	 * credit: the subtask then stops taking input until it has credit. */
	bool *overdraft;
	/* How to wait when neither credit nor the pool has a segment; set by
	 * the runtime. -1 stops the wait (the job is stopping). */
	int (*wait_for_segment)(struct weir_writer *w, void *arg);
	/* Optional: called once a segment came after waits (metrics: the
	 * span of backpressure ends). */
	void (*waited)(struct weir_writer *w, void *arg);
	void *wait_arg;
};

void weir_writer_init(struct weir_writer *w, struct weir_chan *ch);
/* Append a record of at most WEIR_REC_LEN_MAX bytes, with the high half of
 * its key's hash (or 0). 0, or -1 with the trail set (the pool ran dry and
 * waiting failed: the job is stopping). */
int weir_writer_put_hash(struct weir_writer *w, const void *data, uint32_t len, int64_t ts, uint32_t khash);
static inline int weir_writer_put(struct weir_writer *w, const void *data, uint32_t len, int64_t ts)
{
	return weir_writer_put_hash(w, data, len, ts, 0);
}
/* Append a marker (watermark, idle) in order with the records. 0 or -1. */
int weir_writer_marker(struct weir_writer *w, enum weir_rec_kind kind, int64_t ts);
/* Send the partly filled segment, if any. 0 or -1. */
int weir_writer_flush(struct weir_writer *w);
/* Give back the segment being filled without sending it (teardown). */
void weir_writer_discard(struct weir_writer *w);

struct weir_reader {
	struct weir_chan *ch;
	weir_seg seg;		/* WEIR_SEG_NONE: between segments */
	const uint8_t *buf;
	uint32_t len;
	uint32_t off;
	/* a spanning record being assembled */
	uint8_t *scratch;
	uint32_t scratch_cap;
	uint32_t span_len;	/* 0: none */
	uint32_t span_have;
	int64_t span_ts;
	uint32_t span_khash;
	uint32_t max_record;
	/* the key hash the last record returned carried (0: none) */
	uint32_t khash;
	/* When set, called with the key hashes of the records up to
	 * WEIR_READ_AHEAD bytes after the one returned (each once, those in
	 * the same segment): the consumer's keyed state prefetches their
	 * slots while it works on this one. ahead_off: where the scan is. */
	void (*prefetch)(void *arg, uint32_t khash);
	void *prefetch_arg;
	uint32_t ahead_off;
	/* debloating (weir_reader_debloat): bytes of segments read since
	 * rate_ns */
	uint64_t rate_bytes;
	uint64_t rate_ns;
	/* metrics: bytes of the segments read (as the writer's bytes) */
	uint64_t bytes;
};

#define WEIR_READ_AHEAD 384u

void weir_reader_init(struct weir_reader *r, struct weir_chan *ch, uint32_t max_record);
void weir_reader_release(struct weir_reader *r);

enum weir_read {
	WEIR_READ_EMPTY = 0,	/* nothing waiting */
	WEIR_READ_RECORD = 1,	/* *rec is valid until the next call */
	WEIR_READ_EVENT = 2,	/* *code, *val hold an in-band event: a ring
				 * event, or a marker (code = WEIR_EV_MARKER + kind,
				 * val = its timestamp) */
};

/* Event codes. Ring events are small numbers; markers are offset. */
enum { WEIR_EV_END = 1, WEIR_EV_MARKER = 0x100 };

/* Next record or event, in channel order. <0 with the trail set when the
 * channel carries something malformed. */
int weir_reader_next(struct weir_reader *r, weir_rec *rec, uint32_t *code, uint64_t *val);
/* Buffer debloating, from the consumer's side: about every millisecond,
 * from the bytes it read since the last time, tell the producer how full
 * to send segments so that the channel's credits hold about target_ns of
 * this reader's work (at least 4 KiB a segment). Call once a step. */
void weir_reader_debloat(struct weir_reader *r, uint64_t now_ns, uint64_t target_ns);
/* True when the reader holds no partly read segment or record. */
static inline bool weir_reader_between(const struct weir_reader *r)
{
	return r->seg == WEIR_SEG_NONE && r->span_len == 0;
}

#endif
