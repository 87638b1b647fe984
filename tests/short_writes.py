"""A full disk for one raw file, below Python's buffered file: what write(2) does when the file
system runs out of space (a short write, then ENOSPC), for unit tests of the writer and sink."""

from __future__ import annotations

import errno
import io
import os

from weatherpipe.rawzone.writer import WRITE_BUFFER_BYTES, OpenFile


class ShortWrites(io.RawIOBase):
    """The file's descriptor on a disk with `room` bytes left: a write takes what still fits
    (a short write), the next one fails with ENOSPC, as write(2) does on a full disk."""

    def __init__(self, fd: int, room: int, error: int = errno.ENOSPC) -> None:
        self.fd, self.room, self.error = fd, room, error

    def writable(self) -> bool:
        return True

    def write(self, data: bytes) -> int:  # type: ignore[override]
        if self.room == 0:
            raise OSError(self.error, os.strerror(self.error))
        taken = min(len(data), self.room)
        self.room -= taken
        return os.write(self.fd, bytes(data[:taken]))

    def fileno(self) -> int:
        return self.fd

    def close(self) -> None:
        if not self.closed:
            os.close(self.fd)
        super().close()


def on_full_disk(raw: OpenFile, room: int, error: int = errno.ENOSPC) -> None:
    """Let `raw`'s further writes see a disk with `room` bytes left."""
    raw._file.flush()
    fd = os.dup(raw._file.fileno())
    raw._file.close()
    raw._file = io.BufferedWriter(  # type: ignore[assignment]
        ShortWrites(fd, room, error), buffer_size=WRITE_BUFFER_BYTES
    )
