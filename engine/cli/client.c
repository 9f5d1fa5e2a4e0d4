/*
 * engine/cli/client.c - `weir cluster start|status|stop`: the local cluster
 * from the user's side.
 *
 * start   creates the run folder (0700), the cluster secret (0600) and id,
 *         sweeps what crashed clusters left in /dev/shm, then starts the
 *         JobManager and N TaskManagers as daemons (own session, stdout
 *         and stderr to their log files) and waits, through a pipe each
 *         one writes to once ready, until all are up and registered.
 * status  asks the JobManager (optionally waiting until exactly N
 *         TaskManagers are registered: an event the JobManager answers,
 *         not a poll).
 * stop    asks the JobManager to stop the cluster, waits for the processes
 *         to exit (pidfd: no sleeps, no PID reuse), then removes what a
 *         crashed process may have left in /dev/shm and in the run folder.
 */
#include "cli/cli.h"
#include "cluster/ctlio.h"
#include "net/tls.h"
#include "cluster/config.h"
#include "cluster/daemons.h"
#include "cluster/supervisor.h"
#include "ctl/objstore.h"
#include "ctl/sha.h"
#include "base/err.h"
#include "base/log.h"
#include "base/num.h"
#include "sched/cpu.h"
#include "shm/shmfile.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <fcntl.h>
#include <numa.h>
#include <openssl/rand.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define EXIT_FAIL 1
#define EXIT_USAGE 2

static int absolute(const char *what, const char *path, char *out, size_t n, bool must_exist);

static int fail(const char *what)
{
	fprintf(stderr, "weir cluster %s: %s\n", what, weir_err_msg());
	return EXIT_FAIL;
}

static int pidfd_of(pid_t pid)
{
	return (int)syscall(SYS_pidfd_open, pid, 0);
}

/* Wait up to timeout_ms for pid to exit (any process, not only children). */
static bool wait_exit(pid_t pid, int timeout_ms)
{
	int fd = pidfd_of(pid);
	if (fd < 0)
		return errno == ESRCH;
	struct pollfd p = { .fd = fd, .events = POLLIN };
	int r = poll(&p, 1, timeout_ms);
	close(fd);
	return r == 1;
}

static bool alive(pid_t pid)
{
	return pid > 0 && kill(pid, 0) == 0;
}

/* Is pid a weir process (this very program)? A pid file outlives its
 * process, and the pid may be someone else's by now. */
static bool is_weir(pid_t pid)
{
	char a[PATH_MAX], b[PATH_MAX], p[64];
	snprintf(p, sizeof(p), "/proc/%d/exe", (int)pid);
	ssize_t n = readlink(p, a, sizeof(a) - 1), m = readlink("/proc/self/exe", b, sizeof(b) - 1);
	if (n < 0 || m < 0)
		return false;
	a[n] = b[m] = '\0';
	return !strcmp(a, b);
}

/* The last line of a log, for error messages. */
static void last_line(const char *path, char *out, size_t n)
{
	out[0] = '\0';
	FILE *f = fopen(path, "r");
	if (!f)
		return;
	char line[1024];
	while (fgets(line, sizeof(line), f))
		snprintf(out, n, "%s", line);
	fclose(f);
	size_t l = strlen(out);
	if (l && out[l - 1] == '\n')
		out[l - 1] = '\0';
}

static int print_status(const weir_msg *r)
{
	const Weir__Ctl__ClusterStatus *cs = r->cluster_status;
	printf("cluster %s: %zu taskmanagers, %u slots (%u used)\n", cs->cluster_id, cs->n_taskmanagers, cs->slots_total,
	       cs->slots_used);
	char here[128] = "";
	weir_host_identity(here, sizeof(here));
	for (size_t i = 0; i < cs->n_taskmanagers; i++) {
		const Weir__Ctl__TaskManagerInfo *t = cs->taskmanagers[i];
		bool elsewhere = t->host_id && *t->host_id && strcmp(t->host_id, here);
		printf("  taskmanager %-3u pid %-7u %u slots (%u used)  NUMA node %d  pool %s (%u x %u bytes)  "
		       "heartbeat %u ms ago  data %s%s%s%s\n",
		       t->tm_id, t->pid, t->slots, t->slots_used, t->numa_node, t->pool->name, t->pool->segments,
		       t->pool->segment_size, t->has_last_heartbeat_ms ? t->last_heartbeat_ms : 0,
		       t->data_address && *t->data_address ? t->data_address : "-", elsewhere ? "  on host " : "",
		       elsewhere ? t->host : "", elsewhere ? " (another host)" : "");
	}
	return 0;
}

static int status_call(struct weir_ctl_client *c, int wait, weir_msg **reply)
{
	Weir__Ctl__GetClusterStatus g = WEIR__CTL__GET_CLUSTER_STATUS__INIT;
	if (wait >= 0) {
		g.has_wait_taskmanagers = true;
		g.wait_taskmanagers = (uint32_t)wait;
		g.has_wait_timeout_ms = true;
		g.wait_timeout_ms = 10000;
	}
	weir_msg m = WEIR__CTL__ENVELOPE__INIT;
	m.body_case = WEIR__CTL__ENVELOPE__BODY_GET_CLUSTER_STATUS;
	m.get_cluster_status = &g;
	return weir_ctl_client_call(c, &m, reply, 15000);
}

/* The run folder (0700) with a fresh cluster id and the secret (kept if
 * there is one), once no cluster runs there; what crashed clusters left in
 * /dev/shm swept (*swept: how many files). 0, or the exit status with the
 * message printed. */
static int prepare_run_dir(struct weir_rundir *rd, char *id, size_t idn, int *swept)
{
	char path[PATH_MAX];
	if (weir_rundir_check(rd, true) < 0)
		return fail("start");
	weir_rundir_path(rd, "jobmanager.pid", path, sizeof(path));
	char pidbuf[32];
	if (weir_read_small_file(path, pidbuf, sizeof(pidbuf)) == 0 && alive((pid_t)atoi(pidbuf)))
		return weir_err_set("a cluster is already running in '%s' (jobmanager pid %s); stop it with "
				    "weir cluster stop", rd->dir, pidbuf), fail("start");
	weir_err_clear();
	/* a fresh id per start: /dev/shm names never meet a dead cluster's */
	unsigned char idb[4];
	if (RAND_bytes(idb, sizeof(idb)) != 1)
		return weir_err_set("no random bytes"), fail("start");
	snprintf(id, idn, "c%02x%02x%02x%02x", idb[0], idb[1], idb[2], idb[3]);
	weir_rundir_path(rd, "cluster.id", path, sizeof(path));
	if (weir_write_file_atomic(path, id) < 0)
		return fail("start");
	weir_rundir_path(rd, "secret", path, sizeof(path));
	struct weir_auth_secret s;
	if (access(path, F_OK) == 0 ? weir_auth_secret_load(path, &s) < 0 : weir_auth_secret_create(path, &s) < 0)
		return fail("start");
	weir_auth_secret_wipe(&s);
	*swept = weir_shm_sweep("weir-c");
	weir_rundir_path(rd, "jobmanager.addr", path, sizeof(path));
	unlink(path); /* a crashed jobmanager's */
	return 0;
}

