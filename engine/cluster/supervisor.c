/*
 * engine/cluster/supervisor.c - starting the local cluster's daemons and keeping
 * its TaskManagers alive (see supervisor.h).
 */
#include "cluster/supervisor.h"
#include "base/err.h"
#include "base/clock.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* Start `weir ARGS` as a daemon logging to logpath; wait until it writes
 * its ready byte. Returns the pid, or -1 with the trail set. */
pid_t weir_spawn(char *const args[], const char *logpath, int timeout_ms)
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
		char *argv[64];
		int k = 0;
		argv[k++] = self;
		for (int i = 0; args[i] && k < 62; i++)
			argv[k++] = args[i];
		argv[k] = NULL;
		execv(self, argv);
		_exit(127);
	}
	close(fds[1]);
	struct pollfd p = { .fd = fds[0], .events = POLLIN };
	char b = 0;
	uint64_t end = weir_now_ns() + (uint64_t)timeout_ms * 1000000u;
	int r;
	while ((r = poll(&p, 1, timeout_ms)) < 0 && errno == EINTR) { /* a signal is not an answer */
		uint64_t now = weir_now_ns();
		timeout_ms = now < end ? (int)((end - now) / 1000000u) : 0;
	}
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

void weir_tm_note_path(const char *run_dir, int id, char *out, size_t n)
{
	snprintf(out, n, "%s/taskmanager-%d.crash", run_dir, id);
}

int weir_tm_note_read(const char *run_dir, int id, pid_t pid, char *out, size_t n)
{
	char path[PATH_MAX], buf[2048];
	weir_tm_note_path(run_dir, id, path, sizeof(path));
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return 0;
	ssize_t got = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (got <= 0)
		return 0;
	buf[got] = '\0';
	char *nl = strchr(buf, '\n'), *end;
	if (nl)
		*nl = '\0';
	long p = strtol(buf, &end, 10);
	if (end == buf || *end != ' ' || p != (long)pid)
		return 0;
	snprintf(out, n, "%s", end + 1);
	return 1;
}

#define SUP_MAX 256

/* The last line that a process wrote to its log after offset `from` (where
 * the log ended when it started: a run folder's logs grow across starts),
 * for a start's failure message; "(nothing in its log)" when it wrote none. */
static const char *last_line_since(const char *path, off_t from, char *buf, size_t n)
{
	snprintf(buf, n, "(nothing in its log)");
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return buf;
	char tail[4096];
	off_t end = lseek(fd, 0, SEEK_END), at = end - (off_t)sizeof(tail) + 1;
	if (at < from)
		at = from;
	ssize_t got = at < end ? pread(fd, tail, (size_t)(end - at), at) : 0;
	close(fd);
	if (got <= 0)
		return buf;
	tail[got] = '\0';
	while (got > 0 && tail[got - 1] == '\n')
		tail[--got] = '\0';
	if (got == 0)
		return buf;
	char *nl = strrchr(tail, '\n');
	snprintf(buf, n, "%s", nl ? nl + 1 : tail);
	return buf;
}

static volatile sig_atomic_t sup_stop;
static void on_term(int sig)
{
	(void)sig;
	sup_stop = 1;
}

static void sup_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void sup_log(const char *fmt, ...)
{
	char when[32];
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	struct tm tmv;
	gmtime_r(&ts.tv_sec, &tmv);
	strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tmv);
	fprintf(stderr, "%s.%03ldZ supervisor: ", when, ts.tv_nsec / 1000000);
	va_list ap;
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

/* A pidfd for TaskManager i, or -2 when the kernel gives none (it is
 * then left unsupervised, said in the log: never a respawn loop). */
static int watch(int i, pid_t pid)
{
	int fd = (int)syscall(SYS_pidfd_open, pid, 0);
	if (fd >= 0)
		return fd;
	sup_log("taskmanager %d (pid %d): pidfd_open: %s; not supervised", i, (int)pid, strerror(errno));
	return -2;
}

