/*
 * tweetlake install script, built by `make` from the files in schema/sources/, in file-name order
 * (see the Makefile); edit the sources, never the built script.
 *
 *   bronze.tweets        every message as received (raw text) + Kafka coordinates
 *   bronze.dead_letters  messages that could not become silver, with the reason
 *   silver.tweets        one typed, cleaned row per distinct tweet_id
 *   gold.*               aggregates kept up to date by one set-based statement per batch
 *   tweetlake.*          the API (functions, status) and the internal state of gold
 */
\echo Use "CREATE EXTENSION tweetlake" to load this file. \quit

-- Every name below is schema-qualified; with pg_catalog alone in the path, no object a
-- role planted in another schema (public, say) can be bound into a view or function here.
-- SET LOCAL: CREATE EXTENSION restores the caller's search_path when the script ends (a plain
-- SET would outlive it).
SET LOCAL search_path = pg_catalog, pg_temp;

-- Messages are UTF-8 JSON and parse.c checks text as UTF-8: other encodings are refused.
DO $$
BEGIN
    IF current_setting('server_encoding') <> 'UTF8' THEN
        RAISE EXCEPTION 'tweetlake requires a UTF8 database, not %', current_setting('server_encoding')
            USING ERRCODE = 'feature_not_supported',
                  HINT = 'Create the database with ENCODING ''UTF8'' TEMPLATE template0.';
    END IF;
END
$$;

CREATE SCHEMA tweetlake;
CREATE SCHEMA bronze;
CREATE SCHEMA silver;
CREATE SCHEMA gold;

COMMENT ON SCHEMA tweetlake IS 'tweetlake API and internal pipeline state';
COMMENT ON SCHEMA bronze IS 'tweetlake: raw messages as received';
COMMENT ON SCHEMA silver IS 'tweetlake: cleaned, typed, de-duplicated tweets';
COMMENT ON SCHEMA gold IS 'tweetlake: aggregates for dashboards, maintained incrementally';
/* ------------------------------------------------------------------------
 * Small C helpers (src/timestamp.c, src/parse.c)
 * ------------------------------------------------------------------------ */

-- Start of the UTC hour / the UTC date of a timestamp: the grain of every gold table.
CREATE FUNCTION tweetlake.utc_hour(timestamptz) RETURNS timestamptz
    AS 'MODULE_PATHNAME', 'tweetlake_utc_hour' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION tweetlake.utc_day(timestamptz) RETURNS date
    AS 'MODULE_PATHNAME', 'tweetlake_utc_day' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

-- The top-level "tweet_id" string of a message, or NULL when there is none.
CREATE FUNCTION tweetlake.tweet_id_of(raw text) RETURNS text
    AS 'MODULE_PATHNAME', 'tweetlake_tweet_id_of' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

-- A message parsed and validated into the silver row it becomes, or an error saying why not.
CREATE TYPE tweetlake.parsed_tweet AS (
    tweet_id            text,
    text                text,
    created_at          timestamptz,
    tweet_type          text,
    language            text,
    region              text,
    hashtags            text[],
    mentions            text[],
    retweet_count       integer,
    like_count          integer,
    reply_count         integer,
    quote_count         integer,
    is_retweet          boolean,
    is_reply            boolean,
    is_quote            boolean,
    has_media           boolean,
    has_url             boolean,
    sentiment_score     double precision,
    engagement_score    double precision,
    reach_estimate      bigint,
    user_id             text,
    username            text,
    display_name        text,
    followers_count     integer,
    following_count     integer,
    verified            boolean,
    user_created_at     timestamptz,
    user_location       text,
    user_description    text,
    original_tweet_id   text,
    original_user_id    text,
    reply_to_tweet_id   text,
    reply_to_user_id    text,
    quoted_tweet_id     text,
    quoted_user_id      text,
    quoted_text         text,
    text_length         integer,
    sentiment_category  text,
    total_engagement    bigint,
    error               text,
    updated_at          timestamptz
);

CREATE FUNCTION tweetlake.parse_tweet(raw text) RETURNS tweetlake.parsed_tweet
    AS 'MODULE_PATHNAME', 'tweetlake_parse_tweet' LANGUAGE C STABLE PARALLEL SAFE;
COMMENT ON FUNCTION tweetlake.parse_tweet(text) IS
    'parse and validate one tweet message; error is NULL for a message that becomes silver';

/*
 * The generator (src/tweet_model.c): realistic synthetic tweets in the message format.
 * Same arguments, same output.  The timeline spreads n tweets over [start_at, start_at + span)
 * with a daily cycle; load more data with other seeds (the same seed repeats the same ids).
 */
CREATE FUNCTION tweetlake.generate_tweets(n bigint, seed bigint DEFAULT 0,
        start_at timestamptz DEFAULT '2026-01-01 00:00:00+00', span interval DEFAULT '7 days')
    RETURNS SETOF text
    AS 'MODULE_PATHNAME', 'tweetlake_generate_tweets' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE ROWS 1000;
COMMENT ON FUNCTION tweetlake.generate_tweets(bigint, bigint, timestamptz, interval) IS
    'n synthetic tweets as JSON messages, deterministic in all arguments';

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

-- The same tweets serialized through json-c objects: the reference the fast serializer is checked against.
CREATE FUNCTION tweetlake.generate_tweets_jsonc(n bigint, seed bigint DEFAULT 0,
        start_at timestamptz DEFAULT '2026-01-01 00:00:00+00', span interval DEFAULT '7 days')
    RETURNS SETOF text
    AS 'MODULE_PATHNAME', 'tweetlake_generate_tweets_jsonc' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE ROWS 1000;

-- Exact average from an exact sum and count (numeric sums make it order-independent),
-- rounded to the nearest double.  A mean too small for a double (sums that nearly cancel)
-- is 0: below 1e-280 the exact quotient is rounded at 300 decimals before the cast, which
-- would otherwise underflow (the test costs nothing measurable; the rounding is for them only).
CREATE FUNCTION tweetlake.exact_avg(total numeric, n bigint) RETURNS double precision
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    RETURN CASE WHEN n > 0 THEN
        (CASE WHEN abs(total) < 1e-280 THEN round(total / n, 300) ELSE total / n END)::double precision
    END;

-- Unbounded output for a few bytes of input: not for everyone.  tweet_id_of stays
-- executable by PUBLIC: bronze.tweets.tweet_id is computed with it, so whoever may insert
-- into bronze needs it, and it reads at most the id itself.
REVOKE EXECUTE ON FUNCTION tweetlake.generate_tweets(bigint, bigint, timestamptz, interval),
    tweetlake.generate_tweets_jsonc(bigint, bigint, timestamptz, interval),
    tweetlake.parse_tweet(text) FROM PUBLIC;

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
/* ------------------------------------------------------------------------
 * Bronze retention (README "Retention"): day partitions made ahead, whole days dropped
 *
 * tweetlake.maintain_partitions() is what the launcher runs every minute; a superuser may run
 * it by hand (or from cron when the workers are not used).  It never makes ingest wait:
 *   - a new day is CREATE TABLE + ATTACH PARTITION, which takes SHARE UPDATE EXCLUSIVE on the
 *     parent (writers go on) and ACCESS EXCLUSIVE on the default partition only;
 *   - an expired day is first emptied with TRUNCATE, which locks that partition only (no
 *     writer routes rows to a past day), then dropped if the parent's ACCESS EXCLUSIVE lock
 *     can be had within 50 ms; if not, the empty table is dropped at a later run;
 *   - expired rows of the default partitions are deleted row by row.
 * Silver and gold are never touched: rebuild_gold() and verify() read silver, not bronze.
 * ------------------------------------------------------------------------ */

