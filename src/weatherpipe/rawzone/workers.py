"""Several members of one consumer group in parallel processes: the raw zone on more cores.

One Python process runs one thread of Python code at a time, which caps what a single consumer
stores per second. Kafka's own answer is the consumer group, so each worker is an ordinary
member: it owns some of the topic's partitions, writes, publishes and commits their files and
recovers them from the raw zone exactly like a lone `weatherpipe consume`. Nothing is shared
between workers but the folder, and each partition has one owner at a time, so the
exactly-once guarantee is the group's, unchanged. Each worker holds a slot of the raw zone and
the static group identity that goes with it (see `membership`), so workers restarted after a
crash take their partitions over at once.

The parent only starts the workers, forwards a stop request (SIGTERM / Ctrl-C) to them, adds up
their figures for the progress line and the summary, and fails if one of them failed.
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
from multiprocessing.process import BaseProcess
from typing import Final

from weatherpipe.errors import TransientError, WeatherpipeError
from weatherpipe.kafka.security import KafkaConnection
from weatherpipe.rawzone.consume_loop import ConsumeOptions, ConsumeStats
from weatherpipe.rawzone.sink import SinkStats
from weatherpipe.signals import ignore_signals, on_signals

log = logging.getLogger(__name__)

# Workers report their figures at most this often (and once at the end).
REPORT_SECONDS: Final = 0.5
# How long a worker waits for the others to start before it joins the group alone.
JOIN_WAIT_SECONDS: Final = 30.0


@dataclass(frozen=True)
class WorkerPlan:
    """What every worker needs to join the group and write the raw zone."""

    connection: KafkaConnection
    group_id: str
    options: ConsumeOptions
    member_name: str | None = None
    """KAFKA_GROUP_INSTANCE_ID: the host's name in the group (default: its host name)."""
    log_level: str = "INFO"


@dataclass(frozen=True)
class WorkerReport:
    """A worker's figures so far; `done` once it has finished its files, `error` if it
    failed."""

    index: int
    sink: SinkStats
    assigned_at: float | None
    first_record_at: float | None
    last_record_at: float | None
    peak_rss_bytes: int
    done: bool = False
    error: str | None = None


def merge(reports: Mapping[int, WorkerReport], started: float) -> ConsumeStats:
    """One `ConsumeStats` for the whole group of workers."""
    total = SinkStats()
    for report in reports.values():
        sink = report.sink
        total.messages += sink.messages
        total.bytes += sink.bytes
        total.files += sink.files
        total.written += sink.written
        total.skipped += sink.skipped
        total.stale_temp_files_removed += sink.stale_temp_files_removed
        total.damaged_files_set_aside += sink.damaged_files_set_aside
        total.value_errors.update(sink.value_errors)
        total.rotations.counts.update(sink.rotations.counts)
    assigned = [r.assigned_at for r in reports.values() if r.assigned_at is not None]
    first = [r.first_record_at for r in reports.values() if r.first_record_at is not None]
    last = [r.last_record_at for r in reports.values() if r.last_record_at is not None]
    # CLOCK_MONOTONIC is one clock for every process of the machine, so the times compare.
    return ConsumeStats(
        total,
        started=started,
        assigned_at=min(assigned, default=None),
        first_record_at=min(first, default=None),
        last_record_at=max(last, default=None),
        peak_rss=sum(r.peak_rss_bytes for r in reports.values()),
    )


def run_workers(
    plan: WorkerPlan,
    count: int,
    on_progress: Callable[[ConsumeStats], None] | None = None,
) -> ConsumeStats:
    """Run `count` workers until each has stopped (idle, or asked to by SIGTERM / Ctrl-C to
    this process); return their summed figures. Raises if a worker failed, after stopping the
    others."""
    started = time.monotonic()
    # The barrier is kept here until the workers end: a spawned worker opens it by name, and it
    # is gone once no object of the parent holds it.
    workers, reports_queue, _joined = _start(plan, count)
    stopping = False

    def stop_workers(signum: int | None = None) -> None:
        """Forward a stop: every signal the user sends (a second one means "now" to a worker),
        but our own request only once, so a worker still finishing its files is not killed."""
        nonlocal stopping
        if stopping and signum is None:
            return
        stopping = True
        for worker in workers:
            if worker.is_alive() and worker.pid is not None:
                worker.terminate()  # SIGTERM: the worker finishes its files and exits

    restore_signals = on_signals(stop_workers, repeat="again")
    reports: dict[int, WorkerReport] = {}
    problems: list[str] = []

    def finished(index: int) -> bool:
        return index in reports and reports[index].done

    try:
        while not all(finished(i) for i in range(count)):
            try:
                report = reports_queue.get(timeout=REPORT_SECONDS)
            except queue.Empty:
                gone = _ended_unfinished(workers, reports)
                if gone:
                    problems += gone
                    stop_workers()
                continue
            reports[report.index] = report
            if report.error is not None:
                problems.append(f"consume worker {report.index} failed: {report.error}")
                stop_workers()
            if on_progress is not None:
                on_progress(merge(reports, started))
        for worker in workers:
            worker.join()
    finally:
        restore_signals()
    stats = merge(reports, started)
    stats.finished = time.monotonic()
    if problems:
        raise WorkerError("; ".join(problems))
    return stats


