/* t1480-loop-tls: the loop speaking TLS (cfg.tls_server / tls_client, the
 * sessions of net/tls.h) on both ends, one loop each side in one thread
 * (run in turn): frames of every size both ways, queued before the
 * handshake ends, arrive byte-exact and in order; external sends are
 * encrypted and get their on_sent; the bytes on the wire (seen through a
 * socket pair we relay ourselves: the client connects to us, we connect to
 * the server) never hold the plaintext marker; a client with a certificate
 * of another CA, and a plain (non-TLS) client, are refused and the server
 * goes on. Certificates are made in a temporary folder with net/cert.h. */
#include "tap.h"
#include "net/cert.h"
#include "net/loop.h"
#include "net/tls.h"
#include "base/err.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define MARK "PLAINTEXT-MARKER-0123456789"
enum { NFRAMES = 300 };

struct side {
	int frames, bad, opened, closed, last_reason, sent;
	uint32_t next;
};

static uint32_t flen(uint32_t q) { return (q * 7919) % 70000 + (uint32_t)sizeof(MARK); }
static uint8_t fbyte(uint32_t q, uint32_t j) { return (uint8_t)(q * 13 + j); }

static void fill(uint8_t *p, uint32_t q)
{
	uint32_t n = flen(q);
	for (uint32_t j = 0; j < n; j++)
		p[j] = fbyte(q, j);
	memcpy(p, MARK, sizeof(MARK) - 1); /* each frame starts with the marker */
}

static int on_frame(struct weir_conn *c, uint16_t type, const uint8_t *p, uint32_t len, void *arg)
{
	(void)c;
	struct side *s = arg;
	uint32_t q = s->next++;
	static uint8_t want[80000];
	fill(want, q);
	if (type != (uint16_t)(q & 0xffff) || len != flen(q) || memcmp(p, want, len))
		s->bad++;
	s->frames++;
	return 0;
}
static void on_open(struct weir_conn *c, void *arg) { (void)c; ((struct side *)arg)->opened++; }
static void on_close(struct weir_conn *c, int reason, void *arg)
{
	(void)c;
	struct side *s = arg;
	s->closed++;
	s->last_reason = reason;
	if (reason)
		diag("closed: %s", weir_err_msg());
}
static void on_sent(struct weir_conn *c, uint64_t cookie, int res, void *arg)
{
	(void)c, (void)cookie;
	if (res == 0)
		((struct side *)arg)->sent++;
}

static struct weir_tls_ctx *ctx(const char *dir, const char *name, bool server)
{
	struct weir_cert_paths cp;
	weir_cert_paths(dir, name, &cp);
	struct weir_tls_files f = { cp.ca, cp.crt, cp.key };
	struct weir_tls_ctx *c = weir_tls_ctx_create(&f, server);
	if (!c)
		bail("tls context %s: %s", name, weir_err_msg());
	return c;
}

/* relay: bytes between a and b (sockets), copied into cap (what was seen) */
struct relay {
	int a, b;
	char *seen;
	size_t nseen, capseen;
};

static void relay_step(struct relay *r)
{
	struct pollfd pf[2] = { { r->a, POLLIN, 0 }, { r->b, POLLIN, 0 } };
	if (poll(pf, 2, 0) <= 0)
		return;
	uint8_t buf[65536];
	for (int i = 0; i < 2; i++) {
		if (!(pf[i].revents & (POLLIN | POLLHUP)))
			continue;
		ssize_t n = read(pf[i].fd, buf, sizeof(buf));
		if (n <= 0)
			continue;
		if (r->nseen + (size_t)n > r->capseen) {
			r->capseen = (r->nseen + (size_t)n) * 2;
			r->seen = realloc(r->seen, r->capseen);
		}
		memcpy(r->seen + r->nseen, buf, (size_t)n);
		r->nseen += (size_t)n;
		for (ssize_t off = 0; off < n;) {
			ssize_t w = write(i ? r->a : r->b, buf + off, (size_t)(n - off));
			if (w <= 0)
				break;
			off += w;
		}
	}
}

static int listen_any(uint16_t *port)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t al = sizeof(a);
	bind(fd, (struct sockaddr *)&a, sizeof(a));
	listen(fd, 4);
	getsockname(fd, (struct sockaddr *)&a, &al);
	*port = ntohs(a.sin_port);
	return fd;
}

static int dial(uint16_t port)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port),
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	if (connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0)
		bail("connect");
	return fd;
}