/* Start the JobManager as a daemon and wait until it listens. Its pid, or
 * -1 with the message printed (quoting the last line of its log). */
static pid_t start_jobmanager(struct weir_rundir *rd, long port, const char *level,
			      const struct weir_cluster_config *cc)
{
	char portbuf[16], waitbuf[24], log[PATH_MAX], hbbuf[24], hbtbuf[24];
	snprintf(hbbuf, sizeof(hbbuf), "%ld", cc->hb_ms);
	snprintf(hbtbuf, sizeof(hbtbuf), "%ld", cc->hb_timeout_ms);
	snprintf(portbuf, sizeof(portbuf), "%ld", port);
	snprintf(waitbuf, sizeof(waitbuf), "%ld", cc->slot_wait_ms);
	/* the checkpoint defaults of jobs submitted without checkpoint flags */
	char ckdir[PATH_MAX], ck[8][24];
	if (absolute("checkpoint.dir", cc->ck_dir, ckdir, sizeof(ckdir), false) < 0)
		return -1;
	long ckv[8] = { cc->ck_interval_ms, cc->ck_timeout_ms, cc->ck_min_pause_ms, cc->ck_retain,
			cc->restart_attempts, cc->restart_delay_ms, cc->restart_max_delay_ms };
	for (int i = 0; i < 7; i++)
		snprintf(ck[i], sizeof(ck[i]), "%ld", ckv[i]);
	char *jm_args[] = { "jobmanager", "--run-dir", rd->dir, "--port", portbuf, "--bind", (char *)cc->bind,
			    "--slot-wait", waitbuf, "--ready-fd", "3", "--log-level", (char *)level,
			    "--checkpoint-interval", ck[0], "--checkpoint-timeout", ck[1], "--checkpoint-min-pause", ck[2],
			    "--checkpoint-retain", ck[3], "--restart-attempts", ck[4], "--restart-delay", ck[5],
			    "--restart-max-delay", ck[6], "--checkpoint-dir", ckdir, "--exchange", (char *)cc->exchange,
			    "--heartbeat-interval", hbbuf, "--heartbeat-timeout", hbtbuf,
			    /* optional ones last: the first NULL ends the list */
			    NULL, NULL, NULL, NULL, NULL, NULL, NULL };
	int na = 0;
	while (jm_args[na])
		na++;
	if (cc->tls_enabled) {
		jm_args[na++] = "--tls-dir";
		jm_args[na++] = (char *)cc->tls_dir;
		jm_args[na++] = "--tls-name";
		jm_args[na++] = (char *)cc->tls_name;
	}
	if (cc->ck_at_least_once)
		jm_args[na++] = "--at-least-once";
	if (cc->ck_unaligned)
		jm_args[na++] = "--unaligned";
	weir_rundir_path(rd, "jobmanager.log", log, sizeof(log));
	pid_t jm = weir_spawn(jm_args, log, 10000);
	if (jm < 0) {
		char line[1024];
		last_line(log, line, sizeof(line));
		fprintf(stderr, "weir cluster start: %s\n  %s\n", weir_err_msg(), line);
	}
	return jm;
}

/* Start ntm TaskManagers through the supervisor, whose children they are
 * (it restarts one that dies), and wait until all are registered: 0 with
 * tms[] and *sup set, or -1 with the message printed and the JobManager
 * stopped (it stops the others). TaskManager i goes on the i-th NUMA node
 * (round robin over the nodes with CPUs we may use); those sharing a node
 * start at different cores. */
static int start_taskmanagers(struct weir_rundir *rd, pid_t jm, int ntm, int slots, const char *level,
			      const struct weir_cluster_config *cc, pid_t *tms, pid_t *sup)
{
	int nodes[64];
	int nnodes = weir_cpu_nodes(nodes, 64);
	static char bufs[256][7][24];
	static char *tm_args[256][30], *logs[256], **argp[256];
	/* their exchanges listen where the JobManager does: TaskManagers on
	 * other hosts reach them there (loopback when it listens everywhere) */
	const char *adv = !strcmp(cc->bind, "0.0.0.0") || !strcmp(cc->bind, "::") ? "127.0.0.1" : cc->bind;
	char slotbuf[16], segbuf[24], sizebuf[24], cancelbuf[24], log[PATH_MAX];
	snprintf(cancelbuf, sizeof(cancelbuf), "%ld", cc->cancel_timeout_ms);
	snprintf(slotbuf, sizeof(slotbuf), "%d", slots);
	snprintf(segbuf, sizeof(segbuf), "%ld", cc->segments);
	snprintf(sizebuf, sizeof(sizebuf), "%ld", cc->segment_size);
	for (int i = 0; i < ntm; i++) {
		char name[64];
		snprintf(bufs[i][0], 24, "%d", i);
		snprintf(bufs[i][1], 24, "%d", nodes[i % nnodes]);
		snprintf(bufs[i][2], 24, "%d", i / nnodes * slots);
		snprintf(name, sizeof(name), "taskmanager-%d.log", i);
		weir_rundir_path(rd, name, log, sizeof(log));
		logs[i] = strdup(log);
		char *a[] = { "taskmanager", "--run-dir", rd->dir, "--id", bufs[i][0], "--slots", slotbuf,
			      "--segments", segbuf, "--segment-size", sizebuf, "--numa-node", bufs[i][1],
			      "--first-core", bufs[i][2], "--ready-fd", "3", "--log-level", (char *)level,
			      "--cancel-timeout", cancelbuf, "--advertise", (char *)adv,
			      cc->tls_enabled ? "--tls-dir" : NULL, (char *)cc->tls_dir, "--tls-name", (char *)cc->tls_name,
			      NULL };
		memcpy(tm_args[i], a, sizeof(a));
		argp[i] = tm_args[i];
	}
	if (weir_supervisor_start(rd->dir, jm, ntm, argp, logs, tms, sup) < 0) {
		fprintf(stderr, "weir cluster start: %s\n", weir_err_msg());
		kill(jm, SIGTERM); /* the jobmanager stops the others */
		wait_exit(jm, 5000);
		return -1;
	}
	return 0;
}

