"""The lab flow the seed's way, on the project's own docker-compose.yml: `generate`, Kafka,
PostgreSQL, producer and consumer, the batch profile, the dashboard; the consumer container is
killed mid-run and restarted by its restart policy.

Every record must be in the raw volume exactly once, and `daily_weather` must equal a
computation straight from the CSV (plain Python, exact decimals)."""

from __future__ import annotations

import json
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.compose.conftest import FIGURES, ROWS, new_stack
from tests.compose.podman import Podman
from tests.compose.stack import Stack, committed_in_topic, group_behind, raw_offsets, wait_for
from tests.csv_reference import DAILY, assert_daily_matches, expected_daily
from weatherpipe.db.connection import connect

# The first test also waits for the images: debootstrap and every build on a fresh machine.
pytestmark = [pytest.mark.compose, pytest.mark.timeout(3600)]

TOPIC = "weather_data_raw"
GROUP = "weatherpipe-raw-zone"


@dataclass(frozen=True)
class LabRun:
    stack: Stack
    csv: Path
    stored: Counter[tuple[str, int, int]]
    """How often each (topic, partition, offset) is in the raw volume's finished files."""
    files: int
    """Finished files in the raw volume."""
    stored_before_kill: int
    restarts: int
    topic_records: int
    batch_output: str


def drain(stack: Stack, timeout: float = 600) -> None:
    """Stop the consumer once it has stored every record of the topic.

    Its files own the offsets and are committed only when finished, which a SIGTERM makes it
    do: so stop it, and start it again while the group still lags."""
    deadline = time.monotonic() + timeout
    while True:
        stack.stop("consumer")
        if not group_behind(stack.kafka, TOPIC, GROUP):
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"the consumer did not catch up within {timeout:.0f} s")
        stack.podman.run("start", stack.container("consumer"))
        time.sleep(5)


def disk_used(podman: Podman) -> str:
    root = podman.run("info", "--format", "{{.Store.GraphRoot}}").stdout.strip()
    out = subprocess.run(["du", "-sb", root], capture_output=True, text=True, check=True)
    return f"{int(out.stdout.split()[0]) / 1e9:.1f} GB in {root}"


@pytest.fixture(scope="module")
def lab(podman: Podman, images: None, data_dir: Path) -> Iterator[LabRun]:
    with new_stack(podman, "lab", data_dir) as stack:
        started = time.monotonic()
        stack.up("kafka", "postgres")
        stack.wait_healthy("kafka")
        stack.wait_healthy("postgres")
        FIGURES["stack start (kafka and postgres healthy)"] = f"{time.monotonic() - started:.0f} s"

        started = time.monotonic()
        stack.up("generate")
        assert stack.wait_exit("generate") == 0, stack.logs("generate")
        stack.up("consumer")
        stack.up("producer")
        raw = stack.volume("raw")
        # The first finished file: the consumer is mid-run, with records in files still open.
        wait_for("a finished raw file", lambda: any(raw.glob("*/date=*/*.ndjson")), 600, 0.1)
        stored_before_kill = sum(raw_offsets(raw).values())
        stack.crash("consumer")
        FIGURES["consumer killed with"] = f"{stored_before_kill:,} records in finished files"
        wait_for(
            "the consumer restarted by its restart policy",
            lambda: stack.restarts("consumer") >= 1 and stack.state("consumer")["Running"] is True,
            120,
        )
        restarts = stack.restarts("consumer")
        assert stack.wait_exit("producer") == 0, stack.logs("producer")
        drain(stack)
        batch_output = stack.compose("run", "--rm", "--no-deps", "batch", profile="batch")
        stack.up("dashboard")
        wait_for("the dashboard", lambda: _answers(stack), 300)
        FIGURES["lab flow (generate, produce, consume with a crash, batch, dashboard)"] = (
            f"{time.monotonic() - started:.0f} s for {ROWS:,} rows"
        )
        FIGURES["disk used at peak"] = disk_used(podman)
        topic_records = committed_in_topic(stack.kafka, TOPIC)
        yield LabRun(
            stack=stack,
            csv=data_dir / "weather_data.csv",
            stored=raw_offsets(raw),
            files=sum(1 for _ in raw.glob("*/date=*/*.ndjson")),
            stored_before_kill=stored_before_kill,
            restarts=restarts,
            topic_records=topic_records,
            batch_output=batch_output,
        )


def _answers(stack: Stack) -> bool:
    try:
        return stack.http_get("/_stcore/health") == (200, "ok")
    except OSError:
        return False


def test_every_record_is_stored_exactly_once_after_the_consumer_was_killed(lab: LabRun) -> None:
    assert lab.restarts >= 1
    assert 0 < lab.stored_before_kill < ROWS  # killed with records not yet in finished files
    assert lab.topic_records == ROWS
    assert sum(lab.stored.values()) == ROWS
    assert max(lab.stored.values()) == 1
    # Every stored (partition, offset) came from the topic, each once, and there are as many
    # as the topic holds committed records: the raw zone holds every record, none missing.
    # (The offsets are not dense: each transaction's commit marker takes one.)
    for partition in {p for _, p, _ in lab.stored}:
        offsets = sorted(o for _, p, o in lab.stored if p == partition)
        assert offsets[0] >= 0 and len(set(offsets)) == len(offsets)


def test_daily_weather_equals_the_csv(lab: LabRun) -> None:
    expected = expected_daily(lab.csv)
    with connect(lab.stack.database_url) as conn:
        got = conn.execute(DAILY).fetchall()
    assert sum(int(e["n"]) for e in expected.values()) == ROWS
    assert_daily_matches(got, lab.csv)


def test_dashboard_serves_its_page(lab: LabRun) -> None:
    status, body = lab.stack.http_get("/")
    assert status == 200
    assert "<title>" in body.lower() or "streamlit" in body.lower()


# The pipeline page run by Streamlit's AppTest inside the dashboard container, with its settings:
# its first view, then the raw zone's and the runs' (one view is shown at a time).
PAGE_IN_CONTAINER = """
import json
from streamlit.testing.v1 import AppTest
PAGE = (
    "from weatherpipe.dashboard import ui\\n"
    "from weatherpipe.dashboard.views import pipeline\\n"
    "ui.page(pipeline.render)\\n"
)
at = AppTest.from_string(PAGE, default_timeout=60)
at.run()
shown = {"exceptions": [], "errors": [], "metrics": {}}
for view in (None, "Raw zone", "Runs"):
    if view is not None:
        at.segmented_control(key="view").set_value(view)
        at.run()
    shown["exceptions"] += [e.message for e in at.exception]
    shown["errors"] += [e.value for e in at.error]
    shown["metrics"].update({m.label: m.value for m in at.metric})
print(json.dumps(shown))
"""


def test_dashboard_container_reads_the_raw_volume_and_postgres(lab: LabRun) -> None:
    shown = json.loads(lab.stack.exec("dashboard", "python", "-c", PAGE_IN_CONTAINER))
    assert shown["exceptions"] == []
    assert shown["errors"] == []
    assert shown["metrics"]["Files"] == str(lab.files)
    assert shown["metrics"]["Observations stored"] == f"{ROWS:,}"
