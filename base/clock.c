/* base/clock.c - see clock.h. */
#include "base/clock.h"

#include <time.h>

/* Manual time (clock.h): the flag is a plain global, written only while no
 * job runs; the readings are accessed atomically (relaxed), since a job's
 * function may advance them while other threads read. */
static bool manual;
static uint64_t manual_ns;
static int64_t manual_wall_ms;

uint64_t weir_real_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int64_t real_wall_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

uint64_t weir_now_ns(void)
{
	if (__builtin_expect(manual, 0))
		return __atomic_load_n(&manual_ns, __ATOMIC_RELAXED);
	return weir_real_now_ns();
}

int64_t weir_wall_ms(void)
{
	if (__builtin_expect(manual, 0))
		return __atomic_load_n(&manual_wall_ms, __ATOMIC_RELAXED);
	return real_wall_ms();
}

void weir_clock_set_manual(bool on)
{
	if (on && !manual) {
		__atomic_store_n(&manual_ns, weir_real_now_ns(), __ATOMIC_RELAXED);
		__atomic_store_n(&manual_wall_ms, real_wall_ms(), __ATOMIC_RELAXED);
	}
	manual = on;
}

void weir_clock_advance_ms(int64_t ms)
{
	if (ms <= 0)
		return;
	__atomic_fetch_add(&manual_ns, (uint64_t)ms * 1000000u, __ATOMIC_RELAXED);
	__atomic_fetch_add(&manual_wall_ms, ms, __ATOMIC_RELAXED);
}

void weir_clock_set_wall_ms(int64_t ms)
{
	__atomic_store_n(&manual_wall_ms, ms, __ATOMIC_RELAXED);
}

void weir_cond_init_monotonic(pthread_cond_t *c)
{
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(c, &ca);
	pthread_condattr_destroy(&ca);
}

void weir_cond_wait_ns(pthread_cond_t *c, pthread_mutex_t *m, uint64_t rel_ns)
{
	uint64_t abs = weir_real_now_ns() + rel_ns;
	struct timespec ts = { (time_t)(abs / 1000000000u), (long)(abs % 1000000000u) };
	pthread_cond_timedwait(c, m, &ts);
}

int64_t weir_wall_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}
