"""Every SQL statement the dashboard runs, parameterised: a value chosen in the browser only ever
reaches PostgreSQL as a bind parameter, never as SQL text.

Averages over several days or cities are weighted by the number of observations: they are
computed from the stored sums (sum of sums / sum of observations), never as averages of the
daily averages.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

import psycopg
from psycopg.rows import dict_row

Row = dict[str, Any]

# Selection used by the weather queries: the chosen cities and an inclusive range of days.
_SELECTION = "location = ANY(%(locations)s) AND day BETWEEN %(start)s AND %(end)s"
# PostgreSQL keeps days from 4713 BC on; Python's dates (and so every page) span years 1 to 9999.
# Days outside are counted and left out, never fetched: fetching one fails the whole query.
SHOWABLE: dict[str, object] = {"first": date.min, "last": date.max}


@dataclass(frozen=True)
class Selection:
    """The cities and the inclusive range of days picked on the weather page."""

    locations: tuple[str, ...]
    start: date
    end: date

    def params(self) -> dict[str, object]:
        return {"locations": list(self.locations), "start": self.start, "end": self.end}


@dataclass(frozen=True)
class Coverage:
    """What the processed zone holds: its cities and first and last day (None when empty), over
    the days Python can show; `unshowable` daily rows lie outside those and are left out."""

    locations: tuple[str, ...]
    first_day: date | None
    last_day: date | None
    unshowable: int = 0


@dataclass(frozen=True)
class Kpis:
    """Weighted averages and totals of a selection; averages are None without observations."""

    observations: int
    days: int
    avg_temperature_c: float | None
    avg_humidity_pct: float | None
    avg_wind_speed_kmh: float | None
    total_precipitation_mm: float | None


def _rows(
    conn: psycopg.Connection, query: str, params: dict[str, object] | None = None
) -> list[Row]:
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(query.encode(), params)
        return cur.fetchall()


def coverage(conn: psycopg.Connection) -> Coverage:
    """The cities and the day range in daily_aggregate, and how many rows lie outside it."""
    inside = "day BETWEEN %(first)s AND %(last)s"
    span = _rows(
        conn,
        f"SELECT min(day) FILTER (WHERE {inside}) AS first_day,"
        f" max(day) FILTER (WHERE {inside}) AS last_day,"
        f" count(*) FILTER (WHERE NOT {inside})::bigint AS unshowable"
        " FROM daily_aggregate",
        SHOWABLE,
    )[0]
    cities = _rows(
        conn,
        f"SELECT DISTINCT location FROM daily_aggregate WHERE {inside} ORDER BY location",
        SHOWABLE,
    )
    return Coverage(
        tuple(r["location"] for r in cities),
        span["first_day"],
        span["last_day"],
        span["unshowable"],
    )


def kpis(conn: psycopg.Connection, selection: Selection) -> Kpis:
    """Weighted averages of temperature, humidity and wind and the total precipitation."""
    row = _rows(
        conn,
        "SELECT coalesce(sum(observations), 0)::bigint AS observations,"
        " count(DISTINCT day)::bigint AS days,"
        " (sum(temperature_sum) / sum(observations))::double precision AS avg_temperature_c,"
        " (sum(humidity_sum) / sum(observations))::double precision AS avg_humidity_pct,"
        " (sum(wind_speed_sum) / sum(observations))::double precision AS avg_wind_speed_kmh,"
        " sum(precipitation_sum)::double precision AS total_precipitation_mm"
        f" FROM daily_aggregate WHERE {_SELECTION}",
        selection.params(),
    )[0]
    return Kpis(**row)


def daily(conn: psycopg.Connection, selection: Selection) -> list[Row]:
    """One row per city and day of the selection, from the daily_weather view."""
    return _rows(
        conn,
        "SELECT location, day, observations, avg_temperature_c, min_temperature_c,"
        " max_temperature_c, avg_humidity_pct, avg_wind_speed_kmh, total_precipitation_mm"
        f" FROM daily_weather WHERE {_SELECTION} ORDER BY location, day",
        selection.params(),
    )


def per_city(conn: psycopg.Connection, selection: Selection) -> list[Row]:
    """One row per city of the selection: weighted averages, extremes and totals."""
    return _rows(
        conn,
        "SELECT location, count(*)::bigint AS days, sum(observations)::bigint AS observations,"
        " (sum(temperature_sum) / sum(observations))::double precision AS avg_temperature_c,"
        " min(temperature_min) AS min_temperature_c, max(temperature_max) AS max_temperature_c,"
        " (sum(humidity_sum) / sum(observations))::double precision AS avg_humidity_pct,"
        " (sum(wind_speed_sum) / sum(observations))::double precision AS avg_wind_speed_kmh,"
        " sum(precipitation_sum)::double precision AS total_precipitation_mm"
        f" FROM daily_aggregate WHERE {_SELECTION} GROUP BY location ORDER BY location",
        selection.params(),
    )


def runs(conn: psycopg.Connection, limit: int) -> list[Row]:
    """The latest batch runs, newest first."""
    return _rows(
        conn,
        "SELECT id, started_at, finished_at,"
        " extract(epoch FROM finished_at - started_at)::double precision AS seconds,"
        " status, engine, mode, files, lines, duplicates, rejected, rows_inserted, rows_updated,"
        " rows_unchanged, rows_deleted, error"
        " FROM batch_run ORDER BY id DESC LIMIT %(limit)s",
        {"limit": limit},
    )


def totals(conn: psycopg.Connection) -> Row:
    """Totals over all runs and the processed zone's size."""
    return _rows(
        conn,
        "SELECT (SELECT count(*) FROM batch_run)::bigint AS runs,"
        " (SELECT coalesce(sum(lines), 0) FROM batch_run"
        "   WHERE status = 'succeeded')::bigint AS lines,"
        " (SELECT coalesce(sum(observations), 0) FROM daily_aggregate)::bigint AS observations,"
        " (SELECT count(*) FROM quarantine)::bigint AS rejected,"
        " (SELECT count(*) FROM daily_aggregate)::bigint AS daily_rows,"
        " (SELECT count(*) FROM processed_file)::bigint AS files",
    )[0]


def processed_per_day(conn: psycopg.Connection) -> list[Row]:
    """Processed raw files and their bytes per day folder (from the files' paths)."""
    return _rows(
        conn,
        "SELECT substring(path FROM 'date=([0-9]{4}-[0-9]{2}-[0-9]{2})') AS day,"
        " count(*)::bigint AS files, sum(size_bytes)::bigint AS bytes,"
        " sum(lines)::bigint AS lines"
        " FROM processed_file GROUP BY 1 ORDER BY 1",
    )


def rejected_by_reason(conn: psycopg.Connection) -> list[Row]:
    """How many records were quarantined per reason and field."""
    return _rows(
        conn,
        "SELECT reason, field, count(*)::bigint AS records FROM quarantine"
        " GROUP BY reason, field ORDER BY records DESC, reason, field",
    )


def rejected_records(conn: psycopg.Connection, reason: str | None, limit: int) -> list[Row]:
    """The latest quarantined records, of one reason or of all (`reason` None)."""
    return _rows(
        conn,
        "SELECT q.id, q.run_id, r.started_at AS run_started_at, q.reason, q.field, q.file,"
        ' q.line, q.topic, q.partition, q."offset", q.raw'
        " FROM quarantine q JOIN batch_run r ON r.id = q.run_id"
        " WHERE %(reason)s::text IS NULL OR q.reason = %(reason)s"
        " ORDER BY q.id DESC LIMIT %(limit)s",
        {"reason": reason, "limit": limit},
    )
