#!/usr/bin/env bash
# bench/disk.sh - disk figures to size a server: the bytes each table takes per million tweets
# (heap, TOAST, indexes), the WAL written per tweet, and whether TOAST compression of
# bronze.raw with lz4 pays for itself.
#
#   bash bench/disk.sh [N] [AB_N] [ROUNDS]    N tweets for the sizes (default 1000000),
#                                              AB_N tweets for each compression run
#                                              (default min(N, 100000)), ROUNDS each (default 3)
#   SPAN='1 day' bash bench/disk.sh            the time the tweets spread over (default 7 days)
#
# 1. Sizes: N generated tweets through bronze -> silver -> gold (tweetlake.load_generated in
#    calls of DISK_CHUNK tweets, each its own transaction, tweetlake.batch_size per trigger
#    run as the consumers write them) into a fresh database, then per table: heap (fork
#    main), TOAST (the TOAST table with its index), indexes, the free space and visibility
#    maps, all per million tweets, and the WAL from pg_current_wal_lsn() before and after the
#    load, per tweet. Bronze and silver grow with the tweets; gold and the membership tables
#    (tweetlake.user_hour, tweetlake.mention_hour) grow with the groups (hours x hashtags,
#    users, regions...), so their figures hold for this many tweets per hour (N over SPAN).
# 2. Compression of bronze.raw: the default (pglz) against lz4 (ALTER COLUMN raw SET
#    COMPRESSION lz4 right after CREATE EXTENSION), both also with toast_tuple_target lowered
#    to DISK_TOAST_TARGET (default 256), ROUNDS rounds alternating, each into a fresh database
#    with the same AB_N tweets: bronze bytes, the rows actually compressed
#    (pg_column_compression), tweets/s and the loading backend's CPU time per tweet (utime +
#    stime of /proc/self/stat, what other work on the machine disturbs least); medians.
#    PostgreSQL only enters the toaster for a row longer than TOAST_TUPLE_THRESHOLD (~2 kB),
#    whatever toast_tuple_target says, so the length of the generated messages decides.
# 3. What compression would save if it ran: a sample of the stored messages inserted again
#    into probe tables where each row also carries a 1.9 kB column stored out of line, which
#    makes the toaster run and compress raw in place (raw STORAGE EXTERNAL: not compressed, the
#    baseline; pglz; lz4): bytes of raw per message and CPU per message of each.
#
# Prints "name value unit" lines, tables, and "disk: ..." notes. Runs a server of its own
# (bench/run.sh's settings), stopped and removed at exit.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
. "$ROOT/scripts/lib.sh"

N=${1:-1000000}
AB_N=${2:-$((N < 100000 ? N : 100000))}
ROUNDS=${3:-3}
SEED=20
START='2026-01-01 00:00:00+00'
SPAN=${SPAN:-7 days}
CHUNK=${DISK_CHUNK:-100000}
TARGET=${DISK_TOAST_TARGET:-256}
PROBE_N=${DISK_PROBE_N:-50000}
OUT=$ROOT/build/bench
mkdir -p "$OUT"

say() { echo "disk: $*"; }
warn() { echo "disk: WARNING: $*"; }
metric() { printf '%s %s %s\n' "$1" "$2" "$3"; }
calc() { awk "BEGIN { printf \"%.${2:-1}f\", $1 }"; }  # the arithmetic of $1, $2 decimals
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b + 0 == 0) print "nan"; else printf "%.3f", a / b }'; }

say "N=$N AB_N=$AB_N ROUNDS=$ROUNDS SPAN='$SPAN' on $(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GiB, $(pg_config --version)"
bench_scratch tweetlake-disk
# -d on each call; client_min_messages = warning keeps the server's notices out of the output
sql() { PGOPTIONS="-c client_min_messages=warning" bench_sql "$@"; }
CLK=$(getconf CLK_TCK)
CPU="split_part(s, ' ', 14)::bigint + split_part(s, ' ', 15)::bigint"  # utime + stime, ticks

# fresh DB [SQL after CREATE EXTENSION]
fresh_db() {
  sql -d postgres -c "DROP DATABASE IF EXISTS $1" -c "CREATE DATABASE $1"
  sql -d "$1" -c "CREATE EXTENSION tweetlake"
  [ -z "${2:-}" ] || sql -d "$1" -c "$2"
  sql -d "$1" -c "CHECKPOINT"
}

