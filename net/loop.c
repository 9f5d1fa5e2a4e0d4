/*
 * net/loop.c - the io_uring event loop; see loop.h for what it promises.
 *
 * Operation kinds (the top 8 bits of every user_data):
 *
 *     kind       object      completes when                    CQEs
 *     ACCEPT     listener    a connection is accepted           1
 *     RECV       connection  bytes, end of stream or error      1
 *     SEND       connection  the kernel took bytes (maybe fewer) 1
 *     CONNECT    connection  established, refused, or timed out 1
 *     LTIMEOUT   connection  the connect's linked timeout        1
 *     TIMER      timer       the period elapsed                  1
 *     WAKE       the loop    weir_loop_stop wrote the eventfd    1
 *     CANCEL     the loop    destroy's cancel-everything         1
 *
 * user_data = kind << 56 | slot << 32 | generation. A slot's generation
 * changes when it closes, and the slot is only reused once `inflight`
 * (its SQEs not yet completed) is back to 0; so a completion whose
 * generation differs from its slot's belongs to a closed connection and
 * is dropped (stale), while the resources it used are still there to be
 * let go. Closing = shutdown(2) (which wakes a pending receive or accept
 * and fails later sends) and a new generation; close(2) waits for the
 * drain, so the descriptor number cannot be handed to a new connection
 * while an SQE naming it is still queued.
 *
 * CQ accounting: l->inflight counts SQEs whose CQE has not been reaped;
 * no SQE is prepared unless inflight + its CQEs <= budget (CQ entries
 * less two: the wake-up read and destroy's cancel). Wants that do not fit
 * are marked on the slot (c->want) and the slot waits in the FIFO
 * `pending`; while anything waits there, new wants queue behind it, so a
 * listener cannot be starved by busy connections or the other way round.
 */
#include "net/loop.h"

#include "base/clock.h"
#include "base/err.h"
#include "net/frame.h"
#include "net/tls.h"

#include <arpa/inet.h>
#include <errno.h>
#include <liburing.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <poll.h>
#include <sched.h>
#include <sys/socket.h>
#include <unistd.h>

enum op { OP_ACCEPT = 1, OP_RECV, OP_SEND, OP_CONNECT, OP_LTIMEOUT, OP_TIMER, OP_WAKE, OP_CANCEL, OP_FUTEX };
enum { W_ACCEPT = 1, W_RECV = 2, W_SEND = 4, W_CONNECT = 8 };
enum state { S_FREE, S_LISTEN, S_CONNECTING, S_OPEN, S_DEAD };

#define MAX_LISTENERS 8
#define SLOT_MAX 0xffffffu
/* CQ room kept for the listeners' accepts and the timers, which never
 * wait behind connections: idle connections each holding a receive can
 * then never starve a timer (a deadline) or an accept (a new peer) */
#define PRIO_RESERVE (MAX_LISTENERS + WEIR_LOOP_TIMERS)

/* A queued send: len bytes, `inl` of them in data[] (copied), then, for
 * an external send, ext_len bytes at ext (the caller's, not copied) whose
 * on_sent(cookie) runs once the kernel is done with them. */
struct sendbuf {
	struct sendbuf *next;
	uint32_t len, off;
	uint32_t inl, cap;	/* bytes in data[], its capacity */
	const uint8_t *ext;
	uint32_t ext_len;
	bool is_ext;		/* on_sent is owed (ext_len may be 0) */
	uint64_t cookie;
	uint8_t data[];
};
#define SMALL_SENDBUF 128	/* sendbufs this small are kept for reuse */
#define SMALL_CACHE 1024	/* at most this many cached */
#define SEND_IOVS 32		/* iovecs gathered into one send */
/* A futex wait's code (IORING_OP_FUTEX_WAIT, Linux 6.7; liburing 2.3 has
 * no helper for it) and the futex2 size flag. */
#define WEIR_OP_FUTEX_WAIT 51
#define WEIR_FUTEX2_SIZE_U32 0x02

struct weir_conn {
	struct weir_loop *loop;
	uint32_t slot, gen;
	uint8_t state;
	uint8_t want;		/* W_* not yet issued */
	uint8_t armed;		/* W_* in flight */
	bool queued;		/* in l->pending */
	bool listener;
	uint16_t inflight;	/* SQEs not yet completed */
	int fd;
	uint8_t *rbuf;
	struct weir_frame_dec dec;
	struct sendbuf *sq_head, *sq_tail;
	size_t sq_bytes;
	struct msghdr msg;	/* the send in flight: gathered from the queue */
	struct iovec iov[SEND_IOVS];
	struct sockaddr_storage addr;	/* connect's, until its completion */
	socklen_t addrlen;
	struct __kernel_timespec cto;	/* connect's timeout */
	uint32_t next_free;
	void *data;
	/* untrusted: accepted and not yet weir_conn_trust'ed; in the loop's
	 * untrusted list, oldest first (slot indices, NO_SLOT at the ends) */
	bool trusted;
	uint32_t uprev, unext;
	uint64_t since_ns;	/* accepted at (real clock) */
	uint64_t rx_since_ns;	/* the first byte of the frame held (0: none held) */
	uint64_t tx_since_ns;	/* the send queue last made progress (0: empty) */
	char peer[64];		/* "addr:port" of an accepted peer, "" otherwise */
	/* TLS (cfg.tls_server / tls_client): the session, a buffer for the
	 * plaintext it gives, and how many of its ciphertext bytes the send
	 * in flight carries (sent from its ring: out_peek/out_consume) */
	struct weir_tls *tls;
	uint8_t *plain;
	uint32_t tls_sending;
	/* Who may write to the socket (weir_conn_direct_begin): TX_LOOP from
	 * the first queued byte until the queue is empty and nothing is in
	 * flight, TX_DIRECT while another thread writes a frame, TX_FREE
	 * otherwise (so: free only with nothing queued, and nothing queued
	 * is ever overtaken). With TLS, or once closed, the loop keeps it.
	 * TX_WAIT (with TX_DIRECT): the loop queued bytes meanwhile; the
	 * writer hands the socket to the loop when done and wakes it.
	 * tx_blocked: the loop's own note that its queue waits for that. */
	_Atomic uint32_t tx;
	bool tx_blocked;
};
enum { TX_FREE, TX_LOOP, TX_DIRECT, TX_BROKEN, TX_OWNER = 3, TX_WAIT = 4 };
#define TLS_PLAIN 16384

struct timer {
	void (*fn)(struct weir_loop *l, void *arg);
	void *arg;
	struct __kernel_timespec ts;
	uint32_t gen;
	bool active, armed, queued;
};

struct weir_loop {
	struct io_uring ring;
	struct weir_loop_config cfg;
	unsigned cq_entries;
	unsigned budget;	/* SQEs in flight allowed for slots and timers */
	unsigned inflight;	/* all SQEs in flight, wake and cancel included */
	struct weir_conn *slots;
	uint32_t nslots, free_head, live, listeners;
	uint32_t *pending;	/* FIFO of connection slot indices */
	uint32_t tx_blocked;	/* connections whose send waits for a direct writer */
	uint32_t pcap, phead, pcount;
	uint32_t prio_waiting;	/* timers and listeners waiting for CQ room (never behind connections) */
	unsigned conn_budget;	/* SQEs in flight allowed for connections: budget less the reserve */
	unsigned conn_inflight;	/* connections' SQEs in flight */
	uint32_t uhead, utail, nuntrusted;	/* untrusted connections, oldest first */
	uint64_t last_stall_scan_ns;
	bool accept_paused;	/* a listener waits for a slot or a descriptor */
	struct timer timers[WEIR_LOOP_TIMERS];
	int wakefd;
	uint64_t wakeval;
	bool wake_armed;
	atomic_bool stop;
	struct weir_loop_stats st;
	uint64_t overflow_flags;
	/* provided receive buffers (cfg.rx_bufs): a ring the kernel picks
	 * from for every connection's multishot receive */
	struct io_uring_buf_ring *br;
	size_t br_len;
	uint8_t *rx_mem;
	bool rx_mem_ours;
	/* small sendbufs kept for reuse, so queueing a frame does not malloc */
	struct sendbuf *small;
	uint32_t nsmall;
	bool futex_armed, futex_unsupported;
};

#define NO_SLOT UINT32_MAX

static uint64_t ud(enum op kind, uint32_t slot, uint32_t gen)
{
	return (uint64_t)kind << 56 | (uint64_t)(slot & SLOT_MAX) << 32 | gen;
}

/* An SQE, submitting the queue first if it is full. The caller has
 * checked CQ room; the SQ is never the limit for long. */
static struct io_uring_sqe *sqe_get(struct weir_loop *l)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&l->ring);
	if (!sqe) {
		io_uring_submit(&l->ring);
		sqe = io_uring_get_sqe(&l->ring);
	}
	return sqe;
}

