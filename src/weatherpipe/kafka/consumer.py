"""A thin typed wrapper over confluent_kafka.Consumer for manual-commit consumers.

Offsets are never committed automatically: the caller commits once its output is durable.
Fatal client errors become `KafkaConsumerError`; transient per-partition errors are logged
(with topic and partition) and skipped, since librdkafka retries them by itself. librdkafka's
own log lines go to `weatherpipe.kafka.consumer.client` at DEBUG level: a broker that is down
would otherwise fill the terminal with a refused connection every few milliseconds.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from types import TracebackType
from typing import Any, Final

from confluent_kafka import Consumer as _Consumer
from confluent_kafka import KafkaError, KafkaException, Message, TopicPartition

from weatherpipe.errors import TerminalError, TransientError
from weatherpipe.kafka.security import KafkaConnection, denied, refusal

log = logging.getLogger(__name__)
# What a broker answers while its group coordinator is being elected or loads the offsets.
_COORDINATOR_MOVING: Final = frozenset(
    {
        KafkaError.NOT_COORDINATOR,
        KafkaError.COORDINATOR_LOAD_IN_PROGRESS,
        KafkaError.COORDINATOR_NOT_AVAILABLE,
    }
)


class _DebugOnly(logging.LoggerAdapter[logging.Logger]):
    """Passes librdkafka's lines on at DEBUG whatever their level: what they report is
    retried by the client, and what it gives up on surfaces as an error of ours."""

    def log(self, level: int, msg: object, *args: Any, **kwargs: Any) -> None:
        super().log(logging.DEBUG, msg, *args, **kwargs)


CLIENT_LOG = _DebugOnly(logging.getLogger(f"{__name__}.client"), {})
"""The consumer's librdkafka log; shown with LOG_LEVEL=DEBUG."""

# A broker that stays down is reported again at most this often.
DOWN_REPORT_SECONDS: Final = 60.0
# How long closing waits for the broker to confirm that the member left its group.
LEAVE_SECONDS: Final = 2.0

RebalanceCallback = Callable[[list[TopicPartition]], None]

# Offsets are ours to commit; partitions without a committed offset start at the beginning,
# since the raw zone must hold everything the topic still has.
_FIXED_CONFIG: Final[dict[str, str | int | bool]] = {
    "enable.auto.commit": False,
    "enable.auto.offset.store": False,
    "auto.offset.reset": "earliest",
}


# Defaults a caller's config may override. librdkafka stops fetching a partition once its local
# queue holds queued.min.messages and then waits fetch.queue.backoff.ms (1 s by default) before
# it looks again; a consumer that drains its queue fast sits idle most of that second. 10 ms
# keeps the fetcher busy (the measurement is in bench/results.md).
#
# The records fetched ahead wait in a local queue of up to 64 MiB by default; a consumer that
# falls behind (a busy machine) fills it and grows with it. 16 MiB is still some 100,000
# records ahead of the writer.
_DEFAULT_CONFIG: Final[dict[str, str | int | bool]] = {
    "fetch.queue.backoff.ms": 10,
    "queued.max.messages.kbytes": 16_384,
}


# Answers retrying cannot change: a fatal error, or ones librdkafka reports as ordinary errors
# and would retry for ever (the login is refused, or its ACLs forbid the topic or the group).
_FINAL: Final = frozenset(
    {
        KafkaError._FATAL,
        KafkaError._AUTHENTICATION,
        KafkaError.TOPIC_AUTHORIZATION_FAILED,
        KafkaError.GROUP_AUTHORIZATION_FAILED,
    }
)


class KafkaConsumerError(TerminalError):
    """The Kafka consumer failed in a way retrying will not fix."""


class KafkaCommitError(TransientError):
    """Committing offsets to the consumer group failed (e.g. during a rebalance)."""


class KafkaUnavailableError(TransientError):
    """No broker answered a request in time."""


class KafkaTopicMissingError(TerminalError):
    """The topic does not exist on the cluster."""


