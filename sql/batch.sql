-- The batch trigger keeps its statements' plans per backend, one per batch size class:
-- batches of every size in one session, one session across DROP/CREATE EXTENSION, a batch
-- mixing new rows, rows silver already has and rejected ones, and one larger than a chunk
-- with duplicates across chunks, each checked against a full recompute.
CREATE EXTENSION tweetlake;

-- one row, a few rows, hundreds, thousands, then small again: every class, each reused
SET tweetlake.batch_size = 1;
SELECT tweetlake.load_generated(3, 1, '2026-01-01 00:00+00', '1 hour') AS loaded;
SET tweetlake.batch_size = 20;
SELECT tweetlake.load_generated(60, 2, '2026-01-01 00:00+00', '1 hour') AS loaded;
SET tweetlake.batch_size = 300;
SELECT tweetlake.load_generated(900, 3, '2026-01-01 00:00+00', '1 hour') AS loaded;
SET tweetlake.batch_size = 5000;
SELECT tweetlake.load_generated(10000, 4, '2026-01-01 00:00+00', '1 hour') AS loaded;
SET tweetlake.batch_size = 1;
SELECT tweetlake.load_generated(3, 5, '2026-01-01 00:00+00', '1 hour') AS loaded;
SELECT count(*) AS silver FROM silver.tweets;
SELECT hour AT TIME ZONE 'UTC' AS hour_utc, total_tweets FROM gold.hourly_activity_summary ORDER BY hour;
SELECT gold_table, missing, extra, differing FROM tweetlake.verify();

-- one batch: 5 new tweets, the 3 of the last load again (same ids, other text: updates, no
-- count went down), a rejected message and a new tweet twice; silver takes the later
-- versions, and gold counts each tweet once
INSERT INTO bronze.tweets (raw)
SELECT t FROM tweetlake.generate_tweets(5, 6, '2026-01-01 00:00+00', '1 hour') t
UNION ALL
SELECT replace(t, '"text":"', '"text":"CHANGED ') FROM tweetlake.generate_tweets(3, 5, '2026-01-01 00:00+00', '1 hour') t
UNION ALL
SELECT '{"tweet_id":"bad-1"}'
UNION ALL
SELECT '{"tweet_id":"twice","text":"first #once","created_at":"2026-01-01T00:30:00Z","hashtags":["#once"],"user":{"user_id":"u-twice"}}'
UNION ALL
SELECT '{"tweet_id":"twice","text":"second #once","created_at":"2026-01-01T00:30:00Z","hashtags":["#once"],"user":{"user_id":"u-twice"}}';
SELECT count(*) AS silver, count(*) FILTER (WHERE text LIKE 'CHANGED%') AS changed_texts,
       (SELECT text FROM silver.tweets WHERE tweet_id = 'twice') AS twice_text
FROM silver.tweets;
SELECT hour AT TIME ZONE 'UTC' AS hour_utc, total_tweets FROM gold.hourly_activity_summary ORDER BY hour;
SELECT tweet_count, unique_users FROM gold.popular_hashtags_by_hour WHERE hashtag = 'once';
SELECT reason FROM bronze.dead_letters;
SELECT gold_table, missing, extra, differing FROM tweetlake.verify();

-- one statement of 24,000 rows is taken in chunks of 5,000; its second 12,000 repeat the
-- first (with another text) across the chunk boundaries: each later version replaces the
-- earlier one, in silver and in gold
INSERT INTO bronze.tweets (raw)
SELECT t FROM tweetlake.generate_tweets(12000, 9, '2026-01-01 00:00+00', '1 hour') t
UNION ALL
SELECT replace(t, '"text":"', '"text":"CHANGED ') FROM tweetlake.generate_tweets(12000, 9, '2026-01-01 00:00+00', '1 hour') t;
SELECT count(*) AS silver, count(*) FILTER (WHERE text LIKE 'CHANGED%') AS changed_texts FROM silver.tweets;
SELECT hour AT TIME ZONE 'UTC' AS hour_utc, total_tweets FROM gold.hourly_activity_summary ORDER BY hour;
SELECT gold_table, missing, extra, differing FROM tweetlake.verify();

-- the extension dropped and created again in the same session: the kept plans are made anew
DROP EXTENSION tweetlake CASCADE;
CREATE EXTENSION tweetlake;
SET tweetlake.batch_size = 1;
SELECT tweetlake.load_generated(2, 7, '2026-01-01 00:00+00', '1 hour') AS loaded;
SET tweetlake.batch_size = 5000;
SELECT tweetlake.load_generated(5000, 8, '2026-01-01 00:00+00', '1 hour') AS loaded;
SELECT count(*) AS silver FROM silver.tweets;
SELECT gold_table, missing, extra, differing FROM tweetlake.verify();
DROP EXTENSION tweetlake CASCADE;
