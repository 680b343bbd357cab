#!/usr/bin/env bash
# scripts/sanitize.sh (make sanitize) - the extension built with AddressSanitizer and
# UndefinedBehaviorSanitizer, run through the pg_regress suites, t/004_fuzz.pl and
# t/002_exactly_once.pl.  PostgreSQL itself is not instrumented: the build is installed into
# a private copy of the installed PostgreSQL (build/sanitize/pg, never the system one) whose
# bin/postgres is a wrapper that preloads the sanitizer runtime, so every server the suites
# start (pg_regress's temp instance, the TAP nodes) and every process it forks (backends,
# the tweetlake workers) run the instrumented code.  ASan reports go to files, one per
# process, UBSan reports to the server logs; any report fails the run.  Ends with the
# number of sanitizer reports and "N passed, N failed".
#   SANITIZE_DIR  where the copies live (default build/sanitize of the checkout)
#   TAP_ONLY      TAP files to run (default "t/002_exactly_once.pl t/004_fuzz.pl")
#   REGRESS_ONLY  pg_regress suites to run (default all)
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
SYS_PG_CONFIG=${PG_CONFIG:-pg_config}
SAN=${SANITIZE_DIR:-$ROOT/build/sanitize}
PGSAN=$SAN/pg
SRC=$SAN/src
OUT=$SAN/reports
start=$SECONDS

# -fno-sanitize-recover=all: an undefined-behaviour report ends the process like an ASan one
# (and fails the test that hit it), instead of printing and going on.  float-cast-overflow
# (a double out of range cast to an integer) is not part of GCC's "undefined" group.
# -fno-wrapv: PostgreSQL builds with -fwrapv, which defines signed overflow as wrapping, so
# UBSan would not check it; in the extension's arithmetic a wrap is a bug all the same.
SAN_CFLAGS="-fsanitize=address,undefined,float-cast-overflow -fno-sanitize-recover=all -fno-wrapv -fno-omit-frame-pointer -g -O1"
# detect_leaks=0: PostgreSQL frees memory contexts wholesale and exits without freeing;
# leak reports would be noise.  abort_on_error: the postmaster logs "terminated by signal 6".
ASAN_OPTS="detect_leaks=0:abort_on_error=1:print_summary=1"
UBSAN_OPTS="print_stacktrace=1:halt_on_error=1:abort_on_error=1"

die() { echo "sanitize.sh: $*" >&2; exit 1; }
step() { printf '== %s (%ds)\n' "$*" $((SECONDS - start)); }

# --- a private copy of the installed PostgreSQL -----------------------------------------
# pg_config and postgres find their directories relative to their own location, so a copy
# of bindir, pkglibdir, sharedir and the headers under a new root is a working installation.
step "private PostgreSQL in $PGSAN"
command -v "$SYS_PG_CONFIG" >/dev/null || die "no $SYS_PG_CONFIG (run: bash scripts/install-deps.sh)"
rm -rf "$PGSAN"
for d in "$("$SYS_PG_CONFIG" --bindir)" "$("$SYS_PG_CONFIG" --pkglibdir)" \
         "$("$SYS_PG_CONFIG" --sharedir)" "$("$SYS_PG_CONFIG" --pkgincludedir)"; do
  mkdir -p "$PGSAN$(dirname "$d")" && cp -a "$d" "$PGSAN$(dirname "$d")/" || die "cannot copy $d"
