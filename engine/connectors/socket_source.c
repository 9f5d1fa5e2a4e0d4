/*
 * engine/connectors/socket_source.c - weir_source_socket: lines of text
 * from a TCP server (Flink's socketTextStream), for demos with `nc -lk`.
 *
 * One subtask (a socket is one stream of bytes). The worker never blocks
 * on it: the connect is non-blocking and looked at on each poll, reads are
 * MSG_DONTWAIT, and while nothing comes the source is idle, polled again a
 * millisecond later. A connection that fails or ends is made again after
 * a pause that doubles from 100 ms up to 5 s, until max_retry_s seconds
 * passed without a connection: then the source ends (the connection's
 * last line, without its newline, is emitted first), or, when no
 * connection was ever made, fails naming the address and why. Not
 * checkpointable: what came through a socket cannot be read again.
 */
#include "connectors/internal.h"
#include "operators/chain.h"
#include "base/err.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define SOCK_BUF (64u << 10)
#define BACKOFF_MIN_NS 100000000ull
#define BACKOFF_MAX_NS 5000000000ull

struct sock_conf {
	char host[256];
	uint16_t port;
	int64_t max_retry_s;	/* < 0: for ever */
};

struct sock_reader {
	int fd;
	bool connecting, connected_once;
	uint64_t next_try_ns;	/* 0: now */
	uint64_t backoff_ns;
	uint64_t down_since_ns;	/* no connection since (0: connected) */
	char why[256];		/* the last failure */
	char *buf;
	size_t lo, hi, cap;
};

static void sock_drop(struct sock_reader *r, uint64_t now, const char *why)
{
	if (r->fd >= 0)
		close(r->fd);
	r->fd = -1;
	r->connecting = false;
	if (!r->down_since_ns)
		r->down_since_ns = now;
	snprintf(r->why, sizeof(r->why), "%s", why);
	r->next_try_ns = now + r->backoff_ns;
	r->backoff_ns = r->backoff_ns * 2 > BACKOFF_MAX_NS ? BACKOFF_MAX_NS : r->backoff_ns * 2;
}

static int sock_open(weir_ctx *ctx)
{
	struct sock_reader *r = calloc(1, sizeof(*r));
	if (!r || !(r->buf = malloc(SOCK_BUF))) {
		free(r);
		return weir_fail(ctx, "out of memory");
	}
	r->fd = -1;
	r->cap = SOCK_BUF;
	r->backoff_ns = BACKOFF_MIN_NS;
	r->down_since_ns = weir_ctx_now_ns(ctx);
	weir_ctx_set_state(ctx, r);
	return 0;
}

static int sock_close(weir_ctx *ctx)
{
	struct sock_reader *r = weir_ctx_state(ctx);
	if (!r)
		return 0;
	if (r->fd >= 0)
		close(r->fd);
	free(r->buf);
	free(r);
	weir_ctx_set_state(ctx, NULL);
	return 0;
}

/* Start a connection (non-blocking). */
static void sock_start(weir_ctx *ctx, struct sock_reader *r, const struct sock_conf *c, uint64_t now)
{
	(void)ctx;
	char port[8];
	snprintf(port, sizeof(port), "%u", c->port);
	struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM }, *ai = NULL;
	int g = getaddrinfo(c->host, port, &hints, &ai);
	if (g != 0) {
		char why[256];
		snprintf(why, sizeof(why), "cannot resolve '%s': %s", c->host, gai_strerror(g));
		sock_drop(r, now, why);
		return;
	}
	r->fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (r->fd < 0 || (connect(r->fd, ai->ai_addr, ai->ai_addrlen) < 0 && errno != EINPROGRESS)) {
		sock_drop(r, now, strerror(errno));
		freeaddrinfo(ai);
		return;
	}
	freeaddrinfo(ai);
	r->connecting = true;
}

/* Emit the complete lines buffered (the rest too, at the end). */
static int sock_lines(weir_ctx *ctx, struct sock_reader *r, bool end, uint32_t *budget)
{
	while (*budget && r->lo < r->hi) {
		char *nl = memchr(r->buf + r->lo, '\n', r->hi - r->lo);
		if (!nl && !end)
			break;
		size_t len = nl ? (size_t)(nl - (r->buf + r->lo)) : r->hi - r->lo;
		size_t eat = len + (nl ? 1 : 0);
		if (len && r->buf[r->lo + len - 1] == '\r')
			len--;
		if (weir_emit_ts(ctx, r->buf + r->lo, (uint32_t)len, WEIR_TS_NONE) < 0)
			return -1;
		r->lo += eat;
		(*budget)--;
	}
	return 0;
}

