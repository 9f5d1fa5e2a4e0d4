/*
 * net/exchange.c - see exchange.h.
 *
 * Everything below runs on the exchange's thread except the request
 * functions at the end (add, remove, peer, stop), which queue a request
 * under x->mu and ring the doorbell.
 *
 * State per channel half (struct xc, a slot in x->chans found by key
 * through an open-addressing index):
 *   sending:   credit  = segments the receiver may still take
 *              inflight = segments handed to the loop, not yet on_sent
 *   receiving: credit  = credits granted and not yet used by data
 * A segment on its way out is named in the loop's cookie by (slot,
 * generation, descriptor): on_sent gives the descriptor back to P.
 *
 * Direct sends (no TLS): a sending channel's consumer side is pumped by
 * whoever holds its `pumping` lock: this thread (frames queued through
 * the loop), or the producer's own thread, from weir_chan_send through the
 * channel's kick, which writes the frame to the socket itself
 * (weir_conn_direct_*) and gives the segment back at once: no hand-off, no
 * wake-up of this thread on the way out. A producer that finds the lock
 * or the socket taken rings the doorbell instead, as without. Shared with
 * the producers, so atomic: credit, opened, dead (sending channels), the
 * peers' dconn/did/broken, frames_out and bytes_out. seq and announced
 * belong to the lock's holder. A segment whose send completes while a
 * producer holds the lock waits in `later` until this thread holds it.
 */
#define XXH_INLINE_ALL
#include "net/exchange.h"

#include "base/clock.h"
#include "base/err.h"
#include "base/log.h"
#include "net/frame.h"
#include "net/loop.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <xxhash.h>

#define MAX_CHANS 4096
#define IDX_SIZE (2 * MAX_CHANS)	/* open addressing, power of two */
#define HELLO_MAGIC 0x48435857u	/* "WXCH" */
#define XVERSION 1u
#define RX_BUFS 64
#define RX_SIZE (64u << 10)

enum pstate { P_NONE, P_CONNECTING, P_AUTH, P_HELLO, P_READY };

struct peer {
	char addr[64];
	uint16_t port;
	bool known;
	enum pstate state;
	uint64_t conn;		/* the loop's id of its connection (0: none) */
	uint64_t since_ns;	/* wanted since (a connection, or its proof) */
	/* for producers' direct writes: the ready connection (NULL: none, or
	 * TLS) and its id; broken: a direct write failed, close it */
	struct weir_conn *_Atomic dconn;
	_Atomic uint64_t did;
	_Atomic bool broken;
};

/* A connection's own state (weir_conn_data). */
struct cstate {
	uint64_t id;		/* weir_conn_id at open (on_close sees a new generation) */
	uint64_t rx_ns, tx_ns;	/* the last frame received, and sent (keepalive) */
	bool outgoing, proven, hello_sent;
	int peer;		/* -1 until its XHELLO */
	void *auth;
};

/* Credit that came for a channel before it was registered here (the
 * receiving side registered first): kept until it is, a bounded table. */
#define EARLY_MAX 1024
struct early {
	uint64_t key;
	uint32_t peer, n;
	uint64_t seq;		/* arrival order: the oldest goes when full */
};

struct xc {
	bool used, removing;
	bool opened;		/* sending: the receiver granted credit once (it is registered there) */
	bool dead;		/* lost: carries nothing more */
	uint32_t gen;
	struct weir_xchg_chan d;
	uint32_t credit;
	uint32_t inflight;
	uint32_t seq;
	uint64_t announced;
	/* sending channels: direct sends (see the top) */
	struct weir_chan_kick kick;	/* d.ch->kick while registered */
	struct weir_xchg *x;
	uint32_t slot;
	_Atomic uint32_t pumping;	/* the lock: 1 while someone pumps it */
	_Atomic bool missed;		/* this thread found it locked: the holder rings */
	weir_seg *later;		/* sent segments to give back once we hold the lock */
	uint32_t nlater;
	/* receiving channels: when the consumer's give rings us (give_kick) */
	struct weir_chan_kick give_kick;	/* d.ch->give_kick while registered */
	uint32_t credit_pub;		/* atomic: credit, published for the consumer */
	uint32_t gives;			/* atomic, the consumer's: segments handed back */
	uint32_t gives_seen;		/* atomic: gives covered by our last grant */
};

struct req {
	enum { R_ADD, R_REMOVE, R_PEER } kind;
	struct weir_xchg_chan c;
	uint64_t group;
	uint32_t peer;
	char addr[64];
	uint16_t port;
	bool *done;		/* R_REMOVE: set under mu when complete */
	uint32_t n;		/* R_REMOVE: how many it removes */
	struct req *next;
};

struct weir_xchg {
	struct weir_xchg_config cfg;
	struct weir_loop *loop;
	struct weir_doorbell db;
	uint16_t port;
	struct peer peers[WEIR_XCHG_MAX_PEERS];
	struct xc *chans;
	uint32_t nchans_hw;	/* slots used at most (scan bound) */
	int32_t *idx;		/* key -> slot, -1 empty */
	struct weir_xchg_stats st;
	/* requests from other threads */
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct req *reqs, *reqs_tail;
	struct req *removing;	/* R_REMOVE waiting for in-flight sends */
	uint32_t nused;		/* under mu: channels added and not yet removed */
	struct early early[EARLY_MAX];
	uint32_t nearly;
	uint64_t early_seq;
	bool stop;
	uint32_t silence_ms;	/* the exchange's thread's copy of cfg.silence_ms */
	bool posted;		/* atomic: a request or the stop was posted since the thread looked */
	bool direct;		/* producers may write to sockets themselves (no TLS) */
	_Atomic bool broken_any;	/* some peer's broken is set */
};

/* fields a producer's direct send shares with this thread */
#define LD(f) __atomic_load_n(&(f), __ATOMIC_ACQUIRE)
#define ST(f, v) __atomic_store_n(&(f), (v), __ATOMIC_RELEASE)

/* ---- little-endian fields ---- */

static void put32(uint8_t *p, uint32_t v) { memcpy(p, &v, 4); }
static void put64(uint8_t *p, uint64_t v) { memcpy(p, &v, 8); }
static uint32_t get32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return v; }
static uint64_t get64(const uint8_t *p) { uint64_t v; memcpy(&v, p, 8); return v; }

