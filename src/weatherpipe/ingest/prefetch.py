"""Run an iterator one step ahead in a background thread.

Reading, validating and encoding a block is mostly Arrow compute, which releases the GIL; so
while the main thread hands one block to Kafka, the next one is prepared on the other core.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from typing import Final, TypeVar

T = TypeVar("T")
_DONE: Final = object()


def prefetch(items: Iterator[T], depth: int = 1) -> Iterator[T]:
    """Yield `items`' elements, computing up to `depth` of them ahead. An exception raised by
    `items` is raised here, in order. Leaving the loop early stops the background thread."""
    ready: queue.Queue[object] = queue.Queue(maxsize=depth)
    closing = threading.Event()

    def put(entry: object) -> bool:
        while not closing.is_set():
            try:
                ready.put(entry, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def work() -> None:
        try:
            for item in items:
                if not put(item):
                    return
        except BaseException as exc:  # handed over to the consuming thread
            put(exc)
            return
        put(_DONE)

    worker = threading.Thread(target=work, name="weatherpipe-prefetch", daemon=True)
    worker.start()
    try:
        while True:
            entry = ready.get()
            if entry is _DONE:
                return
            if isinstance(entry, BaseException):
                raise entry
            yield entry  # type: ignore[misc]
    finally:
        closing.set()
        worker.join()