static int cmd_start(struct weir_rundir *rd, int ntm, int slots, long port, const char *level,
		     const struct weir_cluster_config *cc)
{
	char id[16], path[PATH_MAX];
	int swept = 0, rc = prepare_run_dir(rd, id, sizeof(id), &swept);
	if (rc)
		return rc;
	/* TLS: checked here (a missing or foreign certificate is named before
	 * anything starts), and named in the run folder for the commands */
	weir_rundir_path(rd, "tls", path, sizeof(path));
	unlink(path);
	if (cc->tls_enabled) {
		struct weir_tls_ctx *s = NULL, *c = NULL;
		if (!cc->tls_dir[0] || !cc->tls_name[0]) {
			fprintf(stderr, "weir cluster start: tls.enabled needs tls.dir and tls.name\n");
			return EXIT_USAGE;
		}
		if (weir_cluster_tls(cc->tls_dir, cc->tls_name, &s, &c) < 0)
			return fail("start");
		weir_tls_ctx_destroy(s);
		weir_tls_ctx_destroy(c);
		char text[PATH_MAX + 160];
		snprintf(text, sizeof(text), "%s\n%s\n", cc->tls_dir, cc->tls_name);
		if (weir_write_file_atomic(path, text) < 0)
			return fail("start");
	}
	pid_t jm = start_jobmanager(rd, port, level, cc), tms[256], sup;
	if (jm < 0 || start_taskmanagers(rd, jm, ntm, slots, level, cc, tms, &sup) < 0)
		return EXIT_FAIL;
	char addr[128];
	weir_rundir_path(rd, "jobmanager.addr", path, sizeof(path));
	weir_read_small_file(path, addr, sizeof(addr));
	printf("cluster %s started in %s%s\n", id, rd->dir, swept > 0 ? " (removed stale shared memory of a crashed "
								    "cluster)" : "");
	printf("  jobmanager        %s  pid %d  log %s/jobmanager.log\n", addr, (int)jm, rd->dir);
	printf("  supervisor        pid %d  log %s/supervisor.log\n", (int)sup, rd->dir);
	for (int i = 0; i < ntm; i++)
		printf("  taskmanager %-3d  %d slots  pid %d  log %s/taskmanager-%d.log\n", i, slots, (int)tms[i], rd->dir,
		       i);
	return 0;
}

static int cmd_status(struct weir_rundir *rd, int wait)
{
	struct weir_ctl_client *c;
	if (weir_ctl_client_open(&c, rd, "weir cluster status") < 0)
		return fail("status");
	weir_msg *r;
	int rc = status_call(c, wait, &r);
	weir_ctl_client_close(c);
	if (rc < 0)
		return fail("status");
	if (r->body_case != WEIR__CTL__ENVELOPE__BODY_CLUSTER_STATUS) {
		weir_ctl_free(r);
		return weir_err_set("unexpected answer"), fail("status");
	}
	print_status(r);
	int n = (int)r->cluster_status->n_taskmanagers;
	weir_ctl_free(r);
	/* the supervisor is not the JobManager's to know: its pid file says */
	char path[PATH_MAX], buf[64];
	weir_rundir_path(rd, "supervisor.pid", path, sizeof(path));
	pid_t sup = weir_read_small_file(path, buf, sizeof(buf)) == 0 ? (pid_t)atoi(buf) : 0;
	if (sup > 1 && alive(sup) && is_weir(sup))
		printf("  supervisor      pid %d\n", (int)sup);
	else
		printf("  supervisor: gone: a taskmanager that dies is not started again (weir cluster stop, then "
		       "start)\n");
	if (wait >= 0 && n != wait) {
		fprintf(stderr, "weir cluster status: %d taskmanagers after waiting for %d\n", n, wait);
		return EXIT_FAIL;
	}
	return 0;
}

static int cmd_stop(struct weir_rundir *rd)
{
	char path[PATH_MAX], buf[64], id[64] = "";
	int chk = weir_rundir_check(rd, false);
	if (chk < 0)
		return fail("stop");
	if (chk == 1) {
		printf("no cluster running in %s\n", rd->dir);
		return 0;
	}
	weir_rundir_path(rd, "cluster.id", path, sizeof(path));
	weir_read_small_file(path, id, sizeof(id));
	weir_rundir_path(rd, "jobmanager.pid", path, sizeof(path));
	pid_t jm = weir_read_small_file(path, buf, sizeof(buf)) == 0 ? (pid_t)atoi(buf) : 0;
	pid_t tms[256];
	int ntm = 0, nremote = 0;
	/* first the supervisor, which would start stopped TaskManagers again */
	weir_rundir_path(rd, "supervisor.pid", path, sizeof(path));
	pid_t sup = weir_read_small_file(path, buf, sizeof(buf)) == 0 ? (pid_t)atoi(buf) : 0;
	if (sup > 1 && alive(sup) && is_weir(sup)) {
		kill(sup, SIGTERM);
		if (!wait_exit(sup, 5000))
			kill(sup, SIGKILL);
	}
	unlink(path);
	struct weir_ctl_client *c;
	if (jm > 0 && alive(jm) && weir_ctl_client_open(&c, rd, "weir cluster stop") == 0) {
		weir_msg *r;
		char here[128] = "";
		weir_host_identity(here, sizeof(here));
		if (status_call(c, -1, &r) == 0) {
			for (size_t i = 0; i < r->cluster_status->n_taskmanagers && ntm < 256; i++) {
				const Weir__Ctl__TaskManagerInfo *ti = r->cluster_status->taskmanagers[i];
				/* a TaskManager on another host stops on the JobManager's
				 * word; its pid means nothing here */
				if (ti->host_id && *ti->host_id && strcmp(ti->host_id, here)) {
					nremote++;
					continue;
				}
				if (ti->pid >= 2 && ti->pid <= INT_MAX) /* never kill(0) or kill(-1) */
					tms[ntm++] = (pid_t)ti->pid;
			}
			weir_ctl_free(r);
		}
		Weir__Ctl__Stop st = WEIR__CTL__STOP__INIT;
		st.reason = "weir cluster stop";
		weir_msg m = WEIR__CTL__ENVELOPE__INIT;
		m.body_case = WEIR__CTL__ENVELOPE__BODY_STOP;
		m.stop = &st;
		int rc = weir_ctl_client_call(c, &m, &r, 5000);
		weir_ctl_client_close(c);
		if (rc < 0)
			return fail("stop");
		weir_ctl_free(r);
		if (!wait_exit(jm, 10000)) {
			fprintf(stderr, "weir cluster stop: the jobmanager (pid %d) did not exit in 10 s: killed\n", (int)jm);
			kill(jm, SIGKILL);
			wait_exit(jm, 2000);
		}
		for (int i = 0; i < ntm; i++)
			if (!wait_exit(tms[i], 5000)) {
				fprintf(stderr, "weir cluster stop: taskmanager pid %d did not exit: killed\n", (int)tms[i]);
				kill(tms[i], SIGKILL);
				wait_exit(tms[i], 2000);
			}
		if (nremote)
			printf("cluster %s stopped: the jobmanager, %d taskmanagers here and %d on other hosts (told to stop)\n",
			       id, ntm, nremote);
		else
			printf("cluster %s stopped: the jobmanager and %d taskmanagers\n", id, ntm);
	} else {
		printf("no cluster running in %s\n", rd->dir);
	}
	/* what crashed processes may have left */
	char prefix[96];
	snprintf(prefix, sizeof(prefix), "weir-%s/", id[0] ? id : "c"); /* its folder (task.h) */
	if (!id[0])
		snprintf(prefix, sizeof(prefix), "weir-c"); /* no id: every dead cluster's */
	int swept = weir_shm_sweep(prefix);
	if (swept > 0)
		printf("removed %d stale shared-memory files\n", swept);
	/* and object stores (the JobManager's, a killed TaskManager's) */
	DIR *dd = opendir(rd->dir);
	for (struct dirent *e; dd && (e = readdir(dd));)
		if (!strncmp(e->d_name, "objects", 7)) {
			weir_rundir_path(rd, e->d_name, path, sizeof(path));
			weir_obj_remove_all(path);
		}
	if (dd)
		closedir(dd);
	weir_rundir_path(rd, "jobmanager.addr", path, sizeof(path));
	unlink(path);
	weir_rundir_path(rd, "jobmanager.pid", path, sizeof(path));
	unlink(path);
	return 0;
}

