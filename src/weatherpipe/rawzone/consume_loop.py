"""The raw-zone consumer: Kafka records -> raw files, each offset stored exactly once.

The order of a commit, for every file: write lines to a temp file -> flush -> fsync -> rename
to `<topic>+<partition>+<first>+<last>.ndjson` -> fsync the folder -> commit `last + 1` to the
group. The group's offset is only a hint: on assignment the files win (see `recovery`), so a
crash anywhere in that sequence neither loses nor doubles a record.

Each partition has at most one open file, holding a contiguous run of its offsets. A record of
another UTC date finishes it and starts the next: files of one partition therefore never
interleave, and "highest last offset + 1" is always exactly where the partition resumes.
"""

from __future__ import annotations

import logging
import os
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from confluent_kafka import TIMESTAMP_NOT_AVAILABLE, Message, TopicPartition

from weatherpipe.errors import TransientError
from weatherpipe.kafka.consumer import KafkaCommitError, KafkaConsumer
from weatherpipe.rawzone import recovery
from weatherpipe.rawzone.lines import LineEncoder
from weatherpipe.rawzone.naming import DAY_MS
from weatherpipe.rawzone.rotation import RotationCounter, RotationPolicy, RotationReason
from weatherpipe.rawzone.writer import RawFile, RawZone

log = logging.getLogger(__name__)

# Timestamps past 9999-12-31 cannot be a date folder; such records go by arrival date.
_MAX_TIMESTAMP_MS: Final = 253_402_300_800_000
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
    """What a run stored: only records in published files count."""

    messages: int = 0
    bytes: int = 0
    files: int = 0
    value_errors: Counter[str] = field(default_factory=Counter)
    skipped: int = 0
    stale_temp_files_removed: int = 0
    rotations: RotationCounter = field(default_factory=RotationCounter)
    started: float = field(default_factory=time.monotonic)
    finished: float | None = None

    @property
    def seconds(self) -> float:
        """Wall time of the run so far."""
        return (self.finished or time.monotonic()) - self.started

    @property
    def rate(self) -> float:
        """Stored records per second."""
        return self.messages / self.seconds if self.seconds > 0 else 0.0

    def as_dict(self) -> dict[str, object]:
        """The figures as plain JSON-able values."""
        return {
            "messages": self.messages,
            "files": self.files,
            "bytes": self.bytes,
            "seconds": round(self.seconds, 3),
            "messages_per_second": round(self.rate, 1),
            "value_errors": dict(sorted(self.value_errors.items())),
            "rotations": self.rotations.as_dict(),
            "skipped": self.skipped,
            "stale_temp_files_removed": self.stale_temp_files_removed,
        }


