/*
 * consumer.c - consumer background worker: reads its share of the topic's partitions with
 * librdkafka and writes each batch into bronze.tweets (the triggers take it on to silver
 * and gold) in ONE transaction with the next offsets in tweetlake.offsets.  It resumes
 * from tweetlake.offsets, never from offsets committed to the broker, so after any crash
 * nothing is lost and nothing is stored twice.  Started by the launcher, one per
 * tweetlake.consumers; consumer i takes the partitions p with p % consumers == i.
 *
 * The offsets rows also fence: a batch locks its partitions' rows and checks they still
 * hold what this consumer last wrote, so even two consumers on one partition (say, while
 * a restarted launcher replaces its children) cannot both store the same messages.
 */
#include "tweetlake.h"

#include <librdkafka/rdkafka.h>

#include "access/xact.h"
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
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

/* No row yet / read the partition from its beginning. */
#define OFFSET_FROM_START	(-1)

typedef struct Consumer
{
	int			index;
	int			nconsumers;
	TlWorkerSlot *slot;
	rd_kafka_t *rk;
	rd_kafka_queue_t *queue;
	uint32		broker_generation;	/* of the embedded broker we connected to */
	char	   *settings;		/* tl_kafka_settings() we connected with, to notice a reload */
	char	   *topic;
	int			npartitions;	/* of the topic */
	int			nmine;
	int32	   *mine;			/* partitions assigned to this consumer */
	int64	   *committed;		/* per partition: next offset as stored in Postgres */
	int64	   *resume;			/* per partition: where to restart after the broker lost
								 * the stored offset, or -1 */
	bool		reconnect;		/* re-assign (resume[]) after the batch in hand */
	MemoryContext batch_ctx;
} Consumer;

static Consumer cons;
static bool cb_error_seen;		/* error_cb ran since the flag was last cleared */

/* librdkafka calls this from rd_kafka_consume_batch_queue() or rd_kafka_poll(), in this thread. */
static void
error_cb(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
	cb_error_seen = true;
	tl_slot_error(cons.slot, "kafka: %s", tl_redact(reason));
}

static int
partition_index(int32 partition)
{
	for (int i = 0; i < cons.nmine; i++)
		if (cons.mine[i] == partition)
			return i;
	return -1;
}