const char weir_cluster_start_usage[] =
	"usage: weir cluster start [--config FILE] [--taskmanagers N] [--slots S] [--port P] [--run-dir D]\n"
	"                          [--slot-wait MS] [--cancel-timeout MS] [--exchange auto|tcp] [--log-level L]\n";
const char weir_cluster_status_usage[] = "usage: weir cluster status [--wait N] [--run-dir D]\n";
const char weir_cluster_stop_usage[] = "usage: weir cluster stop [--run-dir D]\n";

void weir_usage_print(FILE *f, const char *const *texts, int n)
{
	for (int i = 0; i < n; i++) {
		const char *t = texts[i];
		if (i && !strncmp(t, "usage: ", 7)) {
			fputs("       ", f);
			t += 7;
		}
		fputs(t, f);
	}
}

static const struct {
	const char *name, *usage;
} cluster_cmds[] = {
	{ "start", weir_cluster_start_usage },
	{ "status", weir_cluster_status_usage },
	{ "stop", weir_cluster_stop_usage },
};
#define NCLUSTER_CMDS ((int)(sizeof(cluster_cmds) / sizeof(cluster_cmds[0])))

static void cluster_usage(FILE *f)
{
	const char *texts[NCLUSTER_CMDS];
	for (int k = 0; k < NCLUSTER_CMDS; k++)
		texts[k] = cluster_cmds[k].usage;
	weir_usage_print(f, texts, NCLUSTER_CMDS);
}

/* The options of weir cluster that take a value (each command accepts them all). */
static bool cluster_flag_takes_value(const char *a)
{
	static const char *const flags[] = { "--config", "--taskmanagers", "--slots", "--port",
					     "--wait", "--slot-wait", "--cancel-timeout", "--run-dir", "--log-level",
					     "--exchange" };
	for (size_t k = 0; k < sizeof(flags) / sizeof(flags[0]); k++)
		if (!strcmp(a, flags[k]))
			return true;
	return false;
}

int weir_cluster_main(int argc, char **argv)
{
	if (argc < 1 || weir_help_flag(argv[0])) {
		cluster_usage(argc < 1 ? stderr : stdout);
		return argc < 1 ? EXIT_USAGE : 0;
	}
	const char *cmd = argv[0], *usage = NULL, *run_dir = NULL, *level = NULL, *config = getenv("WEIR_CONFIG");
	for (int k = 0; k < NCLUSTER_CMDS; k++)
		if (!strcmp(cmd, cluster_cmds[k].name))
			usage = cluster_cmds[k].usage;
	if (!usage) {
		fprintf(stderr, "weir cluster: unknown command '%s'\n", cmd);
		cluster_usage(stderr);
		return EXIT_USAGE;
	}
	/* --help, and the file: first, then the flags over it */
	for (int i = 1; i < argc; i++) {
		if (weir_help_flag(argv[i])) {
			fputs(usage, stdout);
			return 0;
		}
		if (!strcmp(argv[i], "--config") && i + 1 < argc)
			config = argv[i + 1];
		if (cluster_flag_takes_value(argv[i]))
			i++;
	}
	int nodes[64];
	int numa_nodes = weir_cpu_nodes(nodes, 64); /* the nodes with CPUs we may use */
	int cpus[1024];
	int ncpu = weir_cpu_allowed(cpus, 1024);
	static struct weir_cluster_config cc;
	weir_cluster_config_defaults(&cc);
	if (config && *config && weir_cluster_config_load(config, &cc) < 0) {
		fprintf(stderr, "weir cluster %s: %s\n", cmd, weir_err_msg());
		return EXIT_USAGE;
	}
	long ntm = cc.taskmanagers ? cc.taskmanagers : numa_nodes > 0 ? numa_nodes : 1, slots = cc.slots,
	     port = cc.port, wait = -1;
	if (cc.run_dir[0])
		run_dir = cc.run_dir;
	level = cc.log_level;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		/* the configuration file's ranges (engine/cluster/config.c) */
		long *num = NULL;
		long long lo = 0, hi = 0, got;
		if (!strcmp(a, "--taskmanagers"))
			num = &ntm, lo = 1, hi = 64;
		else if (!strcmp(a, "--slots"))
			num = &slots, lo = 1, hi = 1024;
		else if (!strcmp(a, "--port"))
			num = &port, lo = 0, hi = 65535;
		else if (!strcmp(a, "--wait"))
			num = &wait, lo = 0, hi = 64 * 1024;
		else if (!strcmp(a, "--slot-wait"))
			num = &cc.slot_wait_ms, lo = 0, hi = 600000;
		else if (!strcmp(a, "--cancel-timeout"))
			num = &cc.cancel_timeout_ms, lo = 0, hi = 24 * 3600 * 1000;
		if (num) {
			if (weir_parse_num(v, lo, hi, false, &got) < 0) {
				fprintf(stderr, "weir cluster %s: %s: %s\n%s", cmd, a, weir_err_msg(), usage);
				return EXIT_USAGE;
			}
			*num = (long)got;
			i++;
		} else if (!strcmp(a, "--run-dir") && v) {
			run_dir = argv[++i];
		} else if (!strcmp(a, "--log-level") && v) {
			level = argv[++i];
		} else if (!strcmp(a, "--exchange") && v) {
			if (strcmp(v, "auto") && strcmp(v, "tcp")) {
				fprintf(stderr, "weir cluster %s: --exchange: '%s' is not auto or tcp\n%s", cmd, v, usage);
				return EXIT_USAGE;
			}
			snprintf(cc.exchange, sizeof(cc.exchange), "%s", argv[++i]);
		} else if (!strcmp(a, "--config") && v) {
			i++; /* read above */
		} else {
			fprintf(stderr, "weir cluster %s: unknown option '%s'\n%s", cmd, a, usage);
			return EXIT_USAGE;
		}
	}
	if (ntm < 1 || ntm > 64 || port > 65535 || slots > 1024 || cc.slot_wait_ms > 600000) {
		fprintf(stderr, "weir cluster %s: --taskmanagers must be 1..64, --slots 1..1024, --port 0..65535, "
			"--slot-wait 0..600000\n", cmd);
		return EXIT_USAGE;
	}
	if (!slots)
		slots = ncpu / ntm > 0 ? ncpu / ntm : 1;
	struct weir_rundir rd;
	weir_rundir_init(&rd, run_dir);
	enum weir_log_level lv;
	if (weir_log_parse_level(level, &lv) < 0) {
		fprintf(stderr, "weir cluster %s: log level '%s' is not debug, info, warn or error\n", cmd, level);
		return EXIT_USAGE;
	}
	if (!strcmp(cmd, "start"))
		return cmd_start(&rd, (int)ntm, (int)slots, port, level, &cc);
	if (!strcmp(cmd, "status"))
		return cmd_status(&rd, (int)wait);
	return cmd_stop(&rd);
}

