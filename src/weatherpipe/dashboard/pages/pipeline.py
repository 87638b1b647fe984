"""Pipeline: what arrived in the raw zone, what the batch did with it, what it rejected, and
how far behind the raw-zone consumer is in Kafka."""

from __future__ import annotations

import streamlit as st

from weatherpipe.dashboard import data, ui
from weatherpipe.settings import Settings

RECENT_RUNS = 20
QUARANTINE_ROWS = 200
ALL_REASONS = "All reasons"


def _runs(url: str, timeout: float, epoch: int) -> bool:
    """The batch section; False when the database cannot be read (later sections skip it)."""
    st.subheader("Batch runs")
    try:
        runs = data.runs(url, timeout, epoch, RECENT_RUNS)
        totals = data.totals(url, timeout, epoch)
    except data.ReadError as exc:
        ui.problem(exc)
        return False
    if not runs:
        ui.message("info", data.NO_DATA)
        return True
    last = runs[0]
    finished = last["finished_at"]
    took = f", took {last['seconds']:.1f} s" if last["seconds"] is not None else ""
    when = f"finished {finished:%Y-%m-%d %H:%M:%S} UTC{took}" if finished else "is still running"
    st.text(f"Last run #{last['id']} ({last['mode']}, {last['engine']}): {last['status']}, {when}.")
    tiles = st.columns(5)
    tiles[0].metric("Last run: files", f"{last['files']:,}")
    tiles[1].metric("Last run: lines read", f"{last['lines']:,}")
    tiles[2].metric("Last run: rejected", f"{last['rejected']:,}")
    tiles[3].metric("Last run: duplicates", f"{last['duplicates']:,}")
    tiles[4].metric(
        "Last run: daily rows written", f"{last['rows_inserted'] + last['rows_updated']:,}"
    )
    tiles = st.columns(5)
    tiles[0].metric("Runs", f"{totals['runs']:,}")
    tiles[1].metric("Observations stored", f"{totals['observations']:,}")
    tiles[2].metric("Records rejected", f"{totals['rejected']:,}")
    tiles[3].metric("Daily rows (city-days)", f"{totals['daily_rows']:,}")
    tiles[4].metric("Raw files processed", f"{totals['files']:,}")
    if last["status"] == "failed":
        ui.message("error", f"Run {last['id']} failed:", last["error"])
    st.dataframe(
        runs,
        hide_index=True,
        width="stretch",
        key="runs",
        column_config={
            "id": st.column_config.NumberColumn("Run"),
            "started_at": st.column_config.DatetimeColumn(
                "Started (UTC)", format="YYYY-MM-DD HH:mm:ss"
            ),
            "finished_at": st.column_config.DatetimeColumn(
                "Finished (UTC)", format="YYYY-MM-DD HH:mm:ss"
            ),
            "seconds": st.column_config.NumberColumn("Duration (s)", format="%.1f"),
            "status": st.column_config.TextColumn("Status"),
            "engine": st.column_config.TextColumn("Engine"),
            "mode": st.column_config.TextColumn("Mode"),
            "files": st.column_config.NumberColumn("Files"),
            "lines": st.column_config.NumberColumn("Lines"),
            "duplicates": st.column_config.NumberColumn("Duplicates"),
            "rejected": st.column_config.NumberColumn("Rejected"),
            "error": st.column_config.TextColumn("Error"),
            "rows_inserted": st.column_config.NumberColumn("Rows inserted"),
            "rows_updated": st.column_config.NumberColumn("Rows updated"),
            "rows_unchanged": st.column_config.NumberColumn("Rows unchanged"),
            "rows_deleted": st.column_config.NumberColumn("Rows deleted"),
        },
    )
    return True


