"""Normal operation in one process tree: the consumer runs continuously, the daily producer and
the batch run on their schedules, and one SIGTERM stops everything cleanly.

Each job is the job's own `weatherpipe` command in a child process, so it behaves exactly as
when run by hand (or as its own Compose service). Children run in their own session: a Ctrl-C
on the terminal reaches only this supervisor, which then sends each child one SIGTERM — the
signal on which the consumer finishes and commits its files.
"""

from __future__ import annotations

import logging
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from weatherpipe.flows.schedule import next_tick

log = logging.getLogger(__name__)

RESTART_BACKOFF = (1.0, 60.0)
"""A continuous job that exits is restarted after a pause doubling from 1 s up to 60 s."""


@dataclass
class Job:
    """A `weatherpipe` subcommand run continuously (`every` None) or at a fixed interval."""

    name: str
    args: list[str]
    every: float | None = None
    process: subprocess.Popen[bytes] | None = None
    next_start: float = 0.0
    backoff: float = RESTART_BACKOFF[0]
    runs: int = 0
    failures: int = 0

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None


@dataclass
class Supervisor:
    jobs: list[Job]
    say: Callable[[str], None] = print
    stop: threading.Event = field(default_factory=threading.Event)
    grace_seconds: float = 60.0

    def run(self) -> None:
        """Start, watch and schedule the jobs until `stop` is set, then stop the children."""
        first = time.monotonic()
        for job in self.jobs:
            job.next_start = first
        try:
            while not self.stop.is_set():
                now = time.monotonic()
                for job in self.jobs:
                    self._tend(job, now, first)
                self.stop.wait(0.2)
        finally:
            self._stop_children()

    def _tend(self, job: Job, now: float, first: float) -> None:
        if job.process is not None and not job.running:
            code = job.process.returncode
            job.process = None
            if code != 0:
                job.failures += 1
            if job.every is None:
                # A continuous job should not end: restart it, backing off while it keeps failing.
                self.say(f"{job.name} exited with status {code}; restarting in {job.backoff:g} s")
                job.next_start = now + job.backoff
                job.backoff = min(job.backoff * 2, RESTART_BACKOFF[1])
            elif code != 0:
                self.say(f"{job.name} failed with status {code}; retrying at the next tick")
        if job.process is None and now >= job.next_start:
            self._start(job)
            if job.every is not None:
                # Ticks stay on the grid; a run still going at the next tick makes it skip.
                job.next_start = next_tick(first, job.every, now)
        elif job.every is None and job.running and now - job.next_start > 30:
            job.backoff = RESTART_BACKOFF[0]  # it has stayed up: forget earlier failures

    def _start(self, job: Job) -> None:
        job.runs += 1
        job.process = subprocess.Popen(
            [sys.executable, "-m", "weatherpipe", *job.args],
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        log.info("started %s (pid %s)", job.name, job.process.pid)

    def _stop_children(self) -> None:
        running = [job for job in self.jobs if job.running]
        for job in running:
            assert job.process is not None
            job.process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + self.grace_seconds
        for job in running:
            assert job.process is not None
            try:
                job.process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                self.say(f"{job.name} did not stop within {self.grace_seconds:g} s; killing it")
                job.process.kill()
                job.process.wait()
