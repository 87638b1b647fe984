"""The sink on a temp folder, fed with confluent_kafka Message values (no broker): rotation
rules, commit-after-publish, duplicates, and recovery after a process died mid-file."""

from __future__ import annotations

import json
import random
import time
from collections import Counter
from pathlib import Path

import pytest
from confluent_kafka import TIMESTAMP_CREATE_TIME, Message

from tests.short_writes import on_full_disk
from weatherpipe.rawzone import listing, naming, recovery
from weatherpipe.rawzone.lines import LineEncoder
from weatherpipe.rawzone.rotation import RotationPolicy, RotationReason
from weatherpipe.rawzone.sink import RawZoneSink
from weatherpipe.rawzone.writer import FileState, RawZoneWriteError

TOPIC = "weather_data_raw"
DAY_MS = 86_400_000
MARCH_1 = 19_783 * DAY_MS  # 2024-03-01T00:00:00Z


def record(partition: int, offset: int, ts: int = MARCH_1 + 1000) -> Message:
    value = json.dumps({"n": offset}).encode()
    return Message(
        topic=TOPIC,
        partition=partition,
        offset=offset,
        key=b"Chicago",
        value=value,
        timestamp=(TIMESTAMP_CREATE_TIME, ts),
    )


class Commits:
    """Records each commit and checks the published file exists when it happens."""

    def __init__(self, raw_dir: Path) -> None:
        self.raw_dir = raw_dir
        self.calls: list[tuple[int, int, bool]] = []

    def __call__(self, partition: int, next_offset: int, synchronous: bool) -> None:
        highest = recovery.highest_offsets(self.raw_dir, TOPIC)
        assert highest[partition] == next_offset - 1, "committed before the file was published"
        assert recovery.stale_temp_files(self.raw_dir, TOPIC, [partition]) == []
        self.calls.append((partition, next_offset, synchronous))


def make(
    tmp_path: Path, max_bytes: int = 1 << 20, age: float = 3600
) -> tuple[RawZoneSink, Commits]:
    commits = Commits(tmp_path)
    return RawZoneSink(tmp_path, TOPIC, RotationPolicy(max_bytes, age), commits), commits


def stored(raw_dir: Path) -> list[tuple[int, int]]:
    """Every (partition, offset) in the finished files, checked against each file's name."""
    found = []
    for raw in listing.topic_files(raw_dir, TOPIC):
        path = raw.location(raw_dir)
        lines = [json.loads(line) for line in path.read_bytes().splitlines()]
        offsets = [line["kafka"]["offset"] for line in lines]
        assert (offsets[0], offsets[-1]) == (raw.first_offset, raw.last_offset)
        for line in lines:
            assert line["kafka"]["partition"] == raw.partition
            assert path.parent.name == f"date={naming.date_of(line['kafka']['timestamp_ms'])}"
            found.append((raw.partition, line["kafka"]["offset"]))
    return sorted(found)


def test_date_change_finishes_the_file(tmp_path: Path) -> None:
    sink, commits = make(tmp_path)
    sink.assign([0])
    day2 = MARCH_1 + DAY_MS
    sink.write([record(0, 0), record(0, 1), record(0, 2, day2), record(0, 3, MARCH_1 + 5)])
    assert sink.stats.rotations.as_dict()["date"] == 2
    sink.finish_all(RotationReason.SHUTDOWN)
    names = sorted(raw.path for raw in listing.topic_files(tmp_path, TOPIC))
    assert names == [
        f"{TOPIC}/date=2024-03-01/{naming.file_name(TOPIC, 0, 0, 1)}",
        f"{TOPIC}/date=2024-03-01/{naming.file_name(TOPIC, 0, 3, 3)}",
        f"{TOPIC}/date=2024-03-02/{naming.file_name(TOPIC, 0, 2, 2)}",
    ]
    assert [c[1] for c in commits.calls] == [2, 3, 4]
    assert stored(tmp_path) == [(0, 0), (0, 1), (0, 2), (0, 3)]


def test_size_finishes_the_file_once_it_passes_the_limit(tmp_path: Path) -> None:
    sink, commits = make(tmp_path, max_bytes=1000)
    sink.assign([0])
    sink.write([record(0, n) for n in range(100)])
    sink.finish_all(RotationReason.SHUTDOWN)
    files = listing.topic_files(tmp_path, TOPIC)
    sizes = [(raw.location(tmp_path).stat().st_size, raw) for raw in files]
    full = [size for size, raw in sizes if raw.last_offset != 99]
    assert full and all(size >= 1000 for size in full)
    # Each file is just past the limit: one line less would have been under it.
    line = len(files[0].location(tmp_path).read_bytes().splitlines()[0])
    assert all(size < 1000 + line + 1 for size in full)
    counts = sink.stats.rotations.as_dict()
    assert counts["size"] == len(full) and counts["shutdown"] == len(sizes) - len(full)
    assert stored(tmp_path) == [(0, n) for n in range(100)]
    assert commits.calls[-1] == (0, 100, True)


