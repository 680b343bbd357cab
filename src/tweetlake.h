/*
 * tweetlake.h - declarations shared by the server-side C files of tweetlake: settings
 * (guc.c), the workers' shared memory (status.c), the launcher's hand-over to the consumers
 * (launcher.c), the Kafka client pieces (kafka.c), time helpers (timestamp.c) and the
 * tweet parser's limits (parse.c).
 */
#ifndef TWEETLAKE_H
#define TWEETLAKE_H

#include "postgres.h"

#include <signal.h>

#include "datatype/timestamp.h"
#include "storage/latch.h"
#include "storage/lwlock.h"
#include "storage/spin.h"

/* Settings (guc.c) */
extern int	tweetlake_batch_size;
extern int	tweetlake_batch_timeout_ms;
extern int	tweetlake_batch_max_bytes;
extern int	tweetlake_max_text_length;
extern int	tweetlake_max_message_bytes;
extern char *tweetlake_database;
extern char *tweetlake_brokers;
extern char *tweetlake_topic;
extern int	tweetlake_partitions;
extern int	tweetlake_generator_rate;
extern double tweetlake_generator_update_share;
extern double tweetlake_generator_delete_share;
extern int	tweetlake_consumers;
extern char *tweetlake_kafka_config;
extern char *tweetlake_kafka_config_file;
extern bool tweetlake_autostart;
extern bool tweetlake_parse_fast_path;
extern int	tweetlake_bronze_retention;
extern int	tweetlake_malloc_arenas;

extern void tweetlake_define_gucs(void);

/*
 * Counted sets (bag.c): a key while collecting, and a tweetlake.bag made of such keys.
 * weight is what the key adds to its count: 1, or -1 for a row taken back (an update's old
 * version, a deleted tweet); keys whose weights sum to 0 are left out of the bag.
 */
typedef struct TlBagKey
{
	const char *data;
	int			len;
	int			weight;
} TlBagKey;
struct TupleDescData;
extern Datum tl_bag_build(TlBagKey *keys, int n, struct TupleDescData *tupdesc, int *nkeys);

/* What the batch trigger did with versions (batch.c), counted per backend until reset. */
typedef struct TlBatchCounts
{
	uint64		updates;		/* messages that replaced a stored version */
	uint64		deletes;		/* silver rows deleted by tombstones */
	uint64		stale;			/* messages that changed nothing: an older or
								 * equal version, or for a deleted tweet_id */
} TlBatchCounts;
extern TlBatchCounts tl_batch_counts;

/* Limits on message fields other than the tweet text (parse.c, README "Message format") */
#define TL_MAX_ID_BYTES			128 /* tweet and user ids */
#define TL_MAX_FIELD_BYTES		4096	/* names, location, description, codes */
#define TL_MAX_TAG_BYTES		280 /* one hashtag or mention */
#define TL_MAX_TAGS				100 /* hashtags or mentions per tweet */
/*
 * Values that end up in an index key are capped, in bytes as stored (tags after
 * lower-casing), so that the widest key fits a B-tree entry (at most 2704 bytes with 8 kB
 * pages) even when it does not compress.  A key takes at most 8 bytes of tuple header, 8 per
 * timestamptz or date, and 3 (alignment) + 4 (length word) + n per text:
 *   tweetlake.hashtag_mentions (hour, hashtag, mention)         8 + 8 + 2 * (7 + 280)       = 590
 *   tweetlake.hashtag_users (hour, hashtag, user_id)            8 + 8 + (7 + 280) + (7 + 128) = 438
 *   gold.popular_hashtags_by_hour (hour, hashtag)               8 + 8 + (7 + 280)           = 303
 *   tweetlake.region_users (hour, region, language, user_id)    8 + 8 + 2 * (7 + 64) + (7 + 128) = 293
 *   gold.tweet_volume_by_region (hour, region, language)        8 + 8 + 2 * (7 + 64)        = 158
 *   gold.active_users_by_day (day, user_id), gold.user_engagement (user_id), silver.tweets
 *   (tweet_id)                                                  at most 8 + 8 + (7 + 128)   = 151
 *   gold.engagement_by_type_hour (hour, tweet_type, influence_level), language tables: less
 * so the widest key is 590 bytes, under a quarter of 2704.  64 bytes is plenty for a region
 * name or a language tag: the generator's longest is "South America" (13).
 */
#define TL_MAX_CODE_BYTES		64	/* region, language, tweet_type: gold key
									 * columns */
/*
 * engagement_score: |x| <= 1e15 (the generator's is interactions per follower in percent,
 * at most 8 * 2^31 * 100 = 1.7e12).  Counts stay 0 .. INT32_MAX (integer columns): a bigint
 * sum of total_engagement (at most 4 * 2^31 per tweet) needs over a billion tweets in one
 * group to overflow.
 */
