"""Writing one raw file and committing it: temp file -> flush -> fsync -> check -> rename ->
fsync dir.

A file moves through `FileState`s in one direction. `OpenFile.finish` advances from whatever
state the file is in, so after a failure to publish (the date folder cannot be created, a
transient I/O error) a retry resumes at the step that failed rather than redoing or skipping
one. Only once a file is PUBLISHED may the consumer group's offset move past its last offset;
a published file is never opened again.

A failed write, flush or fsync poisons the file: after a short write (a full disk) part of a
line may be in it while the buffer is gone, so its content is unknown. A poisoned file is
removed and never published; its records are read again from Kafka. Before the rename the file
is checked (`agreement`): its size is what was written and its last line carries the last
offset of its name, so a published file's name and content always agree.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import time
from enum import Enum
from pathlib import Path
from typing import BinaryIO, Final, NoReturn

from weatherpipe.durable import fsync_folder
from weatherpipe.errors import TerminalError
from weatherpipe.rawzone import agreement, naming

# Large enough that a typical batch is one write() system call, small enough to stay flat.
WRITE_BUFFER_BYTES: Final = 1 << 20


class FileState(Enum):
    """The steps of one raw file's life, in order."""

    OPEN = "open"  # lines are appended to the temp file
    SYNCED = "synced"  # flushed, fsynced, closed and checked: the content is final
    PUBLISHED = "published"  # renamed to its final name, folder fsynced: the batch may read it
    ABORTED = "aborted"  # temp file removed unpublished (the partition went to someone else)
    POISONED = "poisoned"  # a write, flush or fsync failed: removed, never to be published


_MIB: Final = 1024 * 1024
_DISK_FULL: Final = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})


class RawZoneWriteError(TerminalError):
    """A raw file could not be written or published; nothing of it was committed."""


def _free_space(raw_dir: Path) -> str:
    try:
        usage = shutil.disk_usage(raw_dir)
    except OSError as exc:
        return f"its free space is unknown ({exc.strerror or exc})"
    return f"{usage.free / _MIB:,.1f} MiB free of {usage.total / _MIB:,.1f} MiB"


def write_error(
    raw_dir: Path, action: str, path: Path, what: str, cause: BaseException | str
) -> RawZoneWriteError:
    """The error for a failed `action` on raw file `path` (holding `what`), saying what is
    left on RAW_DIR's file system and what to do."""
    if isinstance(cause, OSError):
        reason = f"{cause.strerror or cause} (errno {cause.errno})"
        full = cause.errno in _DISK_FULL
    else:
        reason = str(cause)
        full = False
    remedy = (
        "Free some space there (or point RAW_DIR at a larger disk)" if full else "Fix the cause"
    )
    return RawZoneWriteError(
        f"Could not {action} raw file {path} ({what}): {reason}. RAW_DIR ({raw_dir}) has "
        f"{_free_space(raw_dir)}. The file was not published and its offsets were not "
        "committed: its records are still in Kafka, so nothing is lost or stored twice. "
        f"{remedy} and run `weatherpipe consume` again: it resumes after the last published "
        "file."
    )


