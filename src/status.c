/*
 * status.c - the shared memory every tweetlake worker reports into (one slot per worker,
 * one per source and partition) and the functions behind the tweetlake.status and
 * tweetlake.consumer_lag views.  Sized in shmem_request_hook, set up in shmem_startup_hook.
 */
#include "tweetlake.h"

#include <time.h>

#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "storage/ipc.h"
#include "storage/shmem.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/timestamp.h"

PG_FUNCTION_INFO_V1(tweetlake_worker_status);
PG_FUNCTION_INFO_V1(tweetlake_partition_status);

TlShared   *tl_shared = NULL;

static shmem_request_hook_type prev_shmem_request_hook = NULL;
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;

static void
tl_shmem_request(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
	RequestAddinShmemSpace(MAXALIGN(sizeof(TlShared)));
	RequestNamedLWLockTranche("tweetlake", 1);
}

static void
tl_shmem_startup(void)
{
	bool		found;

	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();

	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	tl_shared = ShmemInitStruct("tweetlake", sizeof(TlShared), &found);
	if (!found)
	{
		memset(tl_shared, 0, sizeof(TlShared));
		tl_shared->lock = &(GetNamedLWLockTranche("tweetlake"))->lock;
		tl_shared->enabled = tweetlake_autostart;
		for (int i = 0; i < TL_MAX_WORKERS; i++)
			SpinLockInit(&tl_shared->workers[i].mutex);
		for (int i = 0; i < TL_PARTITION_SLOTS; i++)
			tl_shared->partitions[i].consumer = -1;
	}
	LWLockRelease(AddinShmemInitLock);
}

/* Called from _PG_init when loaded through shared_preload_libraries. */
void
tl_shmem_init(void)
{
	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = tl_shmem_request;
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = tl_shmem_startup;
}

/* Errors out of SQL functions that need the workers' shared memory. */
void
tl_require_shared(void)
{
	if (tl_shared == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("tweetlake workers are not available"),
				 errhint("Add tweetlake to shared_preload_libraries and restart the server.")));
}

const char *
tl_role_name(TlRole role)
{
	switch (role)
	{
		case TL_ROLE_LAUNCHER:
			return "launcher";
		case TL_ROLE_BROKER:
			return "broker";
		case TL_ROLE_GENERATOR:
			return "generator";
		case TL_ROLE_CONSUMER:
			return "consumer";
		case TL_ROLE_NONE:
			break;
	}
	return "none";
}

/*
 * Claims a slot for the calling worker (reusing one left by an earlier process of the same
 * role, source and index, so counters of a restarted worker start over in the same row) and
 * arranges for it to be released at exit.
 */
TlWorkerSlot *
tl_slot_acquire(TlRole role, const char *source, int index)
{
	TlWorkerSlot *slot = NULL;

	LWLockAcquire(tl_shared->lock, LW_EXCLUSIVE);
	for (int i = 0; i < TL_MAX_WORKERS && slot == NULL; i++)
		if (tl_shared->workers[i].role == role && tl_shared->workers[i].index == index &&
			strcmp(tl_shared->workers[i].source, source) == 0)
			slot = &tl_shared->workers[i];
	for (int i = 0; i < TL_MAX_WORKERS && slot == NULL; i++)
		if (tl_shared->workers[i].role == TL_ROLE_NONE)
			slot = &tl_shared->workers[i];
	if (slot == NULL)
	{
		LWLockRelease(tl_shared->lock);
		ereport(ERROR,
				(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
				 errmsg("no free tweetlake worker slot")));
	}
	SpinLockAcquire(&slot->mutex);
	slot->role = role;
	slot->index = index;
	strlcpy(slot->source, source, sizeof(slot->source));
	slot->pid = MyProcPid;
	slot->started_at = GetCurrentTimestamp();
	slot->messages = slot->bytes = slot->dead_letters = slot->errors = 0;
	slot->updates = slot->deletes = slot->stale = 0;
	slot->retries = 0;
	slot->stalled_since = 0;
	memset(slot->sec_stamp, 0, sizeof(slot->sec_stamp));
	memset(slot->sec_count, 0, sizeof(slot->sec_count));
	strlcpy(slot->state, "starting", sizeof(slot->state));
	SpinLockRelease(&slot->mutex);
	LWLockRelease(tl_shared->lock);

	before_shmem_exit(tl_slot_release, PointerGetDatum(slot));
	return slot;
}

