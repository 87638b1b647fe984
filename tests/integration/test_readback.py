"""Counting committed records in offset ranges, read back from the real local Kafka: ranges of
several partitions read together, two ranges of one partition, ranges of transaction markers
and aborted records only, and a limit."""

from __future__ import annotations

from collections.abc import Callable

from confluent_kafka import Producer
from confluent_kafka.admin import NewTopic  # type: ignore[attr-defined]

from weatherpipe.kafka.admin import admin_client
from weatherpipe.kafka.readback import OffsetSpan, RecordsFound, committed_records
from weatherpipe.kafka.security import KafkaConnection
from weatherpipe.settings import Settings


def _transaction(producer: Producer, topic: str, records: dict[int, int], commit: bool) -> None:
    """One transaction of `records[partition]` records per partition, committed or aborted."""
    producer.begin_transaction()
    for partition, count in records.items():
        for n in range(count):
            producer.produce(topic, value=f"{partition}-{n}".encode(), partition=partition)
    producer.flush(30)
    if commit:
        producer.commit_transaction(30)
    else:
        producer.abort_transaction(30)


def test_committed_records_counts_each_range_across_partitions(
    platform_settings: Settings, unique_name: Callable[[str], str]
) -> None:
    servers = platform_settings.kafka_bootstrap_servers
    topic = unique_name("readback")
    admin = admin_client(KafkaConnection(servers))
    for future in admin.create_topics([NewTopic(topic, 3, 1)]).values():
        future.result(timeout=30)
    producer = Producer({"bootstrap.servers": servers, "transactional.id": topic})
    producer.init_transactions(30)
    # Offsets per partition: each transaction's records, then its marker.
    _transaction(producer, topic, {0: 5, 1: 3}, commit=True)  # p0: 0-4, marker 5; p1: 0-2, 3
    _transaction(producer, topic, {0: 2, 2: 4}, commit=False)  # p0: 6-7 aborted, 8; p2: 0-3, 4
    _transaction(producer, topic, {0: 3, 2: 1}, commit=True)  # p0: 9-11, 12; p2: 5, 6

    ranges = [
        OffsetSpan(0, 1, 4),  # three records
        OffsetSpan(1, 3, 4),  # the marker only
        OffsetSpan(0, 5, 9),  # a marker, two aborted records, a marker
        OffsetSpan(2, 0, 7),  # four aborted records, a marker, a record, a marker
        OffsetSpan(0, 9, 13),  # three records and the marker, a second range of partition 0
        OffsetSpan(1, 2, 2),  # empty
        OffsetSpan(0, 0, 13),  # all of partition 0, a third range of it
    ]
    assert committed_records(KafkaConnection(servers), topic, ranges, 30) == [
        RecordsFound(1, 3),
        None,
        None,
        RecordsFound(5, 1),
        RecordsFound(9, 3),
        None,
        RecordsFound(0, 8),
    ]
    limited = committed_records(KafkaConnection(servers), topic, ranges, 30, limit=2)
    assert limited == [
        RecordsFound(1, 2),
        None,
        None,
        RecordsFound(5, 1),
        RecordsFound(9, 2),
        None,
        RecordsFound(0, 2),
    ]
