"""The shared validation rules: derived from the event contract, ordered, and rendered to DuckDB
SQL that agrees with a plain-Python reading of the contract on every kind of value."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

from tests.batch_reference import check, parse_line
from tests.samples import EVENT
from weatherpipe import rules as r
from weatherpipe.batch.duckdb_engine import DuckDBEngine
from weatherpipe.events import CSV_ONLY_REASONS, LOCATION_MAX_LENGTH, MEASURES, YEARS, Reason
from weatherpipe.rawzone.listing import list_files

GOOD = EVENT
KAFKA = {"topic": "t", "partition": 0, "offset": 5, "timestamp_ms": 1, "key": None}


def line(value: Any, **extra: Any) -> str:
    return json.dumps({"kafka": KAFKA, "value": value, **extra}, allow_nan=True)


VALUE_CASES: list[Any] = [
    GOOD,
    {**GOOD, "location": "  Chicago  "},
    {**GOOD, "temperature_c": "12.5"},
    {**GOOD, "temperature_c": 60, "humidity_pct": 0, "precipitation_mm": 500},
    {**GOOD, "location": "x" * LOCATION_MAX_LENGTH},
    {**GOOD, "location": "x" * (LOCATION_MAX_LENGTH + 1)},
    {**GOOD, "location": ""},
    {**GOOD, "location": " \t "},
    {**GOOD, "location": ["Chicago"]},
    {**GOOD, "timestamp": None},
    {**GOOD, "timestamp": "2023-02-29 00:00:00"},
    {**GOOD, "timestamp": "2024-02-29 00:00:00"},
    {**GOOD, "timestamp": "2024-03-01 24:00:00"},
    {**GOOD, "timestamp": "2024-03-01T14:05:09"},
    {**GOOD, "timestamp": "2024-3-1 14:05:09"},
    {**GOOD, "timestamp": 1709301909},
    {**GOOD, "timestamp": "1899-12-31 23:59:59"},
    {**GOOD, "timestamp": "1900-01-01 00:00:00"},
    {**GOOD, "timestamp": "2100-12-31 23:59:59"},
    {**GOOD, "timestamp": "2101-01-01 00:00:00"},
    {**GOOD, "timestamp": "0000-01-01 00:00:00"},
    {**GOOD, "timestamp": "9999-12-31 23:59:59"},
    {**GOOD, "timestamp": "1899-02-30 00:00:00"},
    {**GOOD, "timestamp": "2024-06-30 23:59:60"},
    {**GOOD, "timestamp": "2024-03-01 14:05:09Z"},
    {**GOOD, "timestamp": "2024-03-01 14:05:09+01:00"},
    {**GOOD, "location": "Zu\u0000rich"},
    {**GOOD, "location": "San\tJose"},
    {**GOOD, "location": "Chicago\t"},
    {**GOOD, "location": "Dal\u0085las"},
    {**GOOD, "location": "\u202eDallas"},
    {**GOOD, "location": "Dallas\u2069"},
    {**GOOD, "location": "\u0000" * (LOCATION_MAX_LENGTH + 1)},
    {**GOOD, "location": "Z\u00fcrich"},
    {**GOOD, "temperature_c": None},
    {**GOOD, "temperature_c": False},
    {**GOOD, "temperature_c": "NaN"},
    {**GOOD, "temperature_c": "inf"},
    {**GOOD, "temperature_c": math.nan},
    {**GOOD, "temperature_c": -math.inf},
    {**GOOD, "temperature_c": 60.000001},
    {**GOOD, "wind_speed_kmh": 400.5},
    {**GOOD, "wind_speed_kmh": [1]},
    {k: v for k, v in GOOD.items() if k != "timestamp"},
    {},
    [],
    None,
    42,
]
LINE_CASES = [
    *(line(v) for v in VALUE_CASES),
    line("{x", value_error="invalid_json"),
    line("gA==", value_error="not_utf8"),
    json.dumps({"kafka": {**KAFKA, "offset": -1}, "value": GOOD}),
    json.dumps({"kafka": {**KAFKA, "partition": "0"}, "value": GOOD}),
    json.dumps({"value": GOOD}),
    "not json",
    "[1, 2]",
    '{"kafka": ',
]


def duckdb_verdicts(lines: list[str], tmp: Path) -> list[tuple[str | None, str | None]]:
    """The DuckDB engine's verdict on each line (each given its own offset)."""
    renumbered = []
    for offset, text in enumerate(lines):
        parsed = parse_line(text)
        if parsed is not None and isinstance(parsed.get("kafka"), dict):
            if parsed["kafka"].get("offset") == KAFKA["offset"]:
                parsed["kafka"]["offset"] = offset
            text = json.dumps(parsed, allow_nan=True)
        renumbered.append(text)
    # All lines in one file (read line by line, as it has rejects), and each line in a file of
    # its own (clean files are read whole by read_json): both readings must agree.
    together = tmp / "together"
    folder = together / "t" / "date=2024-03-01"
    folder.mkdir(parents=True)
    name = f"t+00000+{0:020d}+{len(lines):020d}.ndjson"
    (folder / name).write_text("".join(x + "\n" for x in renumbered))
    apart = tmp / "apart"
    folder = apart / "t" / "date=2024-03-01"
    folder.mkdir(parents=True)
    for i, text in enumerate(renumbered):
        (folder / f"t+{i:05d}+{i:020d}+{i:020d}.ndjson").write_text(text + "\n")
    verdicts: list[tuple[str | None, str | None]] = [(None, None)] * len(lines)
    for q in DuckDBEngine(threads=1).aggregate(together, list_files(together), []).rejected:
        verdicts[q.line - 1] = (q.reason, q.field)
    separate: list[tuple[str | None, str | None]] = [(None, None)] * len(lines)
    for q in DuckDBEngine().aggregate(apart, list_files(apart), []).rejected:
        separate[int(q.file.split("+")[1])] = (q.reason, q.field)
    assert separate == verdicts
    return verdicts


