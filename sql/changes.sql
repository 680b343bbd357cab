-- Tweets change (README "Updates and deletions"): a newer version replaces the stored one,
-- a tombstone deletes, and gold follows exactly.  Small hand-made tweets, so every expected
-- figure below can be worked out by hand; verify() checks the rest against a recompute.
CREATE EXTENSION tweetlake;
\set VERBOSITY terse

-- t(id, user, hour of 2026-03-01, hashtags, likes[, extra fields]) as a message
CREATE FUNCTION t(id text, usr text, h int, tags text, likes int, extra text DEFAULT '')
RETURNS text LANGUAGE sql AS $$
SELECT format('{"tweet_id":"%s","text":"tweet %s","created_at":"2026-03-01T%s:10:00Z","region":"europe","language":"en",'
              '"hashtags":%s,"mentions":["@m"],"like_count":%s,"retweet_count":0,'
              '"user":{"user_id":"%s","username":"%s","followers_count":100}%s}',
              id, id, lpad(h::text, 2, '0'), tags, likes, usr, usr, extra)
$$;
CREATE VIEW tags AS
SELECT to_char(hour AT TIME ZONE 'UTC', 'HH24') AS h, hashtag, tweet_count, unique_users, unique_mentions, total_engagement
FROM gold.popular_hashtags_by_hour ORDER BY 1, 2;
CREATE VIEW hours AS
SELECT to_char(hour AT TIME ZONE 'UTC', 'HH24') AS h, total_tweets, unique_users, total_engagement, top_hashtag, top_hashtag_count
FROM gold.hourly_activity_summary ORDER BY 1;
CREATE VIEW ok AS SELECT sum(missing + extra + differing) AS verify_diffs FROM tweetlake.verify();

