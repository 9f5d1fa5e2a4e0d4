/*
 * t1500-ctl-codec: every control-plane message survives encode and decode
 * unchanged; hand-made bad payloads are refused with -EPROTO (or
 * -EMSGSIZE) and a trail naming the field and the problem; the encoder
 * refuses what the decoder would.
 */
#include "base/err.h"
#include "ctl/codec.h"
#include "t15-ctl-msgs.h"
#include "tap.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

struct raw {
	uint8_t *b;
	size_t n, cap;
};

static void put(struct raw *r, const void *p, size_t n)
{
	if (!n)
		return;
	if (r->n + n > r->cap) {
		r->cap = (r->n + n) * 2 + 64;
		r->b = realloc(r->b, r->cap);
		if (!r->b)
			bail("out of memory");
	}
	memcpy(r->b + r->n, p, n);
	r->n += n;
}

static void put_varint(struct raw *r, uint64_t v)
{
	uint8_t b[10];
	size_t n = 0;
	do {
		b[n] = (uint8_t)(v & 0x7f);
		v >>= 7;
		if (v)
			b[n] |= 0x80;
		n++;
	} while (v);
	put(r, b, n);
}

static void put_tag(struct raw *r, unsigned id, unsigned wt) { put_varint(r, (uint64_t)id << 3 | wt); }
static void put_uint(struct raw *r, unsigned id, uint64_t v) { put_tag(r, id, 0), put_varint(r, v); }
static void put_lenp(struct raw *r, unsigned id, const void *p, size_t n)
{
	put_tag(r, id, 2);
	put_varint(r, n);
	put(r, p, n);
}
static void put_str(struct raw *r, unsigned id, const char *s) { put_lenp(r, id, s, strlen(s)); }
static void put_msg(struct raw *r, unsigned id, const struct raw *m) { put_lenp(r, id, m->b, m->n); }
static void raw_free(struct raw *r) { free(r->b), *r = (struct raw){ 0 }; }

/* Decode r; expect rc and, when refused, a trail holding `what`. */
static void expect(const struct raw *r, int rc_want, const char *what, const char *name)
{
	weir_msg *m = (weir_msg *)1;
	weir_err_clear();
	int rc = weir_ctl_decode(r->b, r->n, &m);
	bool good = rc == rc_want && (rc == 0 ? m != NULL : m == NULL);
	if (good && what)
		good = strstr(weir_err_msg(), what) != NULL;
	ok(good, "%s: %s", name, rc ? weir_err_msg() : "accepted");
	if (!good)
		diag("  rc %d (want %d), trail '%s', want it to hold '%s'", rc, rc_want, weir_err_msg(),
		     what ? what : "");
	if (rc == 0)
		weir_ctl_free(m);
}

/* An Envelope with a Hello body built from raw hello bytes. */
static struct raw env_with(unsigned version, unsigned body_id, const struct raw *body)
{
	struct raw r = { 0 };
	put_uint(&r, 1, version);
	put_msg(&r, body_id, body);
	return r;
}

static void round_trips(void)
{
	for (int c = CTL_FIRST_BODY; c <= CTL_LAST_BODY; c++) {
		weir_msg in, *out = NULL;
		uint8_t *enc = NULL;
		uint8_t again[8192];
		ctl_example((Weir__Ctl__Envelope__BodyCase)c, &in);
		const char *name = weir_ctl_body_name(in.body_case);
		long n = weir_ctl_encode_alloc(&in, &enc);
		if (!ok(n > 0, "%s: encodes (%ld bytes)", name, n)) {
			diag("  %s", weir_err_msg());
			continue;
		}
		int rc = weir_ctl_decode(enc, (size_t)n, &out);
		if (!ok(rc == 0, "%s: decodes", name)) {
			diag("  %s", weir_err_msg());
			free(enc);
			continue;
		}
		long n2 = weir_ctl_encode(out, again, sizeof(again));
		ok(out->body_case == in.body_case && out->version == WEIR_CTL_VERSION && out->has_request_id &&
			   out->request_id == in.request_id && n2 == n && !memcmp(enc, again, (size_t)n),
		   "%s: same body, version, request id, and the same bytes again", name);
		weir_ctl_free(out);
		free(enc);
	}
}