#define TL_MAX_ENGAGEMENT_SCORE	1e15

/*
 * Shared memory (status.c): what every worker is doing, for tweetlake.status and the
 * launcher.  A slot is written by its worker only (under its spinlock) and read by anyone.
 */
#define TL_MAX_WORKERS		96	/* launcher, broker, and each source's
								 * generator and consumers (69_sources.sql
								 * checks the same number) */
#define TL_MAX_CONSUMERS	31	/* per source */
#define TL_MAX_PARTITIONS	256 /* per source's topic */
#define TL_PARTITION_SLOTS	1024	/* of all sources */
#define TL_SOURCE_NAMELEN	64	/* a source's name, with its NUL (40 at most,
								 * tweetlake.sources) */
#define TL_DEFAULT_SOURCE	"default"
#define TL_RATE_WINDOW		10	/* seconds behind rate_10s */

typedef enum TlRole
{
	TL_ROLE_NONE = 0,
	TL_ROLE_LAUNCHER,
	TL_ROLE_BROKER,
	TL_ROLE_GENERATOR,
	TL_ROLE_CONSUMER
} TlRole;

typedef struct TlWorkerSlot
{
	slock_t		mutex;
	TlRole		role;
	int			index;			/* consumer number; 0 for the others */
	char		source[TL_SOURCE_NAMELEN];	/* "" for the launcher and the
											 * broker */
	pid_t		pid;
	TimestampTz started_at;
	char		state[64];
	uint64		messages;		/* produced (generator) or consumed (consumer) */
	uint64		bytes;
	uint64		dead_letters;	/* consumer: messages that went to
								 * bronze.dead_letters */
	uint64		errors;			/* generator: delivery failures */
	uint64		updates;		/* consumer: messages that replaced a stored
								 * version */
	uint64		deletes;		/* consumer: tweets its tombstones deleted */
	uint64		stale;			/* consumer: messages that changed nothing (an
								 * older or equal version, a deleted tweet) */
	int64		sec_stamp[TL_RATE_WINDOW];	/* unix second each bucket counts */
	uint64		sec_count[TL_RATE_WINDOW];
	char		last_error[256];
	TimestampTz last_error_at;
	int			retries;		/* consumer: failed attempts at the batch in
								 * hand */
	TimestampTz stalled_since;	/* consumer: first of those failures; 0 = not
								 * stalled */
} TlWorkerSlot;

typedef struct TlPartitionSlot
{
	char		source[TL_SOURCE_NAMELEN];	/* "" when the slot is free */
	char		topic[256];		/* Kafka allows 249 bytes */
	int32		partition;
	int			consumer;		/* -1 when unassigned */
	int64		next_offset;	/* as last committed to tweetlake.offsets */
	int64		high_watermark; /* as last seen from the broker */
	TimestampTz updated_at;
} TlPartitionSlot;

typedef struct TlShared
{
	LWLock	   *lock;			/* guards the fields below that are not per
								 * slot */
	bool		enabled;		/* pipeline wanted: tweetlake.start()/stop() */
	pid_t		launcher_pid;
	Latch	   *launcher_latch;
	uint32		broker_generation;	/* bumped each time the embedded broker
									 * (re)starts */
	char		bootstrap[256]; /* embedded broker's bootstrap.servers, or "" */
	TlWorkerSlot workers[TL_MAX_WORKERS];
	TlPartitionSlot partitions[TL_PARTITION_SLOTS];
} TlShared;

extern TlShared *tl_shared;

extern void tl_shmem_init(void);
extern TlWorkerSlot *tl_slot_acquire(TlRole role, const char *source, int index);
extern void tl_partition_slots(const char *source, const int32 *partitions, int n,
							   TlPartitionSlot **slots, bool create);
extern void tl_partition_slots_forget(const char *source);
extern void tl_slot_release(int code, Datum arg);
extern int	tl_running_workers(TlRole role);
extern void tl_slot_set_state(TlWorkerSlot *slot, const char *state);
extern void tl_slot_count(TlWorkerSlot *slot, uint64 messages, uint64 bytes);
extern void tl_slot_error(TlWorkerSlot *slot, const char *fmt,...) pg_attribute_printf(2, 3);
extern void tl_slot_error_quiet(TlWorkerSlot *slot, const char *msg);
extern void tl_slot_set_stall(TlWorkerSlot *slot, int retries, TimestampTz since);
extern bool tl_same_but_numbers(const char *a, const char *b);
extern void tl_require_shared(void);
extern const char *tl_role_name(TlRole role);

/*
 * What the launcher hands a consumer or generator in bgw_extra: its source, how many
 * consumers share the partitions, and the database and role to connect as (the role is
 * InvalidOid, meaning the bootstrap superuser, while the database's schema predates the
 * tweetlake_worker role).
 */
