-- Silver derivations on hand-written messages: what parse_tweet makes of each field.
CREATE EXTENSION tweetlake;
SET timezone = 'America/New_York';   -- message times must not depend on the session zone

-- A complete original tweet: every field typed, tags normalised, derived columns.
SELECT p.tweet_id, p.text, p.created_at AT TIME ZONE 'UTC' AS created_utc, p.tweet_type,
       p.language, p.region, p.hashtags, p.mentions, p.retweet_count, p.like_count,
       p.reply_count, p.quote_count, p.is_retweet, p.is_reply, p.is_quote, p.has_media,
       p.has_url, p.sentiment_score, p.engagement_score, p.reach_estimate, p.text_length,
       p.sentiment_category, p.total_engagement, p.error
FROM tweetlake.parse_tweet($${"tweet_id": "a-1", "text": "Loving the #WorldCup with @Messi!",
  "created_at": "2026-03-01T18:30:15.250Z", "tweet_type": "original", "language": "en",
  "region": "Europe", "hashtags": ["#WorldCup", "#worldcup", "#Football"], "mentions": ["@Messi", "fifa"],
  "retweet_count": 5, "like_count": 40, "reply_count": 3, "quote_count": 2, "is_retweet": false,
  "is_reply": false, "is_quote": false, "has_media": true, "has_url": false,
  "sentiment_score": 0.734, "engagement_score": 1.25, "reach_estimate": 12000,
  "source": "Twitter for iPhone", "geo": {"lat": 1.5}}$$) p \gx

-- The user object, flattened.
SELECT p.user_id, p.username, p.display_name, p.followers_count, p.following_count, p.verified,
       p.user_created_at AT TIME ZONE 'UTC' AS user_created_utc, p.user_location, p.user_description
FROM tweetlake.parse_tweet($${"tweet_id": "a-2", "text": "hi", "created_at": "2026-03-01T00:00:00Z",
  "user": {"user_id": "987", "username": "ana_b", "display_name": "Ana Bélanger",
           "followers_count": 150000, "following_count": 321, "verified": true,
           "created_at": "2012-06-30T08:00:00Z", "location": "Montréal", "description": "Café & code",
           "favourite_colour": "green"}}$$) p \gx

-- Numeric user ids are read as text; so is a bare id for a referenced author.
SELECT p.user_id, p.reply_to_tweet_id, p.reply_to_user_id, p.tweet_type
FROM tweetlake.parse_tweet($${"tweet_id": "a-3", "text": "@ana_b same", "created_at": "2026-03-01T00:00:00Z",
  "tweet_type": "reply", "is_reply": true, "reply_to_tweet_id": "a-2", "reply_to_user": "987",
  "user": {"user_id": 1234567890123, "username": "x"}}$$) p;

-- References of retweets and quotes.
SELECT p.tweet_type, p.original_tweet_id, p.original_user_id, p.quoted_tweet_id, p.quoted_user_id, p.quoted_text
FROM (VALUES
  ($${"tweet_id": "r", "text": "RT @ana_b: hi", "created_at": "2026-03-01T00:00:00Z", "tweet_type": "retweet",
      "original_tweet_id": "a-2", "original_user": {"user_id": "987", "username": "ana_b"}}$$),
  ($${"tweet_id": "q", "text": "so true", "created_at": "2026-03-01T00:00:00Z", "tweet_type": "quote",
      "quoted_tweet_id": "a-2", "quoted_user": {"user_id": "987", "username": "ana_b"}, "quoted_text": "hi"}$$)
) v(m) CROSS JOIN LATERAL tweetlake.parse_tweet(v.m) p;

-- Timestamps: naive means UTC; offsets are applied; fractions kept to the microsecond.
SELECT ts, (tweetlake.parse_tweet(format('{"tweet_id":"t","text":"x","created_at":"%s"}', ts))).created_at
           AT TIME ZONE 'UTC' AS utc
FROM (VALUES ('2026-03-01T12:00:00'), ('2026-03-01 12:00:00'), ('2026-03-01T12:00:00Z'),
             ('2026-03-01T12:00:00+05:30'), ('2026-03-01T12:00:00-0800'), ('2026-03-01T12:00:00+02'),
             ('2026-03-01T12:00:00.1234567Z'), ('2026-03-01T23:59:59.999999-00:01'), ('2024-02-29')) v(ts);

-- Sentiment categories at and around the +-0.1 boundaries; null when the score is missing.
SELECT s, (tweetlake.parse_tweet(format('{"tweet_id":"t","text":"x","created_at":"2026-03-01T00:00:00Z"%s}',
           coalesce(',"sentiment_score":' || s, '')))).sentiment_category
FROM (VALUES ('0.1'), ('0.1001'), ('-0.1'), ('-0.1001'), ('0'), ('1'), ('-1'), (NULL)) v(s);

