#!/usr/bin/env bash
# scripts/deb-test.sh - the Debian package for real, as root: builds postgresql-15-tweetlake with
# `dpkg-buildpackage -us -uc -b` (debian/, pg_buildext) from a scratch copy of the working tree
# in build/deb (nothing is built in the checkout), installs it with dpkg -i, checks its file
# list, runs the pg_regress suites and an upgrade from 0.1.0 against the INSTALLED package,
# then removes it with dpkg -r.
#
# NOTE: the package owns the same paths `make install` writes (/usr/lib/postgresql/15/lib/
# tweetlake.so, the bitcode, /usr/share/postgresql/15/extension/tweetlake*), so installing it
# replaces the working build's files and removing it deletes them.  The script therefore ends
# with `make install` from the checkout, which puts the working build back (and, should that
# build fail, copies back the files it saved before dpkg -i).  It does so on any exit once the
# package was installed.  Do not run it while other tests use the installed library.
#
# Before that, and alone with --metadata-only (no root, no build): the versions agree
# (tweetlake.control default_version, META.json version and provides, debian/changelog) and
# META.json has what PGXN's Meta Spec v1.0.0 requires.  --build-only: that, the build and the
# .deb's contents (dpkg-deb -c), without installing anything.
#
# The build itself runs with DEB_BUILD_OPTIONS=nocheck: the suites run here, against the
# installed files, instead of in dh_pgxs_test against debian/postgresql-15-tweetlake.
# scripts/test.sh runs it after the TAP suites (SKIP_DEB=1: --metadata-only there);
# `make test-deb` runs it alone.  Prints TAP-style "ok"/"not ok" lines and a last line
# "tap-summary: <passed> <failed>"; the .debs, the build log and the suites' output are kept
# in build/deb/ (logs/) until the next run.
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
. "$ROOT/scripts/lib.sh"

PKG=postgresql-15-tweetlake
PGLIB=$("$PG_CONFIG" --pkglibdir)
PGEXT=$("$PG_CONFIG" --sharedir)/extension
SCRATCH=$ROOT/build/deb
RESULTS=$SCRATCH/logs

passed=0; failed=0
ok()     { echo "ok - $*"; passed=$((passed + 1)); }
not_ok() { echo "not ok - $*"; failed=$((failed + 1)); }
check()  { local what=$1; shift; if "$@"; then ok "$what"; else not_ok "$what"; fi; }
summary() { echo "tap-summary: $passed $failed"; }
say()    { echo "# $*"; }

