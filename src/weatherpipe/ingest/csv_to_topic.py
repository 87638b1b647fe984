"""The producer: CSV rows to the event topic, bad rows to `<topic>.dlq`, every row accounted for.

`--all` (lab mode) streams the whole file block by block. `--daily` (normal operation) sends
the next event day not sent yet and then records it in the daily state file. Each row ends up
exactly once in `sent` (committed on the topic), `quarantined` (committed on the dead-letter
topic), `failed` (its transaction could not be committed) or `not_sent` (the run was
interrupted first).

Exactly once per data set, not per run. A run:
1. checks the CSV's header, and hashes its content on the side (`dataset`);
2. takes the topic's lock on this machine (`topic_lock`): a second run at once is turned away;
3. creates the topics if missing: the events, `<topic>.dlq`, and the ledger `<topic>.ledger`;
4. starts a transactional producer whose id is the topic's (`weatherpipe-produce.<topic>`):
   a producer of the same topic still running elsewhere is fenced, its open transaction
   aborted;
5. reads the ledger: an interrupted run of the same job is resumed (`resume`); a data set the
   ledger records as sent in full is refused, unless `again`;
6. sends the rows block by block in transactions of about TRANSACTION_RECORDS records (the
   first also notes the run in the ledger);
7. records the data set as sent and removes the note, in one last transaction.

Dead-letter record: key = the physical line number as text; value = a JSON object
`{"source": <csv path>, "line": <1-based line, header = 1>, "raw": <the line's text, its first
RAW_KEPT characters>, "truncated": <whether raw was cut>, "reason": <Reason code>, "field":
<event field or null>, "detail": <what is wrong>}`. The dead-letter topic has one partition, so
its records are in line order.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final, Protocol

import numpy as np
import orjson
import pyarrow as pa

from weatherpipe.errors import TerminalError
from weatherpipe.ingest import daily_state, delivered, ledger
from weatherpipe.ingest.csv_reader import LineBlock, check_header, read_blocks, split_fields
from weatherpipe.ingest.dataset import digest_in_background, file_digest
from weatherpipe.ingest.encode import Records, encode
from weatherpipe.ingest.ledger import LedgerState, SentRun
from weatherpipe.ingest.prefetch import prefetch
from weatherpipe.ingest.reject import Reject
from weatherpipe.ingest.resume import Resume
from weatherpipe.ingest.topic_lock import topic_lock
from weatherpipe.ingest.validate import ValidRows, validate
from weatherpipe.kafka.admin import TopicSpec, ensure_topics, topic_config
from weatherpipe.kafka.producer import (
    MESSAGE_MAX_BYTES,
    ProducerConfig,
    RecordProducer,
    TransactionAbortedError,
)
from weatherpipe.kafka.security import kafka_connection
from weatherpipe.settings import Settings

DLQ_SUFFIX: Final = ".dlq"
RAW_KEPT: Final = 4_096
"""Characters of a rejected row's text its dead-letter record keeps."""
ROW_MARGIN: Final = 2_048
"""Bytes a message needs beyond a row's own text: the JSON names around the values, an
escaped location, the key and the record's framing."""
TRANSACTION_ATTEMPTS: Final = 3
"""Times a transaction is tried before the run gives up (and can be resumed)."""
TRANSACTION_RECORDS: Final = 250_000
"""Records after which the open transaction is committed (at the end of the block that reaches
it). A commit waits until every record of the transaction is acknowledged, and nothing is handed
to the client meanwhile: with a transaction per 2 MiB block (26 for 1M rows) the producer spent
10-45 % of its time committing. The records of the open transaction stay in memory to be sent
again should it abort: about 50 MB at this size."""


class ProgressSink(Protocol):
    """Receives progress: rows handed to Kafka, and how far into the file reading is."""

    def rows(self, count: int) -> None: ...

    def position(self, byte_offset: int) -> None: ...


class _NoProgress:
    def rows(self, count: int) -> None:
        pass

    def position(self, byte_offset: int) -> None:
        pass


