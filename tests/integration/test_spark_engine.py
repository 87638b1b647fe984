"""The Spark engine against the DuckDB engine: one raw zone with every kind of bad line through
both gives identical daily rows and quarantine, locally and on a real standalone Spark cluster
started from the pyspark package's own launcher classes.

Spark starts slowly, so the module shares one SparkSession and the tests are few.
"""

from __future__ import annotations

import json
import math
import os
import random
import re
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from psycopg import sql

from tests.conftest import as_env, changed, free_port
from tests.rawzone_files import Record, Undecodable, event, line_for, write_file
from tests.unit.test_batch_rules import VALUE_CASES
from tests.unit.test_rules_order import TWO_RULE_VALUES
from weatherpipe.batch.duckdb_engine import DuckDBEngine
from weatherpipe.batch.runner import run_once
from weatherpipe.batch.spark_engine import SparkEngine
from weatherpipe.db.connection import connect
from weatherpipe.settings import Settings

pytestmark = pytest.mark.integration

TOPIC = "weather_data_raw"
PLACES = ["Chicago", "San Diego", "Berlin ", "Dallas"]

# Values beyond the shared rule cases: number texts where engines' casts differ, numbers with
# more than the 12 decimals the sums keep, and values only a hand-edited line would hold.
EXTRA_VALUES: list[Any] = [
    {**VALUE_CASES[0], "temperature_c": " 12.5 "},
    {**VALUE_CASES[0], "temperature_c": "1_2.5"},
    {**VALUE_CASES[0], "temperature_c": "1.5d"},
    {**VALUE_CASES[0], "temperature_c": "+5"},
    {**VALUE_CASES[0], "temperature_c": ".5e1"},
    {**VALUE_CASES[0], "temperature_c": "-Infinity"},
    {**VALUE_CASES[0], "temperature_c": "0x10"},
    {**VALUE_CASES[0], "temperature_c": 1e400},
    {**VALUE_CASES[0], "humidity_pct": 18446744073709551616},
    {**VALUE_CASES[0], "wind_speed_kmh": 1.0000000000005},
    {**VALUE_CASES[0], "precipitation_mm": 0.30000000000000004},
    {**VALUE_CASES[0], "location": "Chicago\u0301"},
    {**VALUE_CASES[0], "timestamp": "2024-03-01 14:05:09\n"},
    {**VALUE_CASES[0], "timestamp": " 2024-03-01 14:05:09"},
]
CORRUPT_LINES = [
    "not json",
    "[1, 2]",
    '"just a string"',
    '{"kafka": ',
    '{"kafka": {"topic": "weather_data_raw", "partition": 0, "offset": 1}} trailing',
    json.dumps({"kafka": {"topic": TOPIC, "partition": 2.0, "offset": 1}, "value": {}}),
    json.dumps({"kafka": {"topic": TOPIC, "partition": 0, "offset": 2**64}, "value": {}}),
    json.dumps({"kafka": {"topic": 7, "partition": 0, "offset": 3}, "value": {}}),
    '{"kafka": {"topic": "weather_data_raw", "partition": 1, "offset": 999}, "value": 1}\r',
]


def good_event(rng: random.Random) -> dict[str, Any]:
    return event(
        rng.choice(PLACES),
        f"2024-03-0{rng.randint(1, 3)} {rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}:07",
        round(rng.uniform(-20, 40), rng.choice([1, 3, 14])),
        round(rng.uniform(0, 100), 2),
        round(rng.uniform(0, 20), rng.choice([1, 13])),
        round(rng.uniform(0, 80), 1),
    )


