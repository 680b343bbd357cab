#!/usr/bin/env bash
# bench/drain.sh - P1 drain (issue 14, goal 1): how fast the consumers turn a backlog on a
# real Apache Kafka broker into gold, against a one-session COPY of the same typed rows.
#
#   bash bench/drain.sh [N]      N tweets (default 1000000); `make bench` runs it as a phase
#   DRAIN_EXT_VERSION=0.2.0 bash bench/drain.sh 200000    the same against an older schema
#                                (an installed tweetlake--V.sql), for a before/after on one day
#
# A topic of 8 partitions is filled with N generated tweets while no consumer runs: the
# tweets of tweetlake.generate_tweets, keyed by tweet_id as the generator worker keys them,
# sent with kcat (idempotent producer). Then the consumers are started and timed from
# tweetlake.start() until every partition's stored offset has reached the topic's end
# offset: the commit time of the last batch (track_commit_timestamp), so lag 0 and the
# last batch committed. Once with one consumer, then from a fresh extension (DROP/CREATE,
# so the offsets start over) with two, on the same messages. After the first drain, silver
# is copied out and COPYed in one session into an unindexed table: the baseline of the
# same typed rows, in the same server. After each drain bronze must hold every message
# exactly once (by Kafka coordinates, no gap, against the broker's own end offsets), silver
# every tweet, no dead letters, and verify() must be all zero; a "drain: WARNING" line
# says what is off.
#
# Prints "name value unit" lines (bench/run.sh gives them their goals) and "drain: ..."
# notes. It runs a server of its own with bench/run.sh's settings and test/kafka/kafka.sh's
# broker: its own, or the one already running in $DRAIN_KAFKA_DIR (bench/run.sh passes
# its broker). Where Kafka cannot be installed it says so and exits 0.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
. "$ROOT/scripts/lib.sh"

N=${1:-1000000}
TOPIC=drain
PARTITIONS=8
SEED=14
STALL_S=${DRAIN_STALL_S:-120}   # give up when no batch is stored for this long
KAFKA=$ROOT/test/kafka/kafka.sh
OUT=$ROOT/build/bench
mkdir -p "$OUT"
LOG=$OUT/drain.log
: > "$LOG"

now() { date +%s.%N; }
rate() { awk -v n="$1" -v a="$2" -v b="$3" 'BEGIN { if (b - a <= 0) print "nan"; else printf "%.0f", n / (b - a) }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b + 0 == 0) print "nan"; else printf "%.3f", a / b }'; }
say() { echo "drain: $*"; }
warn() { echo "drain: WARNING: $*"; }

W=$(pg_owned_dir tweetlake-drain)
PORT=$(free_port)
KDIR=${DRAIN_KAFKA_DIR:-}
own_broker=
cleanup() {
  as_pg pg_ctl -D "$W/data" -m immediate stop >/dev/null 2>&1 || true
  if [ -n "$own_broker" ]; then bash "$KAFKA" stop "$KDIR" >/dev/null 2>&1 || true; fi
  [ "${KEEP_BENCH_DIR:-}" = 1 ] || rm -rf "$W"
}
trap cleanup EXIT

# --- the broker and the topic ---------------------------------------------------------
if [ -z "$KDIR" ]; then
  if ! bash "$KAFKA" install >> "$LOG" 2>&1; then
    say "skipped: Kafka could not be installed ($(tail -1 "$LOG"))"
    exit 0
  fi
  KDIR=$W/kafka
  own_broker=1
  if ! bash "$KAFKA" start "$KDIR" >> "$LOG" 2>&1; then
    say "skipped: the broker did not start (see $LOG)"
    exit 0
  fi
fi
BOOT=$(sed -n 's/^BOOTSTRAP=//p' "$KDIR/ports")
if ! bash "$KAFKA" topic "$KDIR" "$TOPIC" "$PARTITIONS" >> "$LOG" 2>&1; then
  say "skipped: could not create the topic $TOPIC (see $LOG)"
  exit 0
fi

# --- a server of our own: consumers only (no generator), pointed at the topic ----------
bench_server "$W" "$PORT" "track_commit_timestamp = on" "tweetlake.brokers = '$BOOT'" \
  "tweetlake.topic = '$TOPIC'" "tweetlake.generator_rate = 0" "tweetlake.consumers = 1"
