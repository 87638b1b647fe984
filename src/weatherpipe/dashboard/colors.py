"""One colour per city, the same on every chart and under every filter.

A city's colour follows from its place among all cities of the processed zone (not among the
chosen ones), so narrowing the filter never repaints the cities that stay.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

# Ten saturated colours that stay distinct from each other and readable on white: d3's
# category10 with its grey and pale olive replaced by a dark olive and an indigo.
PALETTE = (
    "#1f77b4",
    "#d62728",
    "#2ca02c",
    "#ff7f0e",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#0f9fb0",
    "#8a8a00",
    "#393b79",
)


def city_colors(all_cities: Sequence[str]) -> dict[str, str]:
    """Each city's colour, by its place in the sorted list of all cities (an eleventh city
    shares the first one's colour)."""
    return {city: PALETTE[i % len(PALETTE)] for i, city in enumerate(sorted(all_cities))}


def color_encoding(shown: Sequence[str], colors: dict[str, str]) -> dict[str, Any]:
    """A Vega-Lite colour channel for the field `city` that gives each of the `shown` cities
    its fixed colour (the legend lists only those)."""
    domain = sorted(shown)
    return {
        "field": "city",
        "type": "nominal",
        "title": "City",
        "scale": {"domain": domain, "range": [colors[c] for c in domain]},
    }
