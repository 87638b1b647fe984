"""`weatherpipe import-raw`: a raw zone in the original project's layout, added to weatherpipe's.

The order of an import (an interruption anywhere leaves published files whole, and a rerun
adds exactly what is still missing):
1. take the raw zone's import lock; remove the temp files an interrupted import left;
2. find the chunks (`original_layout`) and read them all (`import_scan`);
3. plan each topic-partition against the files already in the raw zone (`import_plan`), and
   make sure the records found there already are the very records of the source (and not
   another Kafka cluster's topic of the same name) before anything is written;
4. list the lines set aside in the import's quarantine file (`import_log`);
5. write the planned files, one by one, through the raw-zone writer (temp folder, fsync,
   rename), so they look exactly like the consumer's.

The source is only read. The imported offsets are the original topic's: a consumer of that
topic on the same cluster resumes after them (`recovery`), so nothing is read twice.
"""

from __future__ import annotations

import os
import time
import uuid
from collections import Counter, OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

import numpy as np
import orjson

from weatherpipe.errors import TerminalError
from weatherpipe.rawzone import import_log, listing, naming, recovery
from weatherpipe.rawzone.envelope import Envelope, judge
from weatherpipe.rawzone.import_plan import PartitionPlan, PlannedFile, plan_partition
from weatherpipe.rawzone.import_scan import Scan, SetAside, Spots, scan
from weatherpipe.rawzone.original_layout import (
    EXPECTED,
    Chunk,
    UnreadableChunkError,
    find_chunks,
)
from weatherpipe.rawzone.writer import FileState, RawZone

CONFLICTING_COPY: Final = "conflicting_copy"
"""Reason: a repeated (topic, partition, offset) whose line differs from the first copy."""
OWNER_PREFIX: Final = "import-"
# Chunks kept in memory between reading and writing, at most this many bytes: a source that
# fits is read once; of a larger one, the records of each partition are read again.
CHUNK_CACHE_BYTES: Final = 512 * 1024 * 1024

Progress = Callable[[str, int, int], None]
"""`progress(step, done, total)`: step "reading" counts bytes, "writing" records."""


class NothingToImportError(TerminalError):
    """The source folder holds no chunk of the original's layout."""


class RawImportConflictError(TerminalError):
    """The raw zone holds other records under the same (topic, partition, offset)."""


class RawImportWriteError(TerminalError):
    """A raw file could not be written (disk full, permissions)."""


@dataclass(frozen=True)
class PartitionReport:
    """One topic-partition after an import."""

    topic: str
    partition: int
    lowest: int
    highest: int
    missing: int
    written: int
    files: int
    already_stored: int
    resumes_at: int


@dataclass
class ImportSummary:
    """What an import found and did."""

    source: Path
    raw_dir: Path
    chunks: int = 0
    bytes: int = 0
    lines: int = 0
    blank_lines: int = 0
    repeats: int = 0
    already_stored: int = 0
    written: int = 0
    files: int = 0
    set_aside: Counter[str] = field(default_factory=Counter)
    newly_listed: int = 0
    examples: list[SetAside] = field(default_factory=list)
    partitions: list[PartitionReport] = field(default_factory=list)
    other_files: int = 0
    seconds: float = 0.0

    @property
    def quarantine_file(self) -> Path:
        return import_log.quarantine_path(self.raw_dir)

    def as_dict(self) -> dict[str, object]:
        return {
            "source": str(self.source),
            "raw_dir": str(self.raw_dir),
            "chunks": self.chunks,
            "bytes": self.bytes,
            "lines": self.lines,
            "blank_lines": self.blank_lines,
            "repeats": self.repeats,
            "already_stored": self.already_stored,
            "written": self.written,
            "files": self.files,
            "set_aside": dict(sorted(self.set_aside.items())),
            "newly_listed": self.newly_listed,
            "quarantine_file": str(self.quarantine_file),
            "other_files": self.other_files,
            "partitions": [vars(p) for p in self.partitions],
            "seconds": round(self.seconds, 3),
        }


