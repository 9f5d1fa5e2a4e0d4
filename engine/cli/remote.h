/*
 * engine/cli/remote.h - a cluster across hosts, from the client's side:
 * running a command on another host through the launcher
 * (cluster.launcher, `ssh` by default), and the two commands run there,
 * `weir cluster join` and `weir cluster leave`.
 *
 * The launcher contract (docs/operations.md, "A cluster across hosts"):
 * weir runs `LAUNCHER-WORDS... HOST COMMAND`, the launcher split at
 * blanks (no quoting), HOST one word, COMMAND one argument that is a
 * POSIX shell command line (its words single-quoted), exactly what
 * `ssh HOST COMMAND` expects; the launcher must run COMMAND on HOST with
 * its stdin, stdout and stderr passed through, and exit with COMMAND's
 * status. The cluster secret is written on its stdin, never on a command
 * line. Each launcher runs in a process group of its own, killed when it
 * outlives its time.
 */
#ifndef WEIR_ENGINE_CLI_REMOTE_H
#define WEIR_ENGINE_CLI_REMOTE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <sys/types.h>

struct weir_launch {
	pid_t pid;		/* 0: not started (why says why) */
	int pidfd, out, err;	/* -1 once closed */
	char outbuf[512];	/* its stdout (the first bytes) */
	size_t outn;
	char errbuf[4096];	/* its stderr (the first bytes) */
	size_t errn;
	bool err_cut;		/* more came than errbuf holds */
	int status;		/* its wait status, once done */
	bool done, timed_out;
	char why[256];		/* it could not be started: why */
};

/* Start `LAUNCHER-WORDS... HOST CMDLINE` with input (NULL: none) on its
 * stdin, its stdout and stderr captured. 0, or -1 with l->why set (l is
 * then done). */
int weir_launch_start(struct weir_launch *l, const char *launcher, const char *host, const char *cmdline,
		      const char *input);
/* Wait until the n launches have ended, at most timeout_ms from now;
 * the process groups of those still running then are killed. */
void weir_launch_wait(struct weir_launch *l, int n, int timeout_ms);
/* NULL when l ended with status 0; else what went wrong ("the launcher
 * 'ssh' exited with status 255"), in buf. */
const char *weir_launch_failed(const struct weir_launch *l, const char *launcher, int timeout_ms, char *buf,
			       size_t n);
/* Print l's stderr to f, each line after indent. */
void weir_launch_print_stderr(const struct weir_launch *l, FILE *f, const char *indent);

/* Append s to buf (n bytes, *len used) as one sh word, single-quoted.
 * 0, or -1 when it does not fit. */
int weir_shell_word(char *buf, size_t n, size_t *len, const char *s);

int weir_cluster_join_main(int argc, char **argv);
int weir_cluster_leave_main(int argc, char **argv);
extern const char weir_cluster_join_usage[];
extern const char weir_cluster_leave_usage[];

#endif