-- The partitions of a partitioned table and the range of each (NULL, NULL: the default
-- partition).  The bounds are read from the catalog in UTC and ISO style whatever the
-- caller's settings.
CREATE FUNCTION tweetlake.partition_ranges(parent regclass)
RETURNS TABLE (partition regclass, range_from timestamptz, range_to timestamptz)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
SET "TimeZone" = 'UTC'
SET "DateStyle" = 'ISO, YMD'
BEGIN ATOMIC
    SELECT c.oid::regclass,
           CASE WHEN b[1] = 'MINVALUE' THEN '-infinity'::timestamptz
                ELSE pg_catalog.btrim(b[1], '''')::timestamptz END,
           CASE WHEN b[2] = 'MAXVALUE' THEN 'infinity'::timestamptz
                ELSE pg_catalog.btrim(b[2], '''')::timestamptz END
    FROM pg_catalog.pg_inherits i
    JOIN pg_catalog.pg_class c ON c.oid = i.inhrelid
    LEFT JOIN LATERAL pg_catalog.regexp_match(pg_catalog.pg_get_expr(c.relpartbound, c.oid),
                                              '^FOR VALUES FROM \((.*)\) TO \((.*)\)$') AS b ON true
    WHERE i.inhparent = parent;
END;
COMMENT ON FUNCTION tweetlake.partition_ranges(regclass) IS
    'the partitions of a range-partitioned table with their ranges (NULL for the default partition)';

CREATE VIEW tweetlake.bronze_partitions AS
SELECT p.parent AS table_name, r.partition, r.range_from, r.range_to,
       c.reltuples::bigint AS estimated_rows,
       pg_catalog.pg_total_relation_size(r.partition) AS bytes
FROM (VALUES ('bronze.tweets'::regclass), ('bronze.dead_letters'::regclass)) AS p(parent),
     LATERAL tweetlake.partition_ranges(p.parent) r
JOIN pg_catalog.pg_class c ON c.oid = r.partition
ORDER BY p.parent::text, r.range_from NULLS FIRST;
COMMENT ON VIEW tweetlake.bronze_partitions IS
    'the day partitions of bronze.tweets and bronze.dead_letters (range NULL: the default partition), with their sizes';

-- tweetlake.bronze_retention as an interval (NULL: keep everything).  The setting exists
-- where the library is loaded; it is shown in minutes, hours or days (e.g. 30d), which the
-- interval type reads.
CREATE FUNCTION tweetlake.bronze_retention() RETURNS interval
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
    SELECT CASE WHEN s IS NULL OR s IN ('', '0', '-1') THEN NULL ELSE s::interval END
    FROM pg_catalog.current_setting('tweetlake.bronze_retention', true) AS s;
END;
COMMENT ON FUNCTION tweetlake.bronze_retention() IS
    'the setting tweetlake.bronze_retention as an interval; NULL when bronze is kept whole';

CREATE FUNCTION tweetlake.maintain_partitions(retention interval DEFAULT tweetlake.bronze_retention(),
                                              days_ahead integer DEFAULT 1)
RETURNS TABLE (partition text, action text)
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
SET "TimeZone" = 'UTC'
SET lock_timeout = '1s'
AS $$
DECLARE
    t record;
    r record;
    d date;
    today date := (now() AT TIME ZONE 'UTC')::date;
    cutoff timestamptz := now() - retention;
    name text;
    n bigint;
    dflt regclass;
    expired regclass[] := '{}';
BEGIN
    IF retention IS NOT NULL AND retention <= '0'::interval THEN
        RAISE EXCEPTION 'retention must be positive (NULL keeps everything)'
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'tweetlake.bronze_retention = ''30d'' keeps 30 days.';
    END IF;
    FOR t IN SELECT p.parent, p.col, c.relname
             FROM (VALUES ('bronze.tweets'::regclass, 'ingested_at'),
                          ('bronze.dead_letters'::regclass, 'failed_at')) AS p(parent, col)
             JOIN pg_catalog.pg_class c ON c.oid = p.parent
    LOOP
        -- Today and the days ahead, each unless a partition already covers part of it.
        FOR d IN SELECT today + i FROM pg_catalog.generate_series(0, days_ahead) AS i
        LOOP
            CONTINUE WHEN EXISTS (SELECT FROM tweetlake.partition_ranges(t.parent) x
                                  WHERE x.range_from < (d + 1)::timestamptz
                                    AND x.range_to > d::timestamptz);
            name := t.relname || '_p' || pg_catalog.to_char(d, 'YYYYMMDD');
            BEGIN
                -- A writer that started before today's partition existed sends today's rows
                -- to the default partition, whose constraint excludes them once the new one
                -- is attached ("violates partition constraint"): the writers in flight
                -- finish first, and new ones wait for this transaction.
                IF d = today THEN
                    EXECUTE format('LOCK TABLE %s IN SHARE MODE', t.parent);
                END IF;
                EXECUTE format('CREATE TABLE bronze.%I (LIKE %s INCLUDING DEFAULTS INCLUDING GENERATED '
                               'INCLUDING CONSTRAINTS INCLUDING STORAGE INCLUDING COMPRESSION)',
                               name, t.parent);
                EXECUTE format('ALTER TABLE %s ATTACH PARTITION bronze.%I FOR VALUES FROM (%L) TO (%L)',
                               t.parent, name, d::timestamptz, (d + 1)::timestamptz);
                partition := 'bronze.' || name;
                action := 'created';
                RETURN NEXT;
            EXCEPTION WHEN check_violation OR lock_not_available THEN
                -- rows of that day are in the default partition already (the day the
                -- extension was created), or the default partition is busy: next run
                partition := 'bronze.' || name;
                action := 'not created: ' || SQLERRM;
                RETURN NEXT;
            END;
        END LOOP;

        CONTINUE WHEN retention IS NULL;
        -- Expired days: emptied now (locks that partition only) ...
        FOR r IN SELECT x.partition FROM tweetlake.partition_ranges(t.parent) x
                 WHERE x.range_to <= cutoff ORDER BY x.range_to
        LOOP
            BEGIN
                EXECUTE format('TRUNCATE %s', r.partition);
                expired := expired || r.partition;
            EXCEPTION WHEN lock_not_available THEN
                partition := r.partition::text;
                action := 'not emptied (in use): ' || SQLERRM;
                RETURN NEXT;
            END;
        END LOOP;
        -- ... and expired rows of the default partition deleted.
        SELECT x.partition INTO dflt FROM tweetlake.partition_ranges(t.parent) x WHERE x.range_from IS NULL;
        EXECUTE format('DELETE FROM ONLY %s WHERE %I < $1', dflt, t.col) USING cutoff;
        GET DIAGNOSTICS n = ROW_COUNT;
        IF n > 0 THEN
            partition := dflt::text;
            action := format('%s expired rows deleted', n);
            RETURN NEXT;
        END IF;
    END LOOP;

    -- Dropping a partition takes ACCESS EXCLUSIVE on its parent, held until commit: last,
    -- each waiting 50 ms at most, so a writer waits no longer than that.
    PERFORM pg_catalog.set_config('lock_timeout', '50ms', true);
    FOR r IN SELECT e AS rel, e::text AS relname FROM unnest(expired) AS e
    LOOP
        BEGIN
            EXECUTE format('DROP TABLE %s', r.rel);
            partition := r.relname;
            action := 'dropped';
        EXCEPTION WHEN lock_not_available THEN
            partition := r.relname;
            action := 'emptied; dropped at a later run';
        END;
        RETURN NEXT;
    END LOOP;
END
$$;
COMMENT ON FUNCTION tweetlake.maintain_partitions(interval, integer) IS
    'make the day partitions of bronze.tweets and bronze.dead_letters for today and days_ahead days, empty and drop those older than retention (default tweetlake.bronze_retention); what it did, one row per partition';
REVOKE EXECUTE ON FUNCTION tweetlake.maintain_partitions(interval, integer) FROM PUBLIC;
/* ------------------------------------------------------------------------
 * Silver
 * ------------------------------------------------------------------------ */

CREATE TABLE silver.tweets (
    tweet_id            text NOT NULL,
    text                text NOT NULL,
    created_at          timestamptz NOT NULL,
    tweet_type          text,
    language            text,
    region              text,
    hashtags            text[] NOT NULL,
    mentions            text[] NOT NULL,
    retweet_count       integer,
    like_count          integer,
    reply_count         integer,
    quote_count         integer,
    is_retweet          boolean,
    is_reply            boolean,
    is_quote            boolean,
    has_media           boolean,
    has_url             boolean,
    sentiment_score     double precision,
    engagement_score    double precision,
    reach_estimate      bigint,
    user_id             text,
    username            text,
    display_name        text,
    followers_count     integer,
    following_count     integer,
    verified            boolean,
    user_created_at     timestamptz,
    user_location       text,
    user_description    text,
    original_tweet_id   text,
    original_user_id    text,
    reply_to_tweet_id   text,
    reply_to_user_id    text,
    quoted_tweet_id     text,
    quoted_user_id      text,
    quoted_text         text,
    text_length         integer NOT NULL,
    sentiment_category  text,
    total_engagement    bigint NOT NULL,
    processed_at        timestamptz NOT NULL DEFAULT now(),
    processing_date     date NOT NULL DEFAULT (now() AT TIME ZONE 'UTC')::date,
    updated_at          timestamptz,
    tenant              text NOT NULL DEFAULT 'default',
    PRIMARY KEY (tweet_id, tenant)
);
-- BRIN: time-range scans over silver for next to no ingest cost.
CREATE INDEX tweets_created_at_brin ON silver.tweets USING brin (created_at);
-- A user's tweets by time: what a retraction (an update or a deletion) reads to find a
-- user's largest followers_count, username and first and last day again.  Without the
-- tenant: a user's tweets in other tenants are few to skip, and the tenant in the middle of
-- the key made every tweet's entry wider (a batch 5-15 % slower, bench/RESULTS.md).
CREATE INDEX tweets_user_created_at ON silver.tweets (user_id COLLATE "C", created_at);
COMMENT ON TABLE silver.tweets IS
    'one row per tweet_id, its newest version; hashtags/mentions lower case without #/@, no duplicates';
COMMENT ON COLUMN silver.tweets.updated_at IS
    'the version the message carried ("updated_at"), NULL when it carried none';
COMMENT ON COLUMN silver.tweets.processed_at IS
    'when this version of the tweet was stored';
COMMENT ON COLUMN silver.tweets.tenant IS
    'whose tweet this is (bronze.tweets.tenant); a tweet_id is one tweet per tenant';

-- Deleted tweet_ids (tombstones, tweetlake.delete_tweet()): a deletion is final, so a later
-- message with the id, even the original arriving after its tombstone, changes nothing.
CREATE TABLE silver.deleted_tweets (
    tweet_id   text NOT NULL,
    deleted_at timestamptz NOT NULL DEFAULT now(),
    was_stored boolean NOT NULL,
    tenant     text NOT NULL DEFAULT 'default',
    PRIMARY KEY (tweet_id, tenant)
);
COMMENT ON TABLE silver.deleted_tweets IS
    'tweet_ids deleted by a tombstone or tweetlake.delete_tweet(); was_stored: the tweet was in silver when deleted';

-- The author's reach and the tweet's reception, as the dashboards group them.
CREATE FUNCTION tweetlake.influence_level(followers_count integer) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    RETURN CASE WHEN followers_count >= 100000 THEN 'High Influence'
                WHEN followers_count >= 10000 THEN 'Medium Influence'
                ELSE 'Low Influence' END;
CREATE FUNCTION tweetlake.engagement_level(total_engagement bigint) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    RETURN CASE WHEN total_engagement > 1000 THEN 'Viral'
                WHEN total_engagement > 100 THEN 'Popular'
                ELSE 'Regular' END;

CREATE VIEW silver.tweets_view WITH (security_invoker = true) AS
SELECT t.*,
       tweetlake.influence_level(t.followers_count) AS influence_level,
       tweetlake.engagement_level(t.total_engagement) AS engagement_level
FROM silver.tweets t;


/* ------------------------------------------------------------------------
 * The full recompute of gold from silver: what gold must equal.
 * rebuild_gold() loads these; verify() compares gold against them.
 * ------------------------------------------------------------------------ */

CREATE VIEW tweetlake.silver_facts AS
SELECT tweetlake.utc_hour(created_at) AS hour,
       tweetlake.utc_day(created_at) AS day,
       coalesce(region, 'unknown') AS region,
       coalesce(language, 'unknown') AS language,
       user_id, username, followers_count, hashtags, mentions, sentiment_score,
       sentiment_category, total_engagement, text_length,
       coalesce(tweet_type, 'unknown') AS tweet_type,
       tweetlake.influence_level(followers_count) AS influence_level,
       tenant
FROM silver.tweets;

/*
 * Gold: one piece per table, each with what keeps it (the distinct-count sets its
 * unique_* columns are counted from), what it must equal (tweetlake.recompute_<table>, the
 * full recompute from silver that rebuild_gold() loads and verify() compares against), and
 * the views that read it.  The batch trigger that keeps every table current is in
 * 60_batch.sql.
 *
 * Every row belongs to a tenant (the column tenant, last in each table and in each key):
 * two tenants' groups never mix, and each distinct count is exact per tenant.
 *
 * hour = start of the UTC hour of created_at, day = its UTC date.  Averages are kept
 * exact: each table keeps the sums and counts behind them.  Missing region/language group
 * under 'unknown'.
 *
 * Distinct counts (unique_users, unique_mentions) are exact and kept by membership rows
 * keyed by the member, not by the group: tweetlake.user_hour holds, for each user and hour,
 * the hashtags, (region, language) pairs and languages the user tweeted with, each as a
 * tweetlake.bag (sorted keys with a count of tweets each); tweetlake.mention_hour does the
 * same for each mentioned account and the hashtags it was mentioned with.  A batch merges
 * its own bags into these rows with one INSERT ... ON CONFLICT DO UPDATE per (hour, member)
 * and reads back under the row lock which keys it added: a key is new to the member when
 * the row's count now equals the count the batch brought (tweetlake.bag_new), and each new
 * key is one more member of that group.  This stays exact when several consumers write the
 * same rows concurrently.  A batch that takes rows back (an update's old version, a
 * deleted tweet) brings negative counts: a key the row no longer holds afterwards is a
 * group the member left (tweetlake.bag_gone), one member fewer.  Each
 * membership table has its recompute view too, so rebuild_gold() reloads it like gold.
 */

-- A counted set: keys (sorted bytewise, distinct) and how many rows brought each.
CREATE TYPE tweetlake.bag AS (keys text[], n integer[]);
COMMENT ON TYPE tweetlake.bag IS
    'counted set: sorted distinct keys with a count each (membership of the distinct counts)';

-- The keys of both with their counts summed (keys whose sum is 0 are dropped).
CREATE FUNCTION tweetlake.bag_add(tweetlake.bag, tweetlake.bag) RETURNS tweetlake.bag
    AS 'MODULE_PATHNAME', 'tweetlake_bag_add' LANGUAGE C IMMUTABLE PARALLEL SAFE;
-- The keys of added whose count in after is the count added: the keys added brought in.
CREATE FUNCTION tweetlake.bag_new(after tweetlake.bag, added tweetlake.bag) RETURNS text[]
    AS 'MODULE_PATHNAME', 'tweetlake_bag_new' LANGUAGE C IMMUTABLE PARALLEL SAFE;
-- The keys added took away (negative counts) that after no longer holds: the groups left.
CREATE FUNCTION tweetlake.bag_gone(after tweetlake.bag, added tweetlake.bag) RETURNS text[]
    AS 'MODULE_PATHNAME', 'tweetlake_bag_gone' LANGUAGE C IMMUTABLE PARALLEL SAFE;

CREATE FUNCTION tweetlake.bag_agg_key(internal, text) RETURNS internal
    AS 'MODULE_PATHNAME', 'tweetlake_bag_agg_key' LANGUAGE C IMMUTABLE PARALLEL SAFE;
CREATE FUNCTION tweetlake.bag_agg_keys(internal, text[]) RETURNS internal
    AS 'MODULE_PATHNAME', 'tweetlake_bag_agg_keys' LANGUAGE C IMMUTABLE PARALLEL SAFE;
CREATE FUNCTION tweetlake.bag_agg_final(internal) RETURNS tweetlake.bag
    AS 'MODULE_PATHNAME', 'tweetlake_bag_agg_final' LANGUAGE C IMMUTABLE PARALLEL SAFE;
-- The bag of the keys aggregated (each element, for arrays); no keys: the empty bag.
CREATE AGGREGATE tweetlake.bag_agg(text) (
    SFUNC = tweetlake.bag_agg_key, STYPE = internal,
    FINALFUNC = tweetlake.bag_agg_final, FINALFUNC_MODIFY = READ_WRITE);
CREATE AGGREGATE tweetlake.bag_agg(text[]) (
    SFUNC = tweetlake.bag_agg_keys, STYPE = internal,
    FINALFUNC = tweetlake.bag_agg_final, FINALFUNC_MODIFY = READ_WRITE);

-- One key for a (region, language) pair, unambiguous whatever the two contain.
CREATE FUNCTION tweetlake.pair_key(a text, b text) RETURNS text
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    RETURN length(a)::text || ':' || a || b;

-- fillfactor: the rows are updated in place by later batches of the same hour (HOT).
-- toast_tuple_target: a busy account's row grows past the 2 kB at which PostgreSQL would
-- compress its bags, and it is rewritten by nearly every batch; up to 8 kB it stays as it is
-- (pglz took 5 % of a consumer's CPU at a steady 6,000 tweets/s).
CREATE TABLE tweetlake.user_hour (
    hour      timestamptz NOT NULL,
    user_id   text COLLATE "C" NOT NULL,
    tweets    bigint NOT NULL,
    hashtags  tweetlake.bag NOT NULL,
    places    tweetlake.bag NOT NULL,
    languages tweetlake.bag NOT NULL,
    tenant    text NOT NULL DEFAULT 'default',
    PRIMARY KEY (hour, user_id, tenant)
) WITH (fillfactor = 70, toast_tuple_target = 8160);
COMMENT ON TABLE tweetlake.user_hour IS
    'per user and hour: tweets, and the hashtags, (region, language) pairs (tweetlake.pair_key) and languages tweeted with, counted';

CREATE TABLE tweetlake.mention_hour (
    hour     timestamptz NOT NULL,
    mention  text COLLATE "C" NOT NULL,
    hashtags tweetlake.bag NOT NULL,
    tenant   text NOT NULL DEFAULT 'default',
    PRIMARY KEY (hour, mention, tenant)
) WITH (fillfactor = 70, toast_tuple_target = 8160);
COMMENT ON TABLE tweetlake.mention_hour IS
    'per mentioned account and hour: the hashtags of the tweets that mention it, counted';

CREATE VIEW tweetlake.recompute_user_hour AS
SELECT hour, user_id COLLATE "C" AS user_id, count(*) AS tweets,
       tweetlake.bag_agg(hashtags) AS hashtags,
       tweetlake.bag_agg(tweetlake.pair_key(region, language)) AS places,
       tweetlake.bag_agg(language) AS languages, tenant
FROM tweetlake.silver_facts
WHERE user_id IS NOT NULL
GROUP BY tenant, hour, user_id;

CREATE VIEW tweetlake.recompute_mention_hour AS
SELECT f.hour, m.mention COLLATE "C" AS mention, tweetlake.bag_agg(f.hashtags) AS hashtags, f.tenant
FROM tweetlake.silver_facts f, unnest(f.mentions) AS m(mention)
WHERE cardinality(f.hashtags) > 0
GROUP BY f.tenant, f.hour, m.mention;
/* ------------------------------------------------------------------------
 * gold.popular_hashtags_by_hour: hashtags per hour
 * ------------------------------------------------------------------------ */

-- fillfactor 50: a batch updates nearly every row of its hour once, and each new version
-- then finds room on its own page (a HOT update, no index entry).
CREATE TABLE gold.popular_hashtags_by_hour (
    hour             timestamptz NOT NULL,
    hashtag          text NOT NULL,
    tweet_count      bigint NOT NULL,
    unique_users     bigint NOT NULL,
    unique_mentions  bigint NOT NULL,
    avg_sentiment    double precision,
    total_engagement bigint NOT NULL,
    avg_engagement   double precision NOT NULL,
    sentiment_sum    numeric NOT NULL,
    sentiment_n      bigint NOT NULL,
    tenant           text NOT NULL DEFAULT 'default',
    PRIMARY KEY (hour, hashtag, tenant)
) WITH (fillfactor = 50);

CREATE VIEW tweetlake.recompute_popular_hashtags_by_hour AS
WITH tags AS (
    SELECT f.tenant, f.hour, h.hashtag, f.user_id, f.mentions, f.sentiment_score, f.total_engagement
    FROM tweetlake.silver_facts f, unnest(f.hashtags) AS h(hashtag)
), mentioned AS (
    SELECT t.tenant, t.hour, t.hashtag, count(DISTINCT m.mention) AS n
    FROM tags t, unnest(t.mentions) AS m(mention)
    GROUP BY t.tenant, t.hour, t.hashtag
)
SELECT t.hour, t.hashtag,
       count(*) AS tweet_count,
       count(DISTINCT t.user_id) AS unique_users,
       coalesce(max(m.n), 0) AS unique_mentions,
       tweetlake.exact_avg(coalesce(sum(t.sentiment_score::numeric), 0), count(t.sentiment_score)) AS avg_sentiment,
       sum(t.total_engagement)::bigint AS total_engagement,
       sum(t.total_engagement)::double precision / count(*) AS avg_engagement,
       coalesce(sum(t.sentiment_score::numeric), 0) AS sentiment_sum,
       count(t.sentiment_score) AS sentiment_n,
       t.tenant
FROM tags t
LEFT JOIN mentioned m USING (tenant, hour, hashtag)
GROUP BY t.tenant, t.hour, t.hashtag;

CREATE VIEW gold.popular_hashtags_view WITH (security_invoker = true) AS
SELECT hour, hashtag, tweet_count, unique_users, unique_mentions, avg_sentiment,
       total_engagement, avg_engagement,
       rank() OVER (PARTITION BY tenant, hour ORDER BY tweet_count DESC, total_engagement DESC) AS rank_in_hour,
       tenant
FROM gold.popular_hashtags_by_hour;

-- Hashtags over the last 24 hours (by created_at), with momentum: the last 6 hours' share
-- against an even spread (1.0 = steady, above = rising).
CREATE VIEW gold.trending_hashtags_view WITH (security_invoker = true) AS
SELECT hashtag,
       sum(tweet_count)::bigint AS tweet_count,
       sum(total_engagement)::bigint AS total_engagement,
       count(*) AS active_hours,
       round(4.0 * coalesce(sum(tweet_count) FILTER (WHERE hour >= date_trunc('hour', now()) - interval '5 hours'), 0)
             / sum(tweet_count), 2) AS momentum,
       rank() OVER (PARTITION BY tenant ORDER BY sum(tweet_count) DESC, sum(total_engagement) DESC) AS trend_rank,
       tenant
FROM gold.popular_hashtags_by_hour
WHERE hour >= date_trunc('hour', now()) - interval '23 hours'
GROUP BY tenant, hashtag;

/* ------------------------------------------------------------------------
 * gold.active_users_by_day: each user per day
 * ------------------------------------------------------------------------ */

-- fillfactor 70: room for the next version of a row updated by a later batch of the day (HOT).
CREATE TABLE gold.active_users_by_day (
    day              date NOT NULL,
    user_id          text NOT NULL,
    username         text,
    tweets_count     bigint NOT NULL,
    followers_count  integer,
    total_engagement bigint NOT NULL,
    avg_sentiment    double precision,
    sentiment_sum    numeric NOT NULL,
    sentiment_n      bigint NOT NULL,
    tenant           text NOT NULL DEFAULT 'default',
    PRIMARY KEY (day, user_id, tenant)
) WITH (fillfactor = 70);
COMMENT ON COLUMN gold.active_users_by_day.followers_count IS 'largest followers_count seen that day';

CREATE VIEW tweetlake.recompute_active_users_by_day AS
SELECT day, user_id, max(username) AS username, count(*) AS tweets_count,
       max(followers_count) AS followers_count,
       sum(total_engagement)::bigint AS total_engagement,
       tweetlake.exact_avg(coalesce(sum(sentiment_score::numeric), 0), count(sentiment_score)) AS avg_sentiment,
       coalesce(sum(sentiment_score::numeric), 0) AS sentiment_sum,
       count(sentiment_score) AS sentiment_n,
       tenant
FROM tweetlake.silver_facts
WHERE user_id IS NOT NULL
GROUP BY tenant, day, user_id;

CREATE VIEW gold.active_users_view WITH (security_invoker = true) AS
SELECT day, user_id, username, tweets_count, followers_count, total_engagement, avg_sentiment,
       rank() OVER (PARTITION BY tenant, day ORDER BY tweets_count DESC, total_engagement DESC) AS rank_in_day,
       tenant
FROM gold.active_users_by_day;

/* ------------------------------------------------------------------------
 * gold.user_engagement: each user over all time
 * ------------------------------------------------------------------------ */

-- Each user over all time: the "top users" ranking reads one row per user here instead of
-- summing active_users_by_day over every day.
CREATE TABLE gold.user_engagement (
    user_id          text NOT NULL,
    username         text,
    tweets_count     bigint NOT NULL,
    followers_count  integer,
    total_engagement bigint NOT NULL,
    first_day        date NOT NULL,
    last_day         date NOT NULL,
    tenant           text NOT NULL DEFAULT 'default',
    PRIMARY KEY (user_id, tenant)
);
COMMENT ON TABLE gold.user_engagement IS 'per user over all time: tweets, engagement, largest followers_count, first and last day seen';

CREATE VIEW tweetlake.recompute_user_engagement AS
SELECT user_id, max(username) AS username, count(*) AS tweets_count,
       max(followers_count) AS followers_count,
       sum(total_engagement)::bigint AS total_engagement,
       min(day) AS first_day, max(day) AS last_day, tenant
FROM tweetlake.silver_facts
WHERE user_id IS NOT NULL
GROUP BY tenant, user_id;


/*
 * The top users by engagement, kept by the batch (0.9.0).  An index on total_engagement
 * would serve "ORDER BY total_engagement DESC LIMIT n", but every batch changes the totals of
 * the users it touches, and an update of an indexed column is never HOT: the index cost a
 * consumer ~8 % of its CPU at a steady rate (bench/RESULTS.md).  Instead:
 *   tweetlake.top_users          a set of users (the members)
 *   tweetlake.top_users_pending  users a batch could not add to the members (0.10.0)
 *   tweetlake.top_users_floor    one row (made by the first batch): the floor (NULL or no
 *                                row: every user is a candidate) and how many members
 * and every user whose total is above the floor is a member or pending, so the users above
 * the floor, best first, are the head of the ranking, exactly, once there are 100 of them.
 * One batch at a time keeps the members (the one that holds a lock on a row of
 * tweetlake.top_users_locks, taken without waiting): it moves the pending users above the floor into the members,
 * adds the users it touched that are now above it, and past 400 members keeps the 200 best
 * (ties included) and raises the floor to the best total dropped.  A batch that finds the
 * lock taken does not wait (a transaction of several batches holds it until it commits,
 * and a batch waiting for it while holding rows of gold.user_engagement could deadlock with
 * it): it writes the users it touched that are above the floor to the pending list.
 * Engagement taken back (an update, a deletion) can leave fewer than 100 users above the
 * floor: the view then sorts gold.user_engagement itself, and the holder loads the set
 * again from the recompute views.
 *
 * All of it is per tenant (0.13.0): each tenant has its set, pending users and floor row, and
 * its ranking; the two locks are shared.
 *
 * Each member keeps a copy of its row of gold.user_engagement (0.11.0), so that the view
 * reads the set, not 200 to 400 rows of the table every batch updates.  The copy is the
 * row's unless the user is pending: the holder's batch writes the copies of the members it
 * touched and of the pending users it moves; any other batch that touches a member writes
 * it to the pending list (a member is above the floor, or the batch took engagement back),
 * and the view reads a pending user's row from gold.user_engagement.  A member whose row is
 * gone keeps a copy of NULLs until a trim or a refill drops it.
 */
CREATE TABLE tweetlake.top_users (
    user_id          text NOT NULL,
    username         text,
    tweets_count     bigint,
    followers_count  integer,
    total_engagement bigint,
    first_day        date,
    last_day         date,
    tenant           text NOT NULL DEFAULT 'default',
    PRIMARY KEY (user_id, tenant)
) WITH (parallel_workers = 0);
COMMENT ON TABLE tweetlake.top_users IS
    'users that may rank at the top by total engagement: every user above tweetlake.top_users_floor is one; each with a copy of its gold.user_engagement row (stale while the user is in tweetlake.top_users_pending)';

-- No key: a batch adds to it without ever waiting on another's row.
CREATE TABLE tweetlake.top_users_pending (
    user_id   text,
    retracted boolean NOT NULL,
    tenant    text NOT NULL DEFAULT 'default'
) WITH (parallel_workers = 0);
COMMENT ON TABLE tweetlake.top_users_pending IS
    'users above tweetlake.top_users_floor that a batch could not add to tweetlake.top_users (the next batch to hold the set does); retracted: engagement was taken back, the count above the floor is to be checked (user_id NULL: only that)';

-- Row 1: locked by the batch that keeps the set; row 2: locked in share mode by a batch that
-- writes pending users above the floor it read, and by a batch that loads the set again (and
-- moves the floor). Locked FOR UPDATE/SHARE SKIP LOCKED, so never waited for; a row lock
-- needs UPDATE on the table, which only its owner has. The rows come with CREATE EXTENSION:
-- the table is left out of pg_dump.
CREATE TABLE tweetlake.top_users_locks (
    id integer PRIMARY KEY CHECK (id IN (1, 2))
);
INSERT INTO tweetlake.top_users_locks VALUES (1), (2);
COMMENT ON TABLE tweetlake.top_users_locks IS
    'two rows the batches lock without waiting: 1, keeping tweetlake.top_users; 2, reading or moving its floor';

-- A full recompute leaves nothing pending.
CREATE VIEW tweetlake.recompute_top_users_pending AS
SELECT NULL::text AS user_id, false AS retracted, NULL::text AS tenant
WHERE false;

CREATE TABLE tweetlake.top_users_floor (
    id      boolean NOT NULL DEFAULT true CHECK (id),
    floor   bigint,
    members integer NOT NULL,
    tenant  text NOT NULL DEFAULT 'default',
    PRIMARY KEY (id, tenant)
) WITH (parallel_workers = 0);
COMMENT ON TABLE tweetlake.top_users_floor IS
    'one row per tenant: no user outside tweetlake.top_users has more total engagement than floor (NULL: every user is in it); members, how many it holds';

-- Each tenant's 200th best total (a tenant with fewer than 200 users: its lowest).  The set,
-- loaded again, is the users at or above it (the 200 best, and any tied with the 200th); the
-- floor is the best total below it (NULL: none is).
CREATE VIEW tweetlake.top_users_cut AS
SELECT b.tenant, min(b.total_engagement) AS total_engagement
FROM (SELECT e.tenant, e.total_engagement,
             row_number() OVER (PARTITION BY e.tenant ORDER BY e.total_engagement DESC) AS n
      FROM gold.user_engagement e) b
WHERE b.n <= 200
GROUP BY b.tenant;
COMMENT ON VIEW tweetlake.top_users_cut IS
    'each tenant''s 200th best total engagement: where a refill of tweetlake.top_users cuts';

CREATE VIEW tweetlake.recompute_top_users AS
SELECT u.user_id, u.username, u.tweets_count, u.followers_count, u.total_engagement,
       u.first_day, u.last_day, u.tenant
FROM gold.user_engagement u
JOIN tweetlake.top_users_cut cut ON cut.tenant = u.tenant
WHERE u.total_engagement >= cut.total_engagement;

CREATE VIEW tweetlake.recompute_top_users_floor AS
SELECT true AS id,
       (SELECT max(u.total_engagement) FROM gold.user_engagement u
        WHERE u.tenant = cut.tenant AND u.total_engagement < cut.total_engagement) AS floor,
       (SELECT count(*) FROM gold.user_engagement u
        WHERE u.tenant = cut.tenant AND u.total_engagement >= cut.total_engagement)::integer AS members,
       cut.tenant
FROM tweetlake.top_users_cut cut;

-- No parallel plan: starting workers costs more than this view's work, ~10 ms on a busy
-- server.  Per tenant (its floor row; a tenant whose users are all pending has none yet, and
-- no floor): the members above the floor, best first (a pending user's row read from
-- gold.user_engagement); when fewer than 100 are above it, the
-- tenant's users sorted instead, a lateral subquery gated by that test (not run otherwise).
-- The floor is one value a tenant, read once; the set's tables are never scanned in
-- parallel (parallel_workers = 0: they are small).  security_invoker: a tenant's role reads
-- its own rows only (row-level security, 90_access.sql).
CREATE VIEW gold.top_users_by_engagement WITH (security_invoker = true) AS
WITH floors AS (
    SELECT f.tenant, f.floor FROM tweetlake.top_users_floor f
    UNION ALL
    SELECT DISTINCT p.tenant, NULL::bigint FROM tweetlake.top_users_pending p
    WHERE NOT EXISTS (SELECT FROM tweetlake.top_users_floor f WHERE f.tenant = p.tenant)
), head AS (
    SELECT c.*, f.tenant,
           count(*) OVER (PARTITION BY f.tenant) AS above,
           row_number() OVER (PARTITION BY f.tenant ORDER BY c.total_engagement DESC, c.user_id) AS n
    FROM floors f
    CROSS JOIN LATERAL (
        SELECT t.user_id, t.username, t.tweets_count, t.followers_count, t.total_engagement,
               t.first_day, t.last_day
        FROM tweetlake.top_users t
        WHERE t.tenant = f.tenant AND t.total_engagement IS NOT NULL
          AND NOT EXISTS (SELECT FROM tweetlake.top_users_pending p
                          WHERE p.tenant = f.tenant AND p.user_id = t.user_id)
        UNION ALL
        SELECT u.user_id, u.username, u.tweets_count, u.followers_count, u.total_engagement,
               u.first_day, u.last_day
        FROM gold.user_engagement u
        WHERE u.tenant = f.tenant
          AND u.user_id IN (SELECT p.user_id FROM tweetlake.top_users_pending p
                            WHERE p.tenant = f.tenant)) c
    WHERE f.floor IS NULL OR c.total_engagement > f.floor
), exact AS (
    SELECT f.tenant,
           f.floor IS NULL OR coalesce((SELECT max(h.above) FROM head h WHERE h.tenant = f.tenant), 0) >= 100 AS yes
    FROM floors f
)
SELECT h.user_id, h.username, h.tweets_count, h.followers_count, h.total_engagement,
       h.first_day, h.last_day, h.tenant
FROM head h JOIN exact e ON e.tenant = h.tenant
WHERE e.yes AND h.n <= 100
UNION ALL
SELECT s.user_id, s.username, s.tweets_count, s.followers_count, s.total_engagement,
       s.first_day, s.last_day, e.tenant
FROM exact e CROSS JOIN LATERAL (
    SELECT u.user_id, u.username, u.tweets_count, u.followers_count, u.total_engagement,
           u.first_day, u.last_day
    FROM gold.user_engagement u
    WHERE NOT e.yes AND u.tenant = e.tenant
    ORDER BY u.total_engagement DESC, u.user_id
    LIMIT 100) s
ORDER BY tenant, total_engagement DESC, user_id;
COMMENT ON VIEW gold.top_users_by_engagement IS
    'each tenant''s 100 users with the most engagement over all time, best first (ties by user_id): gold.user_engagement''s rows, without sorting every user';
/* ------------------------------------------------------------------------
 * gold.tweet_volume_by_region: tweets per hour, region and language
 * ------------------------------------------------------------------------ */

CREATE TABLE gold.tweet_volume_by_region (
    hour             timestamptz NOT NULL,
    region           text NOT NULL,
    language         text NOT NULL,
    tweet_count      bigint NOT NULL,
    unique_users     bigint NOT NULL,
    avg_sentiment    double precision,
    positive_count   bigint NOT NULL,
    negative_count   bigint NOT NULL,
    neutral_count    bigint NOT NULL,
    total_engagement bigint NOT NULL,
    sentiment_sum    numeric NOT NULL,
    sentiment_n      bigint NOT NULL,
    tenant           text NOT NULL DEFAULT 'default',
    PRIMARY KEY (hour, region, language, tenant)
);

CREATE VIEW tweetlake.recompute_tweet_volume_by_region AS
SELECT hour, region, language, count(*) AS tweet_count,
       count(DISTINCT user_id) AS unique_users,
       tweetlake.exact_avg(coalesce(sum(sentiment_score::numeric), 0), count(sentiment_score)) AS avg_sentiment,
       count(*) FILTER (WHERE sentiment_category = 'positive') AS positive_count,
       count(*) FILTER (WHERE sentiment_category = 'negative') AS negative_count,
       count(*) FILTER (WHERE sentiment_category = 'neutral') AS neutral_count,
       sum(total_engagement)::bigint AS total_engagement,
       coalesce(sum(sentiment_score::numeric), 0) AS sentiment_sum,
       count(sentiment_score) AS sentiment_n,
       tenant
FROM tweetlake.silver_facts
GROUP BY tenant, hour, region, language;

CREATE VIEW gold.regional_activity_view WITH (security_invoker = true) AS
SELECT hour, region, language, tweet_count, unique_users, avg_sentiment, positive_count,
       negative_count, neutral_count, total_engagement,
       rank() OVER (PARTITION BY tenant, hour ORDER BY tweet_count DESC, total_engagement DESC) AS rank_in_hour,
       tenant
FROM gold.tweet_volume_by_region;

/* ------------------------------------------------------------------------
 * gold.tweet_metrics_by_language: tweets per hour and language
 * ------------------------------------------------------------------------ */

CREATE TABLE gold.tweet_metrics_by_language (
    hour             timestamptz NOT NULL,
    language         text NOT NULL,
    tweet_count      bigint NOT NULL,
    avg_tweet_length double precision NOT NULL,
    avg_sentiment    double precision,
    avg_engagement   double precision NOT NULL,
    unique_users     bigint NOT NULL,
    text_length_sum  bigint NOT NULL,
    total_engagement bigint NOT NULL,
    sentiment_sum    numeric NOT NULL,
    sentiment_n      bigint NOT NULL,
    tenant           text NOT NULL DEFAULT 'default',
    PRIMARY KEY (hour, language, tenant)
);

CREATE VIEW tweetlake.recompute_tweet_metrics_by_language AS
SELECT hour, language, count(*) AS tweet_count,
       sum(text_length)::double precision / count(*) AS avg_tweet_length,
       tweetlake.exact_avg(coalesce(sum(sentiment_score::numeric), 0), count(sentiment_score)) AS avg_sentiment,
       sum(total_engagement)::double precision / count(*) AS avg_engagement,
       count(DISTINCT user_id) AS unique_users,
       sum(text_length)::bigint AS text_length_sum,
       sum(total_engagement)::bigint AS total_engagement,
       coalesce(sum(sentiment_score::numeric), 0) AS sentiment_sum,
       count(sentiment_score) AS sentiment_n,
       tenant
FROM tweetlake.silver_facts
GROUP BY tenant, hour, language;

CREATE VIEW gold.language_metrics_view WITH (security_invoker = true) AS
SELECT hour, language, tweet_count, avg_tweet_length, avg_sentiment, avg_engagement, unique_users,
       rank() OVER (PARTITION BY tenant, hour ORDER BY tweet_count DESC, avg_engagement DESC) AS rank_in_hour,
       tenant
FROM gold.tweet_metrics_by_language;

/* ------------------------------------------------------------------------
 * gold.hourly_activity_summary: each hour, with its top hashtag and region
 * ------------------------------------------------------------------------ */

CREATE TABLE gold.hourly_activity_summary (
    hour              timestamptz NOT NULL,
    total_tweets      bigint NOT NULL,
    unique_users      bigint NOT NULL,
    avg_sentiment     double precision,
    total_engagement  bigint NOT NULL,
    top_hashtag       text,
    top_region        text,
    positive_count    bigint NOT NULL,
    negative_count    bigint NOT NULL,
    neutral_count     bigint NOT NULL,
    sentiment_sum     numeric NOT NULL,
    sentiment_n       bigint NOT NULL,
    top_hashtag_count bigint,
    top_region_count  bigint,
    tenant            text NOT NULL DEFAULT 'default',
    PRIMARY KEY (hour, tenant)
);
COMMENT ON COLUMN gold.hourly_activity_summary.top_hashtag IS
    'hashtag in most tweets that hour (ties: alphabetically first)';
COMMENT ON COLUMN gold.hourly_activity_summary.top_region IS
    'region with most tweets that hour (ties: alphabetically first)';

-- Tweets per region and hour over all languages, for top_region.
CREATE TABLE tweetlake.region_hour_counts (
    hour timestamptz, region text, tweet_count bigint NOT NULL,
    tenant text NOT NULL DEFAULT 'default', PRIMARY KEY (hour, region, tenant));

CREATE VIEW tweetlake.recompute_hourly_activity_summary AS
WITH tag AS (
    SELECT DISTINCT ON (tenant, hour) tenant, hour, hashtag, tweet_count
    FROM tweetlake.recompute_popular_hashtags_by_hour
    ORDER BY tenant, hour, tweet_count DESC, hashtag
), reg AS (
    SELECT DISTINCT ON (tenant, hour) tenant, hour, region, count(*) AS tweet_count
    FROM tweetlake.silver_facts
    GROUP BY tenant, hour, region
    ORDER BY tenant, hour, count(*) DESC, region
)
SELECT f.hour, count(*) AS total_tweets,
       count(DISTINCT f.user_id) AS unique_users,
       tweetlake.exact_avg(coalesce(sum(f.sentiment_score::numeric), 0), count(f.sentiment_score)) AS avg_sentiment,
       sum(f.total_engagement)::bigint AS total_engagement,
       min(tag.hashtag) AS top_hashtag,
       min(reg.region) AS top_region,
       count(*) FILTER (WHERE f.sentiment_category = 'positive') AS positive_count,
       count(*) FILTER (WHERE f.sentiment_category = 'negative') AS negative_count,
       count(*) FILTER (WHERE f.sentiment_category = 'neutral') AS neutral_count,
       coalesce(sum(f.sentiment_score::numeric), 0) AS sentiment_sum,
       count(f.sentiment_score) AS sentiment_n,
       min(tag.tweet_count) AS top_hashtag_count,
       min(reg.tweet_count) AS top_region_count,
       f.tenant
FROM tweetlake.silver_facts f
LEFT JOIN tag USING (tenant, hour)
LEFT JOIN reg USING (tenant, hour)
GROUP BY f.tenant, f.hour;

CREATE VIEW tweetlake.recompute_region_hour_counts AS
SELECT hour, region, count(*) AS tweet_count, tenant FROM tweetlake.silver_facts GROUP BY tenant, hour, region;

-- Sentiment categories per hour as rows (one per category), for pie and stacked charts.
CREATE VIEW gold.sentiment_by_hour_view WITH (security_invoker = true) AS
SELECT h.hour, c.sentiment_category, c.tweet_count, h.tenant
FROM gold.hourly_activity_summary h
CROSS JOIN LATERAL (VALUES ('positive', h.positive_count), ('negative', h.negative_count),
                           ('neutral', h.neutral_count)) AS c(sentiment_category, tweet_count);

/* ------------------------------------------------------------------------
 * gold.engagement_by_type_hour: tweet types by the author's influence level
 * ------------------------------------------------------------------------ */

CREATE TABLE gold.engagement_by_type_hour (
    hour             timestamptz NOT NULL,
    tweet_type       text NOT NULL,
    influence_level  text NOT NULL,
    tweet_count      bigint NOT NULL,
    total_engagement bigint NOT NULL,
    avg_engagement   double precision NOT NULL,
    viral_count      bigint NOT NULL,
    avg_sentiment    double precision,
    sentiment_sum    numeric NOT NULL,
    sentiment_n      bigint NOT NULL,
    tenant           text NOT NULL DEFAULT 'default',
    PRIMARY KEY (hour, tweet_type, influence_level, tenant)
);
COMMENT ON COLUMN gold.engagement_by_type_hour.influence_level IS
    'tweetlake.influence_level(followers_count): High >= 100k followers, Medium >= 10k, else Low';
COMMENT ON COLUMN gold.engagement_by_type_hour.viral_count IS
    'tweets with total engagement above 1000 (engagement_level Viral)';

CREATE VIEW tweetlake.recompute_engagement_by_type_hour AS
SELECT hour, tweet_type, influence_level, count(*) AS tweet_count,
       sum(total_engagement)::bigint AS total_engagement,
       sum(total_engagement)::double precision / count(*) AS avg_engagement,
       count(*) FILTER (WHERE total_engagement > 1000) AS viral_count,
       tweetlake.exact_avg(coalesce(sum(sentiment_score::numeric), 0), count(sentiment_score)) AS avg_sentiment,
       coalesce(sum(sentiment_score::numeric), 0) AS sentiment_sum,
       count(sentiment_score) AS sentiment_n,
       tenant
FROM tweetlake.silver_facts
GROUP BY tenant, hour, tweet_type, influence_level;

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

/* ------------------------------------------------------------------------
 * Full recompute and verification
 * ------------------------------------------------------------------------ */

/*
 * The tables the batch trigger maintains, from the catalog: every table of the extension in
 * gold (what verify() checks) or in tweetlake that has a full recompute view named
 * tweetlake.recompute_<table> (the distinct-count sets and region_hour_counts), with its key.
 * A new gold table needs no entry here: its table and recompute view are enough.
 */
CREATE VIEW tweetlake.maintained_tables AS
SELECT c.oid::regclass AS table_name,
       v.oid::regclass AS recompute_view,
       n.nspname = 'gold' AS in_gold,
       (SELECT string_agg(quote_ident(a.attname), ', ' ORDER BY k.ord)
        FROM pg_index i
        CROSS JOIN unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, ord)
        JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
        WHERE i.indrelid = c.oid AND i.indisprimary) AS key_columns
FROM pg_extension e
JOIN pg_depend d ON d.refclassid = 'pg_extension'::regclass AND d.refobjid = e.oid
                AND d.classid = 'pg_class'::regclass AND d.deptype = 'e'
JOIN pg_class c ON c.oid = d.objid AND c.relkind = 'r'
JOIN pg_namespace n ON n.oid = c.relnamespace AND n.nspname IN ('gold', 'tweetlake')
JOIN pg_class v ON v.relname = 'recompute_' || c.relname AND v.relkind = 'v'
               AND v.relnamespace = 'tweetlake'::regnamespace
WHERE e.extname = 'tweetlake';
COMMENT ON VIEW tweetlake.maintained_tables IS
    'the gold tables and distinct-count sets the batch trigger keeps, each with its full recompute view and key';

CREATE FUNCTION tweetlake.rebuild_gold() RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    t record;
BEGIN
    -- Serialise with the incremental path so nothing lands between truncate and reload.
    LOCK TABLE silver.tweets IN SHARE MODE;
    EXECUTE (SELECT 'TRUNCATE ' || string_agg(table_name::text, ', ' ORDER BY table_name::oid)
             FROM tweetlake.maintained_tables);
    FOR t IN SELECT * FROM tweetlake.maintained_tables ORDER BY table_name::oid
    LOOP
        EXECUTE format('INSERT INTO %s SELECT * FROM %s', t.table_name, t.recompute_view);
    END LOOP;
END
$$;
COMMENT ON FUNCTION tweetlake.rebuild_gold() IS 'recompute every gold table from silver from scratch';

CREATE FUNCTION tweetlake.verify()
RETURNS TABLE (gold_table text, gold_rows bigint, recomputed_rows bigint,
               missing bigint, extra bigint, differing bigint)
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    t record;
    -- %1$s the name reported, %2$s the key, %3$s what gold holds, %4$s what it must equal
    compare constant text :=
        'SELECT %1$L::text, count(g.k), count(r.k),
                count(*) FILTER (WHERE g.k IS NULL),
                count(*) FILTER (WHERE r.k IS NULL),
                count(*) FILTER (WHERE g.k IS NOT NULL AND r.k IS NOT NULL AND g.v IS DISTINCT FROM r.v)
         FROM (SELECT row(%2$s) AS k, x AS v FROM %3$s x) g
         FULL JOIN (SELECT row(%2$s) AS k, x AS v FROM %4$s x) r ON g.k = r.k';
BEGIN
    FOR t IN SELECT * FROM tweetlake.maintained_tables WHERE in_gold ORDER BY table_name::oid
    LOOP
        RETURN QUERY EXECUTE format(compare,
            (SELECT relname FROM pg_class WHERE oid = t.table_name), t.key_columns,
            t.table_name, t.recompute_view);
    END LOOP;
    -- The ranking the batch keeps: each tenant's head of gold.user_engagement (compared with
    -- its recompute above) sorted, row for row.
    RETURN QUERY EXECUTE format(compare, 'top_users_by_engagement', 'tenant, user_id',
        'gold.top_users_by_engagement',
        '(SELECT u.user_id, u.username, u.tweets_count, u.followers_count,
                 u.total_engagement, u.first_day, u.last_day, u.tenant
          FROM (SELECT e.*, row_number() OVER (PARTITION BY e.tenant
                                               ORDER BY e.total_engagement DESC, e.user_id) AS n
                FROM gold.user_engagement e) u
          WHERE u.n <= 100)');
