/*
 * guc.c - tweetlake.* settings, defined from _PG_init.  Each is documented in the README
 * ("Settings").  PGC_POSTMASTER only where a change really needs a restart; the workers
 * re-read the rest on SIGHUP (pg_ctl reload / SELECT pg_reload_conf()).
 */
#include "tweetlake.h"

#include "miscadmin.h"
#include "utils/guc.h"

int			tweetlake_batch_size = 10000;
int			tweetlake_batch_timeout_ms = 100;
int			tweetlake_batch_max_bytes = 16 * 1024 * 1024;
int			tweetlake_max_text_length = 1000;
int			tweetlake_max_message_bytes = 1024 * 1024;
char	   *tweetlake_database = NULL;
char	   *tweetlake_brokers = NULL;
char	   *tweetlake_topic = NULL;
int			tweetlake_partitions = 4;
int			tweetlake_generator_rate = 1000;
double		tweetlake_generator_update_share = 0;
double		tweetlake_generator_delete_share = 0;
int			tweetlake_consumers = 1;
char	   *tweetlake_kafka_config = NULL;
char	   *tweetlake_kafka_config_file = NULL;
bool		tweetlake_autostart = true;
bool		tweetlake_parse_fast_path = true;
int			tweetlake_bronze_retention = 0;
int			tweetlake_malloc_arenas = 1;

/*
 * Settings that need a server restart, used only by the workers: they can be defined only
 * while shared_preload_libraries is processed (PostgreSQL refuses them later), and without
 * preloading there are no workers to read them.
 */
static void
define_postmaster_gucs(void)
{
	DefineCustomStringVariable("tweetlake.database",
							   "Database the tweetlake workers connect to.",
							   "The extension must be created there; the workers wait until it is.",
							   &tweetlake_database,
							   "postgres",
							   PGC_POSTMASTER, 0,
							   NULL, NULL, NULL);

	DefineCustomIntVariable("tweetlake.partitions",
							"Partitions of the topic on the embedded broker.",
							"Ignored with an external broker, where the topic's own partitions count.",
							&tweetlake_partitions,
							4, 1, TL_MAX_PARTITIONS,
							PGC_POSTMASTER, 0,
							NULL, NULL, NULL);

	DefineCustomBoolVariable("tweetlake.autostart",
							 "Start the generator and consumers when the server starts.",
							 "When off, they wait for tweetlake.start().",
							 &tweetlake_autostart,
							 true,
							 PGC_POSTMASTER, 0,
							 NULL, NULL, NULL);
}

