"""The DuckDB engine's typed read must give exactly what checking every rule gives: the same
sums, rejections, line counts and duplicates, whatever odd line a file holds. Files it cannot
vouch for go to the exact read; clean ones must really take the typed read."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest

from tests.rawzone_files import Record, Undecodable, event, write_file
from weatherpipe.batch.duckdb_engine import DuckDBEngine
from weatherpipe.batch.duckdb_typed import TypedRenderer
from weatherpipe.batch.offset_ranges import OffsetRange
from weatherpipe.batch.results import EngineResult
from weatherpipe.rawzone.listing import list_files
from weatherpipe.rules import RULES

TOPIC = "weather_data_raw"


def good(rng: random.Random) -> dict[str, Any]:
    return event(
        rng.choice(["Chicago", "San Diego", "New York"]),
        f"2024-03-0{rng.randint(1, 3)} {rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}:07",
        round(rng.uniform(-20, 40), 2),
        round(rng.uniform(0, 100), 2),
        round(rng.uniform(0, 20), 3),
        round(rng.uniform(0, 80), 1),
    )


def line(partition: int, offset: Any, value: Any, **kafka: Any) -> str:
    head = {"topic": TOPIC, "partition": partition, "offset": offset, "timestamp_ms": 1, **kafka}
    return json.dumps({"kafka": head, "value": value})


# One odd record per file, each a way typed reading and the rules could part: valid ones the
# typed read may not vouch for, and defects it must not let through.
TWISTS: dict[str, Any] = {
    "numeric string": {"temperature_c": "12.5"},
    "padded numeric string": {"humidity_pct": " 5"},
    "exponent string": {"wind_speed_kmh": "1e1"},
    "boolean": {"temperature_c": True},
    "false": {"precipitation_mm": False},
    "NaN string": {"humidity_pct": "NaN"},
    "huge": {"temperature_c": 1e308 * 10},
    "just too warm": {"temperature_c": 60.5},
    "just too humid": {"humidity_pct": 100.01},
    "negative rain": {"precipitation_mm": -0.1},
    "hex string": {"temperature_c": "0x10"},
    "null measure": {"wind_speed_kmh": None},
    "empty string measure": {"wind_speed_kmh": ""},
    "object measure": {"temperature_c": {"v": 1}},
    "blank-padded location": {"location": " Chicago "},
    "digit location": {"location": "5th Avenue"},
    "number location": {"location": 5},
    "true location": {"location": "true"},
    "blank location": {"location": "   "},
    "long location": {"location": "x" * 101},
    "escaped location": {"location": "Chic\u0061go"},
    "null location": {"location": None},
    "false location": {"location": False},
    "three-digit year": {"timestamp": "0999-03-01 10:00:00"},
    "year 1899": {"timestamp": "1899-12-31 23:59:59"},
    "year 2100": {"timestamp": "2100-12-31 23:59:59"},
    "year 0000": {"timestamp": "0000-01-01 00:00:00"},
    "year 9999": {"timestamp": "9999-12-31 23:59:59"},
    "leap second": {"timestamp": "2024-06-30 23:59:60"},
    "NUL in location": {"location": "Zu\u0000rich"},
    "tab in location": {"location": "San\tJose"},
    "text turned around": {"location": "\u202eDallas"},
    "accented location": {"location": "Z\u00fcrich"},
    "short month": {"timestamp": "2024-3-01 10:00:00"},
    "five-digit year": {"timestamp": "12024-03-01 10:00:00"},
    "impossible day": {"timestamp": "2024-02-30 10:00:00"},
    "number timestamp": {"timestamp": 1709287200},
    "missing field": {"humidity_pct": ...},
}


def write_zone(raw: Path) -> list[OffsetRange]:
    """A raw zone of clean files, one file per twist, and files with odd envelopes; returns
    ranges to treat as counted before."""
    rng = random.Random(11)
    offset = 0

    def records(n: int, partition: int = 0) -> list[Record]:
        nonlocal offset
        out = [Record(partition, offset + i, good(rng)) for i in range(n)]
        offset += n
        return out

    for _ in range(3):
        write_file(raw, TOPIC, records(40))
    for change in TWISTS.values():
        batch = records(20)
        value = {k: v for k, v in {**batch[7].value, **change}.items() if v is not ...}
        batch[7] = Record(0, batch[7].offset, value)
        write_file(raw, TOPIC, batch)
    odd = [
        lambda o: line(0, str(o), good(rng)),  # offset as a string
        lambda o: line(0, float(o), good(rng)),  # offset as a real
        lambda o: line(1, o, good(rng)),  # another partition than the file's
        lambda o: line(0, o, good(rng), topic="other"),  # another topic than the file's
        lambda o: line(0, o, good(rng), topic=7),  # topic not a string
        lambda o: line(0, o + 1000, good(rng)),  # outside the name's range
        lambda o: line(0, o - 1, good(rng)),  # a copy of the record before it
        lambda o: json.dumps({"kafka": {"topic": TOPIC, "partition": 0, "offset": o}, "value": 5}),
        lambda o: line(0, o, "text", value_error="invalid_json"),
        lambda o: json.dumps({**json.loads(line(0, o, good(rng))), "value_error": None}),
        lambda o: json.dumps({**json.loads(line(0, o, good(rng))), "value_error": ""}),
        lambda o: "",  # an empty line
        lambda o: "{not json",
    ]
    for make in odd:
        batch = records(10)
        write_file(raw, TOPIC, batch, extra_lines=[make(batch[-1].offset)])
    # Odd Kafka coordinates of a record inside its file's range, in place of the record.
    in_place = [
        lambda o: line(0, float(o), good(rng)),  # offset as a real
        lambda o: line(0, str(o), good(rng)),  # offset as a string
        lambda o: line(0, o, good(rng)).replace(f'"offset": {o}', f'"offset": {o}e0'),
        lambda o: line("0", o, good(rng)),  # partition as a string
        lambda o: line(0.0, o, good(rng)),  # partition as a real
    ]
    for make in in_place:
        batch = records(10)
        gap = batch.pop(5)
        write_file(raw, TOPIC, batch, extra_lines=[make(gap.offset)])
    # Two files of one partition with overlapping offsets (a redelivery), and one of a range
    # counted before.
    overlap = records(10, partition=2)
    write_file(raw, TOPIC, overlap)
    write_file(raw, TOPIC, [*overlap[5:], *records(5, partition=2)])
    write_file(raw, TOPIC, records(10, partition=1))
    write_file(raw, TOPIC, [Record(1, 0, Undecodable("b29wcw==", "not_utf8"))])
    return [OffsetRange(TOPIC, 1, offset - 5, offset + 100)]


def comparable(result: EngineResult) -> tuple[Any, ...]:
    return (
        result.daily,
        result.rejected,
        result.lines,
        result.duplicates,
        result.lines_per_file,
    )


@pytest.mark.parametrize("counted", [False, True])
def test_typed_read_gives_exactly_the_exact_reads_result(tmp_path: Path, counted: bool) -> None:
    ranges = write_zone(tmp_path)
    files = list_files(tmp_path)
    old = ranges if counted else []
    typed = DuckDBEngine().aggregate(tmp_path, files, old)
    exact = DuckDBEngine(typed=False).aggregate(tmp_path, files, old)
    assert exact.typed_files == 0
    assert comparable(typed) == comparable(exact)
    assert typed.rejected and typed.duplicates > 0  # the zone does hold defects and copies
    # The clean files and those with a valid but unusual value take the typed read.
    assert typed.typed_files >= 3 + 3


def test_clean_files_take_the_typed_read_and_copies_do_not(tmp_path: Path) -> None:
    rng = random.Random(3)
    write_file(tmp_path, TOPIC, [Record(0, i, good(rng)) for i in range(30)])
    write_file(tmp_path, TOPIC, [Record(0, i, good(rng)) for i in range(30, 60)])
    write_file(tmp_path, TOPIC, [Record(1, i, good(rng)) for i in range(30)])
    result = DuckDBEngine().aggregate(tmp_path, list_files(tmp_path), [])
    assert (result.typed_files, result.lines, result.duplicates) == (3, 90, 0)
    # A counted range over partition 1 sends its file to the exact read, which skips it.
    again = DuckDBEngine().aggregate(tmp_path, list_files(tmp_path), [OffsetRange(TOPIC, 1, 0, 29)])
    assert again.typed_files == 2
    assert sum(d.observations for d in again.daily) == 60


def test_every_rule_has_a_typed_rendering() -> None:
    condition = TypedRenderer(RULES).surely_valid()
    assert condition.startswith("coalesce(") and condition.endswith(", false)")
    assert "c7 BETWEEN -90.0 AND 60.0" in condition  # the temperature bounds from events.py


def test_a_record_copied_into_another_file_is_counted_once(tmp_path: Path) -> None:
    """A hand-edited file holding a copy of a record from a clean file's range: the clean file
    would take the typed read and the copy the exact read, so the engine redoes the run with
    the exact read and the copy counts once."""
    rng = random.Random(5)
    clean = [Record(0, i, good(rng)) for i in range(20)]
    write_file(tmp_path, TOPIC, clean)
    copy = json.dumps({"kafka": {"topic": TOPIC, "partition": 0, "offset": 4}, "value": good(rng)})
    write_file(tmp_path, TOPIC, [Record(0, i, good(rng)) for i in range(20, 30)], [copy])
    files = list_files(tmp_path)
    result = DuckDBEngine().aggregate(tmp_path, files, [])
    assert comparable(result) == comparable(
        DuckDBEngine(typed=False).aggregate(tmp_path, files, [])
    )
    assert (result.lines, result.duplicates, result.typed_files) == (31, 1, 0)
    assert sum(d.observations for d in result.daily) == 30