# load DB N: N tweets in calls of CHUNK (each its own transaction, the same tweets for the
# same N: one seed, call k shifted in time so that no two calls share tweet ids), in one
# session; prints "<seconds> <CPU µs a tweet> <WAL bytes>"
load() {
  local db=$1 n=$2 k=0 done=0 c
  {
    echo "CREATE TEMP TABLE c0 AS SELECT $CPU AS t, pg_current_wal_lsn() AS l, clock_timestamp() AS w
          FROM pg_read_file('/proc/self/stat') AS s;"
    while [ "$done" -lt "$n" ]; do
      c=$((n - done < CHUNK ? n - done : CHUNK))
      echo "SELECT tweetlake.load_generated($c, $SEED, timestamptz '$START' + $k * interval '67 min 13 s', '$SPAN') IS NULL;"
      done=$((done + c)) k=$((k + 1))
    done
    echo "SELECT extract(epoch FROM clock_timestamp() - w), round(($CPU - t) * 1e6 / $CLK / $n, 2),
                 pg_wal_lsn_diff(pg_current_wal_lsn(), l)
          FROM c0, pg_read_file('/proc/self/stat') AS s;"
  } > "$W/load.sql"
  chown postgres: "$W/load.sql" 2>/dev/null || true
  sql -d "$db" -F ' ' -f "$W/load.sql" | tail -1
}

# check DB N: every tweet in silver, no dead letters
check() {
  local silver dead
  silver=$(sql -d "$1" -c "SELECT count(*) FROM silver.tweets")
  dead=$(sql -d "$1" -c "SELECT count(*) FROM bronze.dead_letters")
  [ "$silver" = "$2" ] || warn "$1: silver holds $silver tweets, $2 were loaded"
  [ "$dead" = 0 ] || warn "$1: $dead dead letters"
}

# "<rows> <not compressed> <pglz> <lz4> <bronze total bytes> <bronze TOAST bytes>" of DB
bronze_stats() {
  sql -d "$1" -F ' ' -c "SELECT count(*), count(*) FILTER (WHERE pg_column_compression(raw) IS NULL),
                                count(*) FILTER (WHERE pg_column_compression(raw) = 'pglz'),
                                count(*) FILTER (WHERE pg_column_compression(raw) = 'lz4'),
                                (SELECT sum(pg_total_relation_size(i.inhrelid)) FROM pg_inherits i
                                 WHERE i.inhparent = 'bronze.tweets'::regclass),
                                (SELECT coalesce(sum(pg_total_relation_size(nullif(c.reltoastrelid, 0))), 0)
                                 FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
                                 WHERE i.inhparent = 'bronze.tweets'::regclass)
                         FROM bronze.tweets"
}

# --- 1. sizes --------------------------------------------------------------------------
fresh_db disk_size
say "loading $N tweets into a fresh database (pglz, the default)"
read -r secs cpu wal <<< "$(load disk_size "$N")"
check disk_size "$N"
bad=$(sql -d disk_size -c "SELECT coalesce(string_agg(gold_table, ' '), '') FROM tweetlake.verify() WHERE missing + extra + differing > 0")
[ -z "$bad" ] || warn "verify() found differences in $bad"
sql -d disk_size -c "CHECKPOINT"
metric disk_load_tweets_per_s "$(calc "$N / $secs" 0)" tweets/s
metric disk_load_cpu_us_per_tweet "$cpu" us
metric disk_wal_bytes_per_tweet "$(calc "$wal / $N" 0)" B
metric disk_wal_mib_per_1m_tweets "$(calc "$wal / $N * 1e6 / 1048576" 1)" MiB

