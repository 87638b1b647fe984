"""The dashboard served by `weatherpipe dashboard` and driven in Debian's chromium, over data that
went the whole way: a generated CSV (with a few bad rows) sent by the real producer, stored by
the real raw-zone consumer, aggregated by the real batch. Each page's screenshot lands in
test-artifacts/. Render times are printed (run with -s to see them), not asserted: timing on a
shared machine is noise, see bench/ for measured figures.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright
from psycopg import sql

from tests import kafka_topics
from tests.conftest import REPO, as_env, free_port
from weatherpipe.batch.runner import run_once
from weatherpipe.datagen import write_csv
from weatherpipe.db.connection import connect
from weatherpipe.db.roles import reader_url
from weatherpipe.ingest.csv_to_topic import produce_all
from weatherpipe.rawzone.listing import list_files
from weatherpipe.settings import Settings, load_settings

pytestmark = [pytest.mark.integration, pytest.mark.browser]

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--headless",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ARTIFACTS = REPO / "test-artifacts"
ROWS = 3_000
# Rows the producer must send to the dead-letter topic.
BAD_ROWS = (
    "Dallas,2024-01-02 10:00:00,5.0,140,1.0,2.0",
    "Houston,2024-01-03 10:00:00,warm,50.0,1.0,2.0",
    "Phoenix,2024-01-04 10:00:00,20.0,50.0",
)
# A second topic read by a test group: 30 records, of which the group consumed 4 + 6 + 0.
LAG_RECORDS, LAG_COMMITTED = 30, {0: 4, 1: 6, 2: 0}
WAIT_MS = 60_000


@dataclass(frozen=True)
class Served:
    settings: Settings
    csv_rows: list[list[str]]
    lag_group: str
    url: str


def _wait_healthy(url: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"weatherpipe dashboard exited ({proc.returncode}):\n{log.read_text()}")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as answer:
                if answer.read() == b"ok":
                    return
        except OSError:
            time.sleep(0.3)
    pytest.fail(f"weatherpipe dashboard did not answer within 90 s:\n{log.read_text()}")


def _flow(settings: Settings) -> list[list[str]]:
    """CSV -> producer -> raw-zone consumer -> batch, as `make run` does it; the CSV's rows."""
    write_csv(settings.csv_path, ROWS, seed=5)
    with settings.csv_path.open("a", encoding="utf-8") as out:
        out.write("\n".join(BAD_ROWS) + "\n")
    summary = produce_all(settings, settings.csv_path)
    assert (summary.sent, summary.quarantined, summary.failed) == (ROWS, len(BAD_ROWS), 0)
    consume = subprocess.run(
        [sys.executable, "-m", "weatherpipe", "consume", "--until-idle", "2"],
        env=as_env(settings),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert consume.returncode == 0, consume.stderr
    run_once(settings)
    lines = settings.csv_path.read_text(encoding="utf-8").splitlines()[1:]
    return [line.split(",") for line in lines]


@pytest.fixture(scope="module")
def served(
    platform_settings: Settings, pg_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Served]:
    """`weatherpipe dashboard` on a free port over what the whole pipeline stored."""
    suffix = free_port()
    name, topic = f"browser_{suffix}", f"browser_{suffix}"
    with connect(pg_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    files = tmp_path_factory.mktemp("flow")
    settings = load_settings(
        **{
            **platform_settings.model_dump(),
            "database_url": f"{pg_url.rpartition('/')[0]}/{name}",
            "raw_dir": files / "raw",
            "csv_path": files / "weather.csv",
            "kafka_topic": topic,
            "kafka_group_id": f"group_{suffix}",
            "dashboard_port": free_port(),
        }
    )
    rows = _flow(settings)
    servers, lag_group = settings.kafka_bootstrap_servers, f"reader_{suffix}"
    values = [json.dumps({"n": i}).encode() for i in range(LAG_RECORDS)]
    kafka_topics.create(servers, f"other_{suffix}", values, partitions=3)
    kafka_topics.commit(servers, f"other_{suffix}", lag_group, LAG_COMMITTED)
    log = tmp_path_factory.mktemp("dashboard") / "dashboard.log"
    url = f"http://127.0.0.1:{settings.dashboard_port}"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "weatherpipe", "dashboard", "--address", "127.0.0.1"],
            env=as_env(settings),
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        _wait_healthy(url, proc, log)
        yield Served(settings, rows, lag_group, url)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        with connect(pg_url, autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    """A fresh page at 1440 px wide."""
    tab = browser.new_page(viewport={"width": 1440, "height": 2000})
    try:
        yield tab
    finally:
        tab.close()


def settled(page: Page) -> None:
    """Wait until Streamlit has finished running the page's script."""
    expect(page.get_by_test_id("stStatusWidget")).to_have_count(0, timeout=WAIT_MS)
    expect(
        page.locator('[data-testid="stApp"][data-test-script-state="notRunning"]')
    ).to_have_count(1, timeout=WAIT_MS)


def kpis_sql(settings: Settings, cities: list[str], start: date, end: date) -> dict[str, str]:
    """The KPI tiles' texts as SQL over the stored sums computes them (as the reader)."""
    with connect(reader_url(settings)) as conn:
        row = conn.execute(
            "SELECT sum(temperature_sum) / sum(observations),"
            " sum(humidity_sum) / sum(observations), sum(wind_speed_sum) / sum(observations),"
            " sum(precipitation_sum) / sum(observations)"
            " FROM daily_aggregate WHERE location = ANY(%s) AND day BETWEEN %s AND %s",
            (cities, start, end),
        ).fetchone()
    assert row is not None and row[0] is not None
    temperature, humidity, wind, rain = (float(v) for v in row)
    return {
        "Average temperature": f"{temperature:,.1f} °C",
        "Average humidity": f"{humidity:,.1f} %",
        "Average wind speed": f"{wind:,.1f} km/h",
        "Precipitation per reading": f"{rain:,.2f} mm",
    }


def expect_kpis(page: Page, expected: dict[str, str]) -> None:
    for label, text in expected.items():
        tile = page.get_by_test_id("stMetric").filter(has_text=label)
        expect(tile.get_by_test_id("stMetricValue")).to_have_text(text, timeout=WAIT_MS)


def legend_colours(page: Page) -> dict[str, str]:
    """City -> colour of the legend of the page's first chart, as the browser drew it."""
    chart = page.get_by_test_id("stVegaLiteChart").first
    expect(chart.locator(".role-legend-label text").first).to_be_visible(timeout=WAIT_MS)
    pairs: list[list[str]] = chart.evaluate(
        """chart => {
            const svg = chart.querySelector('svg');
            const labels = [...svg.querySelectorAll('.role-legend-label text')];
            const symbols = [...svg.querySelectorAll('.role-legend-symbol path')];
            return labels.map((label, i) => {
                const fill = symbols[i].getAttribute('fill');
                const colour = fill && fill !== 'transparent' ? fill
                    : symbols[i].getAttribute('stroke');
                return [label.textContent, colour];
            });
        }"""
    )
    return dict((city, colour) for city, colour in pairs)


def open_filters(page: Page) -> None:
    """Open the Weather page's filters (a popover) unless they are open."""
    if not page.get_by_role("combobox", name="Cities").is_visible():
        page.get_by_role("button", name=re.compile(r"^Filters: ")).click()
        expect(page.get_by_role("combobox", name="Cities")).to_be_visible(timeout=WAIT_MS)


def open_seek(page: Page) -> None:
    """Open the Kafka page's seek controls (a popover) unless they are open."""
    if not page.get_by_role("combobox", name="Partition").is_visible():
        page.get_by_role("button", name=re.compile(r"^(Newest|From offset|From time): ")).click()
        expect(page.get_by_role("combobox", name="Partition")).to_be_visible(timeout=WAIT_MS)


def set_day(page: Page, label: str, day: date) -> None:
    """Type a day into a date input of the Weather page's filters, segment by segment, as a
    user would."""
    page.get_by_role("spinbutton", name=f"year, {label}").click()
    page.keyboard.type(f"{day.year:04d}{day.month:02d}{day.day:02d}")
    page.keyboard.press("Enter")
    # The day counts once the field is left: click outside, which closes its calendar and the
    # filters' popover (Escape would close them and drop the unconfirmed day, like a cancel).
    page.get_by_role("heading", name="Weather", level=1).click()
    open_filters(page)
    expect(page.get_by_role("spinbutton", name=f"day, {label}")).to_have_attribute(
        "aria-valuenow", str(day.day)
    )


def pick(page: Page, label: str, option: str) -> None:
    """Choose `option` in the select box labelled `label`."""
    page.get_by_role("combobox", name=label).click()
    page.keyboard.type(option)
    page.keyboard.press("Enter")


def choose(page: Page, option: str) -> None:
    """Press the segment `option` of a segmented control."""
    page.get_by_role("radio", name=option, exact=True).click()


def compact(text: str) -> str:
    """`text` without whitespace and commas: how the JSON view's text compares."""
    return re.sub(r"[\s,]+", "", text)


def record_shown(page: Page) -> str:
    """Pick the first row of the messages (its box, left of the row) and return the text of the
    record then shown whole (the JSON view), compacted."""
    settled(page)
    expect(page.get_by_text("Pick a row (the box at its left)")).to_be_visible(timeout=WAIT_MS)
    box = page.get_by_test_id("stDataFrame").first.bounding_box()
    assert box is not None
    # Below the header, in the column of row boxes; header and rows are 35 px high.
    page.mouse.click(box["x"] + 18, box["y"] + 35 + 17)
    view = page.get_by_test_id("stJson")
    expect(view).to_be_visible(timeout=WAIT_MS)
    settled(page)
    return compact(view.inner_text())


def test_weather_filters_keep_city_colours_and_live_in_the_url(served: Served, page: Page) -> None:
    settings = served.settings
    cities = sorted({row[0] for row in served.csv_rows})
    first, last = date(2024, 1, 1), date(2024, 5, 18)
    start = time.perf_counter()
    page.goto(served.url)
    expect_kpis(page, kpis_sql(settings, cities, first, last))
    everyone = legend_colours(page)
    settled(page)
    print(f"\nweather, first load: {time.perf_counter() - start:.2f} s")
    assert sorted(everyone) == cities
    assert len(set(everyone.values())) == len(cities), everyone
    page.screenshot(path=ARTIFACTS / "dashboard-weather.png", full_page=True)

    chosen, begin, end = ["Chicago", "Dallas"], date(2024, 2, 5), date(2024, 3, 20)
    open_filters(page)
    page.get_by_role("button", name="Clear all").click()
    for city in chosen:
        open_filters(page)
        pick(page, "Cities", city)
    page.keyboard.press("Escape")
    open_filters(page)
    set_day(page, "From day (UTC)", begin)
    set_day(page, "To day (UTC)", end)
    expected = kpis_sql(settings, chosen, begin, end)
    expect_kpis(page, expected)
    settled(page)
    assert legend_colours(page) == {c: everyone[c] for c in chosen}
    # The controls the filter did not touch still show their choice.
    for choice in ("Temperature", "Daily"):
        expect(page.get_by_role("radio", name=choice, exact=True)).to_have_attribute(
            "aria-checked", "true"
        )
    page.screenshot(path=ARTIFACTS / "dashboard-weather-filtered.png", full_page=True)
    assert "city=Chicago&city=Dallas" in page.url and "from=2024-02-05" in page.url

    # The URL alone brings the same view back, in a new session.
    page.goto(page.url)
    expect_kpis(page, expected)
    assert legend_colours(page) == {c: everyone[c] for c in chosen}


def test_kafka_page_shows_searches_seeks_and_measures_lag(served: Served, page: Page) -> None:
    settings = served.settings
    start = time.perf_counter()
    page.goto(f"{served.url}/kafka")
    # First load: the newest records of all partitions; the newest shown whole once picked.
    settled(page)
    print(f"\nkafka, first load: {time.perf_counter() - start:.2f} s")
    expect(page.get_by_test_id("stJson")).to_have_count(0)
    shown = record_shown(page)
    assert f'"topic":"{settings.kafka_topic}"' in shown
    assert '"value":{"location":' in shown
    page.screenshot(path=ARTIFACTS / "dashboard-kafka.png", full_page=True)

    city = "San Jose"
    matches = sum(1 for row in served.csv_rows if row[0] == city and len(row) == 6)
    search = page.get_by_label("Search keys and values for this text")
    search.fill(city)
    search.press("Enter")
    expect(
        page.get_by_text(f"{matches:,} of the newest {ROWS:,} records hold this text")
    ).to_be_visible(timeout=WAIT_MS)
    shown = record_shown(page)
    assert compact(f'"key":"{city}|') in shown
    page.screenshot(path=ARTIFACTS / "dashboard-kafka-search.png", full_page=True)
    search.fill("")
    search.press("Enter")

    open_seek(page)
    pick(page, "Partition", "2")
    open_seek(page)
    choose(page, "From offset")
    open_seek(page)
    offset = page.get_by_role("spinbutton", name="Offset")
    offset.fill("7")
    offset.press("Enter")
    expect(page.get_by_text("Partition 2 from offset 7 on")).to_be_visible(timeout=WAIT_MS)
    expect(page.get_by_role("button", name="From offset: partition 2, 50 records")).to_be_visible()
    shown = record_shown(page)
    assert '"partition":2"offset":7"timestamp"' in shown

    # Close the seek controls (they cover the page) before switching the view.
    page.keyboard.press("Escape")
    expect(page.get_by_role("combobox", name="Partition")).to_be_hidden(timeout=WAIT_MS)
    choose(page, "Consumer groups")
    expect(page).to_have_url(re.compile(r"/kafka\?view=Consumer(\+|%20)groups$"), timeout=WAIT_MS)
    pick(page, "Lag of group", served.lag_group)
    lag = page.get_by_test_id("stMetric").filter(has_text="Total lag")
    expect(lag.get_by_test_id("stMetricValue")).to_have_text(
        f"{LAG_RECORDS - sum(LAG_COMMITTED.values()):,}", timeout=WAIT_MS
    )
    page.screenshot(path=ARTIFACTS / "dashboard-kafka-groups.png", full_page=True)


def test_pipeline_reconciles_every_row_and_turns_red_without_a_raw_file(
    served: Served, page: Page
) -> None:
    settings = served.settings
    start = time.perf_counter()
    page.goto(f"{served.url}/pipeline")
    good = len(served.csv_rows) - len(BAD_ROWS)
    assert good == ROWS
    line = (
        f"CSV rows {ROWS + len(BAD_ROWS):,} → topic records {ROWS:,} + dead letters "
        f"{len(BAD_ROWS)} → raw-zone lines {ROWS:,} → processed {ROWS:,} → quarantined 0 + "
        f"observations {ROWS:,} + duplicates 0: every row accounted for."
    )
    alert = page.get_by_test_id("stAlert").filter(has_text="CSV rows")
    expect(alert).to_contain_text(line, timeout=WAIT_MS)
    expect(alert.get_by_test_id("stAlertContentSuccess")).to_have_count(1)
    settled(page)
    print(f"\npipeline, first load: {time.perf_counter() - start:.2f} s")
    page.screenshot(path=ARTIFACTS / "dashboard-pipeline.png", full_page=True)

    files = list_files(settings.raw_dir)
    lost = files[0]
    (settings.raw_dir / lost.path).unlink()
    lost_lines = lost.last_offset - lost.first_offset + 1
    page.get_by_role("button", name="Refresh now").click()
    alert = page.get_by_test_id("stAlert").filter(has_text="CSV rows")
    expect(alert).to_contain_text(
        f"raw-zone lines {ROWS - lost_lines:,} → processed {ROWS:,}", timeout=WAIT_MS
    )
    expect(alert).to_contain_text("The counts disagree")
    expect(alert).to_contain_text("1 file the batch processed is gone from the raw zone")
    expect(alert.get_by_test_id("stAlertContentError")).to_have_count(1)
    page.screenshot(path=ARTIFACTS / "dashboard-pipeline-red.png", full_page=True)
    assert Counter(r.topic for r in list_files(settings.raw_dir)) == {
        settings.kafka_topic: len(files) - 1
    }
