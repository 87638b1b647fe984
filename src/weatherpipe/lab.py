"""The lab flow in one call: platform up, data set, produce, consume until idle, batch, summary.

Each stage is the same library code its own command runs; this module only sequences them,
times them and checks that the counts add up from one stage to the next.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table

from weatherpipe import platform
from weatherpipe.errors import TerminalError
from weatherpipe.kafka.inspect import partition_offsets, values_since
from weatherpipe.platform.local_kafka import LocalKafka
from weatherpipe.platform.local_postgres import LocalPostgres
from weatherpipe.rawzone.recovery import highest_offsets
from weatherpipe.settings import Settings


class CountMismatchError(TerminalError):
    """A stage stored a different number of records than the one before it delivered."""


@dataclass
class Stage:
    """One row of the summary table."""

    name: str
    seconds: float
    records: str
    set_aside: str = ""


@dataclass
class LabResult:
    stages: list[Stage] = field(default_factory=list)
    started_services: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, object]:
        return {
            "stages": [asdict(stage) for stage in self.stages],
            "seconds": sum(stage.seconds for stage in self.stages),
            "started_services": self.started_services,
        }

    def table(self) -> Table:
        table = Table(title="weatherpipe lab run", title_justify="left")
        table.add_column("stage")
        table.add_column("records")
        table.add_column("set aside")
        table.add_column("seconds", justify="right")
        for stage in self.stages:
            table.add_row(stage.name, stage.records, stage.set_aside, f"{stage.seconds:.1f}")
        table.add_row("total", "", "", f"{sum(s.seconds for s in self.stages):.1f}", style="bold")
        return table


class _RowsBar:
    """Adapts a rich task to the producer's progress protocol (rows sent, bytes read)."""

    def __init__(self, progress: Progress, task: TaskID) -> None:
        self.progress, self.task, self.count = progress, task, 0

    def rows(self, count: int) -> None:
        self.count += count
        self.progress.update(self.task, description=f"produce: {self.count:,} rows sent")

    def position(self, byte_offset: int) -> None:
        self.progress.update(self.task, completed=byte_offset)


