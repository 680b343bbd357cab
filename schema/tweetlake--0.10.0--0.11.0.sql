/*
 * tweetlake 0.10.0 -> 0.11.0 (CHANGELOG.md): the top users' ranking reads its set, not the
 * busiest rows of gold.user_engagement.
 *   - tweetlake.top_users keeps a copy of each member's row of gold.user_engagement, written
 *     by the batch that holds the set; filled here from the table.
 *   - tweetlake.recompute_top_users gives the copy too (a refill, rebuild_gold()).
 *   - gold.top_users_by_engagement reads the members' copies, and gold.user_engagement only
 *     for the pending users; no plan of it is parallel (its sort of every user is a gated
 *     lateral subquery, the floor one value, the set's tables parallel_workers = 0).
 * Each definition here is the same text as in schema/sources/, which a fresh install is
 * built from; t/050_upgrade.pl checks that both give the same schema.
 */
\echo Use "ALTER EXTENSION tweetlake UPDATE TO '0.11.0'" to load this file. \quit

SET LOCAL search_path = pg_catalog, pg_temp;

-- The set held first, as a batch holds it: a batch that finds it held writes its users to
-- the pending list (which the view reads from gold.user_engagement), and one that gets it
-- after this commits looks the schema up again and writes the copies.  Then the batches
-- that read the members wait for the new columns, filled before any goes on.
SELECT FROM tweetlake.top_users_locks WHERE id OPERATOR(pg_catalog.=) 1 FOR UPDATE;
ALTER TABLE tweetlake.top_users
    ADD COLUMN username         text,
    ADD COLUMN tweets_count     bigint,
    ADD COLUMN followers_count  integer,
    ADD COLUMN total_engagement bigint,
    ADD COLUMN first_day        date,
    ADD COLUMN last_day         date;
UPDATE tweetlake.top_users t
SET (username, tweets_count, followers_count, total_engagement, first_day, last_day) =
    (SELECT u.username, u.tweets_count, u.followers_count, u.total_engagement, u.first_day, u.last_day
     FROM gold.user_engagement u WHERE u.user_id OPERATOR(pg_catalog.=) t.user_id);
ALTER TABLE tweetlake.top_users SET (parallel_workers = 0);
ALTER TABLE tweetlake.top_users_pending SET (parallel_workers = 0);
ALTER TABLE tweetlake.top_users_floor SET (parallel_workers = 0);
COMMENT ON TABLE tweetlake.top_users IS
    'users that may rank at the top by total engagement: every user above tweetlake.top_users_floor is one; each with a copy of its gold.user_engagement row (stale while the user is in tweetlake.top_users_pending)';

CREATE OR REPLACE VIEW tweetlake.recompute_top_users AS
SELECT u.user_id, u.username, u.tweets_count, u.followers_count, u.total_engagement,
       u.first_day, u.last_day
FROM gold.user_engagement u, tweetlake.top_users_cut cut
WHERE u.total_engagement >= cut.total_engagement;

-- No parallel plan: starting workers costs more than this view's work, ~10 ms on a busy
-- server.  The sort of every user, for when fewer than 100 members are above the floor, is a
-- lateral subquery gated by the test: not run otherwise.  As a branch filtered by a
-- subquery's result (0.10.0) it was planned parallel once gold.user_engagement had ~90k
-- users, and each reading launched workers for it even when it returned nothing.  The floor
-- is one value, read once (a set compared with each row, "> ALL", had the planner cost the
-- head for hundreds of floors a row, and plan it parallel until the tables were analysed);
-- and the set's tables are never scanned in parallel (parallel_workers = 0: they are small).
CREATE OR REPLACE VIEW gold.top_users_by_engagement AS
WITH head AS (
    SELECT c.* FROM (
        SELECT t.user_id, t.username, t.tweets_count, t.followers_count, t.total_engagement,
               t.first_day, t.last_day
        FROM tweetlake.top_users t
        WHERE t.total_engagement IS NOT NULL
          AND NOT EXISTS (SELECT FROM tweetlake.top_users_pending p WHERE p.user_id = t.user_id)
        UNION ALL
        SELECT u.user_id, u.username, u.tweets_count, u.followers_count, u.total_engagement,
               u.first_day, u.last_day
        FROM gold.user_engagement u
        WHERE u.user_id IN (SELECT p.user_id FROM tweetlake.top_users_pending p)) c
    WHERE c.total_engagement > (SELECT f.floor FROM tweetlake.top_users_floor f)
       OR (SELECT f.floor FROM tweetlake.top_users_floor f) IS NULL
    ORDER BY c.total_engagement DESC, c.user_id
    LIMIT 100
), exact AS (
    SELECT (SELECT count(*) FROM head) = 100
           OR (SELECT f.floor FROM tweetlake.top_users_floor f) IS NULL AS yes
)
SELECT h.* FROM head h WHERE (SELECT yes FROM exact)
UNION ALL
SELECT s.* FROM exact e, LATERAL (
    SELECT u.user_id, u.username, u.tweets_count, u.followers_count, u.total_engagement,
           u.first_day, u.last_day
    FROM gold.user_engagement u
    WHERE NOT e.yes
    ORDER BY u.total_engagement DESC, u.user_id
    LIMIT 100) s
ORDER BY total_engagement DESC, user_id;
