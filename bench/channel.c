/*
 * bench/channel.c - the cross-process channel benchmark.
 *
 *   weir-bench-channel [REPS]
 *
 * Two processes pinned to two cores, a shared-memory pool and channel
 * between them (shm/), and beside each figure a raw baseline measured in
 * the same run:
 *   throughput  full 32 KiB segments (producer copies a segment's worth of
 *               bytes in, consumer reads every word): bytes/s, against
 *               memcpy bandwidth in one process over the same footprint;
 *               100-byte records through the record writer and reader:
 *               records/s, against copying the same bytes in one loop;
 *   latency     one record there and back through two channels, one way =
 *               round trip / 2: p50, p99, p99.9, with busy-polling and
 *               with sleeping consumers (spin, then futex), against a bare
 *               ping-pong of one cache line between the same two cores.
 * Each figure is the median over REPS repetitions (default 5).
 *
 *   weir-bench-channel records32 COUNT
 *
 * only measures COUNT 32-byte records through the writer, the channel and
 * the reader, and prints "records32 RECORDS_PER_S" (bench/run's latency
 * section sets the engine's rate across two TaskManagers beside it).
 */
#include "io/record.h"
#include "sched/cpu.h"
#include "shm/shmfile.h"
#include "base/clock.h"
#include "base/err.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#define SEG 32768
#define CREDITS 4
#define FLOATING 4
static char prefix[64];
static int cpu_a, cpu_b;

