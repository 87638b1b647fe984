"""Writing one raw file and committing it: temp file -> flush -> fsync -> rename -> fsync dir.

A file moves through `FileState`s in one direction. `RawFile.finish` advances from whatever
state the file is in, so after a failure (disk full, a transient I/O error) a retry resumes at
the step that failed rather than redoing or skipping one. Only once a file is PUBLISHED may the
consumer group's offset move past its last offset; a published file is never opened again.
"""

from __future__ import annotations

import os
import time
from enum import Enum
from pathlib import Path
from typing import BinaryIO, Final

from weatherpipe.rawzone import naming

# Large enough that a typical batch is one write() system call, small enough to stay flat.
WRITE_BUFFER_BYTES: Final = 1 << 20


class FileState(Enum):
    """The steps of one raw file's life, in order."""

    OPEN = "open"  # lines are appended to the temp file
    SYNCED = "synced"  # flushed, fsynced and closed: the content is final
    PUBLISHED = "published"  # renamed to its final name, folder fsynced: the batch may read it
    ABORTED = "aborted"  # temp file removed unpublished (the partition went to someone else)


def fsync_dir(path: Path) -> None:
    """Make a rename or a new entry in folder `path` durable."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class RawFile:
    """One raw file of one topic-partition and one UTC date, from first to last offset."""

    def __init__(
        self,
        zone: RawZone,
        partition: int,
        day: int,
        first_offset: int,
    ) -> None:
        self.zone = zone
        self.partition = partition
        self.day = day
        self.first_offset = first_offset
        self.last_offset = first_offset - 1
        self.records = 0
        self.size = 0
        self.opened_at = time.monotonic()
        self.temp_path = naming.temp_dir(zone.raw_dir) / naming.temp_name(
            zone.topic, partition, first_offset, zone.owner
        )
        self.final_path: Path | None = None
        self.state = FileState.OPEN
        # "x": a temp name is unique to this process; an existing one would be a bug.
        self._file: BinaryIO = self.temp_path.open("xb", buffering=WRITE_BUFFER_BYTES)

    def write(self, line: bytes, offset: int) -> None:
        """Append one record's line; offsets must increase."""
        self._file.write(line)
        self.size += len(line)
        self.last_offset = offset
        self.records += 1

    def write_lines(self, data: bytes, records: int, last_offset: int) -> None:
        """Append the lines of `records` records at once, the last one at `last_offset`."""
        self._file.write(data)
        self.size += len(data)
        self.last_offset = last_offset
        self.records += records

    def finish(self) -> Path:
        """Make the file durable and visible under its final name; returns that name.

        Safe to call again after it raised: it resumes at the step that failed.
        """
        if self.state is FileState.ABORTED:
            raise RuntimeError(f"{self.temp_path} was aborted and cannot be finished")
        if self.records == 0:
            raise RuntimeError(f"{self.temp_path} holds no record; abort it instead")
        if self.state is FileState.OPEN:
            self._file.flush()
            os.fsync(self._file.fileno())
            self._file.close()
            self.state = FileState.SYNCED
        if self.state is FileState.SYNCED:
            date = naming.date_of_day(self.day)
            folder = self.zone.ensure_date_dir(date)
            target = naming.final_path(
                self.zone.raw_dir,
                self.zone.topic,
                date,
                self.partition,
                self.first_offset,
                self.last_offset,
            )
            self.temp_path.replace(target)  # atomic: same file system
            fsync_dir(folder)
            self.final_path = target
            self.state = FileState.PUBLISHED
        assert self.final_path is not None
        return self.final_path

    def abort(self) -> None:
        """Drop the file unpublished: close it and remove the temp file."""
        if self.state is FileState.PUBLISHED:
            raise RuntimeError(f"{self.final_path} is published and must never be removed")
        if not self._file.closed:
            self._file.close()
        self.temp_path.unlink(missing_ok=True)
        self.state = FileState.ABORTED


class RawZone:
    """The raw zone of one topic, as written by one process (`owner` names its temp files)."""

    def __init__(self, raw_dir: Path, topic: str, owner: str) -> None:
        self.raw_dir = raw_dir
        self.topic = topic
        self.owner = owner
        self._known_dirs: set[str] = set()
        self.temp_dir = naming.temp_dir(raw_dir)
        self.temp_dir.mkdir(parents=True, exist_ok=True)

    def open(self, partition: int, day: int, first_offset: int) -> RawFile:
        """A new temp file for `partition` and UTC day number `day`, starting at `first_offset`."""
        return RawFile(self, partition, day, first_offset)

    def ensure_date_dir(self, date: str) -> Path:
        """The date folder, created (durably) on first use."""
        folder = naming.date_dir(self.raw_dir, self.topic, date)
        if date not in self._known_dirs:
            if not folder.is_dir():
                folder.mkdir(parents=True, exist_ok=True)
                fsync_dir(folder.parent)
                fsync_dir(folder.parent.parent)
            self._known_dirs.add(date)
        return folder
