/*
 * generator_worker.c - Kafka producing: the generator background worker (started by the
 * launcher for a source whose generator_rate is not 0) turns tweet_model.c's tweets into
 * messages on the source's topic at its rate (the default source: tweetlake.topic at
 * tweetlake.generator_rate) in messages/s (token bucket; -1 = as fast as the brokers take
 * them), keyed by tweet_id, with an idempotent producer; tweetlake.generator_update_share
 * and _delete_share of them are updates and tombstones of tweets it produced earlier.
 * tweetlake.produce(payload) sends one message from SQL.  On the embedded broker it holds
 * back while the consumers are behind (back-pressure, below).
 */
#include "tweetlake.h"

#include <librdkafka/rdkafka.h>

#include "tweet_model.h"

#include "fmgr.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/pmsignal.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

PG_FUNCTION_INFO_V1(tweetlake_produce);

/* On SIGTERM, or before a reconnect, the generator flushes its queue for at most this long. */
#define GEN_FLUSH_MS	10000

static TlWorkerSlot *gen_slot = NULL;
static rd_kafka_t *gen_rk = NULL;
static TlKafkaClient gen_client;	/* gen_rk's error reporting and settings */

/* ------------------------------------------------------------------------
 * Back-pressure on the embedded broker.
 *
 * librdkafka's mock cluster, the embedded broker, keeps at most 5 MiB of record batches
 * per partition and drops the oldest beyond that, read or not: max_size = 5 MiB and
 * max_cnt = 100,000 batches, set in rd_kafka_mock_partition_init() and enforced on each
 * append by rd_kafka_mock_msgset_new() (src/rdkafka_mock.c, the same from librdkafka
 * 1.4.0 through 2.0.2 to today's master).  A consumer further behind than that loses
 * messages.  So on the embedded broker the generator counts, per partition, the bytes of
 * its messages the broker acknowledged (delivery reports give partition, offset and size)
 * at or past the offset the consumers last stored (TlPartitionSlot.next_offset), and stops
 * producing while a partition holds half the limit, until all are back under a quarter.
 * Half, so that even a restarted generator, which cannot see what its predecessor left
 * unread, stays under the limit.  The count limit never binds first: a generated tweet
 * has at least ~700 bytes, so half of 5 MiB holds under 4,000 of them (at most one batch
 * each).  Messages of other producers (kcat, tweetlake.produce()) are not counted and can
 * still overrun the broker.  A real broker keeps data by retention: no back-pressure.
 * ------------------------------------------------------------------------
 */
#define MOCK_PARTITION_MAX_BYTES	(5 * 1024 * 1024)
#define BP_HIGH_BYTES		(MOCK_PARTITION_MAX_BYTES / 2)	/* stop producing here */
#define BP_LOW_BYTES		(MOCK_PARTITION_MAX_BYTES / 4)	/* and go on below this */

/*
 * What the broker stores for a message besides its key and value, at most: the record
 * batch header (61 bytes) when the message is alone in its batch, and the record's own
 * framing (length, attributes, timestamp and offset deltas, key and value lengths, header
 * count: at most 36 bytes of varints).  Compression only makes it smaller.
 */
#define BP_RECORD_OVERHEAD	100
/* the largest message the generator makes, as stored (its key is part of its value) */
#define BP_MAX_RECORD		(2 * TG_MAX_TWEET_BYTES + BP_RECORD_OVERHEAD)
/* while waiting, the consumers' progress is looked at this often */
#define BP_WAIT_MS			100
/* acknowledged messages remembered per partition; neighbours are merged when full */
#define BP_CHUNKS			512

/* Acknowledged messages of a partition, up to and including last_offset. */
typedef struct BpChunk
{
	int64		last_offset;
	int64		bytes;
} BpChunk;

/* What the consumers have not stored yet of one partition: chunks[first .. end - 1]. */
typedef struct BpPartition
{
	BpChunk    *chunks;			/* BP_CHUNKS, oldest first */
	int			first;
	int			end;
	int64		held;			/* their bytes */
} BpPartition;

