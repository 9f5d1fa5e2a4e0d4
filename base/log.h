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

enum weir_log_level { WEIR_LOG_DEBUG, WEIR_LOG_INFO, WEIR_LOG_WARN, WEIR_LOG_ERROR };

void weir_log_init(const char *role, enum weir_log_level min);
/* "debug", "info", "warn", "error": 0 and *out set, or -1. */
int weir_log_parse_level(const char *s, enum weir_log_level *out);
void weir_log(enum weir_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* s with its control characters escaped as weir_log writes them, in buf
 * (cut to n - 1 bytes); returns buf. For text from outside that a command
 * prints (job names, messages). */
const char *weir_escape(char *buf, size_t n, const char *s);

#endif
