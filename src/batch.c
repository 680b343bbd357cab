/*
 * batch.c - the bronze batch trigger, tweetlake.process_bronze_batch(): each INSERT or COPY
 * into bronze.tweets becomes, in one statement-level run, dead letters, new silver rows and
 * the gold increments they make.  The consumers and a plain INSERT/COPY all come through
 * here.
 *
 * The messages of the batch (the transition table) are parsed here (parse.c) and the new
 * silver rows grouped in one pass, in hash tables, by every key gold is kept by.  SQL then
 * writes the rows that result, reading them as ephemeral named relations (as a trigger
 * reads its transition table):
 *   1. SILVER_SQL  the tweet_ids with one message into silver.tweets, ON CONFLICT
 *                  (tweet_id) DO NOTHING; RETURNING says which tweets are new
 *      (0.5.0 on)  the messages of the others (silver has the id, or the batch has
 *                  several) are applied in order to the stored version (KNOWN_SQL): a
 *                  newer one replaces it (UPDATE_SQL), a tombstone deletes it
 *                  (DELETE_SQL); what is replaced or deleted is grouped with sign -1
 *   2. DEAD_SQL    the rejected messages into bronze.dead_letters, with the reason
 *   3. GOLD_SQL    one statement: the batch's bags merged into tweetlake.user_hour and
 *                  mention_hour (one row per (hour, member)); the keys whose count is now
 *                  the count the batch brought are new members of their group
 *                  (tweetlake.bag_new); then every gold table upserted once per group
 *                  touched, in key order (concurrent batches lock rows in one order);
 *                  after a retraction GONE_SQL, CLEANUP_SQL and RECHECK_SQL (below)
 *   4. TOP_SQL     (0.9.0 on) the chunk's users whose total passed the floor into the
 *                  top users' set (tweetlake.top_users); from 0.10.0 on by the one batch
 *                  that holds the set, the others' into tweetlake.top_users_pending
 * What a group adds is what the recompute views (schema/sources/4*_gold_*.sql) compute for
 * it, so rebuild_gold() and verify() stay the reference.  A statement of more than
 * CHUNK_ROWS rows goes through all of this a chunk at a time, and the statements' plans are
 * kept per backend (run()).
 */
#include "tweetlake.h"
#include "parse.h"

#include "access/htup_details.h"
#include "catalog/namespace.h"
#include "catalog/pg_collation_d.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "common/hashfn.h"
#include "common/int.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "portability/instr_time.h"
#include "storage/lmgr.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/date.h"
#include "utils/datum.h"
#include "utils/fmgrprotos.h"
#include "utils/guc.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/numeric.h"
#include "utils/queryenvironment.h"
#include "utils/tuplestore.h"
#include "utils/syscache.h"
#include "utils/typcache.h"
#include "utils/varlena.h"

PG_FUNCTION_INFO_V1(tweetlake_process_bronze_batch);

#define SILVER_COLUMNS \
	"tweet_id, text, created_at, tweet_type, language, region, hashtags, mentions, " \
	"retweet_count, like_count, reply_count, quote_count, is_retweet, is_reply, is_quote, " \
	"has_media, has_url, sentiment_score, engagement_score, reach_estimate, user_id, " \
	"username, display_name, followers_count, following_count, verified, user_created_at, " \
	"user_location, user_description, original_tweet_id, original_user_id, " \
	"reply_to_tweet_id, reply_to_user_id, quoted_tweet_id, quoted_user_id, quoted_text, " \
	"text_length, sentiment_category, total_engagement"

static const char SILVER_SQL[] =
"INSERT INTO silver.tweets (@t " SILVER_COLUMNS ") "
"SELECT @p " SILVER_COLUMNS " FROM batch_silver "
"ON CONFLICT (@t tweet_id) DO NOTHING RETURNING tweet_id";

/*
 * From schema 0.5.0 on (updates and deletions): a row carries its version, and a deleted
 * tweet_id never comes back.  The rows silver already has are read back (KNOWN_SQL) and
 * replaced by the newer versions (UPDATE_SQL); tombstones delete (DELETE_SQL).  Both read
 * silver's rows (KNOWN_SQL the stored versions, DELETE_SQL the deleted rows) in the order
 * of SILVER_COLUMNS, updated_at: what the batch takes back from gold.
 */
#define SILVER_V5_INSERT(rel, where) \
	"INSERT INTO silver.tweets (@t " SILVER_COLUMNS ", updated_at) " \
	"SELECT @p " SILVER_COLUMNS ", updated_at FROM " rel " b " where \
	"ON CONFLICT (@t tweet_id) DO NOTHING RETURNING tweet_id"
#define NOT_DELETED \
	"WHERE NOT EXISTS (SELECT FROM silver.deleted_tweets d WHERE @d. d.tweet_id OPERATOR(pg_catalog.=) b.tweet_id) "

static const char SILVER_V5_SQL[] = SILVER_V5_INSERT("batch_silver", NOT_DELETED);

/* While no tweet was ever deleted (the usual case), the probe above is left out. */
static const char SILVER_V5_NONE_DELETED_SQL[] = SILVER_V5_INSERT("batch_silver", "");

/* The tweets the chunk had several messages for, that silver did not have (write_silver). */
static const char LATE_SQL[] = SILVER_V5_INSERT("batch_late", NOT_DELETED);

/* Which of these ids were deleted before. */
static const char WERE_DELETED_SQL[] =
"SELECT d.tweet_id FROM silver.deleted_tweets d WHERE @d. d.tweet_id OPERATOR(pg_catalog.=) ANY (SELECT id FROM batch_unstored)";

static const char ANY_DELETED_SQL[] =
"SELECT EXISTS (SELECT FROM silver.deleted_tweets)";

static const char KNOWN_SQL[] =
"SELECT " SILVER_COLUMNS ", updated_at FROM silver.tweets s "
"WHERE @s. s.tweet_id OPERATOR(pg_catalog.=) ANY (SELECT id FROM batch_known) "
"ORDER BY tweet_id FOR UPDATE";

static const char UPDATE_SQL[] =
"UPDATE silver.tweets s SET (" SILVER_COLUMNS ", updated_at, processed_at, processing_date) = "
"(u.tweet_id, u.text, u.created_at, u.tweet_type, u.language, u.region, u.hashtags, u.mentions, "
"u.retweet_count, u.like_count, u.reply_count, u.quote_count, u.is_retweet, u.is_reply, u.is_quote, "
"u.has_media, u.has_url, u.sentiment_score, u.engagement_score, u.reach_estimate, u.user_id, "
"u.username, u.display_name, u.followers_count, u.following_count, u.verified, u.user_created_at, "
"u.user_location, u.user_description, u.original_tweet_id, u.original_user_id, "
"u.reply_to_tweet_id, u.reply_to_user_id, u.quoted_tweet_id, u.quoted_user_id, u.quoted_text, "
"u.text_length, u.sentiment_category, u.total_engagement, u.updated_at, "
"pg_catalog.now(), (pg_catalog.now() AT TIME ZONE 'UTC')::pg_catalog.date) "
"FROM batch_updated u WHERE @s. s.tweet_id OPERATOR(pg_catalog.=) u.tweet_id";

static const char DELETE_SQL[] =
"WITH d AS (\n"
"    DELETE FROM silver.tweets s USING batch_deleted b\n"
"    WHERE @s. s.tweet_id OPERATOR(pg_catalog.=) b.id\n"
"    RETURNING " SILVER_COLUMNS ", updated_at\n"
"), recorded AS (\n"
"    INSERT INTO silver.deleted_tweets (@t tweet_id, was_stored)\n"
"    SELECT @p b.id, EXISTS (SELECT FROM d WHERE d.tweet_id OPERATOR(pg_catalog.=) b.id)\n"
"    FROM batch_deleted b\n"
"    ON CONFLICT (@t tweet_id) DO NOTHING\n"
")\n"
"SELECT * FROM d";

static const char DEAD_SQL[] =
"INSERT INTO bronze.dead_letters (@t raw, reason, tweet_id, kafka_topic, kafka_partition, kafka_offset) "
"SELECT @p pg_catalog.convert_to(coalesce(raw, ''), 'UTF8'), reason, tweet_id, kafka_topic, kafka_partition, kafka_offset "
"FROM batch_rejected";

/*
 * The batch's groups (relations batch_*, made below) into the membership rows and gold.
 *   uh, mh      the bags merged into tweetlake.user_hour / mention_hour; *_new are the
 *               groups that gained a member: the keys whose count the row holds now equals
 *               what the batch brought (bag_new)
 *   g_*         gold upserts: sums and counts add, averages are recomputed from them
 *   top_*       the hour's top hashtag/region can only change to one this batch touched,
 *               so it is compared against the stored top (ties: alphabetical)
 *   ORDER BY    every upsert feeds its rows in key order, so concurrent batches (several
 *               consumers) take row locks in one order and do not deadlock
 *   WHERE (SELECT count(*) FROM x) >= 0
 *               and the tables in one order too.  The upserts the main query reads
 *               (uh, mh, g_tags, region_totals) run when the plan first pulls them, and
 *               that order is the plan's: a plan made for another batch size or other
 *               table sizes may build its hash tables the other way round, and two
 *               consumers would lock user_hour and mention_hour, or hashtags and regions,
 *               in opposite orders.  Each one's first row waits (an InitPlan of a
 *               one-time filter) until the one before it has run to the end; the upserts
 *               nothing reads run after the main query, in the order written.
 */
