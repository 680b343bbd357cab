/*
 * tweetlake 0.5.0 -> 0.6.0 (CHANGELOG.md): bronze retention by day partitions.
 *   - bronze.tweets (by ingested_at) and bronze.dead_letters (by failed_at) become tables
 *     partitioned by UTC day, each with a default partition.  The existing tables are not
 *     rewritten: each becomes one partition of the new table, named *_before_partitioning,
 *     holding every row up to the end of today (UTC); the launcher makes the day partitions
 *     from tomorrow on.  Retention drops that partition as a whole once its last day has
 *     expired.  It is no longer part of the extension, so pg_dump writes its definition and
 *     rows like those of the day partitions.
 *   - tweetlake.partition_ranges, tweetlake.bronze_partitions, tweetlake.bronze_retention(),
 *     tweetlake.maintain_partitions()
 * Each definition here is the same text as in schema/sources/, which a fresh install is
 * built from; t/050_upgrade.pl checks that both give the same schema.
 */
\echo Use "ALTER EXTENSION tweetlake UPDATE TO '0.6.0'" to load this file. \quit

SET LOCAL search_path = pg_catalog, pg_temp;
-- The consumers may be writing a batch (bronze, then silver and gold) while the tables are
-- swapped below; should the two wait on each other, the consumer gives way (it reads its
-- batch again), not the update.
SET LOCAL deadlock_timeout = '60s';

-- In the order a batch takes them, so that a consumer's batch finishes first or waits.
LOCK TABLE bronze.tweets, bronze.dead_letters IN ACCESS EXCLUSIVE MODE;

DROP TRIGGER process_batch ON bronze.tweets;
ALTER TABLE bronze.tweets RENAME TO tweets_before_partitioning;
ALTER TABLE bronze.dead_letters RENAME TO dead_letters_before_partitioning;
ALTER EXTENSION tweetlake DROP TABLE bronze.tweets_before_partitioning;
ALTER EXTENSION tweetlake DROP TABLE bronze.dead_letters_before_partitioning;
-- Rows get there through the partitioned tables only.
REVOKE ALL ON bronze.tweets_before_partitioning FROM tweetlake_worker, tweetlake_loader;
REVOKE ALL ON bronze.dead_letters_before_partitioning FROM tweetlake_worker;

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
) PARTITION BY RANGE (ingested_at);
COMMENT ON TABLE bronze.tweets IS
    'every message as received; INSERT (raw) or COPY raw lines here to backfill - triggers do the rest';
COMMENT ON COLUMN bronze.tweets.raw IS
    'the message text exactly as received; NULL for a tombstone (a deletion, see kafka_key)';
COMMENT ON COLUMN bronze.tweets.kafka_key IS
    'a tombstone''s key, the tweet_id it deletes (raw is NULL); NULL for every other message';
COMMENT ON COLUMN bronze.tweets.kafka_topic IS 'NULL when loaded from SQL';
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
    failed_at       timestamptz NOT NULL DEFAULT now()
) PARTITION BY RANGE (failed_at);
COMMENT ON TABLE bronze.dead_letters IS
    'messages that could not become silver; raw holds their exact bytes (convert_from(raw, ''UTF8'') to read)';
CREATE TABLE bronze.dead_letters_default PARTITION OF bronze.dead_letters DEFAULT;
COMMENT ON TABLE bronze.dead_letters_default IS
    'bronze.dead_letters rows that no day partition holds (see tweetlake.bronze_partitions)';

-- The old tables hold everything up to the end of the later of today and their newest row
-- (UTC); ATTACH checks that (one scan of each).
DO $$
DECLARE
    t record;
    bound timestamptz;
BEGIN
    FOR t IN SELECT * FROM (VALUES ('tweets', 'ingested_at'), ('dead_letters', 'failed_at')) AS x(name, col)
    LOOP
        EXECUTE format('SELECT ((GREATEST(pg_catalog.now(), max(%I)) AT TIME ZONE ''UTC'')::date + 1)::timestamp
                               AT TIME ZONE ''UTC'' FROM bronze.%I', t.col, t.name || '_before_partitioning')
            INTO bound;
        EXECUTE format('ALTER TABLE bronze.%I ATTACH PARTITION bronze.%I FOR VALUES FROM (MINVALUE) TO (%L)',
                       t.name, t.name || '_before_partitioning', bound);
    END LOOP;
END
$$;

CREATE TRIGGER process_batch
    AFTER INSERT ON bronze.tweets
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION tweetlake.process_bronze_batch();

GRANT INSERT ON bronze.tweets TO tweetlake_worker, tweetlake_loader;
GRANT INSERT ON bronze.dead_letters TO tweetlake_worker;
SELECT pg_catalog.pg_extension_config_dump('bronze.tweets_default', '');
SELECT pg_catalog.pg_extension_config_dump('bronze.dead_letters_default', '');

-- The view read the old table: the same definition, now over the partitioned one.
CREATE OR REPLACE VIEW tweetlake.dead_letters_by_minute AS
SELECT date_trunc('minute', failed_at) AS minute,
       regexp_replace(split_part(reason, ':', 1), ' (at byte [0-9]+|\(.*\))$', '') AS reason,
       count(*) AS dead_letters
FROM bronze.dead_letters
GROUP BY 1, 2;

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
