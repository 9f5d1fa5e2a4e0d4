/*
 * bench/exchange.c - the cross-host exchange benchmark (issue 14): two
 * processes, each as a TaskManager's data plane would be, with a private
 * segment pool, an exchange (net/exchange.h) on its own thread and the
 * channel halves, a task thread at either end.
 *
 *   weir-bench-exchange recv --listen ADDR:PORT [--port-file F] [--dump F] [--give-batch K] [--id 2] [common options]
 *   weir-bench-exchange send --to ADDR:PORT [--listen ADDR:PORT] [--id 1] [--peer-id 2]
 *                            [--mode throughput] [--records N] [--fill K] [common options]
 *   weir-bench-exchange send ... --mode latency --rate R [--count N] [--warmup W] [common options]
 *
 *   producer -> [P] -> exchange 1 ==TCP==> exchange 2 -> [C] -> consumer      key 1 (data)
 *   main     <- [C2] <- exchange 1 <==TCP== exchange 2 <- [P2] <- consumer     key 2 (replies)
 *
 * The sender (id 1, the lower id, so it connects) asks the receiver to
 * start with a START event on the data channel; the receiver answers READY
 * on the reply channel, so the path is up and credit granted before any
 * clock starts. Then:
 *
 *   throughput  the producer fills segments with --records records of
 *     --record bytes (default 32: a sequence number, a timestamp, payload),
 *     --fill per segment (default: as many as fit) and sends each one when
 *     full, then an END event; the consumer reads every record and checks
 *     its sequence number; it answers the END with its figures and DONE.
 *     The sender's clock runs from its first acquire to DONE's arrival, so
 *     it is end to end as netprobe's stream is (first write to the
 *     server's acknowledgement). With --fill 1, records/s is the sustained
 *     rate of lone-record segments (what latency mode's --rate is measured
 *     against).
 *   latency  the producer sends --warmup + --count lone records, one per
 *     segment, at --rate records/s (absolute schedule, clock_nanosleep),
 *     each stamped with CLOCK_MONOTONIC just before it acquires its
 *     segment (a wait for credit counts); the consumer takes now - stamp
 *     when it reads the record: one-way latency, exact because both
 *     processes read the same clock (network namespaces share it). The
 *     figures travel back as events.
 *
 * Lines (key=value; --json: one JSON object):
 *   exchange mode=throughput records= record= fill= seg= credits= spin_us= task_spin_us= seconds= gbps= GBps=
 *            records_per_s= recv_seconds= bad= cpu_s=
 *   exchange mode=latency rate= achieved_rate= count= warmup= late= seg= credits= spin_us= task_spin_us=
 *            min_us= p50_us= p99_us= p999_us= max_us= mean_us= bad= cpu_s=
 * (gbps: gigabits/s, as netprobe prints; GBps: gigabytes/s; cpu_s: the
 * sending process's user+system CPU over the run); the receiver prints
 * "exchange-recv ..." with its first-to-last receive and its CPU.
 *
 * Common options: --seg BYTES (segment size, a power of two, default
 * 32768), --credits N (16, as exchange.credits), --spin-us US (the exchange
 * thread polls this long before sleeping; 0, as a TaskManager's), --task-spin-us US (the
 * producer and consumer threads likewise; 50, as the engine's workers),
 * --timeout S (give up after S seconds, 120), --stats (the exchange's
 * counters on stderr), --json. The receiver also takes --dump F (every
 * latency sample: sequence number, send stamp, latency in ns) and
 * --give-batch K (the consumer hands read segments back K at a time, at
 * most --credits: the exchange then grants their credit in one frame,
 * an experiment for coalesced credit; the sender accepts and ignores it). --tls is the hook for issue 14's "TLS on":
 *  the benchmark sets up no certificates for the exchange's TLS yet, so it is refused (exit 3) and the
 * scripts report TLS as not measured.
 *
 * Exit status: 0, 1 when a run failed (a line on stderr says why), 2 for
 * bad usage, 3 for a feature not there (--tls).
 */
#include "base/clock.h"
#include "base/err.h"
#include "base/log.h"
#include "net/cert.h"
#include "net/exchange.h"
#include "net/tls.h"
#include "shm/channel.h"
#include "shm/doorbell.h"
#include "shm/pool.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

static const char *prog = "weir-bench-exchange";

enum { KEY_DATA = 1, KEY_REPLY = 2, GROUP = 1, REPLY_CREDITS = 2 };
/* events: data channel (sender -> receiver) */
enum { EV_START = 1, EV_END = 2 };
/* events: reply channel (receiver -> sender); results are EV_R0 + index */
enum { EV_READY = 3, EV_DONE = 4, EV_R0 = 10 };
enum { R_RECORDS, R_BAD, R_RECV_NS, R_SAMPLES, R_MIN, R_P50, R_P99, R_P999, R_MAX, R_MEAN, R_N };
enum mode { M_THROUGHPUT = 0, M_LATENCY = 1 };