END
$$;
COMMENT ON FUNCTION tweetlake.verify() IS
    'compare each gold table with a full recompute from silver: missing, extra and differing rows (all 0 when correct)';
/* ------------------------------------------------------------------------
 * Sources: several Kafka feeds in one database (src/source.c, src/launcher.c).  Each
 * source has its brokers, topic, consumers, properties file and generator; the launcher
 * starts, restarts and stops each source's workers as its row changes, within a second or
 * two.  The source "default" is postgresql.conf's tweetlake.* settings, as before sources:
 * its row only says whether it runs and for which tenant.  Every message a source brings
 * belongs to its tenant (0.13.0): bronze, silver and gold carry it, and row-level security
 * shows a tenant's role its own rows only (tweetlake.grant_tenant, 90_access.sql).  Offsets are kept per source (tweetlake.offsets.source,
 * 70_kafka.sql), and go when their source is dropped.
 * ------------------------------------------------------------------------ */

CREATE TABLE tweetlake.sources (
    name              text PRIMARY KEY,
    brokers           text,
    topic             text,
    consumers         integer,
    kafka_config_file text,
    generator_rate    integer,
    enabled           boolean NOT NULL DEFAULT true,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    tenant            text NOT NULL DEFAULT 'default',
    CONSTRAINT sources_name CHECK (name OPERATOR(pg_catalog.~) '^[a-z][a-z0-9_]*$'
                                   AND pg_catalog.length(name) OPERATOR(pg_catalog.<=) 40),
    -- librdkafka's bootstrap.servers: host:port items, comma-separated, no blanks
    CONSTRAINT sources_brokers CHECK (brokers OPERATOR(pg_catalog.~) '^[^,[:space:]]+(,[^,[:space:]]+)*$'
                                      AND pg_catalog.length(brokers) OPERATOR(pg_catalog.<=) 1024),
    -- Kafka's rule for topic names
    CONSTRAINT sources_topic CHECK (topic OPERATOR(pg_catalog.~) '^[a-zA-Z0-9._-]{1,249}$'),
    CONSTRAINT sources_consumers CHECK (consumers OPERATOR(pg_catalog.>=) 1 AND consumers OPERATOR(pg_catalog.<=) 31),
    CONSTRAINT sources_kafka_config_file CHECK (kafka_config_file OPERATOR(pg_catalog.~) '^/'
                                                AND pg_catalog.length(kafka_config_file) OPERATOR(pg_catalog.<) 1024),
    CONSTRAINT sources_generator_rate CHECK (generator_rate OPERATOR(pg_catalog.>=) -1),
    -- "default" is postgresql.conf's settings; every other source names its own
    CONSTRAINT sources_settings CHECK (CASE WHEN name OPERATOR(pg_catalog.=) 'default'
        THEN brokers IS NULL AND topic IS NULL AND consumers IS NULL AND kafka_config_file IS NULL
             AND generator_rate IS NULL
        ELSE brokers IS NOT NULL AND topic IS NOT NULL AND consumers IS NOT NULL
             AND generator_rate IS NOT NULL END),
    CONSTRAINT sources_feed UNIQUE (brokers, topic),
    CONSTRAINT sources_tenant CHECK (tenant OPERATOR(pg_catalog.~) '^[a-z][a-z0-9_]*$'
                                     AND pg_catalog.length(tenant) OPERATOR(pg_catalog.<=) 40)
);
COMMENT ON TABLE tweetlake.sources IS
    'Kafka feeds: brokers (bootstrap.servers), topic, consumers, kafka_config_file (librdkafka properties, the place for secrets), generator_rate (0 off, -1 flat out), enabled, tenant (whose rows its messages become); "default" is postgresql.conf''s tweetlake.* settings (its columns NULL); change with tweetlake.create_source, alter_source, drop_source';
