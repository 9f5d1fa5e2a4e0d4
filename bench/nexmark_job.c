/*
 * bench/nexmark_job.c - Nexmark queries as weir jobs, over the generator of
 * bench/nexmark.h as a source of splits (checkpointed, rescalable):
 *
 *   weir local build/jobs/nexmark.so -q -p P -- QUERY COUNT RATE EVENT_RATE OUTPUT
 *
 * QUERY q0|q1|q2|q5|q11|q12; COUNT events (people, auctions and bids:
 * event numbers 0 .. COUNT-1); RATE events per second in all (0: as fast
 * as it goes); EVENT_RATE events per second of event time (how fast
 * dateTime advances: event e is at e / EVENT_RATE s, from 0); OUTPUT
 * "print" (a text line per result) or "count" (at the end, per sink
 * subtask: "nexmark results N checksum HEX", an XOR of the results' hashes).
 *
 *   q0   every bid (with its extra bytes) passes through
 *   q1   bids with the price in euros: price * 908 / 1000 (cents, rounded down)
 *   q2   the bids of auctions whose id is a multiple of 123: (auction, price)
 *   q3   local item suggestion: auctions of category 10 joined with their
 *        sellers when they live in OR, ID or CA (a keyed join, both sides
 *        kept): (auction, seller, name, city, state)
 *   q4   average closing price per category: each auction's winning bid
 *        (as Beam's WinningBids: the highest bid from the auction's opening
 *        until it expires, at least its reserve; the earliest of equals),
 *        when it expires (an event-time timer), then per category a
 *        running count, sum and average (whole cents) of those prices
 *   q5   hot items: per 10 s window sliding by 2 s, the auctions with the
 *        most bids (all of them on a tie): (auction, bids, window end)
 *   q7   highest bid: per 10 s tumbling window, the bids with its highest
 *        price (at most 8 on a tie, else the job fails saying so)
 *   q8   new users: people who opened an auction in the 10 s tumbling
 *        window they registered in: (person, name, window start)
 *   q11  user sessions: bids per bidder per event-time session (gap 10 s):
 *        (bidder, bids, session start, end)
 *   q12  bids per bidder per 10 s processing-time window (wall clock: the
 *        windows depend on when the job ran; their counts sum to the bids)
 *
 * Event time: per split watermarks trailing each split's newest dateTime
 * (a split's events come in order).
 */
#include <weir/connector.h>

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nexmark.h"
#include "count.h"
#include "splits.h"

#define NX_SPLITS 8 /* event e belongs to split e % NX_SPLITS */

enum query { Q0, Q1, Q2, Q3, Q4, Q5, Q7, Q8, Q11, Q12 };

static struct {
	enum query q;
	uint64_t count, rate;
	struct nx_gen gen;
	int print;
} args; /* weir_job builds the same graph each time, so a static is fine */

static weir_window_spec win_a, win_b;

/* ---- the generator ---- */

static int gen_discover(weir_ctx *ctx)
{
	return gsplits_discover(ctx, "nexmark", NX_SPLITS);
}

static int gen_add(weir_ctx *ctx, weir_split *s, const void *pos, uint32_t len)
{
	return gsplits_add(ctx, s, pos, len, NX_SPLITS);
}

/* the kinds a query reads: the source drops the others before emitting */
static int wanted(enum nx_kind k)
{
	return args.q == Q4 ? k != NX_PERSON : args.q == Q3 || args.q == Q8 ? k != NX_BID : k == NX_BID;
}

static int gen_one(weir_ctx *ctx, weir_split *s, const struct gsplit *p, uint64_t e, uint64_t off, void *arg)
{
	(void)p, (void)off, (void)arg;
	if (!wanted(nx_kind_of(e)))
		return 0;
	uint64_t buf[(sizeof(struct nx_auction) + NX_EXTRA_MAX) / 8 + 1];
	uint32_t len = nx_event(&args.gen, e, buf);
	return weir_emit_split(ctx, s, buf, len, nx_ts(&args.gen, e)); /* every event's dateTime */
}

static int gen_poll(weir_ctx *ctx)
{
	return gsplits_poll(ctx, NX_SPLITS, args.count, args.rate, gen_one, NULL);
}

/* ---- the queries' operators ---- */

struct q1_out {
	uint64_t auction, bidder, price_eur;
	int64_t ts;
};
struct q2_out {
	uint64_t auction, price;
};

