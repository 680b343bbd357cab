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