def write_round(raw: Path, rng: random.Random, round_no: int) -> None:
    """Round 1: good records, every rule case and corrupt lines. Round 2: new records plus
    records re-delivered from round 1 (same offsets, must not count again)."""
    base = 1000 * round_no
    good = [Record(0, base + i, good_event(rng)) for i in range(60)]
    odd = [
        Record(0, base + 100 + i, v)
        for i, v in enumerate(VALUE_CASES + EXTRA_VALUES + TWO_RULE_VALUES)
    ]
    odd += [
        Record(0, base + 200, Undecodable("{x")),
        Record(0, base + 201, Undecodable("gA==", "not_utf8")),
    ]
    nan = [
        line_for(TOPIC, Record(0, base + 300 + i, {**VALUE_CASES[0], "humidity_pct": x}))
        for i, x in enumerate([math.nan, math.inf])
    ]
    write_file(raw, TOPIC, good + odd, extra_lines=[*nan, *CORRUPT_LINES, ""])
    again = [Record(1, base + i, good_event(rng)) for i in range(40)]
    if round_no == 2:
        again += [Record(1, 1000 + i, good_event(rng)) for i in range(5)]  # re-delivered
        again += [Record(1, base + 50, good_event(rng))] * 2  # twice in one file
    write_file(raw, TOPIC, again)


