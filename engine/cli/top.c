/*
 * engine/cli/top.c - what the terminal shows of a cluster's running jobs:
 * `weir top` (a live view in the manner of top) and the progress line of
 * `weir run`. Both read the JobManager's REST API over the control
 * protocol (RestRequest, authenticated with the cluster's secret: it works
 * with the HTTP server off, and wherever `weir list` works).
 */
#include "cli/cli.h"
#include "cluster/ctlio.h"
#include "cluster/daemons.h"
#include "base/err.h"
#include "base/num.h"

#include <jansson.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#define EXIT_FAIL 1
#define EXIT_USAGE 2

json_t *weir_cli_rest_get(struct weir_ctl_client *c, const char *path, int *status)
{
	Weir__Ctl__RestRequest rq = WEIR__CTL__REST_REQUEST__INIT;
	rq.method = "GET";
	rq.path = (char *)path;
	weir_msg m = WEIR__CTL__ENVELOPE__INIT, *r = NULL;
	m.body_case = WEIR__CTL__ENVELOPE__BODY_REST_REQUEST;
	m.rest_request = &rq;
	*status = 0;
	if (weir_ctl_client_call(c, &m, &r, 5000) < 0)
		return NULL;
	json_t *j = NULL;
	if (r->body_case != WEIR__CTL__ENVELOPE__BODY_REST_REPLY) {
		weir_err_set("%s", r->body_case == WEIR__CTL__ENVELOPE__BODY_ERROR ? r->error->message
								: "the jobmanager does not know RestRequest");
	} else {
		*status = (int)r->rest_reply->status;
		json_error_t e;
		if (r->rest_reply->has_body)
			j = json_loadb((const char *)r->rest_reply->body.data, r->rest_reply->body.len, 0, &e);
		if (!j)
			weir_err_set("%s: an answer that is not JSON (status %d)", path, *status);
	}
	weir_ctl_free(r);
	return j;
}

/* --- formatting --- */

static const char *human(char *b, size_t n, double x)
{
	if (x >= 1e9)
		snprintf(b, n, "%.2fG", x / 1e9);
	else if (x >= 1e6)
		snprintf(b, n, "%.2fM", x / 1e6);
	else if (x >= 1e4)
		snprintf(b, n, "%.1fk", x / 1e3);
	else
		snprintf(b, n, "%.0f", x);
	return b;
}

static const char *bytes(char *b, size_t n, double x)
{
	const char *u[] = { "B", "KiB", "MiB", "GiB", "TiB" };
	int i = 0;
	while (x >= 1024 && i < 4)
		x /= 1024, i++;
	snprintf(b, n, i ? "%.1f %s" : "%.0f %s", x, u[i]);
	return b;
}

static const char *span(char *b, size_t n, double ms)
{
	if (ms < 1000)
		snprintf(b, n, "%.0f ms", ms);
	else if (ms < 60000)
		snprintf(b, n, "%.1f s", ms / 1000);
	else if (ms < 3600000)
		snprintf(b, n, "%.0fm %02.0fs", ms / 60000 - 0.5, (double)((long)(ms / 1000) % 60));
	else
		snprintf(b, n, "%.0fh %02ldm", ms / 3600000 - 0.5, (long)(ms / 60000) % 60);
	return b;
}

static double num(const json_t *o, const char *key)
{
	const json_t *v = json_object_get(o, key);
	return json_is_number(v) ? json_number_value(v) : 0.0;
}

static double now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* "#41 12.4 KiB in 15 ms, 0.3 s ago" of a job's newest complete checkpoint */
static void last_checkpoint(struct weir_ctl_client *c, const char *jid, char *out, size_t n)
{
	char path[64], b1[32], b2[32], b3[32];
	int st;
	snprintf(path, sizeof(path), "/jobs/%s/checkpoints", jid);
	json_t *ck = weir_cli_rest_get(c, path, &st);
	const json_t *l = ck ? json_object_get(json_object_get(ck, "latest"), "completed") : NULL;
	if (json_is_object(l))
		snprintf(out, n, "#%.0f %s in %s, %s ago", num(l, "id"), bytes(b1, sizeof(b1), num(l, "state_size")),
			 span(b2, sizeof(b2), num(l, "end_to_end_duration")),
			 span(b3, sizeof(b3), now_ms() - num(l, "latest_ack_timestamp")));
	else
		snprintf(out, n, "none yet");
	json_decref(ck);
}

