/*
 * t1440-tls: TLS sessions (net/tls.h) over certificates made by the calls
 * `weir cert` makes them with (net/cert.h), in a mkdtemp folder. Two
 * sessions pump bytes to each other in memory, through wires that split
 * the ciphertext at random bytes: the handshake completes and each side
 * names the other; 1 MiB of varied-size writes arrives byte-exact both
 * ways, and the ciphertext never holds the plaintext's marker; nothing
 * taken out or read, write and feed_in stop at their rings; a
 * close_notify is an orderly end. Refused: a peer certificate of another
 * CA (either side), a client without a certificate (a plain OpenSSL
 * client, which with our host certificate is accepted), garbage (fails at
 * once, having taken at most one ring), a forged record after the
 * handshake, a handshake that goes on and on (fails at
 * WEIR_TLS_HANDSHAKE_MAX), a truncated handshake (never done); contexts
 * whose files do not go together, are missing, or whose key others may
 * read or is a link; bad host names and addresses. Seeded.
 */
#include "base/err.h"
#include "net/cert.h"
#include "net/tls.h"
#include "tap.h"

#include <errno.h>
#include <ftw.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define STREAM (1u << 20)
#define WIRE_MAX (256u << 10)
static const char MARKER[] = "weir-plaintext-marker-7c1e";

static uint64_t rnd;
static char root[64], pki[128], other[128];

static size_t pick(size_t lo, size_t hi) /* in [lo, hi] */
{
	return lo + (size_t)(tap_rand(&rnd) % (hi - lo + 1));
}

/* One direction of a connection: the plaintext a side sends and the
 * ciphertext on its way (the socket), and what the other side received. */
struct dir {
	uint8_t *src;			/* plaintext to send */
	size_t src_len, src_pos;
	uint8_t *got;			/* plaintext received at the other end */
	size_t got_len;
	uint8_t wire[WIRE_MAX];		/* ciphertext sent, not yet fed in */
	size_t wire_len;
	uint8_t *log;			/* every ciphertext byte sent */
	size_t log_len, log_cap;
	size_t delivered, limit;	/* ciphertext bytes fed in; at most limit */
};

static void dir_init(struct dir *d, size_t n, size_t limit)
{
	memset(d, 0, sizeof(*d));
	d->limit = limit;
	d->src_len = n;
	if (n) {
		d->src = malloc(n);
		d->got = malloc(n);
		if (!d->src || !d->got)
			bail("out of memory");
		/* random bytes, the marker at every 4 KiB */
		for (size_t i = 0; i < n; i++)
			d->src[i] = (uint8_t)tap_rand(&rnd);
		for (size_t i = 0; i + sizeof(MARKER) <= n; i += 4096)
			memcpy(d->src + i, MARKER, sizeof(MARKER) - 1);
	}
}

static void dir_release(struct dir *d)
{
	free(d->src);
	free(d->got);
	free(d->log);
}

static void log_add(struct dir *d, const uint8_t *p, size_t n)
{
	if (d->log_len + n > d->log_cap) {
		d->log_cap = (d->log_len + n) * 2;
		if (!(d->log = realloc(d->log, d->log_cap)))
			bail("out of memory");
	}
	memcpy(d->log + d->log_len, p, n);
	d->log_len += n;
}

/* b reads what is whole into d->got. 0, or -1 when the read failed or
 * gave more than was sent. */
static int drain(struct weir_tls *b, struct dir *d)
{
	for (;;) {
		uint8_t buf[20000];
		ssize_t r = weir_tls_read(b, buf, pick(1, sizeof(buf)));
		if (r <= 0)
			return r < 0 ? -1 : 0;
		if (d->got_len + (size_t)r > d->src_len)
			return -1;
		memcpy(d->got + d->got_len, buf, (size_t)r);
		d->got_len += (size_t)r;
	}
}

/* One round of direction d from session a to session b: a writes a chunk
 * of its stream, its ciphertext goes on the wire (by take_out or by
 * peek and consume), b is fed pieces of the wire and reads after each.
 * The bytes moved; -1 when a call failed. */
