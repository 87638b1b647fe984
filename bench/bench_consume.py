"""Benchmark: `weatherpipe consume` into a temporary raw zone vs Kafka's ConsumerPerformance.

Fills a fresh topic with weather-like JSON messages (~150 bytes, keyed by location), then in one
run reads it with Kafka's own `org.apache.kafka.tools.ConsumerPerformance` (same jars as the
local broker) and with `weatherpipe consume --until-idle` (a subprocess, as a user runs it), and
prints a markdown table of msg/s and the ratio. A second topic 3x as large shows that peak
memory does not grow with the number of messages.

Needs a running platform (`weatherpipe platform up`); settings come from the environment.
    uv run python bench/bench_consume.py [--messages 1000000] [--out bench/results-consume.md]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import NewTopic  # type: ignore[attr-defined]
from tree_memory import TreeMemory

from weatherpipe import platform
from weatherpipe.datagen import CITY_NAMES as CITIES
from weatherpipe.kafka.admin import admin_client
from weatherpipe.kafka.security import KafkaConnection
from weatherpipe.settings import Settings, load_settings

PARTITIONS = 3


def fill(settings: Settings, topic: str, count: int) -> float:
    """Create `topic` and write `count` weather events to it; returns seconds taken."""
    admin = admin_client(KafkaConnection(settings.kafka_bootstrap_servers))
    admin.create_topics([NewTopic(topic, num_partitions=PARTITIONS, replication_factor=1)])[
        topic
    ].result(30)
    producer = Producer(
        {
            "bootstrap.servers": settings.kafka_bootstrap_servers,
            "linger.ms": 50,
            "batch.size": 1_000_000,
            "compression.type": "lz4",
            "queue.buffering.max.messages": 1_000_000,
        }
    )
    rng = random.Random(42)
    # A pool of distinct values, reused: building 3M JSON strings would time the generator.
    # Keyed as the producer keys them, `<city>|<day>`.
    events = [
        {
            "location": city,
            "timestamp": f"2024-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d} "
            f"{rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}:{rng.randint(0, 59):02d}",
            "temperature_c": round(rng.uniform(-20, 40), 2),
            "humidity_pct": round(rng.uniform(0, 100), 2),
            "precipitation_mm": round(rng.uniform(0, 20), 2),
            "wind_speed_kmh": round(rng.uniform(0, 60), 2),
        }
        for city in CITIES
        for _ in range(1000)
    ]
    pool = [
        (f"{e['location']}|{str(e['timestamp'])[:10]}".encode(), json.dumps(e).encode())
        for e in events
    ]
    start = time.perf_counter()
    for n in range(count):
        key, value = pool[n % len(pool)]
        while True:
            try:
                producer.produce(topic, value, key)
                break
            except BufferError:
                producer.poll(0.05)
        if n % 10_000 == 0:
            producer.poll(0)
    if producer.flush(120) != 0:
        raise RuntimeError("could not deliver every benchmark message")
    return time.perf_counter() - start


def partition_sizes(settings: Settings, topic: str) -> list[int]:
    """Records in each partition of `topic`."""
    consumer = Consumer({"bootstrap.servers": settings.kafka_bootstrap_servers, "group.id": "-"})
    try:
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        return [
            high - low
            for low, high in (
                consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
                for p in sorted(partitions)
            )
        ]
    finally:
        consumer.close()


def children_cpu_seconds() -> float:
    """User + system CPU seconds of all finished child processes so far."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def consumer_performance(settings: Settings, topic: str, count: int) -> dict[str, float]:
    """Kafka's ConsumerPerformance on `topic`: its figures by column name."""
    cpu = children_cpu_seconds()
    java = shutil.which(
        "java", path=str(settings.java_home / "bin") if settings.java_home else None
    )
    out = subprocess.run(
        [
            java or "java",
            "-Xmx1g",
            "-cp",
            f"{settings.kafka_lib.resolve()}/*",
            "org.apache.kafka.tools.ConsumerPerformance",
            "--bootstrap-server",
            settings.kafka_bootstrap_servers,
            "--topic",
            topic,
            "--messages",
            str(count),
            "--group",
            f"perf-{uuid.uuid4().hex[:8]}",
            "--timeout",
            "60000",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    lines = [line for line in out.splitlines() if line.strip()]
    header = [h.strip() for h in lines[-2].split(",")]
    values = [v.strip() for v in lines[-1].split(",")]
    figures = {
        h: float(v) for h, v in zip(header, values, strict=True) if re.fullmatch(r"[\d.]+", v)
    }
    figures["cpu_seconds"] = children_cpu_seconds() - cpu
    return figures


def ours(settings: Settings, topic: str, raw_dir: Path, workers: int = 1) -> dict[str, Any]:
    """`weatherpipe consume --until-idle --workers N` on `topic` into `raw_dir`: its JSON
    summary."""
    env = dict(os.environ, RAW_DIR=str(raw_dir), KAFKA_TOPIC=topic, LOG_LEVEL="WARNING")
    env["KAFKA_GROUP_ID"] = f"bench-{uuid.uuid4().hex[:8]}"
    start, cpu = time.perf_counter(), children_cpu_seconds()
    proc = subprocess.Popen(
        [
            *(sys.executable, "-m", "weatherpipe", "consume", "--until-idle", "2", "--json"),
            *("--workers", str(workers)),
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    # Sampled from outside: the child's own peak figure starts at this process's size.
    with TreeMemory(proc.pid) as memory:
        out, _ = proc.communicate()
    if proc.returncode != 0:
        raise RuntimeError(f"weatherpipe consume failed ({proc.returncode})")
    summary: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    summary["wall_seconds"] = time.perf_counter() - start
    summary["cpu_seconds"] = children_cpu_seconds() - cpu
    summary["peak_rss_bytes"] = memory.highest
    return summary


def check(raw_dir: Path, topic: str, count: int) -> None:
    """Every benchmark record landed in a finished file (a line count, not a full check)."""
    lines = sum(path.read_bytes().count(b"\n") for path in raw_dir.glob(f"{topic}/date=*/*.ndjson"))
    if lines != count:
        raise RuntimeError(f"raw zone holds {lines} lines, expected {count}")


def rounds(rates: list[float]) -> str:
    """Every round's rate, in the order they ran."""
    return ", ".join(f"{rate:,.0f}" for rate in rates)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--memory-factor", type=int, default=3)
    parser.add_argument("--repeat", type=int, default=3, help="rounds of the speed comparison")
    parser.add_argument(
        "--workers", type=int, default=PARTITIONS, help="consumer processes of the second run"
    )
    parser.add_argument("--out", type=Path, default=Path(__file__).with_name("results-consume.md"))
    args = parser.parse_args()
    settings = load_settings()
    platform.up(settings)
    small, large = args.messages, args.messages * args.memory_factor
    topic = f"bench_consume_{uuid.uuid4().hex[:8]}"
    topic_large = f"{topic}_x{args.memory_factor}"
    print(f"filling {topic} with {small:,} messages…", file=sys.stderr)
    fill_seconds = fill(settings, topic, small)
    print(f"  {small / fill_seconds:,.0f} msg/s; filling {topic_large}…", file=sys.stderr)
    fill(settings, topic_large, large)

    sizes = partition_sizes(settings, topic)
    kafka_runs: list[dict[str, float]] = []
    our_runs: list[dict[str, Any]] = []
    worker_runs: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="bench-raw-") as tmp:
        raw_dir = Path(tmp)
        # Alternate the two, best of each: the machine is shared, so one slow moment should
        # not decide the ratio.
        for n in range(args.repeat):
            print(f"round {n + 1}: ConsumerPerformance…", file=sys.stderr)
            kafka_runs.append(consumer_performance(settings, topic, small))
            print(f"round {n + 1}: weatherpipe consume…", file=sys.stderr)
            our_runs.append(ours(settings, topic, raw_dir))
            check(raw_dir, topic, small)
            shutil.rmtree(raw_dir / topic)
            print(f"round {n + 1}: weatherpipe consume --workers {args.workers}…", file=sys.stderr)
            worker_runs.append(ours(settings, topic, raw_dir, args.workers))
            check(raw_dir, topic, small)
            shutil.rmtree(raw_dir / topic)
        print(f"weatherpipe consume, {large:,} messages…", file=sys.stderr)
        run_large = ours(settings, topic_large, raw_dir)
        check(raw_dir, topic_large, large)

    kafka = max(kafka_runs, key=lambda r: r["fetch.nMsg.sec"])
    run_small = max(our_runs, key=lambda r: float(r["messages_per_second"]))
    run_workers = max(worker_runs, key=lambda r: float(r["messages_per_second"]))
    w = args.workers
    mine_w = float(run_workers["messages_per_second"])
    cpu_w = float(run_workers["cpu_seconds"])
    ref = kafka["fetch.nMsg.sec"]
    mine = float(run_small["messages_per_second"])
    mib = 1024 * 1024
    rss_small = int(run_small["peak_rss_bytes"]) / mib
    rss_large = int(run_large["peak_rss_bytes"]) / mib
    report = f"""# Raw-zone consumer benchmark

{small:,} weather-like JSON messages (~{int(run_small["bytes"]) // small} bytes per stored \
line, {PARTITIONS} partitions, keyed by city and day) on the local single-node Kafka, 2 shared \
cores. Command: `uv run python bench/bench_consume.py --messages {small} --repeat \
{args.repeat}`. Both consumers read the same topic in the same run, alternating, best of \
{args.repeat} rounds each. msg/s excludes joining the group: Kafka's `fetch.nMsg.sec`; ours \
counts from the first record received to the last (fsync and rename of the files finished on \
the way included).

| consumer | messages | msg/s (best) | ratio | all rounds, msg/s |
|---|---:|---:|---:|---|
| Kafka `ConsumerPerformance` (Java, discards records) | {small:,} | {ref:,.0f} | 1.00 | \
{rounds([r["fetch.nMsg.sec"] for r in kafka_runs])} |
| `weatherpipe consume` (writes the raw zone) | {int(run_small["messages"]):,} | {mine:,.0f} | \
{mine / ref:.2f} | {rounds([float(r["messages_per_second"]) for r in our_runs])} |
| `weatherpipe consume --workers {w}` ({w} processes in the group) | \
{int(run_workers["messages"]):,} | {mine_w:,.0f} | **{mine_w / ref:.2f}** | \
{rounds([float(r["messages_per_second"]) for r in worker_runs])} |

CPU time of the whole process (user + system, all threads, JVM start-up and our interpreter
start-up included), the figure the machine's other load disturbs least:

| consumer | CPU seconds | messages per CPU second | ratio |
|---|---:|---:|---:|
| Kafka `ConsumerPerformance` | {kafka["cpu_seconds"]:.1f} | \
{small / kafka["cpu_seconds"]:,.0f} | 1.00 |
| `weatherpipe consume` | {float(run_small["cpu_seconds"]):.1f} | \
{small / float(run_small["cpu_seconds"]):,.0f} | \
{kafka["cpu_seconds"] / float(run_small["cpu_seconds"]):.2f} |
| `weatherpipe consume --workers {w}` | {cpu_w:.1f} | {small / cpu_w:,.0f} | \
{kafka["cpu_seconds"] / cpu_w:.2f} |

Records per partition: {" / ".join(f"{n:,}" for n in sizes)} (keyed by city and day; \
largest {(max(sizes) - min(sizes)) / max(min(sizes), 1):.1%} above the smallest).

Load average while it ran: {os.getloadavg()[0]:.1f} on 2 cores (other work shares the machine).

Peak memory of `weatherpipe consume` (RSS of the process, sampled with psutil):

| messages | files | peak RSS (MiB) | msg/s |
|---:|---:|---:|---:|
| {int(run_small["messages"]):,} | {run_small["files"]} | {rss_small:.0f} | {mine:,.0f} |
| {int(run_large["messages"]):,} | {run_large["files"]} | {rss_large:.0f} | \
{float(run_large["messages_per_second"]):,.0f} |
"""
    print(report)
    args.out.write_text(report)
    print(f"written to {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
