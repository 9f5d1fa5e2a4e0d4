/*
 * ctl/auth.c - cluster secret file and the challenge-response handshake;
 * see auth.h for the protocol.
 *
 * Steps of the state machine (a->step):
 *   server: WAIT_HELLO -> WAIT_RESPONSE -> DONE
 *   client: WAIT_CHALLENGE -> WAIT_RESULT -> DONE
 * Any message other than the one a step expects refuses the handshake,
 * and so does anything after DONE: one connection, one answer.
 */
#include "ctl/auth.h"

#include "base/err.h"
#include "ctl/sha.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

enum { WAIT_HELLO, WAIT_RESPONSE, WAIT_CHALLENGE, WAIT_RESULT, DONE };

static const char label_client[] = "weir-ctl-auth-1 client";
static const char label_server[] = "weir-ctl-auth-1 server";

/* --- the secret file ----------------------------------------------------- */

int weir_auth_secret_create(const char *path, struct weir_auth_secret *out)
{
	struct weir_auth_secret s;
	char text[2 * WEIR_AUTH_KEY_LEN + 2];
	int rc, fd;

	if (RAND_bytes(s.key, sizeof(s.key)) != 1) {
		weir_err_set("cluster secret '%s': no random bytes from libcrypto", path);
		return -EIO;
	}
	weir_hex_encode(s.key, sizeof(s.key), text);
	text[2 * WEIR_AUTH_KEY_LEN] = '\n';

	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0) {
		rc = -errno;
		weir_err_errno(errno, "cluster secret '%s': create", path);
		goto out_wipe;
	}
	/* The umask may only have taken bits away; make it exactly 0600. */
	if (fchmod(fd, 0600) < 0) {
		rc = -errno;
		weir_err_errno(errno, "cluster secret '%s': chmod", path);
		goto out_unlink;
	}
	const size_t total = 2 * WEIR_AUTH_KEY_LEN + 1;
	size_t done = 0;
	while (done < total) {
		ssize_t w = write(fd, text + done, total - done);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			int e = w < 0 ? errno : EIO;
			rc = -e;
			weir_err_errno(e, "cluster secret '%s': write", path);
			goto out_unlink;
		}
		done += (size_t)w;
	}
	if (fsync(fd) < 0) {
		rc = -errno;
		weir_err_errno(errno, "cluster secret '%s': fsync", path);
		goto out_unlink;
	}
	close(fd);
	if (out)
		*out = s;
	rc = 0;
	goto out_wipe;

out_unlink:
	close(fd);
	unlink(path);
out_wipe:
	OPENSSL_cleanse(&s, sizeof(s));
	OPENSSL_cleanse(text, sizeof(text));
	return rc;
}

