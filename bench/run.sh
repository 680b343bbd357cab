#!/usr/bin/env bash
# bench/run.sh - tweetlake's benchmarks (`make bench`, SCALE=smoke|default|large).
# Every figure is set against a baseline measured in this same run on this same machine:
#   generator   fast C serializer  vs  json-c objects (same model)  vs  Python json.dumps
#   end to end  load_generated -> bronze -> silver -> gold  vs  plain COPY of the same typed
#               rows into an unindexed table, plus where the time goes, stage by stage
#               (bronze insert, parse, silver insert, gold + sets: µs per tweet)
#   bronze raw  INSERT of the same messages as text  vs  json  vs  jsonb
#   Kafka       generator (max rate) -> embedded broker -> consumer -> gold  vs  the COPY
#               ceiling and a `kcat -C | psql COPY` pipeline; freshness (produce -> commit)
#               p50/p99 at 1k and 10k tweets/s; the generator's rate accuracy over a minute;
#               consumer memory (RssAnon) over many messages; a plain Python consumer
#               (confluent-kafka + psycopg COPY, bench/python_consumer.py) into a bronze copy
#   P1 drain    a real Kafka topic of 8 partitions pre-filled with N_DRAIN tweets, drained
#               into gold by one consumer and by two (bench/drain.sh)  vs  a one-session COPY
#               of the same typed rows; two consumers vs one
#   P1 changes  the cost of updates and deletions (issue 15): N_DRAIN/5 messages (30k at
#               least) with 20 % updates and 2 % tombstones, drained by one consumer
#               (bench/drain.sh with DRAIN_CHANGES=1)  vs  as many messages of new tweets only,
#               in rounds that alternate the order
#   P1 partitions  bronze partitioned by day (schema 0.6.0, issue 20): N_DRAIN/5 tweets (30k at
#               least) drained by one consumer on the current schema  vs  on 0.5.0 (unpartitioned
#               bronze), rounds alternating (bench/drain.sh with DRAIN_AB_VERSION=0.5.0)
#   P1 sources  a second Kafka source (issue 18): N_DRAIN/5 tweets (30k at least) drained by
#               one source of two consumers  vs  the same tweets in two sources of half each,
#               one consumer each, rounds alternating (bench/sources.sh)
#   floor       what bronze's and silver's row writes alone cost (no parse, no gold, no Kafka)
#               vs  the same COPY baseline: the most any ratio to it can be; the pipeline vs
#               both (bench/floor.sh)
#   tenants     the batch with the tenant in every key (0.13.0, issue 18)  vs  the same
#               library on schema 0.12.0, each loading N_LOAD generated tweets in batches, four
#               rounds alternating the order (bench/ab_trigger.sh version:0.12.0)
#   retention   freshness at 10k tweets/s while tweetlake.maintain_partitions() drops an expired
#               partition every 2 s  vs  while it drops nothing (bench/retention.sh)
#   history     one 10k-tweet batch at growing history sizes  vs  tweetlake.rebuild_gold()
#               at the same size (P4)
#   dashboards  each chart of superset/dashboard_queries.sql on gold  vs  the same question
#               asked of silver (bench/silver_queries.sql), answers checked equal (P6)
# Prints "name value unit" lines, a Markdown table, and "bench: <n> metrics, <m> below goal".
# It measures; it does not gate: the exit status is 0 whatever the figures.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
. "$ROOT/scripts/lib.sh"

SCALE=${SCALE:-default}
case "$SCALE" in
  smoke)   N_GEN=100000;  N_PY=20000;  N_LOAD=20000;   W_KAFKA=5;  W_FRESH=5;  W_RATE=10; N_RSS=50000;   N_DRAIN=50000 ;;
  default) N_GEN=1000000; N_PY=100000; N_LOAD=200000;  W_KAFKA=20; W_FRESH=20; W_RATE=60; N_RSS=500000;  N_DRAIN=1000000 ;;
  large)   N_GEN=3000000; N_PY=300000; N_LOAD=1000000; W_KAFKA=60; W_FRESH=30; W_RATE=60; N_RSS=5000000; N_DRAIN=2000000 ;;
  *) echo "bench: SCALE must be smoke, default or large" >&2; exit 2 ;;
esac
# P4 history sizes (tweets in silver before the timed batch), P6 runs per chart (gold, silver)
case "$SCALE" in
  smoke)   P4_SIZES="0 50000";            P6_GOLD_RUNS=5; P6_SILVER_RUNS=5 ;;
  default) P4_SIZES="0 200000 1000000";   P6_GOLD_RUNS=5; P6_SILVER_RUNS=5 ;;
  large)   P4_SIZES="0 1000000 10000000"; P6_GOLD_RUNS=5; P6_SILVER_RUNS=3 ;;
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
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b + 0 == 0) print "nan"; else printf "%.3f", a / b }'; }
per_tweet_us() { awk -v n="$1" -v a="$2" -v b="$3" 'BEGIN { printf "%.2f", (b - a) * 1e6 / n }'; }

