/*
 * sanitize_canary.c - two deliberate bugs, built by scripts/sanitize.sh with the same
 * sanitizer flags as the extension and run once in its preflight server, so that every
 * run proves its reports are really caught and counted ("0 reports" would mean nothing if
 * the runtime were not loaded or its log files not written).  Never installed.
 */
#include "postgres.h"

#include <stdlib.h>

#include "fmgr.h"

PG_MODULE_MAGIC;

PG_FUNCTION_INFO_V1(canary_heap_overflow);
PG_FUNCTION_INFO_V1(canary_signed_overflow);

/* One byte past a malloc'd buffer: AddressSanitizer's heap-buffer-overflow. */
Datum
canary_heap_overflow(PG_FUNCTION_ARGS)
{
	int			n = PG_GETARG_INT32(0);
	char	   *volatile buf = malloc(n);
	int			last;

	buf[n] = 'x';
	last = buf[n];
	free(buf);
	PG_RETURN_INT32(last);
}

/* a + 2147483647 in int: UndefinedBehaviorSanitizer's signed integer overflow for a > 0. */
Datum
canary_signed_overflow(PG_FUNCTION_ARGS)
{
	volatile int a = PG_GETARG_INT32(0);

	PG_RETURN_INT32(a + 2147483647);
}
