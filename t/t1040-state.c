/* t1040-state: the keyed value map against a plain reference array, with
 * random keys of random lengths, growing values, in-place updates and
 * values that alias the stored value. Prints its seed; WEIR_SEED replays. */
#include "tap.h"
#include "state/kv.h"
#include "state/snapshot.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#define NK 20000

struct ref {
	char key[24];
	uint32_t klen;
	uint32_t vlen;
	uint8_t val[64];
	bool present;
};

int main(void)
{
	uint64_t seed = tap_seed(), rnd = seed;
	static struct ref ref[NK];
	for (int i = 0; i < NK; i++) {
		ref[i].klen = (uint32_t)snprintf(ref[i].key, sizeof(ref[i].key), "k%d-%llu", i,
						 (unsigned long long)(tap_rand(&rnd) % 1000));
	}
	struct weir_kv kv;
	weir_kv_init(&kv);
	int mismatches = 0, ops = 0, fail = 0;
	for (int step = 0; step < 300000; step++, ops++) {
		int i = (int)(tap_rand(&rnd) % NK);
		struct ref *r = &ref[i];
		uint64_t h = XXH64(r->key, r->klen, 0);
		struct kv_slot *s = weir_kv_get(&kv, h, r->key, r->klen);
		if (!!s != r->present || (s && (s->vlen != r->vlen || memcmp(weir_kv_val(s), r->val, r->vlen))))
			mismatches++;
		uint32_t len = (uint32_t)(tap_rand(&rnd) % 64);
		uint8_t v[64];
		for (uint32_t k = 0; k < len; k++)
			v[k] = (uint8_t)tap_rand(&rnd);
		if (s && (tap_rand(&rnd) % 5) == 0) {
			/* delete: the following entries of the probe run shift back */
			weir_kv_del(&kv, s);
			r->present = false;
			continue;
		}
		if (s && s->vlen < 64 && (tap_rand(&rnd) % 9) == 0) {
			/* grow in place with reserve, keeping the bytes */
			uint32_t nl = s->vlen + 1 + (uint32_t)(tap_rand(&rnd) % (64 - s->vlen));
			if (nl > 64)
				nl = 64;
			uint8_t *p = weir_kv_reserve(s, nl);
			if (!p) {
				fail = 1;
				continue;
			}
			for (uint32_t k = s->vlen; k < nl; k++)
				p[k] = r->val[k] = (uint8_t)(k * 7);
			s->vlen = nl;
			r->vlen = nl;
			continue;
		}
		if (s && (tap_rand(&rnd) & 7) == 0 && s->vlen > 1) {
			/* store a suffix of the current value: source and destination overlap */
			len = s->vlen - 1;
			memcpy(v, weir_kv_val(s) + 1, len);
			fail |= weir_kv_put(&kv, h, r->key, r->klen, weir_kv_val(s) + 1, len, step);
		} else {
			fail |= weir_kv_put(&kv, h, r->key, r->klen, v, len, step);
		}
		memcpy(r->val, v, len);
		r->vlen = len;
		r->present = true;
	}
	is_int(fail, 0, "every put succeeded");
	is_int(mismatches, 0, "%d random gets and puts agree with the reference", ops);
	int present = 0, wrong = 0;
	for (int i = 0; i < NK; i++) {
		present += ref[i].present;
		struct kv_slot *s = weir_kv_get(&kv, XXH64(ref[i].key, ref[i].klen, 0), ref[i].key, ref[i].klen);
		wrong += !!s != ref[i].present || (s && (s->vlen != ref[i].vlen || memcmp(weir_kv_val(s), ref[i].val, s->vlen)));
	}
	is_int(kv.count, present, "the map holds exactly the %d keys put", present);
	is_int(wrong, 0, "and every one has its last value");
	ok(weir_kv_get(&kv, 12345, "absent", 6) == NULL, "an absent key is absent");
	weir_kv_release(&kv);

	/* The high half of a hash picks the home slot: entries sharing it (a
	 * keyed operator's states and windows of one key) sit side by side,
	 * told apart by the low half and the key. */
	weir_kv_init(&kv);
	int found = 0;
	for (uint32_t i = 0; i < 40; i++) {
		uint64_t key = i * 7919u;
		uint64_t h = 0xabcdef0100000000u | (i * 2654435761u);
		if (weir_kv_put(&kv, h, &key, 8, &i, 4, 0) < 0)
			bail("put: out of memory");
	}
	uintptr_t lo = UINTPTR_MAX, hi = 0;
	for (uint32_t i = 0; i < 40; i++) {
		uint64_t key = i * 7919u;
		struct kv_slot *s = weir_kv_get(&kv, 0xabcdef0100000000u | (i * 2654435761u), &key, 8);
		uint32_t v = 0;
		if (s && s->vlen == 4)
			memcpy(&v, weir_kv_val(s), 4);
		found += s && v == i;
		if (s) {
			lo = (uintptr_t)s < lo ? (uintptr_t)s : lo;
			hi = (uintptr_t)s > hi ? (uintptr_t)s : hi;
		}
	}
	is_int(found, 40, "40 entries whose hashes share the high half are each found");
	ok(hi - lo < 40 * sizeof(struct kv_slot), "and they sit side by side (%zu slots apart at most)",
	   (size_t)(hi - lo) / sizeof(struct kv_slot));
	weir_kv_release(&kv);

	/* A big table grows by shards: 300000 keys split it into many, every
	 * key stays found, and deleting every other one keeps the rest. */
	weir_kv_init(&kv);
	enum { BIG = 300000 };
	int big_bad = 0;
	for (uint64_t i = 0; i < BIG; i++)
		if (weir_kv_put(&kv, XXH64(&i, 8, 7), &i, 8, &i, 8, 0) < 0)
			bail("put: out of memory");
	for (uint64_t i = 0; i < BIG; i += 2) {
		struct kv_slot *s = weir_kv_get(&kv, XXH64(&i, 8, 7), &i, 8);
		if (s)
			weir_kv_del(&kv, s);
	}
	for (uint64_t i = 0; i < BIG; i++) {
		struct kv_slot *s = weir_kv_get(&kv, XXH64(&i, 8, 7), &i, 8);
		big_bad += i % 2 ? !s || memcmp(weir_kv_val(s), &i, 8) : s != NULL;
	}
	is_int(big_bad, 0, "%d keys in, every other one deleted: the rest are there with their values", BIG);
	is_int(kv.count, BIG / 2, "the count says so");
	ok(kv.nshards >= 8, "the table split into shards (%u) instead of growing as one", kv.nshards + 1);
	weir_kv_release(&kv);

	/* A snapshot buffer past SNAP_BIG moves once into a reserved mapping
	 * and then grows in place: 40 MB written 8 bytes at a time keep their
	 * bytes, the address stops changing, and the seal checks out. */
	struct snapbuf b = { 0 };
	uint8_t *at_big = NULL;
	int moved = 0;
	for (uint64_t i = 0; i < (40u << 20) / 8; i++) {
		snap_u64(&b, i * 0x9e3779b97f4a7c15u);
		if (b.reserved && !at_big)
			at_big = b.p;
		moved += at_big && b.p != at_big;
	}
	int bytes_bad = b.oom || b.len != 40u << 20;
	for (uint64_t i = 0; !bytes_bad && i < b.len / 8; i++) {
		uint64_t v;
		memcpy(&v, b.p + 8 * i, 8);
		bytes_bad |= v != i * 0x9e3779b97f4a7c15u;
	}
	ok(!bytes_bad, "40 MB written into a snapshot buffer read back");
	ok(at_big && b.reserved >= SNAP_RESERVE && moved == 0,
	   "past %zu MB it lives in a reserved mapping and never moves again", SNAP_BIG >> 20);
	const char *why = "";
	ok(weir_snap_seal(&b) == 0 && weir_snap_unseal(b.p, b.len, &why) == 40l << 20, "and it seals: %s", why);
	snap_free(&b);
	ok(b.p == NULL && b.reserved == 0, "freed");
	/* the next big buffer gets the kept mapping, its pages already in */
	struct snapbuf b2 = { 0 };
	for (int i = 0; i < (1 << 20) / 8; i++)
		snap_u64(&b2, (uint64_t)i);
	ok(b2.p == at_big && b2.cap >= (size_t)40 << 20,
	   "the next buffer past %zu KiB reuses its mapping (%zu MB writable)", SNAP_BIG >> 10, b2.cap >> 20);
	snap_free(&b2);
	done_testing();
}
