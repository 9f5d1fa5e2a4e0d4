/*
 * net/tls.c - see tls.h.
 *
 * A session is an SSL object over a BIO pair: OpenSSL reads and writes its
 * end, we feed and drain the other. A pair's two rings are fixed in size,
 * so memory is bounded by construction: a write into a full ring takes
 * nothing. The send ring is also what out_peek shows in place, since a
 * pair's writer only ever appends.
 *
 * weir_tls_write calls SSL_write one record at a time, and only while the
 * send ring has room for a whole record (RECORD_ROOM), so OpenSSL never
 * stops in the middle of one. If it ever does (WANT_WRITE), TLS wants the
 * retry to pass the same bytes; we copy the chunk into `pend`, count it as
 * taken, and retry from there when room appears (OpenSSL accepts the moved
 * buffer: SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER). No test reaches this: it
 * is the fallback should OpenSSL ever write more than RECORD_ROOM.
 */
#include "net/tls.h"

#include "base/err.h"
#include "net/cert.h"

#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#ifndef TCP_ULP
#define TCP_ULP 31
#endif

/* A whole ciphertext record (TLS 1.3: 2^14 + 256 bytes and a 5-byte
 * header), and room beside it for what OpenSSL may send first (a
 * KeyUpdate it owes). */
#define RECORD_ROOM (WEIR_TLS_RECORD_MAX + 256 + 5 + 1024)
/* The largest certificate message we accept: ours are under 1 KiB. */
#define CERT_LIST_MAX (16u << 10)

struct weir_tls_ctx {
	SSL_CTX *ssl;
};

struct weir_tls {
	SSL *ssl;
	BIO *net;			/* our end of the pair: feed in, take out */
	size_t hs_in;			/* bytes fed while the handshake ran */
	bool done;			/* handshake ended, peer verified */
	bool failed;
	bool peer_closed;		/* close_notify received */
	bool shut;			/* close_notify queued */
	int verify_err;			/* the first X509_V_ERR_* verification gave */
	char verify_cn[WEIR_TLS_NAME_MAX];	/* the certificate it was about */
	char peer[WEIR_TLS_NAME_MAX];
	char why[WEIR_ERR_MAX];
	uint8_t *pend;			/* a record OpenSSL began and must finish */
	size_t pend_len;		/* (malloc'd when it happens) */
};

/* The common name of x into buf ("" when it has none that is printable
 * text). */
static void cn_of(X509 *x, char *buf, size_t n)
{
	buf[0] = '\0';
	X509_NAME *name = x ? X509_get_subject_name(x) : NULL;
	int i = name ? X509_NAME_get_index_by_NID(name, NID_commonName, -1) : -1;
	if (i < 0)
		return;
	unsigned char *utf8 = NULL;
	int len = ASN1_STRING_to_UTF8(&utf8, X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, i)));
	if (len > 0 && (size_t)len < n) {
		bool text = true;
		for (int k = 0; k < len; k++)
			text &= utf8[k] >= 0x20 && utf8[k] != 0x7f; /* no NUL, no control bytes */
		if (text) {
			memcpy(buf, utf8, (size_t)len);
			buf[len] = '\0';
		}
	}
	OPENSSL_free(utf8);
	ERR_clear_error();
}

/* Remembers why the peer's certificate was refused, and which it was, for
 * the session's message; OpenSSL's own reason is only "certificate verify
 * failed". */
static int verify_cb(int ok, X509_STORE_CTX *xs)
{
	if (ok)
		return 1;
	SSL *ssl = X509_STORE_CTX_get_ex_data(xs, SSL_get_ex_data_X509_STORE_CTX_idx());
	struct weir_tls *s = ssl ? SSL_get_app_data(ssl) : NULL;
	if (s && !s->verify_err) {
		s->verify_err = X509_STORE_CTX_get_error(xs);
		cn_of(X509_STORE_CTX_get0_cert(xs), s->verify_cn, sizeof(s->verify_cn));
	}
	return 0;
}

