/*
 * The question each chart of superset/bundle asks, in plain SQL: the same tables, grouping,
 * order and limit as the SQL Superset generates for it (see a chart's "View query").  Every
 * one reads gold or a tweetlake status view, never silver or bronze, and runs as
 * tweetlake_reader.  The benchmark times them: each is a line "-- chart N: <name>" and one
 * SELECT.
 */

-- chart 1: Tweet volume by hour
SELECT hour, sum(total_tweets) AS tweets
FROM gold.hourly_activity_summary
GROUP BY hour
ORDER BY hour;

-- chart 2: Top hashtags
SELECT hashtag, sum(tweet_count) AS tweets
FROM gold.popular_hashtags_by_hour
GROUP BY hashtag
ORDER BY tweets DESC
LIMIT 20;

-- chart 3: Regional activity
SELECT region, sum(tweet_count) AS tweets
FROM gold.tweet_volume_by_region
GROUP BY region
ORDER BY tweets DESC;

-- chart 4: Sentiment distribution
SELECT sentiment_category, sum(tweet_count) AS tweets
FROM gold.sentiment_by_hour_view
GROUP BY sentiment_category
ORDER BY tweets DESC;

-- chart 5: Top users by engagement
SELECT user_id, username, total_engagement, tweets_count, followers_count
FROM gold.top_users_by_engagement
ORDER BY total_engagement DESC
LIMIT 50;

-- chart 6: Engagement by user influence
SELECT influence_level,
       sum(total_engagement)::float8 / nullif(sum(tweet_count), 0) AS avg_engagement_per_tweet
FROM gold.engagement_by_type_hour
GROUP BY influence_level
ORDER BY avg_engagement_per_tweet DESC;

-- chart 7: Tweet type distribution
SELECT tweet_type, sum(tweet_count) AS tweets
FROM gold.engagement_by_type_hour
GROUP BY tweet_type
ORDER BY tweets DESC;

-- chart 8: Trending hashtags (24 h)
SELECT hashtag, tweet_count AS tweets
FROM gold.trending_hashtags_view
ORDER BY tweet_count DESC
LIMIT 20;

-- chart 9: Language performance
SELECT language, sum(tweet_count) AS tweets,
       sum(total_engagement)::float8 / nullif(sum(tweet_count), 0) AS avg_engagement_per_tweet,
       sum(text_length_sum)::float8 / nullif(sum(tweet_count), 0) AS avg_text_length
FROM gold.tweet_metrics_by_language
GROUP BY language
ORDER BY tweets DESC;

-- chart 10: Hourly trending hashtags
SELECT p.hour, p.hashtag, p.tweet_count AS tweets
FROM gold.popular_hashtags_by_hour p
JOIN (SELECT hashtag FROM gold.trending_hashtags_view
      ORDER BY trend_rank, hashtag LIMIT 15) t USING (hashtag)
WHERE p.hour >= date_trunc('hour', now()) - interval '23 hours'
ORDER BY p.hour, tweets DESC;

-- chart 11: Ingest rate
SELECT sum(rate_10s) AS messages_per_s
FROM tweetlake.status
WHERE role = 'consumer';

-- chart 12: Consumer lag by partition
SELECT partition, source, sum(lag) AS lag
FROM tweetlake.consumer_lag
GROUP BY partition, source
ORDER BY partition, source;

-- chart 13: Dead letters over time
SELECT minute, reason, sum(dead_letters) AS dead_letters
FROM tweetlake.dead_letters_by_minute
GROUP BY minute, reason
ORDER BY minute, reason;
