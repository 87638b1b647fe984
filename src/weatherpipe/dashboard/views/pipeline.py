"""Pipeline: every CSV row followed to PostgreSQL, what the batch did, what arrived in the raw
zone, how far behind the raw-zone consumer is in Kafka, and what the batch rejected.

The reconciliation line is always shown; below it one view at a time (the last run that did
work first), kept in the URL as `?view=`: each view reads its data only when shown."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Final

import streamlit as st

from weatherpipe.dashboard import loaders, reconcile, ui
from weatherpipe.dashboard.reconcile import Check, Counts
from weatherpipe.ingest.csv_to_topic import DLQ_SUFFIX
from weatherpipe.kafka.security import KafkaConnection
from weatherpipe.kafka.topic_views import PartitionLag
from weatherpipe.rawzone import naming
from weatherpipe.settings import Settings

# The views below the reconciliation line; the first opens with the page.
VIEWS = ("Last run", "Runs", "Reconciliation", "Raw zone", "Consumer lag", "Quarantine")
RECENT_RUNS = 20
QUARANTINE_ROWS = 200
ALL_REASONS = "All reasons"
# Offsets of one partition: (partition, first, end). A comment, not a string: Streamlit would
# draw a string standing alone in a page's module on the page.
Span = tuple[int, int, int]
UNKNOWN = "unknown"
STATES = {
    Check.AGREE: "✓ agree",
    Check.PENDING: "… catching up",
    Check.DISAGREE: "✗ disagree",
    Check.UNKNOWN: "? unknown",
}

_count = st.column_config.NumberColumn
# The batch_run table as the page shows it: the columns a reader looks at first come first.
RUN_COLUMNS: Final = {
    "id": _count("Run", pinned=True),
    "started_at": st.column_config.DatetimeColumn(
        "Started (UTC)", format="YYYY-MM-DD HH:mm:ss", pinned=True
    ),
    "status": st.column_config.TextColumn("Status"),
    "files": _count("Files", format="localized"),
    "lines": _count("Lines", format="localized"),
    "rejected": _count("Rejected", format="localized"),
    "duplicates": _count("Duplicates", format="localized"),
    "rows_written": _count("Daily rows written", format="localized"),
    "seconds": _count("Took (s)", format="%.1f"),
    "mode": st.column_config.TextColumn("Mode"),
    "engine": st.column_config.TextColumn("Engine"),
    "error": st.column_config.TextColumn("Error"),
    "finished_at": st.column_config.DatetimeColumn("Finished (UTC)", format="YYYY-MM-DD HH:mm:ss"),
    "rows_inserted": _count("Rows inserted", format="localized"),
    "rows_updated": _count("Rows updated", format="localized"),
    "rows_unchanged": _count("Rows unchanged", format="localized"),
    "rows_deleted": _count("Rows deleted", format="localized"),
}


@dataclass
class Sources:
    """What the page read, once, for all its sections; None where a source did not answer
    (with the error kept to show in the section that needs it)."""

    settings: Settings
    url: str
    timeout: float
    epoch: int
    raw: loaders.RawZone
    lags: list[PartitionLag] | None = None
    lag_error: loaders.ReadError | None = None
    topic_records: int | None = None
    dead_letters: int | None = None
    processed: dict[str, int] | None = None
    outcome: dict[str, Any] | None = None
    db_error: loaders.ReadError | None = None


def _try(read: Any) -> tuple[Any, loaders.ReadError | None]:
    try:
        return read(), None
    except loaders.ReadError as exc:
        return None, exc


def _sources(settings: Settings) -> Sources:
    url, timeout, epoch = (
        loaders.database_url(settings),
        settings.dashboard_timeout,
        loaders.epoch(settings),
    )
    topic = settings.kafka_topic
    found = Sources(
        settings, url, timeout, epoch, loaders.raw_zone(str(settings.raw_dir), topic, epoch)
    )
    servers, found.lag_error = _try(lambda: loaders.kafka(settings))
    if found.lag_error is None:
        found.lags, found.lag_error = _try(
            lambda: loaders.group_lag(servers, topic, settings.kafka_group_id, timeout, epoch)
        )
    if found.lag_error is None:
        # Records ever written (end offsets), so records removed by retention still count;
        # less the offsets that hold no record, among those no raw file covers.
        lags = found.lags or []
        files = [(f.partition, f.first_offset, f.last_offset) for f in _files(found.raw)]
        spans = reconcile.uncovered({p.partition: (p.start, p.end) for p in lags}, files)
        found.topic_records = sum(p.end for p in lags) - _no_record(found, servers, topic, spans)
        dlq, _ = _try(
            lambda: loaders.partition_offsets(servers, topic + DLQ_SUFFIX, timeout, epoch)
        )
        if dlq is not None:
            spans = [(p.partition, p.start, p.end) for p in dlq]
            no_record = _no_record(found, servers, topic + DLQ_SUFFIX, spans)
            found.dead_letters = sum(p.end for p in dlq) - no_record
    found.processed, found.db_error = _try(
        lambda: loaders.processed_files(url, timeout, epoch, topic)
    )
    if found.db_error is None:
        found.outcome, found.db_error = _try(lambda: loaders.outcome(url, timeout, epoch))
    return found


def _files(raw: loaders.RawZone) -> list[naming.RawFileName]:
    paths = (naming.parse_relative_path(path) for path in raw.lines)
    return [p.name for p in paths if p is not None]


def _no_record(s: Sources, servers: KafkaConnection, topic: str, spans: list[Span]) -> int:
    """Offsets of `spans` that hold no record; 0 when Kafka does not answer the read-back
    (the offsets then count as records)."""
    found, _ = _try(
        lambda: loaders.offsets_without_record(servers, topic, tuple(spans), s.timeout, s.epoch)
    )
    return int(found or 0)


def _counts(s: Sources) -> Counts:
    csv_rows, recorded = reconcile.csv_rows(s.topic_records, s.dead_letters)
    raw_lines = sum(s.raw.lines.values())
    processed = s.processed
    unprocessed = (
        raw_lines
        if processed is None
        else sum(n for path, n in s.raw.lines.items() if path not in processed)
    )
    outcome = s.outcome or {}
    return Counts(
        csv_rows=csv_rows,
        csv_rows_recorded=recorded,
        topic_records=s.topic_records,
        dead_letters=s.dead_letters,
        consumer_lag=None if s.lags is None else sum(p.lag for p in s.lags),
        raw_lines=raw_lines,
        raw_lines_unprocessed=unprocessed,
        processed_lines=None if processed is None else sum(processed.values()),
        processed_files_gone=None
        if processed is None
        else sum(1 for path in processed if path not in s.raw.lines),
        lines_all_topics=outcome.get("lines"),
        quarantined=outcome.get("quarantined"),
        observations=outcome.get("observations"),
        duplicates=outcome.get("duplicates"),
    )


def _n(value: int | None) -> str:
    return UNKNOWN if value is None else f"{value:,}"


def _line(s: Sources) -> None:
    """The reconciliation in one line: green when every row is accounted for, red when the
    counts disagree."""
    c = _counts(s)
    steps = reconcile.steps(c)
    # The batch reads every topic's folder of the raw zone; the daily table keeps no topic.
    others = (
        f" (of every topic: {c.lines_all_topics:,})"
        if c.lines_all_topics is not None and c.lines_all_topics != c.processed_lines
        else ""
    )
    line = (
        f"CSV rows {_n(c.csv_rows)} → topic records {_n(c.topic_records)} + dead letters "
        f"{_n(c.dead_letters)} → raw-zone lines {_n(c.raw_lines)} → processed "
        f"{_n(c.processed_lines)}{others} → quarantined {_n(c.quarantined)} + observations "
        f"{_n(c.observations)} + duplicates {_n(c.duplicates)}"
    )
    verdict = reconcile.verdict(steps)
    notes = " ".join(step.note for step in steps if step.check is not Check.AGREE and step.note)
    if verdict is Check.AGREE:
        st.success(f"{line}: every row accounted for.", icon=":material/check_circle:")
    elif verdict is Check.PENDING:
        ui.message("info", f"{line}. Still on its way: {notes}")
    elif verdict is Check.UNKNOWN:
        ui.message("warning", f"{line}. Not every count could be read: {notes}")
    else:
        ui.message("error", f"{line}. The counts disagree: {notes}")


def _reconciliation(s: Sources) -> None:
    """Each step of the reconciliation with whether its counts agree, and why not."""
    c = _counts(s)
    steps = reconcile.steps(c)
    ui.table(
        [{"step": step.name, "check": STATES[step.check], "note": step.note} for step in steps],
        "reconciliation",
        {
            "step": st.column_config.TextColumn("Step"),
            "check": st.column_config.TextColumn("Counts"),
            "note": st.column_config.TextColumn("Why they differ", width="large"),
        },
    )
    if not c.csv_rows_recorded:
        st.caption(
            "CSV rows are counted on the topics (records + dead letters): the producer keeps no "
            "count of its own across runs. Observations are those of the whole processed zone."
        )


def _last_work(runs: list[dict[str, Any]]) -> tuple[dict[str, Any], int]:
    """The latest run that did something (read files, failed, or is still running), and how
    many later runs found nothing new."""
    for skipped, run in enumerate(runs):
        if run["files"] or run["status"] != "succeeded" or run["mode"] == "full":
            return run, skipped
    return runs[0], 0


def _read_runs(s: Sources) -> list[dict[str, Any]] | None:
    """The latest runs, newest first; None, with the problem or "no data yet" shown, when
    they cannot be read or there is none."""
    try:
        runs = loaders.runs(s.url, s.timeout, s.epoch, RECENT_RUNS)
    except loaders.ReadError as exc:
        ui.problem(exc)
        return None
    if not runs:
        ui.message("info", loaders.NO_DATA)
        return None
    return runs


def _last_run(s: Sources) -> None:
    """The latest run that did work, in a line and tiles; a failed latest run in red."""
    runs = _read_runs(s)
    if runs is None:
        return
    last, idle = _last_work(runs)
    finished = last["finished_at"]
    took = f", took {last['seconds']:.1f} s" if last["seconds"] is not None else ""
    when = f"finished {finished:%Y-%m-%d %H:%M:%S} UTC{took}" if finished else "is still running"
    st.text(
        f"Last run that did work: #{last['id']} ({last['mode']}, {last['engine']}): "
        f"{last['status']}, {when}."
    )
    if idle:
        st.caption(f"{idle:,} later run{'' if idle == 1 else 's'} found no new raw files.")
    ui.tiles(
        ("Last run: files", f"{last['files']:,}"),
        ("Last run: lines read", f"{last['lines']:,}"),
        ("Last run: rejected", f"{last['rejected']:,}"),
        ("Last run: duplicates", f"{last['duplicates']:,}"),
        ("Last run: daily rows written", f"{last['rows_written']:,}"),
    )
    if runs[0]["status"] == "failed":
        ui.message("error", f"Run {runs[0]['id']} failed:", runs[0]["error"])


def _runs(s: Sources) -> None:
    """Totals over every run, and the latest runs in a table."""
    runs = _read_runs(s)
    if runs is None:
        return
    try:
        totals = loaders.totals(s.url, s.timeout, s.epoch)
    except loaders.ReadError as exc:
        ui.problem(exc)
        return
    ui.tiles(
        ("Runs", f"{totals['runs']:,}"),
        ("Observations stored", f"{totals['observations']:,}"),
        ("Records rejected", f"{totals['rejected']:,}"),
        ("Daily rows (city-days)", f"{totals['daily_rows']:,}"),
        ("Raw files processed", f"{totals['files']:,}"),
    )
    st.caption(f"The latest {min(len(runs), RECENT_RUNS)} runs, newest first:")
    ui.table(runs, "runs", RUN_COLUMNS)


def _unit(largest: int) -> tuple[str, int]:
    """The binary unit that shows `largest` bytes as a number of at least 1."""
    for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if largest >= size:
            return unit, size
    return "B", 1


def _day_chart(days: int, unit: str) -> dict[str, Any]:
    """A bar per day of the raw data's size in `unit` (Vega-Lite), with its figures on hover."""
    return {
        # One day or many, bars stay between 3 and 40 pixels wide.
        "mark": {"type": "bar", "size": max(3, min(40, 700 // days))},
        "encoding": {
            # Days as categories: one day still gets a bar of readable width.
            "x": {
                "field": "day",
                "type": "ordinal",
                "title": "Day (UTC)",
                "axis": {"labelAngle": -30},
            },
            "y": {"field": "amount", "type": "quantitative", "title": f"Raw data ({unit})"},
            "tooltip": [
                {"field": "day", "type": "nominal", "title": "Day (UTC)"},
                {"field": "files", "type": "quantitative", "title": "Files"},
                {"field": "lines", "type": "quantitative", "title": "Lines", "format": ","},
                {"field": "size", "type": "nominal", "title": "Size"},
            ],
        },
    }


def _files_per_day(paths: Iterable[str]) -> dict[str, int]:
    """How many of the raw files at `paths` (relative to RAW_DIR) each date folder holds."""
    per_day: dict[str, int] = {}
    for path in paths:
        parsed = naming.parse_relative_path(path)
        day = parsed.date if parsed is not None else ""
        per_day[day] = per_day.get(day, 0) + 1
    return per_day


def _raw_zone(s: Sources) -> None:
    settings, days = s.settings, s.raw.days
    folder = f"{settings.raw_dir}/{settings.kafka_topic}/"
    if not days:
        ui.message(
            "info",
            "No finished raw files in this folder yet — run `make run`, or "
            "`weatherpipe produce` then `weatherpipe consume --until-idle 10`:",
            folder,
        )
        return
    st.caption("Finished files per day (UTC, from the records' Kafka timestamps) in:")
    st.text(folder)
    processed = None if s.processed is None else _files_per_day(s.processed)
    unit, size = _unit(max(d.bytes for d in days))
    rows = [
        {
            "day": d.day,
            "files": d.files,
            "lines": d.lines,
            "size": ui.size(d.bytes),
            "amount": d.bytes / size,
            "processed": UNKNOWN if processed is None else f"{processed.get(d.day, 0):,}",
        }
        for d in days
    ]
    ui.tiles(
        ("Days", f"{len(rows):,}"),
        ("Files", f"{sum(d.files for d in days):,}"),
        ("Lines", f"{sum(d.lines for d in days):,}"),
        ("Size", ui.size(sum(d.bytes for d in days))),
    )
    st.vega_lite_chart(rows, _day_chart(len(rows), unit), width="stretch", height=200)
    ui.table(
        [{k: v for k, v in r.items() if k != "amount"} for r in reversed(rows)],
        "raw_days",
        {
            "day": st.column_config.TextColumn("Day (UTC)"),
            "files": st.column_config.NumberColumn("Files", format="localized"),
            "lines": st.column_config.NumberColumn("Lines", format="localized"),
            "size": st.column_config.TextColumn("Size"),
            "processed": st.column_config.TextColumn("Files processed by the batch"),
        },
    )
    if processed is None:
        st.caption("PostgreSQL did not answer: what the batch processed is unknown.")


def _consumer_lag(s: Sources) -> None:
    settings = s.settings
    st.caption("Records in Kafka the raw zone has not committed yet, of this topic and group:")
    st.text(f"topic {settings.kafka_topic}, consumer group {settings.kafka_group_id}")
    if s.lag_error is not None:
        ui.problem(s.lag_error)
        return
    lags = s.lags or []
    if not lags:
        ui.message(
            "info",
            "This topic does not exist yet — run `make run`, or `weatherpipe produce`: it "
            "creates the topic.",
        )
        return
    ui.lag_table(lags, "lag", ("partition", "start", "end", "committed", "lag"))


def _quarantine(s: Sources) -> None:
    try:
        reasons = loaders.rejected_by_reason(s.url, s.timeout, s.epoch)
    except loaders.ReadError as exc:
        ui.problem(exc)
        return
    if not reasons:
        st.success("No record was rejected.")
        return
    ui.table(reasons, "reasons", ui.REASON_COLUMNS)
    choices = [ALL_REASONS, *sorted({r["reason"] for r in reasons})]
    reason = st.selectbox("Show the latest rejected records of", choices, key="reason")
    try:
        records = loaders.rejected_records(
            s.url, s.timeout, s.epoch, None if reason == ALL_REASONS else reason, QUARANTINE_ROWS
        )
    except loaders.ReadError as exc:
        ui.problem(exc)
        return
    st.caption(f"{len(records)} most recent (at most {QUARANTINE_ROWS}).")
    ui.table(
        records,
        "rejected",
        {
            "id": None,
            "run_id": st.column_config.NumberColumn("Run"),
            "run_started_at": st.column_config.DatetimeColumn(
                "Run started (UTC)", format="YYYY-MM-DD HH:mm:ss"
            ),
            "reason": st.column_config.TextColumn("Reason"),
            "field": st.column_config.TextColumn("Field"),
            "file": st.column_config.TextColumn("Raw file"),
            "line": st.column_config.NumberColumn("Line"),
            "topic": st.column_config.TextColumn("Topic"),
            "partition": st.column_config.NumberColumn("Partition"),
            "offset": st.column_config.NumberColumn("Offset"),
            "raw": st.column_config.TextColumn("Record as stored", width="large"),
        },
    )


def render() -> None:
    """Draw the page; each section reports its own failure so the others still show."""
    settings = loaders.settings()
    ui.refresh_button(settings.dashboard_cache_seconds)
    st.title("Pipeline")
    sources = _sources(settings)
    _line(sources)
    view = ui.view_switch(VIEWS, "view")
    if view == "Last run":
        _last_run(sources)
    elif view == "Runs":
        _runs(sources)
    elif view == "Reconciliation":
        _reconciliation(sources)
    elif view == "Raw zone":
        _raw_zone(sources)
    elif view == "Consumer lag":
        _consumer_lag(sources)
    else:
        _quarantine(sources)