echo "bench: SCALE=$SCALE on $(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GiB, $(pg_config --version)"

# --- P2: the generator, outside the server -------------------------------------
cc -O2 -I"$ROOT/src" "$ROOT/src/tweet_model.c" "$ROOT/bench/generator_bench.c" \
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
bench_scratch tweetlake-bench "tweetlake.partitions = 16" "track_commit_timestamp = on"
# at exit, the real broker below (if it still runs) too
cleanup() {
  [ -n "${KAFKA_DIR:-}" ] && bash "$ROOT/test/kafka/kafka.sh" stop "$KAFKA_DIR" >/dev/null 2>&1
  bench_cleanup
}
trap cleanup EXIT
sql() { bench_sql "$@"; }
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
metric load_generated_vs_copy "$(ratio "$load_rate" "$copy_rate")" x ">=0.35"

# --- where the time goes: each stage alone on the same tweets ----------------------
# The per-stage breakdown of issue 14, in µs per tweet, each stage timed alone on the same
# N_STAGE stored messages: bronze insert (the trigger off), parse, silver insert (parse and
# insert into a copy of silver with its indexes, less the parse), and gold with the
# distinct-count sets (the whole trigger path less the three before it). The trigger path is
# the same messages inserted into bronze with the trigger on, tweetlake.batch_size per INSERT
# as the consumers write them, in one transaction: the four stages' sum, set against a COPY
# of one typed row. stage_whole_pipeline is load_generated of the same tweets (generating
# them included), as in the earlier runs.
N_STAGE=$((N_LOAD / 2))
us() { awk "BEGIN { printf \"%.2f\", $1 }"; }  # the arithmetic of $1, two decimals
sql -c "DROP EXTENSION tweetlake CASCADE" -c "CREATE EXTENSION tweetlake" \
    -c "CREATE UNLOGGED TABLE stage_raw AS SELECT row_number() OVER () AS i, t FROM tweetlake.generate_tweets($N_STAGE, 5) t" \
    -c "CREATE INDEX ON stage_raw (i)" -c "ANALYZE stage_raw"
