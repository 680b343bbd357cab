-- gold.top_users_by_engagement: the head of the ranking of users by total engagement, kept
-- by the batch (tweetlake.top_users, the members; tweetlake.top_users_pending, users a batch
-- could not add; tweetlake.top_users_floor, the floor under them) instead of an index on
-- gold.user_engagement (total_engagement).
CREATE EXTENSION tweetlake;
SET client_min_messages = warning;

-- The ranking itself, for comparison: what sorting every user gives.
CREATE TEMP VIEW head AS
SELECT user_id, total_engagement FROM gold.user_engagement
ORDER BY total_engagement DESC, user_id LIMIT 100;
CREATE TEMP VIEW top_state AS
SELECT (SELECT array_agg(user_id) FROM gold.top_users_by_engagement)
         = (SELECT array_agg(user_id) FROM head) AS view_is_head,
       (SELECT count(*) FROM gold.top_users_by_engagement) AS shown,
       (SELECT count(*) FROM gold.user_engagement u
        WHERE u.user_id NOT IN (SELECT user_id FROM tweetlake.top_users UNION ALL
                                SELECT user_id FROM tweetlake.top_users_pending
                                WHERE user_id IS NOT NULL)
          AND u.total_engagement > ALL (SELECT floor FROM tweetlake.top_users_floor
                                        WHERE floor IS NOT NULL)) AS above_floor_outside,
       (SELECT members FROM tweetlake.top_users_floor)
         = (SELECT count(*) FROM tweetlake.top_users) AS members_counted,
       (SELECT count(*) FROM tweetlake.top_users_pending) AS pending,
       (SELECT count(*) FROM tweetlake.top_users t
        LEFT JOIN gold.user_engagement u USING (user_id)
        WHERE t.user_id NOT IN (SELECT user_id FROM tweetlake.top_users_pending
                                WHERE user_id IS NOT NULL)
          AND (t.username, t.tweets_count, t.followers_count, t.total_engagement,
               t.first_day, t.last_day)
              IS DISTINCT FROM (u.username, u.tweets_count, u.followers_count,
                                u.total_engagement, u.first_day, u.last_day)) AS stale_copies;

-- Few users: no floor, every user a member.
SELECT tweetlake.load_generated(50, 11);
SELECT floor IS NULL AS no_floor, members = (SELECT count(*) FROM gold.user_engagement) AS all_members
FROM tweetlake.top_users_floor;
SELECT * FROM top_state;

-- Thousands of users: past 400 members the set is cut to the best 200 and a floor set.
SELECT tweetlake.load_generated(20000, 11);
SELECT floor IS NOT NULL AS has_floor, members BETWEEN 200 AND 400 AS members_bounded,
       (SELECT count(*) FROM gold.user_engagement) > 1000 AS many_users
FROM tweetlake.top_users_floor;
SELECT * FROM top_state;
SELECT gold_table, missing, extra, differing FROM tweetlake.verify()
WHERE gold_table = 'top_users_by_engagement';

-- A user from the bottom rises to the top with one tweet: the batch makes it a member.
CREATE TEMP TABLE low AS
SELECT user_id FROM gold.user_engagement ORDER BY total_engagement, user_id LIMIT 1;
SELECT user_id IN (SELECT user_id FROM tweetlake.top_users) AS low_was_member FROM low;
INSERT INTO bronze.tweets (raw)
SELECT jsonb_set(jsonb_set(jsonb_set(t.raw::jsonb, '{tweet_id}', '"riser-1"'),
                 '{user,user_id}', to_jsonb(l.user_id)), '{like_count}', '100000000')::text
FROM bronze.tweets t, low l LIMIT 1;
SELECT g.user_id = l.user_id AS riser_first, g.total_engagement >= 100000000 AS riser_total
FROM (SELECT * FROM gold.top_users_by_engagement LIMIT 1) g, low l;
SELECT * FROM top_state;

-- The best users' tweets deleted in one batch, all of the members above the floor but the 50
-- lowest: fewer than 100 members are left above it, and the batch loads the set again from
-- gold.user_engagement (the floor comes down).
CREATE TEMP TABLE floor_before AS SELECT floor FROM tweetlake.top_users_floor;
CREATE TEMP TABLE gone AS
SELECT u.user_id FROM gold.user_engagement u JOIN tweetlake.top_users USING (user_id)
WHERE u.total_engagement > (SELECT floor FROM tweetlake.top_users_floor)
ORDER BY u.total_engagement DESC, u.user_id
LIMIT (SELECT count(*) - 50 FROM gold.user_engagement u JOIN tweetlake.top_users USING (user_id)
       WHERE u.total_engagement > (SELECT floor FROM tweetlake.top_users_floor));
SELECT count(*) > 100 AS many_gone FROM gone;
INSERT INTO bronze.tweets (raw, kafka_key)
SELECT NULL, s.tweet_id FROM silver.tweets s WHERE s.user_id IN (SELECT user_id FROM gone);
SELECT count(*) AS gone_still_shown FROM gold.top_users_by_engagement
WHERE user_id IN (SELECT user_id FROM gone);
SELECT f.floor < b.floor AS floor_lowered, f.members BETWEEN 200 AND 400 AS members_bounded
FROM tweetlake.top_users_floor f, floor_before b;
SELECT * FROM top_state;

