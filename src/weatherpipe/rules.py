"""The validation rules of a weather event, as one ordered list every validator renders.

The rules are derived from `weatherpipe.events` (fields, bounds, timestamp format, reasons) and
form an ordered list of `Rule(reason, field, predicate)`: a record is rejected with the reason of
the FIRST rule whose predicate holds. Predicates are a handful of small frozen dataclasses over
JSON paths of a raw line. The producer checks CSV rows against the list (`ingest.validate`, with
Arrow), the batch renders it to DuckDB SQL (`batch.duckdb_sql`, `batch.duckdb_typed`) and Spark
SQL (`batch.spark_sql`). Each renderer matches on `Predicate` exhaustively (`match` ending in
`typing.assert_never`), so a new predicate fails type-checking in every renderer that lacks it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Final

from weatherpipe.events import (
    CONTROL_CHARACTERS,
    LOCATION_MAX_LENGTH,
    MEASURES,
    TIMESTAMP_FORMAT,
    YEARS,
    Reason,
)

Path = tuple[str, ...]
"""A JSON path from the root of a raw line, e.g. ("value", "temperature_c")."""

LINE: Final[Path] = ()
TOPIC: Final[Path] = ("kafka", "topic")
PARTITION: Final[Path] = ("kafka", "partition")
OFFSET: Final[Path] = ("kafka", "offset")
VALUE: Final[Path] = ("value",)
VALUE_ERROR: Final[Path] = ("value_error",)


def value_field(name: str) -> Path:
    """The path of an event field inside the raw line."""
    return ("value", name)


# --- predicates: each is true for a record that breaks the rule -----------------------------
@dataclass(frozen=True)
class Absent:
    """The path is missing, JSON null, or an empty string."""

    path: Path


@dataclass(frozen=True)
class NotInteger:
    """The path is not a JSON integer >= 0."""

    path: Path


@dataclass(frozen=True)
class NotString:
    """The path is not a JSON string."""

    path: Path


@dataclass(frozen=True)
class Equals:
    """The path is the JSON string `text`."""

    path: Path
    text: str


@dataclass(frozen=True)
class Present:
    """The path exists and is not JSON null."""

    path: Path


@dataclass(frozen=True)
class NotObject:
    """The path is not a JSON object."""

    path: Path


@dataclass(frozen=True)
class Blank:
    """The path is a string with nothing but blanks."""

    path: Path


@dataclass(frozen=True)
class LongerThan:
    """The path is a string longer than `length` characters once trimmed."""

    path: Path
    length: int


@dataclass(frozen=True)
class HasCharacter:
    """The path is a string holding a character of `ranges` (inclusive code point ranges)."""

    path: Path
    ranges: tuple[tuple[int, int], ...]


@dataclass(frozen=True)
class YearOutside:
    """The path is a string of exactly `pattern`'s shape whose year (the four digits at
    `start`) lies outside [low, high]. Read off the text, so a year no parser takes (0000)
    is judged like any other."""

    path: Path
    pattern: str
    start: int
    low: int
    high: int


@dataclass(frozen=True)
class NotTimestamp:
    """The path is not a string of exactly `pattern`'s shape that parses with `format` to a real
    date and time (2024-02-30 does not)."""

    path: Path
    format: str
    pattern: str


@dataclass(frozen=True)
class NotNumber:
    """The path is neither a JSON number nor a string holding a number (booleans are not)."""

    path: Path


@dataclass(frozen=True)
class NotFinite:
    """The path's number is NaN or +-infinity."""

    path: Path


@dataclass(frozen=True)
class OutOfRange:
    """The path's number lies outside [low, high]."""

    path: Path
    low: float
    high: float


Predicate = (
    Absent
    | NotInteger
    | NotString
    | Equals
    | Present
    | NotObject
    | Blank
    | LongerThan
    | HasCharacter
    | YearOutside
    | NotTimestamp
    | NotNumber
    | NotFinite
    | OutOfRange
)


@dataclass(frozen=True)
class Rule:
    """Reject with `reason` (and `field`, when it concerns one) when `predicate` holds."""

    reason: str
    field: str | None
    predicate: Predicate


