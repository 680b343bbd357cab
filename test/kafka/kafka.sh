#!/usr/bin/env bash
# test/kafka/kafka.sh - a real Apache Kafka broker (KRaft, single node) for the tests and
# benchmarks, from Maven Central jars run on the machine's JDK 17.  Nothing else is
# downloaded: `install` resolves test/kafka/pom.xml with Maven into a cache directory.
#
#   kafka.sh install                      jars into $KAFKA_LIB (default build/kafka/lib)
#   kafka.sh start DIR                    format DIR and start a broker; prints
#                                           BOOTSTRAP=127.0.0.1:<port>        PLAINTEXT
#                                           SASL_BOOTSTRAP=127.0.0.1:<port>   SASL_PLAINTEXT
#                                           SSL_BOOTSTRAP=127.0.0.1:<port>    SASL_SSL
#                                         (also written to DIR/ports); SASL users are in
#                                         DIR/users (user=password lines), the CA is DIR/ca.pem
#   kafka.sh restart DIR                  stop and start again on the same ports and data
#   kafka.sh stop DIR                     stop it (SIGTERM: a controlled shutdown)
#   kafka.sh topic DIR NAME PARTITIONS    create a topic
#   kafka.sh produce DIR TOPIC            the Java console producer: one message per stdin line
#   kafka.sh tool DIR CLASS ARGS...       run another Kafka tool class against the broker
#
# Auto-creation of topics is off, as on most production clusters.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
KAFKA_LIB=${KAFKA_LIB:-$ROOT/build/kafka/lib}
KAFKA_HEAP=${KAFKA_HEAP:--Xms256m -Xmx512m}

die() { echo "kafka.sh: $*" >&2; exit 1; }

# N distinct TCP ports on 127.0.0.1 that nothing listens on: all held open until all are
# chosen (one at a time, the kernel may hand out a port it just gave back, and the broker
# refuses two listeners on one port)
free_ports() {
  python3 -c 'import socket, sys
socks = [socket.socket() for _ in range(int(sys.argv[1]))]
for s in socks: s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in socks))' "$1"
}

need_java() {
  command -v java >/dev/null || die "no java on PATH: install openjdk-17-jdk-headless (scripts/install-deps.sh --test)"
  local v
  v=$(java -XX:+IgnoreUnrecognizedVMOptions -version 2>&1 | sed -n 's/.*version "\([0-9]*\).*/\1/p' | head -1)
  [ "${v:-0}" -ge 17 ] || die "Kafka needs Java 17 or later, found: $(java -version 2>&1 | head -1)"
}

classpath() {
  [ -f "$KAFKA_LIB/.complete" ] || die "Kafka jars are not installed in $KAFKA_LIB: run '$0 install' first"
  echo "$KAFKA_LIB/*"
}

cmd_install() {
  local version
  version=$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$HERE/pom.xml")
  if [ -f "$KAFKA_LIB/.complete" ] && [ "$(cat "$KAFKA_LIB/.complete")" = "$version" ]; then
    echo "kafka.sh: Kafka $version jars already in $KAFKA_LIB"
    return
  fi
  command -v mvn >/dev/null || die "no mvn on PATH: install maven (scripts/install-deps.sh --test)"
  need_java
  local work
  work=$(mktemp -d)
  cp "$HERE/pom.xml" "$work/"
  rm -rf "$KAFKA_LIB"
  mkdir -p "$KAFKA_LIB"
  echo "kafka.sh: resolving Apache Kafka $version from Maven Central into $KAFKA_LIB"
  if ! (cd "$work" && mvn -q -B package -Dkafka.lib="$KAFKA_LIB"); then
    rm -rf "$work"
    die "could not resolve Apache Kafka $version from Maven Central (see the Maven output above)"
  fi
  rm -rf "$work"
  ls "$KAFKA_LIB"/kafka_2.13-*.jar >/dev/null 2>&1 || die "Maven ran but no kafka_2.13 jar is in $KAFKA_LIB"
  echo "$version" > "$KAFKA_LIB/.complete"
  chmod -R a+rX "$KAFKA_LIB"
}

java_run() {
  local cp=$1; shift
  java $KAFKA_HEAP -Dlog4j2.configurationFile="$DIR/log4j2.properties" -cp "$cp" "$@"
}

