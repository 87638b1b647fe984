"""The producer against the real local broker: counts, contents, keys, DLQ, daily mode."""

from __future__ import annotations

import csv
import dataclasses
import json
import signal
import subprocess
import sys
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from pathlib import Path

import pytest
from confluent_kafka import Consumer, KafkaException, TopicPartition

from tests.conftest import as_env
from weatherpipe import datagen
from weatherpipe.events import CSV_TO_EVENT, MEASURES, Reason
from weatherpipe.ingest import daily_state
from weatherpipe.ingest.csv_to_topic import (
    daily_state_path,
    prepare_topics,
    produce_all,
    produce_daily,
    producer_config,
)
from weatherpipe.ingest.resume import pending
from weatherpipe.kafka.admin import cluster_metadata
from weatherpipe.kafka.producer import RecordProducer
from weatherpipe.kafka.security import KafkaConnection
from weatherpipe.settings import Settings

pytestmark = pytest.mark.integration

Record = tuple[int, str, dict[str, object]]  # partition, key, value


def read_topic(settings: Settings, topic: str) -> list[Record]:
    """Every record of `topic`, partition by partition in offset order."""
    consumer = Consumer(
        {
            "bootstrap.servers": settings.kafka_bootstrap_servers,
            "group.id": "reader",
            "enable.auto.commit": False,
        }
    )
    try:
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        records: list[Record] = []
        for p in sorted(partitions):
            low, high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
            consumer.assign([TopicPartition(topic, p, low)])
            got = 0
            while got < high - low:
                for msg in consumer.consume(min(10_000, high - low - got), timeout=5):
                    assert msg.error() is None
                    records.append((p, msg.key().decode(), json.loads(msg.value())))
                    got += 1
        return records
    finally:
        consumer.close()


def end_offsets(settings: Settings, topic: str) -> int:
    consumer = Consumer({"bootstrap.servers": settings.kafka_bootstrap_servers, "group.id": "x"})
    try:
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        return sum(
            consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
            for p in partitions
        )
    finally:
        consumer.close()


def expected_events(path: Path) -> list[dict[str, object]]:
    """The events the CSV should become, computed independently with the csv module."""
    with path.open(encoding="utf-8-sig", newline="") as handle:
        rows = list(csv.DictReader(handle))
    numeric = {m.field for m in MEASURES}
    return [
        {
            CSV_TO_EVENT[c]: (float(v) if CSV_TO_EVENT[c] in numeric else v.strip())
            for c, v in row.items()
        }
        for row in rows
    ]


def canonical(event: dict[str, object]) -> str:
    return json.dumps(event, sort_keys=True)


@pytest.fixture
def topic_settings(
    platform_settings: Settings, unique_name: Callable[[str], str], tmp_path: Path
) -> Settings:
    return platform_settings.model_copy(
        update={
            "kafka_topic": unique_name("weather"),
            "produce_daily_state": tmp_path / "daily.json",
        }
    )