t0=$(now); sql -c "SELECT count(p.error) FROM stage_raw, LATERAL tweetlake.parse_tweet(stage_raw.t) p" >/dev/null; t1=$(now)
parse_us=$(per_tweet_us "$N_STAGE" "$t0" "$t1")
sql -c "ALTER TABLE bronze.tweets DISABLE TRIGGER process_batch"
t0=$(now); sql -c "INSERT INTO bronze.tweets (raw) SELECT t FROM stage_raw" >/dev/null; t1=$(now)
bronze_us=$(per_tweet_us "$N_STAGE" "$t0" "$t1")
cols=$(sql -c "SELECT string_agg('p.' || attname, ', ' ORDER BY attnum) FROM pg_attribute
               WHERE attrelid = 'tweetlake.parsed_tweet'::regclass AND attnum > 0 AND attname <> 'error'")
sql -c "CREATE TABLE stage_silver (LIKE silver.tweets INCLUDING DEFAULTS INCLUDING INDEXES)"
t0=$(now); sql -c "INSERT INTO stage_silver (${cols//p./}) SELECT $cols FROM stage_raw, LATERAL tweetlake.parse_tweet(stage_raw.t) p" >/dev/null; t1=$(now)
parse_silver_us=$(per_tweet_us "$N_STAGE" "$t0" "$t1")
sql -c "TRUNCATE bronze.tweets" -c "ALTER TABLE bronze.tweets ENABLE TRIGGER process_batch"
t0=$(now)
sql -c "DO \$\$
        DECLARE b bigint := current_setting('tweetlake.batch_size')::bigint;
        BEGIN
          FOR k IN 0 .. (($N_STAGE - 1) / b)::integer LOOP
            INSERT INTO bronze.tweets (raw) SELECT t FROM stage_raw WHERE i > k * b AND i <= (k + 1) * b;
          END LOOP;
        END \$\$"
t1=$(now)
trigger_path_us=$(per_tweet_us "$N_STAGE" "$t0" "$t1")
[ "$(sql -c "SELECT count(*) FILTER (WHERE missing + extra + differing > 0) FROM tweetlake.verify()")" = 0 ] ||
  echo "bench: WARNING: verify() found differences after the stages' trigger path"
sql -c "DROP EXTENSION tweetlake CASCADE" -c "CREATE EXTENSION tweetlake"
t0=$(now); sql -c "SELECT tweetlake.load_generated($N_STAGE, 5)" >/dev/null; t1=$(now)
whole_us=$(per_tweet_us "$N_STAGE" "$t0" "$t1")
copy_row_us=$(us "1e6 / $copy_rate")
metric stage_bronze_insert_us_per_tweet "$bronze_us" us
metric stage_parse_us_per_tweet "$parse_us" us
metric stage_silver_insert_us_per_tweet "$(us "$parse_silver_us - $parse_us")" us
metric stage_gold_and_sets_us_per_tweet "$(us "$trigger_path_us - $bronze_us - $parse_silver_us")" us
metric stage_trigger_path_us_per_tweet "$trigger_path_us" us
metric copy_typed_row_us "$copy_row_us" us
metric stage_trigger_path_vs_copy_row "$(ratio "$trigger_path_us" "$copy_row_us")" x
metric stage_parse_and_silver_insert_us_per_tweet "$parse_silver_us" us
metric stage_whole_pipeline_us_per_tweet "$whole_us" us

# --- bronze raw storage: the same messages as text, json, jsonb ---------------------
for kind in text json jsonb; do
  sql -c "CREATE TABLE raw_$kind (raw $kind)"
  t0=$(now); sql -c "INSERT INTO raw_$kind SELECT t::$kind FROM stage_raw" >/dev/null; t1=$(now)
  eval "raw_${kind}_us=$(per_tweet_us "$N_STAGE" "$t0" "$t1")"
done
metric raw_insert_text_us "$raw_text_us" us
metric raw_insert_json_us "$raw_json_us" us
metric raw_insert_jsonb_us "$raw_jsonb_us" us
metric raw_jsonb_vs_text "$(ratio "$raw_jsonb_us" "$raw_text_us")" x

# --- P4: one 10k-tweet batch as the history grows, against a full rebuild_gold() ------
# The history is the same generator stream (one seed, so the same 100k users and the same
# trending tags per hour) over the same 7 days as the batch, so the batch's upserts land on
# existing gold rows and its distinct-count probes on full sets. It is loaded in bulk: bronze
# and silver in one statement per million with the trigger off, then rebuild_gold() (timed:
# the baseline), which gives exactly the gold the trigger would have kept (verify() checks).
# Each timed batch is a load_generated(10000) rolled back, then VACUUM, so every run sees
# the history at exactly N; a first run warms the session's plan caches and is not counted.
# Chunks and runs are shifted in time so that no two share tweet ids.
p4_label() {
  case $1 in
    0) echo 0 ;;
    *000000) echo "$(($1 / 1000000))M" ;;
    *000) echo "$(($1 / 1000))k" ;;
    *) echo "$1" ;;
  esac
}
sql -c "DROP TABLE IF EXISTS stage_raw, stage_silver, copy_target, raw_text, raw_json, raw_jsonb"
sql -c "DROP EXTENSION tweetlake CASCADE" -c "CREATE EXTENSION tweetlake"
P4_SEED=7
P4_T0=$(sql -c "SELECT date_trunc('hour', now()) - interval '7 days 12 hours'")
P4_CHUNK=${P4_CHUNK:-1000000}  # tweets per bulk statement of the history
P4_TABLES="bronze.tweets, bronze.dead_letters, silver.tweets, gold.popular_hashtags_by_hour,
  gold.active_users_by_day, gold.user_engagement, gold.tweet_volume_by_region, gold.tweet_metrics_by_language,
  gold.hourly_activity_summary, gold.engagement_by_type_hour, tweetlake.user_hour,
  tweetlake.mention_hour, tweetlake.region_hour_counts"
silver_cols=$(sql -c "SELECT string_agg(attname, ', ' ORDER BY attnum) FROM pg_attribute
                      WHERE attrelid = 'tweetlake.parsed_tweet'::regclass AND attnum > 0 AND attname <> 'error'")
parsed_cols=$(sql -c "SELECT string_agg('p.' || attname, ', ' ORDER BY attnum) FROM pg_attribute
                      WHERE attrelid = 'tweetlake.parsed_tweet'::regclass AND attnum > 0 AND attname <> 'error'")
p4_batch() {  # the SELECT of timed run $1 (its own time shift)
  echo "SELECT tweetlake.load_generated(10000, $P4_SEED,
          timestamptz '$P4_T0' + interval '17 min 3.5 s' + $1 * interval '1.25 s', '7 days');"
}
history=0 chunk=0 p4_sizes_done=""
declare -A p4_batch_ms
for size in $P4_SIZES; do
  label=$(p4_label "$size")
  sql -c "ALTER TABLE bronze.tweets DISABLE TRIGGER process_batch"
  while [ "$history" -lt "$size" ]; do
    n=$((size - history < P4_CHUNK ? size - history : P4_CHUNK))
    sql -c "WITH b AS (
              INSERT INTO bronze.tweets (raw)
              SELECT t FROM tweetlake.generate_tweets($n, $P4_SEED,
                  timestamptz '$P4_T0' + $chunk * interval '67 min 13 s', '7 days') t
              RETURNING raw)
            INSERT INTO silver.tweets ($silver_cols)
            SELECT $parsed_cols FROM b, LATERAL tweetlake.parse_tweet(b.raw) p
            WHERE p.error IS NULL
            ON CONFLICT (tweet_id, tenant) DO NOTHING" >/dev/null
    history=$((history + n)) chunk=$((chunk + 1))
  done
  sql -c "ALTER TABLE bronze.tweets ENABLE TRIGGER process_batch"
  sql -c "VACUUM ANALYZE $P4_TABLES"
  in_silver=$(sql -c "SELECT count(*) FROM silver.tweets")
  [ "$in_silver" = "$size" ] || echo "bench: note: P4 history at $label holds $in_silver tweets in silver"
  t0=$(now); sql -c "SELECT tweetlake.rebuild_gold()" >/dev/null; t1=$(now)
  rebuild_ms=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", (b - a) * 1000 }')
  sql -c "VACUUM ANALYZE $P4_TABLES"
  {
    for r in 0 1 2 3; do  # run 0 warms up
      echo "BEGIN;"
      [ "$r" -gt 0 ] && echo '\timing on'
      p4_batch "$r"
      echo '\timing off'
      echo "ROLLBACK;"
      echo "VACUUM $P4_TABLES;"
    done
  } > "$OUT/p4_batches.sql"
  batch_ms=$(sql -f "$OUT/p4_batches.sql" | awk '/^Time:/ { print $2 }' | median)
  metric "p4_batch_ms_at_$label" "$batch_ms" ms
  metric "p4_rebuild_gold_ms_at_$label" "$rebuild_ms" ms
  p4_batch_ms[$label]=$batch_ms
  p4_sizes_done="$p4_sizes_done $label"