class LabFlow:
    """Runs the stages in order; `started_services` remembers what it started, so an
    interrupted run can stop exactly that."""

    def __init__(
        self,
        settings: Settings,
        console: Console,
        rows: int,
        seed: int,
        idle_seconds: float,
        produce_again: bool = False,
    ) -> None:
        self.settings = settings
        self.console = console
        self.rows = rows
        self.seed = seed
        self.idle_seconds = idle_seconds
        self.produce_again = produce_again
        self.result = LabResult()

    @contextmanager
    def _stage(self, label: str, total: float | None = None) -> Iterator[tuple[Progress, TaskID]]:
        with Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            TimeElapsedColumn(),
            console=self.console,
            transient=True,
            disable=not self.console.is_terminal,
        ) as progress:
            yield progress, progress.add_task(label, total=total)

    def _timed(self, work: Callable[[], Stage]) -> Stage:
        start = time.monotonic()
        stage = work()
        stage.seconds = time.monotonic() - start
        self.result.stages.append(stage)
        self.console.print(
            f"[green]✓[/] {stage.name}: {stage.records}"
            + (f"; {stage.set_aside}" if stage.set_aside else "")
            + f" ({stage.seconds:.1f} s)",
            highlight=False,
        )
        return stage

    def run(self) -> LabResult:
        self._timed(self.platform_up)
        if not self.settings.csv_path.exists():
            self._timed(self.generate)
        self._produce()
        self._consume()
        self._timed(self.batch)
        return self.result

    # --- stages ---------------------------------------------------------------------------
    def platform_up(self) -> Stage:
        s = self.settings
        before = {
            "kafka": s.manages_kafka and LocalKafka(s).pid() is not None,
            "postgres": s.manages_postgres and LocalPostgres(s).pid() is not None,
        }
        with self._stage("platform: starting Kafka and PostgreSQL"):
            platform.up(s)
        self.result.started_services = [
            name
            for name, managed in (("kafka", s.manages_kafka), ("postgres", s.manages_postgres))
            if managed and not before[name]
        ]
        started = ", ".join(self.result.started_services) or "nothing (already running)"
        return Stage("platform", 0, f"started {started}")

    def generate(self) -> Stage:
        from weatherpipe import datagen

        path = self.settings.csv_path
        with self._stage(f"generate: {path}", total=self.rows) as (progress, task):
            size = datagen.write_csv(
                path, self.rows, self.seed, lambda n: progress.advance(task, n)
            )
        return Stage("generate", 0, f"{self.rows:,} rows ({size / 1e6:.0f} MB) → {path}")

    def _produce(self) -> None:
        from weatherpipe.ingest.produce import (
            AlreadySentError,
            pending,
            produce_all,
            stop_on_interrupt,
        )

        def work() -> Stage:
            source = self.settings.csv_path
            held = _records_in_topic(self.settings)
            if held and not self.produce_again and not pending(self.settings, source):
                # The lab flow sends the data set once: a second `make run` must not send the
                # same rows again (the batch would then count every observation twice). An
                # interrupted first send is resumed instead: only its missing rows are sent.
                return Stage("produce", 0, "skipped: " + _held(self.settings, source))
            try:
                with (
                    stop_on_interrupt() as stop,
                    self._stage("produce", total=source.stat().st_size) as (progress, task),
                ):
                    summary = produce_all(
                        self.settings,
                        source,
                        _RowsBar(progress, task),
                        stop,
                        again=self.produce_again,
                    )
            except AlreadySentError:  # the topic was emptied since, say
                return Stage("produce", 0, "skipped: " + _held(self.settings, source))
            if summary.interrupted:
                raise KeyboardInterrupt
            if not summary.ok:
                raise CountMismatchError(
                    f"The producer could not deliver every row: {summary.line()}. "
                    "Check the broker's log (STATE_DIR/kafka/logs/server.log) and run again."
                )
            return Stage(
                "produce",
                0,
                f"{summary.rows_read:,} rows read, {summary.sent:,} sent to {summary.topic}"
                + (f" ({summary.resumed:,} by the interrupted run)" if summary.resumed else ""),
                f"{summary.quarantined:,} bad rows to {summary.dlq_topic}",
            )

        self._timed(work)

    def _consume(self) -> None:
        from weatherpipe.kafka.consumer import KafkaConsumer
        from weatherpipe.rawzone.consume_loop import ConsumeOptions, RawZoneConsumer
        from weatherpipe.rawzone.rotation import RotationPolicy

        s = self.settings
        ends = end_offsets(s)
        options = ConsumeOptions(
            raw_dir=s.raw_dir,
            topic=s.kafka_topic,
            policy=RotationPolicy.from_limits(s.rotate_mb, s.rotate_seconds),
            batch_size=s.consume_batch_size,
            until_idle=self.idle_seconds,
        )

        def work() -> Stage:
            with (
                KafkaConsumer(s.kafka_bootstrap_servers, s.kafka_group_id) as kc,
                self._stage("consume") as (progress, task),
            ):
                consumer = RawZoneConsumer(kc, options)
                consumer.on_progress = lambda st: progress.update(
                    task, description=f"consume: {st.sink.messages:,} records stored"
                )
                stats = consumer.run()
            sink = stats.sink
            marked = sum(sink.value_errors.values())
            return Stage(
                "consume",
                0,
                f"{sink.messages:,} records → {sink.files:,} raw files "
                f"({sink.bytes / 1_048_576:,.0f} MiB)",
                f"{marked:,} values marked unreadable" if marked else "",
            )

        self._timed(work)
        missing = _missing_offsets(s, ends)
        if missing:
            raise CountMismatchError(
                f"The raw zone lacks {missing:,} records the topic holds (the consumer went "
                f"idle for {self.idle_seconds:g} s before catching up). Run `weatherpipe consume "
                "--until-idle 30` to finish, then `weatherpipe batch`."
            )

    def batch(self) -> Stage:
        from weatherpipe.batch.runner import run_once

        with self._stage("batch") as (progress, task):
            summary = run_once(
                self.settings, on_step=lambda step: progress.update(task, description=step)
            )
        r = summary.rows
        return Stage(
            "batch",
            0,
            f"{summary.lines:,} lines from {summary.files:,} files → "
            f"{r.inserted + r.updated + r.unchanged:,} (city, day) rows "
            f"({r.inserted:,} new, {r.updated:,} updated)",
            f"{summary.rejected:,} quarantined, {summary.duplicates:,} duplicates",
        )


def end_offsets(settings: Settings) -> dict[int, int]:
    """The offset after the last record of each partition of the topic."""
    offsets = partition_offsets(settings.kafka_bootstrap_servers, settings.kafka_topic, 30)
    return {p.partition: p.end for p in offsets}


def _missing_offsets(settings: Settings, ends: dict[int, int]) -> int:
    """How many records below `ends` lie beyond the raw zone's highest stored offset. Read
    back rather than subtracted: the markers that end the producer's transactions take
    offsets too, and are no records."""
    stored = highest_offsets(settings.raw_dir, settings.kafka_topic)
    beyond = {p: stored.get(p, -1) + 1 for p in ends}
    if all(first >= ends[p] for p, first in beyond.items()):
        return 0
    return sum(
        1 for _ in values_since(settings.kafka_bootstrap_servers, settings.kafka_topic, beyond, 30)
    )


def _held(settings: Settings, source: Path) -> str:
    """Why the lab flow does not send `source`: what the topic holds."""
    from weatherpipe.ingest import ledger
    from weatherpipe.ingest.dataset import file_digest

    earlier = ledger.read(settings.kafka_bootstrap_servers, settings.kafka_topic).sent_run(
        file_digest(source)
    )
    what = "is not empty"
    if earlier is not None:
        finished = earlier.finished_utc.replace("T", " ").replace("+00:00", " UTC")
        what = f"holds this CSV already: {earlier.rows:,} rows, sent {finished}"
    return f"{settings.kafka_topic} {what} (--produce-again sends the CSV once more)"


def _records_in_topic(settings: Settings) -> int:
    """Records the topic holds (0 when it does not exist yet)."""
    offsets = partition_offsets(settings.kafka_bootstrap_servers, settings.kafka_topic, 30)
    return sum(p.records for p in offsets)
