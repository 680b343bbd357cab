/*
 * launcher.c - the supervisor: a static background worker (registered from _PG_init) that
 * connects to tweetlake.database, waits for the extension, and keeps the embedded broker and
 * each enabled source's generator and consumers (tweetlake.sources; the default source is
 * postgresql.conf's settings) running as wanted, restarting any that stop.  A source's row
 * is read every second: its workers start, restart with new settings, or stop when it is
 * dropped or disabled.  tweetlake.start() / tweetlake.stop() change what is wanted.
 *
 * The children are dynamic workers that are never restarted by the postmaster: only the
 * launcher starts them, so no crash-and-restart cycle can leave two of the same running.
 */
#include "tweetlake.h"

#include "access/htup_details.h"
#include "access/xact.h"
#include "executor/spi.h"
#include "catalog/pg_authid.h"
#include "catalog/pg_extension.h"
#include "commands/extension.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/proc.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"

PG_FUNCTION_INFO_V1(tweetlake_start);
PG_FUNCTION_INFO_V1(tweetlake_stop);

/* A stopped child is started again after this long (a crash loop stays slow). */
#define TL_RESTART_DELAY_MS		5000
#define TL_EXTENSION_CHECK_MS	5000
/* How often bronze's day partitions are made ahead and expired ones dropped. */
#define TL_MAINTENANCE_MS		60000

typedef struct Child
{
	bool		used;			/* the entry holds a worker, running or not */
	bool		wanted;			/* in this pass of the loop */
	TlRole		role;
	int			index;
	char		source[TL_SOURCE_NAMELEN];	/* "" for the broker */
	int			nconsumers;		/* of its source, for a consumer */
	BackgroundWorkerHandle *handle;
	TimestampTz last_start;
} Child;

static Child children[TL_MAX_WORKERS];

/* What each source's workers were last started with. */
typedef struct SourceRun
{
	bool		used;
	bool		seen;			/* in this pass */
	char		name[TL_SOURCE_NAMELEN];
	char	   *settings;		/* TopMemoryContext */
	int			consumers;
} SourceRun;

static SourceRun runs[TL_MAX_WORKERS];

/* The sources last read, in TopMemoryContext (kept when a reading fails). */
static TlSourceSpec *specs = NULL;
static int	nspecs = 0;
static MemoryContext specs_cxt = NULL;

/* The role the consumers run as (InvalidOid: the bootstrap superuser), and why. */
typedef enum WorkerRoleState
{
	WORKER_ROLE_UNKNOWN = 0,
	WORKER_ROLE_OK,
	WORKER_ROLE_SUPERUSER,		/* used, with a warning */
	WORKER_ROLE_MISSING,		/* schema older than 0.2.0 */
	WORKER_ROLE_NOLOGIN			/* PG15 bgworkers need rolcanlogin */
} WorkerRoleState;

static Oid	worker_role = InvalidOid;
static WorkerRoleState worker_role_state = WORKER_ROLE_UNKNOWN;

void
tl_register_launcher(void)
{
	BackgroundWorker worker;

	memset(&worker, 0, sizeof(worker));
	worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
	worker.bgw_restart_time = 5;	/* also while tweetlake.database does not
									 * exist yet */
	strlcpy(worker.bgw_library_name, "tweetlake", BGW_MAXLEN);
	strlcpy(worker.bgw_function_name, "tweetlake_launcher_main", BGW_MAXLEN);
	strlcpy(worker.bgw_name, "tweetlake launcher", BGW_MAXLEN);
	strlcpy(worker.bgw_type, "tweetlake launcher", BGW_MAXLEN);
	RegisterBackgroundWorker(&worker);
}

void
tl_wake_launcher(void)
{
	Latch	   *latch;

	LWLockAcquire(tl_shared->lock, LW_SHARED);
	latch = tl_shared->launcher_latch;
	LWLockRelease(tl_shared->lock);
	if (latch)
		SetLatch(latch);
}

/*
 * The tweetlake_worker role, looked up in the catalogs (inside the caller's transaction):
 * its OID, or InvalidOid when the consumers cannot use it, with the reason in *state.
 */
