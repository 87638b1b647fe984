"""`weatherpipe consume` against the real local Kafka: every (partition, offset) exactly once,
whatever happens to the process (SIGKILL, SIGTERM, a second consumer joining the group)."""

from __future__ import annotations

import json
import random
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from pathlib import Path

import orjson
import pytest
from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition
from confluent_kafka.admin import NewTopic

from tests.conftest import as_env
from weatherpipe.events import Reason
from weatherpipe.kafka.admin import admin_client
from weatherpipe.kafka.consumer import KafkaConsumer
from weatherpipe.kafka.producer import ProducerConfig, RecordProducer
from weatherpipe.kafka.security import KafkaConnection
from weatherpipe.kafka.topic_views import group_lag, partition_offsets
from weatherpipe.rawzone import naming, recovery
from weatherpipe.rawzone.consume_loop import ConsumeOptions, raw_zone_consumer
from weatherpipe.rawzone.rotation import RotationPolicy
from weatherpipe.rawzone.sink import SinkStats
from weatherpipe.settings import Settings

pytestmark = pytest.mark.integration

Record = tuple[bytes | None, bytes | None]  # key, value


def create_topic(settings: Settings, topic: str, partitions: int) -> None:
    admin = admin_client(KafkaConnection(settings.kafka_bootstrap_servers))
    admin.create_topics([NewTopic(topic, num_partitions=partitions, replication_factor=1)])[
        topic
    ].result(30)


def produce(settings: Settings, topic: str, records: Iterable[Record]) -> list[tuple[int, int]]:
    """Write `records`; returns the (partition, offset) of each, as Kafka acknowledged it."""
    delivered: list[tuple[int, int]] = []
    failed: list[str] = []

    def on_delivery(err: object, msg: object) -> None:
        if err is not None:
            failed.append(str(err))
        else:
            delivered.append((msg.partition(), msg.offset()))  # type: ignore[attr-defined]

    producer = Producer(
        {
            "bootstrap.servers": settings.kafka_bootstrap_servers,
            "linger.ms": 5,
            "message.max.bytes": 2_000_000,
        }
    )
    for key, value in records:
        while True:
            try:
                producer.produce(topic, value, key, on_delivery=on_delivery)
                break
            except BufferError:
                producer.poll(0.05)
        producer.poll(0)
    assert producer.flush(60) == 0
    assert not failed, failed
    return delivered


def events(start: int, count: int) -> list[Record]:
    cities = ("Chicago", "Houston", "Phoenix", "Dallas", "San Jose", "New York", "Austin")
    return [
        (
            # Many distinct keys, so every partition gets records.
            f"{cities[n % len(cities)]}-{n % 101}".encode(),
            orjson.dumps(
                {
                    "location": cities[n % len(cities)],
                    "timestamp": "2024-03-01 14:05:09",
                    "temperature_c": n % 40,
                    "humidity_pct": 50.5,
                    "precipitation_mm": 0.0,
                    "wind_speed_kmh": 10.0,
                    "n": n,
                }
            ),
        )
        for n in range(start, start + count)
    ]


def stored(raw_dir: Path, topic: str) -> list[tuple[int, int]]:
    """Every (partition, offset) in the batch-visible files, each line checked against its
    file's name and date folder."""
    found: list[tuple[int, int]] = []
    for path in sorted(raw_dir.glob(f"{topic}/date=*/*.ndjson")):
        name = naming.parse_file_name(path.name)
        assert name is not None, f"{path} is not a raw file name"
        lines = path.read_bytes().splitlines()
        offsets = []
        for raw in lines:
            kafka = orjson.loads(raw)["kafka"]
            assert (kafka["topic"], kafka["partition"]) == (topic, name.partition)
            assert path.parent.name == f"date={naming.date_of(kafka['timestamp_ms'])}"
            offsets.append(kafka["offset"])
        assert offsets == sorted(set(offsets)), f"{path}: offsets not increasing"
        assert (offsets[0], offsets[-1]) == (name.first_offset, name.last_offset)
        found.extend((name.partition, offset) for offset in offsets)
    return sorted(found)


