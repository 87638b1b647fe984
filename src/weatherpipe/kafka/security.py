"""How weatherpipe's Kafka clients reach the brokers and log in: the settings turned into
librdkafka's security properties, and a refused connection turned into a message that says
what to change.

Every Kafka client is built from a `KafkaConnection` made for one role. On the local cluster
profile each role logs in as a user of its own, which `weatherpipe platform up` creates with
only the ACLs that role needs, and the clients trust the local CA. Against any other cluster,
KAFKA_SECURITY_PROTOCOL, KAFKA_SASL_* and KAFKA_SSL_CA_LOCATION say how to connect; each process
(producer, consumer, dashboard) is then given the login meant for it in its own environment.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Final, Literal

from pydantic import SecretStr

from weatherpipe.errors import SettingsError, TerminalError
from weatherpipe.local_tls import local_ca
from weatherpipe.passwords import kept_password
from weatherpipe.settings import Settings

if TYPE_CHECKING:
    from confluent_kafka import KafkaError

Role = Literal["admin", "producer", "consumer", "dashboard"]

LOGINS: Final[dict[Role, str]] = {
    "admin": "weatherpipe-admin",
    "producer": "weatherpipe-producer",
    "consumer": "weatherpipe-consumer",
    "dashboard": "weatherpipe-dashboard",
}
"""The local cluster's user of each role."""


class KafkaLoginError(TerminalError):
    """The brokers answer but refuse the connection: a wrong login, plain text to a TLS
    listener, a certificate the client does not trust."""


class KafkaAuthorizationError(TerminalError):
    """The login is accepted but its ACLs do not allow what was asked."""


def local_password(settings: Settings, user: str) -> str:
    """The password of a local cluster user, generated once into STATE_DIR (mode 600)."""
    return kept_password(
        settings.state_dir.resolve() / "kafka-cluster" / "logins" / f"{user}.password"
    )


@dataclass(frozen=True)
class KafkaConnection:
    """Where the brokers are and how to log in: the part of a client's configuration that
    does not depend on what the client does. Its repr never shows the password."""

    bootstrap_servers: str
    protocol: str = "PLAINTEXT"
    mechanism: str | None = None
    username: str | None = None
    password: SecretStr | None = None
    ca_location: Path | None = None
    local_cluster: bool = False
    """The cluster profile's own brokers (whose ACLs `weatherpipe platform up` grants)."""

    @property
    def sasl(self) -> bool:
        return self.protocol.startswith("SASL_")

    @property
    def tls(self) -> bool:
        return self.protocol.endswith("SSL")

    def config(self) -> dict[str, str]:
        """librdkafka's properties for this connection (the password in clear)."""
        config = {"bootstrap.servers": self.bootstrap_servers, "security.protocol": self.protocol}
        if self.sasl and self.mechanism and self.username and self.password:
            config["sasl.mechanism"] = self.mechanism
            config["sasl.username"] = self.username
            config["sasl.password"] = self.password.get_secret_value()
        if self.tls and self.ca_location is not None:
            config["ssl.ca.location"] = str(self.ca_location)
        return config

    def describe(self) -> str:
        """The brokers and the login, for messages: `host:port,… (SASL_SSL, user u)`."""
        login = f", user {self.username}" if self.sasl and self.username else ""
        return f"{self.bootstrap_servers} ({self.protocol}{login})"

    def __str__(self) -> str:
        return self.bootstrap_servers


def kafka_connection(settings: Settings, role: Role) -> KafkaConnection:
    """How a client of `role` connects, from the settings.

    Raises `SettingsError` when a SASL protocol has no login to use, or the CA file named by
    KAFKA_SSL_CA_LOCATION does not exist, and `KafkaLoginError` when the local cluster's CA
    has not been made yet (`platform up` makes it).
    """
    local = settings.local_cluster
    protocol = settings.kafka_security_protocol or ("SASL_SSL" if local else "PLAINTEXT")
    username, password = settings.kafka_sasl_username, settings.kafka_sasl_password
    if protocol.startswith("SASL_"):
        if local and username is None:
            username = LOGINS[role]
        if local and password is None and username in LOGINS.values():
            password = SecretStr(local_password(settings, str(username)))
        if username is None or password is None:
            raise SettingsError(
                f"KAFKA_SECURITY_PROTOCOL={protocol} needs a login: set KAFKA_SASL_USERNAME and "
                "KAFKA_SASL_PASSWORD (for Confluent Cloud the API key and secret)."
            )
    ca = settings.kafka_ssl_ca_location
    if ca is not None and not ca.is_file():
        raise SettingsError(
            f"KAFKA_SSL_CA_LOCATION={str(ca)!r}: no such file. Point it at the PEM file of the "
            "CA that signed the brokers' certificates, or unset it to use the system's CAs."
        )
    if ca is None and local and protocol.endswith("SSL"):
        ca = local_ca(settings)
        if not ca.is_file():
            raise KafkaLoginError(
                f"The local cluster's CA ({ca}) does not exist yet: start the cluster with "
                "`weatherpipe platform up` (PLATFORM_PROFILE=cluster)."
            )
    return KafkaConnection(
        bootstrap_servers=settings.kafka_bootstrap_servers,
        protocol=protocol,
        mechanism=settings.kafka_sasl_mechanism if protocol.startswith("SASL_") else None,
        username=username if protocol.startswith("SASL_") else None,
        password=password if protocol.startswith("SASL_") else None,
        ca_location=ca,
        local_cluster=local,
    )


