/*
 * ctl/codec.c - encode and validate-then-decode control-plane messages;
 * see codec.h for what is checked.
 *
 * Why a walk of our own before protobuf-c: protobuf-c checks the wire
 * format and required fields, but says only "failed" (no field, no
 * reason), accepts any enum value and any bytes in a string, merges
 * repeated singular fields, and keeps every unknown field it meets in
 * allocated memory. The walk below reads the bytes once with the
 * generated descriptors and refuses anything outside the rules of
 * weir.proto with a message naming the field; only bytes that passed
 * reach protobuf_c_message_unpack, and that runs with an allocation
 * budget. The walk keeps nothing: one call frame per nesting level and a
 * per-field counter array of at most WALK_MAX_FIELDS entries.
 */
#include "ctl/codec.h"

#include "base/err.h"

#include <errno.h>
#include <protobuf-c/protobuf-c.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

/* CVE-2022-48468: protobuf-c < 1.4.1 overflows in parse_required_member. */
#if PROTOBUF_C_VERSION_NUMBER < 1004001
#error "protobuf-c >= 1.4.1 is required (CVE-2022-48468)"
#endif

#define WALK_MAX_FIELDS 64

struct walk {
	uint32_t elements;	/* repeated elements and unknown fields so far */
};

/* Returns 0 and the value, or -1 (truncated) / -2 (more than 10 bytes). */
static int read_varint(const uint8_t *p, size_t len, size_t *pos, uint64_t *v)
{
	uint64_t r = 0;
	for (unsigned i = 0; i < 10; i++) {
		if (*pos >= len)
			return -1;
		uint8_t b = p[(*pos)++];
		if (i == 9 && b > 1)
			return -2;
		r |= (uint64_t)(b & 0x7f) << (7 * i);
		if (!(b & 0x80)) {
			*v = r;
			return 0;
		}
	}
	return -2;
}

/* Index of the first byte that breaks strict UTF-8 (or is NUL), or -1. */
static long utf8_bad(const uint8_t *s, size_t n)
{
	size_t i = 0;
	while (i < n) {
		uint8_t c = s[i];
		size_t more;
		uint8_t lo = 0x80, hi = 0xbf;	/* range of the first continuation */
		if (c == 0)
			return (long)i;
		if (c < 0x80) {
			i++;
			continue;
		}
		if (c >= 0xc2 && c <= 0xdf)
			more = 1;
		else if (c == 0xe0)
			more = 2, lo = 0xa0;		/* no overlongs */
		else if (c == 0xed)
			more = 2, hi = 0x9f;		/* no surrogates */
		else if (c >= 0xe1 && c <= 0xef)
			more = 2;
		else if (c == 0xf0)
			more = 3, lo = 0x90;
		else if (c >= 0xf1 && c <= 0xf3)
			more = 3;
		else if (c == 0xf4)
			more = 3, hi = 0x8f;		/* <= U+10FFFF */
		else
			return (long)i;
		if (n - i - 1 < more)
			return (long)i;
		if (s[i + 1] < lo || s[i + 1] > hi)
			return (long)i;
		for (size_t k = 2; k <= more; k++)
			if ((s[i + k] & 0xc0) != 0x80)
				return (long)i;
		i += more + 1;
	}
	return -1;
}

static bool ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);
	return n >= m && strcmp(s + n - m, suffix) == 0;
}

/* The bytes fields that carry a SHA-256, a nonce or an HMAC. */
static bool is_digest(const ProtobufCFieldDescriptor *f)
{
	return ends_with(f->name, "sha256") || ends_with(f->name, "nonce") || ends_with(f->name, "mac");
}

static int wire_type_of(ProtobufCType t)
{
	switch (t) {
	case PROTOBUF_C_TYPE_INT32: case PROTOBUF_C_TYPE_SINT32: case PROTOBUF_C_TYPE_UINT32:
	case PROTOBUF_C_TYPE_INT64: case PROTOBUF_C_TYPE_SINT64: case PROTOBUF_C_TYPE_UINT64:
	case PROTOBUF_C_TYPE_BOOL: case PROTOBUF_C_TYPE_ENUM:
		return 0;
	case PROTOBUF_C_TYPE_FIXED64: case PROTOBUF_C_TYPE_SFIXED64: case PROTOBUF_C_TYPE_DOUBLE:
		return 1;
	case PROTOBUF_C_TYPE_FIXED32: case PROTOBUF_C_TYPE_SFIXED32: case PROTOBUF_C_TYPE_FLOAT:
		return 5;
	default:
		return 2;
	}
}