class AlreadySentError(TerminalError):
    """The ledger records this data set as sent in full to the topic."""

    def __init__(self, source: Path, topic: str, earlier: SentRun) -> None:
        self.earlier = earlier
        finished = earlier.finished_utc.replace("T", " ").replace("+00:00", " UTC")
        same = "" if earlier.source == str(source.resolve()) else f" (then {earlier.source})"
        super().__init__(
            f"{source} was sent to {topic} before: the same content{same} went out in full "
            f"{finished} on {earlier.host}, {earlier.rows:,} rows ({earlier.sent:,} to "
            f"{topic}, {earlier.quarantined:,} to {topic}{DLQ_SUFFIX}). Nothing was sent. To "
            "send every row once more, run the same command with --again."
        )


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
    """Of each partition of the topic this run delivered to: the offset of its last record
    there (`delivered`). Filled in by `produce_all` once every row is committed (`ok`)."""

    @property
    def dlq_topic(self) -> str:
        return self.topic + DLQ_SUFFIX

    @property
    def not_sent(self) -> int:
        """Selected rows never committed (the run was interrupted first)."""
        return self.selected - self.sent - self.quarantined - self.failed

    @property
    def rows_per_second(self) -> float:
        return (self.sent + self.quarantined) / self.seconds if self.seconds > 0 else 0.0

    @property
    def ok(self) -> bool:
        """Every selected row was committed, on the topic or on the dead-letter topic."""
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


def transactional_id(topic: str) -> str:
    """The producers' transactional id for `topic`: one per topic, so they fence each other."""
    return f"weatherpipe-produce.{topic}"


