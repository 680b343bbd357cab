/*
 * Gold: one piece per table, each with what keeps it (the distinct-count sets its
 * unique_* columns are counted from), what it must equal (tweetlake.recompute_<table>, the
 * full recompute from silver that rebuild_gold() loads and verify() compares against), and
 * the views that read it.  The batch trigger that keeps every table current is in
 * 60_batch.sql.
 *
 * Every row belongs to a tenant (the column tenant, last in each table and in each key):
 * two tenants' groups never mix, and each distinct count is exact per tenant.
 *
 * hour = start of the UTC hour of created_at, day = its UTC date.  Averages are kept
 * exact: each table keeps the sums and counts behind them.  Missing region/language group
 * under 'unknown'.
 *
 * Distinct counts (unique_users, unique_mentions) are exact and kept by membership rows
 * keyed by the member, not by the group: tweetlake.user_hour holds, for each user and hour,
 * the hashtags, (region, language) pairs and languages the user tweeted with, each as a
 * tweetlake.bag (sorted keys with a count of tweets each); tweetlake.mention_hour does the
 * same for each mentioned account and the hashtags it was mentioned with.  A batch merges
 * its own bags into these rows with one INSERT ... ON CONFLICT DO UPDATE per (hour, member)
 * and reads back under the row lock which keys it added: a key is new to the member when
 * the row's count now equals the count the batch brought (tweetlake.bag_new), and each new
 * key is one more member of that group.  This stays exact when several consumers write the
 * same rows concurrently.  A batch that takes rows back (an update's old version, a
 * deleted tweet) brings negative counts: a key the row no longer holds afterwards is a
 * group the member left (tweetlake.bag_gone), one member fewer.  Each
 * membership table has its recompute view too, so rebuild_gold() reloads it like gold.
 */

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
-- The keys added took away (negative counts) that after no longer holds: the groups left.
CREATE FUNCTION tweetlake.bag_gone(after tweetlake.bag, added tweetlake.bag) RETURNS text[]
    AS 'MODULE_PATHNAME', 'tweetlake_bag_gone' LANGUAGE C IMMUTABLE PARALLEL SAFE;

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
-- toast_tuple_target: a busy account's row grows past the 2 kB at which PostgreSQL would
-- compress its bags, and it is rewritten by nearly every batch; up to 8 kB it stays as it is
-- (pglz took 5 % of a consumer's CPU at a steady 6,000 tweets/s).
CREATE TABLE tweetlake.user_hour (
    hour      timestamptz NOT NULL,
    user_id   text COLLATE "C" NOT NULL,
    tweets    bigint NOT NULL,
    hashtags  tweetlake.bag NOT NULL,
    places    tweetlake.bag NOT NULL,
    languages tweetlake.bag NOT NULL,
    tenant    text NOT NULL DEFAULT 'default',
    PRIMARY KEY (hour, user_id, tenant)
) WITH (fillfactor = 70, toast_tuple_target = 8160);
COMMENT ON TABLE tweetlake.user_hour IS
    'per user and hour: tweets, and the hashtags, (region, language) pairs (tweetlake.pair_key) and languages tweeted with, counted';

CREATE TABLE tweetlake.mention_hour (
    hour     timestamptz NOT NULL,
    mention  text COLLATE "C" NOT NULL,
    hashtags tweetlake.bag NOT NULL,
    tenant   text NOT NULL DEFAULT 'default',
    PRIMARY KEY (hour, mention, tenant)
) WITH (fillfactor = 70, toast_tuple_target = 8160);
COMMENT ON TABLE tweetlake.mention_hour IS
    'per mentioned account and hour: the hashtags of the tweets that mention it, counted';

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
