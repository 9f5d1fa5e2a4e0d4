/*
 * base/log.h - log lines with a time stamp, a level and the process's role.
 *
 *   2026-11-20T23:59:01.123Z INFO  jobmanager: taskmanager 2 registered (4 slots)
 *
 * Lines go to stderr, which a daemon (jobmanager, taskmanager) has
 * pointed at its log file in the run folder. One write per line, so
 * threads do not interleave within a line. Lines below the level set with
 * weir_log_init are dropped.
 *
 * A line is one line whatever it quotes: control characters in the
 * message (a job named "a\nforged line", a path) are written escaped
 * (\n, \r, \t, \xNN), so text from outside cannot forge lines.
 */
#ifndef WEIR_BASE_LOG_H
#define WEIR_BASE_LOG_H

#include <stddef.h>
#include <stdint.h>

enum weir_log_level { WEIR_LOG_DEBUG, WEIR_LOG_INFO, WEIR_LOG_WARN, WEIR_LOG_ERROR };

void weir_log_init(const char *role, enum weir_log_level min);
/* "debug", "info", "warn", "error": 0 and *out set, or -1. */
int weir_log_parse_level(const char *s, enum weir_log_level *out);
void weir_log(enum weir_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* s with its control characters escaped as weir_log writes them, in buf
 * (cut to n - 1 bytes); returns buf. For text from outside that a command
 * prints (job names, messages). */
const char *weir_escape(char *buf, size_t n, const char *s);

/*
 * Rate-limited lines, for events an outsider can repeat at will (refused
 * connections): at most one line per period. An event with no line in the
 * last period is written in full; the others are counted by their reason
 * (a short fixed text) and said in one line once the period has passed:
 *
 *   WARN  jobmanager: 2999 more refused connections in 1000 ms (no handshake
 *         within 2000 ms: 1975, evicted: 1024)
 *
 * weir_log_limit_flush writes that line when it is due; call it from a
 * periodic tick so the count is said even when the events stop. One
 * limiter belongs to one thread. (The checkpoint coordinator's "N more
 * checkpoints aborted (A to B): WHY" is a different rule: one line per run
 * of the same reason, however long, since its events are its own and
 * come at its own pace.)
 */
#define WEIR_LOG_LIMIT_REASONS 8
struct weir_log_limit {
	const char *what;		/* "refused connections" */
	enum weir_log_level level;
	uint64_t period_ns;
	uint64_t last_ns;		/* when the last line was written (0: never) */
	uint64_t held;			/* events not written since */
	uint64_t lines;			/* lines written (full and summaries) */
	struct {
		const char *why;	/* a static string */
		uint64_t n;
	} reasons[WEIR_LOG_LIMIT_REASONS];
	int nreasons;
	uint64_t other;			/* held under a reason beyond the table */
};
void weir_log_limit_init(struct weir_log_limit *lim, const char *what, enum weir_log_level level,
			 uint32_t period_ms);
/* One event at now_ns (a monotonic clock): its line (fmt) now, or counted
 * under why. */
void weir_log_limited(struct weir_log_limit *lim, uint64_t now_ns, const char *why, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
/* The summary of the held events, if a period has passed since the last line. */
void weir_log_limit_flush(struct weir_log_limit *lim, uint64_t now_ns);

#endif