INSERT INTO tweetlake.sources (name) VALUES ('default');

-- Each row as it is written: the default source takes no settings of its own, a properties
-- file is named only by a role that may have the server read files (the workers read it as
-- the server), updated_at moves.
CREATE FUNCTION tweetlake.sources_check_row() RETURNS trigger
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF TG_OP OPERATOR(pg_catalog.=) 'UPDATE' AND NEW.name OPERATOR(pg_catalog.<>) OLD.name THEN
        RAISE EXCEPTION 'a source cannot be renamed'
            USING ERRCODE = 'feature_not_supported',
                  HINT = 'Create a source of the new name and drop the old one; its offsets are not carried over.';
    END IF;
    IF NEW.name OPERATOR(pg_catalog.=) 'default'
       AND (NEW.brokers, NEW.topic, NEW.consumers, NEW.kafka_config_file, NEW.generator_rate) IS DISTINCT FROM
           (NULL::text, NULL::text, NULL::integer, NULL::text, NULL::integer) THEN
        RAISE EXCEPTION 'the settings of source "default" are postgresql.conf''s'
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Set tweetlake.brokers, tweetlake.topic, tweetlake.consumers, tweetlake.kafka_config_file '
                         'and tweetlake.generator_rate in postgresql.conf and reload; alter_source(''default'', enabled => ...) '
                         'turns it off and on.';
    END IF;
    IF NEW.kafka_config_file IS NOT NULL
       AND (TG_OP OPERATOR(pg_catalog.=) 'INSERT' OR NEW.kafka_config_file IS DISTINCT FROM OLD.kafka_config_file)
       AND NOT pg_catalog.pg_has_role(current_user, 'pg_read_server_files', 'MEMBER') THEN
        RAISE EXCEPTION 'permission denied to name a Kafka properties file'
            USING ERRCODE = 'insufficient_privilege',
                  DETAIL = 'The workers read the file as the server, so naming one takes the rights of pg_read_server_files.',
                  HINT = 'Ask a superuser to set kafka_config_file, or to GRANT pg_read_server_files to this role.';
    END IF;
    NEW.updated_at := pg_catalog.now();
    IF TG_OP OPERATOR(pg_catalog.=) 'INSERT' THEN
        NEW.created_at := NEW.updated_at;
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER sources_check_row BEFORE INSERT OR UPDATE ON tweetlake.sources
    FOR EACH ROW EXECUTE FUNCTION tweetlake.sources_check_row();

