#!/usr/bin/env bash
# `make run` / `make stop`: a throw-away PostgreSQL cluster with tweetlake preloaded, on a
# free loopback port, with the extension created and the pipeline running on the embedded
# Kafka default.  The cluster lives in the run directory until `make stop`:
#
#   $TWEETLAKE_RUN_DIR (default: .run/ in the checkout)   the invoking user's, mode 700
#                                                         (710, group postgres, when root)
#     pgpass      the password of postgres over TCP, in libpq's passfile format (mode 600)
#     port        the port of the running cluster
#     server/     the server's (postgres when root), mode 700: data/, server.log, and the
#                 socket (unix_socket_permissions = 0700)
#     superset/   SUPERSET_HOME of `make run SUPERSET=1`
#
# Authentication: peer over the socket, for the superuser postgres only, from the server's OS
# user (and root); scram-sha-256 with the generated password over TCP on 127.0.0.1; no trust.
# A run directory that is a symbolic link, belongs to someone else, or is writable by others
# (itself or its parent, unless sticky) is refused: it could have been planted there.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
. "$ROOT/scripts/lib.sh"

die() { echo "run.sh: $*" >&2; exit 1; }

ME=$(id -un)
# The OS user the server runs as: postgres when run as root (PostgreSQL refuses root).
if [ "$(id -u)" -eq 0 ]; then SERVER_USER=postgres; else SERVER_USER=$ME; fi
# The default: the checkout's own .run/, unless the server's user cannot reach it (a checkout
# under /root): then /var/lib/tweetlake-run, in a directory only root can write.
if [ -n "${TWEETLAKE_RUN_DIR:-}" ]; then
  RUN_DIR=$TWEETLAKE_RUN_DIR
elif [ "$SERVER_USER" != "$ME" ] && ! as_pg test -x "$ROOT"; then
  RUN_DIR=/var/lib/tweetlake-run
else
  RUN_DIR=$ROOT/.run