# per table: heap (fork main), TOAST (its table and index), indexes, FSM + VM, total
sql -d disk_size -F ' ' -c "
  WITH named(ord, name) AS (VALUES (1, 'bronze.tweets'), (2, 'bronze.dead_letters'), (3, 'silver.tweets'),
         (4, 'gold.popular_hashtags_by_hour'), (5, 'gold.active_users_by_day'), (6, 'gold.user_engagement'),
         (7, 'gold.tweet_volume_by_region'), (8, 'gold.tweet_metrics_by_language'),
         (9, 'gold.hourly_activity_summary'), (10, 'gold.engagement_by_type_hour'),
         (11, 'tweetlake.user_hour'), (12, 'tweetlake.mention_hour')),
  rel AS (
    SELECT coalesce(nd.ord, 13) AS ord, coalesce(nd.name, 'rest') AS name,
           pg_relation_size(c.oid, 'main') AS heap,
           coalesce(pg_total_relation_size(nullif(c.reltoastrelid, 0)), 0) AS toast,
           pg_indexes_size(c.oid) AS idx, pg_total_relation_size(c.oid) AS total
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    -- a partition (bronze by day) counts as its table
    LEFT JOIN pg_inherits pi ON pi.inhrelid = c.oid
    LEFT JOIN named nd ON nd.name = coalesce(pi.inhparent::regclass::text, n.nspname || '.' || c.relname)
    WHERE c.relkind IN ('r', 'm') AND n.nspname IN ('bronze', 'silver', 'gold', 'tweetlake'))
  SELECT name, sum(heap), sum(toast), sum(idx), sum(total - heap - toast - idx), sum(total)
  FROM rel GROUP BY ord, name ORDER BY ord" > "$W/sizes"
[ "$(wc -l < "$W/sizes")" -ge 12 ] || warn "only $(wc -l < "$W/sizes") tables found"
db_bytes=$(sql -d disk_size -c "SELECT pg_database_size(current_database())")
empty_bytes=$(sql -d postgres -c "SELECT pg_database_size('postgres')")
all_bytes=$(awk '{ s += $6 } END { print s + 0 }' "$W/sizes")

mib() { calc "$1 / $N * 1e6 / 1048576" 1; }   # bytes -> MiB per million tweets
while read -r name heap toast idx maps total; do
  key=${name//./_}
  metric "disk_${key}_heap_mib_per_1m" "$(mib "$heap")" MiB
  metric "disk_${key}_toast_mib_per_1m" "$(mib "$toast")" MiB
  metric "disk_${key}_index_mib_per_1m" "$(mib "$idx")" MiB
  metric "disk_${key}_total_mib_per_1m" "$(mib "$total")" MiB
done < "$W/sizes"
metric disk_tables_total_mib_per_1m "$(mib "$all_bytes")" MiB
metric disk_database_mib_per_1m "$(mib "$((db_bytes - empty_bytes))")" MiB
metric disk_tables_bytes_per_tweet "$(calc "$all_bytes / $N" 0)" B

{
  echo
  echo "Per million tweets ($N loaded over $SPAN), MiB; bytes per tweet and share of the tables' total:"
  echo
  echo "| table | heap | TOAST | indexes | FSM+VM | total | B/tweet | share |"
  echo "|---|---:|---:|---:|---:|---:|---:|---:|"
  while read -r name heap toast idx maps total; do
    echo "| $name | $(mib "$heap") | $(mib "$toast") | $(mib "$idx") | $(mib "$maps") | **$(mib "$total")** | $(calc "$total / $N" 0) | $(calc "100 * $total / $all_bytes" 1) % |"
  done < "$W/sizes"
  awk '{ h += $2; t += $3; i += $4; m += $5; s += $6 } END { print h, t, i, m, s }' "$W/sizes" |
    while read -r heap toast idx maps total; do
      echo "| all tables | $(mib "$heap") | $(mib "$toast") | $(mib "$idx") | $(mib "$maps") | **$(mib "$total")** | $(calc "$total / $N" 0) | 100 % |"
    done
  echo "| WAL written by the load | | | | | $(calc "$wal / $N * 1e6 / 1048576" 1) | $(calc "$wal / $N" 0) | |"
} | tee "$OUT/disk_sizes.md"
read -r top_name top_bytes <<< "$(sort -k6,6nr "$W/sizes" | awk '$1 != "rest" { print $1, $6; exit }')"
say "largest: $top_name, $(calc "100 * $top_bytes / $all_bytes" 1) % of the tables' bytes"

# the length of the stored messages against the TOAST threshold
read -r p50 p90 p99 pmax over <<< "$(sql -d disk_size -F ' ' -c "
  SELECT percentile_disc(0.5) WITHIN GROUP (ORDER BY l), percentile_disc(0.9) WITHIN GROUP (ORDER BY l),
         percentile_disc(0.99) WITHIN GROUP (ORDER BY l), max(l), count(*) FILTER (WHERE r > 2032)
  FROM (SELECT octet_length(raw) AS l, pg_column_size(b.*) AS r FROM bronze.tweets b) x")"
metric disk_raw_bytes_p50 "$p50" B
metric disk_raw_bytes_p90 "$p90" B
metric disk_raw_bytes_p99 "$p99" B
metric disk_raw_bytes_max "$pmax" B
metric disk_rows_over_toast_threshold "$over" rows
read -r rows plain pglz lz4 _ _ <<< "$(bronze_stats disk_size)"
say "bronze.raw: $rows messages, $plain stored uncompressed, $pglz pglz, $lz4 lz4; $over rows over 2032 bytes"
# the largest messages, to see what compression does when it runs
read -r big_n big_raw big_stored <<< "$(sql -d disk_size -F ' ' -c "
  SELECT count(*), coalesce(sum(octet_length(raw)), 0), coalesce(sum(pg_column_size(raw)), 0)
  FROM bronze.tweets WHERE pg_column_compression(raw) IS NOT NULL")"
[ "$big_n" = 0 ] || say "the $big_n compressed messages: $big_raw bytes of text stored in $big_stored ($(ratio "$big_stored" "$big_raw")x)"
sql -d postgres -c "DROP DATABASE disk_size"

# --- 2. bronze.raw compression A/B ------------------------------------------------------
variants="pglz lz4 pglz_t$TARGET lz4_t$TARGET"
setup_of() {
  case $1 in
    pglz) echo "" ;;
    lz4) echo "ALTER TABLE bronze.tweets ALTER COLUMN raw SET COMPRESSION lz4" ;;
    pglz_t*) echo "ALTER TABLE bronze.tweets_default SET (toast_tuple_target = $TARGET)" ;;
    lz4_t*) echo "ALTER TABLE bronze.tweets ALTER COLUMN raw SET COMPRESSION lz4; ALTER TABLE bronze.tweets_default SET (toast_tuple_target = $TARGET)" ;;
  esac
}
: > "$W/ab"
for round in $(seq "$ROUNDS"); do
  order=$variants
  [ $((round % 2)) = 0 ] && order=$(echo "$variants" | tr ' ' '\n' | tac | tr '\n' ' ')
  for v in $order; do
    db=ab_$v
    fresh_db "$db" "$(setup_of "$v")"
    read -r secs cpu wal <<< "$(load "$db" "$AB_N")"
    check "$db" "$AB_N"
    read -r rows plain pglz lz4 total toast <<< "$(bronze_stats "$db")"
    r=$(calc "$AB_N / $secs" 0)
    say "round $round $v: $r tweets/s, $cpu us CPU a tweet, bronze $(calc "$total / $AB_N * 1e6 / 1048576" 1) MiB per 1M (TOAST $(calc "$toast / $AB_N * 1e6 / 1048576" 1)), raw compressed: $pglz pglz + $lz4 lz4 of $rows, WAL $(calc "$wal / $AB_N" 0) B a tweet"
    echo "$v $r $cpu $total $toast $((pglz + lz4)) $wal" >> "$W/ab"
    sql -d postgres -c "DROP DATABASE $db"
  done
