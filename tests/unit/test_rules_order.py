"""The producer's CSV validation and the batch's SQL read one ordered rule list: a row that breaks
two rules gets the reason of the rule that comes first in `weatherpipe.rules.RULES`, in both."""

from __future__ import annotations

import itertools
import json
import math
from pathlib import Path
from typing import Any

from tests.unit.test_batch_rules import KAFKA, duckdb_verdicts
from weatherpipe.events import CSV_COLUMNS, EVENT_FIELDS, LOCATION_MAX_LENGTH, Reason
from weatherpipe.ingest.csv_reader import read_blocks, split_fields
from weatherpipe.ingest.validate import validate
from weatherpipe.rules import RULES

Verdict = tuple[str | None, str | None]
GOOD = dict(
    zip(EVENT_FIELDS, ["Chicago", "2024-03-01 14:05:09", "3.1", "71.2", "0.4", "18.9"], strict=True)
)

# One broken cell each: (field, cell, the rule it breaks).
SINGLES: list[tuple[str, str, Verdict]] = [
    ("location", "  ", (Reason.EMPTY_LOCATION, "location")),
    ("location", "x" * (LOCATION_MAX_LENGTH + 1), (Reason.LOCATION_TOO_LONG, "location")),
    ("location", "Dal\u202elas", (Reason.CONTROL_CHARACTER, "location")),
    ("timestamp", "", (Reason.MISSING_FIELD, "timestamp")),
    ("timestamp", "2101-01-01 00:00:00", (Reason.OUT_OF_RANGE, "timestamp")),
    ("timestamp", "2024-02-30 14:05:09", (Reason.BAD_TIMESTAMP, "timestamp")),
    ("temperature_c", "", (Reason.MISSING_FIELD, "temperature_c")),
    ("temperature_c", "warm", (Reason.NOT_NUMERIC, "temperature_c")),
    ("humidity_pct", "NaN", (Reason.NOT_FINITE, "humidity_pct")),
    ("humidity_pct", "140", (Reason.OUT_OF_RANGE, "humidity_pct")),
    ("precipitation_mm", "inf", (Reason.NOT_FINITE, "precipitation_mm")),
    ("wind_speed_kmh", "fast", (Reason.NOT_NUMERIC, "wind_speed_kmh")),
    ("wind_speed_kmh", "1e999", (Reason.NOT_FINITE, "wind_speed_kmh")),
]
# One cell that breaks two rules of its field at once, and the first of them.
DOUBLES: list[tuple[str, str, Verdict]] = [
    ("location", "\t\t", (Reason.EMPTY_LOCATION, "location")),  # blank; control characters
    ("location", "\u202e" * (LOCATION_MAX_LENGTH + 1), (Reason.LOCATION_TOO_LONG, "location")),
    ("timestamp", "0000-01-01 00:00:00", (Reason.OUT_OF_RANGE, "timestamp")),  # no real date
    ("temperature_c", "-inf", (Reason.NOT_FINITE, "temperature_c")),  # below -90 too
    ("temperature_c", "-1e999", (Reason.NOT_FINITE, "temperature_c")),
]


def rank(verdict: Verdict) -> int:
    """Where the first rule with this reason and field stands in the shared list."""
    return next(i for i, rule in enumerate(RULES) if (rule.reason, rule.field) == verdict)


def pairs() -> list[tuple[dict[str, str], Verdict]]:
    """Rows with two broken cells in different fields, and the verdict of the earlier rule."""
    out = []
    for (f1, c1, v1), (f2, c2, v2) in itertools.combinations(SINGLES, 2):
        if f1 != f2:
            out.append(({**GOOD, f1: c1, f2: c2}, min(v1, v2, key=rank)))
    return out


def producer_verdicts(rows: list[dict[str, str]], tmp: Path) -> list[Verdict]:
    """The producer's verdict on each row, read from a CSV file as `weatherpipe produce` does."""
    path = tmp / "rows.csv"
    lines = [",".join(CSV_COLUMNS), *(",".join(row[f] for f in EVENT_FIELDS) for row in rows)]
    path.write_text("\n".join(lines) + "\n")
    verdicts: list[Verdict] = [(None, None)] * len(rows)
    for block in read_blocks(path):
        split, wrong = split_fields(block)
        assert wrong == []
        for reject in validate(split)[1]:
            verdicts[reject.line - 2] = (reject.reason, reject.field)
    return verdicts


def raw_line(row: dict[str, str]) -> str:
    """The row as a raw line: a cell that reads as a finite number as a JSON number, any other
    as the JSON string it is."""
    value: dict[str, Any] = dict(row)
    for field in EVENT_FIELDS[2:]:
        try:
            number = float(row[field])
        except ValueError:
            continue
        if math.isfinite(number):
            value[field] = number
    return json.dumps({"kafka": KAFKA, "value": value})


def test_each_broken_cell_alone_gets_its_own_rule_in_the_producer_and_the_batch(
    tmp_path: Path,
) -> None:
    rows = [{**GOOD, field: cell} for field, cell, _ in SINGLES]
    expected = [verdict for _, _, verdict in SINGLES]
    assert producer_verdicts(rows, tmp_path) == expected
    assert duckdb_verdicts([raw_line(row) for row in rows], tmp_path) == expected


def test_the_earlier_rule_wins_in_the_producer_and_the_batch_alike(tmp_path: Path) -> None:
    cases = pairs() + [({**GOOD, field: cell}, verdict) for field, cell, verdict in DOUBLES]
    rows = [row for row, _ in cases]
    expected = [verdict for _, verdict in cases]
    assert producer_verdicts(rows, tmp_path) == expected
    assert duckdb_verdicts([raw_line(row) for row in rows], tmp_path) == expected


TWO_RULE_VALUES: list[Any] = [
    json.loads(raw_line(row))["value"]
    for row, _ in [*pairs()[::7], *(({**GOOD, f: c}, v) for f, c, v in DOUBLES)]
]
"""Raw values that break two rules, for comparing engines that need a running service."""
