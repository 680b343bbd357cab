/*
 * tweetlake 0.2.0 -> 0.3.0 (CHANGELOG.md): the distinct counts kept per member.
 *   - the five distinct-count sets (tweetlake.hashtag_users, hashtag_mentions, region_users,
 *     language_users, hour_users: one row per (group, member)) become two membership tables
 *     keyed by the member, tweetlake.user_hour and tweetlake.mention_hour, whose rows hold
 *     the member's groups as counted sets (type tweetlake.bag); they are filled here from
 *     silver, so gold and its membership stay as they were
 *   - the batch trigger updates each (hour, member) once per batch
 * Each definition here is the same text as in schema/sources/, which a fresh install is
 * built from; t/050_upgrade.pl checks that both give the same schema.
 */
\echo Use "ALTER EXTENSION tweetlake UPDATE TO '0.3.0'" to load this file. \quit

SET LOCAL search_path = pg_catalog, pg_temp;

-- No batch may add to silver between the fill of the new membership tables below and the
-- new trigger: one already running finishes first, the next waits for this update (and,
-- if it was planned with the old trigger, fails on the dropped sets and is retried).
LOCK TABLE silver.tweets IN SHARE MODE;

-- A counted set: keys (sorted bytewise, distinct) and how many rows brought each.
CREATE TYPE tweetlake.bag AS (keys text[], n integer[]);
COMMENT ON TYPE tweetlake.bag IS
    'counted set: sorted distinct keys with a count each (membership of the distinct counts)';

-- The keys of both with their counts summed (keys whose sum is 0 are dropped).
CREATE FUNCTION tweetlake.bag_add(tweetlake.bag, tweetlake.bag) RETURNS tweetlake.bag
    AS 'MODULE_PATHNAME', 'tweetlake_bag_add' LANGUAGE C IMMUTABLE PARALLEL SAFE;
-- The keys of added whose count in after is the count added: the keys added brought in.
CREATE FUNCTION tweetlake.bag_new(after tweetlake.bag, added tweetlake.bag) RETURNS text[]
    AS 'MODULE_PATHNAME', 'tweetlake_bag_new' LANGUAGE C IMMUTABLE PARALLEL SAFE;

CREATE FUNCTION tweetlake.bag_agg_key(internal, text) RETURNS internal
    AS 'MODULE_PATHNAME', 'tweetlake_bag_agg_key' LANGUAGE C IMMUTABLE PARALLEL SAFE;
CREATE FUNCTION tweetlake.bag_agg_keys(internal, text[]) RETURNS internal
    AS 'MODULE_PATHNAME', 'tweetlake_bag_agg_keys' LANGUAGE C IMMUTABLE PARALLEL SAFE;
CREATE FUNCTION tweetlake.bag_agg_final(internal) RETURNS tweetlake.bag
    AS 'MODULE_PATHNAME', 'tweetlake_bag_agg_final' LANGUAGE C IMMUTABLE PARALLEL SAFE;
-- The bag of the keys aggregated (each element, for arrays); no keys: the empty bag.
CREATE AGGREGATE tweetlake.bag_agg(text) (
    SFUNC = tweetlake.bag_agg_key, STYPE = internal,
    FINALFUNC = tweetlake.bag_agg_final, FINALFUNC_MODIFY = READ_WRITE);
CREATE AGGREGATE tweetlake.bag_agg(text[]) (
    SFUNC = tweetlake.bag_agg_keys, STYPE = internal,
    FINALFUNC = tweetlake.bag_agg_final, FINALFUNC_MODIFY = READ_WRITE);

-- One key for a (region, language) pair, unambiguous whatever the two contain.
CREATE FUNCTION tweetlake.pair_key(a text, b text) RETURNS text
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    RETURN length(a)::text || ':' || a || b;

