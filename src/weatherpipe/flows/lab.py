"""The lab flow in one call: platform up, data set, produce and consume side by side, batch,
summary. The consumer and the batch run in spawned processes of their own.

Each stage is the same library code its own command runs; this module only sequences them,
times them and checks that the counts add up from one stage to the next. It speaks to the user
through `ui` only.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING

from weatherpipe import platform
from weatherpipe.errors import TerminalError
from weatherpipe.kafka.security import kafka_connection
from weatherpipe.kafka.topic_views import partition_offsets
from weatherpipe.rawzone.recovery import highest_offsets
from weatherpipe.settings import Settings
from weatherpipe.ui.progress import Lines, ProduceProgress, activity, live_lines
from weatherpipe.ui.stages import StageSummary, stage_done, stage_table

if TYPE_CHECKING:
    from weatherpipe.flows.batch_process import BatchProcess
    from weatherpipe.flows.consumer_process import ConsumerPlan, Report

TITLE = "weatherpipe lab run"


class CountMismatchError(TerminalError):
    """A stage stored a different number of records than the one before it delivered."""


@dataclass(frozen=True)
class Produced:
    """The produce stage's summary, and the last offset it delivered to each partition."""

    stage: StageSummary
    last_offsets: dict[int, int]


@dataclass
class LabResult:
    stages: list[StageSummary] = field(default_factory=list)
    started_services: list[str] = field(default_factory=list)
    seconds: float = 0.0
    """Wall time of the stages run so far."""

    def as_dict(self) -> dict[str, object]:
        return {
            "stages": [asdict(stage) for stage in self.stages],
            "seconds": self.seconds,
            "started_services": self.started_services,
        }

    def show(self) -> None:
        """The summary table."""
        stage_table(TITLE, self.stages, self.seconds)


