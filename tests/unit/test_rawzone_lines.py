"""Line encoding: every odd value and key becomes one valid NDJSON line, nothing is refused."""

from __future__ import annotations

import base64
import json
from collections import Counter

import orjson
import pytest

from weatherpipe.events import Reason
from weatherpipe.rawzone.lines import LineEncoder, coordinates, encode_key, encode_value

EVENT = (
    b'{"location":"Chicago","timestamp":"2024-03-01 14:05:09","temperature_c":3.1,'
    b'"humidity_pct":71.2,"precipitation_mm":0.4,"wind_speed_kmh":18.9}'
)


def line_of(value: bytes | None, key: bytes | None = b"Chicago") -> tuple[dict[str, object], bytes]:
    encoder = LineEncoder("weather_data_raw")
    line = encoder.line(encoder.prefix(2), 41, 1_709_251_200_000, key, value, Counter())
    assert line.endswith(b"\n") and line.count(b"\n") == 1
    parsed: dict[str, object] = json.loads(line)
    return parsed, line


def test_valid_event_is_spliced_in_verbatim_with_the_kafka_metadata() -> None:
    parsed, line = line_of(EVENT)
    assert parsed == {
        "kafka": {
            "topic": "weather_data_raw",
            "partition": 2,
            "offset": 41,
            "timestamp_ms": 1_709_251_200_000,
            "key": "Chicago",
        },
        "value": json.loads(EVENT),
    }
    assert line.endswith(b',"value":' + EVENT + b"}\n")


def test_json_that_is_not_an_object_is_kept_as_json() -> None:
    for value in (b"42", b'"text"', b"[1,2]", b"null", b"true"):
        body, error = encode_value(value)
        assert (body, error) == (value, None)


def test_numbers_beyond_double_range_are_json_and_kept_exactly() -> None:
    # RFC 8259 sets no limit; the batch rejects such a measurement as not finite.
    for value in (b'{"t":1e999}', b"123456789012345678901234567890", b"-1.5E-400"):
        assert encode_value(value) == (value, None)


@pytest.mark.parametrize(
    "value",
    [
        b'{"a":1,}',
        b"01",
        b"NaN",
        b'"\\x"',
        b'{"a":1}{"b":2}',
        b'"a\x01b"',
        b"[1 2]",
        b"\xef\xbb\xbf{}",
    ],
)
def test_text_that_breaks_the_json_grammar_is_marked(value: bytes) -> None:
    assert encode_value(value)[1] == Reason.INVALID_JSON


def test_pretty_printed_json_keeps_its_exact_content_on_one_line() -> None:
    pretty = b'{\r\n  "big": 123456789012345678901234567890,\n  "a": [1,\n 2]\n}\n'
    parsed, line = line_of(pretty)
    assert parsed["value"] == {"big": 123456789012345678901234567890, "a": [1, 2]}
    assert b"123456789012345678901234567890" in line  # not rounded to a float


@pytest.mark.parametrize("value", [b"not json", b"{'a': 1}", b'{"a": NaN}', b"\xc3\xa4hm", b""])
def test_utf8_that_is_not_json_is_stored_as_a_string(value: bytes) -> None:
    parsed, _ = line_of(value)
    assert parsed["value"] == value.decode()
    assert parsed["value_error"] == Reason.INVALID_JSON


def test_text_with_newlines_and_quotes_stays_one_line() -> None:
    parsed, _ = line_of(b'line one\nline "two"\r\n\x00')
    assert parsed["value"] == 'line one\nline "two"\r\n\x00'


@pytest.mark.parametrize("value", [b"\xff\xfe\x00", b'{"a":"\xff"}', b"\xef\xbb\xbf{}"[:2]])
def test_bytes_that_are_not_utf8_are_stored_base64(value: bytes) -> None:
    parsed, _ = line_of(value)
    assert parsed["value_error"] == Reason.NOT_UTF8
    assert isinstance(parsed["value"], str)
    assert base64.b64decode(parsed["value"]) == value


def test_tombstone_is_null_marked_invalid_json() -> None:
    parsed, _ = line_of(None)
    assert parsed["value"] is None
    assert parsed["value_error"] == Reason.INVALID_JSON