-- The background workers every enabled source needs, against what the server has: one
-- launcher, the embedded broker while tweetlake.brokers is empty, and per source its
-- consumers and a generator when its rate is not 0.  The launcher cannot start more than
-- max_worker_processes (less what parallel queries take) nor more than its 96 status slots.
-- In a session that has not loaded the library, the settings' defaults stand in.
CREATE FUNCTION tweetlake.source_workers_needed() RETURNS integer
    LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp
RETURN 1 OPERATOR(pg_catalog.+)
    (CASE WHEN coalesce(pg_catalog.current_setting('tweetlake.brokers', true), '') OPERATOR(pg_catalog.=) '' THEN 1 ELSE 0 END)
    OPERATOR(pg_catalog.+) coalesce((
        SELECT pg_catalog.sum(coalesce(s.consumers,
                                       coalesce(pg_catalog.current_setting('tweetlake.consumers', true), '1')::integer)
                              OPERATOR(pg_catalog.+)
                              CASE WHEN coalesce(s.generator_rate,
                                                 coalesce(pg_catalog.current_setting('tweetlake.generator_rate', true), '1000')::integer)
                                        OPERATOR(pg_catalog.=) 0 THEN 0 ELSE 1 END)
        FROM tweetlake.sources s WHERE s.enabled), 0)::integer;
