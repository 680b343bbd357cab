#!/usr/bin/env bash
# scripts/compose-test.sh - the docker/ stack for real: t/032_compose.pl builds every image of
# docker/docker-compose.yml with podman and brings the stack up with podman-compose, as root
# (scripts/test.sh runs it after the other suites; `make test-compose` runs it alone).
#
# Before the test it makes what this machine lacks and a user's Docker has:
#   - the engine: Debian's podman (runtime runc, no default ulimits: /etc/containers/containers.conf),
#     netavark, aardvark-dns and iptables (the stack's network and its names: netavark sets up
#     the bridge with iptables, which a minimal Debian lacks);
#   - podman-compose 1.6.0 from PyPI, in a virtualenv: Debian's 1.0.3 ignores the file's `name:`,
#     lets docker/.env override the environment, stops containers after 1 s whatever
#     stop_grace_period says and leaves the network behind on `down`;
#   - the base image debian:bookworm-slim, made by debootstrap (no image registry is reachable)
#     and given this machine's CA trust: outbound TLS here is re-signed by a local CA, which pip
#     and Maven inside the builds must trust.  That trust is in the test's base image only;
#     the Dockerfiles stay what a user builds anywhere.
# Cached between runs in build/compose/: the debootstrap root file system (a tarball; delete it to
# take a newer Debian) and podman-compose's virtualenv.  podman keeps the images, and with them
# the build cache, in its own store: a second run rebuilds only what changed.
#
# Prints the TAP of t/032_compose.pl and a last line "tap-summary: <passed> <failed>", also kept
# in build/test-results/compose.log; the compose output and each container's log are in
# build/test-results/compose/.  Whatever happens, the stack's containers,
# volumes and network are removed at the end.
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
CACHE=$ROOT/build/compose
RESULTS=${COMPOSE_RESULTS:-$ROOT/build/test-results}
BASE_IMAGE=docker.io/library/debian:bookworm-slim

say() { echo "compose-test: $*"; }
die() { echo "compose-test: $*" >&2; echo "tap-summary: 0 1"; exit 1; }

mkdir -p "$CACHE" "$RESULTS"
exec > >(tee "$RESULTS/compose.log") 2>&1
[ "$(id -u)" -eq 0 ] || die "needs root (podman runs the containers as root here; SKIP_COMPOSE=1 make test leaves this suite out)"

# --- the engine -----------------------------------------------------------------------------
engine() {
  local pkgs=(podman runc netavark aardvark-dns iptables debootstrap python3-venv postgresql-client-15 kcat libipc-run-perl) missing=() p
  for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    say "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq && apt-get install -y -qq "${missing[@]}" >/dev/null || return 1
  fi
  # crun (podman's default) refuses this machine's cgroup layout, and podman's default ulimits
  # are above what the machine allows.
  if ! grep -qs '^runtime = "runc"' /etc/containers/containers.conf; then
    mkdir -p /etc/containers
    [ -f /etc/containers/containers.conf ] && cp /etc/containers/containers.conf /etc/containers/containers.conf.orig
    printf '[containers]\ndefault_ulimits = []\n[engine]\nruntime = "runc"\n' > /etc/containers/containers.conf
  fi
  podman info >/dev/null 2>&1 || { podman info; return 1; }
}

# --- the base image -------------------------------------------------------------------------
mirror() {
  sed -n 's/^URIs: *//p' /etc/apt/sources.list.d/debian.sources 2>/dev/null | grep -v security | head -1 ||
    true
}