/* libxxhash's runtime dispatch (xxh_x86dispatch.h: AVX-512, AVX2 or SSE2,
 * as the CPU has them; the same values as the inline code, which is built
 * for the baseline x86-64 and so SSE2 only): about 4x faster over a 32 KiB
 * payload here (66 against 17 GB/s). Declared here, as that header renames
 * the inline functions too. */
XXH64_hash_t XXH3_64bits_withSeed_dispatch(const void *input, size_t len, XXH64_hash_t seed);

/* sum of header h[0..hlen) and payload p[0..n) */
static uint64_t checksum(const uint8_t *h, size_t hlen, const void *p, size_t n)
{
	uint64_t seed = XXH3_64bits(h, hlen);
	return n >= 1024 ? XXH3_64bits_withSeed_dispatch(p, n, seed) : XXH3_64bits_withSeed(p, n, seed);
}

/* ---- the channel index ---- */

static uint32_t hash_key(uint64_t key) { return (uint32_t)(XXH3_64bits(&key, 8) & (IDX_SIZE - 1)); }

static int find(struct weir_xchg *x, uint64_t key)
{
	for (uint32_t h = hash_key(key), i = 0; i < IDX_SIZE; i++, h = (h + 1) & (IDX_SIZE - 1)) {
		int32_t s = x->idx[h];
		if (s < 0)
			return -1;
		if (s < (int32_t)MAX_CHANS && x->chans[s].used && x->chans[s].d.key == key)
			return s;
	}
	return -1;
}

/* Rebuild the index from the table (after removals; rare). */
static void reindex(struct weir_xchg *x)
{
	for (uint32_t i = 0; i < IDX_SIZE; i++)
		x->idx[i] = -1;
	for (uint32_t s = 0; s < x->nchans_hw; s++) {
		if (!x->chans[s].used)
			continue;
		uint32_t h = hash_key(x->chans[s].d.key);
		while (x->idx[h] >= 0)
			h = (h + 1) & (IDX_SIZE - 1);
		x->idx[h] = (int32_t)s;
	}
}

/* ---- connections ---- */

static struct weir_conn *peer_conn(struct weir_xchg *x, uint32_t p)
{
	return x->peers[p].conn ? weir_loop_conn(x->loop, x->peers[p].conn) : NULL;
}

/* Every channel with peer p can carry nothing more: tell their owners. */
static void lose_peer(struct weir_xchg *x, uint32_t p, const char *why)
{
	x->peers[p].since_ns = 0; /* the next channel with it waits afresh */
	for (uint32_t i = 0; i < x->nearly;)
		if (x->early[i].peer == p)
			x->early[i] = x->early[--x->nearly];
		else
			i++;
	char msg[512];
	snprintf(msg, sizeof(msg), "the connection to taskmanager %u (%s:%u) %s", p, x->peers[p].addr,
		 x->peers[p].port, why);
	for (uint32_t s = 0; s < x->nchans_hw; s++) {
		struct xc *c = &x->chans[s];
		if (c->used && !LD(c->dead) && c->d.peer == p) {
			ST(c->dead, true);
			if (c->d.lost)
				c->d.lost(c->d.arg, msg);
		}
	}
}

static void send_hello(struct weir_xchg *x, struct weir_conn *c)
{
	uint8_t h[24];
	put32(h, HELLO_MAGIC);
	put32(h + 4, XVERSION);
	put32(h + 8, x->cfg.id);
	put32(h + 12, 0);
	put64(h + 16, checksum(h, 16, NULL, 0));
	weir_conn_send(c, WEIR_FRAME_XHELLO, h, sizeof(h));
}

static void on_open(struct weir_conn *c, void *arg)
{
	struct weir_xchg *x = arg;
	struct cstate *cs = weir_conn_data(c);
	if (!cs) { /* accepted: outgoing ones got theirs at connect */
		cs = calloc(1, sizeof(*cs));
		if (!cs) {
			weir_conn_close(c, -ENOMEM);
			return;
		}
		cs->peer = -1;
		cs->id = weir_conn_id(c);
		weir_conn_set_data(c, cs);
	}
	cs->auth = x->cfg.auth_start ? x->cfg.auth_start(c, cs->outgoing, x->cfg.arg) : NULL;
	if (!x->cfg.auth_start) {
		cs->proven = true;
		weir_conn_trust(c);
		send_hello(x, c);
		cs->hello_sent = true;
	}
}

static void on_close(struct weir_conn *c, int reason, void *arg)
{
	struct weir_xchg *x = arg;
	struct cstate *cs = weir_conn_data(c);
	if (!cs)
		return;
	for (uint32_t p = 0; p < WEIR_XCHG_MAX_PEERS; p++) {
		if (x->peers[p].conn != cs->id)
			continue;
		x->peers[p].conn = 0;
		x->peers[p].state = P_NONE;
		atomic_store(&x->peers[p].dconn, NULL);
		atomic_store(&x->peers[p].broken, false);
		x->peers[p].since_ns = 0;
		x->st.conns_lost++;
		char why[300];
		if (reason == 0)
			snprintf(why, sizeof(why), "was closed by the other side");
		else if (reason == -EPROTO || reason == -EMSGSIZE || reason == -EACCES || reason == -ETIMEDOUT)
			snprintf(why, sizeof(why), "failed: %s", weir_err_msg()[0] ? weir_err_msg() : strerror(-reason));
		else
			snprintf(why, sizeof(why), "failed: %s", strerror(-reason));
		bool live = false;
		for (uint32_t s = 0; s < x->nchans_hw; s++)
			live |= x->chans[s].used && !LD(x->chans[s].dead) && x->chans[s].d.peer == p;
		weir_log(live ? WEIR_LOG_WARN : WEIR_LOG_DEBUG, "exchange: the connection to taskmanager %u %s", p, why);
		lose_peer(x, p, why);
	}
	if (cs->peer < 0)
		weir_log(WEIR_LOG_DEBUG, "exchange: a connection %s %s closed before its hello: %s",
			 cs->outgoing ? "to" : "from", weir_conn_peer(c), reason ? weir_err_msg() : "by the other side");
	if (cs->auth && x->cfg.auth_end)
		x->cfg.auth_end(cs->auth, x->cfg.arg);
	free(cs);
	weir_conn_set_data(c, NULL);
}

/* A rule broken: close c naming why (the trail), and count it. */
static int bad(struct weir_xchg *x, const char *fmt, uint64_t a, uint64_t b)
{
	x->st.bad_frames++;
	weir_err_set(fmt, (unsigned long long)a, (unsigned long long)b);
	return -EPROTO;
}