COMMENT ON FUNCTION tweetlake.source_workers_needed() IS
    'background workers the enabled sources need: the launcher, the embedded broker, each source''s consumers and generator';

CREATE FUNCTION tweetlake.sources_check_limits() RETURNS trigger
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    needed integer := tweetlake.source_workers_needed();
    have integer := pg_catalog.current_setting('max_worker_processes')::integer;
BEGIN
    IF needed OPERATOR(pg_catalog.>) have THEN
        RAISE EXCEPTION 'the enabled sources need % background workers, but max_worker_processes is %', needed, have
            USING ERRCODE = 'configuration_limit_exceeded',
                  DETAIL = 'One launcher, the embedded broker while tweetlake.brokers is empty, and for each enabled source its consumers and, if its generator_rate is not 0, a generator.',
                  HINT = 'Raise max_worker_processes (it takes a server restart; parallel queries use these workers too), or give the sources fewer consumers.';
    END IF;
    IF needed OPERATOR(pg_catalog.>) 96 THEN
        RAISE EXCEPTION 'the enabled sources need % background workers, but tweetlake runs at most 96', needed
            USING ERRCODE = 'configuration_limit_exceeded',
                  HINT = 'Give the sources fewer consumers, or disable some.';
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER sources_check_limits AFTER INSERT OR UPDATE ON tweetlake.sources
    FOR EACH STATEMENT EXECUTE FUNCTION tweetlake.sources_check_limits();