static const char GOLD_SQL[] =
"WITH uh AS (\n"
"    INSERT INTO tweetlake.user_hour AS u (@t hour, user_id, tweets, hashtags, places, languages)\n"
"    SELECT @p hour, user_id, tweets, hashtags, places, languages FROM batch_user_hour\n"
"    ORDER BY hour, user_id\n"
"    ON CONFLICT (@t hour, user_id) DO UPDATE SET\n"
"        tweets    = u.tweets OPERATOR(pg_catalog.+) excluded.tweets,\n"
"        hashtags  = tweetlake.bag_add(u.hashtags, excluded.hashtags),\n"
"        places    = tweetlake.bag_add(u.places, excluded.places),\n"
"        languages = tweetlake.bag_add(u.languages, excluded.languages)\n"
"    RETURNING hour, user_id, tweets, hashtags, places, languages\n"
"), uh_new AS MATERIALIZED (\n"
"    SELECT r.hour, r.tweets OPERATOR(pg_catalog.=) i.tweets AND i.tweets OPERATOR(pg_catalog.>) 0 AS new_in_hour,\n"
"           tweetlake.bag_new(r.hashtags, i.hashtags) AS hashtags,\n"
"           tweetlake.bag_new(r.places, i.places) AS places,\n"
"           tweetlake.bag_new(r.languages, i.languages) AS languages\n"
"    FROM uh r JOIN batch_user_hour i\n"
"      ON i.hour OPERATOR(pg_catalog.=) r.hour AND i.user_id OPERATOR(pg_catalog.=) r.user_id\n"
"), mh AS (\n"
"    INSERT INTO tweetlake.mention_hour AS u (@t hour, mention, hashtags)\n"
"    SELECT @p hour, mention, hashtags FROM batch_mention_hour\n"
"    WHERE (SELECT pg_catalog.count(*) FROM uh_new) OPERATOR(pg_catalog.>=) 0\n"
"    ORDER BY hour, mention\n"
"    ON CONFLICT (@t hour, mention) DO UPDATE SET\n"
"        hashtags = tweetlake.bag_add(u.hashtags, excluded.hashtags)\n"
"    RETURNING hour, mention, hashtags\n"
"), tag_users_new AS (\n"
"    SELECT n.hour, k.hashtag FROM uh_new n CROSS JOIN LATERAL pg_catalog.unnest(n.hashtags) AS k(hashtag)\n"
"), tag_mentions_new AS (\n"
"    SELECT r.hour, k.hashtag\n"
"    FROM mh r JOIN batch_mention_hour i\n"
"      ON i.hour OPERATOR(pg_catalog.=) r.hour AND i.mention OPERATOR(pg_catalog.=) r.mention\n"
"    CROSS JOIN LATERAL pg_catalog.unnest(tweetlake.bag_new(r.hashtags, i.hashtags)) AS k(hashtag)\n"
"), g_tags AS (\n"
"    INSERT INTO gold.popular_hashtags_by_hour AS g (@t \n"
"        hour, hashtag, tweet_count, unique_users, unique_mentions, avg_sentiment,\n"
"        total_engagement, avg_engagement, sentiment_sum, sentiment_n)\n"
"    SELECT @p a.hour, a.hashtag, a.n, coalesce(u.n, 0), coalesce(m.n, 0),\n"
"           tweetlake.exact_avg(a.ssum, a.sn), a.eng,\n"
"           a.eng::pg_catalog.float8 OPERATOR(pg_catalog./) greatest(a.n, 1), a.ssum, a.sn\n"
"    FROM batch_hashtag_hour a\n"
"    LEFT JOIN (SELECT hour, hashtag, pg_catalog.count(*) AS n FROM tag_users_new GROUP BY hour, hashtag) u\n"
"           USING (hour, hashtag)\n"
"    LEFT JOIN (SELECT hour, hashtag, pg_catalog.count(*) AS n FROM tag_mentions_new GROUP BY hour, hashtag) m\n"
"           USING (hour, hashtag)\n"
"    WHERE (SELECT pg_catalog.count(*) FROM mh) OPERATOR(pg_catalog.>=) 0\n"
"    ORDER BY a.hour, a.hashtag\n"
"    ON CONFLICT (@t hour, hashtag) DO UPDATE SET\n"
"        tweet_count      = g.tweet_count OPERATOR(pg_catalog.+) excluded.tweet_count,\n"
"        unique_users     = g.unique_users OPERATOR(pg_catalog.+) excluded.unique_users,\n"
"        unique_mentions  = g.unique_mentions OPERATOR(pg_catalog.+) excluded.unique_mentions,\n"
"        total_engagement = g.total_engagement OPERATOR(pg_catalog.+) excluded.total_engagement,\n"
"        sentiment_sum    = g.sentiment_sum OPERATOR(pg_catalog.+) excluded.sentiment_sum,\n"
"        sentiment_n      = g.sentiment_n OPERATOR(pg_catalog.+) excluded.sentiment_n,\n"
"        avg_sentiment    = tweetlake.exact_avg(g.sentiment_sum OPERATOR(pg_catalog.+) excluded.sentiment_sum,\n"
"                                               g.sentiment_n OPERATOR(pg_catalog.+) excluded.sentiment_n),\n"
"        avg_engagement   = (g.total_engagement OPERATOR(pg_catalog.+) excluded.total_engagement)::pg_catalog.float8\n"
"                           OPERATOR(pg_catalog./) greatest(g.tweet_count OPERATOR(pg_catalog.+) excluded.tweet_count, 1)\n"
"    RETURNING hour, hashtag, tweet_count\n"
"), g_users AS (\n"
"    INSERT INTO gold.active_users_by_day AS g (@t \n"
"        day, user_id, username, tweets_count, followers_count, total_engagement,\n"
"        avg_sentiment, sentiment_sum, sentiment_n)\n"
"    SELECT @p day, user_id, username, n, followers, eng, tweetlake.exact_avg(ssum, sn), ssum, sn\n"
"    FROM batch_user_day\n"
"    ORDER BY day, user_id\n"
"    ON CONFLICT (@t day, user_id) DO UPDATE SET\n"
"        username         = greatest(g.username, excluded.username),\n"
"        tweets_count     = g.tweets_count OPERATOR(pg_catalog.+) excluded.tweets_count,\n"
"        followers_count  = greatest(g.followers_count, excluded.followers_count),\n"
"        total_engagement = g.total_engagement OPERATOR(pg_catalog.+) excluded.total_engagement,\n"
"        sentiment_sum    = g.sentiment_sum OPERATOR(pg_catalog.+) excluded.sentiment_sum,\n"
"        sentiment_n      = g.sentiment_n OPERATOR(pg_catalog.+) excluded.sentiment_n,\n"
"        avg_sentiment    = tweetlake.exact_avg(g.sentiment_sum OPERATOR(pg_catalog.+) excluded.sentiment_sum,\n"
"                                               g.sentiment_n OPERATOR(pg_catalog.+) excluded.sentiment_n)\n"
"), g_user_totals AS (\n"
"    INSERT INTO gold.user_engagement AS g (@t \n"
"        user_id, username, tweets_count, followers_count, total_engagement, first_day, last_day)\n"
"    SELECT @p user_id, username, n, followers, eng, first_day, last_day FROM batch_user\n"
"    ORDER BY user_id\n"
"    ON CONFLICT (@t user_id) DO UPDATE SET\n"
"        username         = greatest(g.username, excluded.username),\n"
"        tweets_count     = g.tweets_count OPERATOR(pg_catalog.+) excluded.tweets_count,\n"
"        followers_count  = greatest(g.followers_count, excluded.followers_count),\n"
"        total_engagement = g.total_engagement OPERATOR(pg_catalog.+) excluded.total_engagement,\n"
"        first_day        = least(g.first_day, excluded.first_day),\n"
"        last_day         = greatest(g.last_day, excluded.last_day)\n"
"), region_users_new AS (\n"
"    SELECT n.hour, k.pair FROM uh_new n CROSS JOIN LATERAL pg_catalog.unnest(n.places) AS k(pair)\n"
"), g_region AS (\n"
"    INSERT INTO gold.tweet_volume_by_region AS g (@t \n"
"        hour, region, language, tweet_count, unique_users, avg_sentiment, positive_count,\n"
"        negative_count, neutral_count, total_engagement, sentiment_sum, sentiment_n)\n"
"    SELECT @p a.hour, a.region, a.language, a.n, coalesce(u.n, 0), tweetlake.exact_avg(a.ssum, a.sn),\n"
"           a.pos, a.neg, a.neu, a.eng, a.ssum, a.sn\n"
"    FROM batch_region_hour a\n"
"    LEFT JOIN (SELECT hour, pair, pg_catalog.count(*) AS n FROM region_users_new GROUP BY hour, pair) u\n"
"           ON u.hour OPERATOR(pg_catalog.=) a.hour\n"
"          AND u.pair OPERATOR(pg_catalog.=) tweetlake.pair_key(a.region, a.language)\n"
"    ORDER BY a.hour, a.region, a.language\n"
"    ON CONFLICT (@t hour, region, language) DO UPDATE SET\n"
"        tweet_count      = g.tweet_count OPERATOR(pg_catalog.+) excluded.tweet_count,\n"
"        unique_users     = g.unique_users OPERATOR(pg_catalog.+) excluded.unique_users,\n"
"        positive_count   = g.positive_count OPERATOR(pg_catalog.+) excluded.positive_count,\n"
"        negative_count   = g.negative_count OPERATOR(pg_catalog.+) excluded.negative_count,\n"
"        neutral_count    = g.neutral_count OPERATOR(pg_catalog.+) excluded.neutral_count,\n"
"        total_engagement = g.total_engagement OPERATOR(pg_catalog.+) excluded.total_engagement,\n"
"        sentiment_sum    = g.sentiment_sum OPERATOR(pg_catalog.+) excluded.sentiment_sum,\n"
"        sentiment_n      = g.sentiment_n OPERATOR(pg_catalog.+) excluded.sentiment_n,\n"
"        avg_sentiment    = tweetlake.exact_avg(g.sentiment_sum OPERATOR(pg_catalog.+) excluded.sentiment_sum,\n"
"                                               g.sentiment_n OPERATOR(pg_catalog.+) excluded.sentiment_n)\n"
"), region_totals AS (\n"
"    INSERT INTO tweetlake.region_hour_counts AS r (@t hour, region, tweet_count)\n"
"    SELECT @p hour, region, n FROM batch_region_total\n"
"    WHERE (SELECT pg_catalog.count(*) FROM g_tags) OPERATOR(pg_catalog.>=) 0\n"
"    ORDER BY hour, region\n"
"    ON CONFLICT (@t hour, region) DO UPDATE SET\n"
"        tweet_count = r.tweet_count OPERATOR(pg_catalog.+) excluded.tweet_count\n"
"    RETURNING hour, region, tweet_count\n"
"), language_users_new AS (\n"
"    SELECT n.hour, k.language FROM uh_new n CROSS JOIN LATERAL pg_catalog.unnest(n.languages) AS k(language)\n"
"), g_language AS (\n"
"    INSERT INTO gold.tweet_metrics_by_language AS g (@t \n"
"        hour, language, tweet_count, avg_tweet_length, avg_sentiment, avg_engagement,\n"
"        unique_users, text_length_sum, total_engagement, sentiment_sum, sentiment_n)\n"
"    SELECT @p a.hour, a.language, a.n, a.len::pg_catalog.float8 OPERATOR(pg_catalog./) greatest(a.n, 1),\n"
"           tweetlake.exact_avg(a.ssum, a.sn), a.eng::pg_catalog.float8 OPERATOR(pg_catalog./) greatest(a.n, 1),\n"
"           coalesce(u.n, 0), a.len, a.eng, a.ssum, a.sn\n"
"    FROM batch_language_hour a\n"
"    LEFT JOIN (SELECT hour, language, pg_catalog.count(*) AS n\n"
"               FROM language_users_new GROUP BY hour, language) u\n"
"           USING (hour, language)\n"
"    ORDER BY a.hour, a.language\n"
"    ON CONFLICT (@t hour, language) DO UPDATE SET\n"
"        tweet_count      = g.tweet_count OPERATOR(pg_catalog.+) excluded.tweet_count,\n"
"        unique_users     = g.unique_users OPERATOR(pg_catalog.+) excluded.unique_users,\n"
"        text_length_sum  = g.text_length_sum OPERATOR(pg_catalog.+) excluded.text_length_sum,\n"
"        total_engagement = g.total_engagement OPERATOR(pg_catalog.+) excluded.total_engagement,\n"
"        sentiment_sum    = g.sentiment_sum OPERATOR(pg_catalog.+) excluded.sentiment_sum,\n"
"        sentiment_n      = g.sentiment_n OPERATOR(pg_catalog.+) excluded.sentiment_n,\n"
"        avg_tweet_length = (g.text_length_sum OPERATOR(pg_catalog.+) excluded.text_length_sum)::pg_catalog.float8\n"
"                           OPERATOR(pg_catalog./) greatest(g.tweet_count OPERATOR(pg_catalog.+) excluded.tweet_count, 1),\n"
"        avg_sentiment    = tweetlake.exact_avg(g.sentiment_sum OPERATOR(pg_catalog.+) excluded.sentiment_sum,\n"
"                                               g.sentiment_n OPERATOR(pg_catalog.+) excluded.sentiment_n),\n"
"        avg_engagement   = (g.total_engagement OPERATOR(pg_catalog.+) excluded.total_engagement)::pg_catalog.float8\n"
"                           OPERATOR(pg_catalog./) greatest(g.tweet_count OPERATOR(pg_catalog.+) excluded.tweet_count, 1)\n"
"), g_types AS (\n"
"    INSERT INTO gold.engagement_by_type_hour AS g (@t \n"
"        hour, tweet_type, influence_level, tweet_count, total_engagement, avg_engagement,\n"
"        viral_count, avg_sentiment, sentiment_sum, sentiment_n)\n"
"    SELECT @p hour, tweet_type, tweetlake.influence_level(followers), n, eng,\n"
"           eng::pg_catalog.float8 OPERATOR(pg_catalog./) greatest(n, 1), viral, tweetlake.exact_avg(ssum, sn), ssum, sn\n"
"    FROM batch_type_hour\n"
"    ORDER BY hour, tweet_type, tweetlake.influence_level(followers)\n"
"    ON CONFLICT (@t hour, tweet_type, influence_level) DO UPDATE SET\n"
"        tweet_count      = g.tweet_count OPERATOR(pg_catalog.+) excluded.tweet_count,\n"
"        total_engagement = g.total_engagement OPERATOR(pg_catalog.+) excluded.total_engagement,\n"
"        viral_count      = g.viral_count OPERATOR(pg_catalog.+) excluded.viral_count,\n"
"        sentiment_sum    = g.sentiment_sum OPERATOR(pg_catalog.+) excluded.sentiment_sum,\n"
"        sentiment_n      = g.sentiment_n OPERATOR(pg_catalog.+) excluded.sentiment_n,\n"
"        avg_engagement   = (g.total_engagement OPERATOR(pg_catalog.+) excluded.total_engagement)::pg_catalog.float8\n"
"                           OPERATOR(pg_catalog./) greatest(g.tweet_count OPERATOR(pg_catalog.+) excluded.tweet_count, 1),\n"
"        avg_sentiment    = tweetlake.exact_avg(g.sentiment_sum OPERATOR(pg_catalog.+) excluded.sentiment_sum,\n"
"                                               g.sentiment_n OPERATOR(pg_catalog.+) excluded.sentiment_n)\n"
"), hour_users_new AS (\n"
"    SELECT hour FROM uh_new WHERE new_in_hour\n"
"), top_tag AS (\n"
"    SELECT DISTINCT ON (hour) hour, hashtag, tweet_count\n"
"    FROM g_tags ORDER BY hour, tweet_count DESC, hashtag\n"
"), top_region AS (\n"
"    SELECT DISTINCT ON (hour) hour, region, tweet_count\n"
"    FROM region_totals ORDER BY hour, tweet_count DESC, region\n"
")\n"
"INSERT INTO gold.hourly_activity_summary AS g (@t \n"
"    hour, total_tweets, unique_users, avg_sentiment, total_engagement, top_hashtag,\n"
"    top_region, positive_count, negative_count, neutral_count, sentiment_sum, sentiment_n,\n"
"    top_hashtag_count, top_region_count)\n"
"SELECT @p a.hour, a.n, coalesce(u.n, 0), tweetlake.exact_avg(a.ssum, a.sn), a.eng,\n"
"       t.hashtag, r.region, a.pos, a.neg, a.neu, a.ssum, a.sn, t.tweet_count, r.tweet_count\n"
"FROM batch_hour a\n"
"LEFT JOIN (SELECT hour, pg_catalog.count(*) AS n FROM hour_users_new GROUP BY hour) u USING (hour)\n"
"LEFT JOIN top_tag t USING (hour)\n"
"LEFT JOIN top_region r USING (hour)\n"
"WHERE (SELECT pg_catalog.count(*) FROM region_totals) OPERATOR(pg_catalog.>=) 0\n"
"ORDER BY a.hour\n"
"ON CONFLICT (@t hour) DO UPDATE SET\n"
"    total_tweets      = g.total_tweets OPERATOR(pg_catalog.+) excluded.total_tweets,\n"
"    unique_users      = g.unique_users OPERATOR(pg_catalog.+) excluded.unique_users,\n"
"    total_engagement  = g.total_engagement OPERATOR(pg_catalog.+) excluded.total_engagement,\n"
"    positive_count    = g.positive_count OPERATOR(pg_catalog.+) excluded.positive_count,\n"
"    negative_count    = g.negative_count OPERATOR(pg_catalog.+) excluded.negative_count,\n"
"    neutral_count     = g.neutral_count OPERATOR(pg_catalog.+) excluded.neutral_count,\n"
"    sentiment_sum     = g.sentiment_sum OPERATOR(pg_catalog.+) excluded.sentiment_sum,\n"
"    sentiment_n       = g.sentiment_n OPERATOR(pg_catalog.+) excluded.sentiment_n,\n"
"    avg_sentiment     = tweetlake.exact_avg(g.sentiment_sum OPERATOR(pg_catalog.+) excluded.sentiment_sum,\n"
"                                            g.sentiment_n OPERATOR(pg_catalog.+) excluded.sentiment_n),\n"
"    top_hashtag       = CASE WHEN tweetlake.ranks_first(excluded.top_hashtag_count, excluded.top_hashtag,\n"
"                                                        g.top_hashtag_count, g.top_hashtag)\n"
"                             THEN excluded.top_hashtag ELSE g.top_hashtag END,\n"
"    top_hashtag_count = CASE WHEN tweetlake.ranks_first(excluded.top_hashtag_count, excluded.top_hashtag,\n"
"                                                        g.top_hashtag_count, g.top_hashtag)\n"
"                             THEN excluded.top_hashtag_count ELSE g.top_hashtag_count END,\n"
"    top_region        = CASE WHEN tweetlake.ranks_first(excluded.top_region_count, excluded.top_region,\n"
"                                                        g.top_region_count, g.top_region)\n"
"                             THEN excluded.top_region ELSE g.top_region END,\n"
"    top_region_count  = CASE WHEN tweetlake.ranks_first(excluded.top_region_count, excluded.top_region,\n"
"                                                        g.top_region_count, g.top_region)\n"
"                             THEN excluded.top_region_count ELSE g.top_region_count END";

/*
 * A chunk that takes rows back (updates, deletions) runs three more statements after
 * GOLD_SQL, each seeing what the one before wrote:
 *   GONE_SQL     the members that left a group: the keys the batch's bags took away that
 *                the member's row no longer holds (tweetlake.bag_gone, the row read back
 *                under the lock GOLD_SQL took), one fewer in each distinct count; a user
 *                whose row in tweetlake.user_hour is at 0 tweets left the hour
 *   CLEANUP_SQL  rows whose count is now 0 deleted: a group with no tweet left is no
 *                group (the recompute views have no such row)
 *   RECHECK_SQL  what a retraction can lower but a sum cannot say: the hour's top hashtag
 *                and region, found again among the hour's rows; a user's largest
 *                followers_count and username (and first and last day) read again from
 *                silver, only for the users whose retracted values were not matched by
 *                what the batch added (batch_user_day/batch_user.recheck)
 * Rows the batch did not touch cannot change, so each statement reads only the batch's
 * keys; the rows are the ones GOLD_SQL locked, so concurrent batches see them in order.
 */
static const char GONE_SQL[] =
"WITH uh AS MATERIALIZED (\n"
"    SELECT u.hour, u.tweets OPERATOR(pg_catalog.=) 0 AS left_hour,\n"
"           tweetlake.bag_gone(u.hashtags, i.hashtags) AS hashtags,\n"
"           tweetlake.bag_gone(u.places, i.places) AS places,\n"
"           tweetlake.bag_gone(u.languages, i.languages) AS languages\n"
"    FROM batch_user_hour i JOIN tweetlake.user_hour u\n"
"      ON @u. u.hour OPERATOR(pg_catalog.=) i.hour AND u.user_id OPERATOR(pg_catalog.=) i.user_id\n"
"    WHERE i.retracts\n"
"), tag_users AS (\n"
"    SELECT n.hour, k.hashtag, pg_catalog.count(*) AS n\n"
"    FROM uh n CROSS JOIN LATERAL pg_catalog.unnest(n.hashtags) AS k(hashtag) GROUP BY 1, 2\n"
"), tag_mentions AS (\n"
"    SELECT u.hour, k.hashtag, pg_catalog.count(*) AS n\n"
"    FROM batch_mention_hour i JOIN tweetlake.mention_hour u\n"
"      ON @u. u.hour OPERATOR(pg_catalog.=) i.hour AND u.mention OPERATOR(pg_catalog.=) i.mention\n"
"    CROSS JOIN LATERAL pg_catalog.unnest(tweetlake.bag_gone(u.hashtags, i.hashtags)) AS k(hashtag)\n"
"    WHERE i.retracts GROUP BY 1, 2\n"
"), g_tags AS (\n"
"    UPDATE gold.popular_hashtags_by_hour g SET\n"
"        unique_users    = g.unique_users OPERATOR(pg_catalog.-) coalesce(x.users, 0),\n"
"        unique_mentions = g.unique_mentions OPERATOR(pg_catalog.-) coalesce(x.mentions, 0)\n"
"    FROM (SELECT hour, hashtag, u.n AS users, m.n AS mentions\n"
"          FROM tag_users u FULL JOIN tag_mentions m USING (hour, hashtag)) x\n"
"    WHERE @g. g.hour OPERATOR(pg_catalog.=) x.hour AND g.hashtag OPERATOR(pg_catalog.=) x.hashtag\n"
"), g_region AS (\n"
"    UPDATE gold.tweet_volume_by_region g SET unique_users = g.unique_users OPERATOR(pg_catalog.-) x.n\n"
"    FROM (SELECT a.hour, a.region, a.language, pg_catalog.count(*) AS n\n"
"          FROM uh n CROSS JOIN LATERAL pg_catalog.unnest(n.places) AS k(pair)\n"
"          JOIN batch_region_hour a ON a.hour OPERATOR(pg_catalog.=) n.hour\n"
"           AND tweetlake.pair_key(a.region, a.language) OPERATOR(pg_catalog.=) k.pair\n"
"          GROUP BY 1, 2, 3) x\n"
"    WHERE @g. g.hour OPERATOR(pg_catalog.=) x.hour AND g.region OPERATOR(pg_catalog.=) x.region\n"
"      AND g.language OPERATOR(pg_catalog.=) x.language\n"
"), g_language AS (\n"
"    UPDATE gold.tweet_metrics_by_language g SET unique_users = g.unique_users OPERATOR(pg_catalog.-) x.n\n"
"    FROM (SELECT n.hour, k.language, pg_catalog.count(*) AS n\n"
"          FROM uh n CROSS JOIN LATERAL pg_catalog.unnest(n.languages) AS k(language) GROUP BY 1, 2) x\n"
"    WHERE @g. g.hour OPERATOR(pg_catalog.=) x.hour AND g.language OPERATOR(pg_catalog.=) x.language\n"
")\n"
"UPDATE gold.hourly_activity_summary g SET unique_users = g.unique_users OPERATOR(pg_catalog.-) x.n\n"
"FROM (SELECT hour, pg_catalog.count(*) AS n FROM uh WHERE left_hour GROUP BY hour) x\n"
"WHERE @g. g.hour OPERATOR(pg_catalog.=) x.hour";

