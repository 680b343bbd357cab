-- Messages crafted to break the pipeline, next to good ones in the same batch: key columns
-- too long for a B-tree entry, numbers that break sums and averages, a second tweet_id that
-- bronze and silver read differently, NUL bytes, lone surrogates, deep nesting.  Each
-- hostile message must become a dead letter with its reason; the good ones must reach
-- silver and gold; nothing may abort the batch.
CREATE EXTENSION tweetlake;
SET timezone = 'UTC';

-- Deterministic, incompressible text of exactly n bytes: chained md5 hex digits (pglz finds
-- nothing to compress in them, so an index entry holds them at full length).
CREATE FUNCTION pg_temp.noise(seed text, n int) RETURNS text LANGUAGE sql IMMUTABLE
    RETURN left((SELECT string_agg(md5(seed || i), '' ORDER BY i)
                 FROM generate_series(0, n / 32) i), n);
-- A message of the test hour with extra fields (a JSON fragment, without braces).
CREATE FUNCTION pg_temp.msg(id text, extra text DEFAULT '') RETURNS text LANGUAGE sql IMMUTABLE
    RETURN '{"tweet_id":"' || id || '","text":"t","created_at":"2026-05-01T10:15:00Z"'
           || CASE WHEN extra = '' THEN '' ELSE ',' || extra END || '}';