void weir_tls_ctx_destroy(struct weir_tls_ctx *ctx)
{
	if (!ctx)
		return;
	SSL_CTX_free(ctx->ssl);
	free(ctx);
}

struct weir_tls_ctx *weir_tls_ctx_create(const struct weir_tls_files *f, bool server)
{
	char why[256];
	X509 *ca = NULL, *cert = NULL;
	EVP_PKEY *key = NULL;
	X509_STORE_CTX *xs = NULL;
	struct weir_tls_ctx *ctx = calloc(1, sizeof(*ctx));
	if (!ctx) {
		weir_err_set("TLS context: out of memory");
		return NULL;
	}
	ERR_clear_error();
	SSL_CTX *c = ctx->ssl = SSL_CTX_new(server ? TLS_server_method() : TLS_client_method());
	X509_STORE *store = X509_STORE_new();
	if (!c || !store) {
		X509_STORE_free(store);
		weir_err_set("TLS context: %s", weir_cert_ssl_error(why, sizeof(why)));
		goto fail;
	}
	/* trust the cluster CA and nothing else: a store of our own, never
	 * SSL_CTX_set_default_verify_paths */
	SSL_CTX_set_cert_store(c, store);
	if (weir_cert_load(f->ca, "CA certificate", &ca) < 0 || weir_cert_load(f->cert, "certificate", &cert) < 0 ||
	    weir_cert_key_load(f->key, "key", &key) < 0)
		goto fail;
	if (X509_check_ca(ca) == 0) {
		weir_err_set("CA certificate '%s' is not a CA's", f->ca);
		goto fail;
	}
	if (!X509_STORE_add_cert(store, ca) || !X509_STORE_set_flags(store, X509_V_FLAG_X509_STRICT)) {
		weir_err_set("CA certificate '%s': %s", f->ca, weir_cert_ssl_error(why, sizeof(why)));
		goto fail;
	}
	if (SSL_CTX_use_certificate(c, cert) != 1) {
		weir_err_set("certificate '%s': %s", f->cert, weir_cert_ssl_error(why, sizeof(why)));
		goto fail;
	}
	if (SSL_CTX_use_PrivateKey(c, key) != 1 || SSL_CTX_check_private_key(c) != 1) {
		weir_err_set("key '%s' does not go with certificate '%s' (%s)", f->key, f->cert,
			     weir_cert_ssl_error(why, sizeof(why)));
		goto fail;
	}
	/* our own certificate against the CA, now rather than at the first
	 * connection (another cluster's, or expired) */
	if (!(xs = X509_STORE_CTX_new()) || !X509_STORE_CTX_init(xs, store, cert, NULL)) {
		weir_err_set("TLS context: %s", weir_cert_ssl_error(why, sizeof(why)));
		goto fail;
	}
	X509_STORE_CTX_set_purpose(xs, server ? X509_PURPOSE_SSL_SERVER : X509_PURPOSE_SSL_CLIENT);
	if (X509_verify_cert(xs) != 1) {
		weir_err_set("certificate '%s' does not verify against CA certificate '%s': %s", f->cert, f->ca,
			     X509_verify_cert_error_string(X509_STORE_CTX_get_error(xs)));
		ERR_clear_error();
		goto fail;
	}
	if (!SSL_CTX_set_min_proto_version(c, TLS1_3_VERSION) || !SSL_CTX_set_max_proto_version(c, TLS1_3_VERSION) ||
	    !SSL_CTX_set_num_tickets(c, 0) ||
	    (server && !SSL_CTX_set_session_id_context(c, (const unsigned char *)"weir", 4))) {
		weir_err_set("TLS context: %s", weir_cert_ssl_error(why, sizeof(why)));
		goto fail;
	}
	SSL_CTX_set_options(c, SSL_OP_NO_TICKET | SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION);
	SSL_CTX_set_session_cache_mode(c, SSL_SESS_CACHE_OFF);
	SSL_CTX_set_mode(c, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
				    SSL_MODE_RELEASE_BUFFERS);
	SSL_CTX_set_verify(c, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, verify_cb);
	SSL_CTX_set_verify_depth(c, 0); /* the peer's certificate, signed by the CA itself */
	SSL_CTX_set_max_cert_list(c, CERT_LIST_MAX);
	X509_STORE_CTX_free(xs);
	X509_free(ca);
	X509_free(cert);
	EVP_PKEY_free(key);
	return ctx;
fail:
	X509_STORE_CTX_free(xs);
	X509_free(ca);
	X509_free(cert);
	EVP_PKEY_free(key);
	weir_tls_ctx_destroy(ctx);
	return NULL;
}