def assert_exactly_once(raw_dir: Path, topic: str, delivered: list[tuple[int, int]]) -> None:
    found = stored(raw_dir, topic)
    duplicates = [item for item, n in Counter(found).items() if n > 1]
    assert not duplicates, f"{len(duplicates)} offsets stored twice, e.g. {duplicates[:5]}"
    missing = sorted(set(delivered) - set(found))
    assert not missing, f"{len(missing)} offsets missing, e.g. {missing[:5]}"
    assert found == sorted(delivered)
    # Nothing half-written is left over, and nothing but finished files is in the batch's glob.
    assert [p.name for p in naming.temp_dir(raw_dir).iterdir()] == []


def committed(settings: Settings, group: str, topic: str, partitions: int) -> dict[int, int]:
    with KafkaConsumer(KafkaConnection(settings.kafka_bootstrap_servers), group) as consumer:
        return consumer.committed(topic, list(range(partitions)), timeout=30)


def consume_env(settings: Settings, raw_dir: Path, topic: str, group: str) -> dict[str, str]:
    env = as_env(settings)
    env.update(RAW_DIR=str(raw_dir), KAFKA_TOPIC=topic, KAFKA_GROUP_ID=group)
    return env


def start_consume(env: dict[str, str], *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "weatherpipe", "consume", "--json", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def summary_of(proc: subprocess.Popen[str], timeout: float = 120) -> dict[str, object]:
    out, err = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, err
    result: dict[str, object] = json.loads(out.strip().splitlines()[-1])
    return result


def wait_until_writing(proc: subprocess.Popen[str], raw_dir: Path, timeout: float = 60) -> None:
    """Until `proc` has a temp file open (it joined the group and is storing records)."""
    marker = f"+{proc.pid}-"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        folder = naming.temp_dir(raw_dir)
        if folder.is_dir() and any(marker in path.name for path in folder.iterdir()):
            return
        assert proc.poll() is None, proc.communicate()[1]
        time.sleep(0.01)
    raise AssertionError(f"consumer {proc.pid} wrote nothing in {timeout} s")


def in_background(work: Callable[[], None]) -> threading.Thread:
    thread = threading.Thread(target=work, daemon=True)
    thread.start()
    return thread


@pytest.mark.reliability
def test_sigkill_at_random_moments_stores_every_offset_exactly_once(
    platform_settings: Settings, unique_name: Callable[[str], str], tmp_path: Path
) -> None:
    topic, group, partitions, total = unique_name("kill"), unique_name("g"), 3, 200_000
    create_topic(platform_settings, topic, partitions)
    delivered: list[tuple[int, int]] = []

    def produce_slowly() -> None:  # records keep arriving while the consumer is killed
        for start in range(0, total, 10_000):
            delivered.extend(produce(platform_settings, topic, events(start, 10_000)))
            time.sleep(0.2)

    producer = in_background(produce_slowly)
    env = consume_env(platform_settings, tmp_path, topic, group)
    rng = random.Random()
    for _ in range(6):
        proc = start_consume(env, "--rotate-mb", "0.25")
        wait_until_writing(proc, tmp_path)
        time.sleep(rng.uniform(0, 0.6))
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=30)
        assert proc.returncode == -signal.SIGKILL
    producer.join()
    assert len(delivered) == total
    # The killed runs left half-written temp files behind; a clean run to the end removes them
    # and stores their records again, from Kafka.
    left_over = len(list(naming.temp_dir(tmp_path).iterdir()))
    final = summary_of(start_consume(env, "--until-idle", "3", "--rotate-mb", "0.25"))
    assert final["stale_temp_files_removed"] == left_over
    assert_exactly_once(tmp_path, topic, delivered)
    highest = recovery.highest_offsets(tmp_path, topic)
    assert committed(platform_settings, group, topic, partitions) == {
        p: last + 1 for p, last in highest.items()
    }


