"""Weather: the processed zone's weather per city and day or week, filtered by city and day, as
a chart, a table or a map; the filters and the view live in the page's URL, so a view can be
bookmarked and shared."""

from __future__ import annotations

import csv
import io
from datetime import date
from typing import Any

import streamlit as st
from streamlit.delta_generator import DeltaGenerator

from weatherpipe.dashboard import loaders, ui
from weatherpipe.dashboard.colors import city_colors, color_encoding
from weatherpipe.dashboard.places import COORDINATES, DEFAULT_LABEL, LABELS, us_outline
from weatherpipe.dashboard.queries import Grain, KpiPeriods, Kpis, Row, Selection

# Chart choices: label -> (column of the series, axis title with unit).
MEASURES: dict[str, tuple[str, str]] = {
    "Temperature": ("avg_temperature_c", "Temperature (°C)"),
    "Humidity": ("avg_humidity_pct", "Average humidity (%)"),
    "Wind speed": ("avg_wind_speed_kmh", "Average wind speed (km/h)"),
    "Precipitation": ("avg_precipitation_mm", "Precipitation (mm per reading)"),
}
DEFAULT_MEASURE = "Temperature"
GRAINS: dict[str, Grain] = {"Daily": "day", "Weekly": "week"}
DEFAULT_GRAIN = "Daily"
# One view at a time: the browser draws only the elements it is sent, and each costs the first
# load its rendering time (a table as much as the chart).
VIEWS = ("Chart", "Table", "Map")
DEFAULT_VIEW = "Chart"
# The page's switches, kept in the URL: key -> (choices, default).
CHOICES: dict[str, tuple[tuple[str, ...], str]] = {
    "measure": (tuple(MEASURES), DEFAULT_MEASURE),
    "grain": (tuple(GRAINS), DEFAULT_GRAIN),
    "view": (VIEWS, DEFAULT_VIEW),
}
# The band of lowest to highest readings is drawn for this many cities at most: more bands
# cover each other and hide the lines.
BAND_CITIES = 3
# Vega-Lite specs are written as plain dicts: building them through altair validates the whole
# spec with its data against the schema, which took seconds per chart for 1,390 daily rows.
TOOLTIP_DAY = {"field": "period", "type": "temporal", "title": "From (UTC)", "format": "%Y-%m-%d"}


def _period_axis(grain: Grain) -> dict[str, Any]:
    title = "Day (UTC)" if grain == "day" else "Week from Monday (UTC)"
    return {
        "field": "period",
        "type": "temporal",
        "axis": {"title": title, "format": "%Y-%m-%d", "labelAngle": -30},
    }


def _chart_rows(rows: list[Row], column: str, band: bool) -> list[dict[str, Any]]:
    out = []
    for r in rows:
        point = {"period": r["period"].isoformat(), "city": r["location"], "value": r[column]}
        if band:
            point["low"], point["high"] = r["min_temperature_c"], r["max_temperature_c"]
        out.append(point)
    return out


def _chart(
    measure: str, grain: Grain, shown: list[str], colors: dict[str, str], points: bool
) -> dict[str, Any]:
    """A line per city; for temperature, with the band from the lowest to the highest reading
    of each day or week behind it."""
    _, title = MEASURES[measure]
    x, color = _period_axis(grain), color_encoding(shown, colors)
    tooltip = [
        {"field": "city", "type": "nominal", "title": "City"},
        TOOLTIP_DAY,
        {"field": "value", "type": "quantitative", "title": title, "format": ".2f"},
    ]
    line: dict[str, Any] = {
        "mark": {"type": "line", "point": points},
        "encoding": {
            "x": x,
            "y": {
                "field": "value",
                "type": "quantitative",
                "title": title,
                "scale": {"zero": False},
            },
            "color": color,
            "tooltip": tooltip,
        },
    }
    if measure != "Temperature" or len(shown) > BAND_CITIES:
        return line
    tooltip += [
        {"field": "low", "type": "quantitative", "title": "Lowest (°C)", "format": ".1f"},
        {"field": "high", "type": "quantitative", "title": "Highest (°C)", "format": ".1f"},
    ]
    band = {
        "mark": {"type": "area", "opacity": 0.12},
        "encoding": {
            "x": x,
            "y": {"field": "low", "type": "quantitative", "title": "Temperature (°C)"},
            "y2": {"field": "high"},
            "color": {**color, "legend": None},
        },
    }
    # Legends of their own: a shared one shows the band's pale swatches, or none at all.
    return {"layer": [band, line], "resolve": {"legend": {"color": "independent"}}}


