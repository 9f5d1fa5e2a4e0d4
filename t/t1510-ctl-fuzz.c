/*
 * t1510-ctl-fuzz: the control-plane decoder against 100,000 hostile
 * payloads (seeded; WEIR_SEED replays): random bytes, and mutations of
 * valid encodings of every message (bit flips, byte overwrites with
 * boundary values, cuts, insertions, duplicated and deleted slices,
 * splices of two messages, varints set to extremes). Run under ASan and
 * UBSan by scripts/test: a crash, a leak or undefined behaviour fails it.
 *
 * Beyond not crashing: a refusal is -EPROTO, -EMSGSIZE or -ENOMEM with a
 * trail; whatever is accepted encodes again, and that encoding decodes to
 * the same bytes (the encoder and decoder agree on what is valid).
 * WEIR_FUZZ_N changes the count.
 */
#include "base/err.h"
#include "ctl/codec.h"
#include "t15-ctl-msgs.h"
#include "tap.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define MAXLEN 16384

static uint64_t rng;

static uint64_t rnd(uint64_t n) { return n ? tap_rand(&rng) % n : 0; }

struct seed {
	uint8_t *b;
	size_t n;
};

static struct seed seeds[64];
static int nseeds;

static void add_seeds(void)
{
	for (int c = CTL_FIRST_BODY; c <= CTL_LAST_BODY; c++) {
		weir_msg m;
		uint8_t *enc;
		ctl_example((Weir__Ctl__Envelope__BodyCase)c, &m);
		long n = weir_ctl_encode_alloc(&m, &enc);
		if (n < 0)
			bail("seed %s: %s", weir_ctl_body_name(m.body_case), weir_err_msg());
		seeds[nseeds++] = (struct seed){ enc, (size_t)n };
	}
}

static size_t put_varint(uint8_t *p, uint64_t v)
{
	size_t n = 0;
	do {
		p[n] = (uint8_t)(v & 0x7f);
		v >>= 7;
		if (v)
			p[n] |= 0x80;
		n++;
	} while (v);
	return n;
}

/* One mutation of buf (len bytes, room for MAXLEN). Returns the new length. */
static size_t mutate(uint8_t *buf, size_t len)
{
	static const uint8_t boundary[] = { 0x00, 0x01, 0x7f, 0x80, 0xff, 0xfe, 0x08, 0x10, 0x12, 0x1a, 0x0a, 0x82 };
	size_t at = rnd(len + 1), n;
	uint8_t tmp[MAXLEN];

	switch (rnd(9)) {
	case 0:	/* bit flip */
		if (len)
			buf[at % len] ^= (uint8_t)(1u << rnd(8));
		return len;
	case 1:	/* boundary byte */
		if (len)
			buf[at % len] = boundary[rnd(sizeof(boundary))];
		return len;
	case 2:	/* random byte */
		if (len)
			buf[at % len] = (uint8_t)rnd(256);
		return len;
	case 3:	/* cut */
		return rnd(len + 1);
	case 4:	/* insert random bytes */
		n = 1 + rnd(8);
		if (len + n > MAXLEN)
			return len;
		memmove(buf + at + n, buf + at, len - at);
		for (size_t i = 0; i < n; i++)
			buf[at + i] = (uint8_t)rnd(256);
		return len + n;
	case 5:	/* delete a slice */
		n = rnd(len - at + 1);
		memmove(buf + at, buf + at + n, len - at - n);
		return len - n;
	case 6:	/* duplicate a slice in place */
		n = rnd(len - at + 1);
		if (len + n > MAXLEN)
			return len;
		memcpy(tmp, buf + at, n);
		memmove(buf + at + n, buf + at, len - at);
		memcpy(buf + at, tmp, n);
		return len + n;
	case 7: {	/* splice in a slice of another message */
		const struct seed *s = &seeds[rnd((uint64_t)nseeds)];
		size_t from = rnd(s->n + 1);
		n = rnd(s->n - from + 1);
		if (at + n > MAXLEN)
			return len;
		memcpy(buf + at, s->b + from, n);
		return at + n > len ? at + n : len;
	}
	default: {	/* an extreme varint (a length, a tag or a value) */
		static const uint64_t ext[] = { 0, 1, 127, 128, 0xffffffffull, 0x100000000ull, UINT64_MAX,
						(uint64_t)MAXLEN, 536870911ull << 3 | 2, 4u << 20, 1u << 31 };
		uint8_t v[10];
		size_t vn = put_varint(v, ext[rnd(sizeof(ext) / sizeof(ext[0]))]);
		if (len + vn > MAXLEN)
			return len;
		memmove(buf + at + vn, buf + at, len - at);
		memcpy(buf + at, v, vn);
		return len + vn;
	}
	}
}

