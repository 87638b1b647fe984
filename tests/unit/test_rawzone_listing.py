"""Finished raw files found on disk: only the raw zone's layout counts, dot folders are never
looked into, and each file comes with its parsed name, date folder, size and time."""

from __future__ import annotations

import os
from pathlib import Path

from tests.rawzone_files import Record, event, write_file
from weatherpipe.rawzone import listing, naming

MARCH_1 = 1_709_251_200_000  # 2024-03-01 00:00:00 UTC
MARCH_2 = MARCH_1 + naming.DAY_MS


def record(partition: int, offset: int, timestamp_ms: int = MARCH_1) -> Record:
    return Record(partition, offset, event("A", "2024-03-01 00:00:00", 1, 1, 1, 1), timestamp_ms)


def test_listing_skips_temp_files_and_strangers(tmp_path: Path) -> None:
    path = write_file(tmp_path, "t", [record(0, 5)])
    (tmp_path / ".tmp" / "date=2024-03-01").mkdir(parents=True)
    (tmp_path / ".tmp" / "date=2024-03-01" / path.name).write_text("{}\n")
    (path.parent / "notes.ndjson").write_text("{}\n")
    files = listing.list_files(tmp_path)
    assert [f.path for f in files] == [path.relative_to(tmp_path).as_posix()]
    assert files[0].size_bytes == path.stat().st_size


def test_survey_lists_files_outside_the_layout_apart_and_never_looks_into_dot_folders(
    tmp_path: Path,
) -> None:
    path = write_file(tmp_path, "t", [record(0, 5)])
    strangers = [
        "t/date=2024-03-01/notes.ndjson",
        "weather/2024-03-01/chunk-0001.ndjson",
        "weather/2024-03-01/chunk-0002.ndjson",
        "loose.ndjson",
    ]
    for name in strangers:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("{}\n")
    for hidden in (".tmp/x.ndjson", ".damaged/t/date=2024-03-01/" + path.name, ".git/a.ndjson"):
        (tmp_path / hidden).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / hidden).write_text("{}\n")
    (tmp_path / "t" / "date=2024-03-01" / "README.txt").write_text("not ndjson")
    found = listing.survey(tmp_path)
    assert [f.path for f in found.files] == [path.relative_to(tmp_path).as_posix()]
    assert found.files[0].mtime_ns == path.stat().st_mtime_ns
    assert found.files[0].size_bytes == path.stat().st_size
    assert found.unrecognised == sorted(strangers)
    assert listing.survey(tmp_path / "missing") == listing.survey(tmp_path / "missing2")
    assert listing.survey(tmp_path / "missing").files == []


def test_mtime_is_what_the_file_system_says(tmp_path: Path) -> None:
    path = write_file(tmp_path, "t", [record(0, 5)])
    os.utime(path, ns=(1, 1_700_000_000_123_456_789))
    assert listing.survey(tmp_path).files[0].mtime_ns == 1_700_000_000_123_456_789


def test_a_topics_files_come_with_their_parsed_name_date_and_size(tmp_path: Path) -> None:
    late = write_file(tmp_path, "t", [record(1, 7, MARCH_2), record(1, 8, MARCH_2)])
    early = write_file(tmp_path, "t", [record(0, 3), record(0, 4), record(0, 5)])
    write_file(tmp_path, "u", [record(0, 0)])
    # A file of another topic misplaced in our folder, a folder that is no date.
    (early.parent / naming.file_name("u", 0, 10, 10)).write_text("{}\n")
    (tmp_path / "t" / "notes").mkdir()
    (tmp_path / "t" / "notes" / naming.file_name("t", 0, 20, 20)).write_text("{}\n")

    files = listing.topic_files(tmp_path, "t")

    assert [f.location(tmp_path) for f in files] == [early, late]
    first, second = files
    assert (first.date, first.name) == ("2024-03-01", naming.RawFileName("t", 0, 3, 5))
    assert (second.date, second.name) == ("2024-03-02", naming.RawFileName("t", 1, 7, 8))
    assert (first.topic, first.partition, first.first_offset, first.last_offset) == ("t", 0, 3, 5)
    assert (first.lines, second.lines) == (3, 2)
    assert [f.size_bytes for f in files] == [early.stat().st_size, late.stat().st_size]
    assert [f for f in listing.list_files(tmp_path) if f.topic == "t"] == files
    assert listing.topic_files(tmp_path, "missing") == []
