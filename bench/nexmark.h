/*
 * bench/nexmark.h - the Nexmark benchmark's event generator, following the
 * benchmark's definition as Apache Beam's generator implements it (our own
 * code, written from that definition): people, auctions and bids in the
 * proportion 1:3:46, their fields, hot sellers, bidders and auctions, and
 * event time that advances with the event number. Each event is a pure
 * function of its number (a java.util.Random seeded with the event id, as
 * Beam), so any subset can be generated anywhere, in parallel, and again
 * after a restore: a split of the job's source is a residue class of event
 * numbers, its position the next number.
 *
 * Events are fixed-layout records (strings NUL-padded in arrays) followed by
 * their "extra" padding bytes, so that record sizes average what the
 * benchmark defines (people 200, auctions 500, bids 100 bytes).
 */
#ifndef WEIR_BENCH_NEXMARK_H
#define WEIR_BENCH_NEXMARK_H

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "common.h"

/* ---- java.util.Random, bit for bit (its documented algorithm) ---- */

struct jrand {
	uint64_t seed;
};

#define JR_MULT 0x5DEECE66DULL
#define JR_MASK ((1ULL << 48) - 1)

static inline void jr_seed(struct jrand *r, int64_t s)
{
	r->seed = ((uint64_t)s ^ JR_MULT) & JR_MASK;
}

static inline int32_t jr_next(struct jrand *r, int bits)
{
	r->seed = (r->seed * JR_MULT + 0xBULL) & JR_MASK;
	return (int32_t)(uint32_t)(r->seed >> (48 - bits));
}

static inline int32_t jr_int(struct jrand *r)
{
	return jr_next(r, 32);
}

static inline int32_t jr_int_bound(struct jrand *r, int32_t bound)
{
	if ((bound & -bound) == bound)
		return (int32_t)(((int64_t)bound * (int64_t)jr_next(r, 31)) >> 31);
	int32_t bits, val;
	do {
		bits = jr_next(r, 31);
		val = bits % bound;
	} while ((int32_t)((uint32_t)bits - (uint32_t)val + (uint32_t)(bound - 1)) < 0); /* Java's int overflow */
	return val;
}

static inline int64_t jr_long(struct jrand *r)
{
	return (int64_t)((uint64_t)(int64_t)jr_next(r, 32) << 32) + (int64_t)jr_next(r, 32);
}

static inline double jr_double(struct jrand *r)
{
	return (double)(((int64_t)jr_next(r, 26) << 27) + jr_next(r, 27)) * 0x1.0p-53;
}

/* Beam's LongGenerator.nextLong(random, n) */
static inline int64_t jr_long_bound(struct jrand *r, int64_t n)
{
	if (n < INT32_MAX)
		return jr_int_bound(r, (int32_t)n);
	int64_t v = jr_long(r) % n;
	return v < 0 ? -v : v;
}

/* ---- the configuration ---- */

#define NX_FIRST_PERSON_ID 1000
#define NX_FIRST_AUCTION_ID 1000
#define NX_FIRST_CATEGORY_ID 10
#define NX_NUM_CATEGORIES 5
#define NX_PERSON_PROPORTION 1
#define NX_AUCTION_PROPORTION 3
#define NX_BID_PROPORTION 46
#define NX_TOTAL (NX_PERSON_PROPORTION + NX_AUCTION_PROPORTION + NX_BID_PROPORTION)
#define NX_PERSON_ID_LEAD 10
#define NX_AUCTION_ID_LEAD 10
#define NX_HOT_SELLER_RATIO 100 /* the size of a group with one hot seller */
#define NX_HOT_AUCTION_RATIO 100
#define NX_HOT_BIDDER_RATIO 100
#define NX_HOT_AUCTIONS 2 /* hotAuctionRatio: a bid is for a hot auction unless nextInt(2) == 0 */
#define NX_HOT_SELLERS 4
#define NX_HOT_BIDDERS 4
#define NX_ACTIVE_PEOPLE 1000
#define NX_IN_FLIGHT_AUCTIONS 100
#define NX_AVG_PERSON 200
#define NX_AVG_AUCTION 500
#define NX_AVG_BID 100

enum nx_kind { NX_PERSON = 0, NX_AUCTION = 1, NX_BID = 2 };

struct nx_person {
	uint32_t kind, extra_len;
	uint64_t id;
	int64_t ts; /* dateTime, ms */
	char name[24], email[32], card[20], city[16], state[8];
}; /* then extra_len bytes */

struct nx_auction {
	uint32_t kind, extra_len;
	uint64_t id, initial_bid, reserve, seller, category;
	int64_t ts, expires;
	char item[24], desc[104];
};

struct nx_bid {
	uint32_t kind, extra_len;
	uint64_t auction, bidder, price;
	int64_t ts;
};

/* room for any extra: below d + round(d / 5) for d = avg - (the smallest
 * fixed part): an auction's at most 446 + 89, a person's and a bid's less */
#define NX_EXTRA_MAX 640

