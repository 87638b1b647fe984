"""A batch process killed with SIGKILL inside its merge transaction leaves the processed zone as
it was; the next run does the work and the result equals a clean run's."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from psycopg import sql

from tests.conftest import as_env, changed, wait_for
from tests.integration.test_batch import snapshot, write_round
from weatherpipe.batch.runner import APPLICATION_NAME, run_once
from weatherpipe.db.connection import connect
from weatherpipe.settings import Settings

pytestmark = pytest.mark.integration


def batch_backends(url: str, waiting_on_lock: bool = False) -> int:
    with connect(url) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s"
            " AND datname = current_database()"
            + (" AND wait_event_type = 'Lock'" if waiting_on_lock else ""),
            (APPLICATION_NAME,),
        ).fetchone()
    return int(row[0]) if row else 0


def values(url: str) -> list[tuple[Any, ...]]:
    return [row[:-1] for row in snapshot(url)]  # without xmin


@pytest.mark.reliability
def test_sigkill_inside_the_merge_transaction_then_rerun_equals_a_clean_run(
    platform_settings: Settings,
    fresh_database: str,
    pg_url: str,
    unique_name: Callable[[str], str],
    tmp_path: Path,
) -> None:
    raw = tmp_path / "raw"
    settings = changed(platform_settings, database_url=fresh_database, raw_dir=raw)
    rng = random.Random(3)
    offsets = {0: 0, 1: 0, 2: 0}
    write_round(raw, rng, offsets, 200)
    run_once(settings)
    write_round(raw, rng, offsets, 200)
    before = snapshot(fresh_database)

    # Hold a lock that the batch needs only at the end of its merge transaction (marking the
    # files processed): the batch blocks there, its daily rows already written but uncommitted.
    with connect(fresh_database) as blocker:
        blocker.execute("LOCK TABLE processed_file IN EXCLUSIVE MODE")
        env = as_env(settings)
        child = subprocess.Popen(
            [sys.executable, "-m", "weatherpipe", "batch"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        try:
            wait_for(
                lambda: batch_backends(fresh_database, waiting_on_lock=True) == 1,
                "the batch to block inside its transaction",
                timeout=60,
            )
            with connect(fresh_database) as conn:
                running = conn.execute(
                    "SELECT count(*) FROM batch_run WHERE status = 'running'"
                ).fetchone()
                touched = conn.execute(
                    "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a USING (pid)"
                    " WHERE a.application_name = %s AND l.relation = 'daily_aggregate'::regclass"
                    " AND l.mode = 'RowExclusiveLock' AND l.granted",
                    (APPLICATION_NAME,),
                ).fetchone()
            assert running == (1,)
            assert touched == (1,)  # the merge has written daily rows, uncommitted
            os.kill(child.pid, signal.SIGKILL)
            assert child.wait(timeout=30) == -signal.SIGKILL
        finally:
            if child.poll() is None:
                child.kill()
                child.wait()
        blocker.rollback()
    wait_for(lambda: batch_backends(fresh_database) == 0, "the killed batch's sessions to end", 60)
    assert snapshot(fresh_database) == before

    rerun = run_once(settings)
    assert rerun.files == 3
    with connect(fresh_database) as conn:
        statuses = conn.execute("SELECT status FROM batch_run ORDER BY id").fetchall()
        assert conn.execute("SELECT count(*) FROM processed_file").fetchone() == (6,)
    assert statuses == [("succeeded",), ("failed",), ("succeeded",)]

    clean_db = unique_name("clean")
    with connect(pg_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(clean_db)))
    try:
        clean_url = f"{pg_url.rpartition('/')[0]}/{clean_db}"
        clean = changed(settings, database_url=clean_url)
        run_once(clean)
        assert values(fresh_database) == values(clean_url)
    finally:
        with connect(pg_url, autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(clean_db))
            )
