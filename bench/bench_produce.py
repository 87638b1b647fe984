"""Benchmark: `weatherpipe produce` against Kafka's own ProducerPerformance, side by side.

Both send the same number of records of the same average size to the same local broker, with
acks=all, idempotence and the same compression and batching, in one run; ours also commits a
transaction per 250,000 records (and reads and writes its ledger). Ours reads,
validates and JSON-encodes the CSV on the way; ProducerPerformance sends pre-made random
payloads. Prints a markdown table and appends it to bench/results-produce.md.

    uv run python bench/bench_produce.py [--rows 1000000] [--repeat 2] [--use-env]

By default a broker of its own runs under bench/.state on ports 29092/29093 (left running for
the next run; stop it with `STATE_DIR=bench/.state KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:29092
KAFKA_CONTROLLER_PORT=29093 weatherpipe platform down`). --use-env uses the environment's
settings instead (a broker you started).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import re
import statistics
import subprocess
import time
from pathlib import Path

from weatherpipe import datagen
from weatherpipe.ingest.csv_reader import read_blocks, split_fields
from weatherpipe.ingest.csv_to_topic import produce_all, producer_config
from weatherpipe.ingest.encode import encode
from weatherpipe.ingest.validate import validate
from weatherpipe.kafka.admin import TopicSpec, ensure_topics
from weatherpipe.kafka.security import KafkaConnection
from weatherpipe.platform.local_kafka import LocalKafka
from weatherpipe.settings import Settings, load_settings

BENCH = Path(__file__).resolve().parent
STATE = BENCH / ".state"
RESULTS = BENCH / "results-produce.md"


def bench_settings(use_env: bool) -> Settings:
    if use_env:
        return load_settings()
    return load_settings(
        state_dir=STATE,
        kafka_bootstrap_servers="127.0.0.1:29092",
        kafka_controller_port=29093,
        local_kafka=True,
    )


def average_value_size(csv: Path) -> int:
    """Mean size in bytes of the JSON values of the file's first block."""
    block = next(iter(read_blocks(csv)))
    valid, _ = validate(split_fields(block)[0])
    values = encode(valid).values
    return round(sum(map(len, values)) / len(values))


def run_ours(settings: Settings, csv: Path) -> tuple[float, int]:
    topic = f"bench_ours_{time.time_ns()}"
    summary = produce_all(settings.model_copy(update={"kafka_topic": topic}), csv)
    if not summary.ok:
        raise SystemExit(f"our producer did not deliver everything: {summary.line()}")
    return summary.sent / summary.seconds, summary.sent


def run_reference(settings: Settings, rows: int, record_size: int) -> float:
    topic = f"bench_ref_{time.time_ns()}"
    ensure_topics(
        KafkaConnection(settings.kafka_bootstrap_servers),
        [TopicSpec(topic, settings.kafka_partitions, 1)],
    )
    config = producer_config(settings)
    props = {
        "bootstrap.servers": settings.kafka_bootstrap_servers,
        "acks": "all",
        "enable.idempotence": "true",
        "compression.type": config.compression,
        "linger.ms": str(config.linger_ms),
        "batch.size": str(config.batch_bytes),
    }
    command = [
        LocalKafka(settings).java(),
        "-cp",
        f"{settings.kafka_lib}/*",
        "org.apache.kafka.tools.ProducerPerformance",
        "--topic",
        topic,
        "--num-records",
        str(rows),
        "--record-size",
        str(record_size),
        "--throughput",
        "-1",
        "--producer-props",
        *(f"{k}={v}" for k, v in props.items()),
    ]
    done = subprocess.run(command, capture_output=True, text=True, check=True, timeout=900)
    final = done.stdout.strip().splitlines()[-1]
    match = re.match(r"(\d+) records sent, ([\d.]+) records/sec", final)
    if match is None or int(match.group(1)) != rows:
        raise SystemExit(f"unexpected ProducerPerformance output: {final}")
    return float(match.group(2))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows in the CSV")
    parser.add_argument("--repeat", type=int, default=2, help="runs of each, alternating")
    parser.add_argument("--use-env", action="store_true", help="use the environment's settings")
    args = parser.parse_args()

    settings = bench_settings(args.use_env)
    if settings.manages_kafka:
        LocalKafka(settings).start(settings.startup_timeout)
    csv = STATE / f"weather-{args.rows}.csv"
    if not csv.exists():
        datagen.write_csv(csv, args.rows, seed=42)
    size = average_value_size(csv)
    print(
        f"{args.rows:,} rows, average value {size} bytes, broker {settings.kafka_bootstrap_servers}"
    )

    ours: list[float] = []
    reference: list[float] = []
    for run in range(args.repeat):
        # Alternate who goes first, so neither always gets the quieter moment.
        order = ("ours", "reference") if run % 2 == 0 else ("reference", "ours")
        for who in order:
            if who == "ours":
                rate, sent = run_ours(settings, csv)
                assert sent == args.rows
                ours.append(rate)
            else:
                reference.append(run_reference(settings, args.rows, size))
            print(
                f"  run {run + 1} {who}: {(ours if who == 'ours' else reference)[-1]:,.0f} rows/s"
            )

    ours_rate, ref_rate = statistics.median(ours), statistics.median(reference)
    config = producer_config(settings)
    load = os.getloadavg()[0]
    table = "\n".join(
        [
            f"### {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC — {args.rows:,} records of "
            f"{size} B, acks=all, idempotent, {config.compression}, linger.ms={config.linger_ms}, "
            f"batch.size={config.batch_bytes}; {os.cpu_count()} cores, load {load:.1f}",
            "",
            "| producer | rows/s (median of runs) | runs |",
            "|---|---:|---|",
            "| weatherpipe produce (CSV read + validate + JSON; transactions of 250,000) | "
            f"{ours_rate:,.0f} | " + ", ".join(f"{r:,.0f}" for r in ours) + " |",
            f"| Kafka ProducerPerformance (random payload) | {ref_rate:,.0f} | "
            + ", ".join(f"{r:,.0f}" for r in reference)
            + " |",
            f"| **ratio** | **{ours_rate / ref_rate:.2f}** | target ≥ 0.6 |",
            "",
        ]
    )
    print()
    print(table)
    with RESULTS.open("a", encoding="utf-8") as out:
        out.write(table + "\n")


if __name__ == "__main__":
    main()
