/*
 * net/frame.h - length-prefixed, versioned frames over a byte stream.
 *
 * On the wire, little-endian:
 *
 *     [u32 length][u16 version][u16 type][length bytes of payload]
 *
 * `length` counts the payload only (the 8-byte header is not included).
 * The codec knows nothing of what a type means; the layer above validates
 * the payload of each type before use.
 *
 * What the decoder promises, whatever bytes it is fed (they come from a
 * peer that may be hostile or crashed):
 *   - chunks may split frames at any byte and hold several frames; frames
 *     come out whole, in order, exactly once;
 *   - it never reads outside the chunk it is given, and never holds more
 *     than one frame's bytes: its buffer grows with the bytes that actually
 *     arrived, so a header announcing 16 MiB followed by silence costs the
 *     bytes that came, not 16 MiB;
 *   - a length above the limit (-EMSGSIZE) or a version it does not speak
 *     (0 or above WEIR_FRAME_VERSION: -EPROTO) is an error for this stream
 *     only; the error is sticky (a stream that lost its framing cannot find
 *     it again) and sets the trail;
 *   - at end of stream, weir_frame_dec_finish() tells a clean end from a
 *     truncated frame.
 *
 * Threads: a decoder belongs to one thread at a time; the encoder
 * functions are pure.
 */
#ifndef WEIR_NET_FRAME_H
#define WEIR_NET_FRAME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define WEIR_FRAME_HDR 8u
#define WEIR_FRAME_VERSION 1u			/* the highest version spoken */
#define WEIR_FRAME_MAX_DEFAULT (16u << 20)	/* payload limit when 0 is given */
#define WEIR_FRAME_MAX_LIMIT (1u << 30)		/* no limit may exceed this */

/* Called once per whole frame; p is valid only during the call. A negative
 * return stops the decoder, which returns that value. */
typedef int (*weir_frame_fn)(void *arg, uint16_t type, const uint8_t *p, uint32_t len);

struct weir_frame_dec {
	uint32_t max;		/* payload limit */
	uint32_t need;		/* payload length of the frame being read */
	uint16_t type;
	uint8_t hlen;		/* header bytes held in hdr */
	uint8_t hdr[WEIR_FRAME_HDR];
	uint8_t *buf;		/* payload bytes held so far */
	uint32_t have;
	uint32_t cap;
	int err;		/* sticky: 0 or the first error */
	uint64_t frames;	/* delivered */
};

/* Fill *d for a stream with payloads of at most max bytes (0: the
 * default). Returns 0, or -EINVAL for max > WEIR_FRAME_MAX_LIMIT. */
int weir_frame_dec_init(struct weir_frame_dec *d, uint32_t max);
/* Free what *d holds. */
void weir_frame_dec_release(struct weir_frame_dec *d);
/*
 * Feed n bytes; fn is called for every frame completed by them. Returns
 * the number of frames delivered (>= 0), or a negative value: -EMSGSIZE,
 * -EPROTO, -ENOMEM, or the callback's own. Once negative, every later
 * call returns the same error without reading its input.
 */
int weir_frame_dec_feed(struct weir_frame_dec *d, const uint8_t *p, size_t n, weir_frame_fn fn, void *arg);
/* True when no part of a frame is held (a clean place for the stream to end). */
bool weir_frame_dec_idle(const struct weir_frame_dec *d);
/* End of stream: 0 when idle, else -EPROTO ("truncated frame") with the
 * trail set; or the sticky error. */
int weir_frame_dec_finish(struct weir_frame_dec *d);

/* Write the 8-byte header of a frame. */
void weir_frame_put_hdr(uint8_t hdr[WEIR_FRAME_HDR], uint16_t type, uint32_t len);
/* Encode one frame into dst[cap]. Returns the bytes written (8 + len), or
 * -ENOSPC when cap is too small, -EMSGSIZE when len > WEIR_FRAME_MAX_LIMIT. */
long weir_frame_encode(uint8_t *dst, size_t cap, uint16_t type, const void *p, uint32_t len);

#endif