static int q1_map(weir_ctx *ctx, const weir_rec *in)
{
	struct nx_bid b;
	memcpy(&b, in->data, sizeof(b));
	struct q1_out o = { b.auction, b.bidder, b.price * 908 / 1000, b.ts };
	return weir_emit(ctx, &o, sizeof(o));
}

static int q2_filter(weir_ctx *ctx, const weir_rec *in)
{
	(void)ctx;
	return ((const struct nx_bid *)in->data)->auction % 123 == 0;
}

static int q2_map(weir_ctx *ctx, const weir_rec *in)
{
	const struct nx_bid *b = (const struct nx_bid *)in->data;
	struct q2_out o = { b->auction, b->price };
	return weir_emit(ctx, &o, sizeof(o));
}

static int by_auction(weir_ctx *ctx, const weir_rec *in, weir_key *key)
{
	(void)ctx;
	key->data = &((const struct nx_bid *)in->data)->auction;
	key->len = sizeof(uint64_t);
	return 0;
}

static int by_bidder(weir_ctx *ctx, const weir_rec *in, weir_key *key)
{
	(void)ctx;
	key->data = &((const struct nx_bid *)in->data)->bidder;
	key->len = sizeof(uint64_t);
	return 0;
}

/* q5's second step: the counts of one sliding window (keyed by its end),
 * gathered in a tumbling window of the slide; the largest ones go */
static int by_window_end(weir_ctx *ctx, const weir_rec *in, weir_key *key)
{
	(void)ctx;
	key->data = &((const struct win_result *)in->data)->end;
	key->len = sizeof(int64_t);
	return 0;
}

static int q5_hottest(weir_ctx *ctx, weir_iter *it)
{
	weir_rec r;
	struct win_result *top = NULL; /* the counts equal to the largest so far */
	size_t n = 0, cap = 0;
	while (weir_iter_next(it, &r) > 0) {
		struct win_result c;
		memcpy(&c, r.data, sizeof(c));
		if (n && c.count < top[0].count)
			continue;
		if (n && c.count > top[0].count)
			n = 0;
		if (n == cap) {
			struct win_result *t = realloc(top, (cap = cap ? 2 * cap : 16) * sizeof(*t));
			if (!t)
				return free(top), weir_fail(ctx, "out of memory");
			top = t;
		}
		top[n++] = c;
	}
	for (size_t i = 0; i < n; i++)
		if (weir_emit(ctx, &top[i], sizeof(top[i])) < 0)
			return free(top), -1;
	free(top);
	return 0;
}

/* q3: people and auctions keyed by person (a seller is a person) */
struct q3_out {
	uint64_t auction, person;
	char name[24], city[16], state[8];
};
static int q3_person_state, q3_pending_state;

static int q3_select(weir_ctx *ctx, const weir_rec *in)
{
	(void)ctx;
	const struct nx_person *p = (const struct nx_person *)in->data;
	if (p->kind == NX_AUCTION)
		return ((const struct nx_auction *)in->data)->category == 10;
	return !strcmp(p->state, "OR") || !strcmp(p->state, "ID") || !strcmp(p->state, "CA");
}

static int by_person(weir_ctx *ctx, const weir_rec *in, weir_key *key)
{
	(void)ctx;
	const struct nx_person *p = (const struct nx_person *)in->data;
	key->data = p->kind == NX_AUCTION ? (const void *)&((const struct nx_auction *)in->data)->seller : (const void *)&p->id;
	key->len = sizeof(uint64_t);
	return 0;
}

static int q3_emit(weir_ctx *ctx, const struct q3_out *who, uint64_t auction)
{
	struct q3_out o = *who;
	o.auction = auction;
	return weir_emit(ctx, &o, sizeof(o));
}

