"""The lab flow in one call: platform up, data set, produce, consume until idle, batch, summary.

Each stage is the same library code its own command runs; this module only sequences them,
times them and checks that the counts add up from one stage to the next.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

from rich.table import Table

from weatherpipe import platform
from weatherpipe.errors import TerminalError
from weatherpipe.kafka.inspect import partition_offsets
from weatherpipe.kafka.security import kafka_connection
from weatherpipe.platform.local_postgres import LocalPostgres
from weatherpipe.rawzone.lag import missing_records
from weatherpipe.settings import Settings
from weatherpipe.ui.console import say
from weatherpipe.ui.progress import ProduceProgress, activity


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


class LabFlow:
    """Runs the stages in order; `started_services` remembers what it started, so an
    interrupted run can stop exactly that."""

    def __init__(
        self,
        settings: Settings,
        rows: int,
        seed: int,
        idle_seconds: float,
        produce_again: bool = False,
    ) -> None:
        self.settings = settings
        self.rows = rows
        self.seed = seed
        self.idle_seconds = idle_seconds
        self.produce_again = produce_again
        self.result = LabResult()

    def _timed(self, work: Callable[[], Stage]) -> Stage:
        start = time.monotonic()
        stage = work()
        stage.seconds = time.monotonic() - start
        self.result.stages.append(stage)
        say(
            ("✓", "green"),
            f" {stage.name}: {stage.records}"
            + (f"; {stage.set_aside}" if stage.set_aside else "")
            + f" ({stage.seconds:.1f} s)",
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
            "kafka": s.manages_kafka and platform.local_kafka(s).pid() is not None,
            "postgres": s.manages_postgres and LocalPostgres(s).pid() is not None,
        }
        with activity("platform: starting Kafka and PostgreSQL"):
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
        with activity(f"generate: {path}", total=self.rows, unit="rows") as shown:
            size = datagen.write_csv(path, self.rows, self.seed, shown.advance)
        return Stage("generate", 0, f"{self.rows:,} rows ({size / 1e6:.0f} MB) → {path}")

    def _produce(self) -> None:
        from weatherpipe.ingest.produce import (
            AlreadySentError,
            pending,
            produce_all,
            stop_on_interrupt,
            what_topic_holds,
        )

        def work() -> Stage:
            source = self.settings.csv_path
            held = _records_in_topic(self.settings)

            def skipped() -> Stage:
                note = what_topic_holds(self.settings, source)
                return Stage("produce", 0, f"skipped: {note} (--produce-again sends it again)")

            if held and not self.produce_again and not pending(self.settings, source):
                # The lab flow sends the data set once: a second `make run` must not send the
                # same rows again (the batch would then count every observation twice). An
                # interrupted first send is resumed instead: only its missing rows are sent.
                return skipped()
            try:
                with (
                    stop_on_interrupt() as stop,
                    activity("produce", total=source.stat().st_size, unit="bytes") as shown,
                ):
                    progress = ProduceProgress(shown, "produce")
                    summary = produce_all(
                        self.settings, source, progress, stop, again=self.produce_again
                    )
            except AlreadySentError:  # the topic was emptied since, and its ledger kept
                return skipped()
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
        from weatherpipe.rawzone.consume_loop import ConsumeOptions, raw_zone_consumer
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
                raw_zone_consumer(
                    kafka_connection(s, "consumer"),
                    s.kafka_group_id,
                    options,
                    s.kafka_group_instance_id,
                ) as consumer,
                activity("consume") as shown,
            ):
                consumer.on_progress = lambda st: shown.describe(
                    f"consume: {st.sink.messages:,} records stored"
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

        with activity("batch") as shown:
            summary = run_once(self.settings, on_step=shown.describe)
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
    offsets = partition_offsets(kafka_connection(settings, "consumer"), settings.kafka_topic, 30)
    return {p.partition: p.end for p in offsets}


def _missing_offsets(settings: Settings, ends: dict[int, int]) -> int:
    """How many records below `ends` lie beyond the raw zone's highest stored offset."""
    kafka = kafka_connection(settings, "consumer")
    return missing_records(kafka, settings.raw_dir, settings.kafka_topic, ends, 30)


def _records_in_topic(settings: Settings) -> int:
    """Records the topic holds (0 when it does not exist yet)."""
    offsets = partition_offsets(kafka_connection(settings, "producer"), settings.kafka_topic, 30)
    return sum(p.records for p in offsets)
