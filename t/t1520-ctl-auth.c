/*
 * t1520-ctl-auth: the cluster secret file (created 0600, refused when
 * group or others may read it, when another user owns it, when it is a
 * symlink or holds anything but 64 hex digits) and the challenge-response
 * handshake: the right secret is accepted both ways; 1000 attempts each
 * with no secret, a wrong secret, a replayed answer and a truncated
 * handshake are all refused, and a correct client still works after them;
 * a JobManager that cannot prove the secret is refused by the client;
 * out-of-order, repeated and version-2 messages are refused.
 */
#include "base/err.h"
#include "ctl/auth.h"
#include "tap.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define ATTEMPTS 1000

static char dir[64];
static char path[128];

static void cleanup(void)
{
	char p[160];
	static const char *names[] = { "secret", "again", "link", "bad", "other", "sub" };
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		snprintf(p, sizeof(p), "%s/%s", dir, names[i]);
		unlink(p);
		rmdir(p);
	}
	rmdir(dir);
}

static void write_file(const char *p, const char *content, mode_t mode)
{
	unlink(p);
	int fd = open(p, O_WRONLY | O_CREAT | O_EXCL, 0600);
	if (fd < 0 || write(fd, content, strlen(content)) != (ssize_t)strlen(content) || fchmod(fd, mode) < 0)
		bail("write %s: %m", p);
	close(fd);
}

static void secret_files(struct weir_auth_secret *s)
{
	struct weir_auth_secret l, l2;
	struct stat st;
	char p[160], buf[200];
	int rc;

	snprintf(path, sizeof(path), "%s/secret", dir);
	mode_t old = umask(0);	/* a permissive umask must not widen the mode */
	rc = weir_auth_secret_create(path, s);
	umask(old);
	ok(rc == 0, "secret created (%s)", rc ? weir_err_msg() : "ok");
	ok(stat(path, &st) == 0 && (st.st_mode & 07777) == 0600 && st.st_size == 65,
	   "mode 0600, 64 hex digits and a newline");
	rc = weir_auth_secret_load(path, &l);
	ok(rc == 0 && !memcmp(l.key, s->key, sizeof(l.key)), "loads back the same key");
	rc = weir_auth_secret_create(path, &l2);
	ok(rc == -EEXIST && strstr(weir_err_msg(), "File exists"), "create does not replace a file (%s)",
	   weir_err_msg());
	snprintf(p, sizeof(p), "%s/again", dir);
	rc = weir_auth_secret_create(p, &l2);
	ok(rc == 0 && memcmp(l2.key, s->key, sizeof(l2.key)), "a second secret differs");

	static const mode_t loose[] = { 0640, 0604, 0660, 0644, 0606, 0620, 0602, 0610, 0601 };
	for (size_t i = 0; i < sizeof(loose) / sizeof(loose[0]); i++) {
		chmod(path, loose[i]);
		rc = weir_auth_secret_load(path, &l);
		snprintf(buf, sizeof(buf), "mode %04o lets group or others at it", (unsigned)loose[i]);
		ok(rc == -EACCES && strstr(weir_err_msg(), buf) && strstr(weir_err_msg(), "chmod 600"),
		   "mode %04o refused (%s)", (unsigned)loose[i], weir_err_msg());
	}
	chmod(path, 0400);
	ok(weir_auth_secret_load(path, &l) == 0, "mode 0400 accepted");
	chmod(path, 0600);

	snprintf(p, sizeof(p), "%s/link", dir);
	if (symlink(path, p) < 0)
		bail("symlink: %m");
	rc = weir_auth_secret_load(p, &l);
	ok(rc == -ELOOP && strstr(weir_err_msg(), "symbolic link"), "symlink refused (%s)", weir_err_msg());
	rc = weir_auth_secret_create(p, &l);
	ok(rc == -EEXIST || rc == -ELOOP, "create through a symlink refused (%s)", weir_err_msg());

	snprintf(p, sizeof(p), "%s/sub", dir);
	mkdir(p, 0700);
	rc = weir_auth_secret_load(p, &l);
	ok(rc == -EINVAL && strstr(weir_err_msg(), "not a regular file"), "directory refused (%s)", weir_err_msg());
	rc = weir_auth_secret_load("/nonexistent/weir/secret", &l);
	ok(rc == -ENOENT && strstr(weir_err_msg(), "/nonexistent/weir/secret"), "missing file named (%s)",
	   weir_err_msg());

	static const char *bad[] = {
		"",
		"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcde\n",	/* 63 */
		"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef0\n",	/* 65 */
		"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdeg\n",	/* not hex */
		"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\n\n",
		"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef extra\n",
		" 0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
	};
	snprintf(p, sizeof(p), "%s/bad", dir);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		write_file(p, bad[i], 0600);
		rc = weir_auth_secret_load(p, &l);
		ok(rc == -EINVAL && strstr(weir_err_msg(), "not 64 hex digits"), "bad content %zu refused (%s)", i,
		   weir_err_msg());
	}
	write_file(p, "0123456789ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef", 0600);
	ok(weir_auth_secret_load(p, &l) == 0 && l.key[0] == 0x01 && l.key[7] == 0xef && l.key[31] == 0xef,
	   "upper-case hex without a newline accepted");

	if (geteuid() == 0) {
		snprintf(p, sizeof(p), "%s/other", dir);
		write_file(p, "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\n", 0600);
		if (chown(p, 65534, 65534) < 0)
			bail("chown: %m");
		rc = weir_auth_secret_load(p, &l);
		ok(rc == -EACCES && strstr(weir_err_msg(), "owned by uid 65534"), "another user's file refused (%s)",
		   weir_err_msg());
	} else {
		skip("another user's file: needs root to chown", 1);
	}
	weir_auth_secret_wipe(&l);
	ok(l.key[0] == 0 && l.key[31] == 0, "wipe zeroes the key");
}