/*
 * The slots of a source's partitions partitions[0..n-1] (each below TL_MAX_PARTITIONS) into
 * slots[0..n-1], in one pass over the slots: NULL for a partition that has none (or, with
 * create, when no free slot is left for it).  The caller holds tl_shared->lock,
 * exclusively when create.
 */
void
tl_partition_slots(const char *source, const int32 *partitions, int n, TlPartitionSlot **slots,
				   bool create)
{
	int			where[TL_MAX_PARTITIONS];
	int			next_free = 0;

	for (int p = 0; p < TL_MAX_PARTITIONS; p++)
		where[p] = -1;
	for (int i = 0; i < n; i++)
	{
		slots[i] = NULL;
		if (partitions[i] >= 0 && partitions[i] < TL_MAX_PARTITIONS)
			where[partitions[i]] = i;
	}
	for (int i = 0; i < TL_PARTITION_SLOTS; i++)
	{
		TlPartitionSlot *ps = &tl_shared->partitions[i];

		if (ps->source[0] != '\0' && ps->partition >= 0 && ps->partition < TL_MAX_PARTITIONS &&
			where[ps->partition] >= 0 && strcmp(ps->source, source) == 0)
			slots[where[ps->partition]] = ps;
	}
	for (int i = 0; create && i < n; i++)
	{
		TlPartitionSlot *ps = NULL;

		if (slots[i] != NULL || where[partitions[i]] != i)
			continue;
		while (next_free < TL_PARTITION_SLOTS && ps == NULL)
		{
			if (tl_shared->partitions[next_free].source[0] == '\0')
				ps = &tl_shared->partitions[next_free];
			next_free++;
		}
		if (ps == NULL)
			break;
		memset(ps, 0, sizeof(*ps));
		strlcpy(ps->source, source, sizeof(ps->source));
		ps->partition = partitions[i];
		ps->consumer = -1;
		ps->high_watermark = -1;
		slots[i] = ps;
	}
}

/*
 * Forgets a dropped source: its partitions leave tweetlake.consumer_lag and the slots of its
 * stopped workers leave tweetlake.status.
 */
void
tl_partition_slots_forget(const char *source)
{
	LWLockAcquire(tl_shared->lock, LW_EXCLUSIVE);
	for (int i = 0; i < TL_PARTITION_SLOTS; i++)
		if (strcmp(tl_shared->partitions[i].source, source) == 0)
		{
			memset(&tl_shared->partitions[i], 0, sizeof(TlPartitionSlot));
			tl_shared->partitions[i].consumer = -1;
		}
	for (int i = 0; i < TL_MAX_WORKERS; i++)
	{
		TlWorkerSlot *slot = &tl_shared->workers[i];

		SpinLockAcquire(&slot->mutex);
		if (slot->pid == 0 && strcmp(slot->source, source) == 0)
		{
			slot->role = TL_ROLE_NONE;
			slot->source[0] = '\0';
		}
		SpinLockRelease(&slot->mutex);
	}
	LWLockRelease(tl_shared->lock);
}

/* How many workers of the role are running now (a slot with a process). */
int
tl_running_workers(TlRole role)
{
	int			n = 0;

	for (int i = 0; i < TL_MAX_WORKERS; i++)
	{
		TlWorkerSlot *slot = &tl_shared->workers[i];

		SpinLockAcquire(&slot->mutex);
		if (slot->role == role && slot->pid != 0)
			n++;
		SpinLockRelease(&slot->mutex);
	}
	return n;
}

/* The slot stays (with its counters and last error) but shows the worker as stopped. */
void
tl_slot_release(int code, Datum arg)
{
	TlWorkerSlot *slot = (TlWorkerSlot *) DatumGetPointer(arg);

	SpinLockAcquire(&slot->mutex);
	if (slot->pid == MyProcPid)
	{
		slot->pid = 0;
		strlcpy(slot->state, code == 0 ? "stopped" : "exited with error", sizeof(slot->state));
	}
	SpinLockRelease(&slot->mutex);
}

