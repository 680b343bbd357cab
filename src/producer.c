/*
 * producer.c - Kafka producing: the generator background worker (started by the launcher)
 * turns generator.c's tweets into messages on tweetlake.topic at tweetlake.generator_rate
 * tweets/s (token bucket; -1 = as fast as the brokers take them), keyed by tweet_id, with
 * an idempotent producer; tweetlake.produce(payload) sends one message from SQL.
 */
#include "tweetlake.h"

#include <librdkafka/rdkafka.h>

#include "generator.h"

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

/* The generator's JSON starts {"tweet_id":"<uuid>" : the key is read from there. */
#define ID_PREFIX		"{\"tweet_id\":\""
#define ID_PREFIX_LEN	(sizeof(ID_PREFIX) - 1)

static TlWorkerSlot *gen_slot = NULL;
static rd_kafka_t *gen_rk = NULL;
static char *gen_settings = NULL;

/* Delivery reports, served by rd_kafka_poll() in this thread. */
static void
delivery_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
	if (m->err)
	{
		SpinLockAcquire(&gen_slot->mutex);
		gen_slot->errors++;
		SpinLockRelease(&gen_slot->mutex);
		tl_slot_error(gen_slot, "delivery failed: %s", rd_kafka_err2str(m->err));
	}
}

static bool gen_cb_error_seen;	/* gen_error_cb ran since the flag was last cleared */

static void
gen_error_cb(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
	gen_cb_error_seen = true;
	tl_slot_error(gen_slot, "kafka: %s", tl_redact(reason));
}

static void
gen_disconnect(void)
{
	if (gen_rk)
	{
		rd_kafka_flush(gen_rk, 10 * 1000);
		rd_kafka_destroy(gen_rk);
		gen_rk = NULL;
	}
}

static void
gen_exit(int code, Datum arg)
{
	gen_disconnect();
}

/* Everything a producer was built from, to notice a reload that changes it. */
static char *
current_settings(void)
{
	char	   *s = tl_kafka_settings();
	char	   *r = psprintf("%s|%u", s, (tweetlake_brokers[0] == '\0') ? tl_shared->broker_generation : 0);

	pfree(s);
	return r;
}

static bool
gen_connect(void)
{
	char		errstr[512];
	rd_kafka_conf_t *conf;

	if (tl_bootstrap_servers(false) == NULL)
		return false;			/* the embedded broker is starting */
	conf = tl_kafka_conf("producer", errstr, sizeof(errstr));
	if (conf == NULL)
	{
		tl_slot_error(gen_slot, "%s", errstr);
		return false;
	}
	/* idempotent: retries never duplicate or reorder within a partition */
	rd_kafka_conf_set(conf, "enable.idempotence", "true", errstr, sizeof(errstr));
	rd_kafka_conf_set(conf, "linger.ms", "5", errstr, sizeof(errstr));
	rd_kafka_conf_set(conf, "queue.buffering.max.messages", "200000", errstr, sizeof(errstr));
	rd_kafka_conf_set_dr_msg_cb(conf, delivery_cb);
	rd_kafka_conf_set_error_cb(conf, gen_error_cb);
	gen_rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
	if (gen_rk == NULL)
	{
		tl_slot_error(gen_slot, "could not create Kafka producer: %s", tl_redact(errstr));
		tl_slot_set_state(gen_slot, "waiting for a broker");
		return false;
	}

	/*
	 * Produce only to a topic the cluster has: messages for a missing one would sit in
	 * the queue until they time out.
	 */
	tl_slot_set_state(gen_slot, "connecting");
	{
		const struct rd_kafka_metadata *md = NULL;
		rd_kafka_topic_t *rkt = rd_kafka_topic_new(gen_rk, tweetlake_topic, NULL);
		rd_kafka_resp_err_t err;
		rd_kafka_resp_err_t terr;

		gen_cb_error_seen = false;
		err = rd_kafka_metadata(gen_rk, 0, rkt, &md, 5000);
		terr = err;
		rd_kafka_topic_destroy(rkt);
		/* serve gen_error_cb now: it has the cause (say, failed authentication) */
		rd_kafka_poll(gen_rk, 0);
		if (!err)
			terr = md->topic_cnt != 1 ? RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART :
				md->topics[0].err ? md->topics[0].err :
				md->topics[0].partition_cnt == 0 ? RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART : 0;
		if (md)
			rd_kafka_metadata_destroy(md);
		if (terr)
		{
			if (gen_cb_error_seen && terr != RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART)
				;				/* keep the broker's own reason in last_error */
			else if (terr == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART)
				tl_slot_error(gen_slot, "topic \"%s\" does not exist on %s (create it; tweetlake does not create topics)",
							  tweetlake_topic, tl_bootstrap_servers(false));
			else
				tl_slot_error(gen_slot, "topic \"%s\" on %s: %s", tweetlake_topic,
							  tl_bootstrap_servers(false), rd_kafka_err2str(terr));
			tl_slot_set_state(gen_slot, terr == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART ?
							  "waiting for the topic" : "waiting for a broker");
			rd_kafka_destroy(gen_rk);
			gen_rk = NULL;
			return false;
		}
	}
	return true;
}

