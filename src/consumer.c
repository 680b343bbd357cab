/*
 * consumer.c - consumer background worker: reads its share of the topic's partitions with
 * librdkafka and writes each batch into bronze.tweets (the triggers take it on to silver
 * and gold) in ONE transaction with the next offsets in tweetlake.offsets.  It resumes
 * from tweetlake.offsets, never from offsets committed to the broker, so after any crash
 * nothing is lost and nothing is stored twice.  Started by the launcher for a source
 * (source.c), as many as the source has consumers; consumer i takes the partitions p with
 * p % consumers == i, and keeps its offsets under its source's name.  It runs as the role
 * tweetlake_worker, which may write bronze and tweetlake.offsets only.
 *
 * The offsets rows also fence: a batch locks its partitions' rows and checks they still
 * hold what this consumer last wrote, so even two consumers on one partition (say, while
 * a restarted launcher replaces its children) cannot both store the same messages.
 *
 * No message stops ingest: a batch that fails on its content is written again with each
 * chunk of messages in a subtransaction, bisecting failing chunks down to the messages
 * that fail, which go to bronze.dead_letters with the error.  Failures of the environment
 * (lock, connection, resources, privileges) are retried, with a growing delay.
 */
#include "tweetlake.h"

#include <librdkafka/rdkafka.h>
#ifdef __GLIBC__
#endif

#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_type_d.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/pmsignal.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/resowner.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

/* No row yet / read the partition from its beginning. */
#define OFFSET_FROM_START	(-1)

/* A batch that cannot be stored is tried again after 1 s, 2 s, 4 s ... at most 30 s. */
#define RETRY_DELAY_MIN_MS	1000L
#define RETRY_DELAY_MAX_MS	30000L
/* The same stall is logged again after this long. */
#define STALL_LOG_EVERY_MS	60000L
/* Isolating: messages per subtransaction before a failing chunk is bisected. */
#define ISOLATE_CHUNK		1024
/* Longest a stalled consumer spends asking the broker for its high watermarks. */
#define WATERMARK_QUERY_MS	1000

typedef struct Consumer
{
	int			index;
	int			nconsumers;
	char		name[TL_SOURCE_NAMELEN + 48];	/* in messages: "tweetlake
												 * consumer 0 of source ..." */
	bool		by_source;		/* tweetlake.offsets has a source column
								 * (0.12.0) */
	char	   *tenant;			/* whose rows it writes: its source's tenant
								 * (0.13.0); NULL before */
	TlWorkerSlot *slot;
	TlKafkaClient client;		/* error reporting and the settings rk was
								 * built from */
	rd_kafka_t *rk;
	rd_kafka_queue_t *queue;
	char	   *topic;
	int			npartitions;	/* of the topic */
	int			nmine;
	int32	   *mine;			/* partitions assigned to this consumer */
	int64	   *committed;		/* per partition: next offset as stored in
								 * Postgres */
	int64	   *resume;			/* per partition: where to restart after the
								 * broker lost the stored offset, or -1 */
	bool		reconnect;		/* re-assign (resume[]) after the batch in
								 * hand */
	char		state[64];		/* what tweetlake.status shows while consuming */

	/*
	 * messages taken from librdkafka that the byte cap kept out of the last
	 * batch
	 */
	rd_kafka_message_t **pending;
	int			npending;
	int			pending_pos;	/* the next one to use */
	int			pending_cap;

	/* a stall: the batch in hand could not be stored */
	int			retries;		/* failed attempts so far */
	TimestampTz stalled_since;	/* the first of them; 0 = not stalled */
	long		retry_delay_ms; /* before the next attempt */
	char		stall_logged[256];	/* the error last logged, and when */
	TimestampTz stall_logged_at;

	MemoryContext batch_ctx;
	TimestampTz trimmed_at;		/* free memory last given back to the kernel */
	TimestampTz batch_done_at;	/* the last batch ended */
} Consumer;

/*
 * One batch sorted for writing: messages for bronze.tweets, messages for
 * bronze.dead_letters, and the offsets rows it moves (from what this consumer last
 * committed to the offset after its last message).
 */
typedef struct Batch
{
	int			nrows;			/* bronze.tweets */
	rd_kafka_message_t **rows;	/* their raw: the payload (payload_array) */
	bool	   *raw_nulls;		/* a tombstone: raw NULL ... */
	Datum	   *keys;			/* ... and its key in kafka_key */
	int			ntombstones;
	int32	   *parts;
	int64	   *offs;
	Datum	   *stamps;
	bool	   *stamp_nulls;

	int			ndead;			/* bronze.dead_letters */
	int			nisolated;		/* of them, rows that failed on their own */
	Datum	   *dl_raws;
	Datum	   *dl_reasons;
	int32	   *dl_parts;
	int64	   *dl_offs;

	int			ntouched;		/* tweetlake.offsets rows */
	int32	   *touched;
	int64	   *touched_from;
	int64	   *touched_to;

	int64	   *next;			/* per partition of cons.mine: next offset
								 * after the batch */
	uint64		bytes;
} Batch;

static Consumer cons;

static int
partition_index(int32 partition)
{
	for (int i = 0; i < cons.nmine; i++)
		if (cons.mine[i] == partition)
			return i;
	return -1;
}

/* Hands back the messages that were taken from librdkafka but not used. */
static void
drop_pending(void)
{
	for (int k = cons.pending_pos; k < cons.npending; k++)
		rd_kafka_message_destroy(cons.pending[k]);
	cons.npending = cons.pending_pos = 0;
}

static void
disconnect(void)
{
	drop_pending();
	if (cons.queue)
		rd_kafka_queue_destroy(cons.queue);
	if (cons.rk)
	{
		/*
		 * No group membership and no broker-side offsets to commit, so no
		 * consumer close: rd_kafka_consumer_close() can block on partitions
		 * whose fetch stopped with an offset error, and the launcher waits
		 * for this process to exit.  No rd_kafka_assign(NULL) before it
		 * either: an unassign shortly after an assign (a consumer stopped
		 * just after it started or re-read a batch, as DROP EXTENSION does to
		 * a running pipeline) can make librdkafka 2.0 stop a partition twice
		 * and abort on an assertion (librdkafka issue 5573); destroy stops
		 * the fetchers itself.
		 */
		rd_kafka_destroy_flags(cons.rk, RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE);
	}
	cons.queue = NULL;
	cons.rk = NULL;
}

static void
consumer_exit(int code, Datum arg)
{
	disconnect();
}

/* Runs one SQL statement with the given arguments (nulls as in SPI: 'n' = NULL). */
static int
run_sql_nulls(const char *sql, int nargs, Oid *types, Datum *values, const char *nulls)
{
	int			rc = SPI_execute_with_args(sql, nargs, types, values, nulls, false, 0);

	if (rc < 0)
		elog(ERROR, "SPI_execute_with_args failed (%s) running: %s", SPI_result_code_string(rc), sql);
	return rc;
}

static int
run_sql(const char *sql, int nargs, Oid *types, Datum *values)
{
	return run_sql_nulls(sql, nargs, types, values, NULL);
}

static Datum
int4_array(int32 *v, int n)
{
	Datum	   *d = palloc(sizeof(Datum) * Max(n, 1));

	for (int i = 0; i < n; i++)
		d[i] = Int32GetDatum(v[i]);
	return PointerGetDatum(construct_array(d, n, INT4OID, 4, true, TYPALIGN_INT));
}

