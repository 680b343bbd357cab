/* ------------------------------------------------------------------------
 * gold.popular_hashtags_by_hour: hashtags per hour
 * ------------------------------------------------------------------------ */

-- fillfactor 50: a batch updates nearly every row of its hour once, and each new version
-- then finds room on its own page (a HOT update, no index entry).
CREATE TABLE gold.popular_hashtags_by_hour (
    hour             timestamptz NOT NULL,
    hashtag          text NOT NULL,
    tweet_count      bigint NOT NULL,
    unique_users     bigint NOT NULL,
    unique_mentions  bigint NOT NULL,
    avg_sentiment    double precision,
    total_engagement bigint NOT NULL,
    avg_engagement   double precision NOT NULL,
    sentiment_sum    numeric NOT NULL,
    sentiment_n      bigint NOT NULL,
    tenant           text NOT NULL DEFAULT 'default',
    PRIMARY KEY (hour, hashtag, tenant)
) WITH (fillfactor = 50);

CREATE VIEW tweetlake.recompute_popular_hashtags_by_hour AS
WITH tags AS (
    SELECT f.tenant, f.hour, h.hashtag, f.user_id, f.mentions, f.sentiment_score, f.total_engagement
    FROM tweetlake.silver_facts f, unnest(f.hashtags) AS h(hashtag)
), mentioned AS (
    SELECT t.tenant, t.hour, t.hashtag, count(DISTINCT m.mention) AS n
    FROM tags t, unnest(t.mentions) AS m(mention)
    GROUP BY t.tenant, t.hour, t.hashtag
)
SELECT t.hour, t.hashtag,
       count(*) AS tweet_count,
       count(DISTINCT t.user_id) AS unique_users,
       coalesce(max(m.n), 0) AS unique_mentions,
       tweetlake.exact_avg(coalesce(sum(t.sentiment_score::numeric), 0), count(t.sentiment_score)) AS avg_sentiment,
       sum(t.total_engagement)::bigint AS total_engagement,
       sum(t.total_engagement)::double precision / count(*) AS avg_engagement,
       coalesce(sum(t.sentiment_score::numeric), 0) AS sentiment_sum,
       count(t.sentiment_score) AS sentiment_n,
       t.tenant
FROM tags t
LEFT JOIN mentioned m USING (tenant, hour, hashtag)
GROUP BY t.tenant, t.hour, t.hashtag;

CREATE VIEW gold.popular_hashtags_view WITH (security_invoker = true) AS
SELECT hour, hashtag, tweet_count, unique_users, unique_mentions, avg_sentiment,
       total_engagement, avg_engagement,
       rank() OVER (PARTITION BY tenant, hour ORDER BY tweet_count DESC, total_engagement DESC) AS rank_in_hour,
       tenant
FROM gold.popular_hashtags_by_hour;

-- Hashtags over the last 24 hours (by created_at), with momentum: the last 6 hours' share
-- against an even spread (1.0 = steady, above = rising).
CREATE VIEW gold.trending_hashtags_view WITH (security_invoker = true) AS
SELECT hashtag,
       sum(tweet_count)::bigint AS tweet_count,
       sum(total_engagement)::bigint AS total_engagement,
       count(*) AS active_hours,
       round(4.0 * coalesce(sum(tweet_count) FILTER (WHERE hour >= date_trunc('hour', now()) - interval '5 hours'), 0)
             / sum(tweet_count), 2) AS momentum,
       rank() OVER (PARTITION BY tenant ORDER BY sum(tweet_count) DESC, sum(total_engagement) DESC) AS trend_rank,
       tenant
FROM gold.popular_hashtags_by_hour
WHERE hour >= date_trunc('hour', now()) - interval '23 hours'
GROUP BY tenant, hashtag;

