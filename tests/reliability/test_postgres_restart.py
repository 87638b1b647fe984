"""PostgreSQL restarted while `weatherpipe batch` works: that run fails with a clear message and
leaves nothing behind; the next run succeeds and equals a clean run on a fresh database."""

from __future__ import annotations

import random
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from psycopg import sql

from tests.conftest import as_env, changed, wait_for
from tests.rawzone_files import CITIES, Record, random_event, write_file
from weatherpipe.db.connection import connect
from weatherpipe.db.url import database_url
from weatherpipe.platform.local_postgres import LocalPostgres
from weatherpipe.settings import Settings

pytestmark = [pytest.mark.integration, pytest.mark.reliability]

LINES_PER_FILE = 50_000


def create_database(admin_url: str, name: str) -> str:
    with connect(admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return f"{admin_url.rpartition('/')[0]}/{name}"


def write_raw_zone(raw: Path) -> None:
    """Three partitions of LINES_PER_FILE records over a few days, with a few bad values."""
    rng = random.Random(4)
    for partition in range(3):
        records = []
        for offset in range(LINES_PER_FILE):
            value: Any = random_event(rng)
            if offset % 10_000 == 7:
                value["humidity_pct"] = 140
            records.append(Record(partition, offset, value))
        write_file(raw, "weather_data_raw", records)


def batch(settings: Settings, url: str) -> subprocess.Popen[str]:
    env = as_env(settings)
    env["DATABASE_URL"] = url
    return subprocess.Popen(
        [sys.executable, "-m", "weatherpipe", "batch"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def running(url: str) -> bool:
    try:
        with connect(url) as conn:
            row = conn.execute("SELECT count(*) FROM batch_run WHERE status = 'running'").fetchone()
    except Exception:  # the schema is not there yet
        return False
    return row == (1,)


def table(url: str, query: str) -> list[tuple[Any, ...]]:
    with connect(url) as conn:
        return conn.execute(query).fetchall()


def test_postgres_restart_during_a_batch_fails_cleanly_and_the_rerun_equals_a_clean_run(
    own_postgres: Settings, tmp_path: Path, unique_name: Callable[[str], str]
) -> None:
    raw = tmp_path / "raw"
    write_raw_zone(raw)
    settings = changed(own_postgres, raw_dir=raw)
    admin = database_url(settings)
    url = create_database(admin, unique_name("restart"))
    postgres = LocalPostgres(settings)

    child = batch(settings, url)
    try:
        wait_for(lambda: running(url), "the batch run to be recorded as running")
        assert child.poll() is None
        assert postgres.stop()
        postgres.start(settings.startup_timeout)
        _, err = child.communicate(timeout=300)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    message = " ".join(err.split())  # the console wraps long lines
    assert child.returncode == 1, err
    assert "Traceback" not in err, err
    assert "error:" in message and "PostgreSQL" in message, err
    assert "connection" in message and "run `weatherpipe batch` again" in message, err
    # Nothing of the failed run was kept.
    assert table(url, "SELECT count(*) FROM daily_aggregate") == [(0,)]
    assert table(url, "SELECT count(*) FROM processed_file") == [(0,)]
    assert table(url, "SELECT count(*) FROM quarantine") == [(0,)]

    rerun = batch(settings, url)
    _, err = rerun.communicate(timeout=300)
    assert rerun.returncode == 0, err
    statuses = table(url, "SELECT status FROM batch_run ORDER BY id")
    assert statuses == [("failed",), ("succeeded",)]

    clean = create_database(admin, unique_name("clean"))
    clean_run = batch(settings, clean)
    _, err = clean_run.communicate(timeout=300)
    assert clean_run.returncode == 0, err
    query = "SELECT * FROM daily_weather ORDER BY 1, 2"
    result = table(url, query)
    assert len(result) == len(CITIES) * 9
    assert result == table(clean, query)
    expected_rejects = 3 * LINES_PER_FILE // 10_000
    quarantined = "SELECT reason, field, count(*) FROM quarantine GROUP BY 1, 2"
    assert table(url, quarantined) == [("out_of_range", "humidity_pct", expected_rejects)]
    assert table(url, "SELECT sum(observations) FROM daily_weather") == [
        (3 * LINES_PER_FILE - expected_rejects,)
    ]
