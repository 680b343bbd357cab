#!/usr/bin/env bash
# bench/drain.sh - P1 drain (issue 14, goal 1): how fast the consumers turn a backlog on a
# real Apache Kafka broker into gold, against a one-session COPY of the same typed rows.
#
#   bash bench/drain.sh [N]      N tweets (default 1000000); `make bench` runs it as a phase
#   DRAIN_EXT_VERSION=0.2.0 bash bench/drain.sh 200000    the same against an older schema
#                                (an installed tweetlake--V.sql), for a before/after on one day
#   DRAIN_CHANGES=1 bash bench/drain.sh [N]    instead: what updates and deletions cost
#                                (issue 15), N messages a topic; below
#   DRAIN_AB_VERSION=0.5.0 bash bench/drain.sh [N]    instead: the current schema against
#                                version V on the same topic, one consumer, rounds alternating
#                                the order; prints drain_ab_vs_V (the median of the rounds'
#                                ratios current / V); below
#   DRAIN_AB_VERSION=0.7.0 DRAIN_AB_SQL=FILE DRAIN_BATCH_SIZE=300 bash bench/drain.sh [N]
#                                the same, the current side with FILE's SQL run after CREATE
#                                EXTENSION (a storage parameter, an index): a schema change
#                                priced before it becomes a version; V may be the current one
#   DRAIN_AB_VERSION=0.10.0 DRAIN_AB_SQL=FILE DRAIN_AB_OLD_SQL=FILE2 bash bench/drain.sh [N]
#                                and FILE2's SQL on the other side: a setting against another
#                                value of it (ALTER DATABASE postgres SET ..., which the
#                                consumers started for the drain read), on one library
#
# A topic of 8 partitions is filled with N generated tweets while no consumer runs: the
# tweets of tweetlake.generate_tweets, keyed by tweet_id as the generator worker keys them,
# sent with kcat (idempotent producer). Then the consumers are started and timed from
# tweetlake.start() until every partition's stored offset has reached the topic's end
# offset: the commit time of the last batch (track_commit_timestamp), so lag 0 and the
# last batch committed. Once with one consumer, then from a fresh extension (DROP/CREATE,
# so the offsets start over) with two, on the same messages. After the first drain, silver
# is copied out and COPYed in one session into an unindexed table: the baseline of the
# same typed rows, in the same server. After each drain bronze must hold every message
# exactly once (by Kafka coordinates, no gap, against the broker's own end offsets), silver
# every tweet, no dead letters, and verify() must be all zero; a "drain: WARNING" line
# says what is off.
#
# DRAIN_CHANGES=1 (schema 0.5.0 on): two topics of 8 partitions, filled the same way with N
# messages each of tweetlake.generate_messages(N, seed, ...): drain_inserts with no updates
# or deletions (the same tweets as generate_tweets), drain_changes with 20 % updates and
# 2 % tombstones (DRAIN_UPDATES, DRAIN_DELETES; a tombstone is sent with its tweet_id key
# and a NULL value, kcat -Z). Each is drained by one consumer from a fresh extension, timed
# as above, in DRAIN_ROUNDS rounds (default 2) that alternate the order (inserts, changes;
# then changes, inserts; ...), so that drift on a shared machine falls on both sides.
# Prints both rates (the medians) and drain_changes_vs_inserts, the median of the rounds'
# ratios (goal >= 0.8). After each drain, on top of the checks above, against the generated
# stream (kept in a scratch table): bronze holds each tweet's messages (new, updates,
# tombstone) in one partition, silver exactly the tweets without a tombstone, each at its
# last version (updated_at), silver.deleted_tweets exactly the tombstoned ids (was_stored as
# the batches say), and the consumer's tweetlake.status counts every update and tombstone
# of the stream and nothing stale (check_changes). The trigger's DEBUG1 line (one a batch:
# log_min_messages = debug1 for the database) gives where a batch's time goes, as medians
# over the drain's batches. DRAIN_BATCH_SIZE sets tweetlake.batch_size (default 10000).
# DRAIN_SETTING='name = value' adds a line to the server's postgresql.conf (one setting,
# for instance tweetlake.kafka_config, which the consumers read when they start).
#
# Prints "name value unit" lines (bench/run.sh gives them their goals) and "drain: ..."
# notes. It runs a server of its own with bench/run.sh's settings and test/kafka/kafka.sh's
# broker: its own, or the one already running in $DRAIN_KAFKA_DIR (bench/run.sh passes
# its broker). Where Kafka cannot be installed it says so and exits 0.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
. "$ROOT/scripts/lib.sh"

