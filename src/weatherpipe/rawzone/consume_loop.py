"""The consume loop: a Kafka consumer group feeding a `RawZoneSink`.

Batched `consume`, rebalance callbacks (assign: files win; revoke: publish and commit; lost:
drop unpublished), rotation by age between batches, and the end of a run: on request
(SIGTERM/SIGINT set `stop_requested`) or after `until_idle` seconds without a record.
"""

from __future__ import annotations

import logging
import resource
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Final

from confluent_kafka import TopicPartition

from weatherpipe.errors import TransientError, WeatherpipeError
from weatherpipe.kafka.consumer import KafkaCommitError, KafkaConsumer
from weatherpipe.rawzone.rotation import RotationPolicy, RotationReason
from weatherpipe.rawzone.sink import RawZoneSink, SinkStats

log = logging.getLogger(__name__)

# How long a consumer may wait for its first partition assignment before giving up.
JOIN_TIMEOUT_SECONDS: Final = 60.0


@dataclass(frozen=True)
class ConsumeOptions:
    """What to read, where to write, and when to stop."""

    raw_dir: Path
    topic: str
    policy: RotationPolicy
    batch_size: int = 10_000
    poll_seconds: float = 0.5
    until_idle: float | None = None
    """Finish and return once no record arrived for this many seconds; None: run until
    stopped."""


@dataclass
class ConsumeStats:
    """A run's figures: what the sink stored, and how long it took."""

    sink: SinkStats
    started: float = field(default_factory=time.monotonic)
    assigned_at: float | None = None
    last_record_at: float | None = None
    finished: float | None = None
    peak_rss: int | None = None
    """Peak resident memory in bytes, when not this process's own (workers: their sum)."""

    @property
    def seconds(self) -> float:
        """Wall time of the run so far."""
        return (self.finished or time.monotonic()) - self.started

    @property
    def rate(self) -> float:
        """Stored records per second, from the first partition assignment to the last record
        (joining the group and an idle wait at the end do not count)."""
        begin = self.assigned_at or self.started
        busy = (self.last_record_at or begin) - begin
        return self.sink.messages / busy if busy > 0 else 0.0

    def as_dict(self) -> dict[str, object]:
        """The figures as plain JSON-able values."""
        sink = self.sink
        return {
            "messages": sink.messages,
            "files": sink.files,
            "bytes": sink.bytes,
            "seconds": round(self.seconds, 3),
            "messages_per_second": round(self.rate, 1),
            "value_errors": dict(sorted(sink.value_errors.items())),
            "rotations": sink.rotations.as_dict(),
            "skipped": sink.skipped,
            "stale_temp_files_removed": sink.stale_temp_files_removed,
            "damaged_files_set_aside": sink.damaged_files_set_aside,
            "peak_rss_bytes": self.peak_rss if self.peak_rss is not None else peak_rss_bytes(),
        }


def peak_rss_bytes() -> int:
    """This process's peak resident memory so far (Linux reports KiB, macOS bytes)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024


class RawZoneConsumer:
    """Reads one topic with a `KafkaConsumer` and stores its records in the raw zone."""

    def __init__(
        self,
        consumer: KafkaConsumer,
        options: ConsumeOptions,
        on_progress: Callable[[ConsumeStats], None] | None = None,
    ) -> None:
        self.consumer = consumer
        self.options = options
        self.sink = RawZoneSink(options.raw_dir, options.topic, options.policy, self._commit)
        self.stats = ConsumeStats(self.sink.stats)
        self.stop_requested = False
        self.on_progress = on_progress
        self._assigned_once = False
        self._last_activity = time.monotonic()

    def run(self) -> ConsumeStats:
        """Consume until stopped (`stop_requested`) or idle; finish every file and return."""
        options = self.options
        self.consumer.subscribe(options.topic, self._on_assign, self._on_revoke, self._on_lost)
        try:
            while not self.stop_requested:
                messages = self.consumer.consume(options.batch_size, options.poll_seconds)
                if messages:
                    self.sink.write(messages)
                    self._last_activity = self.stats.last_record_at = time.monotonic()
                now = time.monotonic()
                self.sink.rotate_expired(now)
                if self._idle(now):
                    break
                if self.on_progress is not None:
                    self.on_progress(self.stats)
        except BaseException:
            self._finish_after_failure()
            raise
        self.sink.finish_all(RotationReason.SHUTDOWN)
        self.stats.finished = time.monotonic()
        return self.stats

    def _finish_after_failure(self) -> None:
        """Publish what can still be published; the failure that stopped the run is the one
        reported, so a second one (the same full disk, most likely) is only logged."""
        try:
            self.sink.finish_all(RotationReason.SHUTDOWN)
        except WeatherpipeError as exc:
            log.debug("while stopping after a failure: %s", exc)

    def stop_on(self, *signals: int) -> None:
        """Finish the files and return from `run` on any of `signals`; a second one means
        "now" (the default action, e.g. termination)."""

        def request_stop(signum: int, _frame: FrameType | None) -> None:
            self.stop_requested = True
            signal.signal(signum, signal.SIG_DFL)

        for signum in signals:
            signal.signal(signum, request_stop)

    def _idle(self, now: float) -> bool:
        idle = self.options.until_idle
        if idle is None:
            return False
        if not self._assigned_once:
            limit = max(idle, JOIN_TIMEOUT_SECONDS)
            if now - self.stats.started > limit:
                raise TransientError(
                    f"No partition of {self.options.topic!r} was assigned within {limit:.0f} s."
                    f" Check that Kafka is running at {self.consumer.bootstrap_servers} "
                    "(`weatherpipe platform status`) and run again."
                )
            return False
        return now - self._last_activity >= idle

    def _commit(self, partition: int, next_offset: int, synchronous: bool) -> None:
        try:
            self.consumer.commit(
                {(self.options.topic, partition): next_offset}, asynchronous=not synchronous
            )
        except KafkaCommitError as exc:
            # Harmless: the file is published and the files own the offsets.
            log.warning("%s; the raw zone holds these records already", exc)

    def _on_assign(self, partitions: list[TopicPartition]) -> None:
        topic = self.options.topic
        resume = self.sink.assign(tp.partition for tp in partitions if tp.topic == topic)
        for tp in partitions:
            if tp.topic == topic and tp.partition in resume:
                tp.offset = resume[tp.partition]
        self.consumer.assign(partitions)
        self._assigned_once = True
        self._last_activity = time.monotonic()
        if self.stats.assigned_at is None:
            self.stats.assigned_at = self._last_activity

    def _on_revoke(self, partitions: list[TopicPartition]) -> None:
        self.sink.revoke(tp.partition for tp in partitions if tp.topic == self.options.topic)

    def _on_lost(self, partitions: list[TopicPartition]) -> None:
        self.sink.lose(tp.partition for tp in partitions if tp.topic == self.options.topic)
