"""The original's raw zone imported, then `weatherpipe consume` pointed at the same cluster and
topic, against the real local Kafka: the consumer goes on after the imported offsets, and the
raw zone holds every record of the topic exactly once."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest
from confluent_kafka import Consumer, TopicPartition

from tests import kafka_topics
from tests.conftest import as_env
from tests.rawzone_files import event
from weatherpipe.rawzone import listing
from weatherpipe.settings import Settings

pytestmark = pytest.mark.integration

PARTITIONS = 3
PER_PARTITION = 200
IMPORTED = 120  # the original's raw zone holds each partition's first 120 records


def read_topic(servers: str, topic: str) -> list[dict[str, object]]:
    """Every record of `topic` as the original's consumer wrote it (its line's fields)."""
    consumer = Consumer(
        {"bootstrap.servers": servers, "group.id": "reader", "enable.auto.commit": False}
    )
    consumer.assign([TopicPartition(topic, p, 0) for p in range(PARTITIONS)])
    records: list[dict[str, object]] = []
    deadline = time.monotonic() + 60
    while len(records) < PARTITIONS * PER_PARTITION and time.monotonic() < deadline:
        msg = consumer.poll(1)
        if msg is None or msg.error():
            continue
        key = msg.key()
        records.append(
            {
                "kafka": {
                    "topic": topic,
                    "partition": msg.partition(),
                    "offset": msg.offset(),
                    "timestamp_ms": msg.timestamp()[1],
                    "key": key.decode() if key else None,
                },
                "value": json.loads(msg.value()),
            }
        )
    consumer.close()
    assert len(records) == PARTITIONS * PER_PARTITION
    return records


def test_the_consumer_goes_on_after_the_imported_offsets(
    platform_settings: Settings, unique_name: Callable[[str], str], tmp_path: Path
) -> None:
    servers = platform_settings.kafka_bootstrap_servers
    topic = unique_name("seed_topic")
    values = [
        json.dumps(event("Chicago", f"2024-03-01 {i % 24:02d}:00:00", 1.5, 50, 0, 10)).encode()
        for i in range(PARTITIONS * PER_PARTITION)
    ]
    kafka_topics.create(servers, topic, values, partitions=PARTITIONS)
    records = read_topic(servers, topic)

    # The original's raw zone: the first records of each partition, some twice (a restart).
    held = [r for r in records if r["kafka"]["offset"] < IMPORTED]
    lines = [json.dumps(r) for r in held] + [json.dumps(r) for r in held[100:130]]
    today = datetime.now(UTC).date().isoformat()
    chunk = tmp_path / "seed" / topic / today / "chunk-0001.ndjson"
    chunk.parent.mkdir(parents=True)
    chunk.write_text("".join(x + "\n" for x in lines))

    env = {
        **as_env(platform_settings),
        "RAW_DIR": str(tmp_path / "raw"),
        "KAFKA_TOPIC": topic,
        "KAFKA_GROUP_ID": unique_name("group"),
    }
    run = [sys.executable, "-m", "weatherpipe"]
    done = subprocess.run(
        [*run, "import-raw", str(tmp_path / "seed")], env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert f"resumes at {IMPORTED}" in " ".join(done.stderr.split())
    imported = {raw.path for raw in listing.topic_files(tmp_path / "raw", topic)}

    consumed = subprocess.run(
        [*run, "consume", "--until-idle", "3", "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert consumed.returncode == 0, consumed.stderr
    assert json.loads(consumed.stdout.splitlines()[-1])["messages"] == PARTITIONS * (
        PER_PARTITION - IMPORTED
    )

    stored: Counter[tuple[int, int]] = Counter()
    values_by_key = {}
    for raw in listing.topic_files(tmp_path / "raw", topic):
        if raw.path not in imported:
            assert raw.first_offset == IMPORTED  # the consumer began after the import
        for line in raw.location(tmp_path / "raw").read_bytes().splitlines():
            parsed = orjson.loads(line)
            key = (parsed["kafka"]["partition"], parsed["kafka"]["offset"])
            stored[key] += 1
            values_by_key[key] = parsed["value"]
    assert stored == Counter({(p, o): 1 for p in range(PARTITIONS) for o in range(PER_PARTITION)})
    for r in records:
        k = r["kafka"]
        assert values_by_key[(k["partition"], k["offset"])] == r["value"]