class _Chunks:
    """Chunk contents by index, the most recently used kept up to a byte budget."""

    def __init__(self, chunks: list[Chunk], budget: int) -> None:
        self.chunks = chunks
        self.budget = budget
        self._held: OrderedDict[int, bytes] = OrderedDict()
        self._size = 0

    def keep(self, index: int, data: bytes) -> None:
        self._held[index] = data
        self._size += len(data)
        while self._size > self.budget and len(self._held) > 1:
            _, dropped = self._held.popitem(last=False)
            self._size -= len(dropped)

    def get(self, index: int) -> bytes:
        data = self._held.get(index)
        if data is not None:
            self._held.move_to_end(index)
            return data
        try:
            data = self.chunks[index].path.read_bytes()
        except OSError as exc:  # removed or changed since it was read
            raise UnreadableChunkError.of(self.chunks[index].path, exc) from None
        self.keep(index, data)
        return data


def import_raw(
    source: Path,
    raw_dir: Path,
    max_bytes: int,
    progress: Progress = lambda _step, _done, _total: None,
) -> ImportSummary:
    """Import the chunks under `source` into the raw zone at `raw_dir`, files finished at
    `max_bytes` (ROTATE_MB). See the module docstring for the order of the steps."""
    started = time.monotonic()
    summary = ImportSummary(source, raw_dir)
    if not source.is_dir():
        raise NothingToImportError(
            f"{source} is not a folder. Pass the folder the original's RAW_ROOT pointed at "
            "(the one holding the topic folders)."
        )
    found = find_chunks(source)
    summary.other_files = len(found.others)
    if not found.chunks:
        others = (
            f" Its {len(found.others):,} other .ndjson files were left alone."
            if found.others
            else ""
        )
        raise NothingToImportError(
            f"{source} holds no file of the original project's layout ({EXPECTED}).{others} "
            "Pass the folder the original's RAW_ROOT pointed at (the one holding the topic "
            "folders)."
        )
    raw_dir.mkdir(parents=True, exist_ok=True)
    with import_log.exclusive(raw_dir):
        _remove_stale_temp_files(raw_dir)
        summary.chunks = len(found.chunks)
        total = sum(c.size for c in found.chunks)
        cache = _Chunks(found.chunks, CHUNK_CACHE_BYTES)
        done = 0

        def read(index: int, data: bytes) -> None:
            nonlocal done
            cache.keep(index, data)
            done += len(data)
            progress("reading", done, total)

        scanned = scan(found.chunks, read)
        summary.bytes, summary.lines = scanned.bytes, scanned.lines
        summary.blank_lines = scanned.blank_lines
        plans = _plan(scanned, raw_dir, max_bytes, cache)
        set_aside = scanned.set_aside + _conflicts(scanned, plans, cache)
        summary.set_aside = Counter(s.reason for s in set_aside)
        summary.examples = set_aside[:10]
        summary.newly_listed = len(import_log.append(raw_dir, set_aside))
        summary.repeats = sum(len(p.repeats) for p in plans)
        summary.already_stored = sum(p.already_stored for p in plans)
        _write(raw_dir, scanned, plans, cache, summary, progress)
        summary.partitions = _reports(raw_dir, plans)
    summary.seconds = time.monotonic() - started
    return summary


def _remove_stale_temp_files(raw_dir: Path) -> None:
    """Temp files of an import that was interrupted (no other import runs: we hold the lock).
    The consumer's are left alone; it cleans up its own."""
    temp = naming.temp_dir(raw_dir)
    if not temp.is_dir():
        return
    for path in temp.iterdir():
        owner = naming.temp_owner(path.name)
        if owner is not None and owner.startswith(OWNER_PREFIX):
            path.unlink(missing_ok=True)


