#!/usr/bin/env bash
# bench/peers/run.sh - tweetlake side by side with what users would run instead (issue 19):
# ClickHouse (chDB, in-process) and Flink SQL drain the same pre-filled real-Kafka topic as
# the P1 drain (bench/drain.sh) into the same gold tables, then tweetlake with one consumer;
# each is timed from its start until all N messages are reflected in its results, and the
# exact answers are compared row by row with tweetlake's:
#   popular_hashtags_by_hour  per UTC hour x hashtag: tweet_count, unique_users, unique_mentions
#   tweet_volume_by_region    per UTC hour x region x language: tweet_count, unique_users
#   hourly_activity_summary   per UTC hour: total_tweets, unique_users
#
#   bash bench/peers/run.sh [N]        N tweets (default 1000000)
#   PEERS_FLINK=0 bash bench/peers/run.sh 200000    without Flink (PEERS_CLICKHOUSE=0: without ClickHouse,
#                                                    PEERS_CH_ROWS=0: ClickHouse only as the aggregates)
#
# The topic (8 partitions, N tweets of tweetlake.generate_tweets keyed by tweet_id, sent
# with kcat's idempotent producer) is filled as bench/drain.sh fills it (the same few lines).
# ClickHouse: bench/peers/clickhouse.py (its Kafka engine does not run in-process, so one
# consumer feeds it the topic's messages in blocks; it says so), run twice: keeping the raw
# and typed rows as tweetlake does (bronze and silver tables), and as the aggregates alone; chDB from
# PyPI into build/peers-venv. Flink SQL: bench/peers/flink.py, PyPI's apache-flink into
# build/peers-flink-venv and the Kafka and JDBC connectors from Maven Central into
# build/peers-flink-lib (bench/peers/flink-pom.xml); its upserts go to a database "flink"
# on tweetlake's server. A peer that cannot be installed is skipped, saying why.
# Peak RSS: the peer's process (ru_maxrss; for Flink the Python driver plus the local
# cluster's JVM) and tweetlake's consumer backend (VmHWM, which counts the shared buffers
# it touched).
#
# Prints "name value unit" lines and "peers: ..." notes; "peers: WARNING" for anything off.
# Broker: test/kafka/kafka.sh's, its own or the one in $PEERS_KAFKA_DIR (or $DRAIN_KAFKA_DIR).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
HERE=$ROOT/bench/peers
. "$ROOT/scripts/lib.sh"

N=${1:-1000000}
TOPIC=peers
PARTITIONS=8
SEED=14
STALL_S=${PEERS_STALL_S:-120}
KAFKA=$ROOT/test/kafka/kafka.sh
OUT=$ROOT/build/bench
mkdir -p "$OUT"
LOG=$OUT/peers.log
: > "$LOG"

now() { date +%s.%N; }
rate() { awk -v n="$1" -v a="$2" -v b="$3" 'BEGIN { if (b - a <= 0) print "nan"; else printf "%.0f", n / (b - a) }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b + 0 == 0) print "nan"; else printf "%.3f", a / b }'; }
say() { echo "peers: $*"; }
warn() { echo "peers: WARNING: $*"; }

W=$(pg_owned_dir tweetlake-peers)
PORT=$(free_port)
KDIR=${PEERS_KAFKA_DIR:-${DRAIN_KAFKA_DIR:-}}
own_broker=
trap bench_cleanup EXIT

. "$HERE/lib.sh"

# --- the broker and the topic (as bench/drain.sh) --------------------------------------
bench_broker
peers_topic "$TOPIC"

# --- tweetlake's server: consumers only, pointed at the topic, not started yet ---------
bench_server "$W" "$PORT" "listen_addresses = '127.0.0.1'" "track_commit_timestamp = on" "tweetlake.brokers = '$BOOT'" \
  "tweetlake.topic = '$TOPIC'" "tweetlake.generator_rate = 0" "tweetlake.consumers = 1"
sql() { bench_sql "$@"; }
sql -c "CREATE EXTENSION tweetlake"

# --- fill: bench/drain.sh's, N tweets in the current hour, key TAB message -------------
t0=$(now)
peers_tweets "$N" "$SEED" |
  kcat -P -b "$BOOT" -t "$TOPIC" -K '\t' -X enable.idempotence=true -X linger.ms=20 2>> "$LOG"
