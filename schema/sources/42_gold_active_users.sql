/* ------------------------------------------------------------------------
 * gold.active_users_by_day: each user per day
 * ------------------------------------------------------------------------ */

-- fillfactor 70: room for the next version of a row updated by a later batch of the day (HOT).
CREATE TABLE gold.active_users_by_day (
    day              date NOT NULL,
    user_id          text NOT NULL,
    username         text,
    tweets_count     bigint NOT NULL,
    followers_count  integer,
    total_engagement bigint NOT NULL,
    avg_sentiment    double precision,
    sentiment_sum    numeric NOT NULL,
    sentiment_n      bigint NOT NULL,
    tenant           text NOT NULL DEFAULT 'default',
    PRIMARY KEY (day, user_id, tenant)
) WITH (fillfactor = 70);
COMMENT ON COLUMN gold.active_users_by_day.followers_count IS 'largest followers_count seen that day';

CREATE VIEW tweetlake.recompute_active_users_by_day AS
SELECT day, user_id, max(username) AS username, count(*) AS tweets_count,
       max(followers_count) AS followers_count,
       sum(total_engagement)::bigint AS total_engagement,
       tweetlake.exact_avg(coalesce(sum(sentiment_score::numeric), 0), count(sentiment_score)) AS avg_sentiment,
       coalesce(sum(sentiment_score::numeric), 0) AS sentiment_sum,
       count(sentiment_score) AS sentiment_n,
       tenant
FROM tweetlake.silver_facts
WHERE user_id IS NOT NULL
GROUP BY tenant, day, user_id;

CREATE VIEW gold.active_users_view WITH (security_invoker = true) AS
SELECT day, user_id, username, tweets_count, followers_count, total_engagement, avg_sentiment,
       rank() OVER (PARTITION BY tenant, day ORDER BY tweets_count DESC, total_engagement DESC) AS rank_in_day,
       tenant
FROM gold.active_users_by_day;

