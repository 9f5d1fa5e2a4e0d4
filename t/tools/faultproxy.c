/*
 * t/tools/faultproxy.c - a TCP forwarder that injects faults, for the
 * cross-host tests of issue 14, and the two ends a test puts around it.
 *
 *   faultproxy --listen ADDR:PORT --to ADDR:PORT [--port-file F] [--log F]
 *              [--seed S] [RULES]
 *
 * accepts connections and forwards each to the target, both ways. RULES,
 * each applying to the connections and directions named by the last
 * --conn and --dir before it:
 *
 *   --conn N            the Nth connection accepted (from 1); 0: every one
 *                       (the default)
 *   --dir up|down|both  up: client -> target, down: target -> client
 *                       (default: both)
 *   --drop-after B      once B bytes went that way, reset both sides
 *                       (SO_LINGER 0), after those B bytes were sent and
 *                       acknowledged (waiting at most 2 s, else the log
 *                       line says how many were not)
 *   --stall-after B     after B bytes, read nothing more from that side
 *                       (the connection stays open) until SIGUSR1
 *                       (repeatable: a stall at each point)
 *   --split             forward one byte per write, each sent before the
 *                       next is written (TCP_NOTSENT_LOWAT 1): a segment
 *                       per byte, so a receiver that keeps up reads each
 *                       frame a byte at a time (one that falls behind gets
 *                       the bytes queued since its last read). A poll per
 *                       byte: for kilobytes, not gigabytes
 *   --flip-at K         XOR the byte at offset K of that stream with a
 *                       non-zero value (repeatable)
 *   --flip-every B      XOR one pseudo-random byte in each block of B bytes
 *                       (offsets and values from --seed, the connection's
 *                       number and the direction; the seed is logged)
 *
 * --record DIR keeps every connection's bytes as received, direction by
 * direction, in DIR/c<N>.up and DIR/c<N>.down (N from 1, as --conn counts):
 * what a capture of the wire would see.
 *
 * Every event is a line of --log F (else stderr): listening, accepted,
 * connected, "conn 3 up flipped offset K ...", "conn 3 up stalled at byte
 * B", "resumed", "dropped at byte B", "eof at byte B", a reset or error,
 * and "closed" with each direction's bytes and writes. --port-file gets the
 * bound port (--listen port 0: any) once the proxy listens, written to a
 * temporary file and renamed, so a test waits for the file, not for time.
 *
 * One thread, poll(2), TCP_NODELAY on every socket, at most 256
 * connections at once (more wait in the listen backlog). Each direction has
 * a 64 KiB buffer: a side is read only while its buffer has room (and its
 * peer is connected), so a slow reader slows the writer down instead of
 * growing memory. A FIN from one side is passed on, once its data is, as
 * shutdown(SHUT_WR) of the other; a reset or socket error on either side
 * resets the other; a target that refuses resets the client. Signals arrive
 * through a signalfd: SIGUSR1 resumes every direction stalled at that
 * moment (a stall point not reached yet stays armed), SIGTERM and SIGINT
 * close everything and exit 0. Bad usage: a line and exit 2.
 *
 * The ends, for tests (blocking, one thread):
 *
 *   faultproxy --source (--to ADDR:PORT | --listen ADDR:PORT [--port-file F])
 *              --bytes N [--seed S] [--chunk C] [--save F] [--result F]
 *     sends N seeded bytes (writes of C, default 16384), shuts its side
 *     down, reads the peer's reply until the end; writes one line to
 *     --result F (else stdout): "sent=N fnv1a=H end=eof reply=[...]",
 *     end= reset or error=... when the connection failed (then exit 1).
 *   faultproxy --sink (--listen ADDR:PORT [--port-file F] | --to ADDR:PORT)
 *              [--conns N] [--save F] [--result F]
 *     receives until the end: "bytes=N fnv1a=H end=eof|reset|error=..."
 *     to --result F (else stdout); after a clean end it sends the same
 *     "bytes=N fnv1a=H" line back (the reply the source shows), then
 *     closes. --conns N: N connections one after the other, a line each.
 *     Exit 1 when a stream did not end cleanly.
 *   --save F keeps the bytes sent or received, for cmp(1) (with --conns
 *   above 1, connection i's in F.i).
 *   --digest-out is another name for --result.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <linux/sockios.h>

#define BUF_SIZE (64 * 1024)
#define MAX_CONNS 256
#define DROP_WAIT_MS 2000	/* at most this long for the bytes before a drop to be acknowledged */

enum { UP, DOWN };
static const char *dir_name[2] = { "up", "down" };
enum { CLIENT, TARGET };

/* ---- usage, numbers, addresses ---- */

static void usage_exit(const char *fmt, ...)
{
	va_list ap;
	fputs("faultproxy: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputs("\nusage: faultproxy --listen ADDR:PORT --to ADDR:PORT [--port-file F] [--log F] [--seed S]\n"
	      "                  [[--conn N] [--dir up|down|both] --drop-after B | --stall-after B | --split |\n"
	      "                   --flip-at K | --flip-every B]...\n"
	      "       faultproxy --source (--to ADDR:PORT | --listen ADDR:PORT [--port-file F]) --bytes N\n"
	      "                  [--seed S] [--chunk C] [--save F] [--result F]\n"
	      "       faultproxy --sink (--listen ADDR:PORT [--port-file F] | --to ADDR:PORT) [--conns N]\n"
	      "                  [--save F] [--result F]\n",
	      stderr);
	exit(2);
}

