/* t1410-loop: the io_uring loop with a server loop on its own thread and
 * clients in this one (a client loop, or plain blocking sockets playing
 * hostile peers): echo of N frames on M connections; bad peers (garbage,
 * truncated frame then close, oversized length, wrong version, a byte at a
 * time, a refused frame) lose only their own connection while a good one
 * keeps working; the connection limit; 1000 connections through a ring of
 * 8 entries without CQ overflow; stale completions after a close are
 * dropped; connect refused and timed out; a periodic timer. No sleeps:
 * waits are on condition variables or the loop itself, alarm() catches a
 * hang. The echo, bad-peer and tiny-ring tests run twice: receiving into a
 * buffer per connection, then multishot into a ring of provided buffers
 * small enough that frames span them (g_rx_bufs). */
#include "tap.h"
#include "net/loop.h"
#include "net/frame.h"
#include "base/err.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define T_REFUSE 0xdead /* the server's on_frame refuses this type */

/* 0: a receive buffer per connection; else provided buffers of 4 KiB */
static uint32_t g_rx_bufs;
#define RX_SIZE(n) ((n) ? 4096u : 0u)

/* ---- a server loop on its own thread: echoes every frame ---- */

struct server {
	struct weir_loop *l;
	pthread_t th;
	uint16_t port;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int opened, closed, last_reason;
	int run_rc;
	struct weir_loop_stats st; /* after stop */
};

static int srv_frame(struct weir_conn *c, uint16_t type, const uint8_t *p, uint32_t len, void *arg)
{
	if (type == T_REFUSE)
		return -ECONNRESET;
	return weir_conn_send(c, type, p, len);
}

static void srv_open(struct weir_conn *c, void *arg)
{
	struct server *s = arg;
	pthread_mutex_lock(&s->mu);
	s->opened++;
	pthread_cond_broadcast(&s->cv);
	pthread_mutex_unlock(&s->mu);
}

static void srv_close(struct weir_conn *c, int reason, void *arg)
{
	struct server *s = arg;
	pthread_mutex_lock(&s->mu);
	s->closed++;
	s->last_reason = reason;
	pthread_cond_broadcast(&s->cv);
	pthread_mutex_unlock(&s->mu);
}

static void *srv_main(void *arg)
{
	struct server *s = arg;
	s->run_rc = weir_loop_run(s->l);
	return NULL;
}

static void srv_start(struct server *s, unsigned entries, uint32_t max_conns, uint32_t max_frame)
{
	memset(s, 0, sizeof(*s));
	pthread_mutex_init(&s->mu, NULL);
	pthread_cond_init(&s->cv, NULL);
	struct weir_loop_config cfg = { .entries = entries, .max_conns = max_conns, .max_frame = max_frame,
					.rx_bufs = g_rx_bufs, .recv_size = RX_SIZE(g_rx_bufs),
					.on_frame = srv_frame, .on_open = srv_open, .on_close = srv_close,
					.arg = s };
	s->l = weir_loop_create(&cfg);
	if (!s->l)
		bail("server loop: %s", weir_err_msg());
	if (weir_loop_listen(s->l, NULL, 0, &s->port) < 0)
		bail("server listen: %s", weir_err_msg());
	pthread_create(&s->th, NULL, srv_main, s);
}

/* wait until the server has closed n connections in all */
static void srv_wait_closed(struct server *s, int n)
{
	pthread_mutex_lock(&s->mu);
	while (s->closed < n)
		pthread_cond_wait(&s->cv, &s->mu);
	pthread_mutex_unlock(&s->mu);
}

static int srv_closed(struct server *s)
{
	pthread_mutex_lock(&s->mu);
	int n = s->closed;
	pthread_mutex_unlock(&s->mu);
	return n;
}

static void srv_stop(struct server *s)
{
	weir_loop_stop(s->l);
	pthread_join(s->th, NULL);
	weir_loop_stats(s->l, &s->st);
	weir_loop_destroy(s->l);
	pthread_mutex_destroy(&s->mu);
	pthread_cond_destroy(&s->cv);
}

/* ---- plain blocking sockets ---- */

static int raw_connect(uint16_t port)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port) };
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0)
		bail("connect 127.0.0.1:%u: %s", port, strerror(errno));
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return fd;
}

