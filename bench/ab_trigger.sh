#!/usr/bin/env bash
# bench/ab_trigger.sh - what a change to the batch trigger costs: the installed extension's
# tweetlake.process_bronze_batch() against an earlier one, on one server, alternating, each
# loading the same N generated tweets into a fresh database (the only one of the A/B on the
# server while it loads; the sides take turns going first, so an even ROUNDS is balanced).
#
#   bash bench/ab_trigger.sh REV [N] [ROUNDS]           e.g. bash bench/ab_trigger.sh HEAD~1 100000 3
#   bash bench/ab_trigger.sh version:V [N] [ROUNDS]     e.g. bash bench/ab_trigger.sh version:0.3.0
#   NOW_SQL=FILE bash bench/ab_trigger.sh installed [N] [ROUNDS]
#   bash bench/ab_trigger.sh library:REV [N] [ROUNDS]   e.g. bash bench/ab_trigger.sh library:HEAD~1
#
# REV: the SQL trigger function's text at that commit (schema/sources/60_batch.sql, or the
# install script sql/tweetlake--0.1.0.sql of commits before the schema/ layout), put in place
# with CREATE OR REPLACE after CREATE EXTENSION (so the tables are today's: a trigger that
# feeds a gold table REV did not have shows in verify() as that table's missing rows).
# version:V: the earlier side is CREATE EXTENSION tweetlake VERSION 'V' (its install script,
# as shipped, on the installed library): the way to compare against a trigger of SQL text
# when the installed one is C.  SPAN (default 7 days) is the time the tweets spread over;
# BATCH_SIZE (default: tweetlake.batch_size's, 10000) the rows per INSERT, so BATCH_SIZE=1
# gives what a one-row INSERT costs the trigger.
# library:REV: the earlier side is the C library built from REV (git archive, make), on the
# installed SQL: the way to price a change to the C batch path (src/batch.c) of the same
# schema.  It runs from a copy of the server's installation (bin, lib and share, relocated
# under the bench's directory, REV's tweetlake.so in its lib), so the installed files are not
# touched; the bench's server is stopped and started on the side's binaries before each load.
# installed: both sides are the installed extension as it is; with NOW_SQL, a file of SQL run on
# the installed side after CREATE EXTENSION (an index, a storage parameter) before it loads: the
# way to price a schema change before it becomes a version.  NOW_CREATEDB: options of CREATE
# DATABASE for the installed side, e.g. NOW_CREATEDB="TEMPLATE template0 LC_COLLATE 'C'" (what
# the collation of text keys costs: the other side keeps the server's C.UTF-8).
# Prints tweets/s and the loading backend's CPU time per tweet (what other work on the
# machine disturbs least) per run, then the medians of each side and their ratios.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
. "$ROOT/scripts/lib.sh"
REV=${1:?usage: ab_trigger.sh REV [N] [ROUNDS]}
N=${2:-100000}
ROUNDS=${3:-3}

W=$(pg_owned_dir tweetlake-ab)
PORT=$(free_port)
trap bench_cleanup EXIT
SPAN=${SPAN:-7 days}
BEFORE_VERSION=
BEFORE_BINDIR=
if [ "$REV" = installed ]; then
  : > "$W/before.sql"
elif [ "${REV#library:}" != "$REV" ]; then
  : > "$W/before.sql"
  # PostgreSQL finds its lib and share directories relative to its binary: a copy of the
  # installation under $W/inst runs with the libraries in $W/inst's lib
  LIBDIR=$(pg_config --pkglibdir); SHAREDIR=$(pg_config --sharedir); BINDIR=$(pg_config --bindir)
  for d in "$LIBDIR" "$SHAREDIR" "$BINDIR"; do mkdir -p "$W/inst$(dirname "$d")"; cp -a "$d" "$W/inst$d"; done
  mkdir -p "$W/rev"
  git -C "$ROOT" archive "${REV#library:}" | tar -x -C "$W/rev"
  make -C "$W/rev" -s >/dev/null
  cp "$W/rev/tweetlake.so" "$W/inst$LIBDIR/tweetlake.so"
  BEFORE_BINDIR=$W/inst$BINDIR
  chown -R postgres: "$W/inst" 2>/dev/null || true