static bool bp_active = false;	/* connected to the embedded broker */
static int	bp_npartitions = 0;
static BpPartition *bp_parts = NULL;
static uint32 bp_generation = 0;	/* of the embedded broker bp_parts counts */
static char *bp_topic = NULL;	/* and the topic */
static TimestampTz bp_trust_after = 0;	/* older consumer figures: an earlier
										 * broker */
static int64 bp_inflight = 0;	/* produced, not yet acknowledged, in bytes */
static int64 bp_worst_held = 0; /* the most any partition holds */
static int	bp_worst = 0;		/* that partition */
static bool bp_waiting = false;

/* What the broker stores for a message, at most. */
static inline int64
bp_record_bytes(size_t value_len, size_t key_len)
{
	return (int64) value_len + (int64) key_len + BP_RECORD_OVERHEAD;
}

/*
 * After connecting: counts on, or afresh for a new (or the first) embedded broker, whose
 * offsets start again at 0, or another topic.  Until a consumer stores a batch after
 * this, its published next_offset may describe the earlier log, so nothing is taken off
 * the counts by it.
 */
static void
bp_connected(int npartitions)
{
	bp_active = tl_source_embedded();
	bp_inflight = 0;
	if (!bp_active)
		return;
	npartitions = Min(npartitions, TL_MAX_PARTITIONS);
	if (bp_parts != NULL && bp_generation == gen_client.broker_generation &&
		bp_npartitions == npartitions && strcmp(bp_topic, tl_source_topic()) == 0)
		return;
	if (bp_parts == NULL || bp_npartitions != npartitions)
	{
		for (int p = 0; p < bp_npartitions; p++)
			pfree(bp_parts[p].chunks);
		if (bp_parts)
			pfree(bp_parts);
		bp_parts = MemoryContextAllocZero(TopMemoryContext, sizeof(BpPartition) * npartitions);
		for (int p = 0; p < npartitions; p++)
			bp_parts[p].chunks = MemoryContextAlloc(TopMemoryContext, sizeof(BpChunk) * BP_CHUNKS);
		bp_npartitions = npartitions;
	}
	for (int p = 0; p < bp_npartitions; p++)
		bp_parts[p].first = bp_parts[p].end = bp_parts[p].held = 0;
	bp_generation = gen_client.broker_generation;
	if (bp_topic)
		pfree(bp_topic);
	bp_topic = MemoryContextStrdup(TopMemoryContext, tl_source_topic());
	bp_trust_after = GetCurrentTimestamp();
	bp_worst_held = 0;
	bp_waiting = false;
}

/* A delivery report: the broker holds this message (bytes) at offset of partition p. */
static void
bp_acknowledged(int32 p, int64 offset, int64 bytes)
{
	BpPartition *bp;

	if (p < 0 || p >= bp_npartitions || offset < 0)
		return;
	bp = &bp_parts[p];
	if (bp->end == BP_CHUNKS && bp->first > 0)
	{
		memmove(bp->chunks, bp->chunks + bp->first, sizeof(BpChunk) * (bp->end - bp->first));
		bp->end -= bp->first;
		bp->first = 0;
	}
	else if (bp->end == BP_CHUNKS)
	{
		/*
		 * all unread: merge neighbours; the sum stays exact, a chunk is only
		 * taken off later
		 */
		for (int i = 0; i < BP_CHUNKS; i += 2)
		{
			bp->chunks[i / 2].last_offset = bp->chunks[i + 1].last_offset;
			bp->chunks[i / 2].bytes = bp->chunks[i].bytes + bp->chunks[i + 1].bytes;
		}
		bp->end = BP_CHUNKS / 2;
	}
	bp->chunks[bp->end].last_offset = offset;
	bp->chunks[bp->end].bytes = bytes;
	bp->end++;
	bp->held += bytes;
	if (bp->held > bp_worst_held)
	{
		bp_worst_held = bp->held;
		bp_worst = p;
	}
}

