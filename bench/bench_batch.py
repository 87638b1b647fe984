"""Benchmark of `weatherpipe batch` (DuckDB engine) against a bare DuckDB GROUP BY.

Writes EVENTS events into about FILES raw files (the raw-zone contract), then measures side by
side in one process, alternating, REPEAT times each:
  - bare:  one DuckDB `SELECT ... GROUP BY` over the same files with read_json (no validation,
           no dedup, no PostgreSQL) - the reference;
  - full:  `run_once(full=True)`: validation, dedup, aggregation AND the PostgreSQL merge;
  - incremental: 1 % new events in new files, then `run_once()`.
Prints medians and ratios and writes bench/results-batch.md.

    uv run python bench/bench_batch.py [--events 1000000] [--files 100] [--repeat 5]

PostgreSQL: DATABASE_URL when set, else an embedded server started in a temp folder.
"""

from __future__ import annotations

import argparse
import os
import platform as host
import random
import socket
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import orjson
from psycopg import sql

from weatherpipe.batch.runner import run_once
from weatherpipe.db.connection import connect
from weatherpipe.events import TIMESTAMP_FORMAT
from weatherpipe.platform.local_postgres import LocalPostgres
from weatherpipe.settings import Settings, load_settings

TOPIC = "weather_data_raw"
PLACES = [
    "Chicago", "San Diego", "Berlin", "Dallas", "Phoenix", "New York", "Houston",
    "Philadelphia", "San Antonio", "San Jose",
]  # fmt: skip
START = datetime(2024, 1, 1, tzinfo=UTC)


