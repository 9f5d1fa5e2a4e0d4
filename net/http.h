/*
 * net/http.h - a small HTTP/1.1 server for JSON APIs, on libmicrohttpd.
 *
 * libmicrohttpd parses HTTP and runs the connections on its own thread
 * (epoll); this module bounds what a client may cost and hands each whole
 * request to one handler, on that thread, one request at a time:
 *   - it listens on 127.0.0.1 unless given another address;
 *   - at most max_conns connections (and max_conns / 4 from one address),
 *     each with a bounded memory (libmicrohttpd's pool, 64 KiB) and a body
 *     of at most max_body bytes (413 beyond, unread);
 *   - a connection idle for timeout_s seconds is closed: a client sending
 *     a byte a minute (slow loris) holds a slot that long at most;
 *   - a request the handler never saw (malformed: libmicrohttpd answers
 *     400 itself) costs nothing more.
 * The handler fills a response: status, a malloc'd body it gives away and
 * its content type. Knows nothing of jobs: the JobManager's REST API is
 * engine/cluster/rest.c.
 */
#ifndef WEIR_NET_HTTP_H
#define WEIR_NET_HTTP_H

#include <stddef.h>
#include <stdint.h>

struct weir_http_req {
	const char *method;	/* "GET", "PATCH", ... */
	const char *path;	/* "/jobs/3", without the query */
	const char *auth;	/* the Authorization header, or NULL */
	const uint8_t *body;	/* NUL-terminated, body_len bytes */
	size_t body_len;
};

struct weir_http_resp {
	int status;
	char *body;		/* malloc'd; the server frees it (NULL: empty) */
	size_t len;
	const char *type;	/* content type (static); NULL: application/json */
	const char *allow;	/* for 405: the Allow header (static), or NULL */
};

typedef void (*weir_http_fn)(void *arg, const struct weir_http_req *req, struct weir_http_resp *resp);

struct weir_http_config {
	const char *addr;	/* NULL: 127.0.0.1 */
	uint16_t port;		/* 0: any free port (weir_http_port tells) */
	unsigned max_conns;	/* 0: 64 */
	size_t max_body;	/* 0: 64 KiB */
	unsigned timeout_s;	/* 0: 10 */
};

struct weir_http;
/* Start serving; NULL with the trail set (the port is taken, ...). */
struct weir_http *weir_http_start(const struct weir_http_config *cfg, weir_http_fn fn, void *arg);
uint16_t weir_http_port(const struct weir_http *h);
/* Stop: no handler runs after it returns. NULL is fine. */
void weir_http_stop(struct weir_http *h);

#endif