static long step(struct weir_tls *a, struct weir_tls *b, struct dir *d)
{
	long moved = 0;
	if (d->src_pos < d->src_len && weir_tls_handshake_done(a)) {
		size_t k = pick(1, 70000);
		if (k > d->src_len - d->src_pos)
			k = d->src_len - d->src_pos;
		ssize_t w = weir_tls_write(a, d->src + d->src_pos, k);
		if (w < 0)
			return -1;
		d->src_pos += (size_t)w;
		moved += w;
	}
	for (;;) { /* a's ciphertext onto the wire, while it has room */
		size_t room = WIRE_MAX - d->wire_len, n;
		if (!room)
			break;
		if (tap_rand(&rnd) & 1) {
			n = weir_tls_take_out(a, d->wire + d->wire_len, pick(1, room));
		} else {
			const uint8_t *p;
			n = weir_tls_out_peek(a, &p);
			if (n > room)
				n = room;
			if (!n)
				break;
			n = pick(1, n); /* a partial send */
			memcpy(d->wire + d->wire_len, p, n);
			weir_tls_out_consume(a, n);
		}
		if (!n)
			break;
		log_add(d, d->wire + d->wire_len, n);
		d->wire_len += n;
		moved += (long)n;
	}
	size_t avail = d->wire_len;
	if (d->limit && avail > d->limit - d->delivered)
		avail = d->limit - d->delivered;
	while (avail) { /* feed b pieces split at any byte */
		size_t k = pick(1, avail), before = d->got_len;
		ssize_t t = weir_tls_feed_in(b, d->wire, k);
		if (t < 0 || drain(b, d) < 0)
			return -1;
		memmove(d->wire, d->wire + t, d->wire_len - (size_t)t);
		d->wire_len -= (size_t)t;
		d->delivered += (size_t)t;
		avail -= (size_t)t;
		moved += t + (long)(d->got_len - before);
		if (t == 0)
			break;
	}
	return moved;
}

/* Pump both directions until nothing moves (or a call fails: -1). The
 * rounds it took. */
static int pump(struct weir_tls *c, struct weir_tls *s, struct dir *cs, struct dir *sc)
{
	int idle = 0, rounds = 0;
	while (idle < 3) {
		long m1 = step(c, s, cs), m2 = step(s, c, sc);
		/* what waited for room in the send rings (tls.h: read again) */
		if (m1 < 0 || m2 < 0 || drain(s, cs) < 0 || drain(c, sc) < 0)
			return -1;
		idle = m1 + m2 ? 0 : idle + 1;
		if (++rounds > 100000)
			bail("pump: no end after %d rounds", rounds);
	}
	return rounds;
}

static bool has_marker(const uint8_t *p, size_t n)
{
	return memmem(p, n, MARKER, sizeof(MARKER) - 1) != NULL;
}

static struct weir_tls_ctx *ctx_for(const char *dir, const char *host, bool server)
{
	struct weir_cert_paths p;
	if (weir_cert_paths(dir, host, &p) < 0)
		bail("%s", weir_err_msg());
	struct weir_tls_files f = { p.ca, p.crt, p.key };
	struct weir_tls_ctx *ctx = weir_tls_ctx_create(&f, server);
	if (!ctx)
		bail("context of %s/%s: %s", dir, host, weir_err_msg());
	return ctx;
}

static void make_certs(void)
{
	static const char *const ips_a[] = { "127.0.0.1", "10.0.0.1" }, *const ips_b[] = { "::1" };
	struct stat st;
	int rc = weir_cert_ca_create(pki);
	ok(rc == 0, "cluster CA made (%s)", rc ? weir_err_msg() : "ok");
	ok(stat(pki, &st) == 0 && (st.st_mode & 0777) == 0700, "its folder is 0700");
	rc = weir_cert_host_create(pki, "host-a", ips_a, 2);
	ok(rc == 0, "host-a's certificate made (%s)", rc ? weir_err_msg() : "ok");
	rc = weir_cert_host_create(pki, "host-b", ips_b, 1);
	ok(rc == 0, "host-b's certificate made (%s)", rc ? weir_err_msg() : "ok");
	char p[256];
	snprintf(p, sizeof(p), "%s/host-a.key", pki);
	ok(stat(p, &st) == 0 && (st.st_mode & 0777) == 0600, "a key is 0600");
	rc = weir_cert_ca_create(pki);
	ok(rc == -EEXIST && strstr(weir_err_msg(), "exists"), "a second CA in the folder is refused (%s)",
	   weir_err_msg());
	rc = weir_cert_host_create(pki, "host-a", NULL, 0);
	ok(rc == -EEXIST && strstr(weir_err_msg(), "host-a"), "host-a again is refused (%s)", weir_err_msg());
	/* another cluster: its CA, and a host named as one of ours */
	if (weir_cert_ca_create(other) < 0 || weir_cert_host_create(other, "host-x", NULL, 0) < 0 ||
	    weir_cert_host_create(other, "host-a", NULL, 0) < 0)
		bail("the other cluster's certificates: %s", weir_err_msg());
}