def _plan(scanned: Scan, raw_dir: Path, max_bytes: int, cache: _Chunks) -> list[PartitionPlan]:
    plans = []
    stored: dict[str, dict[int, list[tuple[Path, int, int]]]] = {}
    for topic, partition in sorted(scanned.spots):
        if topic not in stored:
            stored[topic] = {}
            for raw in listing.topic_files(raw_dir, topic):
                stored[topic].setdefault(raw.partition, []).append(
                    (raw.location(raw_dir), raw.first_offset, raw.last_offset)
                )
        files = stored[topic].get(partition, [])
        spots = scanned.spots[(topic, partition)]
        plan = plan_partition(
            topic, partition, spots, [(f, last) for _, f, last in files], max_bytes
        )
        _check_same_records(plan, spots, files, scanned.chunks, cache)
        plans.append(plan)
    return plans


def _line(spots: Spots, position: int, cache: _Chunks) -> bytes:
    c = spots.columns
    start = int(c.starts[position])
    return cache.get(int(c.chunks[position]))[start : start + int(c.lengths[position])]


def _check_same_records(
    plan: PartitionPlan,
    spots: Spots,
    files: list[tuple[Path, int, int]],
    chunks: list[Chunk],
    cache: _Chunks,
) -> None:
    """Compare the lowest and the highest record the raw zone holds already with the source's.

    The same (topic, partition, offset) with another record means the raw zone's topic of that
    name comes from another Kafka cluster, or the topic was recreated; skipping the source's
    records as "already stored" would then lose them."""
    positions = plan.stored_positions
    if len(positions) == 0:
        return
    columns = spots.columns
    for position in {int(positions[0]), int(positions[-1])}:
        offset = int(columns.offsets[position])
        stored = _stored_line(files, offset)
        ours = _line(spots, position, cache)
        if stored is None or _same_record(stored, ours):
            continue
        chunk = chunks[int(columns.chunks[position])]
        raise RawImportConflictError(
            f"The raw zone already holds {plan.topic} partition {plan.partition} offset "
            f"{offset}, and it is not the record at {chunk.path}:{columns.lines[position]}: "
            f"the raw zone's topic {plan.topic!r} comes from another Kafka cluster (or the "
            "topic was recreated since). Nothing was written. Import into an empty raw zone "
            "(--raw-dir), or keep the two apart by topic."
        )


def _stored_line(files: list[tuple[Path, int, int]], offset: int) -> bytes | None:
    """The line of `offset` in the raw zone's files of its partition, if one holds it."""
    for path, first, last in files:
        if not first <= offset <= last:
            continue
        lines = path.read_bytes().splitlines()
        # A file of consecutive offsets holds it at line offset - first: looked at first.
        guess = offset - first
        if guess < len(lines) and _offset_of(lines[guess]) == offset:
            return lines[guess]
        for line in lines:
            if _offset_of(line) == offset:
                return line
    return None


def _offset_of(line: bytes) -> int | None:
    found = judge(line)
    return found.offset if isinstance(found, Envelope) else None


def _same_record(a: bytes, b: bytes) -> bool:
    """Whether two lines hold one Kafka record (their JSON may be spaced differently)."""
    try:
        x, y = orjson.loads(a), orjson.loads(b)
    except orjson.JSONDecodeError:
        return a == b
    same_stamp = bool(x["kafka"].get("timestamp_ms") == y["kafka"].get("timestamp_ms"))
    return same_stamp and all(x.get(k) == y.get(k) for k in ("value", "value_error"))


