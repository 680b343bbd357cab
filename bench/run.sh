#!/usr/bin/env bash
# bench/run.sh - tweetlake's benchmarks (`make bench`, SCALE=smoke|default|large).
# Every figure is set against a baseline measured in this same run on this same machine:
#   generator   fast C serializer  vs  json-c objects (same model)  vs  Python json.dumps
#   end to end  load_generated -> bronze -> silver -> gold  vs  plain COPY of the same typed
#               rows into an unindexed table, plus where the time goes, stage by stage
# Prints "name value unit" lines, a Markdown table, and "bench: <n> metrics, <m> below goal".
# It measures; it does not gate: the exit status is 0 whatever the figures.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
. "$ROOT/scripts/lib.sh"

SCALE=${SCALE:-default}
case "$SCALE" in
  smoke)   N_GEN=100000;  N_PY=20000;  N_LOAD=20000 ;;
  default) N_GEN=1000000; N_PY=100000; N_LOAD=200000 ;;
  large)   N_GEN=3000000; N_PY=300000; N_LOAD=1000000 ;;
  *) echo "bench: SCALE must be smoke, default or large" >&2; exit 2 ;;
esac

OUT=$ROOT/build/bench
mkdir -p "$OUT"
METRICS=$OUT/metrics.txt
: > "$METRICS"

# metric NAME VALUE UNIT GOAL(optional, ">=x" or "<=x")
metric() {
  printf '%s %s %s\n' "$1" "$2" "$3"
  printf '%s|%s|%s|%s\n' "$1" "$2" "$3" "${4:-}" >> "$METRICS"
}
now() { date +%s.%N; }
rate() { awk -v n="$1" -v a="$2" -v b="$3" 'BEGIN { printf "%.0f", n / (b - a) }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", a / b }'; }
per_tweet_us() { awk -v n="$1" -v a="$2" -v b="$3" 'BEGIN { printf "%.2f", (b - a) * 1e6 / n }'; }

echo "bench: SCALE=$SCALE on $(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GiB, $(pg_config --version)"

# --- P2: the generator, outside the server -------------------------------------
cc -O2 -I"$ROOT/src" "$ROOT/src/generator.c" "$ROOT/bench/generator_bench.c" \
   $(pkg-config --cflags --libs json-c) -lm -o "$OUT/generator_bench"
"$OUT/generator_bench" bench "$N_GEN" > "$OUT/generator.txt"
gen_fast=$(awk '/^generator_fast_tweets_per_s/ {print $2}' "$OUT/generator.txt")
gen_jsonc=$(awk '/^generator_jsonc_tweets_per_s/ {print $2}' "$OUT/generator.txt")
gen_py=$(python3 "$ROOT/bench/generator_baseline.py" "$N_PY" | awk '/tweets_per_s/ {print $2}')
metric generator_c_tweets_per_s "$gen_fast" tweets/s ">=300000"
metric generator_jsonc_tweets_per_s "$gen_jsonc" tweets/s
metric generator_python_tweets_per_s "$gen_py" tweets/s
metric generator_c_vs_jsonc "$(ratio "$gen_fast" "$gen_jsonc")" x
metric generator_c_vs_python "$(ratio "$gen_fast" "$gen_py")" x

# --- a server of our own ---------------------------------------------------------
W=$(pg_owned_dir tweetlake-bench)
PORT=$(free_port)
cleanup() { as_pg pg_ctl -D "$W/data" -m immediate stop >/dev/null 2>&1 || true; rm -rf "$W"; }
trap cleanup EXIT
as_pg initdb -D "$W/data" -A trust -U postgres -E UTF8 --locale=C.UTF-8 >/dev/null
cat >> "$W/data/postgresql.conf" <<CONF
listen_addresses = ''
unix_socket_directories = '$W'
shared_buffers = 1GB
max_wal_size = 8GB
checkpoint_timeout = 30min
CONF
as_pg pg_ctl -D "$W/data" -o "-p $PORT" -l "$W/server.log" -w start >/dev/null
sql() { as_pg psql -X -q -v ON_ERROR_STOP=1 -h "$W" -p "$PORT" -U postgres -d postgres -tA "$@"; }
sql -c "CREATE EXTENSION tweetlake"

# generator inside the server (SRF overhead included)
t0=$(now); sql -c "SELECT count(*) FROM tweetlake.generate_tweets($N_GEN, 3)" >/dev/null; t1=$(now)
metric generator_sql_tweets_per_s "$(rate "$N_GEN" "$t0" "$t1")" tweets/s

