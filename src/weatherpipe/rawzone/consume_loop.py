"""The consume loop: a Kafka consumer group feeding a `RawZoneSink`.

Batched `consume`, rebalance callbacks (assign: files win; revoke: publish and commit; lost:
drop unpublished), rotation by age between batches, and the end of a run: on request
(SIGTERM/SIGINT set `stop_requested`) or after `until_idle` seconds without a record, once the
raw zone holds the topic up to its end offsets (see `lag`).
"""

from __future__ import annotations

import gc
import logging
import resource
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Final

from confluent_kafka import TopicPartition

from weatherpipe.errors import TransientError, WeatherpipeError
from weatherpipe.kafka.consumer import KafkaCommitError, KafkaConsumer, KafkaConsumerError
from weatherpipe.kafka.group import partition_holders
from weatherpipe.kafka.security import KafkaConnection
from weatherpipe.kafka.topic_views import KafkaUnavailableError
from weatherpipe.rawzone import recovery
from weatherpipe.rawzone.lag import Gap, confirmed, gaps
from weatherpipe.rawzone.membership import claim_slot
from weatherpipe.rawzone.rotation import RotationPolicy, RotationReason
from weatherpipe.rawzone.sink import RawZoneSink, SinkStats
from weatherpipe.signals import on_signals

if TYPE_CHECKING:
    from weatherpipe.settings import Settings

log = logging.getLogger(__name__)

# An idle run waits this long for records the raw zone lacks before it gives up while they do
# not come: longer than the session of a member that died (45 s), after which the group hands
# that member's partitions to the living.
LAG_WAIT_SECONDS: Final = 60.0
# While it waits, it measures the lag at most this often.
LAG_CHECK_SECONDS: Final = 1.0
# How long a question to Kafka may take during that wait.
KAFKA_TIMEOUT_SECONDS: Final = 10.0


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

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        *,
        raw_dir: Path | None = None,
        topic: str | None = None,
        rotate_mb: float | None = None,
        rotate_seconds: float | None = None,
        batch_size: int | None = None,
        until_idle: float | None = None,
    ) -> ConsumeOptions:
        """The options of the settings; an argument given wins over its setting."""
        return cls(
            raw_dir=raw_dir or settings.raw_dir,
            topic=topic or settings.kafka_topic,
            policy=RotationPolicy.from_limits(
                rotate_mb or settings.rotate_mb, rotate_seconds or settings.rotate_seconds
            ),
            batch_size=batch_size or settings.consume_batch_size,
            until_idle=until_idle or settings.consume_until_idle,
        )


