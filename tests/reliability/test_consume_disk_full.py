"""The raw zone's disk fills up while `weatherpipe consume` writes: the consumer stops with one
clear message and publishes no half-written file; once space is freed, the next run stores
every offset exactly once and the batch's `daily_weather` equals an independent computation."""

from __future__ import annotations

import os
import random
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import orjson
import pytest
from confluent_kafka import Producer

from tests.conftest import as_env
from tests.integration.test_batch import assert_matches_reference
from tests.integration.test_consume import assert_exactly_once, consume_env, create_topic
from weatherpipe.db.connection import connect
from weatherpipe.rawzone import naming
from weatherpipe.settings import Settings

pytestmark = [pytest.mark.integration, pytest.mark.reliability]

PARTITIONS = 3
RECORDS = 120_000
# Partition 0 gets most records, so it passes ROTATE_MB (32 MiB) and publishes a file well
# before the disk is full: the rerun must resume after a published file, not from the start.
SHARES = (0.7, 0.15, 0.15)
DISK_MB = 256
FREE_MB = 72  # what the user's own files leave of DISK_MB; the records need about 125 MiB
CITIES = ("Chicago", "Houston", "Phoenix", "Dallas", "San Jose", "New York", "Austin")


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A tmpfs of DISK_MB MiB, unmounted after the test."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root (as on the project's machines and in CI)")
    mount_point = tmp_path / "disk"
    mount_point.mkdir()
    subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={DISK_MB}m", "tmpfs", str(mount_point)],
        check=True,
        capture_output=True,
    )
    try:
        yield mount_point
    finally:
        if subprocess.run(["umount", str(mount_point)], check=False).returncode != 0:
            subprocess.run(["umount", "--lazy", str(mount_point)], check=True)


def produce(settings: Settings, topic: str) -> list[tuple[int, int]]:
    """RECORDS weather events of about 1 KiB, spread over the partitions by SHARES; returns
    the (partition, offset) of each as Kafka acknowledged it."""
    rng = random.Random(11)
    delivered: list[tuple[int, int]] = []
    failed: list[str] = []

    def on_delivery(err: object, msg: object) -> None:
        if err is not None:
            failed.append(str(err))
        else:
            delivered.append((msg.partition(), msg.offset()))  # type: ignore[attr-defined]

    producer = Producer({"bootstrap.servers": settings.kafka_bootstrap_servers, "linger.ms": 20})
    for n in range(RECORDS):
        city = CITIES[n % len(CITIES)]
        value = orjson.dumps(
            {
                "location": city,
                "timestamp": f"2024-03-{rng.randint(1, 9):02d} {rng.randint(0, 23):02d}:14:05",
                "temperature_c": round(rng.uniform(-10, 35), 1),
                "humidity_pct": round(rng.uniform(20, 95), 1),
                "precipitation_mm": round(rng.uniform(0, 12), 2),
                "wind_speed_kmh": round(rng.uniform(0, 40), 1),
                "station_note": f"{n:08d}" * 110,
            }
        )
        partition = rng.choices(range(PARTITIONS), SHARES)[0]
        while True:
            try:
                producer.produce(
                    topic, value, city.encode(), partition=partition, on_delivery=on_delivery
                )
                break
            except BufferError:
                producer.poll(0.05)
        producer.poll(0)
    assert producer.flush(120) == 0
    assert not failed, failed[:3]
    return delivered


def consume(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "weatherpipe", "consume", "--until-idle", "3"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_disk_full_during_consume_stops_clearly_and_the_rerun_stores_every_offset_once(
    platform_settings: Settings,
    fresh_database: str,
    small_disk: Path,
    unique_name: Callable[[str], str],
) -> None:
    topic, group = unique_name("diskfull"), unique_name("g")
    create_topic(platform_settings, topic, PARTITIONS)
    delivered = produce(platform_settings, topic)
    raw = small_disk / "raw"
    # The user's own files leave FREE_MB MiB of the disk.
    ballast = small_disk / "other-files.bin"
    with ballast.open("wb") as handle:
        handle.truncate(0)
        for _ in range(DISK_MB - FREE_MB):
            handle.write(b"\0" * (1 << 20))
    env = consume_env(platform_settings, raw, topic, group)

    full = consume(env)
    message = " ".join(full.stderr.split())  # the console wraps long lines
    unwrapped = "".join(full.stderr.split())  # ... and long paths within them
    assert full.returncode == 1, full.stderr
    assert "Traceback" not in full.stderr, full.stderr
    assert message.count("error:") == 1, full.stderr
    assert "Could not write to raw file" in message or "Could not flush raw file" in message
    assert f"rawfile{naming.temp_dir(raw)}/{topic}+0000" in unwrapped, full.stderr
    assert "No space left on device (errno 28)" in message, full.stderr
    assert f"MiB free of {DISK_MB:,.1f} MiB" in message, full.stderr
    assert "Free some space there" in message, full.stderr
    assert "run `weatherpipe consume` again" in message, full.stderr
    published = sorted(raw.glob(f"{topic}/date=*/*.ndjson"))
    assert published, "no file was published before the disk was full"
    assert list(naming.temp_dir(raw).iterdir()) == []  # the half-written file is gone

    ballast.unlink()  # the user frees space
    again = consume(env)
    assert again.returncode == 0, again.stderr
    assert all(path.exists() for path in published)  # kept, and resumed after
    assert_exactly_once(raw, topic, delivered)

    batch_env = as_env(platform_settings)
    batch_env.update(RAW_DIR=str(raw), DATABASE_URL=fresh_database)
    batch = subprocess.run(
        [sys.executable, "-m", "weatherpipe", "batch"],
        env=batch_env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert batch.returncode == 0, batch.stderr
    assert_matches_reference(fresh_database, raw)
    with connect(fresh_database) as conn:
        counted = conn.execute("SELECT sum(observations) FROM daily_weather").fetchone()
        quarantined = conn.execute("SELECT count(*) FROM quarantine").fetchone()
    assert counted == (len(delivered),)
    assert quarantined == (0,)
