-- Tenants (0.13.0): every row of bronze, silver and gold has its tenant, every key of silver
-- and gold includes it, and row-level security shows a role the tenants granted to it.
CREATE EXTENSION tweetlake;
SET tweetlake.batch_size = 500;

-- The same 1,500 tweets (one seed) for two tenants: the same tweet_ids in both, each its own
-- tweet.  A third tenant with updates and deletions; the rest, loaded without a tenant, are
-- the default's.
SELECT tweetlake.load_generated(1500, seed => 1, tenant => 'acme');
SELECT tweetlake.load_generated(1500, seed => 1, tenant => 'beta');
SELECT tweetlake.load_generated(1500, seed => 2, updates => 0.1, deletes => 0.05, tenant => 'gamma');
SELECT tweetlake.load_generated(700, seed => 3);
SELECT tenant, count(*) FROM bronze.tweets GROUP BY 1 ORDER BY 1;
SELECT tenant, count(*) AS tweets, count(DISTINCT tweet_id) AS ids FROM silver.tweets GROUP BY 1 ORDER BY 1;
SELECT count(*) AS ids_in_both FROM silver.tweets a JOIN silver.tweets b USING (tweet_id)
WHERE a.tenant = 'acme' AND b.tenant = 'beta';

-- Gold equals the full recompute, per tenant (the key includes the tenant) ...
SELECT gold_table, missing, extra, differing FROM tweetlake.verify();
-- ... and two tenants with the same tweets have the same gold, row for row, not mixed.
SELECT (SELECT count(*) FROM (SELECT hour, hashtag, tweet_count, unique_users, unique_mentions, total_engagement
                              FROM gold.popular_hashtags_by_hour WHERE tenant = 'acme'
                              EXCEPT
                              SELECT hour, hashtag, tweet_count, unique_users, unique_mentions, total_engagement
                              FROM gold.popular_hashtags_by_hour WHERE tenant = 'beta') d) AS acme_not_beta,
       (SELECT sum(total_tweets) FROM gold.hourly_activity_summary WHERE tenant = 'acme') AS acme_tweets,
       (SELECT sum(total_tweets) FROM gold.hourly_activity_summary WHERE tenant = 'beta') AS beta_tweets;
SELECT tenant, sum(total_tweets) AS tweets, sum(unique_users) AS user_hours
FROM gold.hourly_activity_summary GROUP BY 1 ORDER BY 1;
-- A distinct count is per tenant: one user tweeting in two tenants is one user in each.
SELECT h.tenant, h.unique_users = (SELECT count(DISTINCT s.user_id) FROM silver.tweets s
                                   WHERE s.tenant = h.tenant
                                     AND tweetlake.utc_hour(s.created_at) = h.hour) AS exact
FROM gold.hourly_activity_summary h
WHERE h.hour = (SELECT min(hour) FROM gold.hourly_activity_summary) ORDER BY 1;
-- Each tenant has its own top 100.
SELECT tenant, count(*), max(total_engagement) >= min(total_engagement) AS ordered
FROM gold.top_users_by_engagement GROUP BY 1 ORDER BY 1;

-- A deletion is one tenant's: beta's copy of a tweet goes, acme's stays.
SELECT tweetlake.delete_tweet((SELECT min(tweet_id) FROM silver.tweets WHERE tenant = 'beta'), 'beta');
SELECT tenant, count(*) FROM silver.tweets
WHERE tweet_id = (SELECT min(tweet_id) FROM silver.tweets WHERE tenant = 'acme') GROUP BY 1 ORDER BY 1;
SELECT tenant, count(*) FROM silver.deleted_tweets GROUP BY 1 ORDER BY 1;

-- One statement with two tenants' rows (a COPY from SQL, say): each tenant's rows are taken
-- in turn, as two batches would be.
INSERT INTO bronze.tweets (raw, tenant)
SELECT g.raw, CASE WHEN g.i % 3 = 0 THEN 'delta' ELSE 'epsilon' END
FROM tweetlake.generate_tweets(900, 7) WITH ORDINALITY AS g(raw, i);
SELECT tenant, count(*) FROM silver.tweets WHERE tenant IN ('delta', 'epsilon') GROUP BY 1 ORDER BY 1;
SELECT gold_table, missing, extra, differing FROM tweetlake.verify();