static int on_hello(struct weir_xchg *x, struct weir_conn *c, struct cstate *cs, const uint8_t *p, uint32_t len)
{
	if (len != 24 || get32(p) != HELLO_MAGIC || get64(p + 16) != checksum(p, 16, NULL, 0))
		return bad(x, "exchange: a malformed hello (%llu bytes)%.0llu", len, 0);
	if (get32(p + 4) != XVERSION)
		return bad(x, "exchange: the peer speaks version %llu, we %llu", get32(p + 4), XVERSION);
	uint32_t id = get32(p + 8);
	if (id >= WEIR_XCHG_MAX_PEERS || id == x->cfg.id || cs->peer >= 0)
		return bad(x, "exchange: a hello from id %llu (we are %llu)", id, x->cfg.id);
	struct peer *pe = &x->peers[id];
	if (!cs->outgoing) {
		/* the peer connects to us (it has the lower id); one connection
		 * per pair: a newer one replaces an older (it restarted) */
		if (id > x->cfg.id)
			return bad(x, "exchange: id %llu connected, but the lower id (%llu) connects", id, x->cfg.id);
		struct weir_conn *old = peer_conn(x, id);
		if (old && old != c)
			weir_conn_close(old, -ECONNRESET);
		pe->conn = weir_conn_id(c);
	} else if (pe->conn != weir_conn_id(c)) {
		return bad(x, "exchange: hello from id %llu on a connection made for another%.0llu", id, 0);
	}
	cs->peer = (int)id;
	cs->tx_ns = weir_now_ns();
	pe->state = P_READY;
	pe->since_ns = 0;
	if (x->direct) { /* producers may write on it now (id first: they check it after taking the socket) */
		atomic_store(&pe->did, weir_conn_id(c));
		atomic_store(&pe->dconn, c);
	}
	weir_log(WEIR_LOG_INFO, "exchange: data connection with taskmanager %u (%s) ready", id, weir_conn_peer(c));
	if (!cs->hello_sent) {
		send_hello(x, c);
		cs->hello_sent = true;
	}
	return 0;
}

static struct xc *frame_chan(struct weir_xchg *x, struct cstate *cs, uint64_t key)
{
	int s = find(x, key);
	if (s < 0) {
		x->st.unknown++;
		return NULL;
	}
	struct xc *c = &x->chans[s];
	if (LD(c->dead) || c->removing || (int)c->d.peer != cs->peer) {
		x->st.unknown++;
		return NULL;
	}
	return c;
}

static int on_data(struct weir_xchg *x, struct cstate *cs, const uint8_t *p, uint32_t len)
{
	if (len < 24)
		return bad(x, "exchange: a data frame of %llu bytes%.0llu", len, 0);
	uint64_t key = get64(p);
	uint32_t seq = get32(p + 8), n = get32(p + 12);
	if (n != len - 24 || n > x->cfg.seg_size)
		return bad(x, "exchange: a data frame of %llu bytes says %llu", len - 24, n);
	if (get64(p + 16) != checksum(p, 16, p + 24, n))
		return bad(x, "exchange: checksum mismatch in a data frame of channel %#llx (%llu bytes)", key, n);
	struct xc *c = frame_chan(x, cs, key);
	if (!c)
		return 0;
	if (c->d.send)
		return bad(x, "exchange: data for channel %#llx, which we send on%.0llu", key, 0);
	if (seq != c->seq)
		return bad(x, "exchange: channel %#llx: data out of sequence (%llu)", key, seq);
	if (c->credit == 0)
		return bad(x, "exchange: channel %#llx: data beyond the credit granted%.0llu", key, 0);
	weir_seg seg;
	if (weir_chan_acquire(c->d.ch, &seg) != 0)
		return bad(x, "exchange: channel %#llx: no free segment for granted credit%.0llu", key, 0);
	memcpy(weir_pool_addr(c->d.ch->pool, seg), p + 24, n);
	if (weir_chan_send(c->d.ch, seg, n) < 0) {
		weir_chan_recycle(c->d.ch, seg);
		return bad(x, "exchange: channel %#llx: its ring is full%.0llu", key, 0);
	}
	c->credit--;
	ST(c->credit_pub, c->credit);
	c->seq++;
	return 0;
}

static int on_event(struct weir_xchg *x, struct cstate *cs, const uint8_t *p, uint32_t len)
{
	if (len != 32 || get64(p + 24) != checksum(p, 24, NULL, 0))
		return bad(x, "exchange: a malformed event frame (%llu bytes)%.0llu", len, 0);
	uint64_t key = get64(p);
	struct xc *c = frame_chan(x, cs, key);
	if (!c)
		return 0;
	if (c->d.send || get32(p + 8) != c->seq)
		return bad(x, "exchange: channel %#llx: event out of sequence (%llu)", key, get32(p + 8));
	if (weir_chan_send_event(c->d.ch, get32(p + 12), get64(p + 16)) < 0)
		return bad(x, "exchange: channel %#llx: too many events in flight%.0llu", key, 0);
	c->seq++;
	return 0;
}

/* Keep credit for a channel not registered yet (its receiving side was
 * quicker); the oldest entry makes room. */
static void keep_early(struct weir_xchg *x, uint32_t peer, uint64_t key, uint32_t n)
{
	struct early *e = NULL;
	for (uint32_t i = 0; i < x->nearly && !e; i++)
		if (x->early[i].key == key && x->early[i].peer == peer)
			e = &x->early[i];
	if (!e && x->nearly < EARLY_MAX) {
		e = &x->early[x->nearly++];
		*e = (struct early){ .key = key, .peer = peer };
	}
	if (!e) {
		e = &x->early[0];
		for (uint32_t i = 1; i < x->nearly; i++)
			if (x->early[i].seq < e->seq)
				e = &x->early[i];
		*e = (struct early){ .key = key, .peer = peer };
	}
	e->n = e->n + n < e->n ? UINT32_MAX : e->n + n;
	e->seq = ++x->early_seq;
}

