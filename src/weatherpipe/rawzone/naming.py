"""Where a record's file lives: every raw-zone name is built here and parsed back here alone.

A finished file is `RAW_DIR/<topic>/date=YYYY-MM-DD/<topic>+<partition>+<first>+<last>.ndjson`
with the partition zero-padded to 5 digits and the offsets to 20, so names sort by offset. The
date is the UTC date of the Kafka timestamp. `parse_file_name` reads a name back,
`parse_relative_path` a path relative to RAW_DIR (date folder included); `listing` finds the
files. Files being written live in `RAW_DIR/.tmp/`, files whose content disagreed with their
name in `RAW_DIR/.damaged/`; no listing looks into folders starting with a dot, and no topic may
be called like them (`is_reserved`).
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from weatherpipe.topic_name import TOPIC_NAME

TEMP_DIR_NAME: Final = ".tmp"
DAMAGED_DIR_NAME: Final = ".damaged"
SUFFIX: Final = ".ndjson"
TEMP_SUFFIX: Final = ".ndjson.tmp"
DAY_MS: Final = 86_400_000
PARTITION_DIGITS: Final = 5
OFFSET_DIGITS: Final = 20

PATH_TEMPLATE: Final = "RAW_DIR/<topic>/date=YYYY-MM-DD/<topic>+<partition>+<first>+<last>.ndjson"
"""A finished file's path, as the commands' help and messages show it."""
LAYOUT: Final = (
    f"{PATH_TEMPLATE} (partition zero-padded to 5 digits, first and last offset to 20), as "
    "`weatherpipe consume` writes them"
)

FILE_NAME_RE: Final = re.compile(
    rf"^(?P<topic>{TOPIC_NAME})\+(?P<partition>[0-9]{{5}})"
    r"\+(?P<first>[0-9]{20})\+(?P<last>[0-9]{20})\.ndjson$"
)
DATE_DIR_RE: Final = re.compile(r"^date=(?P<date>[0-9]{4}-[0-9]{2}-[0-9]{2})$")
TEMP_NAME_RE: Final = re.compile(
    rf"^{TOPIC_NAME}\+[0-9]{{5}}\+[0-9]{{20}}\+(?P<owner>[A-Za-z0-9-]+)\.ndjson\.tmp$"
)


@dataclass(frozen=True, order=True)
class RawFileName:
    """The parts of a finished raw file's name."""

    topic: str
    partition: int
    first_offset: int
    last_offset: int

    @property
    def name(self) -> str:
        """The file name (without folder)."""
        return file_name(self.topic, self.partition, self.first_offset, self.last_offset)


def file_name(topic: str, partition: int, first_offset: int, last_offset: int) -> str:
    """`<topic>+<partition>+<first>+<last>.ndjson`, zero-padded."""
    return f"{topic}+{partition:05d}+{first_offset:020d}+{last_offset:020d}{SUFFIX}"


def parse_file_name(name: str) -> RawFileName | None:
    """The parts of a finished file's name, or None if `name` is not one."""
    match = FILE_NAME_RE.match(name)
    if match is None:
        return None
    first, last = int(match["first"]), int(match["last"])
    if first > last:
        return None
    return RawFileName(match["topic"], int(match["partition"]), first, last)


@dataclass(frozen=True, order=True)
class RawFilePath:
    """Where a finished file sits under RAW_DIR, read back: its date folder and its name."""

    date: str
    name: RawFileName

    @property
    def relative(self) -> str:
        """`<topic>/date=YYYY-MM-DD/<name>`, relative to RAW_DIR (as the batch records it)."""
        return f"{self.name.topic}/{date_dir_name(self.date)}/{self.name.name}"


def parse_date_dir(name: str) -> str | None:
    """The `YYYY-MM-DD` of a date folder's name (`date=YYYY-MM-DD`), or None if it is not one."""
    match = DATE_DIR_RE.match(name)
    return match["date"] if match else None


def parse_relative_path(relative: str) -> RawFilePath | None:
    """A finished file's date folder and name from its path relative to RAW_DIR
    (`<topic>/date=YYYY-MM-DD/<topic>+...ndjson`, `/`-separated), or None if the path is not
    one: the topic folder must be the topic of the name."""
    parts = relative.split("/")
    if len(parts) != 3:
        return None
    date = parse_date_dir(parts[1])
    name = parse_file_name(parts[2])
    if date is None or name is None or name.topic != parts[0]:
        return None
    return RawFilePath(date, name)


def day_of(timestamp_ms: int) -> int:
    """Days since 1970-01-01 (UTC) of a Kafka timestamp; cheap enough for every record."""
    return timestamp_ms // DAY_MS


def date_of_day(day: int) -> str:
    """`YYYY-MM-DD` of a day number from `day_of`."""
    return (dt.date(1970, 1, 1) + dt.timedelta(days=day)).isoformat()


def date_of(timestamp_ms: int) -> str:
    """The UTC date (`YYYY-MM-DD`) of a Kafka timestamp in milliseconds."""
    return date_of_day(day_of(timestamp_ms))


def topic_dir(raw_dir: Path, topic: str) -> Path:
    """The folder holding all of a topic's date folders."""
    return raw_dir / topic


def date_dir(raw_dir: Path, topic: str, date: str) -> Path:
    """`RAW_DIR/<topic>/date=YYYY-MM-DD`."""
    return raw_dir / topic / date_dir_name(date)


def date_dir_name(date: str) -> str:
    """The name of a date folder: `date=YYYY-MM-DD`."""
    return f"date={date}"


def final_path(
    raw_dir: Path, topic: str, date: str, partition: int, first_offset: int, last_offset: int
) -> Path:
    """Where a finished file lives."""
    return date_dir(raw_dir, topic, date) / file_name(topic, partition, first_offset, last_offset)


def temp_dir(raw_dir: Path) -> Path:
    """The folder of files being written; the batch never looks into it."""
    return raw_dir / TEMP_DIR_NAME


def damaged_dir(raw_dir: Path) -> Path:
    """The folder of files set aside because their content disagreed with their name."""
    return raw_dir / DAMAGED_DIR_NAME


def is_reserved(topic: str) -> bool:
    """Whether a topic's folder would be one of the raw zone's own (`.tmp`, `.damaged`, `.`,
    `..`): every name starting with a dot is kept for them."""
    return topic.startswith(".")


def temp_prefix(topic: str, partition: int) -> str:
    """The start of every temp file name of one topic-partition (used to clean them up)."""
    return f"{topic}+{partition:05d}+"


def temp_name(topic: str, partition: int, first_offset: int, owner: str) -> str:
    """A temp file's name; `owner` keeps two processes from ever sharing one."""
    return f"{temp_prefix(topic, partition)}{first_offset:020d}+{owner}{TEMP_SUFFIX}"


def temp_owner(name: str) -> str | None:
    """The `owner` part of a temp file's name (see `temp_name`), None if `name` is not one."""
    match = TEMP_NAME_RE.match(name)
    return match["owner"] if match else None
