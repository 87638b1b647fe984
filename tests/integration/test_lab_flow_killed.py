"""The overlapped lab flow killed at a random moment (SIGKILL of the whole process tree, as a
crash or a power cut would) and run again: nothing lost, nothing doubled."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest
from confluent_kafka import Consumer, TopicPartition

from tests.conftest import as_env
from tests.csv_reference import DAILY, assert_daily_matches
from weatherpipe import datagen
from weatherpipe.db.connection import connect
from weatherpipe.settings import Settings

pytestmark = pytest.mark.integration

ROWS = 300_000
Row = tuple[str, str, float, float, float, float]


def row_of(value: dict[str, object]) -> Row:
    return (
        str(value["location"]),
        str(value["timestamp"]),
        float(str(value["temperature_c"])),
        float(str(value["humidity_pct"])),
        float(str(value["precipitation_mm"])),
        float(str(value["wind_speed_kmh"])),
    )


def read_topic(servers: str, topic: str) -> dict[tuple[int, int], Row]:
    """Every record of `topic` by (partition, offset); read up to each partition's end offset
    by position, so offsets without a record (commit markers) are no problem."""
    consumer = Consumer({"bootstrap.servers": servers, "group.id": "reader"})
    try:
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        records: dict[tuple[int, int], Row] = {}
        for p in sorted(partitions):
            low, high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
            consumer.assign([TopicPartition(topic, p, low)])
            position = low
            while position < high:
                for msg in consumer.consume(10_000, timeout=5):
                    assert msg.error() is None
                    records[(p, msg.offset())] = row_of(json.loads(msg.value()))
                found = consumer.position([TopicPartition(topic, p)])[0].offset
                position = max(position, found)
        return records
    finally:
        consumer.close()


def read_raw_zone(raw_dir: Path) -> Counter[tuple[int, int]]:
    """How often each (partition, offset) is stored in the published raw files."""
    stored: Counter[tuple[int, int]] = Counter()
    for raw_file in raw_dir.glob("date=*/*.ndjson"):
        for line in raw_file.read_text().splitlines():
            kafka = json.loads(line)["kafka"]
            stored[(kafka["partition"], kafka["offset"])] += 1
    return stored


def test_lab_flow_killed_mid_way_then_rerun(
    platform_settings: Settings,
    fresh_database: str,
    unique_name: Callable[[str], str],
    tmp_path: Path,
) -> None:
    source = tmp_path / "weather_data.csv"
    datagen.write_csv(source, ROWS, seed=11)
    topic = unique_name("lab_killed")
    raw_dir = tmp_path / "raw"
    env = as_env(platform_settings)
    env.update(
        CSV_PATH=str(source),
        RAW_DIR=str(raw_dir),
        KAFKA_TOPIC=topic,
        KAFKA_GROUP_ID=unique_name("lab_killed"),
        DATABASE_URL=fresh_database,
    )
    command = [sys.executable, "-m", "weatherpipe", "run", "--no-dashboard"]

    # Its own session: the kill reaches the flow and its consumer process, nothing else.
    first = subprocess.Popen(
        command,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        # In the middle: once the consumer has published a file, while the flow still runs.
        deadline = time.monotonic() + 600
        while not list((raw_dir / topic).glob("date=*/*.ndjson")):
            assert first.poll() is None, first.stderr.read() if first.stderr else ""
            assert time.monotonic() < deadline
            time.sleep(0.05)
    finally:
        os.killpg(first.pid, signal.SIGKILL)
        first.communicate(timeout=60)
    assert first.returncode == -signal.SIGKILL

    again = subprocess.run(
        command, env=env, capture_output=True, text=True, check=False, timeout=900
    )
    assert again.returncode == 0, again.stderr[-3000:]

    # The topic holds exactly the CSV's rows.
    with source.open(newline="") as fh:
        rows = list(csv.reader(fh))[1:]
    expected = Counter(
        (r[0], r[1], float(r[2]), float(r[3]), float(r[4]), float(r[5])) for r in rows
    )
    on_topic = read_topic(platform_settings.kafka_bootstrap_servers, topic)
    assert Counter(on_topic.values()) == expected

    # The raw zone holds every record of the topic once, and nothing else.
    stored = read_raw_zone(raw_dir / topic)
    assert max(stored.values()) == 1
    assert set(stored) == set(on_topic)

    # daily_weather equals the independent computation from the CSV.
    with connect(fresh_database) as conn:
        got = conn.execute(DAILY).fetchall()
    assert_daily_matches(got, source)
