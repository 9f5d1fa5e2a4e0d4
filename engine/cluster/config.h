/*
 * engine/cluster/config.h - the cluster's configuration file.
 *
 * One YAML mapping of `key: value` lines (parsed with libyaml), e.g.
 *
 *     taskmanagers: 2
 *     taskmanager.slots: 2
 *     jobmanager.port: 6123
 *     log_level: info
 *
 * Flags override the file; the file overrides the defaults. An unknown
 * key, a value of the wrong kind, a key given twice or anything but a flat
 * mapping of scalars is refused with the file, line and key named.
 * docs/configuration.md lists every key with its default.
 */
#ifndef WEIR_ENGINE_CONFIG_H
#define WEIR_ENGINE_CONFIG_H

#include <limits.h>

struct weir_cluster_config {
	long taskmanagers;	/* 0: one per NUMA node */
	long slots;		/* 0: allowed CPUs / taskmanagers */
	long port;		/* jobmanager.port; 0: ephemeral */
	long rest_port;		/* rest.port: the REST API's (loopback); 0: ephemeral (the default), -1: off */
	char bind[64];		/* jobmanager.bind */
	char rest_bind[64];	/* rest.bind: the REST API's address (127.0.0.1; beyond loopback every request needs the token) */
	char run_dir[PATH_MAX - 64];
	char log_level[16];
	long segments;		/* taskmanager.segments */
	long segment_size;	/* taskmanager.segment_size */
	long slot_wait_ms;	/* jobmanager.slot_wait_ms: how long a job waits for free slots */
	long cancel_timeout_ms;	/* taskmanager.cancel_timeout_ms: a subtask not stopped this long after
				 * its job's cancel or failure fails its TaskManager (0: never) */
	/* defaults for jobs submitted without checkpoint flags (interval 0: none) */
	long ck_interval_ms;	/* checkpoint.interval_ms */
	long ck_timeout_ms;	/* checkpoint.timeout_ms */
	long ck_min_pause_ms;	/* checkpoint.min_pause_ms */
	long ck_retain;		/* checkpoint.retain */
	long ck_at_least_once;	/* checkpoint.at_least_once: 0 or 1 */
	long ck_unaligned;	/* checkpoint.unaligned: 0 or 1 */
	char ck_dir[PATH_MAX - 64];	/* checkpoint.dir */
	long restart_attempts;	/* restart.attempts */
	long restart_delay_ms;	/* restart.delay_ms */
	long restart_max_delay_ms;	/* restart.max_delay_ms: exponential backoff up to it (0: fixed) */
	long hb_ms;		/* heartbeat.interval_ms */
	long net_credits;	/* exchange.credits: segments a receiver grants a channel between hosts */
	char idle[16];		/* worker.idle: how idle workers wait (sleep, busy, yield, backoff) */
	long spin_us;		/* worker.spin_us: their spin before yielding or sleeping */
	long hb_timeout_ms;	/* heartbeat.timeout_ms: a TaskManager (or a data connection) silent this long is lost */
	long tls_enabled;	/* tls.enabled: every connection of the cluster speaks TLS */
	char tls_dir[PATH_MAX - 64];	/* tls.dir: the certificate folder (weir cert) */
	char tls_name[128];	/* tls.name: this host's certificate in it */
	char exchange[8];	/* cluster.exchange: "auto" (shared memory on one host, TCP between
				 * hosts) or "tcp" (TCP between every two TaskManagers) */
	/* a cluster across hosts (docs/operations.md, "A cluster across hosts") */
	char hosts[PATH_MAX - 64];	/* cluster.hosts: the hosts file ("": none) */
	char launcher[512];		/* cluster.launcher: the command prefix that runs a command on a host */
	char remote_weir[PATH_MAX - 64];	/* cluster.remote_weir: weir there ("": this weir's path) */
	char remote_run_dir[PATH_MAX - 64];	/* cluster.remote_run_dir: the run folders' parent there
						 * ("": this cluster's run folder's path) */
	long launch_timeout_ms;		/* cluster.launch_timeout_ms: how long a launcher may take */
};

void weir_cluster_config_defaults(struct weir_cluster_config *c);
/* Read path into c (keys present in the file only). 0, or -1 with the
 * trail naming the file, line and problem. */
int weir_cluster_config_load(const char *path, struct weir_cluster_config *c);

struct weir_config;
/*
 * The checkpoint and restart flags `weir local` and `weir run` share
 * (--checkpoint-interval, --checkpoint-dir, ..., --restart-max-delay): if
 * argv[*i] is one, store it in cfg and step *i past its value. 1 taken,
 * 0 not one of them, -1 a bad value (the message is printed, naming it).
 * interval_min: the least --checkpoint-interval accepted (a cluster job
 * takes 0: savepoints only).
 */
int weir_config_ck_option(struct weir_config *cfg, int argc, char **argv, int *i, long long interval_min);

/* The idle strategy's flags, shared by weir local, weir run and the
 * JobManager: --idle sleep|busy|yield|backoff and --spin-us N (into
 * cfg->idle, cfg->spin_ns; idle_set), and --debloat-us N (cfg->debloat_ns;
 * the JobManager's is the default of jobs that do not say). Like weir_config_ck_option: 1 when
 * argv[*i] was one (its value consumed), 0 when not, -1 after a usage
 * error named on stderr. */
int weir_config_idle_option(struct weir_config *cfg, int argc, char **argv, int *i);

#endif
