"""The weather event: its fields, where they come from in the CSV, and the rules a valid one
obeys. This module is the one place those rules live; the producer (CSV rows), the DuckDB
engine and the Spark engine (raw lines) all derive their checks from it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

# The Kaggle data set prasad22/weather-data, as downloaded.
CSV_COLUMNS: Final = (
    "Location",
    "Date_Time",
    "Temperature_C",
    "Humidity_pct",
    "Precipitation_mm",
    "Wind_Speed_kmh",
)
# The Kafka message value (JSON object) uses the seed's field names.
EVENT_FIELDS: Final = (
    "location",
    "timestamp",
    "temperature_c",
    "humidity_pct",
    "precipitation_mm",
    "wind_speed_kmh",
)
CSV_TO_EVENT: Final = dict(zip(CSV_COLUMNS, EVENT_FIELDS, strict=True))

TIMESTAMP_FORMAT: Final = "%Y-%m-%d %H:%M:%S"
"""`Date_Time` / `timestamp`: e.g. 2024-01-14 21:12:46, a real calendar date and time."""

LOCATION_MAX_LENGTH: Final = 100
"""`location` must be a non-empty string (after trimming blanks) of at most this length."""

CONTROL_CHARACTERS: Final = (
    (0x00, 0x1F),  # C0 controls: NUL, tab, line ends, escape, ...
    (0x7F, 0x9F),  # DEL and the C1 controls
    (0x061C, 0x061C),  # the bidirectional formatting characters: ALM,
    (0x200E, 0x200F),  # LRM and RLM,
    (0x202A, 0x202E),  # the embeddings and overrides (U+202E turns text around),
    (0x2066, 0x2069),  # and the isolates
)
"""Code point ranges (inclusive) a `location` must not contain anywhere, blanks at its ends
included: a city name never holds them, they make a name print differently from what it is,
and PostgreSQL cannot store NUL."""

YEARS: Final = (1900, 2100)
"""The default range (inclusive) of an event's year: weather observations of a plausible era.
A year outside it is a typo or a placeholder (0000, 9999); the setting EVENT_YEAR_MIN /
EVENT_YEAR_MAX moves it."""


def character_class(ranges: tuple[tuple[int, int], ...] = CONTROL_CHARACTERS) -> str:
    """Code point `ranges` as a regular expression character class in the \\x{...} syntax that
    RE2 (Arrow, DuckDB) and Java (Spark) both read."""
    inner = "".join(
        f"\\x{{{low:x}}}" + (f"-\\x{{{high:x}}}" if high != low else "") for low, high in ranges
    )
    return f"[{inner}]"


@dataclass(frozen=True)
class Measure:
    """A numeric field: finite, and within physically plausible bounds (inclusive)."""

    field: str
    low: float
    high: float
    unit: str


# Physically plausible, not the data set's own spread: a real reading outside the sample's
# range is still valid, a humidity of 140 % or a negative rainfall is not.
MEASURES: Final = (
    Measure("temperature_c", -90.0, 60.0, "°C"),
    Measure("humidity_pct", 0.0, 100.0, "%"),
    Measure("precipitation_mm", 0.0, 500.0, "mm"),
    Measure("wind_speed_kmh", 0.0, 400.0, "km/h"),
)


class Reason:
    """Rejection reasons, shared by every stage so counts can be compared across engines.

    A quarantined record carries `<code>` and, where it concerns one field, that field name.
    """

    WRONG_FIELD_COUNT: Final = "wrong_field_count"  # CSV row with too few / too many fields
    INVALID_JSON: Final = "invalid_json"  # raw value is not valid JSON
    NOT_UTF8: Final = "not_utf8"  # raw value is not UTF-8
    NOT_AN_OBJECT: Final = "not_an_object"  # raw value is JSON, but not an object
    MISSING_FIELD: Final = "missing_field"  # a field is absent or null / empty
    EMPTY_LOCATION: Final = "empty_location"
    LOCATION_TOO_LONG: Final = "location_too_long"
    BAD_TIMESTAMP: Final = "bad_timestamp"  # unparseable or impossible (2024-02-30)
    NOT_NUMERIC: Final = "not_numeric"
    NOT_FINITE: Final = "not_finite"  # NaN or ±infinity
    OUT_OF_RANGE: Final = "out_of_range"  # a measure outside its bounds, a year outside YEARS
    CONTROL_CHARACTER: Final = "control_character"  # the location holds a CONTROL_CHARACTER
    # Only a CSV row can have these:
    TOO_LARGE: Final = "too_large"  # larger than the topic takes in one message
    UNCLOSED_QUOTE: Final = "unclosed_quote"  # a quoted field that does not end
    REPEATED_HEADER: Final = "repeated_header"  # the header again (files joined together)


CSV_ONLY_REASONS: Final = frozenset(
    {Reason.WRONG_FIELD_COUNT, Reason.TOO_LARGE, Reason.UNCLOSED_QUOTE, Reason.REPEATED_HEADER}
)
"""Reasons that concern the CSV's shape, not the event: the batch never gives them."""