static void good_session(void)
{
	struct weir_tls_ctx *sctx = ctx_for(pki, "host-a", true), *cctx = ctx_for(pki, "host-b", false);
	struct weir_tls *s = weir_tls_create(sctx), *c = weir_tls_create(cctx);
	if (!s || !c)
		bail("session: %s", weir_err_msg());
	static struct dir cs, sc;
	uint8_t buf[64];

	ok(weir_tls_write(c, "x", 1) == 0 && weir_tls_read(s, buf, sizeof(buf)) == 0 &&
	   !weir_tls_handshake_done(c) && !weir_tls_peer_name(c),
	   "before the handshake: write takes nothing, read gives nothing, no peer name");

	/* the handshake alone */
	dir_init(&cs, 0, 0);
	dir_init(&sc, 0, 0);
	int rounds = pump(c, s, &cs, &sc);
	ok(rounds > 0 && weir_tls_handshake_done(c) && weir_tls_handshake_done(s),
	   "handshake done on both sides (%d rounds; %s%s)", rounds, weir_tls_error(c), weir_tls_error(s));
	is_string(weir_tls_peer_name(s), "host-b", "the server's peer is host-b");
	is_string(weir_tls_peer_name(c), "host-a", "the client's peer is host-a");
	diag("handshake: %zu bytes client to server, %zu back", cs.log_len, sc.log_len);
	dir_release(&cs);
	dir_release(&sc);

	/* 1 MiB each way, writes of 1 to 70000 bytes, the wire split at any byte */
	dir_init(&cs, STREAM, 0);
	dir_init(&sc, STREAM, 0);
	rounds = pump(c, s, &cs, &sc);
	ok(rounds > 0, "1 MiB each way: pumped (%d rounds; %s%s)", rounds, weir_tls_error(c), weir_tls_error(s));
	ok(cs.got_len == STREAM && !memcmp(cs.got, cs.src, STREAM), "client to server: all %u bytes, exact (%zu)",
	   STREAM, cs.got_len);
	ok(sc.got_len == STREAM && !memcmp(sc.got, sc.src, STREAM), "server to client: all %u bytes, exact (%zu)",
	   STREAM, sc.got_len);
	ok(has_marker(cs.src, STREAM) && !has_marker(cs.log, cs.log_len) && !has_marker(sc.log, sc.log_len),
	   "the plaintext holds the marker, the ciphertext (%zu and %zu bytes) does not", cs.log_len, sc.log_len);
	ok(cs.log_len > STREAM && cs.log_len < STREAM + STREAM / 50, "ciphertext overhead under 2%% (%zu bytes)",
	   cs.log_len - STREAM);

	/* bounded: with nothing taken out, write stops when the send ring is
	 * full; with nothing read, feed_in stops when the receive ring is */
	static uint8_t big[STREAM], back[STREAM], ct[WEIR_TLS_OUT_MAX + 1];
	for (size_t i = 0; i < STREAM; i++)
		big[i] = (uint8_t)tap_rand(&rnd);
	size_t took = 0;
	ssize_t w;
	while ((w = weir_tls_write(c, big + took, STREAM - took)) > 0)
		took += (size_t)w;
	ok(w == 0 && took > WEIR_TLS_OUT_MAX / 2 && took <= WEIR_TLS_OUT_MAX,
	   "nothing taken out: write takes %zu bytes, then none", took);
	size_t n = weir_tls_take_out(c, ct, sizeof(ct));
	ok(n > took && n <= WEIR_TLS_OUT_MAX, "take_out empties the ring in one call (%zu bytes)", n);
	ssize_t t = weir_tls_feed_in(s, ct, n);
	ok(t > 0 && (size_t)t <= WEIR_TLS_IN_MAX && (size_t)t < n, "nothing read: feed_in takes %zd of %zu bytes", t, n);
	size_t fed = (size_t)t, got = 0;
	for (int i = 0; i < 1000 && got < took; i++) {
		ssize_t r = weir_tls_read(s, back + got, STREAM - got);
		if (r < 0)
			break;
		got += (size_t)r;
		if (fed < n && (t = weir_tls_feed_in(s, ct + fed, n - fed)) > 0)
			fed += (size_t)t;
	}
	ok(got == took && !memcmp(back, big, took), "read and fed the rest: %zu bytes, exact", got);

	/* an orderly end */
	ok(weir_tls_shutdown(c) == 0, "client shuts down");
	ok(weir_tls_write(c, "x", 1) == -EPIPE, "and writes no more");
	dir_release(&cs);
	dir_release(&sc);
	dir_init(&cs, 0, 0);
	dir_init(&sc, 0, 0);
	pump(c, s, &cs, &sc);
	ok(weir_tls_peer_closed(s) && !weir_tls_failed(s), "the server sees close_notify: an orderly end");
	ok(weir_tls_read(s, buf, sizeof(buf)) == 0, "and reads nothing more");
	dir_release(&cs);
	dir_release(&sc);

	weir_tls_destroy(c);
	weir_tls_destroy(s);
	weir_tls_ctx_destroy(cctx);
	weir_tls_ctx_destroy(sctx);
}