/* Records in and out of a job: what its source vertices (no edge into
 * them) sent and its sink vertices (no edge out) took in, with rates. */
struct io {
	double in, out, in_rate, out_rate, busy, bp;
	int nv;
};

static struct io job_io(const json_t *job)
{
	struct io io = { 0 };
	const json_t *vs = json_object_get(job, "vertices");
	const json_t *edges = json_object_get(json_object_get(job, "plan"), "edges");
	size_t i, k;
	const json_t *v, *e;
	json_array_foreach(vs, i, v) {
		const char *id = json_string_value(json_object_get(v, "id"));
		bool has_in = false, has_out = false;
		json_array_foreach(edges, k, e) {
			has_in |= id && !strcmp(id, json_string_value(json_object_get(e, "target")) ?: "");
			has_out |= id && !strcmp(id, json_string_value(json_object_get(e, "source")) ?: "");
		}
		const json_t *m = json_object_get(v, "metrics");
		if (!has_in) {
			io.in += num(m, "write-records");
			io.in_rate += num(m, "write-records-per-second");
		}
		if (!has_out) {
			io.out += num(m, "read-records");
			io.out_rate += num(m, "read-records-per-second");
		}
		io.busy += num(m, "busy-ratio");
		io.bp += num(m, "backpressured-ratio");
		io.nv++;
	}
	if (io.nv) {
		io.busy /= io.nv;
		io.bp /= io.nv;
	}
	return io;
}

/* --- weir top --- */

static volatile sig_atomic_t top_stop;
static void on_signal(int s) { (void)s; top_stop = 1; }

/* One screen (or, in batch mode, one report) into f. 0, or -1 with the
 * trail set (the JobManager is gone). */
static int draw(struct weir_ctl_client *c, FILE *f, int width)
{
	int st;
	json_t *ov = weir_cli_rest_get(c, "/overview", &st);
	json_t *jobs = ov ? weir_cli_rest_get(c, "/jobs/overview", &st) : NULL;
	if (!ov || !jobs) {
		json_decref(ov);
		return -1;
	}
	time_t t = time(NULL);
	char clock[16], b1[32], b2[32], b3[32], b4[32];
	strftime(clock, sizeof(clock), "%H:%M:%S", localtime(&t));
	fprintf(f, "weir top - cluster %s   %.0f TaskManagers   %.0f/%.0f slots free   %.0f jobs running   %s\n\n",
		json_string_value(json_object_get(ov, "cluster-id")) ?: "?", num(ov, "taskmanagers"),
		num(ov, "slots-available"), num(ov, "slots-total"), num(ov, "jobs-running"), clock);
	size_t i;
	const json_t *js;
	int shown = 0;
	json_array_foreach(json_object_get(jobs, "jobs"), i, js) {
		const char *state = json_string_value(json_object_get(js, "state")) ?: "?";
		if (!strcmp(state, "FINISHED") || !strcmp(state, "CANCELED") || !strcmp(state, "FAILED"))
			continue; /* running jobs only: `weir list` has them all */
		const char *jid = json_string_value(json_object_get(js, "jid")) ?: "?";
		char path[64], ck[128];
		snprintf(path, sizeof(path), "/jobs/%s", jid);
		json_t *job = weir_cli_rest_get(c, path, &st);
		if (!job)
			continue;
		last_checkpoint(c, jid, ck, sizeof(ck));
		fprintf(f, "JOB %-4s %-28.28s %-10s up %-10s restarts %-3.0f checkpoint %s\n", jid,
			json_string_value(json_object_get(job, "name")) ?: "?", state,
			span(b1, sizeof(b1), num(job, "duration")), num(job, "restarts"), ck);
		fprintf(f, "  %-4s %-26s %4s %10s %10s %6s %7s %6s  %s\n", "VID", "VERTEX", "PAR", "IN/S", "OUT/S", "BUSY",
			"BACKPR", "IDLE", "WATERMARK");
		size_t k;
		const json_t *v;
		json_array_foreach(json_object_get(job, "vertices"), k, v) {
			const json_t *m = json_object_get(v, "metrics");
			const json_t *wm = json_object_get(m, "current-input-watermark");
			if (json_is_null(wm) || !wm)
				wm = json_object_get(m, "current-output-watermark");
			char wms[48];
			double w = json_is_number(wm) ? json_number_value(wm) : 0;
			if (!json_is_number(wm))
				snprintf(wms, sizeof(wms), "none");
			else if (w >= 9.2e18)
				snprintf(wms, sizeof(wms), "end");
			else if (w > 1e12 && w < now_ms() + 864e5) /* event time on the wall clock: how far behind */
				snprintf(wms, sizeof(wms), "%.0f (%s behind)", w, span(b4, sizeof(b4), now_ms() - w));
			else
				snprintf(wms, sizeof(wms), "%.0f", w);
			fprintf(f, "  %-4s %-26.26s %4.0f %10s %10s %5.0f%% %6.0f%% %5.0f%%  %s\n",
				json_string_value(json_object_get(v, "id")) ?: "?",
				json_string_value(json_object_get(v, "name")) ?: "?", num(v, "parallelism"),
				human(b2, sizeof(b2), num(m, "read-records-per-second")),
				human(b3, sizeof(b3), num(m, "write-records-per-second")), 100 * num(m, "busy-ratio"),
				100 * num(m, "backpressured-ratio"), 100 * num(m, "idle-ratio"), wms);
		}
		fputc('\n', f);
		json_decref(job);
		shown++;
	}
	if (!shown)
		fprintf(f, "no job running\n\n");
	(void)width;
	json_decref(jobs);
	json_decref(ov);
	return 0;
}

