"""Kafka: what AKHQ shows every day, for the local mode — the topics, their records (newest
first, searched, or from an offset or a moment), consumer groups with their lag, topic
settings and sizes, brokers and the KRaft controller quorum, and the dead letters with their
reasons. Read-only, and every read is bounded: no page scans a whole topic.

One view at a time (the messages first), kept in the URL as `?view=`; each view asks Kafka only
when shown, and the messages' seek controls sit behind one button that says what they hold."""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, date, datetime, time
from typing import Any

import streamlit as st

from weatherpipe.dashboard import loaders, ui
from weatherpipe.ingest.csv_to_topic import DLQ_SUFFIX
from weatherpipe.kafka.browse import Record
from weatherpipe.kafka.describe import (
    MAIN_TOPIC_SETTINGS,
    QUORUM_SETTINGS,
    Setting,
    log_dirs,
    quorum_state,
)
from weatherpipe.kafka.topic_views import PartitionOffsets, TopicInfo
from weatherpipe.settings import Settings

VIEWS = ("Messages", "Consumer groups", "Topics", "Cluster", "Dead letters")
SHOW = ("Newest", "From offset", "From time")
# A search reads at most this many of the newest records of each partition.
SEARCH_SCAN = 5_000
# Records read by default.
COUNT = 50
DEAD_LETTERS = 500


def _text(raw: bytes | None) -> str | None:
    if raw is None:
        return None
    return raw.decode("utf-8", errors="replace")


def _when(timestamp_ms: int | None) -> str | None:
    """A record's timestamp in UTC to the millisecond; a producer may set any 64-bit number, so
    one outside Python's years 1 to 9999 is shown as the number it is."""
    if timestamp_ms is None:
        return None
    try:
        when = datetime.fromtimestamp(timestamp_ms / 1000, UTC)
    except (ValueError, OverflowError, OSError):
        return f"{timestamp_ms} ms since 1970"
    return when.strftime("%Y-%m-%d %H:%M:%S.") + f"{when.microsecond // 1000:03d}"


def _value(raw: bytes | None) -> tuple[Any, str]:
    """A value decoded for reading, and what it is: JSON (parsed), text, or empty."""
    text = _text(raw)
    if text is None:
        return None, "empty"
    try:
        return json.loads(text), "JSON"
    except ValueError:
        return text, "text"


def _row(record: Record) -> dict[str, object]:
    value, kind = _value(record.value)
    return {
        "partition": record.partition,
        "offset": record.offset,
        "timestamp": _when(record.timestamp_ms),
        "key": _text(record.key),
        "format": kind,
        "value": json.dumps(value, ensure_ascii=False) if kind == "JSON" else value,
    }


def _whole(topic: str, record: Record) -> dict[str, Any]:
    """Everything about one record, for the JSON view."""
    value, kind = _value(record.value)
    return {
        "topic": topic,
        "partition": record.partition,
        "offset": record.offset,
        "timestamp": _when(record.timestamp_ms),
        "timestamp_ms": record.timestamp_ms,
        "key": _text(record.key),
        "headers": {name: _text(raw) for name, raw in record.headers},
        "format": kind,
        "value": value,
    }


def _records(topic: str, records: list[Record], caption: str) -> None:
    """A table of records; the row the user picks shown whole below it."""
    st.caption(caption)
    if not records:
        st.info("No records here.")
        return
    event = ui.table(
        [_row(r) for r in records],
        # A key of its own per listing (newer records or another search make another): a new
        # listing starts with no row picked, where the pick made in the one before would name
        # another record here.
        f"messages {topic} {caption} {records[0].partition}:{records[0].offset} {len(records)}",
        {
            "partition": st.column_config.NumberColumn("Partition"),
            "offset": st.column_config.NumberColumn("Offset"),
            "timestamp": st.column_config.TextColumn("Timestamp (UTC)"),
            "key": st.column_config.TextColumn("Key"),
            "format": st.column_config.TextColumn("Format"),
            "value": st.column_config.TextColumn("Value", width="large"),
        },
        on_select="rerun",
        selection_mode="single-row",
    )
    rows = event.selection.rows if event is not None else []
    if not rows or rows[0] >= len(records):
        # The JSON view only on demand: drawing it costs every first load of the page.
        st.caption(
            "Pick a row (the box at its left) to see the record whole: topic, partition, "
            "offset, timestamp, key, headers and the value as JSON."
        )
        return
    st.caption("The record whole:")
    st.json(_whole(topic, records[rows[0]]), expanded=2)


def _partition_choice(offsets: list[PartitionOffsets], key: str) -> int | None:
    options: list[int | None] = [None, *(o.partition for o in offsets)]
    choice: int | None = st.selectbox(
        "Partition",
        options,
        format_func=lambda p: "All partitions" if p is None else str(p),
        key=key,
    )
    return choice


