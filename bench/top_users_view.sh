#!/usr/bin/env bash
# bench/top_users_view.sh - the dashboard's "top users by engagement" while the pipeline
# ingests (issue 16: the dashboard's p99 at 10k tweets/s): the ranking as 0.11.0 reads it
# (the members' copies of their rows) vs as 0.10.0 read it (each member's row of
# gold.user_engagement, the rows every batch updates), both in one run on one server.
#
#   bash bench/top_users_view.sh [SECONDS] [RATE]   SECONDS of queries (default 60) at RATE
#                                                   tweets/s (default 10000)
#
# A server of its own with the embedded broker, the generator at RATE and two consumers.
# After WARM seconds (default 60) of ingest, one pgbench client runs three queries in random
# turn for SECONDS, as fast as it can: "copy", SELECT * FROM gold.top_users_by_engagement;
# "rows", the 0.10.0 view's text over the same tables (still a right answer: every member is
# in gold.user_engagement); "rows_serial", the same in a transaction with parallel plans off
# (SET LOCAL max_parallel_workers_per_gather = 0), which tells what the 0.10.0 view's parallel
# plan cost from what reading the busiest rows did. The answers of "copy" and "rows" are
# compared, row for row, in one snapshot, every 5 s of the run. Prints each query's
# p50/p90/p99 in ms, copy/rows and copy/rows_serial for p50 and p99, the answers that
# differed (must be 0), and "top_users_view: ..." notes.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
. "$ROOT/scripts/lib.sh"

SECONDS_RUN=${1:-60}
RATE=${2:-10000}
WARM=${WARM:-60}
PGBIN=$(pg_config --bindir)

say() { echo "top_users_view: $*"; }
bench_scratch tweetlake-top-users-view "tweetlake.generator_rate = $RATE" "tweetlake.consumers = 2" \
  "tweetlake.partitions = 8"
# at exit, the answer checker below (if it still runs) too
cleanup() {
  [ -n "${checker:-}" ] && kill "$checker" 2>/dev/null || true
  bench_cleanup
}
trap cleanup EXIT
sql() { bench_sql "$@"; }
sql -c "CREATE EXTENSION tweetlake"
sql -c "SELECT tweetlake.start()" >/dev/null
sleep "$WARM"

# The 0.10.0 definition of gold.top_users_by_engagement, from its install script.
sed -n '/^CREATE VIEW gold.top_users_by_engagement AS$/,/^ORDER BY total_engagement DESC, user_id;$/p' \
  "$ROOT/schema/tweetlake--0.10.0.sql" | sed '1d; $s/;$//' > "$W/rows.sql"
[ "$(wc -l < "$W/rows.sql")" -gt 20 ] || { echo "top_users_view: no 0.10.0 view in schema/tweetlake--0.10.0.sql" >&2; exit 1; }
echo "SELECT * FROM gold.top_users_by_engagement;" > "$W/copy.sql"
{ cat "$W/rows.sql"; echo ";"; } > "$W/rows_bench.sql"
{ echo "BEGIN;"; echo "SET LOCAL max_parallel_workers_per_gather = 0;"; cat "$W/rows.sql"; echo ";"; echo "COMMIT;"; } > "$W/serial_bench.sql"
chmod 644 "$W"/*.sql

say "after ${WARM}s at $RATE/s: $(sql -c "SELECT count(*) FROM silver.tweets") tweets, $(sql -c "SELECT count(*) FROM gold.user_engagement") users, $(sql -c "SELECT count(*) FROM tweetlake.top_users") members"

# the answers compared while the queries run
( differ=0; checks=0
  end=$(( $(date +%s) + SECONDS_RUN ))
  while [ "$(date +%s)" -lt "$end" ]; do
    d=$(sql -c "BEGIN ISOLATION LEVEL REPEATABLE READ" \
            -c "SELECT count(*) FROM ((SELECT * FROM gold.top_users_by_engagement EXCEPT ALL ($(cat "$W/rows.sql")))
                                      UNION ALL (($(cat "$W/rows.sql")) EXCEPT ALL SELECT * FROM gold.top_users_by_engagement)) x" \
            -c "COMMIT")
    checks=$((checks + 1)); [ "$d" = 0 ] || differ=$((differ + 1))
    sleep 5
  done
  echo "$checks $differ" > "$W/checks" ) &
checker=$!

( cd "$W" && as_pg "$PGBIN/pgbench" -n -h "$W" -p "$PORT" -U postgres -c 1 -T "$SECONDS_RUN" \
    -f copy.sql@1 -f rows_bench.sql@1 -f serial_bench.sql@1 --log --log-prefix="$W/lat" postgres >/dev/null 2>&1 )
wait "$checker"; checker=

# pgbench's log: client, transaction, latency (µs), script (0 copy, 1 rows, 2 rows_serial),
# epoch, µs
pct() { awk -v s="$1" '$4 == s { print $3 / 1000 }' "$W"/lat* | sort -g |
        awk -v p="$2" '{ v[NR] = $1 } END { i = int(NR * p / 100); if (i < 1) i = 1; printf "%.2f\n", v[i] }'; }
names=(copy rows rows_serial)
for s in 0 1 2; do
  name=${names[$s]}
  n=$(awk -v s=$s '$4 == s' "$W"/lat* | wc -l)
  for p in 50 90 99; do
    eval "${name}_p$p=$(pct $s $p)"
    echo "top_users_view_${name}_p$p $(eval echo \$${name}_p$p) ms"
  done
  say "$name: $n queries"
done
for base in rows rows_serial; do
  for p in 50 99; do
    echo "top_users_view_copy_over_${base}_p$p $(awk -v a="$(eval echo \$copy_p$p)" -v b="$(eval echo \$${base}_p$p)" \
      'BEGIN { printf "%.3f", a / b }') x"
  done
done
read -r checks differ < "$W/checks"
echo "top_users_view_answers_differing $differ of $checks"
say "$(sql -c "SELECT count(*) FROM silver.tweets") tweets at the end; members $(sql -c "SELECT count(*) FROM tweetlake.top_users"), pending $(sql -c "SELECT count(*) FROM tweetlake.top_users_pending")"
