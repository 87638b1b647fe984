"""Column-wise validation of CSV rows against the shared rule list (`weatherpipe.rules`).

A row is checked against the same ordered rules as a raw line in the batch, and gets the reason
of the first rule that holds, so the producer and the batch reject a row for the same reason.
Before them, one check only a CSV file needs: the header repeated in the middle of the file.
Checks run on whole columns with Arrow compute; only rejected rows are looked at one by one, to
write their detail. The location's checks run on its few distinct values.

The location is sent trimmed and in Unicode normal form NFC, so a name typed with a combining
accent ("Zu\u0308rich") and the same name with a precomposed letter ("Z\u00fcrich") are one
city, one key and one partition.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import Final, assert_never

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from weatherpipe import rules
from weatherpipe.events import (
    CSV_COLUMNS,
    CSV_TO_EVENT,
    EVENT_FIELDS,
    LOCATION_MAX_LENGTH,
    MEASURES,
    TIMESTAMP_FORMAT,
    YEARS,
    Reason,
    character_class,
)
from weatherpipe.ingest.csv_reader import SplitRows
from weatherpipe.ingest.reject import Reject

# Anything Python's float() or Arrow accept as a number, blanks trimmed first.
_NUMBER: Final = r"^[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?$"
_NOT_FINITE: Final = r"(?i)^[+-]?(nan|inf|infinity)$"
# A JSON number, so the original text can be sent as it is.
_JSON_NUMBER: Final = r"^-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?$"
_TIMESTAMP_HUMAN: Final = "YYYY-MM-DD HH:MM:SS"


def format_timestamps(timestamps: pa.Array) -> pa.Array:
    """`timestamps` as TIMESTAMP_FORMAT text. Arrow's plain cast prints that format too and is
    fifteen times faster than strftime, so it is used whenever it agrees."""
    if _CAST_PRINTS_FORMAT:
        return pc.cast(timestamps, pa.string())
    return pc.strftime(timestamps, format=TIMESTAMP_FORMAT)


_SAMPLE: Final = pa.array([0, 1_709_251_199], pa.timestamp("s"))
_CAST_PRINTS_FORMAT: Final = (
    pc.cast(_SAMPLE, pa.string()).to_pylist()
    == pc.strftime(_SAMPLE, format=TIMESTAMP_FORMAT).to_pylist()
)


@dataclass(frozen=True)
class ValidRows:
    """Rows that passed every check, as columns ready to be encoded."""

    line: np.ndarray
    location: pa.Array
    """Trimmed location text."""
    timestamp: pa.Array
    """Canonical `TIMESTAMP_FORMAT` text."""
    day: pa.Array
    """The event day (date32) of each row."""
    measures: tuple[pa.Array, ...]
    """One array per MEASURES entry: the value as JSON number text (always with a '.' or an
    exponent, so it decodes as a float)."""

    def __len__(self) -> int:
        return len(self.line)

    def filter(self, keep: np.ndarray) -> ValidRows:
        """The rows where `keep` is true."""
        mask = pa.array(keep)
        return ValidRows(
            line=self.line[keep],
            location=self.location.filter(mask),
            timestamp=self.timestamp.filter(mask),
            day=self.day.filter(mask),
            measures=tuple(m.filter(mask) for m in self.measures),
        )


@dataclass(frozen=True)
class _Check:
    reason: str
    field: str | None
    failed: np.ndarray


def validate(rows: SplitRows, years: tuple[int, int] = YEARS) -> tuple[ValidRows, list[Reject]]:
    """Split `rows` into valid rows and rejects with reasons (rejects in line order); an
    event's year must lie in `years` (inclusive)."""
    cells = _Cells(rows)
    checks = [_Check(Reason.REPEATED_HEADER, None, cells.repeated_header)]
    for rule in _rules(years):
        failed = cells.holds(rule.predicate)
        if failed is not cells.never:
            checks.append(_Check(rule.reason, rule.field, failed))

    first_failure = np.full(len(rows.line), -1, dtype=np.int64)
    for index, check in enumerate(checks):
        first_failure[(first_failure < 0) & check.failed] = index
    valid = first_failure < 0
    keep = pa.array(valid)
    values = [number.value for number in cells.numbers.values()]
    rejects = [
        _reject(rows, int(i), checks[first_failure[i]], values, cells.parsed, years)
        for i in np.flatnonzero(~valid)
    ]
    return (
        ValidRows(
            line=rows.line[valid],
            location=cells.location.take(cells.location_index).filter(keep),
            timestamp=cells.timestamp.filter(keep),
            day=pc.cast(cells.parsed.filter(keep), pa.date32()),
            measures=tuple(
                _json_number(n.text, n.value).filter(keep) for n in cells.numbers.values()
            ),
        ),
        rejects,
    )


@functools.cache
def _rules(years: tuple[int, int]) -> tuple[rules.Rule, ...]:
    return rules.build_rules(years)


