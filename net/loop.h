/*
 * net/loop.h - one io_uring driving TCP connections that speak frames.
 *
 * A loop owns one io_uring and a fixed table of slots. A slot is a
 * listener or a connection; a connection has a receive buffer, a frame
 * decoder (net/frame.h) and a queue of frames to send. Everything happens
 * on the thread that runs the loop: accept, connect (with a timeout),
 * receive, send, periodic timers; the callbacks run there too.
 *
 * What the loop promises:
 *   - No SQE carries a pointer. Each carries (op kind 8 bits, slot 24 bits,
 *     generation 32 bits). Closing a connection bumps its slot's
 *     generation at once, so a completion that arrives for it afterwards
 *     (its receive woken by the shutdown, a send, a connect timeout) is
 *     counted in stats.stale_cqes and dropped: its bytes are never
 *     decoded, its result never applied.
 *   - A buffer handed to the kernel stays the loop's until its completion
 *     arrives: a closed slot keeps its socket open (shut down), its receive
 *     buffer and its send queue until every SQE it issued has completed;
 *     only then is the descriptor closed and the slot reused. So neither a
 *     buffer nor a descriptor number can be reused under an SQE in flight.
 *   - The CQ never overflows by the loop's doing: the CQ has 4x the SQ
 *     entries and the loop never has more SQEs in flight than the CQ holds
 *     (less two it keeps for its wake-up read and the final cancel). An op
 *     that does not fit waits, in FIFO order, for completions to make room
 *     (stats.deferred counts the waits). weir_loop_cq_overflow() reports
 *     the kernel's overflow counter and IORING_SQ_CQ_OVERFLOW sightings;
 *     tests assert it stays 0.
 *   - A peer that breaks the framing (oversized length, unknown version,
 *     a frame cut by the end of the stream) or whose frame the on_frame
 *     callback refuses (returns < 0) loses its own connection and nothing
 *     else; stats.proto_errors counts the framing errors.
 *   - Bounded memory per connection: one receive buffer (recv_size), a
 *     decoder holding at most one frame (max_frame, grown with the bytes
 *     that came), and at most max_send bytes queued to send (beyond that
 *     weir_conn_send fails with -ENOBUFS). At most max_conns connections:
 *     one more is accepted and closed at once (stats.refused, on_refuse).
 *   - Timers and accepts are never starved by connections: a reserve of
 *     the CQ (MAX_LISTENERS + WEIR_LOOP_TIMERS entries, at most half of
 *     it) is theirs, and they never wait in the FIFO behind a connection.
 *     So a deadline fires and a new peer is accepted even while every
 *     other connection holds a receive that never completes.
 *   - Untrusted connections (untrusted_max or untrusted_ms set): an
 *     accepted connection is untrusted until the layer above calls
 *     weir_conn_trust (it proved who it is). At most untrusted_max are
 *     untrusted at once: one more makes the oldest untrusted one close
 *     (-EOVERFLOW, stats.evicted), so a peer that keeps opening
 *     connections cannot keep a newer one out; a full table also closes
 *     the oldest untrusted one, never a trusted one (a table full of
 *     trusted connections refuses the new one); running out of
 *     descriptors closes one too. One not trusted within untrusted_ms is
 *     closed (-ETIMEDOUT, stats.untrusted_timeouts). The loop's own
 *     timer enforces these (it takes one of the WEIR_LOOP_TIMERS).
 *   - stall_ms: a frame begun but not finished, or queued bytes the peer
 *     does not take, for that long closes the connection (-ETIMEDOUT,
 *     stats.stalled; checked about once a second): a peer sending one
 *     byte a second, or never reading its answers, is bounded in time as
 *     well as in memory.
 *   - Listeners bind 127.0.0.1 unless given another address.
 *
 * Receives: one per connection at a time, each holding a CQ entry while
 * it waits: single-shot into a buffer of the connection's (default), or,
 * with rx_bufs set, multishot over a ring of provided buffers shared by
 * all connections (the kernel picks a buffer per chunk; a buffer goes
 * back to the ring once its bytes are decoded; frames wholly inside one
 * reach on_frame in place, without a copy). With more open connections
 * than the CQ holds, the excess wait their turn to be read (FIFO) until
 * others complete. Size `entries` >= (2 * max_conns + 26) / 4 for every
 * connection to be read and written at once.
 *
 * Callbacks: on_open(c) once a connection is accepted or its connect
 * succeeded; on_frame for each whole frame (p valid only during the call;
 * < 0 closes c with that reason); on_close(c, reason) exactly once for
 * every connection the loop made, opened or not (reason 0: orderly end;
 * -ETIMEDOUT/-ECONNREFUSED: connect failed, or an untrusted or stalled
 * connection's deadline; -EOVERFLOW: an untrusted connection evicted for
 * a newer one; -EPROTO/-EMSGSIZE: framing, the trail saying how (read it
 * in on_close); other -errno from the socket or the callback).
 * on_refuse(peer, reason) for an accepted connection closed before
 * on_open: -EMFILE (the table is full of trusted connections), -ENOMEM,
 * or accept's own error (-EMFILE/-ENFILE: out of descriptors; peer "?"). In on_close, c is already
 * closed: sending fails, weir_conn_data still works.
 *
 * Threads: every function runs on the loop's thread (the one calling
 * weir_loop_run/run_once; create/destroy when the loop is not running),
 * except weir_loop_stop, which any thread may call.
 */
