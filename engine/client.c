/*
 * engine/client.c - `weir cluster start|status|stop`: the local cluster
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
#include "engine/ctlio.h"
#include "base/err.h"
#include "sched/cpu.h"
#include "shm/shmfile.h"

#include <errno.h>
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

/* Start `weir ARGS` as a daemon logging to logpath; wait until it writes
 * its ready byte. Returns the pid, or -1 with the trail set. */
static pid_t spawn(char *const args[], const char *logpath, int timeout_ms)
{
	char self[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n < 0)
		return weir_err_errno(errno, "readlink /proc/self/exe");
	self[n] = '\0';
	int fds[2];
	if (pipe2(fds, O_CLOEXEC) < 0)
		return weir_err_errno(errno, "pipe");
	pid_t pid = fork();
	if (pid < 0)
		return weir_err_errno(errno, "fork");
	if (pid == 0) {
		setsid();
		int log = open(logpath, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
		int null = open("/dev/null", O_RDONLY);
		if (log < 0 || null < 0)
			_exit(127);
		dup2(null, 0);
		dup2(log, 1);
		dup2(log, 2);
		dup2(fds[1], 3); /* the ready pipe; dup2 clears close-on-exec */
		char *argv[32];
		int k = 0;
		argv[k++] = self;
		for (int i = 0; args[i] && k < 30; i++)
			argv[k++] = args[i];
		argv[k] = NULL;
		execv(self, argv);
		_exit(127);
	}
	close(fds[1]);
	struct pollfd p = { .fd = fds[0], .events = POLLIN };
	char b = 0;
	int r = poll(&p, 1, timeout_ms);
	bool ready = r == 1 && read(fds[0], &b, 1) == 1 && b == 'R';
	close(fds[0]);
	if (!ready) {
		if (r == 0)
			kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		return weir_err_set("%s %s did not start (see %s)", args[0], r == 0 ? "timed out and" : "exited:", logpath);
	}
	return pid;
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
	for (size_t i = 0; i < cs->n_taskmanagers; i++) {
		const Weir__Ctl__TaskManagerInfo *t = cs->taskmanagers[i];
		printf("  taskmanager %-3u pid %-7u %u slots (%u used)  NUMA node %d  pool %s (%u x %u bytes)  "
		       "heartbeat %u ms ago\n",
		       t->tm_id, t->pid, t->slots, t->slots_used, t->numa_node, t->pool->name, t->pool->segments,
		       t->pool->segment_size, t->has_last_heartbeat_ms ? t->last_heartbeat_ms : 0);
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

static int cmd_start(struct weir_rundir *rd, int ntm, int slots, long port, const char *level)
{
	char path[PATH_MAX], log[PATH_MAX];
	if (mkdir(rd->dir, 0700) < 0 && errno != EEXIST)
		return weir_err_errno(errno, "create run folder '%s'", rd->dir), fail("start");
	chmod(rd->dir, 0700);
	weir_rundir_path(rd, "jobmanager.pid", path, sizeof(path));
	char pidbuf[32];
	if (weir_read_small_file(path, pidbuf, sizeof(pidbuf)) == 0 && alive((pid_t)atoi(pidbuf)))
		return weir_err_set("a cluster is already running in '%s' (jobmanager pid %s); stop it with "
				    "weir cluster stop", rd->dir, pidbuf), fail("start");
	weir_err_clear();
	/* a fresh id per start: /dev/shm names never meet a dead cluster's */
	unsigned char idb[4];
	char id[16];
	if (RAND_bytes(idb, sizeof(idb)) != 1)
		return weir_err_set("no random bytes"), fail("start");
	snprintf(id, sizeof(id), "c%02x%02x%02x%02x", idb[0], idb[1], idb[2], idb[3]);
	weir_rundir_path(rd, "cluster.id", path, sizeof(path));
	if (weir_write_file_atomic(path, id) < 0)
		return fail("start");
	weir_rundir_path(rd, "secret", path, sizeof(path));
	struct weir_auth_secret s;
	if (access(path, F_OK) == 0 ? weir_auth_secret_load(path, &s) < 0 : weir_auth_secret_create(path, &s) < 0)
		return fail("start");
	weir_auth_secret_wipe(&s);
	int swept = weir_shm_sweep("weir-c");
	weir_rundir_path(rd, "jobmanager.addr", path, sizeof(path));
	unlink(path); /* a crashed jobmanager's */

	char portbuf[16];
	snprintf(portbuf, sizeof(portbuf), "%ld", port);
	char *jm_args[] = { "jobmanager", "--run-dir", rd->dir, "--port", portbuf, "--ready-fd", "3", "--log-level",
			    (char *)level, NULL };
	weir_rundir_path(rd, "jobmanager.log", log, sizeof(log));
	pid_t jm = spawn(jm_args, log, 10000);
	if (jm < 0) {
		char line[1024];
		last_line(log, line, sizeof(line));
		fprintf(stderr, "weir cluster start: %s\n  %s\n", weir_err_msg(), line);
		return EXIT_FAIL;
	}
	pid_t tms[256];
	for (int i = 0; i < ntm; i++) {
		char idbuf[16], slotbuf[16], name[64];
		snprintf(idbuf, sizeof(idbuf), "%d", i);
		snprintf(slotbuf, sizeof(slotbuf), "%d", slots);
		snprintf(name, sizeof(name), "taskmanager-%d.log", i);
		weir_rundir_path(rd, name, log, sizeof(log));
		char *tm_args[] = { "taskmanager", "--run-dir", rd->dir, "--id", idbuf, "--slots", slotbuf,
				    "--ready-fd", "3", "--log-level", (char *)level, NULL };
		tms[i] = spawn(tm_args, log, 10000);
		if (tms[i] < 0) {
			char line[1024];
			last_line(log, line, sizeof(line));
			fprintf(stderr, "weir cluster start: %s\n  %s\n", weir_err_msg(), line);
			kill(jm, SIGTERM); /* the jobmanager stops the others */
			wait_exit(jm, 5000);
			return EXIT_FAIL;
		}
	}
	char addr[128];
	weir_rundir_path(rd, "jobmanager.addr", path, sizeof(path));
	weir_read_small_file(path, addr, sizeof(addr));
	printf("cluster %s started in %s%s\n", id, rd->dir, swept > 0 ? " (removed stale shared memory of a crashed "
								    "cluster)" : "");
	printf("  jobmanager        %s  pid %d  log %s/jobmanager.log\n", addr, (int)jm, rd->dir);
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
	if (wait >= 0 && n != wait) {
		fprintf(stderr, "weir cluster status: %d taskmanagers after waiting for %d\n", n, wait);
		return EXIT_FAIL;
	}
	return 0;
}

static int cmd_stop(struct weir_rundir *rd)
{
	char path[PATH_MAX], buf[64], id[64] = "";
	weir_rundir_path(rd, "cluster.id", path, sizeof(path));
	weir_read_small_file(path, id, sizeof(id));
	weir_rundir_path(rd, "jobmanager.pid", path, sizeof(path));
	pid_t jm = weir_read_small_file(path, buf, sizeof(buf)) == 0 ? (pid_t)atoi(buf) : 0;
	pid_t tms[256];
	int ntm = 0;
	struct weir_ctl_client *c;
	if (jm > 0 && alive(jm) && weir_ctl_client_open(&c, rd, "weir cluster stop") == 0) {
		weir_msg *r;
		if (status_call(c, -1, &r) == 0) {
			for (size_t i = 0; i < r->cluster_status->n_taskmanagers && ntm < 256; i++)
				tms[ntm++] = (pid_t)r->cluster_status->taskmanagers[i]->pid;
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
		printf("cluster %s stopped: the jobmanager and %d taskmanagers\n", id, ntm);
	} else {
		printf("no cluster running in %s\n", rd->dir);
	}
	/* what crashed processes may have left */
	char prefix[96];
	snprintf(prefix, sizeof(prefix), "weir-%s-", id[0] ? id : "c");
	int swept = weir_shm_sweep(prefix);
	if (swept > 0)
		printf("removed %d stale shared-memory files\n", swept);
	weir_rundir_path(rd, "jobmanager.addr", path, sizeof(path));
	unlink(path);
	weir_rundir_path(rd, "jobmanager.pid", path, sizeof(path));
	unlink(path);
	return 0;
}

static const char cluster_usage[] =
	"usage: weir cluster start [--taskmanagers N] [--slots S] [--port P] [--run-dir D] [--log-level L]\n"
	"       weir cluster status [--wait N] [--run-dir D]\n"
	"       weir cluster stop [--run-dir D]\n";

int weir_cluster_main(int argc, char **argv)
{
	if (argc < 1) {
		fputs(cluster_usage, stderr);
		return EXIT_USAGE;
	}
	const char *cmd = argv[0], *run_dir = NULL, *level = "info";
	int numa_nodes = numa_available() >= 0 ? numa_num_configured_nodes() : 1;
	int cpus[1024];
	int ncpu = weir_cpu_allowed(cpus, 1024);
	long ntm = numa_nodes > 0 ? numa_nodes : 1, slots = 0, port = 0, wait = -1;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		char *end = NULL;
		long *num = !strcmp(a, "--taskmanagers") ? &ntm : !strcmp(a, "--slots") ? &slots
			  : !strcmp(a, "--port") ? &port : !strcmp(a, "--wait") ? &wait : NULL;
		if (num) {
			if (!v || (*num = strtol(v, &end, 10), *end) || *num < 0) {
				fprintf(stderr, "weir cluster %s: %s: '%s' is not a number\n%s", cmd, a, v ? v : "",
					cluster_usage);
				return EXIT_USAGE;
			}
			i++;
		} else if (!strcmp(a, "--run-dir") && v) {
			run_dir = argv[++i];
		} else if (!strcmp(a, "--log-level") && v) {
			level = argv[++i];
		} else {
			fprintf(stderr, "weir cluster %s: unknown option '%s'\n%s", cmd, a, cluster_usage);
			return EXIT_USAGE;
		}
	}
	if (ntm < 1 || ntm > 64 || port > 65535 || slots > 1024) {
		fprintf(stderr, "weir cluster %s: --taskmanagers must be 1..64, --slots 0..1024, --port 0..65535\n", cmd);
		return EXIT_USAGE;
	}
	if (!slots)
		slots = ncpu / ntm > 0 ? ncpu / ntm : 1;
	struct weir_rundir rd;
	weir_rundir_init(&rd, run_dir);
	if (!strcmp(cmd, "start"))
		return cmd_start(&rd, (int)ntm, (int)slots, port, level);
	if (!strcmp(cmd, "status"))
		return cmd_status(&rd, (int)wait);
	if (!strcmp(cmd, "stop"))
		return cmd_stop(&rd);
	fprintf(stderr, "weir cluster: unknown command '%s'\n%s", cmd, cluster_usage);
	return EXIT_USAGE;
}
