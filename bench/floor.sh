#!/usr/bin/env bash
# bench/floor.sh - the floor under issue 14's goals: what writing a tweet's two stored rows
# costs by itself (the raw message into bronze.tweets, the typed row into silver.tweets with
# its indexes), with no parsing, no gold and no Kafka, against the goals' baseline (a
# one-session COPY of the same typed rows into an unindexed table), and the pipeline itself
# (the same messages COPYed into bronze with the batch trigger on: parse, silver, gold), all
# on one server in one run.
#
#   bash bench/floor.sh [N] [ROUNDS]      N tweets (default 300000), ROUNDS (default 3)
#
# Each round starts from a fresh extension (DROP/CREATE) and takes, each into an empty table,
# in an order that alternates between rounds so drift falls on every side:
#   baseline   COPY of silver's rows into CREATE TABLE (LIKE silver.tweets): no index
#   silver     the same rows into (LIKE silver.tweets INCLUDING ALL): its primary key on
#              tweet_id, its (user_id, created_at) B-tree and its BRIN, as the batch writes them
#   silver_pk  the same with the primary key only
#   bronze     COPY of the raw messages into bronze.tweets with the batch trigger disabled:
#              the partition routing and the generated columns (tweet_id_of(raw),
#              partition_date) as every message pays them
#   raw        the same text into an unpartitioned one-column table: the bytes alone
#   pipeline   COPY of the raw messages into bronze.tweets with the trigger on (5,000-row
#              chunks through parse, silver, the distinct-count sets and gold); verify() after
# The floor is bronze + silver per tweet: a pipeline that keeps these two tables can go no
# faster, so floor_vs_copy bounds every ratio to the baseline that issue 14 sets as a goal
# (the P1 drain and the SQL path), and pipeline_vs_floor is how close the pipeline comes.
# Prints "name value unit" lines (medians of the rounds); `make bench` relays them.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
. "$ROOT/scripts/lib.sh"
N=${1:-300000}
ROUNDS=${2:-3}

bench_scratch tweetlake-floor
sql() { bench_sql "$@"; }
now() { date +%s.%N; }

# The messages (the generator's, over 7 days, as the P1 drain's topic holds them), once.
sql -c "CREATE EXTENSION tweetlake"
sql -c "COPY (SELECT t FROM tweetlake.generate_tweets($N, 42) t) TO '$W/raw.copy'"

# timed NAME SQL...: runs the statements, the last one timed, and records N / its seconds.
timed() {
  local name=$1 t0 t1; shift
  while [ $# -gt 1 ]; do sql -c "$1"; shift; done
  sql -c "CHECKPOINT"
  t0=$(now); sql -c "$1"; t1=$(now)
  echo "$name $(echo "$N / ($t1 - $t0)" | bc -l)" >> "$W/rates"
}
: > "$W/rates"
sides="pipeline baseline silver silver_pk bronze raw"
for r in $(seq 1 "$ROUNDS"); do
  sql -c "DROP EXTENSION tweetlake CASCADE" -c "CREATE EXTENSION tweetlake"
  sql -c "SET client_min_messages = warning" -c "DROP TABLE IF EXISTS f_base, f_silver, f_silver_pk, f_raw"
  # the pipeline first, in every round: the others COPY the typed rows it made
  timed pipeline "COPY bronze.tweets (raw) FROM '$W/raw.copy'"
  off=$(sql -c "SELECT coalesce(sum(missing + extra + differing), -1) FROM tweetlake.verify()")
  [ "$off" = 0 ] || echo "floor: WARNING: round $r: verify() found $off rows off a recompute"
  stored=$(sql -c "SELECT count(*) FROM silver.tweets")
  [ "$stored" = "$N" ] || echo "floor: WARNING: round $r: silver holds $stored tweets of $N"
  sql -c "COPY silver.tweets TO '$W/typed.copy'"
  order="baseline silver silver_pk bronze raw"
  [ $((r % 2)) = 0 ] && order="raw bronze silver_pk silver baseline"
  for s in $order; do
    case $s in
      baseline)  timed baseline "CREATE TABLE f_base (LIKE silver.tweets)" "COPY f_base FROM '$W/typed.copy'" ;;
      silver)    timed silver "CREATE TABLE f_silver (LIKE silver.tweets INCLUDING ALL)" "COPY f_silver FROM '$W/typed.copy'" ;;
      silver_pk) timed silver_pk "CREATE TABLE f_silver_pk (LIKE silver.tweets)" \
                   "ALTER TABLE f_silver_pk ADD PRIMARY KEY (tweet_id)" "COPY f_silver_pk FROM '$W/typed.copy'" ;;
      bronze)    timed bronze "ALTER TABLE bronze.tweets DISABLE TRIGGER USER" "TRUNCATE bronze.tweets" \
                   "COPY bronze.tweets (raw) FROM '$W/raw.copy'" ;;
      raw)       timed raw "CREATE TABLE f_raw (raw text)" "COPY f_raw FROM '$W/raw.copy'" ;;
    esac
  done
done

rate() { awk -v s="$1" '$1 == s { print $2 }' "$W/rates" | median; }
us() { echo "1000000 / $1" | bc -l; }
declare -A R
for s in $sides; do R[$s]=$(rate "$s"); done
floor=$(echo "1 / (1 / ${R[bronze]} + 1 / ${R[silver]})" | bc -l)
printf 'floor: %s tweets, %s rounds; rows/s (median) and us a row:\n' "$N" "$ROUNDS"
for s in $sides; do printf 'floor:   %-10s %9.0f rows/s %7.2f us\n' "$s" "${R[$s]}" "$(us "${R[$s]}")"; done
printf 'floor_copy_typed_rows_per_s %.0f rows/s\n' "${R[baseline]}"
printf 'floor_bronze_row_us %.2f us\n' "$(us "${R[bronze]}")"
printf 'floor_silver_row_us %.2f us\n' "$(us "${R[silver]}")"
printf 'floor_bronze_silver_us %.2f us\n' "$(us "$floor")"
printf 'floor_vs_copy %.3f x\n' "$(echo "$floor / ${R[baseline]}" | bc -l)"
printf 'floor_pipeline_us %.2f us\n' "$(us "${R[pipeline]}")"
printf 'floor_pipeline_vs_copy %.3f x\n' "$(echo "${R[pipeline]} / ${R[baseline]}" | bc -l)"
printf 'floor_pipeline_vs_floor %.3f x\n' "$(echo "${R[pipeline]} / $floor" | bc -l)"
