#!/bin/sh
# The official script's tool, with a small heap, quick JIT start and only warnings logged.
exec java -Xmx128m -XX:TieredStopAtLevel=1 -Dlog4j2.level=WARN \
    -Dlog4j2.configurationFile=/opt/kafka/config/log4j2.xml -cp '/opt/kafka/libs/*' \
    org.apache.kafka.tools.BrokerApiVersionsCommand "$@"
