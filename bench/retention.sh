#!/usr/bin/env bash
# bench/retention.sh - freshness while bronze partitions are dropped (issue 20): does
# retention make ingest wait?
#
#   bash bench/retention.sh [SECONDS] [RATE]    windows of SECONDS (default 20) at RATE
#                                               tweets/s (default 10000); `make bench` runs it
#
# A server of its own with the embedded broker, the generator at RATE and one consumer. Before
# the windows, expired day partitions of bronze.tweets (200 days ago and on, 5,000 tweets each)
# are made and filled. Then, in RETENTION_ROUNDS rounds (default 2) that alternate the order,
# two windows: in "quiet", tweetlake.maintain_partitions() runs every 2 s with a retention that
# drops nothing; in "dropping", it runs every 2 s with a retention one day shorter each time,
# so each run empties and drops one expired partition while the consumer writes. Freshness is
# what bench/run.sh's P3 measures: produce time (Kafka timestamp) to the commit of the batch
# that stored the tweet, for the tweets produced in the window; p50 and p99 of each kind of
# window over all rounds, and dropping / quiet for p99. Also how many partitions the dropping
# windows dropped, and how many runs had to leave the drop for later (the 50 ms lock wait ran
# out). Prints "name value unit" lines and "retention: ..." notes.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
. "$ROOT/scripts/lib.sh"

W_S=${1:-20}
RATE=${2:-10000}
ROUNDS=${RETENTION_ROUNDS:-2}
EVERY_S=2
CALLS=$((W_S / EVERY_S))
PER_PARTITION=5000

say() { echo "retention: $*"; }
bench_scratch tweetlake-retention "track_commit_timestamp = on" "tweetlake.generator_rate = $RATE" \
  "tweetlake.consumers = 1"
sql() { bench_sql "$@"; }
sql -c "CREATE EXTENSION tweetlake"

# the expired days: 200, 199, ... days ago, one partition each, filled before they are attached
n_old=$((ROUNDS * CALLS))
sql -c "SET TimeZone = UTC" -c "DO \$\$
        DECLARE d date; name text;
        BEGIN
          FOR k IN 1 .. $n_old LOOP
            d := (now() AT TIME ZONE 'UTC')::date - 201 + k;
            name := 'tweets_expired_' || k;
            EXECUTE format('CREATE TABLE bronze.%I (LIKE bronze.tweets INCLUDING DEFAULTS INCLUDING GENERATED)', name);
            EXECUTE format('INSERT INTO bronze.%I (raw, ingested_at)
                            SELECT t, %L::timestamptz + interval ''1 hour'' FROM tweetlake.generate_tweets($PER_PARTITION, %s) t',
                           name, d::timestamptz, k);
            EXECUTE format('ALTER TABLE bronze.tweets ATTACH PARTITION bronze.%I FOR VALUES FROM (%L) TO (%L)',
                           name, d::timestamptz, (d + 1)::timestamptz);
          END LOOP;
        END \$\$"
say "$n_old expired partitions of $PER_PARTITION tweets, $(sql -c "SELECT pg_size_pretty(sum(bytes)) FROM tweetlake.bronze_partitions WHERE range_to < now() - interval '30 days'") in all"

sql -c "SELECT tweetlake.start()" >/dev/null
sleep 10   # the consumer catches up and the generator is at its rate
: > "$W/fresh.quiet"; : > "$W/fresh.dropping"; : > "$W/actions"
next_drop=199   # the retention, in days, of the next dropping call: drops the oldest left

window() {
  local kind=$1 start stop c ret
  start=$(sql -c "SELECT clock_timestamp()")
  for c in $(seq "$CALLS"); do
    if [ "$kind" = dropping ]; then ret="$next_drop days"; next_drop=$((next_drop - 1)); else ret="1000 days"; fi
    sql -c "SELECT action FROM tweetlake.maintain_partitions('$ret')" | sed "s/^/$kind /" >> "$W/actions"
    sleep "$EVERY_S"
  done
  stop=$(sql -c "SELECT clock_timestamp()")
  sleep 3   # the window's last tweets are stored
  sql -c "SELECT extract(epoch FROM pg_xact_commit_timestamp(xmin) - kafka_timestamp) * 1000
          FROM bronze.tweets WHERE kafka_timestamp BETWEEN '$start' AND '$stop'" >> "$W/fresh.$kind"
}
for r in $(seq "$ROUNDS"); do
  if [ $((r % 2)) = 1 ]; then order="quiet dropping"; else order="dropping quiet"; fi
  for kind in $order; do window "$kind"; done
  say "round $r done"
done
sql -c "SELECT tweetlake.stop()" >/dev/null

pct() { sort -g "$1" | awk -v p="$2" '{ v[NR] = $1 } END { if (NR == 0) print "nan"; else { i = int(NR * p); if (i < 1) i = 1; printf "%.1f", v[i] } }'; }
q50=$(pct "$W/fresh.quiet" 0.5); q99=$(pct "$W/fresh.quiet" 0.99)
d50=$(pct "$W/fresh.dropping" 0.5); d99=$(pct "$W/fresh.dropping" 0.99)
dropped=$(grep -c '^dropping dropped$' "$W/actions" || true)
later=$(grep -c '^dropping emptied; dropped at a later run$' "$W/actions" || true)
left=$(sql -c "SELECT count(*) FROM tweetlake.bronze_partitions WHERE range_to < now() - interval '30 days'")
say "tweets measured: $(wc -l < "$W/fresh.quiet") quiet, $(wc -l < "$W/fresh.dropping") dropping; $left expired partitions left"
[ "$(sql -c "SELECT coalesce(sum(missing + extra + differing), 0) FROM tweetlake.verify()")" = 0 ] ||
  say "WARNING: verify() found differences"
echo "retention_fresh_quiet_p50_ms $q50 ms"
echo "retention_fresh_quiet_p99_ms $q99 ms"
echo "retention_fresh_dropping_p50_ms $d50 ms"
echo "retention_fresh_dropping_p99_ms $d99 ms"
echo "retention_partitions_dropped $dropped partitions"
echo "retention_drops_left_for_later $later partitions"
echo "retention_dropping_vs_quiet_p99 $(awk -v a="$d99" -v b="$q99" 'BEGIN { if (b + 0 == 0) print "nan"; else printf "%.3f", a / b }') x"
