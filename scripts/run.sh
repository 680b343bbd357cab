#!/usr/bin/env bash
# `make run` / `make stop`: a throw-away PostgreSQL cluster with tweetlake preloaded, on a
# free loopback port, with the extension created and the pipeline running on the embedded
# Kafka default.  The cluster lives in $TWEETLAKE_RUN_DIR (default /var/tmp/tweetlake-run)
# until `make stop`.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
. "$ROOT/scripts/lib.sh"

RUN_DIR=${TWEETLAKE_RUN_DIR:-/var/tmp/tweetlake-run}
DATA=$RUN_DIR/data
PORT_FILE=$RUN_DIR/port

pg_running() { [ -f "$DATA/postmaster.pid" ] && as_pg pg_ctl -D "$DATA" status >/dev/null 2>&1; }

start() {
  mkdir -p "$RUN_DIR"
  [ "$(id -u)" -eq 0 ] && chown postgres: "$RUN_DIR"
  if pg_running; then
    echo "tweetlake: already running on port $(cat "$PORT_FILE") (make stop to stop it)"
  else
    if [ ! -d "$DATA" ]; then
      as_pg initdb -D "$DATA" -A trust -U postgres -E UTF8 --locale=C.UTF-8 >/dev/null
      cat >> "$DATA/postgresql.conf" <<CONF
# --- tweetlake (scripts/run.sh) ---
shared_preload_libraries = 'tweetlake'
listen_addresses = '127.0.0.1'
unix_socket_directories = '$RUN_DIR'
shared_buffers = 512MB
max_wal_size = 4GB
tweetlake.database = 'tweetlake'
CONF
    fi
    port=${PORT:-$(free_port)}
    echo "$port" > "$PORT_FILE"
    as_pg pg_ctl -D "$DATA" -o "-p $port" -l "$RUN_DIR/server.log" -w start >/dev/null
    echo "tweetlake: PostgreSQL $(pg_config --version | awk '{print $2}') started on 127.0.0.1:$port (log: $RUN_DIR/server.log)"
  fi
  port=$(cat "$PORT_FILE")
  psql_run() { as_pg psql -X -q -h "$RUN_DIR" -p "$port" -U postgres "$@"; }
  psql_run -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname = 'tweetlake'" | grep -q 1 ||
    psql_run -d postgres -c "CREATE DATABASE tweetlake"
  psql_run -d tweetlake -c "CREATE EXTENSION IF NOT EXISTS tweetlake"

  if [ "$(psql_run -d tweetlake -tAc "SELECT count(*) FROM pg_proc WHERE proname = 'start' AND pronamespace = 'tweetlake'::regnamespace")" = 1 ]; then
    psql_run -d tweetlake -c "SELECT tweetlake.start()" >/dev/null
    echo "tweetlake: waiting for the workers (the launcher checks for the extension every few seconds)"
    for _ in $(seq 90); do
      n=$(psql_run -d tweetlake -tAc "SELECT coalesce(sum(messages), 0) FROM tweetlake.status WHERE role = 'consumer'")
      [ "${n:-0}" -gt 5000 ] && break
      sleep 1
    done
    echo "tweetlake: streaming generated tweets through Kafka at $(psql_run -d tweetlake -tAc "SELECT tweetlake.bootstrap_servers()")"
    psql_run -d tweetlake -c "SELECT role, pid, state, messages, round(rate_10s) AS rate_10s, last_error FROM tweetlake.status ORDER BY role, pid"
  else
    echo "tweetlake: loading 200,000 generated tweets"
    psql_run -d tweetlake -c "SELECT tweetlake.load_generated(200000, (extract(epoch FROM now()))::bigint)"
  fi
  psql_run -d tweetlake -c "SELECT hashtag, sum(tweet_count) AS tweets, sum(total_engagement) AS engagement
                            FROM gold.popular_hashtags_by_hour GROUP BY hashtag ORDER BY tweets DESC LIMIT 10"
  psql_run -d tweetlake -c "SELECT * FROM tweetlake.verify()"
  if [ "${SUPERSET:-0}" = 1 ]; then
    # the dashboards of superset/bundle, connected as tweetlake_reader
    PGHOST=$RUN_DIR PGPORT=$port PGDATABASE=tweetlake PGUSER=postgres \
      SUPERSET_HOME=${SUPERSET_HOME:-$RUN_DIR/superset} bash "$ROOT/scripts/superset.sh" start
  fi
  cat <<MSG

Connect:  psql "host=127.0.0.1 port=$port dbname=tweetlake user=postgres"
Superset: make run SUPERSET=1 serves the dashboards on http://127.0.0.1:${SUPERSET_PORT:-8088}/
Stop:     make stop
MSG
}

stop() {
  if [ -d "$RUN_DIR/superset" ]; then
    SUPERSET_HOME=$RUN_DIR/superset bash "$ROOT/scripts/superset.sh" stop
  fi
  if pg_running; then
    as_pg pg_ctl -D "$DATA" -m fast -w stop >/dev/null
    echo "tweetlake: stopped (data kept in $RUN_DIR; rm -rf it to start afresh)"
  else
    echo "tweetlake: not running"
  fi
}

case "${1:-start}" in
  start) start ;;
  stop) stop ;;
  *) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