static uint64_t parse_u64(const char *opt, const char *s, uint64_t max)
{
	char *end;
	errno = 0;
	if (!*s || *s == '-' || *s == '+')
		usage_exit("--%s: '%s' is not a whole number from 0 to %" PRIu64, opt, s, max);
	unsigned long long v = strtoull(s, &end, 10);
	if (errno || *end || v > max)
		usage_exit("--%s: '%s' is not a whole number from 0 to %" PRIu64, opt, s, max);
	return v;
}

struct addr {
	struct sockaddr_storage ss;
	socklen_t len;
	char text[80];
};

/* "1.2.3.4:5" or "[::1]:5": numeric only. 0, or -1 with a message on stderr. */
static int parse_addr(const char *opt, const char *s, struct addr *a)
{
	char host[64];
	const char *colon = strrchr(s, ':');
	if (!colon || colon == s || !colon[1])
		usage_exit("--%s: '%s' is not ADDR:PORT", opt, s);
	size_t hl = (size_t)(colon - s);
	const char *h = s;
	if (s[0] == '[' && colon[-1] == ']') {
		h = s + 1;
		hl -= 2;
	}
	if (hl == 0 || hl >= sizeof host)
		usage_exit("--%s: '%s' is not ADDR:PORT", opt, s);
	memcpy(host, h, hl);
	host[hl] = 0;
	uint64_t port = parse_u64(opt, colon + 1, 65535);
	char pbuf[8];
	snprintf(pbuf, sizeof pbuf, "%u", (unsigned)port);
	struct addrinfo hints = { .ai_flags = AI_NUMERICHOST | AI_NUMERICSERV, .ai_socktype = SOCK_STREAM };
	struct addrinfo *res;
	int rc = getaddrinfo(host, pbuf, &hints, &res);
	if (rc)
		usage_exit("--%s: '%s': %s (an IPv4 or IPv6 address and a port)", opt, s,
			   gai_strerror(rc));
	memcpy(&a->ss, res->ai_addr, res->ai_addrlen);
	a->len = res->ai_addrlen;
	freeaddrinfo(res);
	snprintf(a->text, sizeof a->text, "%s", s);
	return 0;
}

static void addr_text(const struct sockaddr_storage *ss, char *out, size_t n)
{
	char h[INET6_ADDRSTRLEN] = "?";
	unsigned port = 0;
	if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *in = (const void *)ss;
		inet_ntop(AF_INET, &in->sin_addr, h, sizeof h);
		port = ntohs(in->sin_port);
		snprintf(out, n, "%s:%u", h, port);
	} else if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const void *)ss;
		inet_ntop(AF_INET6, &in6->sin6_addr, h, sizeof h);
		port = ntohs(in6->sin6_port);
		snprintf(out, n, "[%s]:%u", h, port);
	} else {
		snprintf(out, n, "?");
	}
}

/* ---- files ---- */