/* Takes what the consumers have stored off the counts, and finds the fullest partition. */
static void
bp_refresh(void)
{
	int64		next[TL_MAX_PARTITIONS];
	bool		trusted[TL_MAX_PARTITIONS];
	int32		ids[TL_MAX_PARTITIONS];
	TlPartitionSlot *slots[TL_MAX_PARTITIONS];

	for (int p = 0; p < bp_npartitions; p++)
		ids[p] = p;
	LWLockAcquire(tl_shared->lock, LW_SHARED);
	tl_partition_slots(tl_source.name, ids, bp_npartitions, slots, false);
	for (int p = 0; p < bp_npartitions; p++)
	{
		TlPartitionSlot *ps = slots[p];

		trusted[p] = ps != NULL && ps->updated_at >= bp_trust_after;
		next[p] = ps ? ps->next_offset : 0;
	}
	LWLockRelease(tl_shared->lock);

	bp_worst_held = 0;
	bp_worst = 0;
	for (int p = 0; p < bp_npartitions; p++)
	{
		BpPartition *bp = &bp_parts[p];

		while (trusted[p] && bp->first < bp->end && bp->chunks[bp->first].last_offset < next[p])
			bp->held -= bp->chunks[bp->first++].bytes;
		if (bp->first == bp->end)
			bp->first = bp->end = 0;
		if (bp->held > bp_worst_held)
		{
			bp_worst_held = bp->held;
			bp_worst = p;
		}
	}
}

/*
 * Whether the generator has to wait for the consumers, and if so why (in state): from
 * when a partition holds so much unread that the largest message would take it past
 * BP_HIGH_BYTES until every partition is back under BP_LOW_BYTES, and while no consumer
 * runs at all.
 */
static bool
bp_must_wait(char *state, size_t len)
{
	if (!bp_active)
		return false;
	bp_refresh();
	if (bp_waiting ? bp_worst_held > BP_LOW_BYTES : bp_worst_held + BP_MAX_RECORD > BP_HIGH_BYTES)
	{
		bp_waiting = true;
		snprintf(state, len, "waiting for the consumers: partition %d holds %.1f MB unread",
				 bp_worst, bp_worst_held / 1e6);
		return true;
	}
	bp_waiting = false;
	if (tl_running_workers(TL_ROLE_CONSUMER) == 0)
	{
		snprintf(state, len, "waiting for a consumer: none is running");
		return true;
	}
	return false;
}

/* Whether one more message fits under BP_HIGH_BYTES, counting those in flight. */
static inline bool
bp_room(void)
{
	return !bp_active || bp_worst_held + bp_inflight + BP_MAX_RECORD <= BP_HIGH_BYTES;
}

/* Delivery reports, served by rd_kafka_poll() in this thread. */
static void
delivery_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
	if (bp_active)
	{
		int64		bytes = bp_record_bytes(m->len, m->key_len);

		bp_inflight = Max(bp_inflight - bytes, 0);
		if (!m->err)
			bp_acknowledged(m->partition, m->offset, bytes);
	}
	if (m->err && !gen_client.quiet)
	{
		SpinLockAcquire(&gen_slot->mutex);
		gen_slot->errors++;
		SpinLockRelease(&gen_slot->mutex);
		tl_slot_error(gen_slot, "delivery failed: %s", rd_kafka_err2str(m->err));
	}
}

/*
 * Flushes (for at most flush_ms) and destroys the producer; what is still queued then is
 * counted as failed deliveries.  When the broker is going away (the embedded broker
 * withdrew its address) there is nothing to flush to: the wait ends at once and what is
 * queued is dropped without a word, instead of retrying against a dead port and logging
 * each attempt.
 */