static int q3_join(weir_ctx *ctx, const weir_rec *in)
{
	const struct nx_person *p = (const struct nx_person *)in->data;
	weir_rec known;
	int have = weir_value_get(ctx, q3_person_state, &known);
	if (have < 0)
		return -1;
	if (p->kind == NX_AUCTION) {
		uint64_t id = ((const struct nx_auction *)in->data)->id;
		if (have) {
			struct q3_out who;
			memcpy(&who, known.data, sizeof(who));
			return q3_emit(ctx, &who, id);
		}
		return weir_list_add(ctx, q3_pending_state, &id, sizeof(id)); /* until its seller comes */
	}
	struct q3_out who = { .person = p->id };
	memcpy(who.name, p->name, sizeof(who.name));
	memcpy(who.city, p->city, sizeof(who.city));
	memcpy(who.state, p->state, sizeof(who.state));
	if (weir_value_set(ctx, q3_person_state, &who, sizeof(who)) < 0)
		return -1;
	weir_iter it;
	weir_rec r;
	if (weir_list_iter(ctx, q3_pending_state, &it) < 0)
		return -1;
	while (weir_iter_next(&it, &r) > 0) {
		uint64_t id;
		memcpy(&id, r.data, sizeof(id));
		if (q3_emit(ctx, &who, id) < 0)
			return -1;
	}
	return weir_state_clear(ctx, q3_pending_state);
}

/* q4: auctions and their bids keyed by auction; the winner when it expires */
struct q4_auction {
	int64_t ts, expires;
	uint64_t reserve, category;
	uint64_t best, best_ts; /* the winning bid so far (best 0: none) */
	uint32_t known, closed;
};
struct q4_bid {
	uint64_t price;
	int64_t ts;
};
struct q4_won {
	uint64_t category, price;
};
struct q4_out {
	uint64_t category, auctions, sum, avg;
};
static int q4_auction_state, q4_early_state, q4_category_state;

static int by_auction_id(weir_ctx *ctx, const weir_rec *in, weir_key *key)
{
	(void)ctx;
	const struct nx_bid *b = (const struct nx_bid *)in->data;
	key->data = b->kind == NX_AUCTION ? (const void *)&((const struct nx_auction *)in->data)->id : (const void *)&b->auction;
	key->len = sizeof(uint64_t);
	return 0;
}

/* a bid offered to its auction: the highest price within [ts, expires)
 * and at least the reserve wins; among equals the earliest */
static void q4_offer(struct q4_auction *a, uint64_t price, int64_t ts)
{
	if (ts < a->ts || ts >= a->expires || price < a->reserve)
		return;
	if (!a->best || price > a->best || (price == a->best && (uint64_t)ts < a->best_ts)) {
		a->best = price;
		a->best_ts = (uint64_t)ts;
	}
}

static int q4_winner(weir_ctx *ctx, const weir_rec *in)
{
	const struct nx_bid *b = (const struct nx_bid *)in->data;
	weir_rec st;
	struct q4_auction a = { 0 };
	int have = weir_value_get(ctx, q4_auction_state, &st);
	if (have < 0)
		return -1;
	if (have)
		memcpy(&a, st.data, sizeof(a));
	if (b->kind == NX_BID) {
		if (a.closed)
			return 0; /* too late: it was decided */
		if (!a.known) { /* a bid may come before its auction (ids run ahead) */
			struct q4_bid e = { b->price, b->ts };
			return weir_list_add(ctx, q4_early_state, &e, sizeof(e));
		}
		q4_offer(&a, b->price, b->ts);
		return weir_value_set(ctx, q4_auction_state, &a, sizeof(a));
	}
	const struct nx_auction *au = (const struct nx_auction *)in->data;
	a.known = 1;
	a.ts = au->ts;
	a.expires = au->expires;
	a.reserve = au->reserve;
	a.category = au->category;
	weir_iter it;
	weir_rec r;
	if (weir_list_iter(ctx, q4_early_state, &it) < 0)
		return -1;
	while (weir_iter_next(&it, &r) > 0) {
		struct q4_bid e;
		memcpy(&e, r.data, sizeof(e));
		q4_offer(&a, e.price, e.ts);
	}
	if (weir_state_clear(ctx, q4_early_state) < 0 || weir_value_set(ctx, q4_auction_state, &a, sizeof(a)) < 0)
		return -1;
	return weir_timer_register(ctx, WEIR_EVENT_TIME, a.expires);
}

static int q4_expired(weir_ctx *ctx, int64_t time, enum weir_time_domain domain)
{
	(void)time, (void)domain;
	weir_rec st;
	struct q4_auction a;
	int have = weir_value_get(ctx, q4_auction_state, &st);
	if (have <= 0)
		return have;
	memcpy(&a, st.data, sizeof(a));
	a.closed = 1; /* kept, small, so that later bids are ignored */
	if (weir_value_set(ctx, q4_auction_state, &a, sizeof(a)) < 0)
		return -1;
	if (!a.best)
		return 0;
	struct q4_won w = { a.category, a.best };
	return weir_emit(ctx, &w, sizeof(w));
}