-- fillfactor: the rows are updated in place by later batches of the same hour (HOT).
CREATE TABLE tweetlake.user_hour (
    hour      timestamptz NOT NULL,
    user_id   text COLLATE "C" NOT NULL,
    tweets    bigint NOT NULL,
    hashtags  tweetlake.bag NOT NULL,
    places    tweetlake.bag NOT NULL,
    languages tweetlake.bag NOT NULL,
    PRIMARY KEY (hour, user_id)
) WITH (fillfactor = 70);
COMMENT ON TABLE tweetlake.user_hour IS
    'per user and hour: tweets, and the hashtags, (region, language) pairs (tweetlake.pair_key) and languages tweeted with, counted';

CREATE TABLE tweetlake.mention_hour (
    hour     timestamptz NOT NULL,
    mention  text COLLATE "C" NOT NULL,
    hashtags tweetlake.bag NOT NULL,
    PRIMARY KEY (hour, mention)
) WITH (fillfactor = 70);
COMMENT ON TABLE tweetlake.mention_hour IS
    'per mentioned account and hour: the hashtags of the tweets that mention it, counted';

CREATE VIEW tweetlake.recompute_user_hour AS
SELECT hour, user_id COLLATE "C" AS user_id, count(*) AS tweets,
       tweetlake.bag_agg(hashtags) AS hashtags,
       tweetlake.bag_agg(tweetlake.pair_key(region, language)) AS places,
       tweetlake.bag_agg(language) AS languages
FROM tweetlake.silver_facts
WHERE user_id IS NOT NULL
GROUP BY hour, user_id;

CREATE VIEW tweetlake.recompute_mention_hour AS
SELECT f.hour, m.mention COLLATE "C" AS mention, tweetlake.bag_agg(f.hashtags) AS hashtags
FROM tweetlake.silver_facts f, unnest(f.mentions) AS m(mention)
WHERE cardinality(f.hashtags) > 0
GROUP BY f.hour, m.mention;

-- The membership of everything silver holds (the batch trigger keeps it from here on).
INSERT INTO tweetlake.user_hour SELECT * FROM tweetlake.recompute_user_hour;
INSERT INTO tweetlake.mention_hour SELECT * FROM tweetlake.recompute_mention_hour;
SELECT pg_catalog.pg_extension_config_dump('tweetlake.user_hour', '');
SELECT pg_catalog.pg_extension_config_dump('tweetlake.mention_hour', '');