struct weir_tls *weir_tls_create(struct weir_tls_ctx *ctx)
{
	char why[256];
	struct weir_tls *s = calloc(1, sizeof(*s));
	BIO *inner = NULL;
	if (!s) {
		weir_err_set("TLS session: out of memory");
		return NULL;
	}
	ERR_clear_error();
	/* the pair: what OpenSSL writes waits in a ring of OUT_MAX bytes, what
	 * we feed in one of IN_MAX */
	if (!(s->ssl = SSL_new(ctx->ssl)) || !BIO_new_bio_pair(&inner, WEIR_TLS_OUT_MAX, &s->net, WEIR_TLS_IN_MAX)) {
		weir_err_set("TLS session: %s", weir_cert_ssl_error(why, sizeof(why)));
		SSL_free(s->ssl);
		free(s);
		return NULL;
	}
	SSL_set_bio(s->ssl, inner, inner);
	SSL_set_app_data(s->ssl, s);
	if (SSL_is_server(s->ssl))
		SSL_set_accept_state(s->ssl);
	else
		SSL_set_connect_state(s->ssl);
	return s;
}

void weir_tls_destroy(struct weir_tls *s)
{
	if (!s)
		return;
	SSL_free(s->ssl); /* and the inner BIO */
	BIO_free(s->net);
	if (s->pend)
		OPENSSL_cleanse(s->pend, WEIR_TLS_RECORD_MAX);
	free(s->pend);
	free(s);
}

/* The session failed: keep why, set the trail. -EPROTO. */
__attribute__((format(printf, 2, 3))) static int fail(struct weir_tls *s, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(s->why, sizeof(s->why), fmt, ap);
	va_end(ap);
	s->failed = true;
	ERR_clear_error();
	weir_err_set("%s", s->why);
	return -EPROTO;
}

/* A failed SSL call (its SSL_get_error is e): why, in words. -EPROTO. */
static int ssl_fail(struct weir_tls *s, int e)
{
	char why[256];
	unsigned long err = ERR_peek_last_error();
	int reason = ERR_GET_REASON(err);
	if (s->verify_err) {
		int v = s->verify_err;
		const char *who = s->verify_cn[0] ? s->verify_cn : "?";
		bool unsigned_by_ca = v == X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY ||
				      v == X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT ||
				      v == X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE ||
				      v == X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT ||
				      v == X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN || v == X509_V_ERR_CERT_SIGNATURE_FAILURE ||
				      v == X509_V_ERR_CERT_CHAIN_TOO_LONG;
		if (unsigned_by_ca)
			return fail(s, "peer certificate '%s' not signed by the cluster CA (%s)", who,
				    X509_verify_cert_error_string(v));
		return fail(s, "peer certificate '%s' refused: %s", who, X509_verify_cert_error_string(v));
	}
	if (ERR_GET_LIB(err) == ERR_LIB_SSL && reason == SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE)
		return fail(s, "no peer certificate");
	/* reasons from SSL_AD_REASON_OFFSET on are alerts the peer sent */
	if (ERR_GET_LIB(err) == ERR_LIB_SSL && reason >= SSL_AD_REASON_OFFSET)
		return fail(s, "peer sent the alert '%s'", weir_cert_ssl_error(why, sizeof(why)));
	if (err)
		return fail(s, "%s", weir_cert_ssl_error(why, sizeof(why)));
	if (e == SSL_ERROR_SYSCALL || e == SSL_ERROR_ZERO_RETURN)
		return fail(s, "the stream ended in the handshake");
	return fail(s, "TLS error %d", e);
}

