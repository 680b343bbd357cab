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
