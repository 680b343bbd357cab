-- Every kind of bad message lands in bronze.dead_letters with its reason, while the good
-- messages of the same batch land in silver.  Nothing aborts the batch.
CREATE EXTENSION tweetlake;

CREATE TEMP TABLE batch (n int, raw text);
INSERT INTO batch VALUES
  (1,  '{"tweet_id":"good-1","text":"fine","created_at":"2026-04-01T10:00:00Z"}'),
  (2,  '{"tweet_id":"trunc","text":"cut off'),
  (3,  '[{"tweet_id":"arr"}]'),
  (4,  '"just a string"'),
  (5,  ''),
  (6,  '   '),
  (7,  '{"text":"no id","created_at":"2026-04-01T10:00:00Z"}'),
  (8,  '{"tweet_id":"no-text","created_at":"2026-04-01T10:00:00Z"}'),
  (9,  '{"tweet_id":"no-time","text":"x"}'),
  (10, '{"tweet_id":"likes-str","text":"x","created_at":"2026-04-01T10:00:00Z","like_count":"5"}'),
  (11, '{"tweet_id":"tags-str","text":"x","created_at":"2026-04-01T10:00:00Z","hashtags":"#a"}'),
  (12, '{"tweet_id":"tag-num","text":"x","created_at":"2026-04-01T10:00:00Z","hashtags":["#a",7]}'),
  (13, '{"tweet_id":"bool-str","text":"x","created_at":"2026-04-01T10:00:00Z","is_retweet":"true"}'),
  (14, '{"tweet_id":"user-str","text":"x","created_at":"2026-04-01T10:00:00Z","user":"bob"}'),
  (15, '{"tweet_id":"time-num","text":"x","created_at":1711965600}'),
  (16, '{"tweet_id":"sent-range","text":"x","created_at":"2026-04-01T10:00:00Z","sentiment_score":1.5}'),
  (17, '{"tweet_id":"neg-count","text":"x","created_at":"2026-04-01T10:00:00Z","reply_count":-1}'),
  (18, '{"tweet_id":"big-count","text":"x","created_at":"2026-04-01T10:00:00Z","like_count":3000000000}'),
  (19, '{"tweet_id":"frac-count","text":"x","created_at":"2026-04-01T10:00:00Z","like_count":2.5}'),
  (20, '{"tweet_id":"feb-30","text":"x","created_at":"2026-02-30T10:00:00Z"}'),
  (21, '{"tweet_id":"nul-text","text":"a\u0000b","created_at":"2026-04-01T10:00:00Z"}'),
  (22, '{"tweet_id":"nul-user","text":"x","created_at":"2026-04-01T10:00:00Z","user":{"username":"a\u0000"}}'),
  (23, '{"tweet_id":"surrogate","text":"\ud800","created_at":"2026-04-01T10:00:00Z"}'),
  (24, '{"tweet_id":"long-text","text":"' || repeat('é', 1001) || '","created_at":"2026-04-01T10:00:00Z"}'),
  (25, '{"tweet_id":"huge-bio","text":"x","created_at":"2026-04-01T10:00:00Z","user":{"description":"' || repeat('b', 5000) || '"}}'),
  (26, '{"tweet_id":"many-tags","text":"x","created_at":"2026-04-01T10:00:00Z","hashtags":[' ||
       (SELECT string_agg('"#t' || i || '"', ',') FROM generate_series(1, 101) i) || ']}'),
  (27, '{"tweet_id":"huge-msg","text":"x","created_at":"2026-04-01T10:00:00Z","pad":"' || repeat('p', 1048576) || '"}'),
  (28, '{"tweet_id":"bad-type","text":"x","created_at":"2026-04-01T10:00:00Z","tweet_type":"thread"}'),
  (29, '{"tweet_id":"trailing","text":"x","created_at":"2026-04-01T10:00:00Z"} extra'),
  (30, '{"tweet_id":"deep","text":"x","created_at":"2026-04-01T10:00:00Z","x":' || repeat('[', 40) || repeat(']', 40) || '}'),
  (31, '{"tweet_id":"nan","text":"x","created_at":"2026-04-01T10:00:00Z","sentiment_score":NaN}'),
  (32, '{"tweet_id":"", "text":"x","created_at":"2026-04-01T10:00:00Z"}'),
  (33, '{"tweet_id":"good-2","text":"also fine","created_at":"2026-04-01T10:30:00+02:00","hashtags":["#ok"]}'),
  (34, '{"tweet_id":"long-id-' || repeat('i', 200) || '","text":"x","created_at":"2026-04-01T10:00:00Z"}'),
  (35, '{''tweet_id'':''single-quote''}'),
  (36, '{"tweet_id":"low-surrogate","text":"\udc00 and a pair \ud83d\ude00","created_at":"2026-04-01T10:00:00Z"}'),
  (37, '{"tweet_id":"good-3","text":"pair \ud83d\ude00, escaped \\ud800 is text","created_at":"2026-04-01T10:00:00Z"}');

