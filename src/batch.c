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
 *   1. SILVER_SQL  the parsed rows into silver.tweets, ON CONFLICT (tweet_id) DO NOTHING;
 *                  RETURNING says which tweets are new: only those are grouped, so a
 *                  duplicate is never counted
 *   2. DEAD_SQL    the rejected messages into bronze.dead_letters, with the reason
 *   3. GOLD_SQL    one statement: the batch's bags merged into tweetlake.user_hour and
 *                  mention_hour (one row per (hour, member)); the keys whose count is now
 *                  the count the batch brought are new members of their group
 *                  (tweetlake.bag_new); then every gold table upserted once per group
 *                  touched, in key order (concurrent batches lock rows in one order)
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
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/date.h"
#include "utils/datum.h"
#include "utils/fmgrprotos.h"
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
"INSERT INTO silver.tweets (" SILVER_COLUMNS ") "
"SELECT " SILVER_COLUMNS " FROM batch_silver "
"ON CONFLICT (tweet_id) DO NOTHING RETURNING tweet_id";

static const char DEAD_SQL[] =
"INSERT INTO bronze.dead_letters (raw, reason, tweet_id, kafka_topic, kafka_partition, kafka_offset) "
"SELECT pg_catalog.convert_to(raw, 'UTF8'), reason, tweet_id, kafka_topic, kafka_partition, kafka_offset "
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
 */
