/*
 * engine/cluster/web.h - the web dashboard's files (engine/cluster/web/),
 * built into the binary by scripts/embed.cmake; the REST API serves them
 * (rest.c: "/" is /web/index.html).
 */
#ifndef WEIR_ENGINE_CLUSTER_WEB_H
#define WEIR_ENGINE_CLUSTER_WEB_H

#include <stddef.h>

struct weir_web_file {
	const char *path;	/* "/web/app.js" */
	const char *type;	/* its Content-Type */
	const unsigned char *data;
	size_t len;
};

/* Ended by an entry whose path is NULL. */
extern const struct weir_web_file weir_web_files[];

#endif
