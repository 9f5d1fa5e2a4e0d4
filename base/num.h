/* base/num.h - whole numbers from command lines and files, checked; and
 * written for people. */
#ifndef WEIR_BASE_NUM_H
#define WEIR_BASE_NUM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * s as a whole number in [lo, hi] (decimal; with a K, M or G suffix when
 * `sized`: 2^10, 2^20, 2^30). 0 and *out, or -1 with the trail saying
 * "'s' is not a whole number from lo to hi": trailing characters, an
 * empty string, overflow and NULL all count as not a number.
 */
int weir_parse_num(const char *s, long long lo, long long hi, bool sized, long long *out);

/* n with thousands separators ("96,012,288") into b (cap bytes, 32 are
 * plenty); returns b. For the progress lines. */
const char *weir_grouped(char *b, size_t cap, uint64_t n);

#endif