static void took(struct weir_loop *l, struct weir_conn *c, unsigned n)
{
	l->inflight += n;
	if (c) {
		c->inflight = (uint16_t)(c->inflight + n);
		if (!c->listener)
			l->conn_inflight += n;
	}
	if (l->inflight > l->st.max_inflight)
		l->st.max_inflight = l->inflight;
}

/* The wake-up read and the futex wait have CQ entries of their own (the
 * budget leaves them out), but count in inflight while armed. */
static bool room(const struct weir_loop *l, unsigned n)
{
	return l->inflight + n <= l->budget + (l->wake_armed ? 1 : 0) + (l->futex_armed ? 1 : 0);
}

/* Room for a connection's SQEs: within the CQ, and outside the reserve. */
static bool conn_room(const struct weir_loop *l, unsigned n)
{
	return room(l, n) && l->conn_inflight + n <= l->conn_budget;
}

static void pend(struct weir_loop *l, uint32_t v)
{
	/* each slot is queued at most once, so pcap always suffices */
	l->pending[(l->phead + l->pcount) % l->pcap] = v;
	l->pcount++;
	l->st.deferred++;
}

static void conn_close(struct weir_loop *l, struct weir_conn *c, int reason);
static void sendbuf_put(struct weir_loop *l, struct sendbuf *b);

/* The queue's head is wholly sent (or, with TLS, taken into the session):
 * off the queue, its on_sent if external, back to the cache. False when
 * on_sent closed c. */
static bool sq_done(struct weir_loop *l, struct weir_conn *c)
{
	struct sendbuf *b = c->sq_head;
	c->sq_head = b->next;
	if (!c->sq_head)
		c->sq_tail = NULL;
	c->sq_bytes -= b->len;
	if (b->is_ext && l->cfg.on_sent)
		l->cfg.on_sent(c, b->cookie, 0, l->cfg.arg);
	sendbuf_put(l, b);
	return c->state == S_OPEN;
}

/* TLS: a session that failed closes its connection, the trail saying why. */
static int tls_failed(struct weir_loop *l, struct weir_conn *c)
{
	weir_err_set("TLS with %s: %s", c->peer[0] ? c->peer : "the peer", weir_tls_error(c->tls));
	conn_close(l, c, -EPROTO);
	return -1;
}

/* TLS: move queued plaintext into the session while it takes it (none
 * before the handshake is done, or while its ring is full). A buffer wholly
 * taken is done: an external one's payload is encrypted, so its on_sent
 * runs now. 0, or -1 when the session failed (c closed). */
static int tls_fill(struct weir_loop *l, struct weir_conn *c)
{
	while (c->sq_head) {
		struct sendbuf *b = c->sq_head;
		const uint8_t *p;
		size_t n;
		if (b->off < b->inl) {
			p = b->data + b->off;
			n = b->inl - b->off;
		} else {
			p = b->ext + (b->off - b->inl);
			n = b->len - b->off;
		}
		ssize_t k = n ? weir_tls_write(c->tls, p, n) : 0;
		if (k < 0)
			return tls_failed(l, c);
		b->off += (uint32_t)k;
		if (b->off < b->len) {
			if (k == 0)
				return 0; /* it takes no more now */
			continue;
		}
		if (!sq_done(l, c))
			return -1;
	}
	return 0;
}

/* Issue what c wants, as far as the CQ has room. False if some is left. */
/* The loop takes the socket for its queue (its thread): true when it has
 * it; false while a direct writer has it (which hands it over when done:
 * TX_WAIT) or a direct write broke it (the connection is to be closed). */
static bool tx_take(struct weir_loop *l, struct weir_conn *c)
{
	for (;;) {
		uint32_t v = atomic_load(&c->tx);
		switch (v & TX_OWNER) {
		case TX_LOOP:
			return true;
		case TX_BROKEN:
			return false;
		case TX_FREE:
			if (atomic_compare_exchange_weak(&c->tx, &v, TX_LOOP))
				return true;
			continue;
		default: /* TX_DIRECT */
			if (!(v & TX_WAIT) && !atomic_compare_exchange_weak(&c->tx, &v, v | TX_WAIT))
				continue;
			if (!c->tx_blocked) {
				c->tx_blocked = true;
				l->tx_blocked++;
			}
			return false;
		}
	}
}

static bool issue(struct weir_loop *l, struct weir_conn *c)
{
	struct io_uring_sqe *sqe;
	/* one receive and one send at a time: a completion asks again */
	c->want &= (uint8_t)~(c->armed & (W_SEND | W_RECV));
	if ((c->want & W_ACCEPT) && room(l, 1) && (sqe = sqe_get(l))) {
		c->addrlen = sizeof(c->addr); /* the peer's address lands in the listener's */
		io_uring_prep_accept(sqe, c->fd, (struct sockaddr *)&c->addr, &c->addrlen, SOCK_CLOEXEC);
		io_uring_sqe_set_data64(sqe, ud(OP_ACCEPT, c->slot, c->gen));
		c->want &= (uint8_t)~W_ACCEPT;
		c->armed |= W_ACCEPT;
		took(l, c, 1);
	}
	if ((c->want & W_CONNECT) && conn_room(l, 2) && io_uring_sq_space_left(&l->ring) < 2)
		io_uring_submit(&l->ring); /* connect and its timeout go in together */
	if ((c->want & W_CONNECT) && conn_room(l, 2) && io_uring_sq_space_left(&l->ring) >= 2) {
		sqe = io_uring_get_sqe(&l->ring);
		io_uring_prep_connect(sqe, c->fd, (struct sockaddr *)&c->addr, c->addrlen);
		io_uring_sqe_set_data64(sqe, ud(OP_CONNECT, c->slot, c->gen));
		sqe->flags |= IOSQE_IO_LINK;
		sqe = io_uring_get_sqe(&l->ring);
		io_uring_prep_link_timeout(sqe, &c->cto, 0);
		io_uring_sqe_set_data64(sqe, ud(OP_LTIMEOUT, c->slot, c->gen));
		c->want &= (uint8_t)~W_CONNECT;
		c->armed |= W_CONNECT;
		took(l, c, 2);
	}
	if ((c->want & W_RECV) && conn_room(l, 1) && (sqe = sqe_get(l))) {
		if (l->br) {
			/* multishot: one SQE, a CQE per chunk, each in a buffer
			 * the kernel picks from the ring (group 0) */
			io_uring_prep_recv_multishot(sqe, c->fd, NULL, 0, 0);
			sqe->flags |= IOSQE_BUFFER_SELECT;
			sqe->buf_group = 0;
		} else {
			io_uring_prep_recv(sqe, c->fd, c->rbuf, l->cfg.recv_size, 0);
		}
		io_uring_sqe_set_data64(sqe, ud(OP_RECV, c->slot, c->gen));
		c->want &= (uint8_t)~W_RECV;
		c->armed |= W_RECV;
		took(l, c, 1);
	}
	if ((c->want & W_SEND) && c->tls) {
		/* TLS: the queue's plaintext goes into the session, and its
		 * ciphertext out of its ring, in place; nothing to send yet
		 * (a handshake under way, waiting for the peer) asks nothing */
		const uint8_t *cp = NULL;
		size_t cn = tls_fill(l, c) < 0 ? 0 : weir_tls_out_peek(c->tls, &cp);
		if (c->state != S_OPEN || cn == 0)
			c->want &= (uint8_t)~W_SEND;
	}
	if ((c->want & W_SEND) && c->tls && conn_room(l, 1) && (sqe = sqe_get(l))) {
		const uint8_t *cp;
		size_t cn = weir_tls_out_peek(c->tls, &cp);
		c->tls_sending = (uint32_t)(cn > (1u << 30) ? 1u << 30 : cn);
		io_uring_prep_send(sqe, c->fd, cp, c->tls_sending, MSG_NOSIGNAL);
		io_uring_sqe_set_data64(sqe, ud(OP_SEND, c->slot, c->gen));
		c->want &= (uint8_t)~W_SEND;
		c->armed |= W_SEND;
		took(l, c, 1);
	}
	if ((c->want & W_SEND) && !c->tls && !tx_take(l, c))
		c->want &= (uint8_t)~W_SEND; /* a direct writer has the socket: asked again when it lets go */
	if ((c->want & W_SEND) && !c->tls && conn_room(l, 1) && (sqe = sqe_get(l))) {
		/* gather the queue's head into one sendmsg: several small frames,
		 * or a frame's header and its payload in the caller's memory */
		int n = 0;
		for (struct sendbuf *b = c->sq_head; b && n < SEND_IOVS - 1; b = b->next) {
			uint32_t off = b == c->sq_head ? b->off : 0;
			if (off < b->inl)
				c->iov[n++] = (struct iovec){ b->data + off, b->inl - off };
			if (b->ext_len) {
				uint32_t eo = off > b->inl ? off - b->inl : 0;
				c->iov[n++] = (struct iovec){ (void *)(uintptr_t)(b->ext + eo), b->ext_len - eo };
			}
		}
		memset(&c->msg, 0, sizeof(c->msg));
		c->msg.msg_iov = c->iov;
		c->msg.msg_iovlen = (size_t)n;
		io_uring_prep_sendmsg(sqe, c->fd, &c->msg, MSG_NOSIGNAL);
		io_uring_sqe_set_data64(sqe, ud(OP_SEND, c->slot, c->gen));
		c->want &= (uint8_t)~W_SEND;
		c->armed |= W_SEND;
		took(l, c, 1);
	}
	return c->want == 0;
}

