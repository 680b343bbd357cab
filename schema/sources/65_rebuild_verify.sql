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
