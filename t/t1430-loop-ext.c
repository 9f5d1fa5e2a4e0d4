/* t1430-loop-ext: what the data plane needs of the loop. External sends
 * (weir_conn_send_ext): frames whose payload stays in the caller's memory
 * arrive byte-exact and in order, each cookie gets exactly one on_sent,
 * with 0 once sent; a connection closed with external sends queued (its
 * peer not reading) gives each of the rest -ECONNRESET, after on_close,
 * and never twice. Multishot receives into provided buffers in memory the
 * caller owns. A futex wait (weir_loop_futex_wait) ends run_once when a
 * doorbell is rung from another thread. Direct writes (weir_conn_direct_*)
 * from another thread never overtake what the loop has queued and never
 * interleave with its sends: frames of both arrive whole and each stream
 * in order, also when both write at once; a queued frame waits while a
 * direct writer holds the socket and goes when it lets go; a broken
 * direct write leaves the socket to nobody; a closed connection refuses
 * direct writers. alarm() catches a hang. */
#include "tap.h"
#include "net/frame.h"
#include "net/loop.h"
#include "base/err.h"
#include "shm/doorbell.h"

#include <sched.h>
#include <stdatomic.h>
#include <sys/uio.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

enum { NFRAMES = 2000, NBIG = 64, BIG = 1 << 20 };

struct side {
	struct weir_conn *accepted;
	int frames, bad, opened, closed;
	uint32_t next_seq;
	uint8_t *sent;		/* per cookie: on_sent calls */
	int sent_ok, sent_reset, sent_after_close;
	bool closed_seen;
};

static uint8_t pat(uint32_t seq, uint32_t j) { return (uint8_t)(seq * 31 + j * 7 + 1); }
static uint32_t plen(uint32_t seq) { return (seq * 977) % 40000; }

static int on_frame(struct weir_conn *c, uint16_t type, const uint8_t *p, uint32_t len, void *arg)
{
	struct side *s = arg;
	(void)c;
	uint32_t seq;
	if (len < 4) {
		s->bad++;
		return 0;
	}
	memcpy(&seq, p, 4);
	if (seq != s->next_seq++ || type != 7 || len != 4 + plen(seq))
		s->bad++;
	else
		for (uint32_t j = 0; j < plen(seq); j++)
			if (p[4 + j] != pat(seq, j)) {
				s->bad++;
				break;
			}
	s->frames++;
	return 0;
}

static void on_open(struct weir_conn *c, void *arg)
{
	struct side *s = arg;
	if (weir_conn_peer(c)[0] != '?')
		s->accepted = c;
	s->opened++;
}

static void on_close(struct weir_conn *c, int reason, void *arg)
{
	(void)c, (void)reason;
	struct side *s = arg;
	s->closed++;
	s->closed_seen = true;
}

static void on_sent(struct weir_conn *c, uint64_t cookie, int res, void *arg)
{
	(void)c;
	struct side *s = arg;
	s->sent[cookie]++;
	if (res == 0)
		s->sent_ok++;
	else if (res == -ECONNRESET)
		s->sent_reset++;
	if (res != 0 && s->closed_seen)
		s->sent_after_close++;
}

/* A loop listening on loopback with a connection *c to itself. */
static struct weir_loop *loop_to_self(const struct weir_loop_config *cfg, struct weir_conn **c)
{
	struct weir_loop *l = weir_loop_create(cfg);
	if (!l)
		bail("loop: %s", weir_err_msg());
	uint16_t port;
	weir_loop_listen(l, NULL, 0, &port);
	if (weir_loop_connect(l, "127.0.0.1", port, 2000, c) < 0)
		bail("connect: %s", weir_err_msg());
	return l;
}

