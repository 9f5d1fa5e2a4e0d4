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

const char *weir_escape(char *buf, size_t n, const char *s)
{
	size_t o = 0;
	if (!n)
		return buf;
	for (; *s && o + 1 < n; s++) {
		unsigned char c = (unsigned char)*s;
		if (c >= 0x20 && c != 0x7f) {
			buf[o++] = (char)c;
			continue;
		}
		char e[8];
		int k = c == '\n' ? snprintf(e, sizeof(e), "\\n") : c == '\r' ? snprintf(e, sizeof(e), "\\r")
		      : c == '\t' ? snprintf(e, sizeof(e), "\\t") : snprintf(e, sizeof(e), "\\x%02x", c);
		if (o + (size_t)k + 1 > n)
			break;
		memcpy(buf + o, e, (size_t)k);
		o += (size_t)k;
	}
	buf[o] = '\0';
	return buf;
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
	char msg[1536];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (n < (int)sizeof(line)) {
		weir_escape(line + n, sizeof(line) - (size_t)n, msg);
		n += (int)strlen(line + n);
	}
	if (n > (int)sizeof(line) - 2)
		n = (int)sizeof(line) - 2;
	line[n++] = '\n';
	ssize_t w = write(2, line, (size_t)n); /* one write: lines stay whole */
	(void)w;
}