/* A signal's name, for the log ("SIGSEGV"), or "" */
static const char *sig_name(int sig)
{
	static const struct {
		int sig;
		const char *name;
	} names[] = { { SIGHUP, "SIGHUP" }, { SIGINT, "SIGINT" }, { SIGQUIT, "SIGQUIT" }, { SIGILL, "SIGILL" },
		      { SIGTRAP, "SIGTRAP" }, { SIGABRT, "SIGABRT" }, { SIGBUS, "SIGBUS" }, { SIGFPE, "SIGFPE" },
		      { SIGKILL, "SIGKILL" }, { SIGUSR1, "SIGUSR1" }, { SIGSEGV, "SIGSEGV" }, { SIGUSR2, "SIGUSR2" },
		      { SIGPIPE, "SIGPIPE" }, { SIGALRM, "SIGALRM" }, { SIGTERM, "SIGTERM" }, { SIGXCPU, "SIGXCPU" },
		      { SIGXFSZ, "SIGXFSZ" }, { SIGSYS, "SIGSYS" } };
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (names[i].sig == sig)
			return names[i].name;
	return "";
}

/* The supervisor's life after the first start: restart what dies. */
static void supervise(const char *run_dir, pid_t jm, int ntm, char **const *args, char *const *logs, pid_t *pids)
{
	int jmfd = (int)syscall(SYS_pidfd_open, jm, 0);
	int fds[SUP_MAX];
	uint64_t started[SUP_MAX], due[SUP_MAX], backoff[SUP_MAX];
	for (int i = 0; i < ntm; i++) {
		fds[i] = watch(i, pids[i]);
		started[i] = weir_now_ns();
		due[i] = backoff[i] = 0;
	}
	unsigned restarts = 0;
	while (!sup_stop && jmfd >= 0) {
		struct pollfd p[SUP_MAX + 1];
		p[0] = (struct pollfd){ .fd = jmfd, .events = POLLIN };
		uint64_t now = weir_now_ns(), next = UINT64_MAX;
		for (int i = 0; i < ntm; i++) {
			p[i + 1] = (struct pollfd){ .fd = fds[i], .events = POLLIN };
			if (fds[i] == -1 && due[i] < next)
				next = due[i];
		}
		int timeout = next == UINT64_MAX ? -1 : next <= now ? 0 : (int)((next - now) / 1000000u) + 1;
		int r = poll(p, (nfds_t)ntm + 1, timeout);
		if (r < 0 && errno != EINTR)
			break;
		if (sup_stop || (p[0].revents & POLLIN))
			break; /* stopping, or the JobManager is gone: TaskManagers follow it */
		now = weir_now_ns();
		for (int i = 0; i < ntm; i++) {
			if (fds[i] >= 0 && (p[i + 1].revents & POLLIN)) {
				int st = 0;
				waitpid(pids[i], &st, 0);
				close(fds[i]);
				fds[i] = -1;
				/* one that dies young waits before the next try, 100 ms
				 * doubling up to 5 s: a TaskManager that cannot start
				 * never spins */
				bool young = now - started[i] < 1000000000ull;
				backoff[i] = !young ? 0 : backoff[i] ? (backoff[i] * 2 > 5000 ? 5000 : backoff[i] * 2) : 100;
				due[i] = now + backoff[i] * 1000000ull;
				char note[1024];
				if (weir_tm_note_read(run_dir, i, pids[i], note, sizeof(note)))
					sup_log("taskmanager %d (pid %d): %s", i, (int)pids[i], note);
				if (WIFSIGNALED(st))
					sup_log("taskmanager %d (pid %d) killed by signal %d (%s); starting it again in %llu ms", i,
						(int)pids[i], WTERMSIG(st), sig_name(WTERMSIG(st)), (unsigned long long)backoff[i]);
				else
					sup_log("taskmanager %d (pid %d) exited with status %d; starting it again in %llu ms", i,
						(int)pids[i], WEXITSTATUS(st), (unsigned long long)backoff[i]);
			}
			if (fds[i] == -1 && now >= due[i] && !sup_stop) {
				pid_t pid = weir_spawn(args[i], logs[i], 10000);
				started[i] = weir_now_ns();
				if (pid < 0) {
					backoff[i] = backoff[i] ? (backoff[i] * 2 > 5000 ? 5000 : backoff[i] * 2) : 100;
					sup_log("taskmanager %d: %s; trying again in %llu ms", i, weir_err_msg(),
						(unsigned long long)backoff[i]);
					due[i] = started[i] + backoff[i] * 1000000ull;
					continue;
				}
				pids[i] = pid;
				fds[i] = watch(i, pid);
				sup_log("taskmanager %d started again (pid %d, restart %u)", i, (int)pid, ++restarts);
			}
		}
	}
	sup_log("%s", sup_stop ? "stopped" : "the jobmanager is gone: done");
}

