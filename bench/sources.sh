#!/usr/bin/env bash
# bench/sources.sh - what a second source costs (issue 18, "Cost"): the P1 drain of N tweets
# on a real Apache Kafka broker by one source with two consumers, against the same N tweets
# in two sources of half each (two topics), one consumer each: as many consumers, the same
# work, in one server.  Goal: two sources at most 10 % slower (sources_two_vs_one >= 0.9).
#
#   bash bench/sources.sh [N] [ROUNDS]     N tweets (default 400000), ROUNDS rounds (default 3)
#
# The topics (8 partitions each) are filled once while no consumer runs: src_one with the N
# tweets of tweetlake.generate_tweets, src_a with the first half of them and src_b with the
# second (kcat, keyed by tweet_id).  Each drain starts from a fresh extension (DROP/CREATE:
# the offsets start over) and is timed from tweetlake.start() to the commit of the batch that
# stored the last offset of every source (track_commit_timestamp).  The rounds alternate the
# order (one, two; two, one; ...) so that drift on a shared machine falls on both sides; the
# ratio printed is the median of the rounds' ratios.  After each drain bronze must hold each
# message once, silver every tweet, and verify() must be zero; "sources: WARNING" says what is
# off.  Prints "name value unit" lines.  Broker: test/kafka/kafka.sh's, its own or the one in
# $DRAIN_KAFKA_DIR.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
. "$ROOT/scripts/lib.sh"

N=${1:-400000}
ROUNDS=${2:-3}
HALF=$((N / 2))
PARTITIONS=8
SEED=18
STALL_S=120
KAFKA=$ROOT/test/kafka/kafka.sh
OUT=$ROOT/build/bench
mkdir -p "$OUT"
LOG=$OUT/sources.log
: > "$LOG"

now() { date +%s.%N; }
say() { echo "sources: $*"; }
warn() { echo "sources: WARNING: $*"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b + 0 == 0) print "nan"; else printf "%.3f", a / b }'; }
median3() { sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) print "nan"; else if (NR % 2) printf "%.3f\n", v[(NR + 1) / 2]; else printf "%.3f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

W=$(pg_owned_dir tweetlake-sources)
PORT=$(free_port)
KDIR=${DRAIN_KAFKA_DIR:-}
own_broker=
trap bench_cleanup EXIT
bench_broker

bench_server "$W" "$PORT" "track_commit_timestamp = on" "tweetlake.brokers = '$BOOT'" \
  "tweetlake.topic = 'src_one'" "tweetlake.generator_rate = 0" "tweetlake.consumers = 2"
sql() { bench_sql "$@"; }
sql -c "CREATE EXTENSION tweetlake"
START=$(sql -c "SELECT date_trunc('hour', now())")

# fill TOPIC FROM COUNT: tweets FROM+1 .. FROM+COUNT of the N generated ones
fill() {
  local topic=$1 from=$2 count=$3
  bash "$KAFKA" topic "$KDIR" "$topic" "$PARTITIONS" >> "$LOG" 2>&1 || { say "skipped: no topic $topic (see $LOG)"; exit 0; }
  sql -c "COPY (SELECT tweetlake.tweet_id_of(t) || E'\t' || t
                FROM tweetlake.generate_tweets($N, $SEED, timestamptz '$START', '1 minute') WITH ORDINALITY g(t, i)
                WHERE i > $from AND i <= $from + $count)
          TO STDOUT WITH (FORMAT csv, DELIMITER E'\x1f', QUOTE E'\x1e')" |
    kcat -P -b "$BOOT" -t "$topic" -K '\t' -X enable.idempotence=true -X linger.ms=20 2>> "$LOG"
}
fill src_one 0 "$N"
fill src_a 0 "$HALF"
fill src_b "$HALF" "$((N - HALF))"
say "topics filled: src_one $N, src_a $HALF, src_b $((N - HALF)) messages, $PARTITIONS partitions each"

# drain MODE: sets rate (tweets/s); MODE one = the default source on src_one with two
# consumers, two = the default source on src_a and source b on src_b, one consumer each
drain() {
  local mode=$1 t0 t1 done_n rows distinct silver bad
  sql -c "SELECT tweetlake.stop()" >/dev/null
  sql -c "SET client_min_messages = warning" -c "DROP EXTENSION tweetlake CASCADE" -c "CREATE EXTENSION tweetlake"
  if [ "$mode" = one ]; then
    sql -c "ALTER SYSTEM SET tweetlake.topic = 'src_one'" -c "ALTER SYSTEM SET tweetlake.consumers = 2" \
        -c "SELECT pg_reload_conf()" >/dev/null
  else
    sql -c "ALTER SYSTEM SET tweetlake.topic = 'src_a'" -c "ALTER SYSTEM SET tweetlake.consumers = 1" \
        -c "SELECT pg_reload_conf()" >/dev/null
    sql -c "SELECT tweetlake.create_source('b', '$BOOT', 'src_b', consumers => 1)" >/dev/null
  fi
  sql -c "CHECKPOINT"
  sync
  sleep 2  # the launcher has read the settings and the sources before start() wakes it
  start_and_drain "" "$N" "$STALL_S"
  t0=$drain_t0 t1=$drain_t1 done_n=$drain_stored
  stop_consumers
  [ "$done_n" = "$N" ] || warn "$mode: the offsets cover $done_n of $N messages"
  read -r rows distinct <<< "$(sql -F ' ' -c "SELECT count(*), count(DISTINCT (kafka_topic, kafka_partition, kafka_offset)) FROM bronze.tweets")"
  [ "$rows" = "$N" ] && [ "$distinct" = "$N" ] || warn "$mode: bronze holds $rows rows, $distinct distinct messages, of $N"
  silver=$(sql -c "SELECT count(*) FROM silver.tweets")
  [ "$silver" = "$N" ] || warn "$mode: silver holds $silver of $N tweets"
  bad=$(sql -c "SELECT coalesce(string_agg(gold_table, ' '), '') FROM tweetlake.verify() WHERE missing + extra + differing > 0")
  [ -z "$bad" ] || warn "$mode: verify() found differences in $bad"
  rate=$(awk -v n="$done_n" -v a="$t0" -v b="$t1" 'BEGIN { if (b - a <= 0) print "nan"; else printf "%.0f", n / (b - a) }')
  say "$mode source(s): $done_n messages at $rate tweets/s"
}

ones= twos= ratios=
for r in $(seq "$ROUNDS"); do
  if [ $((r % 2)) = 1 ]; then drain one; one=$rate; drain two; two=$rate
  else drain two; two=$rate; drain one; one=$rate; fi
  ones="$ones $one" twos="$twos $two"
  ratios="$ratios $(ratio "$two" "$one")"
  say "round $r: two / one = $(ratio "$two" "$one")"
done
echo "sources_messages $N msgs"
echo "sources_one_tweets_per_s $(printf '%s\n' $ones | median3 | awk '{ printf "%.0f", $1 }') tweets/s"
echo "sources_two_tweets_per_s $(printf '%s\n' $twos | median3 | awk '{ printf "%.0f", $1 }') tweets/s"
echo "sources_two_vs_one $(printf '%s\n' $ratios | median3) x"