def test_two_consumers_in_one_group_share_the_partitions_exactly_once(
    platform_settings: Settings, unique_name: Callable[[str], str], tmp_path: Path
) -> None:
    topic, group, partitions = unique_name("pair"), unique_name("g"), 6
    create_topic(platform_settings, topic, partitions)
    delivered: list[tuple[int, int]] = []
    both_writing = threading.Event()

    def produce_until_both_write() -> None:
        # Records keep arriving until the second consumer has joined and stored some, and a
        # while after: the group rebalances under load, whatever the machine's speed.
        start, after = 0, 0
        while after < 5:
            delivered.extend(produce(platform_settings, topic, events(start, 2_000)))
            start += 2_000
            after += both_writing.is_set()
            time.sleep(0.3)

    producer = in_background(produce_until_both_write)
    env = consume_env(platform_settings, tmp_path, topic, group)
    args = ("--until-idle", "5", "--rotate-mb", "0.1")
    first = start_consume(env, *args)
    wait_until_writing(first, tmp_path)
    second = start_consume(env, *args)  # joins: the group rebalances
    wait_until_writing(second, tmp_path)
    both_writing.set()
    producer.join()
    summaries = [summary_of(first), summary_of(second)]
    assert_exactly_once(tmp_path, topic, delivered)
    counts = [int(s["messages"]) for s in summaries]  # type: ignore[call-overload]
    assert all(n > 0 for n in counts), counts
    assert sum(counts) == len(delivered)
    assert sum(int(s["rotations"]["revoke"]) for s in summaries) > 0  # type: ignore[index]


def test_sigterm_finishes_the_files_commits_and_exits_zero(
    platform_settings: Settings, unique_name: Callable[[str], str], tmp_path: Path
) -> None:
    topic, group = unique_name("term"), unique_name("g")
    create_topic(platform_settings, topic, 2)
    delivered = produce(platform_settings, topic, events(0, 5_000))
    env = consume_env(platform_settings, tmp_path, topic, group)
    # Long-running mode with limits it never reaches: only the signal can finish the files.
    proc = start_consume(env, "--rotate-mb", "100", "--rotate-seconds", "3600")
    wait_until_writing(proc, tmp_path)
    proc.send_signal(signal.SIGTERM)
    summary = summary_of(proc)
    found = stored(tmp_path, topic)
    assert summary["messages"] == len(found) > 0
    assert summary["rotations"] == {
        "date": 0,
        "size": 0,
        "age": 0,
        "shutdown": summary["files"],
        "revoke": 0,
    }
    # What it stored is a gap-free start of each partition, committed right after it.
    by_partition: dict[int, list[int]] = {}
    for partition, offset in found:
        by_partition.setdefault(partition, []).append(offset)
    assert all(offsets == list(range(len(offsets))) for offsets in by_partition.values())
    assert committed(platform_settings, group, topic, 2) == {
        p: len(offsets) for p, offsets in by_partition.items()
    }
    # The next run continues exactly where it stopped.
    summary_of(start_consume(env, "--until-idle", "1"))
    assert_exactly_once(tmp_path, topic, delivered)


def test_workers_share_the_partitions_exactly_once_and_add_up_their_figures(
    platform_settings: Settings, unique_name: Callable[[str], str], tmp_path: Path
) -> None:
    topic, group = unique_name("workers"), unique_name("g")
    create_topic(platform_settings, topic, 3)
    delivered = produce(platform_settings, topic, events(0, 30_000))
    env = consume_env(platform_settings, tmp_path, topic, group)
    proc = start_consume(env, "--workers", "5", "--until-idle", "3", "--rotate-mb", "0.5")
    out, err = proc.communicate(timeout=180)
    assert proc.returncode == 0, err
    assert "3 partitions: running that many workers instead of 5" in err
    summary = json.loads(out.strip().splitlines()[-1])
    assert summary["workers"] == 3
    assert_exactly_once(tmp_path, topic, delivered)
    assert summary["messages"] == len(delivered)
    assert summary["files"] == len(list(tmp_path.glob(f"{topic}/date=*/*.ndjson")))
    assert summary["bytes"] == sum(p.stat().st_size for p in tmp_path.glob(f"{topic}/**/*.ndjson"))
    highest = recovery.highest_offsets(tmp_path, topic)
    assert committed(platform_settings, group, topic, 3) == {
        p: last + 1 for p, last in highest.items()
    }


