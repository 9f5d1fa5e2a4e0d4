/* t1470-exchange: channels between two exchanges over TCP (net/exchange.h),
 * each exchange on its own thread, producers and consumers on threads of
 * their own as tasks would be. Several channels carry patterned segments
 * and an end event: every byte arrives, in order, exactly once; a consumer
 * that reads nothing holds back only its own channel (the others finish
 * meanwhile); removal gives every segment back to both pools; the CQ never
 * overflows. Then a hostile peer (a raw socket that says hello): forged
 * credit, a bad checksum, garbage and an unknown type each close its
 * connection only, and the channel on it is reported lost. alarm() catches
 * a hang; no sleeps. */
#define XXH_INLINE_ALL
#include "tap.h"
#include "net/exchange.h"
#include "net/frame.h"
#include "base/err.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <xxhash.h>

enum { NCH = 4, SEGS = 3000, CREDITS = 4, SEG = 4096 };

struct side {
	struct weir_xchg *x;
	pthread_t th;
	struct weir_pool pool;
};

static void *xrun(void *arg)
{
	weir_xchg_run(arg);
	return NULL;
}

static uint32_t g_silence_ms; /* 0: the default */

static void side_start(struct side *s, uint32_t id, uint32_t nsegs)
{
	struct weir_xchg_config cfg = { .id = id, .seg_size = SEG, .spin_us = 20, .silence_ms = g_silence_ms };
	s->x = weir_xchg_create(&cfg);
	if (!s->x)
		bail("exchange %u: %s", id, weir_err_msg());
	if (weir_pool_init(&s->pool, id, nsegs, SEG, -1) < 0)
		bail("pool: %s", weir_err_msg());
	pthread_create(&s->th, NULL, xrun, s->x);
}

static void side_stop(struct side *s)
{
	weir_xchg_stop(s->x);
	pthread_join(s->th, NULL);
}

/* ---- tasks ---- */

struct task {
	struct weir_chan *ch;
	struct weir_doorbell db;
	int k;
	int got, bad;
	bool ended;
	bool hold;		/* read nothing until released */
	pthread_mutex_t *mu;
	pthread_cond_t *cv;
	bool *release;
	int *finished;		/* consumers done */
	bool *lost;
};

static uint8_t pat(int k, int i, uint32_t j) { return (uint8_t)(k * 53 + i * 7 + j * 3 + 1); }
static uint32_t seglen(int k, int i) { return 1 + (uint32_t)((k * 997 + i * 131) % SEG); }

static void *producer(void *arg)
{
	struct task *t = arg;
	for (int i = 0; i < SEGS; i++) {
		weir_seg s;
		/* within credit only, as the engine's writer does; wait otherwise */
		for (;;) {
			uint32_t seq = weir_doorbell_prepare(&t->db);
			if (weir_chan_can_send(t->ch) && weir_chan_acquire(t->ch, &s) == 0) {
				weir_doorbell_cancel(&t->db);
				break;
			}
			weir_doorbell_wait(&t->db, seq, 0);
			weir_doorbell_cancel(&t->db);
		}
		uint8_t *p = weir_pool_addr(t->ch->pool, s);
		uint32_t n = seglen(t->k, i);
		for (uint32_t j = 0; j < n; j++)
			p[j] = pat(t->k, i, j);
		weir_chan_send(t->ch, s, n);
	}
	weir_chan_send_event(t->ch, 77, 0xabcdef0123ull + (uint64_t)t->k);
	return NULL;
}