/* Produces one generated tweet; false when the local queue is full (back-pressure). */
static bool
produce_one(TweetGenerator *gen, char *buf, int64 now_unix_us, bool *pending, size_t *pending_len)
{
	rd_kafka_resp_err_t err;
	size_t		len;
	size_t		key_len;
	const char *key = buf + ID_PREFIX_LEN;

	/* a tweet refused for a full queue is kept and sent first next time */
	if (!*pending)
	{
		*pending_len = tg_next(gen, now_unix_us, buf);
		*pending = true;
	}
	len = *pending_len;
	{
		const char *q = memcmp(buf, ID_PREFIX, ID_PREFIX_LEN) == 0 ?
			(const char *) memchr(buf + ID_PREFIX_LEN, '"', len - ID_PREFIX_LEN) : NULL;

		key_len = q ? (size_t) (q - (buf + ID_PREFIX_LEN)) : 0;
	}
	err = rd_kafka_producev(gen_rk,
							RD_KAFKA_V_TOPIC(tweetlake_topic),
							RD_KAFKA_V_KEY(key, key_len),
							RD_KAFKA_V_VALUE(buf, len),
							RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
							RD_KAFKA_V_END);
	if (err == RD_KAFKA_RESP_ERR__QUEUE_FULL)
		return false;
	*pending = false;
	if (err)
	{
		SpinLockAcquire(&gen_slot->mutex);
		gen_slot->errors++;
		SpinLockRelease(&gen_slot->mutex);
		tl_slot_error(gen_slot, "produce failed: %s", rd_kafka_err2str(err));
		return true;
	}
	tl_slot_count(gen_slot, 1, len);
	return true;
}

void
tweetlake_generator_main(Datum arg)
{
	TgOptions	opt;
	TweetGenerator *gen;
	char	   *buf;
	double		tokens = 0;
	TimestampTz last = GetCurrentTimestamp();
	bool		pending = false;
	size_t		pending_len = 0;
	char		state[64];
	int			shown_rate = INT_MIN;

	pqsignal(SIGTERM, SignalHandlerForShutdownRequest);
	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	BackgroundWorkerUnblockSignals();

	/* no database: only a backend entry, for pg_stat_activity */
	BackgroundWorkerInitializeConnection(NULL, NULL, 0);
	gen_slot = tl_slot_acquire(TL_ROLE_GENERATOR, 0);
	before_shmem_exit(gen_exit, (Datum) 0);

	/* live mode: created_at is the time of producing; the seed only has to differ per run */
	memset(&opt, 0, sizeof(opt));
	opt.seed = (uint64) GetCurrentTimestamp() ^ ((uint64) MyProcPid << 32);
	opt.n = 1;
	opt.start_us = GetCurrentTimestamp() + UNIX_EPOCH_OFFSET_US;
	opt.span_us = USECS_PER_SEC;
	{
		MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);

		gen = tg_create(&opt, (tg_alloc_fn) palloc0);
		buf = palloc(TG_MAX_TWEET_BYTES);
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
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}
		if (gen_rk != NULL)
		{
			char	   *s = current_settings();

			if (strcmp(s, gen_settings) != 0)
			{
				ereport(LOG, (errmsg("tweetlake generator: Kafka settings changed, reconnecting")));
				gen_disconnect();
			}
			pfree(s);
		}
		if (gen_rk == NULL)
		{
			MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);

			if (gen_settings)
				pfree(gen_settings);
			gen_settings = current_settings();
			MemoryContextSwitchTo(old);
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

		rate = tweetlake_generator_rate;
		if (rate != shown_rate)
		{
			if (rate < 0)
				snprintf(state, sizeof(state), "producing as fast as possible");
			else
				snprintf(state, sizeof(state), "producing %d tweets/s", rate);
			tl_slot_set_state(gen_slot, state);
			pgstat_report_activity(STATE_RUNNING, state);
			shown_rate = rate;
		}

		now = GetCurrentTimestamp();
		if (rate > 0)
		{
			/* token bucket: the exact elapsed time earns tokens, bursts capped at 100 ms */
			tokens += (double) (now - last) * rate / USECS_PER_SEC;
			tokens = Min(tokens, Max(rate / 10.0, 1.0) + (pending ? 1 : 0));
			last = now;
			while (tokens >= 1.0)
			{
				if (!produce_one(gen, buf, now + UNIX_EPOCH_OFFSET_US, &pending, &pending_len))
					break;		/* queue full: wait for deliveries */
				tokens -= 1.0;
			}
			wait_ms = tokens >= 1.0 ? 10 : Max(1, (long) ((1.0 - tokens) * 1000.0 / rate));
			wait_ms = Min(wait_ms, 100);
		}
		else if (rate < 0)
		{
			/* as fast as possible: fill the queue, then let deliveries drain it */
			for (int i = 0; i < 10000; i++)
				if (!produce_one(gen, buf, now + UNIX_EPOCH_OFFSET_US, &pending, &pending_len))
				{
					rd_kafka_poll(gen_rk, 5);
					break;
				}
			wait_ms = 0;
		}
		rd_kafka_poll(gen_rk, 0);

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
	gen_disconnect();
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
static char *sql_settings = NULL;

