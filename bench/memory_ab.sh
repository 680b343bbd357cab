#!/usr/bin/env bash
# bench/memory_ab.sh - a consumer's private memory (RssAnon) over time, with and without an
# allocator setting, for the "memory that stays flat" work of the soak issue.  Starts a
# server of its own with the embedded broker, the generator at RATE tweets/s and one
# consumer, samples the consumer's RssAnon and message count every 5 s for SECONDS, once
# with the postmaster's default environment and once with ENV (e.g. MALLOC_ARENA_MAX=1),
# and prints both series and their first/last-fifth medians.
#
#   bash bench/memory_ab.sh [ENV] [SECONDS] [RATE]   default: MALLOC_ARENA_MAX=1 180 8000
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
. "$ROOT/scripts/lib.sh"
ENVSET=${1:-MALLOC_ARENA_MAX=1}
DUR=${2:-180}
RATE=${3:-8000}

series() {  # $1: environment for the postmaster ("" for none); prints "seconds kB messages"
  local W P cpid t0
  W=$(pg_owned_dir tweetlake-mem)
  P=$(free_port)
  as_pg initdb -D "$W/data" -A trust -U postgres -E UTF8 --locale=C.UTF-8 >/dev/null
  cat >> "$W/data/postgresql.conf" <<CONF
listen_addresses = ''
unix_socket_directories = '$W'
shared_buffers = 1GB
max_wal_size = 8GB
shared_preload_libraries = 'tweetlake'
tweetlake.database = 'postgres'
tweetlake.generator_rate = $RATE
tweetlake.consumers = 1
CONF
  as_pg env $1 pg_ctl -D "$W/data" -o "-p $P" -l "$W/server.log" -w start >/dev/null
  q() { as_pg psql -X -q -h "$W" -p "$P" -U postgres -d postgres -tA -c "$1"; }
  q "CREATE EXTENSION tweetlake"
  sleep 20  # warm-up: prefetch queue, plan caches, allocator
  cpid=$(q "SELECT pid FROM tweetlake.status WHERE role = 'consumer' AND pid IS NOT NULL LIMIT 1")
  t0=$(date +%s)
  while [ $(( $(date +%s) - t0 )) -lt "$DUR" ]; do
    echo "$(( $(date +%s) - t0 )) $(awk '/^RssAnon/ {print $2}' "/proc/$cpid/status") $(q "SELECT messages FROM tweetlake.status WHERE pid = $cpid")"
    sleep 5
  done
  as_pg pg_ctl -D "$W/data" -m immediate stop >/dev/null
  rm -rf "$W"
}
fifths() {  # medians of the first and last fifth of column 2
  local n k
  n=$(wc -l < "$1"); k=$(( (n + 4) / 5 ))
  echo "$(head -n "$k" "$1" | awk '{print $2}' | median) $(tail -n "$k" "$1" | awk '{print $2}' | median)"
}
A=$(mktemp); B=$(mktemp)
trap 'rm -f "$A" "$B"' EXIT
series "" > "$A"
series "$ENVSET" > "$B"
echo "default environment (s, RssAnon kB, messages):"; cat "$A"
echo "$ENVSET (s, RssAnon kB, messages):"; cat "$B"
read -r a0 a1 <<< "$(fifths "$A")"
read -r b0 b1 <<< "$(fifths "$B")"
echo "memory_ab: default $a0 -> $a1 kB ($(awk -v a="$a0" -v b="$a1" 'BEGIN { printf "%+.1f", (b - a) * 100 / a }') %), $ENVSET $b0 -> $b1 kB ($(awk -v a="$b0" -v b="$b1" 'BEGIN { printf "%+.1f", (b - a) * 100 / a }') %)"
