"""What a batch run reports without failing: processed raw files changed or gone, and .ndjson
files outside the raw zone's layout (which `rawzone.listing` finds)."""

from __future__ import annotations

from weatherpipe.batch.merge import MergeCounts, ProcessedFile
from weatherpipe.batch.offset_ranges import OffsetRange
from weatherpipe.batch.raw_changes import changed_files, unrecognised_files
from weatherpipe.batch.runner import RunSummary
from weatherpipe.rawzone.listing import RawFile
from weatherpipe.rawzone.naming import LAYOUT, RawFileName, RawFilePath

DAY = "2024-03-01"


def raw(partition: int, size: int, mtime_ns: int) -> RawFile:
    first = partition * 100
    name = RawFileName("t", partition, first, first + 9)
    relative = RawFilePath(DAY, name).relative
    return RawFile(relative, DAY, "t", partition, first, first + 9, size, mtime_ns)


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
