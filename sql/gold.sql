-- Gold on a small data set whose values were worked out by hand (see the comments), loaded
-- in two batches so the incremental path has to add to existing rows and move the top
-- hashtag of an hour.  Then the same answers from rebuild_gold().
--
-- hour 10:00 UTC                                hour 11:00 UTC
--  t1 u1 en Europe   #a #b  @x     +0.5  eng 12   t5 u2 en Europe   -      -    null eng 3
--  t2 u2 en Europe   #a     @x @y  -0.5  eng 1    t6 u3 ja Asia     #c #a  @x   -0.2 eng 7
--  t3 u1 es Europe   #b     -       0.0  eng 0    t8 -- en (none)   #c     -    +0.1 eng 0
--  t4 u3 en N.Amer.  #a     @z     +0.2  eng 160  t7 = t1's id again: ignored
CREATE EXTENSION tweetlake;

-- batch 1: t1-t4 and t6
INSERT INTO bronze.tweets (raw) VALUES
 ('{"tweet_id":"t1","text":"one two","created_at":"2026-05-01T10:05:00Z","language":"en","region":"Europe",
    "hashtags":["#A","#b"],"mentions":["x"],"sentiment_score":0.5,"tweet_type":"original","like_count":10,"retweet_count":2,
    "user":{"user_id":"u1","username":"alice","followers_count":100}}'),
 ('{"tweet_id":"t2","text":"three","created_at":"2026-05-01T10:20:00Z","language":"en","region":"Europe",
    "hashtags":["#a"],"mentions":["x","@Y"],"sentiment_score":-0.5,"tweet_type":"original","like_count":1,
    "user":{"user_id":"u2","username":"bob","followers_count":5000}}'),
 ('{"tweet_id":"t3","text":"cuatro","created_at":"2026-05-01T10:40:00Z","language":"es","region":"Europe",
    "hashtags":["#B"],"sentiment_score":0,"user":{"user_id":"u1","username":"alice","followers_count":101}}'),
 ('{"tweet_id":"t4","text":"five six seven","created_at":"2026-05-01T10:59:59.999Z","language":"en",
    "region":"North America","hashtags":["#a"],"mentions":["z"],"sentiment_score":0.2,"like_count":100,
    "retweet_count":50,"reply_count":5,"quote_count":5,"tweet_type":"quote","user":{"user_id":"u3","username":"carol","followers_count":200000}}'),
 ('{"tweet_id":"t6","text":"八","created_at":"2026-05-01T11:30:00Z","language":"ja","region":"Asia",
    "hashtags":["#c","#a"],"mentions":["x"],"sentiment_score":-0.2,"tweet_type":"reply","like_count":7,
    "user":{"user_id":"u3","username":"carol","followers_count":200000}}');

-- after batch 1, hour 11 has only #a and #c once each: #a is first alphabetically
SELECT hour, top_hashtag, top_hashtag_count, top_region FROM gold.hourly_activity_summary ORDER BY hour;

-- batch 2: t5, t7 (duplicate id of t1), t8 -> #c becomes the top of hour 11
INSERT INTO bronze.tweets (raw) VALUES
 ('{"tweet_id":"t5","text":"nine ten","created_at":"2026-05-01T11:00:00Z","language":"en","region":"Europe",
    "like_count":3,"user":{"user_id":"u2","username":"bob","followers_count":5100}}'),
 ('{"tweet_id":"t1","text":"a different text, same id","created_at":"2026-05-01T11:05:00Z","language":"fr",
    "hashtags":["#a"],"like_count":999,"user":{"user_id":"u9"}}'),
 ('{"tweet_id":"t8","text":"eleven","created_at":"2026-05-01T11:45:00Z","language":"en",
    "hashtags":["#c"],"sentiment_score":0.1}');

SELECT count(*) AS silver_rows, count(*) FILTER (WHERE text = 'one two') AS t1_kept_first FROM silver.tweets;

-- hour 10: #a in t1 t2 t4 (users u1 u2 u3; mentions x y z; sentiment (0.5-0.5+0.2)/3; eng 173)
--          #b in t1 t3 (user u1; mention x; (0.5+0)/2; eng 12)
-- hour 11: #a in t6; #c in t6 t8 (t8 has no user; mention x; (-0.2+0.1)/2; eng 7)
SELECT hour, hashtag, tweet_count, unique_users, unique_mentions, round(avg_sentiment::numeric, 6) AS avg_sentiment,
       total_engagement, round(avg_engagement::numeric, 4) AS avg_engagement
FROM gold.popular_hashtags_by_hour ORDER BY hour, hashtag;