static const char GOLD_SQL[] =
"WITH uh AS (\n"
"    INSERT INTO tweetlake.user_hour AS u (hour, user_id, tweets, hashtags, places, languages)\n"
"    SELECT hour, user_id, tweets, hashtags, places, languages FROM batch_user_hour\n"
"    ORDER BY hour, user_id\n"
"    ON CONFLICT (hour, user_id) DO UPDATE SET\n"
"        tweets    = u.tweets OPERATOR(pg_catalog.+) excluded.tweets,\n"
"        hashtags  = tweetlake.bag_add(u.hashtags, excluded.hashtags),\n"
"        places    = tweetlake.bag_add(u.places, excluded.places),\n"
"        languages = tweetlake.bag_add(u.languages, excluded.languages)\n"
"    RETURNING hour, user_id, tweets, hashtags, places, languages\n"
"), uh_new AS MATERIALIZED (\n"
"    SELECT r.hour, r.tweets OPERATOR(pg_catalog.=) i.tweets AS new_in_hour,\n"
"           tweetlake.bag_new(r.hashtags, i.hashtags) AS hashtags,\n"
"           tweetlake.bag_new(r.places, i.places) AS places,\n"
"           tweetlake.bag_new(r.languages, i.languages) AS languages\n"
"    FROM uh r JOIN batch_user_hour i\n"
"      ON i.hour OPERATOR(pg_catalog.=) r.hour AND i.user_id OPERATOR(pg_catalog.=) r.user_id\n"
"), mh AS (\n"
"    INSERT INTO tweetlake.mention_hour AS u (hour, mention, hashtags)\n"
"    SELECT hour, mention, hashtags FROM batch_mention_hour\n"
"    ORDER BY hour, mention\n"
"    ON CONFLICT (hour, mention) DO UPDATE SET\n"
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
"    INSERT INTO gold.popular_hashtags_by_hour AS g (\n"
"        hour, hashtag, tweet_count, unique_users, unique_mentions, avg_sentiment,\n"
"        total_engagement, avg_engagement, sentiment_sum, sentiment_n)\n"
"    SELECT a.hour, a.hashtag, a.n, coalesce(u.n, 0), coalesce(m.n, 0),\n"
"           tweetlake.exact_avg(a.ssum, a.sn), a.eng,\n"
"           a.eng::pg_catalog.float8 OPERATOR(pg_catalog./) a.n, a.ssum, a.sn\n"
"    FROM batch_hashtag_hour a\n"
"    LEFT JOIN (SELECT hour, hashtag, pg_catalog.count(*) AS n FROM tag_users_new GROUP BY hour, hashtag) u\n"
"           USING (hour, hashtag)\n"
"    LEFT JOIN (SELECT hour, hashtag, pg_catalog.count(*) AS n FROM tag_mentions_new GROUP BY hour, hashtag) m\n"
"           USING (hour, hashtag)\n"
"    ORDER BY a.hour, a.hashtag\n"
"    ON CONFLICT (hour, hashtag) DO UPDATE SET\n"
"        tweet_count      = g.tweet_count OPERATOR(pg_catalog.+) excluded.tweet_count,\n"
"        unique_users     = g.unique_users OPERATOR(pg_catalog.+) excluded.unique_users,\n"
"        unique_mentions  = g.unique_mentions OPERATOR(pg_catalog.+) excluded.unique_mentions,\n"
"        total_engagement = g.total_engagement OPERATOR(pg_catalog.+) excluded.total_engagement,\n"
"        sentiment_sum    = g.sentiment_sum OPERATOR(pg_catalog.+) excluded.sentiment_sum,\n"
"        sentiment_n      = g.sentiment_n OPERATOR(pg_catalog.+) excluded.sentiment_n,\n"
"        avg_sentiment    = tweetlake.exact_avg(g.sentiment_sum OPERATOR(pg_catalog.+) excluded.sentiment_sum,\n"
"                                               g.sentiment_n OPERATOR(pg_catalog.+) excluded.sentiment_n),\n"
"        avg_engagement   = (g.total_engagement OPERATOR(pg_catalog.+) excluded.total_engagement)::pg_catalog.float8\n"
"                           OPERATOR(pg_catalog./) (g.tweet_count OPERATOR(pg_catalog.+) excluded.tweet_count)\n"
"    RETURNING hour, hashtag, tweet_count\n"
"), g_users AS (\n"
"    INSERT INTO gold.active_users_by_day AS g (\n"
"        day, user_id, username, tweets_count, followers_count, total_engagement,\n"
"        avg_sentiment, sentiment_sum, sentiment_n)\n"
"    SELECT day, user_id, username, n, followers, eng, tweetlake.exact_avg(ssum, sn), ssum, sn\n"
"    FROM batch_user_day\n"
"    ORDER BY day, user_id\n"
"    ON CONFLICT (day, user_id) DO UPDATE SET\n"
"        username         = greatest(g.username, excluded.username),\n"
"        tweets_count     = g.tweets_count OPERATOR(pg_catalog.+) excluded.tweets_count,\n"
"        followers_count  = greatest(g.followers_count, excluded.followers_count),\n"
"        total_engagement = g.total_engagement OPERATOR(pg_catalog.+) excluded.total_engagement,\n"
"        sentiment_sum    = g.sentiment_sum OPERATOR(pg_catalog.+) excluded.sentiment_sum,\n"
"        sentiment_n      = g.sentiment_n OPERATOR(pg_catalog.+) excluded.sentiment_n,\n"
"        avg_sentiment    = tweetlake.exact_avg(g.sentiment_sum OPERATOR(pg_catalog.+) excluded.sentiment_sum,\n"
"                                               g.sentiment_n OPERATOR(pg_catalog.+) excluded.sentiment_n)\n"
"), g_user_totals AS (\n"
"    INSERT INTO gold.user_engagement AS g (\n"
"        user_id, username, tweets_count, followers_count, total_engagement, first_day, last_day)\n"
"    SELECT user_id, username, n, followers, eng, first_day, last_day FROM batch_user\n"
"    ORDER BY user_id\n"
"    ON CONFLICT (user_id) DO UPDATE SET\n"
"        username         = greatest(g.username, excluded.username),\n"
"        tweets_count     = g.tweets_count OPERATOR(pg_catalog.+) excluded.tweets_count,\n"
"        followers_count  = greatest(g.followers_count, excluded.followers_count),\n"
"        total_engagement = g.total_engagement OPERATOR(pg_catalog.+) excluded.total_engagement,\n"
"        first_day        = least(g.first_day, excluded.first_day),\n"
"        last_day         = greatest(g.last_day, excluded.last_day)\n"
"), region_users_new AS (\n"
"    SELECT n.hour, k.pair FROM uh_new n CROSS JOIN LATERAL pg_catalog.unnest(n.places) AS k(pair)\n"
"), g_region AS (\n"
"    INSERT INTO gold.tweet_volume_by_region AS g (\n"
"        hour, region, language, tweet_count, unique_users, avg_sentiment, positive_count,\n"
"        negative_count, neutral_count, total_engagement, sentiment_sum, sentiment_n)\n"
"    SELECT a.hour, a.region, a.language, a.n, coalesce(u.n, 0), tweetlake.exact_avg(a.ssum, a.sn),\n"
"           a.pos, a.neg, a.neu, a.eng, a.ssum, a.sn\n"
"    FROM batch_region_hour a\n"
"    LEFT JOIN (SELECT hour, pair, pg_catalog.count(*) AS n FROM region_users_new GROUP BY hour, pair) u\n"
"           ON u.hour OPERATOR(pg_catalog.=) a.hour\n"
"          AND u.pair OPERATOR(pg_catalog.=) tweetlake.pair_key(a.region, a.language)\n"
"    ORDER BY a.hour, a.region, a.language\n"
"    ON CONFLICT (hour, region, language) DO UPDATE SET\n"
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
"    INSERT INTO tweetlake.region_hour_counts AS r (hour, region, tweet_count)\n"
"    SELECT hour, region, n FROM batch_region_total\n"
"    ORDER BY hour, region\n"
"    ON CONFLICT (hour, region) DO UPDATE SET\n"
"        tweet_count = r.tweet_count OPERATOR(pg_catalog.+) excluded.tweet_count\n"
"    RETURNING hour, region, tweet_count\n"
"), language_users_new AS (\n"
"    SELECT n.hour, k.language FROM uh_new n CROSS JOIN LATERAL pg_catalog.unnest(n.languages) AS k(language)\n"
"), g_language AS (\n"
"    INSERT INTO gold.tweet_metrics_by_language AS g (\n"
"        hour, language, tweet_count, avg_tweet_length, avg_sentiment, avg_engagement,\n"
"        unique_users, text_length_sum, total_engagement, sentiment_sum, sentiment_n)\n"
"    SELECT a.hour, a.language, a.n, a.len::pg_catalog.float8 OPERATOR(pg_catalog./) a.n,\n"
"           tweetlake.exact_avg(a.ssum, a.sn), a.eng::pg_catalog.float8 OPERATOR(pg_catalog./) a.n,\n"
"           coalesce(u.n, 0), a.len, a.eng, a.ssum, a.sn\n"
"    FROM batch_language_hour a\n"
"    LEFT JOIN (SELECT hour, language, pg_catalog.count(*) AS n\n"
"               FROM language_users_new GROUP BY hour, language) u\n"
"           USING (hour, language)\n"
"    ORDER BY a.hour, a.language\n"
"    ON CONFLICT (hour, language) DO UPDATE SET\n"
"        tweet_count      = g.tweet_count OPERATOR(pg_catalog.+) excluded.tweet_count,\n"
"        unique_users     = g.unique_users OPERATOR(pg_catalog.+) excluded.unique_users,\n"
"        text_length_sum  = g.text_length_sum OPERATOR(pg_catalog.+) excluded.text_length_sum,\n"
"        total_engagement = g.total_engagement OPERATOR(pg_catalog.+) excluded.total_engagement,\n"
"        sentiment_sum    = g.sentiment_sum OPERATOR(pg_catalog.+) excluded.sentiment_sum,\n"
"        sentiment_n      = g.sentiment_n OPERATOR(pg_catalog.+) excluded.sentiment_n,\n"
"        avg_tweet_length = (g.text_length_sum OPERATOR(pg_catalog.+) excluded.text_length_sum)::pg_catalog.float8\n"
"                           OPERATOR(pg_catalog./) (g.tweet_count OPERATOR(pg_catalog.+) excluded.tweet_count),\n"
"        avg_sentiment    = tweetlake.exact_avg(g.sentiment_sum OPERATOR(pg_catalog.+) excluded.sentiment_sum,\n"
"                                               g.sentiment_n OPERATOR(pg_catalog.+) excluded.sentiment_n),\n"
"        avg_engagement   = (g.total_engagement OPERATOR(pg_catalog.+) excluded.total_engagement)::pg_catalog.float8\n"
"                           OPERATOR(pg_catalog./) (g.tweet_count OPERATOR(pg_catalog.+) excluded.tweet_count)\n"
"), g_types AS (\n"
"    INSERT INTO gold.engagement_by_type_hour AS g (\n"
"        hour, tweet_type, influence_level, tweet_count, total_engagement, avg_engagement,\n"
"        viral_count, avg_sentiment, sentiment_sum, sentiment_n)\n"
"    SELECT hour, tweet_type, tweetlake.influence_level(followers), n, eng,\n"
"           eng::pg_catalog.float8 OPERATOR(pg_catalog./) n, viral, tweetlake.exact_avg(ssum, sn), ssum, sn\n"
"    FROM batch_type_hour\n"
"    ORDER BY 1, 2, 3\n"
"    ON CONFLICT (hour, tweet_type, influence_level) DO UPDATE SET\n"
"        tweet_count      = g.tweet_count OPERATOR(pg_catalog.+) excluded.tweet_count,\n"
"        total_engagement = g.total_engagement OPERATOR(pg_catalog.+) excluded.total_engagement,\n"
"        viral_count      = g.viral_count OPERATOR(pg_catalog.+) excluded.viral_count,\n"
"        sentiment_sum    = g.sentiment_sum OPERATOR(pg_catalog.+) excluded.sentiment_sum,\n"
"        sentiment_n      = g.sentiment_n OPERATOR(pg_catalog.+) excluded.sentiment_n,\n"
"        avg_engagement   = (g.total_engagement OPERATOR(pg_catalog.+) excluded.total_engagement)::pg_catalog.float8\n"
"                           OPERATOR(pg_catalog./) (g.tweet_count OPERATOR(pg_catalog.+) excluded.tweet_count),\n"
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
"INSERT INTO gold.hourly_activity_summary AS g (\n"
"    hour, total_tweets, unique_users, avg_sentiment, total_engagement, top_hashtag,\n"
"    top_region, positive_count, negative_count, neutral_count, sentiment_sum, sentiment_n,\n"
"    top_hashtag_count, top_region_count)\n"
"SELECT a.hour, a.n, coalesce(u.n, 0), tweetlake.exact_avg(a.ssum, a.sn), a.eng,\n"
"       t.hashtag, r.region, a.pos, a.neg, a.neu, a.ssum, a.sn, t.tweet_count, r.tweet_count\n"
"FROM batch_hour a\n"
"LEFT JOIN (SELECT hour, pg_catalog.count(*) AS n FROM hour_users_new GROUP BY hour) u USING (hour)\n"
"LEFT JOIN top_tag t USING (hour)\n"
"LEFT JOIN top_region r USING (hour)\n"
"ORDER BY a.hour \n"
"ON CONFLICT (hour) DO UPDATE SET\n"
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
	text	   *username;		/* max(username), NULL: none */
	bool		has_followers;
	int32		followers;		/* max(followers_count) */
	DateADT		first_day,
				last_day;
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
keys_add(KeyList *l, const char *data, int len)
{
	if (l->n == l->cap)
	{
		l->cap = l->cap ? l->cap * 2 : 4;
		l->items = l->items ? repalloc(l->items, sizeof(TlBagKey) * l->cap)
			: palloc(sizeof(TlBagKey) * l->cap);
	}
	l->items[l->n].data = data;
	l->items[l->n].len = len;
	l->n++;
}