-- Hour 10: a1 (#x #y) and a2 (#x) by alice, b1 (#y) by bob.  #x and #y tie at 2; x first.
INSERT INTO bronze.tweets (raw) VALUES
    (t('a1', 'alice', 10, '["#x","#y"]', 5)), (t('a2', 'alice', 10, '["#x"]', 1)), (t('b1', 'bob', 10, '["#y"]', 2));
SELECT * FROM tags;
SELECT * FROM hours;

-- An update raising engagement: a1 again with 50 likes.  Counts stay, engagement +45.
INSERT INTO bronze.tweets (raw) VALUES (t('a1', 'alice', 10, '["#x","#y"]', 50));
SELECT like_count FROM silver.tweets WHERE tweet_id = 'a1';
SELECT * FROM tags;

-- The same message again, and an older version (fewer likes): nothing changes.
INSERT INTO bronze.tweets (raw) VALUES (t('a1', 'alice', 10, '["#x","#y"]', 50)), (t('a1', 'alice', 10, '["#x","#y"]', 7));
SELECT like_count FROM silver.tweets WHERE tweet_id = 'a1';

-- An update with another hashtag list: b1 goes from #y to #z.  #y keeps a1 only (alice),
-- #z is new, and the top of hour 10 is #x (2) alone.
INSERT INTO bronze.tweets (raw) VALUES (t('b1', 'bob', 10, '["#z"]', 2));
SELECT * FROM tags;
SELECT * FROM hours;
SELECT * FROM ok;

-- Deleting a user's last tweet in a group: b1 was bob's only tweet of hour 10, so #z goes
-- and hour 10 has one user left.
SELECT tweetlake.delete_tweet('b1') AS was_stored;
SELECT * FROM tags;
SELECT * FROM hours;
SELECT user_id, tweets_count FROM gold.active_users_by_day ORDER BY 1;

-- Deleting the top hashtag's tweets: the top moves to what is left.  Hour 11: c1, c2 (#top),
-- c3 (#next).  Then both #top tweets go: #next is the top of hour 11.
INSERT INTO bronze.tweets (raw) VALUES
    (t('c1', 'carol', 11, '["#top"]', 1)), (t('c2', 'dave', 11, '["#top"]', 1)), (t('c3', 'carol', 11, '["#next"]', 1));
SELECT * FROM hours;
INSERT INTO bronze.tweets (raw, kafka_key) VALUES (NULL, 'c1'), (NULL, 'c2');
SELECT * FROM hours;
SELECT * FROM tags WHERE h = '11';

-- Versions out of order, by updated_at: v2 arrives, then v1 (older: nothing), then v3.
INSERT INTO bronze.tweets (raw) VALUES (t('d1', 'erin', 12, '["#v"]', 20, ',"updated_at":"2026-03-02T00:00:02Z"'));
INSERT INTO bronze.tweets (raw) VALUES (t('d1', 'erin', 12, '["#v"]', 99, ',"updated_at":"2026-03-02T00:00:01Z"'));
SELECT like_count, updated_at AT TIME ZONE 'UTC' AS updated_at FROM silver.tweets WHERE tweet_id = 'd1';
INSERT INTO bronze.tweets (raw) VALUES (t('d1', 'erin', 12, '["#v"]', 3, ',"updated_at":"2026-03-02T00:00:03Z"'));
SELECT like_count, updated_at AT TIME ZONE 'UTC' AS updated_at FROM silver.tweets WHERE tweet_id = 'd1';
SELECT * FROM tags WHERE h = '12';

-- Late data: a tweet of hour 10 after hour 12 was written; and d1's next version moves it
-- back to hour 09 (its old hour is left empty, so the hour row goes).
INSERT INTO bronze.tweets (raw) VALUES (t('late', 'frank', 10, '["#x"]', 0));
INSERT INTO bronze.tweets (raw) VALUES (t('d1', 'erin', 9, '["#v"]', 3, ',"updated_at":"2026-03-02T00:00:04Z"'));
SELECT * FROM hours;
SELECT * FROM ok;

-- A tombstone before its tweet wins: the original arriving later changes nothing; a
-- tombstone for an id never seen is recorded; a null message without a key is a dead letter.
INSERT INTO bronze.tweets (raw, kafka_key) VALUES (NULL, 'early');
INSERT INTO bronze.tweets (raw) VALUES (t('early', 'gina', 10, '["#x"]', 1));
INSERT INTO bronze.tweets (raw, kafka_key) VALUES (NULL, 'never-seen'), (NULL, NULL), (NULL, '');
SELECT tweet_id, was_stored FROM silver.deleted_tweets ORDER BY tweet_id;
SELECT count(*) AS early_in_silver FROM silver.tweets WHERE tweet_id = 'early';
SELECT reason FROM bronze.dead_letters ORDER BY reason;

-- A user's largest followers_count and first/last day, when the tweet that set them goes:
-- hugo tweets on 03-01 with 100 followers and on 03-02 with 5000; deleting the 03-02 tweet
-- brings user_engagement back to 100 followers and last_day 03-01.
INSERT INTO bronze.tweets (raw) VALUES
    (t('h1', 'hugo', 10, '[]', 0)),
    (replace(replace(t('h2', 'hugo', 10, '[]', 0), '2026-03-01T', '2026-03-02T'), '"followers_count":100', '"followers_count":5000'));
SELECT followers_count, first_day, last_day, tweets_count FROM gold.user_engagement WHERE user_id = 'hugo';
SELECT tweetlake.delete_tweet('h2');
SELECT followers_count, first_day, last_day, tweets_count FROM gold.user_engagement WHERE user_id = 'hugo';
SELECT * FROM ok;

-- Several versions in one statement are applied in order to the stored one, as separate
-- statements would: stored nt (10 likes, updated 15:00); then v2 (12 likes, updated 11:00:
-- older, nothing) and v3 (11 likes, no updated_at: counts did not go down, so newer).
INSERT INTO bronze.tweets (raw) VALUES
    (t('nt-a', 'ivy', 13, '[]', 10, ',"updated_at":"2026-03-01T15:00:00Z"')),
    (t('nt-b', 'ivy', 13, '[]', 10, ',"updated_at":"2026-03-01T15:00:00Z"'));
INSERT INTO bronze.tweets (raw) VALUES
    (t('nt-a', 'ivy', 13, '[]', 12, ',"updated_at":"2026-03-01T11:00:00Z"')),
    (t('nt-a', 'ivy', 13, '[]', 11));
INSERT INTO bronze.tweets (raw) VALUES (t('nt-b', 'ivy', 13, '[]', 12, ',"updated_at":"2026-03-01T11:00:00Z"'));
INSERT INTO bronze.tweets (raw) VALUES (t('nt-b', 'ivy', 13, '[]', 11));
SELECT tweet_id, like_count, updated_at FROM silver.tweets WHERE tweet_id LIKE 'nt-%' ORDER BY 1;
-- and a tweet silver does not have, with three versions and a tombstone in one statement,
-- next to one whose versions come in one statement and stand
INSERT INTO bronze.tweets (raw, kafka_key) VALUES
    (t('multi-1', 'jo', 14, '["#m"]', 1), NULL), (t('multi-1', 'jo', 14, '["#m"]', 3), NULL),
    (NULL, 'multi-1'), (t('multi-1', 'jo', 14, '["#m"]', 9), NULL),
    (t('multi-2', 'jo', 14, '["#m"]', 1), NULL), (t('multi-2', 'jo', 14, '["#m","#n"]', 2), NULL),
    (t('multi-2', 'jo', 14, '["#m"]', 0), NULL);
SELECT tweet_id, like_count, hashtags FROM silver.tweets WHERE tweet_id LIKE 'multi-%' ORDER BY 1;
SELECT tweet_id, was_stored FROM silver.deleted_tweets WHERE tweet_id LIKE 'multi-%';
SELECT * FROM tags WHERE h = '14';
SELECT * FROM ok;

-- All of it again in one statement, on a second copy of the rows: the same silver and gold
-- (chunk boundaries and statement boundaries do not matter).
CREATE TABLE gold_once AS SELECT * FROM gold.popular_hashtags_by_hour;
CREATE TABLE silver_once AS SELECT tweet_id, like_count, hashtags, created_at FROM silver.tweets;
CREATE TABLE replay AS SELECT raw, kafka_key FROM bronze.tweets ORDER BY ingested_at, ctid;
DROP EXTENSION tweetlake CASCADE;
CREATE EXTENSION tweetlake;
CREATE VIEW ok AS SELECT sum(missing + extra + differing) AS verify_diffs FROM tweetlake.verify();
INSERT INTO bronze.tweets (raw, kafka_key) SELECT raw, kafka_key FROM replay;
SELECT (SELECT count(*) FROM (SELECT * FROM gold_once EXCEPT SELECT * FROM gold.popular_hashtags_by_hour) a)
     + (SELECT count(*) FROM (SELECT * FROM gold.popular_hashtags_by_hour EXCEPT SELECT * FROM gold_once) b) AS gold_differs,
       (SELECT count(*) FROM (SELECT * FROM silver_once EXCEPT SELECT tweet_id, like_count, hashtags, created_at FROM silver.tweets) c)
     + (SELECT count(*) FROM (SELECT tweet_id, like_count, hashtags, created_at FROM silver.tweets EXCEPT SELECT * FROM silver_once) d) AS silver_differs;
SELECT * FROM ok;


-- Any batch split gives the same silver and gold: one generated stream with a third updates
-- and 5 % tombstones, loaded in batches of 1, 37 and 5000 messages.
CREATE TABLE split_silver (rows integer, tweet_id text, like_count integer, updated_at timestamptz);
CREATE TABLE split_gold (rows integer, hour timestamptz, hashtag text, tweet_count bigint,
                         unique_users bigint, unique_mentions bigint, total_engagement bigint);
CREATE FUNCTION load_split(rows integer) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    DROP EXTENSION tweetlake CASCADE;
    CREATE EXTENSION tweetlake;
    PERFORM set_config('tweetlake.batch_size', rows::text, false);
    PERFORM tweetlake.load_generated(3000, 15, '2026-01-01 00:00+00', '6 hours', 0.33, 0.05);
    INSERT INTO split_silver SELECT rows, tweet_id, like_count, updated_at FROM silver.tweets;
    INSERT INTO split_gold SELECT rows, hour, hashtag, tweet_count, unique_users, unique_mentions, total_engagement
    FROM gold.popular_hashtags_by_hour;
END
$$;
SELECT load_split(1);
SELECT sum(missing + extra + differing) AS verify_diffs FROM tweetlake.verify();
SELECT load_split(37);
SELECT sum(missing + extra + differing) AS verify_diffs FROM tweetlake.verify();
SELECT load_split(5000);
SELECT sum(missing + extra + differing) AS verify_diffs FROM tweetlake.verify();
SELECT (SELECT count(*) FROM silver.tweets) > 1500 AS most_tweets_stay,
       (SELECT count(*) FROM silver.deleted_tweets) > 50 AS some_deleted,
       (SELECT count(*) FROM silver.tweets WHERE updated_at IS NOT NULL) > 500 AS many_updated;
SELECT a.rows, b.rows,
       (SELECT count(*) FROM (SELECT tweet_id, like_count, updated_at FROM split_silver WHERE rows = a.rows
                              EXCEPT SELECT tweet_id, like_count, updated_at FROM split_silver WHERE rows = b.rows) x)
     + (SELECT count(*) FROM (SELECT tweet_id, like_count, updated_at FROM split_silver WHERE rows = b.rows
                              EXCEPT SELECT tweet_id, like_count, updated_at FROM split_silver WHERE rows = a.rows) y) AS silver_differs,
       (SELECT count(*) FROM (SELECT hour, hashtag, tweet_count, unique_users, unique_mentions, total_engagement FROM split_gold WHERE rows = a.rows
                              EXCEPT SELECT hour, hashtag, tweet_count, unique_users, unique_mentions, total_engagement FROM split_gold WHERE rows = b.rows) x)
     + (SELECT count(*) FROM (SELECT hour, hashtag, tweet_count, unique_users, unique_mentions, total_engagement FROM split_gold WHERE rows = b.rows
                              EXCEPT SELECT hour, hashtag, tweet_count, unique_users, unique_mentions, total_engagement FROM split_gold WHERE rows = a.rows) y) AS gold_differs
FROM (VALUES (1, 37), (1, 5000)) AS p(ra, rb), LATERAL (SELECT p.ra AS rows) a, LATERAL (SELECT p.rb AS rows) b;
RESET tweetlake.batch_size;
DROP FUNCTION load_split(integer);
DROP TABLE split_silver, split_gold;
DROP EXTENSION tweetlake CASCADE;
DROP TABLE gold_once, silver_once, replay;
DROP FUNCTION t(text, text, int, text, int, text);