class KafkaConsumer:
    """A Kafka consumer with manual commits; use it as a context manager."""

    def __init__(
        self,
        connection: KafkaConnection,
        group_id: str,
        *,
        extra_config: Mapping[str, str | int | float | bool] | None = None,
    ) -> None:
        config: dict[str, str | int | float | bool] = {**_DEFAULT_CONFIG, **(extra_config or {})}
        config.update(_FIXED_CONFIG)
        config.update(connection.config())
        config["group.id"] = group_id
        config.setdefault("error_cb", self._on_client_error)  # type: ignore[arg-type]
        config.setdefault("on_commit", self._on_commit)  # type: ignore[arg-type]
        self.bootstrap_servers = connection.bootstrap_servers
        self.connection = connection
        self.group_id = group_id
        instance = config.get("group.instance.id")
        self.instance_id = str(instance) if instance is not None else None
        self._consumer = _Consumer(config, logger=CLIENT_LOG)
        self._closed = False
        self._subscribed = False
        self._fatal: KafkaError | None = None
        self._down_reported_at: float | None = None

    def __enter__(self) -> KafkaConsumer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def subscribe(
        self,
        topic: str,
        on_assign: RebalanceCallback,
        on_revoke: RebalanceCallback,
        on_lost: RebalanceCallback,
    ) -> None:
        """Join the group for `topic`; the callbacks run inside `consume`."""
        self._subscribed = True
        self._consumer.subscribe(
            [topic],
            on_assign=lambda _consumer, partitions: on_assign(partitions),
            on_revoke=lambda _consumer, partitions: on_revoke(partitions),
            on_lost=lambda _consumer, partitions: on_lost(partitions),
        )

    def assign(self, partitions: list[TopicPartition]) -> None:
        """Start fetching `partitions` at their given offsets (call from `on_assign`)."""
        self._consumer.assign(partitions)

    def consume(self, max_messages: int, timeout: float) -> list[Message]:
        """Up to `max_messages` records, waiting at most `timeout` seconds for the first.

        Only records are returned; per-partition errors are logged and left out.
        """
        try:
            messages = self._consumer.consume(max_messages, timeout)
        except KafkaException as exc:
            raise KafkaConsumerError(self._explain(exc.args[0])) from exc
        if self._fatal is not None:
            raise KafkaConsumerError(self._explain(self._fatal))
        for message in messages:
            if message.error() is not None:
                return [m for m in messages if self._keep(m)]
        return messages

    def commit(self, offsets: Mapping[tuple[str, int], int], *, asynchronous: bool) -> None:
        """Commit `{(topic, partition): next offset}` to the group."""
        if not offsets:
            return
        partitions = [TopicPartition(t, p, o) for (t, p), o in offsets.items()]
        try:
            if asynchronous:
                self._consumer.commit(offsets=partitions, asynchronous=True)
                return
            results = self._consumer.commit(offsets=partitions, asynchronous=False)
        except KafkaException as exc:
            raise KafkaCommitError(f"committing {offsets} failed: {exc.args[0]}") from exc
        failed = [r for r in results if r.error is not None]
        if failed:
            raise KafkaCommitError(
                "committing failed for "
                + ", ".join(f"{r.topic}[{r.partition}]: {r.error}" for r in failed)
            )

    def committed(self, topic: str, partitions: list[int], timeout: float) -> dict[int, int]:
        """The group's committed offset of each of `partitions` that has one.

        A broker that has just started is still electing its group coordinator and answers
        NOT_COORDINATOR or COORDINATOR_LOAD_IN_PROGRESS for a few seconds: such retriable
        answers are asked again until `timeout`, so a consumer started right after the platform
        does not fail with Kafka running."""
        wanted = [TopicPartition(topic, p) for p in partitions]
        deadline = time.monotonic() + timeout
        while True:
            try:
                found = self._consumer.committed(wanted, max(deadline - time.monotonic(), 1.0))
                break
            except KafkaException as exc:
                error = exc.args[0]
                retriable = isinstance(error, KafkaError) and (
                    error.retriable() or error.code() in _COORDINATOR_MOVING
                )
                if not retriable or time.monotonic() + 0.2 >= deadline:
                    raise KafkaUnavailableError(self._unanswered(error)) from exc
                log.debug("the group's committed offsets: %s; asking again", error)
                time.sleep(0.2)
        return {tp.partition: tp.offset for tp in found if tp.offset >= 0}

    def positions(self, topic: str) -> dict[int, int]:
        """`{partition: next offset to read}` of the assigned partitions of `topic` this
        consumer has read from (a transaction's commit marker is read past as well)."""
        assigned = [tp for tp in self._consumer.assignment() if tp.topic == topic]
        if not assigned:
            return {}
        try:
            found = self._consumer.position(assigned)
        except KafkaException as exc:
            raise KafkaConsumerError(self._explain(exc.args[0])) from exc
        return {tp.partition: tp.offset for tp in found if tp.offset >= 0}

    def watermarks(self, topic: str, timeout: float) -> dict[int, tuple[int, int]]:
        """`{partition: (first offset, end offset)}` of every partition of `topic`, as the
        brokers hold them now (the end offset is the next record's)."""
        try:
            metadata = self._consumer.list_topics(topic, timeout=timeout).topics.get(topic)
            if metadata is None or metadata.error is not None:
                if metadata is None or metadata.error.code() == KafkaError.UNKNOWN_TOPIC_OR_PART:
                    raise KafkaTopicMissingError(
                        f"Topic {topic!r} does not exist at {self.bootstrap_servers}. Check "
                        "KAFKA_TOPIC; `weatherpipe produce` creates it when it sends the first "
                        "rows."
                    )
                raise KafkaUnavailableError(
                    f"Kafka at {self.bootstrap_servers} could not describe topic {topic!r} "
                    f"({metadata.error.str()}); run again in a moment."
                )
            return {
                p: self._consumer.get_watermark_offsets(
                    TopicPartition(topic, p), timeout=timeout, cached=False
                )
                for p in sorted(metadata.partitions)
            }
        except KafkaException as exc:
            raise KafkaUnavailableError(self._unanswered(exc.args[0])) from exc

    def close(self) -> None:
        """Leave the group (runs the revoke callback) and free the client; idempotent.

        A static member (`group.instance.id`) that just closes stays in its group until its
        session times out, so it unsubscribes first: that sends the LeaveGroup, and the group
        is empty (its offsets can be reset, others get the partitions) right away. A member
        that dies without this is replaced as soon as it comes back under the same id.
        """
        if self._closed:
            return
        self._closed = True
        if self._subscribed and self._fatal is None:
            try:
                self._consumer.unsubscribe()
                deadline = time.monotonic() + LEAVE_SECONDS
                while self._consumer.memberid() and time.monotonic() < deadline:
                    self._consumer.poll(0.05)  # runs the revoke callback, sends the leave
            except KafkaException as exc:
                log.debug("Kafka: leaving group %s failed: %s", self.group_id, exc)
        self._consumer.close()

    def _keep(self, message: Message) -> bool:
        error = message.error()
        if error is None:
            return True
        if error.fatal() or error.code() in _FINAL:
            self._fatal = error
            raise KafkaConsumerError(self._explain(error))
        if error.code() != KafkaError._PARTITION_EOF:
            log.warning(
                "Kafka: %s (topic %s, partition %s); retrying",
                error.str(),
                message.topic(),
                message.partition(),
            )
        return False

    def _on_client_error(self, error: KafkaError) -> None:
        if error.fatal() or error.code() in _FINAL:
            self._fatal = error
        elif error.code() == KafkaError._ALL_BROKERS_DOWN:
            now = time.monotonic()
            last = self._down_reported_at
            if last is None or now - last >= DOWN_REPORT_SECONDS:
                self._down_reported_at = now
                log.warning(
                    "Kafka at %s does not answer; retrying (start it with `weatherpipe "
                    "platform up` if it is the local one)",
                    self.bootstrap_servers,
                )
        else:
            log.debug("Kafka client: %s", error.str())

    def _on_commit(self, error: KafkaError | None, partitions: list[TopicPartition]) -> None:
        if error is not None:
            log.warning("Kafka: committing offsets failed (%s); the next commit retries", error)

    def _explain(self, error: object) -> str:
        if "fenced" in str(error).lower():
            return (
                f"Kafka fenced this consumer out of group {self.group_id!r}: another consumer "
                f"joined it as the same member {self.instance_id!r}. Consumers on two hosts "
                "with the same host name (or KAFKA_GROUP_INSTANCE_ID) and RAW_DIR path get the "
                "same identity: give each host its own KAFKA_GROUP_INSTANCE_ID and run again."
            )
        if isinstance(error, KafkaError):
            if error.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED:
                return denied(self.connection, "read", "the topic", [])
            if error.code() == KafkaError.GROUP_AUTHORIZATION_FAILED:
                return denied(self.connection, "join consumer group", repr(self.group_id), [])
            refused = refusal(self.connection, [error], [])
            if refused is not None:
                return refused
        return (
            f"Kafka consumer of group {self.group_id!r} at {self.bootstrap_servers} failed: "
            f"{error}. Run again; if it fails the same way, the broker's log says why."
        )

    def _unanswered(self, error: object) -> str:
        return (
            f"Kafka at {self.bootstrap_servers} did not answer ({error}). Start it with "
            "`weatherpipe platform up` (or check `weatherpipe platform status`) and run again."
        )