static Datum
int8_array(int64 *v, int n)
{
	Datum	   *d = palloc(sizeof(Datum) * Max(n, 1));

	for (int i = 0; i < n; i++)
		d[i] = Int64GetDatum(v[i]);
	return PointerGetDatum(construct_array(d, n, INT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
}

/*
 * Publishes this consumer's partitions (next offset, high watermark) for
 * tweetlake.consumer_lag.  The watermark is the one librdkafka cached from fetch
 * responses; with ask_broker, a partition with none cached asks the broker (within
 * WATERMARK_QUERY_MS in all), so a stalled consumer still shows its lag.  An unknown
 * watermark keeps the last one published.
 */
static void
publish_progress(bool ask_broker)
{
	int64		hw[TL_MAX_PARTITIONS];
	TlPartitionSlot *slots[TL_MAX_PARTITIONS];
	TimestampTz deadline = GetCurrentTimestamp() + WATERMARK_QUERY_MS * 1000L;

	for (int i = 0; i < cons.nmine; i++)
	{
		int64		lo,
					hi;

		hw[i] = -1;
		if (cons.rk == NULL)
			continue;
		if (rd_kafka_get_watermark_offsets(cons.rk, cons.topic, cons.mine[i], &lo, &hi) == 0 && hi >= 0)
			hw[i] = hi;
		else if (ask_broker && GetCurrentTimestamp() < deadline &&
				 rd_kafka_query_watermark_offsets(cons.rk, cons.topic, cons.mine[i], &lo, &hi,
												  WATERMARK_QUERY_MS / 4) == 0)
			hw[i] = hi;
	}

	LWLockAcquire(tl_shared->lock, LW_EXCLUSIVE);
	tl_partition_slots(tl_source.name, cons.mine, cons.nmine, slots, true);
	for (int i = 0; i < cons.nmine; i++)
	{
		TlPartitionSlot *ps = slots[i];

		if (ps == NULL)
			continue;			/* more partitions than tweetlake.consumer_lag
								 * shows */
		strlcpy(ps->topic, cons.topic, sizeof(ps->topic));
		ps->consumer = cons.index;
		ps->next_offset = Max(cons.committed[i], 0);
		if (hw[i] >= 0)
			ps->high_watermark = hw[i];
		ps->updated_at = GetCurrentTimestamp();
	}
	LWLockRelease(tl_shared->lock);
}

/*
 * Whether tweetlake.offsets keeps offsets per source (schema 0.12.0 on), inside a
 * transaction.  A consumer started before ALTER EXTENSION tweetlake UPDATE learns it here,
 * at its next reading of the offsets; until then its statements, without the source,
 * still find the default source's rows, the only ones an update leaves.
 */
static bool
offsets_by_source(void)
{
	Oid			relid = get_relname_relid("offsets", get_namespace_oid("tweetlake", true));

	return OidIsValid(relid) && get_attnum(relid, "source") != InvalidAttrNumber;
}

/*
 * The tenant this consumer's rows are for: its source's (tweetlake.sources.tenant), or
 * NULL where bronze has no tenant (a schema before 0.13.0).  Read with the offsets, so a
 * consumer started before ALTER EXTENSION tweetlake UPDATE learns it there too; a change
 * of the source's tenant restarts the consumers (tl_sources_read).
 */
static char *
read_tenant(void)
{
	Oid			bronze = get_relname_relid("tweets", get_namespace_oid("bronze", true));
	Oid			types[1] = {TEXTOID};
	Datum		values[1];

	if (!OidIsValid(bronze) || get_attnum(bronze, "tenant") == InvalidAttrNumber)
		return NULL;
	values[0] = CStringGetTextDatum(tl_source.name);
	run_sql("SELECT tenant FROM tweetlake.sources WHERE name OPERATOR(pg_catalog.=) $1",
			1, types, values);
	if (SPI_processed != 1)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("source \"%s\" does not exist", tl_source.name),
				 errdetail("It was dropped after its worker was started.")));
	{
		bool		isnull;
		Datum		d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);

		return MemoryContextStrdup(TopMemoryContext, isnull ? "default" : TextDatumGetCString(d));
	}
}

/*
 * The condition on this consumer's source (parameter $param, of the table named alias) that
 * starts a statement's WHERE on tweetlake.offsets where the schema keeps offsets per
 * source, and nothing before it.
 */
static const char *
source_cond(const char *alias, int param)
{
	if (!cons.by_source)
		return "";
	return psprintf("%ssource OPERATOR(pg_catalog.=) $%d AND ", alias, param);
}

/*
 * Reads (creating them if new) this consumer's rows of tweetlake.offsets into
 * cons.committed, with the cluster id check: offsets stored against another Kafka cluster
 * (an embedded broker that came back empty, a topic re-created) would point into nothing.
 */
static void
load_offsets(const char *cluster_id)
{
	Oid			types[4] = {TEXTOID, INT4ARRAYOID, TEXTOID, TEXTOID};
	Datum		values[4];
	char		nulls[5] = {' ', ' ', cluster_id ? ' ' : 'n', ' ', '\0'};

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	SPI_connect();
	PushActiveSnapshot(GetTransactionSnapshot());
	pgstat_report_activity(STATE_RUNNING, "reading tweetlake.offsets");

	/*
	 * the schema's offsets, as they are now (ALTER EXTENSION ... UPDATE may
	 * have run)
	 */
	cons.by_source = offsets_by_source();
	if (cons.tenant != NULL)
		pfree(cons.tenant);
	cons.tenant = read_tenant();
	values[0] = CStringGetTextDatum(cons.topic);
	values[1] = int4_array(cons.mine, cons.nmine);
	values[2] = cluster_id ? CStringGetTextDatum(cluster_id) : (Datum) 0;
	values[3] = CStringGetTextDatum(tl_source.name);
	if (cons.by_source)
		run_sql_nulls("INSERT INTO tweetlake.offsets (source, topic, partition, next_offset, cluster_id) "
					  "SELECT $4, $1, p, -1, $3 FROM pg_catalog.unnest($2) AS p ORDER BY p "
					  "ON CONFLICT (source, topic, partition) DO NOTHING",
					  4, types, values, nulls);
	else
		run_sql_nulls("INSERT INTO tweetlake.offsets (topic, partition, next_offset, cluster_id) "
					  "SELECT $1, p, -1, $3 FROM pg_catalog.unnest($2) AS p ORDER BY p "
					  "ON CONFLICT (topic, partition) DO NOTHING",
					  3, types, values, nulls);

	/*
	 * Another cluster: its offsets mean nothing here; keep the rows, restart
	 * the count.
	 */
	if (cluster_id)
	{
		run_sql(psprintf("UPDATE tweetlake.offsets SET next_offset = -1, cluster_id = $3, updated_at = pg_catalog.now() "
						 "WHERE %stopic OPERATOR(pg_catalog.=) $1 AND partition OPERATOR(pg_catalog.=) ANY ($2) "
						 "AND (cluster_id IS NULL OR cluster_id OPERATOR(pg_catalog.<>) $3)",
						 source_cond("", 4)),
				4, types, values);
		if (SPI_processed > 0)
		{
			tl_slot_error(cons.slot, "broker cluster changed to %s: reading %d partition(s) from their start",
						  cluster_id, (int) SPI_processed);
			ereport(WARNING,
					(errcode(ERRCODE_WARNING),
					 errmsg("%s: Kafka cluster id changed to \"%s\"",
							cons.name, cluster_id),
					 errdetail("The broker lost or replaced its data (the embedded broker does on every restart), so topic \"%s\" is read from the start. "
							   "Rows already in bronze are kept; duplicates of them by tweet_id are skipped in silver.",
							   cons.topic)));
		}
	}

	run_sql(psprintf("SELECT partition, next_offset FROM tweetlake.offsets "
					 "WHERE %stopic OPERATOR(pg_catalog.=) $1 AND partition OPERATOR(pg_catalog.=) ANY ($2)",
					 source_cond("", 4)),
			4, types, values);
	for (uint64 r = 0; r < SPI_processed; r++)
	{
		bool		isnull;
		int32		p = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[r], SPI_tuptable->tupdesc, 1, &isnull));
		int64		o = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[r], SPI_tuptable->tupdesc, 2, &isnull));
		int			i = partition_index(p);

		if (i >= 0)
			cons.committed[i] = o;
	}

	PopActiveSnapshot();
	SPI_finish();
	CommitTransactionCommand();
	pgstat_report_activity(STATE_IDLE, NULL);
}

