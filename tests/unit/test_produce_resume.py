"""Resuming an interrupted producer run: matching by content, and the ledger's note of a run."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from weatherpipe.errors import TerminalError
from weatherpipe.ingest import ledger
from weatherpipe.ingest.ledger import Attempt, SentRun
from weatherpipe.ingest.resume import Resume, UnfinishedRunError, fingerprint
from weatherpipe.kafka.security import KafkaConnection

NOTE = Attempt("/data/w.csv", None, "abc", {"t": {0: 5}}, "2024-01-02T03:04:05+00:00", "host1")


def test_rows_found_are_taken_out_once_each_identical_rows_counted() -> None:
    found = {"t": Counter(fingerprint(v) for v in [b"a", b"b", b"b"])}
    resume = Resume(NOTE, found, noted=True)
    values, keys = resume.unsent("t", [b"b", b"a", b"b", b"b", b"c", b"a"], list("123456"))
    # Two b and one a were delivered before: the third b, c and the second a are still due.
    assert (values, keys) == ([b"b", b"c", b"a"], ["4", "5", "6"])
    assert resume.matched["t"] == 3 and resume.resuming
    assert resume.unsent("other", [b"a"], ["1"]) == ([b"a"], ["1"])


def test_the_same_job_is_the_same_day_and_the_same_file_or_content(tmp_path: Path) -> None:
    source = tmp_path / "w.csv"
    note = Attempt(str(source.resolve()), "2024-01-02", "abc", {}, "", "")
    assert note.same_job(source, "abc", "2024-01-02")
    assert note.same_job(source, "edited since", "2024-01-02")  # the same file, edited
    assert note.same_job(tmp_path / "moved.csv", "abc", "2024-01-02")  # the same content
    assert not note.same_job(tmp_path / "other.csv", "other", "2024-01-02")
    assert not note.same_job(source, "abc", "2024-01-03")
    assert not note.same_job(source, "abc", None)


def test_ledger_records_survive_a_round_trip() -> None:
    key, value = ledger.attempt_record(NOTE)
    assert key == ledger.ATTEMPT_KEY and value is not None
    assert ledger._attempt(json.loads(value)) == NOTE
    assert ledger.attempt_record(None) == (ledger.ATTEMPT_KEY, None)  # the tombstone
    first = ledger.finished(NOTE, None, rows=10, sent=9, quarantined=1)
    again = ledger.finished(NOTE, first, rows=10, sent=9, quarantined=1)
    assert (first.runs, again.runs) == (1, 2)
    key, value = ledger.sent_record(again)
    assert key == "sent:abc" and SentRun(**json.loads(value)) == again


def test_an_unreadable_ledger_record_says_what_to_do() -> None:
    with pytest.raises(TerminalError, match="delete the ledger topic"):
        ledger._parse("t", "attempt", b'{"source": "w.csv"', ledger._attempt)


@pytest.mark.parametrize(
    ("noted_day", "source_name", "day", "finish_with"),
    [
        (None, "w.csv", "2024-01-02", "--all"),  # an --all run waits; a --daily run comes
        ("2024-01-02", "w.csv", None, "--daily"),  # a --daily run waits; an --all run comes
        ("2024-01-02", "w.csv", "2024-01-03", "--daily"),  # another day
        (None, "other.csv", None, "--all"),  # another file
    ],
)
def test_another_job_refuses_to_start_while_an_interrupted_run_waits(
    tmp_path: Path, noted_day: str | None, source_name: str, day: str | None, finish_with: str
) -> None:
    noted = Attempt(str((tmp_path / "w.csv").resolve()), noted_day, "abc", {}, "t0", "host1")
    # The broker is never asked: the refusal comes before any offset is read.
    with pytest.raises(UnfinishedRunError) as refused:
        Resume.begin(
            KafkaConnection("localhost:1"), noted, ["weather"], tmp_path / source_name, "other", day
        )
    message = " ".join(str(refused.value).split())
    assert f"weatherpipe produce {finish_with} --csv {noted.source}" in message
    assert "started t0 on host1" in message and "--abandon-interrupted" in message
