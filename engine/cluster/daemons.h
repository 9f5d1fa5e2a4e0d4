/*
 * engine/cluster/daemons.h - `weir jobmanager` and `weir taskmanager`, the
 * local cluster's daemons (weir cluster start runs them), and their usage
 * texts: the one source of what `weir jobmanager --help` and
 * `weir taskmanager --help` print.
 */
#ifndef WEIR_ENGINE_DAEMONS_H
#define WEIR_ENGINE_DAEMONS_H

#include <stdbool.h>
#include <string.h>

int weir_jobmanager_main(int argc, char **argv);
int weir_taskmanager_main(int argc, char **argv);

extern const char weir_jobmanager_usage[];
extern const char weir_taskmanager_usage[];

/* Is a one of the flags every command takes for its usage, --help and -h? */
static inline bool weir_help_flag(const char *a)
{
	return !strcmp(a, "--help") || !strcmp(a, "-h");
}

#endif