class OpenFile:
    """One raw file being written, of one topic-partition and one UTC date, from first to last
    offset (a finished one on disk is a `listing.RawFile`)."""

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
        try:
            # "x": a temp name is unique to this process; an existing one would be a bug.
            self._file: BinaryIO = self.temp_path.open("xb", buffering=WRITE_BUFFER_BYTES)
        except FileExistsError:
            raise
        except OSError as exc:
            raise write_error(
                zone.raw_dir, "create", self.temp_path, f"partition {partition}", exc
            ) from exc

    def describe(self) -> str:
        """Partition and offsets, for messages."""
        if self.records == 0:
            return f"partition {self.partition} from offset {self.first_offset}, empty so far"
        return (
            f"partition {self.partition}, {self.records:,} records, offsets "
            f"{self.first_offset}-{self.last_offset}"
        )

    def write(self, line: bytes, offset: int) -> None:
        """Append one record's line; offsets must increase."""
        self.write_lines(line, 1, offset)

    def write_lines(self, data: bytes, records: int, last_offset: int) -> None:
        """Append the lines of `records` records at once, the last one at `last_offset`."""
        try:
            self._file.write(data)
        except OSError as exc:
            self._poison("write to", exc)
        self.size += len(data)
        self.last_offset = last_offset
        self.records += records

    def finish(self) -> Path:
        """Make the file durable and visible under its final name; returns that name.

        Safe to call again after it raised: it resumes at the step that failed.
        """
        if self.state in (FileState.ABORTED, FileState.POISONED):
            raise RuntimeError(f"{self.temp_path} was {self.state.value} and cannot be finished")
        if self.records == 0:
            raise RuntimeError(f"{self.temp_path} holds no record; abort it instead")
        if self.state is FileState.OPEN:
            self._sync()
        if self.state is FileState.SYNCED:
            try:
                self._publish()
            except OSError as exc:
                raise write_error(
                    self.zone.raw_dir, "publish", self.temp_path, self.describe(), exc
                ) from exc
            self.state = FileState.PUBLISHED
        assert self.final_path is not None
        return self.final_path

    def _sync(self) -> None:
        action = "flush"
        try:
            self._file.flush()
            action = "fsync"
            os.fsync(self._file.fileno())
            action = "close"
            self._file.close()
            action = "check"
            problem = agreement.disagreement(
                self.temp_path, self.partition, self.last_offset, self.size
            )
        except OSError as exc:
            self._poison(action, exc)
        if problem is not None:
            self._poison("check", problem)
        self.state = FileState.SYNCED

    def _publish(self) -> None:
        if self.final_path is None:
            date = naming.date_of_day(self.day)
            self.zone.ensure_date_dir(date)
            target = naming.final_path(
                self.zone.raw_dir,
                self.zone.topic,
                date,
                self.partition,
                self.first_offset,
                self.last_offset,
            )
            self.temp_path.replace(target)  # atomic: same file system
            self.final_path = target
        fsync_folder(self.final_path.parent)

    def _poison(self, action: str, cause: OSError | str) -> NoReturn:
        """Give the file up for good (its content is unknown) and raise the error."""
        self.state = FileState.POISONED
        # Built first: the free space it reports is the one the write saw.
        error = write_error(self.zone.raw_dir, action, self.temp_path, self.describe(), cause)
        # Closing flushes what is left in the buffer, which may fail the same way; the
        # descriptor is closed all the same.
        with contextlib.suppress(OSError):
            self._file.close()
        with contextlib.suppress(OSError):
            self.temp_path.unlink(missing_ok=True)
        if isinstance(cause, OSError):
            raise error from cause
        raise error

    def abort(self) -> None:
        """Drop the file unpublished: close it and remove the temp file."""
        if self.state is FileState.PUBLISHED:
            raise RuntimeError(f"{self.final_path} is published and must never be removed")
        if self.state is not FileState.POISONED:  # a poisoned file is gone already
            # A file given up need not reach the disk: a failing flush changes nothing.
            with contextlib.suppress(OSError):
                self._file.close()
            self.temp_path.unlink(missing_ok=True)
            self.state = FileState.ABORTED


class RawZone:
    """The raw zone of one topic, as written by one process (`owner` names its temp files)."""

    def __init__(self, raw_dir: Path, topic: str, owner: str) -> None:
        if naming.is_reserved(topic):
            raise RawZoneWriteError(
                f"Topic {topic!r} cannot be stored in the raw zone: its folder would be one of "
                "the raw zone's own (every name starting with '.' is kept for them). Read "
                "another topic (KAFKA_TOPIC or --topic)."
            )
        self.raw_dir = raw_dir
        self.topic = topic
        self.owner = owner
        self._known_dirs: set[str] = set()
        self.temp_dir = naming.temp_dir(raw_dir)
        self.temp_dir.mkdir(parents=True, exist_ok=True)

    def open(self, partition: int, day: int, first_offset: int) -> OpenFile:
        """A new temp file for `partition` and UTC day number `day`, starting at `first_offset`."""
        return OpenFile(self, partition, day, first_offset)

    def ensure_date_dir(self, date: str) -> Path:
        """The date folder, created (durably) on first use."""
        folder = naming.date_dir(self.raw_dir, self.topic, date)
        if date not in self._known_dirs:
            if not folder.is_dir():
                folder.mkdir(parents=True, exist_ok=True)
                fsync_folder(folder.parent)
                fsync_folder(folder.parent.parent)
            self._known_dirs.add(date)
        return folder
