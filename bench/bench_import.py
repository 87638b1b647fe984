"""Benchmark of `weatherpipe import-raw` side by side with the batch over the same lines.

Writes LINES lines in the original project's raw-zone layout, as its at-least-once consumer
leaves them (Python's spaced JSON, runs of one partition at a time, chunks of ROTATE_MB in one
date folder, a few restarts that repeat the lines since the last commit), then measures in one
process, alternating, REPEAT times each:
  - import: `import_raw` of the whole source into an empty raw zone (read, check every line's
    envelope, drop repeats, write and fsync the files), as `weatherpipe import-raw` runs it;
  - again:  the same import once more into the filled raw zone (it adds nothing);
  - batch:  `run_once(full=True)` over the imported raw zone (validate, dedup, aggregate and
            merge into PostgreSQL) - the reference: the work that follows an import.
Prints medians and ratios and writes bench/results-import.md.

    uv run python bench/bench_import.py [--lines 1000000] [--repeat 3]

PostgreSQL: DATABASE_URL when set, else an embedded server started in a temp folder.
"""

from __future__ import annotations

import argparse
import json
import os
import platform as host
import random
import resource
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bench_batch import PLACES, database

from weatherpipe.batch.runner import run_once
from weatherpipe.events import TIMESTAMP_FORMAT
from weatherpipe.rawzone.importer import ImportSummary, import_raw
from weatherpipe.settings import load_settings

TOPIC = "weather_data_raw"
PARTITIONS = 3
START = datetime(2024, 1, 1, tzinfo=UTC)
PRODUCED_MS = 1_732_000_000_000  # the lab producer sends everything within minutes