/* A few decoded fields checked one by one, beyond the byte comparison. */
static void fields(void)
{
	weir_msg in, *out;
	uint8_t buf[8192];

	ctl_example(WEIR__CTL__ENVELOPE__BODY_SUBMIT_JOB, &in);
	long n = weir_ctl_encode(&in, buf, sizeof(buf));
	if (n < 0 || weir_ctl_decode(buf, (size_t)n, &out) < 0)
		bail("submit_job: %s", weir_err_msg());
	const Weir__Ctl__SubmitJob *s = out->submit_job;
	ok(!strcmp(s->name, "wordcount.so") && s->n_args == 3 && !strcmp(s->args[2], ex_args[2]) &&
		   s->parallelism == 4 && s->spread && !s->detached && s->object.len == sizeof(ex_data) &&
		   !memcmp(s->object.data, ex_data, sizeof(ex_data)) && !memcmp(s->object_sha256.data, ex_digest, 32),
	   "submit_job: name, UTF-8 args, flags, object and digest");
	ok(s->graph && s->graph->n_vertices == 3 && s->graph->n_edges == 2 &&
		   !strcmp(s->graph->vertices[0]->name, "source -> tokenize") &&
		   s->graph->edges[1]->partitioning == WEIR__CTL__PARTITIONING__PART_REBALANCE &&
		   s->graph->max_parallelism == 128,
	   "submit_job: the graph's vertices and edges");
	weir_ctl_free(out);

	ctl_example(WEIR__CTL__ENVELOPE__BODY_DEPLOY, &in);
	n = weir_ctl_encode(&in, buf, sizeof(buf));
	if (n < 0 || weir_ctl_decode(buf, (size_t)n, &out) < 0)
		bail("deploy: %s", weir_err_msg());
	const Weir__Ctl__Deploy *d = out->deploy;
	ok(d->job_id == 7 && d->n_placements == 6 && d->placements[5]->vertex == 2 && d->placements[5]->index == 1 &&
		   d->placements[5]->tm_id == 2 && d->placements[5]->slot == 2 && d->n_args == 2,
	   "deploy: every placement");
	weir_ctl_free(out);

	ctl_example(WEIR__CTL__ENVELOPE__BODY_CLUSTER_STATUS, &in);
	n = weir_ctl_encode(&in, buf, sizeof(buf));
	if (n < 0 || weir_ctl_decode(buf, (size_t)n, &out) < 0)
		bail("cluster_status: %s", weir_err_msg());
	const Weir__Ctl__ClusterStatus *cs = out->cluster_status;
	ok(cs->n_taskmanagers == 2 && cs->taskmanagers[1]->pool && cs->taskmanagers[1]->pool->numa_node == -1 &&
		   !strcmp(cs->taskmanagers[1]->pool->name, "weir-c0ffee-tm2") && cs->slots_total == 8,
	   "cluster_status: TaskManagers and their pools (negative NUMA node too)");
	weir_ctl_free(out);

	ctl_example(WEIR__CTL__ENVELOPE__BODY_HEARTBEAT, &in);
	in.has_request_id = 0;
	in.version = 99;	/* the encoder stamps its own */
	n = weir_ctl_encode(&in, buf, sizeof(buf));
	if (n < 0 || weir_ctl_decode(buf, (size_t)n, &out) < 0)
		bail("heartbeat: %s", weir_err_msg());
	ok(out->version == WEIR_CTL_VERSION && !out->has_request_id && out->heartbeat->seq == UINT64_MAX - 1,
	   "heartbeat: version stamped by the encoder, no request id, 64-bit sequence");
	weir_ctl_free(out);
}

