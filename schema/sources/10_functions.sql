/* ------------------------------------------------------------------------
 * Small C helpers (src/timestamp.c, src/parse.c)
 * ------------------------------------------------------------------------ */

-- Start of the UTC hour / the UTC date of a timestamp: the grain of every gold table.
CREATE FUNCTION tweetlake.utc_hour(timestamptz) RETURNS timestamptz
    AS 'MODULE_PATHNAME', 'tweetlake_utc_hour' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION tweetlake.utc_day(timestamptz) RETURNS date
    AS 'MODULE_PATHNAME', 'tweetlake_utc_day' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

-- The top-level "tweet_id" string of a message, or NULL when there is none.
CREATE FUNCTION tweetlake.tweet_id_of(raw text) RETURNS text
    AS 'MODULE_PATHNAME', 'tweetlake_tweet_id_of' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

-- A message parsed and validated into the silver row it becomes, or an error saying why not.
CREATE TYPE tweetlake.parsed_tweet AS (
    tweet_id            text,
    text                text,
    created_at          timestamptz,
    tweet_type          text,
    language            text,
    region              text,
    hashtags            text[],
    mentions            text[],
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
    text_length         integer,
    sentiment_category  text,
    total_engagement    bigint,
    error               text,
    updated_at          timestamptz
);

CREATE FUNCTION tweetlake.parse_tweet(raw text) RETURNS tweetlake.parsed_tweet
    AS 'MODULE_PATHNAME', 'tweetlake_parse_tweet' LANGUAGE C STABLE PARALLEL SAFE;
COMMENT ON FUNCTION tweetlake.parse_tweet(text) IS
    'parse and validate one tweet message; error is NULL for a message that becomes silver';

/*
 * The generator (src/tweet_model.c): realistic synthetic tweets in the message format.
 * Same arguments, same output.  The timeline spreads n tweets over [start_at, start_at + span)
 * with a daily cycle; load more data with other seeds (the same seed repeats the same ids).
 */
CREATE FUNCTION tweetlake.generate_tweets(n bigint, seed bigint DEFAULT 0,
        start_at timestamptz DEFAULT '2026-01-01 00:00:00+00', span interval DEFAULT '7 days')
    RETURNS SETOF text
    AS 'MODULE_PATHNAME', 'tweetlake_generate_tweets' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE ROWS 1000;
COMMENT ON FUNCTION tweetlake.generate_tweets(bigint, bigint, timestamptz, interval) IS
    'n synthetic tweets as JSON messages, deterministic in all arguments';

/*
 * n messages of one stream as a Kafka producer sends them: new tweets and, in the shares
 * updates and deletes, updates of recent tweets of the stream (the same document with its
 * counts grown and a later updated_at) and tombstones for them (raw NULL, kafka_key the
 * tweet_id).  With both shares 0, raw is generate_tweets' output row for row.
 */
CREATE FUNCTION tweetlake.generate_messages(n bigint, seed bigint DEFAULT 0,
        start_at timestamptz DEFAULT '2026-01-01 00:00:00+00', span interval DEFAULT '7 days',
        updates double precision DEFAULT 0, deletes double precision DEFAULT 0)
    RETURNS TABLE (kafka_key text, raw text)
    AS 'MODULE_PATHNAME', 'tweetlake_generate_messages' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE ROWS 1000;
COMMENT ON FUNCTION tweetlake.generate_messages(bigint, bigint, timestamptz, interval, double precision, double precision) IS
    'n generated messages: new tweets, and in the shares updates and deletes updates and tombstones (raw NULL, kafka_key the tweet_id) of earlier ones; deterministic in all arguments';
REVOKE EXECUTE ON FUNCTION tweetlake.generate_messages(bigint, bigint, timestamptz, interval, double precision, double precision) FROM PUBLIC;

-- The same tweets serialized through json-c objects: the reference the fast serializer is checked against.
CREATE FUNCTION tweetlake.generate_tweets_jsonc(n bigint, seed bigint DEFAULT 0,
        start_at timestamptz DEFAULT '2026-01-01 00:00:00+00', span interval DEFAULT '7 days')
    RETURNS SETOF text
    AS 'MODULE_PATHNAME', 'tweetlake_generate_tweets_jsonc' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE ROWS 1000;

-- Exact average from an exact sum and count (numeric sums make it order-independent),
-- rounded to the nearest double.  A mean too small for a double (sums that nearly cancel)
-- is 0: below 1e-280 the exact quotient is rounded at 300 decimals before the cast, which
-- would otherwise underflow (the test costs nothing measurable; the rounding is for them only).
CREATE FUNCTION tweetlake.exact_avg(total numeric, n bigint) RETURNS double precision
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    RETURN CASE WHEN n > 0 THEN
        (CASE WHEN abs(total) < 1e-280 THEN round(total / n, 300) ELSE total / n END)::double precision
    END;

-- Unbounded output for a few bytes of input: not for everyone.  tweet_id_of stays
-- executable by PUBLIC: bronze.tweets.tweet_id is computed with it, so whoever may insert
-- into bronze needs it, and it reads at most the id itself.
REVOKE EXECUTE ON FUNCTION tweetlake.generate_tweets(bigint, bigint, timestamptz, interval),
    tweetlake.generate_tweets_jsonc(bigint, bigint, timestamptz, interval),
    tweetlake.parse_tweet(text) FROM PUBLIC;