static void *consumer(void *arg)
{
	struct task *t = arg;
	if (t->hold) {
		pthread_mutex_lock(t->mu);
		while (!*t->release)
			pthread_cond_wait(t->cv, t->mu);
		pthread_mutex_unlock(t->mu);
	}
	while (!t->ended) {
		struct weir_chan_msg m;
		uint32_t seq = weir_doorbell_prepare(&t->db);
		int rc = weir_chan_recv(t->ch, &m);
		if (rc == 0) {
			weir_doorbell_wait(&t->db, seq, 0);
			weir_doorbell_cancel(&t->db);
			continue;
		}
		weir_doorbell_cancel(&t->db);
		if (rc < 0) {
			t->bad++;
			break;
		}
		if (m.kind == WEIR_MSG_EVENT) {
			t->ended = true;
			if (m.seg != 77 || m.val != 0xabcdef0123ull + (uint64_t)t->k || t->got != SEGS)
				t->bad++;
			break;
		}
		const uint8_t *p = weir_pool_addr(t->ch->pool, m.seg);
		uint32_t n = seglen(t->k, t->got);
		if (m.val != n)
			t->bad++;
		else
			for (uint32_t j = 0; j < n; j++)
				if (p[j] != pat(t->k, t->got, j)) {
					t->bad++;
					break;
				}
		t->got++;
		weir_chan_give(t->ch, m.seg);
	}
	pthread_mutex_lock(t->mu);
	(*t->finished)++;
	pthread_cond_broadcast(t->cv);
	pthread_mutex_unlock(t->mu);
	return NULL;
}

static char g_lost_msg[512];

static void lost_cb(void *arg, const char *msg)
{
	struct task *t = arg;
	diag("lost: %s", msg);
	snprintf(g_lost_msg, sizeof(g_lost_msg), "%s", msg);
	pthread_mutex_lock(t->mu);
	*t->lost = true;
	pthread_cond_broadcast(t->cv);
	pthread_mutex_unlock(t->mu);
}

static void test_flow(void)
{
	struct side a, b;
	side_start(&a, 1, NCH * CREDITS + 64);
	side_start(&b, 2, NCH * CREDITS);
	weir_xchg_peer(a.x, 2, "127.0.0.1", weir_xchg_port(b.x));
	weir_xchg_peer(b.x, 1, "127.0.0.1", weir_xchg_port(a.x));
	uint32_t free_a = weir_pool_free_count(&a.pool), free_b = weir_pool_free_count(&b.pool);
	pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
	pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
	bool release = false, lost = false;
	int finished = 0;
	struct weir_chan P[NCH], C[NCH];
	struct task prod[NCH], cons[NCH];
	struct weir_xchg_chan da[NCH], db[NCH];
	for (int k = 0; k < NCH; k++) {
		prod[k] = (struct task){ .ch = &P[k], .k = k, .mu = &mu, .cv = &cv, .release = &release,
					 .finished = &finished, .lost = &lost };
		cons[k] = prod[k];
		cons[k].ch = &C[k];
		cons[k].hold = k == 0; /* channel 0's consumer reads nothing at first */
		weir_doorbell_init(&prod[k].db);
		weir_doorbell_init(&cons[k].db);
		if (weir_chan_init(&P[k], &a.pool, CREDITS, 16, weir_xchg_doorbell(a.x), &prod[k].db) < 0 ||
		    weir_chan_init(&C[k], &b.pool, CREDITS, 0, &cons[k].db, weir_xchg_doorbell(b.x)) < 0)
			bail("channels: %s", weir_err_msg());
		da[k] = (struct weir_xchg_chan){ .key = 100 + (uint64_t)k, .group = 9, .peer = 2, .send = true,
						 .ch = &P[k], .credits = CREDITS, .lost = lost_cb, .arg = &prod[k] };
		db[k] = (struct weir_xchg_chan){ .key = 100 + (uint64_t)k, .group = 9, .peer = 1, .send = false,
						 .ch = &C[k], .credits = CREDITS, .lost = lost_cb, .arg = &cons[k] };
	}
	if (weir_xchg_add(a.x, da, NCH) < 0 || weir_xchg_add(b.x, db, NCH) < 0)
		bail("add: %s", weir_err_msg());
	pthread_t tp[NCH], tc[NCH];
	for (int k = 0; k < NCH; k++) {
		pthread_create(&tp[k], NULL, producer, &prod[k]);
		pthread_create(&tc[k], NULL, consumer, &cons[k]);
	}
	/* the other channels finish while channel 0's consumer reads nothing */
	pthread_mutex_lock(&mu);
	while (finished < NCH - 1 && !lost)
		pthread_cond_wait(&cv, &mu);
	int early = finished;
	release = true;
	pthread_cond_broadcast(&cv);
	pthread_mutex_unlock(&mu);
	is_int(early, NCH - 1, "%d channels finished while channel 0's consumer held back its own", NCH - 1);
	for (int k = 0; k < NCH; k++) {
		pthread_join(tp[k], NULL);
		pthread_join(tc[k], NULL);
	}
	int got = 0, bad = 0;
	for (int k = 0; k < NCH; k++) {
		got += cons[k].got;
		bad += cons[k].bad;
	}
	is_int(got, NCH * SEGS, "%d segments arrived on %d channels", NCH * SEGS, NCH);
	is_int(bad, 0, "each byte-exact, in order, then the end event with its value");
	ok(!lost, "no channel lost");
	weir_xchg_remove(a.x, 9);
	weir_xchg_remove(b.x, 9);
	for (int k = 0; k < NCH; k++) {
		weir_chan_release(&P[k]);
		weir_chan_release(&C[k]);
	}
	is_int(weir_pool_free_count(&a.pool), free_a, "the sender's pool is whole after removal");
	is_int(weir_pool_free_count(&b.pool), free_b, "the receiver's pool is whole after removal");
	side_stop(&a);
	side_stop(&b);
	struct weir_xchg_stats sa, sb;
	weir_xchg_stats(a.x, &sa);
	weir_xchg_stats(b.x, &sb);
	is_int(sa.cq_overflow + sb.cq_overflow, 0, "CQ overflow 0 on both");
	/* every segment sent took a credit received; grants sent as the
	 * consumers gave the last segments back may still be on the wire
	 * when the sides stop, so received <= granted, not == */
	ok(sa.credits_in >= NCH * SEGS && sa.credits_in <= sb.credits_out, "credits: %llu granted, %llu received",
	   (unsigned long long)sb.credits_out, (unsigned long long)sa.credits_in);
	is_int(sa.bad_frames + sb.bad_frames, 0, "no bad frames");
	weir_xchg_destroy(a.x);
	weir_xchg_destroy(b.x);
	weir_pool_release(&a.pool);
	weir_pool_release(&b.pool);
}

