"""The producer's accounting and its dead-letter record format (no broker needed)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

from weatherpipe.events import Reason
from weatherpipe.ingest.csv_to_topic import RAW_KEPT, ProduceSummary, dlq_record
from weatherpipe.ingest.reject import Reject


def test_every_row_is_in_exactly_one_bucket() -> None:
    done = ProduceSummary(Path("w.csv"), "t", rows_read=10, selected=10, sent=8, quarantined=2)
    done.seconds = 2.0
    assert done.ok and done.not_sent == 0 and done.rows_per_second == 5.0
    assert done.line() == (
        "read 10 rows from w.csv; sent 8 to t, quarantined 2 to t.dlq, failed 0 in 2.0 s (5 rows/s)"
    )
    failed = ProduceSummary(Path("w.csv"), "t", rows_read=10, selected=10, sent=7, failed=1)
    assert not failed.ok and failed.not_sent == 2 and "not sent 2" in failed.line()
    stopped = ProduceSummary(Path("w.csv"), "t", rows_read=4, selected=4, sent=4, interrupted=True)
    assert not stopped.ok and stopped.line().endswith("[interrupted]")


def test_summary_counts_blank_lines_apart_from_rows() -> None:
    one = ProduceSummary(Path("w.csv"), "t", rows_read=3, blank_lines=1, selected=3, sent=3)
    assert one.ok and one.line().startswith("read 3 rows from w.csv (1 blank line skipped); ")
    two = ProduceSummary(Path("w.csv"), "t", rows_read=3, blank_lines=2, selected=3, sent=3)
    assert "(2 blank lines skipped)" in two.line()


def test_daily_summary_names_the_day() -> None:
    day = ProduceSummary(
        Path("w.csv"), "t", rows_read=9, selected=3, sent=3, daily=True, day=dt.date(2024, 1, 2)
    )
    assert "; day 2024-01-02: 3 rows, sent 3" in day.line()
    none = ProduceSummary(Path("w.csv"), "t", rows_read=9, daily=True)
    assert none.ok and "no new day" in none.line()


def test_dead_letter_record() -> None:
    reject = Reject(7, "Chicago,x", Reason.WRONG_FIELD_COUNT, None, "expected 6 fields, found 2")
    assert json.loads(dlq_record(Path("/d/w.csv"), reject)) == {
        "source": "/d/w.csv",
        "line": 7,
        "raw": "Chicago,x",
        "truncated": False,
        "reason": "wrong_field_count",
        "field": None,
        "detail": "expected 6 fields, found 2",
    }


def test_a_huge_row_keeps_the_start_of_its_text_and_says_it_was_cut() -> None:
    raw = "Chicago," + "9" * 5_000_000
    reject = Reject(3, raw, Reason.TOO_LARGE, None, "the row has 5,000,008 bytes")
    record = dlq_record(Path("w.csv"), reject)
    assert len(record) < 2 * RAW_KEPT
    value = json.loads(record)
    assert (value["raw"], value["truncated"]) == (raw[:RAW_KEPT], True)
    assert (value["line"], value["reason"]) == (3, "too_large")
