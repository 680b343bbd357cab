/*
 * tweetlake 0.4.0 -> 0.5.0 (CHANGELOG.md): tweets change - updates, deletions, late data.
 *   - bronze.tweets: raw may be NULL (a tombstone), kafka_key holds a tombstone's key
 *   - silver.tweets.updated_at (the version a message carries), an index on (user_id,
 *     created_at) for what a retraction reads again, silver.deleted_tweets
 *   - tweetlake.parsed_tweet.updated_at, tweetlake.bag_gone, tweetlake.delete_tweet
 *   - tweetlake.status: updates, deletes and stale per consumer
 *   - tweetlake.generate_messages(); load_generated() takes updates and deletes shares
 * Existing rows keep their values: updated_at NULL (no version), nothing deleted.
 * Each definition here is the same text as in schema/sources/, which a fresh install is
 * built from; t/050_upgrade.pl checks that both give the same schema.
 */
\echo Use "ALTER EXTENSION tweetlake UPDATE TO '0.5.0'" to load this file. \quit

SET LOCAL search_path = pg_catalog, pg_temp;
-- bronze.tweets is altered below while the consumers may be writing a batch, which locks
-- bronze, then silver and gold; an update from an older version may already hold silver
-- or gold.  Should the two wait on each other, the consumer is the one to give way (it
-- reads its batch again), not the update.
SET LOCAL deadlock_timeout = '60s';

ALTER TYPE tweetlake.parsed_tweet ADD ATTRIBUTE updated_at timestamptz;

ALTER TABLE bronze.tweets ALTER COLUMN raw DROP NOT NULL, ADD COLUMN kafka_key text;
COMMENT ON COLUMN bronze.tweets.raw IS
    'the message text exactly as received; NULL for a tombstone (a deletion, see kafka_key)';
COMMENT ON COLUMN bronze.tweets.kafka_key IS
    'a tombstone''s key, the tweet_id it deletes (raw is NULL); NULL for every other message';

ALTER TABLE silver.tweets ADD COLUMN updated_at timestamptz;
-- A user's tweets by time: what a retraction (an update or a deletion) reads to find a
-- user's largest followers_count, username and first and last day again.
CREATE INDEX tweets_user_created_at ON silver.tweets (user_id COLLATE "C", created_at);
COMMENT ON TABLE silver.tweets IS
    'one row per tweet_id, its newest version; hashtags/mentions lower case without #/@, no duplicates';
COMMENT ON COLUMN silver.tweets.updated_at IS
    'the version the message carried ("updated_at"), NULL when it carried none';
COMMENT ON COLUMN silver.tweets.processed_at IS
    'when this version of the tweet was stored';

-- Deleted tweet_ids (tombstones, tweetlake.delete_tweet()): a deletion is final, so a later
-- message with the id, even the original arriving after its tombstone, changes nothing.
CREATE TABLE silver.deleted_tweets (
    tweet_id   text PRIMARY KEY,
    deleted_at timestamptz NOT NULL DEFAULT now(),
    was_stored boolean NOT NULL
);
COMMENT ON TABLE silver.deleted_tweets IS
    'tweet_ids deleted by a tombstone or tweetlake.delete_tweet(); was_stored: the tweet was in silver when deleted';
GRANT SELECT ON silver.deleted_tweets TO tweetlake_reader;
SELECT pg_catalog.pg_extension_config_dump('silver.deleted_tweets', '');

-- The keys added took away (negative counts) that after no longer holds: the groups left.
CREATE FUNCTION tweetlake.bag_gone(after tweetlake.bag, added tweetlake.bag) RETURNS text[]
    AS 'MODULE_PATHNAME', 'tweetlake_bag_gone' LANGUAGE C IMMUTABLE PARALLEL SAFE;

-- A deletion from SQL: a tombstone row into bronze (raw NULL, kafka_key the id), which the
-- batch trigger takes like a tombstone from Kafka.  True when silver had the tweet.
CREATE FUNCTION tweetlake.delete_tweet(tweet_id text) RETURNS boolean
LANGUAGE plpgsql STRICT SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    stored boolean := EXISTS (SELECT FROM silver.tweets t WHERE t.tweet_id = delete_tweet.tweet_id);
BEGIN
    INSERT INTO bronze.tweets (raw, kafka_key) VALUES (NULL, delete_tweet.tweet_id);
    RETURN stored;
END
$$;
COMMENT ON FUNCTION tweetlake.delete_tweet(text) IS
    'delete a tweet from silver and gold (a tombstone into bronze.tweets); true when silver had it';
