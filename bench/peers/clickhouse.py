"""bench/peers/clickhouse.py - the ClickHouse peer of bench/peers/run.sh (issue 19): chDB
(ClickHouse in-process, PyPI `chdb`) keeps tweetlake's gold tables in ClickHouse's usual
shape, an input table with materialized views into AggregatingMergeTree tables with exact
distinct counts (uniqExact), and is fed a Kafka topic until it has taken N messages.

chDB has the Kafka table engine, but creating one in-process fails ("Shutdown was called":
the engine needs the server's background pools), so one consumer here (confluent-kafka,
the librdkafka ClickHouse's Kafka engine is built on) takes the messages in blocks of
kafka_max_block_size (65536, ClickHouse's default) and INSERTs each block as JSONEachRow,
committing the block's offsets once it is inserted, as the Kafka engine does.

  python clickhouse.py BROKERS TOPIC N DATA_DIR OUT_DIR
Prints "clickhouse_seconds S", "clickhouse_messages M", "clickhouse_rss_peak_kb K" and the
chDB version; writes OUT_DIR/{hashtags,region,hourly}.tsv (hour as Unix seconds).

With PEERS_CH_ROWS=1 it also keeps what tweetlake keeps besides gold: each message as it came
(a MergeTree "bronze" of Kafka partition, offset and raw text, inserted as TabSeparated) and
its typed row (a ReplacingMergeTree "silver" by tweet_id with silver.tweets' columns, filled by
a materialized view that parses the raw text with one JSONExtract), and the gold views read
silver instead of the JSON input.  Without it, ClickHouse parses only the fields the three gold
tables need and stores no row (an input table of engine Null).

With PEERS_CH_LIVE=FILE (bench/peers/freshness.sh) it takes what comes, N ignored, in blocks
of at most BLOCK messages or what PEERS_CH_FLUSH_MS (1000) brought, and stops once FILE
exists and nothing more comes; OUT_DIR/visible.txt gets "seconds messages" after each block's
INSERT returned (its rows can be read from then on), and "clickhouse_ready" is printed once
the consumer has its partitions.
"""
import os
import resource
import sys
import time

import chdb
from chdb import session
from confluent_kafka import Consumer, KafkaError

BLOCK = int(os.environ.get("PEERS_CH_BLOCK", "65536"))
THREADS = int(os.environ.get("PEERS_CH_THREADS", "1"))
STALL_S = float(os.environ.get("PEERS_STALL_S", "120"))
LIVE = os.environ.get("PEERS_CH_LIVE")
FLUSH_S = int(os.environ.get("PEERS_CH_FLUSH_MS", "1000")) / 1000.0
ROWS = os.environ.get("PEERS_CH_ROWS", "0") == "1"

# A tag as src/parse.c's normalise_tag stores it: surrounding blanks and the leading
# markers gone, lower case, nothing left means no tag; duplicates within a tweet removed.
def tags(col, marker):
    return (f"arrayDistinct(arrayFilter(x -> x != '', arrayMap(x -> lowerUTF8("
            f"replaceRegexpOne(replaceRegexpOne(x, '^[ \\t\\n\\r]*{marker}*', ''), '[ \\t\\n\\r]*$', '')), {col})))")

