-- Counted sets (tweetlake.bag) and the membership rows behind gold's distinct counts.
CREATE EXTENSION tweetlake;
SET TimeZone = 'UTC';

-- bag_add sums the counts of equal keys, keeps keys sorted bytewise, drops keys at 0.
SELECT tweetlake.bag_add(('{a,c}', '{1,2}')::tweetlake.bag, ('{B,c,d}', '{5,-2,1}')::tweetlake.bag);
SELECT tweetlake.bag_add(NULL, ('{x}', '{1}')::tweetlake.bag), tweetlake.bag_add(('{}', '{}'), ('{}', '{}'));
-- bag_new: the keys of the second bag that the first holds exactly as often (new to the bag).
SELECT tweetlake.bag_new(('{a,b,c}', '{1,5,2}')::tweetlake.bag, ('{b,c,z}', '{5,1,1}')::tweetlake.bag);
-- bag_agg counts keys and array elements; nothing aggregated is the empty bag.
SELECT tweetlake.bag_agg(k) FROM unnest('{b,a,b,é,ab}'::text[]) AS k;
SELECT tweetlake.bag_agg(k) FROM (VALUES ('{b,a}'::text[]), ('{}'), (NULL), ('{b,NULL}')) AS v(k);
SELECT tweetlake.bag_agg(k) FROM unnest('{a}'::text[]) AS k WHERE false;
-- pair_key tells pairs apart that plain concatenation would not.
SELECT tweetlake.pair_key('ab', 'c') <> tweetlake.pair_key('a', 'bc') AS distinct_keys;
-- Malformed bags and overflowing counts are errors, not wrong counts.
SELECT tweetlake.bag_add(('{a,b}', '{1}')::tweetlake.bag, NULL);
SELECT tweetlake.bag_add(('{a}', '{2147483647}')::tweetlake.bag, ('{a}', '{1}')::tweetlake.bag);
SELECT tweetlake.bag_add(('{a}', '{1}')::tweetlake.bag, ('{a}', '{-2}')::tweetlake.bag);

-- Two batches; in the second, u1 comes back to #a (not a new member), brings #b (new),
-- and u2 joins #a; u3 tweets twice in one batch.  Hour 10:00 unless said otherwise.
CREATE FUNCTION pg_temp.t(id text, u text, tags text, mentions text DEFAULT '[]',
                          at text DEFAULT '2026-05-01T10:15:00Z', region text DEFAULT 'EU',
                          lang text DEFAULT 'en') RETURNS text LANGUAGE sql IMMUTABLE
    RETURN format('{"tweet_id":"%s","text":"t","created_at":"%s","hashtags":%s,"mentions":%s,'
                  '"region":"%s","language":"%s","user":{"user_id":"%s"}}',
                  id, at, tags, mentions, region, lang, u);
INSERT INTO bronze.tweets (raw) VALUES
    (pg_temp.t('b1', 'u1', '["a"]', '["m1"]')),
    (pg_temp.t('b2', 'u3', '["c"]', '["m1"]', region => 'US'));
INSERT INTO bronze.tweets (raw) VALUES
    (pg_temp.t('b3', 'u1', '["a","b"]', '["m1","m2"]')),
    (pg_temp.t('b4', 'u2', '["a"]', '[]', lang => 'de')),
    (pg_temp.t('b5', 'u3', '["c"]', '["m2"]')),
    (pg_temp.t('b6', 'u3', '[]', '[]', at => '2026-05-01T11:00:00Z'));
SELECT hour, hashtag, tweet_count, unique_users, unique_mentions
FROM gold.popular_hashtags_by_hour ORDER BY hour, hashtag;
SELECT hour, region, language, tweet_count, unique_users
FROM gold.tweet_volume_by_region ORDER BY hour, region, language;
SELECT hour, language, unique_users FROM gold.tweet_metrics_by_language ORDER BY 1, 2;
SELECT hour, total_tweets, unique_users FROM gold.hourly_activity_summary ORDER BY 1;
SELECT hour, user_id, tweets, hashtags, places, languages FROM tweetlake.user_hour ORDER BY 1, 2;
SELECT hour, mention, hashtags FROM tweetlake.mention_hour ORDER BY 1, 2;
SELECT gold_table FROM tweetlake.verify() WHERE missing + extra + differing > 0;
DROP EXTENSION tweetlake;