class _Partition:
    """The state of one assigned partition."""

    __slots__ = ("errors", "file", "next_offset", "number", "prefix")

    def __init__(self, number: int, prefix: bytes, next_offset: int | None) -> None:
        self.number = number
        self.prefix = prefix
        self.next_offset = next_offset
        self.file: RawFile | None = None
        self.errors: Counter[str] = Counter()


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
        self.stats = ConsumeStats()
        self.stop_requested = False
        self._on_progress = on_progress
        self._encoder = LineEncoder(options.topic)
        self._zone = RawZone(
            options.raw_dir, options.topic, f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
        )
        self._partitions: dict[int, _Partition] = {}
        self._assigned_once = False
        self._last_activity = time.monotonic()

    def run(self) -> ConsumeStats:
        """Consume until stopped (`stop_requested`) or idle; finish every file and return."""
        topic = self.options.topic
        self.consumer.subscribe(topic, self._on_assign, self._on_revoke, self._on_lost)
        try:
            while not self.stop_requested:
                messages = self.consumer.consume(self.options.batch_size, self.options.poll_seconds)
                now = time.monotonic()
                if messages:
                    self._last_activity = now
                    self._write(messages)
                self._rotate_expired(now)
                if self._idle(now):
                    break
                if self._on_progress is not None:
                    self._on_progress(self.stats)
        finally:
            self._finish_all(RotationReason.SHUTDOWN)
        self.stats.finished = time.monotonic()
        return self.stats

    def _idle(self, now: float) -> bool:
        idle = self.options.until_idle
        if idle is None:
            return False
        if not self._assigned_once:
            if now - self.stats.started > max(idle, JOIN_TIMEOUT_SECONDS):
                raise TransientError(
                    f"No partition of {self.options.topic!r} was assigned within "
                    f"{max(idle, JOIN_TIMEOUT_SECONDS):.0f} s. Check that Kafka is running at "
                    f"{self.consumer.bootstrap_servers} (`weatherpipe platform status`)."
                )
            return False
        return now - self._last_activity >= idle

    def _write(self, messages: list[Message]) -> None:
        partitions = self._partitions
        encoder = self._encoder
        max_bytes = self.options.policy.max_bytes
        for message in messages:
            state = partitions.get(message.partition())  # type: ignore[arg-type]
            offset: int = message.offset()  # type: ignore[assignment]
            if state is None or (state.next_offset is not None and offset < state.next_offset):
                # Not ours any more, or already stored: never write an offset twice.
                self.stats.skipped += 1
                continue
            kind, timestamp = message.timestamp()
            ts: int | None = timestamp
            if kind == TIMESTAMP_NOT_AVAILABLE or not 0 <= timestamp < _MAX_TIMESTAMP_MS:
                ts, day = None, int(time.time() * 1000) // DAY_MS
            else:
                day = timestamp // DAY_MS
            file = state.file
            if file is None:
                file = state.file = self._zone.open(state.number, day, offset)
            elif file.day != day:
                self._finish(state, RotationReason.DATE)
                file = state.file = self._zone.open(state.number, day, offset)
            line, error = encoder.line(state.prefix, offset, ts, message.key(), message.value())
            file.write(line, offset)
            state.next_offset = offset + 1
            if error is not None:
                state.errors[error] += 1
            if file.size >= max_bytes:
                self._finish(state, RotationReason.SIZE)

    def _rotate_expired(self, now: float) -> None:
        policy = self.options.policy
        for state in self._partitions.values():
            if state.file is not None and policy.expired(state.file.opened_at, now):
                self._finish(state, RotationReason.AGE)

    def _finish(self, state: _Partition, reason: RotationReason, *, sync: bool = False) -> None:
        """Publish the partition's open file and commit past it (flush -> fsync -> rename ->
        fsync folder -> commit)."""
        file = state.file
        if file is None:
            return
        file.finish()
        state.file = None
        stats = self.stats
        stats.messages += file.records
        stats.bytes += file.size
        stats.files += 1
        stats.value_errors.update(state.errors)
        state.errors.clear()
        stats.rotations.add(reason)
        try:
            self.consumer.commit(
                {(self.options.topic, state.number): file.last_offset + 1}, asynchronous=not sync
            )
        except KafkaCommitError as exc:
            # Harmless: the file is published and the files own the offsets.
            log.warning("%s; the raw zone already holds these records", exc)

    def _finish_all(self, reason: RotationReason) -> None:
        for state in self._partitions.values():
            self._finish(state, reason, sync=True)

    def _on_assign(self, partitions: list[TopicPartition]) -> None:
        topic, raw_dir = self.options.topic, self.options.raw_dir
        numbers = [tp.partition for tp in partitions if tp.topic == topic]
        removed = recovery.remove_stale_temp_files(raw_dir, topic, numbers)
        self.stats.stale_temp_files_removed += len(removed)
        resume = recovery.resume_offsets(raw_dir, topic, numbers)
        for tp in partitions:
            if tp.topic == topic and tp.partition in resume:
                tp.offset = resume[tp.partition]
        self.consumer.assign(partitions)
        for number in numbers:
            self._partitions[number] = _Partition(
                number, self._encoder.prefix(number), resume.get(number)
            )
        self._assigned_once = True
        self._last_activity = time.monotonic()
        log.info(
            "assigned %s partitions %s (resume at %s, %d stale temp files removed)",
            topic,
            numbers,
            resume,
            len(removed),
        )

    def _on_revoke(self, partitions: list[TopicPartition]) -> None:
        for tp in partitions:
            state = self._partitions.pop(tp.partition, None)
            if state is not None and tp.topic == self.options.topic:
                self._finish(state, RotationReason.REVOKE, sync=True)

    def _on_lost(self, partitions: list[TopicPartition]) -> None:
        # Another member may own these already: publishing could double its records.
        for tp in partitions:
            state = self._partitions.pop(tp.partition, None)
            if state is not None and state.file is not None:
                log.warning(
                    "lost partition %s[%d]; dropping %d unpublished records (they are read "
                    "again by the partition's new owner)",
                    tp.topic,
                    tp.partition,
                    state.file.records,
                )
                state.file.abort()
