"""Each dashboard page run by Streamlit's AppTest against the real local PostgreSQL (filled by
the real batch over a generated raw zone) and the real local Kafka."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from psycopg import sql
from streamlit.testing.v1 import AppTest

from tests import kafka_topics
from tests.conftest import changed, free_port
from tests.weather_rawzone import FIRST_DAY, RawZone, write
from weatherpipe.batch.runner import run_once
from weatherpipe.db.connection import connect
from weatherpipe.db.roles import reader_url
from weatherpipe.db.setup import prepare_database
from weatherpipe.settings import Settings, load_settings

pytestmark = pytest.mark.integration

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


def script(name: str) -> str:
    """The page `name` (a module of the dashboard's views) run as the dashboard's router runs
    it."""
    return (
        "from weatherpipe.dashboard import ui\n"
        f"from weatherpipe.dashboard.views import {name}\n"
        f"ui.page({name}.render)\n"
    )


def page(name: str) -> AppTest:
    at = AppTest.from_string(script(name), default_timeout=60)
    at.run()
    assert not at.exception, [e.message for e in at.exception]
    return at


def rerun(at: AppTest) -> AppTest:
    at.run()
    assert not at.exception, [e.message for e in at.exception]
    return at


def show(at: AppTest, view: str) -> AppTest:
    """Switch the page to `view` (one is shown at a time) and run it again."""
    at.segmented_control(key="view").set_value(view)
    return rerun(at)


def metrics(at: AppTest) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


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
        "Precipitation per reading": f"{values['precipitation'] / values['observations']:,.2f} mm",
    }


def test_weather_kpis_match_sql_and_the_events_and_follow_the_filters(
    filled: tuple[Settings, RawZone], use: Callable[[Settings], None]
) -> None:
    settings, zone = filled
    use(settings)
    at = page("weather")
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
    assert at.get("vega_lite_chart") and not at.dataframe, "the chart first, the table on request"
    at.segmented_control(key="view").set_value("Table")
    rerun(at)
    assert len(at.dataframe[0].value) == len(CITIES)
    assert url(at, "view") == ["Table"]

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
    assert download.proto.label == "Download the selection as CSV (daily)"
    # The filters are in the URL, so the view can be bookmarked.
    assert url(at, "city") == chosen
    assert url(at, "from") == [start.isoformat()]
    assert url(at, "to") == [], "the last day is the default"

    at.segmented_control(key="view").set_value("Chart")
    rerun(at)
    at.segmented_control(key="measure").set_value("Wind speed")
    rerun(at)
    assert any("Average wind speed (km/h)" in c.proto.spec for c in at.get("vega_lite_chart"))
    assert url(at, "measure") == ["Wind speed"]


def url(at: AppTest, key: str) -> list[str]:
    """The values of `key` in the page's URL."""
    value = at.query_params.get(key, [])
    return [value] if isinstance(value, str) else list(value)


def chart(at: AppTest) -> dict[str, Any]:
    """The spec of the page's first chart (the measure per city)."""
    spec: dict[str, Any] = json.loads(at.get("vega_lite_chart")[0].proto.spec)
    return spec


def chart_points(at: AppTest) -> list[dict[str, Any]]:
    """The rows the page's first chart draws (sent to the browser as Arrow)."""
    raw = at.get("vega_lite_chart")[0].proto.data.data
    rows: list[dict[str, Any]] = pa.ipc.open_stream(raw).read_all().to_pylist()
    return rows


def colour_of(spec: dict[str, Any]) -> dict[str, str]:
    """City -> colour as the chart's colour scale assigns it."""
    layers = spec.get("layer", [spec])
    scale = next(
        layer["encoding"]["color"]["scale"] for layer in layers if "color" in layer["encoding"]
    )
    return dict(zip(scale["domain"], scale["range"], strict=True))


def test_weather_opens_the_view_in_its_url_with_changes_against_the_days_before(
    filled: tuple[Settings, RawZone], use: Callable[[Settings], None]
) -> None:
    settings, _ = filled
    use(settings)
    start, end = FIRST_DAY + timedelta(days=3), FIRST_DAY + timedelta(days=DAYS - 1)
    at = AppTest.from_string(script("weather"), default_timeout=60)
    at.query_params.update(
        {
            "city": ["Phoenix", "Chicago", "Atlantis"],
            "from": start.isoformat(),
            "measure": "Humidity",
        }
    )
    rerun(at)
    assert at.multiselect(key="cities").value == ["Phoenix", "Chicago"], "unknown cities dropped"
    assert (at.date_input(key="start").value, at.date_input(key="end").value) == (start, end)
    assert at.segmented_control(key="measure").value == "Humidity"
    now = kpi_sql(settings, ["Chicago", "Phoenix"], start, end)
    before = kpi_sql(settings, ["Chicago", "Phoenix"], FIRST_DAY, start - timedelta(days=1))
    tiles = {m.label: (m.value, m.proto.delta) for m in at.metric}
    assert tiles["Average temperature"] == (
        shown(now)["Average temperature"],
        f"{now['temperature'] - before['temperature']:+,.1f} °C",
    )
    rain = now["precipitation"] / now["observations"]
    rain_before = before["precipitation"] / before["observations"]
    assert tiles["Precipitation per reading"][1] == f"{rain - rain_before:+,.2f} mm"
    assert f"Changes against the 3 days before ({FIRST_DAY} to {start - timedelta(days=1)})." in [
        c.value for c in at.caption
    ]
    # A period reaching back before the first day has nothing whole to compare with.
    at.date_input(key="start").set_value(FIRST_DAY + timedelta(days=2))
    rerun(at)
    assert all(not m.proto.delta for m in at.metric)


def test_weather_colours_stay_with_their_city_and_weeks_add_up(
    filled: tuple[Settings, RawZone], use: Callable[[Settings], None]
) -> None:
    settings, _ = filled
    use(settings)
    at = page("weather")
    everyone = colour_of(chart(at))
    assert sorted(everyone) == sorted(CITIES)
    assert len(set(everyone.values())) == len(CITIES), "every city has its own colour"
    at.multiselect(key="cities").set_value(["Phoenix", "San Diego"])
    rerun(at)
    spec = chart(at)
    assert colour_of(spec) == {c: everyone[c] for c in ("Phoenix", "San Diego")}
    # Two cities: the temperature chart shows the band from the lowest to the highest reading.
    assert [layer["mark"]["type"] for layer in spec["layer"]] == ["area", "line"]

    at.segmented_control(key="grain").set_value("Weekly")
    rerun(at)
    assert url(at, "grain") == ["Weekly"]
    # The generated days are Monday to Saturday of one week: one weekly point per city, the
    # weighted mean over all its observations of that week, as SQL over the stored sums says.
    points = chart_points(at)
    assert sorted(p["city"] for p in points) == ["Phoenix", "San Diego"]
    last = FIRST_DAY + timedelta(days=DAYS - 1)
    for point in points:
        assert point["period"] == FIRST_DAY.isoformat()
        expected = kpi_sql(settings, [point["city"]], FIRST_DAY, last)["temperature"]
        assert point["value"] == pytest.approx(expected, rel=1e-12)


def test_weather_draws_the_map_when_asked_with_each_citys_figures_and_colour(
    filled: tuple[Settings, RawZone], use: Callable[[Settings], None]
) -> None:
    use(filled[0])
    at = page("weather")
    assert len(at.get("vega_lite_chart")) == 1, "only the measure's chart on first load"
    colours = colour_of(chart(at))
    at.segmented_control(key="view").set_value("Table")
    rerun(at)
    comparison = at.dataframe[0].value
    at.segmented_control(key="view").set_value("Map")
    rerun(at)
    charts = at.get("vega_lite_chart")
    assert len(charts) == 1
    spec = json.loads(charts[0].proto.spec)
    assert spec["projection"] == {"type": "albersUsa"}
    points = pa.ipc.open_stream(charts[0].proto.data.data).read_all().to_pylist()
    observations = dict(zip(comparison["location"], comparison["observations"], strict=True))
    assert {p["city"]: p["observations"] for p in points} == observations
    assert sorted(observations) == sorted(CITIES)
    dots = next(layer for layer in spec["layer"] if layer["mark"]["type"] == "circle")
    assert colour_of({"layer": [dots]}) == colours


def test_weather_reversed_days_and_no_city_explain_themselves(
    filled: tuple[Settings, RawZone], use: Callable[[Settings], None]
) -> None:
    use(filled[0])
    at = page("weather")
    at.date_input(key="start").set_value(FIRST_DAY + timedelta(days=3))
    at.date_input(key="end").set_value(FIRST_DAY + timedelta(days=1))
    rerun(at)
    assert [w.value for w in at.warning] == ["The first day must not be after the last day."]
    assert not at.metric
    at.date_input(key="end").set_value(FIRST_DAY + timedelta(days=4))
    at.multiselect(key="cities").set_value([])
    rerun(at)
    assert [i.value for i in at.info] == ["Pick at least one city under the filters."]


def test_empty_database_shows_the_no_data_state(
    platform_settings: Settings,
    fresh_database: str,
    tmp_path: Path,
    use: Callable[[Settings], None],
) -> None:
    settings = changed(platform_settings, database_url=fresh_database, raw_dir=tmp_path)
    prepare_database(settings)
    use(settings)
    for name in ("weather", "pipeline"):
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
    down = {
        **filled[0].model_dump(),
        "database_url": f"postgresql://nobody:secret@127.0.0.1:{free_port()}/weather_data",
        "dashboard_timeout": 1,
    }
    use(load_settings(**{**down, "kafka_topic": topic}))
    for name in ("weather", "pipeline"):
        at = page(name)
        assert any("Cannot read PostgreSQL" in e.value for e in at.error), name
        assert all("secret" not in e.value for e in at.error), "the password must not be shown"
    at = show(page("kafka"), "Topics")
    assert not at.error
    assert topic in list(at.dataframe[0].value["topic"])

    # The raw zone is still counted; what the batch made of it is unknown, not zero.
    use(load_settings(**down))
    at = page("pipeline")
    line = next(m.value for m in [*at.warning, *at.error] if m.value.startswith("CSV rows"))
    assert "→ processed unknown → quarantined unknown + observations unknown" in line
    days = show(at, "Raw zone").dataframe[0].value
    assert list(days["processed"]) == ["unknown"] * DAYS
    steps = show(at, "Reconciliation").dataframe[0].value
    assert list(steps["check"])[2:] == ["? unknown", "? unknown"]


def test_pipeline_shows_runs_raw_zone_lag_and_quarantine(
    filled: tuple[Settings, RawZone],
    use: Callable[[Settings], None],
    unique_name: Callable[[str], str],
) -> None:
    base, zone = filled
    topic, group = unique_name("pipeline"), unique_name("group")
    kafka_topics.create(base.kafka_bootstrap_servers, topic, [b'{"n": %d}' % i for i in range(10)])
    kafka_topics.commit(base.kafka_bootstrap_servers, topic, group, {0: 3})
    # A later run finds nothing new: the tiles keep showing the run that did the work.
    run_once(base)
    settings = changed(base, kafka_topic=topic, kafka_group_id=group)
    use(settings)
    at = page("pipeline")
    assert not at.error or all(e.value.startswith("CSV rows") for e in at.error)
    assert any(t.value.startswith("Last run that did work: #1 ") for t in at.text)
    assert "1 later run found no new raw files." in [c.value for c in at.caption]
    tiles = metrics(at)
    assert tiles["Last run: files"] == str(zone.files)
    assert tiles["Last run: rejected"] == str(sum(zone.rejected.values()))
    assert not at.dataframe, "the last run alone on first load, the tables one click away"
    tiles = metrics(show(at, "Runs"))
    assert url(at, "view") == ["Runs"]
    assert tiles["Records rejected"] == str(sum(zone.rejected.values()))
    assert tiles["Observations stored"] == f"{len(zone.events):,}"
    assert tiles["Daily rows (city-days)"] == str(len(CITIES) * DAYS)
    runs = at.dataframe[0].value
    assert list(runs.columns)[:8] == [
        "id",
        "started_at",
        "status",
        "files",
        "lines",
        "rejected",
        "duplicates",
        "rows_written",
    ]
    assert list(runs["files"]) == [0, zone.files]
    # The raw zone of this topic is empty; the batch's files live under TOPIC.
    assert any("No finished raw files" in i.value for i in show(at, "Raw zone").info)
    lag = show(at, "Consumer lag").dataframe[0].value
    assert list(lag["partition"]) == [0, 1]
    assert list(lag["end"]) == [5, 5]
    assert list(lag["lag"]) == [2, 5]
    assert metrics(at)["Total lag (records)"] == "7"
    reasons = show(at, "Quarantine").dataframe[0].value
    assert dict(zip(reasons["reason"], reasons["records"], strict=True)) == zone.rejected
    at.selectbox(key="reason").set_value("invalid_json")
    rerun(at)
    records = at.dataframe[1].value
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
    at = page("pipeline")
    # Kafka is down: its counts are unknown, the batch's side still agrees.
    lines = len(zone.events) + sum(zone.rejected.values())
    line = next(w.value for w in at.warning if w.value.startswith("CSV rows"))
    assert line.startswith("CSV rows unknown → topic records unknown + dead letters unknown")
    assert f"raw-zone lines {lines:,} → processed {lines:,}" in line
    checks = show(at, "Reconciliation").dataframe[0].value["check"]
    assert list(checks) == ["? unknown", "? unknown", "✓ agree", "✓ agree"]
    lag = show(at, "Consumer lag")
    assert any("did not answer" in e.value for e in lag.error), "the lag section reports Kafka"
    tiles = metrics(show(at, "Raw zone"))
    assert tiles["Days"] == str(DAYS)
    assert tiles["Files"] == str(zone.files)
    assert tiles["Lines"] == f"{lines:,}"
    days = at.dataframe[0].value
    assert sorted(days["day"]) == [str(FIRST_DAY + timedelta(days=d)) for d in range(DAYS)]
    assert sum(days["files"]) == zone.files
    assert list(days["processed"]) == [f"{n:,}" for n in days["files"]]
    at = page("kafka")
    assert any("did not answer" in e.value for e in at.error)
    at = page("weather")
    assert not at.error and at.metric, "the weather page needs no broker"


def shown_whole(at: AppTest, row: int = 0) -> dict[str, Any]:
    """The record the Kafka page shows whole (its JSON view) once `row` of its messages is
    picked, as a click on the row's box picks it."""
    # The table's element id ends in its key (each listing has its own).
    key = at.dataframe[0].proto.id.split("-", 2)[2]
    at.session_state[key] = {"selection": {"rows": [row], "columns": [], "cells": []}}
    rerun(at)
    whole: dict[str, Any] = json.loads(at.json[0].value)
    return whole


def test_kafka_page_reads_newest_first_searches_seeks_and_describes(
    filled: tuple[Settings, RawZone],
    use: Callable[[Settings], None],
    unique_name: Callable[[str], str],
) -> None:
    base, _ = filled
    topic, group = unique_name("kafka_page"), unique_name("reader")
    values = [json.dumps({"location": "Dallas", "n": i}).encode() for i in range(30)]
    values[28] = b"\xff not json"
    servers = base.kafka_bootstrap_servers
    kafka_topics.create(servers, topic, values, partitions=2)
    letters = [
        {"source": "w.csv", "line": n, "raw": "x", "reason": reason, "field": field, "detail": "d"}
        for n, (reason, field) in enumerate(
            [("out_of_range", "humidity_pct"), ("not_numeric", "temperature_c")] * 2
            + [("missing_field", None)],
            start=2,
        )
    ]
    kafka_topics.create(
        servers, topic + ".dlq", [json.dumps(d).encode() for d in letters], partitions=1
    )
    kafka_topics.commit(servers, topic, group, {0: 5, 1: 7})
    use(changed(base, kafka_topic=topic))
    at = page("kafka")
    assert not at.error
    assert at.selectbox(key="topic").value == topic
    # First load: every record of both partitions, newest first; a record is shown whole once
    # its row is picked.
    assert len(at.dataframe) == 1, "the messages alone on first load"
    messages = at.dataframe[0].value
    assert sorted(zip(messages["partition"], messages["offset"], strict=True)) == sorted(
        (i % 2, i // 2) for i in range(30)
    )
    stamps = list(messages["timestamp"])
    assert stamps == sorted(stamps, reverse=True)
    assert not at.json, "no record is shown whole before one is picked"
    assert any(c.value.startswith("Pick a row") for c in at.caption)
    first = shown_whole(at)
    assert (first["topic"], first["partition"], first["offset"]) == (
        topic,
        messages["partition"][0],
        messages["offset"][0],
    )

    at.selectbox(key="partition").set_value(0)
    at.number_input(key="count").set_value(5)
    rerun(at)
    messages = at.dataframe[0].value
    # Partition 0 holds the even-numbered values at offsets 0..14; newest first.
    assert list(messages["offset"]) == [14, 13, 12, 11, 10]
    assert list(messages["key"]) == [f"k{2 * o}" for o in (14, 13, 12, 11, 10)]
    assert list(messages["format"]) == ["text", "JSON", "JSON", "JSON", "JSON"]
    assert json.loads(messages["value"][1]) == {"location": "Dallas", "n": 26}
    assert shown_whole(at)["value"] == "\ufffd not json"
    assert shown_whole(at, 1)["value"] == {"location": "Dallas", "n": 26}

    at.selectbox(key="partition").set_value(None)
    at.text_input(key="search").set_value("K27")
    rerun(at)
    assert "1 of the newest 30 records hold this text" in at.caption[0].value
    whole = shown_whole(at)
    assert (whole["partition"], whole["offset"], whole["key"]) == (1, 13, "k27")
    assert whole["value"] == {"location": "Dallas", "n": 27}

    at.text_input(key="search").set_value("")
    at.selectbox(key="partition").set_value(1)
    at.segmented_control(key="show").set_value("From offset")
    rerun(at)
    at.number_input(key="offset").set_value(3)
    rerun(at)
    assert list(at.dataframe[0].value["offset"]) == [3, 4, 5, 6, 7]
    at.segmented_control(key="show").set_value("From time")
    rerun(at)
    # From today 00:00 UTC (the default): the records written a moment ago, oldest first.
    assert list(at.dataframe[0].value["offset"]) == [0, 1, 2, 3, 4]
    at.date_input(key="seek_day").set_value(datetime.now(UTC).date() + timedelta(days=1))
    rerun(at)
    assert "No records here." in [i.value for i in at.info]

    show(at, "Consumer groups")
    assert url(at, "view") == ["Consumer groups"]
    at.selectbox(key="group").set_value(group)
    rerun(at)
    lag = at.dataframe[1].value
    assert list(zip(lag["topic"], lag["partition"], lag["lag"], strict=True)) == [
        (topic, 0, 10),
        (topic, 1, 8),
    ]
    assert metrics(at)["Total lag (records)"] == "18"

    show(at, "Topics")
    topics = at.dataframe[0].value
    row = topics[topics["topic"] == topic]
    assert list(row["partitions"]) == [2] and list(row["records"]) == [30]
    tiles = metrics(at)
    assert (tiles["Partitions"], tiles["Records kept"]) == ("2", "30")
    assert tiles["Size on disk"].endswith(("B", "KiB")), "the test broker's folders are local"
    kept = at.dataframe[2].value
    assert dict(zip(kept["name"], kept["value"], strict=True))["retention.ms"] == "7 days"

    show(at, "Cluster")
    tiles = metrics(at)
    assert tiles["Brokers"] == "1"
    assert tiles["Quorum leader (epoch)"].startswith("1 (")
    quorum = at.dataframe[1].value
    assert dict(zip(quorum["name"], quorum["value"], strict=True))["process.roles"] == (
        "broker,controller"
    )

    show(at, "Dead letters")
    assert metrics(at)["Dead letters kept"] == "5"
    reasons = at.dataframe[0].value
    assert dict(zip(reasons["reason"], reasons["records"], strict=True)) == {
        "out_of_range": 2,
        "not_numeric": 2,
        "missing_field": 1,
    }
    assert list(at.dataframe[1].value["line"]) == [6, 5, 4, 3, 2]