/*
 * This consumer's partitions, each at the offset to read next: its restart point after the
 * broker lost the stored offset, else the offset stored in Postgres, else the beginning.
 */
static rd_kafka_topic_partition_list_t *
stored_positions(void)
{
	rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new(cons.nmine);

	for (int i = 0; i < cons.nmine; i++)
	{
		rd_kafka_topic_partition_t *tp = rd_kafka_topic_partition_list_add(list, cons.topic, cons.mine[i]);

		if (cons.resume && cons.resume[i] >= 0)
			tp->offset = cons.resume[i];
		else
			tp->offset = cons.committed[i] >= 0 ? cons.committed[i] : RD_KAFKA_OFFSET_BEGINNING;
	}
	return list;
}

/*
 * (Re)assigns this consumer's partitions at the offsets stored in Postgres.  The high
 * watermarks published so far stay: consumer_lag keeps showing the lag while this
 * consumer re-reads.
 */
static void
assign_from_committed(void)
{
	rd_kafka_topic_partition_list_t *list = stored_positions();
	rd_kafka_resp_err_t err;

	err = rd_kafka_assign(cons.rk, list);
	rd_kafka_topic_partition_list_destroy(list);
	if (err)
		ereport(ERROR,
				(errcode(ERRCODE_CONNECTION_FAILURE),
				 errmsg("could not assign Kafka partitions of topic \"%s\": %s",
						cons.topic, rd_kafka_err2str(err))));
	publish_progress(false);
}

/*
 * Moves this consumer's partitions back to the offsets stored in Postgres, to read a batch
 * that was not stored again.  A seek keeps the assignment: assigning anew shortly after
 * the last assignment (a batch failing just after the consumer started, as DROP EXTENSION
 * makes it fail) can make librdkafka 2.0 stop a partition twice and abort on an assertion
 * (librdkafka issue 5573).  Where the seek fails, the partitions are assigned anew.
 */
static void
rewind_to_committed(void)
{
	rd_kafka_topic_partition_list_t *list = stored_positions();
	rd_kafka_error_t *error;
	bool		ok;

	error = rd_kafka_seek_partitions(cons.rk, list, 5000);
	ok = (error == NULL);
	if (error)
		rd_kafka_error_destroy(error);
	for (int i = 0; i < list->cnt && ok; i++)
		ok = (list->elems[i].err == RD_KAFKA_RESP_ERR_NO_ERROR);
	rd_kafka_topic_partition_list_destroy(list);
	if (ok)
		publish_progress(false);
	else
		assign_from_committed();
}

/*
 * Connects to the brokers, finds the topic's partitions, takes this consumer's share and
 * assigns them at the stored offsets.  False (with the reason in tweetlake.status) when
 * that cannot be done yet; the caller retries.
 */
static bool
connect_consumer(void)
{
	char		errstr[512];
	rd_kafka_conf_t *conf;
	char	   *cluster_id;
	MemoryContext old;
	int64		resume_saved[TL_MAX_PARTITIONS];
	int			npartitions;

	if (tl_bootstrap_servers(false) == NULL)
	{
		tl_slot_set_state(cons.slot, "waiting for the embedded broker");
		return false;
	}
	conf = tl_kafka_conf("consumer", errstr, sizeof(errstr));
	if (conf == NULL)
	{
		tl_slot_error(cons.slot, "%s", errstr);
		tl_slot_set_state(cons.slot, "waiting for a valid Kafka configuration");
		return false;
	}
	rd_kafka_conf_set(conf, "group.id", "tweetlake", errstr, sizeof(errstr));
	rd_kafka_conf_set(conf, "enable.auto.commit", "false", errstr, sizeof(errstr));
	rd_kafka_conf_set(conf, "enable.auto.offset.store", "false", errstr, sizeof(errstr));
	rd_kafka_conf_set(conf, "enable.partition.eof", "false", errstr, sizeof(errstr));
	rd_kafka_conf_set(conf, "auto.offset.reset", "error", errstr, sizeof(errstr));
	rd_kafka_conf_set(conf, "fetch.wait.max.ms", "100", errstr, sizeof(errstr));
	tl_kafka_set_error_cb(&cons.client, conf);

	cons.rk = tl_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof(errstr));
	if (cons.rk == NULL)
	{
		tl_slot_error(cons.slot, "could not create Kafka consumer: %s", tl_redact(errstr));
		return false;
	}

	tl_slot_set_state(cons.slot, "connecting");
	npartitions = tl_kafka_topic_partitions(cons.rk, &cons.client, cons.topic);
	if (npartitions == 0)
	{
		disconnect();
		return false;
	}
	rd_kafka_poll_set_consumer(cons.rk);
	cons.queue = rd_kafka_queue_get_consumer(cons.rk);
	cons.npartitions = Min(npartitions, TL_MAX_PARTITIONS);

	/* keep resume points of a reconnect across the re-allocation below */
	for (int p = 0; p < TL_MAX_PARTITIONS; p++)
		resume_saved[p] = -1;
	for (int i = 0; cons.resume && i < cons.nmine; i++)
		if (cons.mine[i] < TL_MAX_PARTITIONS)
			resume_saved[cons.mine[i]] = cons.resume[i];

	old = MemoryContextSwitchTo(TopMemoryContext);
	if (cons.mine)
		pfree(cons.mine);
	if (cons.committed)
		pfree(cons.committed);
	if (cons.resume)
		pfree(cons.resume);
	cons.mine = palloc(sizeof(int32) * cons.npartitions);
	cons.committed = palloc(sizeof(int64) * cons.npartitions);
	cons.resume = palloc(sizeof(int64) * cons.npartitions);
	cons.nmine = 0;
	for (int p = 0; p < cons.npartitions; p++)
		if (p % cons.nconsumers == cons.index)
		{
			cons.committed[cons.nmine] = OFFSET_FROM_START;
			cons.resume[cons.nmine] = resume_saved[p];
			cons.mine[cons.nmine++] = p;
		}
	MemoryContextSwitchTo(old);

	cluster_id = rd_kafka_clusterid(cons.rk, 5000);
	load_offsets(cluster_id);
	if (cluster_id)
		rd_kafka_mem_free(cons.rk, cluster_id);
	assign_from_committed();

	snprintf(cons.state, sizeof(cons.state), "consuming %d of %d partitions", cons.nmine, cons.npartitions);
	tl_slot_set_state(cons.slot, cons.state);
	return true;
}

/*
 * The broker says an offset this consumer reads does not exist.  Past the end of the log:
 * the broker lost its log (an embedded broker after a restart) - read what it has now from
 * the start.  Before the start: the broker deleted messages nobody had stored (retention on
 * a real broker, say after a restore from a backup older than it; the embedded broker's
 * size limit) - they are gone.  Never a silent skip: a WARNING for each partition with the
 * offsets lost, and a last_error naming every partition of this consumer that lost
 * messages, with the offsets.  So that it names them all at once, every partition of this
 * consumer is checked here, not just the one the error came for (the others would fail
 * one by one, each after a reconnect).
 */