@dataclass(frozen=True)
class _Number:
    """A measure's cells: trimmed text, which are numbers, which say NaN or infinity, and the
    value (0 where not a number)."""

    text: pa.Array
    numeric: np.ndarray
    special: np.ndarray
    value: pa.Array
    overflow: np.ndarray
    """Numbers too large for a float (1e999), which parse as infinity."""

    @classmethod
    def read(cls, cells: pa.Array) -> _Number:
        text = pc.utf8_trim_whitespace(cells)
        numeric = _np(pc.match_substring_regex(text, _NUMBER))
        special = np.zeros_like(numeric)
        if not numeric.all():
            special = _np(pc.match_substring_regex(text, _NOT_FINITE))
        value = pc.cast(pc.if_else(pa.array(numeric), text, "0"), pa.float64())
        overflow = numeric & ~_np(pc.is_finite(value))
        return cls(text, numeric, special, value, overflow)


class _Cells:
    """A block's CSV cells, read once, and which of them a rule's predicate holds for.

    A CSV row has no envelope (the producer writes it) and every cell is text, so the envelope's
    predicates and "not a string" never hold. An empty location cell is a blank text, which the
    location's Blank rule names (an empty location, not a missing field); an empty timestamp or
    measure is absent. The location's checks run on its few distinct values."""

    def __init__(self, rows: SplitRows) -> None:
        self.never = np.zeros(len(rows.line), dtype=bool)
        field_of = dict(zip(EVENT_FIELDS, rows.fields, strict=True))
        encoded = pc.dictionary_encode(field_of["location"])
        self.names = encoded.dictionary
        self.location_index = encoded.indices
        self.name_of_row = encoded.indices.to_numpy(zero_copy_only=False)
        self.location = pc.utf8_normalize(pc.utf8_trim_whitespace(self.names), form="NFC")
        header_like = self._per_row(
            pc.is_in(pc.utf8_trim_whitespace(self.names), pa.array(_HEADER_STARTS))
        )
        self.repeated_header = _repeated_header(rows, header_like)

        self.timestamp = pc.utf8_trim_whitespace(field_of["timestamp"])
        self.parsed = pc.strptime(
            self.timestamp, format=TIMESTAMP_FORMAT, unit="s", error_is_null=True
        )
        # strptime rolls 2024-02-30 over to 2024-03-01; printing it back exposes that.
        canonical = format_timestamps(self.parsed)
        self.bad_time = pc.fill_null(pc.not_equal(canonical, self.timestamp), True)
        self.numbers = {m.field: _Number.read(field_of[m.field]) for m in MEASURES}

    def _per_row(self, per_name: pa.Array) -> np.ndarray:
        failed = _np(per_name)
        return failed[self.name_of_row] if failed.any() else self.never

    def holds(self, p: rules.Predicate) -> np.ndarray:
        """The rows for which predicate `p` holds (`never` when it cannot hold for a CSV row)."""
        field = p.path[1] if len(p.path) == 2 and p.path[0] == rules.VALUE[0] else None
        match p:
            case (
                rules.NotObject()
                | rules.NotString()
                | rules.NotInteger()
                | rules.Equals()
                | rules.Present()
            ):
                return self.never
            case rules.Absent():
                if field == "location":
                    return self.never
                if field == "timestamp":
                    return _np(pc.equal(self.timestamp, ""))
                if field in self.numbers:
                    return _np(pc.equal(self.numbers[field].text, ""))
            case rules.Blank() | rules.LongerThan() | rules.HasCharacter():
                if field == "location":
                    return self._location_holds(p)
            case rules.YearOutside():
                if field == "timestamp":
                    return self._year_outside(p)
            case rules.NotTimestamp():
                if field == "timestamp":
                    return _np(self.bad_time)
            case rules.NotNumber() | rules.NotFinite() | rules.OutOfRange():
                if field in self.numbers:
                    return self._number_holds(p, self.numbers[field])
            case _:
                assert_never(p)
        raise TypeError(f"no CSV check for {p!r}: the CSV has no such column")

    def _location_holds(self, p: rules.Blank | rules.LongerThan | rules.HasCharacter) -> np.ndarray:
        if isinstance(p, rules.Blank):
            return self._per_row(pc.equal(self.location, ""))
        if isinstance(p, rules.LongerThan):
            return self._per_row(pc.greater(pc.utf8_length(self.location), p.length))
        # On the field as written: a tab or NUL at its end is no blank to trim away.
        return self._per_row(pc.match_substring_regex(self.names, character_class(p.ranges)))

    @staticmethod
    def _number_holds(
        p: rules.NotNumber | rules.NotFinite | rules.OutOfRange, number: _Number
    ) -> np.ndarray:
        holds: np.ndarray
        if isinstance(p, rules.NotNumber):
            holds = ~number.numeric & ~number.special
        elif isinstance(p, rules.NotFinite):
            holds = number.special | number.overflow
        else:
            inside = pc.and_(
                pc.greater_equal(number.value, p.low), pc.less_equal(number.value, p.high)
            )
            holds = number.numeric & ~number.overflow & ~_np(inside)
        return holds

    def _year_outside(self, p: rules.YearOutside) -> np.ndarray:
        """Rows whose timestamp has the format's exact shape and a year outside [low, high]
        (judged on the text, so a year 0000 that no parser takes is out of range too)."""
        year = pc.year(self.parsed)
        outside = _np(pc.or_(pc.less(year, p.low), pc.greater(year, p.high)))
        shape = re.compile(p.pattern)
        for i in np.flatnonzero(_np(self.bad_time)):  # few: only rows whose time did not read back
            text = str(self.timestamp[i].as_py())
            if shape.fullmatch(text):
                outside[i] = not p.low <= int(text[p.start : p.start + 4]) <= p.high
        return outside