struct opts {
	bool send, json, stats;
	bool no_direct;		/* every frame through the exchange's thread (weir_xchg_config.no_direct) */
	const char *tls_dir;	/* TLS with the certificate "bench" there (tls-setup makes it) */
	char listen[64], to[64];
	uint16_t listen_port, to_port;
	const char *port_file;
	const char *dump;
	uint32_t id, peer_id;
	uint32_t seg, credits, spin_us, task_spin_us, record, fill;
	uint32_t give_batch;	/* recv: hand read segments back this many at a time */
	enum mode mode;
	uint64_t records, count, warmup;
	double rate;
	unsigned timeout_s;
};

static void usage_exit(const char *fmt, ...)
{
	va_list ap;
	fprintf(stderr, "%s: ", prog);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr,
		"\nusage: %s recv --listen ADDR:PORT [--port-file F] [--dump F] [--give-batch K] [--id 2] [common options]\n"
		"       %s send --to ADDR:PORT [--listen ADDR:PORT] [--id 1] [--peer-id 2]\n"
		"            [--mode throughput --records N [--record B] [--fill K]]\n"
		"            [--mode latency --rate R [--count N] [--warmup W] [--record B]] [common options]\n"
		"common: [--seg BYTES] [--credits N] [--spin-us US] [--task-spin-us US] [--timeout S] [--stats]\n"
		"        [--json] [--tls DIR] [--no-direct]\n"
		"       %s tls-setup DIR IP...\n",
		prog, prog, prog);
	exit(2);
}

static void die(const char *fmt, ...)
{
	va_list ap;
	fprintf(stderr, "%s: ", prog);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1);
}

static uint64_t parse_num(const char *opt, const char *s, uint64_t min, uint64_t max)
{
	char *end;
	errno = 0;
	unsigned long long v = *s >= '0' && *s <= '9' ? strtoull(s, &end, 10) : 0;
	if (*s < '0' || *s > '9' || errno || *end || v < min || v > max)
		usage_exit("%s: '%s' is not a whole number from %" PRIu64 " to %" PRIu64, opt, s, min, max);
	return v;
}

/* "ADDR:PORT" or "[ADDR6]:PORT" into addr (no brackets) and port */
static void parse_hostport(const char *opt, const char *s, char *addr, size_t n, uint16_t *port)
{
	const char *colon = strrchr(s, ':');
	if (!colon || colon == s || !colon[1])
		usage_exit("%s: '%s' is not ADDR:PORT", opt, s);
	const char *h = s;
	size_t hl = (size_t)(colon - s);
	if (s[0] == '[' && colon[-1] == ']') {
		h++;
		hl -= 2;
	}
	if (hl == 0 || hl >= n)
		usage_exit("%s: '%s' is not ADDR:PORT", opt, s);
	memcpy(addr, h, hl);
	addr[hl] = 0;
	*port = (uint16_t)parse_num(opt, colon + 1, 0, 65535);
}

static uint64_t now_ns(void) { return weir_real_now_ns(); }

static double cpu_s(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec * 1e-6 + (double)ru.ru_stime.tv_sec +
	       (double)ru.ru_stime.tv_usec * 1e-6;
}

static void write_port_file(const char *path, unsigned port)
{
	char tmp[PATH_MAX], text[16];
	if (snprintf(tmp, sizeof tmp, "%s.tmp", path) >= (int)sizeof tmp)
		die("'%s': path too long", path);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		die("open '%s': %s", tmp, strerror(errno));
	int n = snprintf(text, sizeof text, "%u\n", port);
	if (write(fd, text, (size_t)n) != n)
		die("write '%s': %s", tmp, strerror(errno));
	close(fd);
	if (rename(tmp, path) < 0)
		die("rename '%s' to '%s': %s", tmp, path, strerror(errno));
}

/* ---- one side: pool, exchange, channels ---- */

struct side {
	const struct opts *o;
	struct weir_pool pool;
	struct weir_xchg *x;
	pthread_t xth;
	struct weir_chan out, in;	/* the half we produce into, the half we consume */
	struct weir_tls_ctx *tls_server, *tls_client;
	struct weir_doorbell out_db, in_db;	/* their task ends' doorbells */
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool lost;
	char lost_msg[512];
};

static void *xrun(void *arg)
{
	pthread_setname_np(pthread_self(), "xchg");
	if (weir_xchg_run(arg) < 0)
		fprintf(stderr, "%s: exchange: %s\n", prog, weir_err_msg());
	return NULL;
}

static void on_lost(void *arg, const char *msg)
{
	struct side *s = arg;
	pthread_mutex_lock(&s->mu);
	if (!s->lost)
		snprintf(s->lost_msg, sizeof(s->lost_msg), "%s", msg);
	s->lost = true;
	pthread_cond_broadcast(&s->cv);
	pthread_mutex_unlock(&s->mu);
	/* wake whoever waits on a channel of ours */
	weir_doorbell_ring(&s->out_db);
	weir_doorbell_ring(&s->in_db);
}

