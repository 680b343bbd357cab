#!/usr/bin/env bash
# Apache Superset on the gold tables of a running tweetlake: installs Superset into a
# virtualenv, prepares its metadata, gives the read-only role tweetlake_reader a password,
# imports the dashboards of superset/bundle and serves them.  Safe to run again.
#
# usage: scripts/superset.sh [start|setup|install|import|stop|status]
#   start    setup, then serve on $SUPERSET_PORT and wait for /health (the default)
#   serve    setup, then serve in the foreground (containers: docker/docker-compose.yml)
#   setup    install, metadata (db upgrade, init), admin user, reader password, import
#   install  only the virtualenv (pinned packages of superset/requirements.txt)
#   import   only the reader password and the bundle (e.g. after the server moved)
#   stop     stop the server started by start
#   status   whether it runs, and where
#
# The tweetlake server: PGHOST, PGPORT, PGDATABASE, PGUSER (a superuser, for ALTER ROLE) and
# PGPASSWORD if it needs one; used for the reader's password only, never passed to Superset.
# Superset connects as tweetlake_reader over TCP to SUPERSET_PGHOST (default: PGHOST, or
# 127.0.0.1 when PGHOST is a socket directory).
# Superset: SUPERSET_PORT (8088), SUPERSET_BIND (127.0.0.1), SUPERSET_HOME (metadata, logs,
# secrets; default build/superset-home), SUPERSET_VENV (default build/superset-venv),
# SUPERSET_METADATA_URI (metadata in Postgres instead of SQLite), SUPERSET_ADMIN_USER (admin).
# Secrets: SUPERSET_SECRET_KEY, SUPERSET_ADMIN_PASSWORD, TWEETLAKE_READER_PASSWORD; each one
# not given is generated once and kept in $SUPERSET_HOME/secrets.env (mode 600).
# gunicorn runs with none of PG*, POSTGRES_PASSWORD, SUPERSET_ADMIN_PASSWORD and
# TWEETLAKE_READER_PASSWORD in its environment; SUPERSET_METADATA_URI must carry its own
# credentials.
# One tenant's Superset (README "Tenants"): SUPERSET_TENANT=acme connects as the role
# SUPERSET_DB_ROLE (default superset_acme; made with LOGIN if missing, given the password and
# tweetlake.grant_tenant(role, 'acme')), so that every chart shows acme's rows only; its home
# defaults to build/superset-home-acme (its own metadata, secrets and pid: give it its own
# SUPERSET_PORT), and the Pipeline Health dashboard, which reads the status views of every
# source, is left out.  Without SUPERSET_TENANT it connects as tweetlake_reader, every tenant.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)

SUPERSET_VENV=${SUPERSET_VENV:-$ROOT/build/superset-venv}
SUPERSET_TENANT=${SUPERSET_TENANT:-}
if [ -n "$SUPERSET_TENANT" ]; then
  [[ $SUPERSET_TENANT =~ ^[a-z][a-z0-9_]{0,39}$ ]] ||
    { echo "superset.sh: SUPERSET_TENANT must be a tenant's name (lower case letters, digits and _, at most 40)" >&2; exit 2; }
  SUPERSET_DB_ROLE=${SUPERSET_DB_ROLE:-superset_$SUPERSET_TENANT}
  SUPERSET_HOME=${SUPERSET_HOME:-$ROOT/build/superset-home-$SUPERSET_TENANT}
else
  SUPERSET_DB_ROLE=${SUPERSET_DB_ROLE:-tweetlake_reader}
fi
[[ $SUPERSET_DB_ROLE =~ ^[a-z_][a-z0-9_]{0,62}$ ]] ||
  { echo "superset.sh: SUPERSET_DB_ROLE must be a plain role name (lower case letters, digits and _)" >&2; exit 2; }
