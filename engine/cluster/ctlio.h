/*
 * engine/cluster/ctlio.h - what the JobManager, the TaskManagers and the client
 * share: the run folder, sending control messages over net/ connections,
 * and a synchronous client connection (connect, authenticate, call).
 *
 * The run folder (--run-dir, else $WEIR_RUN_DIR, else /tmp/weir-<uid>),
 * mode 0700 and checked before use (weir_rundir_check), holds:
 *   secret            the cluster secret (0600, ctl/auth.h)
 *   cluster.id        the cluster's id: names its /dev/shm files
 *   jobmanager.addr   "127.0.0.1:PORT", written (atomically) once listening
 *   jobmanager.pid    the JobManager's pid
 *   jobmanager.log, taskmanager-N.log
 * Control messages travel as frames of type WEIR_FRAME_CTL whose payload
 * is one ctl Envelope (ctl/codec.h).
 */
#ifndef WEIR_ENGINE_CTLIO_H
#define WEIR_ENGINE_CTLIO_H

#include "ctl/auth.h"
#include "ctl/codec.h"
#include "net/loop.h"

#include <limits.h>
#include <stdbool.h>

#define WEIR_FRAME_CTL 1

struct weir_rundir {
	char dir[PATH_MAX - 64];
};

/* Fill rd from flag (may be NULL), $WEIR_RUN_DIR, or /tmp/weir-<uid>. */
void weir_rundir_init(struct weir_rundir *rd, const char *flag);
/* Check the run folder before anything in it is trusted; create it first
 * (0700) when create is set. It must be a folder, not a link (never
 * followed), owned by this user and writable by nobody else (read and
 * search bits for others are taken away); every folder above it must be
 * root's or this user's and, when others may write in it, sticky (as
 * /tmp), so nobody can put another folder in its place. rd->dir becomes
 * the path with links above the folder resolved. 0; 1 when it does
 * not exist (and create is false); < 0 with the trail naming the path and
 * the reason. */
int weir_rundir_check(struct weir_rundir *rd, bool create);
/* The path of a file in the run folder. */
void weir_rundir_path(const struct weir_rundir *rd, const char *file, char *out, size_t n);
/* Write a small file atomically (temp, fsync, rename), mode 0600. 0 or -1. */
int weir_write_file_atomic(const char *path, const char *content);
/* Read a small text file (trailing newline dropped). 0 or -1 (trail set). */
int weir_read_small_file(const char *path, char *out, size_t n);

/* Encode m and queue it on c as one frame. 0 or -errno. */
int weir_ctl_send(struct weir_conn *c, weir_msg *m);
/* The same for an Envelope built here: its body is `body`, a pointer to
 * the Weir__Ctl__ message of oneof case body_case, and it answers request
 * rid (0: it answers none). 0 or -errno. */
int weir_ctl_send_body(struct weir_conn *c, uint64_t rid, Weir__Ctl__Envelope__BodyCase body_case, void *body);

/* A job's CheckpointConfig from the checkpoint and restart knobs of cfg
 * (engine/graph/graph.h), with dir (absolute) and restore (absolute, or NULL).
 * out points into cfg, dir and restore: they must outlive it. */
struct weir_config;
void weir_ctl_ck_config(const struct weir_config *cfg, const char *dir, const char *restore,
			Weir__Ctl__CheckpointConfig *out);

/* A synchronous client of the JobManager (the weir command's subcommands,
 * tests): connects to the address in the run folder, authenticates with
 * the secret there, then exchanges request and reply. */
struct weir_ctl_client;
/* 0 or -1 with the trail naming the problem ("no cluster running in D",
 * "connect 127.0.0.1:P: Connection refused", "refused: wrong secret"). */
int weir_ctl_client_open(struct weir_ctl_client **out, const struct weir_rundir *rd, const char *name);
/* The same in another role (tests speak as a TaskManager with it). */
int weir_ctl_client_open_as(struct weir_ctl_client **out, const struct weir_rundir *rd, const char *name,
			    Weir__Ctl__Role role);
/* Send req (request_id set here); wait up to timeout_ms for the reply
 * with the same request id. 0 and *reply (weir_ctl_free it), or -1. */
int weir_ctl_client_call(struct weir_ctl_client *c, weir_msg *req, weir_msg **reply, int timeout_ms);
/* After a call: wait up to timeout_ms for one more message carrying the
 * same request id (a job's final JobInfo after its JobAccepted). Returns
 * 1 and *reply, 0 on timeout (call again), or -1. */
int weir_ctl_client_wait(struct weir_ctl_client *c, weir_msg **reply, int timeout_ms);
/* Send a request without waiting for its answer (answers to it are
 * dropped). 0 or -1. */
int weir_ctl_client_post(struct weir_ctl_client *c, weir_msg *req);
void weir_ctl_client_close(struct weir_ctl_client *c);

/*
 * Which machine this process runs on, as far as sharing memory goes:
 * "<boot id>/shm<device of /dev/shm>/net<inode of its network namespace>".
 * Two TaskManagers with the same identity share /dev/shm and may exchange
 * through it; any other pair uses TCP. Not the host name and not whether a
 * file can be opened: network namespaces on one machine (the test bed)
 * share both, and are still told apart here. 0, or -1 with the trail set.
 */
int weir_host_identity(char *buf, size_t n);

/*
 * TLS between the cluster's processes (net/tls.h, certificates made by
 * `weir cert`, net/cert.h): the contexts for this host's certificate NAME
 * in the certificate folder DIR, a server one and/or a client one (NULL
 * out-pointers are skipped). 0, or -1 with the trail naming the file and
 * the reason.
 */
struct weir_tls_ctx;
int weir_cluster_tls(const char *dir, const char *name, struct weir_tls_ctx **server, struct weir_tls_ctx **client);
/* The run folder's `tls` file ("DIR\nNAME\n"), written by `weir cluster
 * start` when tls.enabled: the certificate folder and name its commands
 * use towards the JobManager. 1 read, 0 no such file (plain), -1 with the
 * trail set. */
int weir_rundir_tls(const struct weir_rundir *rd, char *dir, size_t dn, char *name, size_t nn);

#endif
