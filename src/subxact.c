/*
 * subxact.c - runs a piece of work in a subtransaction of the current transaction and
 * hands back its error instead of throwing it, for workers that go on after a failure:
 * the consumer isolating the messages that fail a batch, the launcher's partition
 * maintenance.
 */
#include "tweetlake.h"

#include "access/xact.h"
#include "utils/memutils.h"
#include "utils/resowner.h"

/*
 * Runs work(arg) in a subtransaction: NULL when it was released, else its error (copied
 * into errcxt), after the subtransaction was rolled back.  Either way the caller is back
 * in its memory context and resource owner, in the transaction it was in.
 */
ErrorData *
tl_try_subtransaction(void (*work) (void *arg), void *arg, MemoryContext errcxt)
{
	MemoryContext cxt = CurrentMemoryContext;
	ResourceOwner owner = CurrentResourceOwner;
	ErrorData  *volatile edata = NULL;

	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(cxt);
	PG_TRY();
	{
		work(arg);
		ReleaseCurrentSubTransaction();
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(errcxt);
		edata = CopyErrorData();
		FlushErrorState();
		RollbackAndReleaseCurrentSubTransaction();
	}
	PG_END_TRY();
	MemoryContextSwitchTo(cxt);
	CurrentResourceOwner = owner;
	return edata;
}