int main(void)
{
	alarm(120);
	char dir[] = "/tmp/weir-t1480-XXXXXX", other[] = "/tmp/weir-t1480o-XXXXXX";
	if (!mkdtemp(dir) || !mkdtemp(other))
		bail("mkdtemp");
	char cdir[300], odir[300];
	snprintf(cdir, sizeof(cdir), "%s/certs", dir);
	snprintf(odir, sizeof(odir), "%s/certs", other);
	const char *ip[] = { "127.0.0.1" };
	if (weir_cert_ca_create(cdir) < 0 || weir_cert_host_create(cdir, "srv", ip, 1) < 0 ||
	    weir_cert_host_create(cdir, "cli", ip, 1) < 0 || weir_cert_ca_create(odir) < 0 ||
	    weir_cert_host_create(odir, "cli", ip, 1) < 0)
		bail("certificates: %s", weir_err_msg());
	struct weir_tls_ctx *sctx = ctx(cdir, "srv", true), *cctx = ctx(cdir, "cli", false),
			    *octx = ctx(odir, "cli", false);

	struct side ss = { 0 }, cs = { 0 };
	struct weir_loop_config scfg = { .tls_server = sctx, .rx_bufs = 16, .recv_size = 8192, .max_frame = 1 << 20,
					 .on_frame = on_frame, .on_open = on_open, .on_close = on_close,
					 .on_sent = on_sent, .arg = &ss };
	struct weir_loop_config ccfg = { .tls_client = cctx, .max_frame = 1 << 20, .on_frame = on_frame,
					 .on_open = on_open, .on_close = on_close, .on_sent = on_sent, .arg = &cs };
	struct weir_loop *sl = weir_loop_create(&scfg), *cl = weir_loop_create(&ccfg);
	if (!sl || !cl)
		bail("loops: %s", weir_err_msg());
	uint16_t sport, rport;
	weir_loop_listen(sl, NULL, 0, &sport);
	/* client -> relay (ours, to see the wire) -> server */
	int rl = listen_any(&rport);
	struct weir_conn *c;
	if (weir_loop_connect(cl, "127.0.0.1", rport, 2000, &c) < 0)
		bail("connect: %s", weir_err_msg());
	static uint8_t buf[NFRAMES][80000];
	int queued = 0;
	for (uint32_t q = 0; q < NFRAMES; q++) { /* before the handshake: they wait for it */
		fill(buf[q], q);
		queued += (q % 2 ? weir_conn_send_ext(c, (uint16_t)q, buf[q], 64, buf[q] + 64, flen(q) - 64, q)
				 : weir_conn_send(c, (uint16_t)q, buf[q], flen(q))) == 0;
	}
	is_int(queued, NFRAMES, "%d frames queued before the handshake (half external)", NFRAMES);
	weir_loop_run_once(cl, 0); /* the connect */
	struct relay r = { .a = accept(rl, NULL, NULL), .b = dial(sport) };
	for (int spins = 0; ss.frames < NFRAMES && ss.closed == 0 && cs.closed == 0 && spins < 2000000; spins++) {
		weir_loop_run_once(cl, 0);
		relay_step(&r);
		weir_loop_run_once(sl, 0);
	}
	is_int(ss.frames, NFRAMES, "every frame arrived through TLS");
	is_int(ss.bad, 0, "in order, byte-exact");
	is_int(cs.sent, NFRAMES / 2, "every external send got its on_sent");
	bool leak = false;
	for (size_t i = 0; i + sizeof(MARK) - 1 <= r.nseen; i++)
		if (!memcmp(r.seen + i, MARK, sizeof(MARK) - 1))
			leak = true;
	ok(!leak && r.nseen > (size_t)NFRAMES * 30000, "%zu bytes on the wire, no plaintext marker among them", r.nseen);
	weir_conn_close(c, 0);
	close(r.a);
	close(r.b);
	for (int i = 0; i < 1000 && ss.closed == 0; i++)
		weir_loop_run_once(sl, 10);

	/* a client of another CA, then a plain one: refused; the server goes on */
	struct side os = { 0 };
	struct weir_loop_config ocfg = { .tls_client = octx, .on_frame = on_frame, .on_open = on_open,
					 .on_close = on_close, .arg = &os };
	struct weir_loop *ol = weir_loop_create(&ocfg);
	struct weir_conn *oc;
	weir_loop_connect(ol, "127.0.0.1", sport, 2000, &oc);
	weir_conn_send(oc, 1, "x", 1);
	int closed0 = ss.closed;
	for (int i = 0; i < 100000 && (os.closed == 0 || ss.closed == closed0); i++) {
		weir_loop_run_once(ol, 0);
		weir_loop_run_once(sl, 0);
	}
	ok(ss.closed > closed0 && os.closed == 1 && os.frames == 0 && ss.frames == NFRAMES,
	   "a client of another CA is refused (no frame delivered)");
	int pfd = dial(sport);
	if (write(pfd, "\x05\x00\x00\x00\x01\x00\x01\x00hello", 13) != 13)
		bail("write");
	closed0 = ss.closed;
	for (int i = 0; i < 100000 && ss.closed == closed0; i++)
		weir_loop_run_once(sl, 0);
	ok(ss.closed > closed0 && ss.frames == NFRAMES, "a plain client is refused (no frame delivered)");
	close(pfd);
	struct weir_loop_stats st;
	weir_loop_stats(sl, &st);
	is_int(st.cq_overflow, 0, "CQ overflow 0");
	weir_loop_destroy(ol);
	weir_loop_destroy(cl);
	weir_loop_destroy(sl);
	weir_tls_ctx_destroy(sctx);
	weir_tls_ctx_destroy(cctx);
	weir_tls_ctx_destroy(octx);
	free(r.seen);
	close(rl);
	char cmd[700];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s' '%s'", dir, other);
	if (system(cmd) != 0)
		diag("could not remove %s", dir);
	done_testing();
}