DDL = [
    # what arrives: the fields the three gold tables read, the rest of a tweet skipped
    """CREATE TABLE tweets_in (
         tweet_id String, created_at String,
         region Nullable(String), language Nullable(String),
         hashtags Array(String), mentions Array(String),
         user Tuple(user_id Nullable(String))
       ) ENGINE = Null""",
    # silver's facts: UTC hour, 'unknown' for a missing region or language, tags normalised
    """CREATE TABLE facts (
         hour DateTime('UTC'), region String, language String, user_id Nullable(String),
         hashtags Array(String), mentions Array(String)
       ) ENGINE = Null""",
    f"""CREATE MATERIALIZED VIEW facts_mv TO facts AS
        SELECT toStartOfHour(parseDateTime64BestEffort(created_at, 6, 'UTC')) AS hour,
               coalesce(region, 'unknown') AS region, coalesce(language, 'unknown') AS language,
               user.user_id AS user_id,
               {tags('hashtags', '#')} AS hashtags, {tags('mentions', '@')} AS mentions
        FROM tweets_in""",
    """CREATE TABLE popular_hashtags_by_hour (
         hour DateTime('UTC'), hashtag String,
         tweet_count SimpleAggregateFunction(sum, UInt64),
         unique_users AggregateFunction(uniqExact, Nullable(String)),
         unique_mentions AggregateFunction(uniqExactArray, Array(String))
       ) ENGINE = AggregatingMergeTree ORDER BY (hour, hashtag)""",
    """CREATE MATERIALIZED VIEW popular_hashtags_mv TO popular_hashtags_by_hour AS
        SELECT hour, hashtag, count() AS tweet_count, uniqExactState(user_id) AS unique_users,
               uniqExactArrayState(mentions) AS unique_mentions
        FROM facts ARRAY JOIN hashtags AS hashtag
        GROUP BY hour, hashtag""",
    """CREATE TABLE tweet_volume_by_region (
         hour DateTime('UTC'), region String, language String,
         tweet_count SimpleAggregateFunction(sum, UInt64),
         unique_users AggregateFunction(uniqExact, Nullable(String))
       ) ENGINE = AggregatingMergeTree ORDER BY (hour, region, language)""",
    """CREATE MATERIALIZED VIEW tweet_volume_by_region_mv TO tweet_volume_by_region AS
        SELECT hour, region, language, count() AS tweet_count, uniqExactState(user_id) AS unique_users
        FROM facts GROUP BY hour, region, language""",
    """CREATE TABLE hourly_activity_summary (
         hour DateTime('UTC'),
         total_tweets SimpleAggregateFunction(sum, UInt64),
         unique_users AggregateFunction(uniqExact, Nullable(String))
       ) ENGINE = AggregatingMergeTree ORDER BY hour""",
    """CREATE MATERIALIZED VIEW hourly_activity_summary_mv TO hourly_activity_summary AS
        SELECT hour, count() AS total_tweets, uniqExactState(user_id) AS unique_users
        FROM facts GROUP BY hour""",
]

# PEERS_CH_ROWS=1: bronze and silver kept as tables, gold fed from silver.  silver's columns
# are silver.tweets' (schema/sources/30_silver.sql) with its derived ones computed alike
# (src/parse.c derive()); a tweet's newest version wins at merge time, as ClickHouse users
# keep an upserted table.
TWEET = ("Tuple(tweet_id String, text String, created_at String, updated_at Nullable(String), "
         "tweet_type Nullable(String), language Nullable(String), region Nullable(String), "
         "hashtags Array(String), mentions Array(String), retweet_count Nullable(Int32), "
         "like_count Nullable(Int32), reply_count Nullable(Int32), quote_count Nullable(Int32), "
         "is_retweet Nullable(Bool), is_reply Nullable(Bool), is_quote Nullable(Bool), "
         "has_media Nullable(Bool), has_url Nullable(Bool), sentiment_score Nullable(Float64), "
         "engagement_score Nullable(Float64), reach_estimate Nullable(Int64), "
         "user Tuple(user_id Nullable(String), username Nullable(String), display_name Nullable(String), "
         "followers_count Nullable(Int32), following_count Nullable(Int32), verified Nullable(Bool), "
         "created_at Nullable(String), location Nullable(String), description Nullable(String)), "
         "original_tweet_id Nullable(String), original_user Tuple(user_id Nullable(String)), "
         "reply_to_tweet_id Nullable(String), reply_to_user Tuple(user_id Nullable(String)), "
         "quoted_tweet_id Nullable(String), quoted_user Tuple(user_id Nullable(String)), "
         "quoted_text Nullable(String))")