/* A client of another cluster: each side refuses the other's certificate;
 * the one that checks first says why, the other hears the alert. */
static void other_ca(void)
{
	struct weir_tls_ctx *sctx = ctx_for(pki, "host-a", true), *cctx = ctx_for(other, "host-x", false);
	struct weir_tls *s = weir_tls_create(sctx), *c = weir_tls_create(cctx);
	static struct dir cs, sc;
	dir_init(&cs, 0, 0);
	dir_init(&sc, 0, 0);
	ok(pump(c, s, &cs, &sc) < 0, "a client of another CA: the pump fails");
	ok(weir_tls_failed(c) && strstr(weir_tls_error(c), "peer certificate 'host-a' not signed by the cluster CA"),
	   "the client refuses the server's certificate (%s)", weir_tls_error(c));
	ok(!weir_tls_handshake_done(s) && !weir_tls_peer_name(s), "the server never accepts it (%s)",
	   weir_tls_error(s));
	dir_release(&cs);
	dir_release(&sc);
	weir_tls_destroy(c);
	weir_tls_destroy(s);
	weir_tls_ctx_destroy(cctx);
	weir_tls_ctx_destroy(sctx);
}

/* A plain OpenSSL client that trusts our CA and shows the certificate
 * given (or none) against a weir server: the server's error. */
static const char *plain_client(const char *cert, const char *key, bool *refused)
{
	static char why[WEIR_ERR_MAX];
	struct weir_cert_paths p;
	weir_cert_paths(pki, "host-a", &p);
	struct weir_tls_ctx *sctx = ctx_for(pki, "host-a", true);
	struct weir_tls *s = weir_tls_create(sctx);
	SSL_CTX *cc = SSL_CTX_new(TLS_client_method());
	if (!cc || SSL_CTX_load_verify_locations(cc, p.ca, NULL) != 1 ||
	    (cert && (SSL_CTX_use_certificate_file(cc, cert, SSL_FILETYPE_PEM) != 1 ||
		      SSL_CTX_use_PrivateKey_file(cc, key, SSL_FILETYPE_PEM) != 1)))
		bail("plain client: OpenSSL setup failed");
	SSL_CTX_set_verify(cc, SSL_VERIFY_PEER, NULL);
	SSL *c = SSL_new(cc);
	BIO *rb = BIO_new(BIO_s_mem()), *wb = BIO_new(BIO_s_mem());
	SSL_set_bio(c, rb, wb);
	SSL_set_connect_state(c);
	uint8_t buf[WEIR_TLS_OUT_MAX];
	for (int i = 0; i < 20 && !weir_tls_failed(s); i++) {
		SSL_do_handshake(c);
		char data[512];
		SSL_read(c, data, sizeof(data)); /* takes an alert, if one came */
		char *q;
		long n = BIO_get_mem_data(wb, &q);
		if (n > 0) {
			weir_tls_feed_in(s, (uint8_t *)q, (size_t)n);
			(void)BIO_reset(wb);
		}
		while (weir_tls_read(s, buf, sizeof(buf)) > 0)
			;
		size_t k = weir_tls_take_out(s, buf, sizeof(buf));
		if (k)
			BIO_write(rb, buf, (int)k);
	}
	snprintf(why, sizeof(why), "%s", weir_tls_error(s));
	*refused = weir_tls_failed(s) && !weir_tls_peer_name(s);
	ERR_clear_error();
	SSL_free(c);
	SSL_CTX_free(cc);
	weir_tls_destroy(s);
	weir_tls_ctx_destroy(sctx);
	return why;
}

