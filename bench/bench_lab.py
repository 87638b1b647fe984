"""Benchmark: the lab flow `weatherpipe run --no-dashboard` against the reference tools run back
to back, with the peak memory of every process.

On a fresh topic (empty) with the CSV already written, times `weatherpipe run --no-dashboard`
(a subprocess, as a user runs it; wall time, Python start-up included) while psutil samples the
resident memory of its whole process tree. Then, on the same broker, the sum of:
  - Kafka's ProducerPerformance: as many records of the same average size, acks=all,
    idempotent, the same compression and batching (bench_produce.run_reference);
  - Kafka's ConsumerPerformance reading the topic the lab run filled (bench_consume);
  - a bare DuckDB `GROUP BY` over the raw files the lab run wrote (bench_batch.BARE).
Each reference is counted twice: by its own figure (records / its records/s; ConsumerPerformance's
fetch time; the query run a second time), so JVM start-up and joining the group are not held
against them, and as run (the command's wall time, start-up included, as ours is). The ratios
are ours / each sum (lower is better). Also the CPU seconds of every process and of the broker
(on 2 cores a run cannot take less than half its CPU seconds), and the partition sizes.

With --large N (e.g. 10000000) a second lab run on N rows follows: wall time, its ratio to the
first run's and the peak memory of each process (run it once: it takes minutes).

Needs a running platform (`weatherpipe platform up`); settings come from the environment.
    uv run python bench/bench_lab.py [--rows 1000000] [--large 10000000]
        [--out bench/results-lab.md]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import psutil
from bench_batch import BARE
from bench_consume import children_cpu_seconds, consumer_performance, partition_sizes
from bench_produce import average_value_size, run_reference
from tree_memory import TreeMemory

from weatherpipe import platform
from weatherpipe.platform.local_kafka import LocalKafka
from weatherpipe.settings import Settings, load_settings

HERE = Path(__file__).resolve().parent
MIB = 1024 * 1024


@dataclass
class LabRun:
    rows: int
    topic: str
    raw_dir: Path
    wall: float
    stages: list[dict[str, Any]]
    peaks: dict[int, tuple[str, int]]
    cpu: dict[int, float]
    broker_cpu: float


def lab_run(settings: Settings, workdir: Path, rows: int) -> LabRun:
    """`weatherpipe run --no-dashboard --json` on a fresh topic, the CSV of `rows` present."""
    csv = workdir / f"weather-{rows}.csv"
    subprocess.run(
        [sys.executable, "-m", "weatherpipe", "generate", "--rows", str(rows), "--out", str(csv)],
        check=True,
        capture_output=True,
    )
    topic = f"bench_lab_{uuid.uuid4().hex[:8]}"
    raw_dir = workdir / f"raw-{rows}"
    env = dict(
        os.environ,
        CSV_PATH=str(csv),
        RAW_DIR=str(raw_dir),
        KAFKA_TOPIC=topic,
        KAFKA_GROUP_ID=f"bench_lab_{uuid.uuid4().hex[:8]}",
        LOG_LEVEL="WARNING",
    )
    broker = broker_process(settings)
    broker_before = cpu_seconds(broker)
    start = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "weatherpipe", "run", "--no-dashboard", "--json"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    with TreeMemory(proc.pid) as memory:
        out, _ = proc.communicate()
    wall = time.perf_counter() - start
    broker_cpu = cpu_seconds(broker) - broker_before
    if proc.returncode != 0:
        raise SystemExit(f"weatherpipe run failed ({proc.returncode}): {out}")
    summary = json.loads(out.strip().splitlines()[-1])
    csv.unlink()
    return LabRun(
        rows, topic, raw_dir, wall, summary["stages"], memory.peaks, memory.cpu, broker_cpu
    )


def broker_process(settings: Settings) -> psutil.Process | None:
    """The local broker (its pid file), whose CPU time the lab run adds to."""
    pid = LocalKafka(settings).pid()
    return psutil.Process(pid) if pid is not None else None


def cpu_seconds(proc: psutil.Process | None) -> float:
    if proc is None:
        return 0.0
    times = proc.cpu_times()
    return float(times.user + times.system)


@dataclass
class Reference:
    """One reference: its seconds by its own figure (start-up left out), the wall time of the
    whole run as a user starts it (the JVM's start-up, joining the group; DuckDB's connection
    and first query), its CPU seconds (start-up included) and the broker's meanwhile."""

    seconds: float
    wall: float
    cpu: float
    broker_cpu: float


