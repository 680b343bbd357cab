/*
 * tweetlake 0.9.0 -> 0.10.0 (CHANGELOG.md): no batch waits for the top users' set.
 *   - tweetlake.top_users_pending: the users a batch could not add to tweetlake.top_users
 *     because another batch held it (the holder of a row lock of tweetlake.top_users_locks,
 *     taken without waiting, now keeps the set, instead of the holder of the floor row's
 *     lock, which a transaction of several batches kept while it locked more rows of
 *     gold.user_engagement: a deadlock with a consumer).
 *   - gold.top_users_by_engagement reads the members and the pending users, and sorts
 *     gold.user_engagement itself while fewer than 100 of them are above the floor.
 *   - tweetlake.top_users_cut: the 200th best total, which both recompute views of the set
 *     read (instead of a copy of the same subquery each).
 *   - tweetlake.maintain_partitions() makes today's partition only once the writers in
 *     flight are done: one that started before it sent today's rows to the default
 *     partition, and failed once the new partition was attached.
 * Each definition here is the same text as in schema/sources/, which a fresh install is
 * built from; t/050_upgrade.pl checks that both give the same schema.
 */
\echo Use "ALTER EXTENSION tweetlake UPDATE TO '0.10.0'" to load this file. \quit

SET LOCAL search_path = pg_catalog, pg_temp;

-- No key: a batch adds to it without ever waiting on another's row.
CREATE TABLE tweetlake.top_users_pending (
    user_id   text,
    retracted boolean NOT NULL
);
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
SELECT NULL::text AS user_id, false AS retracted
WHERE false;

SELECT pg_extension_config_dump('tweetlake.top_users_pending', '');

-- The 200th best total (NULL: no user).  The set, loaded again, is the users at or above it
-- (the 200 best, and any tied with the 200th; fewer than 200 users: all of them); the floor is
-- the best total below it (NULL: none is).
CREATE VIEW tweetlake.top_users_cut AS
SELECT min(b.total_engagement) AS total_engagement
FROM (SELECT e.total_engagement FROM gold.user_engagement e
      ORDER BY e.total_engagement DESC LIMIT 200) b;
COMMENT ON VIEW tweetlake.top_users_cut IS
    'the 200th best total engagement: where a refill of tweetlake.top_users cuts';

CREATE OR REPLACE VIEW tweetlake.recompute_top_users AS
SELECT u.user_id
FROM gold.user_engagement u, tweetlake.top_users_cut cut
WHERE u.total_engagement >= cut.total_engagement;

CREATE OR REPLACE VIEW tweetlake.recompute_top_users_floor AS
SELECT true AS id,
       (SELECT max(u.total_engagement) FROM gold.user_engagement u, tweetlake.top_users_cut cut
        WHERE u.total_engagement < cut.total_engagement) AS floor,
       (SELECT count(*) FROM gold.user_engagement u, tweetlake.top_users_cut cut
        WHERE u.total_engagement >= cut.total_engagement)::integer AS members;

CREATE OR REPLACE VIEW gold.top_users_by_engagement AS
WITH head AS (
    SELECT u.user_id, u.username, u.tweets_count, u.followers_count, u.total_engagement,
           u.first_day, u.last_day
    FROM gold.user_engagement u
    WHERE u.user_id IN (SELECT t.user_id FROM tweetlake.top_users t
                        UNION ALL
                        SELECT p.user_id FROM tweetlake.top_users_pending p)
      AND u.total_engagement > ALL (SELECT f.floor FROM tweetlake.top_users_floor f WHERE f.floor IS NOT NULL)
    ORDER BY u.total_engagement DESC, u.user_id
    LIMIT 100
), exact AS (
    SELECT (SELECT count(*) FROM head) = 100
           OR NOT EXISTS (SELECT FROM tweetlake.top_users_floor f WHERE f.floor IS NOT NULL) AS yes
)
SELECT h.* FROM head h WHERE (SELECT yes FROM exact)
UNION ALL
(SELECT u.user_id, u.username, u.tweets_count, u.followers_count, u.total_engagement,
        u.first_day, u.last_day
 FROM gold.user_engagement u
 WHERE NOT (SELECT yes FROM exact)
 ORDER BY u.total_engagement DESC, u.user_id
 LIMIT 100)
ORDER BY total_engagement DESC, user_id;

CREATE OR REPLACE FUNCTION tweetlake.maintain_partitions(retention interval DEFAULT tweetlake.bronze_retention(),
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
