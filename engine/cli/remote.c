/*
 * engine/cli/remote.c - launchers, and `weir cluster join|leave`: see
 * remote.h.
 *
 * join   (run on a TaskManager's host by the launcher) reads the cluster
 *        secret on stdin, writes it to a 0600 file in its run folder
 *        (0700, checked as every run folder is), starts `weir taskmanager
 *        --jobmanager ...` there as a daemon (its own session, stdin from
 *        /dev/null, stdout and stderr to taskmanager.log: it outlives the
 *        launcher and its connection), waits until it has registered with
 *        the JobManager, then removes the secret file (the TaskManager
 *        keeps the key in memory), writes taskmanager.pid and prints the
 *        pid. On failure it says why, quoting the TaskManager's log.
 * leave  (run there by `weir cluster stop`) waits for the TaskManager of
 *        that run folder to exit, as it does when the JobManager tells it
 *        to stop; one still running after the grace time (cut off from the
 *        JobManager, which it would seek forever) gets SIGTERM, then
 *        SIGKILL, and is named.
 */
#include "cli/remote.h"
#include "cli/cli.h"
#include "cluster/ctlio.h"
#include "cluster/daemons.h"
#include "cluster/supervisor.h"
#include "base/clock.h"
#include "base/err.h"
#include "base/num.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define EXIT_FAIL 1
#define EXIT_USAGE 2
#define MAX_WORDS 64

int weir_shell_word(char *buf, size_t n, size_t *len, const char *s)
{
	size_t l = *len;
	if (l + 1 >= n)
		return -1;
	buf[l++] = '\'';
	for (; *s; s++) {
		const char *piece = *s == '\'' ? "'\\''" : NULL;
		size_t k = piece ? 4 : 1;
		if (l + k + 1 >= n)
			return -1;
		if (piece)
			memcpy(buf + l, piece, k);
		else
			buf[l] = *s;
		l += k;
	}
	if (l + 2 >= n)
		return -1;
	buf[l++] = '\'';
	buf[l] = '\0';
	*len = l;
	return 0;
}

/* ---- launchers ---- */

static void close_fd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

