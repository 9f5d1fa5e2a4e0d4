/*
 * bench/netprobe.c - bare TCP baselines for the network benchmarks (issue
 * 14): what the link between two hosts (two network namespaces of
 * scripts/netbed, or loopback) gives a plain socket, measured in the same
 * run as the engine, so the engine's figures have something to stand beside.
 * iperf3's defaults understate such a link several times over; this is a
 * small probe of ours instead.
 *
 *   weir-bench-netprobe stream-server --listen ADDR:PORT [--port-file F] [--conns N] [--cpu K] [--json]
 *   weir-bench-netprobe stream-client --to ADDR:PORT --bytes N --chunk C [--cpu K] [--json]
 *     The client sends N bytes in writes of C bytes (TCP_NODELAY); the
 *     server reads them into a buffer of C bytes and, after the last, sends
 *     one byte back. The client's figure runs from its first write to that
 *     byte's arrival, so it is end to end:
 *       stream bytes=N chunk=C seconds=S gbps=X
 *     (the server prints "stream-server ..." with its own first-to-last read).
 *
 *   weir-bench-netprobe pingpong-server --listen ADDR:PORT [--port-file F] [--conns N] [--cpu K] [--json]
 *   weir-bench-netprobe pingpong-client --to ADDR:PORT --size B --count N [--warmup W] [--cpu K] [--json]
 *     W + N round trips of a B-byte message (TCP_NODELAY, blocking sockets,
 *     one thread each side); the first W are not counted. One-way latency
 *     is half a round trip; from the sorted samples:
 *       pingpong size=B count=N warmup=W min_us= p50_us= p99_us= p999_us= max_us= mean_us=
 *     p50 is the median (nearest rank, as the other percentiles).
 *
 * A server serves --conns connections one after the other (default 1; 0:
 * until killed) and writes its port to --port-file (through a temporary
 * file and a rename) once it listens: --listen port 0 picks one. --cpu K
 * pins the process to CPU K. --json prints one JSON object instead of the
 * line. Exit status: 0, 1 when a run failed (a line on stderr says why), 2
 * for bad usage.
 *
 * The client opens with a 24-byte header (magic, kind, two numbers: bytes
 * and chunk, or size and rounds), so a server refuses the wrong probe.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>

#define MAGIC 0x31504e57u	/* "WNP1" */
enum { KIND_STREAM = 1, KIND_PINGPONG = 2 };
#define MAX_CHUNK (64u << 20)
#define MAX_COUNT 100000000ull

struct hdr {
	uint32_t magic, kind;
	uint64_t a, b;	/* stream: bytes, chunk; pingpong: size, rounds */
};

static const char *prog = "weir-bench-netprobe";

static void usage_exit(const char *fmt, ...)
{
	va_list ap;
	fprintf(stderr, "%s: ", prog);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr,
		"\nusage: %s stream-server --listen ADDR:PORT [--port-file F] [--conns N] [--cpu K] [--json]\n"
		"       %s stream-client --to ADDR:PORT --bytes N --chunk C [--cpu K] [--json]\n"
		"       %s pingpong-server --listen ADDR:PORT [--port-file F] [--conns N] [--cpu K] [--json]\n"
		"       %s pingpong-client --to ADDR:PORT --size B --count N [--warmup W] [--cpu K] [--json]\n",
		prog, prog, prog, prog);
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

struct addr {
	struct sockaddr_storage ss;
	socklen_t len;
	const char *text;
};

