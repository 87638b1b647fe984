"""Where each partition resumes: the raw zone owns the offsets, not the consumer group.

On assignment the consumer removes the partition's stale temp files (left by a process that
died mid-file; their records are simply read again from Kafka) and resumes after the highest
last offset of the partition's finished files. Only when there is no file does the group's
committed offset (or the earliest one) apply.

Only a file whose name and content agree decides where a partition resumes: the newest file's
last line must be whole and carry the last offset of its name (see `agreement`). A newest file
that does not (published half-written by an older version after a full disk, or edited by
hand) is set aside, out of the batch's sight, into RAW_DIR/.damaged under the same relative
path, with a warning; the partition then resumes after the file before it and the set-aside
records are read again from Kafka.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from weatherpipe.rawzone import agreement, listing, naming

log = logging.getLogger(__name__)


def highest_offsets(raw_dir: Path, topic: str) -> dict[int, int]:
    """The highest last offset stored for each partition of `topic` that has a file."""
    highest: dict[int, int] = {}
    for raw in listing.topic_files(raw_dir, topic):
        if raw.last_offset > highest.get(raw.partition, -1):
            highest[raw.partition] = raw.last_offset
    return highest


@dataclass(frozen=True)
class SetAside:
    """A file whose content disagreed with its name, and where it went."""

    path: Path
    moved_to: Path
    problem: str


@dataclass
class Resume:
    """Where each partition with a trusted file resumes, and the files set aside to know."""

    offsets: dict[int, int] = field(default_factory=dict)
    set_aside: list[SetAside] = field(default_factory=list)


def resume_offsets(raw_dir: Path, topic: str, partitions: Iterable[int]) -> Resume:
    """The next offset to read for each of `partitions` that has a file (last offset of its
    newest file whose content agrees with its name, + 1); partitions without such a file are
    left out (the group's committed offset applies). Newest files that disagree are set aside
    (see the module docstring)."""
    wanted = set(partitions)
    files: dict[int, list[tuple[int, Path]]] = defaultdict(list)
    for raw in listing.topic_files(raw_dir, topic):
        if raw.partition in wanted:
            files[raw.partition].append((raw.last_offset, raw.location(raw_dir)))
    resume = Resume()
    for partition, found in files.items():
        found.sort()
        while found:
            last, path = found.pop()
            problem = agreement.disagreement(path, partition, last)
            if problem is None:
                resume.offsets[partition] = last + 1
                break
            moved = set_aside(raw_dir, path)
            resume.set_aside.append(SetAside(path, moved, problem))
            log.warning(
                "raw file %s does not hold what its name says: %s. Moved it to %s, out of the "
                "batch's sight; partition %d of %s resumes before it and its records are read "
                "again from Kafka (if a batch run counted the file already, run `weatherpipe "
                "batch --full` once the consumer has caught up)",
                path,
                problem,
                moved,
                partition,
                topic,
            )
    return resume


def set_aside(raw_dir: Path, path: Path) -> Path:
    """Move the raw file at `path` into RAW_DIR/.damaged under its relative path (a number
    appended should that name be taken); returns where it went."""
    target = naming.damaged_dir(raw_dir) / path.relative_to(raw_dir)
    target.parent.mkdir(parents=True, exist_ok=True)
    candidate, number = target, 0
    while candidate.exists():
        number += 1
        candidate = target.with_name(f"{target.name}.{number}")
    path.rename(candidate)
    return candidate


def stale_temp_files(raw_dir: Path, topic: str, partitions: Iterable[int]) -> list[Path]:
    """The temp files of `partitions` of `topic` found in the temp folder."""
    folder = naming.temp_dir(raw_dir)
    if not folder.is_dir():
        return []
    prefixes = tuple(naming.temp_prefix(topic, p) for p in partitions)
    if not prefixes:
        return []
    return sorted(
        path
        for path in folder.iterdir()
        if path.name.startswith(prefixes) and path.name.endswith(naming.TEMP_SUFFIX)
    )


def remove_stale_temp_files(raw_dir: Path, topic: str, partitions: Iterable[int]) -> list[Path]:
    """Remove the temp files of `partitions`; returns what was removed.

    Call only once the partitions are assigned to this process: by then their previous owner
    has finished its files (revoke) or is dead, so what is left over is stale.
    """
    removed = stale_temp_files(raw_dir, topic, partitions)
    for path in removed:
        path.unlink(missing_ok=True)
    return removed