static bool timer_issue(struct weir_loop *l, uint32_t i)
{
	struct timer *t = &l->timers[i];
	struct io_uring_sqe *sqe;
	if (!t->active || t->armed)
		return true;
	if (!room(l, 1) || !(sqe = sqe_get(l)))
		return false;
	io_uring_prep_timeout(sqe, &t->ts, 0, 0);
	io_uring_sqe_set_data64(sqe, ud(OP_TIMER, i, t->gen));
	t->armed = true;
	took(l, NULL, 1);
	return true;
}

/* c wants `w`: issue it now unless others are waiting for room. A
 * listener's accept does not queue behind connections: it waits (rarely:
 * only in a CQ too small for the reserve) among the timers. */
static void want(struct weir_loop *l, struct weir_conn *c, uint8_t w)
{
	c->want |= w;
	if (c->queued)
		return;
	if (c->listener) {
		if (!issue(l, c)) {
			c->queued = true;
			l->prio_waiting++;
		}
		return;
	}
	if (l->pcount == 0 && issue(l, c))
		return;
	c->queued = true;
	pend(l, c->slot);
}

/* Timers and listeners that waited for room, then waiting connection
 * wants in FIFO order, while the CQ has room. */
static void flush_pending(struct weir_loop *l)
{
	if (l->prio_waiting) {
		for (uint32_t i = 0; i < WEIR_LOOP_TIMERS; i++) {
			struct timer *t = &l->timers[i];
			if (t->queued && timer_issue(l, i)) {
				t->queued = false;
				l->prio_waiting--;
			}
		}
		for (uint32_t i = 0; l->prio_waiting && i < l->nslots; i++) {
			struct weir_conn *c = &l->slots[i];
			if (c->listener && c->queued && (c->state != S_LISTEN || issue(l, c))) {
				c->queued = false;
				l->prio_waiting--;
			}
		}
	}
	while (l->pcount > 0) {
		uint32_t v = l->pending[l->phead];
		struct weir_conn *c = &l->slots[v];
		bool done = c->state == S_FREE || c->state == S_DEAD || issue(l, c);
		if (done)
			c->queued = false;
		if (!done)
			return;
		l->phead = (l->phead + 1) % l->pcap;
		l->pcount--;
	}
}

/* Connections whose queue waited for a direct writer: once it handed the
 * socket over, send. */
static void tx_takeback(struct weir_loop *l)
{
	for (uint32_t i = 0; l->tx_blocked && i < l->nslots; i++) {
		struct weir_conn *c = &l->slots[i];
		if (!c->tx_blocked || (c->state == S_OPEN && (atomic_load(&c->tx) & TX_OWNER) == TX_DIRECT))
			continue;
		c->tx_blocked = false;
		l->tx_blocked--;
		if (c->state == S_OPEN && c->sq_head && !(c->armed & W_SEND))
			want(l, c, W_SEND);
	}
}

static void sendbuf_put(struct weir_loop *l, struct sendbuf *b)
{
	if (b->cap == SMALL_SENDBUF && l->nsmall < SMALL_CACHE) {
		b->next = l->small;
		l->small = b;
		l->nsmall++;
	} else {
		free(b);
	}
}

/* Every SQE of c has completed (or c was never opened): drop its queue.
 * An external send not sent gets its on_sent, with -ECONNRESET, now that
 * the kernel can no longer read its bytes. */
static void sq_free(struct weir_conn *c)
{
	struct weir_loop *l = c->loop;
	struct sendbuf *b = c->sq_head;
	c->sq_head = c->sq_tail = NULL;
	c->sq_bytes = 0;
	while (b) {
		struct sendbuf *n = b->next;
		if (b->is_ext && l->cfg.on_sent)
			l->cfg.on_sent(c, b->cookie, -ECONNRESET, l->cfg.arg);
		sendbuf_put(l, b);
		b = n;
	}
}

/* Every SQE of the closed slot has completed: let go of all it held. */
static void slot_free(struct weir_loop *l, struct weir_conn *c)
{
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	sq_free(c); /* before c->data goes: on_sent may want it */
	free(c->rbuf);
	c->rbuf = NULL;
	weir_tls_destroy(c->tls);
	c->tls = NULL;
	free(c->plain);
	c->plain = NULL;
	weir_frame_dec_release(&c->dec);
	c->state = S_FREE;
	c->want = c->armed = 0;
	c->data = NULL;
	c->next_free = l->free_head;
	l->free_head = c->slot;
	if (l->accept_paused) {
		l->accept_paused = false;
		for (uint32_t i = 0; i < l->nslots; i++)
			if (l->slots[i].state == S_LISTEN && !(l->slots[i].armed & W_ACCEPT))
				want(l, &l->slots[i], W_ACCEPT);
	}
}

static struct weir_conn *slot_alloc(struct weir_loop *l)
{
	if (l->free_head == NO_SLOT)
		return NULL;
	struct weir_conn *c = &l->slots[l->free_head];
	l->free_head = c->next_free;
	c->state = S_CONNECTING; /* the caller sets the real one */
	c->want = c->armed = 0;
	c->inflight = 0;
	c->queued = false;
	c->listener = false;
	c->trusted = true;
	c->data = NULL;
	c->fd = -1;
	return c;
}

/* Give back a slot that never issued anything. */
static void slot_unalloc(struct weir_loop *l, struct weir_conn *c)
{
	c->gen++;
	c->state = S_DEAD;
	slot_free(l, c);
}

/* A connection slot: receive buffer and decoder, and with TLS a session
 * (server: accepted). 0 or -ENOMEM. */
static int conn_setup(struct weir_loop *l, struct weir_conn *c, int fd, bool server)
{
	c->fd = fd;
	c->tls = NULL;
	c->plain = NULL;
	c->tls_sending = 0;
	struct weir_tls_ctx *ctx = server ? l->cfg.tls_server : l->cfg.tls_client;
	if (ctx && (!(c->tls = weir_tls_create(ctx)) || !(c->plain = malloc(TLS_PLAIN)))) {
		weir_tls_destroy(c->tls);
		c->tls = NULL;
		return -ENOMEM;
	}
	c->trusted = true;
	c->peer[0] = '\0';
	c->rx_since_ns = c->tx_since_ns = 0;
	c->rbuf = NULL;
	if (!l->br && !(c->rbuf = malloc(l->cfg.recv_size)))
		return -ENOMEM;
	weir_frame_dec_init(&c->dec, l->cfg.max_frame);
	c->sq_head = c->sq_tail = NULL;
	c->sq_bytes = 0;
	c->tx_blocked = false;
	/* after fd: a direct writer that takes the socket sees this one's */
	atomic_store(&c->tx, c->tls ? TX_LOOP : TX_FREE);
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return 0;
}

/* ---- untrusted connections: a deadline and a bounded share ---- */

static void untrusted_link(struct weir_loop *l, struct weir_conn *c)
{
	c->trusted = false;
	c->unext = NO_SLOT;
	c->uprev = l->utail;
	if (l->utail != NO_SLOT)
		l->slots[l->utail].unext = c->slot;
	else
		l->uhead = c->slot;
	l->utail = c->slot;
	l->nuntrusted++;
}

static void untrusted_unlink(struct weir_loop *l, struct weir_conn *c)
{
	if (c->trusted)
		return;
	c->trusted = true;
	if (c->uprev != NO_SLOT)
		l->slots[c->uprev].unext = c->unext;
	else
		l->uhead = c->unext;
	if (c->unext != NO_SLOT)
		l->slots[c->unext].uprev = c->uprev;
	else
		l->utail = c->uprev;
	l->nuntrusted--;
}

/* Close the oldest untrusted connection to make room (-EOVERFLOW). False
 * when there is none. */
static bool evict_untrusted(struct weir_loop *l)
{
	if (l->uhead == NO_SLOT)
		return false;
	l->st.evicted++;
	conn_close(l, &l->slots[l->uhead], -EOVERFLOW);
	return true;
}