static void plain_clients(void)
{
	bool refused;
	const char *why = plain_client(NULL, NULL, &refused);
	ok(refused && !strcmp(why, "no peer certificate"), "a client without a certificate is refused (%s)", why);
	struct weir_cert_paths x;
	weir_cert_paths(other, "host-x", &x);
	why = plain_client(x.crt, x.key, &refused);
	ok(refused && strstr(why, "peer certificate 'host-x' not signed by the cluster CA"),
	   "a client trusting our CA but showing another CA's certificate is refused (%s)", why);
	/* another CA's certificate with one of our names is no better */
	weir_cert_paths(other, "host-a", &x);
	why = plain_client(x.crt, x.key, &refused);
	ok(refused && strstr(why, "peer certificate 'host-a' not signed by the cluster CA"),
	   "and so is one named as our host (%s)", why);
	weir_cert_paths(pki, "host-b", &x);
	why = plain_client(x.crt, x.key, &refused);
	ok(!refused && !*why, "the same plain client with our host-b's certificate is accepted (%s)", why);
}

/* Garbage in: fails at its first record, having taken at most a ring. */
static void garbage(void)
{
	struct weir_tls_ctx *sctx = ctx_for(pki, "host-a", true), *cctx = ctx_for(pki, "host-b", false);
	for (int side = 0; side < 2; side++) {
		struct weir_tls *s = weir_tls_create(side ? cctx : sctx);
		uint8_t junk[4096];
		size_t taken = 0;
		ssize_t t = 0;
		int chunks = 0;
		for (; chunks < 256 && t >= 0; chunks++) { /* 1 MiB offered */
			for (size_t k = 0; k < sizeof(junk); k++)
				junk[k] = (uint8_t)tap_rand(&rnd);
			t = weir_tls_feed_in(s, junk, sizeof(junk));
			if (t > 0)
				taken += (size_t)t;
		}
		ok(t == -EPROTO && weir_tls_failed(s) && taken <= WEIR_TLS_IN_MAX,
		   "%s fed garbage: fails at 4 KiB chunk %d of 256, %zu bytes taken before (%s)",
		   side ? "a client" : "a server", chunks, taken, weir_tls_error(s));
		uint8_t buf[64];
		ok(weir_tls_read(s, buf, sizeof(buf)) == -EPROTO && weir_tls_write(s, "x", 1) == -EPROTO &&
		   weir_tls_feed_in(s, buf, 1) == -EPROTO && !strcmp(weir_err_msg(), weir_tls_error(s)),
		   "the failure is sticky, and each call's trail says why");
		weir_tls_destroy(s);
	}
	/* after a handshake: records that look right and decrypt to nothing */
	struct weir_tls *s = weir_tls_create(sctx), *c = weir_tls_create(cctx);
	static struct dir cs, sc;
	dir_init(&cs, 0, 0);
	dir_init(&sc, 0, 0);
	pump(c, s, &cs, &sc);
	uint8_t rec[5 + 1000];
	rec[0] = 23, rec[1] = 3, rec[2] = 3, rec[3] = 1000 >> 8, rec[4] = 1000 & 0xff; /* application data */
	for (size_t k = 5; k < sizeof(rec); k++)
		rec[k] = (uint8_t)tap_rand(&rnd);
	ssize_t t = weir_tls_feed_in(s, rec, sizeof(rec));
	uint8_t buf[2000];
	ok(weir_tls_handshake_done(c) && t == (ssize_t)sizeof(rec) && weir_tls_read(s, buf, sizeof(buf)) == -EPROTO &&
		   weir_tls_failed(s),
	   "a forged record after the handshake fails the session (%s)", weir_tls_error(s));
	dir_release(&cs);
	dir_release(&sc);
	weir_tls_destroy(c);
	weir_tls_destroy(s);
	weir_tls_ctx_destroy(cctx);
	weir_tls_ctx_destroy(sctx);
}