static Oid
lookup_worker_role(WorkerRoleState *state)
{
	HeapTuple	tup = SearchSysCache1(AUTHNAME, CStringGetDatum(TL_WORKER_ROLE));
	Form_pg_authid form;
	Oid			roleoid;

	if (!HeapTupleIsValid(tup))
	{
		*state = WORKER_ROLE_MISSING;
		return InvalidOid;
	}
	form = (Form_pg_authid) GETSTRUCT(tup);
	roleoid = form->oid;
	if (!form->rolcanlogin)
	{
		*state = WORKER_ROLE_NOLOGIN;
		roleoid = InvalidOid;
	}
	else
		*state = form->rolsuper ? WORKER_ROLE_SUPERUSER : WORKER_ROLE_OK;
	ReleaseSysCache(tup);
	return roleoid;
}

/* Says once, when it changes, which role the consumers run as if it is not the right one. */
static void
report_worker_role(WorkerRoleState state)
{
	if (state == worker_role_state)
		return;
	worker_role_state = state;
	switch (state)
	{
		case WORKER_ROLE_MISSING:
			ereport(WARNING,
					(errcode(ERRCODE_UNDEFINED_OBJECT),
					 errmsg("role \"%s\" does not exist", TL_WORKER_ROLE),
					 errdetail("The tweetlake consumers run as the bootstrap superuser until it does."),
					 errhint("Run ALTER EXTENSION tweetlake UPDATE in database \"%s\".",
							 tweetlake_database)));
			break;
		case WORKER_ROLE_NOLOGIN:
			ereport(WARNING,
					(errcode(ERRCODE_INVALID_AUTHORIZATION_SPECIFICATION),
					 errmsg("role \"%s\" is not permitted to log in", TL_WORKER_ROLE),
					 errdetail("The tweetlake consumers run as the bootstrap superuser until it is."),
					 errhint("Run ALTER ROLE %s LOGIN: PostgreSQL 15 lets a background worker connect only as a role that may log in.", TL_WORKER_ROLE)));
			break;
		case WORKER_ROLE_SUPERUSER:
			ereport(WARNING,
					(errcode(ERRCODE_WARNING),
					 errmsg("role \"%s\" is a superuser", TL_WORKER_ROLE),
					 errdetail("The tweetlake consumers run as this role and need no more than the grants of the extension."),
					 errhint("Run ALTER ROLE %s NOSUPERUSER.", TL_WORKER_ROLE)));
			break;
		case WORKER_ROLE_OK:
		case WORKER_ROLE_UNKNOWN:
			break;
	}
}

/*
 * Whether the extension exists in this database; when it does, also the role the
 * consumers should run as (*roleoid, InvalidOid for the bootstrap superuser).
 */
static bool
extension_installed(Oid *roleoid)
{
	bool		installed;
	WorkerRoleState state = WORKER_ROLE_UNKNOWN;

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	PushActiveSnapshot(GetTransactionSnapshot());
	installed = OidIsValid(get_extension_oid("tweetlake", true));
	*roleoid = installed ? lookup_worker_role(&state) : InvalidOid;
	PopActiveSnapshot();
	CommitTransactionCommand();
	if (installed)
		report_worker_role(state);
	return installed;
}

/* The run itself, in maintain_partitions()'s subtransaction; *arg: the function exists. */
static void
maintain_partitions_work(void *arg)
{
	bool	   *found = (bool *) arg;
	bool		isnull;

	if (SPI_execute("SELECT pg_catalog.to_regprocedure("
					"'tweetlake.maintain_partitions(pg_catalog.interval, pg_catalog.int4)') IS NOT NULL",
					true, 1) != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "could not look up tweetlake.maintain_partitions()");
	*found = DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	if (!*found)
		return;
	if (SPI_execute("SELECT partition, action FROM tweetlake.maintain_partitions()",
					false, 0) != SPI_OK_SELECT)
		elog(ERROR, "tweetlake.maintain_partitions() failed");
	for (uint64 i = 0; i < SPI_processed; i++)
		ereport(LOG,
				(errmsg("tweetlake launcher: partition %s: %s",
						SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1),
						SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 2))));
}

/*
 * tweetlake.maintain_partitions() (schema 0.6.0 on): today's and tomorrow's day partitions
 * of bronze, expired days dropped (tweetlake.bronze_retention).  What it did goes to the
 * log; an error (a partition in use, say) is logged as a WARNING and shown in the
 * launcher's last_error, and the launcher goes on: the next run tries again.  False when
 * the schema is older than 0.6.0 and has no partitions to keep.
 */
