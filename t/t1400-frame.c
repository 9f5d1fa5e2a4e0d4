/* t1400-frame: the frame decoder fed random frames split at every byte and
 * in random chunks (seeded: WEIR_SEED replays), every chunk in its own
 * exact-size allocation so ASan sees any read past it; bad headers,
 * truncation, sticky errors, callback refusals; the encoder's bounds. */
#include "tap.h"
#include "net/frame.h"
#include "base/err.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

struct want {
	uint16_t type;
	uint32_t len;
	uint8_t salt;
};

struct check {
	const struct want *w;
	int n, got, bad;
	int stop_at; /* refuse this frame (-ECANCELED), -1: never */
};

static uint8_t byte_of(const struct want *w, uint32_t j) { return (uint8_t)(w->salt + j * 7 + (j >> 8)); }

static int on_frame(void *arg, uint16_t type, const uint8_t *p, uint32_t len)
{
	struct check *c = arg;
	if (c->got == c->stop_at)
		return -ECANCELED;
	if (c->got >= c->n) {
		c->bad++;
		return 0;
	}
	const struct want *w = &c->w[c->got++];
	if (type != w->type || len != w->len) {
		c->bad++;
		return 0;
	}
	for (uint32_t j = 0; j < len; j++)
		if (p[j] != byte_of(w, j)) {
			c->bad++;
			break;
		}
	return 0;
}

/* A stream of n frames with random types and sizes up to maxlen. */
static uint8_t *make_stream(uint64_t *rs, struct want *w, int n, uint32_t maxlen, size_t *total)
{
	size_t sz = 0;
	for (int i = 0; i < n; i++) {
		w[i].type = (uint16_t)tap_rand(rs);
		uint64_t r = tap_rand(rs);
		w[i].len = r % 5 == 0 ? 0 : (uint32_t)(tap_rand(rs) % (maxlen + 1));
		w[i].salt = (uint8_t)tap_rand(rs);
		sz += WEIR_FRAME_HDR + w[i].len;
	}
	uint8_t *s = malloc(sz ? sz : 1), *q = s;
	for (int i = 0; i < n; i++) {
		uint8_t *pay = malloc(w[i].len ? w[i].len : 1);
		for (uint32_t j = 0; j < w[i].len; j++)
			pay[j] = byte_of(&w[i], j);
		long k = weir_frame_encode(q, sz - (size_t)(q - s), w[i].type, pay, w[i].len);
		if (k < 0)
			bail("encode: %ld", k);
		q += k;
		free(pay);
	}
	*total = sz;
	return s;
}

/* Feed bytes [off, off+n) of s as a separate, exact-size allocation. */
static int feed_copy(struct weir_frame_dec *d, const uint8_t *s, size_t off, size_t n, struct check *c)
{
	uint8_t *chunk = malloc(n ? n : 1);
	memcpy(chunk, s + off, n);
	int rc = weir_frame_dec_feed(d, chunk, n, on_frame, c);
	free(chunk);
	return rc;
}

static void hdr(uint8_t h[8], uint32_t len, uint16_t ver, uint16_t type)
{
	weir_frame_put_hdr(h, type, len);
	h[4] = (uint8_t)ver;
	h[5] = (uint8_t)(ver >> 8);
}

