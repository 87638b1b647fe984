"""An independent computation of `daily_weather` straight from a CSV (plain Python, exact
decimals), to compare the batch's table with."""

from __future__ import annotations

import csv
from collections.abc import Collection
from decimal import Decimal
from pathlib import Path

import pytest

DAILY = (
    "SELECT location, day::text, observations, avg_temperature_c, avg_humidity_pct,"
    " avg_wind_speed_kmh, total_precipitation_mm, min_temperature_c, max_temperature_c"
    " FROM daily_weather ORDER BY location, day"
)


def expected_daily(
    path: Path, skip: Collection[str] = ()
) -> dict[tuple[str, str], dict[str, Decimal | int]]:
    """Per (location, day): count, sums, min and max of the CSV's rows, but the lines in
    `skip` (bad rows the batch never sees)."""
    days: dict[tuple[str, str], dict[str, Decimal | int]] = {}
    with path.open(newline="") as fh:
        reader = csv.reader(fh)
        next(reader)
        for row in reader:
            if ",".join(row) in skip:
                continue
            location, stamp, temp, hum, prec, wind = row
            d = days.setdefault(
                (location, stamp[:10]),
                {
                    "n": 0,
                    "t": Decimal(0),
                    "h": Decimal(0),
                    "p": Decimal(0),
                    "w": Decimal(0),
                    "tmin": Decimal("Infinity"),
                    "tmax": Decimal("-Infinity"),
                },
            )
            d["n"] = int(d["n"]) + 1
            for key, text in (("t", temp), ("h", hum), ("p", prec), ("w", wind)):
                d[key] = Decimal(d[key]) + Decimal(text)
            d["tmin"] = min(Decimal(d["tmin"]), Decimal(temp))
            d["tmax"] = max(Decimal(d["tmax"]), Decimal(temp))
    return days


def assert_daily_matches(
    got: list[tuple[object, ...]], path: Path, skip: Collection[str] = ()
) -> None:
    """`got` (the rows of DAILY) equals the computation from `path`."""
    expected = expected_daily(path, skip)
    assert len(got) == len(expected)
    for location, day, n, t, h, w, p, tmin, tmax in got:
        e = expected[(str(location), str(day))]
        assert n == e["n"]
        for value, total in ((t, e["t"]), (h, e["h"]), (w, e["w"])):
            assert value == pytest.approx(float(Decimal(total) / int(e["n"])), rel=1e-12)
        assert p == pytest.approx(float(e["p"]), rel=1e-12)
        assert (tmin, tmax) == (float(e["tmin"]), float(e["tmax"]))
