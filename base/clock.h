/* base/clock.h - monotonic and wall clocks in nanoseconds (vDSO, no syscall). */
#ifndef WEIR_BASE_CLOCK_H
#define WEIR_BASE_CLOCK_H

#include <stdint.h>

uint64_t weir_now_ns(void);      /* CLOCK_MONOTONIC */
int64_t weir_wall_ms(void);      /* CLOCK_REALTIME, milliseconds since the epoch */

#endif