int weir_auth_secret_load(const char *path, struct weir_auth_secret *out)
{
	char text[2 * WEIR_AUTH_KEY_LEN + 3];
	struct stat st;
	size_t len = 0;
	int rc;

	int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0) {
		rc = -errno;
		if (errno == ELOOP)
			weir_err_set("cluster secret '%s': a symbolic link (refused)", path);
		else
			weir_err_errno(errno, "cluster secret '%s'", path);
		return rc;
	}
	if (fstat(fd, &st) < 0) {
		rc = -errno;
		weir_err_errno(errno, "cluster secret '%s': stat", path);
		goto out_close;
	}
	if (!S_ISREG(st.st_mode)) {
		rc = -EINVAL;
		weir_err_set("cluster secret '%s': not a regular file", path);
		goto out_close;
	}
	if (st.st_uid != geteuid()) {
		rc = -EACCES;
		weir_err_set("cluster secret '%s': owned by uid %u, not by this user (uid %u)", path,
			     (unsigned)st.st_uid, (unsigned)geteuid());
		goto out_close;
	}
	if (st.st_mode & 077) {
		rc = -EACCES;
		weir_err_set("cluster secret '%s': mode %04o lets group or others at it; "
			     "refused (chmod 600 it, or create a new one)",
			     path, (unsigned)(st.st_mode & 07777));
		goto out_close;
	}
	while (len < sizeof(text)) {
		ssize_t r = read(fd, text + len, sizeof(text) - len);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			rc = -errno;
			weir_err_errno(errno, "cluster secret '%s': read", path);
			goto out_wipe;
		}
		if (r == 0)
			break;
		len += (size_t)r;
	}
	if (len == 2 * WEIR_AUTH_KEY_LEN + 1 && text[len - 1] == '\n')
		len--;
	if (len != 2 * WEIR_AUTH_KEY_LEN) {
		rc = -EINVAL;
		weir_err_set("cluster secret '%s': not %d hex digits and a newline", path, 2 * WEIR_AUTH_KEY_LEN);
		goto out_wipe;
	}
	text[len] = '\0';
	if (weir_hex_decode(text, out->key, WEIR_AUTH_KEY_LEN) < 0) {
		rc = -EINVAL;
		OPENSSL_cleanse(out, sizeof(*out));
		weir_err_set("cluster secret '%s': not %d hex digits and a newline", path, 2 * WEIR_AUTH_KEY_LEN);
		goto out_wipe;
	}
	rc = 0;
out_wipe:
	OPENSSL_cleanse(text, sizeof(text));
out_close:
	close(fd);
	return rc;
}

void weir_auth_secret_wipe(struct weir_auth_secret *s)
{
	OPENSSL_cleanse(s, sizeof(*s));
}

/* --- the handshake -------------------------------------------------------- */

static int compute_mac(const struct weir_auth *a, const char *label, uint8_t mac[EVP_MAX_MD_SIZE])
{
	uint8_t data[sizeof(label_client) + 2 * WEIR_AUTH_NONCE_LEN + 4];
	uint32_t role = (uint32_t)a->role;
	size_t n = 0;
	unsigned int mac_len = 0;

	memcpy(data, label, sizeof(label_client) - 1);
	n += sizeof(label_client) - 1;
	memcpy(data + n, a->server_nonce, WEIR_AUTH_NONCE_LEN);
	n += WEIR_AUTH_NONCE_LEN;
	data[n++] = (uint8_t)(role >> 24);
	data[n++] = (uint8_t)(role >> 16);
	data[n++] = (uint8_t)(role >> 8);
	data[n++] = (uint8_t)role;
	memcpy(data + n, a->client_nonce, WEIR_AUTH_NONCE_LEN);
	n += WEIR_AUTH_NONCE_LEN;
	if (!HMAC(EVP_sha256(), a->key, WEIR_AUTH_KEY_LEN, data, n, mac, &mac_len) || mac_len != 32) {
		weir_err_set("handshake: HMAC-SHA256 failed in libcrypto");
		return -EIO;
	}
	return 0;
}

/* Printable ASCII copy of s into dst (cap bytes), others become '?'. */
static void printable(char *dst, size_t cap, const char *s)
{
	size_t i = 0;
	for (; s && s[i] && i + 1 < cap; i++)
		dst[i] = s[i] >= 0x20 && s[i] < 0x7f ? s[i] : '?';
	dst[i] = '\0';
}

static int queue(struct weir_auth *a, const weir_msg *m)
{
	long n = weir_ctl_encode(m, a->out, sizeof(a->out));
	if (n < 0)
		return (int)n;
	a->out_len = (size_t)n;
	return 0;
}

/*
 * Refuse: remember why, and (server side, when asked) queue an AuthResult
 * that tells the peer. Returns rc.
 */