static const char CLEANUP_SQL[] =
"WITH uh AS (\n"
"    DELETE FROM tweetlake.user_hour u USING batch_user_hour i\n"
"    WHERE i.retracts AND @u. u.hour OPERATOR(pg_catalog.=) i.hour AND u.user_id OPERATOR(pg_catalog.=) i.user_id\n"
"      AND u.tweets OPERATOR(pg_catalog.=) 0\n"
"), mh AS (\n"
"    DELETE FROM tweetlake.mention_hour u USING batch_mention_hour i\n"
"    WHERE i.retracts AND @u. u.hour OPERATOR(pg_catalog.=) i.hour AND u.mention OPERATOR(pg_catalog.=) i.mention\n"
"      AND pg_catalog.cardinality((u.hashtags).keys) OPERATOR(pg_catalog.=) 0\n"
"), g_tags AS (\n"
"    DELETE FROM gold.popular_hashtags_by_hour g USING batch_hashtag_hour a\n"
"    WHERE a.n OPERATOR(pg_catalog.<) 0 AND @g. g.hour OPERATOR(pg_catalog.=) a.hour\n"
"      AND g.hashtag OPERATOR(pg_catalog.=) a.hashtag AND g.tweet_count OPERATOR(pg_catalog.=) 0\n"
"), g_users AS (\n"
"    DELETE FROM gold.active_users_by_day g USING batch_user_day a\n"
"    WHERE a.n OPERATOR(pg_catalog.<) 0 AND @g. g.day OPERATOR(pg_catalog.=) a.day\n"
"      AND g.user_id OPERATOR(pg_catalog.=) a.user_id AND g.tweets_count OPERATOR(pg_catalog.=) 0\n"
"), g_user_totals AS (\n"
"    DELETE FROM gold.user_engagement g USING batch_user a\n"
"    WHERE a.n OPERATOR(pg_catalog.<) 0 AND @g. g.user_id OPERATOR(pg_catalog.=) a.user_id\n"
"      AND g.tweets_count OPERATOR(pg_catalog.=) 0\n"
"), g_region AS (\n"
"    DELETE FROM gold.tweet_volume_by_region g USING batch_region_hour a\n"
"    WHERE a.n OPERATOR(pg_catalog.<) 0 AND @g. g.hour OPERATOR(pg_catalog.=) a.hour\n"
"      AND g.region OPERATOR(pg_catalog.=) a.region AND g.language OPERATOR(pg_catalog.=) a.language\n"
"      AND g.tweet_count OPERATOR(pg_catalog.=) 0\n"
"), region_totals AS (\n"
"    DELETE FROM tweetlake.region_hour_counts g USING batch_region_total a\n"
"    WHERE a.n OPERATOR(pg_catalog.<) 0 AND @g. g.hour OPERATOR(pg_catalog.=) a.hour\n"
"      AND g.region OPERATOR(pg_catalog.=) a.region AND g.tweet_count OPERATOR(pg_catalog.=) 0\n"
"), g_language AS (\n"
"    DELETE FROM gold.tweet_metrics_by_language g USING batch_language_hour a\n"
"    WHERE a.n OPERATOR(pg_catalog.<) 0 AND @g. g.hour OPERATOR(pg_catalog.=) a.hour\n"
"      AND g.language OPERATOR(pg_catalog.=) a.language AND g.tweet_count OPERATOR(pg_catalog.=) 0\n"
"), g_types AS (\n"
"    DELETE FROM gold.engagement_by_type_hour g USING batch_type_hour a\n"
"    WHERE a.n OPERATOR(pg_catalog.<) 0 AND @g. g.hour OPERATOR(pg_catalog.=) a.hour\n"
"      AND g.tweet_type OPERATOR(pg_catalog.=) a.tweet_type\n"
"      AND g.influence_level OPERATOR(pg_catalog.=) tweetlake.influence_level(a.followers)\n"
"      AND g.tweet_count OPERATOR(pg_catalog.=) 0\n"
")\n"
"DELETE FROM gold.hourly_activity_summary g USING batch_hour a\n"
"WHERE a.n OPERATOR(pg_catalog.<) 0 AND @g. g.hour OPERATOR(pg_catalog.=) a.hour\n"
"  AND g.total_tweets OPERATOR(pg_catalog.=) 0";

static const char RECHECK_SQL[] =
"WITH hours AS (\n"
"    SELECT hour FROM batch_hashtag_hour WHERE n OPERATOR(pg_catalog.<) 0\n"
"    UNION SELECT hour FROM batch_region_total WHERE n OPERATOR(pg_catalog.<) 0\n"
"), tops AS (\n"
"    UPDATE gold.hourly_activity_summary g SET\n"
"        top_hashtag = t.hashtag, top_hashtag_count = t.tweet_count,\n"
"        top_region = r.region, top_region_count = r.tweet_count\n"
"    FROM hours h\n"
"    LEFT JOIN LATERAL (SELECT p.hashtag, p.tweet_count FROM gold.popular_hashtags_by_hour p\n"
"                       WHERE @p. p.hour OPERATOR(pg_catalog.=) h.hour\n"
"                       ORDER BY p.tweet_count DESC, p.hashtag LIMIT 1) t ON true\n"
"    LEFT JOIN LATERAL (SELECT c.region, c.tweet_count FROM tweetlake.region_hour_counts c\n"
"                       WHERE @c. c.hour OPERATOR(pg_catalog.=) h.hour\n"
"                       ORDER BY c.tweet_count DESC, c.region LIMIT 1) r ON true\n"
"    WHERE @g. g.hour OPERATOR(pg_catalog.=) h.hour\n"
"), days AS (\n"
"    UPDATE gold.active_users_by_day g SET username = x.username, followers_count = x.followers\n"
"    FROM batch_user_day a CROSS JOIN LATERAL (\n"
"        SELECT pg_catalog.max(s.username) AS username, pg_catalog.max(s.followers_count) AS followers\n"
"        FROM silver.tweets s\n"
"        WHERE @s. s.user_id OPERATOR(pg_catalog.=) (a.user_id COLLATE \"C\")\n"
"          AND s.created_at OPERATOR(pg_catalog.>=) a.day_start\n"
"          AND s.created_at OPERATOR(pg_catalog.<) a.day_end) x\n"
"    WHERE a.recheck AND @g. g.day OPERATOR(pg_catalog.=) a.day AND g.user_id OPERATOR(pg_catalog.=) a.user_id\n"
")\n"
"UPDATE gold.user_engagement g SET username = x.username, followers_count = x.followers,\n"
"    first_day = tweetlake.utc_day(x.first_at), last_day = tweetlake.utc_day(x.last_at)\n"
"FROM batch_user a CROSS JOIN LATERAL (\n"
"    SELECT pg_catalog.max(s.username) AS username, pg_catalog.max(s.followers_count) AS followers,\n"
"           pg_catalog.min(s.created_at) AS first_at, pg_catalog.max(s.created_at) AS last_at\n"
"    FROM silver.tweets s WHERE @s. s.user_id OPERATOR(pg_catalog.=) (a.user_id COLLATE \"C\")) x\n"
"WHERE a.recheck AND @g. g.user_id OPERATOR(pg_catalog.=) a.user_id";

/*
 * From schema 0.9.0 on, the top users by engagement (schema/sources/43_gold_user_engagement.sql):
 * the last thing a chunk does.
 *   TOP_SQL     the floor row locked (made if missing), and the users the chunk touched
 *               whose total is now above the floor added to the members; returns how
 *               many were added (MEMBERS_SQL adds them to the row's count)
 *   TRIM_SQL    past TOP_KEEP * 2 members: the TOP_KEEP best kept (ties too), the floor
 *               raised to the best total dropped
 *   SHORT_SQL   after a chunk that took engagement back from a member: whether fewer than
 *               TOP_SHOWN members are left above the floor; if so the set is loaded again
 *               from the recompute views (REFILL_*_SQL)
 * In 0.9.0 the floor row's lock makes the batches pass here one at a time, each after the
 * one before committed.  A transaction of several batches holds that lock from its first
 * batch on while its later ones lock rows of gold.user_engagement, and a consumer's batch
 * waits for it holding such rows: a deadlock.  From 0.10.0 on (tweetlake.top_users_pending)
 * no batch waits here.  The set is kept by the holder of row 1 of tweetlake.top_users_locks
 * (locked FOR UPDATE SKIP LOCKED, until commit): TOP_HELD_SQL moves the pending users
 * into the members along with the chunk's own.  A batch that does not get it writes its
 * users above the floor to the pending list (PENDING_SQL), under a share lock of row 2: a
 * refill, which lowers the floor, waits for no one either, and happens only while no batch
 * that read the floor is still running (if one is, a NULL user marks the check for later,
 * and the view sorts gold.user_engagement itself until then).  A batch that finds a refill
 * under way writes all its users (PENDING_ALL_SQL).
 */
/* the LIMIT of tweetlake.top_users_cut, and of gold.top_users_by_engagement */
#define TOP_KEEP 200
#define TOP_SHOWN 100

static const char TOP_SQL[] =
"WITH f AS MATERIALIZED (\n"
"    INSERT INTO tweetlake.top_users_floor AS t (@t id, floor, members) VALUES (@p true, NULL, 0)\n"
"    ON CONFLICT (@t id) DO UPDATE SET members = t.members\n"
"    RETURNING floor\n"
"), added AS (\n"
"    INSERT INTO tweetlake.top_users AS t (@t user_id)\n"
"    SELECT @p g.user_id FROM batch_user a CROSS JOIN f\n"
"    JOIN gold.user_engagement g ON @g. g.user_id OPERATOR(pg_catalog.=) a.user_id\n"
"    WHERE f.floor IS NULL OR g.total_engagement OPERATOR(pg_catalog.>) f.floor\n"
"    ORDER BY g.user_id\n"
"    ON CONFLICT (@t user_id) DO NOTHING\n"
"    RETURNING user_id\n"
")\n"
"SELECT (SELECT pg_catalog.count(*) FROM added)::pg_catalog.int4 FROM f";

/* Adds TOP_SQL's count of new members (%d) to the floor row's count. */
static const char MEMBERS_SQL[] =
"UPDATE tweetlake.top_users_floor f SET members = f.members OPERATOR(pg_catalog.+) %d WHERE @f. true RETURNING f.members";

static const char TRIM_SQL[] =
"WITH m AS MATERIALIZED (\n"
"    SELECT t.user_id, g.total_engagement AS v\n"
"    FROM tweetlake.top_users t\n"
"    LEFT JOIN gold.user_engagement g ON @g. g.user_id OPERATOR(pg_catalog.=) t.user_id\n"
"    WHERE @t. true\n"
"), cut AS (\n"
"    SELECT v FROM m WHERE v IS NOT NULL ORDER BY v DESC LIMIT 1 OFFSET " CppAsString2(TOP_KEEP) " OPERATOR(pg_catalog.-) 1\n"
"), gone AS (\n"
"    DELETE FROM tweetlake.top_users t USING m\n"
"    WHERE @t. t.user_id OPERATOR(pg_catalog.=) m.user_id\n"
"      AND (m.v IS NULL OR m.v OPERATOR(pg_catalog.<) (SELECT v FROM cut))\n"
"    RETURNING m.v\n"
")\n"
"UPDATE tweetlake.top_users_floor f SET\n"
"    floor = greatest(f.floor, (SELECT pg_catalog.max(v) FROM gone)),\n"
"    members = ((SELECT pg_catalog.count(*) FROM m) OPERATOR(pg_catalog.-) (SELECT pg_catalog.count(*) FROM gone))::pg_catalog.int4\n"
"WHERE @f. true";

/* Whether fewer than TOP_SHOWN members are above the floor, once retraction_test holds. */
#define SHORT_QUERY(retraction_test, lock) \
	"SELECT f.floor IS NOT NULL\n" \
	retraction_test \
	"   AND (SELECT pg_catalog.count(*) FROM tweetlake.top_users t\n" \
	"        JOIN gold.user_engagement g ON @g. g.user_id OPERATOR(pg_catalog.=) t.user_id\n" \
	"        WHERE @t. g.total_engagement OPERATOR(pg_catalog.>) f.floor) OPERATOR(pg_catalog.<) " CppAsString2(TOP_SHOWN) "\n" \
	"FROM tweetlake.top_users_floor f WHERE @f. true" lock

static const char SHORT_SQL[] =
SHORT_QUERY("   AND EXISTS (SELECT FROM batch_user a JOIN tweetlake.top_users t ON @t. t.user_id OPERATOR(pg_catalog.=) a.user_id\n"
			"               WHERE a.eng OPERATOR(pg_catalog.<) 0 OR a.n OPERATOR(pg_catalog.<) 0)\n",
			" FOR UPDATE");

/* SHORT_SQL without the retraction test: pending users had engagement taken back. */
static const char SHORT_ANY_SQL[] = SHORT_QUERY("", "");

/*
 * The rows of tweetlake.top_users_locks, locked without waiting (SKIP LOCKED: no row, not
 * locked).  Row locks rather than advisory locks: taking one needs UPDATE on the table, which
 * no role but its owner has, so no other session can hold the set.
 */
#define TOP_LOCK_SQL(id, mode) \
	"SELECT FROM tweetlake.top_users_locks WHERE id OPERATOR(pg_catalog.=) " id " FOR " mode " SKIP LOCKED"
static const char HOLD_SET_SQL[] = TOP_LOCK_SQL("1", "UPDATE");
static const char READ_FLOOR_SQL[] = TOP_LOCK_SQL("2", "SHARE");
static const char REFILL_SQL[] = TOP_LOCK_SQL("2", "UPDATE");
static const char TOP_HELD_SQL[] =
"WITH f AS MATERIALIZED (\n"
"    INSERT INTO tweetlake.top_users_floor AS t (@t id, floor, members) VALUES (@p true, NULL, 0)\n"
"    ON CONFLICT (@t id) DO UPDATE SET members = t.members\n"
"    RETURNING floor\n"
"), p AS MATERIALIZED (\n"
"    DELETE FROM tweetlake.top_users_pending p WHERE @p. true RETURNING p.user_id, p.retracted\n"
"), added AS (\n"
"    INSERT INTO tweetlake.top_users AS t (@t user_id)\n"
"    SELECT @p g.user_id FROM (SELECT a.user_id FROM batch_user a UNION SELECT p.user_id FROM p) a\n"
"    CROSS JOIN f JOIN gold.user_engagement g ON @g. g.user_id OPERATOR(pg_catalog.=) a.user_id\n"
"    WHERE f.floor IS NULL OR g.total_engagement OPERATOR(pg_catalog.>) f.floor\n"
"    ON CONFLICT (@t user_id) DO NOTHING\n"
"    RETURNING user_id\n"
")\n"
"SELECT (SELECT pg_catalog.count(*) FROM added)::pg_catalog.int4,\n"
"       COALESCE((SELECT pg_catalog.bool_or(p.retracted) FROM p), false) FROM f";

/*
 * TOP_HELD_SQL from 0.11.0 on, where each member keeps a copy of its row of
 * gold.user_engagement: the copies of the members among the chunk's users and the pending
 * ones are written (NULLs for a user whose row is gone), and the new members come with
 * theirs.
 */
static const char TOP_HELD_COPY_SQL[] =
"WITH f AS MATERIALIZED (\n"
"    INSERT INTO tweetlake.top_users_floor AS t (@t id, floor, members) VALUES (@p true, NULL, 0)\n"
"    ON CONFLICT (@t id) DO UPDATE SET members = t.members\n"
"    RETURNING floor\n"
"), p AS MATERIALIZED (\n"
"    DELETE FROM tweetlake.top_users_pending p WHERE @p. true RETURNING p.user_id, p.retracted\n"
"), g AS MATERIALIZED (\n"
"    SELECT @k a.user_id, g.username, g.tweets_count, g.followers_count, g.total_engagement,\n"
"           g.first_day, g.last_day\n"
"    FROM (SELECT a.user_id FROM batch_user a UNION SELECT p.user_id FROM p) a\n"
"    LEFT JOIN gold.user_engagement g ON @g. g.user_id OPERATOR(pg_catalog.=) a.user_id\n"
"    WHERE a.user_id IS NOT NULL\n"
"), kept AS (\n"
"    UPDATE tweetlake.top_users t\n"
"    SET (username, tweets_count, followers_count, total_engagement, first_day, last_day) =\n"
"        (g.username, g.tweets_count, g.followers_count, g.total_engagement, g.first_day, g.last_day)\n"
"    FROM g WHERE @t=g. t.user_id OPERATOR(pg_catalog.=) g.user_id\n"
"), added AS (\n"
"    INSERT INTO tweetlake.top_users (@t user_id, username, tweets_count, followers_count,\n"
"                                     total_engagement, first_day, last_day)\n"
"    SELECT @p g.user_id, g.username, g.tweets_count, g.followers_count, g.total_engagement,\n"
"           g.first_day, g.last_day\n"
"    FROM g CROSS JOIN f\n"
"    WHERE (f.floor IS NULL OR g.total_engagement OPERATOR(pg_catalog.>) f.floor)\n"
"      AND NOT EXISTS (SELECT FROM tweetlake.top_users t WHERE @t=g. t.user_id OPERATOR(pg_catalog.=) g.user_id)\n"
"    ON CONFLICT (@t user_id) DO NOTHING\n"
"    RETURNING user_id\n"
")\n"
"SELECT (SELECT pg_catalog.count(*) FROM added)::pg_catalog.int4,\n"
"       COALESCE((SELECT pg_catalog.bool_or(p.retracted) FROM p), false) FROM f";