static void
disconnect(void)
{
	if (cons.queue)
		rd_kafka_queue_destroy(cons.queue);
	if (cons.rk)
	{
		/*
		 * No group membership and no broker-side offsets to commit, so no consumer close:
		 * rd_kafka_consumer_close() can block on partitions whose fetch stopped with an
		 * offset error, and the launcher waits for this process to exit.
		 */
		rd_kafka_assign(cons.rk, NULL);
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
		elog(ERROR, "tweetlake consumer: SPI failed (%s) running: %s", SPI_result_code_string(rc), sql);
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
 * Reads (creating them if new) this consumer's rows of tweetlake.offsets into
 * cons.committed, with the cluster id check: offsets stored against another Kafka cluster
 * (an embedded broker that came back empty, a topic re-created) would point into nothing.
 */
static void
load_offsets(const char *cluster_id)
{
	Oid			types[3] = {TEXTOID, INT4ARRAYOID, TEXTOID};
	Datum		values[3];
	char		nulls[4] = {' ', ' ', cluster_id ? ' ' : 'n', '\0'};

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	SPI_connect();
	PushActiveSnapshot(GetTransactionSnapshot());
	pgstat_report_activity(STATE_RUNNING, "reading tweetlake.offsets");

	values[0] = CStringGetTextDatum(cons.topic);
	values[1] = int4_array(cons.mine, cons.nmine);
	values[2] = cluster_id ? CStringGetTextDatum(cluster_id) : (Datum) 0;
	run_sql_nulls("INSERT INTO tweetlake.offsets (topic, partition, next_offset, cluster_id) "
				  "SELECT $1, p, -1, $3 FROM unnest($2) AS p ORDER BY p "
				  "ON CONFLICT (topic, partition) DO NOTHING",
				  3, types, values, nulls);

	/* Another cluster: its offsets mean nothing here; keep the rows, restart the count. */
	if (cluster_id)
	{
		run_sql("UPDATE tweetlake.offsets SET next_offset = -1, cluster_id = $3, updated_at = now() "
				"WHERE topic = $1 AND partition = ANY ($2) AND cluster_id IS DISTINCT FROM $3",
				3, types, values);
		if (SPI_processed > 0)
		{
			tl_slot_error(cons.slot, "broker cluster changed to %s: reading %d partition(s) from their start",
						  cluster_id, (int) SPI_processed);
			ereport(WARNING,
					(errmsg("tweetlake consumer %d: Kafka cluster id changed to \"%s\"; reading topic \"%s\" from the start",
							cons.index, cluster_id, cons.topic),
					 errdetail("The broker lost or replaced its data (the embedded broker does on every restart). Rows already in bronze are kept; duplicates of them by tweet_id are skipped in silver.")));
		}
	}

	run_sql("SELECT partition, next_offset FROM tweetlake.offsets WHERE topic = $1 AND partition = ANY ($2)",
			2, types, values);
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

/* (Re)assigns this consumer's partitions at the offsets stored in Postgres. */
static void
assign_from_committed(void)
{
	rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new(cons.nmine);
	rd_kafka_resp_err_t err;

	for (int i = 0; i < cons.nmine; i++)
	{
		rd_kafka_topic_partition_t *tp = rd_kafka_topic_partition_list_add(list, cons.topic, cons.mine[i]);

		if (cons.resume && cons.resume[i] >= 0)
			tp->offset = cons.resume[i];
		else
			tp->offset = cons.committed[i] >= 0 ? cons.committed[i] : RD_KAFKA_OFFSET_BEGINNING;
	}
	err = rd_kafka_assign(cons.rk, list);
	rd_kafka_topic_partition_list_destroy(list);
	if (err)
		elog(ERROR, "tweetlake consumer: could not assign partitions: %s", rd_kafka_err2str(err));

	LWLockAcquire(tl_shared->lock, LW_EXCLUSIVE);
	for (int i = 0; i < cons.nmine; i++)
	{
		TlPartitionSlot *ps = &tl_shared->partitions[cons.mine[i]];

		ps->consumer = cons.index;
		ps->next_offset = Max(cons.committed[i], 0);
		ps->high_watermark = -1;
		ps->updated_at = GetCurrentTimestamp();
	}
	LWLockRelease(tl_shared->lock);
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
	const struct rd_kafka_metadata *md = NULL;
	rd_kafka_topic_t *rkt;
	rd_kafka_resp_err_t err;
	char	   *cluster_id;
	MemoryContext old;
	int64		resume_saved[TL_MAX_PARTITIONS];

	if (tl_bootstrap_servers(false) == NULL)
	{
		tl_slot_set_state(cons.slot, "waiting for the embedded broker");
		return false;
	}
	conf = tl_kafka_conf("consumer", errstr, sizeof(errstr));
	if (conf == NULL)
	{
		tl_slot_error(cons.slot, "%s", errstr);
		return false;
	}
	rd_kafka_conf_set(conf, "group.id", "tweetlake", errstr, sizeof(errstr));
	rd_kafka_conf_set(conf, "enable.auto.commit", "false", errstr, sizeof(errstr));
	rd_kafka_conf_set(conf, "enable.auto.offset.store", "false", errstr, sizeof(errstr));
	rd_kafka_conf_set(conf, "enable.partition.eof", "false", errstr, sizeof(errstr));
	rd_kafka_conf_set(conf, "auto.offset.reset", "error", errstr, sizeof(errstr));
	rd_kafka_conf_set(conf, "fetch.wait.max.ms", "100", errstr, sizeof(errstr));
	/* a worker's prefetch stays bounded (librdkafka's default is 64 MB) */
	rd_kafka_conf_set(conf, "queued.max.messages.kbytes", "16384", errstr, sizeof(errstr));
	rd_kafka_conf_set_error_cb(conf, error_cb);

	cons.rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof(errstr));
	if (cons.rk == NULL)
	{
		tl_slot_error(cons.slot, "could not create Kafka consumer: %s", tl_redact(errstr));
		return false;
	}

	tl_slot_set_state(cons.slot, "connecting");
	cb_error_seen = false;
	rkt = rd_kafka_topic_new(cons.rk, cons.topic, NULL);
	err = rd_kafka_metadata(cons.rk, 0, rkt, &md, 5000);
	rd_kafka_topic_destroy(rkt);
	/* serve error_cb now: it has the cause (say, failed authentication) */
	rd_kafka_poll(cons.rk, 0);
	rd_kafka_poll_set_consumer(cons.rk);
	cons.queue = rd_kafka_queue_get_consumer(cons.rk);
	if (err || md->topic_cnt != 1 || md->topics[0].err || md->topics[0].partition_cnt == 0)
	{
		rd_kafka_resp_err_t terr = err ? err : (md->topic_cnt ? md->topics[0].err : RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART);

		if (cb_error_seen && terr != RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART)
			;					/* keep the broker's own reason in last_error */
		else if (terr == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART)
			tl_slot_error(cons.slot, "topic \"%s\" does not exist on %s (create it; tweetlake does not create topics)",
						  cons.topic, tl_bootstrap_servers(false) ? tl_bootstrap_servers(false) : "?");
		else
			tl_slot_error(cons.slot, "topic \"%s\" on %s: %s", cons.topic,
						  tl_bootstrap_servers(false) ? tl_bootstrap_servers(false) : "?",
						  rd_kafka_err2str(terr));
		tl_slot_set_state(cons.slot, "waiting for the topic");
		if (md)
			rd_kafka_metadata_destroy(md);
		disconnect();
		return false;
	}
	cons.npartitions = Min(md->topics[0].partition_cnt, TL_MAX_PARTITIONS);
	rd_kafka_metadata_destroy(md);

	/* keep resume points of a reconnect across the re-allocation below */
	{
		int64		saved[TL_MAX_PARTITIONS];

		for (int p = 0; p < TL_MAX_PARTITIONS; p++)
			saved[p] = -1;
		for (int i = 0; cons.resume && i < cons.nmine; i++)
			if (cons.mine[i] < TL_MAX_PARTITIONS)
				saved[cons.mine[i]] = cons.resume[i];
		memcpy(resume_saved, saved, sizeof(saved));
	}
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

	{
		char		state[64];

		snprintf(state, sizeof(state), "consuming %d of %d partitions", cons.nmine, cons.npartitions);
		tl_slot_set_state(cons.slot, state);
	}
	return true;
}

/*
 * The broker says a stored offset does not exist.  Past its end: the broker lost its log
 * (an embedded broker after a restart) - read what it has now from the start.  Before its
 * start: retention removed messages nobody read - they are gone, say so and go on.
 */
static void
offset_out_of_range(int32 partition)
{
	int			i = partition_index(partition);
	int64		lo = 0,
				hi = 0;

	if (i < 0)
		return;
	if (rd_kafka_query_watermark_offsets(cons.rk, cons.topic, partition, &lo, &hi, 5000) != 0)
		return;					/* try again on the next error */
	if (cons.committed[i] > hi)
		ereport(WARNING,
				(errmsg("tweetlake consumer %d: partition %d of \"%s\" ends at offset " INT64_FORMAT
						" but offsets up to " INT64_FORMAT " are stored; the broker lost its log, reading it from offset " INT64_FORMAT,
						cons.index, partition, cons.topic, hi, cons.committed[i], lo)));
	else
		ereport(WARNING,
				(errmsg("tweetlake consumer %d: partition %d of \"%s\" starts at offset " INT64_FORMAT
						", past the stored offset " INT64_FORMAT "; messages in between were deleted by the broker before they were read",
						cons.index, partition, cons.topic, lo, cons.committed[i])));
	tl_slot_error(cons.slot, "partition %d: stored offset " INT64_FORMAT " not on the broker (log " INT64_FORMAT ".." INT64_FORMAT "); continuing at " INT64_FORMAT,
				  partition, cons.committed[i], lo, hi, lo);
	/*
	 * With auto.offset.reset=error librdkafka stops fetching this partition; neither a seek
	 * nor an immediate re-assign (which races the stopping) brings it back reliably.  So
	 * remember where to go on, finish the batch in hand, and reconnect: the new assignment
	 * starts this partition at lo.  The offsets row keeps its value until the next batch
	 * commits, which is what the fencing compares against.
	 */
	cons.resume[i] = lo;
	cons.reconnect = true;
}

/*
 * Fills msgs with up to batch_size messages: waits for the first one as long as it takes
 * (in short slices, to answer signals), then at most batch_timeout_ms for the rest.
 */
static int
collect_batch(rd_kafka_message_t **msgs, int max)
{
	int			n = 0;
	TimestampTz first_at = 0;

	while (n < max && !ShutdownRequestPending)
	{
		/*
		 * Short slices: librdkafka waits the whole timeout unless the array fills, so the
		 * slice bounds how late the first message is noticed (and the batch deadline set).
		 */
		long		wait_ms = 10;
		ssize_t		got;

		if (n > 0)
		{
			long		left = tweetlake_batch_timeout_ms -
				(long) ((GetCurrentTimestamp() - first_at) / 1000);

			if (left <= 0)
				break;
			wait_ms = Min(wait_ms, left);
		}
		got = rd_kafka_consume_batch_queue(cons.queue, (int) wait_ms, msgs + n, max - n);
		if (got > 0)
		{
			int			base = n;

			/* keep the messages, act on and drop the error events (n never passes base + k) */
			for (ssize_t k = 0; k < got; k++)
			{
				rd_kafka_message_t *m = msgs[base + k];

				if (m->err != RD_KAFKA_RESP_ERR_NO_ERROR)
				{
					if (m->err == RD_KAFKA_RESP_ERR__AUTO_OFFSET_RESET ||
						m->err == RD_KAFKA_RESP_ERR_OFFSET_OUT_OF_RANGE)
						offset_out_of_range(m->partition);
					else if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
						tl_slot_error(cons.slot, "kafka: %s", tl_redact(rd_kafka_message_errstr(m)));
					rd_kafka_message_destroy(m);
					continue;
				}
				if (n == 0)
					first_at = GetCurrentTimestamp();
				msgs[n++] = m;
			}
		}
		CHECK_FOR_INTERRUPTS();
		if (!PostmasterIsAlive())
			proc_exit(1);
		if (cons.reconnect)
			break;
		if (ConfigReloadPending || (n == 0 && got <= 0 && tl_shared->broker_generation != cons.broker_generation
									&& (tweetlake_brokers == NULL || tweetlake_brokers[0] == '\0')))
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

/*
 * Writes one batch: offsets (fenced) + bronze rows + dead letters, one transaction.
 * Messages below the committed offset (re-deliveries) are skipped.
 */
static void
write_batch(rd_kafka_message_t **msgs, int n)
{
	Datum	   *raws = palloc(sizeof(Datum) * n);
	int32	   *parts = palloc(sizeof(int32) * n);
	int64	   *offs = palloc(sizeof(int64) * n);
	Datum	   *stamps = palloc(sizeof(Datum) * n);
	bool	   *stamp_nulls = palloc(sizeof(bool) * n);
	int			ngood = 0;
	Datum	   *dl_raws = palloc(sizeof(Datum) * n);
	Datum	   *dl_reasons = palloc(sizeof(Datum) * n);
	int32	   *dl_parts = palloc(sizeof(int32) * n);
	int64	   *dl_offs = palloc(sizeof(int64) * n);
	int			ndead = 0;
	int64	   *next = palloc(sizeof(int64) * cons.nmine);
	int32	   *touched = palloc(sizeof(int32) * cons.nmine);
	int64	   *touched_next = palloc(sizeof(int64) * cons.nmine);
	int64	   *touched_expected = palloc(sizeof(int64) * cons.nmine);
	int			ntouched = 0;
	uint64		bytes = 0;
	Datum		topic = CStringGetTextDatum(cons.topic);
	char		activity[64];

	/* below this, a message is already stored (or, after a broker reset, no longer exists) */
	for (int i = 0; i < cons.nmine; i++)
		next[i] = cons.resume[i] >= 0 ? cons.resume[i] : cons.committed[i];

	for (int k = 0; k < n; k++)
	{
		rd_kafka_message_t *m = msgs[k];
		int			i = partition_index(m->partition);
		const char *payload = m->payload ? (const char *) m->payload : "";
		char	   *problem;

		if (i < 0 || m->offset < next[i])
			continue;			/* not ours, or already stored */
		next[i] = m->offset + 1;
		bytes += m->len;

		problem = payload_problem(payload, m->len);
		if (problem == NULL)
		{
			rd_kafka_timestamp_type_t tstype;
			int64		ms = rd_kafka_message_timestamp(m, &tstype);

			raws[ngood] = PointerGetDatum(cstring_to_text_with_len(payload, (int) m->len));
			parts[ngood] = m->partition;
			offs[ngood] = m->offset;
			stamp_nulls[ngood] = ms < 0;
			stamps[ngood] = TimestampTzGetDatum(ms * 1000 - UNIX_EPOCH_OFFSET_US);
			ngood++;
		}
		else
		{
			bytea	   *b = palloc(VARHDRSZ + m->len);

			SET_VARSIZE(b, VARHDRSZ + m->len);
			memcpy(VARDATA(b), payload, m->len);
			dl_raws[ndead] = PointerGetDatum(b);
			dl_reasons[ndead] = CStringGetTextDatum(problem);
			dl_parts[ndead] = m->partition;
			dl_offs[ndead] = m->offset;
			ndead++;
		}
	}
	for (int i = 0; i < cons.nmine; i++)
		if (next[i] != cons.committed[i])
		{
			touched[ntouched] = cons.mine[i];
			touched_next[ntouched] = next[i];
			touched_expected[ntouched] = cons.committed[i];
			ntouched++;
		}
	if (ntouched == 0)
		return;

	snprintf(activity, sizeof(activity), "writing a batch of %d messages", ngood + ndead);
	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	SPI_connect();
	PushActiveSnapshot(GetTransactionSnapshot());
	pgstat_report_activity(STATE_RUNNING, activity);

	/* 1. fence: lock our offsets rows and check nobody else moved them */
	{
		Oid			types[2] = {TEXTOID, INT4ARRAYOID};
		Datum		values[2] = {topic, int4_array(touched, ntouched)};

		run_sql("SELECT partition, next_offset FROM tweetlake.offsets "
				"WHERE topic = $1 AND partition = ANY ($2) ORDER BY partition FOR UPDATE",
				2, types, values);
		for (uint64 r = 0; r < SPI_processed; r++)
		{
			bool		isnull;
			int32		p = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[r], SPI_tuptable->tupdesc, 1, &isnull));
			int64		o = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[r], SPI_tuptable->tupdesc, 2, &isnull));

			for (int t = 0; t < ntouched; t++)
				if (touched[t] == p && touched_expected[t] != o)
					ereport(ERROR,
							(errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
							 errmsg("offset of partition %d moved from " INT64_FORMAT " to " INT64_FORMAT " under this consumer",
									p, touched_expected[t], o),
							 errdetail("Another consumer wrote this partition; this batch is dropped and re-read from the stored offset.")));
		}
		if (SPI_processed != (uint64) ntouched)
			ereport(ERROR,
					(errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
					 errmsg("tweetlake.offsets rows of topic \"%s\" disappeared", cons.topic)));
	}

	/* 2. the messages: bronze (valid text) and dead letters (not text at all) */
	if (ngood > 0)
	{
		Oid			types[5] = {TEXTOID, TEXTARRAYOID, INT4ARRAYOID, INT8ARRAYOID, TIMESTAMPTZARRAYOID};
		Datum		values[5];
		int			dims[1] = {ngood};
		int			lbs[1] = {1};

		values[0] = topic;
		values[1] = PointerGetDatum(construct_array(raws, ngood, TEXTOID, -1, false, TYPALIGN_INT));
		values[2] = int4_array(parts, ngood);
		values[3] = int8_array(offs, ngood);
		values[4] = PointerGetDatum(construct_md_array(stamps, stamp_nulls, 1, dims, lbs,
													   TIMESTAMPTZOID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
		run_sql("INSERT INTO bronze.tweets (raw, kafka_topic, kafka_partition, kafka_offset, kafka_timestamp) "
				"SELECT r, $1, p, o, t FROM unnest($2, $3, $4, $5) AS u(r, p, o, t)",
				5, types, values);
	}
	if (ndead > 0)
	{
		Oid			types[5] = {TEXTOID, BYTEAARRAYOID, TEXTARRAYOID, INT4ARRAYOID, INT8ARRAYOID};
		Datum		values[5];

		values[0] = topic;
		values[1] = PointerGetDatum(construct_array(dl_raws, ndead, BYTEAOID, -1, false, TYPALIGN_INT));
		values[2] = PointerGetDatum(construct_array(dl_reasons, ndead, TEXTOID, -1, false, TYPALIGN_INT));
		values[3] = int4_array(dl_parts, ndead);
		values[4] = int8_array(dl_offs, ndead);
		run_sql("INSERT INTO bronze.dead_letters (raw, reason, kafka_topic, kafka_partition, kafka_offset) "
				"SELECT r, w, $1, p, o FROM unnest($2, $3, $4, $5) AS u(r, w, p, o)",
				5, types, values);
	}

	/* 3. the offsets these rows cover, in the same transaction */
	{
		Oid			types[3] = {TEXTOID, INT4ARRAYOID, INT8ARRAYOID};
		Datum		values[3] = {topic, int4_array(touched, ntouched), int8_array(touched_next, ntouched)};

		run_sql("UPDATE tweetlake.offsets o SET next_offset = u.n, updated_at = now() "
				"FROM unnest($2, $3) AS u(p, n) WHERE o.topic = $1 AND o.partition = u.p",
				3, types, values);
	}

	PopActiveSnapshot();
	SPI_finish();
	CommitTransactionCommand();
	pgstat_report_stat(false);
	pgstat_report_activity(STATE_IDLE, NULL);

	/* committed: now it is safe to move on */
	for (int i = 0; i < cons.nmine; i++)
	{
		if (next[i] != cons.committed[i])
			cons.resume[i] = -1;
		cons.committed[i] = next[i];
	}
	tl_slot_count(cons.slot, ngood + ndead, bytes);
	if (ndead > 0)
	{
		SpinLockAcquire(&cons.slot->mutex);
		cons.slot->dead_letters += ndead;
		SpinLockRelease(&cons.slot->mutex);
	}
	LWLockAcquire(tl_shared->lock, LW_EXCLUSIVE);
	for (int i = 0; i < cons.nmine; i++)
	{
		TlPartitionSlot *ps = &tl_shared->partitions[cons.mine[i]];
		int64		lo,
					hi;

		ps->next_offset = Max(cons.committed[i], 0);
		/* cached by librdkafka from fetch responses: no round trip */
		if (rd_kafka_get_watermark_offsets(cons.rk, cons.topic, cons.mine[i], &lo, &hi) == 0 && hi >= 0)
			ps->high_watermark = hi;
		ps->updated_at = GetCurrentTimestamp();
	}
	LWLockRelease(tl_shared->lock);
}

static bool
settings_changed(void)
{
	char	   *now = tl_kafka_settings();
	bool		changed = strcmp(cons.settings, now) != 0;

	pfree(now);
	return changed ||
		((tweetlake_brokers[0] == '\0') && tl_shared->broker_generation != cons.broker_generation);
}

static void
remember_settings(void)
{
	MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);

	if (cons.settings)
	{
		pfree(cons.settings);
		pfree(cons.topic);
	}
	cons.settings = tl_kafka_settings();
	cons.topic = pstrdup(tweetlake_topic);
	cons.broker_generation = tl_shared->broker_generation;
	MemoryContextSwitchTo(old);
}

void
tweetlake_consumer_main(Datum arg)
{
	rd_kafka_message_t **msgs = NULL;
	int			msgs_cap = 0;

	memset(&cons, 0, sizeof(cons));
	cons.index = DatumGetInt32(arg);
	memcpy(&cons.nconsumers, MyBgworkerEntry->bgw_extra, sizeof(int));
	if (cons.nconsumers < 1)
		cons.nconsumers = 1;

	pqsignal(SIGTERM, SignalHandlerForShutdownRequest);
	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	BackgroundWorkerUnblockSignals();
	BackgroundWorkerInitializeConnection(tweetlake_database, NULL, 0);

	cons.slot = tl_slot_acquire(TL_ROLE_CONSUMER, cons.index);
	cons.batch_ctx = AllocSetContextCreate(TopMemoryContext, "tweetlake consumer batch",
										   ALLOCSET_DEFAULT_SIZES);
	before_shmem_exit(consumer_exit, (Datum) 0);

	while (!ShutdownRequestPending)
	{
		int			n;
		MemoryContext old;

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
		if (cons.rk != NULL && settings_changed())
		{
			ereport(LOG, (errmsg("tweetlake consumer %d: Kafka settings changed, reconnecting", cons.index)));
			disconnect();
		}
		if (cons.rk == NULL)
		{
			remember_settings();
			if (!connect_consumer())
			{
				(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
								 2000L, PG_WAIT_EXTENSION);
				ResetLatch(MyLatch);
				continue;
			}
		}

		if (msgs_cap < tweetlake_batch_size)
		{
			msgs_cap = tweetlake_batch_size;
			msgs = msgs ? repalloc(msgs, sizeof(*msgs) * msgs_cap)
				: MemoryContextAlloc(TopMemoryContext, sizeof(*msgs) * msgs_cap);
		}
		n = collect_batch(msgs, tweetlake_batch_size);
		if (n == 0)
			continue;

		old = MemoryContextSwitchTo(cons.batch_ctx);
		PG_TRY();
		{
			write_batch(msgs, n);
		}
		PG_CATCH();
		{
			ErrorData  *edata;

			/* the batch is not stored: report, roll back, re-read from the stored offsets */
			MemoryContextSwitchTo(cons.batch_ctx);
			edata = CopyErrorData();
			FlushErrorState();
			AbortCurrentTransaction();
			tl_slot_error(cons.slot, "batch not stored, will retry: %s", edata->message);
			ereport(LOG,
					(errmsg("tweetlake consumer %d: batch of %d messages not stored, retrying: %s",
							cons.index, n, edata->message)));
			pgstat_report_activity(STATE_IDLE, NULL);
			for (int k = 0; k < n; k++)
				rd_kafka_message_destroy(msgs[k]);
			n = 0;
			load_offsets(NULL);
			assign_from_committed();
			(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
							 1000L, PG_WAIT_EXTENSION);
			ResetLatch(MyLatch);
		}
		PG_END_TRY();
		MemoryContextSwitchTo(old);
		for (int k = 0; k < n; k++)
			rd_kafka_message_destroy(msgs[k]);
		MemoryContextReset(cons.batch_ctx);
	}

	tl_slot_set_state(cons.slot, "stopping");
	disconnect();
	proc_exit(0);
}
