/*
 * engine/cluster/hosts.h - the hosts file: where `weir cluster start` puts
 * the JobManager and each TaskManager of a cluster across hosts (as
 * Flink's masters and workers files). YAML, parsed with libyaml:
 *
 *     jobmanager: 10.0.0.1          # this host: the address it binds, that others reach
 *     taskmanagers:
 *       - address: 10.0.0.1         # on the JobManager's host: started here
 *         slots: 4
 *       - address: 10.0.0.2         # advertised to the other TaskManagers
 *         host: worker2             # given to the launcher (default: the address)
 *         slots: 8
 *         numa_node: 1
 *         launcher: ssh -p 2222     # this host's launcher (default: cluster.launcher)
 *
 * Every problem is refused with the file, the line and what is wrong;
 * docs/operations.md ("A cluster across hosts") describes the keys.
 */
#ifndef WEIR_ENGINE_HOSTS_H
#define WEIR_ENGINE_HOSTS_H

#include <stdbool.h>

#define WEIR_HOSTS_LOCAL_MAX 64		/* TaskManagers on the JobManager's host: ids 0..63 */
#define WEIR_HOSTS_REMOTE_MAX 192	/* the others: ids 64..255, which the JobManager assigns */

struct weir_hosts_tm {
	char address[64];	/* an IPv4 or IPv6 literal: its data address, and the host's */
	char host[256];		/* what the launcher is given: a name or address (default: address) */
	char launcher[512];	/* "": the cluster's (cluster.launcher) */
	long slots;		/* 0: not given */
	long numa_node;		/* -1: not given */
	int line;		/* of its entry in the file, for messages */
	int host_line, launcher_line;	/* of its host and launcher keys (0: not given) */
	bool local;		/* on the JobManager's host (address == jobmanager): no launcher */
};

struct weir_hosts {
	char jobmanager[64];	/* an IPv4 or IPv6 literal, not a wildcard */
	int n, nlocal;
	struct weir_hosts_tm tm[WEIR_HOSTS_LOCAL_MAX + WEIR_HOSTS_REMOTE_MAX];
};

/* Read and check the hosts file at path. 0, or -1 with the trail naming
 * the file, the line and the problem. */
int weir_hosts_load(const char *path, struct weir_hosts *h);

/* Is s a command (a launcher) that weir can split at blanks: not empty,
 * no control characters but tabs, not only blanks? */
bool weir_hosts_command_ok(const char *s);

#endif
