"""Writes the bad-input corpus and its manifest: broken weather CSVs (for `weatherpipe produce`)
and broken raw-zone files (for `weatherpipe batch`), each with the outcome it must have.

Run `python -m tests.reliability.corpus.make_corpus` after changing a case; the test checks that
the committed files equal what this script makes.

manifest.json, per file (path relative to this folder):
- CSV, rejected as a whole: {"exit": 1, "message": [substrings of the error]};
- CSV, read: {"exit": 0, "dlq": [[line, reason, field], ...], "valid": rows delivered,
  "blank": blank lines skipped (when there are any), "locations": the distinct locations
  sent (where the case is about them)};
- raw: {"quarantine": [[line, reason, field], ...], "location": its valid lines' location,
  "aggregated": valid lines counted (its duplicate lines count once)}.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.rawzone_files import Record, Undecodable, event, file_path, line_for
from weatherpipe.events import CSV_COLUMNS, LOCATION_MAX_LENGTH, Reason

HERE = Path(__file__).resolve().parent
HEADER = ",".join(CSV_COLUMNS)
VALID_ROWS = (
    "New York,2024-01-14 21:12:46,10.68,41.19,4.02,8.23",
    "Chicago,2024-02-03 06:00:00,-4.5,66.0,0.0,19.1",
    "Houston,2024-03-01 23:59:59,21.0,80.25,12.5,0",
)
TOO_LONG = "L" * (LOCATION_MAX_LENGTH + 1)
FIX_HEADER = "Fix the header line and run again"

Expected = dict[str, Any]


def _csv(*bad: str, before: int = 2) -> bytes:
    """Header, `before` valid rows, the `bad` lines, then the remaining valid row."""
    lines = [HEADER, *VALID_ROWS[:before], *bad, *VALID_ROWS[before:]]
    return ("\n".join(lines) + "\n").encode()


def _row_error(reason: str, field: str | None, *bad: str) -> tuple[bytes, Expected]:
    """Valid rows around `bad` lines that all go to the dead-letter topic with `reason`."""
    dlq = [[4 + i, reason, field] for i in range(len(bad))]
    return _csv(*bad), {"exit": 0, "dlq": dlq, "valid": len(VALID_ROWS)}


def _header_error(header: str, *message: str) -> tuple[bytes, Expected]:
    return (header + "\n" + "\n".join(VALID_ROWS) + "\n").encode(), {
        "exit": 1,
        "message": ["line 1", *message, FIX_HEADER],
    }


def csv_cases() -> dict[str, tuple[bytes, Expected]]:
    """File name -> (content, expected outcome)."""
    ok = {"exit": 0, "dlq": [], "valid": len(VALID_ROWS)}
    cases: dict[str, tuple[bytes, Expected]] = {
        "missing_column.csv": _header_error(
            "Location,Date_Time,Temperature_C,Humidity_pct,Precipitation_mm",
            "missing column(s) Wind_Speed_kmh",
        ),
        "misnamed_column.csv": _header_error(
            "Location,Date_Time,Temp_C,Humidity_pct,Precipitation_mm,Wind_Speed_kmh",
            "missing column(s) Temperature_C",
            "unexpected column(s) 'Temp_C'",
        ),
        "wrong_column_order.csv": _header_error(
            "Date_Time,Location,Temperature_C,Humidity_pct,Precipitation_mm,Wind_Speed_kmh",
            "columns in the wrong order",
        ),
        "empty_file.csv": (
            b"",
            {"exit": 1, "message": ["line 1", "missing column(s) Location", FIX_HEADER]},
        ),
        "header_only.csv": ((HEADER + "\n").encode(), {"exit": 0, "dlq": [], "valid": 0}),
        "bom_crlf.csv": (
            b"\xef\xbb\xbf" + ("\r\n".join([HEADER, *VALID_ROWS]) + "\r\n").encode(),
            ok,
        ),
        "too_few_fields.csv": _row_error(
            Reason.WRONG_FIELD_COUNT, None, "Dallas,2024-01-02 10:00:00,5.0,50.0"
        ),
        "too_many_fields.csv": _row_error(
            Reason.WRONG_FIELD_COUNT, None, "Dallas,2024-01-02 10:00:00,5.0,50.0,1.0,2.0,3.0"
        ),
        "non_numeric.csv": _row_error(
            Reason.NOT_NUMERIC, "temperature_c", "Dallas,2024-01-02 10:00:00,warm,50.0,1.0,2.0"
        ),
        "nan.csv": _row_error(
            Reason.NOT_FINITE, "humidity_pct", "Dallas,2024-01-02 10:00:00,5.0,NaN,1.0,2.0"
        ),
        "inf.csv": _row_error(
            Reason.NOT_FINITE, "precipitation_mm", "Dallas,2024-01-02 10:00:00,5.0,50.0,inf,2.0"
        ),
        "minus_infinity.csv": _row_error(
            Reason.NOT_FINITE, "temperature_c", "Dallas,2024-01-02 10:00:00,-Infinity,50,1,2"
        ),
        "impossible_date.csv": _row_error(
            Reason.BAD_TIMESTAMP, "timestamp", "Dallas,2024-02-30 10:00:00,5.0,50.0,1.0,2.0"
        ),
        "hour_25.csv": _row_error(
            Reason.BAD_TIMESTAMP, "timestamp", "Dallas,2024-01-02 25:00:00,5.0,50.0,1.0,2.0"
        ),
        "empty_location.csv": _row_error(
            Reason.EMPTY_LOCATION, "location", ",2024-01-02 10:00:00,5.0,50.0,1.0,2.0"
        ),
        "blank_location.csv": _row_error(
            Reason.EMPTY_LOCATION, "location", "   ,2024-01-02 10:00:00,5.0,50.0,1.0,2.0"
        ),
        "location_too_long.csv": _row_error(
            Reason.LOCATION_TOO_LONG, "location", f"{TOO_LONG},2024-01-02 10:00:00,5,50,1,2"
        ),
        "humidity_140.csv": _row_error(
            Reason.OUT_OF_RANGE, "humidity_pct", "Dallas,2024-01-02 10:00:00,5.0,140,1.0,2.0"
        ),
        "negative_precipitation.csv": _row_error(
            Reason.OUT_OF_RANGE, "precipitation_mm", "Dallas,2024-01-02 10:00:00,5.0,50,-0.1,2"
        ),
        "wind_999.csv": _row_error(
            Reason.OUT_OF_RANGE, "wind_speed_kmh", "Dallas,2024-01-02 10:00:00,5.0,50.0,1.0,999"
        ),
        "temperature_minus_100.csv": _row_error(
            Reason.OUT_OF_RANGE, "temperature_c", "Dallas,2024-01-02 10:00:00,-100,50.0,1.0,2.0"
        ),
        "quoted_fields.csv": (
            _csv('"Austin, TX","2024-01-02 10:00:00","5.0","50.0","1.0","2.0"'),
            {"exit": 0, "dlq": [], "valid": len(VALID_ROWS) + 1},
        ),
        # Blank lines are not rows: skipped and counted in the summary, not dead letters.
        "trailing_empty_lines.csv": (_csv() + b"\n\n", {**ok, "blank": 2}),
        "blank_lines_between_rows.csv": (_csv("", " \t"), {**ok, "blank": 2}),
        "only_commas.csv": _row_error(Reason.EMPTY_LOCATION, "location", ",,,,,"),
        "binary_garbage.csv": (
            bytes(range(255, -1, -1)) * 4,
            {"exit": 1, "message": ["line 1", "not UTF-8", "Save the file as UTF-8"]},
        ),
    }
    cases.update(_characters_and_lines())
    cases.update(_timestamps())
    cases.update(_encodings())
    cases["non_utf8_line.csv"] = (
        _csv("Zürich,2024-01-02 10:00:00,5.0,50.0,1.0,2.0").replace("Zü".encode(), b"Z\xfc"),
        {"exit": 0, "dlq": [[4, Reason.NOT_UTF8, None]], "valid": len(VALID_ROWS)},
    )
    return cases


def _characters_and_lines() -> dict[str, tuple[bytes, Expected]]:
    """Control and text-direction characters in a location, Unicode forms, line ends, quoted
    fields over several lines, the header again."""
    row = "{},2024-01-02 10:00:00,5.0,50.0,1.0,2.0"
    control = (Reason.CONTROL_CHARACTER, "location")
    two_lines = row.format('"San\nJose"')  # a quoted field holding a line end
    return {
        "control_nul.csv": _row_error(*control, row.format("Zu\x00rich")),
        "control_tab.csv": _row_error(*control, row.format("San\tJose"), row.format("Dallas\t")),
        "control_c1.csv": _row_error(*control, row.format("Dal\u0085las")),
        "bidi_override.csv": _row_error(*control, row.format("\u202eDallas")),
        # NFC and NFD spellings of one name: both sent, as one location (NFC).
        "nfc_and_nfd.csv": (
            _csv(row.format("Z\u00fcrich"), row.format("Zu\u0308rich")),
            {
                "exit": 0,
                "dlq": [],
                "valid": len(VALID_ROWS) + 2,
                "locations": sorted(["New York", "Chicago", "Houston", "Z\u00fcrich"]),
            },
        ),
        "cr_line_ends.csv": (("\r".join([HEADER, *VALID_ROWS]) + "\r").encode(), _ok()),
        # One row over two lines, set aside once (its location holds the line end); the row
        # after it is read as line 6.
        "quoted_line_end.csv": (
            _csv(two_lines),
            {"exit": 0, "dlq": [[4, *control]], "valid": len(VALID_ROWS)},
        ),
        "quoted_line_end_crlf.csv": (
            _csv(two_lines).replace(b"\n", b"\r\n"),
            {"exit": 0, "dlq": [[4, *control]], "valid": len(VALID_ROWS)},
        ),
        # A quote that never closes is a broken row of its own line; the rows after it count.
        "unclosed_quote.csv": _row_error(Reason.UNCLOSED_QUOTE, None, row.format('"Austin')),
        "repeated_header.csv": _row_error(Reason.REPEATED_HEADER, None, HEADER),
        "repeated_header_with_bom.csv": _row_error(Reason.REPEATED_HEADER, None, "\ufeff" + HEADER),
        # 5 MB in one quoted field over two lines: one message cannot hold it.
        "huge_quoted_field.csv": (
            _csv(row.format('"Dal\nlas' + "x" * 5_000_000 + '"')),
            {"exit": 0, "dlq": [[4, Reason.TOO_LARGE, None]], "valid": len(VALID_ROWS)},
        ),
        # Small enough for a message, but its error quotes the field: 600,000 NUL bytes,
        # escaped in the dead-letter record six times as long.
        "error_quotes_a_long_field.csv": _row_error(
            Reason.BAD_TIMESTAMP, "timestamp", "Dallas," + "\x00" * 600_000 + ",5.0,50.0,1.0,2.0"
        ),
    }


def _timestamps() -> dict[str, tuple[bytes, Expected]]:
    """Years outside 1900 … 2100 (judged on the text: 0000 too), a leap second, time zones."""
    row = "Dallas,{},5.0,50.0,1.0,2.0"
    years = ("0000-01-01 00:00:00", "1899-12-31 23:59:59", "2101-01-01 00:00:00")
    bad_time = (Reason.BAD_TIMESTAMP, "timestamp")
    return {
        "year_out_of_range.csv": _row_error(
            Reason.OUT_OF_RANGE,
            "timestamp",
            *(row.format(t) for t in (*years, "9999-12-31 23:59:59")),
        ),
        "years_at_the_bounds.csv": (
            _csv(row.format("1900-01-01 00:00:00"), row.format("2100-12-31 23:59:59")),
            {"exit": 0, "dlq": [], "valid": len(VALID_ROWS) + 2},
        ),
        # 23:59:60 is no time the contract can hold; a time zone is not part of it either.
        "leap_second.csv": _row_error(*bad_time, row.format("2016-12-31 23:59:60")),
        "time_zone_suffix.csv": _row_error(
            *bad_time,
            row.format("2024-01-02 10:00:00Z"),
            row.format("2024-01-02 10:00:00+01:00"),
            row.format("2024-01-02T10:00:00"),
        ),
    }


def _encodings() -> dict[str, tuple[bytes, Expected]]:
    """UTF-16 and UTF-32 files: refused as a whole, with what to do."""
    text = "\n".join([HEADER, *VALID_ROWS]) + "\n"
    save = "Save it as UTF-8"
    return {
        "utf16_bom.csv": (
            text.encode("utf-16"),
            {"exit": 1, "message": ["line 1", "is UTF-16 text", save]},
        ),
        "utf16_without_bom.csv": (
            text.encode("utf-16-le"),
            {"exit": 1, "message": ["line 1", "UTF-16 or UTF-32", save]},
        ),
        "utf32_bom.csv": (
            text.encode("utf-32"),
            {"exit": 1, "message": ["line 1", "is UTF-32 text", save]},
        ),
    }


def _ok() -> Expected:
    return {"exit": 0, "dlq": [], "valid": len(VALID_ROWS)}


def _raw(case: str, lines: list[Record | str], partition: int = 0) -> tuple[str, bytes]:
    """A raw file of topic `case` (relative path, content): records and literal lines."""
    topic = f"corpus_{case}"
    offsets = [r.offset for r in lines if isinstance(r, Record)]
    path = file_path(
        Path("raw"), topic, partition, min(offsets), max(offsets), Record(0, 0, 0).timestamp_ms
    )
    text = "".join((line_for(topic, r) if isinstance(r, Record) else r) + "\n" for r in lines)
    return path.as_posix(), text.encode()


def _good(case: str, n: int = 0, **changes: Any) -> dict[str, Any]:
    value = event(f"corpus {case}", "2024-03-01 12:00:00", 10.0 + n, 50.0, 1.0, 5.0)
    value.update(changes)
    return value


def raw_cases() -> dict[str, tuple[bytes, Expected]]:
    """Relative path -> (content, expected outcome)."""
    cases: dict[str, tuple[bytes, Expected]] = {}

    def add(
        case: str,
        bad: list[Record | str],
        quarantine: list[list[Any]],
        aggregated: int = 2,
        partition: int = 0,
    ) -> None:
        """Two valid records (offsets 0, 1), then the `bad` lines (line 3 on)."""
        lines: list[Record | str] = [
            Record(partition, 0, _good(case, 0)),
            Record(partition, 1, _good(case, 1)),
            *bad,
        ]
        path, content = _raw(case, lines, partition)
        cases[path] = (
            content,
            {"quarantine": quarantine, "location": f"corpus {case}", "aggregated": aggregated},
        )

    def coords(case: str, offset: int) -> str:
        return json.dumps({"topic": f"corpus_{case}", "partition": 0, "offset": offset})

    add(
        "truncated",
        ['{"kafka": ' + coords("truncated", 2) + ', "value": {"location": "Dal'],
        [[3, Reason.INVALID_JSON, None]],
    )
    add("not_json", ["this is not JSON at all"], [[3, Reason.INVALID_JSON, None]])
    add(
        "value_error_invalid_json",
        [Record(0, 2, Undecodable('{"location": "Dallas", ', "invalid_json"))],
        [[3, Reason.INVALID_JSON, None]],
    )
    add(
        "value_error_not_utf8",
        [Record(0, 2, Undecodable("Z\ufffdrich", "not_utf8"))],
        [[3, Reason.NOT_UTF8, None]],
    )
    add("value_array", [Record(0, 2, [1, 2, 3])], [[3, Reason.NOT_AN_OBJECT, None]])
    add("value_number", [Record(0, 2, 42)], [[3, Reason.NOT_AN_OBJECT, None]])
    value = json.dumps(_good("missing_kafka"))
    add(
        "missing_kafka",
        [
            '{"value": ' + value + "}",
            '{"kafka": {"topic": "corpus_missing_kafka", "offset": 3}, "value": ' + value + "}",
            '{"kafka": {"topic": "corpus_missing_kafka", "partition": 0, "offset": "4"},'
            ' "value": ' + value + "}",
        ],
        [
            [3, Reason.MISSING_FIELD, "kafka.topic"],
            [4, Reason.MISSING_FIELD, "kafka.partition"],
            [5, Reason.MISSING_FIELD, "kafka.offset"],
        ],
    )
    no_wind = _good("missing_field")
    del no_wind["wind_speed_kmh"]
    add("missing_field", [Record(0, 2, no_wind)], [[3, Reason.MISSING_FIELD, "wind_speed_kmh"]])
    add(
        "null_field",
        [Record(0, 2, _good("null_field", temperature_c=None))],
        [[3, Reason.MISSING_FIELD, "temperature_c"]],
    )
    add(
        "numbers_as_strings",
        [Record(0, 2, _good("numbers_as_strings", temperature_c="21.5", humidity_pct="40"))],
        [],
        aggregated=3,
    )
    add(
        "not_finite",
        [
            Record(0, 2, _good("not_finite", humidity_pct=float("nan"))),
            Record(0, 3, _good("not_finite", wind_speed_kmh=float("inf"))),
            Record(0, 4, _good("not_finite", temperature_c=float("-inf"))),
        ],
        [
            [3, Reason.NOT_FINITE, "humidity_pct"],
            [4, Reason.NOT_FINITE, "wind_speed_kmh"],
            [5, Reason.NOT_FINITE, "temperature_c"],
        ],
    )
    add(
        "out_of_range",
        [
            Record(0, 2, _good("out_of_range", humidity_pct=140)),
            Record(0, 3, _good("out_of_range", precipitation_mm=-1)),
        ],
        [
            [3, Reason.OUT_OF_RANGE, "humidity_pct"],
            [4, Reason.OUT_OF_RANGE, "precipitation_mm"],
        ],
    )
    add(
        "bad_timestamp",
        [
            Record(0, 2, _good("bad_timestamp", timestamp="2024-02-30 10:00:00")),
            Record(0, 3, _good("bad_timestamp", timestamp="2024-03-01T10:00:00")),
            Record(0, 4, _good("bad_timestamp", timestamp="2024-03-01 25:00:00")),
        ],
        [
            [3, Reason.BAD_TIMESTAMP, "timestamp"],
            [4, Reason.BAD_TIMESTAMP, "timestamp"],
            [5, Reason.BAD_TIMESTAMP, "timestamp"],
        ],
    )
    add(
        "location",
        [
            Record(0, 2, _good("location", location="")),
            Record(0, 3, _good("location", location=" \t ")),
            Record(0, 4, _good("location", location=TOO_LONG)),
            Record(0, 5, _good("location", location=None)),
        ],
        [
            [3, Reason.MISSING_FIELD, "location"],
            [4, Reason.EMPTY_LOCATION, "location"],
            [5, Reason.LOCATION_TOO_LONG, "location"],
            [6, Reason.MISSING_FIELD, "location"],
        ],
    )
    add("empty_lines", ["", Record(0, 2, _good("empty_lines", 2)), ""], [], aggregated=3)
    # Control characters in a location (NUL would also fail the daily table in PostgreSQL).
    control = [Reason.CONTROL_CHARACTER, "location"]
    add(
        "control_location",
        [
            Record(0, 2, _good("control_location", location="Zu\u0000rich")),
            Record(0, 3, _good("control_location", location="San\tJose")),
            Record(0, 4, _good("control_location", location="\u202eDallas")),
        ],
        [[3, *control], [4, *control], [5, *control]],
    )
    year = [Reason.OUT_OF_RANGE, "timestamp"]
    add(
        "year_range",
        [
            Record(0, 2, _good("year_range", timestamp="1899-12-31 23:59:59")),
            Record(0, 3, _good("year_range", timestamp="2101-01-01 00:00:00")),
            Record(0, 4, _good("year_range", timestamp="0000-01-01 00:00:00")),
            Record(0, 5, _good("year_range", timestamp="9999-12-31 23:59:59")),
            Record(0, 6, _good("year_range", timestamp="1900-01-01 00:00:00")),
        ],
        [[3, *year], [4, *year], [5, *year], [6, *year]],
        aggregated=3,
    )
    bad_time = [Reason.BAD_TIMESTAMP, "timestamp"]
    add(
        "time_zone",
        [
            Record(0, 2, _good("time_zone", timestamp="2024-03-01 12:00:00Z")),
            Record(0, 3, _good("time_zone", timestamp="2016-12-31 23:59:60")),
        ],
        [[3, *bad_time], [4, *bad_time]],
    )
    # A rejected line naming a topic with a NUL in it: quarantined all the same.
    nul_topic = {"topic": "corpus_nul\u0000topic", "partition": 0, "offset": 2}
    add(
        "nul_topic",
        [json.dumps({"kafka": nul_topic, "value": _good("nul_topic", location=None)})],
        [[3, Reason.MISSING_FIELD, "location"]],
    )
    # The same record (topic, partition, offset) in two files counts once: 3 records in all.
    records = [Record(0, n, _good("duplicate", n)) for n in range(3)]
    for part, aggregated in ((records[:2], 3), (records[1:], 0)):
        path, content = _raw("duplicate", list(part))
        cases[path] = (
            content,
            {"quarantine": [], "location": "corpus duplicate", "aggregated": aggregated},
        )
    return cases


def build() -> dict[str, tuple[bytes, Expected]]:
    """Every corpus file (path relative to this folder) with its expected outcome."""
    files = {f"csv/{name}": case for name, case in csv_cases().items()}
    files.update(raw_cases())
    return files


def manifest() -> bytes:
    return (json.dumps({p: e for p, (_, e) in sorted(build().items())}, indent=1) + "\n").encode()


def main() -> None:
    for path, (content, _) in build().items():
        target = HERE / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content)
    (HERE / "manifest.json").write_bytes(manifest())


if __name__ == "__main__":
    main()
