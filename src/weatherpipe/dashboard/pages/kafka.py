"""Kafka: the cluster's topics with their partitions and offsets, and the last records of a
chosen partition, decoded — a small AKHQ for the local mode."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import streamlit as st

from weatherpipe.dashboard import data, ui
from weatherpipe.kafka.inspect import Message


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


def _decoded(message: Message) -> dict[str, object]:
    value = _text(message.value)
    try:
        shown = json.dumps(json.loads(value), ensure_ascii=False) if value is not None else None
        kind = "JSON" if value is not None else "empty"
    except ValueError:
        shown, kind = value, "text"
    return {
        "offset": message.offset,
        "timestamp": _when(message.timestamp_ms),
        "key": _text(message.key),
        "format": kind,
        "value": shown,
    }


def render() -> None:
    """Draw the page."""
    settings = data.settings()
    ui.refresh_button(settings.dashboard_cache_seconds)
    st.title("Kafka")
    timeout, epoch = settings.dashboard_timeout, data.epoch(settings)
    st.text(f"Brokers: {settings.kafka_bootstrap_servers}")
    servers = data.kafka(settings)
    topics = data.topics(servers, timeout, epoch)
    offsets = {t.name: data.partition_offsets(servers, t.name, timeout, epoch) for t in topics}
    if not topics:
        ui.message(
            "info",
            "No topics yet — run `make run`, or `weatherpipe produce`: it creates its topic.",
        )
        return
    st.subheader("Topics")
    st.dataframe(
        [
            {
                "topic": t.name,
                "partitions": t.partitions,
                "records": sum(p.records for p in offsets[t.name]),
                "end_offsets": ", ".join(str(p.end) for p in offsets[t.name]),
            }
            for t in topics
        ],
        hide_index=True,
        width="stretch",
        key="topics",
        column_config={
            "topic": st.column_config.TextColumn("Topic"),
            "partitions": st.column_config.NumberColumn("Partitions"),
            "records": st.column_config.NumberColumn("Records kept", format="localized"),
            "end_offsets": st.column_config.TextColumn("End offset per partition"),
        },
    )
    st.subheader("Last messages")
    names = [t.name for t in topics]
    default = names.index(settings.kafka_topic) if settings.kafka_topic in names else 0
    left, middle, right = st.columns([3, 1, 2])
    topic = left.selectbox("Topic", names, index=default, key="topic")
    partitions = [p.partition for p in offsets[topic]]
    partition = middle.selectbox("Partition", partitions, key="partition")
    count = right.slider("How many", min_value=1, max_value=200, value=20, key="count")
    table = {p.partition: p for p in offsets[topic]}
    if partition is None or partition not in table:
        st.info("This topic has no partitions.")
        return
    chosen = table[partition]
    st.caption(
        f"Partition {partition}: offsets {chosen.start:,} to {chosen.end - 1:,} "
        f"({chosen.records:,} records kept)."
    )
    messages = data.last_messages(servers, topic, partition, count, timeout, epoch)
    if not messages:
        st.info("This partition holds no records.")
        return
    st.dataframe(
        [_decoded(m) for m in reversed(messages)],
        hide_index=True,
        width="stretch",
        key="messages",
        column_config={
            "offset": st.column_config.NumberColumn("Offset"),
            "timestamp": st.column_config.TextColumn("Timestamp (UTC)"),
            "key": st.column_config.TextColumn("Key"),
            "format": st.column_config.TextColumn("Format"),
            "value": st.column_config.TextColumn("Value (decoded)", width="large"),
        },
    )


ui.page(render)
