/* base/num.c - see num.h. */
#include "base/num.h"
#include "base/err.h"

#include <errno.h>
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
