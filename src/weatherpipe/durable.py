"""Files that survive a crash: every atomic replace, folder fsync and create-once file of the
project goes through here, so a crash leaves the old or the new content, never half of it."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO


@contextmanager
def replacing(path: Path) -> Iterator[BinaryIO]:
    """A binary file to write `path`'s new content into: a temp file beside it, fsynced and
    renamed over `path` when the block ends, then the folder fsynced. When the block fails,
    `path` is left as it was and the temp file removed."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    try:
        with partial.open("wb") as out:
            yield out
            out.flush()
            os.fsync(out.fileno())
        partial.replace(path)  # atomic: same folder, same file system
    finally:
        partial.unlink(missing_ok=True)
    fsync_folder(path.parent)


def write_atomically(path: Path, text: str) -> None:
    """Replace `path` with `text` (temp file, fsync, rename, fsync of the folder)."""
    with replacing(path) as out:
        out.write(text.encode("utf-8"))


def remove(path: Path) -> None:
    """Delete `path` if it exists, durably."""
    if path.exists():
        path.unlink()
        fsync_folder(path.parent)


def create_once(path: Path, text: str, mode: int = 0o600) -> str:
    """Create `path` holding `text` (readable by its owner only by default) unless it exists;
    the content `path` holds afterwards.

    Safe against a second process creating it at the same moment: the content is written to a
    file of this process's own first and then linked to `path`, which fails if `path` exists, so
    `path` never exists without its whole content and the loser of the race reads the winner's.
    """
    if path.exists():
        return path.read_text(encoding="utf-8").strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    own = path.with_name(f".{path.name}.{os.getpid()}.new")
    fd = os.open(own, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        try:
            os.link(own, path)
        except FileExistsError:
            return path.read_text(encoding="utf-8").strip()
    finally:
        own.unlink(missing_ok=True)
    fsync_folder(path.parent)
    return text


def fsync_folder(folder: Path) -> None:
    """Make a rename or a new entry in `folder` durable."""
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
