-- The generator: deterministic, equal to its json-c reference, and realistic in the ways
-- the README promises.  Properties are checked as such (true/false with the figure),
-- not as hard-coded outputs.
CREATE EXTENSION tweetlake;

-- Same seed, same output; another seed, another output; ids unique within a call.
SELECT (SELECT md5(string_agg(t, E'\n')) FROM tweetlake.generate_tweets(2000, 42) t)
     = (SELECT md5(string_agg(t, E'\n')) FROM tweetlake.generate_tweets(2000, 42) t) AS same_seed_same_output,
       (SELECT md5(string_agg(t, E'\n')) FROM tweetlake.generate_tweets(2000, 42) t)
    <> (SELECT md5(string_agg(t, E'\n')) FROM tweetlake.generate_tweets(2000, 43) t) AS other_seed_other_output;

-- The fast serializer writes the same documents as json-c does.
SELECT count(*) AS documents, count(*) FILTER (WHERE a.j <> b.j) AS different
FROM (SELECT row_number() OVER () AS n, t::jsonb AS j FROM tweetlake.generate_tweets(3000, 5) t) a
JOIN (SELECT row_number() OVER () AS n, t::jsonb AS j FROM tweetlake.generate_tweets_jsonc(3000, 5) t) b USING (n);

-- 20,000 tweets over the default week, parsed as silver would.
CREATE TEMP TABLE g AS
SELECT t::jsonb AS j, p.* FROM tweetlake.generate_tweets(20000, 1) t CROSS JOIN LATERAL tweetlake.parse_tweet(t) p;

SELECT count(*) AS tweets, count(*) FILTER (WHERE error IS NOT NULL) AS not_silver,
       count(DISTINCT tweet_id) AS distinct_ids, max(text_length) <= 280 AS text_within_280
FROM g;

-- Types: about 65% originals, 20% retweets, 10% replies, 5% quotes.
SELECT tweet_type, round(100.0 * count(*) / sum(count(*)) OVER ()) AS pct
FROM g GROUP BY tweet_type ORDER BY pct DESC;

-- Retweets, replies and quotes refer to earlier tweets of the same stream.
SELECT count(*) AS references,
       count(*) FILTER (WHERE o.created_at <= r.created_at) AS to_earlier_tweets
FROM g r JOIN g o ON o.tweet_id = coalesce(r.original_tweet_id, r.reply_to_tweet_id, r.quoted_tweet_id);

-- Who tweets is Zipf-like: the 10 most active users write far more than 10 of 100,000 would.
SELECT share >= 5 AS top10_users_write_5pct_or_more
FROM (SELECT 100.0 * sum(n) / 20000 AS share
      FROM (SELECT count(*) AS n FROM g GROUP BY user_id ORDER BY n DESC LIMIT 10) t) s;

-- Hashtags too: the top tag is far above the median tag; about 15% of originals have none.
SELECT top >= 10 * median AS top_tag_10x_median, round(no_tags) BETWEEN 10 AND 20 AS about_15pct_untagged
FROM (SELECT max(n) AS top, percentile_disc(0.5) WITHIN GROUP (ORDER BY n) AS median
      FROM (SELECT h, count(*) AS n FROM g, unnest(hashtags) h GROUP BY h) c) t,
     (SELECT 100.0 * count(*) FILTER (WHERE cardinality(hashtags) = 0) / count(*) AS no_tags
      FROM g WHERE tweet_type = 'original') u;

-- Followers are heavy-tailed: the 99th percentile is many times the median.
SELECT p99 / p50 >= 20 AS heavy_tail, p50 BETWEEN 100 AND 2000 AS median_in_hundreds
FROM (SELECT percentile_disc(0.5) WITHIN GROUP (ORDER BY followers_count)::float AS p50,
             percentile_disc(0.99) WITHIN GROUP (ORDER BY followers_count)::float AS p99
      FROM (SELECT DISTINCT user_id, followers_count FROM g) u) p;

