"""Where the cities of the weather data lie, and the outline of the country they lie in, for
the map (the seed's ten US cities)."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

# (latitude, longitude) of each city's centre.
COORDINATES: dict[str, tuple[float, float]] = {
    "Chicago": (41.8781, -87.6298),
    "Dallas": (32.7767, -96.7970),
    "Houston": (29.7604, -95.3698),
    "Los Angeles": (34.0522, -118.2437),
    "New York": (40.7128, -74.0060),
    "Philadelphia": (39.9526, -75.1652),
    "Phoenix": (33.4484, -112.0740),
    "San Antonio": (29.4241, -98.4936),
    "San Diego": (32.7157, -117.1611),
    "San Jose": (37.3382, -121.8863),
}

# Where each city's label sits next to its dot (align, dx, dy in pixels), so that neighbours
# (Los Angeles and San Diego, New York and Philadelphia, Houston and San Antonio) stay readable.
LABELS: dict[str, tuple[str, int, int]] = {
    "Chicago": ("center", 0, -13),
    "Dallas": ("left", 9, -6),
    "Houston": ("left", 9, 4),
    "Los Angeles": ("right", -9, -4),
    "New York": ("left", 9, -5),
    "Philadelphia": ("left", 9, 7),
    "Phoenix": ("left", 9, 0),
    "San Antonio": ("right", -9, 4),
    "San Diego": ("right", -9, 8),
    "San Jose": ("right", -9, 0),
}
DEFAULT_LABEL = ("center", 0, -13)

# The lower 48 states as GeoJSON: their merged outline and the borders between them. Shipped
# with the package so the map needs no tile server. Derived from the U.S. Census Bureau's
# cartographic boundary files (2017, public domain) as redistributed by the npm package
# us-atlas 3.0.1 (states-10m.json): Alaska, Hawaii and the territories left out, simplified
# with topojson-simplify (minimum weight 0.02), islands under 8 points dropped, coordinates
# rounded to 0.01° (about 1 km) — some 14 KB, drawn in a few milliseconds.
OUTLINE_FILE = Path(__file__).resolve().parent / "us_lower48.geojson"


@cache
def us_outline() -> dict[str, Any]:
    """The lower 48 states' outline and inner borders (a GeoJSON FeatureCollection)."""
    outline: dict[str, Any] = json.loads(OUTLINE_FILE.read_text(encoding="utf-8"))
    return outline