/* A sending channel just registered: the credit that came before it. */
static void take_early(struct weir_xchg *x, struct xc *c)
{
	for (uint32_t i = 0; i < x->nearly; i++) {
		if (x->early[i].key != c->d.key || x->early[i].peer != c->d.peer)
			continue;
		if ((uint64_t)x->early[i].n > c->d.credits) {
			ST(c->dead, true);
			if (c->d.lost)
				c->d.lost(c->d.arg, "exchange: more credit than the channel has came before it was registered");
		} else {
			ST(c->credit, x->early[i].n);
			ST(c->opened, true);
			x->st.credits_in += x->early[i].n;
		}
		x->early[i] = x->early[--x->nearly];
		return;
	}
}

static int on_credit(struct weir_xchg *x, struct cstate *cs, const uint8_t *p, uint32_t len)
{
	if (len != 24 || get64(p + 16) != checksum(p, 16, NULL, 0))
		return bad(x, "exchange: a malformed credit frame (%llu bytes)%.0llu", len, 0);
	uint64_t key = get64(p);
	uint32_t n = get32(p + 8);
	if (n == 0)
		return bad(x, "exchange: channel %#llx: a credit of 0%.0llu", key, 0);
	if (find(x, key) < 0) {
		keep_early(x, (uint32_t)cs->peer, key, n);
		return 0;
	}
	struct xc *c = frame_chan(x, cs, key);
	if (!c)
		return 0;
	/* forged or doubled credit would let us overrun the receiver */
	/* an honest receiver never grants beyond its free segments, so credit
	 * held (granted less sent) never exceeds the channel's credits. Only
	 * this thread adds to it, a producer's direct send only takes from it
	 * meanwhile: the value read is never below what the receiver knew */
	if (!c->d.send || (uint64_t)LD(c->credit) + n > c->d.credits)
		return bad(x, "exchange: channel %#llx: %llu credits beyond what it may grant", key, n);
	__atomic_add_fetch(&c->credit, n, __ATOMIC_ACQ_REL);
	ST(c->opened, true);
	x->st.credits_in += n;
	return 0;
}

static int on_announce(struct weir_xchg *x, struct cstate *cs, const uint8_t *p, uint32_t len)
{
	if (len != 24 || get64(p + 16) != checksum(p, 16, NULL, 0))
		return bad(x, "exchange: a malformed announcement (%llu bytes)%.0llu", len, 0);
	struct xc *c = frame_chan(x, cs, get64(p));
	if (!c)
		return 0;
	if (c->d.send)
		return bad(x, "exchange: an announcement for channel %#llx, which we send on%.0llu", get64(p), 0);
	weir_chan_announce(c->d.ch, get64(p + 8));
	return 0;
}

static int on_frame(struct weir_conn *c, uint16_t type, const uint8_t *p, uint32_t len, void *arg)
{
	struct weir_xchg *x = arg;
	struct cstate *cs = weir_conn_data(c);
	if (!cs)
		return -EPROTO;
	cs->rx_ns = weir_now_ns();
	if (!cs->proven) {
		if (type != x->cfg.ctl_type)
			return bad(x, "exchange: frame type %llu before the handshake%.0llu", type, 0);
		int rc = x->cfg.auth_frame(c, cs->auth, p, len, x->cfg.arg);
		if (rc < 0)
			return rc;
		if (rc == 1) {
			cs->proven = true;
			weir_conn_trust(c);
			if (cs->outgoing) {
				send_hello(x, c);
				cs->hello_sent = true;
			}
		}
		return 0;
	}
	x->st.frames_in++;
	x->st.bytes_in += len;
	if (type == WEIR_FRAME_XHELLO)
		return on_hello(x, c, cs, p, len);
	if (cs->peer < 0)
		return bad(x, "exchange: frame type %llu before the hello%.0llu", type, 0);
	switch (type) {
	case WEIR_FRAME_XDATA: return on_data(x, cs, p, len);
	case WEIR_FRAME_XEVENT: return on_event(x, cs, p, len);
	case WEIR_FRAME_XCREDIT: return on_credit(x, cs, p, len);
	case WEIR_FRAME_XANNOUNCE: return on_announce(x, cs, p, len);
	case WEIR_FRAME_XPING: return len == 8 ? 0 : bad(x, "exchange: a malformed keepalive (%llu bytes)%.0llu", len, 0);
	/* the handshake's control frames all came before it was proven */
	default: return bad(x, "exchange: unknown frame type %llu%.0llu", type, 0);
	}
}

/* ---- a sending channel's lock ---- */

static bool chan_trylock(struct xc *c)
{
	uint32_t v = 0;
	return atomic_compare_exchange_strong(&c->pumping, &v, 1);
}

/* This thread: the lock, or else a note that the holder must ring us when
 * it lets go (set before the second try: the holder's look after its
 * unlock sees it, or the second try gets the lock). */
static bool chan_lock_or_note(struct xc *c)
{
	if (chan_trylock(c))
		return true;
	atomic_store(&c->missed, true);
	if (!chan_trylock(c))
		return false;
	atomic_store(&c->missed, false);
	return true;
}

/* This thread, holding the lock: segments whose sends completed meanwhile. */
static void give_later(struct xc *c)
{
	while (c->nlater > 0)
		weir_chan_give(c->d.ch, c->later[--c->nlater]);
}

static uint64_t cookie_of(uint32_t slot, uint32_t gen, weir_seg seg)
{
	return (uint64_t)(slot & 0xfff) << 52 | (uint64_t)(gen & 0xfffff) << 32 | seg;
}

/* The kernel is done with a segment we sent: it goes back to P. */
static void on_sent(struct weir_conn *conn, uint64_t cookie, int res, void *arg)
{
	(void)conn, (void)res;
	struct weir_xchg *x = arg;
	uint32_t slot = (uint32_t)(cookie >> 52), gen = (uint32_t)(cookie >> 32) & 0xfffff;
	struct xc *c = slot < MAX_CHANS ? &x->chans[slot] : NULL;
	if (!c || !c->used || (c->gen & 0xfffff) != gen || c->inflight == 0)
		return; /* cannot happen: a channel is removed only once nothing of it is in flight */
	c->inflight--;
	/* the channel's consumer side is the lock holder's: a producer's
	 * direct send may hold it now */
	c->later[c->nlater++] = (weir_seg)cookie;
	if (chan_lock_or_note(c)) {
		give_later(c);
		atomic_store(&c->pumping, 0);
	}
}

/* ---- moving segments ---- */

