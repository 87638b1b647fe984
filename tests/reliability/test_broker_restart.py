"""The broker stopped (controlled) or killed (SIGKILL) and restarted while `weatherpipe produce`
sends a file: the producer exits 0 and every row is on the topic exactly once."""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import orjson
import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition

from tests.conftest import as_env, wait_for
from weatherpipe.datagen import write_csv
from weatherpipe.events import CSV_COLUMNS, EVENT_FIELDS
from weatherpipe.kafka.admin import cluster_metadata
from weatherpipe.kafka.security import KafkaConnection
from weatherpipe.platform.local_kafka import LocalKafka
from weatherpipe.settings import Settings

pytestmark = [pytest.mark.integration, pytest.mark.reliability]

ROWS = 60_000
PARTITIONS = 3
Row = tuple[str, str, float, float, float, float]


@pytest.fixture(scope="module")
def weather_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("csv") / "weather.csv"
    write_csv(path, ROWS, seed=8)
    return path


def csv_rows(path: Path) -> Counter[Row]:
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.reader(handle)
        assert next(reader) == list(CSV_COLUMNS)
        return Counter((r[0], r[1], *map(float, r[2:])) for r in reader)  # type: ignore[misc]


def end_offsets(settings: Settings, topic: str) -> int:
    """The sum of the topic's end offsets, counting records of transactions not committed yet
    (0 while the topic does not exist yet)."""
    consumer = Consumer(
        {
            "bootstrap.servers": settings.kafka_bootstrap_servers,
            "group.id": "offsets",
            "isolation.level": "read_uncommitted",
        }
    )
    try:
        meta = consumer.list_topics(topic, timeout=10).topics.get(topic)
        if meta is None or meta.error is not None:
            return 0
        return sum(
            consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
            for p in meta.partitions
        )
    except KafkaException:  # a new topic's partitions have no leader for a moment
        return 0
    finally:
        consumer.close()


def read_topic(settings: Settings, topic: str) -> Counter[Row]:
    """Every committed record of `topic`, read from the beginning up to each partition's end
    (reported by the client: the markers that end transactions take offsets too)."""
    consumer = Consumer(
        {
            "bootstrap.servers": settings.kafka_bootstrap_servers,
            "group.id": f"reader-{topic}",
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            "enable.partition.eof": True,
        }
    )
    found: Counter[Row] = Counter()
    try:
        consumer.assign([TopicPartition(topic, p, 0) for p in range(PARTITIONS)])
        remaining = set(range(PARTITIONS))
        deadline = time.monotonic() + 120
        while remaining and time.monotonic() < deadline:
            for msg in consumer.consume(10_000, timeout=1):
                error = msg.error()
                if error is not None and error.code() == KafkaError._PARTITION_EOF:
                    remaining.discard(msg.partition())
                    continue
                assert error is None, error
                value = orjson.loads(msg.value())
                found[tuple(value[f] for f in EVENT_FIELDS)] += 1  # type: ignore[arg-type]
        assert not remaining, f"partitions not read to their end: {remaining}"
    finally:
        consumer.close()
    return found


@pytest.mark.parametrize("how", ["stop", "sigkill"])
def test_broker_down_during_produce_every_row_exactly_once(
    own_broker: Settings, weather_csv: Path, unique_name: Callable[[str], str], how: str
) -> None:
    topic = unique_name(f"broker_{how}")
    env = as_env(own_broker)
    # Small batches: the send takes long enough for the broker to go down in the middle of it.
    env.update(
        CSV_PATH=str(weather_csv),
        KAFKA_TOPIC=topic,
        KAFKA_PARTITIONS=str(PARTITIONS),
        PRODUCER_BATCH_BYTES="16384",
        PRODUCER_LINGER_MS="1",
    )
    producer = subprocess.Popen(
        [sys.executable, "-m", "weatherpipe", "produce"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    kafka = LocalKafka(own_broker)
    try:
        # Mid-way: some rows are on the topic, most are not yet.
        wait_for(
            lambda: end_offsets(own_broker, topic) >= ROWS // 10, "the first rows on the topic"
        )
        sent_before = end_offsets(own_broker, topic)
        assert producer.poll() is None, "the producer finished before the broker went down"
        assert sent_before < ROWS
        if how == "stop":
            assert kafka.stop()
        else:
            pid = kafka.pid()
            assert pid is not None
            os.kill(pid, signal.SIGKILL)
            wait_for(lambda: kafka.pid() is None, "the killed broker to be gone", 30)
        assert cluster_metadata(KafkaConnection(own_broker.kafka_bootstrap_servers), 1) is None
        # The producer keeps running (retrying) while the broker is away.
        assert producer.poll() is None
        kafka.start(own_broker.startup_timeout)
        _, err = producer.communicate(timeout=300)
    finally:
        if producer.poll() is None:
            producer.kill()
            producer.wait()
    assert producer.returncode == 0, err
    summary = " ".join(err.split())  # the console wraps long lines
    assert f"sent {ROWS:,} to {topic}, quarantined 0" in summary, err
    expected = csv_rows(weather_csv)
    found = read_topic(own_broker, topic)
    assert sum(found.values()) == ROWS
    assert found == expected
