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
MEASURE_BY_FIELD: Final = {m.field: m for m in MEASURES}


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
    OUT_OF_RANGE: Final = "out_of_range"
