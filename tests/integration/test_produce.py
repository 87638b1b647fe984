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
from confluent_kafka import Consumer, KafkaError, KafkaException, Message, TopicPartition

from tests.conftest import as_env
from weatherpipe import datagen
from weatherpipe.events import CSV_TO_EVENT, MEASURES, Reason
from weatherpipe.ingest import daily_state
from weatherpipe.ingest.csv_to_topic import (
    TRANSACTION_RECORDS,
    daily_state_path,
    pending,
    prepare_topics,
    produce_all,
    produce_daily,
    producer_config,
)
from weatherpipe.kafka.admin import cluster_metadata
from weatherpipe.kafka.producer import RecordProducer, TransactionAbortedError
from weatherpipe.kafka.security import KafkaConnection
from weatherpipe.settings import Settings

pytestmark = pytest.mark.integration

Record = tuple[int, str, dict[str, object]]  # partition, key, value
RESUME_ROWS = 2_000_000  # the interrupted run: still sending seconds after its first commit
ROWS = 500_000  # two producer transactions (of about 250,000 records each) and the ledger's


def read_topic(settings: Settings, topic: str) -> list[Record]:
    """Every committed record of `topic`, partition by partition in offset order (the markers
    that end the producer's transactions take offsets, so it reads to each partition's end
    rather than counting offsets)."""
    consumer = Consumer(
        {
            "bootstrap.servers": settings.kafka_bootstrap_servers,
            "group.id": "reader",
            "enable.auto.commit": False,
            "enable.partition.eof": True,
        }
    )
    try:
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        records: list[Record] = []
        for p in sorted(partitions):
            low, _ = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
            consumer.assign([TopicPartition(topic, p, low)])
            deadline, at_end = time.monotonic() + 60, False
            while not at_end:
                assert time.monotonic() < deadline, f"{topic} [{p}] not read to its end in 60 s"
                for msg in consumer.consume(10_000, timeout=1):
                    error = msg.error()
                    if error is not None and error.code() == EOF:
                        at_end = True  # (while a transaction is open: its first offset)
                        break
                    records.append(_record(p, msg))
        return records
    finally:
        consumer.close()


EOF = KafkaError._PARTITION_EOF


def _record(partition: int, msg: Message) -> Record:
    assert msg.error() is None, msg.error()
    return partition, msg.key().decode(), json.loads(msg.value())


def count_records(settings: Settings, topic: str) -> int:
    """Committed records of `topic` (0 while it does not exist)."""
    metadata = cluster_metadata(KafkaConnection(settings.kafka_bootstrap_servers), 10)
    if metadata is None or topic not in metadata.topics:
        return 0
    return len(read_topic(settings, topic))


def end_offsets(settings: Settings, topic: str) -> int:
    """The sum of the topic's end offsets as a reader of committed records sees them: they
    move when a transaction commits (by its records and a marker per partition)."""
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
    assert count_records(topic_settings, topic + ".dlq") == 0
    records = read_topic(topic_settings, topic)
    assert len(records) == 100_000
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
        assert count_records(topic_settings, topic) == total
        state = daily_state.load(daily_state_path(topic_settings), topic)
        assert (str(state.last_day), state.days_sent) == (day, run)

    again = produce_daily(topic_settings, path)
    assert again.ok and again.day is None and again.sent == again.quarantined == 0
    assert count_records(topic_settings, topic) == total
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