CREATE TEMP TABLE batch (n int, raw text);
INSERT INTO batch VALUES
  -- 1. Key columns: every one at its longest, incompressible, in one message (the widest
  --    keys: the membership rows of user_hour and mention_hour), and one byte more.
  (1,  pg_temp.msg('k' || pg_temp.noise('id', 127),
        '"tweet_type":"original","region":"' || pg_temp.noise('r', 64) || '","language":"' ||
        pg_temp.noise('l', 64) || '","hashtags":["#' || pg_temp.noise('h', 280) ||
        '"],"mentions":["@' || pg_temp.noise('m', 280) || '"],"user":{"user_id":"' ||
        pg_temp.noise('u', 128) || '"}')),
  (2,  pg_temp.msg('region-65', '"region":"' || pg_temp.noise('r', 65) || '"')),
  (3,  pg_temp.msg('language-65', '"language":"' || pg_temp.noise('l', 65) || '"')),
  (4,  pg_temp.msg('region-3300', '"region":"' || pg_temp.noise('r', 3300) || '"')),
  (5,  pg_temp.msg('tweet-type-65', '"tweet_type":"' || pg_temp.noise('t', 65) || '"')),
  (6,  pg_temp.msg('hashtag-281', '"hashtags":["' || pg_temp.noise('h', 281) || '"]')),
  (7,  pg_temp.msg('mention-281', '"mentions":["' || pg_temp.noise('m', 281) || '"]')),
  (8,  pg_temp.msg('user-id-129', '"user":{"user_id":"' || pg_temp.noise('u', 129) || '"}')),
  (9,  pg_temp.msg(pg_temp.noise('id', 129))),
  -- lower case is longer in UTF-8 for some letters: "Ⱥ" (2 bytes) becomes "ⱥ" (3 bytes)
  (10, pg_temp.msg('tag-grows-to-280', '"hashtags":["#' || repeat('Ⱥ', 93) || 'B"]')),
  (11, pg_temp.msg('tag-grows-to-282', '"hashtags":["#' || repeat('Ⱥ', 94) || '"]')),
  -- 2. Numbers: extremes of every numeric field, accepted and refused.
  (20, pg_temp.msg('num-max', '"sentiment_score":-1,"engagement_score":1e15,"retweet_count":2147483647,' ||
        '"like_count":2147483647,"reply_count":2147483647,"quote_count":2147483647,' ||
        '"reach_estimate":9223372036854775807,"user":{"user_id":9223372036854775807,' ||
        '"followers_count":2147483647,"following_count":2147483647}')),
  (21, pg_temp.msg('num-zero', '"sentiment_score":-0.0,"engagement_score":-0,"retweet_count":-0.0,' ||
        '"like_count":3.0,"reply_count":0,"quote_count":0.0,"reach_estimate":-0,' ||
        '"user":{"user_id":0,"followers_count":-0.0,"following_count":0}')),
  (22, pg_temp.msg('num-normal-min', '"sentiment_score":2.2250738585072014e-308,' ||
        '"engagement_score":-2.2250738585072014e-308')),
  (23, pg_temp.msg('sent-subnormal', '"sentiment_score":5e-324')),
  (24, pg_temp.msg('sent-subnormal-neg', '"sentiment_score":-1e-320')),
  (25, pg_temp.msg('sent-inf', '"sentiment_score":1e309')),
  (26, pg_temp.msg('sent-max', '"sentiment_score":-1.7976931348623157e308')),
  (27, pg_temp.msg('sent-string', '"sentiment_score":"0.5"')),
  (28, pg_temp.msg('eng-max', '"engagement_score":1.7976931348623157e308')),
  (29, pg_temp.msg('eng-over', '"engagement_score":-1.0000000000000002e15')),
  (30, pg_temp.msg('eng-subnormal', '"engagement_score":1e-320')),
  (31, pg_temp.msg('eng-inf', '"engagement_score":-1e309')),
  (32, pg_temp.msg('like-2^63', '"like_count":9223372036854775808')),
  (33, pg_temp.msg('retweet-1e20', '"retweet_count":1e20')),
  (34, pg_temp.msg('reply-3.5', '"reply_count":3.5')),
  (35, pg_temp.msg('quote-huge', '"quote_count":99999999999999999999999')),
  (36, pg_temp.msg('like-2^31', '"like_count":2147483648')),
  (37, pg_temp.msg('like-2^31-float', '"like_count":2147483648.0')),
  (38, pg_temp.msg('followers-2^31', '"user":{"followers_count":2147483648}')),
  (39, pg_temp.msg('following-neg', '"user":{"following_count":-1e300}')),
  (40, pg_temp.msg('reach-2^63', '"reach_estimate":9.3e18')),
  (41, pg_temp.msg('reach-inf', '"reach_estimate":1e400')),
  (42, pg_temp.msg('user-id-2^64', '"user":{"user_id":18446744073709551616}')),
  (43, pg_temp.msg('user-id-neg', '"user":{"user_id":-5}')),
  (44, pg_temp.msg('count-string', '"like_count":"12"')),
  -- 3. Duplicate keys: json-c keeps the last one silently, so a repeated field is refused;
  --    escapes in key names are decoded as json-c does, including a NUL that ends the key.
  (50, '{"tweet_id":"dup-a","tweet\u005fid":"dup-b","text":"t","created_at":"2026-05-01T10:15:00Z"}'),
  (51, '{"tweet_id":"dup-c","tweet_id\u0000x":"dup-d","text":"t","created_at":"2026-05-01T10:15:00Z"}'),
  (52, '{"tweet_id":"dup-e","tweet_id":7,"text":"t","created_at":"2026-05-01T10:15:00Z"}'),
  (53, pg_temp.msg('dup-text', '"text":"u"')),
  (54, pg_temp.msg('dup-region', '"region":"a","re\u0067ion":"b"')),
  (55, pg_temp.msg('dup-user-id', '"user":{"user_id":"u1","user_id":"u2"}')),
  (56, pg_temp.msg('dup-reply-user', '"reply_to_user":{"user_id":"u1","user\u005fid":"u2"}')),
  (57, pg_temp.msg('dup-unknown', '"source":"a","source":"b"')),
  (58, '{"tw\u0065et_id":"esc-caf\u00e9","text":"t","created_at":"2026-05-01T10:15:00Z"}'),
  (59, '{"tweet_id":123,"text":"t","created_at":"2026-05-01T10:15:00Z"}'),
  -- 4. NUL bytes, lone surrogates (also in key names), deep nesting.
  (70, pg_temp.msg('nul-region', '"region":"eu\u0000"')),
  (71, pg_temp.msg('nul-tag', '"hashtags":["a\u0000b"]')),
  (72, pg_temp.msg('nul\u0000id')),
  (73, pg_temp.msg('nul-quoted', '"quoted_text":"\u0000"')),
  (74, pg_temp.msg('surrogate-key', '"x\udc00":1')),
  (75, pg_temp.msg('surrogate-tag', '"hashtags":["\ud83d"]')),
  (76, pg_temp.msg('deep-user', '"user":{"x":' || repeat('[', 15) || repeat(']', 15) || '}')),
  (77, pg_temp.msg('deep-ok', '"x":' || repeat('[', 14) || repeat(']', 14))),
  (78, pg_temp.msg('big-\u0069d', '"pad":"' || repeat('p', 1048576) || '"'));

-- One statement, one batch.
INSERT INTO bronze.tweets (raw) SELECT raw FROM batch ORDER BY n;