/* Every element of a text[] (no nulls: parse.c makes them) into l. */
static void
keys_add_array(KeyList *l, Datum *elems, int nelems)
{
	for (int i = 0; i < nelems; i++)
	{
		text	   *t = (text *) DatumGetPointer(elems[i]);

		keys_add(l, VARDATA_ANY(t), VARSIZE_ANY_EXHDR(t));
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

/* What one row adds to a group's measures (counts, sums, sentiment categories). */
static void
group_add(Acc *g, const Facts *f)
{
	g->n++;
	add_int64(&g->eng, f->eng);
	g->len += f->text_length;
	if (f->eng > 1000)
		g->viral++;
	if (f->sentiment != NULL)
	{
		g->sn++;
		g->ssum = g->ssum == NULL ? f->sentiment
			: numeric_add_opt_error(g->ssum, f->sentiment, NULL);
	}
	if (f->category == 'p')
		g->pos++;
	else if (f->category == 'n')
		g->neg++;
	else if (f->category == 'u')
		g->neu++;
}

/* The user's columns a row adds: max(username), max(followers_count), first and last day. */
static void
group_add_user(Acc *g, const Facts *f, bool created)
{
	if (f->username != NULL &&
		(g->username == NULL ||
		 (!(VARSIZE_ANY_EXHDR(f->username) == VARSIZE_ANY_EXHDR(g->username) &&
			memcmp(VARDATA_ANY(f->username), VARDATA_ANY(g->username),
				   VARSIZE_ANY_EXHDR(f->username)) == 0) &&
		  varstr_cmp(VARDATA_ANY(f->username), VARSIZE_ANY_EXHDR(f->username),
					 VARDATA_ANY(g->username), VARSIZE_ANY_EXHDR(g->username),
					 DEFAULT_COLLATION_OID) > 0)))
		g->username = f->username;	/* max(username), by the database's
									 * collation */
	if (f->has_followers && (!g->has_followers || f->followers > g->followers))
	{
		g->followers = f->followers;
		g->has_followers = true;
	}
	if (created || f->day < g->first_day)
		g->first_day = f->day;
	if (created || f->day > g->last_day)
		g->last_day = f->day;
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

/* tweet_id -> the index of its first row in the batch */
typedef struct IdEntry
{
	char		id[TL_MAX_ID_BYTES + 1];
	int			index;
} IdEntry;

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
 * A plan is kept per batch size class (plans[class]), since the relations' sizes, which the
 * plan was made for, grow with the batch.  The plan cache makes a new plan when a table it
 * reads changes (the extension dropped and created again, for one).
 */
#define SIZE_CLASSES 4

static void
run(SPIPlanPtr *plans, int ntweets, const char *sql, int expect)
{
	int			class = ntweets < 16 ? 0 : ntweets < 256 ? 1 : ntweets < 4096 ? 2 : 3;
	int			rc;

	if (plans[class] == NULL)
	{
		SPIPlanPtr	plan = SPI_prepare(sql, 0, NULL);

		if (plan == NULL)
			elog(ERROR, "tweetlake batch: SPI_prepare failed: %s", SPI_result_code_string(SPI_result));
		if (SPI_keepplan(plan) != 0)
			elog(ERROR, "tweetlake batch: SPI_keepplan failed");
		plans[class] = plan;
	}
	rc = SPI_execute_plan(plans[class], NULL, NULL, false, 0);
	if (rc != expect)
		elog(ERROR, "tweetlake batch: SPI_execute_plan failed: %s", SPI_result_code_string(rc));
}

static SPIPlanPtr silver_plans[SIZE_CLASSES];
static SPIPlanPtr dead_plans[SIZE_CLASSES];
static SPIPlanPtr gold_plans[SIZE_CLASSES];

/* What one run of the trigger reads, and how (set up once per run). */
typedef struct Batch
{
	Tuplestorestate *in;		/* the transition table */
	TupleTableSlot *slot;
	int			a_raw,
				a_topic,
				a_partition,
				a_offset;
	TupleDesc	parsed_desc;	/* tweetlake.parsed_tweet: the silver relation */
	TupleDesc	bag_desc;
	Oid			bag_type;
	text	   *unknown;
} Batch;

/*
 * A chunk of the batch: at most CHUNK_ROWS rows of the transition table, parsed, written
 * and merged into gold before the next is read, so that a batch of any size (a COPY of
 * millions of lines) needs the memory of one chunk.  The chunks run in order in the
 * statement's transaction, so silver's ON CONFLICT sees the earlier chunks' rows: the first
 * row of a tweet_id wins across chunks as within one.
 */
#define CHUNK_ROWS 10000

typedef struct Chunk
{
	MemoryContext cxt;
	MemoryContext batchcxt;		/* the run's: SPI's list of relations lives
								 * there */
	int			nread;			/* rows read */
	int			ntweets;		/* ... parsed, the first of their tweet_id */
	int			nnew;			/* ... of which silver took */
	Facts	   *facts;			/* what the groups need of each of these */
	bool	   *is_new;
	HTAB	   *ids;			/* tweet_id -> index in facts */
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
	const char *registered[16]; /* relations registered with SPI */
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
	Assert(c->nregistered < lengthof(c->registered));
	c->registered[c->nregistered++] = r->name;
	MemoryContextSwitchTo(old);
}

/* Step 1: up to CHUNK_ROWS rows parsed; rejected ones aside, the first of each tweet_id kept. */
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
	rel_begin_desc(&c->silver, "batch_silver", b->parsed_desc);
	rel_begin(&c->rejected, "batch_rejected", cols, lengthof(cols));
	c->facts = palloc(sizeof(Facts) * CHUNK_ROWS);
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

		CHECK_FOR_INTERRUPTS();
		c->nread++;
		MemoryContextReset(rowcxt);
		MemoryContextSwitchTo(rowcxt);
		tl_parse_tweet(isnull ? NULL : DatumGetTextPP(raw), values, nulls);
		MemoryContextSwitchTo(c->cxt);
		if (!nulls[A_ERROR])
		{
			Datum		r[6];
			bool		rn[6];

			r[0] = raw;
			rn[0] = isnull;
			r[1] = values[A_ERROR];
			rn[1] = false;
			r[2] = values[A_TWEET_ID];
			rn[2] = nulls[A_TWEET_ID];
			r[3] = slot_getattr(b->slot, b->a_topic, &rn[3]);
			r[4] = slot_getattr(b->slot, b->a_partition, &rn[4]);
			r[5] = slot_getattr(b->slot, b->a_offset, &rn[5]);
			rel_put(&c->rejected, r, rn);
		}
		else
		{
			char	   *key = TextDatumGetCString(values[A_TWEET_ID]);
			bool		found;
			IdEntry    *entry = hash_search(c->ids, key, HASH_ENTER, &found);

			pfree(key);
			if (found)
				continue;		/* a duplicate in the batch: the first wins */
			entry->index = c->ntweets;
			facts_of(&c->facts[c->ntweets], values, nulls, b->unknown, c->sentiments);
			rel_put(&c->silver, values, nulls);
			c->ntweets++;
		}
	}
	MemoryContextDelete(rowcxt);
	return c->nread > 0;
}

/* Step 2: silver (RETURNING says which rows are new) and the dead letters. */
static void
write_silver(Chunk *c)
{
	c->is_new = palloc0(sizeof(bool) * Max(c->ntweets, 1));
	if (c->ntweets > 0)
	{
		rel_register(c, &c->silver);
		run(silver_plans, c->ntweets, SILVER_SQL, SPI_OK_INSERT_RETURNING);
		c->nnew = (int) SPI_processed;
		if (SPI_processed == (uint64) c->ntweets)
			memset(c->is_new, true, sizeof(bool) * c->ntweets);
		else
			for (uint64 i = 0; i < SPI_processed; i++)
			{
				char	   *id = SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1);
				IdEntry    *entry = hash_search(c->ids, id, HASH_FIND, NULL);

				if (entry == NULL)
					elog(ERROR, "tweetlake batch: silver returned a tweet_id the batch does not have");
				c->is_new[entry->index] = true;
			}
		SPI_freetuptable(SPI_tuptable);
	}
	if (c->rejected.n > 0)
	{
		rel_register(c, &c->rejected);
		run(dead_plans, c->rejected.n, DEAD_SQL, SPI_OK_INSERT);
	}
}