N=${1:-1000000}
CHANGES=${DRAIN_CHANGES:-0}
ROUNDS=${DRAIN_ROUNDS:-2}
UPDATES=${DRAIN_UPDATES:-0.2}
DELETES=${DRAIN_DELETES:-0.02}
PARTITIONS=8
SEED=14
STALL_S=${DRAIN_STALL_S:-120}   # give up when no batch is stored for this long
KAFKA=$ROOT/test/kafka/kafka.sh
OUT=$ROOT/build/bench
mkdir -p "$OUT"
# a topic of each mode's own, so the modes can follow each other on one broker (make bench)
if [ "$CHANGES" = 1 ]; then TOPIC=drain_inserts LOG=$OUT/drain_changes.log
elif [ -n "${DRAIN_AB_VERSION:-}" ]; then TOPIC=drain_ab LOG=$OUT/drain_ab.log
else TOPIC=drain LOG=$OUT/drain.log; fi
: > "$LOG"

now() { date +%s.%N; }
rate() { awk -v n="$1" -v a="$2" -v b="$3" 'BEGIN { if (b - a <= 0) print "nan"; else printf "%.0f", n / (b - a) }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b + 0 == 0) print "nan"; else printf "%.3f", a / b }'; }
median3() { sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) print "nan"; else if (NR % 2) printf "%.3f\n", v[(NR + 1) / 2]; else printf "%.3f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
say() { echo "drain: $*"; }
warn() { echo "drain: WARNING: $*"; }

W=$(pg_owned_dir tweetlake-drain)
PORT=$(free_port)
KDIR=${DRAIN_KAFKA_DIR:-}
own_broker=
trap bench_cleanup EXIT

# --- the broker ------------------------------------------------------------------------
bench_broker

# the library the server runs: a `make install` during the run would mix two builds
LIB=$("$PG_CONFIG" --pkglibdir)/tweetlake.so
lib_sum=$(md5sum < "$LIB")

# --- a server of our own: consumers only (no generator), pointed at the topic ----------
bench_server "$W" "$PORT" "track_commit_timestamp = on" "tweetlake.brokers = '$BOOT'" \
  "tweetlake.topic = '$TOPIC'" "tweetlake.generator_rate = 0" "tweetlake.consumers = 1" \
  ${DRAIN_BATCH_SIZE:+"tweetlake.batch_size = $DRAIN_BATCH_SIZE"} ${DRAIN_SETTING:+"$DRAIN_SETTING"}
sql() { bench_sql "$@"; }
EXT_VERSION=${DRAIN_EXT_VERSION:+ VERSION '$DRAIN_EXT_VERSION'}
sql -c "CREATE EXTENSION tweetlake$EXT_VERSION"
# the messages are created in the current hour (the generator worker stamps each tweet with
# the time it produces it, so a backlog is recent); one start for every topic and check
START=$(sql -c "SELECT date_trunc('hour', now())")

