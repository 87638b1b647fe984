"""The import's own folder in the raw zone: its lock and the lines it set aside.

`RAW_DIR/.import/quarantine.jsonl` holds one JSON object per line an import did not add
(`{"file", "line", "reason", "field", "offset", "raw", "at"}`), appended and fsynced; a line
already listed is not listed again, so rerunning an import (after an interruption, or to pick
up new chunks) lists each line once. The batch never reads this folder.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Final

import orjson

from weatherpipe.durable import fsync_folder
from weatherpipe.errors import TransientError
from weatherpipe.rawzone.import_scan import SetAside

FOLDER: Final = ".import"
QUARANTINE: Final = "quarantine.jsonl"
_LOCK: Final = "lock"


class ImportBusyError(TransientError):
    """Another import into the same raw zone is running."""


def folder(raw_dir: Path) -> Path:
    return raw_dir / FOLDER


def quarantine_path(raw_dir: Path) -> Path:
    return folder(raw_dir) / QUARANTINE


@contextmanager
def exclusive(raw_dir: Path) -> Iterator[None]:
    """Hold the raw zone's import lock: two imports at once would write the same offsets."""
    here = folder(raw_dir)
    here.mkdir(parents=True, exist_ok=True)
    fd = os.open(here / _LOCK, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ImportBusyError(
                f"Another `weatherpipe import-raw` is writing into {raw_dir}. Wait for it to "
                "finish, then run this one again: it adds only what is still missing."
            ) from None
        yield
    finally:
        os.close(fd)  # releases the lock


def _key(file: str, line: int, reason: str) -> tuple[str, int, str]:
    return file, line, reason


def listed(raw_dir: Path) -> set[tuple[str, int, str]]:
    """(file, line, reason) of every line already in the quarantine file."""
    path = quarantine_path(raw_dir)
    if not path.exists():
        return set()
    found = set()
    for text in path.read_bytes().splitlines():
        try:
            entry = orjson.loads(text)
            found.add(_key(entry["file"], entry["line"], entry["reason"]))
        except (orjson.JSONDecodeError, KeyError, TypeError):
            continue  # a line cut short by a crash while appending: rewritten below
    return found


def append(raw_dir: Path, lines: list[SetAside]) -> list[SetAside]:
    """Add `lines` not listed yet to the quarantine file (durably); returns those added."""
    known = listed(raw_dir)
    new = [s for s in lines if _key(s.file, s.line, s.reason) not in known]
    if not new:
        return []
    at = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    text = b"".join(
        orjson.dumps(
            {
                "file": s.file,
                "line": s.line,
                "reason": s.reason,
                "field": s.field,
                "offset": s.offset,
                "raw": s.raw,
                "at": at,
            }
        )
        + b"\n"
        for s in new
    )
    path = quarantine_path(raw_dir)
    existed = path.exists()
    with path.open("ab") as fh:
        if existed and fh.tell() and not _ends_with_newline(path):
            fh.write(b"\n")  # after a line cut short by a crash
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    if not existed:
        fsync_folder(path.parent)
    return new


def _ends_with_newline(path: Path) -> bool:
    with path.open("rb") as fh:
        fh.seek(-1, os.SEEK_END)
        return fh.read(1) == b"\n"
