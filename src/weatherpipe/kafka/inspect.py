"""Read-only views into Kafka for the dashboard and for resuming an interrupted producer:
topics, offsets, a group's lag, the records written since given offsets.

Nothing here writes to Kafka or commits offsets: offsets come from the admin API; a group's
committed offsets and records are read by consumers that never subscribe (so they join no
group) and are closed without committing. Browsing records is `browse`'s job, describing the
cluster `describe`'s.
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


def _admin(kafka: KafkaConnection, timeout: float) -> AdminClient:
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


def _unavailable(kafka: KafkaConnection, exc: Exception) -> KafkaUnavailableError:
    return KafkaUnavailableError(
        f"Kafka at {kafka.describe()} did not answer ({exc}). Start it with "
        "`weatherpipe platform up` (or `make run`), or check KAFKA_BOOTSTRAP_SERVERS."
    )


def topics(kafka: KafkaConnection, timeout: float) -> list[TopicInfo]:
    """The cluster's topics (internal ones such as __consumer_offsets left out), by name."""
    try:
        metadata = _admin(kafka, timeout).list_topics(timeout=timeout)
    except KafkaException as exc:
        raise _unavailable(kafka, exc) from exc
    if not metadata.brokers:
        raise _unavailable(kafka, RuntimeError("no broker in the metadata"))
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
    admin = _admin(kafka, timeout)
    try:
        partitions = _partitions(admin, topic, timeout)
        if not partitions:
            return []
        starts = _list_offsets(admin, topic, partitions, _EARLIEST, timeout)
        ends = _list_offsets(admin, topic, partitions, _LATEST, timeout)
    except KafkaException as exc:
        raise _unavailable(kafka, exc) from exc
    return [PartitionOffsets(p, starts[p], ends[p]) for p in partitions]


def _consumer(kafka: KafkaConnection, group_id: str, timeout: float) -> Consumer:
    return Consumer(
        {
            **kafka.config(),
            "group.id": group_id,
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
            "enable.partition.eof": True,
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
    consumer = _consumer(kafka, group_id, timeout)
    try:
        answer = consumer.committed(
            [TopicPartition(topic, o.partition) for o in offsets], timeout=timeout
        )
    except KafkaException as exc:
        raise _unavailable(kafka, exc) from exc
    finally:
        consumer.close()
    committed = {tp.partition: tp.offset for tp in answer if tp.offset >= 0 and not tp.error}
    return [PartitionLag(o.partition, o.start, o.end, committed.get(o.partition)) for o in offsets]


def values_since(
    kafka: KafkaConnection, topic: str, since: dict[int, int], timeout: float
) -> Iterator[bytes | None]:
    """The values of every record of `topic` from offset `since[partition]` up to the
    partition's end at the time of the call (a partition not in `since`: from its start)."""
    for _, value in records_since(kafka, topic, since, timeout):
        yield value


def records_since(
    kafka: KafkaConnection, topic: str, since: dict[int, int], timeout: float
) -> Iterator[tuple[bytes | None, bytes | None]]:
    """The (key, value) of every record of `topic` from offset `since[partition]` up to the
    partition's end at the time of the call (a partition not in `since`: from its start).
    Read-only: assigned, never subscribed, nothing committed. Only committed records are
    read: an aborted transaction's records and the markers that end transactions take
    offsets but are no records."""
    bounds = {
        o.partition: (max(o.start, since.get(o.partition, o.start)), o.end)
        for o in partition_offsets(kafka, topic, timeout)
    }
    todo = {p: first for p, (first, end) in bounds.items() if first < end}  # next offset due
    if not todo:
        return
    consumer = _consumer(kafka, f"weatherpipe-readback-{uuid.uuid4().hex}", timeout)
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
        raise _unavailable(kafka, exc) from exc
    finally:
        consumer.close()
    if todo:
        raise _unavailable(
            kafka, RuntimeError(f"partitions {sorted(todo)} were not read to the end")
        )


@dataclass(frozen=True)
class OffsetSpan:
    """Offsets `first` up to (not including) `end` of one partition."""

    partition: int
    first: int
    end: int


@dataclass(frozen=True)
class RecordsFound:
    """The committed records found in an `OffsetSpan`."""

    first: int
    """The offset of the first one."""
    count: int
    """How many (no more than were asked for)."""


def committed_records(
    kafka: KafkaConnection,
    topic: str,
    ranges: list[OffsetSpan],
    timeout: float,
    limit: int | None = None,
) -> list[RecordsFound | None]:
    """For each of `ranges`, the committed records of `topic` at its offsets (None: there are
    none), counted up to `limit` records per range.

    Offsets are no count of records: the marker that ends a transaction takes an offset in
    each partition it wrote to, and an aborted transaction's records take offsets but are never
    read. So the records are read back (read_committed), not subtracted: a range of markers
    only is read to its end (or the partition's) at the cost of a fetch. Read-only, like
    `records_since`."""
    if not ranges:
        return []
    consumer = Consumer(
        {
            **kafka.config(),
            "group.id": f"weatherpipe-readback-{uuid.uuid4().hex}",
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
            "enable.partition.eof": True,
            "isolation.level": "read_committed",
            # A range of markers only ends at the partition's end: say so without waiting.
            "fetch.wait.max.ms": 50,
            "socket.connection.setup.timeout.ms": max(1000, int(timeout * 1000)),
            "log_level": 0,
        }
    )
    try:
        return [_records_in(consumer, topic, r, timeout, limit) for r in ranges]
    except KafkaException as exc:
        raise _unavailable(kafka, exc) from exc
    finally:
        consumer.close()


def _records_in(
    consumer: Consumer, topic: str, wanted: OffsetSpan, timeout: float, limit: int | None
) -> RecordsFound | None:
    if wanted.first >= wanted.end:
        return None
    # A new assignment: the client drops whatever it fetched for the previous range.
    consumer.assign([TopicPartition(topic, wanted.partition, wanted.first)])
    first: int | None = None
    count, progress_at = 0, time.monotonic()
    while time.monotonic() - progress_at < timeout:
        for msg in consumer.consume(num_messages=1_000, timeout=0.5):
            offset, error = msg.offset(), msg.error()
            if error is not None:
                if error.code() == KafkaError._PARTITION_EOF:
                    return None if first is None else RecordsFound(first, count)
                raise KafkaException(error)
            if offset is None or offset < wanted.first:
                continue
            if offset >= wanted.end:
                return None if first is None else RecordsFound(first, count)
            progress_at = time.monotonic()
            first = offset if first is None else first
            count += 1
            if limit is not None and count >= limit:
                return RecordsFound(first, count)
    raise KafkaException(
        KafkaError(
            KafkaError._TIMED_OUT,
            f"{topic} [{wanted.partition}] not read from offset {wanted.first} in {timeout:g} s",
        )
    )