-- The good ones are in silver, with the key columns at their longest.
SELECT b.n, left(s.tweet_id, 20) AS tweet_id, octet_length(s.tweet_id) AS id_bytes,
       octet_length(s.region) AS region_bytes, octet_length(s.language) AS language_bytes,
       octet_length(s.user_id) AS user_id_bytes,
       (SELECT max(octet_length(h)) FROM unnest(s.hashtags) h) AS hashtag_bytes,
       (SELECT max(octet_length(m)) FROM unnest(s.mentions) m) AS mention_bytes
FROM silver.tweets s JOIN bronze.tweets bt USING (tweet_id) JOIN batch b ON b.raw = bt.raw
ORDER BY b.n;

-- Each hostile one is a dead letter, once, with its reason; its tweet_id is bronze's.
SELECT b.n, left(d.tweet_id, 20) AS tweet_id, d.reason,
       d.tweet_id IS NOT DISTINCT FROM bt.tweet_id AS same_as_bronze
FROM bronze.dead_letters d JOIN batch b ON d.raw = convert_to(b.raw, 'UTF8')
JOIN bronze.tweets bt ON bt.raw = b.raw
ORDER BY b.n;
SELECT (SELECT count(*) FROM silver.tweets) + (SELECT count(*) FROM bronze.dead_letters)
       = (SELECT count(*) FROM batch) AS nothing_lost;

-- Dashboards count them by kind of reason.
SELECT reason, sum(dead_letters) AS n FROM tweetlake.dead_letters_by_minute GROUP BY reason ORDER BY reason;

-- Bronze and silver agree on every tweet_id; a repeated tweet_id key gives none in bronze.
SELECT count(*) AS silver_rows, count(*) FILTER (WHERE bt.tweet_id = s.tweet_id) AS same_id
FROM silver.tweets s JOIN bronze.tweets bt ON tweetlake.tweet_id_of(bt.raw) = s.tweet_id;
SELECT b.n, bt.tweet_id FROM bronze.tweets bt JOIN batch b ON b.raw = bt.raw
WHERE b.n BETWEEN 50 AND 59 ORDER BY b.n;

-- The longest keys are in gold and in the membership of the distinct counts.
SELECT octet_length(region) AS region, octet_length(language) AS language, tweet_count
FROM gold.tweet_volume_by_region WHERE octet_length(region) = 64;
SELECT octet_length(m.mention) AS mention, octet_length(k.hashtag) AS hashtag, (m.hashtags).n AS hashtags_n
FROM tweetlake.mention_hour m, unnest((m.hashtags).keys) AS k(hashtag)
WHERE octet_length(m.mention) > 100;
SELECT octet_length(user_id) AS user_id, tweets, octet_length(k.hashtag) AS hashtag,
       (places).n AS places_n, octet_length((places).keys[1]) AS place_key, (languages).n AS languages_n
FROM tweetlake.user_hour u, unnest((u.hashtags).keys) AS k(hashtag)
WHERE octet_length(user_id) = 128;
SELECT unique_users, unique_mentions FROM gold.popular_hashtags_by_hour WHERE octet_length(hashtag) = 280;
SELECT octet_length(hashtag) AS hashtag, tweet_count FROM gold.popular_hashtags_by_hour ORDER BY 1;
SELECT octet_length(user_id) AS user_id, tweets_count FROM gold.user_engagement ORDER BY 1;

-- Numeric extremes as stored: -0 is 0 in silver and in gold.
SELECT tweet_id, sentiment_score, engagement_score, retweet_count, like_count, reply_count,
       quote_count, total_engagement, reach_estimate, user_id, followers_count, following_count,
       sentiment_score::text AS sentiment_text, engagement_score::text AS engagement_text
FROM silver.tweets WHERE tweet_id LIKE 'num-%' ORDER BY tweet_id;
SELECT hour, total_tweets, total_engagement, sentiment_sum::double precision AS sentiment_sum,
       sentiment_n, avg_sentiment
FROM gold.hourly_activity_summary ORDER BY hour;
SELECT sum(missing + extra + differing) AS wrong_rows FROM tweetlake.verify();

