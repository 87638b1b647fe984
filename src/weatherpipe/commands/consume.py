"""`weatherpipe consume`: store every Kafka record exactly once in the raw zone."""

from __future__ import annotations

import json
import signal
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Final

import typer

from weatherpipe.commands.startup import configure
from weatherpipe.errors import TransientError
from weatherpipe.rawzone.naming import PATH_TEMPLATE
from weatherpipe.ui.console import say

if TYPE_CHECKING:
    from confluent_kafka.admin import ClusterMetadata  # type: ignore[attr-defined]

    from weatherpipe.kafka.security import KafkaConnection
    from weatherpipe.rawzone.consume_loop import ConsumeOptions, ConsumeStats

# How long the first question to Kafka may go unanswered before `consume` gives up.
PROBE_SECONDS = 5.0


UntilIdle = Annotated[
    float | None,
    typer.Option(
        "--until-idle",
        metavar="SECONDS",
        min=0.1,
        help="Finish the files and exit once no record arrived for SECONDS (the lab flow). "
        "Default CONSUME_UNTIL_IDLE; unset: run until SIGTERM or Ctrl-C.",
    ),
]
RawDir = Annotated[
    Path | None,
    typer.Option("--raw-dir", metavar="DIR", help="Root of the raw zone (default RAW_DIR)."),
]
Topic = Annotated[
    str | None,
    typer.Option("--topic", metavar="NAME", help="Topic to read (default KAFKA_TOPIC)."),
]
Group = Annotated[
    str | None,
    typer.Option("--group", metavar="ID", help="Consumer group (default KAFKA_GROUP_ID)."),
]
RotateMb = Annotated[
    float | None,
    typer.Option(
        "--rotate-mb",
        metavar="MIB",
        min=0.001,
        help="Finish a file once it passes this many MiB (default ROTATE_MB).",
    ),
]
RotateSeconds = Annotated[
    float | None,
    typer.Option(
        "--rotate-seconds",
        metavar="SECONDS",
        min=0.1,
        help="Finish a file once it is this old (default ROTATE_SECONDS).",
    ),
]
BatchSize = Annotated[
    int | None,
    typer.Option(
        "--batch-size",
        metavar="N",
        min=1,
        max=1_000_000,
        help="Most records taken from Kafka per call (default CONSUME_BATCH_SIZE).",
    ),
]
Workers = Annotated[
    int | None,
    typer.Option(
        "--workers",
        metavar="N",
        min=1,
        max=64,
        help="Run this many consumer processes in the group, each owning some partitions "
        "(more cores, same exactly-once files; at most one per partition is used). "
        "Default CONSUME_WORKERS.",
    ),
]
AsJson = Annotated[
    bool, typer.Option("--json", help="Print the summary as one JSON object on stdout.")
]

HELP: Final = f"""Store every Kafka record exactly once in the raw zone.

    Each record becomes one NDJSON line in a file named

    \b
      {PATH_TEMPLATE}

    A file is written in RAW_DIR/.tmp, fsynced and renamed into place when the date changes,
    it passes ROTATE_MB or ROTATE_SECONDS, or on exit; only then is its offset committed. On
    start each partition resumes after the highest offset found in the raw zone, so a crash or
    kill at any moment neither loses nor doubles a record. A consumer restarted on the same
    host for the same RAW_DIR rejoins the group as the same member and takes its partitions
    over at once. Values that are not JSON or not UTF-8 are stored too, marked with
    "value_error". SIGTERM and Ctrl-C finish the files and exit 0; with --until-idle it exits 0
    only once the raw zone holds every record the topic has. A write that fails (a full disk)
    publishes nothing: the consumer exits 1 naming the file and the free space, and the next
    run resumes after the last published file.
    """


def run(
    until_idle: UntilIdle = None,
    raw_dir: RawDir = None,
    topic: Topic = None,
    group: Group = None,
    rotate_mb: RotateMb = None,
    rotate_seconds: RotateSeconds = None,
    batch_size: BatchSize = None,
    workers: Workers = None,
    as_json: AsJson = False,
) -> None:
    """Store every Kafka record exactly once in the raw zone (the command's help is `HELP`)."""
    # Imported here: the Kafka client is heavy, and every command's start pays for imports.
    from weatherpipe.kafka.security import kafka_connection
    from weatherpipe.rawzone.consume_loop import ConsumeOptions

    settings = configure()
    options = ConsumeOptions.from_settings(
        settings,
        raw_dir=raw_dir,
        topic=topic,
        rotate_mb=rotate_mb,
        rotate_seconds=rotate_seconds,
        batch_size=batch_size,
        until_idle=until_idle,
    )
    group_id = group or settings.kafka_group_id
    connection = kafka_connection(settings, "consumer")
    # A refused login fails here, not in a silent retry loop; no answer fails here too.
    metadata = _require_kafka(connection)
    count = _worker_count(metadata, options.topic, workers or settings.consume_workers)
    if count > 1:
        from weatherpipe.rawzone.workers import WorkerPlan, run_workers

        plan = WorkerPlan(
            connection, group_id, options, settings.kafka_group_instance_id, settings.log_level
        )
        with _progress() as show:
            stats = run_workers(plan, count, on_progress=show)
    else:
        stats = _consume_alone(connection, group_id, options, settings.kafka_group_instance_id)
    _print_summary(stats, options, as_json, workers=count)