done
first=${p4_sizes_done# }; first=${first%% *}; last=${p4_sizes_done##* }
metric p4_batch_growth_x "$(ratio "${p4_batch_ms[$last]}" "${p4_batch_ms[$first]}")" x "<=1.2"
metric "p4_batch_vs_rebuild_at_$last" "$(ratio "${p4_batch_ms[$last]}" "$rebuild_ms")" x
# one batch committed on top of the largest history, then gold against a full recompute
sql -c "$(p4_batch 4)" >/dev/null
[ "$(sql -c "SELECT count(*) FILTER (WHERE missing + extra + differing > 0) FROM tweetlake.verify()")" = 0 ] ||
  echo "bench: WARNING: verify() found differences after the P4 batches"

# --- P6: the dashboards' chart SQL on gold vs the same questions asked of silver ------
# At the largest P4 history. Each chart's query runs once to warm up, then P6_*_RUNS times
# in one session (psql \timing, rows fetched and discarded); the median counts. Charts 11-13
# read worker status and dead letters and have no silver twin (see bench/silver_queries.sql).
sql -c "VACUUM ANALYZE"
python3 "$ROOT/bench/charts.py" time-script "$ROOT/superset/dashboard_queries.sql" "$P6_GOLD_RUNS" > "$OUT/p6_gold.sql"
python3 "$ROOT/bench/charts.py" time-script "$ROOT/bench/silver_queries.sql" "$P6_SILVER_RUNS" > "$OUT/p6_silver.sql"
sql -f "$OUT/p6_gold.sql" | python3 "$ROOT/bench/charts.py" time-parse > "$OUT/p6_gold.txt"
sql -f "$OUT/p6_silver.sql" | python3 "$ROOT/bench/charts.py" time-parse > "$OUT/p6_silver.txt"
# same rows? (LIMITs dropped so that ties at the cut cannot differ; multisets of rows)
python3 "$ROOT/bench/charts.py" compare-script "$ROOT/superset/dashboard_queries.sql" "$ROOT/bench/silver_queries.sql" > "$OUT/p6_compare.sql"
sql -F ' ' -f "$OUT/p6_compare.sql" | while read -r c only_gold only_silver; do
  [ "$only_gold" = 0 ] && [ "$only_silver" = 0 ] ||
    echo "bench: WARNING: P6 chart $c: gold and silver answers differ ($only_gold rows only in gold, $only_silver only in silver)"
done
while read -r c gold_ms; do
  metric "p6_chart${c}_gold_ms" "$gold_ms" ms "<=50"
  silver_ms=$(awk -v c="$c" '$1 == c { print $2 }' "$OUT/p6_silver.txt")
  if [ -n "$silver_ms" ]; then
    metric "p6_chart${c}_silver_ms" "$silver_ms" ms
    metric "p6_chart${c}_silver_vs_gold_x" "$(ratio "$silver_ms" "$gold_ms")" x
  fi
done < "$OUT/p6_gold.txt"

# --- Kafka: the workers on the embedded broker ---------------------------------------
set_rate() { sql -c "ALTER SYSTEM SET tweetlake.generator_rate = $1" -c "SELECT pg_reload_conf()" >/dev/null; }
stored() { sql -c "SELECT count(*) FROM bronze.tweets"; }
consumer_messages() { sql -c "SELECT coalesce(sum(messages), 0) FROM tweetlake.status WHERE role = 'consumer' AND pid = ${1:-0}"; }
sql -c "DROP EXTENSION tweetlake CASCADE" -c "CREATE EXTENSION tweetlake"
for _ in $(seq 60); do
  [ -n "$(sql -c "SELECT tweetlake.bootstrap_servers()")" ] && break; sleep 1
done
BOOTSTRAP=$(sql -c "SELECT tweetlake.bootstrap_servers()")

# P1: producer as fast as it goes, consumer into gold: rows stored per second over
# $W_KAFKA s after a warm-up of $1 s; prints "<stored per s> <generator's rate_10s>"
flat_out_rate() {
  local c0 c1 t0 t1 produced
  set_rate -1
  sql -c "SELECT tweetlake.start()" >/dev/null
  sleep "$1"
  c0=$(stored); t0=$(now); sleep "$W_KAFKA"; c1=$(stored); t1=$(now)
  produced=$(sql -c "SELECT round(rate_10s) FROM tweetlake.status WHERE role = 'generator'")
  sql -c "SELECT tweetlake.stop()" >/dev/null
  echo "$(rate "$((c1 - c0))" "$t0" "$t1") $produced"
}
read -r kafka_rate produced <<< "$(flat_out_rate 5)"
metric kafka_to_gold_tweets_per_s "$kafka_rate" tweets/s ">=100000"
metric kafka_to_gold_vs_copy "$(ratio "$kafka_rate" "$copy_rate")" x ">=0.3"
metric generator_worker_produce_rate_10s "$produced" tweets/s

# baseline: kcat reads the same topic, psql COPYs the raw messages into an unindexed table
N_KC=$(sql -c "SELECT least(count(*), 50000) FROM bronze.tweets")
sql -c "CREATE TABLE kcat_raw (raw text)"
t0=$(now)
kcat -C -b "$BOOTSTRAP" -t tweets -o beginning -e -q -c "$N_KC" -f '%s
' 2>/dev/null |
  sql -c "COPY kcat_raw FROM STDIN WITH (FORMAT csv, DELIMITER E'', QUOTE E'')"
t1=$(now)
n_kc=$(sql -c "SELECT count(*) FROM kcat_raw")
kcat_rate=$(rate "$n_kc" "$t0" "$t1")
metric kcat_psql_copy_raw_per_s "$kcat_rate" msgs/s
metric kafka_to_gold_vs_kcat_copy "$(ratio "$kafka_rate" "$kcat_rate")" x

# baseline: a plain Python consumer (confluent-kafka + psycopg COPY, bench/python_consumer.py)
# writes the same bronze rows (raw + Kafka coordinates, into a copy of bronze.tweets without
# its trigger) and the offsets in the same transaction; from PyPI into build/bench-venv
python_consumer() {
  local venv=$ROOT/build/bench-venv log=$OUT/python_consumer.log
  if ! cmp -s "$ROOT/bench/requirements.txt" "$venv/requirements.txt" 2>/dev/null; then
    rm -rf "$venv"
    if ! { python3 -m venv "$venv" && "$venv/bin/pip" install -q --disable-pip-version-check \
             -r "$ROOT/bench/requirements.txt"; } > "$log" 2>&1; then
      echo "bench: python consumer skipped: could not install bench/requirements.txt into $venv ($(tail -1 "$log"))"
      rm -rf "$venv"
      return 0
    fi
    cp "$ROOT/bench/requirements.txt" "$venv/requirements.txt"
  fi
  sql -c "CREATE TABLE py_bronze (LIKE bronze.tweets INCLUDING DEFAULTS INCLUDING GENERATED)" \
      -c "CREATE TABLE py_offsets (topic text, partition integer, next_offset bigint NOT NULL,
                                   PRIMARY KEY (topic, partition))"
  if ! "$venv/bin/python" "$ROOT/bench/python_consumer.py" --bootstrap "$BOOTSTRAP" --topic tweets \
         --dsn "host=$W port=$PORT user=postgres dbname=postgres" --table py_bronze \
         --offsets-table py_offsets --count "$N_KC" > "$OUT/python_consumer.txt" 2>> "$log"; then
    echo "bench: python consumer skipped: it failed ($(tail -1 "$log"))"
    return 0
  fi
  py_rate=$(awk '/^python_consumer_msgs_per_s/ { print $2 }' "$OUT/python_consumer.txt")
  [ "$(sql -c "SELECT count(*) FROM py_bronze")" = "$(awk '/^python_consumer_msgs / { print $2 }' "$OUT/python_consumer.txt")" ] ||
    echo "bench: WARNING: python consumer: rows in py_bronze differ from messages it counted"
  metric python_consumer_msgs_per_s "$py_rate" msgs/s
  metric kafka_to_gold_vs_python_consumer "$(ratio "$kafka_rate" "$py_rate")" x
}
python_consumer

