/*
 * broker.c - the embedded Kafka default: a background worker that runs librdkafka's mock
 * cluster on a loopback port when tweetlake.brokers is empty, creates the topic, and
 * publishes its bootstrap address in shared memory (tweetlake.bootstrap_servers()).
 * Started and stopped by the launcher.  Everything it holds is in memory and is gone when
 * the worker (or the server) stops; the README says what that means for the consumers.
 */
#include "tweetlake.h"

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "utils/guc.h"

static rd_kafka_t *broker_rk = NULL;
static rd_kafka_mock_cluster_t *mcluster = NULL;

/* Withdraws the address before the cluster goes, so no client is sent to a dead port. */
static void
broker_shutdown(int code, Datum arg)
{
	LWLockAcquire(tl_shared->lock, LW_EXCLUSIVE);
	tl_shared->bootstrap[0] = '\0';
	LWLockRelease(tl_shared->lock);
	if (mcluster)
		rd_kafka_mock_cluster_destroy(mcluster);
	if (broker_rk)
		rd_kafka_destroy(broker_rk);
	mcluster = NULL;
	broker_rk = NULL;
}

void
tweetlake_broker_main(Datum arg)
{
	TlWorkerSlot *slot;
	rd_kafka_conf_t *conf;
	char		errstr[512];
	const char *bootstraps;
	rd_kafka_resp_err_t err;
	char		state[64];
	sigset_t	saved;

	pqsignal(SIGTERM, SignalHandlerForShutdownRequest);
	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	BackgroundWorkerUnblockSignals();

	/* no database: only a backend entry, for pg_stat_activity */
	BackgroundWorkerInitializeConnection(NULL, NULL, 0);
	slot = tl_slot_acquire(TL_ROLE_BROKER, "", 0);
	pgstat_report_appname("tweetlake broker");

	/* The mock cluster needs an rd_kafka_t for its bookkeeping only. */
	conf = rd_kafka_conf_new();
	rd_kafka_conf_set(conf, "client.id", "tweetlake-broker", errstr, sizeof(errstr));

	/*
	 * it never connects anywhere: keep its "no bootstrap.servers" notice out
	 * of the log
	 */
	rd_kafka_conf_set(conf, "log_level", "3", errstr, sizeof(errstr));

	/* the mock cluster's threads too, as tl_kafka_new() does for the client's */
	tl_block_signals(&saved);
	broker_rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
	if (broker_rk != NULL)
		mcluster = rd_kafka_mock_cluster_new(broker_rk, 1);
	tl_restore_signals(&saved);
	if (broker_rk == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_SYSTEM_ERROR),
				 errmsg("could not create the embedded Kafka broker"),
				 errdetail("%s", errstr)));
	before_shmem_exit(broker_shutdown, (Datum) 0);

	if (mcluster == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_SYSTEM_ERROR),
				 errmsg("could not start the embedded Kafka broker")));
	err = rd_kafka_mock_topic_create(mcluster, tweetlake_topic, tweetlake_partitions, 1);
	if (err)
		ereport(ERROR,
				(errcode(ERRCODE_SYSTEM_ERROR),
				 errmsg("could not create topic \"%s\" on the embedded Kafka broker", tweetlake_topic),
				 errdetail("%s", rd_kafka_err2str(err))));
	bootstraps = rd_kafka_mock_cluster_bootstraps(mcluster);

	LWLockAcquire(tl_shared->lock, LW_EXCLUSIVE);
	strlcpy(tl_shared->bootstrap, bootstraps, sizeof(tl_shared->bootstrap));
	tl_shared->broker_generation++;
	LWLockRelease(tl_shared->lock);

	snprintf(state, sizeof(state), "serving %s", bootstraps);
	tl_slot_set_state(slot, state);
	pgstat_report_activity(STATE_IDLE, state);
	ereport(LOG,
			(errmsg("tweetlake embedded Kafka broker listening on %s, topic \"%s\" with %d partitions",
					bootstraps, tweetlake_topic, tweetlake_partitions)));

	/*
	 * librdkafka serves the cluster from its own threads; this loop only
	 * waits to stop.
	 */
	while (!ShutdownRequestPending)
	{
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 1000L, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}
	}
	proc_exit(0);
}