#define FIELD_ERR(d, f, ...) \
	(weir_err_set(__VA_ARGS__), weir_err_wrap("%s.%s", (d)->short_name, (f)->name), -EPROTO)

/* A varint value of field f (already read): range, enum, bool. */
static int check_varint(const ProtobufCMessageDescriptor *d, const ProtobufCFieldDescriptor *f, uint64_t v)
{
	int64_t sv = (int64_t)v;
	switch (f->type) {
	case PROTOBUF_C_TYPE_BOOL:
		if (v > 1)
			return FIELD_ERR(d, f, "bool value %llu", (unsigned long long)v);
		return 0;
	case PROTOBUF_C_TYPE_UINT32:
	case PROTOBUF_C_TYPE_SINT32:
		if (v > UINT32_MAX)
			return FIELD_ERR(d, f, "value %llu out of 32-bit range", (unsigned long long)v);
		return 0;
	case PROTOBUF_C_TYPE_INT32:
		if (sv < INT32_MIN || sv > INT32_MAX)
			return FIELD_ERR(d, f, "value %lld out of 32-bit range", (long long)sv);
		return 0;
	case PROTOBUF_C_TYPE_ENUM: {
		const ProtobufCEnumDescriptor *e = f->descriptor;
		if (sv < INT32_MIN || sv > INT32_MAX || !protobuf_c_enum_descriptor_get_value(e, (int)sv))
			return FIELD_ERR(d, f, "%lld is not a %s", (long long)sv, e->short_name);
		return 0;
	}
	default:
		return 0;
	}
}

static int count_element(struct walk *w, const ProtobufCMessageDescriptor *d,
			 const ProtobufCFieldDescriptor *f, uint32_t *count)
{
	if (++*count > WEIR_CTL_MAX_REPEATED)
		return FIELD_ERR(d, f, "more than %u elements", WEIR_CTL_MAX_REPEATED);
	if (++w->elements > WEIR_CTL_MAX_ELEMENTS)
		return FIELD_ERR(d, f, "more than %u repeated elements in the message", WEIR_CTL_MAX_ELEMENTS);
	return 0;
}

/* A packed repeated scalar: the elements inside one length-delimited run. */
static int walk_packed(struct walk *w, const ProtobufCMessageDescriptor *d, const ProtobufCFieldDescriptor *f,
		       const uint8_t *p, size_t len, uint32_t *count)
{
	int wt = wire_type_of(f->type);
	size_t pos = 0;
	while (pos < len) {
		if (wt == 0) {
			uint64_t v;
			if (read_varint(p, len, &pos, &v) < 0)
				return FIELD_ERR(d, f, "bad varint in packed run");
			int rc = check_varint(d, f, v);
			if (rc < 0)
				return rc;
		} else {
			size_t sz = wt == 1 ? 8 : 4;
			if (len - pos < sz)
				return FIELD_ERR(d, f, "packed run of %zu bytes is not a multiple of %zu", len, sz);
			pos += sz;
		}
		int rc = count_element(w, d, f, count);
		if (rc < 0)
			return rc;
	}
	return 0;
}

static int walk_msg(struct walk *w, const ProtobufCMessageDescriptor *d, const uint8_t *p, size_t len,
		    unsigned depth);