def _raw_zone(settings: Settings, url: str, timeout: float, epoch: int, db_ok: bool) -> None:
    st.subheader("Raw zone")
    folder = f"{settings.raw_dir}/{settings.kafka_topic}/"
    days = data.raw_zone(str(settings.raw_dir), settings.kafka_topic, epoch)
    if not days:
        ui.message(
            "info",
            "No finished raw files in this folder yet — run `make run`, or "
            "`weatherpipe produce` then `weatherpipe consume --until-idle 10`:",
            folder,
        )
        return
    st.caption("Finished files per day (UTC) in:")
    st.text(folder)
    processed: dict[str, int] = {}
    if db_ok:
        try:
            processed = {r["day"]: r["files"] for r in data.processed_per_day(url, timeout, epoch)}
        except data.ReadError:
            processed = {}
    rows = [
        {
            "day": d.day,
            "files": d.files,
            "size": ui.size(d.bytes),
            "bytes": d.bytes,
            "processed": processed.get(d.day, 0),
        }
        for d in days
    ]
    tiles = st.columns(3)
    tiles[0].metric("Days", f"{len(rows):,}")
    tiles[1].metric("Files", f"{sum(d.files for d in days):,}")
    tiles[2].metric("Size", ui.size(sum(d.bytes for d in days)))
    chart = {
        "mark": {"type": "bar"},
        "encoding": {
            "x": {
                "field": "day",
                "type": "temporal",
                "axis": {"title": "Day (UTC)", "format": "%Y-%m-%d", "labelAngle": -30},
            },
            "y": {"field": "bytes", "type": "quantitative", "title": "Raw data (bytes)"},
            "tooltip": [
                {"field": "day", "type": "temporal", "title": "Day (UTC)", "format": "%Y-%m-%d"},
                {"field": "files", "type": "quantitative", "title": "Files"},
                {"field": "size", "type": "nominal", "title": "Size"},
            ],
        },
    }
    st.vega_lite_chart(rows, chart, width="stretch", height=200)
    st.dataframe(
        [{k: v for k, v in r.items() if k != "bytes"} for r in reversed(rows)],
        hide_index=True,
        width="stretch",
        key="raw_days",
        column_config={
            "day": st.column_config.TextColumn("Day (UTC)"),
            "files": st.column_config.NumberColumn("Files"),
            "size": st.column_config.TextColumn("Size"),
            "processed": st.column_config.NumberColumn("Processed by the batch"),
        },
    )


def _consumer_lag(settings: Settings, epoch: int) -> None:
    st.subheader("Kafka: consumer lag")
    st.caption("Records in Kafka the raw zone has not committed yet, of this topic and group:")
    st.text(f"topic {settings.kafka_topic}, consumer group {settings.kafka_group_id}")
    try:
        lags = data.group_lag(
            data.kafka(settings),
            settings.kafka_topic,
            settings.kafka_group_id,
            settings.dashboard_timeout,
            epoch,
        )
    except data.ReadError as exc:
        ui.problem(exc)
        return
    if not lags:
        ui.message(
            "info",
            "This topic does not exist yet — run `make run`, or `weatherpipe produce`: it "
            "creates the topic.",
        )
        return
    st.metric("Total lag (records)", f"{sum(p.lag for p in lags):,}")
    st.dataframe(
        [
            {
                "partition": p.partition,
                "start": p.start,
                "end": p.end,
                "committed": p.committed,
                "lag": p.lag,
            }
            for p in lags
        ],
        hide_index=True,
        width="stretch",
        key="lag",
        column_config={
            "partition": st.column_config.NumberColumn("Partition"),
            "start": st.column_config.NumberColumn("Start offset"),
            "end": st.column_config.NumberColumn("End offset"),
            "committed": st.column_config.NumberColumn("Committed offset"),
            "lag": st.column_config.NumberColumn("Lag (records)"),
        },
    )


def _quarantine(url: str, timeout: float, epoch: int) -> None:
    st.subheader("Quarantine")
    try:
        reasons = data.rejected_by_reason(url, timeout, epoch)
    except data.ReadError as exc:
        ui.problem(exc)
        return
    if not reasons:
        st.success("No record was rejected.")
        return
    st.dataframe(
        reasons,
        hide_index=True,
        width="stretch",
        key="reasons",
        column_config={
            "reason": st.column_config.TextColumn("Reason"),
            "field": st.column_config.TextColumn("Field"),
            "records": st.column_config.NumberColumn("Records"),
        },
    )
    choices = [ALL_REASONS, *sorted({r["reason"] for r in reasons})]
    reason = st.selectbox("Show the latest rejected records of", choices, key="reason")
    try:
        records = data.rejected_records(
            url, timeout, epoch, None if reason == ALL_REASONS else reason, QUARANTINE_ROWS
        )
    except data.ReadError as exc:
        ui.problem(exc)
        return
    st.caption(f"{len(records)} most recent (at most {QUARANTINE_ROWS}).")
    st.dataframe(
        records,
        hide_index=True,
        width="stretch",
        key="rejected",
        column_config={
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
    settings = data.settings()
    ui.refresh_button(settings.dashboard_cache_seconds)
    st.title("Pipeline")
    url, timeout, epoch = (
        data.database_url(settings),
        settings.dashboard_timeout,
        data.epoch(settings),
    )
    db_ok = _runs(url, timeout, epoch)
    _raw_zone(settings, url, timeout, epoch, db_ok)
    _consumer_lag(settings, epoch)
    if db_ok:
        _quarantine(url, timeout, epoch)


ui.page(render)