def cpu_seconds() -> float:
    """CPU time of this process, all its threads included."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    return own.ru_utime + own.ru_stime


def timed(work: Callable[[], object]) -> tuple[float, float]:
    """Wall and CPU seconds of `work()`."""
    wall, cpu = time.perf_counter(), cpu_seconds()
    work()
    return time.perf_counter() - wall, cpu_seconds() - cpu


def write_source(root: Path, lines: int, chunk_bytes: int, seed: int) -> tuple[int, int]:
    """The original's raw zone under `root`: `lines` lines in all, some of them repeats.
    Returns (distinct records, repeated lines)."""
    rng = random.Random(seed)
    folder = root / TOPIC / "2024-11-19"
    folder.mkdir(parents=True)
    next_offset = [0] * PARTITIONS
    written: list[str] = []  # lines since the last commit, for a restart to repeat
    chunk: list[str] = []
    size = 0
    number = 0
    total = repeats = 0

    def flush() -> None:
        nonlocal chunk, size, number
        if chunk:
            number += 1
            (folder / f"chunk-{number:04d}.ndjson").write_text("".join(chunk))
            chunk, size = [], 0

    while total < lines:
        partition = rng.randrange(PARTITIONS)
        run = []
        for _ in range(min(rng.randint(50, 500), lines - total)):
            offset = next_offset[partition]
            next_offset[partition] += 1
            moment = START + timedelta(seconds=rng.randrange(365 * 86_400))
            value = {
                "location": rng.choice(PLACES),
                "timestamp": moment.strftime(TIMESTAMP_FORMAT),
                "temperature_c": round(rng.uniform(-20, 40), 2),
                "humidity_pct": round(rng.uniform(0, 100), 2),
                "precipitation_mm": round(rng.uniform(0, 15), 2),
                "wind_speed_kmh": round(rng.uniform(0, 60), 2),
            }
            kafka = {
                "topic": TOPIC,
                "partition": partition,
                "offset": offset,
                "timestamp_ms": PRODUCED_MS + total,
                "key": value["location"],
            }
            run.append(json.dumps({"kafka": kafka, "value": value}) + "\n")
            total += 1
        if rng.random() < 0.002 and written:  # a restart: everything since the commit again
            repeat = written[: lines - total]
            run = repeat + run
            repeats += len(repeat)
            total += len(repeat)
            written = []
        written += run
        if rng.random() < 0.1:
            written = []  # a commit
        for line in run:
            chunk.append(line)
            size += len(line)
            if size >= chunk_bytes:
                flush()
    flush()
    return total - repeats, repeats


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path(__file__).with_name("results-import.md"))
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-import-") as tmp:
        workdir = Path(tmp)
        source, raw = workdir / "seed", workdir / "raw"
        base = load_settings(raw_dir=raw)
        t0 = time.perf_counter()
        records, repeats = write_source(source, args.lines, int(base.rotate_mb * 2**20), seed=1)
        source_mib = sum(p.stat().st_size for p in source.rglob("*.ndjson")) / 2**20
        print(f"wrote {args.lines:,} lines in {time.perf_counter() - t0:.1f} s")
        settings, stop = database(base, workdir)
        settings = load_settings(**{**settings.model_dump(), "raw_dir": raw})
        max_bytes = int(settings.rotate_mb * 2**20)
        try:
            import_raw(source, raw, max_bytes)  # warm-up: page cache, imports
            run_once(settings, full=True)  # warm-up: schema, roles
            import_times, again_times, batch_times = [], [], []
            summaries: list[ImportSummary] = []
            for _ in range(args.repeat):
                shutil.rmtree(raw)
                import_times.append(
                    timed(lambda: summaries.append(import_raw(source, raw, max_bytes)))
                )
                again_times.append(timed(lambda: import_raw(source, raw, max_bytes)))
                batch_times.append(timed(lambda: run_once(settings, full=True)))
            summary = summaries[-1]
        finally:
            stop()
    assert summary.written == records, summary
    assert summary.repeats == repeats, summary

    (i, ic), (a, _), (b, bc) = (
        (statistics.median(w for w, _ in x), statistics.median(c for _, c in x))
        for x in (import_times, again_times, batch_times)
    )

    def row(name: str, times: list[tuple[float, float]], count: int) -> str:
        wall = statistics.median(w for w, _ in times)
        cpu = statistics.median(c for _, c in times)
        every = ", ".join(f"{w:.2f}" for w, _ in times)
        return f"| {name} | {wall:.2f} | {count / wall:,.0f} | {cpu:.2f} | {every} |"

    rows = "\n".join(
        [
            row("`import-raw` into an empty raw zone", import_times, args.lines),
            row("`import-raw` again (adds nothing)", again_times, args.lines),
            row("`batch --full` over them (reference)", batch_times, records),
        ]
    )
    report = f"""# Import benchmark (`weatherpipe import-raw`)

`uv run python bench/bench_import.py --lines {args.lines} --repeat {args.repeat}`
on {host.node()} ({os.cpu_count()} CPUs, Python {host.python_version()}),
{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, load average at the end {os.getloadavg()[0]:.1f}.
Medians of {args.repeat}; other work ran on the machine at the same time, so single figures
are noisy.

Data: the original project's raw zone, {args.lines:,} lines ({source_mib:,.0f} MiB, spaced
JSON) in {summary.chunks} chunks of ROTATE_MB, {records:,} distinct records of
{PARTITIONS} partitions and {repeats:,} lines repeated by restarts; imported into
{summary.files} files.

| measurement | median wall s | lines/s | median CPU s | all runs, wall s |
|---|---:|---:|---:|---|
{rows}

- wall: import / batch = **{i / b:.2f}x**; repeated import / batch = **{a / b:.2f}x**
- CPU: import / batch = **{ic / bc:.2f}x** (CPU seconds of this process and its threads;
  PostgreSQL's own are not counted). On a busy machine the wall times mostly say how much CPU
  each got: the batch's DuckDB runs a thread per core, the import one.
- the import reads every line, checks its envelope and writes and fsyncs
  {source_mib:,.0f} MiB; the batch reads the imported files and writes ~3,650 rows.
"""
    args.out.write_text(report)
    print(report)


if __name__ == "__main__":
    main()