/* A length-delimited value of field f: string, bytes or a message. */
static int check_delimited(struct walk *w, const ProtobufCMessageDescriptor *d, const ProtobufCFieldDescriptor *f,
			   const uint8_t *p, size_t n, unsigned depth)
{
	switch (f->type) {
	case PROTOBUF_C_TYPE_STRING: {
		if (n > WEIR_CTL_MAX_STRING)
			return FIELD_ERR(d, f, "string of %zu bytes (at most %u)", n, WEIR_CTL_MAX_STRING);
		long bad = utf8_bad(p, n);
		if (bad >= 0)
			return FIELD_ERR(d, f, p[bad] ? "not UTF-8 at byte %ld" : "NUL at byte %ld", bad);
		return 0;
	}
	case PROTOBUF_C_TYPE_BYTES:
		if (is_digest(f) && n != WEIR_CTL_DIGEST_LEN)
			return FIELD_ERR(d, f, "%zu bytes, not %u", n, WEIR_CTL_DIGEST_LEN);
		if ((!strcmp(f->name, "data") || !strcmp(f->name, "object")) && n > WEIR_CTL_MAX_CHUNK)
			return FIELD_ERR(d, f, "%zu bytes (at most %u in one message)", n, WEIR_CTL_MAX_CHUNK);
		return 0;
	case PROTOBUF_C_TYPE_MESSAGE:
		if (depth + 1 >= WEIR_CTL_MAX_DEPTH)
			return FIELD_ERR(d, f, "nested more than %u deep", WEIR_CTL_MAX_DEPTH);
		if (walk_msg(w, f->descriptor, p, n, depth + 1) < 0) {
			weir_err_wrap("%s.%s", d->short_name, f->name);
			return -EPROTO;
		}
		return 0;
	default:
		return FIELD_ERR(d, f, "length-delimited value for a scalar");
	}
}

/* The extent of field id's value of wire type wt at p[*pos] (any field,
 * known or not): a varint in *v, or *n bytes (at *val for wire type 2);
 * *pos moves past it. 0, or -EPROTO with the trail set. */
static int read_value(const ProtobufCMessageDescriptor *d, const uint8_t *p, size_t len, size_t *pos, uint64_t id,
		      int wt, uint64_t *v, const uint8_t **val, size_t *n)
{
	int r;
	switch (wt) {
	case 0:
		r = read_varint(p, len, pos, v);
		if (r < 0) {
			weir_err_set("%s: field %llu: %s varint", d->short_name, (unsigned long long)id,
				     r == -1 ? "truncated" : "overlong");
			return -EPROTO;
		}
		return 0;
	case 1:
	case 5:
		*n = wt == 1 ? 8 : 4;
		if (len - *pos < *n) {
			weir_err_set("%s: field %llu: truncated fixed%zu", d->short_name, (unsigned long long)id, *n * 8);
			return -EPROTO;
		}
		*pos += *n;
		return 0;
	case 2:
		r = read_varint(p, len, pos, v);
		if (r < 0 || *v > len - *pos) {
			weir_err_set("%s: field %llu: length %s", d->short_name, (unsigned long long)id,
				     r < 0 ? "truncated" : "past the end of the message");
			return -EPROTO;
		}
		*val = p + *pos;
		*n = (size_t)*v;
		*pos += *n;
		return 0;
	default:
		weir_err_set("%s: field %llu: wire type %d (groups and unknown types are refused)", d->short_name,
			     (unsigned long long)id, wt);
		return -EPROTO;
	}
}