static bool is_lost(struct side *s)
{
	pthread_mutex_lock(&s->mu);
	bool l = s->lost;
	pthread_mutex_unlock(&s->mu);
	return l;
}

/* out: the channel we send on (key out_key, our credits ocr); in: the one
 * we receive on (in_key, icr). */
static void side_start(struct side *s, const struct opts *o, uint64_t out_key, uint32_t ocr, uint64_t in_key,
		       uint32_t icr)
{
	s->o = o;
	pthread_mutex_init(&s->mu, NULL);
	pthread_cond_init(&s->cv, NULL);
	struct weir_xchg_config cfg = {
		.id = o->id,
		.listen_addr = o->listen[0] ? o->listen : NULL,
		.listen_port = o->listen_port,
		.seg_size = o->seg,
		.spin_us = o->spin_us,
		.connect_ms = o->timeout_s * 1000,
		.no_direct = o->no_direct,
	};
	if (o->tls_dir) {
		struct weir_cert_paths cp;
		if (weir_cert_paths(o->tls_dir, "bench", &cp) < 0)
			die("tls: %s", weir_err_msg());
		struct weir_tls_files f = { cp.ca, cp.crt, cp.key };
		if (!(s->tls_server = weir_tls_ctx_create(&f, true)) || !(s->tls_client = weir_tls_ctx_create(&f, false)))
			die("tls: %s", weir_err_msg());
		cfg.tls_server = s->tls_server;
		cfg.tls_client = s->tls_client;
	}
	if (!(s->x = weir_xchg_create(&cfg)))
		die("exchange: %s", weir_err_msg());
	if (weir_pool_init(&s->pool, o->id, ocr + icr + 8, o->seg, -1) < 0)
		die("pool: %s", weir_err_msg());
	weir_doorbell_init(&s->out_db);
	weir_doorbell_init(&s->in_db);
	struct weir_doorbell *xdb = weir_xchg_doorbell(s->x);
	if (weir_chan_init(&s->out, &s->pool, ocr, 0, xdb, &s->out_db) < 0 ||
	    weir_chan_init(&s->in, &s->pool, icr, 0, &s->in_db, xdb) < 0)
		die("channels: %s", weir_err_msg());
	struct weir_xchg_chan d[2] = {
		{ .key = out_key, .group = GROUP, .peer = o->peer_id, .send = true, .ch = &s->out, .credits = ocr,
		  .lost = on_lost, .arg = s },
		{ .key = in_key, .group = GROUP, .peer = o->peer_id, .send = false, .ch = &s->in, .credits = icr,
		  .lost = on_lost, .arg = s },
	};
	if (o->send && weir_xchg_peer(s->x, o->peer_id, o->to, o->to_port) < 0)
		die("peer: %s", weir_err_msg());
	if (weir_xchg_add(s->x, d, 2) < 0)
		die("channels: %s", weir_err_msg());
	if (o->port_file)
		write_port_file(o->port_file, weir_xchg_port(s->x));
	pthread_create(&s->xth, NULL, xrun, s->x);
}

static void side_stop(struct side *s)
{
	weir_xchg_remove(s->x, GROUP);
	weir_xchg_stop(s->x);
	pthread_join(s->xth, NULL);
	if (s->o->stats) {
		struct weir_xchg_stats st;
		weir_xchg_stats(s->x, &st);
		fprintf(stderr,
			"%s: exchange %u: frames out %" PRIu64 " in %" PRIu64 ", bytes out %" PRIu64 " in %" PRIu64
			", credits out %" PRIu64 " in %" PRIu64 ", unknown %" PRIu64 ", bad %" PRIu64
			", conns lost %" PRIu64 ", cq overflow %" PRIu64 "\n",
			prog, s->o->id, st.frames_out, st.frames_in, st.bytes_out, st.bytes_in, st.credits_out,
			st.credits_in, st.unknown, st.bad_frames, st.conns_lost, st.cq_overflow);
	}
	weir_xchg_destroy(s->x);
	weir_tls_ctx_destroy(s->tls_server);
	weir_tls_ctx_destroy(s->tls_client);
	weir_chan_release(&s->out);
	weir_chan_release(&s->in);
	weir_pool_release(&s->pool);
}

/* Wait until ready(c) (true), or the side is lost or the deadline passed
 * (false): poll for spin_ns, then sleep on db (doorbell.h's protocol). */
