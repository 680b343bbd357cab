/*
 * The questions of superset/dashboard_queries.sql asked of silver.tweets instead of gold: what
 * a dashboard would have to run without the gold tables.  bench/run.sh (P6) times each against
 * its gold twin and checks that both give the same rows.  Same format: a line
 * "-- chart N: <name>" and one SELECT, with the same output columns, order and limit.
 *
 * Groups follow gold's rules (README, "Schema"): hour = tweetlake.utc_hour(created_at), a
 * missing region, language or tweet type counts as 'unknown', hashtags are already
 * de-duplicated per tweet in silver.  "Last 24 hours" is written on created_at, so the BRIN
 * index on it can serve; that equals gold's hour >= date_trunc('hour', now()) - 23 h when the
 * session's time zone is a whole number of hours off UTC.
 *
 * Charts 11 (Ingest rate, tweetlake.status), 12 (Consumer lag by partition,
 * tweetlake.consumer_lag) and 13 (Dead letters over time, bronze.dead_letters) are not here:
 * they read worker state and dead letters, which silver.tweets does not hold.
 */

-- chart 1: Tweet volume by hour
SELECT tweetlake.utc_hour(created_at) AS hour, count(*) AS tweets
FROM silver.tweets
GROUP BY 1
ORDER BY 1;

-- chart 2: Top hashtags
SELECT h.hashtag, count(*) AS tweets
FROM silver.tweets t, unnest(t.hashtags) AS h(hashtag)
GROUP BY h.hashtag
ORDER BY tweets DESC
LIMIT 20;

-- chart 3: Regional activity
SELECT coalesce(region, 'unknown') AS region, count(*) AS tweets
FROM silver.tweets
GROUP BY 1
ORDER BY tweets DESC;

-- chart 4: Sentiment distribution
SELECT sentiment_category, count(*) AS tweets
FROM silver.tweets
WHERE sentiment_category IS NOT NULL
GROUP BY sentiment_category
ORDER BY tweets DESC;

-- chart 5: Top users by engagement
SELECT user_id, max(username) AS username, sum(total_engagement) AS total_engagement,
       count(*) AS tweets_count, max(followers_count) AS followers_count
FROM silver.tweets
WHERE user_id IS NOT NULL
GROUP BY user_id
ORDER BY total_engagement DESC
LIMIT 50;

-- chart 6: Engagement by user influence
SELECT tweetlake.influence_level(followers_count) AS influence_level,
       sum(total_engagement)::float8 / nullif(count(*), 0) AS avg_engagement_per_tweet
FROM silver.tweets
GROUP BY 1
ORDER BY avg_engagement_per_tweet DESC;

-- chart 7: Tweet type distribution
SELECT coalesce(tweet_type, 'unknown') AS tweet_type, count(*) AS tweets
FROM silver.tweets
GROUP BY 1
ORDER BY tweets DESC;

-- chart 8: Trending hashtags (24 h)
SELECT h.hashtag, count(*) AS tweets
FROM silver.tweets t, unnest(t.hashtags) AS h(hashtag)
WHERE t.created_at >= date_trunc('hour', now()) - interval '23 hours'
GROUP BY h.hashtag
ORDER BY tweets DESC
LIMIT 20;

-- chart 9: Language performance
SELECT coalesce(language, 'unknown') AS language, count(*) AS tweets,
       sum(total_engagement)::float8 / nullif(count(*), 0) AS avg_engagement_per_tweet,
       sum(text_length)::float8 / nullif(count(*), 0) AS avg_text_length
FROM silver.tweets
GROUP BY 1
ORDER BY tweets DESC;

-- chart 10: Hourly trending hashtags
WITH recent AS (
    SELECT tweetlake.utc_hour(t.created_at) AS hour, h.hashtag, t.total_engagement
    FROM silver.tweets t, unnest(t.hashtags) AS h(hashtag)
    WHERE t.created_at >= date_trunc('hour', now()) - interval '23 hours'
), trending AS (
    SELECT hashtag,
           rank() OVER (ORDER BY count(*) DESC, sum(total_engagement) DESC) AS trend_rank
    FROM recent
    GROUP BY hashtag
)
SELECT r.hour, r.hashtag, count(*) AS tweets
FROM recent r
JOIN (SELECT hashtag FROM trending ORDER BY trend_rank, hashtag LIMIT 15) t USING (hashtag)
GROUP BY r.hour, r.hashtag
ORDER BY r.hour, tweets DESC;