write_config() {
  local port=$1 sasl_port=$2 ssl_port=$3 ctl_port=$4
  local admin_pw user_pw
  admin_pw=$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')
  user_pw=$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')
  printf 'admin=%s\ntweetlake=%s\n' "$admin_pw" "$user_pw" > "$DIR/users"
  chmod 600 "$DIR/users"

  # A self-signed certificate for 127.0.0.1/localhost; clients trust it through ca.pem.
  if [ ! -f "$DIR/broker.p12" ]; then
    keytool -genkeypair -keystore "$DIR/broker.p12" -storetype PKCS12 -storepass tweetlake \
      -keypass tweetlake -alias broker -keyalg RSA -keysize 2048 -validity 30 \
      -dname "CN=localhost" -ext "SAN=ip:127.0.0.1,dns:localhost" -ext "BC=ca:true" >/dev/null 2>&1 \
      || die "keytool could not make a certificate"
    keytool -exportcert -rfc -keystore "$DIR/broker.p12" -storetype PKCS12 -storepass tweetlake \
      -alias broker -file "$DIR/ca.pem" >/dev/null 2>&1 || die "keytool could not export the certificate"
  fi

  cat > "$DIR/server.properties" <<EOF
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$ctl_port
listeners=PLAINTEXT://127.0.0.1:$port,SASL_PLAINTEXT://127.0.0.1:$sasl_port,SASL_SSL://127.0.0.1:$ssl_port,CONTROLLER://127.0.0.1:$ctl_port
advertised.listeners=PLAINTEXT://127.0.0.1:$port,SASL_PLAINTEXT://127.0.0.1:$sasl_port,SASL_SSL://127.0.0.1:$ssl_port
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,SASL_PLAINTEXT:SASL_PLAINTEXT,SASL_SSL:SASL_SSL,CONTROLLER:PLAINTEXT
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
log.dirs=$DIR/data
num.partitions=4
auto.create.topics.enable=false
offsets.topic.replication.factor=1
offsets.topic.num.partitions=4
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
log.segment.bytes=67108864
log.retention.hours=24
# a topic's retention.ms / retention.bytes take effect within a second (t/044 lets retention
# delete messages a restored server has not read)
log.retention.check.interval.ms=1000
sasl.enabled.mechanisms=PLAIN
listener.name.sasl_plaintext.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required username="admin" password="$admin_pw" user_admin="$admin_pw" user_tweetlake="$user_pw";
listener.name.sasl_ssl.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required username="admin" password="$admin_pw" user_admin="$admin_pw" user_tweetlake="$user_pw";
ssl.keystore.type=PKCS12
ssl.keystore.location=$DIR/broker.p12
ssl.keystore.password=tweetlake
ssl.key.password=tweetlake
EOF
  chmod 600 "$DIR/server.properties"

  cat > "$DIR/log4j2.properties" <<EOF
status = warn
appender.file.type = File
appender.file.name = file
appender.file.fileName = $DIR/server.log
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = info
rootLogger.appenderRef.file.ref = file
logger.kafka.name = kafka
logger.kafka.level = info
logger.state.name = state.change.logger
logger.state.level = warn
EOF
  printf 'BOOTSTRAP=127.0.0.1:%s\nSASL_BOOTSTRAP=127.0.0.1:%s\nSSL_BOOTSTRAP=127.0.0.1:%s\nCONTROLLER=127.0.0.1:%s\n' \
    "$port" "$sasl_port" "$ssl_port" "$ctl_port" > "$DIR/ports"
}

wait_ready() {
  local bootstrap=$1
  for _ in $(seq 1 240); do
    if ! kill -0 "$(cat "$DIR/pid")" 2>/dev/null; then
      tail -30 "$DIR/server.log" "$DIR/stdout" >&2 2>/dev/null || true
      die "the broker exited during start-up (logs: $DIR/server.log, $DIR/stdout)"
    fi
    if kcat -L -b "$bootstrap" -m 2 >/dev/null 2>&1; then
      return 0
    fi
    sleep 0.5
  done
  die "the broker did not answer on $bootstrap within 120 s (log: $DIR/server.log)"
}

launch() {
  local cp bootstrap
  cp=$(classpath)
  bootstrap=$(sed -n 's/^BOOTSTRAP=//p' "$DIR/ports")
  nohup java $KAFKA_HEAP -XX:+UseG1GC -Djava.awt.headless=true \
    -Dlog4j2.configurationFile="$DIR/log4j2.properties" \
    -cp "$cp" kafka.Kafka "$DIR/server.properties" > "$DIR/stdout" 2>&1 < /dev/null &
  echo $! > "$DIR/pid"
  wait_ready "$bootstrap"
}

cmd_start() {
  need_java
  command -v kcat >/dev/null || die "kcat is needed to check the broker is up (apt-get install kcat)"
  mkdir -p "$DIR"
  DIR=$(cd "$DIR" && pwd)
  [ -f "$DIR/pid" ] && kill -0 "$(cat "$DIR/pid")" 2>/dev/null && die "a broker already runs from $DIR"
  local cp
  cp=$(classpath)
  # shellcheck disable=SC2046 # four ports, word-split on purpose
  write_config $(free_ports 4)
  local cluster_id
  cluster_id=$(java_run "$cp" kafka.tools.StorageTool random-uuid 2>/dev/null | tail -1)
  [ -n "$cluster_id" ] || die "kafka.tools.StorageTool random-uuid printed nothing"
  java_run "$cp" kafka.tools.StorageTool format -t "$cluster_id" -c "$DIR/server.properties" \
    > "$DIR/format.log" 2>&1 || { cat "$DIR/format.log" >&2; die "formatting $DIR/data failed"; }
  launch
  cat "$DIR/ports"
}

cmd_restart() {
  [ -f "$DIR/server.properties" ] || die "no broker was started from $DIR"
  cmd_stop
  launch
  cat "$DIR/ports"
}

cmd_stop() {
  [ -f "$DIR/pid" ] || return 0
  local pid
  pid=$(cat "$DIR/pid")
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid"
    for _ in $(seq 1 120); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.25
    done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid"
  fi
  rm -f "$DIR/pid"
}

cmd_topic() {
  local name=$1 partitions=$2
  java_run "$(classpath)" org.apache.kafka.tools.TopicCommand --bootstrap-server "$(sed -n 's/^BOOTSTRAP=//p' "$DIR/ports")" \
    --create --topic "$name" --partitions "$partitions" --replication-factor 1
}

cmd_produce() {
  local topic=$1
  java_run "$(classpath)" org.apache.kafka.tools.ConsoleProducer --bootstrap-server "$(sed -n 's/^BOOTSTRAP=//p' "$DIR/ports")" \
    --topic "$topic"
}

cmd_tool() {
  local class=$1; shift
  java_run "$(classpath)" "$class" "$@"
}

action=${1:-}
[ $# -gt 0 ] && shift
case "$action" in
  install) cmd_install ;;
  start|restart|stop|topic|produce|tool)
    [ $# -ge 1 ] || die "usage: $0 $action DIR ..."
    DIR=$1; shift
    "cmd_$action" "$@" ;;
  *) sed -n '2,20p' "$0"; exit 2 ;;
esac
