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

static void vlog(enum weir_log_level level, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));

void weir_log(enum weir_log_level level, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vlog(level, fmt, ap);
	va_end(ap);
}

static void vlog(enum weir_log_level level, const char *fmt, va_list ap)
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
	vsnprintf(msg, sizeof(msg), fmt, ap);
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

void weir_log_limit_init(struct weir_log_limit *lim, const char *what, enum weir_log_level level,
			 uint32_t period_ms)
{
	memset(lim, 0, sizeof(*lim));
	lim->what = what;
	lim->level = level;
	lim->period_ns = (uint64_t)period_ms * 1000000u;
}

void weir_log_limited(struct weir_log_limit *lim, uint64_t now_ns, const char *why, const char *fmt, ...)
{
	weir_log_limit_flush(lim, now_ns);
	if (!lim->lines || now_ns - lim->last_ns >= lim->period_ns) {
		va_list ap;
		va_start(ap, fmt);
		vlog(lim->level, fmt, ap);
		va_end(ap);
		lim->last_ns = now_ns;
		lim->lines++;
		return;
	}
	lim->held++;
	for (int i = 0; i < lim->nreasons; i++)
		if (lim->reasons[i].why == why || !strcmp(lim->reasons[i].why, why)) {
			lim->reasons[i].n++;
			return;
		}
	if (lim->nreasons < WEIR_LOG_LIMIT_REASONS) {
		lim->reasons[lim->nreasons].why = why;
		lim->reasons[lim->nreasons++].n = 1;
	} else {
		lim->other++;
	}
}

void weir_log_limit_flush(struct weir_log_limit *lim, uint64_t now_ns)
{
	if (!lim->held || now_ns - lim->last_ns < lim->period_ns)
		return;
	char buf[1024];
	size_t o = 0;
	for (int i = 0; i < lim->nreasons && o < sizeof(buf); i++)
		o += (size_t)snprintf(buf + o, sizeof(buf) - o, "%s%s: %llu", i ? ", " : "", lim->reasons[i].why,
				      (unsigned long long)lim->reasons[i].n);
	if (lim->other && o < sizeof(buf))
		snprintf(buf + o, sizeof(buf) - o, ", other: %llu", (unsigned long long)lim->other);
	if (o >= sizeof(buf))
		buf[sizeof(buf) - 1] = '\0';
	weir_log(lim->level, "%llu more %s in %llu ms (%s)", (unsigned long long)lim->held, lim->what,
		 (unsigned long long)((now_ns - lim->last_ns) / 1000000u), o ? buf : "");
	lim->last_ns = now_ns;
	lim->lines++;
	lim->held = lim->other = 0;
	lim->nreasons = 0;
}