-- One statement, one batch.
INSERT INTO bronze.tweets (raw) SELECT raw FROM batch ORDER BY n;

SELECT count(*) AS bronze_rows FROM bronze.tweets;
SELECT tweet_id, text FROM silver.tweets ORDER BY tweet_id;

-- Each bad message once, with its reason (matched back to the input by its bytes).
SELECT b.n, d.tweet_id, d.reason
FROM bronze.dead_letters d JOIN batch b ON d.raw = convert_to(b.raw, 'UTF8')
ORDER BY b.n;
SELECT count(*) AS dead_letters, count(DISTINCT raw) AS distinct_raw,
       bool_and(failed_at IS NOT NULL AND kafka_topic IS NULL) AS sql_path
FROM bronze.dead_letters;
-- A dead letter's tweet_id is the one bronze.tweets has for the message (tweet_id_of).
SELECT count(*) AS dead_letters, count(d.tweet_id) AS with_tweet_id,
       count(*) FILTER (WHERE d.tweet_id IS NOT DISTINCT FROM b.tweet_id) AS same_as_bronze
FROM bronze.dead_letters d JOIN bronze.tweets b ON d.raw = convert_to(b.raw, 'UTF8');

-- Good + dead = everything that came in.
SELECT (SELECT count(*) FROM silver.tweets) + (SELECT count(*) FROM bronze.dead_letters)
       = (SELECT count(*) FROM batch) AS nothing_lost;

-- Gold saw only the good rows.
SELECT hour, total_tweets, top_hashtag FROM gold.hourly_activity_summary ORDER BY hour;

\set VERBOSITY terse
-- Text that is not valid UTF-8 never reaches bronze through SQL: PostgreSQL refuses it.
INSERT INTO bronze.tweets (raw) VALUES (convert_from('\xc328'::bytea, 'UTF8'));

-- A NULL raw without a kafka_key is no tombstone: a dead letter, not silently dropped.
INSERT INTO bronze.tweets (raw) VALUES (NULL);

-- Dashboards see dead letters counted by minute and kind of reason, without the message's
-- details (values, byte positions) and without payloads.
SELECT reason, sum(dead_letters) AS n FROM tweetlake.dead_letters_by_minute GROUP BY reason ORDER BY reason;
SELECT sum(dead_letters) = (SELECT count(*) FROM bronze.dead_letters) AS all_counted
FROM tweetlake.dead_letters_by_minute;

-- The dashboards' role reads gold, silver and the pipeline's status, and nothing else.
SET ROLE tweetlake_reader;
SELECT count(*) > 0 AS reads_gold FROM gold.hourly_activity_summary;
SELECT count(*) > 0 AS reads_silver FROM silver.tweets;
SELECT count(*) >= 0 AS reads_status FROM tweetlake.status;
SELECT count(*) >= 0 AS reads_lag FROM tweetlake.consumer_lag;
SELECT sum(dead_letters) > 0 AS reads_dead_letter_counts FROM tweetlake.dead_letters_by_minute;
SELECT raw FROM bronze.dead_letters LIMIT 1;
SELECT raw FROM bronze.tweets LIMIT 1;
SELECT * FROM tweetlake.offsets;
INSERT INTO gold.hourly_activity_summary (hour, total_tweets, unique_users, total_engagement,
    positive_count, negative_count, neutral_count, sentiment_sum, sentiment_n)
    VALUES (now(), 1, 1, 0, 0, 0, 0, 0, 0);
UPDATE gold.popular_hashtags_by_hour SET tweet_count = 0;
DELETE FROM silver.tweets;
INSERT INTO bronze.tweets (raw) VALUES ('{}');
SELECT tweetlake.rebuild_gold();
SELECT tweetlake.stop();
RESET ROLE;

DROP EXTENSION tweetlake;