-- Engagement follows reach: log likes correlate with log followers.
SELECT corr(ln(followers_count + 1), ln(like_count + 1)) > 0.5 AS likes_follow_followers
FROM g WHERE tweet_type <> 'retweet';

-- Regions and languages are uneven, and a user keeps one region and language.
SELECT region, round(100.0 * count(*) / sum(count(*)) OVER ()) >= 1 AS present
FROM g GROUP BY region ORDER BY count(*) DESC;
SELECT count(DISTINCT language) >= 10 AS many_languages,
       max(share) >= 30 AS one_language_dominates
FROM (SELECT language, 100.0 * count(*) / 20000 AS share FROM g GROUP BY language) l;
SELECT count(*) AS users_with_two_regions_or_languages
FROM (SELECT user_id FROM g GROUP BY user_id
      HAVING count(DISTINCT region) > 1 OR count(DISTINCT language) > 1) x;

-- Time: within the week asked for, with a daily cycle (evenings UTC busier than mornings).
SELECT min(created_at) >= '2026-01-01 00:00+00' AND max(created_at) < '2026-01-08 00:00+00' AS within_span,
       count(*) FILTER (WHERE extract(hour FROM created_at AT TIME ZONE 'UTC') BETWEEN 16 AND 19)
       > 2 * count(*) FILTER (WHERE extract(hour FROM created_at AT TIME ZONE 'UTC') BETWEEN 4 AND 7) AS daily_cycle
FROM g;
SELECT min(created_at) >= '2030-06-01 00:00+00' AND max(created_at) < '2030-06-01 02:00+00' AS own_window
FROM tweetlake.generate_tweets(500, 9, '2030-06-01 00:00+00', '2 hours') t
CROSS JOIN LATERAL tweetlake.parse_tweet(t) p;

-- Words match the sentiment score.
SELECT avg(sentiment_score) FILTER (WHERE text ~ '\m(love|amazing|awesome|happy|brilliant)\M') > 0.3 AS positive_words_positive_score,
       avg(sentiment_score) FILTER (WHERE text ~ '\m(hate|terrible|awful|worst|disaster)\M') < -0.3 AS negative_words_negative_score
FROM g WHERE language = 'en' AND tweet_type <> 'retweet';

-- Hashtags and mentions appear in the text, as the message spells them.
SELECT count(*) AS tags_checked, bool_and(strpos(j->>'text', h) > 0) AS hashtags_in_text
FROM g, jsonb_array_elements_text(j->'hashtags') h;
SELECT count(*) AS mentions_checked, bool_and(strpos(j->>'text', '@' || m) > 0) AS mentions_in_text
FROM g, jsonb_array_elements_text(j->'mentions') m;

-- Multi-byte text occurs (Japanese words, emoji) and is counted in characters.
SELECT count(*) FILTER (WHERE octet_length(text) > text_length) > 0 AS multibyte_text FROM g;

-- generate_messages: with no updates or deletions it is generate_tweets, row for row, and
-- no message carries a key.
SELECT count(*) AS messages,
       count(*) FILTER (WHERE m.raw IS DISTINCT FROM t.t OR m.kafka_key IS NOT NULL) AS different
FROM (SELECT row_number() OVER () AS n, * FROM tweetlake.generate_messages(3000, 5)) m
FULL JOIN (SELECT row_number() OVER () AS n, t FROM tweetlake.generate_tweets(3000, 5) t) t USING (n);
SELECT count(*) AS messages,
       count(*) FILTER (WHERE m.raw IS DISTINCT FROM t.t OR m.kafka_key IS NOT NULL) AS different
FROM (SELECT row_number() OVER () AS n, *
      FROM tweetlake.generate_messages(500, 9, '2030-06-01 00:00+00', '2 hours', 0, 0)) m
FULL JOIN (SELECT row_number() OVER () AS n, t
           FROM tweetlake.generate_tweets(500, 9, '2030-06-01 00:00+00', '2 hours') t) t USING (n);