void
tl_slot_set_state(TlWorkerSlot *slot, const char *state)
{
	SpinLockAcquire(&slot->mutex);
	strlcpy(slot->state, state, sizeof(slot->state));
	SpinLockRelease(&slot->mutex);
}

/* Adds to the counters and to this second's bucket of the rate window. */
void
tl_slot_count(TlWorkerSlot *slot, uint64 messages, uint64 bytes)
{
	int64		now = (int64) time(NULL);
	int			b = (int) (now % TL_RATE_WINDOW);

	SpinLockAcquire(&slot->mutex);
	slot->messages += messages;
	slot->bytes += bytes;
	if (slot->sec_stamp[b] != now)
	{
		slot->sec_stamp[b] = now;
		slot->sec_count[b] = 0;
	}
	slot->sec_count[b] += messages;
	SpinLockRelease(&slot->mutex);
}

/*
 * Two messages that differ only in their digits (timings, offsets, counts) or in the
 * "(after 12ms in state UP, 1 identical error(s) suppressed)" librdkafka appends.
 */
bool
tl_same_but_numbers(const char *a, const char *b)
{
	for (;;)
	{
		if (strncmp(a, " (after ", 8) == 0 && strncmp(b, " (after ", 8) == 0)
			return true;
		while (*a >= '0' && *a <= '9')
			a++;
		while (*b >= '0' && *b <= '9')
			b++;
		if (*a != *b)
			return false;
		if (*a == '\0')
			return true;
		a++;
		b++;
	}
}

/* Records msg as the slot's last error (without logging it); the previous one in prev. */
static void
slot_record_error(TlWorkerSlot *slot, const char *msg, char *prev, size_t prevlen)
{
	SpinLockAcquire(&slot->mutex);
	if (prev)
		strlcpy(prev, slot->last_error, prevlen);
	strlcpy(slot->last_error, msg, sizeof(slot->last_error));
	slot->last_error_at = GetCurrentTimestamp();
	SpinLockRelease(&slot->mutex);
}

/* Sets last_error; the server log gets each new kind of error once, not every repeat. */
void
tl_slot_error(TlWorkerSlot *slot, const char *fmt,...)
{
	va_list		args;
	char		buf[256];
	char		prev[256];

	va_start(args, fmt);
	vsnprintf(buf, sizeof(buf), fmt, args);
	va_end(args);

	slot_record_error(slot, buf, prev, sizeof(prev));
	if (!tl_same_but_numbers(prev, buf))
		ereport(LOG,
				(errmsg("tweetlake %s%s: %s", tl_role_name(slot->role),
						slot->role == TL_ROLE_CONSUMER ? psprintf(" %d", slot->index) : "", buf)));
}

/* Sets last_error only: for a caller that logs in its own way. */
void
tl_slot_error_quiet(TlWorkerSlot *slot, const char *msg)
{
	slot_record_error(slot, msg, NULL, 0);
}

/* A consumer's stall: failed attempts at its batch and since when (0, 0: none). */
void
tl_slot_set_stall(TlWorkerSlot *slot, int retries, TimestampTz since)
{
	SpinLockAcquire(&slot->mutex);
	slot->retries = retries;
	slot->stalled_since = since;
	SpinLockRelease(&slot->mutex);
}

/*
 * Checks the calling SQL function declares at most the max columns this library fills.
 * It may declare fewer: a database still on an older schema (before ALTER EXTENSION
 * tweetlake UPDATE) gets the columns it knows, since the tuple store takes only as many
 * values as its descriptor, which InitMaterializedSRF() builds from the declared type.
 */
static void
check_declared_columns(FunctionCallInfo fcinfo, int max)
{
	TupleDesc	tupdesc;

	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	if (tupdesc->natts > max)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("tweetlake library is older than the installed extension"),
				 errdetail("Function %s returns %d columns, but the library knows only %d.",
						   get_func_name(fcinfo->flinfo->fn_oid), tupdesc->natts, max),
				 errhint("Install the tweetlake library that matches the extension's version.")));
}

/*
 * tweetlake.worker_status(): one row per worker slot.  rate_10s counts the last ten whole
 * seconds (the current, partial second is left out so the figure does not dip).  retries
 * and stalled_since (schema 0.2.0 on) say how long a consumer has failed to store its batch;
 * updates, deletes and stale (0.5.0 on) what its batches did with versions of tweets.
 */
