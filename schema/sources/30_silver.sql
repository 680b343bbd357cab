/* ------------------------------------------------------------------------
 * Silver
 * ------------------------------------------------------------------------ */

CREATE TABLE silver.tweets (
    tweet_id            text NOT NULL,
    text                text NOT NULL,
    created_at          timestamptz NOT NULL,
    tweet_type          text,
    language            text,
    region              text,
    hashtags            text[] NOT NULL,
    mentions            text[] NOT NULL,
    retweet_count       integer,
    like_count          integer,
    reply_count         integer,
    quote_count         integer,
    is_retweet          boolean,
    is_reply            boolean,
    is_quote            boolean,
    has_media           boolean,
    has_url             boolean,
    sentiment_score     double precision,
    engagement_score    double precision,
    reach_estimate      bigint,
    user_id             text,
    username            text,
    display_name        text,
    followers_count     integer,
    following_count     integer,
    verified            boolean,
    user_created_at     timestamptz,
    user_location       text,
    user_description    text,
    original_tweet_id   text,
    original_user_id    text,
    reply_to_tweet_id   text,
    reply_to_user_id    text,
    quoted_tweet_id     text,
    quoted_user_id      text,
    quoted_text         text,
    text_length         integer NOT NULL,
    sentiment_category  text,
    total_engagement    bigint NOT NULL,
    processed_at        timestamptz NOT NULL DEFAULT now(),
    processing_date     date NOT NULL DEFAULT (now() AT TIME ZONE 'UTC')::date,
    updated_at          timestamptz,
    tenant              text NOT NULL DEFAULT 'default',
    PRIMARY KEY (tweet_id, tenant)
);
-- BRIN: time-range scans over silver for next to no ingest cost.
CREATE INDEX tweets_created_at_brin ON silver.tweets USING brin (created_at);
-- A user's tweets by time: what a retraction (an update or a deletion) reads to find a
-- user's largest followers_count, username and first and last day again.  Without the
-- tenant: a user's tweets in other tenants are few to skip, and the tenant in the middle of
-- the key made every tweet's entry wider (a batch 5-15 % slower, bench/RESULTS.md).
CREATE INDEX tweets_user_created_at ON silver.tweets (user_id COLLATE "C", created_at);
COMMENT ON TABLE silver.tweets IS
    'one row per tweet_id, its newest version; hashtags/mentions lower case without #/@, no duplicates';
COMMENT ON COLUMN silver.tweets.updated_at IS
    'the version the message carried ("updated_at"), NULL when it carried none';
COMMENT ON COLUMN silver.tweets.processed_at IS
    'when this version of the tweet was stored';
COMMENT ON COLUMN silver.tweets.tenant IS
    'whose tweet this is (bronze.tweets.tenant); a tweet_id is one tweet per tenant';

-- Deleted tweet_ids (tombstones, tweetlake.delete_tweet()): a deletion is final, so a later
-- message with the id, even the original arriving after its tombstone, changes nothing.
CREATE TABLE silver.deleted_tweets (
    tweet_id   text NOT NULL,
    deleted_at timestamptz NOT NULL DEFAULT now(),
    was_stored boolean NOT NULL,
    tenant     text NOT NULL DEFAULT 'default',
    PRIMARY KEY (tweet_id, tenant)
);
COMMENT ON TABLE silver.deleted_tweets IS
    'tweet_ids deleted by a tombstone or tweetlake.delete_tweet(); was_stored: the tweet was in silver when deleted';

-- The author's reach and the tweet's reception, as the dashboards group them.
CREATE FUNCTION tweetlake.influence_level(followers_count integer) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    RETURN CASE WHEN followers_count >= 100000 THEN 'High Influence'
                WHEN followers_count >= 10000 THEN 'Medium Influence'
                ELSE 'Low Influence' END;
CREATE FUNCTION tweetlake.engagement_level(total_engagement bigint) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    RETURN CASE WHEN total_engagement > 1000 THEN 'Viral'
                WHEN total_engagement > 100 THEN 'Popular'
                ELSE 'Regular' END;

CREATE VIEW silver.tweets_view WITH (security_invoker = true) AS
SELECT t.*,
       tweetlake.influence_level(t.followers_count) AS influence_level,
       tweetlake.engagement_level(t.total_engagement) AS engagement_level
FROM silver.tweets t;


/* ------------------------------------------------------------------------
 * The full recompute of gold from silver: what gold must equal.
 * rebuild_gold() loads these; verify() compares gold against them.
 * ------------------------------------------------------------------------ */

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