#ifndef WEIR_NET_LOOP_H
#define WEIR_NET_LOOP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct weir_loop;
struct weir_conn;

struct weir_loop_config {
	unsigned entries;	/* SQ entries; 0: 256. The CQ gets 4x. */
	uint32_t max_conns;	/* 0: 1024 */
	uint32_t recv_size;	/* receive buffer per connection; 0: 64 KiB */
	uint32_t max_frame;	/* payload limit both ways; 0: WEIR_FRAME_MAX_DEFAULT */
	size_t max_send;	/* bytes queued to send per connection; 0: 64 MiB */
	bool single_issuer;	/* IORING_SETUP_SINGLE_ISSUER: only the creating thread may run the loop */
	uint32_t untrusted_max;	/* accepted connections not yet trusted at once; 0: no bound */
	uint32_t untrusted_ms;	/* deadline to be trusted after accept; 0: none */
	uint32_t stall_ms;	/* a frame or a send making no progress this long; 0: no limit */
	/* multishot receives into provided buffers: rx_bufs (a power of two,
	 * <= 32768; 0: one plain receive at a time into a buffer per
	 * connection) buffers of recv_size bytes, shared by every connection,
	 * in rx_mem (rx_bufs x recv_size bytes the caller keeps, e.g. pool
	 * segments; NULL: the loop allocates them) */
	uint32_t rx_bufs;
	void *rx_mem;
	/* TLS (net/tls.h): every accepted connection speaks it with
	 * tls_server, every outgoing one with tls_client (NULL: plain). Frames
	 * are the same inside; external sends are encrypted (so copied) when
	 * queued into the session, and their on_sent comes then. */
	struct weir_tls_ctx *tls_server, *tls_client;
	void (*on_refuse)(const char *peer, int reason, void *arg);
	/* an external send's bytes are the caller's again (weir_conn_send_ext):
	 * res 0 sent, < 0 the connection closed before */
	void (*on_sent)(struct weir_conn *c, uint64_t cookie, int res, void *arg);
	int (*on_frame)(struct weir_conn *c, uint16_t type, const uint8_t *p, uint32_t len, void *arg);
	void (*on_open)(struct weir_conn *c, void *arg);
	void (*on_close)(struct weir_conn *c, int reason, void *arg);
	void *arg;
	/* State shared with other threads: when set, run_once calls
	 * unguard(guard_arg) just before it waits in the kernel and guard
	 * after, so a caller that holds its lock around the loop (taking it
	 * before the first run_once) has it everywhere but in the wait: its
	 * callbacks and what it does between run_once calls run under it, and
	 * another thread holding it sees that state at rest. The loop's own
	 * calls stay the loop thread's: another thread leaves work for it
	 * (its timers, say, pick it up). */
	void (*guard)(void *guard_arg);
	void (*unguard)(void *guard_arg);
	void *guard_arg;
};

