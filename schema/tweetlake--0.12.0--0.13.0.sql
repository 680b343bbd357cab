/*
 * tweetlake 0.12.0 -> 0.13.0 (CHANGELOG.md): tenants.
 *   - Every row of bronze, silver and gold carries its tenant (the column tenant, last in each
 *     table, 'default' for every row there is), and every key of silver and gold, the
 *     distinct-count sets and the top users' set includes it.
 *   - A source names its tenant (tweetlake.sources.tenant); delete_tweet and load_generated
 *     take one; the views show it and rank within it.
 *   - Row-level security: tweetlake.grant_tenant(role, tenant) lets a role read that tenant's
 *     rows of silver and gold, and tweetlake_reader reads every tenant's.
 * Each definition here is the same text as in schema/sources/, which a fresh install is
 * built from; t/050_upgrade.pl checks that both give the same schema.
 *
 * The tables are locked first, in the order a batch writes them (bronze, then what its
 * trigger writes), so that a consumer's batch in flight finishes before the update alters
 * any of them instead of deadlocking with it.  The new keys are built over the rows there
 * are (a minute or so per ten million tweets).
 */
\echo Use "ALTER EXTENSION tweetlake UPDATE TO '0.13.0'" to load this file. \quit

SET LOCAL search_path = pg_catalog, pg_temp;
-- An update from before 0.11.0 has altered the top users' set, which batches write after
-- bronze, before it gets here: a consumer's batch that holds bronze and waits for that set
-- is the one to give way (a consumer stores the batch again from its offsets), so the
-- update waits longer than the batch before it looks for a deadlock.
SET LOCAL deadlock_timeout = '30s';

LOCK TABLE bronze.tweets, bronze.dead_letters, silver.tweets, silver.deleted_tweets,
    tweetlake.user_hour, tweetlake.mention_hour, gold.popular_hashtags_by_hour,
    gold.active_users_by_day, gold.user_engagement, gold.tweet_volume_by_region,
    tweetlake.region_hour_counts, gold.tweet_metrics_by_language, gold.engagement_by_type_hour,
    gold.hourly_activity_summary, tweetlake.top_users_floor, tweetlake.top_users,
    tweetlake.top_users_pending
    IN ACCESS EXCLUSIVE MODE;

-- Views and functions that change, dropped first (dependents before what they read).
DROP VIEW gold.top_users_by_engagement;
DROP VIEW tweetlake.recompute_top_users_floor;
DROP VIEW tweetlake.recompute_top_users;
DROP VIEW tweetlake.top_users_cut;
DROP VIEW tweetlake.recompute_top_users_pending;
DROP VIEW tweetlake.recompute_hourly_activity_summary;
DROP VIEW tweetlake.recompute_region_hour_counts;
DROP VIEW tweetlake.recompute_popular_hashtags_by_hour;
DROP VIEW tweetlake.recompute_user_hour;
DROP VIEW tweetlake.recompute_mention_hour;
DROP VIEW tweetlake.recompute_active_users_by_day;
DROP VIEW tweetlake.recompute_user_engagement;
DROP VIEW tweetlake.recompute_tweet_volume_by_region;
DROP VIEW tweetlake.recompute_tweet_metrics_by_language;
DROP VIEW tweetlake.recompute_engagement_by_type_hour;
DROP VIEW tweetlake.silver_facts;
DROP VIEW silver.tweets_view;
DROP VIEW gold.popular_hashtags_view;
DROP VIEW gold.trending_hashtags_view;
DROP VIEW gold.active_users_view;
DROP VIEW gold.regional_activity_view;
DROP VIEW gold.language_metrics_view;
DROP VIEW gold.sentiment_by_hour_view;
DROP FUNCTION tweetlake.delete_tweet(text);
DROP FUNCTION tweetlake.load_generated(bigint, bigint, timestamptz, interval, double precision, double precision);
DROP FUNCTION tweetlake.create_source(text, text, text, integer, text, integer, boolean);
DROP FUNCTION tweetlake.alter_source(text, text, text, integer, text, integer, boolean);

-- The tenant of every row there is: 'default'.
ALTER TABLE bronze.tweets ADD COLUMN tenant text NOT NULL DEFAULT 'default';
ALTER TABLE bronze.dead_letters ADD COLUMN tenant text NOT NULL DEFAULT 'default';
ALTER TABLE silver.tweets ADD COLUMN tenant text NOT NULL DEFAULT 'default',
    DROP CONSTRAINT tweets_pkey, ADD PRIMARY KEY (tweet_id, tenant);
ALTER TABLE silver.deleted_tweets ADD COLUMN tenant text NOT NULL DEFAULT 'default',
    DROP CONSTRAINT deleted_tweets_pkey, ADD PRIMARY KEY (tweet_id, tenant);
