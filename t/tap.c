/* t/tap.c - see tap.h. */
#include "tap.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static int planned = -1, run, failed;

void plan(int n)
{
	planned = n;
	printf("1..%d\n", n);
	fflush(stdout);
}

int tap_failures(void) { return failed; }

void done_testing(void)
{
	if (planned < 0)
		printf("1..%d\n", run);
	fflush(stdout);
	exit(failed || (planned >= 0 && planned != run) ? 1 : 0);
}

static void vresult(bool cond, const char *fmt, va_list ap)
{
	run++;
	if (!cond)
		failed++;
	printf("%sok %d - ", cond ? "" : "not ", run);
	vprintf(fmt, ap);
	printf("\n");
	fflush(stdout);
}

bool ok_at(bool cond, const char *file, int line, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vresult(cond, fmt, ap);
	va_end(ap);
	if (!cond)
		diag("  at %s line %d", file, line);
	return cond;
}

bool is_int_at(long long got, long long want, const char *file, int line, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vresult(got == want, fmt, ap);
	va_end(ap);
	if (got != want)
		diag("  at %s line %d: got %lld, expected %lld", file, line, got, want);
	return got == want;
}

bool is_string_at(const char *got, const char *want, const char *file, int line, const char *fmt, ...)
{
	bool same = got && want ? !strcmp(got, want) : got == want;
	va_list ap;
	va_start(ap, fmt);
	vresult(same, fmt, ap);
	va_end(ap);
	if (!same)
		diag("  at %s line %d: got '%s', expected '%s'", file, line, got ? got : "(null)",
		     want ? want : "(null)");
	return same;
}

void diag(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fflush(stdout);
	fprintf(stderr, "# ");
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, "\n");
	va_end(ap);
}

void bail(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	printf("Bail out! ");
	vprintf(fmt, ap);
	printf("\n");
	va_end(ap);
	fflush(stdout);
	exit(255);
}

void skip_all(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	printf("1..0 # SKIP ");
	vprintf(fmt, ap);
	printf("\n");
	va_end(ap);
	fflush(stdout);
	exit(0);
}

void skip(const char *why, int n)
{
	for (int i = 0; i < n; i++)
		printf("ok %d # skip %s\n", ++run, why);
	fflush(stdout);
}

uint64_t tap_seed(void)
{
	const char *e = getenv("WEIR_SEED");
	uint64_t seed = e && *e ? strtoull(e, NULL, 0)
				: ((uint64_t)time(NULL) << 20) ^ (uint64_t)getpid() ^ (uint64_t)clock();
	if (!seed)
		seed = 1;
	printf("# seed %llu (replay with WEIR_SEED=%llu)\n", (unsigned long long)seed, (unsigned long long)seed);
	fflush(stdout);
	return seed;
}

uint64_t tap_rand(uint64_t *s)
{
	uint64_t x = *s;
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*s = x;
	return x * 0x2545F4914F6CDD1Dull;
}
