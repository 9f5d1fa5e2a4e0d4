/* engine/io/record.c - see record.h for the format. */
#include "io/record.h"
#include "base/clock.h"
#include "base/err.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

struct rec_hdr {
	uint32_t len;
	uint32_t kind;
	int64_t ts;
};
_Static_assert(sizeof(struct rec_hdr) == WEIR_REC_HDR, "record header is 16 bytes");

void weir_writer_init(struct weir_writer *w, struct weir_chan *ch)
{
	memset(w, 0, sizeof(*w));
	w->ch = ch;
	w->seg = WEIR_SEG_NONE;
}

/* Make w->seg a fresh segment to fill. */
static int next_segment(struct weir_writer *w)
{
	int r;
	while ((r = weir_chan_acquire(w->ch, &w->seg)) < 0) {
		if (!w->wait_for_segment) {
			w->seg = WEIR_SEG_NONE;
			return weir_err_set("segment pool exhausted");
		}
		if (w->wait_for_segment(w, w->wait_arg) < 0) {
			w->seg = WEIR_SEG_NONE;
			return weir_err_set("stopped while waiting for a segment");
		}
	}
	if (r == 1 && w->overdraft)
		*w->overdraft = true;
	w->buf = weir_pool_addr(w->ch->pool, w->seg);
	w->cap = w->ch->pool->seg_size;
	w->used = 0;
	w->first_ns = weir_now_ns(); /* the buffer timeout counts from here */
	return 0;
}

int weir_writer_flush(struct weir_writer *w)
{
	if (w->seg == WEIR_SEG_NONE)
		return 0;
	if (w->used == 0) {
		weir_chan_recycle(w->ch, w->seg);
	} else if (weir_chan_send(w->ch, w->seg, w->used) < 0) {
		/* Cannot happen: the ring holds every segment the channel may own. */
		return weir_err_set("channel data ring full");
	}
	w->seg = WEIR_SEG_NONE;
	w->used = 0;
	return 0;
}

void weir_writer_discard(struct weir_writer *w)
{
	if (w->seg != WEIR_SEG_NONE)
		weir_chan_recycle(w->ch, w->seg);
	w->seg = WEIR_SEG_NONE;
	w->used = 0;
}

int weir_writer_marker(struct weir_writer *w, enum weir_rec_kind kind, int64_t ts)
{
	if (w->seg != WEIR_SEG_NONE && w->cap - w->used < WEIR_REC_HDR && weir_writer_flush(w) < 0)
		return -1;
	if (w->seg == WEIR_SEG_NONE && next_segment(w) < 0)
		return -1;
	struct rec_hdr h = { .len = 0, .kind = kind, .ts = ts };
	memcpy(w->buf + w->used, &h, sizeof(h));
	w->used += WEIR_REC_HDR;
	return 0;
}

int weir_writer_put(struct weir_writer *w, const void *data, uint32_t len, int64_t ts)
{
	uint32_t need = WEIR_REC_HDR + weir_rec_pad(len);
	if (w->seg != WEIR_SEG_NONE && w->cap - w->used < need &&
	    (w->used > 0 && (need <= w->cap || w->cap - w->used < WEIR_REC_HDR)))
		if (weir_writer_flush(w) < 0)
			return -1;
	if (w->seg == WEIR_SEG_NONE && next_segment(w) < 0)
		return -1;
	struct rec_hdr h = { .len = len, .kind = WEIR_KIND_RECORD, .ts = ts };
	memcpy(w->buf + w->used, &h, sizeof(h));
	w->used += WEIR_REC_HDR;
	w->records++;
	if (need <= w->cap - w->used + WEIR_REC_HDR) {
		memcpy(w->buf + w->used, data, len);
		w->used += weir_rec_pad(len);
		return 0;
	}
	/* Larger than what is left: the bytes span the following segments. */
	const uint8_t *p = data;
	uint32_t left = len;
	for (;;) {
		uint32_t n = w->cap - w->used < left ? w->cap - w->used : left;
		memcpy(w->buf + w->used, p, n);
		p += n;
		left -= n;
		w->used += n;
		if (left == 0)
			break;
		if (weir_writer_flush(w) < 0 || next_segment(w) < 0)
			return -1;
	}
	/* Pad the tail so the next header is aligned; a full segment goes. */
	uint32_t pad = weir_rec_pad(w->used) - w->used;
	if (w->used + pad > w->cap)
		pad = w->cap - w->used;
	w->used += pad;
	if (w->cap - w->used < WEIR_REC_HDR)
		return weir_writer_flush(w);
	return 0;
}