/* Step 3: the new rows grouped by every gold key. */
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
	for (int t = 0; t < c->ntweets; t++)
	{
		Facts	   *f = &c->facts[t];
		Datum		hour = TimestampTzGetDatum(f->hour);
		Acc		   *g;
		bool		created;

		if (!c->is_new[t])
			continue;
		CHECK_FOR_INTERRUPTS();
		for (int i = 0; i < f->ntags; i++)
			group_add(group_of(&c->m_tags, hour, f->tags[i], 0, NULL), f);
		group_add(group_of(&c->m_region, hour, PointerGetDatum(f->region),
						   PointerGetDatum(f->language), NULL), f);
		group_of(&c->m_rtotal, hour, PointerGetDatum(f->region), 0, NULL)->n++;
		group_add(group_of(&c->m_lang, hour, PointerGetDatum(f->language), 0, NULL), f);
		g = group_of(&c->m_type, hour, PointerGetDatum(f->tweet_type), Int32GetDatum(f->level),
					 &created);
		if (created)
		{
			/*
			 * a member's followers_count: influence_level gives the group's
			 * level
			 */
			g->has_followers = f->has_followers;
			g->followers = f->followers;
		}
		group_add(g, f);
		group_add(group_of(&c->m_hour, hour, 0, 0, NULL), f);

		if (f->ntags > 0)
			for (int i = 0; i < f->nmentions; i++)
				keys_add_array(&group_of(&c->m_mh, hour, f->mentions[i], 0, NULL)->tags,
							   f->tags, f->ntags);

		if (f->user_id == NULL)
			continue;

		g = group_of(&c->m_uh, hour, PointerGetDatum(f->user_id), 0, NULL);
		g->n++;
		keys_add_array(&g->tags, f->tags, f->ntags);
		keys_add(&g->places, f->pair, f->pairlen);
		keys_add(&g->langs, VARDATA_ANY(f->language), VARSIZE_ANY_EXHDR(f->language));

		g = group_of(&c->m_ud, DateADTGetDatum(f->day), PointerGetDatum(f->user_id), 0, &created);
		group_add(g, f);
		group_add_user(g, f, created);

		g = group_of(&c->m_user, PointerGetDatum(f->user_id), 0, 0, &created);
		g->n++;
		add_int64(&g->eng, f->eng);
		group_add_user(g, f, created);
	}
}