static int walk_msg(struct walk *w, const ProtobufCMessageDescriptor *d, const uint8_t *p, size_t len,
		    unsigned depth)
{
	uint32_t count[WALK_MAX_FIELDS] = { 0 };
	const ProtobufCFieldDescriptor *oneof_seen = NULL;
	bool has_oneof = false;
	size_t pos = 0;

	if (d->n_fields > WALK_MAX_FIELDS) {
		weir_err_set("%s: %u fields, the decoder handles %u", d->short_name, d->n_fields, WALK_MAX_FIELDS);
		return -EPROTO;
	}
	while (pos < len) {
		size_t at = pos;
		uint64_t tag, v = 0;
		int r = read_varint(p, len, &pos, &tag);
		if (r < 0) {
			weir_err_set("%s: %s tag at byte %zu", d->short_name, r == -1 ? "truncated" : "overlong", at);
			return -EPROTO;
		}
		uint64_t id = tag >> 3;
		int wt = (int)(tag & 7);
		if (id == 0 || id > 536870911u) {
			weir_err_set("%s: field number %llu at byte %zu", d->short_name, (unsigned long long)id, at);
			return -EPROTO;
		}
		const ProtobufCFieldDescriptor *f = protobuf_c_message_descriptor_get_field(d, (unsigned)id);
		const uint8_t *val = NULL;
		size_t n = 0;

		r = read_value(d, p, len, &pos, id, wt, &v, &val, &n);
		if (r < 0)
			return r;
		if (!f) {
			/* Unknown: skipped, but protobuf-c keeps it, so it counts. */
			if (++w->elements > WEIR_CTL_MAX_ELEMENTS) {
				weir_err_set("%s: more than %u unknown fields and elements", d->short_name,
					     WEIR_CTL_MAX_ELEMENTS);
				return -EPROTO;
			}
			continue;
		}
		unsigned idx = (unsigned)(f - d->fields);
		bool repeated = f->label == PROTOBUF_C_LABEL_REPEATED;
		int want = wire_type_of(f->type);

		if (repeated && wt == 2 && want != 2) {
			r = walk_packed(w, d, f, val, n, &count[idx]);
			if (r < 0)
				return r;
			continue;
		}
		if (wt != want)
			return FIELD_ERR(d, f, "wire type %d, expected %d", wt, want);
		if (repeated) {
			r = count_element(w, d, f, &count[idx]);
			if (r < 0)
				return r;
		} else if (++count[idx] > 1) {
			return FIELD_ERR(d, f, "given twice");
		}
		if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
			if (oneof_seen)
				return FIELD_ERR(d, f, "given with %s (only one may be)", oneof_seen->name);
			oneof_seen = f;
		}
		if (wt == 0)
			r = check_varint(d, f, v);
		else if (wt == 2)
			r = check_delimited(w, d, f, val, n, depth);
		else
			r = 0;
		if (r < 0)
			return r;
	}

	for (unsigned i = 0; i < d->n_fields; i++) {
		const ProtobufCFieldDescriptor *f = &d->fields[i];
		if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF)
			has_oneof = true;
		if (f->label == PROTOBUF_C_LABEL_REQUIRED && !count[i])
			return FIELD_ERR(d, f, "missing (required)");
	}
	/* weir.proto's one oneof (Envelope.body) must be set. */
	if (has_oneof && !oneof_seen) {
		weir_err_set("%s: no body", d->short_name);
		return -EPROTO;
	}
	return 0;
}

int weir_ctl_validate(const ProtobufCMessageDescriptor *desc, const uint8_t *buf, size_t len)
{
	struct walk w = { 0 };
	if (len > WEIR_CTL_MAX_FRAME) {
		weir_err_set("%s: %zu bytes (at most %u)", desc->short_name, len, WEIR_CTL_MAX_FRAME);
		return -EMSGSIZE;
	}
	if (len && !buf) {
		weir_err_set("%s: no buffer", desc->short_name);
		return -EPROTO;
	}
	return walk_msg(&w, desc, buf, len, 0);
}

/*
 * protobuf-c's allocations for one unpack stop at a budget: what a valid
 * message of `len` bytes can need (structures, arrays, copies of strings
 * and bytes) with room to spare, so a crafted message cannot ask for more.
 */
struct budget {
	size_t left;
};

static void *budget_alloc(void *data, size_t size)
{
	struct budget *b = data;
	if (b && size > b->left)
		return NULL;
	if (b)
		b->left -= size;
	return malloc(size ? size : 1);
}

static void budget_free(void *data, void *ptr) { free(ptr); }

static ProtobufCAllocator plain_allocator = { budget_alloc, budget_free, NULL };

static bool library_checked;

