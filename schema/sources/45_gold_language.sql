/* ------------------------------------------------------------------------
 * gold.tweet_metrics_by_language: tweets per hour and language
 * ------------------------------------------------------------------------ */

CREATE TABLE gold.tweet_metrics_by_language (
    hour             timestamptz NOT NULL,
    language         text NOT NULL,
    tweet_count      bigint NOT NULL,
    avg_tweet_length double precision NOT NULL,
    avg_sentiment    double precision,
    avg_engagement   double precision NOT NULL,
    unique_users     bigint NOT NULL,
    text_length_sum  bigint NOT NULL,
    total_engagement bigint NOT NULL,
    sentiment_sum    numeric NOT NULL,
    sentiment_n      bigint NOT NULL,
    tenant           text NOT NULL DEFAULT 'default',
    PRIMARY KEY (hour, language, tenant)
);

CREATE VIEW tweetlake.recompute_tweet_metrics_by_language AS
SELECT hour, language, count(*) AS tweet_count,
       sum(text_length)::double precision / count(*) AS avg_tweet_length,
       tweetlake.exact_avg(coalesce(sum(sentiment_score::numeric), 0), count(sentiment_score)) AS avg_sentiment,
       sum(total_engagement)::double precision / count(*) AS avg_engagement,
       count(DISTINCT user_id) AS unique_users,
       sum(text_length)::bigint AS text_length_sum,
       sum(total_engagement)::bigint AS total_engagement,
       coalesce(sum(sentiment_score::numeric), 0) AS sentiment_sum,
       count(sentiment_score) AS sentiment_n,
       tenant
FROM tweetlake.silver_facts
GROUP BY tenant, hour, language;

CREATE VIEW gold.language_metrics_view WITH (security_invoker = true) AS
SELECT hour, language, tweet_count, avg_tweet_length, avg_sentiment, avg_engagement, unique_users,
       rank() OVER (PARTITION BY tenant, hour ORDER BY tweet_count DESC, avg_engagement DESC) AS rank_in_hour,
       tenant
FROM gold.tweet_metrics_by_language;