const char weir_top_usage[] = "usage: weir top [--run-dir D] [--interval MS] [-n COUNT]\n";

int weir_top_main(int argc, char **argv)
{
	const char *run_dir = NULL;
	long long interval = 1000, count = -1;
	for (int i = 0; i < argc; i++) {
		const char *a = argv[i];
		long long *num_arg = !strcmp(a, "--interval") ? &interval : !strcmp(a, "-n") ? &count : NULL;
		if (weir_help_flag(a)) {
			fputs(weir_top_usage, stdout);
			return 0;
		} else if (!strcmp(a, "--run-dir") && i + 1 < argc) {
			run_dir = argv[++i];
		} else if (num_arg && i + 1 < argc) {
			if (weir_parse_num(argv[++i], num_arg == &interval ? 100 : 1, num_arg == &interval ? 3600000 : 1000000,
					   false, num_arg) < 0) {
				fprintf(stderr, "weir top: %s: %s\n%s", a, weir_err_msg(), weir_top_usage);
				return EXIT_USAGE;
			}
		} else {
			fprintf(stderr, "weir top: %s '%s'\n%s", a[0] == '-' ? "unknown or incomplete option" : "unexpected argument",
				a, weir_top_usage);
			return EXIT_USAGE;
		}
	}
	struct weir_rundir rd;
	weir_rundir_init(&rd, run_dir);
	struct weir_ctl_client *c;
	if (weir_ctl_client_open(&c, &rd, "weir top") < 0) {
		fprintf(stderr, "weir top: %s\n", weir_err_msg());
		return EXIT_FAIL;
	}
	/* on a terminal: the alternate screen, redrawn in place, q quits; else
	 * (batch) reports one after another, -n of them (1 by default) */
	bool tty = isatty(STDOUT_FILENO) && isatty(STDIN_FILENO);
	if (!tty && count < 0)
		count = 1;
	struct termios saved, raw;
	bool raw_on = tty && tcgetattr(STDIN_FILENO, &saved) == 0;
	if (raw_on) {
		raw = saved;
		raw.c_lflag &= ~(tcflag_t)(ICANON | ECHO);
		raw.c_cc[VMIN] = 0;
		raw.c_cc[VTIME] = 0;
		tcsetattr(STDIN_FILENO, TCSANOW, &raw);
		fputs("\033[?1049h\033[?25l", stdout); /* alternate screen, no cursor */
	}
	struct sigaction sa = { .sa_handler = on_signal };
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	int rc = 0;
	for (long long n = 0; !top_stop && (count < 0 || n < count); n++) {
		char *text = NULL;
		size_t len = 0;
		FILE *f = open_memstream(&text, &len);
		if (!f || draw(c, f, 80) < 0) {
			if (f)
				fclose(f);
			free(text);
			rc = EXIT_FAIL;
			break;
		}
		if (tty)
			fputs("(q quits)\n", f);
		fclose(f);
		if (tty)
			fputs("\033[H\033[2J", stdout); /* home, clear: the new screen in one write */
		fwrite(text, 1, len, stdout);
		fflush(stdout);
		free(text);
		if (count >= 0 && n + 1 >= count)
			break;
		struct pollfd p = { .fd = STDIN_FILENO, .events = POLLIN };
		if (tty && poll(&p, 1, (int)interval) > 0) {
			char ch;
			if (read(STDIN_FILENO, &ch, 1) == 1 && (ch == 'q' || ch == 'Q'))
				break;
		} else if (!tty) {
			struct timespec ts = { interval / 1000, (interval % 1000) * 1000000 };
			nanosleep(&ts, NULL);
		}
	}
	if (raw_on) {
		fputs("\033[?25h\033[?1049l", stdout);
		fflush(stdout);
		tcsetattr(STDIN_FILENO, TCSANOW, &saved);
	}
	if (rc)
		fprintf(stderr, "weir top: %s\n", weir_err_msg());
	weir_ctl_client_close(c);
	return rc;
}