/* Whether the chunk took engagement back from user a, a member. */
#define RETRACTED_MEMBER \
	"((a.eng OPERATOR(pg_catalog.<) 0 OR a.n OPERATOR(pg_catalog.<) 0)\n" \
	"     AND EXISTS (SELECT FROM tweetlake.top_users t WHERE @t. t.user_id OPERATOR(pg_catalog.=) a.user_id))"
#define PENDING_INSERT(where) \
	"INSERT INTO tweetlake.top_users_pending (@t user_id, retracted)\n" \
	"SELECT @p a.user_id, " RETRACTED_MEMBER "\n" \
	"FROM batch_user a\n" \
	"LEFT JOIN gold.user_engagement g ON @g. g.user_id OPERATOR(pg_catalog.=) a.user_id\n" \
	"LEFT JOIN tweetlake.top_users_floor f ON @f. true\n" \
	where

static const char PENDING_SQL[] =
PENDING_INSERT("WHERE f.floor IS NULL OR g.total_engagement OPERATOR(pg_catalog.>) f.floor OR " RETRACTED_MEMBER);
static const char PENDING_ALL_SQL[] = PENDING_INSERT("");

/* The count above the floor is still to be checked (a refill could not be done). */
static const char MARK_SQL[] =
"INSERT INTO tweetlake.top_users_pending (@t user_id, retracted) VALUES (@p NULL, true)";

static const char REFILL_DELETE_SQL[] = "DELETE FROM tweetlake.top_users t WHERE @t. true";

/* the members, and from 0.11.0 on their copies: the view has the table's columns */
static const char REFILL_INSERT_SQL[] =
"INSERT INTO tweetlake.top_users SELECT * FROM tweetlake.recompute_top_users r WHERE @r. true";
static const char REFILL_FLOOR_SQL[] =
"UPDATE tweetlake.top_users_floor f SET (floor, members) =\n"
"    (SELECT pg_catalog.max(r.floor), coalesce(pg_catalog.max(r.members), 0)\n"
"     FROM tweetlake.recompute_top_users_floor r WHERE @r. true)\n"
"WHERE @f. true";

/* ------------------------------------------------------------------------
 * Groups: a hash table of one kind of gold key, each entry with every measure any gold
 * table keeps (a table reads the ones it has).
 * ------------------------------------------------------------------------ */

/* A bag being collected: its keys, repeated as often as rows brought them. */
typedef struct KeyList
{
	TlBagKey   *items;
	int			n;
	int			cap;
} KeyList;

typedef struct Acc
{
	struct Acc *next;			/* same bucket */
	uint32		hash;
	int			keylen;
	char	   *key;			/* the encoded key (KeyBuf) */
	Datum		k[3];			/* the key columns */
	int64		n;				/* rows */
	int64		eng;			/* sum of total_engagement */
	int64		sn;				/* rows with a sentiment */
	Numeric		ssum;			/* sum of sentiment_score::numeric; NULL: 0 */
	int64		pos,
				neg,
				neu;			/* by sentiment_category */
	int64		len;			/* sum of text_length */
	int64		viral;			/* total_engagement > 1000 */
	text	   *username;		/* max(username) of the rows added, NULL: none */
	bool		has_followers;
	int32		followers;		/* max(followers_count) of the rows added */
	int64		adds;			/* rows added (n counts taken-back rows as -1) */
	DateADT		first_day,
				last_day;		/* of the rows added */
	bool		retracts;		/* some of its rows are taken back */
	text	   *r_username;		/* the same maxima and days of the rows taken */
	bool		r_has_followers;	/* back */
	int32		r_followers;
	DateADT		r_first_day,
				r_last_day;
	KeyList		tags,
				places,
				langs;
} Acc;

typedef struct KeyMap
{
	const char *kinds;			/* the key's parts: 'i' an integer (hour, day,
								 * level), 't' a text */
	Acc		  **buckets;
	int			nbuckets;		/* a power of 2 */
	int			n;
	Acc		  **order;			/* the groups in the order they were met */
} KeyMap;

/* An encoded key: fields one after the other, texts with their length first. */
typedef struct KeyBuf
{
	char		buf[1024];
	char	   *data;
	int			len;
	int			cap;
} KeyBuf;

static void
key_reset(KeyBuf *kb)
{
	kb->data = kb->buf;
	kb->len = 0;
	kb->cap = sizeof(kb->buf);
}

static void
key_put(KeyBuf *kb, const void *p, int n)
{
	if (kb->len + n > kb->cap)
	{
		int			cap = Max(kb->cap * 2, kb->len + n);
		char	   *d = palloc(cap);

		memcpy(d, kb->data, kb->len);
		kb->data = d;
		kb->cap = cap;
	}
	memcpy(kb->data + kb->len, p, n);
	kb->len += n;
}

static void
key_int(KeyBuf *kb, int64 v)
{
	key_put(kb, &v, sizeof(v));
}

static void
key_text(KeyBuf *kb, const text *t)
{
	int32		n = VARSIZE_ANY_EXHDR(t);

	key_put(kb, &n, sizeof(n));
	key_put(kb, VARDATA_ANY(t), n);
}

static void
map_init(KeyMap *m, const char *kinds)
{
	m->kinds = kinds;
	m->nbuckets = 256;
	m->buckets = palloc0(sizeof(Acc *) * m->nbuckets);
	m->order = palloc(sizeof(Acc *) * m->nbuckets);
	m->n = 0;
}

/* The group of key kb, made (zeroed, *created set) if it is new. */
static Acc *
map_get(KeyMap *m, const KeyBuf *kb, bool *created)
{
	uint32		h = hash_bytes((const unsigned char *) kb->data, kb->len);
	Acc		   *g;

	for (g = m->buckets[h & (m->nbuckets - 1)]; g != NULL; g = g->next)
		if (g->hash == h && g->keylen == kb->len && memcmp(g->key, kb->data, kb->len) == 0)
		{
			*created = false;
			return g;
		}

	if (m->n == m->nbuckets)
	{
		/* grow: twice the buckets, rehashed; order keeps its entries */
		int			nb = m->nbuckets * 2;
		Acc		  **b = palloc0(sizeof(Acc *) * nb);

		for (int i = 0; i < m->n; i++)
		{
			Acc		   *x = m->order[i];

			x->next = b[x->hash & (nb - 1)];
			b[x->hash & (nb - 1)] = x;
		}
		pfree(m->buckets);
		m->buckets = b;
		m->nbuckets = nb;
		m->order = repalloc(m->order, sizeof(Acc *) * nb);
	}
	g = palloc0(sizeof(Acc));
	g->hash = h;
	g->keylen = kb->len;
	g->key = palloc(kb->len);
	memcpy(g->key, kb->data, kb->len);
	g->next = m->buckets[h & (m->nbuckets - 1)];
	m->buckets[h & (m->nbuckets - 1)] = g;
	m->order[m->n++] = g;
	*created = true;
	return g;
}

/*
 * The group of the key (k0, k1, k2: as many parts as m's kinds, the rest ignored) in m; a
 * new one (*created, when asked) keeps the parts as its key columns.
 */
static Acc *
group_of(KeyMap *m, Datum k0, Datum k1, Datum k2, bool *created)
{
	Datum		k[3] = {k0, k1, k2};
	int			n = strlen(m->kinds);
	KeyBuf		kb;
	bool		isnew;
	Acc		   *g;

	key_reset(&kb);
	for (int i = 0; i < n; i++)
	{
		if (m->kinds[i] == 't')
			key_text(&kb, (text *) DatumGetPointer(k[i]));
		else
			key_int(&kb, DatumGetInt64(k[i]));
	}
	g = map_get(m, &kb, &isnew);
	if (isnew)
		memcpy(g->k, k, sizeof(Datum) * n);
	if (created)
		*created = isnew;
	return g;
}

static void
keys_add(KeyList *l, const char *data, int len, int weight)
{
	if (l->n == l->cap)
	{
		l->cap = l->cap ? l->cap * 2 : 4;
		l->items = l->items ? repalloc(l->items, sizeof(TlBagKey) * l->cap)
			: palloc(sizeof(TlBagKey) * l->cap);
	}
	l->items[l->n].data = data;
	l->items[l->n].len = len;
	l->items[l->n].weight = weight;
	l->n++;
}

/* Every element of a text[] (no nulls: parse.c makes them) into l. */
static void
keys_add_array(KeyList *l, Datum *elems, int nelems, int weight)
{
	for (int i = 0; i < nelems; i++)
	{
		text	   *t = (text *) DatumGetPointer(elems[i]);

		keys_add(l, VARDATA_ANY(t), VARSIZE_ANY_EXHDR(t), weight);
	}
}

/*
 * sentiment_score::numeric, remembered by the double's bits: a feed's scores repeat (the
 * generator's have three decimals), and the conversion prints and parses the number.
 */
#define SENTIMENT_CACHE 4096

typedef struct SentimentCache
{
	uint64		bits[SENTIMENT_CACHE];
	Numeric		value[SENTIMENT_CACHE];
} SentimentCache;

static Numeric
sentiment_numeric(SentimentCache *c, Datum d)
{
	double		x = DatumGetFloat8(d);
	uint64		bits;
	uint32		h;

	memcpy(&bits, &x, sizeof(bits));
	h = hash_bytes_uint32((uint32) (bits ^ (bits >> 32))) & (SENTIMENT_CACHE - 1);
	if (c->value[h] == NULL || c->bits[h] != bits)
	{
		c->value[h] = DatumGetNumeric(DirectFunctionCall1(float8_numeric, d));
		c->bits[h] = bits;
	}
	return c->value[h];
}

/* ------------------------------------------------------------------------
 * One new silver row, as the groups read it
 * ------------------------------------------------------------------------ */

typedef struct Facts
{
	TimestampTz hour;
	DateADT		day;
	text	   *region;			/* 'unknown' when missing */
	text	   *language;
	text	   *tweet_type;
	text	   *user_id;		/* NULL: none */
	text	   *username;
	bool		has_followers;
	int32		followers;
	Numeric		sentiment;		/* NULL: none */
	char		category;		/* 'p', 'n', 'u' (neutral) or 0 */
	int64		eng;
	int32		text_length;
	Datum	   *tags;
	int			ntags;
	Datum	   *mentions;
	int			nmentions;
	char	   *pair;			/* tweetlake.pair_key(region, language) */
	int			pairlen;
	int			level;			/* influence_level: 0 low, 1 medium, 2 high */
} Facts;

static text *
text_copy_or(Datum *values, bool *nulls, int att, text *dflt)
{
	return nulls[att] ? dflt : DatumGetTextPCopy(values[att]);
}

/*
 * What the groups need of a parsed row, copied into the current memory context (the
 * parsed values go with their row's context).
 */
static void
facts_of(Facts *f, Datum *v, bool *nl, text *unknown, SentimentCache *sentiments)
{
	memset(f, 0, sizeof(*f));
	f->hour = tl_utc_hour(DatumGetTimestampTz(v[A_CREATED_AT]));
	f->day = (DateADT) tl_utc_day(DatumGetTimestampTz(v[A_CREATED_AT]));
	f->region = text_copy_or(v, nl, A_REGION, unknown);
	f->language = text_copy_or(v, nl, A_LANGUAGE, unknown);
	f->tweet_type = text_copy_or(v, nl, A_TWEET_TYPE, unknown);
	f->user_id = text_copy_or(v, nl, A_USER_ID, NULL);
	f->username = text_copy_or(v, nl, A_USERNAME, NULL);
	f->has_followers = !nl[A_FOLLOWERS];
	f->followers = f->has_followers ? DatumGetInt32(v[A_FOLLOWERS]) : 0;
	if (!nl[A_SENTIMENT])
		f->sentiment = sentiment_numeric(sentiments, v[A_SENTIMENT]);
	if (!nl[A_SENTIMENT_CATEGORY])
	{
		text	   *c = DatumGetTextPP(v[A_SENTIMENT_CATEGORY]);
		int			n = VARSIZE_ANY_EXHDR(c);

		f->category = n == 8 && memcmp(VARDATA_ANY(c), "positive", 8) == 0 ? 'p' :
			n == 8 && memcmp(VARDATA_ANY(c), "negative", 8) == 0 ? 'n' :
			n == 7 && memcmp(VARDATA_ANY(c), "neutral", 7) == 0 ? 'u' : 0;
	}
	f->eng = DatumGetInt64(v[A_TOTAL_ENGAGEMENT]);
	f->text_length = DatumGetInt32(v[A_TEXT_LENGTH]);
	/* the arrays copied, their elements pointing into the copies */
	deconstruct_array(DatumGetArrayTypePCopy(v[A_HASHTAGS]), TEXTOID, -1, false, TYPALIGN_INT,
					  &f->tags, NULL, &f->ntags);
	deconstruct_array(DatumGetArrayTypePCopy(v[A_MENTIONS]), TEXTOID, -1, false, TYPALIGN_INT,
					  &f->mentions, NULL, &f->nmentions);
	{
		/*
		 * tweetlake.pair_key: length(region) in characters, ':', region,
		 * language
		 */
		const char *r = VARDATA_ANY(f->region);
		int			rlen = VARSIZE_ANY_EXHDR(f->region);
		int			llen = VARSIZE_ANY_EXHDR(f->language);
		char		head[16];
		int			hl = snprintf(head, sizeof(head), "%d:", pg_mbstrlen_with_len(r, rlen));

		f->pairlen = hl + rlen + llen;
		f->pair = palloc(f->pairlen);
		memcpy(f->pair, head, hl);
		memcpy(f->pair + hl, r, rlen);
		memcpy(f->pair + hl + rlen, VARDATA_ANY(f->language), llen);
	}
	/* influence_level's thresholds (schema/sources/30_silver.sql) */
	f->level = !f->has_followers ? 0 : f->followers >= 100000 ? 2 : f->followers >= 10000 ? 1 : 0;
}

static void
add_int64(int64 *acc, int64 v)
{
	if (pg_add_s64_overflow(*acc, v, acc))
		ereport(ERROR,
				(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
				 errmsg("bigint out of range")));
}

static Numeric
numeric_negated(Numeric n)
{
	return DatumGetNumeric(DirectFunctionCall1(numeric_uminus, NumericGetDatum(n)));
}

/*
 * What one row adds to a group's measures (counts, sums, sentiment categories): sign 1 for
 * a row added, -1 for one taken back (an update's old version, a deleted tweet).
 */
static void
group_add(Acc *g, const Facts *f, int sign)
{
	g->n += sign;
	add_int64(&g->eng, sign * f->eng);
	g->len += sign * f->text_length;
	if (f->eng > 1000)
		g->viral += sign;
	if (f->sentiment != NULL)
	{
		g->sn += sign;
		g->ssum = g->ssum == NULL ? (sign > 0 ? f->sentiment : numeric_negated(f->sentiment))
			: sign > 0 ? numeric_add_opt_error(g->ssum, f->sentiment, NULL)
			: numeric_sub_opt_error(g->ssum, f->sentiment, NULL);
	}
	if (f->category == 'p')
		g->pos += sign;
	else if (f->category == 'n')
		g->neg += sign;
	else if (f->category == 'u')
		g->neu += sign;
	if (sign < 0)
		g->retracts = true;
}

/* Whether two texts hold the same bytes. */
static bool
texts_equal(const text *a, const text *b)
{
	return VARSIZE_ANY_EXHDR(a) == VARSIZE_ANY_EXHDR(b) &&
		memcmp(VARDATA_ANY(a), VARDATA_ANY(b), VARSIZE_ANY_EXHDR(a)) == 0;
}

/* username a is above b (max(username), by the database's collation); a NULL is below all. */
static bool
username_above(const text *a, const text *b)
{
	if (a == NULL)
		return false;
	if (b == NULL)
		return true;
	if (texts_equal(a, b))
		return false;
	return varstr_cmp(VARDATA_ANY(a), VARSIZE_ANY_EXHDR(a), VARDATA_ANY(b), VARSIZE_ANY_EXHDR(b),
					  DEFAULT_COLLATION_OID) > 0;
}

/*
 * The user's columns a row adds (sign 1) or takes back (-1): max(username),
 * max(followers_count), first and last day, each kept apart for the two.
 */