static int by_category(weir_ctx *ctx, const weir_rec *in, weir_key *key)
{
	(void)ctx;
	key->data = &((const struct q4_won *)in->data)->category;
	key->len = sizeof(uint64_t);
	return 0;
}

static int q4_average(weir_ctx *ctx, const weir_rec *in)
{
	struct q4_won w;
	memcpy(&w, in->data, sizeof(w));
	struct q4_out o = { .category = w.category };
	weir_rec st;
	int have = weir_value_get(ctx, q4_category_state, &st);
	if (have < 0)
		return -1;
	if (have)
		memcpy(&o, st.data, sizeof(o));
	o.auctions++;
	o.sum += w.price;
	o.avg = o.sum / o.auctions;
	if (weir_value_set(ctx, q4_category_state, &o, sizeof(o)) < 0)
		return -1;
	return weir_emit(ctx, &o, sizeof(o)); /* an update: the latest per category holds */
}

/* q7: one key, the window's highest bids */
#define Q7_TIES 8
struct q7_acc {
	uint64_t max, n;
	struct nx_bid top[Q7_TIES]; /* extra_len 0 */
};

static int by_nothing(weir_ctx *ctx, const weir_rec *in, weir_key *key)
{
	(void)ctx, (void)in;
	static const uint64_t zero;
	key->data = &zero;
	key->len = sizeof(zero);
	return 0;
}

static int q7_create(weir_ctx *ctx, void *acc)
{
	(void)ctx;
	memset(acc, 0, sizeof(struct q7_acc));
	return 0;
}

static int q7_offer(weir_ctx *ctx, struct q7_acc *a, const struct nx_bid *b)
{
	if (a->n && b->price < a->max)
		return 0;
	if (!a->n || b->price > a->max) {
		a->max = b->price;
		a->n = 0;
	}
	if (a->n == Q7_TIES)
		return weir_fail(ctx, "q7: more than %d bids share the highest price %" PRIu64, Q7_TIES, a->max);
	a->top[a->n] = *b;
	a->top[a->n++].extra_len = 0;
	return 0;
}

static int q7_add(weir_ctx *ctx, void *acc, const weir_rec *in)
{
	struct nx_bid b;
	memcpy(&b, in->data, sizeof(b));
	return q7_offer(ctx, acc, &b);
}

static int q7_merge(weir_ctx *ctx, void *acc, const void *other)
{
	const struct q7_acc *o = other;
	for (uint64_t i = 0; i < o->n; i++)
		if (q7_offer(ctx, acc, &o->top[i]) < 0)
			return -1;
	return 0;
}

static int q7_result(weir_ctx *ctx, const void *acc)
{
	const struct q7_acc *a = acc;
	for (uint64_t i = 0; i < a->n; i++)
		if (weir_emit(ctx, &a->top[i], sizeof(a->top[i])) < 0)
			return -1;
	return 0;
}

static const weir_aggregate q7_highest = {
	.acc_size = sizeof(struct q7_acc), .create = q7_create, .add = q7_add, .merge = q7_merge, .result = q7_result,
};

/* q8: per person and window, was the person new and did they sell? */
struct q8_acc {
	uint32_t person, auctions;
	char name[24];
};
struct q8_out {
	uint64_t person;
	int64_t start;
	char name[24];
};

static int q8_create(weir_ctx *ctx, void *acc)
{
	(void)ctx;
	memset(acc, 0, sizeof(struct q8_acc));
	return 0;
}

static int q8_add(weir_ctx *ctx, void *acc, const weir_rec *in)
{
	(void)ctx;
	struct q8_acc *a = acc;
	const struct nx_person *p = (const struct nx_person *)in->data;
	if (p->kind == NX_PERSON) {
		a->person = 1;
		memcpy(a->name, p->name, sizeof(a->name));
	} else {
		a->auctions++;
	}
	return 0;
}

static int q8_merge(weir_ctx *ctx, void *acc, const void *other)
{
	(void)ctx;
	struct q8_acc *a = acc;
	const struct q8_acc *o = other;
	if (o->person) {
		a->person = 1;
		memcpy(a->name, o->name, sizeof(a->name));
	}
	a->auctions += o->auctions;
	return 0;
}