static bool write_all(int fd, const void *p, size_t n)
{
	const uint8_t *b = p;
	while (n > 0) {
		ssize_t w = send(fd, b, n, MSG_NOSIGNAL);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return false;
		b += w;
		n -= (size_t)w;
	}
	return true;
}

static bool read_all(int fd, void *p, size_t n)
{
	uint8_t *b = p;
	while (n > 0) {
		ssize_t r = recv(fd, b, n, 0);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return false;
		b += r;
		n -= (size_t)r;
	}
	return true;
}

/* send one frame and read its echo back */
static bool roundtrip(int fd, uint16_t type, uint32_t len)
{
	uint8_t *f = malloc(WEIR_FRAME_HDR + len), *g = malloc(WEIR_FRAME_HDR + len);
	for (uint32_t j = 0; j < len; j++)
		f[WEIR_FRAME_HDR + j] = (uint8_t)(j * 13 + type);
	weir_frame_put_hdr(f, type, len);
	bool good = write_all(fd, f, WEIR_FRAME_HDR + len) && read_all(fd, g, WEIR_FRAME_HDR + len) &&
		    !memcmp(f, g, WEIR_FRAME_HDR + len);
	free(f);
	free(g);
	return good;
}

/* true once the peer has closed fd (end of stream or reset) */
static bool closed_by_peer(int fd)
{
	uint8_t b[4096];
	for (;;) {
		ssize_t r = recv(fd, b, sizeof(b), 0);
		if (r == 0 || (r < 0 && errno == ECONNRESET))
			return true;
		if (r < 0 && errno != EINTR)
			return false;
	}
}

/* ---- 1. echo on M connections from a client loop ---- */

#define M 8
#define N 400

struct client {
	int got[M];
	int bad;
	int closed;
	int reasons[M];
};

static uint32_t echo_len(int conn, int seq) { return (uint32_t)((seq * 37 + conn * 11) % 3000); }
static uint8_t echo_byte(int conn, int seq, uint32_t j) { return (uint8_t)(conn * 7 + seq + j); }

static int cli_frame(struct weir_conn *c, uint16_t type, const uint8_t *p, uint32_t len, void *arg)
{
	struct client *cl = arg;
	int k = (int)(intptr_t)weir_conn_data(c);
	int seq = cl->got[k]++;
	if (type != (uint16_t)seq || len != echo_len(k, seq)) {
		cl->bad++;
		return 0;
	}
	for (uint32_t j = 0; j < len; j++)
		if (p[j] != echo_byte(k, seq, j)) {
			cl->bad++;
			break;
		}
	return 0;
}

static void cli_close(struct weir_conn *c, int reason, void *arg)
{
	struct client *cl = arg;
	cl->reasons[(intptr_t)weir_conn_data(c)] = reason;
	cl->closed++;
}

static void test_echo(void)
{
	struct server s;
	srv_start(&s, 256, 64, 0);
	struct client cl = { 0 };
	struct weir_loop_config cfg = { .on_frame = cli_frame, .on_close = cli_close, .arg = &cl,
					.rx_bufs = g_rx_bufs, .recv_size = RX_SIZE(g_rx_bufs) };
	struct weir_loop *l = weir_loop_create(&cfg);
	struct weir_conn *c[M];
	uint8_t *buf = malloc(3000);
	int sent = 0;
	for (int k = 0; k < M; k++) {
		if (weir_loop_connect(l, "127.0.0.1", s.port, 2000, &c[k]) < 0)
			bail("client connect: %s", weir_err_msg());
		weir_conn_set_data(c[k], (void *)(intptr_t)k);
		/* queued before the connection is established */
		for (int q = 0; q < N; q++) {
			uint32_t len = echo_len(k, q);
			for (uint32_t j = 0; j < len; j++)
				buf[j] = echo_byte(k, q, j);
			sent += weir_conn_send(c[k], (uint16_t)q, buf, len) == 0;
		}
	}
	free(buf);
	is_int(sent, M * N, "%d frames queued on %d connections before they are established", M * N, M);
	int total = 0;
	while (total < M * N && cl.closed == 0) {
		if (weir_loop_run_once(l, -1) < 0)
			bail("client loop: %s", weir_err_msg());
		total = 0;
		for (int k = 0; k < M; k++)
			total += cl.got[k];
	}
	is_int(total, M * N, "every frame came back");
	is_int(cl.bad, 0, "in order, each with its type, length and bytes");
	struct weir_loop_stats cs;
	weir_loop_stats(l, &cs);
	is_int(cs.connected, M, "client: %d connects succeeded", M);
	for (int k = 0; k < M; k++)
		weir_conn_close(c[k], 0);
	is_int(cl.closed, M, "client: on_close once per connection, at close");
	srv_wait_closed(&s, M);
	weir_loop_destroy(l);
	srv_stop(&s);
	is_int(s.run_rc, 0, "server loop ran cleanly");
	ok(s.st.frames_in == M * N && s.st.frames_out == M * N, "server: %llu frames in, %llu out",
	   (unsigned long long)s.st.frames_in, (unsigned long long)s.st.frames_out);
	is_int(s.st.cq_overflow + cs.cq_overflow, 0, "CQ overflow: 0 on both loops");
}

