/*
 * ctl/codec.h - control-plane messages: encode, and decode with validation.
 *
 * Every control-plane frame's payload is one weir.ctl.Envelope
 * (ctl/weir.proto) packed with protobuf-c. This module turns an Envelope
 * into bytes and bytes back into an Envelope, and it is the only place
 * that trusts nothing: a decoded Envelope has passed every check below,
 * so the JobManager, TaskManagers and client read its fields without
 * checking them again (their meaning - does job 7 exist - is theirs).
 *
 * What decoding checks, before protobuf-c sees the bytes (a walk over the
 * wire format driven by the generated descriptors, so that a new field in
 * weir.proto is covered without code here):
 *  - the payload is at most WEIR_CTL_MAX_FRAME bytes;
 *  - wire types match the schema, varints end within 10 bytes, lengths
 *    stay inside their message, no groups, nesting at most 8 deep;
 *  - every required field is present, and the Envelope has a body;
 *  - strings are UTF-8 (no overlongs, surrogates or NUL) of at most
 *    WEIR_CTL_MAX_STRING bytes; bytes fields named *sha256, *nonce or
 *    *mac are exactly 32 bytes; ObjectChunk.data at most WEIR_CTL_MAX_CHUNK;
 *  - enum values are declared ones, bools are 0 or 1;
 *  - a singular field appears once (protobuf would merge or overwrite;
 *    we refuse), and so does one body of the Envelope's oneof;
 *  - a repeated field has at most WEIR_CTL_MAX_REPEATED elements and the
 *    whole message at most WEIR_CTL_MAX_ELEMENTS repeated elements and
 *    unknown fields (skipped, but protobuf-c keeps a copy of each);
 *  - Envelope.version is WEIR_CTL_VERSION.
 * Then protobuf-c unpacks it with an allocator that refuses to go past a
 * budget proportional to the payload. A payload that fails any check is
 * refused with -EPROTO (-EMSGSIZE when too long), and the error trail
 * (base/err.h) names the message, the field and the problem:
 *
 *     decode: weir.ctl.Envelope.submit_job: weir.ctl.SubmitJob.name: not UTF-8 at byte 3
 *
 * Encoding runs the same checks on the bytes it produced, so a sender
 * cannot put on the wire what a receiver would refuse.
 *
 * Threads: every function may be called from any thread; nothing is shared.
 * protobuf-c must be >= 1.4.1 (CVE-2022-48468): checked when compiling and
 * at the first decode.
 */
#ifndef WEIR_CTL_CODEC_H
#define WEIR_CTL_CODEC_H

#include "ctl/weir.pb-c.h"

#include <stddef.h>
#include <stdint.h>

#define WEIR_CTL_VERSION 1
#define WEIR_CTL_MAX_FRAME (4u << 20)	/* one encoded Envelope */
#define WEIR_CTL_MAX_CHUNK (1u << 20)	/* ObjectChunk.data and SubmitJob.object */
#define WEIR_CTL_MAX_STRING 4096
#define WEIR_CTL_MAX_REPEATED 16384	/* one repeated field */
#define WEIR_CTL_MAX_ELEMENTS 65536	/* all repeated fields of one Envelope */
#define WEIR_CTL_MAX_DEPTH 8
#define WEIR_CTL_DIGEST_LEN 32		/* *sha256, *nonce, *mac */

typedef Weir__Ctl__Envelope weir_msg;

/* The schema name of a body case ("submit_job"), "none" or "unknown". */
const char *weir_ctl_body_name(Weir__Ctl__Envelope__BodyCase c);

/*
 * Encode m into buf (cap bytes). Envelope.version is set to
 * WEIR_CTL_VERSION whatever m holds. Returns the length (> 0), -EMSGSIZE
 * when it does not fit in cap or WEIR_CTL_MAX_FRAME, -EPROTO when m would
 * not pass decoding (missing field, bad string, ...), with the trail set.
 */
long weir_ctl_encode(const weir_msg *m, uint8_t *buf, size_t cap);

/* Same, into a malloc'd buffer (*out, free() it). -ENOMEM as well. */
long weir_ctl_encode_alloc(const weir_msg *m, uint8_t **out);

/*
 * Validate and unpack one payload. Returns 0 and *out (free it with
 * weir_ctl_free), or -EMSGSIZE / -EPROTO / -ENOMEM with *out NULL and
 * the trail naming the problem.
 */
int weir_ctl_decode(const uint8_t *buf, size_t len, weir_msg **out);

/*
 * Only the validation of weir_ctl_decode, for any message of the schema
 * (desc: e.g. &weir__ctl__deploy__descriptor). 0 or -EPROTO/-EMSGSIZE.
 */
int weir_ctl_validate(const ProtobufCMessageDescriptor *desc, const uint8_t *buf, size_t len);

/* Free a decoded Envelope (NULL is fine). */
void weir_ctl_free(weir_msg *m);

#endif
