/*
 * tweetlake 0.6.0 -> 0.7.0 (CHANGELOG.md): the top users without a sort.
 *   - index gold.user_engagement_total_engagement, which the "top users by engagement"
 *     ranking reads backwards.  Building it reads gold.user_engagement once (one row per
 *     user) and holds off the consumers' batches for that long.
 * Each definition here is the same text as in schema/sources/, which a fresh install is
 * built from; t/050_upgrade.pl checks that both give the same schema.
 */
\echo Use "ALTER EXTENSION tweetlake UPDATE TO '0.7.0'" to load this file. \quit

SET LOCAL search_path = pg_catalog, pg_temp;

CREATE INDEX user_engagement_total_engagement ON gold.user_engagement (total_engagement);