# catch up with whatever the broker still holds, so the next phase starts level
drain() {
  set_rate 0
  sql -c "SELECT tweetlake.start()" >/dev/null
  for _ in $(seq 120); do
    [ "$(sql -c "SELECT coalesce(sum(lag), 0) FROM tweetlake.consumer_lag")" = 0 ] && break
    sleep 1
  done
  sql -c "SELECT tweetlake.stop()" >/dev/null
}

# P3: freshness, produce time (Kafka timestamp) -> commit of the batch that stored it
freshness() {
  local r=$1 start stop
  drain
  set_rate "$r"
  sql -c "SELECT tweetlake.start()" >/dev/null
  sleep 5
  start=$(sql -c "SELECT now()"); sleep "$W_FRESH"; stop=$(sql -c "SELECT now()")
  sleep 3
  sql -c "SELECT tweetlake.stop()" >/dev/null
  sql -c "SELECT round((percentile_cont(0.5) WITHIN GROUP (ORDER BY d))::numeric, 1) || ' ' ||
                 round((percentile_cont(0.99) WITHIN GROUP (ORDER BY d))::numeric, 1)
          FROM (SELECT extract(epoch FROM pg_xact_commit_timestamp(xmin) - kafka_timestamp) * 1000 AS d
                FROM bronze.tweets WHERE kafka_timestamp BETWEEN '$start' AND '$stop') f"
}
read -r p50 p99 <<< "$(freshness 1000)"
metric freshness_1k_p50_ms "$p50" ms
metric freshness_1k_p99_ms "$p99" ms "<=500"
read -r p50 p99 <<< "$(freshness 10000)"
metric freshness_10k_p50_ms "$p50" ms
metric freshness_10k_p99_ms "$p99" ms "<=500"

