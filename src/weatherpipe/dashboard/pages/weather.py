"""Weather: the processed zone's daily weather per city, filtered by city and day."""

from __future__ import annotations

import csv
import io
from datetime import date
from typing import Any

import streamlit as st

from weatherpipe.dashboard import data, ui
from weatherpipe.dashboard.places import COORDINATES
from weatherpipe.dashboard.queries import Kpis, Row, Selection

# Line chart choices: label -> (column of daily_weather, axis title with unit).
MEASURES: dict[str, tuple[str, str]] = {
    "Temperature": ("avg_temperature_c", "Average temperature (°C)"),
    "Humidity": ("avg_humidity_pct", "Average humidity (%)"),
    "Wind speed": ("avg_wind_speed_kmh", "Average wind speed (km/h)"),
}
# Vega-Lite specs are written as plain dicts: building them through altair validates the whole
# spec with its data against the schema, which took seconds per chart for 1,390 daily rows.
DAY_X: dict[str, Any] = {
    "field": "day",
    "type": "temporal",
    "axis": {"title": "Day (UTC)", "format": "%Y-%m-%d", "labelAngle": -30},
}
CITY_COLOR: dict[str, Any] = {"field": "city", "type": "nominal", "title": "City"}


def _chart_rows(rows: list[Row], column: str) -> list[dict[str, Any]]:
    return [{"day": r["day"].isoformat(), "city": r["location"], "value": r[column]} for r in rows]


def _tooltip(title: str) -> list[dict[str, Any]]:
    return [
        {"field": "city", "type": "nominal", "title": "City"},
        {"field": "day", "type": "temporal", "title": "Day (UTC)", "format": "%Y-%m-%d"},
        {"field": "value", "type": "quantitative", "title": title, "format": ".1f"},
    ]


def _line_chart(measure: str, points: bool) -> dict[str, Any]:
    _, title = MEASURES[measure]
    return {
        "mark": {"type": "line", "point": points},
        "encoding": {
            "x": DAY_X,
            "y": {
                "field": "value",
                "type": "quantitative",
                "title": title,
                "scale": {"zero": False},
            },
            "color": CITY_COLOR,
            "tooltip": _tooltip(title),
        },
    }


def _precipitation_chart() -> dict[str, Any]:
    title = "Precipitation (mm per day)"
    return {
        "mark": {"type": "bar"},
        "encoding": {
            "x": DAY_X,
            "y": {"field": "value", "type": "quantitative", "title": title, "stack": "zero"},
            "color": CITY_COLOR,
            "tooltip": _tooltip(title),
        },
    }