static bool wait_for(struct side *s, struct weir_chan *c, struct weir_doorbell *db, bool (*ready)(struct weir_chan *),
		     uint64_t spin_ns, uint64_t deadline)
{
	uint64_t t0 = now_ns();
	while (!ready(c)) {
		uint64_t t = now_ns();
		if (t - t0 < spin_ns)
			continue;
		uint32_t seq = weir_doorbell_prepare(db);
		if (ready(c)) {
			weir_doorbell_cancel(db);
			break;
		}
		if (is_lost(s) || t > deadline) {
			weir_doorbell_cancel(db);
			return false;
		}
		weir_doorbell_wait(db, seq, 100 * 1000 * 1000);
		weir_doorbell_cancel(db);
		t0 = now_ns();
	}
	return true;
}

static bool has_msg(struct weir_chan *c) { return weir_chan_pending(c) > 0; }
static bool has_credit(struct weir_chan *c) { return weir_chan_can_send(c); }

static void send_event(struct side *s, uint32_t code, uint64_t val, uint64_t deadline)
{
	while (weir_chan_send_event(&s->out, code, val) < 0) {
		/* the ring's event headroom is full: the exchange drains it */
		if (is_lost(s) || now_ns() > deadline)
			die("sending event %u: %s", code, s->lost ? s->lost_msg : "timed out");
		usleep(50);
	}
}

/* Next message on s->in (1), or 0 when lost or past the deadline. */
static int next_msg(struct side *s, struct weir_chan_msg *m, uint64_t spin_ns, uint64_t deadline)
{
	for (;;) {
		int rc = weir_chan_recv(&s->in, m);
		if (rc < 0)
			die("channel: %s", weir_err_msg());
		if (rc > 0)
			return 1;
		if (!wait_for(s, &s->in, &s->in_db, has_msg, spin_ns, deadline))
			return 0;
	}
}

/* ---- records ---- */

struct rec {
	uint64_t seq;
	uint64_t ts;	/* CLOCK_MONOTONIC ns at send (latency mode), else 0 */
};

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

/* Nearest rank, as netprobe. */
static uint64_t pct(const uint64_t *v, uint64_t n, double p)
{
	uint64_t k = (uint64_t)(p * (double)n + 0.999999);
	if (k < 1)
		k = 1;
	if (k > n)
		k = n;
	return v[k - 1];
}

/* ---- the receiver ---- */

