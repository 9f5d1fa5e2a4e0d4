/*
 * base/log.h - log lines with a time stamp, a level and the process's role.
 *
 *   2026-11-20T23:59:01.123Z INFO  jobmanager: taskmanager 2 registered (4 slots)
 *
 * Lines go to stderr, which a daemon (jobmanager, taskmanager) has
 * pointed at its log file in the run folder. One write per line, so
 * threads do not interleave within a line. Lines below the level set with
 * weir_log_init are dropped.
 */
#ifndef WEIR_BASE_LOG_H
#define WEIR_BASE_LOG_H

enum weir_log_level { WEIR_LOG_DEBUG, WEIR_LOG_INFO, WEIR_LOG_WARN, WEIR_LOG_ERROR };

void weir_log_init(const char *role, enum weir_log_level min);
/* "debug", "info", "warn", "error": 0 and *out set, or -1. */
int weir_log_parse_level(const char *s, enum weir_log_level *out);
void weir_log(enum weir_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