static int q8_result(weir_ctx *ctx, const void *acc)
{
	const struct q8_acc *a = acc;
	if (!a->person || !a->auctions)
		return 0;
	struct q8_out o;
	weir_key k;
	int64_t end;
	if (weir_ctx_key(ctx, &k) < 0 || k.len != sizeof(o.person) || weir_ctx_window(ctx, &o.start, &end) < 0)
		return weir_fail(ctx, "no key or window in the result function");
	memcpy(&o.person, k.data, sizeof(o.person));
	memcpy(o.name, a->name, sizeof(o.name));
	return weir_emit(ctx, &o, sizeof(o));
}

static const weir_aggregate q8_new = {
	.acc_size = sizeof(struct q8_acc), .create = q8_create, .add = q8_add, .merge = q8_merge, .result = q8_result,
};

/* ---- the sink ---- */

struct stats {
	uint64_t n, x;
};

static int sink_open(weir_ctx *ctx)
{
	struct stats *s = calloc(1, sizeof(*s));
	if (!s)
		return weir_fail(ctx, "out of memory");
	weir_ctx_set_state(ctx, s);
	return 0;
}

static int sink_add(weir_ctx *ctx, const weir_rec *in)
{
	struct stats *s = weir_ctx_state(ctx);
	s->n++;
	if (!args.print) {
		/* q0's extra bytes are the generator's: the fields say it all */
		s->x ^= nx_hash(in->data, args.q == Q0 ? (uint32_t)sizeof(struct nx_bid) : in->len);
		return 0;
	}
	switch (args.q) {
	case Q3: {
		const struct q3_out *o = (const struct q3_out *)in->data;
		printf("%" PRIu64 " %" PRIu64 " %s|%s|%s\n", o->auction, o->person, o->name, o->city, o->state);
		break;
	}
	case Q4: {
		const struct q4_out *o = (const struct q4_out *)in->data;
		printf("%" PRIu64 " %" PRIu64 " %" PRIu64 " %" PRIu64 "\n", o->category, o->auctions, o->sum, o->avg);
		break;
	}
	case Q8: {
		const struct q8_out *o = (const struct q8_out *)in->data;
		printf("%" PRIu64 " %s %" PRId64 "\n", o->person, o->name, o->start);
		break;
	}
	case Q0:
	case Q7: {
		const struct nx_bid *b = (const struct nx_bid *)in->data;
		printf("%" PRIu64 " %" PRIu64 " %" PRIu64 " %" PRId64 " %u\n", b->auction, b->bidder, b->price, b->ts,
		       b->extra_len);
		break;
	}
	case Q1: {
		const struct q1_out *o = (const struct q1_out *)in->data;
		printf("%" PRIu64 " %" PRIu64 " %" PRIu64 " %" PRId64 "\n", o->auction, o->bidder, o->price_eur, o->ts);
		break;
	}
	case Q2: {
		const struct q2_out *o = (const struct q2_out *)in->data;
		printf("%" PRIu64 " %" PRIu64 "\n", o->auction, o->price);
		break;
	}
	default: {
		const struct win_result *o = (const struct win_result *)in->data;
		printf("%" PRIu64 " %" PRIu64 " %" PRId64 " %" PRId64 "\n", o->key, o->count, o->start, o->end);
		break;
	}
	}
	return 0;
}

static int sink_close(weir_ctx *ctx)
{
	struct stats *s = weir_ctx_state(ctx);
	if (!s)
		return 0;
	if (!args.print && !weir_ctx_failing(ctx))
		printf("nexmark results %" PRIu64 " checksum %016" PRIx64 "\n", s->n, s->x);
	fflush(stdout);
	free(s);
	weir_ctx_set_state(ctx, NULL);
	return 0;
}

static int num(const char *s, uint64_t *out)
{
	char *e;
	if (!*s || *s == '-')
		return -1;
	*out = strtoull(s, &e, 10);
	return *e ? -1 : 0;
}

