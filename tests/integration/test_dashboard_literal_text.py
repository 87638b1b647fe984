"""Values from the data reach the browser as text: city names, topic and group names, keys,
message values, quarantined lines and batch errors full of Markdown, LaTeX, Streamlit colours,
links and HTML are shown character for character, and never inside an element Streamlit reads
as Markdown. Real batch, real PostgreSQL, real Kafka; pages run by AppTest."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from confluent_kafka import Producer
from streamlit.testing.v1 import AppTest

from tests import kafka_topics
from tests.conftest import changed, free_port
from tests.integration.test_dashboard_pages import _database, _drop, page, show, shown_whole
from tests.rawzone_files import Record, Undecodable, write_file
from tests.weather_rawzone import write
from weatherpipe.batch.runner import run_once
from weatherpipe.db.connection import connect
from weatherpipe.db.roles import writer_url
from weatherpipe.settings import Settings, load_settings

pytestmark = pytest.mark.integration

PAYLOADS = ("**bold**", "$x^2$", ":red[x]", "[a](javascript:alert(1))", "<b>html</b>")
TOPIC = "weather_data_raw"
# Elements whose text Streamlit renders as Markdown.
MARKDOWN_TYPES = {
    "markdown",
    "caption",
    "latex",
    "title",
    "header",
    "subheader",
    "info",
    "warning",
    "error",
    "success",
    "toast",
}


def nodes(node: Any) -> Iterator[Any]:
    yield node
    for child in getattr(node, "children", {}).values():
        yield from nodes(child)


def markdown_texts(at: AppTest) -> list[str]:
    """Every text of the page that Streamlit renders as Markdown: bodies of Markdown elements,
    and labels and help texts of every element."""
    found = []
    for node in [*nodes(at.main), *nodes(at.sidebar)]:
        if getattr(node, "type", None) in MARKDOWN_TYPES:
            found.append(str(node.value))
        proto = getattr(node, "proto", None)
        for name in ("label", "help", "placeholder"):
            if proto is not None and hasattr(proto, name):
                found.append(str(getattr(proto, name)))
    return found


def texts(at: AppTest) -> list[str]:
    return [t.value for t in at.text]


def assert_no_markup(at: AppTest, values: tuple[str, ...]) -> None:
    markdown = markdown_texts(at)
    assert markdown, "the page drew Markdown elements to check"
    leaked = [(v, m) for v in values for m in markdown if v in m]
    assert leaked == []


@pytest.fixture(scope="module")
def hostile(
    platform_settings: Settings, pg_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Settings]:
    """A database the real batch filled from a raw zone whose cities are Markdown, with a
    quarantined line of Markdown, and a failed run whose engine and error are Markdown."""
    name = f"literal_{free_port()}"
    raw = tmp_path_factory.mktemp("raw")
    settings = load_settings(
        **{
            **platform_settings.model_dump(),
            "database_url": _database(pg_url, name),
            "raw_dir": raw,
            "kafka_topic": TOPIC,
        }
    )
    write(raw, TOPIC, cities=PAYLOADS, days=2, per_day=2)
    moment = 1_704_153_600_000  # 2024-01-02 00:00 UTC
    write_file(raw, TOPIC, [Record(5, 0, Undecodable(" ".join(PAYLOADS)), moment, PAYLOADS[0])])
    run_once(settings)
    with connect(writer_url(settings)) as conn:
        conn.execute(
            "INSERT INTO batch_run (engine, mode, status, error, finished_at)"
            " VALUES (%s, 'full', 'failed', %s, now())",
            (PAYLOADS[0], "\n".join(PAYLOADS)),
        )
    yield settings
    _drop(pg_url, name)


def test_weather_page_shows_city_names_as_text(
    hostile: Settings, use: Callable[[Settings], None]
) -> None:
    use(hostile)
    at = page("weather")
    assert not at.error
    assert at.multiselect(key="cities").value == sorted(PAYLOADS)
    assert at.get("vega_lite_chart"), "the daily charts are drawn"
    assert_no_markup(at, PAYLOADS)
    at.segmented_control(key="view").set_value("Table")
    at.run()
    assert not at.exception and not at.error
    assert list(at.dataframe[0].value["location"]) == sorted(PAYLOADS)
    assert_no_markup(at, PAYLOADS)
    at.segmented_control(key="view").set_value("Map")
    at.run()
    assert not at.exception and not at.error
    # None of these cities has coordinates: all are listed under the map, one per line.
    assert "\n".join(sorted(PAYLOADS)) in texts(at)
    assert_no_markup(at, PAYLOADS)


def test_pipeline_page_shows_topic_group_errors_and_quarantine_as_text(
    hostile: Settings, use: Callable[[Settings], None]
) -> None:
    # Topic names allow only letters, digits, '.', '_' and '-': underscores still make italics.
    topic = f"_md_{uuid.uuid4().hex[:10]}_"
    group = " ".join(PAYLOADS)
    kafka_topics.create(hostile.kafka_bootstrap_servers, topic, [b"{}"] * 4)
    kafka_topics.commit(hostile.kafka_bootstrap_servers, topic, group, {0: 1})
    use(changed(hostile, kafka_topic=topic, kafka_group_id=group))
    at = page("pipeline")
    shown = texts(at)
    last = next(t for t in shown if t.startswith("Last run that did work: #"))
    assert f"(full, {PAYLOADS[0]}): failed" in last
    failed = last.split()[5].removeprefix("#")
    assert f"Run {failed} failed:" in [e.value for e in at.error]
    assert "\n".join(PAYLOADS) in shown
    assert_no_markup(at, (*PAYLOADS, topic, group))
    assert f"topic {topic}, consumer group {group}" in texts(show(at, "Consumer lag"))
    assert_no_markup(at, (*PAYLOADS, topic, group))
    # No raw files for this topic.
    assert f"{hostile.raw_dir}/{topic}/" in texts(show(at, "Raw zone"))
    assert_no_markup(at, (*PAYLOADS, topic, group))
    runs = show(at, "Runs").dataframe[0].value
    assert runs["engine"][0] == PAYLOADS[0]
    reasons = show(at, "Quarantine").dataframe[0].value
    assert "invalid_json" in list(reasons["reason"])
    at.selectbox(key="reason").set_value("invalid_json")
    at.run()
    assert not at.exception
    raw = list(at.dataframe[1].value["raw"])
    assert any(" ".join(PAYLOADS) in line for line in raw), raw
    assert_no_markup(at, (*PAYLOADS, topic, group))


def test_kafka_page_shows_topic_keys_and_values_as_text(
    hostile: Settings, use: Callable[[Settings], None]
) -> None:
    topic = f"_md_{uuid.uuid4().hex[:10]}_"
    group = " ".join(PAYLOADS)
    servers = hostile.kafka_bootstrap_servers
    values = [p.encode() for p in PAYLOADS] + [json.dumps({"location": PAYLOADS[1]}).encode()]
    keys = [p.encode() for p in reversed(PAYLOADS)] + [PAYLOADS[0].encode()]
    kafka_topics.create(servers, topic, values, keys, partitions=1)
    # The newest record carries headers whose names and values are markup too.
    producer = Producer({"bootstrap.servers": servers})
    producer.produce(
        topic,
        value=json.dumps({"note": PAYLOADS[4]}).encode(),
        key=PAYLOADS[3].encode(),
        headers=[(PAYLOADS[2], PAYLOADS[0].encode())],
    )
    assert producer.flush(30) == 0
    del producer
    letter = {"source": PAYLOADS[3], "line": 2, "raw": PAYLOADS[4], "reason": PAYLOADS[0]}
    kafka_topics.create(servers, topic + ".dlq", [json.dumps(letter).encode()], partitions=1)
    kafka_topics.commit(servers, topic, group, {0: 2})
    use(changed(hostile, kafka_topic=topic))
    at = page("kafka")
    assert not at.error
    assert at.selectbox(key="topic").value == topic
    messages = at.dataframe[0].value
    assert list(messages["key"]) == [PAYLOADS[3], *(k.decode() for k in reversed(keys))]
    assert list(messages["value"])[2:] == list(reversed(PAYLOADS))
    assert json.loads(messages["value"][1]) == {"location": PAYLOADS[1]}
    whole = shown_whole(at)
    assert (whole["key"], whole["headers"], whole["value"]) == (
        PAYLOADS[3],
        {PAYLOADS[2]: PAYLOADS[0]},
        {"note": PAYLOADS[4]},
    )
    assert f"Brokers: {hostile.kafka_bootstrap_servers}" in texts(at)
    assert_no_markup(at, (*PAYLOADS, topic))

    at.text_input(key="search").set_value(PAYLOADS[0])
    at.run()
    found = at.dataframe[0].value
    # The value "**bold**" and the two keys "**bold**", newest first.
    assert list(found["offset"]) == [5, 4, 0]
    assert shown_whole(at)["key"] == PAYLOADS[0]
    assert_no_markup(at, (*PAYLOADS, topic))

    at.text_input(key="search").set_value("")
    assert topic in list(show(at, "Topics").dataframe[0].value["topic"])
    for view in ("Topics", "Consumer groups", "Dead letters"):
        at.segmented_control(key="view").set_value(view)
        at.run()
        assert not at.exception and not at.error, view
        assert_no_markup(at, (*PAYLOADS, topic, group))
    letters = at.dataframe[1].value
    assert (letters["reason"][0], letters["source"][0], letters["raw"][0]) == (
        PAYLOADS[0],
        PAYLOADS[3],
        PAYLOADS[4],
    )
