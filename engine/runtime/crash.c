/*
 * engine/runtime/crash.c - a job's code that crashes, calls exit() or does
 * not stop: the process says which operator did it (see run.h,
 * weir_guard_start).
 *
 * A worker thread marks what it runs: weir_cur_st (thread-local, the
 * subtask it steps) and that subtask's cur_op (the operator whose code
 * runs, engine/operators/chain.c), a plain store per step and per
 * operator call. The handlers here read them on the thread that crashed or
 * called exit(); the watchdog (run.c) reads cur_op from its own thread.
 *
 * The signal handler may use only async-signal-safe calls: it formats the
 * line itself into a stack buffer (no stdio, no malloc, no locale), writes
 * it with write(2) to stderr and, for the JobManager, into the note file
 * (open, write, close), restores the default action and raises the signal
 * again, so the process still dies of it (status 128 + N to a shell, "killed
 * by signal N" to the supervisor). It runs on an alternate stack where the
 * thread has one (worker threads get one at their first step: a stack
 * overflow in a user function is a SIGSEGV too). Under AddressSanitizer the
 * handler replaces ASan's (allow_user_segv_handler is on by default), so a
 * crash in a job prints our line instead of ASan's report; ASan's alternate
 * stack is kept (it unmaps whatever stack a thread has when the thread
 * ends, so a thread that has one gets none of ours).
 */
#include "runtime/run.h"
#include "runtime/internal.h"
#include "base/err.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define ALT_STACK (64 * 1024)

static char head[256];		/* what starts a line on stderr */
static bool log_line;		/* head is a daemon's role: the line is a log line */
static char note[PATH_MAX];	/* the note file, or "" */
static volatile sig_atomic_t guarded;	/* exit() now is the job's code ending the process */
static int crashing;		/* atomic: the first crash writes its line, the others only die */

static __thread bool alt_done __attribute__((tls_model("initial-exec")));
static __thread char alt_stack[ALT_STACK] __attribute__((tls_model("initial-exec"), aligned(64)));

/* A line being built, async-signal-safe. */
struct line {
	char b[1200];
	size_t n;
};

static void put(struct line *l, const char *s)
{
	while (*s && l->n < sizeof(l->b) - 2)
		l->b[l->n++] = *s++;
}

/* A name from a job: printable characters only, at most 200 of them. */
static void put_name(struct line *l, const char *s)
{
	for (int i = 0; s && s[i] && i < 200 && l->n < sizeof(l->b) - 2; i++)
		l->b[l->n++] = (unsigned char)s[i] >= 0x20 && s[i] != 0x7f ? s[i] : '?';
}

static void put_num(struct line *l, long long v, int width)
{
	char d[24];
	int k = 0;
	unsigned long long u = v < 0 ? 0ull - (unsigned long long)v : (unsigned long long)v;
	do
		d[k++] = (char)('0' + u % 10);
	while ((u /= 10) && k < 22);
	while (k < width && k < 22)
		d[k++] = '0';
	if (v < 0)
		d[k++] = '-';
	while (k > 0 && l->n < sizeof(l->b) - 2)
		l->b[l->n++] = d[--k];
}

/* The time stamp of base/log.c's lines (UTC, milliseconds), without gmtime_r. */
static void put_time(struct line *l)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	long long days = ts.tv_sec / 86400, secs = ts.tv_sec % 86400;
	/* civil from days (H. Hinnant's algorithm) */
	long long z = days + 719468, era = z / 146097, doe = z - era * 146097;
	long long yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	long long doy = doe - (365 * yoe + yoe / 4 - yoe / 100), mp = (5 * doy + 2) / 153;
	long long d = doy - (153 * mp + 2) / 5 + 1, m = mp < 10 ? mp + 3 : mp - 9, y = yoe + era * 400 + (m <= 2);
	put_num(l, y, 4), put(l, "-"), put_num(l, m, 2), put(l, "-"), put_num(l, d, 2), put(l, "T");
	put_num(l, secs / 3600, 2), put(l, ":"), put_num(l, secs / 60 % 60, 2), put(l, ":"), put_num(l, secs % 60, 2);
	put(l, "."), put_num(l, ts.tv_nsec / 1000000, 3), put(l, "Z ERROR ");
}

static const char *sig_name(int sig)
{
	switch (sig) {
	case SIGSEGV: return "SIGSEGV";
	case SIGBUS: return "SIGBUS";
	case SIGILL: return "SIGILL";
	case SIGFPE: return "SIGFPE";
	case SIGABRT: return "SIGABRT";
	default: return "?";
	}
}

