/*
 * engine/metrics/web.h - the web dashboard's files (engine/metrics/web/),
 * built into the binary by scripts/embed.cmake; the JobManager's REST API
 * and weir local's serve them ("/" is /web/index.html).
 */
#ifndef WEIR_ENGINE_METRICS_WEB_H
#define WEIR_ENGINE_METRICS_WEB_H

#include <stddef.h>

struct weir_web_file {
	const char *path;	/* "/web/app.js" */
	const char *type;	/* its Content-Type */
	const unsigned char *data;
	size_t len;
};

/* Ended by an entry whose path is NULL. */
extern const struct weir_web_file weir_web_files[];

/* When the request is for one of the files (public: they hold no data;
 * what they fetch asks for a token where one is needed), answer it and
 * return true. */
struct weir_http_req;
struct weir_http_resp;
#include <stdbool.h>
bool weir_web_serve(const struct weir_http_req *q, struct weir_http_resp *r);

#endif