typedef struct TlConsumerArgs
{
	int			nconsumers;
	Oid			dboid;
	Oid			roleoid;
	char		source[TL_SOURCE_NAMELEN];
} TlConsumerArgs;

/*
 * source.c: the source a worker serves.  "default" follows postgresql.conf (a reload
 * applies); another is its row of tweetlake.sources as read when the worker started.
 */
typedef struct TlSource
{
	char		name[TL_SOURCE_NAMELEN];
	bool		is_default;
	char	   *brokers;		/* another source's settings
								 * (TopMemoryContext) */
	char	   *topic;
	char	   *kafka_config_file;	/* NULL: none */
	int			consumers;
	int			generator_rate;
} TlSource;

extern TlSource tl_source;
extern void tl_source_use_default(void);
extern void tl_source_load(const char *name);
extern const char *tl_source_brokers(void);
extern const char *tl_source_topic(void);
extern const char *tl_source_kafka_config(void);
extern const char *tl_source_kafka_config_file(void);
extern int	tl_source_generator_rate(void);
extern bool tl_source_embedded(void);

/* What the launcher runs for one source (tl_sources_read). */
typedef struct TlSourceSpec
{
	char		name[TL_SOURCE_NAMELEN];
	bool		enabled;
	int			consumers;
	int			generator_rate;
	char	   *settings;		/* what its workers are built from; a change
								 * restarts them */
} TlSourceSpec;
extern int	tl_sources_read(TlSourceSpec **specs, MemoryContext cxt);

/* The non-superuser role the consumers run as (created by the extension's schema). */
#define TL_WORKER_ROLE		"tweetlake_worker"

/* memory.c */
extern void tl_memory_init(void);
extern void tl_release_free_memory(TimestampTz *last);
extern void tl_release_free_memory_idle(TimestampTz *last, TimestampTz busy_at);

/* subxact.c */
extern ErrorData *tl_try_subtransaction(void (*work) (void *arg), void *arg, MemoryContext errcxt);

/* launcher.c */
extern void tl_register_launcher(void);
extern void tl_wake_launcher(void);

/* kafka.c: the Kafka client pieces shared by the workers and tweetlake.produce() */
struct rd_kafka_conf_s;
struct rd_kafka_s;

/* One worker's librdkafka client: where its errors are reported, what it was built from. */
typedef struct TlKafkaClient
{
	TlWorkerSlot *slot;			/* the error callback reports here (NULL:
								 * nowhere) */
	bool		error_seen;		/* the error callback ran since the last topic
								 * check */
	bool		quiet;			/* shutting down: errors are expected, report
								 * none */
	char	   *settings;		/* what it was built from (TopMemoryContext) */
	uint32		broker_generation;	/* of the embedded broker it was built for */
} TlKafkaClient;

extern const char *tl_bootstrap_servers(bool wait);
extern struct rd_kafka_conf_s *tl_kafka_conf(const char *role, char *errbuf, size_t errlen);
extern const char *tl_redact(const char *text);
extern void tl_kafka_set_error_cb(TlKafkaClient *client, struct rd_kafka_conf_s *conf);
extern int	tl_kafka_topic_partitions(struct rd_kafka_s *rk, TlKafkaClient *client, const char *topic);
extern void tl_kafka_remember_settings(TlKafkaClient *client);
extern bool tl_kafka_settings_changed(const TlKafkaClient *client);
extern bool tl_kafka_broker_alive(const TlKafkaClient *client);
extern struct rd_kafka_s *tl_kafka_new(int type, struct rd_kafka_conf_s *conf, char *errbuf, size_t errlen);
extern void tl_block_signals(sigset_t *saved);
extern void tl_restore_signals(const sigset_t *saved);

/* Worker entry points (bgw_function_name) */
extern PGDLLEXPORT void tweetlake_launcher_main(Datum arg);
extern PGDLLEXPORT void tweetlake_broker_main(Datum arg);
extern PGDLLEXPORT void tweetlake_generator_main(Datum arg);
extern PGDLLEXPORT void tweetlake_consumer_main(Datum arg);

/* Microseconds from 1970-01-01 (Kafka, the generator) to 2000-01-01 (PostgreSQL). */
#define UNIX_EPOCH_OFFSET_US \
	((int64) (POSTGRES_EPOCH_JDATE - UNIX_EPOCH_JDATE) * USECS_PER_DAY)

/* timestamp.c */
extern bool tl_parse_timestamp(const char *s, size_t len, TimestampTz *result);
extern TimestampTz tl_utc_hour(TimestampTz ts);
extern int32 tl_utc_day(TimestampTz ts);

#endif
