"""Reading, validating and encoding CSV rows: header, encodings, line numbers, every reason."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.samples import CSV_ROW, EVENT
from weatherpipe.events import CSV_COLUMNS, Reason
from weatherpipe.ingest.csv_reader import CsvError, read_blocks, split_fields
from weatherpipe.ingest.encode import encode
from weatherpipe.ingest.reject import Reject
from weatherpipe.ingest.validate import validate

HEADER = ",".join(CSV_COLUMNS)
GOOD = CSV_ROW


def run(
    path: Path, block_bytes: int = 1 << 20
) -> tuple[list[tuple[int, dict[str, object]]], list[Reject]]:
    """(line, decoded event) of the valid rows and the rejects of `path`, in line order."""
    events: list[tuple[int, dict[str, object]]] = []
    rejects: list[Reject] = []
    for block in read_blocks(path, block_bytes):
        rows, wrong = split_fields(block)
        valid, invalid = validate(rows)
        records = encode(valid)
        for line, value, key in zip(valid.line, records.values, records.keys, strict=True):
            event = json.loads(value)
            assert key == f"{event['location']}|{str(event['timestamp'])[:10]}"
            events.append((int(line), event))
        rejects += sorted(wrong + invalid, key=lambda r: r.line)
    return events, rejects


def write(tmp_path: Path, text: str | bytes, name: str = "w.csv") -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode("utf-8") if isinstance(text, str) else text)
    return path


def test_valid_row_becomes_the_contract_event(tmp_path: Path) -> None:
    events, rejects = run(write(tmp_path, f"{HEADER}\n{GOOD}\n"))
    assert rejects == []
    assert events == [(2, EVENT)]


def test_numbers_always_decode_as_floats(tmp_path: Path) -> None:
    text = f'{HEADER}\n Say "Hi" ,2024-03-01 14:05:09, 3 ,+7,.5,1e1\n'
    events, rejects = run(write(tmp_path, text))
    assert rejects == []
    event = events[0][1]
    assert event["location"] == 'Say "Hi"'
    values = [event[f] for f in ("temperature_c", "humidity_pct", "precipitation_mm")]
    assert values == [3.0, 7.0, 0.5] and event["wind_speed_kmh"] == 10.0
    assert all(isinstance(v, float) for v in [*values, event["wind_speed_kmh"]])


@pytest.mark.parametrize(
    ("header", "message"),
    [
        (
            "Location,Date_Time,Temperature_C,Precipitation_mm,Wind_Speed_kmh",
            "missing column(s) Humidity_pct",
        ),
        (
            "Location,DateTime,Temperature_C,Humidity_pct,Precipitation_mm,Wind_Speed_kmh",
            "unexpected column(s) 'DateTime'",
        ),
        (
            "Date_Time,Location,Temperature_C,Humidity_pct,Precipitation_mm,Wind_Speed_kmh",
            "wrong order",
        ),
    ],
)
def test_wrong_header_is_an_error_naming_file_and_columns(
    tmp_path: Path, header: str, message: str
) -> None:
    path = write(tmp_path, f"{header}\n{GOOD}\n")
    with pytest.raises(CsvError) as caught:
        run(path)
    assert f"{path}, line 1" in str(caught.value)
    assert message in str(caught.value)


def test_missing_file_says_how_to_get_one(tmp_path: Path) -> None:
    with pytest.raises(CsvError, match="weatherpipe generate"):
        run(tmp_path / "absent.csv")


def test_bom_and_crlf_are_accepted(tmp_path: Path) -> None:
    plain, _ = run(write(tmp_path, f"{HEADER}\n{GOOD}\n{GOOD}", "plain.csv"))
    windows, rejects = run(
        write(tmp_path, b"\xef\xbb\xbf" + f"{HEADER}\r\n{GOOD}\r\n{GOOD}\r\n".encode(), "bom.csv")
    )
    assert rejects == []
    assert windows == plain and len(plain) == 2


BAD_ROWS = {
    "Chicago,2024-03-01 14:05:09,3.1,71.2,0.4": (Reason.WRONG_FIELD_COUNT, None),
    "Chicago,2024-03-01 14:05:09,3.1,71.2,0.4,18.9,1": (Reason.WRONG_FIELD_COUNT, None),
    "Chicago,2024-03-01 14:05:09,warm,71.2,0.4,18.9": (Reason.NOT_NUMERIC, "temperature_c"),
    "Chicago,2024-03-01 14:05:09,3.1,NaN,0.4,18.9": (Reason.NOT_FINITE, "humidity_pct"),
    "Chicago,2024-03-01 14:05:09,3.1,71.2,inf,18.9": (Reason.NOT_FINITE, "precipitation_mm"),
    "Chicago,2024-03-01 14:05:09,3.1,71.2,0.4,1e999": (Reason.NOT_FINITE, "wind_speed_kmh"),
    "Chicago,2024-02-30 14:05:09,3.1,71.2,0.4,18.9": (Reason.BAD_TIMESTAMP, "timestamp"),
    "Chicago,2024-03-01,3.1,71.2,0.4,18.9": (Reason.BAD_TIMESTAMP, "timestamp"),
    "Chicago,,3.1,71.2,0.4,18.9": (Reason.MISSING_FIELD, "timestamp"),
    "  ,2024-03-01 14:05:09,3.1,71.2,0.4,18.9": (Reason.EMPTY_LOCATION, "location"),
    "X" * 101 + ",2024-03-01 14:05:09,3.1,71.2,0.4,18.9": (Reason.LOCATION_TOO_LONG, "location"),
    "Chicago,2024-03-01 14:05:09,3.1,140,0.4,18.9": (Reason.OUT_OF_RANGE, "humidity_pct"),
    "Chicago,2024-03-01 14:05:09,3.1,71.2,-0.1,18.9": (Reason.OUT_OF_RANGE, "precipitation_mm"),
    "Chicago,2024-03-01 14:05:09,3.1,71.2,,18.9": (Reason.MISSING_FIELD, "precipitation_mm"),
    '"Chicago, IL",2024-03-01 14:05:09,3.1,71.2,0.4': (Reason.WRONG_FIELD_COUNT, None),
    "Chicago": (Reason.WRONG_FIELD_COUNT, None),  # one field, but not a blank line
}


@pytest.mark.parametrize("block_bytes", [1 << 20, 97])
def test_each_bad_row_is_rejected_with_line_reason_and_field(
    tmp_path: Path, block_bytes: int
) -> None:
    lines = [HEADER]
    expected = []
    for raw, (reason, field) in BAD_ROWS.items():
        lines += [GOOD, raw]
        expected.append((len(lines), raw, reason, field))
    lines.append('"Chicago, IL",2024-03-01 14:05:09,3.1,71.2,0.4,18.9')
    events, rejects = run(write(tmp_path, "\n".join(lines) + "\n"), block_bytes)
    assert [(r.line, r.raw, r.reason, r.field) for r in rejects] == expected
    assert all(r.detail for r in rejects)
    assert [line for line, _ in events] == [*range(2, len(lines), 2), len(lines)]
    assert events[-1][1]["location"] == "Chicago, IL"


def test_details_say_what_is_wrong(tmp_path: Path) -> None:
    text = (
        f"{HEADER}\nChicago,2024-03-01 14:05:09,3.1,140,0.4,18.9\n"
        "Chicago,2024-02-30 14:05:09,3.1,71.2,0.4,18.9\n"
    )
    _, rejects = run(write(tmp_path, text))
    assert rejects[0].detail == "Humidity_pct 140 is outside the plausible range 0 … 100 %"
    assert "2024-02-30 14:05:09" in rejects[1].detail and "YYYY-MM-DD" in rejects[1].detail


def test_line_that_is_not_utf8_is_rejected_alone(tmp_path: Path) -> None:
    data = f"{HEADER}\n{GOOD}\n".encode() + b"Z\xfcrich,2024-03-01 14:05:09,3.1,71.2,0.4,18.9\n"
    events, rejects = run(write(tmp_path, data + f"{GOOD}\n".encode()))
    assert [line for line, _ in events] == [2, 4]
    assert [(r.line, r.reason) for r in rejects] == [(3, Reason.NOT_UTF8)]
    assert rejects[0].raw.startswith("Z\ufffdrich,")


@pytest.mark.parametrize("block_bytes", [1 << 20, 64])
def test_blank_lines_are_skipped_and_counted_not_rejected(tmp_path: Path, block_bytes: int) -> None:
    # Blank lines between rows, one of spaces and a tab, CRLF ones and an editor's trailing
    # empty lines; a line of empty fields or a lone comma is a (bad) row, not a blank line.
    text = f"{HEADER}\r\n{GOOD}\r\n\r\n  \t\n{GOOD}\n,,,,,\n,\n\n\n"
    path = write(tmp_path, text)
    events, rejects = run(path, block_bytes)
    assert [line for line, _ in events] == [2, 5]
    assert [(r.line, r.reason) for r in rejects] == [
        (6, Reason.EMPTY_LOCATION),
        (7, Reason.WRONG_FIELD_COUNT),
    ]
    blanks = 0
    for block in read_blocks(path, block_bytes):
        blanks += split_fields(block)[0].blank
    assert blanks == 4


def test_last_line_without_newline_and_day_of_rejects(tmp_path: Path) -> None:
    text = f"{HEADER}\n{GOOD}\nChicago,2024-03-02 00:00:00,3.1,171.2,0.4,18.9"
    events, rejects = run(write(tmp_path, text))
    assert [line for line, _ in events] == [2]
    assert rejects[0].line == 3 and str(rejects[0].day) == "2024-03-02"


def test_a_wrong_header_is_reported_when_reading_starts_not_at_the_first_block(
    tmp_path: Path,
) -> None:
    # The producer creates its topics between opening the file and reading the first block:
    # a wrong header must stop it before that.
    path = tmp_path / "bad.csv"
    path.write_text("Location,Date_Time\nNew York,2024-01-14 21:12:46\n")
    with pytest.raises(CsvError, match="line 1"):
        read_blocks(path)


def row(location: str = "Chicago", when: str = "2024-03-01 14:05:09") -> str:
    return f"{location},{when},3.1,71.2,0.4,18.9"


@pytest.mark.parametrize(
    "location", ["Zu\x00rich", "San\tJose", "Chicago\t", "Dal\x85las", "\u202eDallas", "A\u2066B"]
)
def test_control_and_text_direction_characters_in_a_location_are_rejected(
    tmp_path: Path, location: str
) -> None:
    events, rejects = run(write(tmp_path, f"{HEADER}\n{row(location)}\n{GOOD}\n"))
    assert [line for line, _ in events] == [3]
    assert [(r.line, r.reason, r.field) for r in rejects] == [
        (2, Reason.CONTROL_CHARACTER, "location")
    ]
    assert repr(location) in rejects[0].detail


def test_nfc_and_nfd_spellings_are_one_location_and_one_key(tmp_path: Path) -> None:
    nfd, nfc = "Zu\u0308rich", "Z\u00fcrich"
    text = "\n".join([HEADER, row(nfd), row(nfc), row(f" {nfd} ")]) + "\n"
    events, rejects = run(write(tmp_path, text))
    assert rejects == []
    assert [event["location"] for _, event in events] == [nfc] * 3


@pytest.mark.parametrize(
    ("when", "reason"),
    [
        ("1899-12-31 23:59:59", Reason.OUT_OF_RANGE),
        ("2101-01-01 00:00:00", Reason.OUT_OF_RANGE),
        ("0000-01-01 00:00:00", Reason.OUT_OF_RANGE),
        ("9999-12-31 23:59:59", Reason.OUT_OF_RANGE),
        ("1899-02-30 00:00:00", Reason.OUT_OF_RANGE),  # the year is judged first
        ("2016-12-31 23:59:60", Reason.BAD_TIMESTAMP),
        ("2024-03-01 14:05:09Z", Reason.BAD_TIMESTAMP),
        ("2024-03-01 14:05:09+01:00", Reason.BAD_TIMESTAMP),
        ("2024-03-01T14:05:09", Reason.BAD_TIMESTAMP),
    ],
)
def test_timestamps_outside_the_years_or_the_format_are_rejected(
    tmp_path: Path, when: str, reason: str
) -> None:
    text = f"{HEADER}\n{row(when=when)}\n{row(when='1900-01-01 00:00:00')}\n"
    events, rejects = run(write(tmp_path, text + row(when="2100-12-31 23:59:59") + "\n"))
    assert [line for line, _ in events] == [3, 4]
    assert [(r.reason, r.field, r.day) for r in rejects] == [(reason, "timestamp", None)]


def test_the_year_range_is_a_parameter(tmp_path: Path) -> None:
    path = write(tmp_path, f"{HEADER}\n{row(when='1950-06-01 00:00:00')}\n")
    (block,) = read_blocks(path)
    valid, rejects = validate(split_fields(block)[0], years=(1960, 2000))
    assert len(valid) == 0 and "outside 1960 … 2000" in rejects[0].detail


@pytest.mark.parametrize("block_bytes", [1 << 20, 50])
@pytest.mark.parametrize("newline", ["\n", "\r\n", "\r"])
def test_a_quoted_field_over_two_lines_is_one_row(
    tmp_path: Path, block_bytes: int, newline: str
) -> None:
    lines = [HEADER, GOOD, '"San', 'Jose",2024-03-01 14:05:09,3.1,71.2,0.4,18.9', GOOD]
    lines += ['"Austin, TX",2024-03-01 14:05:09,3.1,71.2,0.4,18.9', GOOD]
    events, rejects = run(write(tmp_path, newline.join(lines) + newline), block_bytes)
    assert [line for line, _ in events] == [2, 5, 6, 7]
    assert [(r.line, r.raw, r.reason) for r in rejects] == [
        (3, '"San\nJose",2024-03-01 14:05:09,3.1,71.2,0.4,18.9', Reason.CONTROL_CHARACTER)
    ]


def test_a_quote_that_never_closes_is_one_broken_row_and_the_rest_is_read(tmp_path: Path) -> None:
    lines = [HEADER, GOOD, '"Austin,2024-03-01 14:05:09,3.1,71.2,0.4,18.9', *[GOOD] * 12]
    events, rejects = run(write(tmp_path, "\n".join(lines) + "\n"), 64)
    assert [line for line, _ in events] == [2, *range(4, 16)]
    assert [(r.line, r.reason) for r in rejects] == [(3, Reason.UNCLOSED_QUOTE)]


def test_cr_only_line_ends_are_read(tmp_path: Path) -> None:
    events, rejects = run(write(tmp_path, "\r".join([HEADER, GOOD, GOOD, "Chicago"]) + "\r"))
    assert [line for line, _ in events] == [2, 3]
    assert [(r.line, r.reason) for r in rejects] == [(4, Reason.WRONG_FIELD_COUNT)]


@pytest.mark.parametrize(
    "header", [HEADER, "\ufeff" + HEADER, " Location , Date_Time" + HEADER[18:]]
)
def test_the_header_again_in_the_middle_is_a_repeated_header(tmp_path: Path, header: str) -> None:
    events, rejects = run(write(tmp_path, f"{HEADER}\n{GOOD}\n{header}\n{GOOD}\n"))
    assert [line for line, _ in events] == [2, 4]
    assert [(r.line, r.reason, r.field) for r in rejects] == [(3, Reason.REPEATED_HEADER, None)]


@pytest.mark.parametrize(
    ("encoding", "named"), [("utf-16", "UTF-16"), ("utf-32", "UTF-32"), ("utf-16-le", "UTF-16")]
)
def test_utf16_and_utf32_files_are_refused_with_what_to_do(
    tmp_path: Path, encoding: str, named: str
) -> None:
    path = write(tmp_path, f"{HEADER}\n{GOOD}\n".encode(encoding))
    with pytest.raises(CsvError) as caught:
        read_blocks(path)
    message = str(caught.value)
    assert f"{path}, line 1" in message and named in message and "Save it as UTF-8" in message


def test_a_row_longer_than_the_limit_is_too_large_and_the_rest_is_read(tmp_path: Path) -> None:
    huge = "X" * 300 + ",2024-03-01 14:05:09,3.1,71.2,0.4,18.9"
    path = write(tmp_path, f"{HEADER}\n{GOOD}\n{huge}\n{GOOD}\n")
    (block,) = read_blocks(path)
    rows, rejects = split_fields(block, max_row_bytes=200)
    assert list(rows.line) == [2, 4]
    assert [(r.line, r.reason, r.raw) for r in rejects] == [(3, Reason.TOO_LARGE, huge)]
    assert f"{len(huge)} bytes" in rejects[0].detail


def test_a_quote_open_at_the_end_of_the_file_leaves_no_blank_line(tmp_path: Path) -> None:
    path = write(tmp_path, f'{HEADER}\n{GOOD}\n"Austin,2024\n{GOOD}\n')
    events, rejects = run(path)
    assert [line for line, _ in events] == [2, 4]
    assert [(r.line, r.reason) for r in rejects] == [(3, Reason.UNCLOSED_QUOTE)]
    assert sum(split_fields(block)[0].blank for block in read_blocks(path)) == 0
