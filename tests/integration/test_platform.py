"""The local platform against the real Kafka broker and PostgreSQL server."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import NewTopic

from tests.conftest import as_env, platform_overrides
from weatherpipe import platform
from weatherpipe.db.connection import connect
from weatherpipe.kafka.admin import admin_client
from weatherpipe.kafka.security import KafkaConnection
from weatherpipe.platform.local_kafka import LocalKafka
from weatherpipe.platform.local_postgres import LocalPostgres
from weatherpipe.platform.processes import PortInUseError, ServiceTimeoutError
from weatherpipe.settings import Settings, load_settings

pytestmark = pytest.mark.integration


def create_topic(settings: Settings, name: str, partitions: int = 1) -> None:
    connection = KafkaConnection(settings.kafka_bootstrap_servers)
    admin = admin_client(connection)  # must outlive the future
    futures = admin.create_topics([NewTopic(name, num_partitions=partitions, replication_factor=1)])
    futures[name].result(30)


def test_kafka_topic_produce_and_consume(
    platform_settings: Settings, unique_name: Callable[[str], str]
) -> None:
    topic = unique_name("t")
    create_topic(platform_settings, topic)
    producer = Producer({"bootstrap.servers": platform_settings.kafka_bootstrap_servers})
    producer.produce(topic, key=b"Chicago", value=b'{"temperature_c": 3.1}')
    assert producer.flush(30) == 0

    consumer = Consumer(
        {
            "bootstrap.servers": platform_settings.kafka_bootstrap_servers,
            "group.id": unique_name("g"),
            "auto.offset.reset": "earliest",
        }
    )
    consumer.subscribe([topic])
    try:
        msg = None
        deadline = time.monotonic() + 30
        while msg is None and time.monotonic() < deadline:
            msg = consumer.poll(1)
        assert msg is not None and msg.error() is None
        assert (msg.key(), msg.value(), msg.offset()) == (b"Chicago", b'{"temperature_c": 3.1}', 0)
    finally:
        consumer.close()


def test_postgres_write_and_read(fresh_database: str) -> None:
    with connect(fresh_database) as conn:
        conn.execute("CREATE TABLE t (city text PRIMARY KEY, temp double precision)")
        conn.execute("INSERT INTO t VALUES (%s, %s)", ("Phoenix", 31.5))
        conn.commit()
    with connect(fresh_database) as conn:
        assert conn.execute("SELECT city, temp FROM t").fetchall() == [("Phoenix", 31.5)]


def test_postgres_listens_on_loopback_tcp(platform_settings: Settings, pg_url: str) -> None:
    assert pg_url.startswith("postgresql://weatherpipe:")
    assert f"@127.0.0.1:{platform_settings.postgres_port}/weather_data" in pg_url
    with connect(pg_url) as conn:
        row = conn.execute("SELECT current_database(), inet_server_port()").fetchone()
    assert row == ("weather_data", platform_settings.postgres_port)


def test_up_twice_is_a_noop(platform_settings: Settings) -> None:
    pids = (LocalKafka(platform_settings).pid(), LocalPostgres(platform_settings).pid())
    started = platform.up(platform_settings)
    assert (LocalKafka(platform_settings).pid(), LocalPostgres(platform_settings).pid()) == pids
    assert started.services == ()
    assert set(started.waited) == {"kafka", "postgres"}
    assert all(seconds < 5 for seconds in started.waited.values()), started.waited


def test_down_of_what_up_started_leaves_the_rest_running(
    platform_settings: Settings, tmp_path: Path
) -> None:
    overrides = platform_overrides(tmp_path)
    # The session's broker, as an existing one; only PostgreSQL is local to this platform.
    overrides["kafka_bootstrap_servers"] = platform_settings.kafka_bootstrap_servers
    overrides["local_kafka"] = False
    settings = load_settings(**overrides)
    local = LocalPostgres(settings)
    try:
        started = platform.up(settings)
        assert started.services == ("postgres",)
        pid = local.pid()
        assert pid is not None

        again = platform.up(settings)
        assert again.services == ()
        assert platform.down(settings, again) == {"kafka": False, "postgres": False}
        assert local.pid() == pid

        assert platform.down(settings, started) == {"kafka": False, "postgres": True}
        assert local.pid() is None
        assert LocalKafka(platform_settings).pid() is not None
    finally:
        local.stop()


def test_status_json_for_scripts(platform_settings: Settings) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "weatherpipe", "platform", "status", "--json"],
        capture_output=True,
        text=True,
        check=True,
        env=as_env(platform_settings),
    )
    report = json.loads(result.stdout)
    assert report["kafka"]["bootstrap_servers"] == platform_settings.kafka_bootstrap_servers
    assert report["kafka"]["running"] is True
    assert report["postgres"]["running"] is True
    assert report["postgres"]["url"].endswith(
        f"127.0.0.1:{platform_settings.postgres_port}/weather_data"
    )
    assert ":***@" in report["postgres"]["url"]


def test_down_then_up_keeps_topics_and_rows(
    platform_settings: Settings, fresh_database: str, unique_name: Callable[[str], str]
) -> None:
    topic = unique_name("persist")
    create_topic(platform_settings, topic, partitions=2)
    with connect(fresh_database) as conn:
        conn.execute("CREATE TABLE kept (n int)")
        conn.execute("INSERT INTO kept VALUES (42)")
        conn.commit()

    stopped = platform.down(platform_settings)
    assert stopped == {"kafka": True, "postgres": True}
    report = platform.status(platform_settings)
    assert not report.kafka.running and not report.postgres.running
    platform.up(platform_settings)

    admin = admin_client(KafkaConnection(platform_settings.kafka_bootstrap_servers))
    metadata = admin.list_topics(timeout=30)
    assert len(metadata.topics[topic].partitions) == 2
    with connect(fresh_database) as conn:
        assert conn.execute("SELECT n FROM kept").fetchall() == [(42,)]


def test_port_taken_by_someone_else_is_a_clear_error(tmp_path: Path) -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        overrides = platform_overrides(tmp_path)
        overrides["kafka_bootstrap_servers"] = f"localhost:{port}"
        settings = load_settings(**overrides)
        start = time.monotonic()
        with pytest.raises(PortInUseError) as info:
            platform.up(settings, timeout=30)
        assert time.monotonic() - start < 20  # fails fast, no hang until the timeout
        assert f"port {port}" in str(info.value)
        assert "KAFKA_BOOTSTRAP_SERVERS" in str(info.value)
        assert LocalKafka(settings).pid() is None

        overrides = platform_overrides(tmp_path / "pg")
        overrides["postgres_port"] = port
        settings = load_settings(**overrides)
        with pytest.raises(PortInUseError, match="POSTGRES_PORT"):
            LocalPostgres(settings).start(timeout=30)


def test_service_not_answering_within_timeout_is_reported_and_stopped(tmp_path: Path) -> None:
    settings = load_settings(**platform_overrides(tmp_path))
    kafka = LocalKafka(settings)
    with pytest.raises(ServiceTimeoutError) as info:
        kafka.start(timeout=0.05)
    assert "did not answer within 0.05 s" in str(info.value)
    assert "server.log" in str(info.value)  # the log tail is part of the message
    assert kafka.pid() is None  # what we started was stopped again


def test_external_broker_that_never_answers_times_out(tmp_path: Path) -> None:
    # A socket that accepts connections but never speaks Kafka: a hung broker.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        overrides = platform_overrides(tmp_path)
        overrides["kafka_bootstrap_servers"] = f"127.0.0.1:{silent.getsockname()[1]}"
        overrides["local_kafka"] = False
        settings = load_settings(**overrides)
        with pytest.raises(ServiceTimeoutError, match="does not start it"):
            platform.up(settings, timeout=3)


def test_down_never_stops_a_process_it_did_not_start(tmp_path: Path) -> None:
    settings = load_settings(**platform_overrides(tmp_path))
    stranger = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        kafka = LocalKafka(settings)
        kafka.home.mkdir(parents=True)
        kafka.pid_file.write_text(f"{stranger.pid}\n")  # e.g. a stale pid file, pid reused
        assert platform.down(settings) == {"kafka": False, "postgres": False}
        assert stranger.poll() is None
    finally:
        stranger.kill()
        stranger.wait()


def test_storage_format_takes_a_cluster_id_that_starts_with_a_dash(tmp_path: Path) -> None:
    # Random ids are URL-safe base64, so about one in 32 starts with "-".
    kafka = LocalKafka(load_settings(**platform_overrides(tmp_path)))
    kafka.data.mkdir(parents=True)
    kafka.render_config()
    kafka.ensure_formatted("-AbCdEfGhIjKlMnOpQrStU")
    assert "cluster.id=-AbCdEfGhIjKlMnOpQrStU" in (kafka.data / "meta.properties").read_text()


def test_up_with_a_wrong_password_leaves_the_running_server_running(
    platform_settings: Settings,
) -> None:
    pid = LocalPostgres(platform_settings).pid()
    assert pid is not None
    env = as_env(platform_settings)
    env["POSTGRES_PASSWORD"] = "not-the-servers-password"
    result = subprocess.run(
        [sys.executable, "-m", "weatherpipe", "platform", "up", "--timeout", "3"],
        capture_output=True,
        text=True,
        check=False,
        env=env,
    )
    assert result.returncode == 1
    message = " ".join(result.stderr.split())  # the console wraps long lines
    assert "password authentication failed" in message
    assert "unset POSTGRES_PASSWORD" in message
    assert "Traceback" not in result.stderr
    assert "Last lines of" not in message and "LOG:" not in message  # no log dump
    assert "not-the-servers-password" not in result.stdout + result.stderr
    assert LocalPostgres(platform_settings).pid() == pid
    assert platform.status(platform_settings).postgres.running

    status = subprocess.run(
        [sys.executable, "-m", "weatherpipe", "platform", "status"],
        capture_output=True,
        text=True,
        check=False,
        env=env,
    )
    assert status.returncode == 1
    assert "refuses the login" in status.stderr


def test_status_exits_non_zero_when_nothing_runs(tmp_path: Path) -> None:
    settings = load_settings(**platform_overrides(tmp_path))
    result = subprocess.run(
        [sys.executable, "-m", "weatherpipe", "platform", "status"],
        capture_output=True,
        text=True,
        check=False,
        env=as_env(settings),
    )
    assert result.returncode == 1
    assert result.stderr.count("not running") == 2
    assert "weatherpipe platform up" in result.stderr
