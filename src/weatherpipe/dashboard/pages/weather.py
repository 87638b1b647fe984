"""Weather: the processed zone's daily weather per city, filtered by city and day."""

from __future__ import annotations

import csv
import io
from datetime import date
from typing import Any

import altair as alt
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
DAY_AXIS = alt.Axis(title="Day (UTC)", format="%Y-%m-%d", labelAngle=-30)


def _chart_rows(rows: list[Row], column: str) -> list[dict[str, Any]]:
    return [{"day": r["day"].isoformat(), "city": r["location"], "value": r[column]} for r in rows]


def _line_chart(rows: list[Row], measure: str) -> alt.Chart:
    column, title = MEASURES[measure]
    chart: alt.Chart = (
        alt.Chart(ui.inline(_chart_rows(rows, column)))
        .mark_line(point=len(rows) <= 400)
        .encode(
            x=alt.X("day:T", axis=DAY_AXIS),
            y=alt.Y("value:Q", title=title, scale=alt.Scale(zero=False)),
            color=alt.Color("city:N", title="City"),
            tooltip=[
                alt.Tooltip("city:N", title="City"),
                alt.Tooltip("day:T", title="Day (UTC)", format="%Y-%m-%d"),
                alt.Tooltip("value:Q", title=title, format=".1f"),
            ],
        )
        .properties(height=320)
    )
    return chart


def _precipitation_chart(rows: list[Row]) -> alt.Chart:
    title = "Precipitation (mm per day)"
    chart: alt.Chart = (
        alt.Chart(ui.inline(_chart_rows(rows, "total_precipitation_mm")))
        .mark_bar()
        .encode(
            x=alt.X("day:T", axis=DAY_AXIS),
            y=alt.Y("value:Q", title=title, stack="zero"),
            color=alt.Color("city:N", title="City"),
            tooltip=[
                alt.Tooltip("city:N", title="City"),
                alt.Tooltip("day:T", title="Day (UTC)", format="%Y-%m-%d"),
                alt.Tooltip("value:Q", title=title, format=".1f"),
            ],
        )
        .properties(height=260)
    )
    return chart


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
    tiles[3].metric(
        "Total precipitation", ui.number(kpis.total_precipitation_mm, "mm"), border=True
    )
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
        }
        for r in rows
        if r["location"] in COORDINATES
    ]
    unknown = [r["location"] for r in rows if r["location"] not in COORDINATES]
    if points:
        st.map(
            {key: [p[key] for p in points] for key in ("lat", "lon")},
            latitude="lat",
            longitude="lon",
            size=40_000,
            height=320,
        )
    if unknown:
        st.caption("Not on the map (no coordinates known): " + ", ".join(unknown))


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
    try:
        coverage = data.coverage(url, timeout, epoch)
    except data.NoDataError as exc:
        st.info(str(exc), icon=":material/hourglass_empty:")
        return
    except data.DatabaseUnavailableError as exc:
        st.error(str(exc), icon=":material/error:")
        return
    if coverage.first_day is None or coverage.last_day is None:
        st.info(data.NO_DATA, icon=":material/hourglass_empty:")
        return
    st.caption(
        f"Daily aggregates of {len(coverage.locations)} cities from {coverage.first_day} to "
        f"{coverage.last_day} (UTC days). Averages are weighted by the number of observations."
    )
    selection = _filters(coverage.locations, coverage.first_day, coverage.last_day)
    if selection is None:
        return
    try:
        kpis = data.kpis(url, timeout, epoch, selection)
        rows = data.daily(url, timeout, epoch, selection)
        cities = data.per_city(url, timeout, epoch, selection)
    except (data.NoDataError, data.DatabaseUnavailableError) as exc:
        st.error(str(exc), icon=":material/error:")
        return
    _kpi_tiles(kpis)
    if not rows:
        st.info("No observations for these cities on these days.")
        return
    st.subheader("Daily averages per city")
    measure = st.segmented_control("Measure", list(MEASURES), default="Temperature", key="measure")
    st.altair_chart(_line_chart(rows, measure or "Temperature"), width="stretch")
    st.subheader("Daily precipitation")
    st.altair_chart(_precipitation_chart(rows), width="stretch")
    left, right = st.columns([2, 3])
    with left:
        st.subheader("Cities")
        _map(cities)
    with right:
        st.subheader("Comparison")
        _comparison(cities)
    st.download_button(
        "Download the selection as CSV",
        _csv(rows),
        file_name=f"weather_{selection.start}_{selection.end}.csv",
        mime="text/csv",
        key="download",
        icon=":material/download:",
    )


render()