-- "default" stays: it is postgresql.conf's settings.  (A dropped source's offsets go with it,
-- by the foreign key of tweetlake.offsets.source.)
CREATE FUNCTION tweetlake.sources_keep_default() RETURNS trigger
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF OLD.name OPERATOR(pg_catalog.=) 'default' THEN
        RAISE EXCEPTION 'source "default" cannot be dropped'
            USING ERRCODE = 'feature_not_supported',
                  HINT = 'SELECT tweetlake.alter_source(''default'', enabled => false) stops it.';
    END IF;
    RETURN OLD;
END
$$;
CREATE TRIGGER sources_keep_default BEFORE DELETE ON tweetlake.sources
    FOR EACH ROW EXECUTE FUNCTION tweetlake.sources_keep_default();

CREATE FUNCTION tweetlake.create_source(name text, brokers text, topic text DEFAULT 'tweets',
                                        consumers integer DEFAULT 1, kafka_config_file text DEFAULT NULL,
                                        generator_rate integer DEFAULT 0, enabled boolean DEFAULT true,
                                        tenant text DEFAULT 'default')
    RETURNS tweetlake.sources
    LANGUAGE sql SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
    INSERT INTO tweetlake.sources (name, brokers, topic, consumers, kafka_config_file, generator_rate, enabled, tenant)
    VALUES (create_source.name, create_source.brokers, create_source.topic, create_source.consumers,
            create_source.kafka_config_file, create_source.generator_rate, create_source.enabled,
            create_source.tenant)
    RETURNING *;
END;
COMMENT ON FUNCTION tweetlake.create_source(text, text, text, integer, text, integer, boolean, text) IS
    'a new Kafka source; its workers start within seconds when it and the pipeline are enabled';

-- NULL leaves a setting as it is; kafka_config_file => '' removes the file.
CREATE FUNCTION tweetlake.alter_source(name text, brokers text DEFAULT NULL, topic text DEFAULT NULL,
                                       consumers integer DEFAULT NULL, kafka_config_file text DEFAULT NULL,
                                       generator_rate integer DEFAULT NULL, enabled boolean DEFAULT NULL,
                                       tenant text DEFAULT NULL)
    RETURNS tweetlake.sources
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    r tweetlake.sources;
BEGIN
    UPDATE tweetlake.sources s
    SET brokers = coalesce(alter_source.brokers, s.brokers),
        topic = coalesce(alter_source.topic, s.topic),
        consumers = coalesce(alter_source.consumers, s.consumers),
        kafka_config_file = CASE WHEN alter_source.kafka_config_file IS NULL THEN s.kafka_config_file
                                 ELSE NULLIF(alter_source.kafka_config_file, '') END,
        generator_rate = coalesce(alter_source.generator_rate, s.generator_rate),
        enabled = coalesce(alter_source.enabled, s.enabled),
        tenant = coalesce(alter_source.tenant, s.tenant)
    WHERE s.name OPERATOR(pg_catalog.=) alter_source.name
    RETURNING s.* INTO r;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'source "%" does not exist', alter_source.name
            USING ERRCODE = 'undefined_object', HINT = 'SELECT name FROM tweetlake.sources lists them.';
    END IF;
    RETURN r;
