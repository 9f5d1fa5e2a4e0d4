/* engine/io/record.c - see record.h for the format. */
#include "io/record.h"
#include "base/clock.h"
#include "base/err.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

struct rec_hdr {
	uint32_t lk;		/* len | kind << 28 */
	uint32_t khash;
	int64_t ts;
};
_Static_assert(sizeof(struct rec_hdr) == WEIR_REC_HDR, "record header is 16 bytes");

static inline uint32_t hdr_len(const struct rec_hdr *h) { return h->lk & WEIR_REC_LEN_MAX; }
static inline uint32_t hdr_kind(const struct rec_hdr *h) { return h->lk >> 28; }

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
	bool waited = false;
	while ((r = weir_chan_acquire(w->ch, &w->seg)) < 0) {
		waited = true;
		if (!w->wait_for_segment) {
			w->seg = WEIR_SEG_NONE;
			return weir_err_set("segment pool exhausted");
		}
		if (w->wait_for_segment(w, w->wait_arg) < 0) {
			w->seg = WEIR_SEG_NONE;
			return weir_err_set("stopped while waiting for a segment");
		}
	}
	if (waited && w->waited)
		w->waited(w, w->wait_arg);
	if (r == 1 && w->overdraft)
		*w->overdraft = true;
	w->buf = weir_pool_addr(w->ch->pool, w->seg);
	w->cap = w->ch->pool->seg_size;
	uint32_t hint = weir_chan_fill_hint(w->ch);
	w->fill = hint && hint < w->cap ? hint : w->cap;
	w->used = 0;
	w->first_ns = weir_now_ns(); /* the buffer timeout counts from here */
	w->mark_ns = 0;
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
	__atomic_store_n(&w->bytes, w->bytes + w->used, __ATOMIC_RELAXED);
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
	struct rec_hdr h = { .lk = (uint32_t)kind << 28, .khash = 0, .ts = ts };
	memcpy(w->buf + w->used, &h, sizeof(h));
	if (kind == WEIR_KIND_WATERMARK && !w->mark_ns)
		w->mark_ns = weir_now_ns(); /* a marker per step at most: one clock read */
	w->used += WEIR_REC_HDR;
	return 0;
}

int weir_writer_put_hash(struct weir_writer *w, const void *data, uint32_t len, int64_t ts, uint32_t khash)
{
	if (__builtin_expect(len > WEIR_REC_LEN_MAX, 0))
		return weir_err_set("a record of %u bytes is longer than a segment header can say (%u)", len,
				    WEIR_REC_LEN_MAX);
	uint32_t need = WEIR_REC_HDR + weir_rec_pad(len);
	if (w->seg != WEIR_SEG_NONE && w->cap - w->used < need &&
	    (w->used > 0 && (need <= w->cap || w->cap - w->used < WEIR_REC_HDR)))
		if (weir_writer_flush(w) < 0)
			return -1;
	if (w->seg == WEIR_SEG_NONE && next_segment(w) < 0)
		return -1;
	struct rec_hdr h = { .lk = len, .khash = khash, .ts = ts };
	memcpy(w->buf + w->used, &h, sizeof(h));
	w->used += WEIR_REC_HDR;
	w->records++;
	if (need <= w->cap - w->used + WEIR_REC_HDR) {
		memcpy(w->buf + w->used, data, len);
		w->used += weir_rec_pad(len);
		/* full as the consumer wants it (debloating): send it now */
		return __builtin_expect(w->used >= w->fill, 0) ? weir_writer_flush(w) : 0;
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

void weir_reader_debloat(struct weir_reader *r, uint64_t now_ns, uint64_t target_ns)
{
	uint32_t credits = r->ch->r->credits;
	if (!r->rate_ns) {
		r->rate_ns = now_ns;
		return;
	}
	uint64_t dt = now_ns - r->rate_ns;
	if (dt < 1000000u)
		return;
	/* bytes a second, times the target, shared among the credits */
	double fill = (double)r->rate_bytes / (double)dt * (double)target_ns / (credits ? credits : 1);
	uint32_t seg = r->ch->pool->seg_size;
	uint32_t want = fill >= seg ? seg : fill <= 4096 ? 4096 : (uint32_t)fill;
	if (want >= seg)
		want = 0; /* whole segments */
	if (want != weir_chan_fill_hint(r->ch))
		weir_chan_set_fill_hint(r->ch, want);
	r->rate_bytes = 0;
	r->rate_ns = now_ns;
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

/* Hand the key hashes of the records ahead of r->off (to WEIR_READ_AHEAD
 * bytes) to r->prefetch, each once. Headers are only read, never trusted:
 * a bad one ends the scan, and weir_reader_next reports it when it gets
 * there. */
static void look_ahead(struct weir_reader *r)
{
	uint32_t until = r->len - r->off > WEIR_READ_AHEAD ? r->off + WEIR_READ_AHEAD : r->len;
	if (r->ahead_off < r->off)
		r->ahead_off = r->off;
	while (r->ahead_off < until && r->len - r->ahead_off >= WEIR_REC_HDR) {
		struct rec_hdr h;
		memcpy(&h, r->buf + r->ahead_off, sizeof(h));
		uint32_t n = WEIR_REC_HDR + weir_rec_pad(hdr_len(&h));
		if (hdr_kind(&h) == WEIR_KIND_RECORD && h.khash)
			r->prefetch(r->prefetch_arg, h.khash);
		r->ahead_off = n < r->len - r->ahead_off ? r->ahead_off + n : r->len;
	}
}

static void done_segment(struct weir_reader *r)
{
	r->rate_bytes += r->len;
	__atomic_store_n(&r->bytes, r->bytes + r->len, __ATOMIC_RELAXED);
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
			r->ahead_off = 0;
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
			r->khash = r->span_khash;
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
		uint32_t kind = hdr_kind(&h), len = hdr_len(&h);
		if (kind != WEIR_KIND_RECORD) {
			if (kind > WEIR_KIND_LATENCY || len != 0)
				return weir_err_set("channel: unknown marker kind %u (length %u)", kind, len);
			*code = WEIR_EV_MARKER + kind;
			*val = (uint64_t)h.ts;
			return WEIR_READ_EVENT;
		}
		if (len > r->max_record)
			return weir_err_set("channel: record of %u bytes exceeds the maximum of %u", len,
					    r->max_record);
		if (len <= r->len - r->off) {
			rec->data = r->buf + r->off;
			rec->len = len;
			rec->ts = h.ts;
			r->khash = h.khash;
			/* The segment goes back on the next call, after the
			 * operator is done with the record. */
			r->off += weir_rec_pad(len);
			if (r->off > r->len)
				r->off = r->len;
			if (r->prefetch)
				look_ahead(r);
			return WEIR_READ_RECORD;
		}
		/* A record spanning into the next segments. */
		if (len > r->scratch_cap) {
			uint32_t cap = r->scratch_cap ? r->scratch_cap : 4096;
			while (cap < len)
				cap = cap > UINT32_MAX / 2 ? len : cap * 2;
			void *s = NULL;
			if (posix_memalign(&s, 8, cap))
				return weir_err_set("reader: out of memory for a %u-byte record", len);
			free(r->scratch);
			r->scratch = s;
			r->scratch_cap = cap;
		}
		uint32_t n = r->len - r->off;
		memcpy(r->scratch, r->buf + r->off, n);
		r->span_len = len;
		r->span_have = n;
		r->span_ts = h.ts;
		r->span_khash = h.khash;
		done_segment(r);
	}
}