# --- fill TOPIC QUERY: the topic made and filled, while no consumer runs, with the rows
# (key, value) of QUERY, one "key TAB value" line each; an empty value goes as NULL (kcat
# -Z): a tombstone. Sets fill_rate; the broker's end offsets go to $W/end_offsets.TOPIC.
fill() {
  local topic=$1 query=$2 t0 t1 sent ends
  if ! bash "$KAFKA" topic "$KDIR" "$topic" "$PARTITIONS" >> "$LOG" 2>&1; then
    say "skipped: could not create the topic $topic (see $LOG)"
    exit 0
  fi
  t0=$(now)
  sql -c "COPY (SELECT m.key || E'\t' || coalesce(m.value, '') FROM ($query) m(key, value))
          TO STDOUT WITH (FORMAT csv, DELIMITER E'\x1f', QUOTE E'\x1e')" |
    kcat -P -b "$BOOT" -t "$topic" -K '\t' -Z -X enable.idempotence=true -X linger.ms=20 2>> "$LOG"
  t1=$(now)
  ends=$W/end_offsets.$topic
  bash "$KAFKA" tool "$KDIR" org.apache.kafka.tools.GetOffsetShell --bootstrap-server "$BOOT" \
    --topic "$topic" --time -1 < /dev/null 2>> "$LOG" |
    sed -n "s/^$topic:\([0-9]*\):\([0-9]*\)[[:space:]]*\$/\1 \2/p" > "$ends"
  sent=$(awk '{ s += $2 } END { print s + 0 }' "$ends")
  fill_rate=$(rate "$N" "$t0" "$t1")
  [ "$(wc -l < "$ends")" = "$PARTITIONS" ] ||
    warn "the broker reported end offsets for $(wc -l < "$ends") of $PARTITIONS partitions of $topic"
  [ "$sent" = "$N" ] || warn "the topic $topic holds $sent messages; $N were sent"
  say "topic $topic: $sent messages, end offsets $(awk '{ printf "%s%d:%d", (NR > 1 ? " " : ""), $1, $2 }' "$ends"), filled at $fill_rate msgs/s"
}

# use_topic TOPIC: the consumers read TOPIC from now on; sets TOPIC, END and END_VALUES
use_topic() {
  TOPIC=$1
  sql -c "ALTER SYSTEM SET tweetlake.topic = '$TOPIC'" -c "SELECT pg_reload_conf()" >/dev/null
  END=$(awk '{ s += $2 } END { print s + 0 }' "$W/end_offsets.$TOPIC")
  END_VALUES=$(awk '{ printf "%s(%d, %d)", (NR > 1 ? ", " : ""), $1, $2 }' "$W/end_offsets.$TOPIC")
  if [ "$END" = 0 ]; then
    warn "nothing to drain in $TOPIC"
    exit 0
  fi
}

# --- one drain: $1 consumers from tweetlake.start() to the last batch's commit ----------
# Sets drain_rate (stored messages per second) and drain_s.
drain_run() {
  local c=$1 t0 t1 stored lag workers
  sql -c "ALTER SYSTEM SET tweetlake.consumers = $c" -c "SELECT pg_reload_conf()" >/dev/null
  sql -c "CHECKPOINT"
  sync
  sleep 1  # the launcher has read the new settings before start() wakes it
  start_and_drain "$TOPIC" "$END" "$STALL_S"
  t0=$drain_t0 t1=$drain_t1 stored=$drain_stored
  lag=$(sql -c "SELECT coalesce(sum(lag), 0) FROM tweetlake.consumer_lag WHERE topic = '$TOPIC'")
  workers=$(sql -c "SELECT count(*) FROM tweetlake.status WHERE role = 'consumer' AND messages > 0")
  # the consumers' CPU time (all their threads, librdkafka's too, from /proc) since they started
  local ticks=0 pid
  for pid in $(sql -c "SELECT pid FROM tweetlake.status WHERE role = 'consumer' AND pid IS NOT NULL"); do
    ticks=$((ticks + $(awk '{ print $14 + $15 }' "/proc/$pid/stat" 2>/dev/null || echo 0)))
  done
  stop_consumers
  [ "$stored" = "$END" ] || warn "$c consumer(s): stored offsets cover $stored of $END messages (no batch for $STALL_S s)"
  [ "$lag" = 0 ] || warn "$c consumer(s): tweetlake.consumer_lag says $lag messages behind at the end"
  [ "$workers" = "$c" ] || warn "$c consumer(s) wanted, $workers stored messages"
  drain_rate=$(rate "$stored" "$t0" "$t1")
  drain_s=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }')
  drain_cpu_us=$(awk -v t="$ticks" -v hz="$(getconf CLK_TCK)" -v n="$stored" 'BEGIN { if (n == 0) print "nan"; else printf "%.1f", t * 1e6 / hz / n }')
  say "$c consumer(s), topic $TOPIC: $stored messages in $drain_s s, $drain_rate msgs/s, $drain_cpu_us us consumer CPU a message"
}