def _conflicts(scanned: Scan, plans: list[PartitionPlan], cache: _Chunks) -> list[SetAside]:
    """The repeated lines that differ from the first copy (the first one is imported)."""
    found = []
    for plan in plans:
        spots = scanned.spots[(plan.topic, plan.partition)]
        columns = spots.columns
        for copy, first in zip(plan.repeats.tolist(), plan.firsts_of_repeats.tolist(), strict=True):
            line, kept = _line(spots, copy, cache), _line(spots, first, cache)
            if line != kept and not _same_record(line, kept):
                found.append(
                    SetAside(
                        str(scanned.chunks[int(columns.chunks[copy])].path),
                        int(columns.lines[copy]),
                        CONFLICTING_COPY,
                        "kafka.offset",
                        line.decode("utf-8", "backslashreplace"),
                        int(columns.offsets[copy]),
                    )
                )
    return found


def _write(
    raw_dir: Path,
    scanned: Scan,
    plans: list[PartitionPlan],
    cache: _Chunks,
    summary: ImportSummary,
    progress: Progress,
) -> None:
    owner = f"{OWNER_PREFIX}{os.getpid()}-{uuid.uuid4().hex[:8]}"
    total = sum(p.to_write for p in plans)
    zones: dict[str, RawZone] = {}
    try:
        for plan in plans:
            if not plan.files:
                continue
            zone = zones.get(plan.topic)
            if zone is None:
                zone = zones[plan.topic] = RawZone(raw_dir, plan.topic, owner)
            spots = scanned.spots[(plan.topic, plan.partition)]
            for planned in plan.files:
                _write_file(zone, plan.partition, planned, _lines(spots, planned, cache))
                summary.files += 1
                summary.written += len(planned.records)
                progress("writing", summary.written, total)
    except OSError as exc:
        raise RawImportWriteError(
            f"Cannot write into the raw zone {raw_dir}: {exc.strerror or exc}. The "
            f"{summary.files:,} files written are complete; fix the cause (free space, "
            "permissions) and run the same command again to add the rest."
        ) from None


def _lines(spots: Spots, planned: PlannedFile, cache: _Chunks) -> bytes:
    """The planned records' lines, each ending in a newline, in offset order. Records that
    follow each other in a chunk as well (a consumer writes a fetch of one partition at a
    time) are copied as one piece."""
    columns = spots.columns
    chunk_ids = columns.chunks[planned.records]
    starts = columns.starts[planned.records]
    ends = starts + columns.lengths[planned.records]  # the newline's position
    joined = (chunk_ids[1:] == chunk_ids[:-1]) & (starts[1:] == ends[:-1] + 1)
    firsts = np.flatnonzero(~np.concatenate(([False], joined)))
    lasts = np.concatenate((firsts[1:], [len(starts)])) - 1
    parts = []
    current, data = -1, b""
    for chunk_id, start, end in zip(
        chunk_ids[firsts].tolist(), starts[firsts].tolist(), ends[lasts].tolist(), strict=True
    ):
        if chunk_id != current:
            current, data = chunk_id, cache.get(chunk_id)
        parts.append(data[start:end])
    parts.append(b"")
    return b"\n".join(parts)


def _write_file(zone: RawZone, partition: int, planned: PlannedFile, data: bytes) -> None:
    file = zone.open(partition, planned.day, planned.first_offset)
    try:
        file.write_lines(data, len(planned.records), planned.last_offset)
        file.finish()
    except BaseException:
        if file.state is not FileState.PUBLISHED:
            file.abort()
        raise


def _reports(raw_dir: Path, plans: list[PartitionPlan]) -> list[PartitionReport]:
    resume: dict[str, dict[int, int]] = {}
    reports = []
    for plan in plans:
        if plan.topic not in resume:
            resume[plan.topic] = {
                p: last + 1 for p, last in recovery.highest_offsets(raw_dir, plan.topic).items()
            }
        reports.append(
            PartitionReport(
                topic=plan.topic,
                partition=plan.partition,
                lowest=plan.lowest,
                highest=plan.highest,
                missing=plan.missing,
                written=plan.to_write,
                files=len(plan.files),
                already_stored=plan.already_stored,
                resumes_at=resume[plan.topic].get(plan.partition, 0),
            )
        )
    return reports