static void conn_close(struct weir_loop *l, struct weir_conn *c, int reason)
{
	if (c->state != S_OPEN && c->state != S_CONNECTING && c->state != S_LISTEN)
		return;
	bool was_listener = c->state == S_LISTEN;
	if (was_listener && c->queued) {
		c->queued = false;
		l->prio_waiting--;
	}
	if (!was_listener)
		untrusted_unlink(l, c);
	c->state = S_DEAD;
	__atomic_store_n(&c->gen, c->gen + 1, __ATOMIC_RELAXED); /* direct writers read it */
	c->want = 0;
	shutdown(c->fd, SHUT_RDWR);
	if (!was_listener) {
		/* the socket is the loop's for good (until the slot is reused):
		 * a direct writer mid-frame returns at once (the shutdown fails
		 * its write), and none starts after this, so the descriptor is
		 * never closed under one */
		for (;;) {
			uint32_t v = atomic_load(&c->tx);
			if ((v & TX_OWNER) == TX_DIRECT) {
				sched_yield();
				continue;
			}
			if (atomic_compare_exchange_strong(&c->tx, &v, TX_LOOP))
				break;
		}
		if (c->tx_blocked) {
			c->tx_blocked = false;
			l->tx_blocked--;
		}
	}
	if (was_listener) {
		l->listeners--;
	} else {
		l->live--;
		l->st.closed++;
		if (reason == -EPROTO || reason == -EMSGSIZE)
			l->st.proto_errors++;
		if (l->cfg.on_close)
			l->cfg.on_close(c, reason, l->cfg.arg);
	}
	if (c->inflight == 0)
		slot_free(l, c);
}

/* ---- completions ---- */

static int frame_cb(void *arg, uint16_t type, const uint8_t *p, uint32_t len)
{
	struct weir_conn *c = arg;
	struct weir_loop *l = c->loop;
	l->st.frames_in++;
	int rc = l->cfg.on_frame ? l->cfg.on_frame(c, type, p, len, l->cfg.arg) : 0;
	if (rc < 0)
		return rc;
	/* the callback may have closed c: stop decoding its bytes */
	return c->state == S_OPEN ? 0 : -ECONNABORTED;
}

/* "addr:port" of a socket address, "?" when it is neither IPv4 nor IPv6. */
static void fmt_peer(char *buf, size_t n, const struct sockaddr_storage *ss)
{
	char a[INET6_ADDRSTRLEN];
	if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *in4 = (const struct sockaddr_in *)ss;
		inet_ntop(AF_INET, &in4->sin_addr, a, sizeof(a));
		snprintf(buf, n, "%s:%u", a, ntohs(in4->sin_port));
	} else if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)ss;
		inet_ntop(AF_INET6, &in6->sin6_addr, a, sizeof(a));
		snprintf(buf, n, "[%s]:%u", a, ntohs(in6->sin6_port));
	} else {
		snprintf(buf, n, "?");
	}
}

static void refuse(struct weir_loop *l, const char *peer, int reason)
{
	l->st.refused++;
	if (l->cfg.on_refuse)
		l->cfg.on_refuse(peer, reason, l->cfg.arg);
}

static bool untrusted_on(const struct weir_loop *l) { return l->cfg.untrusted_max || l->cfg.untrusted_ms; }

static void on_accept(struct weir_loop *l, struct weir_conn *ls, int res)
{
	char peer[64];
	if (res < 0) {
		l->st.accept_errors++;
		if (res == -EMFILE || res == -ENFILE || res == -ENOBUFS || res == -ENOMEM) {
			/* out of descriptors or memory: an untrusted connection
			 * makes room (its descriptor goes once its SQEs are
			 * done), else accepting waits for a slot to be freed */
			refuse(l, "?", res);
			evict_untrusted(l);
			l->accept_paused = true; /* retried when a slot is freed */
		} else {
			want(l, ls, W_ACCEPT);
		}
		return;
	}
	fmt_peer(peer, sizeof(peer), &ls->addr);
	want(l, ls, W_ACCEPT);
	/* the table full, or the untrusted share: the oldest untrusted
	 * connection goes, never a trusted one; a table full of trusted
	 * connections refuses the new one */
	if (untrusted_on(l) && l->cfg.untrusted_max && l->nuntrusted >= l->cfg.untrusted_max)
		evict_untrusted(l);
	if (l->live >= l->cfg.max_conns)
		evict_untrusted(l);
	struct weir_conn *c = l->live < l->cfg.max_conns ? slot_alloc(l) : NULL;
	if (!c) {
		close(res);
		refuse(l, peer, -EMFILE);
		return;
	}
	if (conn_setup(l, c, res, true) < 0) {
		close(res);
		c->fd = -1;
		slot_unalloc(l, c);
		refuse(l, peer, -ENOMEM);
		return;
	}
	memcpy(c->peer, peer, sizeof(c->peer));
	c->since_ns = weir_real_now_ns();
	if (untrusted_on(l))
		untrusted_link(l, c);
	c->state = S_OPEN;
	l->live++;
	l->st.accepted++;
	if (l->cfg.on_open)
		l->cfg.on_open(c, l->cfg.arg);
	if (c->state == S_OPEN)
		want(l, c, W_RECV);
}

/* TLS: received ciphertext into the session, its plaintext into the frame
 * decoder, and whatever the session owes the peer (handshake messages)
 * out. Returns as weir_frame_dec_feed; c may be closed on return. */
static int tls_recv(struct weir_loop *l, struct weir_conn *c, const uint8_t *p, size_t n)
{
	int frames = 0;
	for (;;) {
		ssize_t k = n ? weir_tls_feed_in(c->tls, p, n) : 0;
		if (k < 0)
			return tls_failed(l, c), 0;
		p += k;
		n -= (size_t)k;
		ssize_t m, got = 0;
		while ((m = weir_tls_read(c->tls, c->plain, TLS_PLAIN)) > 0) {
			got += m;
			int rc = weir_frame_dec_feed(&c->dec, c->plain, (size_t)m, frame_cb, c);
			if (rc < 0 || c->state != S_OPEN)
				return rc < 0 ? rc : 0;
			frames += rc;
		}
		if (m < 0)
			return tls_failed(l, c), 0;
		if (n == 0)
			break;
		if (k == 0 && got == 0) {
			weir_err_set("TLS with %s: the session takes no more input", c->peer[0] ? c->peer : "the peer");
			return -EPROTO;
		}
	}
	/* replies the handshake owes, and plaintext that waited for it */
	const uint8_t *q;
	if (!(c->armed & W_SEND) && (weir_tls_out_peek(c->tls, &q) > 0 || (c->sq_head && weir_tls_handshake_done(c->tls))))
		want(l, c, W_SEND);
	return frames;
}

/* Give provided buffer bid back to the kernel's ring. */
static void rx_recycle(struct weir_loop *l, uint32_t bid)
{
	io_uring_buf_ring_add(l->br, l->rx_mem + (size_t)bid * l->cfg.recv_size, l->cfg.recv_size, (unsigned short)bid,
			      io_uring_buf_ring_mask(l->cfg.rx_bufs), 0);
	io_uring_buf_ring_advance(l->br, 1);
}

/* A receive's bytes: in c's own buffer, or (multishot) in the provided
 * buffer the CQE names, which goes back to the ring once decoded (frames
 * wholly inside it were handed to on_frame in place). `more`: the
 * multishot receive goes on; else it ended and is issued again. */
static void on_recv(struct weir_loop *l, struct weir_conn *c, int res, uint32_t flags)
{
	bool more = (flags & IORING_CQE_F_MORE) != 0;
	if (res > 0) {
		l->st.bytes_in += (uint64_t)res;
		const uint8_t *p = c->rbuf;
		uint32_t bid = UINT32_MAX;
		if (l->br) {
			if (!(flags & IORING_CQE_F_BUFFER)) {
				conn_close(l, c, -EIO); /* cannot happen: bytes without a buffer */
				return;
			}
			bid = flags >> IORING_CQE_BUFFER_SHIFT;
			p = l->rx_mem + (size_t)bid * l->cfg.recv_size;
		}
		int rc = c->tls ? tls_recv(l, c, p, (size_t)res) : weir_frame_dec_feed(&c->dec, p, (size_t)res, frame_cb, c);
		if (bid != UINT32_MAX)
			rx_recycle(l, bid);
		if (c->state != S_OPEN)
			return;
		if (rc < 0) {
			conn_close(l, c, rc);
			return;
		}
		if (weir_frame_dec_idle(&c->dec))
			c->rx_since_ns = 0;
		else if (rc > 0 || !c->rx_since_ns)
			c->rx_since_ns = weir_real_now_ns(); /* a frame begun since */
		if (!more)
			want(l, c, W_RECV);
	} else if (res == 0) {
		conn_close(l, c, weir_frame_dec_finish(&c->dec));
	} else if (res == -EINTR || res == -EAGAIN || res == -ENOBUFS) {
		want(l, c, W_RECV);
	} else {
		conn_close(l, c, res);
	}
}