/* ---- a hostile peer ---- */

static void put32(uint8_t *p, uint32_t v) { memcpy(p, &v, 4); }
static void put64(uint8_t *p, uint64_t v) { memcpy(p, &v, 8); }

static void frame(int fd, uint16_t type, const uint8_t *p, uint32_t n)
{
	uint8_t h[WEIR_FRAME_HDR];
	weir_frame_put_hdr(h, type, n);
	if (write(fd, h, sizeof(h)) != (ssize_t)sizeof(h) || write(fd, p, n) != (ssize_t)n)
		bail("write");
}

/* connect as id 3 and say hello (no secret in this test: no auth hooks) */
static int hostile(uint16_t port)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port),
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	if (connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0)
		bail("connect");
	uint8_t h[24];
	put32(h, 0x48435857u);
	put32(h + 4, 1);
	put32(h + 8, 3);
	put32(h + 12, 0);
	put64(h + 16, XXH3_64bits_withSeed(NULL, 0, XXH3_64bits(h, 16)));
	frame(fd, WEIR_FRAME_XHELLO, h, 24);
	return fd;
}

/* read until the exchange closes the connection (its hello first) */
static bool closed_by_peer(int fd)
{
	uint8_t buf[4096];
	for (;;) {
		ssize_t n = read(fd, buf, sizeof(buf));
		if (n == 0 || (n < 0 && errno == ECONNRESET))
			return true;
		if (n < 0)
			return false;
	}
}

