"""Where each partition resumes: the raw zone owns the offsets, not the consumer group.

On assignment the consumer removes the partition's stale temp files (left by a process that
died mid-file; their records are simply read again from Kafka) and resumes after the highest
last offset of the partition's finished files. Only when there is no file does the group's
committed offset (or the earliest one) apply.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from pathlib import Path

from weatherpipe.rawzone import naming


def raw_files(raw_dir: Path, topic: str) -> Iterator[tuple[Path, naming.RawFileName]]:
    """Every finished file of `topic` (path and parsed name), in no particular order."""
    root = naming.topic_dir(raw_dir, topic)
    if not root.is_dir():
        return
    with os.scandir(root) as dates:
        for date_entry in dates:
            if not date_entry.is_dir() or naming.DATE_DIR_RE.match(date_entry.name) is None:
                continue
            with os.scandir(date_entry.path) as files:
                for entry in files:
                    parsed = naming.parse_file_name(entry.name)
                    if parsed is not None and parsed.topic == topic:
                        yield Path(entry.path), parsed


def highest_offsets(raw_dir: Path, topic: str) -> dict[int, int]:
    """The highest last offset stored for each partition of `topic` that has a file."""
    highest: dict[int, int] = {}
    for _, parsed in raw_files(raw_dir, topic):
        if parsed.last_offset > highest.get(parsed.partition, -1):
            highest[parsed.partition] = parsed.last_offset
    return highest


def resume_offsets(raw_dir: Path, topic: str, partitions: Iterable[int]) -> dict[int, int]:
    """The next offset to read for each of `partitions` that has a file (highest last + 1);
    partitions without a file are left out (the group's committed offset applies)."""
    highest = highest_offsets(raw_dir, topic)
    return {p: highest[p] + 1 for p in partitions if p in highest}


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
