"""Rows the dashboard cannot turn into Python values (a day before year 1 or after 9999, a sum too
large for a float) make the pages say so and show the rest; nothing shows a traceback. The rows
are written into the real PostgreSQL through the batch's own login, next to what the real batch
stored."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import timedelta

import pytest

from tests.conftest import free_port
from tests.integration.test_dashboard_pages import (
    _database,
    _drop,
    kpi_sql,
    metrics,
    page,
    rerun,
    show,
    shown,
)
from tests.weather_rawzone import FIRST_DAY, write
from weatherpipe.batch.runner import run_once
from weatherpipe.db.connection import connect
from weatherpipe.db.roles import writer_url
from weatherpipe.settings import Settings, load_settings

pytestmark = pytest.mark.integration

TOPIC = "weather_data_raw"
CITIES = ("Chicago", "Dallas")
DAYS = 3
# (city, year, month, day, temperature sum); a negative year is BC in make_date.
ODD_ROWS = (
    ("Atlantis", -1, 1, 1, "10"),  # stored as 0001-01-01 BC (from a year 0000 timestamp)
    ("Atlantis", 12000, 6, 1, "10"),
    ("Overflow", FIRST_DAY.year, FIRST_DAY.month, FIRST_DAY.day, "1e400"),
)


@pytest.fixture(scope="module")
def odd(
    platform_settings: Settings, pg_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Settings]:
    name = f"unshowable_{free_port()}"
    raw = tmp_path_factory.mktemp("raw")
    settings = load_settings(
        **{
            **platform_settings.model_dump(),
            "database_url": _database(pg_url, name),
            "raw_dir": raw,
            "kafka_topic": TOPIC,
        }
    )
    write(raw, TOPIC, cities=CITIES, days=DAYS, per_day=2)
    run_once(settings)
    with connect(writer_url(settings)) as conn:
        for city, year, month, day, temperature in ODD_ROWS:
            conn.execute(
                "INSERT INTO daily_aggregate (location, day, observations, temperature_sum,"
                " humidity_sum, wind_speed_sum, precipitation_sum, temperature_min,"
                " temperature_max, run_id)"
                " VALUES (%s, make_date(%s, %s, %s), 1, %s::numeric, 50, 5, 1, 10, 10,"
                " (SELECT max(id) FROM batch_run))",
                (city, year, month, day, temperature),
            )
    yield settings
    _drop(pg_url, name)


def no_traceback(at: object) -> None:
    """Nothing on the page looks like a traceback."""
    texts = [e.value for kind in ("error", "warning", "info", "text") for e in getattr(at, kind)]
    assert all("Traceback" not in t and 'File "' not in t for t in texts), texts


def test_days_outside_pythons_range_are_counted_and_left_out(
    odd: Settings, use: Callable[[Settings], None]
) -> None:
    use(odd)
    at = page("weather")
    assert [w.value.split(",")[0] for w in at.warning] == [
        "2 daily rows have a day outside 0001-01-01 to 9999-12-31"
    ]
    cities = at.multiselect(key="cities")
    assert cities.options == sorted([*CITIES, "Overflow"])
    last = FIRST_DAY + timedelta(days=DAYS - 1)
    assert (at.date_input(key="start").value, at.date_input(key="end").value) == (FIRST_DAY, last)
    no_traceback(at)

    # "Overflow"'s sum does not fit a float: the KPIs of a selection with it cannot be shown.
    assert [e.value.split(".")[0] for e in at.error] == [
        "PostgreSQL holds values this section cannot show"
    ]
    assert any("out of range" in t.value for t in at.text)
    assert not at.metric

    cities.set_value(list(CITIES))
    rerun(at)
    assert not at.error
    expected = kpi_sql(odd, list(CITIES), FIRST_DAY, last)
    tiles = metrics(at)
    assert {k: tiles[k] for k in shown(expected)} == shown(expected)
    at.segmented_control(key="view").set_value("Table")
    rerun(at)
    assert sorted(at.dataframe[0].value["location"]) == list(CITIES)
    no_traceback(at)


def test_pipeline_page_counts_every_stored_row(
    odd: Settings, use: Callable[[Settings], None]
) -> None:
    use(odd)
    at = page("pipeline")
    # The odd rows were written around the batch: one observation each that no raw line
    # accounts for, which is what the reconciliation line says, in red.
    assert [e.value.startswith("CSV rows") for e in at.error] == [True]
    no_traceback(at)
    assert metrics(show(at, "Runs"))["Daily rows (city-days)"] == str(
        len(CITIES) * DAYS + len(ODD_ROWS)
    )
    last = show(at, "Reconciliation").dataframe[0].value.iloc[-1]
    assert (last["check"], last["note"]) == (
        "✗ disagree",
        f"{-len(ODD_ROWS)} lines are neither quarantined, nor observations, nor duplicates.",
    )
    no_traceback(at)