elif [ "${REV#version:}" != "$REV" ]; then
  BEFORE_VERSION=${REV#version:}
  : > "$W/before.sql"
else
  { git -C "$ROOT" show "$REV:schema/sources/60_batch.sql" 2>/dev/null ||
    git -C "$ROOT" show "$REV:sql/tweetlake--0.1.0.sql"; } | python3 -c '
import sys
s = sys.stdin.read()
i = s.index("CREATE FUNCTION tweetlake.process_bronze_batch()")
j = s.find("$$;", i)
if j < 0 or "LANGUAGE C" in s[i:j]:
    sys.exit("ab_trigger: the trigger at this commit is not SQL text; compare with version:V")
print(s[i:j + 3].replace("CREATE FUNCTION", "CREATE OR REPLACE FUNCTION", 1))' > "$W/before.sql"
fi
if [ -n "${NOW_SQL:-}" ]; then cp "$NOW_SQL" "$W/now.sql"; else : > "$W/now.sql"; fi
chown postgres: "$W/before.sql" "$W/now.sql" 2>/dev/null || true

bench_server "$W" "$PORT"
# library:REV: the server on the side's installation (REV's copy, or the installed one)
on_side() {
  [ -n "$BEFORE_BINDIR" ] || return 0
  local bin; bin=$(pg_config --bindir); [ "$1" = before ] && bin=$BEFORE_BINDIR
  as_pg pg_ctl -D "$W/data" -m fast -w stop >/dev/null
  as_pg "$bin/pg_ctl" -D "$W/data" -o "-p $PORT" -l "$W/server.log" -w start >/dev/null
}
sql() { bench_sql "$@"; }   # each call names its database (-d)

: > "$W/rates"
for round in $(seq "$ROUNDS"); do
  # the sides take turns going first, and only the side loading has a database: the second
  # load of a round otherwise runs with the first one's pages in shared buffers and its dirty
  # ones being written (a null A/B, both sides the same, read 1.15x CPU a tweet for the second)
  order="before now"; [ $((round % 2)) = 0 ] && order="now before"
  for side in $order; do
    on_side "$side"
    opts=; [ "$side" = now ] && opts=${NOW_CREATEDB:-}
    sql -d postgres -c "DROP DATABASE IF EXISTS ab_before" -c "DROP DATABASE IF EXISTS ab_now" \
        -c "CREATE DATABASE ab_$side $opts" 2>/dev/null
    if [ "$side" = before ] && [ -n "$BEFORE_VERSION" ]; then
      sql -d "ab_$side" -c "CREATE EXTENSION tweetlake VERSION '$BEFORE_VERSION'"
    else
      sql -d "ab_$side" -c "CREATE EXTENSION tweetlake"
      [ "$side" = before ] && sql -d "ab_$side" -f "$W/before.sql"
    fi
    if [ "$side" = now ] && [ -n "${NOW_SQL:-}" ]; then sql -d "ab_$side" -f "$W/now.sql"; fi
    sql -d "ab_$side" -c "CHECKPOINT"
    # one session: its CPU time (utime + stime of /proc/self/stat, in ticks) around the load
    t0=$(date +%s.%N)
    cpu=$(sql -d "ab_$side" -c "CREATE TEMP TABLE c0 AS SELECT split_part(s, ' ', 14)::bigint + split_part(s, ' ', 15)::bigint AS t
                                 FROM pg_read_file('/proc/self/stat') AS s" \
              ${BATCH_SIZE:+-c "SET tweetlake.batch_size = $BATCH_SIZE"} \
              -c "SELECT tweetlake.load_generated($N, 1, '2026-01-01', '$SPAN') IS NULL" \
              -c "SELECT round((split_part(s, ' ', 14)::bigint + split_part(s, ' ', 15)::bigint - t)
                               * 1e6 / $(getconf CLK_TCK) / $N, 1)
                  FROM c0, pg_read_file('/proc/self/stat') AS s" | tail -1)
    t1=$(date +%s.%N)
    r=$(awk -v n="$N" -v a="$t0" -v b="$t1" 'BEGIN { printf "%.0f", n / (b - a) }')
    off=$(sql -d "ab_$side" -c "SELECT coalesce(string_agg(gold_table, ' '), '-') FROM tweetlake.verify()
                                 WHERE missing + extra + differing > 0")
    # the library a backend has mapped (shared_preload_libraries; library:REV: the copy's on
    # the earlier side)
    lib=$(sql -d "ab_$side" -c "SELECT DISTINCT regexp_replace(l, '^.* ', '') FROM regexp_split_to_table(pg_read_file('/proc/self/maps'), E'\\n') l
                  WHERE l LIKE '%/tweetlake.so'")
    echo "round $round $side ($([ "$side" = before ] && echo "$REV" || echo "installed${NOW_SQL:+ + $NOW_SQL}${NOW_CREATEDB:+ in a database $NOW_CREATEDB}")): $r tweets/s, $cpu us CPU a tweet; gold tables off a recompute: $off; library $lib"
    echo "$side $r $cpu" >> "$W/rates"
  done
done
med() { awk -v s="$1" -v c="$2" '$1 == s { print $c }' "$W/rates" | median; }
b=$(med before 2); n=$(med now 2); bc=$(med before 3); nc=$(med now 3)
echo "ab_trigger: $REV $b tweets/s $bc us CPU a tweet, installed $n tweets/s $nc us CPU a tweet (medians of $ROUNDS); installed/before: throughput $(awk -v a="$n" -v b="$b" 'BEGIN { printf "%.3f", a / b }'), CPU a tweet $(awk -v a="$nc" -v b="$bc" 'BEGIN { printf "%.3f", a / b }')"
