"""Who a raw-zone writer is in its consumer group: a stable identity, unique on this host.

A consumer that dies (SIGKILL, power loss) stays a member of its group until its session times
out (45 s); a new member has to wait for that before it gets the dead one's partitions. A
*static* member (`group.instance.id`) that comes back under the same id replaces its dead self
at once and keeps its partitions. So every raw-zone writer joins under an id made of the host
(or KAFKA_GROUP_INSTANCE_ID), its RAW_DIR and topic, and a slot number: restarted on the same
host for the same raw zone, it is the same member again.

The slot is an exclusive lock on RAW_DIR/.members/<topic>.<slot>.lock. Two writers of the same
raw zone started on one host take different slots instead of sharing an id (Kafka would fence
one of them out of the group), and after a crash the lowest free slot is the dead process's
own: the kernel drops a process's locks when it dies.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from weatherpipe.errors import TerminalError

# More writers of one topic than this on one host would be more members than is useful.
MAX_SLOTS: Final = 64
LOCK_DIR: Final = ".members"


@dataclass(frozen=True)
class Membership:
    """The static group identity a writer holds while its slot is locked."""

    instance_id: str
    slot: int
    lock_path: Path


def instance_id(raw_dir: Path, topic: str, slot: int, name: str | None = None) -> str:
    """The `group.instance.id` of slot `slot` of `topic`'s raw zone in `raw_dir`.

    `name` stands for the host (default: its host name); the folder enters as a short digest
    of its absolute path, so two raw zones on one host never share an id.
    """
    where = f"{raw_dir.resolve()}\0{topic}".encode()
    digest = hashlib.blake2b(where, digest_size=5).hexdigest()
    return f"{name or socket.gethostname()}-{digest}-{slot}"


def lock_path(raw_dir: Path, topic: str, slot: int) -> Path:
    """The lock file of slot `slot` of `topic` under `raw_dir`."""
    return raw_dir / LOCK_DIR / f"{topic}.{slot}.lock"


@contextmanager
def claim_slot(raw_dir: Path, topic: str, name: str | None = None) -> Iterator[Membership]:
    """Hold the lowest free slot of `topic`'s raw zone in `raw_dir` and yield its identity;
    the slot is free again when the block ends or the process dies."""
    folder = raw_dir / LOCK_DIR
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise TerminalError(
            f"Cannot create {folder} ({exc.strerror}): RAW_DIR must be a writable folder. "
            "Fix its permissions or point RAW_DIR elsewhere and run again."
        ) from exc
    for slot in range(MAX_SLOTS):
        path = lock_path(raw_dir, topic, slot)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            continue
        try:
            # The holder's pid, for whoever wonders which process has the slot.
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()}\n".encode())
            yield Membership(instance_id(raw_dir, topic, slot, name), slot, path)
        finally:
            os.close(fd)  # releases the lock
        return
    raise TerminalError(
        f"{MAX_SLOTS} consumers of {topic!r} already write to {raw_dir} on this host (every "
        f"lock in {folder} is held). Stop some of them (more members than partitions stay "
        "idle anyway) and run again."
    )
