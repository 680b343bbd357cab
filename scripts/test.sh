#!/usr/bin/env bash
# Runs every test of tweetlake against the installed build: the pg_regress suites (sql/,
# expected/) on a temporary instance, then the TAP suites (t/*.pl) with
# PostgreSQL::Test::Cluster.  Each starts its own servers on free ports and stops them.
# Ends with one line "N passed, N failed".  Artifacts land in build/test-results/.
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
. "$ROOT/scripts/lib.sh"

make -s -C "$ROOT" test/mock_broker >/dev/null
WORK=$(pg_owned_dir tweetlake-test)
RESULTS=$ROOT/build/test-results
rm -rf "$RESULTS"; mkdir -p "$RESULTS"
# The inputs are copied: the checkout may sit where the server's user cannot read.
cp -r "$ROOT/sql" "$ROOT/expected" "$ROOT/test" "$ROOT/scripts" "$ROOT/superset" "$ROOT/docker" "$ROOT/README.md" "$WORK/"
[ -d "$ROOT/t" ] && cp -r "$ROOT/t" "$WORK/"
[ "$(id -u)" -eq 0 ] && chown -R postgres: "$WORK"

passed=0; failed=0
# What failed, one line each, printed again just above the last line: a CI log that keeps only
# its tail still names every failure.
recap=""
note_failure() { recap="$recap$1"$'\n'; }
# A failure of one step: its line now, one failure more, and the line again in the recap.
fail_step() { echo "$1"; failed=$((failed + 1)); note_failure "$1"; }
# Adds the counts of the last "tap-summary: <passed> <failed>" line of FILE to the totals;
# none there: MESSAGE, and one failure.
add_tap_summary() {
  local line
  line=$(grep -E '^tap-summary: ' "$1" | tail -1)
  if [ -z "$line" ]; then
    fail_step "$2"
  else
    passed=$((passed + $(echo "$line" | awk '{print $2}')))
    failed=$((failed + $(echo "$line" | awk '{print $3}')))
  fi
  while IFS= read -r line; do note_failure "$line"; done < <(grep -E '^(not ok|tap-failed: )' "$1")
}

# --- pg_regress ---------------------------------------------------------------
tests=$(cd "$ROOT/sql" && ls *.sql | sed 's/\.sql$//' | sort)
if [ -n "${REGRESS_ONLY:-}" ]; then tests=$REGRESS_ONLY; fi
echo "== pg_regress: $(echo $tests | wc -w) suites"
(cd "$WORK" && as_pg "$PG_REGRESS_BIN" \
    --inputdir="$WORK" --outputdir="$WORK" --bindir="$PG_BINDIR" \
    --temp-instance="$WORK/tmp_instance" --temp-config="$WORK/test/regress.conf" \
    --no-locale --encoding=UTF8 --dbname=contrib_regression $tests) | tee "$WORK/regress.log"
r_ok=$(grep -cE '\.\.\. ok' "$WORK/regress.log" || true)
r_bad=$(grep -cE '\.\.\. FAILED' "$WORK/regress.log" || true)
if [ "$((r_ok + r_bad))" -eq 0 ]; then
  echo "pg_regress ran no test (see $RESULTS/regress.log)"; r_bad=1
  note_failure "pg_regress ran no test (see $RESULTS/regress.log)"
fi
passed=$((passed + r_ok)); failed=$((failed + r_bad))
while IFS= read -r line; do note_failure "pg_regress: $line"; done < <(grep -E '\.\.\. FAILED' "$WORK/regress.log")
cp "$WORK/regress.log" "$RESULTS/" 2>/dev/null
[ -f "$WORK/regression.diffs" ] && cp "$WORK/regression.diffs" "$RESULTS/" && cat "$WORK/regression.diffs"
cp -r "$WORK/log" "$RESULTS/regress-server-log" 2>/dev/null

