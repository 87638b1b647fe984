"""The daily producer's state file and the block prefetcher."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest

from weatherpipe.errors import TerminalError
from weatherpipe.ingest import daily_state
from weatherpipe.ingest.prefetch import prefetch


def test_state_round_trip_and_fresh_start(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "t.daily.json"
    assert daily_state.load(path, "t") == daily_state.DailyState("t")
    state = daily_state.DailyState("t", dt.date(2024, 1, 3), 3)
    daily_state.save(path, state)
    assert daily_state.load(path, "t") == state
    assert [p.name for p in path.parent.iterdir()] == ["t.daily.json"]


def test_unreadable_state_says_what_to_do(tmp_path: Path) -> None:
    path = tmp_path / "t.daily.json"
    path.write_text('{"topic": "t", "last_day": "2024-02-30", "days_sent": 1}')
    with pytest.raises(TerminalError, match="delete it to start again"):
        daily_state.load(path, "t")


def test_prefetch_keeps_order_and_raises_in_place() -> None:
    assert list(prefetch(iter(range(100)), depth=3)) == list(range(100))

    def failing() -> Iterator[int]:
        yield 1
        raise ValueError("broken block")

    seen = []
    with pytest.raises(ValueError, match="broken block"):
        for item in prefetch(failing()):
            seen.append(item)
    assert seen == [1]


def test_prefetch_stops_when_the_loop_is_left() -> None:
    produced = []

    def endless() -> Iterator[int]:
        n = 0
        while True:
            produced.append(n)
            yield n
            n += 1

    for item in prefetch(endless()):
        if item == 5:
            break
    assert len(produced) <= 8
