/* base/clock.h - monotonic and wall clocks (vDSO, no syscall), and a
 * manual clock that tests put in their place. */
#ifndef WEIR_BASE_CLOCK_H
#define WEIR_BASE_CLOCK_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

uint64_t weir_now_ns(void);      /* CLOCK_MONOTONIC (or the manual clock) */
uint64_t weir_real_now_ns(void); /* CLOCK_MONOTONIC, whatever the manual clock says (waits, a test's own timeouts) */
int64_t weir_wall_ms(void);      /* CLOCK_REALTIME, milliseconds since the epoch (or the manual clock) */
int64_t weir_wall_ns(void);      /* CLOCK_REALTIME, nanoseconds since the epoch (never the manual clock:
				  * latency markers, which compare it between processes) */

/*
 * Manual time, a test hook: processing time (timers, processing-time
 * windows) and state TTL read the clocks through the two functions above,
 * so a test that turns manual time on decides what they read, and checks
 * exact outcomes instead of racing the real clock.
 *
 *   weir_clock_set_manual(true)   both clocks stop at their current
 *                                 readings; set_manual(false) returns to
 *                                 the real clocks
 *   weir_clock_advance_ms(ms)     both move forward by ms (>= 0)
 *   weir_clock_set_wall_ms(ms)    the wall clock alone jumps to ms (may go
 *                                 back, as a real wall clock may; the
 *                                 monotonic one never does)
 *
 * Cost when off: weir_now_ns and weir_wall_ms test one plain global bool,
 * a branch that is always predicted (they are on the hot path).
 *
 * Threading contract:
 *  - weir_clock_set_manual only while no job runs (before the job starts,
 *    after it ended): the flag is a plain global that every thread reads
 *    without synchronization; thread creation and join order it.
 *  - weir_clock_advance_ms and weir_clock_set_wall_ms before the job
 *    starts, or from inside one of its functions while it runs (a source,
 *    a process function): the manual readings are atomic, so other threads
 *    read them without a data race. For outcomes a test can predict,
 *    advance from one function of a job that runs on one worker thread
 *    (weir_config.workers = 1), or from the process function of a job of
 *    parallelism 1: a worker that sleeps until a timer's time, computed on
 *    the manual clock, is not woken when another thread advances it.
 *  - While manual time is on, what waits on weir_now_ns stands still: a
 *    worker with nothing to do spins instead of going to sleep, and buffer
 *    timeouts, idleness and checkpoint intervals never come due unless the
 *    clock is advanced. A test's own timeouts must use the real clock.
 */
void weir_clock_set_manual(bool on);
void weir_clock_advance_ms(int64_t ms);
void weir_clock_set_wall_ms(int64_t ms);

/* A condition variable whose timed waits count on CLOCK_MONOTONIC, and a
 * wait on it (m held) until signalled or rel_ns of real time passed. */
void weir_cond_init_monotonic(pthread_cond_t *c);
void weir_cond_wait_ns(pthread_cond_t *c, pthread_mutex_t *m, uint64_t rel_ns);

#endif