def test_cli_produces_100k_generated_rows_exactly_once(
    topic_settings: Settings, tmp_path: Path
) -> None:
    path = tmp_path / "weather.csv"
    datagen.write_csv(path, 100_000, seed=3)
    done = subprocess.run(
        [sys.executable, "-m", "weatherpipe", "produce", "--csv", str(path)],
        env=as_env(topic_settings),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    summary = " ".join(done.stderr.split())
    assert "read 100,000 rows" in summary and "sent 100,000 to" in summary
    assert "quarantined 0" in summary and "failed 0" in summary

    topic = topic_settings.kafka_topic
    assert end_offsets(topic_settings, topic) == 100_000
    assert end_offsets(topic_settings, topic + ".dlq") == 0
    records = read_topic(topic_settings, topic)
    expected = expected_events(path)
    assert Counter(canonical(v) for _, _, v in records) == Counter(map(canonical, expected))
    assert all(
        key == f"{value['location']}|{str(value['timestamp'])[:10]}" for _, key, value in records
    )
    assert {type(value["temperature_c"]) for _, _, value in records} == {float}
    # Each (city, day) lives in one partition, and its events keep the file's order there.
    partitions_of = defaultdict(set)
    for partition, key, _ in records:
        partitions_of[key].add(partition)
    assert all(len(p) == 1 for p in partitions_of.values())
    assert len(partitions_of) == len({(e["location"], str(e["timestamp"])[:10]) for e in expected})
    for key in partitions_of:
        sent = [canonical(v) for _, k, v in records if k == key]
        city, day = key.split("|")
        assert sent == [
            canonical(e)
            for e in expected
            if e["location"] == city and str(e["timestamp"]).startswith(day)
        ]
    # The (city, day) keys spread the records evenly over every partition.
    sizes = Counter(p for p, _, _ in records)
    assert sorted(sizes) == list(range(3))
    assert max(sizes.values()) <= 1.1 * min(sizes.values()), sizes


INJECTED = [
    ("Chicago,2024-03-01 14:05:09,3.1,71.2,0.4", Reason.WRONG_FIELD_COUNT, None),
    ("Chicago,2024-03-01 14:05:09,warm,71.2,0.4,18.9", Reason.NOT_NUMERIC, "temperature_c"),
    ("Chicago,2024-03-01 14:05:09,3.1,nan,0.4,18.9", Reason.NOT_FINITE, "humidity_pct"),
    ("Chicago,2024-03-01 14:05:09,3.1,71.2,Infinity,18.9", Reason.NOT_FINITE, "precipitation_mm"),
    ("Chicago,2024-02-30 14:05:09,3.1,71.2,0.4,18.9", Reason.BAD_TIMESTAMP, "timestamp"),
    (",2024-03-01 14:05:09,3.1,71.2,0.4,18.9", Reason.EMPTY_LOCATION, "location"),
    ("Chicago,2024-03-01 14:05:09,3.1,140,0.4,18.9", Reason.OUT_OF_RANGE, "humidity_pct"),
]


def test_bad_rows_go_to_the_dlq_and_valid_rows_all_arrive(
    topic_settings: Settings, tmp_path: Path
) -> None:
    clean = tmp_path / "clean.csv"
    datagen.write_csv(clean, 5_000, seed=5)
    lines = clean.read_text(encoding="utf-8").splitlines()
    expected_dlq = []
    for n, (raw, reason, field) in enumerate(INJECTED):
        at = 100 + 500 * n  # 0-based index in `lines` -> physical line at + 1
        lines.insert(at, raw)
        expected_dlq.append((at + 1, raw, reason, field))
    dirty = tmp_path / "dirty.csv"
    dirty.write_text("\r\n".join(lines) + "\r\n", encoding="utf-8-sig")

    summary = produce_all(topic_settings, dirty)
    assert summary.ok
    assert (summary.rows_read, summary.sent, summary.quarantined, summary.failed) == (
        5_000 + len(INJECTED),
        5_000,
        len(INJECTED),
        0,
    )
    dlq = read_topic(topic_settings, topic_settings.kafka_topic + ".dlq")
    assert [(v["line"], v["raw"], v["reason"], v["field"]) for _, _, v in dlq] == expected_dlq
    assert all(v["source"] == str(dirty) and v["detail"] for _, _, v in dlq)
    assert [key for _, key, _ in dlq] == [str(line) for line, *_ in expected_dlq]
    records = read_topic(topic_settings, topic_settings.kafka_topic)
    assert Counter(canonical(v) for _, _, v in records) == Counter(
        map(canonical, expected_events(clean))
    )


def test_wrong_header_sends_nothing_and_says_why(topic_settings: Settings, tmp_path: Path) -> None:
    path = tmp_path / "bad_header.csv"
    path.write_text("Location,Date,Temperature_C\nChicago,2024-01-01,3\n", encoding="utf-8")
    done = subprocess.run(
        [sys.executable, "-m", "weatherpipe", "produce", "--csv", str(path)],
        env=as_env(topic_settings),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 1
    message = " ".join(done.stderr.split())
    assert f"{path}, line 1: wrong header" in message and "missing column(s)" in message
    metadata = cluster_metadata(KafkaConnection(topic_settings.kafka_bootstrap_servers), 10)
    assert metadata is not None and topic_settings.kafka_topic not in metadata.topics


def test_daily_mode_sends_one_new_day_per_run_and_never_twice(
    topic_settings: Settings, tmp_path: Path
) -> None:
    full = tmp_path / "full.csv"
    datagen.write_csv(full, 20_000, seed=9)
    header, *rows = full.read_text(encoding="utf-8").splitlines()
    days = ["2024-01-01", "2024-01-02", "2024-01-03"]
    kept = [r for r in rows if r.split(",")[1][:10] in days]
    bad_day2 = "Dallas,2024-01-02 10:00:00,3.1,71.2,0.4,999"
    undated = "Dallas,2024-13-02 10:00:00,3.1,71.2,0.4,9"
    path = tmp_path / "three_days.csv"
    path.write_text("\n".join([header, *kept, bad_day2, undated]) + "\n", encoding="utf-8")
    per_day = Counter(r.split(",")[1][:10] for r in kept)

    topic = topic_settings.kafka_topic
    total = 0
    for run, day in enumerate(days, start=1):
        summary = produce_daily(topic_settings, path)
        assert summary.ok and str(summary.day) == day
        assert summary.sent == per_day[day]
        assert summary.quarantined == {1: 1, 2: 1, 3: 0}[run]  # undated row, then bad_day2
        total += per_day[day]
        assert end_offsets(topic_settings, topic) == total
        state = daily_state.load(daily_state_path(topic_settings), topic)
        assert (str(state.last_day), state.days_sent) == (day, run)

    again = produce_daily(topic_settings, path)
    assert again.ok and again.day is None and again.sent == again.quarantined == 0
    assert end_offsets(topic_settings, topic) == total
    records = read_topic(topic_settings, topic)
    sent_days = Counter(str(v["timestamp"])[:10] for _, _, v in records)
    assert sent_days == per_day
    dlq = [v for _, _, v in read_topic(topic_settings, topic + ".dlq")]
    assert [(v["raw"], v["reason"]) for v in dlq] == [
        (undated, Reason.BAD_TIMESTAMP),
        (bad_day2, Reason.OUT_OF_RANGE),
    ]


def _wait_for_records(settings: Settings, topic: str, more_than: int) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if end_offsets(settings, topic) > more_than:
                return
        except (KeyError, KafkaException):
            pass  # topic not created yet, or its leader not elected yet
        time.sleep(0.02)
    raise AssertionError(f"{topic} got no more than {more_than} records in 120 s")


class StopOnceSent:
    """A progress sink that asks the run to stop once rows have been handed to Kafka."""

    def __init__(self) -> None:
        self._handed_over = threading.Event()

    def rows(self, count: int) -> None:
        self._handed_over.set()

    def position(self, byte_offset: int) -> None:
        pass

    def requested(self) -> bool:
        return self._handed_over.is_set()


@pytest.mark.parametrize("stop_signal", [signal.SIGINT, signal.SIGKILL], ids=["ctrl-c", "kill"])
def test_an_interrupted_run_is_resumed_without_a_row_lost_or_doubled(
    topic_settings: Settings, tmp_path: Path, stop_signal: signal.Signals
) -> None:
    # Bad rows at the start (delivered before the interruption) and at the end (after it).
    generated = tmp_path / "generated.csv"
    datagen.write_csv(generated, 250_000, seed=11)
    header, *rows = generated.read_text(encoding="utf-8").splitlines()
    bad = [raw for raw, _, _ in INJECTED]
    path = tmp_path / "big.csv"
    path.write_text("\n".join([header, *bad[:3], *rows, *bad[3:]]) + "\n", encoding="utf-8")
    topic = topic_settings.kafka_topic
    command = [sys.executable, "-m", "weatherpipe", "produce", "--csv", str(path)]
    proc = subprocess.Popen(command, env=as_env(topic_settings), stderr=subprocess.PIPE, text=True)
    _wait_for_records(topic_settings, topic, 1000)
    proc.send_signal(stop_signal)
    _, stderr = proc.communicate(timeout=120)
    delivered = end_offsets(topic_settings, topic)
    assert 0 < delivered < 250_000
    if stop_signal == signal.SIGINT:
        summary = " ".join(stderr.split())
        assert proc.returncode == 130, stderr
        assert "[interrupted]" in summary and "failed 0" in summary
        assert f" sent {delivered:,} to" in summary
    else:
        assert proc.returncode == -signal.SIGKILL

    again = subprocess.run(
        command, env=as_env(topic_settings), capture_output=True, text=True, timeout=300
    )
    summary = " ".join(again.stderr.split())
    assert again.returncode == 0, again.stderr
    assert f"sent 250,000 to {topic}, quarantined {len(bad)} to" in summary
    assert f"({delivered + 3:,} of these delivered by an interrupted earlier run)" in summary
    records = read_topic(topic_settings, topic)
    assert len(records) == 250_000
    expected = expected_events(generated)
    assert Counter(canonical(v) for _, _, v in records) == Counter(map(canonical, expected))
    dead = [v for _, _, v in read_topic(topic_settings, topic + ".dlq")]
    assert sorted(v["raw"] for v in dead) == sorted(bad)

    # Finished: nothing is left to resume, the next run is a new one.
    assert not pending(topic_settings.state_dir, topic, path)


def test_daily_run_stopped_after_delivery_records_its_day_without_resending(
    topic_settings: Settings, tmp_path: Path
) -> None:
    path = tmp_path / "days.csv"
    datagen.write_csv(path, 5_000, seed=5)
    topic = topic_settings.kafka_topic
    stop = StopOnceSent()  # the run is stopped once the day's rows are handed to Kafka
    first = produce_daily(topic_settings, path, stop, stop.requested)
    assert first.interrupted and not first.ok and first.sent > 0
    day_rows = first.sent
    assert end_offsets(topic_settings, topic) == day_rows
    state = daily_state.load(daily_state_path(topic_settings), topic)
    assert state.last_day is None  # not recorded: the run did not finish

    again = produce_daily(topic_settings, path)
    assert again.ok and again.day == first.day
    assert (again.sent, again.resumed) == (day_rows, day_rows)
    assert end_offsets(topic_settings, topic) == day_rows  # nothing sent twice
    state = daily_state.load(daily_state_path(topic_settings), topic)
    assert (state.last_day, state.days_sent) == (first.day, 1)

    after = produce_daily(topic_settings, path)
    assert after.ok and after.resumed == 0 and after.day is not None and after.day > first.day
    assert end_offsets(topic_settings, topic) == day_rows + after.sent


def test_a_daily_run_waits_for_an_interrupted_full_run_to_be_finished(
    topic_settings: Settings, tmp_path: Path
) -> None:
    path = tmp_path / "days.csv"
    datagen.write_csv(path, 5_000, seed=6)
    topic = topic_settings.kafka_topic
    stop = StopOnceSent()
    first = produce_all(topic_settings, path, stop, stop.requested)
    assert first.interrupted and first.sent > 0
    delivered = end_offsets(topic_settings, topic)

    command = [sys.executable, "-m", "weatherpipe", "produce", "--daily", "--csv", str(path)]
    refused = subprocess.run(
        command, env=as_env(topic_settings), capture_output=True, text=True, timeout=120
    )
    message = " ".join(refused.stderr.split())
    assert refused.returncode != 0, refused.stderr
    assert f"weatherpipe produce --all --csv {path.resolve()}" in message
    assert end_offsets(topic_settings, topic) == delivered  # the daily run sent nothing
    assert pending(topic_settings.state_dir, topic, path)

    finished = produce_all(topic_settings, path)
    assert finished.ok and (finished.sent, finished.resumed) == (5_000, delivered)
    assert Counter(canonical(v) for _, _, v in read_topic(topic_settings, topic)) == Counter(
        map(canonical, expected_events(path))
    )
    daily = produce_daily(topic_settings, path)  # now the daily run may start
    assert daily.ok and daily.sent > 0


def test_full_local_queue_is_waited_out_and_every_report_counted(topic_settings: Settings) -> None:
    topic = topic_settings.kafka_topic
    prepare_topics(topic_settings)
    tiny = dataclasses.replace(producer_config(topic_settings), queue_messages=50)
    producer = RecordProducer(tiny, topic)
    values = [f'{{"n":{n}}}'.encode() for n in range(20_000)]
    keys = [str(n % 7) for n in range(20_000)]
    assert producer.send_many(topic, values, keys) == 20_000
    assert producer.flush() == 0
    counter = producer.counter(topic)
    assert (counter.delivered, counter.failed) == (20_000, 0)
    assert sorted(v["n"] for _, _, v in read_topic(topic_settings, topic)) == list(range(20_000))


def test_undeliverable_records_are_counted_as_failed(topic_settings: Settings) -> None:
    missing = topic_settings.kafka_topic  # never created; the broker does not auto-create
    quick = dataclasses.replace(producer_config(topic_settings), delivery_timeout_ms=1_500)
    producer = RecordProducer(quick, missing)
    assert producer.send_many(missing, [b"{}"] * 10, ["k"] * 10) == 10
    assert producer.flush(30) == 0
    counter = producer.counter(missing)
    assert (counter.delivered, counter.failed) == (0, 10)
    assert counter.errors and missing in counter.errors[0]
