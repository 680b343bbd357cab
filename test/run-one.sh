#!/usr/bin/env bash
# Runs one SQL file against a throw-away instance and prints its output (for writing
# expected/ files by hand and reading them before they are trusted).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
. "$ROOT/scripts/lib.sh"
W=$(pg_owned_dir tweetlake-one)
cp "$1" "$W/in.sql"; chown postgres: "$W/in.sql" 2>/dev/null || true
as_pg initdb -D "$W/data" -A trust -U postgres --no-locale -E UTF8 >/dev/null
cat "$ROOT/test/regress.conf" >> "$W/data/postgresql.conf"
as_pg pg_ctl -D "$W/data" -o "-k $W -c listen_addresses=''" -l "$W/log" -w start >/dev/null
as_pg createdb -h "$W" -U postgres contrib_regression
as_pg psql -X -a -h "$W" -U postgres -d contrib_regression -f "$W/in.sql" 2>&1 || true
as_pg pg_ctl -D "$W/data" -m immediate stop >/dev/null
rm -rf "$W"
