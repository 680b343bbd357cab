#!/usr/bin/env bash
# bench/peers/freshness.sh - freshness at a steady rate (issue 19), tweetlake against the
# peers of bench/peers/run.sh, measured the same way for the three: one producer
# (bench/peers/producer.py) sends the same pre-generated tweets at RATE a second to a topic of
# 8 partitions on a real broker, one topic per engine, while the engine takes them live:
#   ClickHouse  bench/peers/clickhouse.py with PEERS_CH_LIVE: blocks of what 1 s brought
#               (PEERS_CH_FLUSH_MS; ClickHouse's Kafka engine flushes every 7.5 s by default)
#   Flink SQL   bench/peers/flink.py with PEERS_FLINK_LIVE: the same job, its source not bounded
#   tweetlake   one consumer, its default settings
# A message's freshness is from its produce time (Kafka's CreateTime, read back with kcat) to
# the moment the engine's results count it: for ClickHouse when the INSERT of its block
# returned; for Flink when its upsert of the hourly summary reached PostgreSQL (a trigger on
# the sink table logs each change of total_tweets); for tweetlake the commit of the batch that
# stored it.  Ranks are paired (bench/peers/freshness_of.py), and only what was produced after
# WARM seconds counts (the engines start, Flink's job takes seconds to run); tweetlake's exact
# per-message figure (bench/run.sh's P3) is printed beside it.
#
#   bash bench/peers/freshness.sh [RATE [SECONDS]]     default 10000 a second for 60 s (+ WARM 30 s)
#   PEERS_FLINK=0 / PEERS_CLICKHOUSE=0                 without that peer
#
# Prints "name value unit" lines and "peers: ..." notes; "peers: WARNING" for anything off.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
HERE=$ROOT/bench/peers
. "$ROOT/scripts/lib.sh"

RATE=${1:-10000}
DURATION=${2:-60}
WARM=${PEERS_WARM_S:-30}
N=$((RATE * (WARM + DURATION)))
PARTITIONS=8
SEED=19
KAFKA=$ROOT/test/kafka/kafka.sh
OUT=$ROOT/build/bench
mkdir -p "$OUT"
LOG=$OUT/peers-freshness.log
: > "$LOG"

say() { echo "peers: $*"; }
warn() { echo "peers: WARNING: $*"; }

W=$(pg_owned_dir tweetlake-fresh)
PORT=$(free_port)
KDIR=${PEERS_KAFKA_DIR:-}
own_broker=
pids=
cleanup() {
  for p in $pids; do kill "$p" 2>/dev/null || true; done
  bench_cleanup
}
trap cleanup EXIT
. "$HERE/lib.sh"

bench_broker
if ! venv_for "$ROOT/build/peers-venv" "$HERE/requirements.txt"; then
  say "skipped: could not install bench/peers/requirements.txt (the producer needs confluent-kafka)"
  exit 0
fi
PY=$ROOT/build/peers-venv/bin/python

bench_server "$W" "$PORT" "listen_addresses = '127.0.0.1'" "track_commit_timestamp = on" "tweetlake.brokers = '$BOOT'" \
  "tweetlake.topic = 'fresh-tweetlake'" "tweetlake.generator_rate = 0" "tweetlake.consumers = 1"
sql() { bench_sql "$@"; }
sql -c "CREATE EXTENSION tweetlake"

# the tweets, generated once: key TAB message (as bench/peers/run.sh fills its topic)
peers_tweets "$N" "$SEED" > "$W/tweets.tsv"
say "$N tweets at $RATE/s: $WARM s to warm up, then $DURATION s measured; one topic of $PARTITIONS partitions an engine"

# produce ENGINE: the tweets to fresh-ENGINE at RATE; sets p_start (Unix seconds of the first send)
produce() {
  "$PY" "$HERE/producer.py" "$BOOT" "fresh-$1" "$RATE" "$W/tweets.tsv" > "$W/$1.producer" 2>> "$LOG"
  p_start=$(awk '$1 == "producer_start" { print $2 }' "$W/$1.producer")
  local sent secs
  sent=$(awk '$1 == "producer_messages" { print $2 }' "$W/$1.producer")
  secs=$(awk '$1 == "producer_seconds" { print $2 }' "$W/$1.producer")
  [ "$sent" = "$N" ] || warn "$1: the producer sent $sent of $N"
  say "$1: produced $sent in $secs s"
}

# wait_for_count ENGINE COMMAND: until COMMAND prints N (at most 300 s)
wait_for_count() {
  local engine=$1 got=
  shift
  for _ in $(seq 1500); do
    got=$("$@" 2>/dev/null || true)
    [ "$got" = "$N" ] && return 0
    sleep 0.2
  done
  warn "$engine: its results count ${got:-nothing} of $N messages 300 s after the last was sent"
}

# report ENGINE VISIBLE_FILE: the produce times read back, then the percentiles
report() {
  local engine=$1 p50 p99 n produced visible
  kcat -C -b "$BOOT" -t "fresh-$engine" -e -q -f '%T\n' > "$W/$engine.produced" 2>> "$LOG"
  read -r p50 p99 n produced visible <<< "$("$PY" "$HERE/freshness_of.py" "$W/$engine.produced" "$2" \
    "$(awk -v s="$p_start" -v w="$WARM" 'BEGIN { printf "%.3f", s + w }')" \
    "$(awk -v s="$p_start" -v w="$WARM" -v d="$DURATION" 'BEGIN { printf "%.3f", s + w + d }')")"
  [ "$produced" = "$N" ] || warn "$engine: the topic holds $produced messages, $N were sent"
  [ "$visible" = "$N" ] || warn "$engine: its results counted $visible messages, $N were sent"
  say "$engine: $n messages produced in the measured $DURATION s"
  echo "fresh_${engine}_p50_ms $p50 ms"
  echo "fresh_${engine}_p99_ms $p99 ms"
}