-- 5,000 messages, 20% updates and 2% tombstones asked for, in stream order, parsed as
-- silver would.  kind: a tombstone has a key and no document, an update an updated_at.
CREATE TEMP TABLE m AS
SELECT n, kafka_key, raw, raw::jsonb AS j,
       CASE WHEN raw IS NULL THEN 'tombstone' WHEN raw::jsonb ? 'updated_at' THEN 'update' ELSE 'new' END AS kind,
       coalesce(kafka_key, p.tweet_id) AS id, p.created_at, p.updated_at, p.error,
       p.retweet_count, p.like_count, p.reply_count, p.quote_count, p.total_engagement
FROM (SELECT row_number() OVER () AS n, *
      FROM tweetlake.generate_messages(5000, 3, '2026-01-01 00:00+00', '7 days', 0.2, 0.02)) g
LEFT JOIN LATERAL tweetlake.parse_tweet(g.raw) p ON g.raw IS NOT NULL;

-- The shares asked for (a figure out of tolerance is printed instead of "ok"); every
-- document becomes silver, and the new tweets' ids are unique.
SELECT count(*) AS messages,
       CASE WHEN abs(100.0 * count(*) FILTER (WHERE kind = 'update') / count(*) - 20) <= 2 THEN 'ok'
            ELSE round(100.0 * count(*) FILTER (WHERE kind = 'update') / count(*), 2) || '%' END AS updates_about_20pct,
       CASE WHEN abs(100.0 * count(*) FILTER (WHERE kind = 'tombstone') / count(*) - 2) <= 0.6 THEN 'ok'
            ELSE round(100.0 * count(*) FILTER (WHERE kind = 'tombstone') / count(*), 2) || '%' END AS tombstones_about_2pct,
       count(*) FILTER (WHERE kind <> 'tombstone' AND error IS NOT NULL) AS not_silver,
       count(*) FILTER (WHERE kind = 'new') - count(DISTINCT id) FILTER (WHERE kind = 'new') AS repeated_new_ids,
       count(*) FILTER (WHERE kind = 'tombstone' AND raw IS NOT NULL) AS tombstones_with_payload,
       count(*) FILTER (WHERE kind <> 'tombstone' AND kafka_key IS NOT NULL) AS documents_with_key
FROM m;

-- Every update and tombstone is of a tweet that came earlier in the stream, and nothing
-- follows a tweet's tombstone.
SELECT count(*) FILTER (WHERE NOT EXISTS (SELECT FROM m o WHERE o.kind = 'new' AND o.id = m.id AND o.n < m.n))
           AS without_earlier_tweet,
       count(*) FILTER (WHERE EXISTS (SELECT FROM m o WHERE o.kind = 'tombstone' AND o.id = m.id AND o.n < m.n))
           AS after_its_tombstone
FROM m WHERE kind <> 'new';

-- An update is the tweet's previous version with counts that did not go down, a later
-- updated_at, and otherwise the same document.
SELECT count(*) FILTER (WHERE retweet_count < prev_retweets OR like_count < prev_likes
                        OR reply_count < prev_replies OR quote_count < prev_quotes) AS counts_went_down,
       count(*) FILTER (WHERE NOT updated_at > coalesce(prev_updated_at, prev_created_at)) AS not_later,
       count(*) FILTER (WHERE j - '{updated_at,retweet_count,like_count,reply_count,quote_count,engagement_score,reach_estimate}'::text[]
                        <> prev_j - '{updated_at,retweet_count,like_count,reply_count,quote_count,engagement_score,reach_estimate}'::text[])
           AS other_fields_changed,
       sum(total_engagement) > sum(prev_total) AS engagement_grows,
       count(*) FILTER (WHERE (j->>'reach_estimate')::bigint < (prev_j->>'reach_estimate')::bigint) AS reach_went_down,
       count(*) FILTER (WHERE updated_at < '2026-01-01 00:00+00' OR updated_at >= '2026-01-08 00:00+00') AS outside_span