void
tweetlake_define_gucs(void)
{
	if (process_shared_preload_libraries_in_progress)
		define_postmaster_gucs();

	DefineCustomStringVariable("tweetlake.brokers",
							   "Kafka bootstrap servers the workers connect to.",
							   "A comma-separated list of host:port. When empty, the workers use the embedded broker.",
							   &tweetlake_brokers,
							   "",
							   PGC_SIGHUP, 0,
							   NULL, NULL, NULL);

	DefineCustomStringVariable("tweetlake.topic",
							   "Kafka topic the generator produces to and the consumers read.",
							   NULL,
							   &tweetlake_topic,
							   "tweets",
							   PGC_SIGHUP, 0,
							   NULL, NULL, NULL);

	DefineCustomIntVariable("tweetlake.generator_rate",
							"Messages per second the generator worker produces.",
							"New tweets, updates and tombstones alike. Zero turns the generator off, "
							"and -1 makes it produce as fast as possible.",
							&tweetlake_generator_rate,
							1000, -1, 10000000,
							PGC_SIGHUP, 0,
							NULL, NULL, NULL);

	DefineCustomRealVariable("tweetlake.generator_update_share",
							 "Share of the generator worker's messages that update a tweet it produced earlier.",
							 "An update repeats a recent tweet with its engagement counts grown and a later updated_at.",
							 &tweetlake_generator_update_share,
							 0.0, 0.0, 1.0,
							 PGC_SIGHUP, 0,
							 NULL, NULL, NULL);

	DefineCustomRealVariable("tweetlake.generator_delete_share",
							 "Share of the generator worker's messages that are tombstones of tweets it produced earlier.",
							 "A tombstone has the tweet_id as its key and no value; it deletes the tweet.",
							 &tweetlake_generator_delete_share,
							 0.0, 0.0, 1.0,
							 PGC_SIGHUP, 0,
							 NULL, NULL, NULL);

	DefineCustomIntVariable("tweetlake.consumers",
							"Number of consumer workers.",
							"The topic's partitions are spread over them.",
							&tweetlake_consumers,
							1, 1, TL_MAX_CONSUMERS,
							PGC_SIGHUP, 0,
							NULL, NULL, NULL);

	/*
	 * USERSET: a session may choose its own load_generated batches; workers
	 * use the file's
	 */
	DefineCustomIntVariable("tweetlake.batch_size",
							"Rows per bronze batch written by load_generated and the consumers.",
							"Each batch is one INSERT into bronze.tweets, so one run of the silver/gold triggers.",
							&tweetlake_batch_size,
							10000, 1, 1000000,
							PGC_USERSET, 0,
							NULL, NULL, NULL);

	DefineCustomIntVariable("tweetlake.batch_timeout_ms",
							"Longest a consumer waits to fill a batch before writing what it has.",
							NULL,
							&tweetlake_batch_timeout_ms,
							100, 1, 60000,
							PGC_SIGHUP, GUC_UNIT_MS,
							NULL, NULL, NULL);

	DefineCustomIntVariable("tweetlake.batch_max_bytes",
							"Most message bytes a consumer puts into one batch.",
							"A batch ends at tweetlake.batch_size messages or at this many bytes of "
							"payload, whichever comes first; a single larger message forms a batch of its own.",
							&tweetlake_batch_max_bytes,
							16 * 1024 * 1024, 1024, INT_MAX,
							PGC_SIGHUP, GUC_UNIT_BYTE,
							NULL, NULL, NULL);

	DefineCustomStringVariable("tweetlake.kafka_config",
							   "Extra librdkafka properties.",
							   "A list of key=value separated by semicolons. "
							   "Keys prefixed producer. or consumer. apply to that client only. "
							   "Values of keys that look like secrets never appear in logs or tweetlake.status.",
							   &tweetlake_kafka_config,
							   "",
							   PGC_SIGHUP, GUC_SUPERUSER_ONLY,
							   NULL, NULL, NULL);

	DefineCustomStringVariable("tweetlake.kafka_config_file",
							   "File of more librdkafka properties, the place for secrets.",
							   "One key=value per line, with the same keys and prefixes as tweetlake.kafka_config, "
							   "applied after it; # starts a comment. "
							   "PostgreSQL logs the new value of a setting changed by a reload, so passwords "
							   "belong in this file (readable by the server only), not in tweetlake.kafka_config.",
							   &tweetlake_kafka_config_file,
							   "",
							   PGC_SIGHUP, GUC_SUPERUSER_ONLY,
							   NULL, NULL, NULL);

	DefineCustomIntVariable("tweetlake.max_text_length",
							"Longest tweet text, in characters, accepted into silver.",
							"Longer messages go to bronze.dead_letters.",
							&tweetlake_max_text_length,
							1000, 1, 1000000,
							PGC_SIGHUP, 0,
							NULL, NULL, NULL);

	DefineCustomIntVariable("tweetlake.max_message_bytes",
							"Largest message, in bytes, accepted into silver.",
							"Larger messages go to bronze.dead_letters.",
							&tweetlake_max_message_bytes,
							1024 * 1024, 1024, 64 * 1024 * 1024,
							PGC_SIGHUP, GUC_UNIT_BYTE,
							NULL, NULL, NULL);

	/* read by tweetlake.maintain_partitions(), which the launcher runs */
	DefineCustomIntVariable("tweetlake.bronze_retention",
							"How long bronze.tweets and bronze.dead_letters keep a message.",
							"Day partitions whose every row is older than this are emptied and dropped by the "
							"launcher (every minute); 0 keeps everything. Silver and gold are never trimmed.",
							&tweetlake_bronze_retention,
							0, 0, INT_MAX,
							PGC_SIGHUP, GUC_UNIT_MIN,
							NULL, NULL, NULL);

	/* read by each worker with a Kafka client when it starts (memory.c) */
	DefineCustomIntVariable("tweetlake.malloc_arenas",
							"Most glibc malloc arenas a consumer or the generator uses.",
							"1 keeps librdkafka's threads in the worker's main heap, which a consumer gives back "
							"to the kernel after its batches; 0 leaves glibc's default (8 per core). "
							"A worker reads it when it starts.",
							&tweetlake_malloc_arenas,
							1, 0, 64,
							PGC_SIGHUP, 0,
							NULL, NULL, NULL);

	/*
	 * A testing and diagnostic switch: off sends every message the json-c
	 * way, so t/043_parse_paths.pl can check that both ways give the same
	 * rows
	 */
	DefineCustomBoolVariable("tweetlake.parse_fast_path",
							 "Lets parse_tweet read well-formed messages with its own one-pass scan.",
							 "For testing and diagnosis: when off, every message is read by json-c, "
							 "which gives the same rows, only slower.",
							 &tweetlake_parse_fast_path,
							 true,
							 PGC_USERSET, 0,
							 NULL, NULL, NULL);

	MarkGUCPrefixReserved("tweetlake");
}