/* "operator 'NAME' (subtask i/P)" of a subtask's mark. */
static void put_op(struct line *l, struct subtask *st)
{
	struct opinst *op = __atomic_load_n(&st->cur_op, __ATOMIC_RELAXED);
	if (!op)
		op = st->ops;
	put(l, "operator '");
	put_name(l, op && op->node ? op->node->name : "?");
	put(l, "' (subtask ");
	put_num(l, st->index + 1, 0);
	put(l, "/");
	put_num(l, st->v ? st->v->parallelism : 0, 0);
	put(l, ")");
}

/* Where this thread is: " in operator 'NAME' (subtask i/P)", or outside. */
static void put_where(struct line *l)
{
	struct subtask *st = weir_cur_st;
	if (!st) {
		put(l, " outside any operator");
		return;
	}
	put(l, " in ");
	put_op(l, st);
}

/* Write the message msg[off..] to stderr (after the head) and, with its
 * pid, into the note file. Async-signal-safe. */
static void tell(struct line *msg)
{
	struct line out = { .n = 0 };
	if (log_line)
		put_time(&out);
	put(&out, head);
	if (log_line)
		put(&out, ": ");
	msg->b[msg->n] = '\0';
	put(&out, msg->b);
	out.b[out.n++] = '\n';
	ssize_t w = write(2, out.b, out.n);
	(void)w;
	if (note[0]) {
		int fd = open(note, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
		if (fd >= 0) {
			struct line n = { .n = 0 };
			put_num(&n, (long long)getpid(), 0);
			put(&n, " ");
			put(&n, msg->b);
			n.b[n.n++] = '\n';
			w = write(fd, n.b, n.n);
			close(fd);
		}
	}
}

static void on_crash(int sig)
{
	int saved = errno;
	if (!__atomic_exchange_n(&crashing, 1, __ATOMIC_ACQ_REL)) {
		struct line l = { .n = 0 };
		put(&l, "killed by signal ");
		put_num(&l, sig, 0);
		put(&l, " (");
		put(&l, sig_name(sig));
		put(&l, ")");
		put_where(&l);
		tell(&l);
	}
	struct sigaction dfl;
	memset(&dfl, 0, sizeof(dfl));
	dfl.sa_handler = SIG_DFL;
	sigemptyset(&dfl.sa_mask);
	sigaction(sig, &dfl, NULL);
	/* blocked until we return; a fault would come again by itself anyway */
	raise(sig);
	errno = saved;
}

static void on_exit_called(int status, void *arg)
{
	(void)arg;
	if (!guarded)
		return;
	struct line l = { .n = 0 };
	put(&l, "the job's code called exit(");
	put_num(&l, status, 0);
	put(&l, ")");
	put_where(&l);
	put(&l, " before the job ended: the process ends with status ");
	put_num(&l, WEIR_EXIT_EXIT, 0);
	tell(&l);
	_exit(WEIR_EXIT_EXIT);
}

int weir_guard_start(const char *who, bool as_log_line, const char *note_path)
{
	static bool installed;
	snprintf(head, sizeof(head), "%s", who);
	log_line = as_log_line;
	/* an earlier process's note stays: its reader may not have read it
	 * yet, and the pid in it tells it from ours */
	snprintf(note, sizeof(note), "%s", note_path ? note_path : "");
	guarded = 1;
	if (installed)
		return 0;
	installed = true;
	if (on_exit(on_exit_called, NULL) != 0)
		return weir_err_set("on_exit: cannot register the exit handler");
	static const int sigs[] = { SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT };
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_crash;
	sa.sa_flags = SA_ONSTACK;
	sigemptyset(&sa.sa_mask);
	for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
		if (sigaction(sigs[i], &sa, NULL) < 0)
			return weir_err_errno(errno, "sigaction %s", sig_name(sigs[i]));
	weir_crash_thread_init();
	return 0;
}

void weir_guard_end(void)
{
	guarded = 0;
}

void weir_crash_thread_init(void)
{
	if (__builtin_expect(alt_done, 1))
		return;
	alt_done = true;
	stack_t old;
	if (sigaltstack(NULL, &old) == 0 && !(old.ss_flags & SS_DISABLE))
		return; /* one of its own (ASan's): keep it */
	stack_t ss = { .ss_sp = alt_stack, .ss_size = sizeof(alt_stack), .ss_flags = 0 };
	sigaltstack(&ss, NULL);
}

void weir_crash_note(const char *text)
{
	struct line l = { .n = 0 };
	put(&l, text);
	tell(&l);
}

void weir_crash_describe(struct subtask *st, char *buf, size_t n)
{
	struct line l = { .n = 0 };
	put_op(&l, st);
	l.b[l.n] = '\0';
	snprintf(buf, n, "%s", l.b);
}