-- rebuild_gold() gives the same gold, every tenant's.
CREATE TEMP TABLE before AS SELECT * FROM gold.tweet_volume_by_region;
SELECT tweetlake.rebuild_gold();
SELECT count(*) AS changed FROM (SELECT * FROM before EXCEPT SELECT * FROM gold.tweet_volume_by_region) d;

-- Names: a tenant is named like a source.
\set VERBOSITY terse
SELECT tweetlake.create_source('acme_feed', 'k:9092', 'acme', tenant => 'Acme Inc');
SELECT tweetlake.grant_tenant('tweetlake_reader', 'no such tenant');
\set VERBOSITY default
SELECT name, tenant FROM tweetlake.create_source('acme_feed', 'k:9092', 'acme', tenant => 'acme');
SELECT name, tenant FROM tweetlake.alter_source('acme_feed', tenant => 'beta');
SELECT name, tenant FROM tweetlake.sources ORDER BY name;

-- Row-level security.  A tenant's role sees its tenant's rows in every table and view of
-- silver and gold, and nothing of bronze.
CREATE ROLE tl_acme LOGIN;
CREATE ROLE tl_acme_analyst LOGIN IN ROLE tl_acme;
CREATE ROLE tl_beta LOGIN;
CREATE ROLE tl_all LOGIN IN ROLE tweetlake_reader;
SELECT tweetlake.grant_tenant('tl_acme', 'acme');
SELECT tweetlake.grant_tenant('tl_beta', 'beta');
SELECT tweetlake.grant_tenant('tl_beta', 'gamma');
SELECT role, tenant FROM tweetlake.tenant_grants ORDER BY 1, 2;

SET ROLE tl_acme;
SELECT format('SELECT %L AS relation, array_agg(DISTINCT tenant ORDER BY tenant) AS tenants, count(*) > 0 AS rows FROM %s',
              c.oid::regclass, c.oid::regclass)
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname IN ('silver', 'gold') AND c.relkind IN ('r', 'v') ORDER BY c.oid::regclass::text
\gexec
SELECT count(*) FROM bronze.tweets;
SELECT count(*) FROM tweetlake.user_hour;
-- it sees its own grants only
SELECT role, tenant FROM tweetlake.tenant_grants;
-- no setting changes what it sees
SET app.tenant = 'beta';
SELECT array_agg(DISTINCT tenant) FROM gold.popular_hashtags_by_hour;
RESET ROLE;

-- A member of a tenant's role sees that tenant; a role with two tenants sees both.
SET ROLE tl_acme_analyst;
SELECT array_agg(DISTINCT tenant) FROM silver.tweets;
RESET ROLE;
SET ROLE tl_beta;
SELECT tenant, count(*) FROM gold.user_engagement GROUP BY 1 ORDER BY 1;
SELECT tenant, count(*) FROM gold.top_users_by_engagement GROUP BY 1 ORDER BY 1;
RESET ROLE;

-- tweetlake_reader sees every tenant.
SET ROLE tl_all;
SELECT tenant, count(*) FROM silver.tweets_view GROUP BY 1 ORDER BY 1;
RESET ROLE;

-- Who may grant: superusers and tweetlake_admin, nobody else.
SET ROLE tl_acme;
SELECT tweetlake.grant_tenant('tl_acme', 'beta');
RESET ROLE;

-- A revoked tenant is gone; with its last tenant the role loses tweetlake_tenant.
SELECT tweetlake.revoke_tenant('tl_beta', 'gamma');
SET ROLE tl_beta;
SELECT array_agg(DISTINCT tenant) FROM silver.tweets;
RESET ROLE;
SELECT tweetlake.revoke_tenant('tl_beta', 'beta');
SELECT tweetlake.revoke_tenant('tl_beta', 'beta');
SELECT pg_has_role('tl_beta', 'tweetlake_tenant', 'MEMBER') AS still_member;

SELECT tweetlake.drop_source('acme_feed');
DROP EXTENSION tweetlake;
DROP ROLE tl_acme_analyst, tl_acme, tl_beta, tl_all;