static void die(const char *fmt, ...)
{
	va_list ap;
	fputs("faultproxy: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1);
}

/* TEXT into PATH through PATH.tmp and a rename: a reader sees all or nothing. */
static void write_atomic(const char *path, const char *text)
{
	char tmp[PATH_MAX];
	if (snprintf(tmp, sizeof tmp, "%s.tmp", path) >= (int)sizeof tmp)
		die("'%s': path too long", path);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		die("open '%s': %s", tmp, strerror(errno));
	size_t len = strlen(text);
	if (write(fd, text, len) != (ssize_t)len || fsync(fd) < 0)
		die("write '%s': %s", tmp, strerror(errno));
	close(fd);
	if (rename(tmp, path) < 0)
		die("rename '%s' to '%s': %s", tmp, path, strerror(errno));
}

static int log_fd = 2;

/* One event: one line, one write. */
static void event(const char *fmt, ...)
{
	char line[512];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(line, sizeof line - 1, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n > sizeof line - 2)
		n = sizeof line - 2;
	line[n++] = '\n';
	if (write(log_fd, line, (size_t)n) < 0) {
		/* nothing to do: the log is gone */
	}
}

/* ---- the seeded byte stream and its checksum ---- */

static uint64_t mix64(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ull;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

static void gen_bytes(uint64_t s, uint64_t off, unsigned char *p, size_t n)
{
	for (size_t i = 0; i < n; i++, off++)
		p[i] = (unsigned char)(mix64(s ^ ((off >> 3) * 0xd1342543de82ef95ull)) >> (8 * (off & 7)));
}

#define FNV_INIT 0xcbf29ce484222325ull
static uint64_t fnv1a(uint64_t h, const unsigned char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		h = (h ^ p[i]) * 0x100000001b3ull;
	return h;
}

/* ---- the proxy ---- */

enum rule_kind { R_DROP, R_STALL, R_SPLIT, R_FLIP_AT, R_FLIP_EVERY };
struct rule {
	enum rule_kind kind;
	uint64_t conn;	/* 0: every connection */
	unsigned dirs;	/* bit UP, bit DOWN */
	uint64_t n;
};
static struct rule *rules;
static size_t nrules;
static uint64_t seed;

struct dir {
	int src, dst;		/* CLIENT or TARGET */
	unsigned char *buf;	/* bytes read from src, not yet written to dst: [off, len) */
	size_t off, len;
	uint64_t in, out;	/* bytes read from src, written to dst */
	uint64_t writes;
	bool eof;		/* src sent its FIN */
	bool shut;		/* dst's write side is shut down */
	/* rules */
	uint64_t drop_at;	/* UINT64_MAX: none */
	uint64_t *stalls;	/* sorted, distinct */
	size_t nstalls, next_stall;
	bool stall_logged;
	bool split;
	uint64_t *flips;	/* sorted, distinct */
	size_t nflips, next_flip;
	uint64_t flip_every;	/* 0: none */
};

struct conn {
	uint64_t id;
	int fd[2];		/* CLIENT, TARGET */
	bool hup[2];		/* poll said POLLHUP: leave the fd out while nothing is wanted of it */
	bool connecting;
	int dropping;		/* -1, or the direction whose last bytes are on their way before the RST */
	struct timespec drop_start;
	bool drop_sent;		/* nothing of those bytes left unsent: waiting for their ACK */
	struct dir d[2];
};

static const char *record_dir;	/* --record DIR: each connection's bytes, DIR/c<N>.up and .down */

/* --record: append what direction k of connection c received. */
static void record(const struct conn *c, int k, const uint8_t *p, size_t n)
{
	char path[PATH_MAX];
	snprintf(path, sizeof path, "%s/c%" PRIu64 ".%s", record_dir, c->id, dir_name[k]);
	FILE *f = fopen(path, "ab");
	if (!f || fwrite(p, 1, n, f) != n)
		die("record %s: %s", path, strerror(errno));
	fclose(f);
}

static struct conn *conns[MAX_CONNS];
static size_t nconns;
static uint64_t accepted;
static struct addr target;

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static size_t sort_unique(uint64_t *v, size_t n)
{
	if (!n)
		return 0;
	qsort(v, n, sizeof *v, cmp_u64);
	size_t k = 1;
	for (size_t i = 1; i < n; i++)
		if (v[i] != v[k - 1])
			v[k++] = v[i];
	return k;
}

static void set_int_opt(int fd, int level, int opt, int v)
{
	setsockopt(fd, level, opt, &v, sizeof v);
}

static void reset_fd(int fd)
{
	if (fd < 0)
		return;
	struct linger l = { .l_onoff = 1, .l_linger = 0 };
	setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
	close(fd);
}

static void conn_free(struct conn *c, bool reset)
{
	for (int s = 0; s < 2; s++) {
		if (reset)
			reset_fd(c->fd[s]);
		else if (c->fd[s] >= 0)
			close(c->fd[s]);
	}
	for (int k = 0; k < 2; k++) {
		free(c->d[k].buf);
		free(c->d[k].stalls);
		free(c->d[k].flips);
	}
	for (size_t i = 0; i < nconns; i++)
		if (conns[i] == c) {
			conns[i] = conns[--nconns];
			break;
		}
	free(c);
}

static void conn_summary(struct conn *c, const char *how)
{
	event("conn %" PRIu64 " %s (up %" PRIu64 " bytes in %" PRIu64 " writes, down %" PRIu64
	      " bytes in %" PRIu64 " writes)",
	      c->id, how, c->d[UP].out, c->d[UP].writes, c->d[DOWN].out, c->d[DOWN].writes);
}

/* A side failed or reset: reset the other too, and forget the connection. */
static void conn_fail(struct conn *c, int side, int err)
{
	event("conn %" PRIu64 " %s: %s; resetting the %s", c->id, side == CLIENT ? "client" : "target",
	      err ? strerror(err) : "closed", side == CLIENT ? "target" : "client");
	conn_summary(c, "reset");
	conn_free(c, true);
}

static void conn_setup_rules(struct conn *c)
{
	for (int k = 0; k < 2; k++) {
		struct dir *d = &c->d[k];
		d->src = k == UP ? CLIENT : TARGET;
		d->dst = k == UP ? TARGET : CLIENT;
		d->drop_at = UINT64_MAX;
		size_t ns = 0, nf = 0;
		for (size_t i = 0; i < nrules; i++) {
			const struct rule *r = &rules[i];
			if ((r->conn && r->conn != c->id) || !(r->dirs & (1u << k)))
				continue;
			ns += r->kind == R_STALL;
			nf += r->kind == R_FLIP_AT;
		}
		d->stalls = ns ? calloc(ns, sizeof *d->stalls) : NULL;
		d->flips = nf ? calloc(nf, sizeof *d->flips) : NULL;
		if ((ns && !d->stalls) || (nf && !d->flips))
			die("out of memory");
		for (size_t i = 0; i < nrules; i++) {
			const struct rule *r = &rules[i];
			if ((r->conn && r->conn != c->id) || !(r->dirs & (1u << k)))
				continue;
			switch (r->kind) {
			case R_DROP:
				if (r->n < d->drop_at)
					d->drop_at = r->n;
				break;
			case R_STALL:
				d->stalls[d->nstalls++] = r->n;
				break;
			case R_SPLIT:
				d->split = true;
				break;
			case R_FLIP_AT:
				d->flips[d->nflips++] = r->n;
				break;
			case R_FLIP_EVERY:
				d->flip_every = r->n;	/* the last one given */
				break;
			}
		}
		d->nstalls = sort_unique(d->stalls, d->nstalls);
		d->nflips = sort_unique(d->flips, d->nflips);
	}
}

static uint8_t flip_value(uint64_t r)
{
	return (uint8_t)(1 + (r >> 40) % 255);
}

static void flip_one(struct conn *c, int k, unsigned char *p, uint64_t off, uint8_t x)
{
	unsigned char was = *p;
	*p ^= x;
	event("conn %" PRIu64 " %s flipped offset %" PRIu64 " xor 0x%02x (0x%02x -> 0x%02x)", c->id,
	      dir_name[k], off, x, was, *p);
}

/* N bytes just read to P, at stream offset d->in: the flips that fall in them. */
static void apply_flips(struct conn *c, int k, unsigned char *p, size_t n)
{
	struct dir *d = &c->d[k];
	uint64_t lo = d->in, hi = d->in + n;
	while (d->next_flip < d->nflips && d->flips[d->next_flip] < hi) {
		uint64_t off = d->flips[d->next_flip++];
		if (off >= lo)
			flip_one(c, k, p + (off - lo), off, flip_value(mix64(seed ^ off)));
	}
	if (d->flip_every) {
		uint64_t B = d->flip_every;
		for (uint64_t b = lo / B; b <= (hi - 1) / B; b++) {
			uint64_t r = mix64(seed ^ mix64(c->id * 2 + (uint64_t)k) ^ (b * 0x9e3779b97f4a7c15ull));
			uint64_t off = b * B + r % B;
			if (off >= lo && off < hi)
				flip_one(c, k, p + (off - lo), off, flip_value(r));
		}
	}
}

static uint64_t stall_point(const struct dir *d)
{
	return d->next_stall < d->nstalls ? d->stalls[d->next_stall] : UINT64_MAX;
}

/* How many bytes direction D may read now. */
static size_t read_room(const struct dir *d)
{
	if (d->eof)
		return 0;
	uint64_t lim = BUF_SIZE - d->len;
	uint64_t s = stall_point(d);
	if (s - d->in < lim)
		lim = s - d->in;
	if (d->drop_at != UINT64_MAX && d->drop_at - d->in < lim)
		lim = d->drop_at - d->in;
	return (size_t)lim;
}

static int64_t ms_since(const struct timespec *t0)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	return (now.tv_sec - t0->tv_sec) * 1000 + (now.tv_nsec - t0->tv_nsec) / 1000000;
}

/* Direction K reached its drop point: from now on the connection only waits
 * for those bytes to leave (and be acknowledged), then both sides reset. */
static void drop_begin(struct conn *c, int k)
{
	c->dropping = k;
	c->drop_sent = false;
	clock_gettime(CLOCK_MONOTONIC, &c->drop_start);
	/* POLLOUT now means: nothing written is still unsent */
	set_int_opt(c->fd[c->d[k].dst], IPPROTO_TCP, TCP_NOTSENT_LOWAT, 1);
}

/* Checks a dropping connection; returns true when it was reset (at once
 * when NOW: a side failed meanwhile). */
static bool drop_check(struct conn *c, bool now)
{
	struct dir *d = &c->d[c->dropping];
	int fd = c->fd[d->dst];
	int unsent = 0, unacked = 0;
	ioctl(fd, SIOCOUTQNSD, &unsent);
	ioctl(fd, SIOCOUTQ, &unacked);
	bool late = now || ms_since(&c->drop_start) >= DROP_WAIT_MS;
	if (unsent == 0)
		c->drop_sent = true;
	if ((unsent == 0 && unacked == 0) || late) {
		if (unacked)
			event("conn %" PRIu64 " %s dropped at byte %" PRIu64
			      ": reset both sides (%d bytes not acknowledged)",
			      c->id, dir_name[c->dropping], d->drop_at, unacked);
		else
			event("conn %" PRIu64 " %s dropped at byte %" PRIu64 ": reset both sides", c->id,
			      dir_name[c->dropping], d->drop_at);
		conn_summary(c, "dropped");
		conn_free(c, true);
		return true;
	}
	return false;
}

/* After any progress: stalls reached, drops due, FINs to pass on, the end. */
static bool conn_advance(struct conn *c)
{
	if (c->connecting || c->dropping >= 0)
		return false;
	for (int k = 0; k < 2; k++) {
		struct dir *d = &c->d[k];
		if (d->drop_at != UINT64_MAX && d->out == d->drop_at) {
			drop_begin(c, k);
			return drop_check(c, false);
		}
		uint64_t s = stall_point(d);
		if (d->in == s && d->out == s && !d->stall_logged && !d->eof) {
			event("conn %" PRIu64 " %s stalled at byte %" PRIu64, c->id, dir_name[k], s);
			d->stall_logged = true;
		}
		if (d->eof && d->off == d->len && !d->shut) {
			shutdown(c->fd[d->dst], SHUT_WR);
			d->shut = true;
			event("conn %" PRIu64 " %s eof at byte %" PRIu64 " (passed on as shutdown)", c->id,
			      dir_name[k], d->in);
		}
	}
	if (c->d[UP].shut && c->d[DOWN].shut) {
		conn_summary(c, "closed");
		conn_free(c, false);
		return true;
	}
	return false;
}

static void resume_all(void)
{
	size_t n = 0;
	for (size_t i = 0; i < nconns; i++)
		for (int k = 0; k < 2; k++) {
			struct dir *d = &conns[i]->d[k];
			uint64_t s = stall_point(d);
			if (d->in == s) {
				d->next_stall++;
				d->stall_logged = false;
				n++;
				event("conn %" PRIu64 " %s resumed at byte %" PRIu64, conns[i]->id, dir_name[k], s);
			}
		}
	if (!n)
		event("SIGUSR1: nothing stalled");
}

static void accept_one(int lfd, bool *paused)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof ss;
	int fd = accept4(lfd, (struct sockaddr *)&ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (fd < 0) {
		if (errno == EAGAIN || errno == EINTR || errno == ECONNABORTED)
			return;
		event("accept: %s", strerror(errno));
		if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM)
			*paused = true;	/* until a connection ends */
		return;
	}
	struct conn *c = calloc(1, sizeof *c);
	unsigned char *b0 = malloc(BUF_SIZE), *b1 = malloc(BUF_SIZE);
	if (!c || !b0 || !b1)
		die("out of memory");
	c->id = ++accepted;
	c->fd[CLIENT] = fd;
	c->dropping = -1;
	c->d[UP].buf = b0;
	c->d[DOWN].buf = b1;
	conns[nconns++] = c;
	char from[80];
	addr_text(&ss, from, sizeof from);
	event("conn %" PRIu64 " accepted from %s", c->id, from);
	conn_setup_rules(c);
	set_int_opt(fd, IPPROTO_TCP, TCP_NODELAY, 1);
	if (c->d[DOWN].split)
		set_int_opt(fd, IPPROTO_TCP, TCP_NOTSENT_LOWAT, 1);

	int t = socket(target.ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	c->fd[TARGET] = t;
	if (t < 0) {
		conn_fail(c, TARGET, errno);
		return;
	}
	set_int_opt(t, IPPROTO_TCP, TCP_NODELAY, 1);
	if (c->d[UP].split)
		set_int_opt(t, IPPROTO_TCP, TCP_NOTSENT_LOWAT, 1);
	if (connect(t, (struct sockaddr *)&target.ss, target.len) == 0) {
		event("conn %" PRIu64 " connected to %s", c->id, target.text);
		conn_advance(c);
	} else if (errno == EINPROGRESS) {
		c->connecting = true;
	} else {
		event("conn %" PRIu64 " connect to %s: %s", c->id, target.text, strerror(errno));
		conn_fail(c, TARGET, errno);
	}
}

/* The poll events wanted of side S of C. */
static short want(const struct conn *c, int s)
{
	if (c->connecting)
		return s == TARGET ? POLLOUT : 0;
	if (c->dropping >= 0) {
		const struct dir *d = &c->d[c->dropping];
		return s == d->dst && !c->drop_sent ? POLLOUT : 0;
	}
	short ev = 0;
	for (int k = 0; k < 2; k++) {
		const struct dir *d = &c->d[k];
		if (d->src == s && read_room(d) > 0)
			ev |= POLLIN;
		if (d->dst == s && d->off < d->len)
			ev |= POLLOUT;
	}
	return ev;
}

/* Reads what direction K may take now. false: the connection is gone. */
static bool do_read(struct conn *c, int k)
{
	struct dir *d = &c->d[k];
	size_t room = read_room(d);
	if (!room)
		return true;
	if (d->off && d->len + room > BUF_SIZE) {
		memmove(d->buf, d->buf + d->off, d->len - d->off);
		d->len -= d->off;
		d->off = 0;
	}
	ssize_t n = recv(c->fd[d->src], d->buf + d->len, room, 0);
	if (n < 0) {
		if (errno == EAGAIN || errno == EINTR)
			return true;
		conn_fail(c, d->src, errno);
		return false;
	}
	if (n == 0) {
		d->eof = true;
		return true;
	}
	if (record_dir)
		record(c, k, d->buf + d->len, (size_t)n);
	apply_flips(c, k, d->buf + d->len, (size_t)n);
	d->in += (uint64_t)n;
	d->len += (size_t)n;
	return true;
}

/* Writes what direction K holds (one byte when split). false: the connection is gone. */
static bool do_write(struct conn *c, int k)
{
	struct dir *d = &c->d[k];
	while (d->off < d->len) {
		size_t n = d->split ? 1 : d->len - d->off;
		ssize_t w = send(c->fd[d->dst], d->buf + d->off, n, MSG_NOSIGNAL);
		if (w < 0) {
			if (errno == EAGAIN || errno == EINTR)
				return true;
			conn_fail(c, d->dst, errno);
			return false;
		}
		d->off += (size_t)w;
		d->out += (uint64_t)w;
		d->writes++;
		if (d->off == d->len)
			d->off = d->len = 0;
		if (d->split)
			break;	/* the next byte once this one has left (TCP_NOTSENT_LOWAT) */
	}
	return true;
}

/* Handles REVENTS on side S; false: the connection is gone. */
static bool conn_event(struct conn *c, int s, short rev)
{
	if (c->connecting && s == CLIENT) {
		/* nothing is read from the client before the target answers */
		if (rev & POLLERR) {
			int e = 0;
			socklen_t el = sizeof e;
			getsockopt(c->fd[CLIENT], SOL_SOCKET, SO_ERROR, &e, &el);
			conn_fail(c, CLIENT, e);
			return false;
		}
		if (rev & POLLHUP)
			c->hup[s] = true;
		return true;
	}
	if (c->connecting) {
		int err = 0;
		socklen_t el = sizeof err;
		getsockopt(c->fd[TARGET], SOL_SOCKET, SO_ERROR, &err, &el);
		if (err) {
			event("conn %" PRIu64 " connect to %s: %s", c->id, target.text, strerror(err));
			conn_fail(c, TARGET, err);
			return false;
		}
		c->connecting = false;
		event("conn %" PRIu64 " connected to %s", c->id, target.text);
		return !conn_advance(c);
	}
	if (c->dropping >= 0) {
		if (rev & POLLHUP)
			c->hup[s] = true;
		return !drop_check(c, rev & POLLERR);
	}
	if (rev & POLLERR) {
		int e = 0;
		socklen_t el = sizeof e;
		getsockopt(c->fd[s], SOL_SOCKET, SO_ERROR, &e, &el);
		if (e) {
			conn_fail(c, s, e);
			return false;
		}
	}
	if (rev & POLLHUP)
		c->hup[s] = true;
	for (int k = 0; k < 2; k++) {
		struct dir *d = &c->d[k];
		if (d->dst == s && (rev & (POLLOUT | POLLHUP | POLLERR)) && d->off < d->len && !do_write(c, k))
			return false;
		if (d->src == s && (rev & (POLLIN | POLLHUP | POLLERR)) && !do_read(c, k))
			return false;
	}
	return !conn_advance(c);
}

static int listen_on(const struct addr *a, const char *port_file, char *bound, size_t bn)
{
	int fd = socket(a->ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		die("socket: %s", strerror(errno));
	set_int_opt(fd, SOL_SOCKET, SO_REUSEADDR, 1);
	if (bind(fd, (const struct sockaddr *)&a->ss, a->len) < 0)
		die("listen %s: bind: %s", a->text, strerror(errno));
	if (listen(fd, 64) < 0)
		die("listen %s: %s", a->text, strerror(errno));
	struct sockaddr_storage ss;
	socklen_t sl = sizeof ss;
	getsockname(fd, (struct sockaddr *)&ss, &sl);
	addr_text(&ss, bound, bn);
	if (port_file) {
		unsigned port = ntohs(ss.ss_family == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port
							      : ((struct sockaddr_in6 *)&ss)->sin6_port);
		char text[16];
		snprintf(text, sizeof text, "%u\n", port);
		write_atomic(port_file, text);
	}
	return fd;
}

static int run_proxy(const struct addr *listen_addr, const char *port_file, bool seed_given)
{
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigprocmask(SIG_BLOCK, &set, NULL);
	int sfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
	if (sfd < 0)
		die("signalfd: %s", strerror(errno));
	signal(SIGPIPE, SIG_IGN);

	char bound[80];
	int lfd = listen_on(listen_addr, port_file, bound, sizeof bound);
	event("listening on %s, forwarding to %s", bound, target.text);
	for (size_t i = 0; i < nrules; i++)
		if (rules[i].kind == R_FLIP_AT || rules[i].kind == R_FLIP_EVERY) {
			event("seed %" PRIu64 "%s", seed, seed_given ? "" : " (chosen; replay with --seed)");
			break;
		}

	struct pollfd pfd[2 + 2 * MAX_CONNS];
	struct conn *owner[2 + 2 * MAX_CONNS];
	bool paused = false;
	for (;;) {
		size_t n = 0;
		int timeout = -1;
		pfd[n++] = (struct pollfd){ .fd = sfd, .events = POLLIN };
		pfd[n++] = (struct pollfd){ .fd = (paused || nconns == MAX_CONNS) ? -1 : lfd, .events = POLLIN };
		for (size_t i = 0; i < nconns; i++) {
			struct conn *c = conns[i];
			for (int s = 0; s < 2; s++) {
				short ev = want(c, s);
				owner[n] = c;
				pfd[n++] = (struct pollfd){ .fd = (!ev && c->hup[s]) ? -1 : c->fd[s], .events = ev };
			}
			/* no event tells when the last bytes before a drop are
			 * acknowledged: look every millisecond (a safety net of
			 * 20 ms while they are still being sent) */
			if (c->dropping >= 0)
				timeout = c->drop_sent ? 1 : (timeout == 1 ? 1 : 20);
		}
		int r = poll(pfd, n, timeout);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			die("poll: %s", strerror(errno));
		}
		if (pfd[0].revents) {
			struct signalfd_siginfo si;
			while (read(sfd, &si, sizeof si) == sizeof si) {
				if (si.ssi_signo == SIGUSR1) {
					resume_all();
				} else {
					event("exiting on %s", si.ssi_signo == SIGTERM ? "SIGTERM" : "SIGINT");
					while (nconns) {
						conn_summary(conns[0], "closed at exit");
						conn_free(conns[0], false);
					}
					close(lfd);
					close(sfd);
					return 0;
				}
			}
		}
		/* connections first, by their fds as polled (a freed one drops out) */
		for (size_t i = 2; i < n; i += 2) {
			struct conn *c = owner[i];
			bool alive = false;
			for (size_t j = 0; j < nconns; j++)
				alive |= conns[j] == c;
			if (!alive)
				continue;
			if (c->dropping >= 0 && drop_check(c, false))
				continue;
			size_t before = nconns;
			if (pfd[i].revents && !conn_event(c, CLIENT, pfd[i].revents))
				goto freed;
			if (pfd[i + 1].revents && !conn_event(c, TARGET, pfd[i + 1].revents))
				goto freed;
			continue;
		freed:
			if (nconns < before)
				paused = false;
		}
		if (pfd[1].revents & POLLIN)
			accept_one(lfd, &paused);
	}
}

/* ---- the ends ---- */

/* A connected blocking socket: connect to TO, or accept one on LFD. */
static int end_open(const struct addr *to, int lfd)
{
	int fd;
	if (to) {
		fd = socket(to->ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd < 0)
			die("socket: %s", strerror(errno));
		if (connect(fd, (const struct sockaddr *)&to->ss, to->len) < 0)
			die("connect %s: %s", to->text, strerror(errno));
	} else {
		fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
		if (fd < 0)
			die("accept: %s", strerror(errno));
	}
	set_int_opt(fd, IPPROTO_TCP, TCP_NODELAY, 1);
	return fd;
}

/* A blocking listener on LIS, its port in PORT_FILE; -1 without LIS. */
static int end_listen(const struct addr *lis, const char *port_file)
{
	if (!lis)
		return -1;
	char bound[80];
	int lfd = listen_on(lis, port_file, bound, sizeof bound);
	fcntl(lfd, F_SETFL, fcntl(lfd, F_GETFL) & ~O_NONBLOCK);
	return lfd;
}

static FILE *save_open(const char *path)
{
	if (!path)
		return NULL;
	FILE *f = fopen(path, "we");
	if (!f)
		die("open '%s': %s", path, strerror(errno));
	return f;
}

static void save_close(FILE *f, const char *path)
{
	if (f && fclose(f) != 0)
		die("write '%s': %s", path, strerror(errno));
}

static void result(const char *path, const char *line)
{
	if (path)
		write_atomic(path, line);
	else
		fputs(line, stdout);
}

static void end_how(char *out, size_t n, int err)
{
	if (!err)
		snprintf(out, n, "eof");
	else if (err == ECONNRESET || err == EPIPE)
		snprintf(out, n, "reset");
	else
		snprintf(out, n, "error=%s", strerrorname_np(err) ? strerrorname_np(err) : "?");
}

static int run_source(int fd, uint64_t bytes, size_t chunk, const char *save, const char *res)
{
	unsigned char *buf = malloc(chunk);
	char reply[256] = "";
	size_t rlen = 0;
	if (!buf)
		die("out of memory");
	FILE *sf = save_open(save);
	uint64_t sent = 0, h = FNV_INIT;
	int err = 0;
	while (sent < bytes && !err) {
		size_t n = bytes - sent < chunk ? (size_t)(bytes - sent) : chunk;
		gen_bytes(seed, sent, buf, n);
		size_t done = 0;
		while (done < n) {
			ssize_t w = send(fd, buf + done, n - done, MSG_NOSIGNAL);
			if (w < 0) {
				if (errno == EINTR)
					continue;
				err = errno;
				break;
			}
			h = fnv1a(h, buf + done, (size_t)w);
			if (sf)
				fwrite(buf + done, 1, (size_t)w, sf);
			done += (size_t)w;
			sent += (uint64_t)w;
		}
	}
	/* a shutdown that fails (ENOTCONN after a reset) leaves the reason to recv */
	int shut_err = !err && shutdown(fd, SHUT_WR) < 0 ? errno : 0;
	while (!err) {
		char tmp[256];
		ssize_t r = recv(fd, tmp, sizeof tmp, 0);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			err = errno;
			break;
		}
		if (r == 0) {
			err = shut_err;
			break;
		}
		for (ssize_t i = 0; i < r && rlen < sizeof reply - 1; i++)
			if (tmp[i] != '\n')
				reply[rlen++] = tmp[i];
	}
	reply[rlen] = 0;
	save_close(sf, save);
	char how[64], line[512];
	end_how(how, sizeof how, err);
	snprintf(line, sizeof line, "sent=%" PRIu64 " fnv1a=%016" PRIx64 " end=%s reply=[%s]\n", sent, h, how, reply);
	result(res, line);
	free(buf);
	if (err)
		reset_fd(fd);
	else
		close(fd);
	return err ? 1 : 0;
}