int weir_job(weir_env *env, int argc, char **argv)
{
	static const char *const names[] = { "q0", "q1", "q2", "q3", "q4", "q5", "q7", "q8", "q11", "q12" };
	uint64_t eps = 0;
	int q = -1;
	for (int i = 0; argc == 6 && i < (int)(sizeof(names) / sizeof(names[0])); i++)
		if (!strcmp(argv[1], names[i]))
			q = i;
	if (q < 0 || num(argv[2], &args.count) < 0 || num(argv[3], &args.rate) < 0 || num(argv[4], &eps) < 0 || !eps ||
	    (strcmp(argv[5], "print") && strcmp(argv[5], "count")))
		return weir_env_fail(env, "usage: nexmark.so -- q0|q1|q2|q3|q4|q5|q7|q8|q11|q12 COUNT RATE EVENT_RATE print|count "
				     "(RATE 0: as fast as it goes; EVENT_RATE >= 1 events per second of event time)");
	args.q = (enum query)q;
	args.print = !strcmp(argv[5], "print");
	nx_gen_init(&args.gen, 0, (int64_t)eps);
	static const weir_source_impl gen = {
		.discover = gen_discover,
		.add_split = gen_add,
		.poll = gen_poll,
		.position = gsplits_position,
		.release = gsplits_release,
	};
	weir_stream *events = weir_source_watermarks(weir_source_splits(env, "nexmark", &gen, NULL), 0, 0);
	weir_stream *out = NULL;
	switch (args.q) {
	case Q0:
		out = events; /* the source reads only bids */
		break;
	case Q1:
		out = weir_map(events, "q1-euros", q1_map, NULL);
		break;
	case Q2:
		out = weir_map(weir_filter(events, "q2-select", q2_filter, NULL), "q2-project", q2_map, NULL);
		break;
	case Q3: {
		static const weir_state_desc person = { .name = "q3-person", .kind = WEIR_VALUE_STATE };
		static const weir_state_desc pending = { .name = "q3-pending", .kind = WEIR_LIST_STATE };
		out = weir_process(weir_key_by(weir_filter(events, "q3-select", q3_select, NULL), by_person, NULL),
				   "q3-join", q3_join, NULL, NULL);
		q3_person_state = weir_declare_state(out, &person);
		q3_pending_state = weir_declare_state(out, &pending);
		break;
	}
	case Q4: {
		static const weir_state_desc auction = { .name = "q4-auction", .kind = WEIR_VALUE_STATE };
		static const weir_state_desc early = { .name = "q4-early-bids", .kind = WEIR_LIST_STATE };
		static const weir_state_desc category = { .name = "q4-category", .kind = WEIR_VALUE_STATE };
		weir_stream *won = weir_process(weir_key_by(events, by_auction_id, NULL), "q4-winners", q4_winner,
						q4_expired, NULL);
		q4_auction_state = weir_declare_state(won, &auction);
		q4_early_state = weir_declare_state(won, &early);
		out = weir_process(weir_key_by(won, by_category, NULL), "q4-average", q4_average, NULL, NULL);
		q4_category_state = weir_declare_state(out, &category);
		break;
	}
	case Q7:
		win_a = weir_tumbling(WEIR_EVENT_TIME, 10000);
		out = weir_window_aggregate(weir_key_by(events, by_nothing, NULL), "q7-highest", &win_a, &q7_highest, NULL);
		break;
	case Q8:
		win_a = weir_tumbling(WEIR_EVENT_TIME, 10000);
		out = weir_window_aggregate(weir_key_by(events, by_person, NULL), "q8-new-users", &win_a, &q8_new, NULL);
		break;
	case Q5:
		win_a = weir_sliding(WEIR_EVENT_TIME, 10000, 2000);
		win_b = weir_tumbling(WEIR_EVENT_TIME, 2000);
		out = weir_window_aggregate(weir_key_by(events, by_auction, NULL), "q5-counts", &win_a, &bench_counter,
					    NULL);
		out = weir_window_process(weir_key_by(out, by_window_end, NULL), "q5-hottest", &win_b, q5_hottest, NULL);
		break;
	case Q11:
		win_a = weir_session(WEIR_EVENT_TIME, 10000);
		out = weir_window_aggregate(weir_key_by(events, by_bidder, NULL), "q11-sessions", &win_a, &bench_counter,
					    NULL);
		break;
	case Q12:
		win_a = weir_tumbling(WEIR_PROCESSING_TIME, 10000);
		out = weir_window_aggregate(weir_key_by(events, by_bidder, NULL), "q12-counts", &win_a, &bench_counter,
					    NULL);
		break;
	}
	weir_stream *sink = weir_sink(out, "nexmark-sink", sink_add, NULL);
	weir_on_open(sink, sink_open);
	weir_on_close(sink, sink_close);
	return 0;
}
