/* base/num.c - see num.h. */
#include "base/num.h"
#include "base/err.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

int weir_parse_num(const char *s, long long lo, long long hi, bool sized, long long *out)
{
	char *end;
	errno = 0;
	long long v = s ? strtoll(s, &end, 10) : 0;
	if (!s || !*s || end == s || errno)
		goto bad;
	if (sized && *end) {
		long long m = *end == 'K' || *end == 'k' ? 1LL << 10 : *end == 'M' || *end == 'm' ? 1LL << 20
			    : *end == 'G' || *end == 'g' ? 1LL << 30 : 0;
		if (!m || end[1] || v > hi / m)
			goto bad;
		v *= m;
		end++;
	}
	if (*end || v < lo || v > hi)
		goto bad;
	*out = v;
	return 0;
bad:
	return weir_err_set("'%s' is not a whole number from %lld to %lld", s ? s : "", lo, hi);
}

const char *weir_grouped(char *b, size_t cap, uint64_t n)
{
	char d[32];
	int len = snprintf(d, sizeof(d), "%llu", (unsigned long long)n), o = 0;
	for (int i = 0; i < len && (size_t)o + 2 < cap; i++) {
		if (i && (len - i) % 3 == 0)
			b[o++] = ',';
		b[o++] = d[i];
	}
	b[o] = 0;
	return b;
}