static void on_send(struct weir_loop *l, struct weir_conn *c, int res)
{
	if (res < 0 && res != -EINTR && res != -EAGAIN) {
		conn_close(l, c, res);
		return;
	}
	if (c->tls) { /* the kernel took res bytes of the session's ring */
		if (res > 0) {
			c->tx_since_ns = weir_real_now_ns();
			l->st.bytes_out += (uint64_t)res;
			weir_tls_out_consume(c->tls, (size_t)res);
		}
		c->tls_sending = 0;
		const uint8_t *q;
		if (tls_fill(l, c) < 0)
			return;
		if (weir_tls_out_peek(c->tls, &q) > 0 || c->sq_head)
			want(l, c, W_SEND);
		else
			c->tx_since_ns = 0;
		return;
	}
	if (res > 0) {
		c->tx_since_ns = weir_real_now_ns();
		l->st.bytes_out += (uint64_t)res;
		/* the kernel took res bytes from the front of the queue: every
		 * buffer they cover is done (an external one gets its on_sent) */
		uint32_t left = (uint32_t)res;
		while (left > 0 && c->sq_head) {
			struct sendbuf *b = c->sq_head;
			uint32_t take = b->len - b->off < left ? b->len - b->off : left;
			b->off += take;
			left -= take;
			if (b->off < b->len)
				break;
			if (!sq_done(l, c))
				return; /* on_sent closed it */
		}
	}
	if (c->sq_head) {
		want(l, c, W_SEND);
	} else {
		c->tx_since_ns = 0;
		atomic_store(&c->tx, TX_FREE); /* nothing queued or in flight: direct writers may */
	}
}

static void on_connect(struct weir_loop *l, struct weir_conn *c, int res)
{
	if (res < 0) {
		conn_close(l, c, res == -ECANCELED ? -ETIMEDOUT : res);
		return;
	}
	c->state = S_OPEN;
	l->st.connected++;
	if (l->cfg.on_open)
		l->cfg.on_open(c, l->cfg.arg);
	if (c->state != S_OPEN)
		return;
	/* on_open may have queued (and issued) a send already: one at a time;
	 * a TLS client starts with its ClientHello */
	want(l, c, (c->sq_head || c->tls) && !(c->armed & W_SEND) ? W_RECV | W_SEND : W_RECV);
}

static void on_timer(struct weir_loop *l, uint32_t i, uint32_t gen, int res)
{
	struct timer *t = &l->timers[i];
	t->armed = false;
	if (t->gen != gen || !t->active) {
		l->st.stale_cqes++;
		return;
	}
	if (res == -ETIME && t->fn)
		t->fn(l, t->arg);
	if (t->active && t->gen == gen && !t->queued && !timer_issue(l, i)) {
		t->queued = true;
		l->prio_waiting++;
	}
}

static void dispatch(struct weir_loop *l, uint64_t data, int res, uint32_t flags)
{
	enum op kind = (enum op)(data >> 56);
	uint32_t slot = (uint32_t)(data >> 32) & SLOT_MAX;
	uint32_t gen = (uint32_t)data;
	/* a multishot receive's CQE with F_MORE: its SQE is still in flight
	 * (the CQ room such CQEs take is the reserve of rx_bufs entries) */
	bool more = kind == OP_RECV && (flags & IORING_CQE_F_MORE);
	if (!more)
		l->inflight--;
	if (kind == OP_WAKE) {
		l->wake_armed = false;
		return;
	}
	if (kind == OP_FUTEX) {
		l->futex_armed = false;
		if (res == -EINVAL || res == -ENOSYS || res == -EOPNOTSUPP)
			l->futex_unsupported = true;
		return;
	}
	if (kind == OP_CANCEL)
		return;
	if (kind == OP_TIMER) {
		if (slot < WEIR_LOOP_TIMERS)
			on_timer(l, slot, gen, res);
		return;
	}
	if (slot >= l->nslots)
		return; /* cannot happen: every user_data is ours */
	struct weir_conn *c = &l->slots[slot];
	if (!more) {
		c->inflight--;
		if (!c->listener)
			l->conn_inflight--;
		switch (kind) {
		case OP_ACCEPT: c->armed &= (uint8_t)~W_ACCEPT; break;
		case OP_RECV: c->armed &= (uint8_t)~W_RECV; break;
		case OP_SEND: c->armed &= (uint8_t)~W_SEND; break;
		case OP_CONNECT: c->armed &= (uint8_t)~W_CONNECT; break;
		default: break;
		}
	}
	if (c->gen != gen || c->state == S_DEAD || c->state == S_FREE) {
		l->st.stale_cqes++;
		if (kind == OP_RECV && l->br && (flags & IORING_CQE_F_BUFFER))
			rx_recycle(l, flags >> IORING_CQE_BUFFER_SHIFT); /* its bytes are dropped, the buffer is not */
		if (kind == OP_ACCEPT && res >= 0)
			close(res); /* a connection accepted as the listener closed */
		if (c->state == S_DEAD && c->inflight == 0)
			slot_free(l, c);
		return;
	}
	switch (kind) {
	case OP_ACCEPT: on_accept(l, c, res); break;
	case OP_RECV: on_recv(l, c, res, flags); break;
	case OP_SEND: on_send(l, c, res); break;
	case OP_CONNECT: on_connect(l, c, res); break;
	default: break; /* OP_LTIMEOUT: the connect's own completion decides */
	}
}

static void arm_wake(struct weir_loop *l)
{
	struct io_uring_sqe *sqe;
	if (l->wake_armed || !(sqe = sqe_get(l)))
		return;
	io_uring_prep_read(sqe, l->wakefd, &l->wakeval, sizeof(l->wakeval), 0);
	io_uring_sqe_set_data64(sqe, ud(OP_WAKE, 0, 0));
	l->wake_armed = true;
	took(l, NULL, 1);
}

static void check_overflow(struct weir_loop *l)
{
	if (IO_URING_READ_ONCE(*l->ring.sq.kflags) & IORING_SQ_CQ_OVERFLOW)
		l->overflow_flags++;
	l->st.cq_overflow = IO_URING_READ_ONCE(*l->ring.cq.koverflow) + l->overflow_flags;
}

static int reap(struct weir_loop *l)
{
	struct io_uring_cqe *cqe;
	int n = 0;
	while (io_uring_peek_cqe(&l->ring, &cqe) == 0) {
		uint64_t data = cqe->user_data;
		int res = cqe->res;
		uint32_t flags = cqe->flags;
		io_uring_cqe_seen(&l->ring, cqe);
		dispatch(l, data, res, flags);
		n++;
	}
	check_overflow(l);
	return n;
}

int weir_loop_run_once(struct weir_loop *l, int timeout_ms)
{
	int rc;
	if (!l->wake_armed && !atomic_load(&l->stop))
		arm_wake(l);
	if (l->tx_blocked)
		tx_takeback(l);
	flush_pending(l);
	if (l->cfg.unguard)
		l->cfg.unguard(l->cfg.guard_arg);
	if (timeout_ms < 0) {
		rc = io_uring_submit_and_wait(&l->ring, 1);
	} else if (timeout_ms == 0) {
		rc = io_uring_submit(&l->ring);
	} else {
		struct io_uring_cqe *cqe;
		struct __kernel_timespec ts = { .tv_sec = timeout_ms / 1000,
						.tv_nsec = (long long)(timeout_ms % 1000) * 1000000 };
		rc = io_uring_submit_and_wait_timeout(&l->ring, &cqe, 1, &ts, NULL);
	}
	if (l->cfg.guard)
		l->cfg.guard(l->cfg.guard_arg);
	if (rc < 0 && rc != -ETIME && rc != -EINTR && rc != -EAGAIN && rc != -EBUSY)
		return weir_err_errno(-rc, "event loop: io_uring_enter"), rc;
	int n = reap(l);
	if (l->tx_blocked)
		tx_takeback(l);
	flush_pending(l);
	return n;
}

int weir_loop_run(struct weir_loop *l)
{
	while (!atomic_load(&l->stop)) {
		int rc = weir_loop_run_once(l, -1);
		if (rc < 0)
			return rc;
	}
	return 0;
}

void weir_loop_stop(struct weir_loop *l)
{
	atomic_store(&l->stop, true);
	uint64_t one = 1;
	ssize_t w = write(l->wakefd, &one, sizeof(one));
	(void)w; /* a full counter already wakes the loop */
}

bool weir_loop_stopped(struct weir_loop *l) { return atomic_load(&l->stop); }

bool weir_loop_sending(const struct weir_loop *l)
{
	for (uint32_t i = 0; i < l->nslots; i++) {
		const struct weir_conn *c = &l->slots[i];
		const uint8_t *q;
		if (c->state == S_OPEN && (c->sq_bytes > 0 || c->tls_sending ||
					   (c->tls && weir_tls_out_peek(c->tls, &q) > 0))) /* TLS: ciphertext waits */
			return true;
	}
	return false;
}

