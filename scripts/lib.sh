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

# The median of the numbers on stdin, one per line, with one decimal ("nan" if none).
median() {
  sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) print "nan"; else if (NR % 2) printf "%.1f\n", v[(NR + 1) / 2]; else printf "%.1f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# A throw-away server for the benchmarks in DIR (data in DIR/data, socket in DIR, no TCP) on
# PORT, with tweetlake preloaded but not started (tweetlake.autostart = off), and the
# settings bench/RESULTS.md reports; more settings as arguments, one "name = value" each.
# Its locale is C.UTF-8; BENCH_LOCALE=en_US.UTF-8 (a locale locale-gen has made) and
# BENCH_LC_COLLATE=C (the collation alone) change it, for what a database's locale costs.
bench_server() {
  local dir=$1 port=$2; shift 2
  as_pg initdb -D "$dir/data" -A trust -U postgres -E UTF8 --locale="${BENCH_LOCALE:-C.UTF-8}" \
    ${BENCH_LC_COLLATE:+--lc-collate="$BENCH_LC_COLLATE"} >/dev/null
  {
    echo "listen_addresses = ''"
    echo "unix_socket_directories = '$dir'"
    echo "shared_buffers = 1GB"
    echo "max_wal_size = 8GB"
    echo "checkpoint_timeout = 30min"
    echo "shared_preload_libraries = 'tweetlake'"
    echo "tweetlake.database = 'postgres'"
    echo "tweetlake.autostart = off"
    if [ $# -gt 0 ]; then printf '%s\n' "$@"; fi
  } >> "$dir/data/postgresql.conf"
  as_pg pg_ctl -D "$dir/data" -o "-p $port" -l "$dir/server.log" -w start >/dev/null
}

# tweetlake.start() on the caller's server (its sql() function), then waits until
# tweetlake.offsets of TOPIC ("": of all) cover END messages, or no batch has come for STALL_S seconds.
# One session polls, committing after each look: a DO statement otherwise holds the snapshot
# it started with, and so the xmin horizon, for the whole drain (no row version the batches
# leave dead could be pruned, and no update of gold would be HOT). Sets drain_t0 (the start),
# drain_t1 (the commit of the last batch, from its commit timestamp) and drain_stored
# (messages covered).
start_and_drain() {
  local topic=$1 end=$2 stall=$3 where=
  # an empty TOPIC: the offsets of every source and topic together
  if [ -n "$topic" ]; then where="WHERE topic = '$topic'"; fi
  drain_t0=$(sql -c "SELECT extract(epoch FROM clock_timestamp()) FROM tweetlake.start()")
  sql -c "DO \$\$
          DECLARE done bigint; last bigint := -1; since timestamptz := clock_timestamp();
          BEGIN
            LOOP
              SELECT coalesce(sum(greatest(next_offset, 0)), 0) INTO done
                FROM tweetlake.offsets $where;
              EXIT WHEN done >= $end;
              IF done <> last THEN
                last := done; since := clock_timestamp();
              ELSIF clock_timestamp() - since > interval '$stall s' THEN
                EXIT;
              END IF;
              COMMIT;
              PERFORM pg_sleep(0.2);
            END LOOP;
          END \$\$"
  drain_stored=$(sql -c "SELECT coalesce(sum(greatest(next_offset, 0)), 0) FROM tweetlake.offsets $where")
  drain_t1=$(sql -c "SELECT extract(epoch FROM max(pg_xact_commit_timestamp(xmin))) FROM tweetlake.offsets $where")
}

# tweetlake.stop() on the caller's server, then waits (at most 60 s) until no consumer runs.
stop_consumers() {
  sql -c "SELECT tweetlake.stop()" >/dev/null
  for _ in $(seq 120); do
    [ "$(sql -c "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'tweetlake consumer'")" = 0 ] && break
    sleep 0.5
  done
}

# The benchmarks' Kafka broker (bench/drain.sh, bench/peers/): test/kafka/kafka.sh's in
# $W/kafka, or the one in KDIR when the caller set it.  Needs KAFKA, KDIR, W, LOG and a say
# function; sets KDIR, BOOT and own_broker, or exits 0 (skipped) when there is no broker.
bench_broker() {
  own_broker=
  if [ -z "$KDIR" ]; then
    if ! bash "$KAFKA" install >> "$LOG" 2>&1; then
      say "skipped: Kafka could not be installed ($(tail -1 "$LOG"))"
      exit 0
    fi
    KDIR=$W/kafka
    own_broker=1
    if ! bash "$KAFKA" start "$KDIR" >> "$LOG" 2>&1; then
      say "skipped: the broker did not start (see $LOG)"
      exit 0
    fi
  fi
  BOOT=$(sed -n 's/^BOOTSTRAP=//p' "$KDIR/ports")
}

# A throw-away server for a bench script that needs nothing else: sets W (a directory named
# after NAME) and PORT, starts bench_server there with SETTINGS, and stops it and removes W at
# the script's exit (bench_cleanup). bench_sql runs psql on it: on the database postgres,
# or on the one a -d among its arguments names (psql takes the last -d).
bench_scratch() {
  local name=$1; shift
  W=$(pg_owned_dir "$name")
  PORT=$(free_port)
  trap bench_cleanup EXIT
  bench_server "$W" "$PORT" "$@"
}
bench_sql() { as_pg psql -X -q -h "$W" -p "$PORT" -d postgres -v ON_ERROR_STOP=1 -At "$@"; }

# At the exit of a script that ran bench_server in $W and perhaps bench_broker: both stopped,
# $W removed (unless KEEP_BENCH_DIR=1).
bench_cleanup() {
  as_pg pg_ctl -D "$W/data" -m immediate stop >/dev/null 2>&1 || true
  if [ -n "${own_broker:-}" ]; then bash "$KAFKA" stop "$KDIR" >/dev/null 2>&1 || true; fi
  [ "${KEEP_BENCH_DIR:-}" = 1 ] || rm -rf "$W"
}
