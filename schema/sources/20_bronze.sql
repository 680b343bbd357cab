/* ------------------------------------------------------------------------
 * Bronze
 *
 * Both tables are partitioned by UTC day: bronze.tweets by ingested_at, bronze.dead_letters by
 * failed_at, so that retention drops whole days (tweetlake.maintain_partitions, run by the
 * launcher).  PostgreSQL 15 cannot use a generated column as a partition key, so the key is
 * the timestamp itself, with each partition one UTC day: every row of a partition has the same
 * partition_date.  The default partitions take whatever no day partition holds (the day of
 * CREATE EXTENSION until the launcher made that day's partition, loads without the workers,
 * rows with ingested_at set by hand), so no insert ever fails for want of a partition.
 * ------------------------------------------------------------------------ */

CREATE TABLE bronze.tweets (
    raw             text,
    tweet_id        text GENERATED ALWAYS AS (tweetlake.tweet_id_of(raw)) STORED,
    kafka_topic     text,
    kafka_partition integer,
    kafka_offset    bigint,
    kafka_timestamp timestamptz,
    ingested_at     timestamptz NOT NULL DEFAULT now(),
    partition_date  date GENERATED ALWAYS AS ((ingested_at AT TIME ZONE 'UTC')::date) STORED,
    kafka_key       text,
    tenant          text NOT NULL DEFAULT 'default'
) PARTITION BY RANGE (ingested_at);
COMMENT ON TABLE bronze.tweets IS
    'every message as received; INSERT (raw) or COPY raw lines here to backfill - triggers do the rest';
COMMENT ON COLUMN bronze.tweets.raw IS
    'the message text exactly as received; NULL for a tombstone (a deletion, see kafka_key)';
COMMENT ON COLUMN bronze.tweets.kafka_key IS
    'a tombstone''s key, the tweet_id it deletes (raw is NULL); NULL for every other message';
COMMENT ON COLUMN bronze.tweets.kafka_topic IS 'NULL when loaded from SQL';
COMMENT ON COLUMN bronze.tweets.tenant IS
    'whose tweet this is: its source''s tenant (tweetlake.sources), or what a load from SQL names (default ''default''); silver and gold keep it';
CREATE TABLE bronze.tweets_default PARTITION OF bronze.tweets DEFAULT;
COMMENT ON TABLE bronze.tweets_default IS
    'bronze.tweets rows that no day partition holds (see tweetlake.bronze_partitions)';

CREATE TABLE bronze.dead_letters (
    raw             bytea NOT NULL,
    reason          text NOT NULL,
    tweet_id        text,
    kafka_topic     text,
    kafka_partition integer,
    kafka_offset    bigint,
    failed_at       timestamptz NOT NULL DEFAULT now(),
    tenant          text NOT NULL DEFAULT 'default'
) PARTITION BY RANGE (failed_at);
COMMENT ON TABLE bronze.dead_letters IS
    'messages that could not become silver; raw holds their exact bytes (convert_from(raw, ''UTF8'') to read)';
CREATE TABLE bronze.dead_letters_default PARTITION OF bronze.dead_letters DEFAULT;
COMMENT ON TABLE bronze.dead_letters_default IS
    'bronze.dead_letters rows that no day partition holds (see tweetlake.bronze_partitions)';