/* The generator's time: event number e is at base_ms + e * delay_us / 1000,
 * delay_us from the event-time rate as Beam's rateToPeriodUs. */
struct nx_gen {
	int64_t base_ms;
	int64_t delay_us;
};

static inline void nx_gen_init(struct nx_gen *g, int64_t base_ms, int64_t events_per_s)
{
	g->base_ms = base_ms;
	g->delay_us = (1000000 + events_per_s / 2) / events_per_s;
	if (g->delay_us < 1)
		g->delay_us = 1;
}

static inline int64_t nx_ts(const struct nx_gen *g, uint64_t e)
{
	return g->base_ms + (int64_t)(e * (uint64_t)g->delay_us / 1000u);
}

static inline enum nx_kind nx_kind_of(uint64_t id)
{
	uint64_t rem = id % NX_TOTAL;
	return rem < NX_PERSON_PROPORTION ? NX_PERSON : rem < NX_PERSON_PROPORTION + NX_AUCTION_PROPORTION ? NX_AUCTION : NX_BID;
}

static inline int64_t nx_last_person(uint64_t id)
{
	int64_t epoch = (int64_t)(id / NX_TOTAL), off = (int64_t)(id % NX_TOTAL);
	if (off >= NX_PERSON_PROPORTION)
		off = NX_PERSON_PROPORTION - 1;
	return epoch * NX_PERSON_PROPORTION + off;
}

static inline int64_t nx_last_auction(uint64_t id)
{
	int64_t epoch = (int64_t)(id / NX_TOTAL), off = (int64_t)(id % NX_TOTAL);
	if (off < NX_PERSON_PROPORTION) {
		epoch--;
		off = NX_AUCTION_PROPORTION - 1;
	} else if (off >= NX_PERSON_PROPORTION + NX_AUCTION_PROPORTION) {
		off = NX_AUCTION_PROPORTION - 1;
	} else {
		off -= NX_PERSON_PROPORTION;
	}
	return epoch * NX_AUCTION_PROPORTION + off;
}

static inline int64_t nx_next_person(uint64_t id, struct jrand *r)
{
	int64_t people = nx_last_person(id) + 1;
	int64_t active = people < NX_ACTIVE_PEOPLE ? people : NX_ACTIVE_PEOPLE;
	return people - active + jr_long_bound(r, active + NX_PERSON_ID_LEAD);
}

static inline int64_t nx_next_auction(uint64_t id, struct jrand *r)
{
	int64_t max = nx_last_auction(id), min = max - NX_IN_FLIGHT_AUCTIONS > 0 ? max - NX_IN_FLIGHT_AUCTIONS : 0;
	return min + jr_long_bound(r, max - min + 1 + NX_AUCTION_ID_LEAD);
}

/* nextString: 3..max-1 letters and spaces, trimmed; returns its length */
static inline int nx_string(struct jrand *r, int max, char *out)
{
	int len = 3 + jr_int_bound(r, max - 3), n = 0;
	for (int i = 0; i < len; i++)
		out[n++] = jr_int_bound(r, 13) == 0 ? ' ' : (char)('a' + jr_int_bound(r, 26));
	int a = 0;
	while (a < n && (unsigned char)out[a] <= ' ')
		a++;
	while (n > a && (unsigned char)out[n - 1] <= ' ')
		n--;
	memmove(out, out + a, (size_t)(n - a));
	out[n - a] = '\0';
	return n - a;
}

/* nextExactString (Java's % keeps a negative int's sign: characters below
 * 'a' occur, as in the reference) */
static inline void nx_exact_string(struct jrand *r, int len, char *out)
{
	int32_t rnd = 0;
	int left = 0;
	for (int i = 0; i < len; i++) {
		if (left == 0) {
			rnd = jr_int(r);
			left = 6;
		}
		out[i] = (char)('a' + rnd % 26);
		rnd /= 26;
		left--;
	}
}

/* nextExtra: its length (its bytes in out) */
static inline uint32_t nx_extra(struct jrand *r, int cur, int avg, char *out)
{
	if (cur > avg)
		return 0;
	int d = avg - cur;
	int delta = (int)floor(d * 0.2 + 0.5); /* Math.round */
	int size = d - delta + (delta == 0 ? 0 : jr_int_bound(r, 2 * delta));
	nx_exact_string(r, size, out);
	return (uint32_t)size;
}

static inline uint64_t nx_price(struct jrand *r)
{
	return (uint64_t)llround(pow(10.0, jr_double(r) * 6.0) * 100.0);
}

static const char *const nx_first[] = { "Peter", "Paul", "Luke", "John", "Saul", "Vicky", "Kate", "Julie", "Sarah", "Deiter", "Walter" };
static const char *const nx_last[] = { "Shultz", "Abrams", "Spencer", "White", "Bartels", "Walton", "Smith", "Jones", "Noris" };
static const char *const nx_cities[] = { "Phoenix", "Los Angeles", "San Francisco", "Boise", "Portland", "Bend", "Redmond", "Seattle", "Kent", "Cheyenne" };
static const char *const nx_states[] = { "AZ", "CA", "ID", "OR", "WA", "WY" };