static int refuse(struct weir_auth *a, int rc, bool tell, const char *why)
{
	a->result = WEIR_AUTH_REFUSED;
	a->step = DONE;
	printable(a->reason, sizeof(a->reason), why);
	OPENSSL_cleanse(a->key, sizeof(a->key));
	if (tell && a->server) {
		Weir__Ctl__AuthResult r = WEIR__CTL__AUTH_RESULT__INIT;
		weir_msg m = WEIR__CTL__ENVELOPE__INIT;
		r.accepted = 0;
		r.reason = a->reason;
		m.body_case = WEIR__CTL__ENVELOPE__BODY_AUTH_RESULT;
		m.auth_result = &r;
		a->out_len = 0;
		queue(a, &m);	/* a reason too long to encode leaves nothing to send */
	}
	weir_err_set("handshake refused: %s", a->reason);
	return rc;
}

int weir_auth_client_init(struct weir_auth *a, const struct weir_auth_secret *s, Weir__Ctl__Role role,
			  const char *name)
{
	memset(a, 0, sizeof(*a));
	if (role != WEIR__CTL__ROLE__ROLE_CLIENT && role != WEIR__CTL__ROLE__ROLE_TASKMANAGER) {
		weir_err_set("handshake: role %d is neither client nor taskmanager", (int)role);
		return -EINVAL;
	}
	a->server = false;
	a->role = role;
	a->step = WAIT_CHALLENGE;
	a->result = WEIR_AUTH_PENDING;
	memcpy(a->key, s->key, sizeof(a->key));
	printable(a->name, sizeof(a->name), name ? name : "");

	Weir__Ctl__Hello h = WEIR__CTL__HELLO__INIT;
	weir_msg m = WEIR__CTL__ENVELOPE__INIT;
	h.role = role;
	h.name = a->name[0] ? a->name : NULL;
	m.body_case = WEIR__CTL__ENVELOPE__BODY_HELLO;
	m.hello = &h;
	return queue(a, &m);
}

void weir_auth_server_init(struct weir_auth *a, const struct weir_auth_secret *s)
{
	memset(a, 0, sizeof(*a));
	a->server = true;
	a->step = WAIT_HELLO;
	a->result = WEIR_AUTH_PENDING;
	memcpy(a->key, s->key, sizeof(a->key));
}

static int server_step(struct weir_auth *a, const weir_msg *m)
{
	uint8_t mac[EVP_MAX_MD_SIZE];
	char why[256];

	if (a->step == WAIT_HELLO) {
		if (m->body_case != WEIR__CTL__ENVELOPE__BODY_HELLO) {
			snprintf(why, sizeof(why), "expected hello, got %s", weir_ctl_body_name(m->body_case));
			return refuse(a, -EPROTO, true, why);
		}
		a->role = m->hello->role;
		printable(a->name, sizeof(a->name), m->hello->name);
		if (RAND_bytes(a->server_nonce, sizeof(a->server_nonce)) != 1)
			return refuse(a, -EIO, true, "no random bytes for the challenge");

		Weir__Ctl__Challenge c = WEIR__CTL__CHALLENGE__INIT;
		weir_msg out = WEIR__CTL__ENVELOPE__INIT;
		c.server_nonce.data = a->server_nonce;
		c.server_nonce.len = sizeof(a->server_nonce);
		out.body_case = WEIR__CTL__ENVELOPE__BODY_CHALLENGE;
		out.challenge = &c;
		int rc = queue(a, &out);
		if (rc < 0)
			return refuse(a, rc, false, weir_err_msg());
		a->step = WAIT_RESPONSE;
		return 0;
	}

	/* WAIT_RESPONSE */
	if (m->body_case != WEIR__CTL__ENVELOPE__BODY_AUTH_RESPONSE) {
		snprintf(why, sizeof(why), "expected auth_response, got %s", weir_ctl_body_name(m->body_case));
		return refuse(a, -EPROTO, true, why);
	}
	const Weir__Ctl__AuthResponse *r = m->auth_response;
	/* The decoder has checked both are 32 bytes; check again, cheaply. */
	if (r->client_nonce.len != WEIR_AUTH_NONCE_LEN || r->mac.len != 32)
		return refuse(a, -EPROTO, true, "auth_response: nonce or mac of the wrong length");
	memcpy(a->client_nonce, r->client_nonce.data, WEIR_AUTH_NONCE_LEN);
	if (compute_mac(a, label_client, mac) < 0)
		return refuse(a, -EIO, true, "HMAC failed");
	if (CRYPTO_memcmp(mac, r->mac.data, 32) != 0) {
		snprintf(why, sizeof(why), "wrong cluster secret (%s%s%s)",
			 a->role == WEIR__CTL__ROLE__ROLE_TASKMANAGER ? "taskmanager" : "client",
			 a->name[0] ? " " : "", a->name);
		return refuse(a, -EACCES, true, why);
	}
	if (compute_mac(a, label_server, mac) < 0)
		return refuse(a, -EIO, true, "HMAC failed");

	Weir__Ctl__AuthResult res = WEIR__CTL__AUTH_RESULT__INIT;
	weir_msg out = WEIR__CTL__ENVELOPE__INIT;
	res.accepted = 1;
	res.has_server_mac = 1;
	res.server_mac.data = mac;
	res.server_mac.len = 32;
	out.body_case = WEIR__CTL__ENVELOPE__BODY_AUTH_RESULT;
	out.auth_result = &res;
	int rc = queue(a, &out);
	OPENSSL_cleanse(mac, sizeof(mac));
	if (rc < 0)
		return refuse(a, rc, false, weir_err_msg());
	a->step = DONE;
	a->result = WEIR_AUTH_ACCEPTED;
	OPENSSL_cleanse(a->key, sizeof(a->key));
	return 1;
}