static void
offset_out_of_range(int32 partition)
{
	StringInfoData lost;
	int			nlost = 0;
	int			e = partition_index(partition);

	/* not ours, or handled already (the reconnect starts it at resume) */
	if (e < 0 || (cons.reconnect && cons.resume[e] >= 0))
		return;

	initStringInfo(&lost);
	for (int i = 0; i < cons.nmine; i++)
	{
		int32		p = cons.mine[i];
		int64		at = cons.resume[i] >= 0 ? cons.resume[i] : cons.committed[i];
		int64		lo = 0,
					hi = 0;

		if (cons.reconnect && cons.resume[i] >= 0)
			continue;			/* handled already */
		if (at < 0 || rd_kafka_query_watermark_offsets(cons.rk, cons.topic, p, &lo, &hi, 5000) != 0)
		{
			/*
			 * Read from the beginning (nothing stored yet), or the log's
			 * bounds are unknown: just start fetching again.
			 */
			if (p == partition)
				cons.reconnect = true;
			continue;
		}
		if (at > hi)
		{
			ereport(WARNING,
					(errcode(ERRCODE_WARNING),
					 errmsg("%s: the broker lost its log of partition %d of topic \"%s\"",
							cons.name, p, cons.topic),
					 errdetail("The partition ends at offset " INT64_FORMAT " but offsets up to " INT64_FORMAT
							   " are stored; it is read again from offset " INT64_FORMAT ".",
							   hi, at, lo)));
			tl_slot_error(cons.slot, "partition %d: stored offset " INT64_FORMAT " not on the broker (log " INT64_FORMAT ".." INT64_FORMAT "); continuing at " INT64_FORMAT,
						  p, at, lo, hi, lo);
		}
		else if (at < lo)
		{
			ereport(WARNING,
					(errcode(ERRCODE_WARNING),
					 errmsg("%s: messages of partition %d of topic \"%s\" were deleted by the broker before they were read",
							cons.name, p, cons.topic),
					 errdetail("Offsets " INT64_FORMAT " to " INT64_FORMAT " (" INT64_FORMAT " messages) are lost: "
							   "offset " INT64_FORMAT " was to be read next, and the partition now starts at offset " INT64_FORMAT ". "
							   "Reading goes on from there.",
							   at, lo - 1, lo - at, at, lo),
					 errhint("Brokers delete messages by the topic's retention (retention.ms, retention.bytes), read or not; "
							 "the embedded broker keeps 5 MiB a partition. A server restored from a backup older than the retention "
							 "loses messages this way, and so do consumers stopped for longer.")));
			appendStringInfo(&lost, "%spartition %d offsets " INT64_FORMAT ".." INT64_FORMAT,
							 nlost++ > 0 ? ", " : "", p, at, lo - 1);
		}
		else if (p != partition)
			continue;			/* in the log: nothing wrong with it */

		/*
		 * With auto.offset.reset=error librdkafka stops fetching this
		 * partition; neither a seek nor an immediate re-assign (which races
		 * the stopping) brings it back reliably.  So remember where to go on
		 * (the log's start, or where it was if the error was stale), finish
		 * the batch in hand, and reconnect: the new assignment starts the
		 * partition there.  The offsets row keeps its value until the next
		 * batch commits, which is what the fencing compares against.
		 */
		cons.resume[i] = (at > hi || at < lo) ? lo : at;
		cons.reconnect = true;
	}

	/* the WARNINGs are the log lines; this is for tweetlake.status */
	if (nlost > 0)
	{
		char	   *msg = psprintf("messages lost, deleted by the broker before they were read: %s", lost.data);

		tl_slot_error_quiet(cons.slot, msg);
		pfree(msg);
	}
	pfree(lost.data);
}

/*
 * Fills msgs with up to max messages and at most tweetlake.batch_max_bytes of payload (a
 * larger single message forms a batch alone): waits for the first one as long as it takes
 * (in short slices, to answer signals), then at most batch_timeout_ms for the rest.
 * Messages the byte cap leaves out stay in cons.pending for the next batch.
 */
static int
collect_batch(rd_kafka_message_t **msgs, int max)
{
	int			n = 0;
	uint64		bytes = 0;
	bool		full = false;
	TimestampTz first_at = 0;

	while (n < max && !full && !ShutdownRequestPending)
	{
		ssize_t		got = 0;

		if (cons.pending_pos == cons.npending)
		{
			/*
			 * Short slices: librdkafka waits the whole timeout unless the
			 * array fills, so the slice bounds how late the first message is
			 * noticed (and the batch deadline set).
			 */
			long		wait_ms = 10;

			if (n > 0)
			{
				long		left = (tweetlake_batch_timeout_ms -
									(long) ((GetCurrentTimestamp() - first_at) / 1000));

				if (left <= 0)
					break;
				wait_ms = Min(wait_ms, left);
			}
			cons.npending = cons.pending_pos = 0;
			got = rd_kafka_consume_batch_queue(cons.queue, (int) wait_ms, cons.pending,
											   Min(max - n, cons.pending_cap));
			if (got > 0)
				cons.npending = (int) got;
			else if (n == 0)
				tl_release_free_memory_idle(&cons.trimmed_at, cons.batch_done_at);
		}

		/* keep the messages, act on and drop the error events */
		while (cons.pending_pos < cons.npending && n < max)
		{
			rd_kafka_message_t *m = cons.pending[cons.pending_pos];

			if (m->err != RD_KAFKA_RESP_ERR_NO_ERROR)
			{
				if (m->err == RD_KAFKA_RESP_ERR__AUTO_OFFSET_RESET ||
					m->err == RD_KAFKA_RESP_ERR_OFFSET_OUT_OF_RANGE)
					offset_out_of_range(m->partition);
				else if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
					tl_slot_error(cons.slot, "kafka: %s", tl_redact(rd_kafka_message_errstr(m)));
				rd_kafka_message_destroy(m);
				cons.pending_pos++;
				continue;
			}
			if (n > 0 && bytes + m->len > (uint64) tweetlake_batch_max_bytes)
			{
				full = true;
				break;
			}
			if (n == 0)
				first_at = GetCurrentTimestamp();
			msgs[n++] = m;
			bytes += m->len;
			cons.pending_pos++;
		}

		CHECK_FOR_INTERRUPTS();
		if (!PostmasterIsAlive())
			proc_exit(1);
		if (cons.reconnect)
			break;
		if (ConfigReloadPending ||
			(n == 0 && got <= 0 && tl_source_embedded() &&
			 tl_shared->broker_generation != cons.client.broker_generation))
			break;
	}
	return n;
}

/* Why a payload cannot be stored as text, or NULL. */
static char *
payload_problem(const char *p, size_t len)
{
	const char *nul = memchr(p, '\0', len);
	int			valid;

	if (nul)
		return psprintf("NUL byte at byte %d", (int) (nul - p));
	valid = pg_encoding_verifymbstr(PG_UTF8, p, (int) len);
	if (valid < (int) len)
		return psprintf("invalid UTF-8 at byte %d", valid);
	return NULL;
}

/* A message's payload as bytea, for bronze.dead_letters. */
static Datum
payload_bytea(rd_kafka_message_t *m)
{
	bytea	   *b = palloc(VARHDRSZ + m->len);

	SET_VARSIZE(b, VARHDRSZ + m->len);
	if (m->len > 0)
		memcpy(VARDATA(b), m->payload, m->len);
	return PointerGetDatum(b);
}

