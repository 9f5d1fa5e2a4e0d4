/*
 * engine/metrics/web.c - serving the dashboard's files (web.h).
 */
#include "metrics/web.h"
#include "metrics/metrics.h"
#include "net/http.h"

#include <stdlib.h>
#include <string.h>

bool weir_web_serve(const struct weir_http_req *q, struct weir_http_resp *r)
{
	const char *p = !strcmp(q->path, "/") || !strcmp(q->path, "/index.html") ? "/web/index.html" : q->path;
	for (const struct weir_web_file *f = weir_web_files; f->path; f++) {
		if (strcmp(p, f->path))
			continue;
		if (strcmp(q->method, "GET")) {
			r->allow = "GET";
			weir_json_error(r, 405, "%s takes GET only", q->path);
			return true;
		}
		if (!(r->body = malloc(f->len))) {
			weir_json_error(r, 500, "out of memory");
			return true;
		}
		memcpy(r->body, f->data, f->len);
		r->len = f->len;
		r->status = 200;
		r->type = f->type;
		return true;
	}
	return false;
}
