"""Benchmark: produce and consume on the cluster profile (TLS, SCRAM-SHA-512, replication
factor 3, min.insync.replicas 2), side by side with Kafka's ProducerPerformance and
ConsumerPerformance on the same cluster with the same security settings.

Each side logs in with the same login (the producer's for producing, the consumer's for
consuming) over SASL_SSL and trusts the same local CA. The producers send the same number of
records of the same average size with the same guarantees and batching (idempotent, acks=all,
the weatherpipe producer's compression, linger.ms and batch.size); ours reads, validates and
JSON-encodes the CSV on the way. The consumers read the same topic (our producer's output);
ours stores it in a raw zone, ConsumerPerformance discards it. Rounds alternate who goes first.
Prints a markdown table and appends it to bench/results-cluster.md.

    uv run python bench/bench_cluster.py [--rows 500000] [--repeat 2]

The cluster runs under bench/.state-cluster on ports 29192-29194 (brokers) and 29293-29295
(controllers) and is left running for the next run; stop it with
`PLATFORM_PROFILE=cluster STATE_DIR=bench/.state-cluster
KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:29192,127.0.0.1:29193,127.0.0.1:29194
KAFKA_CONTROLLER_PORT=29293 weatherpipe platform down`.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

from weatherpipe import datagen
from weatherpipe.ingest.csv_reader import read_blocks, split_fields
from weatherpipe.ingest.csv_to_topic import produce_all, producer_config
from weatherpipe.ingest.encode import encode
from weatherpipe.ingest.validate import validate
from weatherpipe.kafka.admin import TopicSpec, ensure_topics
from weatherpipe.kafka.security import kafka_connection
from weatherpipe.platform.local_cluster import LocalCluster
from weatherpipe.platform.local_kafka import LocalKafka
from weatherpipe.settings import Settings, load_settings

BENCH = Path(__file__).resolve().parent
STATE = BENCH / ".state-cluster"
RESULTS = BENCH / "results-cluster.md"
PARTITIONS = 3


def cluster_settings() -> Settings:
    return load_settings(
        platform_profile="cluster",
        state_dir=STATE,
        kafka_bootstrap_servers="127.0.0.1:29192,127.0.0.1:29193,127.0.0.1:29194",
        kafka_controller_port=29293,
        kafka_partitions=PARTITIONS,
        local_kafka=True,
        kafka_security_protocol=None,
        kafka_sasl_username=None,
        kafka_sasl_password=None,
        kafka_ssl_ca_location=None,
    )


def job(settings: Settings, name: str, topic: str | None = None) -> Settings:
    """`settings` with a fresh group and topic (or `topic`), granted to the logins as
    `platform up` grants KAFKA_TOPIC and KAFKA_GROUP_ID."""
    tag = f"bench_{name}_{uuid.uuid4().hex[:8]}"
    job_settings = settings.model_copy(update={"kafka_topic": topic or tag, "kafka_group_id": tag})
    LocalCluster(job_settings).grant()
    return job_settings


def average_value_size(csv: Path) -> int:
    block = next(iter(read_blocks(csv)))
    valid, _ = validate(split_fields(block)[0])
    values = encode(valid).values
    return round(sum(map(len, values)) / len(values))


def java(settings: Settings) -> list[str]:
    return [LocalKafka(settings).java(), "-Xmx512m", "-cp", f"{settings.kafka_lib.resolve()}/*"]


def produce_ours(settings: Settings, csv: Path) -> tuple[float, Settings]:
    topic_settings = job(settings, "ours")
    summary = produce_all(topic_settings, csv)
    if not summary.ok:
        raise SystemExit(f"our producer did not deliver everything: {summary.line()}")
    return summary.sent / summary.seconds, topic_settings


def produce_reference(settings: Settings, rows: int, record_size: int) -> float:
    topic_settings = job(settings, "ref")
    ensure_topics(
        kafka_connection(topic_settings, "producer"),
        [TopicSpec(topic_settings.kafka_topic, PARTITIONS, 3)],
    )
    config = producer_config(settings)
    props = {
        "acks": "all",
        "enable.idempotence": "true",
        "compression.type": config.compression,
        "linger.ms": str(config.linger_ms),
        "batch.size": str(config.batch_bytes),
    }
    command = [
        *java(settings),
        "org.apache.kafka.tools.ProducerPerformance",
        *("--topic", topic_settings.kafka_topic),
        *("--num-records", str(rows)),
        *("--record-size", str(record_size)),
        *("--throughput", "-1"),
        *("--producer.config", str(LocalCluster(settings).client_properties("producer"))),
        "--producer-props",
        f"bootstrap.servers={settings.kafka_bootstrap_servers}",
        *(f"{k}={v}" for k, v in props.items()),
    ]
    done = subprocess.run(command, capture_output=True, text=True, check=True, timeout=1800)
    final = done.stdout.strip().splitlines()[-1]
    match = re.match(r"(\d+) records sent, ([\d.]+) records/sec", final)
    if match is None or int(match.group(1)) != rows:
        raise SystemExit(f"unexpected ProducerPerformance output: {final}")
    return float(match.group(2))


def consume_ours(settings: Settings, topic_settings: Settings, rows: int) -> float:
    """`weatherpipe consume` (a subprocess, as a user runs it) with a group of its own."""
    consumer = job(settings, "consume", topic_settings.kafka_topic)
    raw = STATE / f"raw-{uuid.uuid4().hex[:8]}"
    env = {
        **os.environ,
        "PLATFORM_PROFILE": "cluster",
        "STATE_DIR": str(STATE),
        "KAFKA_BOOTSTRAP_SERVERS": settings.kafka_bootstrap_servers,
        "KAFKA_CONTROLLER_PORT": str(settings.kafka_controller_port),
        "KAFKA_TOPIC": consumer.kafka_topic,
        "KAFKA_GROUP_ID": consumer.kafka_group_id,
        "RAW_DIR": str(raw),
        "LOG_LEVEL": "WARNING",
    }
    try:
        out = subprocess.run(
            [sys.executable, "-m", "weatherpipe", "consume", "--until-idle", "2", "--json"],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    finally:
        shutil.rmtree(raw, ignore_errors=True)
    summary: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    if summary["messages"] != rows:
        raise SystemExit(f"our consumer stored {summary['messages']} of {rows}")
    return float(summary["messages_per_second"])


def consume_reference(settings: Settings, topic: str, rows: int) -> float:
    """ConsumerPerformance with the consumer's login, in a group granted to it."""
    consumer = job(settings, "perf", topic)
    out = subprocess.run(
        [
            *java(settings),
            "org.apache.kafka.tools.ConsumerPerformance",
            *("--bootstrap-server", settings.kafka_bootstrap_servers),
            *("--consumer.config", str(LocalCluster(settings).client_properties("consumer"))),
            *("--topic", topic),
            *("--messages", str(rows)),
            *("--group", consumer.kafka_group_id),
            *("--timeout", "60000"),
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    lines = [line for line in out.splitlines() if line.strip()]
    header = [h.strip() for h in lines[-2].split(",")]
    values = [v.strip() for v in lines[-1].split(",")]
    figures = dict(zip(header, values, strict=True))
    # Without joining the group, like ours (from the first assignment to the last record).
    return float(figures["fetch.nMsg.sec"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=500_000, help="rows in the CSV")
    parser.add_argument("--repeat", type=int, default=2, help="rounds of each, alternating")
    parser.add_argument("--stop", action="store_true", help="stop the cluster at the end")
    args = parser.parse_args()

    settings = cluster_settings()
    LocalCluster(settings).start(settings.startup_timeout)
    try:
        measure(settings, args.rows, args.repeat)
    finally:
        if args.stop:
            LocalCluster(settings).stop()


def measure(settings: Settings, rows: int, repeat: int) -> None:
    """Run the rounds; print the table and append it to RESULTS."""
    csv = STATE / f"weather-{rows}.csv"
    if not csv.exists():
        datagen.write_csv(csv, rows, seed=42)
    size = average_value_size(csv)
    print(f"{rows:,} rows of {size} bytes on average, {settings.kafka_bootstrap_servers}")

    rates: dict[str, list[float]] = {k: [] for k in ("ours_p", "ref_p", "ours_c", "ref_c")}
    for n in range(repeat):
        # Alternate who goes first, so neither always gets the quieter moment.
        order = ("ours", "ref") if n % 2 == 0 else ("ref", "ours")
        for who in order:
            if who == "ours":
                rate, produced = produce_ours(settings, csv)
                rates["ours_p"].append(rate)
            else:
                rates["ref_p"].append(produce_reference(settings, rows, size))
        for who in order:  # both read our producer's records
            if who == "ours":
                rates["ours_c"].append(consume_ours(settings, produced, rows))
            else:
                rates["ref_c"].append(consume_reference(settings, produced.kafka_topic, rows))
        print(f"  round {n + 1}: " + ", ".join(f"{k} {v[-1]:,.0f}" for k, v in rates.items()))

    med = {k: statistics.median(v) for k, v in rates.items()}
    config = producer_config(settings)
    load = os.getloadavg()[0]

    def row(label: str, key: str) -> str:
        return f"| {label} | {med[key]:,.0f} | " + ", ".join(f"{r:,.0f}" for r in rates[key]) + " |"

    table = "\n".join(
        [
            f"### {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC — cluster profile (3 controllers, "
            f"3 brokers, SASL_SSL + SCRAM-SHA-512, RF 3, min.insync.replicas 2), "
            f"{rows:,} records of {size} B, acks=all, idempotent, {config.compression}, "
            f"linger.ms={config.linger_ms}, batch.size={config.batch_bytes}; "
            f"{os.cpu_count()} cores, load {load:.1f}",
            "",
            "| client | records/s (median) | rounds |",
            "|---|---:|---|",
            row("weatherpipe produce (CSV read + validate + JSON)", "ours_p"),
            row("Kafka ProducerPerformance (random payload)", "ref_p"),
            f"| **produce ratio** | **{med['ours_p'] / med['ref_p']:.2f}** | |",
            row("weatherpipe consume (raw zone, fsync, commit)", "ours_c"),
            row("Kafka ConsumerPerformance (discards records; fetch.nMsg.sec)", "ref_c"),
            f"| **consume ratio** | **{med['ours_c'] / med['ref_c']:.2f}** | |",
            "",
        ]
    )
    print()
    print(table)
    with RESULTS.open("a", encoding="utf-8") as out:
        out.write(table + "\n")


if __name__ == "__main__":
    main()