SUPERSET_HOME=${SUPERSET_HOME:-$ROOT/build/superset-home}
SUPERSET_PORT=${SUPERSET_PORT:-8088}
SUPERSET_BIND=${SUPERSET_BIND:-127.0.0.1}
SUPERSET_ADMIN_USER=${SUPERSET_ADMIN_USER:-admin}
PGHOST=${PGHOST:-127.0.0.1}
PGPORT=${PGPORT:-5432}
PGDATABASE=${PGDATABASE:-tweetlake}
PGUSER=${PGUSER:-postgres}
case "$PGHOST" in /*) SUPERSET_PGHOST=${SUPERSET_PGHOST:-127.0.0.1} ;; *) SUPERSET_PGHOST=${SUPERSET_PGHOST:-$PGHOST} ;; esac
REQUIREMENTS=$ROOT/superset/requirements.txt
# Debian's interpreter: a venv keeps a link to it, and it must work for every user (the
# tests run as postgres), which a pyenv or conda python under /root would not.
PYTHON=${SUPERSET_PYTHON:-$( [ -x /usr/bin/python3 ] && echo /usr/bin/python3 || command -v python3)}
LOG=$SUPERSET_HOME/setup.log
PIDFILE=$SUPERSET_HOME/superset.pid
DASHBOARDS="tweet-analytics-overview:Tweet Analytics Overview
user-engagement-analysis:User Engagement Analysis
real-time-trends:Real-time Trends
pipeline-health:Pipeline Health"

export SUPERSET_HOME SUPERSET_CONFIG_PATH=$ROOT/superset/superset_config.py FLASK_APP=superset
# superset_config.py sits in the checkout: no __pycache__ there.
export PYTHONDONTWRITEBYTECODE=1

say() { echo "superset.sh: $*"; }
die() { echo "superset.sh: $*" >&2; exit 1; }

# Runs a step with its output in $LOG; on failure shows the end of it.
step() {
  local what=$1; shift
  echo "== $what" >> "$LOG"
  if ! "$@" >> "$LOG" 2>&1; then
    tail -n 40 "$LOG" >&2
    die "$what failed (full log: $LOG)"
  fi
}

requirements_hash() { sha256sum "$REQUIREMENTS" | cut -c1-64; }
installed() { [ -x "$SUPERSET_VENV/bin/superset" ] && [ "$(cat "$SUPERSET_VENV/.tweetlake-requirements" 2>/dev/null)" = "$(requirements_hash)" ]; }

install() {
  if installed; then return 0; fi
  say "installing Apache Superset into $SUPERSET_VENV (pinned in superset/requirements.txt, a few minutes)"
  mkdir -p "$(dirname "$SUPERSET_VENV")" 2>/dev/null || true
  [ -w "$(dirname "$SUPERSET_VENV")" ] || [ -w "$SUPERSET_VENV" ] ||
    die "cannot write $SUPERSET_VENV as $(id -un): set SUPERSET_VENV, or run 'scripts/superset.sh install' as its owner"
  [ -x "$SUPERSET_VENV/bin/python" ] || "$PYTHON" -m venv "$SUPERSET_VENV" ||
    die "could not create a virtualenv with $PYTHON (Debian: apt-get install python3-venv)"
  # pip retries a connection that fails, not a download that stalls halfway (a read
  # timeout ends the whole install): three attempts, the files already fetched kept in pip's
  # cache for the next
  local attempt
  for attempt in 1 2 3; do
    if "$SUPERSET_VENV/bin/pip" install --disable-pip-version-check --use-pep517 -q --timeout 60 \
         -r "$REQUIREMENTS"; then
      break
    fi
    [ "$attempt" = 3 ] && die "pip could not install superset/requirements.txt from PyPI into $SUPERSET_VENV (3 attempts)"
    say "pip failed (attempt $attempt of 3); trying again in 10 s"
    sleep 10
  done
  requirements_hash > "$SUPERSET_VENV/.tweetlake-requirements"
  chmod -R a+rX "$SUPERSET_VENV"
  say "installed $("$SUPERSET_VENV/bin/pip" show apache-superset 2>/dev/null | sed -n 's/^Version: /apache-superset /p')"
}

# A secret from the environment, else from secrets.env, else generated into secrets.env.
secret() {
  local name=$1 file=$SUPERSET_HOME/secrets.env value
  value=${!name:-}
  if [ -z "$value" ] && [ -f "$file" ]; then value=$(sed -n "s/^$name=//p" "$file" | tail -n 1); fi
  if [ -z "$value" ]; then
    value=$("$PYTHON" -c 'import secrets; print(secrets.token_urlsafe(32))')
    (umask 077; echo "$name=$value" >> "$file")
  fi
  export "$name=$value"
}

prepare_home() {
  # It holds secrets.env: created private, and never someone else's or a symbolic link.
  [ -L "$SUPERSET_HOME" ] && die "$SUPERSET_HOME is a symbolic link; refusing to keep secrets there"
  [ -e "$SUPERSET_HOME" ] || mkdir -p -m 700 "$SUPERSET_HOME"
  [ "$(stat -c %u "$SUPERSET_HOME")" = "$(id -u)" ] ||
    die "$SUPERSET_HOME belongs to $(stat -c %U "$SUPERSET_HOME"), not $(id -un); refusing to keep secrets there"
  chmod 700 "$SUPERSET_HOME"
  secret SUPERSET_SECRET_KEY
  secret SUPERSET_ADMIN_PASSWORD
  secret TWEETLAKE_READER_PASSWORD
}

psql_admin() { psql -X -q -v ON_ERROR_STOP=1 -h "$PGHOST" -p "$PGPORT" -U "$PGUSER" -d "$PGDATABASE" "$@"; }

reader_password() {
  command -v psql >/dev/null || die "psql not found"
  psql_admin -tAc "SELECT 1 FROM pg_class WHERE oid = to_regclass('gold.engagement_by_type_hour')" 2>/dev/null | grep -q 1 ||
    die "no tweetlake with gold.engagement_by_type_hour in database $PGDATABASE at $PGHOST:$PGPORT (make install; CREATE EXTENSION tweetlake)"
  # The password goes through stdin, not the command line, as a SCRAM verifier (what psql's
  # \password sends), and the statement is kept out of the server log whatever log_statement says.
  { echo "SET log_statement = 'none'; SET log_min_error_statement = 'panic';"
    if [ -n "$SUPERSET_TENANT" ]; then
      # a tenant's role: made once, limited as tweetlake_reader is, and given the tenant
      echo "DO \$\$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '$SUPERSET_DB_ROLE') THEN"
      echo "  CREATE ROLE $SUPERSET_DB_ROLE LOGIN; END IF; END \$\$;"
      echo "ALTER ROLE $SUPERSET_DB_ROLE SET statement_timeout = '60s';"
      echo "ALTER ROLE $SUPERSET_DB_ROLE SET temp_file_limit = '1GB';"
      echo "SELECT tweetlake.grant_tenant('$SUPERSET_DB_ROLE', '$SUPERSET_TENANT');"
    fi
    echo "ALTER ROLE $SUPERSET_DB_ROLE LOGIN PASSWORD '$(scram_verifier)';"
  } | psql_admin >/dev/null
  PGPASSWORD=$TWEETLAKE_READER_PASSWORD psql -X -q -h "$SUPERSET_PGHOST" -p "$PGPORT" -U "$SUPERSET_DB_ROLE" \
      -d "$PGDATABASE" -tAc "SELECT count(*) FROM gold.hourly_activity_summary" >/dev/null ||
    die "$SUPERSET_DB_ROLE cannot connect to $SUPERSET_PGHOST:$PGPORT/$PGDATABASE over TCP (listen_addresses? pg_hba.conf?)"
}

# The SCRAM-SHA-256 verifier PostgreSQL stores for TWEETLAKE_READER_PASSWORD (RFC 5802 /
# RFC 7677, as libpq's PQencryptPasswordConn makes it).  SASLprep leaves printable ASCII as
# it is; any other password is sent as it is for the server to hash.
scram_verifier() {
  "$PYTHON" <<'PY'
import base64, hashlib, hmac, os
pw = os.environ["TWEETLAKE_READER_PASSWORD"]
if not (pw.isascii() and pw.isprintable()):
    print(pw.replace("'", "''"))
    raise SystemExit
salt, n = os.urandom(16), 4096
salted = hashlib.pbkdf2_hmac("sha256", pw.encode(), salt, n)
client_key = hmac.new(salted, b"Client Key", "sha256").digest()
server_key = hmac.new(salted, b"Server Key", "sha256").digest()
b64 = lambda b: base64.b64encode(b).decode()
print(f"SCRAM-SHA-256${n}:{b64(salt)}${b64(hashlib.sha256(client_key).digest())}:{b64(server_key)}")
PY
}

reader_uri() {
  "$PYTHON" - "$SUPERSET_PGHOST" "$PGPORT" "$PGDATABASE" "$SUPERSET_DB_ROLE" <<'PY'
import os, sys
from urllib.parse import quote
host, port, db, role = sys.argv[1:5]
pw = quote(os.environ["TWEETLAKE_READER_PASSWORD"], safe="")
print(f"postgresql+psycopg2://{role}:{pw}@{host}:{port}/{quote(db, safe='')}")
PY
}

admin_user() {
  "$SUPERSET_VENV/bin/python" - <<'PY'
import os
from superset.app import create_app
app = create_app()
with app.app_context():
    from superset.extensions import security_manager as sm
    name, pw = os.environ["SUPERSET_ADMIN_USER"], os.environ["SUPERSET_ADMIN_PASSWORD"]
    user = sm.find_user(username=name)
    if user is None:
        if not sm.add_user(name, "Superset", "Admin", f"{name}@localhost", sm.find_role("Admin"), password=pw):
            raise SystemExit(f"could not create the Superset user {name}")
        print(f"created admin user {name}")
    else:
        sm.reset_password(user.id, pw)
        print(f"admin user {name} exists; password set")
PY
}

import_bundle() {
  reader_password
  TWEETLAKE_SUPERSET_URI=$(reader_uri) TWEETLAKE_SUPERSET_TENANT=$SUPERSET_TENANT \
    step "import superset/bundle" without_pg_credentials \
    "$SUPERSET_VENV/bin/python" "$ROOT/superset/import_bundle.py" "$ROOT/superset/bundle" \
      "$SUPERSET_HOME/bundle.zip" "$SUPERSET_ADMIN_USER"
  say "$(grep '^imported ' "$LOG" | tail -n 1) -> $SUPERSET_DB_ROLE@$SUPERSET_PGHOST:$PGPORT/$PGDATABASE"
}

# Superset's own steps run without the superuser's credentials: only psql_admin needs them.
without_pg_credentials() (
  unset PGUSER PGPASSWORD PGPASSFILE POSTGRES_PASSWORD
  "$@"
)

setup() {
  install
  prepare_home
  export SUPERSET_ADMIN_USER
  : > "$LOG"
  step "superset db upgrade" without_pg_credentials "$SUPERSET_VENV/bin/superset" db upgrade
  step "superset init" without_pg_credentials "$SUPERSET_VENV/bin/superset" init
  step "admin user" without_pg_credentials admin_user
  import_bundle
}

# gunicorn's request limits stay on: the request line up to 8190 bytes (gunicorn's largest
# finite value, twice its default, for Superset's long rison query strings in GET URLs), each
# header up to 8190 bytes and 100 headers (its defaults).
gunicorn_args() {
  echo --bind "$SUPERSET_BIND:$SUPERSET_PORT" --workers 2 --worker-class gthread --threads 4 \
    --timeout 120 --limit-request-line 8190 --limit-request-field_size 8190 --limit-request-fields 100
}

# The environment gunicorn runs with: the setup's credentials dropped (libpq's PG* with the
# superuser's PGUSER/PGPASSWORD, the admin's and the reader's passwords, POSTGRES_PASSWORD of
# the compose file).  Superset keeps SUPERSET_SECRET_KEY (superset_config.py reads it) and
# SUPERSET_METADATA_URI; the reader's password is in its metadata, encrypted with that key.
runtime_env() {
  local v
  for v in $(compgen -e); do
    case "$v" in
      PG*|POSTGRES_PASSWORD|SUPERSET_ADMIN_PASSWORD|TWEETLAKE_READER_PASSWORD|TWEETLAKE_SUPERSET_URI) unset "$v" ;;
    esac
  done
}

# Becomes gunicorn serving Superset (the arguments added), with the runtime environment only.
exec_gunicorn() {
  runtime_env
  cd "$SUPERSET_HOME"
  # shellcheck disable=SC2046
  exec "$SUPERSET_VENV/bin/gunicorn" $(gunicorn_args) "$@" "superset.app:create_app()"
}

running() { [ -f "$PIDFILE" ] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; }
base_url() { echo "http://$SUPERSET_BIND:$SUPERSET_PORT"; }

start() {
  setup
  if running; then
    say "already running (pid $(cat "$PIDFILE"))"
  else
    say "starting gunicorn on $(base_url) (log: $SUPERSET_HOME/superset.log)"
    (exec_gunicorn --daemon --pid "$PIDFILE" \
        --error-logfile "$SUPERSET_HOME/superset.log" --access-logfile "$SUPERSET_HOME/access.log")
  fi
  for _ in $(seq 120); do
    if [ "$(curl -fsS "$(base_url)/health" 2>/dev/null)" = OK ]; then
      report
      return 0
    fi
    sleep 1
  done
  tail -n 40 "$SUPERSET_HOME/superset.log" >&2 || true
  die "Superset did not answer $(base_url)/health within 120 s"
}

report() {
  say "Superset is up at $(base_url)/ (user $SUPERSET_ADMIN_USER, password in $SUPERSET_HOME/secrets.env unless SUPERSET_ADMIN_PASSWORD is set)"
  while IFS=: read -r slug title; do
    [ -n "$SUPERSET_TENANT" ] && [ "$slug" = pipeline-health ] && continue
    printf '  %-26s %s/superset/dashboard/%s/\n' "$title" "$(base_url)" "$slug"
  done <<< "$DASHBOARDS"
}

stop() {
  if ! running; then say "not running"; rm -f "$PIDFILE"; return 0; fi
  local pid; pid=$(cat "$PIDFILE")
  kill -TERM "$pid"
  for _ in $(seq 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
  kill -0 "$pid" 2>/dev/null && kill -KILL "$pid"
  rm -f "$PIDFILE"
  say "stopped"
}

case "${1:-start}" in
  start) start ;;
  setup) setup ;;
  serve) setup; exec_gunicorn --access-logfile - ;;
  install) install ;;
  import) install; prepare_home; export SUPERSET_ADMIN_USER; : > "$LOG"; import_bundle ;;
  stop) stop ;;
  status) if running; then say "running (pid $(cat "$PIDFILE"))"; report; else say "not running"; exit 3; fi ;;
  *) sed -n '2,26p' "$0" >&2; exit 2 ;;
esac