/* The handshake ended: the peer's name. */
static int handshake_ended(struct weir_tls *s)
{
	X509 *x = SSL_get0_peer_certificate(s->ssl);
	if (!x) /* SSL_VERIFY_FAIL_IF_NO_PEER_CERT makes this unreachable */
		return fail(s, "no peer certificate");
	cn_of(x, s->peer, sizeof(s->peer));
	if (!s->peer[0])
		return fail(s, "peer certificate has no common name");
	s->done = true;
	return 0;
}

/* Move the handshake on as far as the bytes in allow. 0 (done or waiting
 * for bytes or room) or -EPROTO. */
static int advance(struct weir_tls *s)
{
	if (s->failed)
		return weir_err_set("%s", s->why), -EPROTO;
	if (s->done)
		return 0;
	ERR_clear_error();
	int r = SSL_do_handshake(s->ssl);
	if (r == 1)
		return handshake_ended(s);
	int e = SSL_get_error(s->ssl, r);
	if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
		return 0;
	return ssl_fail(s, e);
}

ssize_t weir_tls_feed_in(struct weir_tls *s, const uint8_t *cipher, size_t n)
{
	if (s->failed)
		return weir_err_set("%s", s->why), -EPROTO;
	size_t room = BIO_ctrl_get_write_guarantee(s->net);
	size_t take = n < room ? n : room;
	if (!s->done) {
		if (s->hs_in + take > WEIR_TLS_HANDSHAKE_MAX)
			return fail(s, "handshake longer than %u bytes", WEIR_TLS_HANDSHAKE_MAX);
		s->hs_in += take;
	}
	if (take && BIO_write(s->net, cipher, (int)take) != (int)take) /* cannot be short: room was guaranteed */
		return fail(s, "TLS input ring: short write");
	int rc = advance(s);
	return rc < 0 ? rc : (ssize_t)take;
}

ssize_t weir_tls_read(struct weir_tls *s, uint8_t *plain, size_t cap)
{
	int rc = advance(s);
	if (rc < 0)
		return rc;
	if (!s->done || s->peer_closed)
		return 0;
	size_t got = 0;
	while (got < cap) {
		size_t n;
		ERR_clear_error();
		int r = SSL_read_ex(s->ssl, plain + got, cap - got, &n);
		if (r == 1) {
			got += n;
			continue;
		}
		int e = SSL_get_error(s->ssl, r);
		if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
			break;
		if (e == SSL_ERROR_ZERO_RETURN) {
			s->peer_closed = true;
			break;
		}
		return ssl_fail(s, e);
	}
	return (ssize_t)got;
}

/* Finish the record OpenSSL began (see the top). 0 when none is left,
 * 1 while it waits for room, -EPROTO. */
static int pend_flush(struct weir_tls *s)
{
	if (!s->pend_len)
		return 0;
	size_t w;
	ERR_clear_error();
	int r = SSL_write_ex(s->ssl, s->pend, s->pend_len, &w);
	if (r == 1) {
		s->pend_len = 0;
		return 0;
	}
	int e = SSL_get_error(s->ssl, r);
	return e == SSL_ERROR_WANT_WRITE ? 1 : ssl_fail(s, e);
}

