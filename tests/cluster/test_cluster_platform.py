"""The cluster profile as `platform up` leaves it: six nodes and a quorum leader in `status`,
topics with three replicas and min.insync.replicas 2, and a PostgreSQL that requires TLS."""

from __future__ import annotations

import json
import subprocess
import sys

import psycopg
import pytest
from confluent_kafka.admin import ConfigResource, ResourceType  # type: ignore[attr-defined]

from tests.cluster.pipeline import run
from tests.conftest import as_env
from weatherpipe.datagen import write_csv
from weatherpipe.db.connection import connect
from weatherpipe.db.url import database_url
from weatherpipe.kafka.admin import admin_client
from weatherpipe.kafka.security import kafka_connection
from weatherpipe.settings import Settings

pytestmark = [pytest.mark.integration, pytest.mark.cluster]


def test_status_lists_every_node_and_the_quorum_leader(cluster_settings: Settings) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "weatherpipe", "platform", "status", "--json"],
        capture_output=True,
        text=True,
        check=False,
        env=as_env(cluster_settings),
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    kafka = json.loads(result.stdout)["kafka"]
    assert kafka["running"] is True
    nodes = {n["node_id"]: n for n in kafka["nodes"]}
    assert {i: n["role"] for i, n in nodes.items()} == {
        1: "broker",
        2: "broker",
        3: "broker",
        101: "controller",
        102: "controller",
        103: "controller",
    }
    assert all(n["running"] and n["pid"] for n in nodes.values())
    ports = [n["port"] for n in nodes.values() if n["role"] == "broker"]
    assert ",".join(f"127.0.0.1:{p}" for p in ports) == cluster_settings.kafka_bootstrap_servers
    voters = {v["node_id"]: v["status"] for v in kafka["quorum"]["voters"]}
    assert set(voters) == {101, 102, 103}
    assert kafka["quorum"]["leader"] in voters
    assert sorted(voters.values()) == ["Follower", "Follower", "Leader"]


def test_topics_have_three_replicas_and_two_must_acknowledge(job_settings: Settings) -> None:
    write_csv(job_settings.csv_path, 1_000, seed=40)
    code, err = run(job_settings, "produce")
    assert code == 0, err
    admin = admin_client(kafka_connection(job_settings, "admin"), log_level=0)
    topic = job_settings.kafka_topic
    for name in (topic, topic + ".dlq"):
        described = admin.list_topics(name, timeout=10).topics[name]
        assert all(len(p.replicas) == 3 for p in described.partitions.values())
        resource = ConfigResource(ResourceType.TOPIC, name)
        configs = admin.describe_configs([resource])[resource].result(30)
        assert configs["min.insync.replicas"].value == "2"


def test_postgres_requires_tls_and_scram(cluster_settings: Settings) -> None:
    url = database_url(cluster_settings)
    assert "sslmode=verify-full" in url
    with connect(url) as conn:
        ssl_on, version = conn.execute(
            "SELECT ssl, version FROM pg_stat_ssl WHERE pid = pg_backend_pid()"
        ).fetchone() or (False, None)
        method = conn.execute("SHOW password_encryption").fetchone()
    assert ssl_on and version in ("TLSv1.2", "TLSv1.3")
    assert method == ("scram-sha-256",)
    plain = url.split("?")[0] + "?sslmode=disable"
    with pytest.raises(psycopg.OperationalError, match="no encryption"):
        connect(plain).close()