def _repeated_header(rows: SplitRows, header_like: np.ndarray) -> np.ndarray:
    """Rows that are the header again (two files joined together; the second may keep its
    byte order mark)."""
    repeated = np.zeros(len(header_like), dtype=bool)
    for i in np.flatnonzero(header_like):  # few: only rows that start like the header
        names = [str(f[i].as_py()).strip().lstrip("\ufeff") for f in rows.fields]
        repeated[i] = names == list(CSV_COLUMNS)
    return repeated


_HEADER_STARTS: Final = [CSV_COLUMNS[0], "\ufeff" + CSV_COLUMNS[0]]


def _np(mask: pa.Array | pa.ChunkedArray) -> np.ndarray:
    return np.asarray(pc.fill_null(mask, False).to_numpy(zero_copy_only=False), dtype=bool)


def _json_number(text: pa.Array, value: pa.Array) -> pa.Array:
    """The original text where it is a JSON number, else the parsed value printed by Arrow;
    with '.0' appended to integers so every consumer decodes a float. (Fast paths: clean
    files need neither the printing nor the appending.)"""
    is_json = pc.match_substring_regex(text, _JSON_NUMBER)
    printed = text
    if not pc.all(is_json).as_py():
        printed = pc.if_else(is_json, text, pc.cast(value, pa.string()))
    has_point = pc.match_substring(printed, ".")
    if pc.all(has_point).as_py():
        return printed
    is_float = pc.or_(has_point, pc.match_substring_regex(printed, "[eE]"))
    return pc.if_else(is_float, printed, pc.binary_join_element_wise(printed, ".0", ""))


def _reject(
    rows: SplitRows,
    i: int,
    check: _Check,
    values: list[pa.Array],
    parsed: pa.Array,
    years: tuple[int, int],
) -> Reject:
    raw = str(rows.raw[i].as_py())
    column = {v: k for k, v in CSV_TO_EVENT.items()}.get(check.field or "", "")
    text = ""
    if check.field is not None:
        text = str(rows.fields[EVENT_FIELDS.index(check.field)][i].as_py())
    detail = {
        Reason.EMPTY_LOCATION: f"{column} is empty",
        Reason.LOCATION_TOO_LONG: (
            f"{column} has {len(text.strip())} characters, at most {LOCATION_MAX_LENGTH} allowed"
        ),
        Reason.MISSING_FIELD: f"{column} is empty",
        Reason.BAD_TIMESTAMP: (
            f"{column} {text!r} is not a real date and time as {_TIMESTAMP_HUMAN}"
        ),
        Reason.NOT_NUMERIC: f"{column} {text!r} is not a number",
        Reason.NOT_FINITE: f"{column} {text!r} is not a finite number",
        Reason.CONTROL_CHARACTER: (
            f"{column} {text!r} holds a control or text-direction character (such as a tab, "
            "NUL or U+202E), which no place name has"
        ),
        Reason.REPEATED_HEADER: (
            "the header line again, in the middle of the file (were two files joined?)"
        ),
    }.get(check.reason, "")
    if check.reason == Reason.OUT_OF_RANGE and check.field == "timestamp":
        detail = (
            f"{column} {text.strip()!r} has a year outside {years[0]} … {years[1]} "
            "(EVENT_YEAR_MIN / EVENT_YEAR_MAX)"
        )
    elif check.reason == Reason.OUT_OF_RANGE:
        position = [m.field for m in MEASURES].index(str(check.field))
        measure = MEASURES[position]
        detail = (
            f"{column} {values[position][i].as_py():g} is outside the plausible range "
            f"{measure.low:g} … {measure.high:g} {measure.unit}"
        )
    readable = check.reason not in (Reason.BAD_TIMESTAMP, Reason.REPEATED_HEADER) and not (
        check.reason == Reason.OUT_OF_RANGE and check.field == "timestamp"
    )
    when = parsed[i].as_py() if readable else None
    day = when.date() if when is not None else None
    return Reject(rows.line[i].item(), raw, check.reason, check.field, detail, day)