ALTER TABLE tweetlake.user_hour ADD COLUMN tenant text NOT NULL DEFAULT 'default',
    DROP CONSTRAINT user_hour_pkey, ADD PRIMARY KEY (hour, user_id, tenant);
ALTER TABLE tweetlake.mention_hour ADD COLUMN tenant text NOT NULL DEFAULT 'default',
    DROP CONSTRAINT mention_hour_pkey, ADD PRIMARY KEY (hour, mention, tenant);
ALTER TABLE gold.popular_hashtags_by_hour ADD COLUMN tenant text NOT NULL DEFAULT 'default',
    DROP CONSTRAINT popular_hashtags_by_hour_pkey, ADD PRIMARY KEY (hour, hashtag, tenant);
ALTER TABLE gold.active_users_by_day ADD COLUMN tenant text NOT NULL DEFAULT 'default',
    DROP CONSTRAINT active_users_by_day_pkey, ADD PRIMARY KEY (day, user_id, tenant);
ALTER TABLE gold.user_engagement ADD COLUMN tenant text NOT NULL DEFAULT 'default',
    DROP CONSTRAINT user_engagement_pkey, ADD PRIMARY KEY (user_id, tenant);
ALTER TABLE gold.tweet_volume_by_region ADD COLUMN tenant text NOT NULL DEFAULT 'default',
    DROP CONSTRAINT tweet_volume_by_region_pkey, ADD PRIMARY KEY (hour, region, language, tenant);
ALTER TABLE tweetlake.region_hour_counts ADD COLUMN tenant text NOT NULL DEFAULT 'default',
    DROP CONSTRAINT region_hour_counts_pkey, ADD PRIMARY KEY (hour, region, tenant);
ALTER TABLE gold.tweet_metrics_by_language ADD COLUMN tenant text NOT NULL DEFAULT 'default',
    DROP CONSTRAINT tweet_metrics_by_language_pkey, ADD PRIMARY KEY (hour, language, tenant);
ALTER TABLE gold.engagement_by_type_hour ADD COLUMN tenant text NOT NULL DEFAULT 'default',
    DROP CONSTRAINT engagement_by_type_hour_pkey, ADD PRIMARY KEY (hour, tweet_type, influence_level, tenant);
ALTER TABLE gold.hourly_activity_summary ADD COLUMN tenant text NOT NULL DEFAULT 'default',
    DROP CONSTRAINT hourly_activity_summary_pkey, ADD PRIMARY KEY (hour, tenant);
ALTER TABLE tweetlake.top_users_floor ADD COLUMN tenant text NOT NULL DEFAULT 'default',
    DROP CONSTRAINT top_users_floor_pkey, ADD PRIMARY KEY (id, tenant);
ALTER TABLE tweetlake.top_users ADD COLUMN tenant text NOT NULL DEFAULT 'default',
    DROP CONSTRAINT top_users_pkey, ADD PRIMARY KEY (user_id, tenant);
ALTER TABLE tweetlake.top_users_pending ADD COLUMN tenant text NOT NULL DEFAULT 'default';
COMMENT ON COLUMN bronze.tweets.tenant IS
    'whose tweet this is: its source''s tenant (tweetlake.sources), or what a load from SQL names (default ''default''); silver and gold keep it';
COMMENT ON COLUMN silver.tweets.tenant IS
    'whose tweet this is (bronze.tweets.tenant); a tweet_id is one tweet per tenant';
COMMENT ON TABLE tweetlake.top_users_floor IS
    'one row per tenant: no user outside tweetlake.top_users has more total engagement than floor (NULL: every user is in it); members, how many it holds';

-- Sources name their tenant.
ALTER TABLE tweetlake.sources ADD COLUMN tenant text NOT NULL DEFAULT 'default',
    ADD CONSTRAINT sources_tenant CHECK (tenant OPERATOR(pg_catalog.~) '^[a-z][a-z0-9_]*$'
                                     AND pg_catalog.length(tenant) OPERATOR(pg_catalog.<=) 40);
COMMENT ON TABLE tweetlake.sources IS
    'Kafka feeds: brokers (bootstrap.servers), topic, consumers, kafka_config_file (librdkafka properties, the place for secrets), generator_rate (0 off, -1 flat out), enabled, tenant (whose rows its messages become); "default" is postgresql.conf''s tweetlake.* settings (its columns NULL); change with tweetlake.create_source, alter_source, drop_source';
