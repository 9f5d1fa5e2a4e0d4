/* base/num.h - whole numbers from command lines and files, checked. */
#ifndef WEIR_BASE_NUM_H
#define WEIR_BASE_NUM_H

#include <stdbool.h>

/*
 * s as a whole number in [lo, hi] (decimal; with a K, M or G suffix when
 * `sized`: 2^10, 2^20, 2^30). 0 and *out, or -1 with the trail saying
 * "'s' is not a whole number from lo to hi": trailing characters, an
 * empty string, overflow and NULL all count as not a number.
 */
int weir_parse_num(const char *s, long long lo, long long hi, bool sized, long long *out);

#endif