int weir_supervisor_start(const char *run_dir, pid_t jm, int ntm, char **const *args, char *const *logs, pid_t *pids,
			  pid_t *sup)
{
	if (ntm > SUP_MAX)
		return weir_err_set("at most %d taskmanagers", SUP_MAX);
	int fds[2];
	if (pipe2(fds, O_CLOEXEC) < 0)
		return weir_err_errno(errno, "pipe");
	char path[PATH_MAX + 32];
	pid_t pid = fork();
	if (pid < 0)
		return weir_err_errno(errno, "fork");
	if (pid == 0) {
		close(fds[0]);
		setsid();
		snprintf(path, sizeof(path), "%s/supervisor.log", run_dir);
		int log = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
		int null = open("/dev/null", O_RDWR | O_CLOEXEC);
		if (log < 0 || null < 0)
			_exit(127);
		dup2(null, 0);
		dup2(log, 1);
		dup2(log, 2);
		struct sigaction sa = { .sa_handler = on_term };
		sigemptyset(&sa.sa_mask);
		sigaction(SIGTERM, &sa, NULL);
		sigaction(SIGINT, &sa, NULL);
		/* report: "<pid> ..." once all are ready, or "!<why>" */
		char msg[2048];
		size_t l = 0;
		for (int i = 0; i < ntm; i++) {
			struct stat lst;
			off_t logged = stat(logs[i], &lst) == 0 ? lst.st_size : 0;
			pids[i] = weir_spawn(args[i], logs[i], 10000);
			if (pids[i] < 0) {
				char why[1024];
				snprintf(msg, sizeof(msg), "!%s\n  %s", weir_err_msg(), last_line_since(logs[i], logged, why,
												 sizeof(why)));
				if (write(fds[1], msg, strlen(msg)) < 0)
					_exit(1);
				_exit(1);
			}
			l += (size_t)snprintf(msg + l, sizeof(msg) - l, "%d ", (int)pids[i]);
		}
		if (write(fds[1], msg, l) != (ssize_t)l)
			_exit(1);
		close(fds[1]);
		unsetenv("WEIR_FAILPOINT"); /* a crash test crashes the first incarnation only */
		sup_log("supervising %d taskmanagers of jobmanager pid %d", ntm, (int)jm);
		supervise(run_dir, jm, ntm, args, logs, pids);
		_exit(0); /* no atexit work: this is a fork of the client */
	}
	close(fds[1]);
	char buf[2048];
	size_t got = 0;
	for (;;) { /* until the child closes its end (or exits) */
		ssize_t n = read(fds[0], buf + got, sizeof(buf) - 1 - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	close(fds[0]);
	buf[got] = '\0';
	if (got == 0 || buf[0] == '!') {
		waitpid(pid, NULL, 0);
		return weir_err_set("%s", got ? buf + 1 : "the supervisor died");
	}
	char *s = buf;
	for (int i = 0; i < ntm; i++)
		pids[i] = (pid_t)strtol(s, &s, 10);
	snprintf(path, sizeof(path), "%s/supervisor.pid", run_dir);
	FILE *f = fopen(path, "w");
	if (f) {
		fprintf(f, "%d", (int)pid);
		fclose(f);
	}
	*sup = pid;
	return 0;
}