# the generator's token bucket over a longer window
set_rate 2000
sql -c "SELECT tweetlake.start()" >/dev/null
sleep 3
m0=$(sql -c "SELECT messages FROM tweetlake.status WHERE role = 'generator'"); t0=$(now)
sleep "$W_RATE"
m1=$(sql -c "SELECT messages FROM tweetlake.status WHERE role = 'generator'"); t1=$(now)
sql -c "SELECT tweetlake.stop()" >/dev/null
accuracy=$(awk -v m="$((m1 - m0))" -v a="$t0" -v b="$t1" 'BEGIN { printf "%.4f", m / (b - a) / 2000 }')
metric generator_rate_accuracy_2000_per_s "$accuracy" x
metric generator_rate_error_pct "$(awk -v a="$accuracy" 'BEGIN { d = (a - 1) * 100; if (d < 0) d = -d; printf "%.2f", d }')" % "<=2"

# P5: consumer memory over many messages (RssAnon: its own heap, not shared buffers), at a
# rate it keeps up with: steady state, not the reconnects of a broker dropping unread data.
# RssAnon swings by tens of MB as glibc trims and refills the arenas of librdkafka's
# threads, so it is sampled every 2 s: start and end are the medians of the first and the
# last fifth of the samples, and the largest sample is reported too.
drain
set_rate 8000
started=$(sql -c "SELECT now()")
sql -c "SELECT tweetlake.start()" >/dev/null
cpid=
for _ in $(seq 120); do
  # the consumer started by this start(), not the previous one still finishing
  cpid=$(sql -c "SELECT pid FROM tweetlake.status WHERE role = 'consumer' AND pid IS NOT NULL AND started_at > '$started'")
  # warm up first: prefetch queue, plan caches and allocator reach their working size
  [ -n "$cpid" ] && [ "$(consumer_messages "$cpid")" -gt 100000 ] && break
  sleep 1
done
rss_sample() { awk '/^RssAnon/ {print $2}' "/proc/$cpid/status" 2>/dev/null; }
rss_sample > "$OUT/p5_rss.txt"
base=$(consumer_messages "$cpid")
deadline=$(( $(date +%s) + 900 ))
while [ "$(( $(consumer_messages "$cpid") - base ))" -lt "$N_RSS" ]; do
  [ -d "/proc/$cpid" ] || { echo "bench: consumer $cpid went away"; break; }
  [ "$(date +%s)" -lt "$deadline" ] || { echo "bench: consumer did not reach $N_RSS messages in 15 min"; break; }
  sleep 2
  rss_sample >> "$OUT/p5_rss.txt"
done
n_rss=$(( $(consumer_messages "$cpid") - base ))
fifth() {  # median of the first (head) or last (tail) fifth of the samples
  local k=$(( ($(wc -l < "$OUT/p5_rss.txt") + 4) / 5 ))
  "$1" -n "$k" "$OUT/p5_rss.txt" | median
}
rss0=$(fifth head)
rss1=$(fifth tail)
rss_max=$(sort -n "$OUT/p5_rss.txt" | tail -1)
sql -c "SELECT tweetlake.stop()" >/dev/null
metric consumer_rss_anon_start_kb "$rss0" kB
metric consumer_rss_anon_after_kb "$rss1" kB
metric consumer_rss_anon_max_kb "${rss_max:-0}" kB
metric consumer_messages_between "$n_rss" msgs
metric consumer_rss_growth_pct "$(awk -v a="$rss0" -v b="$rss1" 'BEGIN { printf "%.1f", (b - a) * 100 / a }')" % "<=5"