struct weir_loop_stats {
	uint64_t accepted;	/* connections accepted and kept */
	uint64_t refused;	/* accepted beyond max_conns, closed at once; or accept out of descriptors */
	uint64_t evicted;	/* untrusted connections closed for a newer one */
	uint64_t untrusted_timeouts;	/* untrusted connections past untrusted_ms */
	uint64_t stalled;	/* connections past stall_ms */
	uint64_t connected;	/* outgoing connects that succeeded */
	uint64_t closed;	/* on_close calls */
	uint64_t frames_in, bytes_in;
	uint64_t frames_out, bytes_out;	/* frames queued, bytes the kernel took */
	uint64_t proto_errors;	/* connections closed for breaking the framing */
	uint64_t stale_cqes;	/* completions for a closed slot, dropped */
	uint64_t accept_errors;
	uint64_t deferred;	/* ops that waited for CQ room */
	uint64_t max_inflight;	/* most SQEs in flight at once */
	uint64_t cq_overflow;	/* as weir_loop_cq_overflow() */
};

/* A loop with cfg's limits and callbacks. NULL with the trail set. */
struct weir_loop *weir_loop_create(const struct weir_loop_config *cfg);
/* Close every connection and listener, cancel what is in flight, wait for
 * every completion, then free the loop. Calls on_close for open connections. */
void weir_loop_destroy(struct weir_loop *l);

/* Listen on addr:port (addr NULL: "127.0.0.1"; IPv4 or IPv6 literal; port
 * 0: ephemeral), SO_REUSEADDR. Stores the bound port in *bound if not NULL.
 * Returns a listener id >= 0, or -errno with the trail naming the address
 * and port ("listen 127.0.0.1:5000: bind: Address already in use"). */
int weir_loop_listen(struct weir_loop *l, const char *addr, uint16_t port, uint16_t *bound);
/* Stop listening (id from weir_loop_listen). Returns 0 or -ENOENT. */
int weir_loop_unlisten(struct weir_loop *l, int id);
/* Start a connection to addr:port that fails with -ETIMEDOUT if not
 * established within timeout_ms (0: 10 s). *out is usable at once: frames
 * sent before it is established wait in its queue. Returns 0 or -errno
 * (-EINVAL bad address, -EMFILE max_conns reached). */
int weir_loop_connect(struct weir_loop *l, const char *addr, uint16_t port, uint32_t timeout_ms,
		      struct weir_conn **out);

/* Submit, wait up to timeout_ms (< 0: until something completes; 0: not at
 * all) and handle the completions. Returns how many were handled, or
 * -errno. */
int weir_loop_run_once(struct weir_loop *l, int timeout_ms);
/* run_once until weir_loop_stop. Returns 0 or -errno. */
int weir_loop_run(struct weir_loop *l);
/* Make weir_loop_run return (any thread; once stopped, a loop stays stopped). */
void weir_loop_stop(struct weir_loop *l);

bool weir_loop_stopped(struct weir_loop *l);
/* Does an open connection still have bytes queued to send (loop thread)?
 * A server stops once its last answers are out (weir_loop_destroy drops
 * what is still queued). */
bool weir_loop_sending(const struct weir_loop *l);

/* Call fn every period_ms (IORING_OP_TIMEOUT) until weir_loop_timer_del.
 * Returns a timer id >= 0, or -ENOSPC (WEIR_LOOP_TIMERS in use) / -EINVAL. */
#define WEIR_LOOP_TIMERS 16
int weir_loop_timer_add(struct weir_loop *l, uint32_t period_ms, void (*fn)(struct weir_loop *l, void *arg),
			void *arg);
/* The timer does not fire again. Returns 0 or -ENOENT. */
int weir_loop_timer_del(struct weir_loop *l, int id);

void weir_loop_stats(struct weir_loop *l, struct weir_loop_stats *out);
/* CQ overflow seen so far: the kernel's cq.koverflow plus the times
 * IORING_SQ_CQ_OVERFLOW was found set. Must stay 0. */
uint64_t weir_loop_cq_overflow(struct weir_loop *l);
/* CQ entries (4x the SQ's). */
unsigned weir_loop_cq_entries(const struct weir_loop *l);
/* Open connections (accepted or connecting/connected, not yet closed). */
uint32_t weir_loop_conns(const struct weir_loop *l);

/* Queue one frame on c. Returns 0, -ENOTCONN (c closed), -EMSGSIZE
 * (len > max_frame) or -ENOBUFS (c's send queue would exceed max_send). */
