#!/usr/bin/env bash
# Installs everything tweetlake needs to build, run and test on Debian 12 (bookworm), as root.
# Used by `make run`, `make test`, .ci/run and docker/Dockerfile alike, so they cannot drift apart.
set -euo pipefail

PG_MAJOR=${PG_MAJOR:-15}
packages=(
  "postgresql-$PG_MAJOR" "postgresql-server-dev-$PG_MAJOR" postgresql-client-"$PG_MAJOR"
  build-essential pkg-config libjson-c-dev librdkafka-dev kcat
  libipc-run-perl perl python3
)
superset=(python3-venv python3-pip curl ca-certificates)
# (none): build and run tweetlake (docker/Dockerfile, make run).
# --superset: also what scripts/superset.sh needs (a virtualenv of PyPI packages, curl).
# --superset-only: only that and psql, no server or compiler (docker/superset.Dockerfile).
# --test: what the test suite needs besides: a JDK and Maven for the real Apache Kafka
# broker (test/kafka), Chromium for the Superset test, PyYAML for the docker/ checks,
# matplotlib for bench/soak.sh's plot, pg-bsd-indent for scripts/indent.sh --check, debhelper
# and postgresql-server-dev-all for building the Debian package (scripts/deb-test.sh).
case "${1:-}" in
  "") ;;
  --superset) packages+=("${superset[@]}") ;;
  --superset-only) packages=(postgresql-client-"$PG_MAJOR" "${superset[@]}") ;;
  --test) packages+=(openjdk-17-jdk-headless maven chromium "${superset[@]}" python3-yaml python3-matplotlib pg-bsd-indent
                     debhelper postgresql-server-dev-all) ;;
  *) echo "usage: install-deps.sh [--superset|--superset-only|--test]" >&2; exit 2 ;;
esac
# more, e.g. TWEETLAKE_DEPS_EXTRA="linux-perf"
read -r -a extra <<< "${TWEETLAKE_DEPS_EXTRA:-}"

missing=()
for p in "${packages[@]}" "${extra[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "install-deps: missing packages: ${missing[*]} (run as root, or install them)" >&2
    exit 1
  fi
  echo "install-deps: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# Debian creates a default cluster on install; tweetlake runs its own throw-away clusters,
# so the packaged one is left alone (and not started where there is no init system).
if [ "${1:-}" = --superset-only ]; then
  echo "install-deps: ok ($(psql --version), $(python3 --version))"
else
  echo "install-deps: ok ($(pg_config --version), librdkafka $(pkg-config --modversion rdkafka), json-c $(pkg-config --modversion json-c))"
fi