FROM (SELECT *, lag(retweet_count) OVER w AS prev_retweets, lag(like_count) OVER w AS prev_likes,
             lag(reply_count) OVER w AS prev_replies, lag(quote_count) OVER w AS prev_quotes,
             lag(updated_at) OVER w AS prev_updated_at, lag(created_at) OVER w AS prev_created_at,
             lag(j) OVER w AS prev_j, lag(total_engagement) OVER w AS prev_total
      FROM m WHERE kind <> 'tombstone'
      WINDOW w AS (PARTITION BY id ORDER BY n)) v
WHERE kind = 'update';

-- Same arguments, same messages; another seed or other shares, other messages.
SELECT (SELECT md5(string_agg(coalesce(kafka_key, '-') || coalesce(raw, '-'), E'\n'))
        FROM tweetlake.generate_messages(2000, 42, updates => 0.3, deletes => 0.1))
     = (SELECT md5(string_agg(coalesce(kafka_key, '-') || coalesce(raw, '-'), E'\n'))
        FROM tweetlake.generate_messages(2000, 42, updates => 0.3, deletes => 0.1)) AS same_args_same_output,
       (SELECT md5(string_agg(coalesce(kafka_key, '-') || coalesce(raw, '-'), E'\n'))
        FROM tweetlake.generate_messages(2000, 42, updates => 0.3, deletes => 0.1))
    <> (SELECT md5(string_agg(coalesce(kafka_key, '-') || coalesce(raw, '-'), E'\n'))
        FROM tweetlake.generate_messages(2000, 43, updates => 0.3, deletes => 0.1)) AS other_seed_other_output,
       (SELECT md5(string_agg(coalesce(kafka_key, '-') || coalesce(raw, '-'), E'\n'))
        FROM tweetlake.generate_messages(2000, 42, updates => 0.3, deletes => 0.1))
    <> (SELECT md5(string_agg(coalesce(kafka_key, '-') || coalesce(raw, '-'), E'\n'))
        FROM tweetlake.generate_messages(2000, 42, updates => 0.3, deletes => 0.2)) AS other_shares_other_output;

-- Only updates and tombstones asked for: the stream still has to start with a new tweet.
SELECT n, kafka_key IS NULL AND raw IS NOT NULL AND NOT raw::jsonb ? 'updated_at' AS new_tweet
FROM (SELECT row_number() OVER () AS n, * FROM tweetlake.generate_messages(3, 1, updates => 0.5, deletes => 0.5)) g
WHERE n = 1;

-- Shares outside [0, 1], or adding up to more than 1, are refused.
SELECT count(*) FROM tweetlake.generate_messages(10, 1, updates => 1.5);
SELECT count(*) FROM tweetlake.generate_messages(10, 1, updates => 0.6, deletes => 0.5);
SELECT count(*) FROM tweetlake.generate_messages(10, 1, deletes => -0.1);
SELECT count(*) FROM tweetlake.generate_messages(10, 1, updates => 'NaN');
SELECT tweetlake.load_generated(10, 1, updates => 2);

-- load_generated with updates and deletes inserts these messages into bronze, tombstones
-- as raw NULL with their kafka_key, in batches of tweetlake.batch_size.
SET tweetlake.batch_size = 700;
SELECT tweetlake.load_generated(3000, 8, '2026-01-01 00:00+00', '1 day', 0.2, 0.05) AS loaded;
RESET tweetlake.batch_size;
SELECT (SELECT count(*) FROM (SELECT kafka_key, raw FROM bronze.tweets
                              EXCEPT ALL
                              SELECT kafka_key, raw FROM tweetlake.generate_messages(3000, 8, '2026-01-01 00:00+00', '1 day', 0.2, 0.05)) x)
     + (SELECT count(*) FROM (SELECT kafka_key, raw FROM tweetlake.generate_messages(3000, 8, '2026-01-01 00:00+00', '1 day', 0.2, 0.05)
                              EXCEPT ALL
                              SELECT kafka_key, raw FROM bronze.tweets) y) AS rows_not_as_generated,
       count(*) FILTER (WHERE raw IS NULL AND kafka_key IS NOT NULL) > 0 AS has_tombstones
FROM bronze.tweets;

DROP EXTENSION tweetlake;