/* One connection's stream: its result line into LINE. 0 when it ended cleanly. */
static int sink_one(int fd, const char *save, char *line, size_t ln)
{
	static unsigned char buf[BUF_SIZE];
	FILE *sf = save_open(save);
	uint64_t got = 0, h = FNV_INIT;
	int err = 0;
	for (;;) {
		ssize_t r = recv(fd, buf, sizeof buf, 0);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			err = errno;
			break;
		}
		if (r == 0)
			break;
		h = fnv1a(h, buf, (size_t)r);
		if (sf)
			fwrite(buf, 1, (size_t)r, sf);
		got += (uint64_t)r;
	}
	save_close(sf, save);
	char digest[128], how[64];
	snprintf(digest, sizeof digest, "bytes=%" PRIu64 " fnv1a=%016" PRIx64, got, h);
	if (!err) {
		/* the reply: the source sees it only if the way back works after its FIN */
		char rep[160];
		int n = snprintf(rep, sizeof rep, "%s\n", digest);
		if (send(fd, rep, (size_t)n, MSG_NOSIGNAL) != n)
			err = errno ? errno : EIO;
	}
	end_how(how, sizeof how, err);
	snprintf(line, ln, "%s end=%s\n", digest, how);
	close(fd);
	return err ? 1 : 0;
}