static void test_hostile(void)
{
	struct side s;
	side_start(&s, 5, 64);
	weir_xchg_peer(s.x, 3, "127.0.0.1", 1); /* never dialled: 3 < 5 connects to us */
	pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
	pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
	const char *what[] = { "credit beyond the channel's credits", "a credit with a bad checksum",
			       "garbage after the hello", "an unknown frame type" };
	for (int i = 0; i < 4; i++) {
		bool lost = false, release = true;
		int finished = 0;
		struct task t = { .mu = &mu, .cv = &cv, .lost = &lost, .release = &release, .finished = &finished };
		struct weir_chan P;
		weir_doorbell_init(&t.db);
		weir_chan_init(&P, &s.pool, CREDITS, 0, weir_xchg_doorbell(s.x), &t.db);
		t.ch = &P;
		struct weir_xchg_chan d = { .key = 500 + (uint64_t)i, .group = 50 + (uint64_t)i, .peer = 3, .send = true,
					    .ch = &P, .credits = CREDITS, .lost = lost_cb, .arg = &t };
		weir_xchg_add(s.x, &d, 1);
		int fd = hostile(weir_xchg_port(s.x));
		uint8_t h[64] = { 0 };
		if (i == 0 || i == 1) {
			put64(h, d.key);
			put32(h + 8, i == 0 ? CREDITS + 1 : 1);
			put32(h + 12, 0);
			put64(h + 16, XXH3_64bits_withSeed(NULL, 0, XXH3_64bits(h, 16)) ^ (i == 1 ? 4 : 0));
			frame(fd, WEIR_FRAME_XCREDIT, h, 24);
		} else if (i == 2) {
			memset(h, 0xee, sizeof(h));
			if (write(fd, h, sizeof(h)) != (ssize_t)sizeof(h))
				bail("write");
		} else {
			frame(fd, 0x77, h, 8);
		}
		ok(closed_by_peer(fd), "%s: the exchange closes that connection", what[i]);
		pthread_mutex_lock(&mu);
		while (!lost)
			pthread_cond_wait(&cv, &mu);
		pthread_mutex_unlock(&mu);
		ok(lost, "and reports the channel on it lost");
		close(fd);
		weir_xchg_remove(s.x, d.group);
		weir_chan_release(&P);
	}
	is_int(weir_pool_free_count(&s.pool), 64, "its pool is whole");
	side_stop(&s);
	struct weir_xchg_stats st;
	weir_xchg_stats(s.x, &st);
	is_int(st.bad_frames, 3, "3 bad frames counted (the garbage broke the framing: the loop closed that one)");
	weir_xchg_destroy(s.x);
	weir_pool_release(&s.pool);
}

/* a peer that says hello and then nothing (its link cut: no FIN) is
 * noticed by the keepalive within silence_ms */
static void test_silent(void)
{
	g_silence_ms = 300;
	struct side s;
	side_start(&s, 5, 16);
	g_silence_ms = 0;
	pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
	pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
	bool lost = false, release = true;
	int finished = 0;
	struct task t = { .mu = &mu, .cv = &cv, .lost = &lost, .release = &release, .finished = &finished };
	struct weir_chan P;
	weir_doorbell_init(&t.db);
	weir_chan_init(&P, &s.pool, CREDITS, 0, weir_xchg_doorbell(s.x), &t.db);
	t.ch = &P;
	struct weir_xchg_chan d = { .key = 900, .group = 90, .peer = 3, .send = true, .ch = &P, .credits = CREDITS,
				    .lost = lost_cb, .arg = &t };
	weir_xchg_add(s.x, &d, 1);
	int fd = hostile(weir_xchg_port(s.x)); /* hello, then silence (it reads nothing either) */
	pthread_mutex_lock(&mu);
	while (!lost)
		pthread_cond_wait(&cv, &mu);
	pthread_mutex_unlock(&mu);
	ok(strstr(g_lost_msg, "silent for 300 ms") != NULL, "a peer silent for 300 ms: its channel is lost (%s)",
	   g_lost_msg);
	close(fd);
	weir_xchg_remove(s.x, 90);
	weir_chan_release(&P);
	side_stop(&s);
	weir_xchg_destroy(s.x);
	weir_pool_release(&s.pool);
}

int main(void)
{
	alarm(120);
	test_flow();
	test_hostile();
	test_silent();
	done_testing();
}