static void test_ext_sends(void)
{
	struct side s = { 0 };
	s.sent = calloc(NFRAMES, 1);
	/* provided buffers in memory of ours, as the data plane uses pool segments */
	uint8_t *rx = aligned_alloc(4096, 32 * 16384);
	struct weir_loop_config cfg = { .rx_bufs = 32, .recv_size = 16384, .rx_mem = rx, .max_frame = 1 << 21,
					.on_frame = on_frame, .on_open = on_open, .on_close = on_close,
					.on_sent = on_sent, .arg = &s };
	struct weir_conn *c;
	struct weir_loop *l = loop_to_self(&cfg, &c);
	/* payloads in one block the test keeps: the loop must not copy them */
	uint8_t *mem = malloc((size_t)NFRAMES * 40000);
	int queued = 0;
	for (uint32_t q = 0; q < NFRAMES; q++) {
		uint8_t *p = mem + (size_t)q * 40000;
		for (uint32_t j = 0; j < plen(q); j++)
			p[j] = pat(q, j);
		queued += weir_conn_send_ext(c, 7, &q, 4, p, plen(q), q) == 0;
	}
	is_int(queued, NFRAMES, "%d external frames queued (payloads not copied)", NFRAMES);
	while (s.frames < NFRAMES && s.closed == 0)
		if (weir_loop_run_once(l, -1) < 0)
			bail("loop: %s", weir_err_msg());
	is_int(s.frames, NFRAMES, "every frame arrived");
	is_int(s.bad, 0, "in order, byte-exact, through provided buffers in the caller's memory");
	while (s.sent_ok < NFRAMES && s.closed == 0)
		weir_loop_run_once(l, -1);
	int once = 1;
	for (int i = 0; i < NFRAMES; i++)
		once &= s.sent[i] == 1;
	ok(once && s.sent_ok == NFRAMES, "on_sent exactly once per cookie, res 0 (%d)", s.sent_ok);
	struct weir_loop_stats st;
	weir_loop_stats(l, &st);
	is_int(st.cq_overflow, 0, "CQ overflow 0");
	diag("%llu bytes out, %llu in, %llu SQEs in flight at most", (unsigned long long)st.bytes_out,
	     (unsigned long long)st.bytes_in, (unsigned long long)st.max_inflight);
	weir_loop_destroy(l);
	free(mem);
	free(rx);
	free(s.sent);
}

/* a peer that never reads: the sends stay queued; closing gives each one
 * not sent -ECONNRESET, exactly once, after on_close */
static void test_close_with_queue(void)
{
	struct side s = { 0 };
	s.sent = calloc(NBIG, 1);
	struct weir_loop_config cfg = { .max_frame = 1 << 21, .max_send = (size_t)NBIG * BIG * 2, .on_open = on_open,
					.on_close = on_close, .on_sent = on_sent, .arg = &s };
	struct weir_loop *l = weir_loop_create(&cfg);
	int lfd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t al = sizeof(a);
	bind(lfd, (struct sockaddr *)&a, sizeof(a));
	listen(lfd, 1);
	getsockname(lfd, (struct sockaddr *)&a, &al);
	int rcv = 4096;
	setsockopt(lfd, SOL_SOCKET, SO_RCVBUF, &rcv, sizeof(rcv));
	struct weir_conn *c;
	weir_loop_connect(l, "127.0.0.1", ntohs(a.sin_port), 2000, &c);
	uint8_t *big = calloc(1, BIG);
	int queued = 0;
	for (uint32_t q = 0; q < NBIG; q++)
		queued += weir_conn_send_ext(c, 7, &q, 4, big, BIG, q) == 0;
	is_int(queued, NBIG, "%d frames of 1 MiB queued to a peer that reads nothing", NBIG);
	while (s.opened == 0)
		weir_loop_run_once(l, -1);
	int peer = accept(lfd, NULL, NULL);
	/* let the kernel take what it will: until a pass sends nothing more */
	uint64_t last = ~0ull;
	for (;;) {
		struct weir_loop_stats st;
		weir_loop_run_once(l, 20);
		weir_loop_stats(l, &st);
		if (st.bytes_out == last)
			break;
		last = st.bytes_out;
	}
	ok(s.sent_ok < NBIG, "the peer's window holds back the rest (%d of %d sent)", s.sent_ok, NBIG);
	weir_conn_close(c, -ECONNABORTED);
	is_int(s.closed, 1, "on_close ran");
	weir_loop_destroy(l);
	int once = 1;
	for (int i = 0; i < NBIG; i++)
		once &= s.sent[i] == 1;
	ok(once, "every cookie got exactly one on_sent");
	is_int(s.sent_ok + s.sent_reset, NBIG, "%d sent, %d -ECONNRESET", s.sent_ok, s.sent_reset);
	is_int(s.sent_after_close, s.sent_reset, "the resets came after on_close");
	close(peer);
	close(lfd);
	free(big);
	free(s.sent);
}

/* ---- the futex wait: a doorbell rung from another thread ends run_once ---- */

struct ringer {
	struct weir_doorbell *db;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool go;
};

