/*
 * tweetlake 0.7.0 -> 0.8.0 (CHANGELOG.md): gold rows rewritten by every batch cost less.
 *   - tweetlake.user_hour and tweetlake.mention_hour: toast_tuple_target = 8160, so the row
 *     of a busy account (bags past 2 kB) is no longer compressed at each update.
 *   - gold.popular_hashtags_by_hour: fillfactor = 50; gold.active_users_by_day: fillfactor =
 *     70, room on the page for a row's next version (HOT updates).
 * Storage parameters only: no table is rewritten; pages already full fill to the new level
 * as they are written again.
 * Each definition here is the same text as in schema/sources/, which a fresh install is
 * built from; t/050_upgrade.pl checks that both give the same schema.
 */
\echo Use "ALTER EXTENSION tweetlake UPDATE TO '0.8.0'" to load this file. \quit

SET LOCAL search_path = pg_catalog, pg_temp;

ALTER TABLE tweetlake.user_hour SET (toast_tuple_target = 8160);
ALTER TABLE tweetlake.mention_hour SET (toast_tuple_target = 8160);
ALTER TABLE gold.popular_hashtags_by_hour SET (fillfactor = 50);
ALTER TABLE gold.active_users_by_day SET (fillfactor = 70);