static void parse_addr(const char *opt, const char *s, struct addr *a)
{
	char host[64];
	const char *colon = strrchr(s, ':');
	if (!colon || colon == s || !colon[1])
		usage_exit("%s: '%s' is not ADDR:PORT", opt, s);
	size_t hl = (size_t)(colon - s);
	const char *h = s;
	if (s[0] == '[' && colon[-1] == ']') {
		h = s + 1;
		hl -= 2;
	}
	if (hl == 0 || hl >= sizeof host)
		usage_exit("%s: '%s' is not ADDR:PORT", opt, s);
	memcpy(host, h, hl);
	host[hl] = 0;
	char port[8];
	snprintf(port, sizeof port, "%u", (unsigned)parse_num(opt, colon + 1, 0, 65535));
	struct addrinfo hints = { .ai_flags = AI_NUMERICHOST | AI_NUMERICSERV, .ai_socktype = SOCK_STREAM };
	struct addrinfo *res;
	int rc = getaddrinfo(host, port, &hints, &res);
	if (rc)
		usage_exit("%s: '%s': %s (an IPv4 or IPv6 address and a port)", opt, s, gai_strerror(rc));
	memcpy(&a->ss, res->ai_addr, res->ai_addrlen);
	a->len = res->ai_addrlen;
	a->text = s;
	freeaddrinfo(res);
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void nodelay(int fd)
{
	int one = 1;
	if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) < 0)
		die("setsockopt TCP_NODELAY: %s", strerror(errno));
}

/* All N bytes, or -1 (errno set; 0 for an early end). */
static int send_all(int fd, const void *p, size_t n)
{
	const char *c = p;
	while (n) {
		ssize_t w = send(fd, c, n, MSG_NOSIGNAL);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		c += w;
		n -= (size_t)w;
	}
	return 0;
}

static int recv_all(int fd, void *p, size_t n)
{
	char *c = p;
	while (n) {
		ssize_t r = recv(fd, c, n, 0);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			if (r == 0)
				errno = 0;
			return -1;
		}
		c += r;
		n -= (size_t)r;
	}
	return 0;
}

