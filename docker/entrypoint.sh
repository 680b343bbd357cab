#!/usr/bin/env bash
# docker/entrypoint.sh - PID 1 of the tweetlake image (docker/Dockerfile).
#
# On an empty $PGDATA it creates the cluster (scram-sha-256 for TCP, peer for the socket),
# the database `tweetlake` and the extension in it; on every start it writes the tweetlake
# settings from the environment into $PGDATA/tweetlake.docker.conf and then becomes the
# postmaster (exec), so `docker stop` reaches PostgreSQL itself.
#
#   POSTGRES_PASSWORD         password of the superuser postgres; needed to create the cluster
#   PGDATA, PGPORT            data directory (/var/lib/postgresql/data) and port (5432)
#   POSTGRES_LISTEN           listen_addresses ('*')
#   POSTGRES_SOCKET_DIR       unix_socket_directories (/var/run/postgresql)
#   TWEETLAKE_BROKERS         tweetlake.brokers: bootstrap servers; empty = the embedded broker
#   TWEETLAKE_TOPIC           tweetlake.topic (tweets)
#   TWEETLAKE_GENERATOR_RATE  tweetlake.generator_rate (1000; 0 off, -1 as fast as possible)
#   TWEETLAKE_CONSUMERS       tweetlake.consumers (1)
#   TWEETLAKE_KAFKA_CONFIG_FILE  tweetlake.kafka_config_file (a mounted properties file)
#
# Settings made with ALTER SYSTEM live in postgresql.auto.conf and win over these.
# Any other command (e.g. `bash`) is run as given.
set -euo pipefail

PGDATA=${PGDATA:-/var/lib/postgresql/data}
PGPORT=${PGPORT:-5432}
POSTGRES_LISTEN=${POSTGRES_LISTEN:-*}
POSTGRES_SOCKET_DIR=${POSTGRES_SOCKET_DIR:-/var/run/postgresql}
export PGDATA PGPORT

say() { echo "tweetlake-entrypoint: $*"; }
die() { echo "tweetlake-entrypoint: ERROR: $*" >&2; exit 1; }

if [ "${1:-postgres}" != postgres ]; then
  exec "$@"
fi
shift || true

# PostgreSQL does not run as root: prepare the directories, then run this script again as
# postgres (setpriv execs, so the postmaster keeps PID 1).
if [ "$(id -u)" -eq 0 ]; then
  mkdir -p "$PGDATA" "$POSTGRES_SOCKET_DIR"
  chown postgres:postgres "$PGDATA" "$POSTGRES_SOCKET_DIR"
  chmod 700 "$PGDATA"
  exec setpriv --reuid=postgres --regid=postgres --init-groups "$0" postgres "$@"
fi

# A setting's value, quoted for postgresql.conf.
quote() { printf "'%s'" "${1//\'/\'\'}"; }
integer() {
  [[ $2 =~ ^-?[0-9]+$ ]] || die "$1 must be an integer, not '$2'"
  echo "$2"
}

write_settings() {
  local rate consumers
  rate=$(integer TWEETLAKE_GENERATOR_RATE "${TWEETLAKE_GENERATOR_RATE:-1000}")
  consumers=$(integer TWEETLAKE_CONSUMERS "${TWEETLAKE_CONSUMERS:-1}")
  [ "$consumers" -ge 1 ] && [ "$consumers" -le 31 ] || die "TWEETLAKE_CONSUMERS must be between 1 and 31, not $consumers"
  cat > "$PGDATA/tweetlake.docker.conf" <<CONF
# Written by the container's entrypoint at every start, from its environment; do not edit
# (use ALTER SYSTEM, or change the environment and restart the container).
listen_addresses = $(quote "$POSTGRES_LISTEN")
port = $PGPORT
unix_socket_directories = $(quote "$POSTGRES_SOCKET_DIR")
shared_preload_libraries = 'tweetlake'
max_worker_processes = $((consumers + 8))
tweetlake.database = 'tweetlake'
tweetlake.brokers = $(quote "${TWEETLAKE_BROKERS:-}")
tweetlake.topic = $(quote "${TWEETLAKE_TOPIC:-tweets}")
tweetlake.generator_rate = $rate
tweetlake.consumers = $consumers
tweetlake.kafka_config_file = $(quote "${TWEETLAKE_KAFKA_CONFIG_FILE:-}")
CONF
}

if [ ! -s "$PGDATA/PG_VERSION" ]; then
  [ -n "${POSTGRES_PASSWORD:-}" ] ||
    die "POSTGRES_PASSWORD is not set: it is the password of the superuser postgres, needed to create the cluster in $PGDATA (e.g. docker compose reads it from .env)"
  say "creating the cluster in $PGDATA"
  # initdb reads the password from a file (not its arguments): private, and gone even if
  # initdb fails
  pwfile=$(mktemp)
  trap 'rm -f "$pwfile"' EXIT
  printf '%s\n' "$POSTGRES_PASSWORD" > "$pwfile"
  initdb -D "$PGDATA" -U postgres --pwfile="$pwfile" -E UTF8 --locale=C.UTF-8 \
         --auth-local=peer --auth-host=scram-sha-256 >/dev/null
  rm -f "$pwfile"
  trap - EXIT
  cat >> "$PGDATA/pg_hba.conf" <<'HBA'
# tweetlake image: password (scram-sha-256) from anywhere the container's ports reach
host    all             all             0.0.0.0/0               scram-sha-256
host    all             all             ::/0                    scram-sha-256
HBA
  cat >> "$PGDATA/postgresql.conf" <<'CONF'

# --- tweetlake image ---
shared_buffers = 512MB
max_wal_size = 4GB
include_if_exists = 'tweetlake.docker.conf'
CONF
  write_settings
  # A private server, no TCP, no workers, to create the database and the extension.
  init_socket=$(mktemp -d)
  pg_ctl -D "$PGDATA" -w -l "$PGDATA/init.log" \
         -o "-c listen_addresses='' -c unix_socket_directories='$init_socket' -c tweetlake.autostart=off" start >/dev/null
  psql -X -q -v ON_ERROR_STOP=1 -h "$init_socket" -U postgres -d postgres <<'SQL'
CREATE DATABASE tweetlake;
\connect tweetlake
CREATE EXTENSION tweetlake;
SQL
  pg_ctl -D "$PGDATA" -m fast -w stop >/dev/null
  rm -rf "$init_socket" "$PGDATA/init.log"
  say "created the database tweetlake with the extension tweetlake in it"
fi

write_settings
# The password is in the cluster now; the postmaster and every backend would otherwise carry
# it in their environment (/proc/PID/environ, readable with pg_read_server_files).
unset POSTGRES_PASSWORD
say "starting PostgreSQL on port $PGPORT (tweetlake.brokers = '${TWEETLAKE_BROKERS:-}'$([ -z "${TWEETLAKE_BROKERS:-}" ] && echo ': the embedded broker'))"
exec postgres -D "$PGDATA" "$@"