/* ---- 2. bad peers lose only their own connection ---- */

static void test_bad_peers(void)
{
	struct server s;
	srv_start(&s, 64, 64, 1024);
	int good = raw_connect(s.port);
	ok(roundtrip(good, 1, 100), "a good connection echoes");
	int closes = 0;

	struct {
		const char *what;
		uint8_t bytes[32];
		size_t n;
		bool shut_wr; /* then end the stream */
		bool byte_at_a_time;
	} bad[] = {
		{ "garbage bytes", "\x13\x37GARBAGE\xff\xfe\x00\x01 and more garbage", 28, false, false },
		{ "a length above the limit", { 0x01, 0x04, 0, 0, 1, 0, 5, 0 }, 8, false, false },
		{ "length 2^32-1", { 0xff, 0xff, 0xff, 0xff, 1, 0, 5, 0 }, 8, false, false },
		{ "version 0 with length 0", { 0, 0, 0, 0, 0, 0, 5, 0 }, 8, false, false },
		{ "version 2", { 4, 0, 0, 0, 2, 0, 5, 0, 'a', 'b', 'c', 'd' }, 12, false, false },
		{ "a truncated frame, then close", { 100, 0, 0, 0, 1, 0, 5, 0, 'x', 'y' }, 10, true, false },
		{ "a truncated header, then close", { 100, 0, 0 }, 3, true, false },
		{ "a bad header a byte at a time", { 0xff, 0xff, 0, 0, 1, 0, 5, 0 }, 8, false, true },
		{ "a frame the server refuses", { 2, 0, 0, 0, 1, 0, 0xad, 0xde, 'h', 'i' }, 10, false, false },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int fd = raw_connect(s.port);
		bool wrote = true;
		if (bad[i].byte_at_a_time)
			for (size_t j = 0; j < bad[i].n; j++)
				wrote &= write_all(fd, bad[i].bytes + j, 1);
		else
			wrote = write_all(fd, bad[i].bytes, bad[i].n);
		if (bad[i].shut_wr)
			shutdown(fd, SHUT_WR);
		ok(wrote && closed_by_peer(fd), "%s: the server closes that connection", bad[i].what);
		close(fd);
		srv_wait_closed(&s, ++closes);
		ok(roundtrip(good, (uint16_t)(10 + i), 1 + (uint32_t)i * 50), "  the good connection still echoes");
	}

	/* a well-formed frame written a byte at a time is fine */
	{
		int fd = raw_connect(s.port);
		uint8_t f[8 + 300], g[8 + 300];
		weir_frame_put_hdr(f, 77, 300);
		for (int j = 0; j < 300; j++)
			f[8 + j] = (uint8_t)j;
		bool wrote = true;
		for (size_t j = 0; j < sizeof(f); j++)
			wrote &= write_all(fd, f + j, 1);
		ok(wrote && read_all(fd, g, sizeof(g)) && !memcmp(f, g, sizeof(f)),
		   "a good frame written one byte per send comes back whole");
		close(fd);
		srv_wait_closed(&s, ++closes);
	}
	ok(roundtrip(good, 99, 1024), "the good connection echoes a frame of exactly the limit");
	close(good);
	srv_wait_closed(&s, ++closes);
	srv_stop(&s);
	is_int(s.st.proto_errors, 8, "server: the 8 framing errors counted (the refused frame is not one)");
	is_int(s.st.closed, closes, "server: each connection closed once");
	is_int(s.st.cq_overflow, 0, "server: CQ overflow 0");
}

