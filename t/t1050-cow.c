/* t1050-cow: copy-on-write snapshots of keyed state and timers. A snapshot
 * begins, then the table (or the timer heaps) is changed at random -
 * updates, growing values, deletes that shift entries back, inserts that
 * make the table grow, timers firing, registered and deleted - with
 * background steps in between; the bytes that come out must be exactly the
 * state at the snapshot point: every entry once, none later, none lost.
 * Prints its seed; WEIR_SEED replays. */
#include "tap.h"
#include "operators/keyed.h"
#include "runtime/run.h"
#include "state/snapshot.h"
#include "state/kv.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#define NK 60000
#define ROUNDS 8

struct ref {
	char key[32];
	uint32_t klen;
	uint32_t vlen;
	int64_t aux;
	uint8_t val[80];
	bool present;
};

static struct ref live[NK], frozen[NK];
static uint64_t rnd;

static uint64_t hash_of(const struct ref *r)
{
	return XXH64(r->key, r->klen, 0);
}

/* "k<i>:" and padding: the index comes back out of a snapshot's key */
static int key_index(const uint8_t *k, uint32_t len)
{
	if (len < 3 || k[0] != 'k')
		return -1;
	int i = 0;
	uint32_t p = 1;
	for (; p < len && k[p] >= '0' && k[p] <= '9'; p++)
		i = i * 10 + (k[p] - '0');
	return p < len && k[p] == ':' && i < NK ? i : -1;
}

static void mutate(struct weir_kv *kv, int *fail)
{
	int i = (int)(tap_rand(&rnd) % NK);
	struct ref *r = &live[i];
	struct kv_slot *s = weir_kv_get(kv, hash_of(r), r->key, r->klen);
	unsigned what = (unsigned)(tap_rand(&rnd) % 100);
	if (what < 25)
		return; /* a read: hands out a writable slot all the same */
	if (s && what < 35) {
		weir_kv_del(kv, s);
		r->present = false;
		return;
	}
	if (s && what < 55 && s->vlen + 8 <= sizeof(r->val)) {
		/* grow in place through reserve, as list state does */
		uint8_t *p = weir_kv_reserve(s, s->vlen + 8);
		if (!p) {
			*fail = 1;
			return;
		}
		for (int k = 0; k < 8; k++)
			p[s->vlen + k] = r->val[r->vlen + k] = (uint8_t)tap_rand(&rnd);
		s->vlen += 8;
		r->vlen += 8;
		return;
	}
	uint32_t len = (uint32_t)(tap_rand(&rnd) % 72);
	for (uint32_t k = 0; k < len; k++)
		r->val[k] = (uint8_t)tap_rand(&rnd);
	r->vlen = len;
	r->aux = (int64_t)tap_rand(&rnd);
	r->present = true;
	if (s ? weir_kv_set(kv, s, r->val, len, r->aux) < 0
	      : !weir_kv_insert(kv, hash_of(r), r->key, r->klen, r->val, len, r->aux))
		*fail = 1;
}

/* The entries in out: each must be one of frozen's, at most once, and
 * every one of frozen's must be there. */
static void check_snapshot(const struct snapbuf *head, const struct snapbuf *out, int round)
{
	static bool seen[NK];
	memset(seen, 0, sizeof(seen));
	uint64_t count;
	memcpy(&count, head->p, 8);
	struct snapreader rd;
	snapreader_init(&rd, out->p, out->len);
	uint64_t n = 0, want = 0, wrong = 0, twice = 0;
	while (rd.off < rd.len && !rd.bad) {
		snap_get_u32(&rd);
		uint32_t klen = snap_get_u32(&rd), vlen = snap_get_u32(&rd);
		snap_get_u32(&rd);
		int64_t aux = (int64_t)snap_get_u64(&rd);
		const uint8_t *k = snap_take(&rd, klen), *v = snap_take(&rd, vlen);
		if (!k || !v)
			break;
		n++;
		int i = key_index(k, klen);
		if (i < 0 || !frozen[i].present || frozen[i].vlen != vlen || frozen[i].aux != aux ||
		    memcmp(frozen[i].val, v, vlen)) {
			wrong++;
			continue;
		}
		twice += seen[i];
		seen[i] = true;
	}
	for (int i = 0; i < NK; i++)
		want += frozen[i].present;
	ok(!rd.bad, "round %d: the snapshot's bytes parse", round);
	is_int(count, want, "round %d: the count written at the snapshot point", round);
	is_int(n, want, "round %d: as many entries as there were then", round);
	is_int(wrong, 0, "round %d: no entry differs from its value at the snapshot point", round);
	is_int(twice, 0, "round %d: no entry twice", round);
}

