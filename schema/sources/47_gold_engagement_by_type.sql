/* ------------------------------------------------------------------------
 * gold.engagement_by_type_hour: tweet types by the author's influence level
 * ------------------------------------------------------------------------ */

CREATE TABLE gold.engagement_by_type_hour (
    hour             timestamptz NOT NULL,
    tweet_type       text NOT NULL,
    influence_level  text NOT NULL,
    tweet_count      bigint NOT NULL,
    total_engagement bigint NOT NULL,
    avg_engagement   double precision NOT NULL,
    viral_count      bigint NOT NULL,
    avg_sentiment    double precision,
    sentiment_sum    numeric NOT NULL,
    sentiment_n      bigint NOT NULL,
    tenant           text NOT NULL DEFAULT 'default',
    PRIMARY KEY (hour, tweet_type, influence_level, tenant)
);
COMMENT ON COLUMN gold.engagement_by_type_hour.influence_level IS
    'tweetlake.influence_level(followers_count): High >= 100k followers, Medium >= 10k, else Low';
COMMENT ON COLUMN gold.engagement_by_type_hour.viral_count IS
    'tweets with total engagement above 1000 (engagement_level Viral)';

CREATE VIEW tweetlake.recompute_engagement_by_type_hour AS
SELECT hour, tweet_type, influence_level, count(*) AS tweet_count,
       sum(total_engagement)::bigint AS total_engagement,
       sum(total_engagement)::double precision / count(*) AS avg_engagement,
       count(*) FILTER (WHERE total_engagement > 1000) AS viral_count,
       tweetlake.exact_avg(coalesce(sum(sentiment_score::numeric), 0), count(sentiment_score)) AS avg_sentiment,
       coalesce(sum(sentiment_score::numeric), 0) AS sentiment_sum,
       count(sentiment_score) AS sentiment_n,
       tenant
FROM tweetlake.silver_facts
GROUP BY tenant, hour, tweet_type, influence_level;