/* Move the pending output of `from` into `to`; the result of feeding it. */
static int pass(struct weir_auth *from, struct weir_auth *to, uint8_t *copy, size_t *copy_len)
{
	uint8_t buf[WEIR_AUTH_OUT_MAX];
	long n = weir_auth_take_output(from, buf, sizeof(buf));
	if (n <= 0)
		return n < 0 ? (int)n : -ENODATA;
	if (copy) {
		memcpy(copy, buf, (size_t)n);
		*copy_len = (size_t)n;
	}
	return weir_auth_feed(to, buf, (size_t)n);
}

/* A full handshake; the client's AuthResponse is kept in resp when asked. */
static bool handshake(const struct weir_auth_secret *cs, const struct weir_auth_secret *ss, uint8_t *resp,
		      size_t *resp_len, struct weir_auth *srv_out)
{
	struct weir_auth c, s;
	weir_auth_client_init(&c, cs, WEIR__CTL__ROLE__ROLE_CLIENT, "weir run");
	weir_auth_server_init(&s, ss);
	bool good = pass(&c, &s, NULL, NULL) == 0 && pass(&s, &c, NULL, NULL) == 0 &&
		    pass(&c, &s, resp, resp_len) == 1 && pass(&s, &c, NULL, NULL) == 1 &&
		    weir_auth_result(&c) == WEIR_AUTH_ACCEPTED && weir_auth_result(&s) == WEIR_AUTH_ACCEPTED;
	if (srv_out)
		*srv_out = s;
	weir_auth_release(&c);
	weir_auth_release(&s);
	return good;
}

static long take(struct weir_auth *a, uint8_t *buf) { return weir_auth_take_output(a, buf, WEIR_AUTH_OUT_MAX); }