-- Scores near the smallest normal double, in one hour and hashtag.  2.2250738585072019e-308
-- and -2.2250738585072014e-308 are normal and accepted, though their sum as doubles is
-- subnormal (gold adds them as numeric, which keeps 15 digits: 0).  -2.2250738585072009e-308
-- is the largest subnormal and 5e-324 the smallest: refused, before and after zeros of the
-- same hour, in one batch or the next.
INSERT INTO bronze.tweets (raw) VALUES
  ('{"tweet_id":"tiny-1","text":"t","created_at":"2026-05-01T11:00:00Z","hashtags":["#tiny"],"sentiment_score":2.2250738585072019e-308}'),
  ('{"tweet_id":"tiny-2","text":"t","created_at":"2026-05-01T11:10:00Z","hashtags":["#tiny"],"sentiment_score":-2.2250738585072014e-308}'),
  ('{"tweet_id":"tiny-3","text":"t","created_at":"2026-05-01T11:20:00Z","hashtags":["#tiny"],"sentiment_score":0}'),
  ('{"tweet_id":"tiny-4","text":"t","created_at":"2026-05-01T11:25:00Z","hashtags":["#tiny"],"sentiment_score":-2.2250738585072009e-308}'),
  ('{"tweet_id":"tiny-5","text":"t","created_at":"2026-05-01T11:30:00Z","hashtags":["#tiny"],"sentiment_score":5e-324}');
INSERT INTO bronze.tweets (raw) VALUES
  ('{"tweet_id":"tiny-6","text":"t","created_at":"2026-05-01T11:40:00Z","hashtags":["#tiny"],"sentiment_score":0}'),
  ('{"tweet_id":"tiny-7","text":"t","created_at":"2026-05-01T11:50:00Z","hashtags":["#tiny"],"sentiment_score":5e-324}');
-- Two normal scores whose numeric sum is 1e-322, averaged over 42 tweets: the mean, 2.4e-324,
-- is below the smallest double.  No single score is wrong, so the parser takes them all;
-- tweetlake.exact_avg rounds such a mean to 0 (the unrounded (total / n)::double precision
-- failed the batch with "is out of range for type double precision").
INSERT INTO bronze.tweets (raw)
SELECT format('{"tweet_id":"tinier-%s","text":"t","created_at":"2026-05-01T12:00:00Z","hashtags":["#tinier"],"sentiment_score":%s}',
              i, CASE i WHEN 1 THEN '2.2250738585072104e-308' WHEN 2 THEN '-2.2250738585072014e-308' ELSE '0' END)
FROM generate_series(1, 42) i;
SELECT tweet_id, sentiment_score FROM silver.tweets WHERE tweet_id LIKE 'tiny-%' ORDER BY 1;
SELECT tweet_id, reason FROM bronze.dead_letters WHERE tweet_id LIKE 'tiny-%' ORDER BY 1;
SELECT hashtag, tweet_count, sentiment_n, sentiment_sum <> 0 AS sum_not_zero,
       abs(sentiment_sum) < 1e-320 AS sum_subnormal, avg_sentiment
FROM gold.popular_hashtags_by_hour WHERE hashtag IN ('tiny', 'tinier') ORDER BY hashtag;
SELECT hour, total_tweets, sentiment_n, avg_sentiment
FROM gold.hourly_activity_summary WHERE hour >= '2026-05-01 11:00+00' ORDER BY hour;

-- Gold equals a full recompute, and a full rebuild holds the longest keys too.
SELECT sum(missing + extra + differing) AS wrong_rows FROM tweetlake.verify();
SELECT tweetlake.rebuild_gold();
SELECT sum(missing + extra + differing) AS wrong_rows FROM tweetlake.verify();

-- tweet_id_of reads only the id: the same answer for any size, and NULL for a repeated key.
SELECT tweetlake.tweet_id_of('{"a":"' || repeat('x', 3000000) || '","tweet\u005fid":"far-\u0041"}') AS far,
       tweetlake.tweet_id_of('{"tweet_id":"one","b":' || repeat('[', 5000) || repeat(']', 5000) || '}') AS deep,
       tweetlake.tweet_id_of('{"tweet_id":"one","tweet_id":"one"}') AS repeated,
       tweetlake.tweet_id_of('{"tweet_id":"' || repeat('i', 128) || '"}') IS NOT NULL AS id_128,
       tweetlake.tweet_id_of('{"tweet_id":"' || repeat('i', 128) || '\u00e9"}') AS id_130,
       tweetlake.tweet_id_of('{"tweet_id":"a\ud800"}') AS lone,
       tweetlake.tweet_id_of('{"tweet_id":"a\u0000"}') AS nul,
       tweetlake.tweet_id_of('{"tweet_id":"a"') AS unclosed;

DROP EXTENSION tweetlake;
