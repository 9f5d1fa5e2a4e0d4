/*
 * net/exchange.h - channels between hosts: segments over TCP, with the
 * credits, events and announcements a channel has in shared memory.
 *
 * A channel whose two ends are in processes that share no memory is cut in
 * two, each half an ordinary in-process channel (shm/channel.h), and the
 * exchange of each process carries the bytes between the halves:
 *
 *   producer task -> [chan P] -> exchange A ==TCP==> exchange B -> [chan C] -> consumer task
 *                                        <== credits ==
 *
 * Exchange A is P's consumer: it takes each segment the producer sends and
 * hands it to the kernel as it is (no copy), and gives it back to P once
 * the kernel has sent it. Direct sends (without TLS): the producer's own
 * thread does that work in weir_chan_send (the channel's kick, shm/
 * channel.h) when the connection's socket is free, writing the frame with
 * one sendmsg (net/loop.h's direct writes) and taking the segment back at
 * once, so a segment leaves without waking exchange A; it rings A's
 * doorbell as before when A is sending on that connection (a credit, a
 * keepalive) or pumping the channel, or when the channel has no credit
 * (A then sends it when credit comes). A socket whose buffer is full makes
 * the producer wait for room (poll), which bounded credit makes short, and
 * a close (a silent peer) ends. Exchange B is C's producer: each frame that
 * arrives is copied into an exclusive segment of C and sent on C. Credits
 * are C's exclusive segments: B grants the sender one credit per segment of
 * C that is free, A sends a segment only against a credit, so the sender
 * never overruns the receiver and a slow consumer holds back only its own
 * channel (A stops taking from P, whose producer then stops on P's own
 * credits). Events (end of input) travel in order with the data; an
 * announcement (unaligned checkpoints) is sent as soon as A sees it, ahead
 * of data still waiting for credit, as it overtakes data in shared memory.
 *
 * One TCP connection per pair of exchanges carries every channel between
 * them, of every job. The one with the lower id connects; both prove the
 * cluster secret (the layer above's handshake, through the auth hooks),
 * then say their ids (XHELLO). On the wire, inside net/frame.h frames:
 *
 *   XDATA     { u64 key, u32 seq, u32 len, u64 sum } + len payload bytes
 *   XEVENT    { u64 key, u32 seq, u32 code, u64 val, u64 sum }
 *   XCREDIT   { u64 key, u32 n, u32 0, u64 sum }
 *   XANNOUNCE { u64 key, u64 val, u64 sum }
 *   XHELLO    { u32 magic "WXCH", u32 version, u32 id, u32 0, u64 sum }
 *   XPING     { u64 0 }  (keepalive: sent on a connection quiet for a
 *             quarter of silence_ms; one silent for silence_ms is closed)
 *
 * little-endian; key names the channel (the layer above makes it unique:
 * job, attempt, channel); seq counts a channel's data and events from 0;
 * sum is XXH3-64 of the payload seeded with XXH3-64 of the header before
 * it, so a flipped bit anywhere (TCP's checksum misses some) is caught.
 *
 * What it promises, whatever the peer sends:
 *   - A frame that fails its checksum, is out of sequence, is malformed or
 *     of an unknown type, data beyond the credit granted, a credit that
 *     would take the sender above the channel's credits: the connection
 *     is closed (the trail names why), and every channel on it is lost:
 *     `lost(arg, msg)` for each, so their jobs fail and recover. No byte
 *     of a bad frame reaches a channel. Other connections go on.
 *   - A frame for a channel not registered here (a job that ended, an
 *     earlier attempt) is dropped (stats.unknown) and allocates nothing.
 *   - A sender's segments go back to its producer only once the kernel is
 *     done with them (the loop's on_sent), so a segment is never reused
 *     while a send may read it; removing a job's channels waits for that.
 *   - User data in the ring carries an op kind, a slot and a generation
 *     (net/loop.h), never a pointer; the CQ never overflows.
 *
 * Threads: weir_xchg_run is the exchange's own thread (it makes the loop,
 * creates and runs it); every other function may be called from any thread
 * and hands its request to that thread (a mutex, never on the record
 * path, and a ring of the exchange's doorbell). The record path is the
 * producer's and consumer's own channels: tasks ring the exchange's
 * doorbell as they would a worker's, or (direct sends) write the frame
 * themselves.
 */
#ifndef WEIR_NET_EXCHANGE_H
#define WEIR_NET_EXCHANGE_H

#include "shm/channel.h"
#include "shm/doorbell.h"

#include <stdbool.h>
#include <stdint.h>

struct weir_xchg;
struct weir_conn;
struct weir_tls_ctx;

enum {
	WEIR_FRAME_XHELLO = 0x20,
	WEIR_FRAME_XDATA = 0x21,
	WEIR_FRAME_XEVENT = 0x22,
	WEIR_FRAME_XCREDIT = 0x23,
	WEIR_FRAME_XANNOUNCE = 0x24,
	WEIR_FRAME_XPING = 0x25,
};