/* --- weir run's progress line --- */

struct weir_run_progress {
	struct weir_ctl_client *c;
	char jid[24];
	bool drawn;
};

struct weir_run_progress *weir_run_progress_start(const struct weir_rundir *rd, uint64_t id, bool quiet)
{
	if (quiet || !isatty(STDOUT_FILENO) || !isatty(STDERR_FILENO))
		return NULL;
	struct weir_run_progress *p = calloc(1, sizeof(*p));
	if (!p)
		return NULL;
	/* a connection of its own: the run's waits for its job's JobInfo on
	 * the other */
	if (weir_ctl_client_open(&p->c, rd, "weir run progress") < 0) {
		free(p);
		return NULL; /* no line, the run goes on */
	}
	snprintf(p->jid, sizeof(p->jid), "%llu", (unsigned long long)id);
	return p;
}

void weir_run_progress_draw(struct weir_run_progress *p)
{
	if (!p)
		return;
	char path[64], ck[96] = "", b1[32], b2[32], b3[32], b4[32];
	int st;
	snprintf(path, sizeof(path), "/jobs/%s", p->jid);
	json_t *job = weir_cli_rest_get(p->c, path, &st);
	if (!job)
		return;
	snprintf(path, sizeof(path), "/jobs/%s/checkpoints", p->jid);
	json_t *cks = weir_cli_rest_get(p->c, path, &st);
	const json_t *l = cks ? json_object_get(json_object_get(cks, "latest"), "completed") : NULL;
	if (json_is_object(l))
		snprintf(ck, sizeof(ck), " | checkpoint %.0f, %.1f s ago", num(l, "id"),
			 (now_ms() - num(l, "latest_ack_timestamp")) / 1e3);
	json_decref(cks);
	struct io io = job_io(job);
	int cols = 100;
	struct winsize ws;
	if (ioctl(STDERR_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 20)
		cols = ws.ws_col;
	char line[512];
	int n = snprintf(line, sizeof(line), "weir run: %.0f s | in %s (%s/s) | out %s (%s/s) | busy %.0f%%, backpressured %.0f%%%s",
			 num(job, "duration") / 1e3, weir_grouped(b1, sizeof(b1), (uint64_t)io.in), weir_grouped(b2, sizeof(b2), (uint64_t)io.in_rate),
			 weir_grouped(b3, sizeof(b3), (uint64_t)io.out), weir_grouped(b4, sizeof(b4), (uint64_t)io.out_rate), 100 * io.busy, 100 * io.bp, ck);
	if (n >= cols)
		line[cols - 1] = '\0'; /* one line: a wrapped one could not be redrawn in place */
	fprintf(stderr, "\r\033[K%s", line);
	fflush(stderr);
	p->drawn = true;
	json_decref(job);
}

void weir_run_progress_stop(struct weir_run_progress *p)
{
	if (!p)
		return;
	if (p->drawn)
		fputs("\r\033[K", stderr); /* the summary takes its place */
	weir_ctl_client_close(p->c);
	free(p);
}