class ClientWatch:
    """Collects what a client reports while it connects: errors (its error callback) and log
    lines (its logger), kept instead of printed, to explain a refusal in one message."""

    def __init__(self) -> None:
        self.errors: list[KafkaError] = []
        self.lines: list[str] = []
        # A logger of its own, outside logging's tree: nothing it receives reaches the console.
        self.logger = logging.Logger("weatherpipe.kafka.watch")
        self.logger.addHandler(_Collect(self.lines))

    def error(self, error: KafkaError) -> None:
        self.errors.append(error)


class _Collect(logging.Handler):
    def __init__(self, lines: list[str]) -> None:
        super().__init__(logging.DEBUG)
        self._lines = lines

    def emit(self, record: logging.LogRecord) -> None:
        if len(self._lines) < 200:
            self._lines.append(record.getMessage())


def refusal(
    connection: KafkaConnection, errors: Sequence[KafkaError], lines: Sequence[str]
) -> str | None:
    """What a failed connection means, from the client's errors and log lines; None when
    nothing points at security (the brokers simply did not answer)."""
    from confluent_kafka import KafkaError  # here: a status check may need no client

    where = f"Kafka at {connection.bootstrap_servers}"
    for error in errors:
        if error.code() == KafkaError._AUTHENTICATION:
            return (
                f"{where} refused the login of user {connection.username!r} "
                f"({connection.mechanism}): the user name or password is wrong. Check "
                "KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD (on the local cluster profile, "
                "unset them: each client then uses its own generated login)."
            )
    for error in errors:
        if error.code() == KafkaError._SSL:
            return (
                f"{where}: the TLS handshake failed ({_short(error.str())}). Set "
                "KAFKA_SSL_CA_LOCATION to the CA certificate (PEM) that signed the brokers' "
                "certificates, and check that KAFKA_BOOTSTRAP_SERVERS names their TLS listener."
            )
    closed = [line for line in lines if "closed by peer" in line]
    if not connection.tls and any("APIVERSION_QUERY" in line for line in closed):
        return (
            f"{where} closed the connection as soon as weatherpipe spoke in plain text "
            f"(KAFKA_SECURITY_PROTOCOL={connection.protocol}): the brokers expect TLS. Set "
            "KAFKA_SECURITY_PROTOCOL=SASL_SSL (or SSL) and, if their certificates are not "
            "signed by a public CA, KAFKA_SSL_CA_LOCATION."
        )
    if connection.tls and not connection.sasl and any("SSL connection" in line for line in closed):
        return (
            f"{where} closed the connection right after the TLS handshake: the brokers expect a "
            "login. Set KAFKA_SECURITY_PROTOCOL=SASL_SSL with KAFKA_SASL_USERNAME and "
            "KAFKA_SASL_PASSWORD."
        )
    return None


def _short(text: str) -> str:
    """librdkafka's TLS error without its generic advice and timing."""
    for marker in (", verify that", " (after "):
        text = text.split(marker, 1)[0]
    return text.split(": ", 1)[-1]


def denied(connection: KafkaConnection, action: str, resource: str, allowed: Sequence[str]) -> str:
    """The message for an operation the login's ACLs do not allow."""
    login = f"user {connection.username!r}" if connection.username else "this client"
    may = f" (it may: {', '.join(sorted(allowed))})" if allowed else ""
    if connection.local_cluster:
        fix = (
            "On the local cluster profile each job logs in as its own user (leave "
            "KAFKA_SASL_USERNAME unset), and `weatherpipe platform up` grants them the current "
            "KAFKA_TOPIC and KAFKA_GROUP_ID: run it again after changing those."
        )
    else:
        fix = "Use the login meant for this job, or have the cluster's administrator grant it."
    where = f"Kafka at {connection.bootstrap_servers}"
    return f"{where} does not allow {login} to {action} {resource}{may}. {fix}"