static int client_step(struct weir_auth *a, const weir_msg *m)
{
	uint8_t mac[EVP_MAX_MD_SIZE];
	char why[700];

	/* The JobManager may refuse at any step. */
	if (m->body_case == WEIR__CTL__ENVELOPE__BODY_AUTH_RESULT && !m->auth_result->accepted) {
		snprintf(why, sizeof(why), "the JobManager refused: %s",
			 m->auth_result->reason ? m->auth_result->reason : "no reason given");
		return refuse(a, -EACCES, false, why);
	}
	if (a->step == WAIT_CHALLENGE) {
		if (m->body_case != WEIR__CTL__ENVELOPE__BODY_CHALLENGE) {
			snprintf(why, sizeof(why), "expected challenge, got %s", weir_ctl_body_name(m->body_case));
			return refuse(a, -EPROTO, false, why);
		}
		if (m->challenge->server_nonce.len != WEIR_AUTH_NONCE_LEN)
			return refuse(a, -EPROTO, false, "challenge: nonce of the wrong length");
		memcpy(a->server_nonce, m->challenge->server_nonce.data, WEIR_AUTH_NONCE_LEN);
		if (RAND_bytes(a->client_nonce, sizeof(a->client_nonce)) != 1)
			return refuse(a, -EIO, false, "no random bytes for the client nonce");
		if (compute_mac(a, label_client, mac) < 0)
			return refuse(a, -EIO, false, "HMAC failed");

		Weir__Ctl__AuthResponse r = WEIR__CTL__AUTH_RESPONSE__INIT;
		weir_msg out = WEIR__CTL__ENVELOPE__INIT;
		r.client_nonce.data = a->client_nonce;
		r.client_nonce.len = WEIR_AUTH_NONCE_LEN;
		r.mac.data = mac;
		r.mac.len = 32;
		out.body_case = WEIR__CTL__ENVELOPE__BODY_AUTH_RESPONSE;
		out.auth_response = &r;
		int rc = queue(a, &out);
		OPENSSL_cleanse(mac, sizeof(mac));
		if (rc < 0)
			return refuse(a, rc, false, weir_err_msg());
		a->step = WAIT_RESULT;
		return 0;
	}

	/* WAIT_RESULT: accepted, with proof that the JobManager knows the secret. */
	if (m->body_case != WEIR__CTL__ENVELOPE__BODY_AUTH_RESULT) {
		snprintf(why, sizeof(why), "expected auth_result, got %s", weir_ctl_body_name(m->body_case));
		return refuse(a, -EPROTO, false, why);
	}
	const Weir__Ctl__AuthResult *r = m->auth_result;
	if (!r->has_server_mac || r->server_mac.len != 32)
		return refuse(a, -EACCES, false, "the JobManager accepted without proving it knows the cluster secret");
	if (compute_mac(a, label_server, mac) < 0)
		return refuse(a, -EIO, false, "HMAC failed");
	bool same = CRYPTO_memcmp(mac, r->server_mac.data, 32) == 0;
	OPENSSL_cleanse(mac, sizeof(mac));
	if (!same)
		return refuse(a, -EACCES, false, "the JobManager does not know the cluster secret (wrong secret file?)");
	a->step = DONE;
	a->result = WEIR_AUTH_ACCEPTED;
	OPENSSL_cleanse(a->key, sizeof(a->key));
	return 1;
}

