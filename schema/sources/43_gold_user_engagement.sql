/* ------------------------------------------------------------------------
 * gold.user_engagement: each user over all time
 * ------------------------------------------------------------------------ */

-- Each user over all time: the "top users" ranking reads one row per user here instead of
-- summing active_users_by_day over every day.
CREATE TABLE gold.user_engagement (
    user_id          text PRIMARY KEY,
    username         text,
    tweets_count     bigint NOT NULL,
    followers_count  integer,
    total_engagement bigint NOT NULL,
    first_day        date NOT NULL,
    last_day         date NOT NULL
);
COMMENT ON TABLE gold.user_engagement IS 'per user over all time: tweets, engagement, largest followers_count, first and last day seen';
-- The top users ("ORDER BY total_engagement DESC LIMIT n") read this index backwards instead of
-- sorting one row per user: a sort of every user is what made that chart the slowest of the
-- dashboard while the consumers ingest (bench/RESULTS.md, 0.7.0).
CREATE INDEX user_engagement_total_engagement ON gold.user_engagement (total_engagement);

CREATE VIEW tweetlake.recompute_user_engagement AS
SELECT user_id, max(username) AS username, count(*) AS tweets_count,
       max(followers_count) AS followers_count,
       sum(total_engagement)::bigint AS total_engagement,
       min(day) AS first_day, max(day) AS last_day
FROM tweetlake.silver_facts
WHERE user_id IS NOT NULL
GROUP BY user_id;

