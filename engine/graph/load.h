/*
 * engine/graph/load.h - loading a job's shared object and building its graph.
 */
#ifndef WEIR_ENGINE_JOB_H
#define WEIR_ENGINE_JOB_H

#include "graph/graph.h"

struct weir_job_object {
	void *handle;
	int (*entry)(weir_env *, int, char **);
	char path[4096];
};

/* dlopen path and find weir_job. 0, or -1 with the trail naming the
 * problem (missing file, not a shared object, no weir_job). */
int weir_job_load(struct weir_job_object *o, const char *path);
void weir_job_unload(struct weir_job_object *o);
/* Call weir_job on a fresh env. The env, or NULL with the trail set. */
weir_env *weir_job_build(struct weir_job_object *o, int parallelism, int argc, char **argv);

#endif
