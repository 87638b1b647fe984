"""The lab flow's consumer: a process of its own (its own core) that stores records while the
producer is still sending, and stops as soon as the raw zone holds every record it was told to
wait for — no idle wait.

The parent learns the target only when the producer is done: per partition, the offset after
the last record the producer delivered there, or the end offset at the start for a
partition it did not write. The child compares that with how far it has read (its position,
which also steps past a transaction's commit marker) or, for a partition it never had to read,
with the raw zone's highest stored offset — never with a count of offsets, which has gaps.

Ctrl-C reaches the whole terminal group: the child ignores SIGINT and stops on the SIGTERM the
parent sends, finishing its files first. A child whose parent died finishes its files and ends.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import queue
import signal
import threading
import time
from collections.abc import Callable, Mapping
from contextlib import suppress
from dataclasses import dataclass, replace
from typing import Final

from weatherpipe.errors import TransientError, WeatherpipeError
from weatherpipe.kafka.security import KafkaConnection
from weatherpipe.rawzone.consume_loop import ConsumeOptions
from weatherpipe.rawzone.sink import SinkStats
from weatherpipe.signals import ignore_signals, ignoring

REPORT_SECONDS: Final = 0.2
"""How often the child reports its progress, and the parent looks for a child that died."""
STORED_CHECK_SECONDS: Final = 1.0
"""How often a child waiting for its target looks at the raw zone's published files."""
TOPIC_CHECK_SECONDS: Final = 0.5
"""How often a child started before its topic exists looks for it."""
STOP_SECONDS: Final = 60.0
"""How long a stopped child may take to finish its files before it is killed."""


class ConsumerProcessError(TransientError):
    """The consumer process failed or ended before the raw zone held the target."""


@dataclass(frozen=True)
class ConsumerPlan:
    """What the child needs to join the group (all of it crosses the process boundary)."""

    connection: KafkaConnection
    group_id: str
    options: ConsumeOptions
    member_name: str | None
    log_level: str


@dataclass(frozen=True)
class Report:
    """The child's figures so far; `done` once it returned, with `reached` whether it had
    stored the whole target then."""

    sink: SinkStats
    seconds: float
    done: bool = False
    reached: bool = False
    error: str | None = None


class ConsumerProcess:
    """The parent's handle: start it, tell it the target, wait for it, or stop it."""

    def __init__(
        self, plan: ConsumerPlan, on_progress: Callable[[Report], None] | None = None
    ) -> None:
        context = multiprocessing.get_context("spawn")  # no Kafka client state is inherited
        self._targets: multiprocessing.Queue[dict[int, int]] = context.Queue()
        self._reports: multiprocessing.Queue[Report] = context.Queue()
        self._process = context.Process(
            target=_consume,
            args=(plan, self._targets, self._reports, os.getpid()),
            name="weatherpipe lab consumer",
        )
        self._on_progress = on_progress
        self.last: Report | None = None

    def start(self) -> None:
        with ignoring((signal.SIGINT,)):  # the child is stopped by its parent, never by Ctrl-C
            self._process.start()

    def finish(self, target: Mapping[int, int]) -> Report:
        """Hand the child `target` (`{partition: offset it must reach}`) and wait until it has
        stored it and published its files."""
        self._targets.put(dict(target))
        while True:
            try:
                report = self._reports.get(timeout=REPORT_SECONDS)
            except queue.Empty:
                if not self._process.is_alive():
                    self._drain()
                    if self.last is not None and self.last.done:
                        break
                    raise ConsumerProcessError(
                        f"The consumer process ended without finishing (exit status "
                        f"{self._process.exitcode}); the files it published are kept. Run "
                        "`weatherpipe run` again: it stores the rest."
                    ) from None
                continue
            self._take(report)
            if report.done:
                break
        self._process.join()
        assert self.last is not None
        if self.last.error is not None:
            raise ConsumerProcessError(f"The consumer process failed: {self.last.error}")
        if not self.last.reached:
            raise ConsumerProcessError(
                "The consumer process was stopped before the raw zone held every record; the "
                "files it published are kept. Run `weatherpipe run` again: it stores the rest."
            )
        return self.last

    def stop(self) -> None:
        """Stop a child still running: one SIGTERM, on which it publishes its files."""
        if self._process.is_alive():
            self._process.terminate()
            self._process.join(STOP_SECONDS)
            if self._process.is_alive():
                self._process.kill()
                self._process.join()
        self._drain()

    def poll(self) -> None:
        """Take the reports that arrived (for a live progress line while the parent works)."""
        self._drain()

    def _drain(self) -> None:
        while True:
            try:
                self._take(self._reports.get_nowait())
            except queue.Empty:
                return

    def _take(self, report: Report) -> None:
        self.last = report
        if self._on_progress is not None:
            self._on_progress(report)