static void
group_add_user(Acc *g, const Facts *f, int sign)
{
	text	  **username = sign > 0 ? &g->username : &g->r_username;
	bool	   *has_followers = sign > 0 ? &g->has_followers : &g->r_has_followers;
	int32	   *followers = sign > 0 ? &g->followers : &g->r_followers;
	DateADT    *first = sign > 0 ? &g->first_day : &g->r_first_day;
	DateADT    *last = sign > 0 ? &g->last_day : &g->r_last_day;
	bool		first_row = sign > 0 ? g->adds == 0 : !g->retracts;

	if (username_above(f->username, *username))
		*username = f->username;
	if (f->has_followers && (!*has_followers || f->followers > *followers))
	{
		*followers = f->followers;
		*has_followers = true;
	}
	if (first_row || f->day < *first)
		*first = f->day;
	if (first_row || f->day > *last)
		*last = f->day;
	if (sign > 0)
		g->adds++;
	else
		g->retracts = true;
}

/*
 * Whether a user's group needs its maxima read again from silver: the rows taken back had
 * a larger username or followers_count (or, with days, an earlier first or later last
 * day) than the rows added.  Otherwise greatest()/least() of the stored value and the
 * added one is exact: whatever was taken back is matched by something added.
 */
static bool
user_recheck(const Acc *g, bool days)
{
	if (!g->retracts)
		return false;
	if (g->r_username != NULL && username_above(g->r_username, g->username))
		return true;
	if (g->r_has_followers && (!g->has_followers || g->r_followers > g->followers))
		return true;
	return days && (g->adds == 0 || g->r_first_day < g->first_day || g->r_last_day > g->last_day);
}

/* ------------------------------------------------------------------------
 * The relations handed to SQL
 * ------------------------------------------------------------------------ */

typedef struct Rel
{
	const char *name;
	TupleDesc	desc;
	Tuplestorestate *store;
	int			n;
} Rel;

typedef struct ColDef
{
	const char *name;
	Oid			type;
	Oid			collation;		/* InvalidOid: the type's */
} ColDef;

static void
rel_begin(Rel *r, const char *name, const ColDef *cols, int ncols)
{
	r->name = name;
	r->desc = CreateTemplateTupleDesc(ncols);
	for (int i = 0; i < ncols; i++)
	{
		TupleDescInitEntry(r->desc, i + 1, cols[i].name, cols[i].type, -1, 0);
		if (OidIsValid(cols[i].collation))
			TupleDescInitEntryCollation(r->desc, i + 1, cols[i].collation);
	}
	r->store = tuplestore_begin_heap(false, false, work_mem);
	r->n = 0;
}

static void
rel_begin_desc(Rel *r, const char *name, TupleDesc desc)
{
	r->name = name;
	r->desc = desc;
	r->store = tuplestore_begin_heap(false, false, work_mem);
	r->n = 0;
}

static void
rel_put(Rel *r, Datum *values, bool *nulls)
{
	tuplestore_putvalues(r->store, r->desc, values, nulls);
	r->n++;
}


static Datum
numeric_or_zero(Numeric n)
{
	return n ? NumericGetDatum(n) : NumericGetDatum(int64_to_numeric(0));
}

/* The measure columns most relations share: n, eng, ssum, sn. */
#define MEASURE_COLS \
	{"n", INT8OID, InvalidOid}, {"eng", INT8OID, InvalidOid}, \
	{"ssum", NUMERICOID, InvalidOid}, {"sn", INT8OID, InvalidOid}

static int
put_measures(Datum *v, int i, const Acc *g)
{
	v[i++] = Int64GetDatum(g->n);
	v[i++] = Int64GetDatum(g->eng);
	v[i++] = numeric_or_zero(g->ssum);
	v[i++] = Int64GetDatum(g->sn);
	return i;
}

static int
put_categories(Datum *v, int i, const Acc *g)
{
	v[i++] = Int64GetDatum(g->pos);
	v[i++] = Int64GetDatum(g->neg);
	v[i++] = Int64GetDatum(g->neu);
	return i;
}

/* ------------------------------------------------------------------------
 * The trigger
 * ------------------------------------------------------------------------ */

/* tweet_id -> its candidate in the chunk */
typedef struct IdEntry
{
	char		id[TL_MAX_ID_BYTES + 1];
	int			index;
} IdEntry;

/*
 * One tweet_id of the chunk: its message, or (from schema 0.5.0 on) all its messages in
 * order when there are several, and (after write_silver) what came of them.  A tombstone
 * is a NULL message.
 */
typedef struct Cand
{
	HeapTuple	tup;			/* the message's parsed row (NULL: a
								 * tombstone); after write_silver, the version
								 * silver holds, if the chunk wrote one */
	text	   *deleted_id;		/* the id, when a tombstone came */
	HeapTuple  *seq;			/* several messages: all of them, in order */
	int			nseq;			/* 0: just tup */
	int			cap;
	Facts		facts;			/* what the groups need of tup */
	bool		resolved;		/* fate is known */
	char		fate;			/* 'n' new in silver, 'u' replaced silver's
								 * version, 's' changed nothing, 'd' deletion */
} Cand;

/* What the batches of this backend did with versions since it was last asked (tweetlake.h). */
TlBatchCounts tl_batch_counts;

static Oid
type_in_tweetlake(const char *name)
{
	Oid			nsp = get_namespace_oid("tweetlake", false);
	Oid			typid = GetSysCacheOid2(TYPENAMENSP, Anum_pg_type_oid,
										CStringGetDatum(name), ObjectIdGetDatum(nsp));

	if (!OidIsValid(typid))
		elog(ERROR, "type tweetlake.%s does not exist", name);
	return typid;
}


/*
 * Runs one of the statements above on the relations registered, with its plan kept for the
 * backend's next batches: planning the gold statement costs more than a small batch's rows.
 * A plan is kept per batch size class (Plans), since the relations' sizes, which the plan
 * was made for, grow with the batch.  The plan cache makes a new plan when a table it reads
 * changes (the extension dropped and created again, for one).
 *
 * A consumer plans its statements for every class at its first batch (warm_plans()), so
 * that its memory does not step up hours later, when a backlog first brings it a batch of
 * a larger class.  Such a plan is made for the first batch's relations scaled to the class
 * (provisional) and is made again, in the memory it frees, from the first batch that really
 * has that size: the plans a consumer runs are the ones made for real sizes.
 */
#define SIZE_CLASSES 4

typedef struct Plans
{
	SPIPlanPtr	plan[SIZE_CLASSES];
	bool		provisional[SIZE_CLASSES];
} Plans;

static int
size_class(int ntweets)
{
	return ntweets < 16 ? 0 : ntweets < 256 ? 1 : ntweets < 4096 ? 2 : 3;
}

/*
 * The tenant (schema 0.13.0 on).  Each chunk is one tenant's rows, and every statement names
 * the tenant with these marks, which with_tenant() expands for a schema with tenants and
 * drops for one without:
 *   "@t"     "tenant, "  the column, first in a column list or a key
 *   "@p"     "$1, "      the chunk's tenant, where a row is made
 *   "@x."    "x.tenant OPERATOR(pg_catalog.=) $1 AND "  a condition on the rows of alias x
 *   "@k"     "$1 AS tenant, "  the tenant as a column of a CTE's rows
 *   "@x=y."  "x.tenant OPERATOR(pg_catalog.=) y.tenant AND "  x's rows joined to y's by it:
 *            where y is such a CTE, the planner sees no constant on x, so it looks x's rows
 *            up by the whole key from y's instead of reading all of the tenant's rows of x
 *            for each of y's (a plan kept from when x was small would)
 * The statements run with the tenant as $1.  tenants_on is what the plans kept were made
 * for: they are all made again when it changes (the schema updated in a session).
 */
static bool tenants_on = false;
static Datum chunk_tenant;
static Oid	tenant_type[1] = {TEXTOID};

static const char *
with_tenant(const char *sql)
{
	StringInfoData out;
	const char *p = sql;

	initStringInfo(&out);
	while (*p)
	{
		const char *q = p;
		int			n;

		if (*p != '@')
		{
			appendStringInfoChar(&out, *p++);
			continue;
		}
		q++;
		while (*q >= 'a' && *q <= 'z')
			q++;
		n = q - (p + 1);
		if (*q == '=' && n > 0)
		{
			const char *r = q + 1;

			while (*r >= 'a' && *r <= 'z')
				r++;
			if (*r != '.' || r == q + 1)
				elog(ERROR, "tweetlake batch: unknown mark in statement: %.20s", p);
			if (tenants_on)
				appendStringInfo(&out, "%.*s.tenant OPERATOR(pg_catalog.=) %.*s.tenant AND ",
								 n, p + 1, (int) (r - q - 1), q + 1);
			p = r + 1;
		}
		else if (*q == '.' && n > 0)
		{
			if (tenants_on)
				appendStringInfo(&out, "%.*s.tenant OPERATOR(pg_catalog.=) $1 AND ", n, p + 1);
			p = q + 1;
		}
		else if (n == 1 && p[1] == 't')
		{
			if (tenants_on)
				appendStringInfoString(&out, "tenant, ");
			p = q;
		}
		else if (n == 1 && p[1] == 'k')
		{
			if (tenants_on)
				appendStringInfoString(&out, "$1 AS tenant, ");
			p = q;
		}
		else if (n == 1 && p[1] == 'p')
		{
			if (tenants_on)
				appendStringInfoString(&out, "$1, ");
			p = q;
		}
		else
			elog(ERROR, "tweetlake batch: unknown mark in statement: %.20s", p);
	}
	return out.data;
}

static SPIPlanPtr
prepare_kept(const char *sql)
{
	const char *text = with_tenant(sql);

	/*
	 * A generic plan, as a statement without parameters always had: with the
	 * tenant as $1 the plan cache would plan each of the first runs again for
	 * its value, and then keep doing so whenever that looked cheaper.
	 */
	SPIPlanPtr	plan = SPI_prepare_cursor(text, tenants_on ? 1 : 0, tenant_type,
										  CURSOR_OPT_GENERIC_PLAN);

	if (plan == NULL)
		elog(ERROR, "tweetlake batch: SPI_prepare failed: %s", SPI_result_code_string(SPI_result));
	if (SPI_keepplan(plan) != 0)
		elog(ERROR, "tweetlake batch: SPI_keepplan failed");
	return plan;
}

static void
run(Plans *plans, int ntweets, const char *sql, int expect)
{
	int			class = size_class(ntweets);
	int			rc;

	if (plans == NULL)
	{
		/* planned for this run (see ONCE) */
		rc = SPI_execute_with_args(with_tenant(sql), tenants_on ? 1 : 0, tenant_type,
								   &chunk_tenant, NULL, false, 0);
		if (rc != expect)
			elog(ERROR, "tweetlake batch: SPI_execute failed: %s", SPI_result_code_string(rc));
		return;
	}
	if (plans->provisional[class])
	{
		elog(DEBUG1, "tweetlake batch: the plan for size class %d made again for a batch of %d tweets",
			 class, ntweets);
		SPI_freeplan(plans->plan[class]);
		plans->plan[class] = NULL;
		plans->provisional[class] = false;
	}
	if (plans->plan[class] == NULL)
		plans->plan[class] = prepare_kept(sql);
	rc = SPI_execute_plan(plans->plan[class], tenants_on ? &chunk_tenant : NULL, NULL, false, 0);
	if (rc != expect)
		elog(ERROR, "tweetlake batch: SPI_execute_plan failed: %s", SPI_result_code_string(rc));
}

/*
 * The statements that read stored rows by key (the versions a batch replaces or deletes,
 * the membership rows a retraction reads back) are planned each time they run instead
 * (ONCE): a plan kept from the first batches, made while silver and the membership tables
 * were nearly empty, would scan them whole for ever after.  They run only for the tweets
 * that change, so planning them costs little.
 */
#define ONCE NULL

static Plans silver_plans;
static Plans silver_v5_plans;
static Plans silver_v5_none_deleted_plans;
static Plans any_deleted_plans;
static Plans dead_plans;
static Plans gold_plans;
static Plans top_plans;
static Plans top_held_plans;
static Plans top_held_copy_plans;
static Plans pending_plans;
static Plans pending_all_plans;
static Plans hold_set_plans;
static Plans read_floor_plans;

static Plans *const kept_plans[] = {
	&silver_plans, &silver_v5_plans, &silver_v5_none_deleted_plans, &any_deleted_plans,
	&dead_plans, &gold_plans, &top_plans, &top_held_plans, &top_held_copy_plans,
	&pending_plans, &pending_all_plans, &hold_set_plans, &read_floor_plans,
};

/* Every plan kept dropped, to be made again (for a schema with or without tenants). */
static void
forget_plans(void)
{
	for (int i = 0; i < lengthof(kept_plans); i++)
		for (int k = 0; k < SIZE_CLASSES; k++)
		{
			if (kept_plans[i]->plan[k] != NULL)
				SPI_freeplan(kept_plans[i]->plan[k]);
			kept_plans[i]->plan[k] = NULL;
			kept_plans[i]->provisional[k] = false;
		}
}

/* What one run of the trigger reads, and how (set up once per run). */
typedef struct Batch
{
	Tuplestorestate *in;		/* the transition table */
	MemoryContext cxt;			/* the run's */
	TupleTableSlot *slot;
	int			a_raw,
				a_topic,
				a_partition,
				a_offset,
				a_key,			/* kafka_key; 0 before schema 0.5.0 */
				a_tenant;		/* tenant; 0 before schema 0.13.0 */
	text	   *tenant;			/* the tenant whose rows this pass takes */
	List	   *tenants;		/* every tenant met, in the order met (text *) */
	int			pass;			/* which of them this pass takes */
	bool		changes;		/* schema 0.5.0 on: updates and deletions */
	bool		top_users;		/* schema 0.9.0 on: tweetlake.top_users (set
								 * by detect_top_users at each chunk) */
	bool		top_pending;	/* schema 0.10.0 on:
								 * tweetlake.top_users_pending */
	bool		top_copy;		/* schema 0.11.0 on: the members' copies of
								 * their rows */
	Oid			top_rel;		/* tweetlake.top_users */
	TupleDesc	parsed_desc;	/* tweetlake.parsed_tweet: the silver relation */
	TupleDesc	bag_desc;
	Oid			bag_type;
	text	   *unknown;
} Batch;

static bool this_tenant(Batch *b, TupleTableSlot *slot);

/*
 * A chunk of the batch: at most CHUNK_ROWS rows of the transition table, parsed, written
 * and merged into gold before the next is read, so that a batch of any size (a COPY of
 * millions of lines) needs the memory of one chunk.  The chunks run in order in the
 * statement's transaction, so each sees what the earlier ones wrote to silver: a version
 * is compared with the one an earlier chunk stored, as with one an earlier batch stored.
 */
#define CHUNK_ROWS 5000

typedef struct Chunk
{
	MemoryContext cxt;
	MemoryContext batchcxt;		/* the run's: SPI's list of relations lives
								 * there */
	int			nread;			/* rows read */
	int			ncands;			/* tweet_ids met */
	Cand	   *cands;
	HTAB	   *ids;			/* tweet_id -> index in cands */
	int			nnew;			/* new in silver */
	int			nupdated;		/* messages that replaced a version */
	int			ndeleted;		/* versions deleted (stored, or of the chunk) */
	int			nstale;			/* messages that changed nothing */
	Facts	   *taken;			/* the rows taken back: replaced or deleted */
	int			ntaken;
	double		retract_ms;		/* of gold: what only taking back costs */
	SentimentCache *sentiments;
	Rel			silver,
				rejected;
	KeyMap		m_tags,
				m_uh,
				m_mh,
				m_ud,
				m_user,
				m_region,
				m_rtotal,
				m_lang,
				m_type,
				m_hour;
	EphemeralNamedRelation enrs[20];	/* relations registered with SPI */
	int			nregistered;
} Chunk;

static void
rel_register(Chunk *c, Rel *r)
{
	MemoryContext old = MemoryContextSwitchTo(c->batchcxt);
	EphemeralNamedRelation enr = palloc0(sizeof(EphemeralNamedRelationData));
	int			rc;

	enr->md.name = (char *) r->name;
	enr->md.reliddesc = InvalidOid;
	enr->md.tupdesc = r->desc;
	enr->md.enrtype = ENR_NAMED_TUPLESTORE;
	enr->md.enrtuples = r->n;
	enr->reldata = r->store;
	rc = SPI_register_relation(enr);
	if (rc != SPI_OK_REL_REGISTER)
		elog(ERROR, "SPI_register_relation(%s) failed: %s", r->name, SPI_result_code_string(rc));
	Assert(c->nregistered < lengthof(c->enrs));
	c->enrs[c->nregistered++] = enr;
	MemoryContextSwitchTo(old);
}

