"""The reconciliation line's checks: which counts agree, which are catching up, which disagree."""

from __future__ import annotations

from dataclasses import replace

import pytest

from weatherpipe.dashboard.reconcile import Check, Counts, csv_rows, steps, uncovered, verdict

# A run that went the whole way: 1,003 CSV rows, 3 of them dead letters, 2 lines quarantined
# by the batch, 1 duplicate skipped.
WHOLE = Counts(
    csv_rows=1_003,
    csv_rows_recorded=True,
    topic_records=1_000,
    dead_letters=3,
    consumer_lag=0,
    raw_lines=1_000,
    raw_lines_unprocessed=0,
    processed_lines=1_000,
    processed_files_gone=0,
    lines_all_topics=1_000,
    quarantined=2,
    observations=997,
    duplicates=1,
)


def checks(counts: Counts) -> list[Check]:
    return [s.check for s in steps(counts)]


def test_a_whole_run_agrees_at_every_step() -> None:
    assert checks(WHOLE) == [Check.AGREE] * 4
    assert verdict(steps(WHOLE)) is Check.AGREE


def test_csv_rows_are_the_topics_records_and_dead_letters_until_the_producer_counts() -> None:
    assert csv_rows(1_000, 3) == (1_003, False)
    assert csv_rows(None, 3) == (None, False)
    derived = replace(WHOLE, csv_rows=1_003, csv_rows_recorded=False)
    assert steps(derived)[0].note == "The producer's rows are counted on the topics."


def test_rows_the_producer_counted_but_the_topics_lack_disagree() -> None:
    found = steps(replace(WHOLE, csv_rows=1_010))
    assert found[0].check is Check.DISAGREE
    assert found[0].note == "+7 rows differ from what the topics hold."
    assert verdict(found) is Check.DISAGREE


@pytest.mark.parametrize(
    ("raw_lines", "lag", "check", "note"),
    [
        (
            900,
            100,
            Check.PENDING,
            "100 records are not in the raw zone yet; the consumer is 100 behind.",
        ),
        (
            900,
            0,
            Check.DISAGREE,
            "100 records the consumer has committed are missing from the raw zone.",
        ),
        (1_002, 0, Check.DISAGREE, "The raw zone holds 2 lines too many."),
    ],
)
def test_raw_zone_lines_against_the_topic(
    raw_lines: int, lag: int, check: Check, note: str
) -> None:
    found = steps(replace(WHOLE, raw_lines=raw_lines, consumer_lag=lag))[1]
    assert (found.check, found.note) == (check, note)


def test_a_processed_file_gone_from_the_raw_zone_disagrees_before_anything_pending() -> None:
    gone = replace(WHOLE, raw_lines=600, processed_files_gone=1, raw_lines_unprocessed=50)
    found = steps(gone)
    assert found[2].check is Check.DISAGREE
    assert found[2].note == "1 file the batch processed is gone from the raw zone."
    assert steps(replace(gone, processed_files_gone=2))[2].note.startswith("2 files ")
    assert verdict(found) is Check.DISAGREE


def test_lines_waiting_for_the_batch_are_pending() -> None:
    found = steps(replace(WHOLE, raw_lines_unprocessed=40))
    assert (found[2].check, found[2].note) == (
        Check.PENDING,
        "40 lines wait for the next batch run.",
    )
    assert verdict(found) is Check.PENDING


def test_lines_the_batch_lost_disagree() -> None:
    found = steps(replace(WHOLE, observations=990))[3]
    assert found.check is Check.DISAGREE
    assert found.note == "+7 lines are neither quarantined, nor observations, nor duplicates."


def test_a_source_that_did_not_answer_is_unknown_not_zero() -> None:
    kafka_down = replace(
        WHOLE, csv_rows=None, topic_records=None, dead_letters=None, consumer_lag=None
    )
    assert checks(kafka_down) == [Check.UNKNOWN, Check.UNKNOWN, Check.AGREE, Check.AGREE]
    db_down = replace(
        WHOLE,
        processed_lines=None,
        processed_files_gone=None,
        lines_all_topics=None,
        quarantined=None,
        observations=None,
    )
    assert checks(db_down) == [Check.AGREE, Check.AGREE, Check.UNKNOWN, Check.UNKNOWN]
    assert verdict(steps(db_down)) is Check.UNKNOWN
    # A disagreement is red even where another source is down.
    assert verdict(steps(replace(db_down, raw_lines=1_002))) is Check.DISAGREE


def test_offsets_no_raw_file_covers_are_the_holes_between_files_and_the_tail() -> None:
    offsets = {0: (0, 1_000), 1: (0, 10), 2: (0, 0)}
    # Partition 0: two files with a marker's offset (500) between them and one after the last.
    files = [(0, 501, 998), (0, 0, 499), (1, 0, 9)]
    assert uncovered(offsets, files) == [(0, 500, 501), (0, 999, 1_000)]


def test_offsets_before_the_first_file_and_of_a_partition_without_files_are_uncovered() -> None:
    assert uncovered({0: (0, 50), 1: (20, 30)}, [(0, 10, 49)]) == [(0, 0, 10), (1, 20, 30)]
    # Files overlapping each other or reaching past the end leave nothing uncovered.
    assert uncovered({0: (0, 50)}, [(0, 0, 30), (0, 20, 60)]) == []
