"""The last offset a producer run delivered to each partition of its topic, read from the
broker once the run's last transaction has committed.

The producer asks for no report per delivered record (a Python callback per record was a fifth
of its time): a transaction that commits has every one of its records on the topic, so the
counts come from the committed transactions, and the last offsets from the partitions' ends:

- During the run nobody else of weatherpipe writes to the topic: the producer's transactional
  id fences any other producer of the topic, and the topic's lock turns away a second run on
  this machine.
- Each transaction of the run ends, in every partition it wrote to, with one marker right after
  its last record. The run's final transaction (the ledger's) can only begin once the ones
  before it are complete, markers written; on top of that, the end is read only when no
  transaction is open on the partition any more (its last stable offset has reached its end).
  So the partition's end is the offset after the marker, and the run's last record there is
  two below the end.
- A partition whose end has not moved since the run began got nothing from it and is left out.
- Should some other client write to the topic all the same, the figure can only come out
  above the run's last record, never below: a reader that waits for it (the lab flow's
  consumer) waits for that client's records too, but never stops short of the run's.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Final

from confluent_kafka import IsolationLevel, KafkaException, TopicPartition
from confluent_kafka.admin import OffsetSpec  # type: ignore[attr-defined]

from weatherpipe.kafka.security import KafkaConnection
from weatherpipe.kafka.topic_views import partition_offsets, shared_admin, unavailable

TIMEOUT_S: Final = 30.0
_LATEST: Final = OffsetSpec.latest()  # type: ignore[no-untyped-call]
_MARKER_AND_NEXT: Final = 2
"""From a partition's end back to its last record: the commit marker, then the record."""


def end_offsets(kafka: KafkaConnection, topic: str) -> dict[int, int]:
    """The offset after the last one of each partition of `topic` (markers included)."""
    return {o.partition: o.end for o in partition_offsets(kafka, topic, TIMEOUT_S)}


def last_offsets(kafka: KafkaConnection, topic: str, before: Mapping[int, int]) -> dict[int, int]:
    """Per partition the run wrote to, the offset of its last record there; `before` is
    `end_offsets` from before the run's first transaction. Call after its last commit."""
    deadline = time.monotonic() + TIMEOUT_S
    while True:
        ends = _latest(kafka, topic, IsolationLevel.READ_UNCOMMITTED)
        stable = _latest(kafka, topic, IsolationLevel.READ_COMMITTED)
        moved = {p: end for p, end in ends.items() if end > before.get(p, 0)}
        settled = all(stable.get(p, -1) >= end for p, end in moved.items())
        # Past the deadline only another client's transaction can still be open (the run's
        # own have all ended): its records count as the run's, which only makes them higher.
        if settled or time.monotonic() > deadline:
            return {p: end - _MARKER_AND_NEXT for p, end in moved.items()}
        time.sleep(0.05)


def _latest(kafka: KafkaConnection, topic: str, isolation: IsolationLevel) -> dict[int, int]:
    admin = shared_admin(kafka, TIMEOUT_S)
    try:
        metadata = admin.list_topics(topic=topic, timeout=TIMEOUT_S)
        described = metadata.topics.get(topic)
        partitions = sorted(described.partitions) if described is not None else []
        if not partitions:
            return {}
        futures = admin.list_offsets(
            {TopicPartition(topic, p): _LATEST for p in partitions},
            isolation_level=isolation,
            request_timeout=TIMEOUT_S,
        )
        return {tp.partition: int(f.result().offset) for tp, f in futures.items()}
    except KafkaException as exc:
        raise unavailable(kafka, exc) from exc