static void
add_dead_letter(Batch *b, rd_kafka_message_t *m, const char *reason)
{
	b->dl_raws[b->ndead] = payload_bytea(m);
	b->dl_reasons[b->ndead] = CStringGetTextDatum(reason);
	b->dl_parts[b->ndead] = m->partition;
	b->dl_offs[b->ndead] = m->offset;
	b->ndead++;
}

/*
 * Step 1: sorts the messages (in the current memory context) into bronze rows and dead
 * letters (not text at all), skipping re-deliveries of messages below the committed
 * offset, and notes the offsets rows the batch moves.  False when there is nothing to do.
 */
static bool
sort_batch(rd_kafka_message_t **msgs, int n, Batch *b)
{
	memset(b, 0, sizeof(*b));
	b->rows = palloc(sizeof(rd_kafka_message_t *) * n);
	b->raw_nulls = palloc(sizeof(bool) * n);
	b->keys = palloc(sizeof(Datum) * n);
	b->parts = palloc(sizeof(int32) * n);
	b->offs = palloc(sizeof(int64) * n);
	b->stamps = palloc(sizeof(Datum) * n);
	b->stamp_nulls = palloc(sizeof(bool) * n);
	b->dl_raws = palloc(sizeof(Datum) * n);
	b->dl_reasons = palloc(sizeof(Datum) * n);
	b->dl_parts = palloc(sizeof(int32) * n);
	b->dl_offs = palloc(sizeof(int64) * n);
	b->next = palloc(sizeof(int64) * Max(cons.nmine, 1));
	b->touched = palloc(sizeof(int32) * Max(cons.nmine, 1));
	b->touched_from = palloc(sizeof(int64) * Max(cons.nmine, 1));
	b->touched_to = palloc(sizeof(int64) * Max(cons.nmine, 1));

	/*
	 * below this, a message is already stored (or, after a broker reset, no
	 * longer exists)
	 */
	for (int i = 0; i < cons.nmine; i++)
		b->next[i] = cons.resume[i] >= 0 ? cons.resume[i] : cons.committed[i];

	for (int k = 0; k < n; k++)
	{
		rd_kafka_message_t *m = msgs[k];
		int			i = partition_index(m->partition);
		const char *payload = m->payload ? (const char *) m->payload : "";
		char	   *problem;
		bool		tombstone;

		if (i < 0 || m->offset < b->next[i])
			continue;			/* not ours, or already stored */
		b->next[i] = m->offset + 1;
		b->bytes += m->len;

		/*
		 * a tombstone (a key, no value) is the deletion of the tweet_id in
		 * its key; no value and no key is an empty message, as ever
		 */
		tombstone = m->payload == NULL && m->key != NULL && m->key_len > 0;
		if (tombstone)
		{
			if ((problem = payload_problem(m->key, m->key_len)) != NULL)
				problem = psprintf("tombstone key: %s", problem);
		}
		else
			problem = payload_problem(payload, m->len);
		if (problem == NULL)
		{
			rd_kafka_timestamp_type_t tstype;
			int64		ms = rd_kafka_message_timestamp(m, &tstype);

			if (tombstone)
			{
				b->raw_nulls[b->nrows] = true;
				b->keys[b->nrows] = PointerGetDatum(cstring_to_text_with_len(m->key, (int) m->key_len));
				b->ntombstones++;
			}
			else
			{
				b->raw_nulls[b->nrows] = false;
				b->keys[b->nrows] = (Datum) 0;
			}
			b->rows[b->nrows] = m;
			b->parts[b->nrows] = m->partition;
			b->offs[b->nrows] = m->offset;
			b->stamp_nulls[b->nrows] = ms < 0;
			b->stamps[b->nrows] = TimestampTzGetDatum(ms * 1000 - UNIX_EPOCH_OFFSET_US);
			b->nrows++;
		}
		else
			add_dead_letter(b, m, problem);
	}
	for (int i = 0; i < cons.nmine; i++)
		if (b->next[i] != cons.committed[i])
		{
			b->touched[b->ntouched] = cons.mine[i];
			b->touched_from[b->ntouched] = cons.committed[i];
			b->touched_to[b->ntouched] = b->next[i];
			b->ntouched++;
		}
	return b->ntouched > 0;
}

/*
 * Step 4, the fence: locks the batch's offsets rows and checks nobody else moved them.  It
 * comes after the rows are written, so that a batch takes its locks in one order, the
 * batch trigger's tables first and tweetlake.offsets last, as ALTER EXTENSION tweetlake
 * UPDATE does when its scripts alter both (0.12.0 alters tweetlake.offsets after earlier
 * versions' scripts altered the trigger's tables); fencing first, a batch held offsets
 * while it waited for those tables, and the update deadlocked with it.  A second consumer
 * of the same partition (a restarted launcher's, say) writes its rows too, then fails here
 * and rolls them back.
 */
static void
fence_offsets(Batch *b)
{
	Oid			types[3] = {TEXTOID, INT4ARRAYOID, TEXTOID};
	Datum		values[3] = {CStringGetTextDatum(cons.topic), int4_array(b->touched, b->ntouched),
	CStringGetTextDatum(tl_source.name)};

	run_sql(psprintf("SELECT partition, next_offset FROM tweetlake.offsets "
					 "WHERE %stopic OPERATOR(pg_catalog.=) $1 AND partition OPERATOR(pg_catalog.=) ANY ($2) "
					 "ORDER BY partition FOR UPDATE",
					 source_cond("", 3)),
			3, types, values);
	for (uint64 r = 0; r < SPI_processed; r++)
	{
		bool		isnull;
		int32		p = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[r], SPI_tuptable->tupdesc, 1, &isnull));
		int64		o = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[r], SPI_tuptable->tupdesc, 2, &isnull));

		for (int t = 0; t < b->ntouched; t++)
			if (b->touched[t] == p && b->touched_from[t] != o)
				ereport(ERROR,
						(errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
						 errmsg("offset of partition %d moved under %s", p, cons.name),
						 errdetail("It moved from " INT64_FORMAT " to " INT64_FORMAT "; another consumer wrote this partition.",
								   b->touched_from[t], o),
						 errhint("The batch is dropped and read again from the stored offset.")));
	}
	if (SPI_processed != (uint64) b->ntouched)
		ereport(ERROR,
				(errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
				 errmsg("rows of topic \"%s\" in tweetlake.offsets disappeared", cons.topic)));
}

/*
 * The raw column of the bronze rows from..from+count-1: one text[] made straight from the
 * messages' payloads (NULL for a tombstone), the one copy of them this backend makes
 * before the INSERT (a full batch's is 16 MB; a copy per message first doubled it).
 */
static Datum
payload_array(Batch *b, int from, int count)
{
	Size		data = 0;
	Size		total;
	bool		nulls = false;
	ArrayType  *a;
	char	   *p;
	bits8	   *bitmap;

	for (int i = from; i < from + count; i++)
	{
		if (b->raw_nulls[i])
			nulls = true;
		else
			data += INTALIGN(VARHDRSZ + b->rows[i]->len);
	}
	total = (nulls ? ARR_OVERHEAD_WITHNULLS(1, count) : ARR_OVERHEAD_NONULLS(1)) + data;
	if (!AllocSizeIsValid(total))
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("a batch of %d messages is too large for one INSERT", count),
				 errhint("Lower tweetlake.batch_max_bytes.")));
	a = palloc0(total);
	SET_VARSIZE(a, total);
	a->ndim = 1;
	a->dataoffset = nulls ? ARR_OVERHEAD_WITHNULLS(1, count) : 0;
	a->elemtype = TEXTOID;
	ARR_DIMS(a)[0] = count;
	ARR_LBOUND(a)[0] = 1;
	p = ARR_DATA_PTR(a);
	bitmap = ARR_NULLBITMAP(a); /* NULL without nulls; else zeroed: all null */
	for (int i = 0; i < count; i++)
	{
		rd_kafka_message_t *m = b->rows[from + i];

		if (b->raw_nulls[from + i])
			continue;
		if (bitmap)
			bitmap[i / 8] |= 1 << (i % 8);
		SET_VARSIZE(p, VARHDRSZ + m->len);
		if (m->len > 0)
			memcpy(VARDATA(p), m->payload, m->len);
		p += INTALIGN(VARHDRSZ + m->len);
	}
	return PointerGetDatum(a);
}

