"""Reading back what the producer wrote: the values of a topic's records since given offsets,
so an interrupted producer can tell which rows already arrived; and the committed records in
given offsets, as the markers that end transactions take offsets too.

Read-only: the consumer is assigned (never subscribed, so it joins no group) and closed without
committing anything.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition

from weatherpipe.kafka.security import KafkaConnection
from weatherpipe.kafka.topic_views import partition_offsets, readonly_consumer, unavailable


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
    consumer = readonly_consumer(kafka, f"weatherpipe-readback-{uuid.uuid4().hex}", timeout)
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
        raise unavailable(kafka, exc) from exc
    finally:
        consumer.close()
    if todo:
        raise unavailable(
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
    only is read to its end (or the partition's) at the cost of a fetch. The ranges of
    different partitions are read together, so that cost is paid once for all of them, not
    once per partition. Read-only, like `records_since`."""
    found: list[RecordsFound | None] = [None] * len(ranges)
    rounds = _rounds(ranges)
    if not rounds:
        return found
    consumer = Consumer(
        {
            **kafka.config(),
            "group.id": f"weatherpipe-readback-{uuid.uuid4().hex}",
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
            "enable.partition.eof": True,
            "isolation.level": "read_committed",
            # A range of markers only ends at the partition's end: say so without waiting (a
            # fetch there is held this long; 500 ms by default).
            "fetch.wait.max.ms": 10,
            # Long ranges are read in larger fetches: 1 MiB per partition (the default) makes a
            # read of 1M records wait on the broker for 3.5 s, 8 MiB for 2.4 s.
            "max.partition.fetch.bytes": 8 * 1024 * 1024,
            "socket.connection.setup.timeout.ms": max(1000, int(timeout * 1000)),
            "log_level": 0,
        }
    )
    try:
        for chosen in rounds:
            _read_round(
                consumer,
                topic,
                {ranges[i].partition: i for i in chosen},
                ranges,
                found,
                timeout,
                limit,
            )
        return found
    except KafkaException as exc:
        raise unavailable(kafka, exc) from exc
    finally:
        consumer.close()


def _rounds(ranges: list[OffsetSpan]) -> list[list[int]]:
    """The indices of the non-empty `ranges` in rounds that hold at most one range of each
    partition (its first in the first round, and so on): one round is read at a time."""
    by_partition: dict[int, list[int]] = {}
    for index, wanted in enumerate(ranges):
        if wanted.first < wanted.end:
            by_partition.setdefault(wanted.partition, []).append(index)
    depth = max((len(indices) for indices in by_partition.values()), default=0)
    return [
        [indices[k] for indices in by_partition.values() if k < len(indices)] for k in range(depth)
    ]


def _read_round(
    consumer: Consumer,
    topic: str,
    pending: dict[int, int],
    ranges: list[OffsetSpan],
    found: list[RecordsFound | None],
    timeout: float,
    limit: int | None,
) -> None:
    """Count the records of one range per partition (`pending`: partition -> index of its
    range) into `found`."""
    # A new assignment: the client drops whatever it fetched for the previous round.
    consumer.assign([TopicPartition(topic, p, ranges[i].first) for p, i in pending.items()])
    firsts: dict[int, int] = {}  # index -> offset of its first record
    counts = dict.fromkeys(pending.values(), 0)
    progress_at = time.monotonic()
    while pending:
        if time.monotonic() - progress_at >= timeout:
            late = ranges[min(pending.values())]
            raise KafkaException(
                KafkaError(
                    KafkaError._TIMED_OUT,
                    f"{topic} [{late.partition}] not read from offset {late.first} in "
                    f"{timeout:g} s",
                )
            )
        # consume() waits for all of num_messages or its timeout: ranges of markers only yield
        # no record, just the end of the partition, so a short wait keeps them from costing
        # the whole timeout.
        batch = consumer.consume(num_messages=1_000, timeout=0.01)
        if batch:
            progress_at = time.monotonic()
        for msg in batch:
            error, partition, offset = msg.error(), msg.partition(), msg.offset()
            if error is not None and error.code() != KafkaError._PARTITION_EOF:
                raise KafkaException(error)
            index = pending.get(partition) if partition is not None else None
            if index is None:
                continue
            wanted = ranges[index]
            if error is not None or (offset is not None and offset >= wanted.end):
                # At the partition's end (any offsets left were no records) or past the range.
                del pending[wanted.partition]
            elif offset is not None and offset >= wanted.first:
                firsts.setdefault(index, offset)
                counts[index] += 1
                if limit is not None and counts[index] >= limit:
                    del pending[wanted.partition]
    for index, first in firsts.items():
        found[index] = RecordsFound(first, counts[index])