/*
 * Whether version (nv, nn) of a tweet is newer than (ov, on), both in the columns of
 * tweetlake.parsed_tweet (README "Updates and deletions"): by updated_at when both carry
 * one; otherwise it is newer when no engagement count went down and something differs.
 * An equal or older version changes nothing.
 */
static bool
is_newer(TupleDesc desc, Datum *nv, bool *nn, Datum *ov, bool *on)
{
	static const int counts[] = {A_RETWEET_COUNT, A_LIKE_COUNT, A_REPLY_COUNT, A_QUOTE_COUNT};

	if (!nn[A_UPDATED_AT] && !on[A_UPDATED_AT])
		return DatumGetTimestampTz(nv[A_UPDATED_AT]) > DatumGetTimestampTz(ov[A_UPDATED_AT]);
	for (int i = 0; i < lengthof(counts); i++)
	{
		int32		n = nn[counts[i]] ? 0 : DatumGetInt32(nv[counts[i]]);
		int32		o = on[counts[i]] ? 0 : DatumGetInt32(ov[counts[i]]);

		if (n < o)
			return false;
	}
	for (int i = 0; i < N_ATTRS; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);

		if (i == A_ERROR)
			continue;
		if (nn[i] != on[i])
			return true;
		if (!nn[i] && !datum_image_eq(nv[i], ov[i], att->attbyval, att->attlen))
			return true;
	}
	return false;
}

/*
 * A silver row as SPI returns it (SILVER_COLUMNS, updated_at) into the columns of
 * tweetlake.parsed_tweet.
 */
static void
stored_values(HeapTuple tup, TupleDesc desc, Datum *v, bool *nl)
{
	Datum		cols[N_ATTRS];
	bool		cnulls[N_ATTRS];

	Assert(desc->natts == N_ATTRS - 1); /* no error column */
	heap_deform_tuple(tup, desc, cols, cnulls);
	for (int i = 0; i < A_ERROR; i++)
	{
		v[i] = cols[i];
		nl[i] = cnulls[i];
	}
	nl[A_ERROR] = true;
	v[A_UPDATED_AT] = cols[A_ERROR];
	nl[A_UPDATED_AT] = cnulls[A_ERROR];
}

/* The candidate of tweet_id id (a text datum), which the chunk must have. */
static Cand *
cand_of(Chunk *c, Datum id)
{
	char	   *key = TextDatumGetCString(id);
	IdEntry    *entry = hash_search(c->ids, key, HASH_FIND, NULL);

	if (entry == NULL)
		elog(ERROR, "tweetlake batch: silver returned a tweet_id the batch does not have");
	pfree(key);
	return &c->cands[entry->index];
}

/* The candidate for tweet_id id (NUL-terminated), made if new (*found says). */
static Cand *
cand_enter(Chunk *c, const char *id, bool *found)
{
	IdEntry    *entry = hash_search(c->ids, id, HASH_ENTER, found);

	if (!*found)
	{
		entry->index = c->ncands++;
		memset(&c->cands[entry->index], 0, sizeof(Cand));
	}
	return &c->cands[entry->index];
}

/* One more message for a tweet_id the chunk has (NULL: a tombstone), after the others. */
static void
cand_append(Cand *cand, HeapTuple msg)
{
	if (cand->nseq == 0)
	{
		cand->cap = 4;
		cand->seq = palloc(sizeof(HeapTuple) * cand->cap);
		cand->seq[cand->nseq++] = cand->tup;
	}
	else if (cand->nseq == cand->cap)
	{
		cand->cap *= 2;
		cand->seq = repalloc(cand->seq, sizeof(HeapTuple) * cand->cap);
	}
	cand->seq[cand->nseq++] = msg;
}

/* A tombstone's key, if it can be a tweet_id: the reason it cannot, or NULL. */
static const char *
tombstone_problem(text *key)
{
	int			len = VARSIZE_ANY_EXHDR(key);

	if (len == 0)
		return "tombstone with an empty key";
	if (len > TL_MAX_ID_BYTES)
		return psprintf("tombstone key longer than %d bytes (%d)", TL_MAX_ID_BYTES, len);
	return NULL;
}

static void
reject(Batch *b, Chunk *c, Datum raw, bool raw_null, Datum reason, Datum id, bool id_null)
{
	Datum		r[6];
	bool		rn[6];

	r[0] = raw;
	rn[0] = raw_null;
	r[1] = reason;
	rn[1] = false;
	r[2] = id;
	rn[2] = id_null;
	r[3] = slot_getattr(b->slot, b->a_topic, &rn[3]);
	r[4] = slot_getattr(b->slot, b->a_partition, &rn[4]);
	r[5] = slot_getattr(b->slot, b->a_offset, &rn[5]);
	rel_put(&c->rejected, r, rn);
}

/*
 * Step 1: up to CHUNK_ROWS rows parsed; rejected ones aside, one candidate per tweet_id:
 * before schema 0.5.0 its first row, from then on all of its rows and tombstones in the
 * order of the statement (write_silver applies them in that order).
 */
static bool
read_chunk(Batch *b, Chunk *c)
{
	static const ColDef cols[] = {
		{"raw", TEXTOID, InvalidOid}, {"reason", TEXTOID, InvalidOid},
		{"tweet_id", TEXTOID, InvalidOid}, {"kafka_topic", TEXTOID, InvalidOid},
		{"kafka_partition", INT4OID, InvalidOid}, {"kafka_offset", INT8OID, InvalidOid},
	};
	HASHCTL		hctl;
	MemoryContext rowcxt;

	MemoryContextSwitchTo(c->cxt);
	rel_begin(&c->rejected, "batch_rejected", cols, lengthof(cols));
	c->cands = palloc(sizeof(Cand) * CHUNK_ROWS);
	c->sentiments = palloc0(sizeof(SentimentCache));
	memset(&hctl, 0, sizeof(hctl));
	hctl.keysize = sizeof(((IdEntry *) NULL)->id);
	hctl.entrysize = sizeof(IdEntry);
	hctl.hcxt = c->cxt;
	c->ids = hash_create("tweetlake batch ids", 1024, &hctl,
						 HASH_ELEM | HASH_STRINGS | HASH_CONTEXT);

	/*
	 * the parser's scratch memory goes with each row; what a row keeps is
	 * copied out
	 */
	rowcxt = AllocSetContextCreate(c->cxt, "tweetlake batch row", ALLOCSET_DEFAULT_SIZES);
	while (c->nread < CHUNK_ROWS && tuplestore_gettupleslot(b->in, true, false, b->slot))
	{
		bool		isnull;
		Datum		raw = slot_getattr(b->slot, b->a_raw, &isnull);
		Datum		values[N_ATTRS];
		bool		nulls[N_ATTRS];
		char	   *id;
		bool		found;
		Cand	   *cand;

		CHECK_FOR_INTERRUPTS();
		if (b->a_tenant > 0 && !this_tenant(b, b->slot))
			continue;
		c->nread++;
		MemoryContextReset(rowcxt);

		if (isnull && b->changes)
		{
			bool		keynull;
			Datum		key = slot_getattr(b->slot, b->a_key, &keynull);
			const char *problem;

			if (keynull)
			{
				reject(b, c, raw, true,
					   CStringGetTextDatum("null message without a key: neither a tweet nor a tombstone"),
					   (Datum) 0, true);
				continue;
			}
			else
			{
				/* a tombstone: the id is deleted, whatever came before it */
				MemoryContextSwitchTo(rowcxt);
				problem = tombstone_problem(DatumGetTextPP(key));
				MemoryContextSwitchTo(c->cxt);
				if (problem != NULL)
				{
					reject(b, c, raw, true, CStringGetTextDatum(problem), key, false);
					continue;
				}
				id = TextDatumGetCString(key);
				cand = cand_enter(c, id, &found);
				pfree(id);
				if (cand->deleted_id == NULL)
					cand->deleted_id = DatumGetTextPCopy(key);
				if (found)
					cand_append(cand, NULL);
				else
					cand->tup = NULL;
				continue;
			}
		}

		MemoryContextSwitchTo(rowcxt);
		tl_parse_tweet(isnull ? NULL : DatumGetTextPP(raw), values, nulls);
		MemoryContextSwitchTo(c->cxt);
		if (!nulls[A_ERROR])
		{
			reject(b, c, raw, isnull, values[A_ERROR], values[A_TWEET_ID], nulls[A_TWEET_ID]);
			continue;
		}
		id = TextDatumGetCString(values[A_TWEET_ID]);
		cand = cand_enter(c, id, &found);
		pfree(id);
		if (found)
		{
			/*
			 * before 0.5.0 the first wins; from then on write_silver takes
			 * them in order
			 */
			if (b->changes)
				cand_append(cand, heap_form_tuple(b->parsed_desc, values, nulls));
			continue;
		}
		cand->tup = heap_form_tuple(b->parsed_desc, values, nulls);
		facts_of(&cand->facts, values, nulls, b->unknown, c->sentiments);
	}
	MemoryContextDelete(rowcxt);
	return c->nread > 0;
}

/*
 * Whether the row in slot is of the tenant this pass takes.  The first row of the batch
 * names the first pass's tenant; a row of a tenant not met before adds a pass for it.  A
 * batch of one tenant (a consumer's, always) is read once.
 */
static bool
this_tenant(Batch *b, TupleTableSlot *slot)
{
	bool		isnull;
	text	   *t = DatumGetTextPP(slot_getattr(slot, b->a_tenant, &isnull));
	ListCell   *lc;
	MemoryContext old;

	if (isnull)
		elog(ERROR, "tweetlake batch: a row of bronze.tweets without a tenant");
	if (b->tenant != NULL && texts_equal(t, b->tenant))
		return true;
	foreach(lc, b->tenants)
	{
		if (texts_equal(t, lfirst(lc)))
			return false;
	}
	old = MemoryContextSwitchTo(b->cxt);
	b->tenants = lappend(b->tenants, DatumGetTextPCopy(PointerGetDatum(t)));
	MemoryContextSwitchTo(old);
	if (b->tenant != NULL)
		return false;
	b->tenant = llast(b->tenants);
	chunk_tenant = PointerGetDatum(b->tenant);
	return true;
}

/* A relation of tweet_ids. */
static void
ids_begin(Rel *r, const char *name)
{
	static const ColDef cols[] = {{"id", TEXTOID, InvalidOid}};

	rel_begin(r, name, cols, lengthof(cols));
}

/* The candidate's message i (NULL: a tombstone), of cand_count(cand). */
static HeapTuple
cand_msg(Cand *cand, int i)
{
	return cand->nseq == 0 ? cand->tup : cand->seq[i];
}

static int
cand_count(Cand *cand)
{
	return Max(cand->nseq, 1);
}

/* The candidate's tweet_id, as a text datum. */
static Datum
cand_id(Cand *cand, TupleDesc desc)
{
	bool		isnull;

	if (cand->deleted_id != NULL)
		return PointerGetDatum(cand->deleted_id);
	for (int i = 0; i < cand_count(cand); i++)
		if (cand_msg(cand, i) != NULL)
			return heap_getattr(cand_msg(cand, i), A_TWEET_ID + 1, desc, &isnull);
	elog(ERROR, "tweetlake batch: a tweet_id without a message");
}

static void
ids_put(Rel *r, Cand *cand, TupleDesc desc)
{
	Datum		id = cand_id(cand, desc);
	bool		isnull = false;

	rel_put(r, &id, &isnull);
}

/* A row silver had, taken back from gold (sign -1 in group_chunk). */
static void
take_back(Batch *b, Chunk *c, HeapTuple tup, TupleDesc desc)
{
	Datum		v[N_ATTRS];
	bool		nl[N_ATTRS];

	stored_values(tup, desc, v, nl);
	if (c->taken == NULL)
		c->taken = palloc(sizeof(Facts) * CHUNK_ROWS);
	facts_of(&c->taken[c->ntaken++], v, nl, b->unknown, c->sentiments);
}

/*
 * A candidate's messages applied in order to the version silver has (sv/sn; stored false:
 * none), as separate batches would apply them: a tombstone deletes (for good), a newer
 * version replaces, anything else changes nothing.  Counts the updates and stale messages,
 * leaves the version that stands in cand->tup (NULL: deleted) with its facts, and returns
 * the fate: 'd' deleted, 'u' another version than the stored one stands, 'n' a version
 * stands where none was stored, 's' the stored version stands.
 */
static char
apply_messages(Batch *b, Chunk *c, Cand *cand, Datum *sv, bool *sn, bool stored)
{
	Datum		cur[N_ATTRS];
	bool		curn[N_ATTRS];
	HeapTuple	curtup = NULL;	/* NULL: the stored version (or none) */
	bool		has = stored;
	bool		deleted = false;

	if (stored)
	{
		memcpy(cur, sv, sizeof(cur));
		memcpy(curn, sn, sizeof(curn));
	}
	for (int i = 0; i < cand_count(cand); i++)
	{
		HeapTuple	msg = cand_msg(cand, i);
		Datum		nv[N_ATTRS];
		bool		nn[N_ATTRS];

		if (deleted)
		{
			if (msg != NULL)
				c->nstale++;	/* a version of a deleted tweet */
			continue;
		}
		if (msg == NULL)
		{
			if (has)
				c->ndeleted++;	/* a version it deletes, stored or of the
								 * chunk */
			deleted = true;
			continue;
		}
		heap_deform_tuple(msg, b->parsed_desc, nv, nn);
		if (has && !is_newer(b->parsed_desc, nv, nn, cur, curn))
		{
			c->nstale++;
			continue;
		}
		if (has)
			c->nupdated++;
		memcpy(cur, nv, sizeof(cur));
		memcpy(curn, nn, sizeof(curn));
		curtup = msg;
		has = true;
	}
	if (deleted)
	{
		cand->tup = NULL;
		return 'd';
	}
	if (curtup == NULL)
		return 's';
	if (curtup != cand->tup)
	{
		cand->tup = curtup;
		facts_of(&cand->facts, cur, curn, b->unknown, c->sentiments);
	}
	return stored ? 'u' : 'n';
}

/*
 * Step 2: silver and the dead letters.  A tweet_id with one message goes in as a new row
 * (RETURNING says which silver took).  From 0.5.0 on, the others (silver had the id, or
 * the chunk has several messages for it) are applied in order to the version silver has
 * (apply_messages): a newer one replaces it, a tombstone deletes, a version of a tweet
 * silver did not have goes in new.  What is replaced or deleted is taken back from gold.
 */
