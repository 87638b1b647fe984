"""The producer: CSV rows to the event topic, bad rows to `<topic>.dlq`, every row accounted for.

`--all` (lab mode) streams the whole file block by block. `--daily` (normal operation) sends
the next event day not sent yet and then records it in the daily state file. Each row ends up
exactly once in `sent` (acknowledged on the topic), `quarantined` (acknowledged on the
dead-letter topic), `failed` (not acknowledged) or `not_sent` (the run was interrupted first).

Dead-letter record: key = the physical line number as text; value = a JSON object
`{"source": <csv path>, "line": <1-based line, header = 1>, "raw": <the line's text>,
"reason": <Reason code>, "field": <event field or null>, "detail": <what is wrong>}`. The
dead-letter topic has one partition, so its records are in line order.

An interrupted run (Ctrl-C, crash, SIGKILL, failed deliveries) is resumed by the next run of the
same job, which sends only the rows the interrupted one did not deliver (`resume`).
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np
import orjson
import pyarrow as pa

from weatherpipe.ingest import daily_state
from weatherpipe.ingest.csv_reader import LineBlock, read_blocks, split_fields
from weatherpipe.ingest.encode import Records, encode
from weatherpipe.ingest.prefetch import prefetch
from weatherpipe.ingest.reject import Reject
from weatherpipe.ingest.resume import Resume, forget_finished_day
from weatherpipe.ingest.validate import ValidRows, validate
from weatherpipe.kafka.admin import TopicSpec, ensure_topics
from weatherpipe.kafka.producer import ProducerConfig, RecordProducer
from weatherpipe.kafka.security import kafka_connection
from weatherpipe.settings import Settings

DLQ_SUFFIX = ".dlq"


class ProgressSink(Protocol):
    """Receives progress: rows handed to Kafka, and how far into the file reading is."""

    def rows(self, count: int) -> None: ...

    def position(self, byte_offset: int) -> None: ...


class _NoProgress:
    def rows(self, count: int) -> None:
        pass

    def position(self, byte_offset: int) -> None:
        pass


@dataclass
class ProduceSummary:
    """What a run did with the rows it read."""

    source: Path
    topic: str
    rows_read: int = 0
    blank_lines: int = 0
    """Blank lines of the file: skipped, not rows."""
    selected: int = 0
    """Rows this run was to send: all rows read (--all) or the rows of one day (--daily)."""
    sent: int = 0
    quarantined: int = 0
    resumed: int = 0
    """Of `sent` and `quarantined`: rows an interrupted earlier run had delivered, found on
    the topics and not sent again."""
    failed: int = 0
    seconds: float = 0.0
    interrupted: bool = False
    daily: bool = False
    day: dt.date | None = None
    errors: list[str] = field(default_factory=list)
    last_offsets: dict[int, int] = field(default_factory=dict)
    """Of each partition of the topic this run delivered to: the last offset delivered."""

    @property
    def dlq_topic(self) -> str:
        return self.topic + DLQ_SUFFIX

    @property
    def not_sent(self) -> int:
        """Selected rows never handed to Kafka (the run was interrupted first)."""
        return self.selected - self.sent - self.quarantined - self.failed

    @property
    def rows_per_second(self) -> float:
        return (self.sent + self.quarantined) / self.seconds if self.seconds > 0 else 0.0

    @property
    def ok(self) -> bool:
        """Every selected row was acknowledged, on the topic or on the dead-letter topic."""
        return self.failed == 0 and self.not_sent == 0 and not self.interrupted

    def _blank(self) -> str:
        if not self.blank_lines:
            return ""
        return f" ({self.blank_lines:,} blank line{'s' if self.blank_lines > 1 else ''} skipped)"

    def line(self) -> str:
        """The one-line summary printed at the end of a run."""
        scope = ""
        if self.daily:
            scope = f" day {self.day}: {self.selected:,} rows," if self.day else " no new day,"
        text = (
            f"read {self.rows_read:,} rows from {self.source}{self._blank()};{scope} sent "
            f"{self.sent:,} to "
            f"{self.topic}, quarantined {self.quarantined:,} to {self.dlq_topic}, "
            f"failed {self.failed:,}"
        )
        if self.resumed:
            text += f" ({self.resumed:,} of these delivered by an interrupted earlier run)"
        if self.not_sent:
            text += f", not sent {self.not_sent:,}"
        text += f" in {self.seconds:.1f} s ({self.rows_per_second:,.0f} rows/s)"
        if self.interrupted:
            text += " [interrupted]"
        return text


def producer_config(settings: Settings) -> ProducerConfig:
    """The producer's configuration from the settings."""
    return ProducerConfig(
        connection=kafka_connection(settings, "producer"),
        compression=settings.producer_compression,
        linger_ms=settings.producer_linger_ms,
        batch_bytes=settings.producer_batch_bytes,
        delivery_timeout_ms=int(settings.producer_delivery_timeout_s * 1000),
    )


