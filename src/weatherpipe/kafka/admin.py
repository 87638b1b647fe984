"""Kafka admin helpers: readiness probe, topic creation and description."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import (  # type: ignore[attr-defined]
    AdminClient,
    ClusterMetadata,
    ConfigResource,
    NewTopic,
)

from weatherpipe.errors import TerminalError, TransientError

# librdkafka logs every refused connection while a broker starts; the probe expects those.
_quiet = logging.getLogger("weatherpipe.kafka.probe")
_quiet.setLevel(logging.CRITICAL)

CLIENT_LOG = logging.getLogger("weatherpipe.kafka.client")
"""Where the Kafka clients' own log lines go (instead of raw lines on stderr). Only errors are
shown: the client retries what it warns about (a coordinator still loading after a broker
start, a dropped connection), and what it gives up on surfaces as a counted delivery or
consume error anyway."""
CLIENT_LOG.setLevel(logging.ERROR)


def admin_client(bootstrap_servers: str, **extra: str | int | float) -> AdminClient:
    """An AdminClient for `bootstrap_servers`; `extra` is passed through as librdkafka config."""
    return AdminClient({"bootstrap.servers": bootstrap_servers, **extra}, logger=CLIENT_LOG)


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


@dataclass(frozen=True)
class TopicSpec:
    """A topic to create if it is missing."""

    name: str
    partitions: int
    replication_factor: int
    config: dict[str, str] = field(default_factory=dict)
    """Topic configuration to create it with (e.g. cleanup.policy)."""


def ensure_topics(
    bootstrap_servers: str, topics: list[TopicSpec], timeout: float = 30
) -> list[str]:
    """Create the topics that do not exist yet; an existing topic is left as it is.

    Returns the names that were created. Raises `TransientError` if no broker answers and
    `TerminalError` if the broker refuses (say, a replication factor above the broker count).
    """
    if cluster_metadata(bootstrap_servers, min(timeout, 10)) is None:
        raise TransientError(
            f"No Kafka broker answered at {bootstrap_servers}. Start the local one with "
            "`weatherpipe platform up`, or point KAFKA_BOOTSTRAP_SERVERS at a running broker."
        )
    client = admin_client(bootstrap_servers)  # created only now: it logs refused connections
    futures = client.create_topics(
        [NewTopic(t.name, t.partitions, t.replication_factor, config=t.config) for t in topics],
        request_timeout=timeout,
    )
    created = []
    for name, future in futures.items():
        try:
            future.result(timeout)
            created.append(name)
        except KafkaException as exc:
            error = exc.args[0]
            if error.code() == KafkaError.TOPIC_ALREADY_EXISTS:
                continue
            raise TerminalError(
                f"Kafka refused to create topic {name!r}: {error.str()}. Create it yourself "
                "(or fix KAFKA_PARTITIONS / KAFKA_REPLICATION_FACTOR) and run again."
            ) from exc
    return created


def topic_config(bootstrap_servers: str, topic: str, name: str, timeout: float = 30) -> str:
    """The value of the configuration entry `name` of `topic` (its own or the broker's default).
    A topic created a moment ago may not be known to the broker answering yet, so it is asked
    again for a while."""
    client = admin_client(bootstrap_servers)
    resource = ConfigResource(ConfigResource.Type.TOPIC, topic)
    deadline = time.monotonic() + timeout
    while True:
        try:
            future = client.describe_configs([resource], request_timeout=timeout)[resource]
            return str(future.result(timeout)[name].value)
        except KafkaException as exc:
            error = exc.args[0]
            if error.code() == KafkaError.UNKNOWN_TOPIC_OR_PART and time.monotonic() < deadline:
                time.sleep(0.1)
                continue
            raise TransientError(
                f"Kafka at {bootstrap_servers} did not describe topic {topic!r} "
                f"({error.str()}). Check that the broker runs and run again."
            ) from exc