done
med() { awk -v v="$1" -v c="$2" '$1 == v { print $c }' "$W/ab" | median; }
{
  echo
  echo "bronze.raw compression, $AB_N tweets a run, medians of $ROUNDS runs alternating:"
  echo
  echo "| variant | bronze MiB per 1M | of which TOAST | raw compressed | tweets/s | CPU µs/tweet | WAL B/tweet |"
  echo "|---|---:|---:|---:|---:|---:|---:|"
  for v in $variants; do
    echo "| $v | $(calc "$(med "$v" 4) / $AB_N * 1e6 / 1048576" 1) | $(calc "$(med "$v" 5) / $AB_N * 1e6 / 1048576" 1) | $(calc "100 * $(med "$v" 6) / $AB_N" 2) % | $(calc "$(med "$v" 2)" 0) | $(med "$v" 3) | $(calc "$(med "$v" 7) / $AB_N" 0) |"
  done
} | tee "$OUT/disk_ab.md"
for v in $variants; do
  k=${v//-/_}
  metric "disk_ab_${k}_bronze_mib_per_1m" "$(calc "$(med "$v" 4) / $AB_N * 1e6 / 1048576" 1)" MiB
  metric "disk_ab_${k}_raw_compressed_pct" "$(calc "100 * $(med "$v" 6) / $AB_N" 2)" %
  metric "disk_ab_${k}_tweets_per_s" "$(calc "$(med "$v" 2)" 0)" tweets/s
  metric "disk_ab_${k}_cpu_us_per_tweet" "$(med "$v" 3)" us
done
metric disk_ab_lz4_vs_pglz_bronze_bytes "$(ratio "$(med lz4 4)" "$(med pglz 4)")" x
metric disk_ab_lz4_vs_pglz_cpu "$(ratio "$(med lz4 3)" "$(med pglz 3)")" x
metric disk_ab_lz4_vs_pglz_tweets_per_s "$(ratio "$(med lz4 2)" "$(med pglz 2)")" x

# --- 3. what compression would save if the toaster ran on every message ------------------
# The same PROBE_N stored messages (one load, the default settings) copied into three tables
# whose rows also carry a 1.9 kB column that is never compressed (STORAGE EXTERNAL): every
# row is over the threshold, and the pad, short of toast_tuple_target by itself, stays in the
# row while the toaster compresses raw (the only compressible column), then goes out of line,
# so raw stays in the row, compressed if that saves anything (pglz: at least 25 %). raw
# STORAGE EXTERNAL is the baseline without compression.
# Each copy is timed by the backend's CPU time, ROUNDS rounds alternating.
fresh_db probe
load probe "$PROBE_N" > /dev/null
sql -d probe -c "CREATE TABLE msgs AS SELECT raw FROM bronze.tweets" \
    -c "CREATE TABLE pad AS SELECT string_agg(md5(i::text), '') AS p FROM generate_series(1, 60) i"
for m in none pglz lz4; do
  case $m in
    none) col="SET STORAGE EXTERNAL" ;;
    *) col="SET COMPRESSION $m" ;;
  esac
  sql -d probe -c "CREATE TABLE probe_$m (raw text, pad text)" \
      -c "ALTER TABLE probe_$m ALTER COLUMN raw $col, ALTER COLUMN pad SET STORAGE EXTERNAL"
