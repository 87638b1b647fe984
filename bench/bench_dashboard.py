"""Benchmark of the dashboard's pages in a real browser, against a bare Streamlit page.

Serves `weatherpipe dashboard` over the data the settings point to (under `make bench`: the
database, topic and raw zone that the end-to-end run has just filled with 1M rows) twice: with
DASHBOARD_CACHE_SECONDS=0, so every load asks PostgreSQL and Kafka afresh (the time a user waits
when the cache has expired), and with results kept for an hour (cached). The reference is a
one-line Streamlit page served by the same Streamlit in the same browser: what any Streamlit
page costs here (session, script run, first paint). Pipeline and Kafka live at their own URLs
(/pipeline, /kafka), where Streamlit's client first looks for its server under that path and
only then at the root; the second reference is the same bare page at such a URL (the second
page of a two-page app). Each page is opened afresh in Debian's chromium `--repeat` times after
one warm-up load (the server's first run of a page imports its modules); a load ends when the
page's script has finished and everything it sent is drawn: no element left as a placeholder,
every chart with its marks, every table with its cells.

    uv run python bench/bench_dashboard.py [--repeat 5]   # over the data of the settings
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from playwright.sync_api import Page, sync_playwright

from weatherpipe.db.connection import connect
from weatherpipe.db.roles import reader_url
from weatherpipe.settings import load_settings

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results-dashboard.md"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--headless", "--disable-gpu", "--no-first-run"]
# Page title -> path in the dashboard's URL (st.Page takes it from the file name).
PAGES = {"Weather": "", "Pipeline": "pipeline", "Kafka": "kafka"}
GOAL_CACHED, GOAL_UNCACHED = 1.5, 2.0
TIMEOUT_MS = 120_000
REFERENCE = "bare Streamlit page (reference)"
SUBPAGE_REFERENCE = "bare Streamlit page at a page URL (reference)"
REFERENCE_PAGE = 'import streamlit as st\n\nst.title("Reference")\nst.write("A bare page.")\n'
# The same bare page as the second page of a two-page app, opened at its own URL (/bare).
SUBPAGE_APP = """import streamlit as st


def home():
    st.title("Home")


def bare():
    st.title("Reference")
    st.write("A bare page.")


st.navigation([st.Page(home, default=True), st.Page(bare, url_path="bare")]).run()
"""


# Drawn: no element still waits for its code (Streamlit shows a skeleton until an element's
# script chunk has loaded, and the script can finish before that), every chart has drawn its
# marks (a chart is first drawn empty and gets its data after), and every table its canvas.
DRAWN = """() => !document.querySelector('[data-testid="stSkeleton"]')
    && [...document.querySelectorAll('[data-testid="stVegaLiteChart"]')]
        .every(chart => chart.querySelector('canvas, svg .role-mark > *'))
    && [...document.querySelectorAll('[data-testid="stDataFrame"]')]
        .every(table => table.querySelector('canvas'))"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def bare(script: Path, port: int) -> list[str]:
    """`streamlit run` of a bare page, served as `weatherpipe dashboard` serves its pages: no
    file watcher (it walks every loaded module for each new session), the same theme and
    toolbar, so only the pages differ."""
    return [
        *(sys.executable, "-m", "streamlit", "run", str(script)),
        *("--server.port", str(port), "--server.headless", "true"),
        *("--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none"),
        *("--theme.base", "light", "--client.toolbarMode", "viewer"),
    ]


@contextmanager
def served(command: list[str], port: int, env: dict[str, str], log: Path) -> Iterator[str]:
    """A Streamlit server started by `command`, its URL once it answers its health check."""
    url = f"http://127.0.0.1:{port}"
    with log.open("wb") as out:
        proc = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 120
        while True:
            if proc.poll() is not None:
                raise SystemExit(
                    f"{' '.join(command[1:4])} exited ({proc.returncode}):\n{log.read_text()}"
                )
            try:
                with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as answer:
                    if answer.read() == b"ok":
                        break
            except OSError:
                if time.monotonic() > deadline:
                    raise SystemExit(f"no answer from {url} in 120 s:\n{log.read_text()}") from None
                time.sleep(0.3)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def load(page: Page, url: str) -> float:
    """Seconds from navigation until the page's script has finished and its charts are drawn."""
    start = time.perf_counter()
    page.goto(url)
    # Streamlit marks its root with the script's state: "initial" before the first run.
    page.wait_for_selector(
        '[data-testid="stApp"][data-test-script-state="notRunning"]', timeout=TIMEOUT_MS
    )
    page.wait_for_function(DRAWN, timeout=TIMEOUT_MS)
    return time.perf_counter() - start