def test_a_one_megabyte_value_is_kept_whole() -> None:
    value = orjson.dumps({"blob": "x" * 1_000_000})
    parsed, line = line_of(value)
    assert parsed["value"] == {"blob": "x" * 1_000_000}
    assert len(line) > 1_000_000


def test_missing_key_is_null_and_a_binary_key_base64() -> None:
    parsed, _ = line_of(EVENT, key=None)
    assert parsed["kafka"] == {
        "topic": "weather_data_raw",
        "partition": 2,
        "offset": 41,
        "timestamp_ms": 1_709_251_200_000,
        "key": None,
    }
    parsed, _ = line_of(EVENT, key=b"\x80\x81")
    kafka = parsed["kafka"]
    assert isinstance(kafka, dict)
    assert kafka["key"] == base64.b64encode(b"\x80\x81").decode()
    assert kafka["key_encoding"] == "base64"
    assert encode_key('Zürich "Nord"'.encode()) == b'"key":"Z\xc3\xbcrich \\"Nord\\""'


def test_missing_timestamp_is_null() -> None:
    encoder = LineEncoder("t")
    errors: Counter[str] = Counter()
    line = encoder.line(encoder.prefix(0), 7, None, None, b"{}", errors)
    assert not errors
    assert json.loads(line)["kafka"]["timestamp_ms"] is None


def test_error_reasons_are_counted() -> None:
    assert encode_value(EVENT)[1] is None
    assert encode_value(b"x")[1] == Reason.INVALID_JSON
    assert encode_value(b"\xff")[1] == Reason.NOT_UTF8
    assert encode_value(None)[1] == Reason.INVALID_JSON
    encoder = LineEncoder("t")
    errors: Counter[str] = Counter()
    for value in (EVENT, b"x", b"\xff", None, b"", b"{\n}", EVENT):
        encoder.line(encoder.prefix(0), 0, 0, None, value, errors)
    assert errors == {Reason.INVALID_JSON: 3, Reason.NOT_UTF8: 1}


def test_key_cache_gives_the_same_line_as_a_fresh_encoder() -> None:
    warm = LineEncoder("t")
    for n in range(5000):  # more keys than the cache holds
        warm.key(str(n).encode())
    for key in (b"Chicago", b"\x80", None, b"4999", b"1"):
        cold = LineEncoder("t")
        assert warm.line(b"", 0, 1, key, EVENT, Counter()) == cold.line(
            b"", 0, 1, key, EVENT, Counter()
        )
        assert warm.key(key) == encode_key(key)


@pytest.mark.parametrize(
    "value", [b'{"n":1}', b"not json", b"\xff\xfe", None, b"1e999", b'{"a":"}\\"offset\\":9"}']
)
def test_coordinates_read_back_what_the_encoder_wrote(value: bytes | None) -> None:
    encoder = LineEncoder("weather_data_raw")
    line = encoder.line(encoder.prefix(12), 345, 1_709_251_200_000, b"k", value, Counter())
    assert coordinates(line.rstrip(b"\n")) == (12, 345)


def test_a_line_cut_short_or_without_an_envelope_has_no_coordinates() -> None:
    encoder = LineEncoder("t")
    line = encoder.line(encoder.prefix(0), 7, 1, None, b'{"n":1}', Counter()).rstrip(b"\n")
    assert coordinates(line[:-1]) is None  # the closing brace is missing
    assert coordinates(line[: len(line) // 2]) is None
    assert coordinates(b"") is None
    # Another writer's spelling of a whole record (an imported raw zone keeps the original's
    # text) has its envelope's coordinates; an envelope without integer ones has none.
    assert coordinates(b'{"value":1, "kafka":{"offset":7,"topic":"t","partition":0}}') == (0, 7)
    assert coordinates(b'{"value":1,"kafka":{"topic":"t","partition":0,"offset":"7"}}') is None
    assert coordinates(b'{"value":1,"kafka":{"topic":"t","partition":0}}') is None
    assert coordinates(b'{"value":1,"kafka":{"topic":"t","partition":0,"offset":7}') is None