/* A ClientHello that announces 100000 bytes (OpenSSL would take up to
 * 128 KiB), sent in full records for ever: the session stops it. */
static void endless_handshake(void)
{
	struct weir_tls_ctx *sctx = ctx_for(pki, "host-a", true);
	struct weir_tls *s = weir_tls_create(sctx);
	static uint8_t rec[5 + 16384];
	size_t taken = 0;
	ssize_t t = 0;
	uint8_t buf[256];
	for (int i = 0; i < 64 && t >= 0; i++) {
		rec[0] = 22, rec[1] = 3, rec[2] = 1, rec[3] = 0x40, rec[4] = 0; /* handshake, 16384 bytes */
		memset(rec + 5, 0x41, 16384);
		if (i == 0)
			rec[5] = 1, rec[6] = 0x01, rec[7] = 0x86, rec[8] = 0xa0; /* ClientHello, 100000 bytes */
		for (size_t off = 0, stuck = 0; off < sizeof(rec) && t >= 0 && stuck < 3; off += (size_t)t) {
			t = weir_tls_feed_in(s, rec + off, sizeof(rec) - off);
			if (t >= 0 && weir_tls_read(s, buf, sizeof(buf)) < 0)
				t = -EPROTO;
			if (t > 0)
				taken += (size_t)t;
			stuck = t == 0 ? stuck + 1 : 0;
		}
	}
	ok(t == -EPROTO && taken <= WEIR_TLS_HANDSHAKE_MAX && strstr(weir_tls_error(s), "handshake longer than"),
	   "an endless handshake fails once it used %zu bytes (%s)", taken, weir_tls_error(s));
	weir_tls_destroy(s);
	weir_tls_ctx_destroy(sctx);
}

/* The server's flight cut short: the client waits, never done, and the
 * server never hears its Finished. */
static void truncated(void)
{
	struct weir_tls_ctx *sctx = ctx_for(pki, "host-a", true), *cctx = ctx_for(pki, "host-b", false);
	static struct dir cs, sc, cs2, sc2;
	/* how long the full flight is */
	struct weir_tls *s = weir_tls_create(sctx), *c = weir_tls_create(cctx);
	dir_init(&cs, 0, 0);
	dir_init(&sc, 0, 0);
	pump(c, s, &cs, &sc);
	size_t flight = sc.log_len;
	weir_tls_destroy(c);
	weir_tls_destroy(s);
	dir_release(&cs);
	dir_release(&sc);
	int never = 0, cuts = 0;
	for (size_t cut = 1; cut < flight; cut += flight / 23 + 1, cuts++) {
		s = weir_tls_create(sctx);
		c = weir_tls_create(cctx);
		dir_init(&cs2, 0, 0);
		dir_init(&sc2, 0, cut);
		pump(c, s, &cs2, &sc2);
		never += !weir_tls_handshake_done(c) && !weir_tls_handshake_done(s) && !weir_tls_failed(c) &&
			 !weir_tls_failed(s);
		weir_tls_destroy(c);
		weir_tls_destroy(s);
		dir_release(&cs2);
		dir_release(&sc2);
	}
	ok(cuts > 10 && never == cuts, "the server's flight (%zu bytes) cut at %d places: never done, never failed (%d)",
	   flight, cuts, never);
	weir_tls_ctx_destroy(cctx);
	weir_tls_ctx_destroy(sctx);
}