# --- P1 (SQL path): load_generated to gold vs plain COPY of the same typed rows ----
t0=$(now); sql -c "SELECT tweetlake.load_generated($N_LOAD, 1)" >/dev/null; t1=$(now)
load_rate=$(rate "$N_LOAD" "$t0" "$t1")
[ "$(sql -c "SELECT count(*) FILTER (WHERE missing + extra + differing > 0) FROM tweetlake.verify()")" = 0 ] ||
  echo "bench: WARNING: verify() found differences after load_generated"

sql -c "COPY (SELECT * FROM silver.tweets) TO '$W/typed.copy'"
sql -c "CREATE TABLE copy_target (LIKE silver.tweets)"
t0=$(now); sql -c "COPY copy_target FROM '$W/typed.copy'"; t1=$(now)
copy_rate=$(rate "$N_LOAD" "$t0" "$t1")
metric copy_typed_rows_per_s "$copy_rate" rows/s
metric load_generated_to_gold_tweets_per_s "$load_rate" tweets/s ">=100000"
metric load_generated_vs_copy "$(ratio "$load_rate" "$copy_rate")" x ">=0.3"

# --- where the time goes: each stage alone on the same tweets ----------------------
N_STAGE=$((N_LOAD / 2))
sql -c "DROP EXTENSION tweetlake CASCADE" -c "CREATE EXTENSION tweetlake" \
    -c "CREATE UNLOGGED TABLE stage_raw AS SELECT t FROM tweetlake.generate_tweets($N_STAGE, 5) t"
t0=$(now); sql -c "SELECT count(p.error) FROM stage_raw, LATERAL tweetlake.parse_tweet(stage_raw.t) p" >/dev/null; t1=$(now)
metric stage_parse_us_per_tweet "$(per_tweet_us "$N_STAGE" "$t0" "$t1")" us
sql -c "ALTER TABLE bronze.tweets DISABLE TRIGGER process_batch"
t0=$(now); sql -c "INSERT INTO bronze.tweets (raw) SELECT t FROM stage_raw" >/dev/null; t1=$(now)
metric stage_bronze_insert_us_per_tweet "$(per_tweet_us "$N_STAGE" "$t0" "$t1")" us
cols=$(sql -c "SELECT string_agg('p.' || attname, ', ' ORDER BY attnum) FROM pg_attribute
               WHERE attrelid = 'tweetlake.parsed_tweet'::regclass AND attnum > 0 AND attname <> 'error'")
sql -c "CREATE TABLE stage_silver (LIKE silver.tweets INCLUDING DEFAULTS INCLUDING INDEXES)"
t0=$(now); sql -c "INSERT INTO stage_silver SELECT $cols FROM stage_raw, LATERAL tweetlake.parse_tweet(stage_raw.t) p" >/dev/null; t1=$(now)
silver_us=$(per_tweet_us "$N_STAGE" "$t0" "$t1")
metric stage_parse_and_silver_insert_us_per_tweet "$silver_us" us
sql -c "TRUNCATE bronze.tweets" -c "ALTER TABLE bronze.tweets ENABLE TRIGGER process_batch"
t0=$(now); sql -c "SELECT tweetlake.load_generated($N_STAGE, 5)" >/dev/null; t1=$(now)
metric stage_whole_pipeline_us_per_tweet "$(per_tweet_us "$N_STAGE" "$t0" "$t1")" us
metric copy_typed_row_us "$(awk -v r="$copy_rate" 'BEGIN { printf "%.2f", 1e6 / r }')" us

# --- report --------------------------------------------------------------------
{
  echo
  echo "| metric | value | unit | goal | status |"
  echo "|---|---:|---|---|---|"
  awk -F'|' '{
      status = "";
      if ($4 != "") {
        op = substr($4, 1, 2); g = substr($4, 3) + 0; v = $2 + 0;
        status = ((op == ">=" && v >= g) || (op == "<=" && v <= g)) ? "met" : "below goal";
      }
      printf "| %s | %s | %s | %s | %s |\n", $1, $2, $3, $4, status
    }' "$METRICS"
} | tee "$OUT/latest.md"
n=$(wc -l < "$METRICS")
below=$(grep -c "below goal" "$OUT/latest.md" || true)
echo
echo "bench: $n metrics, $below below goal"
exit 0