int weir_launch_start(struct weir_launch *l, const char *launcher, const char *host, const char *cmdline,
		      const char *input)
{
	memset(l, 0, sizeof(*l));
	l->pidfd = l->out = l->err = -1;
	/* the words, split before the fork */
	char copy[1024];
	char *argv[MAX_WORDS + 3];
	int k = 0;
	snprintf(copy, sizeof(copy), "%s", launcher);
	for (char *save = NULL, *w = strtok_r(copy, " \t", &save); w && k < MAX_WORDS; w = strtok_r(NULL, " \t", &save))
		argv[k++] = w;
	if (k == 0) {
		snprintf(l->why, sizeof(l->why), "the launcher is empty");
		l->done = true;
		return -1;
	}
	argv[k++] = (char *)host;
	argv[k++] = (char *)cmdline;
	argv[k] = NULL;
	int in[2] = { -1, -1 }, out[2] = { -1, -1 }, err[2] = { -1, -1 };
	if (pipe2(in, O_CLOEXEC) < 0 || pipe2(out, O_CLOEXEC) < 0 || pipe2(err, O_CLOEXEC) < 0) {
		snprintf(l->why, sizeof(l->why), "pipe: %s", strerror(errno));
		goto fail;
	}
	pid_t pid = fork();
	if (pid < 0) {
		snprintf(l->why, sizeof(l->why), "fork: %s", strerror(errno));
		goto fail;
	}
	if (pid == 0) {
		setpgid(0, 0); /* a group of its own: killed whole when it outlives its time */
		signal(SIGPIPE, SIG_DFL);
		dup2(in[0], 0);
		dup2(out[1], 1);
		dup2(err[1], 2);
		execvp(argv[0], argv);
		dprintf(2, "cannot run '%s': %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	setpgid(pid, pid); /* also here: no race with a kill at the deadline */
	l->pid = pid;
	close(in[0]);
	close(out[1]);
	close(err[1]);
	if (input) { /* at most a few hundred bytes: a pipe holds them */
		struct sigaction ign = { .sa_handler = SIG_IGN }, old;
		sigemptyset(&ign.sa_mask);
		sigaction(SIGPIPE, &ign, &old);
		if (write(in[1], input, strlen(input)) < 0) {
			/* the launcher is gone already: its status says why */
		}
		sigaction(SIGPIPE, &old, NULL);
	}
	close(in[1]);
	l->out = out[0];
	l->err = err[0];
	fcntl(l->out, F_SETFL, O_NONBLOCK);
	fcntl(l->err, F_SETFL, O_NONBLOCK);
	l->pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
	if (l->pidfd < 0) { /* no pidfds: wait for it here */
		waitpid(pid, &l->status, 0);
		l->done = true;
		close_fd(&l->out);
		close_fd(&l->err);
	}
	return 0;
fail:
	for (int i = 0; i < 2; i++) {
		close_fd(&in[i]);
		close_fd(&out[i]);
		close_fd(&err[i]);
	}
	l->done = true;
	return -1;
}

/* Read what is there on l's pipe fd into its buffer; close it at EOF. */
static void drain(struct weir_launch *l, int *fd)
{
	bool is_err = fd == &l->err;
	char *buf = is_err ? l->errbuf : l->outbuf;
	size_t cap = (is_err ? sizeof(l->errbuf) : sizeof(l->outbuf)) - 1, *len = is_err ? &l->errn : &l->outn;
	for (;;) {
		char tmp[4096];
		ssize_t r = read(*fd, tmp, sizeof(tmp));
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0 && errno == EAGAIN)
			return;
		if (r <= 0) {
			close_fd(fd);
			return;
		}
		size_t take = (size_t)r < cap - *len ? (size_t)r : cap - *len;
		memcpy(buf + *len, tmp, take);
		*len += take;
		buf[*len] = '\0';
		if (take < (size_t)r && is_err)
			l->err_cut = true;
	}
}

/* l's process has ended (or was killed): reap it, take what its pipes
 * still hold (a child it left may keep them open: not waited for). */
static void finish(struct weir_launch *l)
{
	waitpid(l->pid, &l->status, 0);
	if (l->out >= 0)
		drain(l, &l->out);
	if (l->err >= 0)
		drain(l, &l->err);
	close_fd(&l->out);
	close_fd(&l->err);
	close_fd(&l->pidfd);
	l->done = true;
}

void weir_launch_wait(struct weir_launch *l, int n, int timeout_ms)
{
	uint64_t end = weir_now_ns() + (uint64_t)timeout_ms * 1000000u;
	struct pollfd *p = calloc((size_t)n * 3 + 1, sizeof(*p));
	int *who = calloc((size_t)n * 3 + 1, sizeof(*who));
	while (p && who) {
		int k = 0;
		for (int i = 0; i < n; i++) {
			if (l[i].done)
				continue;
			int fds[3] = { l[i].pidfd, l[i].out, l[i].err };
			for (int j = 0; j < 3; j++)
				if (fds[j] >= 0) {
					p[k] = (struct pollfd){ .fd = fds[j], .events = POLLIN };
					who[k++] = i;
				}
		}
		if (k == 0)
			break;
		uint64_t now = weir_now_ns();
		if (now >= end)
			break;
		int r = poll(p, (nfds_t)k, (int)((end - now) / 1000000u) + 1);
		if (r < 0 && errno != EINTR)
			break;
		for (int j = 0; r > 0 && j < k; j++) {
			struct weir_launch *x = &l[who[j]];
			if (!p[j].revents || x->done)
				continue;
			if (p[j].fd == x->out)
				drain(x, &x->out);
			else if (p[j].fd == x->err)
				drain(x, &x->err);
			else if (p[j].fd == x->pidfd)
				finish(x);
		}
	}
	free(p);
	free(who);
	for (int i = 0; i < n; i++) /* out of time (or memory): killed, with what it may run */
		if (!l[i].done && l[i].pid > 0) {
			kill(-l[i].pid, SIGKILL);
			l[i].timed_out = true;
			finish(&l[i]);
		}
}

const char *weir_launch_failed(const struct weir_launch *l, const char *launcher, int timeout_ms, char *buf,
			       size_t n)
{
	char name[128];
	snprintf(name, sizeof(name), "%s", launcher);
	name[strcspn(name, " \t")] = '\0';
	if (l->pid == 0)
		snprintf(buf, n, "the launcher '%s' could not be started: %s", name, l->why);
	else if (l->timed_out)
		snprintf(buf, n, "the launcher '%s' did not finish within %d ms: killed, with its process group",
			 name, timeout_ms);
	else if (WIFSIGNALED(l->status))
		snprintf(buf, n, "the launcher '%s' was killed by signal %d", name, WTERMSIG(l->status));
	else if (WEXITSTATUS(l->status) != 0)
		snprintf(buf, n, "the launcher '%s' exited with status %d", name, WEXITSTATUS(l->status));
	else
		return NULL;
	return buf;
}

void weir_launch_print_stderr(const struct weir_launch *l, FILE *f, const char *indent)
{
	const char *s = l->errbuf;
	while (*s) {
		size_t len = strcspn(s, "\n");
		if (len)
			fprintf(f, "%s%.*s\n", indent, (int)len, s);
		s += len;
		if (*s)
			s++;
	}
	if (l->err_cut)
		fprintf(f, "%s(more cut)\n", indent);
}

/* ---- the commands run on the other host ---- */

const char weir_cluster_join_usage[] =
	"usage: weir cluster join --run-dir D [--timeout MS] -- TASKMANAGER-OPTIONS...   (the secret on stdin)\n";
const char weir_cluster_leave_usage[] = "usage: weir cluster leave --run-dir D [--timeout MS]\n";

/* Is pid a live process of this very program? */
static bool live_weir(pid_t pid)
{
	if (pid < 2 || kill(pid, 0) < 0)
		return false;
	char a[PATH_MAX], b[PATH_MAX], p[64];
	snprintf(p, sizeof(p), "/proc/%d/exe", (int)pid);
	ssize_t x = readlink(p, a, sizeof(a) - 1), y = readlink("/proc/self/exe", b, sizeof(b) - 1);
	if (x < 0 || y < 0)
		return false;
	a[x] = b[y] = '\0';
	return !strcmp(a, b);
}

/* Wait up to timeout_ms for pid to exit. */
static bool gone_within(pid_t pid, int timeout_ms)
{
	int fd = (int)syscall(SYS_pidfd_open, pid, 0);
	if (fd < 0)
		return errno == ESRCH;
	struct pollfd p = { .fd = fd, .events = POLLIN };
	int r;
	while ((r = poll(&p, 1, timeout_ms)) < 0 && errno == EINTR) {
	}
	close(fd);
	return r == 1;
}

/* The pid in the run folder's taskmanager.pid, or 0. */
static pid_t pid_file(const struct weir_rundir *rd)
{
	char path[PATH_MAX], buf[32];
	weir_rundir_path(rd, "taskmanager.pid", path, sizeof(path));
	long long v;
	if (weir_read_small_file(path, buf, sizeof(buf)) < 0 || weir_parse_num(buf, 2, INT_MAX, false, &v) < 0) {
		weir_err_clear();
		return 0;
	}
	return (pid_t)v;
}

/* The common flags: --run-dir D (required) and --timeout MS; *rest: the
 * index after `--` (join), or argc. -1 to go on, else the exit status. */
static int remote_flags(const char *name, const char *usage, bool dashdash, int argc, char **argv,
			const char **run_dir, long long *timeout, int *rest)
{
	*rest = argc;
	for (int i = 0; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (weir_help_flag(a)) {
			fputs(usage, stdout);
			return 0;
		} else if (!strcmp(a, "--") && dashdash) {
			*rest = i + 1;
			break;
		} else if (!strcmp(a, "--run-dir") && v) {
			*run_dir = argv[++i];
		} else if (!strcmp(a, "--timeout") && v) {
			if (weir_parse_num(argv[++i], 1000, 600000, false, timeout) < 0) {
				fprintf(stderr, "weir cluster %s: --timeout: %s\n%s", name, weir_err_msg(), usage);
				return EXIT_USAGE;
			}
		} else {
			fprintf(stderr, "weir cluster %s: %s '%s'\n%s", name, a[0] == '-' ? "unknown or incomplete option"
				: "unexpected argument", a, usage);
			return EXIT_USAGE;
		}
	}
	if (!*run_dir || !**run_dir) {
		fprintf(stderr, "weir cluster %s: --run-dir D is required (a folder of its own)\n%s", name, usage);
		return EXIT_USAGE;
	}
	return -1;
}

/* The secret on stdin: 64 hex digits and an optional newline, into hex. */
static int read_secret(char hex[65])
{
	char buf[256];
	size_t got = 0;
	for (;;) {
		ssize_t r = read(0, buf + got, sizeof(buf) - 1 - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return weir_err_errno(errno, "read the cluster secret on stdin");
		if (r == 0 || (got += (size_t)r) == sizeof(buf) - 1)
			break;
	}
	while (got > 0 && (buf[got - 1] == '\n' || buf[got - 1] == '\r'))
		got--;
	bool ok = got == 64;
	for (size_t i = 0; ok && i < got; i++)
		ok = strchr("0123456789abcdefABCDEF", buf[i]) != NULL;
	if (!ok)
		return weir_err_set("no cluster secret on stdin (64 hex digits expected: the launcher must pass stdin "
				    "on, as ssh does)");
	memcpy(hex, buf, 64);
	hex[64] = '\0';
	return 0;
}

/* The last line written to path after offset from ("" when none). */
static void log_since(const char *path, off_t from, char *out, size_t n)
{
	out[0] = '\0';
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	char tail[4096];
	off_t end = lseek(fd, 0, SEEK_END), at = end - (off_t)sizeof(tail) + 1;
	if (at < from)
		at = from;
	ssize_t got = at < end ? pread(fd, tail, (size_t)(end - at), at) : 0;
	close(fd);
	if (got <= 0)
		return;
	tail[got] = '\0';
	while (got > 0 && tail[got - 1] == '\n')
		tail[--got] = '\0';
	char *nl = strrchr(tail, '\n');
	snprintf(out, n, "%s", nl ? nl + 1 : tail);
}

int weir_cluster_join_main(int argc, char **argv)
{
	const char *run_dir = NULL;
	long long timeout = 30000;
	int rest;
	int rc = remote_flags("join", weir_cluster_join_usage, true, argc, argv, &run_dir, &timeout, &rest);
	if (rc >= 0)
		return rc;
	char *args[64];
	int k = 0;
	args[k++] = "taskmanager";
	for (int i = rest; i < argc; i++) {
		if (!strcmp(argv[i], "--run-dir") || !strcmp(argv[i], "--secret-file") || !strcmp(argv[i], "--ready-fd")) {
			fprintf(stderr, "weir cluster join: %s is join's to give, not an option to pass on\n%s", argv[i],
				weir_cluster_join_usage);
			return EXIT_USAGE;
		}
		if (k >= 54) {
			fprintf(stderr, "weir cluster join: too many taskmanager options\n");
			return EXIT_USAGE;
		}
		args[k++] = argv[i];
	}
	struct weir_rundir rd;
	weir_rundir_init(&rd, run_dir);
	if (weir_rundir_check(&rd, true) < 0) {
		fprintf(stderr, "weir cluster join: %s\n", weir_err_msg());
		return EXIT_FAIL;
	}
	pid_t old = pid_file(&rd);
	if (old && live_weir(old)) {
		fprintf(stderr, "weir cluster join: a taskmanager started in '%s' still runs (pid %d): stop it first "
			"(weir cluster stop, or weir cluster leave --run-dir %s on this host)\n", rd.dir, (int)old, rd.dir);
		return EXIT_FAIL;
	}
	char hex[65], secret[PATH_MAX], log[PATH_MAX], pidpath[PATH_MAX];
	if (read_secret(hex) < 0) {
		fprintf(stderr, "weir cluster join: %s\n", weir_err_msg());
		return EXIT_FAIL;
	}
	/* a file of ours alone (the folder is 0700 and checked), removed once
	 * the TaskManager has registered: by then it holds the key in memory */
	weir_rundir_path(&rd, "join.secret", secret, sizeof(secret));
	unlink(secret); /* a crashed join's */
	int fd = open(secret, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	hex[64] = '\n';
	bool wrote = fd >= 0 && write(fd, hex, 65) == 65 && fsync(fd) == 0;
	memset(hex, 0, sizeof(hex));
	if (fd >= 0)
		close(fd);
	if (!wrote) {
		fprintf(stderr, "weir cluster join: write '%s': %s\n", secret, strerror(errno));
		unlink(secret);
		return EXIT_FAIL;
	}
	args[k++] = "--run-dir";
	args[k++] = rd.dir;
	args[k++] = "--secret-file";
	args[k++] = secret;
	args[k++] = "--ready-fd";
	args[k++] = "3";
	args[k] = NULL;
	weir_rundir_path(&rd, "taskmanager.log", log, sizeof(log));
	struct stat st;
	off_t logged = stat(log, &st) == 0 ? st.st_size : 0;
	pid_t pid = weir_spawn(args, log, (int)timeout);
	unlink(secret);
	if (pid < 0) {
		char line[1024];
		log_since(log, logged, line, sizeof(line));
		fprintf(stderr, "weir cluster join: %s\n  %s\n", weir_err_msg(), line[0] ? line : "(nothing in its log)");
		return EXIT_FAIL;
	}
	char buf[32];
	snprintf(buf, sizeof(buf), "%d", (int)pid);
	weir_rundir_path(&rd, "taskmanager.pid", pidpath, sizeof(pidpath));
	if (weir_write_file_atomic(pidpath, buf) < 0)
		fprintf(stderr, "weir cluster join: %s (weir cluster leave will not find it)\n", weir_err_msg());
	printf("%d\n", (int)pid);
	return 0;
}

int weir_cluster_leave_main(int argc, char **argv)
{
	const char *run_dir = NULL;
	long long grace = 5000;
	int rest;
	int rc = remote_flags("leave", weir_cluster_leave_usage, false, argc, argv, &run_dir, &grace, &rest);
	if (rc >= 0)
		return rc;
	struct weir_rundir rd;
	weir_rundir_init(&rd, run_dir);
	int chk = weir_rundir_check(&rd, false);
	if (chk == 1)
		return 0; /* never joined here */
	if (chk < 0) {
		fprintf(stderr, "weir cluster leave: %s\n", weir_err_msg());
		return EXIT_FAIL;
	}
	char path[PATH_MAX];
	pid_t pid = pid_file(&rd);
	if (pid && live_weir(pid) && !gone_within(pid, (int)grace)) {
		/* not stopped on the JobManager's word (cut off from it, or it is
		 * gone): it would seek the JobManager forever */
		const char *how = "SIGTERM";
		kill(pid, SIGTERM);
		if (!gone_within(pid, 10000)) {
			kill(pid, SIGKILL);
			how = "SIGKILL";
			gone_within(pid, 2000);
		}
		printf("taskmanager pid %d had not stopped: stopped it (%s)\n", (int)pid, how);
	}
	weir_rundir_path(&rd, "taskmanager.pid", path, sizeof(path));
	unlink(path);
	weir_rundir_path(&rd, "join.secret", path, sizeof(path));
	unlink(path);
	return 0;
}
