/* ------------------------------------------------------------------------
 * gold.tweet_volume_by_region: tweets per hour, region and language
 * ------------------------------------------------------------------------ */

CREATE TABLE gold.tweet_volume_by_region (
    hour             timestamptz NOT NULL,
    region           text NOT NULL,
    language         text NOT NULL,
    tweet_count      bigint NOT NULL,
    unique_users     bigint NOT NULL,
    avg_sentiment    double precision,
    positive_count   bigint NOT NULL,
    negative_count   bigint NOT NULL,
    neutral_count    bigint NOT NULL,
    total_engagement bigint NOT NULL,
    sentiment_sum    numeric NOT NULL,
    sentiment_n      bigint NOT NULL,
    tenant           text NOT NULL DEFAULT 'default',
    PRIMARY KEY (hour, region, language, tenant)
);

CREATE VIEW tweetlake.recompute_tweet_volume_by_region AS
SELECT hour, region, language, count(*) AS tweet_count,
       count(DISTINCT user_id) AS unique_users,
       tweetlake.exact_avg(coalesce(sum(sentiment_score::numeric), 0), count(sentiment_score)) AS avg_sentiment,
       count(*) FILTER (WHERE sentiment_category = 'positive') AS positive_count,
       count(*) FILTER (WHERE sentiment_category = 'negative') AS negative_count,
       count(*) FILTER (WHERE sentiment_category = 'neutral') AS neutral_count,
       sum(total_engagement)::bigint AS total_engagement,
       coalesce(sum(sentiment_score::numeric), 0) AS sentiment_sum,
       count(sentiment_score) AS sentiment_n,
       tenant
FROM tweetlake.silver_facts
GROUP BY tenant, hour, region, language;

CREATE VIEW gold.regional_activity_view WITH (security_invoker = true) AS
SELECT hour, region, language, tweet_count, unique_users, avg_sentiment, positive_count,
       negative_count, neutral_count, total_engagement,
       rank() OVER (PARTITION BY tenant, hour ORDER BY tweet_count DESC, total_engagement DESC) AS rank_in_hour,
       tenant
FROM gold.tweet_volume_by_region;