static int sock_poll(weir_ctx *ctx)
{
	const struct sock_conf *c = weir_ctx_arg(ctx);
	struct sock_reader *r = weir_ctx_state(ctx);
	uint64_t now = weir_ctx_now_ns(ctx);
	uint32_t budget = weir_ctx_batch(ctx);
	if (sock_lines(ctx, r, false, &budget) < 0)
		return -1;
	if (!budget)
		return WEIR_SOURCE_MORE;
	if (r->fd < 0) {
		if (c->max_retry_s >= 0 && r->down_since_ns &&
		    now - r->down_since_ns >= (uint64_t)c->max_retry_s * 1000000000ull && r->next_try_ns) {
			if (!r->connected_once)
				return weir_fail(ctx, "socket source: cannot connect to %s:%u: %s", c->host, c->port, r->why);
			return WEIR_SOURCE_END; /* down longer than max_retry_s: the stream ends */
		}
		if (now < r->next_try_ns) {
			weir_ctx_idle_until(ctx, r->next_try_ns);
			return WEIR_SOURCE_IDLE;
		}
		sock_start(ctx, r, c, now);
		if (r->fd < 0)
			return WEIR_SOURCE_MORE; /* failed at once: the check above decides */
	}
	if (r->connecting) {
		struct pollfd p = { .fd = r->fd, .events = POLLOUT };
		if (poll(&p, 1, 0) == 0) {
			weir_ctx_idle_until(ctx, now + 1000000u);
			return WEIR_SOURCE_IDLE;
		}
		int err = 0;
		socklen_t el = sizeof(err);
		getsockopt(r->fd, SOL_SOCKET, SO_ERROR, &err, &el);
		if (err) {
			sock_drop(r, now, strerror(err));
			return WEIR_SOURCE_MORE;
		}
		r->connecting = false;
		r->connected_once = true;
		r->down_since_ns = 0;
		r->backoff_ns = BACKOFF_MIN_NS;
	}
	if (r->lo > 0) { /* room at the end for what comes */
		memmove(r->buf, r->buf + r->lo, r->hi - r->lo);
		r->hi -= r->lo;
		r->lo = 0;
	}
	if (r->hi == r->cap) {
		if (r->cap > ctx->st->job->cfg.max_record)
			return weir_fail(ctx, "socket source: a line from %s:%u is longer than the maximum record size "
					 "(%u bytes)", c->host, c->port, ctx->st->job->cfg.max_record);
		char *b = realloc(r->buf, r->cap * 2);
		if (!b)
			return weir_fail(ctx, "out of memory");
		r->buf = b;
		r->cap *= 2;
	}
	ssize_t n = recv(r->fd, r->buf + r->hi, r->cap - r->hi, MSG_DONTWAIT);
	if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
		weir_ctx_idle_until(ctx, now + 1000000u);
		return WEIR_SOURCE_IDLE;
	}
	if (n <= 0) {
		/* closed or broken: its last line, then a new connection */
		if (sock_lines(ctx, r, true, &budget) < 0)
			return -1;
		sock_drop(r, now, n == 0 ? "the server closed the connection" : strerror(errno));
		return WEIR_SOURCE_MORE;
	}
	r->hi += (size_t)n;
	if (sock_lines(ctx, r, false, &budget) < 0)
		return -1;
	return WEIR_SOURCE_MORE;
}

weir_stream *weir_source_socket(weir_env *env, const char *host, uint16_t port, int64_t max_retry_s)
{
	if (!env)
		return NULL;
	if (!host || !*host || strlen(host) >= 256)
		return weir_env_error(env, "socket source: no host, or a host name of 256 bytes or more"), NULL;
	if (!port)
		return weir_env_error(env, "socket source: port 0"), NULL;
	struct sock_conf *c = calloc(1, sizeof(*c));
	if (!c)
		return weir_env_error(env, "out of memory"), NULL;
	snprintf(c->host, sizeof(c->host), "%s", host);
	c->port = port;
	c->max_retry_s = max_retry_s;
	char name[WEIR_NAME_MAX];
	weir_unique_name(env, "socket", name, sizeof(name));
	struct node *n = weir_env_add(env, OP_SOURCE, name, NULL);
	if (!n) {
		free(c);
		return NULL;
	}
	n->fn.source = sock_poll;
	n->builtin = true;
	n->arg = c;
	n->open = sock_open;
	n->close = sock_close;
	n->parallelism = 1;
	n->no_ck_why = "what came through a socket cannot be read again";
	n->hooks.free_arg = free;
	return weir_env_stream(env, n);
}