/* Step 4: the groups as relations, and the statement that merges them into gold. */
static void
write_gold(Batch *b, Chunk *c)
{
	static const ColDef c_uh[] = {
		{"hour", TIMESTAMPTZOID, InvalidOid}, {"user_id", TEXTOID, C_COLLATION_OID},
		{"tweets", INT8OID, InvalidOid}, {"hashtags", InvalidOid, InvalidOid},
		{"places", InvalidOid, InvalidOid}, {"languages", InvalidOid, InvalidOid},
	};
	static const ColDef c_mh[] = {
		{"hour", TIMESTAMPTZOID, InvalidOid}, {"mention", TEXTOID, C_COLLATION_OID},
		{"hashtags", InvalidOid, InvalidOid},
	};
	static const ColDef c_tags[] = {
		{"hour", TIMESTAMPTZOID, InvalidOid}, {"hashtag", TEXTOID, InvalidOid}, MEASURE_COLS,
	};
	static const ColDef c_ud[] = {
		{"day", DATEOID, InvalidOid}, {"user_id", TEXTOID, InvalidOid},
		{"username", TEXTOID, InvalidOid}, {"followers", INT4OID, InvalidOid}, MEASURE_COLS,
	};
	static const ColDef c_user[] = {
		{"user_id", TEXTOID, InvalidOid}, {"username", TEXTOID, InvalidOid},
		{"followers", INT4OID, InvalidOid}, {"first_day", DATEOID, InvalidOid},
		{"last_day", DATEOID, InvalidOid}, {"n", INT8OID, InvalidOid},
		{"eng", INT8OID, InvalidOid},
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

	rel_begin(&r, "batch_user_hour", cuh, lengthof(cuh));
	for (int i = 0; i < c->m_uh.n; i++)
	{
		Acc		   *g = c->m_uh.order[i];

		v[0] = g->k[0];
		v[1] = g->k[1];
		v[2] = Int64GetDatum(g->n);
		v[3] = tl_bag_build(g->tags.items, g->tags.n, b->bag_desc);
		v[4] = tl_bag_build(g->places.items, g->places.n, b->bag_desc);
		v[5] = tl_bag_build(g->langs.items, g->langs.n, b->bag_desc);
		rel_put(&r, v, nl);
	}
	rel_register(c, &r);

	rel_begin(&r, "batch_mention_hour", cmh, lengthof(cmh));
	for (int i = 0; i < c->m_mh.n; i++)
	{
		Acc		   *g = c->m_mh.order[i];

		v[0] = g->k[0];
		v[1] = g->k[1];
		v[2] = tl_bag_build(g->tags.items, g->tags.n, b->bag_desc);
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

		memset(n2, false, sizeof(n2));
		v[0] = g->k[0];
		v[1] = g->k[1];
		v[2] = PointerGetDatum(g->username);
		n2[2] = g->username == NULL;
		v[3] = Int32GetDatum(g->followers);
		n2[3] = !g->has_followers;
		put_measures(v, 4, g);
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
		v[3] = DateADTGetDatum(g->first_day);
		v[4] = DateADTGetDatum(g->last_day);
		v[5] = Int64GetDatum(g->n);
		v[6] = Int64GetDatum(g->eng);
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

	run(gold_plans, c->ntweets, GOLD_SQL, SPI_OK_INSERT);
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
	b.parsed_desc = lookup_rowtype_tupdesc_copy(type_in_tweetlake("parsed_tweet"), -1);
	tl_check_parsed_tweet(b.parsed_desc);
	b.bag_type = type_in_tweetlake("bag");
	b.bag_desc = BlessTupleDesc(lookup_rowtype_tupdesc_copy(b.bag_type, -1));
	b.unknown = cstring_to_text("unknown");
	b.in = trigdata->tg_newtable;
	b.slot = MakeSingleTupleTableSlot(bronze, &TTSOpsMinimalTuple);
	ptr = tuplestore_alloc_read_pointer(b.in, 0);
	tuplestore_select_read_pointer(b.in, ptr);
	tuplestore_rescan(b.in);

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
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
			break;
		}
		INSTR_TIME_SET_CURRENT(t1);
		write_silver(&c);
		INSTR_TIME_SET_CURRENT(t2);
		group_chunk(&c);
		INSTR_TIME_SET_CURRENT(t3);
		if (c.m_hour.n > 0)
			write_gold(&b, &c);
		INSTR_TIME_SET_CURRENT(t4);

		if (message_level_is_interesting(DEBUG1))
		{
			INSTR_TIME_SUBTRACT(t4, t3);
			INSTR_TIME_SUBTRACT(t3, t2);
			INSTR_TIME_SUBTRACT(t2, t1);
			INSTR_TIME_SUBTRACT(t1, t0);
			elog(DEBUG1, "tweetlake batch: %d rows, %d rejected, %d new in silver; %zu kB of memory; parse %.1f ms, silver and dead letters %.1f ms, grouping %.1f ms, gold %.1f ms",
				 c.nread, c.rejected.n, c.nnew,
				 MemoryContextMemAllocated(c.cxt, true) / 1024,
				 INSTR_TIME_GET_MILLISEC(t1), INSTR_TIME_GET_MILLISEC(t2),
				 INSTR_TIME_GET_MILLISEC(t3), INSTR_TIME_GET_MILLISEC(t4));
		}
		MemoryContextSwitchTo(batchcxt);
		for (int i = 0; i < c.nregistered; i++)
			if (SPI_unregister_relation(c.registered[i]) != SPI_OK_REL_UNREGISTER)
				elog(ERROR, "SPI_unregister_relation(%s) failed", c.registered[i]);

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