DDL_ROWS = [
    """CREATE TABLE bronze (
         kafka_partition Int32, kafka_offset Int64, raw String,
         ingested_at DateTime64(6, 'UTC') DEFAULT now64(6)
       ) ENGINE = MergeTree ORDER BY tuple()""",
    """CREATE TABLE silver (
         tweet_id String, text String, created_at DateTime64(6, 'UTC'),
         tweet_type Nullable(String), language Nullable(String), region Nullable(String),
         hashtags Array(String), mentions Array(String),
         retweet_count Nullable(Int32), like_count Nullable(Int32), reply_count Nullable(Int32),
         quote_count Nullable(Int32), is_retweet Nullable(Bool), is_reply Nullable(Bool),
         is_quote Nullable(Bool), has_media Nullable(Bool), has_url Nullable(Bool),
         sentiment_score Nullable(Float64), engagement_score Nullable(Float64),
         reach_estimate Nullable(Int64), user_id Nullable(String), username Nullable(String),
         display_name Nullable(String), followers_count Nullable(Int32),
         following_count Nullable(Int32), verified Nullable(Bool),
         user_created_at Nullable(DateTime64(6, 'UTC')), user_location Nullable(String),
         user_description Nullable(String), original_tweet_id Nullable(String),
         original_user_id Nullable(String), reply_to_tweet_id Nullable(String),
         reply_to_user_id Nullable(String), quoted_tweet_id Nullable(String),
         quoted_user_id Nullable(String), quoted_text Nullable(String),
         text_length UInt32, sentiment_category Nullable(String), total_engagement Int64,
         processed_at DateTime64(6, 'UTC') DEFAULT now64(6),
         updated_at Nullable(DateTime64(6, 'UTC'))
       ) ENGINE = ReplacingMergeTree(processed_at) ORDER BY tweet_id""",
    f"""CREATE MATERIALIZED VIEW silver_mv TO silver AS
        WITH JSONExtract(raw, '{TWEET}') AS t
        SELECT t.tweet_id AS tweet_id, t.text AS text,
               parseDateTime64BestEffort(t.created_at, 6, 'UTC') AS created_at,
               t.tweet_type AS tweet_type, t.language AS language, t.region AS region,
               {tags('t.hashtags', '#')} AS hashtags, {tags('t.mentions', '@')} AS mentions,
               t.retweet_count AS retweet_count, t.like_count AS like_count,
               t.reply_count AS reply_count, t.quote_count AS quote_count,
               t.is_retweet AS is_retweet, t.is_reply AS is_reply, t.is_quote AS is_quote,
               t.has_media AS has_media, t.has_url AS has_url,
               t.sentiment_score AS sentiment_score, t.engagement_score AS engagement_score,
               t.reach_estimate AS reach_estimate,
               t.user.user_id AS user_id, t.user.username AS username,
               t.user.display_name AS display_name, t.user.followers_count AS followers_count,
               t.user.following_count AS following_count, t.user.verified AS verified,
               parseDateTime64BestEffortOrNull(t.user.created_at, 6, 'UTC') AS user_created_at,
               t.user.location AS user_location, t.user.description AS user_description,
               t.original_tweet_id AS original_tweet_id, t.original_user.user_id AS original_user_id,
               t.reply_to_tweet_id AS reply_to_tweet_id, t.reply_to_user.user_id AS reply_to_user_id,
               t.quoted_tweet_id AS quoted_tweet_id, t.quoted_user.user_id AS quoted_user_id,
               t.quoted_text AS quoted_text,
               lengthUTF8(t.text) AS text_length,
               if(t.sentiment_score IS NULL, NULL,
                  multiIf(t.sentiment_score > 0.1, 'positive', t.sentiment_score < -0.1, 'negative', 'neutral'))
                 AS sentiment_category,
               toInt64(coalesce(t.retweet_count, 0)) + coalesce(t.like_count, 0)
                 + coalesce(t.reply_count, 0) + coalesce(t.quote_count, 0) AS total_engagement,
               parseDateTime64BestEffortOrNull(t.updated_at, 6, 'UTC') AS updated_at
        FROM bronze""",
    """CREATE TABLE facts (
         hour DateTime('UTC'), region String, language String, user_id Nullable(String),
         hashtags Array(String), mentions Array(String)
       ) ENGINE = Null""",
    """CREATE MATERIALIZED VIEW facts_mv TO facts AS
        SELECT toStartOfHour(created_at) AS hour,
               coalesce(region, 'unknown') AS region, coalesce(language, 'unknown') AS language,
               user_id, hashtags, mentions
        FROM silver""",
] + DDL[3:]