REVOKE EXECUTE ON FUNCTION tweetlake.delete_tweet(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION tweetlake.delete_tweet(text) TO tweetlake_loader;

-- silver.tweets_view lists silver's columns: made again with updated_at.
DROP VIEW silver.tweets_view;
CREATE VIEW silver.tweets_view AS
SELECT t.*,
       tweetlake.influence_level(t.followers_count) AS influence_level,
       tweetlake.engagement_level(t.total_engagement) AS engagement_level
FROM silver.tweets t;
GRANT SELECT ON silver.tweets_view TO tweetlake_reader;

-- tweetlake.status gains updates, deletes and stale: the view goes with the function it reads.
DROP VIEW tweetlake.status;
DROP FUNCTION tweetlake.worker_status();
CREATE FUNCTION tweetlake.worker_status(
        OUT role text, OUT worker integer, OUT pid integer, OUT state text, OUT messages bigint,
        OUT bytes bigint, OUT rate_10s double precision, OUT errors bigint, OUT started_at timestamptz,
        OUT last_error text, OUT last_error_at timestamptz, OUT retries integer,
        OUT stalled_since timestamptz, OUT updates bigint, OUT deletes bigint, OUT stale bigint)
    RETURNS SETOF record
    AS 'MODULE_PATHNAME', 'tweetlake_worker_status' LANGUAGE C VOLATILE;

CREATE VIEW tweetlake.status AS SELECT * FROM tweetlake.worker_status();
COMMENT ON VIEW tweetlake.status IS
    'one row per worker: messages and bytes (produced or consumed), rate over the last 10 s, errors (consumer: dead letters, generator: failed deliveries), last error, while a consumer cannot store its batch: retries so far and stalled_since, and per consumer: updates (messages that replaced a stored version), deletes (tweets deleted) and stale (messages that changed nothing)';
GRANT SELECT ON tweetlake.status TO tweetlake_reader;

-- The generator's updates and tombstones: generate_messages(), and load_generated() with
-- the shares updates and deletes (same text as schema/sources/10_functions.sql, 60_batch.sql).

/*
 * n messages of one stream as a Kafka producer sends them: new tweets and, in the shares
 * updates and deletes, updates of recent tweets of the stream (the same document with its
 * counts grown and a later updated_at) and tombstones for them (raw NULL, kafka_key the
 * tweet_id).  With both shares 0, raw is generate_tweets' output row for row.
 */
CREATE FUNCTION tweetlake.generate_messages(n bigint, seed bigint DEFAULT 0,
        start_at timestamptz DEFAULT '2026-01-01 00:00:00+00', span interval DEFAULT '7 days',
        updates double precision DEFAULT 0, deletes double precision DEFAULT 0)
    RETURNS TABLE (kafka_key text, raw text)
    AS 'MODULE_PATHNAME', 'tweetlake_generate_messages' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE ROWS 1000;
COMMENT ON FUNCTION tweetlake.generate_messages(bigint, bigint, timestamptz, interval, double precision, double precision) IS
    'n generated messages: new tweets, and in the shares updates and deletes updates and tombstones (raw NULL, kafka_key the tweet_id) of earlier ones; deterministic in all arguments';
REVOKE EXECUTE ON FUNCTION tweetlake.generate_messages(bigint, bigint, timestamptz, interval, double precision, double precision) FROM PUBLIC;

-- load_generated takes two more parameters: the old signature goes.
DROP FUNCTION tweetlake.load_generated(bigint, bigint, timestamptz, interval);

-- Generated messages into bronze, tweetlake.batch_size rows per INSERT (one trigger run
-- each): generate_tweets' tweets, or with updates or deletes > 0 generate_messages' messages,
-- tombstones as raw NULL and kafka_key the tweet_id.
CREATE FUNCTION tweetlake.load_generated(n bigint, seed bigint DEFAULT 0,
        start_at timestamptz DEFAULT '2026-01-01 00:00:00+00', span interval DEFAULT '7 days',
        updates double precision DEFAULT 0, deletes double precision DEFAULT 0)
    RETURNS bigint
    AS 'MODULE_PATHNAME', 'tweetlake_load_generated' LANGUAGE C VOLATILE STRICT
    SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION tweetlake.load_generated(bigint, bigint, timestamptz, interval, double precision, double precision) IS
    'insert n generated messages (with updates and tombstones in the shares updates and deletes) into bronze.tweets in batches; returns the count';
REVOKE EXECUTE ON FUNCTION tweetlake.load_generated(bigint, bigint, timestamptz, interval, double precision, double precision) FROM PUBLIC;

-- The batch trigger's statements are not compiled (see 60_batch.sql).
ALTER FUNCTION tweetlake.process_bronze_batch() SET jit = off;