def write_files(
    raw: Path,
    events: int,
    files: int,
    first_offset: int,
    seed: int,
    start: datetime = START,
    days: int = 365,
) -> None:
    """`events` events in `files` files over 3 partitions, offsets following `first_offset`,
    timestamps spread over `days` days from `start`."""
    rng = random.Random(seed)
    per_file = max(1, events // files)
    offset = {p: first_offset for p in range(3)}
    written = 0
    index = 0
    while written < events:
        n = min(per_file, events - written)
        partition = index % 3
        first = offset[partition]
        lines = []
        for i in range(n):
            ts = start + timedelta(seconds=rng.randrange(0, days * 86400))
            value = {
                "location": rng.choice(PLACES),
                "timestamp": ts.strftime(TIMESTAMP_FORMAT),
                "temperature_c": round(rng.uniform(-20, 40), 2),
                "humidity_pct": round(rng.uniform(0, 100), 2),
                "precipitation_mm": round(rng.uniform(0, 15), 2),
                "wind_speed_kmh": round(rng.uniform(0, 60), 2),
            }
            kafka = {
                "topic": TOPIC,
                "partition": partition,
                "offset": first + i,
                "timestamp_ms": 1_709_300_000_000,
                "key": value["location"],
            }
            lines.append(orjson.dumps({"kafka": kafka, "value": value}))
        folder = raw / TOPIC / "date=2024-03-01"
        folder.mkdir(parents=True, exist_ok=True)
        name = f"{TOPIC}+{partition:05d}+{first:020d}+{first + n - 1:020d}.ndjson"
        (folder / name).write_bytes(b"\n".join(lines) + b"\n")
        offset[partition] = first + n
        written += n
        index += 1


BARE = """
SELECT value.location AS location,
       CAST(strptime(value.timestamp, '%Y-%m-%d %H:%M:%S') AS DATE) AS day,
       count(*), avg(value.temperature_c), avg(value.humidity_pct), avg(value.wind_speed_kmh),
       sum(value.precipitation_mm), avg(value.precipitation_mm),
       min(value.temperature_c), max(value.temperature_c)
FROM read_json(?, format = 'newline_delimited', columns = {
    'kafka': 'STRUCT(topic VARCHAR, "partition" INTEGER, "offset" BIGINT)',
    'value': 'STRUCT(location VARCHAR, "timestamp" VARCHAR, temperature_c DOUBLE,
                     humidity_pct DOUBLE, precipitation_mm DOUBLE, wind_speed_kmh DOUBLE)'})
GROUP BY ALL
"""


_BARE_DB = duckdb.connect()


def bare(raw: Path) -> int:
    # One connection for every round, as the batch keeps one in-memory DuckDB per process:
    # neither side pays for opening a database and loading the JSON reader in the timing.
    return len(_BARE_DB.execute(BARE, [str(raw / TOPIC / "*" / "*.ndjson")]).fetchall())


def timed(work: Callable[[], object]) -> float:
    start = time.perf_counter()
    work()
    return time.perf_counter() - start


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def database(base: Settings, workdir: Path) -> tuple[Settings, Callable[[], None]]:
    if os.environ.get("DATABASE_URL"):
        return base, lambda: None
    settings = load_settings(
        **{
            **base.model_dump(),
            "state_dir": workdir / "state",
            "postgres_port": free_port(),
            "database_url": None,
            "postgres_password": None,
        }
    )
    server = LocalPostgres(settings)
    server.start(120)
    name = f"bench_{uuid.uuid4().hex[:8]}"
    with connect(server.url("postgres"), autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    settings = load_settings(**{**settings.model_dump(), "database_url": server.url(name)})

    def stop() -> None:
        server.stop()

    return settings, stop


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--files", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--out", type=Path, default=Path(__file__).with_name("results-batch.md"))
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-batch-") as tmp:
        workdir = Path(tmp)
        raw = workdir / "raw"
        t0 = time.perf_counter()
        write_files(raw, args.events, args.files, 0, seed=1)
        print(f"wrote {args.events:,} events in {time.perf_counter() - t0:.1f} s")
        settings, stop = database(load_settings(raw_dir=raw), workdir)
        settings = load_settings(**{**settings.model_dump(), "raw_dir": raw})
        try:
            run_once(settings, full=True)  # warm-up: schema, roles, page cache
            bare_times: list[float] = []
            full_times: list[float] = []
            inc_times: list[float] = []
            groups = bare(raw)
            for _ in range(args.repeat):
                bare_times.append(timed(lambda: bare(raw)))
                full_times.append(timed(lambda: run_once(settings, full=True)))
            extra = max(1, args.events // 100)
            next_day_times: list[float] = []
            for run in range(2 * args.repeat):
                first = args.events + run * extra  # beyond every earlier offset
                if run < args.repeat:  # new events on random days of the year: most rows change
                    write_files(raw, extra, 1, first, seed=100 + run)
                else:  # the next day's events, as the daily producer sends them
                    day = START + timedelta(days=365 + run)
                    write_files(raw, extra, 1, first, seed=100 + run, start=day, days=1)
                start = time.perf_counter()
                # As `batch --every` runs it: the schema was prepared by the first run.
                summary = run_once(settings, prepare=False)
                (inc_times if run < args.repeat else next_day_times).append(
                    time.perf_counter() - start
                )
                assert summary.files == 1 and summary.lines == extra, summary
        finally:
            stop()

    b, f, i, d = (statistics.median(x) for x in (bare_times, full_times, inc_times, next_day_times))
    command = (
        f"uv run python bench/bench_batch.py --events {args.events} --files {args.files} "
        f"--repeat {args.repeat}"
    )

    def runs(times: list[float]) -> str:
        return ", ".join(f"{x:.2f}" for x in times)

    measured = [
        ("bare DuckDB `read_json ... GROUP BY` (reference)", bare_times),
        ("`batch --full` (validate, dedup, aggregate, merge into PostgreSQL)", full_times),
        (f"incremental `batch`, 1 % new data ({extra:,} events on random days, 1 file)", inc_times),
        (
            f"incremental `batch`, 1 % new data ({extra:,} events of the next day, 1 file)",
            next_day_times,
        ),
    ]
    table = "\n".join(
        f"| {name} | {statistics.median(times):.2f} | {runs(times)} |" for name, times in measured
    )
    report = f"""# Batch benchmark (DuckDB engine)

`{command}`
on {host.node()} ({os.cpu_count()} CPUs, Python {host.python_version()},
DuckDB {duckdb.__version__}), {datetime.now(UTC):%Y-%m-%d %H:%M} UTC. Medians of {args.repeat};
other work ran on the machine at the same time, so single figures are noisy.

Data: {args.events:,} events in {args.files} raw files (3 partitions), {groups:,}
(location, day) groups.

| measurement | median s | all runs s |
|---|---:|---|
{table}

- full / bare = **{f / b:.2f}x** (target <= 1.5x)
- incremental / full = **{100 * i / f:.1f} %** (target <= 10 %); new events on random days
  touch most (location, day) rows, so PostgreSQL updates thousands of them
- incremental of the next day's data / full = **{100 * d / f:.1f} %** (normal operation: the
  daily producer's data touches one row per city)

Incremental runs are timed as `batch --every` runs them: the schema and logins were prepared
by the process's first run. Both the batch and the bare query use a DuckDB database opened
before the timing (the batch keeps one per process).
"""
    args.out.write_text(report)
    print(report)


if __name__ == "__main__":
    main()