CREATE FUNCTION tweetlake.create_source(name text, brokers text, topic text DEFAULT 'tweets',
                                        consumers integer DEFAULT 1, kafka_config_file text DEFAULT NULL,
                                        generator_rate integer DEFAULT 0, enabled boolean DEFAULT true,
                                        tenant text DEFAULT 'default')
    RETURNS tweetlake.sources
    LANGUAGE sql SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
    INSERT INTO tweetlake.sources (name, brokers, topic, consumers, kafka_config_file, generator_rate, enabled, tenant)
    VALUES (create_source.name, create_source.brokers, create_source.topic, create_source.consumers,
            create_source.kafka_config_file, create_source.generator_rate, create_source.enabled,
            create_source.tenant)
    RETURNING *;
END;
CREATE FUNCTION tweetlake.alter_source(name text, brokers text DEFAULT NULL, topic text DEFAULT NULL,
                                       consumers integer DEFAULT NULL, kafka_config_file text DEFAULT NULL,
                                       generator_rate integer DEFAULT NULL, enabled boolean DEFAULT NULL,
                                       tenant text DEFAULT NULL)
    RETURNS tweetlake.sources
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    r tweetlake.sources;
BEGIN
    UPDATE tweetlake.sources s
    SET brokers = coalesce(alter_source.brokers, s.brokers),
        topic = coalesce(alter_source.topic, s.topic),
        consumers = coalesce(alter_source.consumers, s.consumers),
        kafka_config_file = CASE WHEN alter_source.kafka_config_file IS NULL THEN s.kafka_config_file
                                 ELSE NULLIF(alter_source.kafka_config_file, '') END,
        generator_rate = coalesce(alter_source.generator_rate, s.generator_rate),
        enabled = coalesce(alter_source.enabled, s.enabled),
        tenant = coalesce(alter_source.tenant, s.tenant)
    WHERE s.name OPERATOR(pg_catalog.=) alter_source.name
    RETURNING s.* INTO r;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'source "%" does not exist', alter_source.name
            USING ERRCODE = 'undefined_object', HINT = 'SELECT name FROM tweetlake.sources lists them.';
    END IF;
    RETURN r;
END
$$;
COMMENT ON FUNCTION tweetlake.create_source(text, text, text, integer, text, integer, boolean, text) IS
    'a new Kafka source; its workers start within seconds when it and the pipeline are enabled';