-- SECURITY DEFINER: a role that may INSERT into bronze.tweets (a loader, the consumers'
-- tweetlake_worker) needs no right on silver, gold or the sets, so it cannot write them
-- directly; the pinned search_path keeps the owner's rights from being borrowed.
CREATE OR REPLACE FUNCTION tweetlake.process_bronze_batch() RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET work_mem = '64MB'
AS $$
BEGIN
    /*
     * parsed      every new bronze row through parse_tweet (C), with its raw text only when
     *             it failed (the dead letter keeps it; good rows need it no more)
     * work_mem    a batch's CTEs (~1.5 KB a tweet, 10k tweets) stay in memory
     * rejected    -> bronze.dead_letters with the reason
     * s           -> silver.tweets; ON CONFLICT skips tweet_ids already there, and RETURNING
     *                hands on only the rows really added, so a duplicate is never counted
     * uh, mh      the batch's bags merged into tweetlake.user_hour / mention_hour, one row
     *             per (hour, member); *_new are the groups that gained a member: the keys
     *             whose count the row holds now equals what the batch brought (bag_new)
     * g_*         gold upserts: sums and counts add, averages are recomputed from them
     * top_*       the hour's top hashtag/region can only change to one this batch touched,
     *             so it is compared against the stored top (ties: alphabetical)
     * ORDER BY    every insert/upsert feeds its rows in key order, so concurrent batches
     *             (several consumers) take row locks in one order and do not deadlock
     */
    WITH parsed AS MATERIALIZED (
        SELECT CASE WHEN p.error IS NOT NULL THEN b.raw END AS raw,
               b.kafka_topic, b.kafka_partition, b.kafka_offset, p.*
        FROM new_rows b CROSS JOIN LATERAL tweetlake.parse_tweet(b.raw) p
    ), rejected AS (
        INSERT INTO bronze.dead_letters (raw, reason, tweet_id, kafka_topic, kafka_partition, kafka_offset)
        SELECT convert_to(raw, 'UTF8'), error, tweet_id, kafka_topic, kafka_partition, kafka_offset
        FROM parsed WHERE error IS NOT NULL
    ), s AS (
        INSERT INTO silver.tweets (
            tweet_id, text, created_at, tweet_type, language, region, hashtags, mentions,
            retweet_count, like_count, reply_count, quote_count, is_retweet, is_reply, is_quote,
            has_media, has_url, sentiment_score, engagement_score, reach_estimate, user_id,
            username, display_name, followers_count, following_count, verified, user_created_at,
            user_location, user_description, original_tweet_id, original_user_id,
            reply_to_tweet_id, reply_to_user_id, quoted_tweet_id, quoted_user_id, quoted_text,
            text_length, sentiment_category, total_engagement)
        SELECT
            tweet_id, text, created_at, tweet_type, language, region, hashtags, mentions,
            retweet_count, like_count, reply_count, quote_count, is_retweet, is_reply, is_quote,
            has_media, has_url, sentiment_score, engagement_score, reach_estimate, user_id,
            username, display_name, followers_count, following_count, verified, user_created_at,
            user_location, user_description, original_tweet_id, original_user_id,
            reply_to_tweet_id, reply_to_user_id, quoted_tweet_id, quoted_user_id, quoted_text,
            text_length, sentiment_category, total_engagement
        FROM parsed WHERE error IS NULL
        ON CONFLICT (tweet_id) DO NOTHING
        RETURNING tweetlake.utc_hour(created_at) AS hour, tweetlake.utc_day(created_at) AS day,
                  coalesce(region, 'unknown') AS region, coalesce(language, 'unknown') AS language,
                  user_id, username, followers_count, hashtags, mentions, sentiment_score,
                  sentiment_score::numeric AS sentiment, sentiment_category, total_engagement,
                  text_length, coalesce(tweet_type, 'unknown') AS tweet_type
    ), tags AS MATERIALIZED (
        SELECT s.hour, h.hashtag, s.sentiment, s.total_engagement
        FROM s CROSS JOIN LATERAL unnest(s.hashtags) AS h(hashtag)
    ), uh_in AS MATERIALIZED (
        SELECT hour, user_id COLLATE "C" AS user_id, count(*) AS tweets,
               tweetlake.bag_agg(hashtags) AS hashtags,
               tweetlake.bag_agg(tweetlake.pair_key(region, language)) AS places,
               tweetlake.bag_agg(language) AS languages
        FROM s WHERE user_id IS NOT NULL
        GROUP BY 1, 2
    ), uh AS (
        INSERT INTO tweetlake.user_hour AS u (hour, user_id, tweets, hashtags, places, languages)
        SELECT hour, user_id, tweets, hashtags, places, languages FROM uh_in
        ORDER BY hour, user_id
        ON CONFLICT (hour, user_id) DO UPDATE SET
            tweets    = u.tweets + excluded.tweets,
            hashtags  = tweetlake.bag_add(u.hashtags, excluded.hashtags),
            places    = tweetlake.bag_add(u.places, excluded.places),
            languages = tweetlake.bag_add(u.languages, excluded.languages)
        RETURNING hour, user_id, tweets, hashtags, places, languages
    ), uh_new AS MATERIALIZED (
        SELECT r.hour, r.tweets = i.tweets AS new_in_hour,
               tweetlake.bag_new(r.hashtags, i.hashtags) AS hashtags,
               tweetlake.bag_new(r.places, i.places) AS places,
               tweetlake.bag_new(r.languages, i.languages) AS languages
        FROM uh r JOIN uh_in i ON i.hour = r.hour AND i.user_id = r.user_id
    ), mh_in AS MATERIALIZED (
        SELECT s.hour, m.mention COLLATE "C" AS mention, tweetlake.bag_agg(s.hashtags) AS hashtags
        FROM s CROSS JOIN LATERAL unnest(s.mentions) AS m(mention)
        WHERE cardinality(s.hashtags) > 0
        GROUP BY 1, 2
    ), mh AS (
        INSERT INTO tweetlake.mention_hour AS u (hour, mention, hashtags)
        SELECT hour, mention, hashtags FROM mh_in
        ORDER BY hour, mention
        ON CONFLICT (hour, mention) DO UPDATE SET
            hashtags = tweetlake.bag_add(u.hashtags, excluded.hashtags)
        RETURNING hour, mention, hashtags
    ), tag_users_new AS (
        SELECT n.hour, k.hashtag FROM uh_new n CROSS JOIN LATERAL unnest(n.hashtags) AS k(hashtag)
    ), tag_mentions_new AS (
        SELECT r.hour, k.hashtag
        FROM mh r JOIN mh_in i ON i.hour = r.hour AND i.mention = r.mention
        CROSS JOIN LATERAL unnest(tweetlake.bag_new(r.hashtags, i.hashtags)) AS k(hashtag)
    ), g_tags AS (
        INSERT INTO gold.popular_hashtags_by_hour AS g (
            hour, hashtag, tweet_count, unique_users, unique_mentions, avg_sentiment,
            total_engagement, avg_engagement, sentiment_sum, sentiment_n)
        SELECT a.hour, a.hashtag, a.n, coalesce(u.n, 0), coalesce(m.n, 0),
               tweetlake.exact_avg(a.ssum, a.sn), a.eng, a.eng::double precision / a.n, a.ssum, a.sn
        FROM (SELECT hour, hashtag, count(*) AS n, sum(total_engagement) AS eng,
                     coalesce(sum(sentiment), 0) AS ssum, count(sentiment) AS sn
              FROM tags GROUP BY hour, hashtag) a
        LEFT JOIN (SELECT hour, hashtag, count(*) AS n FROM tag_users_new GROUP BY hour, hashtag) u
               USING (hour, hashtag)
        LEFT JOIN (SELECT hour, hashtag, count(*) AS n FROM tag_mentions_new GROUP BY hour, hashtag) m
               USING (hour, hashtag)
        ORDER BY a.hour, a.hashtag
        ON CONFLICT (hour, hashtag) DO UPDATE SET
            tweet_count      = g.tweet_count + excluded.tweet_count,
            unique_users     = g.unique_users + excluded.unique_users,
            unique_mentions  = g.unique_mentions + excluded.unique_mentions,
            total_engagement = g.total_engagement + excluded.total_engagement,
            sentiment_sum    = g.sentiment_sum + excluded.sentiment_sum,
            sentiment_n      = g.sentiment_n + excluded.sentiment_n,
            avg_sentiment    = tweetlake.exact_avg(g.sentiment_sum + excluded.sentiment_sum,
                                                   g.sentiment_n + excluded.sentiment_n),
            avg_engagement   = (g.total_engagement + excluded.total_engagement)::double precision
                               / (g.tweet_count + excluded.tweet_count)
        RETURNING hour, hashtag, tweet_count
    ), g_users AS (
        INSERT INTO gold.active_users_by_day AS g (
            day, user_id, username, tweets_count, followers_count, total_engagement,
            avg_sentiment, sentiment_sum, sentiment_n)
        SELECT day, user_id, max(username), count(*), max(followers_count), sum(total_engagement),
               tweetlake.exact_avg(coalesce(sum(sentiment), 0), count(sentiment)),
               coalesce(sum(sentiment), 0), count(sentiment)
        FROM s WHERE user_id IS NOT NULL
        GROUP BY day, user_id
        ORDER BY day, user_id
        ON CONFLICT (day, user_id) DO UPDATE SET
            username         = greatest(g.username, excluded.username),
            tweets_count     = g.tweets_count + excluded.tweets_count,
            followers_count  = greatest(g.followers_count, excluded.followers_count),
            total_engagement = g.total_engagement + excluded.total_engagement,
            sentiment_sum    = g.sentiment_sum + excluded.sentiment_sum,
            sentiment_n      = g.sentiment_n + excluded.sentiment_n,
            avg_sentiment    = tweetlake.exact_avg(g.sentiment_sum + excluded.sentiment_sum,
                                                   g.sentiment_n + excluded.sentiment_n)
    ), g_user_totals AS (
        INSERT INTO gold.user_engagement AS g (
            user_id, username, tweets_count, followers_count, total_engagement, first_day, last_day)
        SELECT user_id, max(username), count(*), max(followers_count), sum(total_engagement),
               min(day), max(day)
        FROM s WHERE user_id IS NOT NULL
        GROUP BY user_id
        ORDER BY user_id
        ON CONFLICT (user_id) DO UPDATE SET
            username         = greatest(g.username, excluded.username),
            tweets_count     = g.tweets_count + excluded.tweets_count,
            followers_count  = greatest(g.followers_count, excluded.followers_count),
            total_engagement = g.total_engagement + excluded.total_engagement,
            first_day        = least(g.first_day, excluded.first_day),
            last_day         = greatest(g.last_day, excluded.last_day)
    ), region_users_new AS (
        SELECT n.hour, k.pair FROM uh_new n CROSS JOIN LATERAL unnest(n.places) AS k(pair)
    ), g_region AS (
        INSERT INTO gold.tweet_volume_by_region AS g (
            hour, region, language, tweet_count, unique_users, avg_sentiment, positive_count,
            negative_count, neutral_count, total_engagement, sentiment_sum, sentiment_n)
        SELECT a.hour, a.region, a.language, a.n, coalesce(u.n, 0), tweetlake.exact_avg(a.ssum, a.sn),
               a.pos, a.neg, a.neu, a.eng, a.ssum, a.sn
        FROM (SELECT hour, region, language, count(*) AS n, sum(total_engagement) AS eng,
                     coalesce(sum(sentiment), 0) AS ssum, count(sentiment) AS sn,
                     count(*) FILTER (WHERE sentiment_category = 'positive') AS pos,
                     count(*) FILTER (WHERE sentiment_category = 'negative') AS neg,
                     count(*) FILTER (WHERE sentiment_category = 'neutral') AS neu
              FROM s GROUP BY hour, region, language) a
        LEFT JOIN (SELECT hour, pair, count(*) AS n FROM region_users_new GROUP BY hour, pair) u
               ON u.hour = a.hour AND u.pair = tweetlake.pair_key(a.region, a.language)
        ORDER BY a.hour, a.region, a.language
        ON CONFLICT (hour, region, language) DO UPDATE SET
            tweet_count      = g.tweet_count + excluded.tweet_count,
            unique_users     = g.unique_users + excluded.unique_users,
            positive_count   = g.positive_count + excluded.positive_count,
            negative_count   = g.negative_count + excluded.negative_count,
            neutral_count    = g.neutral_count + excluded.neutral_count,
            total_engagement = g.total_engagement + excluded.total_engagement,
            sentiment_sum    = g.sentiment_sum + excluded.sentiment_sum,
            sentiment_n      = g.sentiment_n + excluded.sentiment_n,
            avg_sentiment    = tweetlake.exact_avg(g.sentiment_sum + excluded.sentiment_sum,
                                                   g.sentiment_n + excluded.sentiment_n)
    ), region_totals AS (
        INSERT INTO tweetlake.region_hour_counts AS r (hour, region, tweet_count)
        SELECT hour, region, count(*) FROM s GROUP BY hour, region
        ORDER BY hour, region
        ON CONFLICT (hour, region) DO UPDATE SET tweet_count = r.tweet_count + excluded.tweet_count
        RETURNING hour, region, tweet_count
    ), language_users_new AS (
        SELECT n.hour, k.language FROM uh_new n CROSS JOIN LATERAL unnest(n.languages) AS k(language)
    ), g_language AS (
        INSERT INTO gold.tweet_metrics_by_language AS g (
            hour, language, tweet_count, avg_tweet_length, avg_sentiment, avg_engagement,
            unique_users, text_length_sum, total_engagement, sentiment_sum, sentiment_n)
        SELECT a.hour, a.language, a.n, a.len::double precision / a.n, tweetlake.exact_avg(a.ssum, a.sn),
               a.eng::double precision / a.n, coalesce(u.n, 0), a.len, a.eng, a.ssum, a.sn
        FROM (SELECT hour, language, count(*) AS n, sum(text_length) AS len,
                     sum(total_engagement) AS eng, coalesce(sum(sentiment), 0) AS ssum,
                     count(sentiment) AS sn
              FROM s GROUP BY hour, language) a
        LEFT JOIN (SELECT hour, language, count(*) AS n
                   FROM language_users_new GROUP BY hour, language) u
               USING (hour, language)
        ORDER BY a.hour, a.language
        ON CONFLICT (hour, language) DO UPDATE SET
            tweet_count      = g.tweet_count + excluded.tweet_count,
            unique_users     = g.unique_users + excluded.unique_users,
            text_length_sum  = g.text_length_sum + excluded.text_length_sum,
            total_engagement = g.total_engagement + excluded.total_engagement,
            sentiment_sum    = g.sentiment_sum + excluded.sentiment_sum,
            sentiment_n      = g.sentiment_n + excluded.sentiment_n,
            avg_tweet_length = (g.text_length_sum + excluded.text_length_sum)::double precision
                               / (g.tweet_count + excluded.tweet_count),
            avg_sentiment    = tweetlake.exact_avg(g.sentiment_sum + excluded.sentiment_sum,
                                                   g.sentiment_n + excluded.sentiment_n),
            avg_engagement   = (g.total_engagement + excluded.total_engagement)::double precision
                               / (g.tweet_count + excluded.tweet_count)
    ), g_types AS (
        INSERT INTO gold.engagement_by_type_hour AS g (
            hour, tweet_type, influence_level, tweet_count, total_engagement, avg_engagement,
            viral_count, avg_sentiment, sentiment_sum, sentiment_n)
        SELECT hour, tweet_type, influence_level, count(*), sum(total_engagement),
               sum(total_engagement)::double precision / count(*),
               count(*) FILTER (WHERE total_engagement > 1000),
               tweetlake.exact_avg(coalesce(sum(sentiment), 0), count(sentiment)),
               coalesce(sum(sentiment), 0), count(sentiment)
        FROM (SELECT hour, tweet_type, tweetlake.influence_level(followers_count) AS influence_level,
                     total_engagement, sentiment FROM s) x
        GROUP BY hour, tweet_type, influence_level
        ORDER BY hour, tweet_type, influence_level
        ON CONFLICT (hour, tweet_type, influence_level) DO UPDATE SET
            tweet_count      = g.tweet_count + excluded.tweet_count,
            total_engagement = g.total_engagement + excluded.total_engagement,
            viral_count      = g.viral_count + excluded.viral_count,
            sentiment_sum    = g.sentiment_sum + excluded.sentiment_sum,
            sentiment_n      = g.sentiment_n + excluded.sentiment_n,
            avg_engagement   = (g.total_engagement + excluded.total_engagement)::double precision
                               / (g.tweet_count + excluded.tweet_count),
            avg_sentiment    = tweetlake.exact_avg(g.sentiment_sum + excluded.sentiment_sum,
                                                   g.sentiment_n + excluded.sentiment_n)
    ), hour_users_new AS (
        SELECT hour FROM uh_new WHERE new_in_hour
    ), top_tag AS (
        SELECT DISTINCT ON (hour) hour, hashtag, tweet_count
        FROM g_tags ORDER BY hour, tweet_count DESC, hashtag
    ), top_region AS (
        SELECT DISTINCT ON (hour) hour, region, tweet_count
        FROM region_totals ORDER BY hour, tweet_count DESC, region
    )
    INSERT INTO gold.hourly_activity_summary AS g (
        hour, total_tweets, unique_users, avg_sentiment, total_engagement, top_hashtag,
        top_region, positive_count, negative_count, neutral_count, sentiment_sum, sentiment_n,
        top_hashtag_count, top_region_count)
    SELECT a.hour, a.n, coalesce(u.n, 0), tweetlake.exact_avg(a.ssum, a.sn), a.eng,
           t.hashtag, r.region, a.pos, a.neg, a.neu, a.ssum, a.sn, t.tweet_count, r.tweet_count
    FROM (SELECT hour, count(*) AS n, sum(total_engagement) AS eng,
                 coalesce(sum(sentiment), 0) AS ssum, count(sentiment) AS sn,
                 count(*) FILTER (WHERE sentiment_category = 'positive') AS pos,
                 count(*) FILTER (WHERE sentiment_category = 'negative') AS neg,
                 count(*) FILTER (WHERE sentiment_category = 'neutral') AS neu
          FROM s GROUP BY hour) a
    LEFT JOIN (SELECT hour, count(*) AS n FROM hour_users_new GROUP BY hour) u USING (hour)
    LEFT JOIN top_tag t USING (hour)
    LEFT JOIN top_region r USING (hour)
    ORDER BY a.hour
    ON CONFLICT (hour) DO UPDATE SET
        total_tweets      = g.total_tweets + excluded.total_tweets,
        unique_users      = g.unique_users + excluded.unique_users,
        total_engagement  = g.total_engagement + excluded.total_engagement,
        positive_count    = g.positive_count + excluded.positive_count,
        negative_count    = g.negative_count + excluded.negative_count,
        neutral_count     = g.neutral_count + excluded.neutral_count,
        sentiment_sum     = g.sentiment_sum + excluded.sentiment_sum,
        sentiment_n       = g.sentiment_n + excluded.sentiment_n,
        avg_sentiment     = tweetlake.exact_avg(g.sentiment_sum + excluded.sentiment_sum,
                                                g.sentiment_n + excluded.sentiment_n),
        top_hashtag       = CASE WHEN tweetlake.ranks_first(excluded.top_hashtag_count, excluded.top_hashtag,
                                                            g.top_hashtag_count, g.top_hashtag)
                                 THEN excluded.top_hashtag ELSE g.top_hashtag END,
        top_hashtag_count = CASE WHEN tweetlake.ranks_first(excluded.top_hashtag_count, excluded.top_hashtag,
                                                            g.top_hashtag_count, g.top_hashtag)
                                 THEN excluded.top_hashtag_count ELSE g.top_hashtag_count END,
        top_region        = CASE WHEN tweetlake.ranks_first(excluded.top_region_count, excluded.top_region,
                                                            g.top_region_count, g.top_region)
                                 THEN excluded.top_region ELSE g.top_region END,
        top_region_count  = CASE WHEN tweetlake.ranks_first(excluded.top_region_count, excluded.top_region,
                                                            g.top_region_count, g.top_region)
                                 THEN excluded.top_region_count ELSE g.top_region_count END;
    RETURN NULL;
END
$$;

-- The sets they replace (the trigger above no longer writes them).
DROP VIEW tweetlake.recompute_hashtag_users, tweetlake.recompute_hashtag_mentions,
    tweetlake.recompute_region_users, tweetlake.recompute_language_users,
    tweetlake.recompute_hour_users;
-- Out of the extension first, which also takes them out of what pg_dump carries
-- (pg_extension.extconfig), then gone.
ALTER EXTENSION tweetlake DROP TABLE tweetlake.hashtag_users;
ALTER EXTENSION tweetlake DROP TABLE tweetlake.hashtag_mentions;
ALTER EXTENSION tweetlake DROP TABLE tweetlake.region_users;
ALTER EXTENSION tweetlake DROP TABLE tweetlake.language_users;
ALTER EXTENSION tweetlake DROP TABLE tweetlake.hour_users;
DROP TABLE tweetlake.hashtag_users, tweetlake.hashtag_mentions, tweetlake.region_users,
    tweetlake.language_users, tweetlake.hour_users;