sql() { as_pg psql -X -q -v ON_ERROR_STOP=1 -h "$W" -p "$PORT" -U postgres -d postgres -tA "$@"; }
EXT_VERSION=${DRAIN_EXT_VERSION:+ VERSION '$DRAIN_EXT_VERSION'}
sql -c "CREATE EXTENSION tweetlake$EXT_VERSION"

# --- fill: N tweets created in the current hour (the generator worker stamps each tweet
# with the time it produces it, so a backlog is recent), key TAB message, one per line ---
t0=$(now)
sql -c "COPY (SELECT tweetlake.tweet_id_of(t) || E'\t' || t
              FROM tweetlake.generate_tweets($N, $SEED, date_trunc('hour', now()), '1 minute') t)
        TO STDOUT WITH (FORMAT csv, DELIMITER E'\x1f', QUOTE E'\x1e')" |
  kcat -P -b "$BOOT" -t "$TOPIC" -K '\t' -X enable.idempotence=true -X linger.ms=20 2>> "$LOG"
t1=$(now)
fill_rate=$(rate "$N" "$t0" "$t1")

# the end offset of each partition, as the broker reports it
bash "$KAFKA" tool "$KDIR" org.apache.kafka.tools.GetOffsetShell --bootstrap-server "$BOOT" \
  --topic "$TOPIC" --time -1 < /dev/null 2>> "$LOG" |
  sed -n "s/^$TOPIC:\([0-9]*\):\([0-9]*\)[[:space:]]*\$/\1 \2/p" > "$W/end_offsets"
END=$(awk '{ s += $2 } END { print s + 0 }' "$W/end_offsets")
END_VALUES=$(awk '{ printf "%s(%d, %d)", (NR > 1 ? ", " : ""), $1, $2 }' "$W/end_offsets")
[ "$(wc -l < "$W/end_offsets")" = "$PARTITIONS" ] ||
  warn "the broker reported end offsets for $(wc -l < "$W/end_offsets") of $PARTITIONS partitions"
[ "$END" = "$N" ] || warn "the topic holds $END messages; $N were sent"
say "topic $TOPIC: $END messages, end offsets $(awk '{ printf "%s%d:%d", (NR > 1 ? " " : ""), $1, $2 }' "$W/end_offsets"), filled at $fill_rate msgs/s"
if [ "$END" = 0 ]; then
  warn "nothing to drain"
  exit 0
fi

# --- one drain: $1 consumers from tweetlake.start() to the last batch's commit ----------
# Sets drain_rate (stored messages per second) and drain_s.
drain_run() {
  local c=$1 t0 t1 stored lag workers
  sql -c "ALTER SYSTEM SET tweetlake.consumers = $c" -c "SELECT pg_reload_conf()" >/dev/null
  sql -c "CHECKPOINT"
  sync
  sleep 1  # the launcher has read the new tweetlake.consumers before start() wakes it
  t0=$(sql -c "SELECT extract(epoch FROM clock_timestamp()) FROM tweetlake.start()")
  # one session polls (a new snapshot per statement); the time comes from commit timestamps
  sql -c "DO \$\$
          DECLARE done bigint; last bigint := -1; since timestamptz := clock_timestamp();
          BEGIN
            LOOP
              SELECT coalesce(sum(greatest(next_offset, 0)), 0) INTO done
                FROM tweetlake.offsets WHERE topic = '$TOPIC';
              EXIT WHEN done >= $END;
              IF done <> last THEN
                last := done; since := clock_timestamp();
              ELSIF clock_timestamp() - since > interval '$STALL_S s' THEN
                EXIT;
              END IF;
              PERFORM pg_sleep(0.2);
            END LOOP;
          END \$\$"
  stored=$(sql -c "SELECT coalesce(sum(greatest(next_offset, 0)), 0) FROM tweetlake.offsets WHERE topic = '$TOPIC'")
  t1=$(sql -c "SELECT extract(epoch FROM max(pg_xact_commit_timestamp(xmin))) FROM tweetlake.offsets WHERE topic = '$TOPIC'")
  lag=$(sql -c "SELECT coalesce(sum(lag), 0) FROM tweetlake.consumer_lag WHERE topic = '$TOPIC'")
  workers=$(sql -c "SELECT count(*) FROM tweetlake.status WHERE role = 'consumer' AND messages > 0")
  sql -c "SELECT tweetlake.stop()" >/dev/null
  for _ in $(seq 120); do
    [ "$(sql -c "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'tweetlake consumer'")" = 0 ] && break
    sleep 0.5
  done
  [ "$stored" = "$END" ] || warn "$c consumer(s): stored offsets cover $stored of $END messages (no batch for $STALL_S s)"
  [ "$lag" = 0 ] || warn "$c consumer(s): tweetlake.consumer_lag says $lag messages behind at the end"
  [ "$workers" = "$c" ] || warn "$c consumer(s) wanted, $workers stored messages"
  drain_rate=$(rate "$stored" "$t0" "$t1")
  drain_s=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }')
  say "$c consumer(s): $stored messages in $drain_s s, $drain_rate tweets/s"
}

