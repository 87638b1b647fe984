"""A thin typed wrapper over confluent_kafka.Producer for sending many records in transactions.

Transactional (so idempotent, acks=all): what a transaction holds becomes visible to readers
(read_committed, the default of every weatherpipe consumer) all at once when it commits, or not
at all. The transactional id fences: a producer that starts with the same id, on this machine
or another, aborts the older one's open transaction and makes the older one fail on its next
send, so two producers of one id never both write. A full local queue is handled by serving
the client's events and retrying.

Errors of a transaction become exceptions by what can be done about them: a retriable commit
is retried here; one that requires an abort is aborted here and raised as
`TransactionAbortedError` (send the same records again in a new transaction); a fenced or
otherwise fatal producer raises `ProducerFencedError` / `ProducerFailedError`.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Final

from confluent_kafka import KafkaError, KafkaException, Producer

from weatherpipe.errors import TerminalError, TransientError
from weatherpipe.kafka.admin import CLIENT_LOG
from weatherpipe.kafka.security import KafkaConnection

# The producer client's own log: its errors of a transaction (fenced, aborted) all reach the
# caller as the exceptions below, which say what to do; the client's lines would only repeat
# them less clearly.
_CLIENT_LOG = CLIENT_LOG.getChild("producer")
_CLIENT_LOG.setLevel(logging.CRITICAL + 1)

# The client's events are served every this many records, so its queue never fills up.
POLL_EVERY: Final = 5_000
MESSAGE_MAX_BYTES: Final = 1_000_000
"""The largest message the producer sends (librdkafka's `message.max.bytes`, its default)."""
_FENCED: Final = frozenset(
    {KafkaError._FENCED, KafkaError.PRODUCER_FENCED, KafkaError.INVALID_PRODUCER_EPOCH}
)


class ProducerFencedError(TerminalError):
    """Another producer with the same transactional id started: this one may not write."""


class ProducerFailedError(TerminalError):
    """The producer hit an error it cannot recover from."""


class TransactionAbortedError(TransientError):
    """The transaction could not be committed and was aborted: none of its records is visible."""


TRANSACTION_MARGIN_MS: Final = 30_000


@dataclass(frozen=True)
class ProducerConfig:
    """The tuning knobs; everything else is fixed for safety."""

    connection: KafkaConnection
    transactional_id: str
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
            "transactional.id": self.transactional_id,
            # A transaction may stay open as long as a record may take to be delivered (the
            # client refuses a shorter one): a broker restart mid-transaction is waited out.
            # The margin lets this producer abort a transaction whose records timed out before
            # the coordinator does: a coordinator's abort on timeout bumps the producer's epoch,
            # and the client then sees itself fenced as if another producer had taken over.
            "transaction.timeout.ms": self.delivery_timeout_ms + TRANSACTION_MARGIN_MS,
            "message.timeout.ms": self.delivery_timeout_ms,
            "acks": "all",
            "compression.type": self.compression,
            "linger.ms": self.linger_ms,
            "batch.size": self.batch_bytes,
            "message.max.bytes": MESSAGE_MAX_BYTES,
            "queue.buffering.max.messages": self.queue_messages,
            "queue.buffering.max.kbytes": self.queue_kbytes,
            # The Java client's partitioner: the same key lands in the same partition whichever
            # client wrote it.
            "partitioner": "murmur2_random",
            # A record that fails makes its transaction's commit fail, which raises here; a
            # report of each success would only cost a callback per record.
            "delivery.report.only.error": True,
        }


