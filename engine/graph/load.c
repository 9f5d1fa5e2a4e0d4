/* engine/graph/load.c - see job.h. */
#include "graph/load.h"
#include "base/err.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int weir_job_load(struct weir_job_object *o, const char *path)
{
	memset(o, 0, sizeof(*o));
	struct stat st;
	if (stat(path, &st) < 0)
		return weir_err_errno(errno, "job '%s'", path);
	if (!S_ISREG(st.st_mode))
		return weir_err_set("job '%s': not a regular file", path);
	/* Check the ELF magic ourselves: dlopen's message for a text file is
	 * cryptic ("invalid ELF header"). */
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return weir_err_errno(errno, "job '%s'", path);
	unsigned char magic[4] = { 0 };
	ssize_t n = read(fd, magic, sizeof(magic));
	close(fd);
	if (n != 4 || memcmp(magic, "\177ELF", 4))
		return weir_err_set("job '%s': not a shared object (no ELF header)", path);
	/* dlopen searches the library path for names without a slash. */
	if (!strchr(path, '/'))
		snprintf(o->path, sizeof(o->path), "./%s", path);
	else
		snprintf(o->path, sizeof(o->path), "%s", path);
	o->handle = dlopen(o->path, RTLD_NOW | RTLD_LOCAL);
	if (!o->handle)
		return weir_err_set("job '%s': cannot load: %s", path, dlerror());
	o->entry = (int (*)(weir_env *, int, char **))dlsym(o->handle, "weir_job");
	if (!o->entry) {
		dlclose(o->handle);
		o->handle = NULL;
		return weir_err_set("job '%s': does not export weir_job", path);
	}
	return 0;
}

void weir_job_unload(struct weir_job_object *o)
{
	if (o->handle)
		dlclose(o->handle);
	o->handle = NULL;
}

weir_env *weir_job_build(struct weir_job_object *o, int parallelism, int argc, char **argv)
{
	weir_env *env = weir_env_create(parallelism);
	if (!env)
		return weir_err_set("out of memory"), NULL;
	int rc = o->entry(env, argc, argv);
	if (rc != 0 || env->error[0]) {
		if (env->error[0])
			weir_err_set("%s", env->error);
		else
			weir_err_set("weir_job returned %d without a message", rc);
		weir_env_destroy(env);
		return NULL;
	}
	return env;
}