# --- after a drain: every message exactly once, every tweet in silver ($2, default N),
# gold exact ---------------------------------------------------------------------------
check_drain() {
  local label=$1 want_silver=${2:-$N} rows distinct off silver dead bad
  read -r rows distinct <<< "$(sql -F ' ' -c "SELECT count(*), count(DISTINCT (kafka_partition, kafka_offset)) FROM bronze.tweets")"
  [ "$rows" = "$END" ] && [ "$distinct" = "$END" ] ||
    warn "$label: bronze holds $rows rows at $distinct distinct (partition, offset); the topic's end offsets add up to $END"
  off=$(sql -c "SELECT count(*) FROM (VALUES $END_VALUES) e(p, n)
                FULL JOIN (SELECT kafka_partition AS p, count(*) AS c, max(kafka_offset) + 1 AS m
                           FROM bronze.tweets GROUP BY 1) b USING (p)
                WHERE b.c IS DISTINCT FROM e.n OR b.m IS DISTINCT FROM e.n")
  [ "$off" = 0 ] || warn "$label: in $off partition(s) bronze does not hold exactly the offsets 0 to end - 1"
  silver=$(sql -c "SELECT count(*) FROM silver.tweets")
  [ "$silver" = "$want_silver" ] || warn "$label: silver holds $silver tweets, $want_silver expected"
  dead=$(sql -c "SELECT count(*) FROM bronze.dead_letters")
  [ "$dead" = 0 ] || warn "$label: $dead dead letters"
  bad=$(sql -c "SELECT coalesce(string_agg(gold_table, ' '), '') FROM tweetlake.verify() WHERE missing + extra + differing > 0")
  [ -z "$bad" ] || warn "$label: verify() found differences in $bad"
}

# --- the P1 drain: one consumer, the COPY baseline, two consumers ----------------------
scale_drains() {
  fill "$TOPIC" "SELECT tweetlake.tweet_id_of(t), t
                 FROM tweetlake.generate_tweets($N, $SEED, timestamptz '$START', '1 minute') t"
  use_topic "$TOPIC"
  local rate_1c rate_2c copy_rate t0 t1
  drain_run 1
  rate_1c=$drain_rate
  check_drain "1 consumer"

  # the baseline: the same typed rows, COPYed in one session into an unindexed table
  sql -c "COPY silver.tweets TO '$W/typed.copy'"
  sql -c "CREATE TABLE copy_target (LIKE silver.tweets)" -c "CHECKPOINT"
  t0=$(now); sql -c "COPY copy_target FROM '$W/typed.copy'"; t1=$(now)
  copy_rate=$(rate "$(sql -c "SELECT count(*) FROM copy_target")" "$t0" "$t1")
  sql -c "DROP TABLE copy_target"
  rm -f "$W/typed.copy"

  sql -c "SET client_min_messages = warning" -c "DROP EXTENSION tweetlake CASCADE" -c "CREATE EXTENSION tweetlake$EXT_VERSION"
  drain_run 2
  rate_2c=$drain_rate
  check_drain "2 consumers"

  echo "drain_messages $END msgs"
  echo "drain_fill_msgs_per_s $fill_rate msgs/s"
  echo "drain_copy_typed_rows_per_s $copy_rate rows/s"
  echo "drain_1c_tweets_per_s $rate_1c tweets/s"
  echo "drain_1c_vs_copy $(ratio "$rate_1c" "$copy_rate") x"
  echo "drain_2c_tweets_per_s $rate_2c tweets/s"
  echo "drain_2c_vs_1c $(ratio "$rate_2c" "$rate_1c") x"
  echo "drain_2c_vs_copy $(ratio "$rate_2c" "$copy_rate") x"
}

# --- DRAIN_CHANGES=1: updates and deletions against inserts only ------------------------
# The stream of generate_messages with updates share $1 and deletes share $2 from the one
# START, as (key, value): keyed by tweet_id as the generator worker keys it, a tombstone by
# its kafka_key.
messages_sql() {
  echo "SELECT coalesce(g.kafka_key, tweetlake.tweet_id_of(g.raw)), g.raw
        FROM tweetlake.generate_messages($N, $SEED, timestamptz '$START', '1 minute', $1, $2) g"
}
# stream_table TOPIC UPDATES DELETES: the same stream in a scratch table (drain_stream_TOPIC,
# outside the extension, so it outlives DROP EXTENSION): each message's place, tweet_id,
# whether it is a tombstone, and the version it carries (updated_at)
stream_table() {
  sql -c "CREATE UNLOGGED TABLE drain_stream_$1 AS
          SELECT g.i, coalesce(g.kafka_key, tweetlake.tweet_id_of(g.raw)) AS id, g.raw IS NULL AS tomb,
                 (g.raw::json ->> 'updated_at')::timestamptz AS updated_at
          FROM tweetlake.generate_messages($N, $SEED, timestamptz '$START', '1 minute', $2, $3)
               WITH ORDINALITY g(kafka_key, raw, i)" \
      -c "ANALYZE drain_stream_$1"
}

# check_changes LABEL: after a drain of $TOPIC, what its stream says silver must hold and
# the consumer must have counted. The stream is, for each tweet, its new message, updates
# (each newer than the last: a later updated_at) and at most one tombstone, last; all keyed
# by tweet_id, so in one partition, in order. A batch applies a tweet's messages in order,
# as separate batches would (README "Updates and deletions"), so whatever the batches:
# tweetlake.status says updates = the stream's updates (each replaces a version), deletes =
# its tombstones (each deletes a version: stored, or brought by the same batch) and stale
# = 0. Where the batch splits fall shows only in silver.deleted_tweets.was_stored, false
# for a tweet whose new message came in its tombstone's chunk: one consumer writes a batch
# in one transaction of one or more INSERTs, so bronze's xmin and cmin tell them apart, and
# the trigger takes each INSERT in chunks of 5,000 rows.
check_changes() {
  local label=$1 st=drain_stream_$TOPIC
  local ids gone news upds tombs kinds spread wrong_silver wrong_deleted
  local s_msgs s_upd s_del s_stale first_insert later_not_stored across not_stored
  read -r ids gone news upds tombs <<< "$(sql -F ' ' -c "
    SELECT count(DISTINCT id), count(DISTINCT id) FILTER (WHERE tomb),
           count(*) FILTER (WHERE NOT tomb AND first), count(*) FILTER (WHERE NOT tomb AND NOT first),
           count(*) FILTER (WHERE tomb)
    FROM (SELECT id, tomb, i = min(i) OVER (PARTITION BY id) AS first FROM $st) s")"
  check_drain "$label" "$((ids - gone))"
  # bronze holds each tweet's messages: as many of each kind as the stream, in one partition
  kinds=$(sql -c "
    WITH s AS (SELECT id, count(*) FILTER (WHERE tomb) AS t, count(*) FILTER (WHERE NOT tomb) AS m
               FROM $st GROUP BY id),
         b AS (SELECT coalesce(kafka_key, tweet_id) AS id, count(*) FILTER (WHERE raw IS NULL) AS t,
                      count(*) FILTER (WHERE raw IS NOT NULL) AS m
               FROM bronze.tweets GROUP BY 1)
    SELECT count(*) FROM s FULL JOIN b USING (id) WHERE s.t IS DISTINCT FROM b.t OR s.m IS DISTINCT FROM b.m")
  [ "$kinds" = 0 ] || warn "$label: for $kinds tweet_id(s) bronze does not hold the stream's messages"
  spread=$(sql -c "SELECT count(*) FROM (SELECT 1 FROM bronze.tweets GROUP BY coalesce(kafka_key, tweet_id)
                                          HAVING count(DISTINCT kafka_partition) > 1) x")
  [ "$spread" = 0 ] || warn "$label: the messages of $spread tweet_id(s) are in more than one partition"
  # silver: exactly the tweets with no tombstone, each at its last version
  wrong_silver=$(sql -c "
    WITH e AS (SELECT id, max(updated_at) AS v FROM $st GROUP BY id HAVING NOT bool_or(tomb))
    SELECT count(*) FROM e FULL JOIN silver.tweets s ON s.tweet_id = e.id
    WHERE e.id IS NULL OR s.tweet_id IS NULL OR s.updated_at IS DISTINCT FROM e.v")
  [ "$wrong_silver" = 0 ] ||
    warn "$label: $wrong_silver silver row(s) missing, extra or not at the stream's last version"
  wrong_deleted=$(sql -c "
    SELECT count(*) FROM (SELECT DISTINCT id FROM $st WHERE tomb) e
    FULL JOIN silver.deleted_tweets d ON d.tweet_id = e.id WHERE e.id IS NULL OR d.tweet_id IS NULL")
  [ "$wrong_deleted" = 0 ] ||
    warn "$label: silver.deleted_tweets holds $(sql -c "SELECT count(*) FROM silver.deleted_tweets") ids, the stream tombstones $gone ($wrong_deleted differ)"
  # the consumer's counts (its slot keeps them after stop())
  read -r s_msgs s_upd s_del s_stale <<< "$(sql -F ' ' -c "
    SELECT coalesce(sum(messages), 0), coalesce(sum(updates), 0), coalesce(sum(deletes), 0),
           coalesce(sum(stale), 0) FROM tweetlake.status WHERE role = 'consumer'")"
  [ "$s_msgs" = "$END" ] || warn "$label: tweetlake.status counts $s_msgs messages, the topic holds $END"
  [ "$s_upd $s_del $s_stale" = "$upds $tombs 0" ] ||
    warn "$label: tweetlake.status says updates $s_upd, deletes $s_del, stale $s_stale; the stream gives $upds, $tombs, 0"
  # bronze's xmin is the batch, cmin its INSERT. A tombstone whose tweet's first message came
  # in an earlier INSERT deletes a stored row (was_stored); one in the same INSERT may or may
  # not, as the trigger takes an INSERT's rows 5,000 at a time and the chunk that held the
  # first message stored it (the order of the rows inside an INSERT is not kept in bronze:
  # ctid puts a tombstone's small row in any page with room). So: no id not stored whose
  # tombstone came in a later INSERT, and no more ids not stored than tombstones in their
  # tweet's first INSERT. Also counted: updates that replaced a version an earlier batch
  # stored (the others replaced one of their own batch).
  read -r first_insert later_not_stored across <<< "$(sql -F ' ' -c "
    WITH b AS (SELECT coalesce(kafka_key, tweet_id) AS id, kafka_offset AS o, raw IS NULL AS tomb,
                      xmin::text::bigint AS x, cmin::text::bigint AS s FROM bronze.tweets),
         f AS (SELECT DISTINCT ON (id) id, o AS fo, x AS fx, s AS fs FROM b ORDER BY id, o)
    SELECT count(*) FILTER (WHERE b.tomb AND b.x = f.fx AND b.s = f.fs),
           count(*) FILTER (WHERE b.tomb AND (b.x, b.s) <> (f.fx, f.fs) AND NOT d.was_stored),
           count(*) FILTER (WHERE NOT b.tomb AND b.o <> f.fo AND b.x <> f.fx)
    FROM b JOIN f USING (id) LEFT JOIN silver.deleted_tweets d ON d.tweet_id = b.id AND b.tomb")"
  not_stored=$(sql -c "SELECT count(*) FROM silver.deleted_tweets WHERE NOT was_stored")
  [ "$later_not_stored" = 0 ] && [ "$not_stored" -le "$first_insert" ] ||
    warn "$label: silver.deleted_tweets has $not_stored ids not stored when deleted, $later_not_stored of them deleted by a later INSERT than their first message's; $first_insert tombstones came in their tweet's first INSERT"
  say "$label: stream $news new, $upds updates, $tombs tombstones; status $s_upd updates, $s_del deletes," \
      "$s_stale stale; $across updates replaced a version an earlier batch stored; $not_stored deleted ids" \
      "not stored, of $first_insert tombstones in their tweet's first INSERT"
}

# batch_times FROM: the trigger's DEBUG1 lines in the server log after byte FROM, as
# medians a batch: "<batches> <rows> <parse> <silver> <grouping> <gold> <retractions>"
batch_times() {
  tail -c +"$(($1 + 1))" "$W/server.log" |
    sed -n 's/.*tweetlake batch: \([0-9]*\) rows,.* parse \([0-9.]*\) ms, silver and dead letters \([0-9.]*\) ms, grouping \([0-9.]*\) ms, gold \([0-9.]*\) ms (of which retractions \([0-9.]*\) ms).*/\1 \2 \3 \4 \5 \6/p' > "$W/batches"
  local out="$(wc -l < "$W/batches")" k
  for k in 1 2 3 4 5 6; do out="$out $(cut -d' ' -f"$k" "$W/batches" | median)"; done
  echo "$out"
}

changes_drains() {
  local t r kind order log_at times scans
  local -A rates
  fill drain_inserts "$(messages_sql 0 0)"
  stream_table drain_inserts 0 0
  fill drain_changes "$(messages_sql "$UPDATES" "$DELETES")"
  stream_table drain_changes "$UPDATES" "$DELETES"
  # one DEBUG1 line a batch from the trigger, in every session of the database
  sql -c "ALTER DATABASE postgres SET log_min_messages = debug1"
  : > "$W/ratios"
  for r in $(seq "$ROUNDS"); do
    if [ $((r % 2)) = 1 ]; then order="inserts changes"; else order="changes inserts"; fi
    for kind in $order; do
      t=drain_$kind
      sql -c "SET client_min_messages = warning" -c "DROP EXTENSION tweetlake CASCADE" -c "CREATE EXTENSION tweetlake$EXT_VERSION"
      use_topic "$t"
      log_at=$(stat -c %s "$W/server.log")
      drain_run 1
      rates[$kind.$r]=$drain_rate
      echo "$drain_rate" >> "$W/rates.$kind"
      # how the drain read silver (a fresh table each drain; before the checks read it)
      scans=$(sql -c "SELECT seq_scan || ' seq scans (' || seq_tup_read || ' rows read), ' ||
                             coalesce(idx_scan, 0) || ' index scans'
                      FROM pg_stat_user_tables WHERE relid = 'silver.tweets'::regclass")
      check_changes "round $r, $kind"
      read -r -a times <<< "$(batch_times "$log_at")"
      say "round $r, $kind: ${times[0]} batches; medians a batch: ${times[1]} rows, parse ${times[2]} ms," \
          "silver ${times[3]} ms, grouping ${times[4]} ms, gold ${times[5]} ms (retractions ${times[6]} ms);" \
          "silver.tweets: $scans"
    done
    echo "$(ratio "${rates[changes.$r]}" "${rates[inserts.$r]}")" >> "$W/ratios"
    say "round $r: changes $(tail -1 "$W/ratios") x inserts"
  done
  echo "drain_changes_messages $N msgs"
  echo "drain_inserts_msgs_per_s $(median < "$W/rates.inserts" | cut -d. -f1) msgs/s"
  echo "drain_changes_msgs_per_s $(median < "$W/rates.changes" | cut -d. -f1) msgs/s"
  echo "drain_changes_vs_inserts $(median3 < "$W/ratios") x"
}

# --- DRAIN_AB_VERSION=V: the current schema against V, one consumer, on one topic ------
# (schema 0.6.0 partitioned bronze by day: its cost against 0.5.0, issue 20). Each drain
# starts from a fresh extension of its version; the checks after each are check_drain's.
ab_drains() {
  local r side order cur v=$DRAIN_AB_VERSION
  cur=$(sql -c "SELECT default_version FROM pg_available_extensions WHERE name = 'tweetlake'")
  fill "$TOPIC" "SELECT tweetlake.tweet_id_of(t), t
                 FROM tweetlake.generate_tweets($N, $SEED, timestamptz '$START', '1 minute') t"
  use_topic "$TOPIC"
  : > "$W/ratios"; : > "$W/cpu_ratios"; : > "$W/rates.cur"; : > "$W/rates.old"; : > "$W/cpu.cur"; : > "$W/cpu.old"
  for r in $(seq "$ROUNDS"); do
    if [ $((r % 2)) = 1 ]; then order="old cur"; else order="cur old"; fi
    for side in $order; do
      if [ "$side" = old ]; then EXT_VERSION=" VERSION '$v'"; else EXT_VERSION=" VERSION '$cur'"; fi
      sql -c "SET client_min_messages = warning" -c "DROP EXTENSION tweetlake CASCADE" -c "CREATE EXTENSION tweetlake$EXT_VERSION"
      if [ "$side" = cur ] && [ -n "${DRAIN_AB_SQL:-}" ]; then sql < "$DRAIN_AB_SQL"; fi
      if [ "$side" = old ] && [ -n "${DRAIN_AB_OLD_SQL:-}" ]; then sql < "$DRAIN_AB_OLD_SQL"; fi
      drain_run 1
      echo "$drain_rate" >> "$W/rates.$side"
      echo "$drain_cpu_us" >> "$W/cpu.$side"
      check_drain "round $r, $side"
      say "round $r, $(sql -c "SELECT extversion FROM pg_extension WHERE extname = 'tweetlake'"): bronze rows by table:" \
          "$(sql -c "SELECT string_agg(tableoid::regclass || ' ' || n, ', ') FROM (SELECT tableoid, count(*) AS n FROM bronze.tweets GROUP BY 1) x")"
    done
    echo "$(ratio "$(tail -1 "$W/rates.cur")" "$(tail -1 "$W/rates.old")")" >> "$W/ratios"
    echo "$(ratio "$(tail -1 "$W/cpu.cur")" "$(tail -1 "$W/cpu.old")")" >> "$W/cpu_ratios"
    say "round $r: $cur${DRAIN_AB_SQL:+ + $DRAIN_AB_SQL} $(tail -1 "$W/ratios") x $v${DRAIN_AB_OLD_SQL:+ + $DRAIN_AB_OLD_SQL}, consumer CPU a message $(tail -1 "$W/cpu_ratios") x"
  done
  echo "drain_ab_messages $N msgs"
  echo "drain_ab_${v//./_}_msgs_per_s $(median < "$W/rates.old" | cut -d. -f1) msgs/s"
  echo "drain_ab_${cur//./_}${DRAIN_AB_SQL:+_with_sql}_msgs_per_s $(median < "$W/rates.cur" | cut -d. -f1) msgs/s"
  echo "drain_ab_vs_${v//./_} $(median3 < "$W/ratios") x"
  echo "drain_ab_cpu_vs_${v//./_} $(median3 < "$W/cpu_ratios") x"
}

if [ "$CHANGES" = 1 ]; then
  changes_drains
elif [ -n "${DRAIN_AB_VERSION:-}" ]; then
  ab_drains
else
  scale_drains
fi
[ "$(md5sum < "$LIB")" = "$lib_sum" ] || warn "$LIB was replaced during the run: the figures may mix two builds"
