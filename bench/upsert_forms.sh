#!/usr/bin/env bash
# bench/upsert_forms.sh - what one form of folding a batch into a keyed table costs against
# another: the batch's per-user upsert as the gold statement writes it (INSERT ... ON CONFLICT
# DO UPDATE, fed in key order), against UPDATE ... FROM and MERGE, on a table shaped like
# gold.user_engagement (text key, fillfactor 70, 100k rows) with a batch of 5,000 keys it
# already holds, the forms alternating in ROUNDS rounds (VACUUM between runs), on a server
# of its own. Prints each form's runs (ms), their medians and the ratios to ON CONFLICT.
#
#   bash bench/upsert_forms.sh [ROUNDS]      default 6
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
. "$ROOT/scripts/lib.sh"
ROUNDS=${1:-6}
bench_scratch tweetlake-upsert
sql() { bench_sql "$@"; }
sql <<'SQL'
CREATE TABLE t (user_id text PRIMARY KEY, username text, tweets_count bigint, followers_count bigint,
  total_engagement bigint, first_day date, last_day date) WITH (fillfactor = 70);
INSERT INTO t SELECT 'u' || i, 'name' || i, 1, i, i, '2026-01-01', '2026-01-01' FROM generate_series(1, 100000) i;
VACUUM ANALYZE t;
CREATE TABLE b AS SELECT 'u' || (i * 7919 % 100000 + 1) AS user_id, 'name' || i AS username, 2::bigint AS n,
  i::bigint AS followers, 3::bigint AS eng, '2026-01-02'::date AS first_day, '2026-01-02'::date AS last_day
  FROM generate_series(1, 5000) i;
ANALYZE b;
SQL
declare -A Q
Q[on_conflict]="INSERT INTO t AS g SELECT user_id, username, n, followers, eng, first_day, last_day FROM b ORDER BY user_id
ON CONFLICT (user_id) DO UPDATE SET username = greatest(g.username, excluded.username),
 tweets_count = g.tweets_count + excluded.tweets_count, followers_count = greatest(g.followers_count, excluded.followers_count),
 total_engagement = g.total_engagement + excluded.total_engagement, first_day = least(g.first_day, excluded.first_day),
 last_day = greatest(g.last_day, excluded.last_day)"
Q[update_from]="UPDATE t AS g SET username = greatest(g.username, x.username),
 tweets_count = g.tweets_count + x.n, followers_count = greatest(g.followers_count, x.followers),
 total_engagement = g.total_engagement + x.eng, first_day = least(g.first_day, x.first_day),
 last_day = greatest(g.last_day, x.last_day) FROM b x WHERE g.user_id = x.user_id"
Q[merge]="MERGE INTO t AS g USING b x ON g.user_id = x.user_id
WHEN MATCHED THEN UPDATE SET username = greatest(g.username, x.username),
 tweets_count = g.tweets_count + x.n, followers_count = greatest(g.followers_count, x.followers),
 total_engagement = g.total_engagement + x.eng, first_day = least(g.first_day, x.first_day),
 last_day = greatest(g.last_day, x.last_day)
WHEN NOT MATCHED THEN INSERT VALUES (x.user_id, x.username, x.n, x.followers, x.eng, x.first_day, x.last_day)"
forms="on_conflict update_from merge"
for r in $(seq 1 "$ROUNDS"); do
  order=$forms
  [ $((r % 2)) = 0 ] && order="merge update_from on_conflict"
  for f in $order; do
    printf '\\timing on\n%s;\n' "${Q[$f]}" > "$W/q.sql"
    chmod 644 "$W/q.sql"
    echo "$f $(sql -f "$W/q.sql" | sed -n 's/^Time: \([0-9.]*\) ms.*/\1/p')" >> "$W/times"
    sql -c "VACUUM t"
  done
done
for f in $forms; do
  m=$(awk -v f="$f" '$1 == f { print $2 }' "$W/times" | median)
  echo "$f $m"
  printf 'upsert_forms: %-12s runs %s; median %s ms\n' "$f" "$(awk -v f="$f" '$1 == f { printf "%s ", $2 }' "$W/times")" "$m" >&2
done > "$W/medians"
base=$(awk '$1 == "on_conflict" { print $2 }' "$W/medians")
while read -r f m; do
  printf 'upsert_forms_%s_ms %s ms\n' "$f" "$m"
  [ "$f" = on_conflict ] || printf 'upsert_forms_%s_vs_on_conflict %.3f x\n' "$f" "$(echo "$m / $base" | bc -l)"
done < "$W/medians"