t1=$(now)
bash "$KAFKA" tool "$KDIR" org.apache.kafka.tools.GetOffsetShell --bootstrap-server "$BOOT" \
  --topic "$TOPIC" --time -1 < /dev/null 2>> "$LOG" |
  sed -n "s/^$TOPIC:\([0-9]*\):\([0-9]*\)[[:space:]]*\$/\1 \2/p" > "$W/end_offsets"
END=$(awk '{ s += $2 } END { print s + 0 }' "$W/end_offsets")
[ "$END" = "$N" ] || warn "the topic holds $END messages; $N were sent"
say "topic $TOPIC: $END messages in $PARTITIONS partitions, filled at $(rate "$N" "$t0" "$t1") msgs/s"
if [ "$END" = 0 ]; then
  warn "nothing to drain"
  exit 0
fi

# compare NAME: the peer's answers in $W/NAME/*.tsv against tweetlake's, row by row
# (sorted bytewise); sets equal=0 and warns on a difference
equal=1
compare() {
  local peer=$1 t
  for t in hashtags region hourly; do
    LC_ALL=C sort "$W/$peer/$t.tsv" > "$W/$peer/$t.sorted"
    if ! cmp -s "$W/$peer/$t.sorted" "$W/tweetlake/$t.sorted"; then
      equal=0
      warn "$peer: $t differs from tweetlake's ($(wc -l < "$W/$peer/$t.sorted") rows against $(wc -l < "$W/tweetlake/$t.sorted")); first differences:"
      { diff "$W/tweetlake/$t.sorted" "$W/$peer/$t.sorted" || true; } | head -6 | sed 's/^/peers:   /'
    fi
  done
}

# --- ClickHouse (chDB) ------------------------------------------------------------------
# Twice: as the aggregates alone (an input table of engine Null: no row kept), and keeping
# what tweetlake keeps besides gold, each message and its typed row (PEERS_CH_ROWS=1 of
# clickhouse.py: tables bronze and silver, gold fed from silver).  PEERS_CH_ROWS=0 here runs
# the first alone.
# run_clickhouse NAME ROWS: sets ch_s, ch_rss, ch_bronze and ch_silver, or leaves them empty
run_clickhouse() {
  local name=$1 rows=$2 n
  ch_s= ch_rss= ch_bronze= ch_silver=
  mkdir -p "$W/$name" "$W/chdb"
  sync
  if PEERS_CH_ROWS=$rows "$ROOT/build/peers-venv/bin/python" "$HERE/clickhouse.py" "$BOOT" "$TOPIC" "$END" \
       "$W/chdb" "$W/$name" > "$W/$name.out" 2>> "$LOG"; then
    ch_s=$(awk '$1 == "clickhouse_seconds" { print $2 }' "$W/$name.out")
    ch_rss=$(awk '$1 == "clickhouse_rss_peak_kb" { print $2 }' "$W/$name.out")
    n=$(awk '$1 == "clickhouse_messages" { print $2 }' "$W/$name.out")
    ch_bronze=$(awk '$1 == "clickhouse_bronze_rows" { print $2 }' "$W/$name.out")
    ch_silver=$(awk '$1 == "clickhouse_silver_rows" { print $2 }' "$W/$name.out")
    [ "$n" = "$END" ] || warn "ClickHouse ($name) took $n of $END messages"
    if [ "$rows" = 1 ] && { [ "$ch_bronze" != "$END" ] || [ "$ch_silver" != "$END" ]; }; then
      warn "ClickHouse ($name) keeps $ch_bronze raw and $ch_silver typed rows of $END messages"
    fi
    say "ClickHouse $(awk '$1 == "clickhouse_version" { print $2 }' "$W/$name.out") (chDB, in-process, $name): its Kafka engine does not run in-process, so one confluent-kafka consumer fed it the topic in blocks of 65536 (max_threads 1)$([ "$rows" = 1 ] && echo " as TabSeparated rows of bronze (partition, offset, raw), a materialized view parsing them into silver (ReplacingMergeTree by tweet_id) and gold fed from silver" || echo " as JSONEachRow into an input table of engine Null"); $n messages in $ch_s s"
  else
    warn "ClickHouse ($name) failed (see $LOG)"
  fi
  rm -rf "$W/chdb"
}