def _wait_for_committed(settings: Settings, topic: str, count: int) -> None:
    """Until `topic` holds `count` committed records."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if count_records(settings, topic) >= count:
                return
        except (KeyError, KafkaException):
            pass  # topic not created yet, or its leader not elected yet
        time.sleep(0.02)
    raise AssertionError(f"{topic} did not get {count} committed records in 120 s")


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
    # Bad rows at the start (delivered before the interruption) and at the end (after it);
    # rows enough for many transactions and seconds of sending, so the run is still sending
    # when the signal arrives, however fast the machine.
    rows_sent = RESUME_ROWS
    generated = tmp_path / "generated.csv"
    datagen.write_csv(generated, rows_sent, seed=11)
    header, *rows = generated.read_text(encoding="utf-8").splitlines()
    bad = [raw for raw, _, _ in INJECTED]
    path = tmp_path / "big.csv"
    path.write_text("\n".join([header, *bad[:3], *rows, *bad[3:]]) + "\n", encoding="utf-8")
    topic = topic_settings.kafka_topic
    command = [sys.executable, "-m", "weatherpipe", "produce", "--csv", str(path)]
    proc = subprocess.Popen(command, env=as_env(topic_settings), stderr=subprocess.PIPE, text=True)
    # The first transaction holds the first blocks' rows and the three bad rows before them:
    # once they are committed, so are those rows, and the run is stopped with more to send.
    _wait_for_committed(topic_settings, topic + ".dlq", 3)
    proc.send_signal(stop_signal)
    _, stderr = proc.communicate(timeout=120)
    delivered = count_records(topic_settings, topic)
    assert 0 < delivered < rows_sent
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
    assert f"sent {rows_sent:,} to {topic}, quarantined {len(bad)} to" in summary
    assert f"({delivered + 3:,} of these delivered by an interrupted earlier run)" in summary
    records = read_topic(topic_settings, topic)
    assert len(records) == rows_sent
    expected = expected_events(generated)
    assert Counter(canonical(v) for _, _, v in records) == Counter(map(canonical, expected))
    dead = [v for _, _, v in read_topic(topic_settings, topic + ".dlq")]
    assert sorted(v["raw"] for v in dead) == sorted(bad)

    # Finished: nothing is left to resume, and the data set is not sent a second time.
    assert not pending(topic_settings, path)
    refused = subprocess.run(
        command, env=as_env(topic_settings), capture_output=True, text=True, timeout=300
    )
    assert refused.returncode == 1 and "Nothing was sent" in refused.stderr
    assert count_records(topic_settings, topic) == rows_sent


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
    assert count_records(topic_settings, topic) == day_rows
    state = daily_state.load(daily_state_path(topic_settings), topic)
    assert state.last_day is None  # not recorded: the run did not finish

    again = produce_daily(topic_settings, path)
    assert again.ok and again.day == first.day
    assert (again.sent, again.resumed) == (day_rows, day_rows)
    assert count_records(topic_settings, topic) == day_rows  # nothing sent twice
    state = daily_state.load(daily_state_path(topic_settings), topic)
    assert (state.last_day, state.days_sent) == (first.day, 1)

    after = produce_daily(topic_settings, path)
    assert after.ok and after.resumed == 0 and after.day is not None and after.day > first.day
    assert count_records(topic_settings, topic) == day_rows + after.sent


def test_a_daily_run_waits_for_an_interrupted_full_run_to_be_finished(
    topic_settings: Settings, tmp_path: Path
) -> None:
    path = tmp_path / "days.csv"
    datagen.write_csv(path, 5_000, seed=6)
    topic = topic_settings.kafka_topic
    stop = StopOnceSent()
    first = produce_all(topic_settings, path, stop, stop.requested)
    assert first.interrupted and first.sent > 0
    delivered = count_records(topic_settings, topic)

    command = [sys.executable, "-m", "weatherpipe", "produce", "--daily", "--csv", str(path)]
    refused = subprocess.run(
        command, env=as_env(topic_settings), capture_output=True, text=True, timeout=120
    )
    message = " ".join(refused.stderr.split())
    assert refused.returncode != 0, refused.stderr
    assert f"weatherpipe produce --all --csv {path.resolve()}" in message
    assert count_records(topic_settings, topic) == delivered  # the daily run sent nothing
    assert pending(topic_settings, path)

    finished = produce_all(topic_settings, path)
    assert finished.ok and (finished.sent, finished.resumed) == (5_000, delivered)
    assert Counter(canonical(v) for _, _, v in read_topic(topic_settings, topic)) == Counter(
        map(canonical, expected_events(path))
    )
    daily = produce_daily(topic_settings, path)  # now the daily run may start
    assert daily.ok and daily.sent > 0


def last_record_offsets(settings: Settings, topic: str) -> dict[int, int]:
    """The offset of the last committed record of each partition of `topic` that has one, as
    a reader finds it record by record."""
    consumer = Consumer(
        {
            "bootstrap.servers": settings.kafka_bootstrap_servers,
            "group.id": "last-offsets",
            "enable.auto.commit": False,
            "enable.partition.eof": True,
        }
    )
    try:
        last: dict[int, int] = {}
        for p in sorted(consumer.list_topics(topic, timeout=10).topics[topic].partitions):
            low, _ = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
            consumer.assign([TopicPartition(topic, p, low)])
            deadline, at_end = time.monotonic() + 60, False
            while not at_end:
                assert time.monotonic() < deadline, f"{topic} [{p}] not read to its end in 60 s"
                for msg in consumer.consume(10_000, timeout=1):
                    error = msg.error()
                    if error is not None and error.code() == EOF:
                        at_end = True
                        break
                    assert error is None, error
                    last[p] = msg.offset()
        return last
    finally:
        consumer.close()


class _Handed:
    """Progress that counts the rows handed to Kafka."""

    def __init__(self) -> None:
        self.handed = 0

    def rows(self, count: int) -> None:
        self.handed += count

    def position(self, byte_offset: int) -> None:
        pass


def test_a_run_reports_the_offset_of_its_last_record_in_each_partition(
    topic_settings: Settings, tmp_path: Path
) -> None:
    # The lab flow's consumer stops at these offsets, so they must be exact: after a run of
    # several transactions, after a second run on top of it, and after the run that finishes
    # an interrupted one.
    rows = TRANSACTION_RECORDS + 20_000  # two transactions, a marker between them
    path = tmp_path / "weather.csv"
    datagen.write_csv(path, rows, seed=31)
    topic = topic_settings.kafka_topic
    first = produce_all(topic_settings, path)
    assert first.ok and first.sent == rows
    assert sorted(first.last_offsets) == [0, 1, 2]
    assert first.last_offsets == last_record_offsets(topic_settings, topic)

    progress = _Handed()
    stopped = produce_all(
        topic_settings, path, progress, lambda: progress.handed >= 50_000, again=True
    )
    assert stopped.interrupted and 0 < stopped.sent < rows
    assert stopped.last_offsets == {}  # only a run that ends with every row committed says

    finished = produce_all(topic_settings, path, again=True)
    assert finished.ok and finished.sent == rows and finished.resumed == stopped.sent
    assert count_records(topic_settings, topic) == 2 * rows
    after = last_record_offsets(topic_settings, topic)
    assert finished.last_offsets == after
    assert all(after[p] > first.last_offsets[p] for p in after)


def test_full_local_queue_is_waited_out_and_every_record_committed(
    topic_settings: Settings,
) -> None:
    topic = topic_settings.kafka_topic
    prepare_topics(topic_settings)
    tiny = dataclasses.replace(producer_config(topic_settings), queue_messages=50)
    values = [f'{{"n":{n}}}'.encode() for n in range(20_000)]
    keys = [str(n % 7) for n in range(20_000)]
    with RecordProducer(tiny) as producer:
        producer.init()
        producer.begin()
        assert producer.send_many(topic, values, keys) == 20_000
        producer.commit()
    assert sorted(v["n"] for _, _, v in read_topic(topic_settings, topic)) == list(range(20_000))


def test_an_undeliverable_transaction_is_aborted_and_shows_nothing(
    topic_settings: Settings,
) -> None:
    prepare_topics(topic_settings)
    missing = topic_settings.kafka_topic + "_missing"  # the broker does not auto-create
    quick = dataclasses.replace(producer_config(topic_settings), delivery_timeout_ms=1_500)
    with RecordProducer(quick) as producer:
        producer.init()
        producer.begin()
        producer.send_many(topic_settings.kafka_topic, [b"{}"] * 10, ["k"] * 10)
        assert producer.send_many(missing, [b"{}"] * 10, ["k"] * 10) == 10
        with pytest.raises(TransactionAbortedError, match="aborted"):
            producer.commit()
    # The records of the aborted transaction that did reach the broker are never read.
    assert count_records(topic_settings, topic_settings.kafka_topic) == 0


def _produce(settings: Settings, path: Path, *flags: str, **env: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "weatherpipe", "produce", "--csv", str(path), *flags],
        env={**as_env(settings), **env},
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.mark.parametrize("machines", ["one machine", "two machines"])
def test_two_runs_of_one_file_at_once_send_it_once(
    topic_settings: Settings, tmp_path: Path, machines: str
) -> None:
    """On one machine the second run is turned away by the topic's lock. On two (two state
    folders), the second run, started once the first has committed some rows, fences the
    first and sends what it did not commit (or, should the first be done by then, finds the
    data set sent in full). Either way the topic holds the file once."""
    path = tmp_path / "weather.csv"
    datagen.write_csv(path, ROWS, seed=21)
    first = _produce(topic_settings, path)
    if machines == "one machine":
        second = _produce(topic_settings, path)
    else:
        _wait_for_records(topic_settings, topic_settings.kafka_topic, 0)
        second = _produce(topic_settings, path, STATE_DIR=str(tmp_path / "other-host"))
    outcomes = [
        (run.wait(timeout=300), " ".join(run.communicate()[1].split())) for run in [first, second]
    ]
    assert sorted(code for code, _ in outcomes)[0] == 0, outcomes
    for code, message in outcomes:
        if code != 0:
            turned_away = (
                "Another `weatherpipe produce` is sending to" in message
                if machines == "one machine"
                else "took over" in message or "Nothing was sent" in message
            )
            assert code == 1 and turned_away and "Traceback" not in message, message
    records = read_topic(topic_settings, topic_settings.kafka_topic)
    assert Counter(canonical(v) for _, _, v in records) == Counter(
        map(canonical, expected_events(path))
    )


def test_a_second_run_of_the_same_content_is_refused_unless_again(
    topic_settings: Settings, tmp_path: Path
) -> None:
    path = tmp_path / "weather.csv"
    datagen.write_csv(path, 20_000, seed=22)
    topic = topic_settings.kafka_topic
    first = _produce(topic_settings, path)
    assert first.wait(timeout=300) == 0, first.communicate()[1]
    copy = tmp_path / "copy.csv"  # the same content under another name is the same data set
    copy.write_bytes(path.read_bytes())
    refused = _produce(topic_settings, copy)
    message = " ".join(refused.communicate(timeout=300)[1].split())
    assert refused.returncode == 1
    assert f"{copy} was sent to {topic} before" in message
    assert f"(then {path.resolve()})" in message and "20,000 rows (20,000 to" in message
    assert "UTC on" in message and "Nothing was sent" in message and "--again" in message
    assert "Traceback" not in message
    assert count_records(topic_settings, topic) == 20_000

    again = _produce(topic_settings, copy, "--again")
    assert again.wait(timeout=300) == 0, again.communicate()[1]
    events = Counter(map(canonical, expected_events(path)))
    found = Counter(canonical(v) for _, _, v in read_topic(topic_settings, topic))
    assert found == events + events


def test_a_row_larger_than_a_message_is_dead_lettered_and_the_rest_sent_and_resumed(
    topic_settings: Settings, tmp_path: Path
) -> None:
    generated = tmp_path / "generated.csv"
    datagen.write_csv(generated, 50_000, seed=23)
    header, *rows = generated.read_text(encoding="utf-8").splitlines()
    huge = "Dallas,2024-01-02 10:00:00,5.0,50.0,1.0,0." + "0" * 5_000_000 + "1"
    path = tmp_path / "huge.csv"
    path.write_text("\n".join([header, *rows[:25_000], huge, *rows[25_000:]]) + "\n")
    topic = topic_settings.kafka_topic
    stop = StopOnceSent()  # interrupted at once, then resumed: both runs meet the huge row
    first = produce_all(topic_settings, path, stop, stop.requested)
    assert first.interrupted and first.failed == 0
    again = produce_all(topic_settings, path)
    assert again.ok and (again.sent, again.quarantined) == (50_000, 1), again.line()
    (dead,) = [v for _, _, v in read_topic(topic_settings, topic + ".dlq")]
    assert (dead["line"], dead["reason"], dead["truncated"]) == (25_002, Reason.TOO_LARGE, True)
    assert dead["raw"] == huge[: len(dead["raw"])] and 0 < len(dead["raw"]) < 10_000
    assert f"{len(huge.encode()):,} bytes" in dead["detail"]
    records = read_topic(topic_settings, topic)
    assert Counter(canonical(v) for _, _, v in records) == Counter(
        map(canonical, expected_events(generated))
    )


def test_huge_rows_of_every_shape_are_dead_lettered_in_a_message_each(
    topic_settings: Settings, tmp_path: Path
) -> None:
    generated = tmp_path / "generated.csv"
    datagen.write_csv(generated, 2_000, seed=29)
    header, *rows = generated.read_text(encoding="utf-8").splitlines()
    rest = ",2024-01-02 10:00:00,5.0,50.0,1.0,0.1"
    huge = {
        # 5 MB: a city, a quoted field over two lines, an unclosed quote.
        "D" * 5_000_000 + rest: Reason.TOO_LARGE,
        '"Dal\nlas' + "x" * 5_000_000 + '"' + rest: Reason.TOO_LARGE,
        '"Dallas' + "x" * 5_000_000 + rest: Reason.UNCLOSED_QUOTE,
        # Short enough for a message, but its error quotes the field, NUL bytes escaped.
        "Dallas," + "\x00" * 900_000 + ",5.0,50.0,1.0,0.1": Reason.BAD_TIMESTAMP,
    }
    lines, expected = [header], {}
    for n, text in enumerate(huge):
        lines += rows[n * 500 : (n + 1) * 500]
        physical = sum(line.count("\n") + 1 for line in lines)  # a quoted row spans two
        expected[physical + 1] = (text, huge[text])
        lines.append(text)
    path = tmp_path / "huge.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    summary = produce_all(topic_settings, path)
    assert summary.ok and (summary.sent, summary.quarantined) == (2_000, 4), summary.line()
    dead = {
        v["line"]: v for _, _, v in read_topic(topic_settings, topic_settings.kafka_topic + ".dlq")
    }
    assert {line: v["reason"] for line, v in dead.items()} == {
        line: reason for line, (_, reason) in expected.items()
    }
    for line, (text, _) in expected.items():
        kept = dead[line]["raw"]
        assert dead[line]["truncated"] and 0 < len(kept) <= 4_096
        assert text.startswith(kept)
        assert len(dead[line]["detail"]) <= 4_096