static Datum
nullable_text_array(Datum *v, bool *nulls, int n)
{
	int			dims[1] = {n};
	int			lbs[1] = {1};

	return PointerGetDatum(construct_md_array(v, nulls, 1, dims, lbs, TEXTOID, -1, false, TYPALIGN_INT));
}

/*
 * Step 2: the bronze rows from..from+count-1 in one INSERT (one run of the batch trigger).
 * Tombstones among them go in with raw NULL and their key in kafka_key (schema 0.5.0 on;
 * see tombstones_without_schema).
 */
static void
insert_rows(Batch *b, int from, int count)
{
	Oid			types[7] = {TEXTOID, TEXTARRAYOID, INT4ARRAYOID, INT8ARRAYOID, TIMESTAMPTZARRAYOID,
	TEXTARRAYOID, TEXTOID};
	Datum		values[7];
	char		nulls[8] = "       ";
	int			dims[1] = {count};
	int			lbs[1] = {1};
	bool	   *key_nulls = palloc(sizeof(bool) * Max(count, 1));
	bool		tombstones = false;

	for (int i = 0; i < count; i++)
	{
		key_nulls[i] = !b->raw_nulls[from + i];
		tombstones |= b->raw_nulls[from + i];
	}
	values[0] = CStringGetTextDatum(cons.topic);
	values[1] = payload_array(b, from, count);
	values[2] = int4_array(b->parts + from, count);
	values[3] = int8_array(b->offs + from, count);
	values[4] = PointerGetDatum(construct_md_array(b->stamps + from, b->stamp_nulls + from, 1, dims, lbs,
												   TIMESTAMPTZOID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));

	/*
	 * The unnests are in the target list, where they run in step (the arrays
	 * have one length) and hand on one row at a time: in FROM (ROWS FROM)
	 * each would first be copied into a tuplestore, 4 MB in memory and the
	 * rest of a full batch written to a temporary file.
	 */

	/*
	 * tombstones' keys ($6) when the batch has any; the source's tenant ($7)
	 * from schema 0.13.0 on; an argument a statement does not use is NULL
	 */
	values[5] = tombstones ? nullable_text_array(b->keys + from, key_nulls, count) : (Datum) 0;
	values[6] = cons.tenant != NULL ? CStringGetTextDatum(cons.tenant) : (Datum) 0;
	nulls[5] = tombstones ? ' ' : 'n';
	nulls[6] = cons.tenant != NULL ? ' ' : 'n';
	run_sql_nulls(psprintf("INSERT INTO bronze.tweets (raw, kafka_topic, kafka_partition, kafka_offset, kafka_timestamp%s%s) "
						   "SELECT pg_catalog.unnest($2), $1, pg_catalog.unnest($3), pg_catalog.unnest($4), "
						   "pg_catalog.unnest($5)%s%s",
						   tombstones ? ", kafka_key" : "", cons.tenant != NULL ? ", tenant" : "",
						   tombstones ? ", pg_catalog.unnest($6)" : "", cons.tenant != NULL ? ", $7" : ""),
				  7, types, values, nulls);
}

/*
 * A database still on a schema before 0.5.0 has no bronze.tweets.kafka_key: its
 * tombstones become dead letters that say so (the rows keep their order).
 */
static void
tombstones_without_schema(Batch *b)
{
	Oid			nsp;
	Oid			rel;
	int			kept = 0;

	if (b->ntombstones == 0)
		return;
	nsp = get_namespace_oid("bronze", true);
	rel = OidIsValid(nsp) ? get_relname_relid("tweets", nsp) : InvalidOid;
	if (OidIsValid(rel) && get_attnum(rel, "kafka_key") != InvalidAttrNumber)
		return;
	for (int i = 0; i < b->nrows; i++)
	{
		if (b->raw_nulls[i])
		{
			add_dead_letter(b, b->rows[i],
							"tombstone, but the installed schema has no deletions (ALTER EXTENSION tweetlake UPDATE)");
			continue;
		}
		b->rows[kept] = b->rows[i];
		b->raw_nulls[kept] = false;
		b->keys[kept] = (Datum) 0;
		b->parts[kept] = b->parts[i];
		b->offs[kept] = b->offs[i];
		b->stamps[kept] = b->stamps[i];
		b->stamp_nulls[kept] = b->stamp_nulls[i];
		kept++;
	}
	b->nrows = kept;
	b->ntombstones = 0;
}

/*
 * Errors of the environment rather than of the messages: the same batch may well go in
 * when tried again later.  Class 42 (a missing table or column, a privilege) comes from
 * the schema, not from a message, so it is one too.  Among the others: serialization
 * failures, deadlocks and the fence (40), lock_not_available (55), query_canceled and
 * admin_shutdown (57).
 */
static bool
error_is_environmental(int sqlerrcode)
{
	switch (ERRCODE_TO_CATEGORY(sqlerrcode))
	{
		case ERRCODE_CONNECTION_EXCEPTION:	/* 08 */
		case ERRCODE_INVALID_TRANSACTION_STATE: /* 25 */
		case ERRCODE_TRANSACTION_ROLLBACK:	/* 40 */
		case ERRCODE_SYNTAX_ERROR_OR_ACCESS_RULE_VIOLATION: /* 42 */
		case ERRCODE_INSUFFICIENT_RESOURCES:	/* 53 */
		case ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE:	/* 55 */
		case ERRCODE_OPERATOR_INTERVENTION: /* 57 */
		case ERRCODE_SYSTEM_ERROR:	/* 58 */
			return true;
		default:
			break;
	}
	return sqlerrcode == ERRCODE_DATA_CORRUPTED || sqlerrcode == ERRCODE_INDEX_CORRUPTED;
}

/* Rows from..from+count-1 of a batch, for insert_rows() in a subtransaction. */
typedef struct IsolateRun
{
	Batch	   *b;
	int			from;
	int			count;
} IsolateRun;

static void
insert_rows_work(void *arg)
{
	IsolateRun *run = (IsolateRun *) arg;

	insert_rows(run->b, run->from, run->count);
}

/*
 * Step 2 when isolating: the rows from..from+count-1 in chunks, each in a subtransaction
 * (as a PL/pgSQL exception block does); a failing chunk is halved until the messages that
 * fail on their own are found, and those become dead letters with the error.  An error of
 * the environment is thrown on: the whole batch is then retried later.
 */