static void *ring_main(void *arg)
{
	struct ringer *r = arg;
	pthread_mutex_lock(&r->mu);
	while (!r->go)
		pthread_cond_wait(&r->cv, &r->mu);
	pthread_mutex_unlock(&r->mu);
	weir_doorbell_ring(r->db);
	return NULL;
}

static void test_futex(void)
{
	struct weir_loop_config cfg = { 0 };
	struct weir_loop *l = weir_loop_create(&cfg);
	struct weir_doorbell db;
	weir_doorbell_init(&db);
	int rounds = 0, woken = 0;
	for (int i = 0; i < 20; i++) {
		struct ringer r = { .db = &db, .mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER };
		pthread_t th;
		pthread_create(&th, NULL, ring_main, &r);
		uint32_t seq = weir_doorbell_prepare(&db);
		int rc = weir_loop_futex_wait(l, &db.seq, seq);
		if (rc == -ENOSYS)
			break;
		weir_loop_run_once(l, 0); /* submitted: now the ringer may ring */
		pthread_mutex_lock(&r.mu);
		r.go = true;
		pthread_cond_signal(&r.cv);
		pthread_mutex_unlock(&r.mu);
		/* no timeout: only the futex's completion can end this wait
		 * (alarm() fails the test if it never comes) */
		int n = weir_loop_run_once(l, -1);
		weir_doorbell_cancel(&db);
		pthread_join(th, NULL);
		rounds++;
		woken += n >= 1;
	}
	if (rounds == 0) {
		skip("this kernel has no IORING_OP_FUTEX_WAIT (Linux < 6.7)", 1);
	} else {
		is_int(woken, rounds, "%d doorbell rings from another thread each ended run_once", rounds);
	}
	is_int(weir_loop_futex_wait(l, &db.seq, db.seq) >= 0 || rounds == 0, 1, "armed again after completion");
	weir_loop_destroy(l); /* cancels the armed wait */
	ok(1, "destroy with a futex wait armed returns");
}

/* ---- direct writes ---- */

enum { NDIRECT = 3000 };

/* Two streams on one connection: type 7 through the loop's queue, type 8
 * written directly; each frame {u32 seq} + plen(seq) bytes of pat. */
struct dside {
	struct weir_conn *client;
	int opened;
	uint32_t next[2];
	int frames[2], bad;
};

static int d_frame(struct weir_conn *c, uint16_t type, const uint8_t *p, uint32_t len, void *arg)
{
	struct dside *s = arg;
	(void)c;
	uint32_t seq, k = type == 8;
	if ((type != 7 && type != 8) || len < 4) {
		s->bad++;
		return 0;
	}
	memcpy(&seq, p, 4);
	if (seq != s->next[k]++ || len != 4 + plen(seq) % 3000)
		s->bad++;
	else
		for (uint32_t j = 0; j < plen(seq) % 3000; j++)
			if (p[4 + j] != pat(seq, j)) {
				s->bad++;
				break;
			}
	s->frames[k]++;
	return 0;
}

static void d_open(struct weir_conn *c, void *arg)
{
	struct dside *s = arg;
	if (weir_conn_peer(c)[0] == '?')
		s->client = c;
	s->opened++;
}

/* frame `seq` of stream type into buf: header, seq, payload */
static uint32_t d_build(uint8_t *buf, uint16_t type, uint32_t seq)
{
	uint32_t n = plen(seq) % 3000;
	weir_frame_put_hdr(buf, type, 4 + n);
	memcpy(buf + WEIR_FRAME_HDR, &seq, 4);
	for (uint32_t j = 0; j < n; j++)
		buf[WEIR_FRAME_HDR + 4 + j] = pat(seq, j);
	return WEIR_FRAME_HDR + 4 + n;
}

/* one direct frame: 0, or the error of begin or write */
static int d_write(struct weir_conn *c, uint64_t id, uint32_t seq)
{
	static _Thread_local uint8_t buf[WEIR_FRAME_HDR + 4 + 3000];
	int rc = weir_conn_direct_begin(c, id);
	if (rc < 0)
		return rc;
	struct iovec iov = { buf, d_build(buf, 8, seq) };
	rc = weir_conn_direct_write(c, &iov, 1);
	weir_conn_direct_end(c, rc < 0);
	return rc;
}

struct dwriter {
	struct weir_conn *c;
	uint64_t id;
	int failed, busy;
	_Atomic bool done;
};