static void
write_silver(Batch *b, Chunk *c)
{
	Rel			known,
				updated,
				deleted;
	bool		any_deleted = false;

	rel_begin_desc(&c->silver, "batch_silver", b->parsed_desc);
	for (int i = 0; i < c->ncands; i++)
		if (c->cands[i].tup != NULL && c->cands[i].nseq == 0)
		{
			tuplestore_puttuple(c->silver.store, c->cands[i].tup);
			c->silver.n++;
		}
	if (b->changes)
	{
		/*
		 * deleted ids are refused; the check costs nothing while there are
		 * none
		 */
		bool		isnull;

		run(&any_deleted_plans, 0, ANY_DELETED_SQL, SPI_OK_SELECT);
		any_deleted = DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
		SPI_freetuptable(SPI_tuptable);
	}
	if (c->silver.n > 0)
	{
		rel_register(c, &c->silver);
		if (!b->changes)
			run(&silver_plans, c->silver.n, SILVER_SQL, SPI_OK_INSERT_RETURNING);
		else if (any_deleted)
			run(&silver_v5_plans, c->silver.n, SILVER_V5_SQL, SPI_OK_INSERT_RETURNING);
		else
			run(&silver_v5_none_deleted_plans, c->silver.n, SILVER_V5_NONE_DELETED_SQL,
				SPI_OK_INSERT_RETURNING);
		c->nnew = (int) SPI_processed;
		for (uint64 i = 0; i < SPI_processed; i++)
		{
			bool		isnull;

			Cand	   *cand = cand_of(c, SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1, &isnull));

			cand->fate = 'n';
			cand->resolved = true;
		}
		SPI_freetuptable(SPI_tuptable);
	}

	if (b->changes)
	{
		Rel			unstored;
		Rel			late;

		/*
		 * the versions silver has of the others, locked, and the messages
		 * applied to them
		 */
		ids_begin(&known, "batch_known");
		for (int i = 0; i < c->ncands; i++)
			if (!c->cands[i].resolved && (c->cands[i].tup != NULL || c->cands[i].nseq > 0))
				ids_put(&known, &c->cands[i], b->parsed_desc);
		if (known.n > 0)
		{
			rel_register(c, &known);
			run(ONCE, known.n, KNOWN_SQL, SPI_OK_SELECT);
			for (uint64 i = 0; i < SPI_processed; i++)
			{
				HeapTuple	stored = SPI_tuptable->vals[i];
				bool		isnull;
				Cand	   *cand = cand_of(c, SPI_getbinval(stored, SPI_tuptable->tupdesc, 1, &isnull));
				Datum		ov[N_ATTRS];
				bool		on[N_ATTRS];

				stored_values(stored, SPI_tuptable->tupdesc, ov, on);
				cand->fate = apply_messages(b, c, cand, ov, on, true);
				cand->resolved = true;
				if (cand->fate == 'u')
					take_back(b, c, stored, SPI_tuptable->tupdesc);
				/* 'd': DELETE_SQL below takes the row back */
			}
			SPI_freetuptable(SPI_tuptable);
		}

		/*
		 * Several messages for a tweet silver does not have: unless the id
		 * was deleted before, they are applied to nothing, and the version
		 * that stands goes in new (batch_late).
		 */
		ids_begin(&unstored, "batch_unstored");
		for (int i = 0; i < c->ncands; i++)
			if (!c->cands[i].resolved && c->cands[i].nseq > 0)
				ids_put(&unstored, &c->cands[i], b->parsed_desc);
		if (unstored.n > 0)
		{
			rel_register(c, &unstored);
			run(ONCE, unstored.n, WERE_DELETED_SQL, SPI_OK_SELECT);
			for (uint64 i = 0; i < SPI_processed; i++)
			{
				bool		isnull;
				Cand	   *cand = cand_of(c, SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1, &isnull));

				for (int k = 0; k < cand->nseq; k++)
					if (cand->seq[k] != NULL)
						c->nstale++;	/* a version of a deleted id */
				cand->fate = 's';
				cand->resolved = true;
			}
			SPI_freetuptable(SPI_tuptable);

			rel_begin_desc(&late, "batch_late", b->parsed_desc);
			for (int i = 0; i < c->ncands; i++)
			{
				Cand	   *cand = &c->cands[i];

				if (cand->resolved || cand->nseq == 0)
					continue;
				cand->fate = apply_messages(b, c, cand, NULL, NULL, false);
				cand->resolved = true;
				if (cand->fate == 'n')
				{
					tuplestore_puttuple(late.store, cand->tup);
					late.n++;
					cand->fate = 's';	/* until silver takes it */
				}
			}
			if (late.n > 0)
			{
				rel_register(c, &late);
				run(ONCE, late.n, LATE_SQL, SPI_OK_INSERT_RETURNING);
				c->nnew += (int) SPI_processed;
				for (uint64 i = 0; i < SPI_processed; i++)
				{
					bool		isnull;

					cand_of(c, SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1, &isnull))->fate = 'n';
				}
				SPI_freetuptable(SPI_tuptable);
			}
		}

		rel_begin_desc(&updated, "batch_updated", b->parsed_desc);
		for (int i = 0; i < c->ncands; i++)
			if (c->cands[i].fate == 'u')
			{
				tuplestore_puttuple(updated.store, c->cands[i].tup);
				updated.n++;
			}
		if (updated.n > 0)
		{
			rel_register(c, &updated);
			run(ONCE, updated.n, UPDATE_SQL, SPI_OK_UPDATE);
		}
	}

	/*
	 * A lone message neither silver nor the stored versions took changed
	 * nothing (an id deleted before; before 0.5.0, a duplicate).
	 */
	for (int i = 0; i < c->ncands; i++)
		if (!c->cands[i].resolved && c->cands[i].tup != NULL)
		{
			c->cands[i].fate = 's';
			c->cands[i].resolved = true;
			c->nstale++;
		}

	/* the deletions: silver's rows go, and every id is recorded as deleted */
	if (b->changes)
	{
		ids_begin(&deleted, "batch_deleted");
		for (int i = 0; i < c->ncands; i++)
			if (c->cands[i].fate == 'd' || !c->cands[i].resolved)
			{
				ids_put(&deleted, &c->cands[i], b->parsed_desc);
				c->cands[i].fate = 'd';
				c->cands[i].resolved = true;
			}
		if (deleted.n > 0)
		{
			rel_register(c, &deleted);
			run(ONCE, deleted.n, DELETE_SQL, SPI_OK_SELECT);
			for (uint64 i = 0; i < SPI_processed; i++)
			{
				bool		isnull;

				/*
				 * a lone tombstone's deletion (apply_messages counted the
				 * others)
				 */
				if (cand_of(c, SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1, &isnull))->nseq == 0)
					c->ndeleted++;
				take_back(b, c, SPI_tuptable->vals[i], SPI_tuptable->tupdesc);
			}
			SPI_freetuptable(SPI_tuptable);
		}
	}

	if (c->rejected.n > 0)
	{
		rel_register(c, &c->rejected);
		run(&dead_plans, c->rejected.n, DEAD_SQL, SPI_OK_INSERT);
	}
}

/* What one row adds to (sign 1) or takes back from (-1) the groups of every gold key. */
static void
group_row(Chunk *c, const Facts *f, int sign)
{
	Datum		hour = TimestampTzGetDatum(f->hour);
	Acc		   *g;
	bool		created;

	for (int i = 0; i < f->ntags; i++)
		group_add(group_of(&c->m_tags, hour, f->tags[i], 0, NULL), f, sign);
	group_add(group_of(&c->m_region, hour, PointerGetDatum(f->region),
					   PointerGetDatum(f->language), NULL), f, sign);
	group_of(&c->m_rtotal, hour, PointerGetDatum(f->region), 0, NULL)->n += sign;
	group_add(group_of(&c->m_lang, hour, PointerGetDatum(f->language), 0, NULL), f, sign);
	g = group_of(&c->m_type, hour, PointerGetDatum(f->tweet_type), Int32GetDatum(f->level),
				 &created);
	if (created)
	{
		/* a member's followers_count: influence_level gives the group's level */
		g->has_followers = f->has_followers;
		g->followers = f->followers;
	}
	group_add(g, f, sign);
	group_add(group_of(&c->m_hour, hour, 0, 0, NULL), f, sign);

	if (f->ntags > 0)
		for (int i = 0; i < f->nmentions; i++)
		{
			g = group_of(&c->m_mh, hour, f->mentions[i], 0, NULL);
			keys_add_array(&g->tags, f->tags, f->ntags, sign);
			if (sign < 0)
				g->retracts = true;
		}

	if (f->user_id == NULL)
		return;

	g = group_of(&c->m_uh, hour, PointerGetDatum(f->user_id), 0, NULL);
	g->n += sign;
	keys_add_array(&g->tags, f->tags, f->ntags, sign);
	keys_add(&g->places, f->pair, f->pairlen, sign);
	keys_add(&g->langs, VARDATA_ANY(f->language), VARSIZE_ANY_EXHDR(f->language), sign);
	if (sign < 0)
		g->retracts = true;

	g = group_of(&c->m_ud, DateADTGetDatum(f->day), PointerGetDatum(f->user_id), 0, NULL);
	group_add(g, f, sign);
	group_add_user(g, f, sign);

	g = group_of(&c->m_user, PointerGetDatum(f->user_id), 0, 0, NULL);
	g->n += sign;
	add_int64(&g->eng, sign * f->eng);
	group_add_user(g, f, sign);
}

/* Step 3: the rows silver took (new or replacing) and the rows taken back, grouped by every gold key. */
static void
group_chunk(Chunk *c)
{
	MemoryContextSwitchTo(c->cxt);
	map_init(&c->m_tags, "it");
	map_init(&c->m_uh, "it");
	map_init(&c->m_mh, "it");
	map_init(&c->m_ud, "it");
	map_init(&c->m_user, "t");
	map_init(&c->m_region, "itt");
	map_init(&c->m_rtotal, "it");
	map_init(&c->m_lang, "it");
	map_init(&c->m_type, "iti");
	map_init(&c->m_hour, "i");
	for (int t = 0; t < c->ncands; t++)
	{
		CHECK_FOR_INTERRUPTS();
		if (c->cands[t].fate == 'n' || c->cands[t].fate == 'u')
			group_row(c, &c->cands[t].facts, 1);
	}
	for (int t = 0; t < c->ntaken; t++)
	{
		CHECK_FOR_INTERRUPTS();
		group_row(c, &c->taken[t], -1);
	}
}

/*
 * run() with nothing but index probes allowed to the planner: the top-users statements
 * read the chunk's users by key in gold.user_engagement, and a plan kept from when that
 * table was small (or its statistics old) would read the whole table at every batch.
 */
