"""Kafka set-up for tests: a topic with records in it, and a consumer group's committed offsets
(as the raw-zone consumer would leave them), straight through confluent_kafka."""

from __future__ import annotations

import time
from collections.abc import Sequence

from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import NewTopic  # type: ignore[attr-defined]

from weatherpipe.kafka.admin import admin_client
from weatherpipe.kafka.security import KafkaConnection

# Answers of a coordinator that is still being elected or loading the offsets topic.
_NOT_READY = {
    KafkaError.NOT_COORDINATOR,
    KafkaError.COORDINATOR_NOT_AVAILABLE,
    KafkaError.COORDINATOR_LOAD_IN_PROGRESS,
}


def create(
    servers: str,
    topic: str,
    values: Sequence[bytes],
    keys: Sequence[bytes] | None = None,
    partitions: int = 2,
) -> None:
    """`topic` with `partitions` partitions; value i (key i) goes to partition i % partitions."""
    admin = admin_client(KafkaConnection(servers))
    for future in admin.create_topics([NewTopic(topic, partitions, 1)]).values():
        future.result(timeout=30)
    producer = Producer({"bootstrap.servers": servers})
    for i, value in enumerate(values):
        key = keys[i] if keys is not None else f"k{i}".encode()
        producer.produce(topic, value=value, key=key, partition=i % partitions)
    assert producer.flush(30) == 0


def commit(servers: str, topic: str, group: str, offsets: dict[int, int]) -> None:
    """Commit `offsets` (partition -> next offset) for `group`; a broker that has just started
    may still be creating its offsets topic, so retriable answers are retried for 30 s."""
    consumer = Consumer({"bootstrap.servers": servers, "group.id": group})
    deadline = time.monotonic() + 30
    try:
        while True:
            try:
                consumer.commit(
                    offsets=[TopicPartition(topic, p, o) for p, o in offsets.items()],
                    asynchronous=False,
                )
                return
            except KafkaException as exc:
                error = exc.args[0]
                ready = error.code() not in _NOT_READY and not error.retriable()
                if ready or time.monotonic() > deadline:
                    raise
                time.sleep(0.5)
    finally:
        consumer.close()
