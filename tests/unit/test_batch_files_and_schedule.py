"""Offset ranges joined, and the schedule's interval arithmetic."""

from __future__ import annotations

import threading

import pytest

from weatherpipe.batch.merge import MergeCounts
from weatherpipe.batch.offset_ranges import OffsetRange, merged_ranges
from weatherpipe.batch.runner import RunSummary
from weatherpipe.flows.schedule import IntervalError, next_tick, parse_interval, run_every


def test_adjacent_and_overlapping_ranges_are_joined() -> None:
    ranges = [
        OffsetRange("t", 0, 10, 19),
        OffsetRange("t", 0, 0, 9),
        OffsetRange("t", 0, 15, 25),
        OffsetRange("t", 0, 30, 39),
        OffsetRange("t", 1, 0, 9),
    ]
    assert merged_ranges(ranges) == [
        OffsetRange("t", 0, 0, 25),
        OffsetRange("t", 0, 30, 39),
        OffsetRange("t", 1, 0, 9),
    ]


@pytest.mark.parametrize(
    ("text", "seconds"), [("90", 90), ("90s", 90), ("15m", 900), ("1.5h", 5400), ("1d", 86400)]
)
def test_intervals(text: str, seconds: float) -> None:
    assert parse_interval(text) == seconds


@pytest.mark.parametrize("text", ["", "0m", "15 minutes", "-5m", "m"])
def test_bad_intervals_say_what_to_write(text: str) -> None:
    with pytest.raises(IntervalError, match=r"e\.g\. --every 15m"):
        parse_interval(text)


def test_ticks_stay_on_the_grid_and_missed_ones_are_skipped() -> None:
    assert next_tick(100.0, 60.0, 100.5) == 160.0
    assert next_tick(100.0, 60.0, 159.9) == 160.0
    assert next_tick(100.0, 60.0, 290.0) == 340.0  # a run of 190 s skipped two ticks


def test_a_failed_run_does_not_stop_the_schedule() -> None:
    stop = threading.Event()
    outcomes: list[str] = []
    calls = iter([RuntimeError("boom"), None, None])

    def run() -> RunSummary:
        error = next(calls)
        if error is not None:
            raise error
        if len(outcomes) == 2:
            stop.set()
        return RunSummary(1, "incremental", "duckdb", 0, 0, 0, 0, MergeCounts(0, 0, 0, 0), 0.0)

    run_every(0.01, run, lambda s: outcomes.append("ok"), lambda e: outcomes.append(str(e)), stop)
    assert outcomes == ["boom", "ok", "ok"]


def test_summary_line_says_how_many_files_took_the_typed_read() -> None:
    counts = MergeCounts(inserted=4, updated=1, unchanged=0, deleted=0)
    summary = RunSummary(7, "full", "duckdb", 3, 90, 2, 1, counts, 1.25, typed_files=2)
    assert summary.line() == (
        "batch run 7 (full, duckdb) done in 1.2 s: 3 files (2 by the typed read), 90 lines "
        "(2 duplicates, 1 rejected) -> daily rows: 4 inserted, 1 updated, 0 unchanged, 0 deleted"
    )
    assert "typed" not in RunSummary(7, "full", "spark", 3, 90, 2, 1, counts, 1.25).line()
