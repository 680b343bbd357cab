/*
 * tweetlake.c - module entry point: PG_MODULE_MAGIC and _PG_init, which defines the
 * settings.  Everything else lives in files named after what it does.
 */
#include "tweetlake.h"

#include "fmgr.h"

PG_MODULE_MAGIC;

void		_PG_init(void);

void
_PG_init(void)
{
	tweetlake_define_gucs();
}