def daily_state_path(settings: Settings) -> Path:
    """Where `--daily` keeps the last day it sent to KAFKA_TOPIC."""
    return settings.produce_daily_state or (
        settings.state_dir / "produce" / f"{settings.kafka_topic}.daily.json"
    )


def prepare_topics(settings: Settings) -> None:
    """Create the topic and its dead-letter topic if missing (the DLQ has one partition, so
    its records stay in line order)."""
    ensure_topics(
        kafka_connection(settings, "producer"),
        [
            TopicSpec(
                settings.kafka_topic, settings.kafka_partitions, settings.kafka_replication_factor
            ),
            TopicSpec(settings.kafka_topic + DLQ_SUFFIX, 1, settings.kafka_replication_factor),
        ],
    )


def dlq_record(source: Path, reject: Reject) -> bytes:
    """The dead-letter record of a rejected row (JSON)."""
    return orjson.dumps(
        {
            "source": str(source),
            "line": reject.line,
            "raw": reject.raw,
            "reason": reject.reason,
            "field": reject.field,
            "detail": reject.detail,
        }
    )


def produce_all(
    settings: Settings,
    source: Path,
    progress: ProgressSink | None = None,
    stop: Callable[[], bool] = lambda: False,
) -> ProduceSummary:
    """Send every row of `source`: valid rows to KAFKA_TOPIC, the others to its DLQ."""
    sink = progress or _NoProgress()
    summary = ProduceSummary(source, settings.kafka_topic)
    blocks = read_blocks(source)  # checks the header before anything is created or sent
    prepare_topics(settings)
    resume = _resume(settings, source)
    producer = RecordProducer(producer_config(settings), settings.kafka_topic)
    start = time.monotonic()
    accepted = 0
    for block, blank, records, rejects in prefetch(_prepared(blocks)):
        summary.rows_read += len(block.lines) - blank
        summary.blank_lines += blank
        summary.selected += len(block.lines) - blank
        accepted += _send_rejects(producer, summary, rejects, resume)
        accepted += _send_rows(producer, settings.kafka_topic, records, resume, stop, sink)
        sink.position(block.end_offset)
        if stop():
            summary.interrupted = True
            break
    _finish(producer, summary, accepted, start, resume)
    if summary.ok:
        resume.done()
    return summary


def _resume(settings: Settings, source: Path, day: dt.date | None = None) -> Resume:
    return Resume.begin(
        kafka_connection(settings, "producer"),
        settings.state_dir,
        [settings.kafka_topic, settings.kafka_topic + DLQ_SUFFIX],
        source,
        day.isoformat() if day else None,
    )


def _send_rows(
    producer: RecordProducer,
    topic: str,
    records: Records,
    resume: Resume,
    stop: Callable[[], bool],
    sink: ProgressSink,
) -> int:
    values, keys = resume.unsent(topic, records.values, records.keys)
    if len(values) < len(records.values):
        sink.rows(len(records.values) - len(values))  # delivered before: done as well
    return producer.send_many(topic, values, keys, stop, sink.rows)


def _prepared(
    blocks: Iterator[LineBlock],
) -> Iterator[tuple[LineBlock, int, Records, list[Reject]]]:
    """Each block with its number of blank lines, its Kafka records and its rejects (in line
    order)."""
    for block in blocks:
        rows, rejects = split_fields(block)
        valid, invalid = validate(rows)
        rejects += invalid
        rejects.sort(key=lambda r: r.line)
        yield block, rows.blank, encode(valid), rejects


def produce_daily(
    settings: Settings,
    source: Path,
    progress: ProgressSink | None = None,
    stop: Callable[[], bool] = lambda: False,
) -> ProduceSummary:
    """Send the rows of the first event day after the one recorded in the daily state, then
    record that day. Rows whose day cannot be read (bad timestamp, wrong field count) go to
    the DLQ with the first daily run."""
    sink = progress or _NoProgress()
    summary = ProduceSummary(source, settings.kafka_topic, daily=True)
    state_path = daily_state_path(settings)
    state = daily_state.load(state_path, settings.kafka_topic)
    last = state.last_day.isoformat() if state.last_day else None
    forget_finished_day(settings.state_dir, settings.kafka_topic, last)
    start = time.monotonic()
    picked = _pick_day(source, state.last_day, sink, stop, summary)
    if picked is None or summary.interrupted:
        summary.seconds = time.monotonic() - start
        return summary
    day, valid, rejects = picked
    summary.day = day
    summary.selected = len(valid) + len(rejects)
    prepare_topics(settings)
    resume = _resume(settings, source, day)
    producer = RecordProducer(producer_config(settings), settings.kafka_topic)
    accepted = _send_rejects(producer, summary, rejects, resume)
    accepted += _send_rows(producer, settings.kafka_topic, encode(valid), resume, stop, sink)
    summary.interrupted = stop()
    _finish(producer, summary, accepted, start, resume)
    if summary.ok:
        daily_state.save(
            state_path,
            daily_state.DailyState(settings.kafka_topic, day, state.days_sent + 1),
        )
        resume.done()  # after the day is recorded: a crash in between resends nothing
    return summary