@contextmanager
def new_database(pg_url: str, name: str) -> Iterator[str]:
    with connect(pg_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    base, _, _ = pg_url.rpartition("/")
    try:
        yield f"{base}/{name}"
    finally:
        with connect(pg_url, autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


def processed_zone(url: str) -> dict[str, Any]:
    """Everything a run leaves behind that must not depend on the engine."""
    with connect(url) as conn:
        daily = conn.execute("SELECT * FROM daily_weather ORDER BY location, day").fetchall()
        sums = conn.execute(
            "SELECT location, day, observations, temperature_sum, humidity_sum, wind_speed_sum,"
            " precipitation_sum, temperature_min, temperature_max"
            " FROM daily_aggregate ORDER BY location, day"
        ).fetchall()
        quarantine = conn.execute(
            'SELECT file, line, topic, partition, "offset", reason, field, raw FROM quarantine'
            " ORDER BY file, line"
        ).fetchall()
        per_reason = conn.execute(
            "SELECT reason, field, count(*) FROM quarantine GROUP BY reason, field"
            " ORDER BY reason, field"
        ).fetchall()
        files = conn.execute("SELECT path, lines FROM processed_file ORDER BY path").fetchall()
        runs = conn.execute(
            "SELECT files, lines, duplicates, rejected FROM batch_run ORDER BY id"
        ).fetchall()
    return {
        "daily": daily,
        "sums": sums,
        "quarantine": quarantine,
        "per_reason": per_reason,
        "files": files,
        "runs": runs,
    }


@pytest.fixture(scope="module")
def spark_engine() -> Iterator[SparkEngine]:
    engine = SparkEngine("local[2]", driver_memory="1g")
    yield engine
    engine.stop()


@pytest.fixture
def settings_for(platform_settings: Settings, tmp_path: Path) -> Callable[[str], Settings]:
    def make(url: str) -> Settings:
        return changed(
            platform_settings, database_url=url, raw_dir=tmp_path / "raw", batch_lock_wait=60
        )

    return make


def test_spark_and_duckdb_give_the_same_processed_zone(
    spark_engine: SparkEngine,
    pg_url: str,
    settings_for: Callable[[str], Settings],
    unique_name: Callable[[str], str],
    tmp_path: Path,
) -> None:
    rng = random.Random(6)
    with (
        new_database(pg_url, unique_name("duck")) as duck_url,
        new_database(pg_url, unique_name("spark")) as spark_url,
    ):
        for round_no in (1, 2):
            write_round(tmp_path / "raw", rng, round_no)
            run_once(settings_for(duck_url), engine=DuckDBEngine())
            run_once(settings_for(spark_url), engine=spark_engine)
        duck, spark = processed_zone(duck_url), processed_zone(spark_url)

    assert spark == duck
    # The zone really holds what the comparison is about.
    reasons = {reason for reason, _, _ in duck["per_reason"]}
    assert reasons >= {
        "invalid_json",
        "not_utf8",
        "not_an_object",
        "missing_field",
        "empty_location",
        "location_too_long",
        "bad_timestamp",
        "not_numeric",
        "not_finite",
        "out_of_range",
    }
    assert [run[2] for run in duck["runs"]] == [0, 5 + 1]  # re-delivered, then doubled
    assert sum(row[2] for row in duck["daily"]) > 150


# --- a real standalone cluster ------------------------------------------------------------------
def spark_jars() -> Path:
    import pyspark

    return Path(pyspark.__file__).parent / "jars"


def master_status(ui_port: int) -> dict[str, Any]:
    with urllib.request.urlopen(f"http://127.0.0.1:{ui_port}/json/", timeout=5) as response:
        status: dict[str, Any] = json.load(response)
    return status


@pytest.fixture(scope="module")
def spark_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, int]]:
    """A standalone Spark master and one worker on 127.0.0.1; yields the master URL and the
    port of the master's web UI."""
    home = spark_jars().parent
    logs = tmp_path_factory.mktemp("spark-cluster")
    # The worker starts executors from SPARK_HOME/jars; it asks for the Scala version first,
    # which a pip-installed Spark only tells through its jar names.
    core = next(spark_jars().glob("spark-core_*.jar")).name
    scala = re.match(r"spark-core_([0-9.]+)-", core)
    assert scala is not None, core
    env = {
        **os.environ,
        "SPARK_HOME": str(home),
        "SPARK_LOCAL_IP": "127.0.0.1",
        "SPARK_SCALA_VERSION": scala[1],
    }
    port, ui_port = free_port(), free_port()
    classpath = f"{spark_jars()}/*"
    master_cmd = [
        "java", "-Xmx512m", "-cp", classpath, "org.apache.spark.deploy.master.Master",
        "--host", "127.0.0.1", "--port", str(port), "--webui-port", str(ui_port),
    ]  # fmt: skip
    worker_cmd = [
        "java", "-Xmx512m", "-cp", classpath, "org.apache.spark.deploy.worker.Worker",
        f"spark://127.0.0.1:{port}", "--host", "127.0.0.1", "--cores", "1", "--memory", "1g",
        "--webui-port", str(free_port()), "--work-dir", str(logs / "work"),
    ]  # fmt: skip
    procs = []
    try:
        for name, cmd in (("master", master_cmd), ("worker", worker_cmd)):
            with (logs / f"{name}.log").open("wb") as log:
                procs.append(subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env))
        deadline = time.monotonic() + 180
        while True:
            try:
                if master_status(ui_port).get("aliveworkers", 0) >= 1:
                    break
            except OSError:
                pass
            for proc in procs:
                assert proc.poll() is None, (logs / "master.log").read_text()[-3000:]
            assert time.monotonic() < deadline, "the Spark worker did not register in 180 s"
            time.sleep(0.5)
        yield f"spark://127.0.0.1:{port}", ui_port
    finally:
        for proc in reversed(procs):
            proc.terminate()
        for proc in reversed(procs):
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def test_the_batch_runs_on_a_standalone_spark_cluster(
    spark_cluster: tuple[str, int],
    pg_url: str,
    settings_for: Callable[[str], Settings],
    unique_name: Callable[[str], str],
    tmp_path: Path,
) -> None:
    master, ui_port = spark_cluster
    rng = random.Random(8)
    write_round(tmp_path / "raw", rng, 1)
    with (
        new_database(pg_url, unique_name("duck")) as duck_url,
        new_database(pg_url, unique_name("cluster")) as spark_url,
    ):
        run_once(settings_for(duck_url), engine=DuckDBEngine())
        env = {**as_env(settings_for(spark_url)), "SPARK_LOCAL_IP": "127.0.0.1"}
        done = subprocess.run(
            [sys.executable, "-m", "weatherpipe", "batch", "--engine", "spark",
             "--master", master],
            env=env, capture_output=True, text=True, timeout=540, check=False,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr[-3000:]
        assert "spark" in done.stderr
        duck, spark = processed_zone(duck_url), processed_zone(spark_url)
        with connect(spark_url) as conn:
            engines = conn.execute("SELECT engine, status FROM batch_run").fetchall()
    assert engines == [("spark", "succeeded")]
    # The work ran on the cluster: the master saw the application come and go.
    deadline = time.monotonic() + 60
    while not (apps := master_status(ui_port)["completedapps"]) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert [app["name"] for app in apps] == ["weatherpipe-batch"]
    assert spark == duck
    assert duck["quarantine"]