static void handshakes(const struct weir_auth_secret *secret)
{
	struct weir_auth c, s, s2;
	struct weir_auth_secret wrong;
	uint8_t buf[WEIR_AUTH_OUT_MAX], hello[WEIR_AUTH_OUT_MAX], resp[WEIR_AUTH_OUT_MAX];
	size_t hello_len, resp_len = 0;
	int rc;

	ok(handshake(secret, secret, resp, &resp_len, &s2), "right secret: accepted by both sides");
	ok(s2.role == WEIR__CTL__ROLE__ROLE_CLIENT && !strcmp(s2.name, "weir run"),
	   "the JobManager knows the peer's role and name");
	weir_auth_client_init(&c, secret, WEIR__CTL__ROLE__ROLE_TASKMANAGER, "taskmanager 1\n\x01");
	weir_auth_server_init(&s, secret);
	ok(pass(&c, &s, NULL, NULL) == 0 && pass(&s, &c, NULL, NULL) == 0 && pass(&c, &s, NULL, NULL) == 1 &&
		   pass(&s, &c, NULL, NULL) == 1 && s.role == WEIR__CTL__ROLE__ROLE_TASKMANAGER &&
		   !strcmp(s.name, "taskmanager 1??"),
	   "a TaskManager too; its name is kept printable");
	ok(weir_auth_feed(&s, resp, resp_len) == -EALREADY && weir_auth_result(&s) == WEIR_AUTH_ACCEPTED,
	   "a message after acceptance: -EALREADY, still accepted");
	weir_auth_release(&c), weir_auth_release(&s);
	ok(weir_auth_client_init(&c, secret, 7, NULL) == -EINVAL, "client role 7 refused");

	/* the record of a good client: its Hello */
	weir_auth_client_init(&c, secret, WEIR__CTL__ROLE__ROLE_CLIENT, "weir run");
	hello_len = (size_t)take(&c, hello);
	weir_auth_release(&c);

	long accepted = 0, wrong_rc = 0, told = 0;
	uint8_t nonces[ATTEMPTS][WEIR_AUTH_NONCE_LEN];
	for (int i = 0; i < ATTEMPTS; i++) {
		/* 1. no secret: skip the handshake, or answer with a guess */
		weir_auth_server_init(&s, secret);
		if (i % 2 == 0) {
			Weir__Ctl__ListJobs lj = WEIR__CTL__LIST_JOBS__INIT;
			weir_msg m = WEIR__CTL__ENVELOPE__INIT;
			m.body_case = WEIR__CTL__ENVELOPE__BODY_LIST_JOBS;
			m.list_jobs = &lj;
			long n = weir_ctl_encode(&m, buf, sizeof(buf));
			rc = weir_auth_feed(&s, buf, (size_t)n);
			wrong_rc += rc != -EPROTO;
		} else {
			Weir__Ctl__AuthResponse r = WEIR__CTL__AUTH_RESPONSE__INIT;
			weir_msg m = WEIR__CTL__ENVELOPE__INIT;
			uint8_t guess[64];
			RAND_bytes(guess, sizeof(guess));
			weir_auth_feed(&s, hello, hello_len);
			take(&s, buf);
			r.client_nonce = (ProtobufCBinaryData){ 32, guess };
			r.mac = (ProtobufCBinaryData){ 32, guess + 32 };
			m.body_case = WEIR__CTL__ENVELOPE__BODY_AUTH_RESPONSE;
			m.auth_response = &r;
			long n = weir_ctl_encode(&m, buf, sizeof(buf));
			rc = weir_auth_feed(&s, buf, (size_t)n);
			wrong_rc += rc != -EACCES;
		}
		accepted += weir_auth_result(&s) != WEIR_AUTH_REFUSED;
		told += take(&s, buf) > 0;
		weir_auth_release(&s);

		/* 2. wrong secret */
		RAND_bytes(wrong.key, sizeof(wrong.key));
		weir_auth_client_init(&c, &wrong, WEIR__CTL__ROLE__ROLE_CLIENT, NULL);
		weir_auth_server_init(&s, secret);
		pass(&c, &s, NULL, NULL);
		memcpy(nonces[i], s.server_nonce, WEIR_AUTH_NONCE_LEN);
		pass(&s, &c, NULL, NULL);
		rc = pass(&c, &s, NULL, NULL);
		wrong_rc += rc != -EACCES;
		accepted += weir_auth_result(&s) != WEIR_AUTH_REFUSED;
		rc = pass(&s, &c, NULL, NULL);	/* the refusal reaches the client */
		wrong_rc += rc != -EACCES || !strstr(weir_auth_reason(&c), "wrong cluster secret");
		told++;	/* pass() above found the refusal to send */
		weir_auth_release(&c), weir_auth_release(&s);

		/* 3. the answer of the good handshake above, replayed */
		weir_auth_server_init(&s, secret);
		weir_auth_feed(&s, hello, hello_len);
		take(&s, buf);
		rc = weir_auth_feed(&s, resp, resp_len);
		wrong_rc += rc != -EACCES;
		accepted += weir_auth_result(&s) != WEIR_AUTH_REFUSED;
		told += take(&s, buf) > 0;
		weir_auth_release(&s);

		/* 4. truncated: a good client's Hello or answer cut short */
		weir_auth_client_init(&c, secret, WEIR__CTL__ROLE__ROLE_CLIENT, "weir run");
		weir_auth_server_init(&s, secret);
		long n = take(&c, buf);
		if (i % 2 == 0) {
			rc = weir_auth_feed(&s, buf, (size_t)(i / 2) % (size_t)n);
		} else {
			weir_auth_feed(&s, buf, (size_t)n);
			n = take(&s, buf);
			weir_auth_feed(&c, buf, (size_t)n);
			n = take(&c, buf);
			rc = weir_auth_feed(&s, buf, (size_t)(i / 2) % (size_t)n);
		}
		wrong_rc += rc != -EPROTO;
		accepted += weir_auth_result(&s) != WEIR_AUTH_REFUSED;
		told += take(&s, buf) > 0;
		weir_auth_release(&c), weir_auth_release(&s);
	}
	is_int(accepted, 0, "%d attempts each with no secret, a wrong secret, a replayed answer and a "
			    "truncated handshake: none accepted", ATTEMPTS);
	is_int(wrong_rc, 0, "each refused with the right code (-EPROTO, -EACCES), the client told why");
	is_int(told, 4 * ATTEMPTS, "the JobManager has a refusal to send every time");
	int same = 0;
	for (int i = 0; i < ATTEMPTS; i++)
		for (int j = 0; j < i; j++)
			same += !memcmp(nonces[i], nonces[j], WEIR_AUTH_NONCE_LEN);
	is_int(same, 0, "%d challenges, no nonce twice", ATTEMPTS);
	ok(handshake(secret, secret, NULL, NULL, NULL), "a correct client still works afterwards");

	/* a handshake that stops after Hello is never accepted by itself */
	weir_auth_client_init(&c, secret, WEIR__CTL__ROLE__ROLE_CLIENT, NULL);
	weir_auth_server_init(&s, secret);
	pass(&c, &s, NULL, NULL);
	ok(weir_auth_result(&s) == WEIR_AUTH_PENDING && take(&s, buf) > 0 && weir_auth_result(&s) == WEIR_AUTH_PENDING,
	   "stalled after the challenge: pending, never accepted (the transport's deadline closes it)");
	weir_auth_release(&c), weir_auth_release(&s);

	/* the refusal message the JobManager sends says why */
	weir_auth_server_init(&s, secret);
	rc = weir_auth_feed(&s, resp, resp_len);
	weir_msg *m = NULL;
	long n = take(&s, buf);
	int drc = n > 0 ? weir_ctl_decode(buf, (size_t)n, &m) : -1;
	ok(rc == -EPROTO && drc == 0 &&
		   m->body_case == WEIR__CTL__ENVELOPE__BODY_AUTH_RESULT && !m->auth_result->accepted &&
		   !strcmp(m->auth_result->reason, "expected hello, got auth_response"),
	   "answer before hello: refused, AuthResult says '%s'", drc == 0 ? m->auth_result->reason : "?");
	weir_ctl_free(m);
	ok(weir_auth_feed(&s, hello, hello_len) == -EALREADY && weir_auth_result(&s) == WEIR_AUTH_REFUSED,
	   "after a refusal nothing more is taken");
	weir_auth_release(&s);

	/* input while output waits */
	weir_auth_server_init(&s, secret);
	weir_auth_feed(&s, hello, hello_len);
	ok(weir_auth_feed(&s, hello, hello_len) == -EBUSY, "input before the output was taken: -EBUSY");
	take(&s, buf);
	ok(weir_auth_feed(&s, hello, hello_len) == -EPROTO && strstr(weir_auth_reason(&s), "expected auth_response, got hello"),
	   "hello twice: refused (%s)", weir_auth_reason(&s));
	weir_auth_release(&s);

	/* a peer of protocol version 2 */
	{
		uint8_t v2[64];
		memcpy(v2, hello, hello_len);
		ok(v2[0] == 0x08 && v2[1] == 0x01, "hello starts with version 1");
		v2[1] = 0x02;
		weir_auth_server_init(&s, secret);
		rc = weir_auth_feed(&s, v2, hello_len);
		ok(rc == -EPROTO && strstr(weir_auth_reason(&s), "protocol version 2, this weir speaks version 1"),
		   "version 2 refused (%s)", weir_auth_reason(&s));
		weir_auth_release(&s);
	}

	/* a JobManager that does not know the secret, as the client sees it */
	for (int fake = 0; fake < 2; fake++) {
		Weir__Ctl__Challenge ch = WEIR__CTL__CHALLENGE__INIT;
		Weir__Ctl__AuthResult ar = WEIR__CTL__AUTH_RESULT__INIT;
		weir_msg out = WEIR__CTL__ENVELOPE__INIT;
		uint8_t nonce[32], mac[32];
		RAND_bytes(nonce, sizeof(nonce));
		RAND_bytes(mac, sizeof(mac));
		weir_auth_client_init(&c, secret, WEIR__CTL__ROLE__ROLE_CLIENT, NULL);
		take(&c, buf);
		ch.server_nonce = (ProtobufCBinaryData){ 32, nonce };
		out.body_case = WEIR__CTL__ENVELOPE__BODY_CHALLENGE;
		out.challenge = &ch;
		n = weir_ctl_encode(&out, buf, sizeof(buf));
		weir_auth_feed(&c, buf, (size_t)n);
		take(&c, buf);
		ar.accepted = 1;
		if (fake == 0) {
			ar.has_server_mac = 1;
			ar.server_mac = (ProtobufCBinaryData){ 32, mac };
		}
		out.body_case = WEIR__CTL__ENVELOPE__BODY_AUTH_RESULT;
		out.auth_result = &ar;
		n = weir_ctl_encode(&out, buf, sizeof(buf));
		rc = weir_auth_feed(&c, buf, (size_t)n);
		ok(rc == -EACCES && weir_auth_result(&c) == WEIR_AUTH_REFUSED,
		   "client refuses a JobManager %s (%s)", fake == 1 ? "that accepts without proof" : "with a wrong proof",
		   weir_auth_reason(&c));
		weir_auth_release(&c);
	}
	/* the client's own MAC reflected as the server's proof */
	{
		weir_auth_client_init(&c, secret, WEIR__CTL__ROLE__ROLE_CLIENT, NULL);
		weir_auth_server_init(&s, secret);
		pass(&c, &s, NULL, NULL);
		pass(&s, &c, NULL, NULL);
		weir_msg *cm = NULL;
		n = take(&c, buf);
		weir_ctl_decode(buf, (size_t)n, &cm);
		Weir__Ctl__AuthResult ar = WEIR__CTL__AUTH_RESULT__INIT;
		weir_msg out = WEIR__CTL__ENVELOPE__INIT;
		ar.accepted = 1;
		ar.has_server_mac = 1;
		ar.server_mac = cm->auth_response->mac;
		out.body_case = WEIR__CTL__ENVELOPE__BODY_AUTH_RESULT;
		out.auth_result = &ar;
		n = weir_ctl_encode(&out, buf, sizeof(buf));
		weir_ctl_free(cm);
		rc = weir_auth_feed(&c, buf, (size_t)n);
		ok(rc == -EACCES, "client refuses its own MAC reflected as the JobManager's proof (%s)",
		   weir_auth_reason(&c));
		weir_auth_release(&c), weir_auth_release(&s);
	}
}

int main(void)
{
	struct weir_auth_secret secret;

	snprintf(dir, sizeof(dir), "/tmp/weir-t1520-XXXXXX");
	if (!mkdtemp(dir))
		bail("mkdtemp: %m");
	atexit(cleanup);
	secret_files(&secret);
	handshakes(&secret);
	weir_auth_secret_wipe(&secret);
	done_testing();
}
