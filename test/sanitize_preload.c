/*
 * sanitize_preload.c - preloaded by scripts/sanitize.sh into the uninstrumented postgres,
 * after libasan and before libubsan (GCC 12, glibc 2.36), for two reasons:
 *
 * 1. A preloaded libasan initializes lazily, at the first malloc, and in postgres that is
 *    inside libp11-kit's constructor (pulled in by libldap -> libgnutls), in newlocale()
 *    with glibc's locale lock held.  ASan's init looks up swift_demangle with dlsym(); the
 *    failure message dlerror() then translates with dcgettext(), which takes the same lock
 *    again and corrupts it: every later setlocale() or bindtextdomain() hangs, so even
 *    "postgres -V" never returns.  Defining swift_demangle makes the lookup succeed: no
 *    error, no dcgettext.  It is only called for Swift symbol names, and declines them.
 *
 * 2. libubsan reads UBSAN_OPTIONS at its first report, from /proc/self/environ, which the
 *    postmaster has by then overwritten with its process title: the options would be lost
 *    (no stack trace, no abort).  They are kept here at load time, while the environment
 *    is intact, and handed over as UBSan's default options (which is why this file comes
 *    before libubsan in LD_PRELOAD: its __ubsan_default_options must be the one found).
 */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

char	   *swift_demangle(const char *mangled, size_t length, char *out, size_t *out_length, unsigned flags);
const char *__ubsan_default_options(void);

static char ubsan_options[4096];

char *
swift_demangle(const char *mangled, size_t length, char *out, size_t *out_length, unsigned flags)
{
	return NULL;
}

__attribute__((constructor))
static void
keep_ubsan_options(void)
{
	const char *o = getenv("UBSAN_OPTIONS");

	if (o != NULL && strlen(o) < sizeof(ubsan_options))
		strcpy(ubsan_options, o);
}

const char *
__ubsan_default_options(void)
{
	return ubsan_options;
}