def _consume_alone(
    connection: KafkaConnection, group_id: str, options: ConsumeOptions, member: str | None
) -> ConsumeStats:
    """One consumer in this process, until SIGTERM, Ctrl-C or --until-idle."""
    from weatherpipe.rawzone.consume_loop import raw_zone_consumer

    with raw_zone_consumer(connection, group_id, options, member) as consumer:
        consumer.stop_on(signal.SIGTERM, signal.SIGINT)
        with _progress() as show:
            consumer.on_progress = show
            return consumer.run()


def _require_kafka(connection: KafkaConnection) -> ClusterMetadata:
    """The cluster's metadata; one clear error if no broker answers within PROBE_SECONDS
    (rather than the client's retries, one log line each), and `KafkaLoginError` saying what
    to change if the brokers refuse the login."""
    from weatherpipe.kafka.admin import cluster_metadata

    metadata = cluster_metadata(connection, timeout=PROBE_SECONDS)
    if metadata is None:
        raise TransientError(
            f"No Kafka broker answered at {connection.bootstrap_servers} within "
            f"{PROBE_SECONDS:g} s. Start the local one with `weatherpipe platform up` (or point "
            "KAFKA_BOOTSTRAP_SERVERS at a running broker) and run `weatherpipe consume` again."
        )
    return metadata


def _worker_count(metadata: ClusterMetadata, topic: str, wanted: int) -> int:
    """`wanted`, but no more than the topic has partitions (an extra member would own none)."""
    if wanted <= 1:
        return 1
    found = metadata.topics.get(topic)
    if found is None or found.error is not None or not found.partitions:
        return wanted  # not created yet: members wait for it, as a single consumer does
    if len(found.partitions) < wanted:
        say(
            (
                f"{topic} has {len(found.partitions)} partitions: running that many workers "
                f"instead of {wanted}",
                "yellow",
            )
        )
    return min(wanted, len(found.partitions))


@contextmanager
def _progress() -> Iterator[Callable[[ConsumeStats], None]]:
    """A live progress line (drawn on a terminal only)."""
    from weatherpipe.ui.progress import activity

    with activity("waiting for partitions…") as shown:

        def show(stats: ConsumeStats) -> None:
            sink = stats.sink
            shown.describe(
                f"{sink.written:,} records written, {sink.messages:,} of them in "
                f"{sink.files:,} finished files ({sink.bytes / 1_048_576:,.1f} MiB)"
            )

        yield show


def _describe(stats: ConsumeStats) -> str:
    return (
        f"{stats.sink.messages:,} messages in {stats.sink.files:,} files, "
        f"{stats.sink.bytes / 1_048_576:,.1f} MiB"
    )


def _timing(stats: ConsumeStats) -> str:
    """The rate over the time records were arriving, and the wall time apart from it."""
    busy = stats.consuming_seconds
    rate = (
        f"{stats.rate:,.0f} msg/s from the first record to the last ({busy:.1f} s); "
        if busy > 0
        else ""
    )
    return f"{rate}{stats.seconds:.1f} s in all"


def _print_summary(
    stats: ConsumeStats, options: ConsumeOptions, as_json: bool, workers: int = 1
) -> None:
    if as_json:
        typer.echo(json.dumps({**stats.as_dict(), "workers": workers}))
    sink = stats.sink
    errors = ", ".join(f"{n} {reason}" for reason, n in sorted(sink.value_errors.items()))
    rotations = ", ".join(f"{n} {r}" for r, n in sink.rotations.as_dict().items() if n)
    say(
        ("consumed", "green"),
        f" {_describe(stats)} into {options.raw_dir / options.topic}"
        + (f" by {workers} workers" if workers > 1 else "")
        + f"; {_timing(stats)}"
        + (f"; values marked: {errors}" if errors else "")
        + (f"; files finished by {rotations}" if rotations else ""),
    )