def test_age_finishes_old_files_only(tmp_path: Path) -> None:
    sink, commits = make(tmp_path, age=60)
    sink.assign([0, 1])
    before = time.monotonic()
    sink.write([record(0, 0)])
    after = time.monotonic()
    sink.rotate_expired(before + 59)  # at most 59 s old
    assert sink.stats.files == 0
    sink.rotate_expired(after + 60)  # at least 60 s old
    assert sink.stats.rotations.as_dict()["age"] == 1
    assert commits.calls == [(0, 1, False)]


def test_revoke_publishes_and_commits_synchronously_lose_drops(tmp_path: Path) -> None:
    sink, commits = make(tmp_path)
    sink.assign([0, 1])
    sink.write([record(0, 0), record(1, 0), record(1, 1)])
    sink.revoke([0])
    sink.lose([1])
    assert commits.calls == [(0, 1, True)]
    assert stored(tmp_path) == [(0, 0)]
    assert list(naming.temp_dir(tmp_path).iterdir()) == []
    assert sink.partitions == []
    sink.write([record(1, 2)])  # no longer ours
    assert sink.stats.skipped == 1


def test_offsets_already_stored_are_skipped(tmp_path: Path) -> None:
    sink, _ = make(tmp_path)
    sink.assign([0])
    sink.write([record(0, 0), record(0, 1)])
    sink.write([record(0, 1), record(0, 0), record(0, 2)])  # redelivered after a seek
    assert sink.stats.written == 3
    sink.finish_all(RotationReason.SHUTDOWN)
    assert sink.stats.skipped == 2
    assert stored(tmp_path) == [(0, 0), (0, 1), (0, 2)]


def test_a_process_that_died_mid_file_leaves_nothing_doubled(tmp_path: Path) -> None:
    first, _ = make(tmp_path, max_bytes=500)
    first.assign([0])
    first.write([record(0, n) for n in range(30)])  # some files published, one left open
    published = recovery.highest_offsets(tmp_path, TOPIC)[0]
    assert published < 29
    assert len(recovery.stale_temp_files(tmp_path, TOPIC, [0])) == 1
    # The process is gone without finishing; a new one takes over the partition.
    second, _ = make(tmp_path, max_bytes=500)
    resume = second.assign([0])
    assert resume == {0: published + 1}
    assert second.stats.stale_temp_files_removed == 1
    # Kafka redelivers from the resume offset (and, defensively, a little before it).
    second.write([record(0, n) for n in range(published - 2, 40)])
    second.finish_all(RotationReason.SHUTDOWN)
    assert stored(tmp_path) == [(0, n) for n in range(40)]
    assert list(naming.temp_dir(tmp_path).iterdir()) == []


def test_missing_or_absurd_timestamps_go_by_arrival_date(tmp_path: Path) -> None:
    sink, _ = make(tmp_path)
    sink.assign([0])
    no_time = Message(topic=TOPIC, partition=0, offset=0, value=b"{}", timestamp=(0, -1))
    sink.write([no_time, record(0, 1, ts=2**62)])
    sink.finish_all(RotationReason.SHUTDOWN)
    (raw,) = listing.topic_files(tmp_path, TOPIC)
    lines = [json.loads(line) for line in raw.location(tmp_path).read_bytes().splitlines()]
    assert [line["kafka"]["timestamp_ms"] for line in lines] == [None, None]


def test_value_errors_are_counted_when_their_file_is_published(tmp_path: Path) -> None:
    sink, _ = make(tmp_path)
    sink.assign([0])
    odd = [
        Message(topic=TOPIC, partition=0, offset=0, value=b"\xff", timestamp=(1, MARCH_1)),
        Message(topic=TOPIC, partition=0, offset=1, value=b"", timestamp=(1, MARCH_1)),
        Message(topic=TOPIC, partition=0, offset=2, value=None, timestamp=(1, MARCH_1)),
    ]
    sink.write(odd)
    assert sink.stats.value_errors == {}
    sink.finish_all(RotationReason.SHUTDOWN)
    assert sink.stats.value_errors == {"not_utf8": 1, "invalid_json": 2}
    assert sink.stats.messages == 3