Datum
tweetlake_worker_status(PG_FUNCTION_ARGS)
{
#define WORKER_STATUS_COLS	17
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	int64		now = (int64) time(NULL);

	check_declared_columns(fcinfo, WORKER_STATUS_COLS);
	InitMaterializedSRF(fcinfo, 0);
	if (tl_shared == NULL)
		return (Datum) 0;

	for (int i = 0; i < TL_MAX_WORKERS; i++)
	{
		TlWorkerSlot *slot = &tl_shared->workers[i];
		TlWorkerSlot copy;
		Datum		values[WORKER_STATUS_COLS];
		bool		nulls[WORKER_STATUS_COLS] = {0};
		uint64		recent = 0;

		SpinLockAcquire(&slot->mutex);
		memcpy(&copy, slot, sizeof(copy));
		SpinLockRelease(&slot->mutex);
		if (copy.role == TL_ROLE_NONE)
			continue;

		for (int b = 0; b < TL_RATE_WINDOW; b++)
			if (copy.sec_stamp[b] < now && copy.sec_stamp[b] >= now - TL_RATE_WINDOW)
				recent += copy.sec_count[b];

		values[0] = CStringGetTextDatum(tl_role_name(copy.role));
		values[1] = Int32GetDatum(copy.index);
		values[2] = Int32GetDatum(copy.pid);
		nulls[2] = copy.pid == 0;
		values[3] = CStringGetTextDatum(copy.state);
		values[4] = Int64GetDatum((int64) copy.messages);
		values[5] = Int64GetDatum((int64) copy.bytes);
		values[6] = Float8GetDatum((double) recent / TL_RATE_WINDOW);
		values[7] = Int64GetDatum((int64) (copy.role == TL_ROLE_CONSUMER ? copy.dead_letters : copy.errors));
		values[8] = TimestampTzGetDatum(copy.started_at);
		values[9] = CStringGetTextDatum(copy.last_error);
		nulls[9] = copy.last_error[0] == '\0';
		values[10] = TimestampTzGetDatum(copy.last_error_at);
		nulls[10] = copy.last_error_at == 0;
		/* 0.2.0 */
		values[11] = Int32GetDatum(copy.retries);
		nulls[11] = copy.role != TL_ROLE_CONSUMER;
		values[12] = TimestampTzGetDatum(copy.stalled_since);
		nulls[12] = copy.stalled_since == 0;
		values[13] = Int64GetDatum((int64) copy.updates);
		values[14] = Int64GetDatum((int64) copy.deletes);
		values[15] = Int64GetDatum((int64) copy.stale);
		nulls[13] = nulls[14] = nulls[15] = copy.role != TL_ROLE_CONSUMER;
		/* 0.12.0 */
		values[16] = CStringGetTextDatum(copy.source);
		nulls[16] = copy.source[0] == '\0';
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}

/* tweetlake.partition_status(): the consumers' view of each partition of the topic. */
Datum
tweetlake_partition_status(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;

	check_declared_columns(fcinfo, 7);
	InitMaterializedSRF(fcinfo, 0);
	if (tl_shared == NULL)
		return (Datum) 0;

	LWLockAcquire(tl_shared->lock, LW_SHARED);
	for (int p = 0; p < TL_PARTITION_SLOTS; p++)
	{
		TlPartitionSlot *ps = &tl_shared->partitions[p];
		Datum		values[7];
		bool		nulls[7] = {0};

		if (ps->source[0] == '\0' || ps->updated_at == 0 || ps->topic[0] == '\0')
			continue;
		values[0] = CStringGetTextDatum(ps->topic);
		values[1] = Int32GetDatum(ps->partition);
		values[2] = Int32GetDatum(ps->consumer);
		nulls[2] = ps->consumer < 0;
		values[3] = Int64GetDatum(ps->next_offset);
		values[4] = Int64GetDatum(ps->high_watermark);
		nulls[4] = ps->high_watermark < 0;
		values[5] = TimestampTzGetDatum(ps->updated_at);
		/* 0.12.0 */
		values[6] = CStringGetTextDatum(ps->source);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	LWLockRelease(tl_shared->lock);
	return (Datum) 0;
}
