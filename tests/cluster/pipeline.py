"""What the cluster tests look at: `weatherpipe` runs as subprocesses with a job's settings, the
rows of a CSV, of a topic and of a raw zone as multisets, partition leaders and the processes of
the cluster's nodes."""

from __future__ import annotations

import contextlib
import csv
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import orjson
from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition

from tests.conftest import as_env
from weatherpipe.events import CSV_COLUMNS, EVENT_FIELDS
from weatherpipe.kafka.admin import admin_client
from weatherpipe.kafka.security import kafka_connection
from weatherpipe.platform.local_cluster import LocalCluster, Node
from weatherpipe.rawzone import naming
from weatherpipe.settings import Settings

Row = tuple[object, ...]


def start(settings: Settings, *args: str, **env: str) -> subprocess.Popen[str]:
    """`weatherpipe <args>` with the job's settings (and `env` on top) in its environment."""
    return subprocess.Popen(
        [sys.executable, "-m", "weatherpipe", *args],
        env={**as_env(settings), **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def run(settings: Settings, *args: str, timeout: float = 300, **env: str) -> tuple[int, str]:
    """Run `weatherpipe <args>` to its end; (exit status, stderr)."""
    proc = start(settings, *args, **env)
    try:
        _, err = proc.communicate(timeout=timeout)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return proc.returncode, err


def csv_rows(path: Path) -> Counter[Row]:
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.reader(handle)
        assert next(reader) == list(CSV_COLUMNS)
        return Counter((r[0], r[1], *map(float, r[2:])) for r in reader)


def event_row(value: dict[str, object]) -> Row:
    return tuple(value[f] for f in EVENT_FIELDS)


def end_offsets(settings: Settings, topic: str) -> dict[int, int]:
    """Each partition's end offset, read as the administrator ({} while the topic is missing
    or a partition has no leader yet)."""
    with watermarks(settings, topic) as read:
        return read()


@contextlib.contextmanager
def watermarks(
    settings: Settings, topic: str, uncommitted: bool = False
) -> Iterator[Callable[[], dict[int, int]]]:
    """Reads `topic`'s end offsets over one connection, as often as asked: a connection of its
    own for each read (TLS, then a login) takes longer than some sends it is to catch. By
    default the end of what is committed (an open transaction holds it back); `uncommitted`:
    the end of what is written."""
    isolation = "read_uncommitted" if uncommitted else "read_committed"
    consumer = Consumer(
        {
            **kafka_connection(settings, "admin").config(),
            "group.id": "offsets",
            "isolation.level": isolation,
        }
    )

    def read() -> dict[int, int]:
        try:
            meta = consumer.list_topics(topic, timeout=10).topics.get(topic)
            if meta is None or meta.error is not None:
                return {}
            return {
                p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
                for p in meta.partitions
            }
        except KafkaException:
            return {}

    try:
        yield read
    finally:
        consumer.close()


def topic_records(settings: Settings, topic: str) -> list[tuple[int, int, bytes]]:
    """The (partition, offset, value) of every committed record of `topic`, read to each
    partition's end as the administrator (offsets are not dense: transaction markers take
    some)."""
    ends = end_offsets(settings, topic)
    consumer = Consumer(
        {
            **kafka_connection(settings, "admin").config(),
            "group.id": f"reader-{topic}",
            "enable.auto.commit": False,
            "enable.partition.eof": True,
        }
    )
    found: list[tuple[int, int, bytes]] = []
    try:
        consumer.assign([TopicPartition(topic, p, 0) for p, end in ends.items() if end > 0])
        remaining = {p for p, end in ends.items() if end > 0}
        deadline = time.monotonic() + 120
        while remaining and time.monotonic() < deadline:
            for msg in consumer.consume(10_000, timeout=1):
                error = msg.error()
                if error is not None:
                    assert error.code() == KafkaError._PARTITION_EOF, error
                    remaining.discard(msg.partition())
                    continue
                found.append((msg.partition(), msg.offset(), msg.value()))
        assert not remaining, f"partitions not read to their end: {remaining}"
    finally:
        consumer.close()
    return found


def topic_rows(settings: Settings, topic: str) -> Counter[Row]:
    """Every committed record of `topic`, as rows."""
    return Counter(event_row(orjson.loads(v)) for _, _, v in topic_records(settings, topic))


def topic_offsets(settings: Settings, topic: str) -> set[tuple[int, int]]:
    """The (partition, offset) of every committed record of `topic`."""
    return {(p, o) for p, o, _ in topic_records(settings, topic)}


def raw_zone(raw_dir: Path, topic: str) -> tuple[Counter[tuple[int, int]], Counter[Row]]:
    """The (partition, offset) of every line of the finished raw files, and their rows."""
    offsets: Counter[tuple[int, int]] = Counter()
    rows: Counter[Row] = Counter()
    for path in raw_dir.glob(f"{topic}/date=*/*.ndjson"):
        name = naming.parse_file_name(path.name)
        assert name is not None, f"{path} is not a raw file name"
        for line in path.read_bytes().splitlines():
            record = orjson.loads(line)
            offsets[(record["kafka"]["partition"], record["kafka"]["offset"])] += 1
            rows[event_row(record["value"])] += 1
    return offsets, rows


def leaders(settings: Settings, topic: str) -> dict[int, int]:
    """Partition -> id of the broker leading it."""
    metadata = admin_client(kafka_connection(settings, "admin"), log_level=0).list_topics(
        topic, timeout=10
    )
    return {p.id: p.leader for p in metadata.topics[topic].partitions.values()}


def in_sync_replicas(settings: Settings, topic: str) -> dict[int, list[int]]:
    metadata = admin_client(kafka_connection(settings, "admin"), log_level=0).list_topics(
        topic, timeout=10
    )
    return {p.id: sorted(p.isrs) for p in metadata.topics[topic].partitions.values()}


def kill(cluster: LocalCluster, node: Node) -> None:
    """SIGKILL a node's process, as a crash or an OOM killer would, and wait until it is gone."""
    pid = node.pid()
    assert pid is not None, f"node {node.node_id} is not running"
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 30
    while node.pid() is not None:
        assert time.monotonic() < deadline, f"node {node.node_id} survived SIGKILL"
        time.sleep(0.05)
    assert cluster.node(node.node_id).pid() is None
