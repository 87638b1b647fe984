"""CPU time of one page load, on both sides: chromium's renderer main thread (where Streamlit's
React code, Vega and the table draw) and the Streamlit server process. Unlike wall time, these
hardly move when other work shares the machine's cores.

Each URL is opened once to warm up, then `--repeat` times under chromium's performance trace;
the main thread's time is the thread time of its top-level tasks. For a server's CPU, give its
process id with the URL as PID=URL (`weatherpipe dashboard` execs Streamlit, so its pid is the
server's).

    uv run python bench/dashboard_cpu.py [--repeat 6] [PID=]URL [[PID=]URL ...]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from collections import Counter
from pathlib import Path
from typing import Any

from bench_dashboard import CHROMIUM, CHROMIUM_ARGS, load
from playwright.sync_api import Browser, Page, sync_playwright

CATEGORIES = ["devtools.timeline", "disabled-by-default-devtools.timeline"]


def server_cpu(pid: int | None) -> float:
    """Seconds of CPU the process has used (user + system), 0 without a pid."""
    if pid is None:
        return 0.0
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main_thread_ms(events: list[dict[str, Any]]) -> float:
    """Thread time of the top-level tasks of the busiest renderer main thread (the page's)."""
    names = {
        (e["pid"], e["tid"]): e["args"]["name"] for e in events if e.get("name") == "thread_name"
    }
    mains = {key for key, name in names.items() if name == "CrRendererMain"}
    busiest = Counter((e["pid"], e["tid"]) for e in events if (e["pid"], e["tid"]) in mains)
    thread = busiest.most_common(1)[0][0]
    microseconds = sum(
        int(e.get("tdur", 0))
        for e in events
        if (e["pid"], e["tid"]) == thread and e.get("name") == "RunTask" and e.get("ph") == "X"
    )
    return microseconds / 1000


def traced(browser: Browser, page: Page, url: str, pid: int | None) -> tuple[float, float, float]:
    """Wall seconds, browser main-thread ms and server CPU ms of one load of `url`."""
    browser.start_tracing(page=page, categories=CATEGORIES)
    before = server_cpu(pid)
    wall = load(page, url)
    server = (server_cpu(pid) - before) * 1000
    trace = json.loads(browser.stop_tracing())
    events = trace["traceEvents"] if isinstance(trace, dict) else trace
    return wall, main_thread_ms(events), server


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=6, help="Traced loads of each URL.")
    parser.add_argument("targets", nargs="+", metavar="[PID=]URL")
    args = parser.parse_args()
    targets = [
        (t, None) if t.startswith("http") else (t.split("=", 1)[1], int(t.split("=", 1)[0]))
        for t in args.targets
    ]
    results: dict[str, list[tuple[float, float, float]]] = {url: [] for url, _ in targets}
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1440, "height": 2200})
            for url, _ in targets:
                load(page, url)
            for _ in range(args.repeat):
                for url, pid in targets:
                    results[url].append(traced(browser, page, url, pid))
        finally:
            browser.close()
    print(f"load average {os.getloadavg()[0]:.1f}, median of {args.repeat} loads, {time.ctime()}")
    print("| URL | wall s | browser main thread ms | server CPU ms |")
    print("|---|---:|---:|---:|")
    for url, runs in results.items():
        wall, browser_ms, server_ms = (statistics.median(c) for c in zip(*runs, strict=True))
        print(f"| {url} | {wall:.2f} | {browser_ms:.0f} | {server_ms:.0f} |")


if __name__ == "__main__":
    main()
