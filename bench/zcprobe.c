/*
 * bench/zcprobe.c - would IORING_OP_SEND_ZC help the exchange? A small
 * probe: one TCP stream sent through io_uring with plain sends (the
 * kernel copies the bytes into its buffers) or with zero-copy sends (it
 * pins the pages and, once the last reference is gone, posts a
 * notification), the same buffers and depth either way.
 *
 *   weir-bench-zcprobe server --listen ADDR:PORT [--port-file F] [--conns N]
 *   weir-bench-zcprobe client --to ADDR:PORT --mode copy|zc [--bytes N] [--chunk C] [--depth D]
 *
 * The client keeps D sends of C bytes in flight (a chunk's buffer is
 * reused once the kernel is done with it: its completion for copy, its
 * notification for zc), sends N bytes and waits for the server's one-byte
 * acknowledgement of the last; the server reads into a buffer of C bytes
 * with blocking recv. The client prints
 *
 *   zcprobe mode=zc bytes= chunk= depth= seconds= GBps= cpu_s= sends= copied=
 *
 * where cpu_s is the client's user+system CPU and copied counts the zero-
 * copy notifications whose kernel said it copied the bytes after all
 * (IORING_NOTIF_USAGE_ZC_COPIED): over loopback and veth it must, since
 * the receiving socket on the same machine cannot keep pages the sender
 * will reuse. TCP_NODELAY on both ends; defaults N = 1 GiB, C = 32 KiB
 * (a segment), D = 4 (the exchange's credits). Exit status: 0, 1 when
 * the run failed, 2 for bad usage.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <liburing.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#ifndef IORING_SEND_ZC_REPORT_USAGE
#define IORING_SEND_ZC_REPORT_USAGE (1U << 3)
#endif
#ifndef IORING_NOTIF_USAGE_ZC_COPIED
#define IORING_NOTIF_USAGE_ZC_COPIED (1U << 31)
#endif

static const char *prog = "weir-bench-zcprobe";

static void usage_exit(const char *fmt, ...)
{
	va_list ap;
	fprintf(stderr, "%s: ", prog);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr,
		"\nusage: %s server --listen ADDR:PORT [--port-file F] [--conns N]\n"
		"       %s client --to ADDR:PORT --mode copy|zc [--bytes N] [--chunk C] [--depth D]\n",
		prog, prog);
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

static void parse_addr(const char *opt, const char *s, struct sockaddr_storage *ss, socklen_t *len)
{
	char host[64];
	const char *colon = strrchr(s, ':');
	if (!colon || colon == s || !colon[1])
		usage_exit("%s: '%s' is not ADDR:PORT", opt, s);
	size_t hl = (size_t)(colon - s);
	const char *h = s;
	if (s[0] == '[' && colon[-1] == ']') {
		h++;
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
	if (getaddrinfo(host, port, &hints, &res))
		usage_exit("%s: '%s' is not an IPv4 or IPv6 address and a port", opt, s);
	memcpy(ss, res->ai_addr, res->ai_addrlen);
	*len = res->ai_addrlen;
	freeaddrinfo(res);
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static double cpu_s(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec * 1e-6 + (double)ru.ru_stime.tv_sec +
	       (double)ru.ru_stime.tv_usec * 1e-6;
}

static void nodelay(int fd)
{
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

static int recv_all(int fd, void *p, size_t n)
{
	char *c = p;
	while (n) {
		ssize_t r = recv(fd, c, n, 0);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return -1;
		c += r;
		n -= (size_t)r;
	}
	return 0;
}

struct hdr {
	uint64_t bytes, chunk;
};

/* ---- server ---- */