def test_column_path_writes_the_same_files_as_the_record_path(tmp_path: Path) -> None:
    """Runs of clean records are written column-wise; runs with a marked value, a missing
    timestamp, a date change or a redelivery go record by record. Both must give the same
    files, byte for byte, with the same rotations."""
    rng = random.Random(5)
    odd_values = [b"not json", b"\xff\xfe", b"", None, b'{"a":\n1}', b'{"caf\xc3\xa9":1}']
    batches: list[list[Message]] = []
    next_offset = {0: 0, 1: 0}
    for _ in range(25):
        batch = []
        for _ in range(rng.randint(1, 40)):
            partition = rng.choice([0, 1])
            offset = next_offset[partition]
            next_offset[partition] += rng.choice([1, 1, 1, 2])  # gaps, as after compaction
            message = record(partition, offset, MARCH_1 + rng.choice([0, 0, 0, 1, 2]) * DAY_MS)
            if rng.random() < 0.05:
                message.set_value(rng.choice(odd_values))  # type: ignore[arg-type]
            if rng.random() < 0.02:
                message = Message(
                    topic=TOPIC,
                    partition=partition,
                    offset=offset,
                    value=b"{}",
                    timestamp=(0, -1),
                )
            batch.append(message)
        if rng.random() < 0.1 and batch:
            batch.append(batch[0])  # redelivered
        batches.append(batch)

    def files_of(raw_dir: Path, split: bool) -> tuple[dict[str, bytes], dict[str, int]]:
        sink, _ = make(raw_dir, max_bytes=700)
        if split:  # one record per call and no column path: the record-by-record reference
            sink._encoder.clean_lines = lambda *args: None  # type: ignore[method-assign]
        sink.assign([0, 1])
        for batch in batches:
            sink.write(batch)
        sink.finish_all(RotationReason.SHUTDOWN)
        return (
            {
                raw.name.name: raw.location(raw_dir).read_bytes()
                for raw in listing.topic_files(raw_dir, TOPIC)
            },
            sink.stats.rotations.as_dict(),
        )

    columns = files_of(tmp_path / "columns", split=False)
    records = files_of(tmp_path / "records", split=True)
    assert columns == records
    assert columns[1]["size"] > 5 and columns[1]["date"] > 5, columns[1]


def test_a_full_disk_drops_that_file_unpublished_and_publishes_the_others(
    tmp_path: Path,
) -> None:
    sink, commits = make(tmp_path)
    sink.assign([0, 1])
    sink.write([record(0, 0), record(1, 0), record(0, 1), record(1, 1)])
    failing = sink._partitions[0].file
    assert failing is not None
    on_full_disk(failing, room=10)
    sink.write([record(0, 2)])  # buffered: the disk is only reached when the file is finished
    with pytest.raises(RawZoneWriteError, match=r"Could not flush raw file .*partition 0"):
        sink.finish_all(RotationReason.SHUTDOWN)
    assert failing.state is FileState.POISONED
    assert stored(tmp_path) == [(1, 0), (1, 1)]
    assert commits.calls == [(1, 2, True)]
    assert list(naming.temp_dir(tmp_path).iterdir()) == []
    sink.revoke([0, 1])  # nothing left to publish: the poisoned file is gone
    assert commits.calls == [(1, 2, True)]
    # The next start resumes partition 1 after its file, partition 0 where the group says.
    assert make(tmp_path)[0].assign([0, 1]) == {1: 2}


def test_a_failed_write_forgets_the_file_and_raises(tmp_path: Path) -> None:
    sink, commits = make(tmp_path, max_bytes=1 << 30)
    sink.assign([0])
    sink.write([record(0, 0)])
    file = sink._partitions[0].file
    assert file is not None
    on_full_disk(file, room=100)
    big = [record(0, n) for n in range(1, 30_000)]  # more than the write buffer
    with pytest.raises(RawZoneWriteError, match="Could not write to raw file"):
        sink.write(big)
    assert sink._partitions[0].file is None
    sink.finish_all(RotationReason.SHUTDOWN)  # nothing to publish
    assert stored(tmp_path) == [] and commits.calls == []


def test_a_newest_file_published_half_written_is_set_aside_and_its_records_stored_again(
    tmp_path: Path,
) -> None:
    """What an older version left after a full disk: a file whose name ends before its
    content, which goes on with more records and a line cut in the middle."""
    first, _ = make(tmp_path, max_bytes=600)
    first.assign([0])
    first.write([record(0, n) for n in range(20)])
    first.finish_all(RotationReason.SHUTDOWN)
    files = sorted(listing.topic_files(tmp_path, TOPIC), key=lambda raw: raw.last_offset)
    name, before = files[-1], files[-2]
    newest = name.location(tmp_path)
    extra = b"".join(
        LineEncoder(TOPIC).line(
            LineEncoder(TOPIC).prefix(0), n, MARCH_1 + 1000, b"Chicago", b"{}", Counter()
        )
        for n in range(20, 23)
    )
    newest.write_bytes(newest.read_bytes() + extra + b'{"kafka":{"topic":"weather_da')
    second, _ = make(tmp_path, max_bytes=600)
    assert second.assign([0]) == {0: before.last_offset + 1}
    assert second.stats.damaged_files_set_aside == 1
    assert (naming.damaged_dir(tmp_path) / newest.relative_to(tmp_path)).exists()
    second.write([record(0, n) for n in range(name.first_offset, 25)])
    second.finish_all(RotationReason.SHUTDOWN)
    assert stored(tmp_path) == [(0, n) for n in range(25)]