ch_s= ch_rss= chr_s= chr_rss=
if [ "${PEERS_CLICKHOUSE:-1}" != 1 ]; then
  say "ClickHouse skipped (PEERS_CLICKHOUSE=${PEERS_CLICKHOUSE:-})"
elif ! venv_for "$ROOT/build/peers-venv" "$HERE/requirements.txt"; then
  warn "ClickHouse skipped: could not install bench/peers/requirements.txt ($(tail -1 "$LOG"))"
else
  if [ "${PEERS_CH_ROWS:-1}" = 1 ]; then
    run_clickhouse clickhouse-rows 1
    chr_s=$ch_s chr_rss=$ch_rss
  fi
  run_clickhouse clickhouse 0
fi

# --- Flink SQL --------------------------------------------------------------------------
# its upserts go to a database of their own on tweetlake's server (idle meanwhile)
fl_s= fl_rss=
if [ "${PEERS_FLINK:-1}" = 1 ]; then
  if ! flink_install; then
    warn "Flink skipped: apache-flink or its connectors could not be installed (see $LOG)"
  else
    flink_database
    sync
    mkdir -p "$W/flink-checkpoints"
    if timeout "${PEERS_FLINK_TIMEOUT_S:-1800}" "$ROOT/build/peers-flink-venv/bin/python" "$HERE/flink.py" "$BOOT" "$TOPIC" \
         "jdbc:postgresql://127.0.0.1:$PORT/flink" "$ROOT/build/peers-flink-lib" "$W/flink-checkpoints" > "$W/flink.out" 2>> "$LOG"; then
      fl_s=$(awk '$1 == "flink_seconds" { print $2 }' "$W/flink.out")
      fl_rss=$(awk '$1 == "flink_rss_peak_kb" { print $2 }' "$W/flink.out")
      mkdir -p "$W/flink"
      # hour is a UTC timestamp without zone: its epoch is the UTC hour's
      fsql -c "COPY (SELECT extract(epoch FROM h.hour)::bigint, h.hashtag, h.tweet_count, h.unique_users,
                            coalesce(m.unique_mentions, 0)
                     FROM popular_hashtags_by_hour h LEFT JOIN popular_hashtags_mentions m USING (hour, hashtag)) TO STDOUT" > "$W/flink/hashtags.tsv"
      fsql -c "COPY (SELECT extract(epoch FROM hour)::bigint, region, language, tweet_count, unique_users
                     FROM tweet_volume_by_region) TO STDOUT" > "$W/flink/region.tsv"
      fsql -c "COPY (SELECT extract(epoch FROM hour)::bigint, total_tweets, unique_users
                     FROM hourly_activity_summary) TO STDOUT" > "$W/flink/hourly.tsv"
      fl_n=$(fsql -c "SELECT coalesce(sum(total_tweets), 0) FROM hourly_activity_summary")
      [ "$fl_n" = "$END" ] || warn "Flink's hourly summary counts $fl_n of $END messages"
      say "Flink $(awk '$1 == "flink_version" { print $2 }' "$W/flink.out") (PyFlink local cluster, parallelism 1, mini-batches of 5000 / 1 s, exactly-once checkpoints every 10 s, bounded Kafka source, JDBC upserts into PostgreSQL): $fl_n messages in $fl_s s"
    else
      warn "Flink failed or ran out of its ${PEERS_FLINK_TIMEOUT_S:-1800} s (see $LOG and pyflink's log/ in build/peers-flink-venv)"
    fi
  fi
fi

# --- tweetlake: one consumer, from tweetlake.start() to the last batch's commit ---------
sql -c "CHECKPOINT"
sync
start_and_drain "$TOPIC" "$END" "$STALL_S"
t0=$drain_t0 t1=$drain_t1 stored=$drain_stored
tl_rss=0
for pid in $(sql -c "SELECT pid FROM pg_stat_activity WHERE backend_type = 'tweetlake consumer'"); do
  kb=$(awk '/^VmHWM:/ { print $2 }' "/proc/$pid/status" 2>/dev/null || echo 0)
  [ "${kb:-0}" -gt "$tl_rss" ] && tl_rss=$kb