def _seek_label(offsets: list[PartitionOffsets]) -> str:
    """What the seek controls hold now, in the words of the button that opens them (Markdown:
    numbers and this page's words only). Drops a partition the topic no longer has."""
    state = st.session_state
    if state.get("partition") not in [None, *(o.partition for o in offsets)]:
        state.pop("partition", None)
    partition = state.get("partition")
    where = "all partitions" if partition is None else f"partition {partition}"
    show = state.get("show") or "Newest"
    return f"{show}: {where}, {state.get('count', COUNT):,} records"


def _messages(settings: Settings, topic: str, epoch: int) -> None:
    servers, timeout = loaders.kafka(settings), settings.dashboard_timeout
    offsets = loaders.partition_offsets(servers, topic, timeout, epoch)
    search_at, seek_at = st.columns([3, 2], vertical_alignment="bottom")
    text = search_at.text_input("Search keys and values for this text", key="search").strip()
    # In a popover: the browser builds its widgets only when it is opened.
    with seek_at.popover(_seek_label(offsets), icon=":material/tune:", width="stretch"):
        partition = _partition_choice(offsets, "partition")
        show = st.segmented_control("Show", SHOW, default="Newest", key="show") or "Newest"
        count = st.number_input("Records", min_value=1, max_value=500, value=COUNT, key="count")
        bounds = next((o for o in offsets if o.partition == partition), None)
        offset = (
            st.number_input("Offset", min_value=0, value=bounds.start, step=1, key="offset")
            if show == "From offset" and bounds is not None
            else None
        )
        day: object = None
        moment = time(0, 0)
        if show == "From time":
            day = st.date_input("Day (UTC)", value=datetime.now(UTC).date(), key="seek_day")
            moment = st.time_input("Time (UTC)", value=time(0, 0), key="seek_time", step=60)
    if text:
        found = loaders.search(servers, topic, partition, text, SEARCH_SCAN, count, timeout, epoch)
        ranges = ", ".join(
            f"partition {p}: offsets {first:,} to {end - 1:,}"
            for p, (first, end) in sorted(found.scanned.items())
            if end > first
        )
        st.caption(
            f"{found.matched:,} of the newest {found.records_scanned:,} records hold this text "
            f"(at most {SEARCH_SCAN:,} read from the end of each partition); the newest "
            f"{len(found.found):,} of them below. Offsets read:"
        )
        st.text(ranges or "(the partitions hold no records)")
        _records(topic, found.found, "Matches, newest first.")
        return
    if show == "From offset":
        if bounds is None or offset is None:
            st.info("Pick a partition to read from an offset (under the button above).")
            return
        records = loaders.from_offset(
            servers, topic, bounds.partition, offset, count, timeout, epoch
        )
        _records(
            topic,
            records,
            f"Partition {bounds.partition} from offset {offset:,} on, oldest first (it holds "
            f"offsets {bounds.start:,} to {bounds.end - 1:,}).",
        )
        return
    if show == "From time":
        if not isinstance(day, date):
            return
        when = datetime.combine(day, moment, UTC)
        records = loaders.from_time(
            servers, topic, partition, int(when.timestamp() * 1000), count, timeout, epoch
        )
        _records(topic, records, f"Written at or after {when:%Y-%m-%d %H:%M} UTC, oldest first.")
        return
    records = loaders.newest(servers, topic, partition, count, timeout, epoch)
    scope = "all partitions" if partition is None else f"partition {partition}"
    _records(topic, records, f"The newest records of {scope}, newest first.")


def _groups(settings: Settings, topics: list[str], epoch: int) -> None:
    servers, timeout = loaders.kafka(settings), settings.dashboard_timeout
    groups = loaders.groups(servers, timeout, epoch)
    if not groups:
        st.info("No consumer group has committed offsets or joined yet.")
        return
    ui.table(
        [
            {
                "group": g.id,
                "state": g.state.capitalize(),
                "members": g.members,
                "assignor": g.protocol,
                "topics": ", ".join(g.topics),
            }
            for g in groups
        ],
        "groups",
        {
            "group": st.column_config.TextColumn("Group"),
            "state": st.column_config.TextColumn("State"),
            "members": st.column_config.NumberColumn("Members"),
            "assignor": st.column_config.TextColumn("Assignor"),
            "topics": st.column_config.TextColumn("Assigned topics"),
        },
    )
    names = [g.id for g in groups]
    default = names.index(settings.kafka_group_id) if settings.kafka_group_id in names else 0
    group = st.selectbox("Lag of group", names, index=default, key="group")
    lags = loaders.lag_of_group(servers, group, tuple(topics), timeout, epoch)
    if not lags:
        st.info("This group has committed no offset on any topic.")
        return
    ui.lag_table(lags, "group_lag", ("topic", "partition", "end", "committed", "lag"))