base_image() {
  local tarball=$CACHE/bookworm-rootfs.tar url rootfs trust
  url=$(mirror); url=${url:-http://deb.debian.org/debian}
  if [ ! -s "$tarball" ]; then
    rootfs=$(mktemp -d)
    say "debootstrap bookworm from $url (cached in $tarball)"
    debootstrap --variant=minbase bookworm "$rootfs" "$url" > "$RESULTS/compose-debootstrap.log" 2>&1 ||
      { tail -20 "$RESULTS/compose-debootstrap.log"; rm -rf "$rootfs"; return 1; }
    # the same sources as Debian's own image: the release, its updates and security
    rm -f "$rootfs/etc/apt/sources.list"
    cat > "$rootfs/etc/apt/sources.list.d/debian.sources" <<SOURCES
Types: deb
URIs: $url
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: ${url%/debian}/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SOURCES
    rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
    tar -C "$rootfs" -cf "$tarball.tmp" . && mv "$tarball.tmp" "$tarball"
    rm -rf "$rootfs"
  fi
  # The host's trust, for this test's base image only (see the top of this file).
  trust=$( (sha256sum "$tarball" | cut -c1-16; cat /etc/ssl/certs/ca-certificates.crt /usr/local/share/ca-certificates/*.crt 2>/dev/null) | sha256sum | cut -c1-16)
  if [ "$(podman image inspect --format '{{index .Labels "tweetlake.compose-test.base"}}' "$BASE_IMAGE" 2>/dev/null)" = "$trust" ]; then
    return 0
  fi
  say "importing $BASE_IMAGE (debootstrap root file system + this machine's CA trust)"
  rootfs=$(mktemp -d)
  tar -C "$rootfs" -xf "$tarball" || return 1
  mkdir -p "$rootfs/usr/local/share/ca-certificates" "$rootfs/etc/ssl/certs"
  cp /usr/local/share/ca-certificates/*.crt "$rootfs/usr/local/share/ca-certificates/" 2>/dev/null
  cp /etc/ssl/certs/ca-certificates.crt "$rootfs/etc/ssl/certs/ca-certificates.crt"
  printf '[global]\ncert = /etc/ssl/certs/ca-certificates.crt\n' > "$rootfs/etc/pip.conf"
  tar -C "$rootfs" -c . | podman import -q --change 'CMD ["bash"]' --change "LABEL tweetlake.compose-test.base=$trust" \
    - "$BASE_IMAGE" >/dev/null
  local rc=$?
  rm -rf "$rootfs"
  return $rc
}

# --- podman-compose -------------------------------------------------------------------------
PODMAN_COMPOSE_REQUIREMENTS="podman-compose==1.6.0 python-dotenv==1.2.4 PyYAML==6.0.4"
compose_tool() {
  local venv=$CACHE/podman-compose-venv
  if [ "$(cat "$venv/.requirements" 2>/dev/null)" != "$PODMAN_COMPOSE_REQUIREMENTS" ]; then
    say "installing $PODMAN_COMPOSE_REQUIREMENTS from PyPI into $venv"
    rm -rf "$venv"
    /usr/bin/python3 -m venv "$venv" &&
      "$venv/bin/pip" install -q --disable-pip-version-check $PODMAN_COMPOSE_REQUIREMENTS &&
      echo "$PODMAN_COMPOSE_REQUIREMENTS" > "$venv/.requirements" || return 1
  fi
  COMPOSE=$venv/bin/podman-compose
}

# --- the test -------------------------------------------------------------------------------
PROJECT=${COMPOSE_PROJECT:-tweetlake-test}
# If the test itself is killed, its END block does not run: remove what is left of its stack.
leftovers() {
  local c v n
  for c in $(podman ps -aq --filter "label=com.docker.compose.project=$PROJECT" 2>/dev/null); do podman rm -f -t 0 "$c" >/dev/null 2>&1; done
  for v in $(podman volume ls -q --filter "label=com.docker.compose.project=$PROJECT" 2>/dev/null); do podman volume rm -f "$v" >/dev/null 2>&1; done
  for n in $(podman network ls --format '{{.Name}}' 2>/dev/null | grep "^${PROJECT}_"); do podman network rm -f "$n" >/dev/null 2>&1; done
}

start=$(date +%s)
engine || die "could not set up podman (apt-get install podman runc ...)"
base_image || die "could not make the base image $BASE_IMAGE"
compose_tool || die "could not install podman-compose from PyPI"
say "engine and base image ready in $(( $(date +%s) - start )) s"
trap 'leftovers' EXIT
trap 'leftovers; exit 1' INT TERM

LOGS=$RESULTS/compose
rm -rf "$LOGS"; mkdir -p "$LOGS"
# Every line of the TAP is shown; the harness line that scripts/test.sh adds up follows the rules
# of test/tap-summary.pl (a file that dies or misses its plan is one failure more).
COMPOSE=$COMPOSE COMPOSE_SRC=${COMPOSE_SRC:-$ROOT} COMPOSE_PROJECT=$PROJECT COMPOSE_LOGS=$LOGS \
perl -MTAP::Harness -e '
  $| = 1;
  my $h = TAP::Harness->new({ verbosity => 1, timer => 1, merge => 1 });
  my $agg = $h->runtests(@ARGV);
  my ($p, $f) = (scalar $agg->passed, scalar $agg->failed);
  for my $file ($agg->descriptions) {
    my ($parser) = $agg->parsers($file);
    $f++ if !$parser->failed && ($parser->exit || $parser->parse_errors || !$parser->is_good_plan);
  }
  print "tap-summary: $p $f\n";' "$ROOT/t/032_compose.pl"
say "done in $(( $(date +%s) - start )) s (logs: $LOGS)"