static void
sql_delivery_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
	SqlDelivery *d = (SqlDelivery *) m->_private;

	d->done = true;
	d->err = m->err;
	d->partition = m->partition;
	d->offset = m->offset;
}

static char *
sql_current_settings(void)
{
	return tl_kafka_settings();
}

Datum
tweetlake_produce(PG_FUNCTION_ARGS)
{
	text	   *payload = PG_ARGISNULL(0) ? NULL : PG_GETARG_TEXT_PP(0);
	text	   *key = PG_ARGISNULL(1) ? NULL : PG_GETARG_TEXT_PP(1);
	char	   *settings = sql_current_settings();
	SqlDelivery d = {0};
	rd_kafka_resp_err_t err;
	TimestampTz deadline;

	if (sql_rk != NULL && strcmp(settings, sql_settings) != 0)
	{
		rd_kafka_destroy(sql_rk);
		sql_rk = NULL;
	}
	if (sql_rk == NULL)
	{
		char		errstr[512];
		rd_kafka_conf_t *conf = tl_kafka_conf("producer", errstr, sizeof(errstr));

		if (conf == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_CONNECTION_FAILURE),
					 errmsg("cannot produce to Kafka: %s", errstr),
					 errhint("Set tweetlake.brokers, or add tweetlake to shared_preload_libraries for the embedded broker.")));
		rd_kafka_conf_set(conf, "enable.idempotence", "true", errstr, sizeof(errstr));
		rd_kafka_conf_set(conf, "linger.ms", "0", errstr, sizeof(errstr));
		rd_kafka_conf_set_dr_msg_cb(conf, sql_delivery_cb);
		sql_rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
		if (sql_rk == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_CONNECTION_FAILURE),
					 errmsg("could not create Kafka producer: %s", tl_redact(errstr))));
		if (sql_settings)
			free(sql_settings);
		sql_settings = strdup(settings);
	}

	err = rd_kafka_producev(sql_rk,
							RD_KAFKA_V_TOPIC(tweetlake_topic),
							RD_KAFKA_V_VALUE(payload ? VARDATA_ANY(payload) : NULL,
											 payload ? VARSIZE_ANY_EXHDR(payload) : 0),
							RD_KAFKA_V_KEY(key ? VARDATA_ANY(key) : NULL, key ? VARSIZE_ANY_EXHDR(key) : 0),
							RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
							RD_KAFKA_V_OPAQUE(&d),
							RD_KAFKA_V_END);
	if (err)
		ereport(ERROR,
				(errcode(ERRCODE_CONNECTION_FAILURE),
				 errmsg("could not produce to Kafka topic \"%s\": %s", tweetlake_topic, rd_kafka_err2str(err))));

	/* wait for the delivery report: the caller learns about failures, not the log */
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
				 errmsg("Kafka refused the message: %s", rd_kafka_err2str(d.err))));
	PG_RETURN_INT64(d.offset);
}
