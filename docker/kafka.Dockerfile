# Apache Kafka (KRaft) for the `kafka` and `kafka-init` services of docker-compose.yml: the jars
# of test/kafka/pom.xml, the very broker and tools the tests run, resolved from Maven Central
# and run on Debian's OpenJDK 17.  Build from the repository root:
#   docker build -f docker/kafka.Dockerfile -t tweetlake/kafka .
# The broker is configured from KAFKA_* variables the way the apache/kafka image reads them
# (docker/kafka-run.sh); the tools are where that image has them (/opt/kafka/bin/*.sh).
FROM debian:bookworm-slim AS jars
RUN apt-get update \
 && apt-get install -y --no-install-recommends maven openjdk-17-jdk-headless \
 && rm -rf /var/lib/apt/lists/*
COPY test/kafka/pom.xml /usr/src/kafka/pom.xml
RUN cd /usr/src/kafka \
 && mvn -q -B package -Dkafka.lib=/opt/kafka/libs \
 && ls /opt/kafka/libs/kafka_2.13-*.jar

FROM debian:bookworm-slim
ENV LANG=C.UTF-8
RUN apt-get update \
 && apt-get install -y --no-install-recommends openjdk-17-jre-headless \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --home-dir /var/lib/kafka --shell /usr/sbin/nologin kafka \
 && install -d -o kafka -g kafka -m 750 /var/lib/kafka /var/lib/kafka/data
COPY --from=jars /opt/kafka/libs /opt/kafka/libs
COPY docker/kafka-run.sh /opt/kafka/bin/kafka-run.sh
COPY docker/kafka-tool.sh /opt/kafka/bin/kafka-tool.sh
# The broker logs to stdout (`docker compose logs kafka`), the tools only their warnings to stderr.
RUN mkdir -p /opt/kafka/config \
 && printf '%s\n' 'status = warn' 'appender.out.type = Console' 'appender.out.name = out' \
      'appender.out.layout.type = PatternLayout' 'appender.out.layout.pattern = [%d] %p %m (%c)%n' \
      'rootLogger.level = info' 'rootLogger.appenderRef.out.ref = out' \
      'logger.state.name = state.change.logger' 'logger.state.level = warn' \
      > /opt/kafka/config/log4j2.properties \
 && printf '%s\n' 'status = warn' 'appender.err.type = Console' 'appender.err.name = err' \
      'appender.err.target = SYSTEM_ERR' 'appender.err.layout.type = PatternLayout' \
      'appender.err.layout.pattern = [%d] %p %m (%c)%n' \
      'rootLogger.level = warn' 'rootLogger.appenderRef.err.ref = err' \
      > /opt/kafka/config/tools-log4j2.properties \
 && cd /opt/kafka/bin \
 && for tool in kafka-topics kafka-broker-api-versions kafka-get-offsets kafka-consumer-groups \
                kafka-console-producer kafka-console-consumer kafka-storage; do \
      ln -s kafka-tool.sh "$tool.sh"; \
    done
ENV PATH=/opt/kafka/bin:$PATH
USER kafka
WORKDIR /var/lib/kafka
# The data directory is the volume compose mounts (kafka-data); no VOLUME here, or every container
# of the image that mounts none (kafka-init) would leave an anonymous volume behind.
EXPOSE 9092
# SIGTERM: the broker's controlled shutdown
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=10s --timeout=10s --start-period=20s --retries=12 \
  CMD kafka-broker-api-versions.sh --bootstrap-server localhost:9092 >/dev/null 2>&1 || exit 1
CMD ["/opt/kafka/bin/kafka-run.sh"]