static void bad_contexts(void)
{
	struct weir_cert_paths a, b, x;
	weir_cert_paths(pki, "host-a", &a);
	weir_cert_paths(pki, "host-b", &b);
	weir_cert_paths(other, "host-x", &x);
	struct weir_tls_files f = { a.ca, x.crt, x.key };
	ok(!weir_tls_ctx_create(&f, true) && strstr(weir_err_msg(), "does not verify against CA certificate"),
	   "a certificate of another CA is refused at start (%s)", weir_err_msg());
	f = (struct weir_tls_files){ a.ca, a.crt, b.key };
	ok(!weir_tls_ctx_create(&f, false) && strstr(weir_err_msg(), b.key) && strstr(weir_err_msg(), "does not go with"),
	   "a key of another certificate is refused (%s)", weir_err_msg());
	f = (struct weir_tls_files){ a.ca, a.ca, a.key };
	ok(!weir_tls_ctx_create(&f, false), "the CA's certificate as the host's is refused (%s)", weir_err_msg());
	f = (struct weir_tls_files){ a.crt, a.crt, a.key };
	ok(!weir_tls_ctx_create(&f, false) && strstr(weir_err_msg(), "is not a CA's"),
	   "a host certificate as the CA is refused (%s)", weir_err_msg());
	char missing[256];
	snprintf(missing, sizeof(missing), "%s/nope.crt", pki);
	f = (struct weir_tls_files){ missing, a.crt, a.key };
	ok(!weir_tls_ctx_create(&f, true) && strstr(weir_err_msg(), missing) &&
		   strstr(weir_err_msg(), "No such file"),
	   "a missing file is named (%s)", weir_err_msg());
	f = (struct weir_tls_files){ a.ca, a.crt, a.crt };
	ok(!weir_tls_ctx_create(&f, true) && strstr(weir_err_msg(), "no unencrypted PEM private key"),
	   "a certificate as the key is refused (%s)", weir_err_msg());
	chmod(a.key, 0640);
	f = (struct weir_tls_files){ a.ca, a.crt, a.key };
	ok(!weir_tls_ctx_create(&f, true) && strstr(weir_err_msg(), "chmod 600"),
	   "a key group may read is refused (%s)", weir_err_msg());
	chmod(a.key, 0600);
	char link[256];
	snprintf(link, sizeof(link), "%s/link.key", root);
	if (symlink(a.key, link) < 0)
		bail("symlink: %m");
	f = (struct weir_tls_files){ a.ca, a.crt, link };
	ok(!weir_tls_ctx_create(&f, true) && strstr(weir_err_msg(), "symbolic link"), "a key through a link is refused (%s)",
	   weir_err_msg());
}

static void names(void)
{
	char longest[WEIR_CERT_NAME_MAX + 2];
	memset(longest, 'x', sizeof(longest) - 1);
	longest[sizeof(longest) - 1] = '\0';
	const char *const bad[] = { "", "-a", ".a", "a..b", "a/b", "a b", "ca", "a.", longest };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ok(weir_cert_name_check(bad[i]) == -EINVAL, "host name '%.20s' refused (%s)", bad[i], weir_err_msg());
	longest[WEIR_CERT_NAME_MAX] = '\0';
	ok(weir_cert_name_check("tm-1.example.org") == 0 && weir_cert_name_check(longest) == 0,
	   "a dotted name is fine, and so is one of %d characters", WEIR_CERT_NAME_MAX);
	ok(weir_cert_ip_check("fe80::1") == 0 && weir_cert_ip_check("192.168.1.300") == -EINVAL,
	   "addresses are IPv4 or IPv6 literals (%s)", weir_err_msg());
	static const char *const ips[] = { "10.0.0.1", "example.org" };
	ok(weir_cert_host_create(pki, "host-c", ips, 2) == -EINVAL && strstr(weir_err_msg(), "'example.org'"),
	   "a host certificate with a bad address is refused (%s)", weir_err_msg());
	char p[256];
	snprintf(p, sizeof(p), "%s/host-c.key", pki);
	ok(access(p, F_OK) < 0, "and leaves no file");
}

static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *f)
{
	return remove(p);
}

int main(void)
{
	alarm(240);
	rnd = tap_seed();
	snprintf(root, sizeof(root), "/tmp/weir-t1440.XXXXXX");
	if (!mkdtemp(root))
		bail("mkdtemp: %m");
	snprintf(pki, sizeof(pki), "%s/pki", root);
	snprintf(other, sizeof(other), "%s/other", root);

	make_certs();
	good_session();
	other_ca();
	plain_clients();
	garbage();
	endless_handshake();
	truncated();
	bad_contexts();
	names();
	bool ktls = weir_ktls_available();
	FILE *f = fopen("/proc/sys/net/ipv4/tcp_available_ulp", "r");
	char ulp[256] = "";
	if (f) {
		if (!fgets(ulp, sizeof(ulp), f))
			ulp[0] = '\0';
		fclose(f);
	}
	ok(ktls == (strstr(ulp, "tls") != NULL), "kernel TLS probe: %s; the kernel's ULPs now: %s", ktls ? "yes" : "no",
	   ulp[0] ? strtok(ulp, "\n") : "(none)");

	nftw(root, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	done_testing();
}
