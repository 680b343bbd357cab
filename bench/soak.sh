#!/usr/bin/env bash
# bench/soak.sh - the pipeline for a long while under the faults of real life, on a real Apache
# Kafka broker (test/kafka/kafka.sh), then checked: nothing lost, nothing twice, gold exact,
# memory flat, fresh, dashboards fast.
#
#   bash bench/soak.sh [MINUTES] [RATE]        default 30 minutes at 2,000 tweets/s
#   KILL_EVERY=60 BROKER_EVERY=120 bash bench/soak.sh 5     the faults more often (seconds)
#   KILL_EVERY=0 BROKER_EVERY=0 REBUILD=0 PG_RESTART=0 bash bench/soak.sh 21 8000
#                                   no faults: ~10M messages at a steady rate, for memory
#                                   (0 turns a fault off; BROKER_EVERY=120 alone: reconnect churn)
#
# What runs, on a server of its own (bench_server's settings, tweetlake.autostart = on):
#   - the generator worker at RATE tweets/s into a topic of 8 partitions, two consumers;
#   - a side producer (kcat) sending one bad message a second into the same topic (malformed
#     JSON, a wrong type, a NUL byte, a missing field, bytes that are not UTF-8, in turn);
#   - a dashboard: every second each chart of superset/dashboard_queries.sql, timed;
#   - faults: a consumer killed every 5 minutes (KILL_EVERY s; the launcher restarts it), the
#     broker restarted every 10 minutes (BROKER_EVERY s), Postgres stopped with -m immediate once (at half time) and
#     started again, tweetlake.rebuild_gold() once (at a third);
#   - every second, each worker's RssAnon; every 10 s, the same (launcher, generator, consumers, from /proc) split by
#     where it lies (/proc/PID/smaps): glibc's main heap (the backend's palloc blocks, what the
#     worker's own thread mallocs), the heaps of glibc's thread arenas (64 MiB-aligned mappings:
#     what librdkafka's threads malloc, fetched messages among it) and the rest (large mmap'd
#     blocks, stacks, the libraries' data).
# At the end the generator stops, the consumers drain the topic, and the script prints one
# screen: every offset of every partition in bronze or the dead letters exactly once (against
# the broker's own end offsets), every bad message a dead letter, verify() zero, freshness
# p50/p99 over the whole run (produce time -> commit of the batch that stored it), the
# dashboard queries' p50/p99, each worker's RssAnon (median of the second fifth of the run,
# of the last fifth, their ratio, and the most; from the samples a second, then from those
# every 10 s), and the count of each fault injected.
# (glibc's malloc_stats() is not called in the workers by gdb any more: a call that found an
# arena's lock held by a stopped librdkafka thread aborted a consumer.  The split above is read
# from outside, without stopping the worker.)
# SOAK_SQL=FILE: SQL run after CREATE EXTENSION, before the workers start (a schema change to try
# under the same load, e.g. an index a dashboard needs).
# AB_SETTING='name = value': an A/B of a setting the workers read when they start, in one run:
# once both consumers run, the setting is made (ALTER SYSTEM) and consumer 0 is restarted with
# it, consumer 1 goes on without; the summary's per-worker lines compare them.  For runs without
# consumer kills and the Postgres restart (KILL_EVERY=0 PG_RESTART=0), which would restart
# consumer 1 with it too.
# The samples stay in build/soak/ (rss1.txt: seconds, role, index, pid, RssAnon kB, a second;
# rss.txt: seconds, role, index, pid, RssAnon kB, main heap kB,
# thread arenas kB, the rest kB; lag.txt: seconds, backlog; contexts.txt: seconds, consumer, kB
# of its memory contexts; dash.txt, faults.txt, summary.txt, and rss.png when
# python3 has matplotlib: scripts/install-deps.sh --test installs Debian's).
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
. "$ROOT/scripts/lib.sh"
MINUTES=${1:-30}
RATE=${2:-2000}
KILL_EVERY=${KILL_EVERY:-300}
BROKER_EVERY=${BROKER_EVERY:-600}
REBUILD=${REBUILD:-1}
PG_RESTART=${PG_RESTART:-1}
TOPIC=soak
PARTITIONS=8
KAFKA=$ROOT/test/kafka/kafka.sh
OUT=$ROOT/build/soak
mkdir -p "$OUT"
rm -f "$OUT"/*.txt "$OUT"/rss.png
: > "$OUT/faults.txt"
LOG=$OUT/soak.log
: > "$LOG"
say() { echo "soak: $*" | tee -a "$OUT/summary.txt"; }
fault() { echo "$(date +%s) $*" >> "$OUT/faults.txt"; echo "soak: $(date +%T) $*" >> "$LOG"; }

W=$(pg_owned_dir tweetlake-soak)
PORT=$(free_port)
KDIR=$W/kafka
# Disk: ~4 kB a message at the peak (the broker's log, bronze, silver and their indexes, WAL
# up to max_wal_size, and the temporary files of verify()'s joins at the end); 10.8M messages
# at 10k/s ran out of 37 GB in verify().
need_gb=$(( RATE * MINUTES * 60 * 4 / 1024 / 1024 + 1 ))
free_gb=$(df -P -k "$W" | awk 'NR == 2 { print int($4 / 1024 / 1024) }')
if [ "$free_gb" -lt "$need_gb" ]; then
  echo "soak: WARNING: about $need_gb GB of disk needed under $W, $free_gb GB free: the checks at the end may fail"
fi
own_broker=1   # the broker in KDIR is this run's: bench_cleanup stops it
pids=()
# at exit: the loops below stopped, the server's log copied to $OUT (while the server still
# runs), then bench_cleanup: the server, the broker, W
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
  cp "$W/server.log" "$OUT/server.log" 2>/dev/null
  bench_cleanup
}
trap cleanup EXIT

command -v kcat >/dev/null || apt-get install -y -q kcat >/dev/null 2>&1
if ! bash "$KAFKA" install >> "$LOG" 2>&1 || ! bash "$KAFKA" start "$KDIR" >> "$LOG" 2>&1; then
  echo "soak: skipped: no Kafka broker (see $LOG)"; exit 0
fi
BOOT=$(sed -n 's/^BOOTSTRAP=//p' "$KDIR/ports")
bash "$KAFKA" topic "$KDIR" "$TOPIC" "$PARTITIONS" >> "$LOG" 2>&1 || { echo "soak: could not create the topic"; exit 1; }

bench_server "$W" "$PORT" "track_commit_timestamp = on" "tweetlake.autostart = on" \
  "tweetlake.brokers = '$BOOT'" "tweetlake.topic = '$TOPIC'" "tweetlake.partitions = $PARTITIONS" \
  "tweetlake.generator_rate = $RATE" "tweetlake.consumers = 2"
sql() { bench_sql "$@"; }
sql -c "CREATE EXTENSION tweetlake" || exit 1
if [ -n "${SOAK_SQL:-}" ]; then
  cp "$SOAK_SQL" "$W/soak_extra.sql" && chown postgres: "$W/soak_extra.sql"
  sql -f "$W/soak_extra.sql" || exit 1
fi

# the dashboard's charts, one SELECT each, into a table the dashboard loop reads
python3 - "$ROOT/superset/dashboard_queries.sql" > "$W/charts.sql" <<'PY'
import re, sys
cur = None; charts = []
for line in open(sys.argv[1], encoding="utf-8"):
    m = re.match(r"^-- chart (\d+): (.*)$", line.rstrip("\n"))
    if m:
        cur = [int(m.group(1)), m.group(2).strip(), []]; charts.append(cur)
    elif cur is not None and line.strip() and not line.startswith("--"):
        cur[2].append(line.rstrip("\n"))
print("CREATE SCHEMA soak; CREATE TABLE soak.charts (n int, name text, q text);")
print("CREATE TABLE soak.dash (at timestamptz, n int, ms double precision);")
for n, name, body in charts:
    q = " ".join(body).strip().rstrip(";")
    print("INSERT INTO soak.charts VALUES (%d, $n$%s$n$, $q$%s$q$);" % (n, name, q))
PY
sql -f "$W/charts.sql" >/dev/null || exit 1

if [ -n "${AB_SETTING:-}" ]; then
  pids_of() { sql -c "SELECT string_agg(pid::text, ' ' ORDER BY worker) FROM tweetlake.status
                      WHERE role = 'consumer' AND pid IS NOT NULL AND messages > 0"; }
  for _ in $(seq 120); do [ "$(pids_of | wc -w)" = 2 ] && break; sleep 1; done
  read -r c0 c1 <<< "$(pids_of)"
  sql -c "ALTER SYSTEM SET ${AB_SETTING%%=*} = ${AB_SETTING#*=}" -c "SELECT pg_reload_conf()" >/dev/null || exit 1
  sql -c "SELECT pg_terminate_backend($c0)" >/dev/null
  for _ in $(seq 120); do read -r n0 n1 <<< "$(pids_of)"; [ -n "${n1:-}" ] && [ "$n0" != "$c0" ] && break; sleep 1; done
  [ "${n1:-}" = "$c1" ] && [ "$n0" != "$c0" ] || { echo "soak: AB_SETTING: consumer 0 did not restart alone ($c0 $c1 -> ${n0:-} ${n1:-})"; exit 1; }
  echo "soak: AB_SETTING: consumer 0 (pid $n0) runs with $AB_SETTING, consumer 1 (pid $c1) without" >> "$LOG"
fi

T0=$(date +%s)
END_AT=$((T0 + MINUTES * 60))

# the dashboard: every second each chart, timed (one session, so a Postgres restart ends it:
# it is started again below)
dashboard() {
  while [ "$(date +%s)" -lt "$END_AT" ]; do
    sql -c "DO \$\$
      DECLARE c record; t timestamptz; n bigint;
      BEGIN
        LOOP
          EXIT WHEN extract(epoch FROM clock_timestamp()) >= $END_AT;
          FOR c IN SELECT * FROM soak.charts ORDER BY n LOOP
            t := clock_timestamp();
            EXECUTE 'SELECT count(*) FROM (' || c.q || ') q' INTO n;
            INSERT INTO soak.dash VALUES (t, c.n, extract(epoch FROM clock_timestamp() - t) * 1000);
          END LOOP;
          COMMIT;
          PERFORM pg_sleep(1);
        END LOOP;
      END \$\$" >> "$LOG" 2>&1
    sleep 2
  done
}
dashboard & pids+=($!)

# bad messages: one a second, five kinds in turn, keyed like the generator's
badmsgs() {
  local i=0 k
  while [ "$(date +%s)" -lt "$END_AT" ]; do
    k=$((i % 5))
    case $k in
      0) printf 'bad-%d\t{"tweet_id":"bad-%d","text":"cut off\n' "$i" "$i" ;;
      1) printf 'bad-%d\t{"tweet_id":"bad-%d","text":"x","created_at":"2026-01-01T00:00:00Z","like_count":"many"}\n' "$i" "$i" ;;
      2) printf 'bad-%d\t{"tweet_id":"bad-%d","text":"nul \\u0000 here","created_at":"2026-01-01T00:00:00Z"}\n' "$i" "$i" ;;
      3) printf 'bad-%d\t{"tweet_id":"bad-%d","created_at":"2026-01-01T00:00:00Z"}\n' "$i" "$i" ;;
      4) printf 'bad-%d\t{"tweet_id":"bad-%d","text":"\xff\xfe","created_at":"2026-01-01T00:00:00Z"}\n' "$i" "$i" ;;
    esac | kcat -P -b "$BOOT" -t "$TOPIC" -K '\t' -X enable.idempotence=true 2>> "$LOG" && echo "$i" >> "$OUT/bad.txt"
    i=$((i + 1))
    sleep 1
  done
}
badmsgs & pids+=($!)

# RssAnon of each worker every 10 s: "seconds role index pid kB heap arenas rest" (kB)
cat > "$W/rss.py" <<'PY'
import re, sys
# stdin: "role|index|pid" lines; out: one sample line a worker, "t role index pid RssAnon heap arenas rest"
ARENA = 64 << 20  # glibc's HEAP_MAX_SIZE on 64-bit: a thread arena's heap is aligned to it
t = sys.argv[1]
for line in sys.stdin:
    role, idx, pid = line.strip().split("|")
    try:
        anon = next(int(l.split()[1]) for l in open(f"/proc/{pid}/status") if l.startswith("RssAnon:"))
        part = {"heap": 0, "arenas": 0, "rest": 0}; cur = "rest"
        for l in open(f"/proc/{pid}/smaps"):
            m = re.match(r"^([0-9a-f]+)-[0-9a-f]+ \S+ \S+ \S+ (\d+)\s*(.*)$", l)
            if m:
                name = m.group(3).strip()
                cur = ("heap" if name == "[heap]" else
                       "arenas" if not name and m.group(2) == "0" and int(m.group(1), 16) % ARENA == 0 else "rest")
            elif l.startswith("Anonymous:"):
                part[cur] += int(l.split()[1])
    except (OSError, StopIteration):
        continue
    print(t, role, idx, pid, anon, part["heap"], part["arenas"], part["rest"])
PY
# and with it the backlog (messages on the broker not yet stored, all partitions) into lag.txt,
# and every minute each consumer's memory contexts into the server log
# (pg_log_backend_memory_contexts; their "Grand total" lines are read at the end): what of the
# main heap PostgreSQL's own allocations hold, next to a backlog that makes batches bigger.
rss() {
  local n=0 t
  while [ "$(date +%s)" -lt "$END_AT" ]; do
    t=$(( $(date +%s) - T0 ))
    sql -c "SELECT role, coalesce(worker, 0), pid FROM tweetlake.status WHERE pid IS NOT NULL" \
      > "$W/pids.new" 2>/dev/null && mv "$W/pids.new" "$W/pids.txt"
    python3 "$W/rss.py" "$t" < "$W/pids.txt" >> "$OUT/rss.txt"
    echo "$t $(sql -c "SELECT coalesce(sum(lag), 0) FROM tweetlake.consumer_lag" 2>/dev/null)" >> "$OUT/lag.txt"
    if [ $((n % 6)) = 0 ]; then
      sql -c "SELECT pg_log_backend_memory_contexts(pid) FROM tweetlake.status
              WHERE role = 'consumer' AND pid IS NOT NULL" >/dev/null 2>&1
    fi
    n=$((n + 1))
    sleep 10
  done
}
rss & pids+=($!)
# and every second each worker's RssAnon alone (rss1.txt: seconds, role, index, pid, kB), from the
# pids the loop above last read: a consumer trims its free heap at most every 10 s, so samples
# 10 s apart fall at one phase of that cycle for minutes on end (in a 33-minute run, one
# consumer's 10th percentile was 19.9 MB in the 2nd fifth and 12.9 MB in the last); a sample a
# second weighs every phase alike.
rss1() {
  while [ "$(date +%s)" -lt "$END_AT" ]; do
    t=$(( $(date +%s) - T0 ))
    [ -f "$W/pids.txt" ] && while IFS='|' read -r role idx pid; do
      kb=$(awk '/^RssAnon:/ { print $2 }' "/proc/$pid/status" 2>/dev/null) && [ -n "$kb" ] &&
        echo "$t $role $idx $pid $kb"
    done < "$W/pids.txt" >> "$OUT/rss1.txt"
    sleep 1
  done
}
rss1 & pids+=($!)

# the faults, on their schedule
last_kill=$T0; last_broker=$T0; restarted=; rebuilt=; kills=0
while [ "$(date +%s)" -lt "$END_AT" ]; do
  now=$(date +%s)
  if [ "$REBUILD" != 0 ] && [ -z "$rebuilt" ] && [ $((now - T0)) -ge $((MINUTES * 20)) ]; then
    fault "rebuild_gold"
    sql -c "SELECT tweetlake.rebuild_gold()" >> "$LOG" 2>&1; rebuilt=1
  fi
  if [ "$PG_RESTART" != 0 ] && [ -z "$restarted" ] && [ $((now - T0)) -ge $((MINUTES * 30)) ]; then
    fault "postgres_restart_immediate"
    as_pg pg_ctl -D "$W/data" -m immediate stop >> "$LOG" 2>&1
    as_pg pg_ctl -D "$W/data" -o "-p $PORT" -l "$W/server.log" -w start >> "$LOG" 2>&1; restarted=1
  fi
  if [ "$KILL_EVERY" != 0 ] && [ $((now - last_kill)) -ge "$KILL_EVERY" ]; then
    pid=$(sql -c "SELECT pid FROM tweetlake.status WHERE role = 'consumer' AND pid IS NOT NULL ORDER BY worker OFFSET $((kills % 2)) LIMIT 1" 2>/dev/null)
    if [ -n "$pid" ]; then
      fault "consumer_killed $pid"
      sql -c "SELECT pg_terminate_backend($pid)" >/dev/null 2>&1
      kills=$((kills + 1))
    fi
    last_kill=$now
  fi
  if [ "$BROKER_EVERY" != 0 ] && [ $((now - last_broker)) -ge "$BROKER_EVERY" ]; then
    fault "broker_restart"
    bash "$KAFKA" restart "$KDIR" >> "$LOG" 2>&1
    last_broker=$now
  fi
  sleep 5
done
for p in "${pids[@]}"; do wait "$p" 2>/dev/null; done
pids=()
T1=$(date +%s)


# --- drain: the generator stops, the consumers store everything the topic holds -----------------
sql -c "ALTER SYSTEM SET tweetlake.generator_rate = 0" -c "SELECT pg_reload_conf()" >/dev/null
sleep 5
bash "$KAFKA" tool "$KDIR" org.apache.kafka.tools.GetOffsetShell --bootstrap-server "$BOOT" \
  --topic "$TOPIC" --time -1 < /dev/null 2>> "$LOG" |
  sed -n "s/^$TOPIC:\([0-9]*\):\([0-9]*\)[[:space:]]*\$/\1 \2/p" > "$W/end_offsets"
END=$(awk '{ s += $2 } END { print s + 0 }' "$W/end_offsets")
END_VALUES=$(awk '{ printf "%s(%d, %d)", (NR > 1 ? ", " : ""), $1, $2 }' "$W/end_offsets")
for _ in $(seq 600); do
  [ "$(sql -c "SELECT coalesce(sum(greatest(next_offset, 0)), 0) FROM tweetlake.offsets WHERE topic = '$TOPIC'")" -ge "$END" ] && break
  sleep 1
done

# --- the summary --------------------------------------------------------------------------
: > "$OUT/summary.txt"
say "$MINUTES min at $RATE tweets/s, $PARTITIONS partitions, 2 consumers, on $(nproc) cores, $(pg_config --version)"
[ -n "${AB_SETTING:-}" ] && say "AB_SETTING: consumer 0 ran with $AB_SETTING (restarted before the run), consumer 1 without"
[ -n "${SOAK_SQL:-}" ] && say "SOAK_SQL $SOAK_SQL: $(tr '\n' ' ' < "$SOAK_SQL" | cut -c1-150)"
say "faults: $(awk '{ print $2 }' "$OUT/faults.txt" | sort | uniq -c | awk '{ printf "%s%s %d", (NR > 1 ? ", " : ""), $2, $1 }')"
say "topic: $END messages ($(wc -l < "$OUT/bad.txt" 2>/dev/null || echo 0) of them bad) in $(wc -l < "$W/end_offsets") partitions"
# each offset once in bronze (a message the trigger rejected is there too, next to its dead
# letter), or, not in bronze (the consumer refused it: not UTF-8, a NUL), once in the dead letters
bad_offsets=$(sql -c "
  WITH e(p, n) AS (VALUES $END_VALUES),
  b AS (SELECT kafka_partition AS p, kafka_offset AS o, count(*) AS k FROM bronze.tweets
        WHERE kafka_topic = '$TOPIC' GROUP BY 1, 2),
  d AS (SELECT kafka_partition AS p, kafka_offset AS o, count(*) AS k FROM bronze.dead_letters
        WHERE kafka_topic = '$TOPIC' GROUP BY 1, 2),
  c AS (SELECT p, o, coalesce(b.k, 0) AS kb, coalesce(d.k, 0) AS kd FROM b FULL JOIN d USING (p, o))
  SELECT (SELECT count(*) FROM e, generate_series(0, e.n - 1) o
          WHERE NOT EXISTS (SELECT 1 FROM c WHERE c.p = e.p AND c.o = o)) || ' missing, ' ||
         (SELECT count(*) FROM c WHERE kb > 1 OR (kb = 0 AND kd > 1)) || ' twice, ' ||
         (SELECT count(*) FROM c LEFT JOIN e USING (p) WHERE e.n IS NULL OR c.o >= e.n) || ' beyond the end'")
say "exactly once: $bad_offsets"
dead=$(sql -c "SELECT count(*) FROM bronze.dead_letters WHERE kafka_topic = '$TOPIC'")
sent=$(wc -l < "$OUT/bad.txt" 2>/dev/null || echo 0)
say "dead letters: $dead, bad messages sent: $sent$([ "$dead" = "$sent" ] || echo ' (DIFFERENT: the generator makes none)')"
say "verify(): $(sql -c "SELECT sum(missing + extra + differing) FROM tweetlake.verify()") rows off a full recompute"
# a deadlock aborts one side; a consumer's batch is then read again (nothing lost, time lost)
say "deadlocks: $(grep -c 'ERROR:  deadlock detected' "$W/server.log") reported by sessions, $(grep -c 'could not store a batch of [0-9]* messages: deadlock detected' "$W/server.log") consumer batches aborted by one and read again"
say "freshness over the run (produce -> commit): $(sql -c "
  SELECT 'p50 ' || round((percentile_cont(0.5) WITHIN GROUP (ORDER BY d))::numeric) || ' ms, p99 ' ||
         round((percentile_cont(0.99) WITHIN GROUP (ORDER BY d))::numeric) || ' ms'
  FROM (SELECT extract(epoch FROM pg_xact_commit_timestamp(xmin) - kafka_timestamp) * 1000 AS d
        FROM bronze.tweets WHERE kafka_topic = '$TOPIC' AND kafka_timestamp <= to_timestamp($T1)) f")"
say "dashboard ($(sql -c "SELECT count(*) FROM soak.charts") charts a second, $(sql -c "SELECT count(*) FROM soak.dash") queries): $(sql -c "
  SELECT 'p50 ' || round((percentile_cont(0.5) WITHIN GROUP (ORDER BY ms))::numeric, 1) || ' ms, p99 ' ||
         round((percentile_cont(0.99) WITHIN GROUP (ORDER BY ms))::numeric, 1) || ' ms, slowest chart p99 ' ||
         (SELECT n || ' ' || round(p::numeric, 1) || ' ms' FROM (SELECT n, percentile_cont(0.99) WITHIN GROUP (ORDER BY ms) AS p
                                                         FROM soak.dash GROUP BY n ORDER BY p DESC LIMIT 1) s)
  FROM soak.dash")"
sql -c "COPY (SELECT * FROM soak.dash ORDER BY at) TO STDOUT" > "$OUT/dash.txt"
# RssAnon per worker: the second and the last fifth of the run, by time
span=$((T1 - T0)); f=$((span / 5))
# A consumer's sample lands inside a batch (its memory contexts then hold the batch's parsed rows,
# tens of MB at 10,000 rows) or between two (what it keeps): the median mixes both, so the floor
# (10th percentile) of each fifth, what the worker keeps between batches, is shown beside it.
rss_fifths() {  # $1: samples, "seconds role index pid kB ..." a line
awk -v a="$f" -v b="$((2 * f))" -v c="$((4 * f))" '
  { key = $2 " " $3; if ($5 > most[key]) most[key] = $5
    if ($1 >= a && $1 < b) { n2[key]++; v2[key, n2[key]] = $5 }
    if ($1 >= c) { n5[key]++; v5[key, n5[key]] = $5 } }
  function sorted(v, key, n, a,   i, j, t) { for (i = 1; i <= n; i++) a[i] = v[key, i]
    for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t } }
  function med(v, key, n,   a) { sorted(v, key, n, a)
    return n ? (n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2) : 0 }
  function p10(v, key, n,   a, i) { sorted(v, key, n, a); i = int(n / 10 + 0.999); return n ? a[i < 1 ? 1 : i] : 0 }
  END { for (key in most) { m2 = med(v2, key, n2[key]); m5 = med(v5, key, n5[key])
        l2 = p10(v2, key, n2[key]); l5 = p10(v5, key, n5[key])
        printf "soak:   %-12s %9d %9d %6.3f %9d   floor %9d %9d %6.3f\n", key, m2, m5, (m2 ? m5 / m2 : 0), most[key],
               l2, l5, (l2 ? l5 / l2 : 0) } }' "$1" | sort | tee -a "$OUT/summary.txt"
}
say "RssAnon (kB), a sample a second: worker, 2nd fifth median, last fifth median, last/2nd, most; floor (10th percentile) 2nd fifth, last fifth, last/2nd"
rss_fifths "$OUT/rss1.txt"
say "the same from the samples every 10 s (rss.txt):"
rss_fifths "$OUT/rss.txt"
# CPU a message of each worker since it started (utime + stime of /proc/PID/stat against the
# messages tweetlake.status counts for it): what a memory setting costs, side by side with RssAnon
say "CPU a message (us, since the worker started): $(sql -c "SELECT role, coalesce(worker, 0), pid, messages
    FROM tweetlake.status WHERE pid IS NOT NULL AND role IN ('consumer', 'generator') ORDER BY 1, 2" |
  while IFS='|' read -r role idx pid n; do
    ticks=$(awk '{ print $14 + $15 }' "/proc/$pid/stat" 2>/dev/null) || continue
    awk -v r="$role $idx" -v t="$ticks" -v hz="$(getconf CLK_TCK)" -v n="$n" \
      'BEGIN { printf "%s %.1f (%d messages); ", r, (n > 0 ? t / hz * 1e6 / n : 0), n }'
  done)"
say "where it lies (kB, medians of the 2nd and the last fifth; split of the most): worker, main heap, thread arenas, the rest"
awk -v a="$f" -v b="$((2 * f))" -v c="$((4 * f))" 'NF >= 8 {
    key = $2 " " $3; if ($5 > most[key]) { most[key] = $5; at[key] = $6 " / " $7 " / " $8 }
    for (k = 6; k <= 8; k++) {
      if ($1 >= a && $1 < b) { n2[key, k]++; v2[key, k, n2[key, k]] = $k }
      if ($1 >= c) { n5[key, k]++; v5[key, k, n5[key, k]] = $k } } }
  function med(v, key, k, n,   i, j, t, x) { for (i = 1; i <= n; i++) x[i] = v[key, k, i]
    for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (x[j] < x[i]) { t = x[i]; x[i] = x[j]; x[j] = t }
    return n ? (n % 2 ? x[(n + 1) / 2] : (x[n / 2] + x[n / 2 + 1]) / 2) : 0 }
  END { for (key in most) { line = sprintf("soak:   %-12s", key)
          for (k = 6; k <= 8; k++) line = line sprintf(" %7d -> %7d", med(v2, key, k, n2[key, k]), med(v5, key, k, n5[key, k]))
          print line "   most: " at[key] } }' "$OUT/rss.txt" | sort | tee -a "$OUT/summary.txt"
# the backlog, and the consumers' memory contexts (PostgreSQL's own allocations) by the fifths
fifths() {  # stdin: "seconds key value"; prints "key 2nd-median last-median 2nd-samples last-samples" ("-": no sample)
  awk -v a="$f" -v b="$((2 * f))" -v c="$((4 * f))" '
    { if ($1 >= a && $1 < b) { n2[$2]++; v2[$2, n2[$2]] = $3 }
      if ($1 >= c) { n5[$2]++; v5[$2, n5[$2]] = $3 } seen[$2] = 1 }
    function med(v, key, n,   i, j, t, x) { for (i = 1; i <= n; i++) x[i] = v[key, i]
      for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (x[j] < x[i]) { t = x[i]; x[i] = x[j]; x[j] = t }
      return n ? (n % 2 ? x[(n + 1) / 2] : (x[n / 2] + x[n / 2 + 1]) / 2) : 0 }
    END { for (k in seen) print k, (n2[k] ? med(v2, k, n2[k]) : "-"), (n5[k] ? med(v5, k, n5[k]) : "-"), n2[k] + 0, n5[k] + 0 }' | sort
}
say "backlog (messages not yet stored, medians): 2nd fifth $(awk '{ print $1, "all", $2 }' "$OUT/lag.txt" | fifths | awk '{ print $2 " -> last fifth " $3 }')"
# The consumers' RssAnon at the same backlog in both fifths (samples while fewer than LOW_BACKLOG
# messages, default 2,000, waited): a backlog that grows across the run makes bigger batches,
# which the medians above count as growth.
LOW_BACKLOG=${LOW_BACKLOG:-2000}
say "consumers' RssAnon at a backlog under $LOW_BACKLOG (kB, median and samples): $(awk -v lim="$LOW_BACKLOG" '
    NR == FNR { lag[$1] = $2; next }
    $2 == "consumer" && ($1 in lag) && lag[$1] < lim { print $1, "consumer-" $3, $5 }' "$OUT/lag.txt" "$OUT/rss.txt" |
  fifths | awk '{ printf "%s %s (%d) -> %s (%d)%s; ", $1, $2, $4, $3, $5, ($2 + 0 && $3 + 0 ? sprintf(", %.3f", $3 / $2) : "") }')"
python3 - "$W/server.log" "$T0" "$OUT/rss.txt" > "$OUT/contexts.txt" <<'PY'
import re, sys, datetime
# "2026-12-03 07:30:01.123 UTC [1234] LOG:  Grand total: 123 bytes in ..." -> "seconds consumer-N kB"
t0 = int(sys.argv[2]); role = {}
for line in open(sys.argv[3]):
    f = line.split()
    if f[1] == "consumer": role[f[3]] = "consumer-" + f[2]
pat = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)\.\d+ UTC \[(\d+)\] LOG:\s+Grand total: (\d+) bytes")
for line in open(sys.argv[1], errors="replace"):
    m = pat.match(line)
    if m and m.group(2) in role:
        t = datetime.datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S").replace(tzinfo=datetime.timezone.utc).timestamp()
        print(int(t) - t0, role[m.group(2)], int(m.group(3)) // 1024)
PY
say "PostgreSQL memory contexts of the consumers (kB, Grand total, medians): $(fifths < "$OUT/contexts.txt" |
  awk '{ printf "%s%s %s -> %s", (NR > 1 ? "; " : ""), $1, $2, $3 }')"
py=; for p in python3 /usr/bin/python3; do "$p" -c 'import matplotlib' 2>/dev/null && { py=$p; break; }; done
if [ -n "$py" ]; then
  "$py" - "$OUT/rss.txt" "$OUT/rss.png" <<'PY'
import sys, collections
import matplotlib; matplotlib.use("Agg")
import matplotlib.pyplot as plt
s = collections.defaultdict(list)
for line in open(sys.argv[1]):
    t, role, idx, pid, kb = line.split()[:5]
    s[f"{role} {idx}"].append((int(t) / 60, int(kb) / 1024))
for k, v in sorted(s.items()):
    plt.plot([a for a, _ in v], [b for _, b in v], ".", markersize=2, label=k)
plt.xlabel("minutes"); plt.ylabel("RssAnon (MB)"); plt.legend(); plt.title("tweetlake soak: RssAnon per worker")
plt.savefig(sys.argv[2], dpi=100)
PY
  say "plot: $OUT/rss.png"
fi
say "samples: $OUT/rss1.txt, $OUT/rss.txt, $OUT/lag.txt, $OUT/contexts.txt, $OUT/dash.txt, $OUT/faults.txt; log: $LOG"
