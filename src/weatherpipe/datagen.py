"""A synthetic weather CSV in the format of the Kaggle data set prasad22/weather-data.

Same header, same `Date_Time` format, plain decimal numbers, times in random (unsorted) order
over 2024-01-01 … 2024-05-18, values inside the original's ranges, with a seasonal trend and a
per-city climate so the dashboard shows real differences. Deterministic for a seed and chunk
size; built column-wise with NumPy and written with PyArrow, so a million rows take seconds.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv

from weatherpipe.durable import replacing
from weatherpipe.events import CSV_COLUMNS
from weatherpipe.ingest.validate import format_timestamps

FIRST_DAY: Final = dt.datetime(2024, 1, 1)
LAST_DAY: Final = dt.datetime(2024, 5, 18)
_SPAN_SECONDS: Final = int((LAST_DAY - FIRST_DAY).total_seconds()) + 86_400
_EPOCH_OFFSET: Final = int(FIRST_DAY.replace(tzinfo=dt.UTC).timestamp())

# The original data set's value ranges; generated values never leave them.
TEMPERATURE_RANGE: Final = (-20.0, 40.0)
HUMIDITY_RANGE: Final = (30.0, 90.0)
PRECIPITATION_RANGE: Final = (0.0, 15.0)
WIND_RANGE: Final = (0.0, 30.0)

CHUNK_ROWS: Final = 100_000


@dataclass(frozen=True)
class Climate:
    """A city's typical weather: January mean temperature, warming until mid-May, humidity,
    rain and wind levels."""

    city: str
    january_c: float
    warming_c: float
    humidity_pct: float
    rain_mm: float
    wind_kmh: float


CITIES: Final = (
    Climate("New York", 1.0, 16.0, 62.0, 3.5, 16.0),
    Climate("Los Angeles", 14.0, 5.0, 58.0, 1.5, 11.0),
    Climate("Chicago", -4.0, 19.0, 66.0, 3.0, 19.0),
    Climate("Houston", 12.0, 13.0, 76.0, 4.5, 13.0),
    Climate("Phoenix", 13.0, 16.0, 36.0, 0.8, 10.0),
    Climate("Philadelphia", 1.5, 16.0, 63.0, 3.4, 15.0),
    Climate("San Antonio", 11.0, 13.0, 66.0, 2.5, 13.0),
    Climate("San Diego", 14.5, 4.0, 65.0, 1.2, 10.0),
    Climate("Dallas", 8.0, 15.0, 62.0, 3.0, 17.0),
    Climate("San Jose", 10.5, 7.0, 61.0, 2.0, 12.0),
)
CITY_NAMES: Final = tuple(c.city for c in CITIES)
"""The ten cities of the Kaggle data set, in a fixed order."""


def _decimal_text(values: np.ndarray) -> pa.Array:
    """Numbers as plain decimal text with two decimals at most ("12.5", "3.0", never "1e-05")."""
    text = pc.cast(pa.array(np.round(values, 2)), pa.string())
    return pc.if_else(
        pc.match_substring(text, "."), text, pc.binary_join_element_wise(text, ".0", "")
    )


def generate_chunk(rng: np.random.Generator, rows: int) -> pa.Table:
    """`rows` random observations as a table of CSV text columns (header = CSV_COLUMNS)."""
    city = rng.integers(0, len(CITIES), rows)
    seconds = rng.integers(0, _SPAN_SECONDS, rows)
    season = seconds / _SPAN_SECONDS  # 0 on Jan 1, 1 at the end of May 18
    hour = (seconds % 86_400) / 3_600

    def per_city(attr: str) -> np.ndarray:
        return np.array([getattr(c, attr) for c in CITIES])[city]

    # Afternoon warmth, morning humidity: a daily cycle on top of season and city.
    daily = np.cos((hour - 15.0) / 24.0 * 2 * np.pi)
    temperature = (
        per_city("january_c")
        + per_city("warming_c") * season
        + 5.0 * daily
        + rng.normal(0.0, 4.0, rows)
    )
    humidity = per_city("humidity_pct") - 8.0 * daily + rng.normal(0.0, 9.0, rows)
    rainy = rng.random(rows) < 0.45
    precipitation = np.where(rainy, rng.exponential(per_city("rain_mm") * 1.6, rows), 0.0)
    wind = rng.gamma(4.0, per_city("wind_kmh") / 4.0, rows)

    timestamps = pa.array(seconds + _EPOCH_OFFSET, pa.timestamp("s"))
    columns = [
        pa.array([c.city for c in CITIES]).take(pa.array(city)),
        format_timestamps(timestamps),
        _decimal_text(np.clip(temperature, *TEMPERATURE_RANGE)),
        _decimal_text(np.clip(humidity, *HUMIDITY_RANGE)),
        _decimal_text(np.clip(precipitation, *PRECIPITATION_RANGE)),
        _decimal_text(np.clip(wind, *WIND_RANGE)),
    ]
    return pa.table(columns, names=list(CSV_COLUMNS))


def generate_chunks(rows: int, seed: int, chunk_rows: int = CHUNK_ROWS) -> Iterator[pa.Table]:
    """The data set as tables of at most `chunk_rows` rows; the same seed gives the same rows."""
    rng = np.random.default_rng(seed)
    done = 0
    while done < rows:
        size = min(chunk_rows, rows - done)
        yield generate_chunk(rng, size)
        done += size


def write_csv(
    path: Path,
    rows: int,
    seed: int,
    on_progress: Callable[[int], None] | None = None,
) -> int:
    """Write the data set to `path` (atomically: a temp file renamed into place).

    `on_progress` is called with the number of rows written by each chunk. Returns the size in
    bytes of the file written.
    """
    options = pcsv.WriteOptions(include_header=False, quoting_style="none")
    with replacing(path) as out:
        out.write((",".join(CSV_COLUMNS) + "\n").encode())
        for chunk in generate_chunks(rows, seed):
            pcsv.write_csv(chunk, out, options)
            if on_progress is not None:
                on_progress(chunk.num_rows)
    return path.stat().st_size