#define WEIR_XCHG_MAX_PEERS 256

struct weir_xchg_config {
	uint32_t id;			/* this exchange's id (the TaskManager's), < WEIR_XCHG_MAX_PEERS */
	const char *listen_addr;	/* NULL: 127.0.0.1 */
	uint16_t listen_port;		/* 0: ephemeral (weir_xchg_port) */
	uint32_t seg_size;		/* the largest payload of a data frame */
	uint32_t spin_us;		/* poll this long before sleeping (0: sleep at once) */
	uint32_t connect_ms;		/* a peer not connected and proven within this: its channels are lost; 0: 5000 */
	uint32_t stall_ms;		/* net/loop.h's stall_ms for data connections; 0: 10000 */
	uint32_t silence_ms;		/* a connection that sent nothing this long is closed (its host is
					 * gone without a FIN); keepalives go out every quarter of it; 0: 2000 */
	bool no_direct;			/* producers never write to sockets themselves (see "Direct
					 * sends" above; for measuring): every frame goes through this
					 * thread. TLS implies it */
	/* The handshake that proves the cluster secret (the layer above's):
	 * start on every new connection (outgoing: we connected), frame for
	 * each control frame (type ctl_type) until it returns 1 (proven) or
	 * < 0 (refused: the connection closes); end frees its state. */
	struct weir_tls_ctx *tls_server, *tls_client;	/* TLS on data connections (net/loop.h); NULL: plain */
	uint16_t ctl_type;
	void *(*auth_start)(struct weir_conn *c, bool outgoing, void *arg);
	int (*auth_frame)(struct weir_conn *c, void *st, const uint8_t *p, uint32_t len, void *arg);
	void (*auth_end)(void *st, void *arg);
	void *arg;
};

struct weir_xchg_stats {
	uint64_t frames_out, frames_in, bytes_out, bytes_in;
	uint64_t credits_out, credits_in;
	uint64_t unknown;		/* frames for channels not registered here */
	uint64_t bad_frames;		/* connections closed for a bad frame */
	uint64_t conns_lost;
	uint64_t cq_overflow;
};

/* The exchange: listens at once (0, or -1 with the trail set, nothing left). */
struct weir_xchg *weir_xchg_create(const struct weir_xchg_config *cfg);
/* The exchange's thread: runs until weir_xchg_stop. */
int weir_xchg_run(struct weir_xchg *x);
void weir_xchg_stop(struct weir_xchg *x);
/* After run returned (or was never called). */
void weir_xchg_destroy(struct weir_xchg *x);
/* Its id, when it was not known at create (before weir_xchg_run). */
void weir_xchg_set_id(struct weir_xchg *x, uint32_t id);
/* Its silence_ms, when known only after create (before weir_xchg_run). */
void weir_xchg_set_silence(struct weir_xchg *x, uint32_t ms);
/* The port it listens on. */
uint16_t weir_xchg_port(const struct weir_xchg *x);
/* The doorbell tasks ring for it: a channel's consumer_db on the sending
 * side, its producer_db on the receiving side. */
struct weir_doorbell *weir_xchg_doorbell(struct weir_xchg *x);

/* Where peer id listens. */
int weir_xchg_peer(struct weir_xchg *x, uint32_t id, const char *addr, uint16_t port);

/* One half of a channel. ch: made by the caller with weir_chan_init over
 * its pool (sending side: consumer_db = the exchange's doorbell; receiving
 * side: producer_db = the exchange's doorbell, max_floating 0). credits:
 * the receiving half's exclusive segments, the same number on both sides.
 * group: what weir_xchg_remove removes together (a job's attempt). lost:
 * called once, on the exchange's thread, when the channel can no longer
 * carry data (its connection closed or broke a rule, or its peer never
 * came), with a message naming the peer and why. */
struct weir_xchg_chan {
	uint64_t key;
	uint64_t group;
	uint32_t peer;
	bool send;			/* this side sends (it consumes ch) */
	struct weir_chan *ch;
	uint32_t credits;
	void (*lost)(void *arg, const char *msg);
	void *arg;
};
/* Register channels (the exchange copies the descriptions). 0, or -1
 * with the trail set (a key in use, a peer unknown, too many). */
int weir_xchg_add(struct weir_xchg *x, const struct weir_xchg_chan *c, int n);
/* Remove every channel of group and return once the exchange no longer
 * touches them: no send of their segments in flight, nothing of them
 * queued. Their channels are the caller's again (to release). Call it only
 * once the tasks at the group's channels are done with them (a producer
 * may be inside weir_chan_send until then, writing a frame itself; a
 * consumer inside weir_chan_give, deciding whether to ring us). */
void weir_xchg_remove(struct weir_xchg *x, uint64_t group);

/* Its figures; on its thread, or once run has returned. */
void weir_xchg_stats(struct weir_xchg *x, struct weir_xchg_stats *out);

#endif
