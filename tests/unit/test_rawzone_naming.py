"""Raw file names: built from a record's place, parsed back by the one regular expression;
paths relative to RAW_DIR read back with their date folder."""

from __future__ import annotations

from pathlib import Path

import pytest

from weatherpipe.rawzone import naming


def test_file_name_is_zero_padded_and_sorts_by_offset() -> None:
    name = naming.file_name("weather_data_raw", 2, 0, 41)
    assert name == ("weather_data_raw+00002+00000000000000000000+00000000000000000041.ndjson")
    later = naming.file_name("weather_data_raw", 2, 42, 1_000)
    assert sorted([later, name]) == [name, later]


@pytest.mark.parametrize(
    ("topic", "partition", "first", "last"),
    [
        ("weather_data_raw", 0, 0, 0),
        ("a.b-c_d", 99_999, 123, 456),
        ("t", 7, 2**63 - 2, 2**63 - 1),
    ],
)
def test_parse_gives_back_what_built_the_name(
    topic: str, partition: int, first: int, last: int
) -> None:
    parsed = naming.parse_file_name(naming.file_name(topic, partition, first, last))
    assert parsed == naming.RawFileName(topic, partition, first, last)
    assert parsed is not None and parsed.name == naming.file_name(topic, partition, first, last)


@pytest.mark.parametrize(
    "name",
    [
        "weather_data_raw+00002+00000000000000000000+00000000000000000041.ndjson.tmp",
        "weather_data_raw+2+0+41.ndjson",
        "weather_data_raw+00002+00000000000000000042+00000000000000000041.ndjson",
        "weather data+00002+00000000000000000000+00000000000000000041.ndjson",
        "weather_data_raw+00002+00000000000000000000.ndjson",
        "part-0000.ndjson",
        "",
    ],
)
def test_parse_rejects_what_is_not_a_finished_file(name: str) -> None:
    assert naming.parse_file_name(name) is None


@pytest.mark.parametrize(
    ("timestamp_ms", "date"),
    [
        (0, "1970-01-01"),
        (1_709_251_199_999, "2024-02-29"),  # last millisecond of a leap day, UTC
        (1_709_251_200_000, "2024-03-01"),
        (253_402_300_799_999, "9999-12-31"),
    ],
)
def test_date_is_the_utc_date_of_the_kafka_timestamp(timestamp_ms: int, date: str) -> None:
    assert naming.date_of(timestamp_ms) == date


def test_final_path_and_temp_folder_layout(tmp_path: Path) -> None:
    path = naming.final_path(tmp_path, "weather_data_raw", "2024-03-01", 1, 10, 20)
    assert path == (
        tmp_path
        / "weather_data_raw"
        / "date=2024-03-01"
        / "weather_data_raw+00001+00000000000000000010+00000000000000000020.ndjson"
    )
    temp = naming.temp_dir(tmp_path) / naming.temp_name("weather_data_raw", 1, 10, "123-ab")
    # The batch's glob never matches a temp file.
    assert not temp.match("*/date=*/*.ndjson")
    assert naming.parse_file_name(temp.name) is None
    assert temp.name.startswith(naming.temp_prefix("weather_data_raw", 1))
    assert not temp.name.startswith(naming.temp_prefix("weather_data_raw", 10))


def test_kafkas_longest_topic_name_parses_and_a_longer_one_does_not() -> None:
    longest = "t" * 249
    assert naming.parse_file_name(naming.file_name(longest, 0, 0, 1)) == naming.RawFileName(
        longest, 0, 0, 1
    )
    assert naming.parse_file_name(naming.file_name(longest + "t", 0, 0, 1)) is None


RELATIVE = "t/date=2024-03-01/t+00002+00000000000000000010+00000000000000000019.ndjson"


def test_a_relative_path_is_read_back_with_its_date_folder() -> None:
    parsed = naming.parse_relative_path(RELATIVE)
    assert parsed == naming.RawFilePath("2024-03-01", naming.RawFileName("t", 2, 10, 19))
    assert parsed is not None and parsed.relative == RELATIVE


def test_a_built_path_parses_back(tmp_path: Path) -> None:
    path = naming.final_path(tmp_path, "weather_data_raw", "2024-03-01", 1, 10, 20)
    relative = path.relative_to(tmp_path).as_posix()
    parsed = naming.parse_relative_path(relative)
    assert parsed == naming.RawFilePath(
        "2024-03-01", naming.RawFileName("weather_data_raw", 1, 10, 20)
    )
    assert parsed is not None and parsed.relative == relative


@pytest.mark.parametrize(
    "relative",
    [
        ".tmp/date=2024-03-01/t+00002+00000000000000000010+00000000000000000019.ndjson",
        "u/date=2024-03-01/t+00002+00000000000000000010+00000000000000000019.ndjson",
        "t/day=2024-03-01/t+00002+00000000000000000010+00000000000000000019.ndjson",
        "t/date=2024-3-1/t+00002+00000000000000000010+00000000000000000019.ndjson",
        "t/date=2024-03-01/t+2+10+19.ndjson",
        "t/date=2024-03-01/t+00002+00000000000000000019+00000000000000000010.ndjson",
        "t/date=2024-03-01/t+00002+00000000000000000010+00000000000000000019.ndjson.part",
        "t/date=2024-03-01/x/t+00002+00000000000000000010+00000000000000000019.ndjson",
        "date=2024-03-01/t+00002+00000000000000000010+00000000000000000019.ndjson",
        "t+00002+00000000000000000010+00000000000000000019.ndjson",
        "",
    ],
)
def test_a_path_outside_the_layout_is_not_a_finished_file(relative: str) -> None:
    assert naming.parse_relative_path(relative) is None


@pytest.mark.parametrize(
    ("name", "date"),
    [("date=2024-03-01", "2024-03-01"), ("day=2024-03-01", None), ("date=2024-03-01x", None)],
)
def test_date_folders(name: str, date: str | None) -> None:
    assert naming.parse_date_dir(name) == date
    if date is not None:
        assert naming.date_dir_name(date) == name