/* ---- 3. the connection limit ---- */

static void test_limit(void)
{
	struct server s;
	srv_start(&s, 64, 4, 0);
	int fd[5];
	int okc = 0;
	for (int i = 0; i < 4; i++) {
		fd[i] = raw_connect(s.port);
		okc += roundtrip(fd[i], 3, 10);
	}
	is_int(okc, 4, "max_conns 4: four connections echo");
	fd[4] = raw_connect(s.port);
	ok(closed_by_peer(fd[4]), "the fifth is accepted and closed at once");
	ok(roundtrip(fd[0], 4, 10), "the first four are unaffected");
	close(fd[0]);
	close(fd[4]);
	srv_wait_closed(&s, 1);
	int again = raw_connect(s.port);
	ok(roundtrip(again, 5, 10), "once one closes, a new connection is served");
	close(again);
	for (int i = 1; i < 4; i++)
		close(fd[i]);
	srv_wait_closed(&s, 5);
	srv_stop(&s);
	is_int(s.st.refused, 1, "server: refused 1");
	is_int(s.st.accepted, 5, "server: accepted and kept 5");
}

/* ---- 4. 1000 connections through a ring of 8 entries ---- */

static void test_tiny_ring(void)
{
	struct server s;
	srv_start(&s, 8, 256, 0);
	unsigned cq = weir_loop_cq_entries(s.l);
	ok(cq >= 32 + g_rx_bufs, "8 SQ entries, %u CQ entries (>= 32 + %u provided buffers)", cq, g_rx_bufs);
	enum { TOTAL = 1000, BATCH = 100 };
	int fds[BATCH];
	for (int done = 0; done < TOTAL; done += BATCH) {
		for (int i = 0; i < BATCH; i++)
			fds[i] = raw_connect(s.port);
		/* half of them say something first */
		for (int i = 0; i < BATCH; i += 2)
			write_all(fds[i], "\x00\x00\x00\x00\x01\x00\x07\x00", 8);
		for (int i = 0; i < BATCH; i++)
			close(fds[i]);
		srv_wait_closed(&s, done + BATCH);
	}
	is_int(srv_closed(&s), TOTAL, "%d connections opened and closed, all seen closed by the server", TOTAL);
	int fd = raw_connect(s.port);
	ok(roundtrip(fd, 8, 5000), "then a new connection echoes");
	close(fd);
	srv_wait_closed(&s, TOTAL + 1);
	srv_stop(&s);
	is_int(s.st.accepted, TOTAL + 1, "server: accepted %d", TOTAL + 1);
	is_int(s.st.cq_overflow, 0, "server: CQ overflow 0 (koverflow and IORING_SQ_CQ_OVERFLOW)");
	ok(s.st.max_inflight <= cq, "server: at most %llu SQEs in flight (CQ %u)",
	   (unsigned long long)s.st.max_inflight, cq);
	diag("tiny ring: %llu ops waited for CQ room, %llu stale completions",
	     (unsigned long long)s.st.deferred, (unsigned long long)s.st.stale_cqes);
}

/* ---- 5. one loop, both ends: stale completions, connect errors, timers ---- */

struct local {
	struct weir_conn *accepted;
	int frames, opened, closed, last_reason, ticks;
};

static int loc_frame(struct weir_conn *c, uint16_t type, const uint8_t *p, uint32_t len, void *arg)
{
	((struct local *)arg)->frames++;
	return 0;
}

static void loc_open(struct weir_conn *c, void *arg)
{
	struct local *lo = arg;
	lo->opened++;
	if (!weir_conn_data(c))
		lo->accepted = c; /* outgoing connections carry data */
}

static void loc_close(struct weir_conn *c, int reason, void *arg)
{
	struct local *lo = arg;
	lo->closed++;
	lo->last_reason = reason;
}

static void tick(struct weir_loop *l, void *arg) { ((struct local *)arg)->ticks++; }