int main(void)
{
	const char *e = getenv("WEIR_FUZZ_N");
	long total = e && *e ? strtol(e, NULL, 0) : 100000;
	long accepted = 0, refused = 0, bad_rc = 0, no_trail = 0, reencode_bad = 0;
	static uint8_t buf[MAXLEN], again[WEIR_CTL_MAX_FRAME > 65536 ? 65536 : WEIR_CTL_MAX_FRAME];

	rng = tap_seed();
	add_seeds();
	plan(5);

	for (long i = 0; i < total; i++) {
		size_t len;
		if (i % 5 == 0) {	/* random bytes, mostly short */
			len = rnd(i % 10 == 0 ? MAXLEN : 64);
			for (size_t k = 0; k < len; k++)
				buf[k] = (uint8_t)rnd(256);
		} else {		/* a valid message, mutated 1 to 8 times */
			const struct seed *s = &seeds[rnd((uint64_t)nseeds)];
			memcpy(buf, s->b, s->n);
			len = s->n;
			for (uint64_t k = 1 + rnd(8); k; k--)
				len = mutate(buf, len);
		}
		/* an exact-size heap copy, so ASan sees any read past the end */
		uint8_t *p = malloc(len ? len : 1);
		if (!p)
			bail("out of memory");
		memcpy(p, buf, len);
		weir_msg *m = NULL;
		weir_err_clear();
		int rc = weir_ctl_decode(p, len, &m);
		if (rc == 0) {
			accepted++;
			long n = weir_ctl_encode(m, again, sizeof(again));
			weir_msg *m2 = NULL;
			uint8_t again2[sizeof(again)];
			if (n < 0 || weir_ctl_decode(again, (size_t)n, &m2) < 0 ||
			    weir_ctl_encode(m2, again2, sizeof(again2)) != n || memcmp(again, again2, (size_t)n)) {
				if (!reencode_bad++)
					diag("case %ld: accepted, but encoding it again fails: %s", i, weir_err_msg());
			}
			weir_ctl_free(m2);
			weir_ctl_free(m);
		} else {
			refused++;
			if (m != NULL || (rc != -EPROTO && rc != -EMSGSIZE && rc != -ENOMEM)) {
				if (!bad_rc++)
					diag("case %ld: rc %d", i, rc);
			}
			if (!weir_err_msg()[0] && !no_trail++)
				diag("case %ld: refused without a trail", i);
		}
		free(p);
	}
	diag("%ld payloads: %ld accepted, %ld refused", total, accepted, refused);
	ok(accepted + refused == total, "%ld payloads decoded or refused, none crashed", total);
	is_int(bad_rc, 0, "refusals are -EPROTO, -EMSGSIZE or -ENOMEM with no message");
	is_int(no_trail, 0, "every refusal has a trail");
	is_int(reencode_bad, 0, "everything accepted encodes again to bytes that decode the same");
	ok(accepted > 0 && refused > total / 2, "both outcomes occur (accepted %ld)", accepted);
	for (int i = 0; i < nseeds; i++)
		free(seeds[i].b);
	done_testing();
}
