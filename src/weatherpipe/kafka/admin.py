"""Kafka admin helpers: readiness probe, topic creation and description."""

from __future__ import annotations

import logging

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient, ClusterMetadata  # type: ignore[attr-defined]

# librdkafka logs every refused connection while a broker starts; the probe expects those.
_quiet = logging.getLogger("weatherpipe.kafka.probe")
_quiet.setLevel(logging.CRITICAL)


def admin_client(bootstrap_servers: str, **extra: str | int | float) -> AdminClient:
    """An AdminClient for `bootstrap_servers`; `extra` is passed through as librdkafka config."""
    return AdminClient({"bootstrap.servers": bootstrap_servers, **extra})


def cluster_metadata(bootstrap_servers: str, timeout: float) -> ClusterMetadata | None:
    """The cluster's metadata (brokers and topics), or None if no broker answered in time."""
    client = AdminClient(
        {
            "bootstrap.servers": bootstrap_servers,
            "socket.connection.setup.timeout.ms": max(1000, int(timeout * 1000)),
            "reconnect.backoff.max.ms": 500,
        },
        logger=_quiet,
    )
    try:
        metadata: ClusterMetadata = client.list_topics(timeout=timeout)
    except KafkaException:
        return None
    return metadata if metadata.brokers else None