def _start(
    plan: WorkerPlan, count: int
) -> tuple[list[BaseProcess], multiprocessing.Queue[WorkerReport], threading.Barrier]:
    """Start `count` worker processes; return them, the queue they report on and the barrier
    they join the group behind."""
    context = multiprocessing.get_context("spawn")  # no forked Kafka client threads
    reports: multiprocessing.Queue[WorkerReport] = context.Queue()
    # Workers join the group together: one joining after the others would make the group
    # revoke and reassign every partition again right after the start.
    joined = context.Barrier(count)
    workers: list[BaseProcess] = [
        context.Process(
            target=_work,
            args=(plan, index, reports, joined, os.getpid()),
            name=f"consume-worker-{index}",
        )
        for index in range(count)
    ]
    for worker in workers:
        worker.start()
    return workers, reports, joined


def _ended_unfinished(workers: list[BaseProcess], reports: dict[int, WorkerReport]) -> list[str]:
    """What is wrong with each worker that is gone without its final report, which is marked
    done. A worker writes its last report before it exits, so one that is gone while nothing is
    pending died without finishing (killed, or a bug)."""
    problems = []
    for index, worker in enumerate(workers):
        if not worker.is_alive() and not (index in reports and reports[index].done):
            problems.append(
                f"{worker.name} ended without finishing (exit status {worker.exitcode}); its "
                "unpublished records are read again on the next start"
            )
            # Its last report stands: it covers files published until then.
            last = reports.get(index) or WorkerReport(index, SinkStats(), None, None, None, 0)
            reports[index] = replace(last, done=True)
    return problems


class WorkerError(TransientError):
    """A consume worker failed; the others were stopped with their files published."""


def _work(
    plan: WorkerPlan,
    index: int,
    reports: multiprocessing.Queue[WorkerReport],
    joined: threading.Barrier,
    parent: int,
) -> None:
    """One worker process: an ordinary member of the group, reporting to the parent."""
    # Imported in the worker: the parent never needs a Kafka consumer of its own.
    from weatherpipe.rawzone.consume_loop import (
        RawZoneConsumer,
        peak_rss_bytes,
        raw_zone_consumer,
    )

    # Ctrl-C reaches every process of the terminal's group; the parent turns it into one
    # SIGTERM per worker, so the worker ignores the SIGINT itself.
    ignore_signals((signal.SIGINT,))
    logging.basicConfig(level=plan.log_level, format=f"worker {index}: %(levelname)s %(message)s")
    last_sent = 0.0

    def report(stats: ConsumeStats, *, done: bool = False, error: str | None = None) -> None:
        reports.put(
            WorkerReport(
                index,
                stats.sink,
                stats.assigned_at,
                stats.first_record_at,
                stats.last_record_at,
                peak_rss_bytes(),
                done=done,
                error=error,
            )
        )

    def progress(stats: ConsumeStats) -> None:
        nonlocal last_sent
        now = time.monotonic()
        if now - last_sent >= REPORT_SECONDS:
            last_sent = now
            if os.getppid() != parent and consumer is not None:
                # The parent was killed: nobody would stop this worker or read its reports,
                # and it would hold its slot; it finishes its files and ends instead.
                consumer.stop_requested = True
            report(stats)

    consumer: RawZoneConsumer | None = None
    try:
        with raw_zone_consumer(
            plan.connection, plan.group_id, plan.options, plan.member_name, progress
        ) as consumer:
            consumer.stop_on(signal.SIGTERM)
            with suppress(threading.BrokenBarrierError):  # a worker that died must not hold us
                joined.wait(timeout=JOIN_WAIT_SECONDS)
            stats = consumer.run()
    except WeatherpipeError as exc:
        stats = consumer.stats if consumer is not None else ConsumeStats(SinkStats())
        report(stats, done=True, error=str(exc))
        return
    report(stats, done=True)
