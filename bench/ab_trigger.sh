#!/usr/bin/env bash
# bench/ab_trigger.sh - what a change to the batch trigger costs: the installed extension's
# tweetlake.process_bronze_batch() against the one of an earlier commit, on one server,
# alternating, each loading the same N generated tweets into a fresh database.
#
#   bash bench/ab_trigger.sh REV [N] [ROUNDS]     e.g. bash bench/ab_trigger.sh HEAD~1 100000 3
#
# The earlier trigger is the function text at REV (schema/sources/60_batch.sql, or the
# install script sql/tweetlake--0.1.0.sql of commits before the schema/ layout), put in place
# with CREATE OR REPLACE after CREATE EXTENSION (so the tables are today's: a trigger that
# feeds a gold table REV did not have shows in verify() as that table's missing rows).
# Prints tweets/s per run, then the median of each side and their ratio.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
. "$ROOT/scripts/lib.sh"
REV=${1:?usage: ab_trigger.sh REV [N] [ROUNDS]}
N=${2:-100000}
ROUNDS=${3:-3}

W=$(pg_owned_dir tweetlake-ab)
PORT=$(free_port)
cleanup() { as_pg pg_ctl -D "$W/data" -m immediate stop >/dev/null 2>&1 || true; rm -rf "$W"; }
trap cleanup EXIT
{ git -C "$ROOT" show "$REV:schema/sources/60_batch.sql" 2>/dev/null ||
  git -C "$ROOT" show "$REV:sql/tweetlake--0.1.0.sql"; } | python3 -c '
import sys
s = sys.stdin.read()
i = s.index("CREATE FUNCTION tweetlake.process_bronze_batch()")
j = s.index("$$;", i) + 3
print(s[i:j].replace("CREATE FUNCTION", "CREATE OR REPLACE FUNCTION", 1))' > "$W/before.sql"
chown postgres: "$W/before.sql" 2>/dev/null || true

bench_server "$W" "$PORT"
sql() { as_pg psql -X -q -v ON_ERROR_STOP=1 -h "$W" -p "$PORT" -U postgres -tA "$@"; }

: > "$W/rates"
for round in $(seq "$ROUNDS"); do
  for side in before now; do
    sql -d postgres -c "DROP DATABASE IF EXISTS ab_$side" -c "CREATE DATABASE ab_$side" 2>/dev/null
    sql -d "ab_$side" -c "CREATE EXTENSION tweetlake"
    [ "$side" = before ] && sql -d "ab_$side" -f "$W/before.sql"
    sql -d "ab_$side" -c "CHECKPOINT"
    t0=$(date +%s.%N)
    sql -d "ab_$side" -c "SELECT tweetlake.load_generated($N, 1)" >/dev/null
    t1=$(date +%s.%N)
    r=$(awk -v n="$N" -v a="$t0" -v b="$t1" 'BEGIN { printf "%.0f", n / (b - a) }')
    off=$(sql -d "ab_$side" -c "SELECT coalesce(string_agg(gold_table, ' '), '-') FROM tweetlake.verify()
                                 WHERE missing + extra + differing > 0")
    echo "round $round $side ($([ "$side" = before ] && echo "$REV" || echo installed)): $r tweets/s; gold tables off a recompute: $off"
    echo "$side $r" >> "$W/rates"
  done
done
med() { awk -v s="$1" '$1 == s { print $2 }' "$W/rates" | median; }
b=$(med before); n=$(med now)
echo "ab_trigger: $REV $b tweets/s, installed $n tweets/s (medians of $ROUNDS), installed/before $(awk -v a="$n" -v b="$b" 'BEGIN { printf "%.3f", a / b }')"