def test_duckdb_engine_agrees_with_the_reference_on_every_case(tmp_path: Path) -> None:
    expected = [check(parse_line(text)) or (None, None) for text in LINE_CASES]
    assert duckdb_verdicts(LINE_CASES, tmp_path) == expected
    # The cases cover every reason a raw line can be rejected for.
    raw_reasons = {v for k, v in vars(Reason).items() if k.isupper()} - CSV_ONLY_REASONS
    assert {reason for reason, _ in expected if reason} == raw_reasons


@pytest.mark.parametrize(
    ("value", "reason", "field"),
    [
        (
            {**GOOD, "humidity_pct": "x", "temperature_c": None},
            Reason.MISSING_FIELD,
            "temperature_c",
        ),
        ({**GOOD, "timestamp": "bad", "location": ""}, Reason.MISSING_FIELD, "location"),
        (
            {**GOOD, "wind_speed_kmh": -1, "temperature_c": math.inf},
            Reason.NOT_FINITE,
            "temperature_c",
        ),
    ],
)
def test_the_first_failing_rule_gives_the_reason(
    value: Any, reason: str, field: str, tmp_path: Path
) -> None:
    assert duckdb_verdicts([line(value)], tmp_path) == [(reason, field)]


def test_rules_are_derived_from_the_event_contract() -> None:
    bounds = {
        rule.field: (rule.predicate.low, rule.predicate.high)
        for rule in r.RULES
        if isinstance(rule.predicate, r.OutOfRange)
    }
    assert bounds == {m.field: (m.low, m.high) for m in MEASURES}
    lengths = [rule.predicate for rule in r.RULES if isinstance(rule.predicate, r.LongerThan)]
    assert [p.length for p in lengths] == [LOCATION_MAX_LENGTH]
    years = [rule.predicate for rule in r.RULES if isinstance(rule.predicate, r.YearOutside)]
    assert [(p.low, p.high, p.start) for p in years] == [(*YEARS, 0)]
    moved = [
        x.predicate for x in r.build_rules((1950, 2050)) if isinstance(x.predicate, r.YearOutside)
    ]
    assert [(p.low, p.high) for p in moved] == [(1950, 2050)]
    assert r.RULES[0] == r.Rule(Reason.INVALID_JSON, None, r.NotObject(()))


def test_timestamp_pattern_follows_the_format() -> None:
    assert (
        r.timestamp_pattern("%Y-%m-%d %H:%M:%S")
        == r"[0-9]{4}\-[0-9]{2}\-[0-9]{2}\ [0-9]{2}:[0-9]{2}:[0-9]{2}"
    )


def test_a_line_that_is_not_utf8_is_rejected_and_the_rest_still_counted(tmp_path: Path) -> None:
    folder = tmp_path / "t" / "date=2024-03-01"
    folder.mkdir(parents=True)
    good = [json.dumps({"kafka": {**KAFKA, "offset": i}, "value": GOOD}) for i in (0, 2)]
    data = good[0].encode() + b"\n" + b'{"kafka": \xff\xfe}\n' + good[1].encode() + b"\n"
    (folder / f"t+00000+{0:020d}+{2:020d}.ndjson").write_bytes(data)
    result = DuckDBEngine().aggregate(tmp_path, list_files(tmp_path), [])
    assert [(q.line, q.reason) for q in result.rejected] == [(2, Reason.NOT_UTF8)]
    assert [d.observations for d in result.daily] == [2]
    assert result.lines == 3
