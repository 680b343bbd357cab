#!/usr/bin/env bash
# docker/kafka-run.sh - PID 1 of the Kafka image (docker/kafka.Dockerfile): writes the broker's
# configuration from the environment, formats the log directory on first start (KRaft, cluster
# CLUSTER_ID) and becomes the broker (exec), so the stop signal reaches it.
#
# Every KAFKA_<NAME> variable is the broker setting <name>, as the apache/kafka image reads
# them: lower case, `_` for `.`, `__` for `_`, `___` for `-` (KAFKA_LOG_DIRS is log.dirs,
# KAFKA_NODE_ID node.id).  KAFKA_HEAP_OPTS (-Xms256m -Xmx1g) and KAFKA_OPTS are JVM options.
set -euo pipefail

say() { echo "kafka-run: $*"; }
die() { echo "kafka-run: ERROR: $*" >&2; exit 1; }

[ -n "${CLUSTER_ID:-}" ] || die "CLUSTER_ID is not set: the KRaft cluster id (kafka-storage.sh random-uuid makes one)"
[ -n "${KAFKA_PROCESS_ROLES:-}" ] || die "KAFKA_PROCESS_ROLES is not set (e.g. broker,controller)"

config=$(mktemp -d)/server.properties
for var in $(compgen -e | grep '^KAFKA_' | sort); do
  case "$var" in KAFKA_HEAP_OPTS|KAFKA_OPTS|KAFKA_TOOL_OPTS) continue ;; esac
  name=${var#KAFKA_}
  name=${name,,}
  name=${name//___/-}
  name=${name//__/%}
  name=${name//_/.}
  name=${name//%/_}
  printf '%s=%s\n' "$name" "${!var}" >> "$config"
done
log_dirs=$(sed -n 's/^log\.dirs=//p' "$config")
[ -n "$log_dirs" ] || die "KAFKA_LOG_DIRS is not set (the data volume, /var/lib/kafka/data)"

run_class() {
  java ${KAFKA_TOOL_OPTS:--Xmx256m -XX:TieredStopAtLevel=1} \
    -Dlog4j2.configurationFile=/opt/kafka/config/tools-log4j2.properties \
    -cp '/opt/kafka/libs/*' "$@"
}
if [ ! -f "${log_dirs%%,*}/meta.properties" ]; then
  say "formatting $log_dirs for cluster $CLUSTER_ID"
  run_class kafka.tools.StorageTool format --cluster-id "$CLUSTER_ID" --config "$config" --ignore-formatted
fi

say "starting Apache Kafka $(ls /opt/kafka/libs/ | sed -n 's/^kafka_2\.13-\(.*\)\.jar$/\1/p') (node $(sed -n 's/^node\.id=//p' "$config"), $(sed -n 's/^process\.roles=//p' "$config"))"
exec java ${KAFKA_HEAP_OPTS:--Xms256m -Xmx1g} -XX:+UseG1GC -Djava.awt.headless=true ${KAFKA_OPTS:-} \
  -Dlog4j2.configurationFile=/opt/kafka/config/log4j2.properties \
  -cp '/opt/kafka/libs/*' kafka.Kafka "$config"
