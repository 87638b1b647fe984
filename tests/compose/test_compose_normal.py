"""Normal operation on docker-compose.yml's `normal` profile, briefly: the daily producer sends
the data set's first day at once, the consumer stores it, the scheduled batch runs at start."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import psycopg
import pytest

from tests.compose.conftest import new_stack
from tests.compose.podman import Podman
from tests.compose.stack import committed_in_topic, raw_offsets, wait_for
from tests.compose.test_compose_lab import TOPIC, drain
from weatherpipe.db.connection import connect
from weatherpipe.kafka.topic_views import KafkaUnavailableError

pytestmark = [pytest.mark.compose, pytest.mark.timeout(3600)]


def first_day(path: Path) -> tuple[str, int]:
    """The earliest event day of the CSV and its number of rows."""
    with path.open(newline="") as fh:
        reader = csv.reader(fh)
        next(reader)
        days = [row[1][:10] for row in reader]
    day = min(days)
    return day, days.count(day)


def test_normal_operation_sends_stores_and_aggregates_the_first_day(
    podman: Podman, images: None, data_dir: Path
) -> None:
    with new_stack(podman, "normal", data_dir) as stack:
        stack.up("kafka", "postgres")
        stack.wait_healthy("kafka")
        stack.wait_healthy("postgres")
        stack.up("generate")
        assert stack.wait_exit("generate") == 0, stack.logs("generate")
        stack.up("consumer", "producer-daily", "batch-scheduled", profile="normal")
        day, rows = first_day(data_dir / "weather_data.csv")

        def sent() -> int:
            try:
                return committed_in_topic(stack.kafka, TOPIC)
            except KafkaUnavailableError:
                return 0  # the topic is being created: its partitions have no leader yet

        wait_for(f"the first day's {rows} records in Kafka", lambda: sent() >= rows, 600)

        def batch_runs() -> int:
            try:
                with connect(stack.database_url) as conn:
                    row = conn.execute(
                        "SELECT count(*) FROM batch_run WHERE status = 'succeeded'"
                    ).fetchone()
            except psycopg.Error:  # the batch has not created its tables yet
                return 0
            return int(row[0]) if row else 0

        wait_for("a scheduled batch run", lambda: batch_runs() > 0, 600)
        drain(stack)

        assert sent() == rows  # one day, not more: the next one is due in 24 h
        assert stack.state("producer-daily")["Running"] is True  # waiting for its next tick
        raw = stack.volume("raw")
        stored = raw_offsets(raw)
        assert sum(stored.values()) == rows
        assert max(stored.values()) == 1
        days = set()
        for path in raw.glob("*/date=*/*.ndjson"):
            for line in path.read_text().splitlines():
                days.add(json.loads(line)["value"]["timestamp"][:10])
        assert days == {day}
