"""Where the cities of the weather data lie, for the map (the seed's ten US cities)."""

from __future__ import annotations

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