def _duration(ms: str | None) -> str | None:
    if ms is None or not ms.lstrip("-").isdigit():
        return ms
    value = int(ms)
    if value < 0:
        return "forever"
    for unit, size in (("days", 86_400_000), ("hours", 3_600_000), ("minutes", 60_000)):
        if value >= size and value % size == 0:
            return f"{value // size:,} {unit}"
    return f"{value:,} ms"


def _shown_setting(s: Setting) -> dict[str, object]:
    value = _duration(s.value) if s.name.endswith(".ms") else s.value
    return {"name": s.name, "value": value, "source": s.source}


def _settings_table(rows: list[Setting], key: str) -> None:
    ui.table(
        [_shown_setting(s) for s in rows],
        key,
        {
            "name": st.column_config.TextColumn("Setting"),
            "value": st.column_config.TextColumn("Value"),
            "source": st.column_config.TextColumn("From"),
        },
    )


def _broker_dirs(settings: Settings, epoch: int) -> tuple[str, ...]:
    """Log folders of the cluster's brokers that lie on this machine (none for a remote one)."""
    servers, timeout = loaders.kafka(settings), settings.dashboard_timeout
    folders: list[str] = []
    for broker in loaders.cluster(servers, timeout, epoch).brokers:
        found = log_dirs(loaders.broker_settings(servers, broker.id, timeout, epoch))
        folders += [str(f) for f in found]
    return tuple(folders)


def _topics(settings: Settings, topics: list[TopicInfo], epoch: int) -> None:
    """Every topic of the cluster with its partitions and records."""
    servers, timeout = loaders.kafka(settings), settings.dashboard_timeout
    offsets = {t.name: loaders.partition_offsets(servers, t.name, timeout, epoch) for t in topics}
    st.caption("Every topic of the cluster:")
    ui.table(
        [
            {
                "topic": t.name,
                "partitions": t.partitions,
                "records": sum(p.records for p in offsets[t.name]),
                "end_offsets": ", ".join(str(p.end) for p in offsets[t.name]),
            }
            for t in topics
        ],
        "topics",
        {
            "topic": st.column_config.TextColumn("Topic"),
            "partitions": st.column_config.NumberColumn("Partitions"),
            "records": st.column_config.NumberColumn("Records kept", format="localized"),
            "end_offsets": st.column_config.TextColumn("End offset per partition"),
        },
    )


def _topic(settings: Settings, topic: str, epoch: int) -> None:
    servers, timeout = loaders.kafka(settings), settings.dashboard_timeout
    offsets = loaders.partition_offsets(servers, topic, timeout, epoch)
    st.caption("The chosen topic:")
    folders = _broker_dirs(settings, epoch)
    sizes = loaders.disk_sizes(folders, topic, epoch) if folders else {}
    ui.tiles(
        ("Partitions", f"{len(offsets):,}"),
        ("Records kept", f"{sum(o.records for o in offsets):,}"),
        ("Size on disk", ui.size(sum(sizes.values())) if folders else "unknown"),
    )
    if not folders:
        st.caption(
            "The brokers' log folders are not on this machine, so their size is unknown here "
            "(confluent-kafka cannot ask for it)."
        )
    ui.table(
        [
            {
                "partition": o.partition,
                "start": o.start,
                "end": o.end,
                "records": o.records,
                "size": ui.size(sizes[o.partition]) if o.partition in sizes else None,
            }
            for o in offsets
        ],
        "partitions",
        {
            "partition": st.column_config.NumberColumn("Partition"),
            "start": st.column_config.NumberColumn("First offset", format="localized"),
            "end": st.column_config.NumberColumn("End offset", format="localized"),
            "records": st.column_config.NumberColumn("Records kept", format="localized"),
            "size": st.column_config.TextColumn("Size on disk"),
        },
    )
    every = loaders.topic_settings(servers, topic, timeout, epoch)
    st.caption("Retention and storage settings:")
    _settings_table([s for s in every if s.name in MAIN_TOPIC_SETTINGS], "topic_settings")
    with st.expander("Every setting of this topic"):
        _settings_table(every, "all_topic_settings")