static void refusals(void)
{
	struct raw r = { 0 }, b = { 0 }, e;
	char big[WEIR_CTL_MAX_STRING + 2];

	expect(&r, -EPROTO, "Envelope.version: missing (required)", "empty payload");
	ok(weir_ctl_decode(NULL, 0, &(weir_msg *){ NULL }) == -EPROTO, "NULL, 0 bytes: refused");

	put_uint(&r, 1, 1);
	expect(&r, -EPROTO, "Envelope: no body", "version and no body");
	raw_free(&r);

	put_uint(&b, 1, WEIR__CTL__ROLE__ROLE_CLIENT);
	e = env_with(2, 16, &b);
	expect(&e, -EPROTO, "protocol version 2, this weir speaks version 1", "version 2");
	raw_free(&e);
	e = env_with(1, 16, &b);
	expect(&e, 0, NULL, "a minimal hello");
	put_uint(&e, 99, 5);
	put_str(&e, 100, "from a newer weir");
	expect(&e, 0, NULL, "unknown fields are skipped");
	raw_free(&e);
	raw_free(&b);

	put_uint(&b, 1, 0);
	e = env_with(1, 16, &b);
	expect(&e, -EPROTO, "Envelope.hello: Hello.role: 0 is not a Role", "role 0");
	raw_free(&e), raw_free(&b);
	put_uint(&b, 1, 3);
	e = env_with(1, 16, &b);
	expect(&e, -EPROTO, "Hello.role: 3 is not a Role", "role 3");
	raw_free(&e), raw_free(&b);
	put_uint(&b, 1, UINT64_MAX);
	e = env_with(1, 16, &b);
	expect(&e, -EPROTO, "Hello.role: -1 is not a Role", "role -1 (ten-byte varint)");
	raw_free(&e), raw_free(&b);

	put_str(&b, 2, "no role");
	e = env_with(1, 16, &b);
	expect(&e, -EPROTO, "Hello.role: missing (required)", "hello without a role");
	raw_free(&e), raw_free(&b);

	static const struct { const char *s; size_t n; const char *what, *name; } bad_strings[] = {
		{ "ab\xc3\x28", 4, "Hello.name: not UTF-8 at byte 2", "string with a broken sequence" },
		{ "a\0b", 3, "Hello.name: NUL at byte 1", "string with a NUL" },
		{ "\xc0\xaf", 2, "not UTF-8 at byte 0", "overlong UTF-8" },
		{ "x\xed\xa0\x80", 4, "not UTF-8 at byte 1", "UTF-8 surrogate" },
		{ "\xf4\x90\x80\x80", 4, "not UTF-8 at byte 0", "past U+10FFFF" },
		{ "\xe2\x82", 2, "not UTF-8 at byte 0", "UTF-8 cut short" },
		{ "\xff", 1, "not UTF-8 at byte 0", "byte 0xff" },
	};
	for (size_t i = 0; i < sizeof(bad_strings) / sizeof(bad_strings[0]); i++) {
		put_uint(&b, 1, 1);
		put_lenp(&b, 2, bad_strings[i].s, bad_strings[i].n);
		e = env_with(1, 16, &b);
		expect(&e, -EPROTO, bad_strings[i].what, bad_strings[i].name);
		raw_free(&e), raw_free(&b);
	}
	memset(big, 'x', sizeof(big));
	put_uint(&b, 1, 1);
	put_lenp(&b, 2, big, WEIR_CTL_MAX_STRING);
	e = env_with(1, 16, &b);
	expect(&e, 0, NULL, "string of exactly the limit");
	raw_free(&e), raw_free(&b);
	put_uint(&b, 1, 1);
	put_lenp(&b, 2, big, WEIR_CTL_MAX_STRING + 1);
	e = env_with(1, 16, &b);
	expect(&e, -EPROTO, "Hello.name: string of 4097 bytes (at most 4096)", "string one past the limit");
	raw_free(&e), raw_free(&b);

	put_lenp(&b, 1, ex_digest, 31);
	e = env_with(1, 17, &b);
	expect(&e, -EPROTO, "Challenge.server_nonce: 31 bytes, not 32", "31-byte nonce");
	raw_free(&e), raw_free(&b);
	put_lenp(&b, 1, ex_digest, 32);
	put_lenp(&b, 2, ex_data, 33);
	e = env_with(1, 18, &b);
	expect(&e, -EPROTO, "AuthResponse.mac: 33 bytes, not 32", "33-byte mac");
	raw_free(&e), raw_free(&b);

	put_uint(&b, 1, 2);
	e = env_with(1, 19, &b);
	expect(&e, -EPROTO, "AuthResult.accepted: bool value 2", "bool 2");
	raw_free(&e), raw_free(&b);

	put_uint(&b, 1, 1);
	e = env_with(1, 16, &b);
	put_msg(&e, 20, &(struct raw){ 0 });
	expect(&e, -EPROTO, "Envelope.ok: given with hello", "two bodies");
	raw_free(&e);
	e = env_with(1, 16, &b);
	put_uint(&e, 1, 1);
	expect(&e, -EPROTO, "Envelope.version: given twice", "version twice");
	raw_free(&e);
	e = env_with(1, 16, &b);
	put_msg(&e, 16, &b);
	expect(&e, -EPROTO, "Envelope.hello: given twice", "hello twice (protobuf-c would merge)");
	raw_free(&e);

	e = env_with(1, 16, &b);
	e.n--;
	expect(&e, -EPROTO, "past the end", "cut by one byte");
	raw_free(&e);
	e = env_with(1, 16, &b);
	put_tag(&e, 3, 0);
	expect(&e, -EPROTO, "field 3: truncated varint", "tag without its value");
	raw_free(&e);
	e = env_with(1, 16, &b);
	put_tag(&e, 3, 3);
	expect(&e, -EPROTO, "wire type 3", "a group");
	raw_free(&e);
	e = env_with(1, 16, &b);
	put_tag(&e, 3, 1);
	put(&e, "1234", 4);
	expect(&e, -EPROTO, "truncated fixed64", "fixed64 cut short");
	raw_free(&e);
	e = env_with(1, 16, &b);
	put(&e, "\x00\x01", 2);
	expect(&e, -EPROTO, "field number 0", "field number 0");
	raw_free(&e);
	e = env_with(1, 16, &b);
	put(&e, "\x18\x80\x80\x80\x80\x80\x80\x80\x80\x80\x80\x01", 12);
	expect(&e, -EPROTO, "overlong varint", "eleven-byte varint");
	raw_free(&e);
	raw_free(&b);

	put_lenp(&r, 1, "x", 1);
	expect(&r, -EPROTO, "Envelope.version: wire type 2, expected 0", "version as bytes");
	raw_free(&r);
	put_uint(&r, 1, 1ull << 32);
	expect(&r, -EPROTO, "Envelope.version: value 4294967296 out of 32-bit range", "version past 32 bits");
	raw_free(&r);

	/* counts: one repeated field, then the whole message */
	put_str(&b, 1, "job");
	put_lenp(&b, 2, ex_digest, 32);
	put_uint(&b, 3, 10);
	put_uint(&b, 5, 1);
	for (unsigned i = 0; i < WEIR_CTL_MAX_REPEATED; i++)
		put_lenp(&b, 4, "", 0);
	e = env_with(1, 25, &b);
	expect(&e, 0, NULL, "16384 args");
	raw_free(&e);
	put_lenp(&b, 4, "", 0);
	e = env_with(1, 25, &b);
	expect(&e, -EPROTO, "SubmitJob.args: more than 16384 elements", "16385 args");
	raw_free(&e), raw_free(&b);
	e = (struct raw){ 0 };
	put_uint(&e, 1, 1);
	for (unsigned i = 0; i <= WEIR_CTL_MAX_ELEMENTS; i++)
		put_uint(&e, 1000, 0);
	put_msg(&e, 34, &(struct raw){ 0 });
	expect(&e, -EPROTO, "more than 65536 unknown fields and elements", "65537 unknown fields");
	raw_free(&e);

	/* sizes */
	uint8_t *huge = calloc(1, WEIR_CTL_MAX_CHUNK + 64);
	if (!huge)
		bail("out of memory");
	put_lenp(&b, 1, ex_digest, 32);
	put_uint(&b, 2, 0);
	put_lenp(&b, 3, huge, WEIR_CTL_MAX_CHUNK);
	e = env_with(1, 26, &b);
	expect(&e, 0, NULL, "chunk of exactly 1 MiB");
	raw_free(&e), raw_free(&b);
	put_lenp(&b, 1, ex_digest, 32);
	put_uint(&b, 2, 0);
	put_lenp(&b, 3, huge, WEIR_CTL_MAX_CHUNK + 1);
	e = env_with(1, 26, &b);
	expect(&e, -EPROTO, "ObjectChunk.data: 1048577 bytes", "chunk of 1 MiB + 1");
	raw_free(&e), raw_free(&b);
	free(huge);
	weir_msg *m;
	uint8_t *frame = calloc(1, WEIR_CTL_MAX_FRAME + 1);
	if (!frame)
		bail("out of memory");
	int rc = weir_ctl_decode(frame, WEIR_CTL_MAX_FRAME + 1, &m);
	ok(rc == -EMSGSIZE && strstr(weir_err_msg(), "4194305 bytes"), "a frame past 4 MiB: -EMSGSIZE (%s)",
	   weir_err_msg());
	free(frame);
}

