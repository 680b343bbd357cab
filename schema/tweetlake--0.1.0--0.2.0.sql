/*
 * tweetlake 0.1.0 -> 0.2.0 (CHANGELOG.md): the hardening release.
 *   - exact_avg cannot underflow; generate_tweets and parse_tweet are no longer PUBLIC
 *   - the batch trigger runs as its owner (a loader needs INSERT on bronze.tweets only);
 *     load_generated runs with a pinned search_path
 *   - rebuild_gold() and verify() read the tables they cover from the catalog
 *     (tweetlake.maintained_tables), with a recompute view for each distinct-count set
 *   - tweetlake.status gains retries and stalled_since
 *   - roles tweetlake_worker (the consumers) and tweetlake_loader; limits for the reader
 *   - pg_dump carries the rows of every table
 * Each definition here is the same text as in schema/sources/, which a fresh install is
 * built from; t/050_upgrade.pl checks that both give the same schema.
 */
\echo Use "ALTER EXTENSION tweetlake UPDATE TO '0.2.0'" to load this file. \quit

SET LOCAL search_path = pg_catalog, pg_temp;

-- Exact average from an exact sum and count (numeric sums make it order-independent),
-- rounded to the nearest double.  A mean too small for a double (sums that nearly cancel)
-- is 0: below 1e-280 the exact quotient is rounded at 300 decimals before the cast, which
-- would otherwise underflow (the test costs nothing measurable; the rounding is for them only).
CREATE OR REPLACE FUNCTION tweetlake.exact_avg(total numeric, n bigint) RETURNS double precision
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

CREATE VIEW tweetlake.recompute_hashtag_users AS
SELECT DISTINCT f.hour, h.hashtag, f.user_id
FROM tweetlake.silver_facts f, unnest(f.hashtags) AS h(hashtag)
WHERE f.user_id IS NOT NULL;

CREATE VIEW tweetlake.recompute_hashtag_mentions AS
SELECT DISTINCT f.hour, h.hashtag, m.mention
FROM tweetlake.silver_facts f, unnest(f.hashtags) AS h(hashtag), unnest(f.mentions) AS m(mention);

CREATE VIEW tweetlake.recompute_region_users AS
SELECT DISTINCT hour, region, language, user_id FROM tweetlake.silver_facts WHERE user_id IS NOT NULL;

CREATE VIEW tweetlake.recompute_language_users AS
SELECT DISTINCT hour, language, user_id FROM tweetlake.silver_facts WHERE user_id IS NOT NULL;

CREATE VIEW tweetlake.recompute_hour_users AS
SELECT DISTINCT hour, user_id FROM tweetlake.silver_facts WHERE user_id IS NOT NULL;

CREATE VIEW tweetlake.recompute_region_hour_counts AS
SELECT hour, region, count(*) AS tweet_count FROM tweetlake.silver_facts GROUP BY hour, region;

ALTER FUNCTION tweetlake.process_bronze_batch() SECURITY DEFINER;
ALTER FUNCTION tweetlake.load_generated(bigint, bigint, timestamptz, interval)
    SET search_path = pg_catalog, pg_temp;

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

CREATE OR REPLACE FUNCTION tweetlake.rebuild_gold() RETURNS void
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

CREATE OR REPLACE FUNCTION tweetlake.verify()
RETURNS TABLE (gold_table text, gold_rows bigint, recomputed_rows bigint,
               missing bigint, extra bigint, differing bigint)
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    t record;
BEGIN
    FOR t IN SELECT * FROM tweetlake.maintained_tables WHERE in_gold ORDER BY table_name::oid
    LOOP
        RETURN QUERY EXECUTE format(
            'SELECT %1$L::text, count(g.k), count(r.k),
                    count(*) FILTER (WHERE g.k IS NULL),
                    count(*) FILTER (WHERE r.k IS NULL),
                    count(*) FILTER (WHERE g.k IS NOT NULL AND r.k IS NOT NULL AND g.v IS DISTINCT FROM r.v)
             FROM (SELECT row(%2$s) AS k, x AS v FROM %3$s x) g
             FULL JOIN (SELECT row(%2$s) AS k, x AS v FROM %4$s x) r ON g.k = r.k',
            (SELECT relname FROM pg_class WHERE oid = t.table_name), t.key_columns,
            t.table_name, t.recompute_view);
    END LOOP;
END
$$;
COMMENT ON FUNCTION tweetlake.verify() IS
    'compare each gold table with a full recompute from silver: missing, extra and differing rows (all 0 when correct)';

-- tweetlake.status gains two columns: the view goes with the function it reads.
DROP VIEW tweetlake.status;
DROP FUNCTION tweetlake.worker_status();
CREATE FUNCTION tweetlake.worker_status(
        OUT role text, OUT worker integer, OUT pid integer, OUT state text, OUT messages bigint,
        OUT bytes bigint, OUT rate_10s double precision, OUT errors bigint, OUT started_at timestamptz,
        OUT last_error text, OUT last_error_at timestamptz, OUT retries integer,
        OUT stalled_since timestamptz)
    RETURNS SETOF record
    AS 'MODULE_PATHNAME', 'tweetlake_worker_status' LANGUAGE C VOLATILE;

CREATE VIEW tweetlake.status AS SELECT * FROM tweetlake.worker_status();
COMMENT ON VIEW tweetlake.status IS
    'one row per worker: messages and bytes (produced or consumed), rate over the last 10 s, errors (consumer: dead letters, generator: failed deliveries), last error, and while a consumer cannot store its batch: retries so far and stalled_since';
GRANT SELECT ON tweetlake.status TO tweetlake_reader;

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
GRANT INSERT ON bronze.dead_letters TO tweetlake_worker;
GRANT SELECT, INSERT, UPDATE ON tweetlake.offsets TO tweetlake_worker;

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
             ORDER BY c.oid
    LOOP
        PERFORM pg_extension_config_dump(t, '');
    END LOOP;
END
$$;
