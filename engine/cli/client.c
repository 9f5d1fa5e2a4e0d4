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
#include "cli/remote.h"
#include "cluster/ctlio.h"
#include "net/tls.h"
#include "cluster/config.h"
#include "cluster/daemons.h"
#include "cluster/hosts.h"
#include "cluster/supervisor.h"
#include "ctl/objstore.h"
#include "ctl/sha.h"
#include "base/err.h"
#include "base/log.h"
#include "base/num.h"
#include "sched/cpu.h"
#include "sched/worker.h"
#include "shm/shmfile.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <fcntl.h>
#include <numa.h>
#include <openssl/crypto.h>
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

/* The run folder's record of the TaskManagers started on other hosts
 * (one line each: timeout, launcher, host, weir there, run folder there,
 * label), written before they are launched and removed by the stop that
 * checked them: `stop` runs `weir cluster leave` there through it, also
 * after the JobManager died. */
#define REMOTE_RECORD "remote-taskmanagers"

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

/* A live process: not a zombie (one that exited but was not reaped yet:
 * its parent's business, and slow where init reaps late). */
static bool alive(pid_t pid)
{
	if (pid <= 0 || kill(pid, 0) < 0)
		return false;
	char path[64], st[512];
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	if (weir_read_small_file(path, st, sizeof(st)) < 0) {
		weir_err_clear();
		return true;
	}
	const char *end = strrchr(st, ')'); /* "pid (comm) S ...": the comm may hold anything */
	return !end || (end[1] != ' ' || (end[2] != 'Z' && end[2] != 'X'));
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
	/* TaskManagers on other hosts of a cluster not stopped seek its
	 * JobManager forever: stop checks them through their launchers */
	weir_rundir_path(rd, REMOTE_RECORD, path, sizeof(path));
	if (access(path, F_OK) == 0)
		return weir_err_set("'%s' lists taskmanagers on other hosts of a cluster that was not stopped: run weir "
				    "cluster stop first (it stops them through the launcher)", path), fail("start");
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
	char portbuf[16], waitbuf[24], log[PATH_MAX], hbbuf[24], hbtbuf[24], xcbuf[24], spinbuf[24];
	snprintf(xcbuf, sizeof(xcbuf), "%ld", cc->net_credits);
	snprintf(spinbuf, sizeof(spinbuf), "%ld", cc->spin_us);
	snprintf(hbbuf, sizeof(hbbuf), "%ld", cc->hb_ms);
	snprintf(hbtbuf, sizeof(hbtbuf), "%ld", cc->hb_timeout_ms);
	snprintf(portbuf, sizeof(portbuf), "%ld", port);
	char restbuf[16];
	snprintf(restbuf, sizeof(restbuf), "%ld", cc->rest_port);
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
			    "--heartbeat-interval", hbbuf, "--heartbeat-timeout", hbtbuf, "--exchange-credits", xcbuf,
			    "--idle", (char *)cc->idle, "--spin-us", spinbuf, "--rest-port", restbuf,
			    "--rest-bind", (char *)cc->rest_bind,
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

/* Where TaskManager i of this host runs, and its slots. */
struct local_tm {
	int slots, node, first_core;
};

/* Start ntm TaskManagers through the supervisor, whose children they are
 * (it restarts one that dies), and wait until all are registered: 0 with
 * tms[] and *sup set, or -1 with the message printed and the JobManager
 * stopped (it stops the others). TaskManager i runs as lt[i] says (its
 * NUMA node, and its first core: those sharing a node start at different
 * cores). */
static int start_taskmanagers(struct weir_rundir *rd, pid_t jm, int ntm, const struct local_tm *lt, const char *level,
			      const struct weir_cluster_config *cc, pid_t *tms, pid_t *sup)
{
	static char bufs[256][4][24];
	static char *tm_args[256][30], *logs[256], **argp[256];
	/* their exchanges listen where the JobManager does: TaskManagers on
	 * other hosts reach them there (loopback when it listens everywhere) */
	const char *adv = !strcmp(cc->bind, "0.0.0.0") || !strcmp(cc->bind, "::") ? "127.0.0.1" : cc->bind;
	char segbuf[24], sizebuf[24], cancelbuf[24], log[PATH_MAX];
	snprintf(cancelbuf, sizeof(cancelbuf), "%ld", cc->cancel_timeout_ms);
	snprintf(segbuf, sizeof(segbuf), "%ld", cc->segments);
	snprintf(sizebuf, sizeof(sizebuf), "%ld", cc->segment_size);
	for (int i = 0; i < ntm; i++) {
		char name[64];
		snprintf(bufs[i][0], 24, "%d", i);
		snprintf(bufs[i][1], 24, "%d", lt[i].node);
		snprintf(bufs[i][2], 24, "%d", lt[i].first_core);
		snprintf(bufs[i][3], 24, "%d", lt[i].slots);
		snprintf(name, sizeof(name), "taskmanager-%d.log", i);
		weir_rundir_path(rd, name, log, sizeof(log));
		free(logs[i]);
		logs[i] = strdup(log);
		char *a[] = { "taskmanager", "--run-dir", rd->dir, "--id", bufs[i][0], "--slots", bufs[i][3],
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

/* ---- a cluster across hosts: TaskManagers started elsewhere through the launcher ---- */

struct remote {
	char launcher[512], host[256], weir[PATH_MAX], dir[PATH_MAX], label[PATH_MAX], address[64];
	long slots, node, first_core;	/* 0, -1, -1: not given */
	long timeout_ms;
	struct weir_launch l;
	pid_t pid;			/* the TaskManager's, as join printed it */
};

static void no_tabs(char *s)
{
	for (; *s; s++)
		if (*s == '\t' || *s == '\n')
			*s = ' ';
}

static int write_record(const struct weir_rundir *rd, const struct remote *r, int n)
{
	char path[PATH_MAX];
	weir_rundir_path(rd, REMOTE_RECORD, path, sizeof(path));
	if (n == 0) {
		unlink(path);
		return 0;
	}
	size_t cap = (size_t)n * (sizeof(*r) - sizeof(r->l)) + 1, len = 0;
	char *buf = malloc(cap);
	if (!buf)
		return weir_err_set("out of memory");
	for (int i = 0; i < n; i++)
		len += (size_t)snprintf(buf + len, cap - len, "%ld\t%s\t%s\t%s\t%s\t%s\n", r[i].timeout_ms, r[i].launcher,
					r[i].host, r[i].weir, r[i].dir, r[i].label);
	int rc = weir_write_file_atomic(path, buf);
	free(buf);
	return rc;
}

/* The record's entries (calloc'd; *n of them), or NULL when there is none. */
static struct remote *read_record(const struct weir_rundir *rd, int *n)
{
	char path[PATH_MAX];
	*n = 0;
	weir_rundir_path(rd, REMOTE_RECORD, path, sizeof(path));
	FILE *f = fopen(path, "r");
	if (!f)
		return NULL;
	struct remote *r = calloc(WEIR_HOSTS_REMOTE_MAX, sizeof(*r));
	char line[5 * PATH_MAX];
	while (r && *n < WEIR_HOSTS_REMOTE_MAX && fgets(line, sizeof(line), f)) {
		line[strcspn(line, "\n")] = '\0';
		char *f6[6], *save = NULL;
		int k = 0;
		for (char *w = strtok_r(line, "\t", &save); w && k < 6; w = strtok_r(NULL, "\t", &save))
			f6[k++] = w;
		if (k != 6)
			continue;
		struct remote *x = &r[(*n)++];
		x->timeout_ms = atol(f6[0]);
		snprintf(x->launcher, sizeof(x->launcher), "%s", f6[1]);
		snprintf(x->host, sizeof(x->host), "%s", f6[2]);
		snprintf(x->weir, sizeof(x->weir), "%s", f6[3]);
		snprintf(x->dir, sizeof(x->dir), "%s", f6[4]);
		snprintf(x->label, sizeof(x->label), "%s", f6[5]);
	}
	fclose(f);
	return r;
}

/* The command line that starts remote r's TaskManager there: `weir cluster
 * join` (engine/cli/remote.c), its words quoted for the shell there. */
static int join_cmdline(const struct remote *r, const char *jm_addr, const struct weir_cluster_config *cc,
			const char *level, char *buf, size_t n)
{
	char to[24], seg[24], size[24], cancel[24], slots[24], node[24], first[24];
	snprintf(to, sizeof(to), "%ld", r->timeout_ms);
	snprintf(seg, sizeof(seg), "%ld", cc->segments);
	snprintf(size, sizeof(size), "%ld", cc->segment_size);
	snprintf(cancel, sizeof(cancel), "%ld", cc->cancel_timeout_ms);
	snprintf(slots, sizeof(slots), "%ld", r->slots);
	snprintf(node, sizeof(node), "%ld", r->node);
	snprintf(first, sizeof(first), "%ld", r->first_core);
	const char *w[32] = { r->weir, "cluster", "join", "--run-dir", r->dir, "--timeout", to, "--",
			      "--jobmanager", jm_addr, "--advertise", r->address, "--segments", seg,
			      "--segment-size", size, "--cancel-timeout", cancel, "--log-level", level };
	int k = 20;
	if (r->slots > 0)
		w[k++] = "--slots", w[k++] = slots;
	if (r->node >= 0)
		w[k++] = "--numa-node", w[k++] = node;
	if (r->first_core >= 0)
		w[k++] = "--first-core", w[k++] = first;
	/* TLS: the host's own certificate, named as the host is, in the same
	 * certificate folder there */
	if (cc->tls_enabled)
		w[k++] = "--tls-dir", w[k++] = cc->tls_dir, w[k++] = "--tls-name", w[k++] = r->host;
	size_t len = (size_t)snprintf(buf, n, "exec");
	for (int i = 0; i < k; i++)
		if (len + 1 >= n || (buf[len++] = ' ', weir_shell_word(buf, n, &len, w[i]) < 0))
			return weir_err_set("the command line for %s is too long", r->label);
	return 0;
}

/* Start the TaskManagers of r[0..n) through their launchers, all at once
 * (join on each host waits until its TaskManager registered). 0 with each
 * pid set; or -1 with every failure printed, naming the host and quoting
 * the launcher's stderr, and the record cut to those that did start. */
static int start_remote(const struct weir_rundir *rd, struct remote *r, int n, const char *jm_addr,
			const struct weir_cluster_config *cc, const char *level)
{
	char path[PATH_MAX], secret[80];
	weir_rundir_path(rd, "secret", path, sizeof(path));
	if (weir_read_small_file(path, secret, sizeof(secret) - 1) < 0) {
		fprintf(stderr, "weir cluster start: %s\n", weir_err_msg());
		return -1;
	}
	strcat(secret, "\n"); /* given on stdin only: never on a command line, never in a file others read */
	static char cmd[4 * PATH_MAX + 1024];
	int bad = 0;
	for (int i = 0; i < n; i++) {
		if (join_cmdline(&r[i], jm_addr, cc, level, cmd, sizeof(cmd)) < 0) {
			snprintf(r[i].l.why, sizeof(r[i].l.why), "%s", weir_err_msg());
			r[i].l.done = true;
			continue;
		}
		weir_launch_start(&r[i].l, r[i].launcher, r[i].host, cmd, secret);
	}
	OPENSSL_cleanse(secret, sizeof(secret));
	/* join waits timeout_ms for its TaskManager; the launcher has 5 s more
	 * to connect and to bring its answer back */
	struct weir_launch *ls = calloc((size_t)n, sizeof(*ls));
	if (!ls) {
		fprintf(stderr, "weir cluster start: out of memory\n");
		return -1;
	}
	for (int i = 0; i < n; i++)
		ls[i] = r[i].l;
	weir_launch_wait(ls, n, (int)cc->launch_timeout_ms + 5000);
	int kept = 0;
	for (int i = 0; i < n; i++) {
		r[i].l = ls[i];
		char why[512];
		long long pid = 0;
		const char *failed = weir_launch_failed(&r[i].l, r[i].launcher, (int)cc->launch_timeout_ms + 5000, why,
							sizeof(why));
		/* join's last line (a login script there may have printed before) */
		char out[sizeof(r[i].l.outbuf)];
		snprintf(out, sizeof(out), "%s", r[i].l.outbuf);
		size_t ol = strlen(out);
		while (ol && (out[ol - 1] == '\n' || out[ol - 1] == '\r'))
			out[--ol] = '\0';
		const char *last = strrchr(out, '\n') ? strrchr(out, '\n') + 1 : out;
		if (!failed && weir_parse_num(last, 2, INT_MAX, false, &pid) < 0)
			failed = "the launcher succeeded, but no taskmanager pid came back (does it pass stdout on?)";
		if (failed) {
			fprintf(stderr, "weir cluster start: taskmanager on %s: %s%s\n", r[i].label, failed,
				r[i].l.errn ? ":" : "");
			weir_launch_print_stderr(&r[i].l, stderr, "  ");
			/* nothing of it outlives this start: join ended and left nothing,
			 * or (timed out) its TaskManager is stopped by the JobManager if
			 * it registered, refused or finds no JobManager if not, and
			 * killed by join itself if it never registers */
			bad++;
			continue;
		}
		r[i].pid = (pid_t)pid;
		if (kept != i) {
			struct remote tmp = r[kept];
			r[kept] = r[i];
			r[i] = tmp;
		}
		kept++;
	}
	free(ls);
	if (!bad)
		return 0;
	if (write_record(rd, r, kept) < 0)
		fprintf(stderr, "weir cluster start: %s\n", weir_err_msg());
	return -1;
}

/* The host part of a data address ("10.0.0.2:4000", "[::1]:4000"). */
static void addr_host(const char *a, char *out, size_t n)
{
	snprintf(out, n, "%s", a && *a == '[' ? a + 1 : a ? a : "");
	char *c = strrchr(out, a && *a == '[' ? ']' : ':');
	if (c)
		*c = '\0';
}

/* After a stop: check the TaskManagers started on other hosts (the
 * record) through their launchers with `weir cluster leave`, which stops
 * one still running and says so. 0, or -1 when a host could not be
 * checked (named; the record keeps it for the next stop). */
static int sweep_remote(const struct weir_rundir *rd)
{
	int n;
	struct remote *r = read_record(rd, &n);
	if (!r)
		return 0;
	static char cmd[2 * PATH_MAX + 256];
	long wait = 0;
	for (int i = 0; i < n; i++) {
		size_t len = (size_t)snprintf(cmd, sizeof(cmd), "exec");
		const char *w[] = { r[i].weir, "cluster", "leave", "--run-dir", r[i].dir, "--timeout", "5000" };
		bool fits = true;
		for (size_t k = 0; fits && k < sizeof(w) / sizeof(w[0]); k++)
			fits = len + 1 < sizeof(cmd) && (cmd[len++] = ' ', weir_shell_word(cmd, sizeof(cmd), &len, w[k]) == 0);
		if (fits) {
			weir_launch_start(&r[i].l, r[i].launcher, r[i].host, cmd, NULL);
		} else {
			snprintf(r[i].l.why, sizeof(r[i].l.why), "the command line is too long");
			r[i].l.done = true;
		}
		wait = r[i].timeout_ms > wait ? r[i].timeout_ms : wait;
	}
	struct weir_launch *ls = calloc((size_t)n, sizeof(*ls));
	for (int i = 0; ls && i < n; i++)
		ls[i] = r[i].l;
	/* leave waits 5 s for it to stop by itself, then 12 s for signals */
	if (ls)
		weir_launch_wait(ls, n, (int)wait + 5000 + 17000);
	int bad = 0, left = 0;
	for (int i = 0; ls && i < n; i++) {
		r[i].l = ls[i];
		char why[512];
		const char *failed = weir_launch_failed(&r[i].l, r[i].launcher, (int)wait + 22000, why, sizeof(why));
		if (failed) {
			fprintf(stderr, "weir cluster stop: could not check the taskmanager on %s: %s%s\n", r[i].label, failed,
				r[i].l.errn ? ":" : "");
			weir_launch_print_stderr(&r[i].l, stderr, "  ");
			r[bad++] = r[i]; /* kept for the next stop */
		} else if (r[i].l.outn) {
			printf("  on %s: %s", r[i].label, r[i].l.outbuf);
			left++;
		}
	}
	if (ls)
		printf("checked %d other hosts through the launcher: %s\n", n - bad,
		       left ? "stopped what was left (above)" : "no taskmanager left running");
	free(ls);
	if (write_record(rd, r, bad) < 0)
		fprintf(stderr, "weir cluster stop: %s\n", weir_err_msg());
	free(r);
	return bad || !ls ? -1 : 0;
}

static int cmd_stop(struct weir_rundir *rd);

/* Where each TaskManager goes: lt[] for those on this host, r[] (calloc'd,
 * *nremote) for the others. Without a hosts file, ntm here as today: the
 * i-th on the (i mod n)-th NUMA node, at first core (i / n) x slots. */
static struct remote *plan(const struct weir_rundir *rd, int ntm, int slots, long given_slots,
			   const struct weir_cluster_config *cc, const struct weir_hosts *h, const char *hosts_path,
			   struct local_tm *lt, int *nlocal, int *nremote)
{
	int nodes[64];
	int nnodes = weir_cpu_nodes(nodes, 64);
	if (nnodes < 1)
		nodes[0] = 0, nnodes = 1;
	*nlocal = *nremote = 0;
	if (!h) {
		for (int i = 0; i < ntm; i++)
			lt[i] = (struct local_tm){ slots, nodes[i % nnodes], i / nnodes * slots };
		*nlocal = ntm;
		return NULL;
	}
	struct remote *r = calloc(WEIR_HOSTS_REMOTE_MAX, sizeof(*r));
	char self[PATH_MAX];
	ssize_t sn = readlink("/proc/self/exe", self, sizeof(self) - 1);
	self[sn > 0 ? sn : 0] = '\0';
	for (int i = 0; r && i < h->n; i++) {
		const struct weir_hosts_tm *t = &h->tm[i];
		/* slots taken on its node (and host) by those before it: where it starts */
		long node = t->local && t->numa_node < 0 ? nodes[*nlocal % nnodes] : t->numa_node, first = 0;
		bool known = true; /* the slots of all those before it (a TaskManager without: all CPUs there) */
		if (t->local) {
			for (int j = 0; j < *nlocal; j++)
				if (lt[j].node == node)
					first += lt[j].slots;
			lt[*nlocal] = (struct local_tm){ t->slots ? (int)t->slots : slots, (int)node, (int)first };
			(*nlocal)++;
			continue;
		}
		for (int j = 0; j < *nremote; j++)
			if (!strcmp(r[j].address, t->address) && r[j].node == node) {
				known &= r[j].slots > 0;
				first += r[j].slots;
			}
		struct remote *x = &r[(*nremote)++];
		snprintf(x->address, sizeof(x->address), "%s", t->address);
		snprintf(x->host, sizeof(x->host), "%s", t->host);
		snprintf(x->launcher, sizeof(x->launcher), "%s", t->launcher[0] ? t->launcher : cc->launcher);
		snprintf(x->weir, sizeof(x->weir), "%s", cc->remote_weir[0] ? cc->remote_weir : self);
		snprintf(x->dir, sizeof(x->dir), "%s/remote-%d", cc->remote_run_dir[0] ? cc->remote_run_dir : rd->dir, i);
		snprintf(x->label, sizeof(x->label), "host %s (%s:%d)", t->host, hosts_path, t->line);
		no_tabs(x->launcher);
		no_tabs(x->label);
		x->slots = t->slots ? t->slots : given_slots;
		x->node = node;
		x->first_core = known && first > 0 ? first : -1;
		x->timeout_ms = cc->launch_timeout_ms;
	}
	return r;
}

static int cmd_start(struct weir_rundir *rd, int ntm, int slots, long given_slots, long port, const char *level,
		     const struct weir_cluster_config *cc, const struct weir_hosts *h, const char *hosts_path)
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
	static struct local_tm lt[WEIR_HOSTS_LOCAL_MAX];
	int nlocal, nremote;
	struct remote *r = plan(rd, ntm, slots, given_slots, cc, h, hosts_path, lt, &nlocal, &nremote);
	if (h && !r)
		return weir_err_set("out of memory"), fail("start");
	/* recorded before anything is launched: a stop finds them all */
	if (nremote && write_record(rd, r, nremote) < 0) {
		free(r);
		return fail("start");
	}
	pid_t jm = start_jobmanager(rd, port, level, cc), tms[256], sup = 0;
	if (jm < 0 || (nlocal && start_taskmanagers(rd, jm, nlocal, lt, level, cc, tms, &sup) < 0)) {
		write_record(rd, r, 0);
		free(r);
		return EXIT_FAIL;
	}
	if (!nlocal) { /* no supervisor: no pid file of an earlier one */
		weir_rundir_path(rd, "supervisor.pid", path, sizeof(path));
		unlink(path);
	}
	char addr[128];
	weir_rundir_path(rd, "jobmanager.addr", path, sizeof(path));
	weir_read_small_file(path, addr, sizeof(addr));
	weir_msg *st = NULL;
	if (nremote) {
		struct weir_ctl_client *c = NULL;
		if (start_remote(rd, r, nremote, addr, cc, level) < 0) {
			rc = EXIT_FAIL;
		} else if (weir_ctl_client_open(&c, rd, "weir cluster start") < 0 ||
			   status_call(c, nlocal + nremote, &st) < 0 ||
			   st->body_case != WEIR__CTL__ENVELOPE__BODY_CLUSTER_STATUS) {
			fprintf(stderr, "weir cluster start: %s\n", weir_err_msg());
			rc = EXIT_FAIL;
		} else if ((int)st->cluster_status->n_taskmanagers != nlocal + nremote) {
			fprintf(stderr, "weir cluster start: %zu taskmanagers registered, not %d\n",
				st->cluster_status->n_taskmanagers, nlocal + nremote);
			rc = EXIT_FAIL;
		}
		if (c)
			weir_ctl_client_close(c);
		if (rc) { /* stop what did start, here and there */
			fprintf(stderr, "weir cluster start: stopping what started\n");
			if (st)
				weir_ctl_free(st);
			free(r);
			cmd_stop(rd);
			return rc;
		}
	}
	printf("cluster %s started in %s%s\n", id, rd->dir, swept > 0 ? " (removed stale shared memory of a crashed "
								    "cluster)" : "");
	printf("  jobmanager        %s  pid %d  log %s/jobmanager.log\n", addr, (int)jm, rd->dir);
	char rest[64];
	weir_rundir_path(rd, "jobmanager.rest", path, sizeof(path));
	if (weir_read_small_file(path, rest, sizeof(rest)) == 0)
		printf("  REST API          http://%s/\n", rest);
	if (nlocal)
		printf("  supervisor        pid %d  log %s/supervisor.log\n", (int)sup, rd->dir);
	for (int i = 0; i < nlocal; i++)
		printf("  taskmanager %-3d  %d slots  pid %d  log %s/taskmanager-%d.log\n", i, lt[i].slots, (int)tms[i],
		       rd->dir, i);
	for (int i = 0; i < nremote; i++) {
		const Weir__Ctl__TaskManagerInfo *t = NULL;
		for (size_t j = 0; st && j < st->cluster_status->n_taskmanagers; j++) {
			const Weir__Ctl__TaskManagerInfo *u = st->cluster_status->taskmanagers[j];
			char host[64];
			addr_host(u->data_address, host, sizeof(host));
			if (u->pid == (uint32_t)r[i].pid && !strcmp(host, r[i].address))
				t = u;
		}
		if (t)
			printf("  taskmanager %-3u  %u slots  pid %d  on %s  log %s/taskmanager.log there\n", t->tm_id,
			       t->slots, (int)r[i].pid, r[i].label, r[i].dir);
		else
			printf("  taskmanager ?    pid %d  on %s  log %s/taskmanager.log there\n", (int)r[i].pid, r[i].label,
			       r[i].dir);
	}
	if (st)
		weir_ctl_free(st);
	free(r);
	return 0;
}

/* The dashboard's address, with the token its buttons (and any other
 * action of the REST API) need: the cluster's owner only, who can read the
 * secret. */
static int cmd_dashboard(struct weir_rundir *rd)
{
	char path[PATH_MAX], rest[96], token[WEIR_REST_TOKEN_LEN + 1];
	weir_rundir_path(rd, "jobmanager.rest", path, sizeof(path));
	if (weir_read_small_file(path, rest, sizeof(rest)) < 0) {
		fprintf(stderr, "weir cluster dashboard: no REST API in %s (is the cluster running, with rest.port "
			"not -1?)\n", rd->dir);
		return EXIT_FAIL;
	}
	struct weir_auth_secret s;
	weir_rundir_path(rd, "secret", path, sizeof(path));
	if (weir_auth_secret_load(path, &s) < 0) {
		fprintf(stderr, "weir cluster dashboard: %s\n", weir_err_msg());
		return EXIT_FAIL;
	}
	int rc = weir_auth_rest_token(&s, token);
	weir_auth_secret_wipe(&s);
	if (rc < 0) {
		fprintf(stderr, "weir cluster dashboard: %s\n", weir_err_msg());
		return EXIT_FAIL;
	}
	printf("http://%s/#token=%s\n", rest, token);
	explicit_bzero(token, sizeof(token));
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
	bool none = access(path, F_OK) < 0 && errno == ENOENT;
	pid_t sup = weir_read_small_file(path, buf, sizeof(buf)) == 0 ? (pid_t)atoi(buf) : 0;
	char rec[PATH_MAX];
	weir_rundir_path(rd, REMOTE_RECORD, rec, sizeof(rec));
	if (sup > 1 && alive(sup) && is_weir(sup))
		printf("  supervisor      pid %d\n", (int)sup);
	else if (none && access(rec, F_OK) == 0) /* a hosts file without a taskmanager on this host */
		printf("  supervisor: none (no taskmanager of the cluster on this host)\n");
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
	/* the TaskManagers on other hosts stopped on the JobManager's word;
	 * their launchers tell whether one is left (cut off, or the JobManager
	 * was gone) */
	return sweep_remote(rd) < 0 ? EXIT_FAIL : 0;
}

const char weir_cluster_start_usage[] =
	"usage: weir cluster start [--config FILE] [--taskmanagers N | --hosts FILE] [--slots S] [--port P]\n"
	"                          [--run-dir D] [--slot-wait MS] [--cancel-timeout MS] [--exchange auto|tcp]\n"
	"                          [--log-level L]\n";
const char weir_cluster_status_usage[] = "usage: weir cluster status [--wait N] [--run-dir D]\n";
const char weir_cluster_stop_usage[] = "usage: weir cluster stop [--run-dir D]\n";
const char weir_cluster_dashboard_usage[] =
	"usage: weir cluster dashboard [--run-dir D]   (the web dashboard's address, with the token for actions)\n";

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
	{ "dashboard", weir_cluster_dashboard_usage },
	{ "join", weir_cluster_join_usage }, /* run on another host by the launcher (cli/remote.c) */
	{ "leave", weir_cluster_leave_usage },
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
					     "--exchange", "--hosts" };
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
	/* the commands run on another host: their own flags, no configuration */
	if (!strcmp(cmd, "join"))
		return weir_cluster_join_main(argc - 1, argv + 1);
	if (!strcmp(cmd, "leave"))
		return weir_cluster_leave_main(argc - 1, argv + 1);
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
	const char *hosts_path = cc.hosts[0] ? cc.hosts : NULL;
	bool ntm_flag = false;
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
			ntm_flag |= num == &ntm;
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
		} else if (!strcmp(a, "--hosts") && v) {
			hosts_path = argv[++i];
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
	long given_slots = slots; /* for TaskManagers on other hosts: 0 leaves it to them (their CPUs) */
	static struct weir_hosts hosts;
	if (hosts_path && !strcmp(cmd, "start")) {
		if (ntm_flag || cc.taskmanagers) {
			fprintf(stderr, "weir cluster start: the hosts file '%s' lists the taskmanagers: %s does not "
				"apply\n", hosts_path, ntm_flag ? "--taskmanagers" : "the configuration's taskmanagers");
			return EXIT_USAGE;
		}
		if (weir_hosts_load(hosts_path, &hosts) < 0) {
			fprintf(stderr, "weir cluster start: %s\n", weir_err_msg());
			return EXIT_USAGE;
		}
		/* the JobManager binds the address the others reach it on */
		snprintf(cc.bind, sizeof(cc.bind), "%s", hosts.jobmanager);
		ntm = hosts.nlocal > 0 ? hosts.nlocal : 1;
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
		return cmd_start(&rd, (int)ntm, (int)slots, given_slots, port, level, &cc,
				 hosts_path ? &hosts : NULL, hosts_path);
	if (!strcmp(cmd, "status"))
		return cmd_status(&rd, (int)wait);
	if (!strcmp(cmd, "dashboard"))
		return cmd_dashboard(&rd);
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
	"usage: weir run JOB.so [-p N] [--spread] [--detached] [-q] [--run-dir D] [--idle MODE] [--spin-us N]\n"
	"                [--debloat-us N] [--latency-interval MS]\n"
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
	bool spread, detached, ck, quiet;
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
		} else if ((ckr = weir_config_idle_option(&r->ckcfg, argc, argv, &i)) != 0) {
			if (ckr < 0)
				return EXIT_USAGE;
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
		} else if (!strcmp(a, "-q") || !strcmp(a, "--quiet")) {
			r->quiet = true;
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

/* Is s valid UTF-8 (no overlong forms, no surrogates, at most U+10FFFF)? */
static bool utf8_ok(const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	while (*p) {
		unsigned c = *p++, n = c < 0x80 ? 0 : (c & 0xe0) == 0xc0 ? 1 : (c & 0xf0) == 0xe0 ? 2 : (c & 0xf8) == 0xf0 ? 3 : 9;
		if (n == 9 || (n == 1 && c < 0xc2))
			return false;
		uint32_t cp = n ? c & (0x3fu >> n) : c;
		for (unsigned k = 0; k < n; k++, p++) {
			if ((*p & 0xc0) != 0x80)
				return false;
			cp = cp << 6 | (*p & 0x3fu);
		}
		if ((n == 2 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) || (n == 3 && (cp < 0x10000 || cp > 0x10ffff)))
			return false;
	}
	return true;
}

/* Upload the object if it does not fit in SubmitJob, submit the job (its
 * graph: vertices and their parallelism) and read the answer. 0 and *id,
 * or -1 with the message printed. */
static int run_submit(struct run *r, struct weir_ctl_client *c, uint64_t *id)
{
	int nv = r->plan.nv;
	/* the protocol's strings are UTF-8 (protobuf): a job whose file name,
	 * operator names or arguments are not is refused here, by name, not by
	 * the JobManager dropping the connection */
	const char *bad = !utf8_ok(r->base) ? r->base : NULL;
	for (int v = 0; !bad && v < nv; v++)
		if (!utf8_ok(r->env->nodes[r->plan.v[v].nodes[0]]->name))
			bad = r->env->nodes[r->plan.v[v].nodes[0]]->name;
	for (int a = 0; !bad && a < r->jargc; a++)
		if (!utf8_ok(r->jargv[a]))
			bad = r->jargv[a];
	if (bad) {
		fprintf(stderr, "weir run: '%s' (the job's file name, an operator's name or an argument) is not UTF-8: "
				"the cluster's protocol carries text only; rename it\n", bad);
		return -1;
	}
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
	/* the edges between vertices (into each chain's head), for those who
	 * draw the graph (the REST API) */
	int ne = 0;
	for (int v = 0; v < nv; v++)
		ne += r->env->nodes[r->plan.v[v].nodes[0]]->nin;
	Weir__Ctl__Edge *ed = calloc((size_t)ne + 1, sizeof(*ed)), **edp = calloc((size_t)ne + 1, sizeof(*edp));
	if (!ed || !edp) {
		free(vx);
		free(vxp);
		free(ed);
		free(edp);
		fprintf(stderr, "weir run: out of memory\n");
		return -1;
	}
	ne = 0;
	for (int v = 0; v < nv; v++) {
		const struct node *head = r->env->nodes[r->plan.v[v].nodes[0]];
		for (int k = 0; k < head->nin; k++, ne++) {
			Weir__Ctl__Edge init = WEIR__CTL__EDGE__INIT;
			enum part_kind pk = r->plan.edge_part[r->plan.edge_base[head->id] + k];
			ed[ne] = init;
			ed[ne].source = (uint32_t)r->plan.node_vertex[head->in[k].src];
			ed[ne].target = (uint32_t)v;
			ed[ne].partitioning = pk == PART_HASH ? WEIR__CTL__PARTITIONING__PART_HASH
					    : pk == PART_REBALANCE ? WEIR__CTL__PARTITIONING__PART_REBALANCE
					    : pk == PART_BROADCAST ? WEIR__CTL__PARTITIONING__PART_BROADCAST
								    : WEIR__CTL__PARTITIONING__PART_FORWARD;
			ed[ne].has_source_output = ed[ne].has_target_input = true;
			ed[ne].source_output = (uint32_t)head->in[k].tag;
			ed[ne].target_input = (uint32_t)head->in[k].side;
			edp[ne] = &ed[ne];
		}
	}
	Weir__Ctl__JobGraph g = WEIR__CTL__JOB_GRAPH__INIT;
	g.n_vertices = (size_t)nv;
	g.vertices = vxp;
	g.n_edges = (size_t)ne;
	g.edges = edp;
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
	char idle_name[16];
	if (r->ckcfg.idle_set) { /* else the cluster's (worker.idle, worker.spin_us) */
		snprintf(idle_name, sizeof(idle_name), "%s", weir_idle_name((enum weir_idle)r->ckcfg.idle));
		sj.idle = idle_name;
		sj.has_spin_us = true;
		sj.spin_us = (uint32_t)(r->ckcfg.spin_ns / 1000u);
	}
	if (r->ckcfg.latency_interval_ms) {
		sj.has_latency_interval_ms = true;
		sj.latency_interval_ms = r->ckcfg.latency_interval_ms;
	}
	if (r->ckcfg.debloat_ns) {
		sj.has_debloat_us = true;
		sj.debloat_us = (uint32_t)(r->ckcfg.debloat_ns / 1000u);
	}
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
	free(ed);
	free(edp);
	return rc;
}

/* Wait for the submitted job's end, cancelling it on the first SIGINT or
 * SIGTERM. The exit status: 0 finished, 130 canceled, 1 anything else. */
static int run_wait(struct weir_ctl_client *c, uint64_t id, const char *base, const struct weir_rundir *rd,
		    bool quiet)
{
	fprintf(stderr, "weir run: job %llu (%s) submitted\n", (unsigned long long)id, base);
	/* on a terminal: a line of figures, redrawn every second */
	struct weir_run_progress *line = weir_run_progress_start(rd, id, quiet);
	int ticks = 0;
	struct sigaction sa = { .sa_handler = on_sigint };
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	bool cancel_sent = false;
	weir_msg *r = NULL;
	for (;;) {
		int w = weir_ctl_client_wait(c, &r, 100);
		if (w < 0) {
			weir_run_progress_stop(line);
			fprintf(stderr, "weir run: job %llu: %s\n", (unsigned long long)id, weir_err_msg());
			return EXIT_FAIL;
		}
		if (w == 1)
			break;
		if (++ticks % 10 == 0)
			weir_run_progress_draw(line);
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
	weir_run_progress_stop(line);
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
			rc = run_wait(c, id, r.base, &rd, r.quiet);
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
