"""The bad-input corpus (`corpus/`, outcomes in `corpus/manifest.json`) through the real
`weatherpipe produce` and `weatherpipe batch`: every broken CSV gives a clear error or its bad
lines on the dead-letter topic with their reason; every broken raw line is quarantined with its
reason; no valid row or line is lost."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import orjson
import pytest
from confluent_kafka import Consumer, KafkaError, TopicPartition
from psycopg import sql

from tests import batch_reference
from tests.conftest import as_env
from tests.reliability.corpus import make_corpus
from weatherpipe.db.connection import connect
from weatherpipe.settings import Settings

pytestmark = [pytest.mark.integration, pytest.mark.reliability]

CORPUS = Path(__file__).resolve().parent / "corpus"
MANIFEST: dict[str, dict[str, Any]] = json.loads((CORPUS / "manifest.json").read_text())
CSV_FILES = sorted(p for p in MANIFEST if p.startswith("csv/"))
RAW_FILES = sorted(p for p in MANIFEST if p.startswith("raw/"))
PARALLEL = 4  # produce runs at once: much of each run is waiting for the broker


@pytest.fixture(scope="module")
def produced(
    platform_settings: Settings,
) -> dict[str, tuple[str, subprocess.CompletedProcess[str]]]:
    """Every corpus CSV sent by `weatherpipe produce` to a topic of its own: path -> (topic,
    finished process)."""

    def produce(path: str) -> tuple[str, subprocess.CompletedProcess[str]]:
        topic = unique("corpus")
        env = as_env(platform_settings)
        env.update(CSV_PATH=str(CORPUS / path), KAFKA_TOPIC=topic, COLUMNS="300")
        done = subprocess.run(
            [sys.executable, "-m", "weatherpipe", "produce"],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        return topic, done

    with ThreadPoolExecutor(PARALLEL) as pool:
        return dict(zip(CSV_FILES, pool.map(produce, CSV_FILES), strict=True))


def unique(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:10]}"


def read_topic(settings: Settings, topic: str) -> list[Any] | None:
    """Every record value of `topic` (JSON), None if the topic does not exist."""
    consumer = Consumer(
        {
            "bootstrap.servers": settings.kafka_bootstrap_servers,
            "group.id": f"read-{topic}",
            "enable.partition.eof": True,
        }
    )
    try:
        # All topics: asking for one by name would create it (the broker auto-creates).
        meta = consumer.list_topics(timeout=10).topics.get(topic)
        if meta is None or meta.error is not None:
            return None
        # Read to each partition's end as the client reports it: the markers that end the
        # producer's transactions take offsets, so offsets do not count records.
        remaining = set(meta.partitions)
        consumer.assign([TopicPartition(topic, p, 0) for p in remaining])
        values = []
        deadline = time.monotonic() + 60
        while remaining:
            assert time.monotonic() < deadline, f"{topic}: partitions {remaining} not read"
            for msg in consumer.consume(1000, timeout=0.2):
                error = msg.error()
                if error is not None and error.code() == KafkaError._PARTITION_EOF:
                    remaining.discard(msg.partition())
                    continue
                assert error is None, error
                values.append(orjson.loads(msg.value()))
        return values
    finally:
        consumer.close()


def test_the_committed_corpus_is_what_make_corpus_makes() -> None:
    built = make_corpus.build()
    on_disk = sorted(
        p.relative_to(CORPUS).as_posix()
        for folder in ("csv", "raw")
        for p in (CORPUS / folder).rglob("*")
        if p.is_file()
    )
    assert on_disk == sorted(built)
    for path, (content, _) in built.items():
        assert (CORPUS / path).read_bytes() == content, path
    assert (CORPUS / "manifest.json").read_bytes() == make_corpus.manifest()
    assert len(CSV_FILES) + len(RAW_FILES) >= 25


@pytest.mark.parametrize("path", CSV_FILES)
def test_csv_gives_a_clear_error_or_quarantines_its_bad_lines(
    path: str,
    produced: dict[str, tuple[str, subprocess.CompletedProcess[str]]],
    platform_settings: Settings,
) -> None:
    expected = MANIFEST[path]
    topic, done = produced[path]
    message = " ".join(done.stderr.split())
    assert done.returncode == expected["exit"], done.stderr
    assert "Traceback" not in done.stderr
    if expected["exit"] != 0:
        for part in [Path(path).name, *expected["message"]]:
            assert part in message, f"{part!r} not in: {message}"
        assert read_topic(platform_settings, topic) is None  # nothing was sent
        return
    events = read_topic(platform_settings, topic)
    dead = read_topic(platform_settings, topic + ".dlq")
    assert events is not None and dead is not None
    assert len(events) == expected["valid"]
    assert [[d["line"], d["reason"], d["field"]] for d in dead] == expected["dlq"]
    if "locations" in expected:
        assert sorted({e["location"] for e in events}) == expected["locations"]
    assert all(d["source"].endswith(Path(path).name) and d["detail"] for d in dead)
    assert f"sent {expected['valid']:,} to {topic}" in message
    assert f"quarantined {len(expected['dlq']):,}" in message
    blank = expected.get("blank", 0)
    assert (f"blank line{'s' if blank > 1 else ''} skipped" in message) == bool(blank)
    if blank:
        assert f"({blank:,} blank line" in message


@pytest.fixture(scope="module")
def batched(
    platform_settings: Settings,
    pg_url: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[str, Path, subprocess.CompletedProcess[str]]]:
    """The corpus raw zone aggregated by one `weatherpipe batch` run into a new database:
    (database URL, raw folder, finished process)."""
    raw = tmp_path_factory.mktemp("corpus") / "raw"
    shutil.copytree(CORPUS / "raw", raw)
    name = unique("corpus")
    with connect(pg_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = f"{pg_url.rpartition('/')[0]}/{name}"
    env = as_env(platform_settings)
    env.update(RAW_DIR=str(raw), DATABASE_URL=url, COLUMNS="300")
    done = subprocess.run(
        [sys.executable, "-m", "weatherpipe", "batch"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    yield url, raw, done
    with connect(pg_url, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


def quarantined(url: str, path: str) -> list[list[Any]]:
    relative = path.removeprefix("raw/")
    with connect(url) as conn:
        rows = conn.execute(
            "SELECT line, reason, field FROM quarantine WHERE file = %s ORDER BY line",
            (relative,),
        ).fetchall()
    return [list(row) for row in rows]


@pytest.mark.parametrize("path", RAW_FILES, ids=[Path(p).name for p in RAW_FILES])
def test_raw_file_quarantines_each_bad_line_with_its_reason(
    path: str, batched: tuple[str, Path, subprocess.CompletedProcess[str]]
) -> None:
    url, _, done = batched
    assert done.returncode == 0, done.stderr
    assert quarantined(url, path) == MANIFEST[path]["quarantine"]


def test_raw_corpus_aggregates_every_valid_line_once(
    batched: tuple[str, Path, subprocess.CompletedProcess[str]],
) -> None:
    url, raw, done = batched
    assert done.returncode == 0, done.stderr
    expected: Counter[str] = Counter()
    for path in RAW_FILES:
        expected[MANIFEST[path]["location"]] += MANIFEST[path]["aggregated"]
    with connect(url) as conn:
        found = dict(
            conn.execute(
                "SELECT location, sum(observations)::int FROM daily_weather GROUP BY 1"
            ).fetchall()
        )
        total_rejected = conn.execute("SELECT count(*) FROM quarantine").fetchone()
    assert found == dict(expected)
    assert total_rejected == (sum(len(MANIFEST[p]["quarantine"]) for p in RAW_FILES),)
    # The manifest agrees with the independent plain-Python reading of the contract.
    reference = batch_reference.compute(raw)
    assert sorted(reference.rejected) == sorted(
        (p.removeprefix("raw/"), line, reason, field)
        for p in RAW_FILES
        for line, reason, field in MANIFEST[p]["quarantine"]
    )
    by_location: Counter[str] = Counter()
    for (location, _), row in reference.daily.items():
        by_location[location] += int(row["observations"])
    assert by_location == expected