def _csv(rows: list[Row]) -> str:
    out = io.StringIO()
    if rows:
        writer = csv.DictWriter(out, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    return out.getvalue()


def _kpi_tiles(kpis: Kpis) -> None:
    tiles = st.columns(4)
    tiles[0].metric("Average temperature", ui.number(kpis.avg_temperature_c, "°C"), border=True)
    tiles[1].metric("Average humidity", ui.number(kpis.avg_humidity_pct, "%"), border=True)
    tiles[2].metric("Average wind speed", ui.number(kpis.avg_wind_speed_kmh, "km/h"), border=True)
    tiles[3].metric("Total precipitation", ui.total(kpis.total_precipitation_mm, "mm"), border=True)
    st.caption(f"From {kpis.observations:,} observations on {kpis.days:,} days.")


def _filters(cities: tuple[str, ...], first: date, last: date) -> Selection | None:
    with st.sidebar:
        st.header("Filters")
        chosen = st.multiselect("Cities", cities, default=list(cities), key="cities")
        start = st.date_input(
            "From day (UTC)", value=first, min_value=first, max_value=last, key="start"
        )
        end = st.date_input("To day (UTC)", value=last, min_value=first, max_value=last, key="end")
    if not chosen:
        st.info("Pick at least one city in the sidebar.")
        return None
    if not isinstance(start, date) or not isinstance(end, date) or start > end:
        st.warning("The first day must not be after the last day.")
        return None
    return Selection(tuple(chosen), start, end)


def _map(rows: list[Row]) -> None:
    points = [
        {
            "city": r["location"],
            "lat": COORDINATES[r["location"]][0],
            "lon": COORDINATES[r["location"]][1],
            "observations": r["observations"],
            "temperature": r["avg_temperature_c"],
        }
        for r in rows
        if r["location"] in COORDINATES
    ]
    unknown = [r["location"] for r in rows if r["location"] not in COORDINATES]
    position = {
        "longitude": {"field": "lon", "type": "quantitative"},
        "latitude": {"field": "lat", "type": "quantitative"},
    }
    if points:
        # Drawn without a base map: the dashboard must work where no tile server is reachable.
        spec = {
            "projection": {"type": "mercator"},
            "layer": [
                {
                    "mark": {"type": "circle", "size": 220, "opacity": 0.85},
                    "encoding": {
                        **position,
                        "color": {
                            "field": "temperature",
                            "type": "quantitative",
                            "title": "Avg temp. (°C)",
                            "scale": {"scheme": "redyellowblue", "reverse": True},
                        },
                        "tooltip": [
                            {"field": "city", "title": "City"},
                            {"field": "temperature", "title": "Avg temp. (°C)", "format": ".1f"},
                            {"field": "observations", "title": "Observations"},
                        ],
                    },
                },
                {
                    "mark": {"type": "text", "dy": -14, "fontSize": 12},
                    "encoding": {**position, "text": {"field": "city"}},
                },
            ],
        }
        st.vega_lite_chart(points, spec, width="stretch", height=320)
        st.caption("Cities by latitude and longitude, coloured by the selection's temperature.")
    if unknown:
        st.caption("Not on the map (no coordinates known):")
        st.text("\n".join(unknown))


def _comparison(rows: list[Row]) -> None:
    st.dataframe(
        rows,
        hide_index=True,
        width="stretch",
        column_config={
            "location": st.column_config.TextColumn("City"),
            "days": st.column_config.NumberColumn("Days"),
            "observations": st.column_config.NumberColumn("Observations", format="localized"),
            "avg_temperature_c": st.column_config.NumberColumn("Avg temp. (°C)", format="%.1f"),
            "min_temperature_c": st.column_config.NumberColumn("Min temp. (°C)", format="%.1f"),
            "max_temperature_c": st.column_config.NumberColumn("Max temp. (°C)", format="%.1f"),
            "avg_humidity_pct": st.column_config.NumberColumn("Avg humidity (%)", format="%.1f"),
            "avg_wind_speed_kmh": st.column_config.NumberColumn("Avg wind (km/h)", format="%.1f"),
            "total_precipitation_mm": st.column_config.NumberColumn(
                "Precipitation (mm)", format="%.1f"
            ),
        },
        key="comparison",
    )


def render() -> None:
    """Draw the page."""
    settings = data.settings()
    ui.refresh_button(settings.dashboard_cache_seconds)
    st.title("Weather")
    url, timeout, epoch = (
        data.database_url(settings),
        settings.dashboard_timeout,
        data.epoch(settings),
    )
    coverage = data.coverage(url, timeout, epoch)
    if coverage.unshowable:
        ui.message(
            "warning",
            f"{coverage.unshowable:,} daily rows have a day outside 0001-01-01 to 9999-12-31, "
            "which this page cannot show; they are left out of everything below. "
            "`weatherpipe batch --full` rebuilds the daily table from the raw zone under the "
            "current validation rules.",
        )
    if coverage.first_day is None or coverage.last_day is None:
        if not coverage.unshowable:
            ui.message("info", data.NO_DATA)
        return
    st.caption(
        f"Daily aggregates of {len(coverage.locations)} cities from {coverage.first_day} to "
        f"{coverage.last_day} (UTC days). Averages are weighted by the number of observations."
    )
    selection = _filters(coverage.locations, coverage.first_day, coverage.last_day)
    if selection is None:
        return
    kpis = data.kpis(url, timeout, epoch, selection)
    rows = data.daily(url, timeout, epoch, selection)
    cities = data.per_city(url, timeout, epoch, selection)
    _kpi_tiles(kpis)
    if not rows:
        st.info("No observations for these cities on these days.")
        return
    st.subheader("Daily averages per city")
    measure = st.segmented_control("Measure", list(MEASURES), default="Temperature", key="measure")
    column = MEASURES[measure or "Temperature"][0]
    st.vega_lite_chart(
        _chart_rows(rows, column),
        _line_chart(measure or "Temperature", points=len(rows) <= 400),
        width="stretch",
        height=320,
    )
    st.subheader("Daily precipitation")
    st.vega_lite_chart(
        _chart_rows(rows, "total_precipitation_mm"),
        _precipitation_chart(),
        width="stretch",
        height=260,
    )
    st.subheader("Comparison of the cities")
    _comparison(cities)
    st.subheader("Map")
    _map(cities)
    st.download_button(
        "Download the selection as CSV",
        _csv(rows),
        file_name=f"weather_{selection.start}_{selection.end}.csv",
        mime="text/csv",
        key="download",
        icon=":material/download:",
    )


ui.page(render)
