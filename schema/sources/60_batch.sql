/* ------------------------------------------------------------------------
 * Incremental path: one statement per bronze batch (statement-level trigger).
 * ------------------------------------------------------------------------ */

-- True when (count1, name1) ranks at or above (count2, name2): more first, then by name.
CREATE FUNCTION tweetlake.ranks_first(count1 bigint, name1 text, count2 bigint, name2 text)
    RETURNS boolean LANGUAGE sql IMMUTABLE PARALLEL SAFE
    RETURN count1 IS NOT NULL
       AND (count2 IS NULL OR count1 > count2 OR (count1 = count2 AND name1 <= name2));

/*
 * The batch itself is C (src/batch.c): it parses the batch's messages, groups the new silver
 * rows by every gold key in one pass, and hands the groups to one SQL statement that merges
 * them into the membership rows and gold (what each group adds is what the recompute views
 * of the 4*_gold_*.sql files compute for it).  A newer version of a tweet silver has
 * replaces it and a tombstone (raw NULL, kafka_key the tweet_id) deletes it; what they
 * replace or delete is taken back from the same groups (README "Updates and deletions").
 *
 * SECURITY DEFINER: a role that may INSERT into bronze.tweets (a loader, the consumers'
 * tweetlake_worker) needs no right on silver, gold or the membership tables, so it cannot
 * write them directly; the pinned search_path keeps the owner's rights from being borrowed.
 * work_mem: a batch's parsed rows (~1.5 KB a tweet, 10k tweets) stay in memory.  jit: the
 * statements' costs are estimated from whole relations of the batch, of which a retraction's
 * statements read a few rows; compiling them would cost more than running them.
 */
CREATE FUNCTION tweetlake.process_bronze_batch() RETURNS trigger
    AS 'MODULE_PATHNAME', 'tweetlake_process_bronze_batch' LANGUAGE C
    SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    SET work_mem = '64MB'
    SET jit = off;

CREATE TRIGGER process_batch
    AFTER INSERT ON bronze.tweets
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION tweetlake.process_bronze_batch();

-- A deletion from SQL: a tombstone row into bronze (raw NULL, kafka_key the id), which the
-- batch trigger takes like a tombstone from Kafka.  True when silver had the tweet.
CREATE FUNCTION tweetlake.delete_tweet(tweet_id text, tenant text DEFAULT 'default') RETURNS boolean
LANGUAGE plpgsql STRICT SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    stored boolean := EXISTS (SELECT FROM silver.tweets t
                              WHERE t.tenant OPERATOR(pg_catalog.=) delete_tweet.tenant
                                AND t.tweet_id OPERATOR(pg_catalog.=) delete_tweet.tweet_id);
BEGIN
    INSERT INTO bronze.tweets (raw, kafka_key, tenant) VALUES (NULL, delete_tweet.tweet_id, delete_tweet.tenant);
    RETURN stored;
END
$$;
COMMENT ON FUNCTION tweetlake.delete_tweet(text, text) IS
    'delete a tenant''s tweet from silver and gold (a tombstone into bronze.tweets); true when silver had it';
REVOKE EXECUTE ON FUNCTION tweetlake.delete_tweet(text, text) FROM PUBLIC;

-- Generated messages into bronze, tweetlake.batch_size rows per INSERT (one trigger run
-- each): generate_tweets' tweets, or with updates or deletes > 0 generate_messages' messages,
-- tombstones as raw NULL and kafka_key the tweet_id.
CREATE FUNCTION tweetlake.load_generated(n bigint, seed bigint DEFAULT 0,
        start_at timestamptz DEFAULT '2026-01-01 00:00:00+00', span interval DEFAULT '7 days',
        updates double precision DEFAULT 0, deletes double precision DEFAULT 0,
        tenant text DEFAULT 'default')
    RETURNS bigint
    AS 'MODULE_PATHNAME', 'tweetlake_load_generated' LANGUAGE C VOLATILE STRICT
    SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION tweetlake.load_generated(bigint, bigint, timestamptz, interval, double precision, double precision, text) IS
    'insert n generated messages (with updates and tombstones in the shares updates and deletes) into bronze.tweets in batches, as the tenant''s; returns the count';
REVOKE EXECUTE ON FUNCTION tweetlake.load_generated(bigint, bigint, timestamptz, interval, double precision, double precision, text) FROM PUBLIC;

