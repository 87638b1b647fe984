"""Reading back what the producer wrote: the values of a topic's records since given offsets,
so an interrupted producer can tell which rows already arrived.

Read-only: the consumer is assigned (never subscribed, so it joins no group) and closed without
committing anything.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

from confluent_kafka import KafkaError, KafkaException, TopicPartition

from weatherpipe.kafka.security import KafkaConnection
from weatherpipe.kafka.topic_views import partition_offsets, readonly_consumer, unavailable


def values_since(
    kafka: KafkaConnection, topic: str, since: dict[int, int], timeout: float
) -> Iterator[bytes | None]:
    """The values of every record of `topic` from offset `since[partition]` up to the
    partition's end at the time of the call (a partition not in `since`: from its start).
    Read-only: assigned, never subscribed, nothing committed."""
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
                yield msg.value()
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