def producer_config(settings: Settings) -> ProducerConfig:
    """The producer's configuration from the settings."""
    return ProducerConfig(
        connection=kafka_connection(settings, "producer"),
        transactional_id=transactional_id(settings.kafka_topic),
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
    """Create the topic, its dead-letter topic and its ledger if missing (the DLQ has one
    partition, so its records stay in line order; the ledger is compacted, its latest record
    per key is what counts)."""
    replicas = settings.kafka_replication_factor
    ensure_topics(
        kafka_connection(settings, "producer"),
        [
            TopicSpec(settings.kafka_topic, settings.kafka_partitions, replicas),
            TopicSpec(settings.kafka_topic + DLQ_SUFFIX, 1, replicas),
            TopicSpec(
                ledger.ledger_topic(settings.kafka_topic),
                1,
                replicas,
                {"cleanup.policy": "compact"},
            ),
        ],
    )


def row_limit(settings: Settings) -> int:
    """The most bytes a CSV row may have for its event to fit in one message of the topic."""
    connection = kafka_connection(settings, "producer")
    topic_max = int(topic_config(connection, settings.kafka_topic, "max.message.bytes"))
    return min(topic_max, MESSAGE_MAX_BYTES) - ROW_MARGIN


def dlq_record(source: Path, reject: Reject) -> bytes:
    """The dead-letter record of a rejected row (JSON), its raw text cut to RAW_KEPT
    characters so that it always fits in a message; so is the detail, which may quote a
    field of the row."""
    detail = reject.detail
    if len(detail) > RAW_KEPT:
        detail = detail[: RAW_KEPT - 1] + "…"
    return orjson.dumps(
        {
            "source": str(source),
            "line": reject.line,
            "raw": reject.raw[:RAW_KEPT],
            "truncated": len(reject.raw) > RAW_KEPT,
            "reason": reject.reason,
            "field": reject.field,
            "detail": detail,
        }
    )


def pending(settings: Settings, source: Path, day: str | None = None) -> bool:
    """Whether an interrupted run of this job waits to be resumed."""
    noted = ledger.read(kafka_connection(settings, "producer"), settings.kafka_topic).attempt
    return noted is not None and noted.same_job(source, file_digest(source), day)


def what_topic_holds(settings: Settings, source: Path) -> str:
    """What the ledger says KAFKA_TOPIC holds of `source`, e.g. "weather_data_raw holds this
    CSV already: 1,000,000 rows, sent 2024-05-01 10:00:00 UTC"."""
    earlier = ledger.read(kafka_connection(settings, "producer"), settings.kafka_topic).sent_run(
        file_digest(source)
    )
    if earlier is None:
        return f"{settings.kafka_topic} is not empty"
    finished = earlier.finished_utc.replace("T", " ").replace("+00:00", " UTC")
    return f"{settings.kafka_topic} holds this CSV already: {earlier.rows:,} rows, sent {finished}"


def produce_all(
    settings: Settings,
    source: Path,
    progress: ProgressSink | None = None,
    stop: Callable[[], bool] = lambda: False,
    *,
    again: bool = False,
    abandon: bool = False,
) -> ProduceSummary:
    """Send every row of `source`: valid rows to KAFKA_TOPIC, the others to its DLQ. A data set
    sent in full before is refused (`AlreadySentError`) unless `again`; `abandon` gives up
    another job's interrupted run instead of refusing to start."""
    sink = progress or _NoProgress()
    summary = ProduceSummary(source, settings.kafka_topic)
    blocks = read_blocks(source)  # checks the header before anything is created or sent
    content = digest_in_background(source)
    with (
        topic_lock(settings.state_dir, settings.kafka_topic, f"sending {source}"),
        _session(settings) as session,
    ):
        resume = session.resume(source, content.result(), None, abandon)
        earlier = session.state.sent_run(resume.attempt.digest)
        if earlier is not None and not resume.noted and not again:
            raise AlreadySentError(source, settings.kafka_topic, earlier)
        run = _Run(session, summary, resume, sink, stop)
        connection = kafka_connection(settings, "producer")
        # After `resume`, which waits for a new topic's partition leaders.
        ends_before = delivered.end_offsets(connection, settings.kafka_topic)
        start = time.monotonic()
        prepared = _prepared(blocks, session.limit, settings.event_years)
        for block, blank, records, rejects in prefetch(prepared):
            summary.rows_read += len(block.lines) - blank
            summary.blank_lines += blank
            summary.selected += len(block.lines) - blank
            if not run.send(rejects, records):
                break
            sink.position(block.end_offset)
            if stop():
                summary.interrupted = True
                break
        run.flush()
        run.count()
        if summary.ok:
            done = ledger.finished(
                resume.attempt, earlier, summary.selected, summary.sent, summary.quarantined
            )
            run.record([ledger.sent_record(done), ledger.attempt_record(None)])
            summary.last_offsets = delivered.last_offsets(
                connection, settings.kafka_topic, ends_before
            )
        summary.seconds = time.monotonic() - start
    return summary


def produce_daily(
    settings: Settings,
    source: Path,
    progress: ProgressSink | None = None,
    stop: Callable[[], bool] = lambda: False,
    *,
    abandon: bool = False,
) -> ProduceSummary:
    """Send the rows of the first event day after the one recorded in the daily state, then
    record that day. Rows whose day cannot be read (bad timestamp, wrong field count) go to
    the DLQ with the first daily run."""
    sink = progress or _NoProgress()
    summary = ProduceSummary(source, settings.kafka_topic, daily=True)
    state_path = daily_state_path(settings)
    state = daily_state.load(state_path, settings.kafka_topic)
    check_header(source)  # before anything is created or sent
    content = digest_in_background(source)
    start = time.monotonic()
    with (
        topic_lock(settings.state_dir, settings.kafka_topic, f"sending a day of {source}"),
        _session(settings) as session,
    ):
        noted = session.state.attempt
        if noted is not None and noted.day and state.last_day and noted.day <= str(state.last_day):
            # The run stopped between recording its day and removing its note: it is done.
            _Run(session, summary, None, sink, stop).record([ledger.attempt_record(None)])
            session.state.attempt = None
        picked = _pick_day(source, state.last_day, sink, stop, summary, session.limit, settings)
        if picked is None or summary.interrupted:
            summary.seconds = time.monotonic() - start
            return summary
        day, valid, rejects = picked
        summary.day = day
        summary.selected = len(valid) + len(rejects)
        resume = session.resume(source, content.result(), day.isoformat(), abandon)
        run = _Run(session, summary, resume, sink, stop)
        if run.send(rejects, encode(valid)):
            run.flush()
        summary.interrupted = summary.interrupted or stop()
        run.count()
        summary.seconds = time.monotonic() - start
        if summary.ok:
            daily_state.save(
                state_path,
                daily_state.DailyState(settings.kafka_topic, day, state.days_sent + 1),
            )
            # After the day is recorded: a crash in between resends nothing.
            run.record([ledger.attempt_record(None)])
    return summary


@dataclass
class _Session:
    """A run's topics, transactional producer, ledger and row size limit."""

    settings: Settings
    producer: RecordProducer
    state: LedgerState
    limit: int

    @property
    def topic(self) -> str:
        return self.settings.kafka_topic

    @property
    def dlq(self) -> str:
        return self.settings.kafka_topic + DLQ_SUFFIX

    @property
    def ledger(self) -> str:
        return ledger.ledger_topic(self.settings.kafka_topic)

    def resume(self, source: Path, digest: str, day: str | None, abandon: bool) -> Resume:
        return Resume.begin(
            kafka_connection(self.settings, "producer"),
            self.state.attempt,
            [self.topic, self.dlq],
            source,
            digest,
            day,
            abandon,
        )


@contextlib.contextmanager
def _session(settings: Settings) -> Iterator[_Session]:
    """Set up a run in this order: the topics, the producer (fencing any other producer of the
    topic), the ledger (which then cannot change under this run)."""
    prepare_topics(settings)
    limit = row_limit(settings)
    with RecordProducer(producer_config(settings)) as producer:
        producer.init()
        state = ledger.read(kafka_connection(settings, "producer"), settings.kafka_topic)
        yield _Session(settings, producer, state, limit)


class _Run:
    """A run's transactions: blocks of rows, TRANSACTION_RECORDS to a transaction; the first
    also notes the run in the ledger, a last one records its end."""

    def __init__(
        self,
        session: _Session,
        summary: ProduceSummary,
        resume: Resume | None,
        sink: ProgressSink,
        stop: Callable[[], bool],
    ) -> None:
        self.session = session
        self.producer = session.producer
        self.summary = summary
        self.resume = resume
        self.sink = sink
        self.stop = stop
        self.committed: Counter[str] = Counter()
        self._parts: list[tuple[str, list[bytes], list[str]]] = []
        """What the open transaction carries (sent again should it abort)."""
        self._handed: Counter[str] = Counter()
        self._open = False
        self._noting = False
        self._stopped = False

    def send(self, rejects: list[Reject], records: Records) -> bool:
        """Add one block's rows to the open transaction, and commit it once it carries
        TRANSACTION_RECORDS; False when the run stops (interrupted, or a transaction failed).
        `flush` commits what is left."""
        assert self.resume is not None
        session, resume = self.session, self.resume
        dlq = resume.unsent(
            session.dlq,
            [dlq_record(self.summary.source, r) for r in rejects],
            [str(r.line) for r in rejects],
        )
        rows = resume.unsent(session.topic, records.values, records.keys)
        if len(rows[0]) < len(records.values):
            self.sink.rows(len(records.values) - len(rows[0]))  # delivered before: done too
        if not dlq[0] and not rows[0]:
            return True
        if not self._open:
            self._begin()
        if not self._hand([(session.dlq, *dlq), (session.topic, *rows)]):
            return self.flush()  # what was handed before the stop is committed
        if sum(len(values) for _, values, _ in self._parts) >= TRANSACTION_RECORDS:
            return self.flush()
        return True

    def flush(self, entries: Sequence[tuple[str, bytes | None]] = ()) -> bool:
        """Commit the open transaction with the ledger `entries` (key, value); one is opened
        for `entries` alone when none is. An aborted transaction is sent again, up to
        TRANSACTION_ATTEMPTS times in all. False when the run stops (interrupted, or failed)."""
        if not self._open and not entries:
            return not self._stopped
        for attempt in range(1, TRANSACTION_ATTEMPTS + 1):
            if not self._open:  # entries alone, or the retry of an aborted transaction
                parts, self._parts = self._parts, []
                self._begin()
                self._hand(parts)
            for key, value in entries:
                self.producer.send_one(self.session.ledger, value, key)
            self._open = False
            try:
                self.producer.commit()
            except TransactionAbortedError as exc:
                self.summary.errors.append(str(exc))
                if attempt < TRANSACTION_ATTEMPTS:
                    continue
                self.summary.failed += sum(len(values) for _, values, _ in self._parts)
                self._parts = []
                return False
            if self._noting:
                assert self.resume is not None
                self.resume.noted = True
            self.committed.update(self._handed)
            self._parts = []
            if self._stopped:
                self.summary.interrupted = True
            return not self._stopped
        return False

    def record(self, entries: list[tuple[str, bytes | None]]) -> None:
        """Write `entries` (key, value) to the ledger in a transaction of their own."""
        if not self.flush() or not self.flush(entries):
            raise TransactionAbortedError(
                f"The ledger {self.session.ledger} could not be updated: "
                + "; ".join(self.summary.errors[-1:])
                + ". Every row was delivered; run the same command again to record that."
            )

    def _begin(self) -> None:
        self.producer.begin()
        self._open = True
        self._handed = Counter()
        self._stopped = False
        self._noting = self.resume is not None and not self.resume.noted
        if self._noting:
            assert self.resume is not None
            key, value = ledger.attempt_record(self.resume.attempt)
            self.producer.send_one(self.session.ledger, value, key)

    def _hand(self, parts: list[tuple[str, list[bytes], list[str]]]) -> bool:
        """Hand `parts` to the open transaction; False when stopped before the end."""
        for topic, values, keys in parts:
            self._parts.append((topic, values, keys))
            on_sent = self.sink.rows if topic == self.session.topic else None
            handed = self.producer.send_many(topic, values, keys, self.stop, on_sent)
            self._handed[topic] += handed
            if handed < len(values):
                self._stopped = True
                return False
        return True

    def count(self) -> None:
        """Fill in the summary's counts from what was committed and what was found."""
        assert self.resume is not None
        session, matched = self.session, self.resume.matched
        self.summary.resumed = matched[session.topic] + matched[session.dlq]
        self.summary.sent = self.committed[session.topic] + matched[session.topic]
        self.summary.quarantined = self.committed[session.dlq] + matched[session.dlq]


def _prepared(
    blocks: Iterator[LineBlock], limit: int, years: tuple[int, int]
) -> Iterator[tuple[LineBlock, int, Records, list[Reject]]]:
    """Each block with its number of blank lines, its Kafka records and its rejects (in line
    order)."""
    for block in blocks:
        rows, rejects = split_fields(block, limit)
        valid, invalid = validate(rows, years)
        rejects += invalid
        rejects.sort(key=lambda r: r.line)
        yield block, rows.blank, encode(valid), rejects


def _pick_day(
    source: Path,
    after: dt.date | None,
    sink: ProgressSink,
    stop: Callable[[], bool],
    summary: ProduceSummary,
    limit: int,
    settings: Settings,
) -> tuple[dt.date, ValidRows, list[Reject]] | None:
    """One pass over the file keeping only the rows of the earliest day after `after`."""
    day: dt.date | None = None
    kept: list[ValidRows] = []
    rejects: list[Reject] = []
    validated = _validated(read_blocks(source), limit, settings.event_years)
    for block, blank, undated, valid, invalid in prefetch(validated):
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
    blocks: Iterator[LineBlock], limit: int, years: tuple[int, int]
) -> Iterator[tuple[LineBlock, int, list[Reject], ValidRows, list[Reject]]]:
    """Each block with its number of blank lines, its rows of the wrong shape, its valid rows
    and its invalid rows."""
    for block in blocks:
        rows, wrong = split_fields(block, limit)
        yield block, rows.blank, wrong, *validate(rows, years)


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