# --- after a drain: every message exactly once, every tweet in silver, gold exact -------
check_drain() {
  local label=$1 rows distinct off silver dead bad
  read -r rows distinct <<< "$(sql -F ' ' -c "SELECT count(*), count(DISTINCT (kafka_partition, kafka_offset)) FROM bronze.tweets")"
  [ "$rows" = "$END" ] && [ "$distinct" = "$END" ] ||
    warn "$label: bronze holds $rows rows at $distinct distinct (partition, offset); the topic's end offsets add up to $END"
  off=$(sql -c "SELECT count(*) FROM (VALUES $END_VALUES) e(p, n)
                FULL JOIN (SELECT kafka_partition AS p, count(*) AS c, max(kafka_offset) + 1 AS m
                           FROM bronze.tweets GROUP BY 1) b USING (p)
                WHERE b.c IS DISTINCT FROM e.n OR b.m IS DISTINCT FROM e.n")
  [ "$off" = 0 ] || warn "$label: in $off partition(s) bronze does not hold exactly the offsets 0 to end - 1"
  silver=$(sql -c "SELECT count(*) FROM silver.tweets")
  [ "$silver" = "$N" ] || warn "$label: silver holds $silver tweets, $N were sent"
  dead=$(sql -c "SELECT count(*) FROM bronze.dead_letters")
  [ "$dead" = 0 ] || warn "$label: $dead dead letters"
  bad=$(sql -c "SELECT coalesce(string_agg(gold_table, ' '), '') FROM tweetlake.verify() WHERE missing + extra + differing > 0")
  [ -z "$bad" ] || warn "$label: verify() found differences in $bad"
}

drain_run 1
rate_1c=$drain_rate
check_drain "1 consumer"

# the baseline: the same typed rows, COPYed in one session into an unindexed table
sql -c "COPY silver.tweets TO '$W/typed.copy'"
sql -c "CREATE TABLE copy_target (LIKE silver.tweets)" -c "CHECKPOINT"
t0=$(now); sql -c "COPY copy_target FROM '$W/typed.copy'"; t1=$(now)
copy_rate=$(rate "$(sql -c "SELECT count(*) FROM copy_target")" "$t0" "$t1")
sql -c "DROP TABLE copy_target"
rm -f "$W/typed.copy"

sql -c "SET client_min_messages = warning" -c "DROP EXTENSION tweetlake CASCADE" -c "CREATE EXTENSION tweetlake$EXT_VERSION"
drain_run 2
rate_2c=$drain_rate
check_drain "2 consumers"

echo "drain_messages $END msgs"
echo "drain_fill_msgs_per_s $fill_rate msgs/s"
echo "drain_copy_typed_rows_per_s $copy_rate rows/s"
echo "drain_1c_tweets_per_s $rate_1c tweets/s"
echo "drain_1c_vs_copy $(ratio "$rate_1c" "$copy_rate") x"
echo "drain_2c_tweets_per_s $rate_2c tweets/s"
echo "drain_2c_vs_1c $(ratio "$rate_2c" "$rate_1c") x"
echo "drain_2c_vs_copy $(ratio "$rate_2c" "$copy_rate") x"
