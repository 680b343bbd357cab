#!/usr/bin/env bash
# docker/kafka-tool.sh - Kafka's command-line tools in the image of docker/kafka.Dockerfile,
# under the names the Kafka distribution gives them (kafka-topics.sh, ...: links to this file).
# Each runs its class on the jars of /opt/kafka/libs, logging warnings to stderr only.
set -euo pipefail
case "$(basename "$0")" in
  kafka-topics.sh)              class=org.apache.kafka.tools.TopicCommand ;;
  kafka-broker-api-versions.sh) class=org.apache.kafka.tools.BrokerApiVersionsCommand ;;
  kafka-get-offsets.sh)         class=org.apache.kafka.tools.GetOffsetShell ;;
  kafka-consumer-groups.sh)     class=org.apache.kafka.tools.consumer.group.ConsumerGroupCommand ;;
  kafka-console-producer.sh)    class=org.apache.kafka.tools.ConsoleProducer ;;
  kafka-console-consumer.sh)    class=org.apache.kafka.tools.consumer.ConsoleConsumer ;;
  kafka-storage.sh)             class=kafka.tools.StorageTool ;;
  *) echo "kafka-tool.sh: run it as one of the links in /opt/kafka/bin" >&2; exit 2 ;;
esac
# A short-lived JVM: a small heap, no C2 compiler (starts faster).
exec java ${KAFKA_TOOL_OPTS:--Xmx256m -XX:TieredStopAtLevel=1} \
  -Dlog4j2.configurationFile=/opt/kafka/config/tools-log4j2.properties \
  -cp '/opt/kafka/libs/*' "$class" "$@"
