"""The local cluster profile for the tests marked `cluster`: 3 KRaft controllers, 3 brokers and
a PostgreSQL requiring TLS, started once per session in a temporary state folder on free ports.

The tests reach it as users do: `weatherpipe` subprocesses with the cluster profile's settings
in their environment (each job logging in with its own generated login), and in-process
clients built from the same settings."""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.conftest import SHARED_KAFKA_LIB, running_platform
from weatherpipe.platform.local_cluster import LocalCluster
from weatherpipe.platform.processes import port_is_free
from weatherpipe.settings import Settings


def free_port_run(count: int) -> int:
    """The first of `count` consecutive free ports (the controllers listen on such a run).

    Below Linux's ephemeral range (32768 and up): a client that keeps reconnecting to a killed
    broker's port could otherwise be given that very port as its own and connect to itself,
    and the restarted broker would find its port taken."""
    while True:
        first = random.randint(20_000, 32_000)
        if all(port_is_free(first + i) for i in range(count)):
            return first


def cluster_overrides(state_dir: Path) -> dict[str, object]:
    """Settings of an isolated cluster profile under `state_dir`; the security settings are
    left to their defaults (the profile's own logins and CA), as a user leaves them."""
    return {
        "platform_profile": "cluster",
        "state_dir": state_dir,
        "kafka_bootstrap_servers": ",".join(f"127.0.0.1:{free_port_run(1)}" for _ in range(3)),
        "kafka_controller_port": free_port_run(3),
        "postgres_port": free_port_run(1),
        "kafka_lib_dir": SHARED_KAFKA_LIB,
        "local_kafka": True,
        "database_url": None,
        "postgres_password": None,
        "kafka_security_protocol": None,
        "kafka_sasl_username": None,
        "kafka_sasl_password": None,
        "kafka_ssl_ca_location": None,
    }


@pytest.fixture(scope="session")
def cluster_settings() -> Iterator[Settings]:
    """Settings of the running cluster profile, shared by the whole session."""
    with running_platform(cluster_overrides, "weatherpipe-cluster-") as settings:
        yield settings


@pytest.fixture
def job_settings(
    cluster_settings: Settings, unique_name: Callable[[str], str], tmp_path: Path
) -> Settings:
    """The cluster's settings with a topic, group, CSV and raw zone of this test's own; the
    logins are granted the new topic and group as `platform up` would grant them."""
    settings = cluster_settings.model_copy(
        update={
            "kafka_topic": unique_name("weather"),
            "kafka_group_id": unique_name("raw"),
            "csv_path": tmp_path / "weather.csv",
            "raw_dir": tmp_path / "raw",
        }
    )
    LocalCluster(settings).grant()
    return settings
