/*
 * t/tap.h - a small TAP producer for weir's C tests (run by prove).
 *
 *   plan(3); ok(x == 1, "x is one"); is_int(got, want, "..."); done_testing();
 *
 * Failures print what was expected beside what came. bail() stops the
 * whole run; skip_all() skips the file (exit 0 with "1..0 # SKIP");
 * skip(why, n) counts n tests as skipped ("ok N # skip why"), for checks
 * whose precondition does not hold here: never an ok(1) in their place.
 * tap_seed() picks the seed of a randomized test: WEIR_SEED from the
 * environment to replay, else a fresh one; either way it is printed.
 */
#ifndef WEIR_T_TAP_H
#define WEIR_T_TAP_H

#include <stdbool.h>
#include <stdint.h>

void plan(int n);
void done_testing(void);
bool ok_at(bool cond, const char *file, int line, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
bool is_int_at(long long got, long long want, const char *file, int line, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));
bool is_string_at(const char *got, const char *want, const char *file, int line, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));
void diag(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
_Noreturn void bail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
_Noreturn void skip_all(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void skip(const char *why, int n);
uint64_t tap_seed(void);
/* xorshift64*: deterministic given the seed */
uint64_t tap_rand(uint64_t *state);
int tap_failures(void);

#define ok(cond, ...) ok_at((cond), __FILE__, __LINE__, __VA_ARGS__)
#define is_int(got, want, ...) is_int_at((long long)(got), (long long)(want), __FILE__, __LINE__, __VA_ARGS__)
#define is_string(got, want, ...) is_string_at((got), (want), __FILE__, __LINE__, __VA_ARGS__)

#endif