-- Engagement taken back by updates: the best tweet of each of the 30 best users comes again
-- under another account (a new version: nothing went down, the user changed), 10 users a
-- batch; those users lose that tweet's engagement, the new accounts gain it.
CREATE TEMP TABLE moved AS
SELECT DISTINCT ON (s.user_id) s.tweet_id, s.user_id, s.total_engagement
FROM silver.tweets s
WHERE s.user_id IN (SELECT user_id FROM head ORDER BY total_engagement DESC, user_id LIMIT 30)
ORDER BY s.user_id, s.total_engagement DESC, s.tweet_id;
CREATE TEMP TABLE before_move AS SELECT user_id, total_engagement FROM gold.user_engagement
WHERE user_id IN (SELECT user_id FROM moved);
DO $$
DECLARE
    i int;
BEGIN
    FOR i IN 0..2 LOOP
        INSERT INTO bronze.tweets (raw, kafka_key)
        SELECT jsonb_set(b.raw::jsonb, '{user,user_id}', to_jsonb('moved-' || l.user_id))::text,
               l.tweet_id
        FROM (SELECT *, row_number() OVER (ORDER BY user_id) AS k FROM moved) l
        JOIN bronze.tweets b ON b.raw::jsonb ->> 'tweet_id' = l.tweet_id
        WHERE (l.k - 1) / 10 = i;
    END LOOP;
END
$$;
-- (a user whose only tweet it was is no longer in gold.user_engagement)
SELECT count(*) AS users_lowered FROM before_move b JOIN moved m USING (user_id)
LEFT JOIN gold.user_engagement u USING (user_id)
WHERE coalesce(u.total_engagement, 0) = b.total_engagement - m.total_engagement;
SELECT count(*) AS moved_accounts_shown FROM gold.top_users_by_engagement
WHERE user_id LIKE 'moved-%';
SELECT * FROM top_state;

-- A batch that finds the set held by another transaction writes its users above the floor
-- to tweetlake.top_users_pending (t/017_concurrent_load.pl does it with two sessions; here the
-- best member is made pending by hand).  The view reads the pending users too; the next batch
-- to hold the set moves them into the members.
CREATE TEMP TABLE best AS SELECT user_id FROM head LIMIT 1;
DELETE FROM tweetlake.top_users WHERE user_id = (SELECT user_id FROM best);
UPDATE tweetlake.top_users_floor SET members = members - 1;
INSERT INTO tweetlake.top_users_pending SELECT user_id, false FROM best;
SELECT (SELECT user_id FROM gold.top_users_by_engagement LIMIT 1) = user_id AS pending_best_shown
FROM best;
SELECT * FROM top_state;
SELECT tweetlake.load_generated(10, 12);
SELECT user_id IN (SELECT user_id FROM tweetlake.top_users) AS best_member_again FROM best;
SELECT * FROM top_state;

-- Fewer than 100 users above the floor among the members (here all but 10 are dropped by
-- hand): the view sorts gold.user_engagement itself, and stays exact.
DELETE FROM tweetlake.top_users
WHERE user_id NOT IN (SELECT user_id FROM head ORDER BY total_engagement DESC, user_id LIMIT 10);
UPDATE tweetlake.top_users_floor SET members = 10;
SELECT * FROM top_state;
-- A batch that could not load the set again (a batch that had read the floor was still
-- running) leaves a row without a user: the next batch to hold the set checks the count and
-- loads it.
INSERT INTO tweetlake.top_users_pending VALUES (NULL, true);
SELECT tweetlake.load_generated(10, 13);
SELECT members BETWEEN 200 AND 400 AS members_bounded FROM tweetlake.top_users_floor;
SELECT * FROM top_state;

-- The batch that keeps the set holds a row lock of tweetlake.top_users_locks, taken without
-- waiting; no other role may take one (it needs UPDATE on the table), so no session can keep
-- the batches from the set.
SET ROLE tweetlake_reader;
SELECT FROM tweetlake.top_users_locks WHERE id = 1 FOR UPDATE SKIP LOCKED;
RESET ROLE;
SET ROLE tweetlake_loader;
SELECT FROM tweetlake.top_users_locks WHERE id = 1 FOR UPDATE SKIP LOCKED;
RESET ROLE;
SELECT id FROM tweetlake.top_users_locks ORDER BY id;

-- rebuild_gold() loads the members and the floor from their recompute views.
SELECT tweetlake.rebuild_gold();
SELECT * FROM top_state;
SELECT gold_table, missing, extra, differing FROM tweetlake.verify()
WHERE gold_table IN ('user_engagement', 'top_users_by_engagement') ORDER BY 1;

DROP VIEW top_state, head;
DROP EXTENSION tweetlake;
