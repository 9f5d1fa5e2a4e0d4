/*
 * net/tls.h - TLS 1.3 sessions between weir's hosts, in user space, over
 * memory: no socket, no blocking, no thread of their own.
 *
 * A context holds what every connection of a process shares: the cluster
 * CA (net/cert.h makes it), this host's certificate and its key. It speaks
 * TLS 1.3 only, with mutual authentication: each side requires the peer's
 * certificate and verifies it against the cluster CA alone, never the
 * system's store. No session tickets or resumption, no renegotiation (TLS
 * 1.3 has none), no compression, no early data.
 *
 * A session is one connection's TLS state. Its owner (the event loop)
 * moves ciphertext between it and the socket, and plaintext between it and
 * the frames:
 *
 *   received bytes  -> weir_tls_feed_in -> weir_tls_read   -> plaintext in
 *   plaintext out   -> weir_tls_write   -> weir_tls_take_out (or out_peek
 *                                          and out_consume) -> socket
 *
 * The rule that keeps it moving: after feeding bytes in, read until
 * weir_tls_read gives 0 and send what take_out gives; if take_out gave
 * anything, read again (a reply the session owes, a KeyUpdate, may have
 * waited for room). A client's first take_out gives its ClientHello.
 *
 * What it promises, whatever the peer sends:
 *   - bounded memory: ciphertext waits in two fixed rings (WEIR_TLS_IN_MAX
 *     received, WEIR_TLS_OUT_MAX to send) besides OpenSSL's own record
 *     buffers. feed_in takes only what fits and write only what fits, each
 *     returning how much it took; a handshake that has used
 *     WEIR_TLS_HANDSHAKE_MAX received bytes without ending fails. Garbage
 *     fails at its first bad record;
 *   - a failure is sticky and has a reason, weir_tls_error(): "peer
 *     certificate 'x' not signed by the cluster CA (...)", "no peer
 *     certificate", "peer sent the alert '...'", "record layer failure";
 *     the failing call returns -EPROTO with the trail set to it. What
 *     take_out still gives afterwards is an alert to send before closing;
 *   - which peer it is, beyond "holds a certificate of this cluster", is the
 *     caller's to decide: weir_tls_peer_name() is the certificate's common
 *     name once the handshake is done.
 *
 * On the client, TLS 1.3 ends the handshake when the client has checked the
 * server and sent its Finished; the server checks the client's certificate
 * after that, so a refused client learns it on its next read, as a failure.
 * A truncated or stalled handshake never ends by itself: the transport owns
 * the deadline.
 *
 * Kernel TLS (TCP_ULP "tls") would move the record layer into the kernel
 * after the handshake; it is used only where weir_ktls_available() says the
 * kernel offers it, and this is not done yet. The machines weir is built on
 * today have no kTLS (their tcp_available_ulp lists only mptcp), so the
 * record layer runs here, in user space.
 *
 * Threads: a context may be shared by threads once made; a session belongs
 * to one thread at a time (the loop's). OpenSSL's error queue is per
 * thread, and every call clears it first.
 */
#ifndef WEIR_NET_TLS_H
#define WEIR_NET_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define WEIR_TLS_IN_MAX (32u << 10)		/* received ciphertext held, at most */
#define WEIR_TLS_OUT_MAX (64u << 10)		/* ciphertext waiting to be sent, at most */
#define WEIR_TLS_HANDSHAKE_MAX (64u << 10)	/* received bytes a handshake may use */
#define WEIR_TLS_RECORD_MAX 16384u		/* plaintext bytes in one record */
#define WEIR_TLS_NAME_MAX 256			/* a peer name, with its NUL */

/* The PEM files of a context; net/cert.h names them in a certificate
 * folder. The key must be this user's alone (mode 0600 or stricter). */
struct weir_tls_files {
	const char *ca;		/* the cluster CA's certificate */
	const char *cert;	/* this host's certificate, signed by that CA */
	const char *key;	/* its private key, unencrypted */
};

struct weir_tls_ctx;
struct weir_tls;

/* A context for the server (accepting) or client (connecting) side. Loads
 * and checks the three files: the CA must be a CA, the key must match the
 * certificate, and the certificate must verify against the CA (now, so a
 * host with a certificate of another cluster or an expired one learns it at
 * start, not at its first connection). NULL with the trail naming the file
 * and OpenSSL's reason. */
struct weir_tls_ctx *weir_tls_ctx_create(const struct weir_tls_files *f, bool server);
void weir_tls_ctx_destroy(struct weir_tls_ctx *ctx);

/* A session on ctx (which must outlive it), for one new connection. NULL
 * with the trail set when out of memory. */
struct weir_tls *weir_tls_create(struct weir_tls_ctx *ctx);
void weir_tls_destroy(struct weir_tls *s);

/* Hand over n bytes received from the socket. Returns how many it took
 * (fewer than n, even 0, when its ring is full: read, then feed the rest),
 * or -EPROTO once the session failed. Advances the handshake. */
ssize_t weir_tls_feed_in(struct weir_tls *s, const uint8_t *cipher, size_t n);

/* Plaintext received, into plain[0..cap): the count (> 0), 0 when none is
 * whole yet (or the peer closed: weir_tls_peer_closed), -EPROTO on failure.
 * Before the handshake is done it only advances it, and gives 0. */
ssize_t weir_tls_read(struct weir_tls *s, uint8_t *plain, size_t cap);

/* Encrypt plaintext to send: returns how many of the n bytes it took, 0
 * while the handshake is not done or the send ring has no room for another
 * record (take_out, then write the rest), -EPROTO on failure, -EPIPE after
 * weir_tls_shutdown. Bytes taken are sent in order. */
ssize_t weir_tls_write(struct weir_tls *s, const void *plain, size_t n);

/* Ciphertext to send, copied into buf[0..cap) and removed from the ring:
 * the count, 0 when there is none. A cap of WEIR_TLS_OUT_MAX empties the
 * ring in one call. Works after a failure too (the alert to send). */
size_t weir_tls_take_out(struct weir_tls *s, uint8_t *buf, size_t cap);

/* The same without the copy, for a send from the ring itself: *p points at
 * the oldest contiguous bytes to send, their count is returned (0: none).
 * They stay in place, unchanged, until out_consume(n) says n of them went
 * out; writes meanwhile only append. Do not mix with take_out while a
 * peeked send is in flight. */
size_t weir_tls_out_peek(struct weir_tls *s, const uint8_t **p);
void weir_tls_out_consume(struct weir_tls *s, size_t n);

/* Queue a close_notify alert (take_out sends it); writes are refused from
 * then on. 0, or -EPROTO when the session had failed. */
int weir_tls_shutdown(struct weir_tls *s);

/* The handshake ended and the peer's certificate verified. */
bool weir_tls_handshake_done(const struct weir_tls *s);
/* The session failed; weir_tls_error says why. */
bool weir_tls_failed(const struct weir_tls *s);
/* Why it failed ("" while it has not). Valid as long as the session. */
const char *weir_tls_error(const struct weir_tls *s);
/* The peer sent close_notify: an orderly end, not a truncation. */
bool weir_tls_peer_closed(const struct weir_tls *s);
/* The common name of the peer's certificate, NULL before the handshake is
 * done. Valid as long as the session. */
const char *weir_tls_peer_name(const struct weir_tls *s);

/* Whether the kernel offers kernel TLS: sets TCP_ULP "tls" on a throwaway
 * TCP connection over loopback (which completes at once; it never waits on
 * another host). False here, where the kernel lacks it, and on any
 * failure. Call at start, not from the loop. */
bool weir_ktls_available(void);

#endif