static int serve(const struct sockaddr_storage *ss, socklen_t len, const char *port_file, uint64_t conns)
{
	int lfd = socket(ss->ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int one = 1;
	setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	if (lfd < 0 || bind(lfd, (const struct sockaddr *)ss, len) < 0 || listen(lfd, 4) < 0)
		die("listen: %s", strerror(errno));
	if (port_file) {
		struct sockaddr_storage b;
		socklen_t bl = sizeof b;
		getsockname(lfd, (struct sockaddr *)&b, &bl);
		unsigned port = ntohs(b.ss_family == AF_INET ? ((struct sockaddr_in *)&b)->sin_port
							     : ((struct sockaddr_in6 *)&b)->sin6_port);
		char tmp[PATH_MAX];
		snprintf(tmp, sizeof tmp, "%s.tmp", port_file);
		FILE *f = fopen(tmp, "w");
		if (!f || fprintf(f, "%u\n", port) < 0 || fclose(f) != 0 || rename(tmp, port_file) < 0)
			die("port file '%s': %s", port_file, strerror(errno));
	}
	for (uint64_t i = 0; conns == 0 || i < conns; i++) {
		int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
		if (fd < 0)
			die("accept: %s", strerror(errno));
		nodelay(fd);
		struct hdr h;
		if (recv_all(fd, &h, sizeof h) < 0 || h.chunk == 0 || h.chunk > (64u << 20))
			die("a bad header");
		char *buf = malloc(h.chunk);
		if (!buf)
			die("out of memory");
		uint64_t got = 0;
		while (got < h.bytes) {
			ssize_t r = recv(fd, buf, h.chunk, 0);
			if (r < 0 && errno == EINTR)
				continue;
			if (r <= 0)
				die("after %" PRIu64 " of %" PRIu64 " bytes: %s", got, h.bytes,
				    r ? strerror(errno) : "the client closed");
			got += (uint64_t)r;
		}
		char ack = 1;
		if (write(fd, &ack, 1) != 1)
			die("acknowledgement: %s", strerror(errno));
		char c;
		while (recv(fd, &c, 1, 0) > 0) {
		}
		free(buf);
		close(fd);
	}
	return 0;
}

/* ---- client ---- */

static int client(const struct sockaddr_storage *ss, socklen_t len, bool zc, uint64_t bytes, uint32_t chunk,
		  uint32_t depth)
{
	int fd = socket(ss->ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (const struct sockaddr *)ss, len) < 0)
		die("connect: %s", strerror(errno));
	nodelay(fd);
	struct hdr h = { .bytes = bytes, .chunk = chunk };
	if (write(fd, &h, sizeof h) != (ssize_t)sizeof h)
		die("header: %s", strerror(errno));
	struct io_uring ring;
	int rc = io_uring_queue_init(2 * depth + 8, &ring, 0);
	if (rc < 0)
		die("io_uring_queue_init: %s", strerror(-rc));
	uint8_t *buf = aligned_alloc(4096, (size_t)depth * chunk);
	if (!buf)
		die("out of memory");
	memset(buf, 0x5a, (size_t)depth * chunk);
	/* per slot: bytes of its chunk not yet sent, where they start, and
	 * the completions still owed (a zc send owes its notification too) */
	uint32_t *left = calloc(depth, sizeof(*left)), *off = calloc(depth, sizeof(*off));
	uint32_t *owed = calloc(depth, sizeof(*owed));
	if (!left || !off || !owed)
		die("out of memory");
	uint64_t queued = 0, sends = 0, copied = 0, notifs = 0;
	double c0 = cpu_s(), t0 = now_s();
	uint32_t busy = 0;
	for (;;) {
		/* fill every free slot, and send the rest of a short send */
		for (uint32_t i = 0; i < depth; i++) {
			if (left[i] == 0 && owed[i] == 0) {
				if (queued >= bytes)
					continue;
				left[i] = bytes - queued < chunk ? (uint32_t)(bytes - queued) : chunk;
				off[i] = 0;
				queued += left[i];
				busy++;
			} else if (left[i] == 0 || owed[i] > 0) {
				continue; /* waiting for the kernel */
			}
			struct io_uring_sqe *sqe = io_uring_get_sqe(&ring);
			if (zc) {
				io_uring_prep_send_zc(sqe, fd, buf + (size_t)i * chunk + off[i], left[i], MSG_NOSIGNAL, 0);
				sqe->ioprio |= IORING_SEND_ZC_REPORT_USAGE;
			} else {
				io_uring_prep_send(sqe, fd, buf + (size_t)i * chunk + off[i], left[i], MSG_NOSIGNAL);
			}
			io_uring_sqe_set_data64(sqe, i);
			owed[i]++;
			sends++;
		}
		if (busy == 0)
			break;
		rc = io_uring_submit_and_wait(&ring, 1);
		if (rc < 0 && rc != -EINTR)
			die("io_uring_enter: %s", strerror(-rc));
		struct io_uring_cqe *cqe;
		while (io_uring_peek_cqe(&ring, &cqe) == 0) {
			uint32_t i = (uint32_t)cqe->user_data;
			int res = cqe->res;
			uint32_t fl = cqe->flags;
			io_uring_cqe_seen(&ring, cqe);
			owed[i]--;
			if (fl & IORING_CQE_F_NOTIF) {
				notifs++;
				if ((uint32_t)res & IORING_NOTIF_USAGE_ZC_COPIED)
					copied++;
			} else {
				if (res < 0)
					die("send: %s", strerror(-res));
				left[i] -= (uint32_t)res;
				off[i] += (uint32_t)res;
				if (fl & IORING_CQE_F_MORE)
					owed[i]++; /* its notification follows */
			}
			if (left[i] == 0 && owed[i] == 0)
				busy--;
		}
	}
	char ack;
	if (recv_all(fd, &ack, 1) < 0)
		die("waiting for the acknowledgement: %s", strerror(errno));
	double secs = now_s() - t0, cpu = cpu_s() - c0;
	printf("zcprobe mode=%s bytes=%" PRIu64 " chunk=%u depth=%u seconds=%.6f GBps=%.3f cpu_s=%.3f sends=%" PRIu64
	       " notifs=%" PRIu64 " copied=%" PRIu64 "\n",
	       zc ? "zc" : "copy", bytes, chunk, depth, secs, secs > 0 ? (double)bytes / secs / 1e9 : 0, cpu, sends,
	       notifs, copied);
	io_uring_queue_exit(&ring);
	close(fd);
	free(buf);
	free(left);
	free(off);
	free(owed);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc < 2)
		usage_exit("server or client?");
	bool server = !strcmp(argv[1], "server");
	if (!server && strcmp(argv[1], "client"))
		usage_exit("unknown mode '%s'", argv[1]);
	struct sockaddr_storage ss;
	socklen_t len = 0;
	const char *port_file = NULL;
	uint64_t conns = 1, bytes = 1ull << 30;
	uint32_t chunk = 32768, depth = 4;
	int zc = -1;
	for (int i = 2; i < argc; i++) {
		const char *o = argv[i];
		if (i + 1 >= argc)
			usage_exit("%s needs a value", o);
		const char *v = argv[++i];
		if (server && !strcmp(o, "--listen"))
			parse_addr(o, v, &ss, &len);
		else if (server && !strcmp(o, "--port-file"))
			port_file = v;
		else if (server && !strcmp(o, "--conns"))
			conns = parse_num(o, v, 0, 1000000);
		else if (!server && !strcmp(o, "--to"))
			parse_addr(o, v, &ss, &len);
		else if (!server && !strcmp(o, "--mode"))
			zc = !strcmp(v, "zc") ? 1 : !strcmp(v, "copy") ? 0 : (usage_exit("--mode: copy or zc"), 0);
		else if (!server && !strcmp(o, "--bytes"))
			bytes = parse_num(o, v, 1, 1ull << 40);
		else if (!server && !strcmp(o, "--chunk"))
			chunk = (uint32_t)parse_num(o, v, 1, 64u << 20);
		else if (!server && !strcmp(o, "--depth"))
			depth = (uint32_t)parse_num(o, v, 1, 1024);
		else
			usage_exit("unknown option '%s'", o);
	}
	if (!len)
		usage_exit(server ? "server needs --listen" : "client needs --to");
	if (!server && zc < 0)
		usage_exit("client needs --mode copy or --mode zc");
	signal(SIGPIPE, SIG_IGN);
	return server ? serve(&ss, len, port_file, conns) : client(&ss, len, zc == 1, bytes, chunk, depth);
}