static void encoder_refusals(void)
{
	weir_msg m = WEIR__CTL__ENVELOPE__INIT;
	Weir__Ctl__Hello h = WEIR__CTL__HELLO__INIT;
	Weir__Ctl__Error err = WEIR__CTL__ERROR__INIT;
	Weir__Ctl__FetchObject f = WEIR__CTL__FETCH_OBJECT__INIT;
	uint8_t buf[256];
	long n;

	n = weir_ctl_encode(&m, buf, sizeof(buf));
	ok(n == -EPROTO && strstr(weir_err_msg(), "Envelope: no body"), "encode: no body (%s)", weir_err_msg());
	m.body_case = WEIR__CTL__ENVELOPE__BODY_HELLO;
	m.hello = &h;
	h.role = 0;	/* (INIT sets the first value) */
	n = weir_ctl_encode(&m, buf, sizeof(buf));
	ok(n == -EPROTO && strstr(weir_err_msg(), "encode hello: decode") == NULL &&
		   strstr(weir_err_msg(), "Hello.role: 0 is not a Role"),
	   "encode: unset enum (%s)", weir_err_msg());
	h.role = WEIR__CTL__ROLE__ROLE_CLIENT;
	h.name = "bad \xc3";
	n = weir_ctl_encode(&m, buf, sizeof(buf));
	ok(n == -EPROTO && strstr(weir_err_msg(), "Hello.name: not UTF-8"), "encode: bad UTF-8 (%s)", weir_err_msg());
	h.name = NULL;
	n = weir_ctl_encode(&m, buf, 2);
	ok(n == -EMSGSIZE, "encode: buffer too small (%s)", weir_err_msg());
	n = weir_ctl_encode(&m, buf, sizeof(buf));
	ok(n > 0, "encode: then fine");

	m.body_case = WEIR__CTL__ENVELOPE__BODY_ERROR;
	m.error = &err;
	n = weir_ctl_encode(&m, buf, sizeof(buf));
	ok(n == -EPROTO && strstr(weir_err_msg(), "encode error"), "encode: NULL required string (%s)",
	   weir_err_msg());
	m.body_case = WEIR__CTL__ENVELOPE__BODY_FETCH_OBJECT;
	m.fetch_object = &f;
	f.object_sha256 = (ProtobufCBinaryData){ 20, ex_digest };
	n = weir_ctl_encode(&m, buf, sizeof(buf));
	ok(n == -EPROTO && strstr(weir_err_msg(), "FetchObject.object_sha256: 20 bytes, not 32"),
	   "encode: short digest (%s)", weir_err_msg());

	is_string(weir_ctl_body_name(WEIR__CTL__ENVELOPE__BODY_SUBMIT_JOB), "submit_job", "body name");
	is_string(weir_ctl_body_name(WEIR__CTL__ENVELOPE__BODY__NOT_SET), "none", "no body's name");
	is_string(weir_ctl_body_name((Weir__Ctl__Envelope__BodyCase)2), "unknown", "a non-body field's name");
}

int main(void)
{
	round_trips();
	fields();
	refusals();
	encoder_refusals();
	done_testing();
}
