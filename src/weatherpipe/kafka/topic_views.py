"""Read-only views of topics for the dashboard and the producer: the topics, each partition's
offsets, a group's lag on one topic; and the read-only clients they, `browse`, `describe` and
`readback` share.

Nothing here writes to Kafka or commits offsets: offsets come from the admin API; a group's
committed offsets are read by a consumer that never subscribes (so it joins no group) and is
closed without committing. Browsing records is `browse`'s job, describing the cluster
`describe`'s, reading back what the producer wrote `readback`'s.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from confluent_kafka import Consumer, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient, OffsetSpec  # type: ignore[attr-defined]

from weatherpipe.errors import TransientError
from weatherpipe.kafka.admin import admin_client
from weatherpipe.kafka.security import KafkaConnection

_EARLIEST = OffsetSpec.earliest()  # type: ignore[no-untyped-call]
_LATEST = OffsetSpec.latest()  # type: ignore[no-untyped-call]


class KafkaUnavailableError(TransientError):
    """No broker answered in time."""


@dataclass(frozen=True)
class TopicInfo:
    """A topic and its partition count."""

    name: str
    partitions: int


@dataclass(frozen=True)
class PartitionOffsets:
    """A partition's first and next offsets; `end - start` records are kept in it."""

    partition: int
    start: int
    end: int

    @property
    def records(self) -> int:
        return self.end - self.start


@dataclass(frozen=True)
class PartitionLag:
    """A consumer group's position in one partition; `committed` is None before its first
    commit, when the whole partition counts as lag."""

    partition: int
    start: int
    end: int
    committed: int | None

    @property
    def lag(self) -> int:
        return self.end - (self.committed if self.committed is not None else self.start)


_clients: dict[tuple[KafkaConnection, float], AdminClient] = {}
_clients_lock = threading.Lock()


def shared_admin(kafka: KafkaConnection, timeout: float) -> AdminClient:
    """One long-lived admin client per connection: a dashboard asks every few seconds, and
    creating and destroying librdkafka clients that often (from Streamlit's script threads)
    costs a connection each time and has crashed the process at teardown."""
    key = (kafka, timeout)
    with _clients_lock:
        client = _clients.get(key)
        if client is None:
            client = admin_client(
                kafka,
                **{
                    "socket.connection.setup.timeout.ms": max(1000, int(timeout * 1000)),
                    "reconnect.backoff.max.ms": 1000,
                    "log_level": 0,
                },
            )
            _clients[key] = client
        return client


def unavailable(kafka: KafkaConnection, exc: Exception) -> KafkaUnavailableError:
    return KafkaUnavailableError(
        f"Kafka at {kafka.describe()} did not answer ({exc}). Start it with "
        "`weatherpipe platform up` (or `make run`), or check KAFKA_BOOTSTRAP_SERVERS."
    )


def topics(kafka: KafkaConnection, timeout: float) -> list[TopicInfo]:
    """The cluster's topics (internal ones such as __consumer_offsets left out), by name."""
    try:
        metadata = shared_admin(kafka, timeout).list_topics(timeout=timeout)
    except KafkaException as exc:
        raise unavailable(kafka, exc) from exc
    if not metadata.brokers:
        raise unavailable(kafka, RuntimeError("no broker in the metadata"))
    return sorted(
        (
            TopicInfo(name, len(topic.partitions))
            for name, topic in metadata.topics.items()
            if not name.startswith("__")
        ),
        key=lambda t: t.name,
    )


def _partitions(admin: AdminClient, topic: str, timeout: float) -> list[int]:
    metadata = admin.list_topics(topic=topic, timeout=timeout)
    described = metadata.topics.get(topic)
    if described is None or described.error is not None:
        return []
    return sorted(described.partitions)


def _list_offsets(
    admin: AdminClient, topic: str, partitions: list[int], spec: OffsetSpec, timeout: float
) -> dict[int, int]:
    request = {TopicPartition(topic, p): spec for p in partitions}
    futures = admin.list_offsets(request, request_timeout=timeout)
    return {tp.partition: int(future.result().offset) for tp, future in futures.items()}


def partition_offsets(kafka: KafkaConnection, topic: str, timeout: float) -> list[PartitionOffsets]:
    """Start and end offsets of each partition of `topic` (no partitions: the topic is absent)."""
    admin = shared_admin(kafka, timeout)
    try:
        partitions = _partitions(admin, topic, timeout)
        if not partitions:
            return []
        starts = _list_offsets(admin, topic, partitions, _EARLIEST, timeout)
        ends = _list_offsets(admin, topic, partitions, _LATEST, timeout)
    except KafkaException as exc:
        raise unavailable(kafka, exc) from exc
    return [PartitionOffsets(p, starts[p], ends[p]) for p in partitions]


def readonly_consumer(kafka: KafkaConnection, group_id: str, timeout: float) -> Consumer:
    return Consumer(
        {
            **kafka.config(),
            "group.id": group_id,
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
            "enable.partition.eof": True,
            # Reads end at a partition's end: the broker holds a fetch there this long before
            # it answers that nothing is left (500 ms by default, on every such read).
            "fetch.wait.max.ms": 50,
            "socket.connection.setup.timeout.ms": max(1000, int(timeout * 1000)),
            "log_level": 0,
        }
    )


def group_lag(
    kafka: KafkaConnection, topic: str, group_id: str, timeout: float
) -> list[PartitionLag]:
    """Per partition of `topic`: its offsets and what `group_id` has committed.

    The committed offsets are fetched by a consumer of that group that never subscribes (so it
    never joins the group nor commits): the admin API's ListConsumerGroupOffsets crashed
    librdkafka (a null group handle in its OffsetFetch response path)."""
    offsets = partition_offsets(kafka, topic, timeout)
    if not offsets:
        return []
    consumer = readonly_consumer(kafka, group_id, timeout)
    try:
        answer = consumer.committed(
            [TopicPartition(topic, o.partition) for o in offsets], timeout=timeout
        )
    except KafkaException as exc:
        raise unavailable(kafka, exc) from exc
    finally:
        consumer.close()
    committed = {tp.partition: tp.offset for tp in answer if tp.offset >= 0 and not tp.error}
    return [PartitionLag(o.partition, o.start, o.end, committed.get(o.partition)) for o in offsets]