done
export PG_CONFIG=$PGSAN$("$SYS_PG_CONFIG" --bindir)/pg_config
for o in --bindir --pkglibdir --sharedir --includedir-server; do
  case "$("$PG_CONFIG" "$o")" in
    "$PGSAN"/*) ;;
    *) die "the copy's pg_config $o is $("$PG_CONFIG" "$o"), outside $PGSAN: this PostgreSQL is not relocatable" ;;
  esac
done
. "$ROOT/scripts/lib.sh"     # PG_BINDIR, PATH, as_pg, ... of the private copy
as_pg test -x "$PG_BINDIR/postgres" \
  || die "the server's user cannot run $PG_BINDIR/postgres (set SANITIZE_DIR to a place it can read)"

WORK=$(pg_owned_dir tweetlake-sanitize)
PRE=$WORK/preflight
cleanup() {
  [ -f "$PRE/postmaster.pid" ] && as_pg pg_ctl -D "$PRE" -m immediate stop >/dev/null 2>&1
  [ "${KEEP_TEST_DIR:-}" = 1 ] || rm -rf "$WORK"
}
trap cleanup EXIT
REPORTS=$WORK/reports   # ASan's log_path: asan.<pid>; UBSan (GCC) ignores it, writes to the server log
as_pg mkdir "$REPORTS"

libasan=$(readlink -f "$(gcc -print-file-name=libasan.so)")
[ -f "$libasan" ] || die "no libasan.so for gcc (install build-essential)"
libubsan=$(readlink -f "$(gcc -print-file-name=libubsan.so)")
[ -f "$libubsan" ] || die "no libubsan.so for gcc (install build-essential)"
# test/sanitize_preload.c (preloaded between the two) keeps a preloaded libasan from hanging
# postgres at start, and keeps UBSAN_OPTIONS for libubsan's first report.
preload=$PGSAN/sanitize_preload.so
gcc -O2 -fPIC -shared -o "$preload" "$ROOT/test/sanitize_preload.c" || die "cannot build $preload"
mv "$PG_BINDIR/postgres" "$PG_BINDIR/postgres.bin"
cat > "$PG_BINDIR/postgres" <<EOF
#!/bin/bash
# Written by scripts/sanitize.sh: the server with the sanitizer runtimes of the extension's
# instrumented build preloaded (PostgreSQL's own code is not instrumented); it logs each start.
export LD_PRELOAD="$libasan $preload $libubsan\${LD_PRELOAD:+ \$LD_PRELOAD}"
export ASAN_OPTIONS="$ASAN_OPTS:log_path=$REPORTS/asan"
export UBSAN_OPTIONS="$UBSAN_OPTS"
echo "\$\$ \$*" >> "$WORK/started" 2>/dev/null
exec -a "\$0" "\$(dirname "\$0")/postgres.bin" "\$@"
EOF
chmod 755 "$PG_BINDIR/postgres"
as_pg timeout 60 "$PG_BINDIR/postgres" -V >/dev/null || die "the wrapped postgres does not run (or hangs)"

# --- the instrumented build, from a copy of the working tree ------------------------------
# (so no instrumented src/*.o is left where a normal make would link it)
step "build with $SAN_CFLAGS"
rm -rf "$SRC"; mkdir -p "$SRC"
if git -C "$ROOT" rev-parse --git-dir >/dev/null 2>&1; then
  (cd "$ROOT" && git ls-files -z -co --exclude-standard \
     | while IFS= read -r -d '' f; do [ -e "$f" ] && printf '%s\0' "$f"; done \
     | tar --null -T - -cf -) | tar -xf - -C "$SRC"
else
  (cd "$ROOT" && tar --exclude=./build --exclude=./.run --exclude='*.o' --exclude='*.so' \
     --exclude='*.bc' -cf - .) | tar -xf - -C "$SRC"
fi
# with_llvm=no: no JIT bitcode of the instrumented sources
make -s -C "$SRC" -j"$(nproc)" with_llvm=no COPT="$SAN_CFLAGS" >"$SAN/build.log" 2>&1 \
  && make -s -C "$SRC" with_llvm=no COPT="$SAN_CFLAGS" install >>"$SAN/build.log" 2>&1 \
  || { tail -n 30 "$SAN/build.log"; die "build failed (log: $SAN/build.log)"; }
grep -q __asan_init "$("$PG_CONFIG" --pkglibdir)/tweetlake.so" || die "the installed tweetlake.so is not instrumented"

passed=0; failed=0
check() {  # check <ok?> <message>
  if [ "$1" = 1 ]; then echo "ok - $2"; passed=$((passed + 1)); else echo "not ok - $2"; failed=$((failed + 1)); fi
}

# --- preflight: instrumented workers, and a planted bug of each kind is caught ------------
# test/sanitize_canary.c is built with the same flags and run in a throw-away server with
# the pipeline running on its embedded broker; its reports are set aside, not counted.
step "preflight"
mkdir -p "$WORK/canary"
gcc $SAN_CFLAGS -fPIC -shared -I"$("$PG_CONFIG" --includedir-server)" \
  -o "$WORK/canary/sanitize_canary.so" "$ROOT/test/sanitize_canary.c" || die "cannot build the canary"
chmod -R a+rX "$WORK/canary"
port=$(free_port)
as_pg initdb -D "$PRE" -A trust -U postgres -E UTF8 --no-locale >/dev/null || die "initdb failed"
cat >> "$PRE/postgresql.conf" <<EOF
listen_addresses = ''
unix_socket_directories = '$WORK'
port = $port
shared_preload_libraries = 'tweetlake'
tweetlake.database = 'postgres'
tweetlake.generator_rate = 200
EOF
pre_psql() { as_pg psql -X -qAt -h "$WORK" -p "$port" -U postgres -d postgres "$@"; }
as_pg pg_ctl -D "$PRE" -l "$WORK/preflight.log" -w start >/dev/null || die "preflight server did not start"
pre_psql -c 'CREATE EXTENSION tweetlake' >/dev/null
pm=$(head -1 "$PRE/postmaster.pid")
roles="launcher broker generator consumer"
for _ in $(seq 1 240); do
  ps_out=$(ps -o pid=,args= --ppid "$pm")
  all=1; for r in $roles; do echo "$ps_out" | grep -q "tweetlake $r" || all=0; done
  [ "$all" = 1 ] && [ "$(pre_psql -c 'SELECT count(*) > 0 FROM silver.tweets')" = t ] && break
  sleep 0.25
done
for r in postmaster $roles; do
  if [ "$r" = postmaster ]; then pid=$pm; else pid=$(echo "$ps_out" | awk -v r="tweetlake $r" 'index($0, r) { print $1; exit }'); fi
  ok=0
  [ -n "$pid" ] && grep -q "$(basename "$libasan")" "/proc/$pid/maps" 2>/dev/null \
    && { [ "$r" = postmaster ] || grep -q '/tweetlake\.so' "/proc/$pid/maps"; } && ok=1
  check $ok "preflight: $r${pid:+ (pid $pid)} runs with the sanitizer runtime"
done
check "$([ "$(pre_psql -c 'SELECT count(*) > 0 FROM silver.tweets')" = t ] && echo 1)" \
  "preflight: the instrumented pipeline fills silver"
pre_psql -c "CREATE FUNCTION canary_heap_overflow(int) RETURNS int AS '$WORK/canary/sanitize_canary.so' LANGUAGE C STRICT;
             CREATE FUNCTION canary_signed_overflow(int) RETURNS int AS '$WORK/canary/sanitize_canary.so' LANGUAGE C STRICT" >/dev/null
for f in canary_heap_overflow canary_signed_overflow; do
  for _ in $(seq 1 120); do pre_psql -c 'SELECT 1' >/dev/null 2>&1 && break; sleep 0.5; done
  pre_psql -c "SELECT $f(16)" >/dev/null 2>&1
done
for _ in $(seq 1 120); do pre_psql -c 'SELECT 1' >/dev/null 2>&1 && break; sleep 0.5; done
as_pg pg_ctl -D "$PRE" -m fast -w stop >/dev/null || as_pg pg_ctl -D "$PRE" -m immediate stop >/dev/null
check "$(grep -ls 'ERROR: AddressSanitizer: heap-buffer-overflow' "$REPORTS"/asan.* | xargs -r grep -l 'in canary_heap_overflow' | grep -q . && echo 1)" \
  "preflight: a planted heap overflow is reported"
check "$(grep -qsE 'sanitize_canary\.c:[0-9]+:[0-9]+: runtime error: signed integer overflow' "$WORK/preflight.log" && echo 1)" \
  "preflight: a planted signed integer overflow is reported"
ok=0; [ "$(grep -c 'terminated by signal 6' "$WORK/preflight.log")" -ge 2 ] && ok=1
check $ok "preflight: the postmaster saw the reporting backends abort"
as_pg mkdir "$WORK/preflight-reports"
as_pg find "$REPORTS" -type f -exec mv -t "$WORK/preflight-reports" {} +

# --- the suites --------------------------------------------------------------------------
step "suites: scripts/test.sh on the private PostgreSQL"
export TAP_ONLY=${TAP_ONLY:-t/002_exactly_once.pl t/004_fuzz.pl}
as_pg cp /dev/null "$WORK/started"
# TMPDIR and KEEP_TEST_DIR: its work directory, with pg_regress's server log, stays in ours
TMPDIR=$WORK KEEP_TEST_DIR=1 bash "$SRC/scripts/test.sh" | tee "$WORK/test.log"
# every server of the suites went through the wrapper: pg_regress's, and one or more per TAP file
servers=$(grep -v -e ' --boot' -e ' --single' -e ' -V' -e ' -C ' "$WORK/started" | grep -c ' -D ')
expect=$(( $( [ "$TAP_ONLY" = none ] && echo 0 || echo $TAP_ONLY | wc -w) + 1 ))
check "$([ "$servers" -ge "$expect" ] && echo 1)" "the suites started $servers servers with the sanitizer runtime (at least $expect expected)"
line=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$WORK/test.log" | tail -1)
if [ -n "$line" ]; then
  passed=$((passed + $(echo "$line" | awk '{print $1}'))); failed=$((failed + $(echo "$line" | awk '{print $3}')))
else
  check 0 "scripts/test.sh printed no summary"
fi

# --- the verdict -------------------------------------------------------------------------
# Every ASan report file but the canary's, and every "runtime error:" (UBSan writes to the
# server log; so would ASan if it could not open its file) but the canary's, is a report.
step "sanitizer reports"
RESULTS=$SRC/build/test-results
rm -rf "$OUT"; mkdir -p "$OUT/asan" "$OUT/canary"
for f in "$WORK"/preflight-reports/* "$REPORTS"/*; do
  [ -f "$f" ] || continue
  if grep -q 'sanitize_canary\.c' "$f"; then cp "$f" "$OUT/canary/"; else cp "$f" "$OUT/asan/"; fi
done
cp "$WORK/preflight.log" "$WORK/test.log" "$OUT/"
mkdir -p "$OUT/regress-log"; cp "$WORK"/tweetlake-test.*/log/* "$OUT/regress-log/" 2>/dev/null
logs=("$OUT/preflight.log" "$OUT/regress-log" "$RESULTS/tap-tmp_check/log")
log_lines() { find "${logs[@]}" -type f -exec cat {} + 2>/dev/null | grep -E 'ERROR: AddressSanitizer|runtime error:' | grep -v 'sanitize_canary\.c'; }
n_asan=$(cat "$OUT"/asan/* 2>/dev/null | grep -c 'ERROR: AddressSanitizer')
n_logs=$(log_lines | wc -l)
n=$((n_asan + n_logs))
if [ "$n" -gt 0 ]; then
  echo "-- by kind and place (the first frame in the extension):"
  {
    for f in "$OUT"/asan/*; do
      [ -f "$f" ] || continue
      kind=$(grep -m1 -oE 'ERROR: AddressSanitizer: [A-Za-z-]+' "$f" | sed 's/.*: //')
      frame=$(grep -m1 -E '^ +#[0-9]+ 0x[0-9a-f]+ in [^ ]+ (src|test)/' "$f" | sed -E 's/^ +#[0-9]+ 0x[0-9a-f]+ in //')
      echo "AddressSanitizer $kind in ${frame:-(no frame in the extension)}"
    done
    log_lines | grep -oE '[^ ]+:[0-9]+:[0-9]+: runtime error: .*|ERROR: AddressSanitizer: .*'
  } | sort | uniq -c | sort -rn | head -n 20
  first=$(ls "$OUT"/asan/* 2>/dev/null | head -1)
  if [ -n "$first" ]; then
    echo "-- the first report ($first):"
    grep -vE '^ +#[0-9]+ 0x[0-9a-f]+ +\(' "$first" | head -n 40
  fi
  log_lines | head -n 5 | sed 's/^/-- in a server log: /'
fi
if [ "$n" -eq 0 ]; then
  check 1 "no sanitizer report (AddressSanitizer, UndefinedBehaviorSanitizer)"
else
  check 0 "$n sanitizer reports ($n_asan AddressSanitizer files in $OUT/asan, $n_logs in the server logs)"
fi
chmod -R a+rX "$OUT" 2>/dev/null
echo "sanitize: $n sanitizer reports; reports in $OUT, server logs in $RESULTS ($((SECONDS - start))s)"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
