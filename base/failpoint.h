/*
 * base/failpoint.h - crash and error injection at named points.
 *
 * WEIR_FAILPOINT="name:count:action[,name:count:action...]" arms points for
 * the process: the count-th time a point is passed, its action runs; with
 * "count+" it runs on every pass from the count-th on (storage that keeps
 * failing).
 *   abort      abort() (a crash with a core, SIGABRT)
 *   kill-self  SIGKILL to ourselves: no handler, no cleanup, as kill -9
 *   error      weir_failpoint() returns -1 once, so the caller takes its
 *              error path (the trail says "failpoint NAME")
 * Tests crash a process at an exact point this way instead of sleeping and
 * hoping. Unarmed points cost one predictable branch.
 */
#ifndef WEIR_BASE_FAILPOINT_H
#define WEIR_BASE_FAILPOINT_H

#include <stdbool.h>

extern bool weir_failpoints_armed;

/* Parse WEIR_FAILPOINT; returns -1 with the trail set when malformed. */
int weir_failpoint_init(void);
int weir_failpoint_hit(const char *name);

/* 0 normally; -1 when an "error" failpoint fires. */
static inline int weir_failpoint(const char *name)
{
	return __builtin_expect(weir_failpoints_armed, 0) ? weir_failpoint_hit(name) : 0;
}

#endif