done
: > "$W/probe"
for round in $(seq "$ROUNDS"); do
  for m in none pglz lz4; do
    sql -d probe -c "TRUNCATE probe_$m" -c "CHECKPOINT"
    c=$(sql -d probe -c "CREATE TEMP TABLE c0 AS SELECT $CPU AS t FROM pg_read_file('/proc/self/stat') AS s" \
                   -c "INSERT INTO probe_$m SELECT raw, p FROM msgs, pad" \
                   -c "SELECT round(($CPU - t) * 1e6 / $CLK / $PROBE_N, 2) FROM c0, pg_read_file('/proc/self/stat') AS s" | tail -1)
    echo "$m $c" >> "$W/probe"
  done
done
msg_bytes=$(sql -d probe -c "SELECT sum(octet_length(raw)) FROM msgs")
for m in none pglz lz4; do
  read -r stored compressed <<< "$(sql -d probe -F ' ' -c "SELECT sum(pg_column_size(raw)), count(*) FILTER (WHERE pg_column_compression(raw) IS NOT NULL) FROM probe_$m")"
  c=$(awk -v m="$m" '$1 == m { print $2 }' "$W/probe" | median)
  echo "$m $stored $compressed $c" >> "$W/probe_sum"
done
{
  echo
  echo "If every message were compressed ($PROBE_N stored messages, $(calc "$msg_bytes / $PROBE_N" 0) bytes each on average; CPU medians of $ROUNDS):"
  echo
  echo "| raw stored | bytes of raw a message | vs uncompressed | compressed rows | CPU µs a row copied | extra CPU a message |"
  echo "|---|---:|---:|---:|---:|---:|"
  base_cpu=$(awk '$1 == "none" { print $4 }' "$W/probe_sum")
  base_bytes=$(awk '$1 == "none" { print $2 }' "$W/probe_sum")
  while read -r m stored compressed c; do
    echo "| $m | $(calc "$stored / $PROBE_N" 0) | $(ratio "$stored" "$base_bytes")x | $(calc "100 * $compressed / $PROBE_N" 1) % | $c | $(calc "$c - $base_cpu" 2) µs |"
  done < "$W/probe_sum"
} | tee "$OUT/disk_probe.md"
while read -r m stored compressed c; do
  metric "disk_probe_${m}_raw_bytes_per_msg" "$(calc "$stored / $PROBE_N" 0)" B
  metric "disk_probe_${m}_cpu_us_per_msg" "$c" us
done < "$W/probe_sum"
