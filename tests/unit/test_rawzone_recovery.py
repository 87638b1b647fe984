"""Recovery on a temp folder: the files own the offsets, stale temp files are removed."""

from __future__ import annotations

from pathlib import Path

from weatherpipe.rawzone import naming, recovery

TOPIC = "weather_data_raw"


def put(raw_dir: Path, date: str, partition: int, first: int, last: int) -> Path:
    path = naming.final_path(raw_dir, TOPIC, date, partition, first, last)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"{}\n")
    return path


def put_temp(raw_dir: Path, partition: int, first: int, owner: str, topic: str = TOPIC) -> Path:
    path = naming.temp_dir(raw_dir) / naming.temp_name(topic, partition, first, owner)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b'{"half a li')
    return path


def test_empty_raw_zone_resumes_nowhere(tmp_path: Path) -> None:
    assert recovery.highest_offsets(tmp_path, TOPIC) == {}
    assert recovery.resume_offsets(tmp_path, TOPIC, [0, 1]) == {}
    assert recovery.stale_temp_files(tmp_path, TOPIC, [0]) == []


def test_resume_after_the_highest_last_offset_across_dates(tmp_path: Path) -> None:
    put(tmp_path, "2024-03-01", 0, 0, 99)
    put(tmp_path, "2024-03-02", 0, 100, 149)
    put(tmp_path, "2024-03-01", 0, 150, 152)  # a late record of the day before
    put(tmp_path, "2024-03-01", 1, 0, 9)
    put(tmp_path, "2024-03-01", 10, 0, 1000)
    assert recovery.highest_offsets(tmp_path, TOPIC) == {0: 152, 1: 9, 10: 1000}
    assert recovery.resume_offsets(tmp_path, TOPIC, [0, 1, 2]) == {0: 153, 1: 10}


def test_other_topics_and_foreign_files_are_ignored(tmp_path: Path) -> None:
    put(tmp_path, "2024-03-01", 0, 0, 5)
    other = naming.final_path(tmp_path, "other", "2024-03-01", 0, 0, 999)
    other.parent.mkdir(parents=True)
    other.write_bytes(b"")
    # A file of another topic misplaced in our folder, a README, a folder that is no date.
    folder = naming.date_dir(tmp_path, TOPIC, "2024-03-01")
    (folder / naming.file_name("other", 0, 0, 999)).write_bytes(b"")
    (folder / "README.txt").write_text("x")
    (tmp_path / TOPIC / "notes").mkdir()
    (tmp_path / TOPIC / "notes" / naming.file_name(TOPIC, 0, 0, 999)).write_bytes(b"")
    assert recovery.highest_offsets(tmp_path, TOPIC) == {0: 5}
    assert [p.name for p, _ in recovery.raw_files(tmp_path, TOPIC)] == [
        naming.file_name(TOPIC, 0, 0, 5)
    ]


def test_stale_temp_files_of_the_assigned_partitions_only_are_removed(tmp_path: Path) -> None:
    mine = [put_temp(tmp_path, 1, 0, "111-aa"), put_temp(tmp_path, 1, 500, "222-bb")]
    others = [
        put_temp(tmp_path, 11, 0, "111-aa"),  # partition 11 is not partition 1
        put_temp(tmp_path, 2, 0, "111-aa"),
        put_temp(tmp_path, 1, 0, "111-aa", topic="weather_data_raw2"),
    ]
    removed = recovery.remove_stale_temp_files(tmp_path, TOPIC, [1])
    assert removed == sorted(mine)
    assert not any(p.exists() for p in mine)
    assert all(p.exists() for p in others)


def test_temp_files_never_count_as_stored(tmp_path: Path) -> None:
    put(tmp_path, "2024-03-01", 0, 0, 9)
    put_temp(tmp_path, 0, 10, "1-a")
    assert recovery.resume_offsets(tmp_path, TOPIC, [0]) == {0: 10}