static bool
maintain_partitions(TlWorkerSlot *slot)
{
	bool		found = true;
	ErrorData  *e;

	pgstat_report_activity(STATE_RUNNING, "SELECT tweetlake.maintain_partitions()");
	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	PushActiveSnapshot(GetTransactionSnapshot());
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	e = tl_try_subtransaction(maintain_partitions_work, &found, CurrentMemoryContext);
	if (e != NULL)
	{
		ereport(WARNING,
				(errcode(e->sqlerrcode),
				 errmsg("tweetlake launcher: bronze partition maintenance failed: %s", e->message),
				 errhint("It is tried again every minute; SELECT * FROM tweetlake.maintain_partitions() runs it by hand.")));
		tl_slot_error(slot, "partition maintenance: %s", e->message);
		FreeErrorData(e);
	}
	SPI_finish();
	PopActiveSnapshot();
	CommitTransactionCommand();
	pgstat_report_activity(STATE_IDLE, NULL);
	return found;
}

static bool
child_running(Child *c)
{
	pid_t		pid;

	return c->handle != NULL && GetBackgroundWorkerPid(c->handle, &pid) != BGWH_STOPPED;
}

/* The entry for a worker; with create, a new one if it has none (NULL when full). */
static Child *
find_child(TlRole role, const char *source, int index, bool create)
{
	Child	   *free_entry = NULL;

	for (int i = 0; i < lengthof(children); i++)
	{
		Child	   *c = &children[i];

		if (!c->used)
		{
			if (free_entry == NULL)
				free_entry = c;
		}
		else if (c->role == role && c->index == index && strcmp(c->source, source) == 0)
			return c;
	}
	if (!create || free_entry == NULL)
		return NULL;
	memset(free_entry, 0, sizeof(*free_entry));
	free_entry->used = true;
	free_entry->role = role;
	free_entry->index = index;
	strlcpy(free_entry->source, source, sizeof(free_entry->source));
	return free_entry;
}

static void
start_child(Child *c)
{
	BackgroundWorker worker;
	const char *fn = NULL;
	bool		is_default = strcmp(c->source, TL_DEFAULT_SOURCE) == 0;

	memset(&worker, 0, sizeof(worker));
	switch (c->role)
	{
		case TL_ROLE_BROKER:
			fn = "tweetlake_broker_main";
			break;
		case TL_ROLE_GENERATOR:
			fn = "tweetlake_generator_main";
			break;
		case TL_ROLE_CONSUMER:
			fn = "tweetlake_consumer_main";
			break;
		default:
			elog(ERROR, "unexpected tweetlake worker role %d", c->role);
	}
	/* every child has a backend entry, so pg_stat_activity shows it by name */
	worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
	worker.bgw_restart_time = BGW_NEVER_RESTART;
	strlcpy(worker.bgw_library_name, "tweetlake", BGW_MAXLEN);
	strlcpy(worker.bgw_function_name, fn, BGW_MAXLEN);
	if (c->role == TL_ROLE_CONSUMER && is_default)
		snprintf(worker.bgw_name, BGW_MAXLEN, "tweetlake consumer %d", c->index);
	else if (c->role == TL_ROLE_CONSUMER)
		snprintf(worker.bgw_name, BGW_MAXLEN, "tweetlake consumer %d of source %s", c->index, c->source);
	else if (c->role == TL_ROLE_GENERATOR && !is_default)
		snprintf(worker.bgw_name, BGW_MAXLEN, "tweetlake generator of source %s", c->source);
	else
		snprintf(worker.bgw_name, BGW_MAXLEN, "tweetlake %s", tl_role_name(c->role));
	snprintf(worker.bgw_type, BGW_MAXLEN, "tweetlake %s", tl_role_name(c->role));
	worker.bgw_main_arg = Int32GetDatum(c->index);
	if (c->role == TL_ROLE_CONSUMER || c->role == TL_ROLE_GENERATOR)
	{
		TlConsumerArgs args;

		StaticAssertStmt(sizeof(TlConsumerArgs) <= BGW_EXTRALEN, "TlConsumerArgs too large");
		memset(&args, 0, sizeof(args));
		args.nconsumers = c->nconsumers;
		args.dboid = MyDatabaseId;
		args.roleoid = worker_role;
		strlcpy(args.source, c->source, sizeof(args.source));
		memcpy(worker.bgw_extra, &args, sizeof(args));
	}
	worker.bgw_notify_pid = MyProcPid;

	c->last_start = GetCurrentTimestamp();
	if (c->handle)
		pfree(c->handle);
	c->handle = NULL;
	if (!RegisterDynamicBackgroundWorker(&worker, &c->handle))
		ereport(WARNING,
				(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
				 errmsg("could not start %s", worker.bgw_name),
				 errhint("Raise max_worker_processes: SELECT tweetlake.source_workers_needed() says how many tweetlake needs, besides what parallel queries take.")));
}

