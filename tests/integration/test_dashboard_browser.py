"""The dashboard served by `weatherpipe dashboard` and driven in Debian's chromium: the filters
change the KPIs exactly as SQL over the stored sums says, every page renders, and each page's
screenshot lands in test-artifacts/. Render times are printed (run with -s to see them), not
asserted: timing on a shared machine is noise, see the report for measured figures.

The data is realistic in shape: ten cities over 139 days (1,390 daily rows, 417 raw files),
filled by the real batch; DASHBOARD_BROWSER_PER_DAY raises the observations per city and day.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect, sync_playwright
from psycopg import sql

from tests import kafka_topics
from tests.conftest import REPO, as_env, free_port
from tests.weather_rawzone import FIRST_DAY, RawZone, write
from weatherpipe.batch.runner import run_once
from weatherpipe.db.connection import connect
from weatherpipe.db.roles import reader_url
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
DAYS = 139
PER_DAY = int(os.environ.get("DASHBOARD_BROWSER_PER_DAY", "2"))
MESSAGES = 300
WAIT_MS = 60_000


@dataclass(frozen=True)
class Served:
    settings: Settings
    zone: RawZone
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


def _kafka(settings: Settings, zone: RawZone) -> None:
    """The topic with some of the events in it, and the raw-zone group part of the way."""
    events = zone.events[:MESSAGES]
    servers = settings.kafka_bootstrap_servers
    kafka_topics.create(
        servers,
        settings.kafka_topic,
        [json.dumps(e).encode() for e in events],
        [e["location"].encode() for e in events],
        partitions=3,
    )
    committed = {p: 40 + 10 * p for p in range(3)}
    kafka_topics.commit(servers, settings.kafka_topic, settings.kafka_group_id, committed)


@pytest.fixture(scope="module")
def served(
    platform_settings: Settings, pg_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Served]:
    """`weatherpipe dashboard` on a free port over a database the real batch filled."""
    suffix = free_port()
    name, topic = f"browser_{suffix}", f"browser_{suffix}"
    with connect(pg_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    raw = tmp_path_factory.mktemp("raw")
    settings = load_settings(
        **{
            **platform_settings.model_dump(),
            "database_url": f"{pg_url.rpartition('/')[0]}/{name}",
            "raw_dir": raw,
            "kafka_topic": topic,
            "kafka_group_id": f"group_{suffix}",
            "dashboard_port": free_port(),
        }
    )
    zone = write(raw, topic, days=DAYS, per_day=PER_DAY)
    print(f"\n{run_once(settings).line()}")
    _kafka(settings, zone)
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
        yield Served(settings, zone, url)
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


def rain_text(mm: float) -> str:
    """Totals of 10,000 mm and more are shown without decimals (they must fit the tile)."""
    return f"{mm:,.1f} mm" if mm < 10_000 else f"{mm:,.0f} mm"


def kpis_sql(settings: Settings, cities: list[str], start: date, end: date) -> dict[str, str]:
    """The KPI tiles' texts as SQL over the stored sums computes them (as the reader)."""
    with connect(reader_url(settings)) as conn:
        row = conn.execute(
            "SELECT sum(temperature_sum) / sum(observations),"
            " sum(humidity_sum) / sum(observations), sum(wind_speed_sum) / sum(observations),"
            " sum(precipitation_sum)"
            " FROM daily_aggregate WHERE location = ANY(%s) AND day BETWEEN %s AND %s",
            (cities, start, end),
        ).fetchone()
    assert row is not None and row[0] is not None
    temperature, humidity, wind, rain = (float(v) for v in row)
    return {
        "Average temperature": f"{temperature:,.1f} °C",
        "Average humidity": f"{humidity:,.1f} %",
        "Average wind speed": f"{wind:,.1f} km/h",
        "Total precipitation": rain_text(rain),
    }


def expect_kpis(page: Page, expected: dict[str, str]) -> None:
    for label, text in expected.items():
        tile = page.get_by_test_id("stMetric").filter(has_text=label)
        expect(tile.get_by_test_id("stMetricValue")).to_have_text(text, timeout=WAIT_MS)


def settled(page: Page) -> None:
    """Wait until Streamlit has finished running the page's script."""
    expect(page.get_by_test_id("stStatusWidget")).to_have_count(0, timeout=WAIT_MS)