static void
insert_rows_isolating(Batch *b, int from, int count)
{
	IsolateRun	run = {b, from, count};
	ErrorData  *edata;

	if (count == 0)
		return;
	if (count > ISOLATE_CHUNK)
	{
		for (int k = from; k < from + count; k += ISOLATE_CHUNK)
			insert_rows_isolating(b, k, Min(ISOLATE_CHUNK, from + count - k));
		return;
	}

	edata = tl_try_subtransaction(insert_rows_work, &run, cons.batch_ctx);
	if (edata == NULL)
		return;
	if (error_is_environmental(edata->sqlerrcode))
		ReThrowError(edata);
	if (count > 1)
	{
		insert_rows_isolating(b, from, count / 2);
		insert_rows_isolating(b, from + count / 2, count - count / 2);
	}
	else
	{
		MemoryContext old = MemoryContextSwitchTo(cons.batch_ctx);

		add_dead_letter(b, b->rows[from], psprintf("could not store: %s", edata->message));
		b->nisolated++;
		MemoryContextSwitchTo(old);
	}
}

/* Step 3: the dead letters (not text, or failing on their own when isolating). */
static void
insert_dead_letters(Batch *b)
{
	Oid			types[6] = {TEXTOID, BYTEAARRAYOID, TEXTARRAYOID, INT4ARRAYOID, INT8ARRAYOID, TEXTOID};
	Datum		values[6];

	if (b->ndead == 0)
		return;
	values[0] = CStringGetTextDatum(cons.topic);
	values[1] = PointerGetDatum(construct_array(b->dl_raws, b->ndead, BYTEAOID, -1, false, TYPALIGN_INT));
	values[2] = PointerGetDatum(construct_array(b->dl_reasons, b->ndead, TEXTOID, -1, false, TYPALIGN_INT));
	values[3] = int4_array(b->dl_parts, b->ndead);
	values[4] = int8_array(b->dl_offs, b->ndead);
	/* the source's tenant ($6) from schema 0.13.0 on */
	if (cons.tenant != NULL)
		values[5] = CStringGetTextDatum(cons.tenant);
	run_sql(psprintf("INSERT INTO bronze.dead_letters (raw, reason, kafka_topic, kafka_partition, kafka_offset%s) "
					 "SELECT r, w, $1, p, o%s FROM ROWS FROM (pg_catalog.unnest($2), pg_catalog.unnest($3), "
					 "pg_catalog.unnest($4), pg_catalog.unnest($5)) AS u(r, w, p, o)",
					 cons.tenant != NULL ? ", tenant" : "", cons.tenant != NULL ? ", $6" : ""),
			cons.tenant != NULL ? 6 : 5, types, values);
}

/* Step 5: the offsets these rows cover, in the same transaction. */
static void
store_offsets(Batch *b)
{
	Oid			types[4] = {TEXTOID, INT4ARRAYOID, INT8ARRAYOID, TEXTOID};
	Datum		values[4] = {CStringGetTextDatum(cons.topic), int4_array(b->touched, b->ntouched),
	int8_array(b->touched_to, b->ntouched), CStringGetTextDatum(tl_source.name)};

	run_sql(psprintf("UPDATE tweetlake.offsets o SET next_offset = u.n, updated_at = pg_catalog.now() "
					 "FROM ROWS FROM (pg_catalog.unnest($2), pg_catalog.unnest($3)) AS u(p, n) "
					 "WHERE %so.topic OPERATOR(pg_catalog.=) $1 AND o.partition OPERATOR(pg_catalog.=) u.p",
					 source_cond("o.", 4)),
			4, types, values);
}

/* Step 6, after the commit: move on, count, and publish the progress. */
static void
batch_committed(Batch *b)
{
	for (int i = 0; i < cons.nmine; i++)
	{
		if (b->next[i] != cons.committed[i])
			cons.resume[i] = -1;
		cons.committed[i] = b->next[i];
	}
	tl_slot_count(cons.slot, b->nrows + b->ndead - b->nisolated, b->bytes);
	SpinLockAcquire(&cons.slot->mutex);
	cons.slot->dead_letters += b->ndead;
	cons.slot->updates += tl_batch_counts.updates;
	cons.slot->deletes += tl_batch_counts.deletes;
	cons.slot->stale += tl_batch_counts.stale;
	SpinLockRelease(&cons.slot->mutex);
	publish_progress(false);
}

/*
 * Writes one batch: bronze rows + dead letters + offsets (fenced), one transaction.
 * Messages below the committed offset (re-deliveries) are skipped.  With isolate, rows
 * that fail on their own become dead letters instead of failing the batch.
 */
static void
write_batch(rd_kafka_message_t **msgs, int n, bool isolate)
{
	Batch		b;
	char		activity[96];

	if (!sort_batch(msgs, n, &b))
		return;

	snprintf(activity, sizeof(activity), "%s a batch of %d messages",
			 isolate ? "isolating failing messages of" : "writing", b.nrows + b.ndead);
	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	SPI_connect();
	PushActiveSnapshot(GetTransactionSnapshot());
	pgstat_report_activity(STATE_RUNNING, activity);
	memset(&tl_batch_counts, 0, sizeof(tl_batch_counts));	/* the trigger counts */

	tombstones_without_schema(&b);
	if (isolate)
		insert_rows_isolating(&b, 0, b.nrows);
	else if (b.nrows > 0)
		insert_rows(&b, 0, b.nrows);
	insert_dead_letters(&b);
	fence_offsets(&b);
	store_offsets(&b);

	PopActiveSnapshot();
	SPI_finish();
	CommitTransactionCommand();
	pgstat_report_stat(false);
	pgstat_report_activity(STATE_IDLE, NULL);

	batch_committed(&b);
	if (b.nisolated > 0)
	{
		/* the last of them: its reason is in the dead letter too */
		char	   *reason = TextDatumGetCString(b.dl_reasons[b.ndead - 1]);

		tl_slot_error(cons.slot, "%d message%s sent to bronze.dead_letters: %s",
					  b.nisolated, b.nisolated == 1 ? "" : "s", reason);
	}
}

/*
 * Reads the stored offsets again after a failed batch (another consumer may have moved
 * them).  If that fails too (the extension is being dropped, say), the offsets this
 * consumer last committed stand: the fence checks them at the next attempt anyway.
 */
static void
reload_offsets(void)
{
	MemoryContext old = CurrentMemoryContext;

	PG_TRY();
	{
		load_offsets(NULL);
	}
	PG_CATCH();
	{
		FlushErrorState();
		AbortCurrentTransaction();
		pgstat_report_activity(STATE_IDLE, NULL);
	}
	PG_END_TRY();
	MemoryContextSwitchTo(old);
}

/* Tries write_batch(); NULL when it committed, else the error (the transaction is rolled back). */
static ErrorData *
try_write_batch(rd_kafka_message_t **msgs, int n, bool isolate)
{
	MemoryContext old = MemoryContextSwitchTo(cons.batch_ctx);
	ErrorData  *edata = NULL;

	PG_TRY();
	{
		write_batch(msgs, n, isolate);
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(cons.batch_ctx);
		edata = CopyErrorData();
		FlushErrorState();
		AbortCurrentTransaction();
		pgstat_report_activity(STATE_IDLE, NULL);
	}
	PG_END_TRY();
	MemoryContextSwitchTo(old);
	return edata;
}

/*
 * The batch in hand could not be stored: counts the attempt, says so (in the log once per
 * kind of error, then at most every STALL_LOG_EVERY_MS), and drops the batch, to read it
 * again from the stored offsets after a delay that doubles up to RETRY_DELAY_MAX_MS.
 */