@dataclass
class ConsumeStats:
    """A run's figures: what the sink stored, and how long it took."""

    sink: SinkStats
    started: float = field(default_factory=time.monotonic)
    assigned_at: float | None = None
    first_record_at: float | None = None
    last_record_at: float | None = None
    finished: float | None = None
    peak_rss: int | None = None
    """Peak resident memory in bytes, when not this process's own (workers: their sum)."""

    @property
    def seconds(self) -> float:
        """Wall time of the run so far."""
        return (self.finished or time.monotonic()) - self.started

    @property
    def consuming_seconds(self) -> float:
        """Time from the first record received to the last: joining the group and the idle
        wait at the end do not count."""
        if self.first_record_at is None or self.last_record_at is None:
            return 0.0
        return self.last_record_at - self.first_record_at

    @property
    def rate(self) -> float:
        """Stored records per second over `consuming_seconds` (0 when that is 0)."""
        busy = self.consuming_seconds
        return self.sink.messages / busy if busy > 0 else 0.0

    def as_dict(self) -> dict[str, object]:
        """The figures as plain JSON-able values."""
        sink = self.sink
        return {
            "messages": sink.messages,
            "files": sink.files,
            "bytes": sink.bytes,
            "seconds": round(self.seconds, 3),
            "consuming_seconds": round(self.consuming_seconds, 3),
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
        self._last_activity = time.monotonic()
        self._next_lag_check = 0.0
        self._waiting_since: float | None = None
        self._lag_seen = 0

    def run(self) -> ConsumeStats:
        """Consume until stopped (`stop_requested`) or idle; finish every file and return."""
        options = self.options
        # Every batch allocates thousands of records, and each few hundred allocations start
        # the cyclic collector; its full passes walked every object of the program (the
        # modules' too): a fifth of the consumer's time. Objects alive now are frozen out of
        # the collections, and a young generation of a batch's size is collected once a batch.
        gc.freeze()
        gc.set_threshold(max(options.batch_size, gc.get_threshold()[0]), 10, 10)
        self.consumer.subscribe(options.topic, self._on_assign, self._on_revoke, self._on_lost)
        try:
            while not self.stop_requested:
                messages = self.consumer.consume(options.batch_size, options.poll_seconds)
                if messages:
                    self.sink.write(messages)
                    self._last_activity = self.stats.last_record_at = time.monotonic()
                    if self.stats.first_record_at is None:
                        self.stats.first_record_at = self._last_activity
                now = time.monotonic()
                published = self.sink.stats.files
                self.sink.rotate_expired(now)
                if self.sink.stats.files != published and not messages:
                    self._commit_read_past()
                if self._idle(now):
                    break
                if self.on_progress is not None:
                    self.on_progress(self.stats)
        except KafkaConsumerError:
            # The client failed or was fenced: this member may no longer own its partitions,
            # so their unpublished files are dropped as on a lost assignment (read again).
            self.sink.lose(self.sink.partitions)
            raise
        except BaseException:
            self._finish_after_failure()
            raise
        self.sink.finish_all(RotationReason.SHUTDOWN)
        self._commit_read_past()
        self.stats.finished = time.monotonic()
        return self.stats

    def _commit_read_past(self) -> None:
        """Commit the read position of each partition whose records are all published.

        A transactional producer's commit marker takes an offset after the last record; the
        position moves past it, the last file's name cannot. Committing only `last + 1` would
        leave the group 1 behind the topic's end for good in every tool that shows lag
        (AKHQ, the dashboard), although nothing is missing. Only partitions without an open
        file qualify, so the offsets between the stored records and the position hold no
        record this member has read and not stored."""
        try:
            positions = self.consumer.positions(self.options.topic)
        except KafkaConsumerError as exc:
            log.debug("read positions not committed: %s", exc)
            return
        stored = self.sink.stored_up_to()
        past = {
            (self.options.topic, partition): position
            for partition, position in positions.items()
            if partition in stored and position > stored[partition]
        }
        if past:
            try:
                self.consumer.commit(past, asynchronous=False)
            except KafkaCommitError as exc:
                log.warning("%s; the raw zone holds every record read", exc)

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

        def request_stop(_signum: int) -> None:
            self.stop_requested = True

        on_signals(request_stop, signals, repeat="default")

    def _idle(self, now: float) -> bool:
        """Whether an `until_idle` run is done: idle long enough, its files published, and
        nothing the topic holds missing from the raw zone. Records that are missing are
        waited for (another member may still publish them, or the group hands a dead
        member's partitions to this one), until the lag stops shrinking for
        LAG_WAIT_SECONDS."""
        idle = self.options.until_idle
        if idle is None:
            return False
        if now - self._last_activity < idle:
            self._waiting_since = None
            return False
        if now < self._next_lag_check:
            return False
        self._next_lag_check = now + LAG_CHECK_SECONDS
        # Published first: a member waiting for this one's partitions finds them stored.
        self.sink.finish_all(RotationReason.SHUTDOWN)
        self._commit_read_past()
        missing = self._gaps()
        if not missing:
            return True
        lag = sum(gap.records for gap in missing)
        if self._waiting_since is None:
            # A warning: with the default LOG_LEVEL the user sees why an idle run goes on.
            log.warning(
                "idle for %g s, but the raw zone lacks %s; waiting for them (a member that "
                "died hands its partitions on once its session expires, within 45 s)",
                idle,
                self._describe(missing),
            )
        if self._waiting_since is None or lag < self._lag_seen:
            self._waiting_since, self._lag_seen = now, lag
        elif now - self._waiting_since >= LAG_WAIT_SECONDS:
            raise RawZoneLagError(
                f"The raw zone still lacks {self._describe(missing)} after waiting "
                f"{LAG_WAIT_SECONDS:.0f} s without progress; the files of this run are "
                "published. A member that is still running publishes its open files when it "
                "rotates them (ROTATE_SECONDS) or stops: run `weatherpipe consume --until-idle "
                "30` again after that."
            )
        return False

    def _gaps(self) -> list[Gap]:
        topic, timeout = self.options.topic, KAFKA_TIMEOUT_SECONDS
        watermarks = self.consumer.watermarks(topic, timeout)
        stored = recovery.highest_offsets(self.options.raw_dir, topic)
        without_files = [p for p in watermarks if p not in stored]
        committed = self.consumer.committed(topic, without_files, timeout) if without_files else {}
        found = gaps(watermarks, stored, committed)
        if not found:
            return []
        try:
            return confirmed(self.consumer.connection, topic, found, timeout)
        except KafkaUnavailableError as exc:
            log.debug("the lag was not read back (%s): the offsets count", exc)
            return found

    def _describe(self, missing: list[Gap]) -> str:
        consumer = self.consumer
        holders = partition_holders(consumer.connection, consumer.group_id, self.options.topic, 5.0)
        lag = sum(gap.records for gap in missing)
        return f"up to {lag:,} records of {self.options.topic}: " + "; ".join(
            gap.describe(holders.get(gap.partition)) for gap in missing
        )

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
        self._last_activity = time.monotonic()
        if self.stats.assigned_at is None:
            self.stats.assigned_at = self._last_activity

    def _on_revoke(self, partitions: list[TopicPartition]) -> None:
        self.sink.revoke(tp.partition for tp in partitions if tp.topic == self.options.topic)

    def _on_lost(self, partitions: list[TopicPartition]) -> None:
        self.sink.lose(tp.partition for tp in partitions if tp.topic == self.options.topic)


class RawZoneLagError(TransientError):
    """An idle run ended with records of the topic still missing from the raw zone."""


@contextmanager
def raw_zone_consumer(
    connection: KafkaConnection,
    group_id: str,
    options: ConsumeOptions,
    member_name: str | None = None,
    on_progress: Callable[[ConsumeStats], None] | None = None,
) -> Iterator[RawZoneConsumer]:
    """A `RawZoneConsumer` joined to `group_id` as a static member named after this host
    (`member_name` instead, if given), the raw zone and a free slot (see `membership`), so a
    consumer restarted after a crash takes its partitions over at once."""
    with claim_slot(options.raw_dir, options.topic, member_name) as member:
        log.info("joining group %s as member %s", group_id, member.instance_id)
        with KafkaConsumer(
            connection, group_id, extra_config={"group.instance.id": member.instance_id}
        ) as kafka:
            yield RawZoneConsumer(kafka, options, on_progress)
