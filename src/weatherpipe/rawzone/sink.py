"""Records of one topic -> raw files: the open file of each partition, rotation and commits.

The order of a commit, for every file: write lines to a temp file -> flush -> fsync -> rename
to `<topic>+<partition>+<first>+<last>.ndjson` -> fsync the folder -> commit `last + 1` to the
group. The group's offset is only a hint: on assignment the files win (see `recovery`), so a
crash anywhere in that sequence neither loses nor doubles a record.

Each partition has at most one open file, holding a contiguous run of its offsets. A record of
another UTC date finishes it and starts the next: files of one partition therefore never
interleave, and "highest last offset + 1" is always exactly where the partition resumes. (Open
files per partition *and* date would need all of them renamed atomically together, which a
file system cannot do.)

A file that cannot be written or published (a full disk) is dropped unpublished and the error
(`RawZoneWriteError`) is raised once every other file of the call had its turn: the consumer
stops, and its next start reads the dropped records again from Kafka.
"""

from __future__ import annotations

import logging
import os
import time
import uuid
from bisect import bisect_left
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from itertools import accumulate, groupby, islice
from operator import lt
from pathlib import Path
from typing import Final

from confluent_kafka import TIMESTAMP_NOT_AVAILABLE, Message

from weatherpipe.rawzone import recovery
from weatherpipe.rawzone.lines import LineEncoder
from weatherpipe.rawzone.naming import DAY_MS
from weatherpipe.rawzone.rotation import RotationCounter, RotationPolicy, RotationReason
from weatherpipe.rawzone.writer import FileState, OpenFile, RawZone, RawZoneWriteError

log = logging.getLogger(__name__)

# Timestamps past 9999-12-31 cannot be a date folder; such records go by arrival date.
_MAX_TIMESTAMP_MS: Final = 253_402_300_800_000

# Unbound accessors, so column extraction runs as C-level `map`s.
_partition_of = Message.partition
_offset_of = Message.offset
_timestamp_of = Message.timestamp
_key_of = Message.key
_value_of = Message.value

CommitOffset = Callable[[int, int, bool], None]
"""`commit(partition, next_offset, synchronous)`: called once a file is published."""


@dataclass
class SinkStats:
    """What was stored: only records in published files count."""

    messages: int = 0
    bytes: int = 0
    files: int = 0
    written: int = 0  # records written so far, open files included (for progress)
    value_errors: Counter[str] = field(default_factory=Counter)
    skipped: int = 0
    stale_temp_files_removed: int = 0
    damaged_files_set_aside: int = 0
    rotations: RotationCounter = field(default_factory=RotationCounter)


class _Partition:
    """The state of one assigned partition."""

    __slots__ = ("errors", "file", "next_offset", "number", "prefix")

    def __init__(self, number: int, prefix: bytes, next_offset: int) -> None:
        self.number = number
        self.prefix = prefix
        self.next_offset = next_offset  # lowest offset not stored yet; -1: unknown
        self.file: OpenFile | None = None
        self.errors: Counter[str] = Counter()