DUMPS = {
    "hashtags": """SELECT toUnixTimestamp(hour), hashtag, sum(tweet_count), uniqExactMerge(unique_users),
                          uniqExactArrayMerge(unique_mentions)
                   FROM popular_hashtags_by_hour GROUP BY hour, hashtag""",
    "region": """SELECT toUnixTimestamp(hour), region, language, sum(tweet_count), uniqExactMerge(unique_users)
                 FROM tweet_volume_by_region GROUP BY hour, region, language""",
    "hourly": """SELECT toUnixTimestamp(hour), sum(total_tweets), uniqExactMerge(unique_users)
                 FROM hourly_activity_summary GROUP BY hour""",
}


def main():
    brokers, topic, n, data_dir, out_dir = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5]
    s = session.Session(data_dir)
    settings = f" SETTINGS max_threads = {THREADS}, max_insert_threads = {THREADS}, input_format_skip_unknown_fields = 1"
    for stmt in DDL_ROWS if ROWS else DDL:
        s.query(stmt)
    if ROWS:
        into = "INSERT INTO bronze (kafka_partition, kafka_offset, raw)" + settings + " FORMAT TabSeparated\n"
    else:
        into = "INSERT INTO tweets_in" + settings + " FORMAT JSONEachRow\n"

    t0 = time.time()
    c = Consumer({
        "bootstrap.servers": brokers,
        "group.id": "peers-clickhouse-rows" if ROWS else "peers-clickhouse",
        "auto.offset.reset": "earliest",
        "enable.auto.commit": False,
    })
    ready = []
    c.subscribe([topic], on_assign=lambda consumer, parts: ready.append(len(parts)))
    visible = open(os.path.join(out_dir, "visible.txt"), "w") if LIVE else None
    if LIVE:
        n = float("inf")
        while not ready:
            c.poll(0.1)
        print("clickhouse_ready", flush=True)
    taken = 0
    since = time.time()
    while taken < n:
        msgs = c.consume(num_messages=int(min(BLOCK, n - taken)), timeout=FLUSH_S if LIVE else 1.0)
        good = []
        for m in msgs:
            if m.error():
                if m.error().code() != KafkaError._PARTITION_EOF:
                    print(f"clickhouse: consumer error {m.error()}", file=sys.stderr)
                continue
            if ROWS:
                # TabSeparated: the raw text with its backslashes, tabs and newlines escaped
                v = m.value().replace(b"\\", b"\\\\").replace(b"\t", b"\\t").replace(b"\n", b"\\n")
                good.append(b"%d\t%d\t%s" % (m.partition(), m.offset(), v))
            else:
                good.append(m.value())
        if not good:
            if LIVE and os.path.exists(LIVE):
                break
            if time.time() - since > STALL_S:
                print(f"clickhouse: no message for {STALL_S:.0f} s at {taken} of {n}", file=sys.stderr)
                break
            continue
        s.query(into + b"\n".join(good).decode())
        if visible:
            visible.write(f"{time.time():.6f} {len(good)}\n")
        c.commit(asynchronous=False)
        taken += len(good)
        since = time.time()
    t1 = time.time()
    c.close()
    if visible:
        visible.close()

    for name, q in DUMPS.items():
        res = s.query(q + " FORMAT TSV")
        with open(os.path.join(out_dir, name + ".tsv"), "wb") as f:
            f.write(res.bytes())
    print(f"clickhouse_version {chdb.__version__}/{str(s.query('SELECT version()')).strip().strip(chr(34))}")
    print(f"clickhouse_messages {taken}")
    if ROWS:
        for t in ("bronze", "silver"):
            print(f"clickhouse_{t}_rows {str(s.query(f'SELECT count() FROM {t} FINAL' if t == 'silver' else f'SELECT count() FROM {t}')).strip()}")
    print(f"clickhouse_seconds {t1 - t0:.3f}")
    print(f"clickhouse_rss_peak_kb {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}")
    s.close()


if __name__ == "__main__":
    main()