/* Event number e into buf (at least sizeof(struct nx_auction) +
 * NX_EXTRA_MAX bytes, 8-aligned); returns the record's length. */
static inline uint32_t nx_event(const struct nx_gen *g, uint64_t e, void *buf)
{
	struct jrand r;
	uint64_t id = e; /* firstEventId 0, no out-of-order groups: the id is the number */
	jr_seed(&r, (int64_t)id);
	int64_t ts = nx_ts(g, e);
	switch (nx_kind_of(id)) {
	case NX_PERSON: {
		struct nx_person *p = buf;
		memset(p, 0, sizeof(*p));
		p->kind = NX_PERSON;
		p->id = NX_FIRST_PERSON_ID + (uint64_t)nx_last_person(id);
		p->ts = ts;
		int nl = snprintf(p->name, sizeof(p->name), "%s %s", nx_first[jr_int_bound(&r, 11)], nx_last[jr_int_bound(&r, 9)]);
		char a[8], b[8];
		nx_string(&r, 7, a);
		nx_string(&r, 5, b);
		int el = snprintf(p->email, sizeof(p->email), "%s@%s.com", a, b);
		int c1 = jr_int_bound(&r, 10000), c2 = jr_int_bound(&r, 10000), c3 = jr_int_bound(&r, 10000), c4 = jr_int_bound(&r, 10000);
		int cl = snprintf(p->card, sizeof(p->card), "%04d %04d %04d %04d", c1, c2, c3, c4);
		const char *city = nx_cities[jr_int_bound(&r, 10)], *state = nx_states[jr_int_bound(&r, 6)];
		snprintf(p->city, sizeof(p->city), "%s", city);
		snprintf(p->state, sizeof(p->state), "%s", state);
		int cur = 8 + nl + el + cl + (int)strlen(city) + (int)strlen(state);
		p->extra_len = nx_extra(&r, cur, NX_AVG_PERSON, (char *)(p + 1));
		return (uint32_t)sizeof(*p) + p->extra_len;
	}
	case NX_AUCTION: {
		struct nx_auction *a = buf;
		memset(a, 0, sizeof(*a));
		a->kind = NX_AUCTION;
		a->id = NX_FIRST_AUCTION_ID + (uint64_t)nx_last_auction(id);
		a->ts = ts;
		int64_t seller = jr_int_bound(&r, NX_HOT_SELLERS) > 0 ? (nx_last_person(id) / NX_HOT_SELLER_RATIO) * NX_HOT_SELLER_RATIO
									   : nx_next_person(id, &r);
		a->seller = (uint64_t)seller + NX_FIRST_PERSON_ID;
		a->category = NX_FIRST_CATEGORY_ID + (uint64_t)jr_int_bound(&r, NX_NUM_CATEGORIES);
		a->initial_bid = nx_price(&r);
		/* the auction lives about as long as the next in-flight auctions take to come */
		int64_t horizon = nx_ts(g, e + (uint64_t)NX_IN_FLIGHT_AUCTIONS * NX_TOTAL / NX_AUCTION_PROPORTION) - ts;
		a->expires = ts + 1 + jr_long_bound(&r, 2 * horizon > 1 ? 2 * horizon : 1);
		int il = nx_string(&r, 20, a->item);
		int dl = nx_string(&r, 100, a->desc);
		a->reserve = a->initial_bid + nx_price(&r);
		a->extra_len = nx_extra(&r, 8 + il + dl + 8 * 5, NX_AVG_AUCTION, (char *)(a + 1));
		return (uint32_t)sizeof(*a) + a->extra_len;
	}
	default: {
		struct nx_bid *b = buf;
		b->kind = NX_BID;
		int64_t auction = jr_int_bound(&r, NX_HOT_AUCTIONS) > 0
					  ? (nx_last_auction(id) / NX_HOT_AUCTION_RATIO) * NX_HOT_AUCTION_RATIO
					  : nx_next_auction(id, &r);
		b->auction = (uint64_t)auction + NX_FIRST_AUCTION_ID;
		int64_t bidder = jr_int_bound(&r, NX_HOT_BIDDERS) > 0
					 ? (nx_last_person(id) / NX_HOT_BIDDER_RATIO) * NX_HOT_BIDDER_RATIO + 1
					 : nx_next_person(id, &r);
		b->bidder = (uint64_t)bidder + NX_FIRST_PERSON_ID;
		b->price = nx_price(&r);
		b->ts = ts;
		b->extra_len = nx_extra(&r, 32, NX_AVG_BID, (char *)(b + 1));
		return (uint32_t)sizeof(*b) + b->extra_len;
	}
	}
}

/* A result's hash (FNV-1a, mixed): the "count" outputs XOR them */
static inline uint64_t nx_hash(const void *p, uint32_t len)
{
	const unsigned char *b = p;
	uint64_t h = 0xcbf29ce484222325ull;
	for (uint32_t i = 0; i < len; i++)
		h = (h ^ b[i]) * 0x100000001b3ull;
	return bench_mix(h);
}

#endif