void weir_reader_init(struct weir_reader *r, struct weir_chan *ch, uint32_t max_record)
{
	memset(r, 0, sizeof(*r));
	r->ch = ch;
	r->seg = WEIR_SEG_NONE;
	r->max_record = max_record;
}

void weir_reader_release(struct weir_reader *r)
{
	if (r->seg != WEIR_SEG_NONE)
		weir_chan_give(r->ch, r->seg);
	r->seg = WEIR_SEG_NONE;
	free(r->scratch);
	r->scratch = NULL;
	r->scratch_cap = 0;
	r->span_len = 0;
}

static void done_segment(struct weir_reader *r)
{
	weir_chan_give(r->ch, r->seg);
	r->seg = WEIR_SEG_NONE;
}

int weir_reader_next(struct weir_reader *r, weir_rec *rec, uint32_t *code, uint64_t *val)
{
	for (;;) {
		if (r->seg == WEIR_SEG_NONE) {
			struct weir_chan_msg m;
			int n = weir_chan_recv(r->ch, &m);
			if (n <= 0)
				return n;
			if (m.kind == WEIR_MSG_EVENT) {
				if (r->span_len)
					return weir_err_set("channel: event inside a spanning record");
				*code = m.seg;
				*val = m.val;
				return WEIR_READ_EVENT;
			}
			r->seg = m.seg;
			r->buf = weir_pool_addr(r->ch->pool, m.seg);
			r->len = (uint32_t)m.val;
			r->off = 0;
		}
		if (r->span_len) {
			/* Continuation bytes of a spanning record start at 0. */
			uint32_t want = r->span_len - r->span_have;
			uint32_t n = r->len < want ? r->len : want;
			memcpy(r->scratch + r->span_have, r->buf, n);
			r->span_have += n;
			r->off = weir_rec_pad(n);
			if (r->off >= r->len)
				done_segment(r);
			if (r->span_have < r->span_len)
				continue;
			rec->data = r->scratch;
			rec->len = r->span_len;
			rec->ts = r->span_ts;
			r->span_len = 0;
			return WEIR_READ_RECORD;
		}
		if (r->len - r->off < WEIR_REC_HDR) {
			done_segment(r);
			continue;
		}
		struct rec_hdr h;
		memcpy(&h, r->buf + r->off, sizeof(h));
		r->off += WEIR_REC_HDR;
		if (h.kind != WEIR_KIND_RECORD) {
			if (h.kind > WEIR_KIND_BARRIER || h.len != 0)
				return weir_err_set("channel: unknown marker kind %u (length %u)", h.kind, h.len);
			*code = WEIR_EV_MARKER + h.kind;
			*val = (uint64_t)h.ts;
			return WEIR_READ_EVENT;
		}
		if (h.len > r->max_record)
			return weir_err_set("channel: record of %u bytes exceeds the maximum of %u", h.len,
					    r->max_record);
		if (h.len <= r->len - r->off) {
			rec->data = r->buf + r->off;
			rec->len = h.len;
			rec->ts = h.ts;
			/* The segment goes back on the next call, after the
			 * operator is done with the record. */
			r->off += weir_rec_pad(h.len);
			if (r->off > r->len)
				r->off = r->len;
			return WEIR_READ_RECORD;
		}
		/* A record spanning into the next segments. */
		if (h.len > r->scratch_cap) {
			uint32_t cap = r->scratch_cap ? r->scratch_cap : 4096;
			while (cap < h.len)
				cap = cap > UINT32_MAX / 2 ? h.len : cap * 2;
			void *s = NULL;
			if (posix_memalign(&s, 8, cap))
				return weir_err_set("reader: out of memory for a %u-byte record", h.len);
			free(r->scratch);
			r->scratch = s;
			r->scratch_cap = cap;
		}
		uint32_t n = r->len - r->off;
		memcpy(r->scratch, r->buf + r->off, n);
		r->span_len = h.len;
		r->span_have = n;
		r->span_ts = h.ts;
		done_segment(r);
	}
}
