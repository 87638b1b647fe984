"""The shared validation rules: derived from the event contract, ordered, and rendered to DuckDB
SQL that agrees with a plain-Python reading of the contract on every kind of value."""

from __future__ import annotations

import json
import math
from typing import Any

import duckdb
import pytest

from tests.batch_reference import check, parse_line
from weatherpipe.batch import rules as r
from weatherpipe.batch.duckdb_sql import Renderer
from weatherpipe.events import LOCATION_MAX_LENGTH, MEASURES, Reason

GOOD = {
    "location": "Chicago",
    "timestamp": "2024-03-01 14:05:09",
    "temperature_c": 3.1,
    "humidity_pct": 71.2,
    "precipitation_mm": 0.4,
    "wind_speed_kmh": 18.9,
}
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


def duckdb_verdicts(lines: list[str]) -> list[tuple[str | None, str | None]]:
    q = Renderer()
    with duckdb.connect() as db:
        db.execute("CREATE TABLE input (n INTEGER, line VARCHAR)")
        db.executemany("INSERT INTO input VALUES (?, ?)", list(enumerate(lines)))
        return [
            (reason, field)
            for _, reason, field in db.execute(
                f"""
                WITH parsed AS (
                    SELECT n, line, j, json_type(j) AS jt FROM (
                        SELECT *, CASE WHEN json_valid(line) THEN line::JSON END AS j FROM input)
                ), fragments AS (SELECT n, line, jt, {q.fragments()} FROM parsed
                ), unpacked AS (SELECT n, line, jt, {q.unpacked()} FROM fragments
                ), numbered AS (SELECT *, {q.numbers()} FROM unpacked)
                SELECT n, {q.reason()}, {q.field()} FROM numbered ORDER BY n"""
            ).fetchall()
        ]


def test_duckdb_rendering_agrees_with_the_reference_on_every_case() -> None:
    expected = [check(parse_line(text)) or (None, None) for text in LINE_CASES]
    assert duckdb_verdicts(LINE_CASES) == expected
    # The cases cover every reason a raw line can be rejected for.
    raw_reasons = {v for k, v in vars(Reason).items() if k.isupper()} - {Reason.WRONG_FIELD_COUNT}
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
def test_the_first_failing_rule_gives_the_reason(value: Any, reason: str, field: str) -> None:
    assert duckdb_verdicts([line(value)]) == [(reason, field)]


def test_rules_are_derived_from_the_event_contract() -> None:
    bounds = {
        rule.field: (rule.predicate.low, rule.predicate.high)
        for rule in r.RULES
        if isinstance(rule.predicate, r.OutOfRange)
    }
    assert bounds == {m.field: (m.low, m.high) for m in MEASURES}
    lengths = [rule.predicate for rule in r.RULES if isinstance(rule.predicate, r.LongerThan)]
    assert [p.length for p in lengths] == [LOCATION_MAX_LENGTH]
    assert r.RULES[0] == r.Rule(Reason.INVALID_JSON, None, r.NotObject(()))


def test_timestamp_pattern_follows_the_format() -> None:
    assert (
        r.timestamp_pattern("%Y-%m-%d %H:%M:%S")
        == r"[0-9]{4}\-[0-9]{2}\-[0-9]{2}\ [0-9]{2}:[0-9]{2}:[0-9]{2}"
    )