class RawZoneSink:
    """Stores the records of `topic` under `raw_dir`; `commit` is told what is published."""

    def __init__(
        self, raw_dir: Path, topic: str, policy: RotationPolicy, commit: CommitOffset
    ) -> None:
        self.raw_dir = raw_dir
        self.topic = topic
        self.policy = policy
        self.stats = SinkStats()
        self._commit = commit
        self._encoder = LineEncoder(topic)
        self._zone = RawZone(raw_dir, topic, f"{os.getpid()}-{uuid.uuid4().hex[:8]}")
        self._partitions: dict[int, _Partition] = {}

    @property
    def partitions(self) -> list[int]:
        """The partitions currently assigned."""
        return sorted(self._partitions)

    def stored_up_to(self) -> dict[int, int]:
        """`{partition: lowest offset not stored yet}` of the assigned partitions whose every
        record read so far is published (no open file)."""
        return {
            number: state.next_offset
            for number, state in self._partitions.items()
            if state.file is None and state.next_offset >= 0
        }

    def assign(self, partitions: Iterable[int]) -> dict[int, int]:
        """Take over `partitions`: remove their stale temp files and return where each one
        with a file resumes (highest last offset + 1); the others resume where the group
        says."""
        numbers = list(partitions)
        removed = recovery.remove_stale_temp_files(self.raw_dir, self.topic, numbers)
        self.stats.stale_temp_files_removed += len(removed)
        recovered = recovery.resume_offsets(self.raw_dir, self.topic, numbers)
        self.stats.damaged_files_set_aside += len(recovered.set_aside)
        resume = recovered.offsets
        for number in numbers:
            self._partitions[number] = _Partition(
                number, self._encoder.prefix(number), resume.get(number, -1)
            )
        log.info(
            "assigned %s partitions %s (resume at %s, %d stale temp files removed)",
            self.topic,
            numbers,
            resume,
            len(removed),
        )
        return resume

    def revoke(self, partitions: Iterable[int]) -> None:
        """Give up `partitions` in order: publish their open files and commit them.

        Each is given up even when another's file fails: the group hands them all to other
        members next."""
        states = [self._partitions.pop(number, None) for number in partitions]
        self._finish_each([s for s in states if s is not None], RotationReason.REVOKE)

    def lose(self, partitions: Iterable[int]) -> None:
        """`partitions` were taken away (another member may own them already): drop their
        open files unpublished, since publishing could double the new owner's records."""
        for number in partitions:
            state = self._partitions.pop(number, None)
            if state is not None and state.file is not None:
                log.warning(
                    "lost partition %s[%d]; dropping %d unpublished records (its new owner "
                    "reads them again)",
                    self.topic,
                    number,
                    state.file.records,
                )
                state.file.abort()

    def write(self, messages: list[Message]) -> None:
        """Append each record to its partition's open file; rotate on date change and size.

        A batch holds runs of records of one partition (a fetch response each); a run whose
        records share one UTC date and carry clean JSON values is written column-wise in one
        go, anything else record by record.
        """
        try:
            self._write(messages)
        except RawZoneWriteError:
            for state in self._partitions.values():
                if state.file is not None and state.file.state is FileState.POISONED:
                    state.file = None
            raise

    def _write(self, messages: list[Message]) -> None:
        partitions: list[int] = list(map(_partition_of, messages))  # type: ignore[arg-type]
        if partitions and partitions.count(partitions[0]) == len(partitions):
            self._write_run(partitions[0], messages)  # the common case: one partition
            return
        start = 0
        for number, run in groupby(partitions):
            end = start + len(list(run))
            self._write_run(number, messages[start:end])
            start = end

    def _write_run(self, number: int, run: list[Message]) -> None:
        state = self._partitions.get(number)
        if state is None:  # not ours any more
            self.stats.skipped += len(run)
            return
        offsets: list[int] = list(map(_offset_of, run))  # type: ignore[arg-type]
        if offsets[0] < state.next_offset or not all(map(lt, offsets, islice(offsets, 1, None))):
            # Some already stored (redelivered after a seek): sort them out one by one.
            self._write_each(state, run)
            return
        # A record without a timestamp reads (TIMESTAMP_NOT_AVAILABLE, -1): below zero.
        stamps: list[int] = [stamp for _kind, stamp in map(_timestamp_of, run)]
        earliest, latest = min(stamps), max(stamps)
        day = earliest // DAY_MS
        lines = None
        if earliest >= 0 and latest < _MAX_TIMESTAMP_MS and latest // DAY_MS == day:
            lines = self._encoder.clean_lines(
                state.prefix, offsets, stamps, list(map(_key_of, run)), list(map(_value_of, run))
            )
        if lines is None:
            self._write_each(state, run)
        else:
            self._write_lines(state, day, offsets, lines)
            self.stats.written += len(run)

    def _write_lines(
        self, state: _Partition, day: int, offsets: list[int], lines: list[bytes]
    ) -> None:
        """Write clean `lines` of one UTC day, rotating by size exactly where `_write_each`
        would: after the line that takes the file to ROTATE_MB or more."""
        file = state.file
        if file is not None and file.day != day:
            self._finish(state, RotationReason.DATE)
        max_bytes = self.policy.max_bytes
        begin, ends = 0, None
        while begin < len(lines):
            file = state.file
            if file is None:
                file = state.file = self._zone.open(state.number, day, offsets[begin])
            data = b"".join(lines[begin:])
            if file.size + len(data) < max_bytes:
                file.write_lines(data, len(lines) - begin, offsets[-1])
                break
            if ends is None:  # crossing the limit is rare: line ends only computed then
                ends = list(accumulate(map(len, lines)))
            written_before = ends[begin - 1] if begin else 0
            last = bisect_left(ends, written_before + max_bytes - file.size, lo=begin)
            file.write_lines(b"".join(lines[begin : last + 1]), last + 1 - begin, offsets[last])
            self._finish(state, RotationReason.SIZE)
            begin = last + 1
        state.next_offset = offsets[-1] + 1

    def _write_each(self, state: _Partition, run: list[Message]) -> None:
        """Write `run` record by record: values that need marking, timestamps that are
        missing or change date within the run."""
        line = self._encoder.line
        max_bytes = self.policy.max_bytes
        for message in run:
            offset: int = message.offset()  # type: ignore[assignment]
            if offset < state.next_offset:  # already stored: never write an offset twice
                self.stats.skipped += 1
                continue
            kind, timestamp = message.timestamp()
            ts: int | None = timestamp
            if kind == TIMESTAMP_NOT_AVAILABLE or not 0 <= timestamp < _MAX_TIMESTAMP_MS:
                ts, day = None, int(time.time() * 1000) // DAY_MS
            else:
                day = timestamp // DAY_MS
            file = state.file
            if file is None or file.day != day:
                if file is not None:
                    self._finish(state, RotationReason.DATE)
                file = state.file = self._zone.open(state.number, day, offset)
            file.write(
                line(state.prefix, offset, ts, message.key(), message.value(), state.errors),
                offset,
            )
            state.next_offset = offset + 1
            self.stats.written += 1
            if file.size >= max_bytes:
                self._finish(state, RotationReason.SIZE)

    def rotate_expired(self, now: float) -> None:
        """Finish every open file older than ROTATE_SECONDS (`now`: time.monotonic())."""
        for state in self._partitions.values():
            if state.file is not None and self.policy.expired(state.file.opened_at, now):
                self._finish(state, RotationReason.AGE)

    def finish_all(self, reason: RotationReason) -> None:
        """Publish and commit every open file (shutdown); a file that fails is dropped, and
        the first failure raised once the others are done."""
        self._finish_each(list(self._partitions.values()), reason)

    def _finish_each(self, states: list[_Partition], reason: RotationReason) -> None:
        failure: RawZoneWriteError | None = None
        for state in states:
            try:
                self._finish(state, reason, sync=True)
            except RawZoneWriteError as exc:
                file = state.file
                if file is not None:  # not published: its records are read again later
                    file.abort()
                    state.file = None
                failure = failure or exc
        if failure is not None:
            raise failure

    def _finish(self, state: _Partition, reason: RotationReason, *, sync: bool = False) -> None:
        file = state.file
        if file is None:
            return
        try:
            file.finish()
        except RawZoneWriteError:
            if file.state is FileState.POISONED:
                state.file = None
            raise
        state.file = None
        stats = self.stats
        stats.messages += file.records
        stats.bytes += file.size
        stats.files += 1
        stats.value_errors.update(state.errors)
        state.errors.clear()
        stats.rotations.add(reason)
        self._commit(state.number, file.last_offset + 1, sync)