END
$$;
COMMENT ON FUNCTION tweetlake.alter_source(text, text, text, integer, text, integer, boolean, text) IS
    'changes a source (NULL: unchanged; kafka_config_file => '''' removes it); its workers restart with the new settings within seconds';

CREATE FUNCTION tweetlake.drop_source(name text) RETURNS void
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    DELETE FROM tweetlake.sources s WHERE s.name OPERATOR(pg_catalog.=) drop_source.name;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'source "%" does not exist', drop_source.name
            USING ERRCODE = 'undefined_object', HINT = 'SELECT name FROM tweetlake.sources lists them.';
    END IF;
END
$$;
COMMENT ON FUNCTION tweetlake.drop_source(text) IS
    'removes a source and its offsets; its workers stop within seconds (its rows in bronze, silver and gold stay)';

REVOKE EXECUTE ON FUNCTION tweetlake.create_source(text, text, text, integer, text, integer, boolean, text),
    tweetlake.alter_source(text, text, text, integer, text, integer, boolean, text),
    tweetlake.drop_source(text) FROM PUBLIC;
/* ------------------------------------------------------------------------
 * Kafka: offsets, workers, status (src/consumer.c, generator_worker.c, launcher.c, status.c)
 * ------------------------------------------------------------------------ */

CREATE TABLE tweetlake.offsets (
    topic       text NOT NULL,
    partition   integer NOT NULL,
    next_offset bigint NOT NULL,
    cluster_id  text,
    updated_at  timestamptz NOT NULL DEFAULT now(),
    source      text NOT NULL DEFAULT 'default' REFERENCES tweetlake.sources ON DELETE CASCADE,
    PRIMARY KEY (source, topic, partition)
);
COMMENT ON TABLE tweetlake.offsets IS
    'next Kafka offset to read per source and partition (-1: from the start), written in the same transaction as the bronze rows it covers';

CREATE FUNCTION tweetlake.worker_status(
        OUT role text, OUT worker integer, OUT pid integer, OUT state text, OUT messages bigint,
        OUT bytes bigint, OUT rate_10s double precision, OUT errors bigint, OUT started_at timestamptz,
        OUT last_error text, OUT last_error_at timestamptz, OUT retries integer,
        OUT stalled_since timestamptz, OUT updates bigint, OUT deletes bigint, OUT stale bigint,
        OUT source text)
    RETURNS SETOF record
    AS 'MODULE_PATHNAME', 'tweetlake_worker_status' LANGUAGE C VOLATILE;

CREATE VIEW tweetlake.status AS
SELECT source, role, worker, pid, state, messages, bytes, rate_10s, errors, started_at, last_error,
       last_error_at, retries, stalled_since, updates, deletes, stale
FROM tweetlake.worker_status();
COMMENT ON VIEW tweetlake.status IS
    'one row per worker: its source (NULL for the launcher and the embedded broker), messages and bytes (produced or consumed), rate over the last 10 s, errors (consumer: dead letters, generator: failed deliveries), last error, while a consumer cannot store its batch: retries so far and stalled_since, and per consumer: updates (messages that replaced a stored version), deletes (tweets deleted) and stale (messages that changed nothing)';

CREATE FUNCTION tweetlake.partition_status(
        OUT topic text, OUT partition integer, OUT consumer integer, OUT next_offset bigint,
        OUT high_watermark bigint, OUT updated_at timestamptz, OUT source text)
    RETURNS SETOF record
    AS 'MODULE_PATHNAME', 'tweetlake_partition_status' LANGUAGE C VOLATILE;

CREATE VIEW tweetlake.consumer_lag AS
SELECT p.source, p.topic, p.partition, p.consumer,
       coalesce(o.next_offset, p.next_offset) AS next_offset,
       p.high_watermark,
       greatest(p.high_watermark - greatest(coalesce(o.next_offset, p.next_offset), 0), 0) AS lag,
       greatest(o.updated_at, p.updated_at) AS updated_at
FROM tweetlake.partition_status() p
LEFT JOIN tweetlake.offsets o ON o.source = p.source AND o.topic = p.topic AND o.partition = p.partition;
COMMENT ON VIEW tweetlake.consumer_lag IS
    'per source and partition: next offset stored in Postgres, the broker''s high watermark, and the lag between them';

CREATE FUNCTION tweetlake.start() RETURNS void
    AS 'MODULE_PATHNAME', 'tweetlake_start' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION tweetlake.start() IS 'run the generator and consumer workers';
CREATE FUNCTION tweetlake.stop() RETURNS void
    AS 'MODULE_PATHNAME', 'tweetlake_stop' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION tweetlake.stop() IS 'stop the generator and consumer workers (each finishes its batch)';

CREATE FUNCTION tweetlake.produce(payload text, key text DEFAULT NULL) RETURNS bigint
    AS 'MODULE_PATHNAME', 'tweetlake_produce' LANGUAGE C VOLATILE CALLED ON NULL INPUT;
COMMENT ON FUNCTION tweetlake.produce(text, text) IS
    'send one message to tweetlake.topic and wait for the broker; returns its offset';

CREATE FUNCTION tweetlake.bootstrap_servers() RETURNS text
    AS 'MODULE_PATHNAME', 'tweetlake_bootstrap_servers' LANGUAGE C STABLE;
COMMENT ON FUNCTION tweetlake.bootstrap_servers() IS
    'bootstrap.servers for outside Kafka clients: tweetlake.brokers, or the embedded broker''s address';

REVOKE EXECUTE ON FUNCTION tweetlake.start(), tweetlake.stop(), tweetlake.produce(text, text),
    tweetlake.rebuild_gold() FROM PUBLIC;

/* ------------------------------------------------------------------------
 * Who may do what (README "Security"), and what pg_dump carries
 *
 *   superuser          creates the extension, owns everything, runs rebuild_gold,
 *                      load_generated, start/stop/produce
 *   tweetlake_worker   the consumers' role: writes bronze and tweetlake.offsets only
 *   tweetlake_loader   INSERT (or COPY) raw messages into bronze.tweets, tweetlake.delete_tweet;
 *                      the trigger does the rest as its owner
 *   tweetlake_reader   dashboards: SELECT on silver, gold and the status views
 *   tweetlake_admin    manages the Kafka sources (create_source, alter_source, drop_source)
 *                      and who reads which tenant (grant_tenant, revoke_tenant)
 *   tweetlake_tenant   what grant_tenant gives a role: SELECT on silver and gold, where
 *                      row-level security shows it the rows of its tenants only
 *
 * The roles are cluster-wide, so they outlive DROP EXTENSION; each is created once.
 * ------------------------------------------------------------------------ */

-- Dead letters counted by minute and kind of reason (the reason without the message's own
-- details, such as byte positions or values), without their payloads.
CREATE VIEW tweetlake.dead_letters_by_minute AS
SELECT date_trunc('minute', failed_at) AS minute,
       regexp_replace(split_part(reason, ':', 1), ' (at byte [0-9]+|\(.*\))$', '') AS reason,
       count(*) AS dead_letters
FROM bronze.dead_letters
GROUP BY 1, 2;
COMMENT ON VIEW tweetlake.dead_letters_by_minute IS
    'dead letters per minute and kind of reason, without payloads (for dashboards)';

-- The role is cluster-wide, so it outlives DROP EXTENSION; it is created once, without
-- LOGIN: give it a password and LOGIN to use it (scripts/superset.sh does).
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'tweetlake_reader') THEN
        CREATE ROLE tweetlake_reader NOLOGIN;
    END IF;
END
$$;
GRANT USAGE ON SCHEMA gold, silver, tweetlake TO tweetlake_reader;
GRANT SELECT ON ALL TABLES IN SCHEMA gold, silver TO tweetlake_reader;
GRANT SELECT ON tweetlake.status, tweetlake.consumer_lag, tweetlake.dead_letters_by_minute
    TO tweetlake_reader;
-- gold.top_users_by_engagement reads the top users' set as its reader (security_invoker)
GRANT SELECT ON tweetlake.top_users, tweetlake.top_users_pending, tweetlake.top_users_floor
    TO tweetlake_reader;
ALTER ROLE tweetlake_reader SET statement_timeout = '60s';
ALTER ROLE tweetlake_reader SET temp_file_limit = '1GB';

-- LOGIN because PostgreSQL 15 lets a background worker connect only as a role that may log
-- in; it has no password, so password and scram authentication never let anyone in as it.
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'tweetlake_worker') THEN
        CREATE ROLE tweetlake_worker LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION;
    END IF;
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'tweetlake_loader') THEN
        CREATE ROLE tweetlake_loader NOLOGIN;
    END IF;
END
$$;
GRANT USAGE ON SCHEMA bronze, tweetlake TO tweetlake_worker, tweetlake_loader;
GRANT INSERT ON bronze.tweets TO tweetlake_worker, tweetlake_loader;
GRANT EXECUTE ON FUNCTION tweetlake.delete_tweet(text, text) TO tweetlake_loader;
GRANT INSERT ON bronze.dead_letters TO tweetlake_worker;
GRANT SELECT, INSERT, UPDATE ON tweetlake.offsets TO tweetlake_worker;
-- a worker of a source reads its settings (kafka_config_file is a path, not the file)
GRANT SELECT ON tweetlake.sources TO tweetlake_worker;

-- The sources' manager: no right on the data, nor on the offsets (a dropped source's go by
-- the foreign key, as the owner).  Naming a properties file takes pg_read_server_files too.
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'tweetlake_admin') THEN
        CREATE ROLE tweetlake_admin NOLOGIN;
    END IF;
END
$$;
GRANT USAGE ON SCHEMA tweetlake TO tweetlake_admin;
GRANT SELECT, INSERT, UPDATE, DELETE ON tweetlake.sources TO tweetlake_admin;
GRANT EXECUTE ON FUNCTION tweetlake.create_source(text, text, text, integer, text, integer, boolean, text),
    tweetlake.alter_source(text, text, text, integer, text, integer, boolean, text),
    tweetlake.drop_source(text) TO tweetlake_admin;
GRANT SELECT ON tweetlake.status, tweetlake.consumer_lag TO tweetlake_admin;

/*
 * Tenants (0.13.0).  Every row of bronze, silver and gold has its tenant.  Row-level security
 * on silver, gold and the top users' set shows each role the rows of the tenants granted to
 * it (tweetlake.tenant_grants: to the role itself or to a role it has the rights of, as
 * pg_has_role(..., 'USAGE') says), and tweetlake_reader every tenant's.  The views are
 * security_invoker, so they show what their reader may see.  Nothing here reads a setting:
 * a session cannot change what it sees but by being another role.  The owner (the
 * superuser who created the extension), the batch trigger (SECURITY DEFINER),
 * rebuild_gold() and verify() see every row.
 */
CREATE TABLE tweetlake.tenant_grants (
    role       regrole NOT NULL,
    tenant     text NOT NULL,
    granted_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (role, tenant)
);
COMMENT ON TABLE tweetlake.tenant_grants IS
    'which role reads which tenant''s rows in silver and gold (tweetlake.grant_tenant, revoke_tenant); each role sees its own grants';
ALTER TABLE tweetlake.tenant_grants ENABLE ROW LEVEL SECURITY;
CREATE POLICY own_grants ON tweetlake.tenant_grants FOR SELECT
    USING (pg_catalog.pg_has_role(role::oid, 'USAGE'));
-- The policies below read it as their reader, whoever that is (each sees its own grants).
GRANT SELECT ON tweetlake.tenant_grants TO PUBLIC;

DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'tweetlake_tenant') THEN
        CREATE ROLE tweetlake_tenant NOLOGIN;
    END IF;
END
$$;
GRANT USAGE ON SCHEMA gold, silver, tweetlake TO tweetlake_tenant;
GRANT SELECT ON ALL TABLES IN SCHEMA gold, silver TO tweetlake_tenant;
GRANT SELECT ON tweetlake.top_users, tweetlake.top_users_pending, tweetlake.top_users_floor
    TO tweetlake_tenant;

DO $$
DECLARE
    t regclass;
BEGIN
    FOR t IN SELECT c.oid::regclass
             FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE c.relkind = 'r' AND n.nspname IN ('silver', 'gold')
             UNION ALL
             SELECT unnest('{tweetlake.top_users, tweetlake.top_users_pending, tweetlake.top_users_floor}'::regclass[])
             ORDER BY 1
    LOOP
        EXECUTE format('ALTER TABLE %s ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('CREATE POLICY tenant_rows ON %s FOR SELECT '
                       'USING (tenant = ANY (ARRAY(SELECT g.tenant FROM tweetlake.tenant_grants g)))', t);
        EXECUTE format('CREATE POLICY all_tenants ON %s FOR SELECT TO tweetlake_reader USING (true)', t);
    END LOOP;
END
$$;

CREATE FUNCTION tweetlake.grant_tenant(role regrole, tenant text) RETURNS void
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF grant_tenant.tenant IS NULL OR grant_tenant.tenant OPERATOR(pg_catalog.!~) '^[a-z][a-z0-9_]*$'
       OR pg_catalog.length(grant_tenant.tenant) OPERATOR(pg_catalog.>) 40 THEN
        RAISE EXCEPTION 'invalid tenant name "%"', grant_tenant.tenant
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'A tenant is named like a source: lower-case letters, digits and _, starting with a letter, at most 40.';
    END IF;
    IF grant_tenant.role IS NULL OR grant_tenant.role::oid OPERATOR(pg_catalog.=) 0 THEN
        RAISE EXCEPTION 'a tenant is granted to a role' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    INSERT INTO tweetlake.tenant_grants (role, tenant)
    VALUES (grant_tenant.role, grant_tenant.tenant)
    ON CONFLICT DO NOTHING;
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_auth_members m
                   WHERE m.roleid OPERATOR(pg_catalog.=) 'tweetlake_tenant'::pg_catalog.regrole
                     AND m.member OPERATOR(pg_catalog.=) grant_tenant.role) THEN
        EXECUTE pg_catalog.format('GRANT tweetlake_tenant TO %s', grant_tenant.role);
    END IF;
END
$$;
COMMENT ON FUNCTION tweetlake.grant_tenant(regrole, text) IS
    'let a role read one tenant''s rows of silver and gold (and nothing of another tenant''s, nor bronze)';

CREATE FUNCTION tweetlake.revoke_tenant(role regrole, tenant text) RETURNS boolean
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    DELETE FROM tweetlake.tenant_grants g
    WHERE g.role OPERATOR(pg_catalog.=) revoke_tenant.role AND g.tenant OPERATOR(pg_catalog.=) revoke_tenant.tenant;
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    IF NOT EXISTS (SELECT FROM tweetlake.tenant_grants g WHERE g.role OPERATOR(pg_catalog.=) revoke_tenant.role) THEN
        EXECUTE pg_catalog.format('REVOKE tweetlake_tenant FROM %s', revoke_tenant.role);
    END IF;
    RETURN true;
END
$$;
COMMENT ON FUNCTION tweetlake.revoke_tenant(regrole, text) IS
    'take a tenant back from a role (false: it did not have it); with its last tenant it loses tweetlake_tenant';
REVOKE EXECUTE ON FUNCTION tweetlake.grant_tenant(regrole, text), tweetlake.revoke_tenant(regrole, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION tweetlake.grant_tenant(regrole, text), tweetlake.revoke_tenant(regrole, text)
    TO tweetlake_admin;

-- Every table of user data or pipeline state goes into pg_dump (its rows; the tables
-- themselves come from CREATE EXTENSION).  Restore with the bronze trigger off: README
-- "Backup and restore".
DO $$
DECLARE
    t regclass;
BEGIN
    FOR t IN SELECT c.oid::regclass
             FROM pg_depend d
             JOIN pg_class c ON c.oid = d.objid AND c.relkind = 'r'
             WHERE d.classid = 'pg_class'::regclass AND d.deptype = 'e'
               AND d.refclassid = 'pg_extension'::regclass
               AND d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'tweetlake')
               AND c.oid <> 'tweetlake.top_users_locks'::regclass   -- its rows come with the extension
             ORDER BY c.oid
    LOOP
        PERFORM pg_extension_config_dump(t, CASE WHEN t = 'tweetlake.sources'::regclass
                                                 THEN 'WHERE name <> ''default''' ELSE '' END);
    END LOOP;
END
$$;
