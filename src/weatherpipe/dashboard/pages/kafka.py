"""Kafka: the cluster's topics with their partitions and offsets, and the last records of a
chosen partition, decoded — a small AKHQ for the local mode."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import streamlit as st

from weatherpipe.dashboard import data, ui
from weatherpipe.kafka.inspect import KafkaUnavailableError, Message


def _text(raw: bytes | None) -> str | None:
    if raw is None:
        return None
    return raw.decode("utf-8", errors="replace")


def _decoded(message: Message) -> dict[str, object]:
    value = _text(message.value)
    try:
        shown = json.dumps(json.loads(value), ensure_ascii=False) if value is not None else None
        kind = "JSON" if value is not None else "empty"
    except ValueError:
        shown, kind = value, "text"
    when = (
        datetime.fromtimestamp(message.timestamp_ms / 1000, UTC).replace(tzinfo=None)
        if message.timestamp_ms is not None
        else None
    )
    return {
        "offset": message.offset,
        "timestamp": when,
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
    st.caption(f"Brokers: `{settings.kafka_bootstrap_servers}`")
    try:
        servers = data.kafka(settings)
        topics = data.topics(servers, timeout, epoch)
        offsets = {t.name: data.partition_offsets(servers, t.name, timeout, epoch) for t in topics}
    except KafkaUnavailableError as exc:
        st.error(str(exc), icon=":material/error:")
        return
    if not topics:
        st.info("No topics yet — run `make run` and produce some data.")
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
    try:
        messages = data.last_messages(servers, topic, partition, count, timeout, epoch)
    except KafkaUnavailableError as exc:
        st.error(str(exc), icon=":material/error:")
        return
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
            "timestamp": st.column_config.DatetimeColumn(
                "Timestamp (UTC)", format="YYYY-MM-DD HH:mm:ss.SSS"
            ),
            "key": st.column_config.TextColumn("Key"),
            "format": st.column_config.TextColumn("Format"),
            "value": st.column_config.TextColumn("Value (decoded)", width="large"),
        },
    )


render()