static int
by_key_begin(void)
{
	int			nestlevel = NewGUCNestLevel();

	(void) set_config_option("enable_seqscan", "off", PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
	(void) set_config_option("enable_hashjoin", "off", PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
	(void) set_config_option("enable_mergejoin", "off", PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);

	/*
	 * nor a whole index kept in memory and joined to every user: with the
	 * tenant's condition on it (0.13.0), a plan made while the tables were
	 * small would read the tenant's rows whole for every user looked up
	 */
	(void) set_config_option("enable_material", "off", PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
	return nestlevel;
}

static void
run_by_key(Plans *plans, int ntweets, const char *sql, int expect)
{
	int			nestlevel = by_key_begin();

	run(plans, ntweets, sql, expect);
	AtEOXact_GUC(true, nestlevel);
}

/* One of the TOP_LOCK_SQL statements: whether the row is now locked. */
static bool
try_top_lock(Plans *plans, const char *sql)
{
	run(plans, 0, sql, SPI_OK_SELECT);
	return SPI_processed == 1;
}

static inline Datum
first_value(int col, bool *isnull)
{
	return SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, col, isnull);
}

static void detect_top_users(Batch *b);

/* The chunk's users into the top users (TOP_SQL and the statements after it). */
static void
write_top_users(Batch *b, Chunk *c)
{
	bool		isnull;
	int			added = 0;
	bool		pending_retracted = false;

	if (!b->top_pending)
	{
		/*
		 * 0.9.0's set, when the schema was last looked up.  The update to
		 * 0.11.0 alters the members' table: the lock TOP_SQL's INSERT would
		 * take is taken first and the schema looked up again once it is held,
		 * so that a batch which waited for that update writes the set as
		 * 0.11.0 does (as 0.9.0 did, its users were members without copies,
		 * t/051).  A batch that already holds the lock has written the set
		 * before: the update waits for it.
		 */
		LockRelationOid(b->top_rel, RowExclusiveLock);
		AcceptInvalidationMessages();
		detect_top_users(b);
	}
	if (!b->top_pending)
		run_by_key(&top_plans, c->ncands, TOP_SQL, SPI_OK_SELECT);
	else if (try_top_lock(&hold_set_plans, HOLD_SET_SQL))
	{
		/*
		 * Looked up again now that the set is held: ALTER EXTENSION UPDATE to
		 * 0.11.0 holds it while it adds the copies, so a batch that got it
		 * after that update committed writes them.  The catalog changes are
		 * read first: the update may have committed after this transaction
		 * last took a lock, which is when they are otherwise read.
		 */
		AcceptInvalidationMessages();
		detect_top_users(b);
		if (b->top_copy)
			run_by_key(&top_held_copy_plans, c->ncands, TOP_HELD_COPY_SQL, SPI_OK_SELECT);
		else
			run_by_key(&top_held_plans, c->ncands, TOP_HELD_SQL, SPI_OK_SELECT);
		if (SPI_processed > 0)
			pending_retracted = DatumGetBool(first_value(2, &isnull)) && !isnull;
	}
	else
	{
		/*
		 * another batch holds the set: no waiting, the users go to the
		 * pending list
		 */
		if (try_top_lock(&read_floor_plans, READ_FLOOR_SQL))
			run_by_key(&pending_plans, c->ncands, PENDING_SQL, SPI_OK_INSERT);
		else
			run_by_key(&pending_all_plans, c->ncands, PENDING_ALL_SQL, SPI_OK_INSERT);
		return;
	}
	if (SPI_processed > 0)
		added = DatumGetInt32(first_value(1, &isnull));
	if (added > 0)
	{
		char		sql[sizeof(MEMBERS_SQL) + 16];

		snprintf(sql, sizeof(sql), MEMBERS_SQL, added);
		run(ONCE, 0, sql, SPI_OK_UPDATE_RETURNING);
		if (SPI_processed > 0 && DatumGetInt32(first_value(1, &isnull)) > 2 * TOP_KEEP)
			run(ONCE, 0, TRIM_SQL, SPI_OK_UPDATE);
	}
	if (c->ntaken == 0 && !pending_retracted)
		return;
	run(ONCE, 0, pending_retracted ? SHORT_ANY_SQL : SHORT_SQL, SPI_OK_SELECT);
	if (SPI_processed > 0 && DatumGetBool(first_value(1, &isnull)) && !isnull)
	{
		if (b->top_pending && !try_top_lock(ONCE, REFILL_SQL))
		{
			/*
			 * a batch that read the floor is still running: the next holder
			 * checks
			 */
			run(ONCE, 0, MARK_SQL, SPI_OK_INSERT);
			return;
		}
		run(ONCE, 0, REFILL_DELETE_SQL, SPI_OK_DELETE);
		run(ONCE, 0, REFILL_INSERT_SQL, SPI_OK_INSERT);
		run(ONCE, 0, REFILL_FLOOR_SQL, SPI_OK_UPDATE);
	}
}

/*
 * A provisional plan of sql for class (see run()), made for the chunk's relations with their
 * sizes scaled from the chunk's tweets to a batch typical of the class.  The plan is
 * made here, not at its first run: the relations it was analysed with are gone by then.
 */
static void
plan_for_class(Plans *plans, int class, const char *sql, Chunk *c, bool by_key)
{
	static const double class_rows[SIZE_CLASSES] = {8, 128, 1024, CHUNK_ROWS};
	double		factor = class_rows[class] / Max(c->ncands, 1);
	double		sizes[lengthof(c->enrs)];
	CachedPlan *cplan;
	int			nestlevel = by_key ? by_key_begin() : 0;

	for (int i = 0; i < c->nregistered; i++)
	{
		sizes[i] = c->enrs[i]->md.enrtuples;
		if (sizes[i] > 0)
			c->enrs[i]->md.enrtuples = Max(1.0, rint(sizes[i] * factor));
	}
	plans->plan[class] = prepare_kept(sql);
	plans->provisional[class] = true;
	for (int i = 0; i < c->nregistered; i++)
		c->enrs[i]->md.enrtuples = sizes[i];
	cplan = SPI_plan_get_cached_plan(plans->plan[class]);
	if (cplan != NULL)
		ReleaseCachedPlan(cplan, CurrentResourceOwner);
	if (by_key)
		AtEOXact_GUC(true, nestlevel);
}

/*
 * A consumer's first chunk with gold, once the statements have run: every statement whose
 * plan is kept per size class, planned for the classes it has no plan for (see run()).  The
 * relations of every statement but the dead letters' are still registered; DEAD_SQL is a
 * plain insert from one relation, and a batch rarely holds many rejected messages.
 * Sessions do not do this: a psql session that inserts a few rows would pay for plans of
 * batches it never writes.
 */
static void
warm_plans(Batch *b, Chunk *c)
{
	static bool warmed = false;
	struct
	{
		Plans	   *plans;
		const char *sql;
		bool		by_key;
		bool		wanted;
	}			statements[] =
	{
		{&silver_plans, SILVER_SQL, false, !b->changes},
		{&silver_v5_plans, SILVER_V5_SQL, false, b->changes},
		{&silver_v5_none_deleted_plans, SILVER_V5_NONE_DELETED_SQL, false, b->changes},
		{&gold_plans, GOLD_SQL, false, true},
		{&top_plans, TOP_SQL, true, b->top_users && !b->top_pending},
		{&top_held_plans, TOP_HELD_SQL, true, b->top_pending && !b->top_copy},
		{&top_held_copy_plans, TOP_HELD_COPY_SQL, true, b->top_copy},
		{&pending_plans, PENDING_SQL, true, b->top_pending},
		{&pending_all_plans, PENDING_ALL_SQL, true, b->top_pending},
	};

	if (warmed || MyBackendType != B_BG_WORKER || c->silver.n == 0 || c->m_user.n == 0)
		return;
	warmed = true;
	for (int s = 0; s < lengthof(statements); s++)
		for (int k = 0; k < SIZE_CLASSES; k++)
			if (statements[s].wanted && statements[s].plans->plan[k] == NULL)
				plan_for_class(statements[s].plans, k, statements[s].sql, c, statements[s].by_key);
}

/*
 * Which top-users tables the schema has: 0.9.0's, 0.10.0's pending list, and 0.11.0's
 * copies in the members' table.
 */
static void
detect_top_users(Batch *b)
{
	Oid			nsp = get_namespace_oid("tweetlake", false);
	Oid			members = get_relname_relid("top_users", nsp);

	b->top_rel = members;
	b->top_users = OidIsValid(get_relname_relid("top_users_floor", nsp));
	b->top_pending = OidIsValid(get_relname_relid("top_users_pending", nsp));
	b->top_copy = OidIsValid(members) &&
		get_attnum(members, "total_engagement") != InvalidAttrNumber;
}

/* Step 4: the groups as relations, and the statement that merges them into gold. */
static void
write_gold(Batch *b, Chunk *c)
{
	static const ColDef c_uh[] = {
		{"hour", TIMESTAMPTZOID, InvalidOid}, {"user_id", TEXTOID, C_COLLATION_OID},
		{"tweets", INT8OID, InvalidOid}, {"hashtags", InvalidOid, InvalidOid},
		{"places", InvalidOid, InvalidOid}, {"languages", InvalidOid, InvalidOid},
		{"retracts", BOOLOID, InvalidOid},
	};
	static const ColDef c_mh[] = {
		{"hour", TIMESTAMPTZOID, InvalidOid}, {"mention", TEXTOID, C_COLLATION_OID},
		{"hashtags", InvalidOid, InvalidOid}, {"retracts", BOOLOID, InvalidOid},
	};
	static const ColDef c_tags[] = {
		{"hour", TIMESTAMPTZOID, InvalidOid}, {"hashtag", TEXTOID, InvalidOid}, MEASURE_COLS,
	};
	static const ColDef c_ud[] = {
		{"day", DATEOID, InvalidOid}, {"user_id", TEXTOID, InvalidOid},
		{"username", TEXTOID, InvalidOid}, {"followers", INT4OID, InvalidOid}, MEASURE_COLS,
		{"recheck", BOOLOID, InvalidOid}, {"day_start", TIMESTAMPTZOID, InvalidOid},
		{"day_end", TIMESTAMPTZOID, InvalidOid},
	};
	static const ColDef c_user[] = {
		{"user_id", TEXTOID, InvalidOid}, {"username", TEXTOID, InvalidOid},
		{"followers", INT4OID, InvalidOid}, {"first_day", DATEOID, InvalidOid},
		{"last_day", DATEOID, InvalidOid}, {"n", INT8OID, InvalidOid},
		{"eng", INT8OID, InvalidOid}, {"recheck", BOOLOID, InvalidOid},
	};
	static const ColDef c_region[] = {
		{"hour", TIMESTAMPTZOID, InvalidOid}, {"region", TEXTOID, InvalidOid},
		{"language", TEXTOID, InvalidOid}, MEASURE_COLS,
		{"pos", INT8OID, InvalidOid}, {"neg", INT8OID, InvalidOid}, {"neu", INT8OID, InvalidOid},
	};
	static const ColDef c_rtotal[] = {
		{"hour", TIMESTAMPTZOID, InvalidOid}, {"region", TEXTOID, InvalidOid},
		{"n", INT8OID, InvalidOid},
	};
	static const ColDef c_lang[] = {
		{"hour", TIMESTAMPTZOID, InvalidOid}, {"language", TEXTOID, InvalidOid},
		MEASURE_COLS, {"len", INT8OID, InvalidOid},
	};
	static const ColDef c_type[] = {
		{"hour", TIMESTAMPTZOID, InvalidOid}, {"tweet_type", TEXTOID, InvalidOid},
		{"followers", INT4OID, InvalidOid}, MEASURE_COLS, {"viral", INT8OID, InvalidOid},
	};
	static const ColDef c_hour[] = {
		{"hour", TIMESTAMPTZOID, InvalidOid}, MEASURE_COLS,
		{"pos", INT8OID, InvalidOid}, {"neg", INT8OID, InvalidOid}, {"neu", INT8OID, InvalidOid},
	};
	ColDef		cuh[lengthof(c_uh)];
	ColDef		cmh[lengthof(c_mh)];
	Rel			r;
	Datum		v[16];
	bool		nl[16];

	memcpy(cuh, c_uh, sizeof(c_uh));
	cuh[3].type = cuh[4].type = cuh[5].type = b->bag_type;
	memcpy(cmh, c_mh, sizeof(c_mh));
	cmh[2].type = b->bag_type;
	memset(nl, false, sizeof(nl));

	/*
	 * a member row the batch leaves as it was (an update that kept its keys)
	 * is left out
	 */
	rel_begin(&r, "batch_user_hour", cuh, lengthof(cuh));
	for (int i = 0; i < c->m_uh.n; i++)
	{
		Acc		   *g = c->m_uh.order[i];
		int			keys = 0,
					k;

		v[0] = g->k[0];
		v[1] = g->k[1];
		v[2] = Int64GetDatum(g->n);
		v[3] = tl_bag_build(g->tags.items, g->tags.n, b->bag_desc, &k);
		keys += k;
		v[4] = tl_bag_build(g->places.items, g->places.n, b->bag_desc, &k);
		keys += k;
		v[5] = tl_bag_build(g->langs.items, g->langs.n, b->bag_desc, &k);
		keys += k;
		v[6] = BoolGetDatum(g->retracts);
		if (g->n != 0 || keys > 0)
			rel_put(&r, v, nl);
	}
	rel_register(c, &r);

	rel_begin(&r, "batch_mention_hour", cmh, lengthof(cmh));
	for (int i = 0; i < c->m_mh.n; i++)
	{
		Acc		   *g = c->m_mh.order[i];
		int			keys;

		v[0] = g->k[0];
		v[1] = g->k[1];
		v[2] = tl_bag_build(g->tags.items, g->tags.n, b->bag_desc, &keys);
		v[3] = BoolGetDatum(g->retracts);
		if (keys > 0)
			rel_put(&r, v, nl);
	}
	rel_register(c, &r);

	rel_begin(&r, "batch_hashtag_hour", c_tags, lengthof(c_tags));
	for (int i = 0; i < c->m_tags.n; i++)
	{
		Acc		   *g = c->m_tags.order[i];

		v[0] = g->k[0];
		v[1] = g->k[1];
		put_measures(v, 2, g);
		rel_put(&r, v, nl);
	}
	rel_register(c, &r);

	rel_begin(&r, "batch_user_day", c_ud, lengthof(c_ud));
	for (int i = 0; i < c->m_ud.n; i++)
	{
		Acc		   *g = c->m_ud.order[i];
		bool		n2[16];
		int			k;

		memset(n2, false, sizeof(n2));
		v[0] = g->k[0];
		v[1] = g->k[1];
		v[2] = PointerGetDatum(g->username);
		n2[2] = g->username == NULL;
		v[3] = Int32GetDatum(g->followers);
		n2[3] = !g->has_followers;
		k = put_measures(v, 4, g);
		v[k++] = BoolGetDatum(user_recheck(g, false));
		v[k++] = TimestampTzGetDatum((TimestampTz) DatumGetDateADT(g->k[0]) * USECS_PER_DAY);
		v[k++] = TimestampTzGetDatum((TimestampTz) (DatumGetDateADT(g->k[0]) + 1) * USECS_PER_DAY);
		rel_put(&r, v, n2);
	}
	rel_register(c, &r);

	rel_begin(&r, "batch_user", c_user, lengthof(c_user));
	for (int i = 0; i < c->m_user.n; i++)
	{
		Acc		   *g = c->m_user.order[i];
		bool		n2[16];

		memset(n2, false, sizeof(n2));
		v[0] = g->k[0];
		v[1] = PointerGetDatum(g->username);
		n2[1] = g->username == NULL;
		v[2] = Int32GetDatum(g->followers);
		n2[2] = !g->has_followers;

		/*
		 * a group with nothing added: the days taken back (NOT NULL is
		 * checked before ON CONFLICT), which the recheck replaces
		 */
		v[3] = DateADTGetDatum(g->adds > 0 ? g->first_day : g->r_first_day);
		v[4] = DateADTGetDatum(g->adds > 0 ? g->last_day : g->r_last_day);
		v[5] = Int64GetDatum(g->n);
		v[6] = Int64GetDatum(g->eng);
		v[7] = BoolGetDatum(user_recheck(g, true));
		rel_put(&r, v, n2);
	}
	rel_register(c, &r);

	rel_begin(&r, "batch_region_hour", c_region, lengthof(c_region));
	for (int i = 0; i < c->m_region.n; i++)
	{
		Acc		   *g = c->m_region.order[i];

		v[0] = g->k[0];
		v[1] = g->k[1];
		v[2] = g->k[2];
		put_categories(v, put_measures(v, 3, g), g);
		rel_put(&r, v, nl);
	}
	rel_register(c, &r);

	rel_begin(&r, "batch_region_total", c_rtotal, lengthof(c_rtotal));
	for (int i = 0; i < c->m_rtotal.n; i++)
	{
		Acc		   *g = c->m_rtotal.order[i];

		v[0] = g->k[0];
		v[1] = g->k[1];
		v[2] = Int64GetDatum(g->n);
		rel_put(&r, v, nl);
	}
	rel_register(c, &r);

	rel_begin(&r, "batch_language_hour", c_lang, lengthof(c_lang));
	for (int i = 0; i < c->m_lang.n; i++)
	{
		Acc		   *g = c->m_lang.order[i];
		int			k;

		v[0] = g->k[0];
		v[1] = g->k[1];
		k = put_measures(v, 2, g);
		v[k] = Int64GetDatum(g->len);
		rel_put(&r, v, nl);
	}
	rel_register(c, &r);

	rel_begin(&r, "batch_type_hour", c_type, lengthof(c_type));
	for (int i = 0; i < c->m_type.n; i++)
	{
		Acc		   *g = c->m_type.order[i];
		bool		n2[16];
		int			k;

		memset(n2, false, sizeof(n2));
		v[0] = g->k[0];
		v[1] = g->k[1];
		v[2] = Int32GetDatum(g->followers);
		n2[2] = !g->has_followers;
		k = put_measures(v, 3, g);
		v[k] = Int64GetDatum(g->viral);
		rel_put(&r, v, n2);
	}
	rel_register(c, &r);

	rel_begin(&r, "batch_hour", c_hour, lengthof(c_hour));
	for (int i = 0; i < c->m_hour.n; i++)
	{
		Acc		   *g = c->m_hour.order[i];

		v[0] = g->k[0];
		put_categories(v, put_measures(v, 1, g), g);
		rel_put(&r, v, nl);
	}
	rel_register(c, &r);

	run(&gold_plans, c->ncands, GOLD_SQL, SPI_OK_INSERT);
	if (c->ntaken > 0)
	{
		instr_time	t0,
					t1;

		INSTR_TIME_SET_CURRENT(t0);
		run(ONCE, c->ntaken, GONE_SQL, SPI_OK_UPDATE);
		run(ONCE, c->ntaken, CLEANUP_SQL, SPI_OK_DELETE);
		run(ONCE, c->ntaken, RECHECK_SQL, SPI_OK_UPDATE);
		INSTR_TIME_SET_CURRENT(t1);
		INSTR_TIME_SUBTRACT(t1, t0);
		c->retract_ms = INSTR_TIME_GET_MILLISEC(t1);
	}

	/*
	 * Looked up here, not when the batch began: an ALTER EXTENSION ... UPDATE
	 * that commits while this batch waits for its gold rows can have made the
	 * top users' tables since, and its users must reach them.
	 */
	if (c->m_user.n > 0)
	{
		detect_top_users(b);
		if (b->top_users)
			write_top_users(b, c);
		warm_plans(b, c);
	}
}

Datum
tweetlake_process_bronze_batch(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;
	MemoryContext batchcxt;
	MemoryContext old;
	TupleDesc	bronze;
	Batch		b;
	int			ptr;

	if (!CALLED_AS_TRIGGER(fcinfo) ||
		!TRIGGER_FIRED_AFTER(trigdata->tg_event) ||
		!TRIGGER_FIRED_FOR_STATEMENT(trigdata->tg_event) ||
		!TRIGGER_FIRED_BY_INSERT(trigdata->tg_event) ||
		trigdata->tg_newtable == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("tweetlake.process_bronze_batch() must be an AFTER INSERT ... FOR EACH STATEMENT trigger with REFERENCING NEW TABLE")));

	batchcxt = AllocSetContextCreate(CurrentMemoryContext, "tweetlake batch",
									 ALLOCSET_DEFAULT_SIZES);
	old = MemoryContextSwitchTo(batchcxt);

	bronze = RelationGetDescr(trigdata->tg_relation);
	b.a_raw = SPI_fnumber(bronze, "raw");
	b.a_topic = SPI_fnumber(bronze, "kafka_topic");
	b.a_partition = SPI_fnumber(bronze, "kafka_partition");
	b.a_offset = SPI_fnumber(bronze, "kafka_offset");
	if (b.a_raw <= 0 || b.a_topic <= 0 || b.a_partition <= 0 || b.a_offset <= 0)
		elog(ERROR, "tweetlake.process_bronze_batch() fired on a table that is not bronze.tweets");
	b.a_key = SPI_fnumber(bronze, "kafka_key");
	if (b.a_key < 0)
		b.a_key = 0;
	b.a_tenant = SPI_fnumber(bronze, "tenant");
	if (b.a_tenant < 0)
		b.a_tenant = 0;
	b.tenant = NULL;
	b.tenants = NIL;
	b.pass = 0;
	b.cxt = batchcxt;
	b.parsed_desc = lookup_rowtype_tupdesc_copy(type_in_tweetlake("parsed_tweet"), -1);
	b.changes = tl_check_parsed_tweet(b.parsed_desc) && b.a_key > 0;
	b.bag_type = type_in_tweetlake("bag");
	b.bag_desc = BlessTupleDesc(lookup_rowtype_tupdesc_copy(b.bag_type, -1));
	b.unknown = cstring_to_text("unknown");
	b.in = trigdata->tg_newtable;
	b.slot = MakeSingleTupleTableSlot(bronze, &TTSOpsMinimalTuple);
	ptr = tuplestore_alloc_read_pointer(b.in, EXEC_FLAG_REWIND);
	tuplestore_select_read_pointer(b.in, ptr);
	tuplestore_rescan(b.in);

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if ((b.a_tenant > 0) != tenants_on)
	{
		forget_plans();
		tenants_on = b.a_tenant > 0;
	}
	for (;;)
	{
		Chunk		c;
		instr_time	t0,
					t1,
					t2,
					t3,
					t4;

		memset(&c, 0, sizeof(c));
		c.cxt = AllocSetContextCreate(batchcxt, "tweetlake batch chunk", ALLOCSET_DEFAULT_SIZES);
		c.batchcxt = batchcxt;
		INSTR_TIME_SET_CURRENT(t0);
		if (!read_chunk(&b, &c))
		{
			ExecClearTuple(b.slot);
			MemoryContextSwitchTo(batchcxt);
			MemoryContextDelete(c.cxt);
			/* the next tenant's rows, if the batch has several tenants */
			if (b.a_tenant > 0 && b.pass + 1 < list_length(b.tenants))
			{
				b.pass++;
				b.tenant = list_nth(b.tenants, b.pass);
				chunk_tenant = PointerGetDatum(b.tenant);
				tuplestore_rescan(b.in);
				continue;
			}
			break;
		}
		INSTR_TIME_SET_CURRENT(t1);
		write_silver(&b, &c);
		INSTR_TIME_SET_CURRENT(t2);
		group_chunk(&c);
		INSTR_TIME_SET_CURRENT(t3);
		if (c.m_hour.n > 0)
			write_gold(&b, &c);
		INSTR_TIME_SET_CURRENT(t4);
		tl_batch_counts.updates += c.nupdated;
		tl_batch_counts.deletes += c.ndeleted;
		tl_batch_counts.stale += c.nstale;

		if (message_level_is_interesting(DEBUG1))
		{
			INSTR_TIME_SUBTRACT(t4, t3);
			INSTR_TIME_SUBTRACT(t3, t2);
			INSTR_TIME_SUBTRACT(t2, t1);
			INSTR_TIME_SUBTRACT(t1, t0);
			elog(DEBUG1, "tweetlake batch: %d rows, %d rejected, %d new in silver, %d updates, %d deleted, %d changing nothing; %zu kB of memory; parse %.1f ms, silver and dead letters %.1f ms, grouping %.1f ms, gold %.1f ms (of which retractions %.1f ms)",
				 c.nread, c.rejected.n, c.nnew, c.nupdated, c.ndeleted, c.nstale,
				 MemoryContextMemAllocated(c.cxt, true) / 1024,
				 INSTR_TIME_GET_MILLISEC(t1), INSTR_TIME_GET_MILLISEC(t2),
				 INSTR_TIME_GET_MILLISEC(t3), INSTR_TIME_GET_MILLISEC(t4), c.retract_ms);
		}
		MemoryContextSwitchTo(batchcxt);
		for (int i = 0; i < c.nregistered; i++)
			if (SPI_unregister_relation(c.enrs[i]->md.name) != SPI_OK_REL_UNREGISTER)
				elog(ERROR, "SPI_unregister_relation(%s) failed", c.enrs[i]->md.name);

		/*
		 * a row read from a transition table on disk lives in the chunk's
		 * memory
		 */
		ExecClearTuple(b.slot);
		MemoryContextSwitchTo(batchcxt);
		MemoryContextDelete(c.cxt);
	}
	SPI_finish();

	ExecDropSingleTupleTableSlot(b.slot);
	MemoryContextSwitchTo(old);
	MemoryContextDelete(batchcxt);
	return PointerGetDatum(NULL);
}