/* ---- jobs: weir run, weir list, weir cancel ------------------------------------ */

#include "graph/load.h"
#include "runtime/run.h"
/* Up to n bytes of the file at path from offset into buf (*got: how
 * many; fewer only at its end). 0, or -1 with the trail set. */
static int read_at(const char *path, uint64_t off, void *buf, size_t n, size_t *got)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return weir_err_errno(errno, "open '%s'", path);
	*got = 0;
	while (*got < n) {
		ssize_t r = pread(fd, (char *)buf + *got, n - *got, (off_t)(off + *got));
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			int e = errno;
			close(fd);
			return weir_err_errno(e, "read '%s'", path);
		}
		if (r == 0)
			break;
		*got += (size_t)r;
	}
	close(fd);
	return 0;
}

/* Upload an object too big for one message, one chunk per request: the
 * JobManager answers each once it is written, so at most one chunk is in
 * flight. 0, or -1 with the trail naming the problem. */
static int upload(struct weir_ctl_client *c, const char *path, const uint8_t sha[WEIR_SHA256_LEN], uint64_t size)
{
	uint8_t *buf = malloc(WEIR_CTL_MAX_CHUNK);
	if (!buf)
		return weir_err_set("out of memory");
	int rc = 0;
	for (uint64_t off = 0; rc == 0 && off < size;) {
		size_t n;
		if (read_at(path, off, buf, WEIR_CTL_MAX_CHUNK, &n) < 0) {
			rc = -1;
			break;
		}
		if (n == 0 || off + n > size) {
			rc = weir_err_set("'%s' changed while it was being uploaded", path);
			break;
		}
		Weir__Ctl__ObjectChunk oc = WEIR__CTL__OBJECT_CHUNK__INIT;
		oc.object_sha256.data = (uint8_t *)sha;
		oc.object_sha256.len = WEIR_SHA256_LEN;
		oc.offset = off;
		oc.data.data = buf;
		oc.data.len = n;
		oc.has_last = true;
		oc.last = off + n == size;
		weir_msg m = WEIR__CTL__ENVELOPE__INIT, *r = NULL;
		m.body_case = WEIR__CTL__ENVELOPE__BODY_OBJECT_CHUNK;
		m.object_chunk = &oc;
		if (weir_ctl_client_call(c, &m, &r, 60000) < 0)
			rc = weir_err_wrap("upload of '%s' at offset %llu", path, (unsigned long long)off);
		else if (r->body_case != WEIR__CTL__ENVELOPE__BODY_OK)
			rc = weir_err_set("upload of '%s': the jobmanager answered %s", path,
					  weir_ctl_body_name(r->body_case));
		if (r)
			weir_ctl_free(r);
		off += n;
	}
	free(buf);
	return rc;
}

static volatile sig_atomic_t run_interrupted;
static void on_sigint(int sig)
{
	(void)sig;
	run_interrupted = 1;
}

/* weir CMD's argument argv[i] is refused: a flag without its value, an
 * unknown option, or an argument too many. Prints which, and the usage. */
static int bad_argument(const char *cmd, int argc, char **argv, int i, const char *usage)
{
	static const char *const valued[] = { "--run-dir", "--savepoint", "-p", "--parallelism" };
	const char *a = argv[i];
	for (size_t k = 0; i + 1 == argc && k < sizeof(valued) / sizeof(valued[0]); k++)
		if (!strcmp(a, valued[k])) {
			fprintf(stderr, "weir %s: %s needs a value\n%s", cmd, a, usage);
			return EXIT_USAGE;
		}
	fprintf(stderr, "weir %s: %s '%s'\n%s", cmd, a[0] == '-' ? "unknown option" : "unexpected argument", a, usage);
	return EXIT_USAGE;
}

const char weir_run_usage[] =
	"usage: weir run JOB.so [-p N] [--spread] [--detached] [--run-dir D]\n"
	"                [checkpoint and restart options of weir local] [--from-savepoint DIR] [-- JOB ARGS...]\n";

/* path made absolute (the JobManager runs elsewhere); must_exist: resolved
 * with realpath. 0, or -1 with a message printed. */
static int absolute(const char *what, const char *path, char *out, size_t n, bool must_exist)
{
	char buf[PATH_MAX];
	if (must_exist) {
		if (!realpath(path, buf)) {
			fprintf(stderr, "weir: %s '%s': %s\n", what, path, strerror(errno));
			return -1;
		}
	} else if (path[0] == '/') {
		snprintf(buf, sizeof(buf), "%s", path);
	} else {
		char cwd[PATH_MAX];
		if (!getcwd(cwd, sizeof(cwd)) || snprintf(buf, sizeof(buf), "%s/%s", cwd, path) >= (int)sizeof(buf)) {
			fprintf(stderr, "weir: %s '%s': the path is too long\n", what, path);
			return -1;
		}
	}
	if (snprintf(out, n, "%s", buf) >= (int)n) {
		fprintf(stderr, "weir: %s '%s': the path is too long\n", what, path);
		return -1;
	}
	return 0;
}

static const char *state_name(Weir__Ctl__JobState s)
{
	switch (s) {
	case WEIR__CTL__JOB_STATE__JOB_CREATED: return "created";
	case WEIR__CTL__JOB_STATE__JOB_RUNNING: return "running";
	case WEIR__CTL__JOB_STATE__JOB_FINISHED: return "finished";
	case WEIR__CTL__JOB_STATE__JOB_FAILED: return "failed";
	case WEIR__CTL__JOB_STATE__JOB_CANCELING: return "canceling";
	case WEIR__CTL__JOB_STATE__JOB_CANCELED: return "canceled";
	case WEIR__CTL__JOB_STATE__JOB_RESTARTING: return "restarting";
	default: return "?";
	}
}

/* weir run: its command line, the job built here, and the job's object. */
struct run {
	const char *job, *base, *run_dir;
	long par;
	bool spread, detached, ck;
	int jargc;
	char **jargv;
	struct weir_config ckcfg;	/* the checkpoint and restart flags */
	char ckdir[PATH_MAX], from[PATH_MAX];
	Weir__Ctl__CheckpointConfig ckc;
	/* the graph: weir_job run here, as every TaskManager will */
	struct weir_job_object obj;
	char **args;
	weir_env *env;
	struct weir_config cfg;
	struct plan plan;
	bool planned;
	/* the object, checked by SHA-256 on every side: sent inside SubmitJob
	 * when it fits in one chunk (bytes), else uploaded in chunks first */
	uint8_t sha[WEIR_SHA256_LEN];
	uint64_t size;
	uint8_t *bytes;
	bool inline_obj;
};

