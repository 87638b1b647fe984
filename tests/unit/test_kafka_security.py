"""Settings -> the Kafka clients' security properties, and refusals -> one message."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from confluent_kafka import KafkaError

from weatherpipe.errors import SettingsError
from weatherpipe.kafka.security import (
    LOGINS,
    KafkaConnection,
    KafkaLoginError,
    denied,
    kafka_connection,
    refusal,
)
from weatherpipe.local_tls import local_ca
from weatherpipe.settings import load_settings

SECURITY_VARIABLES = (
    "PLATFORM_PROFILE",
    "KAFKA_BOOTSTRAP_SERVERS",
    "KAFKA_SECURITY_PROTOCOL",
    "KAFKA_SASL_MECHANISM",
    "KAFKA_SASL_USERNAME",
    "KAFKA_SASL_PASSWORD",
    "KAFKA_SSL_CA_LOCATION",
    "LOCAL_KAFKA",
    "STATE_DIR",
)


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    for name in SECURITY_VARIABLES:
        monkeypatch.delenv(name, raising=False)


def test_lab_profile_speaks_plaintext_without_login() -> None:
    connection = kafka_connection(load_settings(), "producer")
    assert connection.config() == {
        "bootstrap.servers": "localhost:9092",
        "security.protocol": "PLAINTEXT",
    }


def test_remote_sasl_ssl_login_with_the_system_cas(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "pkc-1.europe-west1.gcp.confluent.cloud:9092")
    monkeypatch.setenv("KAFKA_SECURITY_PROTOCOL", "SASL_SSL")
    monkeypatch.setenv("KAFKA_SASL_MECHANISM", "PLAIN")
    monkeypatch.setenv("KAFKA_SASL_USERNAME", "APIKEY")
    monkeypatch.setenv("KAFKA_SASL_PASSWORD", "s3cret")
    connection = kafka_connection(load_settings(), "dashboard")
    assert connection.config() == {
        "bootstrap.servers": "pkc-1.europe-west1.gcp.confluent.cloud:9092",
        "security.protocol": "SASL_SSL",
        "sasl.mechanism": "PLAIN",
        "sasl.username": "APIKEY",
        "sasl.password": "s3cret",
    }
    assert "s3cret" not in repr(connection)
    assert connection.describe().endswith("(SASL_SSL, user APIKEY)")


def test_sasl_without_a_login_names_the_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "kafka.example.com:9096")
    monkeypatch.setenv("KAFKA_SECURITY_PROTOCOL", "SASL_SSL")
    with pytest.raises(SettingsError, match="KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD"):
        kafka_connection(load_settings(), "producer")


def test_missing_ca_file_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KAFKA_SECURITY_PROTOCOL", "SSL")
    monkeypatch.setenv("KAFKA_SSL_CA_LOCATION", "/nowhere/ca.pem")
    with pytest.raises(SettingsError, match=re.escape("KAFKA_SSL_CA_LOCATION='/nowhere/ca.pem'")):
        kafka_connection(load_settings(), "producer")


def test_cluster_profile_gives_each_role_its_own_generated_login(tmp_path: Path) -> None:
    settings = load_settings(platform_profile="cluster", state_dir=tmp_path)
    assert settings.kafka_bootstrap_servers == "localhost:9192,localhost:9193,localhost:9194"
    assert settings.kafka_replication_factor == 3
    with pytest.raises(KafkaLoginError, match="platform up"):
        kafka_connection(settings, "producer")  # no CA yet
    local_ca(settings).parent.mkdir(parents=True)
    local_ca(settings).write_text("pem")
    producer = kafka_connection(settings, "producer")
    dashboard = kafka_connection(settings, "dashboard")
    assert producer.protocol == "SASL_SSL" and producer.mechanism == "SCRAM-SHA-512"
    assert (producer.username, dashboard.username) == (LOGINS["producer"], LOGINS["dashboard"])
    assert producer.password != dashboard.password
    assert producer.password == kafka_connection(settings, "producer").password  # kept
    assert producer.config()["ssl.ca.location"] == str(local_ca(settings))
    password_file = tmp_path / "kafka-cluster" / "logins" / "weatherpipe-producer.password"
    assert password_file.stat().st_mode & 0o777 == 0o600


def test_a_named_local_login_uses_its_generated_password(tmp_path: Path) -> None:
    settings = load_settings(
        platform_profile="cluster", state_dir=tmp_path, kafka_sasl_username=LOGINS["dashboard"]
    )
    local_ca(settings).parent.mkdir(parents=True)
    local_ca(settings).write_text("pem")
    as_producer = kafka_connection(settings, "producer")
    assert as_producer.username == LOGINS["dashboard"]
    assert as_producer.password == kafka_connection(settings, "dashboard").password


class _Error:
    """Stands for a librdkafka error delivered to an error callback."""

    def __init__(self, code: int, text: str) -> None:
        self._code, self._text = code, text

    def code(self) -> int:
        return self._code

    def str(self) -> str:
        return self._text


SASL = KafkaConnection("h:1", "SASL_SSL", "SCRAM-SHA-512", "u", None, None)


def test_refusals_say_what_to_change() -> None:
    wrong = _Error(KafkaError._AUTHENTICATION, "SASL authentication error: ...")
    assert "refused the login of user 'u'" in str(refusal(SASL, [wrong], []))  # type: ignore[list-item]
    untrusted = _Error(
        KafkaError._SSL,
        "ssl://h:1/bootstrap: SSL handshake failed: error:0A000086:SSL routines::certificate "
        "verify failed: broker certificate could not be verified, verify that ssl.ca.location",
    )
    message = str(refusal(SASL, [untrusted], []))  # type: ignore[list-item]
    assert "certificate verify failed" in message and "KAFKA_SSL_CA_LOCATION" in message
    assert "verify that ssl.ca.location" not in message
    plain = KafkaConnection("h:1")
    closed = ["h:1/bootstrap: Disconnected: connection closed by peer (in state APIVERSION_QUERY)"]
    assert "the brokers expect TLS" in str(refusal(plain, [], closed))
    tls_only = KafkaConnection("h:1", "SSL")
    after_tls = ["ssl://h:1/bootstrap: Disconnected: SSL connection closed by peer (in state UP)"]
    assert "the brokers expect a login" in str(refusal(tls_only, [], after_tls))


def test_no_refusal_when_the_brokers_just_do_not_answer() -> None:
    down = _Error(KafkaError._ALL_BROKERS_DOWN, "1/1 brokers are down")
    refused_lines = ["h:1/bootstrap: Connect to ipv4#127.0.0.1:1 failed: Connection refused"]
    assert refusal(SASL, [down], refused_lines) is None  # type: ignore[list-item]
    assert refusal(KafkaConnection("h:1"), [], refused_lines) is None


def test_denied_lists_what_the_login_may_do() -> None:
    message = denied(SASL, "write to", "topic 't'", ["READ", "DESCRIBE"])
    assert "does not allow user 'u' to write to topic 't' (it may: DESCRIBE, READ)" in message