class RecordProducer:
    """Sends records in transactions: `begin`, `send_many` / `send_one`, `commit`.

    Use as a context manager: leaving it with a transaction still open aborts that one.
    """

    def __init__(self, config: ProducerConfig) -> None:
        self.config = config
        self._fatal: KafkaError | None = None
        self._producer = Producer(
            {**config.as_librdkafka(), "error_cb": self._on_error}, logger=_CLIENT_LOG
        )
        self._open = False

    def _on_error(self, error: KafkaError) -> None:
        # A send after a fatal error only says "Fatal error"; the cause (fenced?) comes here.
        if error.fatal():
            self._fatal = error

    @property
    def timeout(self) -> float:
        """Seconds a transaction's commit or abort may take before it counts as failed."""
        return self.config.delivery_timeout_ms / 1000 + 30

    def __enter__(self) -> RecordProducer:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        if self._open and not isinstance(error, ProducerFencedError | ProducerFailedError):
            # Should this fail, the next producer of this id aborts it when it starts.
            with contextlib.suppress(KafkaException):
                self._producer.abort_transaction(10)
        self._open = False

    def init(self, timeout: float = 60) -> None:
        """Register the transactional id with the broker: any older producer of the same id
        is fenced and its open transaction aborted."""
        self._call(lambda: self._producer.init_transactions(timeout))

    def begin(self) -> None:
        self._call(self._producer.begin_transaction)
        self._open = True

    def send_many(
        self,
        topic: str,
        values: Sequence[bytes],
        keys: Sequence[str | bytes],
        stop: Callable[[], bool] = lambda: False,
        on_sent: Callable[[int], None] | None = None,
    ) -> int:
        """Hand `values` (with `keys`) to the client in order; returns how many were handed.

        Stops early, between slices of POLL_EVERY records, once `stop()` is true. `on_sent` is
        called with the number handed over in each slice.
        """
        send = functools.partial(self._producer.produce, topic)
        poll = self._producer.poll
        handed = 0
        total = len(values)
        while handed < total and not stop():
            end = min(handed + POLL_EVERY, total)
            try:
                for value, key in zip(values[handed:end], keys[handed:end], strict=True):
                    try:
                        send(value, key)
                    except BufferError:
                        # The local queue is full: let the client send and serve, then retry.
                        self._wait_for_room(send, value, key)
                poll(0)
            except KafkaException as exc:
                raise self._failure(exc) from exc
            if on_sent is not None:
                on_sent(end - handed)
            handed = end
        return handed

    def send_one(self, topic: str, value: bytes | None, key: str | bytes) -> None:
        """One record (a None value is a tombstone)."""
        try:
            try:
                self._producer.produce(topic, value, key)
            except BufferError:
                self._wait_for_room(functools.partial(self._producer.produce, topic), value, key)
        except KafkaException as exc:
            raise self._failure(exc) from exc

    def _wait_for_room(
        self,
        send: Callable[[bytes | None, str | bytes], None],
        value: bytes | None,
        key: str | bytes,
    ) -> None:
        while True:
            self._producer.poll(0.05)
            try:
                send(value, key)
                return
            except BufferError:
                continue

    def commit(self) -> None:
        """Commit the open transaction: every record of it is then on the broker, visible to
        readers. Raises `TransactionAbortedError` (after aborting it) when it cannot be."""
        deadline = time.monotonic() + self.timeout
        while True:
            try:
                self._producer.commit_transaction(max(1.0, deadline - time.monotonic()))
                self._open = False
                return
            except KafkaException as exc:
                error: KafkaError = exc.args[0]
                if error.retriable() and time.monotonic() < deadline:
                    continue
                if error.txn_requires_abort() or error.retriable():
                    self.abort()
                    raise TransactionAbortedError(
                        f"the transaction was aborted: {error.str()}"
                    ) from exc
                raise self._failure(exc) from exc

    def abort(self) -> None:
        """Abort the open transaction: none of its records becomes visible."""
        deadline = time.monotonic() + self.timeout
        while True:
            try:
                self._producer.abort_transaction(max(1.0, deadline - time.monotonic()))
                self._open = False
                return
            except KafkaException as exc:
                if exc.args[0].retriable() and time.monotonic() < deadline:
                    continue
                raise self._failure(exc) from exc

    def _call(self, action: Callable[[], None]) -> None:
        try:
            action()
        except KafkaException as exc:
            raise self._failure(exc) from exc

    def _failure(self, exc: KafkaException) -> TerminalError | TransientError:
        error: KafkaError = exc.args[0]
        if error.code() == KafkaError._FATAL:
            try:
                self._producer.poll(0)  # serves the error callback that names the cause
            except KafkaException as cause:  # or raises it
                self._fatal = cause.args[0]
            error = self._fatal or error
        if error.code() in _FENCED:
            self._open = False
            return ProducerFencedError(
                f"Another producer with transactional id {self.config.transactional_id!r} "
                "started (on this machine with another STATE_DIR, or on another machine) and "
                "took over: this one stopped. What it committed stays on the topic."
            )
        if error.code() == KafkaError._TIMED_OUT or error.retriable():
            return TransientError(
                f"Kafka at {self.config.connection.bootstrap_servers} did not answer in time "
                f"({error.str()}). Check that the broker runs (`weatherpipe platform status`) "
                "and run again; an interrupted run is resumed."
            )
        if error.fatal():
            self._open = False
        return ProducerFailedError(
            f"The Kafka producer failed: {error.str()}. If the broker refuses transactions "
            f"(transactional id {self.config.transactional_id!r}), grant the producer's user "
            "the TransactionalId and IdempotentWrite permissions."
        )
