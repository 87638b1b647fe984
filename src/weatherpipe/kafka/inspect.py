"""Read-only views into Kafka for the dashboard and for resuming an interrupted producer:
topics, offsets, a group's lag, recent messages, the records written since given offsets.

Nothing here writes to Kafka or commits offsets: offsets come from the admin API; a group's
committed offsets and the last messages of a partition are read by consumers that never
subscribe (so they join no group) and are closed without committing.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

from confluent_kafka import (
    Consumer,
    KafkaError,
    KafkaException,
    TopicPartition,
)
from confluent_kafka.admin import AdminClient, OffsetSpec  # type: ignore[attr-defined]

from weatherpipe.errors import TransientError
from weatherpipe.kafka.admin import admin_client

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


@dataclass(frozen=True)
class Message:
    """One record as stored: value and key as bytes (None when absent)."""

    partition: int
    offset: int
    timestamp_ms: int | None
    key: bytes | None
    value: bytes | None


_clients: dict[tuple[str, float], AdminClient] = {}
_clients_lock = threading.Lock()


def _admin(bootstrap_servers: str, timeout: float) -> AdminClient:
    """One long-lived admin client per broker list: a dashboard asks every few seconds, and
    creating and destroying librdkafka clients that often (from Streamlit's script threads)
    costs a connection each time and has crashed the process at teardown."""
    key = (bootstrap_servers, timeout)
    with _clients_lock:
        client = _clients.get(key)
        if client is None:
            client = admin_client(
                bootstrap_servers,
                **{
                    "socket.connection.setup.timeout.ms": max(1000, int(timeout * 1000)),
                    "reconnect.backoff.max.ms": 1000,
                    "log_level": 0,
                },
            )
            _clients[key] = client
        return client


def _unavailable(bootstrap_servers: str, exc: Exception) -> KafkaUnavailableError:
    return KafkaUnavailableError(
        f"Kafka at {bootstrap_servers} did not answer ({exc}). Start it with "
        "`weatherpipe platform up` (or `make run`), or check KAFKA_BOOTSTRAP_SERVERS."
    )


def topics(bootstrap_servers: str, timeout: float) -> list[TopicInfo]:
    """The cluster's topics (internal ones such as __consumer_offsets left out), by name."""
    try:
        metadata = _admin(bootstrap_servers, timeout).list_topics(timeout=timeout)
    except KafkaException as exc:
        raise _unavailable(bootstrap_servers, exc) from exc
    if not metadata.brokers:
        raise _unavailable(bootstrap_servers, RuntimeError("no broker in the metadata"))
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


def partition_offsets(bootstrap_servers: str, topic: str, timeout: float) -> list[PartitionOffsets]:
    """Start and end offsets of each partition of `topic` (no partitions: the topic is absent)."""
    admin = _admin(bootstrap_servers, timeout)
    try:
        partitions = _partitions(admin, topic, timeout)
        if not partitions:
            return []
        starts = _list_offsets(admin, topic, partitions, _EARLIEST, timeout)
        ends = _list_offsets(admin, topic, partitions, _LATEST, timeout)
    except KafkaException as exc:
        raise _unavailable(bootstrap_servers, exc) from exc
    return [PartitionOffsets(p, starts[p], ends[p]) for p in partitions]


def _consumer(bootstrap_servers: str, group_id: str, timeout: float) -> Consumer:
    return Consumer(
        {
            "bootstrap.servers": bootstrap_servers,
            "group.id": group_id,
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
            "enable.partition.eof": True,
            "socket.connection.setup.timeout.ms": max(1000, int(timeout * 1000)),
            "log_level": 0,
        }
    )


def group_lag(
    bootstrap_servers: str, topic: str, group_id: str, timeout: float
) -> list[PartitionLag]:
    """Per partition of `topic`: its offsets and what `group_id` has committed.

    The committed offsets are fetched by a consumer of that group that never subscribes (so it
    never joins the group nor commits): the admin API's ListConsumerGroupOffsets crashed
    librdkafka (a null group handle in its OffsetFetch response path)."""
    offsets = partition_offsets(bootstrap_servers, topic, timeout)
    if not offsets:
        return []
    consumer = _consumer(bootstrap_servers, group_id, timeout)
    try:
        answer = consumer.committed(
            [TopicPartition(topic, o.partition) for o in offsets], timeout=timeout
        )
    except KafkaException as exc:
        raise _unavailable(bootstrap_servers, exc) from exc
    finally:
        consumer.close()
    committed = {tp.partition: tp.offset for tp in answer if tp.offset >= 0 and not tp.error}
    return [PartitionLag(o.partition, o.start, o.end, committed.get(o.partition)) for o in offsets]


def last_messages(
    bootstrap_servers: str, topic: str, partition: int, count: int, timeout: float
) -> list[Message]:
    """The last `count` records of one partition, oldest first (fewer when it holds fewer)."""
    offsets = {o.partition: o for o in partition_offsets(bootstrap_servers, topic, timeout)}
    if partition not in offsets:
        return []
    start, end = offsets[partition].start, offsets[partition].end
    first = max(start, end - count)
    if first >= end:
        return []
    # A group id is required by the client; a fresh one is never joined (assign, not
    # subscribe) and nothing is committed, so no group appears on the broker.
    consumer = _consumer(bootstrap_servers, f"weatherpipe-dashboard-{uuid.uuid4().hex}", timeout)
    found: list[Message] = []
    try:
        consumer.assign([TopicPartition(topic, partition, first)])
        wanted = end - first
        idle_polls = 0
        while len(found) < wanted and idle_polls < 3:
            batch = consumer.consume(num_messages=wanted - len(found), timeout=timeout)
            if not batch:
                idle_polls += 1
            for msg in batch:
                error = msg.error()
                if error is not None:
                    if error.code() == KafkaError._PARTITION_EOF:
                        idle_polls = 3
                        continue
                    raise KafkaException(error)
                kind, ts = msg.timestamp()
                offset = msg.offset()
                if offset is None:
                    continue
                found.append(
                    Message(
                        partition,
                        offset,
                        ts if kind != 0 else None,
                        msg.key(),
                        msg.value(),
                    )
                )
    except KafkaException as exc:
        raise _unavailable(bootstrap_servers, exc) from exc
    finally:
        consumer.close()
    return [m for m in found if m.offset < end]


def values_since(
    bootstrap_servers: str, topic: str, since: dict[int, int], timeout: float
) -> Iterator[bytes | None]:
    """The values of every record of `topic` from offset `since[partition]` up to the
    partition's end at the time of the call (a partition not in `since`: from its start)."""
    for _, value in records_since(bootstrap_servers, topic, since, timeout):
        yield value


def records_since(
    bootstrap_servers: str, topic: str, since: dict[int, int], timeout: float
) -> Iterator[tuple[bytes | None, bytes | None]]:
    """The (key, value) of every record of `topic` from offset `since[partition]` up to the
    partition's end at the time of the call (a partition not in `since`: from its start).
    Read-only, like `last_messages`: assigned, never subscribed, nothing committed. Only
    committed records are read: an aborted transaction's records and the markers that end
    transactions take offsets but are no records."""
    bounds = {
        o.partition: (max(o.start, since.get(o.partition, o.start)), o.end)
        for o in partition_offsets(bootstrap_servers, topic, timeout)
    }
    todo = {p: first for p, (first, end) in bounds.items() if first < end}  # next offset due
    if not todo:
        return
    consumer = _consumer(bootstrap_servers, f"weatherpipe-readback-{uuid.uuid4().hex}", timeout)
    try:
        consumer.assign([TopicPartition(topic, p, first) for p, first in todo.items()])
        progress_at = time.monotonic()
        while todo and time.monotonic() - progress_at < timeout:
            # consume() returns when it has this many or its timeout passed: asking for no
            # more than are due keeps it from waiting out the timeout on the last batch.
            due = sum(bounds[p][1] - offset for p, offset in todo.items())
            for msg in consumer.consume(num_messages=min(due, 10_000), timeout=1.0):
                partition, offset, error = msg.partition(), msg.offset(), msg.error()
                if error is not None:
                    if error.code() == KafkaError._PARTITION_EOF and partition is not None:
                        todo.pop(partition, None)  # at its end: any gap left was no record
                        continue
                    raise KafkaException(error)
                if partition not in todo or offset is None or offset < todo[partition]:
                    continue
                progress_at = time.monotonic()
                yield msg.key(), msg.value()
                todo[partition] = offset + 1
                if offset + 1 >= bounds[partition][1]:
                    del todo[partition]
    except KafkaException as exc:
        raise _unavailable(bootstrap_servers, exc) from exc
    finally:
        consumer.close()
    if todo:
        raise _unavailable(
            bootstrap_servers, RuntimeError(f"partitions {sorted(todo)} were not read to the end")
        )