/* Parse weir run's flags into *r. -1 to go on, else the exit status (0
 * after --help, 2 for bad usage, named on stderr). */
static int run_parse(struct run *r, int argc, char **argv)
{
	r->par = 1;
	weir_config_defaults(&r->ckcfg);
	int ckr;
	for (int i = 0; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		char *end;
		if (weir_help_flag(a)) {
			fputs(weir_run_usage, stdout);
			return 0;
		} else if ((ckr = weir_config_ck_option(&r->ckcfg, argc, argv, &i, 0)) != 0) {
			if (ckr < 0)
				return EXIT_USAGE;
			r->ck = true;
		} else if (!strcmp(a, "--")) {
			r->jargc = argc - i - 1;
			r->jargv = argv + i + 1;
			break;
		} else if ((!strcmp(a, "-p") || !strcmp(a, "--parallelism")) && v) {
			r->par = strtol(v, &end, 10);
			if (*end || r->par < 1 || r->par > 1024) {
				fprintf(stderr, "weir run: %s: '%s' is not a whole number from 1 to 1024\n", a, v);
				return EXIT_USAGE;
			}
			i++;
		} else if (!strcmp(a, "--spread")) {
			r->spread = true;
		} else if (!strcmp(a, "--detached")) {
			r->detached = true;
		} else if (!strcmp(a, "--run-dir") && v) {
			r->run_dir = argv[++i];
		} else if (a[0] == '-') {
			return bad_argument("run", argc, argv, i, weir_run_usage);
		} else if (!r->job) {
			r->job = a;
		} else {
			fprintf(stderr, "weir run: unexpected argument '%s' (job arguments go after --)\n", a);
			return EXIT_USAGE;
		}
	}
	if (!r->job) {
		fprintf(stderr, "weir run: no job given\n%s", weir_run_usage);
		return EXIT_USAGE;
	}
	r->base = strrchr(r->job, '/') ? strrchr(r->job, '/') + 1 : r->job;
	/* checkpoints: the JobManager writes there, and reads a restore */
	if (r->ck) {
		if (absolute("--checkpoint-dir", r->ckcfg.checkpoint_dir, r->ckdir, sizeof(r->ckdir), false) < 0 ||
		    (r->ckcfg.restore_from &&
		     absolute("--from-savepoint", r->ckcfg.restore_from, r->from, sizeof(r->from), true) < 0))
			return EXIT_USAGE;
		Weir__Ctl__CheckpointConfig init = WEIR__CTL__CHECKPOINT_CONFIG__INIT;
		r->ckc = init;
		weir_ctl_ck_config(&r->ckcfg, r->ckdir, r->ckcfg.restore_from ? r->from : NULL, &r->ckc);
	}
	return -1;
}

/* Build the job's graph and plan from its loaded object, as every
 * TaskManager will. 0, or -1 with the message printed. */
static int run_build(struct run *r)
{
	r->args = calloc((size_t)r->jargc + 2, sizeof(char *));
	if (!r->args) {
		fprintf(stderr, "weir run: out of memory\n");
		return -1;
	}
	r->args[0] = (char *)r->job;
	for (int i = 0; i < r->jargc; i++)
		r->args[i + 1] = r->jargv[i];
	r->env = weir_job_build(&r->obj, (int)r->par, r->jargc + 1, r->args);
	weir_config_defaults(&r->cfg);
	r->cfg.parallelism = (int)r->par;
	if (!r->env || weir_plan_build(&r->plan, r->env, &r->cfg) < 0) {
		fprintf(stderr, "weir run: job '%s': %s\n", r->job, weir_err_msg());
		return -1;
	}
	r->planned = true;
	return 0;
}

/* The object's digest and size, and its bytes when it fits in SubmitJob.
 * 0, or -1 with the message printed. */
static int run_read_object(struct run *r)
{
	if (weir_sha256_file(r->job, r->sha, &r->size) < 0) {
		fprintf(stderr, "weir run: job '%s': %s\n", r->job, weir_err_msg());
		return -1;
	}
	if (r->size > WEIR_OBJ_MAX) {
		fprintf(stderr, "weir run: job '%s': %llu bytes; objects of at most %llu MiB are accepted\n", r->job,
			(unsigned long long)r->size, WEIR_OBJ_MAX >> 20);
		return -1;
	}
	r->inline_obj = r->size <= WEIR_CTL_MAX_CHUNK;
	if (r->inline_obj) {
		size_t sz;
		if (!(r->bytes = malloc((size_t)r->size + 1)) || read_at(r->job, 0, r->bytes, (size_t)r->size, &sz) < 0 ||
		    sz != r->size) {
			fprintf(stderr, "weir run: job '%s': cannot read it (%s)\n", r->job, weir_err_msg());
			return -1;
		}
	}
	return 0;
}

static void run_release(struct run *r)
{
	free(r->bytes);
	if (r->planned)
		weir_plan_release(&r->plan);
	if (r->env)
		weir_env_destroy(r->env);
	free(r->args);
	weir_job_unload(&r->obj);
}

/* Upload the object if it does not fit in SubmitJob, submit the job (its
 * graph: vertices and their parallelism) and read the answer. 0 and *id,
 * or -1 with the message printed. */