static const char *why(void)
{
	return errno ? strerror(errno) : "the peer closed the connection";
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

static int listen_on(const struct addr *a, const char *port_file)
{
	int fd = socket(a->ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		die("socket: %s", strerror(errno));
	int one = 1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	if (bind(fd, (const struct sockaddr *)&a->ss, a->len) < 0)
		die("listen %s: bind: %s", a->text, strerror(errno));
	if (listen(fd, 16) < 0)
		die("listen %s: %s", a->text, strerror(errno));
	if (port_file) {
		struct sockaddr_storage ss;
		socklen_t sl = sizeof ss;
		getsockname(fd, (struct sockaddr *)&ss, &sl);
		write_port_file(port_file, ntohs(ss.ss_family == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port
									 : ((struct sockaddr_in6 *)&ss)->sin6_port));
	}
	return fd;
}

static int connect_to(const struct addr *a)
{
	int fd = socket(a->ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		die("socket: %s", strerror(errno));
	if (connect(fd, (const struct sockaddr *)&a->ss, a->len) < 0)
		die("connect %s: %s", a->text, strerror(errno));
	nodelay(fd);
	return fd;
}

static void pin(int cpu)
{
	if (cpu < 0)
		return;
	cpu_set_t set;
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	if (sched_setaffinity(0, sizeof set, &set) < 0)
		die("--cpu %d: sched_setaffinity: %s", cpu, strerror(errno));
}

/* ---- stream ---- */

/* One connection of the stream server; 0, or -1 with a line on stderr. */
static int stream_serve(int fd, bool json)
{
	struct hdr h;
	if (recv_all(fd, &h, sizeof h) < 0) {
		fprintf(stderr, "%s: stream-server: header: %s\n", prog, why());
		return -1;
	}
	if (h.magic != MAGIC || h.kind != KIND_STREAM || h.b == 0 || h.b > MAX_CHUNK) {
		fprintf(stderr, "%s: stream-server: not a stream client (magic 0x%08x, kind %u, chunk %" PRIu64 ")\n",
			prog, h.magic, h.kind, h.b);
		return -1;
	}
	char *buf = malloc(h.b);
	if (!buf)
		die("out of memory");
	uint64_t got = 0;
	double t0 = 0, t1 = 0;
	while (got < h.a) {
		uint64_t want = h.a - got < h.b ? h.a - got : h.b;
		ssize_t r = recv(fd, buf, (size_t)want, 0);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			if (r == 0)
				errno = 0;
			fprintf(stderr, "%s: stream-server: after %" PRIu64 " of %" PRIu64 " bytes: %s\n", prog, got,
				h.a, why());
			free(buf);
			return -1;
		}
		if (got == 0)
			t0 = now_s();
		got += (uint64_t)r;
	}
	t1 = now_s();
	free(buf);
	char ack = 1;
	if (send_all(fd, &ack, 1) < 0) {
		fprintf(stderr, "%s: stream-server: acknowledgement: %s\n", prog, why());
		return -1;
	}
	double s = t1 - t0;
	double gbps = s > 0 ? (double)got * 8 / s / 1e9 : 0;
	if (json)
		printf("{\"probe\":\"stream-server\",\"bytes\":%" PRIu64 ",\"chunk\":%" PRIu64
		       ",\"seconds\":%.6f,\"gbps\":%.3f}\n",
		       got, h.b, s, gbps);
	else
		printf("stream-server bytes=%" PRIu64 " chunk=%" PRIu64 " seconds=%.6f gbps=%.3f\n", got, h.b, s, gbps);
	fflush(stdout);
	/* the client closes after the acknowledgement */
	char c;
	while (recv(fd, &c, 1, 0) > 0) {
	}
	return 0;
}

static int stream_client(const struct addr *to, uint64_t bytes, uint64_t chunk, bool json)
{
	int fd = connect_to(to);
	struct hdr h = { .magic = MAGIC, .kind = KIND_STREAM, .a = bytes, .b = chunk };
	if (send_all(fd, &h, sizeof h) < 0)
		die("stream-client: header: %s", why());
	char *buf = malloc(chunk);
	if (!buf)
		die("out of memory");
	memset(buf, 0x5a, chunk);
	double t0 = now_s();
	uint64_t sent = 0;
	while (sent < bytes) {
		size_t n = bytes - sent < chunk ? (size_t)(bytes - sent) : (size_t)chunk;
		if (send_all(fd, buf, n) < 0)
			die("stream-client: after %" PRIu64 " of %" PRIu64 " bytes: %s", sent, bytes, why());
		sent += n;
	}
	char ack;
	if (recv_all(fd, &ack, 1) < 0)
		die("stream-client: waiting for the acknowledgement: %s", why());
	double s = now_s() - t0;
	free(buf);
	close(fd);
	double gbps = s > 0 ? (double)bytes * 8 / s / 1e9 : 0;
	if (json)
		printf("{\"probe\":\"stream\",\"bytes\":%" PRIu64 ",\"chunk\":%" PRIu64 ",\"seconds\":%.6f,\"gbps\":%.3f}\n",
		       bytes, chunk, s, gbps);
	else
		printf("stream bytes=%" PRIu64 " chunk=%" PRIu64 " seconds=%.6f gbps=%.3f\n", bytes, chunk, s, gbps);
	return 0;
}

/* ---- ping-pong ---- */

static int pingpong_serve(int fd, bool json)
{
	struct hdr h;
	if (recv_all(fd, &h, sizeof h) < 0) {
		fprintf(stderr, "%s: pingpong-server: header: %s\n", prog, why());
		return -1;
	}
	if (h.magic != MAGIC || h.kind != KIND_PINGPONG || h.a == 0 || h.a > MAX_CHUNK) {
		fprintf(stderr, "%s: pingpong-server: not a pingpong client (magic 0x%08x, kind %u, size %" PRIu64 ")\n",
			prog, h.magic, h.kind, h.a);
		return -1;
	}
	char *buf = malloc(h.a);
	if (!buf)
		die("out of memory");
	uint64_t i;
	for (i = 0; i < h.b; i++)
		if (recv_all(fd, buf, (size_t)h.a) < 0 || send_all(fd, buf, (size_t)h.a) < 0) {
			fprintf(stderr, "%s: pingpong-server: round %" PRIu64 " of %" PRIu64 ": %s\n", prog, i + 1, h.b,
				why());
			free(buf);
			return -1;
		}
	free(buf);
	if (json)
		printf("{\"probe\":\"pingpong-server\",\"size\":%" PRIu64 ",\"rounds\":%" PRIu64 "}\n", h.a, h.b);
	else
		printf("pingpong-server size=%" PRIu64 " rounds=%" PRIu64 "\n", h.a, h.b);
	fflush(stdout);
	char c;
	while (recv(fd, &c, 1, 0) > 0) {
	}
	return 0;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

/* Nearest rank: the smallest sample with at least P of them at or below it. */
static double pct_us(const uint64_t *v, uint64_t n, double p)
{
	uint64_t k = (uint64_t)(p * (double)n + 0.999999);
	if (k < 1)
		k = 1;
	if (k > n)
		k = n;
	return (double)v[k - 1] / 1000.0;
}

static int pingpong_client(const struct addr *to, uint64_t size, uint64_t count, uint64_t warmup, bool json)
{
	int fd = connect_to(to);
	struct hdr h = { .magic = MAGIC, .kind = KIND_PINGPONG, .a = size, .b = count + warmup };
	if (send_all(fd, &h, sizeof h) < 0)
		die("pingpong-client: header: %s", why());
	char *buf = malloc(size);
	uint64_t *lat = malloc(count * sizeof *lat);	/* one-way, ns */
	if (!buf || !lat)
		die("out of memory");
	memset(buf, 0xa5, size);
	for (uint64_t i = 0; i < count + warmup; i++) {
		uint64_t t0 = now_ns();
		if (send_all(fd, buf, size) < 0 || recv_all(fd, buf, size) < 0)
			die("pingpong-client: round %" PRIu64 " of %" PRIu64 ": %s", i + 1, count + warmup, why());
		uint64_t rtt = now_ns() - t0;
		if (i >= warmup)
			lat[i - warmup] = rtt / 2;
	}
	close(fd);
	qsort(lat, count, sizeof *lat, cmp_u64);
	double sum = 0;
	for (uint64_t i = 0; i < count; i++)
		sum += (double)lat[i];
	double mn = (double)lat[0] / 1000.0, mx = (double)lat[count - 1] / 1000.0, mean = sum / (double)count / 1000.0;
	double p50 = pct_us(lat, count, 0.50), p99 = pct_us(lat, count, 0.99), p999 = pct_us(lat, count, 0.999);
	if (json)
		printf("{\"probe\":\"pingpong\",\"size\":%" PRIu64 ",\"count\":%" PRIu64 ",\"warmup\":%" PRIu64
		       ",\"min_us\":%.2f,\"p50_us\":%.2f,\"p99_us\":%.2f,\"p999_us\":%.2f,\"max_us\":%.2f,\"mean_us\":%.2f}\n",
		       size, count, warmup, mn, p50, p99, p999, mx, mean);
	else
		printf("pingpong size=%" PRIu64 " count=%" PRIu64 " warmup=%" PRIu64
		       " min_us=%.2f p50_us=%.2f p99_us=%.2f p999_us=%.2f max_us=%.2f mean_us=%.2f\n",
		       size, count, warmup, mn, p50, p99, p999, mx, mean);
	free(buf);
	free(lat);
	return 0;
}

static int serve(const struct addr *lis, const char *port_file, uint64_t conns, bool json,
		 int (*one)(int fd, bool json))
{
	int lfd = listen_on(lis, port_file);
	int rc = 0;
	for (uint64_t i = 0; conns == 0 || i < conns; i++) {
		int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED) {
				i--;
				continue;
			}
			die("accept: %s", strerror(errno));
		}
		nodelay(fd);
		if (one(fd, json) < 0)
			rc = 1;
		close(fd);
	}
	close(lfd);
	return rc;
}

int main(int argc, char **argv)
{
	if (argc < 2)
		usage_exit("which probe? stream-server, stream-client, pingpong-server or pingpong-client");
	const char *mode = argv[1];
	if (!strcmp(mode, "-h") || !strcmp(mode, "--help")) {
		printf("usage: %s stream-server|stream-client|pingpong-server|pingpong-client ... "
		       "(see bench/netprobe.c)\n", prog);
		return 0;
	}
	bool server = !strcmp(mode, "stream-server") || !strcmp(mode, "pingpong-server");
	bool stream = !strcmp(mode, "stream-server") || !strcmp(mode, "stream-client");
	if (!server && !stream && strcmp(mode, "pingpong-client"))
		usage_exit("unknown probe '%s'", mode);

	struct addr lis, to;
	bool have_lis = false, have_to = false, json = false;
	const char *port_file = NULL;
	uint64_t bytes = 0, chunk = 0, size = 0, count = 0, warmup = 0, conns = 1;
	bool have_bytes = false, have_chunk = false, have_size = false, have_count = false;
	int cpu = -1;
	for (int i = 2; i < argc; i++) {
		const char *o = argv[i];
		if (!strcmp(o, "--json")) {
			json = true;
			continue;
		}
		if (!strcmp(o, "--help") || !strcmp(o, "-h"))
			usage_exit("usage");
		if (strncmp(o, "--", 2))
			usage_exit("unexpected argument '%s'", o);
		if (i + 1 >= argc)
			usage_exit("%s needs a value", o);
		const char *v = argv[++i];
		if (server && !strcmp(o, "--listen")) {
			parse_addr(o, v, &lis);
			have_lis = true;
		} else if (server && !strcmp(o, "--port-file")) {
			port_file = v;
		} else if (server && !strcmp(o, "--conns")) {
			conns = parse_num(o, v, 0, MAX_COUNT);
		} else if (!server && !strcmp(o, "--to")) {
			parse_addr(o, v, &to);
			have_to = true;
		} else if (!server && stream && !strcmp(o, "--bytes")) {
			bytes = parse_num(o, v, 1, 1ull << 50);
			have_bytes = true;
		} else if (!server && stream && !strcmp(o, "--chunk")) {
			chunk = parse_num(o, v, 1, MAX_CHUNK);
			have_chunk = true;
		} else if (!server && !stream && !strcmp(o, "--size")) {
			size = parse_num(o, v, 1, MAX_CHUNK);
			have_size = true;
		} else if (!server && !stream && !strcmp(o, "--count")) {
			count = parse_num(o, v, 1, MAX_COUNT);
			have_count = true;
		} else if (!server && !stream && !strcmp(o, "--warmup")) {
			warmup = parse_num(o, v, 0, MAX_COUNT);
		} else if (!strcmp(o, "--cpu")) {
			cpu = (int)parse_num(o, v, 0, CPU_SETSIZE - 1);
		} else {
			usage_exit("unknown option '%s' for %s", o, mode);
		}
	}
	signal(SIGPIPE, SIG_IGN);
	if (server) {
		if (!have_lis)
			usage_exit("%s needs --listen", mode);
		pin(cpu);
		return serve(&lis, port_file, conns, json, stream ? stream_serve : pingpong_serve);
	}
	if (!have_to)
		usage_exit("%s needs --to", mode);
	if (stream && (!have_bytes || !have_chunk))
		usage_exit("stream-client needs --bytes and --chunk");
	if (!stream && (!have_size || !have_count))
		usage_exit("pingpong-client needs --size and --count");
	pin(cpu);
	return stream ? stream_client(&to, bytes, chunk, json) : pingpong_client(&to, size, count, warmup, json);
}
