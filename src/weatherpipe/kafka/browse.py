"""Read-only browsing of a topic's records for the dashboard: the newest records of all
partitions, records from an offset or a moment on, and a text search over the newest records.

Every read is bounded by the caller's count: offsets are looked up first and only the records
between them are fetched, so no page ever scans a whole topic. The consumers are assigned
(never subscribed, so they join no group) and closed without committing anything.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, TopicPartition

from weatherpipe.kafka.security import KafkaConnection
from weatherpipe.kafka.topic_views import (
    PartitionOffsets,
    partition_offsets,
    readonly_consumer,
    unavailable,
)

# Most records one call reads from Kafka, whatever the caller asks for.
MAX_READ = 200_000


@dataclass(frozen=True)
class Record:
    """One record as stored: key, value and header values as bytes (None when absent)."""

    partition: int
    offset: int
    timestamp_ms: int | None
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes | None], ...] = ()


@dataclass(frozen=True)
class Search:
    """What a search found (the newest matches, `matched` in all) and what it looked at: per
    partition, the offsets first..end-1, which held `records_scanned` records (a transaction's
    commit marker takes an offset but is no record)."""

    found: list[Record]
    matched: int
    scanned: dict[int, tuple[int, int]]
    records_scanned: int


def _record(msg: Message) -> Record | None:
    partition, offset = msg.partition(), msg.offset()
    if partition is None or offset is None:
        return None
    kind, ts = msg.timestamp()
    raw = msg.headers() or []
    pairs = list(raw.items()) if isinstance(raw, dict) else raw
    headers = tuple(
        (str(name), value.encode() if isinstance(value, str) else value) for name, value in pairs
    )
    return Record(partition, offset, ts if kind != 0 else None, msg.key(), msg.value(), headers)


def read_ranges(
    kafka: KafkaConnection, topic: str, ranges: dict[int, tuple[int, int]], timeout: float
) -> list[Record]:
    """The records of each partition from offset `first` up to, not including, `end`, as
    `ranges` maps them (partition -> (first, end)); by partition and offset."""
    todo = {p: (first, end) for p, (first, end) in ranges.items() if first < end}
    if sum(end - first for first, end in todo.values()) > MAX_READ:
        raise ValueError(f"asked for more than {MAX_READ:,} records")
    if not todo:
        return []
    # A group id is required by the client; a fresh one is never joined (assign, not
    # subscribe) and nothing is committed, so no group appears on the broker.
    consumer: Consumer = readonly_consumer(
        kafka, f"weatherpipe-dashboard-{uuid.uuid4().hex}", timeout
    )
    found: list[Record] = []
    try:
        consumer.assign([TopicPartition(topic, p, first) for p, (first, _) in todo.items()])
        idle_polls = 0
        while todo and idle_polls < 3:
            due = sum(end - first for first, end in todo.values())
            batch = consumer.consume(num_messages=min(due, 10_000), timeout=timeout)
            idle_polls = 0 if batch else idle_polls + 1
            for msg in batch:
                error, partition = msg.error(), msg.partition()
                if error is not None:
                    if error.code() == KafkaError._PARTITION_EOF and partition is not None:
                        todo.pop(partition, None)  # at its end: the rest was no record
                        continue
                    raise KafkaException(error)
                record = _record(msg)
                if record is None or partition not in todo:
                    continue
                first, end = todo[partition]
                if record.offset < first or record.offset >= end:
                    continue
                found.append(record)
                if record.offset + 1 >= end:
                    del todo[partition]
                else:
                    todo[partition] = (record.offset + 1, end)
    except KafkaException as exc:
        raise unavailable(kafka, exc) from exc
    finally:
        consumer.close()
    return sorted(found, key=lambda r: (r.partition, r.offset))


def _chosen(offsets: list[PartitionOffsets], partition: int | None) -> list[PartitionOffsets]:
    return [o for o in offsets if partition is None or o.partition == partition]


def newest_first(records: list[Record]) -> list[Record]:
    """`records` newest first: by timestamp, then by offset (records without a timestamp
    last)."""
    return sorted(
        records,
        key=lambda r: (r.timestamp_ms is not None, r.timestamp_ms or 0, r.offset, -r.partition),
        reverse=True,
    )


def newest(
    kafka: KafkaConnection, topic: str, count: int, timeout: float, partition: int | None = None
) -> list[Record]:
    """The `count` newest records of `topic` (of one partition, or of all), newest first:
    the last `count` of each partition are read and merged by timestamp."""
    offsets = _chosen(partition_offsets(kafka, topic, timeout), partition)
    # Twice as many offsets as records wanted, and two: the markers that end the producer's
    # transactions take offsets too, the last one of each partition among them.
    span = 2 * count + 2
    ranges = {o.partition: (max(o.start, o.end - span), o.end) for o in offsets}
    return newest_first(read_ranges(kafka, topic, ranges, timeout))[:count]


def from_offset(
    kafka: KafkaConnection, topic: str, partition: int, offset: int, count: int, timeout: float
) -> list[Record]:
    """Up to `count` records of one partition from `offset` on, oldest first (an offset before
    the partition's start begins at its start)."""
    offsets = _chosen(partition_offsets(kafka, topic, timeout), partition)
    ranges = {
        o.partition: (max(o.start, offset), min(o.end, max(o.start, offset) + count))
        for o in offsets
    }
    return read_ranges(kafka, topic, ranges, timeout)


def from_time(
    kafka: KafkaConnection,
    topic: str,
    timestamp_ms: int,
    count: int,
    timeout: float,
    partition: int | None = None,
) -> list[Record]:
    """Up to `count` records written at or after `timestamp_ms` (of one partition, or of all),
    oldest first: each partition is read from the first offset at or after that moment."""
    offsets = _chosen(partition_offsets(kafka, topic, timeout), partition)
    if not offsets:
        return []
    consumer: Consumer = readonly_consumer(
        kafka, f"weatherpipe-dashboard-{uuid.uuid4().hex}", timeout
    )
    try:
        answer = consumer.offsets_for_times(
            [TopicPartition(topic, o.partition, timestamp_ms) for o in offsets], timeout=timeout
        )
    except KafkaException as exc:
        raise unavailable(kafka, exc) from exc
    finally:
        consumer.close()
    # No record at or after the moment: the broker answers -1 (read from the end: nothing).
    starts = {tp.partition: tp.offset for tp in answer if not tp.error}
    ranges = {}
    for o in offsets:
        first = starts.get(o.partition, -1)
        first = o.end if first < 0 else max(o.start, first)
        ranges[o.partition] = (first, min(o.end, first + count))
    records = read_ranges(kafka, topic, ranges, timeout)
    return sorted(records, key=lambda r: (r.timestamp_ms or 0, r.partition, r.offset))[:count]


def search(
    kafka: KafkaConnection,
    topic: str,
    text: str,
    scan: int,
    count: int,
    timeout: float,
    partition: int | None = None,
) -> Search:
    """The newest `count` records among the newest `scan` of each partition (or of one) whose
    key or value holds `text` (ignoring case; bytes that are not UTF-8 never match)."""
    offsets = _chosen(partition_offsets(kafka, topic, timeout), partition)
    ranges = {o.partition: (max(o.start, o.end - scan), o.end) for o in offsets}
    needle = text.casefold()

    def holds(raw: bytes | None) -> bool:
        return raw is not None and needle in raw.decode("utf-8", errors="replace").casefold()

    records = read_ranges(kafka, topic, ranges, timeout)
    found = [r for r in records if holds(r.key) or holds(r.value)]
    return Search(newest_first(found)[:count], len(found), ranges, len(records))
