/*
 * engine/cluster/jm.h - private to the JobManager: its state, shared by
 * jobmanager.c (the loop thread: everything it does, it does holding
 * jm.lock, except while it waits in the kernel) and rest.c (the REST
 * API's thread, which reads the state holding jm.lock and leaves actions
 * for the loop thread in jm.rest_actions).
 */
#ifndef WEIR_ENGINE_CLUSTER_JM_H
#define WEIR_ENGINE_CLUSTER_JM_H

#include "checkpoint/coordinator.h"
#include "checkpoint/restart.h"
#include "graph/graph.h"
#include "metrics/metrics.h"
#include "cluster/config.h"
#include "cluster/ctlio.h"
#include "cluster/daemons.h"
#include "ctl/auth.h"
#include "ctl/objstore.h"
#include "sched/placement.h"
#include "net/loop.h"
#include "net/tls.h"
#include "shm/shmfile.h"
#include "base/log.h"

#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>

#define MAX_TMS 256
#define MAX_WAITERS 64
/* heartbeats: how often TaskManagers send them, how long without one
 * drops a TaskManager (jm.hb_ms, jm.hb_timeout_ms: heartbeat.interval_ms
 * and heartbeat.timeout_ms; 100 and 2000 by default, so a host gone
 * silent on a LAN is noticed within 2 s). The TaskManagers' exchanges use
 * the same timeout for their data connections. */
#define STOP_GRACE_MS 5000
#define MAX_CONNS 4096		/* the connection table, if the descriptor limit allows */
#define STALL_MS 30000		/* a frame begun, or answers not read, for this long: closed */
#define REFUSED_LOG_MS 1000	/* refused connections: at most a line a second */

struct peer {
	struct peer *prev, *next;	/* every open connection, for the deadlines */
	uint64_t conn;
	struct weir_auth auth;
	bool authed;
	int tm;			/* index in tms, or -1 */
	uint64_t opened_ns;
	uint64_t close_at_ns;	/* refused: close once the answer went out */
	bool logged;		/* its refusal is logged already */
	struct weir_obj_in up;	/* an object the client uploads in chunks (up.fd -1: none) */
};

struct tmrec {
	bool live;
	uint32_t id;
	uint32_t pid;
	int32_t numa_node;
	uint32_t slots;
	char host[64];
	char host_id[128];	/* which machine and network namespace (RegisterTaskManager) */
	char data_addr[96];	/* its exchange's host:port */
	char pool[128];
	uint32_t pool_id, segments, segment_size;
	int32_t pool_node;
	uint64_t conn;
	uint64_t last_hb_ns;
	/* from its heartbeats: free segments of its pool; CPU time, now and a
	 * second or more before (the load is their difference) */
	uint32_t pool_free;
	uint64_t cpu_ns, cpu_at_ns, cpu_prev_ns, cpu_prev_at_ns;
	bool busy[1024];	/* slots held by running jobs */
};

#define MAX_JOBS 64
enum { SP_OP_NONE, SP_OP_IN_PROGRESS, SP_OP_COMPLETED, SP_OP_FAILED };

/* What the REST API asked for, left for the loop thread (jm.actions). */
enum { RA_CANCEL = 1, RA_SAVEPOINT };
struct rest_action {
	int kind;
	uint64_t job;
	uint64_t trigger;	/* RA_SAVEPOINT: the request id the caller polls */
	bool stop;		/* RA_SAVEPOINT: then stop the job */
	char dir[PATH_MAX];
};
#define MAX_REST_ACTIONS 16
#define JM_EXCEPTIONS 8	/* the failures a job keeps for /jobs/:id/exceptions */

enum { P_DEPLOYED, P_PREPARED, P_OVER, P_RELEASED };

