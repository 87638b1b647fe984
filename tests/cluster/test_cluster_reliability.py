"""Nodes of the cluster profile SIGKILLed while the pipeline runs: nothing acknowledged is lost,
nothing is doubled, and the pipeline goes on.

- A broker leading partitions dies in the middle of `weatherpipe produce` of 200k rows and is
  restarted: the topic holds exactly the CSV's rows (as a multiset), and its partitions are
  fully replicated again.
- The broker coordinating the raw-zone consumer's group (and leading a partition) dies in the
  middle of `weatherpipe consume` and is restarted: the raw zone holds every offset of the
  topic exactly once, with the CSV's rows.
- The KRaft quorum's leader dies: another controller leads, `platform status` says so, and a
  produce and consume run as usual.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator

import pytest

from tests.cluster.pipeline import (
    csv_rows,
    in_sync_replicas,
    kill,
    leaders,
    raw_zone,
    run,
    start,
    topic_offsets,
    topic_rows,
    watermarks,
)
from tests.conftest import as_env, wait_for
from weatherpipe.datagen import write_csv
from weatherpipe.kafka.admin import admin_client
from weatherpipe.kafka.security import kafka_connection
from weatherpipe.platform.local_cluster import LocalCluster
from weatherpipe.settings import Settings

pytestmark = [pytest.mark.integration, pytest.mark.reliability, pytest.mark.cluster]

ROWS = 200_000


@pytest.fixture(scope="module")
def produced(
    cluster_settings: Settings, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Settings, int, str]]:
    """`weatherpipe produce` of 200k rows during which the broker leading the most partitions
    of the topic is SIGKILLed, then restarted. Yields the job's settings, the killed broker's
    id and the producer's stderr."""
    folder = tmp_path_factory.mktemp("produced")
    settings = cluster_settings.model_copy(
        update={
            "kafka_topic": "weather_broker_kill",
            "kafka_group_id": "raw_broker_kill",
            "csv_path": folder / "weather.csv",
            "raw_dir": folder / "raw",
        }
    )
    write_csv(settings.csv_path, ROWS, seed=20)
    cluster = LocalCluster(settings)
    cluster.grant()
    # Small batches: the send lasts long enough for the broker to die in the middle of it.
    producer = start(settings, "produce", PRODUCER_BATCH_BYTES="16384", PRODUCER_LINGER_MS="1")
    try:
        # Written, not committed: the producer's first transaction holds all 200k rows.
        with watermarks(settings, settings.kafka_topic, uncommitted=True) as written:
            wait_for(lambda: sum(written().values()) >= ROWS // 10, "the first rows on the topic")
            assert producer.poll() is None, "the producer finished before the broker died"
            # Not every row written yet (reading the records back would take longer than the
            # rest of the send).
            assert sum(written().values()) < ROWS
        led = Counter(leaders(settings, settings.kafka_topic).values())
        victim = cluster.node(led.most_common(1)[0][0])
        kill(cluster, victim)
        cluster.start_node(victim, settings.startup_timeout)
        _, err = producer.communicate(timeout=300)
    finally:
        if producer.poll() is None:
            producer.kill()
            producer.wait()
    assert producer.returncode == 0, err
    yield settings, victim.node_id, err


def test_broker_killed_during_produce_every_row_on_the_topic_once(
    produced: tuple[Settings, int, str],
) -> None:
    settings, victim, err = produced
    summary = " ".join(err.split())  # the console wraps long lines
    assert f"sent {ROWS:,} to {settings.kafka_topic}, quarantined 0" in summary, err
    assert "Traceback" not in err
    expected = csv_rows(settings.csv_path)
    found = topic_rows(settings, settings.kafka_topic)
    assert sum(found.values()) == ROWS
    assert found == expected
    # The restarted broker caught up: every partition has its three replicas in sync again.
    wait_for(
        lambda: all(
            isr == [1, 2, 3] for isr in in_sync_replicas(settings, settings.kafka_topic).values()
        ),
        f"broker {victim} back in every in-sync replica set",
    )


def test_broker_killed_during_consume_every_offset_stored_once(
    produced: tuple[Settings, int, str],
) -> None:
    settings, _, _ = produced
    topic, group = settings.kafka_topic, settings.kafka_group_id
    cluster = LocalCluster(settings)
    # Many small files and batches: the run lasts long enough to die in the middle of it, and
    # files are published and committed while the broker is away.
    consumer = start(
        settings,
        "consume",
        "--until-idle",
        "20",
        "--rotate-mb",
        "0.25",
        "--batch-size",
        "1000",
    )
    try:
        wait_for(
            lambda: sum(raw_zone(settings.raw_dir, topic)[0].values()) >= 20_000,
            "the first raw files",
        )
        assert consumer.poll() is None, "the consumer finished before the broker died"
        assert sum(raw_zone(settings.raw_dir, topic)[0].values()) < ROWS
        admin = admin_client(kafka_connection(settings, "admin"), log_level=0)
        described = admin.describe_consumer_groups([group])[group].result(30)
        victim = cluster.node(described.coordinator.id)
        assert victim.node_id in leaders(settings, topic).values()
        kill(cluster, victim)
        cluster.start_node(victim, settings.startup_timeout)
        _, err = consumer.communicate(timeout=300)
    finally:
        if consumer.poll() is None:
            consumer.kill()
            consumer.wait()
    assert consumer.returncode == 0, err
    assert "Traceback" not in err
    offsets, rows = raw_zone(settings.raw_dir, topic)
    doubled = [k for k, n in offsets.items() if n > 1]
    assert not doubled, f"{len(doubled)} offsets stored twice, e.g. {doubled[:5]}"
    assert set(offsets) == topic_offsets(settings, topic)
    assert rows == csv_rows(settings.csv_path)


def test_quorum_leader_killed_the_pipeline_goes_on_and_status_names_the_new_leader(
    job_settings: Settings,
) -> None:
    cluster = LocalCluster(job_settings)
    quorum = cluster.quorum()
    assert quorum is not None and quorum.leader is not None
    victim = cluster.node(quorum.leader)
    kill(cluster, victim)
    try:
        write_csv(job_settings.csv_path, 20_000, seed=21)
        code, err = run(job_settings, "produce")
        assert code == 0, err
        code, err = run(job_settings, "consume", "--until-idle", "3")
        assert code == 0, err
        offsets, rows = raw_zone(job_settings.raw_dir, job_settings.kafka_topic)
        assert max(offsets.values()) == 1
        assert rows == csv_rows(job_settings.csv_path)

        def reported() -> dict[str, object]:
            code, out = _status_json(job_settings)
            assert code == 0, out  # the cluster serves clients: the platform is up
            return json.loads(out)

        wait_for(
            lambda: reported()["kafka"]["quorum"] is not None,  # type: ignore[index]
            "the quorum's report",
        )
        kafka = reported()["kafka"]
        nodes = {n["node_id"]: n for n in kafka["nodes"]}  # type: ignore[index]
        assert not nodes[victim.node_id]["running"]
        assert all(n["running"] for i, n in nodes.items() if i != victim.node_id)
        leader = kafka["quorum"]["leader"]  # type: ignore[index]
        assert leader in {c.node_id for c in cluster.controllers} - {victim.node_id}
    finally:
        cluster.start_node(victim, job_settings.startup_timeout)
    wait_for(
        lambda: (
            (q := cluster.quorum()) is not None
            and all(v.lag == 0 for v in q.voters)
            and len(q.voters) == 3
        ),
        "the restarted controller to catch up",
    )


def _status_json(settings: Settings) -> tuple[int, str]:
    result = subprocess.run(
        [sys.executable, "-m", "weatherpipe", "platform", "status", "--json"],
        capture_output=True,
        text=True,
        check=False,
        env=as_env(settings),
        timeout=120,
    )
    return result.returncode, result.stdout if result.returncode == 0 else result.stderr
