# scripts/lib.sh - shell helpers shared by run.sh, test.sh and bench/run.sh (sourced, not run).
# PostgreSQL refuses to run as root, so servers run as the unprivileged "postgres" user
# from directories it owns.

PG_CONFIG=${PG_CONFIG:-pg_config}
PG_BINDIR=$("$PG_CONFIG" --bindir)
PG_PGXS_DIR=$(cd "$(dirname "$("$PG_CONFIG" --pgxs)")/../.." && pwd)
PG_REGRESS_BIN=$PG_PGXS_DIR/src/test/regress/pg_regress
PG_PERL_LIB=$PG_PGXS_DIR/src/test/perl
export PATH="$PG_BINDIR:$PATH"

# Run a command as the server's user (a no-op wrapper when not root).
as_pg() {
  if [ "$(id -u)" -eq 0 ]; then
    runuser -u postgres -- env PATH="$PATH" "$@"
  else
    "$@"
  fi
}

# A directory the server's user owns.
pg_owned_dir() {
  local d
  d=$(mktemp -d "${TMPDIR:-/tmp}/$1.XXXXXX")
  chmod 755 "$d"
  [ "$(id -u)" -eq 0 ] && chown postgres: "$d"
  echo "$d"
}

# A TCP port on 127.0.0.1 that nothing listens on.
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}
