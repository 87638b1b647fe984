"""PostgreSQL SIGKILLed at random moments around the batch's commit: a run that says "done" has
its rows after the restart, a run that does not say so fails with a clear message, the server
comes back at once (its stale postmaster.pid notwithstanding), and the rerun completes exactly.
"""

from __future__ import annotations

import os
import random
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from tests.batch_reference import compute
from tests.conftest import as_env, changed
from tests.integration.test_batch import assert_matches_reference, daily_weather
from tests.rawzone_files import Record, random_event, write_file
from weatherpipe.db.connection import connect
from weatherpipe.db.url import database_url
from weatherpipe.platform.local_postgres import LocalPostgres
from weatherpipe.settings import Settings

pytestmark = [pytest.mark.integration, pytest.mark.reliability]

TOPIC = "weather_data_raw"
RUNS = 10
PARTITIONS = 3
RECORDS_PER_FILE = 1_000
DONE = re.compile(r"batch run (\d+) \(incremental, duckdb\) done in")


def write_round(raw: Path, rng: random.Random, number: int) -> None:
    """One new file per partition, each RECORDS_PER_FILE records after the previous round's."""
    for partition in range(PARTITIONS):
        first = number * RECORDS_PER_FILE
        records = [
            Record(
                partition,
                first + i,
                random_event(rng),
            )
            for i in range(RECORDS_PER_FILE)
        ]
        write_file(raw, TOPIC, records)


