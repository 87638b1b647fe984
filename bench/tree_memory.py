"""Peak resident memory of every process of a process tree, sampled with psutil.

A child's own `getrusage` figure is no good for this: Linux carries the parent's peak RSS at
fork time over to the child (through fork and exec), so a small consumer started by a large
benchmark process would report the benchmark's peak.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import psutil

SAMPLE_SECONDS = 0.1


def describe(proc: psutil.Process) -> str:
    """A short name for a process: its program and its first arguments (a multiprocessing
    child: what it is)."""
    args = proc.cmdline()
    if "--multiprocessing-fork" in args:
        return "spawned child"
    if any("resource_tracker" in a for a in args):
        return "multiprocessing resource tracker"
    if len(args) > 2 and args[1] == "-m":
        return " ".join(args[2:5])
    if len(args) > 1 and args[1] == "-c":
        return f"{Path(args[0]).name} -c …"
    return " ".join(Path(a).name if i == 0 else a for i, a in enumerate(args[:3]))


@dataclass
class TreeMemory:
    """Peak RSS of each process of the tree under `root` (pid: (name, bytes)), sampled while
    used as a context manager; also the CPU seconds (user + system) each used, as last seen."""

    root: int
    peaks: dict[int, tuple[str, int]] = field(default_factory=dict)
    cpu: dict[int, float] = field(default_factory=dict)
    stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __enter__(self) -> TreeMemory:
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop.set()
        if self._thread is not None:
            self._thread.join()

    @property
    def highest(self) -> int:
        """The peak RSS of the largest process, in bytes."""
        return max((rss for _name, rss in self.peaks.values()), default=0)

    def _sample(self) -> None:
        try:
            root = psutil.Process(self.root)
        except psutil.NoSuchProcess:
            return
        while not self.stop.is_set():
            try:
                procs = [root, *root.children(recursive=True)]
            except psutil.NoSuchProcess:
                return
            for proc in procs:
                try:
                    rss = proc.memory_info().rss
                    times = proc.cpu_times()
                    self.cpu[proc.pid] = times.user + times.system
                    name = self.peaks[proc.pid][0] if proc.pid in self.peaks else describe(proc)
                except (psutil.NoSuchProcess, psutil.AccessDenied):
                    continue
                if rss > self.peaks.get(proc.pid, (name, 0))[1]:
                    self.peaks[proc.pid] = (name, rss)
            time.sleep(SAMPLE_SECONDS)