COMMENT ON FUNCTION tweetlake.alter_source(text, text, text, integer, text, integer, boolean, text) IS
    'changes a source (NULL: unchanged; kafka_config_file => '''' removes it); its workers restart with the new settings within seconds';
REVOKE EXECUTE ON FUNCTION tweetlake.create_source(text, text, text, integer, text, integer, boolean, text),
    tweetlake.alter_source(text, text, text, integer, text, integer, boolean, text),
    tweetlake.drop_source(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION tweetlake.create_source(text, text, text, integer, text, integer, boolean, text),
    tweetlake.alter_source(text, text, text, integer, text, integer, boolean, text),
    tweetlake.drop_source(text) TO tweetlake_admin;

-- The views, with the tenant.
CREATE VIEW silver.tweets_view WITH (security_invoker = true) AS
SELECT t.*,
       tweetlake.influence_level(t.followers_count) AS influence_level,
       tweetlake.engagement_level(t.total_engagement) AS engagement_level
FROM silver.tweets t;
CREATE VIEW tweetlake.silver_facts AS
SELECT tweetlake.utc_hour(created_at) AS hour,
       tweetlake.utc_day(created_at) AS day,
       coalesce(region, 'unknown') AS region,
       coalesce(language, 'unknown') AS language,
       user_id, username, followers_count, hashtags, mentions, sentiment_score,
       sentiment_category, total_engagement, text_length,
       coalesce(tweet_type, 'unknown') AS tweet_type,
       tweetlake.influence_level(followers_count) AS influence_level,
       tenant
FROM silver.tweets;
CREATE VIEW tweetlake.recompute_user_hour AS
SELECT hour, user_id COLLATE "C" AS user_id, count(*) AS tweets,
       tweetlake.bag_agg(hashtags) AS hashtags,
       tweetlake.bag_agg(tweetlake.pair_key(region, language)) AS places,
       tweetlake.bag_agg(language) AS languages, tenant
FROM tweetlake.silver_facts
WHERE user_id IS NOT NULL
GROUP BY tenant, hour, user_id;
CREATE VIEW tweetlake.recompute_mention_hour AS
SELECT f.hour, m.mention COLLATE "C" AS mention, tweetlake.bag_agg(f.hashtags) AS hashtags, f.tenant
FROM tweetlake.silver_facts f, unnest(f.mentions) AS m(mention)
WHERE cardinality(f.hashtags) > 0
GROUP BY f.tenant, f.hour, m.mention;
CREATE VIEW tweetlake.recompute_popular_hashtags_by_hour AS
WITH tags AS (
    SELECT f.tenant, f.hour, h.hashtag, f.user_id, f.mentions, f.sentiment_score, f.total_engagement
    FROM tweetlake.silver_facts f, unnest(f.hashtags) AS h(hashtag)
), mentioned AS (
    SELECT t.tenant, t.hour, t.hashtag, count(DISTINCT m.mention) AS n
    FROM tags t, unnest(t.mentions) AS m(mention)
    GROUP BY t.tenant, t.hour, t.hashtag
)
SELECT t.hour, t.hashtag,
       count(*) AS tweet_count,
       count(DISTINCT t.user_id) AS unique_users,
       coalesce(max(m.n), 0) AS unique_mentions,
       tweetlake.exact_avg(coalesce(sum(t.sentiment_score::numeric), 0), count(t.sentiment_score)) AS avg_sentiment,
       sum(t.total_engagement)::bigint AS total_engagement,
       sum(t.total_engagement)::double precision / count(*) AS avg_engagement,
       coalesce(sum(t.sentiment_score::numeric), 0) AS sentiment_sum,
       count(t.sentiment_score) AS sentiment_n,
       t.tenant
FROM tags t
LEFT JOIN mentioned m USING (tenant, hour, hashtag)
GROUP BY t.tenant, t.hour, t.hashtag;
CREATE VIEW gold.popular_hashtags_view WITH (security_invoker = true) AS
SELECT hour, hashtag, tweet_count, unique_users, unique_mentions, avg_sentiment,
       total_engagement, avg_engagement,
       rank() OVER (PARTITION BY tenant, hour ORDER BY tweet_count DESC, total_engagement DESC) AS rank_in_hour,
       tenant
FROM gold.popular_hashtags_by_hour;
CREATE VIEW gold.trending_hashtags_view WITH (security_invoker = true) AS
SELECT hashtag,
       sum(tweet_count)::bigint AS tweet_count,
       sum(total_engagement)::bigint AS total_engagement,
       count(*) AS active_hours,
       round(4.0 * coalesce(sum(tweet_count) FILTER (WHERE hour >= date_trunc('hour', now()) - interval '5 hours'), 0)
             / sum(tweet_count), 2) AS momentum,
       rank() OVER (PARTITION BY tenant ORDER BY sum(tweet_count) DESC, sum(total_engagement) DESC) AS trend_rank,
       tenant
FROM gold.popular_hashtags_by_hour
WHERE hour >= date_trunc('hour', now()) - interval '23 hours'
GROUP BY tenant, hashtag;
CREATE VIEW tweetlake.recompute_active_users_by_day AS
SELECT day, user_id, max(username) AS username, count(*) AS tweets_count,
       max(followers_count) AS followers_count,
       sum(total_engagement)::bigint AS total_engagement,
       tweetlake.exact_avg(coalesce(sum(sentiment_score::numeric), 0), count(sentiment_score)) AS avg_sentiment,
       coalesce(sum(sentiment_score::numeric), 0) AS sentiment_sum,
       count(sentiment_score) AS sentiment_n,
       tenant
FROM tweetlake.silver_facts
WHERE user_id IS NOT NULL
GROUP BY tenant, day, user_id;
CREATE VIEW gold.active_users_view WITH (security_invoker = true) AS
SELECT day, user_id, username, tweets_count, followers_count, total_engagement, avg_sentiment,
       rank() OVER (PARTITION BY tenant, day ORDER BY tweets_count DESC, total_engagement DESC) AS rank_in_day,
       tenant
FROM gold.active_users_by_day;
CREATE VIEW tweetlake.recompute_user_engagement AS
SELECT user_id, max(username) AS username, count(*) AS tweets_count,
       max(followers_count) AS followers_count,
       sum(total_engagement)::bigint AS total_engagement,
       min(day) AS first_day, max(day) AS last_day, tenant
FROM tweetlake.silver_facts
WHERE user_id IS NOT NULL
GROUP BY tenant, user_id;
CREATE VIEW tweetlake.recompute_top_users_pending AS
SELECT NULL::text AS user_id, false AS retracted, NULL::text AS tenant
WHERE false;
CREATE VIEW tweetlake.top_users_cut AS
SELECT b.tenant, min(b.total_engagement) AS total_engagement
FROM (SELECT e.tenant, e.total_engagement,
             row_number() OVER (PARTITION BY e.tenant ORDER BY e.total_engagement DESC) AS n
      FROM gold.user_engagement e) b
WHERE b.n <= 200
GROUP BY b.tenant;
COMMENT ON VIEW tweetlake.top_users_cut IS
    'each tenant''s 200th best total engagement: where a refill of tweetlake.top_users cuts';
CREATE VIEW tweetlake.recompute_top_users AS
SELECT u.user_id, u.username, u.tweets_count, u.followers_count, u.total_engagement,
       u.first_day, u.last_day, u.tenant
FROM gold.user_engagement u
JOIN tweetlake.top_users_cut cut ON cut.tenant = u.tenant
WHERE u.total_engagement >= cut.total_engagement;
CREATE VIEW tweetlake.recompute_top_users_floor AS
SELECT true AS id,
       (SELECT max(u.total_engagement) FROM gold.user_engagement u
        WHERE u.tenant = cut.tenant AND u.total_engagement < cut.total_engagement) AS floor,
       (SELECT count(*) FROM gold.user_engagement u
        WHERE u.tenant = cut.tenant AND u.total_engagement >= cut.total_engagement)::integer AS members,
       cut.tenant
FROM tweetlake.top_users_cut cut;
CREATE VIEW gold.top_users_by_engagement WITH (security_invoker = true) AS
WITH floors AS (
    SELECT f.tenant, f.floor FROM tweetlake.top_users_floor f
    UNION ALL
    SELECT DISTINCT p.tenant, NULL::bigint FROM tweetlake.top_users_pending p
    WHERE NOT EXISTS (SELECT FROM tweetlake.top_users_floor f WHERE f.tenant = p.tenant)
), head AS (
    SELECT c.*, f.tenant,
           count(*) OVER (PARTITION BY f.tenant) AS above,
           row_number() OVER (PARTITION BY f.tenant ORDER BY c.total_engagement DESC, c.user_id) AS n
    FROM floors f
    CROSS JOIN LATERAL (
        SELECT t.user_id, t.username, t.tweets_count, t.followers_count, t.total_engagement,
               t.first_day, t.last_day
        FROM tweetlake.top_users t
        WHERE t.tenant = f.tenant AND t.total_engagement IS NOT NULL
          AND NOT EXISTS (SELECT FROM tweetlake.top_users_pending p
                          WHERE p.tenant = f.tenant AND p.user_id = t.user_id)
        UNION ALL
        SELECT u.user_id, u.username, u.tweets_count, u.followers_count, u.total_engagement,
               u.first_day, u.last_day
        FROM gold.user_engagement u
        WHERE u.tenant = f.tenant
          AND u.user_id IN (SELECT p.user_id FROM tweetlake.top_users_pending p
                            WHERE p.tenant = f.tenant)) c
    WHERE f.floor IS NULL OR c.total_engagement > f.floor
), exact AS (
    SELECT f.tenant,
           f.floor IS NULL OR coalesce((SELECT max(h.above) FROM head h WHERE h.tenant = f.tenant), 0) >= 100 AS yes
    FROM floors f
)
SELECT h.user_id, h.username, h.tweets_count, h.followers_count, h.total_engagement,
       h.first_day, h.last_day, h.tenant
FROM head h JOIN exact e ON e.tenant = h.tenant
WHERE e.yes AND h.n <= 100
UNION ALL
SELECT s.user_id, s.username, s.tweets_count, s.followers_count, s.total_engagement,
       s.first_day, s.last_day, e.tenant
FROM exact e CROSS JOIN LATERAL (
    SELECT u.user_id, u.username, u.tweets_count, u.followers_count, u.total_engagement,
           u.first_day, u.last_day
    FROM gold.user_engagement u
    WHERE NOT e.yes AND u.tenant = e.tenant
    ORDER BY u.total_engagement DESC, u.user_id
    LIMIT 100) s
ORDER BY tenant, total_engagement DESC, user_id;
COMMENT ON VIEW gold.top_users_by_engagement IS
    'each tenant''s 100 users with the most engagement over all time, best first (ties by user_id): gold.user_engagement''s rows, without sorting every user';
CREATE VIEW tweetlake.recompute_tweet_volume_by_region AS
SELECT hour, region, language, count(*) AS tweet_count,
       count(DISTINCT user_id) AS unique_users,
       tweetlake.exact_avg(coalesce(sum(sentiment_score::numeric), 0), count(sentiment_score)) AS avg_sentiment,
       count(*) FILTER (WHERE sentiment_category = 'positive') AS positive_count,
       count(*) FILTER (WHERE sentiment_category = 'negative') AS negative_count,
       count(*) FILTER (WHERE sentiment_category = 'neutral') AS neutral_count,
       sum(total_engagement)::bigint AS total_engagement,
       coalesce(sum(sentiment_score::numeric), 0) AS sentiment_sum,
       count(sentiment_score) AS sentiment_n,
       tenant
FROM tweetlake.silver_facts
GROUP BY tenant, hour, region, language;
CREATE VIEW gold.regional_activity_view WITH (security_invoker = true) AS
SELECT hour, region, language, tweet_count, unique_users, avg_sentiment, positive_count,
       negative_count, neutral_count, total_engagement,
       rank() OVER (PARTITION BY tenant, hour ORDER BY tweet_count DESC, total_engagement DESC) AS rank_in_hour,
       tenant
FROM gold.tweet_volume_by_region;
CREATE VIEW tweetlake.recompute_tweet_metrics_by_language AS
SELECT hour, language, count(*) AS tweet_count,
       sum(text_length)::double precision / count(*) AS avg_tweet_length,
       tweetlake.exact_avg(coalesce(sum(sentiment_score::numeric), 0), count(sentiment_score)) AS avg_sentiment,
       sum(total_engagement)::double precision / count(*) AS avg_engagement,
       count(DISTINCT user_id) AS unique_users,
       sum(text_length)::bigint AS text_length_sum,
       sum(total_engagement)::bigint AS total_engagement,
       coalesce(sum(sentiment_score::numeric), 0) AS sentiment_sum,
       count(sentiment_score) AS sentiment_n,
       tenant
FROM tweetlake.silver_facts
GROUP BY tenant, hour, language;
CREATE VIEW gold.language_metrics_view WITH (security_invoker = true) AS
SELECT hour, language, tweet_count, avg_tweet_length, avg_sentiment, avg_engagement, unique_users,
       rank() OVER (PARTITION BY tenant, hour ORDER BY tweet_count DESC, avg_engagement DESC) AS rank_in_hour,
       tenant
FROM gold.tweet_metrics_by_language;
CREATE VIEW tweetlake.recompute_hourly_activity_summary AS
WITH tag AS (
    SELECT DISTINCT ON (tenant, hour) tenant, hour, hashtag, tweet_count
    FROM tweetlake.recompute_popular_hashtags_by_hour
    ORDER BY tenant, hour, tweet_count DESC, hashtag
), reg AS (
    SELECT DISTINCT ON (tenant, hour) tenant, hour, region, count(*) AS tweet_count
    FROM tweetlake.silver_facts
    GROUP BY tenant, hour, region
    ORDER BY tenant, hour, count(*) DESC, region
)
SELECT f.hour, count(*) AS total_tweets,
       count(DISTINCT f.user_id) AS unique_users,
       tweetlake.exact_avg(coalesce(sum(f.sentiment_score::numeric), 0), count(f.sentiment_score)) AS avg_sentiment,
       sum(f.total_engagement)::bigint AS total_engagement,
       min(tag.hashtag) AS top_hashtag,
       min(reg.region) AS top_region,
       count(*) FILTER (WHERE f.sentiment_category = 'positive') AS positive_count,
       count(*) FILTER (WHERE f.sentiment_category = 'negative') AS negative_count,
       count(*) FILTER (WHERE f.sentiment_category = 'neutral') AS neutral_count,
       coalesce(sum(f.sentiment_score::numeric), 0) AS sentiment_sum,
       count(f.sentiment_score) AS sentiment_n,
       min(tag.tweet_count) AS top_hashtag_count,
       min(reg.tweet_count) AS top_region_count,
       f.tenant
FROM tweetlake.silver_facts f
LEFT JOIN tag USING (tenant, hour)
LEFT JOIN reg USING (tenant, hour)
GROUP BY f.tenant, f.hour;
CREATE VIEW tweetlake.recompute_region_hour_counts AS
SELECT hour, region, count(*) AS tweet_count, tenant FROM tweetlake.silver_facts GROUP BY tenant, hour, region;
CREATE VIEW gold.sentiment_by_hour_view WITH (security_invoker = true) AS
SELECT h.hour, c.sentiment_category, c.tweet_count, h.tenant
FROM gold.hourly_activity_summary h
CROSS JOIN LATERAL (VALUES ('positive', h.positive_count), ('negative', h.negative_count),
                           ('neutral', h.neutral_count)) AS c(sentiment_category, tweet_count);
CREATE VIEW tweetlake.recompute_engagement_by_type_hour AS
SELECT hour, tweet_type, influence_level, count(*) AS tweet_count,
       sum(total_engagement)::bigint AS total_engagement,
       sum(total_engagement)::double precision / count(*) AS avg_engagement,
       count(*) FILTER (WHERE total_engagement > 1000) AS viral_count,
       tweetlake.exact_avg(coalesce(sum(sentiment_score::numeric), 0), count(sentiment_score)) AS avg_sentiment,
       coalesce(sum(sentiment_score::numeric), 0) AS sentiment_sum,
       count(sentiment_score) AS sentiment_n,
       tenant
FROM tweetlake.silver_facts
GROUP BY tenant, hour, tweet_type, influence_level;

-- Functions that take or check the tenant.
CREATE FUNCTION tweetlake.delete_tweet(tweet_id text, tenant text DEFAULT 'default') RETURNS boolean
LANGUAGE plpgsql STRICT SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    stored boolean := EXISTS (SELECT FROM silver.tweets t
                              WHERE t.tenant OPERATOR(pg_catalog.=) delete_tweet.tenant
                                AND t.tweet_id OPERATOR(pg_catalog.=) delete_tweet.tweet_id);
BEGIN
    INSERT INTO bronze.tweets (raw, kafka_key, tenant) VALUES (NULL, delete_tweet.tweet_id, delete_tweet.tenant);
    RETURN stored;
END
$$;
COMMENT ON FUNCTION tweetlake.delete_tweet(text, text) IS
    'delete a tenant''s tweet from silver and gold (a tombstone into bronze.tweets); true when silver had it';
REVOKE EXECUTE ON FUNCTION tweetlake.delete_tweet(text, text) FROM PUBLIC;
CREATE FUNCTION tweetlake.load_generated(n bigint, seed bigint DEFAULT 0,
        start_at timestamptz DEFAULT '2026-01-01 00:00:00+00', span interval DEFAULT '7 days',
        updates double precision DEFAULT 0, deletes double precision DEFAULT 0,
        tenant text DEFAULT 'default')
    RETURNS bigint
    AS 'MODULE_PATHNAME', 'tweetlake_load_generated' LANGUAGE C VOLATILE STRICT
    SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION tweetlake.load_generated(bigint, bigint, timestamptz, interval, double precision, double precision, text) IS
    'insert n generated messages (with updates and tombstones in the shares updates and deletes) into bronze.tweets in batches, as the tenant''s; returns the count';
REVOKE EXECUTE ON FUNCTION tweetlake.load_generated(bigint, bigint, timestamptz, interval, double precision, double precision, text) FROM PUBLIC;
CREATE OR REPLACE FUNCTION tweetlake.verify()
RETURNS TABLE (gold_table text, gold_rows bigint, recomputed_rows bigint,
               missing bigint, extra bigint, differing bigint)
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    t record;
    -- %1$s the name reported, %2$s the key, %3$s what gold holds, %4$s what it must equal
    compare constant text :=
        'SELECT %1$L::text, count(g.k), count(r.k),
                count(*) FILTER (WHERE g.k IS NULL),
                count(*) FILTER (WHERE r.k IS NULL),
                count(*) FILTER (WHERE g.k IS NOT NULL AND r.k IS NOT NULL AND g.v IS DISTINCT FROM r.v)
         FROM (SELECT row(%2$s) AS k, x AS v FROM %3$s x) g
         FULL JOIN (SELECT row(%2$s) AS k, x AS v FROM %4$s x) r ON g.k = r.k';
BEGIN
    FOR t IN SELECT * FROM tweetlake.maintained_tables WHERE in_gold ORDER BY table_name::oid
    LOOP
        RETURN QUERY EXECUTE format(compare,
            (SELECT relname FROM pg_class WHERE oid = t.table_name), t.key_columns,
            t.table_name, t.recompute_view);
    END LOOP;
    -- The ranking the batch keeps: each tenant's head of gold.user_engagement (compared with
    -- its recompute above) sorted, row for row.
    RETURN QUERY EXECUTE format(compare, 'top_users_by_engagement', 'tenant, user_id',
        'gold.top_users_by_engagement',
        '(SELECT u.user_id, u.username, u.tweets_count, u.followers_count,
                 u.total_engagement, u.first_day, u.last_day, u.tenant
          FROM (SELECT e.*, row_number() OVER (PARTITION BY e.tenant
                                               ORDER BY e.total_engagement DESC, e.user_id) AS n
                FROM gold.user_engagement e) u
          WHERE u.n <= 100)');
END
$$;
GRANT EXECUTE ON FUNCTION tweetlake.delete_tweet(text, text) TO tweetlake_loader;

-- Access (90_access.sql).  The views made again lost their grants.
GRANT SELECT ON ALL TABLES IN SCHEMA gold, silver TO tweetlake_reader;
-- gold.top_users_by_engagement reads the top users' set as its reader (security_invoker)
GRANT SELECT ON tweetlake.top_users, tweetlake.top_users_pending, tweetlake.top_users_floor
    TO tweetlake_reader;
/*
 * Tenants (0.13.0).  Every row of bronze, silver and gold has its tenant.  Row-level security
 * on silver, gold and the top users' set shows each role the rows of the tenants granted to
 * it (tweetlake.tenant_grants: to the role itself or to a role it has the rights of, as
 * pg_has_role(..., 'USAGE') says), and tweetlake_reader every tenant's.  The views are
 * security_invoker, so they show what their reader may see.  Nothing here reads a setting:
 * a session cannot change what it sees but by being another role.  The owner (the
 * superuser who created the extension), the batch trigger (SECURITY DEFINER),
 * rebuild_gold() and verify() see every row.
 */
CREATE TABLE tweetlake.tenant_grants (
    role       regrole NOT NULL,
    tenant     text NOT NULL,
    granted_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (role, tenant)
);
COMMENT ON TABLE tweetlake.tenant_grants IS
    'which role reads which tenant''s rows in silver and gold (tweetlake.grant_tenant, revoke_tenant); each role sees its own grants';
ALTER TABLE tweetlake.tenant_grants ENABLE ROW LEVEL SECURITY;
CREATE POLICY own_grants ON tweetlake.tenant_grants FOR SELECT
    USING (pg_catalog.pg_has_role(role::oid, 'USAGE'));
-- The policies below read it as their reader, whoever that is (each sees its own grants).
GRANT SELECT ON tweetlake.tenant_grants TO PUBLIC;

DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'tweetlake_tenant') THEN
        CREATE ROLE tweetlake_tenant NOLOGIN;
    END IF;
END
$$;
GRANT USAGE ON SCHEMA gold, silver, tweetlake TO tweetlake_tenant;
GRANT SELECT ON ALL TABLES IN SCHEMA gold, silver TO tweetlake_tenant;
GRANT SELECT ON tweetlake.top_users, tweetlake.top_users_pending, tweetlake.top_users_floor
    TO tweetlake_tenant;

DO $$
DECLARE
    t regclass;
BEGIN
    FOR t IN SELECT c.oid::regclass
             FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE c.relkind = 'r' AND n.nspname IN ('silver', 'gold')
             UNION ALL
             SELECT unnest('{tweetlake.top_users, tweetlake.top_users_pending, tweetlake.top_users_floor}'::regclass[])
             ORDER BY 1
    LOOP
        EXECUTE format('ALTER TABLE %s ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('CREATE POLICY tenant_rows ON %s FOR SELECT '
                       'USING (tenant = ANY (ARRAY(SELECT g.tenant FROM tweetlake.tenant_grants g)))', t);
        EXECUTE format('CREATE POLICY all_tenants ON %s FOR SELECT TO tweetlake_reader USING (true)', t);
    END LOOP;
END
$$;

CREATE FUNCTION tweetlake.grant_tenant(role regrole, tenant text) RETURNS void
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF grant_tenant.tenant IS NULL OR grant_tenant.tenant OPERATOR(pg_catalog.!~) '^[a-z][a-z0-9_]*$'
       OR pg_catalog.length(grant_tenant.tenant) OPERATOR(pg_catalog.>) 40 THEN
        RAISE EXCEPTION 'invalid tenant name "%"', grant_tenant.tenant
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'A tenant is named like a source: lower-case letters, digits and _, starting with a letter, at most 40.';
    END IF;
    IF grant_tenant.role IS NULL OR grant_tenant.role::oid OPERATOR(pg_catalog.=) 0 THEN
        RAISE EXCEPTION 'a tenant is granted to a role' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    INSERT INTO tweetlake.tenant_grants (role, tenant)
    VALUES (grant_tenant.role, grant_tenant.tenant)
    ON CONFLICT DO NOTHING;
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_auth_members m
                   WHERE m.roleid OPERATOR(pg_catalog.=) 'tweetlake_tenant'::pg_catalog.regrole
                     AND m.member OPERATOR(pg_catalog.=) grant_tenant.role) THEN
        EXECUTE pg_catalog.format('GRANT tweetlake_tenant TO %s', grant_tenant.role);
    END IF;
END
$$;
COMMENT ON FUNCTION tweetlake.grant_tenant(regrole, text) IS
    'let a role read one tenant''s rows of silver and gold (and nothing of another tenant''s, nor bronze)';

CREATE FUNCTION tweetlake.revoke_tenant(role regrole, tenant text) RETURNS boolean
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    DELETE FROM tweetlake.tenant_grants g
    WHERE g.role OPERATOR(pg_catalog.=) revoke_tenant.role AND g.tenant OPERATOR(pg_catalog.=) revoke_tenant.tenant;
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    IF NOT EXISTS (SELECT FROM tweetlake.tenant_grants g WHERE g.role OPERATOR(pg_catalog.=) revoke_tenant.role) THEN
        EXECUTE pg_catalog.format('REVOKE tweetlake_tenant FROM %s', revoke_tenant.role);
    END IF;
    RETURN true;
END
$$;
COMMENT ON FUNCTION tweetlake.revoke_tenant(regrole, text) IS
    'take a tenant back from a role (false: it did not have it); with its last tenant it loses tweetlake_tenant';
REVOKE EXECUTE ON FUNCTION tweetlake.grant_tenant(regrole, text), tweetlake.revoke_tenant(regrole, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION tweetlake.grant_tenant(regrole, text), tweetlake.revoke_tenant(regrole, text)
    TO tweetlake_admin;

SELECT pg_extension_config_dump('tweetlake.tenant_grants', '');