-- Emoji and other multi-byte text: length counts characters, not bytes.
-- Tags are lower-cased the same way in any database locale (this one is C).
SELECT p.text, p.text_length, octet_length(p.text) AS bytes, p.hashtags
FROM tweetlake.parse_tweet($${"tweet_id": "e", "text": "🔥🔥 café 日本語 #Été",
  "created_at": "2026-03-01T00:00:00Z", "hashtags": ["#Été", "#ÉTÉ", "#日本", "#ΣΟΦΙΑ"]}$$) p;

-- Empty, blank and marker-only hashtags/mentions carry nothing; empty arrays are kept empty.
SELECT p.hashtags, p.mentions, cardinality(p.hashtags) AS n_tags
FROM tweetlake.parse_tweet($${"tweet_id": "h", "text": "x", "created_at": "2026-03-01T00:00:00Z",
  "hashtags": ["", "#", "  #AI  ", "##ai"], "mentions": ["@", ""]}$$) p;
SELECT p.hashtags, p.mentions
FROM tweetlake.parse_tweet($${"tweet_id": "h2", "text": "x", "created_at": "2026-03-01T00:00:00Z"}$$) p;

-- Zero and missing engagement: total is 0, not NULL; null optional fields are fine.
SELECT p.total_engagement, p.like_count, p.retweet_count, p.region, p.error
FROM tweetlake.parse_tweet($${"tweet_id": "z", "text": "x", "created_at": "2026-03-01T00:00:00Z",
  "retweet_count": 0, "like_count": null, "region": null, "user": null}$$) p;

-- Integral floats are accepted as counts (12.0), fractional ones are not.
SELECT (tweetlake.parse_tweet($${"tweet_id": "f", "text": "x", "created_at": "2026-03-01T00:00:00Z", "like_count": 12.0}$$)).like_count;

-- Key names are read as json-c reads them, escapes and all, by parse_tweet and by
-- tweet_id_of alike; -0 is stored as 0; integer ids are taken up to 2^63 - 1.
SELECT p.tweet_id, tweetlake.tweet_id_of(v.m) AS bronze_id, p.sentiment_score::text AS sentiment,
       p.engagement_score::text AS engagement, p.like_count, p.user_id, p.error
FROM (VALUES ($${"tw\u0065et_id": "p-\u00e9\ud83d\ude00", "text": "x", "created_at": "2026-03-01T00:00:00Z",
  "sentiment_score": -0.0, "engagement_score": -0, "like_count": 7.0,
  "user": {"user\u005fid": 9223372036854775807}}$$)) v(m) CROSS JOIN LATERAL tweetlake.parse_tweet(v.m) p;

-- Region, language and tweet type are gold key columns: at most 64 bytes (README).
SELECT octet_length(p.region) AS region, octet_length(p.language) AS language, p.error
FROM (VALUES (64), (65)) v(n)
CROSS JOIN LATERAL tweetlake.parse_tweet(format('{"tweet_id":"k","text":"x","created_at":"2026-03-01T00:00:00Z","region":"%s","language":"%s"}',
                                                repeat('é', v.n / 2) || repeat('r', v.n % 2), repeat('l', v.n))) p;

-- The derived gold grain.
SELECT tweetlake.utc_hour('2026-03-01 18:59:59.999+00'), tweetlake.utc_day('2026-03-01 23:30-05'),
       tweetlake.utc_hour('1999-12-31 23:30+00'), tweetlake.utc_day('1999-12-31 23:30+00');

-- Through bronze: the silver row matches the message, and silver.tweets_view's levels.
INSERT INTO bronze.tweets (raw) VALUES
  ($${"tweet_id": "v1", "text": "big", "created_at": "2026-03-01T00:00:00Z", "like_count": 1001,
      "user": {"user_id": "1", "followers_count": 100000}}$$),
  ($${"tweet_id": "v2", "text": "mid", "created_at": "2026-03-01T00:00:00Z", "like_count": 101,
      "user": {"user_id": "2", "followers_count": 99999}}$$),
  ($${"tweet_id": "v3", "text": "small", "created_at": "2026-03-01T00:00:00Z", "like_count": 100,
      "user": {"user_id": "3", "followers_count": 9999}}$$),
  ($${"tweet_id": "v4", "text": "edge", "created_at": "2026-03-01T00:00:00Z", "like_count": 1000,
      "user": {"user_id": "4", "followers_count": 10000}}$$);
SELECT tweet_id, followers_count, total_engagement, influence_level, engagement_level
FROM silver.tweets_view ORDER BY tweet_id;
SELECT b.tweet_id, b.kafka_topic, b.partition_date = (b.ingested_at AT TIME ZONE 'UTC')::date AS date_ok
FROM bronze.tweets b ORDER BY 1;

DROP EXTENSION tweetlake;