static void
batch_failed(ErrorData *edata, int n)
{
	TimestampTz now = GetCurrentTimestamp();
	char		msg[256];

	if (cons.stalled_since == 0)
		cons.stalled_since = now;
	cons.retry_delay_ms = cons.retry_delay_ms == 0 ? RETRY_DELAY_MIN_MS :
		Min(cons.retry_delay_ms * 2, RETRY_DELAY_MAX_MS);
	cons.retries++;
	tl_slot_set_stall(cons.slot, cons.retries, cons.stalled_since);

	snprintf(msg, sizeof(msg), "batch not stored, will retry: %s", edata->message);
	tl_slot_error_quiet(cons.slot, msg);
	if (!tl_same_but_numbers(cons.stall_logged, msg) ||
		TimestampDifferenceExceeds(cons.stall_logged_at, now, STALL_LOG_EVERY_MS))
	{
		ereport(LOG,
				(errcode(edata->sqlerrcode),
				 errmsg("%s could not store a batch of %d messages: %s",
						cons.name, n, edata->message),
				 edata->detail ?
				 errdetail("%s\nAttempt %d since %s; the batch is read again from the stored offsets in %ld ms.",
						   edata->detail, cons.retries, timestamptz_to_str(cons.stalled_since),
						   cons.retry_delay_ms) :
				 errdetail("Attempt %d since %s; the batch is read again from the stored offsets in %ld ms.",
						   cons.retries, timestamptz_to_str(cons.stalled_since), cons.retry_delay_ms),
				 edata->context ? errcontext("%s", edata->context) : 0));
		strlcpy(cons.stall_logged, msg, sizeof(cons.stall_logged));
		cons.stall_logged_at = now;
	}
}

/* A batch committed: any stall is over. */
static void
stall_over(void)
{
	if (cons.retries == 0)
		return;
	if (cons.stall_logged[0] != '\0')
		ereport(LOG,
				(errmsg("%s stored its batch after %d failed attempts",
						cons.name, cons.retries)));
	cons.retries = 0;
	cons.stalled_since = 0;
	cons.retry_delay_ms = 0;
	cons.stall_logged[0] = '\0';
	tl_slot_set_stall(cons.slot, 0, 0);
}

/*
 * Stores one batch.  A batch that fails on its content is written again at once with the
 * failing messages isolated into bronze.dead_letters; one that cannot be stored even so,
 * or fails on its environment, is dropped (false) to be read again after a delay.
 */
static bool
store_batch(rd_kafka_message_t **msgs, int n)
{
	ErrorData  *edata = try_write_batch(msgs, n, false);

	if (edata != NULL && !error_is_environmental(edata->sqlerrcode))
	{
		/* a failed attempt too, while the isolating one runs */
		if (cons.stalled_since == 0)
			cons.stalled_since = GetCurrentTimestamp();
		cons.retries++;
		tl_slot_set_stall(cons.slot, cons.retries, cons.stalled_since);
		tl_slot_set_state(cons.slot, "isolating failing messages");
		edata = try_write_batch(msgs, n, true);
		tl_slot_set_state(cons.slot, cons.state);
	}
	if (edata == NULL)
	{
		stall_over();
		return true;
	}
	batch_failed(edata, n);
	return false;
}

void
tweetlake_consumer_main(Datum arg)
{
	rd_kafka_message_t **msgs = NULL;
	int			msgs_cap = 0;
	TlConsumerArgs args;

	memset(&cons, 0, sizeof(cons));
	cons.index = DatumGetInt32(arg);
	memcpy(&args, MyBgworkerEntry->bgw_extra, sizeof(args));
	cons.nconsumers = Max(args.nconsumers, 1);
	tl_memory_init();

	pqsignal(SIGTERM, SignalHandlerForShutdownRequest);
	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	BackgroundWorkerUnblockSignals();

	/*
	 * a reload between the fork and the handler above went unseen: read the
	 * file once
	 */
	ConfigReloadPending = true;

	/*
	 * as tweetlake_worker when the launcher found it, else as the bootstrap
	 * superuser
	 */
	if (OidIsValid(args.dboid))
		BackgroundWorkerInitializeConnectionByOid(args.dboid, args.roleoid, 0);
	else
		BackgroundWorkerInitializeConnection(tweetlake_database, NULL, 0);

	/*
	 * Nothing this session runs resolves a name through a schema someone else
	 * can create objects in: the statements are qualified, and the path is
	 * pinned besides (PGC_S_OVERRIDE: no ALTER ROLE/DATABASE ... SET
	 * search_path applies).
	 */
	SetConfigOption("search_path", "pg_catalog, pg_temp", PGC_SUSET, PGC_S_OVERRIDE);

	/*
	 * the source's settings: postgresql.conf's, or its row (an error if it is
	 * gone)
	 */
	args.source[sizeof(args.source) - 1] = '\0';
	tl_source_load(args.source);
	if (tl_source.is_default)
		snprintf(cons.name, sizeof(cons.name), "tweetlake consumer %d", cons.index);
	else
		snprintf(cons.name, sizeof(cons.name), "tweetlake consumer %d of source \"%s\"",
				 cons.index, tl_source.name);

	cons.slot = tl_slot_acquire(TL_ROLE_CONSUMER, tl_source.name, cons.index);
	cons.client.slot = cons.slot;
	cons.batch_ctx = AllocSetContextCreate(TopMemoryContext, "tweetlake consumer batch",
										   ALLOCSET_DEFAULT_SIZES);
	before_shmem_exit(consumer_exit, (Datum) 0);

	while (!ShutdownRequestPending)
	{
		int			n;

		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}
		if (cons.rk != NULL && cons.reconnect)
		{
			cons.reconnect = false;
			disconnect();
		}
		if (cons.rk != NULL && tl_kafka_settings_changed(&cons.client))
		{
			ereport(LOG, (errmsg("%s: Kafka settings changed, reconnecting", cons.name)));
			disconnect();
		}
		if (cons.rk == NULL)
		{
			tl_kafka_remember_settings(&cons.client);
			if (cons.topic)
				pfree(cons.topic);
			cons.topic = MemoryContextStrdup(TopMemoryContext, tl_source_topic());
			if (!connect_consumer())
			{
				(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
								 2000L, PG_WAIT_EXTENSION);
				ResetLatch(MyLatch);
				continue;
			}
		}

		/*
		 * msgs and pending hold a batch each (pending: what the byte cap left
		 * over)
		 */
		if (msgs_cap < tweetlake_batch_size)
		{
			msgs_cap = tweetlake_batch_size;
			msgs = msgs ? repalloc(msgs, sizeof(*msgs) * msgs_cap)
				: MemoryContextAlloc(TopMemoryContext, sizeof(*msgs) * msgs_cap);
			cons.pending = cons.pending ? repalloc(cons.pending, sizeof(*msgs) * msgs_cap)
				: MemoryContextAlloc(TopMemoryContext, sizeof(*msgs) * msgs_cap);
			cons.pending_cap = msgs_cap;
		}
		n = collect_batch(msgs, tweetlake_batch_size);
		if (n == 0)
			continue;

		if (!store_batch(msgs, n))
		{
			/* read the batch again from the stored offsets, after the delay */
			for (int k = 0; k < n; k++)
				rd_kafka_message_destroy(msgs[k]);
			n = 0;
			drop_pending();
			MemoryContextReset(cons.batch_ctx);
			reload_offsets();
			rewind_to_committed();
			publish_progress(true);
			(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
							 cons.retry_delay_ms, PG_WAIT_EXTENSION);
			ResetLatch(MyLatch);
		}
		for (int k = 0; k < n; k++)
			rd_kafka_message_destroy(msgs[k]);
		MemoryContextReset(cons.batch_ctx);
		cons.batch_done_at = GetCurrentTimestamp();
		tl_release_free_memory(&cons.trimmed_at);
	}

	tl_slot_set_state(cons.slot, "stopping");
	disconnect();
	proc_exit(0);
}