static void test_local(void)
{
	struct local lo = { 0 };
	struct weir_loop_config cfg = { .entries = 16, .on_frame = loc_frame, .on_open = loc_open,
					.on_close = loc_close, .arg = &lo };
	struct weir_loop *l = weir_loop_create(&cfg);
	uint16_t port;
	if (!l || weir_loop_listen(l, NULL, 0, &port) < 0)
		bail("local loop: %s", weir_err_msg());
	struct weir_conn *cli;
	weir_loop_connect(l, "127.0.0.1", port, 2000, &cli);
	weir_conn_set_data(cli, &lo);
	while (lo.opened < 2)
		weir_loop_run_once(l, -1);
	ok(lo.accepted != NULL && weir_conn_is_open(cli), "one loop holds both ends of a connection");

	/* the accepted end has a receive in flight; close it, then let the
	 * client's bytes arrive: that receive completes for a closed slot */
	uint64_t id = weir_conn_id(lo.accepted);
	struct weir_loop_stats st0, st1;
	weir_loop_stats(l, &st0);
	weir_conn_send(cli, 1, "hello", 5);
	weir_conn_close(lo.accepted, 0);
	ok(weir_loop_conn(l, id) == NULL, "a closed connection's id no longer resolves");
	while (lo.closed < 2)
		weir_loop_run_once(l, -1);
	weir_loop_stats(l, &st1);
	ok(st1.stale_cqes > st0.stale_cqes, "the closed end's receive completed stale: %llu stale completion(s)",
	   (unsigned long long)(st1.stale_cqes - st0.stale_cqes));
	is_int(lo.frames, 0, "  and its bytes were never decoded");
	is_int(lo.last_reason, 0, "the client saw an orderly end of stream");
	is_int(weir_loop_conns(l), 0, "no connection left open");

	/* connect refused: a port bound but not listening */
	int holder = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = { .sin_family = AF_INET };
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	socklen_t alen = sizeof(a);
	bind(holder, (struct sockaddr *)&a, sizeof(a));
	getsockname(holder, (struct sockaddr *)&a, &alen);
	struct weir_conn *r;
	weir_loop_connect(l, "127.0.0.1", ntohs(a.sin_port), 2000, &r);
	weir_conn_set_data(r, &lo);
	while (lo.closed < 3)
		weir_loop_run_once(l, -1);
	is_int(lo.last_reason, -ECONNREFUSED, "connect to a port nobody listens on: -ECONNREFUSED");
	close(holder);

	/* connect timeout: a listener whose accept queue is full drops SYNs */
	int full = socket(AF_INET, SOCK_STREAM, 0);
	a.sin_port = 0;
	bind(full, (struct sockaddr *)&a, sizeof(a));
	listen(full, 0);
	alen = sizeof(a);
	getsockname(full, (struct sockaddr *)&a, &alen);
	int fill[3];
	for (int i = 0; i < 3; i++) {
		fill[i] = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
		connect(fill[i], (struct sockaddr *)&a, sizeof(a));
	}
	weir_loop_connect(l, "127.0.0.1", ntohs(a.sin_port), 200, &r);
	weir_conn_set_data(r, &lo);
	while (lo.closed < 4 && lo.opened < 3)
		weir_loop_run_once(l, -1);
	if (lo.opened == 3) {
		weir_conn_close(r, 0);
		skip("the kernel completed a connect to a full accept queue", 1);
	} else {
		is_int(lo.last_reason, -ETIMEDOUT, "connect to a full accept queue: -ETIMEDOUT after 200 ms");
	}
	for (int i = 0; i < 3; i++)
		close(fill[i]);
	close(full);

	/* a periodic timer */
	int t = weir_loop_timer_add(l, 5, tick, &lo);
	ok(t >= 0, "timer added");
	while (lo.ticks < 3)
		weir_loop_run_once(l, -1);
	is_int(weir_loop_timer_del(l, t), 0, "timer fired 3 times, then deleted");
	is_int(weir_loop_timer_del(l, t), -ENOENT, "deleting it again: -ENOENT");

	/* limits on send */
	struct weir_conn *dead = weir_loop_conn(l, id);
	ok(dead == NULL, "nothing to send on a closed connection");
	is_int(weir_loop_cq_overflow(l), 0, "CQ overflow 0");
	weir_loop_destroy(l);
}

int main(void)
{
	alarm(120); /* a hang fails the test instead of blocking the run */
	test_echo();
	test_bad_peers();
	test_limit();
	test_tiny_ring();
	test_local();
	g_rx_bufs = 16;
	diag("again, multishot receives into 16 provided buffers of 4 KiB");
	test_echo();
	test_bad_peers();
	test_tiny_ring();
	done_testing();
}