# --- ClickHouse -------------------------------------------------------------------------
if [ "${PEERS_CLICKHOUSE:-1}" = 1 ]; then
  peers_topic fresh-clickhouse
  mkdir -p "$W/clickhouse" "$W/chdb"
  PEERS_CH_LIVE=$W/clickhouse.stop "$PY" "$HERE/clickhouse.py" "$BOOT" fresh-clickhouse 0 "$W/chdb" "$W/clickhouse" \
    > "$W/clickhouse.out" 2>> "$LOG" &
  ch=$!; pids="$pids $ch"
  for _ in $(seq 600); do grep -q '^clickhouse_ready' "$W/clickhouse.out" && break; sleep 0.1; done
  produce clickhouse
  wait_for_count clickhouse awk '{ s += $2 } END { print s + 0 }' "$W/clickhouse/visible.txt"
  touch "$W/clickhouse.stop"
  wait "$ch" || warn "ClickHouse failed (see $LOG)"
  report clickhouse "$W/clickhouse/visible.txt"
  echo "fresh_clickhouse_rss_peak_kb $(awk '$1 == "clickhouse_rss_peak_kb" { print $2 }' "$W/clickhouse.out") kB"
  rm -rf "$W/chdb"
fi

# --- Flink SQL --------------------------------------------------------------------------
if [ "${PEERS_FLINK:-1}" = 1 ]; then
  if ! flink_install; then
    warn "Flink skipped: apache-flink or its connectors could not be installed (see $LOG)"
  else
    peers_topic fresh-flink
    flink_database
    # each change of an hour's total_tweets, with when it reached the sink table
    fsql -c "CREATE TABLE seen (at timestamptz, added bigint)" \
         -c "CREATE FUNCTION log_seen() RETURNS trigger LANGUAGE plpgsql AS \$\$
             BEGIN
               INSERT INTO seen VALUES (clock_timestamp(),
                 NEW.total_tweets - CASE WHEN TG_OP = 'UPDATE' THEN OLD.total_tweets ELSE 0 END);
               RETURN NULL;
             END \$\$" \
         -c "CREATE TRIGGER seen AFTER INSERT OR UPDATE ON hourly_activity_summary FOR EACH ROW EXECUTE FUNCTION log_seen()"
    mkdir -p "$W/flink-checkpoints"
    PEERS_FLINK_LIVE=$W/flink.stop "$ROOT/build/peers-flink-venv/bin/python" "$HERE/flink.py" "$BOOT" fresh-flink \
      "jdbc:postgresql://127.0.0.1:$PORT/flink" "$ROOT/build/peers-flink-lib" "$W/flink-checkpoints" > "$W/flink.out" 2>> "$LOG" &
    fl=$!; pids="$pids $fl"
    for _ in $(seq 1200); do grep -q '^flink_started' "$W/flink.out" && break; sleep 0.1; done
    produce flink
    wait_for_count flink fsql -c "SELECT coalesce(sum(total_tweets), 0) FROM hourly_activity_summary"
    touch "$W/flink.stop"
    wait "$fl" || warn "Flink failed (see $LOG)"
    fsql -c "COPY (SELECT extract(epoch FROM at), added FROM seen WHERE added <> 0) TO STDOUT" > "$W/flink.visible"
    report flink "$W/flink.visible"
    echo "fresh_flink_rss_peak_kb $(awk '$1 == "flink_rss_peak_kb" { print $2 }' "$W/flink.out") kB"
  fi
fi

# --- tweetlake: one consumer ------------------------------------------------------------
peers_topic fresh-tweetlake
sql -c "SELECT tweetlake.start()" >/dev/null
for _ in $(seq 600); do
  [ "$(sql -c "SELECT count(*) FROM tweetlake.status WHERE role = 'consumer' AND state LIKE 'consuming%'")" = 1 ] && break
  sleep 0.1
done
produce tweetlake
wait_for_count tweetlake sql -c "SELECT count(*) FROM bronze.tweets"
tl_rss=$(awk '/^VmHWM:/ { print $2 }' "/proc/$(sql -c "SELECT pid FROM tweetlake.status WHERE role = 'consumer'")/status")
sql -c "SELECT tweetlake.stop()" >/dev/null
sql -c "COPY (SELECT extract(epoch FROM pg_xact_commit_timestamp(xmin)), count(*) FROM bronze.tweets GROUP BY 1) TO STDOUT" > "$W/tweetlake.visible"
report tweetlake "$W/tweetlake.visible"
echo "fresh_tweetlake_rss_peak_kb $tl_rss kB"
# bench/run.sh's P3: each message's own produce time to its batch's commit
read -r p50 p99 <<< "$(sql -c "SELECT round((percentile_cont(0.5) WITHIN GROUP (ORDER BY d))::numeric, 1) || ' ' ||
                                      round((percentile_cont(0.99) WITHIN GROUP (ORDER BY d))::numeric, 1)
  FROM (SELECT extract(epoch FROM pg_xact_commit_timestamp(xmin) - kafka_timestamp) * 1000 AS d FROM bronze.tweets
        WHERE kafka_timestamp BETWEEN to_timestamp($p_start + $WARM) AND to_timestamp($p_start + $WARM + $DURATION)) f")"
echo "fresh_tweetlake_exact_p50_ms $p50 ms"
echo "fresh_tweetlake_exact_p99_ms $p99 ms"
bad=$(sql -c "SELECT coalesce(string_agg(gold_table, ' '), '') FROM tweetlake.verify() WHERE missing + extra + differing > 0")
[ -z "$bad" ] || warn "tweetlake: verify() found differences in $bad"
