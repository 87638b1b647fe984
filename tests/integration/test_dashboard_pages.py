"""Each dashboard page run by Streamlit's AppTest against the real local PostgreSQL (filled by
the real batch over a generated raw zone) and the real local Kafka."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import date, timedelta
from pathlib import Path

import pytest
from psycopg import sql
from streamlit.testing.v1 import AppTest

from tests import kafka_topics
from tests.conftest import free_port
from tests.weather_rawzone import FIRST_DAY, RawZone, write
from weatherpipe.batch.runner import run_once
from weatherpipe.db.connection import connect
from weatherpipe.db.roles import reader_url
from weatherpipe.db.setup import prepare_database
from weatherpipe.settings import Settings, load_settings

pytestmark = pytest.mark.integration

PAGES = Path(__file__).resolve().parents[2] / "src" / "weatherpipe" / "dashboard" / "pages"
TOPIC = "weather_data_raw"
DAYS = 6
CITIES = ("Chicago", "Dallas", "San Diego", "Phoenix")


def _database(pg_url: str, name: str) -> str:
    with connect(pg_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return f"{pg_url.rpartition('/')[0]}/{name}"


def _drop(pg_url: str, name: str) -> None:
    with connect(pg_url, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


@pytest.fixture(scope="module")
def filled(
    platform_settings: Settings, pg_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Settings, RawZone]]:
    """Settings of a database the real batch filled from a generated raw zone, and that zone."""
    name = f"dashboard_{free_port()}"
    raw = tmp_path_factory.mktemp("raw")
    settings = load_settings(
        **{
            **platform_settings.model_dump(),
            "database_url": _database(pg_url, name),
            "raw_dir": raw,
            "kafka_topic": TOPIC,
        }
    )
    zone = write(raw, TOPIC, cities=CITIES, days=DAYS, per_day=3)
    run_once(settings)
    yield settings, zone
    _drop(pg_url, name)


def page(name: str) -> AppTest:
    at = AppTest.from_file(str(PAGES / name), default_timeout=60)
    at.run()
    assert not at.exception, [e.message for e in at.exception]
    return at


def rerun(at: AppTest) -> AppTest:
    at.run()
    assert not at.exception, [e.message for e in at.exception]
    return at


def metrics(at: AppTest) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def rain_text(mm: float) -> str:
    """Totals of 10,000 mm and more are shown without decimals (they must fit the tile)."""
    return f"{mm:,.1f} mm" if mm < 10_000 else f"{mm:,.0f} mm"


def kpi_sql(settings: Settings, cities: list[str], start: date, end: date) -> dict[str, float]:
    """The KPIs as one independent SQL statement over the stored sums, as the reader."""
    with connect(reader_url(settings)) as conn:
        row = conn.execute(
            "SELECT sum(temperature_sum) / sum(observations),"
            " sum(humidity_sum) / sum(observations), sum(wind_speed_sum) / sum(observations),"
            " sum(precipitation_sum), sum(observations)"
            " FROM daily_aggregate WHERE location = ANY(%s) AND day >= %s AND day <= %s",
            (cities, start, end),
        ).fetchone()
    assert row is not None
    keys = ("temperature", "humidity", "wind", "precipitation", "observations")
    return {k: float(v) for k, v in zip(keys, row, strict=True)}


def shown(values: dict[str, float]) -> dict[str, str]:
    return {
        "Average temperature": f"{values['temperature']:,.1f} °C",
        "Average humidity": f"{values['humidity']:,.1f} %",
        "Average wind speed": f"{values['wind']:,.1f} km/h",
        "Total precipitation": rain_text(values["precipitation"]),
    }


def test_weather_kpis_match_sql_and_the_events_and_follow_the_filters(
    filled: tuple[Settings, RawZone], use: Callable[[Settings], None]
) -> None:
    settings, zone = filled
    use(settings)
    at = page("weather.py")
    last = FIRST_DAY + timedelta(days=DAYS - 1)
    assert at.multiselect(key="cities").value == sorted(CITIES)
    assert (at.date_input(key="start").value, at.date_input(key="end").value) == (FIRST_DAY, last)
    everything = kpi_sql(settings, list(CITIES), FIRST_DAY, last)
    tiles = metrics(at)
    assert {k: tiles[k] for k in shown(everything)} == shown(everything)
    # The same figures straight from the generated events, without the database.
    assert shown(zone.expected(set(CITIES), FIRST_DAY, last)) == shown(everything)
    assert f"From {int(everything['observations']):,} observations on {DAYS} days." in [
        c.value for c in at.caption
    ]
    assert len(at.dataframe[0].value) == len(CITIES)

    chosen, start, end = ["Dallas", "Phoenix"], FIRST_DAY + timedelta(days=2), last
    at.multiselect(key="cities").set_value(chosen)
    at.date_input(key="start").set_value(start)
    rerun(at)
    narrowed = kpi_sql(settings, chosen, start, end)
    assert narrowed != everything
    tiles = metrics(at)
    assert {k: tiles[k] for k in shown(narrowed)} == shown(narrowed)
    assert shown(zone.expected(set(chosen), start, end)) == shown(narrowed)
    comparison = at.dataframe[0].value
    assert sorted(comparison["location"]) == chosen
    assert list(comparison["days"]) == [DAYS - 2, DAYS - 2]
    download = at.get("download_button")[0]
    assert download.proto.label == "Download the selection as CSV"

    at.segmented_control(key="measure").set_value("Wind speed")
    rerun(at)
    assert any("Average wind speed (km/h)" in c.proto.spec for c in at.get("vega_lite_chart"))


def test_weather_reversed_days_and_no_city_explain_themselves(
    filled: tuple[Settings, RawZone], use: Callable[[Settings], None]
) -> None:
    use(filled[0])
    at = page("weather.py")
    at.date_input(key="start").set_value(FIRST_DAY + timedelta(days=3))
    at.date_input(key="end").set_value(FIRST_DAY + timedelta(days=1))
    rerun(at)
    assert [w.value for w in at.warning] == ["The first day must not be after the last day."]
    assert not at.metric
    at.date_input(key="end").set_value(FIRST_DAY + timedelta(days=4))
    at.multiselect(key="cities").set_value([])
    rerun(at)
    assert [i.value for i in at.info] == ["Pick at least one city in the sidebar."]


def test_empty_database_shows_the_no_data_state(
    platform_settings: Settings,
    fresh_database: str,
    tmp_path: Path,
    use: Callable[[Settings], None],
) -> None:
    settings = load_settings(
        **{**platform_settings.model_dump(), "database_url": fresh_database, "raw_dir": tmp_path}
    )
    prepare_database(settings)
    use(settings)
    for name in ("weather.py", "pipeline.py"):
        at = page(name)
        assert any("No data yet" in i.value and "make run" in i.value for i in at.info), name
        assert not at.error, name


def test_unreachable_database_is_reported_and_the_kafka_page_still_works(
    filled: tuple[Settings, RawZone],
    use: Callable[[Settings], None],
    unique_name: Callable[[str], str],
) -> None:
    topic = unique_name("db_down")
    kafka_topics.create(filled[0].kafka_bootstrap_servers, topic, [b"{}"])
    settings = load_settings(
        **{
            **filled[0].model_dump(),
            "database_url": f"postgresql://nobody:secret@127.0.0.1:{free_port()}/weather_data",
            "dashboard_timeout": 1,
            "kafka_topic": topic,
        }
    )
    use(settings)
    for name in ("weather.py", "pipeline.py"):
        at = page(name)
        assert any("Cannot read PostgreSQL" in e.value for e in at.error), name
        assert all("secret" not in e.value for e in at.error), "the password must not be shown"
    at = page("kafka.py")
    assert not at.error
    assert topic in list(at.dataframe[0].value["topic"])


def test_pipeline_shows_runs_raw_zone_lag_and_quarantine(
    filled: tuple[Settings, RawZone],
    use: Callable[[Settings], None],
    unique_name: Callable[[str], str],
) -> None:
    base, zone = filled
    topic, group = unique_name("pipeline"), unique_name("group")
    kafka_topics.create(base.kafka_bootstrap_servers, topic, [b'{"n": %d}' % i for i in range(10)])
    kafka_topics.commit(base.kafka_bootstrap_servers, topic, group, {0: 3})
    settings = load_settings(**{**base.model_dump(), "kafka_topic": topic, "kafka_group_id": group})
    use(settings)
    at = page("pipeline.py")
    assert not at.error
    tiles = metrics(at)
    assert tiles["Last run: files"] == str(zone.files)
    assert tiles["Last run: rejected"] == str(sum(zone.rejected.values()))
    assert tiles["Records rejected"] == str(sum(zone.rejected.values()))
    assert tiles["Observations stored"] == f"{len(zone.events):,}"
    assert tiles["Daily rows (city-days)"] == str(len(CITIES) * DAYS)
    # The raw zone of this topic is empty; the batch's files live under TOPIC.
    assert any("No finished raw files" in i.value for i in at.info)
    lag = at.dataframe[1].value
    assert list(lag["partition"]) == [0, 1]
    assert list(lag["end"]) == [5, 5]
    assert list(lag["lag"]) == [2, 5]
    assert tiles["Total lag (records)"] == "7"
    reasons = at.dataframe[2].value
    assert dict(zip(reasons["reason"], reasons["records"], strict=True)) == zone.rejected
    at.selectbox(key="reason").set_value("invalid_json")
    rerun(at)
    records = at.dataframe[3].value
    assert list(records["reason"]) == ["invalid_json"]
    assert "{not json" in records["raw"][0]


def test_pipeline_counts_raw_files_per_day_and_survives_a_dead_broker(
    filled: tuple[Settings, RawZone], use: Callable[[Settings], None]
) -> None:
    base, zone = filled
    settings = load_settings(
        **{
            **base.model_dump(),
            "kafka_bootstrap_servers": f"127.0.0.1:{free_port()}",
            "dashboard_timeout": 1,
        }
    )
    use(settings)
    at = page("pipeline.py")
    assert any("did not answer" in e.value for e in at.error), "the lag section reports Kafka"
    tiles = metrics(at)
    assert tiles["Days"] == str(DAYS)
    assert tiles["Files"] == str(zone.files)
    days = at.dataframe[1].value
    assert sorted(days["day"]) == [str(FIRST_DAY + timedelta(days=d)) for d in range(DAYS)]
    assert sum(days["files"]) == zone.files
    assert list(days["processed"]) == list(days["files"])
    at = page("kafka.py")
    assert any("did not answer" in e.value for e in at.error)
    at = page("weather.py")
    assert not at.error and at.metric, "the weather page needs no broker"


def test_kafka_page_lists_topics_and_decodes_the_last_messages(
    filled: tuple[Settings, RawZone],
    use: Callable[[Settings], None],
    unique_name: Callable[[str], str],
) -> None:
    base, _ = filled
    topic = unique_name("kafka_page")
    values = [json.dumps({"location": "Dallas", "n": i}).encode() for i in range(30)]
    values[28] = b"\xff not json"
    kafka_topics.create(base.kafka_bootstrap_servers, topic, values, partitions=2)
    use(load_settings(**{**base.model_dump(), "kafka_topic": topic}))
    at = page("kafka.py")
    assert not at.error
    topics = at.dataframe[0].value
    row = topics[topics["topic"] == topic]
    assert list(row["partitions"]) == [2] and list(row["records"]) == [30]
    assert at.selectbox(key="topic").value == topic
    at.selectbox(key="partition").set_value(0)
    at.slider(key="count").set_value(5)
    rerun(at)
    messages = at.dataframe[1].value
    # Partition 0 holds the even-numbered values at offsets 0..14; newest first.
    assert list(messages["offset"]) == [14, 13, 12, 11, 10]
    assert list(messages["key"]) == [f"k{2 * o}" for o in (14, 13, 12, 11, 10)]
    assert list(messages["format"]) == ["text", "JSON", "JSON", "JSON", "JSON"]
    assert json.loads(messages["value"][1]) == {"location": "Dallas", "n": 26}