done
sql -c "SELECT tweetlake.stop()" >/dev/null
[ "$stored" = "$END" ] || warn "tweetlake: stored offsets cover $stored of $END messages (no batch for $STALL_S s)"
tl_s=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')
silver=$(sql -c "SELECT count(*) FROM silver.tweets")
[ "$silver" = "$END" ] || warn "tweetlake: silver holds $silver tweets, $END were sent"
dead=$(sql -c "SELECT count(*) FROM bronze.dead_letters")
[ "$dead" = 0 ] || warn "tweetlake: $dead dead letters"
bad=$(sql -c "SELECT coalesce(string_agg(gold_table, ' '), '') FROM tweetlake.verify() WHERE missing + extra + differing > 0")
[ -z "$bad" ] || warn "tweetlake: verify() found differences in $bad"
say "tweetlake $(sql -c "SELECT extversion FROM pg_extension WHERE extname = 'tweetlake'") (1 consumer): $stored messages in $tl_s s"

mkdir -p "$W/tweetlake"
sql -c "COPY (SELECT extract(epoch FROM hour)::bigint, hashtag, tweet_count, unique_users, unique_mentions
              FROM gold.popular_hashtags_by_hour) TO STDOUT" > "$W/tweetlake/hashtags.tsv"
sql -c "COPY (SELECT extract(epoch FROM hour)::bigint, region, language, tweet_count, unique_users
              FROM gold.tweet_volume_by_region) TO STDOUT" > "$W/tweetlake/region.tsv"
sql -c "COPY (SELECT extract(epoch FROM hour)::bigint, total_tweets, unique_users
              FROM gold.hourly_activity_summary) TO STDOUT" > "$W/tweetlake/hourly.tsv"
for t in hashtags region hourly; do LC_ALL=C sort "$W/tweetlake/$t.tsv" > "$W/tweetlake/$t.sorted"; done
say "compared: $(wc -l < "$W/tweetlake/hashtags.sorted") hour x hashtag, $(wc -l < "$W/tweetlake/region.sorted") hour x region x language, $(wc -l < "$W/tweetlake/hourly.sorted") hour rows"

compared=0
if [ -n "$ch_s" ]; then compare clickhouse; compared=1; fi
if [ -n "$chr_s" ]; then compare clickhouse-rows; compared=1; fi
if [ -n "$fl_s" ]; then compare flink; compared=1; fi
[ "$compared" = 1 ] || { equal=0; warn "no peer ran, nothing compared"; }

tl_rate=$(rate "$stored" 0 "$tl_s")
echo "peers_messages $END msgs"
echo "peers_tweetlake_tweets_per_s $tl_rate tweets/s"
echo "peers_tweetlake_rss_peak_kb $tl_rss kB"
if [ -n "$ch_s" ]; then
  ch_rate=$(rate "$END" 0 "$ch_s")
  echo "peers_clickhouse_tweets_per_s $ch_rate tweets/s"
  echo "peers_clickhouse_rss_peak_kb $ch_rss kB"
  echo "peers_tweetlake_vs_clickhouse $(ratio "$tl_rate" "$ch_rate") x"
fi
if [ -n "$chr_s" ]; then
  chr_rate=$(rate "$END" 0 "$chr_s")
  echo "peers_clickhouse_rows_tweets_per_s $chr_rate tweets/s"
  echo "peers_clickhouse_rows_rss_peak_kb $chr_rss kB"
  echo "peers_tweetlake_vs_clickhouse_rows $(ratio "$tl_rate" "$chr_rate") x"
fi
if [ -n "$fl_s" ]; then
  fl_rate=$(rate "$END" 0 "$fl_s")
  echo "peers_flink_tweets_per_s $fl_rate tweets/s"
  echo "peers_flink_rss_peak_kb $fl_rss kB"
  echo "peers_tweetlake_vs_flink $(ratio "$tl_rate" "$fl_rate") x"
fi
echo "peers_answers_equal $equal bool"
