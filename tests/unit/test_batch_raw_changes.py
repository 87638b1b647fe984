"""What a batch run reports without failing: processed raw files changed or gone, and .ndjson
files outside the raw zone's layout."""

from __future__ import annotations

import os
from pathlib import Path

from tests.rawzone_files import Record, event, write_file
from weatherpipe.batch.merge import MergeCounts, ProcessedFile
from weatherpipe.batch.raw_changes import changed_files, unrecognised_files
from weatherpipe.batch.rawfiles import LAYOUT, OffsetRange, RawFile, parse, survey
from weatherpipe.batch.runner import RunSummary

DAY = "t/date=2024-03-01"


def raw(partition: int, size: int, mtime_ns: int) -> RawFile:
    first = partition * 100
    name = f"{DAY}/t+{partition:05d}+{first:020d}+{first + 9:020d}.ndjson"
    parsed = parse(name, size, mtime_ns)
    assert parsed is not None
    return parsed


def processed(file: RawFile, size: int, mtime_ns: int | None) -> ProcessedFile:
    return ProcessedFile(
        OffsetRange(file.topic, file.partition, file.first_offset, file.last_offset),
        size,
        mtime_ns,
    )


def test_files_as_they_were_counted_raise_no_warning() -> None:
    files = [raw(0, 100, 5_000), raw(1, 200, 6_000)]
    done = {f.path: processed(f, f.size_bytes, f.mtime_ns) for f in files}
    assert changed_files(done, files) == []
    assert changed_files({}, files) == []


def test_a_file_grown_or_touched_after_it_was_counted_is_named() -> None:
    grown, touched, old_row, same = (
        raw(0, 150, 5_000),
        raw(1, 200, 9_000_000_000),
        raw(2, 7, 1),
        raw(3, 9, 9),
    )
    done = {
        grown.path: processed(grown, 100, 5_000),
        touched.path: processed(touched, 200, 6_000),
        old_row.path: processed(old_row, 7, None),  # recorded before times were: size alone
        same.path: processed(same, 9, 9),
    }
    (warning,) = changed_files(done, [grown, touched, old_row, same])
    assert warning.startswith("2 raw file(s) changed after a batch run counted them: ")
    assert f"{grown.path} (100 -> 150 bytes)" in warning
    assert f"{touched.path} (modified 1970-01-01 00:00:09 UTC)" in warning
    assert old_row.path not in warning and same.path not in warning
    assert "run `weatherpipe batch --full`" in warning


def test_files_gone_are_counted_and_a_few_named() -> None:
    files = [raw(p, 10, 10) for p in range(6)]
    done = {f.path: processed(f, 10, 10) for f in files}
    (warning,) = changed_files(done, files[:1])
    assert warning.startswith("5 raw file(s) counted by an earlier batch run are gone from RAW_DIR")
    assert files[1].path in warning and files[3].path in warning
    assert files[4].path not in warning and "; and 2 more." in warning
    assert "RAW_DIR/.damaged" in warning


def test_survey_lists_files_outside_the_layout_apart_and_never_looks_into_dot_folders(
    tmp_path: Path,
) -> None:
    path = write_file(tmp_path, "t", [Record(0, 5, event("A", "2024-03-01 00:00:00", 1, 1, 1, 1))])
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
    listing = survey(tmp_path)
    assert [f.path for f in listing.files] == [path.relative_to(tmp_path).as_posix()]
    assert listing.files[0].mtime_ns == path.stat().st_mtime_ns
    assert listing.files[0].size_bytes == path.stat().st_size
    assert listing.unrecognised == sorted(strangers)
    assert survey(tmp_path / "missing") == survey(tmp_path / "missing2")
    assert survey(tmp_path / "missing").files == []


def test_the_unrecognised_warning_counts_them_and_shows_the_expected_layout() -> None:
    warning = unrecognised_files([f"w/2024-03-0{n}/chunk-0001.ndjson" for n in range(1, 8)])
    assert warning.startswith("7 .ndjson file(s) in RAW_DIR are not in the raw zone's layout")
    assert "w/2024-03-01/chunk-0001.ndjson" in warning and "; and 4 more." in warning
    assert LAYOUT in warning
    assert "RAW_DIR/<topic>/date=YYYY-MM-DD/<topic>+<partition>+" in LAYOUT


def test_the_summary_line_points_at_the_warnings() -> None:
    rows = MergeCounts(1, 0, 0, 0)
    plain = RunSummary(1, "incremental", "duckdb", 1, 5, 0, 0, rows, 0.1)
    warned = RunSummary(1, "incremental", "duckdb", 1, 5, 0, 0, rows, 0.1, warnings=("a", "b"))
    assert "warning" not in plain.line()
    assert warned.line() == plain.line() + "; 2 warning(s), see above"


def test_mtime_is_what_the_file_system_says(tmp_path: Path) -> None:
    path = write_file(tmp_path, "t", [Record(0, 5, event("A", "2024-03-01 00:00:00", 1, 1, 1, 1))])
    os.utime(path, ns=(1, 1_700_000_000_123_456_789))
    assert survey(tmp_path).files[0].mtime_ns == 1_700_000_000_123_456_789