class LabFlow:
    """Runs the stages; `started` remembers what it started, so an interrupted run can stop
    exactly that (`platform.down(settings, flow.started)`). Producing and consuming overlap:
    the consumer runs in its own process from the start and stops once the raw zone holds what
    the producer delivered."""

    def __init__(
        self, settings: Settings, rows: int, seed: int, produce_again: bool = False
    ) -> None:
        self.settings = settings
        self.rows = rows
        self.seed = seed
        self.produce_again = produce_again
        self.result = LabResult()
        self.started = platform.Started()
        self._started = time.monotonic()

    def _done(self, stage: StageSummary, started: float) -> StageSummary:
        stage.seconds = time.monotonic() - started
        stage.started = started - self._started
        self.result.stages.append(stage)
        self.result.seconds = time.monotonic() - self._started
        stage_done(stage)
        return stage

    def _timed(self, work: Callable[[], StageSummary]) -> StageSummary:
        started = time.monotonic()
        return self._done(work(), started)

    def run(self) -> LabResult:
        self._started = time.monotonic()
        self._timed(self.platform_up)
        if not self.settings.csv_path.exists():
            self._timed(self.generate)
        from weatherpipe.flows.batch_process import BatchProcess

        # Started with the stream: it loads DuckDB and prepares the database meanwhile.
        with BatchProcess(self.settings) as batch:
            self._stream()
            self._timed(lambda: self.batch(batch))
        return self.result

    # --- stages ---------------------------------------------------------------------------
    def platform_up(self) -> StageSummary:
        with activity("platform: starting Kafka and PostgreSQL"):
            self.started = platform.up(self.settings)
        self.result.started_services = list(self.started.services)
        started = ", ".join(self.result.started_services) or "nothing (already running)"
        return StageSummary("platform", 0, f"started {started}")

    def generate(self) -> StageSummary:
        from weatherpipe import datagen

        path = self.settings.csv_path
        with activity(f"generate: {path}", total=self.rows, unit="rows") as shown:
            size = datagen.write_csv(path, self.rows, self.seed, shown.advance)
        return StageSummary("generate", 0, f"{self.rows:,} rows ({size / 1e6:.0f} MB) → {path}")

    def _stream(self) -> None:
        """Produce and consume side by side; return once the raw zone holds every record the
        topic had at the start and every record this run's producer delivered."""
        from weatherpipe.flows.consumer_process import ConsumerProcess, ProgressPump

        s = self.settings
        at_start = end_offsets(s)
        with live_lines() as lines:
            consume_line = lines.add("consume: joining the group")

            def show(report: Report) -> None:
                sink = report.sink
                consume_line.describe(
                    f"consume: {sink.written:,} records written, {sink.messages:,} of them in "
                    f"{sink.files:,} published files"
                )

            consumer = ConsumerProcess(consumer_plan(s), show)
            consume_started = time.monotonic()
            consumer.start()
            try:
                with ProgressPump(consumer):
                    produce_started = time.monotonic()
                    produced = self._produce(lines)
                    self._done(produced.stage, produce_started)
                target = dict(at_start)
                target.update({p: last + 1 for p, last in produced.last_offsets.items()})
                report = consumer.finish(target)
            finally:
                consumer.stop()
        sink = report.sink
        marked = sum(sink.value_errors.values())
        self._done(
            StageSummary(
                "consume",
                0,
                f"{sink.messages:,} records → {sink.files:,} raw files "
                f"({sink.bytes / 1_048_576:,.0f} MiB)",
                f"{marked:,} values marked unreadable" if marked else "",
            ),
            consume_started,
        )
        missing = _missing_records(s, produced.last_offsets)
        if missing:
            raise CountMismatchError(
                f"The raw zone lacks records the producer delivered ({missing}). Run "
                "`weatherpipe consume --until-idle 30` to finish, then `weatherpipe batch`."
            )

    def _produce(self, lines: Lines) -> Produced:
        from weatherpipe.ingest.csv_to_topic import (
            AlreadySentError,
            pending,
            produce_all,
            what_topic_holds,
        )
        from weatherpipe.signals import stop_requested

        s = self.settings
        source = s.csv_path

        def skipped() -> Produced:
            note = f"skipped: {what_topic_holds(s, source)} (--produce-again sends it again)"
            return Produced(StageSummary("produce", 0, note), {})

        held = _records_in_topic(s)
        if held and not self.produce_again and not pending(s, source):
            # The lab flow sends the data set once: a second `make run` must not send the
            # same rows again (the batch would then count every observation twice). An
            # interrupted first send is resumed instead: only its missing rows are sent.
            return skipped()
        shown = lines.add("produce", total=source.stat().st_size)
        try:
            with stop_requested() as stop:
                progress = ProduceProgress(shown, "produce")
                summary = produce_all(s, source, progress, stop, again=self.produce_again)
        except AlreadySentError:  # the topic was emptied since, and its ledger kept
            return skipped()
        if summary.interrupted:
            raise KeyboardInterrupt
        if not summary.ok:
            raise CountMismatchError(
                f"The producer could not deliver every row: {summary.line()}. "
                "Check the broker's log (STATE_DIR/kafka/logs/server.log) and run again."
            )
        return Produced(
            StageSummary(
                "produce",
                0,
                f"{summary.rows_read:,} rows read, {summary.sent:,} sent to {summary.topic}"
                + (f" ({summary.resumed:,} by the interrupted run)" if summary.resumed else ""),
                f"{summary.quarantined:,} bad rows to {summary.dlq_topic}",
            ),
            summary.last_offsets,
        )

    def batch(self, process: BatchProcess) -> StageSummary:
        """The batch, run by `process`: DuckDB's memory never adds to the producer's here."""
        with activity("batch") as shown:
            summary = process.run(shown.describe)
        r = summary.rows
        return StageSummary(
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


def consumer_plan(settings: Settings) -> ConsumerPlan:
    """How the lab's consumer process joins the group: as `weatherpipe consume` would."""
    from weatherpipe.flows.consumer_process import ConsumerPlan
    from weatherpipe.rawzone.consume_loop import ConsumeOptions

    return ConsumerPlan(
        kafka_connection(settings, "consumer"),
        settings.kafka_group_id,
        ConsumeOptions.from_settings(settings),
        settings.kafka_group_instance_id,
        settings.log_level,
    )


def _missing_records(settings: Settings, last_offsets: dict[int, int]) -> str:
    """The partitions whose highest stored offset is below the last one the producer
    delivered, described; "" when there is none."""
    stored = highest_offsets(settings.raw_dir, settings.kafka_topic)
    return "; ".join(
        f"partition {p}: stored up to {stored.get(p, -1)}, delivered up to {last}"
        for p, last in sorted(last_offsets.items())
        if stored.get(p, -1) < last
    )


def _records_in_topic(settings: Settings) -> int:
    """Records the topic holds (0 when it does not exist yet)."""
    offsets = partition_offsets(kafka_connection(settings, "producer"), settings.kafka_topic, 30)
    return sum(p.records for p in offsets)