/* Connect to peer p if we are the one to, and nobody has. */
static void want_peer(struct weir_xchg *x, uint32_t p)
{
	struct peer *pe = &x->peers[p];
	if (pe->state != P_NONE)
		return;
	if (!pe->since_ns)
		pe->since_ns = weir_now_ns();
	if (x->cfg.id > p)
		return; /* the lower id connects: we wait for it */
	struct weir_conn *c;
	if (!pe->known || weir_loop_connect(x->loop, pe->addr, pe->port, x->cfg.connect_ms, &c) < 0) {
		lose_peer(x, p, pe->known ? weir_err_msg() : "has no address");
		return;
	}
	struct cstate *cs = calloc(1, sizeof(*cs));
	if (!cs) {
		weir_conn_close(c, -ENOMEM);
		return;
	}
	cs->outgoing = true;
	cs->peer = -1;
	cs->id = weir_conn_id(c);
	weir_conn_set_data(c, cs);
	pe->conn = weir_conn_id(c);
	pe->state = P_CONNECTING;
}

/* Write one frame (type, header h[0..hlen), payload) on a producer's
 * thread; 0 or -errno (the connection broke: half a frame may be out). */
static int direct_frame(struct weir_conn *conn, uint16_t type, const uint8_t *h, uint32_t hlen, const void *p,
			uint32_t n)
{
	uint8_t fh[WEIR_FRAME_HDR + 32];
	weir_frame_put_hdr(fh, type, hlen + n);
	memcpy(fh + WEIR_FRAME_HDR, h, hlen);
	struct iovec iov[2] = { { fh, WEIR_FRAME_HDR + hlen }, { (void *)(uintptr_t)p, n } };
	return weir_conn_direct_write(conn, iov, n ? 2 : 1);
}

/* A frame of channel c: written now (direct, on a producer's thread that
 * holds the socket) or queued through the loop (this thread). 0, or < 0
 * when it could not be (direct: the connection broke). */
static int out_frame(struct xc *c, struct weir_conn *conn, bool direct, uint16_t type, const uint8_t *h,
		     uint32_t hlen)
{
	(void)c;
	return direct ? direct_frame(conn, type, h, hlen, NULL, 0) : weir_conn_send(conn, type, h, hlen);
}

/* One sending channel, by the holder of its lock: announcement first, then
 * data and events within the credit. direct: on a producer's thread that
 * holds the socket (weir_conn_direct_begin); else on this thread, through
 * the loop. Returns whether it did anything; *broken: a direct write
 * failed (the connection must close). */
static bool pump_out(struct weir_xchg *x, uint32_t s, struct xc *c, struct weir_conn *conn, bool direct,
		     bool *broken)
{
	bool did = false;
	uint64_t a = weir_chan_announced(c->d.ch);
	uint8_t h[32];
	/* only once the receiver is there (it granted credit): one sent
	 * before would be dropped as for an unknown channel */
	if (a > c->announced && LD(c->opened)) {
		put64(h, c->d.key);
		put64(h + 8, a);
		put64(h + 16, checksum(h, 16, NULL, 0));
		int rc = out_frame(c, conn, direct, WEIR_FRAME_XANNOUNCE, h, 24);
		if (rc == 0) {
			c->announced = a;
			did = true;
		} else if (direct) {
			*broken = true;
			return true;
		}
	}
	while (LD(c->credit) > 0) {
		struct weir_chan_msg m;
		int rc = weir_chan_recv(c->d.ch, &m);
		if (rc == 0)
			break;
		if (rc < 0) {
			ST(c->dead, true);
			if (c->d.lost)
				c->d.lost(c->d.arg, weir_err_msg());
			return true;
		}
		did = true;
		if (m.kind == WEIR_MSG_EVENT) {
			put64(h, c->d.key);
			put32(h + 8, c->seq);
			put32(h + 12, m.seg);
			put64(h + 16, m.val);
			put64(h + 24, checksum(h, 24, NULL, 0));
			if (out_frame(c, conn, direct, WEIR_FRAME_XEVENT, h, 32) < 0 && direct) {
				*broken = true;
				return true;
			}
			c->seq++;
			__atomic_add_fetch(&x->st.frames_out, 1, __ATOMIC_RELAXED);
			continue;
		}
		const uint8_t *bytes = weir_pool_addr(c->d.ch->pool, m.seg);
		put64(h, c->d.key);
		put32(h + 8, c->seq);
		put32(h + 12, (uint32_t)m.val);
		put64(h + 16, checksum(h, 16, bytes, (size_t)m.val));
		/* the credit is used before the frame can arrive: the receiver
		 * may grant it back before a producer's write returns, and
		 * on_credit must not see it still held */
		__atomic_sub_fetch(&c->credit, 1, __ATOMIC_ACQ_REL);
		if (direct) {
			/* the kernel copied the bytes when the write returns */
			rc = direct_frame(conn, WEIR_FRAME_XDATA, h, 24, bytes, (uint32_t)m.val);
			weir_chan_give(c->d.ch, m.seg);
			if (rc < 0) {
				*broken = true;
				return true;
			}
		} else {
			/* counted before the call: with TLS the loop may encrypt the
			 * payload at once and call on_sent before send_ext returns */
			c->inflight++;
			if (weir_conn_send_ext(conn, WEIR_FRAME_XDATA, h, 24, bytes, (uint32_t)m.val,
					       cookie_of(s, c->gen, m.seg)) < 0) {
				c->inflight--;
				weir_chan_give(c->d.ch, m.seg);
				ST(c->dead, true);
				if (c->d.lost)
					c->d.lost(c->d.arg, weir_err_msg());
				return true;
			}
		}
		c->seq++;
		__atomic_add_fetch(&x->st.frames_out, 1, __ATOMIC_RELAXED);
		__atomic_add_fetch(&x->st.bytes_out, m.val, __ATOMIC_RELAXED);
	}
	return did;
}

/* A producer's thread (weir_chan_send and the like, through d.ch->kick):
 * send what the channel holds itself, when its lock and the socket are
 * free; else ring this thread, as a channel without a kick would. */
static void direct_kick(struct weir_chan_kick *k)
{
	struct xc *c = (struct xc *)((char *)k - offsetof(struct xc, kick));
	struct weir_xchg *x = c->x;
	bool handled = false;
	if (chan_trylock(c)) {
		struct peer *pe = &x->peers[c->d.peer];
		uint64_t id = atomic_load(&pe->did);
		struct weir_conn *conn = atomic_load(&pe->dconn);
		if (conn && LD(c->opened) && !LD(c->dead) &&
		    weir_conn_direct_begin(conn, id) == 0) {
			bool broken = false;
			pump_out(x, c->slot, c, conn, true, &broken);
			weir_conn_direct_end(conn, broken);
			if (broken) {
				atomic_store(&pe->broken, true);
				atomic_store(&x->broken_any, true);
			}
			handled = !broken;
		}
		atomic_store(&c->pumping, 0);
	}
	if (!handled || atomic_exchange(&c->missed, false))
		weir_doorbell_ring(&x->db);
}