def test_sigterm_to_the_parent_makes_every_worker_finish_its_files(
    platform_settings: Settings, unique_name: Callable[[str], str], tmp_path: Path
) -> None:
    topic, group = unique_name("wterm"), unique_name("g")
    create_topic(platform_settings, topic, 2)
    delivered = produce(platform_settings, topic, events(0, 6_000))
    env = consume_env(platform_settings, tmp_path, topic, group)
    proc = start_consume(env, "--workers", "2", "--rotate-mb", "100", "--rotate-seconds", "3600")
    deadline = time.monotonic() + 90
    while len(list(naming.temp_dir(tmp_path).glob("*"))) < 2:  # both workers hold a file
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()[1]
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    summary = summary_of(proc)
    found = stored(tmp_path, topic)
    assert summary["messages"] == len(found) > 0
    assert summary["rotations"]["shutdown"] == summary["files"]  # type: ignore[index]
    assert {partition for partition, _ in found} == {0, 1}
    summary_of(start_consume(env, "--until-idle", "1"))
    assert_exactly_once(tmp_path, topic, delivered)


def consume_in_process(
    settings: Settings, raw_dir: Path, topic: str, group: str, batch_size: int = 10_000
) -> SinkStats:
    """One run of the consume loop in this process until idle (no interpreter start-up)."""
    options = ConsumeOptions(
        raw_dir, topic, RotationPolicy.from_limits(32, 300), batch_size, until_idle=1.5
    )
    connection = KafkaConnection(settings.kafka_bootstrap_servers)
    with raw_zone_consumer(connection, group, options) as consumer:
        return consumer.run().sink


def test_files_win_over_the_group_offset_which_applies_only_without_files(
    platform_settings: Settings, unique_name: Callable[[str], str], tmp_path: Path
) -> None:
    topic, group = unique_name("win"), unique_name("g")
    create_topic(platform_settings, topic, 1)
    delivered = produce(platform_settings, topic, events(0, 100))
    assert consume_in_process(platform_settings, tmp_path, topic, group).messages == 100

    def set_group_offset(offset: int) -> None:
        with KafkaConsumer(
            KafkaConnection(platform_settings.kafka_bootstrap_servers), group
        ) as consumer:
            consumer.commit({(topic, 0): offset}, asynchronous=False)

    # The group offset is rewound (a commit lost after the rename looks like this): the files
    # still say where to resume, so nothing is stored twice.
    set_group_offset(0)
    delivered += produce(platform_settings, topic, events(100, 50))
    assert consume_in_process(platform_settings, tmp_path, topic, group).messages == 50
    assert_exactly_once(tmp_path, topic, delivered)

    # Without any file the group's committed offset applies.
    fresh = tmp_path / "fresh"
    set_group_offset(120)
    assert consume_in_process(platform_settings, fresh, topic, group).messages == 30
    assert stored(fresh, topic) == [(0, n) for n in range(120, 150)]