/* The loop's own timer: untrusted connections past their deadline, and
 * (at most once a second) frames begun and sends queued that stalled. */
static void sweep(struct weir_loop *l, void *arg)
{
	(void)arg;
	uint64_t now = weir_real_now_ns();
	uint64_t dl = (uint64_t)l->cfg.untrusted_ms * 1000000u;
	while (dl && l->uhead != NO_SLOT && now - l->slots[l->uhead].since_ns >= dl) {
		l->st.untrusted_timeouts++;
		conn_close(l, &l->slots[l->uhead], -ETIMEDOUT);
	}
	uint64_t stall = (uint64_t)l->cfg.stall_ms * 1000000u;
	if (!stall || now - l->last_stall_scan_ns < 1000000000u)
		return;
	l->last_stall_scan_ns = now;
	for (uint32_t i = 0; i < l->nslots; i++) {
		struct weir_conn *c = &l->slots[i];
		if (c->state != S_OPEN || c->listener)
			continue;
		if ((c->rx_since_ns && now - c->rx_since_ns >= stall) ||
		    (c->tx_since_ns && now - c->tx_since_ns >= stall)) {
			l->st.stalled++;
			weir_err_set("no progress for %u ms (%s)", l->cfg.stall_ms,
				     c->rx_since_ns && now - c->rx_since_ns >= stall ? "a frame begun and not finished"
										     : "queued bytes the peer does not take");
			conn_close(l, c, -ETIMEDOUT);
		}
	}
}

/* ---- set-up ---- */

/* The provided buffers: cfg.rx_bufs of recv_size bytes each, in cfg.rx_mem
 * or memory of our own, registered as buffer group 0. 0 or -1 (trail). */
static int rx_setup(struct weir_loop *l)
{
	size_t bytes = (size_t)l->cfg.rx_bufs * l->cfg.recv_size;
	l->rx_mem = l->cfg.rx_mem;
	if (!l->rx_mem) {
		l->rx_mem = aligned_alloc(4096, (bytes + 4095) & ~(size_t)4095);
		if (!l->rx_mem)
			return weir_err_set("event loop: out of memory for %u receive buffers", l->cfg.rx_bufs);
		l->rx_mem_ours = true;
	}
	l->br_len = ((size_t)l->cfg.rx_bufs * sizeof(struct io_uring_buf) + 4095) & ~(size_t)4095;
	void *br = mmap(NULL, l->br_len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (br == MAP_FAILED)
		return weir_err_errno(errno, "event loop: buffer ring");
	l->br = br;
	io_uring_buf_ring_init(l->br);
	struct io_uring_buf_reg reg = { .ring_addr = (uintptr_t)br, .ring_entries = l->cfg.rx_bufs, .bgid = 0 };
	int rc = io_uring_register_buf_ring(&l->ring, &reg, 0);
	if (rc < 0) {
		munmap(br, l->br_len);
		l->br = NULL;
		return weir_err_errno(-rc, "event loop: registering %u receive buffers (Linux >= 5.19 needed)",
				      l->cfg.rx_bufs);
	}
	int mask = io_uring_buf_ring_mask(l->cfg.rx_bufs);
	for (uint32_t i = 0; i < l->cfg.rx_bufs; i++)
		io_uring_buf_ring_add(l->br, l->rx_mem + (size_t)i * l->cfg.recv_size, l->cfg.recv_size,
				      (unsigned short)i, mask, (int)i);
	io_uring_buf_ring_advance(l->br, (int)l->cfg.rx_bufs);
	return 0;
}

static void rx_teardown(struct weir_loop *l)
{
	if (l->br) {
		io_uring_unregister_buf_ring(&l->ring, 0);
		munmap(l->br, l->br_len);
		l->br = NULL;
	}
	if (l->rx_mem_ours)
		free(l->rx_mem);
	l->rx_mem = NULL;
	l->rx_mem_ours = false;
}

struct weir_loop *weir_loop_create(const struct weir_loop_config *cfg)
{
	struct weir_loop *l = calloc(1, sizeof(*l));
	if (!l) {
		weir_err_set("event loop: out of memory");
		return NULL;
	}
	l->cfg = *cfg;
	if (!l->cfg.entries)
		l->cfg.entries = 256;
	if (!l->cfg.max_conns)
		l->cfg.max_conns = 1024;
	if (!l->cfg.recv_size)
		l->cfg.recv_size = 64u << 10;
	if (!l->cfg.max_frame)
		l->cfg.max_frame = WEIR_FRAME_MAX_DEFAULT;
	if (!l->cfg.max_send)
		l->cfg.max_send = 64u << 20;
	if (l->cfg.max_frame > WEIR_FRAME_MAX_LIMIT || l->cfg.max_conns > (SLOT_MAX - MAX_LISTENERS) / 2 ||
	    l->cfg.entries < 2 || l->cfg.entries > 32768 || l->cfg.rx_bufs > 32768 ||
	    (l->cfg.rx_bufs & (l->cfg.rx_bufs - 1))) {
		weir_err_set("event loop: bad limits (entries %u, max_conns %u, max_frame %u)", l->cfg.entries,
			     l->cfg.max_conns, l->cfg.max_frame);
		goto out_free;
	}
	l->wakefd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (l->wakefd < 0) {
		weir_err_errno(errno, "event loop: eventfd");
		goto out_free;
	}
	struct io_uring_params p = { 0 };
	p.flags = IORING_SETUP_CQSIZE;
	p.cq_entries = 4 * l->cfg.entries + l->cfg.rx_bufs;
	if (l->cfg.single_issuer)
		p.flags |= IORING_SETUP_SINGLE_ISSUER;
	int rc = io_uring_queue_init_params(l->cfg.entries, &l->ring, &p);
	if (rc < 0) {
		weir_err_errno(-rc, "event loop: io_uring_queue_init (%u entries)", l->cfg.entries);
		goto out_eventfd;
	}
	if (!(p.features & IORING_FEAT_EXT_ARG)) {
		/* without it, a wait with a timeout would post a CQE of its own */
		weir_err_set("event loop: the kernel lacks IORING_FEAT_EXT_ARG (Linux >= 5.11 needed)");
		goto out_ring;
	}
	l->cq_entries = p.cq_entries;
	/* kept out of the budget: the wake-up read, destroy's cancel, the
	 * futex wait, and the CQEs multishot receives post beyond their own
	 * (one per provided buffer at most: each carries one, and a buffer
	 * goes back to the ring only after its CQE is reaped) */
	l->budget = l->cq_entries - 3 - l->cfg.rx_bufs;
	l->conn_budget = l->budget - (PRIO_RESERVE < l->budget / 2 ? PRIO_RESERVE : l->budget / 2);
	/* with untrusted connections, as many slots again for closed ones
	 * still draining their SQEs: an eviction makes room at once */
	l->nslots = l->cfg.max_conns * (untrusted_on(l) ? 2 : 1) + MAX_LISTENERS;
	l->slots = calloc(l->nslots, sizeof(*l->slots));
	l->pcap = l->nslots;
	l->pending = calloc(l->pcap, sizeof(*l->pending));
	if (!l->slots || !l->pending) {
		weir_err_set("event loop: out of memory for %u slots", l->nslots);
		goto out_tables;
	}
	if (l->cfg.rx_bufs && rx_setup(l) < 0)
		goto out_tables;
	l->free_head = NO_SLOT;
	l->uhead = l->utail = NO_SLOT;
	for (uint32_t i = l->nslots; i-- > 0;) {
		l->slots[i].loop = l;
		l->slots[i].slot = i;
		l->slots[i].fd = -1;
		l->slots[i].next_free = l->free_head;
		l->free_head = i;
	}
	atomic_init(&l->stop, false);
	arm_wake(l);
	if (untrusted_on(l) || l->cfg.stall_ms) {
		uint32_t ms = l->cfg.untrusted_ms ? l->cfg.untrusted_ms : l->cfg.stall_ms;
		if (l->cfg.stall_ms && l->cfg.stall_ms < ms)
			ms = l->cfg.stall_ms;
		ms /= 8;
		ms = ms < 10 ? 10 : ms > 250 ? 250 : ms;
		weir_loop_timer_add(l, ms, sweep, NULL);
	}
	return l;

out_tables:
	rx_teardown(l);
	free(l->pending);
	free(l->slots);
out_ring:
	io_uring_queue_exit(&l->ring);
out_eventfd:
	close(l->wakefd);
out_free:
	free(l);
	return NULL;
}

void weir_loop_destroy(struct weir_loop *l)
{
	if (!l)
		return;
	atomic_store(&l->stop, true);
	for (uint32_t i = 0; i < l->nslots; i++)
		conn_close(l, &l->slots[i], 0);
	for (int i = 0; i < WEIR_LOOP_TIMERS; i++)
		l->timers[i].active = l->timers[i].queued = false;
	l->pcount = 0;
	l->prio_waiting = 0;
	/* cancel everything still in flight (connects, timers, the wake read),
	 * then wait for every completion: only then are the buffers ours */
	while (l->inflight >= l->cq_entries)
		if (io_uring_submit_and_wait(&l->ring, 1) < 0 || reap(l) < 0)
			break;
	struct io_uring_sqe *sqe = sqe_get(l);
	if (sqe) {
		io_uring_prep_cancel64(sqe, 0, IORING_ASYNC_CANCEL_ANY);
		io_uring_sqe_set_data64(sqe, ud(OP_CANCEL, 0, 0));
		took(l, NULL, 1);
	}
	while (l->inflight > 0) {
		int rc = io_uring_submit_and_wait(&l->ring, 1);
		if (rc < 0 && rc != -EINTR && rc != -EAGAIN && rc != -EBUSY)
			break;
		reap(l);
	}
	for (uint32_t i = 0; i < l->nslots; i++)
		if (l->slots[i].state == S_DEAD)
			slot_free(l, &l->slots[i]);
	rx_teardown(l);
	io_uring_queue_exit(&l->ring);
	close(l->wakefd);
	while (l->small) {
		struct sendbuf *b = l->small;
		l->small = b->next;
		free(b);
	}
	free(l->pending);
	free(l->slots);
	free(l);
}

static int parse_addr(const char *addr, uint16_t port, struct sockaddr_storage *ss, socklen_t *len)
{
	memset(ss, 0, sizeof(*ss));
	struct sockaddr_in *in4 = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;
	if (inet_pton(AF_INET, addr, &in4->sin_addr) == 1) {
		in4->sin_family = AF_INET;
		in4->sin_port = htons(port);
		*len = sizeof(*in4);
		return 0;
	}
	if (inet_pton(AF_INET6, addr, &in6->sin6_addr) == 1) {
		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons(port);
		*len = sizeof(*in6);
		return 0;
	}
	return -EINVAL;
}

static const char *fmt_hostport(char *buf, size_t n, const char *addr, uint16_t port)
{
	snprintf(buf, n, strchr(addr, ':') ? "[%s]:%u" : "%s:%u", addr, port);
	return buf;
}

int weir_loop_listen(struct weir_loop *l, const char *addr, uint16_t port, uint16_t *bound)
{
	char hp[96];
	struct sockaddr_storage ss;
	socklen_t len;
	int one = 1, rc;
	if (!addr)
		addr = "127.0.0.1";
	fmt_hostport(hp, sizeof(hp), addr, port);
	if (parse_addr(addr, port, &ss, &len) < 0)
		return weir_err_set("listen %s: not an IPv4 or IPv6 address", hp), -EINVAL;
	if (l->listeners >= MAX_LISTENERS)
		return weir_err_set("listen %s: %d listeners already", hp, MAX_LISTENERS), -ENOSPC;
	int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return rc = -errno, weir_err_errno(-rc, "listen %s: socket", hp), rc;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&ss, len) < 0) {
		rc = -errno;
		weir_err_errno(-rc, "listen %s: bind", hp);
		goto out_close;
	}
	if (listen(fd, SOMAXCONN) < 0) {
		rc = -errno;
		weir_err_errno(-rc, "listen %s: listen", hp);
		goto out_close;
	}
	len = sizeof(ss);
	getsockname(fd, (struct sockaddr *)&ss, &len);
	if (bound)
		*bound = ntohs(ss.ss_family == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port
						       : ((struct sockaddr_in6 *)&ss)->sin6_port);
	struct weir_conn *c = slot_alloc(l);
	if (!c) {
		rc = -ENOSPC;
		weir_err_set("listen %s: no free slot", hp);
		goto out_close;
	}
	c->fd = fd;
	c->state = S_LISTEN;
	c->listener = true;
	l->listeners++;
	want(l, c, W_ACCEPT);
	return (int)c->slot;

