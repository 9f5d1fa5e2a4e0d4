/* t1030-channel-threads: a producer and a consumer thread over one
 * channel with few credits, both sleeping on doorbells: every record
 * arrives once, in order, intact; no wake-up is lost (a lost one hangs,
 * and the alarm turns the hang into a failure). Built under TSan too.
 * Randomized sizes: prints its seed; WEIR_SEED=N replays. */
#include "tap.h"
#include "io/record.h"
#include "base/err.h"

#include <ck_pr.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SEG 4096
#define N 200000

static struct weir_pool pool;
static struct weir_doorbell prod_db0, cons_db0, *pdb, *cdb;
static struct weir_chan ch, cch, *cons; /* producer's handle; the consumer's (cch between "processes") */
static uint64_t seed;
static int errors;

static uint32_t len_of(uint64_t *rnd)
{
	uint64_t p = tap_rand(rnd) % 1000;
	return p < 990 ? (uint32_t)(8 + tap_rand(rnd) % 120) : (uint32_t)(tap_rand(rnd) % (2 * SEG));
}

/* The pool ran dry mid-record: sleep until the consumer hands one back. */
static int wait_segment(struct weir_writer *w, void *arg)
{
	(void)arg;
	(void)w;
	uint32_t s = weir_doorbell_prepare(pdb);
	if (weir_chan_can_send(&ch))
		weir_doorbell_cancel(pdb);
	else
		weir_doorbell_wait(pdb, s, 0);
	return 0;
}

static void *producer(void *arg)
{
	(void)arg;
	uint64_t rnd = seed;
	struct weir_writer w;
	weir_writer_init(&w, &ch);
	w.wait_for_segment = wait_segment;
	uint8_t *buf = malloc(2 * SEG + 8);
	for (uint64_t i = 0; i < N; i++) {
		/* wait for credit, sleeping on our doorbell */
		while (!(w.seg != WEIR_SEG_NONE && w.cap - w.used >= WEIR_REC_HDR) && !weir_chan_can_send(&ch)) {
			uint32_t s = weir_doorbell_prepare(pdb);
			if (weir_chan_can_send(&ch)) {
				weir_doorbell_cancel(pdb);
				break;
			}
			weir_doorbell_wait(pdb, s, 0);
		}
		uint32_t len = len_of(&rnd);
		memcpy(buf, &i, 8);
		for (uint32_t k = 8; k < len; k++)
			buf[k] = (uint8_t)(i + k);
		if (weir_writer_put(&w, buf, len < 8 ? 8 : len, (int64_t)i) < 0)
			__atomic_fetch_add(&errors, 1, __ATOMIC_RELAXED);
		if ((i & 63) == 0)
			weir_writer_flush(&w); /* like flush-on-idle: partial segments too */
	}
	weir_writer_flush(&w);
	weir_chan_send_event(&ch, 1, N);
	free(buf);
	return NULL;
}

/* One run: over a private region (shm false) or over a shared-memory pool
 * and channel attached by the consumer as another process would. TSan
 * checks the ring logic in the private run; it cannot relate the two
 * mappings of one file, so the shared run checks the data only. */
static void run_mode(bool shm)
{
	const char *mode = shm ? "shared memory" : "private memory";
	char pname[64], cname[64];
	snprintf(pname, sizeof(pname), "weir-t1030-%d-pool", (int)getpid());
	snprintf(cname, sizeof(cname), "weir-t1030-%d-ch", (int)getpid());
	struct weir_pool att;
	errors = 0;
	/* 4 credits and a tiny floating reserve: the producer must wait */
	if (!shm) {
		weir_doorbell_init(&prod_db0);
		weir_doorbell_init(&cons_db0);
		pdb = &prod_db0;
		cdb = &cons_db0;
		if (weir_pool_init(&pool, 0, 8, SEG, -1) < 0 ||
		    weir_chan_init(&ch, &pool, 4, 4, &cons_db0, &prod_db0) < 0)
			bail("setup: %s", weir_err_msg());
		cons = &ch;
	} else {
		if (weir_pool_create_shm(&pool, pname, 3, 8, SEG, -1, false) < 0 ||
		    weir_chan_create_shm(&ch, cname, &pool, 4, 4) < 0 || weir_pool_attach(&att, pname, 3) < 0 ||
		    weir_chan_attach_shm(&cch, cname, &att) < 0)
			bail("shm setup: %s", weir_err_msg());
		pdb = ch.producer_db;
		cdb = cch.consumer_db;
		cons = &cch;
	}
	pthread_t t;
	pthread_create(&t, NULL, producer, NULL);

	uint64_t rnd = seed, next = 0, wrong = 0, ended = 0;
	struct weir_reader r;
	weir_reader_init(&r, cons, 1 << 20);
	while (!ended) {
		weir_rec rec;
		uint32_t code;
		uint64_t val;
		int rc = weir_reader_next(&r, &rec, &code, &val);
		if (rc == WEIR_READ_EMPTY) {
			uint32_t s = weir_doorbell_prepare(cdb);
			if (weir_chan_pending(cons)) {
				weir_doorbell_cancel(cdb);
				continue;
			}
			weir_doorbell_wait(cdb, s, 0);
			continue;
		}
		if (rc == WEIR_READ_EVENT) {
			ended = val;
			break;
		}
		if (rc < 0)
			bail("reader: %s", weir_err_msg());
		uint32_t len = len_of(&rnd);
		if (len < 8)
			len = 8;
		uint64_t id;
		memcpy(&id, rec.data, 8);
		bool good = id == next && rec.len == len && rec.ts == (int64_t)next;
		for (uint32_t k = 8; good && k < len; k++)
			good = ((const uint8_t *)rec.data)[k] == (uint8_t)(next + k);
		wrong += !good;
		next++;
	}
	pthread_join(t, NULL);
	is_int(errors, 0, "%s: the producer never failed to write", mode);
	is_int(next, N, "%s: all %d records arrived", mode, N);
	is_int(wrong, 0, "%s: each once, in order, with its bytes and timestamp", mode);
	is_int(ended, N, "%s: end event after the last record", mode);
	ok(ch.stats.floating_taken < N / 10, "%s: the producer mostly waited for credit (%llu floating segments)",
	   mode, (unsigned long long)ch.stats.floating_taken);
	weir_reader_release(&r);
	if (shm) {
		weir_chan_release(&cch);
		weir_pool_release(&att);
	}
	weir_chan_release(&ch);
	is_int(weir_pool_free_count(&pool), 8, "%s: every segment back in the pool", mode);
	weir_pool_release(&pool);
}

int main(void)
{
	seed = tap_seed();
	alarm(120);
	run_mode(false);
	run_mode(true);
	done_testing();
}
