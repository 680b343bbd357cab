/*
 * tweetlake.c - module entry point: PG_MODULE_MAGIC and _PG_init, which defines the
 * settings and, when loaded through shared_preload_libraries, sets up the workers' shared
 * memory and registers the launcher that supervises them.  Everything else lives in files
 * named after what it does.
 */
#include "tweetlake.h"

#include "fmgr.h"
#include "miscadmin.h"

PG_MODULE_MAGIC;

void		_PG_init(void);

void
_PG_init(void)
{
	tweetlake_define_gucs();

	/*
	 * Loaded by CREATE EXTENSION or a function call: SQL functions only, no
	 * workers.
	 */
	if (!process_shared_preload_libraries_in_progress)
		return;

	tl_shmem_init();
	tl_register_launcher();
}
