"""One producer run per topic on this machine: an exclusive lock on STATE_DIR/produce/<topic>.lock.

The lock is the operating system's (`flock`): it goes with the process, so a run killed by
SIGKILL leaves no stale lock behind, and the next run may resume what it left unsent. The file
holds a line about the run holding it, for the message of the run that is turned away.
Producers on other machines (or with another STATE_DIR) are kept apart by the producer's
transactional id instead (`weatherpipe.kafka.producer`).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

from weatherpipe.errors import TransientError


class ProducerBusyError(TransientError):
    """Another producer run to the topic is running on this machine."""


def lock_path(state_dir: Path, topic: str) -> Path:
    return state_dir / "produce" / f"{topic}.lock"


@contextlib.contextmanager
def topic_lock(state_dir: Path, topic: str, job: str) -> Iterator[None]:
    """Hold the topic's lock while the block runs; `job` says what this run sends. Raises
    `ProducerBusyError` at once when another run holds it."""
    path = lock_path(state_dir, topic)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = path.read_text(encoding="utf-8", errors="replace").strip()
            raise ProducerBusyError(
                f"Another `weatherpipe produce` is sending to {topic} on this machine "
                f"({holder or 'just starting'}). Two runs at once would send rows twice: wait "
                "for it to finish (a run of the same file then has nothing left to send)."
            ) from None
        started = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
        os.ftruncate(handle, 0)
        os.pwrite(handle, f"pid {os.getpid()}, started {started}, {job}\n".encode(), 0)
        yield
    finally:
        os.close(handle)  # releases the lock
