/*
 * ctl/auth.h - the cluster secret, and the handshake that proves it.
 *
 * Loading a job's object runs its code, so the JobManager accepts nothing
 * from a connection until the peer (client or TaskManager) has shown that
 * it knows the cluster secret, and the peer uploads nothing until the
 * JobManager has shown the same. The secret never crosses the wire:
 *
 *   peer -> JM   Hello        { role, name }
 *   JM -> peer   Challenge    { server_nonce: 32 fresh random bytes }
 *   peer -> JM   AuthResponse { client_nonce: 32 fresh random bytes,
 *                               mac = HMAC-SHA256(secret, "weir-ctl-auth-1 client"
 *                                        || server_nonce || role (4 bytes BE) || client_nonce) }
 *   JM -> peer   AuthResult   { accepted, reason | server_mac = HMAC-SHA256(secret,
 *                                        "weir-ctl-auth-1 server" || same fields) }
 *
 * The JobManager compares MACs in constant time (CRYPTO_memcmp). A fresh
 * server nonce per connection means an answer recorded on one connection
 * is worthless on the next; on its own connection the handshake takes one
 * answer, so a repeated one is refused too. The two labels keep a server
 * MAC from passing as a client's. What this does not do: encrypt, or stop
 * a relay between a peer and the JobManager (TLS between hosts, DESIGN
 * §10, is for that); on one host the listeners bind to loopback.
 *
 * The state machine knows no transport: feed it each received payload
 * (one Envelope, as ctl/codec.h decodes), then send what
 * weir_auth_take_output gives, until weir_auth_result is not PENDING. A
 * refusal usually leaves an AuthResult with the reason to send before
 * closing. The transport owns the deadline: close a connection whose
 * handshake is not accepted within WEIR_AUTH_TIMEOUT_MS (a truncated or
 * stalled handshake is never accepted by itself).
 *
 * Threads: a struct weir_auth belongs to one thread at a time; secrets
 * may be shared read-only.
 */
#ifndef WEIR_CTL_AUTH_H
#define WEIR_CTL_AUTH_H

#include "ctl/codec.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define WEIR_AUTH_KEY_LEN 32
#define WEIR_AUTH_NONCE_LEN 32
/* 2 s: the handshake is two round trips, well under a millisecond on one
 * host and tens of ms for a TaskManager starting under a sanitizer on a
 * loaded machine; an idle connection made without the secret holds its
 * slot no longer than that */
#define WEIR_AUTH_TIMEOUT_MS 2000
#define WEIR_AUTH_NAME_MAX 256
#define WEIR_AUTH_OUT_MAX 2048	/* the largest handshake message we send */

struct weir_auth_secret {
	uint8_t key[WEIR_AUTH_KEY_LEN];
};

/*
 * Create the secret file at path: 32 random bytes as 64 hex digits and a
 * newline, mode 0600, fsync'd. Refuses (-EEXIST) to replace an existing
 * file or follow a symlink. Fills *out when it is not NULL. 0 or -errno,
 * trail set.
 */
int weir_auth_secret_create(const char *path, struct weir_auth_secret *out);

/*
 * Load the secret file at path. Refused: a file group or others may read
 * or write (-EACCES, "chmod 600 it"), one owned by another user (-EACCES),
 * not a regular file or a symlink (-EINVAL / -ELOOP), content other than
 * 64 hex digits and an optional newline (-EINVAL). 0 or -errno, trail set.
 */
int weir_auth_secret_load(const char *path, struct weir_auth_secret *out);

/* Overwrite the key with zeroes (OPENSSL_cleanse). */
void weir_auth_secret_wipe(struct weir_auth_secret *s);

/*
 * The REST API's bearer token of a cluster: HMAC-SHA256 of a fixed label
 * under the secret, as 64 hex digits. Whoever can read the secret can make
 * it; the token itself does not give the secret away, and the control
 * protocol's handshake does not take it. 0, or -1 with the trail set.
 */
#define WEIR_REST_TOKEN_LEN 64
int weir_auth_rest_token(const struct weir_auth_secret *s, char out[WEIR_REST_TOKEN_LEN + 1]);
/* Does header (an Authorization header's value, or NULL) carry the token
 * ("Bearer <token>")? In constant time in the token's bytes. */
bool weir_auth_rest_ok(const char *token, const char *header);

enum weir_auth_result {
	WEIR_AUTH_PENDING,
	WEIR_AUTH_ACCEPTED,
	WEIR_AUTH_REFUSED,
};

struct weir_auth {
	bool server;
	int step;			/* internal */
	enum weir_auth_result result;
	Weir__Ctl__Role role;		/* client: ours; server: the peer's, after Hello */
	uint8_t key[WEIR_AUTH_KEY_LEN];
	uint8_t server_nonce[WEIR_AUTH_NONCE_LEN];
	uint8_t client_nonce[WEIR_AUTH_NONCE_LEN];
	char name[WEIR_AUTH_NAME_MAX];	/* client: ours; server: the peer's (printable ASCII) */
	char reason[512];			/* refusals: printable ASCII */
	uint8_t out[WEIR_AUTH_OUT_MAX];
	size_t out_len;			/* a message waiting to be sent */
};

/*
 * The client side (a weir client or a TaskManager): queues Hello at once.
 * name (may be NULL) is for the JobManager's log, cut to
 * WEIR_AUTH_NAME_MAX - 1 bytes. 0 or -EINVAL (bad role).
 */
int weir_auth_client_init(struct weir_auth *a, const struct weir_auth_secret *s, Weir__Ctl__Role role,
			  const char *name);

/* The JobManager side: waits for Hello. */
void weir_auth_server_init(struct weir_auth *a, const struct weir_auth_secret *s);

/*
 * Feed one received payload. Returns 1 when the handshake has just been
 * accepted, 0 while it goes on, or a refusal: -EACCES (wrong secret, or
 * the JobManager refused us), -EPROTO (malformed or unexpected message,
 * trail from the decoder), -EALREADY (the handshake was over), -EBUSY
 * (the previous output was not taken yet). After a refusal the result
 * stays REFUSED; weir_auth_reason and the trail say why.
 */
int weir_auth_feed(struct weir_auth *a, const uint8_t *payload, size_t len);

/* Same, for an Envelope the transport has already decoded. */
int weir_auth_feed_msg(struct weir_auth *a, const weir_msg *m);

/*
 * Copy the message waiting to be sent into buf and forget it. Returns its
 * length, 0 when there is none, -EMSGSIZE when cap is too small (kept).
 */
long weir_auth_take_output(struct weir_auth *a, uint8_t *buf, size_t cap);

static inline enum weir_auth_result weir_auth_result(const struct weir_auth *a) { return a->result; }
/* Why the handshake was refused ("" otherwise). */
static inline const char *weir_auth_reason(const struct weir_auth *a) { return a->reason; }

/* Wipe the key and nonces. */
void weir_auth_release(struct weir_auth *a);

#endif
