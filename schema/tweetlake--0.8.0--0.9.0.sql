/*
 * tweetlake 0.8.0 -> 0.9.0 (CHANGELOG.md): the top users by engagement kept by the batch.
 *   - index gold.user_engagement_total_engagement dropped: it made every update of a user's
 *     total a non-HOT update with two index entries.
 *   - tweetlake.top_users and tweetlake.top_users_floor (the members that hold the top of
 *     the ranking, and the floor under it), loaded here from gold.user_engagement (one read
 *     of it, one row per user); gold.top_users_by_engagement reads them.
 *   - tweetlake.verify() also compares gold.top_users_by_engagement with the head of the
 *     ranking.
 * Each definition here is the same text as in schema/sources/, which a fresh install is
 * built from; t/050_upgrade.pl checks that both give the same schema.
 */
\echo Use "ALTER EXTENSION tweetlake UPDATE TO '0.9.0'" to load this file. \quit

SET LOCAL search_path = pg_catalog, pg_temp;

DROP INDEX gold.user_engagement_total_engagement;

/*
 * The top users by engagement, kept by the batch (0.9.0).  An index on total_engagement
 * would serve "ORDER BY total_engagement DESC LIMIT n", but every batch changes the totals of
 * the users it touches, and an update of an indexed column is never HOT: the index cost a
 * consumer ~8 % of its CPU at a steady rate (bench/RESULTS.md).  Instead:
 *   tweetlake.top_users        a set of users (the members) that holds every user whose
 *                              total is above the floor
 *   tweetlake.top_users_floor  one row (made by the first batch): the floor (NULL or no
 *                              row: every user is a member) and how many members there are
 * so the users above the floor, best first, are the head of the ranking, exactly.  Each
 * batch adds the users it touched whose total is now above the floor, under the floor row's
 * lock (the last thing it does, so concurrent batches queue there in one order); past 400
 * members the 200 best are kept (ties included) and the floor raised to the best total
 * dropped.  A batch that takes engagement back (an update, a deletion) can leave fewer than
 * 100 members above the floor; the set is then refilled from gold.user_engagement.
 */
CREATE TABLE tweetlake.top_users (
    user_id text PRIMARY KEY
);
COMMENT ON TABLE tweetlake.top_users IS
    'users that may rank at the top by total engagement: every user above tweetlake.top_users_floor is one';

CREATE TABLE tweetlake.top_users_floor (
    id      boolean PRIMARY KEY DEFAULT true CHECK (id),
    floor   bigint,
    members integer NOT NULL
);
COMMENT ON TABLE tweetlake.top_users_floor IS
    'one row: no user outside tweetlake.top_users has more total engagement than floor (NULL: every user is in it); members, how many it holds';

-- The 200 best users and any tied with the 200th (fewer than 200 users: all of them); the floor
-- is the best total of the users left out (NULL: none is).
CREATE VIEW tweetlake.recompute_top_users AS
SELECT u.user_id
FROM gold.user_engagement u
WHERE u.total_engagement >= (SELECT min(b.total_engagement)
                             FROM (SELECT e.total_engagement FROM gold.user_engagement e
                                   ORDER BY e.total_engagement DESC LIMIT 200) b);

CREATE VIEW tweetlake.recompute_top_users_floor AS
WITH cut AS (
    SELECT min(b.total_engagement) AS total_engagement
    FROM (SELECT e.total_engagement FROM gold.user_engagement e
          ORDER BY e.total_engagement DESC LIMIT 200) b
)
SELECT true AS id,
       (SELECT max(u.total_engagement) FROM gold.user_engagement u, cut
        WHERE u.total_engagement < cut.total_engagement) AS floor,
       (SELECT count(*) FROM gold.user_engagement u, cut
        WHERE u.total_engagement >= cut.total_engagement)::integer AS members;

CREATE VIEW gold.top_users_by_engagement AS
SELECT u.user_id, u.username, u.tweets_count, u.followers_count, u.total_engagement,
       u.first_day, u.last_day
FROM gold.user_engagement u
WHERE u.user_id IN (SELECT t.user_id FROM tweetlake.top_users t)
  AND u.total_engagement > ALL (SELECT f.floor FROM tweetlake.top_users_floor f WHERE f.floor IS NOT NULL)
ORDER BY u.total_engagement DESC, u.user_id
LIMIT 100;
COMMENT ON VIEW gold.top_users_by_engagement IS
    'the 100 users with the most engagement over all time, best first (ties by user_id): gold.user_engagement''s rows, without sorting every user';

INSERT INTO tweetlake.top_users SELECT * FROM tweetlake.recompute_top_users;
INSERT INTO tweetlake.top_users_floor SELECT * FROM tweetlake.recompute_top_users_floor;
SELECT pg_extension_config_dump('tweetlake.top_users', '');
SELECT pg_extension_config_dump('tweetlake.top_users_floor', '');
GRANT SELECT ON gold.top_users_by_engagement TO tweetlake_reader;

CREATE OR REPLACE FUNCTION tweetlake.verify()
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
    -- The ranking the batch keeps: the head of gold.user_engagement (compared with its
    -- recompute above) sorted, row for row.
    RETURN QUERY EXECUTE format(compare, 'top_users_by_engagement', 'user_id',
        'gold.top_users_by_engagement',
        '(SELECT u.user_id, u.username, u.tweets_count, u.followers_count,
                 u.total_engagement, u.first_day, u.last_day
          FROM gold.user_engagement u
          ORDER BY u.total_engagement DESC, u.user_id LIMIT 100)');
END
$$;
COMMENT ON FUNCTION tweetlake.verify() IS
    'compare each gold table with a full recompute from silver: missing, extra and differing rows (all 0 when correct)';
