"""Column-wise validation of CSV rows against the event contract in `weatherpipe.events`.

Every rule is derived from that module (field names, timestamp format, MEASURES bounds,
LOCATION_MAX_LENGTH, CONTROL_CHARACTERS, YEARS, Reason codes), in the order the batch's rule
list (`weatherpipe.batch.rules`) checks a raw line. A row gets the first reason that applies,
checking the fields in event order. Checks run on whole columns with Arrow compute; only
rejected rows are looked at one by one, to write their detail. The location's checks run on
its few distinct values.

The location is sent trimmed and in Unicode normal form NFC, so a name typed with a combining
accent ("Zu\u0308rich") and the same name with a precomposed letter ("Z\u00fcrich") are one
city, one key and one partition.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

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
_CONTROL: Final = character_class()
# Where the year stands in a timestamp of TIMESTAMP_FORMAT's shape, and that shape.
_YEAR_AT: Final = TIMESTAMP_FORMAT.index("%Y")
_TIMESTAMP_SHAPE: Final = re.compile(
    "".join(
        {"%Y": "[0-9]{4}"}.get(part, "[0-9]{2}" if part.startswith("%") else re.escape(part))
        for part in re.split(r"(%[A-Za-z])", TIMESTAMP_FORMAT)
    )
)


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
    field_of = dict(zip(EVENT_FIELDS, rows.fields, strict=True))
    location, checks = _location(rows)

    timestamp = pc.utf8_trim_whitespace(field_of["timestamp"])
    parsed = pc.strptime(timestamp, format=TIMESTAMP_FORMAT, unit="s", error_is_null=True)
    # strptime rolls 2024-02-30 over to 2024-03-01; printing it back exposes that.
    canonical = format_timestamps(parsed)
    checks.append(_Check(Reason.MISSING_FIELD, "timestamp", _np(pc.equal(timestamp, ""))))
    bad_time = pc.fill_null(pc.not_equal(canonical, timestamp), True)
    checks.append(
        _Check(Reason.OUT_OF_RANGE, "timestamp", _year_outside(timestamp, parsed, bad_time, years))
    )
    checks.append(_Check(Reason.BAD_TIMESTAMP, "timestamp", _np(bad_time)))

    measures: list[pa.Array] = []
    values: list[pa.Array] = []
    for measure in MEASURES:
        text = pc.utf8_trim_whitespace(field_of[measure.field])
        empty = _np(pc.equal(text, ""))
        numeric = _np(pc.match_substring_regex(text, _NUMBER))
        not_finite = np.zeros_like(numeric)
        if not numeric.all():
            not_finite = _np(pc.match_substring_regex(text, _NOT_FINITE))
        ok_text = pc.if_else(pa.array(numeric), text, "0")
        value = pc.cast(ok_text, pa.float64())
        overflow = numeric & ~_np(pc.is_finite(value))  # 1e999 parses as infinity
        outside = (
            numeric
            & ~overflow
            & ~_np(
                pc.and_(pc.greater_equal(value, measure.low), pc.less_equal(value, measure.high))
            )
        )
        checks += [
            _Check(Reason.MISSING_FIELD, measure.field, empty),
            _Check(Reason.NOT_FINITE, measure.field, not_finite | overflow),
            _Check(Reason.NOT_NUMERIC, measure.field, ~numeric),
            _Check(Reason.OUT_OF_RANGE, measure.field, outside),
        ]
        measures.append(_json_number(text, value))
        values.append(value)

    first_failure = np.full(len(rows.line), -1, dtype=np.int64)
    for index, check in enumerate(checks):
        first_failure[(first_failure < 0) & check.failed] = index
    valid = first_failure < 0
    keep = pa.array(valid)
    rejects = [
        _reject(rows, int(i), checks[first_failure[i]], values, parsed, years)
        for i in np.flatnonzero(~valid)
    ]
    return (
        ValidRows(
            line=rows.line[valid],
            location=location.filter(keep),
            timestamp=timestamp.filter(keep),
            day=pc.cast(parsed.filter(keep), pa.date32()),
            measures=tuple(m.filter(keep) for m in measures),
        ),
        rejects,
    )


def _location(rows: SplitRows) -> tuple[pa.Array, list[_Check]]:
    """The location to send (trimmed, NFC) and the checks of a row's first fields: the header
    repeated, then the location's own (computed on its distinct values)."""
    encoded = pc.dictionary_encode(rows.fields[0])
    names = encoded.dictionary
    indices = encoded.indices.to_numpy(zero_copy_only=False)
    trimmed = pc.utf8_trim_whitespace(names)
    location = pc.utf8_normalize(trimmed, form="NFC")

    def per_row(per_name: pa.Array) -> np.ndarray:
        failed = _np(per_name)
        return failed[indices] if failed.any() else np.zeros(len(indices), dtype=bool)

    header_like = per_row(pc.is_in(trimmed, pa.array(_HEADER_STARTS)))
    checks = [
        _Check(Reason.REPEATED_HEADER, None, _repeated_header(rows, header_like)),
        _Check(Reason.EMPTY_LOCATION, "location", per_row(pc.equal(location, ""))),
        _Check(
            Reason.LOCATION_TOO_LONG,
            "location",
            per_row(pc.greater(pc.utf8_length(location), LOCATION_MAX_LENGTH)),
        ),
        # On the field as written: a tab or NUL at its end is no blank to trim away.
        _Check(
            Reason.CONTROL_CHARACTER, "location", per_row(pc.match_substring_regex(names, _CONTROL))
        ),
    ]
    return location.take(encoded.indices), checks


def _repeated_header(rows: SplitRows, header_like: np.ndarray) -> np.ndarray:
    """Rows that are the header again (two files joined together; the second may keep its
    byte order mark)."""
    repeated = np.zeros(len(header_like), dtype=bool)
    for i in np.flatnonzero(header_like):  # few: only rows that start like the header
        names = [str(f[i].as_py()).strip().lstrip("\ufeff") for f in rows.fields]
        repeated[i] = names == list(CSV_COLUMNS)
    return repeated


_HEADER_STARTS: Final = [CSV_COLUMNS[0], "\ufeff" + CSV_COLUMNS[0]]


def _year_outside(
    timestamp: pa.Array, parsed: pa.Array, bad_time: pa.Array, years: tuple[int, int]
) -> np.ndarray:
    """Rows whose timestamp has the format's exact shape and a year outside `years` (judged
    on the text, so a year 0000 that no parser takes is out of range too)."""
    low, high = years
    year = pc.year(parsed)
    outside = _np(pc.or_(pc.less(year, low), pc.greater(year, high)))
    for i in np.flatnonzero(_np(bad_time)):  # few: only rows whose time did not read back
        text = str(timestamp[i].as_py())
        if _TIMESTAMP_SHAPE.fullmatch(text):
            outside[i] = not low <= int(text[_YEAR_AT : _YEAR_AT + 4]) <= high
    return outside


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