fi
case "$RUN_DIR" in /*) ;; *) RUN_DIR=$PWD/$RUN_DIR ;; esac
[ "$RUN_DIR" = / ] || RUN_DIR=${RUN_DIR%/}
SERVER_DIR=$RUN_DIR/server
DATA=$SERVER_DIR/data
PORT_FILE=$RUN_DIR/port
PASSFILE=$RUN_DIR/pgpass

# "owner mode" of a path, without following a symbolic link.
owner_mode() { stat -c '%U %a' -- "$1"; }

# Refuses a directory another user could have planted or can still swap: a symbolic link,
# someone else's, or writable by group or others; and a parent others can write into
# without the sticky bit (they could rename it away and put their own in its place).
check_dir() {
  local dir=$1 owner=$2 o m
  check_parent "$dir"
  [ -L "$dir" ] && die "$dir is a symbolic link; refusing to use it (remove it, or set TWEETLAKE_RUN_DIR to a directory of your own)"
  [ -d "$dir" ] || die "$dir is not a directory"
  read -r o m <<< "$(owner_mode "$dir")"
  [ "$o" = "$owner" ] || die "$dir belongs to $o, not $owner; refusing to use it (someone else may have created it)"
  (( (8#$m & 8#022) == 0 )) || die "$dir is writable by its group or others (mode $m); refusing to use it"
}
check_parent() {
  local parent o m
  parent=$(dirname "$1")
  [ -d "$parent" ] || die "$parent does not exist"
  read -r o m <<< "$(stat -L -c '%U %a' -- "$parent")"
  if (( (8#$m & 8#022) != 0 && (8#$m & 8#1000) == 0 )); then
    die "$parent is writable by its group or others without the sticky bit (mode $m); put the run directory elsewhere"
  fi
}

# The run directory, created private (mkdir -m, no window with wider permissions) or checked.
make_run_dir() {
  check_parent "$RUN_DIR"
  if [ ! -e "$RUN_DIR" ] && [ ! -L "$RUN_DIR" ]; then
    mkdir -m 700 -- "$RUN_DIR"
  fi
  check_dir "$RUN_DIR" "$ME"
  if [ "$SERVER_USER" != "$ME" ]; then
    # only the server's group may pass through, to its own directory
    chgrp "$SERVER_USER" -- "$RUN_DIR"
    chmod 710 -- "$RUN_DIR"
  else
    chmod 700 -- "$RUN_DIR"
  fi
  if [ ! -e "$SERVER_DIR" ] && [ ! -L "$SERVER_DIR" ]; then
    mkdir -m 700 -- "$SERVER_DIR"
    [ "$SERVER_USER" = "$ME" ] || chown "$SERVER_USER": -- "$SERVER_DIR"
  fi
  check_dir "$SERVER_DIR" "$SERVER_USER"
  as_pg chmod 700 -- "$SERVER_DIR"
}

pg_running() { as_pg test -f "$DATA/postmaster.pid" && as_pg pg_ctl -D "$DATA" status >/dev/null 2>&1; }

# A new cluster: postgres gets a generated password, kept in $PASSFILE; pg_hba.conf allows
# nothing but peer for postgres over the socket and scram-sha-256 over TCP on loopback.
create_cluster() {
  local password
  password=$(python3 -c 'import secrets; print(secrets.token_urlsafe(24))')
  rm -f -- "$PASSFILE"
  (umask 077; printf '127.0.0.1:*:*:postgres:%s\n' "$password" > "$PASSFILE")
  # initdb reads it from a file only the server's user can read, removed at once
  printf '%s\n' "$password" | as_pg sh -c 'umask 077; cat > "$1"' sh "$SERVER_DIR/initdb.pw"
  if ! as_pg initdb -D "$DATA" -U postgres --pwfile="$SERVER_DIR/initdb.pw" -E UTF8 --locale=C.UTF-8 \
         --auth-local=peer --auth-host=scram-sha-256 >/dev/null; then
    as_pg rm -f "$SERVER_DIR/initdb.pw"
    die "initdb failed"
  fi
  as_pg rm -f "$SERVER_DIR/initdb.pw"
  as_pg sh -c 'cat > "$1"' sh "$DATA/pg_hba.conf" <<'HBA'
# tweetlake (scripts/run.sh): the superuser postgres over the socket (a directory only the
# server's user can enter) for the OS users of pg_ident.conf's map "tweetlake"; any role over
# TCP on loopback with a scram-sha-256 password (postgres: see pgpass in the run directory).
# TYPE  DATABASE  USER      ADDRESS       METHOD
local   all       postgres                peer map=tweetlake
host    all       all       127.0.0.1/32  scram-sha-256
HBA
  {
    echo "# tweetlake (scripts/run.sh): who may be the superuser postgres over the socket"
    echo "tweetlake  $SERVER_USER  postgres"
    # root, who started it, can become postgres anyway (make run SUPERSET=1 sets up as root)
    [ "$ME" = "$SERVER_USER" ] || echo "tweetlake  $ME  postgres"
  } | as_pg sh -c 'cat >> "$1"' sh "$DATA/pg_ident.conf"
  as_pg sh -c 'cat >> "$1"' sh "$DATA/postgresql.conf" <<CONF
# --- tweetlake (scripts/run.sh) ---
shared_preload_libraries = 'tweetlake'
listen_addresses = '127.0.0.1'
unix_socket_directories = '$SERVER_DIR'
unix_socket_permissions = 0700
password_encryption = scram-sha-256
shared_buffers = 512MB
max_wal_size = 4GB
tweetlake.database = 'tweetlake'
CONF
}

start() {
  make_run_dir
  if pg_running; then
    echo "tweetlake: already running on port $(cat "$PORT_FILE") (make stop to stop it)"
  else
    if ! as_pg test -d "$DATA"; then
      create_cluster
    fi
    [ -f "$PASSFILE" ] || die "$PASSFILE is missing: the password of postgres is lost (make stop; rm -rf $RUN_DIR to start afresh)"
    port=${PORT:-$(free_port)}
    echo "$port" > "$PORT_FILE"
    as_pg pg_ctl -D "$DATA" -o "-p $port" -l "$SERVER_DIR/server.log" -w start >/dev/null
    echo "tweetlake: PostgreSQL $(pg_config --version | awk '{print $2}') started on 127.0.0.1:$port (log: $SERVER_DIR/server.log)"
  fi
  port=$(cat "$PORT_FILE")
  psql_run() { as_pg psql -X -q -h "$SERVER_DIR" -p "$port" -U postgres "$@"; }
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
    # the dashboards of superset/bundle, connected as tweetlake_reader; the setup sets the
    # reader's password as postgres over the socket (peer), so no password is passed
    PGHOST=$SERVER_DIR PGPORT=$port PGDATABASE=tweetlake PGUSER=postgres \
      SUPERSET_HOME=${SUPERSET_HOME:-$RUN_DIR/superset} bash "$ROOT/scripts/superset.sh" start
  fi
  cat <<MSG

Connect:  psql "host=127.0.0.1 port=$port dbname=tweetlake user=postgres passfile=$PASSFILE"
          (the password of postgres is the last field of $PASSFILE, mode 600)
          or, as the OS user $SERVER_USER: psql -h $SERVER_DIR -p $port -U postgres tweetlake
Superset: make run SUPERSET=1 serves the dashboards on http://127.0.0.1:${SUPERSET_PORT:-8088}/
Stop:     make stop
MSG
}

stop() {
  if [ ! -e "$RUN_DIR" ] && [ ! -L "$RUN_DIR" ]; then
    echo "tweetlake: not running (no $RUN_DIR)"
    return 0
  fi
  check_dir "$RUN_DIR" "$ME"
  if [ -d "$RUN_DIR/superset" ]; then
    check_dir "$RUN_DIR/superset" "$ME"
    SUPERSET_HOME=$RUN_DIR/superset bash "$ROOT/scripts/superset.sh" stop
  fi
  if [ -e "$SERVER_DIR" ] || [ -L "$SERVER_DIR" ]; then check_dir "$SERVER_DIR" "$SERVER_USER"; fi
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