# --- TAP ----------------------------------------------------------------------
files=""
if [ "${TAP_ONLY:-}" != none ] && [ -d "$WORK/t" ] && ls "$WORK"/t/*.pl >/dev/null 2>&1; then
  files=$(cd "$WORK" && ls t/*.pl | sort)
  if [ -n "${TAP_ONLY:-}" ]; then files=$TAP_ONLY; fi
fi
# t/032_compose.pl drives podman as root: it has its own step below (scripts/compose-test.sh).
COMPOSE_SUITE=t/032_compose.pl
run_compose=
if printf '%s\n' $files | grep -qx "$COMPOSE_SUITE"; then
  run_compose=1
  files=$(printf '%s\n' $files | grep -vx "$COMPOSE_SUITE")
fi
# The real Apache Kafka broker of the suites that call start_kafka: jars from Maven Central,
# cached in build/kafka/lib, copied where the server's user can read them.
if [ -n "$files" ] && (cd "$WORK" && grep -l 'start_kafka\|kafka\.sh' $files >/dev/null 2>&1); then
  if bash "$ROOT/test/kafka/kafka.sh" install; then
    cp -r "$ROOT/build/kafka/lib" "$WORK/kafka-lib"
    [ "$(id -u)" -eq 0 ] && chown -R postgres: "$WORK/kafka-lib"
  else
    echo "test.sh: Apache Kafka could not be installed from Maven Central; the real-broker suites will fail"
  fi
fi
# Apache Superset for t/020_superset.pl: a virtualenv of superset/requirements.txt from PyPI,
# kept in build/superset-venv between runs.
export SUPERSET_VENV=${SUPERSET_VENV:-$ROOT/build/superset-venv}
if echo "$files" | grep -q 't/020_superset'; then
  if ! bash "$ROOT/scripts/superset.sh" install; then
    echo "test.sh: Apache Superset could not be installed from PyPI into $SUPERSET_VENV; t/020_superset.pl will fail"
  elif ! as_pg test -x "$SUPERSET_VENV/bin/python"; then
    echo "test.sh: the server's user cannot run $SUPERSET_VENV/bin/python; t/020_superset.pl will fail (set SUPERSET_VENV to a readable place)"
  fi
fi
if [ -n "$files" ]; then
  echo "== TAP: $(echo $files | wc -w) files"
  (cd "$WORK" && as_pg env TESTDIR="$WORK" PG_REGRESS="$PG_REGRESS_BIN" TWEETLAKE_SRC="$ROOT" \
      TWEETLAKE_KAFKA_LIB="$WORK/kafka-lib" SUPERSET_VENV="$SUPERSET_VENV" \
      perl "$WORK/test/tap-summary.pl" "$PG_PERL_LIB" $files) | tee "$WORK/tap.log"
  add_tap_summary "$WORK/tap.log" "TAP harness printed no summary"
  cp "$WORK/tap.log" "$RESULTS/"
  cp -r "$WORK/tmp_check" "$RESULTS/tap-tmp_check" 2>/dev/null
fi

# --- the Debian package for real (scripts/deb-test.sh, as root; a few minutes): built from a
# scratch copy in build/deb, installed with dpkg -i, the pg_regress suites run against it, removed
# with dpkg -r, and `make install` run again to put the working build back.  SKIP_DEB=1 skips the
# package and checks only that tweetlake.control, META.json and debian/changelog agree.
if [ -z "${TAP_ONLY:-}${REGRESS_ONLY:-}" ]; then
  if [ "${SKIP_DEB:-}" = 1 ]; then
    echo "== deb: skipped (SKIP_DEB=1): no package built; versions checked"
    bash "$ROOT/scripts/deb-test.sh" --metadata-only 2>&1 | tee "$WORK/deb-test.out" | grep --line-buffered -vE '^tap-summary: '
  else
    echo "== deb: bash scripts/deb-test.sh"
    bash "$ROOT/scripts/deb-test.sh" 2>&1 | tee "$WORK/deb-test.out" | grep --line-buffered -vE '^tap-summary: '
  fi
  add_tap_summary "$WORK/deb-test.out" "not ok - the deb suite printed no summary"
  cp "$WORK/deb-test.out" "$RESULTS/deb.log"
  [ -d "$ROOT/build/deb/logs" ] && cp -r "$ROOT/build/deb/logs" "$RESULTS/deb"
fi

# --- docker/ for real: every image built with podman, the stack up with podman-compose, checked
# through its published ports (scripts/compose-test.sh, as root; about 15 minutes the first time,
# less with the images cached).  With the other TAP suites, or when TAP_ONLY names it;
# SKIP_COMPOSE=1 skips it, and says so.
if [ -n "$run_compose" ] && [ "${SKIP_COMPOSE:-}" = 1 ]; then
  echo "== compose: skipped (SKIP_COMPOSE=1): docker/ was not built or run"
elif [ -n "$run_compose" ]; then
  echo "== compose: bash scripts/compose-test.sh ($COMPOSE_SUITE)"
  bash "$ROOT/scripts/compose-test.sh" 2>&1 | tee "$WORK/compose-test.out" | grep --line-buffered -vE '^tap-summary: '
  add_tap_summary "$WORK/compose-test.out" "not ok - the compose suite printed no summary (see $RESULTS/compose.log)"
fi

# --- the C sources are as pgindent leaves them (scripts/indent.sh --check) ---------------
if [ -z "${TAP_ONLY:-}${REGRESS_ONLY:-}" ]; then
  if bash "$ROOT/scripts/indent.sh" --check > "$RESULTS/indent.diff" 2>&1; then
    echo "ok - C sources are pgindent-clean"; passed=$((passed + 1))
  else
    head -n 40 "$RESULTS/indent.diff"
    fail_step "not ok - C sources are not pgindent-clean (make indent; diff in $RESULTS/indent.diff)"
  fi
fi

# --- the benchmark harness, at its smallest: it measures and does not gate, but it must run
# to its end (bench/run.sh prints "bench: <n> metrics, <m> below goal" last).
if [ -z "${TAP_ONLY:-}${REGRESS_ONLY:-}" ] && [ "${SKIP_BENCH:-}" != 1 ]; then
  echo "== bench: SCALE=smoke bash bench/run.sh"
  SCALE=smoke bash "$ROOT/bench/run.sh" > "$RESULTS/bench-smoke.log" 2>&1
  b_rc=$?
  b_line=$(grep -E '^bench: [0-9]+ metrics, [0-9]+ below goal$' "$RESULTS/bench-smoke.log" | tail -1)
  if [ "$b_rc" -eq 0 ] && [ -n "$b_line" ]; then
    echo "ok - bench smoke run: $b_line"; passed=$((passed + 1))
  else
    tail -n 30 "$RESULTS/bench-smoke.log"
    fail_step "not ok - bench smoke run (exit $b_rc; log: $RESULTS/bench-smoke.log)"
  fi
fi

# --- the extension built with ASan and UBSan through the regress suites, t/002 and t/004
# (scripts/sanitize.sh, about 3 minutes): any sanitizer report fails it.
if [ -z "${TAP_ONLY:-}${REGRESS_ONLY:-}" ] && [ "${SKIP_SANITIZE:-}" != 1 ]; then
  echo "== sanitizers: bash scripts/sanitize.sh"
  bash "$ROOT/scripts/sanitize.sh" > "$RESULTS/sanitize.log" 2>&1
  s_rc=$?
  s_line=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$RESULTS/sanitize.log" | tail -1)
  if [ "$s_rc" -eq 0 ] && [ -n "$s_line" ] && [ "$(echo "$s_line" | awk '{print $3}')" = 0 ]; then
    echo "ok - ASan/UBSan build: $s_line, $(grep -E '^sanitize: ' "$RESULTS/sanitize.log" | tail -1 | cut -d';' -f1)"
    passed=$((passed + 1))
  else
    tail -n 40 "$RESULTS/sanitize.log"
    fail_step "not ok - ASan/UBSan build (exit $s_rc; log: $RESULTS/sanitize.log)"
  fi
fi

chmod -R a+rX "$RESULTS" 2>/dev/null
[ "${KEEP_TEST_DIR:-}" = 1 ] || rm -rf "$WORK"
if [ -n "$recap" ]; then
  echo "== failed:"
  printf '%s' "$recap"
fi
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