static void die(const char *what)
{
	fprintf(stderr, "weir-bench-channel: %s: %s\n", what, weir_err_msg());
	exit(1);
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
	for (int i = 0; i < n; i++) /* insertion sort: n is small */
		for (int j = i; j > 0 && v[j] < v[j - 1]; j--) {
			double t = v[j];
			v[j] = v[j - 1];
			v[j - 1] = t;
		}
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* Results travel from the child processes through a small shared page. */
struct shared {
	double value;
	uint64_t lat[3];
	volatile uint64_t ping;
	char pad[56];
	volatile uint64_t pong;
};

static struct shared *shared_page(void)
{
	void *p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		die("mmap");
	memset(p, 0, 4096);
	return p;
}

static void wait_child(pid_t pid)
{
	int st;
	waitpid(pid, &st, 0);
	if (!WIFEXITED(st) || WEXITSTATUS(st))
		fprintf(stderr, "weir-bench-channel: a child failed (status %d)\n", st);
}

/* Sleep on db until ready() or the peer dies; spin_ns of polling first. */
static bool wait_for(struct weir_chan *c, struct weir_doorbell *db, bool (*ready)(struct weir_chan *),
		     uint64_t spin_ns)
{
	uint64_t t0 = spin_ns ? weir_now_ns() : 0;
	while (!ready(c)) {
		if (spin_ns && weir_now_ns() - t0 < spin_ns)
			continue;
		if (spin_ns == UINT64_MAX)
			continue; /* busy-polling: never sleep */
		uint32_t s = weir_doorbell_prepare(db);
		if (ready(c)) {
			weir_doorbell_cancel(db);
			break;
		}
		weir_doorbell_wait(db, s, 10 * 1000 * 1000);
		t0 = weir_now_ns();
		if (!weir_chan_peer_alive(c))
			return false;
	}
	return true;
}

static bool has_data(struct weir_chan *c) { return weir_chan_pending(c) > 0; }
static bool has_credit(struct weir_chan *c) { return weir_chan_can_send(c); }

/* ---- throughput -------------------------------------------------------------- */

/* memcpy in 32 KiB blocks from a buffer of `foot` bytes to another: a
 * footprint as small as the channel's stays in cache; 64 MiB is DRAM. */
static double memcpy_bandwidth(uint64_t bytes, size_t foot)
{
	weir_cpu_pin_self(cpu_a);
	uint8_t *src = aligned_alloc(64, foot), *dst = aligned_alloc(64, foot);
	memset(src, 1, foot);
	memset(dst, 0, foot);
	uint64_t t0 = weir_now_ns();
	for (uint64_t off = 0, i = 0; off < bytes; off += SEG, i++)
		memcpy(dst + (i % (foot / SEG)) * SEG, src + (i % (foot / SEG)) * SEG, SEG);
	double s = (double)(weir_now_ns() - t0) / 1e9;
	volatile uint8_t sink = dst[7];
	(void)sink;
	free(src);
	free(dst);
	return (double)bytes / s;
}

static double record_copy_rate(uint64_t n)
{
	weir_cpu_pin_self(cpu_a);
	uint8_t rec[100], *dst = aligned_alloc(64, SEG * (CREDITS + FLOATING));
	memset(rec, 3, sizeof(rec));
	uint32_t off = 0, cap = SEG * (CREDITS + FLOATING);
	uint64_t t0 = weir_now_ns();
	for (uint64_t i = 0; i < n; i++) {
		if (off + 16 + 104 > cap)
			off = 0;
		memcpy(dst + off, &i, 8); /* a header's worth */
		memcpy(dst + off + 16, rec, sizeof(rec));
		off += 16 + 104;
	}
	double s = (double)(weir_now_ns() - t0) / 1e9;
	volatile uint8_t sink = dst[9];
	(void)sink;
	free(dst);
	return (double)n / s;
}

/* segments (records == 0) or records of reclen bytes (at most 100) through a channel. */
static double channel_rate(uint64_t amount, bool records, uint32_t reclen)
{
	struct shared *sh = shared_page();
	char pool_name[96], chan_name[96];
	snprintf(pool_name, sizeof(pool_name), "%s-pool", prefix);
	snprintf(chan_name, sizeof(chan_name), "%s-ch", prefix);
	struct weir_pool pool;
	struct weir_chan c;
	if (weir_pool_create_shm(&pool, pool_name, 1, CREDITS + FLOATING + 4, SEG, -1, false) < 0 ||
	    weir_chan_create_shm(&c, chan_name, &pool, CREDITS, FLOATING) < 0)
		die("create");
	pid_t pid = fork();
	if (pid == 0) { /* consumer */
		weir_cpu_pin_self(cpu_b);
		struct weir_pool p2;
		struct weir_chan c2;
		if (weir_pool_attach(&p2, pool_name, 1) < 0 || weir_chan_attach_shm(&c2, chan_name, &p2) < 0)
			die("attach");
		uint64_t sum = 0, got = 0;
		struct weir_reader r;
		weir_reader_init(&r, &c2, 1 << 20);
		for (;;) {
			if (!records) {
				struct weir_chan_msg m;
				int rc = weir_chan_recv(&c2, &m);
				if (rc == 0) {
					if (!wait_for(&c2, c2.consumer_db, has_data, 20000))
						break;
					continue;
				}
				if (m.kind == WEIR_MSG_EVENT)
					break;
				const uint64_t *w = (const uint64_t *)weir_pool_addr(&p2, m.seg);
				for (uint32_t i = 0; i < m.val / 8; i++)
					sum += w[i];
				weir_chan_give(&c2, m.seg);
				got += m.val;
			} else {
				weir_rec rec;
				uint32_t code;
				uint64_t val;
				int rc = weir_reader_next(&r, &rec, &code, &val);
				if (rc == WEIR_READ_EMPTY) {
					if (!wait_for(&c2, c2.consumer_db, has_data, 20000))
						break;
					continue;
				}
				if (rc != WEIR_READ_RECORD)
					break;
				sum += ((const uint8_t *)rec.data)[rec.len - 1];
				got++;
			}
		}
		weir_reader_release(&r);
		sh->value = (double)(sum & 1);
		weir_chan_release(&c2);
		weir_pool_release(&p2);
		_exit(got == amount ? 0 : 3);
	}
	weir_cpu_pin_self(cpu_a);
	uint8_t *src = aligned_alloc(64, SEG);
	memset(src, 5, SEG);
	uint64_t t0 = weir_now_ns();
	if (!records) {
		for (uint64_t sent = 0; sent < amount; sent += SEG) {
			weir_seg s;
			while (!weir_chan_can_send(&c))
				wait_for(&c, c.producer_db, has_credit, 20000);
			weir_chan_acquire(&c, &s);
			memcpy(weir_pool_addr(&pool, s), src, SEG);
			weir_chan_send(&c, s, SEG);
		}
	} else {
		struct weir_writer w;
		weir_writer_init(&w, &c);
		for (uint64_t i = 0; i < amount; i++) {
			while (!(w.seg != WEIR_SEG_NONE && w.cap - w.used >= 16 + weir_rec_pad(reclen)) &&
			       !weir_chan_can_send(&c))
				wait_for(&c, c.producer_db, has_credit, 20000);
			memcpy(src, &i, 8);
			weir_writer_put(&w, src, reclen, 0);
		}
		weir_writer_flush(&w);
	}
	weir_chan_send_event(&c, WEIR_EV_END, 0);
	wait_child(pid); /* the rate counts until the consumer has read all */
	double s = (double)(weir_now_ns() - t0) / 1e9;
	free(src);
	weir_chan_release(&c);
	weir_pool_release(&pool);
	munmap(sh, 4096);
	return (double)amount / s;
}

/* ---- latency ------------------------------------------------------------------ */

/* Bare ping-pong of one cache line each way: the floor for a hand-off. */
static void bare_pingpong(int n, uint64_t out[3])
{
	struct shared *sh = shared_page();
	pid_t pid = fork();
	if (pid == 0) {
		weir_cpu_pin_self(cpu_b);
		for (uint64_t i = 1; i <= (uint64_t)n; i++) {
			while (__atomic_load_n(&sh->ping, __ATOMIC_ACQUIRE) != i)
				;
			__atomic_store_n(&sh->pong, i, __ATOMIC_RELEASE);
		}
		_exit(0);
	}
	weir_cpu_pin_self(cpu_a);
	uint64_t *lat = malloc(sizeof(uint64_t) * (size_t)n);
	for (uint64_t i = 1; i <= (uint64_t)n; i++) {
		uint64_t t0 = weir_now_ns();
		__atomic_store_n(&sh->ping, i, __ATOMIC_RELEASE);
		while (__atomic_load_n(&sh->pong, __ATOMIC_ACQUIRE) != i)
			;
		lat[i - 1] = (weir_now_ns() - t0) / 2;
	}
	wait_child(pid);
	qsort(lat, (size_t)n, sizeof(uint64_t), cmp_u64);
	out[0] = lat[n / 2];
	out[1] = lat[(size_t)((double)n * 0.99)];
	out[2] = lat[(size_t)((double)n * 0.999)];
	free(lat);
	munmap(sh, 4096);
}

/* One small record there (channel a->b) and back (b->a), n times. */
static void channel_pingpong(int n, uint64_t spin_ns, uint64_t out[3])
{
	char pa[96], pb[96], ca[96], cb[96];
	snprintf(pa, sizeof(pa), "%s-pa", prefix);
	snprintf(pb, sizeof(pb), "%s-pb", prefix);
	snprintf(ca, sizeof(ca), "%s-ca", prefix);
	snprintf(cb, sizeof(cb), "%s-cb", prefix);
	struct weir_pool pool_a, pool_b_att;
	struct weir_chan ab, ba;
	if (weir_pool_create_shm(&pool_a, pa, 1, 8, 4096, -1, false) < 0 ||
	    weir_chan_create_shm(&ab, ca, &pool_a, 2, 2) < 0)
		die("create a");
	int ready[2];
	if (pipe(ready) < 0)
		die("pipe");
	pid_t pid = fork();
	if (pid == 0) {
		weir_cpu_pin_self(cpu_b);
		struct weir_pool pool_b, pool_a_att;
		struct weir_chan ab2, ba2;
		if (weir_pool_create_shm(&pool_b, pb, 2, 8, 4096, -1, false) < 0 ||
		    weir_chan_create_shm(&ba2, cb, &pool_b, 2, 2) < 0 || weir_pool_attach(&pool_a_att, pa, 1) < 0 ||
		    weir_chan_attach_shm(&ab2, ca, &pool_a_att) < 0)
			die("child setup");
		if (write(ready[1], "R", 1) != 1)
			_exit(2);
		struct weir_reader r;
		struct weir_writer w;
		weir_reader_init(&r, &ab2, 4096);
		weir_writer_init(&w, &ba2);
		for (int i = 0; i < n; i++) {
			weir_rec rec;
			uint32_t code;
			uint64_t val;
			int rc;
			while ((rc = weir_reader_next(&r, &rec, &code, &val)) == WEIR_READ_EMPTY)
				if (!wait_for(&ab2, ab2.consumer_db, has_data, spin_ns))
					_exit(3);
			while (!weir_chan_can_send(&ba2))
				wait_for(&ba2, ba2.producer_db, has_credit, spin_ns);
			weir_writer_put(&w, rec.data, rec.len, rec.ts);
			weir_writer_flush(&w); /* a lone record leaves at once */
		}
		weir_reader_release(&r);
		/* wait until the parent has detached from our channel */
		char x;
		if (read(ready[0], &x, 1) < 0)
			_exit(4);
		weir_chan_release(&ba2);
		weir_chan_release(&ab2);
		weir_pool_release(&pool_a_att);
		weir_pool_release(&pool_b);
		_exit(0);
	}
	weir_cpu_pin_self(cpu_a);
	char x;
	if (read(ready[0], &x, 1) != 1 || weir_pool_attach(&pool_b_att, pb, 2) < 0 ||
	    weir_chan_attach_shm(&ba, cb, &pool_b_att) < 0)
		die("parent attach");
	struct weir_reader r;
	struct weir_writer w;
	weir_reader_init(&r, &ba, 4096);
	weir_writer_init(&w, &ab);
	uint64_t *lat = malloc(sizeof(uint64_t) * (size_t)n);
	uint8_t msg[16] = { 0 };
	for (int i = 0; i < n; i++) {
		uint64_t t0 = weir_now_ns();
		while (!weir_chan_can_send(&ab))
			wait_for(&ab, ab.producer_db, has_credit, spin_ns);
		weir_writer_put(&w, msg, sizeof(msg), i);
		weir_writer_flush(&w);
		weir_rec rec;
		uint32_t code;
		uint64_t val;
		while (weir_reader_next(&r, &rec, &code, &val) == WEIR_READ_EMPTY)
			wait_for(&ba, ba.consumer_db, has_data, spin_ns);
		lat[i] = (weir_now_ns() - t0) / 2;
	}
	weir_reader_release(&r);
	weir_chan_release(&ba);
	weir_pool_release(&pool_b_att);
	if (write(ready[1], "D", 1) != 1)
		die("pipe");
	wait_child(pid);
	weir_chan_release(&ab);
	weir_pool_release(&pool_a);
	close(ready[0]);
	close(ready[1]);
	qsort(lat, (size_t)n, sizeof(uint64_t), cmp_u64);
	out[0] = lat[n / 2];
	out[1] = lat[(size_t)((double)n * 0.99)];
	out[2] = lat[(size_t)((double)n * 0.999)];
	free(lat);
}

int main(int argc, char **argv)
{
	int reps = argc > 1 ? atoi(argv[1]) : 5;
	if (reps < 1 || reps > 100)
		reps = 5;
	int cpus[64];
	int ncpu = weir_cpu_allowed(cpus, 64);
	cpu_a = cpus[0];
	cpu_b = cpus[ncpu > 1 ? 1 : 0];
	snprintf(prefix, sizeof(prefix), "weir-bench-%d", (int)getpid());
	weir_shm_sweep("weir-bench-");
	if (argc > 2 && !strcmp(argv[1], "records32")) {
		/* the raw ring's rate for bench/run's latency section: 32-byte
		 * records through the writer, a shared-memory channel and the
		 * reader, between two pinned processes */
		long long n = atoll(argv[2]);
		if (n < 1)
			die("usage: weir-bench-channel records32 COUNT");
		printf("records32 %.0f\n", channel_rate((uint64_t)n, true, 32));
		return 0;
	}
	printf("weir channel benchmark: two processes on cpus %d and %d, %d repetitions, medians\n", cpu_a, cpu_b,
	       reps);

	const uint64_t bytes = 2ull << 30, nrec = 20000000;
	const int npp = 20000;
	double mb[100], md[100], cb[100], rb[100], cr[100];
	uint64_t bare[100][3], busy[100][3], spin[100][3], sleepy[100][3];
	for (int i = 0; i < reps; i++) {
		mb[i] = memcpy_bandwidth(bytes, SEG * (CREDITS + FLOATING));
		md[i] = memcpy_bandwidth(bytes / 4, 64u << 20);
		cb[i] = channel_rate(bytes, false, 0);
		rb[i] = record_copy_rate(nrec);
		cr[i] = channel_rate(nrec, true, 100);
		bare_pingpong(npp, bare[i]);
		channel_pingpong(npp, UINT64_MAX, busy[i]);
		channel_pingpong(npp, 50000, spin[i]);	/* the engine's default: spin 50 us, then sleep */
		channel_pingpong(npp / 10, 0, sleepy[i]);	/* sleep at once: every hop a futex wake */
	}
	double m1 = median(mb, reps), d1 = median(md, reps), c1 = median(cb, reps), m2 = median(rb, reps),
	       c2 = median(cr, reps);
	printf("\nthroughput              %16s %16s %8s\n", "channel", "baseline", "ratio");
	printf("32 KiB segments (GB/s)  %16.2f %16.2f %8.2f   baseline: memcpy from DRAM (64 MiB), one process\n",
	       c1 / 1e9, d1 / 1e9, c1 / d1);
	printf("                        %16s %16.2f %8.2f   baseline: memcpy in cache (the channel's 256 KiB)\n", "",
	       m1 / 1e9, c1 / m1);
	printf("100-byte records (M/s)  %16.2f %16.2f %8.2f   baseline: copy the same bytes, one loop\n", c2 / 1e6,
	       m2 / 1e6, c2 / m2);
	printf("\none-way latency (us)    %10s %10s %10s   p50 vs bare\n", "p50", "p99", "p99.9");
	const char *names[4] = { "bare ring ping-pong", "channel, busy-polling", "channel, spin 50us+sleep",
				 "channel, sleep at once" };
	uint64_t (*sets[4])[3] = { bare, busy, spin, sleepy };
	double p50[4];
	for (int k = 0; k < 4; k++) {
		double v[3];
		for (int q = 0; q < 3; q++) {
			double t[100];
			for (int i = 0; i < reps; i++)
				t[i] = (double)sets[k][i][q];
			v[q] = median(t, reps) / 1000.0;
		}
		p50[k] = v[0];
		printf("%-23s %10.2f %10.2f %10.2f   %.2fx\n", names[k], v[0], v[1], v[2], v[0] / p50[0]);
	}
	weir_shm_sweep(prefix);
	return 0;
}