# --- P1 on a real Apache Kafka broker ---------------------------------------------
# test/kafka/kafka.sh: Kafka 4.1.1 (KRaft, one node) from Maven Central jars on the JDK, the
# broker of the test suite, on the same machine. Skipped, with the reason, where Kafka
# cannot be installed (no JDK or Maven).
real_broker() {
  local log=$OUT/kafka.log
  if ! bash "$ROOT/test/kafka/kafka.sh" install > "$log" 2>&1; then
    echo "bench: real-broker P1 skipped: Kafka could not be installed ($(tail -1 "$log"))"
    return 1
  fi
  KAFKA_DIR=$W/kafka
  KAFKA_BOOT=$(bash "$ROOT/test/kafka/kafka.sh" start "$KAFKA_DIR" 2>> "$log" | sed -n 's/^BOOTSTRAP=//p')
  if [ -z "$KAFKA_BOOT" ]; then
    echo "bench: real-broker P1 skipped: the broker did not start (see $log)"
    return 1
  fi
}

# P1 drain (issue 14, goal 1), first on the fresh broker: a topic of 8 partitions filled
# with N_DRAIN tweets while no consumer runs, drained by one consumer and by two, against a
# COPY of the same typed rows; bench/drain.sh, in a server of its own.
# relay_metrics FILE: the "name value unit" lines a phase script printed, as metrics with
# their goals; its other lines (notes, warnings) as they are.
relay_metrics() {
  local line name value unit goal
  while IFS= read -r line; do
    if ! [[ $line =~ ^[a-z0-9_]+\ [^\ ]+\ [^\ ]+$ ]]; then
      echo "$line"
      continue
    fi
    read -r name value unit <<< "$line"
    case $name in
      drain_1c_vs_copy) goal=">=0.3" ;;
      drain_2c_vs_1c) goal=">=1.5" ;;
      drain_changes_vs_inserts) goal=">=0.8" ;;
      drain_ab_vs_0_5_0) goal=">=0.95" ;;
      sources_two_vs_one) goal=">=0.9" ;;
      retention_fresh_dropping_p99_ms) goal="<=500" ;;
      peers_tweetlake_vs_clickhouse|peers_tweetlake_vs_clickhouse_rows|peers_tweetlake_vs_flink) goal=">=1.0" ;;
      peers_answers_equal) goal=">=1" ;;
      *) goal= ;;
    esac
    metric "$name" "$value" "$unit" "$goal"
  done < "$1"
}

p1_drain() {
  local rc=0
  DRAIN_KAFKA_DIR=$KAFKA_DIR bash "$ROOT/bench/drain.sh" "$N_DRAIN" > "$OUT/drain.txt" || rc=$?
  [ "$rc" = 0 ] || echo "bench: WARNING: bench/drain.sh failed (exit $rc; see $OUT/drain.log)"
  relay_metrics "$OUT/drain.txt"
}

# P1 changes (issue 15): on the same broker and settings, a topic of N_DRAIN/5 messages (at
# least 30000: three batches) with 20 % updates and 2 % tombstones against one of new tweets
# only, each drained by one consumer in two rounds that alternate the order; bench/drain.sh
# with DRAIN_CHANGES=1 (about 3 min at the default scale).
p1_changes() {
  local rc=0 n=$((N_DRAIN / 5 > 30000 ? N_DRAIN / 5 : 30000))
  DRAIN_KAFKA_DIR=$KAFKA_DIR DRAIN_CHANGES=1 bash "$ROOT/bench/drain.sh" "$n" > "$OUT/drain_changes.txt" || rc=$?
  [ "$rc" = 0 ] || echo "bench: WARNING: DRAIN_CHANGES=1 bench/drain.sh failed (exit $rc; see $OUT/drain_changes.log)"
  relay_metrics "$OUT/drain_changes.txt"
}

# P1 partitions (issue 20): the same drain on the current schema against 0.5.0, whose bronze
# is not partitioned; bench/drain.sh with DRAIN_AB_VERSION (two rounds, the order alternating).
p1_partitions() {
  local rc=0 n=$((N_DRAIN / 5 > 30000 ? N_DRAIN / 5 : 30000))
  DRAIN_KAFKA_DIR=$KAFKA_DIR DRAIN_AB_VERSION=0.5.0 bash "$ROOT/bench/drain.sh" "$n" > "$OUT/drain_partitions.txt" || rc=$?
  [ "$rc" = 0 ] || echo "bench: WARNING: DRAIN_AB_VERSION=0.5.0 bench/drain.sh failed (exit $rc; see $OUT/drain_ab.log)"
  relay_metrics "$OUT/drain_partitions.txt"
}

# P1 sources (issue 18): a second source's cost, on the same broker (bench/sources.sh, three
# rounds, the order alternating).
p1_sources() {
  local rc=0 n=$((N_DRAIN / 5 > 30000 ? N_DRAIN / 5 : 30000))
  DRAIN_KAFKA_DIR=$KAFKA_DIR bash "$ROOT/bench/sources.sh" "$n" 3 > "$OUT/sources.txt" || rc=$?
  [ "$rc" = 0 ] || echo "bench: WARNING: bench/sources.sh failed (exit $rc; see $OUT/sources.log)"
  relay_metrics "$OUT/sources.txt"
}

