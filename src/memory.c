/*
 * memory.c - how the consumers and the generator, whose Kafka clients run threads of their
 * own, give freed memory back to the kernel, so that their RssAnon follows what they use.
 *
 * glibc gives each new thread an arena of its own while there are fewer than 8 per core, so
 * librdkafka's threads, which allocate the fetched and the produced messages, get heaps of
 * their own.  malloc_trim() gives back the free pages inside every arena, but the free top
 * of a thread's heap only past the trim threshold, which glibc raises to twice the largest
 * block it has unmapped (a full batch's arrays reach ~10 MB).  After a backlog such a heap
 * kept what the backlog took: 12.4 MB held, 0.35 MB in use (malloc_stats of a consumer,
 * bench/RESULTS.md).  With tweetlake.malloc_arenas = 1 every thread of the worker allocates
 * from the main heap, whose top and free pages tl_release_free_memory() hands back.
 */
#include "tweetlake.h"

#include "utils/timestamp.h"

#ifdef __GLIBC__
#include <malloc.h>
#endif

/*
 * At the start of a worker, before it makes a Kafka client (and so before librdkafka
 * starts its threads): caps the arenas of this process at tweetlake.malloc_arenas.
 */
void
tl_memory_init(void)
{
#ifdef __GLIBC__
	if (tweetlake_malloc_arenas > 0)
		mallopt(M_ARENA_MAX, tweetlake_malloc_arenas);
#endif
}

/*
 * Gives the allocator's free memory back to the kernel, at most every 10 seconds (*last:
 * when it last did): a consumer after a batch, the generator in its loop (its producer
 * queue holds up to 16 MB while the broker is away).  glibc keeps the heap a large batch
 * grew to (after a broker restart the backlog comes in 10,000-message batches) and fills it
 * again only with what fits its holes, so without this a consumer's RssAnon steps up with
 * every larger batch and never comes down: bench/RESULTS.md has the malloc_stats() figures.  A trim of
 * a consumer's ~90 MB of free heap took 9-14 ms; the pages it frees are faulted in again by
 * the next large batch.  (A fixed 1 MB mmap threshold keeps no free heap at all, but cost
 * 20 % more CPU a message.)
 */
void
tl_release_free_memory(TimestampTz *last)
{
#ifdef __GLIBC__
	TimestampTz now = GetCurrentTimestamp();

	if (TimestampDifferenceExceeds(*last, now, 10000))
	{
		malloc_trim(0);
		*last = now;
	}
#endif
}

/*
 * The same for a worker waiting for work: gives the free memory back once it has waited a
 * second since it was last busy (busy_at), if it has not since then.  The trim after a batch
 * comes at most every 10 seconds, so the last batches of a backlog, when nothing comes after
 * them, left their heap in place: a consumer idle after a backlog of ~10,000 tweets kept
 * 51-82 MB of RssAnon, 11-12 MB after this trim (t/008).  (Deciding at the batch instead, at
 * the first one smaller than its batch_size after one that filled, missed it: with 8 MB
 * of fetched messages queued, a backlog's batches do not fill.)
 */
void
tl_release_free_memory_idle(TimestampTz *last, TimestampTz busy_at)
{
#ifdef __GLIBC__
	TimestampTz now;

	if (*last >= busy_at)
		return;
	now = GetCurrentTimestamp();
	if (TimestampDifferenceExceeds(busy_at, now, 1000))
	{
		malloc_trim(0);
		*last = now;
	}
#endif
}