def _cluster(settings: Settings, epoch: int) -> None:
    servers, timeout = loaders.kafka(settings), settings.dashboard_timeout
    cluster = loaders.cluster(servers, timeout, epoch)
    tiles = st.columns(3)
    tiles[0].metric("Brokers", f"{len(cluster.brokers):,}")
    tiles[1].metric(
        "Controller (per metadata)", "—" if cluster.controller is None else str(cluster.controller)
    )
    st.caption("Cluster id:")
    st.text(cluster.id or "—")
    ui.table(
        [{"id": b.id, "host": b.host, "port": b.port, "rack": b.rack} for b in cluster.brokers],
        "brokers",
        {
            "id": st.column_config.NumberColumn("Broker"),
            "host": st.column_config.TextColumn("Host"),
            "port": st.column_config.NumberColumn("Port", format="plain"),
            "rack": st.column_config.TextColumn("Rack"),
        },
    )
    st.subheader("KRaft controller quorum")
    for broker in cluster.brokers:
        every = loaders.broker_settings(servers, broker.id, timeout, epoch)
        st.caption(f"Node {broker.id}: its quorum settings")
        _settings_table([s for s in every if s.name in QUORUM_SETTINGS], f"quorum_{broker.id}")
        state = quorum_state(every)
        if state is not None:
            tiles[2].metric(
                "Quorum leader (epoch)",
                f"{'—' if state.leader is None else state.leader} ({state.epoch})",
            )
            st.caption("Leader and epoch as this node last recorded them, in:")
            st.text(state.path)
    st.caption(
        "Kafka's clients for Python have no call for the quorum's own description (its voters "
        "and how far each lags): the settings above say who votes, and where the broker runs on "
        "this machine its recorded leader is shown."
    )


def _dead_letters(settings: Settings, topic: str, names: list[str], epoch: int) -> None:
    servers, timeout = loaders.kafka(settings), settings.dashboard_timeout
    dlq = topic if topic.endswith(DLQ_SUFFIX) else topic + DLQ_SUFFIX
    st.caption("Rows the producer could not send as events, with why, from the topic:")
    st.text(dlq)
    if dlq not in names:
        st.info("This topic has no dead-letter topic (the producer creates it with its topic).")
        return
    offsets = loaders.partition_offsets(servers, dlq, timeout, epoch)
    total = sum(o.records for o in offsets)
    records = loaders.newest(servers, dlq, None, DEAD_LETTERS, timeout, epoch)
    st.metric("Dead letters kept", f"{total:,}")
    if not records:
        st.success("No row was sent to the dead-letter topic.")
        return
    rows = []
    for r in records:
        value, kind = _value(r.value)
        letter = value if isinstance(value, dict) else {}
        rows.append(
            {
                "offset": r.offset,
                "timestamp": _when(r.timestamp_ms),
                "reason": letter.get("reason"),
                "field": letter.get("field"),
                "line": letter.get("line"),
                "detail": letter.get("detail"),
                "source": letter.get("source"),
                "raw": letter.get("raw") if letter else (value if kind == "text" else None),
            }
        )
    reasons = Counter((str(r["reason"]), str(r["field"] or "")) for r in rows)
    st.caption(f"Reasons of the newest {len(rows):,} (of {total:,}):")
    ui.table(
        [{"reason": k[0], "field": k[1], "records": n} for k, n in reasons.most_common()],
        "dlq_reasons",
        ui.REASON_COLUMNS,
    )
    ui.table(
        rows,
        "dlq_records",
        {
            "offset": st.column_config.NumberColumn("Offset"),
            "timestamp": st.column_config.TextColumn("Sent (UTC)"),
            "reason": st.column_config.TextColumn("Reason"),
            "field": st.column_config.TextColumn("Field"),
            "line": st.column_config.NumberColumn("CSV line", format="plain"),
            "detail": st.column_config.TextColumn("What is wrong"),
            "source": st.column_config.TextColumn("CSV file"),
            "raw": st.column_config.TextColumn("Row as read", width="large"),
        },
    )


def render() -> None:
    """Draw the page."""
    settings = loaders.settings()
    ui.refresh_button(settings.dashboard_cache_seconds)
    st.title("Kafka")
    timeout, epoch = settings.dashboard_timeout, loaders.epoch(settings)
    st.text(f"Brokers: {settings.kafka_bootstrap_servers}")
    topics = loaders.topics(loaders.kafka(settings), timeout, epoch)
    if not topics:
        ui.message(
            "info",
            "No topics yet — run `make run`, or `weatherpipe produce`: it creates its topic.",
        )
        return
    names = [t.name for t in topics]
    default = names.index(settings.kafka_topic) if settings.kafka_topic in names else 0
    left, right = st.columns([2, 5])
    topic = left.selectbox("Topic", names, index=default, key="topic")
    view = ui.view_switch(VIEWS, "view", right, label="View")
    if view == "Messages":
        _messages(settings, topic, epoch)
    elif view == "Consumer groups":
        _groups(settings, names, epoch)
    elif view == "Topics":
        _topics(settings, topics, epoch)
        _topic(settings, topic, epoch)
    elif view == "Cluster":
        _cluster(settings, epoch)
    else:
        _dead_letters(settings, topic, names, epoch)