def weather_ready(page: Page) -> None:
    expect(page.get_by_test_id("stMetricValue")).to_have_count(4, timeout=WAIT_MS)
    expect(page.get_by_test_id("stVegaLiteChart")).to_have_count(3, timeout=WAIT_MS)
    expect(page.get_by_test_id("stDataFrame")).to_have_count(1, timeout=WAIT_MS)
    settled(page)


def pipeline_ready(page: Page) -> None:
    expect(page.get_by_test_id("stDataFrame")).to_have_count(5, timeout=WAIT_MS)
    settled(page)


def kafka_ready(page: Page) -> None:
    expect(page.get_by_test_id("stDataFrame")).to_have_count(2, timeout=WAIT_MS)
    expect(page.get_by_test_id("stSlider")).to_be_visible(timeout=WAIT_MS)
    settled(page)


def set_day(page: Page, label: str, day: date) -> None:
    """Type a day into a date input, segment by segment, as a user would."""
    page.get_by_role("spinbutton", name=f"year, {label}").click()
    page.keyboard.type(f"{day.year:04d}{day.month:02d}{day.day:02d}")
    page.keyboard.press("Enter")
    # Clicking the field opens its calendar; close it so it covers nothing.
    page.keyboard.press("Escape")
    expect(page.get_by_role("spinbutton", name=f"day, {label}")).to_have_attribute(
        "aria-valuenow", str(day.day)
    )


def test_filters_pages_and_screenshots_in_chromium(served: Served) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    settings, zone = served.settings, served.zone
    timings: dict[str, float] = {}
    last = FIRST_DAY + timedelta(days=DAYS - 1)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1440, "height": 2200})
            start = time.perf_counter()
            page.goto(served.url)
            weather_ready(page)
            timings["weather (first load)"] = time.perf_counter() - start
            cities = sorted(set(e["location"] for e in zone.events))
            expect_kpis(page, kpis_sql(settings, cities, FIRST_DAY, last))
            page.screenshot(path=ARTIFACTS / "dashboard-weather.png")

            chosen, begin, end = ["Chicago", "Dallas"], date(2024, 2, 5), date(2024, 3, 20)
            page.get_by_role("button", name="Clear all").click()
            combo = page.get_by_role("combobox", name="Cities")
            for city in chosen:
                combo.click()
                page.keyboard.type(city)
                page.keyboard.press("Enter")
            page.keyboard.press("Escape")
            set_day(page, "From day (UTC)", begin)
            set_day(page, "To day (UTC)", end)
            expected = kpis_sql(settings, chosen, begin, end)
            assert expected != kpis_sql(settings, cities, FIRST_DAY, last)
            expect_kpis(page, expected)
            expect(page.get_by_text(f"on {(end - begin).days + 1} days.")).to_be_visible()
            weather_ready(page)
            page.screenshot(path=ARTIFACTS / "dashboard-weather-filtered.png")

            for name, ready in (("Pipeline", pipeline_ready), ("Kafka", kafka_ready)):
                start = time.perf_counter()
                page.get_by_test_id("stSidebarNavLink").filter(has_text=name).click()
                ready(page)
                timings[name.lower()] = time.perf_counter() - start
                page.screenshot(path=ARTIFACTS / f"dashboard-{name.lower()}.png")
                if name == "Pipeline":
                    files = page.get_by_test_id("stMetric").filter(has_text="Last run: files")
                    expect(files.get_by_test_id("stMetricValue")).to_have_text(f"{zone.files:,}")
                    total = page.get_by_test_id("stMetric").filter(has_text="Total lag")
                    expect(total.get_by_test_id("stMetricValue")).to_have_text(
                        f"{MESSAGES - (40 + 50 + 60):,}"
                    )
                else:
                    expect(page.get_by_text(f"({MESSAGES // 3} records kept)")).to_be_visible()

            start = time.perf_counter()
            page.get_by_test_id("stSidebarNavLink").filter(has_text="Weather").click()
            weather_ready(page)
            timings["weather"] = time.perf_counter() - start
        except Exception:
            page.screenshot(path=ARTIFACTS / "dashboard-failure.png")
            raise
        finally:
            browser.close()
    rows = len(zone.events)
    print(f"\nrender times ({rows:,} observations, {len(zone.days)} days, {zone.files} files):")
    for name, seconds in timings.items():
        print(f"  {name:<22} {seconds:6.2f} s")