static int run_submit(struct run *r, struct weir_ctl_client *c, uint64_t *id)
{
	int nv = r->plan.nv;
	Weir__Ctl__Vertex *vx = calloc((size_t)nv, sizeof(*vx)), **vxp = calloc((size_t)nv, sizeof(*vxp));
	if (!vx || !vxp) {
		free(vx);
		free(vxp);
		fprintf(stderr, "weir run: out of memory\n");
		return -1;
	}
	for (int v = 0; v < nv; v++) {
		Weir__Ctl__Vertex init = WEIR__CTL__VERTEX__INIT;
		vx[v] = init;
		vx[v].id = (uint32_t)v;
		vx[v].name = r->env->nodes[r->plan.v[v].nodes[0]]->name;
		vx[v].parallelism = (uint32_t)r->plan.v[v].parallelism;
		vxp[v] = &vx[v];
	}
	Weir__Ctl__JobGraph g = WEIR__CTL__JOB_GRAPH__INIT;
	g.n_vertices = (size_t)nv;
	g.vertices = vxp;
	g.has_max_parallelism = true;
	g.max_parallelism = r->cfg.max_parallelism;
	Weir__Ctl__SubmitJob sj = WEIR__CTL__SUBMIT_JOB__INIT;
	sj.name = (char *)r->base;
	sj.object_sha256.data = r->sha;
	sj.object_sha256.len = WEIR_SHA256_LEN;
	sj.object_size = r->size;
	sj.n_args = (size_t)r->jargc;
	sj.args = r->jargv;
	sj.parallelism = (uint32_t)r->par;
	sj.has_spread = true;
	sj.spread = r->spread;
	sj.has_detached = true;
	sj.detached = r->detached;
	sj.has_object = r->inline_obj;
	sj.object.data = r->bytes;
	sj.object.len = r->inline_obj ? (size_t)r->size : 0;
	sj.graph = &g;
	sj.checkpoints = r->ck ? &r->ckc : NULL;
	weir_msg m = WEIR__CTL__ENVELOPE__INIT, *ans = NULL;
	m.body_case = WEIR__CTL__ENVELOPE__BODY_SUBMIT_JOB;
	m.submit_job = &sj;
	int rc = -1;
	if ((!r->inline_obj && upload(c, r->job, r->sha, r->size) < 0) ||
	    weir_ctl_client_call(c, &m, &ans, 610000) < 0) /* the JobManager may hold a job up to 600 s for slots */
		fprintf(stderr, "weir run: %s\n", weir_err_msg());
	else if (ans->body_case == WEIR__CTL__ENVELOPE__BODY_JOB_REJECTED)
		fprintf(stderr, "weir run: job '%s' refused: %s\n", r->base, ans->job_rejected->reason);
	else if (ans->body_case != WEIR__CTL__ENVELOPE__BODY_JOB_ACCEPTED)
		fprintf(stderr, "weir run: the jobmanager answered %s to the submission\n",
			weir_ctl_body_name(ans->body_case));
	else {
		*id = ans->job_accepted->job_id;
		rc = 0;
	}
	if (ans)
		weir_ctl_free(ans);
	free(vx);
	free(vxp);
	return rc;
}

/* Wait for the submitted job's end, cancelling it on the first SIGINT or
 * SIGTERM. The exit status: 0 finished, 130 canceled, 1 anything else. */
static int run_wait(struct weir_ctl_client *c, uint64_t id, const char *base)
{
	fprintf(stderr, "weir run: job %llu (%s) submitted\n", (unsigned long long)id, base);
	struct sigaction sa = { .sa_handler = on_sigint };
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	bool cancel_sent = false;
	weir_msg *r = NULL;
	for (;;) {
		int w = weir_ctl_client_wait(c, &r, 100);
		if (w < 0) {
			fprintf(stderr, "weir run: job %llu: %s\n", (unsigned long long)id, weir_err_msg());
			return EXIT_FAIL;
		}
		if (w == 1)
			break;
		if (run_interrupted && !cancel_sent) {
			Weir__Ctl__Cancel cc = WEIR__CTL__CANCEL__INIT;
			cc.job_id = id;
			weir_msg cm = WEIR__CTL__ENVELOPE__INIT;
			cm.body_case = WEIR__CTL__ENVELOPE__BODY_CANCEL;
			cm.cancel = &cc;
			weir_ctl_client_post(c, &cm);
			cancel_sent = true;
		}
	}
	const Weir__Ctl__JobInfo *ji = r->job_info;
	uint64_t ms = ji->has_end_time_ms ? ji->end_time_ms - ji->start_time_ms : 0;
	int rc;
	if (ji->state == WEIR__CTL__JOB_STATE__JOB_FINISHED) {
		fprintf(stderr, "weir run: job %llu (%s) finished in %llu ms\n", (unsigned long long)id, base,
			(unsigned long long)ms);
		rc = 0;
	} else {
		fprintf(stderr, "weir run: job %llu (%s) %s: %s\n", (unsigned long long)id, base, state_name(ji->state),
			ji->message ? ji->message : "");
		rc = ji->state == WEIR__CTL__JOB_STATE__JOB_CANCELED ? 130 : EXIT_FAIL;
	}
	weir_ctl_free(r);
	return rc;
}

int weir_run_main(int argc, char **argv)
{
	static struct run r; /* big; one per process */
	memset(&r, 0, sizeof(r));
	int rc = run_parse(&r, argc, argv);
	if (rc >= 0)
		return rc;
	if (weir_job_load(&r.obj, r.job) < 0) {
		fprintf(stderr, "weir run: %s\n", weir_err_msg());
		return EXIT_FAIL;
	}
	rc = EXIT_FAIL;
	if (run_build(&r) == 0 && run_read_object(&r) == 0) {
		struct weir_rundir rd;
		weir_rundir_init(&rd, r.run_dir);
		struct weir_ctl_client *c = NULL;
		uint64_t id;
		if (weir_ctl_client_open(&c, &rd, "weir run") < 0) {
			fprintf(stderr, "weir run: %s\n", weir_err_msg());
		} else if (run_submit(&r, c, &id) < 0) {
			/* said why */
		} else if (r.detached) {
			printf("%llu\n", (unsigned long long)id);
			rc = 0;
		} else {
			rc = run_wait(c, id, r.base);
		}
		weir_ctl_client_close(c);
	}
	run_release(&r);
	return rc;
}

const char weir_list_usage[] = "usage: weir list [--run-dir D]\n";

int weir_list_main(int argc, char **argv)
{
	const char *run_dir = NULL;
	for (int i = 0; i < argc; i++) {
		if (weir_help_flag(argv[i])) {
			fputs(weir_list_usage, stdout);
			return 0;
		} else if (!strcmp(argv[i], "--run-dir") && i + 1 < argc) {
			run_dir = argv[++i];
		} else {
			return bad_argument("list", argc, argv, i, weir_list_usage);
		}
	}
	struct weir_rundir rd;
	weir_rundir_init(&rd, run_dir);
	struct weir_ctl_client *c;
	Weir__Ctl__ListJobs lj = WEIR__CTL__LIST_JOBS__INIT;
	weir_msg m = WEIR__CTL__ENVELOPE__INIT, *r;
	m.body_case = WEIR__CTL__ENVELOPE__BODY_LIST_JOBS;
	m.list_jobs = &lj;
	if (weir_ctl_client_open(&c, &rd, "weir list") < 0) {
		fprintf(stderr, "weir list: %s\n", weir_err_msg());
		return EXIT_FAIL;
	}
	if (weir_ctl_client_call(c, &m, &r, 5000) < 0) {
		fprintf(stderr, "weir list: %s\n", weir_err_msg());
		weir_ctl_client_close(c);
		return EXIT_FAIL;
	}
	weir_ctl_client_close(c);
	printf("%-6s %-24s %-10s %-24s %s\n", "ID", "NAME", "STATE", "STARTED", "PARALLELISM");
	for (size_t i = 0; i < r->job_list->n_jobs; i++) {
		const Weir__Ctl__JobInfo *j = r->job_list->jobs[i];
		time_t t = (time_t)(j->start_time_ms / 1000);
		struct tm tmv;
		char when[32];
		gmtime_r(&t, &tmv);
		strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tmv);
		char ck[160] = "";
		if (j->has_restarts)
			snprintf(ck, sizeof(ck), "  restarts %u, checkpoints %llu, restored %s%llu", j->restarts,
				 (unsigned long long)j->checkpoints_completed, j->checkpoint_restored ? "checkpoint " : "",
				 (unsigned long long)j->checkpoint_restored);
		if (j->has_restarts && !j->checkpoint_restored)
			snprintf(ck + strlen(ck) - 1, sizeof(ck) - strlen(ck) + 1, "none");
		char name[256], msg[1100]; /* from the JobManager, from outside: one line each */
		printf("%-6llu %-24s %-10s %-24s %-11u%s%s%s\n", (unsigned long long)j->job_id,
		       weir_escape(name, sizeof(name), j->name), state_name(j->state), when, j->parallelism, ck,
		       j->message ? "  " : "", j->message ? weir_escape(msg, sizeof(msg), j->message) : "");
	}
	weir_ctl_free(r);
	return 0;
}

