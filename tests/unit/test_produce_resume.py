"""Resuming an interrupted producer run: matching by content, and the attempt note."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from weatherpipe.errors import TerminalError
from weatherpipe.ingest.resume import (
    Attempt,
    Resume,
    UnfinishedRunError,
    attempt_path,
    digest,
    forget_finished_day,
    load,
    pending,
)
from weatherpipe.kafka.security import KafkaConnection


def test_rows_found_are_taken_out_once_each_identical_rows_counted() -> None:
    found = {"t": Counter(digest(v) for v in [b"a", b"b", b"b"])}
    resume = Resume(Path("unused"), found)
    values, keys = resume.unsent("t", [b"b", b"a", b"b", b"b", b"c", b"a"], list("123456"))
    # Two b and one a were delivered before: the third b, c and the second a are still due.
    assert (values, keys) == ([b"b", b"c", b"a"], ["4", "5", "6"])
    assert resume.matched["t"] == 3 and resume.resuming
    assert resume.unsent("other", [b"a"], ["1"]) == ([b"a"], ["1"])


def test_the_note_names_the_job_and_survives_a_round_trip(tmp_path: Path) -> None:
    path = attempt_path(tmp_path, "weather")
    source = tmp_path / "w.csv"
    note = Attempt(str(source.resolve()), "2024-01-02", {"weather": {0: 5, 1: 7}})
    path.parent.mkdir(parents=True)
    path.write_text(
        json.dumps({"source": note.source, "day": note.day, "start": {"weather": {"0": 5, "1": 7}}})
    )
    assert load(path) == note
    assert pending(tmp_path, "weather", source, "2024-01-02")
    assert not pending(tmp_path, "weather", source, "2024-01-03")
    assert not pending(tmp_path, "weather", tmp_path / "other.csv", "2024-01-02")
    assert not pending(tmp_path, "other-topic", source, "2024-01-02")

    forget_finished_day(tmp_path, "weather", "2024-01-01")  # an earlier day: still pending
    assert path.exists()
    forget_finished_day(tmp_path, "weather", "2024-01-02")  # recorded as sent: done
    assert not path.exists() and load(path) is None


def test_an_unreadable_note_says_what_to_do(tmp_path: Path) -> None:
    path = attempt_path(tmp_path, "weather")
    path.parent.mkdir(parents=True)
    path.write_text('{"source": "w.csv"')
    with pytest.raises(TerminalError, match="Delete it to start afresh"):
        load(path)


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
    path = attempt_path(tmp_path, "weather")
    path.parent.mkdir(parents=True)
    noted = str((tmp_path / "w.csv").resolve())
    text = json.dumps({"source": noted, "day": noted_day, "start": {"weather": {"0": 5}}})
    path.write_text(text)
    # The broker is never asked: the refusal comes before any offset is read.
    with pytest.raises(UnfinishedRunError) as refused:
        Resume.begin(
            KafkaConnection("localhost:1"), tmp_path, ["weather"], tmp_path / source_name, day
        )
    message = " ".join(str(refused.value).split())
    assert f"weatherpipe produce {finish_with} --csv {noted}" in message
    assert f"delete {path}" in message
    assert path.read_text() == text  # the note, and what it knows, stays
