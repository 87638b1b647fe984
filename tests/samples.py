"""The sample record most tests start from: the seed's example event, as the producer sends it
and as its CSV row. Copy it before changing a field (`{**EVENT, "location": ...}`)."""

from __future__ import annotations

from typing import Any, Final

EVENT: Final[dict[str, Any]] = {
    "location": "Chicago",
    "timestamp": "2024-03-01 14:05:09",
    "temperature_c": 3.1,
    "humidity_pct": 71.2,
    "precipitation_mm": 0.4,
    "wind_speed_kmh": 18.9,
}
CSV_ROW: Final = "Chicago,2024-03-01 14:05:09,3.1,71.2,0.4,18.9"
"""EVENT's row under the CSV header `CSV_COLUMNS`."""