static void
stop_child(Child *c)
{
	if (c->handle)
	{
		TerminateBackgroundWorker(c->handle);
		(void) WaitForBackgroundWorkerShutdown(c->handle);
		pfree(c->handle);
		c->handle = NULL;
	}
}

/* Brings one child to the wanted state; a stopped child waits out the restart delay. */
static void
reconcile(Child *c, bool wanted)
{
	if (!wanted)
	{
		stop_child(c);
		return;
	}
	if (child_running(c))
		return;
	if (c->handle == NULL ||
		TimestampDifferenceExceeds(c->last_start, GetCurrentTimestamp(), TL_RESTART_DELAY_MS))
		start_child(c);
}

/* Stops the workers of a source (of one role, or every role for TL_ROLE_NONE). */
static void
stop_source(const char *source, TlRole role)
{
	for (int i = 0; i < lengthof(children); i++)
		if (children[i].used && strcmp(children[i].source, source) == 0 &&
			(role == TL_ROLE_NONE || children[i].role == role))
			stop_child(&children[i]);
}

/* What read_sources_work reads into: a context of its own, kept only if the reading works. */
typedef struct SourcesRead
{
	MemoryContext cxt;
	TlSourceSpec *specs;
	int			n;
} SourcesRead;

/* Reads tweetlake.sources, in tl_try_subtransaction. */
static void
read_sources_work(void *arg)
{
	SourcesRead *r = (SourcesRead *) arg;

	r->n = tl_sources_read(&r->specs, r->cxt);
}

/*
 * The sources to run, into specs.  A reading that fails (the extension being dropped, say)
 * keeps the last one, with the error in the launcher's last_error.
 */
static void
read_sources(TlWorkerSlot *slot)
{
	SourcesRead r = {0};
	ErrorData  *e;

	r.cxt = AllocSetContextCreate(TopMemoryContext, "tweetlake sources", ALLOCSET_SMALL_SIZES);
	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	PushActiveSnapshot(GetTransactionSnapshot());
	e = tl_try_subtransaction(read_sources_work, &r, CurrentMemoryContext);

	/*
	 * the error lives in the transaction's memory: reported before the commit
	 * frees it
	 */
	if (e != NULL)
	{
		tl_slot_error(slot, "reading tweetlake.sources: %s", e->message);
		FreeErrorData(e);
		MemoryContextDelete(r.cxt);
	}
	PopActiveSnapshot();
	CommitTransactionCommand();
	if (e != NULL)
		return;
	if (specs_cxt != NULL)
		MemoryContextDelete(specs_cxt);
	specs_cxt = r.cxt;
	specs = r.specs;
	nspecs = r.n;
}

static SourceRun *
find_run(const char *name)
{
	SourceRun  *free_entry = NULL;

	for (int i = 0; i < lengthof(runs); i++)
	{
		if (!runs[i].used)
		{
			if (free_entry == NULL)
				free_entry = &runs[i];
		}
		else if (strcmp(runs[i].name, name) == 0)
			return &runs[i];
	}
	if (free_entry == NULL)
		return NULL;
	memset(free_entry, 0, sizeof(*free_entry));
	free_entry->used = true;
	strlcpy(free_entry->name, name, sizeof(free_entry->name));
	return free_entry;
}

/*
 * Marks the workers each source wants in this pass (none while the pipeline or the source
 * is off), restarting a source's workers whose settings changed, and its consumers when
 * their number did (a new spread of partitions).  A source gone from the table has its
 * workers stopped and its rows of tweetlake.status and consumer_lag forgotten.  Returns how
 * many consumers are wanted, and the number of sources running in *nsources.
 */
