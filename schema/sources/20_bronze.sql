/* ------------------------------------------------------------------------
 * Bronze
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
    kafka_key       text
);
COMMENT ON TABLE bronze.tweets IS
    'every message as received; INSERT (raw) or COPY raw lines here to backfill - triggers do the rest';
COMMENT ON COLUMN bronze.tweets.raw IS
    'the message text exactly as received; NULL for a tombstone (a deletion, see kafka_key)';
COMMENT ON COLUMN bronze.tweets.kafka_key IS
    'a tombstone''s key, the tweet_id it deletes (raw is NULL); NULL for every other message';
COMMENT ON COLUMN bronze.tweets.kafka_topic IS 'NULL when loaded from SQL';

CREATE TABLE bronze.dead_letters (
    raw             bytea NOT NULL,
    reason          text NOT NULL,
    tweet_id        text,
    kafka_topic     text,
    kafka_partition integer,
    kafka_offset    bigint,
    failed_at       timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE bronze.dead_letters IS
    'messages that could not become silver; raw holds their exact bytes (convert_from(raw, ''UTF8'') to read)';