def _pick_day(
    source: Path,
    after: dt.date | None,
    sink: ProgressSink,
    stop: Callable[[], bool],
    summary: ProduceSummary,
) -> tuple[dt.date, ValidRows, list[Reject]] | None:
    """One pass over the file keeping only the rows of the earliest day after `after`."""
    day: dt.date | None = None
    kept: list[ValidRows] = []
    rejects: list[Reject] = []
    for block, blank, undated, valid, invalid in prefetch(_validated(read_blocks(source))):
        summary.rows_read += len(block.lines) - blank
        summary.blank_lines += blank
        if after is None:  # rows without a readable day go with the first daily run
            rejects += undated + [r for r in invalid if r.day is None]
        days = valid.day.cast(pa.int32()).to_numpy(zero_copy_only=False)
        later = list(_later_days(days, invalid, after))
        if later and (day is None or min(later) < day):
            day = min(later)
            kept = []
            rejects = [r for r in rejects if r.day is None]
        if day is not None:
            kept.append(valid.filter(days == _epoch_days(day)))
            rejects += [r for r in invalid if r.day == day]
        sink.position(block.end_offset)
        if stop():
            summary.interrupted = True
            return None
    if day is None:
        return None
    rejects.sort(key=lambda r: r.line)
    return day, _concat(kept), rejects


def _validated(
    blocks: Iterator[LineBlock],
) -> Iterator[tuple[LineBlock, int, list[Reject], ValidRows, list[Reject]]]:
    """Each block with its number of blank lines, its rows of the wrong shape, its valid rows
    and its invalid rows."""
    for block in blocks:
        rows, wrong = split_fields(block)
        yield block, rows.blank, wrong, *validate(rows)


def _later_days(
    days: np.ndarray, invalid: list[Reject], after: dt.date | None
) -> Iterator[dt.date]:
    floor = _epoch_days(after) if after is not None else np.iinfo(np.int32).min
    later = days[days > floor]
    if len(later):
        yield _from_epoch_days(int(later.min()))
    for reject in invalid:
        if reject.day is not None and (after is None or reject.day > after):
            yield reject.day


def _epoch_days(day: dt.date) -> int:
    return (day - dt.date(1970, 1, 1)).days


def _from_epoch_days(days: int) -> dt.date:
    return dt.date(1970, 1, 1) + dt.timedelta(days=days)


def _concat(parts: list[ValidRows]) -> ValidRows:
    return ValidRows(
        line=np.concatenate([p.line for p in parts]),
        location=pa.concat_arrays([p.location for p in parts]),
        timestamp=pa.concat_arrays([p.timestamp for p in parts]),
        day=pa.concat_arrays([p.day for p in parts]),
        measures=tuple(
            pa.concat_arrays([p.measures[i] for p in parts]) for i in range(len(parts[0].measures))
        ),
    )


def _send_rejects(
    producer: RecordProducer, summary: ProduceSummary, rejects: list[Reject], resume: Resume
) -> int:
    values = [dlq_record(summary.source, r) for r in rejects]
    keys = [str(r.line) for r in rejects]
    return producer.send_many(summary.dlq_topic, *resume.unsent(summary.dlq_topic, values, keys))


def _finish(
    producer: RecordProducer, summary: ProduceSummary, accepted: int, start: float, resume: Resume
) -> None:
    """Wait for every delivery report and fill in the counts."""
    missing = producer.flush()
    main, dlq = producer.counter(summary.topic), producer.counter(summary.dlq_topic)
    summary.failed = main.failed + dlq.failed + missing
    summary.errors = main.errors + dlq.errors
    if missing:
        summary.errors.append(f"{missing:,} records got no delivery report in time")
    summary.seconds = time.monotonic() - start
    reported = main.delivered + dlq.delivered + summary.failed
    summary.resumed = resume.matched[summary.topic] + resume.matched[summary.dlq_topic]
    summary.sent = main.delivered + resume.matched[summary.topic]
    summary.last_offsets = dict(main.last_offsets)
    summary.quarantined = dlq.delivered + resume.matched[summary.dlq_topic]
    if reported != accepted:  # cannot happen with librdkafka; counted loudly if it ever does
        summary.failed += accepted - reported
        summary.errors.append(f"{accepted - reported:,} accepted records were never reported")