def bare_groupby(raw_dir: Path, topic: str) -> Reference:
    """The bare DuckDB `GROUP BY` over the raw files: a fresh connection's first query (wall),
    then the same query again (its own figure, and its CPU time)."""
    files = str(raw_dir / topic / "*" / "*.ndjson")
    start = time.perf_counter()
    db = duckdb.connect()
    db.execute(BARE, [files]).fetchall()  # loads the JSON reader
    wall = time.perf_counter() - start
    start, cpu = time.perf_counter(), time.process_time()
    db.execute(BARE, [files]).fetchall()
    return Reference(time.perf_counter() - start, wall, time.process_time() - cpu, 0.0)


def measured(
    broker: psutil.Process | None, work: Callable[[], float | dict[str, float]]
) -> tuple[float | dict[str, float], float, float, float]:
    """`work()`'s result, wall seconds, CPU seconds of the child processes it ran and of the
    broker meanwhile."""
    cpu, broker_cpu, start = children_cpu_seconds(), cpu_seconds(broker), time.perf_counter()
    result = work()
    return (
        result,
        time.perf_counter() - start,
        children_cpu_seconds() - cpu,
        cpu_seconds(broker) - broker_cpu,
    )


# The lab flow spawns its batch process first (it prepares while records stream), then its
# consumer.
SPAWNED = ("spawned child: the batch", "spawned child: the consumer")


def memory_table(run: LabRun) -> list[str]:
    named = dict(run.peaks)
    spawned = sorted(pid for pid, (name, _rss) in named.items() if name == "spawned child")
    for pid, label in zip(spawned, SPAWNED, strict=False):
        named[pid] = (label, named[pid][1])
    lines = ["| process | peak RSS (MiB) | CPU s |", "|---|---:|---:|"]
    for pid, (name, rss) in sorted(named.items(), key=lambda p: -p[1][1]):
        lines.append(f"| `{name}` | {rss / MIB:,.0f} | {run.cpu.get(pid, 0.0):.1f} |")
    busy = sum(run.cpu.values()) + run.broker_cpu
    lines.append(f"| the Kafka broker (during the run) | | {run.broker_cpu:.1f} |")
    lines += [
        "",
        f"CPU time of the run and the broker: {busy:.1f} s over {run.wall:.1f} s wall "
        f"({busy / run.wall:.2f} cores busy of 2).",
    ]
    return lines


def cpu_lines(run: LabRun, references: list[Reference]) -> list[str]:
    """CPU seconds of ours and of the references, and what two cores allow at best."""
    ours = sum(run.cpu.values()) + run.broker_cpu
    theirs = sum(r.cpu + r.broker_cpu for r in references)
    wall = sum(r.seconds for r in references)
    return [
        f"CPU seconds (every process, and the broker's meanwhile): ours {ours:.1f}, the "
        f"references {theirs:.1f} (ProducerPerformance {references[0].cpu:.1f} + broker "
        f"{references[0].broker_cpu:.1f}, ConsumerPerformance {references[1].cpu:.1f} + "
        f"broker {references[1].broker_cpu:.1f}, DuckDB {references[2].cpu:.1f}; the JVM's "
        f"start-up included). On 2 cores ours cannot take less than {ours / 2:.1f} s, "
        f"{ours / 2 / wall:.2f}x the references' {wall:.1f} s, however well its stages "
        "overlap.",
    ]


