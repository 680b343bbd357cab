/*
 * tweetlake.h - declarations shared by the server-side C files of tweetlake:
 * settings (guc.c), time helpers (timestamp.c) and the tweet parser (parse.c).
 */
#ifndef TWEETLAKE_H
#define TWEETLAKE_H

#include "postgres.h"

#include "datatype/timestamp.h"
#include "storage/latch.h"
#include "storage/lwlock.h"
#include "storage/spin.h"

/* Settings (guc.c) */
extern int	tweetlake_batch_size;
extern int	tweetlake_batch_timeout_ms;
extern int	tweetlake_max_text_length;
extern int	tweetlake_max_message_bytes;
extern char *tweetlake_database;
extern char *tweetlake_brokers;
extern char *tweetlake_topic;
extern int	tweetlake_partitions;
extern int	tweetlake_generator_rate;
extern int	tweetlake_consumers;
extern char *tweetlake_kafka_config;
extern char *tweetlake_kafka_config_file;
extern bool tweetlake_autostart;

extern void tweetlake_define_gucs(void);

/* Limits on message fields other than the tweet text (parse.c, README "Message format") */
#define TL_MAX_ID_BYTES			128		/* tweet and user ids */
#define TL_MAX_FIELD_BYTES		4096	/* names, location, description, codes */
#define TL_MAX_TAG_BYTES		280		/* one hashtag or mention */
#define TL_MAX_TAGS				100		/* hashtags or mentions per tweet */

/*
 * Shared memory (status.c): what every worker is doing, for tweetlake.status and the
 * launcher.  A slot is written by its worker only (under its spinlock) and read by anyone.
 */
#define TL_MAX_WORKERS		34		/* launcher, broker, generator + up to 31 consumers */
#define TL_MAX_CONSUMERS	31
#define TL_MAX_PARTITIONS	256
#define TL_RATE_WINDOW		10		/* seconds behind rate_10s */

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
	pid_t		pid;
	TimestampTz started_at;
	char		state[64];
	uint64		messages;		/* produced (generator) or consumed (consumer) */
	uint64		bytes;
	uint64		dead_letters;	/* consumer: messages that went to bronze.dead_letters */
	uint64		errors;			/* generator: delivery failures */
	int64		sec_stamp[TL_RATE_WINDOW];	/* unix second each bucket counts */
	uint64		sec_count[TL_RATE_WINDOW];
	char		last_error[256];
	TimestampTz last_error_at;
} TlWorkerSlot;

typedef struct TlPartitionSlot
{
	int			consumer;		/* -1 when unassigned */
	int64		next_offset;	/* as last committed to tweetlake.offsets */
	int64		high_watermark; /* as last seen from the broker */
	TimestampTz updated_at;
} TlPartitionSlot;

typedef struct TlShared
{
	LWLock	   *lock;			/* guards the fields below that are not per slot */
	bool		enabled;		/* pipeline wanted: tweetlake.start()/stop() */
	pid_t		launcher_pid;
	Latch	   *launcher_latch;
	uint32		broker_generation;	/* bumped each time the embedded broker (re)starts */
	char		bootstrap[256]; /* embedded broker's bootstrap.servers, or "" */
	TlWorkerSlot workers[TL_MAX_WORKERS];
	TlPartitionSlot partitions[TL_MAX_PARTITIONS];
} TlShared;

extern TlShared *tl_shared;

extern void tl_shmem_init(void);
extern TlWorkerSlot *tl_slot_acquire(TlRole role, int index);
extern void tl_slot_release(int code, Datum arg);
extern void tl_slot_set_state(TlWorkerSlot *slot, const char *state);
extern void tl_slot_count(TlWorkerSlot *slot, uint64 messages, uint64 bytes);
extern void tl_slot_error(TlWorkerSlot *slot, const char *fmt,...) pg_attribute_printf(2, 3);
extern void tl_require_shared(void);
extern const char *tl_role_name(TlRole role);

/* launcher.c */
extern void tl_register_launcher(void);
extern void tl_wake_launcher(void);

/* kafka.c: librdkafka configuration shared by the workers and tweetlake.produce() */
struct rd_kafka_conf_s;
extern const char *tl_bootstrap_servers(bool wait);
extern struct rd_kafka_conf_s *tl_kafka_conf(const char *role, char *errbuf, size_t errlen);
extern const char *tl_redact(const char *text);
extern char *tl_kafka_settings(void);

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

#endif
