/*
 * bench/nexmark_tool.c - the Nexmark generator (bench/nexmark.h) outside
 * the engine: its events as text, for the tests' reference implementations,
 * and plain-loop baselines of the stateless queries, for bench/run.
 *
 *   weir-bench-nexmark dump COUNT EVENT_RATE
 *       P id ts name|email|card|city|state extra_len
 *       A id ts seller category initial_bid reserve expires item|desc extra_len
 *       B auction bidder price ts extra_len
 *   weir-bench-nexmark q0|q1|q2 COUNT EVENT_RATE
 *       the query in one loop over events 0 .. COUNT-1; prints the job's
 *       "nexmark results N checksum HEX" (bench/nexmark_job.c)
 *   weir-bench-nexmark random SEED
 *       the first nextInt(), nextInt(10), nextLong() and nextDouble() of a
 *       java.util.Random(SEED), each from a fresh one (the tests compare
 *       them with Java's)
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nexmark.h"

static uint64_t buf[(sizeof(struct nx_auction) + NX_EXTRA_MAX) / 8 + 1];

int main(int argc, char **argv)
{
	char *e1, *e2;
	if (argc == 3 && !strcmp(argv[1], "random")) {
		struct jrand r;
		int64_t seed = strtoll(argv[2], NULL, 10);
		jr_seed(&r, seed);
		printf("%d\n", jr_int(&r));
		jr_seed(&r, seed);
		printf("%d\n", jr_int_bound(&r, 10));
		jr_seed(&r, seed);
		printf("%" PRId64 "\n", jr_long(&r));
		jr_seed(&r, seed);
		printf("%.15g\n", jr_double(&r));
		return 0;
	}
	uint64_t count = argc == 4 ? strtoull(argv[2], &e1, 10) : 0, eps = argc == 4 ? strtoull(argv[3], &e2, 10) : 0;
	int q = argc != 4 ? -1 : !strcmp(argv[1], "dump") ? 9 : !strcmp(argv[1], "q0") ? 0 : !strcmp(argv[1], "q1") ? 1
								: !strcmp(argv[1], "q2") ? 2 : -1;
	if (q < 0 || *e1 || *e2 || !eps || argv[2][0] == '-') {
		fprintf(stderr, "usage: weir-bench-nexmark dump|q0|q1|q2 COUNT EVENT_RATE | random SEED\n");
		return 2;
	}
	struct nx_gen g;
	nx_gen_init(&g, 0, (int64_t)eps);
	uint64_t n = 0, x = 0;
	for (uint64_t e = 0; e < count; e++) {
		if (q != 9 && nx_kind_of(e) != NX_BID)
			continue;
		nx_event(&g, e, buf);
		const struct nx_bid *b = (const struct nx_bid *)buf;
		switch (q) {
		case 9:
			if (b->kind == NX_PERSON) {
				const struct nx_person *p = (const struct nx_person *)buf;
				printf("P %" PRIu64 " %" PRId64 " %s|%s|%s|%s|%s %u\n", p->id, p->ts, p->name, p->email, p->card,
				       p->city, p->state, p->extra_len);
			} else if (b->kind == NX_AUCTION) {
				const struct nx_auction *a = (const struct nx_auction *)buf;
				printf("A %" PRIu64 " %" PRId64 " %" PRIu64 " %" PRIu64 " %" PRIu64 " %" PRIu64 " %" PRId64
				       " %s|%s %u\n",
				       a->id, a->ts, a->seller, a->category, a->initial_bid, a->reserve, a->expires, a->item,
				       a->desc, a->extra_len);
			} else {
				printf("B %" PRIu64 " %" PRIu64 " %" PRIu64 " %" PRId64 " %u\n", b->auction, b->bidder, b->price,
				       b->ts, b->extra_len);
			}
			continue;
		case 0:
			n++;
			x ^= nx_hash(b, sizeof(*b));
			break;
		case 1: {
			struct {
				uint64_t auction, bidder, price_eur;
				int64_t ts;
			} o = { b->auction, b->bidder, b->price * 908 / 1000, b->ts };
			n++;
			x ^= nx_hash(&o, sizeof(o));
			break;
		}
		case 2:
			if (b->auction % 123 == 0) {
				uint64_t o[2] = { b->auction, b->price };
				n++;
				x ^= nx_hash(o, sizeof(o));
			}
			break;
		}
	}
	if (q != 9)
		printf("nexmark results %" PRIu64 " checksum %016" PRIx64 "\n", n, x);
	return 0;
}