# The same measurement as on the embedded broker: a topic of 16 partitions, the producer
# flat out, one consumer, rows stored per second.
real_kafka() {
  local log=$OUT/kafka.log
  if ! bash "$ROOT/test/kafka/kafka.sh" topic "$KAFKA_DIR" tweets 16 >> "$log" 2>&1; then
    echo "bench: real-broker P1 skipped: could not create the topic (see $log)"
    return 0
  fi
  sql -c "DROP EXTENSION tweetlake CASCADE" -c "CREATE EXTENSION tweetlake"
  sql -c "ALTER SYSTEM SET tweetlake.brokers = '$KAFKA_BOOT'" -c "SELECT pg_reload_conf()" >/dev/null
  local real_rate produced_real
  read -r real_rate produced_real <<< "$(flat_out_rate 10)"
  sql -c "ALTER SYSTEM RESET tweetlake.brokers" -c "SELECT pg_reload_conf()" >/dev/null
  metric kafka_real_to_gold_tweets_per_s "$real_rate" tweets/s ">=100000"
  metric kafka_real_to_gold_vs_copy "$(ratio "$real_rate" "$copy_rate")" x ">=0.3"
  metric kafka_real_vs_embedded "$(ratio "$real_rate" "$kafka_rate")" x
  metric generator_worker_produce_rate_10s_real "$produced_real" tweets/s
}

# Side by side with ClickHouse (chdb) and Flink SQL on the same kind of topic (bench/peers/),
# drained and then at a steady 10k tweets/s: their installs are large (~1.8 GB under build/),
# so only with PEERS=1.
p_peers() {
  local rc=0
  echo "bench: peers: ClickHouse and Flink SQL drain the same topic (bench/peers/run.sh $N_DRAIN)"
  DRAIN_KAFKA_DIR=$KAFKA_DIR bash "$ROOT/bench/peers/run.sh" "$N_DRAIN" > "$OUT/peers.txt" || rc=$?
  [ "$rc" = 0 ] || echo "bench: WARNING: bench/peers/run.sh failed (exit $rc)"
  relay_metrics "$OUT/peers.txt"
  echo "bench: peers: freshness at 10k tweets/s of each, measured alike (bench/peers/freshness.sh 10000 60)"
  rc=0
  PEERS_KAFKA_DIR=$KAFKA_DIR bash "$ROOT/bench/peers/freshness.sh" 10000 60 > "$OUT/peers-freshness.txt" || rc=$?
  [ "$rc" = 0 ] || echo "bench: WARNING: bench/peers/freshness.sh failed (exit $rc)"
  relay_metrics "$OUT/peers-freshness.txt"
}

if real_broker; then
  p1_drain
  p1_changes
  p1_partitions
  p1_sources
  real_kafka
  [ "${PEERS:-0}" = 1 ] && p_peers
fi
if [ -n "${KAFKA_DIR:-}" ]; then
  bash "$ROOT/test/kafka/kafka.sh" stop "$KAFKA_DIR" >> "$OUT/kafka.log" 2>&1 || true
  KAFKA_DIR=
fi

# The floor under issue 14's goals: bronze's and silver's row writes alone against the same
# COPY baseline, and the pipeline against both, in a server of its own (bench/floor.sh).
rc=0
bash "$ROOT/bench/floor.sh" "$N_LOAD" 3 > "$OUT/floor.txt" || rc=$?
[ "$rc" = 0 ] || echo "bench: WARNING: bench/floor.sh failed (exit $rc)"
relay_metrics "$OUT/floor.txt"

# Tenants (issue 18): what the tenant in every key costs a batch, A/B in one server: schema
# 0.12.0 (no tenant) against the installed one, on the installed library.
rc=0
bash "$ROOT/bench/ab_trigger.sh" version:0.12.0 "$N_LOAD" 4 > "$OUT/tenants_ab.txt" 2>&1 || rc=$?
if [ "$rc" != 0 ]; then
  echo "bench: WARNING: bench/ab_trigger.sh version:0.12.0 failed (exit $rc; see $OUT/tenants_ab.txt)"
else
  grep '^round ' "$OUT/tenants_ab.txt"
  line=$(grep '^ab_trigger: ' "$OUT/tenants_ab.txt" | tail -1)
  echo "$line"
  metric tenants_batch_vs_0_12_0 "$(sed -n 's/.*installed\/before: throughput \([0-9.]*\),.*/\1/p' <<< "$line")" x ">=0.9"
  metric tenants_batch_cpu_vs_0_12_0 "$(sed -n 's/.*CPU a tweet \([0-9.]*\)$/\1/p' <<< "$line")" x "<=1.1"
fi

# Retention (issue 20): freshness while partitions are dropped, in a server of its own with
# the embedded broker (bench/retention.sh; about W_FRESH x 4 s plus the setup).
rc=0
bash "$ROOT/bench/retention.sh" "$W_FRESH" 10000 > "$OUT/retention.txt" || rc=$?
[ "$rc" = 0 ] || echo "bench: WARNING: bench/retention.sh failed (exit $rc)"
relay_metrics "$OUT/retention.txt"

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