static int run_recv(const struct opts *o)
{
	struct side s = { 0 };
	pthread_setname_np(pthread_self(), "consumer");
	side_start(&s, o, KEY_REPLY, REPLY_CREDITS, KEY_DATA, o->credits);
	uint64_t spin = (uint64_t)o->task_spin_us * 1000u;
	uint64_t deadline = now_ns() + (uint64_t)o->timeout_s * 1000000000ull;
	struct weir_chan_msg m;
	enum mode mode = M_THROUGHPUT;
	uint32_t record = sizeof(struct rec);
	uint64_t warmup = 0, expect = 0, bad = 0, t_first = 0, t_last = 0, nlat = 0, caplat = 0, seen = 0;
	uint64_t *lat = NULL;
	bool started = false, ended = false;
	weir_seg held[64];
	uint32_t nheld = 0;
	FILE *dump = o->dump ? fopen(o->dump, "w") : NULL;
	if (o->dump && !dump)
		die("--dump '%s': %s", o->dump, strerror(errno));
	double c0 = 0;
	while (!ended) {
		if (!next_msg(&s, &m, spin, deadline))
			die("receiving: %s", s.lost ? s.lost_msg : "timed out");
		if (m.kind == WEIR_MSG_EVENT) {
			if (m.seg == EV_START) {
				mode = (enum mode)(m.val & 0xff);
				record = (uint32_t)(m.val >> 8) & 0xffff;
				warmup = m.val >> 24;
				if (record < sizeof(struct rec) || record > o->seg)
					die("START: a record of %u bytes", record);
				started = true;
				c0 = cpu_s();
				send_event(&s, EV_READY, 0, deadline);
			} else if (m.seg == EV_END) {
				t_last = now_ns();
				if (m.val != expect)
					bad++;
				ended = true;
			} else {
				die("an unknown event %u", m.seg);
			}
			continue;
		}
		if (!started)
			die("data before START");
		const uint8_t *p = weir_pool_addr(s.in.pool, m.seg);
		uint32_t n = (uint32_t)m.val / record;
		if (!t_first)
			t_first = now_ns();
		if (mode == M_LATENCY) {
			struct rec r;
			memcpy(&r, p, sizeof(r));
			uint64_t t = now_ns();
			if (seen++ >= warmup) {
				if (nlat == caplat) {
					caplat = caplat ? 2 * caplat : 65536;
					if (!(lat = realloc(lat, caplat * sizeof(*lat))))
						die("out of memory");
				}
				lat[nlat++] = t - r.ts;
				if (dump)
					fprintf(dump, "%" PRIu64 " %" PRIu64 " %" PRIu64 "\n", r.seq, r.ts, t - r.ts);
			}
		}
		/* read every record: its sequence number must follow */
		for (uint32_t i = 0; i < n; i++) {
			uint64_t q;
			memcpy(&q, p + (size_t)i * record, sizeof(q));
			bad += q != expect;
			expect = q + 1;
		}
		/* --give-batch: hold read segments and hand them back together,
		 * so the receiving exchange grants their credit in one frame
		 * (what coalesced credit would do inside the exchange) */
		held[nheld++] = m.seg;
		if (nheld >= o->give_batch) {
			for (uint32_t i = 0; i < nheld; i++)
				weir_chan_give(&s.in, held[i]);
			nheld = 0;
		}
	}
	for (uint32_t i = 0; i < nheld; i++)
		weir_chan_give(&s.in, held[i]);
	double cpu = cpu_s() - c0;
	uint64_t r[R_N] = { 0 };
	r[R_RECORDS] = expect;
	r[R_BAD] = bad;
	r[R_RECV_NS] = t_last - t_first;
	r[R_SAMPLES] = nlat;
	if (nlat) {
		qsort(lat, nlat, sizeof(*lat), cmp_u64);
		double sum = 0;
		for (uint64_t i = 0; i < nlat; i++)
			sum += (double)lat[i];
		r[R_MIN] = lat[0];
		r[R_P50] = pct(lat, nlat, 0.50);
		r[R_P99] = pct(lat, nlat, 0.99);
		r[R_P999] = pct(lat, nlat, 0.999);
		r[R_MAX] = lat[nlat - 1];
		r[R_MEAN] = (uint64_t)(sum / (double)nlat);
	}
	free(lat);
	if (dump)
		fclose(dump);
	for (int i = 0; i < R_N; i++)
		send_event(&s, EV_R0 + (uint32_t)i, r[i], deadline);
	send_event(&s, EV_DONE, 0, deadline);
	double secs = (double)r[R_RECV_NS] * 1e-9;
	double bytes = (double)expect * record;
	if (o->json)
		printf("{\"probe\":\"exchange-recv\",\"mode\":\"%s\",\"records\":%" PRIu64 ",\"seconds\":%.6f,"
		       "\"GBps\":%.3f,\"bad\":%" PRIu64 ",\"cpu_s\":%.3f}\n",
		       mode == M_LATENCY ? "latency" : "throughput", expect, secs, secs > 0 ? bytes / secs / 1e9 : 0,
		       bad, cpu);
	else
		printf("exchange-recv mode=%s records=%" PRIu64 " seconds=%.6f GBps=%.3f bad=%" PRIu64 " cpu_s=%.3f\n",
		       mode == M_LATENCY ? "latency" : "throughput", expect, secs, secs > 0 ? bytes / secs / 1e9 : 0,
		       bad, cpu);
	fflush(stdout);
	/* the sender closes the connection once it has the figures: wait for
	 * that (our channels are then lost), so the replies are not cut off */
	pthread_mutex_lock(&s.mu);
	while (!s.lost) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += 10;
		if (pthread_cond_timedwait(&s.cv, &s.mu, &ts) == ETIMEDOUT)
			break;
	}
	pthread_mutex_unlock(&s.mu);
	side_stop(&s);
	return bad ? 1 : 0;
}

/* ---- the sender ---- */

struct producer {
	struct side *s;
	const struct opts *o;
	uint64_t deadline;
	uint64_t t0, t_last_send;	/* first acquire; the last send (latency) */
	uint64_t late;			/* latency: sends begun later than one interval after their slot */
};

static void acquire(struct producer *pr, weir_seg *seg)
{
	struct side *s = pr->s;
	for (;;) {
		if (weir_chan_can_send(&s->out) && weir_chan_acquire(&s->out, seg) == 0)
			return;
		if (!wait_for(s, &s->out, &s->out_db, has_credit, (uint64_t)pr->o->task_spin_us * 1000u,
			      pr->deadline))
			die("waiting for credit: %s", s->lost ? s->lost_msg : "timed out");
	}
}