/* One receiving channel: grant a credit for every free segment not granted,
 * a quarter of the channel's credits at a time while the sender still holds
 * some (fewer frames, fewer wake-ups of the sending exchange), at once when
 * it may hold none. c->credit (granted, not yet used by data that arrived)
 * is at least what the sender holds, so while it is above 0 the sender can
 * send, its data arrives and brings it to 0: a withheld grant never stalls
 * the channel. */
static bool pump_in(struct weir_xchg *x, struct xc *c, struct weir_conn *conn)
{
	/* credit_pub (stored when data used credit) before we look at what
	 * came back: see recv_kick */
	atomic_thread_fence(memory_order_seq_cst);
	uint32_t gives = LD(c->gives);
	uint32_t spare = weir_chan_spare(c->d.ch);
	if (spare <= c->credit)
		return false;
	uint32_t n = spare - c->credit;
	if (c->credit > 0 && n < (c->d.credits + 3) / 4)
		return false;
	uint8_t h[24];
	put64(h, c->d.key);
	put32(h + 8, n);
	put32(h + 12, 0);
	put64(h + 16, checksum(h, 16, NULL, 0));
	if (weir_conn_send(conn, WEIR_FRAME_XCREDIT, h, 24) < 0)
		return false;
	c->credit += n;
	ST(c->credit_pub, c->credit);
	ST(c->gives_seen, gives);
	x->st.credits_out += n;
	return true;
}

/* The consumer's thread, after it handed a segment of a receiving channel
 * back (weir_chan_give, through d.ch->give_kick): wake this thread only
 * when it has a grant to make, a quarter of the credits since the last
 * one (pump_in's batch), or at once while the sender may hold none. The
 * give is in the ring before the fence and credit_pub is read after it,
 * as pump_in stores credit_pub before its fence and looks at the ring
 * after: either it sees this segment, or we see its 0 and ring. */
static void recv_kick(struct weir_chan_kick *k)
{
	struct xc *c = (struct xc *)((char *)k - offsetof(struct xc, give_kick));
	uint32_t g = LD(c->gives) + 1;
	ST(c->gives, g);
	atomic_thread_fence(memory_order_seq_cst);
	if (LD(c->credit_pub) == 0 || g - LD(c->gives_seen) >= (c->d.credits + 3) / 4)
		weir_doorbell_ring(&c->x->db);
}

static bool pump(struct weir_xchg *x)
{
	bool did = false;
	for (uint32_t s = 0; s < x->nchans_hw; s++) {
		struct xc *c = &x->chans[s];
		if (!c->used || LD(c->dead) || c->removing)
			continue;
		struct peer *pe = &x->peers[c->d.peer];
		if (pe->state != P_READY) {
			want_peer(x, c->d.peer);
			if (pe->state != P_READY && pe->since_ns &&
			    weir_now_ns() - pe->since_ns > (uint64_t)x->cfg.connect_ms * 1000000u)
				lose_peer(x, c->d.peer, "was not made in time");
			continue;
		}
		struct weir_conn *conn = peer_conn(x, c->d.peer);
		if (!conn)
			continue;
		bool sent = false;
		if (!c->d.send) {
			sent = pump_in(x, c, conn);
		} else if (chan_lock_or_note(c)) {
			give_later(c);
			bool broken = false;
			sent = pump_out(x, s, c, conn, false, &broken);
			atomic_store(&c->pumping, 0);
		}
		if (sent) {
			struct cstate *cs = weir_conn_data(conn);
			if (cs)
				cs->tx_ns = weir_now_ns();
		}
		did |= sent;
	}
	return did;
}

/* ---- requests ---- */

static void finish_removals(struct weir_xchg *x)
{
	for (struct req **rp = &x->removing; *rp;) {
		struct req *r = *rp;
		bool busy = false;
		for (uint32_t s = 0; s < x->nchans_hw; s++)
			if (x->chans[s].used && x->chans[s].d.group == r->group && x->chans[s].inflight)
				busy = true;
		if (busy) {
			rp = &r->next;
			continue;
		}
		for (uint32_t s = 0; s < x->nchans_hw; s++) {
			struct xc *c = &x->chans[s];
			if (c->used && c->d.group == r->group) {
				/* its producer is done with it (weir_xchg_remove's
				 * contract): the lock is free, the kick unused */
				if (c->d.send) {
					__atomic_store_n(&c->d.ch->kick, NULL, __ATOMIC_RELEASE);
					if (c->later)
						give_later(c);
				} else {
					__atomic_store_n(&c->d.ch->give_kick, NULL, __ATOMIC_RELEASE);
				}
				free(c->later);
				c->later = NULL;
				c->used = false;
				c->gen++;
			}
		}
		reindex(x);
		*rp = r->next;
		pthread_mutex_lock(&x->mu);
		x->nused -= r->n;
		*r->done = true;
		pthread_cond_broadcast(&x->cv);
		pthread_mutex_unlock(&x->mu);
		free(r);
	}
}

