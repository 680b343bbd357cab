-- The incremental path equals a full recompute, batch after batch, and a duplicate
-- tweet_id is never counted twice.
CREATE EXTENSION tweetlake;
SET tweetlake.batch_size = 7000;

-- 100,000 generated tweets in 15 batches.
SELECT tweetlake.load_generated(100000, 11) AS loaded;
SELECT count(*) AS bronze, (SELECT count(*) FROM silver.tweets) AS silver,
       (SELECT count(*) FROM bronze.dead_letters) AS dead FROM bronze.tweets;
SELECT gold_table, gold_rows > 0 AS has_rows, missing, extra, differing FROM tweetlake.verify();

-- Another stream into the same days adds to existing gold rows (and moves hourly tops).
SELECT tweetlake.load_generated(20000, 12, '2026-01-03 00:00+00', '1 day') AS loaded;
SELECT gold_table, missing, extra, differing FROM tweetlake.verify();

-- The same stream again: bronze keeps every message, silver and gold do not change.
CREATE TEMP TABLE summary_before AS SELECT * FROM gold.hourly_activity_summary;
CREATE TEMP TABLE tags_before AS SELECT * FROM gold.popular_hashtags_by_hour;
SELECT tweetlake.load_generated(20000, 12, '2026-01-03 00:00+00', '1 day') AS loaded_again;
SELECT count(*) AS bronze, (SELECT count(*) FROM silver.tweets) AS silver FROM bronze.tweets;
SELECT (SELECT count(*) FROM (SELECT * FROM summary_before EXCEPT SELECT * FROM gold.hourly_activity_summary) a) +
       (SELECT count(*) FROM (SELECT * FROM tags_before EXCEPT SELECT * FROM gold.popular_hashtags_by_hour) b)
       AS gold_rows_changed;

-- Duplicates inside one batch (the same message again changes nothing), and a COPY of raw
-- lines where a later copy-1 (another text, no hashtag) replaces the first.
INSERT INTO bronze.tweets (raw)
SELECT t FROM tweetlake.generate_tweets(300, 99) t, generate_series(1, 3);
COPY bronze.tweets (raw) FROM stdin;
{"tweet_id":"copy-1","text":"from a file #Backfill","created_at":"2026-01-05T12:00:00Z","hashtags":["#Backfill"],"user":{"user_id":"9"}}
{"tweet_id":"copy-2","text":"also from a file #backfill","created_at":"2026-01-05T12:30:00Z","hashtags":["#backfill"],"user":{"user_id":"9"}}
{"tweet_id":"copy-1","text":"copy-1 again","created_at":"2026-01-05T12:45:00Z"}
not json at all
\.
SELECT count(*) AS silver FROM silver.tweets;
SELECT hashtag, tweet_count, unique_users FROM gold.popular_hashtags_by_hour WHERE hashtag = 'backfill';
SELECT reason FROM bronze.dead_letters;
SELECT gold_table, missing, extra, differing FROM tweetlake.verify();

-- Gold adds up to silver.
SELECT (SELECT sum(total_tweets) FROM gold.hourly_activity_summary) = (SELECT count(*) FROM silver.tweets) AS summary_counts_silver,
       (SELECT sum(tweet_count) FROM gold.tweet_volume_by_region) = (SELECT count(*) FROM silver.tweets) AS regions_count_silver,
       (SELECT sum(tweets_count) FROM gold.active_users_by_day) = (SELECT count(*) FROM silver.tweets WHERE user_id IS NOT NULL) AS users_count_silver,
       (SELECT sum(tweet_count) FROM gold.popular_hashtags_by_hour) = (SELECT sum(cardinality(hashtags)) FROM silver.tweets) AS tags_count_silver;

-- A rebuild from scratch lands on the same gold.
CREATE TEMP TABLE region_before AS SELECT * FROM gold.tweet_volume_by_region;
SELECT tweetlake.rebuild_gold();
SELECT count(*) AS region_rows_changed_by_rebuild
FROM (SELECT * FROM region_before EXCEPT SELECT * FROM gold.tweet_volume_by_region) d;
SELECT gold_table, missing, extra, differing FROM tweetlake.verify();

-- And the incremental path carries on correctly from rebuilt state.
SELECT tweetlake.load_generated(5000, 13) AS loaded;
SELECT gold_table, missing, extra, differing FROM tweetlake.verify();

DROP EXTENSION tweetlake;