# --- metadata: one version everywhere, META.json as PGXN wants it ---------------------------
control_version=$(sed -n "s/^default_version = '\(.*\)'/\1/p" "$ROOT/tweetlake.control")
deb_version=$(dpkg-parsechangelog -l "$ROOT/debian/changelog" -S Version 2>/dev/null)
meta_check=$(python3 - "$ROOT" "$control_version" <<'EOF'
# Checks META.json against the PGXN Meta Spec v1.0.0 (https://pgxn.org/spec/): the required
# keys and their shapes, and that its versions are the control file's.
import json, os, re, sys
root, want = sys.argv[1], sys.argv[2]
problems = []
try:
    m = json.load(open(os.path.join(root, "META.json")))
except Exception as e:
    print("META.json does not parse: %s" % e); sys.exit(1)
semver = re.compile(r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?$")
for key in ("name", "version", "abstract", "maintainer", "license", "provides", "meta-spec"):
    if key not in m:
        problems.append("no %s" % key)
if not re.match(r"^1\.0\.\d+$", str(m.get("meta-spec", {}).get("version", ""))):
    problems.append("meta-spec.version is not 1.0.x")
if not semver.match(str(m.get("version", ""))):
    problems.append("version %r is not a semantic version" % m.get("version"))
elif m["version"] != want:
    problems.append("version %s, tweetlake.control says %s" % (m["version"], want))
provides = m.get("provides") or {}
if "tweetlake" not in provides:
    problems.append("provides has no tweetlake")
for ext, p in provides.items():
    if p.get("version") != want:
        problems.append("provides.%s.version %s, tweetlake.control says %s" % (ext, p.get("version"), want))
    for f in ("file", "docfile"):
        if f in p and not os.path.isfile(os.path.join(root, p[f])):
            problems.append("provides.%s.%s %s does not exist" % (ext, f, p[f]))
print("; ".join(problems) if problems else "META.json %s" % m.get("version"))
sys.exit(1 if problems else 0)
EOF
)
meta_rc=$?
echo "# versions: tweetlake.control $control_version, debian/changelog $deb_version, $meta_check"
check "META.json has the keys PGXN Meta Spec 1.0.0 requires and the control file's version ($meta_check)" \
  [ "$meta_rc" -eq 0 ]
check "debian/changelog's upstream version is tweetlake.control's ($deb_version vs $control_version)" \
  [ -n "$control_version" -a "${deb_version%-*}" = "$control_version" ]
mode=${1:-}
if [ "$mode" = --metadata-only ]; then summary; [ "$failed" -eq 0 ]; exit; fi

if [ "$(id -u)" -ne 0 ] && [ "$mode" != --build-only ]; then
  not_ok "deb-test.sh needs root (dpkg -i/-r; SKIP_DEB=1 make test checks only the versions)"
  summary; exit 1
fi
if [ "$mode" != --build-only ] && dpkg-query -W -f='${Status}' "$PKG" 2>/dev/null | grep -q 'install ok installed'; then
  not_ok "$PKG is already installed on this machine: this test would replace and then remove it; dpkg -r $PKG first"
  summary; exit 1
fi

# --- build, in a scratch copy of the tree ------------------------------------------------------
# What git tracks plus new files not ignored: the working tree as it is, without its build
# output (tweetlake.so, *.o, the built install script, build/).
SRC=$SCRATCH/tweetlake-$control_version
rm -rf "$SCRATCH"; mkdir -p "$SRC" "$RESULTS"
if git -C "$ROOT" rev-parse --git-dir >/dev/null 2>&1; then
  (cd "$ROOT" && git ls-files -z -co --exclude-standard | tar --null -T - --ignore-failed-read -cf - 2>/dev/null) | tar -xf - -C "$SRC"
else
  (cd "$ROOT" && tar --exclude=./build --exclude=./.run -cf - .) | tar -xf - -C "$SRC"
  make -s -C "$SRC" clean >/dev/null 2>&1
fi
# The build dependencies, from debian/control (debhelper, postgresql-server-dev-all, ...).
if ! (cd "$SRC" && dpkg-checkbuilddeps -P nocheck >/dev/null 2>&1); then
  say "installing the build dependencies of debian/control"
  export DEBIAN_FRONTEND=noninteractive
  (apt-get update -qq && apt-get build-dep -y -qq -P nocheck "$SRC") >"$RESULTS/build-deps.log" 2>&1 ||
    tail -n 20 "$RESULTS/build-deps.log"
fi
say "dpkg-buildpackage -us -uc -b in $SRC"
(cd "$SRC" && DEB_BUILD_OPTIONS="nocheck ${DEB_BUILD_OPTIONS:-}" DEB_BUILD_PROFILES=nocheck \
   dpkg-buildpackage -us -uc -b) >"$RESULTS/build.log" 2>&1
b_rc=$?
DEB=$SCRATCH/${PKG}_${deb_version}_$(dpkg --print-architecture).deb
if [ "$b_rc" -eq 0 ] && [ -f "$DEB" ]; then
  ok "dpkg-buildpackage -us -uc -b built $(basename "$DEB")"
else
  tail -n 40 "$RESULTS/build.log"
  not_ok "dpkg-buildpackage -us -uc -b (exit $b_rc; log: $RESULTS/build.log)"
  summary; exit 1
fi
leftovers=$(cd "$ROOT" && ls -d debian/.debhelper debian/files debian/*.substvars debian/debhelper-build-stamp \
  debian/"$PKG" debian/tmp ../*tweetlake*.deb ../tweetlake_*.changes ../tweetlake_*.buildinfo 2>/dev/null)
check "the checkout holds no build output of the package${leftovers:+: $leftovers}" [ -z "$leftovers" ]
depends=$(dpkg-deb -f "$DEB" Depends)
say "Depends: $depends"
check "the package depends on postgresql-15, librdkafka and json-c" \
  bash -c 'echo "$1" | grep -q "postgresql-15 " && echo "$1" | grep -q librdkafka1 && echo "$1" | grep -q libjson-c' _ "$depends"

# Whether the file list $2 (one path a line) has the library, the control file and every install
# and upgrade script of schema/ (the built one of this version too); $1 says whose list it is.
lists_all() {
  local f missing=() want=("$PGLIB/tweetlake.so" "$PGEXT/tweetlake.control" "$PGEXT/tweetlake--$control_version.sql")
  for f in "$ROOT"/schema/tweetlake--*.sql; do want+=("$PGEXT/$(basename "$f")"); done
  for f in "${want[@]}"; do grep -qxF "$f" "$2" || missing+=("$f"); done
  check "$1 lists tweetlake.so, tweetlake.control and all $(grep -c "^$PGEXT/tweetlake--.*\.sql$" "$2") install and upgrade scripts${missing[*]:+; missing: ${missing[*]}}" \
    [ ${#missing[@]} -eq 0 ]
}
dpkg-deb -c "$DEB" | awk '$1 !~ /^d/ { sub(/^\./, "", $6); print $6 }' >"$RESULTS/dpkg-deb-c.txt"
lists_all "dpkg-deb -c $(basename "$DEB")" "$RESULTS/dpkg-deb-c.txt"
if [ "$mode" = --build-only ]; then summary; [ "$failed" -eq 0 ]; exit; fi

# --- install -------------------------------------------------------------------------------------
# Saved first: the files the package will overwrite (the working build's), for the case that
# `make install` cannot put them back at the end.
SAVED=$(mktemp -d "${TMPDIR:-/tmp}/tweetlake-deb-saved.XXXXXX")
while read -r f; do
  [ -f "$f" ] && mkdir -p "$SAVED$(dirname "$f")" && cp -p "$f" "$SAVED$f"
done <"$RESULTS/dpkg-deb-c.txt"
installed=
restore() {
  [ -n "$installed" ] || return 0
  installed=
  if dpkg-query -W -f='${Status}' "$PKG" 2>/dev/null | grep -q 'install ok installed'; then
    dpkg -r "$PKG" >>"$RESULTS/dpkg.log" 2>&1
  fi
  if make -C "$ROOT" install >"$RESULTS/make-install.log" 2>&1 && [ -f "$PGLIB/tweetlake.so" ]; then
    return 0
  fi
  (cd "$SAVED" && find . -type f | while read -r f; do
     mkdir -p "$(dirname "/${f#./}")" && cp -p "$f" "/${f#./}"
   done)
  return 1
}
on_exit() {
  if [ -n "$installed" ]; then
    restore || echo "# make install failed: the files saved before dpkg -i were copied back"
  fi
  rm -rf "$SAVED"
}
trap on_exit EXIT
trap 'exit 130' INT TERM

installed=1
if dpkg -i "$DEB" >"$RESULTS/dpkg.log" 2>&1; then
  ok "dpkg -i $(basename "$DEB")"
else
  say "dpkg -i left dependencies unmet: apt-get install -f"
  if DEBIAN_FRONTEND=noninteractive apt-get install -f -y -qq >>"$RESULTS/dpkg.log" 2>&1 &&
     dpkg-query -W -f='${Status}' "$PKG" | grep -q 'install ok installed'; then
    ok "dpkg -i $(basename "$DEB") (dependencies installed by apt-get install -f)"
  else
    tail -n 20 "$RESULTS/dpkg.log"
    not_ok "dpkg -i $(basename "$DEB") (log: $RESULTS/dpkg.log)"
    summary; exit 1
  fi
fi

# --- what it installed ---------------------------------------------------------------------------
dpkg -L "$PKG" >"$RESULTS/dpkg-L.txt"
lists_all "dpkg -L $PKG" "$RESULTS/dpkg-L.txt"
check "the installed files are the package's (dpkg --verify $PKG)" \
  bash -c "dpkg --verify '$PKG' >'$RESULTS/dpkg-verify.txt' 2>&1 && [ ! -s '$RESULTS/dpkg-verify.txt' ]"

# --- the pg_regress suites against the installed package -----------------------------------------
# As scripts/test.sh runs them: a temporary instance of the installed server, which loads
# $libdir/tweetlake, now the package's.  The suites are those of the source the package was built from.
WORK=$(pg_owned_dir tweetlake-deb)
cp -r "$SRC/sql" "$SRC/expected" "$SRC/test" "$WORK/"
chown -R postgres: "$WORK"
tests=$(cd "$SRC/sql" && ls *.sql | sed 's/\.sql$//' | sort)
say "pg_regress: $(echo $tests | wc -w) suites against the installed package"
(cd "$WORK" && as_pg "$PG_REGRESS_BIN" \
    --inputdir="$WORK" --outputdir="$WORK" --bindir="$PG_BINDIR" \
    --temp-instance="$WORK/tmp_instance" --temp-config="$WORK/test/regress.conf" \
    --no-locale --encoding=UTF8 --dbname=contrib_regression $tests) >"$WORK/regress.log" 2>&1
for t in $tests; do
  line=$(grep -E "^(test| ) *$t +\.\.\. " "$WORK/regress.log" | tail -1)
  case "$line" in
    *"... ok"*) ok "pg_regress $t against the installed package" ;;
    *) not_ok "pg_regress $t against the installed package${line:+: $(echo "$line" | tr -s ' ')}" ;;
  esac
done
cp "$WORK/regress.log" "$RESULTS/"
[ -f "$WORK/regression.diffs" ] && cp "$WORK/regression.diffs" "$RESULTS/" && head -n 60 "$WORK/regression.diffs"

# --- every upgrade script in place: the oldest release updated to the current one ----------------
oldest=$(cd "$ROOT/schema" && ls tweetlake--*.sql | sed -n 's/^tweetlake--\([0-9.]*\)\.sql$/\1/p' | sort -V | head -1)
port=$(free_port)
as_pg initdb -D "$WORK/upgrade" -A trust -U postgres -E UTF8 --locale=C.UTF-8 >"$RESULTS/upgrade.log" 2>&1 &&
as_pg pg_ctl -D "$WORK/upgrade" -o "-p $port -c listen_addresses='' -k $WORK" -l "$WORK/upgrade.server.log" -w start >>"$RESULTS/upgrade.log" 2>&1
u_got=$(as_pg psql -X -q -h "$WORK" -p "$port" -U postgres -d postgres -At -v ON_ERROR_STOP=1 \
  -c "CREATE EXTENSION tweetlake VERSION '$oldest'" -c "ALTER EXTENSION tweetlake UPDATE" \
  -c "SELECT extversion FROM pg_extension WHERE extname = 'tweetlake'" 2>>"$RESULTS/upgrade.log" | tail -1)
as_pg pg_ctl -D "$WORK/upgrade" -m fast -w stop >/dev/null 2>&1
check "CREATE EXTENSION tweetlake VERSION '$oldest' then ALTER EXTENSION UPDATE reaches $control_version with the installed scripts (got '${u_got}')" \
  [ "$u_got" = "$control_version" ]
[ "${KEEP_TEST_DIR:-}" = 1 ] || rm -rf "$WORK"

# --- remove it, and put the working build back ---------------------------------------------------
if dpkg -r "$PKG" >>"$RESULTS/dpkg.log" 2>&1 && ! dpkg-query -W -f='${Status}' "$PKG" 2>/dev/null | grep -q 'install ok installed'; then
  ok "dpkg -r $PKG"
else
  not_ok "dpkg -r $PKG (log: $RESULTS/dpkg.log)"
fi
left=$(while read -r f; do [ -e "$f" ] && echo "$f"; done <"$RESULTS/dpkg-deb-c.txt")
check "dpkg -r removed tweetlake.so and every other file of the package${left:+; left: $(echo $left)}" [ -z "$left" ]
if restore; then
  ok "make install put the working build back ($PGLIB/tweetlake.so)"
else
  tail -n 20 "$RESULTS/make-install.log"
  not_ok "make install failed (log: $RESULTS/make-install.log): the files saved before dpkg -i were copied back"
fi
chmod -R a+rX "$RESULTS" 2>/dev/null
summary
[ "$failed" -eq 0 ]