static void take_requests(struct weir_xchg *x)
{
	pthread_mutex_lock(&x->mu);
	struct req *r = x->reqs;
	x->reqs = x->reqs_tail = NULL;
	pthread_mutex_unlock(&x->mu);
	while (r) {
		struct req *next = r->next;
		r->next = NULL;
		if (r->kind == R_PEER) {
			struct peer *pe = &x->peers[r->peer];
			snprintf(pe->addr, sizeof(pe->addr), "%s", r->addr);
			pe->port = r->port;
			pe->known = true;
			free(r);
		} else if (r->kind == R_ADD) {
			uint32_t s = 0;
			while (s < MAX_CHANS && x->chans[s].used)
				s++;
			/* the adder checked room and keys under mu (weir_xchg_add) */
			struct xc *c = &x->chans[s];
			uint32_t gen = c->gen;
			memset(c, 0, sizeof(*c));
			c->gen = gen;
			c->used = true;
			c->d = r->c;
			c->x = x;
			c->slot = s;
			if (c->d.send && !(c->later = malloc(sizeof(weir_seg) * (c->d.ch->max_owned + 1u)))) {
				c->dead = true;
				if (c->d.lost)
					c->d.lost(c->d.arg, "exchange: out of memory");
			}
			if (s >= x->nchans_hw)
				x->nchans_hw = s + 1;
			uint32_t h = hash_key(c->d.key);
			while (x->idx[h] >= 0)
				h = (h + 1) & (IDX_SIZE - 1);
			x->idx[h] = (int32_t)s;
			if (c->d.send)
				take_early(x, c);
			if (c->d.send && c->later && x->direct) {
				c->kick.fn = direct_kick;
				/* release: the producer sees the channel set up */
				__atomic_store_n(&c->d.ch->kick, &c->kick, __ATOMIC_RELEASE);
			}
			if (!c->d.send) {
				c->give_kick.fn = recv_kick;
				__atomic_store_n(&c->d.ch->give_kick, &c->give_kick, __ATOMIC_RELEASE);
			}
			free(r);
		} else {
			r->n = 0;
			for (uint32_t s = 0; s < x->nchans_hw; s++)
				if (x->chans[s].used && x->chans[s].d.group == r->group) {
					x->chans[s].removing = true;
					r->n++;
				}
			r->next = x->removing;
			x->removing = r;
		}
		r = next;
	}
	if (x->removing)
		finish_removals(x);
}

/* ---- keepalive ---- */

/* The loop's timer: a connection that sent nothing for silence_ms (its
 * host went away without a FIN: a cut link, a powered-off machine) is
 * closed and its channels lost; to keep ours from looking silent, a
 * keepalive goes out on every connection that sent nothing for a quarter
 * of that. */
static void keepalive(struct weir_loop *l, void *arg)
{
	(void)l;
	struct weir_xchg *x = arg;
	uint64_t now = weir_now_ns(), silence = (uint64_t)x->silence_ms * 1000000u;
	for (uint32_t p = 0; p < WEIR_XCHG_MAX_PEERS; p++) {
		struct weir_conn *c = x->peers[p].state == P_READY ? peer_conn(x, p) : NULL;
		struct cstate *cs = c ? weir_conn_data(c) : NULL;
		if (!cs)
			continue;
		if (now - cs->rx_ns > silence) {
			weir_err_set("silent for %u ms (the link or the host is down)", x->silence_ms);
			weir_conn_close(c, -ETIMEDOUT);
			continue;
		}
		if (now - cs->tx_ns > silence / 4) {
			uint8_t h[8] = { 0 };
			weir_conn_send(c, WEIR_FRAME_XPING, h, sizeof(h));
			cs->tx_ns = now;
		}
	}
}

/* A producer's direct write failed: half a frame may be on the wire, and
 * the socket is nobody's (weir_conn_direct_end): close the connection, its
 * channels are lost. */
static void close_broken(struct weir_xchg *x)
{
	atomic_store(&x->broken_any, false);
	for (uint32_t p = 0; p < WEIR_XCHG_MAX_PEERS; p++) {
		if (!atomic_exchange(&x->peers[p].broken, false))
			continue;
		struct weir_conn *c = peer_conn(x, p);
		if (c) {
			weir_err_set("a frame could not be written to it");
			weir_conn_close(c, -EPIPE);
		}
	}
}

/* ---- the thread ---- */

int weir_xchg_run(struct weir_xchg *x)
{
	uint64_t idle_since = weir_now_ns();
	uint64_t spin = (uint64_t)x->cfg.spin_us * 1000u;
	for (;;) {
		/* the mutex only when a request was posted (the flag is set
		 * under it, after the request; cleared here before taking them) */
		bool reqs = __atomic_load_n(&x->posted, __ATOMIC_ACQUIRE);
		if (reqs) {
			__atomic_store_n(&x->posted, false, __ATOMIC_RELAXED);
			pthread_mutex_lock(&x->mu);
			bool stop = x->stop;
			reqs = x->reqs != NULL;
			pthread_mutex_unlock(&x->mu);
			if (stop)
				break;
		}
		if (reqs || x->removing)
			take_requests(x);
		if (atomic_load(&x->broken_any))
			close_broken(x);
		bool did = pump(x);
		int n = weir_loop_run_once(x->loop, 0);
		if (n < 0)
			return n;
		if (did || n > 0) {
			idle_since = weir_now_ns();
			continue;
		}
		if (weir_now_ns() - idle_since < spin)
			continue;
		/* sleep on the doorbell and the sockets at once: announce, look
		 * once more (doorbell.h's protocol), then wait in the ring */
		uint32_t seq = weir_doorbell_prepare(&x->db);
		reqs = __atomic_load_n(&x->posted, __ATOMIC_ACQUIRE);
		if (reqs || pump(x)) {
			weir_doorbell_cancel(&x->db);
			continue;
		}
		int fw = weir_loop_futex_wait(x->loop, &x->db.seq, seq);
		/* without the kernel's futex wait, wake every millisecond to look;
		 * with removals pending, too (their sends complete in the ring) */
		n = weir_loop_run_once(x->loop, fw < 0 ? 1 : x->removing ? 1 : 100);
		weir_doorbell_cancel(&x->db);
		if (n < 0)
			return n;
		idle_since = weir_now_ns();
	}
	return 0;
}