static void *produce(void *arg)
{
	struct producer *pr = arg;
	const struct opts *o = pr->o;
	struct side *s = pr->s;
	uint64_t seq = 0;
	pthread_setname_np(pthread_self(), "producer");
	pr->t0 = now_ns();
	if (o->mode == M_THROUGHPUT) {
		uint32_t per = o->fill;
		while (seq < o->records) {
			weir_seg sg;
			acquire(pr, &sg);
			uint8_t *p = weir_pool_addr(&s->pool, sg);
			uint32_t n = o->records - seq < per ? (uint32_t)(o->records - seq) : per;
			for (uint32_t i = 0; i < n; i++) {
				struct rec r = { .seq = seq++, .ts = 0 };
				memcpy(p + (size_t)i * o->record, &r, sizeof(r));
			}
			if (weir_chan_send(&s->out, sg, n * o->record) < 0)
				die("send: the channel's ring is full");
		}
	} else {
		uint64_t total = o->warmup + o->count;
		double interval = 1e9 / o->rate;
		uint64_t start = now_ns() + 1000000; /* the first slot 1 ms from now */
		for (uint64_t k = 0; k < total; k++) {
			uint64_t slot = start + (uint64_t)((double)k * interval);
			uint64_t t = now_ns();
			if (t < slot) {
				struct timespec ts = { .tv_sec = (time_t)(slot / 1000000000u),
						       .tv_nsec = (long)(slot % 1000000000u) };
				while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR) {
				}
			} else if (t - slot > (uint64_t)interval) {
				pr->late++;
			}
			uint64_t ts = now_ns();
			if (k == o->warmup)
				pr->t0 = ts;
			weir_seg sg;
			acquire(pr, &sg);
			struct rec r = { .seq = seq++, .ts = ts };
			uint8_t *p = weir_pool_addr(&s->pool, sg);
			memcpy(p, &r, sizeof(r));
			memset(p + sizeof(r), 0x5a, o->record - sizeof(r));
			if (weir_chan_send(&s->out, sg, o->record) < 0)
				die("send: the channel's ring is full");
			pr->t_last_send = ts;
		}
	}
	send_event(s, EV_END, seq, pr->deadline);
	return NULL;
}

/* The next event on the reply channel (the receiver sends no data on it). */
static struct weir_chan_msg reply(struct side *s, const struct opts *o, uint64_t deadline)
{
	struct weir_chan_msg m;
	if (!next_msg(s, &m, (uint64_t)o->task_spin_us * 1000u, deadline))
		die("waiting for the receiver: %s", s->lost ? s->lost_msg : "timed out");
	if (m.kind != WEIR_MSG_EVENT)
		die("data on the reply channel");
	return m;
}

static int run_send(const struct opts *o)
{
	struct side s = { 0 };
	side_start(&s, o, KEY_DATA, o->credits, KEY_REPLY, REPLY_CREDITS);
	uint64_t deadline = now_ns() + (uint64_t)o->timeout_s * 1000000000ull;
	/* START, and READY back: connected, proven, credit granted both ways */
	send_event(&s, EV_START, (uint64_t)o->mode | (uint64_t)o->record << 8 | o->warmup << 24, deadline);
	struct weir_chan_msg m = reply(&s, o, deadline);
	if (m.seg != EV_READY)
		die("expected READY, got event %u", m.seg);
	struct producer pr = { .s = &s, .o = o, .deadline = deadline };
	double c0 = cpu_s();
	pthread_t th;
	pthread_create(&th, NULL, produce, &pr);
	uint64_t r[R_N] = { 0 };
	for (;;) {
		m = reply(&s, o, deadline);
		if (m.seg == EV_DONE)
			break;
		if (m.seg >= EV_R0 && m.seg < EV_R0 + R_N)
			r[m.seg - EV_R0] = m.val;
		else
			die("an unknown reply %u", m.seg);
	}
	uint64_t t1 = now_ns();
	pthread_join(th, NULL);
	double cpu = cpu_s() - c0;
	side_stop(&s);
	uint64_t n = o->mode == M_THROUGHPUT ? o->records : o->warmup + o->count;
	if (r[R_RECORDS] != n || r[R_BAD])
		fprintf(stderr, "%s: the receiver counted %" PRIu64 " records of %" PRIu64 ", %" PRIu64 " out of sequence\n",
			prog, r[R_RECORDS], n, r[R_BAD]);
	const char *common_fmt = "seg=%u credits=%u spin_us=%u task_spin_us=%u";
	char common[160];
	snprintf(common, sizeof(common), common_fmt, o->seg, o->credits, o->spin_us, o->task_spin_us);
	if (o->mode == M_THROUGHPUT) {
		double secs = (double)(t1 - pr.t0) * 1e-9;
		double bytes = (double)o->records * o->record;
		double gBps = secs > 0 ? bytes / secs / 1e9 : 0;
		if (o->json)
			printf("{\"probe\":\"exchange\",\"mode\":\"throughput\",\"records\":%" PRIu64
			       ",\"record\":%u,\"fill\":%u,\"seg\":%u,\"credits\":%u,\"spin_us\":%u,\"task_spin_us\":%u,"
			       "\"seconds\":%.6f,\"gbps\":%.3f,\"GBps\":%.3f,\"records_per_s\":%.0f,\"recv_seconds\":%.6f,"
			       "\"bad\":%" PRIu64 ",\"cpu_s\":%.3f}\n",
			       o->records, o->record, o->fill, o->seg, o->credits, o->spin_us, o->task_spin_us, secs,
			       gBps * 8, gBps, secs > 0 ? (double)o->records / secs : 0, (double)r[R_RECV_NS] * 1e-9,
			       r[R_BAD], cpu);
		else
			printf("exchange mode=throughput records=%" PRIu64 " record=%u fill=%u %s seconds=%.6f gbps=%.3f "
			       "GBps=%.3f records_per_s=%.0f recv_seconds=%.6f bad=%" PRIu64 " cpu_s=%.3f\n",
			       o->records, o->record, o->fill, common, secs, gBps * 8, gBps,
			       secs > 0 ? (double)o->records / secs : 0, (double)r[R_RECV_NS] * 1e-9, r[R_BAD], cpu);
	} else {
		double span = (double)(pr.t_last_send - pr.t0) * 1e-9;
		double achieved = span > 0 && o->count > 1 ? (double)(o->count - 1) / span : 0;
		double us[R_N];
		for (int i = 0; i < R_N; i++)
			us[i] = (double)r[i] / 1000.0;
		if (o->json)
			printf("{\"probe\":\"exchange\",\"mode\":\"latency\",\"rate\":%.0f,\"achieved_rate\":%.0f,"
			       "\"count\":%" PRIu64 ",\"warmup\":%" PRIu64 ",\"late\":%" PRIu64 ",\"record\":%u,\"seg\":%u,"
			       "\"credits\":%u,\"spin_us\":%u,\"task_spin_us\":%u,\"min_us\":%.2f,\"p50_us\":%.2f,"
			       "\"p99_us\":%.2f,\"p999_us\":%.2f,\"max_us\":%.2f,\"mean_us\":%.2f,\"bad\":%" PRIu64
			       ",\"cpu_s\":%.3f}\n",
			       o->rate, achieved, o->count, o->warmup, pr.late, o->record, o->seg, o->credits, o->spin_us,
			       o->task_spin_us, us[R_MIN], us[R_P50], us[R_P99], us[R_P999], us[R_MAX], us[R_MEAN],
			       r[R_BAD], cpu);
		else
			printf("exchange mode=latency rate=%.0f achieved_rate=%.0f count=%" PRIu64 " warmup=%" PRIu64
			       " late=%" PRIu64 " record=%u %s min_us=%.2f p50_us=%.2f p99_us=%.2f p999_us=%.2f max_us=%.2f"
			       " mean_us=%.2f bad=%" PRIu64 " cpu_s=%.3f\n",
			       o->rate, achieved, o->count, o->warmup, pr.late, o->record, common, us[R_MIN], us[R_P50],
			       us[R_P99], us[R_P999], us[R_MAX], us[R_MEAN], r[R_BAD], cpu);
	}
	return r[R_RECORDS] == n && !r[R_BAD] ? 0 : 1;
}