out_close:
	close(fd);
	return rc;
}

int weir_loop_unlisten(struct weir_loop *l, int id)
{
	if (id < 0 || (uint32_t)id >= l->nslots || l->slots[id].state != S_LISTEN)
		return -ENOENT;
	conn_close(l, &l->slots[id], 0);
	return 0;
}

int weir_loop_connect(struct weir_loop *l, const char *addr, uint16_t port, uint32_t timeout_ms,
		      struct weir_conn **out)
{
	char hp[96];
	int rc;
	fmt_hostport(hp, sizeof(hp), addr ? addr : "(null)", port);
	*out = NULL;
	if (l->live >= l->cfg.max_conns)
		return weir_err_set("connect %s: connection limit %u reached", hp, l->cfg.max_conns), -EMFILE;
	struct weir_conn *c = slot_alloc(l);
	if (!c)
		return weir_err_set("connect %s: no free slot", hp), -EMFILE;
	if (!addr || parse_addr(addr, port, &c->addr, &c->addrlen) < 0) {
		slot_unalloc(l, c);
		return weir_err_set("connect %s: not an IPv4 or IPv6 address", hp), -EINVAL;
	}
	int fd = socket(c->addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		rc = -errno;
		slot_unalloc(l, c);
		return weir_err_errno(-rc, "connect %s: socket", hp), rc;
	}
	if (conn_setup(l, c, fd, false) < 0) {
		slot_unalloc(l, c); /* closes fd */
		return weir_err_set("connect %s: out of memory", hp), -ENOMEM;
	}
	if (!timeout_ms)
		timeout_ms = 10000;
	c->cto.tv_sec = timeout_ms / 1000;
	c->cto.tv_nsec = (long long)(timeout_ms % 1000) * 1000000;
	c->state = S_CONNECTING;
	l->live++;
	want(l, c, W_CONNECT);
	*out = c;
	return 0;
}

/* ---- timers ---- */

int weir_loop_timer_add(struct weir_loop *l, uint32_t period_ms, void (*fn)(struct weir_loop *l, void *arg),
			void *arg)
{
	if (!fn || !period_ms)
		return -EINVAL;
	for (uint32_t i = 0; i < WEIR_LOOP_TIMERS; i++) {
		struct timer *t = &l->timers[i];
		if (t->active || t->armed || t->queued)
			continue;
		t->fn = fn;
		t->arg = arg;
		t->ts.tv_sec = period_ms / 1000;
		t->ts.tv_nsec = (long long)(period_ms % 1000) * 1000000;
		t->gen++;
		t->active = true;
		if (!timer_issue(l, i)) {
			t->queued = true;
			l->prio_waiting++;
		}
		return (int)i;
	}
	return -ENOSPC;
}

int weir_loop_timer_del(struct weir_loop *l, int id)
{
	if (id < 0 || id >= WEIR_LOOP_TIMERS || !l->timers[id].active)
		return -ENOENT;
	/* an armed timeout still completes once; its generation is stale then */
	l->timers[id].active = false;
	l->timers[id].gen++;
	return 0;
}

/* ---- connections ---- */

/* A sendbuf with room for inl bytes inline, from the cache when small. */
static struct sendbuf *sendbuf_get(struct weir_loop *l, size_t inl)
{
	struct sendbuf *b;
	if (inl <= SMALL_SENDBUF && l->small) {
		b = l->small;
		l->small = b->next;
		l->nsmall--;
	} else {
		uint32_t cap = inl <= SMALL_SENDBUF ? SMALL_SENDBUF : (uint32_t)inl;
		if (!(b = malloc(sizeof(*b) + cap)))
			return NULL;
		b->cap = cap;
	}
	b->next = NULL;
	b->len = b->off = b->inl = 0;
	b->ext = NULL;
	b->ext_len = 0;
	b->is_ext = false;
	b->cookie = 0;
	return b;
}

static void enqueue(struct weir_conn *c, struct sendbuf *b);

static int queue_bytes(struct weir_conn *c, const uint8_t *hdr, const void *p, size_t n)
{
	struct weir_loop *l = c->loop;
	if (c->state != S_OPEN && c->state != S_CONNECTING)
		return -ENOTCONN;
	size_t total = (hdr ? WEIR_FRAME_HDR : 0) + n;
	if (total == 0)
		return 0;
	if (total > UINT32_MAX || c->sq_bytes + total > l->cfg.max_send) {
		weir_err_set("send: %zu bytes would exceed the connection's send limit %zu (%zu queued)", total,
			     l->cfg.max_send, c->sq_bytes);
		return -ENOBUFS;
	}
	struct sendbuf *b = sendbuf_get(l, total);
	if (!b)
		return weir_err_set("send: out of memory"), -ENOMEM;
	b->len = b->inl = (uint32_t)total;
	if (hdr)
		memcpy(b->data, hdr, WEIR_FRAME_HDR);
	if (n)
		memcpy(b->data + (hdr ? WEIR_FRAME_HDR : 0), p, n);
	enqueue(c, b);
	return 0;
}