struct jobrec {
	bool used, started, decided, failed, canceled;
	uint64_t id;
	char name[128];
	Weir__Ctl__JobState state;
	uint64_t start_ms, end_ms;
	uint32_t parallelism;
	char message[1024];
	uint64_t client_conn, client_rid;	/* 0: detached, or nobody waits */
	uint32_t tm_ids[MAX_TMS];
	uint8_t phase[MAX_TMS];
	uint32_t slots_on[MAX_TMS];	/* slots this job holds on tm_ids[k] */
	int ntm;
	struct weir_place held[1024];	/* the (taskmanager, slot)s it holds while it runs */
	uint64_t held_conn[1024];	/* ... on that TaskManager's connection: a re-registered
					 * one under the same id holds none of them */
	int nheld;
	bool refused;		/* a TaskManager refused the attempt before it ran: the same again */
	uint32_t nsub;		/* subtasks of the attempt: a checkpoint holds a file of each */
	bool lost_tm;		/* this attempt lost a taskmanager */
	uint8_t *sub;		/* the SubmitJob, packed (without the object): every attempt deploys it */
	size_t sublen;
	/* checkpoints and restarts (ck_on false: neither) */
	bool ck_on, alo, unaligned;
	struct ck_coordinator ck;
	struct ck_restart restart;	/* the restart strategy */
	uint32_t attempt;		/* restarts so far */
	bool restarting;
	uint64_t restart_at_ns, restart_deadline_ns;
	uint64_t restored;		/* the checkpoint this attempt started from */
	char restore[PATH_MAX + 32];	/* the folder the next attempt starts from ("" none) */
	/* a savepoint asked for by a client (sp_conn), or by the REST API
	 * (sp_rest: its result goes into sp_op); neither: none */
	uint64_t sp_conn, sp_rid;
	bool sp_rest;
	struct {
		uint64_t trigger;	/* the REST API's request id (0: none asked) */
		int status;		/* SP_OP_* */
		char result[PATH_MAX + 64];	/* the savepoint's folder, or why it failed */
	} sp_op;
	bool sp_stop, sp_begun, stopped;
	char sp_dir[PATH_MAX];
	char ck_token[40];	/* in <checkpoint folder>/.storage-id: a TaskManager that reads it sees our folder */
	char stop_msg[PATH_MAX + 64];
	/* observability (rest.c): the subtasks' figures from the TaskManagers'
	 * MetricsReports (reset at each attempt), the failures so far */
	struct weir_series metrics;
	struct exc {
		uint64_t ms;	/* wall clock */
		uint32_t attempt;
		char msg[512];
	} exc[JM_EXCEPTIONS];
	uint32_t nexc;		/* exc[(nexc - 1) % JM_EXCEPTIONS] is the newest */
};

struct waiter {
	bool used;
	uint64_t conn;
	uint64_t request_id;
	uint32_t want;
	uint64_t deadline_ns;
};

/* A submission waiting for free slots (at most slot_wait_ms), re-packed:
 * the decoded message it came in is freed when its frame is done. */
struct parked {
	uint64_t conn, rid;
	uint8_t *buf;
	size_t len;
	uint64_t since_ns, deadline_ns;
};
#define MAX_PARKED 16

struct jm_state {
	struct weir_rundir rd;
	char objdir[PATH_MAX];	/* the object store */
	uint8_t *chunk;		/* WEIR_CTL_MAX_CHUNK bytes for FetchObject answers */
	struct weir_auth_secret secret;
	char cluster_id[64];
	struct weir_loop *loop;
	struct tmrec tms[MAX_TMS];
	struct waiter waiters[MAX_WAITERS];
	struct peer *peers;
	struct jobrec jobs[MAX_JOBS];
	uint64_t next_job;
	struct parked parked[MAX_PARKED];	/* [0, nparked), oldest first */
	int nparked;
	long slot_wait_ms;
	bool force_tcp;		/* --exchange tcp: channels between TaskManagers over TCP even on one host */
	uint32_t net_credits;	/* --exchange-credits: segments a receiver grants a channel over TCP */
	uint32_t hb_ms, hb_timeout_ms;	/* --heartbeat-interval, --heartbeat-timeout */
	struct weir_tls_ctx *tls;	/* --tls-dir/--tls-name: every connection speaks TLS (NULL: plain) */
	struct weir_config ckdef;	/* checkpoints of jobs submitted without (interval 0: none) */
	bool stopping;
	uint64_t stop_deadline_ns;
	volatile sig_atomic_t signalled;
	struct weir_log_limit refused;	/* lines about refused connections */
	uint32_t max_conns;
	struct weir_shm hold;	/* weir-<cluster>/cluster: keeps the cluster's /dev/shm folder */
	/* the REST API (rest.c): the loop thread holds lock but while it
	 * waits in the kernel; the API's thread takes it to read */
	pthread_mutex_t lock;
	struct rest *rest;
	/* actions the REST API asked for, [0, nactions), carried out by the
	 * loop thread's tick (both hold lock to touch them) */
	struct rest_action actions[MAX_REST_ACTIONS];
	int nactions;
	uint64_t next_trigger;
};

extern struct jm_state jm;

#endif
