/* base/err.c - thread-local error trail; see err.h. */
#include "base/err.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static _Thread_local char trail[WEIR_ERR_MAX];

int weir_err_set(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(trail, sizeof(trail), fmt, ap);
	va_end(ap);
	return -1;
}

int weir_err_errno(int errnum, const char *fmt, ...)
{
	char head[WEIR_ERR_MAX];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(head, sizeof(head), fmt, ap);
	va_end(ap);
	snprintf(trail, sizeof(trail), "%s: %s", head, strerror(errnum));
	return -1;
}

int weir_err_wrap(const char *fmt, ...)
{
	char head[WEIR_ERR_MAX], old[WEIR_ERR_MAX];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(head, sizeof(head), fmt, ap);
	va_end(ap);
	memcpy(old, trail, sizeof(old));
	if (old[0])
		snprintf(trail, sizeof(trail), "%s: %s", head, old);
	else
		snprintf(trail, sizeof(trail), "%s", head);
	return -1;
}

const char *weir_err_msg(void) { return trail; }
void weir_err_clear(void) { trail[0] = '\0'; }
