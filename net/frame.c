/*
 * net/frame.c - frame codec; see frame.h.
 *
 * The decoder is a two-state machine: collecting the 8 header bytes, then
 * collecting `need` payload bytes. A frame that lies whole inside the
 * chunk, with nothing held from before, is handed to the callback straight
 * from the chunk (no copy); only frames that straddle chunks are gathered
 * in buf. Every length is checked against the limit before any byte of
 * payload is counted, and all arithmetic on lengths is done in size_t from
 * values already bounded by WEIR_FRAME_MAX_LIMIT, so nothing can wrap.
 */
#include "net/frame.h"

#include "base/err.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint16_t get16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }

int weir_frame_dec_init(struct weir_frame_dec *d, uint32_t max)
{
	memset(d, 0, sizeof(*d));
	if (max > WEIR_FRAME_MAX_LIMIT) {
		weir_err_set("frame decoder: limit %u exceeds %u", max, WEIR_FRAME_MAX_LIMIT);
		return -EINVAL;
	}
	d->max = max ? max : WEIR_FRAME_MAX_DEFAULT;
	return 0;
}

void weir_frame_dec_release(struct weir_frame_dec *d)
{
	free(d->buf);
	d->buf = NULL;
	d->cap = d->have = 0;
}

bool weir_frame_dec_idle(const struct weir_frame_dec *d) { return d->hlen == 0; }

static int fail(struct weir_frame_dec *d, int err)
{
	d->err = err;
	return err;
}

/* The header in d->hdr is complete: check it and start the payload. */
static int header_done(struct weir_frame_dec *d)
{
	uint32_t len = get32(d->hdr);
	uint16_t ver = get16(d->hdr + 4);
	if (ver == 0 || ver > WEIR_FRAME_VERSION) {
		weir_err_set("frame: version %u, expected 1..%u", ver, WEIR_FRAME_VERSION);
		return fail(d, -EPROTO);
	}
	if (len > d->max) {
		weir_err_set("frame: length %u exceeds the limit %u", len, d->max);
		return fail(d, -EMSGSIZE);
	}
	d->need = len;
	d->type = get16(d->hdr + 6);
	d->have = 0;
	return 0;
}

/* Make room for `more` payload bytes: grow with what arrived, never past need. */
static int reserve(struct weir_frame_dec *d, size_t more)
{
	size_t want = (size_t)d->have + more; /* <= need <= WEIR_FRAME_MAX_LIMIT */
	if (want <= d->cap)
		return 0;
	size_t cap = d->cap ? d->cap : 4096;
	while (cap < want)
		cap *= 2;
	if (cap > d->need)
		cap = d->need;
	uint8_t *b = realloc(d->buf, cap);
	if (!b) {
		weir_err_set("frame: out of memory for a %u-byte frame", d->need);
		return fail(d, -ENOMEM);
	}
	d->buf = b;
	d->cap = (uint32_t)cap;
	return 0;
}

static int deliver(struct weir_frame_dec *d, const uint8_t *p, weir_frame_fn fn, void *arg)
{
	uint32_t len = d->need;
	uint16_t type = d->type;
	d->hlen = 0;
	d->need = d->have = 0;
	d->frames++;
	int rc = fn(arg, type, p, len);
	if (rc < 0)
		return fail(d, rc);
	/* do not keep a big buffer for a stream of small frames */
	if (d->cap > (1u << 20)) {
		free(d->buf);
		d->buf = NULL;
		d->cap = 0;
	}
	return 0;
}

int weir_frame_dec_feed(struct weir_frame_dec *d, const uint8_t *p, size_t n, weir_frame_fn fn, void *arg)
{
	int frames = 0, rc;
	if (d->err)
		return d->err;
	while (n > 0) {
		if (d->hlen < WEIR_FRAME_HDR) {
			/* fast path: a whole frame in the chunk, nothing held */
			if (d->hlen == 0 && n >= WEIR_FRAME_HDR) {
				memcpy(d->hdr, p, WEIR_FRAME_HDR);
				d->hlen = WEIR_FRAME_HDR;
				p += WEIR_FRAME_HDR;
				n -= WEIR_FRAME_HDR;
				if ((rc = header_done(d)) < 0)
					return rc;
				if (n >= d->need) {
					size_t len = d->need;
					if ((rc = deliver(d, p, fn, arg)) < 0)
						return rc;
					frames++;
					p += len;
					n -= len;
				}
				continue;
			}
			size_t take = WEIR_FRAME_HDR - d->hlen;
			if (take > n)
				take = n;
			memcpy(d->hdr + d->hlen, p, take);
			d->hlen = (uint8_t)(d->hlen + take);
			p += take;
			n -= take;
			if (d->hlen < WEIR_FRAME_HDR)
				break;
			if ((rc = header_done(d)) < 0)
				return rc;
			if (d->need == 0) {
				if ((rc = deliver(d, p, fn, arg)) < 0)
					return rc;
				frames++;
			}
			continue;
		}
		/* header held, payload partly held */
		size_t take = d->need - d->have;
		if (take > n)
			take = n;
		if ((rc = reserve(d, take)) < 0)
			return rc;
		memcpy(d->buf + d->have, p, take);
		d->have += (uint32_t)take;
		p += take;
		n -= take;
		if (d->have == d->need) {
			if ((rc = deliver(d, d->buf, fn, arg)) < 0)
				return rc;
			frames++;
		}
	}
	return frames;
}

int weir_frame_dec_finish(struct weir_frame_dec *d)
{
	if (d->err)
		return d->err;
	if (d->hlen == 0)
		return 0;
	if (d->hlen < WEIR_FRAME_HDR)
		weir_err_set("truncated frame: stream ended after %u of %u header bytes", d->hlen, WEIR_FRAME_HDR);
	else
		weir_err_set("truncated frame: stream ended after %u of %u payload bytes", d->have, d->need);
	return fail(d, -EPROTO);
}

void weir_frame_put_hdr(uint8_t hdr[WEIR_FRAME_HDR], uint16_t type, uint32_t len)
{
	hdr[0] = (uint8_t)len;
	hdr[1] = (uint8_t)(len >> 8);
	hdr[2] = (uint8_t)(len >> 16);
	hdr[3] = (uint8_t)(len >> 24);
	hdr[4] = (uint8_t)WEIR_FRAME_VERSION;
	hdr[5] = (uint8_t)(WEIR_FRAME_VERSION >> 8);
	hdr[6] = (uint8_t)type;
	hdr[7] = (uint8_t)(type >> 8);
}

long weir_frame_encode(uint8_t *dst, size_t cap, uint16_t type, const void *p, uint32_t len)
{
	if (len > WEIR_FRAME_MAX_LIMIT)
		return -EMSGSIZE;
	if (cap < (size_t)WEIR_FRAME_HDR + len)
		return -ENOSPC;
	weir_frame_put_hdr(dst, type, len);
	if (len)
		memcpy(dst + WEIR_FRAME_HDR, p, len);
	return (long)(WEIR_FRAME_HDR + len);
}
