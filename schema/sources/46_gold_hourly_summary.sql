/* ------------------------------------------------------------------------
 * gold.hourly_activity_summary: each hour, with its top hashtag and region
 * ------------------------------------------------------------------------ */

CREATE TABLE gold.hourly_activity_summary (
    hour              timestamptz NOT NULL,
    total_tweets      bigint NOT NULL,
    unique_users      bigint NOT NULL,
    avg_sentiment     double precision,
    total_engagement  bigint NOT NULL,
    top_hashtag       text,
    top_region        text,
    positive_count    bigint NOT NULL,
    negative_count    bigint NOT NULL,
    neutral_count     bigint NOT NULL,
    sentiment_sum     numeric NOT NULL,
    sentiment_n       bigint NOT NULL,
    top_hashtag_count bigint,
    top_region_count  bigint,
    tenant            text NOT NULL DEFAULT 'default',
    PRIMARY KEY (hour, tenant)
);
COMMENT ON COLUMN gold.hourly_activity_summary.top_hashtag IS
    'hashtag in most tweets that hour (ties: alphabetically first)';
COMMENT ON COLUMN gold.hourly_activity_summary.top_region IS
    'region with most tweets that hour (ties: alphabetically first)';

-- Tweets per region and hour over all languages, for top_region.
CREATE TABLE tweetlake.region_hour_counts (
    hour timestamptz, region text, tweet_count bigint NOT NULL,
    tenant text NOT NULL DEFAULT 'default', PRIMARY KEY (hour, region, tenant));

CREATE VIEW tweetlake.recompute_hourly_activity_summary AS
WITH tag AS (
    SELECT DISTINCT ON (tenant, hour) tenant, hour, hashtag, tweet_count
    FROM tweetlake.recompute_popular_hashtags_by_hour
    ORDER BY tenant, hour, tweet_count DESC, hashtag
), reg AS (
    SELECT DISTINCT ON (tenant, hour) tenant, hour, region, count(*) AS tweet_count
    FROM tweetlake.silver_facts
    GROUP BY tenant, hour, region
    ORDER BY tenant, hour, count(*) DESC, region
)
SELECT f.hour, count(*) AS total_tweets,
       count(DISTINCT f.user_id) AS unique_users,
       tweetlake.exact_avg(coalesce(sum(f.sentiment_score::numeric), 0), count(f.sentiment_score)) AS avg_sentiment,
       sum(f.total_engagement)::bigint AS total_engagement,
       min(tag.hashtag) AS top_hashtag,
       min(reg.region) AS top_region,
       count(*) FILTER (WHERE f.sentiment_category = 'positive') AS positive_count,
       count(*) FILTER (WHERE f.sentiment_category = 'negative') AS negative_count,
       count(*) FILTER (WHERE f.sentiment_category = 'neutral') AS neutral_count,
       coalesce(sum(f.sentiment_score::numeric), 0) AS sentiment_sum,
       count(f.sentiment_score) AS sentiment_n,
       min(tag.tweet_count) AS top_hashtag_count,
       min(reg.tweet_count) AS top_region_count,
       f.tenant
FROM tweetlake.silver_facts f
LEFT JOIN tag USING (tenant, hour)
LEFT JOIN reg USING (tenant, hour)
GROUP BY f.tenant, f.hour;

CREATE VIEW tweetlake.recompute_region_hour_counts AS
SELECT hour, region, count(*) AS tweet_count, tenant FROM tweetlake.silver_facts GROUP BY tenant, hour, region;

-- Sentiment categories per hour as rows (one per category), for pie and stacked charts.
CREATE VIEW gold.sentiment_by_hour_view WITH (security_invoker = true) AS
SELECT h.hour, c.sentiment_category, c.tweet_count, h.tenant
FROM gold.hourly_activity_summary h
CROSS JOIN LATERAL (VALUES ('positive', h.positive_count), ('negative', h.negative_count),
                           ('neutral', h.neutral_count)) AS c(sentiment_category, tweet_count);