int weir_auth_feed_msg(struct weir_auth *a, const weir_msg *m)
{
	if (a->step == DONE) {
		weir_err_set("handshake: a message after the handshake was over");
		return -EALREADY;
	}
	if (a->out_len) {
		weir_err_set("handshake: input while the previous output was not taken");
		return -EBUSY;
	}
	return a->server ? server_step(a, m) : client_step(a, m);
}

int weir_auth_feed(struct weir_auth *a, const uint8_t *payload, size_t len)
{
	weir_msg *m;
	char why[WEIR_ERR_MAX + 32];

	if (a->step == DONE) {
		weir_err_set("handshake: a message after the handshake was over");
		return -EALREADY;
	}
	if (a->out_len) {
		weir_err_set("handshake: input while the previous output was not taken");
		return -EBUSY;
	}
	int rc = weir_ctl_decode(payload, len, &m);
	if (rc < 0) {
		snprintf(why, sizeof(why), "malformed handshake message: %s", weir_err_msg());
		return refuse(a, -EPROTO, true, why);
	}
	rc = weir_auth_feed_msg(a, m);
	weir_ctl_free(m);
	return rc;
}

long weir_auth_take_output(struct weir_auth *a, uint8_t *buf, size_t cap)
{
	size_t n = a->out_len;
	if (!n)
		return 0;
	if (n > cap) {
		weir_err_set("handshake: output of %zu bytes, buffer of %zu", n, cap);
		return -EMSGSIZE;
	}
	memcpy(buf, a->out, n);
	a->out_len = 0;
	return (long)n;
}

void weir_auth_release(struct weir_auth *a)
{
	OPENSSL_cleanse(a, sizeof(*a));
}

int weir_auth_rest_token(const struct weir_auth_secret *s, char out[WEIR_REST_TOKEN_LEN + 1])
{
	static const char label[] = "weir REST API token, version 1";
	uint8_t mac[32];
	unsigned int mac_len = 0;
	if (!HMAC(EVP_sha256(), s->key, WEIR_AUTH_KEY_LEN, (const uint8_t *)label, sizeof(label) - 1, mac, &mac_len) ||
	    mac_len != 32)
		return weir_err_set("the REST token: HMAC-SHA256 failed in libcrypto");
	weir_hex_encode(mac, 32, out);
	out[WEIR_REST_TOKEN_LEN] = '\0';
	return 0;
}

bool weir_auth_rest_ok(const char *token, const char *header)
{
	if (!header || strncmp(header, "Bearer ", 7) || strlen(header + 7) != WEIR_REST_TOKEN_LEN)
		return false;
	return CRYPTO_memcmp(header + 7, token, WEIR_REST_TOKEN_LEN) == 0;
}