/* Append b to c's queue and ask for a send. */
static void enqueue(struct weir_conn *c, struct sendbuf *b)
{
	struct weir_loop *l = c->loop;
	if (c->sq_tail) {
		c->sq_tail->next = b;
	} else {
		c->sq_head = b;
		c->tx_since_ns = weir_real_now_ns();
	}
	c->sq_tail = b;
	c->sq_bytes += b->len;
	if (!c->tls)
		tx_take(l, c); /* queued: no direct writer may start before it is sent */
	if (c->state == S_OPEN && !(c->armed & W_SEND))
		want(l, c, W_SEND);
}

int weir_conn_send_ext(struct weir_conn *c, uint16_t type, const void *hdr, uint32_t hlen, const void *payload,
		       uint32_t plen, uint64_t cookie)
{
	struct weir_loop *l = c->loop;
	if (c->state != S_OPEN && c->state != S_CONNECTING)
		return -ENOTCONN;
	uint64_t len = (uint64_t)hlen + plen;
	if (hlen > WEIR_SEND_EXT_HDR || len > l->cfg.max_frame) {
		weir_err_set("send: frame of %llu bytes (header %u) exceeds the limit %u", (unsigned long long)len, hlen,
			     l->cfg.max_frame);
		return -EMSGSIZE;
	}
	if (c->sq_bytes + WEIR_FRAME_HDR + len > l->cfg.max_send) {
		weir_err_set("send: %llu bytes would exceed the connection's send limit %zu (%zu queued)",
			     (unsigned long long)len, l->cfg.max_send, c->sq_bytes);
		return -ENOBUFS;
	}
	struct sendbuf *b = sendbuf_get(l, WEIR_FRAME_HDR + hlen);
	if (!b)
		return weir_err_set("send: out of memory"), -ENOMEM;
	weir_frame_put_hdr(b->data, type, (uint32_t)len);
	if (hlen)
		memcpy(b->data + WEIR_FRAME_HDR, hdr, hlen);
	b->inl = WEIR_FRAME_HDR + hlen;
	b->ext = payload;
	b->ext_len = plen;
	b->is_ext = true;
	b->cookie = cookie;
	b->len = b->inl + plen;
	l->st.frames_out++;
	enqueue(c, b);
	return 0;
}

int weir_loop_futex_wait(struct weir_loop *l, uint32_t *word, uint32_t val)
{
	if (l->futex_unsupported)
		return -ENOSYS;
	if (l->futex_armed)
		return 1;
	struct io_uring_sqe *sqe = sqe_get(l);
	if (!sqe)
		return -EBUSY;
	/* IORING_OP_FUTEX_WAIT: fd = futex2 flags (u32, shared: no
	 * FUTEX2_PRIVATE, as weir_doorbell_ring wakes a shared futex),
	 * addr = the word, off = the value expected, addr3 = the bitset */
	io_uring_prep_rw(WEIR_OP_FUTEX_WAIT, sqe, WEIR_FUTEX2_SIZE_U32, word, 0, val);
	sqe->addr3 = 0xffffffffu; /* FUTEX_BITSET_MATCH_ANY */
	io_uring_sqe_set_data64(sqe, ud(OP_FUTEX, 0, 0));
	l->futex_armed = true;
	took(l, NULL, 1);
	return 0;
}

int weir_conn_send(struct weir_conn *c, uint16_t type, const void *p, uint32_t len)
{
	if (len > c->loop->cfg.max_frame) {
		weir_err_set("send: frame of %u bytes exceeds the limit %u", len, c->loop->cfg.max_frame);
		return -EMSGSIZE;
	}
	uint8_t hdr[WEIR_FRAME_HDR];
	weir_frame_put_hdr(hdr, type, len);
	int rc = queue_bytes(c, hdr, p, len);
	if (rc == 0)
		c->loop->st.frames_out++;
	return rc;
}

int weir_conn_send_raw(struct weir_conn *c, const void *p, size_t n) { return queue_bytes(c, NULL, p, n); }

void weir_conn_close(struct weir_conn *c, int reason)
{
	if (c && !c->listener)
		conn_close(c->loop, c, reason);
}

bool weir_conn_is_open(const struct weir_conn *c) { return c->state == S_OPEN || c->state == S_CONNECTING; }

uint64_t weir_conn_id(const struct weir_conn *c) { return (uint64_t)c->slot << 32 | c->gen; }

struct weir_conn *weir_loop_conn(struct weir_loop *l, uint64_t id)
{
	uint32_t slot = (uint32_t)(id >> 32);
	if (slot >= l->nslots)
		return NULL;
	struct weir_conn *c = &l->slots[slot];
	if (c->gen != (uint32_t)id || c->listener || (c->state != S_OPEN && c->state != S_CONNECTING))
		return NULL;
	return c;
}

void weir_conn_trust(struct weir_conn *c)
{
	if (c->state == S_OPEN || c->state == S_CONNECTING)
		untrusted_unlink(c->loop, c);
}

bool weir_conn_trusted(const struct weir_conn *c) { return c->trusted; }
const char *weir_conn_peer(const struct weir_conn *c) { return c->peer[0] ? c->peer : "?"; }
uint32_t weir_loop_untrusted(const struct weir_loop *l) { return l->nuntrusted; }

struct weir_loop *weir_conn_loop(const struct weir_conn *c) { return c->loop; }
void weir_conn_set_data(struct weir_conn *c, void *data) { c->data = data; }
void *weir_conn_data(const struct weir_conn *c) { return c->data; }

/* ---- figures ---- */

void weir_loop_stats(struct weir_loop *l, struct weir_loop_stats *out)
{
	check_overflow(l);
	*out = l->st;
}

uint64_t weir_loop_cq_overflow(struct weir_loop *l)
{
	check_overflow(l);
	return l->st.cq_overflow;
}

unsigned weir_loop_cq_entries(const struct weir_loop *l) { return l->cq_entries; }
uint32_t weir_loop_conns(const struct weir_loop *l) { return l->live; }

/* ---- direct writes (any thread) ---- */

static void loop_wake(struct weir_loop *l)
{
	uint64_t one = 1;
	ssize_t w = write(l->wakefd, &one, sizeof(one));
	(void)w; /* a full counter already wakes the loop */
}

int weir_conn_direct_begin(struct weir_conn *c, uint64_t id)
{
	uint32_t v = TX_FREE;
	if (!atomic_compare_exchange_strong(&c->tx, &v, TX_DIRECT))
		return -EBUSY;
	/* the socket is ours: is it still the connection id named? (closing
	 * bumps the generation before it takes the socket back) */
	if (((uint64_t)c->slot << 32 | __atomic_load_n(&c->gen, __ATOMIC_RELAXED)) != id) {
		weir_conn_direct_end(c, false);
		return -ENOTCONN;
	}
	return 0;
}

int weir_conn_direct_write(struct weir_conn *c, struct iovec *iov, int n)
{
	uint32_t gen = __atomic_load_n(&c->gen, __ATOMIC_RELAXED);
	struct msghdr m = { .msg_iov = iov, .msg_iovlen = (size_t)n };
	for (;;) {
		ssize_t w = sendmsg(c->fd, &m, MSG_DONTWAIT | MSG_NOSIGNAL);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			/* the socket's buffer is full: wait for room (the peer
			 * reads; credit bounds what we send). Also with half a
			 * frame out, whose rest must follow before any other
			 * byte. A close shuts the socket down, which ends the
			 * wait */
			struct pollfd pfd = { .fd = c->fd, .events = POLLOUT };
			if (poll(&pfd, 1, 100) < 0 && errno != EINTR)
				return -errno;
			if (__atomic_load_n(&c->gen, __ATOMIC_RELAXED) != gen)
				return -ENOTCONN;
			continue;
		}
		if (w < 0)
			return -errno;
		size_t left = (size_t)w;
		while (m.msg_iovlen > 0 && left >= m.msg_iov->iov_len) {
			left -= m.msg_iov->iov_len;
			m.msg_iov++;
			m.msg_iovlen--;
		}
		if (m.msg_iovlen == 0)
			return 0;
		m.msg_iov->iov_base = (uint8_t *)m.msg_iov->iov_base + left;
		m.msg_iov->iov_len -= left;
	}
}

void weir_conn_direct_end(struct weir_conn *c, bool broken)
{
	/* the loop may add TX_WAIT meanwhile: then the socket is its own */
	uint32_t v = atomic_load(&c->tx);
	while (!atomic_compare_exchange_weak(&c->tx, &v,
					     broken ? TX_BROKEN : (v & TX_WAIT) ? TX_LOOP : TX_FREE))
		;
	if (v & TX_WAIT)
		loop_wake(c->loop);
}