int weir_ctl_decode(const uint8_t *buf, size_t len, weir_msg **out)
{
	*out = NULL;
	/* The header was checked when compiling; the library loaded may differ. */
	if (!__atomic_load_n(&library_checked, __ATOMIC_RELAXED)) {
		if (protobuf_c_version_number() < 1004001) {
			weir_err_set("decode: libprotobuf-c %s is older than 1.4.1 (CVE-2022-48468)",
				     protobuf_c_version());
			return -EPROTO;
		}
		__atomic_store_n(&library_checked, true, __ATOMIC_RELAXED);
	}

	int rc = weir_ctl_validate(&weir__ctl__envelope__descriptor, buf, len);
	if (rc < 0) {
		weir_err_wrap("decode");
		return rc;
	}
	struct budget b = { .left = 16u * 1024 * 1024 + 4 * len };
	ProtobufCAllocator a = { budget_alloc, budget_free, &b };
	weir_msg *m = weir__ctl__envelope__unpack(&a, len, buf);
	if (!m) {
		weir_err_set("decode: protobuf-c refused the message%s",
			     b.left < 4096 ? " (allocation budget spent)" : "");
		return b.left < 4096 ? -ENOMEM : -EPROTO;
	}
	if (m->version != WEIR_CTL_VERSION) {
		weir_err_set("decode: protocol version %u, this weir speaks version %u", m->version,
			     WEIR_CTL_VERSION);
		weir_ctl_free(m);
		return -EPROTO;
	}
	*out = m;
	return 0;
}

void weir_ctl_free(weir_msg *m)
{
	if (m)
		weir__ctl__envelope__free_unpacked(m, &plain_allocator);
}

const char *weir_ctl_body_name(Weir__Ctl__Envelope__BodyCase c)
{
	if (c == WEIR__CTL__ENVELOPE__BODY__NOT_SET)
		return "none";
	const ProtobufCFieldDescriptor *f =
		protobuf_c_message_descriptor_get_field(&weir__ctl__envelope__descriptor, (unsigned)c);
	return f && (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) ? f->name : "unknown";
}

/* The stamped copy of m, after protobuf-c's own check (NULL pointers). */
static int encode_prepare(const weir_msg *m, weir_msg *copy, size_t *size)
{
	*copy = *m;
	copy->version = WEIR_CTL_VERSION;
	if (!protobuf_c_message_check(&copy->base)) {
		weir_err_set("encode %s: a required field is unset or a pointer is NULL",
			     weir_ctl_body_name(m->body_case));
		return -EPROTO;
	}
	*size = protobuf_c_message_get_packed_size(&copy->base);
	if (*size > WEIR_CTL_MAX_FRAME) {
		weir_err_set("encode %s: %zu bytes (at most %u)", weir_ctl_body_name(m->body_case), *size,
			     WEIR_CTL_MAX_FRAME);
		return -EMSGSIZE;
	}
	return 0;
}

static long encode_finish(const weir_msg *m, const uint8_t *buf, size_t len)
{
	int rc = weir_ctl_validate(&weir__ctl__envelope__descriptor, buf, len);
	if (rc < 0) {
		weir_err_wrap("encode %s", weir_ctl_body_name(m->body_case));
		return rc;
	}
	return (long)len;
}

long weir_ctl_encode(const weir_msg *m, uint8_t *buf, size_t cap)
{
	weir_msg copy;
	size_t size;
	int rc = encode_prepare(m, &copy, &size);
	if (rc < 0)
		return rc;
	if (size > cap) {
		weir_err_set("encode %s: %zu bytes, the buffer holds %zu", weir_ctl_body_name(m->body_case), size,
			     cap);
		return -EMSGSIZE;
	}
	size_t len = protobuf_c_message_pack(&copy.base, buf);
	return encode_finish(m, buf, len);
}

long weir_ctl_encode_alloc(const weir_msg *m, uint8_t **out)
{
	weir_msg copy;
	size_t size;
	*out = NULL;
	int rc = encode_prepare(m, &copy, &size);
	if (rc < 0)
		return rc;
	uint8_t *buf = malloc(size ? size : 1);
	if (!buf) {
		weir_err_errno(ENOMEM, "encode %s", weir_ctl_body_name(m->body_case));
		return -ENOMEM;
	}
	size_t len = protobuf_c_message_pack(&copy.base, buf);
	long r = encode_finish(m, buf, len);
	if (r < 0) {
		free(buf);
		return r;
	}
	*out = buf;
	return r;
}
