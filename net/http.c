/*
 * net/http.c - the HTTP server (http.h) on libmicrohttpd.
 */
#include "net/http.h"
#include "base/err.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct weir_http {
	struct MHD_Daemon *d;
	weir_http_fn fn;
	void *arg;
	size_t max_body;
	uint16_t port;
	pthread_mutex_t one;	/* one request at a time in the handler */
};

/* A request being received: its body so far (bounded). */
struct req {
	uint8_t *body;
	size_t len;
	bool too_big;
};

static const char *const json = "application/json";

static enum MHD_Result answer(struct MHD_Connection *conn, struct weir_http_resp *r)
{
	struct MHD_Response *resp = MHD_create_response_from_buffer_with_free_callback(r->len, r->body, free);
	if (!resp) {
		free(r->body);
		return MHD_NO;
	}
	MHD_add_response_header(resp, "Content-Type", r->type ? r->type : json);
	MHD_add_response_header(resp, "Cache-Control", "no-store");
	if (r->allow)
		MHD_add_response_header(resp, "Allow", r->allow);
	enum MHD_Result rc = MHD_queue_response(conn, (unsigned)r->status, resp);
	MHD_destroy_response(resp);
	return rc;
}

static void error(struct weir_http_resp *r, int status, const char *msg)
{
	r->status = status;
	r->type = json;
	/* msg is ours and has no quotes or backslashes */
	int n = asprintf(&r->body, "{\"errors\":[\"%s\"]}", msg);
	r->len = n < 0 ? 0 : (size_t)n;
	if (n < 0)
		r->body = NULL;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
				  const char *version, const char *upload, size_t *upload_size, void **con_cls)
{
	struct weir_http *h = cls;
	(void)version;
	struct req *q = *con_cls;
	if (!q) { /* the headers are in: the body (if any) comes in later calls */
		if (!(q = calloc(1, sizeof(*q))))
			return MHD_NO;
		*con_cls = q;
		return MHD_YES;
	}
	if (*upload_size) {
		if (q->too_big || q->len + *upload_size > h->max_body) {
			q->too_big = true; /* the rest is dropped, never stored */
		} else {
			uint8_t *b = realloc(q->body, q->len + *upload_size + 1);
			if (!b)
				return MHD_NO;
			memcpy(b + q->len, upload, *upload_size);
			q->body = b;
			q->len += *upload_size;
			q->body[q->len] = 0;
		}
		*upload_size = 0;
		return MHD_YES;
	}
	struct weir_http_resp r = { 0 };
	if (q->too_big) {
		error(&r, 413, "request body too large");
		return answer(conn, &r);
	}
	struct weir_http_req rq = { method, url, MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Authorization"),
				    q->body ? q->body : (const uint8_t *)"", q->len };
	pthread_mutex_lock(&h->one);
	h->fn(h->arg, &rq, &r);
	pthread_mutex_unlock(&h->one);
	if (!r.status)
		error(&r, 500, "no answer");
	return answer(conn, &r);
}

static void on_done(void *cls, struct MHD_Connection *conn, void **con_cls, enum MHD_RequestTerminationCode why)
{
	(void)cls;
	(void)conn;
	(void)why;
	struct req *q = *con_cls;
	if (q) {
		free(q->body);
		free(q);
		*con_cls = NULL;
	}
}

/* libmicrohttpd's own messages (a malformed request, a refused
 * connection) are a client's doing: not ours to print. */
static void quiet(void *cls, const char *fmt, va_list ap)
{
	(void)cls;
	(void)fmt;
	(void)ap;
}

struct weir_http *weir_http_start(const struct weir_http_config *cfg, weir_http_fn fn, void *arg)
{
	struct weir_http *h = calloc(1, sizeof(*h));
	if (!h)
		return weir_err_set("out of memory"), NULL;
	h->fn = fn;
	h->arg = arg;
	h->max_body = cfg->max_body ? cfg->max_body : 64 * 1024;
	pthread_mutex_init(&h->one, NULL);
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(cfg->port) };
	const char *addr = cfg->addr ? cfg->addr : "127.0.0.1";
	if (inet_pton(AF_INET, addr, &sa.sin_addr) != 1) {
		pthread_mutex_destroy(&h->one);
		free(h);
		return weir_err_set("HTTP: '%s' is not an IPv4 address", addr), NULL;
	}
	unsigned conns = cfg->max_conns ? cfg->max_conns : 64;
	h->d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ERROR_LOG, cfg->port, NULL, NULL,
				on_request, h, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
				MHD_OPTION_CONNECTION_LIMIT, conns, MHD_OPTION_PER_IP_CONNECTION_LIMIT,
				conns / 4 ? conns / 4 : 1, MHD_OPTION_CONNECTION_TIMEOUT,
				cfg->timeout_s ? cfg->timeout_s : 10u, MHD_OPTION_CONNECTION_MEMORY_LIMIT,
				(size_t)64 * 1024, MHD_OPTION_NOTIFY_COMPLETED, on_done, h, MHD_OPTION_EXTERNAL_LOGGER,
				quiet, NULL, MHD_OPTION_END);
	if (!h->d) {
		pthread_mutex_destroy(&h->one);
		free(h);
		return weir_err_set("HTTP: cannot listen on %s:%u (taken?)", addr, cfg->port), NULL;
	}
	const union MHD_DaemonInfo *di = MHD_get_daemon_info(h->d, MHD_DAEMON_INFO_BIND_PORT);
	h->port = di ? di->port : cfg->port;
	return h;
}

uint16_t weir_http_port(const struct weir_http *h) { return h->port; }

void weir_http_stop(struct weir_http *h)
{
	if (!h)
		return;
	MHD_stop_daemon(h->d); /* joins its thread: no handler after this */
	pthread_mutex_destroy(&h->one);
	free(h);
}