static void table(void)
{
	for (int i = 0; i < NK; i++) {
		int pad = (int)(tap_rand(&rnd) % 20);
		live[i].klen = (uint32_t)snprintf(live[i].key, sizeof(live[i].key), "k%d:%.*s", i, pad,
						  "xxxxxxxxxxxxxxxxxxxx");
	}
	struct weir_kv kv;
	weir_kv_init(&kv);
	struct weir_kg_map m;
	weir_kg_map_init(&m, 128);
	int fail = 0, grew = 0;
	for (int k = 0; k < 3000; k++) /* a start small enough that rounds grow it */
		mutate(&kv, &fail);
	for (int round = 0; round < ROUNDS; round++) {
		memcpy(frozen, live, sizeof(live));
		struct snapbuf head = { 0 }, out = { 0 };
		uint32_t resizes = kv.resizes;
		snap_u64(&head, kv.count);
		ok(weir_kv_cow_begin(&kv, &out, &m, false) == 0, "round %d: snapshot begins", round);
		for (int k = 0; k < 30000; k++) {
			if (tap_rand(&rnd) % 200 == 0)
				weir_kv_cow_step(&kv, 1);
			mutate(&kv, &fail);
		}
		grew += kv.resizes != resizes;
		weir_kv_cow_step(&kv, UINT32_MAX);
		ok(kv.cow == NULL, "round %d: the snapshot is done", round);
		check_snapshot(&head, &out, round);
		snap_free(&head);
		snap_free(&out);
	}
	int bad = 0;
	for (int i = 0; i < NK; i++) {
		struct kv_slot *s = weir_kv_get(&kv, hash_of(&live[i]), live[i].key, live[i].klen);
		bad += !!s != live[i].present ||
		       (s && (s->vlen != live[i].vlen || s->aux != live[i].aux ||
			      memcmp(weir_kv_val(s), live[i].val, s->vlen)));
	}
	is_int(bad, 0, "the live table is right after every snapshot");
	ok(grew > 0, "the table grew during a snapshot (%d rounds)", grew);
	ok(!fail, "no allocation failed");
	/* a table released mid-snapshot frees its marks (ASan: no leak) */
	struct snapbuf out = { 0 };
	weir_kv_cow_begin(&kv, &out, &m, false);
	weir_kv_release(&kv);
	snap_free(&out);
}

/* ---- timers ------------------------------------------------------------- */

static uint64_t fired;

static int on_timer(weir_ctx *ctx, int64_t time, enum weir_time_domain d, const uint8_t *ns, uint32_t nslen)
{
	(void)ctx, (void)time, (void)d, (void)ns, (void)nslen;
	fired++;
	return 0;
}

static int on_element(weir_ctx *ctx, const weir_rec *in, int side)
{
	(void)ctx, (void)in, (void)side;
	return 0;
}

struct tsnap {
	uint32_t d;
	int64_t time;
	uint64_t seq;
	uint32_t cklen;
	uint8_t ck[128];
};

