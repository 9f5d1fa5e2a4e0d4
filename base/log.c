/* base/log.c - see log.h. */
#include "base/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static char role[32] = "weir";
static enum weir_log_level min_level = WEIR_LOG_INFO;

void weir_log_init(const char *r, enum weir_log_level min)
{
	snprintf(role, sizeof(role), "%s", r);
	min_level = min;
}

int weir_log_parse_level(const char *s, enum weir_log_level *out)
{
	static const char *names[] = { "debug", "info", "warn", "error" };
	for (int i = 0; i < 4; i++)
		if (!strcmp(s, names[i])) {
			*out = (enum weir_log_level)i;
			return 0;
		}
	return -1;
}

void weir_log(enum weir_log_level level, const char *fmt, ...)
{
	if (level < min_level)
		return;
	static const char *tags[] = { "DEBUG", "INFO ", "WARN ", "ERROR" };
	char line[2048];
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	struct tm tm;
	gmtime_r(&ts.tv_sec, &tm);
	int n = (int)strftime(line, sizeof(line), "%Y-%m-%dT%H:%M:%S", &tm);
	n += snprintf(line + n, sizeof(line) - (size_t)n, ".%03ldZ %s %s: ", ts.tv_nsec / 1000000, tags[level], role);
	va_list ap;
	va_start(ap, fmt);
	if (n < (int)sizeof(line))
		n += vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
	va_end(ap);
	if (n > (int)sizeof(line) - 2)
		n = (int)sizeof(line) - 2;
	line[n++] = '\n';
	ssize_t w = write(2, line, (size_t)n); /* one write: lines stay whole */
	(void)w;
}
