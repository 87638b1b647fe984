"""Kafka admin helpers: readiness probe, topic creation and description."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from weatherpipe.errors import TerminalError, TransientError
from weatherpipe.net import any_accepts

if TYPE_CHECKING:
    from confluent_kafka.admin import AdminClient, ClusterMetadata  # type: ignore[attr-defined]

# librdkafka logs every refused connection while a broker starts; the probe expects those.
_quiet = logging.getLogger("weatherpipe.kafka.probe")
_quiet.setLevel(logging.CRITICAL)

CLIENT_LOG = logging.getLogger("weatherpipe.kafka.client")
"""Where the Kafka clients' own log lines go (instead of raw lines on stderr). Only errors are
shown: the client retries what it warns about (a coordinator still loading after a broker
start, a dropped connection), and what it gives up on surfaces as a counted delivery or
consume error anyway. The CLI's log set-up (`weatherpipe.ui.logs`) may have chosen its level
already (LOG_LEVEL=DEBUG shows everything); this is the default elsewhere."""
if CLIENT_LOG.level == logging.NOTSET:
    CLIENT_LOG.setLevel(logging.ERROR)


def admin_client(bootstrap_servers: str, **extra: str | int | float) -> AdminClient:
    """An AdminClient for `bootstrap_servers`; `extra` is passed through as librdkafka config."""
    from confluent_kafka.admin import AdminClient

    return AdminClient({"bootstrap.servers": bootstrap_servers, **extra})


def cluster_metadata(bootstrap_servers: str, timeout: float) -> ClusterMetadata | None:
    """The cluster's metadata (brokers and topics), or None if no broker answered in time."""
    if not any_accepts(bootstrap_servers, min(timeout, 1.0)):
        return None  # nothing listens: decided without loading the Kafka client
    # Imported here: the Kafka client is heavy, and a broker that is down needs none.
    from confluent_kafka import KafkaException
    from confluent_kafka.admin import AdminClient

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
    from confluent_kafka import KafkaError, KafkaException
    from confluent_kafka.admin import NewTopic  # type: ignore[attr-defined]

    client = admin_client(bootstrap_servers)  # created only now: it logs refused connections
    futures = client.create_topics(
        [NewTopic(t.name, t.partitions, t.replication_factor) for t in topics],
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