static int
plan_sources(bool pipeline_on, int *nsources)
{
	int			total = 0;

	*nsources = 0;
	for (int i = 0; i < lengthof(runs); i++)
		runs[i].seen = false;
	for (int i = 0; i < nspecs; i++)
	{
		TlSourceSpec *sp = &specs[i];
		SourceRun  *run = find_run(sp->name);
		bool		on = pipeline_on && sp->enabled;
		int			want = on ? Min(sp->consumers, TL_MAX_CONSUMERS) : 0;

		if (run == NULL)
			continue;
		run->seen = true;
		if (run->settings == NULL || strcmp(run->settings, sp->settings) != 0)
		{
			if (run->settings != NULL)
			{
				ereport(LOG,
						(errmsg("tweetlake launcher: source \"%s\" changed, restarting its workers", sp->name)));
				stop_source(sp->name, TL_ROLE_NONE);
				pfree(run->settings);
			}
			run->settings = MemoryContextStrdup(TopMemoryContext, sp->settings);
		}
		if (want > 0 && want != run->consumers)
		{
			stop_source(sp->name, TL_ROLE_CONSUMER);
			run->consumers = want;
		}
		for (int c = 0; c < want; c++)
		{
			Child	   *child = find_child(TL_ROLE_CONSUMER, sp->name, c, true);

			if (child == NULL)
				break;
			child->wanted = true;
			child->nconsumers = want;
		}
		if (on && sp->generator_rate != 0)
		{
			Child	   *child = find_child(TL_ROLE_GENERATOR, sp->name, 0, true);

			if (child)
				child->wanted = true;
		}
		total += want;
		if (on)
			(*nsources)++;
	}
	for (int i = 0; i < lengthof(runs); i++)
		if (runs[i].used && !runs[i].seen)
		{
			ereport(LOG,
					(errmsg("tweetlake launcher: source \"%s\" was dropped, stopping its workers", runs[i].name)));
			stop_source(runs[i].name, TL_ROLE_NONE);
			tl_partition_slots_forget(runs[i].name);
			if (runs[i].settings)
				pfree(runs[i].settings);
			memset(&runs[i], 0, sizeof(runs[i]));
		}
	return total;
}

static void
stop_all_children(int code, Datum arg)
{
	for (int i = lengthof(children) - 1; i >= 0; i--)
		if (children[i].used && children[i].handle)
			TerminateBackgroundWorker(children[i].handle);
	if (tl_shared)
	{
		LWLockAcquire(tl_shared->lock, LW_EXCLUSIVE);
		if (tl_shared->launcher_pid == MyProcPid)
		{
			tl_shared->launcher_pid = 0;
			tl_shared->launcher_latch = NULL;
		}
		LWLockRelease(tl_shared->lock);
	}
}

