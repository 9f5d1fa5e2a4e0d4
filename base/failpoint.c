/* base/failpoint.c - see failpoint.h. */
#include "base/failpoint.h"
#include "base/err.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum fp_action { FP_ABORT, FP_KILL, FP_ERROR };

struct fp {
	char name[64];
	unsigned int remaining;	/* passes left before it fires; decremented atomically */
	bool every;		/* "count+": fires on every pass from then on */
	enum fp_action action;
};

#define FP_MAX 16
static struct fp points[FP_MAX];
static int npoints;
bool weir_failpoints_armed;

int weir_failpoint_init(void)
{
	const char *spec = getenv("WEIR_FAILPOINT");
	npoints = 0;
	weir_failpoints_armed = false;
	if (!spec || !*spec)
		return 0;
	char buf[1024];
	if (strlen(spec) >= sizeof(buf))
		return weir_err_set("WEIR_FAILPOINT: too long");
	strcpy(buf, spec);
	char *save = NULL;
	for (char *item = strtok_r(buf, ",", &save); item; item = strtok_r(NULL, ",", &save)) {
		char *c1 = strchr(item, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
		if (!c1 || !c2 || c1 == item || (size_t)(c1 - item) >= sizeof(points[0].name))
			return weir_err_set("WEIR_FAILPOINT: '%s' is not name:count:action", item);
		if (npoints == FP_MAX)
			return weir_err_set("WEIR_FAILPOINT: more than %d points", FP_MAX);
		struct fp *p = &points[npoints];
		memcpy(p->name, item, (size_t)(c1 - item));
		p->name[c1 - item] = '\0';
		char *end;
		long n = strtol(c1 + 1, &end, 10);
		p->every = end + 1 == c2 && *end == '+';
		if (end != c2 - p->every || n < 1 || n > 1000000000)
			return weir_err_set("WEIR_FAILPOINT: '%s': count must be a number >= 1 (N+: from then on)", item);
		p->remaining = (unsigned int)n;
		if (!strcmp(c2 + 1, "abort"))
			p->action = FP_ABORT;
		else if (!strcmp(c2 + 1, "kill-self"))
			p->action = FP_KILL;
		else if (!strcmp(c2 + 1, "error"))
			p->action = FP_ERROR;
		else
			return weir_err_set("WEIR_FAILPOINT: '%s': action must be abort, kill-self or error", item);
		npoints++;
	}
	weir_failpoints_armed = npoints > 0;
	return 0;
}

int weir_failpoint_hit(const char *name)
{
	for (int i = 0; i < npoints; i++) {
		struct fp *p = &points[i];
		if (strcmp(p->name, name))
			continue;
		/* Exactly one caller sees the transition 1 -> 0, even across threads. */
		unsigned int old = __atomic_load_n(&p->remaining, __ATOMIC_RELAXED);
		do {
			if (old == 0) {
				if (!p->every)
					return 0;
				break;
			}
		} while (!__atomic_compare_exchange_n(&p->remaining, &old, old - 1, false, __ATOMIC_RELAXED,
						      __ATOMIC_RELAXED));
		if (old > 1)
			return 0;
		switch (p->action) {
		case FP_ABORT:
			fprintf(stderr, "weir: failpoint %s: abort\n", name);
			abort();
		case FP_KILL:
			kill(getpid(), SIGKILL);
			pause();
			break;
		case FP_ERROR:
			return weir_err_set("failpoint %s", name);
		}
	}
	return 0;
}