int main(void)
{
	uint64_t seed = tap_seed();
	uint64_t rs = seed;
	struct weir_frame_dec d;
	struct want w[400];
	size_t total;

	/* 1. every split point of a small stream, two chunks each */
	{
		uint8_t *s = make_stream(&rs, w, 24, 120, &total);
		int bad = 0;
		for (size_t cut = 0; cut <= total; cut++) {
			struct check c = { w, 24, 0, 0, -1 };
			weir_frame_dec_init(&d, 0);
			int a = feed_copy(&d, s, 0, cut, &c);
			int b = feed_copy(&d, s, cut, total - cut, &c);
			if (a < 0 || b < 0 || a + b != 24 || c.got != 24 || c.bad || weir_frame_dec_finish(&d) != 0)
				bad++;
			weir_frame_dec_release(&d);
		}
		is_int(bad, 0, "24 frames (%zu bytes) split in two at each of %zu points decode exactly", total,
		       total + 1);

		/* one byte at a time */
		struct check c = { w, 24, 0, 0, -1 };
		weir_frame_dec_init(&d, 0);
		int frames = 0, err = 0;
		for (size_t i = 0; i < total; i++) {
			int rc = feed_copy(&d, s, i, 1, &c);
			if (rc < 0)
				err++;
			else
				frames += rc;
		}
		ok(frames == 24 && c.got == 24 && !c.bad && !err && weir_frame_dec_idle(&d),
		   "fed one byte at a time: 24 frames exactly");
		weir_frame_dec_release(&d);
		free(s);
	}

	/* 2. random chunk sizes over a bigger stream, with one 2 MiB frame */
	for (int round = 0; round < 20; round++) {
		int n = 50 + (int)(tap_rand(&rs) % 300);
		uint8_t *s = make_stream(&rs, w, n, round == 7 ? (3u << 20) : 70000, &total);
		struct check c = { w, n, 0, 0, -1 };
		weir_frame_dec_init(&d, 4u << 20);
		int frames = 0, err = 0;
		for (size_t off = 0; off < total;) {
			size_t k = tap_rand(&rs) % 3 == 0 ? tap_rand(&rs) % 16 : tap_rand(&rs) % 100000;
			if (k > total - off)
				k = total - off;
			int rc = feed_copy(&d, s, off, k, &c);
			if (rc < 0)
				err++;
			else
				frames += rc;
			off += k;
		}
		if (!ok(frames == n && c.got == n && !c.bad && !err && weir_frame_dec_finish(&d) == 0,
			"random chunks, round %d: %d frames (%zu bytes) decode exactly", round, n, total))
			diag("frames %d got %d bad %d err %d", frames, c.got, c.bad, err);
		weir_frame_dec_release(&d);
		free(s);
	}

	/* 3. bad headers: each an error for the stream, with a message */
	struct {
		uint32_t len;
		uint16_t ver;
		int want;
		const char *msg;
		const char *what;
	} bad[] = {
		{ 1025, 1, -EMSGSIZE, "exceeds the limit 1024", "length one above the limit" },
		{ 0xffffffffu, 1, -EMSGSIZE, "exceeds the limit", "length 2^32-1 (would overflow 8+len)" },
		{ 0x80000000u, 1, -EMSGSIZE, "exceeds the limit", "length 2^31" },
		{ 0, 0, -EPROTO, "version 0", "zero length with version 0" },
		{ 5, 2, -EPROTO, "version 2", "unknown version 2" },
		{ 5, 0xffff, -EPROTO, "version 65535", "version 65535" },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		uint8_t h[8];
		hdr(h, bad[i].len, bad[i].ver, 3);
		struct check c = { w, 0, 0, 0, -1 };
		weir_frame_dec_init(&d, 1024);
		weir_err_clear();
		int rc = feed_copy(&d, h, 0, 8, &c);
		is_int(rc, bad[i].want, "%s: refused", bad[i].what);
		ok(strstr(weir_err_msg(), bad[i].msg) != NULL, "  with '%s': %s", bad[i].msg, weir_err_msg());
		is_int(weir_frame_dec_feed(&d, h, 8, on_frame, &c), bad[i].want, "  and the error is sticky");
		is_int(c.got + c.bad, 0, "  no frame delivered");
		weir_frame_dec_release(&d);
	}

	/* a bad header after good frames in the same chunk: the good ones come first */
	{
		uint8_t *s = make_stream(&rs, w, 3, 50, &total);
		uint8_t *t = malloc(total + 8);
		memcpy(t, s, total);
		hdr(t + total, 9999, 1, 1);
		struct check c = { w, 3, 0, 0, -1 };
		weir_frame_dec_init(&d, 1024);
		int rc = feed_copy(&d, t, 0, total + 8, &c);
		ok(rc == -EMSGSIZE && c.got == 3 && !c.bad, "three good frames delivered, then the oversized one refused");
		weir_frame_dec_release(&d);
		free(t);
		free(s);
	}

	/* exactly the limit is fine */
	{
		uint8_t *f = calloc(1, 8 + 1024);
		hdr(f, 1024, 1, 2);
		struct want one = { 2, 1024, 0 };
		for (uint32_t j = 0; j < 1024; j++)
			f[8 + j] = byte_of(&one, j);
		struct check c = { &one, 1, 0, 0, -1 };
		weir_frame_dec_init(&d, 1024);
		is_int(feed_copy(&d, f, 0, 8 + 1024, &c), 1, "a frame of exactly the limit is accepted");
		weir_frame_dec_release(&d);
		free(f);
	}

	/* 4. truncation: the end of stream in a header or in a payload */
	{
		uint8_t *s = make_stream(&rs, w, 2, 40, &total);
		struct check c = { w, 2, 0, 0, -1 };
		weir_frame_dec_init(&d, 0);
		feed_copy(&d, s, 0, 5, &c);
		ok(!weir_frame_dec_idle(&d), "5 header bytes: not idle");
		is_int(weir_frame_dec_finish(&d), -EPROTO, "end of stream inside a header: -EPROTO");
		ok(strstr(weir_err_msg(), "truncated frame") != NULL, "  %s", weir_err_msg());
		weir_frame_dec_release(&d);

		uint8_t h[8];
		hdr(h, 100, 1, 1);
		uint8_t *t = calloc(1, 8 + 10);
		memcpy(t, h, 8);
		c = (struct check){ w, 0, 0, 0, -1 };
		weir_frame_dec_init(&d, 0);
		is_int(feed_copy(&d, t, 0, 18, &c), 0, "header of 100 and 10 bytes: no frame yet");
		is_int(weir_frame_dec_finish(&d), -EPROTO, "end of stream inside a payload: -EPROTO");
		ok(strstr(weir_err_msg(), "10 of 100 payload bytes") != NULL, "  %s", weir_err_msg());
		weir_frame_dec_release(&d);
		free(t);
		free(s);
	}

	/* 5. the callback refuses the second frame: decoding stops there */
	{
		uint8_t *s = make_stream(&rs, w, 5, 30, &total);
		struct check c = { w, 5, 0, 0, 1 };
		weir_frame_dec_init(&d, 0);
		is_int(feed_copy(&d, s, 0, total, &c), -ECANCELED, "a callback's refusal is returned");
		is_int(c.got, 1, "  and no frame after it is delivered");
		is_int(weir_frame_dec_feed(&d, s, total, on_frame, &c), -ECANCELED, "  sticky");
		weir_frame_dec_release(&d);
		free(s);
	}

	/* 6. init and encoder bounds */
	is_int(weir_frame_dec_init(&d, WEIR_FRAME_MAX_LIMIT + 1), -EINVAL, "a limit above 1 GiB is refused");
	is_int(weir_frame_dec_init(&d, 0), 0, "limit 0 means the default");
	is_int(d.max, 16u << 20, "  which is 16 MiB");
	weir_frame_dec_release(&d);
	uint8_t small[10];
	is_int(weir_frame_encode(small, sizeof(small), 1, "abc", 3), -ENOSPC, "encode into too small a buffer: -ENOSPC");
	is_int(weir_frame_encode(small, sizeof(small), 1, "ab", 2), 10, "encode 2 bytes: 10 written");
	ok(small[0] == 2 && small[4] == 1 && small[5] == 0 && small[6] == 1 && !memcmp(small + 8, "ab", 2),
	   "  little-endian length, version 1, type 1, payload");
	diag("seed %llu", (unsigned long long)seed);
	done_testing();
}