struct weir_xchg *weir_xchg_create(const struct weir_xchg_config *cfg)
{
	struct weir_xchg *x = calloc(1, sizeof(*x));
	if (!x || !(x->chans = calloc(MAX_CHANS, sizeof(*x->chans))) ||
	    !(x->idx = malloc(IDX_SIZE * sizeof(*x->idx)))) {
		if (x)
			free(x->chans);
		free(x);
		weir_err_set("exchange: out of memory");
		return NULL;
	}
	x->cfg = *cfg;
	x->direct = !cfg->tls_server && !cfg->tls_client && !cfg->no_direct;
	if (!x->cfg.connect_ms)
		x->cfg.connect_ms = 5000;
	if (!x->cfg.stall_ms)
		x->cfg.stall_ms = 10000;
	if (!x->cfg.ctl_type)
		x->cfg.ctl_type = 1;
	for (uint32_t i = 0; i < IDX_SIZE; i++)
		x->idx[i] = -1;
	weir_doorbell_init(&x->db);
	pthread_mutex_init(&x->mu, NULL);
	pthread_cond_init(&x->cv, NULL);
	struct weir_loop_config lc = {
		.entries = 256,
		.max_conns = 2 * WEIR_XCHG_MAX_PEERS,
		.recv_size = RX_SIZE,
		.rx_bufs = RX_BUFS,
		.max_frame = x->cfg.seg_size + 64,
		.max_send = (size_t)1 << 30,	/* bounded by credits; control frames are small */
		.untrusted_max = 64,
		.untrusted_ms = 2000,
		.stall_ms = x->cfg.stall_ms,
		.on_frame = on_frame,
		.on_open = on_open,
		.on_close = on_close,
		.on_sent = on_sent,
		.arg = x,
		.tls_server = x->cfg.tls_server,
		.tls_client = x->cfg.tls_client,
	};
	x->loop = weir_loop_create(&lc);
	if (!x->loop)
		goto fail;
	if (weir_loop_listen(x->loop, x->cfg.listen_addr, x->cfg.listen_port, &x->port) < 0)
		goto fail;
	x->silence_ms = x->cfg.silence_ms ? x->cfg.silence_ms : 2000;
	uint32_t tick = x->silence_ms / 8;
	if (weir_loop_timer_add(x->loop, tick < 10 ? 10 : tick > 250 ? 250 : tick, keepalive, x) < 0) {
		weir_err_set("exchange: no timer for its keepalive");
		goto fail;
	}
	return x;
fail:
	weir_loop_destroy(x->loop);
	free(x->idx);
	free(x->chans);
	free(x);
	return NULL;
}

void weir_xchg_destroy(struct weir_xchg *x)
{
	if (!x)
		return;
	weir_loop_destroy(x->loop); /* on_sent for every send not completed */
	for (uint32_t s = 0; s < MAX_CHANS; s++)
		free(x->chans[s].later);
	for (struct req *r = x->reqs, *n; r; r = n) {
		n = r->next;
		free(r);
	}
	for (struct req *r = x->removing, *n; r; r = n) {
		n = r->next;
		free(r);
	}
	pthread_mutex_destroy(&x->mu);
	pthread_cond_destroy(&x->cv);
	free(x->idx);
	free(x->chans);
	free(x);
}

uint16_t weir_xchg_port(const struct weir_xchg *x) { return x->port; }
void weir_xchg_set_id(struct weir_xchg *x, uint32_t id) { x->cfg.id = id; }
void weir_xchg_set_silence(struct weir_xchg *x, uint32_t ms) { x->silence_ms = ms; }
struct weir_doorbell *weir_xchg_doorbell(struct weir_xchg *x) { return &x->db; }

/* Under mu: queue r; the thread sees `posted` and takes the mutex. */
static void post(struct weir_xchg *x, struct req *r)
{
	r->next = NULL;
	if (x->reqs_tail)
		x->reqs_tail->next = r;
	else
		x->reqs = r;
	x->reqs_tail = r;
	__atomic_store_n(&x->posted, true, __ATOMIC_RELEASE);
}

void weir_xchg_stop(struct weir_xchg *x)
{
	pthread_mutex_lock(&x->mu);
	x->stop = true;
	__atomic_store_n(&x->posted, true, __ATOMIC_RELEASE);
	pthread_mutex_unlock(&x->mu);
	weir_doorbell_ring(&x->db);
	weir_loop_stop(x->loop);
}

int weir_xchg_peer(struct weir_xchg *x, uint32_t id, const char *addr, uint16_t port)
{
	if (id >= WEIR_XCHG_MAX_PEERS || !addr || strlen(addr) >= 64)
		return weir_err_set("exchange: bad peer %u", id);
	struct req *r = calloc(1, sizeof(*r));
	if (!r)
		return weir_err_set("exchange: out of memory");
	r->kind = R_PEER;
	r->peer = id;
	snprintf(r->addr, sizeof(r->addr), "%s", addr);
	r->port = port;
	pthread_mutex_lock(&x->mu);
	post(x, r);
	pthread_mutex_unlock(&x->mu);
	weir_doorbell_ring(&x->db);
	return 0;
}

int weir_xchg_add(struct weir_xchg *x, const struct weir_xchg_chan *c, int n)
{
	for (int i = 0; i < n; i++)
		if (c[i].peer >= WEIR_XCHG_MAX_PEERS || c[i].peer == x->cfg.id || !c[i].ch || !c[i].credits)
			return weir_err_set("exchange: channel %#llx: bad description (peer %u)",
					    (unsigned long long)c[i].key, c[i].peer);
	struct req *rs = NULL;
	for (int i = n; i-- > 0;) {
		struct req *r = calloc(1, sizeof(*r));
		if (!r) {
			while (rs) {
				struct req *nx = rs->next;
				free(rs);
				rs = nx;
			}
			return weir_err_set("exchange: out of memory");
		}
		r->kind = R_ADD;
		r->c = c[i];
		r->next = rs;
		rs = r;
	}
	pthread_mutex_lock(&x->mu);
	if (x->nused + (uint32_t)n > MAX_CHANS) {
		pthread_mutex_unlock(&x->mu);
		while (rs) {
			struct req *nx = rs->next;
			free(rs);
			rs = nx;
		}
		return weir_err_set("exchange: more than %u channels between hosts", MAX_CHANS);
	}
	x->nused += (uint32_t)n;
	while (rs) {
		struct req *nx = rs->next;
		post(x, rs);
		rs = nx;
	}
	pthread_mutex_unlock(&x->mu);
	weir_doorbell_ring(&x->db);
	return 0;
}

void weir_xchg_remove(struct weir_xchg *x, uint64_t group)
{
	bool done = false;
	struct req *r = calloc(1, sizeof(*r));
	if (!r)
		abort(); /* a small allocation at teardown; nothing sane to do */
	r->kind = R_REMOVE;
	r->group = group;
	r->done = &done;
	pthread_mutex_lock(&x->mu);
	post(x, r);
	weir_doorbell_ring(&x->db);
	while (!done && !x->stop)
		pthread_cond_wait(&x->cv, &x->mu);
	pthread_mutex_unlock(&x->mu);
}

void weir_xchg_stats(struct weir_xchg *x, struct weir_xchg_stats *out)
{
	*out = x->st;
	out->frames_out = __atomic_load_n(&x->st.frames_out, __ATOMIC_RELAXED);
	out->bytes_out = __atomic_load_n(&x->st.bytes_out, __ATOMIC_RELAXED);
	out->cq_overflow = weir_loop_cq_overflow(x->loop);
}