def data_size() -> str:
    settings = load_settings()
    with connect(reader_url(settings)) as conn:
        row = conn.execute("SELECT count(*), sum(observations) FROM daily_weather").fetchone()
    days, observations = row if row else (0, 0)
    return f"{observations or 0:,} observations in {days:,} daily rows"


def measure(repeat: int) -> dict[str, list[float]]:
    """Seconds per load of each page, the reference first."""
    uncached = dict(os.environ, DASHBOARD_CACHE_SECONDS="0")
    cached = dict(os.environ, DASHBOARD_CACHE_SECONDS="3600")
    timings: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory(prefix="weatherpipe-bench-dashboard-") as tmp:
        work = Path(tmp)
        reference = work / "reference.py"
        reference.write_text(REFERENCE_PAGE)
        subpage = work / "subpage.py"
        subpage.write_text(SUBPAGE_APP)
        ports = [free_port() for _ in range(4)]
        dashboard = [sys.executable, "-m", "weatherpipe", "dashboard", "--address", "127.0.0.1"]
        with (
            served(bare(reference, ports[0]), ports[0], uncached, work / "r") as reference_url,
            served(bare(subpage, ports[3]), ports[3], uncached, work / "s") as subpage_url,
            served([*dashboard, "--port", str(ports[1])], ports[1], uncached, work / "u") as url,
            served([*dashboard, "--port", str(ports[2])], ports[2], cached, work / "c") as warm,
            sync_playwright() as playwright,
        ):
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            try:
                page = browser.new_page(viewport={"width": 1440, "height": 2200})
                targets = {REFERENCE: reference_url, SUBPAGE_REFERENCE: f"{subpage_url}/bare"}
                targets |= {f"{name}, uncached": f"{url}/{path}" for name, path in PAGES.items()}
                targets |= {f"{name}, cached": f"{warm}/{path}" for name, path in PAGES.items()}
                for target in targets.values():
                    # Warm-up: the server imports the page's modules (and fills the cache).
                    load(page, target)
                for _ in range(repeat):
                    for name, target in targets.items():
                        timings.setdefault(name, []).append(load(page, target))
            finally:
                browser.close()
    return timings


def _reference(name: str) -> str:
    """The bare page a dashboard page is held against: the one at the same kind of URL."""
    return REFERENCE if name.startswith("Weather") else SUBPAGE_REFERENCE


def report(timings: dict[str, list[float]], size: str, repeat: int, load: str) -> str:
    medians = {name: statistics.median(values) for name, values in timings.items()}
    lines = [
        "# Dashboard: pages opened in chromium",
        "",
        f"Data: {size}. Uncached: DASHBOARD_CACHE_SECONDS=0, every load queries PostgreSQL "
        "and Kafka (what a user waits for once the cache has expired); cached: every result "
        f"comes from Streamlit's cache. Median of {repeat} loads after one warm-up; a load ends "
        "when the script has finished and everything is drawn (no placeholder left, charts with "
        "their marks, tables with their cells). Goal: cached within "
        f"{GOAL_CACHED:g}x, uncached within {GOAL_UNCACHED:g}x the bare page at the same kind of "
        f"URL (Weather: the root; Pipeline and Kafka: a page URL). {load}",
        "",
        "| page | median s | / bare page (root) | / bare page (same URL kind) | goal | loads (s) |",
        "|---|---:|---:|---:|---|---|",
    ]
    for name, values in timings.items():
        median = medians[name]
        rounds = ", ".join(f"{v:.2f}" for v in values)
        if name in (REFERENCE, SUBPAGE_REFERENCE):
            goal, same = "", ""
        else:
            ratio = median / medians[_reference(name)]
            limit = (
                GOAL_CACHED if name.endswith("cached") and "uncached" not in name else GOAL_UNCACHED
            )
            goal = f"{'met' if ratio <= limit else 'missed'} (≤ {limit:g}x)"
            same = f"{ratio:.1f}x"
        lines.append(
            f"| {name} | {median:.2f} | {median / medians[REFERENCE]:.1f}x | {same} | {goal} "
            f"| {rounds} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5, help="Loads of each page (default 5).")
    args = parser.parse_args()
    size = data_size()
    before = os.getloadavg()[0]
    timings = measure(args.repeat)
    load = (
        f"Load average of the machine ({os.cpu_count()} cores): {before:.1f} at the start, "
        f"{os.getloadavg()[0]:.1f} at the end."
    )
    text = report(timings, size, args.repeat, load)
    RESULTS.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