static void
gen_disconnect(int flush_ms)
{
	TimestampTz deadline = GetCurrentTimestamp() + (int64) flush_ms * 1000;

	if (gen_rk == NULL)
		return;
	/* in slices, so that a broker going away meanwhile ends the wait */
	while (rd_kafka_outq_len(gen_rk) > 0 && tl_kafka_broker_alive(&gen_client) &&
		   GetCurrentTimestamp() < deadline)
		rd_kafka_flush(gen_rk, 100);
	if (!tl_kafka_broker_alive(&gen_client))
	{
		gen_client.quiet = true;
		rd_kafka_set_log_level(gen_rk, 0);
	}
	rd_kafka_purge(gen_rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
	rd_kafka_poll(gen_rk, 0);	/* the purged messages' delivery reports */
	gen_client.quiet = true;
	rd_kafka_destroy(gen_rk);
	gen_rk = NULL;
	gen_client.quiet = false;
	bp_inflight = 0;
}

static void
gen_exit(int code, Datum arg)
{
	gen_disconnect(0);
}

static bool
gen_connect(void)
{
	char		errstr[512];
	rd_kafka_conf_t *conf;
	int			npartitions;

	if (tl_bootstrap_servers(false) == NULL)
		return false;			/* the embedded broker is starting */
	conf = tl_kafka_conf("producer", errstr, sizeof(errstr));
	if (conf == NULL)
	{
		tl_slot_error(gen_slot, "%s", errstr);
		tl_slot_set_state(gen_slot, "waiting for a valid Kafka configuration");
		return false;
	}
	/* idempotent: retries never duplicate or reorder within a partition */
	rd_kafka_conf_set(conf, "enable.idempotence", "true", errstr, sizeof(errstr));
	rd_kafka_conf_set(conf, "linger.ms", "5", errstr, sizeof(errstr));

	/*
	 * its queue is bounded in tl_kafka_conf(): a full queue makes it wait
	 * (QUEUE_FULL below)
	 */
	rd_kafka_conf_set_dr_msg_cb(conf, delivery_cb);
	tl_kafka_set_error_cb(&gen_client, conf);
	gen_rk = tl_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
	if (gen_rk == NULL)
	{
		tl_slot_error(gen_slot, "could not create Kafka producer: %s", tl_redact(errstr));
		tl_slot_set_state(gen_slot, "waiting for a broker");
		return false;
	}

	/*
	 * Produce only to a topic the cluster has: messages for a missing one
	 * would sit in the queue until they time out.
	 */
	tl_slot_set_state(gen_slot, "connecting");
	npartitions = tl_kafka_topic_partitions(gen_rk, &gen_client, tl_source_topic());
	if (npartitions == 0)
	{
		rd_kafka_destroy(gen_rk);
		gen_rk = NULL;
		return false;
	}
	bp_connected(npartitions);
	return true;
}

/* The generator's next message: one refused for a full queue is kept and sent first. */
typedef struct GenMessage
{
	bool		pending;		/* made, not yet taken by the queue */
	TgKind		kind;			/* a new tweet, an update or a tombstone */
	size_t		len;			/* of the document in buf; 0 for a tombstone */
	char		key[37];		/* the tweet_id */
	char	   *buf;			/* TG_MAX_TWEET_BYTES */
} GenMessage;

/* Produces one generated message; false when the local queue is full (back-pressure). */
static bool
produce_one(TweetGenerator *gen, GenMessage *msg, int64 now_unix_us)
{
	rd_kafka_resp_err_t err;
	size_t		len;
	size_t		key_len;
	void	   *value;

	if (!msg->pending)
	{
		msg->len = tg_next_message(gen, now_unix_us, msg->buf, &msg->kind, msg->key);
		msg->pending = true;
	}
	len = msg->len;
	key_len = strlen(msg->key);
	value = msg->kind == TG_DELETE ? NULL : msg->buf;	/* a tombstone: no value */
	err = rd_kafka_producev(gen_rk,
							RD_KAFKA_V_TOPIC(tl_source_topic()),
							RD_KAFKA_V_KEY(msg->key, key_len),
							RD_KAFKA_V_VALUE(value, len),
							RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
							RD_KAFKA_V_END);
	if (err == RD_KAFKA_RESP_ERR__QUEUE_FULL)
		return false;
	msg->pending = false;
	if (err)
	{
		SpinLockAcquire(&gen_slot->mutex);
		gen_slot->errors++;
		SpinLockRelease(&gen_slot->mutex);
		tl_slot_error(gen_slot, "produce failed: %s", rd_kafka_err2str(err));
		return true;
	}
	tl_slot_count(gen_slot, 1, len);
	if (bp_active)
		bp_inflight += bp_record_bytes(len, key_len);
	return true;
}

void
tweetlake_generator_main(Datum arg)
{
	TlConsumerArgs args;
	TgOptions	opt;
	TweetGenerator *gen;
	GenMessage	msg = {0};
	double		tokens = 0;
	TimestampTz last = GetCurrentTimestamp();
	char		state[64] = "";
	char		wait_state[64];
	int			shown_rate = INT_MIN;
	TimestampTz trimmed_at = 0;
	double		shown_updates = 0;
	double		shown_deletes = 0;

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
	 * The default source's generator needs no database: only a backend entry,
	 * for pg_stat_activity.  Another reads its source's row, as
	 * tweetlake_worker when the launcher found it.
	 */
	memcpy(&args, MyBgworkerEntry->bgw_extra, sizeof(args));
	args.source[sizeof(args.source) - 1] = '\0';
	if (args.source[0] == '\0' || strcmp(args.source, TL_DEFAULT_SOURCE) == 0)
		BackgroundWorkerInitializeConnection(NULL, NULL, 0);
	else
	{
		BackgroundWorkerInitializeConnectionByOid(args.dboid, args.roleoid, 0);
		SetConfigOption("search_path", "pg_catalog, pg_temp", PGC_SUSET, PGC_S_OVERRIDE);
	}
	tl_source_load(args.source);
	gen_slot = tl_slot_acquire(TL_ROLE_GENERATOR, tl_source.name, 0);
	gen_client.slot = gen_slot;
	before_shmem_exit(gen_exit, (Datum) 0);

	/*
	 * live mode: created_at is the time of producing; the seed only has to
	 * differ per run
	 */
	memset(&opt, 0, sizeof(opt));
	opt.seed = (uint64) GetCurrentTimestamp() ^ ((uint64) MyProcPid << 32);
	opt.n = 1;
	opt.start_us = GetCurrentTimestamp() + UNIX_EPOCH_OFFSET_US;
	opt.span_us = USECS_PER_SEC;
	{
		MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);

		gen = tg_create(&opt, (tg_alloc_fn) palloc0);
		msg.buf = palloc(TG_MAX_TWEET_BYTES);
		MemoryContextSwitchTo(old);
	}

	while (!ShutdownRequestPending)
	{
		TimestampTz now;
		int			rate;
		long		wait_ms = 100;

		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending)
		{
			MemoryContext old;

			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
			/* with a share above 0 the model remembers its tweets from now on */
			old = MemoryContextSwitchTo(TopMemoryContext);
			tg_set_shares(gen, tweetlake_generator_update_share, tweetlake_generator_delete_share);
			MemoryContextSwitchTo(old);
		}
		if (gen_rk != NULL && tl_kafka_settings_changed(&gen_client))
		{
			ereport(LOG, (errmsg("tweetlake generator: Kafka settings changed, reconnecting")));
			gen_disconnect(GEN_FLUSH_MS);
		}
		if (gen_rk == NULL)
		{
			tl_kafka_remember_settings(&gen_client);
			if (!gen_connect())
			{
				if (tl_bootstrap_servers(false) == NULL)
					tl_slot_set_state(gen_slot, "waiting for the embedded broker");
				(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
								 2000L, PG_WAIT_EXTENSION);
				ResetLatch(MyLatch);
				continue;
			}
			last = GetCurrentTimestamp();
			tokens = 0;
			shown_rate = INT_MIN;	/* show the producing state again */
		}

		rate = tl_source_generator_rate();

		/*
		 * the embedded broker: wait while the consumers are too far behind,
		 * in short slices; nothing is owed for the time waited
		 */
		if (rate != 0 && bp_must_wait(wait_state, sizeof(wait_state)))
		{
			if (shown_rate != INT_MIN || strcmp(wait_state, state) != 0)
			{
				strlcpy(state, wait_state, sizeof(state));
				tl_slot_set_state(gen_slot, state);
				pgstat_report_activity(STATE_RUNNING, state);
				shown_rate = INT_MIN;	/* show the producing state again */
			}
			tokens = 0;
			last = GetCurrentTimestamp();
			rd_kafka_poll(gen_rk, 0);
			(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
							 BP_WAIT_MS, PG_WAIT_EXTENSION);
			ResetLatch(MyLatch);
			continue;
		}
		if (rate != shown_rate || tweetlake_generator_update_share != shown_updates ||
			tweetlake_generator_delete_share != shown_deletes)
		{
			shown_rate = rate;
			shown_updates = tweetlake_generator_update_share;
			shown_deletes = tweetlake_generator_delete_share;
			if (shown_updates == 0 && shown_deletes == 0)
			{
				if (rate < 0)
					snprintf(state, sizeof(state), "producing as fast as possible");
				else
					snprintf(state, sizeof(state), "producing %d tweets/s", rate);
			}
			else
			{
				char		what[24];

				if (rate < 0)
					strlcpy(what, "as fast as possible", sizeof(what));
				else
					snprintf(what, sizeof(what), "%d msgs/s", rate);
				snprintf(state, sizeof(state), "producing %s: %.3g%% updates, %.3g%% deletes",
						 what, 100 * shown_updates, 100 * shown_deletes);
			}
			tl_slot_set_state(gen_slot, state);
			pgstat_report_activity(STATE_RUNNING, state);
		}

		now = GetCurrentTimestamp();
		if (rate > 0)
		{
			/*
			 * token bucket: the exact elapsed time earns tokens, bursts
			 * capped at 100 ms
			 */
			tokens += (double) (now - last) * rate / USECS_PER_SEC;
			tokens = Min(tokens, Max(rate / 10.0, 1.0) + (msg.pending ? 1 : 0));
			last = now;
			while (tokens >= 1.0)
			{
				if (!bp_room() ||
					!produce_one(gen, &msg, now + UNIX_EPOCH_OFFSET_US))
					break;		/* queue or broker full: wait for deliveries */
				tokens -= 1.0;
			}
			wait_ms = tokens >= 1.0 ? 10 : Max(1, (long) ((1.0 - tokens) * 1000.0 / rate));
			wait_ms = Min(wait_ms, 100);
		}
		else if (rate < 0)
		{
			/*
			 * as fast as possible: fill the queue, then let deliveries drain
			 * it
			 */
			for (int i = 0; i < 10000; i++)
				if (!bp_room() ||
					!produce_one(gen, &msg, now + UNIX_EPOCH_OFFSET_US))
				{
					rd_kafka_poll(gen_rk, 5);
					break;
				}
			wait_ms = 0;
		}
		rd_kafka_poll(gen_rk, 0);

		/*
		 * what the producer queue took while the broker was away (up to its
		 * 16 MB) goes back to the kernel once delivered
		 */
		tl_release_free_memory(&trimmed_at);

		if (wait_ms > 0)
		{
			(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
							 wait_ms, PG_WAIT_EXTENSION);
			ResetLatch(MyLatch);
		}
		else if (!PostmasterIsAlive())
			proc_exit(1);
	}

	tl_slot_set_state(gen_slot, "flushing");
	gen_disconnect(GEN_FLUSH_MS);
	proc_exit(0);
}

