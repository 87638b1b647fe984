"""Every SQL statement the dashboard runs, parameterised: a value chosen in the browser only ever
reaches PostgreSQL as a bind parameter, never as SQL text.

Averages over several days or cities are weighted by the number of observations: they are
computed from the stored sums (sum of sums / sum of observations), never as averages of the
daily averages.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any, Literal

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
    """Weighted averages of a selection; averages are None without observations."""

    observations: int
    days: int
    avg_temperature_c: float | None
    avg_humidity_pct: float | None
    avg_wind_speed_kmh: float | None
    avg_precipitation_mm: float | None
    """Mean precipitation of one observation (the data's unit: mm per reading)."""


@dataclass(frozen=True)
class KpiPeriods:
    """The KPIs of a selection and of the period of the same length just before it (the same
    cities); `previous` is None when that period would start before year 1."""

    current: Kpis
    previous: Kpis | None
    previous_start: date | None
    previous_end: date | None


Grain = Literal["day", "week"]


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


# The KPI columns of the days matching {p}, named with the prefix {a}.
_KPI_COLUMNS = (
    "coalesce(sum(observations) FILTER (WHERE {p}), 0)::bigint AS {a}observations,"
    " count(DISTINCT day) FILTER (WHERE {p})::bigint AS {a}days,"
    " (sum(temperature_sum) FILTER (WHERE {p}) / sum(observations) FILTER (WHERE {p}))"
    "::double precision AS {a}avg_temperature_c,"
    " (sum(humidity_sum) FILTER (WHERE {p}) / sum(observations) FILTER (WHERE {p}))"
    "::double precision AS {a}avg_humidity_pct,"
    " (sum(wind_speed_sum) FILTER (WHERE {p}) / sum(observations) FILTER (WHERE {p}))"
    "::double precision AS {a}avg_wind_speed_kmh,"
    " (sum(precipitation_sum) FILTER (WHERE {p}) / sum(observations) FILTER (WHERE {p}))"
    "::double precision AS {a}avg_precipitation_mm"
)


def previous_period(selection: Selection) -> tuple[date, date] | None:
    """The days of the same length just before the selection's (None before year 1)."""
    length = selection.end - selection.start + timedelta(days=1)
    if selection.start - date.min < length:
        return None
    return selection.start - length, selection.start - timedelta(days=1)


def kpis(conn: psycopg.Connection, selection: Selection) -> KpiPeriods:
    """Weighted averages of temperature, humidity, wind and precipitation per observation, of
    the selection and of the period just before it, in one pass over both periods."""
    before = previous_period(selection)
    params = {**selection.params(), "pstart": selection.start, "pend": selection.start}
    if before is not None:
        params["pstart"], params["pend"] = before
    current = _KPI_COLUMNS.format(p="day BETWEEN %(start)s AND %(end)s", a="")
    previous = _KPI_COLUMNS.format(p="day BETWEEN %(pstart)s AND %(pend)s", a="p_")
    row = _rows(
        conn,
        f"SELECT {current}, {previous} FROM daily_aggregate"
        " WHERE location = ANY(%(locations)s) AND day BETWEEN %(pstart)s AND %(end)s",
        params,
    )[0]
    now = Kpis(**{k: v for k, v in row.items() if not k.startswith("p_")})
    if before is None:
        return KpiPeriods(now, None, None, None)
    then = Kpis(**{k[2:]: v for k, v in row.items() if k.startswith("p_")})
    return KpiPeriods(now, then, before[0], before[1])


# Per group of days: the averages weighted by observations, and the temperature's extremes.
_WEIGHTED_COLUMNS = (
    "(sum(temperature_sum) / sum(observations))::double precision AS avg_temperature_c,"
    " min(temperature_min) AS min_temperature_c, max(temperature_max) AS max_temperature_c,"
    " (sum(humidity_sum) / sum(observations))::double precision AS avg_humidity_pct,"
    " (sum(wind_speed_sum) / sum(observations))::double precision AS avg_wind_speed_kmh,"
    " (sum(precipitation_sum) / sum(observations))::double precision AS avg_precipitation_mm"
)


def series(conn: psycopg.Connection, selection: Selection, grain: Grain) -> list[Row]:
    """One row per city and day (or ISO week, Monday first) of the selection: weighted
    averages, the lowest and highest temperature, and the precipitation per observation. A
    week cut by the selection's first or last day holds only its selected days."""
    return _rows(
        conn,
        "SELECT location, date_trunc(%(grain)s, day)::date AS period,"
        f" sum(observations)::bigint AS observations, {_WEIGHTED_COLUMNS}"
        f" FROM daily_aggregate WHERE {_SELECTION} GROUP BY location, period"
        " ORDER BY location, period",
        {**selection.params(), "grain": grain},
    )


def per_city(conn: psycopg.Connection, selection: Selection) -> list[Row]:
    """One row per city of the selection: weighted averages, extremes and totals."""
    return _rows(
        conn,
        "SELECT location, count(*)::bigint AS days, sum(observations)::bigint AS observations,"
        f" {_WEIGHTED_COLUMNS}"
        f" FROM daily_aggregate WHERE {_SELECTION} GROUP BY location ORDER BY location",
        selection.params(),
    )


def runs(conn: psycopg.Connection, limit: int) -> list[Row]:
    """The latest batch runs, newest first; the columns a reader looks at first come first."""
    return _rows(
        conn,
        "SELECT id, started_at, status, files, lines, rejected, duplicates,"
        " rows_inserted + rows_updated AS rows_written,"
        " extract(epoch FROM finished_at - started_at)::double precision AS seconds,"
        " mode, engine, error, finished_at, rows_inserted, rows_updated, rows_unchanged,"
        " rows_deleted"
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


def processed_files(conn: psycopg.Connection, topic: str) -> list[Row]:
    """The raw files of `topic` the batch has processed, with their lines."""
    return _rows(
        conn,
        "SELECT path, lines FROM processed_file WHERE topic = %(topic)s ORDER BY path",
        {"topic": topic},
    )


def outcome(conn: psycopg.Connection) -> Row:
    """What became of the lines the batch processed since its last full run, over every topic
    (the daily table keeps no topic): lines read, quarantined, observations stored, and
    duplicates skipped."""
    return _rows(
        conn,
        "SELECT (SELECT coalesce(sum(lines), 0) FROM processed_file)::bigint AS lines,"
        " (SELECT count(*) FROM quarantine)::bigint AS quarantined,"
        " (SELECT coalesce(sum(observations), 0) FROM daily_aggregate)::bigint AS observations,"
        " (SELECT coalesce(sum(duplicates), 0) FROM batch_run WHERE status = 'succeeded'"
        "   AND id >= coalesce((SELECT max(id) FROM batch_run"
        "     WHERE mode = 'full' AND status = 'succeeded'), 0))::bigint AS duplicates",
    )[0]