def timestamp_pattern(fmt: str) -> str:
    """A regular expression for the exact shape of `fmt` (%Y four digits, the rest two), so
    engines agree on what they accept (a parser alone may allow blanks or single digits)."""
    widths = {"Y": 4, "m": 2, "d": 2, "H": 2, "M": 2, "S": 2}
    parts = re.split(r"(%[A-Za-z])", fmt)
    out = []
    for part in parts:
        if part.startswith("%") and len(part) == 2:
            out.append(f"[0-9]{{{widths[part[1]]}}}")
        else:
            out.append(re.escape(part))
    return "".join(out)


def year_start(fmt: str) -> int:
    """Where the year (%Y) starts in a timestamp of format `fmt`."""
    return len(datetime(2000, 1, 1).strftime(fmt[: fmt.index("%Y")]))


def build_rules(years: tuple[int, int] = YEARS) -> tuple[Rule, ...]:
    """The ordered rule list, from the event contract in `weatherpipe.events`; an event's year
    must lie in `years` (the settings EVENT_YEAR_MIN / EVENT_YEAR_MAX)."""
    rules: list[Rule] = [
        # A line that is not a JSON object (corrupt, or edited by hand) has nothing to read.
        Rule(Reason.INVALID_JSON, None, NotObject(LINE)),
        # The envelope: without its Kafka coordinates a record cannot be deduplicated.
        Rule(Reason.MISSING_FIELD, "kafka.topic", NotString(TOPIC)),
        Rule(Reason.MISSING_FIELD, "kafka.partition", NotInteger(PARTITION)),
        Rule(Reason.MISSING_FIELD, "kafka.offset", NotInteger(OFFSET)),
        # The consumer stores a value it could not decode as text/base64 and says why.
        Rule(Reason.NOT_UTF8, None, Equals(VALUE_ERROR, Reason.NOT_UTF8)),
        Rule(Reason.INVALID_JSON, None, Present(VALUE_ERROR)),
        Rule(Reason.NOT_AN_OBJECT, None, NotObject(VALUE)),
    ]
    location = value_field("location")
    rules += [
        Rule(Reason.MISSING_FIELD, "location", Absent(location)),
        Rule(Reason.MISSING_FIELD, "location", NotString(location)),
        Rule(Reason.EMPTY_LOCATION, "location", Blank(location)),
        Rule(Reason.LOCATION_TOO_LONG, "location", LongerThan(location, LOCATION_MAX_LENGTH)),
        # Also what PostgreSQL cannot store (NUL): such a line is quarantined, not merged.
        Rule(Reason.CONTROL_CHARACTER, "location", HasCharacter(location, CONTROL_CHARACTERS)),
    ]
    timestamp = value_field("timestamp")
    shape = timestamp_pattern(TIMESTAMP_FORMAT)
    rules += [
        Rule(Reason.MISSING_FIELD, "timestamp", Absent(timestamp)),
        Rule(
            Reason.OUT_OF_RANGE,
            "timestamp",
            YearOutside(timestamp, shape, year_start(TIMESTAMP_FORMAT), *years),
        ),
        Rule(Reason.BAD_TIMESTAMP, "timestamp", NotTimestamp(timestamp, TIMESTAMP_FORMAT, shape)),
    ]
    for measure in MEASURES:
        path = value_field(measure.field)
        rules += [
            Rule(Reason.MISSING_FIELD, measure.field, Absent(path)),
            Rule(Reason.NOT_NUMERIC, measure.field, NotNumber(path)),
            Rule(Reason.NOT_FINITE, measure.field, NotFinite(path)),
            Rule(Reason.OUT_OF_RANGE, measure.field, OutOfRange(path, measure.low, measure.high)),
        ]
    return tuple(rules)


RULES: Final = build_rules()

LOCATION: Final[Path] = value_field("location")
TIMESTAMP: Final[Path] = value_field("timestamp")
MEASURE_PATHS: Final = {m.field: value_field(m.field) for m in MEASURES}


def paths(rules: tuple[Rule, ...] = RULES) -> list[Path]:
    """Every JSON path the rules (and the aggregation) read, each once, in first-use order."""
    seen: dict[Path, None] = {}
    for rule in rules:
        seen.setdefault(rule.predicate.path, None)
    for extra in (TOPIC, PARTITION, OFFSET, LOCATION, TIMESTAMP, *MEASURE_PATHS.values()):
        seen.setdefault(extra, None)
    return list(seen)