class ProgressPump:
    """Polls the consumer's reports in a thread while the parent's own thread works."""

    def __init__(self, process: ConsumerProcess) -> None:
        self._process = process
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="consumer progress", daemon=True)

    def __enter__(self) -> ProgressPump:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(REPORT_SECONDS):
            self._process.poll()


def _consume(
    plan: ConsumerPlan,
    targets: multiprocessing.Queue[dict[int, int]],
    reports: multiprocessing.Queue[Report],
    parent: int,
) -> None:
    """The child: consume until the target is stored, the parent is gone, or SIGTERM."""
    # Imported in the child: the parent never needs a Kafka consumer of its own.
    from weatherpipe.rawzone.consume_loop import ConsumeStats, raw_zone_consumer

    ignore_signals((signal.SIGINT,))
    logging.basicConfig(level=plan.log_level, format="consumer: %(levelname)s %(message)s")
    options = replace(plan.options, until_idle=None)  # the target ends the run, not idleness
    # Partitions the raw zone holds up to their target already are never read again.
    stored = _stored_ends(options)
    last_listed = time.monotonic()
    target: dict[int, int] | None = None
    reached = False
    last_sent = 0.0
    stats = ConsumeStats(SinkStats())
    try:
        if not _topic_exists(plan, parent):
            return  # the parent is gone before the producer created the topic
        with raw_zone_consumer(
            plan.connection, plan.group_id, options, plan.member_name
        ) as consumer:
            consumer.stop_on(signal.SIGTERM)

            def progress(current: ConsumeStats) -> None:
                nonlocal target, reached, last_sent, last_listed
                if target is None:
                    with suppress(queue.Empty):
                        target = targets.get_nowait()
                now = time.monotonic()
                if target is not None and not reached:
                    if now - last_listed >= STORED_CHECK_SECONDS:
                        # Another member of the group may hold and store some partitions.
                        last_listed = now
                        stored.update(_stored_ends(options))
                    read = consumer.consumer.positions(options.topic)
                    reached = all(
                        max(read.get(p, 0), stored.get(p, 0)) >= end for p, end in target.items()
                    )
                    if reached:
                        consumer.stop_requested = True
                if os.getppid() != parent:
                    consumer.stop_requested = True  # nobody would stop or wait for it
                if now - last_sent >= REPORT_SECONDS:
                    last_sent = now
                    reports.put(Report(current.sink, current.seconds))

            consumer.on_progress = progress
            stats = consumer.run()
    except WeatherpipeError as exc:
        reports.put(Report(stats.sink, stats.seconds, done=True, error=str(exc)))
        return
    reports.put(Report(stats.sink, stats.seconds, done=True, reached=reached))


def _stored_ends(options: ConsumeOptions) -> dict[int, int]:
    """Per partition, the offset after the highest one the raw zone's published files hold."""
    from weatherpipe.rawzone.recovery import highest_offsets

    return {p: last + 1 for p, last in highest_offsets(options.raw_dir, options.topic).items()}


def _topic_exists(plan: ConsumerPlan, parent: int) -> bool:
    """Wait until the topic exists (the producer creates it on a first run): subscribed to a
    missing topic, the consumer would warn about it. False when the parent died meanwhile."""
    from weatherpipe.kafka.admin import cluster_metadata

    topic = plan.options.topic
    while os.getppid() == parent:
        metadata = cluster_metadata(plan.connection, TOPIC_CHECK_SECONDS * 10)
        found = metadata.topics.get(topic) if metadata is not None else None
        if found is not None and found.error is None and found.partitions:
            return True
        time.sleep(TOPIC_CHECK_SECONDS)
    return False
