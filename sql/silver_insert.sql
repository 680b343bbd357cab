-- A batch's new tweets go into silver.tweets the way COPY writes rows
-- (tweetlake.silver_multi_insert, on by default; src/silver_insert.c): the same rows as
-- INSERT ... ON CONFLICT DO NOTHING stores, the same defaults, tweets silver has or deleted
-- left out, and a row trigger on silver.tweets still fires (such a table gets the executor).
CREATE EXTENSION tweetlake;
SET client_min_messages = warning;

-- What silver holds, without the columns that say when it was written.
CREATE TEMP TABLE silver_fast AS SELECT * FROM silver.tweets WITH NO DATA;
ALTER TABLE silver_fast DROP COLUMN processed_at, DROP COLUMN processing_date;
CREATE TEMP TABLE silver_sql (LIKE silver_fast);

-- 1. 3,000 generated messages with updates and tombstones, the COPY way.
SET tweetlake.silver_multi_insert = on;
BEGIN;
SELECT tweetlake.load_generated(3000, 21, updates => 0.2, deletes => 0.05);
-- written in the path's own subtransaction, with another transaction id than the bronze
-- rows (those the chunk updated or had several messages for are written by SQL)
SELECT count(*) FILTER (WHERE s.xmin <> b.xmin) > 1500 AS written_in_subtransaction,
       count(*) FILTER (WHERE s.processed_at = now()
                        AND s.processing_date = (now() AT TIME ZONE 'UTC')::date) AS defaults_of_this_transaction,
       count(*) AS silver
FROM silver.tweets s JOIN LATERAL (SELECT xmin FROM bronze.tweets b
                                   WHERE b.tweet_id = s.tweet_id LIMIT 1) b ON true;
COMMIT;
INSERT INTO silver_fast SELECT tweet_id, text, created_at, tweet_type, language, region, hashtags, mentions,
  retweet_count, like_count, reply_count, quote_count, is_retweet, is_reply, is_quote, has_media, has_url,
  sentiment_score, engagement_score, reach_estimate, user_id, username, display_name, followers_count,
  following_count, verified, user_created_at, user_location, user_description, original_tweet_id,
  original_user_id, reply_to_tweet_id, reply_to_user_id, quoted_tweet_id, quoted_user_id, quoted_text,
  text_length, sentiment_category, total_engagement, updated_at FROM silver.tweets;
SELECT sum(missing + extra + differing) AS verify FROM tweetlake.verify();

-- 2. The same messages again: silver has every tweet or deleted it, nothing is new.
SELECT tweetlake.load_generated(3000, 21, updates => 0.2, deletes => 0.05);
SELECT (SELECT count(*) FROM silver.tweets) = (SELECT count(*) FROM silver_fast) AS nothing_new,
       (SELECT count(*) FROM silver.tweets s JOIN silver.deleted_tweets d USING (tweet_id)) AS deleted_stored;

-- 3. Deleted tweets' first messages sent again (no updated_at): refused.
INSERT INTO bronze.tweets (raw)
SELECT b.raw FROM bronze.tweets b JOIN silver.deleted_tweets d USING (tweet_id)
WHERE b.raw IS NOT NULL AND b.raw NOT LIKE '%updated_at%' LIMIT 50;
SELECT (SELECT count(*) FROM silver.deleted_tweets) > 50 AS enough_deleted,
       (SELECT count(*) FROM silver.tweets s JOIN silver.deleted_tweets d USING (tweet_id)) AS deleted_stored;

-- 4. The same load through INSERT ... ON CONFLICT into empty tables: the same rows.
TRUNCATE bronze.tweets, silver.tweets, silver.deleted_tweets;
SET tweetlake.silver_multi_insert = off;
BEGIN;
SELECT tweetlake.load_generated(3000, 21, updates => 0.2, deletes => 0.05);
SELECT count(*) FILTER (WHERE s.xmin <> b.xmin) AS written_in_subtransaction
FROM silver.tweets s JOIN LATERAL (SELECT xmin FROM bronze.tweets b
                                   WHERE b.tweet_id = s.tweet_id LIMIT 1) b ON true;
COMMIT;
INSERT INTO silver_sql SELECT tweet_id, text, created_at, tweet_type, language, region, hashtags, mentions,
  retweet_count, like_count, reply_count, quote_count, is_retweet, is_reply, is_quote, has_media, has_url,
  sentiment_score, engagement_score, reach_estimate, user_id, username, display_name, followers_count,
  following_count, verified, user_created_at, user_location, user_description, original_tweet_id,
  original_user_id, reply_to_tweet_id, reply_to_user_id, quoted_tweet_id, quoted_user_id, quoted_text,
  text_length, sentiment_category, total_engagement, updated_at FROM silver.tweets;
SELECT (SELECT count(*) FROM silver_sql) AS sql_rows,
       (SELECT count(*) FROM (SELECT * FROM silver_fast EXCEPT ALL SELECT * FROM silver_sql) x) AS only_fast,
       (SELECT count(*) FROM (SELECT * FROM silver_sql EXCEPT ALL SELECT * FROM silver_fast) x) AS only_sql;

-- 5. A row trigger on silver.tweets: the rows go through the executor, and it fires.
SET tweetlake.silver_multi_insert = on;
CREATE TABLE public.silver_seen (tweet_id text);
CREATE FUNCTION public.silver_seen() RETURNS trigger LANGUAGE plpgsql AS
$$BEGIN INSERT INTO public.silver_seen VALUES (NEW.tweet_id); RETURN NULL; END$$;
CREATE TRIGGER seen AFTER INSERT ON silver.tweets FOR EACH ROW EXECUTE FUNCTION public.silver_seen();
SELECT tweetlake.load_generated(500, 22);
SELECT count(*) AS seen, count(*) = (SELECT count(*) FROM silver.tweets s
                                     WHERE s.tweet_id IN (SELECT tweet_id FROM public.silver_seen)) AS all_stored
FROM public.silver_seen;
DROP TRIGGER seen ON silver.tweets;
DROP FUNCTION public.silver_seen();
DROP TABLE public.silver_seen;
SELECT tweetlake.rebuild_gold();
SELECT sum(missing + extra + differing) AS verify FROM tweetlake.verify();

RESET tweetlake.silver_multi_insert;
DROP TABLE silver_fast, silver_sql;
DROP EXTENSION tweetlake;