ssize_t weir_tls_write(struct weir_tls *s, const void *plain, size_t n)
{
	int rc = advance(s);
	if (rc < 0)
		return rc;
	if (s->shut)
		return weir_err_set("TLS session: write after shutdown"), -EPIPE;
	if (!s->done || (rc = pend_flush(s)) != 0)
		return rc < 0 ? rc : 0;
	const uint8_t *p = plain;
	size_t took = 0;
	while (took < n && BIO_ctrl_get_write_guarantee(SSL_get_wbio(s->ssl)) >= RECORD_ROOM) {
		size_t k = n - took < WEIR_TLS_RECORD_MAX ? n - took : WEIR_TLS_RECORD_MAX, w;
		ERR_clear_error();
		int r = SSL_write_ex(s->ssl, p + took, k, &w);
		if (r == 1) {
			took += w;
			continue;
		}
		int e = SSL_get_error(s->ssl, r);
		if (e != SSL_ERROR_WANT_WRITE)
			return ssl_fail(s, e);
		if (!s->pend && !(s->pend = malloc(WEIR_TLS_RECORD_MAX)))
			return fail(s, "out of memory");
		memcpy(s->pend, p + took, k); /* taken: pend_flush finishes it */
		s->pend_len = k;
		took += k;
		break;
	}
	return (ssize_t)took;
}

size_t weir_tls_out_peek(struct weir_tls *s, const uint8_t **p)
{
	if (!s->done && !s->failed)
		advance(s); /* a client's first call makes its ClientHello */
	char *q;
	int n = BIO_nread0(s->net, &q);
	if (n <= 0) {
		*p = NULL;
		return 0;
	}
	*p = (const uint8_t *)q;
	return (size_t)n;
}

void weir_tls_out_consume(struct weir_tls *s, size_t n)
{
	char *q;
	while (n > 0) {
		int k = BIO_nread(s->net, &q, n > INT_MAX ? INT_MAX : (int)n);
		if (k <= 0)
			break;
		n -= (size_t)k;
	}
	if (!s->failed)
		pend_flush(s); /* room appeared */
}

size_t weir_tls_take_out(struct weir_tls *s, uint8_t *buf, size_t cap)
{
	size_t got = 0;
	while (got < cap) {
		const uint8_t *p;
		size_t n = weir_tls_out_peek(s, &p);
		if (!n)
			break;
		if (n > cap - got)
			n = cap - got;
		memcpy(buf + got, p, n);
		got += n;
		weir_tls_out_consume(s, n);
	}
	return got;
}

int weir_tls_shutdown(struct weir_tls *s)
{
	if (s->failed)
		return weir_err_set("%s", s->why), -EPROTO;
	if (s->shut)
		return 0;
	s->shut = true;
	ERR_clear_error();
	int r = SSL_shutdown(s->ssl);
	if (r < 0) {
		int e = SSL_get_error(s->ssl, r);
		if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE)
			return ssl_fail(s, e);
	}
	return 0;
}

bool weir_tls_handshake_done(const struct weir_tls *s)
{
	return s->done && !s->failed;
}

bool weir_tls_failed(const struct weir_tls *s)
{
	return s->failed;
}

const char *weir_tls_error(const struct weir_tls *s)
{
	return s->why;
}

bool weir_tls_peer_closed(const struct weir_tls *s)
{
	return s->peer_closed;
}

const char *weir_tls_peer_name(const struct weir_tls *s)
{
	return s->done && !s->failed ? s->peer : NULL;
}

bool weir_ktls_available(void)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(a);
	bool yes = false;
	int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), c = -1;
	if (l < 0)
		return false;
	/* port 0: the kernel picks a free one; a connect over loopback to a
	 * listening socket is established when it returns */
	if (bind(l, (struct sockaddr *)&a, sizeof(a)) == 0 && listen(l, 1) == 0 &&
	    getsockname(l, (struct sockaddr *)&a, &len) == 0 &&
	    (c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) >= 0 &&
	    connect(c, (struct sockaddr *)&a, sizeof(a)) == 0)
		yes = setsockopt(c, SOL_TCP, TCP_ULP, "tls", sizeof("tls")) == 0;
	if (c >= 0)
		close(c);
	close(l);
	return yes;
}
