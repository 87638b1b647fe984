"""What identifies a data set: the SHA-256 of the CSV file's bytes, whatever its name or path.

Hashing 50 MB takes about a tenth of a second; it runs on a thread of its own while the
producer prepares its topics, so a run hardly waits for it.
"""

from __future__ import annotations

import hashlib
import threading
from concurrent.futures import Future
from pathlib import Path


def file_digest(path: Path) -> str:
    """The SHA-256 of the file's content, as hex."""
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def digest_in_background(path: Path) -> Future[str]:
    """`file_digest(path)` computed on another thread (hashlib lets go of the GIL)."""
    future: Future[str] = Future()

    def work() -> None:
        try:
            future.set_result(file_digest(path))
        except BaseException as exc:  # handed over to whoever asks for the result
            future.set_exception(exc)

    threading.Thread(target=work, name="weatherpipe-digest", daemon=True).start()
    return future
