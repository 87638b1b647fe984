"""Benchmark of the dashboard's pages in a real browser, against a bare Streamlit page.

Serves `weatherpipe dashboard` over the data the settings point to (under `make bench`: the
database, topic and raw zone that the end-to-end run has just filled with 1M rows) with
DASHBOARD_CACHE_SECONDS=0, so every load asks PostgreSQL and Kafka afresh: the time a user waits
when the cache has expired. The reference is a one-line Streamlit page served by the same
Streamlit in the same browser: what any Streamlit page costs here (session, script run, first
paint). Each page is opened afresh in Debian's chromium `--repeat` times after one warm-up load
(the server's first run of a page imports its modules); a load ends when the page's script has
finished and every chart is drawn.

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
TIMEOUT_MS = 120_000
REFERENCE = "bare Streamlit page (reference)"
REFERENCE_PAGE = 'import streamlit as st\n\nst.title("Reference")\nst.write("A bare page.")\n'


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


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
    page.wait_for_function(
        """() => [...document.querySelectorAll('[data-testid="stVegaLiteChart"]')]
                 .every(chart => chart.querySelector('canvas, svg'))""",
        timeout=TIMEOUT_MS,
    )
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
        ports = [free_port() for _ in range(3)]
        dashboard = [sys.executable, "-m", "weatherpipe", "dashboard", "--address", "127.0.0.1"]
        bare = [sys.executable, "-m", "streamlit", "run", str(reference), "--server.headless"]
        with (
            served(
                [*bare, "true", "--server.port", str(ports[0])], ports[0], uncached, work / "r"
            ) as reference_url,
            served([*dashboard, "--port", str(ports[1])], ports[1], uncached, work / "u") as url,
            served([*dashboard, "--port", str(ports[2])], ports[2], cached, work / "c") as warm,
            sync_playwright() as playwright,
        ):
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            try:
                page = browser.new_page(viewport={"width": 1440, "height": 2200})
                targets = {REFERENCE: reference_url}
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


def report(timings: dict[str, list[float]], size: str, repeat: int) -> str:
    reference = statistics.median(timings[REFERENCE])
    lines = [
        "# Dashboard: pages opened in chromium",
        "",
        f"Data: {size}. Uncached: DASHBOARD_CACHE_SECONDS=0, every load queries PostgreSQL "
        "and Kafka (what a user waits for once the cache has expired); cached: every result "
        f"comes from Streamlit's cache. Median of {repeat} loads after one warm-up; a load ends "
        "when the script has finished and every chart is drawn. Goal: each page within 1 s.",
        "",
        "| page | median s | / bare page | loads (s) |",
        "|---|---:|---:|---|",
    ]
    for name, values in timings.items():
        median = statistics.median(values)
        rounds = ", ".join(f"{v:.2f}" for v in values)
        lines.append(f"| {name} | {median:.2f} | {median / reference:.1f}x | {rounds} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5, help="Loads of each page (default 5).")
    args = parser.parse_args()
    size = data_size()
    text = report(measure(args.repeat), size, args.repeat)
    RESULTS.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