def start_batch(settings: Settings, url: str, raw: Path) -> subprocess.Popen[str]:
    env = as_env(settings)
    env.update(DATABASE_URL=url, RAW_DIR=str(raw))
    return subprocess.Popen(
        [sys.executable, "-m", "weatherpipe", "batch"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_for_run(
    url: str, first_id: int, status: str, child: subprocess.Popen[str]
) -> tuple[float, int]:
    """Until a batch run numbered `first_id` or higher shows `status` ('running': recorded,
    the engine starts right after; 'succeeded': committed); returns the moment it was seen
    (time.monotonic()) and the run's number (a crash may make the numbers skip ahead)."""
    deadline = time.monotonic() + 120
    with connect(url, autocommit=True) as conn:
        while True:
            try:
                row = conn.execute(
                    "SELECT min(id) FROM batch_run WHERE id >= %s AND status = %s",
                    (first_id, status),
                ).fetchone()
                if row is not None and row[0] is not None:
                    return time.monotonic(), int(row[0])
            except psycopg.errors.UndefinedTable:  # the first run creates the schema
                pass
            assert time.monotonic() < deadline, f"no batch run from {first_id} was {status}"
            if status == "running":
                assert child.poll() is None, child.communicate()
            time.sleep(0.002)


def next_run_id(url: str) -> int:
    """The lowest number the next batch run can have."""
    with connect(url) as conn:
        if conn.execute("SELECT to_regclass('batch_run')").fetchone() == (None,):
            return 1
        row = conn.execute("SELECT coalesce(max(id), 0) + 1 FROM batch_run").fetchone()
    assert row is not None
    return int(row[0])


@dataclass
class Tally:
    runs: int = 0
    kills: int = 0
    done_before_kill: int = 0
    failed: int = 0
    kept_though_failed: int = 0
    records_checked: int = 0
    lost: int = 0
    doubled: int = 0
    kinds: list[str] = field(default_factory=list)

    def check(self, url: str, raw: Path) -> None:
        """Compare daily_weather with the reference: count observations lost and doubled,
        then require every value to match."""
        expected = compute(raw).daily
        actual = daily_weather(url)
        for key, want in expected.items():
            got = int(actual.get(key, {}).get("observations", 0))
            self.lost += max(0, int(want["observations"]) - got)
            self.doubled += max(0, got - int(want["observations"]))
            self.records_checked += int(want["observations"])
        self.doubled += sum(int(actual[key]["observations"]) for key in actual.keys() - expected)
        assert (self.lost, self.doubled) == (0, 0), self
        assert_matches_reference(url, raw)


def kill_postgres(postgres: LocalPostgres, whole_server: bool) -> None:
    """SIGKILL the server: all its processes at once (as a crash loses its memory), or the
    postmaster alone (its children notice and go, its postmaster.pid stays behind)."""
    pid = postgres.pid()
    assert pid is not None
    if whole_server:
        os.killpg(os.getpgid(pid), signal.SIGKILL)  # pg_ctl starts it as a group leader
    else:
        os.kill(pid, signal.SIGKILL)


def test_postgres_killed_around_the_commit_never_loses_a_run_that_said_done(
    own_postgres: Settings, tmp_path: Path
) -> None:
    raw = tmp_path / "raw"
    settings = changed(own_postgres, raw_dir=raw)
    admin = database_url(settings)
    name = f"pgkill_{os.getpid()}"
    with connect(admin, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = f"{admin.rpartition('/')[0]}/{name}"
    postgres = LocalPostgres(settings)
    rng = random.Random()
    tally = Tally()

    # Runs without a kill: how long from a run's record to its commit, where the kills aim.
    for number in range(2):
        write_round(raw, rng, number)
        first_id = next_run_id(url)
        child = start_batch(settings, url, raw)
        began, run_id = wait_for_run(url, first_id, "running", child)
        aim = wait_for_run(url, run_id, "succeeded", child)[0] - began
        _, err = child.communicate(timeout=300)
        assert child.returncode == 0, err
    tally.check(url, raw)

    for number in range(2, RUNS + 2):
        write_round(raw, rng, number)
        first_id = next_run_id(url)
        child = start_batch(settings, url, raw)
        _, run_id = wait_for_run(url, first_id, "running", child)
        # Around the commit: the engine's last moments, the merge, the commit and just after.
        time.sleep(aim * rng.uniform(0.7, 1.3))
        kill_postgres(postgres, whole_server=number % 2 == 0)
        tally.runs += 1
        tally.kills += 1
        _, err = child.communicate(timeout=300)
        postgres.start(settings.startup_timeout)
        done = DONE.search(" ".join(err.split()))
        if done is not None:
            assert child.returncode == 0, err
            tally.done_before_kill += 1
            tally.kinds.append("done")
            # It said done: every row of it survived the kill.
            with connect(url) as conn:
                status = conn.execute(
                    "SELECT status FROM batch_run WHERE id = %s", (int(done[1]),)
                ).fetchone()
            assert status == ("succeeded",), err
            tally.check(url, raw)
            aim *= 0.8  # aim earlier: the kill came after the commit
        else:
            message = " ".join(err.split())
            assert child.returncode == 1, err
            assert "Traceback" not in err, err
            assert "error:" in message and "run `weatherpipe batch` again" in message, err
            tally.failed += 1
            with connect(url) as conn:
                status = conn.execute(
                    "SELECT status FROM batch_run WHERE id = %s", (run_id,)
                ).fetchone()
            if status == ("succeeded",):  # the commit reached the disk, its answer did not
                tally.kept_though_failed += 1
                tally.kinds.append("kept")
                assert "whether it was kept is unknown" in message, err
            else:
                tally.kinds.append("failed")
            aim *= 1.2  # aim later: the kill came before the end
        rerun = start_batch(settings, url, raw)
        _, err = rerun.communicate(timeout=300)
        assert rerun.returncode == 0, err
        assert DONE.search(" ".join(err.split())) is not None, err
        tally.check(url, raw)

    with connect(url) as conn:
        processed = conn.execute("SELECT count(*) FROM processed_file").fetchone()
        interrupted = conn.execute(
            "SELECT count(*) FROM batch_run WHERE status = 'running'"
        ).fetchone()
    assert processed == ((RUNS + 2) * PARTITIONS,)
    assert interrupted == (0,)
    # Both sides of the commit were hit, or the test would prove nothing about it.
    assert tally.done_before_kill > 0 and tally.failed > 0, tally
    print(f"\nkills around the batch commit: {tally}")  # the figures, with -s


def test_a_killed_server_leaves_no_lock_that_stops_the_next_start(own_postgres: Settings) -> None:
    postgres = LocalPostgres(own_postgres)
    url = database_url(own_postgres)
    for whole_server in (False, True, False):
        kill_postgres(postgres, whole_server)
        assert (postgres.pgdata / "postmaster.pid").exists()
        postgres.start(own_postgres.startup_timeout)  # right after the kill
        with psycopg.connect(url) as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