/* ------------------------------------------------------------------------
 * tweetlake.produce(payload, key): one message from SQL, delivered before it returns.
 * ------------------------------------------------------------------------ */

typedef struct SqlDelivery
{
	bool		done;
	rd_kafka_resp_err_t err;
	int32		partition;
	int64		offset;
} SqlDelivery;

static rd_kafka_t *sql_rk = NULL;
static TlKafkaClient sql_client;	/* settings only: errors go to the caller */

static void
sql_delivery_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
	SqlDelivery *d = (SqlDelivery *) m->_private;

	d->done = true;
	d->err = m->err;
	d->partition = m->partition;
	d->offset = m->offset;
}

Datum
tweetlake_produce(PG_FUNCTION_ARGS)
{
	text	   *payload = PG_ARGISNULL(0) ? NULL : PG_GETARG_TEXT_PP(0);
	text	   *key = PG_ARGISNULL(1) ? NULL : PG_GETARG_TEXT_PP(1);
	SqlDelivery d = {0};
	rd_kafka_resp_err_t err;
	TimestampTz deadline;

	if (sql_rk != NULL && tl_kafka_settings_changed(&sql_client))
	{
		rd_kafka_destroy(sql_rk);
		sql_rk = NULL;
	}
	if (sql_rk == NULL)
	{
		char		errstr[512];
		rd_kafka_conf_t *conf;

		tl_kafka_remember_settings(&sql_client);
		conf = tl_kafka_conf("producer", errstr, sizeof(errstr));

		if (conf == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_CONNECTION_FAILURE),
					 errmsg("cannot produce to Kafka"),
					 errdetail("%s", errstr),
					 tl_bootstrap_servers(false) == NULL ?
					 errhint("Set tweetlake.brokers, or add tweetlake to shared_preload_libraries for the embedded broker.") : 0));
		rd_kafka_conf_set(conf, "enable.idempotence", "true", errstr, sizeof(errstr));
		rd_kafka_conf_set(conf, "linger.ms", "0", errstr, sizeof(errstr));
		rd_kafka_conf_set_dr_msg_cb(conf, sql_delivery_cb);
		sql_rk = tl_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
		if (sql_rk == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_CONNECTION_FAILURE),
					 errmsg("could not create Kafka producer"),
					 errdetail("%s", tl_redact(errstr))));
	}

	err = rd_kafka_producev(sql_rk,
							RD_KAFKA_V_TOPIC(tl_source_topic()),
							RD_KAFKA_V_VALUE(payload ? VARDATA_ANY(payload) : NULL,
											 payload ? VARSIZE_ANY_EXHDR(payload) : 0),
							RD_KAFKA_V_KEY(key ? VARDATA_ANY(key) : NULL, key ? VARSIZE_ANY_EXHDR(key) : 0),
							RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
							RD_KAFKA_V_OPAQUE(&d),
							RD_KAFKA_V_END);
	if (err)
		ereport(ERROR,
				(errcode(ERRCODE_CONNECTION_FAILURE),
				 errmsg("could not produce to Kafka topic \"%s\"", tl_source_topic()),
				 errdetail("%s", rd_kafka_err2str(err))));

	/*
	 * wait for the delivery report: the caller learns about failures, not the
	 * log
	 */
	deadline = GetCurrentTimestamp() + 30 * USECS_PER_SEC;
	while (!d.done)
	{
		rd_kafka_poll(sql_rk, 100);
		if (d.done)
			break;
		if (GetCurrentTimestamp() > deadline)
		{
			/* purge so the callback never writes into this stack frame later */
			rd_kafka_purge(sql_rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
			rd_kafka_poll(sql_rk, 0);
			ereport(ERROR,
					(errcode(ERRCODE_CONNECTION_FAILURE),
					 errmsg("Kafka did not acknowledge the message within 30 s"),
					 errhint("Check tweetlake.brokers and tweetlake.status.")));
		}
		if (InterruptPending)
		{
			rd_kafka_purge(sql_rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
			rd_kafka_poll(sql_rk, 0);
			CHECK_FOR_INTERRUPTS();
		}
	}
	if (d.err)
		ereport(ERROR,
				(errcode(ERRCODE_CONNECTION_FAILURE),
				 errmsg("Kafka refused the message"),
				 errdetail("%s", rd_kafka_err2str(d.err))));
	PG_RETURN_INT64(d.offset);
}
