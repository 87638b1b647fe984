"""A thin typed wrapper over confluent_kafka.Producer for sending many records safely.

Idempotent and acks=all, so a retried batch is never written twice and an acknowledged record
is on every in-sync replica. A full local queue is handled by serving delivery reports and
retrying. Every delivery report is counted: after `flush` returns 0 each record handed over is
either in `delivered` or in `failed`.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from confluent_kafka import KafkaError, Message, Producer

from weatherpipe.kafka.admin import CLIENT_LOG
from weatherpipe.kafka.security import KafkaConnection

# Delivery reports are served every this many records, so the queue never fills up with them.
POLL_EVERY: Final = 5_000
_ERRORS_KEPT: Final = 5


@dataclass
class DeliveryCounter:
    """Counts one topic's delivery reports (called by librdkafka from poll/flush)."""

    delivered: int = 0
    failed: int = 0
    errors: list[str] = field(default_factory=list)
    last_offsets: dict[int, int] = field(default_factory=dict)
    """The offset of the last record delivered to each partition (reports of one partition
    come in offset order)."""
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def __call__(self, error: KafkaError | None, message: Message) -> None:
        if error is None:
            self.delivered += 1
            partition, offset = message.partition(), message.offset()
            if partition is not None and offset is not None:  # always set on a delivery
                self.last_offsets[partition] = offset
            return
        with self._lock:
            self.failed += 1
            if len(self.errors) < _ERRORS_KEPT:
                self.errors.append(f"{message.topic()}: {error.str()}")


@dataclass(frozen=True)
class ProducerConfig:
    """The tuning knobs; everything else is fixed for safety."""

    connection: KafkaConnection
    compression: str = "lz4"
    linger_ms: int = 20
    batch_bytes: int = 1_000_000
    delivery_timeout_ms: int = 120_000
    # The local queue holds what is handed over but not yet acknowledged. A few batches per
    # partition keep the brokers busy; more only grows the process (at 500,000 records and
    # 1 GiB the producer passed 400 MiB) while the send loop waits for room all the same.
    queue_messages: int = 100_000
    queue_kbytes: int = 32_768

    def as_librdkafka(self) -> dict[str, Any]:
        return {
            **self.connection.config(),
            "enable.idempotence": True,
            "acks": "all",
            "compression.type": self.compression,
            "linger.ms": self.linger_ms,
            "batch.size": self.batch_bytes,
            "message.timeout.ms": self.delivery_timeout_ms,
            "queue.buffering.max.messages": self.queue_messages,
            "queue.buffering.max.kbytes": self.queue_kbytes,
            # The Java client's partitioner: the same key lands in the same partition whichever
            # client wrote it.
            "partitioner": "murmur2_random",
        }


class RecordProducer:
    """Sends records and counts their delivery reports per topic.

    The main topic's counter is the client's default delivery callback, which spares a keyword
    argument on each of its millions of calls; other topics (the dead-letter topic) pass theirs
    per record.
    """

    def __init__(self, config: ProducerConfig, main_topic: str) -> None:
        self.config = config
        self.main_topic = main_topic
        self.counters: dict[str, DeliveryCounter] = {main_topic: DeliveryCounter()}
        self._producer = Producer(
            {**config.as_librdkafka(), "on_delivery": self.counters[main_topic]},
            logger=CLIENT_LOG,
        )

    def counter(self, topic: str) -> DeliveryCounter:
        """The delivery counter of `topic` (created on first use)."""
        return self.counters.setdefault(topic, DeliveryCounter())

    def send_many(
        self,
        topic: str,
        values: Sequence[bytes],
        keys: Sequence[str | bytes],
        stop: Callable[[], bool] = lambda: False,
        on_sent: Callable[[int], None] | None = None,
    ) -> int:
        """Hand `values` (with `keys`) to the client in order; returns how many were accepted.

        Stops early, between slices of POLL_EVERY records, once `stop()` is true. `on_sent` is
        called with the number accepted in each slice.
        """
        send: Callable[[str, bytes, str | bytes], None] = self._producer.produce
        if topic != self.main_topic:
            send = functools.partial(self._producer.produce, on_delivery=self.counter(topic))
        poll = self._producer.poll
        accepted = 0
        total = len(values)
        while accepted < total and not stop():
            end = min(accepted + POLL_EVERY, total)
            for value, key in zip(values[accepted:end], keys[accepted:end], strict=True):
                try:
                    send(topic, value, key)
                except BufferError:
                    # The local queue is full: let librdkafka send and report, then retry.
                    self._wait_for_room(send, topic, value, key)
            poll(0)
            if on_sent is not None:
                on_sent(end - accepted)
            accepted = end
        return accepted

    def _wait_for_room(
        self,
        send: Callable[[str, bytes, str | bytes], None],
        topic: str,
        value: bytes,
        key: str | bytes,
    ) -> None:
        while True:
            self._producer.poll(0.05)
            try:
                send(topic, value, key)
                return
            except BufferError:
                continue

    def flush(self, timeout: float | None = None) -> int:
        """Wait for every outstanding delivery report; returns how many are still missing."""
        limit = timeout if timeout is not None else self.config.delivery_timeout_ms / 1000 + 30
        remaining: int = self._producer.flush(limit)
        return remaining