static void *dwriter_main(void *arg)
{
	struct dwriter *w = arg;
	for (uint32_t q = 2; q < 2 + NDIRECT; q++) { /* 0 and 1 went before */
		int rc;
		while ((rc = d_write(w->c, w->id, q)) == -EBUSY) {
			w->busy++;
			sched_yield();
		}
		w->failed += rc < 0;
	}
	atomic_store(&w->done, true);
	return NULL;
}

static void d_queue(struct weir_conn *c, uint32_t seq)
{
	uint8_t buf[WEIR_FRAME_HDR + 4 + 3000];
	uint32_t n = d_build(buf, 7, seq);
	weir_conn_send(c, 7, buf + WEIR_FRAME_HDR, n - WEIR_FRAME_HDR);
}

static void test_direct(void)
{
	struct dside s = { 0 };
	struct weir_loop_config cfg = { .max_frame = 1 << 16, .on_frame = d_frame, .on_open = d_open, .arg = &s };
	struct weir_conn *c;
	struct weir_loop *l = loop_to_self(&cfg, &c);
	while (s.opened < 2)
		weir_loop_run_once(l, -1);
	uint64_t id = weir_conn_id(c);

	/* queued first: the socket is the loop's until it is sent */
	d_queue(c, 0);
	is_int(weir_conn_direct_begin(c, id), -EBUSY, "with a frame queued, a direct writer is refused");
	while (s.frames[0] < 1)
		weir_loop_run_once(l, -1);
	is_int(d_write(c, id, 0), 0, "once it is sent, a direct write goes");
	/* the loop queues while a direct writer holds the socket: it waits */
	ok(weir_conn_direct_begin(c, id) == 0, "the socket taken again");
	d_queue(c, 1);
	struct weir_loop_stats st0, st1;
	weir_loop_stats(l, &st0);
	for (int i = 0; i < 5; i++)
		weir_loop_run_once(l, 0);
	weir_loop_stats(l, &st1);
	is_int(st1.bytes_out - st0.bytes_out, 0, "the loop sends nothing while a direct writer holds the socket");
	uint8_t buf[WEIR_FRAME_HDR + 4 + 3000];
	struct iovec iov = { buf, d_build(buf, 8, 1) };
	is_int(weir_conn_direct_write(c, &iov, 1), 0, "the direct frame written");
	weir_conn_direct_end(c, false);
	while (s.frames[0] < 2 || s.frames[1] < 2)
		weir_loop_run_once(l, -1);
	ok(s.bad == 0, "then the queued frame goes, after it; both whole and in order");

	/* both at once: a thread writing directly, this one queueing */
	struct dwriter w = { .c = c, .id = id };
	pthread_t th;
	pthread_create(&th, NULL, dwriter_main, &w);
	for (uint32_t q = 2; q < NDIRECT; q++) {
		d_queue(c, q);
		weir_loop_run_once(l, 0);
	}
	/* the loop also receives: run it until the writer is done, or it
	 * could wait for room forever */
	while (!atomic_load(&w.done) || ((s.frames[0] < NDIRECT || s.frames[1] < 2 + NDIRECT) && s.bad == 0))
		weir_loop_run_once(l, 10);
	pthread_join(th, NULL);
	is_int(w.failed, 0, "the writer's %d frames written (%d times it found the socket taken)", NDIRECT, w.busy);
	ok(s.frames[0] == NDIRECT && s.frames[1] == 2 + NDIRECT && s.bad == 0,
	   "written at once from two threads: %d + %d frames, every one whole, each stream in order (%d bad)",
	   s.frames[0], s.frames[1], s.bad);

	/* broken: the socket is nobody's; the loop sends nothing more */
	ok(weir_conn_direct_begin(c, id) == 0, "taken once more");
	weir_conn_direct_end(c, true);
	weir_loop_stats(l, &st0);
	d_queue(c, NDIRECT);
	for (int i = 0; i < 5; i++)
		weir_loop_run_once(l, 0);
	weir_loop_stats(l, &st1);
	is_int(st1.bytes_out - st0.bytes_out, 0, "after a broken direct write, the loop sends nothing on it");
	is_int(weir_conn_direct_begin(c, id), -EBUSY, "nor may a direct writer");
	weir_conn_close(c, -EPIPE);
	ok(weir_conn_direct_begin(c, id) < 0, "a closed connection refuses direct writers");
	weir_loop_destroy(l);
}

int main(void)
{
	alarm(120);
	test_ext_sends();
	test_close_with_queue();
	test_futex();
	test_direct();
	done_testing();
}