int weir_conn_send(struct weir_conn *c, uint16_t type, const void *p, uint32_t len);
/* Queue one frame whose payload is hdr (hlen <= WEIR_SEND_EXT_HDR bytes,
 * copied) followed by plen bytes at payload, which are NOT copied: they
 * must stay unchanged until on_sent(c, cookie, res) reports the kernel
 * done with them. Every call that returned 0 gets exactly one on_sent: res
 * 0 once sent, or -ECONNRESET once c closed and every SQE that could read
 * the bytes completed. Sends are gathered (sendmsg over up to 32 iovecs),
 * so a frame's header and payload, and small frames queued together,
 * leave in one submission. Returns as weir_conn_send. With TLS the payload
 * may be encrypted (copied) at once, and on_sent called before this
 * returns: count the send as pending before calling. */
#define WEIR_SEND_EXT_HDR 64
int weir_conn_send_ext(struct weir_conn *c, uint16_t type, const void *hdr, uint32_t hlen, const void *payload,
		       uint32_t plen, uint64_t cookie);
/* Sleep on a shared futex word too: arm an IORING_OP_FUTEX_WAIT for it
 * (value val expected), so that run_once returns once it is woken
 * (weir_doorbell_ring) as well as for I/O. One at a time: 1 when one is
 * armed already (it completes on the next wake), 0 armed now, -ENOSYS
 * when the kernel refused it before (Linux < 6.7: poll instead). */
int weir_loop_futex_wait(struct weir_loop *l, uint32_t *word, uint32_t val);
/*
 * Direct writes: a thread other than the loop's may write whole frames to
 * an open connection without TLS itself (a syscall on its own thread, no
 * hand-off to the loop's), while the loop has nothing of it queued or in
 * flight. The socket has one writer at a time: the loop from its first
 * queued byte until its queue is empty, or one direct writer between
 * begin and end; a send the loop wants meanwhile waits, and end wakes the
 * loop for it. With TLS, and once c closed, begin always fails.
 *
 * begin (any thread): 0, the socket is the caller's until end; -EBUSY,
 * the loop or another writer has it, or c closed (queue the frame through
 * the loop's thread instead); -ENOTCONN, c's slot holds another
 * connection than id now. write: all of iov's bytes (iov is consumed),
 * waiting for room in poll(2) while the socket's buffer is full (half a
 * frame's rest must follow before any other byte): 0, or -errno when the
 * connection broke or closed meanwhile. end: broken (the write failed:
 * half a frame may be on the wire) leaves the socket to nobody, so that
 * nothing more is sent on it; the caller must then have the loop's thread
 * close c.
 */
struct iovec;
int weir_conn_direct_begin(struct weir_conn *c, uint64_t id);
int weir_conn_direct_write(struct weir_conn *c, struct iovec *iov, int n);
void weir_conn_direct_end(struct weir_conn *c, bool broken);
/* Queue n bytes as they are (no framing; for tests and proxies). Same returns. */
int weir_conn_send_raw(struct weir_conn *c, const void *p, size_t n);
/* Close c now (its queued sends are dropped); on_close(c, reason) runs
 * before this returns. A closed or stale c is ignored. */
void weir_conn_close(struct weir_conn *c, int reason);
bool weir_conn_is_open(const struct weir_conn *c);
/* A handle to c that stays safe after c closes: weir_loop_conn() maps it
 * back to c, or NULL once that connection is gone. */
uint64_t weir_conn_id(const struct weir_conn *c);
struct weir_conn *weir_loop_conn(struct weir_loop *l, uint64_t id);
/* c proved who it is: no longer untrusted (no deadline, never evicted). */
void weir_conn_trust(struct weir_conn *c);
bool weir_conn_trusted(const struct weir_conn *c);
/* "addr:port" of an accepted connection's peer ("?" for others). */
const char *weir_conn_peer(const struct weir_conn *c);
/* Untrusted connections open now. */
uint32_t weir_loop_untrusted(const struct weir_loop *l);
struct weir_loop *weir_conn_loop(const struct weir_conn *c);
void weir_conn_set_data(struct weir_conn *c, void *data);
void *weir_conn_data(const struct weir_conn *c);

#endif
