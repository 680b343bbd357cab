-- Bronze by day partitions and retention: tweetlake.maintain_partitions() makes today's and
-- tomorrow's partitions, rows land in their day, and expired days are emptied and dropped
-- (default partitions: expired rows deleted) while silver and gold keep every tweet.
CREATE EXTENSION tweetlake;
SET TimeZone = 'America/New_York';   -- the days are UTC days whatever the session's zone

-- A fresh install has the default partitions only.
SELECT table_name, partition, range_from, range_to FROM tweetlake.bronze_partitions;

-- Today and tomorrow (UTC), once: a second run makes nothing.
SELECT count(*) AS created,
       bool_and(action = 'created') AS all_created,
       bool_and(partition IN ('bronze.tweets_p' || to_char(now() AT TIME ZONE 'UTC', 'YYYYMMDD'),
                              'bronze.tweets_p' || to_char(now() AT TIME ZONE 'UTC' + interval '1 day', 'YYYYMMDD'),
                              'bronze.dead_letters_p' || to_char(now() AT TIME ZONE 'UTC', 'YYYYMMDD'),
                              'bronze.dead_letters_p' || to_char(now() AT TIME ZONE 'UTC' + interval '1 day', 'YYYYMMDD')))
           AS named_by_utc_day
FROM tweetlake.maintain_partitions(NULL);
SELECT count(*) AS created_again FROM tweetlake.maintain_partitions(NULL);
SELECT table_name, count(*) AS day_partitions,
       bool_and(range_to - range_from = interval '1 day') AS one_day_each,
       bool_and(range_from AT TIME ZONE 'UTC' = date_trunc('day', range_from AT TIME ZONE 'UTC')) AS from_utc_midnight,
       min(range_from) <= now() AND max(range_to) > now() + interval '1 day' - interval '1 second' AS today_and_tomorrow
FROM tweetlake.bronze_partitions WHERE range_from IS NOT NULL GROUP BY 1 ORDER BY 1;

-- New rows land in today's partition; partition_date is the partition's day.
SELECT tweetlake.load_generated(3000, 5);
INSERT INTO bronze.tweets (raw) VALUES ('{not json');
SELECT p.range_from <= b.ingested_at AND b.ingested_at < p.range_to AS in_its_day,
       b.partition_date = (p.range_from AT TIME ZONE 'UTC')::date AS partition_date_is_its_day,
       count(*)
FROM bronze.tweets b JOIN tweetlake.bronze_partitions p ON p.partition = b.tableoid
GROUP BY 1, 2;
SELECT count(*) AS dead_letters_today FROM bronze.dead_letters d
JOIN tweetlake.bronze_partitions p ON p.partition = d.tableoid AND p.range_from IS NOT NULL;

-- Two old days: a day partition of 40 days ago, and rows of 50 days ago that no day
-- partition holds (they stay in the default partitions).  They are tweets like any other.
-- Ages in hours, not days: timestamptz minus days counts in the session's time zone
-- (PST8PDT here), so across a DST change the row moved an hour, into the day before when
-- the test ran in the first hour after midnight UTC.
CREATE TABLE bronze.tweets_old (LIKE bronze.tweets INCLUDING DEFAULTS INCLUDING GENERATED);
DO $$
BEGIN
    EXECUTE format('ALTER TABLE bronze.tweets ATTACH PARTITION bronze.tweets_old FOR VALUES FROM (%L) TO (%L)',
                   date_trunc('day', now() AT TIME ZONE 'UTC' - interval '40 days') AT TIME ZONE 'UTC',
                   date_trunc('day', now() AT TIME ZONE 'UTC' - interval '39 days') AT TIME ZONE 'UTC');
END
$$;
INSERT INTO bronze.tweets (raw, ingested_at)
SELECT t, now() - interval '960 hours' FROM tweetlake.generate_tweets(200, 11) t;
INSERT INTO bronze.tweets (raw, ingested_at)
SELECT t, now() - interval '1200 hours' FROM tweetlake.generate_tweets(100, 12) t;
INSERT INTO bronze.dead_letters (raw, reason, failed_at) VALUES
    ('\x01', 'old', now() - interval '1200 hours'), ('\x02', 'recent', now() - interval '120 hours');
SELECT p.partition, count(*) FROM bronze.tweets b JOIN tweetlake.bronze_partitions p ON p.partition = b.tableoid
WHERE b.ingested_at < now() - interval '1 day' GROUP BY 1 ORDER BY 1;
CREATE TEMP TABLE silver_before AS SELECT tweet_id, total_engagement FROM silver.tweets;
CREATE TEMP TABLE gold_before AS SELECT hour, hashtag, tweet_count, unique_users FROM gold.popular_hashtags_by_hour;
SELECT count(*) AS silver_tweets FROM silver_before;

-- Retention is positive or NULL.
SELECT * FROM tweetlake.maintain_partitions('-1 day');

-- 45 days: only the default partitions' 50-day-old rows expire.
SELECT * FROM tweetlake.maintain_partitions('45 days') ORDER BY 1;
-- 30 days: the day partition of 40 days ago is emptied and dropped.
SELECT * FROM tweetlake.maintain_partitions('30 days') ORDER BY 1;
SELECT to_regclass('bronze.tweets_old') AS old_partition;
SELECT count(*) AS bronze_rows, min(ingested_at) > now() - interval '30 days' AS none_older_than_30_days
FROM bronze.tweets;
SELECT reason FROM bronze.dead_letters ORDER BY 1;

-- Silver and gold are untouched: the same tweets, the same hashtag counts, verify() zero.
SELECT count(*) AS silver_changed FROM (
    (SELECT tweet_id, total_engagement FROM silver.tweets EXCEPT SELECT * FROM silver_before)
    UNION ALL (SELECT * FROM silver_before EXCEPT SELECT tweet_id, total_engagement FROM silver.tweets)) x;
SELECT count(*) AS gold_changed FROM (
    (SELECT hour, hashtag, tweet_count, unique_users FROM gold.popular_hashtags_by_hour EXCEPT SELECT * FROM gold_before)
    UNION ALL (SELECT * FROM gold_before EXCEPT SELECT hour, hashtag, tweet_count, unique_users FROM gold.popular_hashtags_by_hour)) x;
SELECT gold_table, missing, extra, differing FROM tweetlake.verify();

-- Without tweetlake.bronze_retention set, everything is kept (t/016 sets it).
SELECT tweetlake.bronze_retention() AS unset;

-- Only a superuser maintains partitions.
SET ROLE tweetlake_loader;
SELECT * FROM tweetlake.maintain_partitions(NULL);
RESET ROLE;

DROP EXTENSION tweetlake;
SELECT count(*) AS bronze_tables_left FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = 'bronze';