def _csv(rows: list[Row]) -> str:
    out = io.StringIO()
    if rows:
        writer = csv.DictWriter(out, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    return out.getvalue()


def _change(now: float | None, then: float | None, unit: str) -> str | None:
    if now is None or then is None:
        return None
    return f"{now - then:+,.{2 if unit == 'mm' else 1}f} {unit}"


def _kpi_tiles(periods: KpiPeriods, first: date) -> None:
    """The selection's averages, each with its change against the days just before (only
    when all of those days lie within the data: a partial period would mislead)."""
    before, start, end = periods.previous, periods.previous_start, periods.previous_end
    comparable = before is not None and start is not None and start >= first
    now = periods.current
    then = before if comparable and before is not None else Kpis(0, 0, None, None, None, None)
    tiles = st.columns(4)
    for tile, (label, field, unit) in zip(
        tiles,
        (
            ("Average temperature", "avg_temperature_c", "°C"),
            ("Average humidity", "avg_humidity_pct", "%"),
            ("Average wind speed", "avg_wind_speed_kmh", "km/h"),
            ("Precipitation per reading", "avg_precipitation_mm", "mm"),
        ),
        strict=True,
    ):
        value, before = getattr(now, field), getattr(then, field)
        digits = 2 if unit == "mm" else 1
        tile.metric(
            label,
            ui.number(value, unit, digits),
            _change(value, before, unit),
            delta_color="off",
            border=True,
        )
    st.caption(f"From {now.observations:,} observations on {now.days:,} days.")
    if start is None or end is None or not comparable:
        st.caption("No change shown: the data holds no period of the same length before this one.")
    elif not then.observations:
        st.caption("No change shown: these cities have no observations in the days before.")
    else:
        st.caption(
            f"Changes against the {(end - start).days + 1:,} days before ({start} to {end})."
        )


def _day(text: str | None, first: date, last: date) -> date | None:
    try:
        day = date.fromisoformat(text or "")
    except ValueError:
        return None
    return day if first <= day <= last else None


def _from_url(cities: tuple[str, ...], first: date, last: date) -> None:
    """Fill the filters from the URL when the page opens; afterwards keep them within the days
    and cities the processed zone holds now.

    Every value is written back on every run, before its widget: a widget whose value only
    ever came from here would otherwise be shown empty after the next rerun, and a widget left
    out of a run (the measure outside the chart's view) would forget its choice."""
    state, url = st.session_state, st.query_params
    if "cities" not in state:
        state["cities"] = [c for c in url.get_all("city") if c in cities] or list(cities)
        state["start"] = _day(url.get("from"), first, last) or first
        state["end"] = _day(url.get("to"), first, last) or last
        for key in CHOICES:
            state[key] = url.get(key)
    for key, default in (("start", first), ("end", last)):
        value = state.get(key)
        state[key] = value if isinstance(value, date) and first <= value <= last else default
    state["cities"] = [c for c in state["cities"] if c in cities]
    for key, (options, fallback) in CHOICES.items():
        choice = state.get(key)
        state[key] = choice if choice in options else fallback


def _to_url(wanted: dict[str, list[str]]) -> None:
    """Put the filters that differ from the defaults into the URL (only when they changed: each
    change is a browser history entry)."""
    url = st.query_params
    if {key: url.get_all(key) for key in url} != wanted:
        url.from_dict(wanted)


def _filter_label(total: int) -> str:
    """What the filters hold now, in the words of the button that opens them (Markdown: counts
    and days only, never a city's name)."""
    state = st.session_state
    return f"Filters: {len(state['cities'])} of {total} cities, {state['start']} to {state['end']}"


def _filters(
    place: DeltaGenerator, cities: tuple[str, ...], first: date, last: date
) -> Selection | None:
    _from_url(cities, first, last)
    # In a popover: the browser builds its widgets only when it is opened, and the first screen
    # shows what they hold in one button.
    with place.popover(_filter_label(len(cities)), icon=":material/filter_list:"):
        chosen = st.multiselect("Cities", cities, key="cities")
        start = st.date_input("From day (UTC)", min_value=first, max_value=last, key="start")
        end = st.date_input("To day (UTC)", min_value=first, max_value=last, key="end")
    if not chosen:
        st.info("Pick at least one city under the filters.")
        return None
    if not isinstance(start, date) or not isinstance(end, date) or start > end:
        st.warning("The first day must not be after the last day.")
        return None
    return Selection(tuple(chosen), start, end)


def _url_state(selection: Selection, cities: tuple[str, ...], first: date, last: date) -> None:
    wanted: dict[str, list[str]] = {}
    if set(selection.locations) != set(cities):
        wanted["city"] = sorted(selection.locations)
    if selection.start != first:
        wanted["from"] = [selection.start.isoformat()]
    if selection.end != last:
        wanted["to"] = [selection.end.isoformat()]
    for key, (_, default) in CHOICES.items():
        value = st.session_state.get(key)
        if value and value != default:
            wanted[key] = [value]
    _to_url(wanted)


def _labels(position: dict[str, Any]) -> dict[str, Any]:
    """The cities' labels in one layer: each point carries its own placement (align, dx, dy),
    which Vega reads per point."""
    return {
        "mark": {
            "type": "text",
            "fontSize": 11,
            "align": {"expr": "datum.align"},
            "dx": {"expr": "datum.dx"},
            "dy": {"expr": "datum.dy"},
        },
        "encoding": {**position, "text": {"field": "label"}},
    }


def _map(rows: list[Row], colors: dict[str, str]) -> None:
    """The cities on a map of the US; below it, those without known coordinates."""
    points = [
        {
            "city": r["location"],
            "lat": COORDINATES[r["location"]][0],
            "lon": COORDINATES[r["location"]][1],
            "observations": r["observations"],
            "temperature": r["avg_temperature_c"],
            "low": r["min_temperature_c"],
            "high": r["max_temperature_c"],
            "label": f"{r['location']} {ui.number(r['avg_temperature_c'], '°C')}",
            **dict(
                zip(("align", "dx", "dy"), LABELS.get(r["location"], DEFAULT_LABEL), strict=True)
            ),
        }
        for r in rows
        if r["location"] in COORDINATES
    ]
    unknown = [r["location"] for r in rows if r["location"] not in COORDINATES]
    if points:
        shown = [p["city"] for p in points]
        position: dict[str, Any] = {
            "longitude": {"field": "lon", "type": "quantitative"},
            "latitude": {"field": "lat", "type": "quantitative"},
        }
        outline = us_outline()
        land, borders = ({**outline, "features": [f]} for f in outline["features"])
        geo = {"type": "json", "property": "features"}
        # The outline ships with the package: the map needs no tile server.
        spec: dict[str, Any] = {
            "projection": {"type": "albersUsa"},
            "layer": [
                {
                    "data": {"values": land, "format": geo},
                    "mark": {"type": "geoshape", "fill": "#eef1f5", "stroke": "#8a94a3"},
                },
                {
                    "data": {"values": borders, "format": geo},
                    "mark": {"type": "geoshape", "filled": False, "stroke": "#c7ced8"},
                },
                {
                    "mark": {"type": "circle", "size": 200, "opacity": 0.9, "stroke": "white"},
                    "encoding": {
                        **position,
                        "color": {**color_encoding(shown, colors), "legend": None},
                        "tooltip": [
                            {"field": "city", "title": "City"},
                            {"field": "temperature", "title": "Avg temp. (°C)", "format": ".1f"},
                            {"field": "low", "title": "Lowest (°C)", "format": ".1f"},
                            {"field": "high", "title": "Highest (°C)", "format": ".1f"},
                            {"field": "observations", "title": "Observations", "format": ","},
                        ],
                    },
                },
                _labels(position),
            ],
        }
        st.vega_lite_chart(points, spec, width="stretch", height=380)
        st.caption("Each city at its place, with its average temperature over the selection.")
    if unknown:
        st.caption("Not on the map (no coordinates known):")
        st.text("\n".join(unknown))


def _comparison(rows: list[Row]) -> None:
    ui.table(
        rows,
        "comparison",
        {
            "location": st.column_config.TextColumn("City"),
            "days": st.column_config.NumberColumn("Days", format="localized"),
            "observations": st.column_config.NumberColumn("Observations", format="localized"),
            "avg_temperature_c": st.column_config.NumberColumn("Avg temp. (°C)", format="%.1f"),
            "min_temperature_c": st.column_config.NumberColumn("Lowest (°C)", format="%.1f"),
            "max_temperature_c": st.column_config.NumberColumn("Highest (°C)", format="%.1f"),
            "avg_humidity_pct": st.column_config.NumberColumn("Avg humidity (%)", format="%.1f"),
            "avg_wind_speed_kmh": st.column_config.NumberColumn("Avg wind (km/h)", format="%.1f"),
            "avg_precipitation_mm": st.column_config.NumberColumn(
                "Precipitation (mm per reading)", format="%.2f"
            ),
        },
    )


def _series(rows: list[Row], measure: str, grain: Grain, colors: dict[str, str]) -> None:
    """The chart of `measure` per city over time; for a few cities' temperature, with the band
    from the lowest to the highest reading."""
    column = MEASURES[measure][0]
    st.subheader(f"{measure} per city and {'day' if grain == 'day' else 'week'}")
    shown = sorted({r["location"] for r in rows})
    band = measure == "Temperature" and len(shown) <= BAND_CITIES
    st.vega_lite_chart(
        _chart_rows(rows, column, band),
        _chart(measure, grain, shown, colors, points=len(rows) <= 400),
        width="stretch",
        height=340,
    )
    if band:
        st.caption("Lines: average temperature; shaded: lowest to highest reading.")
    elif measure == "Temperature":
        st.caption(
            f"Lines: average temperature. Pick {BAND_CITIES} cities or fewer to see the band "
            "from the lowest to the highest reading."
        )


def render() -> None:
    """Draw the page."""
    settings = loaders.settings()
    ui.refresh_button(settings.dashboard_cache_seconds)
    st.title("Weather")
    url, timeout, epoch = (
        loaders.database_url(settings),
        settings.dashboard_timeout,
        loaders.epoch(settings),
    )
    coverage = loaders.coverage(url, timeout, epoch)
    if coverage.unshowable:
        ui.message(
            "warning",
            f"{coverage.unshowable:,} daily rows have a day outside 0001-01-01 to 9999-12-31, "
            "which this page cannot show; they are left out of everything below. "
            "`weatherpipe batch --full` rebuilds the daily table from the raw zone under the "
            "current validation rules.",
        )
    first, last = coverage.first_day, coverage.last_day
    if first is None or last is None:
        if not coverage.unshowable:
            ui.message("info", loaders.NO_DATA)
        return
    st.caption(
        f"Daily aggregates of {len(coverage.locations)} cities from {first} to {last} "
        "(UTC days). Averages are weighted by the number of observations."
    )
    # One row of controls: the filters' button, the period and the view.
    filters_at, grain_at, view_at = st.columns([3, 1.2, 2], vertical_alignment="bottom")
    selection = _filters(filters_at, coverage.locations, first, last)
    if selection is None:
        return
    grain_label = grain_at.segmented_control("Per", list(GRAINS), key="grain") or DEFAULT_GRAIN
    view = view_at.segmented_control("Show", VIEWS, key="view") or DEFAULT_VIEW
    _url_state(selection, coverage.locations, first, last)
    grain = GRAINS[grain_label]
    periods = loaders.kpis(url, timeout, epoch, selection)
    _kpi_tiles(periods, first)
    if not periods.current.observations:
        st.info("No observations for these cities on these days.")
        return
    if view == "Chart":
        measure = st.segmented_control("Measure", list(MEASURES), key="measure")
        rows = loaders.series(url, timeout, epoch, selection, grain)
        _series(rows, measure or DEFAULT_MEASURE, grain, city_colors(coverage.locations))
    elif view == "Table":
        st.subheader("Comparison of the cities")
        _comparison(loaders.per_city(url, timeout, epoch, selection))
        st.download_button(
            f"Download the selection as CSV ({grain_label.lower()})",
            _csv(loaders.series(url, timeout, epoch, selection, grain)),
            file_name=f"weather_{grain}_{selection.start}_{selection.end}.csv",
            mime="text/csv",
            key="download",
            icon=":material/download:",
        )
    else:
        st.subheader("Map")
        _map(loaders.per_city(url, timeout, epoch, selection), city_colors(coverage.locations))