def stage_line(run: LabRun) -> str:
    """Each stage with its time and when it ran (seconds after the flow started)."""
    parts = []
    for s in run.stages:
        start, seconds = s["started"], s["seconds"]
        parts.append(f"{s['name']} {seconds:.1f} s ({start:.1f} to {start + seconds:.1f})")
    return ", ".join(parts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--large", type=int, default=0, help="rows of a second, large lab run")
    parser.add_argument("--out", type=Path, default=HERE / "results-lab.md")
    args = parser.parse_args()
    settings = load_settings()
    platform.up(settings)
    rows = args.rows
    with tempfile.TemporaryDirectory(prefix="bench-lab-") as tmp:
        workdir = Path(tmp)
        print(f"bench lab: weatherpipe run on {rows:,} rows…", file=sys.stderr, flush=True)
        run = lab_run(settings, workdir, rows)
        sizes = partition_sizes(settings, run.topic)
        print("bench lab: ProducerPerformance…", file=sys.stderr, flush=True)
        csv = workdir / "sample.csv"
        subprocess.run(
            [sys.executable, "-m", "weatherpipe", "generate", "--rows", "100000", "--out", csv],
            check=True,
            capture_output=True,
        )
        record_size = average_value_size(csv)
        broker = broker_process(settings)
        rate, wall, cpu, broker_cpu = measured(
            broker, lambda: run_reference(settings, rows, record_size)
        )
        assert isinstance(rate, float)
        produced = Reference(rows / rate, wall, cpu, broker_cpu)
        print("bench lab: ConsumerPerformance…", file=sys.stderr, flush=True)
        figures, wall, cpu, broker_cpu = measured(
            broker, lambda: consumer_performance(settings, run.topic, rows)
        )
        assert isinstance(figures, dict)
        consumed = Reference(figures["fetch.time.ms"] / 1000, wall, cpu, broker_cpu)
        print("bench lab: bare DuckDB GROUP BY…", file=sys.stderr, flush=True)
        references = [produced, consumed, bare_groupby(run.raw_dir, run.topic)]
        large = None
        if args.large:
            print(f"bench lab: weatherpipe run on {args.large:,} rows…", file=sys.stderr)
            large = lab_run(settings, workdir, args.large)
    reference = sum(r.seconds for r in references)
    as_run = sum(r.wall for r in references)
    spread = (max(sizes) - min(sizes)) / min(sizes) if min(sizes) else float("inf")
    report = [
        f"# Lab flow vs Kafka's and DuckDB's own tools, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
        "",
        f"{rows:,} rows (CSV present, topic empty), local single-node Kafka, 2 shared cores, "
        f"load average {os.getloadavg()[0]:.1f} at the end. Command: `uv run python "
        f"bench/bench_lab.py --rows {rows}{f' --large {args.large}' if args.large else ''}`.",
        "",
        "Each reference counted twice: by its own figure, start-up left out (ProducerPerformance"
        ": records / its records/s; ConsumerPerformance: its fetch time; DuckDB: the query run a "
        "second time), and as run, the wall time of the command start to end (the JVM's start-up"
        " and joining the group; DuckDB's connection and first query). Ours is always as run.",
        "",
        "| run | seconds, own figure | seconds, as run |",
        "|---|---:|---:|",
        f"| `weatherpipe run --no-dashboard` | | **{run.wall:.1f}** |",
        f"| ProducerPerformance, {rows:,} x {record_size} B, acks=all, lz4 | "
        f"{references[0].seconds:.1f} | {references[0].wall:.1f} |",
        f"| ConsumerPerformance, {rows:,} records | {references[1].seconds:.1f} | "
        f"{references[1].wall:.1f} |",
        f"| bare DuckDB `GROUP BY` over the raw files | {references[2].seconds:.1f} | "
        f"{references[2].wall:.1f} |",
        f"| sum of the references | {reference:.1f} | {as_run:.1f} |",
        f"| **ratio** ours / sum (target ≤ 1.0) | **{run.wall / reference:.2f}** | "
        f"**{run.wall / as_run:.2f}** |",
        "",
        *cpu_lines(run, references),
        "",
        f"Stages of ours (seconds, and when after the flow's start): {stage_line(run)}. "
        "Produce and consume overlap; the wall time adds Python's start-up.",
        "",
        f"Partition sizes of the topic: {' / '.join(f'{s:,}' for s in sizes)} "
        f"(largest {spread:.1%} above the smallest).",
        "",
        f"Peak RSS and CPU time of every process of `weatherpipe run` ({rows:,} rows; target "
        "≤ 400 MiB each):",
        "",
        *memory_table(run),
        "",
    ]
    if large is not None:
        report += [
            f"## {large.rows:,} rows",
            "",
            f"`weatherpipe run --no-dashboard`: **{large.wall:.1f} s** wall, "
            f"**{large.wall / run.wall:.1f}x** the {rows:,}-row run (target ≤ "
            f"{large.rows / rows * 1.1:.0f}x). Stages: {stage_line(large)}.",
            "",
            *memory_table(large),
            "",
        ]
    text = "\n".join(report)
    print(text)
    args.out.write_text(text)
    print(f"written to {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