-- u1: t1 t3 (eng 12, sentiment (0.5+0)/2, followers max(100,101)); u2: t2 t5 (t5 has no score);
-- u3: t4 t6 (eng 167, (0.2-0.2)/2)
SELECT day, user_id, username, tweets_count, followers_count, total_engagement, avg_sentiment
FROM gold.active_users_by_day ORDER BY day, user_id;

-- each user over all time (one day here), by engagement: u3 167 (followers 200000),
-- u1 12 (101), u2 1+3 = 4 (max(5000, 5100))
SELECT user_id, username, tweets_count, followers_count, total_engagement, first_day, last_day
FROM gold.user_engagement ORDER BY total_engagement DESC;

SELECT hour, region, language, tweet_count, unique_users, avg_sentiment, positive_count,
       negative_count, neutral_count, total_engagement
FROM gold.tweet_volume_by_region ORDER BY hour, region, language;

-- lengths: "one two" 7, "three" 5, "five six seven" 14 -> (7+5+14)/3; "nine ten" 8, "eleven" 6
SELECT hour, language, tweet_count, round(avg_tweet_length::numeric, 4) AS avg_tweet_length,
       round(avg_sentiment::numeric, 6) AS avg_sentiment, round(avg_engagement::numeric, 4) AS avg_engagement,
       unique_users
FROM gold.tweet_metrics_by_language ORDER BY hour, language;

-- hour 10: 4 tweets, users u1 u2 u3, (0.5-0.5+0+0.2)/4, eng 173, top #a (3), Europe (3 tweets)
-- hour 11: 3 tweets, users u2 u3, (-0.2+0.1)/2, eng 10, top #c (2), regions 1/1/1 -> Asia
SELECT hour, total_tweets, unique_users, round(avg_sentiment::numeric, 6) AS avg_sentiment,
       total_engagement, top_hashtag, top_region, positive_count, negative_count, neutral_count
FROM gold.hourly_activity_summary ORDER BY hour;

-- tweet types by influence (followers >= 100k High, >= 10k Medium, else Low; no user: Low)
-- hour 10: original/Low t1 t2 (eng 13, (0.5-0.5)/2); unknown/Low t3; quote/High t4 (eng 160)
-- hour 11: reply/High t6 (eng 7); unknown/Low t5 t8 (eng 3, only t8 scored: 0.1)
SELECT hour, tweet_type, influence_level, tweet_count, total_engagement, avg_engagement,
       viral_count, round(avg_sentiment::numeric, 6) AS avg_sentiment
FROM gold.engagement_by_type_hour ORDER BY hour, tweet_type, influence_level;
SELECT sentiment_category, sum(tweet_count) FROM gold.sentiment_by_hour_view GROUP BY 1 ORDER BY 1;

-- ranking views
SELECT hour, hashtag, rank_in_hour FROM gold.popular_hashtags_view ORDER BY hour, rank_in_hour, hashtag;
SELECT day, username, rank_in_day FROM gold.active_users_view ORDER BY rank_in_day, username;
SELECT hour, region, language, rank_in_hour FROM gold.regional_activity_view ORDER BY hour, rank_in_hour, region;
SELECT hour, language, rank_in_hour FROM gold.language_metrics_view ORDER BY hour, rank_in_hour;

-- incremental = full recompute
SELECT * FROM tweetlake.verify();
CREATE TEMP TABLE before AS SELECT * FROM gold.hourly_activity_summary;
SELECT tweetlake.rebuild_gold();
SELECT count(*) AS summary_rows_changed_by_rebuild
FROM (SELECT * FROM before EXCEPT SELECT * FROM gold.hourly_activity_summary) d;
SELECT * FROM tweetlake.verify();

-- the pipeline's own queries keep working
SELECT hashtag, SUM(total_engagement) FROM gold.popular_hashtags_by_hour GROUP BY hashtag ORDER BY 1;
SELECT region, SUM(tweet_count) FROM gold.tweet_volume_by_region GROUP BY region ORDER BY 1;

-- trending: over the last 24 hours only; data from 2026-05-01 is not "now"
SELECT count(*) AS trending_old FROM gold.trending_hashtags_view;
INSERT INTO bronze.tweets (raw)
SELECT format('{"tweet_id":"now-%s","text":"x","created_at":"%s","hashtags":["#%s"]}',
              i, to_char((now() - make_interval(hours => h)) AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'), tag)
FROM (VALUES (1, 0, 'hot'), (2, 1, 'hot'), (3, 2, 'hot'), (4, 20, 'old'), (5, 21, 'old'), (6, 30, 'gone')) v(i, h, tag);
SELECT hashtag, tweet_count, active_hours, momentum, trend_rank FROM gold.trending_hashtags_view ORDER BY trend_rank, hashtag;

DROP EXTENSION tweetlake;