/* CONNS connections one after the other; one result line each. */
static int run_sink(const struct addr *to, int lfd, uint64_t nconn, const char *save, const char *res)
{
	size_t cap = (size_t)nconn * 256 + 1, len = 0;
	char *all = malloc(cap);
	int rc = 0;
	if (!all)
		die("out of memory");
	all[0] = 0;
	for (uint64_t i = 1; i <= nconn; i++) {
		char path[PATH_MAX];
		const char *sp = save;
		if (save && nconn > 1) {
			snprintf(path, sizeof path, "%s.%" PRIu64, save, i);
			sp = path;
		}
		rc |= sink_one(end_open(to, lfd), sp, all + len, cap - len);
		len += strlen(all + len);
	}
	result(res, all);
	free(all);
	return rc;
}

int main(int argc, char **argv)
{
	enum { O_LISTEN = 256, O_TO, O_PORT_FILE, O_LOG, O_SEED, O_CONN, O_DIR, O_DROP, O_STALL, O_SPLIT,
	       O_FLIP_AT, O_FLIP_EVERY, O_SOURCE, O_SINK, O_BYTES, O_CHUNK, O_SAVE, O_RESULT, O_CONNS, O_RECORD,
	       O_HELP };
	static const struct option opts[] = {
		{ "listen", required_argument, 0, O_LISTEN },
		{ "to", required_argument, 0, O_TO },
		{ "port-file", required_argument, 0, O_PORT_FILE },
		{ "log", required_argument, 0, O_LOG },
		{ "seed", required_argument, 0, O_SEED },
		{ "conn", required_argument, 0, O_CONN },
		{ "dir", required_argument, 0, O_DIR },
		{ "drop-after", required_argument, 0, O_DROP },
		{ "stall-after", required_argument, 0, O_STALL },
		{ "split", no_argument, 0, O_SPLIT },
		{ "flip-at", required_argument, 0, O_FLIP_AT },
		{ "flip-every", required_argument, 0, O_FLIP_EVERY },
		{ "source", no_argument, 0, O_SOURCE },
		{ "sink", no_argument, 0, O_SINK },
		{ "bytes", required_argument, 0, O_BYTES },
		{ "chunk", required_argument, 0, O_CHUNK },
		{ "save", required_argument, 0, O_SAVE },
		{ "result", required_argument, 0, O_RESULT },
		{ "digest-out", required_argument, 0, O_RESULT },
		{ "conns", required_argument, 0, O_CONNS },
		{ "record", required_argument, 0, O_RECORD },
		{ "help", no_argument, 0, O_HELP },
		{ 0, 0, 0, 0 },
	};
	struct addr listen_addr, to_addr;
	bool have_listen = false, have_to = false, have_bytes = false, seed_given = false;
	const char *port_file = NULL, *log_path = NULL, *save = NULL, *res = NULL;
	uint64_t cur_conn = 0, bytes = 0, chunk = 16384, sink_conns = 1;
	unsigned cur_dirs = 3;
	int mode = 0;	/* 0 proxy, O_SOURCE, O_SINK */

	rules = calloc((size_t)argc, sizeof *rules);
	if (!rules)
		die("out of memory");
	int o, idx = 0;
	while ((o = getopt_long(argc, argv, ":", opts, &idx)) != -1) {
		const char *name = opts[idx].name;
		switch (o) {
		case O_LISTEN:
			parse_addr("listen", optarg, &listen_addr);
			have_listen = true;
			break;
		case O_TO:
			parse_addr("to", optarg, &to_addr);
			have_to = true;
			break;
		case O_PORT_FILE:
			port_file = optarg;
			break;
		case O_LOG:
			log_path = optarg;
			break;
		case O_RECORD:
			record_dir = optarg;
			break;
		case O_SEED:
			seed = parse_u64("seed", optarg, UINT64_MAX);
			seed_given = true;
			break;
		case O_CONN:
			cur_conn = parse_u64("conn", optarg, UINT64_MAX);
			break;
		case O_DIR:
			if (!strcmp(optarg, "up"))
				cur_dirs = 1u << UP;
			else if (!strcmp(optarg, "down"))
				cur_dirs = 1u << DOWN;
			else if (!strcmp(optarg, "both"))
				cur_dirs = 3;
			else
				usage_exit("--dir: '%s' is not up, down or both", optarg);
			break;
		case O_DROP:
		case O_STALL:
		case O_SPLIT:
		case O_FLIP_AT:
		case O_FLIP_EVERY: {
			struct rule *r = &rules[nrules++];
			r->conn = cur_conn;
			r->dirs = cur_dirs;
			r->kind = o == O_DROP ? R_DROP : o == O_STALL ? R_STALL : o == O_SPLIT ? R_SPLIT
				: o == O_FLIP_AT ? R_FLIP_AT : R_FLIP_EVERY;
			if (o != O_SPLIT)
				r->n = parse_u64(name, optarg, o == O_FLIP_EVERY ? (1ull << 62) : UINT64_MAX - 1);
			if (o == O_FLIP_EVERY && r->n == 0)
				usage_exit("--flip-every: '%s' is not a whole number from 1 to %llu", optarg,
					   1ull << 62);
			break;
		}
		case O_SOURCE:
		case O_SINK:
			if (mode && mode != o)
				usage_exit("--source and --sink exclude each other");
			mode = o;
			break;
		case O_BYTES:
			bytes = parse_u64("bytes", optarg, UINT64_MAX);
			have_bytes = true;
			break;
		case O_CHUNK:
			chunk = parse_u64("chunk", optarg, 1 << 24);
			if (!chunk)
				usage_exit("--chunk: '0' is not a whole number from 1 to %d", 1 << 24);
			break;
		case O_SAVE:
			save = optarg;
			break;
		case O_RESULT:
			res = optarg;
			break;
		case O_CONNS:
			sink_conns = parse_u64("conns", optarg, 1000);
			if (!sink_conns)
				usage_exit("--conns: '0' is not a whole number from 1 to 1000");
			break;
		case O_HELP:
			fputs("see the comment at the top of t/tools/faultproxy.c\n", stdout);
			return 0;
		case ':':
			usage_exit("'%s' needs a value", argv[optind - 1]);
			break;
		default:
			usage_exit("unknown option '%s'", argv[optind - 1]);
		}
	}
	if (optind < argc)
		usage_exit("unexpected argument '%s'", argv[optind]);
	if (port_file && !have_listen)
		usage_exit("--port-file needs --listen");
	if (!seed_given) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		seed = mix64((uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 20) ^ (uint64_t)getpid()) % 1000000000;
	}

	if (mode == 0) {
		if (!have_listen || !have_to)
			usage_exit("the proxy needs --listen and --to");
		if (have_bytes || save || res || sink_conns != 1)
			usage_exit("--bytes, --save, --result and --conns are for --source and --sink");
		if (log_path) {
			log_fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
			if (log_fd < 0)
				die("open '%s': %s", log_path, strerror(errno));
		}
		target = to_addr;
		return run_proxy(&listen_addr, port_file, seed_given);
	}
	if (nrules || log_path)
		usage_exit("rules and --log are for the proxy, not --%s", mode == O_SOURCE ? "source" : "sink");
	if (have_listen == have_to)
		usage_exit("--%s needs one of --to and --listen", mode == O_SOURCE ? "source" : "sink");
	signal(SIGPIPE, SIG_IGN);
	if (mode == O_SOURCE) {
		if (!have_bytes)
			usage_exit("--source needs --bytes");
		if (sink_conns != 1)
			usage_exit("--conns is for --sink");
		int lfd = end_listen(have_listen ? &listen_addr : NULL, port_file);
		return run_source(end_open(have_to ? &to_addr : NULL, lfd), bytes, (size_t)chunk, save, res);
	}
	if (have_bytes)
		usage_exit("--bytes is for --source");
	int lfd = end_listen(have_listen ? &listen_addr : NULL, port_file);
	return run_sink(have_to ? &to_addr : NULL, lfd, sink_conns, save, res);
}