static int by_seq(const void *a, const void *b)
{
	const struct tsnap *x = a, *y = b;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static void set_key(struct opinst *op, uint64_t k, char *buf)
{
	int n = snprintf(buf, 32, "u%llu", (unsigned long long)k);
	op->keyed.key = (const uint8_t *)buf;
	op->keyed.klen = (uint32_t)n;
}

static void timers(void)
{
	static const struct keyed_impl impl = { on_element, on_timer };
	struct node nd;
	struct subtask st;
	struct opinst op;
	memset(&nd, 0, sizeof(nd));
	memset(&st, 0, sizeof(st));
	memset(&op, 0, sizeof(op));
	nd.impl = &impl;
	op.node = &nd;
	op.ctx.st = &st;
	op.ctx.op = &op;
	keyed_init(&op.keyed);
	struct weir_kg_map m;
	weir_kg_map_init(&m, 128);
	char kb[32];
	uint8_t ns[64];
	int64_t clock = 1000;
	/* event-time timers with long namespaces (their keys live outside the
	 * heap), processing-time ones with table entries */
	for (int i = 0; i < 30000; i++) {
		set_key(&op, tap_rand(&rnd) % 5000, kb);
		uint32_t nl = (uint32_t)(tap_rand(&rnd) % 60);
		memset(ns, 'n', nl);
		if (i % 2)
			keyed_timer_once(&op, WEIR_EVENT_TIME, clock + (int64_t)(tap_rand(&rnd) % 20000), ns, nl);
		else
			keyed_timer(&op, WEIR_PROCESSING_TIME, clock + (int64_t)(tap_rand(&rnd) % 20000), NULL, 0, true);
	}
	/* the oracle: the heaps' entries at the snapshot point */
	uint32_t nt = op.keyed.heap[0].n + op.keyed.heap[1].n;
	struct tsnap *want = calloc(nt, sizeof(*want)), *got = calloc(nt + 1, sizeof(*got));
	uint32_t w = 0;
	for (uint32_t d = 0; d < 2; d++)
		for (uint32_t i = 0; i < op.keyed.heap[d].n; i++) {
			const struct keyed_timer *t = &op.keyed.heap[d].slab[op.keyed.heap[d].v[i].slot];
			want[w] = (struct tsnap){ d, t->time, t->seq, t->cklen, { 0 } };
			memcpy(want[w].ck, t->cklen <= KEYED_TIMER_INLINE ? t->ck.inl : t->ck.ptr, t->cklen);
			w++;
		}
	uint64_t entries = op.keyed.kv.count;
	struct snapbuf kvh = { 0 }, kvo = { 0 }, th = { 0 }, to = { 0 };
	keyed_cow_begin(&op.keyed, &kvh, &kvo, &th, &to, &m);
	/* fire, register and delete, with steps in between */
	for (int k = 0; k < 400; k++) {
		/* registering first: early timers sift up through chunks not
		 * saved yet (the first round many of them) */
		for (int j = 0; j < (k ? 60 : 3000); j++) {
			set_key(&op, tap_rand(&rnd) % 5000, kb);
			int64_t at = clock + (int64_t)(tap_rand(&rnd) % (k ? 20000 : 100));
			if (j % 3 == 0)
				keyed_timer(&op, WEIR_PROCESSING_TIME, at, NULL, 0, false);
			else
				keyed_timer(&op, WEIR_PROCESSING_TIME, at, NULL, 0, true);
		}
		if (tap_rand(&rnd) % 20 == 0)
			keyed_cow_step(&op.keyed, 1);
		clock += 50;
		keyed_fire_processing(&op, clock);
		keyed_advance(&op, clock);
	}
	ok(fired > 0, "timers fired during the snapshot (%llu)", (unsigned long long)fired);
	keyed_cow_step(&op.keyed, UINT32_MAX);
	ok(!op.keyed.kv.cow && !op.keyed.heap[0].cow && !op.keyed.heap[1].cow, "the timer snapshot is done");
	uint64_t n;
	memcpy(&n, th.p, 8);
	is_int(n, nt, "the timer count is the one at the snapshot point");
	memcpy(&n, kvh.p, 8);
	is_int(n, entries, "so is the count of timer entries");
	struct snapreader rd;
	snapreader_init(&rd, to.p, to.len);
	uint32_t g = 0;
	while (rd.off < rd.len && !rd.bad && g <= nt) {
		snap_get_u32(&rd);
		uint32_t flags = snap_get_u32(&rd), cklen = snap_get_u32(&rd);
		snap_get_u32(&rd);
		int64_t time = (int64_t)snap_get_u64(&rd);
		uint64_t seq = snap_get_u64(&rd);
		const uint8_t *ck = snap_take(&rd, cklen);
		if (!ck || cklen > sizeof(got[g].ck))
			break;
		got[g] = (struct tsnap){ flags & 0xffu, time, seq, cklen, { 0 } };
		memcpy(got[g].ck, ck, cklen);
		g++;
	}
	ok(!rd.bad && rd.off == rd.len, "the timers' bytes parse");
	is_int(g, nt, "every timer pending at the snapshot point, once");
	qsort(want, nt, sizeof(*want), by_seq);
	qsort(got, g, sizeof(*got), by_seq);
	uint32_t diff = 0;
	for (uint32_t i = 0; i < nt && i < g; i++)
		diff += want[i].d != got[i].d || want[i].time != got[i].time || want[i].seq != got[i].seq ||
			want[i].cklen != got[i].cklen || memcmp(want[i].ck, got[i].ck, want[i].cklen);
	is_int(diff, 0, "each as it was (domain, time, order, key and namespace)");
	/* released mid-snapshot: no leak, no use of freed keys (ASan) */
	struct snapbuf a = { 0 }, b = { 0 }, c = { 0 }, e = { 0 };
	keyed_cow_begin(&op.keyed, &a, &b, &c, &e, &m);
	keyed_advance(&op, clock + 5000);
	keyed_release(&op.keyed);
	snap_free(&a), snap_free(&b), snap_free(&c), snap_free(&e);
	snap_free(&kvh), snap_free(&kvo), snap_free(&th), snap_free(&to);
	free(want);
	free(got);
}

int main(void)
{
	rnd = tap_seed();
	table();
	timers();
	done_testing();
	return tap_failures() ? 1 : 0;
}
