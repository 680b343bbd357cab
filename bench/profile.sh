#!/usr/bin/env bash
# bench/profile.sh - where the CPU goes on the end-to-end SQL path: `perf record` on the
# backend running SELECT tweetlake.load_generated(N, 1) (generator -> bronze -> trigger ->
# parse -> silver -> gold), on a server of its own. Prints the top symbols by self time,
# the split by binary, and (with call graphs) the top inclusive entries.
#
#   bash bench/profile.sh [N]        N tweets, default 200000
#
# Needs perf (Debian package linux-perf) and a kernel that lets root use perf events; if perf
# cannot record here it says so and stops (exit 0), `valgrind --tool=callgrind` being the
# fallback to run by hand. Output is kept in build/profile/.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
. "$ROOT/scripts/lib.sh"
N=${1:-200000}
TOP=${TOP:-25}
OUT=$ROOT/build/profile
mkdir -p "$OUT"

if ! command -v perf >/dev/null; then
  echo "profile: perf not found; installing linux-perf from Debian"
  apt-get install -y -q linux-perf >/dev/null 2>&1 || { echo "profile: skipped: could not install linux-perf"; exit 0; }
fi
if ! perf record -o "$OUT/probe.data" -- true >/dev/null 2>&1; then
  echo "profile: skipped: perf cannot record here (perf_event_paranoid=$(cat /proc/sys/kernel/perf_event_paranoid 2>/dev/null))"
  exit 0
fi
rm -f "$OUT/probe.data"

bench_scratch tweetlake-profile
sql() { bench_sql "$@"; }
sql -c "CREATE EXTENSION tweetlake"

# One session: a warm-up batch (plan caches), a pause while perf attaches, the profiled load.
PGAPPNAME=tweetlake-profile sql -c "SELECT tweetlake.load_generated(10000, 2)" -c "SELECT pg_sleep(3)" \
  -c "SELECT tweetlake.load_generated($N, 1)" > "$OUT/load.out" 2>&1 &
psql_pid=$!
pid=
for _ in $(seq 100); do
  pid=$(sql -c "SELECT pid FROM pg_stat_activity WHERE application_name = 'tweetlake-profile'")
  [ -n "$pid" ] && break
  sleep 0.1
done
[ -n "$pid" ] || { echo "profile: the backend did not show up"; exit 1; }
perf record -F 999 --call-graph dwarf,16384 -p "$pid" -o "$OUT/perf.data" > "$OUT/record.log" 2>&1 &
perf_pid=$!
t0=$(date +%s.%N)
wait "$psql_pid"
t1=$(date +%s.%N)
kill -INT "$perf_pid"
wait "$perf_pid" || true

set +o pipefail  # head closes the pipes early
echo "profile: SELECT tweetlake.load_generated($N, 1) on $(nproc) cores, $(pg_config --version)"
echo "profile: backend $pid, $(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }') s (3 s of it pg_sleep before the load)"
echo
echo "== by binary (self time) =="
perf report -i "$OUT/perf.data" --stdio --no-children --sort dso -g none 2>/dev/null |
  grep -v '^#' | grep -v '^$' | head -12
echo
echo "== top $TOP symbols (self time) =="
perf report -i "$OUT/perf.data" --stdio --no-children --sort dso,symbol -g none 2>/dev/null |
  grep -v '^#' | grep -v '^$' | head -"$TOP"
echo
echo "== top $TOP entries including callees (children) =="
perf report -i "$OUT/perf.data" --stdio --children --sort symbol -g none 2>/dev/null |
  grep -v '^#' | grep -v '^$' | head -"$TOP"
echo
# The same call-graph profile cut into the pipeline's parts (inclusive: a function with all it
# calls; parts overlap, e.g. index work happens inside the upserts). Symbols that perf lists
# twice (reached through different unwinds) are added up.
echo "== cost centres (inclusive) =="
perf report -i "$OUT/perf.data" --stdio --children --sort symbol -g none 2>/dev/null |
  awk -v list="$(cat <<'LIST'
tweetlake_load_generated|the whole load (generator + bronze INSERT + trigger)
AfterTriggerEndQuery|the statement trigger: parse, silver, sets, gold
tg_next|generator: next tweet (not part of the consumer path)
tweetlake_parse_tweet|parse_tweet: message -> typed row
json_tokener_parse_ex|  of which json-c tokenizer
heap_insert|heap inserts (bronze, silver, sets, gold)
ExecCheckIndexConstraints|ON CONFLICT pre-checks (index probes)
ExecInsertIndexTuples|index inserts (silver PK, sets, gold keys)
_bt_compare|  B-tree key comparisons
tuplestore_puttupleslot|CTE / transition-table tuplestores
BufFileWrite|  of which spilled to temp files (work_mem)
tuplesort_performsort|sorts (DISTINCT / ORDER BY of the upserts)
LookupTupleHashEntry|hash aggregation
XLogInsert|WAL records
ExecComputeStoredGenerated|bronze generated columns (tweet_id_of, partition_date)
exc_page_fault|page faults (first touch of shared buffers, allocations)
LIST
)" 'BEGIN { n = split(list, rows, "\n"); for (i = 1; i <= n; i++) { split(rows[i], f, "|"); sym[i] = f[1]; what[i] = f[2] } }
       $1 ~ /%$/ { p = $1; sub(/%/, "", p); for (i = 1; i <= n; i++) if ($4 == sym[i]) tot[i] += p }
       END { for (i = 1; i <= n; i++) if (sym[i] != "") printf "  %6.1f%%  %-28s %s\n", tot[i], sym[i], what[i] }'
echo
echo "profile: perf.data in $OUT (perf report -i $OUT/perf.data)"