int main(int argc, char **argv)
{
	if (argc < 2)
		usage_exit("which side? recv or send");
	if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
		printf("usage: %s recv|send|tls-setup ... (see bench/exchange.c)\n", prog);
		return 0;
	}
	if (!strcmp(argv[1], "tls-setup")) {
		/* a cluster CA and the certificate "bench" for the addresses given */
		if (argc < 4)
			usage_exit("tls-setup DIR IP...");
		if (weir_cert_ca_create(argv[2]) < 0 ||
		    weir_cert_host_create(argv[2], "bench", (const char *const *)argv + 3, (size_t)(argc - 3)) < 0) {
			fprintf(stderr, "%s: tls-setup: %s\n", prog, weir_err_msg());
			return 1;
		}
		return 0;
	}
	struct opts o = { .seg = 32768, .credits = 16, .spin_us = 0, .task_spin_us = 50, .record = 32,
			  .count = 50000, .warmup = 1000, .timeout_s = 120, .give_batch = 1 };
	if (!strcmp(argv[1], "send"))
		o.send = true;
	else if (strcmp(argv[1], "recv"))
		usage_exit("unknown side '%s' (recv or send)", argv[1]);
	o.id = o.send ? 1 : 2;
	o.peer_id = o.send ? 2 : 1;
	bool have_listen = false, have_to = false, have_records = false, have_rate = false, have_fill = false;
	for (int i = 2; i < argc; i++) {
		const char *a = argv[i];
		if (!strcmp(a, "--json")) {
			o.json = true;
			continue;
		}
		if (!strcmp(a, "--stats")) {
			o.stats = true;
			continue;
		}
		if (!strcmp(a, "--no-direct")) {
			o.no_direct = true;
			continue;
		}
		if (!strcmp(a, "--tls")) {
			if (i + 1 >= argc)
				usage_exit("--tls wants a folder (made by %s tls-setup)", prog);
			o.tls_dir = argv[++i];
			continue;
		}
		if (strncmp(a, "--", 2))
			usage_exit("unexpected argument '%s'", a);
		if (i + 1 >= argc)
			usage_exit("%s needs a value", a);
		const char *v = argv[++i];
		if (!strcmp(a, "--listen")) {
			parse_hostport(a, v, o.listen, sizeof(o.listen), &o.listen_port);
			have_listen = true;
		} else if (!o.send && !strcmp(a, "--port-file")) {
			o.port_file = v;
		} else if (!o.send && !strcmp(a, "--dump")) {
			o.dump = v;
		} else if (!strcmp(a, "--give-batch")) { /* the sender ignores it: one option list serves both */
			o.give_batch = (uint32_t)parse_num(a, v, 1, 64);
		} else if (o.send && !strcmp(a, "--to")) {
			parse_hostport(a, v, o.to, sizeof(o.to), &o.to_port);
			have_to = true;
		} else if (!strcmp(a, "--id")) {
			o.id = (uint32_t)parse_num(a, v, 0, WEIR_XCHG_MAX_PEERS - 1);
		} else if (!strcmp(a, "--peer-id")) {
			o.peer_id = (uint32_t)parse_num(a, v, 0, WEIR_XCHG_MAX_PEERS - 1);
		} else if (!strcmp(a, "--seg")) {
			o.seg = (uint32_t)parse_num(a, v, 4096, 16u << 20);
			if (o.seg & (o.seg - 1))
				usage_exit("--seg: %u is not a power of two", o.seg);
		} else if (!strcmp(a, "--credits")) {
			o.credits = (uint32_t)parse_num(a, v, 1, 1024);
		} else if (!strcmp(a, "--spin-us")) {
			o.spin_us = (uint32_t)parse_num(a, v, 0, 1000000);
		} else if (!strcmp(a, "--task-spin-us")) {
			o.task_spin_us = (uint32_t)parse_num(a, v, 0, 1000000);
		} else if (o.send && !strcmp(a, "--record")) {
			o.record = (uint32_t)parse_num(a, v, sizeof(struct rec), 4096);
		} else if (!strcmp(a, "--timeout")) {
			o.timeout_s = (unsigned)parse_num(a, v, 1, 3600);
		} else if (o.send && !strcmp(a, "--mode")) {
			if (!strcmp(v, "throughput"))
				o.mode = M_THROUGHPUT;
			else if (!strcmp(v, "latency"))
				o.mode = M_LATENCY;
			else
				usage_exit("--mode: '%s' is neither throughput nor latency", v);
		} else if (o.send && !strcmp(a, "--records")) {
			o.records = parse_num(a, v, 1, 1ull << 40);
			have_records = true;
		} else if (o.send && !strcmp(a, "--fill")) {
			o.fill = (uint32_t)parse_num(a, v, 1, 1u << 24);
			have_fill = true;
		} else if (o.send && !strcmp(a, "--rate")) {
			o.rate = (double)parse_num(a, v, 1, 100000000);
			have_rate = true;
		} else if (o.send && !strcmp(a, "--count")) {
			o.count = parse_num(a, v, 1, 100000000);
		} else if (o.send && !strcmp(a, "--warmup")) {
			o.warmup = parse_num(a, v, 0, 100000000);
		} else {
			usage_exit("unknown option '%s' for %s", a, argv[1]);
		}
	}
	if (o.id == o.peer_id)
		usage_exit("--id and --peer-id are both %u", o.id);
	if (o.send) {
		if (!have_to)
			usage_exit("send needs --to");
		if (o.id > o.peer_id)
			usage_exit("the sender connects, so its --id (%u) must be below --peer-id (%u)", o.id, o.peer_id);
		if (!have_listen)
			snprintf(o.listen, sizeof(o.listen), "%s", strchr(o.to, ':') ? "::1" : "127.0.0.1");
		if (o.mode == M_THROUGHPUT && !have_records)
			usage_exit("--mode throughput needs --records");
		if (o.mode == M_LATENCY && !have_rate)
			usage_exit("--mode latency needs --rate");
		if (o.mode == M_LATENCY && have_fill)
			usage_exit("--fill is for --mode throughput (latency sends one record per segment)");
		if (o.mode == M_LATENCY && o.warmup > (UINT64_MAX >> 24))
			usage_exit("--warmup too large");
		uint32_t max_fill = o.seg / o.record;
		if (!have_fill)
			o.fill = max_fill;
		if (o.fill > max_fill)
			usage_exit("--fill: %u records of %u bytes do not fit in a segment of %u", o.fill, o.record, o.seg);
	} else if (!have_listen) {
		usage_exit("recv needs --listen");
	} else if (o.id < o.peer_id) {
		usage_exit("the receiver waits for the sender to connect, so its --id (%u) must be above --peer-id (%u)",
			   o.id, o.peer_id);
	}
	if (o.give_batch > o.credits)
		usage_exit("--give-batch %u is above --credits %u: the sender would wait for credit forever", o.give_batch,
			   o.credits);
	if (o.record > o.seg)
		usage_exit("--record %u is larger than --seg %u", o.record, o.seg);
	signal(SIGPIPE, SIG_IGN);
	prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);
	weir_log_init(o.send ? "bench-send" : "bench-recv", WEIR_LOG_ERROR);
	return o.send ? run_send(&o) : run_recv(&o);
}