const char weir_cancel_usage[] = "usage: weir cancel JOBID [--run-dir D]\n";

int weir_cancel_main(int argc, char **argv)
{
	const char *run_dir = NULL;
	long long id = -1;
	for (int i = 0; i < argc; i++) {
		const char *a = argv[i];
		if (weir_help_flag(a)) {
			fputs(weir_cancel_usage, stdout);
			return 0;
		} else if (!strcmp(a, "--run-dir") && i + 1 < argc) {
			run_dir = argv[++i];
		} else if ((a[0] == '-' && (a[1] < '0' || a[1] > '9')) || id >= 1) {
			return bad_argument("cancel", argc, argv, i, weir_cancel_usage);
		} else {
			if (weir_parse_num(a, 1, INT64_MAX, false, &id) < 0) {
				fprintf(stderr, "weir cancel: '%s' is not a job id\n%s", a, weir_cancel_usage);
				return EXIT_USAGE;
			}
		}
	}
	if (id < 1) {
		fputs(weir_cancel_usage, stderr);
		return EXIT_USAGE;
	}
	struct weir_rundir rd;
	weir_rundir_init(&rd, run_dir);
	struct weir_ctl_client *c;
	Weir__Ctl__Cancel cc = WEIR__CTL__CANCEL__INIT;
	cc.job_id = (uint64_t)id;
	weir_msg m = WEIR__CTL__ENVELOPE__INIT, *r;
	m.body_case = WEIR__CTL__ENVELOPE__BODY_CANCEL;
	m.cancel = &cc;
	if (weir_ctl_client_open(&c, &rd, "weir cancel") < 0) {
		fprintf(stderr, "weir cancel: %s\n", weir_err_msg());
		return EXIT_FAIL;
	}
	if (weir_ctl_client_call(c, &m, &r, 5000) < 0) {
		fprintf(stderr, "weir cancel: %s\n", weir_err_msg());
		weir_ctl_client_close(c);
		return EXIT_FAIL;
	}
	weir_ctl_client_close(c);
	weir_ctl_free(r);
	printf("job %lld: cancel requested\n", id);
	return 0;
}

const char weir_savepoint_usage[] = "usage: weir savepoint JOBID [DIR] [--run-dir D]     (DIR: ./savepoints)\n";
const char weir_stop_usage[] = "usage: weir stop JOBID --savepoint DIR [--run-dir D]\n";

/* weir savepoint JOBID [DIR] and weir stop JOBID --savepoint DIR */
static int savepoint_cmd(int argc, char **argv, bool stop)
{
	const char *name = stop ? "weir stop" : "weir savepoint";
	const char *use = stop ? weir_stop_usage : weir_savepoint_usage;
	const char *run_dir = NULL, *dir = NULL;
	long long id = -1;
	for (int i = 0; i < argc; i++) {
		if (weir_help_flag(argv[i])) {
			fputs(use, stdout);
			return 0;
		} else if (!strcmp(argv[i], "--run-dir") && i + 1 < argc) {
			run_dir = argv[++i];
		} else if (stop && !strcmp(argv[i], "--savepoint") && i + 1 < argc) {
			dir = argv[++i];
		} else if (id < 0 && argv[i][0] != '-') {
			if (weir_parse_num(argv[i], 1, INT64_MAX, false, &id) < 0) {
				fprintf(stderr, "%s: '%s' is not a job id\n%s", name, argv[i], use);
				return EXIT_USAGE;
			}
		} else if (!stop && !dir && argv[i][0] != '-') {
			dir = argv[i];
		} else {
			return bad_argument(name + 5, argc, argv, i, use);
		}
	}
	if (id < 0 || (stop && !dir)) {
		fputs(use, stderr);
		return EXIT_USAGE;
	}
	char abs[PATH_MAX];
	if (absolute("savepoint folder", dir ? dir : "savepoints", abs, sizeof(abs), false) < 0)
		return EXIT_USAGE;
	struct weir_rundir rd;
	weir_rundir_init(&rd, run_dir);
	struct weir_ctl_client *c;
	Weir__Ctl__TriggerSavepoint ts = WEIR__CTL__TRIGGER_SAVEPOINT__INIT;
	ts.job_id = (uint64_t)id;
	ts.dir = abs;
	ts.has_stop = true;
	ts.stop = stop;
	weir_msg m = WEIR__CTL__ENVELOPE__INIT, *r;
	m.body_case = WEIR__CTL__ENVELOPE__BODY_TRIGGER_SAVEPOINT;
	m.trigger_savepoint = &ts;
	/* as long as the job's checkpoint timeout allows, and then some */
	if (weir_ctl_client_open(&c, &rd, name) < 0) {
		fprintf(stderr, "%s: %s\n", name, weir_err_msg());
		return EXIT_FAIL;
	}
	if (weir_ctl_client_call(c, &m, &r, 25 * 3600 * 1000) < 0) {
		fprintf(stderr, "%s: %s\n", name, weir_err_msg());
		weir_ctl_client_close(c);
		return EXIT_FAIL;
	}
	weir_ctl_client_close(c);
	int rc = EXIT_FAIL;
	if (r->body_case == WEIR__CTL__ENVELOPE__BODY_SAVEPOINT) {
		printf("%s\n", r->savepoint->path);
		fprintf(stderr, "%s: job %lld: savepoint %llu written to %s%s\n", name, id,
			(unsigned long long)r->savepoint->checkpoint_id, r->savepoint->path, stop ? "; the job stops" : "");
		rc = 0;
	} else if (r->body_case == WEIR__CTL__ENVELOPE__BODY_ERROR) {
		fprintf(stderr, "%s: %s\n", name, r->error->message);
	} else {
		fprintf(stderr, "%s: the jobmanager answered %s\n", name, weir_ctl_body_name(r->body_case));
	}
	weir_ctl_free(r);
	return rc;
}

int weir_savepoint_main(int argc, char **argv)
{
	return savepoint_cmd(argc, argv, false);
}

int weir_stop_main(int argc, char **argv)
{
	return savepoint_cmd(argc, argv, true);
}