void
tweetlake_launcher_main(Datum arg)
{
	TlWorkerSlot *slot;
	bool		installed = false;
	TimestampTz last_check = 0;
	TimestampTz next_maintenance = 0;
	bool		pipeline_was_on = false;

	pqsignal(SIGTERM, SignalHandlerForShutdownRequest);
	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	BackgroundWorkerUnblockSignals();
	BackgroundWorkerInitializeConnection(tweetlake_database, NULL, 0);

	slot = tl_slot_acquire(TL_ROLE_LAUNCHER, "", 0);
	LWLockAcquire(tl_shared->lock, LW_EXCLUSIVE);
	tl_shared->launcher_pid = MyProcPid;
	tl_shared->launcher_latch = MyLatch;
	LWLockRelease(tl_shared->lock);

	memset(children, 0, sizeof(children));
	memset(runs, 0, sizeof(runs));
	before_shmem_exit(stop_all_children, (Datum) 0);

	while (!ShutdownRequestPending)
	{
		bool		enabled;
		bool		embedded;
		char		state[64];
		int			wanted_consumers;
		int			nsources = 0;
		Child	   *broker;

		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
			/* a new tweetlake.bronze_retention applies now */
			next_maintenance = 0;
		}

		if (!installed || TimestampDifferenceExceeds(last_check, GetCurrentTimestamp(), TL_EXTENSION_CHECK_MS))
		{
			Oid			roleoid;

			pgstat_report_activity(STATE_RUNNING, "checking for the tweetlake extension");
			installed = extension_installed(&roleoid);
			last_check = GetCurrentTimestamp();
			pgstat_report_activity(STATE_IDLE, NULL);

			/*
			 * A new role (ALTER EXTENSION tweetlake UPDATE created it, or it
			 * was dropped): running consumers, and the generators of sources
			 * other than the default one (which connects to no database),
			 * still run as the old one, so start them again.
			 */
			if (installed && roleoid != worker_role)
			{
				bool		any = false;

				for (int i = 0; i < lengthof(children); i++)
					if (children[i].used && children[i].handle &&
						(children[i].role == TL_ROLE_CONSUMER ||
						 (children[i].role == TL_ROLE_GENERATOR &&
						  strcmp(children[i].source, TL_DEFAULT_SOURCE) != 0)))
					{
						stop_child(&children[i]);
						any = true;
					}
				if (any && OidIsValid(roleoid))
					ereport(LOG,
							(errmsg("tweetlake launcher: restarting the consumers as role \"%s\"",
									TL_WORKER_ROLE)));
				else if (any)
					ereport(LOG,
							(errmsg("tweetlake launcher: restarting the consumers as the bootstrap superuser")));
				worker_role = roleoid;
			}
		}

		LWLockAcquire(tl_shared->lock, LW_SHARED);
		enabled = tl_shared->enabled;
		LWLockRelease(tl_shared->lock);
		embedded = tweetlake_brokers == NULL || tweetlake_brokers[0] == '\0';

		/* the sources, read every pass (a second apart) */
		if (installed)
		{
			pgstat_report_activity(STATE_RUNNING, "reading tweetlake.sources");
			read_sources(slot);
			pgstat_report_activity(STATE_IDLE, NULL);
		}
		else
			nspecs = 0;
		for (int i = 0; i < lengthof(children); i++)
			children[i].wanted = false;
		wanted_consumers = plan_sources(installed && enabled, &nsources);

		/*
		 * Bronze's partitions for today exist before a consumer writes: made
		 * when the pipeline starts and every minute after.  None are made or
		 * dropped while the pipeline is off (a restore may be under way).
		 */
		if (installed && enabled &&
			(!pipeline_was_on || GetCurrentTimestamp() >= next_maintenance))
		{
			/*
			 * a schema before 0.6.0: look again as often as for the
			 * extension, so that ALTER EXTENSION tweetlake UPDATE takes
			 * effect at once
			 */
			bool		found = maintain_partitions(slot);

			next_maintenance = TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
														   found ? TL_MAINTENANCE_MS : TL_EXTENSION_CHECK_MS);
		}

		/*
		 * at each start of the pipeline (tweetlake.start(), CREATE EXTENSION)
		 * first
		 */
		pipeline_was_on = installed && enabled;

		/*
		 * The broker starts first and stops last: a generator or consumer
		 * stopping (DROP EXTENSION, tweetlake.stop()) still reaches it to
		 * flush or finish its batch.
		 */
		broker = find_child(TL_ROLE_BROKER, "", 0, true);
		if (installed && embedded)
			reconcile(broker, true);
		for (int i = 0; i < lengthof(children); i++)
		{
			Child	   *c = &children[i];

			if (!c->used || c->role == TL_ROLE_BROKER)
				continue;
			reconcile(c, c->wanted);
			if (!c->wanted && c->handle == NULL)
				c->used = false;
		}
		if (!(installed && embedded))
			reconcile(broker, false);

		if (!installed)
			snprintf(state, sizeof(state), "waiting for CREATE EXTENSION tweetlake");
		else if (!enabled)
			snprintf(state, sizeof(state), "pipeline stopped (tweetlake.start() to start)");
		else if (nsources <= 1)
			snprintf(state, sizeof(state), "supervising %d consumer%s", wanted_consumers,
					 wanted_consumers == 1 ? "" : "s");
		else
			snprintf(state, sizeof(state), "supervising %d consumers of %d sources",
					 wanted_consumers, nsources);
		tl_slot_set_state(slot, state);

		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 1000L, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
	}
	proc_exit(0);
}

static void
set_enabled(bool enabled)
{
	tl_require_shared();
	LWLockAcquire(tl_shared->lock, LW_EXCLUSIVE);
	tl_shared->enabled = enabled;
	LWLockRelease(tl_shared->lock);
	tl_wake_launcher();
}

/* tweetlake.start(): run the generator and consumers (until tweetlake.stop() or restart). */
Datum
tweetlake_start(PG_FUNCTION_ARGS)
{
	set_enabled(true);
	PG_RETURN_VOID();
}

/* tweetlake.stop(): stop the generator and consumers; each finishes its batch first. */
Datum
tweetlake_stop(PG_FUNCTION_ARGS)
{
	set_enabled(false);
	PG_RETURN_VOID();
}