def test_odd_values_are_stored_marked_and_counted(
    platform_settings: Settings, unique_name: Callable[[str], str], tmp_path: Path
) -> None:
    topic, group = unique_name("odd"), unique_name("g")
    create_topic(platform_settings, topic, 1)
    megabyte = orjson.dumps({"location": "Chicago", "blob": "x" * 1_000_000})[:1_000_000]
    megabyte_json = b'{"blob":"' + b"y" * (1_000_000 - 11) + b'"}'
    odd: list[tuple[Record, object, str | None]] = [
        ((b"Chicago", b'{"location":"Chicago"}'), {"location": "Chicago"}, None),
        ((None, b'{"no":"key"}'), {"no": "key"}, None),
        ((b"k", b"not json at all"), "not json at all", Reason.INVALID_JSON),
        ((b"k", b"\xff\xfe\x00binary"), "//4AYmluYXJ5", Reason.NOT_UTF8),
        ((b"k", b""), "", Reason.INVALID_JSON),
        ((b"k", None), None, Reason.INVALID_JSON),
        ((b"k", b'{\n  "pretty": [1,\n 2]\n}'), {"pretty": [1, 2]}, None),
        ((b"k", b"12.5"), 12.5, None),
        ((b"\x80\x81", b"{}"), {}, None),
        ((b"k", megabyte_json), orjson.loads(megabyte_json), None),
        ((b"k", megabyte), megabyte.decode(), Reason.INVALID_JSON),  # cut: not JSON any more
    ]
    delivered = produce(platform_settings, topic, [record for record, _, _ in odd])
    stats = consume_in_process(platform_settings, tmp_path, topic, group, batch_size=3)
    assert stats.messages == len(odd)
    assert stats.value_errors == {Reason.INVALID_JSON: 4, Reason.NOT_UTF8: 1}
    assert_exactly_once(tmp_path, topic, delivered)
    (path,) = tmp_path.glob(f"{topic}/date=*/*.ndjson")
    lines = [orjson.loads(line) for line in path.read_bytes().splitlines()]
    assert len(lines) == len(odd)
    for line, ((key, _), value, error) in zip(lines, odd, strict=True):
        assert line["value"] == value
        assert line.get("value_error") == error
        if key is None:
            assert line["kafka"]["key"] is None
        elif key == b"\x80\x81":
            assert line["kafka"]["key_encoding"] == "base64"
        else:
            assert line["kafka"]["key"] == key.decode()


def read_committed(settings: Settings, topic: str) -> list[tuple[int, int]]:
    """The (partition, offset) of every record a reader of committed records gets, read to each
    partition's end."""
    consumer = Consumer(
        {
            "bootstrap.servers": settings.kafka_bootstrap_servers,
            "group.id": "reader",
            "enable.auto.commit": False,
            "enable.partition.eof": True,
            "isolation.level": "read_committed",
        }
    )
    found: list[tuple[int, int]] = []
    try:
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        consumer.assign([TopicPartition(topic, p, 0) for p in partitions])
        at_end: set[int] = set()
        deadline = time.monotonic() + 60
        while len(at_end) < len(partitions):
            assert time.monotonic() < deadline, f"{topic} not read to its end"
            for msg in consumer.consume(10_000, timeout=1):
                error = msg.error()
                if error is not None:
                    assert error.code() == KafkaError._PARTITION_EOF, error
                    at_end.add(msg.partition())
                    continue
                found.append((msg.partition(), msg.offset()))
    finally:
        consumer.close()
    return sorted(found)


def test_records_of_transactions_are_stored_once_and_their_markers_are_no_lag(
    platform_settings: Settings, unique_name: Callable[[str], str], tmp_path: Path
) -> None:
    topic, group = unique_name("txn"), unique_name("g")
    create_topic(platform_settings, topic, 3)
    config = ProducerConfig(
        KafkaConnection(platform_settings.kafka_bootstrap_servers), unique_name("txid")
    )
    with RecordProducer(config) as producer:
        producer.init()
        # Three transactions: each ends with a marker in every partition it wrote to.
        for start in (0, 300, 600):
            producer.begin()
            records = events(start, 300)
            values, keys = [v or b"" for _, v in records], [k or b"" for k, _ in records]
            assert producer.send_many(topic, values, keys) == 300
            producer.commit()
    delivered = read_committed(platform_settings, topic)
    assert len(delivered) == 900
    kafka = KafkaConnection(platform_settings.kafka_bootstrap_servers)
    ends = sum(p.end for p in partition_offsets(kafka, topic, 10))
    assert ends > 900  # the records and the markers: the offsets are not dense
    env = consume_env(platform_settings, tmp_path, topic, group)
    # Idle after the last record, the raw zone lacks no record: only the markers after it.
    summary = summary_of(start_consume(env, "--until-idle", "2"), timeout=300)
    assert summary["messages"] == 900
    assert_exactly_once(tmp_path, topic, delivered)
    # What AKHQ and the dashboard show: the group is at the end of every partition, markers
    # included, not one behind.
    lag = group_lag(kafka, topic, group, 10)
    assert [(p.partition, p.lag) for p in lag] == [(p.partition, 0) for p in lag]
    assert all(p.committed == p.end for p in lag)
